#include "pipeline/key_index.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Open addressing with linear probing over 16-byte slots; deletion shifts the following
 * entries back, so there are no tombstones. A slot holds the key itself when it is an integer
 * ('i' + 8 bytes, the common _id), otherwise the offset of the key's bytes in one arena; either
 * way a lookup compares whole keys, so two keys whose hashes collide never share a slot. The
 * home slot is the hash mapped onto any capacity (multiply-shift), so the table grows by half
 * and a reserve() sizes it to the count: 16 bytes / load (0.53 to 0.8) = 20 to 30 bytes a
 * document for integer keys, plus the arena's bytes for the others. */
typedef struct {
  uint64_t k;  /* the integer key, or the key's offset in the arena */
  uint64_t fr; /* ARENA | (file + 1) << ROW_BITS | row; 0: empty slot */
} slot_t;

#define ROW_BITS 40
#define FILE_BITS 23
#define ARENA ((uint64_t)1 << 63)
#define ROW_MASK (((uint64_t)1 << ROW_BITS) - 1)
#define FILE_OF(fr) ((int32_t)((((fr) & ~ARENA) >> ROW_BITS) - 1))

struct m2d_key_index {
  slot_t *slots;
  size_t cap, count;
  uint8_t *arena; /* per key: its length (one byte, or 0xff and four bytes), then its bytes */
  size_t arena_len, arena_cap, garbage;
  char **paths;
  int32_t npaths;
  json_t *path_ids; /* path -> number */
};

static uint64_t mix64(uint64_t h) {
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ull;
  h ^= h >> 33;
  return h;
}

static uint64_t hash_bytes(const uint8_t *p, size_t n) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ull;
  return mix64(h);
}

static bool is_int_key(const uint8_t *k, size_t n) { return n == 9 && k[0] == 'i'; }

static uint64_t int_of(const uint8_t *k) {
  uint64_t v;
  memcpy(&v, k + 1, 8);
  return v;
}

static size_t home_of(uint64_t h, size_t cap) { return (size_t)(((unsigned __int128)h * cap) >> 64); }

/* The key bytes of an arena entry at off. */
static const uint8_t *arena_key(const m2d_key_index_t *x, uint64_t off, size_t *n) {
  const uint8_t *p = x->arena + off;
  if (p[0] != 0xff) {
    *n = p[0];
    return p + 1;
  }
  uint32_t l;
  memcpy(&l, p + 1, 4);
  *n = l;
  return p + 5;
}

static size_t arena_entry_len(size_t n) { return n + (n < 0xff ? 1 : 5); }

static uint64_t slot_hash(const m2d_key_index_t *x, const slot_t *s) {
  if (!(s->fr & ARENA)) return mix64(s->k);
  size_t n;
  const uint8_t *k = arena_key(x, s->k, &n);
  return hash_bytes(k, n);
}

static uint64_t key_hash(const uint8_t *k, size_t n) { return is_int_key(k, n) ? mix64(int_of(k)) : hash_bytes(k, n); }

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
  if (x->npaths >= ((int32_t)1 << FILE_BITS) - 2) return -1;
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
  bool inl = is_int_key(k, n);
  uint64_t v = inl ? int_of(k) : 0;
  for (size_t i = home_of(h, x->cap);; i = i + 1 == x->cap ? 0 : i + 1) {
    const slot_t *s = &x->slots[i];
    if (!s->fr) {
      *found = false;
      return i;
    }
    bool match;
    if (inl) {
      match = !(s->fr & ARENA) && s->k == v;
    } else if (s->fr & ARENA) {
      size_t sn;
      const uint8_t *sk = arena_key(x, s->k, &sn);
      match = sn == n && memcmp(sk, k, n) == 0;
    } else {
      match = false;
    }
    if (match) {
      *found = true;
      return i;
    }
  }
}

/* Moves every entry into a table of cap slots. */
static bool resize(m2d_key_index_t *x, size_t cap) {
  slot_t *ns = calloc(cap, sizeof *ns);
  if (!ns) return false;
  for (size_t i = 0; i < x->cap; i++) {
    slot_t *s = &x->slots[i];
    if (!s->fr) continue;
    size_t j = home_of(slot_hash(x, s), cap);
    while (ns[j].fr) j = j + 1 == cap ? 0 : j + 1;
    ns[j] = *s;
  }
  free(x->slots);
  x->slots = ns;
  x->cap = cap;
  return true;
}

