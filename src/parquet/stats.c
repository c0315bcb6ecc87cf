#include "parquet/stats.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void pq_stats_init(pq_stats_t *s) { memset(s, 0, sizeof *s); }

void pq_stats_free(pq_stats_t *s) {
  free(s->min);
  free(s->max);
  memset(s, 0, sizeof *s);
}

void pq_stats_reset(pq_stats_t *s) {
  s->has_minmax = false;
  s->min_len = s->max_len = 0;
  s->null_count = 0;
  s->num_values = 0;
}

static bool is_unsigned(const pq_node_t *leaf) {
  if (leaf->logical.kind == PQ_LT_INTEGER) return !leaf->logical.is_signed;
  if (leaf->has_converted)
    return leaf->converted == PQ_CT_UINT_8 || leaf->converted == PQ_CT_UINT_16 || leaf->converted == PQ_CT_UINT_32 ||
           leaf->converted == PQ_CT_UINT_64;
  return false;
}

static bool is_decimal(const pq_node_t *leaf) {
  return leaf->logical.kind == PQ_LT_DECIMAL || (leaf->has_converted && leaf->converted == PQ_CT_DECIMAL);
}

bool pq_stats_order_defined(const pq_node_t *leaf) {
  if (leaf->type == PQ_INT96) return false;
  if (leaf->has_converted && leaf->converted == PQ_CT_INTERVAL) return false;
  return true;
}

static int cmp_bytes_unsigned(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen) {
  size_t n = alen < blen ? alen : blen;
  int c = n ? memcmp(a, b, n) : 0;
  if (c) return c;
  return (alen > blen) - (alen < blen);
}

/* The first 16 bytes of BYTES value i of c as two big-endian words, zero-padded: comparing
 * keys as numbers compares the values unsigned-lexicographically, except that equal keys
 * only say the values agree on their first 16 bytes (zero padding included). */
typedef struct {
  uint64_t hi, lo;
  size_t len;
} str_key_t;

static inline str_key_t str_key(const m2d_column_t *c, size_t i, size_t end) {
  str_key_t k = {0, 0, c->offsets[i + 1] - c->offsets[i]};
  uint64_t a = 0, b = 0;
  size_t len = k.len;
  if (len == 0) return k;
  const uint8_t *p = c->values + c->offsets[i];
  if ((size_t)c->offsets[i] + 16 <= end) {
    memcpy(&a, p, 8);
    memcpy(&b, p + 8, 8);
    if (len < 8) {
      a &= ~0ULL >> (64 - 8 * len);
      b = 0;
    } else if (len == 8) {
      b = 0;
    } else if (len < 16) {
      b &= ~0ULL >> (64 - 8 * (len - 8));
    }
  } else {
    uint8_t tmp[16] = {0};
    memcpy(tmp, p, len < 16 ? len : 16);
    memcpy(&a, tmp, 8);
    memcpy(&b, tmp + 8, 8);
  }
  k.hi = __builtin_bswap64(a);
  k.lo = __builtin_bswap64(b);
  return k;
}

/* Compares values i and j of c, whose keys are ki and kj. */
static inline int str_cmp(const m2d_column_t *c, size_t i, const str_key_t *ki, size_t j, const str_key_t *kj) {
  if (ki->hi != kj->hi) return ki->hi < kj->hi ? -1 : 1;
  if (ki->lo != kj->lo) return ki->lo < kj->lo ? -1 : 1;
  /* the first 16 bytes agree (a shorter value padded with zeros) */
  if (ki->len <= 16 && kj->len <= 16) return (ki->len > kj->len) - (ki->len < kj->len);
  return cmp_bytes_unsigned(c->values + c->offsets[i], ki->len, c->values + c->offsets[j], kj->len);
}

static int cmp_bytes_signed_be(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen) {
  /* two's complement big-endian of possibly different lengths: compare sign, then extend */
  bool an = alen && (a[0] & 0x80), bn = blen && (b[0] & 0x80);
  if (an != bn) return an ? -1 : 1;
  size_t n = alen > blen ? alen : blen;
  for (size_t i = 0; i < n; i++) {
    uint8_t x = i + alen >= n ? a[i + alen - n] : (an ? 0xff : 0);
    uint8_t y = i + blen >= n ? b[i + blen - n] : (bn ? 0xff : 0);
    if (x != y) return x < y ? -1 : 1;
  }
  return 0;
}

