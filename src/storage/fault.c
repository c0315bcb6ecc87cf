/* The fault-injecting store: wraps another store and, at the Nth call of one operation,
 * fails it with an I/O error, kills the process (before or after the real call) or stops it
 * (SIGSTOP before the real call), so tests can produce on demand what a real disk or object
 * store does rarely: a write that fails, a crash between writing a data file and committing it,
 * a crash right after a commit, another writer committing just before this one does (the test
 * commits while the process is stopped, then sends SIGCONT). Configured by the environment
 * (tests only), see store.h. */
#include "storage/store.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef enum { F_FAIL, F_CRASH_BEFORE, F_CRASH_AFTER, F_PAUSE_BEFORE } fault_action_t;

typedef struct {
  m2d_store_t base;
  m2d_store_t *inner;
  char op[32];
  long after; /* the call number (1-based) that faults */
  long calls;
  fault_action_t action;
} fault_t;

typedef struct {
  m2d_sink_t base;
  m2d_sink_t *inner;
  fault_t *f;
  char key[512];
} fault_sink_t;

static void die(void) {
  fflush(NULL);
  raise(SIGKILL);
  _exit(137);
}

/* Counts a call of op; returns 0 to go on, 1 to fail it. Crashes when told to. */
static int hit(fault_t *f, const char *op) {
  if (strcmp(f->op, op) != 0 && strcmp(f->op, "any") != 0) return 0;
  if (++f->calls != f->after) return 0;
  if (f->action == F_CRASH_BEFORE) die();
  if (f->action == F_PAUSE_BEFORE) raise(SIGSTOP); /* the test acts, then sends SIGCONT */
  return f->action == F_FAIL ? 1 : 0;
}

static void after(fault_t *f, const char *op) {
  if ((strcmp(f->op, op) == 0 || strcmp(f->op, "any") == 0) && f->calls == f->after && f->action == F_CRASH_AFTER) die();
}

static bool injected(m2d_error_t *err, const char *op, const char *key) {
  return m2d_error_set(err, M2D_ERR_IO, 5, "injected fault: %s of %s failed (Input/output error)", op, key);
}

#define F(s) ((fault_t *)(s))

static bool f_get(m2d_store_t *s, const char *key, m2d_buf_t *out, bool *missing, m2d_error_t *err) {
  if (missing) *missing = false;
  if (hit(F(s), "get")) return injected(err, "get", key);
  bool ok = F(s)->inner->get(F(s)->inner, key, out, missing, err);
  after(F(s), "get");
  return ok;
}

static bool f_list(m2d_store_t *s, const char *dir, m2d_store_entry_t **out, size_t *n, m2d_error_t *err) {
  if (hit(F(s), "list")) return injected(err, "list", dir);
  bool ok = F(s)->inner->list(F(s)->inner, dir, out, n, err);
  after(F(s), "list");
  return ok;
}

static bool f_put_if_absent(m2d_store_t *s, const char *key, const void *data, size_t len, bool *exists,
                            m2d_error_t *err) {
  if (exists) *exists = false;
  if (hit(F(s), "put_if_absent")) return injected(err, "put_if_absent", key);
  bool ok = F(s)->inner->put_if_absent(F(s)->inner, key, data, len, exists, err);
  after(F(s), "put_if_absent");
  return ok;
}

static bool fs_write(m2d_sink_t *sk, const void *data, size_t len, m2d_error_t *err) {
  fault_sink_t *fs = (fault_sink_t *)sk;
  return m2d_sink_write(fs->inner, data, len, err);
}

static bool fs_close(m2d_sink_t *sk, bool commit, m2d_error_t *err) {
  fault_sink_t *fs = (fault_sink_t *)sk;
  bool ok;
  if (commit && hit(fs->f, "finish")) {
    m2d_sink_abort(fs->inner);
    ok = injected(err, "finish", fs->key);
  } else {
    ok = commit ? m2d_sink_finish(fs->inner, err) : (m2d_sink_abort(fs->inner), true);
    if (commit) after(fs->f, "finish");
  }
  free(fs);
  return ok;
}

