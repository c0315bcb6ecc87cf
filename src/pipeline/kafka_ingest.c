#include "pipeline/kafka_ingest.h"

#include "core/log.h"
#include "core/progress.h"
#include "core/metrics.h"
#include "delta/txn.h"
#include "kafka/consumer.h"
#include "kafka/producer.h"
#include "pipeline/mirror.h"
#include "pipeline/optimize.h"
#include "pipeline/table_writer.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define METRIC_RECORDS "mongo2delta_kafka_records_consumed_total"
#define METRIC_DEAD "mongo2delta_kafka_records_dead_lettered_total"
#define METRIC_BATCHES "mongo2delta_kafka_batches_total"
#define METRIC_COMMIT "mongo2delta_kafka_commit_seconds"
#define METRIC_LAG "mongo2delta_kafka_consumer_lag"
#define METRIC_REBALANCES "mongo2delta_kafka_rebalances_total"
#define METRIC_CONFLICTS "mongo2delta_kafka_commit_conflicts_total"

/* A topic-partition this instance has been assigned. */
typedef struct {
  char topic[256];
  int32_t partition;
  char app[700];
  bool assigned;
  int64_t next_mirror, next_log; /* the next offset each table needs (-1: the table holds none of it) */
  int64_t last;                  /* the batch's last offset of it, -1: none */
} part_t;

typedef struct {
  const m2d_kafka_ingest_options_t *o;
  m2d_kafka_ingest_summary_t *sum;
  rd_kafka_t *rk;
  m2d_kafka_producer_t *dlq; /* --dead-letter-topic */
  m2d_mirror_t *mirror;
  m2d_mirror_options_t mirror_options;
  m2d_table_writer_t *log;
  m2d_metrics_t *metrics;
  part_t *parts;
  int nparts, capparts;
  m2d_change_t *ev; /* the batch: events with their partition and offset */
  int *evpart;
  int64_t *evoff;
  int nev, cap;
  int nrec;          /* records in the batch, dead-lettered ones included */
  double last_activity; /* the last record or assignment, for --stop-when-idle */
  double batch_start;
  int since_compaction;
  bool failed;       /* an error inside a callback: the run stops with it */
  m2d_error_t error;
  m2d_progress_t line; /* events applied */
} ki_t;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static bool stopping(const ki_t *k) { return k->failed || (k->o->stop && *k->o->stop); }

/* --stop-when-idle: idle means no record for that long on partitions this instance holds. While
 * it holds none the group is still forming (a member killed before it stays in the group until
 * its session times out, and the others wait for it), so that time is not idleness: the run
 * waits up to three session timeouts more before it concludes the group has nothing for it. */
static bool idle_enough(const ki_t *k) {
  double quiet = now_s() - k->last_activity;
  bool holds = false;
  for (int i = 0; i < k->nparts && !holds; i++) holds = k->parts[i].assigned;
  if (holds) return quiet >= k->o->tables.stop_when_idle_s;
  int session_ms = k->o->session_timeout_ms > 0 ? k->o->session_timeout_ms : 10000;
  double wait = k->o->tables.stop_when_idle_s + 3.0 * session_ms / 1000.0;
  if (quiet < wait) return false;
  m2d_info("no partition was assigned to this instance in %.0f s; stopping (--stop-when-idle)", quiet);
  return true;
}

static part_t *find_part(ki_t *k, const char *topic, int32_t partition, bool add) {
  for (int i = 0; i < k->nparts; i++)
    if (k->parts[i].partition == partition && !strcmp(k->parts[i].topic, topic)) return &k->parts[i];
  if (!add) return NULL;
  if (k->nparts == k->capparts) {
    int c = k->capparts ? k->capparts * 2 : 16;
    part_t *p = realloc(k->parts, (size_t)c * sizeof *p);
    if (!p) return NULL;
    k->parts = p;
    k->capparts = c;
  }
  part_t *p = &k->parts[k->nparts++];
  memset(p, 0, sizeof *p);
  snprintf(p->topic, sizeof p->topic, "%s", topic);
  p->partition = partition;
  snprintf(p->app, sizeof p->app, M2D_KAFKA_APP_PREFIX "%s:%s:%" PRId32, k->o->group, topic, partition);
  p->next_mirror = p->next_log = -1;
  p->last = -1;
  return p;
}

