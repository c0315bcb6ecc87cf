#include "parquet/schema_json.h"

#include "columnar/column.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

static pq_node_t *node_for(const char *name, bool nullable, json_t *type, json_t *metadata, int depth,
                           m2d_error_t *err);

static void apply_metadata(pq_node_t *n, json_t *metadata) {
  json_t *id = json_object_get(metadata, "delta.columnMapping.id");
  if (!id) id = json_object_get(metadata, "parquet.field.id");
  if (json_is_integer(id)) {
    n->has_field_id = true;
    n->field_id = (int32_t)json_integer_value(id);
  }
}

static const char *physical_name(const char *name, json_t *metadata) {
  const char *p = json_string_value(json_object_get(metadata, "delta.columnMapping.physicalName"));
  return p ? p : name;
}

static pq_node_t *primitive(const char *name, pq_repetition_t rep, const char *t, m2d_error_t *err) {
  pq_node_t *n = NULL;
  int p, s;
  if (strcmp(t, "boolean") == 0) n = pq_node_leaf(name, rep, PQ_BOOLEAN);
  else if (strcmp(t, "byte") == 0 || strcmp(t, "short") == 0) {
    if ((n = pq_node_leaf(name, rep, PQ_INT32))) {
      n->logical.kind = PQ_LT_INTEGER;
      n->logical.bit_width = t[0] == 'b' ? 8 : 16;
      n->logical.is_signed = true;
    }
  } else if (strcmp(t, "integer") == 0) n = pq_node_leaf(name, rep, PQ_INT32);
  else if (strcmp(t, "long") == 0) n = pq_node_leaf(name, rep, PQ_INT64);
  else if (strcmp(t, "float") == 0) n = pq_node_leaf(name, rep, PQ_FLOAT);
  else if (strcmp(t, "double") == 0) n = pq_node_leaf(name, rep, PQ_DOUBLE);
  else if (strcmp(t, "string") == 0) {
    if ((n = pq_node_leaf(name, rep, PQ_BYTE_ARRAY))) n->logical.kind = PQ_LT_STRING;
  } else if (strcmp(t, "binary") == 0) n = pq_node_leaf(name, rep, PQ_BYTE_ARRAY);
  else if (strcmp(t, "date") == 0) {
    if ((n = pq_node_leaf(name, rep, PQ_INT32))) n->logical.kind = PQ_LT_DATE;
  } else if (strcmp(t, "timestamp") == 0 || strcmp(t, "timestamp_ntz") == 0) {
    if ((n = pq_node_leaf(name, rep, PQ_INT64))) {
      n->logical.kind = PQ_LT_TIMESTAMP;
      n->logical.unit = PQ_UNIT_MICROS;
      n->logical.is_adjusted_to_utc = strcmp(t, "timestamp") == 0;
    }
  } else if (sscanf(t, "decimal(%d,%d)", &p, &s) == 2 && p >= 1 && p <= 38 && s >= 0 && s <= p) {
    pq_type_t pt = p <= 9 ? PQ_INT32 : p <= 18 ? PQ_INT64 : PQ_FIXED_LEN_BYTE_ARRAY;
    if ((n = pq_node_leaf(name, rep, pt))) {
      n->logical.kind = PQ_LT_DECIMAL;
      n->logical.precision = p;
      n->logical.scale = s;
      if (pt == PQ_FIXED_LEN_BYTE_ARRAY) n->type_length = m2d_decimal_fixed_len(p);
    }
  } else {
    m2d_error_set(err, M2D_ERR_FORMAT, 0, "schema: column '%s' has an unknown type '%s'", name, t);
    return NULL;
  }
  if (!n) m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory");
  return n;
}

static pq_node_t *struct_node(const char *name, pq_repetition_t rep, json_t *type, int depth, m2d_error_t *err) {
  json_t *fields = json_object_get(type, "fields");
  if (!json_is_array(fields)) {
    m2d_error_set(err, M2D_ERR_FORMAT, 0, "schema: struct '%s' has no fields array", name);
    return NULL;
  }
  pq_node_t *g = pq_node_group(name, rep);
  if (!g) return m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory"), NULL;
  size_t i;
  json_t *f;
  json_array_foreach(fields, i, f) {
    const char *fname = json_string_value(json_object_get(f, "name"));
    if (!fname) {
      m2d_error_set(err, M2D_ERR_FORMAT, 0, "schema: a field of '%s' has no name", name);
      pq_node_free(g);
      return NULL;
    }
    json_t *nullable = json_object_get(f, "nullable");
    pq_node_t *child = node_for(fname, !json_is_false(nullable), json_object_get(f, "type"), json_object_get(f, "metadata"),
                                depth + 1, err);
    if (!child || !pq_node_add(g, child, err)) {
      pq_node_free(g);
      return NULL;
    }
  }
  return g;
}

static pq_node_t *node_for(const char *name, bool nullable, json_t *type, json_t *metadata, int depth,
                           m2d_error_t *err) {
  if (depth > 64) return m2d_error_set(err, M2D_ERR_FORMAT, 0, "schema: nested deeper than 64 levels"), NULL;
  pq_repetition_t rep = nullable ? PQ_OPTIONAL : PQ_REQUIRED;
  const char *pname = physical_name(name, metadata);
  pq_node_t *n = NULL;
  if (json_is_string(type)) {
    n = primitive(pname, rep, json_string_value(type), err);
  } else {
    const char *kind = json_string_value(json_object_get(type, "type"));
    if (kind && strcmp(kind, "struct") == 0) {
      n = struct_node(pname, rep, type, depth, err);
    } else if (kind && strcmp(kind, "array") == 0) {
      pq_node_t *elem = node_for("element", !json_is_false(json_object_get(type, "containsNull")),
                                 json_object_get(type, "elementType"), NULL, depth + 1, err);
      if (!elem) return NULL;
      n = pq_node_list(pname, rep, elem);
      if (!n) m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory");
    } else if (kind && strcmp(kind, "map") == 0) {
      pq_node_t *key = node_for("key", false, json_object_get(type, "keyType"), NULL, depth + 1, err);
      pq_node_t *value = key ? node_for("value", !json_is_false(json_object_get(type, "valueContainsNull")),
                                        json_object_get(type, "valueType"), NULL, depth + 1, err)
                             : NULL;
      if (!key || !value) {
        pq_node_free(key);
        return NULL;
      }
      n = pq_node_map(pname, rep, key, value);
      if (!n) m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory");
    } else {
      m2d_error_set(err, M2D_ERR_FORMAT, 0, "schema: cannot read the type of column '%s'", name);
    }
  }
  if (n) apply_metadata(n, metadata);
  return n;
}

bool pq_schema_from_json(const char *json, pq_schema_t *out, m2d_error_t *err) {
  memset(out, 0, sizeof *out);
  json_error_t je;
  json_t *root = json_loads(json, 0, &je);
  if (!root) return m2d_error_set(err, M2D_ERR_FORMAT, 0, "schema: invalid JSON at line %d: %s", je.line, je.text);
  pq_node_t *r = NULL;
  const char *kind = json_string_value(json_object_get(root, "type"));
  if (!kind || strcmp(kind, "struct") != 0) m2d_error_set(err, M2D_ERR_FORMAT, 0, "schema: the top level must be a struct");
  else r = struct_node("schema", PQ_REQUIRED, root, 0, err);
  json_decref(root);
  if (!r) return false;
  if (!pq_schema_init(out, r, err)) {
    pq_schema_free(out);
    return false;
  }
  return true;
}
