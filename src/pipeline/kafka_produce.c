#include "pipeline/kafka_produce.h"

#include "core/log.h"
#include "core/progress.h"
#include "core/metrics.h"
#include "kafka/admin.h"
#include "kafka/offsets.h"
#include "kafka/producer.h"
#include "mongo/change_stream.h"
#include "mongo/client.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define TXN_TIMEOUT_MS 60000
#define RETRY_FOR_S 600 /* how long a broker may stay away before the run gives up */

/* Where the source is: copying (collection, last _id copied) or streaming (resume token, or
 * cluster time when the stream had none yet), and the number of the last event. */
typedef struct {
  bool copy;
  char token[1024];  /* canonical Extended JSON, "" when unknown */
  uint32_t t, i;     /* cluster time (stream), or the stream's start (copy) */
  int64_t seq;
  char coll[256];    /* copy: the collection being copied ("" before the first) */
  char last_id[2048]; /* copy: {"_id": ...} of the last document copied (canonical), "" before the first */
} kpos_t;

typedef struct {
  char *topic, *key, *value;
  size_t klen, vlen;
  bool copy, heartbeat;
} rec_t;

typedef struct {
  const m2d_kafka_produce_options_t *o;
  m2d_kafka_produce_summary_t *sum;
  char source[600];       /* transactional.id and the offsets record's key */
  char offsets_topic[400];
  m2d_kafka_producer_t *p;
  kpos_t pos;             /* committed */
  rec_t *recs;
  int nrec, cap;
  char **topics;          /* topics known to exist */
  int ntopics;
  mongoc_client_t *client;
  m2d_metrics_t *metrics; /* --metrics-port, or NULL */
  char label[600];        /* the metrics' source label: "<db>.<collection or *>" */
  double last_write;      /* when the last transaction committed (the heartbeats' clock) */
  m2d_progress_t line;    /* records written */
} kp_t;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static bool stopping(const kp_t *k) { return k->o->stop && *k->o->stop; }

static void sleep_ms(const kp_t *k, int ms) {
  for (int t = 0; t < ms && !stopping(k); t += 100) usleep(100000);
}

/* --- positions ---------------------------------------------------------------------------- */

static char *pos_json(const kpos_t *p) {
  json_t *j = json_pack("{sssssIsIsI}", "phase", p->copy ? "copy" : "stream", "resumeToken", p->token, "t",
                        (json_int_t)p->t, "i", (json_int_t)p->i, "seq", (json_int_t)p->seq);
  if (p->copy) {
    json_object_set_new(j, "copyCollection", json_string(p->coll));
    json_object_set_new(j, "copyLastId", p->last_id[0] ? json_string(p->last_id) : json_null());
  }
  char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
  json_decref(j);
  return s;
}

static bool pos_parse(const char *s, kpos_t *p, m2d_error_t *err) {
  memset(p, 0, sizeof *p);
  json_error_t je;
  json_t *j = json_loads(s, 0, &je);
  const char *phase = json_string_value(json_object_get(j, "phase"));
  if (!j || !phase) {
    json_decref(j);
    return m2d_error_set(err, M2D_ERR_FORMAT, 0,
                         "the position in the offsets topic is not one mongo2delta wrote (%.200s); delete the "
                         "record (a tombstone for its key) to start again",
                         s);
  }
  p->copy = !strcmp(phase, "copy");
  snprintf(p->token, sizeof p->token, "%s", json_string_value(json_object_get(j, "resumeToken")) ?: "");
  p->t = (uint32_t)json_integer_value(json_object_get(j, "t"));
  p->i = (uint32_t)json_integer_value(json_object_get(j, "i"));
  p->seq = json_integer_value(json_object_get(j, "seq"));
  snprintf(p->coll, sizeof p->coll, "%s", json_string_value(json_object_get(j, "copyCollection")) ?: "");
  snprintf(p->last_id, sizeof p->last_id, "%s", json_string_value(json_object_get(j, "copyLastId")) ?: "");
  json_decref(j);
  return true;
}

/* --- records and transactions ------------------------------------------------------------- */

