#include "parquet/decode.h"

#include "core/buf.h"

#include <stdlib.h>
#include <string.h>

const char *pq_encoding_name(pq_encoding_t enc) {
  switch (enc) {
  case PQ_ENC_PLAIN: return "PLAIN";
  case PQ_ENC_PLAIN_DICTIONARY: return "PLAIN_DICTIONARY";
  case PQ_ENC_RLE: return "RLE";
  case PQ_ENC_BIT_PACKED: return "BIT_PACKED";
  case PQ_ENC_DELTA_BINARY_PACKED: return "DELTA_BINARY_PACKED";
  case PQ_ENC_DELTA_LENGTH_BYTE_ARRAY: return "DELTA_LENGTH_BYTE_ARRAY";
  case PQ_ENC_DELTA_BYTE_ARRAY: return "DELTA_BYTE_ARRAY";
  case PQ_ENC_RLE_DICTIONARY: return "RLE_DICTIONARY";
  case PQ_ENC_BYTE_STREAM_SPLIT: return "BYTE_STREAM_SPLIT";
  }
  return "unknown";
}

static bool corrupt(m2d_error_t *err, const char *what) {
  return m2d_error_set(err, M2D_ERR_FORMAT, 0, "corrupt page data: %s", what);
}

typedef struct {
  const uint8_t *p, *end;
} cur_t;

static bool uvarint(cur_t *c, uint64_t *v) { return m2d_varint_read(&c->p, c->end, v) == 1; }

