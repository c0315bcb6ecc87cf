#include "columnar/shred.h"

#include "schema/bson_value.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MIN_DATE_MS (-62135596800000LL) /* 0001-01-01 */
#define MAX_DATE_MS (253402300799999LL) /* 9999-12-31T23:59:59.999 */

typedef struct plan plan_t;
struct plan {
  const m2d_dtype_t *t;
  int16_t def;       /* definition level when this node holds a value */
  int16_t child_rep; /* arrays and maps: repetition level of their entries */
  int first_leaf, nleaves;
  plan_t *children; /* struct fields in order; array: [element]; map: [key, value] */
  int nchildren;
};

struct m2d_shredder {
  plan_t root;
  m2d_column_t *cols;
  int ncols;
  bool rescue_column;
  char *skip_field; /* a top-level field kept elsewhere (a partition column), or NULL */
  size_t rows;
  bson_t rescued; /* this row's rescued values */
  int nrescued;
  char path[2048];
  size_t plen;    /* strlen(path) */
  bool validated; /* documents were validated by the caller */
  struct {
    size_t nlevels, nvalues, value_bytes;
  } *mark; /* column sizes before the current row */
};

static m2d_col_type_t leaf_type(const m2d_dtype_t *t, int32_t *fixed_len) {
  *fixed_len = 0;
  switch (t->kind) {
  case M2D_T_BOOLEAN: return M2D_COL_BOOL;
  case M2D_T_INTEGER: return M2D_COL_INT32;
  case M2D_T_LONG: case M2D_T_TIMESTAMP: return M2D_COL_INT64;
  case M2D_T_DOUBLE: return M2D_COL_DOUBLE;
  case M2D_T_DECIMAL:
    if (t->precision <= 9) return M2D_COL_INT32;
    if (t->precision <= 18) return M2D_COL_INT64;
    *fixed_len = m2d_decimal_fixed_len(t->precision);
    return M2D_COL_FIXED;
  default: return M2D_COL_BYTES; /* string, binary, null-only */
  }
}

static void plan_free(plan_t *p) {
  for (int i = 0; i < p->nchildren; i++) plan_free(&p->children[i]);
  free(p->children);
}

/* Builds the plan of t below a node whose present definition level is def, repetition rep. */
static bool plan_build(m2d_shredder_t *s, plan_t *p, const m2d_dtype_t *t, int16_t def, int16_t rep, int depth,
                       m2d_error_t *err);

static bool add_leaf(m2d_shredder_t *s, const m2d_dtype_t *t, int16_t def, int16_t rep, m2d_error_t *err) {
  m2d_column_t *c = realloc(s->cols, (size_t)(s->ncols + 1) * sizeof *c);
  if (!c) return m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory");
  s->cols = c;
  int32_t fixed;
  m2d_col_type_t ct = leaf_type(t, &fixed);
  m2d_column_init(&c[s->ncols], ct, fixed, def, rep, 0);
  s->ncols++;
  return true;
}

static bool plan_children(m2d_shredder_t *s, plan_t *p, int n, m2d_error_t *err) {
  p->children = calloc((size_t)(n ? n : 1), sizeof *p->children);
  if (!p->children) return m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory");
  p->nchildren = n;
  (void)s;
  return true;
}

