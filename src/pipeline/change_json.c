#include "pipeline/change_json.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

bool m2d_json_form_parse(const char *s, m2d_json_form_t *out) {
  if (!strcmp(s, "extended-json")) *out = M2D_JSON_EXTENDED;
  else if (!strcmp(s, "relaxed-json")) *out = M2D_JSON_RELAXED;
  else if (!strcmp(s, "simplified-json")) *out = M2D_JSON_SIMPLIFIED;
  else return false;
  return true;
}

static json_t *iso_date(long long ms) {
  time_t secs = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
  int milli = (int)(ms - (long long)secs * 1000);
  struct tm tm;
  char buf[64];
  if (!gmtime_r(&secs, &tm)) return json_integer(ms);
  snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
           tm.tm_hour, tm.tm_min, tm.tm_sec, milli);
  return json_string(buf);
}

/* relaxed Extended JSON -> the simplified form, in place (returns the new value, stolen ref) */
static json_t *simplify(json_t *v) {
  if (json_is_array(v)) {
    for (size_t i = 0; i < json_array_size(v); i++) json_array_set(v, i, simplify(json_incref(json_array_get(v, i))));
    return v;
  }
  if (!json_is_object(v)) return v;
  if (json_object_size(v) == 1) {
    const char *k = json_object_iter_key(json_object_iter(v));
    json_t *x = json_object_get(v, k), *r = NULL;
    if (!strcmp(k, "$oid") && json_is_string(x)) r = json_incref(x);
    else if (!strcmp(k, "$numberDecimal") && json_is_string(x)) r = json_incref(x);
    else if (!strcmp(k, "$numberLong") && json_is_string(x)) r = json_integer(strtoll(json_string_value(x), NULL, 10));
    else if (!strcmp(k, "$date") && json_is_string(x)) r = json_incref(x);
    else if (!strcmp(k, "$date") && json_is_object(x) && json_is_string(json_object_get(x, "$numberLong")))
      r = iso_date(strtoll(json_string_value(json_object_get(x, "$numberLong")), NULL, 10));
    else if (!strcmp(k, "$binary") && json_is_object(x) && json_is_string(json_object_get(x, "base64")))
      r = json_incref(json_object_get(x, "base64"));
    if (r) {
      json_decref(v);
      return r;
    }
  }
  const char *k;
  json_t *x;
  void *tmp;
  json_object_foreach_safe(v, tmp, k, x) json_object_set_new(v, k, simplify(json_incref(x)));
  return v;
}

char *m2d_bson_json(const bson_t *doc, m2d_json_form_t form) {
  char *j = form == M2D_JSON_EXTENDED ? bson_as_canonical_extended_json(doc, NULL) : bson_as_relaxed_extended_json(doc, NULL);
  if (!j) return NULL;
  char *out;
  if (form != M2D_JSON_SIMPLIFIED) {
    out = strdup(j);
  } else {
    json_error_t je;
    json_t *t = json_loads(j, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
    t = t ? simplify(t) : NULL;
    out = t ? json_dumps(t, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY) : NULL;
    json_decref(t);
  }
  bson_free(j);
  return out;
}

bool m2d_change_id(const bson_t *event, bson_value_t *id) {
  bson_iter_t it;
  if ((bson_iter_init(&it, event) && bson_iter_find_descendant(&it, "documentKey._id", &it)) ||
      (bson_iter_init(&it, event) && bson_iter_find_descendant(&it, "fullDocument._id", &it))) {
    bson_value_copy(bson_iter_value(&it), id);
    return true;
  }
  return false;
}

bson_t *m2d_change_normalized(const bson_t *event, const bson_value_t *id, const char *db, const char *coll) {
  bson_t *out = bson_new();
  bson_iter_t it, sub;
  if (!bson_iter_init(&it, event)) return out;
  bool has_ns = bson_has_field(event, "ns");
  while (bson_iter_next(&it)) {
    const char *k = bson_iter_key(&it);
    if (!has_ns && !strcmp(k, "documentKey")) {
      bson_t ns;
      bson_append_document_begin(out, "ns", 2, &ns);
      BSON_APPEND_UTF8(&ns, "db", db);
      BSON_APPEND_UTF8(&ns, "coll", coll);
      bson_append_document_end(out, &ns);
      has_ns = true;
    }
    if (id && !strcmp(k, "documentKey") &&
        !(BSON_ITER_HOLDS_DOCUMENT(&it) && bson_iter_recurse(&it, &sub) && bson_iter_find(&sub, "_id"))) {
      bson_t dk;
      bson_append_document_begin(out, "documentKey", -1, &dk);
      bson_append_value(&dk, "_id", 3, id);
      bson_append_document_end(out, &dk);
      continue;
    }
    bson_append_iter(out, k, -1, &it);
  }
  if (!has_ns) {
    bson_t ns;
    bson_append_document_begin(out, "ns", 2, &ns);
    BSON_APPEND_UTF8(&ns, "db", db);
    BSON_APPEND_UTF8(&ns, "coll", coll);
    bson_append_document_end(out, &ns);
  }
  return out;
}

bson_t *m2d_change_copy_event(const char *db, const char *coll, const bson_t *doc) {
  bson_t *out = bson_new(), sub;
  bson_iter_t it;
  bool has_id = bson_iter_init_find(&it, doc, "_id");
  bson_append_document_begin(out, "_id", 3, &sub);
  if (has_id) bson_append_iter(&sub, "_id", 3, &it);
  BSON_APPEND_BOOL(&sub, "copyingData", true);
  bson_append_document_end(out, &sub);
  BSON_APPEND_UTF8(out, "operationType", "insert");
  bson_append_document_begin(out, "ns", 2, &sub);
  BSON_APPEND_UTF8(&sub, "db", db);
  BSON_APPEND_UTF8(&sub, "coll", coll);
  bson_append_document_end(out, &sub);
  bson_append_document_begin(out, "documentKey", -1, &sub);
  if (has_id) bson_append_iter(&sub, "_id", 3, &it);
  bson_append_document_end(out, &sub);
  BSON_APPEND_DOCUMENT(out, "fullDocument", doc);
  return out;
}
