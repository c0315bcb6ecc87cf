#include "pipeline/optimize.h"

#include "core/log.h"
#include "core/progress.h"
#include "delta/log.h"
#include "delta/stats.h"
#include "pipeline/columns_bson.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_TARGET ((uint64_t)128 << 20)

/* --- the plan ------------------------------------------------------------------------------- */

typedef struct {
  json_t *add;     /* borrowed from the snapshot */
  const char *path;
  int64_t mtime;
  uint64_t live;   /* estimated bytes of its live rows */
  int64_t rows;    /* live rows from the statistics, -1 when unknown */
  bool dv;
} cand_t;

typedef struct {
  char where[1024]; /* the partition, for messages ("part=3", or "the table" when unpartitioned) */
  json_t *files;    /* the add actions rewritten (borrowed from the snapshot, referenced) */
  uint64_t bytes;   /* estimated live bytes */
  int64_t rows;     /* from the statistics; -1 when a file has none */
  int dvs;
} bin_t;

static int cmp_cands(const void *a, const void *b) {
  const cand_t *x = a, *y = b;
  if (x->mtime != y->mtime) return x->mtime < y->mtime ? -1 : 1;
  return strcmp(x->path, y->path);
}

static void describe_partition(const json_t *pv, char *out, size_t n) {
  out[0] = '\0';
  const char *k;
  json_t *v;
  size_t used = 0;
  json_object_foreach((json_t *)pv, k, v) {
    int w = snprintf(out + used, n - used, "%s%s=%s", used ? "," : "", k, json_is_string(v) ? json_string_value(v) : "null");
    if (w < 0 || (size_t)w >= n - used) break;
    used += (size_t)w;
  }
  if (!used) snprintf(out, n, "the table");
}

static void free_bins(bin_t *bins, int n) {
  for (int i = 0; i < n; i++) json_decref(bins[i].files);
  free(bins);
}

/* The bins to rewrite (see optimize.h), in partition order. */
static bool plan(const delta_snapshot_t *snap, uint64_t target, uint64_t min_size, double dv_min_deleted, bin_t **out,
                 int *nout, m2d_error_t *err) {
  *out = NULL;
  *nout = 0;
  /* the candidates of each partition */
  json_t *groups = json_object(); /* partition values (canonical JSON) -> array of candidate adds */
  size_t i;
  json_t *add;
  json_array_foreach(snap->files, i, add) {
    bool dv = json_is_object(json_object_get(add, "deletionVector"));
    json_int_t size = json_integer_value(json_object_get(add, "size"));
    if (dv && dv_min_deleted > 0) { /* only files with enough rows deleted are worth rewriting */
      int64_t recs = delta_stats_num_records(add);
      json_int_t gone = json_integer_value(json_object_get(json_object_get(add, "deletionVector"), "cardinality"));
      dv = recs <= 0 || (double)gone >= dv_min_deleted * (double)recs;
    }
    if (!dv && (uint64_t)size >= min_size) continue;
    json_t *pv = json_object_get(add, "partitionValues");
    char *key = json_is_object(pv) ? json_dumps(pv, JSON_COMPACT | JSON_SORT_KEYS) : strdup("{}");
    if (!key) {
      json_decref(groups);
      return m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory");
    }
    json_t *arr = json_object_get(groups, key);
    if (!arr) json_object_set_new(groups, key, arr = json_array());
    json_array_append(arr, add);
    free(key);
  }
  bin_t *bins = NULL;
  int nbins = 0, cap = 0;
  const char *key;
  json_t *arr;
  bool ok = true;
  json_object_foreach(groups, key, arr) {
    size_t n = json_array_size(arr);
    cand_t *c = calloc(n + 1, sizeof *c);
    if (!c) {
      ok = m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory");
      break;
    }
    json_array_foreach(arr, i, add) {
      c[i].add = add;
      c[i].path = json_string_value(json_object_get(add, "path")) ?: "";
      c[i].mtime = json_integer_value(json_object_get(add, "modificationTime"));
      uint64_t size = (uint64_t)json_integer_value(json_object_get(add, "size"));
      json_t *dvd = json_object_get(add, "deletionVector");
      c[i].dv = json_is_object(dvd);
      int64_t recs = delta_stats_num_records(add);
      int64_t deleted = c[i].dv ? (int64_t)json_integer_value(json_object_get(dvd, "cardinality")) : 0;
      c[i].rows = recs >= 0 ? (recs > deleted ? recs - deleted : 0) : -1;
      c[i].live = size;
      if (c[i].dv && recs > 0) c[i].live = (uint64_t)((double)size * (double)c[i].rows / (double)recs);
    }
    qsort(c, n, sizeof *c, cmp_cands);
    char where[1024];
    describe_partition(json_object_get(c[0].add, "partitionValues"), where, sizeof where);
    /* next fit, oldest first: a bin is closed when the next file would take it past the target */
    size_t start = 0;
    while (ok && start < n) {
      size_t end = start;
      uint64_t bytes = 0;
      int dvs = 0;
      int64_t rows = 0;
      while (end < n && (end == start || bytes + c[end].live <= target)) {
        bytes += c[end].live;
        dvs += c[end].dv;
        rows = rows < 0 || c[end].rows < 0 ? -1 : rows + c[end].rows;
        end++;
      }
      if (end - start >= 2 || dvs > 0) {
        if (nbins == cap) {
          cap = cap ? cap * 2 : 16;
          bin_t *nb = realloc(bins, (size_t)cap * sizeof *nb);
          if (!nb) {
            ok = m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory");
            break;
          }
          bins = nb;
        }
        bin_t *b = &bins[nbins++];
        memset(b, 0, sizeof *b);
        snprintf(b->where, sizeof b->where, "%s", where);
        b->files = json_array();
        for (size_t k = start; k < end; k++) json_array_append(b->files, c[k].add);
        b->bytes = bytes;
        b->rows = rows;
        b->dvs = dvs;
      }
      start = end;
    }
    free(c);
    if (!ok) break;
  }
  json_decref(groups);
  if (!ok) {
    free_bins(bins, nbins);
    return false;
  }
  *out = bins;
  *nout = nbins;
  return true;
}

