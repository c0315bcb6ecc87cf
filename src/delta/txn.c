#include "delta/txn.h"

#include "core/log.h"
#include "delta/actions.h"
#include "delta/checkpoint.h"
#include "version.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Lost races retried before giving up: each retry means another writer committed, so this
 * only ends a transaction that keeps losing for a very long time. */
#define MAX_ATTEMPTS 100000

struct delta_txn {
  m2d_store_t *store;
  int64_t read_version;
  char operation[64];
  json_t *meta_actions; /* protocol and metaData, written first */
  json_t *actions;      /* the rest */
  json_t *params, *metrics, *info;
  json_t *removed;      /* decoded path -> true, for each remove of ours */
  json_t *apps;         /* appId -> true, for each txn action of ours */
  bool changes_table;
  int checkpoint_interval;
};

delta_txn_t *delta_txn_new(m2d_store_t *store, int64_t read_version, const char *operation, m2d_error_t *err) {
  delta_txn_t *t = calloc(1, sizeof *t);
  if (!t) return m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory"), NULL;
  t->store = store;
  t->read_version = read_version;
  snprintf(t->operation, sizeof t->operation, "%s", operation);
  t->meta_actions = json_array();
  t->actions = json_array();
  t->params = json_object();
  t->metrics = json_object();
  t->info = json_object();
  t->removed = json_object();
  t->apps = json_object();
  return t;
}

void delta_txn_destroy(delta_txn_t *t) {
  if (!t) return;
  json_decref(t->meta_actions);
  json_decref(t->actions);
  json_decref(t->params);
  json_decref(t->metrics);
  json_decref(t->info);
  json_decref(t->removed);
  json_decref(t->apps);
  free(t);
}

bool delta_txn_add(delta_txn_t *t, json_t *action, m2d_error_t *err) {
  if (!action) return m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory building an action");
  json_t *v;
  if (json_object_get(action, "protocol") || json_object_get(action, "metaData")) {
    t->changes_table = true;
    json_array_append_new(t->meta_actions, action);
    return true;
  }
  if ((v = json_object_get(action, "txn"))) {
    const char *app = json_string_value(json_object_get(v, "appId"));
    if (!app || json_object_get(t->apps, app)) {
      json_decref(action);
      return m2d_error_set(err, M2D_ERR_INTERNAL, 0, "a commit holds one txn action per application id");
    }
    json_object_set_new(t->apps, app, json_true());
  }
  if ((v = json_object_get(action, "remove"))) {
    char path[4096];
    delta_path_decode(json_string_value(json_object_get(v, "path")) ?: "", path, sizeof path);
    json_object_set_new(t->removed, path, json_true());
  }
  json_array_append_new(t->actions, action);
  return true;
}

void delta_txn_param(delta_txn_t *t, const char *key, const char *value) {
  json_object_set_new(t->params, key, json_string(value));
}

void delta_txn_metric(delta_txn_t *t, const char *key, int64_t value) {
  char s[32];
  snprintf(s, sizeof s, "%" PRId64, value);
  json_object_set_new(t->metrics, key, json_string(s)); /* Spark reads these as strings */
}

void delta_txn_info(delta_txn_t *t, const char *key, json_t *value) { json_object_set_new(t->info, key, value); }

void delta_txn_set_checkpoint_interval(delta_txn_t *t, int interval) { t->checkpoint_interval = interval; }

static bool append_line(m2d_buf_t *o, json_t *action, m2d_error_t *err) {
  char *s = json_dumps(action, JSON_COMPACT);
  bool ok = s && m2d_buf_append_str(o, s, err) && m2d_buf_append_byte(o, '\n', err);
  if (!s) m2d_error_set(err, M2D_ERR_INTERNAL, 0, "an action cannot be written as JSON");
  free(s);
  return ok;
}

static bool build(delta_txn_t *t, int64_t version, m2d_buf_t *o, m2d_error_t *err) {
  char txn_id[37];
  delta_uuid4(txn_id);
  json_t *ci = json_pack("{sIsssOsO}", "timestamp", (json_int_t)delta_now_ms(), "operation", t->operation,
                         "operationParameters", t->params, "operationMetrics", t->metrics);
  if (!ci) return m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory");
  if (version > 0 && t->read_version >= 0) json_object_set_new(ci, "readVersion", json_integer(t->read_version));
  json_object_set_new(ci, "isolationLevel", json_string("Serializable"));
  /* a commit that removes files is not a blind append either */
  json_object_set_new(ci, "isBlindAppend", json_boolean(!t->changes_table && json_object_size(t->removed) == 0));
  json_object_set_new(ci, "engineInfo", json_string("mongo2delta/" M2D_VERSION));
  json_object_set_new(ci, "txnId", json_string(txn_id));
  json_object_update(ci, t->info);
  json_t *wrap = json_pack("{so}", "commitInfo", ci);
  m2d_buf_reset(o);
  bool ok = append_line(o, wrap, err);
  json_decref(wrap);
  size_t i;
  json_t *a;
  json_array_foreach(t->meta_actions, i, a) ok = ok && append_line(o, a, err);
  json_array_foreach(t->actions, i, a) ok = ok && append_line(o, a, err);
  return ok;
}

