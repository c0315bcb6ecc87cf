#include "schema/infer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct m2d_infer {
  m2d_infer_options_t opts;
  m2d_dtype_t *root;
  int64_t conflicts, documents;
};

/* Timestamps Delta/Spark can hold: years 0001 to 9999, in milliseconds since the epoch. */
#define MIN_DATE_MS (-62135596800000LL)
#define MAX_DATE_MS (253402300799999LL)

static void defaults(m2d_infer_options_t *o, const m2d_infer_options_t *in) {
  o->max_struct_fields = in && in->max_struct_fields > 0 ? in->max_struct_fields : 256;
  o->max_depth = in && in->max_depth > 0 ? in->max_depth : 100;
}

m2d_infer_t *m2d_infer_new(const m2d_infer_options_t *opts) {
  m2d_infer_t *inf = calloc(1, sizeof *inf);
  if (!inf) return NULL;
  defaults(&inf->opts, opts);
  inf->root = m2d_dtype_new(M2D_T_STRUCT);
  if (!inf->root) {
    free(inf);
    return NULL;
  }
  return inf;
}

void m2d_infer_destroy(m2d_infer_t *inf) {
  if (!inf) return;
  m2d_dtype_free(inf->root);
  free(inf);
}

const m2d_dtype_t *m2d_infer_schema(const m2d_infer_t *inf) { return inf->root; }
int64_t m2d_infer_conflicts(const m2d_infer_t *inf) { return inf->conflicts; }
int64_t m2d_infer_documents(const m2d_infer_t *inf) { return inf->documents; }

/* Precision and scale of a finite Decimal128, from its canonical string form. Returns false
 * for NaN and infinities. */
static bool decimal_shape(const bson_decimal128_t *d, int *precision, int *scale) {
  if (((d->high >> 61) & 3) != 3) {
    /* the usual encoding (IEEE 754-2008 BID), read directly (printing the string was a large
     * part of learning a schema): coeff * 10^exp, the same shape as from the string below */
    unsigned __int128 coeff = (unsigned __int128)(d->high & 0x1ffffffffffffULL) << 64 | d->low;
    int exp = (int)((d->high >> 49) & 0x3fff) - 6176;
    if (coeff >= (unsigned __int128)1 << 113) coeff = 0; /* not canonical: zero */
    int digits = 0;
    for (unsigned __int128 c = coeff; c; c /= 10) digits++;
    int sc = exp < 0 ? -exp : 0;
    int intd = coeff && digits + exp > 0 ? digits + exp : 0;
    if (intd + sc == 0) intd = 1;
    *precision = intd + sc;
    *scale = sc;
    return true;
  }
  char s[BSON_DECIMAL128_STRING];
  bson_decimal128_to_string(d, s);
  const char *p = s;
  if (*p == '-' || *p == '+') p++;
  if (!(*p >= '0' && *p <= '9')) return false; /* NaN, Inf */
  int digits = 0, frac = 0, exp = 0;
  bool in_frac = false, leading = true;
  for (; *p && *p != 'E' && *p != 'e'; p++) {
    if (*p == '.') {
      in_frac = true;
      continue;
    }
    if (leading && *p == '0' && !in_frac) continue; /* leading zeros of the integer part */
    leading = false;
    digits++;
    if (in_frac) frac++;
  }
  if (*p == 'E' || *p == 'e') exp = atoi(p + 1);
  /* value = digits (with frac of them after the point) * 10^exp */
  int sc = frac - exp;
  int intd = digits - frac + exp; /* integer digits */
  if (sc < 0) sc = 0;
  if (intd < 0 || digits == 0) intd = 0; /* a zero has no integer digits whatever its exponent (0E+3) */
  if (intd + sc == 0) intd = 1; /* zero */
  *precision = intd + sc;
  *scale = sc;
  return true;
}

/* The field called name, looked for at index guess first: documents mostly list their fields
 * in the order of the schema (a search from the start was a large part of learning one). */
static inline bool name_eq(const char *a, const char *b) { /* strcmp == 0, inlined for short keys */
  while (*a && *a == *b) a++, b++;
  return *a == *b;
}