static size_t cap_for(size_t n) { return n + n / 4 + 16; } /* a load of 0.8 */

bool m2d_key_index_reserve(m2d_key_index_t *x, size_t n) {
  size_t cap = cap_for(n);
  return cap <= x->cap || resize(x, cap);
}

/* Copies the live keys into a fresh arena. */
static bool compact(m2d_key_index_t *x) {
  size_t need = x->arena_len - x->garbage;
  uint8_t *a = malloc(need ? need : 1);
  if (!a) return false;
  size_t at = 0;
  for (size_t i = 0; i < x->cap; i++) {
    slot_t *s = &x->slots[i];
    if (!(s->fr & ARENA)) continue;
    size_t n;
    arena_key(x, s->k, &n);
    size_t e = arena_entry_len(n);
    memcpy(a + at, x->arena + s->k, e);
    s->k = at;
    at += e;
  }
  free(x->arena);
  x->arena = a;
  x->arena_len = x->arena_cap = at;
  x->garbage = 0;
  return true;
}

bool m2d_key_index_put(m2d_key_index_t *x, const m2d_buf_t *key, int32_t file, uint64_t row) {
  if (file < 0 || file >= ((int32_t)1 << FILE_BITS) - 2 || row > ROW_MASK) return false;
  uint64_t fr = (uint64_t)(file + 1) << ROW_BITS | row;
  uint64_t h = key_hash(key->data, key->len);
  bool found;
  size_t i = find(x, key->data, key->len, h, &found);
  if (found) {
    x->slots[i].fr = (x->slots[i].fr & ARENA) | fr;
    return true;
  }
  if ((x->count + 1) * 5 > x->cap * 4) {
    if (!resize(x, x->cap + x->cap / 2)) return false;
    i = find(x, key->data, key->len, h, &found);
  }
  if (is_int_key(key->data, key->len)) {
    x->slots[i] = (slot_t){.k = int_of(key->data), .fr = fr};
    x->count++;
    return true;
  }
  size_t e = arena_entry_len(key->len);
  if (key->len > UINT32_MAX) return false;
  if (x->arena_len + e > x->arena_cap) {
    size_t cap = x->arena_cap ? x->arena_cap * 2 : 65536;
    while (cap < x->arena_len + e) cap *= 2;
    uint8_t *a = realloc(x->arena, cap);
    if (!a) return false;
    x->arena = a;
    x->arena_cap = cap;
  }
  uint8_t *p = x->arena + x->arena_len;
  if (key->len < 0xff) {
    *p++ = (uint8_t)key->len;
  } else {
    uint32_t l = (uint32_t)key->len;
    *p++ = 0xff;
    memcpy(p, &l, 4);
    p += 4;
  }
  if (key->len) memcpy(p, key->data, key->len);
  x->slots[i] = (slot_t){.k = x->arena_len, .fr = ARENA | fr};
  x->arena_len += e;
  x->count++;
  return true;
}

bool m2d_key_index_get(const m2d_key_index_t *x, const m2d_buf_t *key, int32_t *file, uint64_t *row) {
  bool found;
  size_t i = find(x, key->data, key->len, key_hash(key->data, key->len), &found);
  if (found) {
    *file = FILE_OF(x->slots[i].fr);
    *row = x->slots[i].fr & ROW_MASK;
  }
  return found;
}

bool m2d_key_index_remove(m2d_key_index_t *x, const m2d_buf_t *key) {
  bool found;
  size_t i = find(x, key->data, key->len, key_hash(key->data, key->len), &found);
  if (!found) return false;
  if (x->slots[i].fr & ARENA) x->garbage += arena_entry_len(key->len);
  size_t cap = x->cap;
  /* backward shift: move up every following entry that may sit in the freed slot */
  for (size_t j = i + 1 == cap ? 0 : i + 1;; j = j + 1 == cap ? 0 : j + 1) {
    slot_t *s = &x->slots[j];
    if (!s->fr) break;
    size_t home = home_of(slot_hash(x, s), cap);
    /* s may move to i when i lies cyclically in [home, j) */
    if ((j + cap - home) % cap >= (j + cap - i) % cap) {
      x->slots[i] = *s;
      i = j;
    }
  }
  x->slots[i] = (slot_t){0};
  x->count--;
  if (x->garbage > (size_t)1 << 20 && x->garbage * 2 > x->arena_len) compact(x);
  return true;
}

