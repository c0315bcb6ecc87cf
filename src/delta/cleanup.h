/* Log cleanup (PROTOCOL.md "Metadata Cleanup"): after a checkpoint, the JSON commits, older
 * checkpoints and .crc files of _delta_log that the table no longer needs are removed, as Delta
 * does, when delta.enableExpiredLogCleanup is not "false". Kept: the newest checkpoint whose
 * version is at or below the newest commit older than delta.logRetentionDuration (default
 * "interval 30 days"; by the listing's modification times), its JSON commit and everything
 * after it, so every version from that checkpoint on still reads; nothing is removed when
 * there is no such checkpoint. The cutoff checkpoint may be a v2 one; sidecars in
 * _delta_log/_sidecars that no kept checkpoint names go once older than the retention and a
 * day. */
#ifndef M2D_DELTA_CLEANUP_H
#define M2D_DELTA_CLEANUP_H

#include "storage/store.h"

#include <jansson.h>

/* delta.logRetentionDuration of metadata in ms (30 days when absent); false with err naming
 * the property when it is not an interval. */
bool delta_log_retention_ms(const json_t *metadata, int64_t *ms, m2d_error_t *err);

/* Removes what has expired at now_ms (see above) under the table of store, whose metaData
 * action is metadata. A JSON commit holding the latest txn of an application of txns (appId ->
 * version, may be NULL) and a stream position (commitInfo "mongo2delta" with a resumeToken,
 * as sync writes) is kept: the checkpoint does not carry that position. *removed (may be NULL) counts the files removed, *kept_from the version
 * of the oldest checkpoint kept (-1 when nothing was removed). A bad logRetentionDuration is
 * an error and nothing is removed. */
bool delta_log_cleanup(m2d_store_t *store, const json_t *metadata, const json_t *txns, int64_t now_ms, int *removed,
                       int64_t *kept_from, m2d_error_t *err);

#endif