static void clear_records(kp_t *k) {
  for (int i = 0; i < k->nrec; i++) free(k->recs[i].topic), free(k->recs[i].key), free(k->recs[i].value);
  k->nrec = 0;
}

static bool ensure_topic(kp_t *k, const char *topic, m2d_error_t *err) {
  for (int i = 0; i < k->ntopics; i++)
    if (!strcmp(k->topics[i], topic)) return true;
  bool compact = !strcmp(topic, k->offsets_topic);
  double until = now_s() + RETRY_FOR_S;
  for (;;) {
    if (m2d_kafka_ensure_topic(m2d_kafka_producer_handle(k->p), topic, compact, 30000, err)) break;
    if (!err->retriable || now_s() > until || stopping(k)) return false;
    m2d_warn("%s; trying again", err->message);
    sleep_ms(k, 1000);
  }
  k->topics = realloc(k->topics, sizeof *k->topics * (size_t)(k->ntopics + 1));
  k->topics[k->ntopics++] = strdup(topic);
  return true;
}

static void topic_of(const kp_t *k, const char *coll, char *out, size_t n) {
  const char *pre = k->o->topic_prefix;
  if (pre && *pre) snprintf(out, n, "%s.%s.%s", pre, k->o->db, coll);
  else snprintf(out, n, "%s.%s", k->o->db, coll);
}

/* A record for one event (or a copied document's event) into the batch in hand. */
static bool add_record(kp_t *k, const char *coll, const bson_t *event, bool copy, m2d_error_t *err) {
  bson_value_t id;
  bool has_id = m2d_change_id(event, &id);
  bson_t *norm = m2d_change_normalized(event, has_id ? &id : NULL, k->o->db, coll);
  char *key = NULL, *value = NULL;
  bool ok = true;
  if (has_id) {
    bson_t kd = BSON_INITIALIZER;
    bson_append_value(&kd, "_id", 3, &id);
    key = m2d_bson_json(&kd, k->o->form);
    bson_destroy(&kd);
  }
  bson_iter_t it;
  bool tombstone = false;
  if (k->o->full_document_only) {
    uint32_t len;
    const uint8_t *data;
    bson_t fd;
    if (bson_iter_init_find(&it, norm, "fullDocument") && BSON_ITER_HOLDS_DOCUMENT(&it)) {
      bson_iter_document(&it, &len, &data);
      if (bson_init_static(&fd, data, len)) value = m2d_bson_json(&fd, k->o->form);
    } else if (bson_iter_init_find(&it, norm, "operationType") && BSON_ITER_HOLDS_UTF8(&it) &&
               !strcmp(bson_iter_utf8(&it, NULL), "delete")) {
      tombstone = true; /* a delete: a tombstone for its key */
    } else {
      k->sum->skipped++; /* an update whose document is gone by now: its delete follows */
      goto done;
    }
  } else {
    value = m2d_bson_json(norm, k->o->form);
  }
  if (!value && !tombstone) {
    ok = m2d_error_set(err, M2D_ERR_FORMAT, 0, "a change event of %s.%s cannot be written as JSON (invalid UTF-8?)",
                       k->o->db, coll);
    goto done;
  }
  if (k->nrec == k->cap) {
    k->cap = k->cap ? k->cap * 2 : 256;
    k->recs = realloc(k->recs, sizeof *k->recs * (size_t)k->cap);
  }
  char topic[800];
  topic_of(k, coll, topic, sizeof topic);
  rec_t *r = &k->recs[k->nrec++];
  *r = (rec_t){.topic = strdup(topic), .key = key, .value = value, .klen = key ? strlen(key) : 0,
               .vlen = value ? strlen(value) : 0, .copy = copy};
  key = value = NULL;
done:
  free(key);
  free(value);
  bson_destroy(norm);
  if (has_id) bson_value_destroy(&id);
  return ok;
}

