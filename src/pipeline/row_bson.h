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

#endif
