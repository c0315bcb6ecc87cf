/* Small text checks on hot paths (checkpoint paths, every string of a dump). */
#ifndef M2D_CORE_TEXT_H
#define M2D_CORE_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* True when no byte of s has its high bit set (ASCII, which is valid UTF-8 as it is); eight
 * bytes at a time, since most keys and strings are ASCII and the full UTF-8 checks go character
 * by character. */
static inline bool m2d_ascii(const void *s, size_t len) {
  const uint8_t *p = s;
  uint64_t hi = 0, w;
  size_t i = 0;
  for (; i + 8 <= len; i += 8) {
    memcpy(&w, p + i, 8);
    hi |= w;
  }
  for (; i < len; i++) hi |= p[i];
  return !(hi & 0x8080808080808080u);
}

#endif
