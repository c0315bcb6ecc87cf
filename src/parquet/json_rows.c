#include "parquet/json_rows.h"

#include "parquet/dremel.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct pq_json_rows {
  bool int96_micros;
  const pq_schema_t *schema;
  pq_dremel_t d;
};

pq_json_rows_t *pq_json_rows_new(const pq_schema_t *schema, const m2d_column_t *cols, const bool *selected,
                                 m2d_error_t *err) {
  pq_json_rows_t *j = calloc(1, sizeof *j);
  if (!j) return m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory"), NULL;
  if (!pq_dremel_init(&j->d, cols, selected, schema->nleaves, err)) {
    free(j);
    return NULL;
  }
  j->schema = schema;
  return j;
}

void pq_json_rows_int96_as_micros(pq_json_rows_t *j, bool on) { j->int96_micros = on; }

void pq_json_rows_destroy(pq_json_rows_t *j) {
  if (!j) return;
  pq_dremel_free(&j->d);
  free(j);
}

/* --- value formatting -------------------------------------------------------------------- */

static bool put(m2d_buf_t *o, const char *s, m2d_error_t *err) { return m2d_buf_append_str(o, s, err); }

static bool json_string(m2d_buf_t *o, const uint8_t *s, size_t n, m2d_error_t *err) {
  if (!m2d_buf_append_byte(o, '"', err)) return false;
  size_t i = 0;
  while (i < n) {
    uint8_t c = s[i];
    bool ok;
    if (c == '"' || c == '\\') ok = m2d_buf_append_byte(o, '\\', err) && m2d_buf_append_byte(o, c, err);
    else if (c == '\n') ok = put(o, "\\n", err);
    else if (c == '\r') ok = put(o, "\\r", err);
    else if (c == '\t') ok = put(o, "\\t", err);
    else if (c < 0x20) ok = m2d_buf_appendf(o, err, "\\u%04x", c);
    else if (c < 0x80) ok = m2d_buf_append_byte(o, c, err);
    else {
      /* validate one UTF-8 sequence; invalid bytes become U+FFFD */
      size_t len = c >= 0xF0 && c <= 0xF4 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 && c <= 0xDF ? 2 : 0;
      bool valid = len && i + len <= n;
      for (size_t k = 1; valid && k < len; k++) valid = (s[i + k] & 0xC0) == 0x80;
      if (valid && len == 3) {
        uint32_t cp = (uint32_t)(c & 0x0F) << 12 | (uint32_t)(s[i + 1] & 0x3F) << 6 | (s[i + 2] & 0x3F);
        valid = cp >= 0x800 && (cp < 0xD800 || cp > 0xDFFF);
      } else if (valid && len == 4) {
        uint32_t cp = (uint32_t)(c & 0x07) << 18 | (uint32_t)(s[i + 1] & 0x3F) << 12 | (uint32_t)(s[i + 2] & 0x3F) << 6 |
                      (s[i + 3] & 0x3F);
        valid = cp >= 0x10000 && cp <= 0x10FFFF;
      }
      if (valid) {
        ok = m2d_buf_append(o, s + i, len, err);
        i += len;
        if (!ok) return false;
        continue;
      }
      ok = put(o, "\\ufffd", err);
    }
    if (!ok) return false;
    i++;
  }
  return m2d_buf_append_byte(o, '"', err);
}

static bool base64(m2d_buf_t *o, const uint8_t *p, size_t n, m2d_error_t *err) {
  static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  if (!m2d_buf_append_byte(o, '"', err) || !m2d_buf_reserve(o, (n + 2) / 3 * 4 + 1, err)) return false;
  for (size_t i = 0; i < n; i += 3) {
    uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) | (i + 2 < n ? p[i + 2] : 0);
    char q[4] = {a[v >> 18 & 63], a[v >> 12 & 63], i + 1 < n ? a[v >> 6 & 63] : '=', i + 2 < n ? a[v & 63] : '='};
    m2d_buf_append(o, q, 4, err);
  }
  return m2d_buf_append_byte(o, '"', err);
}

