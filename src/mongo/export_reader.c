#include "mongo/export_reader.h"

#include "core/buf.h"
#include "core/text.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

/* A plain .bson file is mapped, its documents read in place (no copies); what was read is
 * dropped from the mapping every MAP_DROP bytes, so the process does not keep the file. */
#define MAP_DROP ((uint64_t)16 << 20)

#define MAX_BSON_DOC (16 * 1024 * 1024 + 16 * 1024) /* MongoDB's 16 MiB limit, plus headroom */
#define MAX_JSON_LINE (64 * 1024 * 1024)           /* Extended JSON of a 16 MiB document */

struct m2d_export_reader {
  gzFile gz; /* reads plain files too (transparent mode) */
  char *path;
  m2d_export_format_t format;
  uint64_t offset; /* of the next record */
  uint64_t line;   /* JSON: number of the last line read */
  m2d_buf_t raw;   /* last record's bytes */
  bson_t doc;
  bool have_doc;
  bool eof;
  uint64_t trusted_end; /* BSON: documents before this offset were validated already; stop there */
  bool trusted;
  const uint8_t *map; /* a plain .bson file mapped (gz unused), or NULL */
  uint64_t map_len, dropped;
  const uint8_t *cur; /* the last record's bytes (in raw or in map) */
  size_t cur_len;
};

static bool ends_with(const char *s, const char *suffix) {
  size_t n = strlen(s), m = strlen(suffix);
  return n >= m && strcmp(s + n - m, suffix) == 0;
}

static bool detect(const char *path, m2d_export_format_t *fmt) {
  static const char *bson[] = {".bson", ".bson.gz"};
  static const char *json[] = {".json", ".jsonl", ".ndjson", ".json.gz", ".jsonl.gz", ".ndjson.gz"};
  for (size_t i = 0; i < sizeof bson / sizeof *bson; i++)
    if (ends_with(path, bson[i])) return *fmt = M2D_EXPORT_BSON, true;
  for (size_t i = 0; i < sizeof json / sizeof *json; i++)
    if (ends_with(path, json[i])) return *fmt = M2D_EXPORT_JSON, true;
  return false;
}

bool m2d_export_is_supported(const char *path) {
  m2d_export_format_t f;
  return detect(path, &f) && !ends_with(path, ".metadata.json"); /* mongodump's index metadata */
}

m2d_export_reader_t *m2d_export_reader_open(const char *path, m2d_error_t *err) {
  return m2d_export_reader_open_named(path, path, err);
}

m2d_export_reader_t *m2d_export_reader_open_named(const char *local, const char *path, m2d_error_t *err) {
  m2d_export_format_t fmt;
  if (!detect(path, &fmt)) {
    m2d_error_set(err, M2D_ERR_USAGE, 0,
                  "%s: unknown export format; load reads .bson, .bson.gz (mongodump) and .json, .jsonl, "
                  ".ndjson, .json.gz (mongoexport JSON lines)",
                  path);
    return NULL;
  }
  const uint8_t *map = NULL;
  uint64_t map_len = 0;
  gzFile gz = NULL;
  if (fmt == M2D_EXPORT_BSON && !ends_with(path, ".gz")) {
    int fd = open(local, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0) {
      void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
      if (m != MAP_FAILED) {
        map = m;
        map_len = (uint64_t)st.st_size;
        madvise(m, (size_t)map_len, MADV_SEQUENTIAL);
      }
    }
    if (fd >= 0) close(fd);
  }
  if (!map) {
    gz = gzopen(local, "rb");
    if (!gz) {
      m2d_error_set(err, M2D_ERR_IO, errno, "cannot open %s: %s", path, strerror(errno ? errno : ENOMEM));
      return NULL;
    }
    gzbuffer(gz, 1 << 17);
  }
  /* bson_t members want 128-byte alignment */
  size_t size = (sizeof(m2d_export_reader_t) + 127) / 128 * 128;
  m2d_export_reader_t *r = aligned_alloc(128, size);
  if (r) memset(r, 0, size);
  if (!r || !(r->path = strdup(path))) {
    if (gz) gzclose(gz);
    if (map) munmap((void *)map, (size_t)map_len);
    free(r);
    m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory");
    return NULL;
  }
  r->gz = gz;
  r->map = map;
  r->map_len = map_len;
  r->format = fmt;
  m2d_buf_init(&r->raw, fmt == M2D_EXPORT_BSON ? MAX_BSON_DOC : MAX_JSON_LINE);
  return r;
}