/* The first offset a partition still needs: the lesser of the tables' positions. */
static int64_t next_needed(const ki_t *k, const part_t *p) {
  int64_t m = k->mirror ? p->next_mirror : INT64_MAX, l = k->log ? p->next_log : INT64_MAX;
  return m < l ? m : l;
}

static void clear_batch(ki_t *k) {
  for (int i = 0; i < k->nev; i++) m2d_change_clear(&k->ev[i]);
  k->nev = k->nrec = 0;
  for (int i = 0; i < k->nparts; i++) k->parts[i].last = -1;
}

/* --- the tables ------------------------------------------------------------------------- */

/* (Re)opens the tables at their newest version (the mirror with its key index) and reads each
 * known partition's position from them. */
static bool open_tables(ki_t *k, m2d_error_t *err) {
  const m2d_kafka_ingest_options_t *o = k->o;
  /* read back at once below when no other instance committed meanwhile */
  if (k->mirror) m2d_mirror_save_index(k->mirror);
  m2d_mirror_close(k->mirror);
  k->mirror = NULL;
  m2d_table_writer_destroy(k->log);
  k->log = NULL;
  bool ok = true;
  const m2d_stream_tables_t *t = &o->tables;
  if (t->mirror) ok = (k->mirror = m2d_mirror_open(&k->mirror_options, err)) && m2d_mirror_build_index(k->mirror, err);
  if (ok && t->changelog) {
    m2d_table_writer_options_t lo = {.table = t->changelog_table, .codec = t->codec, .level = t->level,
                                     .target_file_size = t->target_file_size};
    ok = (k->log = m2d_table_writer_open(&lo, err)) != NULL;
  }
  for (int i = 0; ok && i < k->nparts; i++) {
    part_t *p = &k->parts[i];
    p->next_mirror = k->mirror ? m2d_table_writer_app_version(m2d_mirror_writer(k->mirror), p->app) : -1;
    p->next_log = k->log ? m2d_table_writer_app_version(k->log, p->app) : -1;
  }
  return ok;
}

static json_t *batch_info(ki_t *k) {
  json_t *offsets = json_object();
  for (int i = 0; i < k->nparts; i++) {
    part_t *p = &k->parts[i];
    if (p->last < 0) continue;
    char name[300];
    snprintf(name, sizeof name, "%s:%" PRId32, p->topic, p->partition);
    json_object_set_new(offsets, name, json_integer(p->last));
  }
  return json_pack("{s{sssosi}}", "kafka", "group", k->o->group, "lastOffsets", offsets, "records", k->nrec);
}

static bool commit_changelog(ki_t *k, m2d_error_t *err) {
  m2d_app_txn_t *txns = calloc((size_t)k->nparts + 1, sizeof *txns);
  bson_t **docs = calloc((size_t)k->nev + 1, sizeof *docs);
  int ntx = 0, n = 0;
  bool ok = txns && docs;
  for (int i = 0; ok && i < k->nparts; i++)
    if (k->parts[i].last >= 0 && k->parts[i].last >= k->parts[i].next_log)
      txns[ntx++] = (m2d_app_txn_t){k->parts[i].app, k->parts[i].last + 1};
  for (int i = 0; ok && ntx && i < k->nev; i++) {
    part_t *p = &k->parts[k->evpart[i]];
    if (k->evoff[i] < p->next_log) continue; /* already in the change log (committed before a crash) */
    bson_t *d = m2d_change_kafka_row(&k->ev[i], p->topic, p->partition, k->evoff[i]);
    docs[n++] = d;
  }
  int64_t version;
  if (ok && ntx)
    ok = m2d_table_writer_write(k->log, docs, n, err) &&
         m2d_table_writer_commit_txns(k->log, txns, ntx, batch_info(k), &version, err);
  if (ok && ntx) {
    for (int i = 0; i < k->nparts; i++)
      if (k->parts[i].last >= 0 && k->parts[i].last >= k->parts[i].next_log) k->parts[i].next_log = k->parts[i].last + 1;
    k->sum->changelog_rows += n;
  }
  for (int i = 0; i < n; i++) bson_destroy(docs[i]);
  free(docs);
  free(txns);
  return ok;
}

