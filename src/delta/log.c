#include "delta/log.h"

#include "delta/checkpoint_v2.h"

#include "core/log.h"
#include "core/text.h"
#include "parquet/json_rows.h"
#include "parquet/reader.h"

#include <assert.h>
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>

#define MAX_COMMIT ((size_t)512 << 20)
#define KEEP_COMMITS 10

void delta_path_decode(const char *in, char *out, size_t outsz) {
  size_t o = 0;
  for (const char *p = in; *p && o + 1 < outsz; p++) {
    if (*p == '%' && isxdigit((unsigned char)p[1]) && isxdigit((unsigned char)p[2])) {
      char hex[3] = {p[1], p[2], 0};
      out[o++] = (char)strtol(hex, NULL, 16);
      p += 2;
    } else {
      out[o++] = *p;
    }
  }
  out[o] = '\0';
}

json_t *delta_parse_actions(const char *name, const uint8_t *data, size_t len, m2d_error_t *err) {
  json_t *arr = json_array();
  size_t start = 0, line = 0;
  while (start < len) {
    size_t end = start;
    while (end < len && data[end] != '\n') end++;
    line++;
    size_t a = start, b = end;
    while (a < b && isspace(data[a])) a++;
    while (b > a && isspace(data[b - 1])) b--;
    if (a < b) {
      json_error_t je;
      json_t *obj = json_loadb((const char *)data + a, b - a, 0, &je);
      if (!obj || !json_is_object(obj)) {
        json_decref(obj);
        json_decref(arr);
        m2d_error_set(err, M2D_ERR_FORMAT, 0,
                      "%s: line %zu is not a valid action (%s); the log is corrupt: restore the file or "
                      "read an earlier version",
                      name, line, obj ? "not an object" : je.text);
        return NULL;
      }
      json_array_append_new(arr, obj);
    }
    start = end + 1;
  }
  return arr;
}

/* --- listing the log ---------------------------------------------------------------------- */

typedef struct {
  int64_t version;
  int parts; /* classic: 1; multi-part: n; 0 for JSON commits */
  int have;  /* parts present */
  char **names;
  bool is_v2; /* checkpoint.<uuid>.json|parquet */
} ckpt_t;

static bool parse_version(const char *name, int64_t *v, const char **rest) {
  uint64_t x = 0; /* 20 digits: what strtoll gives, saturated at INT64_MAX */
  for (int i = 0; i < 20; i++) {
    if (name[i] < '0' || name[i] > '9') return false;
    unsigned d = (unsigned)(name[i] - '0');
    x = x > (UINT64_MAX - d) / 10 ? UINT64_MAX : x * 10 + d;
  }
  *v = x > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)x;
  *rest = name + 20;
  return true;
}

/* --- compact files --------------------------------------------------------------------------
 * The adds' strings live in an arena freed with the snapshot (a removed add's bytes stay until
 * then); the live files are found by reconciliation key in an open-addressing table of indexes
 * into the vector of every add seen, sized from _last_checkpoint. */

struct delta_arena {
  struct delta_arena *next;
  size_t used, cap, mapped; /* mapped: the length of an mmap'd chunk, 0 when malloc'd */
  char data[];
};

#define ARENA_FIRST ((size_t)1 << 20)
#define ARENA_HUGE ((size_t)4 << 20)
#define ARENA_MAX ((size_t)64 << 20)
#define HUGE_PAGE ((size_t)2 << 20)

/* A chunk of at least want bytes. Chunks grow with the arena, so a small table stays small and
 * 100,000 adds take a few chunks; the large ones are asked to be backed by huge pages, since a
 * page fault per 4 KiB costs more than writing the page. */
