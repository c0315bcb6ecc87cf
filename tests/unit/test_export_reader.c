/* mongo/export_reader: mongodump BSON (plain and gzip) and mongoexport JSON lines. */
#include "mongo/export_reader.h"
#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <zlib.h>

static void tmp_path(char *out, size_t n, const char *suffix) {
  static int counter;
  snprintf(out, n, "/tmp/m2d-test-%d-%d%s", (int)getpid(), counter++, suffix);
}

static void write_docs(const char *path, bool gzip, int n, bool corrupt_second) {
  gzFile gz = gzip ? gzopen(path, "wb") : NULL;
  FILE *f = gzip ? NULL : fopen(path, "wb");
  for (int i = 0; i < n; i++) {
    bson_t *d = BCON_NEW("_id", BCON_INT32(i), "name", BCON_UTF8("x"));
    uint8_t *data = (uint8_t *)bson_get_data(d);
    uint8_t copy[256];
    memcpy(copy, data, d->len);
    if (corrupt_second && i == 1) copy[4] = 0x55; /* an element type that does not exist */
    if (gzip) gzwrite(gz, copy, d->len);
    else fwrite(copy, 1, d->len, f);
    bson_destroy(d);
  }
  if (gzip) gzclose(gz);
  else fclose(f);
}

static int count_docs(const char *path, int *bad, m2d_error_t *last_err) {
  m2d_export_reader_t *r = m2d_export_reader_open(path, last_err);
  if (!r) return -1;
  int ok = 0;
  *bad = 0;
  const bson_t *doc;
  m2d_rec_status_t st;
  while ((st = m2d_export_reader_next(r, &doc, last_err)) == M2D_REC_OK || st == M2D_REC_BAD) {
    if (st == M2D_REC_OK) ok++;
    else (*bad)++;
  }
  m2d_export_reader_close(r);
  return st == M2D_REC_FATAL ? -2 - ok : ok;
}

TEST(export_reads_bson_and_gzipped_bson) {
  char p1[128], p2[128];
  tmp_path(p1, sizeof p1, ".bson");
  tmp_path(p2, sizeof p2, ".bson.gz");
  write_docs(p1, false, 1000, false);
  write_docs(p2, true, 1000, false);
  int bad;
  m2d_error_t err = {0};
  CHECK(count_docs(p1, &bad, &err) == 1000 && bad == 0);
  CHECK(count_docs(p2, &bad, &err) == 1000 && bad == 0);
  unlink(p1);
  unlink(p2);
}

TEST(export_bad_bson_document_is_reported_with_its_offset_and_skipped) {
  char p[128];
  tmp_path(p, sizeof p, ".bson");
  write_docs(p, false, 3, true);
  int bad;
  m2d_error_t err = {0};
  CHECK(count_docs(p, &bad, &err) == 2 && bad == 1);
  unlink(p);
}

TEST(export_truncated_bson_is_fatal_and_says_where) {
  char p[128];
  tmp_path(p, sizeof p, ".bson");
  write_docs(p, false, 3, false);
  CHECK(truncate(p, 50) == 0);
  int bad;
  m2d_error_t err = {0};
  CHECK(count_docs(p, &bad, &err) == -2 - 1); /* 26-byte documents: the second is cut */
  CHECK(strstr(err.message, "truncated document at byte") != NULL);
  unlink(p);
}

TEST(export_json_lines_canonical_relaxed_and_bad_lines) {
  char p[128];
  tmp_path(p, sizeof p, ".json");
  FILE *f = fopen(p, "w");
  fputs("{\"_id\":{\"$oid\":\"5a97f9c91c807bb9c6eb5fb4\"},\"n\":{\"$numberLong\":\"5\"}}\n", f);
  fputs("\n", f);
  fputs("{\"_id\":2,\"when\":{\"$date\":\"2020-01-01T00:00:00Z\"}}\r\n", f);
  fputs("{\"_id\":3, oops}\n", f);
  fputs("{\"_id\":4}", f); /* no newline at the end */
  fclose(f);
  m2d_export_reader_t *r = m2d_export_reader_open(p, NULL);
  CHECK(r);
  const bson_t *doc;
  m2d_error_t err = {0};
  CHECK(m2d_export_reader_next(r, &doc, &err) == M2D_REC_OK);
  bson_iter_t it;
  CHECK(bson_iter_init_find(&it, doc, "n") && BSON_ITER_HOLDS_INT64(&it));
  CHECK(m2d_export_reader_next(r, &doc, &err) == M2D_REC_OK);
  CHECK(bson_iter_init_find(&it, doc, "when") && BSON_ITER_HOLDS_DATE_TIME(&it));
  CHECK(m2d_export_reader_next(r, &doc, &err) == M2D_REC_BAD);
  CHECK(strstr(err.message, "line 4") != NULL);
  size_t len;
  const uint8_t *raw = m2d_export_reader_raw(r, &len);
  CHECK(len >= 15 && memcmp(raw, "{\"_id\":3, oops}", 15) == 0);
  CHECK(m2d_export_reader_next(r, &doc, &err) == M2D_REC_OK);
  CHECK(m2d_export_reader_next(r, &doc, &err) == M2D_REC_EOF);
  m2d_export_reader_close(r);
  unlink(p);
}

TEST(export_sample_collections_read_completely) {
  char p[512];
  snprintf(p, sizeof p, "%s/mongodb-sample/sample_mflix/users.json", m2d_testdata_dir());
  int bad;
  m2d_error_t err = {0};
  CHECK(count_docs(p, &bad, &err) == 185 && bad == 0);
  CHECK(m2d_export_is_supported("x/orders.bson.gz") && !m2d_export_is_supported("x/orders.metadata.json"));
}