static bool commit_mirror(ki_t *k, m2d_error_t *err) {
  m2d_app_txn_t *txns = calloc((size_t)k->nparts + 1, sizeof *txns);
  m2d_change_t *evs = calloc((size_t)k->nev + 1, sizeof *evs);
  int ntx = 0, n = 0;
  bool ok = txns && evs;
  for (int i = 0; ok && i < k->nparts; i++)
    if (k->parts[i].last >= 0 && k->parts[i].last >= k->parts[i].next_mirror)
      txns[ntx++] = (m2d_app_txn_t){k->parts[i].app, k->parts[i].last + 1};
  for (int i = 0; ok && i < k->nev; i++)
    if (k->evoff[i] >= k->parts[k->evpart[i]].next_mirror) evs[n++] = k->ev[i]; /* shallow: the batch owns them */
  m2d_mirror_counts_t counts = {0};
  if (ok && ntx) {
    json_t *info = batch_info(k);
    ok = m2d_mirror_apply(k->mirror, evs, n, txns, ntx, info, &counts, err);
    json_decref(info);
  }
  if (ok && ntx) {
    for (int i = 0; i < k->nparts; i++)
      if (k->parts[i].last >= 0 && k->parts[i].last >= k->parts[i].next_mirror)
        k->parts[i].next_mirror = k->parts[i].last + 1;
    k->sum->upserts += counts.upserts;
    k->sum->deletes += counts.deletes;
  }
  free(evs);
  free(txns);
  return ok;
}

/* The group's committed offsets, after the Delta commit: for monitoring (lag) only. */
static void commit_group_offsets(ki_t *k) {
  rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(k->nparts > 0 ? k->nparts : 1);
  for (int i = 0; i < k->nparts; i++)
    if (k->parts[i].last >= 0) rd_kafka_topic_partition_list_add(l, k->parts[i].topic, k->parts[i].partition)->offset = k->parts[i].last + 1;
  if (l->cnt) rd_kafka_commit(k->rk, l, 1);
  rd_kafka_topic_partition_list_destroy(l);
}

/* Seeks every assigned partition to the first offset the tables need. */
static bool seek_to_tables(ki_t *k, m2d_error_t *err) {
  rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(k->nparts > 0 ? k->nparts : 1);
  for (int i = 0; i < k->nparts; i++) {
    part_t *p = &k->parts[i];
    if (!p->assigned) continue;
    int64_t next = next_needed(k, p);
    rd_kafka_topic_partition_list_add(l, p->topic, p->partition)->offset =
        next >= 0 ? next : k->o->start_latest ? RD_KAFKA_OFFSET_END : RD_KAFKA_OFFSET_BEGINNING;
  }
  bool ok = true;
  if (l->cnt) {
    /* asynchronous (also inside rebalance callbacks); librdkafka drops what was fetched before */
    rd_kafka_error_t *e = rd_kafka_seek_partitions(k->rk, l, 0);
    if (e) ok = m2d_kafka_error(err, e, "seeking the partitions to the tables' positions");
  }
  rd_kafka_topic_partition_list_destroy(l);
  return ok;
}

/* One batch: dead letters made durable, the change log, then the mirror. A commit refused
 * because another instance committed one of the batch's partitions (this one lost it without
 * knowing) drops the batch and goes back to the positions the tables hold. */
