/* Classic checkpoints (PROTOCOL.md "Checkpoints"): the table's state at a version as one
 * Parquet file `_delta_log/<version>.checkpoint.parquet` with one action per row (protocol,
 * metaData, txn, add, domainMetadata) in the schema Spark and delta-rs read, then
 * `_delta_log/_last_checkpoint` pointing at it. Writing one never changes the table's
 * contents: a crash leaves at worst a checkpoint that _last_checkpoint does not name yet.
 * After it, the log files that have expired are removed (delta/cleanup.h). */
#ifndef M2D_DELTA_CHECKPOINT_H
#define M2D_DELTA_CHECKPOINT_H

#include "storage/store.h"

bool delta_checkpoint_write(m2d_store_t *store, int64_t version, m2d_error_t *err);

#endif
