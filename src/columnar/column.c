#include "columnar/column.h"

#include <stdlib.h>
#include <string.h>

size_t m2d_col_type_width(m2d_col_type_t type, int32_t fixed_len) {
  switch (type) {
  case M2D_COL_BOOL: return 1;
  case M2D_COL_INT32: return 4;
  case M2D_COL_INT64: return 8;
  case M2D_COL_INT96: return 12;
  case M2D_COL_FLOAT: return 4;
  case M2D_COL_DOUBLE: return 8;
  case M2D_COL_FIXED: return (size_t)fixed_len;
  case M2D_COL_BYTES: return 0;
  }
  return 0;
}

void m2d_column_init(m2d_column_t *c, m2d_col_type_t type, int32_t fixed_len, int16_t max_def,
                     int16_t max_rep, size_t max_bytes) {
  memset(c, 0, sizeof *c);
  c->type = type;
  c->fixed_len = fixed_len;
  c->max_def = max_def;
  c->max_rep = max_rep;
  c->max_bytes = max_bytes ? max_bytes : (size_t)1 << 30;
}

void m2d_column_reset(m2d_column_t *c) {
  c->nlevels = 0;
  c->nvalues = 0;
  c->value_bytes = 0;
}

void m2d_column_free(m2d_column_t *c) {
  if (!c) return;
  free(c->def);
  free(c->rep);
  free(c->values);
  free(c->offsets);
  c->def = c->rep = NULL;
  c->values = NULL;
  c->offsets = NULL;
  c->level_cap = c->value_cap = c->offset_cap = 0;
  m2d_column_reset(c);
}

size_t m2d_column_memory(const m2d_column_t *c) {
  return c->level_cap * sizeof(int16_t) * ((c->max_def > 0) + (c->max_rep > 0)) + c->value_cap +
         c->offset_cap * sizeof(uint32_t);
}

/* Grows *p (of *cap elements of size elem) to hold at least need elements. */
static bool grow(m2d_column_t *c, void **p, size_t *cap, size_t need, size_t elem, m2d_error_t *err) {
  if (need <= *cap) return true;
  size_t ncap = *cap ? *cap : 256;
  while (ncap < need) ncap *= 2;
  size_t added = (ncap - *cap) * elem;
  if (m2d_column_memory(c) + added > c->max_bytes)
    return m2d_error_set(err, M2D_ERR_LIMIT, 0,
                         "a column of this batch would exceed %zu bytes: lower the row group / batch "
                         "size",
                         c->max_bytes);
  void *np = realloc(*p, ncap * elem);
  if (!np) return m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory growing a column to %zu bytes", ncap * elem);
  *p = np;
  *cap = ncap;
  return true;
}

static bool grow_levels(m2d_column_t *c, size_t need, m2d_error_t *err) {
  if (need <= c->level_cap) return true;
  size_t ncap = c->level_cap ? c->level_cap * 2 : 256;
  while (ncap < need) ncap *= 2;
  size_t arrays = (size_t)(c->max_def > 0) + (size_t)(c->max_rep > 0);
  if (m2d_column_memory(c) + (ncap - c->level_cap) * sizeof(int16_t) * arrays > c->max_bytes)
    return m2d_error_set(err, M2D_ERR_LIMIT, 0,
                         "a column of this batch would exceed %zu bytes: lower the row group / batch size",
                         c->max_bytes);
  if (c->max_def > 0) {
    int16_t *d = realloc(c->def, ncap * sizeof *d);
    if (!d) return m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory growing column levels");
    c->def = d;
  }
  if (c->max_rep > 0) {
    int16_t *r = realloc(c->rep, ncap * sizeof *r);
    if (!r) return m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory growing column levels");
    c->rep = r;
  }
  c->level_cap = ncap;
  return true;
}