static bool flush(ki_t *k, m2d_error_t *err) {
  if (k->nrec == 0) return true;
  double t0 = now_s();
  bool ok = !k->dlq || m2d_kafka_producer_flush(k->dlq, 60000, err);
  if (ok && k->dlq) {
    int64_t delivered, failed;
    m2d_kafka_producer_counts(k->dlq, &delivered, &failed);
    if (failed) ok = m2d_error_set(err, M2D_ERR_KAFKA, M2D_KAFKA_FATAL,
                                   "%lld records could not be written to the dead-letter topic %s; nothing was "
                                   "committed past them",
                                   (long long)failed, k->o->dead_letter_topic);
  }
  if (ok && k->log) ok = commit_changelog(k, err);
  if (ok && k->mirror) ok = commit_mirror(k, err);
  if (!ok && err->domain == M2D_ERR_CONFLICT && err->code == DELTA_CONFLICT_APP) {
    m2d_warn("%s: another instance of group %s committed a partition of this batch; the batch is dropped and the "
             "positions read again from the tables",
             err->message, k->o->group);
    k->sum->conflicts++;
    m2d_metrics_counter_add(k->metrics, METRIC_CONFLICTS, "batches dropped: another instance held a partition", NULL, 1);
    clear_batch(k);
    return open_tables(k, err) && seek_to_tables(k, err);
  }
  if (ok) {
    commit_group_offsets(k);
    double t1 = now_s();
    k->sum->batches++;
    k->sum->applied += k->nev;
    m2d_metrics_counter_add(k->metrics, METRIC_BATCHES, "micro-batches committed", NULL, 1);
    m2d_metrics_observe(k->metrics, METRIC_COMMIT, "time to commit a batch (all its tables)", NULL, t1 - t0);
    k->since_compaction++;
    snprintf(k->line.extra, sizeof k->line.extra, "%lld batches, %lld upserts, %lld deletes, %lld dead-lettered",
             (long long)k->sum->batches, (long long)k->sum->upserts, (long long)k->sum->deletes,
             (long long)k->sum->dead_lettered);
    m2d_progress_set(&k->line, k->sum->applied, 0);
    m2d_info("batch: %d records (%d events) of %s committed in %.1f ms", k->nrec, k->nev, k->o->group, (t1 - t0) * 1e3);
  }
  clear_batch(k);
  return ok;
}

static void compact(ki_t *k) {
  if (k->mirror) m2d_mirror_compact(k->mirror, k->o->stop);
  if (k->log && m2d_table_writer_version(k->log) >= 0) {
    m2d_optimize_options_t oo = {.stop = k->o->stop};
    m2d_optimize_summary_t s;
    m2d_error_t e = {0};
    if (!m2d_optimize_with_writer(k->log, &oo, &s, &e))
      m2d_warn("compacting the change log failed (the table is as it was; tried again later): %s", e.message);
    m2d_optimize_summary_free(&s);
  }
  k->since_compaction = 0;
}

/* --- rebalances -------------------------------------------------------------------------- */