static bool plan_build(m2d_shredder_t *s, plan_t *p, const m2d_dtype_t *t, int16_t def, int16_t rep, int depth,
                       m2d_error_t *err) {
  if (depth > 100) return m2d_error_set(err, M2D_ERR_LIMIT, 0, "schema nested deeper than 100 levels");
  p->t = t;
  p->def = def;
  p->first_leaf = s->ncols;
  switch (t->kind) {
  case M2D_T_STRUCT:
    if (!plan_children(s, p, t->nfields, err)) return false;
    for (int i = 0; i < t->nfields; i++)
      if (!plan_build(s, &p->children[i], t->fields[i].type, (int16_t)(def + 1), rep, depth + 1, err)) return false;
    break;
  case M2D_T_ARRAY:
    /* optional group (def), repeated list (def + 1), optional element (def + 2) */
    p->child_rep = (int16_t)(rep + 1);
    if (!plan_children(s, p, 1, err) ||
        !plan_build(s, &p->children[0], t->elem, (int16_t)(def + 2), p->child_rep, depth + 1, err))
      return false;
    break;
  case M2D_T_MAP: {
    /* optional group (def), repeated key_value (def + 1), required key, optional value (def + 2) */
    p->child_rep = (int16_t)(rep + 1);
    if (!plan_children(s, p, 2, err)) return false;
    static const m2d_dtype_t key_type = {.kind = M2D_T_STRING};
    p->children[0].t = &key_type;
    p->children[0].def = (int16_t)(def + 1);
    p->children[0].first_leaf = s->ncols;
    p->children[0].nleaves = 1;
    if (!add_leaf(s, &key_type, (int16_t)(def + 1), p->child_rep, err)) return false;
    if (!plan_build(s, &p->children[1], t->elem, (int16_t)(def + 2), p->child_rep, depth + 1, err)) return false;
    break;
  }
  default:
    if (!add_leaf(s, t, def, rep, err)) return false;
  }
  p->nleaves = s->ncols - p->first_leaf;
  return true;
}

m2d_shredder_t *m2d_shredder_new(const m2d_dtype_t *schema, bool rescue_column, size_t max_batch_bytes,
                                 m2d_error_t *err) {
  size_t size = (sizeof(m2d_shredder_t) + 127) / 128 * 128; /* bson_t wants 128-byte alignment */
  m2d_shredder_t *s = aligned_alloc(128, size);
  if (s) memset(s, 0, size);
  if (!s) return m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory"), NULL;
  bson_init(&s->rescued);
  s->rescue_column = rescue_column;
  if (schema->kind != M2D_T_STRUCT || !plan_build(s, &s->root, schema, 0, 0, 0, err)) {
    if (schema->kind != M2D_T_STRUCT) m2d_error_set(err, M2D_ERR_INTERNAL, 0, "a table schema must be a struct");
    m2d_shredder_destroy(s);
    return NULL;
  }
  if (rescue_column) {
    static const m2d_dtype_t str = {.kind = M2D_T_STRING};
    if (!add_leaf(s, &str, 1, 0, err)) {
      m2d_shredder_destroy(s);
      return NULL;
    }
  }
  s->mark = calloc((size_t)(s->ncols ? s->ncols : 1), sizeof *s->mark);
  if (!s->mark) {
    m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory");
    m2d_shredder_destroy(s);
    return NULL;
  }
  for (int i = 0; i < s->ncols; i++) s->cols[i].max_bytes = max_batch_bytes ? max_batch_bytes : (size_t)1 << 30;
  return s;
}

void m2d_shredder_destroy(m2d_shredder_t *s) {
  if (!s) return;
  for (int i = 0; i < s->ncols; i++) m2d_column_free(&s->cols[i]);
  free(s->cols);
  plan_free(&s->root);
  free(s->mark);
  bson_destroy(&s->rescued);
  free(s->skip_field);
  free(s);
}

void m2d_shredder_set_validated(m2d_shredder_t *s, bool validated) { s->validated = validated; }

const bson_t *m2d_shredder_row_rescued(const m2d_shredder_t *s) { return &s->rescued; }

bool m2d_shredder_skip_field(m2d_shredder_t *s, const char *name, m2d_error_t *err) {
  free(s->skip_field);
  s->skip_field = strdup(name);
  return s->skip_field ? true : m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory");
}

int m2d_shredder_ncolumns(const m2d_shredder_t *s) { return s->ncols; }
m2d_column_t *m2d_shredder_columns(m2d_shredder_t *s) { return s->cols; }
size_t m2d_shredder_rows(const m2d_shredder_t *s) { return s->rows; }

size_t m2d_shredder_bytes(const m2d_shredder_t *s) {
  size_t n = 0;
  for (int i = 0; i < s->ncols; i++) {
    const m2d_column_t *c = &s->cols[i];
    n += c->nlevels * sizeof(int16_t) * ((c->max_def > 0) + (c->max_rep > 0)) + c->value_bytes +
         (c->offsets ? c->nvalues * sizeof(uint32_t) : 0);
  }
  return n;
}

