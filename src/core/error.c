#include "core/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

bool m2d_error_set(m2d_error_t *err, m2d_err_domain_t domain, int code, const char *fmt, ...) {
  if (!err) return false;
  err->domain = domain;
  err->code = code;
  err->retriable = false;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err->message, sizeof err->message, fmt, ap);
  va_end(ap);
  return false;
}

bool m2d_error_prefix(m2d_error_t *err, const char *fmt, ...) {
  if (!err) return false;
  char prefix[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(prefix, sizeof prefix, fmt, ap);
  va_end(ap);
  size_t plen = strlen(prefix), cap = sizeof err->message - 1;
  if (plen > cap) plen = cap;
  size_t mlen = strnlen(err->message, cap);
  if (mlen > cap - plen) mlen = cap - plen; /* keep the prefix, cut the tail */
  memmove(err->message + plen, err->message, mlen);
  memcpy(err->message, prefix, plen);
  err->message[plen + mlen] = '\0';
  return false;
}

void m2d_error_clear(m2d_error_t *err) {
  if (err) memset(err, 0, sizeof *err);
}

const char *m2d_error_domain_name(m2d_err_domain_t domain) {
  switch (domain) {
  case M2D_ERR_NONE: return "none";
  case M2D_ERR_USAGE: return "usage";
  case M2D_ERR_IO: return "io";
  case M2D_ERR_MONGO: return "mongo";
  case M2D_ERR_FORMAT: return "format";
  case M2D_ERR_LIMIT: return "limit";
  case M2D_ERR_CONFLICT: return "conflict";
  case M2D_ERR_INTERNAL: return "internal";
  case M2D_ERR_KAFKA: return "kafka";
  }
  return "unknown";
}

int m2d_error_exit_status(const m2d_error_t *err) {
  return err && err->domain == M2D_ERR_USAGE ? 2 : 1;
}
