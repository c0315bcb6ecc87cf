/* mongo2delta sync: a collection's changes into a mirror table and/or a change log. */
#include "cli/commands.h"
#include "core/log.h"
#include "pipeline/sync.h"
#include "storage/store.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

static const m2d_opt_spec_t opts[] = {
    {"uri", "URI", "MongoDB connection string (a replica set: change streams)", NULL, true},
    {"db", "DB", "database", NULL, true},
    {"collection", "COLL", "collection", NULL, true},
    {"table", "PATH", "the mirror table (mirror and both modes), or the change log (changelog mode): a local path or an s3://, gs:// or az:// URL", NULL, true},
    M2D_OPTS_COMPRESSION,
    M2D_OPT_TARGET_FILE_SIZE,
    {"mode", "MODE", "mirror (the table equals the collection), changelog (one row per event) or both", "mirror", false},
    {"changelog-table", "PATH", "with --mode both: the change-log table", NULL, false},
    {"initial", "WHAT", "snapshot (copy the collection first) or skip (changes from now on)", "snapshot", false},
    {"merge-strategy", "HOW",
     "deletion-vectors (rows replaced are marked deleted: cost per batch does not grow with the table; "
     "Spark, Databricks) or rewrite (copy-on-write: the files touched are rewritten; for readers without "
     "deletion-vector support such as delta-rs)",
     "deletion-vectors", false},
    {"delete", "HOW", "hard (deleted documents leave the mirror) or soft (they stay, _deleted = true)", "hard", false},
    {"change-data-feed", NULL,
     "write the mirror's change data (_change_data files, delta.enableChangeDataFeed) so that Databricks "
     "table_changes and Spark's readChangeFeed read its inserts, updates and deletes",
     NULL, false},
    {"on-history-lost", "WHAT",
     "fail (a clear error, the tables intact) or resnapshot (copy the collection again) when the server no "
     "longer has the stream's position",
     "fail", false},
    {"max-batch-docs", "N", "events per commit at most", "1000", false},
    {"max-latency", "MS", "commit a batch at the latest this long after its first event", "1000", false},
    {"stop-when-idle", "SECONDS", "exit 0 after this long without an event (scripts, tests)", "0 (never)", false},
    {"workers", "N", "parallel readers of the initial snapshot", "4", false},
    {"compact-every", "N",
     "compact the tables every N batches, between batches (small files bin-packed, files with 30% or more "
     "rows deleted rewritten); 0: never (run 'mongo2delta optimize' yourself)",
     "50", false},
    {"metrics-port", "PORT",
     "serve Prometheus metrics at http://127.0.0.1:PORT/metrics (events applied, batches, commit latency, lag, "
     "reconnects); 0 picks a free port and logs it",
     NULL, false},
    {NULL, NULL, NULL, NULL, false},
};

