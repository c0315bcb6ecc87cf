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
      uint64_t r = (uint64_t)rand() << 8; /* rows up to 2^40 */
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

/* Key number v of a mix: integers (kept in the slots), strings short and long (over 255
 * bytes: the arena's long length form), ObjectIds and doubles (the arena). */
static void mixed_key(int v, m2d_buf_t *k) {
  bson_t d = BSON_INITIALIZER;
  char s[400];
  switch (v % 5) {
  case 0: BSON_APPEND_INT32(&d, "_id", v); break;
  case 1: snprintf(s, sizeof s, "k%d", v); BSON_APPEND_UTF8(&d, "_id", s); break;
  case 2: snprintf(s, sizeof s, "%0300d", v); BSON_APPEND_UTF8(&d, "_id", s); break;
  case 3: {
    bson_oid_t oid;
    memset(oid.bytes, 0, 12);
    memcpy(oid.bytes + 8, &v, 4);
    BSON_APPEND_OID(&d, "_id", &oid);
    break;
  }
  default: BSON_APPEND_DOUBLE(&d, "_id", v + 0.5); break;
  }
  m2d_key_index_doc_key(&d, k, NULL);
  bson_destroy(&d);
}

static void check_against(const m2d_key_index_t *x, int n, const int32_t *ref_file, const uint64_t *ref_row) {
  m2d_buf_t k;
  m2d_buf_init(&k, 1 << 10);
  for (int v = 0; v < n; v++) {
    mixed_key(v, &k);
    int32_t f;
    uint64_t r;
    bool got = m2d_key_index_get(x, &k, &f, &r);
    CHECK(got == (ref_file[v] >= 0));
    if (got) CHECK(f == ref_file[v] && r == ref_row[v]);
  }
  m2d_buf_free(&k);
}

TEST(key_index_keeps_keys_of_every_kind_apart_through_puts_removes_and_growth) {
  enum { N = 30000 };
  static int32_t ref_file[N];
  static uint64_t ref_row[N];
  for (int i = 0; i < N; i++) ref_file[i] = -1;
  m2d_key_index_t *x = m2d_key_index_new();
  CHECK(m2d_key_index_reserve(x, 5000));
  m2d_buf_t k;
  m2d_buf_init(&k, 1 << 10);
  srand(11);
  size_t live = 0;
  for (int step = 0; step < 300000; step++) {
    int v = rand() % N;
    mixed_key(v, &k);
    if (rand() % 3 == 0) {
      bool was = ref_file[v] >= 0;
      CHECK(m2d_key_index_remove(x, &k) == was);
      if (was) live--;
      ref_file[v] = -1;
    } else {
      int32_t f = rand() % 70;
      uint64_t r = ((uint64_t)rand() << 9) ^ (uint64_t)step;
      if (ref_file[v] < 0) live++;
      ref_file[v] = f;
      ref_row[v] = r;
      CHECK(m2d_key_index_put(x, &k, f, r));
    }
  }
  CHECK(m2d_key_index_count(x) == live);
  check_against(x, N, ref_file, ref_row);
  /* the largest row a slot holds, and one past it refused rather than cut */
  int_key(-5, &k);
  CHECK(m2d_key_index_put(x, &k, 3, ((uint64_t)1 << 40) - 1));
  CHECK(!m2d_key_index_put(x, &k, 3, (uint64_t)1 << 40));
  int32_t f;
  uint64_t r;
  CHECK(m2d_key_index_get(x, &k, &f, &r) && f == 3 && r == ((uint64_t)1 << 40) - 1);
  CHECK(m2d_key_index_remove(x, &k));
  /* integer keys: 16 bytes a slot at a load of at least half after a reserve */
  m2d_key_index_t *y = m2d_key_index_new();
  CHECK(m2d_key_index_reserve(y, 100000));
  for (int v = 0; v < 100000; v++) {
    int_key(v, &k);
    CHECK(m2d_key_index_put(y, &k, 0, (uint64_t)v));
  }
  CHECK(m2d_key_index_memory(y) / 100000 <= 21);
  m2d_key_index_free(y);
  m2d_buf_free(&k);
  m2d_key_index_free(x);
}

TEST(key_index_cache_file_read_back_only_for_its_version_stamp_and_bytes) {
  enum { N = 3000 };
  static int32_t ref_file[N];
  static uint64_t ref_row[N];
  m2d_key_index_t *x = m2d_key_index_new();
  m2d_buf_t k;
  m2d_buf_init(&k, 1 << 10);
  char path[32];
  for (int i = 0; i < 40; i++) {
    snprintf(path, sizeof path, "part-%d.parquet", i);
    CHECK(m2d_key_index_file(x, path) == i);
  }
  for (int v = 0; v < N; v++) {
    mixed_key(v, &k);
    ref_file[v] = v % 3 == 0 ? -1 : v % 40;
    ref_row[v] = (uint64_t)v * 7;
    if (ref_file[v] >= 0) CHECK(m2d_key_index_put(x, &k, ref_file[v], ref_row[v]));
  }
  m2d_buf_t file;
  m2d_buf_init(&file, (size_t)1 << 26);
  m2d_sink_t *sink = m2d_buf_sink_new(&file);
  CHECK(m2d_key_index_save(x, sink, 12, "stamp", 5, NULL) && m2d_sink_finish(sink, NULL));
  m2d_error_t err = {0};
  m2d_source_t *src = m2d_mem_source_new(file.data, file.len, "cache");
  int64_t version = -1;
  m2d_key_index_t *y = m2d_key_index_load(src, "stamp", 5, &version, &err);
  CHECK(y != NULL && version == 12);
  if (y) {
    check_against(y, N, ref_file, ref_row);
    CHECK(m2d_key_index_count(y) == m2d_key_index_count(x));
    CHECK(strcmp(m2d_key_index_file_path(y, 39), "part-39.parquet") == 0);
    CHECK(m2d_key_index_file(y, "part-7.parquet") == 7);
    mixed_key(N + 1, &k); /* it goes on as an index */
    CHECK(m2d_key_index_put(y, &k, 2, 5) && m2d_key_index_count(y) == m2d_key_index_count(x) + 1);
  }
  m2d_key_index_free(y);
  CHECK(!m2d_key_index_load(src, "stamq", 5, &version, &err) && strstr(err.message, "saved at table version 12"));
  CHECK(!m2d_key_index_load(src, "stam", 4, &version, &err));
  m2d_source_destroy(src);
  /* every byte matters: a flipped bit anywhere, or a file cut short, is refused */
  size_t bad = 0, tries = 0;
  for (size_t at = 0; at < file.len; at += file.len / 97 + 1) {
    file.data[at] ^= 0x10;
    src = m2d_mem_source_new(file.data, file.len, "cache");
    m2d_key_index_t *z = m2d_key_index_load(src, "stamp", 5, &version, &err);
    bad += z == NULL;
    tries++;
    m2d_key_index_free(z);
    m2d_source_destroy(src);
    file.data[at] ^= 0x10;
  }
  CHECK(bad == tries);
  src = m2d_mem_source_new(file.data, file.len - 3, "cache");
  CHECK(!m2d_key_index_load(src, "stamp", 5, &version, &err));
  m2d_source_destroy(src);
  m2d_buf_free(&file);
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
