#include "parquet/json_input.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct pq_json_input {
  const pq_schema_t *schema;
  m2d_column_t *cols;
  size_t rows;
  struct {
    size_t nlevels, nvalues, value_bytes;
  } *mark;
  char path[1024];
  uint8_t *scratch;
  size_t scratch_cap;
};


pq_json_input_t *pq_json_input_new(const pq_schema_t *schema, m2d_error_t *err) {
  pq_json_input_t *in = calloc(1, sizeof *in);
  if (!in) return m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory"), NULL;
  in->schema = schema;
  size_t n = (size_t)(schema->nleaves ? schema->nleaves : 1);
  in->cols = calloc(n, sizeof *in->cols);
  in->mark = calloc(n, sizeof *in->mark);
  if (!in->cols || !in->mark) {
    pq_json_input_destroy(in);
    return m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory"), NULL;
  }
  for (int i = 0; i < schema->nleaves; i++) {
    const pq_node_t *l = schema->leaves[i];
    m2d_column_init(&in->cols[i], pq_leaf_col_type(l), l->type_length, l->max_def, l->max_rep, 0);
  }
  return in;
}

void pq_json_input_destroy(pq_json_input_t *in) {
  if (!in) return;
  if (in->cols)
    for (int i = 0; i < in->schema->nleaves; i++) m2d_column_free(&in->cols[i]);
  free(in->cols);
  free(in->mark);
  free(in->scratch);
  free(in);
}

m2d_column_t *pq_json_input_columns(pq_json_input_t *in) { return in->cols; }
size_t pq_json_input_rows(const pq_json_input_t *in) { return in->rows; }

size_t pq_json_input_memory(const pq_json_input_t *in) {
  size_t n = 0;
  for (int i = 0; i < in->schema->nleaves; i++) n += m2d_column_memory(&in->cols[i]);
  return n;
}

void pq_json_input_reset(pq_json_input_t *in) {
  for (int i = 0; i < in->schema->nleaves; i++) m2d_column_reset(&in->cols[i]);
  in->rows = 0;
}

/* --- value parsers ------------------------------------------------------------------------ */

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = (unsigned)(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + (int64_t)doe - 719468;
}

/* "[+-]YYYY-MM-DD" at s; returns the characters used or 0. */
static int parse_ymd(const char *s, int64_t *days) {
  const char *p = s;
  int sign = 1;
  if (*p == '+' || *p == '-') sign = *p++ == '-' ? -1 : 1;
  char *end;
  long long y = strtoll(p, &end, 10);
  if (end - p < 4 || *end != '-') return 0;
  p = end + 1;
  if (!(p[0] >= '0' && p[0] <= '9' && p[1] >= '0' && p[1] <= '9' && p[2] == '-' && p[3] >= '0' && p[3] <= '9' &&
        p[4] >= '0' && p[4] <= '9'))
    return 0;
  unsigned m = (unsigned)((p[0] - '0') * 10 + (p[1] - '0')), d = (unsigned)((p[3] - '0') * 10 + (p[4] - '0'));
  if (m < 1 || m > 12 || d < 1 || d > 31) return 0;
  *days = days_from_civil(sign * y, m, d);
  return (int)(p + 5 - s);
}

bool m2d_parse_date(const char *s, int32_t *days) {
  int64_t d;
  int n = parse_ymd(s, &d);
  if (!n || s[n] || d < INT32_MIN || d > INT32_MAX) return false;
  *days = (int32_t)d;
  return true;
}

bool m2d_parse_timestamp(const char *s, bool utc, int64_t *micros) {
  int64_t days;
  int n = parse_ymd(s, &days);
  if (!n || (s[n] != 'T' && s[n] != ' ')) return false;
  const char *p = s + n + 1;
  int hh, mm, ss, used = 0;
  if (sscanf(p, "%2d:%2d:%2d%n", &hh, &mm, &ss, &used) != 3 || used != 8 || hh > 23 || mm > 59 || ss > 60) return false;
  p += 8;
  int64_t frac = 0;
  if (*p == '.') {
    p++;
    int digits = 0;
    while (*p >= '0' && *p <= '9') {
      if (digits < 6) frac = frac * 10 + (*p - '0');
      else if (*p != '0') return false; /* finer than microseconds: not exact */
      digits++;
      p++;
    }
    if (!digits) return false;
    for (; digits < 6; digits++) frac *= 10;
  }
  if (utc ? strcmp(p, "Z") != 0 && strcmp(p, "+00:00") != 0 : *p != '\0') return false;
  *micros = ((days * 86400 + hh * 3600 + mm * 60 + ss) * 1000000) + frac;
  return true;
}

