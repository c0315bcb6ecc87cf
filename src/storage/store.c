#include "storage/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"

m2d_store_options_t m2d_store_default_options;

static m2d_store_t *open_local(const char *url, const m2d_store_options_t *opts, m2d_error_t *err) {
  (void)opts;
  if (strncmp(url, "file://", 7) == 0) url += 7;
  return m2d_store_local_new(url, err);
}

/* Scheme -> constructor. Adding a store is one file and one row here (an object store builds on
 * object_store.h for what every object store does the same way). */
static const struct {
  const char *scheme; /* with "://" */
  m2d_store_t *(*open)(const char *url, const m2d_store_options_t *opts, m2d_error_t *err);
} registry[] = {
    {"file://", open_local},
    {"s3://", m2d_store_s3_new},
    {"s3a://", m2d_store_s3_new},
    {"gs://", m2d_store_gcs_new},
    {"az://", m2d_store_azure_new},
    {"abfss://", m2d_store_azure_new},
    {"abfs://", m2d_store_azure_new},
    {"wasbs://", m2d_store_azure_new},
    {"wasb://", m2d_store_azure_new},
};
#define NREGISTRY (sizeof registry / sizeof registry[0])

bool m2d_store_is_remote(const char *url) {
  for (size_t i = 1; i < NREGISTRY; i++)
    if (strncmp(url, registry[i].scheme, strlen(registry[i].scheme)) == 0) return true;
  return false;
}

m2d_store_t *m2d_store_open_with(const char *url, const m2d_store_options_t *opts, m2d_error_t *err) {
  m2d_store_t *s = NULL;
  size_t i = 0;
  for (; i < NREGISTRY; i++)
    if (strncmp(url, registry[i].scheme, strlen(registry[i].scheme)) == 0) break;
  if (i < NREGISTRY) {
    s = registry[i].open(url, opts, err);
  } else if (strstr(url, "://")) {
    return m2d_error_set(err, M2D_ERR_USAGE, 0,
                         "%s: unknown table location; use a local path, file://PATH, s3://BUCKET/PREFIX, "
                         "gs://BUCKET/PREFIX or az://CONTAINER/PREFIX",
                         url),
           NULL;
  } else {
    s = open_local(url, opts, err);
  }
  const char *fault = getenv("MONGO2DELTA_FAULT");
  return s && fault && *fault ? m2d_store_fault_new(s, fault, err) : s;
}

m2d_store_t *m2d_store_open(const char *url, m2d_error_t *err) {
  return m2d_store_open_with(url, &m2d_store_default_options, err);
}

/* A URL split for comparing locations: the scheme with s3a:// read as s3:// (Hadoop's name for
 * the same) and the Azure ones as az://, the authority (an Azure container without its
 * "@account.host", the account apart) and the path after it ("" or "/..."). */
typedef struct {
  char scheme[16];
  char authority[512];
  char account[128];
  const char *path;
} url_parts_t;

static bool split_url(const char *u, url_parts_t *p) {
  const char *sep = strstr(u, "://");
  if (!sep || sep - u >= (long)sizeof p->scheme) return false;
  snprintf(p->scheme, sizeof p->scheme, "%.*s", (int)(sep - u), u);
  const char *a = sep + 3;
  p->path = a + strcspn(a, "/");
  snprintf(p->authority, sizeof p->authority, "%.*s", (int)(p->path - a), a);
  p->account[0] = '\0';
  if (strcmp(p->scheme, "s3a") == 0) snprintf(p->scheme, sizeof p->scheme, "s3");
  static const char *const azure[] = {"az", "abfss", "abfs", "wasbs", "wasb"};
  for (size_t i = 0; i < sizeof azure / sizeof azure[0]; i++) {
    if (strcmp(p->scheme, azure[i]) != 0) continue;
    snprintf(p->scheme, sizeof p->scheme, "az");
    char *at = strchr(p->authority, '@');
    if (at) {
      *at = '\0';
      snprintf(p->account, sizeof p->account, "%.*s", (int)strcspn(at + 1, "."), at + 1);
    }
  }
  return true;
}

