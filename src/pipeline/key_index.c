#include "pipeline/key_index.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Open addressing with linear probing; deletion shifts the following entries back, so there
 * are no tombstones. Key bytes live in one arena, compacted when half of it is garbage. */
typedef struct {
  uint64_t hash;   /* 0: empty slot */
  uint64_t off;    /* key bytes in the arena */
  uint32_t len;
  int32_t file;
  uint64_t row;
} slot_t;

struct m2d_key_index {
  slot_t *slots;
  size_t cap, count; /* cap: a power of two */
  uint8_t *arena;
  size_t arena_len, arena_cap, garbage;
  char **paths;
  int32_t npaths;
  json_t *path_ids; /* path -> number */
};

static uint64_t hash_of(const uint8_t *p, size_t n) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ull;
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  return h ? h : 1;
}

bool m2d_key_index_key(const bson_iter_t *id, m2d_buf_t *out, m2d_error_t *err) {
  m2d_buf_reset(out);
  bson_type_t t = bson_iter_type(id);
  int64_t i64;
  bool integral = false;
  if (t == BSON_TYPE_INT32 || t == BSON_TYPE_INT64) {
    i64 = bson_iter_as_int64(id);
    integral = true;
  } else if (t == BSON_TYPE_DOUBLE) {
    double d = bson_iter_double(id);
    if (isfinite(d) && d == floor(d) && d >= -9.2e18 && d <= 9.2e18) {
      i64 = (int64_t)d;
      integral = true;
    }
  }
  if (integral) return m2d_buf_append_byte(out, 'i', err) && m2d_buf_append(out, &i64, 8, err);
  if (t == BSON_TYPE_UTF8) {
    uint32_t n;
    const char *s = bson_iter_utf8(id, &n);
    return m2d_buf_append_byte(out, 's', err) && m2d_buf_append(out, s, n, err);
  }
  if (t == BSON_TYPE_OID) return m2d_buf_append_byte(out, 'o', err) && m2d_buf_append(out, bson_iter_oid(id), 12, err);
  /* any other type: its BSON element without the name */
  bson_t one = BSON_INITIALIZER;
  bool ok = bson_append_iter(&one, "", 0, id);
  ok = ok && m2d_buf_append(out, bson_get_data(&one) + 4, one.len - 5, err);
  bson_destroy(&one);
  return ok;
}

bool m2d_key_index_doc_key(const bson_t *doc, m2d_buf_t *out, m2d_error_t *err) {
  bson_iter_t it;
  return doc && bson_iter_init_find(&it, doc, "_id") && m2d_key_index_key(&it, out, err);
}

m2d_key_index_t *m2d_key_index_new(void) {
  m2d_key_index_t *x = calloc(1, sizeof *x);
  if (!x) return NULL;
  x->cap = 1024;
  x->slots = calloc(x->cap, sizeof *x->slots);
  x->path_ids = json_object();
  if (!x->slots || !x->path_ids) {
    m2d_key_index_free(x);
    return NULL;
  }
  return x;
}

void m2d_key_index_free(m2d_key_index_t *x) {
  if (!x) return;
  free(x->slots);
  free(x->arena);
  for (int32_t i = 0; i < x->npaths; i++) free(x->paths[i]);
  free(x->paths);
  json_decref(x->path_ids);
  free(x);
}

int32_t m2d_key_index_file(m2d_key_index_t *x, const char *path) {
  json_t *id = json_object_get(x->path_ids, path);
  if (id) return (int32_t)json_integer_value(id);
  char **p = realloc(x->paths, (size_t)(x->npaths + 1) * sizeof *p);
  if (!p) return -1;
  x->paths = p;
  if (!(p[x->npaths] = strdup(path))) return -1;
  json_object_set_new(x->path_ids, path, json_integer(x->npaths));
  return x->npaths++;
}

const char *m2d_key_index_file_path(const m2d_key_index_t *x, int32_t file) {
  return file >= 0 && file < x->npaths ? x->paths[file] : NULL;
}

