/* mongo2delta load: export files into a Delta table, each file exactly once. */
#include "cli/commands.h"
#include "cli/target_args.h"
#include "core/log.h"
#include "parquet/compress.h"
#include "pipeline/load.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

static const m2d_opt_spec_t opts[] = {
    {"input", "PATH",
     "an export file or a folder of them (with --format kafka-connect-json: the folder the sink writes to), local or "
     "an " M2D_URL_FORMS " URL (more may follow)",
     NULL, true},
    {"table", "PATH",
     "the Delta table: a local path or an " M2D_URL_FORMS " URL (created when missing); with --format "
     "kafka-connect-json the mirror (mirror and both modes) or the change log (changelog mode)",
     NULL, true},
    {"format", "FORMAT",
     "export (mongodump .bson/.bson.gz and mongoexport JSON lines, told apart by their names) or kafka-connect-json "
     "(what a Kafka Connect S3, GCS or Azure sink writes with its JSON format: <topic>+<partition>+<startOffset>.json "
     "or .json.gz, one record value per line, applied to a mirror or change log in offset order)",
     "export", false},
    M2D_OPTS_COMPRESSION,
    M2D_OPT_TARGET_FILE_SIZE,
    {"partition-by", "FIELD", "partition a new table by this top-level field", "none", false},
    {"rejects", "FILE", "append bad records to FILE (JSON lines) and go on, instead of failing the file", NULL,
     false},
    {"watch", NULL,
     "keep listing the inputs and load new files as they arrive, until SIGINT/SIGTERM (which finish the file in "
     "hand), as Auto Loader's directory listing does",
     NULL, false},
    {"interval", "DURATION", "with --watch: time between listings (e.g. 30s, 500ms, 2m)", "30s", false},
    {"max-files-per-batch", "N", "load at most N new files per listing (the rest at the next)", "all", false},
    {"full-listing-every", "N",
     "with --watch: every Nth listing is whole (to find files named before the last one taken); the others start "
     "after the last file taken",
     "10", false},
    {"max-rounds", "N", "with --watch: stop after N listings (scripts, tests)", "0 (never)", false},
    /* --format kafka-connect-json */
    M2D_OPTS_TABLE_MODES,
    {"record-format", "FORMAT",
     "with --format kafka-connect-json: change-events (the MongoDB Kafka source connector's or kafka-produce's) or "
     "documents (plain documents, upserted by _id)",
     "change-events", false},
    {"allow-offset-gaps", NULL,
     "with --format kafka-connect-json: a file that starts past the end of the one before is taken, not awaited: "
     "for topics whose offsets have holes (transactional producers such as kafka-produce write commit markers; "
     "compaction). Without it such a hole is an error (with --watch: a wait until the file appears), since it may "
     "be a missing file",
     NULL, false},
    {"max-batch-docs", "N",
     "with --format kafka-connect-json: a commit is made once the files taken hold N records (whole files: a commit "
     "holds at most N records plus one file's)",
     "10000", false},
    {"source-name", "NAME",
     "with --format kafka-connect-json: named in the tables' positions (appId mongo2delta-load-kafka:NAME:<topic>:"
     "<partition>), to load two sinks' files of topics with the same names into one table",
     NULL, false},
    M2D_OPT_END,
};

