/* The BSON shredder: documents straight into column vectors (Parquet's Dremel levels), for a
 * table schema learned by schema/infer. No intermediate JSON, no per-value allocation.
 *
 * Layout: the leaves of the schema depth-first, exactly as the Parquet schema made from the
 * same Delta schemaString (every field nullable): a struct adds one definition level, an array
 * three nodes (optional group, repeated "list", optional "element"), a map likewise
 * (optional group, repeated "key_value", required "key", optional "value"). A value that
 * does not fit its column is not dropped: it is written as null there and kept, with its
 * field path, in the `_rescued_data` column (the last leaf, a string holding a canonical
 * Extended JSON document {"path": value, ...}). */
#ifndef M2D_COLUMNAR_SHRED_H
#define M2D_COLUMNAR_SHRED_H

#include "columnar/column.h"
#include "schema/dtype.h"

#include <bson/bson.h>

typedef struct m2d_shredder m2d_shredder_t;

/* schema: a top-level struct (borrowed; must outlive the shredder and not change). When
 * rescue_column is true the layout ends with a `_rescued_data` string leaf. */
m2d_shredder_t *m2d_shredder_new(const m2d_dtype_t *schema, bool rescue_column, size_t max_batch_bytes,
                                 m2d_error_t *err);
void m2d_shredder_destroy(m2d_shredder_t *s);

/* Leaves the top-level field name out of the rows (not rescued either): its value is kept
 * by the caller, e.g. in a partition directory. */
bool m2d_shredder_skip_field(m2d_shredder_t *s, const char *name, m2d_error_t *err);

/* The values the last m2d_shredder_add rescued, keyed by field path (valid until the next add). */
const bson_t *m2d_shredder_row_rescued(const m2d_shredder_t *s);

/* Number of leaf columns and the columns themselves (owned by the shredder). */
int m2d_shredder_ncolumns(const m2d_shredder_t *s);
m2d_column_t *m2d_shredder_columns(m2d_shredder_t *s);
/* Rows shredded since the last reset. */
size_t m2d_shredder_rows(const m2d_shredder_t *s);
/* Memory held by the columns, to cut batches by size. */
size_t m2d_shredder_memory(const m2d_shredder_t *s);
/* Bytes of the rows shredded since the last reset (the memory held stays after a reset). */
size_t m2d_shredder_bytes(const m2d_shredder_t *s);
/* Empties the columns (after they were written), keeping their storage. */
void m2d_shredder_reset(m2d_shredder_t *s);

/* Documents handed to m2d_shredder_add were validated (bson_validate) by the caller: they are
 * not checked again. */
void m2d_shredder_set_validated(m2d_shredder_t *s, bool validated);
/* Appends one document as one row. Values that do not fit are rescued; *rescued (may be
 * NULL) is increased by their number. Fails on invalid BSON or a size limit. */
bool m2d_shredder_add(m2d_shredder_t *s, const bson_t *doc, int64_t *rescued, m2d_error_t *err);

#endif
