/* A Delta transaction: actions gathered in memory, then one commit file created with
 * put-if-absent (PROTOCOL.md "Delta Log Entries"), retried at the next version after a lost
 * race when the winning commits do not conflict with ours (optimistic concurrency):
 *   - a concurrent metaData or protocol change aborts (the table changed under us);
 *   - a concurrent txn for one of our appIds aborts (another writer owns that stream); a commit
 *     may carry several txn actions, one per appId (one per Kafka partition, say);
 *   - a concurrent remove of a file our commit removes aborts (the file was deleted, or
 *     rewritten with a new deletion vector, by another writer: what we read is stale);
 *   - concurrent appends do not conflict with our appends: we retry at the next version.
 * After a commit at a version divisible by the checkpoint interval (table configuration
 * delta.checkpointInterval, default 10) a classic checkpoint is written. */
#ifndef M2D_DELTA_TXN_H
#define M2D_DELTA_TXN_H

#include "delta/log.h"

typedef struct delta_txn delta_txn_t;

/* err->code of an M2D_ERR_CONFLICT from delta_txn_commit. */
enum {
  DELTA_CONFLICT_METADATA = 1, /* a concurrent metaData/protocol change: re-read the table, maybe retry */
  DELTA_CONFLICT_APP = 2,      /* a concurrent txn for our appId: never retried */
  DELTA_CONFLICT_CREATED = 3,  /* we meant to create the table and someone else did */
  DELTA_CONFLICT_FILES = 4     /* a concurrent commit removed a file this one removes: never retried */
};

/* read_version: the version the transaction read (-1: the table does not exist yet). The
 * store is borrowed. operation is commitInfo's "operation" ("WRITE", "CREATE TABLE"). */
delta_txn_t *delta_txn_new(m2d_store_t *store, int64_t read_version, const char *operation, m2d_error_t *err);
void delta_txn_destroy(delta_txn_t *t); /* accepts NULL */

/* Takes ownership of action (one of delta/actions.h's). A metaData or protocol action makes
 * the commit a table change; a txn action claims its appId (at most one per appId); a remove action claims its path
 * (a concurrent commit that removes the same path is a conflict). */
bool delta_txn_add(delta_txn_t *t, json_t *action, m2d_error_t *err);
/* commitInfo.operationParameters / operationMetrics entries (values become strings). */
void delta_txn_param(delta_txn_t *t, const char *key, const char *value);
void delta_txn_metric(delta_txn_t *t, const char *key, int64_t value);
/* Extra commitInfo fields (e.g. a stream's resume token); value taken over. */
void delta_txn_info(delta_txn_t *t, const char *key, json_t *value);
/* Checkpoint interval override (0: the table's or 10). */
void delta_txn_set_checkpoint_interval(delta_txn_t *t, int interval);

/* Writes the commit. *version gets the version committed. On a conflict the error says what
 * changed and nothing is written. */
bool delta_txn_commit(delta_txn_t *t, int64_t *version, m2d_error_t *err);

#endif