bool m2d_parse_decimal(const char *s, int precision, int scale, __int128 *unscaled) {
  const char *p = s;
  bool neg = false;
  if (*p == '-' || *p == '+') neg = *p++ == '-';
  __int128 v = 0;
  int digits = 0, frac = -1;
  bool any = false;
  for (; *p; p++) {
    if (*p == '.' && frac < 0) {
      frac = 0;
      continue;
    }
    if (*p < '0' || *p > '9') return false;
    any = true;
    if (frac >= 0) {
      if (frac >= scale) {
        if (*p != '0') return false; /* more fraction digits than the scale */
        continue;
      }
      frac++;
    }
    v = v * 10 + (*p - '0');
    if (v) digits++;
    if (digits > 38) return false;
  }
  if (!any) return false;
  for (int f = frac < 0 ? 0 : frac; f < scale; f++) v *= 10;
  __int128 limit = 1;
  for (int i = 0; i < precision; i++) limit *= 10;
  if (v >= limit) return false;
  *unscaled = neg ? -v : v;
  return true;
}

long m2d_base64_decode(const char *s, size_t len, uint8_t *out, size_t cap) {
  static int8_t map[256];
  static bool ready;
  if (!ready) {
    memset(map, -1, sizeof map);
    const char *a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (int i = 0; i < 64; i++) map[(unsigned char)a[i]] = (int8_t)i;
    ready = true;
  }
  size_t o = 0;
  uint32_t acc = 0;
  int bits = 0;
  size_t i = 0;
  for (; i < len && s[i] != '='; i++) {
    int v = map[(unsigned char)s[i]];
    if (v < 0) return -1;
    acc = acc << 6 | (uint32_t)v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      if (o >= cap) return -1;
      out[o++] = (uint8_t)(acc >> bits);
    }
  }
  for (; i < len; i++)
    if (s[i] != '=') return -1;
  return (long)o;
}

/* --- shredding ---------------------------------------------------------------------------- */

static bool bad(pq_json_input_t *in, m2d_error_t *err, const char *want) {
  return m2d_error_set(err, M2D_ERR_FORMAT, 0, "field '%s': expected %s", in->path[0] ? in->path : "(row)", want);
}

static bool null_at(pq_json_input_t *in, const pq_node_t *n, int16_t def, int16_t rep, m2d_error_t *err) {
  if (!n->is_group) return m2d_column_push_level(&in->cols[n->leaf_index], def, rep, err);
  for (int i = 0; i < n->nchildren; i++)
    if (!null_at(in, n->children[i], def, rep, err)) return false;
  return true;
}

static bool push_decimal(m2d_column_t *c, __int128 v, m2d_error_t *err) {
  if (c->type == M2D_COL_INT32) return m2d_column_push_i32(c, (int32_t)v, err);
  if (c->type == M2D_COL_INT64) return m2d_column_push_i64(c, (int64_t)v, err);
  uint8_t be[32];
  for (int i = c->fixed_len - 1; i >= 0; i--) {
    be[i] = (uint8_t)(v & 0xff);
    v >>= 8;
  }
  return m2d_column_push_fixed(c, be, err);
}

