#include "core/progress.h"

#include "core/log.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static m2d_progress_mode_t g_mode = M2D_PROGRESS_AUTO;

bool m2d_progress_mode_parse(const char *s, m2d_progress_mode_t *out) {
  if (strcmp(s, "auto") == 0) *out = M2D_PROGRESS_AUTO;
  else if (strcmp(s, "always") == 0) *out = M2D_PROGRESS_ALWAYS;
  else if (strcmp(s, "never") == 0) *out = M2D_PROGRESS_NEVER;
  else return false;
  return true;
}

void m2d_progress_configure(m2d_progress_mode_t mode) { g_mode = mode; }

bool m2d_progress_wanted(void) {
  if (g_mode == M2D_PROGRESS_ALWAYS) return true;
  return g_mode == M2D_PROGRESS_AUTO && isatty(2) && m2d_log_enabled(M2D_LOG_INFO);
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void m2d_progress_begin(m2d_progress_t *p, const char *unit, int64_t total, const char *fmt, ...) {
  memset(p, 0, sizeof *p);
  p->on = m2d_progress_wanted();
  if (!p->on) return;
  p->tty = isatty(2) && m2d_log_format() == M2D_LOG_TEXT;
  p->unit = unit;
  p->total = total;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(p->what, sizeof p->what, fmt, ap);
  va_end(ap);
  p->t0 = p->last = now_s();
}

static void draw(m2d_progress_t *p, bool final) {
  double el = now_s() - p->t0;
  char line[640], part[160];
  int n = snprintf(line, sizeof line, "%s: %" PRId64, p->what, p->done);
  if (p->total > 0) n += snprintf(line + n, sizeof line - (size_t)n, " of %" PRId64, p->total);
  n += snprintf(line + n, sizeof line - (size_t)n, " %s", p->unit);
  if (p->bytes > 0) {
    snprintf(part, sizeof part, ", %.1f MB", (double)p->bytes / 1e6);
    n += snprintf(line + n, sizeof line - (size_t)n, "%s", part);
  }
  if (el >= 1 && p->done > 0) {
    snprintf(part, sizeof part, ", %.0f %s/s", (double)p->done / el, p->unit);
    n += snprintf(line + n, sizeof line - (size_t)n, "%s", part);
  }
  if (!final && p->total > 0 && p->done > 0 && p->done < p->total && el >= 1) {
    double left = el * (double)(p->total - p->done) / (double)p->done;
    n += snprintf(line + n, sizeof line - (size_t)n, ", ETA %d:%02d", (int)left / 60, (int)left % 60);
  }
  if (p->extra[0] && n >= 0 && (size_t)n < sizeof line) snprintf(line + n, sizeof line - (size_t)n, ", %s", p->extra);
  if (final && el >= 0.05) {
    size_t len = strlen(line);
    snprintf(line + len, sizeof line - len, " in %.1f s", el);
  }
  m2d_log_status(line, p->tty, final);
}

bool m2d_progress_due(const m2d_progress_t *p) {
  return p->on && now_s() - p->last >= (p->tty ? 1.0 : 10.0);
}

void m2d_progress_set(m2d_progress_t *p, int64_t done, int64_t bytes) {
  if (!p->on) return;
  p->done = done;
  p->bytes = bytes;
  if (!m2d_progress_due(p)) return;
  p->last = now_s();
  draw(p, false);
}

void m2d_progress_add(m2d_progress_t *p, int64_t done, int64_t bytes) {
  m2d_progress_set(p, p->done + done, p->bytes + bytes);
}

void m2d_progress_end(m2d_progress_t *p) {
  if (!p->on) return;
  draw(p, true);
  p->on = false;
}
