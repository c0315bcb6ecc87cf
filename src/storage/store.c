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

/* Scheme -> constructor. Adding a store is one file and one row here. */
static const struct {
  const char *scheme; /* with "://" */
  m2d_store_t *(*open)(const char *url, const m2d_store_options_t *opts, m2d_error_t *err);
} registry[] = {
    {"file://", open_local},
    {"s3://", m2d_store_s3_new},
    {"s3a://", m2d_store_s3_new},
    {"gs://", m2d_store_gcs_new},
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
                         "%s: unknown table location; use a local path, file://PATH, s3://BUCKET/PREFIX or "
                         "gs://BUCKET/PREFIX",
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

/* The scheme-less part of a URL, with s3a:// read as s3:// (Hadoop's name for the same). */
static const char *after_scheme(const char *u, char *scheme, size_t n) {
  const char *sep = strstr(u, "://");
  if (!sep) return NULL;
  snprintf(scheme, n, "%.*s", (int)(sep - u), u);
  if (strcmp(scheme, "s3a") == 0) snprintf(scheme, n, "s3");
  return sep + 3;
}

const char *m2d_store_relative_key(const m2d_store_t *s, const char *url) {
  char sa[16], sb[16];
  const char *a = after_scheme(s->root, sa, sizeof sa), *b = after_scheme(url, sb, sizeof sb);
  if (!a || !b || strcmp(sa, sb) != 0) return NULL;
  size_t n = strlen(a);
  if (strncmp(a, b, n) != 0 || b[n] != '/') return NULL;
  return b + n + 1;
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
