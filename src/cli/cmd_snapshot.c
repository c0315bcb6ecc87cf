/* mongo2delta snapshot: a collection (or every collection of a database) into Delta tables,
 * in parallel, resumable. */
#include "cli/commands.h"
#include "storage/store.h"
#include "core/log.h"
#include "core/progress.h"
#include "mongo/client.h"
#include "parquet/compress.h"
#include "pipeline/snapshot.h"

#include <fnmatch.h>
#include <signal.h>
#include <sys/resource.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const m2d_opt_spec_t opts[] = {
    M2D_OPTS_COLLECTION("", "collection (or --all-collections)", false),
    {"table", "PATH", "the Delta table: a local path or an " M2D_URL_FORMS " URL (created when missing)", NULL, false},
    {"all-collections", NULL, "every collection of the database, each into ROOT/<collection>", NULL, false},
    {"table-root", "PATH", "with --all-collections: where the tables go (a folder or an " M2D_URL_FORMS " URL)", NULL, false},
    {"include", "GLOBS", "with --all-collections: only collections matching one of these comma-separated patterns", "*",
     false},
    {"exclude", "GLOBS", "with --all-collections: not the collections matching one of these comma-separated patterns",
     NULL, false},
    {"workers", "N", "parallel readers, each with its own connection", "4", false},
    {"filter", "JSON", "only documents matching this query (Extended JSON)", NULL, false},
    {"projection", "JSON", "only these fields (Extended JSON projection)", NULL, false},
    M2D_OPTS_COMPRESSION,
    M2D_OPT_TARGET_FILE_SIZE,
    {"partition-by", "FIELD", "partition a new table by this top-level field", "none", false},
    {"restart", NULL, "empty the table (in one commit) and load it again from the start", NULL, false},
    M2D_OPT_END,
};

/* Peak resident memory of this program, in MiB: VmHWM of /proc/self/status (getrusage's
 * ru_maxrss also counts the parent's memory at fork, which misreports a child of a big
 * process). */
static long peak_mib(void) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long kb = -1;
  while (f && fgets(line, sizeof line, f))
    if (sscanf(line, "VmHWM: %ld kB", &kb) == 1) break;
  if (f) fclose(f);
  if (kb < 0) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    kb = ru.ru_maxrss;
  }
  return kb / 1024;
}

static void print_summary(const char *what, const m2d_snapshot_summary_t *s) {
  if (s->already_complete) {
    fprintf(stderr, "snapshot %s: already complete (all %d ranges committed); --restart loads it again\n", what,
            s->ranges);
    return;
  }
  fprintf(stderr,
          "snapshot %s: %lld documents (%.1f MB of BSON) in %.1f s; %lld data file(s), %lld bytes; %d range(s)%s%s; "
          "table version %lld; %lld value(s) rescued; peak memory %ld MiB\n",
          what, (long long)s->documents, (double)s->bytes_read / 1e6, s->seconds, (long long)s->data_files,
          (long long)s->bytes_written, s->ranges, s->ranges_before ? ", resumed after " : "",
          s->ranges_before ? "earlier ranges" : "", (long long)s->version, (long long)s->rescued, peak_mib());
  const char *path;
  json_t *v;
  json_object_foreach(s->rescued_fields, path, v)
      fprintf(stderr, "  rescued into _rescued_data: %-40s %lld\n", path, (long long)json_integer_value(v));
  if (s->interrupted)
    fprintf(stderr, "snapshot %s: interrupted; what is committed stays; run the same command to finish\n", what);
}

static bool one(m2d_snapshot_options_t *o, m2d_error_t *err, bool *interrupted) {
  m2d_snapshot_summary_t s;
  *interrupted = false;
  if (!m2d_store_abort_orphan_uploads(o->table, err)) return false;
  bool ok = m2d_snapshot_run(o, &s, err);
  char what[512];
  snprintf(what, sizeof what, "%s.%s -> %s", o->db, o->collection, o->table);
  if (ok) print_summary(what, &s);
  *interrupted = s.interrupted;
  m2d_snapshot_summary_free(&s);
  return ok;
}

/* Whether name matches one of the comma-separated glob patterns in globs. */
static bool matches(const char *globs, const char *name) {
  while (globs && *globs) {
    size_t n = strcspn(globs, ",");
    char pat[512];
    snprintf(pat, sizeof pat, "%.*s", (int)n, globs);
    if (n && fnmatch(pat, name, 0) == 0) return true;
    globs += n + (globs[n] == ',');
  }
  return false;
}

