/* delta/log: the compact files of a replayed snapshot against the log's JSON they come from
 * (fields kept, the odd ones as they were), reconciliation of removes and deletion vectors,
 * and the order by path of many files written in no order. */
#include "delta/log.h"
#include "storage/store.h"
#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static char *table_dir(void) {
  static char dir[256];
  static int counter;
  snprintf(dir, sizeof dir, "/tmp/m2d-log-%d-%d", (int)getpid(), counter++);
  char log[300];
  snprintf(log, sizeof log, "%s/_delta_log", dir);
  mkdir(dir, 0755);
  mkdir(log, 0755);
  return dir;
}

static void drop(const char *dir) {
  char cmd[512];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
}

static FILE *commit_file(const char *dir, int version) {
  char path[400];
  snprintf(path, sizeof path, "%s/_delta_log/%020d.json", dir, version);
  return fopen(path, "w");
}

static const char HEAD[] =
    "{\"protocol\":{\"minReaderVersion\":1,\"minWriterVersion\":2}}\n"
    "{\"metaData\":{\"id\":\"t\",\"format\":{\"provider\":\"parquet\",\"options\":{}},\"schemaString\":"
    "\"{\\\"type\\\":\\\"struct\\\",\\\"fields\\\":[]}\",\"partitionColumns\":[],\"configuration\":{}}}\n";

