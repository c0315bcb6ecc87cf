/* A growable byte buffer with a hard cap (like curl's dynbuf): exceeding the cap is an error,
 * never an out-of-memory. */
#ifndef M2D_CORE_BUF_H
#define M2D_CORE_BUF_H

#include "core/error.h"

#include <stdint.h>

typedef struct {
  uint8_t *data; /* owned; NULL until the first append */
  size_t len;
  size_t cap;
  size_t max; /* hard limit on len */
} m2d_buf_t;

/* Initializes an empty buffer that may grow to max bytes. No allocation yet. */
void m2d_buf_init(m2d_buf_t *b, size_t max);
/* Frees the storage; b may be reused after m2d_buf_init. Accepts NULL. */
void m2d_buf_free(m2d_buf_t *b);
/* Makes room for n more bytes. */
bool m2d_buf_reserve(m2d_buf_t *b, size_t n, m2d_error_t *err);
bool m2d_buf_append(m2d_buf_t *b, const void *p, size_t n, m2d_error_t *err);
bool m2d_buf_append_str(m2d_buf_t *b, const char *s, m2d_error_t *err);
bool m2d_buf_appendf(m2d_buf_t *b, m2d_error_t *err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
bool m2d_buf_append_byte(m2d_buf_t *b, uint8_t c, m2d_error_t *err);
/* Appends v as an unsigned LEB128 varint (7 bits a byte, low first), the form of Thrift's
 * compact protocol and of Parquet's RLE run headers. */
bool m2d_buf_append_varint(m2d_buf_t *b, uint64_t v, m2d_error_t *err);
/* The inverse: reads the varint at *p (bytes up to end), moving *p past it. 1 when read, 0 when
 * the bytes end inside it, -1 when it runs past 10 bytes (more than 64 bits). */
static inline int m2d_varint_read(const uint8_t **p, const uint8_t *end, uint64_t *v) {
  *v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (*p >= end) return 0;
    uint8_t b = *(*p)++;
    *v |= (uint64_t)(b & 0x7f) << shift;
    if (!(b & 0x80)) return 1;
  }
  return -1;
}
/* Appends a NUL without counting it in len, so data can be used as a C string. */
bool m2d_buf_terminate(m2d_buf_t *b, m2d_error_t *err);
/* Sets len to 0, keeps the storage. */
void m2d_buf_reset(m2d_buf_t *b);
/* Hands the storage to the caller (free() it) and resets b to empty. */
uint8_t *m2d_buf_steal(m2d_buf_t *b, size_t *len);

#endif
