/* delta/cleanup: which log files expire. The log is made of empty files (cleanup reads only
 * the listing); "now" is passed in, days after the files were written, so nothing depends on
 * timing. */
#include "delta/actions.h"
#include "delta/cleanup.h"
#include "delta/log.h"
#include "storage/store.h"
#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define DAY ((int64_t)24 * 3600 * 1000)

static m2d_store_t *new_log(char *dir, size_t n) {
  static int counter;
  snprintf(dir, n, "/tmp/m2d-cleanup-%d-%d", (int)getpid(), counter++);
  m2d_store_t *s = m2d_store_local_new(dir, NULL);
  if (!s) return NULL;
  char key[128];
  bool ok = true, ex = false;
  for (int v = 0; ok && v <= 25; v++) {
    snprintf(key, sizeof key, "_delta_log/%020d.json", v);
    ok = s->put_if_absent(s, key, "{}\n", 3, &ex, NULL);
  }
  const char *more[] = {"_delta_log/00000000000000000010.checkpoint.parquet",
                        "_delta_log/00000000000000000020.checkpoint.parquet", "_delta_log/00000000000000000005.crc",
                        "_delta_log/_last_checkpoint"};
  for (size_t i = 0; ok && i < sizeof more / sizeof more[0]; i++) ok = s->put_if_absent(s, more[i], "x", 1, &ex, NULL);
  if (!ok) m2d_store_destroy(s);
  return ok ? s : NULL;
}

static void drop(m2d_store_t *s, const char *dir) {
  char cmd[512];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
  m2d_store_destroy(s);
}

static bool exists(m2d_store_t *s, const char *name) {
  char key[256];
  snprintf(key, sizeof key, "_delta_log/%s", name);
  m2d_buf_t b;
  m2d_buf_init(&b, 1 << 20);
  bool missing = false;
  bool ok = s->get(s, key, &b, &missing, NULL);
  m2d_buf_free(&b);
  return ok && !missing;
}

static json_t *meta(const char *retention, const char *enabled) {
  json_t *conf = json_object();
  if (retention) json_object_set_new(conf, "delta.logRetentionDuration", json_string(retention));
  if (enabled) json_object_set_new(conf, "delta.enableExpiredLogCleanup", json_string(enabled));
  return json_pack("{so}", "configuration", conf);
}

TEST(cleanup_removes_everything_before_the_newest_expired_checkpoint) {
  char dir[256];
  m2d_store_t *s = new_log(dir, sizeof dir);
  CHECK(s);
  json_t *m = meta("interval 1 day", NULL);
  int removed = -1;
  int64_t kept = -1;
  m2d_error_t err = {0};
  bool ok = delta_log_cleanup(s, m, NULL, delta_now_ms() + 2 * DAY, &removed, &kept, &err);
  json_decref(m);
  bool gone = !exists(s, "00000000000000000000.json") && !exists(s, "00000000000000000019.json") &&
              !exists(s, "00000000000000000010.checkpoint.parquet") && !exists(s, "00000000000000000005.crc");
  bool kept_all = exists(s, "00000000000000000020.json") && exists(s, "00000000000000000020.checkpoint.parquet") &&
                  exists(s, "00000000000000000025.json") && exists(s, "_last_checkpoint");
  drop(s, dir);
  CHECK(ok);
  CHECK(kept == 20);
  CHECK(removed == 22); /* 20 commits, one checkpoint, one checksum */
  CHECK(gone);
  CHECK(kept_all);
}

TEST(cleanup_keeps_everything_within_the_retention) {
  char dir[256];
  m2d_store_t *s = new_log(dir, sizeof dir);
  CHECK(s);
  json_t *m = meta(NULL, NULL); /* 30 days */
  int removed = -1;
  int64_t kept = 0;
  bool ok = delta_log_cleanup(s, m, NULL, delta_now_ms() + 29 * DAY, &removed, &kept, NULL);
  json_decref(m);
  bool all = exists(s, "00000000000000000000.json") && exists(s, "00000000000000000010.checkpoint.parquet");
  drop(s, dir);
  CHECK(ok);
  CHECK(removed == 0);
  CHECK(kept == -1);
  CHECK(all);
}

