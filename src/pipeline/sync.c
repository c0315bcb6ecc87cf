#include "pipeline/sync.h"

#include "core/log.h"
#include "core/metrics.h"
#include "delta/dv.h"
#include "delta/log.h"
#include "delta/txn.h"
#include "delta/scan.h"
#include "mongo/client.h"
#include "pipeline/key_index.h"
#include "pipeline/optimize.h"
#include "pipeline/row_bson.h"
#include "pipeline/snapshot.h"
#include "pipeline/table_writer.h"
#include "schema/infer.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define APP_PREFIX "mongo2delta-sync:"

/* Where a table is in the stream. */
typedef struct {
  int64_t batch;      /* txn version of the last batch, -1: none */
  int64_t seq;        /* sequence number of the last event applied */
  char token[1024];   /* its resume token (canonical Extended JSON), "" when unknown */
  uint32_t ct_t, ct_i; /* its cluster time */
} pos_t;

typedef struct {
  char op[16];
  bson_t *id;       /* {"_id": value}, or NULL */
  bson_t *doc;      /* fullDocument, or NULL */
  uint32_t ct_t, ct_i;
  char token[1024];
  int64_t seq;
} event_t;

typedef struct {
  const m2d_sync_options_t *o;
  m2d_sync_summary_t *sum;
  char app[600];
  m2d_table_writer_t *mirror, *log;
  m2d_table_writer_t *cdc; /* --change-data-feed: writes the mirror's _change_data files */
  pos_t mpos, lpos;
  m2d_key_index_t *index; /* mirror: _id -> file and row */
  m2d_metrics_t *metrics; /* --metrics-port, or NULL */
  char label[600];        /* the stream's "db.collection", the metrics' label */
  int since_compaction;   /* batches committed since the last compaction */
  event_t *ev;
  int nev;
} sync_t;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static bool stopping(const sync_t *s) { return s->o->stop && *s->o->stop; }

/* --- positions ---------------------------------------------------------------------------- */

/* Reads the position recorded with txn (app, batch) in its commit's commitInfo. */
static bool read_position(m2d_table_writer_t *w, const char *app, pos_t *p, m2d_error_t *err) {
  memset(p, 0, sizeof *p);
  p->batch = m2d_table_writer_app_version(w, app);
  if (p->batch < 0) return true;
  json_t *ci = delta_find_txn_commit(m2d_table_writer_store(w), m2d_table_writer_version(w), app, p->batch, err);
  if (!ci) return m2d_error_prefix(err, "the stream's position: ");
  json_t *info = json_object_get(ci, "mongo2delta");
  p->seq = json_integer_value(json_object_get(info, "seq"));
  const char *tok = json_string_value(json_object_get(info, "resumeToken"));
  snprintf(p->token, sizeof p->token, "%s", tok ? tok : "");
  json_t *ct = json_object_get(info, "clusterTime");
  p->ct_t = (uint32_t)json_integer_value(json_object_get(ct, "t"));
  p->ct_i = (uint32_t)json_integer_value(json_object_get(ct, "i"));
  json_decref(ci);
  return true;
}

static json_t *position_info(const event_t *last, int64_t seq, const pos_t *start) {
  json_t *info = json_object();
  json_object_set_new(info, "seq", json_integer(seq));
  json_object_set_new(info, "resumeToken", json_string(last ? last->token : start->token));
  json_object_set_new(info, "clusterTime", json_pack("{sIsI}", "t", (json_int_t)(last ? last->ct_t : start->ct_t), "i",
                                                      (json_int_t)(last ? last->ct_i : start->ct_i)));
  return info;
}

/* --- the key index ------------------------------------------------------------------------ */

/* A key in a form usable as a JSON object key (the batch's last event per document). */
static char *hex_key(const m2d_buf_t *k) {
  char *h = malloc(k->len * 2 + 1);
  if (!h) return NULL;
  for (size_t i = 0; i < k->len; i++) snprintf(h + 2 * i, 3, "%02x", k->data[i]);
  h[k->len * 2] = 0;
  return h;
}

typedef struct {
  sync_t *s;
  json_t *schema;
  json_t *adds;           /* the files scanned, in scan order */
  const delta_dv_t *only; /* keep only these rows (one-file scans), NULL: all */
  bool collect, index;
  bson_t **docs;
  int n, cap;
  bool failed;
  m2d_buf_t key;
  m2d_error_t *err;
} rows_t;

static bool push_doc(bson_t ***docs, int *n, int *cap, bson_t *doc) {
  if (*n == *cap) {
    int c = *cap ? *cap * 2 : 256;
    bson_t **d = realloc(*docs, (size_t)c * sizeof *d);
    if (!d) return false;
    *docs = d;
    *cap = c;
  }
  (*docs)[(*n)++] = doc;
  return true;
}

static bool on_row(const char *json, size_t len, size_t file, uint64_t row, void *ud) {
  rows_t *r = ud;
  if (r->only && !delta_dv_contains(r->only, row)) return true;
  json_t *jr = json_loadb(json, len, JSON_ALLOW_NUL, NULL);
  bson_t *doc = bson_new();
  bool ok = jr && m2d_row_to_bson(r->schema, jr, doc, r->err);
  json_decref(jr);
  if (ok && r->index && m2d_key_index_doc_key(doc, &r->key, NULL)) {
    const char *path = json_string_value(json_object_get(json_array_get(r->adds, file), "path"));
    int32_t f = m2d_key_index_file(r->s->index, path ? path : "");
    ok = f >= 0 && m2d_key_index_put(r->s->index, &r->key, f, row);
    if (!ok) m2d_error_set(r->err, M2D_ERR_LIMIT, 0, "out of memory for the key index");
  }
  if (ok && r->collect) ok = push_doc(&r->docs, &r->n, &r->cap, doc);
  else bson_destroy(doc);
  if (!ok) r->failed = true;
  return ok;
}

static void rows_free(rows_t *r) {
  for (int i = 0; i < r->n; i++)
    if (r->docs[i]) bson_destroy(r->docs[i]);
  free(r->docs);
  m2d_buf_free(&r->key);
  json_decref(r->schema);
}

