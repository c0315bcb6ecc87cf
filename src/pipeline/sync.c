#include "pipeline/sync.h"

#include "core/log.h"
#include "delta/log.h"
#include "delta/scan.h"
#include "mongo/client.h"
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
  pos_t mpos, lpos;
  json_t *index; /* mirror: canonical {"_id": v} -> file path */
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

static char *key_of(const bson_t *doc) {
  bson_iter_t it;
  if (!bson_iter_init_find(&it, doc, "_id")) return NULL;
  bson_t k = BSON_INITIALIZER;
  bson_append_iter(&k, "_id", 3, &it);
  char *s = bson_as_canonical_extended_json(&k, NULL);
  bson_destroy(&k);
  return s;
}

typedef struct {
  sync_t *s;
  const json_t *schema;
  const char *path;
  bool collect;  /* keep the rows read (rewrite), or only index them */
  bson_t **docs;
  int n, cap;
  bool failed;
  m2d_error_t *err;
} rows_t;

static bool on_row(const char *json, size_t len, void *ud) {
  rows_t *r = ud;
  json_t *row = json_loadb(json, len, JSON_ALLOW_NUL, NULL);
  bson_t *doc = bson_new();
  bool ok = row && m2d_row_to_bson(r->schema, row, doc, r->err);
  json_decref(row);
  if (!ok) {
    r->failed = true;
    bson_destroy(doc);
    return false;
  }
  char *k = key_of(doc);
  if (k && r->path) json_object_set_new(r->s->index, k, json_string(r->path));
  bson_free(k);
  if (r->collect) {
    if (r->n == r->cap) {
      r->cap = r->cap ? r->cap * 2 : 256;
      r->docs = realloc(r->docs, (size_t)r->cap * sizeof *r->docs);
    }
    r->docs[r->n++] = doc;
  } else {
    bson_destroy(doc);
  }
  return true;
}

/* Reads the rows of the given add actions (one file at a time, so each row's file is known). */
static bool read_files(sync_t *s, const delta_snapshot_t *snap, json_t *adds, rows_t *r, m2d_error_t *err) {
  const char *ss = json_string_value(json_object_get(snap->metadata, "schemaString"));
  json_t *schema = ss ? json_loads(ss, 0, NULL) : NULL;
  if (!schema) return m2d_error_set(err, M2D_ERR_FORMAT, 0, "the mirror table's schema is not readable");
  r->s = s;
  r->schema = schema;
  r->err = err;
  bool ok = true;
  size_t i;
  json_t *add;
  json_array_foreach(adds, i, add) {
    json_t *one = json_array();
    json_array_append(one, add);
    delta_snapshot_t fs = *snap;
    fs.files = one;
    r->path = json_string_value(json_object_get(add, "path"));
    ok = delta_scan(m2d_table_writer_store(s->mirror), &fs, NULL, -1, on_row, r, err) && !r->failed;
    json_decref(one);
    if (!ok) break;
  }
  json_decref(schema);
  return ok;
}

