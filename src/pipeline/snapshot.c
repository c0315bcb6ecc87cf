#include "pipeline/snapshot.h"

#include "core/log.h"
#include "core/progress.h"
#include "delta/actions.h"
#include "mongo/client.h"
#include "mongo/ranges.h"
#include "pipeline/table_writer.h"
#include "schema/infer.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CONFIG_KEY "mongo2delta.snapshot"
#define APP_PREFIX "mongo2delta-snapshot:"
#define BATCH_BSON_BYTES ((size_t)8 << 20)
#define BATCH_DOCS 20000
#define FIND_BATCH_DOCS 4096 /* per getMore: 4 MB of 1 KB documents */
#define MAX_RANGES 1000

typedef struct {
  const m2d_snapshot_options_t *o;
  bson_t *filter, *projection;
  const char *live_flag;
  m2d_range_plan_t plan;
  char run[37];
  bool *done;      /* per range: committed */
  json_t *config;  /* the table configuration holding the plan */
  pthread_mutex_t mu;
  int next;
  m2d_dtype_t *shared; /* the schema every worker writes with */
  int64_t documents, bytes_read, data_files, bytes_written, rescued, version;
  json_t *rescued_fields;
  bool failed;
  m2d_error_t err;
  volatile sig_atomic_t internal_stop;
} run_t;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static bool stopping(run_t *r) { return r->internal_stop || (r->o->stop && *r->o->stop); }

static void fail(run_t *r, const m2d_error_t *e) {
  pthread_mutex_lock(&r->mu);
  if (!r->failed) {
    r->failed = true;
    r->err = *e;
  }
  r->internal_stop = 1;
  pthread_mutex_unlock(&r->mu);
}

/* The schema of a batch of documents, folded into the shared one; returns a copy of the
 * shared schema to write with. */
static m2d_dtype_t *learn(run_t *r, const uint8_t *data, const size_t *offs, int n, m2d_error_t *err) {
  m2d_infer_t *inf = m2d_infer_new(NULL);
  if (!inf) return m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory"), NULL;
  bool ok = true;
  for (int i = 0; ok && i < n; i++) {
    bson_t doc;
    uint32_t len;
    memcpy(&len, data + offs[i], 4);
    ok = bson_init_static(&doc, data + offs[i], len) && m2d_infer_observe(inf, &doc, err);
  }
  m2d_dtype_t *copy = NULL;
  if (ok) {
    m2d_dtype_t *obs = m2d_dtype_clone(m2d_infer_schema(inf));
    if (obs) m2d_dtype_strip_empty(obs);
    pthread_mutex_lock(&r->mu);
    bool changed;
    if (obs && !r->shared) r->shared = m2d_dtype_clone(obs);
    else if (obs) ok = m2d_infer_evolve(r->shared, obs, &changed, err);
    if (ok && r->shared) copy = m2d_dtype_clone(r->shared);
    pthread_mutex_unlock(&r->mu);
    m2d_dtype_free(obs);
  }
  m2d_infer_destroy(inf);
  if (ok && !copy) m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory");
  return copy;
}

static bool write_batch(run_t *r, m2d_table_writer_t *tw, bool *begun, const m2d_buf_t *data, const size_t *offs,
                        int n, int64_t *docs, m2d_error_t *err) {
  m2d_dtype_t *schema = learn(r, data->data, offs, n, err);
  if (!schema) return false;
  bool ok = *begun ? m2d_table_writer_extend(tw, schema, err) : m2d_table_writer_begin(tw, schema, err);
  *begun = *begun || ok;
  m2d_dtype_free(schema);
  int64_t rescued = 0;
  for (int i = 0; ok && i < n && !stopping(r); i++) {
    bson_t doc;
    uint32_t len;
    memcpy(&len, data->data + offs[i], 4);
    ok = bson_init_static(&doc, data->data + offs[i], len) && m2d_table_writer_add(tw, &doc, &rescued, err);
    if (ok) (*docs)++;
  }
  pthread_mutex_lock(&r->mu);
  r->rescued += rescued;
  pthread_mutex_unlock(&r->mu);
  return ok;
}

static void count_docs(run_t *r, int64_t n, int64_t bytes) {
  pthread_mutex_lock(&r->mu);
  r->bytes_read += bytes;
  r->documents += n; /* progress counts documents as they are written; a range undone takes its own back */
  pthread_mutex_unlock(&r->mu);
}

