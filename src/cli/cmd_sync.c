/* mongo2delta sync: a collection's changes into a mirror table and/or a change log. */
#include "cli/commands.h"
#include "cli/run_config.h"
#include "cli/sync_args.h"
#include "cli/target_args.h"
#include "core/log.h"
#include "pipeline/sync.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

/* After the tables: how the stream starts. */
#define SYNC_STREAM_OPTS                                                                                               \
  {"initial", "WHAT", "snapshot (copy the collection first) or skip (changes from now on)", "snapshot", false},       \
      {"on-history-lost", "WHAT",                                                                                      \
       "fail (a clear error, the tables intact) or resnapshot (copy the collection again) when the server no "        \
       "longer has the stream's position",                                                                            \
       "fail", false},                                                                                                 \
      {"workers", "N", "parallel readers of the initial snapshot", "4", false}

/* One collection's options: also the keys of run's config file. */
const m2d_opt_spec_t m2d_sync_opts[] = {
    {"uri", "URI", "MongoDB connection string (a replica set: change streams)", NULL, true},
    {"db", "DB", "database", NULL, true},
    {"collection", "COLL", "collection", NULL, true},
    M2D_OPTS_TABLE_TARGET,
    SYNC_STREAM_OPTS,
    M2D_OPT_END,
};

/* The command's: one collection, or every collection matching --include and not --exclude. */
static const m2d_opt_spec_t cmd_opts[] = {
    {"uri", "URI", "MongoDB connection string (a replica set: change streams)", NULL, true},
    {"db", "DB", "database", NULL, true},
    {"collection", "COLL", "collection (or --all-collections)", NULL, false},
    M2D_OPT_TABLE_TARGET(false),
    M2D_OPTS_TABLE_TARGET_REST,
    SYNC_STREAM_OPTS,
    {"all-collections", NULL,
     "every collection of the database (not system.*), each in its own thread into ROOT/<collection>, as 'run' "
     "does: one connection pool, one metrics endpoint",
     NULL, false},
    {"table-root", "PATH", "with --all-collections: where the tables go (a folder or an " M2D_URL_FORMS " URL)", NULL,
     false},
    {"changelog-root", "PATH", "with --all-collections and --mode both: where the change logs go", NULL, false},
    {"include", "GLOBS", "with --all-collections: only collections matching one of these comma-separated patterns",
     "*", false},
    {"exclude", "GLOBS", "with --all-collections: not the collections matching one of these comma-separated patterns",
     NULL, false},
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
  static const char *const all_only[] = {"table-root", "changelog-root", "include", "exclude", NULL};
  if (m2d_args_flag(args, "all-collections")) {
    if (m2d_args_flag(args, "collection") || m2d_args_flag(args, "table") || m2d_args_flag(args, "changelog-table"))
      return m2d_cli_usage("sync: --all-collections takes --table-root (and --changelog-root), not --collection, "
                           "--table or --changelog-table: each collection's tables are ROOT/<collection>");
    m2d_run_config_t c;
    int rc = m2d_run_config_from_sync_args(&c, args, &err) ? m2d_run_collections(&c, false, stop_flag)
                                                             : m2d_cli_fail(&err);
    m2d_run_config_free(&c);
    return rc;
  }
  for (int i = 0; all_only[i]; i++)
    if (m2d_args_flag(args, all_only[i])) return m2d_cli_usage("sync: --%s goes with --all-collections", all_only[i]);
  if (!m2d_args_flag(args, "collection"))
    return m2d_cli_usage("sync: --collection COLL is required (or --all-collections --table-root ROOT); see "
                         "'mongo2delta sync --help'");
  if (!m2d_args_flag(args, "table"))
    return m2d_cli_usage("sync: --table PATH is required; see 'mongo2delta sync --help'");
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
        "opening the stream. SIGINT/SIGTERM commit the batch in hand and exit 0.\n"
        "\n"
        "--all-collections syncs every collection of --db that matches --include and not --exclude, each\n"
        "into --table-root/<collection> (change logs into --changelog-root/<collection> with --mode both),\n"
        "in one process as 'mongo2delta run' does; a collection's tables and positions are the same as a\n"
        "sync of that collection alone would keep. The collections are listed when the run starts.",
    .example = "mongo2delta sync --uri mongodb://127.0.0.1:27017 --db shop --collection orders --table ./lake/orders "
               "--mode both --changelog-table ./lake/orders_changes",
    .opts = cmd_opts,
    .run = run,
};
