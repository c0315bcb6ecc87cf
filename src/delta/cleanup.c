#include "delta/cleanup.h"

#include "delta/checkpoint_v2.h"

#include "core/log.h"
#include "delta/log.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_RETENTION_MS ((int64_t)30 * 24 * 3600 * 1000)
#define DAY_MS ((int64_t)24 * 3600 * 1000)

static const char *config(const json_t *metadata, const char *key) {
  return json_string_value(json_object_get(json_object_get(metadata, "configuration"), key));
}

bool delta_log_retention_ms(const json_t *metadata, int64_t *ms, m2d_error_t *err) {
  const char *s = config(metadata, "delta.logRetentionDuration");
  if (!s) {
    *ms = DEFAULT_RETENTION_MS;
    return true;
  }
  if (delta_interval_parse(s, ms)) return true;
  return m2d_error_set(err, M2D_ERR_FORMAT, 0,
                       "the table property delta.logRetentionDuration is '%s', which is not an interval; set it "
                       "to one like 'interval 30 days' (units: second, minute, hour, day, week)",
                       s);
}

/* The leading version of a log file name and what follows it; false for other names. */
static bool log_version(const char *name, int64_t *v, const char **rest) {
  for (int i = 0; i < 20; i++)
    if (!isdigit((unsigned char)name[i])) return false;
  *v = strtoll(name, NULL, 10);
  *rest = name + 20;
  return true;
}

/* Whether rest names a classic checkpoint (".checkpoint.parquet") or a part of a multi-part one
 * (".checkpoint.<i>.<n>.parquet": *part, *parts); v2 (UUID-named) ones set *v2. */
static bool checkpoint_name(const char *rest, int *part, int *parts, bool *v2) {
  *part = *parts = 1;
  *v2 = false;
  if (strncmp(rest, ".checkpoint.", 12) != 0) return false;
  const char *t = rest + 11;
  if (strcmp(t, ".parquet") == 0) return true;
  char tail[16];
  if (sscanf(t, ".%d.%d.%15s", part, parts, tail) == 3 && strcmp(tail, "parquet") == 0) return true;
  *v2 = delta_cp2_uuid_name(rest, NULL);
  return *v2;
}

/* Whether the commit key holds the latest txn of an application (txns: appId -> version) and
 * a stream position in its commitInfo (sync's resume token, which a checkpoint does not carry).
 * load's txns (one application per input file) carry none. Unreadable commits are kept too. */
static bool holds_latest_txn(m2d_store_t *store, const char *key, const json_t *txns) {
  if (!json_object_size(txns)) return false;
  m2d_buf_t b;
  m2d_buf_init(&b, (size_t)512 << 20);
  bool keep = true;
  json_t *acts = store->get(store, key, &b, NULL, NULL) ? delta_parse_actions(key, b.data, b.len, NULL) : NULL;
  m2d_buf_free(&b);
  if (acts) {
    keep = false;
    size_t i;
    json_t *a, *t;
    bool position = false, latest = false;
    json_array_foreach(acts, i, a) {
      if ((t = json_object_get(a, "commitInfo")) && json_object_get(json_object_get(t, "mongo2delta"), "resumeToken"))
        position = true;
      const char *app;
      json_t *v;
      if ((t = json_object_get(a, "txn")) && (app = json_string_value(json_object_get(t, "appId"))) &&
          (v = json_object_get(txns, app)) && json_integer_value(v) == json_integer_value(json_object_get(t, "version")))
        latest = true;
    }
    keep = position && latest;
  }
  json_decref(acts);
  return keep;
}

/* PROTOCOL.md "Metadata Cleanup": the sidecars no kept checkpoint (version >= cp) names go too,
 * once older than before_ms, so that a checkpoint being written, which names them only when it
 * lands, keeps its own. A kept checkpoint that cannot be read keeps every sidecar. */
