/* delta/checkpoint_v2: v2 checkpoint names and sidecar paths; a v2Checkpoint table's checkpoint
 * written UUID-named with checkpointMetadata and read back; a JSON v2 checkpoint whose adds are
 * in a sidecar, read through it; log cleanup that starts from a v2 checkpoint, keeps the
 * sidecar it needs and removes one nothing names. */
#include "delta/actions.h"
#include "delta/checkpoint.h"
#include "delta/checkpoint_v2.h"
#include "delta/cleanup.h"
#include "delta/log.h"
#include "storage/store.h"
#include "test.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define DAY ((int64_t)24 * 3600 * 1000)

TEST(cp2_uuid_names) {
  bool json = false;
  CHECK(delta_cp2_uuid_name(".checkpoint.6374b053-df23-479b-b2cf-c9c550132b49.json", &json) && json);
  CHECK(delta_cp2_uuid_name(".checkpoint.E8FA2696-9728-4e9c-b285-634743fdd4fb.parquet", &json) && !json);
  CHECK(!delta_cp2_uuid_name(".checkpoint.parquet", NULL));
  CHECK(!delta_cp2_uuid_name(".checkpoint.0000000001.0000000002.parquet", NULL));
  CHECK(!delta_cp2_uuid_name(".checkpoint.6374b053-df23-479b-b2cf-c9c550132b49.crc", NULL));
  CHECK(!delta_cp2_uuid_name(".checkpoint.6374b053-df23-479b-b2cf-c9c550132b4.json", NULL));
  CHECK(!delta_cp2_uuid_name(".json", NULL));
}

TEST(cp2_sidecar_keys) {
  char key[512];
  json_t *sc = json_pack("{ss}", "path", "00000000000000000002.checkpoint.0000000001.0000000002.bd18.parquet");
  CHECK(delta_cp2_sidecar_key(sc, key, sizeof key));
  CHECK_STR(key, "_delta_log/_sidecars/00000000000000000002.checkpoint.0000000001.0000000002.bd18.parquet");
  json_decref(sc);
  /* a full URI: the sidecar is in the table's _sidecars all the same */
  sc = json_pack("{ss}", "path", "s3://bucket/t/_delta_log/_sidecars/a%20b.parquet");
  CHECK(delta_cp2_sidecar_key(sc, key, sizeof key));
  CHECK_STR(key, "_delta_log/_sidecars/a b.parquet");
  json_decref(sc);
  sc = json_pack("{ss}", "path", "");
  CHECK(!delta_cp2_sidecar_key(sc, key, sizeof key));
  json_decref(sc);
  json_t *lc = json_loads("{\"version\":2,\"v2Checkpoint\":{\"path\":\"x.json\",\"sizeInBytes\":1}}", 0, NULL);
  CHECK_STR(delta_cp2_last_checkpoint_path(lc), "x.json");
  json_decref(lc);
}

static bool put(m2d_store_t *s, const char *key, const char *text) {
  bool exists = false;
  return s->put_if_absent(s, key, text, strlen(text), &exists, NULL) && !exists;
}

static bool has(const char *dir, const char *name) {
  char p[600];
  snprintf(p, sizeof p, "%s/_delta_log/%s", dir, name);
  struct stat st;
  return stat(p, &st) == 0;
}

/* The name of the one UUID-named checkpoint at version v in dir's log, or "" */
static const char *uuid_checkpoint(const char *dir, int v) {
  static char found[300];
  found[0] = '\0';
  char log[400], prefix[32];
  snprintf(log, sizeof log, "%s/_delta_log", dir);
  snprintf(prefix, sizeof prefix, "%020d", v);
  DIR *d = opendir(log);
  struct dirent *e;
  while (d && (e = readdir(d)))
    if (strncmp(e->d_name, prefix, 20) == 0 && delta_cp2_uuid_name(e->d_name + 20, NULL))
      snprintf(found, sizeof found, "%s", e->d_name);
  if (d) closedir(d);
  return found;
}

static const char PROTO[] = "{\"protocol\":{\"minReaderVersion\":3,\"minWriterVersion\":7,\"readerFeatures\":"
                            "[\"v2Checkpoint\"],\"writerFeatures\":[\"v2Checkpoint\"]}}\n";
static const char META[] = "{\"metaData\":{\"id\":\"t\",\"format\":{\"provider\":\"parquet\",\"options\":{}},"
                           "\"schemaString\":\"{\\\"type\\\":\\\"struct\\\",\\\"fields\\\":[]}\","
                           "\"partitionColumns\":[],\"configuration\":{\"delta.checkpointPolicy\":\"v2\"}}}\n";
#define ADD(p) "{\"add\":{\"path\":\"" p "\",\"partitionValues\":{},\"size\":1,\"modificationTime\":1,\"dataChange\":true}}\n"

static bool paths_are(delta_snapshot_t *s, const char *a, const char *b) {
  return s->nadds == 2 && strcmp(s->adds[0].path, a) == 0 && strcmp(s->adds[1].path, b) == 0;
}

