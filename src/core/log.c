#include "core/log.h"

#include "core/redact.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

static m2d_log_level_t g_level = M2D_LOG_INFO;
static m2d_log_format_t g_format = M2D_LOG_TEXT;
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *level_name(m2d_log_level_t l) {
  static const char *names[] = {"error", "warn", "info", "debug"};
  return names[l];
}

void m2d_log_configure(m2d_log_level_t level, m2d_log_format_t format) {
  g_level = level;
  g_format = format;
}

m2d_log_level_t m2d_log_level(void) { return g_level; }

m2d_log_format_t m2d_log_format(void) { return g_format; }

bool m2d_log_enabled(m2d_log_level_t level) { return level <= g_level; }

bool m2d_log_format_parse(const char *s, m2d_log_format_t *out) {
  if (strcmp(s, "text") == 0) *out = M2D_LOG_TEXT;
  else if (strcmp(s, "json") == 0) *out = M2D_LOG_JSON;
  else return false;
  return true;
}

static void json_escape(FILE *f, const char *s) {
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
    else if (c == '\n') fputs("\\n", f);
    else if (c == '\t') fputs("\\t", f);
    else if (c < 0x20) fprintf(f, "\\u%04x", c);
    else fputc(c, f);
  }
}

/* This thread's context (run: the collection its sync loop serves), "" for none. */
static _Thread_local char t_context[256];

void m2d_log_set_context(const char *context) {
  snprintf(t_context, sizeof t_context, "%s", context ? context : "");
}

/* The progress line drawn on a terminal (core/progress), redrawn after each log line. */
static char g_status[640];
static bool g_status_open;

/* One line, under g_lock; progress marks a progress line in JSON. */
static void emit(m2d_log_level_t level, const char *msg, bool progress) {
  struct timeval tv;
  gettimeofday(&tv, NULL);
  struct tm tm;
  gmtime_r(&tv.tv_sec, &tm);
  char ts[40];
  strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
  if (g_status_open) fputs("\r\033[K", stderr);
  if (g_format == M2D_LOG_JSON) {
    fprintf(stderr, "{\"time\":\"%s.%03ldZ\",\"level\":\"%s\",%s", ts, (long)(tv.tv_usec / 1000), level_name(level),
            progress ? "\"progress\":true," : "");
    if (t_context[0]) {
      fputs("\"context\":\"", stderr);
      json_escape(stderr, t_context);
      fputs("\",", stderr);
    }
    fputs("\"msg\":\"", stderr);
    json_escape(stderr, msg);
    fputs("\"}\n", stderr);
  } else {
    fprintf(stderr, "%s.%03ldZ %-5s %s%s%s%s\n", ts, (long)(tv.tv_usec / 1000), level_name(level),
            t_context[0] ? "[" : "", t_context, t_context[0] ? "] " : "", msg);
  }
  if (g_status_open) fputs(g_status, stderr);
  fflush(stderr);
}

void m2d_log(m2d_log_level_t level, const char *fmt, ...) {
  if (!m2d_log_enabled(level)) return;
  char raw[4096], msg[4096];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(raw, sizeof raw, fmt, ap);
  va_end(ap);
  m2d_redact(raw, msg, sizeof msg);
  pthread_mutex_lock(&g_lock);
  emit(level, msg, false);
  pthread_mutex_unlock(&g_lock);
}

void m2d_log_status(const char *line, bool in_place, bool final) {
  char msg[640];
  m2d_redact(line, msg, sizeof msg);
  pthread_mutex_lock(&g_lock);
  if (in_place) {
    fprintf(stderr, "\r\033[K%s%s", msg, final ? "\n" : "");
    snprintf(g_status, sizeof g_status, "%s", msg);
    g_status_open = !final;
  } else {
    emit(M2D_LOG_INFO, msg, true);
  }
  fflush(stderr);
  pthread_mutex_unlock(&g_lock);
}