void m2d_export_reader_close(m2d_export_reader_t *r) {
  if (!r) return;
  if (r->gz) gzclose(r->gz);
  if (r->map) munmap((void *)r->map, (size_t)r->map_len);
  if (r->have_doc) bson_destroy(&r->doc);
  m2d_buf_free(&r->raw);
  free(r->path);
  free(r);
}

/* Reads exactly n bytes; returns the number read (short only at end of file), -1 on error. */
static int64_t read_full(m2d_export_reader_t *r, void *p, size_t n, m2d_error_t *err) {
  size_t got = 0;
  while (got < n) {
    int k = gzread(r->gz, (uint8_t *)p + got, (unsigned)(n - got));
    if (k < 0) {
      int code;
      const char *msg = gzerror(r->gz, &code);
      m2d_error_set(err, M2D_ERR_IO, code, "%s: read error at byte %llu: %s (a corrupt .gz file?)", r->path,
                    (unsigned long long)(r->offset + got), msg);
      return -1;
    }
    if (k == 0) break;
    got += (size_t)k;
  }
  return (int64_t)got;
}

/* Whether every key and string of a document is UTF-8 (strings may hold NULs), as the BSON
 * spec's corpus requires of a decoder. bson_validate(BSON_VALIDATE_UTF8) of libbson 1.23 lets
 * a lone 0xE9 through, and invalid strings must not reach Parquet string columns (nor libbson's
 * Extended JSON writer, which gives up on them). *bad_at: the offset of the top-level element
 * holding the first invalid string. */
/* bson_utf8_validate, with a fast path for ASCII (most keys and strings): libbson decodes
 * character by character, which was the largest cost of reading a dump. */
static bool utf8_ok(const char *s, size_t len, bool allow_nul) {
  if (m2d_ascii(s, len) && (allow_nul || !memchr(s, 0, len))) return true;
  return bson_utf8_validate(s, len, allow_nul);
}

/* The walk also finds broken structure (a length that does not fit, an unknown type): then
 * it fails too, and the caller asks bson_validate what is wrong. */
static bool utf8_valid(bson_iter_t *it, int depth, size_t *bad_at) {
  bool more;
  while ((more = bson_iter_next(it))) {
    const char *key = bson_iter_key(it), *s = NULL;
    uint32_t len = 0;
    bool ok = utf8_ok(key, bson_iter_key_len(it), true); /* a key ends at its first NUL */
    bson_iter_t child;
    switch (bson_iter_type(it)) {
    case BSON_TYPE_UTF8: s = bson_iter_utf8(it, &len); break;
    case BSON_TYPE_CODE: s = bson_iter_code(it, &len); break;
    case BSON_TYPE_SYMBOL: s = bson_iter_symbol(it, &len); break;
    case BSON_TYPE_DBPOINTER: {
      const bson_oid_t *oid;
      bson_iter_dbpointer(it, &len, &s, &oid);
      break;
    }
    case BSON_TYPE_REGEX: {
      const char *options;
      s = bson_iter_regex(it, &options);
      len = (uint32_t)strlen(s);
      ok = ok && utf8_ok(options, strlen(options), false);
      break;
    }
    case BSON_TYPE_CODEWSCOPE: {
      uint32_t scope_len;
      const uint8_t *scope_data;
      bson_t scope;
      size_t ignored;
      s = bson_iter_codewscope(it, &len, &scope_len, &scope_data);
      ok = ok && depth < 200 && bson_init_static(&scope, scope_data, scope_len) && bson_iter_init(&child, &scope) &&
           utf8_valid(&child, depth + 1, &ignored);
      break;
    }
    case BSON_TYPE_DOCUMENT:
    case BSON_TYPE_ARRAY: {
      size_t ignored;
      ok = ok && depth < 200 && bson_iter_recurse(it, &child) && utf8_valid(&child, depth + 1, &ignored);
      break;
    }
    default: break;
    }
    if (ok && s) ok = utf8_ok(s, len, true);
    if (!ok) {
      *bad_at = bson_iter_offset(it);
      return false;
    }
  }
  if (!more && it->err_off) { /* bson_iter_next stopped on a corrupt element */
    *bad_at = it->err_off;
    return false;
  }
  return true;
}

static m2d_rec_status_t take_bson(m2d_export_reader_t *r, const uint8_t *data, uint32_t len, const bson_t **doc,
                                  m2d_error_t *err);

