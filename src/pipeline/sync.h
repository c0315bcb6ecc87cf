/* mongo2delta sync: a collection's change stream into a mirror table (equal to the collection)
 * and/or an append-only change-log table, exactly once.
 *
 * Each micro-batch is one Delta commit per table carrying a txn action for the stream's app id
 * ("mongo2delta-sync:<db>.<collection>", version = the batch number) and, in commitInfo, the
 * position of its last event (resume token and cluster time) and the event sequence number.
 * After a crash the next run reads the position back from the table and resumes after it; the
 * change log skips the events it already holds (in "both" mode it is committed first), the
 * mirror applies by _id, so applying an event twice there is harmless.
 *
 * The mirror table is pipeline/mirror (deletion vectors through a key index, or copy-on-write;
 * soft deletes; change data files); the change log is appended to here. Both are compacted
 * between batches. The first run snapshots the collection (after opening the stream, so no event
 * between the two is lost: the ones during the snapshot are applied again, harmlessly). */
#ifndef M2D_PIPELINE_SYNC_H
#define M2D_PIPELINE_SYNC_H

#include "core/error.h"
#include "core/metrics.h"
#include "mongo/client.h"
#include "parquet/format.h"

#include <signal.h>
#include <stdint.h>

typedef struct {
  const char *uri, *db, *collection;
  const char *table;           /* the mirror table (mirror, both) */
  const char *changelog_table; /* the change-log table (changelog, both) */
  bool mirror, changelog;
  bool initial_snapshot;
  bool rewrite;                /* --merge-strategy rewrite (copy-on-write) instead of deletion vectors */
  bool soft_delete;
  bool change_data_feed;       /* --change-data-feed: _change_data files and cdc actions in the mirror */
  bool resnapshot_on_history_lost; /* --on-history-lost resnapshot (else: fail with a clear error) */
  pq_codec_t codec;            /* data files of both tables (and the initial snapshot); zero: uncompressed */
  int level;                   /* codec level, 0: default */
  uint64_t target_file_size;   /* the initial snapshot's files (0: 128 MiB); compaction cuts at optimize's 128 MiB */
  int max_batch_docs;          /* default 1000 */
  int max_latency_ms;          /* default 1000 */
  int stop_when_idle_s;        /* 0: run until stopped */
  int workers;                 /* for the initial snapshot */
  int compact_every;           /* compact the tables after this many batches (when the stream is quiet), 0: never */
  int metrics_port;            /* serve Prometheus text on 127.0.0.1:PORT (0: any free port), -1: no */
  volatile sig_atomic_t *stop;
  /* run (many collections in one process): clients come from this pool and the metrics go to
   * this registry (metrics_port is then ignored; the registry is not stopped). NULL: the sync
   * command's own client and --metrics-port. */
  mongoc_client_pool_t *pool;
  m2d_metrics_t *shared_metrics;
} m2d_sync_options_t;

typedef struct {
  int64_t events, batches, upserts, deletes, changelog_rows, skipped;
  int64_t first_seq, last_seq;
  bool snapshotted;
  bool interrupted; /* stopped (o->stop) during the initial snapshot: the error says so */
} m2d_sync_summary_t;

bool m2d_sync_run(const m2d_sync_options_t *opts, m2d_sync_summary_t *sum, m2d_error_t *err);

#endif