TEST(cleanup_is_off_when_expired_log_cleanup_is_disabled) {
  char dir[256];
  m2d_store_t *s = new_log(dir, sizeof dir);
  CHECK(s);
  json_t *m = meta("interval 1 second", "false");
  int removed = -1;
  bool ok = delta_log_cleanup(s, m, NULL, delta_now_ms() + 2 * DAY, &removed, NULL, NULL);
  json_decref(m);
  bool all = exists(s, "00000000000000000000.json");
  drop(s, dir);
  CHECK(ok);
  CHECK(removed == 0);
  CHECK(all);
}

TEST(cleanup_refuses_a_retention_that_is_not_an_interval_and_removes_nothing) {
  char dir[256];
  m2d_store_t *s = new_log(dir, sizeof dir);
  CHECK(s);
  json_t *m = meta("30 fortnights", NULL);
  m2d_error_t err = {0};
  int removed = -1;
  bool ok = delta_log_cleanup(s, m, NULL, delta_now_ms() + 100 * DAY, &removed, NULL, &err);
  json_decref(m);
  bool all = exists(s, "00000000000000000000.json");
  drop(s, dir);
  CHECK(!ok);
  CHECK(strstr(err.message, "delta.logRetentionDuration") != NULL);
  CHECK(removed == 0);
  CHECK(all);
}

TEST(cleanup_retention_parses_spark_intervals) {
  int64_t ms = 0;
  json_t *m = meta("interval 2 hours", NULL);
  bool ok = delta_log_retention_ms(m, &ms, NULL);
  json_decref(m);
  CHECK(ok && ms == 2 * 3600 * 1000);
  m = meta("INTERVAL 1 WEEK", NULL);
  ok = delta_log_retention_ms(m, &ms, NULL);
  json_decref(m);
  CHECK(ok && ms == 7 * DAY);
  m = meta(NULL, NULL);
  ok = delta_log_retention_ms(m, &ms, NULL);
  json_decref(m);
  CHECK(ok && ms == 30 * DAY);
}

TEST(cleanup_keeps_the_commit_holding_an_applications_latest_txn) {
  char dir[256];
  m2d_store_t *s = new_log(dir, sizeof dir);
  CHECK(s);
  /* version 3 is where the stream "s" recorded batch 7 (and its position, in commitInfo) */
  const char *c3 = "{\"commitInfo\":{\"mongo2delta\":{\"seq\":42,\"resumeToken\":\"t\"}}}\n"
                   "{\"txn\":{\"appId\":\"s\",\"version\":7}}\n";
  /* version 4: a load of one file (its own application id, no position): removed */
  const char *c4 = "{\"commitInfo\":{\"mongo2delta\":{\"source\":\"f\"}}}\n{\"txn\":{\"appId\":\"load:f\",\"version\":0}}\n";
  bool ok = s->remove(s, "_delta_log/00000000000000000003.json", NULL);
  bool ex = false;
  ok = ok && s->put_if_absent(s, "_delta_log/00000000000000000003.json", c3, strlen(c3), &ex, NULL);
  ok = ok && s->remove(s, "_delta_log/00000000000000000004.json", NULL);
  ok = ok && s->put_if_absent(s, "_delta_log/00000000000000000004.json", c4, strlen(c4), &ex, NULL);
  json_t *m = meta("interval 1 day", NULL);
  json_t *txns = json_pack("{sIsI}", "s", (json_int_t)7, "load:f", (json_int_t)0);
  int removed = -1;
  ok = ok && delta_log_cleanup(s, m, txns, delta_now_ms() + 2 * DAY, &removed, NULL, NULL);
  json_decref(m);
  json_decref(txns);
  bool kept3 = exists(s, "00000000000000000003.json"), gone2 = !exists(s, "00000000000000000002.json") &&
                                                              !exists(s, "00000000000000000004.json");
  json_t *ci = ok ? delta_find_txn_commit(s, 25, "s", 7, NULL) : NULL;
  json_int_t seq = json_integer_value(json_object_get(json_object_get(ci, "mongo2delta"), "seq"));
  json_decref(ci);
  drop(s, dir);
  CHECK(ok);
  CHECK(removed == 21);
  CHECK(kept3 && gone2);
  CHECK(seq == 42);
}
