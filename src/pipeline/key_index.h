/* The key index of a mirror table: where each document lives, _id -> (data file, physical row),
 * so that sync finds the row an update or delete replaces without reading the table. It is
 * memory only and always rebuilt from the table (its _id column) when sync starts.
 *
 * Keys are _id values in a normalized binary form: numbers that MongoDB treats as equal
 * (int32 1, int64 1, double 1.0) share one key, strings and ObjectIds are their bytes, other
 * types their BSON type and value bytes. About 40 bytes per document plus the key bytes. */
#ifndef M2D_PIPELINE_KEY_INDEX_H
#define M2D_PIPELINE_KEY_INDEX_H

#include "core/buf.h"

#include <bson/bson.h>
#include <stdint.h>

typedef struct m2d_key_index m2d_key_index_t;

/* The normalized key of the _id value at it, appended to out (reset first). */
bool m2d_key_index_key(const bson_iter_t *id, m2d_buf_t *out, m2d_error_t *err);
/* The same for a document's "_id" field; false when it has none. */
bool m2d_key_index_doc_key(const bson_t *doc, m2d_buf_t *out, m2d_error_t *err);

m2d_key_index_t *m2d_key_index_new(void);
void m2d_key_index_free(m2d_key_index_t *x); /* accepts NULL */

/* Files are numbered: the number of path (given one the first time it is seen). */
int32_t m2d_key_index_file(m2d_key_index_t *x, const char *path);
const char *m2d_key_index_file_path(const m2d_key_index_t *x, int32_t file);

bool m2d_key_index_put(m2d_key_index_t *x, const m2d_buf_t *key, int32_t file, uint64_t row);
bool m2d_key_index_get(const m2d_key_index_t *x, const m2d_buf_t *key, int32_t *file, uint64_t *row);
/* Forgets key; false when it was not there. */
bool m2d_key_index_remove(m2d_key_index_t *x, const m2d_buf_t *key);
size_t m2d_key_index_count(const m2d_key_index_t *x);

#endif
