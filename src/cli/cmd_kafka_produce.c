/* mongo2delta kafka-produce: change streams into Kafka, in the MongoDB Kafka source connector's format. */
#include "cli/commands.h"
#include "cli/kafka_args.h"
#include "core/log.h"
#include "pipeline/kafka_produce.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const m2d_opt_spec_t opts[] = {
    M2D_OPTS_COLLECTION(" (a replica set: change streams)", "the collection to follow (or --all-collections)", false),
    {"all-collections", NULL, "follow every collection of the database (one database change stream)", NULL, false},
    M2D_OPT_BROKERS,
    {"topic-prefix", "P", "topics are <P>.<db>.<collection> (<db>.<collection> without), positions in <P>.mongo2delta-offsets", NULL, false},
    {"startup", "MODE",
     "copy-existing (every document first, as inserts marked as copies, then the changes), latest (changes from now) "
     "or timestamp:T (changes from T, seconds since the epoch); only for a source without a stored position",
     "copy-existing", false},
    {"full-document-only", NULL, "the record's value is the fullDocument only (a delete: a tombstone)", NULL, false},
    {"output-format", "FORM", "extended-json (canonical), relaxed-json or simplified-json", "relaxed-json", false},
    {"on-history-lost", "WHAT",
     "fail (a clear error) or resnapshot (copy the collection again) when the server no longer has the position", "fail",
     false},
    {"max-batch", "N", "records per Kafka transaction at most", "1000", false},
    {"max-latency", "MS", "commit a transaction at the latest this long after its first event", "500", false},
    M2D_OPT_STOP_WHEN_IDLE,
    {"max-events", "N", "stop after N change events", "0 (no limit)", false},
    {"heartbeat-interval", "SECONDS",
     "after this long without a record, write the stream's newest resume token as the position (its own "
     "transaction, only when it moved), so a quiet collection's position stays inside the oplog; 0: off",
     "10", false},
    {"heartbeat-topic", "TOPIC",
     "also write each heartbeat as a record {\"_id\": <source>} -> {\"_id\": <resume token>} into TOPIC (the "
     "connector's heartbeat.topic.name is __mongodb_heartbeats)",
     NULL, false},
    {"metrics-port", "PORT",
     "serve Prometheus metrics at http://127.0.0.1:PORT/metrics (records per topic, transactions committed and "
     "aborted, commit latency, last event time, lag, heartbeats, reconnects); 0 picks a free port and logs it",
     NULL, false},
    M2D_OPT_END,
};

