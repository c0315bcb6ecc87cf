/* Writing BSON documents into a Delta table, one commit at a time: the piece every pipeline
 * (load, snapshot, sync) shares. A commit is prepared in three steps:
 *   begin(observed schema)  evolves the table schema with what the batch's documents hold
 *   add(doc)...             shreds each document into its partition's Parquet file(s),
 *                           cut at the target file size
 *   commit(app id, version) closes the files and commits their add actions, the new
 *                           metaData when the schema grew, and a txn for the app id
 * A batch that fails or is abandoned removes the files it wrote; nothing is committed. */
#ifndef M2D_PIPELINE_TABLE_WRITER_H
#define M2D_PIPELINE_TABLE_WRITER_H

#include "parquet/format.h"
#include "schema/dtype.h"

#include <bson/bson.h>
#include <jansson.h>

typedef struct {
  const char *table;          /* a local path or a store URL (storage/store.h) */
  pq_codec_t codec;           /* zero: uncompressed (the commands' snappy default is cli/args.c's) */
  int level;                  /* codec level, 0: default */
  uint64_t target_file_size;  /* bytes of Parquet per file, default 128 MiB */
  const char *partition_by;   /* a top-level field, or NULL (an existing table keeps its own) */
  const char *operation;      /* commitInfo operation, default "WRITE" */
  json_t *configuration;      /* metaData configuration of a table this writer creates (borrowed) */
  const char *data_dir;       /* directory of the data files under the table, NULL: the root */
  const char *file_prefix;    /* data file names begin with it, default "part" */
  bool validated;             /* documents added were validated (bson_validate) by the caller */
  bool background_encode;     /* batches are encoded into Parquet by a thread while the next one is
                               * shredded (one part at a time: load's unpartitioned tables) */
} m2d_table_writer_options_t;

typedef struct m2d_table_writer m2d_table_writer_t;

/* Opens (or prepares to create) the table. Refuses tables that use a writer feature we do
 * not support, naming it. */
m2d_table_writer_t *m2d_table_writer_open(const m2d_table_writer_options_t *opts, m2d_error_t *err);
void m2d_table_writer_destroy(m2d_table_writer_t *w); /* abandons an open batch; accepts NULL */

/* The table's version (-1: not created yet) and the version of appId's last txn (-1: none). */
int64_t m2d_table_writer_version(const m2d_table_writer_t *w);
int64_t m2d_table_writer_app_version(const m2d_table_writer_t *w, const char *app_id);

/* Starts a batch whose documents have the (inferred) schema observed (borrowed). */
bool m2d_table_writer_begin(m2d_table_writer_t *w, const m2d_dtype_t *observed, m2d_error_t *err);
/* Grows the batch's schema with what more documents hold (borrowed), mid-batch: open files are
 * closed (their rows stay in the batch) and new ones use the grown schema. */
bool m2d_table_writer_extend(m2d_table_writer_t *w, const m2d_dtype_t *observed, m2d_error_t *err);
/* The table schema as the writer knows it (NULL before the first batch of a new table). */
const m2d_dtype_t *m2d_table_writer_schema(const m2d_table_writer_t *w);
/* The table's metaData and protocol action values (NULL when the table does not exist yet). */
const json_t *m2d_table_writer_metadata(const m2d_table_writer_t *w);
const json_t *m2d_table_writer_protocol(const m2d_table_writer_t *w);
/* The table's metaData configuration (NULL when the table does not exist yet). */
const json_t *m2d_table_writer_configuration(const m2d_table_writer_t *w);
/* Values rescued so far by this writer, per field path: an object path -> count (owned). */
const json_t *m2d_table_writer_rescued_fields(const m2d_table_writer_t *w);
/* Commits the removal of every file of the table and sets the keys of configuration (taken)
 * in its configuration, the others kept: a table emptied in one commit, its history and
 * properties kept (for --restart). */
bool m2d_table_writer_truncate(m2d_table_writer_t *w, json_t *configuration, int64_t *version, m2d_error_t *err);

/* Adds to the batch the removal of a file of the table (an add action as the log holds it):
 * with the adds of rewritten rows, a copy-on-write change. The commit fails with
 * M2D_ERR_CONFLICT / DELTA_CONFLICT_FILES (see delta/txn.h) when another writer removed or
 * rewrote the file meanwhile, also when it did so together with a schema change. */
bool m2d_table_writer_remove_file(m2d_table_writer_t *w, const json_t *add, m2d_error_t *err);
/* Adds an action of the caller's (taken) to the batch, such as an add of an existing file with
 * a new deletion vector (after its remove_file). */