static m2d_field_t *field_near(m2d_dtype_t *st, const char *name, int guess) {
  if (guess < st->nfields && name_eq(st->fields[guess].name, name)) return &st->fields[guess];
  return m2d_dtype_field(st, name);
}

/* The type a field gets from its first value: a date no column can hold still makes it a date
 * field (the value itself is rescued by the shredder). */
static m2d_dtype_t *first_type(m2d_dtype_t *t) {
  if (t && t->orig == M2D_ORIG_UNFIT) t->orig = M2D_ORIG_DATE;
  return t;
}

m2d_dtype_t *m2d_infer_value_type(const bson_iter_t *it_in, const m2d_infer_options_t *opts_in, m2d_error_t *err) {
  m2d_infer_options_t opts;
  defaults(&opts, opts_in);
  bson_iter_t it = *it_in;
  m2d_dtype_t *t = NULL;
  switch (bson_iter_type(&it)) {
  case BSON_TYPE_DOUBLE: t = m2d_dtype_new(M2D_T_DOUBLE); break;
  case BSON_TYPE_UTF8: t = m2d_dtype_new(M2D_T_STRING); break;
  case BSON_TYPE_BOOL: t = m2d_dtype_new(M2D_T_BOOLEAN); break;
  case BSON_TYPE_INT32: t = m2d_dtype_new(M2D_T_INTEGER); break;
  case BSON_TYPE_INT64: t = m2d_dtype_new(M2D_T_LONG); break;
  case BSON_TYPE_NULL: t = m2d_dtype_new(M2D_T_NULL); break;
  case BSON_TYPE_OID:
    if ((t = m2d_dtype_new(M2D_T_STRING))) t->orig = M2D_ORIG_OBJECTID;
    break;
  case BSON_TYPE_DATE_TIME: {
    int64_t ms = bson_iter_date_time(&it);
    if (ms < MIN_DATE_MS || ms > MAX_DATE_MS) {
      /* outside what a Delta timestamp holds: always rescued */
      if ((t = m2d_dtype_new(M2D_T_TIMESTAMP))) t->orig = M2D_ORIG_UNFIT;
    } else if ((t = m2d_dtype_new(M2D_T_TIMESTAMP))) {
      t->orig = M2D_ORIG_DATE;
    }
    break;
  }
  case BSON_TYPE_BINARY: {
    bson_subtype_t sub;
    uint32_t len;
    const uint8_t *data;
    bson_iter_binary(&it, &sub, &len, &data);
    if ((sub == BSON_SUBTYPE_UUID || sub == BSON_SUBTYPE_UUID_DEPRECATED) && len == 16) {
      if ((t = m2d_dtype_new(M2D_T_STRING))) t->orig = sub == BSON_SUBTYPE_UUID ? M2D_ORIG_UUID : M2D_ORIG_UUID_LEGACY;
    } else {
      t = m2d_dtype_new(M2D_T_BINARY);
    }
    break;
  }
  case BSON_TYPE_DECIMAL128: {
    bson_decimal128_t d;
    bson_iter_decimal128(&it, &d);
    int p, s;
    if (decimal_shape(&d, &p, &s) && p <= 38) {
      if ((t = m2d_dtype_new(M2D_T_DECIMAL))) {
        t->precision = p;
        t->scale = s;
      }
    } else {
      t = m2d_dtype_new(M2D_T_STRING);
    }
    if (t) t->orig = M2D_ORIG_DECIMAL128;
    break;
  }
  case BSON_TYPE_TIMESTAMP: {
    t = m2d_dtype_new(M2D_T_STRUCT);
    if (t) {
      t->orig = M2D_ORIG_BSON_TIMESTAMP;
      if (!m2d_dtype_add_field(t, "t", m2d_dtype_new(M2D_T_LONG), err) ||
          !m2d_dtype_add_field(t, "i", m2d_dtype_new(M2D_T_LONG), err)) {
        m2d_dtype_free(t);
        return NULL;
      }
    }
    break;
  }
  case BSON_TYPE_DOCUMENT:
  case BSON_TYPE_ARRAY: {
    bool is_array = BSON_ITER_HOLDS_ARRAY(&it);
    bson_iter_t child;
    if (!bson_iter_recurse(&it, &child)) {
      m2d_error_set(err, M2D_ERR_FORMAT, 0, "invalid embedded %s in BSON", is_array ? "array" : "document");
      return NULL;
    }
    t = m2d_dtype_new(is_array ? M2D_T_ARRAY : M2D_T_STRUCT);
    if (!t) break;
    if (is_array) t->elem = m2d_dtype_new(M2D_T_NULL);
    int64_t ignored = 0;
    while (bson_iter_next(&child)) {
      m2d_dtype_t *ct = m2d_infer_value_type(&child, &opts, err);
      if (!ct) {
        m2d_dtype_free(t);
        return NULL;
      }
      if (is_array) {
        m2d_infer_merge(&t->elem, ct, &opts, &ignored);
      } else {
        m2d_field_t *f = m2d_dtype_field(t, bson_iter_key(&child));
        if (f) m2d_infer_merge(&f->type, ct, &opts, &ignored); /* duplicate key in one document */
        else if (!m2d_dtype_add_field(t, bson_iter_key(&child), first_type(ct), err)) {
          m2d_dtype_free(t);
          return NULL;
        }
      }
    }
    if (!is_array && t->nfields > opts.max_struct_fields) {
      /* fold into a map right away */
      m2d_dtype_t *m = m2d_dtype_new(M2D_T_MAP);
      m->elem = m2d_dtype_new(M2D_T_NULL);
      for (int i = 0; i < t->nfields; i++) {
        m2d_infer_merge(&m->elem, t->fields[i].type, &opts, &ignored);
        t->fields[i].type = NULL;
      }
      m2d_dtype_free(t);
      t = m;
    }
    break;
  }
  default: /* regex, code, code with scope, symbol, dbPointer, minKey, maxKey, undefined */
    if ((t = m2d_dtype_new(M2D_T_STRING))) t->orig = M2D_ORIG_EXTJSON;
    break;
  }
  if (!t) m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory inferring a schema");
  return t;
}