static int run(const m2d_command_t *cmd, m2d_args_t *args) {
  (void)cmd;
  volatile sig_atomic_t *stop_flag = m2d_cli_stop_on_signals();
  m2d_error_t err = {0};
  m2d_sync_options_t o = {.uri = m2d_args_get(args, "uri"), .db = m2d_args_get(args, "db"),
                          .collection = m2d_args_get(args, "collection"), .stop = stop_flag};
  const char *mode = m2d_args_get(args, "mode"), *initial = m2d_args_get(args, "initial");
  if (strcmp(mode, "mirror") == 0) o.mirror = true, o.table = m2d_args_get(args, "table");
  else if (strcmp(mode, "changelog") == 0) o.changelog = true, o.changelog_table = m2d_args_get(args, "table");
  else if (strcmp(mode, "both") == 0) {
    o.mirror = o.changelog = true;
    o.table = m2d_args_get(args, "table");
    o.changelog_table = m2d_args_get(args, "changelog-table");
    if (!m2d_args_flag(args, "changelog-table")) {
      m2d_error_set(&err, M2D_ERR_USAGE, 0, "--mode both needs --changelog-table PATH");
      return m2d_cli_fail(&err);
    }
  } else {
    m2d_error_set(&err, M2D_ERR_USAGE, 0, "--mode must be mirror, changelog or both");
    return m2d_cli_fail(&err);
  }
  if (strcmp(initial, "snapshot") && strcmp(initial, "skip")) {
    m2d_error_set(&err, M2D_ERR_USAGE, 0, "--initial must be snapshot or skip");
    return m2d_cli_fail(&err);
  }
  o.initial_snapshot = strcmp(initial, "snapshot") == 0;
  const char *merge = m2d_args_get(args, "merge-strategy"), *del = m2d_args_get(args, "delete");
  if (strcmp(merge, "deletion-vectors") && strcmp(merge, "rewrite")) {
    m2d_error_set(&err, M2D_ERR_USAGE, 0, "--merge-strategy must be deletion-vectors or rewrite");
    return m2d_cli_fail(&err);
  }
  if (strcmp(del, "hard") && strcmp(del, "soft")) {
    m2d_error_set(&err, M2D_ERR_USAGE, 0, "--delete must be hard or soft");
    return m2d_cli_fail(&err);
  }
  const char *lost = m2d_args_get(args, "on-history-lost");
  if (strcmp(lost, "fail") && strcmp(lost, "resnapshot")) {
    m2d_error_set(&err, M2D_ERR_USAGE, 0, "--on-history-lost must be fail or resnapshot");
    return m2d_cli_fail(&err);
  }
  o.resnapshot_on_history_lost = strcmp(lost, "resnapshot") == 0;
  o.rewrite = strcmp(merge, "rewrite") == 0;
  o.change_data_feed = m2d_args_flag(args, "change-data-feed");
  o.soft_delete = strcmp(del, "soft") == 0;
  int64_t batch = 1000, latency = 1000, idle = 0, workers = 4;
  if (!m2d_args_int(args, "max-batch-docs", 1, 1000000, &batch, &err) ||
      !m2d_args_int(args, "max-latency", 1, 3600000, &latency, &err) ||
      (m2d_args_flag(args, "stop-when-idle") && !m2d_args_int(args, "stop-when-idle", 1, 86400 * 365, &idle, &err)) ||
      !m2d_args_int(args, "workers", 1, 64, &workers, &err))
    return m2d_cli_fail(&err);
  o.max_batch_docs = (int)batch;
  o.max_latency_ms = (int)latency;
  o.stop_when_idle_s = (int)idle;
  o.workers = (int)workers;
  int64_t compact = 50;
  if (!m2d_args_int(args, "compact-every", 0, 1000000000, &compact, &err)) return m2d_cli_fail(&err);
  o.compact_every = (int)compact;
  int64_t mport = -1;
  if (m2d_args_flag(args, "metrics-port") && !m2d_args_int(args, "metrics-port", 0, 65535, &mport, &err))
    return m2d_cli_fail(&err);
  o.metrics_port = (int)mport;
  if ((o.table && !m2d_store_abort_orphan_uploads(o.table, &err)) ||
      (o.changelog_table && !m2d_store_abort_orphan_uploads(o.changelog_table, &err)))
    return m2d_cli_fail(&err);
  if (!m2d_args_compression(args, &o.codec, &o.level, &err) || !m2d_args_target_file_size(args, &o.target_file_size, &err))
    return m2d_cli_fail(&err);
  m2d_sync_summary_t s;
  bool ok = m2d_sync_run(&o, &s, &err);
  fprintf(stderr,
          "sync %s.%s: %lld events (sequence %lld to %lld) in %lld batches: %lld upserts, %lld deletes in the mirror, "
          "%lld change-log rows%s\n",
          o.db, o.collection, (long long)s.events, (long long)s.first_seq, (long long)s.last_seq, (long long)s.batches,
          (long long)s.upserts, (long long)s.deletes, (long long)s.changelog_rows,
          s.snapshotted ? "; initial snapshot done" : "");
  return ok ? 0 : m2d_cli_fail(&err);
}

const m2d_command_t m2d_cmd_sync = {
    .name = "sync",
    .summary = "keep a mirror table and/or a change log in step with a collection, exactly once",
    .description =
        "Reads the collection's change stream and commits it in micro-batches. The mirror table equals\n"
        "the collection: inserts, updates, replaces and deletes are applied by _id, the rows they replace\n"
        "marked deleted with deletion vectors (or the files rewritten, --merge-strategy rewrite). The change\n"
        "log gets one row per event (_op, _cluster_time, _txn_seq, _id, document). Every commit records the\n"
        "stream position (a txn action and the resume token), so a run after a crash resumes where the\n"
        "tables are: nothing applied twice, nothing skipped. The first run snapshots the collection after\n"
        "opening the stream. SIGINT/SIGTERM commit the batch in hand and exit 0.",
    .example = "mongo2delta sync --uri mongodb://127.0.0.1:27017 --db shop --collection orders --table ./lake/orders "
               "--mode both --changelog-table ./lake/orders_changes",
    .opts = opts,
    .run = run,
};