static bool number_double(m2d_buf_t *o, double x, bool is_float, m2d_error_t *err) {
  if (isnan(x)) return put(o, "\"NaN\"", err);
  if (isinf(x)) return put(o, x > 0 ? "\"Infinity\"" : "\"-Infinity\"", err);
  char buf[40];
  for (int prec = is_float ? 6 : 15; prec <= 17; prec++) {
    snprintf(buf, sizeof buf, "%.*g", prec, x);
    if (is_float ? (float)strtod(buf, NULL) == (float)x : strtod(buf, NULL) == x) break;
  }
  if (x == 0 && signbit(x)) snprintf(buf, sizeof buf, "-0.0");
  /* keep it a floating-point number for JSON readers: "1" becomes "1.0" */
  if (!strpbrk(buf, ".eE")) strncat(buf, ".0", sizeof buf - strlen(buf) - 1);
  return put(o, buf, err);
}

/* Unscaled big-endian two's complement integer of up to 16 bytes. */
static bool be_int128(const uint8_t *p, size_t n, __int128 *v) {
  if (n == 0 || n > 16) return false;
  unsigned __int128 u = (p[0] & 0x80) ? ~(unsigned __int128)0 : 0;
  for (size_t i = 0; i < n; i++) u = u << 8 | p[i];
  *v = (__int128)u;
  return true;
}