static bool is_integral(const m2d_dtype_t *t) { return t->kind == M2D_T_INTEGER || t->kind == M2D_T_LONG; }

/* Turns a struct into map<string, merged field types>; false when field types conflict. */
static bool struct_to_map(m2d_dtype_t *st, const m2d_infer_options_t *opts) {
  m2d_dtype_t *value = m2d_dtype_new(M2D_T_NULL);
  int64_t c = 0;
  for (int i = 0; i < st->nfields; i++) {
    m2d_dtype_t *ft = m2d_dtype_clone(st->fields[i].type);
    if (!m2d_infer_merge(&value, ft, opts, &c)) {
      m2d_dtype_free(value);
      return false;
    }
  }
  for (int i = 0; i < st->nfields; i++) {
    free(st->fields[i].name);
    m2d_dtype_free(st->fields[i].type);
  }
  free(st->fields);
  st->fields = NULL;
  st->nfields = st->fields_cap = 0;
  st->kind = M2D_T_MAP;
  st->elem = value;
  return true;
}

bool m2d_infer_merge(m2d_dtype_t **established, m2d_dtype_t *observed, const m2d_infer_options_t *opts_in,
                     int64_t *conflicts) {
  m2d_infer_options_t opts;
  defaults(&opts, opts_in);
  m2d_dtype_t *e = *established;
  bool fits = true;
  bool counted = false; /* nested merges count their own conflicts */
  if (observed->kind == M2D_T_NULL) goto done;
  if (observed->orig == M2D_ORIG_UNFIT) {
    fits = false;
    if (e->kind == M2D_T_NULL) { /* a date field all the same */
      m2d_dtype_free(e);
      *established = first_type(observed);
      if (conflicts) (*conflicts)++;
      return false;
    }
    goto done;
  }
  if (e->kind == M2D_T_NULL) {
    m2d_dtype_free(e);
    *established = observed;
    return true;
  }
  if (e->kind == M2D_T_STRUCT && observed->kind == M2D_T_STRUCT && e->orig == observed->orig) {
    int guess = 0;
    for (int i = 0; i < observed->nfields; i++) {
      m2d_field_t *of = &observed->fields[i];
      m2d_field_t *ef = field_near(e, of->name, guess);
      if (ef) guess = (int)(ef - e->fields) + 1;
      if (ef) {
        if (!m2d_infer_merge(&ef->type, of->type, &opts, conflicts)) fits = false, counted = true;
      } else if (!m2d_dtype_add_field(e, of->name, of->type, NULL)) {
        fits = false;
      }
      of->type = NULL;
    }
    if (e->nfields > opts.max_struct_fields && e->orig == M2D_ORIG_NONE && !struct_to_map(e, &opts) && fits)
      fits = false; /* stays a struct: its fields' own conflicts are rescued one by one */
    goto done;
  }
  if (e->kind == M2D_T_MAP && observed->kind == M2D_T_STRUCT && observed->orig == M2D_ORIG_NONE) {
    for (int i = 0; i < observed->nfields; i++) {
      if (!m2d_infer_merge(&e->elem, observed->fields[i].type, &opts, conflicts)) fits = false, counted = true;
      observed->fields[i].type = NULL;
    }
    goto done;
  }
  if ((e->kind == M2D_T_ARRAY && observed->kind == M2D_T_ARRAY) ||
      (e->kind == M2D_T_MAP && observed->kind == M2D_T_MAP)) {
    fits = m2d_infer_merge(&e->elem, observed->elem, &opts, conflicts);
    counted = !fits;
    observed->elem = NULL;
    goto done;
  }
  if (e->orig == M2D_ORIG_DECIMAL128 && observed->orig == M2D_ORIG_DECIMAL128) {
    if (e->kind == M2D_T_DECIMAL && observed->kind == M2D_T_DECIMAL) {
      int intd = e->precision - e->scale > observed->precision - observed->scale
                     ? e->precision - e->scale
                     : observed->precision - observed->scale;
      int sc = e->scale > observed->scale ? e->scale : observed->scale;
      if (intd + sc <= 38) {
        e->precision = intd + sc;
        e->scale = sc;
        goto done;
      }
    }
    /* design.md: decimal(p,s) while every value seen fits p <= 38, otherwise an exact string */
    e->kind = M2D_T_STRING;
    e->precision = e->scale = 0;
    goto done;
  }
  if (e->kind == observed->kind && e->orig == observed->orig) goto done;
  if (e->kind == M2D_T_INTEGER && observed->kind == M2D_T_LONG) {
    e->kind = M2D_T_LONG;
    goto done;
  }
  if (e->kind == M2D_T_LONG && observed->kind == M2D_T_INTEGER) goto done;
  if (is_integral(e) && observed->kind == M2D_T_DOUBLE) {
    e->kind = M2D_T_DOUBLE;
    goto done;
  }
  if (e->kind == M2D_T_DOUBLE && is_integral(observed)) goto done; /* exactness is checked per value */
  fits = false;
done:
  if (!fits && !counted && conflicts) (*conflicts)++;
  m2d_dtype_free(observed);
  return fits;
}

