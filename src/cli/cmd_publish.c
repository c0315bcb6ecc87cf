/* mongo2delta publish: a Delta table, or what changed in it, into a MongoDB collection. */
#include "cli/commands.h"
#include "core/log.h"
#include "core/progress.h"
#include "pipeline/publish.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const m2d_opt_spec_t opts[] = {
    M2D_OPT_TABLE(", written by anyone"),
    M2D_OPTS_COLLECTION("", "target collection", true),
    {"key", "FIELD[,FIELD...]", "fields that identify a document", "_id", false},
    {"mode", "MODE", "upsert ($set the row's fields), replace (the whole document) or insert", "upsert", false},
    {"incremental", NULL, "only what changed since the last publish of this table into this collection", NULL, false},
    {"from-version", "N", "publish the changes made by table version N and later", NULL, false},
    {"delete-missing", NULL, "delete documents whose row is gone (deleted rows; with a full publish: every key not in the table)",
     NULL, false},
    {"batch-size", "N", "writes per bulk request", "1000", false},
    M2D_OPT_END,
};

static int run(const m2d_command_t *cmd, m2d_args_t *args) {
  (void)cmd;
  volatile sig_atomic_t *stop_flag = m2d_cli_stop_on_signals();
  m2d_error_t err = {0};
  m2d_publish_options_t o = {.table = m2d_args_get(args, "table"), .uri = m2d_args_get(args, "uri"),
                             .db = m2d_args_get(args, "db"), .collection = m2d_args_get(args, "collection"),
                             .from_version = -1, .stop = stop_flag};
  static const char *const modes[] = {"upsert", "replace", "insert", NULL};
  static const m2d_publish_mode_t mode_values[] = {M2D_PUBLISH_UPSERT, M2D_PUBLISH_REPLACE, M2D_PUBLISH_INSERT};
  int mode = 0;
  int64_t batch = 1000;
  if (!m2d_args_choice(args, "mode", modes, &mode, &err) ||
      !m2d_args_int(args, "batch-size", 1, 100000, &batch, &err) ||
      !m2d_args_int_if_given(args, "from-version", 0, INT64_MAX, &o.from_version, &err))
    return m2d_cli_fail(&err);
  o.mode = mode_values[mode];
  o.batch_size = (int)batch;
  o.incremental = m2d_args_flag(args, "incremental");
  o.delete_missing = m2d_args_flag(args, "delete-missing");
  if (o.incremental && o.from_version >= 0) {
    m2d_error_set(&err, M2D_ERR_USAGE, 0, "--incremental and --from-version exclude each other");
    return m2d_cli_fail(&err);
  }
  /* the key list */
  char keybuf[1024];
  snprintf(keybuf, sizeof keybuf, "%s", m2d_args_get(args, "key"));
  const char *keys[32];
  int nkeys = 0;
  for (char *save = NULL, *k = strtok_r(keybuf, ",", &save); k && nkeys < 32; k = strtok_r(NULL, ",", &save))
    keys[nkeys++] = k;
  if (nkeys == 0) {
    m2d_error_set(&err, M2D_ERR_USAGE, 0, "--key needs at least one field");
    return m2d_cli_fail(&err);
  }
  o.keys = keys;
  o.nkeys = nkeys;
  o.progress = m2d_progress_wanted();
  m2d_publish_summary_t s;
  bool ok = m2d_publish_run(&o, &s, &err);
  if (ok && s.nothing_to_do) {
    fprintf(stderr, "publish: %s.%s is up to date with version %lld of the table; nothing to write\n", o.db,
            o.collection, (long long)s.to_version);
  } else if (ok || s.rows) {
    char from[64] = "everything";
    if (s.from_version >= 0) snprintf(from, sizeof from, "changes after version %lld", (long long)s.from_version);
    fprintf(stderr,
            "publish: %s of version %lld -> %s.%s: %lld rows read, %lld unchanged; %lld inserted, %lld upserted, "
            "%lld modified (%lld matched), %lld deleted, %lld failed%s%s\n",
            from, (long long)s.to_version, o.db, o.collection, (long long)s.rows, (long long)s.unchanged,
            (long long)s.inserted, (long long)s.upserted, (long long)s.modified, (long long)s.matched,
            (long long)s.deleted, (long long)s.failed, s.failed ? "; first failure: " : "", s.first_failure);
  }
  if (!ok) return m2d_cli_fail(&err);
  if (s.failed) {
    m2d_error_set(&err, M2D_ERR_MONGO, 0, "%lld write(s) failed (see above); the version was recorded as published",
                  (long long)s.failed);
    return m2d_cli_fail(&err);
  }
  return 0;
}

const m2d_command_t m2d_cmd_publish = {
    .name = "publish",
    .summary = "write a Delta table (or its changes) into a MongoDB collection",
    .description =
        "Reads a Delta table written by anyone (Spark and Databricks included: deletion vectors, column\n"
        "mapping, partitions, checkpoints) and writes its rows into a collection with unordered bulk writes,\n"
        "keyed by --key. Types come back as BSON: decimal -> Decimal128, timestamp -> date, struct ->\n"
        "document; columns that came from MongoDB through mongo2delta come back as their original BSON\n"
        "types (ObjectId, UUID, Decimal128, timestamps), rescued values included. With --incremental only\n"
        "the rows changed since the last publish are written; the version published is kept in the\n"
        "target database (collection mongo2delta_publish).",
    .example = "mongo2delta publish --table ./lake/scores --uri mongodb://127.0.0.1:27017 --db crm --collection "
               "scores --incremental --delete-missing",
    .opts = opts,
    .run = run,
};