size_t m2d_key_index_count(const m2d_key_index_t *x) { return x->count; }

size_t m2d_key_index_memory(const m2d_key_index_t *x) {
  size_t b = sizeof *x + x->cap * sizeof(slot_t) + x->arena_cap + (size_t)x->npaths * (sizeof(char *) + 64);
  for (int32_t i = 0; i < x->npaths; i++) b += strlen(x->paths[i]) + 1;
  return b;
}

/* --- the cache file ----------------------------------------------------------------------
 * "M2DKIX01", then each as it is in memory (this machine's byte order, told by a 64-bit 1):
 * the byte-order mark, the table version, the table's description (stamp), the paths, cap,
 * count, the arena, the slots; last a checksum of everything before it. */

static const char MAGIC[8] = "M2DKIX01";

static uint64_t sum_update(uint64_t h, const void *data, size_t n) {
  const uint8_t *p = data;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    memcpy(&w, p + i, 8);
    h = (h ^ w) * 0x100000001b3ull;
    h ^= h >> 29;
  }
  for (; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ull;
  return h;
}

typedef struct {
  m2d_sink_t *sink;
  uint64_t sum;
  m2d_error_t *err;
} out_t;

static bool put(out_t *o, const void *p, size_t n) {
  o->sum = sum_update(o->sum, p, n);
  return !n || m2d_sink_write(o->sink, p, n, o->err);
}

static bool put_u64(out_t *o, uint64_t v) { return put(o, &v, 8); }

bool m2d_key_index_save(const m2d_key_index_t *x, m2d_sink_t *sink, int64_t version, const char *stamp, size_t stamp_len,
                        m2d_error_t *err) {
  out_t o = {.sink = sink, .sum = 1469598103934665603ull, .err = err};
  bool ok = put(&o, MAGIC, 8) && put_u64(&o, 1) && put_u64(&o, (uint64_t)version) && put_u64(&o, stamp_len) &&
            put(&o, stamp, stamp_len) && put_u64(&o, (uint64_t)x->npaths);
  for (int32_t i = 0; ok && i < x->npaths; i++) {
    size_t n = strlen(x->paths[i]);
    ok = put_u64(&o, n) && put(&o, x->paths[i], n);
  }
  ok = ok && put_u64(&o, x->cap) && put_u64(&o, x->count) && put_u64(&o, x->arena_len) && put(&o, x->arena, x->arena_len) &&
       put(&o, x->slots, x->cap * sizeof(slot_t));
  uint64_t sum = o.sum;
  return ok && m2d_sink_write(sink, &sum, 8, err);
}

typedef struct {
  m2d_source_t *src;
  uint64_t at, sum;
  m2d_error_t *err;
} in_t;

static bool get(in_t *in, void *p, size_t n) {
  if (n > in->src->size || in->at > in->src->size - n) return m2d_error_set(in->err, M2D_ERR_FORMAT, 0, "it is cut short");
  if (n && !m2d_source_read_at(in->src, in->at, n, p, in->err)) return false;
  in->at += n;
  in->sum = sum_update(in->sum, p, n);
  return true;
}

static bool get_u64(in_t *in, uint64_t *v) { return get(in, v, 8); }

/* A length read from the file, checked against what is left of it before anything is allocated. */
static bool get_len(in_t *in, uint64_t *n, uint64_t unit) {
  if (!get_u64(in, n)) return false;
  if (*n > (in->src->size - in->at) / unit) return m2d_error_set(in->err, M2D_ERR_FORMAT, 0, "a length is past its end");
  return true;
}