static bool leaf_value(pq_json_input_t *in, const pq_node_t *n, json_t *v, int16_t rep, m2d_error_t *err) {
  m2d_column_t *c = &in->cols[n->leaf_index];
  const pq_logical_type_t *lt = &n->logical;
  if (!m2d_column_push_level(c, n->max_def, rep, err)) return false;
  if (lt->kind == PQ_LT_DECIMAL) {
    char buf[64];
    const char *s = json_string_value(v);
    if (!s && json_is_integer(v)) {
      snprintf(buf, sizeof buf, "%lld", (long long)json_integer_value(v));
      s = buf;
    }
    __int128 u;
    if (!s || !m2d_parse_decimal(s, lt->precision, lt->scale, &u)) return bad(in, err, "a decimal string that fits");
    return push_decimal(c, u, err);
  }
  switch (n->type) {
  case PQ_BOOLEAN:
    if (!json_is_boolean(v)) return bad(in, err, "true or false");
    return m2d_column_push_bool(c, json_is_true(v), err);
  case PQ_INT32: {
    if (lt->kind == PQ_LT_DATE) {
      int32_t d;
      if (!json_is_string(v) || !m2d_parse_date(json_string_value(v), &d)) return bad(in, err, "a date \"YYYY-MM-DD\"");
      return m2d_column_push_i32(c, d, err);
    }
    if (!json_is_integer(v)) return bad(in, err, "an integer");
    json_int_t x = json_integer_value(v);
    int bits = lt->kind == PQ_LT_INTEGER ? lt->bit_width : 32;
    json_int_t lo = -((json_int_t)1 << (bits - 1)), hi = ((json_int_t)1 << (bits - 1)) - 1;
    if (x < lo || x > hi) return bad(in, err, "an integer in range");
    return m2d_column_push_i32(c, (int32_t)x, err);
  }
  case PQ_INT64: {
    if (lt->kind == PQ_LT_TIMESTAMP) {
      int64_t us;
      if (!json_is_string(v) || !m2d_parse_timestamp(json_string_value(v), lt->is_adjusted_to_utc, &us))
        return bad(in, err, lt->is_adjusted_to_utc ? "a timestamp \"YYYY-MM-DDTHH:MM:SS.ffffffZ\"" : "a timestamp \"YYYY-MM-DDTHH:MM:SS.ffffff\"");
      return m2d_column_push_i64(c, us, err);
    }
    if (!json_is_integer(v)) return bad(in, err, "an integer");
    return m2d_column_push_i64(c, (int64_t)json_integer_value(v), err);
  }
  case PQ_FLOAT:
  case PQ_DOUBLE: {
    double x;
    if (json_is_number(v)) x = json_number_value(v);
    else if (json_is_string(v) && strcmp(json_string_value(v), "NaN") == 0) x = NAN;
    else if (json_is_string(v) && strcmp(json_string_value(v), "Infinity") == 0) x = INFINITY;
    else if (json_is_string(v) && strcmp(json_string_value(v), "-Infinity") == 0) x = -INFINITY;
    else return bad(in, err, "a number, \"NaN\", \"Infinity\" or \"-Infinity\"");
    return n->type == PQ_FLOAT ? m2d_column_push_f32(c, (float)x, err) : m2d_column_push_f64(c, x, err);
  }
  case PQ_BYTE_ARRAY:
  case PQ_FIXED_LEN_BYTE_ARRAY: {
    if (!json_is_string(v)) return bad(in, err, "a string");
    const char *s = json_string_value(v);
    size_t len = json_string_length(v);
    if (lt->kind == PQ_LT_STRING || lt->kind == PQ_LT_JSON || lt->kind == PQ_LT_ENUM) return m2d_column_push_bytes(c, s, len, err);
    if (len / 4 * 3 + 3 > in->scratch_cap) {
      size_t cap = len / 4 * 3 + 64;
      uint8_t *p = realloc(in->scratch, cap);
      if (!p) return m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory");
      in->scratch = p;
      in->scratch_cap = cap;
    }
    long n2 = m2d_base64_decode(s, len, in->scratch, in->scratch_cap);
    if (n2 < 0) return bad(in, err, "base64");
    if (n->type == PQ_FIXED_LEN_BYTE_ARRAY) {
      if (n2 != n->type_length) return bad(in, err, "base64 of the fixed length");
      return m2d_column_push_fixed(c, in->scratch, err);
    }
    return m2d_column_push_bytes(c, in->scratch, (size_t)n2, err);
  }
  default: return bad(in, err, "a supported type");
  }
}

static bool value(pq_json_input_t *in, const pq_node_t *n, json_t *v, int16_t rep, int depth, m2d_error_t *err);

static size_t path_push(pq_json_input_t *in, const char *name) {
  size_t old = strlen(in->path);
  snprintf(in->path + old, sizeof in->path - old, "%s%s", old ? "." : "", name);
  return old;
}

static bool fields(pq_json_input_t *in, const pq_node_t *g, json_t *obj, int16_t rep, int depth, m2d_error_t *err) {
  if (!json_is_object(obj)) return bad(in, err, "an object");
  size_t present = 0;
  for (int i = 0; i < g->nchildren; i++) {
    const pq_node_t *c = g->children[i];
    json_t *v = json_object_get(obj, c->name);
    if (v) present++;
    size_t old = path_push(in, c->name);
    bool ok = value(in, c, v, rep, depth + 1, err);
    in->path[old] = '\0';
    if (!ok) return false;
  }
  if (present != json_object_size(obj)) {
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v) {
      bool known = false;
      for (int i = 0; i < g->nchildren && !known; i++) known = strcmp(g->children[i]->name, key) == 0;
      if (!known) {
        size_t old = path_push(in, key);
        bool r = m2d_error_set(err, M2D_ERR_FORMAT, 0, "field '%s' is not in the schema", in->path);
        in->path[old] = '\0';
        return r;
      }
    }
  }
  return true;
}

