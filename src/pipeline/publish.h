/* mongo2delta publish: a Delta table (typically written by Spark or Databricks) into a MongoDB
 * collection, the whole table or only what changed since the last publish.
 *
 * Rows become documents through pipeline/row_bson; they are written with unordered bulk
 * writes keyed by --key (upsert: $set of the row's fields, replace: the whole document,
 * insert). Incremental: the table version last published is kept in the target database
 * (collection mongo2delta_publish, one document per table and collection), written only after
 * every write of that version succeeded, so a rerun after a crash neither misses a change nor
 * applies one that did not happen (writes are idempotent by key). The changes between two
 * versions are the rows of the files removed and added in between (deletion vectors
 * included), compared row by row: a row rewritten unchanged (copy-on-write) is not written
 * again. */
#ifndef M2D_PIPELINE_PUBLISH_H
#define M2D_PIPELINE_PUBLISH_H

#include "core/error.h"

#include <signal.h>
#include <stdint.h>

typedef enum { M2D_PUBLISH_UPSERT, M2D_PUBLISH_REPLACE, M2D_PUBLISH_INSERT } m2d_publish_mode_t;

typedef struct {
  const char *table, *uri, *db, *collection;
  const char *const *keys; /* key fields (default {"_id"}) */
  int nkeys;
  m2d_publish_mode_t mode;
  bool incremental;
  int64_t from_version;  /* >= 0: publish the changes made by this version and later */
  bool delete_missing;
  int batch_size;        /* default 1000 */
  bool progress;
  volatile sig_atomic_t *stop;
} m2d_publish_options_t;

typedef struct {
  int64_t from_version, to_version; /* -1 from: a full publish */
  int64_t rows, unchanged;
  int64_t inserted, upserted, matched, modified, deleted, failed;
  char first_failure[512];
  bool nothing_to_do;
} m2d_publish_summary_t;

bool m2d_publish_run(const m2d_publish_options_t *opts, m2d_publish_summary_t *sum, m2d_error_t *err);

#endif
