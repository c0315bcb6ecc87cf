#include "core/redact.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* Characters that end the authority part of a URI inside free text. */
static int ends_authority(char c) {
  return c == '\0' || c == '/' || c == ' ' || c == '\t' || c == '\n' || c == '"' || c == '\'' ||
         c == '?' || c == ',';
}

static void redact_uris(const char *text, char *out, size_t outsz) {
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

/* Secrets that are not URI passwords, each masked up to the end of its value: a SAS token's
 * signature (sig=), a connection string's AccountKey= and SharedAccessSignature=, and the
 * credentials of an Authorization header (to the end of the line). */
static const struct {
  const char *marker;
  const char *ends; /* characters that end the value, besides NUL and line ends */
} secrets[] = {
    {"sig=", "&;\"' \t,"},
    {"AccountKey=", ";\"' \t,"},
    {"SharedAccessSignature=", ";\"' \t,"},
    {"Authorization:", ""},
};

static void mask_secrets(const char *text, char *out, size_t outsz) {
  size_t o = 0;
  const char *p = text;
  while (*p && o + 1 < outsz) {
    size_t hit = 0, ml = 0;
    /* a marker counts at the start of a word ("xsig=" is no SAS parameter) */
    bool boundary = p == text || !isalnum((unsigned char)p[-1]);
    for (size_t i = 0; boundary && i < sizeof secrets / sizeof secrets[0]; i++) {
      size_t l = strlen(secrets[i].marker);
      if (strncasecmp(p, secrets[i].marker, l) == 0) {
        hit = i + 1;
        ml = l;
        break;
      }
    }
    if (!hit) {
      out[o++] = *p++;
      continue;
    }
    for (size_t i = 0; i < ml && o + 1 < outsz; i++) out[o++] = *p++;
    if (secrets[hit - 1].marker[ml - 1] == ':') /* "Authorization: SharedKey a:b": all of it */
      while (*p == ' ' && o + 1 < outsz) out[o++] = *p++;
    const char *v = p;
    while (*p && *p != '\n' && *p != '\r' && !strchr(secrets[hit - 1].ends, *p)) p++;
    if (p > v)
      for (const char *m = "****"; *m && o + 1 < outsz; m++) out[o++] = *m;
  }
  out[o] = '\0';
}

void m2d_redact(const char *text, char *out, size_t outsz) {
  if (outsz == 0) return;
  char *tmp = malloc(outsz);
  if (!tmp) { /* no memory for the second pass: print nothing rather than a secret */
    snprintf(out, outsz, "%s", "(message withheld: out of memory)");
    return;
  }
  redact_uris(text, tmp, outsz);
  mask_secrets(tmp, out, outsz);
  free(tmp);
}
