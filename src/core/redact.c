#include "core/redact.h"

#include <string.h>

/* Characters that end the authority part of a URI inside free text. */
static int ends_authority(char c) {
  return c == '\0' || c == '/' || c == ' ' || c == '\t' || c == '\n' || c == '"' || c == '\'' ||
         c == '?' || c == ',';
}

void m2d_redact(const char *text, char *out, size_t outsz) {
  if (outsz == 0) return;
  size_t o = 0;
  const char *p = text;
#define PUT(c)                                                                                    \
  do {                                                                                            \
    char c_ = (c); /* always evaluated: the argument advances the input */                     \
    if (o + 1 < outsz) out[o++] = c_;                                                             \
  } while (0)
  while (*p) {
    const char *scheme_end = strstr(p, "://");
    if (!scheme_end) {
      while (*p) PUT(*p++);
      break;
    }
    const char *auth = scheme_end + 3;
    while (p < auth) PUT(*p++);
    /* user info ends at the last '@' before the end of the authority */
    const char *end = auth;
    const char *at = NULL;
    while (!ends_authority(*end)) {
      if (*end == '@') at = end;
      end++;
    }
    const char *colon = NULL;
    if (at) {
      colon = memchr(auth, ':', (size_t)(at - auth));
    }
    if (at && colon) {
      while (p <= colon) PUT(*p++);
      for (const char *s = "****"; *s; s++) PUT(*s);
      p = at;
    }
    while (p < end) PUT(*p++);
  }
#undef PUT
  out[o] = '\0';
}