/* Whether the value changes nothing in the established type t: merging it would leave t as
 * it is and count no conflict. Most values of a file are such; checking them in place spares
 * building (allocating) and merging a type per value. False for anything less common: those
 * take the full path. */
static bool covers(m2d_dtype_t *t, const bson_iter_t *it, int depth) {
  if (depth > 100) return false;
  switch (bson_iter_type(it)) {
  case BSON_TYPE_NULL: return true;
  case BSON_TYPE_UTF8: return t->kind == M2D_T_STRING && t->orig == M2D_ORIG_NONE;
  case BSON_TYPE_OID: return t->kind == M2D_T_STRING && t->orig == M2D_ORIG_OBJECTID;
  case BSON_TYPE_BOOL: return t->kind == M2D_T_BOOLEAN;
  case BSON_TYPE_INT32: return t->kind == M2D_T_INTEGER || t->kind == M2D_T_LONG || t->kind == M2D_T_DOUBLE;
  case BSON_TYPE_INT64: return t->kind == M2D_T_LONG || t->kind == M2D_T_DOUBLE;
  case BSON_TYPE_DOUBLE: return t->kind == M2D_T_DOUBLE;
  case BSON_TYPE_DATE_TIME: {
    int64_t ms = bson_iter_date_time(it);
    return t->kind == M2D_T_TIMESTAMP && t->orig == M2D_ORIG_DATE && ms >= MIN_DATE_MS && ms <= MAX_DATE_MS;
  }
  case BSON_TYPE_DECIMAL128: {
    if (t->kind != M2D_T_DECIMAL || t->orig != M2D_ORIG_DECIMAL128) return false;
    bson_decimal128_t d;
    int p, sc;
    bson_iter_decimal128(it, &d);
    return decimal_shape(&d, &p, &sc) && p <= 38 && sc <= t->scale && p - sc <= t->precision - t->scale;
  }
  case BSON_TYPE_DOCUMENT: {
    if (t->kind != M2D_T_STRUCT || t->orig != M2D_ORIG_NONE) return false;
    bson_iter_t child;
    if (!bson_iter_recurse(it, &child)) return false;
    int guess = 0;
    while (bson_iter_next(&child)) {
      m2d_field_t *f = field_near(t, bson_iter_key(&child), guess);
      if (!f || !covers(f->type, &child, depth + 1)) return false;
      guess = (int)(f - t->fields) + 1;
    }
    return true;
  }
  case BSON_TYPE_ARRAY: {
    if (t->kind != M2D_T_ARRAY || !t->elem) return false;
    bson_iter_t child;
    if (!bson_iter_recurse(it, &child)) return false;
    while (bson_iter_next(&child))
      if (!covers(t->elem, &child, depth + 1)) return false;
    return true;
  }
  default: return false;
  }
}