static bool zvarint(cur_t *c, int64_t *v) {
  uint64_t u;
  if (!uvarint(c, &u)) return false;
  *v = (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
  return true;
}

/* --- RLE / bit-packed hybrid --------------------------------------------------------------- */

/* Decodes n values into out (uint32) via a callback-free loop; T is the output type. */
#define RLE_DECODE(NAME, T)                                                                        \
  static bool NAME(const uint8_t *p, size_t len, int bw, size_t n, T *out, m2d_error_t *err) {    \
    if (bw < 0 || bw > 32) return corrupt(err, "bit width over 32");                              \
    cur_t c = {p, p + len};                                                                       \
    size_t o = 0;                                                                                 \
    size_t vbytes = (size_t)(bw + 7) / 8;                                                         \
    uint64_t mask = bw == 64 ? ~0ULL : ((1ULL << bw) - 1);                                        \
    while (o < n) {                                                                               \
      uint64_t h;                                                                                 \
      if (!uvarint(&c, &h)) return corrupt(err, "levels or indices end early");                   \
      if (h & 1) { /* bit-packed: (h >> 1) groups of 8 */                                         \
        uint64_t groups = h >> 1;                                                                 \
        if (groups == 0 || groups > (uint64_t)(c.end - c.p) / (bw ? (uint64_t)bw : 1) + 1)         \
          return corrupt(err, "bit-packed run longer than its page");                             \
        size_t nbytes = (size_t)groups * (size_t)bw;                                              \
        if (nbytes > (size_t)(c.end - c.p)) return corrupt(err, "bit-packed run past the page");  \
        size_t count = (size_t)groups * 8;                                                        \
        uint64_t acc = 0;                                                                         \
        int bits = 0;                                                                             \
        const uint8_t *q = c.p;                                                                   \
        for (size_t k = 0; k < count; k++) {                                                      \
          while (bits < bw) {                                                                     \
            acc |= (uint64_t)(*q++) << bits;                                                      \
            bits += 8;                                                                            \
          }                                                                                       \
          if (o < n) out[o++] = (T)(acc & mask);                                                  \
          acc >>= bw;                                                                             \
          bits -= bw;                                                                             \
        }                                                                                         \
        c.p += nbytes;                                                                            \
      } else {                                                                                    \
        uint64_t run = h >> 1;                                                                    \
        if (vbytes > (size_t)(c.end - c.p)) return corrupt(err, "RLE run value past the page");   \
        uint32_t v = 0;                                                                           \
        for (size_t k = 0; k < vbytes; k++) v |= (uint32_t)c.p[k] << (8 * k);                     \
        c.p += vbytes;                                                                            \
        if (run == 0) continue;                                                                   \
        if (run > n - o) run = n - o; /* trailing values past n are padding */                    \
        for (uint64_t k = 0; k < run; k++) out[o++] = (T)v;                                       \
      }                                                                                           \
    }                                                                                             \
    return true;                                                                                  \
  }

/* How many values the runs of an RLE / bit-packed hybrid hold, counting up to limit. */
static size_t rle_values(const uint8_t *p, size_t len, int bw, size_t limit) {
  cur_t c = {p, p + len};
  size_t vbytes = (size_t)(bw + 7) / 8, total = 0;
  while (total < limit && c.p < c.end) {
    uint64_t h;
    if (!uvarint(&c, &h)) break;
    if (h & 1) {
      uint64_t groups = h >> 1;
      if (bw && groups > (uint64_t)(c.end - c.p) / (uint64_t)bw) break; /* past the page: the decoder says so */
      total += groups > limit / 8 ? limit : (size_t)groups * 8;
      c.p += (size_t)groups * (size_t)bw; /* width 0: the values take no bytes */
    } else {
      if (vbytes > (size_t)(c.end - c.p)) break;
      c.p += vbytes;
      uint64_t run = h >> 1;
      total += run > limit ? limit : (size_t)run;
    }
  }
  return total;
}

RLE_DECODE(rle_i16, int16_t)
RLE_DECODE(rle_u32, uint32_t)

bool pq_rle_decode_levels(const uint8_t *p, size_t len, int bw, size_t n, int16_t *out, m2d_error_t *err) {
  if (bw > 16) return corrupt(err, "level bit width over 16");
  return rle_i16(p, len, bw, n, out, err);
}

bool pq_bitpacked_decode_levels(const uint8_t *p, size_t len, int bw, size_t n, int16_t *out, m2d_error_t *err) {
  if (bw > 16) return corrupt(err, "level bit width over 16");
  if (((uint64_t)n * (uint64_t)bw + 7) / 8 > len) return corrupt(err, "BIT_PACKED levels past the page");
  uint64_t bit = 0;
  for (size_t i = 0; i < n; i++) {
    uint32_t v = 0;
    for (int b = 0; b < bw; b++, bit++) v = v << 1 | ((p[bit / 8] >> (7 - bit % 8)) & 1);
    out[i] = (int16_t)v;
  }
  return true;
}

/* --- PLAIN ------------------------------------------------------------------------------- */

static bool plain(const uint8_t *p, size_t len, size_t count, m2d_column_t *out, m2d_error_t *err) {
  switch (out->type) {
  case M2D_COL_BOOL: {
    if ((count + 7) / 8 > len) return corrupt(err, "PLAIN booleans past the page");
    for (size_t i = 0; i < count; i++)
      if (!m2d_column_push_bool(out, (p[i / 8] >> (i % 8)) & 1, err)) return false;
    return true;
  }
  case M2D_COL_BYTES: {
    cur_t c = {p, p + len};
    for (size_t i = 0; i < count; i++) {
      if (c.end - c.p < 4) return corrupt(err, "PLAIN byte array length past the page");
      uint32_t n;
      memcpy(&n, c.p, 4);
      c.p += 4;
      if (n > (size_t)(c.end - c.p)) return corrupt(err, "PLAIN byte array past the page");
      if (!m2d_column_push_bytes(out, c.p, n, err)) return false;
      c.p += n;
    }
    return true;
  }
  default: {
    size_t w = m2d_col_type_width(out->type, out->fixed_len);
    if (w == 0) return corrupt(err, "fixed length of 0");
    if (count > len / w) return corrupt(err, "PLAIN values past the page");
    return m2d_column_push_fixed_n(out, p, count, err);
  }
  }
}

/* --- dictionary -------------------------------------------------------------------------- */

static bool dictionary(const m2d_column_t *dict, const uint8_t *p, size_t len, size_t count, m2d_column_t *out,
                       m2d_error_t *err) {
  if (!dict) return corrupt(err, "dictionary-encoded page without a dictionary page");
  if (count == 0) return true;
  if (len < 1) return corrupt(err, "dictionary indices missing");
  int bw = p[0];
  if (bw > 32) return corrupt(err, "dictionary index bit width over 32");
  /* the runs must hold count indices before the buffer is sized by it (an RLE run of a few
   * bytes holds millions: no bound from the bytes alone) */
  if (rle_values(p + 1, len - 1, bw, count) < count) return corrupt(err, "more dictionary indices than the page holds");
  uint32_t *idx = malloc(count * sizeof *idx);
  if (!idx) return m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory decoding indices");
  bool ok = rle_u32(p + 1, len - 1, bw, count, idx, err);
  size_t w = m2d_col_type_width(out->type, out->fixed_len);
  for (size_t i = 0; ok && i < count; i++) {
    if (idx[i] >= dict->nvalues) {
      ok = m2d_error_set(err, M2D_ERR_FORMAT, 0, "corrupt page data: dictionary index %u out of range (dictionary has %zu entries)",
                         idx[i], dict->nvalues);
      break;
    }
    if (out->type == M2D_COL_BYTES) {
      size_t n;
      const uint8_t *v = m2d_column_bytes_at(dict, idx[i], &n);
      ok = m2d_column_push_bytes(out, v, n, err);
    } else {
      ok = m2d_column_push_fixed(out, dict->values + (size_t)idx[i] * w, err);
    }
  }
  free(idx);
  return ok;
}

/* --- DELTA_BINARY_PACKED ----------------------------------------------------------------- */

/* Decodes count values (as uint64 with wrapping arithmetic) and returns where the data ends. */
static bool delta_binary(cur_t *c, size_t count, bool is64, uint64_t *out, size_t *decoded, m2d_error_t *err) {
  uint64_t block, minis, total;
  int64_t first;
  if (!uvarint(c, &block) || !uvarint(c, &minis) || !uvarint(c, &total) || !zvarint(c, &first))
    return corrupt(err, "DELTA_BINARY_PACKED header truncated");
  if (block == 0 || block % 128 || minis == 0 || block % minis || (block / minis) % 32 || block > (1 << 20))
    return corrupt(err, "DELTA_BINARY_PACKED block sizes invalid");
  uint64_t per_mini = block / minis;
  size_t n = total < count ? (size_t)total : count;
  size_t o = 0;
  uint64_t last = (uint64_t)first;
  if (n > 0) out[o++] = last;
  while (o < total && o < n) {
    int64_t min_delta;
    if (!zvarint(c, &min_delta)) return corrupt(err, "DELTA_BINARY_PACKED block truncated");
    if ((uint64_t)(c->end - c->p) < minis) return corrupt(err, "DELTA_BINARY_PACKED bit widths truncated");
    const uint8_t *widths = c->p;
    c->p += minis;
    for (uint64_t m = 0; m < minis && o < n; m++) {
      int bw = widths[m];
      if (bw > (is64 ? 64 : 32)) return corrupt(err, "DELTA_BINARY_PACKED bit width too large");
      size_t nbytes = (size_t)(per_mini * (uint64_t)bw / 8);
      if (nbytes > (size_t)(c->end - c->p)) {
        /* the last miniblocks may be absent when the values end */
        return corrupt(err, "DELTA_BINARY_PACKED miniblock truncated");
      }
      uint64_t bitpos = 0;
      for (uint64_t k = 0; k < per_mini && o < n; k++) {
        uint64_t v = 0;
        for (int b = 0; b < bw;) {
          uint64_t byte = bitpos / 8;
          int off = (int)(bitpos % 8);
          int take = 8 - off < bw - b ? 8 - off : bw - b;
          v |= (uint64_t)((c->p[byte] >> off) & ((1u << take) - 1)) << b;
          b += take;
          bitpos += (uint64_t)take;
        }
        last = last + (uint64_t)min_delta + v;
        if (!is64) last = (uint64_t)(uint32_t)last;
        out[o++] = last;
      }
      c->p += nbytes;
    }
  }
  *decoded = o;
  return true;
}

static bool delta_ints(const uint8_t *p, size_t len, size_t count, m2d_column_t *out, m2d_error_t *err) {
  if (count > len * 64 + 1) return corrupt(err, "more values than a DELTA_BINARY_PACKED page can hold");
  uint64_t *v = malloc((count ? count : 1) * sizeof *v);
  if (!v) return m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory");
  cur_t c = {p, p + len};
  size_t n = 0;
  bool ok = delta_binary(&c, count, out->type == M2D_COL_INT64, v, &n, err);
  if (ok && n < count) ok = corrupt(err, "DELTA_BINARY_PACKED holds fewer values than the page says");
  for (size_t i = 0; ok && i < count; i++)
    ok = out->type == M2D_COL_INT64 ? m2d_column_push_i64(out, (int64_t)v[i], err) : m2d_column_push_i32(out, (int32_t)(uint32_t)v[i], err);
  free(v);
  return ok;
}

static bool delta_length_bytes(cur_t *c, size_t count, m2d_column_t *out, const uint8_t *prefix_src,
                               const uint64_t *prefix, m2d_error_t *err);

static bool lengths(cur_t *c, size_t count, uint64_t **out, m2d_error_t *err) {
  if (count > (size_t)(c->end - c->p) * 64 + 1) return corrupt(err, "more lengths than the page can hold");
  *out = malloc((count ? count : 1) * sizeof **out);
  if (!*out) return m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory");
  size_t n = 0;
  if (!delta_binary(c, count, false, *out, &n, err)) return false;
  if (n < count) return corrupt(err, "fewer lengths than values");
  return true;
}

static bool delta_length_bytes(cur_t *c, size_t count, m2d_column_t *out, const uint8_t *unused,
                               const uint64_t *unused2, m2d_error_t *err) {
  (void)unused;
  (void)unused2;
  uint64_t *len = NULL;
  bool ok = lengths(c, count, &len, err);
  for (size_t i = 0; ok && i < count; i++) {
    int32_t l = (int32_t)(uint32_t)len[i];
    if (l < 0 || (size_t)l > (size_t)(c->end - c->p)) {
      ok = corrupt(err, "DELTA_LENGTH_BYTE_ARRAY value past the page");
      break;
    }
    ok = m2d_column_push_bytes(out, c->p, (size_t)l, err);
    c->p += l;
  }
  free(len);
  return ok;
}

static bool delta_byte_array(const uint8_t *p, size_t len, size_t count, m2d_column_t *out, m2d_error_t *err) {
  cur_t c = {p, p + len};
  uint64_t *pre = NULL, *suf = NULL;
  uint8_t *prev = NULL;
  size_t prev_len = 0, prev_cap = 0;
  bool ok = lengths(&c, count, &pre, err) && lengths(&c, count, &suf, err);
  for (size_t i = 0; ok && i < count; i++) {
    int32_t pl = (int32_t)(uint32_t)pre[i], sl = (int32_t)(uint32_t)suf[i];
    if (pl < 0 || sl < 0 || (size_t)pl > prev_len || (size_t)sl > (size_t)(c.end - c.p)) {
      ok = corrupt(err, "DELTA_BYTE_ARRAY prefix or suffix out of range");
      break;
    }
    size_t n = (size_t)pl + (size_t)sl;
    if (n > prev_cap) {
      size_t cap = n * 2 + 16;
      uint8_t *q = realloc(prev, cap);
      if (!q) {
        ok = m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory");
        break;
      }
      prev = q;
      prev_cap = cap;
    }
    if (sl) memcpy(prev + pl, c.p, (size_t)sl);
    c.p += sl;
    prev_len = n;
    if (out->type == M2D_COL_FIXED) {
      if (n != (size_t)out->fixed_len) {
        ok = corrupt(err, "DELTA_BYTE_ARRAY value of the wrong fixed length");
        break;
      }
      ok = m2d_column_push_fixed(out, prev, err);
    } else {
      ok = m2d_column_push_bytes(out, prev, n, err);
    }
  }
  free(pre);
  free(suf);
  free(prev);
  return ok;
}

static bool byte_stream_split(const uint8_t *p, size_t len, size_t count, m2d_column_t *out, m2d_error_t *err) {
  size_t w = m2d_col_type_width(out->type, out->fixed_len);
  if (out->type == M2D_COL_BYTES || out->type == M2D_COL_BOOL || w == 0)
    return corrupt(err, "BYTE_STREAM_SPLIT on a type without a fixed width");
  if (count > len / w) return corrupt(err, "BYTE_STREAM_SPLIT values past the page");
  size_t stride = count; /* stream k holds byte k of every value of the page */
  uint8_t v[64];
  if (w > sizeof v) return corrupt(err, "BYTE_STREAM_SPLIT width too large");
  for (size_t i = 0; i < count; i++) {
    for (size_t k = 0; k < w; k++) v[k] = p[k * stride + i];
    if (!m2d_column_push_fixed(out, v, err)) return false;
  }
  return true;
}

bool pq_decode_values(pq_encoding_t enc, const m2d_column_t *dict, const uint8_t *p, size_t len, size_t count,
                      m2d_column_t *out, m2d_error_t *err) {
  switch (enc) {
  case PQ_ENC_PLAIN: return plain(p, len, count, out, err);
  case PQ_ENC_PLAIN_DICTIONARY:
  case PQ_ENC_RLE_DICTIONARY: return dictionary(dict, p, len, count, out, err);
  case PQ_ENC_RLE:
    if (out->type == M2D_COL_BOOL) { /* RLE booleans (page v2): 4-byte length, bit width 1 */
      if (len < 4) return corrupt(err, "RLE booleans without a length");
      uint32_t n;
      memcpy(&n, p, 4);
      if (n > len - 4) return corrupt(err, "RLE booleans past the page");
      uint32_t *v = malloc((count ? count : 1) * sizeof *v);
      if (!v) return m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory");
      bool ok = rle_u32(p + 4, n, 1, count, v, err);
      for (size_t i = 0; ok && i < count; i++) ok = m2d_column_push_bool(out, v[i] != 0, err);
      free(v);
      return ok;
    }
    return m2d_error_set(err, M2D_ERR_FORMAT, 0, "RLE encoding of values other than booleans");
  case PQ_ENC_DELTA_BINARY_PACKED:
    if (out->type != M2D_COL_INT32 && out->type != M2D_COL_INT64)
      return corrupt(err, "DELTA_BINARY_PACKED on a type other than INT32/INT64");
    return delta_ints(p, len, count, out, err);
  case PQ_ENC_DELTA_LENGTH_BYTE_ARRAY: {
    if (out->type != M2D_COL_BYTES) return corrupt(err, "DELTA_LENGTH_BYTE_ARRAY on a type other than BYTE_ARRAY");
    cur_t c = {p, p + len};
    return delta_length_bytes(&c, count, out, NULL, NULL, err);
  }
  case PQ_ENC_DELTA_BYTE_ARRAY:
    if (out->type != M2D_COL_BYTES && out->type != M2D_COL_FIXED)
      return corrupt(err, "DELTA_BYTE_ARRAY on a type other than byte arrays");
    return delta_byte_array(p, len, count, out, err);
  case PQ_ENC_BYTE_STREAM_SPLIT: return byte_stream_split(p, len, count, out, err);
  default:
    return m2d_error_set(err, M2D_ERR_FORMAT, 0, "unsupported value encoding %s (%d)", pq_encoding_name(enc), (int)enc);
  }
}
