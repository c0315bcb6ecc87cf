#include "pipeline/columns_bson.h"

#include "parquet/dremel.h"
#include "parquet/json_rows.h"
#include "pipeline/row_bson.h"
#include "schema/bson_value.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RESCUE "_rescued_data"

/* Record assembly as parquet/json_rows does it (per-leaf cursors over Dremel levels), writing
 * BSON by the Delta type instead of JSON. A value that cannot become BSON fails its row only:
 * the walk goes on so that the cursors stay on row boundaries. */
typedef struct {
  const delta_batch_t *b;
  pq_dremel_t d; /* over b's columns */
  m2d_rb_ctx_t rb;
  m2d_error_t rb_err;
  bool vfailed;     /* a value of this row failed */
  m2d_error_t verr; /* its error */
  m2d_buf_t text;   /* scratch: a value's text */
  m2d_error_t *err; /* corrupt columns: the scan fails */
} asm_t;

enum { AS_FIELD, AS_ELEM, AS_MAPV }; /* how a null is written: left out, null (or rescued), null */

static bool vbad(asm_t *a, const char *path, const char *what) {
  if (!a->vfailed) m2d_error_set(&a->verr, M2D_ERR_FORMAT, 0, "column '%s': %s", path, what);
  a->vfailed = true;
  return true;
}

/* Takes a row_bson result: its failure fails the row. */
static void rb_result(asm_t *a, bool ok) {
  if (!ok && !a->vfailed) a->verr = a->rb_err;
  if (!ok) a->vfailed = true;
}

static bool corrupt(asm_t *a) {
  return m2d_error_set(a->err, M2D_ERR_FORMAT, 0, "corrupt column: levels end inside a row");
}


static void put_null(asm_t *a, bson_t *out, const char *key, const char *path, int how) {
  if (!out) return;
  bson_iter_t it;
  bool ok = true;
  if (how != AS_MAPV && m2d_rb_rescued_at(&a->rb, path, &it)) ok = m2d_bson_append_value(out, key, &it);
  else if (how != AS_FIELD) ok = BSON_APPEND_NULL(out, key);
  if (!ok) vbad(a, path, "document too large");
}

/* --- leaf values ---------------------------------------------------------------------------- */

/* The value's text in the JSON form (what the JSON rows hold), NUL-terminated in a->text. */
static bool json_text(asm_t *a, const pq_node_t *l, const uint8_t *v, size_t len) {
  m2d_buf_reset(&a->text);
  bool ok = pq_json_value(l, v, len, &a->text, &a->rb_err) && m2d_buf_terminate(&a->text, &a->rb_err);
  if (ok && l->type == PQ_INT96) { /* a Delta timestamp is microseconds, as delta/scan prints it */
    char *dot = strrchr((char *)a->text.data, '.');
    if (dot && strlen(dot) == 12) memmove(dot + 7, dot + 10, 3);
    a->text.len = strlen((const char *)a->text.data);
  }
  return ok;
}

