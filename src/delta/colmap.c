#include "delta/colmap.h"

#include "delta/actions.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MODE "delta.columnMapping.mode"
#define MAX_ID "delta.columnMapping.maxColumnId"
#define ID "delta.columnMapping.id"
#define PHYSICAL "delta.columnMapping.physicalName"

bool delta_colmap_on(const json_t *metadata) {
  const char *m = json_string_value(json_object_get(json_object_get(metadata, "configuration"), MODE));
  return m && (!strcmp(m, "name") || !strcmp(m, "id"));
}

int64_t delta_colmap_max_id(const json_t *metadata) {
  const char *s = json_string_value(json_object_get(json_object_get(metadata, "configuration"), MAX_ID));
  return s ? strtoll(s, NULL, 10) : 0;
}

bool delta_colmap_assign(json_t *type, int64_t *max_id) {
  if (!json_is_object(type)) return false;
  bool changed = false;
  const char *kind = json_string_value(json_object_get(type, "type"));
  if (kind && !strcmp(kind, "struct")) {
    size_t i;
    json_t *f;
    json_array_foreach(json_object_get(type, "fields"), i, f) {
      json_t *meta = json_object_get(f, "metadata");
      if (!json_is_object(meta)) {
        meta = json_object();
        json_object_set_new(f, "metadata", meta);
      }
      if (!json_is_integer(json_object_get(meta, ID))) {
        json_object_set_new(meta, ID, json_integer(++*max_id));
        changed = true;
      }
      if (!json_is_string(json_object_get(meta, PHYSICAL))) {
        char uuid[37], name[48];
        delta_uuid4(uuid);
        snprintf(name, sizeof name, "col-%s", uuid);
        json_object_set_new(meta, PHYSICAL, json_string(name));
        changed = true;
      }
      changed |= delta_colmap_assign(json_object_get(f, "type"), max_id);
    }
  } else if (kind && !strcmp(kind, "array")) {
    changed |= delta_colmap_assign(json_object_get(type, "elementType"), max_id);
  } else if (kind && !strcmp(kind, "map")) {
    changed |= delta_colmap_assign(json_object_get(type, "keyType"), max_id);
    changed |= delta_colmap_assign(json_object_get(type, "valueType"), max_id);
  }
  return changed;
}

const char *delta_colmap_field_physical(const json_t *field) {
  const char *p = json_string_value(json_object_get(json_object_get(field, "metadata"), PHYSICAL));
  return p ? p : json_string_value(json_object_get(field, "name"));
}

const char *delta_colmap_physical_name(const json_t *schema, const char *name) {
  size_t i;
  json_t *f;
  json_array_foreach(json_object_get(schema, "fields"), i, f) {
    const char *n = json_string_value(json_object_get(f, "name"));
    if (n && !strcmp(n, name)) return delta_colmap_field_physical(f);
  }
  return name;
}
