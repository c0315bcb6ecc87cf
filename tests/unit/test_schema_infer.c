/* schema/infer: BSON -> Delta types (design.md's mapping), over the BSON corpus and by rule. */
#include "core/buf.h"
#include "schema/infer.h"
#include "test.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

static bson_t *doc_from_json(const char *json) {
  bson_error_t e;
  return bson_new_from_json((const uint8_t *)json, -1, &e);
}

static const m2d_dtype_t *field_type(const m2d_infer_t *inf, const char *name) {
  m2d_field_t *f = m2d_dtype_field(m2d_infer_schema(inf), name);
  return f ? f->type : NULL;
}

static bool observe_json(m2d_infer_t *inf, const char *json) {
  bson_t *d = doc_from_json(json);
  if (!d) return false;
  bool ok = m2d_infer_observe(inf, d, NULL);
  bson_destroy(d);
  return ok;
}

static bson_t *doc_from_hex(const char *hex) {
  size_t n = strlen(hex) / 2;
  uint8_t *bytes = malloc(n ? n : 1);
  for (size_t i = 0; i < n; i++) sscanf(hex + 2 * i, "%2hhx", &bytes[i]);
  bson_t *d = bson_new_from_data(bytes, n);
  free(bytes);
  return d;
}

/* The expected Delta kind (and origin) of each BSON type of the corpus. */
static bool expected_for(const char *bson_type, m2d_kind_t *kind, m2d_orig_t *orig) {
  static const struct {
    const char *type;
    m2d_kind_t kind;
    m2d_orig_t orig;
  } map[] = {
      {"0x01", M2D_T_DOUBLE, M2D_ORIG_NONE},      {"0x02", M2D_T_STRING, M2D_ORIG_NONE},
      {"0x03", M2D_T_STRUCT, M2D_ORIG_NONE},      {"0x04", M2D_T_ARRAY, M2D_ORIG_NONE},
      {"0x06", M2D_T_STRING, M2D_ORIG_EXTJSON},   {"0x07", M2D_T_STRING, M2D_ORIG_OBJECTID},
      {"0x08", M2D_T_BOOLEAN, M2D_ORIG_NONE},     {"0x0A", M2D_T_NULL, M2D_ORIG_NONE},
      {"0x0B", M2D_T_STRING, M2D_ORIG_EXTJSON},   {"0x0C", M2D_T_STRING, M2D_ORIG_EXTJSON},
      {"0x0D", M2D_T_STRING, M2D_ORIG_EXTJSON},   {"0x0E", M2D_T_STRING, M2D_ORIG_EXTJSON},
      {"0x0F", M2D_T_STRING, M2D_ORIG_EXTJSON},   {"0x10", M2D_T_INTEGER, M2D_ORIG_NONE},
      {"0x11", M2D_T_STRUCT, M2D_ORIG_BSON_TIMESTAMP}, {"0x12", M2D_T_LONG, M2D_ORIG_NONE},
      {"0xFF", M2D_T_STRING, M2D_ORIG_EXTJSON},   {"0x7F", M2D_T_STRING, M2D_ORIG_EXTJSON},
  };
  for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
    if (strcmp(map[i].type, bson_type) == 0) {
      *kind = map[i].kind;
      *orig = map[i].orig;
      return true;
    }
  return false;
}

TEST(corpus_every_valid_value_maps_as_the_design_says) {
  const char *files[] = {"double.json", "string.json", "document.json", "array.json", "oid.json",
                         "boolean.json", "null.json", "regex.json", "dbpointer.json", "code.json",
                         "symbol.json", "code_w_scope.json", "int32.json", "timestamp.json", "int64.json",
                         "maxkey.json", "minkey.json", "undefined.json"};
  int checked = 0;
  for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
    char path[512];
    snprintf(path, sizeof path, "%s/bson-corpus/%s", m2d_testdata_dir(), files[f]);
    json_error_t je;
    json_t *root = json_load_file(path, 0, &je);
    CHECK(root != NULL);
    const char *type = json_string_value(json_object_get(root, "bson_type"));
    const char *key = json_string_value(json_object_get(root, "test_key"));
    m2d_kind_t kind;
    m2d_orig_t orig;
    CHECK(expected_for(type, &kind, &orig));
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(root, "valid"), i, v) {
      bson_t *doc = doc_from_hex(json_string_value(json_object_get(v, "canonical_bson")));
      CHECK(doc != NULL);
      m2d_infer_t *inf = m2d_infer_new(NULL);
      CHECK(m2d_infer_observe(inf, doc, NULL));
      const m2d_dtype_t *t = key ? field_type(inf, key) : NULL;
      if (key && !t) { /* an empty document or array was the test value */
        CHECK(json_object_get(v, "description") != NULL);
      } else if (key) {
        if (t->kind != kind || t->orig != orig)
          fprintf(stderr, "    %s: '%s' mapped to kind %d orig %d\n", files[f],
                  json_string_value(json_object_get(v, "description")), t->kind, t->orig);
        CHECK(t->kind == kind && t->orig == orig);
        checked++;
      }
      m2d_infer_destroy(inf);
      bson_destroy(doc);
    }
    json_decref(root);
  }
  CHECK(checked > 80);
}