bool m2d_column_push_level_slow(m2d_column_t *c, int16_t def, int16_t rep, m2d_error_t *err) {
  if (c->nlevels == c->level_cap && !grow_levels(c, c->nlevels + 1, err)) return false;
  if (c->max_def > 0) c->def[c->nlevels] = def;
  if (c->max_rep > 0) c->rep[c->nlevels] = rep;
  c->nlevels++;
  return true;
}

bool m2d_column_push_fixed(m2d_column_t *c, const void *p, m2d_error_t *err) {
  size_t w = m2d_col_type_width(c->type, c->fixed_len);
  if (!grow(c, (void **)&c->values, &c->value_cap, c->value_bytes + w, 1, err)) return false;
  memcpy(c->values + c->value_bytes, p, w);
  c->value_bytes += w;
  c->nvalues++;
  return true;
}

bool m2d_column_push_fixed_n(m2d_column_t *c, const void *p, size_t n, m2d_error_t *err) {
  size_t w = m2d_col_type_width(c->type, c->fixed_len);
  if (n && w > (SIZE_MAX - c->value_bytes) / n) return m2d_error_set(err, M2D_ERR_LIMIT, 0, "column too large");
  if (!grow(c, (void **)&c->values, &c->value_cap, c->value_bytes + n * w, 1, err)) return false;
  if (n) memcpy(c->values + c->value_bytes, p, n * w);
  c->value_bytes += n * w;
  c->nvalues += n;
  return true;
}

bool m2d_column_push_bytes(m2d_column_t *c, const void *p, size_t len, m2d_error_t *err) {
  if (len > UINT32_MAX - c->value_bytes)
    return m2d_error_set(err, M2D_ERR_LIMIT, 0, "a string/binary column of one batch exceeds 4 GiB");
  if (!grow(c, (void **)&c->offsets, &c->offset_cap, c->nvalues + 2, sizeof(uint32_t), err)) return false;
  if (!grow(c, (void **)&c->values, &c->value_cap, c->value_bytes + len, 1, err)) return false;
  if (c->nvalues == 0) c->offsets[0] = 0;
  if (len) memcpy(c->values + c->value_bytes, p, len);
  c->value_bytes += len;
  c->nvalues++;
  c->offsets[c->nvalues] = (uint32_t)c->value_bytes;
  return true;
}

bool m2d_column_push_bool(m2d_column_t *c, bool v, m2d_error_t *err) {
  uint8_t b = v ? 1 : 0;
  return m2d_column_push_fixed(c, &b, err);
}
bool m2d_column_push_i32(m2d_column_t *c, int32_t v, m2d_error_t *err) { return m2d_column_push_fixed(c, &v, err); }
bool m2d_column_push_i64(m2d_column_t *c, int64_t v, m2d_error_t *err) { return m2d_column_push_fixed(c, &v, err); }
bool m2d_column_push_f32(m2d_column_t *c, float v, m2d_error_t *err) { return m2d_column_push_fixed(c, &v, err); }
bool m2d_column_push_f64(m2d_column_t *c, double v, m2d_error_t *err) { return m2d_column_push_fixed(c, &v, err); }

const uint8_t *m2d_column_fixed_at(const m2d_column_t *c, size_t i) {
  return c->values + i * m2d_col_type_width(c->type, c->fixed_len);
}

const uint8_t *m2d_column_bytes_at(const m2d_column_t *c, size_t i, size_t *len) {
  *len = c->offsets[i + 1] - c->offsets[i];
  return c->values ? c->values + c->offsets[i] : (const uint8_t *)""; /* only empty values so far */
}

size_t m2d_column_rows(const m2d_column_t *c) {
  if (c->max_rep == 0) return c->nlevels;
  size_t n = 0;
  for (size_t i = 0; i < c->nlevels; i++) n += c->rep[i] == 0;
  return n;
}

int32_t m2d_decimal_fixed_len(int precision) {
  /* smallest n with 10^precision - 1 < 2^(8n - 1) */
  double bits = (double)precision * 3.321928094887362 + 1.0;
  int32_t n = (int32_t)((bits + 7.999) / 8);
  return n < 1 ? 1 : n;
}

