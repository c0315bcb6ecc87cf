/* The mirror table of sync: a Delta table equal to a collection, changed batch by batch.
 *
 * Every document of a batch leaves its old row, found through a key index _id -> (data file,
 * physical row) that is built from the table's _id column when the mirror is opened and kept up
 * to date: by default the row is marked deleted in a deletion vector for its file (the
 * deletionVectors table feature, turned on with the first batch), so a batch costs what it
 * changes; with the rewrite strategy the files touched are rewritten without those rows
 * (copy-on-write, for readers without deletion-vector support). Then the documents' last
 * versions are appended. Soft deletes keep a deleted document's last known version marked
 * _deleted; the change data feed writes _change_data files (insert, update_preimage,
 * update_postimage, delete) committed as cdc actions with the batch. */
#ifndef M2D_PIPELINE_MIRROR_H
#define M2D_PIPELINE_MIRROR_H

#include "pipeline/change.h"
#include "pipeline/table_writer.h"

#include <signal.h>

typedef struct {
  const char *table;
  bool rewrite;          /* copy-on-write instead of deletion vectors */
  bool soft_delete;      /* deleted documents stay, _deleted = true */
  bool change_data_feed; /* _change_data files and delta.enableChangeDataFeed */
  pq_codec_t codec;      /* the data files' codec (zero: uncompressed) and level */
  int level;
} m2d_mirror_options_t;

typedef struct {
  int64_t upserts, deletes;
} m2d_mirror_counts_t;

typedef struct m2d_mirror m2d_mirror_t;

/* Opens the table (or prepares to create it); the key index is built by build_index. */
m2d_mirror_t *m2d_mirror_open(const m2d_mirror_options_t *o, m2d_error_t *err);
void m2d_mirror_close(m2d_mirror_t *m); /* accepts NULL */
/* The mirror's table writer (borrowed): its version, txns, and commits of the caller's. */
m2d_table_writer_t *m2d_mirror_writer(m2d_mirror_t *m);
/* (Re)builds the key index from the table as it is now, or reads it from its cache in the table's
 * store (_mongo2delta/keyindex.bin) when that was saved for this very table version and files. */
bool m2d_mirror_build_index(m2d_mirror_t *m, m2d_error_t *err);
/* Writes the key index to its cache (atomically), when it is known to be exact for a version:
 * built or loaded, then changed only by this mirror's own commits, none from another writer
 * between them. At clean shutdown; a cache left behind by a crash is rejected or still right. */
void m2d_mirror_save_index(m2d_mirror_t *m); /* a failure is logged: the next start builds it */
/* Applies a batch of changes as one commit with the txn actions (one per app id: sync's
 * stream, or each Kafka partition of the batch) and position (borrowed) in commitInfo; counts (added to) says what was done. Applying a change twice is harmless.
 * When another writer (an optimize run) rewrote files the batch changes, the table is read
 * again and the batch retried. */
bool m2d_mirror_apply(m2d_mirror_t *m, const m2d_change_t *changes, int n, const m2d_app_txn_t *txns, int ntxns,
                      const json_t *position, m2d_mirror_counts_t *counts, m2d_error_t *err);
/* Compacts the table between batches (pipeline/optimize: small files bin-packed, files with 30%
 * of their rows deleted rewritten) and indexes the rewritten rows again; a failure is logged,
 * the table is then as it was. */
void m2d_mirror_compact(m2d_mirror_t *m, volatile sig_atomic_t *stop);

#endif
