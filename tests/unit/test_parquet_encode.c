/* The writer's encodings: the dictionary (value -> index, and its PLAIN page bytes) against a
 * naive first-occurrence search. */
#include "parquet/encode.h"
#include "test.h"

#include <stdio.h>
#include <stdlib.h>

/* The index of value k of c, the naive way: its first occurrence among distinct values. */
static uint32_t naive_index(const m2d_column_t *c, size_t k, size_t *firsts, uint32_t *nfirst) {
  size_t len;
  const uint8_t *v = c->type == M2D_COL_BYTES ? m2d_column_bytes_at(c, k, &len) : m2d_column_fixed_at(c, k);
  if (c->type != M2D_COL_BYTES) len = m2d_col_type_width(c->type, c->fixed_len);
  for (uint32_t e = 0; e < *nfirst; e++) {
    size_t elen;
    const uint8_t *ev =
        c->type == M2D_COL_BYTES ? m2d_column_bytes_at(c, firsts[e], &elen) : m2d_column_fixed_at(c, firsts[e]);
    if (c->type != M2D_COL_BYTES) elen = len;
    if (elen == len && memcmp(ev, v, len) == 0) return e;
  }
  firsts[*nfirst] = k;
  return (*nfirst)++;
}

/* Indexes c in uneven batches (and one value at a time for every seventh batch), checks each
 * index and the dictionary page against the naive search. */
static bool dict_matches(const m2d_column_t *c) {
  pq_dict_t *d = pq_dict_new(c->type, c->fixed_len);
  size_t *firsts = calloc(c->nvalues + 1, sizeof *firsts);
  uint32_t *idx = calloc(c->nvalues + 1, sizeof *idx), nfirst = 0;
  m2d_error_t err = {0};
  bool ok = d && firsts && idx;
  size_t from = 0, batch = 1;
  for (int round = 0; ok && from < c->nvalues; round++) {
    size_t to = from + batch < c->nvalues ? from + batch : c->nvalues;
    if (round % 7 == 3) {
      for (size_t k = from; ok && k < to; k++) {
        size_t len;
        const uint8_t *v = c->type == M2D_COL_BYTES ? m2d_column_bytes_at(c, k, &len) : m2d_column_fixed_at(c, k);
        if (c->type != M2D_COL_BYTES) len = m2d_col_type_width(c->type, c->fixed_len);
        ok = pq_dict_index(d, v, len, &idx[k], &err);
      }
    } else {
      ok = pq_dict_index_values(d, c, from, to, idx + from, &err);
    }
    from = to;
    batch = batch * 3 % 1000 + 1;
  }
  for (size_t k = 0; ok && k < c->nvalues; k++) ok = idx[k] == naive_index(c, k, firsts, &nfirst);
  ok = ok && pq_dict_count(d) == nfirst;
  /* the dictionary page: PLAIN values in index order */
  m2d_buf_t want;
  m2d_buf_init(&want, (size_t)1 << 30);
  for (uint32_t e = 0; ok && e < nfirst; e++) {
    size_t len;
    const uint8_t *v;
    if (c->type == M2D_COL_BYTES) {
      v = m2d_column_bytes_at(c, firsts[e], &len);
      uint32_t l = (uint32_t)len;
      ok = m2d_buf_append(&want, &l, 4, &err);
    } else {
      v = m2d_column_fixed_at(c, firsts[e]);
      len = m2d_col_type_width(c->type, c->fixed_len);
    }
    ok = ok && m2d_buf_append(&want, v, len, &err);
    size_t elen;
    const uint8_t *ev = pq_dict_entry(d, e, &elen);
    ok = ok && elen == len && memcmp(ev, v, len) == 0;
  }
  const m2d_buf_t *plain = ok ? pq_dict_plain(d) : NULL;
  ok = ok && plain->len == want.len && (want.len == 0 || memcmp(plain->data, want.data, want.len) == 0);
  /* cleared, it starts afresh */
  if (ok) {
    pq_dict_clear(d);
    uint32_t i0 = 99;
    ok = pq_dict_count(d) == 0 && pq_dict_index_values(d, c, c->nvalues - 1, c->nvalues, &i0, &err) && i0 == 0 &&
         pq_dict_count(d) == 1;
  }
  m2d_buf_free(&want);
  free(firsts);
  free(idx);
  pq_dict_destroy(d);
  return ok;
}

