/* The local-filesystem store. put_if_absent writes a temporary file, fsyncs it and link(2)s it
 * to the final name (EEXIST: someone else won), never rename, so a log entry can never be
 * replaced; then fsyncs the directory. */
#include "storage/store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
  m2d_store_t base;
} local_t;

static void full_path(m2d_store_t *s, const char *key, char *out, size_t n) {
  snprintf(out, n, "%s%s%s", s->root, key[0] ? "/" : "", key);
}

static bool mkdirs(const char *path, m2d_error_t *err) {
  char tmp[2048];
  snprintf(tmp, sizeof tmp, "%s", path);
  for (char *p = tmp + 1; *p; p++) {
    if (*p != '/') continue;
    *p = '\0';
    if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
      return m2d_error_set(err, M2D_ERR_IO, errno, "cannot create directory %s: %s", tmp, strerror(errno));
    *p = '/';
  }
  return true;
}

static bool local_get(m2d_store_t *s, const char *key, m2d_buf_t *out, bool *missing, m2d_error_t *err) {
  char path[2048];
  full_path(s, key, path, sizeof path);
  if (missing) *missing = false;
  m2d_buf_reset(out);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT && missing) *missing = true;
    return m2d_error_set(err, M2D_ERR_IO, errno, "cannot open %s: %s", path, strerror(errno));
  }
  bool ok = true;
  for (;;) {
    if (!m2d_buf_reserve(out, 65536, err)) {
      m2d_error_prefix(err, "%s: ", path);
      ok = false;
      break;
    }
    ssize_t n = read(fd, out->data + out->len, 65536);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      ok = m2d_error_set(err, M2D_ERR_IO, errno, "reading %s: %s", path, strerror(errno));
      break;
    }
    if (n == 0) break;
    out->len += (size_t)n;
  }
  close(fd);
  return ok;
}

static int cmp_entries(const void *a, const void *b) {
  return strcmp(((const m2d_store_entry_t *)a)->name, ((const m2d_store_entry_t *)b)->name);
}

static bool list_dir(m2d_store_t *s, const char *dir, bool names_only, m2d_store_entry_t **out, size_t *n,
                     m2d_error_t *err) {
  char path[2048];
  full_path(s, dir, path, sizeof path);
  *out = NULL;
  *n = 0;
  DIR *d = opendir(path);
  if (!d) {
    if (errno == ENOENT) return true;
    return m2d_error_set(err, M2D_ERR_IO, errno, "cannot list %s: %s", path, strerror(errno));
  }
  size_t cap = 0;
  struct dirent *e;
  bool ok = true;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.') continue; /* ".", "..", and hidden temporary files */
    struct stat st = {0}; /* relative to the open directory: no path walk per entry */
    if (names_only && (e->d_type == DT_REG || e->d_type == DT_DIR)) st.st_mode = e->d_type == DT_DIR ? S_IFDIR : S_IFREG;
    else if (fstatat(dirfd(d), e->d_name, &st, 0) != 0) continue; /* vanished meanwhile */
    if (*n == cap) {
      cap = cap ? cap * 2 : 64;
      m2d_store_entry_t *p = realloc(*out, cap * sizeof *p);
      if (!p) {
        ok = m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory listing %s", path);
        break;
      }
      *out = p;
    }
    (*out)[*n].name = strdup(e->d_name);
    (*out)[*n].size = (uint64_t)st.st_size;
    (*out)[*n].mtime_ms = (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000;
    (*out)[*n].is_dir = S_ISDIR(st.st_mode);
    (*n)++;
  }
  closedir(d);
  if (!ok) {
    m2d_store_entries_free(*out, *n);
    *out = NULL;
    *n = 0;
    return false;
  }
  if (*n) qsort(*out, *n, sizeof **out, cmp_entries);
  return true;
}

static bool local_list(m2d_store_t *s, const char *dir, m2d_store_entry_t **out, size_t *n, m2d_error_t *err) {
  return list_dir(s, dir, false, out, n, err);
}

