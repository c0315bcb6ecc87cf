#include "pipeline/row_bson.h"

#include "parquet/json_input.h"
#include "schema/bson_value.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RESCUE "_rescued_data"

typedef m2d_rb_ctx_t ctx_t;

/* libbson's Extended JSON parser (1.23) cuts JavaScript code at an embedded NUL; such a value
 * cannot come back exactly, and a row is refused rather than written cut. */
static bool code_with_nul(const char *json) {
  return strstr(json, "\"$code\"") && strstr(json, "\\u0000");
}



/* The origin recorded for this nesting depth of a field (0: the field, 1: its elements...). */
const char *m2d_rb_origin(const json_t *meta, int depth) {
  char key[256] = "mongo2delta.bsonType";
  for (int i = 0; i < depth && strlen(key) < 200; i++) strcat(key, ".element");
  return json_string_value(json_object_get(meta, key));
}

bool m2d_rb_rescued_at(const ctx_t *c, const char *path, bson_iter_t *it) {
  return c->rescued && bson_iter_init_find(it, c->rescued, path);
}

static bool bad(ctx_t *c, const char *path, const char *what) {
  return m2d_error_set(c->err, M2D_ERR_FORMAT, 0, "column '%s': %s", path, what);
}

static bool hex_oid(const char *s, bson_oid_t *oid) {
  if (!bson_oid_is_valid(s, strlen(s)) || strlen(s) != 24) return false;
  bson_oid_init_from_string(oid, s);
  return true;
}

static bool uuid_bytes(const char *s, uint8_t out[16]) {
  int n = 0;
  for (const char *p = s; *p; p++) {
    if (*p == '-') continue;
    unsigned x;
    if (n >= 16 || sscanf(p, "%2x", &x) != 1 || !p[1]) return false;
    out[n++] = (uint8_t)x;
    p++;
  }
  return n == 16;
}

bool m2d_rb_append_string(ctx_t *c, bson_t *out, const char *key, const char *orig, const char *s, size_t slen,
                          const char *path) {
  if (orig && strcmp(orig, "objectId") == 0) {
    bson_oid_t oid;
    if (hex_oid(s, &oid)) return BSON_APPEND_OID(out, key, &oid);
  } else if (orig && (strcmp(orig, "uuid") == 0 || strcmp(orig, "uuidLegacy") == 0)) {
    uint8_t b[16];
    if (uuid_bytes(s, b))
      return bson_append_binary(out, key, -1, strcmp(orig, "uuid") == 0 ? BSON_SUBTYPE_UUID : BSON_SUBTYPE_UUID_DEPRECATED,
                                b, 16);
  } else if (orig && strcmp(orig, "decimal128") == 0) {
    bson_decimal128_t d;
    if (bson_decimal128_from_string(s, &d)) return BSON_APPEND_DECIMAL128(out, key, &d);
  } else if (orig && strcmp(orig, "extjson") == 0) {
    /* the value's canonical Extended JSON: parse it inside a one-field document */
    if (code_with_nul(s))
      return bad(c, path, "JavaScript code with a NUL character cannot be read back exactly (libbson cuts it)");
    size_t n = strlen(s);
    char *wrapped = malloc(n + 16);
    if (!wrapped) return bad(c, path, "out of memory");
    snprintf(wrapped, n + 16, "{\"v\": %s}", s);
    bson_error_t e;
    bson_t *b = bson_new_from_json((const uint8_t *)wrapped, -1, &e);
    free(wrapped);
    bson_iter_t it;
    bool ok = b && bson_iter_init_find(&it, b, "v") && m2d_bson_append_value(out, key, &it);
    if (b) bson_destroy(b);
    if (ok) return true;
  }
  /* a plain string (or an origin the value does not parse as); it may hold NUL characters */
  return bson_append_utf8(out, key, -1, s, (int)slen);
}

static bool append_struct(ctx_t *c, bson_t *out, const json_t *type, const json_t *v, const char *path);

static bool append_array(ctx_t *c, bson_t *out, const char *key, const json_t *type, const json_t *meta, int depth,
                         const json_t *v, const char *path) {
  if (!json_is_array(v)) return bad(c, path, "an array was expected");
  bson_t child;
  if (!bson_append_array_begin(out, key, -1, &child)) return bad(c, path, "document too large");
  bool ok = true;
  size_t i;
  json_t *e;
  json_array_foreach(v, i, e) {
    char idx[32], sub[2048];
    snprintf(idx, sizeof idx, "%zu", i);
    snprintf(sub, sizeof sub, "%s.%zu", path, i);
    bson_iter_t it;
    if (json_is_null(e) && m2d_rb_rescued_at(c, sub, &it)) ok = m2d_bson_append_value(&child, idx, &it);
    else if (json_is_null(e)) ok = BSON_APPEND_NULL(&child, idx);
    else ok = m2d_rb_append_json(c, &child, idx, json_object_get(type, "elementType"), meta, depth + 1, e, sub);
    if (!ok) break;
  }
  return bson_append_array_end(out, &child) && ok;
}

