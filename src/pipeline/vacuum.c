#include "pipeline/vacuum.h"

#include "core/log.h"
#include "core/progress.h"
#include "delta/actions.h"
#include "delta/dv.h"
#include "delta/features.h"
#include "delta/log.h"
#include "delta/txn.h"
#include "storage/store.h"

#include <ctype.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 64
#define MAX_COMMIT ((size_t)512 << 20)

typedef struct {
  m2d_store_t *store;
  char root_real[PATH_MAX]; /* the table directory, symbolic links resolved ("" when unknown) */
  json_t *referenced;       /* key -> true: the current version's data and deletion vector files */
  json_t *removed_at;       /* key -> newest deletionTimestamp of a remove naming it */
  json_t *files;            /* array of {key, size, mtime} found under the table */
} vac_t;

/* --- keys -------------------------------------------------------------------------------- */

/* The store key of a path as the log spells it (URI-encoded, relative or absolute); false when
 * it is outside the table (another directory, another scheme). */
static bool path_key(const vac_t *v, const char *logged, char *out, size_t n) {
  char dec[PATH_MAX];
  delta_path_decode(logged, dec, sizeof dec);
  const char *p = dec;
  if (strncmp(p, "file:", 5) == 0) {
    p += 5;
    if (strncmp(p, "//", 2) == 0) { /* file://authority/path: only an empty authority is local */
      p += 2;
      if (*p != '/') return false;
    }
  } else {
    const char *inside = m2d_store_relative_key(v->store, p);
    if (inside) { /* an absolute URL into this table's own bucket and prefix */
      snprintf(out, n, "%s", inside);
      return true;
    }
    const char *colon = strchr(p, ':'), *slash = strchr(p, '/');
    if (colon && (!slash || colon < slash)) return false; /* another scheme or location */
  }
  if (*p != '/') {
    while (strncmp(p, "./", 2) == 0) p += 2;
    snprintf(out, n, "%s", p);
    return true;
  }
  if (!v->root_real[0]) return false;
  char real[PATH_MAX];
  const char *abs = realpath(p, real) ? real : p; /* a missing file is nothing to delete anyway */
  size_t rl = strlen(v->root_real);
  if (strncmp(abs, v->root_real, rl) != 0 || abs[rl] != '/') return false;
  snprintf(out, n, "%s", abs + rl + 1);
  return true;
}

static bool dv_key(const vac_t *v, const json_t *dv, char *out, size_t n) {
  if (!json_is_object(dv)) return false;
  if (delta_dv_descriptor_key(dv, out, n)) return true;
  const char *type = json_string_value(json_object_get(dv, "storageType"));
  const char *p = json_string_value(json_object_get(dv, "pathOrInlineDv"));
  return type && p && strcmp(type, "p") == 0 && path_key(v, p, out, n);
}

static void note_removed(vac_t *v, const json_t *rm) {
  int64_t ts = json_integer_value(json_object_get(rm, "deletionTimestamp"));
  char key[PATH_MAX];
  const char *path = json_string_value(json_object_get(rm, "path"));
  for (int k = 0; k < 2; k++) {
    bool have = k == 0 ? path && path_key(v, path, key, sizeof key) : dv_key(v, json_object_get(rm, "deletionVector"), key, sizeof key);
    if (!have) continue;
    json_t *old = json_object_get(v->removed_at, key);
    if (!old || json_integer_value(old) < ts) json_object_set_new(v->removed_at, key, json_integer(ts));
  }
}

/* The removes of every JSON commit still in the log (the checkpoint's tombstones come with the
 * snapshot; commits before the checkpoint may name files removed since that it lacks). */
static bool read_removes(vac_t *v, m2d_error_t *err) {
  m2d_store_entry_t *e = NULL;
  size_t n = 0;
  if (!v->store->list(v->store, "_delta_log", &e, &n, err)) return false;
  m2d_buf_t buf;
  m2d_buf_init(&buf, MAX_COMMIT);
  bool ok = true;
  for (size_t i = 0; ok && i < n; i++) {
    const char *name = e[i].name;
    size_t d = 0;
    while (isdigit((unsigned char)name[d])) d++;
    if (d != 20 || strcmp(name + 20, ".json") != 0) continue;
    char key[128];
    snprintf(key, sizeof key, "_delta_log/%s", name);
    ok = v->store->get(v->store, key, &buf, NULL, err);
    json_t *acts = ok ? delta_parse_actions(key, buf.data, buf.len, err) : NULL;
    ok = acts != NULL;
    size_t k;
    json_t *a, *rm;
    json_array_foreach(acts, k, a) if ((rm = json_object_get(a, "remove"))) note_removed(v, rm);
    json_decref(acts);
  }
  m2d_buf_free(&buf);
  m2d_store_entries_free(e, n);
  return ok;
}

/* --- listing ---------------------------------------------------------------------------- */