/* --- rewriting ------------------------------------------------------------------------------ */

/* Rows as they stream from the scan, as documents: each one hashed (an order-free sum of 64-bit
 * hashes of its BSON bytes, to compare the rows of a bin with those of its new files) and, when
 * writing, handed to the table writer. */
typedef struct {
  m2d_table_writer_t *w; /* NULL: only hash */
  const json_t *schema;
  uint64_t hash;
  int64_t rows, rescued;
  volatile sig_atomic_t *stop;
  bool stopped, failed;
  m2d_error_t *err;
  m2d_progress_t *line; /* rows rewritten (NULL: reading back) */
} rows_t;

static uint64_t row_hash(const char *s, size_t n) {
  uint64_t h = 1469598103934665603ull; /* FNV-1a */
  for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 1099511628211ull;
  h ^= h >> 30; /* then a 64-bit finalizer, so that sums of hashes mix well */
  h *= 0xbf58476d1ce4e5b9ull;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebull;
  return h ^ (h >> 31);
}

static bool on_row(const bson_t *doc, const m2d_error_t *row_err, size_t file, uint64_t row, void *ud) {
  (void)file, (void)row;
  rows_t *r = ud;
  if (r->stop && *r->stop) {
    r->stopped = true;
    return false;
  }
  if (!doc) {
    if (r->err) *r->err = *row_err;
    r->failed = true;
    return false;
  }
  r->hash += row_hash((const char *)bson_get_data(doc), doc->len);
  r->rows++;
  if (!r->w) return true;
  if (r->line) m2d_progress_add(r->line, 1, 0);
  bool ok = m2d_table_writer_add(r->w, doc, &r->rescued, r->err);
  if (!ok) r->failed = true;
  return ok;
}

static bool scan_files(m2d_store_t *store, const delta_snapshot_t *snap, json_t *files, rows_t *r, m2d_error_t *err) {
  delta_snapshot_t fs = *snap;
  fs.files = files;
  return m2d_scan_documents(store, &fs, NULL, on_row, r, err) && !r->failed;
}

