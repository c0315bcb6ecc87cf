/* Delta schemaString -> m2d_dtype_t (the other direction is in dtype.c). */
#include "schema/dtype.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

static m2d_dtype_t *parse_type(json_t *t, const char *path, m2d_error_t *err);

static m2d_orig_t orig_from_metadata(json_t *field, const char *key) {
  const char *name = json_string_value(json_object_get(json_object_get(field, "metadata"), key));
  if (!name) return M2D_ORIG_NONE;
  for (int o = M2D_ORIG_OBJECTID; o < M2D_ORIG_UNFIT; o++)
    if (m2d_orig_name((m2d_orig_t)o) && strcmp(m2d_orig_name((m2d_orig_t)o), name) == 0) return (m2d_orig_t)o;
  return M2D_ORIG_NONE;
}

static m2d_dtype_t *parse_struct(json_t *t, const char *path, m2d_error_t *err) {
  json_t *fields = json_object_get(t, "fields");
  if (!json_is_array(fields)) {
    m2d_error_set(err, M2D_ERR_FORMAT, 0, "schema: struct at '%s' has no fields array", path);
    return NULL;
  }
  m2d_dtype_t *st = m2d_dtype_new(M2D_T_STRUCT);
  size_t i;
  json_t *f;
  json_array_foreach(fields, i, f) {
    const char *name = json_string_value(json_object_get(f, "name"));
    if (!name) {
      m2d_error_set(err, M2D_ERR_FORMAT, 0, "schema: a field of '%s' has no name", path);
      goto fail;
    }
    char sub[1024];
    snprintf(sub, sizeof sub, "%s%s%s", path, *path ? "." : "", name);
    m2d_dtype_t *ft = parse_type(json_object_get(f, "type"), sub, err);
    if (!ft) goto fail;
    m2d_orig_t o = orig_from_metadata(f, "mongo2delta.bsonType");
    if (o) ft->orig = o;
    char key[256] = "mongo2delta.bsonType";
    for (m2d_dtype_t *e = ft; (e->kind == M2D_T_ARRAY || e->kind == M2D_T_MAP) && e->elem && strlen(key) < 200;) {
      e = e->elem;
      strcat(key, ".element");
      if ((o = orig_from_metadata(f, key))) e->orig = o;
    }
    if (!m2d_dtype_add_field(st, name, ft, err)) goto fail;
  }
  return st;
fail:
  m2d_dtype_free(st);
  return NULL;
}

static m2d_dtype_t *parse_type(json_t *t, const char *path, m2d_error_t *err) {
  if (json_is_string(t)) {
    const char *n = json_string_value(t);
    static const struct {
      const char *name;
      m2d_kind_t kind;
    } prims[] = {{"boolean", M2D_T_BOOLEAN}, {"integer", M2D_T_INTEGER}, {"long", M2D_T_LONG},
                 {"double", M2D_T_DOUBLE},   {"string", M2D_T_STRING},   {"binary", M2D_T_BINARY},
                 {"timestamp", M2D_T_TIMESTAMP}};
    for (size_t i = 0; i < sizeof prims / sizeof prims[0]; i++)
      if (strcmp(n, prims[i].name) == 0) return m2d_dtype_new(prims[i].kind);
    int p, s;
    if (sscanf(n, "decimal(%d,%d)", &p, &s) == 2 && p >= 1 && p <= 38 && s >= 0 && s <= p) {
      m2d_dtype_t *d = m2d_dtype_new(M2D_T_DECIMAL);
      if (d) d->precision = p, d->scale = s;
      return d;
    }
    m2d_error_set(err, M2D_ERR_FORMAT, 0,
                  "schema: column '%s' has type '%s', which tables fed from MongoDB do not use; load into a new table",
                  path, n);
    return NULL;
  }
  const char *kind = json_string_value(json_object_get(t, "type"));
  if (kind && strcmp(kind, "struct") == 0) return parse_struct(t, path, err);
  if (kind && (strcmp(kind, "array") == 0 || strcmp(kind, "map") == 0)) {
    bool is_map = kind[0] == 'm';
    if (is_map && !(json_is_string(json_object_get(t, "keyType")) &&
                    strcmp(json_string_value(json_object_get(t, "keyType")), "string") == 0)) {
      m2d_error_set(err, M2D_ERR_FORMAT, 0, "schema: map '%s' has non-string keys", path);
      return NULL;
    }
    m2d_dtype_t *elem = parse_type(json_object_get(t, is_map ? "valueType" : "elementType"), path, err);
    if (!elem) return NULL;
    m2d_dtype_t *a = m2d_dtype_new(is_map ? M2D_T_MAP : M2D_T_ARRAY);
    if (!a) {
      m2d_dtype_free(elem);
      return NULL;
    }
    a->elem = elem;
    return a;
  }
  m2d_error_set(err, M2D_ERR_FORMAT, 0, "schema: cannot read the type of '%s'", path);
  return NULL;
}

m2d_dtype_t *m2d_dtype_from_schema_json(const char *json, m2d_error_t *err) {
  json_error_t je;
  json_t *root = json_loads(json, 0, &je);
  if (!root) {
    m2d_error_set(err, M2D_ERR_FORMAT, 0, "schema: invalid JSON at line %d: %s", je.line, je.text);
    return NULL;
  }
  m2d_dtype_t *t = NULL;
  const char *kind = json_string_value(json_object_get(root, "type"));
  if (!kind || strcmp(kind, "struct") != 0) m2d_error_set(err, M2D_ERR_FORMAT, 0, "schema: the top level is not a struct");
  else t = parse_struct(root, "", err);
  json_decref(root);
  return t;
}