static void fail_in_callback(ki_t *k, const m2d_error_t *e) {
  if (!k->failed) k->error = *e;
  k->failed = true;
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t code, rd_kafka_topic_partition_list_t *parts, void *opaque) {
  ki_t *k = opaque;
  m2d_error_t e = {0};
  rd_kafka_error_t *re = NULL;
  if (code == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    k->sum->rebalances++;
    m2d_metrics_counter_add(k->metrics, METRIC_REBALANCES, "partition assignments and revocations", NULL, 1);
    /* what is in hand first, then the tables as they are now: the new partitions were written
     * by another instance until now */
    bool ok = !k->failed && flush(k, &e);
    for (int i = 0; ok && i < parts->cnt; i++) {
      part_t *p = find_part(k, parts->elems[i].topic, parts->elems[i].partition, true);
      if (!p) ok = m2d_error_set(&e, M2D_ERR_LIMIT, 0, "out of memory");
      else p->assigned = true;
    }
    ok = ok && open_tables(k, &e);
    for (int i = 0; ok && i < parts->cnt; i++) {
      part_t *p = find_part(k, parts->elems[i].topic, parts->elems[i].partition, false);
      int64_t next = next_needed(k, p);
      parts->elems[i].offset = next >= 0 ? next : k->o->start_latest ? RD_KAFKA_OFFSET_END : RD_KAFKA_OFFSET_BEGINNING;
      if (next >= 0) m2d_info("partition %s[%" PRId32 "] assigned: resuming at offset %lld (from the table)", p->topic, p->partition, (long long)next);
      else m2d_info("partition %s[%" PRId32 "] assigned: the table holds none of it, starting at its %s", p->topic,
                    p->partition, k->o->start_latest ? "end" : "beginning");
    }
    if (!ok) {
      fail_in_callback(k, &e);
      for (int i = 0; i < parts->cnt; i++) {
        part_t *p = find_part(k, parts->elems[i].topic, parts->elems[i].partition, false);
        if (p) p->assigned = false;
      }
      return; /* assign nothing: the run stops */
    }
    if (m2d_kafka_cooperative()) re = rd_kafka_incremental_assign(rk, parts);
    else {
      rd_kafka_resp_err_t r = rd_kafka_assign(rk, parts);
      if (r) m2d_kafka_resp_error(&e, r, "taking the assignment"), fail_in_callback(k, &e);
    }
    k->last_activity = now_s(); /* idle counts from here: the partitions may have records waiting */
  } else if (code == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
    k->sum->rebalances++;
    m2d_metrics_counter_add(k->metrics, METRIC_REBALANCES, "partition assignments and revocations", NULL, 1);
    bool lost = rd_kafka_assignment_lost(rk);
    if (!lost && !k->failed && !flush(k, &e)) {
      fail_in_callback(k, &e);
      clear_batch(k);
    }
    for (int i = 0; i < parts->cnt; i++) {
      part_t *p = find_part(k, parts->elems[i].topic, parts->elems[i].partition, false);
      if (p) p->assigned = false;
      m2d_info("partition %s[%" PRId32 "] %s", parts->elems[i].topic, parts->elems[i].partition,
               lost ? "lost" : "revoked");
    }
    k->last_activity = now_s(); /* the wait for the next assignment counts from here */
    if (lost && k->nrec) {
      /* the group gave them away already (this instance was cut off or too slow): another one
       * may be applying them, so the batch is dropped and the partitions kept start again where
       * the tables are */
      m2d_warn("partitions were lost: dropping the batch in hand (%d records)", k->nrec);
      clear_batch(k);
      if (!seek_to_tables(k, &e)) fail_in_callback(k, &e);
    }
    if (m2d_kafka_cooperative()) re = rd_kafka_incremental_unassign(rk, parts);
    else rd_kafka_assign(rk, NULL); /* eager: every partition goes */
  } else {
    m2d_warn("kafka: rebalance failed: %s", rd_kafka_err2str(code));
    clear_batch(k);
    for (int i = 0; i < k->nparts; i++) k->parts[i].assigned = false;
    rd_kafka_assign(rk, NULL);
  }
  if (re) {
    m2d_kafka_error(&e, re, "changing the assignment");
    fail_in_callback(k, &e);
  }
}

/* --- records ---------------------------------------------------------------------------- */

static bool dead_letter(ki_t *k, const rd_kafka_message_t *m, const char *reason, m2d_error_t *err) {
  char partition[32], offset[32], app[300];
  snprintf(partition, sizeof partition, "%" PRId32, m->partition);
  snprintf(offset, sizeof offset, "%" PRId64, m->offset);
  snprintf(app, sizeof app, M2D_KAFKA_APP_PREFIX "%s", k->o->group);
  /* the header names Kafka Connect's dead-letter queues use */
  m2d_kafka_header_t h[] = {{"__connect.errors.topic", rd_kafka_topic_name(m->rkt)},
                            {"__connect.errors.partition", partition},
                            {"__connect.errors.offset", offset},
                            {"__connect.errors.connector.name", app},
                            {"__connect.errors.exception.message", reason}};
  return m2d_kafka_producer_send(k->dlq, k->o->dead_letter_topic, m->key, m->key_len, m->payload, m->len, h, 5, err) ||
         m2d_error_prefix(err, "setting record %s[%" PRId32 "]@%" PRId64 " aside in the dead-letter topic %s: ",
                          rd_kafka_topic_name(m->rkt), m->partition, m->offset, k->o->dead_letter_topic);
}