/* Whether the commit that won version v conflicts with ours (see txn.h). A remove of a file we
 * remove is looked for first: it is never retried, also when the same commit changes the
 * schema (a retry after a schema change would start from a version that no longer shows it). */
static bool check_winner(delta_txn_t *t, int64_t v, m2d_error_t *err) {
  char key[64];
  snprintf(key, sizeof key, "_delta_log/%020" PRId64 ".json", v);
  m2d_buf_t data;
  m2d_buf_init(&data, (size_t)512 << 20);
  bool ok = t->store->get(t->store, key, &data, NULL, err);
  json_t *actions = ok ? delta_parse_actions(key, data.data, data.len, err) : NULL;
  m2d_buf_free(&data);
  if (!actions) return false;
  size_t i;
  json_t *a, *x;
  if (json_object_size(t->removed)) {
    json_array_foreach(actions, i, a) {
      if (!(x = json_object_get(a, "remove"))) continue;
      char path[4096];
      delta_path_decode(json_string_value(json_object_get(x, "path")) ?: "", path, sizeof path);
      if (!json_object_get(t->removed, path)) continue;
      json_decref(actions);
      return m2d_error_set(err, M2D_ERR_CONFLICT, DELTA_CONFLICT_FILES,
                           "version %" PRId64 " of the table, committed by another writer while this one ran, "
                           "removed the file %s, which this commit removes too (it was deleted or rewritten "
                           "concurrently); nothing was committed: run the command again",
                           v, path);
    }
  }
  json_array_foreach(actions, i, a) {
    if (json_object_get(a, "metaData") || json_object_get(a, "protocol")) {
      ok = m2d_error_set(err, M2D_ERR_CONFLICT, DELTA_CONFLICT_METADATA,
                         "version %" PRId64 " of the table, committed by another writer while this one ran, "
                         "changes its schema or protocol; nothing was committed: run the command again",
                         v);
      break;
    }
    const char *app;
    if ((x = json_object_get(a, "txn")) && (app = json_string_value(json_object_get(x, "appId"))) &&
        json_object_get(t->apps, app)) {
      ok = m2d_error_set(err, M2D_ERR_CONFLICT, DELTA_CONFLICT_APP,
                         "version %" PRId64 " of the table was committed by another writer with the same "
                         "application id '%s'; two writers must not feed one stream: stop the other one",
                         v, app);
      break;
    }
  }
  json_decref(actions);
  return ok;
}

static int checkpoint_interval(delta_txn_t *t) {
  if (t->checkpoint_interval > 0) return t->checkpoint_interval;
  size_t i;
  json_t *a, *m;
  json_array_foreach(t->meta_actions, i, a) if ((m = json_object_get(a, "metaData"))) {
    const char *s = json_string_value(json_object_get(json_object_get(m, "configuration"), "delta.checkpointInterval"));
    if (s && atoi(s) > 0) return atoi(s);
  }
  return 10;
}

bool delta_txn_commit(delta_txn_t *t, int64_t *version, m2d_error_t *err) {
  m2d_buf_t body;
  m2d_buf_init(&body, (size_t)1 << 31);
  int64_t v = t->read_version + 1;
  bool ok = false, gave_up = true;
  for (int attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    char key[64];
    snprintf(key, sizeof key, "_delta_log/%020" PRId64 ".json", v);
    bool exists = false;
    gave_up = false;
    if (!build(t, v, &body, err)) break;
    if (t->store->put_if_absent(t->store, key, body.data, body.len, &exists, err)) {
      ok = true;
      break;
    }
    if (!exists) break; /* an I/O error: nothing was created */
    if (t->read_version < 0 && v == 0) {
      m2d_error_set(err, M2D_ERR_CONFLICT, DELTA_CONFLICT_CREATED,
                    "the table was created by another writer while this one ran; nothing was committed: "
                    "run the command again to append to it");
      break;
    }
    if (!check_winner(t, v, err)) break;
    m2d_debug("version %" PRId64 " was taken by another writer; retrying at %" PRId64, v, v + 1);
    v++;
    gave_up = true;
  }
  if (!ok && gave_up)
    m2d_error_set(err, M2D_ERR_CONFLICT, 0, "gave up after %d lost races for the next version", MAX_ATTEMPTS);
  m2d_buf_free(&body);
  if (!ok) return false;
  *version = v;
  int interval = checkpoint_interval(t);
  if (v > 0 && v % interval == 0) {
    m2d_error_t cerr = {0};
    /* the commit stands either way; a missing checkpoint only makes the next open slower */
    if (!delta_checkpoint_write(t->store, v, &cerr))
      m2d_warn("version %" PRId64 " committed, but its checkpoint was not written: %s", v, cerr.message);
  }
  return true;
}
