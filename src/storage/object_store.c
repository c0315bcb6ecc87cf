/* What every object store does the same way (see object_store.h). */
#include "storage/object_store.h"

#include "core/log.h"
#include "storage/http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/rand.h>

#define READAHEAD (4u << 20)   /* one ranged GET fetches at least this much */
#define TAIL_WINDOW (1u << 20) /* a read near the end fetches the last MiB (Parquet's footer) */

/* --- put-if-absent ------------------------------------------------------------------------- */

void m2d_objstore_commits_init(m2d_objstore_commits_t *c, const m2d_objstore_cond_t *cond) {
  memset(c, 0, sizeof *c);
  c->cond = cond;
  c->endpoint = "";
  pthread_mutex_init(&c->lock, NULL);
}

void m2d_objstore_commits_destroy(m2d_objstore_commits_t *c) { pthread_mutex_destroy(&c->lock); }

/* Whether the server honours the condition: the same hidden key written twice must fail the
 * second time. Once per store; a server that ignores it would let two writers overwrite each
 * other's commits. */
static bool probe_conditions(m2d_store_t *s, m2d_objstore_commits_t *c, m2d_error_t *err) {
  pthread_mutex_lock(&c->lock);
  bool ok = true;
  if (c->probed == 0) {
    unsigned char rnd[8];
    RAND_bytes(rnd, sizeof rnd);
    char key[64];
    snprintf(key, sizeof key, ".mongo2delta-probe-%02x%02x%02x%02x%02x%02x%02x%02x", rnd[0], rnd[1], rnd[2], rnd[3],
             rnd[4], rnd[5], rnd[6], rnd[7]);
    bool exists = false;
    ok = c->cond->put_conditional(s, key, "1", 1, &exists, NULL, err);
    if (ok) {
      bool ok2 = c->cond->put_conditional(s, key, "2", 1, &exists, NULL, err);
      if (!ok2 && exists) {
        c->probed = 1;
        m2d_error_clear(err);
      } else if (ok2) {
        if (c->unsafe_single_writer) {
          c->probed = -1;
          m2d_warn("%s: the server ignores conditional writes (%s); going on because of "
                   "--unsafe-single-writer: a second writer on this table could overwrite commits",
                   c->where, c->cond->condition);
        } else {
          ok = m2d_error_set(err, M2D_ERR_USAGE, 0,
                             "%s at %s ignores conditional writes (%s), so concurrent writers could overwrite each "
                             "other's commits. Use a server that honours them (%s), or rerun with "
                             "--unsafe-single-writer if this table never has more than one writer",
                             c->where, c->endpoint, c->cond->overwrote, c->cond->servers);
        }
      } else {
        ok = false;
      }
      m2d_error_t ignore = {0};
      s->remove(s, key, &ignore);
    }
  }
  pthread_mutex_unlock(&c->lock);
  return ok;
}

bool m2d_objstore_put_if_absent(m2d_store_t *s, m2d_objstore_commits_t *c, const char *key, const void *data,
                                size_t len, bool *exists, m2d_error_t *err) {
  *exists = false;
  if (c->probed == 0 && !probe_conditions(s, c, err)) return false;
  bool lost = false;
  if (c->cond->put_conditional(s, key, data, len, exists, &lost, err)) return true;
  if (*exists && lost) {
    /* an attempt got no answer and the retry found the key: whose is it? Ours if the bytes
     * are ours (a commit holds a timestamp and a random id, no other writer's is equal). */
    m2d_buf_t back;
    m2d_buf_init(&back, len + 1);
    bool missing = false;
    m2d_error_t e2 = {0};
    bool got = s->get(s, key, &back, &missing, &e2);
    bool ours = got && back.len == len && memcmp(back.data, data, len) == 0;
    m2d_buf_free(&back);
    if (ours) {
      m2d_debug("%s: %s was written by the attempt whose answer was lost", c->where, key);
      *exists = false;
      m2d_error_clear(err);
      return true;
    }
  }
  return false;
}

/* --- sources ------------------------------------------------------------------------------- */

