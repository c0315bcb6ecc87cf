#include "pipeline/load.h"

#include "core/log.h"
#include "core/progress.h"
#include "mongo/export_reader.h"
#include "pipeline/table_writer.h"
#include "schema/infer.h"
#include "storage/store.h"

#include <dirent.h>
#include <jansson.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define APP_PREFIX "mongo2delta-load:"

/* A file to load: its name in the log (an absolute path or a URL), size and modification time. */
typedef struct {
  char *path;
  char *key; /* relative to its input (for the next listing's start point) */
  int input; /* which --input it came from */
  uint64_t size;
  int64_t mtime_ms;
} file_t;

typedef struct {
  file_t *v;
  size_t n, cap;
} files_t;

static bool files_add(files_t *l, const char *path, const char *key, uint64_t size, int64_t mtime, m2d_error_t *err) {
  if (l->n == l->cap) {
    size_t cap = l->cap ? l->cap * 2 : 64;
    file_t *nv = realloc(l->v, cap * sizeof *nv);
    if (!nv) return m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory");
    l->v = nv;
    l->cap = cap;
  }
  file_t *f = &l->v[l->n];
  f->path = strdup(path);
  f->key = strdup(key);
  f->size = size;
  f->mtime_ms = mtime;
  if (!f->path || !f->key) {
    free(f->path);
    free(f->key);
    return m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory");
  }
  l->n++;
  return true;
}

static void files_free(files_t *l) {
  for (size_t i = 0; i < l->n; i++) free(l->v[i].path), free(l->v[i].key);
  free(l->v);
  *l = (files_t){0};
}

/* One --input as load follows it: where the last listing stopped. */
typedef struct {
  const char *input;
  char *last_key; /* the last file taken or found taken, relative to the input; NULL: none */
} input_t;

static const char *const UNSUPPORTED =
    "not an export file load reads (.bson, .bson.gz, .json, .jsonl, .ndjson, .json.gz)";

/* The export files of one input (a file, a folder walked recursively, an object store prefix or
 * object), in key order (as $out and mongodump name their files), only those after
 * in->last_key unless full. */