/* Reads the rows of the given add actions (all columns, or only what the key index needs),
 * with the table's metadata and protocol. */
static bool scan_files(sync_t *s, json_t *metadata, json_t *protocol, json_t *adds, bool index_only, rows_t *r,
                       m2d_error_t *err) {
  const char *ss = json_string_value(json_object_get(metadata, "schemaString"));
  r->schema = ss ? json_loads(ss, 0, NULL) : NULL;
  if (!r->schema) return m2d_error_set(err, M2D_ERR_FORMAT, 0, "the mirror table's schema is not readable");
  r->s = s;
  r->adds = adds;
  r->err = err;
  m2d_buf_init(&r->key, (size_t)16 << 20);
  char columns[64] = "_id";
  size_t i;
  json_t *f;
  json_array_foreach(json_object_get(r->schema, "fields"), i, f)
    if (strcmp(json_string_value(json_object_get(f, "name")) ?: "", "_rescued_data") == 0) strcat(columns, ",_rescued_data");
  bool has_id = false;
  json_array_foreach(json_object_get(r->schema, "fields"), i, f) has_id |= strcmp(json_string_value(json_object_get(f, "name")) ?: "", "_id") == 0;
  if (index_only && !has_id) return true; /* an empty table */
  delta_snapshot_t fs = {.metadata = metadata, .protocol = protocol, .files = adds};
  return delta_scan_at(m2d_table_writer_store(s->mirror), &fs, index_only ? columns : NULL, -1, on_row, r, err) &&
         !r->failed;
}

static bool build_index(sync_t *s, m2d_error_t *err) {
  s->index = m2d_key_index_new();
  if (!s->index) return m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory for the key index");
  if (m2d_table_writer_version(s->mirror) < 0) return true;
  double t0 = now_s();
  delta_snapshot_t snap;
  if (!delta_snapshot_load(m2d_table_writer_store(s->mirror), -1, &snap, err)) return false;
  rows_t r = {.index = true};
  bool ok = scan_files(s, snap.metadata, snap.protocol, snap.files, true, &r, err);
  size_t files = json_array_size(snap.files);
  rows_free(&r);
  delta_snapshot_free(&snap);
  if (ok)
    m2d_info("key index: %zu documents in %zu files of the mirror table, built in %.1f s",
             m2d_key_index_count(s->index), files, now_s() - t0);
  return ok;
}

/* Indexes the new data files of the batch just committed. */
static bool index_new_files(sync_t *s, m2d_error_t *err) {
  json_t *added = json_array();
  size_t j;
  json_t *a;
  json_array_foreach((json_t *)m2d_table_writer_last_adds(s->mirror), j, a) {
    json_t *add = json_object_get(a, "add");
    if (add && !json_object_get(add, "deletionVector")) json_array_append(added, add);
  }
  rows_t r = {.index = true};
  bool ok = !json_array_size(added) ||
            scan_files(s, (json_t *)m2d_table_writer_metadata(s->mirror), (json_t *)m2d_table_writer_protocol(s->mirror),
                       added, true, &r, err);
  rows_free(&r);
  json_decref(added);
  return ok;
}

/* --- applying a batch --------------------------------------------------------------------- */

static bool write_docs(m2d_table_writer_t *w, bson_t **docs, int n, m2d_error_t *err) {
  m2d_infer_t *inf = m2d_infer_new(NULL);
  bool ok = inf != NULL;
  for (int i = 0; ok && i < n; i++) ok = m2d_infer_observe(inf, docs[i], err);
  ok = ok && m2d_table_writer_begin(w, m2d_infer_schema(inf), err);
  for (int i = 0; ok && i < n; i++) ok = m2d_table_writer_add(w, docs[i], NULL, err);
  m2d_infer_destroy(inf);
  return ok;
}

/* The row a soft delete leaves: the document's last version marked _deleted. */
static bson_t *soft_deleted(const bson_t *doc, const bson_iter_t *id) {
  bson_t *d = bson_new();
  if (doc) {
    bson_copy_to_excluding_noinit(doc, d, "_deleted", NULL);
  } else {
    bson_append_iter(d, "_id", 3, id);
  }
  BSON_APPEND_BOOL(d, "_deleted", true);
  return d;
}

typedef struct {
  int32_t file;
  delta_dv_t *rows;
} file_rows_t;

/* The rows to delete per file, in a small list (a batch touches few files). */
static delta_dv_t *rows_of(file_rows_t **list, int *n, int32_t file) {
  for (int i = 0; i < *n; i++)
    if ((*list)[i].file == file) return (*list)[i].rows;
  file_rows_t *l = realloc(*list, (size_t)(*n + 1) * sizeof *l);
  if (!l) return NULL;
  *list = l;
  l[*n].file = file;
  l[*n].rows = delta_dv_new();
  return l[(*n)++].rows;
}

static void free_file_rows(file_rows_t *l, int n) {
  for (int i = 0; i < n; i++) delta_dv_free(l[i].rows);
  free(l);
}

static int64_t num_records(const json_t *add) {
  json_t *st = json_loads(json_string_value(json_object_get(add, "stats")) ?: "", 0, NULL);
  int64_t n = json_is_integer(json_object_get(st, "numRecords")) ? json_integer_value(json_object_get(st, "numRecords")) : -1;
  json_decref(st);
  return n;
}

/* The add action of a file with its new deletion vector: the stats stay (numRecords counts the
 * file's physical rows) but are no longer tight. */
static json_t *add_with_dv(const json_t *add, json_t *descriptor) {
  json_t *a = json_deep_copy(add);
  json_object_set_new(a, "deletionVector", descriptor);
  json_object_set_new(a, "dataChange", json_true());
  json_t *st = json_loads(json_string_value(json_object_get(a, "stats")) ?: "", 0, NULL);
  if (st) {
    json_object_set_new(st, "tightBounds", json_false());
    char *txt = json_dumps(st, JSON_COMPACT);
    if (txt) json_object_set_new(a, "stats", json_string(txt));
    free(txt);
    json_decref(st);
  }
  return json_pack("{so}", "add", a);
}

