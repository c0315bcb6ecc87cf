/* mongo2delta snapshot: a collection read in parallel, straight into a Delta table.
 *
 * The collection is split into _id ranges (mongo/ranges); N workers, each with its own
 * connection and its own table writer, take ranges one at a time, read them in batches, learn
 * each batch's schema into one schema shared by the workers (so every file of the table agrees
 * on every column's type: a later value that does not fit is rescued), shred, encode and
 * commit each range as one Delta commit whose txn appId names the run and the range.
 *
 * Resumable: the plan (the ranges' filters) is kept in the table's metaData configuration
 * ("mongo2delta.snapshot"), committed with the first range, and the ranges done are the txn
 * appIds in the log. Run again after a crash or Ctrl-C, the same command reads only the ranges
 * not committed yet, so no document is read twice into the table. */
#ifndef M2D_PIPELINE_SNAPSHOT_H
#define M2D_PIPELINE_SNAPSHOT_H

#include "core/error.h"
#include "mongo/client.h"
#include "parquet/format.h"

#include <jansson.h>
#include <signal.h>
#include <stdint.h>

typedef struct {
  const char *uri, *db, *collection, *table;
  int workers;               /* default 4 */
  const char *filter;        /* Extended JSON, or NULL */
  const char *projection;    /* Extended JSON, or NULL */
  const char *live_flag;     /* a field every document gets as false (sync --delete soft: "_deleted"), or NULL */
  pq_codec_t codec;
  int level;
  uint64_t target_file_size;
  const char *partition_by;
  bool restart;              /* empty the table and start a new plan */
  bool progress;             /* a progress line on stderr (a terminal) */
  volatile sig_atomic_t *stop; /* set by a signal: commit what is complete and return */
  mongoc_client_pool_t *pool;  /* clients from here (run), or NULL: each worker opens its own */
} m2d_snapshot_options_t;

typedef struct {
  int64_t documents;         /* read and committed by this run */
  int64_t bytes_read;        /* BSON bytes */
  int64_t data_files, bytes_written, rescued;
  int ranges, ranges_before; /* in the plan; committed by earlier runs */
  int64_t version;
  double seconds;
  bool interrupted, already_complete;
  json_t *rescued_fields;    /* path -> count; owned, free with m2d_snapshot_summary_free */
} m2d_snapshot_summary_t;

bool m2d_snapshot_run(const m2d_snapshot_options_t *opts, m2d_snapshot_summary_t *sum, m2d_error_t *err);
void m2d_snapshot_summary_free(m2d_snapshot_summary_t *sum);

#endif