TEST(corpus_decimal128_gets_the_smallest_decimal_or_an_exact_string) {
  int decimals = 0, strings = 0;
  for (int n = 1; n <= 7; n++) {
    char path[512];
    snprintf(path, sizeof path, "%s/bson-corpus/decimal128-%d.json", m2d_testdata_dir(), n);
    json_t *root = json_load_file(path, 0, NULL);
    CHECK(root != NULL);
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(root, "valid"), i, v) {
      bson_t *doc = doc_from_hex(json_string_value(json_object_get(v, "canonical_bson")));
      CHECK(doc);
      m2d_infer_t *inf = m2d_infer_new(NULL);
      CHECK(m2d_infer_observe(inf, doc, NULL));
      const m2d_dtype_t *t = field_type(inf, "d");
      CHECK(t && t->orig == M2D_ORIG_DECIMAL128);
      if (t->kind == M2D_T_DECIMAL) {
        CHECK(t->precision >= 1 && t->precision <= 38 && t->scale >= 0 && t->scale <= t->precision);
        decimals++;
      } else {
        CHECK(t->kind == M2D_T_STRING);
        strings++;
      }
      m2d_infer_destroy(inf);
      bson_destroy(doc);
    }
    json_decref(root);
  }
  CHECK(decimals > 50 && strings > 10);
}

TEST(decimal_shapes) {
  struct {
    const char *json;
    int p, s;
  } cases[] = {
      {"{\"d\": {\"$numberDecimal\": \"12.50\"}}", 4, 2},
      {"{\"d\": {\"$numberDecimal\": \"-0.001\"}}", 3, 3},
      {"{\"d\": {\"$numberDecimal\": \"1E+3\"}}", 4, 0},
      {"{\"d\": {\"$numberDecimal\": \"0\"}}", 1, 0},
      {"{\"d\": {\"$numberDecimal\": \"1.5E-5\"}}", 6, 6},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    m2d_infer_t *inf = m2d_infer_new(NULL);
    CHECK(observe_json(inf, cases[i].json));
    const m2d_dtype_t *t = field_type(inf, "d");
    if (t->precision != cases[i].p || t->scale != cases[i].s)
      fprintf(stderr, "    %s -> decimal(%d,%d)\n", cases[i].json, t->precision, t->scale);
    CHECK(t->kind == M2D_T_DECIMAL && t->precision == cases[i].p && t->scale == cases[i].s);
    m2d_infer_destroy(inf);
  }
}

TEST(numbers_widen_and_conflicts_are_counted) {
  m2d_infer_t *inf = m2d_infer_new(NULL);
  CHECK(observe_json(inf, "{\"_id\": 1, \"n\": 1, \"x\": \"a\"}"));
  CHECK(field_type(inf, "n")->kind == M2D_T_INTEGER);
  CHECK(observe_json(inf, "{\"_id\": 2, \"n\": {\"$numberLong\": \"5000000000\"}}"));
  CHECK(field_type(inf, "n")->kind == M2D_T_LONG);
  CHECK(observe_json(inf, "{\"_id\": 3, \"n\": 2.5, \"x\": 7}"));
  CHECK(field_type(inf, "n")->kind == M2D_T_DOUBLE);
  CHECK(field_type(inf, "x")->kind == M2D_T_STRING); /* first type stays, 7 is rescued */
  CHECK(m2d_infer_conflicts(inf) == 1);
  CHECK(m2d_infer_documents(inf) == 3);
  m2d_infer_destroy(inf);
}