size_t m2d_shredder_memory(const m2d_shredder_t *s) {
  size_t n = 0;
  for (int i = 0; i < s->ncols; i++) n += m2d_column_memory(&s->cols[i]);
  return n;
}

void m2d_shredder_reset(m2d_shredder_t *s) {
  for (int i = 0; i < s->ncols; i++) m2d_column_reset(&s->cols[i]);
  s->rows = 0;
}

/* --- values ------------------------------------------------------------------------------- */

static bool emit_null(m2d_shredder_t *s, const plan_t *p, int16_t def, int16_t rep, m2d_error_t *err) {
  for (int i = p->first_leaf; i < p->first_leaf + p->nleaves; i++)
    if (!m2d_column_push_level(&s->cols[i], def, rep, err)) return false;
  return true;
}


static bool rescue(m2d_shredder_t *s, const bson_iter_t *it) {
  s->nrescued++;
  return m2d_bson_append_value(&s->rescued, s->path, it);
}

/* The path of the value being shredded, for rescued values and errors: kept with its length
 * (it is extended for every field of every document; cut short past its buffer). */
static size_t path_push(m2d_shredder_t *s, const char *name, size_t len) {
  size_t old = s->plen, at = old;
  if (at && at + 1 < sizeof s->path) s->path[at++] = '.';
  if (len > sizeof s->path - 1 - at) len = sizeof s->path - 1 - at;
  memcpy(s->path + at, name, len);
  at += len;
  s->path[at] = '\0';
  s->plen = at;
  return old;
}

static void path_pop(m2d_shredder_t *s, size_t old) {
  s->path[old] = '\0';
  s->plen = old;
}

/* Canonical Extended JSON of one value (without a key), NULL when libbson cannot write it
 * (invalid UTF-8). Caller bson_free()s. */
static char *value_extjson(const bson_iter_t *it, size_t *len) {
  bson_t tmp = BSON_INITIALIZER;
  size_t n;
  char *json = m2d_bson_append_value(&tmp, "v", it) ? bson_as_canonical_extended_json(&tmp, &n) : NULL;
  bson_destroy(&tmp);
  if (!json) return NULL;
  /* "{ "v" : VALUE }" */
  const char *start = strstr(json, ": ");
  if (!start || n < 4) {
    *len = n;
    return json;
  }
  start += 2;
  size_t vlen = (size_t)(json + n - 2 - start);
  memmove(json, start, vlen);
  json[vlen] = '\0';
  *len = vlen;
  return json;
}

static void uuid_string(const uint8_t *b, char out[37]) {
  static const char hex[] = "0123456789abcdef";
  int o = 0;
  for (int i = 0; i < 16; i++) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out[o++] = '-';
    out[o++] = hex[b[i] >> 4];
    out[o++] = hex[b[i] & 15];
  }
  out[o] = '\0';
}

static bool decimal_scale(bool neg, __int128 coeff, int exp, int precision, int scale, __int128 *out);

/* Unscaled value of a finite Decimal128 at scale, when it fits precision. */
static bool decimal_unscaled(const bson_iter_t *it, int precision, int scale, __int128 *out) {
  bson_decimal128_t d;
  bson_iter_decimal128(it, &d);
  __int128 coeff = 0;
  int exp;
  bool neg = d.high >> 63;
  if (((d.high >> 61) & 3) != 3) {
    /* the usual encoding (IEEE 754-2008 BID): 113-bit coefficient, 14-bit biased exponent,
     * read directly (printing and parsing the string was a large part of shredding) */
    coeff = (__int128)(d.high & 0x1ffffffffffffULL) << 64 | d.low;
    exp = (int)((d.high >> 49) & 0x3fff) - 6176;
    if (coeff >= (__int128)1 << 113) coeff = 0; /* not canonical: zero, as libbson prints it */
    return decimal_scale(neg, coeff, exp, precision, scale, out);
  }
  char s[BSON_DECIMAL128_STRING];
  bson_decimal128_to_string(&d, s);
  const char *p = s;
  neg = *p == '-';
  if (*p == '-' || *p == '+') p++;
  if (*p < '0' || *p > '9') return false; /* NaN, Infinity */
  int digits = 0, frac = 0;
  bool in_frac = false;
  for (; *p && *p != 'E'; p++) {
    if (*p == '.') {
      in_frac = true;
      continue;
    }
    coeff = coeff * 10 + (*p - '0');
    if (coeff) digits++;
    if (in_frac) frac++;
  }
  exp = (*p == 'E' ? atoi(p + 1) : 0) - frac;
  return decimal_scale(neg, coeff, exp, precision, scale, out);
}

