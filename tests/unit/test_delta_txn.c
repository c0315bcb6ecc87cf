/* delta/txn: commits by put-if-absent and the conflicts a lost race is checked for. Each test
 * builds a small table in a fresh directory, lets a "concurrent" transaction win a version,
 * then commits one that read the older version. */
#include "delta/actions.h"
#include "delta/log.h"
#include "delta/txn.h"
#include "storage/store.h"
#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static m2d_store_t *new_table(char *dir, size_t n) {
  static int counter;
  snprintf(dir, n, "/tmp/m2d-txn-%d-%d", (int)getpid(), counter++);
  m2d_store_t *s = m2d_store_local_new(dir, NULL);
  if (!s) return NULL;
  /* version 0: two files, a.parquet and b.parquet */
  delta_txn_t *t = delta_txn_new(s, -1, "CREATE TABLE", NULL);
  const char *schema = "{\"type\":\"struct\",\"fields\":[{\"name\":\"x\",\"type\":\"long\",\"nullable\":true,\"metadata\":{}}]}";
  bool ok = t && delta_txn_add(t, delta_protocol_action(1, 2, NULL, NULL), NULL) &&
            delta_txn_add(t, delta_metadata_action("id-1", schema, NULL, NULL, 1), NULL) &&
            delta_txn_add(t, delta_add_action("a.parquet", NULL, 10, 1, NULL), NULL) &&
            delta_txn_add(t, delta_add_action("b.parquet", NULL, 10, 1, NULL), NULL);
  int64_t v = -1;
  ok = ok && delta_txn_commit(t, &v, NULL) && v == 0;
  delta_txn_destroy(t);
  if (!ok) {
    m2d_store_destroy(s);
    return NULL;
  }
  return s;
}

static void drop_table(m2d_store_t *s, const char *dir) {
  char cmd[512];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
  m2d_store_destroy(s);
}

static json_t *remove_action(const char *path, const char *dv_id) {
  json_t *r = json_pack("{s{sssIsbsbs{}sI}}", "remove", "path", path, "deletionTimestamp", (json_int_t)2, "dataChange", 1,
                        "extendedFileMetadata", 1, "partitionValues", "size", (json_int_t)10);
  if (dv_id)
    json_object_set_new(json_object_get(r, "remove"), "deletionVector",
                        json_pack("{sssssisisI}", "storageType", "u", "pathOrInlineDv", dv_id, "offset", 1,
                                  "sizeInBytes", 34, "cardinality", (json_int_t)1));
  return r;
}

/* Commits, as another writer that read version 0, the given actions (NULL-terminated). */
static bool concurrent(m2d_store_t *s, json_t *a1, json_t *a2) {
  delta_txn_t *t = delta_txn_new(s, 0, "DELETE", NULL);
  bool ok = t && delta_txn_add(t, a1, NULL) && (!a2 || delta_txn_add(t, a2, NULL));
  int64_t v;
  ok = ok && delta_txn_commit(t, &v, NULL);
  delta_txn_destroy(t);
  return ok;
}

static bool version_exists(m2d_store_t *s, int64_t v) {
  char key[64];
  snprintf(key, sizeof key, "_delta_log/%020lld.json", (long long)v);
  m2d_buf_t b;
  m2d_buf_init(&b, 1 << 20);
  bool missing = false;
  bool ok = s->get(s, key, &b, &missing, NULL);
  m2d_buf_free(&b);
  return ok && !missing;
}

TEST(txn_concurrent_remove_of_the_same_file_is_a_conflict_naming_it) {
  char dir[256];
  m2d_store_t *s = new_table(dir, sizeof dir);
  CHECK(s);
  CHECK(concurrent(s, remove_action("a.parquet", NULL), NULL)); /* version 1 */
  delta_txn_t *t = delta_txn_new(s, 0, "OPTIMIZE", NULL);
  CHECK(delta_txn_add(t, remove_action("a.parquet", NULL), NULL));
  CHECK(delta_txn_add(t, delta_add_action("c.parquet", NULL, 20, 1, NULL), NULL));
  int64_t v = -1;
  m2d_error_t err = {0};
  bool ok = delta_txn_commit(t, &v, &err);
  delta_txn_destroy(t);
  CHECK(!ok);
  CHECK(err.domain == M2D_ERR_CONFLICT && err.code == DELTA_CONFLICT_FILES);
  CHECK(strstr(err.message, "a.parquet") != NULL);
  CHECK(strstr(err.message, "version 1") != NULL);
  CHECK(strstr(err.message, "run the command again") != NULL);
  CHECK(!version_exists(s, 2)); /* nothing committed */
  delta_snapshot_t snap;
  CHECK(delta_snapshot_load(s, -1, &snap, NULL));
  CHECK(snap.version == 1 && json_array_size(snap.files) == 1);
  delta_snapshot_free(&snap);
  drop_table(s, dir);
}