static bool build_index(sync_t *s, m2d_error_t *err) {
  s->index = json_object();
  if (m2d_table_writer_version(s->mirror) < 0) return true;
  delta_snapshot_t snap;
  if (!delta_snapshot_load(m2d_table_writer_store(s->mirror), -1, &snap, err)) return false;
  rows_t r = {0};
  bool ok = read_files(s, &snap, snap.files, &r, err);
  delta_snapshot_free(&snap);
  m2d_info("key index: %zu documents in the mirror table", json_object_size(s->index));
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

static bool apply_mirror(sync_t *s, int64_t batch, m2d_error_t *err) {
  /* the last state of every _id in the batch */
  json_t *last = json_object(); /* key -> index of its last event */
  for (int i = 0; i < s->nev; i++) {
    event_t *e = &s->ev[i];
    char *k = e->id ? key_of(e->id) : NULL;
    if (!k && e->doc) k = key_of(e->doc);
    if (!k) continue;
    json_object_set_new(last, k, json_integer(i));
    bson_free(k);
  }
  delta_snapshot_t snap = {0};
  bool have = false, ok = true;
  json_t *affected = json_array(), *paths = json_object();
  if (m2d_table_writer_version(s->mirror) >= 0) {
    ok = have = delta_snapshot_load(m2d_table_writer_store(s->mirror), -1, &snap, err);
    const char *k;
    json_t *v;
    json_object_foreach(last, k, v) {
      const char *path = json_string_value(json_object_get(s->index, k));
      if (path) json_object_set_new(paths, path, json_true());
    }
    size_t i;
    json_t *add;
    if (ok) json_array_foreach(snap.files, i, add) if (json_object_get(paths, json_string_value(json_object_get(add, "path"))))
        json_array_append(affected, add);
  }
  rows_t r = {.collect = true};
  rows_t keep = {0};
  if (ok && json_array_size(affected)) ok = read_files(s, &snap, affected, &r, err);
  /* the rows of the rewritten files that the batch does not touch, then the batch's documents */
  for (int i = 0; ok && i < r.n; i++) {
    char *k = key_of(r.docs[i]);
    json_object_del(s->index, k ? k : "");
    if (k && !json_object_get(last, k)) {
      if (keep.n == keep.cap) keep.cap = keep.cap ? keep.cap * 2 : 256, keep.docs = realloc(keep.docs, (size_t)keep.cap * sizeof *keep.docs);
      keep.docs[keep.n++] = r.docs[i];
      r.docs[i] = NULL;
    }
    bson_free(k);
  }
  const char *k;
  json_t *v;
  json_object_foreach(last, k, v) {
    event_t *e = &s->ev[json_integer_value(v)];
    json_object_del(s->index, k);
    bool del = strcmp(e->op, "delete") == 0;
    bson_iter_t it;
    bool has_id = e->doc && bson_iter_init_find(&it, e->doc, "_id");
    if (!del && !has_id) continue; /* the document was gone when the event was read: a delete follows */
    if (del) {
      s->sum->deletes++;
      continue;
    }
    if (keep.n == keep.cap) keep.cap = keep.cap ? keep.cap * 2 : 256, keep.docs = realloc(keep.docs, (size_t)keep.cap * sizeof *keep.docs);
    keep.docs[keep.n++] = bson_copy(e->doc);
    s->sum->upserts++;
  }
  if (ok) ok = write_docs(s->mirror, keep.docs, keep.n, err);
  size_t i;
  json_t *add;
  json_array_foreach(affected, i, add) if (ok) ok = m2d_table_writer_remove_file(s->mirror, add, err);
  int64_t version;
  const event_t *lastev = s->nev ? &s->ev[s->nev - 1] : NULL;
  if (ok)
    ok = m2d_table_writer_commit(s->mirror, s->app, batch, position_info(lastev, lastev ? lastev->seq : s->mpos.seq, &s->mpos),
                                 &version, err);
  if (ok) {
    /* index the new files */
    delta_snapshot_t now;
    if ((ok = delta_snapshot_load(m2d_table_writer_store(s->mirror), version, &now, err))) {
      rows_t idx = {0};
      json_t *added = json_array();
      size_t j;
      json_t *a;
      json_array_foreach((json_t *)m2d_table_writer_last_adds(s->mirror), j, a) json_array_append(added, json_object_get(a, "add"));
      ok = read_files(s, &now, added, &idx, err);
      json_decref(added);
      delta_snapshot_free(&now);
    }
  }
  for (int j = 0; j < r.n; j++)
    if (r.docs[j]) bson_destroy(r.docs[j]);
  free(r.docs);
  for (int j = 0; j < keep.n; j++) bson_destroy(keep.docs[j]);
  free(keep.docs);
  json_decref(affected);
  json_decref(paths);
  json_decref(last);
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
    if (ok) set_position(&s->mpos, b, lastev);
  }
  if (ok) {
    s->sum->batches++;
    s->sum->last_seq = lastev->seq;
    double t2 = now_s();
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

bool m2d_sync_run(const m2d_sync_options_t *o, m2d_sync_summary_t *sum, m2d_error_t *err) {
  memset(sum, 0, sizeof *sum);
  sync_t s = {.o = o, .sum = sum};
  snprintf(s.app, sizeof s.app, APP_PREFIX "%s.%s", o->db, o->collection);
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
  if (ok && o->mirror) ok = (s.mirror = m2d_table_writer_open(&mo, err)) && read_position(s.mirror, s.app, &s.mpos, err);
  if (ok && o->changelog) ok = (s.log = m2d_table_writer_open(&lo, err)) && read_position(s.log, s.app, &s.lpos, err);
  if (ok && !s.mirror) s.mpos.batch = -1;
  if (ok && !s.log) s.lpos.batch = -1;
  /* where the stream starts: the mirror's position (it is never ahead of the change log) */
  const pos_t *from = s.mirror ? &s.mpos : &s.lpos;
  if (ok && from->batch < 0) {
    /* a first run: open the stream before the snapshot reads anything */
    /* opened at the server's "now"; until an event comes, the position recorded is the clock */
    cs = open_stream(coll, NULL);
    s.mpos.ct_t = s.lpos.ct_t = (uint32_t)time(NULL);
    if (s.mirror && o->initial_snapshot) {
      m2d_table_writer_destroy(s.mirror);
      s.mirror = NULL;
      m2d_snapshot_options_t so = {.uri = o->uri, .db = o->db, .collection = o->collection, .table = o->table,
                                   .workers = o->workers, .codec = PQ_CODEC_SNAPPY, .restart = true, .stop = o->stop};
      m2d_snapshot_summary_t ss;
      /* a table without a sync position is loaded again from the start */
      m2d_table_writer_options_t probe = {.table = o->table};
      m2d_table_writer_t *pw = m2d_table_writer_open(&probe, err);
      ok = pw != NULL;
      so.restart = pw && m2d_table_writer_version(pw) >= 0;
      m2d_table_writer_destroy(pw);
      ok = ok && m2d_snapshot_run(&so, &ss, err);
      if (ok && ss.interrupted) ok = m2d_error_set(err, M2D_ERR_INTERNAL, 0, "interrupted during the initial snapshot");
      m2d_snapshot_summary_free(&ss);
      sum->snapshotted = ok;
      if (ok) ok = (s.mirror = m2d_table_writer_open(&mo, err)) != NULL;
    }
    s.mpos.seq = s.lpos.seq = 0;
    /* the hand-over: both tables record where the stream started, so that a crash from here on
     * resumes the stream instead of snapshotting again (and losing what happened meanwhile) */
    const bson_t *tok = ok ? mongoc_change_stream_get_resume_token(cs) : NULL;
    if (tok) {
      char *j = bson_as_canonical_extended_json(tok, NULL);
      snprintf(s.mpos.token, sizeof s.mpos.token, "%s", j ? j : "");
      snprintf(s.lpos.token, sizeof s.lpos.token, "%s", j ? j : "");
      bson_free(j);
    }
    m2d_table_writer_t *tables[2] = {s.log, s.mirror};
    pos_t *positions[2] = {&s.lpos, &s.mpos};
    for (int t = 0; ok && t < 2; t++) {
      if (!tables[t]) continue;
      m2d_dtype_t *none = m2d_dtype_new(M2D_T_STRUCT);
      int64_t v;
      ok = none && m2d_table_writer_begin(tables[t], none, err) &&
           m2d_table_writer_commit(tables[t], s.app, 0, position_info(NULL, 0, positions[t]), &v, err);
      m2d_dtype_free(none);
      positions[t]->batch = 0;
    }
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
      if (s.nev >= cap) ok = flush(&s, err);
      continue;
    }
    bson_error_t be;
    const bson_t *reply;
    if (mongoc_change_stream_error_document(cs, &be, &reply)) {
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
        if (!server_gone(&be)) {
          ok = m2d_mongo_error(err, &be, "the change stream failed after reconnecting");
          break;
        }
        mongoc_change_stream_destroy(cs);
        cs = NULL;
      }
      if (!ok || !cs) break;
      last_event = now_s();
      continue;
    }
    if (s.nev && (now_s() - batch_start) * 1000 >= (o->max_latency_ms > 0 ? o->max_latency_ms : 1000))
      ok = flush(&s, err);
    if (o->stop_when_idle_s > 0 && now_s() - last_event >= o->stop_when_idle_s) break;
    usleep(20000);
  }
  if (ok) ok = flush(&s, err); /* the batch in hand, also on SIGINT/SIGTERM */
  sum->last_seq = seq;
  clear_events(&s);
  free(s.ev);
  json_decref(s.index);
  if (cs) mongoc_change_stream_destroy(cs);
  m2d_table_writer_destroy(s.mirror);
  m2d_table_writer_destroy(s.log);
  if (coll) mongoc_collection_destroy(coll);
  if (client) mongoc_client_destroy(client);
  return ok;
}