/* coeff * 10^exp (negated when neg) as an unscaled value at scale, when exact and within
 * precision digits. */
static bool decimal_scale(bool neg, __int128 coeff, int exp, int precision, int scale, __int128 *out) {
  int shift = exp + scale;
  if (shift < 0) {
    for (; shift < 0; shift++) {
      if (coeff % 10) return false; /* would lose digits */
      coeff /= 10;
    }
  } else {
    for (; shift > 0; shift--) {
      if (coeff > ((__int128)1 << 125)) return false;
      coeff *= 10;
    }
  }
  __int128 limit = 1;
  for (int i = 0; i < precision; i++) limit *= 10;
  if (coeff >= limit) return false;
  *out = neg ? -coeff : coeff;
  return true;
}

static bool push_decimal(m2d_column_t *c, __int128 v, m2d_error_t *err) {
  if (c->type == M2D_COL_INT32) return m2d_column_push_i32(c, (int32_t)v, err);
  if (c->type == M2D_COL_INT64) return m2d_column_push_i64(c, (int64_t)v, err);
  uint8_t be[16];
  int n = c->fixed_len;
  for (int i = n - 1; i >= 0; i--) {
    be[i] = (uint8_t)(v & 0xff);
    v >>= 8; /* arithmetic shift keeps the sign */
  }
  return m2d_column_push_fixed(c, be, err);
}

/* Writes a primitive value into its leaf when it fits the column's type. Returns 1 written,
 * 0 does not fit (caller rescues), -1 error. */