bool m2d_table_writer_add_action(m2d_table_writer_t *w, json_t *action, m2d_error_t *err);
/* Makes the next commits enable a table feature (PROTOCOL.md "Table Features"): the protocol
 * goes to table features (reader 3 when it is a reader feature, writer 7, the features of the
 * legacy versions listed) and config_key (may be NULL) is set to "true" in the configuration. */
void m2d_table_writer_enable_feature(m2d_table_writer_t *w, const char *feature, bool reader_feature,
                                     const char *config_key);
bool m2d_table_writer_has_feature(const m2d_table_writer_t *w, const char *feature);
/* Marks the batch just begun (with the table's own schema) as a rearrangement of rows the
 * table already holds, for compaction: its add and remove actions are committed with
 * dataChange false (PROTOCOL.md: the rows of the removed files are those of the added ones),
 * commitInfo gets `operation` (e.g. "OPTIMIZE") with Spark's OPTIMIZE parameters and metrics
 * (numRemovedFiles, numAddedFiles, numRemovedBytes, numAddedBytes, numDeletionVectorsRemoved),
 * files are cut at target_file_size (0: the writer's), values rescued again are not counted in
 * m2d_table_writer_rescued_fields, and the commit fails when the table's schema would have to
 * change. When the table has no _rescued_data column (written by others), the files get none
 * either, and a value that would be rescued fails the batch. Lasts until the batch is
 * committed or abandoned; call it before adding documents. */
bool m2d_table_writer_rearrange(m2d_table_writer_t *w, const char *operation, uint64_t target_file_size,
                                m2d_error_t *err);
/* Closes the batch's open files (their rows stay in the batch, their add actions are in
 * m2d_table_writer_batch_adds): the next rows start new files. */
bool m2d_table_writer_close_files(m2d_table_writer_t *w, m2d_error_t *err);
/* The add actions of the batch's closed files so far (borrowed; NULL when no batch is begun). */
const json_t *m2d_table_writer_batch_adds(const m2d_table_writer_t *w);
/* Whether a batch is begun and neither committed nor abandoned yet. */
bool m2d_table_writer_in_batch(const m2d_table_writer_t *w);
/* The add actions of the last committed batch (borrowed; NULL before the first). */
const json_t *m2d_table_writer_last_adds(const m2d_table_writer_t *w);
/* The table's store (borrowed), to read its files. */
struct m2d_store *m2d_table_writer_store(m2d_table_writer_t *w);

/* Adds one document; *rescued counts values kept in _rescued_data. */
bool m2d_table_writer_add(m2d_table_writer_t *w, const bson_t *doc, int64_t *rescued, m2d_error_t *err);
/* Commits the batch (app_id may be NULL: no txn). info (taken, may be NULL) is merged into
 * commitInfo. *version gets the committed version. */
bool m2d_table_writer_commit(m2d_table_writer_t *w, const char *app_id, int64_t app_version, json_t *info,
                             int64_t *version, m2d_error_t *err);
/* A txn action of a commit: the application id's new version (PROTOCOL.md "Transaction
 * Identifiers"). */
typedef struct {
  const char *app_id;
  int64_t version;
} m2d_app_txn_t;
/* Commits the batch with several txn actions (one per app id, such as one per Kafka
 * partition); otherwise as m2d_table_writer_commit. A concurrent commit of one of the app ids
 * fails the commit with M2D_ERR_CONFLICT / DELTA_CONFLICT_APP. */
bool m2d_table_writer_commit_txns(m2d_table_writer_t *w, const m2d_app_txn_t *txns, int ntxns, json_t *info,
                                  int64_t *version, m2d_error_t *err);
/* Begins a batch with the schema the documents show and adds them all (a batch of a few
 * documents, such as a sync batch; nothing is committed yet). */
bool m2d_table_writer_write(m2d_table_writer_t *w, bson_t **docs, int n, m2d_error_t *err);
/* Closes the batch's files and hands over their add actions (*adds, owned) without committing:
 * files for another writer's commit (change data files). The batch is cleared; the files stay. */
bool m2d_table_writer_take_files(m2d_table_writer_t *w, json_t **adds, m2d_error_t *err);
/* Drops the batch in hand, removing its files. */
void m2d_table_writer_abort(m2d_table_writer_t *w);

typedef struct {
  int64_t rows, files, bytes;
} m2d_table_writer_stats_t;
/* Totals of the last committed batch. */
m2d_table_writer_stats_t m2d_table_writer_last(const m2d_table_writer_t *w);

#endif