/* Reads range k into the table as one commit. */
static bool do_range(run_t *r, mongoc_collection_t *coll, m2d_table_writer_t *tw, int k, m2d_error_t *err) {
  bson_t *opts = bson_new();
  if (r->projection) BSON_APPEND_DOCUMENT(opts, "projection", r->projection);
  /* MongoDB caps a reply at 16 MiB; mongo-java-server (the test server) sends the rest of the
   * cursor in one getMore when no batchSize is given, which for a large range exceeds the
   * 48 MB message limit libmongoc accepts */
  BSON_APPEND_INT32(opts, "batchSize", FIND_BATCH_DOCS);
  mongoc_cursor_t *cur = mongoc_collection_find_with_opts(coll, r->plan.filters[k], opts, NULL);
  bson_destroy(opts);
  m2d_buf_t data;
  m2d_buf_init(&data, BATCH_BSON_BYTES + ((size_t)17 << 20));
  size_t *offs = calloc(BATCH_DOCS, sizeof *offs);
  int n = 0;
  bool ok = offs != NULL, begun = false;
  int64_t docs = 0;
  const bson_t *doc;
  while (ok && !stopping(r) && mongoc_cursor_next(cur, &doc)) {
    offs[n++] = data.len;
    if (r->live_flag) {
      bson_t marked = BSON_INITIALIZER;
      bson_copy_to_excluding_noinit(doc, &marked, r->live_flag, NULL);
      BSON_APPEND_BOOL(&marked, r->live_flag, false);
      ok = m2d_buf_append(&data, bson_get_data(&marked), marked.len, err);
      bson_destroy(&marked);
    } else {
      ok = m2d_buf_append(&data, bson_get_data(doc), doc->len, err);
    }
    if (ok && (n == BATCH_DOCS || data.len >= BATCH_BSON_BYTES)) {
      int64_t before = docs;
      ok = write_batch(r, tw, &begun, &data, offs, n, &docs, err);
      count_docs(r, docs - before, (int64_t)data.len);
      m2d_buf_reset(&data);
      n = 0;
    }
  }
  bson_error_t e;
  if (ok && mongoc_cursor_error(cur, &e)) ok = m2d_mongo_error(err, &e, "reading the collection");
  mongoc_cursor_destroy(cur);
  if (ok && !stopping(r) && n > 0) {
    int64_t before = docs;
    ok = write_batch(r, tw, &begun, &data, offs, n, &docs, err);
    count_docs(r, docs - before, (int64_t)data.len);
  }
  if (ok && !stopping(r) && !begun) {
    /* an empty range still commits, so that it counts as done */
    pthread_mutex_lock(&r->mu);
    m2d_dtype_t *s = r->shared ? m2d_dtype_clone(r->shared) : m2d_dtype_new(M2D_T_STRUCT);
    pthread_mutex_unlock(&r->mu);
    ok = s && m2d_table_writer_begin(tw, s, err);
    m2d_dtype_free(s);
  }
  m2d_buf_free(&data);
  free(offs);
  if (!ok || stopping(r)) {
    m2d_table_writer_abort(tw);
    count_docs(r, -docs, 0); /* what this range wrote is not committed */
    return ok;
  }
  char app[128];
  snprintf(app, sizeof app, APP_PREFIX "%s:%d", r->run, k);
  json_t *info = json_pack("{sssisI}", "snapshotRun", r->run, "range", k, "documents", (json_int_t)docs);
  int64_t version;
  ok = m2d_table_writer_commit(tw, app, 0, info, &version, err);
  if (ok) {
    m2d_table_writer_stats_t st = m2d_table_writer_last(tw);
    pthread_mutex_lock(&r->mu);
    r->data_files += st.files;
    r->bytes_written += st.bytes;
    if (version > r->version) r->version = version;
    r->done[k] = true;
    pthread_mutex_unlock(&r->mu);
  } else {
    count_docs(r, -docs, 0);
  }
  return ok;
}

static void *worker(void *arg) {
  run_t *r = arg;
  m2d_error_t err = {0};
  mongoc_client_t *client = m2d_mongo_client_get(r->o->pool, r->o->uri, &err);
  m2d_table_writer_options_t to = {.table = r->o->table, .codec = r->o->codec, .level = r->o->level,
                                   .target_file_size = r->o->target_file_size, .partition_by = r->o->partition_by,
                                   .configuration = r->config};
  m2d_table_writer_t *tw = client ? m2d_table_writer_open(&to, &err) : NULL;
  bool ok = tw != NULL;
  mongoc_collection_t *coll = ok ? mongoc_client_get_collection(client, r->o->db, r->o->collection) : NULL;
  while (ok && !stopping(r)) {
    pthread_mutex_lock(&r->mu);
    while (r->next < r->plan.count && r->done[r->next]) r->next++;
    int k = r->next < r->plan.count ? r->next++ : -1;
    pthread_mutex_unlock(&r->mu);
    if (k < 0) break;
    ok = do_range(r, coll, tw, k, &err);
  }
  if (!ok) fail(r, &err);
  if (tw) {
    const char *path;
    json_t *v;
    pthread_mutex_lock(&r->mu);
    json_object_foreach((json_t *)m2d_table_writer_rescued_fields(tw), path, v)
        json_object_set_new(r->rescued_fields, path,
                            json_integer(json_integer_value(json_object_get(r->rescued_fields, path)) +
                                         json_integer_value(v)));
    pthread_mutex_unlock(&r->mu);
  }
  if (coll) mongoc_collection_destroy(coll);
  m2d_table_writer_destroy(tw);
  m2d_mongo_client_put(r->o->pool, client);
  return NULL;
}

