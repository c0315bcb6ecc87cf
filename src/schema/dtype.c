#include "schema/dtype.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

m2d_dtype_t *m2d_dtype_new(m2d_kind_t kind) {
  m2d_dtype_t *t = calloc(1, sizeof *t);
  if (t) t->kind = kind;
  return t;
}

void m2d_dtype_free(m2d_dtype_t *t) {
  if (!t) return;
  for (int i = 0; i < t->nfields; i++) {
    free(t->fields[i].name);
    m2d_dtype_free(t->fields[i].type);
  }
  free(t->fields);
  m2d_dtype_free(t->elem);
  free(t);
}

m2d_dtype_t *m2d_dtype_clone(const m2d_dtype_t *t) {
  if (!t) return NULL;
  m2d_dtype_t *c = m2d_dtype_new(t->kind);
  if (!c) return NULL;
  c->orig = t->orig;
  c->precision = t->precision;
  c->scale = t->scale;
  for (int i = 0; i < t->nfields; i++) {
    m2d_dtype_t *ft = m2d_dtype_clone(t->fields[i].type);
    if (!ft || !m2d_dtype_add_field(c, t->fields[i].name, ft, NULL)) {
      m2d_dtype_free(c);
      return NULL;
    }
  }
  if (t->elem && !(c->elem = m2d_dtype_clone(t->elem))) {
    m2d_dtype_free(c);
    return NULL;
  }
  return c;
}

m2d_field_t *m2d_dtype_field(const m2d_dtype_t *st, const char *name) {
  for (int i = 0; i < st->nfields; i++)
    if (strcmp(st->fields[i].name, name) == 0) return &st->fields[i];
  return NULL;
}

bool m2d_dtype_add_field(m2d_dtype_t *st, const char *name, m2d_dtype_t *type, m2d_error_t *err) {
  if (st->nfields == st->fields_cap) {
    int cap = st->fields_cap ? st->fields_cap * 2 : 8;
    m2d_field_t *f = realloc(st->fields, (size_t)cap * sizeof *f);
    if (!f) {
      m2d_dtype_free(type);
      return m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory adding field '%s'", name);
    }
    st->fields = f;
    st->fields_cap = cap;
  }
  char *n = strdup(name);
  if (!n) {
    m2d_dtype_free(type);
    return m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory adding field '%s'", name);
  }
  st->fields[st->nfields].name = n;
  st->fields[st->nfields].type = type;
  st->nfields++;
  return true;
}

const char *m2d_dtype_primitive_name(const m2d_dtype_t *t, char *buf, size_t bufsz) {
  switch (t->kind) {
  case M2D_T_NULL: return "string";
  case M2D_T_BOOLEAN: return "boolean";
  case M2D_T_INTEGER: return "integer";
  case M2D_T_LONG: return "long";
  case M2D_T_DOUBLE: return "double";
  case M2D_T_STRING: return "string";
  case M2D_T_BINARY: return "binary";
  case M2D_T_TIMESTAMP: return "timestamp";
  case M2D_T_DECIMAL: snprintf(buf, bufsz, "decimal(%d,%d)", t->precision, t->scale); return buf;
  default: return NULL;
  }
}

const char *m2d_orig_name(m2d_orig_t o) {
  static const char *names[] = {NULL, "objectId", "uuid", "uuidLegacy", "decimal128", "timestamp", "extjson", "date", NULL};
  return (size_t)o < sizeof names / sizeof names[0] ? names[o] : NULL;
}

static bool json_string(m2d_buf_t *out, const char *s, m2d_error_t *err) {
  if (!m2d_buf_append_byte(out, '"', err)) return false;
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    bool ok;
    if (*p == '"' || *p == '\\') ok = m2d_buf_appendf(out, err, "\\%c", *p);
    else if (*p < 0x20) ok = m2d_buf_appendf(out, err, "\\u%04x", *p);
    else ok = m2d_buf_append_byte(out, *p, err);
    if (!ok) return false;
  }
  return m2d_buf_append_byte(out, '"', err);
}

static bool type_json(const m2d_dtype_t *t, m2d_buf_t *out, m2d_error_t *err);

