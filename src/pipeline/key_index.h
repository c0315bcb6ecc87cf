/* The key index of a mirror table: where each document lives, _id -> (data file, physical row),
 * so that sync finds the row an update or delete replaces without reading the table. It is
 * built from the table (its _id column), or read back from a cache file that the mirror checks
 * against the table (see pipeline/mirror.c): the table stays the only truth.
 *
 * Keys are _id values in a normalized binary form: numbers that MongoDB treats as equal
 * (int32 1, int64 1, double 1.0) share one key, strings and ObjectIds are their bytes, other
 * types their BSON type and value bytes. Integer keys sit in the table's 16-byte slots (20 to 30
 * bytes a document at its load of 0.53 to 0.8); other keys add their bytes plus one in an arena. */
#ifndef M2D_PIPELINE_KEY_INDEX_H
#define M2D_PIPELINE_KEY_INDEX_H

#include "core/buf.h"
#include "storage/io.h"

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
/* Sizes the table for n keys at once (no growth while they are put); false: out of memory. */
bool m2d_key_index_reserve(m2d_key_index_t *x, size_t n);
/* The bytes the index holds (slots, key arena, paths). */
size_t m2d_key_index_memory(const m2d_key_index_t *x);

/* The index as a cache file, with the table version it was saved at and a stamp (bytes that
 * describe what it indexes: the caller's). Load gives the index only when the stamp is the one
 * given (*version: the version it was saved at), else NULL with err saying why (another stamp,
 * not such a file, cut short, a checksum that does not match, out of memory). */
bool m2d_key_index_save(const m2d_key_index_t *x, m2d_sink_t *sink, int64_t version, const char *stamp, size_t stamp_len,
                        m2d_error_t *err);
m2d_key_index_t *m2d_key_index_load(m2d_source_t *src, const char *stamp, size_t stamp_len, int64_t *version,
                                    m2d_error_t *err);

#endif
