/* Table rows back to MongoDB documents (publish): the inverse of docs/type-mapping.md.
 * A row comes in the JSON form of docs/json-form.md (what delta/scan prints) with the table's
 * Delta schema; each value becomes the BSON type its column says: decimal -> Decimal128,
 * timestamp and date -> date, struct -> document, array -> array, map -> document,
 * binary -> binary, integer -> int32, long -> int64. Columns that came from MongoDB through
 * mongo2delta carry their BSON origin in the field metadata (mongo2delta.bsonType), so ObjectId,
 * UUID, Decimal128 (kept as a string), BSON timestamps and Extended JSON values come back as
 * themselves, and the values kept in _rescued_data go back to their paths with their own
 * types. Null columns are left out (a table does not tell a null from a missing field). */
#ifndef M2D_PIPELINE_ROW_BSON_H
#define M2D_PIPELINE_ROW_BSON_H

#include "core/error.h"

#include <bson/bson.h>
#include <jansson.h>

/* schema: the table's schema (the parsed schemaString, a struct). row: a JSON object. out is
 * initialized by the caller and appended to. */
bool m2d_row_to_bson(const json_t *schema, const json_t *row, bson_t *out, m2d_error_t *err);

/* The pieces of m2d_row_to_bson, shared with pipeline/columns_bson so that both give the same
 * document: the row's rescued values, a field's BSON origin at a nesting depth, one string
 * value by its origin, one JSON value by its Delta type, and the rescued values of fields the
 * schema has no column for at one level (fields: a struct's "fields" array). */
typedef struct {
  bson_t *rescued; /* the row's rescued values by path, or NULL; freed by the caller */
  m2d_error_t *err;
} m2d_rb_ctx_t;
bool m2d_rb_open_rescued(m2d_rb_ctx_t *c, const char *rescued_json); /* NULL: none */
const char *m2d_rb_origin(const json_t *meta, int depth);
bool m2d_rb_rescued_at(const m2d_rb_ctx_t *c, const char *path, bson_iter_t *it);
bool m2d_rb_append_string(m2d_rb_ctx_t *c, bson_t *out, const char *key, const char *orig, const char *s, size_t slen,
                          const char *path);
bool m2d_rb_append_json(m2d_rb_ctx_t *c, bson_t *out, const char *key, const json_t *type, const json_t *meta, int depth,
                        const json_t *v, const char *path);
bool m2d_rb_append_unknown_rescued(const m2d_rb_ctx_t *c, bson_t *out, const json_t *fields, const char *path);

#endif
