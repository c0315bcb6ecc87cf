#include "parquet/encode.h"

#include <stdlib.h>
#include <string.h>

int pq_bit_width(uint32_t max) {
  int w = 0;
  while (max) {
    w++;
    max >>= 1;
  }
  return w;
}

/* --- RLE / bit-packed hybrid ----------------------------------------------------------------
 * A run of 8 or more equal values becomes an RLE run; everything else goes into bit-packed
 * runs of whole groups of 8 (the last group of the data padded with zeros). */

static bool put_varint(m2d_buf_t *out, uint64_t v, m2d_error_t *err) {
  uint8_t b[10];
  int n = 0;
  while (v >= 0x80) {
    b[n++] = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  b[n++] = (uint8_t)v;
  return m2d_buf_append(out, b, (size_t)n, err);
}

#define RLE_ENCODE(NAME, T)                                                                         \
  bool NAME(const T *v, size_t n, int bw, m2d_buf_t *out, m2d_error_t *err) {                       \
    size_t vbytes = (size_t)(bw + 7) / 8;                                                           \
    size_t i = 0;                                                                                   \
    while (i < n) {                                                                                 \
      size_t run = 1;                                                                               \
      while (i + run < n && v[i + run] == v[i]) run++;                                              \
      if (run >= 8 || bw == 0) {                                                                    \
        uint32_t x = (uint32_t)v[i];                                                                \
        uint8_t le[4] = {(uint8_t)x, (uint8_t)(x >> 8), (uint8_t)(x >> 16), (uint8_t)(x >> 24)};     \
        if (!put_varint(out, (uint64_t)run << 1, err) || !m2d_buf_append(out, le, vbytes, err))     \
          return false;                                                                             \
        i += run;                                                                                   \
        continue;                                                                                   \
      }                                                                                             \
      /* bit-packed groups until a run of 8 starts at a group boundary (at most 63 groups) */      \
      size_t start = i, groups = 0;                                                                 \
      while (i < n && groups < 63) {                                                                \
        if (groups > 0) {                                                                           \
          size_t r = 1;                                                                             \
          while (i + r < n && r < 8 && v[i + r] == v[i]) r++;                                       \
          if (r >= 8) break;                                                                        \
        }                                                                                           \
        i += 8;                                                                                     \
        groups++;                                                                                   \
      }                                                                                             \
      if (i > n) i = n;                                                                             \
      if (!put_varint(out, (uint64_t)groups << 1 | 1, err)) return false;                           \
      size_t nbytes = groups * (size_t)bw; /* 8 values * bw bits / 8 */                             \
      if (!m2d_buf_reserve(out, nbytes, err)) return false;                                         \
      uint8_t *dst = out->data + out->len;                                                          \
      memset(dst, 0, nbytes);                                                                       \
      uint64_t acc = 0;                                                                             \
      int bits = 0;                                                                                 \
      size_t o = 0;                                                                                 \
      for (size_t k = start; k < start + groups * 8; k++) {                                         \
        uint64_t x = k < n ? (uint64_t)(uint32_t)v[k] : 0;                                          \
        acc |= x << bits;                                                                           \
        bits += bw;                                                                                 \
        while (bits >= 8) {                                                                         \
          dst[o++] = (uint8_t)acc;                                                                  \
          acc >>= 8;                                                                                \
          bits -= 8;                                                                                \
        }                                                                                           \
      }                                                                                             \
      out->len += nbytes;                                                                           \
    }                                                                                               \
    return true;                                                                                    \
  }

RLE_ENCODE(pq_rle_encode_u32, uint32_t)
RLE_ENCODE(pq_rle_encode_i16, int16_t)

/* --- PLAIN -------------------------------------------------------------------------------- */

bool pq_plain_encode(const m2d_column_t *c, size_t from, size_t to, m2d_buf_t *out, m2d_error_t *err) {
  if (from >= to) return true;
  switch (c->type) {
  case M2D_COL_BOOL: {
    size_t nbytes = (to - from + 7) / 8;
    if (!m2d_buf_reserve(out, nbytes, err)) return false;
    uint8_t *dst = out->data + out->len;
    memset(dst, 0, nbytes);
    for (size_t i = from; i < to; i++)
      if (c->values[i]) dst[(i - from) / 8] |= (uint8_t)(1u << ((i - from) % 8));
    out->len += nbytes;
    return true;
  }
  case M2D_COL_BYTES: {
    size_t total = (to - from) * 4 + (c->offsets[to] - c->offsets[from]);
    if (!m2d_buf_reserve(out, total, err)) return false;
    uint8_t *dst = out->data + out->len;
    for (size_t i = from; i < to; i++) {
      uint32_t len = c->offsets[i + 1] - c->offsets[i];
      memcpy(dst, &len, 4); /* little-endian machine */
      memcpy(dst + 4, c->values + c->offsets[i], len);
      dst += 4 + len;
    }
    out->len += total;
    return true;
  }
  default: {
    size_t w = m2d_col_type_width(c->type, c->fixed_len);
    return m2d_buf_append(out, c->values + from * w, (to - from) * w, err);
  }
  }
}

/* --- dictionary --------------------------------------------------------------------------- */

struct pq_dict {
  m2d_col_type_t type;
  size_t width; /* 0 for BYTES */
  m2d_buf_t plain; /* dictionary page bytes */
  uint32_t *slots; /* hash table: index + 1, 0 empty */
  uint64_t *hashes;
  size_t nslots;
  uint32_t count;
  uint32_t *starts; /* BYTES: offset of each entry's length prefix in plain */
  size_t starts_cap;
};

static uint64_t hash_bytes(const uint8_t *p, size_t n) {
  uint64_t h = 0x9E3779B97F4A7C15ULL ^ n;
  while (n >= 8) {
    uint64_t x;
    memcpy(&x, p, 8);
    h = (h ^ x) * 0xBF58476D1CE4E5B9ULL;
    h ^= h >> 31;
    p += 8;
    n -= 8;
  }
  uint64_t x = 0;
  memcpy(&x, p, n);
  h = (h ^ x) * 0x94D049BB133111EBULL;
  h ^= h >> 29;
  return h;
}

pq_dict_t *pq_dict_new(m2d_col_type_t type, int32_t fixed_len) {
  pq_dict_t *d = calloc(1, sizeof *d);
  if (!d) return NULL;
  d->type = type;
  d->width = m2d_col_type_width(type, fixed_len);
  m2d_buf_init(&d->plain, (size_t)1 << 31);
  return d;
}

void pq_dict_destroy(pq_dict_t *d) {
  if (!d) return;
  m2d_buf_free(&d->plain);
  free(d->slots);
  free(d->hashes);
  free(d->starts);
  free(d);
}

void pq_dict_clear(pq_dict_t *d) {
  m2d_buf_reset(&d->plain);
  if (d->slots) memset(d->slots, 0, d->nslots * sizeof *d->slots);
  d->count = 0;
}

uint32_t pq_dict_count(const pq_dict_t *d) { return d->count; }
const m2d_buf_t *pq_dict_plain(const pq_dict_t *d) { return &d->plain; }

static const uint8_t *entry(const pq_dict_t *d, uint32_t idx, size_t *len) {
  if (d->width) {
    *len = d->width;
    return d->plain.data + (size_t)idx * d->width;
  }
  uint32_t l;
  memcpy(&l, d->plain.data + d->starts[idx], 4);
  *len = l;
  return d->plain.data + d->starts[idx] + 4;
}

const uint8_t *pq_dict_entry(const pq_dict_t *d, uint32_t idx, size_t *len) { return entry(d, idx, len); }

static bool rehash(pq_dict_t *d, m2d_error_t *err) {
  size_t n = d->nslots ? d->nslots * 2 : 1024;
  uint32_t *slots = calloc(n, sizeof *slots);
  uint64_t *hashes = realloc(d->hashes, n * sizeof *hashes);
  if (!slots || !hashes) {
    free(slots);
    if (hashes) d->hashes = hashes;
    return m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory growing a dictionary");
  }
  d->hashes = hashes; /* hashes[i] is the hash of entry i */
  for (uint32_t i = 0; i < d->count; i++) {
    size_t s = d->hashes[i] & (n - 1);
    while (slots[s]) s = (s + 1) & (n - 1);
    slots[s] = i + 1;
  }
  free(d->slots);
  d->slots = slots;
  d->nslots = n;
  return true;
}

static inline uint64_t hash_word(uint64_t x) {
  x ^= x >> 33;
  x *= 0xFF51AFD7ED558CCDULL;
  x ^= x >> 33;
  return x;
}

bool pq_dict_index(pq_dict_t *d, const uint8_t *value, size_t len, uint32_t *index, m2d_error_t *err) {
  if ((size_t)(d->count + 1) * 2 > d->nslots && !rehash(d, err)) return false;
  if (d->width == 8 || d->width == 4) {
    /* fixed-width fast path: the value is the key */
    uint64_t x = 0;
    if (d->width == 8) memcpy(&x, value, 8);
    else {
      uint32_t x4;
      memcpy(&x4, value, 4);
      x = x4;
    }
    uint64_t h = hash_word(x);
    size_t mask = d->nslots - 1, s = h & mask;
    const uint8_t *base = d->plain.data;
    for (uint32_t slot; (slot = d->slots[s]) != 0; s = (s + 1) & mask) {
      uint64_t y;
      if (d->width == 8) memcpy(&y, base + (size_t)(slot - 1) * 8, 8);
      else {
        uint32_t y4;
        memcpy(&y4, base + (size_t)(slot - 1) * 4, 4);
        y = y4;
      }
      if (y == x) {
        *index = slot - 1;
        return true;
      }
    }
    if (!m2d_buf_append(&d->plain, value, d->width, err)) return false;
    d->hashes[d->count] = h;
    d->slots[s] = d->count + 1;
    *index = d->count++;
    return true;
  }
  /* short strings (the common dictionary case) hash as one word */
  uint64_t h;
  if (len <= 8) {
    uint64_t x = 0;
    memcpy(&x, value, len);
    h = hash_word(x ^ ((uint64_t)len << 59));
  } else {
    h = hash_bytes(value, len);
  }
  size_t mask = d->nslots - 1, s = h & mask;
  for (uint32_t slot; (slot = d->slots[s]) != 0; s = (s + 1) & mask) {
    uint32_t idx = slot - 1;
    if (d->hashes[idx] != h) continue;
    const uint8_t *e;
    uint32_t elen;
    if (d->width) {
      e = d->plain.data + (size_t)idx * d->width;
      elen = (uint32_t)d->width;
    } else {
      memcpy(&elen, d->plain.data + d->starts[idx], 4);
      e = d->plain.data + d->starts[idx] + 4;
    }
    if (elen == len && memcmp(e, value, len) == 0) {
      *index = idx;
      return true;
    }
  }
  /* new entry */
  if (!d->width) {
    if (d->count == d->starts_cap) {
      size_t cap = d->starts_cap ? d->starts_cap * 2 : 1024;
      uint32_t *st = realloc(d->starts, cap * sizeof *st);
      if (!st) return m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory growing a dictionary");
      d->starts = st;
      d->starts_cap = cap;
    }
    d->starts[d->count] = (uint32_t)d->plain.len;
    uint32_t l = (uint32_t)len;
    if (!m2d_buf_reserve(&d->plain, 4 + len, err)) return false;
    memcpy(d->plain.data + d->plain.len, &l, 4);
    memcpy(d->plain.data + d->plain.len + 4, value, len);
    d->plain.len += 4 + len;
  } else if (!m2d_buf_append(&d->plain, value, len, err)) {
    return false;
  }
  d->hashes[d->count] = h;
  d->slots[s] = d->count + 1;
  *index = d->count++;
  return true;
}