static int push_primitive(m2d_shredder_t *s, const plan_t *p, const bson_iter_t *it, int16_t rep, m2d_error_t *err) {
  m2d_column_t *c = &s->cols[p->first_leaf];
  const m2d_dtype_t *t = p->t;
  bson_type_t bt = bson_iter_type(it);
  bool ok;
#define LEVEL() m2d_column_push_level(c, p->def, rep, err)
  switch (t->kind) {
  case M2D_T_BOOLEAN:
    if (bt != BSON_TYPE_BOOL) return 0;
    ok = LEVEL() && m2d_column_push_bool(c, bson_iter_bool(it), err);
    break;
  case M2D_T_INTEGER:
    if (bt != BSON_TYPE_INT32) return 0;
    ok = LEVEL() && m2d_column_push_i32(c, bson_iter_int32(it), err);
    break;
  case M2D_T_LONG:
    if (bt != BSON_TYPE_INT32 && bt != BSON_TYPE_INT64) return 0;
    ok = LEVEL() && m2d_column_push_i64(c, bson_iter_as_int64(it), err);
    break;
  case M2D_T_DOUBLE: {
    double v;
    if (bt == BSON_TYPE_DOUBLE) v = bson_iter_double(it);
    else if (bt == BSON_TYPE_INT32) v = bson_iter_int32(it);
    else if (bt == BSON_TYPE_INT64) {
      int64_t i = bson_iter_int64(it);
      if (i > (1LL << 53) || i < -(1LL << 53)) return 0; /* not exact as a double */
      v = (double)i;
    } else return 0;
    ok = LEVEL() && m2d_column_push_f64(c, v, err);
    break;
  }
  case M2D_T_TIMESTAMP: {
    if (bt != BSON_TYPE_DATE_TIME) return 0;
    int64_t ms = bson_iter_date_time(it);
    if (ms < MIN_DATE_MS || ms > MAX_DATE_MS) return 0;
    ok = LEVEL() && m2d_column_push_i64(c, ms * 1000, err);
    break;
  }
  case M2D_T_DECIMAL: {
    __int128 v;
    if (bt != BSON_TYPE_DECIMAL128 || !decimal_unscaled(it, t->precision, t->scale, &v)) return 0;
    ok = LEVEL() && push_decimal(c, v, err);
    break;
  }
  case M2D_T_BINARY: {
    if (bt != BSON_TYPE_BINARY) return 0;
    bson_subtype_t sub;
    uint32_t len;
    const uint8_t *data;
    bson_iter_binary(it, &sub, &len, &data);
    if ((sub == BSON_SUBTYPE_UUID || sub == BSON_SUBTYPE_UUID_DEPRECATED) && len == 16) return 0;
    ok = LEVEL() && m2d_column_push_bytes(c, data, len, err);
    break;
  }
  case M2D_T_STRING:
    switch (t->orig) {
    case M2D_ORIG_NONE: {
      if (bt != BSON_TYPE_UTF8) return 0;
      uint32_t len;
      const char *str = bson_iter_utf8(it, &len);
      ok = LEVEL() && m2d_column_push_bytes(c, str, len, err);
      break;
    }
    case M2D_ORIG_OBJECTID: {
      if (bt != BSON_TYPE_OID) return 0;
      char hex[25];
      bson_oid_to_string(bson_iter_oid(it), hex);
      ok = LEVEL() && m2d_column_push_bytes(c, hex, 24, err);
      break;
    }
    case M2D_ORIG_UUID:
    case M2D_ORIG_UUID_LEGACY: {
      if (bt != BSON_TYPE_BINARY) return 0;
      bson_subtype_t sub;
      uint32_t len;
      const uint8_t *data;
      bson_iter_binary(it, &sub, &len, &data);
      bson_subtype_t want = t->orig == M2D_ORIG_UUID ? BSON_SUBTYPE_UUID : BSON_SUBTYPE_UUID_DEPRECATED;
      if (sub != want || len != 16) return 0;
      char u[37];
      uuid_string(data, u);
      ok = LEVEL() && m2d_column_push_bytes(c, u, 36, err);
      break;
    }
    case M2D_ORIG_DECIMAL128: {
      if (bt != BSON_TYPE_DECIMAL128) return 0;
      bson_decimal128_t d;
      bson_iter_decimal128(it, &d);
      char str[BSON_DECIMAL128_STRING];
      bson_decimal128_to_string(&d, str);
      ok = LEVEL() && m2d_column_push_bytes(c, str, strlen(str), err);
      break;
    }
    case M2D_ORIG_EXTJSON: {
      switch (bt) {
      case BSON_TYPE_REGEX: case BSON_TYPE_CODE: case BSON_TYPE_CODEWSCOPE: case BSON_TYPE_SYMBOL:
      case BSON_TYPE_DBPOINTER: case BSON_TYPE_MINKEY: case BSON_TYPE_MAXKEY: case BSON_TYPE_UNDEFINED: break;
      default: return 0;
      }
      size_t len;
      char *json = value_extjson(it, &len);
      if (!json)
        return m2d_error_set(err, M2D_ERR_FORMAT, 0, "invalid BSON value at '%s' (not valid UTF-8?)", s->path), -1;
      ok = LEVEL() && m2d_column_push_bytes(c, json, len, err);
      bson_free(json);
      break;
    }
    default: return 0;
    }
    break;
  default: return 0; /* M2D_T_NULL: only nulls fit */
  }
#undef LEVEL
  return ok ? 1 : -1;
}

static bool shred_value(m2d_shredder_t *s, const plan_t *p, const bson_iter_t *it, int16_t rep, int depth,
                        m2d_error_t *err);

static inline bool name_eq(const char *a, const char *b) { /* strcmp == 0, inlined for short keys */
  while (*a && *a == *b) a++, b++;
  return *a == *b;
}