/* The metrics of a transaction just committed (the records in hand, before they are cleared). */
static void note_commit(kp_t *k, const kpos_t *next, double t0, bool waited) {
  const char *const *lb = M2D_LABELS("source", k->label);
  bool events = false;
  for (int i = 0, j; i < k->nrec; i = j) { /* one update per run of records of one topic */
    for (j = i + 1; j < k->nrec && !strcmp(k->recs[j].topic, k->recs[i].topic); j++) {}
    int n = 0;
    for (int r = i; r < j; r++) {
      n += !k->recs[r].heartbeat;
      events |= !k->recs[r].heartbeat && !k->recs[r].copy;
    }
    if (n)
      m2d_metrics_counter_add(k->metrics, M2D_METRIC_KP_RECORDS, "change-event and copy records committed",
                              M2D_LABELS("topic", k->recs[i].topic), n);
  }
  m2d_metrics_counter_add(k->metrics, M2D_METRIC_KP_TRANSACTIONS, "Kafka transactions committed", lb, 1);
  m2d_metrics_observe(k->metrics, M2D_METRIC_KP_COMMIT_SECONDS,
                      "time from a transaction's first send to its commit, retries included", lb, now_s() - t0);
  if (waited)
    m2d_metrics_counter_add(k->metrics, M2D_METRIC_KP_RECONNECTS, "reconnections after a server went away",
                            M2D_LABELS("source", k->label, "server", "kafka"), 1);
  if (events && next->t) {
    m2d_metrics_gauge_set(k->metrics, M2D_METRIC_KP_LAST_EVENT_TIMESTAMP,
                          "cluster time of the last change event committed (seconds since the epoch)", lb, next->t);
    m2d_metrics_gauge_set(k->metrics, M2D_METRIC_KP_LAG_SECONDS,
                          "seconds from the last change event's cluster time to its commit", lb,
                          (double)time(NULL) - next->t);
  }
}

/* The records in hand and the new position in one transaction, retried while the brokers are
 * away; on success the position is the committed one. */
static bool commit_batch(kp_t *k, const kpos_t *next, m2d_error_t *err) {
  char *pv = pos_json(next);
  bool ok = true, waited = false; /* waited: the brokers were away meanwhile */
  double t0 = now_s();
  for (int i = 0; ok && i < k->nrec; i++) ok = ensure_topic(k, k->recs[i].topic, err);
  double until = now_s() + RETRY_FOR_S;
  while (ok) {
    bool done = m2d_kafka_producer_begin(k->p, err);
    for (int i = 0; done && i < k->nrec; i++) {
      rec_t *r = &k->recs[i];
      m2d_kafka_header_t h = {"copy", "true"};
      done = m2d_kafka_producer_send(k->p, r->topic, r->key, r->klen, r->value, r->vlen, r->copy ? &h : NULL,
                                     r->copy ? 1 : 0, err);
    }
    if (done) done = m2d_kafka_producer_send(k->p, k->offsets_topic, k->source, strlen(k->source), pv, strlen(pv), NULL, 0, err);
    while (done) {
      if (m2d_kafka_producer_commit(k->p, TXN_TIMEOUT_MS, err)) goto committed;
      if (err->code != M2D_KAFKA_RETRY || now_s() > until) break;
      waited = true;
      m2d_warn("%s", err->message);
      sleep_ms(k, 500); /* a commit that timed out may be called again */
    }
    if (err->code == M2D_KAFKA_FATAL || now_s() > until) {
      ok = false;
      break;
    }
    /* abortable (or a begin/send that failed): abort, then send the batch again */
    waited |= err->code == M2D_KAFKA_RETRY;
    m2d_warn("%s", err->message);
    m2d_error_t ae = {0};
    while (!m2d_kafka_producer_abort(k->p, TXN_TIMEOUT_MS, &ae)) {
      if (ae.code == M2D_KAFKA_FATAL || now_s() > until) {
        *err = ae;
        ok = false;
        break;
      }
      sleep_ms(k, 500);
    }
    k->sum->aborted++;
    m2d_metrics_counter_add(k->metrics, M2D_METRIC_KP_ABORTED, "Kafka transactions aborted (then sent again)",
                            M2D_LABELS("source", k->label), 1);
    if (stopping(k)) ok = m2d_error_set(err, M2D_ERR_KAFKA, M2D_KAFKA_FATAL, "stopped while the brokers were away; "
                                                                           "the batch in hand was not written (it is "
                                                                           "read again at the next run)");
  }
  free(pv);
  if (!ok) return false;
committed:
  if (ok) {
    for (int i = 0; i < k->nrec; i++) k->sum->records += !k->recs[i].heartbeat;
    k->sum->transactions++;
    snprintf(k->line.extra, sizeof k->line.extra, "%lld copied, %lld change events, %lld transactions",
             (long long)k->sum->copied, (long long)k->sum->events, (long long)k->sum->transactions);
    m2d_progress_set(&k->line, k->sum->records, 0);
    note_commit(k, next, t0, waited);
    k->last_write = now_s();
    k->pos = *next;
    m2d_debug("transaction %lld: %d record(s), through event %lld", (long long)k->sum->transactions, k->nrec,
              (long long)next->seq);
    clear_records(k);
    free(pv);
  }
  return true;
}

