#include "core/buf.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void m2d_buf_init(m2d_buf_t *b, size_t max) {
  memset(b, 0, sizeof *b);
  b->max = max;
}

void m2d_buf_free(m2d_buf_t *b) {
  if (!b) return;
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}

bool m2d_buf_reserve(m2d_buf_t *b, size_t n, m2d_error_t *err) {
  if (n > b->max || b->len > b->max - n)
    return m2d_error_set(err, M2D_ERR_LIMIT, 0,
                         "buffer limit of %zu bytes exceeded (needed %zu more after %zu)", b->max,
                         n, b->len);
  size_t need = b->len + n + 1; /* room for a terminating NUL */
  if (need <= b->cap) return true;
  size_t cap = b->cap ? b->cap : 64;
  while (cap < need) cap = cap > SIZE_MAX / 2 ? need : cap * 2;
  if (cap > b->max + 1) cap = b->max + 1;
  uint8_t *p = realloc(b->data, cap);
  if (!p) return m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory growing a buffer to %zu bytes", cap);
  b->data = p;
  b->cap = cap;
  return true;
}

bool m2d_buf_append(m2d_buf_t *b, const void *p, size_t n, m2d_error_t *err) {
  if (n == 0) return true;
  if (!m2d_buf_reserve(b, n, err)) return false;
  assert(b->len + n < b->cap && b->len + n <= b->max); /* what reserve made room for, NUL included */
  memcpy(b->data + b->len, p, n);
  b->len += n;
  return true;
}

bool m2d_buf_append_str(m2d_buf_t *b, const char *s, m2d_error_t *err) {
  return m2d_buf_append(b, s, strlen(s), err);
}

bool m2d_buf_append_byte(m2d_buf_t *b, uint8_t c, m2d_error_t *err) {
  if (b->len + 1 < b->cap) {
    b->data[b->len++] = c;
    return true;
  }
  return m2d_buf_append(b, &c, 1, err);
}

bool m2d_buf_append_varint(m2d_buf_t *b, uint64_t v, m2d_error_t *err) {
  uint8_t out[10];
  int n = 0;
  while (v >= 0x80) {
    out[n++] = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  out[n++] = (uint8_t)v;
  return m2d_buf_append(b, out, (size_t)n, err);
}

bool m2d_buf_appendf(m2d_buf_t *b, m2d_error_t *err, const char *fmt, ...) {
  va_list ap, ap2;
  va_start(ap, fmt);
  va_copy(ap2, ap);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  bool ok = n >= 0 && m2d_buf_reserve(b, (size_t)n, err);
  if (ok) {
    vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap2);
    b->len += (size_t)n;
  }
  va_end(ap2);
  return ok;
}

bool m2d_buf_terminate(m2d_buf_t *b, m2d_error_t *err) {
  if (!b->data && !m2d_buf_reserve(b, 0, err)) return false;
  b->data[b->len] = 0; /* reserve always keeps one spare byte */
  return true;
}

void m2d_buf_reset(m2d_buf_t *b) { b->len = 0; }

uint8_t *m2d_buf_steal(m2d_buf_t *b, size_t *len) {
  uint8_t *p = b->data;
  if (len) *len = b->len;
  b->data = NULL;
  b->len = b->cap = 0;
  return p;
}