/* Fields of a document (child iterates them) into the struct plan p. */
static bool shred_fields(m2d_shredder_t *s, const plan_t *p, bson_iter_t *child, int16_t rep, int depth,
                         m2d_error_t *err) {
  /* which fields this document sets; small structs use the stack */
  bool seen_stack[64];
  bool *seen = p->nchildren <= 64 ? seen_stack : calloc((size_t)p->nchildren, 1);
  if (!seen) return m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory");
  memset(seen, 0, (size_t)(p->nchildren <= 64 ? 64 : p->nchildren));
  bool ok = true;
  int hint = 0; /* documents usually list fields in schema order */
  while (ok && bson_iter_next(child)) {
    const char *key = bson_iter_key(child);
    if (p == &s->root && s->skip_field && strcmp(key, s->skip_field) == 0) continue;
    int found = -1;
    for (int k = 0; k < p->nchildren; k++) {
      int i = (hint + k) % p->nchildren;
      if (name_eq(p->t->fields[i].name, key)) {
        found = i;
        break;
      }
    }
    size_t old = path_push(s, key, bson_iter_key_len(child));
    if (found < 0 || seen[found]) {
      /* a field the schema does not have (or a duplicate key): nothing is dropped */
      if (!rescue(s, child)) ok = m2d_error_set(err, M2D_ERR_LIMIT, 0, "rescued data too large at '%s'", s->path);
    } else {
      seen[found] = true;
      hint = found + 1;
      ok = shred_value(s, &p->children[found], child, rep, depth + 1, err);
    }
    path_pop(s, old);
  }
  for (int i = 0; ok && i < p->nchildren; i++)
    if (!seen[i]) ok = emit_null(s, &p->children[i], (int16_t)(p->children[i].def - 1), rep, err);
  if (seen != seen_stack) free(seen);
  return ok;
}

static bool shred_struct(m2d_shredder_t *s, const plan_t *p, const bson_iter_t *it, int16_t rep, int depth,
                         m2d_error_t *err) {
  bson_iter_t child;
  if (!bson_iter_recurse(it, &child))
    return m2d_error_set(err, M2D_ERR_FORMAT, 0, "invalid embedded document at '%s'", s->path);
  return shred_fields(s, p, &child, rep, depth, err);
}

static bool shred_array(m2d_shredder_t *s, const plan_t *p, const bson_iter_t *it, int16_t rep, int depth,
                        m2d_error_t *err) {
  bson_iter_t child;
  if (!bson_iter_recurse(it, &child))
    return m2d_error_set(err, M2D_ERR_FORMAT, 0, "invalid embedded array at '%s'", s->path);
  int16_t r = rep;
  bool any = false;
  while (bson_iter_next(&child)) {
    any = true;
    size_t old = path_push(s, bson_iter_key(&child), bson_iter_key_len(&child));
    bool ok = shred_value(s, &p->children[0], &child, r, depth + 1, err);
    path_pop(s, old);
    if (!ok) return false;
    r = p->child_rep;
  }
  return any ? true : emit_null(s, p, p->def, rep, err); /* empty array */
}

static bool shred_map(m2d_shredder_t *s, const plan_t *p, const bson_iter_t *it, int16_t rep, int depth,
                      m2d_error_t *err) {
  bson_iter_t child;
  if (!bson_iter_recurse(it, &child))
    return m2d_error_set(err, M2D_ERR_FORMAT, 0, "invalid embedded document at '%s'", s->path);
  int16_t r = rep;
  bool any = false;
  m2d_column_t *keys = &s->cols[p->children[0].first_leaf];
  while (bson_iter_next(&child)) {
    any = true;
    uint32_t klen = bson_iter_key_len(&child);
    if (!m2d_column_push_level(keys, p->children[0].def, r, err) ||
        !m2d_column_push_bytes(keys, bson_iter_key(&child), klen, err))
      return false;
    size_t old = path_push(s, bson_iter_key(&child), klen);
    bool ok = shred_value(s, &p->children[1], &child, r, depth + 1, err);
    path_pop(s, old);
    if (!ok) return false;
    r = p->child_rep;
  }
  return any ? true : emit_null(s, p, p->def, rep, err); /* empty document */
}