/* Writes one bin into new files, checks them, and records the removal of its files. */
static bool rewrite_bin(m2d_table_writer_t *w, const delta_snapshot_t *snap, const json_t *schema, const bin_t *b,
                        volatile sig_atomic_t *stop, int64_t *rows, bool *stopped, m2d_progress_t *line,
                        m2d_error_t *err) {
  m2d_store_t *store = m2d_table_writer_store(w);
  size_t before = json_array_size(m2d_table_writer_batch_adds(w));
  rows_t src = {.w = w, .schema = schema, .stop = stop, .err = err, .line = line};
  if (!scan_files(store, snap, b->files, &src, err)) {
    *stopped = src.stopped;
    return src.stopped; /* a stop is not an error: the caller abandons the batch */
  }
  if (src.stopped) return *stopped = true;
  if (!m2d_table_writer_close_files(w, err)) return false;
  /* the new files, read back, must hold the same rows */
  const json_t *adds = m2d_table_writer_batch_adds(w);
  json_t *mine = json_array();
  for (size_t k = before; k < json_array_size(adds); k++)
    json_array_append(mine, json_object_get(json_array_get(adds, k), "add"));
  rows_t back = {.schema = schema, .err = err};
  bool ok = scan_files(store, snap, mine, &back, err);
  json_decref(mine);
  if (!ok) return m2d_error_prefix(err, "reading back the files written for %s: ", b->where);
  if (back.rows != src.rows || back.hash != src.hash) {
    const char *first = json_string_value(json_object_get(json_array_get(b->files, 0), "path"));
    return m2d_error_set(err, M2D_ERR_FORMAT, 0,
                         "%s: the rows of %zu file(s) (%s...) would not read back the same after the rewrite "
                         "(%lld rows read, %lld read back%s); the table holds a value mongo2delta cannot write "
                         "exactly (e.g. a timestamp with microseconds, or a type it maps differently); nothing "
                         "was committed",
                         b->where, json_array_size(b->files), first ? first : "?", (long long)src.rows,
                         (long long)back.rows, back.rows == src.rows ? ", with different values" : "");
  }
  size_t i;
  json_t *add;
  json_array_foreach(b->files, i, add) if (!m2d_table_writer_remove_file(w, add, err)) return false;
  *rows += src.rows;
  m2d_debug("optimize: %s: %zu file(s), %d with a deletion vector, %lld rows -> %zu new file(s)", b->where,
            json_array_size(b->files), b->dvs, (long long)src.rows, json_array_size(adds) - before);
  return true;
}

static void summary_init(m2d_optimize_summary_t *s) {
  memset(s, 0, sizeof *s);
  s->version = -1;
  s->removed_paths = json_array();
  s->added = json_array();
}

void m2d_optimize_summary_free(m2d_optimize_summary_t *s) {
  if (!s) return;
  json_decref(s->removed_paths);
  json_decref(s->added);
  s->removed_paths = s->added = NULL;
}