static int run(const m2d_command_t *cmd, m2d_args_t *args) {
  (void)cmd;
  m2d_error_t err = {0};
  const char *inputs[1 + M2D_MAX_POSITIONAL];
  int n = 0;
  inputs[n++] = m2d_args_get(args, "input");
  for (int i = 0; i < args->npositional; i++) inputs[n++] = args->positional[i];
  m2d_load_options_t o = {.inputs = inputs, .ninputs = n, .table = m2d_args_get(args, "table"), .codec = PQ_CODEC_SNAPPY};
  const char *format = m2d_args_get(args, "format");
  if (!strcmp(format, "kafka-connect-json")) {
    o.format = M2D_LOAD_KAFKA_CONNECT_JSON;
  } else if (strcmp(format, "export")) {
    m2d_error_set(&err, M2D_ERR_USAGE, 0, "--format must be export or kafka-connect-json");
    return m2d_cli_fail(&err);
  }
  static const char *const connect_only[] = {"mode", "changelog-table", "merge-strategy", "delete", "change-data-feed",
                                             "record-format", "allow-offset-gaps", "max-batch-docs", "source-name"};
  for (size_t i = 0; o.format != M2D_LOAD_KAFKA_CONNECT_JSON && i < sizeof connect_only / sizeof *connect_only; i++)
    if (m2d_args_flag(args, connect_only[i])) {
      m2d_error_set(&err, M2D_ERR_USAGE, 0, "--%s applies to --format kafka-connect-json only", connect_only[i]);
      return m2d_cli_fail(&err);
    }
  if (o.format == M2D_LOAD_KAFKA_CONNECT_JSON) {
    m2d_table_target_args_t t = {0};
    const char *rf = m2d_args_get(args, "record-format");
    int64_t batch = 10000;
    if (!m2d_args_table_modes(args, &t, &err) ||
        !m2d_args_int(args, "max-batch-docs", 1, 10000000, &batch, &err))
      return m2d_cli_fail(&err);
    if (!strcmp(rf, "documents")) o.record_format = M2D_RECORD_DOCUMENTS;
    else if (strcmp(rf, "change-events"))
      m2d_error_set(&err, M2D_ERR_USAGE, 0, "--record-format must be change-events or documents");
    if (m2d_args_flag(args, "partition-by"))
      m2d_error_set(&err, M2D_ERR_USAGE, 0, "--partition-by applies to --format export only");
    if (err.domain != M2D_ERR_NONE) return m2d_cli_fail(&err);
    o.mirror = t.mirror;
    o.changelog = t.changelog;
    o.table = t.table;
    o.changelog_table = t.changelog_table;
    o.rewrite = t.rewrite;
    o.soft_delete = t.soft_delete;
    o.change_data_feed = t.change_data_feed;
    o.allow_offset_gaps = m2d_args_flag(args, "allow-offset-gaps");
    o.max_batch = (int)batch;
    o.name = m2d_args_get(args, "source-name");
  }
  if (!m2d_args_compression(args, &o.codec, &o.level, &err) || !m2d_args_target_file_size(args, &o.target_file_size, &err))
    return m2d_cli_fail(&err);
  if (m2d_args_flag(args, "partition-by")) o.partition_by = m2d_args_get(args, "partition-by");
  if (m2d_args_flag(args, "rejects")) o.rejects = m2d_args_get(args, "rejects");
  o.watch = m2d_args_flag(args, "watch");
  int64_t max_files = 0, full_every = 10, rounds = 0;
  if (!m2d_args_duration_ms(args, "interval", 1, (int64_t)86400 * 1000, &o.interval_ms, &err) ||
      !m2d_args_int_if_given(args, "max-files-per-batch", 1, 1000000000, &max_files, &err) ||
      !m2d_args_int(args, "full-listing-every", 1, 1000000000, &full_every, &err) ||
      !m2d_args_int_if_given(args, "max-rounds", 1, INT64_MAX, &rounds, &err))
    return m2d_cli_fail(&err);
  o.max_files_per_batch = (int)max_files;
  o.full_listing_every = (int)full_every;
  o.max_rounds = rounds;
  o.stop = m2d_cli_stop_on_signals();
  m2d_load_summary_t s;
  bool ok = m2d_load_run(&o, &s, &err);
  if (o.format == M2D_LOAD_KAFKA_CONNECT_JSON) {
    char mirror[160] = "", log[160] = "";
    if (o.mirror)
      snprintf(mirror, sizeof mirror, "; mirror: %lld upserts, %lld deletes, version %lld", (long long)s.upserts,
               (long long)s.deletes, (long long)s.version);
    if (o.changelog)
      snprintf(log, sizeof log, "; change log: %lld rows, version %lld", (long long)s.changelog_rows,
               (long long)s.changelog_version);
    fprintf(stderr,
            "load: %d file(s) loaded, %d already loaded before; %lld records of %d partition(s), %lld rejected, %lld "
            "already in the tables%s%s; %lld commit(s)%s\n",
            s.files_taken, s.files_skipped, (long long)s.records, s.partitions, (long long)s.rejected,
            (long long)s.records_skipped, mirror, log, (long long)s.commits,
            s.interrupted ? "; stopped by a signal after the file in hand" : "");
    if (s.gaps) fprintf(stderr, "load: %d partition(s) wait for a missing file (see the warnings)\n", s.gaps);
    json_decref(s.rescued_fields);
    return ok ? 0 : m2d_cli_fail(&err);
  }
  if (s.files_taken || s.files_skipped || ok)
    fprintf(stderr,
            "load: %d file(s) loaded, %d already loaded before; %lld documents, %lld rejected, %lld value(s) "
            "rescued; %lld data file(s), %lld bytes; table version %lld%s\n",
            s.files_taken, s.files_skipped, (long long)s.documents, (long long)s.rejected, (long long)s.rescued,
            (long long)s.data_files, (long long)s.bytes, (long long)s.version,
            s.interrupted ? "; stopped by a signal after the file in hand" : "");
  if (s.files_changed)
    fprintf(stderr, "load: %d file(s) changed after they were loaded and were not loaded again (see the warnings)\n",
            s.files_changed);
  const char *path;
  json_t *v;
  json_object_foreach(s.rescued_fields, path, v)
      fprintf(stderr, "  rescued into _rescued_data: %-40s %lld\n", path, (long long)json_integer_value(v));
  json_decref(s.rescued_fields);
  return ok ? 0 : m2d_cli_fail(&err);
}

