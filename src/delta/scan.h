/* Reading a Delta table's rows: every live data file of a snapshot, honouring column mapping
 * (name and id), partition values, deletion vectors and schema evolution (columns a file lacks
 * are null). Two forms: each row printed in the JSON form of docs/json-form.md with the table's
 * column names (cat), or each row group's column vectors as they were decoded (the typed form:
 * pipeline/columns_bson turns them into documents without text in between). */
#ifndef M2D_DELTA_SCAN_H
#define M2D_DELTA_SCAN_H

#include "delta/dv.h"
#include "delta/log.h"
#include "parquet/schema.h"

/* Called with each row as one JSON object (no newline); return false to stop. */
typedef bool (*delta_row_fn)(const char *json, size_t len, void *ud);

/* columns: comma-separated top-level column names to keep, or NULL for all. limit < 0: all. */
bool delta_scan(m2d_store_t *store, const delta_snapshot_t *snap, const char *columns, int64_t limit, delta_row_fn fn,
                void *ud, m2d_error_t *err);

/* The same, telling each row's place: the index of its file in snap->files and its physical
 * row number in that file (counting the rows a deletion vector hides), what a deletion vector
 * names. */
typedef bool (*delta_row_at_fn)(const char *json, size_t len, size_t file, uint64_t row, void *ud);
bool delta_scan_at(m2d_store_t *store, const delta_snapshot_t *snap, const char *columns, int64_t limit,
                   delta_row_at_fn fn, void *ud, m2d_error_t *err);

/* A column of the table in a batch: its Delta field (name, type, metadata) and either its node
 * in the file's schema (renamed to the table's names; nested fields the file lacks are listed
 * in the node's null_fields) or, for partition values and columns the file lacks, a constant:
 * its JSON literal ("null" for a column the file lacks), the same for every row of the file. */
typedef struct {
  const char *name;
  const json_t *field;
  const pq_node_t *node;
  const char *literal;
} delta_scan_field_t;

/* One row group of one data file. cols[l] holds leaf l of schema when selected[l]; the rows a
 * deletion vector names are in the columns too (the caller walks past them). */
typedef struct {
  size_t file;         /* index in snap->files */
  int row_group;
  uint64_t first_row;  /* physical row number of the batch's first row in its file */
  int64_t nrows;
  const pq_schema_t *schema;
  const m2d_column_t *cols;
  const bool *selected;
  const delta_scan_field_t *fields; /* the asked columns, in the table's order */
  int nfields;
  const delta_dv_t *dv; /* NULL: no row deleted */
} delta_batch_t;

/* Called with each row group; return false to stop (err untouched: a stop, not a failure). */
typedef bool (*delta_batch_fn)(const delta_batch_t *b, void *ud, m2d_error_t *err);
bool delta_scan_batches(m2d_store_t *store, const delta_snapshot_t *snap, const char *columns, delta_batch_fn fn,
                        void *ud, m2d_error_t *err);

#endif
