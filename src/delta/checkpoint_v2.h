/* V2 checkpoints (PROTOCOL.md "V2 Checkpoint Table Feature", "V2 Spec"): a checkpoint named
 * `<version>.checkpoint.<uuid>.json|parquet` (or classic-named on a v2Checkpoint table) whose
 * checkpointMetadata action marks it, and whose `sidecar` actions name Parquet files in
 * `_delta_log/_sidecars/` holding more of its add/remove actions. This module knows the names;
 * log.c reads them and checkpoint.c writes them. */
#ifndef M2D_DELTA_CHECKPOINT_V2_H
#define M2D_DELTA_CHECKPOINT_V2_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* Whether rest (a log file name after its 20-digit version) is ".checkpoint.<uuid>.json" or
 * ".checkpoint.<uuid>.parquet"; *is_json says which. */
bool delta_cp2_uuid_name(const char *rest, bool *is_json);

/* The store key ("_delta_log/_sidecars/<name>") of a sidecar action's path, which the protocol
 * keeps in that directory (a full URI is reduced to its file name, percent-decoded). False when
 * the path is missing or empty. */
bool delta_cp2_sidecar_key(const json_t *sidecar, char *out, size_t n);

/* Whether the table's protocol lists v2Checkpoint: its checkpoints must then be v2 ones. */
bool delta_cp2_required(const json_t *protocol);

/* The checkpoint file _last_checkpoint names in its v2Checkpoint field (borrowed; NULL when it
 * has none). */
const char *delta_cp2_last_checkpoint_path(const json_t *last_checkpoint);

#endif