/* --change-data-feed: the batch's changes as Delta change data (PROTOCOL.md "Change Data
 * Files"): per document of the batch, insert (new), update_preimage and update_postimage (its
 * old row and new version), or delete (its old row), written under _change_data/ and committed
 * as cdc actions with the batch. Old rows are read back from the files the key index names. */
static bool change_data(sync_t *s, const delta_snapshot_t *snap, json_t *last, file_rows_t *gone, int ngone,
                        bson_t **docs, int n, json_t **actions, m2d_error_t *err) {
  bool ok = true;
  m2d_buf_t key;
  m2d_buf_init(&key, (size_t)16 << 20);
  json_t *old = json_object(), *post = json_object(); /* hex key -> index in olds / docs */
  rows_t olds = {.collect = true};
  m2d_buf_init(&olds.key, 1);
  for (int i = 0; ok && i < ngone; i++) {
    json_t *one = json_array();
    const char *path = m2d_key_index_file_path(s->index, gone[i].file);
    size_t j;
    json_t *add;
    json_array_foreach(snap->files, j, add) if (strcmp(json_string_value(json_object_get(add, "path")) ?: "", path ? path : "") == 0)
        json_array_append(one, add);
    rows_t r = {.collect = true, .only = gone[i].rows};
    ok = scan_files(s, snap->metadata, snap->protocol, one, false, &r, err);
    for (int k = 0; ok && k < r.n; k++) {
      ok = push_doc(&olds.docs, &olds.n, &olds.cap, r.docs[k]);
      r.docs[k] = NULL;
    }
    rows_free(&r);
    json_decref(one);
  }
  for (int k = 0; ok && k < olds.n; k++) {
    if (!m2d_key_index_doc_key(olds.docs[k], &key, NULL)) continue;
    char *h = hex_key(&key);
    if (h) json_object_set_new(old, h, json_integer(k));
    free(h);
  }
  for (int k = 0; ok && k < n; k++) {
    if (!m2d_key_index_doc_key(docs[k], &key, NULL)) continue;
    char *h = hex_key(&key);
    if (h && json_object_get(last, h)) json_object_set_new(post, h, json_integer(k));
    free(h);
  }
  bson_t **rows = NULL;
  int nrows = 0, cap = 0;
  const char *h;
  json_t *v;
  json_object_foreach(last, h, v) {
    json_t *o = json_object_get(old, h), *p = json_object_get(post, h);
    const bson_t *before = o ? olds.docs[json_integer_value(o)] : NULL, *after = p ? docs[json_integer_value(p)] : NULL;
    const char *types[2] = {before && after ? "update_preimage" : before ? "delete" : NULL,
                            before && after ? "update_postimage" : after ? "insert" : NULL};
    const bson_t *images[2] = {before, after};
    for (int t = 0; ok && t < 2; t++) {
      if (!types[t]) continue;
      bson_t *d = bson_new();
      bson_copy_to_excluding_noinit(images[t], d, "_change_type", NULL);
      BSON_APPEND_UTF8(d, "_change_type", types[t]);
      ok = push_doc(&rows, &nrows, &cap, d);
    }
  }
  json_t *adds = NULL;
  if (ok && nrows) ok = write_docs(s->cdc, rows, nrows, err) && m2d_table_writer_take_files(s->cdc, &adds, err);
  *actions = json_array();
  size_t i;
  json_t *a;
  json_array_foreach(adds, i, a) {
    json_t *add = json_object_get(a, "add");
    json_array_append_new(*actions, json_pack("{s{sOsOsOsb}}", "cdc", "path", json_object_get(add, "path"), "partitionValues",
                                              json_object_get(add, "partitionValues"), "size", json_object_get(add, "size"),
                                              "dataChange", 0));
  }
  json_decref(adds);
  for (int k = 0; k < nrows; k++) bson_destroy(rows[k]);
  free(rows);
  rows_free(&olds);
  json_decref(old);
  json_decref(post);
  m2d_buf_free(&key);
  return ok;
}

/* The mirror's batch. Every document of the batch leaves its old row (found in the key index):
 * with deletion vectors the row is marked deleted in a new vector for its file; copy-on-write
 * rewrites the file without it. Then the documents' last versions are appended. */
