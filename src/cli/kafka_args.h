/* Option rows of the commands that talk to Kafka (kafka-produce, kafka-ingest): the client's
 * settings are defined here once, so that both commands spell and explain them alike. */
#ifndef M2D_CLI_KAFKA_ARGS_H
#define M2D_CLI_KAFKA_ARGS_H

#include "cli/args.h"

/* clang-format off */
#define M2D_OPT_BROKERS {"brokers", "HOST:PORT[,..]", "Kafka bootstrap servers", NULL, true}
/* clang-format on */

#endif