const char *m2d_store_relative_key(const m2d_store_t *s, const char *url) {
  url_parts_t a, b;
  if (!split_url(s->root, &a) || !split_url(url, &b) || strcmp(a.scheme, b.scheme) != 0 ||
      strcmp(a.authority, b.authority) != 0 || (a.account[0] && b.account[0] && strcmp(a.account, b.account) != 0))
    return NULL;
  size_t n = strlen(a.path);
  while (n && a.path[n - 1] == '/') n--;
  if (strncmp(a.path, b.path, n) != 0 || b.path[n] != '/') return NULL;
  return b.path + n + 1;
}

static int cmp_names(const void *a, const void *b) {
  return strcmp(((const m2d_store_entry_t *)a)->name, ((const m2d_store_entry_t *)b)->name);
}

/* The walk for stores without list_all: folder by folder. */
static bool walk(m2d_store_t *s, const char *dir, const char *rel, const char *after, m2d_store_entry_t **out,
                 size_t *n, size_t *cap, m2d_error_t *err) {
  char path[4096];
  snprintf(path, sizeof path, "%s%s%s", dir, dir[0] && rel[0] ? "/" : "", rel);
  m2d_store_entry_t *e = NULL;
  size_t k = 0;
  if (!s->list(s, path, &e, &k, err)) return false;
  bool ok = true;
  for (size_t i = 0; ok && i < k; i++) {
    char name[4096];
    snprintf(name, sizeof name, "%s%s%s", rel, rel[0] ? "/" : "", e[i].name);
    if (e[i].is_dir) {
      /* a folder whose keys ("name/...") all sort before start_after is skipped */
      char pre[4100];
      snprintf(pre, sizeof pre, "%s/", name);
      if (after && strcmp(pre, after) < 0 && strncmp(after, pre, strlen(pre)) != 0) continue;
      ok = walk(s, dir, name, after, out, n, cap, err);
      continue;
    }
    if (after && strcmp(name, after) <= 0) continue;
    if (*n == *cap) {
      size_t c = *cap ? *cap * 2 : 64;
      m2d_store_entry_t *p = realloc(*out, c * sizeof *p);
      if (!p) {
        ok = m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory listing %s", s->root);
        break;
      }
      *out = p;
      *cap = c;
    }
    (*out)[*n] = e[i];
    (*out)[*n].name = strdup(name);
    if (!(*out)[*n].name) ok = m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory listing %s", s->root);
    else (*n)++;
  }
  m2d_store_entries_free(e, k);
  return ok;
}

bool m2d_store_list_names(m2d_store_t *s, const char *dir, m2d_store_entry_t **out, size_t *n, m2d_error_t *err) {
  return (s->list_names ? s->list_names : s->list)(s, dir, out, n, err);
}

bool m2d_store_list_all(m2d_store_t *s, const char *dir, const char *start_after, m2d_store_entry_t **out, size_t *n,
                        m2d_error_t *err) {
  *out = NULL;
  *n = 0;
  if (start_after && !*start_after) start_after = NULL;
  if (s->list_all) return s->list_all(s, dir, start_after, out, n, err);
  size_t cap = 0;
  if (!walk(s, dir, "", start_after, out, n, &cap, err)) {
    m2d_store_entries_free(*out, *n);
    *out = NULL;
    *n = 0;
    return false;
  }
  if (*n) qsort(*out, *n, sizeof **out, cmp_names);
  return true;
}

bool m2d_store_abort_uploads(m2d_store_t *s, int64_t before_ms, int *n, m2d_error_t *err) {
  *n = 0;
  return !s->abort_uploads || s->abort_uploads(s, before_ms, n, err);
}

bool m2d_store_abort_orphan_uploads(const char *url, m2d_error_t *err) {
  if (!m2d_store_is_remote(url)) return true;
  m2d_store_t *s = m2d_store_open(url, err);
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  int n = 0;
  bool ok = s && m2d_store_abort_uploads(s, (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000, &n, err);
  if (ok && n) m2d_info("%s: %d unfinished upload(s) of an earlier run aborted", url, n);
  m2d_store_destroy(s);
  return ok;
}

void m2d_store_destroy(m2d_store_t *s) {
  if (s) s->destroy(s);
}

void m2d_store_entries_free(m2d_store_entry_t *e, size_t n) {
  for (size_t i = 0; i < n; i++) free(e[i].name);
  free(e);
}
