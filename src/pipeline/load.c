#include "pipeline/load.h"

#include "core/log.h"
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
#include <unistd.h>

#define APP_PREFIX "mongo2delta-load:"

typedef struct {
  char **paths;
  size_t n, cap;
} list_t;

static bool list_add(list_t *l, const char *p, m2d_error_t *err) {
  if (l->n == l->cap) {
    size_t cap = l->cap ? l->cap * 2 : 64;
    char **np = realloc(l->paths, cap * sizeof *np);
    if (!np) return m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory");
    l->paths = np;
    l->cap = cap;
  }
  if (!(l->paths[l->n] = strdup(p))) return m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory");
  l->n++;
  return true;
}

static void list_free(list_t *l) {
  for (size_t i = 0; i < l->n; i++) free(l->paths[i]);
  free(l->paths);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* An object store input: every export file under url (a prefix, walked recursively, or one
 * object), as full URLs in lexical order (as $out and mongodump name their files). */
static bool collect_remote(const char *url, list_t *out, m2d_error_t *err) {
  m2d_store_t *st = m2d_store_open(url, err);
  if (!st) return false;
  list_t dirs = {0};
  bool ok = list_add(&dirs, "", err);
  size_t found = 0, before = out->n;
  for (size_t d = 0; ok && d < dirs.n; d++) {
    m2d_store_entry_t *e = NULL;
    size_t n = 0;
    ok = st->list(st, dirs.paths[d], &e, &n, err);
    for (size_t i = 0; ok && i < n; i++) {
      char key[PATH_MAX];
      snprintf(key, sizeof key, "%s%s%s", dirs.paths[d], dirs.paths[d][0] ? "/" : "", e[i].name);
      if (e[i].is_dir) {
        ok = list_add(&dirs, key, err);
      } else if (m2d_export_is_supported(key)) {
        char full[PATH_MAX + 1100];
        snprintf(full, sizeof full, "%s/%s", st->root, key);
        ok = list_add(out, full, err);
        found++;
      }
    }
    m2d_store_entries_free(e, n);
  }
  list_free(&dirs);
  if (ok && found == 0 && m2d_export_is_supported(url)) {
    /* not a prefix: one object */
    m2d_source_t *src = NULL;
    const char *slash = strrchr(url, '/');
    char parent[PATH_MAX];
    snprintf(parent, sizeof parent, "%.*s", (int)(slash - url), url);
    m2d_store_t *ps = m2d_store_open(parent, err);
    ok = ps && (src = ps->open(ps, slash + 1, err)) && list_add(out, url, err);
    m2d_source_destroy(src);
    m2d_store_destroy(ps);
  }
  m2d_store_destroy(st);
  if (ok && out->n > before) qsort(out->paths + before, out->n - before, sizeof *out->paths, cmp_str);
  return ok;
}

/* The export files under path (a file or a folder, recursively), as absolute paths. */
static bool collect(const char *path, bool top, list_t *out, m2d_error_t *err) {
  if (m2d_store_is_remote(path)) {
    size_t before = out->n;
    if (!collect_remote(path, out, err)) return false;
    if (out->n == before)
      return m2d_error_set(err, M2D_ERR_USAGE, 0,
                           "%s: no export files (.bson, .bson.gz, .json, .jsonl, .ndjson, .json.gz) under this "
                           "prefix",
                           path);
    return true;
  }
  struct stat st;
  if (stat(path, &st) != 0)
    return m2d_error_set(err, top ? M2D_ERR_USAGE : M2D_ERR_IO, errno, "cannot read %s: %s", path, strerror(errno));
  if (S_ISDIR(st.st_mode)) {
    DIR *d = opendir(path);
    if (!d) return m2d_error_set(err, M2D_ERR_IO, errno, "cannot list %s: %s", path, strerror(errno));
    list_t names = {0};
    struct dirent *e;
    bool ok = true;
    while (ok && (e = readdir(d))) {
      if (e->d_name[0] == '.') continue;
      char child[PATH_MAX];
      if (snprintf(child, sizeof child, "%s/%s", path, e->d_name) >= (int)sizeof child) continue;
      ok = list_add(&names, child, err);
    }
    closedir(d);
    if (names.n) qsort(names.paths, names.n, sizeof *names.paths, cmp_str);
    for (size_t i = 0; ok && i < names.n; i++) ok = collect(names.paths[i], false, out, err);
    list_free(&names);
    return ok;
  }
  if (!m2d_export_is_supported(path)) {
    if (top)
      return m2d_error_set(err, M2D_ERR_USAGE, 0,
                           "%s: not an export file load reads (.bson, .bson.gz, .json, .jsonl, .ndjson, "
                           ".json.gz)",
                           path);
    return true; /* other files in a folder (mongodump's metadata) are not ours */
  }
  char abs[PATH_MAX];
  if (!realpath(path, abs)) return m2d_error_set(err, M2D_ERR_IO, errno, "%s: %s", path, strerror(errno));
  return list_add(out, abs, err);
}

/* A copy of an object store file in a local temporary file (both passes read it; gzip and
 * BSON framing are the export reader's). *tmp gets the local path; the caller unlinks it. */
static bool download(const char *url, char *tmp, size_t tmpsz, m2d_error_t *err) {
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

static bool each_record(const char *local, const char *path, doc_fn on_doc, bad_fn on_bad, void *ud,
                        m2d_error_t *err) {
  m2d_export_reader_t *r = m2d_export_reader_open_named(local, path, err);
  if (!r) return false;
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
  m2d_export_reader_close(r);
  return ok;
}

typedef struct {
  const char *path;
  FILE *rejects;
  m2d_infer_t *inf;
  m2d_table_writer_t *tw;
  int64_t rejected, docs, rescued;
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
  return true;
}

static bool skip_bad(void *ud, const m2d_export_reader_t *r, const m2d_error_t *why, m2d_error_t *err) {
  (void)ud, (void)r, (void)why, (void)err;
  return true;
}

bool m2d_load_run(const m2d_load_options_t *o, m2d_load_summary_t *sum, m2d_error_t *err) {
  memset(sum, 0, sizeof *sum);
  list_t files = {0};
  bool ok = true;
  for (int i = 0; ok && i < o->ninputs; i++) ok = collect(o->inputs[i], true, &files, err);
  if (ok && files.n == 0)
    ok = m2d_error_set(err, M2D_ERR_USAGE, 0, "no export files (.bson, .bson.gz, .json, .jsonl, .ndjson) in the input");
  FILE *rej = NULL;
  if (ok && o->rejects && !(rej = fopen(o->rejects, "a")))
    ok = m2d_error_set(err, M2D_ERR_IO, errno, "cannot open the rejects file %s: %s", o->rejects, strerror(errno));
  m2d_table_writer_options_t topts = {.table = o->table, .codec = o->codec, .level = o->level,
                                      .target_file_size = o->target_file_size, .partition_by = o->partition_by};
  m2d_table_writer_t *tw = ok ? m2d_table_writer_open(&topts, err) : NULL;
  ok = ok && tw;
  for (size_t i = 0; ok && i < files.n; i++) {
    const char *path = files.paths[i];
    char app[PATH_MAX + 32];
    snprintf(app, sizeof app, APP_PREFIX "%s", path);
    if (m2d_table_writer_app_version(tw, app) >= 0) {
      m2d_info("%s: already loaded, skipped", path);
      sum->files_skipped++;
      continue;
    }
    char local[PATH_MAX];
    bool remote = m2d_store_is_remote(path);
    if (remote && !download(path, local, sizeof local, err)) {
      ok = false;
      break;
    }
    if (!remote) snprintf(local, sizeof local, "%s", path);
    file_pass_t f = {.path = path, .rejects = rej, .inf = m2d_infer_new(NULL), .tw = tw};
    m2d_infer_t *inf = f.inf;
    ok = inf && each_record(local, path, learn_doc, learn_bad, &f, err);
    ok = ok && m2d_table_writer_begin(tw, m2d_infer_schema(inf), err);
    ok = ok && each_record(local, path, write_doc, skip_bad, &f, err);
    if (remote) unlink(local);
    int64_t docs = f.docs, rescued = f.rescued, rejected = f.rejected;
    if (ok && rej && fflush(rej) != 0)
      ok = m2d_error_set(err, M2D_ERR_IO, errno, "cannot write the rejects file: %s", strerror(errno));
    int64_t version = -1;
    if (ok) {
      json_t *info = json_pack("{sssI}", "source", path, "documents", (json_int_t)docs);
      ok = m2d_table_writer_commit(tw, app, 0, info, &version, err);
      if (!ok && err && err->domain == M2D_ERR_CONFLICT)
        m2d_error_prefix(err, "%s: ", path);
    } else {
      m2d_table_writer_abort(tw);
    }
    m2d_infer_destroy(inf);
    if (!ok) break;
    m2d_table_writer_stats_t st = m2d_table_writer_last(tw);
    sum->files_taken++;
    sum->documents += docs;
    sum->rescued += rescued;
    sum->rejected += rejected;
    sum->data_files += st.files;
    sum->bytes += st.bytes;
    m2d_info("%s: %lld documents%s in %lld file(s), committed as version %lld", path, (long long)docs,
             rescued ? " (some values rescued)" : "", (long long)st.files, (long long)version);
  }
  sum->version = tw ? m2d_table_writer_version(tw) : -1;
  sum->rescued_fields = tw ? json_deep_copy(m2d_table_writer_rescued_fields(tw)) : json_object();
  m2d_table_writer_destroy(tw);
  if (rej) fclose(rej);
  list_free(&files);
  return ok;
}
