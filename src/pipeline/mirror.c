#include "pipeline/mirror.h"

#include "core/log.h"
#include "delta/dv.h"
#include "delta/log.h"
#include "delta/stats.h"
#include "delta/txn.h"
#include "pipeline/key_index.h"
#include "pipeline/optimize.h"
#include "pipeline/columns_bson.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <time.h>

struct m2d_mirror {
  m2d_mirror_options_t o;
  m2d_table_writer_t *w;   /* the mirror table */
  m2d_table_writer_t *cdc; /* --change-data-feed: writes its _change_data files */
  m2d_key_index_t *index;  /* _id -> file and row */
  int64_t indexed;         /* the table version the index is exact for (-1: the table not created yet),
                              NO_VERSION: none known (then it is not saved) */
  int64_t cached;          /* the version the cache file holds the index as it is now, or NO_VERSION */
};

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static bool mirror_opened(m2d_mirror_t *m, m2d_error_t *err);

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
  m2d_mirror_t *m;
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

static bool index_row(rows_t *r, size_t file, uint64_t row) {
  const char *path = json_string_value(json_object_get(json_array_get(r->adds, file), "path"));
  int32_t f = m2d_key_index_file(r->m->index, path ? path : "");
  if (f >= 0 && m2d_key_index_put(r->m->index, &r->key, f, row)) return true;
  return m2d_error_set(r->err, M2D_ERR_LIMIT, 0, "out of memory for the key index");
}