static bool source_read(m2d_source_t *sr, uint64_t offset, size_t len, void *out, m2d_error_t *err) {
  m2d_objstore_source_t *src = (m2d_objstore_source_t *)sr;
  if (len == 0) return true;
  if (offset + len > sr->size)
    return m2d_error_set(err, M2D_ERR_FORMAT, 0, "%s: read of %zu bytes at %llu is past its end (%llu bytes)",
                         sr->name, len, (unsigned long long)offset, (unsigned long long)sr->size);
  if (offset >= src->window_off && offset + len <= src->window_off + src->window.len) {
    memcpy(out, src->window.data + (offset - src->window_off), len);
    return true;
  }
  /* a read larger than the window (a whole column chunk) becomes the window: one copy out of
   * it, and the page headers read next inside the chunk need no request of their own (the
   * caller's memory is never handed to the HTTP layer, whose buffers may grow) */
  uint64_t size = sr->size;
  uint64_t start = offset, want = READAHEAD;
  if (size - offset <= TAIL_WINDOW) start = size > TAIL_WINDOW ? size - TAIL_WINDOW : 0, want = size - start;
  if (start + want > size) want = size - start;
  if (want < len) want = len;
  m2d_buf_reset(&src->window);
  src->window.max = (size_t)want;
  if (!src->fetch(src, start, want, &src->window, err)) {
    m2d_buf_reset(&src->window);
    return false;
  }
  src->window_off = start;
  memcpy(out, src->window.data + (offset - start), len);
  return true;
}

static void source_destroy(m2d_source_t *sr) {
  m2d_objstore_source_t *src = (m2d_objstore_source_t *)sr;
  m2d_buf_free(&src->window);
  free(src->key);
  free(src->extra);
  free(src);
}

m2d_objstore_source_t *m2d_objstore_source_new(m2d_store_t *s, const char *key, uint64_t size,
                                               m2d_objstore_fetch_fn fetch, m2d_error_t *err) {
  m2d_objstore_source_t *src = calloc(1, sizeof *src);
  if (!src || !(src->key = strdup(key))) {
    free(src);
    return m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory"), NULL;
  }
  src->store = s;
  src->fetch = fetch;
  m2d_buf_init(&src->window, READAHEAD);
  src->base.size = size;
  src->base.read_at = source_read;
  src->base.destroy = source_destroy;
  snprintf(src->base.name, sizeof src->base.name, "%s/%s", s->root, key);
  return src;
}

/* --- listings ------------------------------------------------------------------------------ */

void m2d_objstore_list_prefix(const char *prefix, const char *dir, char *out, size_t n) {
  snprintf(out, n, "%s%s%s%s", prefix, prefix[0] && dir[0] ? "/" : "", dir, (prefix[0] || dir[0]) ? "/" : "");
}

bool m2d_objstore_push_entry(m2d_store_entry_t **out, size_t *n, size_t *cap, const char *name, uint64_t size,
                             int64_t mtime, bool is_dir, m2d_error_t *err) {
  if (*n == *cap) {
    size_t c = *cap ? *cap * 2 : 64;
    m2d_store_entry_t *p = realloc(*out, c * sizeof *p);
    if (!p) return m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory listing");
    *out = p;
    *cap = c;
  }
  char *dup = strdup(name);
  if (!dup) return m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory listing");
  (*out)[*n] = (m2d_store_entry_t){dup, size, mtime, is_dir};
  (*n)++;
  return true;
}

/* By name; an object before a folder of the same name (both can exist: keys "a" and "a/b"), so
 * the order does not depend on qsort's. */
static int cmp_entries(const void *a, const void *b) {
  const m2d_store_entry_t *x = a, *y = b;
  int c = strcmp(x->name, y->name);
  return c ? c : (int)x->is_dir - (int)y->is_dir;
}

bool m2d_objstore_entries_done(bool ok, m2d_store_entry_t **out, size_t *n) {
  if (!ok) {
    m2d_store_entries_free(*out, *n);
    *out = NULL;
    *n = 0;
    return false;
  }
  if (*n) qsort(*out, *n, sizeof **out, cmp_entries);
  return true;
}

/* --- small helpers --------------------------------------------------------------------------- */