int pq_stats_compare(const pq_node_t *leaf, const uint8_t *a, size_t alen, const uint8_t *b, size_t blen) {
  switch (leaf->type) {
  case PQ_BOOLEAN: return (a[0] > b[0]) - (a[0] < b[0]);
  case PQ_INT32: {
    int32_t x, y;
    memcpy(&x, a, 4);
    memcpy(&y, b, 4);
    if (is_unsigned(leaf)) return ((uint32_t)x > (uint32_t)y) - ((uint32_t)x < (uint32_t)y);
    return (x > y) - (x < y);
  }
  case PQ_INT64: {
    int64_t x, y;
    memcpy(&x, a, 8);
    memcpy(&y, b, 8);
    if (is_unsigned(leaf)) return ((uint64_t)x > (uint64_t)y) - ((uint64_t)x < (uint64_t)y);
    return (x > y) - (x < y);
  }
  case PQ_FLOAT: {
    float x, y;
    memcpy(&x, a, 4);
    memcpy(&y, b, 4);
    if (x == y) return signbit(y) - signbit(x); /* -0 < +0 */
    return (x > y) - (x < y);
  }
  case PQ_DOUBLE: {
    double x, y;
    memcpy(&x, a, 8);
    memcpy(&y, b, 8);
    if (x == y) return signbit(y) - signbit(x);
    return (x > y) - (x < y);
  }
  case PQ_BYTE_ARRAY:
  case PQ_FIXED_LEN_BYTE_ARRAY:
    if (is_decimal(leaf)) return cmp_bytes_signed_be(a, alen, b, blen);
    return cmp_bytes_unsigned(a, alen, b, blen);
  default: return 0;
  }
}

static bool set_bytes(uint8_t **dst, size_t *len, size_t *cap, const uint8_t *p, size_t n, m2d_error_t *err) {
  if (n > *cap) {
    uint8_t *q = realloc(*dst, n);
    if (!q) return m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory keeping statistics");
    *dst = q;
    *cap = n;
  }
  if (n) memcpy(*dst, p, n);
  *len = n;
  return true;
}

static bool fold(pq_stats_t *s, const pq_node_t *leaf, const uint8_t *v, size_t len, m2d_error_t *err) {
  if (!s->has_minmax) {
    s->has_minmax = true;
    return set_bytes(&s->min, &s->min_len, &s->min_cap, v, len, err) &&
           set_bytes(&s->max, &s->max_len, &s->max_cap, v, len, err);
  }
  if (pq_stats_compare(leaf, v, len, s->min, s->min_len) < 0 && !set_bytes(&s->min, &s->min_len, &s->min_cap, v, len, err))
    return false;
  if (pq_stats_compare(leaf, v, len, s->max, s->max_len) > 0 && !set_bytes(&s->max, &s->max_len, &s->max_cap, v, len, err))
    return false;
  return true;
}