bool m2d_infer_observe(m2d_infer_t *inf, const bson_t *doc, m2d_error_t *err) {
  bson_iter_t it;
  if (!bson_iter_init(&it, doc)) return m2d_error_set(err, M2D_ERR_FORMAT, 0, "invalid BSON document");
  inf->documents++;
  int guess = 0;
  while (bson_iter_next(&it)) {
    const char *key = bson_iter_key(&it);
    m2d_field_t *f = field_near(inf->root, key, guess);
    if (f) guess = (int)(f - inf->root->fields) + 1;
    if (f && covers(f->type, &it, 0)) continue;
    m2d_dtype_t *t = m2d_infer_value_type(&it, &inf->opts, err);
    if (!t) return false;
    if (f) {
      m2d_infer_merge(&f->type, t, &inf->opts, &inf->conflicts);
    } else if (strcmp(key, "_id") == 0 && inf->root->nfields > 0) {
      /* _id first, whatever order the first document had */
      if (!m2d_dtype_add_field(inf->root, key, first_type(t), err)) return false;
      m2d_field_t id = inf->root->fields[inf->root->nfields - 1];
      memmove(&inf->root->fields[1], &inf->root->fields[0], (size_t)(inf->root->nfields - 1) * sizeof id);
      inf->root->fields[0] = id;
    } else if (!m2d_dtype_add_field(inf->root, key, first_type(t), err)) {
      return false;
    }
  }
  return true;
}

/* Adds to *table the fields of observed it lacks (top level and inside structs, also under
 * arrays and map values); types already in the table never change. */
static bool evolve(m2d_dtype_t *table, const m2d_dtype_t *observed, bool *changed, m2d_error_t *err) {
  if (table->kind == M2D_T_STRUCT && observed->kind == M2D_T_STRUCT) {
    for (int i = 0; i < observed->nfields; i++) {
      const m2d_field_t *of = &observed->fields[i];
      m2d_field_t *tf = m2d_dtype_field(table, of->name);
      if (tf) {
        if (!evolve(tf->type, of->type, changed, err)) return false;
        continue;
      }
      if (m2d_dtype_field_ci(table, of->name)) continue; /* a case duplicate: its values are rescued */
      m2d_dtype_t *c = m2d_dtype_clone(of->type);
      if (!c || !m2d_dtype_add_field(table, of->name, c, err)) {
        if (!c) m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory");
        return false;
      }
      *changed = true;
    }
    return true;
  }
  if ((table->kind == M2D_T_ARRAY && observed->kind == M2D_T_ARRAY) ||
      (table->kind == M2D_T_MAP && observed->kind == M2D_T_MAP))
    return table->elem && observed->elem ? evolve(table->elem, observed->elem, changed, err) : true;
  return true;
}

bool m2d_infer_evolve(m2d_dtype_t *table, const m2d_dtype_t *observed, bool *changed, m2d_error_t *err) {
  *changed = false;
  return evolve(table, observed, changed, err);
}
