/* Prometheus metrics registry and its HTTP server thread (see metrics.h). */
#include "core/metrics.h"

#include "core/buf.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_BUCKETS 64
#define MAX_REQUEST 8192         /* request line and headers */
#define CLIENT_TIMEOUT_MS 2000   /* a client that sends or reads slower is dropped */
#define POLL_MS 250              /* the accept loop also wakes this often to check the stop flag */
#define MAX_PAGE (64u << 20)     /* rendered page cap */

typedef enum { KIND_COUNTER, KIND_GAUGE, KIND_HISTOGRAM } kind_t;

typedef struct {
  char *labels;       /* rendered: `a="x",b="y"`, or "" */
  double value;       /* counter, gauge */
  double sum;         /* histogram */
  uint64_t count;     /* histogram */
  uint64_t *buckets;  /* histogram: per-bucket (not cumulative) counts, nbounds of them */
} series_t;

typedef struct {
  char *name, *help; /* help may be NULL */
  kind_t kind;
  double *bounds; /* histogram */
  size_t nbounds;
  series_t *series;
  size_t nseries, capseries;
} family_t;

struct m2d_metrics {
  pthread_mutex_t lock;
  family_t *fams;
  size_t nfams, capfams, total_series;

  int listen_fd;
  int wake[2]; /* a byte written to wake[1] stops the server thread at once */
  int port;
  pthread_t thread;
  atomic_bool stopping;
};

/* ---- names and labels --------------------------------------------------------------------- */