static bool apply_mirror(sync_t *s, int64_t batch, m2d_error_t *err) {
  const m2d_sync_options_t *o = s->o;
  m2d_store_t *store = m2d_table_writer_store(s->mirror);
  bool ok = true, have = false;
  delta_snapshot_t snap = {0};
  json_t *by_path = json_object(); /* path -> add of the live files */
  if (m2d_table_writer_version(s->mirror) >= 0) {
    ok = have = delta_snapshot_load(store, -1, &snap, err);
    size_t i;
    json_t *add;
    if (ok) json_array_foreach(snap.files, i, add) json_object_set(by_path, json_string_value(json_object_get(add, "path")) ?: "", add);
  }
  /* the last event of every document of the batch, and its last event with the document */
  json_t *last = json_object(), *lastdoc = json_object();
  m2d_buf_t key;
  m2d_buf_init(&key, (size_t)16 << 20);
  for (int i = 0; ok && i < s->nev; i++) {
    event_t *e = &s->ev[i];
    if (!m2d_key_index_doc_key(e->id, &key, NULL) && !m2d_key_index_doc_key(e->doc, &key, NULL)) continue;
    char *h = hex_key(&key);
    if (h) json_object_set_new(last, h, json_integer(i));
    if (h && e->doc && strcmp(e->op, "delete")) json_object_set_new(lastdoc, h, json_integer(i));
    free(h);
  }
  file_rows_t *gone = NULL, *soft = NULL; /* rows leaving, per file; rows whose soft-delete row is read back */
  int ngone = 0, nsoft = 0;
  bson_t **docs = NULL;
  int n = 0, cap = 0;
  const char *h;
  json_t *v;
  json_object_foreach(last, h, v) {
    if (!ok) break;
    event_t *e = &s->ev[json_integer_value(v)];
    if (!m2d_key_index_doc_key(e->id, &key, NULL)) m2d_key_index_doc_key(e->doc, &key, NULL);
    int32_t file;
    uint64_t row;
    bool found = m2d_key_index_get(s->index, &key, &file, &row);
    bool del = strcmp(e->op, "delete") == 0;
    if (found) {
      delta_dv_t *g = rows_of(&gone, &ngone, file);
      ok = g && delta_dv_add(g, row);
      m2d_key_index_remove(s->index, &key);
      if (ok && del && o->soft_delete && !json_object_get(lastdoc, h)) { /* its last version is in the table */
        delta_dv_t *sd = rows_of(&soft, &nsoft, file);
        ok = sd && delta_dv_add(sd, row);
      }
    }
    bson_iter_t id;
    if (del && o->soft_delete && json_object_get(lastdoc, h)) { /* its last version is in the batch */
      event_t *u = &s->ev[json_integer_value(json_object_get(lastdoc, h))];
      ok = ok && push_doc(&docs, &n, &cap, soft_deleted(u->doc, NULL));
      s->sum->deletes++;
      continue;
    }
    if (del) {
      s->sum->deletes++;
      if (!found && o->soft_delete && ((e->id && bson_iter_init_find(&id, e->id, "_id")) || (e->doc && bson_iter_init_find(&id, e->doc, "_id"))))
        ok = push_doc(&docs, &n, &cap, soft_deleted(NULL, &id));
      continue;
    }
    if (!e->doc || !bson_iter_init_find(&id, e->doc, "_id")) continue; /* gone when the event was read: a delete follows */
    bson_t *d;
    if (o->soft_delete) {
      d = bson_new();
      bson_copy_to_excluding_noinit(e->doc, d, "_deleted", NULL);
      BSON_APPEND_BOOL(d, "_deleted", false);
    } else {
      d = bson_copy(e->doc);
    }
    ok = push_doc(&docs, &n, &cap, d);
    s->sum->upserts++;
  }
  /* copy-on-write: the other rows of the files touched come along; soft deletes read back the
   * documents' last versions */
  for (int i = 0; ok && i < ngone; i++) {
    const char *path = m2d_key_index_file_path(s->index, gone[i].file);
    json_t *add = json_object_get(by_path, path ? path : "");
    if (!add) {
      /* another writer (an optimize run) rewrote it since the index was built */
      ok = m2d_error_set(err, M2D_ERR_CONFLICT, DELTA_CONFLICT_FILES,
                         "the key index names %s, which another writer has removed from the mirror table",
                         path ? path : "?");
      break;
    }
    delta_dv_t *sd = NULL;
    for (int k = 0; k < nsoft; k++)
      if (soft[k].file == gone[i].file) sd = soft[k].rows;
    if (!o->rewrite && !sd) continue;
    json_t *one = json_array();
    json_array_append(one, add);
    if (o->rewrite) { /* every row but the ones leaving */
      rows_t all = {.collect = true};
      ok = scan_files(s, snap.metadata, snap.protocol, one, false, &all, err);
      for (int k = 0; ok && k < all.n; k++) {
        if (!m2d_key_index_doc_key(all.docs[k], &key, NULL)) continue;
        char *hk = hex_key(&key);
        bool leaving = hk && json_object_get(last, hk);
        free(hk);
        if (leaving) continue;
        ok = push_doc(&docs, &n, &cap, all.docs[k]);
        all.docs[k] = NULL;
      }
      rows_free(&all);
    }
    if (ok && sd) {
      rows_t old = {.collect = true, .only = sd};
      ok = scan_files(s, snap.metadata, snap.protocol, one, false, &old, err);
      for (int k = 0; ok && k < old.n; k++) ok = push_doc(&docs, &n, &cap, soft_deleted(old.docs[k], NULL));
      rows_free(&old);
    }
    json_decref(one);
  }
  json_t *cdc_actions = NULL;
  if (ok && s->cdc) ok = change_data(s, &snap, last, gone, ngone, docs, n, &cdc_actions, err);
  ok = ok && write_docs(s->mirror, docs, n, err);
  size_t ci;
  json_t *ca;
  json_array_foreach(cdc_actions, ci, ca) if (ok) ok = m2d_table_writer_add_action(s->mirror, json_incref(ca), err);
  json_decref(cdc_actions);
  /* the rows leaving: files removed (copy-on-write, or every row gone) or given deletion vectors */
  delta_dv_file_t *dvf = NULL;
  if (ok && !o->rewrite && ngone) {
    dvf = delta_dv_file_new();
    if (!m2d_table_writer_has_feature(s->mirror, "deletionVectors"))
      m2d_table_writer_enable_feature(s->mirror, "deletionVectors", true, "delta.enableDeletionVectors");
  }
  for (int i = 0; ok && i < ngone; i++) {
    json_t *add = json_object_get(by_path, m2d_key_index_file_path(s->index, gone[i].file));
    ok = m2d_table_writer_remove_file(s->mirror, add, err);
    if (!ok || o->rewrite) continue;
    delta_dv_t *dv = gone[i].rows;
    delta_dv_t *old = NULL;
    json_t *od = json_object_get(add, "deletionVector");
    if (json_is_object(od)) ok = (old = delta_dv_load(store, od, err)) && delta_dv_or(dv, old);
    delta_dv_free(old);
    int64_t records = num_records(add);
    if (!ok || (records >= 0 && (int64_t)delta_dv_cardinality(dv) >= records)) continue; /* no row left */
    json_t *desc = delta_dv_file_put(dvf, dv, err);
    ok = desc && m2d_table_writer_add_action(s->mirror, add_with_dv(add, desc), err);
  }
  if (ok && dvf) ok = delta_dv_file_finish(dvf, store, err);
  int64_t version;
  const event_t *lastev = s->nev ? &s->ev[s->nev - 1] : NULL;
  if (ok)
    ok = m2d_table_writer_commit(s->mirror, s->app, batch, position_info(lastev, lastev ? lastev->seq : s->mpos.seq, &s->mpos),
                                 &version, err);
  else
    m2d_table_writer_abort(s->mirror);
  if (!ok && dvf) store->remove(store, delta_dv_file_key(dvf), NULL); /* not referenced */
  if (ok) ok = index_new_files(s, err);
  delta_dv_file_free(dvf);
  for (int j = 0; j < n; j++) bson_destroy(docs[j]);
  free(docs);
  free_file_rows(gone, ngone);
  free_file_rows(soft, nsoft);
  m2d_buf_free(&key);
  json_decref(last);
  json_decref(lastdoc);
  json_decref(by_path);
  if (have) delta_snapshot_free(&snap);
  return ok;
}

