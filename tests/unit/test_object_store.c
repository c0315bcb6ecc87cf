/* object_store's shared logic against a fake store in memory: the probe, the read-back of a lost
 * answer, the read-ahead windows, the listing's order, the XML and time helpers. */
#include "storage/object_store.h"

#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SLOTS 8

typedef struct {
  m2d_store_t base;
  m2d_objstore_commits_t commits;
  bool ignores_condition; /* a server that accepts If-None-Match and drops it */
  bool lose_next_answer;  /* the next write is stored, its answer lost, the retry refused */
  char keys[SLOTS][64];
  char vals[SLOTS][64];
  int puts, removes, fetches;
} fake_t;

static int slot_of(fake_t *f, const char *key) {
  for (int i = 0; i < SLOTS; i++)
    if (f->keys[i][0] && strcmp(f->keys[i], key) == 0) return i;
  return -1;
}

static int free_slot(fake_t *f) {
  for (int i = 0; i < SLOTS; i++)
    if (!f->keys[i][0]) return i;
  return 0;
}

static int stored(fake_t *f) {
  int n = 0;
  for (int i = 0; i < SLOTS; i++) n += f->keys[i][0] != 0;
  return n;
}

static bool fake_put_cond(m2d_store_t *st, const char *key, const void *data, size_t len, bool *exists, bool *lost,
                          m2d_error_t *err) {
  fake_t *f = (fake_t *)st;
  f->puts++;
  *exists = false;
  if (lost) *lost = false;
  int i = slot_of(f, key);
  if (f->lose_next_answer && i < 0) { /* stored by the attempt whose answer was lost */
    f->lose_next_answer = false;
    i = free_slot(f);
    snprintf(f->keys[i], sizeof f->keys[i], "%s", key);
    snprintf(f->vals[i], sizeof f->vals[i], "%.*s", (int)len, (const char *)data);
    if (lost) *lost = true;
  }
  if (i >= 0 && !f->ignores_condition) {
    *exists = true;
    return m2d_error_set(err, M2D_ERR_IO, 17, "%s exists already", key);
  }
  if (i < 0) i = free_slot(f);
  snprintf(f->keys[i], sizeof f->keys[i], "%s", key);
  snprintf(f->vals[i], sizeof f->vals[i], "%.*s", (int)len, (const char *)data);
  return true;
}

static bool fake_get(m2d_store_t *st, const char *key, m2d_buf_t *out, bool *missing, m2d_error_t *err) {
  fake_t *f = (fake_t *)st;
  int i = slot_of(f, key);
  if (missing) *missing = i < 0;
  m2d_buf_reset(out);
  if (i < 0) return m2d_error_set(err, M2D_ERR_IO, 2, "no such object");
  return m2d_buf_append_str(out, f->vals[i], err);
}

static bool fake_remove(m2d_store_t *st, const char *key, m2d_error_t *err) {
  (void)err;
  fake_t *f = (fake_t *)st;
  f->removes++;
  int i = slot_of(f, key);
  if (i >= 0) f->keys[i][0] = '\0';
  return true;
}

static const m2d_objstore_cond_t fake_cond = {fake_put_cond, "If-None-Match", "a PUT overwrote", "the real ones"};

static fake_t *fake_new(bool ignores, bool unsafe) {
  fake_t *f = calloc(1, sizeof *f);
  m2d_objstore_commits_init(&f->commits, &fake_cond);
  snprintf(f->commits.where, sizeof f->commits.where, "fake://bucket");
  f->commits.endpoint = "http://127.0.0.1:1";
  f->commits.unsafe_single_writer = unsafe;
  f->ignores_condition = ignores;
  f->base.get = fake_get;
  f->base.remove = fake_remove;
  snprintf(f->base.root, sizeof f->base.root, "fake://bucket/t");
  return f;
}

static void fake_free(fake_t *f) {
  m2d_objstore_commits_destroy(&f->commits);
  free(f);
}

