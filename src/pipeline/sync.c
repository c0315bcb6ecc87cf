#include "pipeline/sync.h"

#include "core/log.h"
#include "core/metrics.h"
#include "delta/log.h"
#include "mongo/change_stream.h"
#include "mongo/client.h"
#include "pipeline/change_record.h"
#include "pipeline/mirror.h"
#include "pipeline/optimize.h"
#include "pipeline/snapshot.h"
#include "pipeline/table_writer.h"

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
  const m2d_sync_options_t *o;
  m2d_sync_summary_t *sum;
  char app[600];
  m2d_mirror_t *mirror;    /* mirror, both */
  m2d_mirror_options_t mirror_options;
  m2d_table_writer_t *log; /* changelog, both */
  pos_t mpos, lpos;
  m2d_metrics_t *metrics; /* --metrics-port, or NULL */
  char label[600];        /* the stream's "db.collection", the metrics' label */
  int since_compaction;   /* batches committed since the last compaction */
  m2d_change_t *ev;
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

static json_t *position_info(const m2d_change_t *last, int64_t seq, const pos_t *start) {
  json_t *info = json_object();
  json_object_set_new(info, "seq", json_integer(seq));
  json_object_set_new(info, "resumeToken", json_string(last ? last->token : start->token));
  json_object_set_new(info, "clusterTime", json_pack("{sIsI}", "t", (json_int_t)(last ? last->ct_t : start->ct_t), "i",
                                                      (json_int_t)(last ? last->ct_i : start->ct_i)));
  return info;
}

/* --- applying a batch --------------------------------------------------------------------- */