TEST(dict_fixed_width_values_match_a_naive_search) {
  m2d_error_t err = {0};
  m2d_column_t c;
  /* longs: many distinct (the table grows several times), then repeats */
  m2d_column_init(&c, M2D_COL_INT64, 0, 0, 0, 0);
  for (int64_t i = 0; i < 5000; i++) CHECK(m2d_column_push_i64(&c, i * 7919 % 3001 - 1500, &err));
  CHECK(m2d_column_push_i64(&c, INT64_MIN, &err) && m2d_column_push_i64(&c, INT64_MAX, &err));
  CHECK(dict_matches(&c));
  m2d_column_free(&c);
  /* doubles: -0.0 and 0.0 are different values here, as their bytes differ */
  m2d_column_init(&c, M2D_COL_DOUBLE, 0, 0, 0, 0);
  for (int i = 0; i < 3000; i++) CHECK(m2d_column_push_f64(&c, (i % 1000) * 0.25, &err));
  CHECK(m2d_column_push_f64(&c, -0.0, &err) && m2d_column_push_f64(&c, 0.0, &err));
  CHECK(dict_matches(&c));
  m2d_column_free(&c);
  m2d_column_init(&c, M2D_COL_INT32, 0, 0, 0, 0);
  for (int i = 0; i < 4000; i++) CHECK(m2d_column_push_i32(&c, (i * 37) % 1200 - 600, &err));
  CHECK(dict_matches(&c));
  m2d_column_free(&c);
  /* widths other than 4 and 8: 12 (INT96), 3 and 16 (FIXED) */
  int32_t widths[] = {12, 3, 16};
  for (int w = 0; w < 3; w++) {
    m2d_column_init(&c, w == 0 ? M2D_COL_INT96 : M2D_COL_FIXED, widths[w], 0, 0, 0);
    for (int i = 0; i < 3000; i++) {
      uint8_t v[16] = {0};
      v[widths[w] - 1] = (uint8_t)(i % 61);
      v[0] = (uint8_t)(i % 5);
      CHECK(m2d_column_push_fixed(&c, v, &err));
    }
    CHECK(dict_matches(&c));
    m2d_column_free(&c);
  }
}

TEST(dict_strings_match_a_naive_search) {
  m2d_error_t err = {0};
  m2d_column_t c;
  m2d_column_init(&c, M2D_COL_BYTES, 0, 0, 0, 0);
  /* values that differ only in trailing zero bytes or in length, around 8 bytes, and long
   * values sharing long prefixes */
  static const char *fixed[] = {"", "a", "a\0", "a\0\0", "\0", "abcdefgh", "abcdefg", "abcdefghi",
                                "abcdefgh\0", "US", "DE"};
  static const size_t fixed_len[] = {0, 1, 2, 3, 1, 8, 7, 9, 9, 2, 2};
  for (int r = 0; r < 3; r++)
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) CHECK(m2d_column_push_bytes(&c, fixed[i], fixed_len[i], &err));
  char buf[80];
  for (int i = 0; i < 6000; i++) {
    int n = snprintf(buf, sizeof buf, i % 3 ? "c%d" : "a-rather-long-common-prefix-%d", i % 2500);
    CHECK(m2d_column_push_bytes(&c, buf, (size_t)n, &err));
  }
  /* a short value last: the key is read without 8 bytes of room after it */
  CHECK(m2d_column_push_bytes(&c, "c7", 2, &err));
  CHECK(dict_matches(&c));
  m2d_column_free(&c);
  /* only empty strings (the column has no value bytes at all) */
  m2d_column_init(&c, M2D_COL_BYTES, 0, 0, 0, 0);
  for (int i = 0; i < 10; i++) CHECK(m2d_column_push_bytes(&c, "", 0, &err));
  CHECK(dict_matches(&c));
  m2d_column_free(&c);
}

/* --- statistics: a segment at a time against one value at a time --------------------------- */
#include "parquet/stats.h"

#include <math.h>

/* Min and max of the values of c folded by pq_stats_update, in one segment or in uneven
 * segments, equal those of pq_stats_add_value one value at a time (byte for byte). */
static bool stats_match_segments(const pq_node_t *leaf, const m2d_column_t *c, bool whole) {
  pq_stats_t seg, one;
  pq_stats_init(&seg);
  pq_stats_init(&one);
  m2d_error_t err = {0};
  bool ok = true;
  for (size_t from = 0, n = whole ? c->nvalues : 1; ok && from < c->nvalues; from += n, n = n * 5 % 97 + 1) {
    size_t to = from + n < c->nvalues ? from + n : c->nvalues;
    ok = pq_stats_update(&seg, leaf, c, from, to, &err);
  }
  for (size_t i = 0; ok && i < c->nvalues; i++) {
    size_t len;
    const uint8_t *v = c->type == M2D_COL_BYTES ? m2d_column_bytes_at(c, i, &len) : m2d_column_fixed_at(c, i);
    if (c->type != M2D_COL_BYTES) len = m2d_col_type_width(c->type, c->fixed_len);
    ok = pq_stats_add_value(&one, leaf, v, len, &err);
  }
  ok = ok && seg.has_minmax == one.has_minmax && seg.num_values == (int64_t)c->nvalues;
  if (ok && one.has_minmax)
    ok = seg.min_len == one.min_len && seg.max_len == one.max_len &&
         (one.min_len == 0 || memcmp(seg.min, one.min, one.min_len) == 0) &&
         (one.max_len == 0 || memcmp(seg.max, one.max, one.max_len) == 0);
  pq_stats_free(&seg);
  pq_stats_free(&one);
  return ok;
}