static int run(const m2d_command_t *cmd, m2d_args_t *args) {
  (void)cmd;
  m2d_error_t err = {0};
  m2d_kafka_produce_options_t o = {.uri = m2d_args_get(args, "uri"), .db = m2d_args_get(args, "db"),
                                   .brokers = m2d_args_get(args, "brokers"),
                                   .topic_prefix = m2d_args_get(args, "topic-prefix"),
                                   .full_document_only = m2d_args_flag(args, "full-document-only")};
  bool all = m2d_args_flag(args, "all-collections");
  if (all == m2d_args_flag(args, "collection"))
    return m2d_cli_usage("give --collection COLL or --all-collections (one of them)");
  o.collection = all ? NULL : m2d_args_get(args, "collection");
  const char *st = m2d_args_get(args, "startup");
  if (!strcmp(st, "copy-existing")) o.startup = M2D_STARTUP_COPY_EXISTING;
  else if (!strcmp(st, "latest")) o.startup = M2D_STARTUP_LATEST;
  else if (!strncmp(st, "timestamp:", 10)) {
    char *end;
    long long t = strtoll(st + 10, &end, 10);
    if (*end || t <= 0 || t > 0xffffffffLL)
      return m2d_cli_usage("--startup timestamp:T needs T in seconds since the epoch");
    o.startup = M2D_STARTUP_TIMESTAMP;
    o.start_time = (uint32_t)t;
  } else return m2d_cli_usage("--startup must be copy-existing, latest or timestamp:T");
  if (!m2d_json_form_parse(m2d_args_get(args, "output-format"), &o.form))
    return m2d_cli_usage("--output-format must be extended-json, relaxed-json or simplified-json");
  static const char *const lost[] = {"fail", "resnapshot", NULL};
  int resnapshot = 0;
  int64_t batch = 1000, latency = 500, maxev = 0, hb = 10, mport = -1;
  if (!m2d_args_choice(args, "on-history-lost", lost, &resnapshot, &err) ||
      !m2d_args_int(args, "max-batch", 1, 100000, &batch, &err) ||
      !m2d_args_int(args, "heartbeat-interval", 0, 86400, &hb, &err) ||
      !m2d_args_int_if_given(args, "metrics-port", 0, 65535, &mport, &err) ||
      !m2d_args_int(args, "max-latency", 1, 3600000, &latency, &err) ||
      !m2d_args_stop_when_idle(args, &o.stop_when_idle_s, &err) ||
      !m2d_args_int_if_given(args, "max-events", 1, INT64_MAX, &maxev, &err))
    return m2d_cli_fail(&err);
  o.resnapshot_on_history_lost = resnapshot == 1;
  o.max_batch = (int)batch;
  o.max_latency_ms = (int)latency;
  o.max_events = maxev;
  o.heartbeat_interval_s = (int)hb;
  o.heartbeat_topic = m2d_args_get(args, "heartbeat-topic");
  if (o.heartbeat_topic && !*o.heartbeat_topic) return m2d_cli_usage("--heartbeat-topic needs a topic name");
  if (o.heartbeat_topic && !hb)
    return m2d_cli_usage("--heartbeat-topic needs heartbeats: give --heartbeat-interval 1 or more");
  o.metrics_port = (int)mport;
  o.stop = m2d_cli_stop_on_signals();
  m2d_kafka_produce_summary_t s;
  bool ok = m2d_kafka_produce_run(&o, &s, &err);
  fprintf(stderr,
          "kafka-produce %s.%s: %lld document(s) copied, %lld change event(s); %lld record(s) in %lld transaction(s) "
          "(%lld aborted and sent again), %lld heartbeat(s), %lld skipped%s\n",
          o.db, o.collection ? o.collection : "*", (long long)s.copied, (long long)s.events, (long long)s.records,
          (long long)s.transactions, (long long)s.aborted, (long long)s.heartbeats, (long long)s.skipped,
          s.resumed ? "; resumed" : "");
  return ok ? 0 : m2d_cli_fail(&err);
}

const m2d_command_t m2d_cmd_kafka_produce = {
    .name = "kafka-produce",
    .summary = "change streams into Kafka topics in the MongoDB Kafka source connector's format, exactly once",
    .description =
        "Follows the collection's (or the database's) change stream and writes one Kafka record per event to\n"
        "topic <prefix>.<db>.<collection>: key {\"_id\": ...}, value the change event (_id = resume token,\n"
        "operationType, clusterTime, fullDocument, ns, documentKey, updateDescription) in the chosen JSON\n"
        "form, as the MongoDB Kafka source connector writes it. copy-existing first writes every document\n"
        "as an insert whose _id is {_id, copyingData: true} (and a record header copy=true). Each batch and\n"
        "the stream's position go in one Kafka transaction (transactional.id\n"
        "mongo2delta-produce:<db>.<collection or *>; the position in the compacted topic\n"
        "<prefix>.mongo2delta-offsets), so after a crash the next run resumes where Kafka is and a\n"
        "read_committed consumer sees every event once. While no event comes, every --heartbeat-interval\n"
        "seconds the stream's newest resume token (it moves on with the oplog) is written as the position,\n"
        "so a quiet collection resumes from a point the oplog still has. SIGINT/SIGTERM commit the batch\n"
        "in hand and exit 0.",
    .example = "mongo2delta kafka-produce --uri mongodb://127.0.0.1:27017 --db shop --collection orders "
               "--brokers 127.0.0.1:9092 --topic-prefix mongo",
    .opts = opts,
    .run = run,
};
