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

/* Length of the run of values equal to v[i] starting at i (at least 1), up to max. */
#define RUN_LENGTH(NAME, T)                                                                         \
  static inline size_t NAME(const T *v, size_t i, size_t n, size_t max) {                         \
    size_t lim = n - i < max ? n : i + max, j = i + 1;                                              \
    /* whole words first: sizeof(uint64_t) / sizeof(T) values at a time */                       \
    enum { PER = sizeof(uint64_t) / sizeof(T) };                                                    \
    uint64_t pat = (uint64_t)(uint32_t)v[i] & (((uint64_t)1 << (8 * sizeof(T))) - 1);             \
    for (size_t b = 8 * sizeof(T); b < 64; b *= 2) pat |= pat << b;                                 \
    while (j + PER <= lim) {                                                                        \
      uint64_t w;                                                                                   \
      memcpy(&w, v + j, 8);                                                                         \
      if (w != pat) break;                                                                          \
      j += PER;                                                                                     \
    }                                                                                               \
    while (j < lim && v[j] == v[i]) j++;                                                            \
    return j - i;                                                                                   \
  }
RUN_LENGTH(run_u32, uint32_t)
RUN_LENGTH(run_i16, int16_t)

#define RLE_ENCODE(NAME, T, RUN)                                                                    \
  bool NAME(const T *v, size_t n, int bw, m2d_buf_t *out, m2d_error_t *err) {                       \
    size_t vbytes = (size_t)(bw + 7) / 8;                                                           \
    size_t i = 0;                                                                                   \
    while (i < n) {                                                                                 \
      size_t run = RUN(v, i, n, SIZE_MAX);                                                          \
      if (run >= 8 || bw == 0) {                                                                    \
        uint32_t x = (uint32_t)v[i];                                                                \
        uint8_t le[4] = {(uint8_t)x, (uint8_t)(x >> 8), (uint8_t)(x >> 16), (uint8_t)(x >> 24)};     \
        if (!m2d_buf_append_varint(out, (uint64_t)run << 1, err) ||                                 \
            !m2d_buf_append(out, le, vbytes, err))                                                  \
          return false;                                                                             \
        i += run;                                                                                   \
        continue;                                                                                   \
      }                                                                                             \
      /* bit-packed groups until a run of 8 starts at a group boundary (at most 63 groups) */      \
      size_t start = i, groups = 0;                                                                 \
      while (i < n && groups < 63) {                                                                \
        if (groups > 0 && RUN(v, i, n, 8) >= 8) break;                                              \
        i += 8;                                                                                     \
        groups++;                                                                                   \
      }                                                                                             \
      if (i > n) i = n;                                                                             \
      if (!m2d_buf_append_varint(out, (uint64_t)groups << 1 | 1, err)) return false;                \
      size_t nbytes = groups * (size_t)bw; /* 8 values * bw bits / 8 */                             \
      if (!m2d_buf_reserve(out, nbytes, err)) return false;                                         \
      uint8_t *dst = out->data + out->len;                                                          \
      uint64_t acc = 0;                                                                             \
      int bits = 0;                                                                                 \
      size_t full = start + groups * 8 <= n ? groups * 8 : n - start; /* values present */          \
      const T *p = v + start;                                                                       \
      for (size_t k = 0; k < full; k++) {                                                           \
        acc |= (uint64_t)(uint32_t)p[k] << bits;                                                    \
        bits += bw;                                                                                 \
        if (bits >= 32) { /* bits < 32 + 32: acc holds them all */                                  \
          uint32_t lo = (uint32_t)acc;                                                              \
          memcpy(dst, &lo, 4);                                                                      \
          dst += 4;                                                                                 \
          acc >>= 32;                                                                               \
          bits -= 32;                                                                               \
        }                                                                                           \
      }                                                                                             \
      /* the rest, and the zeros padding the last group, in whole bytes */                         \
      uint8_t *end = out->data + out->len + nbytes;                                                 \
      while (dst < end) {                                                                           \
        *dst++ = (uint8_t)acc;                                                                      \
        acc >>= 8;                                                                                  \
      }                                                                                             \
      out->len += nbytes;                                                                           \
    }                                                                                               \
    return true;                                                                                    \
  }