static bool struct_json(const m2d_dtype_t *t, m2d_buf_t *out, m2d_error_t *err) {
  if (!m2d_buf_append_str(out, "{\"type\":\"struct\",\"fields\":[", err)) return false;
  for (int i = 0; i < t->nfields; i++) {
    const m2d_dtype_t *ft = t->fields[i].type;
    if ((i && !m2d_buf_append_byte(out, ',', err)) || !m2d_buf_append_str(out, "{\"name\":", err) ||
        !json_string(out, t->fields[i].name, err) || !m2d_buf_append_str(out, ",\"type\":", err) ||
        !type_json(ft, out, err) || !m2d_buf_append_str(out, ",\"nullable\":true,\"metadata\":{", err))
      return false;
    const char *orig = m2d_orig_name(ft->orig);
    bool any = orig != NULL;
    if (orig && !m2d_buf_appendf(out, err, "\"mongo2delta.bsonType\":\"%s\"", orig)) return false;
    /* origins of array elements and map values (no field of their own to carry metadata):
     * "mongo2delta.bsonType.element", ".element.element", ... */
    char key[256] = "mongo2delta.bsonType";
    for (const m2d_dtype_t *e = ft; (e->kind == M2D_T_ARRAY || e->kind == M2D_T_MAP) && e->elem && strlen(key) < 200;) {
      e = e->elem;
      strcat(key, ".element");
      const char *eo = m2d_orig_name(e->orig);
      if (eo && !m2d_buf_appendf(out, err, "%s\"%s\":\"%s\"", any ? "," : "", key, eo)) return false;
      any |= eo != NULL;
    }
    if (!m2d_buf_append_str(out, "}}", err)) return false;
  }
  return m2d_buf_append_str(out, "]}", err);
}

static bool type_json(const m2d_dtype_t *t, m2d_buf_t *out, m2d_error_t *err) {
  char buf[32];
  const char *prim = m2d_dtype_primitive_name(t, buf, sizeof buf);
  if (prim) return json_string(out, prim, err);
  switch (t->kind) {
  case M2D_T_STRUCT: return struct_json(t, out, err);
  case M2D_T_ARRAY:
    return m2d_buf_append_str(out, "{\"type\":\"array\",\"elementType\":", err) && type_json(t->elem, out, err) &&
           m2d_buf_append_str(out, ",\"containsNull\":true}", err);
  case M2D_T_MAP:
    return m2d_buf_append_str(out, "{\"type\":\"map\",\"keyType\":\"string\",\"valueType\":", err) &&
           type_json(t->elem, out, err) && m2d_buf_append_str(out, ",\"valueContainsNull\":true}", err);
  default: return m2d_error_set(err, M2D_ERR_INTERNAL, 0, "unknown type kind %d", (int)t->kind);
  }
}

bool m2d_dtype_to_schema_json(const m2d_dtype_t *root, m2d_buf_t *out, m2d_error_t *err) {
  if (root->kind != M2D_T_STRUCT) return m2d_error_set(err, M2D_ERR_INTERNAL, 0, "a table schema must be a struct");
  return struct_json(root, out, err);
}

/* True when t holds no column at all (an empty struct, or an array/map of one). */
static bool strip_empty(m2d_dtype_t *t) {
  if (t->kind == M2D_T_ARRAY || t->kind == M2D_T_MAP) return t->elem && strip_empty(t->elem);
  if (t->kind != M2D_T_STRUCT) return false;
  int kept = 0;
  for (int i = 0; i < t->nfields; i++) {
    if (strip_empty(t->fields[i].type)) {
      free(t->fields[i].name);
      m2d_dtype_free(t->fields[i].type);
    } else {
      t->fields[kept++] = t->fields[i];
    }
  }
  t->nfields = kept;
  return kept == 0;
}

/* Removes, in every struct, fields whose name equals an earlier one's ignoring case. */
static void drop_case_duplicates(m2d_dtype_t *t) {
  if ((t->kind == M2D_T_ARRAY || t->kind == M2D_T_MAP) && t->elem) drop_case_duplicates(t->elem);
  if (t->kind != M2D_T_STRUCT) return;
  int kept = 0;
  for (int i = 0; i < t->nfields; i++) {
    bool dup = false;
    for (int j = 0; j < kept && !dup; j++) dup = strcasecmp(t->fields[j].name, t->fields[i].name) == 0;
    if (dup) {
      free(t->fields[i].name);
      m2d_dtype_free(t->fields[i].type);
    } else {
      drop_case_duplicates(t->fields[i].type);
      t->fields[kept++] = t->fields[i];
    }
  }
  t->nfields = kept;
}

void m2d_dtype_strip_empty(m2d_dtype_t *root) {
  drop_case_duplicates(root);
  (void)strip_empty(root);
}

m2d_field_t *m2d_dtype_field_ci(const m2d_dtype_t *st, const char *name) {
  for (int i = 0; i < st->nfields; i++)
    if (strcasecmp(st->fields[i].name, name) == 0) return &st->fields[i];
  return NULL;
}