/* Any value by way of its JSON text (types with no direct form below: the same result). */
static void by_text(asm_t *a, const pq_node_t *l, const uint8_t *v, size_t len, const json_t *type, const json_t *meta,
                    int depth, bson_t *out, const char *key, const char *path) {
  if (!json_text(a, l, v, len)) {
    rb_result(a, false);
    return;
  }
  json_t *x = json_loadb((const char *)a->text.data, a->text.len, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
  if (!x) {
    vbad(a, path, "unreadable value");
    return;
  }
  if (json_is_null(x)) put_null(a, out, key, path, AS_FIELD);
  else rb_result(a, m2d_rb_append_json(&a->rb, out, key, type, meta, depth, x, path));
  json_decref(x);
}

/* Valid UTF-8 as the JSON form checks it (invalid bytes become U+FFFD there). */
static bool utf8_ok(const uint8_t *s, size_t n) {
  for (size_t i = 0; i < n;) {
    uint8_t c = s[i];
    if (c < 0x80) {
      i++;
      continue;
    }
    size_t len = c >= 0xF0 && c <= 0xF4 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 && c <= 0xDF ? 2 : 0;
    if (!len || i + len > n) return false;
    for (size_t k = 1; k < len; k++)
      if ((s[i + k] & 0xC0) != 0x80) return false;
    if (len == 3) {
      uint32_t cp = (uint32_t)(c & 0x0F) << 12 | (uint32_t)(s[i + 1] & 0x3F) << 6 | (s[i + 2] & 0x3F);
      if (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    } else if (len == 4) {
      uint32_t cp = (uint32_t)(c & 0x07) << 18 | (uint32_t)(s[i + 1] & 0x3F) << 12 | (uint32_t)(s[i + 2] & 0x3F) << 6 |
                    (s[i + 3] & 0x3F);
      if (cp < 0x10000 || cp > 0x10FFFF) return false;
    }
    i += len;
  }
  return true;
}

static bool is_string_leaf(const pq_node_t *l) {
  const pq_logical_kind_t k = l->logical.kind;
  return l->type == PQ_BYTE_ARRAY && (k == PQ_LT_STRING || k == PQ_LT_ENUM || k == PQ_LT_JSON ||
                                      (l->has_converted && (l->converted == PQ_CT_UTF8 || l->converted == PQ_CT_ENUM ||
                                                            l->converted == PQ_CT_JSON)));
}

/* A plain signed integer leaf (no decimal, date, time or unsigned annotation). */
static bool is_plain_int(const pq_node_t *l) {
  if (l->type != PQ_INT32 && l->type != PQ_INT64) return false;
  if (l->logical.kind == PQ_LT_INTEGER) return l->logical.is_signed;
  if (l->logical.kind != PQ_LT_NONE) return false;
  return !l->has_converted || l->converted == PQ_CT_INT_8 || l->converted == PQ_CT_INT_16 ||
         l->converted == PQ_CT_INT_32 || l->converted == PQ_CT_INT_64;
}

static bool is_plain_bytes(const pq_node_t *l) {
  return (l->type == PQ_BYTE_ARRAY || l->type == PQ_FIXED_LEN_BYTE_ARRAY) && l->logical.kind == PQ_LT_NONE &&
         !l->has_converted;
}

/* The leaf's value as a NUL-terminated string in a->text (its bytes, or its JSON form decoded
 * when they are not valid UTF-8); false when it is no string. */
static bool string_value(asm_t *a, const pq_node_t *l, const uint8_t *v, size_t len, size_t *slen) {
  if (utf8_ok(v, len)) {
    m2d_buf_reset(&a->text);
    if (!m2d_buf_append(&a->text, v, len, &a->rb_err) || !m2d_buf_terminate(&a->text, &a->rb_err)) return false;
    *slen = len;
    return true;
  }
  if (!json_text(a, l, v, len)) return false;
  json_t *x = json_loadb((const char *)a->text.data, a->text.len, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
  bool ok = json_is_string(x);
  if (ok) {
    m2d_buf_reset(&a->text);
    *slen = json_string_length(x);
    ok = m2d_buf_append(&a->text, json_string_value(x), *slen, &a->rb_err) && m2d_buf_terminate(&a->text, &a->rb_err);
  }
  json_decref(x);
  return ok;
}

static bool leaf(asm_t *a, const pq_node_t *l, const json_t *type, const json_t *meta, int depth, bson_t *out,
                 const char *key, const char *path) {
  const uint8_t *v;
  size_t len;
  if (!pq_dremel_take(&a->d, l, &v, &len, a->err)) return false;
  if (!out) return true;
  const char *t = json_string_value(type);
  if (!t) {
    const char *kind = json_string_value(json_object_get(type, "type"));
    if (!kind) return vbad(a, path, "no type");
    if (!strcmp(kind, "struct")) return vbad(a, path, "a document was expected");
    if (!strcmp(kind, "array")) return vbad(a, path, "an array was expected");
    if (!strcmp(kind, "map")) return vbad(a, path, "a map was expected");
    return vbad(a, path, "unknown nested type");
  }
  const pq_logical_type_t *lt = &l->logical;
  bool ok = true;
  if (!strcmp(t, "string") && is_string_leaf(l)) {
    size_t slen;
    if (!string_value(a, l, v, len, &slen)) return vbad(a, path, "a string was expected");
    rb_result(a, m2d_rb_append_string(&a->rb, out, key, m2d_rb_origin(meta, depth), (const char *)a->text.data, slen, path));
    return true;
  }
  if ((!strcmp(t, "integer") || !strcmp(t, "short") || !strcmp(t, "byte") || !strcmp(t, "long")) && is_plain_int(l)) {
    int64_t x;
    if (l->type == PQ_INT32) {
      int32_t y;
      memcpy(&y, v, 4);
      x = y;
    } else {
      memcpy(&x, v, 8);
    }
    ok = t[0] == 'l' ? BSON_APPEND_INT64(out, key, x) : BSON_APPEND_INT32(out, key, (int32_t)x);
  } else if (!strcmp(t, "double") && l->type == PQ_DOUBLE) {
    double d;
    memcpy(&d, v, 8);
    ok = BSON_APPEND_DOUBLE(out, key, isnan(d) ? NAN : d); /* the JSON form has one NaN */
  } else if ((!strcmp(t, "double") || !strcmp(t, "float")) && l->type == PQ_FLOAT) {
    /* the JSON form prints the float's shortest text, which is read back as a double */
    float f;
    memcpy(&f, v, 4);
    double d = f;
    if (isfinite(f) && f != 0) {
      char buf[40];
      for (int prec = 6; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, (double)f);
        if ((float)strtod(buf, NULL) == f) break;
      }
      d = strtod(buf, NULL);
    }
    if (isnan(d)) d = NAN;
    ok = BSON_APPEND_DOUBLE(out, key, d);
  } else if (!strcmp(t, "float") && l->type == PQ_DOUBLE) {
    double d;
    memcpy(&d, v, 8);
    ok = BSON_APPEND_DOUBLE(out, key, isnan(d) ? NAN : d);
  } else if (!strcmp(t, "boolean") && l->type == PQ_BOOLEAN) {
    ok = BSON_APPEND_BOOL(out, key, v[0] != 0);
  } else if ((!strcmp(t, "timestamp") || !strcmp(t, "timestamp_ntz")) && l->type == PQ_INT64 &&
             ((lt->kind == PQ_LT_TIMESTAMP && lt->unit != PQ_UNIT_NANOS && lt->is_adjusted_to_utc == (t[9] == '\0')) ||
              (lt->kind == PQ_LT_NONE && l->has_converted &&
               (l->converted == PQ_CT_TIMESTAMP_MICROS || l->converted == PQ_CT_TIMESTAMP_MILLIS) && t[9] == '\0'))) {
    int64_t x;
    memcpy(&x, v, 8);
    bool millis = lt->kind == PQ_LT_TIMESTAMP ? lt->unit == PQ_UNIT_MILLIS : l->converted == PQ_CT_TIMESTAMP_MILLIS;
    int64_t ms = millis ? x : x >= 0 ? x / 1000 : -((-x + 999) / 1000);
    ok = BSON_APPEND_DATE_TIME(out, key, ms);
  } else if (!strcmp(t, "date") && l->type == PQ_INT32 &&
             (lt->kind == PQ_LT_DATE || (lt->kind == PQ_LT_NONE && l->has_converted && l->converted == PQ_CT_DATE))) {
    int32_t days;
    memcpy(&days, v, 4);
    ok = BSON_APPEND_DATE_TIME(out, key, (int64_t)days * 86400000);
  } else if (!strcmp(t, "binary") && is_plain_bytes(l)) {
    ok = bson_append_binary(out, key, -1, BSON_SUBTYPE_BINARY, v, (uint32_t)len);
  } else if (!strncmp(t, "decimal", 7) && (lt->kind == PQ_LT_DECIMAL || (l->has_converted && l->converted == PQ_CT_DECIMAL))) {
    /* the decimal's digits, as the JSON form has them */
    if (!json_text(a, l, v, len)) return vbad(a, path, "not a decimal");
    char *s = (char *)a->text.data;
    bson_decimal128_t d;
    size_t n = strlen(s);
    if (n < 2 || s[0] != '"') return vbad(a, path, "a string was expected");
    s[n - 1] = '\0';
    if (!bson_decimal128_from_string(s + 1, &d)) return vbad(a, path, "not a decimal");
    ok = BSON_APPEND_DECIMAL128(out, key, &d);
  } else {
    by_text(a, l, v, len, type, meta, depth, out, key, path);
  }
  if (!ok) vbad(a, path, "document too large");
  return true;
}

/* --- nested values -------------------------------------------------------------------------- */

static bool value(asm_t *a, const pq_node_t *n, const json_t *type, const json_t *meta, int depth, bson_t *out,
                  const char *key, const char *path, int how, int nest);

static const char *kind_of(const json_t *type) { return json_string_value(json_object_get(type, "type")); }

static bool struct_value(asm_t *a, const pq_node_t *g, const json_t *type, const json_t *meta, int depth, bson_t *out,
                         const char *key, const char *path, int nest) {
  const char *kind = kind_of(type);
  if (out && (!kind || strcmp(kind, "struct") != 0)) {
    vbad(a, path, kind ? "unknown nested type" : "no type");
    out = NULL;
  }
  const char *orig = out ? m2d_rb_origin(meta, depth) : NULL;
  bool as_ts = orig && strcmp(orig, "timestamp") == 0;
  bson_t child, *co = NULL;
  if (as_ts) {
    bson_init(&child);
    co = &child;
  } else if (out) {
    if (bson_append_document_begin(out, key, -1, &child)) co = &child;
    else vbad(a, path, "document too large");
  }
  bool few[64] = {0}, *done = g->nchildren <= 64 ? few : calloc((size_t)g->nchildren, sizeof *done);
  if (!done) return m2d_error_set(a->err, M2D_ERR_LIMIT, 0, "out of memory");
  bool ok = true;
  const json_t *fields = json_object_get(type, "fields");
  size_t i;
  json_t *f;
  if (co) json_array_foreach(fields, i, f) {
      const char *name = json_string_value(json_object_get(f, "name"));
      if (!name) continue;
      char sub[2048];
      snprintf(sub, sizeof sub, "%s%s%s", path, *path ? "." : "", name);
      int at = -1;
      for (int c = 0; c < g->nchildren; c++) /* the last of equal names, as a JSON object keeps it */
        if (pq_dremel_node_selected(&a->d, g->children[c]) && strcmp(g->children[c]->name, name) == 0) at = c;
      if (at >= 0 && !done[at]) {
        done[at] = true;
        ok = value(a, g->children[at], json_object_get(f, "type"), json_object_get(f, "metadata"), 0, co, name, sub,
                   AS_FIELD, nest + 1);
      } else {
        put_null(a, co, name, sub, AS_FIELD);
      }
      if (!ok) break;
    }
  for (int c = 0; ok && c < g->nchildren; c++) /* fields the table has no column for: walked past */
    if (!done[c] && pq_dremel_node_selected(&a->d, g->children[c]))
      ok = value(a, g->children[c], NULL, NULL, 0, NULL, "", "", AS_FIELD, nest + 1);
  if (done != few) free(done);
  if (co) rb_result(a, m2d_rb_append_unknown_rescued(&a->rb, co, fields, path));
  if (as_ts) {
    bson_iter_t t, in;
    bool is_ts = bson_iter_init_find(&t, &child, "t") && BSON_ITER_HOLDS_INT(&t) && bson_iter_init_find(&in, &child, "i") &&
                 BSON_ITER_HOLDS_INT(&in);
    bool put = is_ts ? BSON_APPEND_TIMESTAMP(out, key, (uint32_t)bson_iter_as_int64(&t), (uint32_t)bson_iter_as_int64(&in))
                     : bson_append_document(out, key, -1, &child);
    if (!put) vbad(a, path, "document too large");
    bson_destroy(&child);
  } else if (co && !bson_append_document_end(out, co)) {
    vbad(a, path, "document too large");
  }
  return ok;
}

/* A nested key's value as JSON (lists and structs of numbers, strings, booleans: what keys
 * of that kind hold). */
static json_t *bson_json(bson_iter_t *it) {
  switch (bson_iter_type(it)) {
  case BSON_TYPE_INT32:
  case BSON_TYPE_INT64: return json_integer(bson_iter_as_int64(it));
  case BSON_TYPE_DOUBLE: return json_real(bson_iter_double(it));
  case BSON_TYPE_BOOL: return json_boolean(bson_iter_bool(it));
  case BSON_TYPE_UTF8: {
    uint32_t n;
    const char *s = bson_iter_utf8(it, &n);
    return json_stringn(s, n);
  }
  case BSON_TYPE_ARRAY:
  case BSON_TYPE_DOCUMENT: {
    bool arr = BSON_ITER_HOLDS_ARRAY(it);
    json_t *o = arr ? json_array() : json_object();
    bson_iter_t c;
    if (bson_iter_recurse(it, &c))
      while (bson_iter_next(&c)) {
        json_t *x = bson_json(&c);
        if (arr) json_array_append_new(o, x ? x : json_null());
        else json_object_set_new(o, bson_iter_key(&c), x ? x : json_null());
      }
    return o;
  }
  default: return json_null();
  }
}

/* The name of a map entry's key, as m2d_row_to_bson names it from the JSON form. */
static bool map_key(asm_t *a, const pq_node_t *k, const json_t *key_type, bool as_object, char **name) {
  *name = NULL;
  const pq_node_t *l = pq_dremel_first_leaf(&a->d, k);
  if (!l) return true;
  if (!pq_dremel_has_slot(&a->d, l)) return corrupt(a);
  if (pq_dremel_def_at(&a->d, l) < k->max_def) {
    if (!pq_dremel_skip(&a->d, k, a->err)) return false;
    *name = strdup("null");
    return true;
  }
  if (k->is_group) { /* a list or struct key: named by its JSON text */
    bson_t tmp = BSON_INITIALIZER;
    bson_iter_t it;
    if (!value(a, k, key_type, NULL, 0, &tmp, "k", "", AS_ELEM, 1)) return bson_destroy(&tmp), false;
    json_t *x = bson_iter_init_find(&it, &tmp, "k") ? bson_json(&it) : NULL;
    *name = x ? json_dumps(x, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
    json_decref(x);
    bson_destroy(&tmp);
    return true;
  }
  const uint8_t *v;
  size_t len;
  if (!pq_dremel_take(&a->d, k, &v, &len, a->err)) return false;
  if (as_object) {
    size_t slen;
    if (!string_value(a, k, v, len, &slen)) return true;
    *name = strdup((const char *)a->text.data);
    return true;
  }
  /* other keys are named by their JSON text ([[key, value], ...] in the JSON form) */
  if (!json_text(a, k, v, len)) return true;
  json_t *x = json_loadb((const char *)a->text.data, a->text.len, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
  char *s = x ? json_dumps(x, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
  json_decref(x);
  if (s && s[0] == '"') {
    s[strlen(s) - 1] = '\0';
    memmove(s, s + 1, strlen(s));
  }
  *name = s;
  return true;
}

/* The entries of a repeated node r (list elements or map entries). */
static bool repeated(asm_t *a, const pq_node_t *r, const pq_node_t *elem, bool is_map, const json_t *type,
                     const json_t *meta, int depth, bson_t *out, const char *key, const char *path, int nest) {
  if (nest > 128) return m2d_error_set(a->err, M2D_ERR_FORMAT, 0, "nesting too deep");
  const pq_node_t *l = pq_dremel_first_leaf(&a->d, r);
  bool map_object = is_map && !r->children[0]->is_group &&
                    (r->children[0]->logical.kind == PQ_LT_STRING ||
                     (r->children[0]->has_converted && r->children[0]->converted == PQ_CT_UTF8));
  const char *kind = kind_of(type);
  bson_t child, *co = NULL;
  if (out) {
    if (!kind || strcmp(kind, is_map ? "map" : "array") != 0) {
      vbad(a, path, !json_is_object(type) || !kind ? "no type" : is_map ? "a map was expected" : "an array was expected");
    } else if (is_map ? bson_append_document_begin(out, key, -1, &child) : bson_append_array_begin(out, key, -1, &child)) {
      co = &child;
    } else {
      vbad(a, path, "document too large");
    }
  }
  bool ok = true;
  if (pq_dremel_def_at(&a->d, l) < r->max_def) { /* an empty list or map */
    ok = pq_dremel_skip(&a->d, r, a->err);
  } else {
    const json_t *et = json_object_get(type, is_map ? "valueType" : "elementType");
    for (size_t idx = 0; ok; idx++) {
      char ik[32], sub[2048];
      snprintf(ik, sizeof ik, "%zu", idx);
      snprintf(sub, sizeof sub, "%s.%zu", path, idx);
      if (is_map) {
        const pq_node_t *k = r->children[0], *v = r->children[1];
        char *name = NULL;
        ok = pq_dremel_node_selected(&a->d, k) ? map_key(a, k, json_object_get(type, "keyType"), map_object, &name) : (bool)(name = strdup(map_object ? "" : "null"));
        if (ok && !name && co) vbad(a, path, "unreadable map key");
        if (ok && map_object) snprintf(sub, sizeof sub, "%s.%s", path, name ? name : "");
        else if (ok) snprintf(sub, sizeof sub, "%s", path);
        bson_t *dst = name ? co : NULL;
        if (ok && pq_dremel_node_selected(&a->d, v)) ok = value(a, v, et, meta, depth + 1, dst, name ? name : "", sub, AS_MAPV, nest + 1);
        else if (ok) put_null(a, dst, name ? name : "", sub, AS_MAPV);
        free(name);
      } else if (elem == r) { /* the repeated node is the element itself */
        const pq_node_t *rep2, *elem2;
        bool map2;
        if (r->is_group && pq_list_shape(r, &rep2, &elem2, &map2))
          ok = repeated(a, rep2, elem2, map2, et, meta, depth + 1, co, ik, sub, nest + 1);
        else if (r->is_group)
          ok = struct_value(a, r, et, meta, depth + 1, co, ik, sub, nest + 1);
        else
          ok = leaf(a, r, et, meta, depth + 1, co, ik, sub);
      } else {
        ok = value(a, elem, et, meta, depth + 1, co, ik, sub, AS_ELEM, nest + 1);
      }
      if (!ok || !pq_dremel_has_slot(&a->d, l)) break;
      if (a->d.cols[l->leaf_index].rep[a->d.slot[l->leaf_index]] < r->max_rep) break; /* another list starts */
    }
  }
  if (co && !(is_map ? bson_append_document_end(out, co) : bson_append_array_end(out, co))) vbad(a, path, "document too large");
  return ok;
}

static bool value(asm_t *a, const pq_node_t *n, const json_t *type, const json_t *meta, int depth, bson_t *out,
                  const char *key, const char *path, int how, int nest) {
  if (nest > 128) return m2d_error_set(a->err, M2D_ERR_FORMAT, 0, "nesting too deep");
  const pq_node_t *l = pq_dremel_first_leaf(&a->d, n);
  if (!l) {
    put_null(a, out, key, path, how);
    return true;
  }
  if (!pq_dremel_has_slot(&a->d, l)) return corrupt(a);
  if (n->repetition == PQ_REPEATED) return repeated(a, n, n, false, type, meta, depth, out, key, path, nest);
  if (pq_dremel_def_at(&a->d, l) < n->max_def) {
    if (!pq_dremel_skip(&a->d, n, a->err)) return false;
    put_null(a, out, key, path, how);
    return true;
  }
  if (!n->is_group) return leaf(a, n, type, meta, depth, out, key, path);
  const pq_node_t *rep, *elem;
  bool is_map;
  if (pq_list_shape(n, &rep, &elem, &is_map)) return repeated(a, rep, elem, is_map, type, meta, depth, out, key, path, nest);
  return struct_value(a, n, type, meta, depth, out, key, path, nest);
}

/* --- rows ----------------------------------------------------------------------------------- */

typedef struct {
  const json_t *schema; /* the table's (a struct) */
  m2d_doc_fn fn;
  void *ud;
  bool stopped;
} scan_t;


/* One row: the table's columns in its order, the constants of the file, then the rescued
 * values of fields the table has no column for. */
static bool row(asm_t *a, const json_t *schema, const int *at, json_t **consts, bson_t *out) {
  const delta_batch_t *b = a->b;
  a->vfailed = false;
  a->rb = (m2d_rb_ctx_t){.err = &a->rb_err};
  const json_t *fields = json_object_get(schema, "fields");
  size_t nf = json_array_size(fields);
  /* _rescued_data first: the other columns' nulls look there */
  for (size_t i = 0; i < nf; i++) {
    if (at[i] < 0 || strcmp(b->fields[at[i]].name, RESCUE) != 0) continue;
    const pq_node_t *n = b->fields[at[i]].node;
    const char *r = json_string_value(consts[at[i]]);
    const pq_node_t *l = n ? pq_dremel_first_leaf(&a->d, n) : NULL;
    if (l && !pq_dremel_has_slot(&a->d, l)) return corrupt(a);
    if (l && !n->is_group && n->repetition != PQ_REPEATED && pq_dremel_def_at(&a->d, l) == n->max_def) {
      const uint8_t *v;
      size_t len, slen;
      if (!pq_dremel_take(&a->d, n, &v, &len, a->err)) return false;
      r = is_string_leaf(n) && string_value(a, n, v, len, &slen) ? (const char *)a->text.data : NULL;
    } else if (n && !value(a, n, NULL, NULL, 0, NULL, "", "", AS_FIELD, 0)) {
      return false;
    }
    rb_result(a, m2d_rb_open_rescued(&a->rb, r));
  }
  size_t i;
  json_t *f;
  json_array_foreach(fields, i, f) {
    const char *name = json_string_value(json_object_get(f, "name"));
    if (!name || strcmp(name, RESCUE) == 0) continue;
    const json_t *type = json_object_get(f, "type"), *meta = json_object_get(f, "metadata");
    bson_t *dst = a->vfailed ? NULL : out;
    if (at[i] < 0) {
      put_null(a, dst, name, name, AS_FIELD); /* a column not asked for */
    } else if (b->fields[at[i]].node) {
      if (!value(a, b->fields[at[i]].node, type, meta, 0, dst, name, name, AS_FIELD, 0)) return false;
    } else if (!consts[at[i]] || json_is_null(consts[at[i]])) {
      put_null(a, dst, name, name, AS_FIELD);
    } else if (dst) {
      rb_result(a, m2d_rb_append_json(&a->rb, dst, name, type, meta, 0, consts[at[i]], name));
    }
  }
  /* selected columns of the file the table does not name (cannot happen: the scan asks by name) */
  if (!a->vfailed) rb_result(a, m2d_rb_append_unknown_rescued(&a->rb, out, fields, ""));
  if (a->rb.rescued) bson_destroy(a->rb.rescued);
  a->rb.rescued = NULL;
  return true;
}

static bool on_batch(const delta_batch_t *b, void *ud, m2d_error_t *err) {
  scan_t *s = ud;
  const json_t *fields = json_object_get(s->schema, "fields");
  size_t nf = json_array_size(fields);
  int *at = calloc(nf + 1, sizeof *at);
  json_t **consts = calloc((size_t)b->nfields + 1, sizeof *consts);
  asm_t a = {.b = b, .err = err};
  bool ok = pq_dremel_init(&a.d, b->cols, b->selected, b->schema->nleaves, err);
  m2d_buf_init(&a.text, (size_t)1 << 31);
  if (ok && !(at && consts)) ok = m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory");
  for (size_t i = 0; ok && i < nf; i++) {
    const char *name = json_string_value(json_object_get(json_array_get(fields, i), "name"));
    at[i] = -1;
    for (int k = 0; name && k < b->nfields; k++)
      if (strcmp(b->fields[k].name, name) == 0) at[i] = k;
  }
  /* a file's constants (partition values, columns it lacks): one small JSON literal each */
  for (int k = 0; ok && k < b->nfields; k++)
    if (!b->fields[k].node && b->fields[k].literal)
      consts[k] = json_loads(b->fields[k].literal, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
  if (ok && b->row_group == 0) ok = pq_check_maps(b->schema->root, err);
  const pq_node_t *first = pq_dremel_first_leaf(&a.d, b->schema->root);
  bson_t doc;
  for (int64_t r = 0; ok && r < b->nrows; r++) {
    if (first && !pq_dremel_has_slot(&a.d, first)) {
      ok = m2d_error_set(err, M2D_ERR_FORMAT, 0, "row group %d ends before its %lld rows", b->row_group, (long long)b->nrows);
      break;
    }
    const m2d_column_t *fc = first ? &b->cols[first->leaf_index] : NULL;
    if (fc && fc->max_rep > 0 && fc->rep[a.d.slot[first->leaf_index]] != 0) {
      ok = m2d_error_set(err, M2D_ERR_FORMAT, 0, "corrupt column: a row starts with a repetition level above 0");
      break;
    }
    bson_init(&doc);
    ok = row(&a, s->schema, at, consts, &doc);
    uint64_t pos = b->first_row + (uint64_t)r;
    if (ok && !(b->dv && delta_dv_contains(b->dv, pos)) &&
        !s->fn(a.vfailed ? NULL : &doc, a.vfailed ? &a.verr : NULL, b->file, pos, s->ud))
      s->stopped = true;
    bson_destroy(&doc);
    if (s->stopped) break;
  }
  for (int k = 0; consts && k < b->nfields; k++) json_decref(consts[k]);
  free(consts);
  free(at);
  pq_dremel_free(&a.d);
  m2d_buf_free(&a.text);
  return ok && !s->stopped;
}

bool m2d_scan_documents(m2d_store_t *store, const delta_snapshot_t *snap, const char *columns, m2d_doc_fn fn, void *ud,
                        m2d_error_t *err) {
  const char *ss = json_string_value(json_object_get(snap->metadata, "schemaString"));
  json_t *schema = ss ? json_loads(ss, 0, NULL) : NULL;
  scan_t s = {schema, fn, ud, false};
  /* an unreadable schema: the scan says so */
  bool ok = delta_scan_batches(store, snap, columns, on_batch, &s, err);
  json_decref(schema);
  return ok;
}