static bool decimal(m2d_buf_t *o, __int128 v, int scale, m2d_error_t *err) {
  if (scale < 0 || scale > 38)
    return m2d_error_set(err, M2D_ERR_FORMAT, 0, "invalid decimal scale %d in the schema (0 to 38)", scale);
  char digits[64];
  int n = 0;
  bool neg = v < 0;
  unsigned __int128 u = neg ? -(unsigned __int128)v : (unsigned __int128)v;
  do {
    digits[n++] = (char)('0' + (int)(u % 10));
    u /= 10;
  } while (u && n < 60);
  while (n <= scale) digits[n++] = '0';
  char s[80];
  int k = 0;
  s[k++] = '"';
  if (neg) s[k++] = '-';
  for (int i = n - 1; i >= 0; i--) {
    s[k++] = digits[i];
    if (i == scale && scale > 0) s[k++] = '.';
  }
  s[k++] = '"';
  return m2d_buf_append(o, s, (size_t)k, err);
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = (unsigned)(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  *d = doy - (153 * mp + 2) / 5 + 1;
  *m = mp < 10 ? mp + 3 : mp - 9;
  *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static int year_text(char *s, size_t n, int64_t y) {
  if (y >= 0 && y <= 9999) return snprintf(s, n, "%04lld", (long long)y);
  return snprintf(s, n, "%s%lld", y < 0 ? "-" : "+", (long long)(y < 0 ? -y : y));
}

static bool date(m2d_buf_t *o, int64_t days, m2d_error_t *err) {
  int64_t y;
  unsigned m, d;
  civil_from_days(days, &y, &m, &d);
  char ys[32];
  year_text(ys, sizeof ys, y);
  return m2d_buf_appendf(o, err, "\"%s-%02u-%02u\"", ys, m, d);
}

static bool timestamp_parts(m2d_buf_t *o, int64_t days, int64_t rem, int64_t frac, int64_t per_sec, int digits, bool utc,
                            m2d_error_t *err) {
  int64_t y;
  unsigned m, d;
  civil_from_days(days, &y, &m, &d);
  char ys[32];
  year_text(ys, sizeof ys, y);
  int64_t scaled = digits == 9 ? frac * (1000000000 / per_sec) : frac * (1000000 / (per_sec > 1000000 ? 1000000 : per_sec));
  return m2d_buf_appendf(o, err, "\"%s-%02u-%02uT%02d:%02d:%02d.%0*lld%s\"", ys, m, d, (int)(rem / 3600),
                         (int)(rem / 60 % 60), (int)(rem % 60), digits, (long long)scaled, utc ? "Z" : "");
}

/* A timestamp from a count of units (1e3, 1e6, 1e9 per second) since the epoch. */
static bool timestamp(m2d_buf_t *o, int64_t v, int64_t per_sec, int digits, bool utc, m2d_error_t *err) {
  int64_t secs = v / per_sec, frac = v % per_sec;
  if (frac < 0) {
    frac += per_sec;
    secs--;
  }
  int64_t days = secs / 86400, rem = secs % 86400;
  if (rem < 0) {
    rem += 86400;
    days--;
  }
  return timestamp_parts(o, days, rem, frac, per_sec, digits, utc, err);
}

static bool time_of_day(m2d_buf_t *o, int64_t v, int64_t per_sec, int digits, m2d_error_t *err) {
  int64_t secs = v / per_sec, frac = v % per_sec;
  int64_t scaled = digits == 9 ? frac * (1000000000 / per_sec) : frac * (1000000 / (per_sec > 1000000 ? 1000000 : per_sec));
  return m2d_buf_appendf(o, err, "\"%02d:%02d:%02d.%0*lld\"", (int)(secs / 3600), (int)(secs / 60 % 60),
                         (int)(secs % 60), digits, (long long)scaled);
}

static double half_to_double(uint16_t h) {
  int e = (h >> 10) & 0x1f, m = h & 0x3ff;
  double v = e == 0 ? ldexp(m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexp(m + 1024, e - 25);
  return (h & 0x8000) ? -v : v;
}

static bool is_conv(const pq_node_t *l, pq_converted_t c) { return l->has_converted && l->converted == c; }

bool pq_json_value(const pq_node_t *l, const uint8_t *v, size_t len, m2d_buf_t *o, m2d_error_t *err) {
  const pq_logical_type_t *lt = &l->logical;
  bool is_dec = lt->kind == PQ_LT_DECIMAL || is_conv(l, PQ_CT_DECIMAL);
  int scale = lt->kind == PQ_LT_DECIMAL ? lt->scale : l->scale;
  switch (l->type) {
  case PQ_BOOLEAN: return put(o, v[0] ? "true" : "false", err);
  case PQ_INT32: {
    int32_t x;
    memcpy(&x, v, 4);
    if (is_dec) return decimal(o, x, scale, err);
    if (lt->kind == PQ_LT_DATE || is_conv(l, PQ_CT_DATE)) return date(o, x, err);
    if ((lt->kind == PQ_LT_TIME && lt->unit == PQ_UNIT_MILLIS) || is_conv(l, PQ_CT_TIME_MILLIS))
      return time_of_day(o, x, 1000, 6, err);
    bool uns = (lt->kind == PQ_LT_INTEGER && !lt->is_signed) || is_conv(l, PQ_CT_UINT_8) || is_conv(l, PQ_CT_UINT_16) ||
               is_conv(l, PQ_CT_UINT_32);
    return uns ? m2d_buf_appendf(o, err, "%u", (uint32_t)x) : m2d_buf_appendf(o, err, "%d", x);
  }
  case PQ_INT64: {
    int64_t x;
    memcpy(&x, v, 8);
    if (is_dec) return decimal(o, x, scale, err);
    if (lt->kind == PQ_LT_TIMESTAMP) {
      int64_t per = lt->unit == PQ_UNIT_MILLIS ? 1000 : lt->unit == PQ_UNIT_NANOS ? 1000000000 : 1000000;
      return timestamp(o, x, per, lt->unit == PQ_UNIT_NANOS ? 9 : 6, lt->is_adjusted_to_utc, err);
    }
    if (is_conv(l, PQ_CT_TIMESTAMP_MILLIS)) return timestamp(o, x, 1000, 6, true, err);
    if (is_conv(l, PQ_CT_TIMESTAMP_MICROS)) return timestamp(o, x, 1000000, 6, true, err);
    if (lt->kind == PQ_LT_TIME || is_conv(l, PQ_CT_TIME_MICROS)) {
      bool nanos = lt->kind == PQ_LT_TIME && lt->unit == PQ_UNIT_NANOS;
      return time_of_day(o, x, nanos ? 1000000000 : 1000000, nanos ? 9 : 6, err);
    }
    bool uns = (lt->kind == PQ_LT_INTEGER && !lt->is_signed) || is_conv(l, PQ_CT_UINT_64);
    return uns ? m2d_buf_appendf(o, err, "%llu", (unsigned long long)x) : m2d_buf_appendf(o, err, "%lld", (long long)x);
  }
  case PQ_INT96: {
    int64_t nanos;
    int32_t jday;
    memcpy(&nanos, v, 8);
    memcpy(&jday, v + 8, 4);
    int64_t days = (int64_t)jday - 2440588; /* Julian day of 1970-01-01 */
    /* writers may leave the time of day outside [0, 1 day): normalize in 128 bits */
    __int128 total = (__int128)days * 86400 * 1000000000 + nanos, day_ns = (__int128)86400 * 1000000000;
    __int128 d = total / day_ns, rem = total % day_ns;
    if (rem < 0) rem += day_ns, d--;
    return timestamp_parts(o, (int64_t)d, (int64_t)(rem / 1000000000), (int64_t)(rem % 1000000000), 1000000000, 9, true, err);
  }
  case PQ_FLOAT: {
    float x;
    memcpy(&x, v, 4);
    return number_double(o, x, true, err);
  }
  case PQ_DOUBLE: {
    double x;
    memcpy(&x, v, 8);
    return number_double(o, x, false, err);
  }
  case PQ_BYTE_ARRAY:
  case PQ_FIXED_LEN_BYTE_ARRAY:
    if (is_dec) {
      __int128 d;
      if (!be_int128(v, len, &d)) return base64(o, v, len, err);
      return decimal(o, d, scale, err);
    }
    if (lt->kind == PQ_LT_STRING || lt->kind == PQ_LT_ENUM || lt->kind == PQ_LT_JSON || is_conv(l, PQ_CT_UTF8) ||
        is_conv(l, PQ_CT_ENUM) || is_conv(l, PQ_CT_JSON))
      return json_string(o, v, len, err);
    if (lt->kind == PQ_LT_UUID && len == 16) {
      static const char hex[] = "0123456789abcdef";
      char s[40];
      int k = 0;
      s[k++] = '"';
      for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10) s[k++] = '-';
        s[k++] = hex[v[i] >> 4];
        s[k++] = hex[v[i] & 15];
      }
      s[k++] = '"';
      return m2d_buf_append(o, s, (size_t)k, err);
    }
    if (lt->kind == PQ_LT_FLOAT16 && len == 2) return number_double(o, half_to_double((uint16_t)(v[0] | v[1] << 8)), true, err);
    return base64(o, v, len, err);
  }
  return put(o, "null", err);
}

/* --- assembly ---------------------------------------------------------------------------- */

static bool value(pq_json_rows_t *j, const pq_node_t *n, m2d_buf_t *o, int depth, m2d_error_t *err);

static bool leaf_value(pq_json_rows_t *j, const pq_node_t *l, m2d_buf_t *o, m2d_error_t *err) {
  const uint8_t *v;
  size_t len;
  if (!pq_dremel_take(&j->d, l, &v, &len, err)) return false;
  if (l->type == PQ_INT96 && j->int96_micros) {
    /* a Delta timestamp is microseconds: print the INT96 value at that precision */
    m2d_buf_t tmp;
    m2d_buf_init(&tmp, 128);
    bool ok = pq_json_value(l, v, len, &tmp, err) && m2d_buf_terminate(&tmp, err);
    char *dot = ok ? strrchr((char *)tmp.data, '.') : NULL;
    if (dot && strlen(dot) == 12) memmove(dot + 7, dot + 10, 3); /* .nnnnnnnnnZ" -> .nnnnnnZ" */
    ok = ok && put(o, (char *)tmp.data, err);
    m2d_buf_free(&tmp);
    return ok;
  }
  return pq_json_value(l, v, len, o, err);
}

static bool struct_value(pq_json_rows_t *j, const pq_node_t *g, m2d_buf_t *o, int depth, m2d_error_t *err) {
  if (!m2d_buf_append_byte(o, '{', err)) return false;
  bool first = true;
  for (int i = 0; i < g->nchildren; i++) {
    const pq_node_t *c = g->children[i];
    if (!pq_dremel_node_selected(&j->d, c)) continue;
    if ((!first && !m2d_buf_append_byte(o, ',', err)) || !json_string(o, (const uint8_t *)c->name, strlen(c->name), err) ||
        !m2d_buf_append_byte(o, ':', err) || !value(j, c, o, depth + 1, err))
      return false;
    first = false;
  }
  for (int i = 0; i < g->nnull_fields; i++) {
    const char *n = g->null_fields[i];
    if ((!first && !m2d_buf_append_byte(o, ',', err)) || !json_string(o, (const uint8_t *)n, strlen(n), err) ||
        !m2d_buf_append_str(o, ":null", err))
      return false;
    first = false;
  }
  return m2d_buf_append_byte(o, '}', err);
}

/* The list/map shape of a group: its repeated child and the element node (LogicalTypes.md
 * backward-compatibility rules). Returns false when g is a plain struct. */
bool pq_list_shape(const pq_node_t *g, const pq_node_t **rep, const pq_node_t **elem, bool *is_map) {
  bool list = g->logical.kind == PQ_LT_LIST || (g->has_converted && g->converted == PQ_CT_LIST);
  bool map = g->logical.kind == PQ_LT_MAP || (g->has_converted && (g->converted == PQ_CT_MAP || g->converted == PQ_CT_MAP_KEY_VALUE));
  if ((!list && !map) || g->nchildren != 1 || g->children[0]->repetition != PQ_REPEATED) return false;
  const pq_node_t *r = g->children[0];
  *rep = r;
  *is_map = map && r->is_group && r->nchildren == 2;
  if (*is_map) {
    *elem = r;
    return true;
  }
  char tuple[300];
  snprintf(tuple, sizeof tuple, "%s_tuple", g->name);
  if (!r->is_group || r->nchildren != 1 || strcmp(r->name, "array") == 0 || strcmp(r->name, tuple) == 0) *elem = r;
  else *elem = r->children[0];
  return true;
}

/* The entries of a repeated node r (list elements or map entries). */
static bool repeated_values(pq_json_rows_t *j, const pq_node_t *r, const pq_node_t *elem, bool is_map, m2d_buf_t *o,
                            int depth, m2d_error_t *err) {
  const pq_node_t *l = pq_dremel_first_leaf(&j->d, r);
  bool map_object = is_map && !r->children[0]->is_group &&
                    (r->children[0]->logical.kind == PQ_LT_STRING || (r->children[0]->has_converted && r->children[0]->converted == PQ_CT_UTF8));
  if (!m2d_buf_append_byte(o, map_object ? '{' : '[', err)) return false;
  if (pq_dremel_def_at(&j->d, l) < r->max_def) { /* an empty list or map */
    return pq_dremel_skip(&j->d, r, err) && m2d_buf_append_byte(o, map_object ? '}' : ']', err);
  }
  bool first = true;
  for (;;) {
    if (!first && !m2d_buf_append_byte(o, ',', err)) return false;
    first = false;
    bool ok;
    if (is_map) {
      const pq_node_t *k = r->children[0], *v = r->children[1];
      bool kv_sel = pq_dremel_node_selected(&j->d, k), v_sel = pq_dremel_node_selected(&j->d, v);
      if (map_object) {
        ok = (kv_sel ? value(j, k, o, depth + 1, err) : m2d_buf_append_str(o, "\"\"", err)) && m2d_buf_append_byte(o, ':', err) &&
             (v_sel ? value(j, v, o, depth + 1, err) : m2d_buf_append_str(o, "null", err));
      } else {
        ok = m2d_buf_append_byte(o, '[', err) && (kv_sel ? value(j, k, o, depth + 1, err) : m2d_buf_append_str(o, "null", err)) &&
             m2d_buf_append_byte(o, ',', err) && (v_sel ? value(j, v, o, depth + 1, err) : m2d_buf_append_str(o, "null", err)) &&
             m2d_buf_append_byte(o, ']', err);
      }
    } else if (elem == r) { /* the repeated node is the element itself */
      const pq_node_t *rep2, *elem2;
      bool map2;
      if (r->is_group && pq_list_shape(r, &rep2, &elem2, &map2)) /* itself an annotated list or map */
        ok = repeated_values(j, rep2, elem2, map2, o, depth + 1, err);
      else
        ok = r->is_group ? struct_value(j, r, o, depth + 1, err) : leaf_value(j, r, o, err);
    } else {
      ok = value(j, elem, o, depth + 1, err);
    }
    if (!ok) return false;
    if (!pq_dremel_has_slot(&j->d, l)) break;
    const m2d_column_t *c = &j->d.cols[l->leaf_index];
    if (c->rep[j->d.slot[l->leaf_index]] < r->max_rep) break; /* the next slot starts another list */
  }
  return m2d_buf_append_byte(o, map_object ? '}' : ']', err);
}

static bool value(pq_json_rows_t *j, const pq_node_t *n, m2d_buf_t *o, int depth, m2d_error_t *err) {
  if (depth > 128) return m2d_error_set(err, M2D_ERR_FORMAT, 0, "nesting too deep");
  const pq_node_t *l = pq_dremel_first_leaf(&j->d, n);
  if (!l) return m2d_buf_append_str(o, "null", err);
  if (!pq_dremel_has_slot(&j->d, l)) return m2d_error_set(err, M2D_ERR_FORMAT, 0, "corrupt column: levels end inside a row");
  if (n->repetition == PQ_REPEATED) /* a bare repeated field: a list of itself */
    return repeated_values(j, n, n, false, o, depth, err);
  if (pq_dremel_def_at(&j->d, l) < n->max_def) { /* null here (or above, already handled by the caller) */
    return pq_dremel_skip(&j->d, n, err) && m2d_buf_append_str(o, "null", err);
  }
  if (!n->is_group) return leaf_value(j, n, o, err);
  const pq_node_t *rep, *elem;
  bool is_map;
  if (pq_list_shape(n, &rep, &elem, &is_map)) return repeated_values(j, rep, elem, is_map, o, depth, err);
  return struct_value(j, n, o, depth, err);
}


bool pq_json_rows_next(pq_json_rows_t *j, m2d_buf_t *out, bool *end, m2d_error_t *err) {
  *end = false;
  const pq_node_t *l = pq_dremel_first_leaf(&j->d, j->schema->root);
  if (!l || !pq_dremel_has_slot(&j->d, l)) {
    *end = true;
    return false;
  }
  if (j->d.slot[l->leaf_index] == 0 && !pq_check_maps(j->schema->root, err)) return false;
  if (j->d.cols[l->leaf_index].max_rep > 0 && j->d.cols[l->leaf_index].rep[j->d.slot[l->leaf_index]] != 0)
    return m2d_error_set(err, M2D_ERR_FORMAT, 0, "corrupt column: a row starts with a repetition level above 0");
  return struct_value(j, j->schema->root, out, 0, err);
}

bool pq_json_rows_next_fields(pq_json_rows_t *j, const pq_json_field_t *fields, int n, m2d_buf_t *out, bool *end,
                              m2d_error_t *err) {
  *end = false;
  const pq_node_t *l = pq_dremel_first_leaf(&j->d, j->schema->root);
  if (l && !pq_dremel_has_slot(&j->d, l)) {
    *end = true;
    return false;
  }
  if (l && j->d.slot[l->leaf_index] == 0 && !pq_check_maps(j->schema->root, err)) return false;
  if (!m2d_buf_append_byte(out, '{', err)) return false;
  for (int i = 0; i < n; i++) {
    if ((i && !m2d_buf_append_byte(out, ',', err)) ||
        !json_string(out, (const uint8_t *)fields[i].name, strlen(fields[i].name), err) || !m2d_buf_append_byte(out, ':', err))
      return false;
    bool ok = fields[i].node && pq_dremel_node_selected(&j->d, fields[i].node) ? value(j, fields[i].node, out, 1, err)
                                                                 : put(out, fields[i].literal ? fields[i].literal : "null", err);
    if (!ok) return false;
  }
  return m2d_buf_append_byte(out, '}', err);
}
