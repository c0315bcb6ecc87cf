/* mongo2delta kafka-produce: change streams into Kafka topics in the MongoDB Kafka source
 * connector's format, exactly once.
 *
 * One record per event in topic "<prefix>.<db>.<collection>" ("<db>.<collection>" without a
 * prefix), key {"_id": ...}, value the change event (pipeline/change_json). A transactional
 * producer (transactional.id "mongo2delta-produce:<db>.<collection or *>") writes each batch and
 * the stream's position (a JSON record keyed by the same id into the compacted topic
 * "<prefix>.mongo2delta-offsets") in one transaction; a run reads the position back
 * (read_committed) and resumes after it. copy-existing first emits every document (sorted by
 * _id, in batches whose position is the last _id copied) as the connector's copy phase does, then
 * the stream from a position taken before the copy.
 *
 * Heartbeats: while no event comes for heartbeat_interval_s, the stream's resume token still
 * moves on (the server's post-batch resume token follows the oplog); it is written as the
 * position, in a transaction of its own (and as a record {"_id": <source>} -> {"_id": <token>}
 * into heartbeat_topic when given), whenever it changed, so a restart after a quiet spell resumes
 * from a point the oplog still has. */
#ifndef M2D_PIPELINE_KAFKA_PRODUCE_H
#define M2D_PIPELINE_KAFKA_PRODUCE_H

#include "core/error.h"
#include "pipeline/change_json.h"

#include <signal.h>
#include <stdint.h>

typedef enum { M2D_STARTUP_COPY_EXISTING = 0, M2D_STARTUP_LATEST, M2D_STARTUP_TIMESTAMP } m2d_startup_t;

typedef struct {
  const char *uri, *db;
  const char *collection;      /* NULL: every collection of db (a database change stream) */
  const char *brokers, *topic_prefix; /* prefix NULL or "": none */
  m2d_startup_t startup;
  uint32_t start_time;         /* M2D_STARTUP_TIMESTAMP: seconds since the epoch */
  bool full_document_only;
  m2d_json_form_t form;
  bool resnapshot_on_history_lost;
  int max_batch;               /* records per transaction, default 1000 */
  int max_latency_ms;          /* default 500 */
  int stop_when_idle_s;        /* 0: never */
  int64_t max_events;          /* stop after this many change events (0: no limit) */
  int heartbeat_interval_s;    /* 0: no heartbeats */
  const char *heartbeat_topic; /* NULL: heartbeats go into the offsets topic only */
  int metrics_port;            /* -1: no metrics; 0: any free port */
  volatile sig_atomic_t *stop;
} m2d_kafka_produce_options_t;

typedef struct {
  int64_t copied, events, records, transactions, aborted, skipped, heartbeats;
  bool resumed;
} m2d_kafka_produce_summary_t;

bool m2d_kafka_produce_run(const m2d_kafka_produce_options_t *o, m2d_kafka_produce_summary_t *sum, m2d_error_t *err);

#endif