static bool append_map(ctx_t *c, bson_t *out, const char *key, const json_t *type, const json_t *meta, int depth,
                       const json_t *v, const char *path) {
  bson_t child;
  if (!bson_append_document_begin(out, key, -1, &child)) return bad(c, path, "document too large");
  bool ok = true;
  const json_t *vt = json_object_get(type, "valueType");
  if (json_is_object(v)) {
    const char *k;
    json_t *x;
    json_object_foreach((json_t *)v, k, x) {
      char sub[2048];
      snprintf(sub, sizeof sub, "%s.%s", path, k);
      ok = json_is_null(x) ? BSON_APPEND_NULL(&child, k) : m2d_rb_append_json(c, &child, k, vt, meta, depth + 1, x, sub);
      if (!ok) break;
    }
  } else if (json_is_array(v)) { /* non-string keys: [[key, value], ...]; the key's JSON text names it */
    size_t i;
    json_t *pair;
    json_array_foreach(v, i, pair) {
      char *k = json_dumps(json_array_get(pair, 0), JSON_ENCODE_ANY | JSON_COMPACT);
      const json_t *x = json_array_get(pair, 1);
      const char *name = k ? (k[0] == '"' ? k + 1 : k) : "?";
      if (k && k[0] == '"') k[strlen(k) - 1] = '\0';
      ok = !x || json_is_null(x) ? BSON_APPEND_NULL(&child, name) : m2d_rb_append_json(c, &child, name, vt, meta, depth + 1, x, path);
      free(k);
      if (!ok) break;
    }
  } else {
    ok = bad(c, path, "a map was expected");
  }
  return bson_append_document_end(out, &child) && ok;
}

bool m2d_rb_append_json(ctx_t *c, bson_t *out, const char *key, const json_t *type, const json_t *meta, int depth,
                         const json_t *v, const char *path) {
  const char *orig = m2d_rb_origin(meta, depth);
  if (json_is_object(type)) {
    const char *kind = json_string_value(json_object_get(type, "type"));
    if (kind && strcmp(kind, "struct") == 0) {
      if (!json_is_object(v)) return bad(c, path, "a document was expected");
      if (orig && strcmp(orig, "timestamp") == 0) {
        json_t *t = json_object_get(v, "t"), *i = json_object_get(v, "i");
        if (json_is_integer(t) && json_is_integer(i))
          return BSON_APPEND_TIMESTAMP(out, key, (uint32_t)json_integer_value(t), (uint32_t)json_integer_value(i));
      }
      bson_t child;
      if (!bson_append_document_begin(out, key, -1, &child)) return bad(c, path, "document too large");
      bool ok = append_struct(c, &child, type, v, path);
      return bson_append_document_end(out, &child) && ok;
    }
    if (kind && strcmp(kind, "array") == 0) return append_array(c, out, key, type, meta, depth, v, path);
    if (kind && strcmp(kind, "map") == 0) return append_map(c, out, key, type, meta, depth, v, path);
    return bad(c, path, "unknown nested type");
  }
  const char *t = json_string_value(type);
  if (!t) return bad(c, path, "no type");
  if (strcmp(t, "boolean") == 0) {
    if (!json_is_boolean(v)) return bad(c, path, "a boolean was expected");
    return BSON_APPEND_BOOL(out, key, json_is_true(v));
  }
  if (strcmp(t, "integer") == 0 || strcmp(t, "short") == 0 || strcmp(t, "byte") == 0) {
    if (!json_is_integer(v)) return bad(c, path, "an integer was expected");
    return BSON_APPEND_INT32(out, key, (int32_t)json_integer_value(v));
  }
  if (strcmp(t, "long") == 0) {
    if (!json_is_integer(v)) return bad(c, path, "an integer was expected");
    return BSON_APPEND_INT64(out, key, (int64_t)json_integer_value(v));
  }
  if (strcmp(t, "double") == 0 || strcmp(t, "float") == 0) {
    double d;
    if (json_is_number(v)) d = json_number_value(v);
    else if (json_is_string(v) && strcmp(json_string_value(v), "NaN") == 0) d = NAN;
    else if (json_is_string(v) && strcmp(json_string_value(v), "Infinity") == 0) d = INFINITY;
    else if (json_is_string(v) && strcmp(json_string_value(v), "-Infinity") == 0) d = -INFINITY;
    else return bad(c, path, "a number was expected");
    return BSON_APPEND_DOUBLE(out, key, d);
  }
  if (!json_is_string(v)) return bad(c, path, "a string was expected");
  const char *s = json_string_value(v);
  if (strcmp(t, "string") == 0) return m2d_rb_append_string(c, out, key, orig, s, json_string_length(v), path);
  if (strncmp(t, "decimal", 7) == 0) {
    bson_decimal128_t d;
    if (!bson_decimal128_from_string(s, &d)) return bad(c, path, "not a decimal");
    return BSON_APPEND_DECIMAL128(out, key, &d);
  }
  if (strcmp(t, "timestamp") == 0 || strcmp(t, "timestamp_ntz") == 0) {
    int64_t us;
    if (!m2d_parse_timestamp(s, strcmp(t, "timestamp") == 0, &us)) return bad(c, path, "not a timestamp");
    int64_t ms = us >= 0 ? us / 1000 : -((-us + 999) / 1000);
    return BSON_APPEND_DATE_TIME(out, key, ms);
  }
  if (strcmp(t, "date") == 0) {
    int32_t days;
    if (!m2d_parse_date(s, &days)) return bad(c, path, "not a date");
    return BSON_APPEND_DATE_TIME(out, key, (int64_t)days * 86400000);
  }
  if (strcmp(t, "binary") == 0) {
    size_t n = strlen(s);
    uint8_t *b = malloc(n + 1);
    long len = b ? m2d_base64_decode(s, n, b, n + 1) : -1;
    bool ok = len >= 0 && bson_append_binary(out, key, -1, BSON_SUBTYPE_BINARY, b, (uint32_t)len);
    free(b);
    return ok || bad(c, path, "not base64");
  }
  return BSON_APPEND_UTF8(out, key, s); /* types with no closer BSON type (variant...) */
}