static bool stats_match(const pq_node_t *leaf, const m2d_column_t *c) {
  return stats_match_segments(leaf, c, true) && stats_match_segments(leaf, c, false);
}

TEST(stats_of_doubles_by_segment_match_value_by_value) {
  m2d_error_t err = {0};
  pq_node_t *leaf = pq_node_leaf("x", PQ_OPTIONAL, PQ_DOUBLE);
  CHECK(leaf);
  double seqs[][6] = {{NAN, NAN, NAN, NAN, NAN, NAN},      {0.0, -0.0, 0.0, NAN, -0.0, 0.0},
                      {-0.0, 0.0, -0.0, 1.5, -2.5, NAN},  {NAN, 3.0, -INFINITY, INFINITY, -0.0, 2.0},
                      {0.0, 0.0, 0.0, 0.0, 0.0, 0.0},     {-0.0, -0.0, NAN, -0.0, -0.0, -0.0}};
  for (size_t q = 0; q < sizeof seqs / sizeof seqs[0]; q++)
    for (int rot = 0; rot < 6; rot++) {
      m2d_column_t c;
      m2d_column_init(&c, M2D_COL_DOUBLE, 0, 0, 0, 0);
      for (int r = 0; r < 40; r++) CHECK(m2d_column_push_f64(&c, seqs[q][(r * 7 + rot) % 6] * (r % 3 ? 1 : r + 1), &err));
      CHECK(stats_match(leaf, &c));
      m2d_column_free(&c);
    }
  pq_node_free(leaf);
  leaf = pq_node_leaf("f", PQ_OPTIONAL, PQ_FLOAT);
  CHECK(leaf);
  m2d_column_t c;
  m2d_column_init(&c, M2D_COL_FLOAT, 0, 0, 0, 0);
  float fv[] = {0.0f, -0.0f, NAN, 1e30f, -1e-30f, 7.0f};
  for (int r = 0; r < 50; r++) CHECK(m2d_column_push_f32(&c, fv[(r * 5) % 6], &err));
  CHECK(stats_match(leaf, &c));
  m2d_column_free(&c);
  pq_node_free(leaf);
}

TEST(stats_of_strings_by_segment_match_value_by_value) {
  m2d_error_t err = {0};
  pq_node_t *leaf = pq_node_leaf("s", PQ_OPTIONAL, PQ_BYTE_ARRAY);
  CHECK(leaf);
  /* values equal on their first 8 or 16 bytes, values that differ by trailing zero bytes,
   * bytes above 0x7f, the empty value, long values */
  static const char *vals[] = {"user-1000000", "user-1000001", "user-999", "", "\xff", "\xff\xfe",
                               "0123456789abcdef", "0123456789abcdef\0", "0123456789abcdeg", "0123456789abcdef-longer",
                               "0123456789abcdef-long", "a", "a\0", "zz", "user-10000000000000000000", "0123456789abcde"};
  static const size_t lens[] = {12, 12, 8, 0, 1, 2, 16, 17, 16, 23, 21, 1, 2, 2, 25, 15};
  size_t nv = sizeof vals / sizeof vals[0];
  /* columns of a few values drawn from the list, so that every pair decides a min or a max */
  uint32_t rnd = 12345;
  for (int round = 0; round < 400; round++) {
    m2d_column_t c;
    m2d_column_init(&c, M2D_COL_BYTES, 0, 0, 0, 0);
    size_t n = 1 + round % 5;
    for (size_t r = 0; r < n; r++) {
      rnd = rnd * 1103515245u + 12345u;
      size_t k = (rnd >> 16) % nv;
      CHECK(m2d_column_push_bytes(&c, vals[k], lens[k], &err));
    }
    CHECK(stats_match(leaf, &c));
    m2d_column_free(&c);
  }
  pq_node_free(leaf);
}

/* --- RLE / bit-packed hybrid: the same bytes as a plain reference encoder, and levels that
 * decode back ------------------------------------------------------------------------------ */
#include "parquet/decode.h"

