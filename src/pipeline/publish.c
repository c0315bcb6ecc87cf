#include "pipeline/publish.h"

#include "core/log.h"
#include "core/progress.h"
#include "delta/log.h"
#include "pipeline/columns_bson.h"
#include "mongo/client.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define STATE_COLLECTION "mongo2delta_publish"
#define MAX_RETRIES 5

typedef enum { OP_UPSERT, OP_REPLACE, OP_INSERT, OP_DELETE } op_kind_t;

typedef struct {
  op_kind_t kind;
  bson_t *filter, *doc;
} op_t;

typedef struct {
  const m2d_publish_options_t *o;
  m2d_publish_summary_t *sum;
  mongoc_collection_t *coll;
  json_t *schema;
  op_t *ops;
  int nops;
  m2d_error_t *err;
  bool failed;
  /* incremental */
  json_t *before;     /* key -> document bytes of the rows in removed files */
  json_t *seen_keys;  /* keys present after (delete-missing) */
  bool collect_keys;
  m2d_progress_t line; /* on when o->progress */
} pub_t;

static void ops_clear(pub_t *p) {
  for (int i = 0; i < p->nops; i++) {
    if (p->ops[i].filter) bson_destroy(p->ops[i].filter);
    if (p->ops[i].doc) bson_destroy(p->ops[i].doc);
  }
  p->nops = 0;
}

static bool transient(const bson_error_t *e) {
  return e->domain == MONGOC_ERROR_STREAM || e->domain == MONGOC_ERROR_SERVER_SELECTION ||
         (e->domain == MONGOC_ERROR_SERVER && (e->code == 11600 || e->code == 11602 || e->code == 189 ||
                                               e->code == 91 || e->code == 10107 || e->code == 13435));
}

/* Executes the batch in hand (unordered), retrying it whole on transient errors (every
 * operation is idempotent by key). */
static bool flush(pub_t *p) {
  if (p->nops == 0) return true;
  bool ok = false;
  for (int attempt = 0; attempt <= MAX_RETRIES; attempt++) {
    bson_t opts = BSON_INITIALIZER;
    BSON_APPEND_BOOL(&opts, "ordered", false);
    mongoc_bulk_operation_t *bulk = mongoc_collection_create_bulk_operation_with_opts(p->coll, &opts);
    bson_destroy(&opts);
    bson_error_t e;
    bool built = true;
    for (int i = 0; built && i < p->nops; i++) {
      op_t *op = &p->ops[i];
      /* field names are the server's to judge (MongoDB 5 takes "", "$x" and "a.b"), not the driver's */
      bson_t uo = BSON_INITIALIZER, io = BSON_INITIALIZER;
      BSON_APPEND_BOOL(&uo, "upsert", true);
      BSON_APPEND_BOOL(&uo, "validate", false);
      BSON_APPEND_BOOL(&io, "validate", false);
      switch (op->kind) {
      case OP_UPSERT: built = mongoc_bulk_operation_update_one_with_opts(bulk, op->filter, op->doc, &uo, &e); break;
      case OP_REPLACE: built = mongoc_bulk_operation_replace_one_with_opts(bulk, op->filter, op->doc, &uo, &e); break;
      case OP_INSERT: built = mongoc_bulk_operation_insert_with_opts(bulk, op->doc, &io, &e); break;
      case OP_DELETE: built = mongoc_bulk_operation_remove_one_with_opts(bulk, op->filter, NULL, &e); break;
      }
      bson_destroy(&uo);
      bson_destroy(&io);
    }
    if (!built) {
      mongoc_bulk_operation_destroy(bulk);
      m2d_mongo_error(p->err, &e, "building a bulk write");
      break;
    }
    bson_t reply;
    uint32_t server = mongoc_bulk_operation_execute(bulk, &reply, &e);
    bson_iter_t it;
    int64_t nerr = 0;
    if (bson_iter_init_find(&it, &reply, "writeErrors") && BSON_ITER_HOLDS_ARRAY(&it)) {
      bson_iter_t a;
      bson_iter_recurse(&it, &a);
      while (bson_iter_next(&a)) {
        if (nerr == 0 && !p->sum->first_failure[0] && BSON_ITER_HOLDS_DOCUMENT(&a)) {
          bson_iter_t m;
          if (bson_iter_recurse(&a, &m) && bson_iter_find(&m, "errmsg"))
            snprintf(p->sum->first_failure, sizeof p->sum->first_failure, "%s", bson_iter_utf8(&m, NULL));
        }
        nerr++;
      }
    }
    bool retry = !server && nerr == 0 && transient(&e) && attempt < MAX_RETRIES;
    if (server || nerr > 0 || !retry) {
      static const char *const counters[] = {"nInserted", "nUpserted", "nMatched", "nModified", "nRemoved"};
      int64_t *dst[] = {&p->sum->inserted, &p->sum->upserted, &p->sum->matched, &p->sum->modified, &p->sum->deleted};
      for (int k = 0; k < 5; k++)
        if (bson_iter_init_find(&it, &reply, counters[k])) *dst[k] += bson_iter_as_int64(&it);
      p->sum->failed += nerr;
      ok = server || nerr > 0;
      if (!ok) m2d_mongo_error(p->err, &e, "bulk write");
    }
    bson_destroy(&reply);
    mongoc_bulk_operation_destroy(bulk);
    if (!retry) break;
    m2d_warn("bulk write failed (%s); retrying in %d s", e.message, 1 << attempt);
    sleep(1u << attempt);
  }
  ops_clear(p);
  return ok;
}