/* Directories vacuum looks into: not _delta_log, not hidden ones ('_' or '.'), except
 * _change_data at the top and partition directories (a '=' in the name, e.g. _id=1). */
static bool walk(vac_t *v, const char *dir, int depth, m2d_error_t *err) {
  if (depth > MAX_DEPTH) {
    m2d_warn("vacuum: %s/%s is nested more than %d directories deep; not looked into", v->store->root, dir, MAX_DEPTH);
    return true;
  }
  m2d_store_entry_t *e = NULL;
  size_t n = 0;
  if (!v->store->list(v->store, dir, &e, &n, err)) return false;
  bool ok = true;
  for (size_t i = 0; ok && i < n; i++) {
    const char *name = e[i].name;
    char key[PATH_MAX];
    snprintf(key, sizeof key, "%s%s%s", dir, *dir ? "/" : "", name);
    if (e[i].is_dir) {
      bool top = !*dir;
      if (top && strcmp(name, "_delta_log") == 0) continue;
      if (name[0] == '_' && !(top && strcmp(name, "_change_data") == 0) && !strchr(name, '=')) continue;
      ok = walk(v, key, depth + 1, err);
    } else if (name[0] != '_') {
      json_array_append_new(v->files, json_pack("{sssIsI}", "key", key, "size", (json_int_t)e[i].size, "mtime",
                                                (json_int_t)e[i].mtime_ms));
    }
  }
  m2d_store_entries_free(e, n);
  return ok;
}

/* --- the protocol ------------------------------------------------------------------------ */

/* PROTOCOL.md "VACUUM Protocol Check": the writer protocol is checked too. Features that put
 * files where this vacuum would not know them are refused, as are unknown ones. */
static bool check_protocol(const json_t *protocol, bool *can_commit, m2d_error_t *err) {
  if (!delta_features_check(protocol, DELTA_USE_VACUUM,
                            "; files the table needs might look unreferenced, so it is not vacuumed", err))
    return false;
  /* its commits must carry an in-commit timestamp, which ours do not */
  *can_commit = !delta_protocol_has_feature(protocol, "inCommitTimestamp", false);
  return true;
}

/* A commitInfo-only commit (VACUUM START / END). */
static bool commit_info(m2d_store_t *store, int64_t read_version, const char *operation, json_t *params,
                        json_t *metrics, int64_t *version, m2d_error_t *err) {
  delta_txn_t *t = delta_txn_new(store, read_version, operation, err);
  if (!t) return false;
  const char *k;
  json_t *x;
  json_object_foreach(params, k, x) delta_txn_param(t, k, json_string_value(x));
  json_object_foreach(metrics, k, x) delta_txn_metric(t, k, json_integer_value(x));
  bool ok = delta_txn_commit(t, version, err);
  delta_txn_destroy(t);
  return ok;
}

/* --- the run ----------------------------------------------------------------------------- */

void m2d_vacuum_summary_free(m2d_vacuum_summary_t *s) {
  if (!s) return;
  json_decref(s->deleted);
  s->deleted = NULL;
}