TEST(objstore_probe_then_put_if_absent_on_a_server_that_honours_conditions) {
  fake_t *f = fake_new(false, false);
  m2d_error_t err = {0};
  bool exists = true;
  bool ok = m2d_objstore_put_if_absent(&f->base, &f->commits, "_delta_log/0.json", "a", 1, &exists, &err);
  int probed = f->commits.probed, puts = f->puts, n = stored(f), removes = f->removes;
  bool again = m2d_objstore_put_if_absent(&f->base, &f->commits, "_delta_log/0.json", "b", 1, &exists, &err);
  int puts2 = f->puts;
  fake_free(f);
  CHECK(ok && probed == 1);
  CHECK(puts == 3 && removes == 1 && n == 1); /* the probe's two writes, its key removed, then ours */
  CHECK(!again && exists && puts2 == 4);      /* probed once per store */
}

TEST(objstore_probe_refuses_a_server_that_ignores_conditions_unless_single_writer) {
  fake_t *f = fake_new(true, false);
  m2d_error_t err = {0};
  bool exists = false;
  bool ok = m2d_objstore_put_if_absent(&f->base, &f->commits, "k", "a", 1, &exists, &err);
  int n = stored(f);
  fake_free(f);
  CHECK(!ok && !exists && n == 0);
  CHECK(err.domain == M2D_ERR_USAGE);
  CHECK(strstr(err.message, "fake://bucket at http://127.0.0.1:1 ignores conditional writes (a PUT overwrote)"));
  CHECK(strstr(err.message, "(the real ones), or rerun with --unsafe-single-writer"));

  f = fake_new(true, true);
  m2d_error_t err2 = {0};
  ok = m2d_objstore_put_if_absent(&f->base, &f->commits, "k", "a", 1, &exists, &err2);
  int probed = f->commits.probed;
  n = stored(f);
  fake_free(f);
  CHECK(ok && probed == -1 && n == 1);
}

TEST(objstore_lost_answer_is_ours_only_if_the_bytes_are) {
  fake_t *f = fake_new(false, false);
  f->commits.probed = 1;
  f->lose_next_answer = true;
  m2d_error_t err = {0};
  bool exists = true;
  bool ok = m2d_objstore_put_if_absent(&f->base, &f->commits, "k", "mine", 4, &exists, &err);
  CHECK(ok && !exists && err.message[0] == '\0');
  /* another writer's bytes under the key: a lost race, not ours */
  f->lose_next_answer = false;
  int i = slot_of(f, "k");
  snprintf(f->vals[i], sizeof f->vals[i], "theirs");
  bool lost_flag = false;
  bool again = fake_put_cond(&f->base, "k", "mine", 4, &exists, &lost_flag, &err);
  fake_free(f);
  CHECK(!again && exists && !lost_flag);
}

static bool fake_fetch(m2d_objstore_source_t *src, uint64_t off, uint64_t len, m2d_buf_t *into, m2d_error_t *err) {
  fake_t *f = (fake_t *)src->store;
  f->fetches++;
  m2d_buf_reset(into);
  if (len > into->max) return m2d_error_set(err, M2D_ERR_LIMIT, 0, "fetch of %llu bytes into a buffer of at most %zu",
                                             (unsigned long long)len, into->max);
  if (!m2d_buf_reserve(into, (size_t)len, err)) return false;
  for (uint64_t i = 0; i < len; i++) into->data[i] = (uint8_t)((off + i) % 251);
  into->len = (size_t)len;
  return true;
}