bool m2d_objstore_xml_text(const char *p, const char *end, const char *tag, char *out, size_t outsz) {
  size_t tl = strlen(tag);
  const char *a = p;
  for (;;) {
    a = memmem(a, (size_t)(end - a), "<", 1);
    if (!a || (size_t)(end - a) < tl + 2) return false;
    if (strncmp(a + 1, tag, tl) == 0 && (a[tl + 1] == '>' || a[tl + 1] == ' ' || a[tl + 1] == '/')) break;
    a++;
  }
  const char *gt = memchr(a, '>', (size_t)(end - a));
  if (!gt) return false;
  if (gt[-1] == '/') { /* <Tag /> */
    out[0] = '\0';
    return true;
  }
  bool encoded = memmem(a, (size_t)(gt - a), "Encoded=\"true\"", 14) != NULL;
  a = gt + 1;
  char close[80];
  snprintf(close, sizeof close, "</%s>", tag);
  const char *b = memmem(a, (size_t)(end - a), close, strlen(close));
  if (!b) return false;
  size_t o = 0;
  for (const char *q = a; q < b && o + 1 < outsz;) {
    if (*q == '&') {
      const char *semi = memchr(q, ';', (size_t)(b - q));
      if (semi) {
        size_t n = (size_t)(semi - q - 1);
        char c = 0;
        if (n == 3 && strncmp(q + 1, "amp", 3) == 0) c = '&';
        else if (n == 2 && strncmp(q + 1, "lt", 2) == 0) c = '<';
        else if (n == 2 && strncmp(q + 1, "gt", 2) == 0) c = '>';
        else if (n == 4 && strncmp(q + 1, "quot", 4) == 0) c = '"';
        else if (n == 4 && strncmp(q + 1, "apos", 4) == 0) c = '\'';
        else if (n >= 2 && q[1] == '#') {
          long v = q[2] == 'x' ? strtol(q + 3, NULL, 16) : strtol(q + 2, NULL, 10);
          if (v > 0 && v < 128) c = (char)v;
        }
        if (c) {
          out[o++] = c;
          q = semi + 1;
          continue;
        }
      }
    }
    out[o++] = *q++;
  }
  out[o] = '\0';
  if (encoded) {
    m2d_buf_t d;
    m2d_buf_init(&d, outsz);
    m2d_http_decode(out, o, &d, NULL);
    snprintf(out, outsz, "%.*s", (int)d.len, d.data ? (const char *)d.data : "");
    m2d_buf_free(&d);
  }
  return true;
}

int64_t m2d_objstore_parse_rfc3339_ms(const char *t) {
  struct tm tm = {0};
  if (sscanf(t, "%d-%d-%dT%d:%d:%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec) != 6)
    return 0;
  int ms = 0;
  const char *dot = strchr(t, '.');
  if (dot) /* the first three digits of the fraction, however many there are */
    for (int i = 1, scale = 100; i <= 3 && dot[i] >= '0' && dot[i] <= '9'; i++, scale /= 10)
      ms += (dot[i] - '0') * scale;
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return (int64_t)timegm(&tm) * 1000 + ms;
}

bool m2d_objstore_is_loopback(const char *url) {
  const char *h = strstr(url, "://");
  h = h ? h + 3 : url;
  return strncmp(h, "127.", 4) == 0 || strncmp(h, "localhost", 9) == 0 || strncmp(h, "[::1]", 5) == 0;
}

bool m2d_objstore_check_endpoint(const char *var, const char *endpoint, const char *form, const char *sent,
                                 m2d_error_t *err) {
  if (strncmp(endpoint, "http://", 7) != 0 && strncmp(endpoint, "https://", 8) != 0)
    return m2d_error_set(err, M2D_ERR_USAGE, 0, "%s %s: write it as %s", var, endpoint, form);
  if (strncmp(endpoint, "http://", 7) == 0 && !m2d_objstore_is_loopback(endpoint))
    return m2d_error_set(err, M2D_ERR_USAGE, 0,
                         "%s %s: plain HTTP would send %s unencrypted; it is accepted for loopback test servers "
                         "only (use https://)",
                         var, endpoint, sent);
  return true;
}

void m2d_objstore_describe(const m2d_store_t *s, const char *op, const char *key, char *out, size_t n) {
  snprintf(out, n, "%s %s%s%s", op, s->root, key && key[0] ? "/" : "", key ? key : "");
}
