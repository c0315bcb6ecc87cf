#include "storage/io.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

bool m2d_sink_write(m2d_sink_t *s, const void *data, size_t len, m2d_error_t *err) {
  if (!s->write(s, data, len, err)) return false;
  s->written += len;
  return true;
}

bool m2d_sink_finish(m2d_sink_t *s, m2d_error_t *err) { return s->close(s, true, err); }

void m2d_sink_abort(m2d_sink_t *s) {
  if (s) s->close(s, false, NULL);
}

/* --- local file sink ---------------------------------------------------------------------- */
typedef struct {
  m2d_sink_t base;
  int fd;
  char *path, *tmp;
} file_sink_t;

static bool file_sink_write(m2d_sink_t *s, const void *data, size_t len, m2d_error_t *err) {
  file_sink_t *f = (file_sink_t *)s;
  const uint8_t *p = data;
  while (len) {
    ssize_t n = write(f->fd, p, len);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return m2d_error_set(err, M2D_ERR_IO, errno, "writing %s: %s", f->path, strerror(errno));
    p += n;
    len -= (size_t)n;
  }
  return true;
}

static bool file_sink_close(m2d_sink_t *s, bool commit, m2d_error_t *err) {
  file_sink_t *f = (file_sink_t *)s;
  bool ok = true;
  if (commit && fsync(f->fd) != 0)
    ok = m2d_error_set(err, M2D_ERR_IO, errno, "flushing %s: %s", f->path, strerror(errno));
  if (close(f->fd) != 0 && commit && ok)
    ok = m2d_error_set(err, M2D_ERR_IO, errno, "closing %s: %s", f->path, strerror(errno));
  if (commit && ok && rename(f->tmp, f->path) != 0)
    ok = m2d_error_set(err, M2D_ERR_IO, errno, "renaming %s to %s: %s", f->tmp, f->path, strerror(errno));
  if (!commit || !ok) unlink(f->tmp);
  free(f->path);
  free(f->tmp);
  free(f);
  return ok;
}

m2d_sink_t *m2d_file_sink_new(const char *path, m2d_error_t *err) {
  static atomic_uint counter;
  file_sink_t *f = calloc(1, sizeof *f);
  if (!f) return m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory"), NULL;
  size_t n = strlen(path) + 64;
  f->path = strdup(path);
  f->tmp = malloc(n);
  if (!f->path || !f->tmp) {
    free(f->path);
    free(f->tmp);
    free(f);
    return m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory"), NULL;
  }
  /* a hidden name beside the target: readers that list the directory (Spark, delta-rs) skip
   * names starting with '.', so a crash never leaves something that looks like a checkpoint */
  const char *slash = strrchr(path, '/');
  int dirlen = slash ? (int)(slash - path + 1) : 0;
  snprintf(f->tmp, n, "%.*s.%s.tmp-%d-%u", dirlen, path, path + dirlen, (int)getpid(),
           atomic_fetch_add(&counter, 1));
  f->fd = open(f->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (f->fd < 0) {
    m2d_error_set(err, M2D_ERR_IO, errno, "cannot create %s: %s", path, strerror(errno));
    free(f->path);
    free(f->tmp);
    free(f);
    return NULL;
  }
  f->base.write = file_sink_write;
  f->base.close = file_sink_close;
  return &f->base;
}

/* --- memory sink -------------------------------------------------------------------------- */
typedef struct {
  m2d_sink_t base;
  m2d_buf_t *buf;
} buf_sink_t;

static bool buf_sink_write(m2d_sink_t *s, const void *data, size_t len, m2d_error_t *err) {
  return m2d_buf_append(((buf_sink_t *)s)->buf, data, len, err);
}

static bool buf_sink_close(m2d_sink_t *s, bool commit, m2d_error_t *err) {
  (void)commit;
  (void)err;
  free(s);
  return true;
}

m2d_sink_t *m2d_buf_sink_new(m2d_buf_t *buf) {
  buf_sink_t *b = calloc(1, sizeof *b);
  if (!b) return NULL;
  b->buf = buf;
  b->base.write = buf_sink_write;
  b->base.close = buf_sink_close;
  return &b->base;
}

/* --- sources ------------------------------------------------------------------------------ */
bool m2d_source_read_at(m2d_source_t *s, uint64_t offset, size_t len, void *out, m2d_error_t *err) {
  if (offset > s->size || len > s->size - offset)
    return m2d_error_set(err, M2D_ERR_FORMAT, 0,
                         "%s: read of %zu bytes at offset %llu is past the end (%llu bytes): the file is "
                         "truncated or a length in it is wrong",
                         s->name, len, (unsigned long long)offset, (unsigned long long)s->size);
  return s->read_at(s, offset, len, out, err);
}

void m2d_source_destroy(m2d_source_t *s) {
  if (s) s->destroy(s);
}

typedef struct {
  m2d_source_t base;
  int fd;
} file_source_t;

static bool file_source_read(m2d_source_t *s, uint64_t offset, size_t len, void *out, m2d_error_t *err) {
  file_source_t *f = (file_source_t *)s;
  uint8_t *p = out;
  while (len) {
    ssize_t n = pread(f->fd, p, len, (off_t)offset);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return m2d_error_set(err, M2D_ERR_IO, errno, "reading %s: %s", s->name, strerror(errno));
    if (n == 0) return m2d_error_set(err, M2D_ERR_FORMAT, 0, "%s: unexpected end of file", s->name);
    p += n;
    len -= (size_t)n;
    offset += (uint64_t)n;
  }
  return true;
}

static void file_source_destroy(m2d_source_t *s) {
  close(((file_source_t *)s)->fd);
  free(s);
}

m2d_source_t *m2d_file_source_new(const char *path, m2d_error_t *err) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return m2d_error_set(err, M2D_ERR_IO, errno, "cannot open %s: %s", path, strerror(errno)), NULL;
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return m2d_error_set(err, M2D_ERR_IO, errno, "%s is not a regular file", path), NULL;
  }
  file_source_t *f = calloc(1, sizeof *f);
  if (!f) {
    close(fd);
    return m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory"), NULL;
  }
  f->fd = fd;
  f->base.size = (uint64_t)st.st_size;
  f->base.read_at = file_source_read;
  f->base.destroy = file_source_destroy;
  snprintf(f->base.name, sizeof f->base.name, "%s", path);
  return &f->base;
}

typedef struct {
  m2d_source_t base;
  const uint8_t *data;
} mem_source_t;

static bool mem_source_read(m2d_source_t *s, uint64_t offset, size_t len, void *out, m2d_error_t *err) {
  (void)err;
  memcpy(out, ((mem_source_t *)s)->data + offset, len);
  return true;
}

static void mem_source_destroy(m2d_source_t *s) { free(s); }

m2d_source_t *m2d_mem_source_new(const void *data, size_t len, const char *name) {
  mem_source_t *m = calloc(1, sizeof *m);
  if (!m) return NULL;
  m->data = data;
  m->base.size = len;
  m->base.read_at = mem_source_read;
  m->base.destroy = mem_source_destroy;
  snprintf(m->base.name, sizeof m->base.name, "%s", name ? name : "(memory)");
  return &m->base;
}