static m2d_sink_t *f_create(m2d_store_t *s, const char *key, m2d_error_t *err) {
  if (hit(F(s), "create")) return injected(err, "create", key), NULL;
  m2d_sink_t *in = F(s)->inner->create(F(s)->inner, key, err);
  if (!in) return NULL;
  fault_sink_t *fs = calloc(1, sizeof *fs);
  if (!fs) {
    m2d_sink_abort(in);
    return m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory"), NULL;
  }
  fs->base.write = fs_write;
  fs->base.close = fs_close;
  fs->inner = in;
  fs->f = F(s);
  snprintf(fs->key, sizeof fs->key, "%s", key);
  after(F(s), "create");
  return &fs->base;
}

static m2d_source_t *f_open(m2d_store_t *s, const char *key, m2d_error_t *err) {
  if (hit(F(s), "open")) return injected(err, "open", key), NULL;
  m2d_source_t *src = F(s)->inner->open(F(s)->inner, key, err);
  after(F(s), "open");
  return src;
}

static bool f_remove(m2d_store_t *s, const char *key, m2d_error_t *err) {
  if (hit(F(s), "remove")) return injected(err, "remove", key);
  bool ok = F(s)->inner->remove(F(s)->inner, key, err);
  after(F(s), "remove");
  return ok;
}

static bool f_list_all(m2d_store_t *s, const char *dir, const char *start_after, m2d_store_entry_t **out, size_t *n,
                       m2d_error_t *err) {
  if (hit(F(s), "list")) return injected(err, "list", dir);
  bool ok = m2d_store_list_all(F(s)->inner, dir, start_after, out, n, err);
  after(F(s), "list");
  return ok;
}

static bool f_abort_uploads(m2d_store_t *s, int64_t before_ms, int *n, m2d_error_t *err) {
  return m2d_store_abort_uploads(F(s)->inner, before_ms, n, err);
}

static void f_destroy(m2d_store_t *s) {
  m2d_store_destroy(F(s)->inner);
  free(s);
}

m2d_store_t *m2d_store_fault_new(m2d_store_t *inner, const char *spec, m2d_error_t *err) {
  fault_t *f = calloc(1, sizeof *f);
  if (!f) {
    m2d_store_destroy(inner);
    return m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory"), NULL;
  }
  char action[32] = "";
  if (sscanf(spec, "%31[a-z_]:%ld:%31[a-z-]", f->op, &f->after, action) != 3 || f->after < 1 ||
      (strcmp(action, "fail") && strcmp(action, "crash-before") && strcmp(action, "crash-after") &&
       strcmp(action, "pause-before"))) {
    free(f);
    m2d_store_destroy(inner);
    return m2d_error_set(err, M2D_ERR_USAGE, 0,
                         "MONGO2DELTA_FAULT='%s' is not OP:N:fail|crash-before|crash-after|pause-before (OP: get, list, "
                         "put_if_absent, create, finish, open, remove or any)",
                         spec),
           NULL;
  }
  f->action = strcmp(action, "fail") == 0           ? F_FAIL
              : strcmp(action, "crash-before") == 0 ? F_CRASH_BEFORE
              : strcmp(action, "crash-after") == 0  ? F_CRASH_AFTER
                                                    : F_PAUSE_BEFORE;
  f->inner = inner;
  f->base.get = f_get;
  f->base.list = f_list;
  f->base.put_if_absent = f_put_if_absent;
  f->base.create = f_create;
  f->base.open = f_open;
  f->base.remove = f_remove;
  f->base.abort_uploads = inner->abort_uploads ? f_abort_uploads : NULL;
  f->base.list_all = f_list_all;
  f->base.destroy = f_destroy;
  snprintf(f->base.root, sizeof f->base.root, "%s", inner->root);
  return &f->base;
}