static bool on_row(const bson_t *doc, const m2d_error_t *row_err, size_t file, uint64_t row, void *ud) {
  rows_t *r = ud;
  if (r->only && !delta_dv_contains(r->only, row)) return true;
  if (!doc) {
    if (r->err) *r->err = *row_err;
    r->failed = true;
    return false;
  }
  bool ok = true;
  if (r->index && m2d_key_index_doc_key(doc, &r->key, NULL)) ok = index_row(r, file, row);
  if (ok && r->collect) {
    bson_t *copy = bson_copy(doc);
    ok = copy && push_doc(&r->docs, &r->n, &r->cap, copy);
    if (!ok && copy) bson_destroy(copy);
  }
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
static bool scan_files(m2d_mirror_t *m, json_t *metadata, json_t *protocol, json_t *adds, bool index_only, rows_t *r,
                       m2d_error_t *err) {
  const char *ss = json_string_value(json_object_get(metadata, "schemaString"));
  r->schema = ss ? json_loads(ss, 0, NULL) : NULL;
  if (!r->schema) return m2d_error_set(err, M2D_ERR_FORMAT, 0, "the mirror table's schema is not readable");
  r->m = m;
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
  return m2d_scan_documents(m2d_table_writer_store(m->w), &fs, index_only ? columns : NULL, on_row, r, err) &&
         !r->failed;
}

/* The key index's cache: a file in the table's store, outside _delta_log and referenced by no
 * log entry, so Delta readers never see it, and under a '_' folder, which vacuum (ours and
 * Spark's) leaves alone. It is only used when its stamp matches the table's now. */
#define INDEX_CACHE "_mongo2delta/keyindex.bin"
#define NO_VERSION INT64_MIN

/* What the index depends on: the table's id and every live file with its deletion vector (files
 * are sorted by path; data files and deletion vector files never change once written). The same
 * stamp at a later version (commits without adds or removes: positions, vacuum's) still matches;
 * a table re-created, compacted or changed by another writer does not. */
static bool index_stamp(const delta_snapshot_t *snap, m2d_buf_t *out, m2d_error_t *err) {
  bool ok = m2d_buf_appendf(out, err, "%s\n", json_string_value(json_object_get(snap->metadata, "id")) ?: "");
  size_t i;
  json_t *add;
  json_array_foreach(snap->files, i, add) {
    json_t *dv = json_object_get(add, "deletionVector");
    ok = ok && m2d_buf_appendf(out, err, "%s\t%s%s@%lld\n", json_string_value(json_object_get(add, "path")) ?: "",
                               json_string_value(json_object_get(dv, "storageType")) ?: "",
                               json_string_value(json_object_get(dv, "pathOrInlineDv")) ?: "",
                               (long long)json_integer_value(json_object_get(dv, "offset")));
  }
  return ok;
}

static void log_index(m2d_mirror_t *m, size_t files, const char *how, double t0) {
  size_t n = m2d_key_index_count(m->index), bytes = m2d_key_index_memory(m->index);
  m2d_info("key index: %zu documents in %zu files of the mirror table, %s in %.1f s (%.1f MiB, %.1f bytes a document)", n,
           files, how, now_s() - t0, bytes / 1048576.0, n ? (double)bytes / (double)n : 0.0);
}

/* The index from the cache when it matches snap; false (with the reason logged) otherwise. */
static bool load_index(m2d_mirror_t *m, const delta_snapshot_t *snap, double t0) {
  m2d_store_t *store = m2d_table_writer_store(m->w);
  m2d_error_t e = {0};
  m2d_buf_t stamp;
  m2d_buf_init(&stamp, (size_t)1 << 30);
  m2d_source_t *src = NULL;
  int64_t saved = -1;
  bool ok = index_stamp(snap, &stamp, &e) && (src = store->open(store, INDEX_CACHE, &e)) &&
            (m->index = m2d_key_index_load(src, (const char *)stamp.data, stamp.len, &saved, &e));
  m2d_source_destroy(src);
  m2d_buf_free(&stamp);
  char how[128];
  snprintf(how, sizeof how, "loaded from its cache " INDEX_CACHE " (saved at version %lld)", (long long)saved);
  if (ok)
    log_index(m, json_array_size(snap->files), how, t0);
  else
    m2d_info("key index: not using its cache %s (%s); building it from the table", INDEX_CACHE, e.message);
  return ok;
}

static bool build_index(m2d_mirror_t *m, m2d_error_t *err) {
  m->indexed = NO_VERSION;
  if (m2d_table_writer_version(m->w) < 0) {
    m->indexed = -1;
    return (m->index = m2d_key_index_new()) != NULL || m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory for the key index");
  }
  double t0 = now_s();
  delta_snapshot_t snap;
  if (!delta_snapshot_load(m2d_table_writer_store(m->w), -1, &snap, err)) return false;
  m->cached = NO_VERSION;
  if (load_index(m, &snap, t0)) {
    m->indexed = m->cached = snap.version;
    delta_snapshot_free(&snap);
    return true;
  }
  m->index = m2d_key_index_new();
  /* sized for the table's live rows at once: no growth (two tables at a time) while building */
  size_t rows = 0, i;
  json_t *add;
  json_array_foreach(snap.files, i, add) {
    int64_t n = delta_stats_num_records(add);
    int64_t gone = json_integer_value(json_object_get(json_object_get(add, "deletionVector"), "cardinality"));
    if (n > gone) rows += (size_t)(n - gone);
  }
  bool ok = m->index && m2d_key_index_reserve(m->index, rows);
  if (!ok) m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory for the key index");
  rows_t r = {.index = true};
  ok = ok && scan_files(m, snap.metadata, snap.protocol, snap.files, true, &r, err);
  size_t files = json_array_size(snap.files);
  rows_free(&r);
  if (ok) m->indexed = snap.version;
  delta_snapshot_free(&snap);
  if (ok) log_index(m, files, "built", t0);
  return ok;
}

void m2d_mirror_save_index(m2d_mirror_t *m) {
  if (!m->index || m->indexed < 0) {
    if (m->index && m->indexed != -1) m2d_info("key index: not saved (another writer changed the mirror table since it was built)");
    return;
  }
  if (m->indexed == m->cached) return; /* the cache holds it already */
  double t0 = now_s();
  m2d_store_t *store = m2d_table_writer_store(m->w);
  delta_snapshot_t snap;
  m2d_error_t e = {0}, *err = &e;
  if (!delta_snapshot_load(store, m->indexed, &snap, err)) {
    m2d_warn("key index: not saved to its cache %s: %s", INDEX_CACHE, e.message);
    return;
  }
  m2d_buf_t stamp;
  m2d_buf_init(&stamp, (size_t)1 << 30);
  m2d_sink_t *sink = NULL;
  bool ok = index_stamp(&snap, &stamp, err) && (sink = store->create(store, INDEX_CACHE, err)) &&
            m2d_key_index_save(m->index, sink, m->indexed, (const char *)stamp.data, stamp.len, err);
  if (sink && ok) ok = m2d_sink_finish(sink, err);
  else if (sink)
    m2d_sink_abort(sink);
  m2d_buf_free(&stamp);
  delta_snapshot_free(&snap);
  if (ok) m->cached = m->indexed;
  if (ok)
    m2d_info("key index: saved to %s for version %lld in %.1f s", INDEX_CACHE, (long long)m->indexed, now_s() - t0);
  else
    m2d_warn("key index: not saved to its cache %s (the next start builds it from the table): %s", INDEX_CACHE, e.message);
}

/* Indexes the new data files of the batch just committed. */
static bool index_new_files(m2d_mirror_t *m, m2d_error_t *err) {
  json_t *added = json_array();
  size_t j;
  json_t *a;
  json_array_foreach((json_t *)m2d_table_writer_last_adds(m->w), j, a) {
    json_t *add = json_object_get(a, "add");
    if (add && !json_object_get(add, "deletionVector")) json_array_append(added, add);
  }
  rows_t r = {.index = true};
  bool ok = !json_array_size(added) ||
            scan_files(m, (json_t *)m2d_table_writer_metadata(m->w), (json_t *)m2d_table_writer_protocol(m->w),
                       added, true, &r, err);
  rows_free(&r);
  json_decref(added);
  return ok;
}

/* --- applying a batch --------------------------------------------------------------------- */


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
static bool change_data(m2d_mirror_t *m, const delta_snapshot_t *snap, json_t *by_path, json_t *last, file_rows_t *gone,
                        int ngone,
                        bson_t **docs, int n, json_t **actions, m2d_error_t *err) {
  bool ok = true;
  m2d_buf_t key;
  m2d_buf_init(&key, (size_t)16 << 20);
  json_t *old = json_object(), *post = json_object(); /* hex key -> index in olds / docs */
  rows_t olds = {.collect = true};
  m2d_buf_init(&olds.key, 1);
  for (int i = 0; ok && i < ngone; i++) {
    json_t *one = json_array();
    const char *path = m2d_key_index_file_path(m->index, gone[i].file);
    json_t *add = json_object_get(by_path, path ? path : "");
    if (add) json_array_append(one, add);
    rows_t r = {.collect = true, .only = gone[i].rows};
    ok = scan_files(m, snap->metadata, snap->protocol, one, false, &r, err);
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
  if (ok && nrows) ok = m2d_table_writer_write(m->cdc, rows, nrows, err) && m2d_table_writer_take_files(m->cdc, &adds, err);
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
static bool apply(m2d_mirror_t *m, const m2d_change_t *ev, int nev, const m2d_app_txn_t *txns, int ntxns,
                  json_t *position, m2d_mirror_counts_t *counts, m2d_error_t *err) {
  const m2d_mirror_options_t *o = &m->o;
  m2d_store_t *store = m2d_table_writer_store(m->w);
  bool ok = true, have = false;
  /* the index changes before the commit: exact again only after it, if no other commit came between */
  int64_t base = m->indexed;
  m->indexed = NO_VERSION;
  delta_snapshot_t snap = {0};
  json_t *by_path = json_object(); /* path -> add of the live files */
  if (m2d_table_writer_version(m->w) >= 0) {
    ok = have = delta_snapshot_load(store, -1, &snap, err);
    size_t i;
    json_t *add;
    if (ok) json_array_foreach(snap.files, i, add) json_object_set(by_path, json_string_value(json_object_get(add, "path")) ?: "", add);
  }
  /* the last event of every document of the batch, and its last event with the document */
  json_t *last = json_object(), *lastdoc = json_object();
  m2d_buf_t key;
  m2d_buf_init(&key, (size_t)16 << 20);
  for (int i = 0; ok && i < nev; i++) {
    const m2d_change_t *e = &ev[i];
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
    const m2d_change_t *e = &ev[json_integer_value(v)];
    if (!m2d_key_index_doc_key(e->id, &key, NULL)) m2d_key_index_doc_key(e->doc, &key, NULL);
    int32_t file;
    uint64_t row;
    bool found = m2d_key_index_get(m->index, &key, &file, &row);
    bool del = strcmp(e->op, "delete") == 0;
    if (found) {
      delta_dv_t *g = rows_of(&gone, &ngone, file);
      ok = g && delta_dv_add(g, row);
      m2d_key_index_remove(m->index, &key);
      if (ok && del && o->soft_delete && !json_object_get(lastdoc, h)) { /* its last version is in the table */
        delta_dv_t *sd = rows_of(&soft, &nsoft, file);
        ok = sd && delta_dv_add(sd, row);
      }
    }
    bson_iter_t id;
    if (del && o->soft_delete && json_object_get(lastdoc, h)) { /* its last version is in the batch */
      const m2d_change_t *u = &ev[json_integer_value(json_object_get(lastdoc, h))];
      ok = ok && push_doc(&docs, &n, &cap, soft_deleted(u->doc, NULL));
      counts->deletes++;
      continue;
    }
    if (del) {
      counts->deletes++;
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
    counts->upserts++;
  }
  /* copy-on-write: the other rows of the files touched come along; soft deletes read back the
   * documents' last versions */
  for (int i = 0; ok && i < ngone; i++) {
    const char *path = m2d_key_index_file_path(m->index, gone[i].file);
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
      ok = scan_files(m, snap.metadata, snap.protocol, one, false, &all, err);
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
      ok = scan_files(m, snap.metadata, snap.protocol, one, false, &old, err);
      for (int k = 0; ok && k < old.n; k++) ok = push_doc(&docs, &n, &cap, soft_deleted(old.docs[k], NULL));
      rows_free(&old);
    }
    json_decref(one);
  }
  json_t *cdc_actions = NULL;
  if (ok && m->cdc) ok = change_data(m, &snap, by_path, last, gone, ngone, docs, n, &cdc_actions, err);
  ok = ok && m2d_table_writer_write(m->w, docs, n, err);
  size_t ci;
  json_t *ca;
  json_array_foreach(cdc_actions, ci, ca) if (ok) ok = m2d_table_writer_add_action(m->w, json_incref(ca), err);
  json_decref(cdc_actions);
  /* the rows leaving: files removed (copy-on-write, or every row gone) or given deletion vectors */
  delta_dv_file_t *dvf = NULL;
  if (ok && !o->rewrite && ngone) {
    dvf = delta_dv_file_new();
    if (!m2d_table_writer_has_feature(m->w, "deletionVectors"))
      m2d_table_writer_enable_feature(m->w, "deletionVectors", true, "delta.enableDeletionVectors");
  }
  for (int i = 0; ok && i < ngone; i++) {
    json_t *add = json_object_get(by_path, m2d_key_index_file_path(m->index, gone[i].file));
    ok = m2d_table_writer_remove_file(m->w, add, err);
    if (!ok || o->rewrite) continue;
    delta_dv_t *dv = gone[i].rows;
    delta_dv_t *old = NULL;
    json_t *od = json_object_get(add, "deletionVector");
    if (json_is_object(od)) ok = (old = delta_dv_load(store, od, err)) && delta_dv_or(dv, old);
    delta_dv_free(old);
    int64_t records = delta_stats_num_records(add);
    if (!ok || (records >= 0 && (int64_t)delta_dv_cardinality(dv) >= records)) continue; /* no row left */
    json_t *desc = delta_dv_file_put(dvf, dv, err);
    ok = desc && m2d_table_writer_add_action(m->w, add_with_dv(add, desc), err);
  }
  if (ok && dvf) ok = delta_dv_file_finish(dvf, store, err);
  int64_t version;
  if (ok) ok = m2d_table_writer_commit_txns(m->w, txns, ntxns, json_incref(position), &version, err);
  else
    m2d_table_writer_abort(m->w);
  if (!ok && dvf) store->remove(store, delta_dv_file_key(dvf), NULL); /* not referenced */
  if (ok) ok = index_new_files(m, err);
  if (ok && base != NO_VERSION && version == base + 1) m->indexed = version;
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

/* After (re)opening the mirror's writer: with --change-data-feed, the table gets the feature
 * (with its next commit) and a writer for its change data files. */
static bool mirror_opened(m2d_mirror_t *m, m2d_error_t *err) {
  if (!m->o.change_data_feed) return true;
  m2d_table_writer_enable_feature(m->w, "changeDataFeed", false, "delta.enableChangeDataFeed");
  m2d_table_writer_destroy(m->cdc);
  m2d_table_writer_options_t co = {.table = m->o.table, .codec = m->o.codec, .level = m->o.level, .data_dir = "_change_data",
                                   .file_prefix = "cdc"};
  return (m->cdc = m2d_table_writer_open(&co, err)) != NULL;
}

/* Reopens the mirror's writer at the table's newest version and rebuilds the key index. */
static bool reopen_mirror(m2d_mirror_t *m, m2d_error_t *err) {
  m2d_table_writer_destroy(m->w);
  m2d_table_writer_options_t mo = {.table = m->o.table, .codec = m->o.codec, .level = m->o.level};
  m2d_key_index_free(m->index);
  m->index = NULL;
  return (m->w = m2d_table_writer_open(&mo, err)) && mirror_opened(m, err) && build_index(m, err);
}

/* --- the mirror's interface ------------------------------------------------------------- */

m2d_mirror_t *m2d_mirror_open(const m2d_mirror_options_t *o, m2d_error_t *err) {
  m2d_mirror_t *m = calloc(1, sizeof *m);
  if (!m) return m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory"), NULL;
  m->o = *o;
  m->indexed = m->cached = NO_VERSION;
  m2d_table_writer_options_t mo = {.table = o->table, .codec = o->codec, .level = o->level};
  if (!(m->w = m2d_table_writer_open(&mo, err)) || !mirror_opened(m, err)) {
    m2d_mirror_close(m);
    return NULL;
  }
  return m;
}

void m2d_mirror_close(m2d_mirror_t *m) {
  if (!m) return;
  m2d_table_writer_destroy(m->w);
  m2d_table_writer_destroy(m->cdc);
  m2d_key_index_free(m->index);
  free(m);
}

m2d_table_writer_t *m2d_mirror_writer(m2d_mirror_t *m) { return m->w; }

bool m2d_mirror_build_index(m2d_mirror_t *m, m2d_error_t *err) {
  m2d_key_index_free(m->index);
  m->index = NULL;
  return build_index(m, err);
}

bool m2d_mirror_apply(m2d_mirror_t *m, const m2d_change_t *changes, int n, const m2d_app_txn_t *txns, int ntxns,
                      const json_t *position, m2d_mirror_counts_t *counts, m2d_error_t *err) {
  json_t *pos = (json_t *)position;
  bool ok = apply(m, changes, n, txns, ntxns, pos, counts, err);
  /* several kafka-ingest instances of one group may keep touching the same files: a few more
   * tries, after a short random pause so that they do not collide again at once */
  for (int retry = 0; !ok && retry < 8 && err && err->domain == M2D_ERR_CONFLICT && err->code == DELTA_CONFLICT_FILES;
       retry++) {
    /* another writer (an optimize run, another instance) replaced files the batch changes: read the table again */
    m2d_warn("%s; reading the mirror table again and retrying the batch", err->message);
    if (retry) {
      struct timespec ts;
      clock_gettime(CLOCK_REALTIME, &ts);
      usleep((useconds_t)(50000 + (ts.tv_nsec / 1000 + getpid() * 7919) % 200000) * (useconds_t)retry);
    }
    ok = reopen_mirror(m, err) && apply(m, changes, n, txns, ntxns, pos, counts, err);
  }
  return ok;
}

void m2d_mirror_compact(m2d_mirror_t *m, volatile sig_atomic_t *stop) {
  if (m2d_table_writer_version(m->w) < 0) return;
  m2d_optimize_options_t oo = {.dv_min_deleted = 0.3, .stop = stop};
  m2d_optimize_summary_t sum;
  m2d_error_t e = {0};
  double t0 = now_s();
  int64_t base = m->indexed;
  m->indexed = NO_VERSION;
  bool ok = m2d_optimize_with_writer(m->w, &oo, &sum, &e);
  if (m2d_table_writer_version(m->w) == base) m->indexed = base; /* nothing committed */
  if (ok && sum.files_removed > 0) {
    rows_t r = {.index = true};
    ok = scan_files(m, (json_t *)m2d_table_writer_metadata(m->w), (json_t *)m2d_table_writer_protocol(m->w), sum.added,
                    true, &r, &e);
    rows_free(&r);
    if (ok && base != NO_VERSION && sum.version == base + 1) m->indexed = sum.version;
    if (!ok) { /* the index no longer matches the table: build it again */
      m2d_error_t e2 = {0};
      if (!reopen_mirror(m, &e2)) m2d_warn("rebuilding the key index: %s", e2.message);
    }
  }
  if (ok && sum.files_removed > 0)
    m2d_info("compacted the mirror: %lld files into %lld (%lld rows, %lld deletion vectors folded) as version %lld in "
             "%.1f s",
             (long long)sum.files_removed, (long long)sum.files_added, (long long)sum.rows, (long long)sum.dvs_folded,
             (long long)sum.version, now_s() - t0);
  else if (!ok)
    m2d_warn("compacting the mirror failed (the table is as it was; tried again later): %s", e.message);
  m2d_optimize_summary_free(&sum);
}