static bool value(pq_json_input_t *in, const pq_node_t *n, json_t *v, int16_t rep, int depth, m2d_error_t *err) {
  if (depth > 100) return bad(in, err, "less nesting");
  if (!v || json_is_null(v)) {
    if (n->repetition == PQ_REQUIRED) return bad(in, err, "a value (the column is not nullable)");
    return null_at(in, n, (int16_t)(n->max_def - 1), rep, err);
  }
  if (!n->is_group) return leaf_value(in, n, v, rep, err);
  if (n->logical.kind == PQ_LT_LIST || (n->has_converted && n->converted == PQ_CT_LIST)) {
    if (!json_is_array(v)) return bad(in, err, "an array");
    const pq_node_t *list = n->children[0], *elem = list->children[0];
    if (json_array_size(v) == 0) return null_at(in, n, n->max_def, rep, err);
    size_t i;
    json_t *e;
    json_array_foreach(v, i, e) {
      char idx[24];
      snprintf(idx, sizeof idx, "%zu", i);
      size_t old = path_push(in, idx);
      bool ok = value(in, elem, e, i == 0 ? rep : list->max_rep, depth + 1, err);
      in->path[old] = '\0';
      if (!ok) return false;
    }
    return true;
  }
  if (n->logical.kind == PQ_LT_MAP || (n->has_converted && n->converted == PQ_CT_MAP)) {
    const pq_node_t *kv = n->children[0], *key = kv->children[0], *val = kv->nchildren > 1 ? kv->children[1] : NULL;
    size_t count = json_is_object(v) ? json_object_size(v) : json_is_array(v) ? json_array_size(v) : (size_t)-1;
    if (count == (size_t)-1) return bad(in, err, "an object or an array of [key, value] pairs");
    if (count == 0) return null_at(in, n, n->max_def, rep, err);
    size_t i = 0;
    if (json_is_object(v)) {
      const char *k;
      json_t *x;
      json_object_foreach(v, k, x) {
        int16_t r = i++ == 0 ? rep : kv->max_rep;
        json_t *ks = json_string(k);
        size_t old = path_push(in, k);
        bool ok = value(in, key, ks, r, depth + 1, err) && (!val || value(in, val, x, r, depth + 1, err));
        in->path[old] = '\0';
        json_decref(ks);
        if (!ok) return false;
      }
    } else {
      json_t *pair;
      json_array_foreach(v, i, pair) {
        if (!json_is_array(pair) || json_array_size(pair) != 2) return bad(in, err, "[key, value] pairs");
        int16_t r = i == 0 ? rep : kv->max_rep;
        if (!value(in, key, json_array_get(pair, 0), r, depth + 1, err) ||
            (val && !value(in, val, json_array_get(pair, 1), r, depth + 1, err)))
          return false;
      }
    }
    return true;
  }
  return fields(in, n, v, rep, depth, err);
}

bool pq_json_input_add(pq_json_input_t *in, const char *json, size_t len, m2d_error_t *err) {
  json_error_t je;
  json_t *row = json_loadb(json, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
  if (!row) return m2d_error_set(err, M2D_ERR_FORMAT, 0, "invalid JSON at column %d: %s", je.column, je.text);
  for (int i = 0; i < in->schema->nleaves; i++) {
    in->mark[i].nlevels = in->cols[i].nlevels;
    in->mark[i].nvalues = in->cols[i].nvalues;
    in->mark[i].value_bytes = in->cols[i].value_bytes;
  }
  in->path[0] = '\0';
  bool ok = fields(in, in->schema->root, row, 0, 0, err);
  json_decref(row);
  if (!ok) {
    for (int i = 0; i < in->schema->nleaves; i++) {
      in->cols[i].nlevels = in->mark[i].nlevels;
      in->cols[i].nvalues = in->mark[i].nvalues;
      in->cols[i].value_bytes = in->mark[i].value_bytes;
    }
    return false;
  }
  in->rows++;
  return true;
}
