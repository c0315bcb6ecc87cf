/* Table rows straight from the column vectors of delta/scan's typed form to MongoDB documents:
 * the inverse of columnar/shred. Each document is the one m2d_row_to_bson makes of the row's
 * JSON form (same BSON types by the Delta schema and mongo2delta.bsonType, the values of
 * _rescued_data put back, nulls left out), without printing or parsing the row. Used by
 * publish, the mirror (key index, rewrites, change data) and optimize. */
#ifndef M2D_PIPELINE_COLUMNS_BSON_H
#define M2D_PIPELINE_COLUMNS_BSON_H

#include "delta/scan.h"

#include <bson/bson.h>

/* Called with each live row's document (borrowed, valid during the call), or with doc NULL and
 * row_err set when that row cannot become a document (the scan goes on). file: the index of the
 * row's file in snap->files; row: its physical row number there. Return false to stop. */
typedef bool (*m2d_doc_fn)(const bson_t *doc, const m2d_error_t *row_err, size_t file, uint64_t row, void *ud);

/* Every live row of snap (columns: comma-separated top-level columns, NULL for all; the other
 * columns are absent from the documents, as from rows of those columns). */
bool m2d_scan_documents(m2d_store_t *store, const delta_snapshot_t *snap, const char *columns, m2d_doc_fn fn, void *ud,
                        m2d_error_t *err);

#endif
