/* One error type for the whole program (like libbson's bson_error_t).
 * Fallible calls return bool and fill an m2d_error_t that may be NULL. The message says what
 * went wrong and, where we know it, what to do next. */
#ifndef M2D_CORE_ERROR_H
#define M2D_CORE_ERROR_H

#include <stdbool.h>
#include <stddef.h>

typedef enum {
  M2D_ERR_NONE = 0,
  M2D_ERR_USAGE,    /* bad command line or option value: exit status 2 */
  M2D_ERR_IO,       /* local files */
  M2D_ERR_MONGO,    /* server or driver */
  M2D_ERR_FORMAT,   /* corrupt or unsupported input: parquet, delta log, BSON, JSON */
  M2D_ERR_LIMIT,    /* a bounded buffer or size limit was exceeded */
  M2D_ERR_CONFLICT, /* a concurrent writer won */
  M2D_ERR_INTERNAL,
  M2D_ERR_KAFKA     /* broker or librdkafka */
} m2d_err_domain_t;

typedef struct {
  m2d_err_domain_t domain;
  int code;       /* domain specific (errno, driver code, ...) or 0 */
  bool retriable; /* true when the same call may succeed later (network, 503) */
  char message[1024];
} m2d_error_t;

/* Fills err (if not NULL) with a formatted message. Always returns false so that callers can
 * write `return m2d_error_set(...)`. */
bool m2d_error_set(m2d_error_t *err, m2d_err_domain_t domain, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Prefixes err's message with a formatted context ("reading foo.parquet: "). */
bool m2d_error_prefix(m2d_error_t *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

void m2d_error_clear(m2d_error_t *err);

/* Name of a domain, for logs ("io", "mongo", ...). */
const char *m2d_error_domain_name(m2d_err_domain_t domain);

/* The process exit status for an error: 2 for usage errors, 1 otherwise. */
int m2d_error_exit_status(const m2d_error_t *err);

#endif
