/* Rows of a Parquet schema, assembled back from leaf columns (Dremel record assembly, with
 * the backward-compatibility rules of LogicalTypes.md for lists and maps), printed in the JSON
 * form of docs/json-form.md. Used by `parquet dump` and `cat`. */
#ifndef M2D_PARQUET_JSON_ROWS_H
#define M2D_PARQUET_JSON_ROWS_H

#include "columnar/column.h"
#include "core/buf.h"
#include "parquet/schema.h"

typedef struct pq_json_rows pq_json_rows_t;

/* cols[i] holds leaf i of schema; a NULL entry (or selected[i] false) leaves the column and the
 * fields made only of unselected leaves out of the rows. Both arrays are borrowed. */
pq_json_rows_t *pq_json_rows_new(const pq_schema_t *schema, const m2d_column_t *cols, const bool *selected,
                                 m2d_error_t *err);
void pq_json_rows_destroy(pq_json_rows_t *j);
/* Print INT96 timestamps with microseconds (Delta's timestamp) instead of nanoseconds. */
void pq_json_rows_int96_as_micros(pq_json_rows_t *j, bool on);

/* Appends the next row as one JSON object (no newline). false at the end of the columns
 * (with err untouched) or on corrupt levels (err set). */
bool pq_json_rows_next(pq_json_rows_t *j, m2d_buf_t *out, bool *end, m2d_error_t *err);

/* An output field for pq_json_rows_next_fields: the value of a top-level node of the schema
 * (node != NULL), or a JSON literal (partition values, columns a file lacks). */
typedef struct {
  const char *name;
  const pq_node_t *node;
  const char *literal;
} pq_json_field_t;

/* Like pq_json_rows_next, with the row's fields named and ordered by fields[]. Every selected
 * top-level node must appear once in fields[] (so each row consumes its levels). */
bool pq_json_rows_next_fields(pq_json_rows_t *j, const pq_json_field_t *fields, int n, m2d_buf_t *out, bool *end,
                              m2d_error_t *err);

/* One value of a leaf in the JSON form (fixed-width value or bytes). */
bool pq_json_value(const pq_node_t *leaf, const uint8_t *v, size_t len, m2d_buf_t *out, m2d_error_t *err);

/* The list/map shape of a group (LogicalTypes.md backward-compatibility rules): its repeated
 * child and the element node (the repeated node itself for a map's key_value). false when g
 * is a plain struct. */
bool pq_list_shape(const pq_node_t *g, const pq_node_t **rep, const pq_node_t **elem, bool *is_map);

#endif