TEST(txn_concurrent_remove_and_readd_with_a_deletion_vector_is_a_conflict) {
  char dir[256];
  m2d_store_t *s = new_table(dir, sizeof dir);
  CHECK(s);
  /* another writer deleted rows of a.parquet: remove + add of the same path with a DV */
  json_t *readd = delta_add_action("a.parquet", NULL, 10, 1, NULL);
  json_object_set_new(json_object_get(readd, "add"), "deletionVector",
                      json_pack("{sssssisisI}", "storageType", "u", "pathOrInlineDv", "ab^-aqEH.-t@S}K{vb[*k^", "offset", 1,
                                "sizeInBytes", 34, "cardinality", (json_int_t)1));
  CHECK(concurrent(s, remove_action("a.parquet", NULL), readd));
  delta_txn_t *t = delta_txn_new(s, 0, "OPTIMIZE", NULL);
  CHECK(delta_txn_add(t, remove_action("a.parquet", NULL), NULL));
  int64_t v = -1;
  m2d_error_t err = {0};
  bool ok = delta_txn_commit(t, &v, &err);
  delta_txn_destroy(t);
  CHECK(!ok && err.domain == M2D_ERR_CONFLICT && err.code == DELTA_CONFLICT_FILES);
  CHECK(strstr(err.message, "a.parquet") != NULL);
  drop_table(s, dir);
}

TEST(txn_concurrent_remove_of_another_file_is_retried_at_the_next_version) {
  char dir[256];
  m2d_store_t *s = new_table(dir, sizeof dir);
  CHECK(s);
  CHECK(concurrent(s, remove_action("b.parquet", NULL), NULL)); /* version 1 */
  delta_txn_t *t = delta_txn_new(s, 0, "OPTIMIZE", NULL);
  CHECK(delta_txn_add(t, remove_action("a.parquet", NULL), NULL));
  CHECK(delta_txn_add(t, delta_add_action("c.parquet", NULL, 20, 1, NULL), NULL));
  int64_t v = -1;
  m2d_error_t err = {0};
  bool ok = delta_txn_commit(t, &v, &err);
  delta_txn_destroy(t);
  CHECK(ok && v == 2);
  delta_snapshot_t snap;
  CHECK(delta_snapshot_load(s, -1, &snap, NULL));
  CHECK(json_array_size(snap.files) == 1);
  CHECK_STR(json_string_value(json_object_get(json_array_get(snap.files, 0), "path")), "c.parquet");
  delta_snapshot_free(&snap);
  drop_table(s, dir);
}

TEST(txn_same_file_removed_with_a_schema_change_is_a_files_conflict) {
  char dir[256];
  m2d_store_t *s = new_table(dir, sizeof dir);
  CHECK(s);
  const char *schema = "{\"type\":\"struct\",\"fields\":[{\"name\":\"x\",\"type\":\"long\",\"nullable\":true,\"metadata\":{}},"
                       "{\"name\":\"y\",\"type\":\"long\",\"nullable\":true,\"metadata\":{}}]}";
  CHECK(concurrent(s, delta_metadata_action("id-1", schema, NULL, NULL, 1), remove_action("a.parquet", NULL)));
  delta_txn_t *t = delta_txn_new(s, 0, "OPTIMIZE", NULL);
  CHECK(delta_txn_add(t, remove_action("a.parquet", NULL), NULL));
  int64_t v = -1;
  m2d_error_t err = {0};
  bool ok = delta_txn_commit(t, &v, &err);
  delta_txn_destroy(t);
  /* not the schema conflict, which a writer would retry after re-reading the table */
  CHECK(!ok && err.domain == M2D_ERR_CONFLICT && err.code == DELTA_CONFLICT_FILES);
  drop_table(s, dir);
}

TEST(txn_paths_are_compared_decoded) {
  char dir[256];
  m2d_store_t *s = new_table(dir, sizeof dir);
  CHECK(s);
  CHECK(concurrent(s, remove_action("p=a%20b/x.parquet", NULL), NULL));
  delta_txn_t *t = delta_txn_new(s, 0, "OPTIMIZE", NULL);
  CHECK(delta_txn_add(t, remove_action("p=a b/x.parquet", NULL), NULL));
  int64_t v = -1;
  m2d_error_t err = {0};
  bool ok = delta_txn_commit(t, &v, &err);
  delta_txn_destroy(t);
  CHECK(!ok && err.code == DELTA_CONFLICT_FILES);
  CHECK(strstr(err.message, "p=a b/x.parquet") != NULL);
  drop_table(s, dir);
}

TEST(txn_commit_with_removes_is_not_a_blind_append) {
  char dir[256];
  m2d_store_t *s = new_table(dir, sizeof dir);
  CHECK(s);
  delta_txn_t *t = delta_txn_new(s, 0, "DELETE", NULL);
  CHECK(delta_txn_add(t, remove_action("a.parquet", NULL), NULL));
  int64_t v = -1;
  CHECK(delta_txn_commit(t, &v, NULL) && v == 1);
  delta_txn_destroy(t);
  m2d_buf_t b;
  m2d_buf_init(&b, 1 << 20);
  CHECK(s->get(s, "_delta_log/00000000000000000001.json", &b, NULL, NULL));
  json_t *acts = delta_parse_actions("1.json", b.data, b.len, NULL);
  m2d_buf_free(&b);
  CHECK(acts);
  json_t *ci = json_object_get(json_array_get(acts, 0), "commitInfo");
  bool blind = json_is_true(json_object_get(ci, "isBlindAppend"));
  json_decref(acts);
  CHECK(!blind);
  drop_table(s, dir);
}
