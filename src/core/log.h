/* Logging to stderr: readable lines by default, one JSON object per line with
 * --log-format json. Every message goes through m2d_redact, so no password is printed. */
#ifndef M2D_CORE_LOG_H
#define M2D_CORE_LOG_H

#include <stdbool.h>

typedef enum { M2D_LOG_ERROR = 0, M2D_LOG_WARN, M2D_LOG_INFO, M2D_LOG_DEBUG } m2d_log_level_t;
typedef enum { M2D_LOG_TEXT = 0, M2D_LOG_JSON } m2d_log_format_t;

void m2d_log_configure(m2d_log_level_t level, m2d_log_format_t format);
m2d_log_level_t m2d_log_level(void);
m2d_log_format_t m2d_log_format(void);
bool m2d_log_enabled(m2d_log_level_t level);
/* Parses "text" / "json". */
bool m2d_log_format_parse(const char *s, m2d_log_format_t *out);

/* Names what the calling thread works on; its lines then read "[context] message" (JSON: a
 * "context" member). NULL or "" clears it. */
void m2d_log_set_context(const char *context);

void m2d_log(m2d_log_level_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A progress line (core/progress): in_place redraws one line on a terminal (final ends it),
 * otherwise it is printed as an info line whatever the level (JSON: "progress":true). */
void m2d_log_status(const char *line, bool in_place, bool final);

#define m2d_error(...) m2d_log(M2D_LOG_ERROR, __VA_ARGS__)
#define m2d_warn(...) m2d_log(M2D_LOG_WARN, __VA_ARGS__)
#define m2d_info(...) m2d_log(M2D_LOG_INFO, __VA_ARGS__)
#define m2d_debug(...) m2d_log(M2D_LOG_DEBUG, __VA_ARGS__)

#endif
