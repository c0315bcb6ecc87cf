/* Kafka topics through the admin API: created when missing. */
#ifndef M2D_KAFKA_ADMIN_H
#define M2D_KAFKA_ADMIN_H

#include "core/error.h"

#include <librdkafka/rdkafka.h>

/* Creates topic on rk's cluster unless it exists: partitions and replication factor the
 * broker's defaults (-1), cleanup.policy=compact when compact. An existing topic is left as it is. */
bool m2d_kafka_ensure_topic(rd_kafka_t *rk, const char *topic, bool compact, int timeout_ms, m2d_error_t *err);

#endif