static bool apply_changelog(sync_t *s, int64_t batch, m2d_error_t *err) {
  bson_t **docs = calloc((size_t)s->nev + 1, sizeof *docs);
  int n = 0;
  for (int i = 0; i < s->nev; i++) {
    event_t *e = &s->ev[i];
    if (e->seq <= s->lpos.seq) continue; /* already in the change log (committed before a crash) */
    bson_t *d = bson_new();
    BSON_APPEND_UTF8(d, "_op", e->op);
    BSON_APPEND_TIMESTAMP(d, "_cluster_time", e->ct_t, e->ct_i);
    BSON_APPEND_INT64(d, "_txn_seq", e->seq);
    bson_iter_t it;
    if ((e->id && bson_iter_init_find(&it, e->id, "_id")) || (e->doc && bson_iter_init_find(&it, e->doc, "_id")))
      bson_append_iter(d, "_id", 3, &it);
    if (e->doc) BSON_APPEND_DOCUMENT(d, "document", e->doc);
    docs[n++] = d;
  }
  bool ok = write_docs(s->log, docs, n, err);
  const event_t *lastev = s->nev ? &s->ev[s->nev - 1] : NULL;
  int64_t version;
  if (ok)
    ok = m2d_table_writer_commit(s->log, s->app, batch, position_info(lastev, lastev ? lastev->seq : s->lpos.seq, &s->lpos),
                                 &version, err);
  if (ok) s->sum->changelog_rows += n;
  for (int i = 0; i < n; i++) bson_destroy(docs[i]);
  free(docs);
  return ok;
}

static void clear_events(sync_t *s) {
  for (int i = 0; i < s->nev; i++) {
    if (s->ev[i].id) bson_destroy(s->ev[i].id);
    if (s->ev[i].doc) bson_destroy(s->ev[i].doc);
  }
  s->nev = 0;
}

static void set_position(pos_t *p, int64_t batch, const event_t *last) {
  p->batch = batch;
  p->seq = last->seq;
  snprintf(p->token, sizeof p->token, "%s", last->token);
  p->ct_t = last->ct_t;
  p->ct_i = last->ct_i;
}

static bool mirror_opened(sync_t *s, m2d_error_t *err);

/* Reopens the mirror's writer at the table's newest version and rebuilds the key index. */
static bool reopen_mirror(sync_t *s, m2d_error_t *err) {
  m2d_table_writer_destroy(s->mirror);
  m2d_table_writer_options_t mo = {.table = s->o->table, .codec = PQ_CODEC_SNAPPY};
  m2d_key_index_free(s->index);
  s->index = NULL;
  return (s->mirror = m2d_table_writer_open(&mo, err)) && mirror_opened(s, err) && build_index(s, err);
}

/* Background compaction, between batches: the small files of frequent commits are bin-packed
 * and files with many rows deleted are rewritten without them (pipeline/optimize), in the same
 * process, so it never races a batch. The files it rewrites are indexed again. A failure is
 * only a warning: the tables are as they were and the next round tries again. */
static void compact(sync_t *s) {
  m2d_table_writer_t *tables[2] = {s->mirror, s->log};
  const char *names[2] = {"mirror", "change log"};
  for (int t = 0; t < 2; t++) {
    if (!tables[t] || m2d_table_writer_version(tables[t]) < 0) continue;
    m2d_optimize_options_t oo = {.dv_min_deleted = 0.3, .stop = s->o->stop};
    m2d_optimize_summary_t sum;
    m2d_error_t e = {0};
    double t0 = now_s();
    bool ok = m2d_optimize_with_writer(tables[t], &oo, &sum, &e);
    if (ok && tables[t] == s->mirror && sum.files_removed > 0) {
      rows_t r = {.index = true};
      ok = scan_files(s, (json_t *)m2d_table_writer_metadata(s->mirror), (json_t *)m2d_table_writer_protocol(s->mirror),
                      sum.added, true, &r, &e);
      rows_free(&r);
      if (!ok) { /* the index no longer matches the table: build it again */
        m2d_error_t e2 = {0};
        if (!reopen_mirror(s, &e2)) m2d_warn("rebuilding the key index: %s", e2.message);
      }
    }
    if (ok && sum.files_removed > 0)
      m2d_info("compacted the %s: %lld files into %lld (%lld rows, %lld deletion vectors folded) as version %lld in "
               "%.1f s",
               names[t], (long long)sum.files_removed, (long long)sum.files_added, (long long)sum.rows,
               (long long)sum.dvs_folded, (long long)sum.version, now_s() - t0);
    else if (!ok)
      m2d_warn("compacting the %s failed (the table is as it was; tried again later): %s", names[t], e.message);
    m2d_optimize_summary_free(&sum);
  }
  s->since_compaction = 0;
}

