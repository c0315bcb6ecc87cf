/* Rows in the JSON form of docs/json-form.md, shredded into the column vectors of a Parquet
 * schema (for `mongo2delta parquet write`). Each row is one JSON object; a value that does not
 * match its column is an error naming the field path, and the row leaves nothing behind. */
#ifndef M2D_PARQUET_JSON_INPUT_H
#define M2D_PARQUET_JSON_INPUT_H

#include "columnar/column.h"
#include "parquet/schema.h"

typedef struct pq_json_input pq_json_input_t;

/* schema is borrowed. */
pq_json_input_t *pq_json_input_new(const pq_schema_t *schema, m2d_error_t *err);
void pq_json_input_destroy(pq_json_input_t *in);

/* Adds one row from a JSON text of len bytes. */
bool pq_json_input_add(pq_json_input_t *in, const char *json, size_t len, m2d_error_t *err);

m2d_column_t *pq_json_input_columns(pq_json_input_t *in); /* one per leaf, owned */
size_t pq_json_input_rows(const pq_json_input_t *in);
size_t pq_json_input_memory(const pq_json_input_t *in);
void pq_json_input_reset(pq_json_input_t *in);

/* Parsers for the JSON form, shared with tests: */
bool m2d_parse_date(const char *s, int32_t *days);
bool m2d_parse_timestamp(const char *s, bool utc, int64_t *micros);
bool m2d_parse_decimal(const char *s, int precision, int scale, __int128 *unscaled);
/* Decodes base64 into out (cap bytes); returns the length or -1. */
long m2d_base64_decode(const char *s, size_t len, uint8_t *out, size_t cap);

#endif
