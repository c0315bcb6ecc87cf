#include "core/redact.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Characters that end the authority part of a URI inside free text. */
static int ends_authority(char c) {
  return c == '\0' || c == '/' || c == ' ' || c == '\t' || c == '\n' || c == '"' || c == '\'' ||
         c == '?' || c == ',';
}

static void redact_uris(const char *text, char *out, size_t outsz);

/* Keys whose values are secrets wherever they appear (query strings, connection strings,
 * headers, JSON): SigV4 presigned parameters and headers, Azure SAS signatures and account keys,
 * OAuth tokens. Matched case-insensitively, at the start of the text or after a separator. */
static const char *const secret_keys[] = {
    "X-Amz-Signature=", "X-Amz-Credential=", "X-Amz-Security-Token=", "x-amz-security-token:", "Signature=",
    "sig=", "AccountKey=", "SharedAccessSignature=", "access_token=", "Authorization:", "\"private_key\":",
    "\"access_token\":", "client_secret=",
};

static int ends_value(char c) {
  return c == '\0' || c == '&' || c == ';' || c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '"' ||
         c == '\'' || c == ',' || c == '<' || c == '>';
}

static int separator(char c) {
  return c == '?' || c == '&' || c == ';' || c == ' ' || c == '\t' || c == '\n' || c == '"' || c == '\'' ||
         c == ',' || c == '{' || c == '(' || c == '=';
}

static void redact_keys(const char *text, char *out, size_t outsz) {
  size_t o = 0;
  const char *p = text;
  while (*p && o + 1 < outsz) {
    size_t klen = 0;
    if (p == text || separator(p[-1]))
      for (size_t k = 0; k < sizeof secret_keys / sizeof *secret_keys; k++) {
        size_t n = strlen(secret_keys[k]);
        if (strncasecmp(p, secret_keys[k], n) == 0) {
          klen = n;
          break;
        }
      }
    if (!klen) {
      out[o++] = *p++;
      continue;
    }
    for (size_t i = 0; i < klen && o + 1 < outsz; i++) out[o++] = *p++;
    /* a header's or a JSON member's value: spaces and an opening quote first, then the rest of
     * the line or the string */
    bool to_line = p[-1] == ':';
    while (*p == ' ' && o + 1 < outsz) out[o++] = *p++;
    bool quoted = *p == '"';
    if (quoted && o + 1 < outsz) out[o++] = *p++;
    const char *v = p;
    if (quoted) while (*p && *p != '"') p += (*p == '\\' && p[1]) ? 2 : 1;
    else if (to_line) while (*p && *p != '\n' && *p != '\r') p++;
    else while (!ends_value(*p)) p++;
    if (p > v)
      for (const char *m = "****"; *m && o + 1 < outsz; m++) out[o++] = *m;
  }
  out[o] = '\0';
}

void m2d_redact(const char *text, char *out, size_t outsz) {
  if (outsz == 0) return;
  char stack[4096];
  char *tmp = outsz <= sizeof stack ? stack : malloc(outsz);
  if (!tmp) { /* no memory for two passes: the URIs only */
    redact_uris(text, out, outsz);
    return;
  }
  redact_uris(text, tmp, outsz);
  redact_keys(tmp, out, outsz);
  if (tmp != stack) free(tmp);
}

static void redact_uris(const char *text, char *out, size_t outsz) {
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