bool pq_stats_update(pq_stats_t *s, const pq_node_t *leaf, const m2d_column_t *c, size_t from, size_t to,
                     m2d_error_t *err) {
  s->num_values += (int64_t)(to - from);
  if (!pq_stats_order_defined(leaf) || from >= to) return true;
  switch (c->type) {
  case M2D_COL_INT32: {
    /* the hot path: integers without a per-value call */
    int32_t mn = INT32_MAX, mx = INT32_MIN;
    uint32_t umn = UINT32_MAX, umx = 0;
    bool uns = is_unsigned(leaf);
    for (size_t i = from; i < to; i++) {
      int32_t x;
      memcpy(&x, c->values + i * 4, 4);
      if (uns) {
        if ((uint32_t)x < umn) umn = (uint32_t)x;
        if ((uint32_t)x > umx) umx = (uint32_t)x;
      } else {
        if (x < mn) mn = x;
        if (x > mx) mx = x;
      }
    }
    if (uns) {
      memcpy(&mn, &umn, 4);
      memcpy(&mx, &umx, 4);
    }
    return fold(s, leaf, (uint8_t *)&mn, 4, err) && fold(s, leaf, (uint8_t *)&mx, 4, err);
  }
  case M2D_COL_INT64: {
    int64_t mn = INT64_MAX, mx = INT64_MIN;
    uint64_t umn = UINT64_MAX, umx = 0;
    bool uns = is_unsigned(leaf);
    for (size_t i = from; i < to; i++) {
      int64_t x;
      memcpy(&x, c->values + i * 8, 8);
      if (uns) {
        if ((uint64_t)x < umn) umn = (uint64_t)x;
        if ((uint64_t)x > umx) umx = (uint64_t)x;
      } else {
        if (x < mn) mn = x;
        if (x > mx) mx = x;
      }
    }
    if (uns) {
      memcpy(&mn, &umn, 8);
      memcpy(&mx, &umx, 8);
    }
    return fold(s, leaf, (uint8_t *)&mn, 8, err) && fold(s, leaf, (uint8_t *)&mx, 8, err);
  }
  case M2D_COL_DOUBLE:
  case M2D_COL_FLOAT: {
    /* the segment's min and max first (NaN left out, -0 below +0), then fold two values */
    size_t w = c->type == M2D_COL_DOUBLE ? 8 : 4, imn = SIZE_MAX, imx = SIZE_MAX;
    double mn = 0, mx = 0;
    for (size_t i = from; i < to; i++) {
      double x;
      if (w == 8) memcpy(&x, c->values + i * 8, 8);
      else {
        float f;
        memcpy(&f, c->values + i * 4, 4);
        x = f;
      }
      if (isnan(x)) continue;
      if (imn == SIZE_MAX) {
        mn = mx = x;
        imn = imx = i;
        continue;
      }
      if (x < mn || (x == 0 && mn == 0 && signbit(x) && !signbit(mn))) {
        mn = x;
        imn = i;
      }
      if (x > mx || (x == 0 && mx == 0 && !signbit(x) && signbit(mx))) {
        mx = x;
        imx = i;
      }
    }
    if (imn == SIZE_MAX) return true;
    return fold(s, leaf, c->values + imn * w, w, err) && fold(s, leaf, c->values + imx * w, w, err);
  }
  case M2D_COL_BYTES: {
    if (leaf->logical.kind == PQ_LT_DECIMAL || (leaf->has_converted && leaf->converted == PQ_CT_DECIMAL)) {
      for (size_t i = from; i < to; i++) {
        size_t len;
        const uint8_t *v = m2d_column_bytes_at(c, i, &len);
        if (!fold(s, leaf, v, len, err)) return false;
      }
      return true;
    }
    /* unsigned lexicographic: find the segment's min and max first, fold two values. Most
     * comparisons are settled by the first 16 bytes, compared as two big-endian words. */
    size_t end = c->values ? c->value_bytes : 0, mn = from, mx = from;
    str_key_t kmn = str_key(c, from, end), kmx = kmn;
    for (size_t i = from + 1; i < to; i++) {
      str_key_t k = str_key(c, i, end);
      if (str_cmp(c, i, &k, mn, &kmn) < 0) {
        mn = i;
        kmn = k;
      } else if (str_cmp(c, i, &k, mx, &kmx) > 0) {
        mx = i;
        kmx = k;
      }
    }
    size_t l1, l2;
    const uint8_t *a = m2d_column_bytes_at(c, mn, &l1), *b = m2d_column_bytes_at(c, mx, &l2);
    return fold(s, leaf, a, l1, err) && fold(s, leaf, b, l2, err);
  }
  default: {
    size_t w = m2d_col_type_width(c->type, c->fixed_len);
    for (size_t i = from; i < to; i++)
      if (!fold(s, leaf, c->values + i * w, w, err)) return false;
    return true;
  }
  }
}

bool pq_stats_add_value(pq_stats_t *s, const pq_node_t *leaf, const uint8_t *v, size_t len, m2d_error_t *err) {
  if (!pq_stats_order_defined(leaf)) return true;
  if (leaf->type == PQ_DOUBLE) {
    double x;
    memcpy(&x, v, 8);
    if (isnan(x)) return true;
  } else if (leaf->type == PQ_FLOAT) {
    float x;
    memcpy(&x, v, 4);
    if (isnan(x)) return true;
  }
  return fold(s, leaf, v, len, err);
}

bool pq_stats_merge(pq_stats_t *s, const pq_node_t *leaf, const pq_stats_t *o, m2d_error_t *err) {
  s->null_count += o->null_count;
  s->num_values += o->num_values;
  if (!o->has_minmax) return true;
  return fold(s, leaf, o->min, o->min_len, err) && fold(s, leaf, o->max, o->max_len, err);
}
