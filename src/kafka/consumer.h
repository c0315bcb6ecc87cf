/* A Kafka consumer in a consumer group (librdkafka's high-level consumer), configured for
 * exactly-once ingestion into Delta:
 *   - the cooperative-sticky assignor (a rebalance moves only the partitions that change hands)
 *     with librdkafka 2.3 or later; before 2.3 the range assignor (eager: a rebalance revokes
 *     every partition), since librdkafka up to 2.2 aborts in the cooperative-sticky assignor
 *     when a consumer is destroyed before its first assignment (librdkafka issue 4312; Debian 12
 *     ships 2.0.2),
 *   - read_committed (records of aborted or open transactions are never seen),
 *   - no automatic offset commits: positions are kept in the Delta table, the group's committed
 *     offsets are written after each Delta commit for monitoring only.
 * The caller's rebalance callback assigns and revokes (rd_kafka_incremental_assign/unassign). */
#ifndef M2D_KAFKA_CONSUMER_H
#define M2D_KAFKA_CONSUMER_H

#include "core/error.h"

#include <librdkafka/rdkafka.h>

typedef void (*m2d_kafka_rebalance_cb)(rd_kafka_t *rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *parts,
                                       void *opaque);

typedef struct {
  const char *brokers, *group;
  int session_timeout_ms;       /* 0: 10000 (how soon a killed instance's partitions move) */
  m2d_kafka_rebalance_cb rebalance;
  void *opaque;
} m2d_kafka_consumer_options_t;

rd_kafka_t *m2d_kafka_consumer_new(const m2d_kafka_consumer_options_t *o, m2d_error_t *err);

/* Whether consumers use the cooperative-sticky assignor (the linked librdkafka is 2.3 or later):
 * rebalance callbacks then assign and revoke incrementally. */
bool m2d_kafka_cooperative(void);

/* Subscribes to the topics (n of them), or to the topics matching the POSIX extended regular
 * expression pattern when it is not NULL. */
bool m2d_kafka_consumer_subscribe(rd_kafka_t *rk, const char *const *topics, int n, const char *pattern,
                                  m2d_error_t *err);

#endif