TEST(id_comes_first_and_nested_fields_are_learned_from_every_document) {
  m2d_infer_t *inf = m2d_infer_new(NULL);
  CHECK(observe_json(inf, "{\"a\": {\"b\": 1}, \"_id\": {\"$oid\": \"5f0000000000000000000001\"}}"));
  CHECK(observe_json(inf, "{\"_id\": {\"$oid\": \"5f0000000000000000000002\"}, \"a\": {\"c\": [\"x\"]}}"));
  const m2d_dtype_t *root = m2d_infer_schema(inf);
  CHECK_STR(root->fields[0].name, "_id");
  const m2d_dtype_t *a = field_type(inf, "a");
  CHECK(a->kind == M2D_T_STRUCT && a->nfields == 2);
  CHECK(m2d_dtype_field(a, "c")->type->kind == M2D_T_ARRAY);
  CHECK(m2d_dtype_field(a, "c")->type->elem->kind == M2D_T_STRING);
  m2d_buf_t json;
  m2d_buf_init(&json, 1 << 20);
  CHECK(m2d_dtype_to_schema_json(root, &json, NULL));
  CHECK(m2d_buf_terminate(&json, NULL));
  json_t *parsed = json_loads((char *)json.data, 0, NULL);
  CHECK(parsed != NULL);
  json_t *id = json_array_get(json_object_get(parsed, "fields"), 0);
  CHECK_STR(json_string_value(json_object_get(id, "type")), "string");
  CHECK_STR(json_string_value(json_object_get(json_object_get(id, "metadata"), "mongo2delta.bsonType")), "objectId");
  json_decref(parsed);
  m2d_buf_free(&json);
  m2d_infer_destroy(inf);
}

TEST(documents_with_very_many_keys_become_maps) {
  m2d_infer_t *inf = m2d_infer_new(&(m2d_infer_options_t){.max_struct_fields = 4});
  CHECK(observe_json(inf, "{\"m\": {\"a\": 1, \"b\": 2}}"));
  CHECK(field_type(inf, "m")->kind == M2D_T_STRUCT);
  CHECK(observe_json(inf, "{\"m\": {\"c\": 3, \"d\": 4, \"e\": {\"$numberLong\": \"5\"}}}"));
  const m2d_dtype_t *m = field_type(inf, "m");
  CHECK(m->kind == M2D_T_MAP && m->elem->kind == M2D_T_LONG);
  CHECK(observe_json(inf, "{\"m\": {\"zz\": 9}}")); /* further documents fold into the map */
  CHECK(field_type(inf, "m")->kind == M2D_T_MAP);
  CHECK(m2d_infer_conflicts(inf) == 0);
  m2d_infer_destroy(inf);
}

TEST(dates_outside_the_timestamp_range_do_not_fit) {
  m2d_infer_t *inf = m2d_infer_new(NULL);
  CHECK(observe_json(inf, "{\"d\": {\"$date\": \"2020-01-01T00:00:00Z\"}}"));
  CHECK(field_type(inf, "d")->kind == M2D_T_TIMESTAMP);
  CHECK(observe_json(inf, "{\"d\": {\"$date\": {\"$numberLong\": \"-77777777777777\"}}}"));
  CHECK(field_type(inf, "d")->kind == M2D_T_TIMESTAMP);
  CHECK(m2d_infer_conflicts(inf) == 1);
  m2d_infer_destroy(inf);
}

TEST(schema_json_round_trips_types_and_origins) {
  m2d_infer_t *inf = m2d_infer_new(NULL);
  CHECK(observe_json(inf,
                     "{\"_id\": {\"$oid\": \"5f0000000000000000000001\"}, \"d\": {\"$numberDecimal\": \"1.25\"},"
                     " \"ts\": {\"$timestamp\": {\"t\": 1, \"i\": 2}}, \"m\": {\"a\": [1, 2]}, \"when\": {\"$date\": 0},"
                     " \"b\": {\"$binary\": {\"base64\": \"AA==\", \"subType\": \"00\"}}, \"n\": null}"));
  m2d_buf_t a, b;
  m2d_buf_init(&a, 1 << 20);
  m2d_buf_init(&b, 1 << 20);
  CHECK(m2d_dtype_to_schema_json(m2d_infer_schema(inf), &a, NULL) && m2d_buf_terminate(&a, NULL));
  m2d_error_t err = {0};
  m2d_dtype_t *back = m2d_dtype_from_schema_json((char *)a.data, &err);
  CHECK(back != NULL);
  CHECK(m2d_dtype_field(back, "_id")->type->orig == M2D_ORIG_OBJECTID);
  CHECK(m2d_dtype_field(back, "ts")->type->orig == M2D_ORIG_BSON_TIMESTAMP);
  CHECK(m2d_dtype_field(back, "d")->type->precision == 3);
  CHECK(m2d_dtype_to_schema_json(back, &b, NULL) && m2d_buf_terminate(&b, NULL));
  CHECK_STR((char *)a.data, (char *)b.data);
  CHECK(m2d_dtype_from_schema_json("{\"type\":\"struct\",\"fields\":[{\"name\":\"x\",\"type\":\"float\"}]}", &err) == NULL);
  CHECK(strstr(err.message, "'x'") != NULL);
  m2d_dtype_free(back);
  m2d_buf_free(&a);
  m2d_buf_free(&b);
  m2d_infer_destroy(inf);
}
