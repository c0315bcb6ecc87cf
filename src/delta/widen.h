/* Type widening (PROTOCOL.md "Type Widening", feature typeWidening): a column's type may have
 * been widened after some files were written (byte -> short -> int -> long, float or an integer
 * -> double, date -> timestamp_ntz, decimal(p, s) -> decimal(p + k1, s + k2), an integer ->
 * decimal). Those files still hold the narrower type; a reader must see the table's. The plan,
 * made once per file from the table's schema and the file's, converts each row group's decoded
 * columns in place and re-annotates the file's leaves, so that the JSON rows (cat) and the typed
 * batches (publish, the mirror, optimize) both read the wide values. */
#ifndef M2D_DELTA_WIDEN_H
#define M2D_DELTA_WIDEN_H

#include "columnar/column.h"
#include "parquet/schema.h"

#include <jansson.h>

typedef struct delta_widen delta_widen_t;

/* The plan for a file: node is the file's node of a table field (renamed to the table's
 * names), type the field's Delta type. Call for every field, then apply per row group.
 * Returns false (err set) only when out of memory. *plan starts NULL. */
bool delta_widen_plan_add(delta_widen_t **plan, pq_node_t *node, const json_t *type, m2d_error_t *err);

/* Before reading a row group: the file's leaves as the file declares them (the reader decodes
 * by them). NULL plan: nothing. */
void delta_widen_restore(delta_widen_t *plan);
/* After reading it: the widened leaves' columns converted, their leaves annotated as the
 * table's type. */
bool delta_widen_apply(delta_widen_t *plan, m2d_column_t *cols, m2d_error_t *err);

void delta_widen_free(delta_widen_t *plan);

#endif