/* --- MongoDB ------------------------------------------------------------------------------ */

static mongoc_change_stream_t *open_stream(kp_t *k, const kpos_t *from) {
  return m2d_change_stream_watch(k->client, k->o->db, k->o->collection, from ? from->token : NULL, from ? from->t : 0,
                                 from ? from->i : 0, 200);
}

/* The stream's position now (before a copy or at a latest start): its resume token, or the clock
 * when the server gives none before an event (the test server). */
static void position_now(kp_t *k, kpos_t *p) {
  mongoc_change_stream_t *cs = open_stream(k, NULL); /* the aggregate's reply may carry a token */
  p->t = (uint32_t)time(NULL);
  p->i = 0;
  p->token[0] = 0;
  const bson_t *tok = mongoc_change_stream_get_resume_token(cs);
  if (tok && !bson_empty(tok)) {
    char *j = bson_as_canonical_extended_json(tok, NULL);
    snprintf(p->token, sizeof p->token, "%s", j ? j : "");
    bson_free(j);
  }
  mongoc_change_stream_destroy(cs);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Copies every document (of the collection, or of each collection in name order) after the
 * position's, in _id order, one transaction per batch; at the end the position turns to the
 * stream's start taken before the copy. */
static bool copy_existing(kp_t *k, m2d_error_t *err) {
  const m2d_kafka_produce_options_t *o = k->o;
  char **names = NULL;
  int nnames = 0;
  bool ok = true;
  if (o->collection) {
    names = calloc(2, sizeof *names);
    names[nnames++] = strdup(o->collection);
  } else {
    mongoc_database_t *d = mongoc_client_get_database(k->client, o->db);
    bson_error_t be;
    char **ls = mongoc_database_get_collection_names_with_opts(d, NULL, &be);
    mongoc_database_destroy(d);
    if (!ls) return m2d_mongo_error(err, &be, "listing the collections to copy");
    for (char **n = ls; *n; n++) nnames++;
    names = calloc((size_t)nnames + 1, sizeof *names);
    nnames = 0;
    for (char **n = ls; *n; n++)
      if (strncmp(*n, "system.", 7)) names[nnames++] = strdup(*n);
    bson_strfreev(ls);
    qsort(names, (size_t)nnames, sizeof *names, cmp_str);
  }
  int batch = o->max_batch > 0 ? o->max_batch : 1000;
  for (int c = 0; ok && c < nnames && !stopping(k); c++) {
    if (k->pos.coll[0] && strcmp(names[c], k->pos.coll) < 0) continue; /* copied before */
    kpos_t next = k->pos;
    if (strcmp(names[c], next.coll)) {
      snprintf(next.coll, sizeof next.coll, "%s", names[c]);
      next.last_id[0] = 0;
    }
    mongoc_collection_t *coll = mongoc_client_get_collection(k->client, o->db, names[c]);
    bson_t filter = BSON_INITIALIZER;
    if (next.last_id[0]) {
      bson_error_t be;
      bson_t *last = bson_new_from_json((const uint8_t *)next.last_id, -1, &be);
      bson_iter_t it;
      if (last && bson_iter_init_find(&it, last, "_id")) {
        bson_t gt;
        bson_append_document_begin(&filter, "_id", 3, &gt);
        bson_append_iter(&gt, "$gt", 3, &it);
        bson_append_document_end(&filter, &gt);
      }
      if (last) bson_destroy(last);
    }
    bson_t *fo = BCON_NEW("sort", "{", "_id", BCON_INT32(1), "}");
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(coll, &filter, fo, NULL);
    const bson_t *doc;
    while (ok && !stopping(k) && mongoc_cursor_next(cur, &doc)) {
      bson_t *ev = m2d_change_copy_event(o->db, names[c], doc);
      ok = add_record(k, names[c], ev, true, err);
      bson_destroy(ev);
      bson_iter_t it;
      if (ok && bson_iter_init_find(&it, doc, "_id")) {
        bson_t idd = BSON_INITIALIZER;
        bson_append_iter(&idd, "_id", 3, &it);
        char *j = bson_as_canonical_extended_json(&idd, NULL);
        snprintf(next.last_id, sizeof next.last_id, "%s", j ? j : "");
        bson_free(j);
        bson_destroy(&idd);
      }
      k->sum->copied++;
      if (ok && k->nrec >= batch) ok = commit_batch(k, &next, err);
    }
    bson_error_t be;
    if (ok && mongoc_cursor_error(cur, &be)) ok = m2d_mongo_error(err, &be, "copying the existing documents");
    if (ok && !stopping(k)) ok = commit_batch(k, &next, err); /* the rest, and the collection done */
    mongoc_cursor_destroy(cur);
    bson_destroy(fo);
    bson_destroy(&filter);
    mongoc_collection_destroy(coll);
  }
  if (ok && !stopping(k)) {
    kpos_t next = k->pos;
    next.copy = false;
    next.coll[0] = next.last_id[0] = 0;
    ok = commit_batch(k, &next, err);
    if (ok) m2d_info("copied %lld existing document(s); following the change stream", (long long)k->sum->copied);
  }
  for (int c = 0; c < nnames; c++) free(names[c]);
  free(names);
  return ok;
}

/* --- the run ------------------------------------------------------------------------------ */

/* A quiet stream's resume token still moves on (after an empty batch it is the server's
 * post-batch resume token, which follows the oplog, other collections' writes included); the
 * position written at the last event would age until the oplog drops it and a restart could no
 * longer resume. So, as the connector's heartbeats do, the newest token becomes the position, in
 * a transaction of its own, when it changed; with --heartbeat-topic also as a record there. */
static bool heartbeat(kp_t *k, mongoc_change_stream_t *cs, kpos_t *next, m2d_error_t *err) {
  const bson_t *tok = mongoc_change_stream_get_resume_token(cs);
  if (!tok || bson_empty(tok)) return true;
  kpos_t hb = *next; /* the events counted (an update skipped with --full-document-only, ...) */
  char *j = bson_as_canonical_extended_json(tok, NULL);
  if (!j || strlen(j) >= sizeof hb.token) {
    m2d_warn("the change stream's resume token is too long to keep as the position; no heartbeat");
    bson_free(j);
    return true;
  }
  snprintf(hb.token, sizeof hb.token, "%s", j);
  bson_free(j);
  if (!strcmp(hb.token, k->pos.token) && hb.seq == k->pos.seq) return true; /* nothing new */
  if (k->o->heartbeat_topic) {
    bson_t kd = BSON_INITIALIZER, vd = BSON_INITIALIZER;
    BSON_APPEND_UTF8(&kd, "_id", k->source);
    BSON_APPEND_DOCUMENT(&vd, "_id", tok);
    char *key = m2d_bson_json(&kd, k->o->form), *value = m2d_bson_json(&vd, k->o->form);
    bson_destroy(&kd);
    bson_destroy(&vd);
    if (!key || !value) {
      free(key);
      free(value);
      return m2d_error_set(err, M2D_ERR_FORMAT, 0, "the heartbeat record for %s cannot be written as JSON", k->source);
    }
    if (k->nrec == k->cap) {
      k->cap = k->cap ? k->cap * 2 : 256;
      k->recs = realloc(k->recs, sizeof *k->recs * (size_t)k->cap);
    }
    k->recs[k->nrec++] = (rec_t){.topic = strdup(k->o->heartbeat_topic), .key = key, .value = value,
                                 .klen = strlen(key), .vlen = strlen(value), .heartbeat = true};
  }
  if (!commit_batch(k, &hb, err)) return false;
  k->sum->heartbeats++;
  m2d_metrics_counter_add(k->metrics, M2D_METRIC_KP_HEARTBEATS, "heartbeat positions written",
                          M2D_LABELS("source", k->label), 1);
  m2d_debug("heartbeat: %s is at %s (after event %lld)", k->source, hb.token, (long long)hb.seq);
  *next = k->pos;
  return true;
}

static bool start_fresh(kp_t *k, bool copy, m2d_error_t *err) {
  kpos_t p = {.copy = copy, .seq = k->pos.seq};
  if (k->o->startup == M2D_STARTUP_TIMESTAMP && !copy) p.t = k->o->start_time;
  else position_now(k, &p);
  clear_records(k);
  return commit_batch(k, &p, err); /* the start, so a crash from here resumes from it */
}

bool m2d_kafka_produce_run(const m2d_kafka_produce_options_t *o, m2d_kafka_produce_summary_t *sum, m2d_error_t *err) {
  memset(sum, 0, sizeof *sum);
  kp_t k = {.o = o, .sum = sum};
  snprintf(k.source, sizeof k.source, "mongo2delta-produce:%s.%s", o->db, o->collection ? o->collection : "*");
  snprintf(k.label, sizeof k.label, "%s.%s", o->db, o->collection ? o->collection : "*");
  m2d_progress_begin(&k.line, "records", 0, "kafka-produce %s", k.label);
  if (o->metrics_port >= 0) {
    if (!(k.metrics = m2d_metrics_start(NULL, o->metrics_port, err))) return false;
    m2d_info("metrics (Prometheus text) on http://127.0.0.1:%d/metrics", m2d_metrics_port(k.metrics));
    const char *const *lb = M2D_LABELS("source", k.label);
    m2d_metrics_counter_add(k.metrics, M2D_METRIC_KP_TRANSACTIONS, "Kafka transactions committed", lb, 0);
    m2d_metrics_counter_add(k.metrics, M2D_METRIC_KP_ABORTED, "Kafka transactions aborted (then sent again)", lb, 0);
    m2d_metrics_counter_add(k.metrics, M2D_METRIC_KP_HEARTBEATS, "heartbeat positions written", lb, 0);
    m2d_metrics_counter_add(k.metrics, M2D_METRIC_KP_RECONNECTS, "reconnections after a server went away",
                            M2D_LABELS("source", k.label, "server", "mongodb"), 0);
    m2d_metrics_counter_add(k.metrics, M2D_METRIC_KP_RECONNECTS, "reconnections after a server went away",
                            M2D_LABELS("source", k.label, "server", "kafka"), 0);
  }
  if (o->topic_prefix && *o->topic_prefix)
    snprintf(k.offsets_topic, sizeof k.offsets_topic, "%s.mongo2delta-offsets", o->topic_prefix);
  else snprintf(k.offsets_topic, sizeof k.offsets_topic, "mongo2delta-offsets");
  m2d_mongo_global_init();
  bool ok = (k.client = m2d_mongo_client_new(o->uri, err)) != NULL;
  m2d_kafka_producer_options_t po = {.brokers = o->brokers, .transactional_id = k.source,
                                     .transaction_timeout_ms = TXN_TIMEOUT_MS};
  ok = ok && (k.p = m2d_kafka_producer_new(&po, err));
  /* fences an older instance and aborts what it left open: from here the offsets topic's
   * committed records are the whole truth */
  double until = now_s() + RETRY_FOR_S;
  while (ok && !m2d_kafka_producer_init_transactions(k.p, 30000, err)) {
    if (err->code != M2D_KAFKA_RETRY || now_s() > until || stopping(&k)) ok = false;
    else m2d_warn("%s", err->message), sleep_ms(&k, 1000);
  }
  ok = ok && ensure_topic(&k, k.offsets_topic, err);
  char *stored = NULL;
  while (ok && !m2d_kafka_offsets_read(o->brokers, k.offsets_topic, k.source, 30000, &stored, err)) {
    if (err->code != M2D_KAFKA_RETRY || now_s() > until || stopping(&k)) ok = false;
    else m2d_warn("%s", err->message), sleep_ms(&k, 1000);
  }
  if (ok && stored) {
    ok = pos_parse(stored, &k.pos, err);
    sum->resumed = ok;
    if (ok)
      m2d_info("resuming %s %s after event %lld", k.source, k.pos.copy ? "in its copy of the existing documents" : "",
               (long long)k.pos.seq);
  } else if (ok) {
    ok = start_fresh(&k, o->startup == M2D_STARTUP_COPY_EXISTING, err);
  }
  free(stored);
  if (ok && k.pos.copy) ok = copy_existing(&k, err);

  mongoc_change_stream_t *cs = ok && !stopping(&k) ? open_stream(&k, &k.pos) : NULL;
  kpos_t next = k.pos;
  int batch = o->max_batch > 0 ? o->max_batch : 1000;
  int latency = o->max_latency_ms > 0 ? o->max_latency_ms : 500;
  double batch_start = 0, last_event = now_s();
  k.last_write = now_s();
  while (ok && cs && !stopping(&k)) {
    const bson_t *ev;
    if (mongoc_change_stream_next(cs, &ev)) {
      uint32_t t = 0, i = 0;
      bson_iter_t it;
      if (bson_iter_init_find(&it, ev, "clusterTime") && BSON_ITER_HOLDS_TIMESTAMP(&it)) bson_iter_timestamp(&it, &t, &i);
      /* resumed by cluster time: what is at or before it was written already */
      if (!k.pos.token[0] && !next.token[0] && (t < k.pos.t || (t == k.pos.t && i <= k.pos.i))) {
        sum->skipped++;
        continue;
      }
      const char *op = bson_iter_init_find(&it, ev, "operationType") && BSON_ITER_HOLDS_UTF8(&it)
                           ? bson_iter_utf8(&it, NULL) : "";
      if (!strcmp(op, "invalidate")) {
        ok = m2d_error_set(err, M2D_ERR_MONGO, 0,
                           "the change stream was invalidated (the collection dropped or renamed); what came before "
                           "is in Kafka: start kafka-produce again (the offsets record for %s resumes nothing then: "
                           "delete it with a tombstone)", k.source);
        break;
      }
      const char *coll = o->collection;
      if (!coll && bson_iter_init(&it, ev) && bson_iter_find_descendant(&it, "ns.coll", &it) && BSON_ITER_HOLDS_UTF8(&it))
        coll = bson_iter_utf8(&it, NULL);
      if (!coll) { sum->skipped++; continue; } /* a database-level event (dropDatabase): no topic */
      if (!(ok = add_record(&k, coll, ev, false, err))) break;
      next.seq++;
      next.t = t, next.i = i;
      if (bson_iter_init_find(&it, ev, "_id") && BSON_ITER_HOLDS_DOCUMENT(&it)) {
        uint32_t len;
        const uint8_t *data;
        bson_t tok;
        bson_iter_document(&it, &len, &data);
        if (bson_init_static(&tok, data, len)) {
          char *j = bson_as_canonical_extended_json(&tok, NULL);
          snprintf(next.token, sizeof next.token, "%s", j ? j : "");
          bson_free(j);
        }
      }
      sum->events++;
      if (k.nrec == 1 || batch_start == 0) batch_start = now_s();
      last_event = now_s();
      bool at_max = o->max_events > 0 && sum->events >= o->max_events;
      if (k.nrec >= batch || (now_s() - batch_start) * 1000 >= latency || at_max) {
        ok = commit_batch(&k, &next, err);
        batch_start = 0;
      }
      if (at_max) break;
      continue;
    }
    bson_error_t be;
    const bson_t *reply;
    if (mongoc_change_stream_error_document(cs, &be, &reply)) {
      if (m2d_change_stream_history_lost(&be) && !stopping(&k)) {
        if (!o->resnapshot_on_history_lost) {
          ok = m2d_error_set(err, M2D_ERR_MONGO, (int)be.code,
                             "the change stream cannot resume from the position in %s (after event %lld, cluster "
                             "time %u.%u): %s. The server no longer has that history (its oplog moved past it), so "
                             "the changes since are lost to the stream; what is in Kafka is intact. Rerun with "
                             "--on-history-lost resnapshot to copy the collection again",
                             k.offsets_topic, (long long)k.pos.seq, k.pos.t, k.pos.i, be.message);
          break;
        }
        m2d_warn("the change stream cannot resume after event %lld (%s): copying %s again (--on-history-lost "
                 "resnapshot)", (long long)k.pos.seq, be.message, k.source);
        mongoc_change_stream_destroy(cs);
        cs = NULL;
        clear_records(&k);
        ok = start_fresh(&k, true, err) && copy_existing(&k, err);
        if (ok && !stopping(&k)) cs = open_stream(&k, &k.pos);
        next = k.pos;
        last_event = now_s();
        continue;
      }
      if (!m2d_change_stream_server_gone(&be) || stopping(&k)) {
        ok = m2d_mongo_error(err, &be, "the change stream failed");
        break;
      }
      /* the server went away: write what is in hand, reopen from there with a growing pause */
      if (k.nrec && !(ok = commit_batch(&k, &next, err))) break;
      mongoc_change_stream_destroy(cs);
      cs = NULL;
      for (int wait = 1; !stopping(&k) && !cs; wait = wait < 30 ? wait * 2 : 30) {
        m2d_warn("the MongoDB server is gone (%s); reconnecting in %d s, resuming after event %lld", be.message, wait,
                 (long long)k.pos.seq);
        sleep_ms(&k, wait * 1000);
        cs = open_stream(&k, &k.pos);
        const bson_t *probe;
        if (!mongoc_change_stream_next(cs, &probe) && mongoc_change_stream_error_document(cs, &be, &reply) &&
            m2d_change_stream_server_gone(&be)) {
          mongoc_change_stream_destroy(cs);
          cs = NULL;
          continue;
        }
        /* a probe event is lost this way: reopen once more from the position */
        mongoc_change_stream_destroy(cs);
        cs = open_stream(&k, &k.pos);
        m2d_metrics_counter_add(k.metrics, M2D_METRIC_KP_RECONNECTS, "reconnections after a server went away",
                                M2D_LABELS("source", k.label, "server", "mongodb"), 1);
      }
      next = k.pos;
      last_event = now_s();
      continue;
    }
    if (k.nrec && (now_s() - batch_start) * 1000 >= latency) {
      ok = commit_batch(&k, &next, err);
      batch_start = 0;
    }
    if (ok && !k.nrec && o->heartbeat_interval_s > 0 && now_s() - k.last_write >= o->heartbeat_interval_s) {
      ok = heartbeat(&k, cs, &next, err);
      k.last_write = now_s(); /* the next look one interval from now, written or not */
    }
    if (o->stop_when_idle_s > 0 && now_s() - last_event >= o->stop_when_idle_s) break;
    usleep(20000);
  }
  if (ok && k.nrec) ok = commit_batch(&k, &next, err); /* the batch in hand, also on SIGINT/SIGTERM */
  clear_records(&k);
  free(k.recs);
  for (int i = 0; i < k.ntopics; i++) free(k.topics[i]);
  free(k.topics);
  if (cs) mongoc_change_stream_destroy(cs);
  m2d_kafka_producer_destroy(k.p);
  if (k.client) mongoc_client_destroy(k.client);
  m2d_metrics_stop(k.metrics);
  m2d_progress_end(&k.line);
  return ok;
}