/* The key filter of doc ({k1: v1, ...}); false when a key field is missing. */
static bool key_filter(pub_t *p, const bson_t *doc, bson_t *filter) {
  for (int i = 0; i < p->o->nkeys; i++) {
    bson_iter_t it;
    if (!bson_iter_init_find(&it, doc, p->o->keys[i])) return false;
    bson_append_iter(filter, p->o->keys[i], -1, &it);
  }
  return true;
}

static char *key_text(const bson_t *filter) { return bson_as_canonical_extended_json(filter, NULL); }

static bool push(pub_t *p, op_kind_t kind, bson_t *filter, bson_t *doc) {
  op_t *op = &p->ops[p->nops++];
  op->kind = kind;
  op->filter = filter;
  op->doc = doc;
  return p->nops < p->o->batch_size || flush(p);
}

/* One row to one write (row_err: why the row has no document). */
static bool write_row(pub_t *p, const bson_t *row, const m2d_error_t *row_err) {
  m2d_error_t e = {0};
  if (!row) e = *row_err;
  bson_t *doc = row ? bson_copy(row) : NULL;
  bson_t *filter = bson_new();
  bool ok = doc != NULL;
  if (ok && !key_filter(p, doc, filter)) {
    ok = false;
    snprintf(e.message, sizeof e.message, "a row has no key field (%s)", p->o->keys[0]);
  }
  if (!ok) {
    p->sum->failed++;
    if (!p->sum->first_failure[0]) snprintf(p->sum->first_failure, sizeof p->sum->first_failure, "%s", e.message);
    if (doc) bson_destroy(doc);
    bson_destroy(filter);
    return true;
  }
  if (p->collect_keys) {
    char *k = key_text(filter);
    json_object_set_new(p->seen_keys, k, json_true());
    bson_free(k);
  }
  switch (p->o->mode) {
  case M2D_PUBLISH_UPSERT: {
    /* $set every field but _id (when _id is not the key, a new document gets it on insert) */
    bson_t *upd = bson_new(), set, soi;
    bson_iter_t it;
    BSON_APPEND_DOCUMENT_BEGIN(upd, "$set", &set);
    bson_iter_init(&it, doc);
    while (bson_iter_next(&it))
      if (strcmp(bson_iter_key(&it), "_id") != 0) bson_append_iter(&set, NULL, 0, &it);
    bson_append_document_end(upd, &set);
    if (bson_iter_init_find(&it, doc, "_id") && strcmp(p->o->keys[0], "_id") != 0) {
      BSON_APPEND_DOCUMENT_BEGIN(upd, "$setOnInsert", &soi);
      bson_append_iter(&soi, NULL, 0, &it);
      bson_append_document_end(upd, &soi);
    }
    bson_destroy(doc);
    return push(p, OP_UPSERT, filter, upd);
  }
  case M2D_PUBLISH_REPLACE: return push(p, OP_REPLACE, filter, doc);
  case M2D_PUBLISH_INSERT: bson_destroy(filter); return push(p, OP_INSERT, NULL, doc);
  }
  return true;
}

static void progress(pub_t *p, bool final) {
  if (!final && !m2d_progress_due(&p->line)) return; /* every row comes here: the text only when drawn */
  snprintf(p->line.extra, sizeof p->line.extra, "%lld written, %lld unchanged, %lld failed",
           (long long)(p->sum->inserted + p->sum->upserted + p->sum->modified + p->sum->deleted),
           (long long)p->sum->unchanged, (long long)p->sum->failed);
  m2d_progress_set(&p->line, p->sum->rows, 0);
  if (final) m2d_progress_end(&p->line);
}

