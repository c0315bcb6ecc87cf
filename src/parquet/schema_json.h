/* A table schema in the Spark / Delta StructType JSON form (the Delta `schemaString`, see
 * PROTOCOL.md "Schema Serialization Format") as a Parquet schema:
 *   nullable -> OPTIONAL, else REQUIRED; byte/short -> INT32 INTEGER(8/16); integer -> INT32;
 *   long -> INT64; float, double, boolean; string -> BYTE_ARRAY STRING; binary -> BYTE_ARRAY;
 *   date -> INT32 DATE; timestamp -> INT64 TIMESTAMP(UTC, MICROS); timestamp_ntz -> INT64
 *   TIMESTAMP(local, MICROS); decimal(p,s) -> INT32 (p <= 9), INT64 (p <= 18), else
 *   FIXED_LEN_BYTE_ARRAY of the minimal length; struct -> group; array -> 3-level LIST
 *   (list/element); map -> MAP (key_value/key/value).
 * Field metadata "delta.columnMapping.physicalName" names the Parquet column, and
 * "delta.columnMapping.id" (or "parquet.field.id") sets its field_id. */
#ifndef M2D_PARQUET_SCHEMA_JSON_H
#define M2D_PARQUET_SCHEMA_JSON_H

#include "parquet/schema.h"

bool pq_schema_from_json(const char *json, pq_schema_t *out, m2d_error_t *err);

#endif