TEST(log_compact_files_keep_the_add_fields) {
  char *dir = table_dir();
  FILE *f = commit_file(dir, 0);
  CHECK(f);
  fputs(HEAD, f);
  fputs("{\"add\":{\"path\":\"b%20x.parquet\",\"partitionValues\":{\"p\":\"1\"},\"size\":7,\"modificationTime\":9,"
        "\"dataChange\":true,\"stats\":\"{\\\"numRecords\\\":3}\",\"tags\":{\"k\":\"v\"}}}\n",
        f);
  /* a size that is not an integer stays as it was */
  fputs("{\"add\":{\"path\":\"a.parquet\",\"partitionValues\":{},\"size\":\"12\",\"dataChange\":false}}\n", f);
  fputs("{\"add\":{\"path\":\"c.parquet\",\"partitionValues\":{},\"size\":5,\"modificationTime\":1,\"dataChange\":true,"
        "\"deletionVector\":{\"storageType\":\"u\",\"pathOrInlineDv\":\"dv1\",\"offset\":1,\"sizeInBytes\":3,"
        "\"cardinality\":2}}}\n",
        f);
  fclose(f);
  f = commit_file(dir, 1);
  CHECK(f);
  /* c's deletion vector replaced: the remove names the old one */
  fputs("{\"remove\":{\"path\":\"c.parquet\",\"deletionTimestamp\":5,\"dataChange\":true,"
        "\"deletionVector\":{\"storageType\":\"u\",\"pathOrInlineDv\":\"dv1\",\"offset\":1,\"sizeInBytes\":3,"
        "\"cardinality\":2}}}\n"
        "{\"add\":{\"path\":\"c.parquet\",\"partitionValues\":{},\"size\":5,\"modificationTime\":1,\"dataChange\":true,"
        "\"deletionVector\":{\"storageType\":\"u\",\"pathOrInlineDv\":\"dv2\",\"offset\":1,\"sizeInBytes\":3,"
        "\"cardinality\":4}}}\n",
        f);
  fclose(f);
  m2d_store_t *store = m2d_store_local_new(dir, NULL);
  CHECK(store);
  delta_snapshot_t s, c;
  m2d_error_t err = {0};
  CHECK(delta_snapshot_load(store, -1, &s, &err));
  CHECK(delta_snapshot_load_ex(store, -1, DELTA_LOAD_COMPACT | DELTA_LOAD_NO_TOMBSTONES, &c, &err));
  CHECK(s.version == 1 && s.nadds == 3 && json_array_size(s.files) == 3);
  CHECK(c.files == NULL && c.nadds == 3);
  CHECK(json_array_size(s.tombstones) == 1 && json_array_size(c.tombstones) == 0);
  /* sorted by path, each add as the log wrote it */
  json_t *want = json_loads("[{\"path\":\"a.parquet\",\"partitionValues\":{},\"dataChange\":false,\"size\":\"12\"},"
                            "{\"path\":\"b%20x.parquet\",\"partitionValues\":{\"p\":\"1\"},\"size\":7,"
                            "\"modificationTime\":9,\"dataChange\":true,\"stats\":\"{\\\"numRecords\\\":3}\","
                            "\"tags\":{\"k\":\"v\"}},"
                            "{\"path\":\"c.parquet\",\"partitionValues\":{},\"size\":5,\"modificationTime\":1,"
                            "\"dataChange\":true,\"deletionVector\":{\"storageType\":\"u\",\"pathOrInlineDv\":\"dv2\","
                            "\"offset\":1,\"sizeInBytes\":3,\"cardinality\":4}}]",
                            0, NULL);
  CHECK(want && json_equal(want, s.files));
  CHECK(json_equal(want, delta_snapshot_files(&c)));
  json_decref(want);
  CHECK_STR(c.adds[0].path, "a.parquet");
  CHECK(!(c.adds[0].flags & DELTA_FILE_SIZE));
  CHECK(c.adds[1].size == 7 && c.adds[1].modification_time == 9 && c.adds[1].stats);
  CHECK_STR(c.adds[1].stats, "{\"numRecords\":3}");
  CHECK_STR(json_string_value(json_object_get(delta_file_partition_values(&c.adds[1]), "p")), "1");
  CHECK(delta_file_partition_values(&c.adds[0]) == NULL);
  json_t *dv = delta_file_dv(&c.adds[2]);
  CHECK_STR(json_string_value(json_object_get(dv, "pathOrInlineDv")), "dv2");
  char key[4096];
  delta_file_key(json_array_get(s.files, 2), key, sizeof key);
  CHECK_STR(c.adds[2].key, key);
  delta_snapshot_free(&s);
  delta_snapshot_free(&c);
  m2d_store_destroy(store);
  drop(dir);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

TEST(log_files_sorted_by_path) {
  char *dir = table_dir();
  FILE *f = commit_file(dir, 0);
  CHECK(f);
  fputs(HEAD, f);
  /* paths sharing long prefixes, of every length, in a scrambled order; then some removed */
  enum { N = 3000 };
  char **paths = calloc(N, sizeof *paths);
  CHECK(paths);
  unsigned x = 12345;
  for (int i = 0; i < N; i++) {
    char p[1200];
    x = x * 1103515245u + 12345u;
    int kind = (int)(x >> 16) % 4;
    if (kind == 0) snprintf(p, sizeof p, "date=2024-01-0%d/part-%05u.parquet", i % 3, (x >> 8) % 100000u);
    else if (kind == 1) snprintf(p, sizeof p, "%.*s%d", 1 + i % 40, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", i);
    else if (kind == 2) snprintf(p, sizeof p, "%01100d-%d", 0, i);
    else snprintf(p, sizeof p, "x%u/%d", x % 7, i);
    paths[i] = strdup(p);
    fprintf(f, "{\"add\":{\"path\":\"%s\",\"partitionValues\":{},\"size\":1,\"modificationTime\":1,\"dataChange\":true}}\n", p);
  }
  fclose(f);
  f = commit_file(dir, 1);
  CHECK(f);
  for (int i = 0; i < N; i += 10) fprintf(f, "{\"remove\":{\"path\":\"%s\",\"dataChange\":true}}\n", paths[i]);
  fclose(f);
  /* what remains, sorted (paths repeat when two kinds collide: one file then) */
  char **want = calloc(N, sizeof *want);
  size_t nwant = 0;
  for (int i = 0; i < N; i++) {
    bool removed = false;
    for (int j = 0; j < N && !removed; j += 10) removed = strcmp(paths[i], paths[j]) == 0;
    bool dup = false;
    for (size_t k = 0; k < nwant && !dup; k++) dup = strcmp(want[k], paths[i]) == 0;
    if (!removed && !dup) want[nwant++] = paths[i];
  }
  qsort(want, nwant, sizeof *want, cmp_str);
  m2d_store_t *store = m2d_store_local_new(dir, NULL);
  CHECK(store);
  delta_snapshot_t s;
  m2d_error_t err = {0};
  CHECK(delta_snapshot_load_ex(store, -1, DELTA_LOAD_COMPACT, &s, &err));
  CHECK(s.nadds == nwant);
  bool same = true;
  for (size_t k = 0; k < nwant; k++) same &= strcmp(s.adds[k].path, want[k]) == 0;
  CHECK(same);
  delta_snapshot_free(&s);
  m2d_store_destroy(store);
  for (int i = 0; i < N; i++) free(paths[i]);
  free(paths);
  free(want);
  drop(dir);
}
