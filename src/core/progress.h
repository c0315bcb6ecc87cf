/* A progress line for long commands (snapshot, load, optimize, vacuum, publish, kafka-*).
 * On a terminal it is one line redrawn in place at most once a second; with
 * `--progress always` and stderr not a terminal, a plain line every ten seconds; the last state
 * is always printed when the work ends. Log lines printed meanwhile clear the line first and it
 * is redrawn after them (core/log owns stderr). Not thread-safe: one thread updates a line. */
#ifndef M2D_CORE_PROGRESS_H
#define M2D_CORE_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>

typedef enum { M2D_PROGRESS_AUTO = 0, M2D_PROGRESS_ALWAYS, M2D_PROGRESS_NEVER } m2d_progress_mode_t;

/* "auto" (a terminal on stderr and logging at info or more), "always", "never". */
bool m2d_progress_mode_parse(const char *s, m2d_progress_mode_t *out);
void m2d_progress_configure(m2d_progress_mode_t mode);
/* Whether a progress line is wanted under the configured mode. */
bool m2d_progress_wanted(void);

typedef struct {
  bool on, tty;
  char what[160];  /* "load /data/orders.bson", "optimize /tables/t" */
  const char *unit; /* "documents", "rows", "files", "events" */
  int64_t total;   /* 0: not known */
  int64_t done, bytes;
  char extra[192]; /* appended after the counts when not empty ("file 2 of 7") */
  double t0, last;
} m2d_progress_t;

/* Starts a line (off when m2d_progress_wanted() is false: the other calls then do nothing). */
void m2d_progress_begin(m2d_progress_t *p, const char *unit, int64_t total, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Whether the line is on and a redraw is due (a caller with a costly p->extra fills it only then). */
bool m2d_progress_due(const m2d_progress_t *p);
/* Sets the counts and redraws when due. */
void m2d_progress_set(m2d_progress_t *p, int64_t done, int64_t bytes);
void m2d_progress_add(m2d_progress_t *p, int64_t done, int64_t bytes);
/* Prints the last state and ends the line. */
void m2d_progress_end(m2d_progress_t *p);

#endif