static bool take(ki_t *k, const rd_kafka_message_t *m, m2d_error_t *err) {
  part_t *p = find_part(k, rd_kafka_topic_name(m->rkt), m->partition, false);
  if (!p || !p->assigned) return true; /* fetched before a revocation */
  int64_t need = next_needed(k, p);
  if ((need >= 0 && m->offset < need) || m->offset <= p->last) {
    k->sum->skipped++; /* in the tables already, or seen in this batch (a seek back) */
    return true;
  }
  k->sum->records++;
  m2d_metrics_counter_add(k->metrics, METRIC_RECORDS, "records consumed", M2D_LABELS("topic", p->topic), 1);
  m2d_change_t e;
  m2d_error_t why = {0};
  if (!m2d_change_from_record(m->key, m->key_len, m->payload, m->payload ? m->len : 0, k->o->format, &e, &why)) {
    m2d_debug("the record %s[%" PRId32 "]@%" PRId64 " that cannot be applied: %.*s", p->topic, p->partition, m->offset,
              m->payload ? (int)(m->len < 2000 ? m->len : 2000) : 6, m->payload ? (const char *)m->payload : "(none)");
    if (!k->dlq) {
      /* what came before it is committed; the record stays where it is for the next run */
      m2d_error_t ferr = {0};
      if (!flush(k, &ferr)) m2d_warn("committing the records before the bad one: %s", ferr.message);
      return m2d_error_set(err, M2D_ERR_FORMAT, 0,
                           "the record at topic %s partition %" PRId32 " offset %" PRId64
                           " cannot be applied: %s. The records before it are committed; fix the producer or "
                           "rerun with --dead-letter-topic TOPIC to set such records aside",
                           p->topic, p->partition, m->offset, why.message);
    }
    m2d_warn("record %s[%" PRId32 "]@%" PRId64 " goes to the dead-letter topic %s: %s", p->topic, p->partition,
             m->offset, k->o->dead_letter_topic, why.message);
    if (!dead_letter(k, m, why.message, err)) return false;
    k->sum->dead_lettered++;
    m2d_metrics_counter_add(k->metrics, METRIC_DEAD, "records sent to the dead-letter topic", M2D_LABELS("topic", p->topic), 1);
  } else {
    e.seq = m->offset;
    k->ev[k->nev] = e;
    k->evpart[k->nev] = (int)(p - k->parts);
    k->evoff[k->nev] = m->offset;
    k->nev++;
  }
  if (k->nrec == 0) k->batch_start = now_s();
  k->nrec++;
  p->last = m->offset;
  return true;
}

static void update_lag(ki_t *k) {
  for (int i = 0; i < k->nparts; i++) {
    part_t *p = &k->parts[i];
    if (!p->assigned) continue;
    int64_t lo, hi;
    if (rd_kafka_get_watermark_offsets(k->rk, p->topic, p->partition, &lo, &hi)) continue;
    int64_t next = next_needed(k, p);
    char part[32];
    snprintf(part, sizeof part, "%" PRId32, p->partition);
    m2d_metrics_gauge_set(k->metrics, METRIC_LAG, "records in the partition not yet in the tables",
                          M2D_LABELS("topic", p->topic, "partition", part), (double)(hi - (next >= 0 ? next : lo)));
  }
}

