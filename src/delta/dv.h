/* Deletion vectors (PROTOCOL.md "Deletion Vectors"): the rows of a data file that are
 * deleted, as a 64-bit Roaring bitmap stored inline (base85) or in a deletion_vector_*.bin
 * file, read with CRoaring. */
#ifndef M2D_DELTA_DV_H
#define M2D_DELTA_DV_H

#include "storage/store.h"

#include <jansson.h>
#include <stdint.h>

typedef struct delta_dv delta_dv_t;

/* Loads the deletion vector described by descriptor (the add action's "deletionVector"). */
delta_dv_t *delta_dv_load(m2d_store_t *store, const json_t *descriptor, m2d_error_t *err);
bool delta_dv_contains(const delta_dv_t *dv, uint64_t row);
uint64_t delta_dv_cardinality(const delta_dv_t *dv);
void delta_dv_free(delta_dv_t *dv);

/* The key in the table's store of the file holding a deletion vector of storage type 'u' (a
 * path relative to the table: deletion_vector_<uuid>.bin after the optional random prefix),
 * written to out; false for inline vectors ('i'), absolute paths ('p') and bad descriptors. */
bool delta_dv_descriptor_key(const json_t *descriptor, char *out, size_t n);

/* Z85 (the base85 alphabet Delta uses); returns the decoded length or -1. */
long delta_z85_decode(const char *in, size_t len, uint8_t *out, size_t cap);
/* Z85 of len bytes (a multiple of 4) into out (5/4 len + 1 bytes, NUL-terminated). */
void delta_z85_encode(const uint8_t *in, size_t len, char *out);

/* --- writing --------------------------------------------------------------------------- */

/* An empty deletion vector to add rows to. */
delta_dv_t *delta_dv_new(void);
bool delta_dv_add(delta_dv_t *dv, uint64_t row);
/* dst |= src */
bool delta_dv_or(delta_dv_t *dst, const delta_dv_t *src);
/* The serialized form: the magic number, then the RoaringBitmapArray (portable format). */
bool delta_dv_serialize(delta_dv_t *dv, m2d_buf_t *out, m2d_error_t *err);

/* A deletion_vector_<uuid>.bin file at the table's root holding several deletion vectors
 * (one per data file of a commit): format version 1, then per vector its size (big-endian),
 * its bytes and their CRC-32. Written when finished; the descriptors it hands out name it
 * (storage type "u", no prefix). */
typedef struct delta_dv_file delta_dv_file_t;
delta_dv_file_t *delta_dv_file_new(void);
/* Appends dv and returns its add.deletionVector descriptor (owned by the caller). */
json_t *delta_dv_file_put(delta_dv_file_t *f, delta_dv_t *dv, m2d_error_t *err);
/* Writes the file (nothing when no vector was put). */
bool delta_dv_file_finish(delta_dv_file_t *f, m2d_store_t *store, m2d_error_t *err);
/* The file's key in the table (for cleaning up after a failed commit). */
const char *delta_dv_file_key(const delta_dv_file_t *f);
void delta_dv_file_free(delta_dv_file_t *f);

#endif
