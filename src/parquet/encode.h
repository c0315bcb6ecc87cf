/* Parquet value and level encodings, the writing side (Encodings.md):
 *   RLE/bit-packed hybrid (levels, dictionary indices), PLAIN, dictionary building. */
#ifndef M2D_PARQUET_ENCODE_H
#define M2D_PARQUET_ENCODE_H

#include "columnar/column.h"
#include "core/buf.h"

#include <stdint.h>

/* Bits needed for values 0..max. */
int pq_bit_width(uint32_t max);

/* Appends the RLE/bit-packed hybrid encoding of n values of the given bit width (no length
 * prefix). Values are uint32 or int16 (levels). */
bool pq_rle_encode_u32(const uint32_t *v, size_t n, int bit_width, m2d_buf_t *out, m2d_error_t *err);
bool pq_rle_encode_i16(const int16_t *v, size_t n, int bit_width, m2d_buf_t *out, m2d_error_t *err);

/* Appends PLAIN values i..j of a column (non-null values, in column order). */
bool pq_plain_encode(const m2d_column_t *c, size_t from, size_t to, m2d_buf_t *out, m2d_error_t *err);

/* A dictionary of distinct values of one column chunk: value -> index, with the PLAIN bytes
 * of the dictionary page kept as values are added. */
typedef struct pq_dict pq_dict_t;
pq_dict_t *pq_dict_new(m2d_col_type_t type, int32_t fixed_len);
void pq_dict_destroy(pq_dict_t *d);
void pq_dict_clear(pq_dict_t *d);
/* Index of the value (adding it when new). */
bool pq_dict_index(pq_dict_t *d, const uint8_t *value, size_t len, uint32_t *index, m2d_error_t *err);
/* Indices of values [from, to) of column c (of the dictionary's type) into out. */
bool pq_dict_index_values(pq_dict_t *d, const m2d_column_t *c, size_t from, size_t to, uint32_t *out,
                          m2d_error_t *err);
uint32_t pq_dict_count(const pq_dict_t *d);
/* Entry idx of the dictionary (its value bytes). */
const uint8_t *pq_dict_entry(const pq_dict_t *d, uint32_t idx, size_t *len);
/* PLAIN bytes of the dictionary page so far. */
const m2d_buf_t *pq_dict_plain(const pq_dict_t *d);

#endif
