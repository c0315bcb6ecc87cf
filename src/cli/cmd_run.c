/* mongo2delta run: many collections synced by one process, from a config file (cli/run_config):
 * a sync loop per collection in its own thread, each with its own tables, batches and positions
 * (the same as sync's, so a collection can move between the two commands), one MongoDB
 * connection pool and one metrics endpoint (series labelled collection="db.coll"). */
#include "cli/commands.h"
#include "cli/run_config.h"
#include "cli/sync_args.h"
#include "core/log.h"
#include "core/redact.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const m2d_opt_spec_t opts[] = {
    {"config", "FILE", "the config file (TOML): [source], [[collection]], [all-collections], [defaults], [metrics]",
     NULL, true},
    {"dry-run", NULL, "print the collections and their tables, then exit (checks the file and the server)", NULL,
     false},
    M2D_OPT_END,
};

typedef struct {
  const m2d_run_entry_t *entry;
  m2d_sync_options_t o;
  m2d_sync_summary_t sum;
  m2d_error_t err;
  bool ok;
  volatile sig_atomic_t *stop;
} loop_t;

/* One collection's sync; a failure stops the others too (they commit what they hold), so that
 * a supervisor sees it and the process does not run on half its work. */
static void *loop(void *arg) {
  loop_t *l = arg;
  m2d_log_set_context(l->entry->name);
  l->ok = m2d_sync_run(&l->o, &l->sum, &l->err);
  /* stopped while copying the collection: what is committed stays, the next run goes on */
  if (!l->ok && l->sum.interrupted && *l->stop) {
    m2d_warn("stopped during the initial snapshot; the next run finishes it");
    l->ok = true;
  }
  if (!l->ok && !*l->stop) {
    char msg[sizeof l->err.message];
    m2d_redact(l->err.message, msg, sizeof msg);
    m2d_error("failed: %s; stopping the other collections", msg);
    *l->stop = 1;
  }
  return NULL;
}

static bool list_matches(m2d_run_config_t *c, m2d_error_t *err) {
  mongoc_client_t *client = m2d_mongo_client_new(c->uri, err);
  if (!client) return false;
  mongoc_database_t *db = mongoc_client_get_database(client, c->db);
  bson_error_t e;
  char **names = mongoc_database_get_collection_names_with_opts(db, NULL, &e);
  bool ok = names != NULL;
  if (!ok) m2d_mongo_error(err, &e, "[all-collections]: cannot list the database's collections");
  int before = c->n;
  for (int i = 0; ok && names[i]; i++)
    if (m2d_run_config_matches(c, names[i])) ok = m2d_run_config_add_matched(c, names[i], err);
  if (ok && c->n == before)
    m2d_warn("[all-collections]: no collection of %s matches its include and exclude patterns", c->db);
  bson_strfreev(names);
  mongoc_database_destroy(db);
  mongoc_client_destroy(client);
  return ok;
}

static const char *mode_name(const m2d_sync_options_t *o) {
  return o->mirror && o->changelog ? "both" : o->mirror ? "mirror" : "changelog";
}