/* The next document of a mapped file in place: *data, *len; or EOF / FATAL as next_bson. */
static m2d_rec_status_t next_mapped(m2d_export_reader_t *r, const uint8_t **data, uint32_t *len, m2d_error_t *err) {
  uint64_t left = r->map_len - r->offset;
  if (left == 0) return M2D_REC_EOF;
  if (r->offset - r->dropped >= MAP_DROP) {
    uint64_t upto = r->offset & ~(uint64_t)(sysconf(_SC_PAGESIZE) - 1);
    madvise((void *)(r->map + r->dropped), (size_t)(upto - r->dropped), MADV_DONTNEED);
    r->dropped = upto;
  }
  const uint8_t *p = r->map + r->offset;
  if (left < 4) {
    m2d_error_set(err, M2D_ERR_FORMAT, 0, "%s: truncated document at byte %llu (the file ends inside it)", r->path,
                  (unsigned long long)r->offset);
    return M2D_REC_FATAL;
  }
  uint32_t n = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
  if (n < 5 || n > MAX_BSON_DOC) {
    m2d_error_set(err, M2D_ERR_FORMAT, 0,
                  "%s: invalid BSON at byte %llu: document length %u is %s; the rest of the file cannot be "
                  "read (is it really a mongodump .bson file?)",
                  r->path, (unsigned long long)r->offset, n, n < 5 ? "too small" : "over the 16 MiB limit");
    return M2D_REC_FATAL;
  }
  if (left < n) {
    r->cur = p;
    r->cur_len = (size_t)left;
    m2d_error_set(err, M2D_ERR_FORMAT, 0, "%s: truncated document at byte %llu: %u bytes announced, %zu present",
                  r->path, (unsigned long long)r->offset, n, (size_t)left);
    r->offset += left;
    return M2D_REC_FATAL;
  }
  *data = p;
  *len = n;
  return M2D_REC_OK;
}

static m2d_rec_status_t next_bson(m2d_export_reader_t *r, const bson_t **doc, m2d_error_t *err) {
  if (r->trusted && r->offset >= r->trusted_end) return M2D_REC_EOF;
  if (r->map) {
    const uint8_t *data;
    uint32_t len;
    m2d_rec_status_t st = next_mapped(r, &data, &len, err);
    if (st != M2D_REC_OK) return st;
    return take_bson(r, data, len, doc, err);
  }
  uint8_t len_bytes[4];
  int64_t n = read_full(r, len_bytes, 4, err);
  if (n < 0) return M2D_REC_FATAL;
  if (n == 0) return M2D_REC_EOF;
  if (n < 4) {
    m2d_error_set(err, M2D_ERR_FORMAT, 0, "%s: truncated document at byte %llu (the file ends inside it)", r->path,
                  (unsigned long long)r->offset);
    return M2D_REC_FATAL;
  }
  uint32_t len = (uint32_t)len_bytes[0] | (uint32_t)len_bytes[1] << 8 | (uint32_t)len_bytes[2] << 16 |
                 (uint32_t)len_bytes[3] << 24;
  if (len < 5 || len > MAX_BSON_DOC) {
    m2d_error_set(err, M2D_ERR_FORMAT, 0,
                  "%s: invalid BSON at byte %llu: document length %u is %s; the rest of the file cannot be "
                  "read (is it really a mongodump .bson file?)",
                  r->path, (unsigned long long)r->offset, len, len < 5 ? "too small" : "over the 16 MiB limit");
    return M2D_REC_FATAL;
  }
  m2d_buf_reset(&r->raw);
  if (!m2d_buf_reserve(&r->raw, len, err)) return M2D_REC_FATAL;
  memcpy(r->raw.data, len_bytes, 4);
  n = read_full(r, r->raw.data + 4, len - 4, err);
  if (n < 0) return M2D_REC_FATAL;
  r->raw.len = 4 + (size_t)n;
  if ((size_t)n < len - 4) {
    m2d_error_set(err, M2D_ERR_FORMAT, 0, "%s: truncated document at byte %llu: %u bytes announced, %zu present",
                  r->path, (unsigned long long)r->offset, len, r->raw.len);
    r->cur = r->raw.data;
    r->cur_len = r->raw.len;
    r->offset += r->raw.len;
    return M2D_REC_FATAL;
  }
  return take_bson(r, r->raw.data, len, doc, err);
}