static bool on_row(const bson_t *doc, const m2d_error_t *row_err, size_t file, uint64_t row, void *ud) {
  (void)file, (void)row;
  pub_t *p = ud;
  if (p->o->stop && *p->o->stop) return false;
  p->sum->rows++;
  if (p->before && doc) {
    /* incremental: a row identical to one of the removed files is not a change */
    bson_t *filter = bson_new();
    char *k = key_filter(p, doc, filter) ? key_text(filter) : NULL;
    bson_destroy(filter);
    if (k) {
      json_t *old = json_object_get(p->before, k);
      bool same = old && json_string_length(old) == doc->len && memcmp(json_string_value(old), bson_get_data(doc), doc->len) == 0;
      json_object_set_new(p->seen_keys, k, json_true());
      bson_free(k);
      if (same) {
        p->sum->unchanged++;
        progress(p, false);
        return true;
      }
    }
  }
  bool ok = write_row(p, doc, row_err);
  if (!ok) p->failed = true;
  progress(p, false);
  return ok;
}

/* Rows of the removed files, by key (incremental): the document's bytes. */
static bool on_before_row(const bson_t *doc, const m2d_error_t *row_err, size_t file, uint64_t row, void *ud) {
  (void)row_err, (void)file, (void)row;
  pub_t *p = ud;
  bson_t *filter = bson_new();
  if (doc && key_filter(p, doc, filter)) {
    char *k = key_text(filter);
    json_object_set_new(p->before, k, json_stringn_nocheck((const char *)bson_get_data(doc), doc->len));
    bson_free(k);
  }
  bson_destroy(filter);
  return true;
}

/* Files of a not in b. */
static json_t *minus(json_t *a, json_t *b) {
  json_t *keys = json_object(), *out = json_array();
  size_t i;
  json_t *f;
  char k[8192];
  json_array_foreach(b, i, f) {
    delta_file_key(f, k, sizeof k);
    json_object_set_new(keys, k, json_true());
  }
  json_array_foreach(a, i, f) {
    delta_file_key(f, k, sizeof k);
    if (!json_object_get(keys, k)) json_array_append(out, f);
  }
  json_decref(keys);
  return out;
}

static bool scan_files(m2d_store_t *store, const delta_snapshot_t *like, json_t *files, m2d_doc_fn fn, void *ud,
                       m2d_error_t *err) {
  delta_snapshot_t s = *like;
  s.files = files;
  return m2d_scan_documents(store, &s, NULL, fn, ud, err);
}

static bool delete_keys(pub_t *p, json_t *before) {
  const char *k;
  json_t *v;
  json_object_foreach(before, k, v) {
    if (json_object_get(p->seen_keys, k)) continue;
    bson_error_t e;
    bson_t *filter = bson_new_from_json((const uint8_t *)k, -1, &e);
    if (!filter) continue;
    if (!push(p, OP_DELETE, filter, NULL)) return false;
  }
  return true;
}

/* Full publish with --delete-missing: documents whose key no row has. */
static bool delete_others(pub_t *p) {
  bson_t proj = BSON_INITIALIZER, opts = BSON_INITIALIZER;
  for (int i = 0; i < p->o->nkeys; i++) BSON_APPEND_INT32(&proj, p->o->keys[i], 1);
  BSON_APPEND_DOCUMENT(&opts, "projection", &proj);
  mongoc_cursor_t *cur = mongoc_collection_find_with_opts(p->coll, &(bson_t)BSON_INITIALIZER, &opts, NULL);
  const bson_t *doc;
  json_t *gone = json_object();
  while (mongoc_cursor_next(cur, &doc)) {
    bson_t f = BSON_INITIALIZER;
    if (key_filter(p, doc, &f)) {
      char *k = key_text(&f);
      if (!json_object_get(p->seen_keys, k)) json_object_set_new(gone, k, json_true());
      bson_free(k);
    }
    bson_destroy(&f);
  }
  bson_error_t e;
  bool ok = !mongoc_cursor_error(cur, &e) || m2d_mongo_error(p->err, &e, "reading the collection's keys");
  mongoc_cursor_destroy(cur);
  bson_destroy(&proj);
  bson_destroy(&opts);
  ok = ok && delete_keys(p, gone);
  json_decref(gone);
  return ok;
}