const m2d_command_t m2d_cmd_load = {
    .name = "load",
    .summary = "load mongodump / mongoexport files into a Delta table, each file exactly once",
    .positional = "[PATH...]",
    .description =
        "Reads mongodump .bson / .bson.gz files and mongoexport JSON lines (canonical or relaxed\n"
        "Extended JSON; .json, .jsonl, .ndjson, .json.gz), or folders of them, and appends each file to\n"
        "the Delta table as one commit. The schema is learned from every document (docs/type-mapping.md);\n"
        "values that do not fit their column are kept in _rescued_data. Each commit records the file\n"
        "in the Delta log, so running the command again takes only files it has not taken.\n"
        "A bad record fails its file (nothing of it is committed) unless --rejects sets it aside.\n"
        "Inputs may be local or in a bucket or container (s3://, gs://, az://). With --watch the inputs\n"
        "are listed again every --interval and new files are loaded as they arrive; listings start\n"
        "after the last file taken (names in lexical order, as $out and mongodump write them), with\n"
        "a whole listing every --full-listing-every rounds. A file that changes after it was loaded is\n"
        "reported, not loaded twice. Write local files under another name and rename them when done.\n"
        "\n"
        "--format kafka-connect-json reads what a Kafka Connect S3 sink (Confluent's; its GCS and Azure\n"
        "siblings alike) writes with format.class JsonFormat: <topics.dir>/<topic>/partition=<p>/\n"
        "<topic>+<p>+<startOffset>.json (or .json.gz), one record value per line, the Nth line being the\n"
        "record at startOffset + N - 1. The values are change events (the MongoDB source connector's,\n"
        "kafka-produce's) or, with --record-format documents, plain documents; they are applied as\n"
        "kafka-ingest applies them: the mirror equals the collection, the change log gets one row per\n"
        "record (_op, _cluster_time, _id, document, _kafka_topic, _kafka_partition, _kafka_offset).\n"
        "Each partition's files are taken in start-offset order; every commit carries a txn per\n"
        "topic-partition (appId mongo2delta-load-kafka:<topic>:<partition>, version = the offset after\n"
        "the last record taken), so a rerun takes only what is new, a file the sink wrote again is not\n"
        "applied twice, and one that straddles the table's position gives only the records after it.\n"
        "A file that starts past the end of the one before (a missing file) is an error naming the\n"
        "offsets, after the files before it are committed; with --watch it is a warning and that\n"
        "partition waits until the file appears. Topics whose offsets have holes (transactional\n"
        "producers, compaction) need --allow-offset-gaps.",
    .example = "mongo2delta load --input ./dump/shop --table ./lake/orders --partition-by country\n"
               "  mongo2delta load --format kafka-connect-json --input s3://sink-bucket/topics/ --table s3://lake/orders "
               "--mode both --changelog-table s3://lake/orders_changes --allow-offset-gaps --watch",
    .opts = opts,
    .run = run,
};