static bool shred_value(m2d_shredder_t *s, const plan_t *p, const bson_iter_t *it, int16_t rep, int depth,
                        m2d_error_t *err) {
  if (depth > 200) return m2d_error_set(err, M2D_ERR_LIMIT, 0, "document nested deeper than 200 levels at '%s'", s->path);
  bson_type_t bt = bson_iter_type(it);
  if (bt == BSON_TYPE_NULL) return emit_null(s, p, (int16_t)(p->def - 1), rep, err);
  const m2d_dtype_t *t = p->t;
  if (t->kind == M2D_T_STRUCT && t->orig == M2D_ORIG_BSON_TIMESTAMP) {
    if (bt == BSON_TYPE_TIMESTAMP) {
      uint32_t ts, inc;
      bson_iter_timestamp(it, &ts, &inc);
      m2d_column_t *tc = &s->cols[p->children[0].first_leaf], *ic = &s->cols[p->children[1].first_leaf];
      return m2d_column_push_level(tc, p->children[0].def, rep, err) && m2d_column_push_i64(tc, ts, err) &&
             m2d_column_push_level(ic, p->children[1].def, rep, err) && m2d_column_push_i64(ic, inc, err);
    }
  } else if (t->kind == M2D_T_STRUCT) {
    if (bt == BSON_TYPE_DOCUMENT) return shred_struct(s, p, it, rep, depth, err);
  } else if (t->kind == M2D_T_ARRAY) {
    if (bt == BSON_TYPE_ARRAY) return shred_array(s, p, it, rep, depth, err);
  } else if (t->kind == M2D_T_MAP) {
    if (bt == BSON_TYPE_DOCUMENT) return shred_map(s, p, it, rep, depth, err);
  } else {
    int r = push_primitive(s, p, it, rep, err);
    if (r != 0) return r > 0;
  }
  /* does not fit: null here, the value goes to _rescued_data with its path */
  if (!rescue(s, it)) return m2d_error_set(err, M2D_ERR_LIMIT, 0, "rescued data too large at '%s'", s->path);
  return emit_null(s, p, (int16_t)(p->def - 1), rep, err);
}

bool m2d_shredder_add(m2d_shredder_t *s, const bson_t *doc, int64_t *rescued, m2d_error_t *err) {
  bson_iter_t root;
  size_t err_off;
  if (!bson_iter_init(&root, doc) || (!s->validated && !bson_validate(doc, BSON_VALIDATE_NONE, &err_off)))
    return m2d_error_set(err, M2D_ERR_FORMAT, 0, "invalid BSON document (corrupt near byte %zu)",
                         bson_iter_init(&root, doc) ? err_off : 0);
  bson_reinit(&s->rescued);
  s->nrescued = 0;
  s->path[0] = '\0';
  s->plen = 0;
  /* remember where every column was, so a failed row leaves no partial levels behind */
  for (int i = 0; i < s->ncols; i++) {
    s->mark[i].nlevels = s->cols[i].nlevels;
    s->mark[i].nvalues = s->cols[i].nvalues;
    s->mark[i].value_bytes = s->cols[i].value_bytes;
  }
  bool ok = shred_fields(s, &s->root, &root, 0, 0, err); /* the root's fields are the document's */
  if (ok && s->rescue_column) {
    m2d_column_t *rc = &s->cols[s->ncols - 1];
    if (s->nrescued) {
      size_t len;
      char *json = bson_as_canonical_extended_json(&s->rescued, &len);
      if (!json)
        m2d_error_set(err, M2D_ERR_FORMAT, 0, "a rescued value cannot be written as Extended JSON (not valid UTF-8?)");
      ok = json && m2d_column_push_level(rc, 1, 0, err) && m2d_column_push_bytes(rc, json, len, err);
      bson_free(json);
    } else {
      ok = m2d_column_push_level(rc, 0, 0, err);
    }
  } else if (ok && s->nrescued) {
    ok = m2d_error_set(err, M2D_ERR_FORMAT, 0,
                       "a value does not fit the table's schema and the table has no rescue column");
  }
  if (!ok) {
    for (int i = 0; i < s->ncols; i++) {
      s->cols[i].nlevels = s->mark[i].nlevels;
      s->cols[i].nvalues = s->mark[i].nvalues;
      s->cols[i].value_bytes = s->mark[i].value_bytes;
    }
    return false;
  }
  s->rows++;
  if (rescued) *rescued += s->nrescued;
  return true;
}