int m2d_run_collections(m2d_run_config_t *c, bool dry_run, volatile sig_atomic_t *stop_flag) {
  m2d_error_t err = {0};
  loop_t *loops = NULL;
  mongoc_client_pool_t *pool = NULL;
  m2d_metrics_t *metrics = NULL;
  int rc = 0, started = 0;
  pthread_t *th = NULL;
  if (c->all && !list_matches(c, &err)) goto fail;
  if (c->n == 0) {
    m2d_error_set(&err, M2D_ERR_USAGE, 0, "%s: no collection to sync", c->path);
    goto fail;
  }
  loops = calloc((size_t)c->n, sizeof *loops);
  th = calloc((size_t)c->n, sizeof *th);
  int conns = 4;
  for (int i = 0; i < c->n; i++) {
    loop_t *l = &loops[i];
    l->entry = &c->entries[i];
    l->stop = stop_flag;
    if (!m2d_args_sync(&c->entries[i].args, &l->o, &err)) {
      if (c->entries[i].line > 0)
        m2d_error_prefix(&err, "%s:%d: collection %s: ", c->path, c->entries[i].line, c->entries[i].name);
      else
        m2d_error_prefix(&err, "%s: collection %s: ", c->path, c->entries[i].name);
      goto fail;
    }
    /* two loops on one table would fight over its log */
    for (int j = 0; j < i; j++) {
      const char *a[] = {l->o.table, l->o.changelog_table}, *b[] = {loops[j].o.table, loops[j].o.changelog_table};
      for (int x = 0; x < 2; x++)
        for (int y = 0; y < 2; y++)
          if (a[x] && b[y] && !strcmp(a[x], b[y])) {
            m2d_error_set(&err, M2D_ERR_USAGE, 0, "%s:%d: collections %s and %s both write the table %s", c->path,
                          c->entries[i].line, loops[j].entry->name, l->entry->name, a[x]);
            goto fail;
          }
    }
    conns += 2 + l->o.workers; /* the stream, the snapshot's planner and its workers */
  }
  if (dry_run) {
    for (int i = 0; i < c->n; i++) {
      const m2d_sync_options_t *o = &loops[i].o;
      printf("%s\t%s\t%s%s%s\n", c->entries[i].name, mode_name(o), o->mirror ? o->table : o->changelog_table,
             o->mirror && o->changelog ? "\t" : "", o->mirror && o->changelog ? o->changelog_table : "");
    }
    goto done;
  }
  if (!(pool = m2d_mongo_pool_new(c->uri, conns, &err))) goto fail;
  if (c->metrics_port >= 0) {
    if (!(metrics = m2d_metrics_start(NULL, c->metrics_port, &err))) goto fail;
    m2d_info("metrics (Prometheus text) on http://127.0.0.1:%d/metrics", m2d_metrics_port(metrics));
  }
  m2d_info("syncing %d collection(s) from %s", c->n, c->path);
  for (int i = 0; i < c->n; i++) {
    loops[i].o.stop = stop_flag;
    loops[i].o.pool = pool;
    loops[i].o.shared_metrics = metrics;
    if (pthread_create(&th[i], NULL, loop, &loops[i]) != 0) {
      m2d_error_set(&err, M2D_ERR_INTERNAL, 0, "cannot start a thread for %s", c->entries[i].name);
      *stop_flag = 1;
      break;
    }
    started++;
  }
  int failed = 0;
  for (int i = 0; i < started; i++) pthread_join(th[i], NULL);
  for (int i = 0; i < started; i++) {
    const loop_t *l = &loops[i];
    const m2d_sync_summary_t *s = &l->sum;
    fprintf(stderr,
            "run %s: %lld events (sequence %lld to %lld) in %lld batches: %lld upserts, %lld deletes in the mirror, "
            "%lld change-log rows%s%s\n",
            l->entry->name, (long long)s->events, (long long)s->first_seq, (long long)s->last_seq,
            (long long)s->batches, (long long)s->upserts, (long long)s->deletes, (long long)s->changelog_rows,
            s->snapshotted ? "; initial snapshot done" : s->interrupted ? "; initial snapshot interrupted" : "",
            l->ok ? "" : "; FAILED");
    failed += !l->ok;
  }
  if (started < c->n) goto fail;
  if (failed) {
    for (int i = 0; i < started; i++)
      if (!loops[i].ok) {
        m2d_error_t e = loops[i].err;
        m2d_error_prefix(&e, "%s: ", loops[i].entry->name);
        rc = m2d_cli_fail(&e);
      }
    fprintf(stderr, "mongo2delta: run: %d of %d collection(s) failed (above); the others stopped cleanly\n", failed,
            c->n);
    if (rc == 0) rc = 1;
  }
  goto done;
fail:
  rc = m2d_cli_fail(&err);
done:
  m2d_metrics_stop(metrics);
  if (pool) mongoc_client_pool_destroy(pool);
  free(th);
  free(loops);
  return rc;
}

static int run(const m2d_command_t *cmd, m2d_args_t *args) {
  (void)cmd;
  volatile sig_atomic_t *stop_flag = m2d_cli_stop_on_signals();
  m2d_error_t err = {0};
  m2d_run_config_t c;
  int rc = m2d_run_config_load(&c, m2d_args_get(args, "config"), &err)
               ? m2d_run_collections(&c, m2d_args_flag(args, "dry-run"), stop_flag)
               : m2d_cli_fail(&err);
  m2d_run_config_free(&c);
  return rc;
}

const m2d_command_t m2d_cmd_run = {
    .name = "run",
    .summary = "sync many collections in one process, from a config file",
    .description =
        "Reads a TOML config and runs one sync loop per collection (as 'mongo2delta sync' would, with the\n"
        "same options, tables, positions and exactly-once commits), sharing one MongoDB connection pool and\n"
        "one metrics endpoint (labelled collection=\"db.coll\"). [[collection]] sections name collections\n"
        "one by one; [all-collections] takes every collection of the database matching include and not\n"
        "exclude (glob patterns) into ROOT/<collection>. \"${NAME}\" in a value is the environment variable\n"
        "NAME: keep the URI's password there, never in the file. SIGINT/SIGTERM commit every batch in hand\n"
        "and exit 0; a collection that fails stops the others and the exit status is 1, naming it.\n"
        "\n"
        "  [source]\n"
        "  uri = \"${MONGO_URI}\"\n"
        "  db = \"shop\"\n"
        "  [metrics]\n"
        "  port = 9108\n"
        "  [defaults]\n"
        "  compression = \"zstd\"\n"
        "  [[collection]]\n"
        "  name = \"orders\"\n"
        "  table = \"s3://lake/orders\"\n"
        "  mode = \"both\"\n"
        "  changelog-table = \"s3://lake/orders_changes\"\n"
        "  [all-collections]\n"
        "  table-root = \"s3://lake/mirrors\"\n"
        "  exclude = [\"tmp_*\"]",
    .example = "MONGO_URI=mongodb://127.0.0.1:27017 mongo2delta run --config m2d.toml",
    .opts = opts,
    .run = run,
};