static bool apply_changelog(sync_t *s, int64_t batch, m2d_error_t *err) {
  bson_t **docs = calloc((size_t)s->nev + 1, sizeof *docs);
  int n = 0;
  for (int i = 0; i < s->nev; i++) {
    m2d_change_t *e = &s->ev[i];
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
  bool ok = m2d_table_writer_write(s->log, docs, n, err);
  const m2d_change_t *lastev = s->nev ? &s->ev[s->nev - 1] : NULL;
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

static void set_position(pos_t *p, int64_t batch, const m2d_change_t *last) {
  p->batch = batch;
  p->seq = last->seq;
  snprintf(p->token, sizeof p->token, "%s", last->token);
  p->ct_t = last->ct_t;
  p->ct_i = last->ct_i;
}


/* Background compaction, between batches and in this process, so it never races a batch:
 * the mirror through its module (which indexes the rewritten rows again), the change log's
 * small files bin-packed (pipeline/optimize). A failure is only a warning: the table is as it
 * was and the next round tries again. */
static void compact(sync_t *s) {
  if (s->mirror) m2d_mirror_compact(s->mirror, s->o->stop);
  if (s->log && m2d_table_writer_version(s->log) >= 0) {
    m2d_optimize_options_t oo = {.stop = s->o->stop};
    m2d_optimize_summary_t sum;
    m2d_error_t e = {0};
    double t0 = now_s();
    if (!m2d_optimize_with_writer(s->log, &oo, &sum, &e))
      m2d_warn("compacting the change log failed (the table is as it was; tried again later): %s", e.message);
    else if (sum.files_removed > 0)
      m2d_info("compacted the change log: %lld files into %lld (%lld rows) as version %lld in %.1f s",
               (long long)sum.files_removed, (long long)sum.files_added, (long long)sum.rows, (long long)sum.version,
               now_s() - t0);
    m2d_optimize_summary_free(&sum);
  }
  s->since_compaction = 0;
}

/* One batch: the change log first (it skips what it has), then the mirror. */
static bool flush(sync_t *s, m2d_error_t *err) {
  if (s->nev == 0) return true;
  const m2d_change_t *lastev = &s->ev[s->nev - 1];
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
    json_t *pos = position_info(lastev, lastev->seq, &s->mpos);
    m2d_mirror_counts_t counts = {0};
    m2d_app_txn_t txn = {s->app, b};
    ok = m2d_mirror_apply(s->mirror, s->ev, s->nev, &txn, 1, pos, &counts, err);
    json_decref(pos);
    s->sum->upserts += counts.upserts;
    s->sum->deletes += counts.deletes;
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

/* A change-stream event; the stream's other kinds (drop, rename, invalidate) end the run. */
static bool parse_event(const bson_t *ev, m2d_change_t *e, m2d_error_t *err) {
  if (m2d_change_from_event(ev, e, err)) return true;
  m2d_error_prefix(err, "the change stream ends: ");
  size_t n = strlen(err->message);
  snprintf(err->message + n, sizeof err->message - n, "; the tables keep what was applied: start a new sync");
  return false;
}

static mongoc_change_stream_t *open_stream(sync_t *s, mongoc_client_t *client, const pos_t *from) {
  return m2d_change_stream_watch(client, s->o->db, s->o->collection, from ? from->token : NULL, from ? from->ct_t : 0,
                                 from ? from->ct_i : 0, 200);
}


/* Opens the stream at the server's "now" before the snapshot reads anything, snapshots the
 * mirror (when asked; a table holding data is emptied first, in one commit, its history kept)
 * and records the hand-over in each table: a commit with the next txn version and the stream's
 * start, so that a crash from here on resumes the stream instead of snapshotting again (and
 * losing what happened meanwhile). Until an event comes the test server gives no resume token:
 * the position is then the clock. */
static bool start_at_now(sync_t *s, mongoc_client_t *client, mongoc_change_stream_t **cs, bool snapshot, int64_t seq,
                         m2d_error_t *err) {
  const m2d_sync_options_t *o = s->o;
  bool ok = true;
  if (*cs) mongoc_change_stream_destroy(*cs);
  *cs = open_stream(s, client, NULL);
  s->mpos.ct_t = s->lpos.ct_t = (uint32_t)time(NULL);
  s->mpos.ct_i = s->lpos.ct_i = 0;
  s->mpos.token[0] = s->lpos.token[0] = 0;
  if (s->mirror && snapshot) {
    bool had_table = m2d_table_writer_version(m2d_mirror_writer(s->mirror)) >= 0;
    m2d_mirror_close(s->mirror);
    s->mirror = NULL;
    m2d_snapshot_options_t so = {.uri = o->uri, .db = o->db, .collection = o->collection, .table = o->table,
                                 .workers = o->workers, .codec = o->codec, .level = o->level,
                                 .target_file_size = o->target_file_size ? o->target_file_size : (uint64_t)128 << 20,
                                 .restart = had_table, .stop = o->stop, .pool = o->pool,
                                 .live_flag = o->soft_delete ? "_deleted" : NULL};
    m2d_snapshot_summary_t ss;
    ok = m2d_snapshot_run(&so, &ss, err);
    if (ok && ss.interrupted) {
      ok = m2d_error_set(err, M2D_ERR_INTERNAL, 0, "interrupted during the snapshot");
      s->sum->interrupted = true;
    }
    m2d_snapshot_summary_free(&ss);
    s->sum->snapshotted = ok;
    if (ok) ok = (s->mirror = m2d_mirror_open(&s->mirror_options, err)) != NULL;
  }
  s->mpos.seq = s->lpos.seq = seq;
  const bson_t *tok = ok ? mongoc_change_stream_get_resume_token(*cs) : NULL;
  if (tok) {
    char *j = bson_as_canonical_extended_json(tok, NULL);
    snprintf(s->mpos.token, sizeof s->mpos.token, "%s", j ? j : "");
    snprintf(s->lpos.token, sizeof s->lpos.token, "%s", j ? j : "");
    bson_free(j);
  }
  m2d_table_writer_t *tables[2] = {s->log, s->mirror ? m2d_mirror_writer(s->mirror) : NULL};
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
  if (o->shared_metrics || o->metrics_port >= 0) {
    if (o->shared_metrics) s.metrics = o->shared_metrics;
    else if (!(s.metrics = m2d_metrics_start(NULL, o->metrics_port, err))) return false;
    else m2d_info("metrics (Prometheus text) on http://127.0.0.1:%d/metrics", m2d_metrics_port(s.metrics));
    const char *const *lb = M2D_LABELS("collection", s.label);
    m2d_metrics_counter_add(s.metrics, M2D_METRIC_EVENTS_APPLIED, "change events applied", lb, 0);
    m2d_metrics_counter_add(s.metrics, M2D_METRIC_BATCHES, "micro-batches committed", lb, 0);
    m2d_metrics_counter_add(s.metrics, M2D_METRIC_RECONNECTS, "reconnections after the server went away", lb, 0);
  }
  int cap = (o->max_batch_docs > 0 ? o->max_batch_docs : 1000);
  s.ev = calloc((size_t)cap + 1, sizeof *s.ev);
  bool ok = s.ev != NULL;
  m2d_mongo_global_init();
  mongoc_client_t *client = ok ? m2d_mongo_client_get(o->pool, o->uri, err) : NULL;
  ok = ok && client;
  mongoc_change_stream_t *cs = NULL;
  m2d_table_writer_options_t lo = {.table = o->changelog_table, .codec = o->codec, .level = o->level};
  s.mirror_options = (m2d_mirror_options_t){.table = o->table, .rewrite = o->rewrite, .soft_delete = o->soft_delete,
                                            .change_data_feed = o->change_data_feed, .codec = o->codec,
                                            .level = o->level};
  if (ok && o->mirror)
    ok = (s.mirror = m2d_mirror_open(&s.mirror_options, err)) &&
         read_position(m2d_mirror_writer(s.mirror), s.app, &s.mpos, err);
  if (ok && o->changelog) ok = (s.log = m2d_table_writer_open(&lo, err)) && read_position(s.log, s.app, &s.lpos, err);
  if (ok && !s.mirror) s.mpos.batch = -1;
  if (ok && !s.log) s.lpos.batch = -1;
  /* where the stream starts: the mirror's position (it is never ahead of the change log) */
  const pos_t *from = s.mirror ? &s.mpos : &s.lpos;
  if (ok && from->batch < 0) {
    /* a first run */
    ok = start_at_now(&s, client, &cs, o->initial_snapshot, 0, err);
  } else if (ok) {
    cs = open_stream(&s, client, from);
    m2d_info("resuming %s after event %lld (batch %lld)", s.app, (long long)from->seq, (long long)from->batch);
  }
  if (ok && s.mirror) ok = m2d_mirror_build_index(s.mirror, err);
  pos_t resume;
  int64_t seq = ok ? from->seq : 0;
  sum->first_seq = seq + 1;
  double batch_start = 0, last_event = now_s();
  while (ok && !stopping(&s)) {
    const bson_t *ev;
    if (mongoc_change_stream_next(cs, &ev)) {
      m2d_change_t e;
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
      if (m2d_change_stream_history_lost(&be) && !stopping(&s)) {
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
        ok = start_at_now(&s, client, &cs, true, seq, err);
        if (ok && s.mirror) ok = m2d_mirror_build_index(s.mirror, err);
        from = s.mirror ? &s.mpos : &s.lpos;
        last_event = now_s();
        continue;
      }
      if (!m2d_change_stream_server_gone(&be) || stopping(&s)) {
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
        cs = open_stream(&s, client, &resume);
        const bson_t *probe_ev;
        if (mongoc_change_stream_next(cs, &probe_ev)) {
          /* an event right away: handle it below through the normal path */
          m2d_change_t e;
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
        if (!m2d_change_stream_server_gone(&be)) break; /* a refusal (such as lost history): handled by the loop */
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
  if (ok && s.mirror) m2d_mirror_save_index(s.mirror);
  sum->last_seq = seq;
  clear_events(&s);
  free(s.ev);
  if (!o->shared_metrics) m2d_metrics_stop(s.metrics);
  if (cs) mongoc_change_stream_destroy(cs);
  m2d_mirror_close(s.mirror);
  m2d_table_writer_destroy(s.log);
  m2d_mongo_client_put(o->pool, client);
  return ok;
}
