/* Parquet value and level encodings, the reading side (Encodings.md), over untrusted bytes.
 * Every count is checked against the bytes that hold it; nothing is allocated from a count
 * the input claims without that check. */
#ifndef M2D_PARQUET_DECODE_H
#define M2D_PARQUET_DECODE_H

#include "columnar/column.h"
#include "parquet/format.h"

/* Decodes n levels (RLE/bit-packed hybrid, no length prefix) from p..p+len into out. */
bool pq_rle_decode_levels(const uint8_t *p, size_t len, int bit_width, size_t n, int16_t *out, m2d_error_t *err);
/* Legacy BIT_PACKED levels (most significant bit first). */
bool pq_bitpacked_decode_levels(const uint8_t *p, size_t len, int bit_width, size_t n, int16_t *out,
                                m2d_error_t *err);

/* Appends count values of column type out->type, encoded with enc, from p..p+len.
 * dict: the decoded dictionary for PLAIN_DICTIONARY / RLE_DICTIONARY (else NULL). */
bool pq_decode_values(pq_encoding_t enc, const m2d_column_t *dict, const uint8_t *p, size_t len, size_t count,
                      m2d_column_t *out, m2d_error_t *err);

const char *pq_encoding_name(pq_encoding_t enc);

#endif
