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

/* Z85 (the base85 alphabet Delta uses); returns the decoded length or -1. */
long delta_z85_decode(const char *in, size_t len, uint8_t *out, size_t cap);

#endif
