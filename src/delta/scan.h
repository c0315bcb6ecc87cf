/* Reading a Delta table's rows: every live data file of a snapshot, honouring column mapping
 * (name and id), partition values, deletion vectors and schema evolution (columns a file lacks
 * are null), printed in the JSON form of docs/json-form.md with the table's column names. */
#ifndef M2D_DELTA_SCAN_H
#define M2D_DELTA_SCAN_H

#include "delta/log.h"

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

#endif