static delta_arena_t *arena_chunk(size_t prev, size_t want) {
  size_t cap = prev ? 2 * prev : ARENA_FIRST;
  if (cap > ARENA_MAX) cap = ARENA_MAX;
  if (cap < want) cap = want;
  delta_arena_t *c;
  size_t mapped = 0;
  if (cap >= ARENA_HUGE) {
    mapped = (sizeof *c + cap + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE;
    void *p = mmap(NULL, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return NULL;
#ifdef MADV_HUGEPAGE
    madvise(p, mapped, MADV_HUGEPAGE); /* a hint: without it the chunk is ordinary pages */
#endif
    c = p;
    cap = mapped - sizeof *c;
  } else if (!(c = malloc(sizeof *c + cap))) {
    return NULL;
  }
  c->used = 0;
  c->cap = cap;
  c->mapped = mapped;
  return c;
}

static char *arena_strdup(delta_arena_t **a, const char *s, size_t len) {
  if (!*a || (*a)->cap - (*a)->used < len + 1) {
    delta_arena_t *c = arena_chunk(*a ? (*a)->cap : 0, len + 1);
    if (!c) return NULL;
    c->next = *a;
    *a = c;
  }
  char *p = (*a)->data + (*a)->used;
  memcpy(p, s, len);
  p[len] = '\0';
  (*a)->used += len + 1;
  return p;
}

static void arena_free(delta_arena_t *a) {
  while (a) {
    delta_arena_t *next = a->next;
    if (a->mapped) munmap(a, a->mapped);
    else free(a);
    a = next;
  }
}

#define SLOT_FREE 0u
#define SLOT_GONE UINT32_MAX

typedef struct {
  delta_file_t *v; /* every add applied, in order; removed ones flagged DELTA_FILE_DEAD */
  size_t n, cap;
  uint32_t *slots; /* index + 1 into v, SLOT_FREE or SLOT_GONE */
  size_t nslots, used; /* used: slots not free */
  bool oom;
} files_t;

static uint64_t hash_key(const char *k) {
  /* eight bytes at a time, multiplied and folded: paths share long prefixes */
  size_t n = strlen(k), i = 0;
  uint64_t h = 0x9e3779b97f4a7c15u ^ n, w;
  for (; i + 8 <= n; i += 8) {
    memcpy(&w, k + i, 8);
    h = (h ^ w) * 0xff51afd7ed558ccdu;
    h ^= h >> 32;
  }
  w = 0;
  memcpy(&w, k + i, n - i);
  h = (h ^ w) * 0xc4ceb9fe1a85ec53u;
  return h ^ (h >> 29);
}

static bool files_rehash(files_t *t, size_t want) {
  size_t n = 1024;
  while (n < 2 * want) n *= 2;
  uint32_t *slots = calloc(n, sizeof *slots);
  if (!slots) return false;
  size_t used = 0;
  for (size_t i = 0; i < t->nslots; i++) {
    uint32_t x = t->slots[i];
    if (x == SLOT_FREE || x == SLOT_GONE) continue;
    size_t j = hash_key(t->v[x - 1].key) & (n - 1);
    while (slots[j] != SLOT_FREE) j = (j + 1) & (n - 1);
    slots[j] = x;
    used++;
  }
  free(t->slots);
  t->slots = slots;
  t->nslots = n;
  t->used = used;
  return true;
}

/* The slot holding key, or the free slot where it would go (*found false). */
static size_t files_find(const files_t *t, const char *key, bool *found) {
  size_t mask = t->nslots - 1, j = hash_key(key) & mask, gone = SIZE_MAX;
  for (;;) {
    uint32_t x = t->slots[j];
    if (x == SLOT_FREE) {
      *found = false;
      return gone != SIZE_MAX ? gone : j;
    }
    if (x == SLOT_GONE) {
      if (gone == SIZE_MAX) gone = j;
    } else if (strcmp(t->v[x - 1].key, key) == 0) {
      *found = true;
      return j;
    }
    j = (j + 1) & mask;
  }
}

static void file_kill(delta_file_t *f) {
  json_decref(f->extra);
  f->extra = NULL;
  f->flags |= DELTA_FILE_DEAD;
}

/* Adds f (its extra taken) as live, replacing a live file of the same key. */
static void files_put(files_t *t, delta_file_t *f) {
  if (!t->oom && (t->used + 1) * 2 > t->nslots && !files_rehash(t, t->nslots ? t->nslots : 1)) t->oom = true;
  if (!t->oom && t->n == t->cap) {
    size_t cap = t->cap ? 2 * t->cap : 1024;
    delta_file_t *v = realloc(t->v, cap * sizeof *v);
    if (v) t->v = v, t->cap = cap;
    else t->oom = true;
  }
  if (t->oom) {
    json_decref(f->extra);
    return;
  }
  bool found;
  size_t j = files_find(t, f->key, &found);
  if (found) {
    file_kill(&t->v[t->slots[j] - 1]);
  } else if (t->slots[j] == SLOT_FREE) {
    t->used++;
  }
  t->v[t->n++] = *f;
  t->slots[j] = (uint32_t)t->n;
}

static void files_del(files_t *t, const char *key) {
  if (!t->nslots) return;
  bool found;
  size_t j = files_find(t, key, &found);
  if (!found) return;
  file_kill(&t->v[t->slots[j] - 1]);
  t->slots[j] = SLOT_GONE;
}

static void files_free(files_t *t) {
  for (size_t i = 0; i < t->n; i++) json_decref(t->v[i].extra);
  free(t->v);
  free(t->slots);
  memset(t, 0, sizeof *t);
}

json_t *delta_file_partition_values(const delta_file_t *f) {
  return json_object_get(f->extra, "partitionValues");
}

json_t *delta_file_dv(const delta_file_t *f) {
  json_t *dv = json_object_get(f->extra, "deletionVector");
  return json_is_object(dv) ? dv : NULL;
}

/* key_of(path, dv): what delta_file_key gives for an action with that path and deletion vector. */
static void key_of(const char *path, const json_t *dv, char *out, size_t n) {
  if (json_is_object(dv)) {
    snprintf(out, n, "%s\x1f%s%s@%" JSON_INTEGER_FORMAT, path ? path : "",
             json_string_value(json_object_get(dv, "storageType")) ?: "",
             json_string_value(json_object_get(dv, "pathOrInlineDv")) ?: "", json_integer_value(json_object_get(dv, "offset")));
  } else { /* snprintf(out, n, "%s", path), without its cost */
    size_t len = path ? strlen(path) : 0;
    if (len >= n) len = n - 1;
    memcpy(out, path ? path : "", len);
    out[len] = '\0';
  }
}

/* Sets f->key (the path itself when there is no deletion vector). false: out of memory. */
static bool file_set_key(delta_arena_t **a, delta_file_t *f) {
  json_t *dv = json_object_get(f->extra, "deletionVector");
  if (!json_is_object(dv) && (!f->path || strlen(f->path) < 4096)) {
    f->key = f->path ? f->path : "";
    return true;
  }
  char key[4096];
  key_of(f->path, dv, key, sizeof key);
  return (f->key = arena_strdup(a, key, strlen(key))) != NULL;
}

/* The compact form of an add from the log's JSON (v borrowed). */
static bool file_from_json(delta_arena_t **a, json_t *v, delta_file_t *f) {
  memset(f, 0, sizeof *f);
  const char *k;
  json_t *x;
  json_object_foreach(v, k, x) {
    if (!f->path && strcmp(k, "path") == 0 && json_is_string(x)) {
      if (!(f->path = arena_strdup(a, json_string_value(x), json_string_length(x)))) goto oom;
    } else if (!f->stats && strcmp(k, "stats") == 0 && json_is_string(x)) {
      if (!(f->stats = arena_strdup(a, json_string_value(x), json_string_length(x)))) goto oom;
    } else if (strcmp(k, "size") == 0 && json_is_integer(x)) {
      f->size = json_integer_value(x);
      f->flags |= DELTA_FILE_SIZE;
    } else if (strcmp(k, "modificationTime") == 0 && json_is_integer(x)) {
      f->modification_time = json_integer_value(x);
      f->flags |= DELTA_FILE_MTIME;
    } else if (strcmp(k, "dataChange") == 0 && json_is_boolean(x)) {
      f->flags |= DELTA_FILE_DATA_CHANGE | (json_is_true(x) ? DELTA_FILE_DATA_CHANGE_TRUE : 0);
    } else if (strcmp(k, "partitionValues") == 0 && json_is_object(x) && json_object_size(x) == 0) {
      f->flags |= DELTA_FILE_EMPTY_PV;
    } else {
      if (!f->extra && !(f->extra = json_object())) goto oom;
      if (json_object_set(f->extra, k, x) != 0) goto oom;
    }
  }
  if (file_set_key(a, f)) return true;
oom:
  json_decref(f->extra);
  f->extra = NULL;
  return false;
}

json_t *delta_file_json(const delta_file_t *f) {
  json_t *o = json_object();
  if (!o) return NULL;
  /* the order of Spark's adds: path, partitionValues, size, modificationTime, dataChange, stats */
  if (f->path) json_object_set_new_nocheck(o, "path", json_string_nocheck(f->path));
  json_t *pv = json_object_get(f->extra, "partitionValues");
  if (pv) json_object_set_nocheck(o, "partitionValues", pv);
  else if (f->flags & DELTA_FILE_EMPTY_PV) json_object_set_new_nocheck(o, "partitionValues", json_object());
  if (f->flags & DELTA_FILE_SIZE) json_object_set_new_nocheck(o, "size", json_integer(f->size));
  if (f->flags & DELTA_FILE_MTIME) json_object_set_new_nocheck(o, "modificationTime", json_integer(f->modification_time));
  if (f->flags & DELTA_FILE_DATA_CHANGE)
    json_object_set_new_nocheck(o, "dataChange", json_boolean(f->flags & DELTA_FILE_DATA_CHANGE_TRUE));
  if (f->stats) json_object_set_new_nocheck(o, "stats", json_string_nocheck(f->stats));
  const char *k;
  json_t *x;
  json_object_foreach(f->extra, k, x) if (x != pv) json_object_set_nocheck(o, k, x);
  return o;
}

/* Replay state: the snapshot being built and its live files by reconciliation key. */
typedef struct {
  delta_snapshot_t *s;
  files_t *live;
  json_t *dead; /* tombstones by reconciliation key */
  int64_t version;
  bool from_checkpoint;
  unsigned flags;   /* DELTA_LOAD_* */
  json_t *sidecars; /* a v2 checkpoint's sidecar actions, to read after it; NULL: not collected */
} replay_t;

/* Applies a compact add (its extra taken) to the state. */
static void apply_file(replay_t *r, delta_file_t *f) {
  files_put(r->live, f);
  if (json_object_size(r->dead)) json_object_del(r->dead, f->key);
}

/* Applies one action, named by its key in the log ("add", "remove", ...), to the state. */
static void apply_action(replay_t *r, const char *kind, json_t *v);

/* --- checkpoint rows straight into jansson values -------------------------------------------
 * The general path (rows_as_text) prints each row in the JSON form of parquet/json_rows.c and
 * parses it back with jansson. For the shapes a checkpoint is made of (structs, 3-level lists,
 * 3-level maps with string keys, booleans, plain integers, strings), rows_direct builds the same
 * jansson values straight from the column vectors, following json_rows.c's record assembly.
 * Any other shape, and any irregularity (corrupt levels, a string or name that the text round
 * trip would change or refuse), sends the whole row group to the general path, so results and
 * errors stay those of the general path. */

typedef enum { P_LEAF, P_STRUCT, P_MAP, P_LIST } plan_kind_t;

/* The selected part of a schema node, as rows_direct walks it. */
typedef struct plan {
  plan_kind_t kind;
  const pq_node_t *n;
  const pq_node_t *r; /* P_MAP, P_LIST: the repeated group */
  int first;          /* leaf index of the first selected leaf under n (its levels speak for n) */
  int *leaves;        /* the selected leaves under n, to skip a null or empty value */
  int nleaves;
  struct plan *kids; /* P_STRUCT: selected children; P_MAP: key, value; P_LIST: element */
  int nkids;
  int role; /* a child of add: which typed field it is (ROLE_*), set by rows_direct */
} plan_t;

enum { ROLE_OTHER, ROLE_PATH, ROLE_STATS, ROLE_SIZE, ROLE_MTIME, ROLE_DATA_CHANGE, ROLE_PV };

/* The role of add's child k: its name and a type d_add reads without jansson. */
static int add_role(const plan_t *k) {
  const char *name = k->n->name;
  bool leaf = k->kind == P_LEAF, str = leaf && k->n->type == PQ_BYTE_ARRAY;
  bool num = leaf && (k->n->type == PQ_INT64 || k->n->type == PQ_INT32);
  if (str && !strcmp(name, "path")) return ROLE_PATH;
  if (str && !strcmp(name, "stats")) return ROLE_STATS;
  if (num && !strcmp(name, "size")) return ROLE_SIZE;
  if (num && !strcmp(name, "modificationTime")) return ROLE_MTIME;
  if (leaf && k->n->type == PQ_BOOLEAN && !strcmp(name, "dataChange")) return ROLE_DATA_CHANGE;
  if (k->kind == P_MAP && !strcmp(name, "partitionValues")) return ROLE_PV;
  return ROLE_OTHER;
}

typedef struct {
  const m2d_column_t *cols;
  size_t *slot, *val; /* per leaf cursors, as in json_rows.c */
} direct_t;

static bool is_map_node(const pq_node_t *n) {
  return n->logical.kind == PQ_LT_MAP ||
         (n->has_converted && (n->converted == PQ_CT_MAP || n->converted == PQ_CT_MAP_KEY_VALUE));
}

static bool is_list_node(const pq_node_t *n) {
  return n->logical.kind == PQ_LT_LIST || (n->has_converted && n->converted == PQ_CT_LIST);
}

static bool is_string_leaf(const pq_node_t *l) {
  bool dec = l->logical.kind == PQ_LT_DECIMAL || (l->has_converted && l->converted == PQ_CT_DECIMAL);
  return !l->is_group && l->type == PQ_BYTE_ARRAY && !dec &&
         (l->logical.kind == PQ_LT_STRING || (l->has_converted && l->converted == PQ_CT_UTF8));
}

/* Leaves whose JSON form jansson loads back as a boolean, an integer or the same string. */
static bool simple_leaf(const pq_node_t *l) {
  if (l->repetition == PQ_REPEATED) return false;
  const pq_logical_type_t *lt = &l->logical;
  bool plain_int = lt->kind == PQ_LT_NONE || (lt->kind == PQ_LT_INTEGER && lt->is_signed);
  switch (l->type) {
  case PQ_BOOLEAN: return true;
  case PQ_INT32:
    return plain_int && (!l->has_converted || l->converted == PQ_CT_INT_8 || l->converted == PQ_CT_INT_16 ||
                         l->converted == PQ_CT_INT_32);
  case PQ_INT64: return plain_int && (!l->has_converted || l->converted == PQ_CT_INT_64);
  case PQ_BYTE_ARRAY: return is_string_leaf(l);
  default: return false;
  }
}

/* A name that json_rows.c prints as it is and jansson loads back unchanged: valid UTF-8. */
static bool plain_name(const char *name) {
  json_t *s = json_string(name);
  json_decref(s);
  return s != NULL;
}

static void plan_free(plan_t *p) {
  for (int i = 0; i < p->nkids; i++) plan_free(&p->kids[i]);
  free(p->kids);
  free(p->leaves);
}

static void collect_leaves(const pq_node_t *n, const bool *sel, plan_t *p) {
  if (!n->is_group) {
    if (sel[n->leaf_index]) p->leaves[p->nleaves++] = n->leaf_index;
    return;
  }
  for (int i = 0; i < n->nchildren; i++) collect_leaves(n->children[i], sel, p);
}

static int count_selected(const pq_node_t *n, const bool *sel, int *total) {
  if (!n->is_group) {
    ++*total;
    return sel[n->leaf_index];
  }
  int k = 0;
  for (int i = 0; i < n->nchildren; i++) k += count_selected(n->children[i], sel, total);
  return k;
}

/* Builds the plan of node n, which has at least one selected leaf. false when its shape is
 * not one this path handles (p is then freed). */
static bool plan_build(const pq_node_t *n, const bool *sel, int depth, plan_t *p) {
  memset(p, 0, sizeof *p);
  p->n = n;
  int total = 0, nsel = count_selected(n, sel, &total);
  if (nsel == 0 || depth > 32 || !plain_name(n->name) || !(p->leaves = malloc((size_t)nsel * sizeof *p->leaves)))
    return false;
  collect_leaves(n, sel, p);
  p->first = p->leaves[0];
  bool ok = true;
  if (!n->is_group) {
    p->kind = P_LEAF;
    ok = simple_leaf(n);
  } else if (n->repetition == PQ_REPEATED) {
    ok = false;
  } else if (is_map_node(n) || is_list_node(n)) {
    /* LogicalTypes.md's 3-level shapes, every leaf selected: a map's repeated group holds a
     * required string key and a value; a list's holds one element (not named "array" nor
     * "<name>_tuple", which json_rows.c reads as the element itself) */
    const pq_node_t *r = n->nchildren == 1 ? n->children[0] : NULL;
    ok = nsel == total && r && r->is_group && r->repetition == PQ_REPEATED;
    if (ok && is_map_node(n)) {
      p->kind = P_MAP;
      ok = !is_list_node(n) && r->nchildren == 2 && is_string_leaf(r->children[0]) &&
           r->children[0]->repetition == PQ_REQUIRED;
    } else if (ok) {
      p->kind = P_LIST;
      char tuple[300];
      snprintf(tuple, sizeof tuple, "%s_tuple", n->name);
      ok = r->nchildren == 1 && strcmp(r->name, "array") != 0 && strcmp(r->name, tuple) != 0;
    }
    if (ok) {
      p->r = r;
      p->kids = calloc((size_t)r->nchildren, sizeof *p->kids);
      ok = p->kids != NULL;
      for (int i = 0; ok && i < r->nchildren; i++) {
        ok = plan_build(r->children[i], sel, depth + 1, &p->kids[i]);
        p->nkids += ok;
      }
    }
  } else {
    p->kind = P_STRUCT;
    p->kids = calloc((size_t)n->nchildren, sizeof *p->kids);
    ok = p->kids != NULL;
    for (int i = 0; ok && i < n->nchildren; i++) {
      const pq_node_t *c = n->children[i];
      int t = 0;
      if (!count_selected(c, sel, &t)) continue; /* json_rows.c leaves it out */
      for (int k = 0; ok && k < p->nkids; k++) ok = strcmp(p->kids[k].n->name, c->name) != 0; /* distinct keys */
      ok = ok && plan_build(c, sel, depth + 1, &p->kids[p->nkids]);
      p->nkids += ok;
    }
  }
  if (!ok) plan_free(p);
  return ok;
}

/* json_rows.c refuses maps whose keys are not required, anywhere in the schema. */
static bool maps_valid(const pq_node_t *n) {
  bool map = n->logical.kind == PQ_LT_MAP || (n->has_converted && n->converted == PQ_CT_MAP);
  if (map && n->nchildren == 1 && n->children[0]->is_group && n->children[0]->nchildren >= 1 &&
      n->children[0]->children[0]->repetition != PQ_REQUIRED)
    return false;
  for (int i = 0; i < n->nchildren; i++)
    if (!maps_valid(n->children[i])) return false;
  return true;
}

static inline bool d_has_slot(const direct_t *d, int leaf) { return d->slot[leaf] < d->cols[leaf].nlevels; }

static inline int16_t d_def(const direct_t *d, int leaf) {
  const m2d_column_t *c = &d->cols[leaf];
  return c->max_def ? c->def[d->slot[leaf]] : 0;
}

/* Consumes one slot of every selected leaf under p (a null or empty value); false when a
 * column has no slot left. */
static bool d_skip(direct_t *d, const plan_t *p) {
  for (int i = 0; i < p->nleaves; i++) {
    int f = p->leaves[i];
    const m2d_column_t *c = &d->cols[f];
    if (d->slot[f] >= c->nlevels) return false;
    size_t s = d->slot[f]++;
    if (c->max_def == 0 || c->def[s] == c->max_def) d->val[f]++;
  }
  return true;
}

static json_t *d_leaf(direct_t *d, const plan_t *p) {
  int f = p->first;
  const m2d_column_t *c = &d->cols[f];
  size_t vi = d->val[f]++;
  d->slot[f]++;
  if (vi >= c->nvalues) return NULL;
  switch (p->n->type) {
  case PQ_BOOLEAN: return json_boolean(c->values[vi]);
  case PQ_INT32: {
    int32_t x;
    memcpy(&x, c->values + vi * 4, 4);
    return json_integer(x);
  }
  case PQ_INT64: {
    int64_t x;
    memcpy(&x, c->values + vi * 8, 8);
    return json_integer((json_int_t)x);
  }
  default: {
    /* json_rows.c replaces invalid UTF-8, and jansson refuses the \u0000 it prints for NUL:
     * only a valid string without NUL comes back from the text unchanged */
    size_t len;
    const uint8_t *s = m2d_column_bytes_at(c, vi, &len);
    bool nul = false;
    uint8_t high = 0;
    for (size_t i = 0; i < len; i++) {
      nul |= s[i] == 0;
      high |= s[i];
    }
    if (nul) return NULL;
    /* ASCII needs no UTF-8 check */
    return high & 0x80 ? json_stringn((const char *)s, len) : json_stringn_nocheck((const char *)s, len);
  }
  }
}

static json_t *d_value(direct_t *d, const plan_t *p);

/* The entries of a map or list (json_rows.c's repeated_values). */
static json_t *d_repeated(direct_t *d, const plan_t *p) {
  const pq_node_t *r = p->r;
  int f = p->first; /* also the first selected leaf under r: every leaf is selected */
  json_t *out = p->kind == P_MAP ? json_object() : json_array();
  if (d_def(d, f) < r->max_def) { /* empty */
    if (d_skip(d, p)) return out;
    json_decref(out);
    return NULL;
  }
  for (;;) {
    if (p->kind == P_MAP) {
      json_t *k = d_value(d, &p->kids[0]);
      json_t *v = json_is_string(k) ? d_value(d, &p->kids[1]) : NULL;
      int rc = v ? json_object_set_new_nocheck(out, json_string_value(k), v) : -1;
      json_decref(k);
      if (rc != 0) {
        json_decref(out);
        return NULL;
      }
    } else {
      json_t *e = d_value(d, &p->kids[0]);
      if (!e || json_array_append_new(out, e) != 0) {
        json_decref(out);
        return NULL;
      }
    }
    if (!d_has_slot(d, f)) break;
    if (d->cols[f].rep[d->slot[f]] < r->max_rep) break; /* the next slot starts another list */
  }
  return out;
}

/* The value of p's node at the cursors: NULL when the columns are corrupt or a value needs the
 * general path. */
static json_t *d_value(direct_t *d, const plan_t *p) {
  int f = p->first;
  if (!d_has_slot(d, f)) return NULL;
  if (d_def(d, f) < p->n->max_def) return d_skip(d, p) ? json_null() : NULL;
  switch (p->kind) {
  case P_LEAF: return d_leaf(d, p);
  case P_MAP:
  case P_LIST: return d_repeated(d, p);
  case P_STRUCT: break;
  }
  json_t *obj = json_object();
  for (int i = 0; i < p->nkids; i++) {
    json_t *v = d_value(d, &p->kids[i]);
    if (!v || json_object_set_new_nocheck(obj, p->kids[i].n->name, v) != 0) {
      json_decref(obj);
      return NULL;
    }
  }
  return obj;
}

typedef struct {
  const char *kind;
  json_t *v;         /* NULL for an add */
  delta_file_t file; /* an add, compact */
} row_action_t;

/* A string leaf's bytes at the cursors: 1 with *s, *len; 0 when null; -1 when the columns are
 * corrupt or the text round trip would change the value (d_leaf's NUL and UTF-8 rules). */
/* The leaf value of p at the cursors: 1 with its column and value index, 0 when null (its
 * slots consumed), -1 when the columns are corrupt. */
static int d_leaf_value(direct_t *d, const plan_t *p, const m2d_column_t **c, size_t *vi) {
  int f = p->first;
  if (!d_has_slot(d, f)) return -1;
  if (d_def(d, f) < p->n->max_def) return d_skip(d, p) ? 0 : -1;
  *c = &d->cols[f];
  *vi = d->val[f]++;
  d->slot[f]++;
  return *vi < (*c)->nvalues ? 1 : -1;
}

static int d_string(direct_t *d, const plan_t *p, const uint8_t **s, size_t *len) {
  const m2d_column_t *c;
  size_t vi;
  int r = d_leaf_value(d, p, &c, &vi);
  if (r <= 0) return r;
  *s = m2d_column_bytes_at(c, vi, len);
  if (memchr(*s, 0, *len)) return -1;
  if (m2d_ascii(*s, *len)) return 1; /* the common case */
  json_t *t = json_stringn((const char *)*s, *len); /* valid UTF-8? */
  json_decref(t);
  return t ? 1 : -1;
}

/* An integer or boolean leaf at the cursors, as d_string. */
static int d_int(direct_t *d, const plan_t *p, int64_t *out) {
  const m2d_column_t *c;
  size_t vi;
  int r = d_leaf_value(d, p, &c, &vi);
  if (r <= 0) return r;
  if (p->n->type == PQ_BOOLEAN) {
    *out = c->values[vi] != 0;
  } else if (p->n->type == PQ_INT32) {
    int32_t x;
    memcpy(&x, c->values + vi * 4, 4);
    *out = x;
  } else {
    memcpy(out, c->values + vi * 8, 8);
  }
  return 1;
}

/* The add struct p at the cursors, compact, without a jansson object for its typed fields:
 * 1 with f filled, 0 when null, -1 when it needs the general path. */
static int d_add(direct_t *d, const plan_t *p, delta_arena_t **arena, delta_file_t *f) {
  int f0 = p->first;
  if (!d_has_slot(d, f0)) return -1;
  if (d_def(d, f0) < p->n->max_def) return d_skip(d, p) ? 0 : -1;
  memset(f, 0, sizeof *f);
  for (int i = 0; i < p->nkids; i++) {
    const plan_t *k = &p->kids[i];
    const char *name = k->n->name;
    int rc;
    if (!d_has_slot(d, k->first)) goto fail;
    if (d_def(d, k->first) < k->n->max_def) { /* null: absent, as in a JSON commit */
      if (!d_skip(d, k)) goto fail;
      continue;
    }
    if (k->role == ROLE_PATH || k->role == ROLE_STATS) {
      const uint8_t *b;
      size_t len;
      if ((rc = d_string(d, k, &b, &len)) < 0) goto fail;
      const char *c = rc ? arena_strdup(arena, (const char *)b, len) : NULL;
      if (rc && !c) goto fail;
      *(k->role == ROLE_PATH ? &f->path : &f->stats) = c;
    } else if (k->role == ROLE_SIZE || k->role == ROLE_MTIME || k->role == ROLE_DATA_CHANGE) {
      int64_t x;
      if ((rc = d_int(d, k, &x)) < 0) goto fail;
      if (!rc) continue;
      if (k->role == ROLE_DATA_CHANGE) f->flags |= DELTA_FILE_DATA_CHANGE | (x ? DELTA_FILE_DATA_CHANGE_TRUE : 0);
      else if (k->role == ROLE_SIZE) f->size = x, f->flags |= DELTA_FILE_SIZE;
      else f->modification_time = x, f->flags |= DELTA_FILE_MTIME;
    } else if (k->role == ROLE_PV && d_def(d, k->first) < k->r->max_def) { /* {} */
      if (!d_skip(d, k)) goto fail;
      f->flags |= DELTA_FILE_EMPTY_PV;
    } else {
      json_t *v = d_value(d, k);
      if (!v) goto fail;
      if (json_is_null(v)) { /* absent, as in a JSON commit */
        json_decref(v);
      } else if (!strcmp(name, "partitionValues") && json_is_object(v) && json_object_size(v) == 0) {
        json_decref(v);
        f->flags |= DELTA_FILE_EMPTY_PV;
      } else if ((!f->extra && !(f->extra = json_object())) || json_object_set_new_nocheck(f->extra, name, v) != 0) {
        goto fail;
      }
    }
  }
  if (file_set_key(arena, f)) return 1;
fail:
  json_decref(f->extra);
  f->extra = NULL;
  return -1;
}

/* Moves the cursors of p's leaves but the first over the *pending null rows its first leaf
 * has passed (d_skip's moves, leaf by leaf). */
static bool catch_up(direct_t *d, const plan_t *p, size_t *pending) {
  size_t n = *pending;
  *pending = 0;
  for (int i = 1; i < p->nleaves; i++) {
    int f = p->leaves[i];
    const m2d_column_t *c = &d->cols[f];
    size_t s = d->slot[f];
    if (s + n > c->nlevels) return false;
    if (c->max_def == 0) {
      d->val[f] += n;
    } else {
      size_t vals = 0;
      for (size_t j = s; j < s + n; j++) vals += c->def[j] == c->max_def;
      d->val[f] += vals;
    }
    d->slot[f] = s + n;
  }
  return true;
}

/* Applies the actions of one row group's columns, as rows_as_text would. false, with nothing
 * applied, when the schema or the data needs the general path. */
static bool rows_direct(const pq_schema_t *s, const m2d_column_t *cols, const bool *sel, replay_t *rp) {
  const pq_node_t *root = s->root;
  int total = 0;
  if (!maps_valid(root) || !count_selected(root, sel, &total)) return false;
  plan_t plan;
  if (!plan_build(root, sel, 0, &plan)) return false;
  direct_t d = {.cols = cols};
  row_action_t *acts = NULL;
  size_t nacts = 0, cap = 0;
  d.slot = calloc((size_t)s->nleaves, sizeof *d.slot);
  d.val = calloc((size_t)s->nleaves, sizeof *d.val);
  bool ok = d.slot && d.val && plan.kind == P_STRUCT;
  int f = plan.first;
  /* a null action takes one slot in each of its leaves: only its first leaf's cursor moves
   * row by row, the others catch up (pending) when a value comes, as d_skip would move them */
  size_t *pending = calloc((size_t)plan.nkids + 1, sizeof *pending);
  bool *is_add = calloc((size_t)plan.nkids + 1, sizeof *is_add);
  ok = ok && pending && is_add;
  for (int i = 0; ok && i < plan.nkids; i++) {
    is_add[i] = plan.kids[i].kind == P_STRUCT && strcmp(plan.kids[i].n->name, "add") == 0;
    for (int k = 0; is_add[i] && k < plan.kids[i].nkids; k++) plan.kids[i].kids[k].role = add_role(&plan.kids[i].kids[k]);
  }
  while (ok && d_has_slot(&d, f)) {
    if (cols[f].max_rep > 0 && cols[f].rep[d.slot[f]] != 0) {
      ok = false;
      break;
    }
    /* a checkpoint row holds one action; the other columns are null */
    for (int i = 0; ok && i < plan.nkids; i++) {
      const plan_t *k = &plan.kids[i];
      if (!d_has_slot(&d, k->first)) {
        ok = false;
        break;
      }
      if (d_def(&d, k->first) < k->n->max_def) {
        d.slot[k->first]++;
        pending[i]++;
        continue;
      }
      if (pending[i]) ok = catch_up(&d, k, &pending[i]);
      row_action_t a = {.kind = k->n->name};
      if (!ok) break;
      if (is_add[i]) {
        int rc = d_add(&d, &plan.kids[i], &rp->s->arena, &a.file);
        if (rc < 0) ok = false;
        if (rc <= 0) continue;
      } else {
        a.v = d_value(&d, &plan.kids[i]);
        if (!a.v) {
          ok = false;
          continue;
        }
        if (json_is_null(a.v)) {
          json_decref(a.v);
          continue;
        }
      }
      if (nacts == cap) {
        row_action_t *grown = realloc(acts, (cap ? 2 * cap : 1024) * sizeof *acts);
        if (!grown) {
          json_decref(a.v);
          json_decref(a.file.extra);
          ok = false;
          break;
        }
        acts = grown;
        cap = cap ? 2 * cap : 1024;
      }
      acts[nacts++] = a;
    }
  }
  for (int i = 0; ok && i < plan.nkids; i++)
    if (pending[i]) ok = catch_up(&d, &plan.kids[i], &pending[i]);
  free(pending);
  free(is_add);
  for (size_t i = 0; i < nacts; i++) {
    if (ok && !acts[i].v) apply_file(rp, &acts[i].file);
    else if (ok) apply_action(rp, acts[i].kind, acts[i].v);
    else json_decref(acts[i].file.extra);
    json_decref(acts[i].v);
  }
  free(acts);
  free(d.slot);
  free(d.val);
  plan_free(&plan);
  return ok;
}

/* The general path: each row printed in the JSON form of json_rows.c and parsed back. */
static bool rows_as_text(const char *key, const pq_schema_t *s, const m2d_column_t *cols, const bool *sel, replay_t *rp,
                         m2d_buf_t *line, m2d_error_t *err) {
  pq_json_rows_t *rows = pq_json_rows_new(s, cols, sel, err);
  bool ok = rows != NULL, end = false;
  while (ok) {
    m2d_buf_reset(line);
    if (!pq_json_rows_next(rows, line, &end, err)) {
      ok = end;
      break;
    }
    json_error_t je;
    json_t *row = json_loadb((const char *)line->data, line->len, 0, &je);
    if (!row) {
      ok = m2d_error_set(err, M2D_ERR_INTERNAL, 0, "%s: unreadable row: %s", key, je.text);
      break;
    }
    /* a checkpoint row holds one action; the other columns are null */
    const char *k;
    json_t *v;
    json_object_foreach(row, k, v) {
      if (!json_is_null(v)) apply_action(rp, k, v);
    }
    json_decref(row);
  }
  pq_json_rows_destroy(rows);
  return ok;
}

/* --- checkpoint reading through the Parquet reader ---------------------------------------- */

/* Reads a checkpoint file and applies its actions, in order. */
static bool read_parquet_actions(m2d_store_t *store, const char *key, replay_t *rp, m2d_error_t *err) {
  m2d_source_t *src = store->open(store, key, err);
  if (!src) return false;
  pq_reader_t *r = pq_reader_open(src, err);
  bool ok = r != NULL;
  m2d_column_t *cols = NULL;
  bool *sel = NULL;
  m2d_buf_t line;
  m2d_buf_init(&line, (size_t)1 << 31);
  if (ok) {
    const pq_schema_t *s = pq_reader_schema(r);
    cols = calloc((size_t)s->nleaves + 1, sizeof *cols);
    sel = calloc((size_t)s->nleaves + 1, sizeof *sel);
    /* only the actions replay applies (not remove without tombstones: a
     * checkpoint's removes never name its adds), and not stats_parsed / partitionValues_parsed */
    static const char *const actions[] = {"add.",    "metaData.", "protocol.",
                                          "txn.",    "domainMetadata.", "sidecar.", "remove."};
    size_t nactions = sizeof actions / sizeof *actions - (rp->flags & DELTA_LOAD_NO_TOMBSTONES ? 1 : 0);
    for (int i = 0; i < s->nleaves; i++) {
      char path[1024];
      pq_node_path(s->leaves[i], path, sizeof path);
      sel[i] = strncmp(path, "add.stats_parsed", 16) != 0 && strncmp(path, "add.partitionValues_parsed", 26) != 0;
      bool action = false;
      for (size_t a = 0; a < nactions; a++) action |= strncmp(path, actions[a], strlen(actions[a])) == 0;
      sel[i] = sel[i] && action;
    }
    for (int g = 0; ok && g < pq_reader_num_row_groups(r); g++) {
      for (int i = 0; ok && i < s->nleaves; i++)
        if (sel[i]) ok = pq_reader_read_column(r, g, i, &cols[i], err);
      if (ok && !rows_direct(s, cols, sel, rp)) ok = rows_as_text(key, s, cols, sel, rp, &line, err);
      for (int i = 0; i < s->nleaves; i++) m2d_column_free(&cols[i]);
    }
  }
  m2d_buf_free(&line);
  free(cols);
  free(sel);
  pq_reader_close(r);
  m2d_source_destroy(src);
  return ok;
}

static void apply(replay_t *r, json_t *actions);

/* Reads one checkpoint file: Parquet, or a v2 checkpoint's newline-delimited JSON. */
static bool read_checkpoint_file(m2d_store_t *store, const char *key, replay_t *rp, m2d_error_t *err) {
  size_t len = strlen(key);
  if (len < 5 || strcmp(key + len - 5, ".json") != 0) return read_parquet_actions(store, key, rp, err);
  m2d_buf_t b;
  m2d_buf_init(&b, MAX_COMMIT);
  json_t *acts = store->get(store, key, &b, NULL, err) ? delta_parse_actions(key, b.data, b.len, err) : NULL;
  m2d_buf_free(&b);
  if (!acts) return false;
  apply(rp, acts);
  json_decref(acts);
  return true;
}

bool delta_checkpoint_sidecars(m2d_store_t *store, const char *key, json_t *out, m2d_error_t *err) {
  delta_snapshot_t s = {.txns = json_object(), .domains = json_object(), .commits = json_array()};
  files_t live = {0};
  json_t *dead = json_object();
  bool ok = files_rehash(&live, 64);
  if (!ok) m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory reading %s", key);
  replay_t rp = {.s = &s, .live = &live, .dead = dead, .from_checkpoint = true, .flags = DELTA_LOAD_NO_TOMBSTONES,
                 .sidecars = out};
  if (ok) ok = read_checkpoint_file(store, key, &rp, err);
  if (ok && live.oom) ok = m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory reading %s", key);
  files_free(&live);
  json_decref(dead);
  delta_snapshot_free(&s);
  return ok;
}

/* --- replay -------------------------------------------------------------------------------- */

void delta_file_key(const json_t *action, char *out, size_t n) {
  /* the path string as the log spells it: Spark 4 with Delta 4 does not treat "/p" and
   * "file:/p" as one file either (golden tables canonicalized-paths-*) */
  key_of(json_string_value(json_object_get(action, "path")), json_object_get(action, "deletionVector"), out, n);
}

static void apply_action(replay_t *r, const char *kind, json_t *v) {
  delta_snapshot_t *s = r->s;
  char key[4096];
  if (strcmp(kind, "add") == 0) {
    delta_file_t f;
    if (file_from_json(&s->arena, v, &f)) apply_file(r, &f);
    else r->live->oom = true;
  } else if (strcmp(kind, "remove") == 0) {
    delta_file_key(v, key, sizeof key);
    files_del(r->live, key);
    if (!(r->flags & DELTA_LOAD_NO_TOMBSTONES)) json_object_set(r->dead, key, v);
  } else if (strcmp(kind, "metaData") == 0) {
    json_decref(s->metadata);
    s->metadata = json_incref(v);
  } else if (strcmp(kind, "protocol") == 0) {
    json_decref(s->protocol);
    s->protocol = json_incref(v);
  } else if (strcmp(kind, "txn") == 0) {
    const char *app = json_string_value(json_object_get(v, "appId"));
    if (app) json_object_set(s->txns, app, json_object_get(v, "version"));
  } else if (strcmp(kind, "domainMetadata") == 0) {
    const char *d = json_string_value(json_object_get(v, "domain"));
    if (d && json_is_true(json_object_get(v, "removed"))) json_object_del(s->domains, d);
    else if (d) json_object_set(s->domains, d, json_object_get(v, "configuration"));
  } else if (strcmp(kind, "sidecar") == 0 && r->from_checkpoint && r->sidecars) {
    json_array_append(r->sidecars, v);
  } else if (strcmp(kind, "commitInfo") == 0 && !r->from_checkpoint) {
    json_t *c = json_pack("{sI}", "version", (json_int_t)r->version);
    json_object_set(c, "timestamp", json_object_get(v, "timestamp"));
    json_object_set(c, "operation", json_object_get(v, "operation"));
    json_array_append_new(s->commits, c);
    if (json_array_size(s->commits) > KEEP_COMMITS) json_array_remove(s->commits, 0);
  }
}

/* The actions of a commit: each an object whose first key, in this order, says what it is. */
static void apply(replay_t *r, json_t *actions) {
  static const char *const kinds[] = {"add", "remove", "metaData", "protocol", "txn", "domainMetadata", "sidecar",
                                      "commitInfo"};
  size_t i;
  json_t *a;
  json_array_foreach(actions, i, a) {
    for (size_t k = 0; k < sizeof kinds / sizeof *kinds; k++) {
      json_t *v = json_object_get(a, kinds[k]);
      if (v) {
        apply_action(r, kinds[k], v);
        break;
      }
    }
  }
}

static int cmp_files(const void *a, const void *b) {
  const delta_file_t *x = a, *y = b;
  return strcmp(x->path ? x->path : "", y->path ? y->path : "");
}

typedef struct {
  uint64_t key; /* eight bytes of the path after the common prefix, big-endian */
  uint32_t idx;
} sort_key_t;

/* Sorts k[0..n) (tmp: room for n) by the paths of v, which agree on their first off bytes:
 * by radix on the next eight, then each run of equal ones by the eight after. */
static void sort_run(const delta_file_t *v, sort_key_t *k, sort_key_t *tmp, size_t n, size_t off) {
  if (off > 1024) { /* paths alike for so long: insertion by strcmp, not deeper recursion */
    for (size_t i = 1; i < n; i++) {
      sort_key_t x = k[i];
      size_t j = i;
      while (j > 0 && strcmp(v[k[j - 1].idx].path + off, v[x.idx].path + off) > 0) k[j] = k[j - 1], j--;
      k[j] = x;
    }
    return;
  }
  for (size_t i = 0; i < n; i++) {
    const char *p = (v[k[i].idx].path ? v[k[i].idx].path : "") + off;
    uint64_t key = 0;
    for (int b = 0; b < 8; b++) {
      key = key << 8 | (unsigned char)*p;
      if (*p) p++;
    }
    k[i].key = key;
  }
  /* LSD radix sort on the key, a byte per pass; a pass where every key has the same byte is skipped */
  sort_key_t *src = k, *dst = tmp;
  for (int shift = 0; shift < 64; shift += 8) {
    size_t count[257] = {0};
    for (size_t i = 0; i < n; i++) count[((src[i].key >> shift) & 0xff) + 1]++;
    bool one = false;
    for (int b = 1; b <= 256; b++) one |= count[b] == n;
    if (one) continue;
    for (int b = 1; b <= 256; b++) count[b] += count[b - 1];
    for (size_t i = 0; i < n; i++) dst[count[(src[i].key >> shift) & 0xff]++] = src[i];
    sort_key_t *t = src;
    src = dst;
    dst = t;
  }
  if (src != k) memcpy(k, src, n * sizeof *k);
  for (size_t i = 0; i < n;) {
    size_t j = i + 1;
    while (j < n && k[j].key == k[i].key) j++;
    /* equal, and the paths go on (a zero last byte: they ended, and are the same) */
    if (j - i > 1 && (k[i].key & 0xff)) sort_run(v, k + i, tmp, j - i, off + 8);
    i = j;
  }
}

/* Sorts files by path (strcmp's order). The checkpoint's come first and are often sorted
 * already (ours are written so): then one pass does. Otherwise the paths' common prefix
 * (part-00000-... ) is skipped and the rest sorted by radix, eight bytes at a time: qsort with
 * strcmp on whole paths was most of a 100,000-file replay. */
static void sort_files(delta_file_t *v, size_t n) {
  size_t sorted = 1;
  while (sorted < n && cmp_files(&v[sorted - 1], &v[sorted]) <= 0) sorted++;
  if (sorted >= n) return;
  sort_key_t *k = n >= 1024 && n < UINT32_MAX ? malloc(n * sizeof *k) : NULL;
  sort_key_t *tmp = k ? malloc(n * sizeof *k) : NULL;
  delta_file_t *out = tmp ? malloc(n * sizeof *out) : NULL;
  if (!out) {
    free(k), free(tmp);
    qsort(v, n, sizeof *v, cmp_files);
    return;
  }
  const char *first = v[0].path ? v[0].path : "";
  size_t lcp = strlen(first);
  for (size_t i = 1; i < n && lcp; i++) {
    const char *p = v[i].path ? v[i].path : "";
    size_t j = 0;
    while (j < lcp && p[j] == first[j]) j++;
    lcp = j;
  }
  for (size_t i = 0; i < n; i++) k[i].idx = (uint32_t)i;
  sort_run(v, k, tmp, n, lcp);
  for (size_t i = 0; i < n; i++) out[i] = v[k[i].idx];
  memcpy(v, out, n * sizeof *v);
  free(k), free(tmp), free(out);
}

json_t *delta_snapshot_files(delta_snapshot_t *s) {
  if (s->files) return s->files;
  s->files = json_array();
  for (size_t k = 0; k < s->nadds; k++) json_array_append_new(s->files, delta_file_json(&s->adds[k]));
  return s->files;
}

bool delta_snapshot_load(m2d_store_t *store, int64_t want, delta_snapshot_t *s, m2d_error_t *err) {
  return delta_snapshot_load_ex(store, want, 0, s, err);
}

bool delta_snapshot_load_ex(m2d_store_t *store, int64_t want, unsigned flags, delta_snapshot_t *s, m2d_error_t *err) {
  memset(s, 0, sizeof *s);
  s->txns = json_object();
  s->domains = json_object();
  s->commits = json_array();
  s->checkpoint = -1;
  m2d_store_entry_t *entries = NULL;
  size_t n = 0;
  bool ok = false;
  files_t live = {0};
  json_t *dead = json_object();
  int64_t hint = 0; /* files expected, from _last_checkpoint */
  int64_t *commits = NULL;
  size_t ncommits = 0;
  ckpt_t *cps = NULL;
  size_t ncps = 0;
  m2d_buf_t buf;
  m2d_buf_init(&buf, MAX_COMMIT);

  if (!m2d_store_list_names(store, "_delta_log", &entries, &n, err)) goto done;
  commits = calloc(n + 1, sizeof *commits);
  cps = calloc(n + 1, sizeof *cps);
  for (size_t i = 0; i < n; i++) {
    int64_t v;
    const char *rest;
    if (!parse_version(entries[i].name, &v, &rest)) continue;
    if (strcmp(rest, ".json") == 0) {
      commits[ncommits++] = v;
    } else if (strncmp(rest, ".checkpoint", 11) == 0) {
      const char *t = rest + 11;
      int part = 1, parts = 1;
      bool v2 = false;
      if (strcmp(t, ".parquet") == 0) {
      } else if (delta_cp2_uuid_name(rest, NULL)) {
        v2 = true; /* before the sscanf, which would take a UUID's leading digits for a part */
      } else if (sscanf(t, ".%d.%d.parquet", &part, &parts) == 2) {
      } else {
        continue;
      }
      ckpt_t *c = NULL;
      for (size_t k = 0; k < ncps; k++)
        if (cps[k].version == v && cps[k].parts == parts && cps[k].is_v2 == v2) c = &cps[k];
      if (!c) {
        c = &cps[ncps++];
        c->version = v;
        c->parts = parts;
        c->is_v2 = v2;
        c->names = calloc((size_t)(parts > 0 && parts < 100000 ? parts : 1), sizeof *c->names);
      }
      if (part >= 1 && part <= parts && parts < 100000 && !c->names[part - 1]) {
        c->names[part - 1] = entries[i].name;
        c->have++;
      }
    }
  }
  if (ncommits == 0 && ncps == 0) {
    if (n == 0)
      m2d_error_set(err, M2D_ERR_USAGE, 0, "%s is not a Delta table (no _delta_log with commits); check the path",
                    store->root);
    else
      m2d_error_set(err, M2D_ERR_FORMAT, 0, "%s/_delta_log holds no commit files", store->root);
    goto done;
  }
  int64_t latest = ncommits ? commits[ncommits - 1] : -1;
  for (size_t k = 0; k < ncps; k++)
    if (cps[k].version > latest) latest = cps[k].version;
  int64_t target = want < 0 ? latest : want;
  if (target > latest) {
    m2d_error_set(err, M2D_ERR_USAGE, 0, "%s: version %" PRId64 " does not exist (the latest is %" PRId64 ")", store->root,
                  target, latest);
    goto done;
  }

  /* the oldest version a reader can start from: the oldest complete classic checkpoint, or 0 */
  int64_t oldest = ncommits && commits[0] == 0 ? 0 : -1;
  for (size_t k = 0; oldest != 0 && k < ncps; k++)
    if (cps[k].have == cps[k].parts && (oldest < 0 || cps[k].version < oldest)) oldest = cps[k].version;
  /* the newest complete checkpoint at or below the target, classic, multi-part or v2 */
  ckpt_t *use = NULL;
  for (size_t k = 0; k < ncps; k++)
    if (cps[k].have == cps[k].parts && cps[k].version <= target && (!use || cps[k].version > use->version))
      use = &cps[k];
  /* _last_checkpoint is a hint: say when it disagrees with what is there */
  bool missing = false;
  if (store->get(store, "_delta_log/_last_checkpoint", &buf, &missing, NULL)) {
    json_t *lc = json_loadb((const char *)buf.data, buf.len, 0, NULL);
    json_int_t v = json_integer_value(json_object_get(lc, "version"));
    hint = json_integer_value(json_object_get(lc, "numOfAddFiles")) ?: json_integer_value(json_object_get(lc, "size"));
    if (!lc) m2d_warn("%s/_delta_log/_last_checkpoint is not valid JSON; finding the checkpoint by listing", store->root);
    else if (want < 0 && !use)
      m2d_warn("%s/_delta_log/_last_checkpoint names version %lld, but there is no complete checkpoint; "
               "replaying the JSON commits", store->root, (long long)v);
    else if (want < 0 && use->version != v)
      m2d_warn("%s/_delta_log/_last_checkpoint names version %lld, but the newest complete checkpoint is %lld; using it",
               store->root, (long long)v, (long long)use->version);
    json_decref(lc);
  }
  int64_t from = 0;
  if (hint > 0 && hint < ((int64_t)1 << 28) && (live.v = malloc(((size_t)hint + 64) * sizeof *live.v)))
    live.cap = (size_t)hint + 64;
  if (!files_rehash(&live, hint > 0 && hint < ((int64_t)1 << 28) ? (size_t)hint + 64 : 1)) {
    m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory replaying %s/_delta_log", store->root);
    goto done;
  }
  if (use) {
    /* the checkpoint's actions, applied as they are read (the parts in order) */
    replay_t rp = {.s = s, .live = &live, .dead = dead, .version = use->version, .from_checkpoint = true,
                   .flags = flags, .sidecars = json_array()};
    bool cp_ok = true;
    for (int p = 0; cp_ok && p < use->parts; p++) {
      char key[512];
      snprintf(key, sizeof key, "_delta_log/%s", use->names[p]);
      cp_ok = read_checkpoint_file(store, key, &rp, err);
    }
    /* a v2 checkpoint's file actions in its sidecars (any checkpoint of a v2 table may have them) */
    size_t si;
    json_t *sc;
    json_array_foreach(rp.sidecars, si, sc) {
      if (!cp_ok) break;
      char key[1200];
      if (!delta_cp2_sidecar_key(sc, key, sizeof key))
        cp_ok = m2d_error_set(err, M2D_ERR_FORMAT, 0, "%s: a sidecar action has no path", use->names[0]);
      else
        cp_ok = read_parquet_actions(store, key, &rp, err);
    }
    json_decref(rp.sidecars);
    if (!cp_ok) {
      m2d_error_prefix(err, "reading checkpoint %" PRId64 ": ", use->version);
      goto done;
    }
    s->checkpoint = use->version;
    from = use->version + 1;
  } else {
    /* no checkpoint: versions from 0 must all be there */
    if (ncommits == 0 || commits[0] != 0) {
      if (oldest >= 0 && target < oldest)
        m2d_error_set(err, M2D_ERR_USAGE, 0,
                      "%s: version %" PRId64 " is no longer in the log (its commits were removed by log cleanup, "
                      "see delta.logRetentionDuration); the oldest version that can be read is %" PRId64,
                      store->root, target, oldest);
      else
        m2d_error_set(err, M2D_ERR_FORMAT, 0,
                      "%s: the log starts at version %" PRId64 " and no checkpoint covers the versions before it "
                      "(commits were cleaned up or lost); the table cannot be read",
                      store->root, ncommits ? commits[0] : -1);
      goto done;
    }
  }
  /* the JSON commits after the checkpoint, every version present */
  size_t i = 0;
  while (i < ncommits && commits[i] < from) i++;
  for (int64_t v = from; v <= target; v++, i++) {
    if (i >= ncommits || commits[i] != v) {
      m2d_error_set(err, M2D_ERR_FORMAT, 0,
                    "%s/_delta_log/%020" PRId64 ".json is missing: versions must be contiguous; the log is "
                    "damaged after version %" PRId64,
                    store->root, v, v - 1);
      goto done;
    }
    char key[128];
    snprintf(key, sizeof key, "_delta_log/%020" PRId64 ".json", v);
    if (!store->get(store, key, &buf, NULL, err)) goto done;
    char name[1200];
    snprintf(name, sizeof name, "%s/%s", store->root, key);
    json_t *acts = delta_parse_actions(name, buf.data, buf.len, err);
    if (!acts) goto done;
    replay_t rp = {.s = s, .live = &live, .dead = dead, .version = v, .from_checkpoint = false, .flags = flags};
    apply(&rp, acts);
    json_decref(acts);
  }
  s->version = target;
  if (!s->metadata || !s->protocol) {
    m2d_error_set(err, M2D_ERR_FORMAT, 0, "%s: no %s action up to version %" PRId64 ": the log is incomplete", store->root,
                  !s->metadata ? "metaData" : "protocol", target);
    goto done;
  }
  if (live.oom) {
    m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory replaying %s/_delta_log", store->root);
    goto done;
  }
  /* files, sorted by path: the live ones moved to the front of the vector */
  size_t nf = 0;
  for (size_t k = 0; k < live.n; k++)
    if (!(live.v[k].flags & DELTA_FILE_DEAD)) live.v[nf++] = live.v[k];
  delta_file_t *shrunk = nf ? realloc(live.v, nf * sizeof *live.v) : NULL;
  s->adds = shrunk ? shrunk : live.v;
  live.v = NULL;
  live.n = 0;
  s->nadds = nf;
  sort_files(s->adds, nf);
  for (size_t k = 1; k < nf; k++) assert(cmp_files(&s->adds[k - 1], &s->adds[k]) <= 0); /* sorted by path */
  if (!(flags & DELTA_LOAD_COMPACT)) delta_snapshot_files(s);
  const char *key;
  json_t *val;
  s->tombstones = json_array();
  json_object_foreach(dead, key, val) json_array_append(s->tombstones, val);
  ok = true;
done:
  for (size_t c = 0; c < ncps; c++) free(cps[c].names);
  free(cps);
  free(commits);
  m2d_store_entries_free(entries, n);
  files_free(&live);
  json_decref(dead);
  m2d_buf_free(&buf);
  if (!ok) delta_snapshot_free(s);
  return ok;
}

void delta_snapshot_free(delta_snapshot_t *s) {
  json_decref(s->protocol);
  json_decref(s->metadata);
  json_decref(s->files);
  json_decref(s->txns);
  json_decref(s->commits);
  json_decref(s->domains);
  json_decref(s->tombstones);
  for (size_t k = 0; k < s->nadds; k++) json_decref(s->adds[k].extra);
  free(s->adds);
  arena_free(s->arena);
  memset(s, 0, sizeof *s);
}

json_t *delta_find_txn_commit(m2d_store_t *store, int64_t from, const char *app_id, int64_t txn_version,
                              m2d_error_t *err) {
  m2d_buf_t data;
  m2d_buf_init(&data, MAX_COMMIT);
  json_t *found = NULL;
  /* the commits there are: log cleanup keeps the one holding an application's latest txn
   * (delta/cleanup.h), also when the commits around it are gone */
  m2d_store_entry_t *e = NULL;
  size_t n = 0;
  if (!store->list(store, "_delta_log", &e, &n, err)) {
    m2d_buf_free(&data);
    return NULL;
  }
  size_t idx = n;
  for (int64_t v = from; !found && v >= 0; v--) {
    char key[64];
    snprintf(key, sizeof key, "_delta_log/%020" PRId64 ".json", v);
    /* the next existing commit at or below v (the listing is sorted by name) */
    int64_t have = -1;
    while (idx > 0) {
      int64_t lv;
      const char *rest;
      if (parse_version(e[idx - 1].name, &lv, &rest) && strcmp(rest, ".json") == 0 && lv <= v) {
        have = lv;
        break;
      }
      idx--;
    }
    if (have < 0) {
      m2d_error_set(err, M2D_ERR_FORMAT, 0,
                    "the commit holding %s version %lld is no longer in the log (%s is missing)", app_id,
                    (long long)txn_version, key);
      break;
    }
    if (have < v) {
      v = have;
      snprintf(key, sizeof key, "_delta_log/%020" PRId64 ".json", v);
    }
    idx--;
    if (!store->get(store, key, &data, NULL, err)) break;
    json_t *actions = delta_parse_actions(key, data.data, data.len, err);
    if (!actions) break;
    size_t i;
    json_t *a, *t, *info = NULL;
    bool mine = false;
    json_array_foreach(actions, i, a) {
      const char *app;
      if ((t = json_object_get(a, "txn")) && (app = json_string_value(json_object_get(t, "appId"))) &&
          strcmp(app, app_id) == 0 && json_integer_value(json_object_get(t, "version")) == txn_version)
        mine = true;
      if ((t = json_object_get(a, "commitInfo"))) info = t;
    }
    if (mine) found = info ? json_incref(info) : json_object();
    json_decref(actions);
  }
  m2d_store_entries_free(e, n);
  m2d_buf_free(&data);
  return found;
}

bool delta_interval_parse(const char *s, int64_t *ms) {
  const char *p = s;
  while (isspace((unsigned char)*p)) p++;
  if (strncasecmp(p, "interval", 8) == 0) p += 8;
  int64_t total = 0;
  int parts = 0;
  for (;;) {
    while (isspace((unsigned char)*p)) p++;
    if (!*p) break;
    char *end;
    double n = strtod(p, &end);
    if (end == p || n < 0 || n > 1e12) return false;
    p = end;
    while (isspace((unsigned char)*p)) p++;
    static const struct {
      const char *unit;
      int64_t ms;
    } units[] = {{"week", (int64_t)7 * 24 * 3600 * 1000}, {"day", 24 * 3600 * 1000}, {"hour", 3600 * 1000},
                 {"minute", 60 * 1000}, {"second", 1000}, {"millisecond", 1}};
    size_t len = 0;
    while (isalpha((unsigned char)p[len])) len++;
    int64_t unit = -1;
    for (size_t u = 0; u < sizeof units / sizeof units[0]; u++) {
      size_t ul = strlen(units[u].unit);
      if ((len == ul || (len == ul + 1 && tolower((unsigned char)p[ul]) == 's')) && strncasecmp(p, units[u].unit, ul) == 0)
        unit = units[u].ms;
    }
    if (unit < 0) return false;
    total += (int64_t)(n * (double)unit);
    parts++;
    p += len;
  }
  if (!parts) return false;
  *ms = total;
  return true;
}

int64_t delta_deleted_file_retention_ms(const json_t *metadata) {
  const int64_t week = (int64_t)7 * 24 * 3600 * 1000;
  const char *s = json_string_value(json_object_get(json_object_get(metadata, "configuration"),
                                                    "delta.deletedFileRetentionDuration"));
  int64_t ms;
  if (!s) return week;
  if (!delta_interval_parse(s, &ms))
    return m2d_warn("delta.deletedFileRetentionDuration '%s' is not understood; one week is used", s), week;
  return ms;
}