bool m2d_kafka_ingest_run(const m2d_kafka_ingest_options_t *o, m2d_kafka_ingest_summary_t *sum, m2d_error_t *err) {
  memset(sum, 0, sizeof *sum);
  ki_t k = {.o = o, .sum = sum};
  const m2d_stream_tables_t *t = &o->tables;
  k.mirror_options = (m2d_mirror_options_t){.table = t->table, .rewrite = t->rewrite, .soft_delete = t->soft_delete,
                                            .change_data_feed = t->change_data_feed, .codec = t->codec,
                                            .level = t->level};
  m2d_progress_begin(&k.line, "events", 0, "kafka-ingest %s into %s", o->group, t->table);
  k.cap = o->tables.max_batch > 0 ? o->tables.max_batch : 1000;
  k.ev = calloc((size_t)k.cap + 1, sizeof *k.ev);
  k.evpart = calloc((size_t)k.cap + 1, sizeof *k.evpart);
  k.evoff = calloc((size_t)k.cap + 1, sizeof *k.evoff);
  bool ok = (k.ev && k.evpart && k.evoff) || m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory");
  if (ok && o->tables.metrics_port >= 0) {
    ok = (k.metrics = m2d_metrics_start(NULL, o->tables.metrics_port, err)) != NULL;
    if (ok) {
      m2d_info("metrics (Prometheus text) on http://127.0.0.1:%d/metrics", m2d_metrics_port(k.metrics));
      m2d_metrics_counter_add(k.metrics, METRIC_BATCHES, "micro-batches committed", NULL, 0);
      m2d_metrics_counter_add(k.metrics, METRIC_REBALANCES, "partition assignments and revocations", NULL, 0);
    }
  }
  /* the tables must open (and their features be ours) before any partition is taken */
  ok = ok && open_tables(&k, err);
  if (ok && o->dead_letter_topic) {
    /* a record set aside may be as large as the largest the topics hold */
    m2d_kafka_producer_options_t po = {.brokers = o->brokers, .max_message_bytes = 64 << 20};
    ok = (k.dlq = m2d_kafka_producer_new(&po, err)) != NULL;
  }
  m2d_kafka_consumer_options_t co = {.brokers = o->brokers, .group = o->group,
                                     .session_timeout_ms = o->session_timeout_ms, .rebalance = on_rebalance,
                                     .opaque = &k};
  if (ok) ok = (k.rk = m2d_kafka_consumer_new(&co, err)) != NULL;
  if (ok) ok = m2d_kafka_consumer_subscribe(k.rk, o->topics, o->ntopics, o->topic_pattern, err);
  double last_lag = 0;
  k.last_activity = now_s();
  int latency = o->tables.max_latency_ms > 0 ? o->tables.max_latency_ms : 1000;
  while (ok && !stopping(&k)) {
    rd_kafka_message_t *m = rd_kafka_consumer_poll(k.rk, 100);
    if (k.failed) {
      if (m) rd_kafka_message_destroy(m);
      break;
    }
    if (m && m->err) {
      if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        /* nothing: the end of a partition for now */
      } else if (m->err == RD_KAFKA_RESP_ERR__FATAL) {
        char why[512];
        rd_kafka_fatal_error(k.rk, why, sizeof why);
        ok = m2d_error_set(err, M2D_ERR_KAFKA, M2D_KAFKA_FATAL, "the Kafka consumer cannot go on: %s", why);
      } else if (m->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART || m->err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC) {
        m2d_warn("kafka: %s (waiting for the topic to exist)", rd_kafka_message_errstr(m));
      } else {
        m2d_debug("kafka: %s (retried by the client)", rd_kafka_message_errstr(m));
      }
    } else if (m) {
      ok = take(&k, m, err);
      k.last_activity = now_s();
    }
    if (m) rd_kafka_message_destroy(m);
    if (!ok) break;
    if (k.nrec && (k.nrec >= k.cap || (now_s() - k.batch_start) * 1000 >= latency)) ok = flush(&k, err);
    if (ok && k.nrec == 0 && o->tables.compact_every > 0 && k.since_compaction >= o->tables.compact_every) compact(&k);
    if (k.metrics && now_s() - last_lag >= 1) {
      update_lag(&k);
      last_lag = now_s();
    }
    if (o->tables.stop_when_idle_s > 0 && k.nrec == 0 && idle_enough(&k)) break;
  }
  if (ok && !k.failed) ok = flush(&k, err); /* the batch in hand, also on SIGINT/SIGTERM */
  if (k.rk) {
    /* leaves the group: the revocation commits nothing more (the batch is empty) */
    if (!ok || k.failed) clear_batch(&k);
    rd_kafka_consumer_close(k.rk);
    rd_kafka_destroy(k.rk);
  }
  if (ok && k.failed) {
    *err = k.error;
    ok = false;
  }
  clear_batch(&k);
  free(k.ev);
  free(k.evpart);
  free(k.evoff);
  free(k.parts);
  m2d_kafka_producer_destroy(k.dlq);
  m2d_metrics_stop(k.metrics);
  if (ok && k.mirror) m2d_mirror_save_index(k.mirror);
  m2d_mirror_close(k.mirror);
  m2d_table_writer_destroy(k.log);
  m2d_progress_end(&k.line);
  return ok;
}
