/* columnar/shred: BSON documents into Dremel levels and values, with rescue. */
#include "columnar/shred.h"
#include "schema/infer.h"
#include "test.h"

#include <stdlib.h>

static const char *docs[] = {
    "{\"_id\": 1, \"a\": {\"b\": 5}, \"tags\": [\"x\", \"y\"]}",
    "{\"_id\": 2, \"tags\": []}",
    "{\"_id\": 3, \"a\": null, \"tags\": [null]}",
    "{\"_id\": 4, \"a\": {\"b\": \"str\"}, \"tags\": null}",
};

static bool levels_are(const m2d_column_t *c, const int16_t *def, const int16_t *rep, size_t n) {
  if (c->nlevels != n) return false;
  for (size_t i = 0; i < n; i++) {
    if (def && c->def[i] != def[i]) return false;
    if (rep && c->rep[i] != rep[i]) return false;
  }
  return true;
}

TEST(shred_struct_list_nulls_empties_and_rescue) {
  m2d_infer_t *inf = m2d_infer_new(NULL);
  bson_t *b[4];
  for (int i = 0; i < 4; i++) {
    b[i] = bson_new_from_json((const uint8_t *)docs[i], -1, NULL);
    CHECK(b[i] && m2d_infer_observe(inf, b[i], NULL));
  }
  CHECK(m2d_infer_conflicts(inf) == 1);
  m2d_shredder_t *s = m2d_shredder_new(m2d_infer_schema(inf), true, 0, NULL);
  CHECK(s && m2d_shredder_ncolumns(s) == 4);
  int64_t rescued = 0;
  for (int i = 0; i < 4; i++) CHECK(m2d_shredder_add(s, b[i], &rescued, NULL));
  CHECK(rescued == 1 && m2d_shredder_rows(s) == 4);
  m2d_column_t *c = m2d_shredder_columns(s);

  /* _id */
  CHECK(c[0].type == M2D_COL_INT32 && c[0].max_def == 1 && c[0].max_rep == 0);
  CHECK(levels_are(&c[0], (int16_t[]){1, 1, 1, 1}, NULL, 4) && c[0].nvalues == 4);
  CHECK(*(const int32_t *)m2d_column_fixed_at(&c[0], 3) == 4);
  /* a.b: present, a missing, a null, b did not fit */
  CHECK(c[1].max_def == 2);
  CHECK(levels_are(&c[1], (int16_t[]){2, 0, 0, 1}, NULL, 4) && c[1].nvalues == 1);
  CHECK(*(const int32_t *)m2d_column_fixed_at(&c[1], 0) == 5);
  /* tags.list.element */
  CHECK(c[2].type == M2D_COL_BYTES && c[2].max_def == 3 && c[2].max_rep == 1);
  CHECK(levels_are(&c[2], (int16_t[]){3, 3, 1, 2, 0}, (int16_t[]){0, 1, 0, 0, 0}, 5));
  size_t len;
  const uint8_t *v = m2d_column_bytes_at(&c[2], 1, &len);
  CHECK(c[2].nvalues == 2 && len == 1 && v[0] == 'y');
  CHECK(m2d_column_rows(&c[2]) == 4);
  /* _rescued_data */
  CHECK(levels_are(&c[3], (int16_t[]){0, 0, 0, 1}, NULL, 4) && c[3].nvalues == 1);
  v = m2d_column_bytes_at(&c[3], 0, &len);
  bson_t *back = bson_new_from_json(v, (ssize_t)len, NULL);
  CHECK(back != NULL);
  bson_iter_t it;
  CHECK(bson_iter_init_find(&it, back, "a.b") && BSON_ITER_HOLDS_UTF8(&it));
  CHECK_STR(bson_iter_utf8(&it, NULL), "str");
  bson_destroy(back);

  m2d_shredder_reset(s);
  CHECK(m2d_shredder_rows(s) == 0 && c[2].nlevels == 0);
  m2d_shredder_destroy(s);
  for (int i = 0; i < 4; i++) bson_destroy(b[i]);
  m2d_infer_destroy(inf);
}

