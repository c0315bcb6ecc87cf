/* Byte streams the format layers read and write through, so Parquet and Delta code never
 * touches file descriptors or HTTP directly:
 *   m2d_sink_t   sequential writes, then finish (publish) or abort (nothing left behind)
 *   m2d_source_t random-access reads of an object of known size
 * Implementations here: local file, memory buffer. Stores (local, S3, fault-injecting) hand
 * out sinks and sources of their own. */
#ifndef M2D_STORAGE_IO_H
#define M2D_STORAGE_IO_H

#include "core/buf.h"
#include "core/error.h"

#include <stdint.h>

typedef struct m2d_sink m2d_sink_t;
struct m2d_sink {
  bool (*write)(m2d_sink_t *s, const void *data, size_t len, m2d_error_t *err);
  /* commit true: make the object visible (flush, fsync, publish); false: discard it.
   * Frees the sink in both cases. */
  bool (*close)(m2d_sink_t *s, bool commit, m2d_error_t *err);
  uint64_t written; /* bytes accepted so far, maintained by m2d_sink_write */
};

/* Writes len bytes; keeps s->written. */
bool m2d_sink_write(m2d_sink_t *s, const void *data, size_t len, m2d_error_t *err);
/* Publishes and frees. */
bool m2d_sink_finish(m2d_sink_t *s, m2d_error_t *err);
/* Discards and frees; accepts NULL. */
void m2d_sink_abort(m2d_sink_t *s);

/* A sink into a local file: written to "<dir>/.<name>.tmp-<pid>-<n>" and renamed over path on finish
 * (after fsync), removed on abort. */
m2d_sink_t *m2d_file_sink_new(const char *path, m2d_error_t *err);
/* A sink appending to a caller-owned buffer (which must outlive the sink). */
m2d_sink_t *m2d_buf_sink_new(m2d_buf_t *buf);

typedef struct m2d_source m2d_source_t;
struct m2d_source {
  /* Reads exactly len bytes at offset into out; fails (M2D_ERR_FORMAT) past the end. */
  bool (*read_at)(m2d_source_t *s, uint64_t offset, size_t len, void *out, m2d_error_t *err);
  void (*destroy)(m2d_source_t *s);
  uint64_t size;
  char name[512]; /* for error messages: the file or object name */
};

bool m2d_source_read_at(m2d_source_t *s, uint64_t offset, size_t len, void *out, m2d_error_t *err);
void m2d_source_destroy(m2d_source_t *s); /* accepts NULL */

/* A source over a local file. */
m2d_source_t *m2d_file_source_new(const char *path, m2d_error_t *err);
/* A source over memory the caller keeps alive. */
m2d_source_t *m2d_mem_source_new(const void *data, size_t len, const char *name);

#endif