/* The straightforward encoder (one bit at a time), same choices of runs and groups. */
static void ref_rle(const uint32_t *v, size_t n, int bw, m2d_buf_t *out) {
  m2d_error_t err = {0};
  size_t i = 0, vbytes = (size_t)(bw + 7) / 8;
  while (i < n) {
    size_t run = 1;
    while (i + run < n && v[i + run] == v[i]) run++;
    uint8_t b[16];
    int nb = 0;
    if (run >= 8 || bw == 0) {
      for (uint64_t h = (uint64_t)run << 1; nb == 0 || h; h >>= 7) b[nb++] = (uint8_t)((h & 0x7f) | (h >= 0x80 ? 0x80 : 0));
      for (size_t k = 0; k < vbytes; k++) b[nb++] = (uint8_t)(v[i] >> (8 * k));
      m2d_buf_append(out, b, (size_t)nb, &err);
      i += run;
      continue;
    }
    size_t start = i, groups = 0;
    while (i < n && groups < 63) {
      if (groups > 0) {
        size_t r = 1;
        while (i + r < n && r < 8 && v[i + r] == v[i]) r++;
        if (r >= 8) break;
      }
      i += 8;
      groups++;
    }
    if (i > n) i = n;
    for (uint64_t h = (uint64_t)groups << 1 | 1; nb == 0 || h; h >>= 7) b[nb++] = (uint8_t)((h & 0x7f) | (h >= 0x80 ? 0x80 : 0));
    m2d_buf_append(out, b, (size_t)nb, &err);
    size_t nbits = groups * 8 * (size_t)bw, at = out->len;
    for (size_t k = 0; k < nbits / 8; k++) m2d_buf_append_byte(out, 0, &err);
    for (size_t k = 0; k < groups * 8; k++) {
      uint32_t x = start + k < n ? v[start + k] : 0;
      for (int bit = 0; bit < bw; bit++)
        if (x >> bit & 1) out->data[at + (k * (size_t)bw + (size_t)bit) / 8] |= (uint8_t)(1u << ((k * (size_t)bw + (size_t)bit) % 8));
    }
  }
}

TEST(rle_encoding_matches_a_reference_and_levels_decode_back) {
  m2d_error_t err = {0};
  size_t cap = 5000;
  uint32_t *v = calloc(cap, sizeof *v);
  int16_t *lv = calloc(cap, sizeof *lv), *back = calloc(cap, sizeof *back);
  CHECK(v && lv && back);
  uint32_t rnd = 7;
  for (int bw = 0; bw <= 32; bw++)
    for (int shape = 0; shape < 6; shape++) {
      size_t n = (size_t)(shape * 997 + bw * 31) % cap;
      uint64_t lim = bw == 32 ? UINT64_C(1) << 32 : UINT64_C(1) << bw;
      for (size_t k = 0; k < n; k++) {
        rnd = rnd * 1103515245u + 12345u;
        uint64_t x;
        switch (shape) {
        case 0: x = rnd >> 3; break;                          /* no runs */
        case 1: x = (k / 9) * 2654435761u; break;             /* runs of 9 */
        case 2: x = (k / 8) % 3 ? rnd >> 5 : 17; break;       /* runs at group boundaries */
        case 3: x = lim - 1; break;                           /* one run of the largest value */
        case 4: x = (rnd >> 7) % 2 ? rnd >> 2 : lim - 1; break;
        default: x = (k % 13 < 7) ? 5 : rnd >> 9; break;     /* runs of 7, just short */
        }
        v[k] = (uint32_t)(x % lim);
      }
      m2d_buf_t got, want;
      m2d_buf_init(&got, (size_t)1 << 30);
      m2d_buf_init(&want, (size_t)1 << 30);
      CHECK(pq_rle_encode_u32(v, n, bw, &got, &err));
      ref_rle(v, n, bw, &want);
      bool same = got.len == want.len && (want.len == 0 || memcmp(got.data, want.data, want.len) == 0);
      m2d_buf_free(&got);
      m2d_buf_free(&want);
      CHECK(same);
      if (bw <= 15) {
        for (size_t k = 0; k < n; k++) lv[k] = (int16_t)v[k];
        m2d_buf_t enc;
        m2d_buf_init(&enc, (size_t)1 << 30);
        bool ok = pq_rle_encode_i16(lv, n, bw, &enc, &err) && pq_rle_decode_levels(enc.data, enc.len, bw, n, back, &err) &&
                  (n == 0 || memcmp(lv, back, n * sizeof *lv) == 0);
        m2d_buf_free(&enc);
        CHECK(ok);
      }
    }
  free(v);
  free(lv);
  free(back);
}