m2d_key_index_t *m2d_key_index_load(m2d_source_t *src, const char *stamp, size_t stamp_len, int64_t *version,
                                    m2d_error_t *err) {
  in_t in = {.src = src, .sum = 1469598103934665603ull, .err = err};
  char magic[8];
  uint64_t bom, v, n;
  if (!get(&in, magic, 8) || !get_u64(&in, &bom)) return NULL;
  if (memcmp(magic, MAGIC, 8) != 0 || bom != 1)
    return m2d_error_set(err, M2D_ERR_FORMAT, 0, "it is not a key index of this version of mongo2delta"), NULL;
  if (!get_u64(&in, &v) || !get_len(&in, &n, 1)) return NULL;
  *version = (int64_t)v;
  char *st = malloc(n ? n : 1);
  bool ok = st && get(&in, st, n);
  bool same = ok && n == stamp_len && memcmp(st, stamp, n) == 0;
  free(st);
  if (!ok) return NULL;
  if (!same)
    return m2d_error_set(err, M2D_ERR_FORMAT, 0,
                         "it was saved at table version %lld, and the table's files or deletion vectors have changed since",
                         (long long)v),
           NULL;
  m2d_key_index_t *x = calloc(1, sizeof *x);
  ok = x && (x->path_ids = json_object());
  uint64_t np = 0, cap = 0, count = 0, alen = 0;
  ok = ok && get_len(&in, &np, 8) && np < ((uint64_t)1 << FILE_BITS) - 2;
  if (ok && !(x->paths = calloc(np ? np : 1, sizeof *x->paths))) ok = false;
  for (uint64_t i = 0; ok && i < np; i++) {
    uint64_t l;
    ok = get_len(&in, &l, 1) && (x->paths[i] = malloc(l + 1)) && get(&in, x->paths[i], l);
    if (!ok) break;
    x->paths[i][l] = 0;
    x->npaths = (int32_t)i + 1;
    ok = json_object_set_new(x->path_ids, x->paths[i], json_integer((json_int_t)i)) == 0;
  }
  ok = ok && get_u64(&in, &cap) && get_u64(&in, &count) && cap >= 1 && count <= cap && get_len(&in, &alen, 1);
  if (ok) {
    x->cap = cap;
    x->count = count;
    x->arena_len = x->arena_cap = alen;
    ok = (x->arena = malloc(alen ? alen : 1)) && get(&in, x->arena, alen);
  }
  ok = ok && (cap <= (src->size - in.at) / sizeof(slot_t) || !m2d_error_set(err, M2D_ERR_FORMAT, 0, "it is cut short"));
  ok = ok && (x->slots = malloc(cap * sizeof(slot_t))) && get(&in, x->slots, cap * sizeof(slot_t));
  uint64_t want = in.sum, sum;
  ok = ok && get(&in, &sum, 8);
  if (ok && (sum != want || in.at != src->size)) ok = m2d_error_set(err, M2D_ERR_FORMAT, 0, "its checksum does not match");
  /* every slot within bounds, so that a file that passed the checksum by chance cannot point
   * outside the arena or the paths */
  size_t live = 0;
  for (size_t i = 0; ok && i < cap; i++) {
    const slot_t *s = &x->slots[i];
    if (!s->fr) continue;
    live++;
    int32_t f = FILE_OF(s->fr);
    if (f < 0 || f >= x->npaths) ok = false;
    if (ok && (s->fr & ARENA)) {
      size_t kn;
      ok = s->k < alen && (x->arena[s->k] != 0xff || s->k + 5 <= alen);
      if (ok) arena_key(x, s->k, &kn);
      ok = ok && s->k + arena_entry_len(kn) <= alen;
    }
    if (!ok) m2d_error_set(err, M2D_ERR_FORMAT, 0, "slot %zu is out of bounds", i);
  }
  if (ok && live != count) ok = m2d_error_set(err, M2D_ERR_FORMAT, 0, "it counts %zu keys but holds %zu", (size_t)count, live);
  if (ok && count == cap) ok = m2d_error_set(err, M2D_ERR_FORMAT, 0, "its table has no free slot");
  if (!ok && x && err && !err->message[0]) m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory reading it");
  if (!ok) {
    m2d_key_index_free(x);
    return NULL;
  }
  return x;
}