static bool collect(input_t *in, bool full, files_t *out, m2d_error_t *err) {
  const char *path = in->input;
  bool remote = m2d_store_is_remote(path);
  char root[PATH_MAX];
  if (!remote) {
    struct stat st;
    if (stat(path, &st) != 0)
      return m2d_error_set(err, M2D_ERR_USAGE, errno, "cannot read %s: %s", path, strerror(errno));
    if (!realpath(path, root)) return m2d_error_set(err, M2D_ERR_IO, errno, "%s: %s", path, strerror(errno));
    if (!S_ISDIR(st.st_mode)) {
      if (!m2d_export_is_supported(path)) return m2d_error_set(err, M2D_ERR_USAGE, 0, "%s: %s", path, UNSUPPORTED);
      return files_add(out, root, "", (uint64_t)st.st_size,
                       (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000, err);
    }
  }
  m2d_store_t *st = remote ? m2d_store_open(path, err) : m2d_store_local_new(root, err);
  if (!st) return false;
  m2d_store_entry_t *e = NULL;
  size_t n = 0, found = 0;
  bool ok = m2d_store_list_all(st, "", full ? NULL : in->last_key, &e, &n, err);
  for (size_t i = 0; ok && i < n; i++) {
    if (!m2d_export_is_supported(e[i].name)) continue; /* mongodump's metadata, other files */
    char full_path[PATH_MAX + 1100];
    snprintf(full_path, sizeof full_path, "%s/%s", st->root, e[i].name);
    ok = files_add(out, full_path, e[i].name, e[i].size, e[i].mtime_ms, err);
    found++;
  }
  m2d_store_entries_free(e, n);
  if (ok && remote && found == 0 && n == 0 && full && m2d_export_is_supported(path)) {
    /* not a prefix: one object */
    const char *slash = strrchr(path, '/');
    char parent[PATH_MAX];
    snprintf(parent, sizeof parent, "%.*s", (int)(slash - path), path);
    m2d_store_t *ps = m2d_store_open(parent, err);
    m2d_source_t *src = ps ? ps->open(ps, slash + 1, err) : NULL;
    ok = src && files_add(out, path, "", src->size, 0, err);
    m2d_source_destroy(src);
    m2d_store_destroy(ps);
  }
  m2d_store_destroy(st);
  return ok;
}

/* A copy of an object store file in a local temporary file (both passes read it; gzip and
 * BSON framing are the export reader's). *tmp gets the local path; the caller unlinks it. */
bool m2d_load_download(const char *url, char *tmp, size_t tmpsz, m2d_error_t *err) {
  const char *slash = strrchr(url, '/');
  char parent[PATH_MAX];
  snprintf(parent, sizeof parent, "%.*s", (int)(slash - url), url);
  const char *dir = getenv("TMPDIR");
  const char *ext = m2d_export_is_supported(slash + 1) ? strchr(slash + 1, '.') : "";
  snprintf(tmp, tmpsz, "%s/mongo2delta-load-%d-XXXXXX%s", dir && *dir ? dir : "/tmp", (int)getpid(), ext ? ext : "");
  int fd = mkstemps(tmp, ext ? (int)strlen(ext) : 0);
  if (fd < 0) return m2d_error_set(err, M2D_ERR_IO, errno, "cannot create a temporary file %s: %s", tmp, strerror(errno));
  m2d_store_t *st = m2d_store_open(parent, err);
  m2d_source_t *src = st ? st->open(st, slash + 1, err) : NULL;
  bool ok = src != NULL;
  enum { CHUNK = 8 << 20 };
  uint8_t *buf = ok ? malloc(CHUNK) : NULL;
  if (ok && !buf) ok = m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory");
  for (uint64_t off = 0; ok && off < src->size;) {
    size_t n = src->size - off < CHUNK ? (size_t)(src->size - off) : CHUNK;
    ok = m2d_source_read_at(src, off, n, buf, err);
    for (size_t w = 0; ok && w < n;) {
      ssize_t k = write(fd, buf + w, n - w);
      if (k < 0 && errno == EINTR) continue;
      if (k < 0) ok = m2d_error_set(err, M2D_ERR_IO, errno, "writing %s: %s", tmp, strerror(errno));
      else w += (size_t)k;
    }
    off += n;
  }
  free(buf);
  close(fd);
  m2d_source_destroy(src);
  m2d_store_destroy(st);
  if (!ok) unlink(tmp);
  return ok;
}

/* One bad record into the rejects file as a JSON line. */
static bool reject(FILE *rej, const m2d_export_reader_t *r, const char *file, const m2d_error_t *why,
                   m2d_error_t *err) {
  size_t len;
  const uint8_t *raw = m2d_export_reader_raw(r, &len);
  json_t *o = json_pack("{ssss}", "file", file, "error", why->message);
  if (m2d_export_reader_format(r) == M2D_EXPORT_JSON) {
    json_t *s = json_stringn((const char *)raw, len);
    json_object_set_new(o, "line", s ? s : json_string("(not valid UTF-8)"));
  } else {
    /* raw BSON as hex, so the record can be inspected and repaired */
    char *hex = malloc(len * 2 + 1);
    if (hex) {
      for (size_t i = 0; i < len; i++) snprintf(hex + 2 * i, 3, "%02x", raw[i]);
      hex[len * 2] = 0;
      json_object_set_new(o, "bson_hex", json_string(hex));
      free(hex);
    }
  }
  char *line = json_dumps(o, JSON_COMPACT);
  json_decref(o);
  bool ok = line && fprintf(rej, "%s\n", line) >= 0;
  free(line);
  if (!ok) return m2d_error_set(err, M2D_ERR_IO, errno, "cannot write the rejects file: %s", strerror(errno));
  return true;
}

/* Every record of the file: documents to on_doc, bad records to on_bad (which may set them
 * aside, or fail); a record that ends the file fails. */
typedef bool (*doc_fn)(void *ud, const bson_t *doc, const m2d_export_reader_t *r, m2d_error_t *err);
typedef bool (*bad_fn)(void *ud, const m2d_export_reader_t *r, const m2d_error_t *why, m2d_error_t *err);

/* trust_end: a BSON file whose documents up to this offset were all valid on the first pass
 * (0: validate); *end (may be NULL): the offset reached. */
static bool each_record(const char *local, const char *path, doc_fn on_doc, bad_fn on_bad, void *ud,
                        uint64_t trust_end, uint64_t *end, m2d_error_t *err) {
  m2d_export_reader_t *r = m2d_export_reader_open_named(local, path, err);
  if (!r) return false;
  if (trust_end) m2d_export_reader_trust(r, trust_end);
  bool ok = true;
  for (;;) {
    const bson_t *doc;
    m2d_error_t rec_err = {0};
    m2d_rec_status_t st = m2d_export_reader_next(r, &doc, &rec_err);
    if (st == M2D_REC_EOF) break;
    if (st == M2D_REC_OK) ok = on_doc(ud, doc, r, err);
    else if (st == M2D_REC_BAD) ok = on_bad(ud, r, &rec_err, err);
    else ok = err ? (*err = rec_err, false) : false;
    if (!ok) break;
  }
  if (end) *end = m2d_export_reader_offset(r);
  m2d_export_reader_close(r);
  return ok;
}

typedef struct {
  const char *path;
  FILE *rejects;
  m2d_infer_t *inf;
  m2d_table_writer_t *tw;
  int64_t rejected, docs, rescued;
  m2d_progress_t *line;
} file_pass_t;

/* Pass 1: the schema of every document of the file; bad records set aside (or the file fails). */
static bool learn_doc(void *ud, const bson_t *doc, const m2d_export_reader_t *r, m2d_error_t *err) {
  (void)r;
  return m2d_infer_observe(((file_pass_t *)ud)->inf, doc, err);
}

static bool learn_bad(void *ud, const m2d_export_reader_t *r, const m2d_error_t *why, m2d_error_t *err) {
  file_pass_t *f = ud;
  if (f->rejects) {
    f->rejected++;
    return reject(f->rejects, r, f->path, why, err);
  }
  if (err) *err = *why;
  return m2d_error_prefix(err, "nothing of this file was committed (--rejects FILE sets bad records aside): ");
}

/* Pass 2: the documents into the table's files (bad records were dealt with by pass 1). */
static bool write_doc(void *ud, const bson_t *doc, const m2d_export_reader_t *r, m2d_error_t *err) {
  file_pass_t *f = ud;
  if (!m2d_table_writer_add(f->tw, doc, &f->rescued, err))
    return m2d_error_prefix(err, "%s, byte %llu: ", f->path, (unsigned long long)m2d_export_reader_offset(r));
  f->docs++;
  m2d_progress_add(f->line, 1, 0);
  return true;
}

static bool skip_bad(void *ud, const m2d_export_reader_t *r, const m2d_error_t *why, m2d_error_t *err) {
  (void)ud, (void)r, (void)why, (void)err;
  return true;
}

bool m2d_load_sleep_ms(int64_t ms, volatile sig_atomic_t *stop) {
  while (ms > 0 && !(stop && *stop)) {
    int64_t step = ms < 100 ? ms : 100;
    struct timespec ts = {0, (long)step * 1000000L};
    nanosleep(&ts, NULL);
    ms -= step;
  }
  return !(stop && *stop);
}

/* One file into one commit. */
static bool load_file(const m2d_load_options_t *o, m2d_table_writer_t *tw, FILE *rej, const file_t *file,
                      const char *app, m2d_load_summary_t *sum, m2d_progress_t *line, m2d_error_t *err) {
  const char *path = file->path;
  char local[PATH_MAX];
  bool remote = m2d_store_is_remote(path);
  if (remote && !m2d_load_download(path, local, sizeof local, err)) return false;
  if (!remote) snprintf(local, sizeof local, "%s", path);
  file_pass_t f = {.path = path, .rejects = rej, .inf = m2d_infer_new(NULL), .tw = tw, .line = line};
  m2d_infer_t *inf = f.inf;
  uint64_t end = 0;
  bool ok = inf && each_record(local, path, learn_doc, learn_bad, &f, 0, &end, err);
  ok = ok && m2d_table_writer_begin(tw, m2d_infer_schema(inf), err);
  /* with no bad record, the second pass need not validate the same bytes again */
  ok = ok && each_record(local, path, write_doc, skip_bad, &f, f.rejected ? 0 : end, NULL, err);
  if (remote) unlink(local);
  if (ok && rej && fflush(rej) != 0)
    ok = m2d_error_set(err, M2D_ERR_IO, errno, "cannot write the rejects file: %s", strerror(errno));
  int64_t version = -1;
  if (ok) {
    json_t *info = json_pack("{sssIsI}", "source", path, "documents", (json_int_t)f.docs, "sourceBytes",
                             (json_int_t)file->size);
    ok = m2d_table_writer_commit(tw, app, 0, info, &version, err);
    if (!ok && err && err->domain == M2D_ERR_CONFLICT) m2d_error_prefix(err, "%s: ", path);
  } else {
    m2d_table_writer_abort(tw);
  }
  m2d_infer_destroy(inf);
  (void)o;
  if (!ok) return false;
  m2d_table_writer_stats_t st = m2d_table_writer_last(tw);
  sum->files_taken++;
  m2d_progress_add(line, 0, (int64_t)file->size);
  sum->documents += f.docs;
  sum->rescued += f.rescued;
  sum->rejected += f.rejected;
  sum->data_files += st.files;
  sum->bytes += st.bytes;
  m2d_info("%s: %lld documents%s in %lld file(s), committed as version %lld", path, (long long)f.docs,
           f.rescued ? " (some values rescued)" : "", (long long)st.files, (long long)version);
  return true;
}

bool m2d_load_run(const m2d_load_options_t *o, m2d_load_summary_t *sum, m2d_error_t *err) {
  if (o->format == M2D_LOAD_KAFKA_CONNECT_JSON) return m2d_load_connect_run(o, sum, err);
  memset(sum, 0, sizeof *sum);
  bool ok = true;
  input_t *inputs = calloc((size_t)o->ninputs + 1, sizeof *inputs);
  if (!inputs) return m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory");
  for (int i = 0; i < o->ninputs; i++) inputs[i].input = o->inputs[i];
  FILE *rej = NULL;
  if (o->rejects && !(rej = fopen(o->rejects, "a")))
    ok = m2d_error_set(err, M2D_ERR_IO, errno, "cannot open the rejects file %s: %s", o->rejects, strerror(errno));
  m2d_table_writer_options_t topts = {.table = o->table, .codec = o->codec, .level = o->level,
                                      .target_file_size = o->target_file_size, .partition_by = o->partition_by,
                                      .validated = true /* by the export reader */,
                                      .background_encode = true};
  m2d_table_writer_t *tw = ok ? m2d_table_writer_open(&topts, err) : NULL;
  ok = ok && tw;
  /* what each file looked like when it was taken (or first seen taken): a later listing that
   * finds it changed reports it, once, instead of loading it twice */
  json_t *seen = json_object(), *reported = json_object();
  m2d_progress_t line;
  m2d_progress_begin(&line, "documents", 0, "load into %s", o->table);
  int full_every = o->full_listing_every > 0 ? o->full_listing_every : 1;
  for (int64_t round = 0; ok; round++) {
    bool full = round % full_every == 0;
    files_t files = {0};
    for (int i = 0; ok && i < o->ninputs; i++) {
      size_t before = files.n;
      ok = collect(&inputs[i], full, &files, err);
      if (ok && files.n == before && round == 0 && !o->watch && !inputs[i].last_key && m2d_store_is_remote(inputs[i].input))
        ok = m2d_error_set(err, M2D_ERR_USAGE, 0, "%s: no export files (.bson, .bson.gz, .json, .jsonl, .ndjson, "
                                                  ".json.gz) under this prefix",
                           inputs[i].input);
      for (size_t k = before; k < files.n; k++) files.v[k].input = i;
    }
    if (ok && round == 0 && files.n == 0 && !o->watch)
      ok = m2d_error_set(err, M2D_ERR_USAGE, 0, "no export files (.bson, .bson.gz, .json, .jsonl, .ndjson) in the input");
    int taken = 0;
    for (size_t i = 0; ok && i < files.n; i++) {
      if (o->stop && *o->stop) break;
      const file_t *f = &files.v[i];
      int which = f->input;
      const char *key = f->key;
      char app[PATH_MAX + 1200];
      snprintf(app, sizeof app, APP_PREFIX "%s", f->path);
      char shape[64];
      snprintf(shape, sizeof shape, "%llu/%lld", (unsigned long long)f->size, (long long)f->mtime_ms);
      if (m2d_table_writer_app_version(tw, app) >= 0) {
        const char *was = json_string_value(json_object_get(seen, f->path));
        if (!was) {
          json_object_set_new(seen, f->path, json_string(shape));
          if (round == 0) {
            m2d_info("%s: already loaded, skipped", f->path);
            sum->files_skipped++;
          }
        } else if (strcmp(was, shape) != 0 && !json_object_get(reported, f->path)) {
          m2d_warn("%s changed after it was loaded (size/modified %s, now %s); it is not loaded again: give the new "
                   "content a new name to load it",
                   f->path, was, shape);
          json_object_set_new(reported, f->path, json_true());
          sum->files_changed++;
        }
      } else {
        if (o->max_files_per_batch > 0 && taken >= o->max_files_per_batch) break;
        snprintf(line.extra, sizeof line.extra, "file %zu of %zu", i + 1, files.n);
        if (!load_file(o, tw, rej, f, app, sum, &line, err)) {
          ok = false;
          break;
        }
        json_object_set_new(seen, f->path, json_string(shape));
        taken++;
      }
      /* the next listing of this input starts after the last key dealt with */
      if (key[0] && (!inputs[which].last_key || strcmp(key, inputs[which].last_key) > 0)) {
        free(inputs[which].last_key);
        inputs[which].last_key = strdup(key);
      }
    }
    files_free(&files);
    if (ok && o->watch && taken) m2d_info("load --watch: %d new file(s) loaded, table version %lld", taken,
                                          (long long)m2d_table_writer_version(tw));
    sum->rounds++;
    if (!ok || !o->watch || (o->stop && *o->stop)) break;
    if (o->max_rounds > 0 && round + 1 >= o->max_rounds) break;
    /* a full batch: more may be waiting, list again now */
    if (!(o->max_files_per_batch > 0 && taken >= o->max_files_per_batch) && !m2d_load_sleep_ms(o->interval_ms, o->stop)) break;
  }
  snprintf(line.extra, sizeof line.extra, "%lld file(s) loaded, %lld skipped", (long long)sum->files_taken,
           (long long)sum->files_skipped);
  m2d_progress_end(&line);
  sum->interrupted = o->stop && *o->stop;
  sum->version = tw ? m2d_table_writer_version(tw) : -1;
  sum->rescued_fields = tw ? json_deep_copy(m2d_table_writer_rescued_fields(tw)) : json_object();
  m2d_table_writer_destroy(tw);
  json_decref(seen);
  json_decref(reported);
  if (rej) fclose(rej);
  for (int i = 0; i < o->ninputs; i++) free(inputs[i].last_key);
  free(inputs);
  return ok;
}