bool m2d_publish_run(const m2d_publish_options_t *o, m2d_publish_summary_t *sum, m2d_error_t *err) {
  memset(sum, 0, sizeof *sum);
  sum->from_version = -1;
  pub_t p = {.o = o, .sum = sum, .err = err};
  p.ops = calloc((size_t)(o->batch_size > 0 ? o->batch_size : 1) + 1, sizeof *p.ops);
  m2d_store_t *store = m2d_store_open(o->table, err);
  delta_snapshot_t now = {0}, then = {0};
  bool have_now = false, have_then = false;
  bool ok = store && p.ops && (have_now = delta_snapshot_load(store, -1, &now, err));
  mongoc_client_t *client = NULL;
  mongoc_collection_t *state = NULL;
  char state_id[PATH_MAX + 512];
  char abs[PATH_MAX];
  if (ok) {
    sum->to_version = now.version;
    if (o->progress) m2d_progress_begin(&p.line, "rows", 0, "publish %s to %s.%s", o->table, o->db, o->collection);
    const char *ss = json_string_value(json_object_get(now.metadata, "schemaString"));
    json_error_t je;
    p.schema = ss ? json_loads(ss, 0, &je) : NULL;
    if (!p.schema) ok = m2d_error_set(err, M2D_ERR_FORMAT, 0, "the table's schemaString is not readable");
  }
  if (ok) {
    m2d_mongo_global_init();
    client = m2d_mongo_client_new(o->uri, err);
    ok = client != NULL;
  }
  if (ok) {
    p.coll = mongoc_client_get_collection(client, o->db, o->collection);
    state = mongoc_client_get_collection(client, o->db, STATE_COLLECTION);
    if (!realpath(o->table, abs)) snprintf(abs, sizeof abs, "%s", o->table);
    snprintf(state_id, sizeof state_id, "%s -> %s", abs, o->collection);
  }
  /* where to start */
  int64_t from = -1; /* the version already published (-1: nothing) */
  if (ok && o->from_version >= 0) {
    from = o->from_version - 1;
  } else if (ok && o->incremental) {
    bson_t *q = BCON_NEW("_id", BCON_UTF8(state_id));
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(state, q, NULL, NULL);
    const bson_t *doc;
    bson_iter_t it;
    if (mongoc_cursor_next(cur, &doc) && bson_iter_init_find(&it, doc, "version")) from = bson_iter_as_int64(&it);
    bson_error_t e;
    if (mongoc_cursor_error(cur, &e)) ok = m2d_mongo_error(err, &e, "reading the last published version");
    mongoc_cursor_destroy(cur);
    bson_destroy(q);
  }
  if (ok && from > now.version)
    ok = m2d_error_set(err, M2D_ERR_USAGE, 0,
                       "the collection was published from version %lld, newer than the table's %lld: was the table "
                       "replaced? publish without --incremental to start over",
                       (long long)from, (long long)now.version);
  if (ok && from == now.version) {
    sum->nothing_to_do = true;
    sum->from_version = from;
  } else if (ok && from < 0) {
    /* everything */
    p.collect_keys = o->delete_missing;
    p.seen_keys = json_object();
    ok = m2d_scan_documents(store, &now, NULL, on_row, &p, err) && !p.failed;
    ok = ok && flush(&p);
    if (ok && o->delete_missing) ok = delete_others(&p) && flush(&p);
  } else if (ok) {
    sum->from_version = from;
    ok = have_then = delta_snapshot_load(store, from, &then, err);
    json_t *removed = ok ? minus(then.files, now.files) : NULL;
    json_t *added = ok ? minus(now.files, then.files) : NULL;
    p.before = json_object();
    p.seen_keys = json_object();
    /* both sides read with today's schema, so that unchanged rows give the same document */
    if (ok) ok = scan_files(store, &now, removed, on_before_row, &p, err);
    if (ok) ok = scan_files(store, &now, added, on_row, &p, err) && !p.failed;
    if (ok && o->delete_missing) ok = delete_keys(&p, p.before);
    ok = ok && flush(&p);
    json_decref(removed);
    json_decref(added);
  }
  if (ok && o->stop && *o->stop) ok = m2d_error_set(err, M2D_ERR_INTERNAL, 0, "interrupted; run the same command again");
  if (ok && !sum->nothing_to_do) {
    /* remember the version only once everything of it is written */
    bson_t *q = BCON_NEW("_id", BCON_UTF8(state_id));
    bson_t *u = BCON_NEW("$set", "{", "version", BCON_INT64(now.version), "table", BCON_UTF8(abs), "collection",
                         BCON_UTF8(o->collection), "updated", BCON_DATE_TIME((int64_t)time(NULL) * 1000), "}");
    bson_t *uo = BCON_NEW("upsert", BCON_BOOL(true));
    bson_error_t e;
    if (!mongoc_collection_update_one(state, q, u, uo, NULL, &e)) ok = m2d_mongo_error(err, &e, "recording the published version");
    bson_destroy(q);
    bson_destroy(u);
    bson_destroy(uo);
  }
  progress(&p, true);
  ops_clear(&p);
  free(p.ops);
  json_decref(p.schema);
  json_decref(p.before);
  json_decref(p.seen_keys);
  if (have_now) delta_snapshot_free(&now);
  if (have_then) delta_snapshot_free(&then);
  if (state) mongoc_collection_destroy(state);
  if (p.coll) mongoc_collection_destroy(p.coll);
  if (client) mongoc_client_destroy(client);
  m2d_store_destroy(store);
  return ok;
}