bool m2d_optimize_with_writer(m2d_table_writer_t *w, const m2d_optimize_options_t *o, m2d_optimize_summary_t *s,
                              m2d_error_t *err) {
  summary_init(s);
  uint64_t target = o->target_file_size ? o->target_file_size : DEFAULT_TARGET;
  uint64_t min_size = o->min_file_size ? o->min_file_size : target / 4;
  if (m2d_table_writer_in_batch(w))
    return m2d_error_set(err, M2D_ERR_INTERNAL, 0, "optimize needs a table writer without a batch in hand");
  m2d_store_t *store = m2d_table_writer_store(w);
  s->version = m2d_table_writer_version(w);
  if (s->version < 0)
    return m2d_error_set(err, M2D_ERR_USAGE, 0, "%s is not a Delta table (no _delta_log with commits); check the path",
                         store->root);
  delta_snapshot_t snap;
  if (!delta_snapshot_load(store, s->version, &snap, err)) return false;
  bin_t *bins = NULL;
  int nbins = 0;
  json_t *schema = NULL;
  bool ok = plan(&snap, target, min_size, o->dv_min_deleted, &bins, &nbins, err);
  /* what the plan removes, counted alike for a dry run and a real one */
  char last_where[1024] = "";
  for (int b = 0; ok && b < nbins; b++) {
    size_t i;
    json_t *add;
    json_array_foreach(bins[b].files, i, add) {
      json_array_append(s->removed_paths, json_object_get(add, "path"));
      s->bytes_removed += json_integer_value(json_object_get(add, "size"));
    }
    s->files_removed += (int64_t)json_array_size(bins[b].files);
    s->dvs_folded += bins[b].dvs;
    if (strcmp(last_where, bins[b].where) != 0) s->partitions++;
    snprintf(last_where, sizeof last_where, "%s", bins[b].where);
  }
  if (ok && (o->dry_run || nbins == 0)) {
    for (int b = 0; b < nbins; b++) {
      s->files_added += bins[b].bytes ? (int64_t)((bins[b].bytes + target - 1) / target) : 0;
      s->rows = s->rows < 0 || bins[b].rows < 0 ? -1 : s->rows + bins[b].rows;
    }
    free_bins(bins, nbins);
    delta_snapshot_free(&snap);
    return true;
  }
  if (ok) {
    const char *ss = json_string_value(json_object_get(snap.metadata, "schemaString"));
    schema = ss ? json_loads(ss, 0, NULL) : NULL;
    if (!schema) ok = m2d_error_set(err, M2D_ERR_FORMAT, 0, "%s: the table's schema is not readable", store->root);
  }
  ok = ok && m2d_table_writer_begin(w, m2d_table_writer_schema(w), err) &&
       m2d_table_writer_rearrange(w, "OPTIMIZE", target, err);
  bool stopped = false;
  m2d_progress_t line;
  int64_t planned = 0;
  for (int b = 0; b < nbins && planned >= 0; b++) planned = bins[b].rows < 0 ? -1 : planned + bins[b].rows;
  m2d_progress_begin(&line, "rows", planned > 0 ? planned : 0, "optimize %s", store->root);
  for (int b = 0; ok && !stopped && b < nbins; b++) {
    snprintf(line.extra, sizeof line.extra, "bin %d of %d (%zu files)", b + 1, nbins, json_array_size(bins[b].files));
    ok = rewrite_bin(w, &snap, schema, &bins[b], o->stop, &s->rows, &stopped, &line, err);
  }
  snprintf(line.extra, sizeof line.extra, "%d bin(s)%s", nbins, !ok ? ", failed" : stopped ? ", interrupted" : "");
  m2d_progress_end(&line);
  if (ok && stopped) {
    m2d_table_writer_abort(w);
    s->interrupted = true;
    s->rows = 0;
  } else if (ok) {
    json_t *info = json_pack("{s{sIsI}}", "optimize", "targetFileSize", (json_int_t)target, "minFileSize",
                             (json_int_t)min_size);
    int64_t version;
    ok = m2d_table_writer_commit(w, NULL, 0, info, &version, err);
    if (ok) {
      s->version = version;
      size_t i;
      json_t *a;
      json_array_foreach((json_t *)m2d_table_writer_last_adds(w), i, a) {
        json_t *inner = json_object_get(a, "add");
        json_array_append(s->added, inner);
        s->bytes_added += json_integer_value(json_object_get(inner, "size"));
      }
      s->files_added = (int64_t)json_array_size(s->added);
    }
  }
  if (!ok) m2d_table_writer_abort(w);
  json_decref(schema);
  free_bins(bins, nbins);
  delta_snapshot_free(&snap);
  return ok;
}

bool m2d_optimize_run(const m2d_optimize_options_t *o, m2d_optimize_summary_t *s, m2d_error_t *err) {
  m2d_table_writer_options_t wo = {.table = o->table, .codec = o->codec, .level = o->level,
                                   .target_file_size = o->target_file_size ? o->target_file_size : DEFAULT_TARGET,
                                   .operation = "OPTIMIZE"};
  m2d_table_writer_t *w = m2d_table_writer_open(&wo, err);
  if (!w) {
    summary_init(s);
    return false;
  }
  bool ok = m2d_optimize_with_writer(w, o, s, err);
  m2d_table_writer_destroy(w);
  return ok;
}