static bool append_struct(ctx_t *c, bson_t *out, const json_t *type, const json_t *v, const char *path) {
  size_t i;
  json_t *f;
  const json_t *fields = json_object_get(type, "fields");
  json_array_foreach(fields, i, f) {
    const char *name = json_string_value(json_object_get(f, "name"));
    if (!name || (!*path && strcmp(name, RESCUE) == 0)) continue;
    char sub[2048];
    snprintf(sub, sizeof sub, "%s%s%s", path, *path ? "." : "", name);
    const json_t *x = json_object_get(v, name);
    bson_iter_t it;
    bool ok = true;
    if ((!x || json_is_null(x)) && m2d_rb_rescued_at(c, sub, &it)) ok = m2d_bson_append_value(out, name, &it);
    else if (x && !json_is_null(x))
      ok = m2d_rb_append_json(c, out, name, json_object_get(f, "type"), json_object_get(f, "metadata"), 0, x, sub);
    if (!ok) return false;
  }
  return m2d_rb_append_unknown_rescued(c, out, fields, path);
}

bool m2d_rb_append_unknown_rescued(const ctx_t *c, bson_t *out, const json_t *fields, const char *path) {
  size_t i;
  json_t *f;
  /* rescued values of fields the table has no column for (at this level) */
  if (c->rescued) {
    bson_iter_t it;
    size_t plen = strlen(path);
    bson_iter_init(&it, c->rescued);
    while (bson_iter_next(&it)) {
      const char *k = bson_iter_key(&it);
      if (plen && (strncmp(k, path, plen) != 0 || k[plen] != '.')) continue;
      const char *rest = plen ? k + plen + 1 : k;
      bool known = false;
      json_array_foreach(fields, i, f) {
        const char *name = json_string_value(json_object_get(f, "name"));
        size_t nl = name ? strlen(name) : 0;
        if (name && strncmp(rest, name, nl) == 0 && (rest[nl] == '\0' || rest[nl] == '.')) known = true;
      }
      if (!known && !m2d_bson_append_value(out, rest, &it)) return bad((ctx_t *)c, path, "document too large");
    }
  }
  return true;
}

bool m2d_rb_open_rescued(ctx_t *c, const char *r) {
  m2d_error_t *err = c->err;
  if (r && code_with_nul(r))
    return m2d_error_set(err, M2D_ERR_FORMAT, 0,
                         "_rescued_data holds JavaScript code with a NUL character, which cannot be read back "
                         "exactly (libbson cuts it); the row is not written");
  if (r) {
    bson_error_t e;
    c->rescued = bson_new_from_json((const uint8_t *)r, -1, &e);
    if (!c->rescued) return m2d_error_set(err, M2D_ERR_FORMAT, 0, "_rescued_data is not Extended JSON: %s", e.message);
  }
  return true;
}

bool m2d_row_to_bson(const json_t *schema, const json_t *row, bson_t *out, m2d_error_t *err) {
  ctx_t c = {.err = err};
  if (!m2d_rb_open_rescued(&c, json_string_value(json_object_get(row, RESCUE)))) return false;
  bool ok = append_struct(&c, out, schema, row, "");
  if (c.rescued) bson_destroy(c.rescued);
  return ok;
}