/* One batch: the change log first (it skips what it has), then the mirror. */
static bool flush(sync_t *s, m2d_error_t *err) {
  if (s->nev == 0) return true;
  const event_t *lastev = &s->ev[s->nev - 1];
  bool ok = true;
  double t0 = now_s(), t1 = t0;
  if (s->log && lastev->seq > s->lpos.seq) {
    int64_t b = s->lpos.batch + 1;
    ok = apply_changelog(s, b, err);
    if (ok) set_position(&s->lpos, b, lastev);
  }
  t1 = now_s();
  if (ok && s->mirror) {
    int64_t b = s->mpos.batch + 1;
    ok = apply_mirror(s, b, err);
    for (int retry = 0; !ok && retry < 3 && err && err->domain == M2D_ERR_CONFLICT && err->code == DELTA_CONFLICT_FILES;
         retry++) {
      /* another writer (an optimize run) replaced files the batch changes: read the table again */
      m2d_warn("%s; reading the mirror table again and retrying the batch", err->message);
      ok = reopen_mirror(s, err) && apply_mirror(s, b, err);
    }
    if (ok) set_position(&s->mpos, b, lastev);
  }
  if (ok) {
    s->sum->batches++;
    s->sum->last_seq = lastev->seq;
    double t2 = now_s();
    const char *const *lb = M2D_LABELS("collection", s->label);
    m2d_metrics_counter_add(s->metrics, M2D_METRIC_EVENTS_APPLIED, "change events applied", lb, s->nev);
    m2d_metrics_counter_add(s->metrics, M2D_METRIC_BATCHES, "micro-batches committed", lb, 1);
    m2d_metrics_observe(s->metrics, M2D_METRIC_COMMIT_SECONDS, "time to commit a batch (all its tables)", lb, t2 - t0);
    m2d_metrics_gauge_set(s->metrics, M2D_METRIC_LAST_EVENT_TIMESTAMP,
                          "cluster time of the last applied event (seconds since the epoch)", lb, lastev->ct_t);
    m2d_metrics_gauge_set(s->metrics, M2D_METRIC_LAG_SECONDS,
                          "seconds from the last applied event's cluster time to its commit", lb,
                          lastev->ct_t ? (double)time(NULL) - lastev->ct_t : 0);
    s->since_compaction++;
    /* one line per batch: what benchmarks and operators read */
    m2d_info("batch %lld: %d events (through event %lld) committed in %.1f ms (change log %.1f ms, mirror %.1f ms)",
             (long long)(s->mirror ? s->mpos.batch : s->lpos.batch), s->nev, (long long)lastev->seq, (t2 - t0) * 1e3,
             (t1 - t0) * 1e3, (t2 - t1) * 1e3);
  }
  clear_events(s);
  return ok;
}

/* --- the stream --------------------------------------------------------------------------- */

static bool parse_event(const bson_t *ev, event_t *e, m2d_error_t *err) {
  memset(e, 0, sizeof *e);
  bson_iter_t it, sub;
  if (bson_iter_init_find(&it, ev, "operationType") && BSON_ITER_HOLDS_UTF8(&it))
    snprintf(e->op, sizeof e->op, "%s", bson_iter_utf8(&it, NULL));
  if (strcmp(e->op, "insert") && strcmp(e->op, "update") && strcmp(e->op, "replace") && strcmp(e->op, "delete"))
    return m2d_error_set(err, M2D_ERR_MONGO, 0,
                         "the change stream says '%s' (the collection was dropped, renamed or the stream "
                         "invalidated); the tables keep what was applied: start a new sync",
                         e->op);
  if (bson_iter_init_find(&it, ev, "documentKey") && BSON_ITER_HOLDS_DOCUMENT(&it) && bson_iter_recurse(&it, &sub) &&
      bson_iter_find(&sub, "_id")) {
    e->id = bson_new();
    bson_append_iter(e->id, "_id", 3, &sub);
  }
  if (bson_iter_init_find(&it, ev, "fullDocument") && BSON_ITER_HOLDS_DOCUMENT(&it)) {
    uint32_t len;
    const uint8_t *data;
    bson_iter_document(&it, &len, &data);
    e->doc = bson_new_from_data(data, len);
  }
  if (bson_iter_init_find(&it, ev, "clusterTime") && BSON_ITER_HOLDS_TIMESTAMP(&it))
    bson_iter_timestamp(&it, &e->ct_t, &e->ct_i);
  if (bson_iter_init_find(&it, ev, "_id") && BSON_ITER_HOLDS_DOCUMENT(&it)) {
    uint32_t len;
    const uint8_t *data;
    bson_iter_document(&it, &len, &data);
    bson_t tok;
    if (bson_init_static(&tok, data, len)) {
      char *j = bson_as_canonical_extended_json(&tok, NULL);
      snprintf(e->token, sizeof e->token, "%s", j ? j : "");
      bson_free(j);
    }
  }
  return true;
}

/* Errors of a server that went away (or is restarting), as opposed to a refused stream. */
static bool server_gone(const bson_error_t *e) {
  if (e->domain == MONGOC_ERROR_STREAM || e->domain == MONGOC_ERROR_SERVER_SELECTION) return true;
  switch (e->code) {
  case 6: case 7: case 89: case 91: case 189: case 9001: case 10107: case 11600: case 11602: case 13435: case 13436:
    return true;
  default: return false;
  }
}

/* Errors of a stream that cannot resume from the position asked: the server's oplog moved past
 * it (ChangeStreamHistoryLost 286, CappedPositionLost 136, ChangeStreamFatalError 280) or the
 * token is not one it can use (InvalidResumeToken 260, 40647 for a token without _data). */
static bool history_lost(const bson_error_t *e) {
  return e->code == 286 || e->code == 280 || e->code == 260 || e->code == 136 || e->code == 40647;
}

static mongoc_change_stream_t *open_stream(mongoc_collection_t *coll, const pos_t *from) {
  bson_t pipeline = BSON_INITIALIZER;
  bson_t *opts = BCON_NEW("fullDocument", BCON_UTF8("updateLookup"), "maxAwaitTimeMS", BCON_INT64(200));
  bson_error_t e;
  bson_t *tok = from && from->token[0] ? bson_new_from_json((const uint8_t *)from->token, -1, &e) : NULL;
  if (tok) BSON_APPEND_DOCUMENT(opts, "resumeAfter", tok);
  else if (from && from->ct_t) BSON_APPEND_TIMESTAMP(opts, "startAtOperationTime", from->ct_t, from->ct_i);
  mongoc_change_stream_t *cs = mongoc_collection_watch(coll, &pipeline, opts);
  if (tok) bson_destroy(tok);
  bson_destroy(opts);
  bson_destroy(&pipeline);
  return cs;
}

/* After (re)opening the mirror's writer: with --change-data-feed, the table gets the feature
 * (with its next commit) and a writer for its change data files. */
static bool mirror_opened(sync_t *s, m2d_error_t *err) {
  if (!s->o->change_data_feed) return true;
  m2d_table_writer_enable_feature(s->mirror, "changeDataFeed", false, "delta.enableChangeDataFeed");
  m2d_table_writer_destroy(s->cdc);
  m2d_table_writer_options_t co = {.table = s->o->table, .codec = PQ_CODEC_SNAPPY, .data_dir = "_change_data",
                                   .file_prefix = "cdc"};
  return (s->cdc = m2d_table_writer_open(&co, err)) != NULL;
}

