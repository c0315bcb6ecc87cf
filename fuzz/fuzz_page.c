/* libFuzzer: the page decoders. Byte 0 picks the encoding, byte 1 the value type, byte 2 the
 * level bit width; the rest is page data. */
#include "columnar/column.h"
#include "parquet/decode.h"

#include <stdint.h>
#include <stddef.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 4) return 0;
  static const pq_encoding_t encs[] = {PQ_ENC_PLAIN, PQ_ENC_RLE_DICTIONARY, PQ_ENC_RLE, PQ_ENC_DELTA_BINARY_PACKED,
                                       PQ_ENC_DELTA_LENGTH_BYTE_ARRAY, PQ_ENC_DELTA_BYTE_ARRAY, PQ_ENC_BYTE_STREAM_SPLIT,
                                       PQ_ENC_PLAIN_DICTIONARY};
  static const m2d_col_type_t types[] = {M2D_COL_BOOL, M2D_COL_INT32, M2D_COL_INT64, M2D_COL_INT96,
                                         M2D_COL_FLOAT, M2D_COL_DOUBLE, M2D_COL_BYTES, M2D_COL_FIXED};
  pq_encoding_t enc = encs[data[0] % 8];
  m2d_col_type_t type = types[data[1] % 8];
  int bw = data[2] % 17;
  size_t count = data[3];
  const uint8_t *p = data + 4;
  size_t n = size - 4;
  m2d_error_t err;

  int16_t levels[256];
  (void)pq_rle_decode_levels(p, n, bw, count, levels, &err);
  (void)pq_bitpacked_decode_levels(p, n, bw, count, levels, &err);

  m2d_column_t dict, out;
  m2d_column_init(&dict, type, 5, 0, 0, 1 << 24);
  m2d_column_init(&out, type, 5, 0, 0, 1 << 24);
  /* a small dictionary from the first bytes, then the page */
  size_t half = n / 2;
  (void)pq_decode_values(PQ_ENC_PLAIN, NULL, p, half, count % 16, &dict, &err);
  (void)pq_decode_values(enc, &dict, p + half, n - half, count * 4, &out, &err);
  m2d_column_free(&dict);
  m2d_column_free(&out);
  return 0;
}
