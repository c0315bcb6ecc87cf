/* A source's position kept in a (compacted) Kafka topic: the newest committed record for a key.
 *
 * Read with a read_committed consumer assigned every partition from the start (no group), up to
 * the end of each: what an aborted or still open transaction wrote is not seen. */
#ifndef M2D_KAFKA_OFFSETS_H
#define M2D_KAFKA_OFFSETS_H

#include "core/error.h"

/* *value: a malloc'd copy of the newest value for key (NUL-terminated), or NULL when the topic
 * has none (or was just created). */
bool m2d_kafka_offsets_read(const char *brokers, const char *topic, const char *key, int timeout_ms, char **value,
                            m2d_error_t *err);

#endif
