/* Learning a table's Delta schema from BSON documents (design.md "BSON -> Delta types").
 * Every document is observed (not a sample); the schema only grows or widens:
 *   new fields are added, int32 widens to int64, integers widen to double, decimals widen
 *   while they fit decimal(38); a struct with more distinct keys than max_struct_fields
 *   becomes map<string, T>.
 * A value that fits nothing established is a conflict: it is counted here and, when the
 * document is shredded, kept in the _rescued_data column as Extended JSON. */
#ifndef M2D_SCHEMA_INFER_H
#define M2D_SCHEMA_INFER_H

#include "schema/dtype.h"

#include <bson/bson.h>

typedef struct {
  int max_struct_fields; /* default 256 */
  int max_depth;         /* default 100 (BSON's own limit) */
} m2d_infer_options_t;

typedef struct m2d_infer m2d_infer_t;

m2d_infer_t *m2d_infer_new(const m2d_infer_options_t *opts /* NULL: defaults */);
void m2d_infer_destroy(m2d_infer_t *inf);

/* Folds one document into the schema. Returns false only on an internal limit (memory,
 * depth); conflicts are not errors. */
bool m2d_infer_observe(m2d_infer_t *inf, const bson_t *doc, m2d_error_t *err);

/* The schema learned so far (a struct, fields in first-seen order with _id first). */
const m2d_dtype_t *m2d_infer_schema(const m2d_infer_t *inf);
/* Values seen that did not fit their column's type. */
int64_t m2d_infer_conflicts(const m2d_infer_t *inf);
int64_t m2d_infer_documents(const m2d_infer_t *inf);

/* The type a single BSON value maps to on its own (documents and arrays recursively).
 * Caller frees. Decimal128 values get the smallest decimal(p,s) holding them, or string when
 * p would exceed 38 or the value is NaN/Infinity. */
m2d_dtype_t *m2d_infer_value_type(const bson_iter_t *it, const m2d_infer_options_t *opts, m2d_error_t *err);

/* Merges observed into *established following the rules above. Returns true when observed
 * fits (possibly after widening *established), false on a conflict (*established unchanged).
 * Takes ownership of observed. */
bool m2d_infer_merge(m2d_dtype_t **established, m2d_dtype_t *observed, const m2d_infer_options_t *opts,
                     int64_t *conflicts);

/* Schema evolution of an existing table: adds to table the fields observed has and it lacks
 * (new top-level columns, new fields of nested structs, also inside arrays and map values),
 * in observed's order after the existing ones. Existing types never change (a value that no
 * longer fits goes to the rescue column). *changed tells whether anything was added. */
bool m2d_infer_evolve(m2d_dtype_t *table, const m2d_dtype_t *observed, bool *changed, m2d_error_t *err);

#endif