static int run(const m2d_command_t *cmd, m2d_args_t *args) {
  (void)cmd;
  volatile sig_atomic_t *stop_flag = m2d_cli_stop_on_signals();
  m2d_error_t err = {0};
  m2d_snapshot_options_t o = {.uri = m2d_args_get(args, "uri"), .db = m2d_args_get(args, "db"),
                              .codec = PQ_CODEC_SNAPPY, .stop = stop_flag};
  bool all = m2d_args_flag(args, "all-collections");
  if (all == m2d_args_flag(args, "collection") ||
      (!all && !m2d_args_flag(args, "table")) || (all && !m2d_args_flag(args, "table-root"))) {
    m2d_error_set(&err, M2D_ERR_USAGE, 0,
                  "give --collection C --table PATH, or --all-collections --table-root ROOT");
    return m2d_cli_fail(&err);
  }
  if (!all && (m2d_args_flag(args, "include") || m2d_args_flag(args, "exclude"))) {
    m2d_error_set(&err, M2D_ERR_USAGE, 0, "--include and --exclude go with --all-collections");
    return m2d_cli_fail(&err);
  }
  int64_t workers = 4;
  if (!m2d_args_int(args, "workers", 1, 64, &workers, &err) || !m2d_args_compression(args, &o.codec, &o.level, &err) ||
      !m2d_args_target_file_size(args, &o.target_file_size, &err))
    return m2d_cli_fail(&err);
  o.workers = (int)workers;
  if (m2d_args_flag(args, "filter")) o.filter = m2d_args_get(args, "filter");
  if (m2d_args_flag(args, "projection")) o.projection = m2d_args_get(args, "projection");
  if (m2d_args_flag(args, "partition-by")) o.partition_by = m2d_args_get(args, "partition-by");
  o.restart = m2d_args_flag(args, "restart");
  o.progress = m2d_progress_wanted();
  bool interrupted = false, ok = true;
  if (!all) {
    o.collection = m2d_args_get(args, "collection");
    o.table = m2d_args_get(args, "table");
    ok = one(&o, &err, &interrupted);
  } else {
    m2d_mongo_global_init();
    mongoc_client_t *client = m2d_mongo_client_new(o.uri, &err);
    mongoc_database_t *db = client ? mongoc_client_get_database(client, o.db) : NULL;
    bson_error_t e;
    char **names = db ? mongoc_database_get_collection_names_with_opts(db, NULL, &e) : NULL;
    if (db && !names) m2d_mongo_error(&err, &e, "cannot list the database's collections");
    ok = names != NULL;
    for (int i = 0; ok && names[i] && !*stop_flag; i++) {
      if (strncmp(names[i], "system.", 7) == 0 || !matches(m2d_args_get(args, "include"), names[i]) ||
          matches(m2d_args_get(args, "exclude"), names[i]))
        continue;
      char table[4096];
      snprintf(table, sizeof table, "%s/%s", m2d_args_get(args, "table-root"), names[i]);
      o.collection = names[i];
      o.table = table;
      ok = one(&o, &err, &interrupted);
      if (!ok) m2d_error_prefix(&err, "%s.%s: ", o.db, names[i]);
    }
    bson_strfreev(names);
    if (db) mongoc_database_destroy(db);
    if (client) mongoc_client_destroy(client);
  }
  if (!ok) return m2d_cli_fail(&err);
  return interrupted || *stop_flag ? 130 : 0;
}

const m2d_command_t m2d_cmd_snapshot = {
    .name = "snapshot",
    .summary = "copy a collection into a Delta table, in parallel, resumable",
    .description =
        "Reads the collection in _id ranges with --workers parallel connections and writes it as a Delta\n"
        "table: the schema learned from every document read (docs/type-mapping.md), values that do not\n"
        "fit kept in _rescued_data, one commit per range. The plan and the ranges done live in the table's\n"
        "log: after a crash or Ctrl-C the same command finishes the load without reading committed ranges\n"
        "again. Ctrl-C (or SIGTERM) keeps what is committed and exits with status 130.",
    .example = "mongo2delta snapshot --uri mongodb://127.0.0.1:27017 --db shop --collection orders --table ./lake/orders",
    .opts = opts,
    .run = run,
};