static bool valid_metric_name(const char *s) {
  if (!s || !*s) return false;
  for (const char *p = s; *p; p++) {
    char c = *p;
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
              (p != s && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

static bool valid_label_name(const char *s) {
  if (!s || !*s || strncmp(s, "__", 2) == 0) return false;
  for (const char *p = s; *p; p++) {
    char c = *p;
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (p != s && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

/* Appends s with the given characters escaped: backslash and newline always, the double quote
 * in label values. */
static bool append_escaped(m2d_buf_t *b, const char *s, bool quote) {
  for (; *s; s++) {
    const char *rep = NULL;
    if (*s == '\\') rep = "\\\\";
    else if (*s == '\n') rep = "\\n";
    else if (quote && *s == '"') rep = "\\\"";
    if (rep ? !m2d_buf_append_str(b, rep, NULL) : !m2d_buf_append_byte(b, (uint8_t)*s, NULL)) return false;
  }
  return true;
}

/* The labels rendered as `a="x",b="y"` (malloc'd), or NULL when they are invalid. */
static char *render_labels(const char *const *labels, kind_t kind) {
  m2d_buf_t b;
  m2d_buf_init(&b, 1 << 20);
  bool ok = true;
  for (size_t i = 0; ok && labels && labels[i]; i += 2) {
    const char *key = labels[i], *val = labels[i + 1];
    if (!val || !valid_label_name(key) || (kind == KIND_HISTOGRAM && strcmp(key, "le") == 0)) {
      ok = false;
      break;
    }
    ok = (i == 0 || m2d_buf_append_byte(&b, ',', NULL)) && m2d_buf_append_str(&b, key, NULL) &&
         m2d_buf_append_str(&b, "=\"", NULL) && append_escaped(&b, val, true) &&
         m2d_buf_append_byte(&b, '"', NULL);
  }
  if (ok) ok = m2d_buf_terminate(&b, NULL);
  if (!ok) {
    m2d_buf_free(&b);
    return NULL;
  }
  size_t n;
  return (char *)m2d_buf_steal(&b, &n);
}

/* ---- the registry (all called with the lock held) ---------------------------------------- */

static const double default_bounds[] = M2D_METRICS_DEFAULT_BUCKETS;

static bool valid_bounds(const double *bounds, size_t n) {
  if (!bounds || n == 0 || n > MAX_BUCKETS) return false;
  for (size_t i = 0; i < n; i++) {
    if (!isfinite(bounds[i])) return false;
    if (i > 0 && !(bounds[i] > bounds[i - 1])) return false;
  }
  return true;
}

/* The family called name, created with kind (and bounds for a histogram) when missing; NULL when
 * it exists with another kind or cannot be created. */
static family_t *family_get(m2d_metrics_t *m, const char *name, const char *help, kind_t kind,
                            const double *bounds, size_t nbounds) {
  for (size_t i = 0; i < m->nfams; i++) {
    family_t *f = &m->fams[i];
    if (strcmp(f->name, name) != 0) continue;
    if (f->kind != kind) return NULL;
    if (!f->help && help) f->help = strdup(help); /* best effort: a missing help is no error */
    return f;
  }
  if (!valid_metric_name(name)) return NULL;
  if (m->nfams == m->capfams) {
    size_t cap = m->capfams ? m->capfams * 2 : 8;
    family_t *p = realloc(m->fams, cap * sizeof *p);
    if (!p) return NULL;
    m->fams = p;
    m->capfams = cap;
  }
  family_t f = {.kind = kind};
  f.name = strdup(name);
  f.help = help ? strdup(help) : NULL;
  if (kind == KIND_HISTOGRAM) {
    f.bounds = malloc(nbounds * sizeof *f.bounds);
    if (f.bounds) memcpy(f.bounds, bounds, nbounds * sizeof *f.bounds);
    f.nbounds = nbounds;
  }
  if (!f.name || (help && !f.help) || (kind == KIND_HISTOGRAM && !f.bounds)) {
    free(f.name);
    free(f.help);
    free(f.bounds);
    return NULL;
  }
  m->fams[m->nfams] = f;
  return &m->fams[m->nfams++];
}

/* The series of f with these rendered labels, created when missing; takes rendered in all cases. */
static series_t *series_get(m2d_metrics_t *m, family_t *f, char *rendered) {
  for (size_t i = 0; i < f->nseries; i++) {
    if (strcmp(f->series[i].labels, rendered) == 0) {
      free(rendered);
      return &f->series[i];
    }
  }
  if (m->total_series >= M2D_METRICS_MAX_SERIES) goto fail;
  if (f->nseries == f->capseries) {
    size_t cap = f->capseries ? f->capseries * 2 : 4;
    series_t *p = realloc(f->series, cap * sizeof *p);
    if (!p) goto fail;
    f->series = p;
    f->capseries = cap;
  }
  series_t s = {.labels = rendered};
  if (f->kind == KIND_HISTOGRAM) {
    s.buckets = calloc(f->nbounds, sizeof *s.buckets);
    if (!s.buckets) goto fail;
  }
  f->series[f->nseries] = s;
  m->total_series++;
  return &f->series[f->nseries++];
fail:
  free(rendered);
  return NULL;
}

/* The series for name and labels, with its family created when missing; NULL (and nothing
 * created) when the labels are invalid. Called with the lock held. */
static series_t *lookup(m2d_metrics_t *m, const char *name, const char *help, const char *const *labels,
                        kind_t kind, const double *bounds, size_t nbounds, family_t **fam) {
  char *rendered = render_labels(labels, kind); /* first: a bad label must not leave a family */
  if (!rendered) return NULL;
  family_t *f = family_get(m, name, help, kind, bounds, nbounds);
  if (!f) {
    free(rendered);
    return NULL;
  }
  if (fam) *fam = f;
  return series_get(m, f, rendered);
}

typedef enum { OP_ADD, OP_SET } op_t;

static bool update(m2d_metrics_t *m, const char *name, const char *help, const char *const *labels,
                   kind_t kind, op_t op, double value) {
  if (!m) return true;
  if (kind == KIND_COUNTER && !(value >= 0)) return false; /* also NaN */
  pthread_mutex_lock(&m->lock);
  bool ok = false;
  series_t *s = lookup(m, name, help, labels, kind, NULL, 0, NULL);
  if (s) {
    if (op == OP_SET) s->value = value;
    else s->value += value;
    ok = true;
  }
  pthread_mutex_unlock(&m->lock);
  return ok;
}

bool m2d_metrics_counter_add(m2d_metrics_t *m, const char *name, const char *help,
                             const char *const *labels, double value) {
  return update(m, name, help, labels, KIND_COUNTER, OP_ADD, value);
}

bool m2d_metrics_gauge_set(m2d_metrics_t *m, const char *name, const char *help,
                           const char *const *labels, double value) {
  return update(m, name, help, labels, KIND_GAUGE, OP_SET, value);
}

bool m2d_metrics_gauge_add(m2d_metrics_t *m, const char *name, const char *help,
                           const char *const *labels, double delta) {
  return update(m, name, help, labels, KIND_GAUGE, OP_ADD, delta);
}

bool m2d_metrics_histogram_buckets(m2d_metrics_t *m, const char *name, const char *help,
                                   const double *bounds, size_t n) {
  if (!m) return true;
  if (!valid_bounds(bounds, n)) return false;
  pthread_mutex_lock(&m->lock);
  family_t *f = family_get(m, name, help, KIND_HISTOGRAM, bounds, n);
  bool ok = f && f->nbounds == n && memcmp(f->bounds, bounds, n * sizeof *bounds) == 0;
  pthread_mutex_unlock(&m->lock);
  return ok;
}

bool m2d_metrics_observe(m2d_metrics_t *m, const char *name, const char *help,
                         const char *const *labels, double value) {
  if (!m) return true;
  if (isnan(value)) return false;
  pthread_mutex_lock(&m->lock);
  bool ok = false;
  family_t *f = NULL;
  series_t *s = lookup(m, name, help, labels, KIND_HISTOGRAM, default_bounds,
                       sizeof default_bounds / sizeof default_bounds[0], &f);
  if (s) {
    for (size_t i = 0; i < f->nbounds; i++) {
      if (value <= f->bounds[i]) {
        s->buckets[i]++;
        break;
      }
    } /* above the last bound: only in +Inf, which is the count */
    s->count++;
    s->sum += value;
    ok = true;
  }
  pthread_mutex_unlock(&m->lock);
  return ok;
}

/* ---- the text format ---------------------------------------------------------------------- */

/* A sample value as the format spells it: integers without exponent or point, others with the
 * fewest digits that read back the same, and NaN, +Inf, -Inf. */
static void format_value(char *out, size_t n, double v) {
  if (isnan(v)) snprintf(out, n, "NaN");
  else if (isinf(v)) snprintf(out, n, v > 0 ? "+Inf" : "-Inf");
  else if (v == nearbyint(v) && fabs(v) < 1e15) snprintf(out, n, "%.0f", v);
  else {
    snprintf(out, n, "%.15g", v);
    if (strtod(out, NULL) != v) snprintf(out, n, "%.17g", v);
  }
}

static bool append_sample(m2d_buf_t *b, const char *name, const char *suffix, const char *labels,
                          const char *extra_label, double v) {
  char num[64];
  format_value(num, sizeof num, v);
  bool has_labels = labels[0] || extra_label;
  return m2d_buf_appendf(b, NULL, "%s%s%s%s%s%s%s %s\n", name, suffix, has_labels ? "{" : "", labels,
                         labels[0] && extra_label ? "," : "", extra_label ? extra_label : "",
                         has_labels ? "}" : "", num);
}

static bool render_family(m2d_buf_t *b, const family_t *f) {
  static const char *types[] = {"counter", "gauge", "histogram"};
  if (f->help) {
    if (!m2d_buf_appendf(b, NULL, "# HELP %s ", f->name) || !append_escaped(b, f->help, false) ||
        !m2d_buf_append_byte(b, '\n', NULL))
      return false;
  }
  if (!m2d_buf_appendf(b, NULL, "# TYPE %s %s\n", f->name, types[f->kind])) return false;
  for (size_t i = 0; i < f->nseries; i++) {
    const series_t *s = &f->series[i];
    if (f->kind != KIND_HISTOGRAM) {
      if (!append_sample(b, f->name, "", s->labels, NULL, s->value)) return false;
      continue;
    }
    uint64_t cumulative = 0;
    char le[96], num[64];
    for (size_t k = 0; k < f->nbounds; k++) {
      cumulative += s->buckets[k];
      format_value(num, sizeof num, f->bounds[k]);
      snprintf(le, sizeof le, "le=\"%s\"", num);
      if (!append_sample(b, f->name, "_bucket", s->labels, le, (double)cumulative)) return false;
    }
    if (!append_sample(b, f->name, "_bucket", s->labels, "le=\"+Inf\"", (double)s->count) ||
        !append_sample(b, f->name, "_sum", s->labels, NULL, s->sum) ||
        !append_sample(b, f->name, "_count", s->labels, NULL, (double)s->count))
      return false;
  }
  return true;
}

char *m2d_metrics_render(m2d_metrics_t *m, size_t *len) {
  m2d_buf_t b;
  m2d_buf_init(&b, MAX_PAGE);
  bool ok = true;
  if (m) {
    pthread_mutex_lock(&m->lock);
    for (size_t i = 0; ok && i < m->nfams; i++) ok = render_family(&b, &m->fams[i]);
    pthread_mutex_unlock(&m->lock);
  }
  if (ok) ok = m2d_buf_terminate(&b, NULL);
  if (!ok) {
    m2d_buf_free(&b);
    return NULL;
  }
  size_t n;
  char *page = (char *)m2d_buf_steal(&b, &n);
  if (len) *len = n;
  return page;
}

/* ---- the HTTP server ---------------------------------------------------------------------- */

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits until fd is ready for events, the deadline passes or a stop is asked: true when ready. */
static bool wait_fd(m2d_metrics_t *m, int fd, short events, long long deadline) {
  for (;;) {
    long long left = deadline - now_ms();
    if (left <= 0 || atomic_load(&m->stopping)) return false;
    struct pollfd p[2] = {{.fd = fd, .events = events}, {.fd = m->wake[0], .events = POLLIN}};
    int r = poll(p, 2, (int)(left < POLL_MS ? left : POLL_MS));
    if (r < 0 && errno != EINTR) return false;
    if (r > 0 && p[1].revents) return false;
    if (r > 0 && p[0].revents) return true;
  }
}

static bool send_all(m2d_metrics_t *m, int fd, const char *p, size_t n, long long deadline) {
  while (n > 0) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w > 0) {
      p += w;
      n -= (size_t)w;
    } else if (w < 0 && errno == EINTR) {
      continue;
    } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (!wait_fd(m, fd, POLLOUT, deadline)) return false;
    } else {
      return false;
    }
  }
  return true;
}

static void respond(m2d_metrics_t *m, int fd, long long deadline, int status, const char *reason,
                    const char *content_type, const char *extra_headers, const char *body, size_t body_len,
                    bool head) {
  char header[512];
  int n = snprintf(header, sizeof header,
                   "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%sConnection: close\r\n\r\n",
                   status, reason, content_type, body_len, extra_headers);
  if (n < 0 || (size_t)n >= sizeof header) return;
  if (send_all(m, fd, header, (size_t)n, deadline) && !head) send_all(m, fd, body, body_len, deadline);
}

/* Reads one request (up to the blank line) and answers it. */
static void serve_client(m2d_metrics_t *m, int fd) {
  long long deadline = now_ms() + CLIENT_TIMEOUT_MS;
  char req[MAX_REQUEST + 1];
  size_t got = 0;
  bool complete = false;
  while (!complete && got < MAX_REQUEST) {
    ssize_t r = recv(fd, req + got, MAX_REQUEST - got, 0);
    if (r > 0) {
      got += (size_t)r;
      req[got] = '\0';
      complete = strstr(req, "\r\n\r\n") || strstr(req, "\n\n");
    } else if (r == 0) {
      break; /* the client closed before the end of its headers */
    } else if (errno == EINTR) {
      continue;
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      if (!wait_fd(m, fd, POLLIN, deadline)) return;
    } else {
      return;
    }
  }
  req[got] = '\0';
  static const char text[] = "text/plain; charset=utf-8";
  /* the request line: METHOD SP TARGET SP HTTP/x.y */
  char method[16], target[1024], version[16];
  if (!complete || sscanf(req, "%15s %1023s %15s", method, target, version) != 3 ||
      strncmp(version, "HTTP/", 5) != 0) {
    static const char body[] = "bad request\n";
    respond(m, fd, deadline, 400, "Bad Request", text, "", body, sizeof body - 1, false);
    return;
  }
  bool head = strcmp(method, "HEAD") == 0;
  if (!head && strcmp(method, "GET") != 0) {
    static const char body[] = "method not allowed: GET /metrics\n";
    respond(m, fd, deadline, 405, "Method Not Allowed", text, "Allow: GET, HEAD\r\n", body, sizeof body - 1,
            false);
    return;
  }
  char *query = strchr(target, '?');
  if (query) *query = '\0';
  if (strcmp(target, "/metrics") != 0) {
    static const char body[] = "not found: the metrics are at /metrics\n";
    respond(m, fd, deadline, 404, "Not Found", text, "", body, sizeof body - 1, head);
    return;
  }
  size_t len = 0;
  char *page = m2d_metrics_render(m, &len);
  if (!page) {
    static const char body[] = "out of memory\n";
    respond(m, fd, deadline, 500, "Internal Server Error", text, "", body, sizeof body - 1, head);
    return;
  }
  respond(m, fd, deadline, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", "", page, len, head);
  free(page);
}

static void *server_main(void *arg) {
  m2d_metrics_t *m = arg;
  while (!atomic_load(&m->stopping)) {
    struct pollfd p[2] = {{.fd = m->listen_fd, .events = POLLIN}, {.fd = m->wake[0], .events = POLLIN}};
    int r = poll(p, 2, POLL_MS);
    if (r < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (p[1].revents) break;
    if (!(p[0].revents & POLLIN)) continue;
    int fd = accept4(m->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      /* EAGAIN: another wake-up took it; EMFILE and the like: wait a little, do not spin */
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED) poll(NULL, 0, 50);
      continue;
    }
    serve_client(m, fd);
    close(fd);
  }
  return NULL;
}

static void free_registry(m2d_metrics_t *m) {
  for (size_t i = 0; i < m->nfams; i++) {
    family_t *f = &m->fams[i];
    for (size_t k = 0; k < f->nseries; k++) {
      free(f->series[k].labels);
      free(f->series[k].buckets);
    }
    free(f->series);
    free(f->name);
    free(f->help);
    free(f->bounds);
  }
  free(m->fams);
}

m2d_metrics_t *m2d_metrics_start(const char *bind_addr, int port, m2d_error_t *err) {
  if (!bind_addr) bind_addr = "127.0.0.1";
  if (port < 0 || port > 65535) {
    m2d_error_set(err, M2D_ERR_USAGE, 0, "metrics port %d is out of range: give 1 to 65535 (0 picks a free one)",
                  port);
    return NULL;
  }
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  if (inet_pton(AF_INET, bind_addr, &addr.sin_addr) != 1) {
    m2d_error_set(err, M2D_ERR_USAGE, 0, "metrics address '%s' is not an IPv4 address", bind_addr);
    return NULL;
  }
  m2d_metrics_t *m = calloc(1, sizeof *m);
  if (!m) {
    m2d_error_set(err, M2D_ERR_INTERNAL, ENOMEM, "out of memory starting the metrics server");
    return NULL;
  }
  m->listen_fd = m->wake[0] = m->wake[1] = -1;
  pthread_mutex_init(&m->lock, NULL);
  atomic_init(&m->stopping, false);

  m->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  if (m->listen_fd < 0 || setsockopt(m->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0) {
    m2d_error_set(err, M2D_ERR_IO, errno, "cannot open a socket for the metrics server: %s", strerror(errno));
    goto fail;
  }
  if (bind(m->listen_fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
    int e = errno;
    if (e == EADDRINUSE)
      m2d_error_set(err, M2D_ERR_USAGE, e, "port %d is in use: choose another --metrics-port", port);
    else if (e == EACCES)
      m2d_error_set(err, M2D_ERR_USAGE, e, "port %d needs privileges: choose another --metrics-port (1024 or above)",
                    port);
    else
      m2d_error_set(err, M2D_ERR_IO, e, "cannot listen on %s:%d for metrics: %s", bind_addr, port, strerror(e));
    goto fail;
  }
  struct sockaddr_in bound;
  socklen_t blen = sizeof bound;
  if (listen(m->listen_fd, 16) != 0 || getsockname(m->listen_fd, (struct sockaddr *)&bound, &blen) != 0) {
    m2d_error_set(err, M2D_ERR_IO, errno, "cannot listen on %s:%d for metrics: %s", bind_addr, port,
                  strerror(errno));
    goto fail;
  }
  m->port = ntohs(bound.sin_port);
  if (pipe2(m->wake, O_CLOEXEC | O_NONBLOCK) != 0) {
    m2d_error_set(err, M2D_ERR_IO, errno, "cannot create the metrics server's wake-up pipe: %s", strerror(errno));
    goto fail;
  }
  /* The thread takes no signals: SIGINT/SIGTERM reach the threads that wait for them. */
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  int rc = pthread_create(&m->thread, NULL, server_main, m);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (rc != 0) {
    m2d_error_set(err, M2D_ERR_INTERNAL, rc, "cannot start the metrics server thread: %s", strerror(rc));
    goto fail;
  }
  return m;
fail:
  if (m->listen_fd >= 0) close(m->listen_fd);
  if (m->wake[0] >= 0) close(m->wake[0]);
  if (m->wake[1] >= 0) close(m->wake[1]);
  pthread_mutex_destroy(&m->lock);
  free(m);
  return NULL;
}

int m2d_metrics_port(const m2d_metrics_t *m) { return m ? m->port : 0; }

void m2d_metrics_stop(m2d_metrics_t *m) {
  if (!m) return;
  atomic_store(&m->stopping, true);
  ssize_t w;
  do w = write(m->wake[1], "x", 1);
  while (w < 0 && errno == EINTR);
  pthread_join(m->thread, NULL);
  close(m->listen_fd);
  close(m->wake[0]);
  close(m->wake[1]);
  free_registry(m);
  pthread_mutex_destroy(&m->lock);
  free(m);
}
