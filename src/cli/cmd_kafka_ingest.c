/* mongo2delta kafka-ingest: change events from Kafka into a mirror table and/or a change log. */
#include "cli/commands.h"
#include "cli/kafka_args.h"
#include "cli/target_args.h"
#include "pipeline/kafka_ingest.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const m2d_opt_spec_t opts[] = {
    M2D_OPT_BROKERS,
    {"topic", "T[,T2..]", "the topics to consume (or --topic-pattern)", NULL, false},
    {"topic-pattern", "RE", "consume every topic whose name matches the regular expression (POSIX extended)", NULL, false},
    {"group", "G", "the consumer group: instances with the same group share the partitions", NULL, true},
    M2D_OPTS_TABLE_TARGET,
    {"format", "FORMAT",
     "change-events (kafka-produce's, the MongoDB Kafka source connector's) or documents (plain documents upserted "
     "by _id, a tombstone deletes its key's _id: the connector's publish.full.document.only)",
     "change-events", false},
    {"dead-letter-topic", "DLQ",
     "records that cannot be parsed or applied go there with headers saying why (without it, such a record stops "
     "the run)",
     NULL, false},
    {"startup", "WHERE", "where a partition the tables hold nothing of starts: earliest or latest", "earliest", false},
    {"session-timeout", "MS", "how long the group waits for a silent instance before moving its partitions", "10000",
     false},
    M2D_OPT_END,
};

static int run(const m2d_command_t *cmd, m2d_args_t *args) {
  (void)cmd;
  m2d_error_t err = {0};
  m2d_kafka_ingest_options_t o = {.brokers = m2d_args_get(args, "brokers"), .group = m2d_args_get(args, "group"),
                                  .dead_letter_topic = m2d_args_get(args, "dead-letter-topic"),
                                  .topic_pattern = m2d_args_get(args, "topic-pattern")};
  if (m2d_args_flag(args, "topic") == m2d_args_flag(args, "topic-pattern"))
    return m2d_cli_usage("give --topic T[,T2..] or --topic-pattern RE (one of them)");
  char *topics_copy = NULL;
  const char *topics[256];
  if (m2d_args_flag(args, "topic")) {
    if (!(topics_copy = strdup(m2d_args_get(args, "topic")))) {
      m2d_error_set(&err, M2D_ERR_LIMIT, 0, "out of memory");
      return m2d_cli_fail(&err);
    }
    char *save = NULL;
    for (char *t = strtok_r(topics_copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
      if (o.ntopics == 256) {
        free(topics_copy);
        return m2d_cli_usage("--topic takes at most 256 topics (use --topic-pattern)");
      }
      topics[o.ntopics++] = t;
    }
    if (!o.ntopics) {
      free(topics_copy);
      return m2d_cli_usage("--topic needs a topic name");
    }
    o.topics = topics;
  }
  const char *fmt = m2d_args_get(args, "format"), *startup = m2d_args_get(args, "startup");
  int rc = 0;
  if (!strcmp(fmt, "change-events")) o.format = M2D_RECORD_CHANGE_EVENTS;
  else if (!strcmp(fmt, "documents")) o.format = M2D_RECORD_DOCUMENTS;
  else rc = m2d_cli_usage("--format must be change-events or documents");
  if (!rc && strcmp(startup, "earliest") && strcmp(startup, "latest"))
    rc = m2d_cli_usage("--startup must be earliest or latest");
  o.start_latest = !strcmp(startup, "latest");
  int64_t session = 10000;
  m2d_table_target_args_t t;
  if (!rc && (!m2d_args_int(args, "session-timeout", 1000, 3600000, &session, &err) ||
              !m2d_args_table_target(args, &t, &err)))
    rc = m2d_cli_fail(&err);
  if (rc) {
    free(topics_copy);
    return rc;
  }
  o.session_timeout_ms = (int)session;
  o.tables = t;
  o.stop = m2d_cli_stop_on_signals();
  m2d_kafka_ingest_summary_t s;
  bool ok = m2d_kafka_ingest_run(&o, &s, &err);
  fprintf(stderr,
          "kafka-ingest %s: %lld records in %lld batches: %lld upserts, %lld deletes in the mirror, %lld change-log "
          "rows, %lld dead-lettered, %lld skipped (already in the tables), %lld rebalances\n",
          o.group, (long long)s.records, (long long)s.batches, (long long)s.upserts, (long long)s.deletes,
          (long long)s.changelog_rows, (long long)s.dead_lettered, (long long)s.skipped, (long long)s.rebalances);
  free(topics_copy);
  return ok ? 0 : m2d_cli_fail(&err);
}

const m2d_command_t m2d_cmd_kafka_ingest = {
    .name = "kafka-ingest",
    .summary = "apply change events from Kafka topics to a mirror table and/or a change log, exactly once",
    .description =
        "Consumes the topics in a consumer group (instances with the same --group share the partitions:\n"
        "cooperative-sticky with librdkafka 2.3+, range before) and applies the change events as sync\n"
        "does: the mirror equals the collection,\n"
        "the change log gets one row per event (_op, _cluster_time, _id, document, _kafka_topic,\n"
        "_kafka_partition, _kafka_offset). Every commit carries a txn action per topic-partition (appId\n"
        "mongo2delta-kafka:<group>:<topic>:<partition>, version = last offset + 1): on start and on every\n"
        "assignment the position is read from the tables, so a crash applies nothing twice and skips\n"
        "nothing. The group's committed offsets follow each commit, for monitoring. SIGINT/SIGTERM commit\n"
        "the batch in hand and exit 0.",
    .example = "mongo2delta kafka-ingest --brokers 127.0.0.1:9092 --topic shop.orders --group lake "
               "--table s3://lake/orders --mode both --changelog-table s3://lake/orders_changes "
               "--dead-letter-topic shop.orders.dlq",
    .opts = opts,
    .run = run,
};