/* Opens the stream at the server's "now" before the snapshot reads anything, snapshots the
 * mirror (when asked; a table holding data is emptied first, in one commit, its history kept)
 * and records the hand-over in each table: a commit with the next txn version and the stream's
 * start, so that a crash from here on resumes the stream instead of snapshotting again (and
 * losing what happened meanwhile). Until an event comes the test server gives no resume token:
 * the position is then the clock. */
static bool start_at_now(sync_t *s, mongoc_collection_t *coll, mongoc_change_stream_t **cs, bool snapshot, int64_t seq,
                         m2d_error_t *err) {
  const m2d_sync_options_t *o = s->o;
  bool ok = true;
  if (*cs) mongoc_change_stream_destroy(*cs);
  *cs = open_stream(coll, NULL);
  s->mpos.ct_t = s->lpos.ct_t = (uint32_t)time(NULL);
  s->mpos.ct_i = s->lpos.ct_i = 0;
  s->mpos.token[0] = s->lpos.token[0] = 0;
  if (s->mirror && snapshot) {
    m2d_table_writer_options_t mo = {.table = o->table, .codec = PQ_CODEC_SNAPPY};
    bool had_table = m2d_table_writer_version(s->mirror) >= 0;
    m2d_table_writer_destroy(s->mirror);
    s->mirror = NULL;
    m2d_snapshot_options_t so = {.uri = o->uri, .db = o->db, .collection = o->collection, .table = o->table,
                                 .workers = o->workers, .codec = PQ_CODEC_SNAPPY, .restart = had_table, .stop = o->stop,
                                 .live_flag = o->soft_delete ? "_deleted" : NULL};
    m2d_snapshot_summary_t ss;
    ok = m2d_snapshot_run(&so, &ss, err);
    if (ok && ss.interrupted) ok = m2d_error_set(err, M2D_ERR_INTERNAL, 0, "interrupted during the snapshot");
    m2d_snapshot_summary_free(&ss);
    s->sum->snapshotted = ok;
    if (ok) ok = (s->mirror = m2d_table_writer_open(&mo, err)) != NULL && mirror_opened(s, err);
  }
  s->mpos.seq = s->lpos.seq = seq;
  const bson_t *tok = ok ? mongoc_change_stream_get_resume_token(*cs) : NULL;
  if (tok) {
    char *j = bson_as_canonical_extended_json(tok, NULL);
    snprintf(s->mpos.token, sizeof s->mpos.token, "%s", j ? j : "");
    snprintf(s->lpos.token, sizeof s->lpos.token, "%s", j ? j : "");
    bson_free(j);
  }
  m2d_table_writer_t *tables[2] = {s->log, s->mirror};
  pos_t *positions[2] = {&s->lpos, &s->mpos};
  for (int t = 0; ok && t < 2; t++) {
    if (!tables[t]) continue;
    m2d_dtype_t *none = m2d_dtype_new(M2D_T_STRUCT);
    int64_t v, b = positions[t]->batch + 1;
    ok = none && m2d_table_writer_begin(tables[t], none, err) &&
         m2d_table_writer_commit(tables[t], s->app, b, position_info(NULL, seq, positions[t]), &v, err);
    m2d_dtype_free(none);
    positions[t]->batch = b;
  }
  return ok;
}