bool m2d_vacuum_run(const m2d_vacuum_options_t *o, m2d_vacuum_summary_t *s, m2d_error_t *err) {
  memset(s, 0, sizeof *s);
  s->version = s->start_version = s->end_version = -1;
  s->deleted = json_array();
  vac_t v = {0};
  v.store = m2d_store_open(o->table, err);
  if (!v.store) return false;
  v.referenced = json_object();
  v.removed_at = json_object();
  v.files = json_array();
  if (!realpath(v.store->root, v.root_real)) v.root_real[0] = '\0';
  delta_snapshot_t snap;
  bool have = false, can_commit = false, ok = have = delta_snapshot_load(v.store, -1, &snap, err);
  ok = ok && check_protocol(snap.protocol, &can_commit, err);
  int64_t table_retain = ok ? delta_deleted_file_retention_ms(snap.metadata) : 0;
  if (ok) {
    s->version = snap.version;
    s->retain_ms = o->retain_hours >= 0 ? o->retain_hours * 3600 * 1000 : table_retain;
    if (s->retain_ms < table_retain && !o->force)
      ok = m2d_error_set(err, M2D_ERR_USAGE, 0,
                         "--retain-hours %lld is less than the table's retention of %lld hours: the files it would "
                         "delete may still be read by queries running now, by time travel to recent versions, or "
                         "be a writer's files not committed yet; give --force if no one reads or writes the table "
                         "meanwhile",
                         (long long)o->retain_hours, (long long)(table_retain / 3600000));
  }
  char key[PATH_MAX];
  size_t i;
  json_t *a;
  if (ok) {
    json_array_foreach(snap.files, i, a) {
      const char *p = json_string_value(json_object_get(a, "path"));
      if (p && path_key(&v, p, key, sizeof key)) json_object_set_new(v.referenced, key, json_true());
      if (dv_key(&v, json_object_get(a, "deletionVector"), key, sizeof key))
        json_object_set_new(v.referenced, key, json_true());
    }
    json_array_foreach(snap.tombstones, i, a) note_removed(&v, a);
    ok = read_removes(&v, err) && walk(&v, "", 0, err);
  }
  /* what goes */
  json_t *doomed = json_array();
  int64_t doomed_bytes = 0;
  int64_t now = delta_now_ms(), cutoff = now - s->retain_ms;
  if (ok) {
    json_array_foreach(v.files, i, a) {
      const char *k = json_string_value(json_object_get(a, "key"));
      if (json_object_get(v.referenced, k)) continue;
      int64_t t = json_integer_value(json_object_get(a, "mtime"));
      json_t *rm = json_object_get(v.removed_at, k);
      if (rm && json_integer_value(rm) > t) t = json_integer_value(rm);
      if (t >= cutoff) {
        s->files_retained++;
        continue;
      }
      json_array_append_new(doomed, json_pack("{sOsO}", "path", json_object_get(a, "key"), "size", json_object_get(a, "size")));
      doomed_bytes += json_integer_value(json_object_get(a, "size"));
    }
  }
  if (ok && !o->dry_run) {
    /* unfinished uploads of killed writers (S3 multipart) are garbage of the same kind */
    int aborted = 0;
    ok = m2d_store_abort_uploads(v.store, cutoff, &aborted, err);
    if (ok && aborted) m2d_info("%s: %d unfinished upload(s) older than the retention aborted", v.store->root, aborted);
  }
  if (ok && o->dry_run) {
    json_array_extend(s->deleted, doomed);
    s->files_deleted = (int64_t)json_array_size(doomed);
    s->bytes_deleted = doomed_bytes;
  } else if (ok && json_array_size(doomed)) {
    int64_t read_version = snap.version;
    if (can_commit) {
      /* every value a string, as Spark's DESCRIBE HISTORY reads them */
      json_t *params = json_object();
      char num[32];
      json_object_set_new(params, "retentionCheckEnabled", json_string(o->force ? "false" : "true"));
      snprintf(num, sizeof num, "%" PRId64, table_retain);
      json_object_set_new(params, "defaultRetentionMillis", json_string(num));
      snprintf(num, sizeof num, "%" PRId64, s->retain_ms);
      json_object_set_new(params, "specifiedRetentionMillis", json_string(num));
      json_t *metrics = json_pack("{sIsI}", "numFilesToDelete", (json_int_t)json_array_size(doomed), "sizeOfDataToDelete",
                                  (json_int_t)doomed_bytes);
      ok = commit_info(v.store, read_version, "VACUUM START", params, metrics, &s->start_version, err);
      json_decref(params);
      json_decref(metrics);
      if (ok) read_version = s->start_version;
    }
    m2d_progress_t line;
    m2d_progress_begin(&line, "files", (int64_t)json_array_size(doomed), "vacuum %s (deleting)", v.store->root);
    json_array_foreach(doomed, i, a) {
      if (!ok) break;
      if (o->stop && *o->stop) {
        s->interrupted = true;
        break;
      }
      const char *k = json_string_value(json_object_get(a, "path"));
      if (!v.store->remove(v.store, k, err)) {
        ok = false;
        break;
      }
      /* a Hadoop checksum file (.NAME.crc) next to it goes with it */
      const char *slash = strrchr(k, '/');
      snprintf(key, sizeof key, "%.*s%s.%s.crc", slash ? (int)(slash - k) : 0, k, slash ? "/" : "", slash ? slash + 1 : k);
      m2d_error_t ignored;
      v.store->remove(v.store, key, &ignored);
      m2d_debug("vacuum: deleted %s", k);
      json_array_append(s->deleted, a);
      s->files_deleted++;
      s->bytes_deleted += json_integer_value(json_object_get(a, "size"));
      m2d_progress_set(&line, s->files_deleted, s->bytes_deleted);
    }
    m2d_progress_end(&line);
    if (can_commit && s->start_version >= 0) {
      m2d_error_t e2 = {0};
      json_t *params = json_pack("{ss}", "status", ok && !s->interrupted ? "COMPLETED" : "FAILED");
      json_t *metrics = json_pack("{sIsI}", "numDeletedFiles", (json_int_t)s->files_deleted, "numVacuumedDirectories",
                                  (json_int_t)0);
      bool end_ok = commit_info(v.store, read_version, "VACUUM END", params, metrics, &s->end_version, ok ? err : &e2);
      if (!end_ok && !ok) m2d_warn("vacuum: the VACUUM END commit was not written either: %s", e2.message);
      ok = ok && end_ok;
      json_decref(params);
      json_decref(metrics);
    }
  }
  json_decref(doomed);
  if (have) delta_snapshot_free(&snap);
  json_decref(v.referenced);
  json_decref(v.removed_at);
  json_decref(v.files);
  m2d_store_destroy(v.store);
  return ok;
}
