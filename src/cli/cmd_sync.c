/* mongo2delta sync: a collection's changes into a mirror table and/or a change log. */
#include "cli/commands.h"
#include "cli/sync_args.h"
#include "cli/target_args.h"
#include "core/log.h"
#include "pipeline/sync.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

const m2d_opt_spec_t m2d_sync_opts[] = {
    {"uri", "URI", "MongoDB connection string (a replica set: change streams)", NULL, true},
    {"db", "DB", "database", NULL, true},
    {"collection", "COLL", "collection", NULL, true},
    M2D_OPTS_TABLE_TARGET,
    {"initial", "WHAT", "snapshot (copy the collection first) or skip (changes from now on)", "snapshot", false},
    {"on-history-lost", "WHAT",
     "fail (a clear error, the tables intact) or resnapshot (copy the collection again) when the server no "
     "longer has the stream's position",
     "fail", false},
    {"workers", "N", "parallel readers of the initial snapshot", "4", false},
    M2D_OPT_END,
};

bool m2d_args_sync(const m2d_args_t *args, m2d_sync_options_t *o, m2d_error_t *err) {
  *o = (m2d_sync_options_t){.uri = m2d_args_get(args, "uri"), .db = m2d_args_get(args, "db"),
                            .collection = m2d_args_get(args, "collection")};
  const char *initial = m2d_args_get(args, "initial"), *lost = m2d_args_get(args, "on-history-lost");
  if (strcmp(initial, "snapshot") && strcmp(initial, "skip"))
    return m2d_error_set(err, M2D_ERR_USAGE, 0, "--initial must be snapshot or skip");
  if (strcmp(lost, "fail") && strcmp(lost, "resnapshot"))
    return m2d_error_set(err, M2D_ERR_USAGE, 0, "--on-history-lost must be fail or resnapshot");
  o->initial_snapshot = strcmp(initial, "snapshot") == 0;
  o->resnapshot_on_history_lost = strcmp(lost, "resnapshot") == 0;
  int64_t workers = 4;
  m2d_table_target_args_t t;
  if (!m2d_args_int(args, "workers", 1, 64, &workers, err) || !m2d_args_table_target(args, &t, err)) return false;
  o->workers = (int)workers;
  o->table = t.table;
  o->changelog_table = t.changelog_table;
  o->mirror = t.mirror;
  o->changelog = t.changelog;
  o->rewrite = t.rewrite;
  o->soft_delete = t.soft_delete;
  o->change_data_feed = t.change_data_feed;
  o->codec = t.codec;
  o->level = t.level;
  o->target_file_size = t.target_file_size;
  o->max_batch_docs = t.max_batch;
  o->max_latency_ms = t.max_latency_ms;
  o->stop_when_idle_s = t.stop_when_idle_s;
  o->compact_every = t.compact_every;
  o->metrics_port = t.metrics_port;
  return true;
}

static int run(const m2d_command_t *cmd, m2d_args_t *args) {
  (void)cmd;
  volatile sig_atomic_t *stop_flag = m2d_cli_stop_on_signals();
  m2d_error_t err = {0};
  m2d_sync_options_t o;
  if (!m2d_args_sync(args, &o, &err)) return m2d_cli_fail(&err);
  o.stop = stop_flag;
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
    .opts = m2d_sync_opts,
    .run = run,
};
