/* Column vectors in Parquet's shredded form, shared by the Parquet writer, the Parquet reader
 * and the BSON shredder. One m2d_column_t holds one leaf column of a batch of rows:
 *   - levels: one (definition, repetition) pair per slot, as Parquet defines them (Dremel);
 *     def is NULL when max_def == 0, rep is NULL when max_rep == 0;
 *   - values: only the non-null leaf values (slots whose def == max_def), densely packed:
 *       BOOL 1 byte (0/1) each, INT32 4, INT64 8, INT96 12, FLOAT 4, DOUBLE 8, FIXED fixed_len
 *       bytes, little-endian as in memory on this machine;
 *       BYTES: value i is values[offsets[i] .. offsets[i+1]), offsets has nvalues + 1 entries.
 * Growth is amortized (no per-value allocation) and bounded by max_bytes. */
#ifndef M2D_COLUMNAR_COLUMN_H
#define M2D_COLUMNAR_COLUMN_H

#include "core/error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
  M2D_COL_BOOL, M2D_COL_INT32, M2D_COL_INT64, M2D_COL_INT96, M2D_COL_FLOAT, M2D_COL_DOUBLE,
  M2D_COL_BYTES, M2D_COL_FIXED
} m2d_col_type_t;

typedef struct {
  m2d_col_type_t type;
  int32_t fixed_len; /* FIXED only */
  int16_t max_def, max_rep;

  size_t nlevels;
  int16_t *def, *rep;
  size_t level_cap;

  size_t nvalues;
  uint8_t *values;
  size_t value_bytes, value_cap;
  uint32_t *offsets; /* BYTES only */
  size_t offset_cap;

  size_t max_bytes; /* cap on level + value + offset memory together */
} m2d_column_t;

/* Width in bytes of one value of a fixed-width type; 0 for BYTES. */
size_t m2d_col_type_width(m2d_col_type_t type, int32_t fixed_len);

/* Prepares an empty column; no allocation yet. max_bytes 0 means 1 GiB. */
void m2d_column_init(m2d_column_t *c, m2d_col_type_t type, int32_t fixed_len, int16_t max_def,
                     int16_t max_rep, size_t max_bytes);
/* Empties the column, keeping its storage for the next batch. */
void m2d_column_reset(m2d_column_t *c);
/* Frees the storage; accepts NULL. */
void m2d_column_free(m2d_column_t *c);

/* Appends one slot's levels (def/rep ignored when the max is 0). */
bool m2d_column_push_level_slow(m2d_column_t *c, int16_t def, int16_t rep, m2d_error_t *err);
static inline bool m2d_column_push_level(m2d_column_t *c, int16_t def, int16_t rep, m2d_error_t *err) {
  if (c->nlevels < c->level_cap) { /* the hot path: room already there */
    if (c->max_def > 0) c->def[c->nlevels] = def;
    if (c->max_rep > 0) c->rep[c->nlevels] = rep;
    c->nlevels++;
    return true;
  }
  return m2d_column_push_level_slow(c, def, rep, err);
}
/* Appends one non-null value. The fixed-width form copies width bytes from p. */
bool m2d_column_push_fixed(m2d_column_t *c, const void *p, m2d_error_t *err);
bool m2d_column_push_bytes(m2d_column_t *c, const void *p, size_t len, m2d_error_t *err);
/* Appends n fixed-width values stored contiguously at p (bulk form of push_fixed). */
bool m2d_column_push_fixed_n(m2d_column_t *c, const void *p, size_t n, m2d_error_t *err);
/* Typed conveniences over push_fixed. */
bool m2d_column_push_bool(m2d_column_t *c, bool v, m2d_error_t *err);
bool m2d_column_push_i32(m2d_column_t *c, int32_t v, m2d_error_t *err);
bool m2d_column_push_i64(m2d_column_t *c, int64_t v, m2d_error_t *err);
bool m2d_column_push_f32(m2d_column_t *c, float v, m2d_error_t *err);
bool m2d_column_push_f64(m2d_column_t *c, double v, m2d_error_t *err);

/* Value i of a fixed-width column, and of a BYTES column. */
const uint8_t *m2d_column_fixed_at(const m2d_column_t *c, size_t i);
const uint8_t *m2d_column_bytes_at(const m2d_column_t *c, size_t i, size_t *len);

/* Bytes of memory in use, for bounding row groups. */
size_t m2d_column_memory(const m2d_column_t *c);

/* Minimal FIXED_LEN_BYTE_ARRAY length of a decimal of this precision (used above 18). */
int32_t m2d_decimal_fixed_len(int precision);

/* Number of top-level rows: slots with rep == 0 (all slots when max_rep == 0). */
size_t m2d_column_rows(const m2d_column_t *c);

#endif