/* The document at data (len bytes, at r->offset), checked unless trusted. */
static m2d_rec_status_t take_bson(m2d_export_reader_t *r, const uint8_t *data, uint32_t len, const bson_t **doc,
                                  m2d_error_t *err) {
  uint64_t at = r->offset;
  r->offset += len;
  r->cur = data;
  r->cur_len = len;
  if (r->have_doc) bson_destroy(&r->doc);
  r->have_doc = false;
  size_t bad_at = 0;
  if (r->trusted && bson_init_static(&r->doc, data, len)) {
    r->have_doc = true;
    *doc = &r->doc;
    return M2D_REC_OK;
  }
  /* one walk checks structure and UTF-8 (bson_validate walks the document a second time, and
   * checks keys with libbson's slow UTF-8 check); bson_validate only says what is wrong */
  bson_iter_t it;
  bool valid = bson_init_static(&r->doc, data, len) && bson_iter_init(&it, &r->doc) && utf8_valid(&it, 0, &bad_at);
  if (!valid && (!bson_init_static(&r->doc, data, len) || !bson_validate(&r->doc, BSON_VALIDATE_NONE, &bad_at))) {
    m2d_error_set(err, M2D_ERR_FORMAT, 0, "%s: invalid BSON document at byte %llu (corrupt near byte %llu)", r->path,
                  (unsigned long long)at, (unsigned long long)(at + bad_at));
    return M2D_REC_BAD;
  }
  if (!valid) {
    m2d_error_set(err, M2D_ERR_FORMAT, 0, "%s: invalid BSON document at byte %llu (not UTF-8 near byte %llu)",
                  r->path, (unsigned long long)at, (unsigned long long)(at + bad_at));
    return M2D_REC_BAD;
  }
  r->have_doc = true;
  *doc = &r->doc;
  return M2D_REC_OK;
}

static m2d_rec_status_t next_json(m2d_export_reader_t *r, const bson_t **doc, m2d_error_t *err) {
  for (;;) {
    m2d_buf_reset(&r->raw);
    bool got_any = false;
    for (;;) { /* one line, any length up to the cap */
      char chunk[65536];
      if (!gzgets(r->gz, chunk, sizeof chunk)) {
        int code;
        const char *msg = gzerror(r->gz, &code);
        if (code != Z_OK && code != Z_STREAM_END) {
          m2d_error_set(err, M2D_ERR_IO, code, "%s: read error after line %llu: %s", r->path,
                        (unsigned long long)r->line, msg);
          return M2D_REC_FATAL;
        }
        break;
      }
      got_any = true;
      size_t n = strlen(chunk);
      if (!m2d_buf_append(&r->raw, chunk, n, err)) {
        m2d_error_prefix(err, "%s: line %llu is too long: ", r->path, (unsigned long long)r->line + 1);
        return M2D_REC_FATAL;
      }
      if (n && chunk[n - 1] == '\n') break;
    }
    if (!got_any) return M2D_REC_EOF;
    r->line++;
    r->offset += r->raw.len;
    size_t len = r->raw.len;
    while (len && (r->raw.data[len - 1] == '\n' || r->raw.data[len - 1] == '\r' || r->raw.data[len - 1] == ' ' ||
                   r->raw.data[len - 1] == '\t'))
      len--;
    size_t start = 0;
    while (start < len && (r->raw.data[start] == ' ' || r->raw.data[start] == '\t')) start++;
    if (start == len) continue; /* blank line */
    if (r->have_doc) bson_destroy(&r->doc);
    r->have_doc = false;
    bson_error_t e;
    if (!bson_init_from_json(&r->doc, (const char *)r->raw.data + start, (ssize_t)(len - start), &e)) {
      m2d_error_set(err, M2D_ERR_FORMAT, 0, "%s: line %llu is not a valid Extended JSON document: %s", r->path,
                    (unsigned long long)r->line, e.message);
      return M2D_REC_BAD;
    }
    r->have_doc = true;
    *doc = &r->doc;
    return M2D_REC_OK;
  }
}

m2d_rec_status_t m2d_export_reader_next(m2d_export_reader_t *r, const bson_t **doc, m2d_error_t *err) {
  if (r->eof) return M2D_REC_EOF;
  m2d_rec_status_t st = r->format == M2D_EXPORT_BSON ? next_bson(r, doc, err) : next_json(r, doc, err);
  if (st == M2D_REC_EOF || st == M2D_REC_FATAL) r->eof = true;
  return st;
}

const uint8_t *m2d_export_reader_raw(const m2d_export_reader_t *r, size_t *len) {
  if (r->format == M2D_EXPORT_BSON) {
    *len = r->cur_len;
    return r->cur;
  }
  *len = r->raw.len;
  return r->raw.data;
}

bool m2d_export_reader_trust(m2d_export_reader_t *r, uint64_t end) {
  if (r->format != M2D_EXPORT_BSON) return false;
  r->trusted = true;
  r->trusted_end = end;
  return true;
}

m2d_export_format_t m2d_export_reader_format(const m2d_export_reader_t *r) { return r->format; }
uint64_t m2d_export_reader_offset(const m2d_export_reader_t *r) { return r->offset; }