static size_t find(const m2d_key_index_t *x, const uint8_t *k, size_t n, uint64_t h, bool *found) {
  size_t mask = x->cap - 1;
  for (size_t i = h & mask;; i = (i + 1) & mask) {
    const slot_t *s = &x->slots[i];
    if (!s->hash) {
      *found = false;
      return i;
    }
    if (s->hash == h && s->len == n && memcmp(x->arena + s->off, k, n) == 0) {
      *found = true;
      return i;
    }
  }
}

static bool grow(m2d_key_index_t *x) {
  size_t cap = x->cap * 2;
  slot_t *ns = calloc(cap, sizeof *ns);
  if (!ns) return false;
  for (size_t i = 0; i < x->cap; i++) {
    slot_t *s = &x->slots[i];
    if (!s->hash) continue;
    size_t j = s->hash & (cap - 1);
    while (ns[j].hash) j = (j + 1) & (cap - 1);
    ns[j] = *s;
  }
  free(x->slots);
  x->slots = ns;
  x->cap = cap;
  return true;
}

/* Copies the live keys into a fresh arena. */
static bool compact(m2d_key_index_t *x) {
  size_t need = x->arena_len - x->garbage;
  uint8_t *a = malloc(need ? need : 1);
  if (!a) return false;
  size_t at = 0;
  for (size_t i = 0; i < x->cap; i++) {
    slot_t *s = &x->slots[i];
    if (!s->hash) continue;
    memcpy(a + at, x->arena + s->off, s->len);
    s->off = at;
    at += s->len;
  }
  free(x->arena);
  x->arena = a;
  x->arena_len = x->arena_cap = at;
  x->garbage = 0;
  return true;
}

bool m2d_key_index_put(m2d_key_index_t *x, const m2d_buf_t *key, int32_t file, uint64_t row) {
  uint64_t h = hash_of(key->data, key->len);
  bool found;
  size_t i = find(x, key->data, key->len, h, &found);
  if (found) {
    x->slots[i].file = file;
    x->slots[i].row = row;
    return true;
  }
  if ((x->count + 1) * 10 > x->cap * 7) {
    if (!grow(x)) return false;
    i = find(x, key->data, key->len, h, &found);
  }
  if (x->arena_len + key->len > x->arena_cap) {
    size_t cap = x->arena_cap ? x->arena_cap * 2 : 65536;
    while (cap < x->arena_len + key->len) cap *= 2;
    uint8_t *a = realloc(x->arena, cap);
    if (!a) return false;
    x->arena = a;
    x->arena_cap = cap;
  }
  if (key->len) memcpy(x->arena + x->arena_len, key->data, key->len);
  x->slots[i] = (slot_t){.hash = h, .off = x->arena_len, .len = (uint32_t)key->len, .file = file, .row = row};
  x->arena_len += key->len;
  x->count++;
  return true;
}

bool m2d_key_index_get(const m2d_key_index_t *x, const m2d_buf_t *key, int32_t *file, uint64_t *row) {
  bool found;
  size_t i = find(x, key->data, key->len, hash_of(key->data, key->len), &found);
  if (found) {
    *file = x->slots[i].file;
    *row = x->slots[i].row;
  }
  return found;
}

bool m2d_key_index_remove(m2d_key_index_t *x, const m2d_buf_t *key) {
  bool found;
  size_t i = find(x, key->data, key->len, hash_of(key->data, key->len), &found);
  if (!found) return false;
  x->garbage += x->slots[i].len;
  size_t mask = x->cap - 1;
  /* backward shift: move up every following entry that may sit in the freed slot */
  for (size_t j = (i + 1) & mask;; j = (j + 1) & mask) {
    slot_t *s = &x->slots[j];
    if (!s->hash) break;
    size_t home = s->hash & mask;
    /* s may move to i when i lies cyclically in [home, j) */
    bool movable = i <= j ? (home <= i || home > j) : (home <= i && home > j);
    if (movable) {
      x->slots[i] = *s;
      i = j;
    }
  }
  x->slots[i].hash = 0;
  x->count--;
  if (x->garbage > (size_t)1 << 20 && x->garbage * 2 > x->arena_len) compact(x);
  return true;
}

size_t m2d_key_index_count(const m2d_key_index_t *x) { return x->count; }