static bson_t *parse_json_opt(const char *json, const char *what, m2d_error_t *err) {
  if (!json) return NULL;
  bson_error_t e;
  bson_t *b = bson_new_from_json((const uint8_t *)json, -1, &e);
  if (!b) m2d_error_set(err, M2D_ERR_USAGE, 0, "--%s is not a JSON document: %s", what, e.message);
  return b;
}

/* The plan: from the table (resume) or new. Sets r->config, r->plan, r->run, r->done. */
static bool prepare(run_t *r, mongoc_collection_t *coll, m2d_snapshot_summary_t *sum, m2d_error_t *err) {
  const m2d_snapshot_options_t *o = r->o;
  char source[512];
  snprintf(source, sizeof source, "%s.%s", o->db, o->collection);
  char *filter_json = r->filter ? bson_as_canonical_extended_json(r->filter, NULL) : bson_strdup("{}");
  m2d_table_writer_options_t to = {.table = o->table, .partition_by = o->partition_by};
  m2d_table_writer_t *tw = m2d_table_writer_open(&to, err);
  bool ok = tw != NULL;
  json_t *state = NULL;
  if (ok && m2d_table_writer_version(tw) >= 0) {
    const char *s = json_string_value(json_object_get(m2d_table_writer_configuration(tw), CONFIG_KEY));
    state = s ? json_loads(s, 0, NULL) : NULL;
    bool same = state && json_is_string(json_object_get(state, "source")) &&
                strcmp(json_string_value(json_object_get(state, "source")), source) == 0 &&
                json_is_string(json_object_get(state, "filter")) &&
                strcmp(json_string_value(json_object_get(state, "filter")), filter_json) == 0;
    if (!same && !o->restart) {
      ok = m2d_error_set(err, M2D_ERR_USAGE, 0,
                         state ? "the table holds a snapshot of another collection or filter (%s); use another "
                                 "--table, or --restart to replace its contents"
                               : "the table already holds data that no snapshot of %s wrote; use another --table, "
                                 "or --restart to replace its contents",
                         state ? json_string_value(json_object_get(state, "source")) : source);
    }
    if (ok && same && !o->restart) {
      snprintf(r->run, sizeof r->run, "%s", json_string_value(json_object_get(state, "run")) ? json_string_value(json_object_get(state, "run")) : "");
      char *plan_json = json_dumps(json_object_get(state, "ranges"), JSON_COMPACT);
      ok = plan_json && m2d_ranges_from_json(plan_json, &r->plan, err);
      free(plan_json);
      if (ok) {
        r->config = json_deep_copy(m2d_table_writer_configuration(tw));
        r->done = calloc((size_t)r->plan.count + 1, sizeof *r->done);
        for (int k = 0; k < r->plan.count; k++) {
          char app[128];
          snprintf(app, sizeof app, APP_PREFIX "%s:%d", r->run, k);
          r->done[k] = m2d_table_writer_app_version(tw, app) >= 0;
          sum->ranges_before += r->done[k];
        }
        m2d_info("resuming the snapshot of %s: %d of %d ranges already committed", source, sum->ranges_before,
                 r->plan.count);
      }
    }
  }
  if (ok && !r->config) {
    /* a new plan */
    bson_error_t e;
    int64_t count = mongoc_collection_estimated_document_count(coll, NULL, NULL, NULL, &e);
    int target = o->workers * 4;
    if (count / 200000 > target) target = (int)(count / 200000);
    if (target > MAX_RANGES) target = MAX_RANGES;
    ok = m2d_ranges_plan(coll, target, r->filter, &r->plan, err);
    char *plan_json = ok ? m2d_ranges_to_json(&r->plan) : NULL;
    json_t *ranges = plan_json ? json_loads(plan_json, 0, NULL) : NULL;
    bson_free(plan_json);
    if (ok && !ranges) ok = m2d_error_set(err, M2D_ERR_INTERNAL, 0, "cannot serialize the range plan");
    if (ok) {
      delta_uuid4(r->run);
      json_t *st = json_pack("{sssssssO}", "source", source, "filter", filter_json, "run", r->run, "ranges", ranges);
      char *st_text = json_dumps(st, JSON_COMPACT);
      json_decref(st);
      r->config = json_object();
      json_object_set_new(r->config, CONFIG_KEY, json_string(st_text));
      free(st_text);
      r->done = calloc((size_t)r->plan.count + 1, sizeof *r->done);
      if (m2d_table_writer_version(tw) >= 0) {
        int64_t v;
        /* --restart: the old rows go in one commit; the new plan rides along */
        ok = m2d_table_writer_truncate(tw, json_deep_copy(r->config), &v, err);
        if (ok) m2d_info("--restart: the table's previous contents were removed in version %lld", (long long)v);
      }
    }
    json_decref(ranges);
  }
  if (ok && m2d_table_writer_schema(tw)) r->shared = m2d_dtype_clone(m2d_table_writer_schema(tw));
  sum->ranges = r->plan.count;
  json_decref(state);
  bson_free(filter_json);
  m2d_table_writer_destroy(tw);
  return ok;
}