TEST(objstore_source_reads_ahead_and_reads_the_tail_window) {
  fake_t *f = fake_new(false, false);
  uint64_t size = 10u << 20;
  m2d_error_t err = {0};
  m2d_objstore_source_t *src = m2d_objstore_source_new(&f->base, "part-0.parquet", size, fake_fetch, &err);
  CHECK(src);
  uint8_t b[16];
  bool ok = m2d_source_read_at(&src->base, size - 8, 8, b, &err) && b[0] == (size - 8) % 251 &&
            m2d_source_read_at(&src->base, size - (1u << 20), 8, b, &err); /* within the tail window */
  int after_tail = f->fetches;
  ok = ok && m2d_source_read_at(&src->base, 100, 16, b, &err) && b[0] == 100 &&
       m2d_source_read_at(&src->base, 4000, 16, b, &err); /* within the 4 MiB window */
  int after_window = f->fetches;
  uint8_t *big = malloc(5u << 20);
  ok = ok && m2d_source_read_at(&src->base, 1, 5u << 20, big, &err) && big[0] == 1 && big[250] == 0;
  free(big);
  int after_big = f->fetches;
  ok = ok && m2d_source_read_at(&src->base, 3u << 20, 16, b, &err) && b[0] == (3u << 20) % 251; /* inside it */
  int after_inside = f->fetches;
  bool name_ok = strcmp(src->base.name, "fake://bucket/t/part-0.parquet") == 0;
  m2d_source_destroy(&src->base);
  fake_free(f);
  CHECK(ok && name_ok);
  CHECK(after_tail == 1 && after_window == 2 && after_big == 3 && after_inside == 3);
}

TEST(objstore_entries_sorted_objects_before_folders_freed_on_failure) {
  m2d_store_entry_t *e = NULL;
  size_t n = 0, cap = 0;
  m2d_error_t err = {0};
  CHECK(m2d_objstore_push_entry(&e, &n, &cap, "b", 0, 0, true, &err));
  CHECK(m2d_objstore_push_entry(&e, &n, &cap, "b", 3, 0, false, &err));
  CHECK(m2d_objstore_push_entry(&e, &n, &cap, "a", 1, 0, false, &err));
  CHECK(m2d_objstore_entries_done(true, &e, &n));
  bool order = n == 3 && strcmp(e[0].name, "a") == 0 && !e[1].is_dir && e[2].is_dir;
  CHECK(!m2d_objstore_entries_done(false, &e, &n));
  CHECK(order && e == NULL && n == 0);
  char p[64];
  m2d_objstore_list_prefix("t", "_delta_log", p, sizeof p);
  CHECK_STR(p, "t/_delta_log/");
  m2d_objstore_list_prefix("", "", p, sizeof p);
  CHECK_STR(p, "");
}

TEST(objstore_xml_text_times_and_endpoints) {
  const char *x = "<R><KeyCount>2</KeyCount><Key>a&amp;b&#x41;&lt;</Key><Name Encoded=\"true\">x%2Fy</Name>"
                  "<Marker/></R>";
  const char *end = x + strlen(x);
  char out[64];
  CHECK(m2d_objstore_xml_text(x, end, "Key", out, sizeof out));
  CHECK_STR(out, "a&bA<");
  CHECK(m2d_objstore_xml_text(x, end, "Name", out, sizeof out));
  CHECK_STR(out, "x/y");
  CHECK(m2d_objstore_xml_text(x, end, "Marker", out, sizeof out));
  CHECK_STR(out, "");
  CHECK(!m2d_objstore_xml_text(x, end, "Size", out, sizeof out));
  CHECK(m2d_objstore_parse_rfc3339_ms("1970-01-01T00:00:01.250Z") == 1250);
  CHECK(m2d_objstore_parse_rfc3339_ms("1970-01-01T00:00:01.123456Z") == 1123);
  CHECK(m2d_objstore_parse_rfc3339_ms("1970-01-01T00:01:00Z") == 60000);
  CHECK(m2d_objstore_parse_rfc3339_ms("yesterday") == 0);
  m2d_error_t err = {0};
  CHECK(m2d_objstore_check_endpoint("V", "http://localhost:9000", "https://HOST", "data", &err));
  CHECK(!m2d_objstore_check_endpoint("V", "http://example.com", "https://HOST", "data", &err));
  CHECK(strstr(err.message, "plain HTTP would send data unencrypted"));
  CHECK(!m2d_objstore_check_endpoint("V", "example.com", "https://HOST", "data", &err));
  CHECK_STR(err.message, "V example.com: write it as https://HOST");
}
