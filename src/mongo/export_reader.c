#include "mongo/export_reader.h"

#include "core/buf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

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
  gzFile gz = gzopen(local, "rb");
  if (!gz) {
    m2d_error_set(err, M2D_ERR_IO, errno, "cannot open %s: %s", path, strerror(errno ? errno : ENOMEM));
    return NULL;
  }
  gzbuffer(gz, 1 << 17);
  /* bson_t members want 128-byte alignment */
  size_t size = (sizeof(m2d_export_reader_t) + 127) / 128 * 128;
  m2d_export_reader_t *r = aligned_alloc(128, size);
  if (r) memset(r, 0, size);
  if (!r || !(r->path = strdup(path))) {
    gzclose(gz);
    free(r);
    m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory");
    return NULL;
  }
  r->gz = gz;
  r->format = fmt;
  m2d_buf_init(&r->raw, fmt == M2D_EXPORT_BSON ? MAX_BSON_DOC : MAX_JSON_LINE);
  return r;
}

void m2d_export_reader_close(m2d_export_reader_t *r) {
  if (!r) return;
  gzclose(r->gz);
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
static bool utf8_valid(bson_iter_t *it, int depth, size_t *bad_at) {
  while (bson_iter_next(it)) {
    const char *key = bson_iter_key(it), *s = NULL;
    uint32_t len = 0;
    bool ok = bson_utf8_validate(key, strlen(key), false);
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
      ok = ok && bson_utf8_validate(options, strlen(options), false);
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
    if (ok && s) ok = bson_utf8_validate(s, len, true);
    if (!ok) {
      *bad_at = bson_iter_offset(it);
      return false;
    }
  }
  return true;
}

static m2d_rec_status_t next_bson(m2d_export_reader_t *r, const bson_t **doc, m2d_error_t *err) {
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
  uint64_t at = r->offset;
  r->offset += r->raw.len;
  if ((size_t)n < len - 4) {
    m2d_error_set(err, M2D_ERR_FORMAT, 0, "%s: truncated document at byte %llu: %u bytes announced, %zu present",
                  r->path, (unsigned long long)at, len, r->raw.len);
    return M2D_REC_FATAL;
  }
  if (r->have_doc) bson_destroy(&r->doc);
  r->have_doc = false;
  size_t bad_at = 0;
  if (!bson_init_static(&r->doc, r->raw.data, len) || !bson_validate(&r->doc, BSON_VALIDATE_NONE, &bad_at)) {
    m2d_error_set(err, M2D_ERR_FORMAT, 0, "%s: invalid BSON document at byte %llu (corrupt near byte %llu)", r->path,
                  (unsigned long long)at, (unsigned long long)(at + bad_at));
    return M2D_REC_BAD;
  }
  bson_iter_t it;
  if (!bson_iter_init(&it, &r->doc) || !utf8_valid(&it, 0, &bad_at)) {
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
  *len = r->raw.len;
  return r->raw.data;
}

m2d_export_format_t m2d_export_reader_format(const m2d_export_reader_t *r) { return r->format; }
uint64_t m2d_export_reader_offset(const m2d_export_reader_t *r) { return r->offset; }