static bool local_list_names(m2d_store_t *s, const char *dir, m2d_store_entry_t **out, size_t *n, m2d_error_t *err) {
  return list_dir(s, dir, true, out, n, err);
}

static bool local_put_if_absent(m2d_store_t *s, const char *key, const void *data, size_t len, bool *exists,
                                m2d_error_t *err) {
  static atomic_uint counter;
  char path[2048], tmp[2100];
  full_path(s, key, path, sizeof path);
  *exists = false;
  if (!mkdirs(path, err)) return false;
  /* the temporary name starts with '.' so listings never show it */
  const char *slash = strrchr(path, '/');
  size_t dirlen = slash ? (size_t)(slash - path) : 0;
  snprintf(tmp, sizeof tmp, "%.*s/.%s.tmp-%d-%u", (int)dirlen, path, slash ? slash + 1 : path, (int)getpid(),
           atomic_fetch_add(&counter, 1));
  int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return m2d_error_set(err, M2D_ERR_IO, errno, "cannot create %s: %s", tmp, strerror(errno));
  const uint8_t *p = data;
  size_t left = len;
  bool ok = true;
  while (left && ok) {
    ssize_t n = write(fd, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) ok = m2d_error_set(err, M2D_ERR_IO, errno, "writing %s: %s", tmp, strerror(errno));
    else p += n, left -= (size_t)n;
  }
  if (ok && fsync(fd) != 0) ok = m2d_error_set(err, M2D_ERR_IO, errno, "flushing %s: %s", tmp, strerror(errno));
  close(fd);
  if (ok && link(tmp, path) != 0) {
    /* a lost race is a failure too (nothing of ours was created), told apart by *exists */
    int e = errno;
    *exists = e == EEXIST;
    if (*exists) ok = m2d_error_set(err, M2D_ERR_IO, e, "%s exists already (created by another writer)", path);
    else ok = m2d_error_set(err, M2D_ERR_IO, e, "cannot create %s: %s", path, strerror(e));
  }
  unlink(tmp);
  if (ok && !*exists) {
    char dir[2048];
    snprintf(dir, sizeof dir, "%.*s", (int)dirlen, path);
    int dfd = open(dir[0] ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
      fsync(dfd); /* the new name is durable */
      close(dfd);
    }
  }
  return ok;
}

static m2d_sink_t *local_create(m2d_store_t *s, const char *key, m2d_error_t *err) {
  char path[2048];
  full_path(s, key, path, sizeof path);
  if (!mkdirs(path, err)) return NULL;
  return m2d_file_sink_new(path, err);
}

static m2d_source_t *local_open(m2d_store_t *s, const char *key, m2d_error_t *err) {
  char path[2048];
  full_path(s, key, path, sizeof path);
  return m2d_file_source_new(path, err);
}

static bool local_remove(m2d_store_t *s, const char *key, m2d_error_t *err) {
  char path[2048];
  full_path(s, key, path, sizeof path);
  if (unlink(path) != 0 && errno != ENOENT)
    return m2d_error_set(err, M2D_ERR_IO, errno, "cannot remove %s: %s", path, strerror(errno));
  return true;
}

static void local_destroy(m2d_store_t *s) { free(s); }

m2d_store_t *m2d_store_local_new(const char *dir, m2d_error_t *err) {
  local_t *l = calloc(1, sizeof *l);
  if (!l) return m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory"), NULL;
  size_t n = strlen(dir);
  while (n > 1 && dir[n - 1] == '/') n--;
  if (n >= sizeof l->base.root) {
    free(l);
    return m2d_error_set(err, M2D_ERR_USAGE, 0, "table path too long"), NULL;
  }
  memcpy(l->base.root, dir, n);
  l->base.get = local_get;
  l->base.list = local_list;
  l->base.list_names = local_list_names;
  l->base.put_if_absent = local_put_if_absent;
  l->base.create = local_create;
  l->base.open = local_open;
  l->base.remove = local_remove;
  l->base.destroy = local_destroy;
  return &l->base;
}
