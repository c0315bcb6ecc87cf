/* The pieces sync's merge-on-read stands on: the key index and deletion vectors written and
 * read back (the reader is the one that reads Spark's deletion vectors). */
#include "test.h"

#include "delta/dv.h"
#include "pipeline/key_index.h"
#include "storage/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static void int_key(int64_t v, m2d_buf_t *k) {
  bson_t d = BSON_INITIALIZER;
  BSON_APPEND_INT64(&d, "_id", v);
  m2d_key_index_doc_key(&d, k, NULL);
  bson_destroy(&d);
}

TEST(key_index_matches_a_reference_through_random_puts_and_removes) {
  enum { N = 20000 };
  static int32_t ref_file[N];
  static uint64_t ref_row[N];
  for (int i = 0; i < N; i++) ref_file[i] = -1;
  m2d_key_index_t *x = m2d_key_index_new();
  m2d_buf_t k;
  m2d_buf_init(&k, 1 << 10);
  srand(7);
  size_t live = 0;
  for (int step = 0; step < 200000; step++) {
    int v = rand() % N;
    int_key(v, &k);
    if (rand() % 3 == 0) {
      bool was = ref_file[v] >= 0;
      CHECK(m2d_key_index_remove(x, &k) == was);
      if (was) live--;
      ref_file[v] = -1;
    } else {
      int32_t f = rand() % 50;
      uint64_t r = (uint64_t)rand() << 20;
      if (ref_file[v] < 0) live++;
      ref_file[v] = f;
      ref_row[v] = r;
      CHECK(m2d_key_index_put(x, &k, f, r));
    }
  }
  CHECK(m2d_key_index_count(x) == live);
  for (int v = 0; v < N; v++) {
    int_key(v, &k);
    int32_t f;
    uint64_t r;
    bool got = m2d_key_index_get(x, &k, &f, &r);
    CHECK(got == (ref_file[v] >= 0));
    if (got) CHECK(f == ref_file[v] && r == ref_row[v]);
  }
  m2d_buf_free(&k);
  m2d_key_index_free(x);
}

TEST(key_index_treats_equal_numbers_as_one_key_and_types_apart) {
  m2d_buf_t a, b;
  m2d_buf_init(&a, 1 << 10);
  m2d_buf_init(&b, 1 << 10);
  bson_t d1 = BSON_INITIALIZER, d2 = BSON_INITIALIZER, d3 = BSON_INITIALIZER;
  BSON_APPEND_INT32(&d1, "_id", 1);
  BSON_APPEND_DOUBLE(&d2, "_id", 1.0);
  BSON_APPEND_UTF8(&d3, "_id", "1");
  CHECK(m2d_key_index_doc_key(&d1, &a, NULL) && m2d_key_index_doc_key(&d2, &b, NULL));
  CHECK(a.len == b.len && memcmp(a.data, b.data, a.len) == 0);
  CHECK(m2d_key_index_doc_key(&d3, &b, NULL));
  CHECK(a.len != b.len || memcmp(a.data, b.data, a.len) != 0);
  bson_destroy(&d1);
  bson_destroy(&d2);
  bson_destroy(&d3);
  m2d_buf_free(&a);
  m2d_buf_free(&b);
}

TEST(deletion_vectors_written_to_a_file_read_back) {
  char dir[] = "/tmp/m2d-dv-XXXXXX";
  CHECK(mkdtemp(dir));
  m2d_store_t *store = m2d_store_local_new(dir, NULL);
  CHECK(store);
  delta_dv_file_t *f = delta_dv_file_new();
  delta_dv_t *a = delta_dv_new(), *b = delta_dv_new();
  uint64_t rows_a[] = {0, 5, 70000, (uint64_t)1 << 33, ((uint64_t)1 << 33) + 9};
  for (size_t i = 0; i < 5; i++) CHECK(delta_dv_add(a, rows_a[i]));
  for (uint64_t r = 100; r < 5000; r++) CHECK(delta_dv_add(b, r));
  json_t *da = delta_dv_file_put(f, a, NULL), *db = delta_dv_file_put(f, b, NULL);
  CHECK(da && db);
  CHECK(delta_dv_file_finish(f, store, NULL));
  delta_dv_t *ra = delta_dv_load(store, da, NULL), *rb = delta_dv_load(store, db, NULL);
  CHECK(ra && rb);
  CHECK(delta_dv_cardinality(ra) == 5 && delta_dv_cardinality(rb) == 4900);
  for (size_t i = 0; i < 5; i++) CHECK(delta_dv_contains(ra, rows_a[i]));
  CHECK(!delta_dv_contains(ra, 1) && !delta_dv_contains(ra, ((uint64_t)1 << 33) + 1));
  CHECK(delta_dv_contains(rb, 100) && delta_dv_contains(rb, 4999) && !delta_dv_contains(rb, 5000));
  CHECK(delta_dv_or(ra, rb) && delta_dv_cardinality(ra) == 4905);
  CHECK(json_integer_value(json_object_get(da, "cardinality")) == 5);
  char path[256];
  snprintf(path, sizeof path, "%s/%s", dir, delta_dv_file_key(f));
  CHECK(access(path, R_OK) == 0);
  unlink(path);
  rmdir(dir);
  delta_dv_free(a);
  delta_dv_free(b);
  delta_dv_free(ra);
  delta_dv_free(rb);
  json_decref(da);
  json_decref(db);
  delta_dv_file_free(f);
  m2d_store_destroy(store);
}

TEST(z85_round_trips) {
  uint8_t in[16], out[16];
  for (int i = 0; i < 16; i++) in[i] = (uint8_t)(i * 37 + 1);
  char z[21];
  delta_z85_encode(in, 16, z);
  CHECK(strlen(z) == 20);
  CHECK(delta_z85_decode(z, 20, out, sizeof out) == 16);
  CHECK(memcmp(in, out, 16) == 0);
}