RLE_ENCODE(pq_rle_encode_u32, uint32_t, run_u32)
RLE_ENCODE(pq_rle_encode_i16, int16_t, run_i16)

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

/* --- dictionary ---------------------------------------------------------------------------
 * Open addressing with linear probing, at most half full. Each slot holds a 64-bit key and
 * the entry's index, so that most lookups touch one slot and nothing else:
 *   fixed-width values of 1 to 8 bytes, and BYTES values of at most 8 bytes: the key is the
 *     value itself (zero-extended), the slot also holds its length: equal key and length is
 *     equal value, no memcmp;
 *   longer values: the key is a 64-bit hash of the value; equal key and length is checked
 *     with one memcmp against the entry.
 * The slot of a key is the top bits of key * a Fibonacci constant (one multiply); values
 * that differ only in trailing zero bytes share a key and are told apart by their length. */

typedef struct {
  uint64_t key;
  uint32_t idx1; /* entry index + 1; 0: empty */
  uint32_t len;
} dslot_t;

struct pq_dict {
  m2d_col_type_t type;
  size_t width; /* 0 for BYTES */
  m2d_buf_t plain; /* dictionary page bytes */
  dslot_t *slots;
  size_t nslots; /* a power of two */
  int shift;     /* 64 - log2(nslots) */
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

static inline size_t slot_of(const pq_dict_t *d, uint64_t key) {
  return (size_t)((key * 0x9E3779B97F4A7C15ULL) >> d->shift);
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

/* Makes room for `more` new entries without passing half full. */
static bool reserve(pq_dict_t *d, size_t more, m2d_error_t *err) {
  size_t need = ((size_t)d->count + more) * 2;
  if (need <= d->nslots) return true;
  if ((size_t)d->count + more > UINT32_MAX - 1) return m2d_error_set(err, M2D_ERR_LIMIT, 0, "dictionary too large");
  size_t n = d->nslots ? d->nslots : 1024;
  int bits = 0;
  while (n < need) n *= 2;
  while (((size_t)1 << bits) < n) bits++;
  dslot_t *slots = calloc(n, sizeof *slots);
  if (!slots) return m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory growing a dictionary");
  dslot_t *old = d->slots;
  size_t nold = d->nslots;
  d->slots = slots;
  d->nslots = n;
  d->shift = 64 - bits;
  for (size_t i = 0; i < nold; i++) {
    if (!old[i].idx1) continue;
    size_t s = slot_of(d, old[i].key);
    while (slots[s].idx1) s = (s + 1) & (n - 1);
    slots[s] = old[i];
  }
  free(old);
  return true;
}

/* Appends a new entry's bytes to the dictionary page. */
static bool add_entry(pq_dict_t *d, const uint8_t *value, size_t len, m2d_error_t *err) {
  if (d->width) return m2d_buf_append(&d->plain, value, len, err);
  if (d->count == d->starts_cap) {
    size_t cap = d->starts_cap ? d->starts_cap * 2 : 1024;
    uint32_t *st = realloc(d->starts, cap * sizeof *st);
    if (!st) return m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory growing a dictionary");
    d->starts = st;
    d->starts_cap = cap;
  }
  if (d->plain.len > UINT32_MAX - 4 - len) return m2d_error_set(err, M2D_ERR_LIMIT, 0, "dictionary too large");
  d->starts[d->count] = (uint32_t)d->plain.len;
  uint32_t l = (uint32_t)len;
  if (!m2d_buf_reserve(&d->plain, 4 + len, err)) return false;
  memcpy(d->plain.data + d->plain.len, &l, 4);
  if (len) memcpy(d->plain.data + d->plain.len + 4, value, len);
  d->plain.len += 4 + len;
  return true;
}

/* The key of a value of at most 8 bytes: its bytes, zero-extended. `room` says whether 8
 * bytes can be read at value (then one load and a mask). */
static inline uint64_t short_key(const uint8_t *value, size_t len, bool room) {
  uint64_t x = 0;
  if (room) {
    memcpy(&x, value, 8);
    if (len < 8) x &= ((uint64_t)1 << (8 * len)) - 1;
  } else {
    memcpy(&x, value, len);
  }
  return x;
}

/* Index of one value whose key is known; room for one more entry already reserved. */
static inline bool lookup(pq_dict_t *d, uint64_t key, const uint8_t *value, size_t len, bool is_hash, uint32_t *index,
                          m2d_error_t *err) {
  size_t mask = d->nslots - 1, s = slot_of(d, key);
  dslot_t *slots = d->slots;
  for (;;) {
    dslot_t *sl = &slots[s];
    if (!sl->idx1) break;
    if (sl->key == key && sl->len == (uint32_t)len) {
      if (!is_hash) {
        *index = sl->idx1 - 1;
        return true;
      }
      size_t elen;
      const uint8_t *e = entry(d, sl->idx1 - 1, &elen);
      if (elen == len && memcmp(e, value, len) == 0) {
        *index = sl->idx1 - 1;
        return true;
      }
    }
    s = (s + 1) & mask;
  }
  if (!add_entry(d, value, len, err)) return false;
  slots[s].key = key;
  slots[s].len = (uint32_t)len;
  slots[s].idx1 = d->count + 1;
  *index = d->count++;
  return true;
}

bool pq_dict_index(pq_dict_t *d, const uint8_t *value, size_t len, uint32_t *index, m2d_error_t *err) {
  if (!reserve(d, 1, err)) return false;
  if (len <= 8) return lookup(d, short_key(value, len, false), value, len, false, index, err);
  return lookup(d, hash_bytes(value, len), value, len, true, index, err);
}

bool pq_dict_index_values(pq_dict_t *d, const m2d_column_t *c, size_t from, size_t to, uint32_t *out,
                          m2d_error_t *err) {
  if (from >= to) return true;
  if (!reserve(d, to - from, err)) return false;
  size_t w = d->width;
  if (w == 8 || w == 4) {
    /* fixed-width fast path: the value is the key (hot for longs, doubles, ints) */
    const uint8_t *v = c->values + from * w;
    size_t mask = d->nslots - 1;
    for (size_t k = from; k < to; k++, v += w) {
      uint64_t x;
      if (w == 8) memcpy(&x, v, 8);
      else {
        uint32_t x4;
        memcpy(&x4, v, 4);
        x = x4;
      }
      dslot_t *slots = d->slots;
      size_t s = slot_of(d, x);
      for (;;) {
        if (!slots[s].idx1) {
          if (!m2d_buf_append(&d->plain, v, w, err)) return false;
          slots[s].key = x;
          slots[s].len = (uint32_t)w;
          slots[s].idx1 = d->count + 1;
          *out++ = d->count++;
          break;
        }
        if (slots[s].key == x) {
          *out++ = slots[s].idx1 - 1;
          break;
        }
        s = (s + 1) & mask;
      }
    }
    return true;
  }
  if (w) {
    const uint8_t *v = c->values + from * w;
    for (size_t k = from; k < to; k++, v += w) {
      bool ok = w <= 8 ? lookup(d, short_key(v, w, false), v, w, false, out++, err)
                       : lookup(d, hash_bytes(v, w), v, w, true, out++, err);
      if (!ok) return false;
    }
    return true;
  }
  const uint32_t *off = c->offsets;
  const uint8_t *base = c->values ? c->values : (const uint8_t *)""; /* all values empty */
  size_t end = c->values ? c->value_bytes : 0;
  for (size_t k = from; k < to; k++) {
    const uint8_t *v = base + off[k];
    size_t len = off[k + 1] - off[k];
    bool ok = len <= 8 ? lookup(d, short_key(v, len, (size_t)off[k] + 8 <= end), v, len, false, out++, err)
                       : lookup(d, hash_bytes(v, len), v, len, true, out++, err);
    if (!ok) return false;
  }
  return true;
}