bool m2d_sync_run(const m2d_sync_options_t *o, m2d_sync_summary_t *sum, m2d_error_t *err) {
  memset(sum, 0, sizeof *sum);
  sync_t s = {.o = o, .sum = sum};
  snprintf(s.app, sizeof s.app, APP_PREFIX "%s.%s", o->db, o->collection);
  snprintf(s.label, sizeof s.label, "%s.%s", o->db, o->collection);
  if (o->metrics_port >= 0) {
    if (!(s.metrics = m2d_metrics_start(NULL, o->metrics_port, err))) return false;
    m2d_info("metrics (Prometheus text) on http://127.0.0.1:%d/metrics", m2d_metrics_port(s.metrics));
    const char *const *lb = M2D_LABELS("collection", s.label);
    m2d_metrics_counter_add(s.metrics, M2D_METRIC_EVENTS_APPLIED, "change events applied", lb, 0);
    m2d_metrics_counter_add(s.metrics, M2D_METRIC_BATCHES, "micro-batches committed", lb, 0);
    m2d_metrics_counter_add(s.metrics, M2D_METRIC_RECONNECTS, "reconnections after the server went away", lb, 0);
  }
  int cap = (o->max_batch_docs > 0 ? o->max_batch_docs : 1000);
  s.ev = calloc((size_t)cap + 1, sizeof *s.ev);
  bool ok = s.ev != NULL;
  m2d_mongo_global_init();
  mongoc_client_t *client = ok ? m2d_mongo_client_new(o->uri, err) : NULL;
  ok = ok && client;
  mongoc_collection_t *coll = ok ? mongoc_client_get_collection(client, o->db, o->collection) : NULL;
  mongoc_change_stream_t *cs = NULL;
  m2d_table_writer_options_t mo = {.table = o->table, .codec = PQ_CODEC_SNAPPY},
                             lo = {.table = o->changelog_table, .codec = PQ_CODEC_SNAPPY};
  if (ok && o->mirror)
    ok = (s.mirror = m2d_table_writer_open(&mo, err)) && mirror_opened(&s, err) && read_position(s.mirror, s.app, &s.mpos, err);
  if (ok && o->changelog) ok = (s.log = m2d_table_writer_open(&lo, err)) && read_position(s.log, s.app, &s.lpos, err);
  if (ok && !s.mirror) s.mpos.batch = -1;
  if (ok && !s.log) s.lpos.batch = -1;
  /* where the stream starts: the mirror's position (it is never ahead of the change log) */
  const pos_t *from = s.mirror ? &s.mpos : &s.lpos;
  if (ok && from->batch < 0) {
    /* a first run */
    ok = start_at_now(&s, coll, &cs, o->initial_snapshot, 0, err);
  } else if (ok) {
    cs = open_stream(coll, from);
    m2d_info("resuming %s after event %lld (batch %lld)", s.app, (long long)from->seq, (long long)from->batch);
  }
  if (ok && s.mirror) ok = build_index(&s, err);
  pos_t resume;
  int64_t seq = ok ? from->seq : 0;
  sum->first_seq = seq + 1;
  double batch_start = 0, last_event = now_s();
  while (ok && !stopping(&s)) {
    const bson_t *ev;
    if (mongoc_change_stream_next(cs, &ev)) {
      event_t e;
      if (!(ok = parse_event(ev, &e, err))) break;
      /* resumed by cluster time: the events up to it are applied already */
      if (!from->token[0] && from->batch >= 0 &&
          (e.ct_t < from->ct_t || (e.ct_t == from->ct_t && e.ct_i <= from->ct_i))) {
        if (e.id) bson_destroy(e.id);
        if (e.doc) bson_destroy(e.doc);
        sum->skipped++;
        continue;
      }
      e.seq = ++seq;
      if (s.nev == 0) batch_start = now_s();
      s.ev[s.nev++] = e;
      sum->events++;
      last_event = now_s();
      /* a steady stream never comes back empty: the batch's age is checked after each event too */
      if (s.nev >= cap || (last_event - batch_start) * 1000 >= (o->max_latency_ms > 0 ? o->max_latency_ms : 1000))
        ok = flush(&s, err);
      continue;
    }
    bson_error_t be;
    const bson_t *reply;
    if (mongoc_change_stream_error_document(cs, &be, &reply)) {
      if (history_lost(&be) && !stopping(&s)) {
        const pos_t *at = s.mirror ? &s.mpos : &s.lpos;
        if (!o->resnapshot_on_history_lost) {
          size_t ml = strlen(be.message);
          while (ml && be.message[ml - 1] == '.') be.message[--ml] = 0;
          ok = m2d_error_set(err, M2D_ERR_MONGO, (int)be.code,
                             "the change stream cannot resume from the position the tables hold (after event %lld, "
                             "cluster time %u.%u): %s. The server no longer has that history (its oplog moved past "
                             "it), so the changes since are lost to the stream; the tables are intact. Rerun with "
                             "--on-history-lost resnapshot to copy the collection again",
                             (long long)at->seq, at->ct_t, at->ct_i, be.message);
          break;
        }
        if (!(ok = flush(&s, err))) break;
        m2d_warn("the change stream cannot resume after event %lld (%s): taking a new snapshot of %s.%s "
                 "(--on-history-lost resnapshot)%s",
                 (long long)at->seq, be.message, o->db, o->collection,
                 s.log ? "; the change log misses the changes made while the history was lost" : "");
        ok = start_at_now(&s, coll, &cs, true, seq, err);
        if (ok && s.mirror) {
          m2d_key_index_free(s.index);
  m2d_metrics_stop(s.metrics);
          s.index = NULL;
          ok = build_index(&s, err);
        }
        from = s.mirror ? &s.mpos : &s.lpos;
        last_event = now_s();
        continue;
      }
      if (!server_gone(&be) || stopping(&s)) {
        ok = m2d_mongo_error(err, &be, "the change stream failed");
        break;
      }
      /* the server went away: commit what is in hand, then reopen the stream from the position
       * the tables now hold, with a growing pause (the driver reconnects by itself) */
      if (!(ok = flush(&s, err))) break;
      mongoc_change_stream_destroy(cs);
      cs = NULL;
      resume = s.mirror ? s.mpos : s.lpos;
      from = &resume;
      m2d_metrics_counter_add(s.metrics, M2D_METRIC_RECONNECTS, "reconnections after the server went away",
                              M2D_LABELS("collection", s.label), 1);
      for (int wait = 1; !stopping(&s); wait = wait < 30 ? wait * 2 : 30) {
        m2d_warn("the server is gone (%s); reconnecting in %d s, resuming after event %lld", be.message, wait,
                 (long long)resume.seq);
        for (int t = 0; t < wait * 10 && !stopping(&s); t++) usleep(100000);
        cs = open_stream(coll, &resume);
        const bson_t *probe_ev;
        if (mongoc_change_stream_next(cs, &probe_ev)) {
          /* an event right away: handle it below through the normal path */
          event_t e;
          if (!(ok = parse_event(probe_ev, &e, err))) break;
          e.seq = ++seq;
          if (s.nev == 0) batch_start = now_s();
          s.ev[s.nev++] = e;
          sum->events++;
          last_event = now_s();
          m2d_info("reconnected; resumed the change stream");
          break;
        }
        if (!mongoc_change_stream_error_document(cs, &be, &reply)) {
          m2d_info("reconnected; resumed the change stream");
          break;
        }
        if (!server_gone(&be)) break; /* a refusal (such as lost history): handled by the loop */
        mongoc_change_stream_destroy(cs);
        cs = NULL;
      }
      if (!ok || !cs) break;
      last_event = now_s();
      continue;
    }
    if (s.nev && (now_s() - batch_start) * 1000 >= (o->max_latency_ms > 0 ? o->max_latency_ms : 1000))
      ok = flush(&s, err);
    if (ok && s.nev == 0 && o->compact_every > 0 && s.since_compaction >= o->compact_every) compact(&s);
    if (o->stop_when_idle_s > 0 && now_s() - last_event >= o->stop_when_idle_s) break;
    usleep(20000);
  }
  if (ok) ok = flush(&s, err); /* the batch in hand, also on SIGINT/SIGTERM */
  sum->last_seq = seq;
  clear_events(&s);
  free(s.ev);
  m2d_key_index_free(s.index);
  m2d_metrics_stop(s.metrics);
  if (cs) mongoc_change_stream_destroy(cs);
  m2d_table_writer_destroy(s.mirror);
  m2d_table_writer_destroy(s.cdc);
  m2d_table_writer_destroy(s.log);
  if (coll) mongoc_collection_destroy(coll);
  if (client) mongoc_client_destroy(client);
  return ok;
}