static void remove_orphan_sidecars(m2d_store_t *store, const m2d_store_entry_t *e, size_t n, int64_t cp,
                                   int64_t before_ms, int *count) {
  m2d_store_entry_t *sc = NULL;
  size_t ns = 0;
  m2d_error_t err = {0};
  if (!store->list(store, "_delta_log/_sidecars", &sc, &ns, &err)) {
    m2d_warn("log cleanup: the sidecars were not listed (none removed): %s", err.message);
    return;
  }
  bool any_old = false;
  for (size_t i = 0; i < ns; i++) {
    size_t len = strlen(sc[i].name);
    any_old |= !sc[i].is_dir && sc[i].mtime_ms > 0 && sc[i].mtime_ms <= before_ms && len > 8 &&
               strcmp(sc[i].name + len - 8, ".parquet") == 0;
  }
  json_t *refs = any_old ? json_array() : NULL;
  bool ok = true;
  for (size_t i = 0; ok && refs && i < n; i++) {
    int64_t v;
    const char *rest;
    int part, parts;
    bool v2;
    if (e[i].is_dir || !log_version(e[i].name, &v, &rest) || v < cp || !checkpoint_name(rest, &part, &parts, &v2))
      continue;
    char key[1200];
    snprintf(key, sizeof key, "_delta_log/%s", e[i].name);
    ok = delta_checkpoint_sidecars(store, key, refs, &err);
  }
  if (!ok) m2d_warn("log cleanup: a kept checkpoint was not readable, so no sidecar was removed: %s", err.message);
  json_t *named = json_object();
  size_t k;
  json_t *r;
  json_array_foreach(refs, k, r) {
    char key[1200];
    if (delta_cp2_sidecar_key(r, key, sizeof key)) json_object_set_new(named, key, json_true());
  }
  for (size_t i = 0; ok && refs && i < ns; i++) {
    size_t len = strlen(sc[i].name);
    if (sc[i].is_dir || sc[i].mtime_ms <= 0 || sc[i].mtime_ms > before_ms || len <= 8 ||
        strcmp(sc[i].name + len - 8, ".parquet") != 0)
      continue;
    char key[1200];
    snprintf(key, sizeof key, "_delta_log/_sidecars/%s", sc[i].name);
    if (json_object_get(named, key)) continue;
    if (!store->remove(store, key, &err)) {
      m2d_warn("log cleanup: sidecar %s was not removed: %s", key, err.message);
      break;
    }
    (*count)++;
  }
  json_decref(named);
  json_decref(refs);
  m2d_store_entries_free(sc, ns);
}

bool delta_log_cleanup(m2d_store_t *store, const json_t *metadata, const json_t *txns, int64_t now_ms, int *removed,
                       int64_t *kept_from, m2d_error_t *err) {
  if (removed) *removed = 0;
  if (kept_from) *kept_from = -1;
  const char *enabled = config(metadata, "delta.enableExpiredLogCleanup");
  if (enabled && strcmp(enabled, "false") == 0) return true;
  int64_t retention;
  if (!delta_log_retention_ms(metadata, &retention, err)) return false;
  int64_t cutoff = now_ms - retention;

  m2d_store_entry_t *e = NULL;
  size_t n = 0;
  if (!store->list(store, "_delta_log", &e, &n, err)) return false;
  /* the cutoff commit: the newest JSON commit not newer than the cutoff */
  int64_t cutoff_commit = -1;
  for (size_t i = 0; i < n; i++) {
    int64_t v;
    const char *rest;
    if (!log_version(e[i].name, &v, &rest)) continue;
    /* a time the store did not give (0) is not taken for an old one */
    if (strcmp(rest, ".json") == 0 && e[i].mtime_ms > 0 && e[i].mtime_ms <= cutoff && v > cutoff_commit)
      cutoff_commit = v;
  }
  /* v2 checkpoints count too; the sidecars in _delta_log/_sidecars are never removed here, so
   * no kept v2 checkpoint loses one */
  int64_t cp = -1;
  if (cutoff_commit >= 0) {
    /* the cutoff checkpoint: the newest complete classic, multi-part or v2 one at or below it */
    for (size_t i = 0; i < n; i++) {
      int64_t v;
      const char *rest;
      int part, parts;
      bool is_v2;
      if (!log_version(e[i].name, &v, &rest) || v > cutoff_commit || v <= cp) continue;
      if (!checkpoint_name(rest, &part, &parts, &is_v2) || parts < 1 || parts > 100000) continue;
      int have = 0;
      for (size_t k = 0; k < n; k++) {
        int64_t kv;
        const char *krest;
        int kpart, kparts;
        bool kv2;
        if (log_version(e[k].name, &kv, &krest) && kv == v && checkpoint_name(krest, &kpart, &kparts, &kv2) &&
            kparts == parts && !kv2)
          have++;
      }
      if (is_v2 || have == parts) cp = v;
    }
  }
  bool ok = true;
  int count = 0;
  if (cp > 0) {
    /* everything before the cutoff checkpoint: commits, checkpoints, checksums, compactions */
    for (size_t i = 0; ok && i < n; i++) {
      int64_t v;
      const char *rest;
      if (e[i].is_dir || !log_version(e[i].name, &v, &rest) || v >= cp) continue;
      size_t len = strlen(rest);
      bool known = strcmp(rest, ".json") == 0 || strcmp(rest, ".crc") == 0 || strncmp(rest, ".checkpoint.", 12) == 0 ||
                   (len > 15 && strcmp(rest + len - 15, ".compacted.json") == 0);
      if (!known) continue;
      char key[1200];
      snprintf(key, sizeof key, "_delta_log/%s", e[i].name);
      if (strcmp(rest, ".json") == 0 && holds_latest_txn(store, key, txns)) continue;
      ok = store->remove(store, key, err);
      if (ok) count++;
    }
    /* a day at least, as the protocol asks, for checkpoints being written */
    if (ok) remove_orphan_sidecars(store, e, n, cp, cutoff < now_ms - DAY_MS ? cutoff : now_ms - DAY_MS, &count);
    if (ok && kept_from) *kept_from = cp;
    if (count) m2d_debug("log cleanup: removed %d files before checkpoint %" PRId64, count, cp);
  }
  if (removed) *removed = count;
  m2d_store_entries_free(e, n);
  return ok;
}