/* The progress line: documents written and bytes read so far. */
static void progress(run_t *r, m2d_progress_t *line, bool final) {
  pthread_mutex_lock(&r->mu);
  int64_t docs = r->documents, bytes = r->bytes_read;
  pthread_mutex_unlock(&r->mu);
  m2d_progress_set(line, docs, bytes);
  if (final) m2d_progress_end(line);
}

bool m2d_snapshot_run(const m2d_snapshot_options_t *o, m2d_snapshot_summary_t *sum, m2d_error_t *err) {
  memset(sum, 0, sizeof *sum);
  sum->rescued_fields = json_object();
  sum->version = -1;
  run_t r = {.o = o, .version = -1};
  pthread_mutex_init(&r.mu, NULL);
  r.rescued_fields = json_object();
  double t0 = now_s();
  bool ok = true;
  if (o->filter && !(r.filter = parse_json_opt(o->filter, "filter", err))) ok = false;
  r.live_flag = o->live_flag;
  if (ok && o->projection && !(r.projection = parse_json_opt(o->projection, "projection", err))) ok = false;
  m2d_mongo_global_init();
  mongoc_client_t *client = ok ? m2d_mongo_client_get(o->pool, o->uri, err) : NULL;
  ok = ok && client;
  mongoc_collection_t *coll = ok ? mongoc_client_get_collection(client, o->db, o->collection) : NULL;
  bson_error_t e;
  int64_t total = -1;
  if (ok) {
    total = mongoc_collection_estimated_document_count(coll, NULL, NULL, NULL, &e);
    if (total < 0) ok = m2d_mongo_error(err, &e, "cannot reach the collection");
  }
  ok = ok && prepare(&r, coll, sum, err);
  if (ok && sum->ranges_before == sum->ranges && sum->ranges > 0) {
    sum->already_complete = true;
  } else if (ok) {
    int n = o->workers > 0 ? o->workers : 4;
    if (n > r.plan.count) n = r.plan.count;
    pthread_t *th = calloc((size_t)n, sizeof *th);
    int started = 0;
    for (int i = 0; th && i < n; i++)
      if (pthread_create(&th[i], NULL, worker, &r) == 0) started++;
    if (started == 0) ok = m2d_error_set(err, M2D_ERR_INTERNAL, 0, "cannot start worker threads");
    /* progress until every range is taken and the workers end */
    m2d_progress_t line;
    if (o->progress) m2d_progress_begin(&line, "documents", total, "snapshot %s.%s", o->db, o->collection);
    else line.on = false;
    for (;;) {
      bool all = true;
      pthread_mutex_lock(&r.mu);
      for (int k = 0; k < r.plan.count; k++) all &= r.done[k];
      bool failed = r.failed;
      pthread_mutex_unlock(&r.mu);
      if (all || failed || stopping(&r) || started == 0) break;
      progress(&r, &line, false);
      usleep(200000);
    }
    for (int i = 0; i < started; i++) pthread_join(th[i], NULL);
    free(th);
    progress(&r, &line, true);
    if (r.failed) {
      ok = false;
      if (err) *err = r.err;
    }
    sum->interrupted = ok && o->stop && *o->stop;
  }
  sum->documents = r.documents;
  sum->bytes_read = r.bytes_read;
  sum->data_files = r.data_files;
  sum->bytes_written = r.bytes_written;
  sum->rescued = r.rescued;
  sum->version = r.version;
  json_object_update(sum->rescued_fields, r.rescued_fields);
  sum->seconds = now_s() - t0;
  if (coll) mongoc_collection_destroy(coll);
  m2d_mongo_client_put(o->pool, client);
  m2d_ranges_free(&r.plan);
  free(r.done);
  json_decref(r.config);
  json_decref(r.rescued_fields);
  m2d_dtype_free(r.shared);
  if (r.filter) bson_destroy(r.filter);
  if (r.projection) bson_destroy(r.projection);
  pthread_mutex_destroy(&r.mu);
  return ok;
}

void m2d_snapshot_summary_free(m2d_snapshot_summary_t *sum) {
  json_decref(sum->rescued_fields);
  sum->rescued_fields = NULL;
}