TEST(shred_special_types_map_as_designed) {
  const char *json =
      "{\"_id\": {\"$oid\": \"5f1a2b3c4d5e6f7081920a1b\"},"
      " \"u\": {\"$binary\": {\"base64\": \"ASNFZ4mrze8BI0VniavN7w==\", \"subType\": \"04\"}},"
      " \"d\": {\"$numberDecimal\": \"-12.50\"},"
      " \"t\": {\"$date\": \"2021-05-06T07:08:09.123Z\"},"
      " \"ts\": {\"$timestamp\": {\"t\": 1600000000, \"i\": 7}},"
      " \"re\": {\"$regularExpression\": {\"pattern\": \"^a\", \"options\": \"i\"}},"
      " \"m\": {\"$maxKey\": 1}}";
  bson_t *doc = bson_new_from_json((const uint8_t *)json, -1, NULL);
  CHECK(doc);
  m2d_infer_t *inf = m2d_infer_new(NULL);
  CHECK(m2d_infer_observe(inf, doc, NULL));
  m2d_shredder_t *s = m2d_shredder_new(m2d_infer_schema(inf), true, 0, NULL);
  CHECK(s && m2d_shredder_add(s, doc, NULL, NULL));
  m2d_column_t *c = m2d_shredder_columns(s);
  size_t len;
  const uint8_t *v = m2d_column_bytes_at(&c[0], 0, &len);
  CHECK(len == 24 && memcmp(v, "5f1a2b3c4d5e6f7081920a1b", 24) == 0);
  v = m2d_column_bytes_at(&c[1], 0, &len);
  CHECK(len == 36 && memcmp(v, "01234567-89ab-cdef-0123-456789abcdef", 36) == 0);
  CHECK(c[2].type == M2D_COL_INT32 && *(const int32_t *)m2d_column_fixed_at(&c[2], 0) == -1250); /* decimal(4,2) */
  CHECK(*(const int64_t *)m2d_column_fixed_at(&c[3], 0) == 1620284889123000LL);
  CHECK(*(const int64_t *)m2d_column_fixed_at(&c[4], 0) == 1600000000 && *(const int64_t *)m2d_column_fixed_at(&c[5], 0) == 7);
  v = m2d_column_bytes_at(&c[6], 0, &len);
  CHECK(len > 0 && memmem(v, len, "$regularExpression", 18) != NULL);
  v = m2d_column_bytes_at(&c[7], 0, &len);
  CHECK(len > 0 && memmem(v, len, "$maxKey", 7) != NULL);
  CHECK(c[8].nvalues == 0); /* nothing rescued */
  m2d_shredder_destroy(s);
  m2d_infer_destroy(inf);
  bson_destroy(doc);
}

TEST(shred_decimals_widen_to_fixed_and_keep_exact_values) {
  const char *j1 = "{\"d\": {\"$numberDecimal\": \"12345678901234567890.5\"}}";
  const char *j2 = "{\"d\": {\"$numberDecimal\": \"-0.25\"}}";
  bson_t *d1 = bson_new_from_json((const uint8_t *)j1, -1, NULL), *d2 = bson_new_from_json((const uint8_t *)j2, -1, NULL);
  m2d_infer_t *inf = m2d_infer_new(NULL);
  CHECK(m2d_infer_observe(inf, d1, NULL) && m2d_infer_observe(inf, d2, NULL));
  const m2d_dtype_t *t = m2d_dtype_field(m2d_infer_schema(inf), "d")->type;
  CHECK(t->kind == M2D_T_DECIMAL && t->precision == 22 && t->scale == 2);
  m2d_shredder_t *s = m2d_shredder_new(m2d_infer_schema(inf), true, 0, NULL);
  CHECK(s && m2d_shredder_add(s, d1, NULL, NULL) && m2d_shredder_add(s, d2, NULL, NULL));
  m2d_column_t *c = m2d_shredder_columns(s);
  CHECK(c[0].type == M2D_COL_FIXED && c[0].fixed_len == m2d_decimal_fixed_len(22) && c[0].fixed_len == 10);
  const uint8_t *v = m2d_column_fixed_at(&c[0], 1); /* -25 as 10 bytes big-endian two's complement */
  for (int i = 0; i < 9; i++) CHECK(v[i] == 0xff);
  CHECK(v[9] == (uint8_t)-25);
  m2d_shredder_destroy(s);
  m2d_infer_destroy(inf);
  bson_destroy(d1);
  bson_destroy(d2);
}

TEST(shred_failed_row_leaves_no_partial_levels) {
  const char *j = "{\"a\": 1, \"b\": \"x\"}";
  bson_t *d = bson_new_from_json((const uint8_t *)j, -1, NULL);
  m2d_infer_t *inf = m2d_infer_new(NULL);
  CHECK(m2d_infer_observe(inf, d, NULL));
  m2d_shredder_t *s = m2d_shredder_new(m2d_infer_schema(inf), false, 0, NULL);
  CHECK(m2d_shredder_add(s, d, NULL, NULL));
  const char *bad = "{\"a\": 2, \"b\": 3}"; /* b does not fit and there is no rescue column */
  bson_t *e = bson_new_from_json((const uint8_t *)bad, -1, NULL);
  m2d_error_t err = {0};
  CHECK(!m2d_shredder_add(s, e, NULL, &err));
  m2d_column_t *c = m2d_shredder_columns(s);
  CHECK(c[0].nlevels == 1 && c[0].nvalues == 1 && c[1].nlevels == 1);
  CHECK(m2d_shredder_rows(s) == 1);
  m2d_shredder_destroy(s);
  m2d_infer_destroy(inf);
  bson_destroy(d);
  bson_destroy(e);
}