TEST(cp2_written_read_through_sidecars_and_kept_by_cleanup) {
  char dir[256], cmd[600];
  snprintf(dir, sizeof dir, "/tmp/m2d-cp2-%d", (int)getpid());
  m2d_store_t *s = m2d_store_local_new(dir, NULL);
  CHECK(s);
  char *c0 = malloc(4096);
  snprintf(c0, 4096, "%s%s", PROTO, META);
  bool ok = put(s, "_delta_log/00000000000000000000.json", c0) &&
            put(s, "_delta_log/00000000000000000001.json", ADD("a.parquet") ADD("b.parquet")) &&
            put(s, "_delta_log/00000000000000000002.json",
                "{\"remove\":{\"path\":\"a.parquet\",\"deletionTimestamp\":1,\"dataChange\":true}}\n" ADD("c.parquet"));
  free(c0);
  CHECK(ok);
  /* our checkpoint of a v2Checkpoint table: UUID-named Parquet, named by _last_checkpoint */
  m2d_error_t err = {0};
  CHECK(delta_checkpoint_write(s, 2, &err));
  const char *name = uuid_checkpoint(dir, 2);
  CHECK(*name && !has(dir, "00000000000000000002.checkpoint.parquet"));
  m2d_buf_t b;
  m2d_buf_init(&b, 1 << 20);
  CHECK(s->get(s, "_delta_log/_last_checkpoint", &b, NULL, &err));
  json_t *lc = json_loadb((const char *)b.data, b.len, 0, NULL);
  m2d_buf_free(&b);
  CHECK(lc && json_integer_value(json_object_get(lc, "version")) == 2);
  CHECK_STR(delta_cp2_last_checkpoint_path(lc), name);
  json_decref(lc);
  delta_snapshot_t snap;
  CHECK(delta_snapshot_load(s, -1, &snap, &err));
  bool read = snap.checkpoint == 2 && paths_are(&snap, "b.parquet", "c.parquet");
  delta_snapshot_free(&snap);
  CHECK(read);
  /* the same Parquet as the sidecar of a JSON v2 checkpoint at 3 that adds d itself, with the
   * commits before it gone: only the checkpoint and its sidecar give the files */
  snprintf(cmd, sizeof cmd, "mkdir -p '%s/_delta_log/_sidecars' && mv '%s/_delta_log/%s' '%s/_delta_log/_sidecars/s1.parquet'",
           dir, dir, name, dir);
  CHECK(system(cmd) == 0);
  char *c3 = malloc(8192);
  snprintf(c3, 8192, "{\"checkpointMetadata\":{\"version\":3}}\n{\"sidecar\":{\"path\":\"s1.parquet\",\"sizeInBytes\":1,"
           "\"modificationTime\":1}}\n%s%s" ADD("d.parquet"), PROTO, META);
  ok = put(s, "_delta_log/00000000000000000003.checkpoint.0a8d73ee-aa83-49d0-9583-c99db75b89b2.json", c3) &&
       put(s, "_delta_log/00000000000000000003.json", ADD("d.parquet")) &&
       put(s, "_delta_log/00000000000000000004.json", ADD("e.parquet"));
  free(c3);
  CHECK(ok);
  snprintf(cmd, sizeof cmd, "rm -f '%s/_delta_log/_last_checkpoint'", dir);
  CHECK(system(cmd) == 0);
  CHECK(delta_snapshot_load(s, -1, &snap, &err));
  /* b and c from the sidecar, d from the checkpoint itself, e from commit 4 */
  read = snap.checkpoint == 3 && snap.nadds == 4 && strcmp(snap.adds[0].path, "b.parquet") == 0 &&
         strcmp(snap.adds[2].path, "d.parquet") == 0 && strcmp(snap.adds[3].path, "e.parquet") == 0;
  delta_snapshot_free(&snap);
  CHECK(read);
  /* forty days on: the commits before the v2 checkpoint expire, its sidecar stays, a sidecar
   * no kept checkpoint names goes */
  CHECK(put(s, "_delta_log/_sidecars/s0.parquet", "x"));
  int removed = 0;
  int64_t kept_from = -1;
  json_t *meta = json_loads(META, 0, NULL);
  json_t *txns = json_object();
  ok = delta_log_cleanup(s, json_object_get(meta, "metaData"), txns, delta_now_ms() + 40 * DAY, &removed, &kept_from,
                         &err);
  json_decref(txns);
  json_decref(meta);
  CHECK(ok && kept_from == 3 && removed == 4);
  CHECK(!has(dir, "00000000000000000000.json") && !has(dir, "00000000000000000002.json"));
  CHECK(has(dir, "_sidecars/s1.parquet") && !has(dir, "_sidecars/s0.parquet") && has(dir, "00000000000000000004.json"));
  CHECK(delta_snapshot_load(s, -1, &snap, &err));
  read = snap.checkpoint == 3 && snap.nadds == 4;
  delta_snapshot_free(&snap);
  CHECK(read);
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  CHECK(system(cmd) == 0);
  m2d_store_destroy(s);
}
