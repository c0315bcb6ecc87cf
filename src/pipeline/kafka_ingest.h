/* mongo2delta kafka-ingest: change events from Kafka topics into a mirror table and/or a change
 * log, exactly once, by a consumer group whose instances share the partitions.
 *
 * Each micro-batch is one Delta commit per table carrying a txn action per topic-partition it
 * holds records of (appId "mongo2delta-kafka:<group>:<topic>:<partition>", version = the last
 * offset + 1): the table, not Kafka, says where each partition is. On start and on every
 * partition assignment the positions are read from the tables and the consumer seeks to them;
 * the group's committed offsets are written after each Delta commit, for monitoring only. In
 * both mode the change log is committed first (it skips the records it already holds), then the
 * mirror (applied by _id).
 *
 * Several instances in one group commit to one table: their commits touch different appIds and
 * are retried under Delta's optimistic concurrency (pipeline/mirror, pipeline/table_writer); an
 * instance that lost a partition without knowing it (a zombie) finds its commit refused, because
 * another commit holds the partition's appId (DELTA_CONFLICT_APP), drops its batch and reads the
 * positions again. A revoked partition's batch in hand is committed before the revocation
 * completes; a lost one is dropped. An assignment re-reads the mirror (its key index), since the
 * partitions it brings were written by another instance.
 *
 * A record that cannot be parsed or applied (pipeline/change_record) goes to the dead-letter
 * topic with Kafka Connect's error headers (__connect.errors.topic, .partition, .offset,
 * .exception.message), written before the commit that moves past it; without a dead-letter
 * topic the run commits what came before it and stops, naming topic, partition and offset. */
#ifndef M2D_PIPELINE_KAFKA_INGEST_H
#define M2D_PIPELINE_KAFKA_INGEST_H

#include "core/error.h"
#include "pipeline/change_record.h"
#include "pipeline/stream_tables.h"

#include <signal.h>
#include <stdint.h>

#define M2D_KAFKA_APP_PREFIX "mongo2delta-kafka:"

typedef struct {
  const char *brokers, *group;
  const char *const *topics;   /* ntopics names, or */
  int ntopics;
  const char *topic_pattern;   /* a regular expression (POSIX extended) */
  m2d_record_format_t format;
  const char *dead_letter_topic; /* NULL: a bad record stops the run */
  bool start_latest;           /* a partition the table holds nothing of starts at its end (else its beginning) */
  m2d_stream_tables_t tables;  /* which tables, merging, batching, compaction, metrics */
  int session_timeout_ms;      /* 0: 10000 */
  volatile sig_atomic_t *stop;
} m2d_kafka_ingest_options_t;

typedef struct {
  int64_t records, applied, skipped, dead_lettered, batches, upserts, deletes, changelog_rows, rebalances, conflicts;
} m2d_kafka_ingest_summary_t;

bool m2d_kafka_ingest_run(const m2d_kafka_ingest_options_t *o, m2d_kafka_ingest_summary_t *sum, m2d_error_t *err);

#endif
