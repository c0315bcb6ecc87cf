#include "core/redact.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Characters that end the authority part of a URI inside free text. */
static int ends_authority(char c) {
  return c == '\0' || c == '/' || c == ' ' || c == '\t' || c == '\n' || c == '"' || c == '\'' ||
         c == '?' || c == ',';
}

/* Pass 1: the password of every scheme://user:password@. */
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

static bool b64url_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

static bool token_char(char c) { return b64url_char(c) || c == '.' || c == '~' || c == '+' || c == '/' || c == '='; }

/* Length of the secret that starts a credential at p (0: none starts here); *keep is how much of
 * the match (the name) is printed before "****". */
static size_t secret_at(const char *p, size_t *keep) {
  /* a header line: "Authorization: anything" up to the end of the line */
  if (strncasecmp(p, "authorization:", 14) == 0) {
    size_t k = 14;
    while (p[k] == ' ' || p[k] == '\t') k++;
    size_t e = k;
    while (p[e] && p[e] != '\n' && p[e] != '\r' && p[e] != '"') e++;
    *keep = k;
    return e > k ? e : 0;
  }
  if (strncasecmp(p, "bearer ", 7) == 0) {
    size_t e = 7;
    while (token_char(p[e])) e++;
    *keep = 7;
    return e > 7 ? e : 0;
  }
  /* form and query parameters */
  static const char *const params[] = {"access_token=", "refresh_token=", "id_token=", "assertion=",
                                       "client_secret=", "upload_id="};
  for (size_t i = 0; i < sizeof params / sizeof *params; i++) {
    size_t n = strlen(params[i]);
    if (strncasecmp(p, params[i], n) != 0) continue;
    size_t e = n;
    while (p[e] && p[e] != '&' && p[e] != ' ' && p[e] != '\t' && p[e] != '\n' && p[e] != '"' && p[e] != '\'') e++;
    *keep = n;
    return e > n ? e : 0;
  }
  /* JSON members: "name": "secret" (escaped quotes inside are skipped) */
  static const char *const members[] = {"\"access_token\"", "\"refresh_token\"", "\"id_token\"", "\"private_key\"",
                                        "\"client_secret\""};
  for (size_t i = 0; i < sizeof members / sizeof *members; i++) {
    size_t n = strlen(members[i]);
    if (strncmp(p, members[i], n) != 0) continue;
    size_t k = n;
    while (p[k] == ' ' || p[k] == '\t') k++;
    if (p[k] != ':') continue;
    k++;
    while (p[k] == ' ' || p[k] == '\t') k++;
    if (p[k] != '"') continue;
    k++;
    size_t e = k;
    while (p[e] && p[e] != '"') e += p[e] == '\\' && p[e + 1] ? 2 : 1;
    *keep = k;
    return e > k ? e : 0;
  }
  /* a JSON Web Token: base64url("{...") "." payload "." signature */
  if (strncmp(p, "eyJ", 3) == 0) {
    size_t e = 3, dots = 0;
    for (;;) {
      while (b64url_char(p[e])) e++;
      if (p[e] != '.' || dots == 2) break;
      dots++;
      e++;
    }
    if (dots == 2) {
      *keep = 0;
      return e;
    }
  }
  return 0;
}

/* Pass 2: tokens, keys and signed assertions in headers, parameters and JSON. */
static void redact_tokens(const char *text, char *out, size_t outsz) {
  size_t o = 0;
  bool word_start = true;
  for (const char *p = text; *p;) {
    size_t keep = 0, n = word_start ? secret_at(p, &keep) : 0;
    if (n) {
      for (size_t i = 0; i < keep && o + 1 < outsz; i++) out[o++] = p[i];
      for (const char *s = "****"; *s && o + 1 < outsz; s++) out[o++] = *s;
      p += n;
      word_start = false;
      continue;
    }
    char c = *p++;
    if (o + 1 < outsz) out[o++] = c;
    /* names start after a separator, so "xaccess_token=" or "abceyJ.." inside a word stay */
    word_start = !b64url_char(c);
  }
  out[o] = '\0';
}

/* Pass 3: keys whose values are secrets wherever they appear (query strings, connection strings,
 * headers): SigV4 presigned parameters and the session token header, Azure SAS signatures and
 * account keys. Matched case-insensitively, at the start of the text or after a separator. */
static const char *const secret_keys[] = {
    "X-Amz-Signature=", "X-Amz-Credential=", "X-Amz-Security-Token=", "x-amz-security-token:", "Signature=",
    "sig=", "AccountKey=", "SharedAccessSignature=",
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
    else if (strncasecmp(p - klen, "SharedAccessSignature=", klen) == 0) /* a whole SAS, to the ';' */
      while (*p && *p != ';' && *p != ' ' && *p != '\n' && *p != '"' && *p != '\'') p++;
    else while (!ends_value(*p)) p++;
    if (p > v)
      for (const char *m = "****"; *m && o + 1 < outsz; m++) out[o++] = *m;
  }
  out[o] = '\0';
}

void m2d_redact(const char *text, char *out, size_t outsz) {
  if (outsz == 0) return;
  char stack[8192];
  char *tmp = outsz <= sizeof stack ? stack : malloc(outsz);
  if (!tmp) {
    snprintf(out, outsz, "(a message of %zu bytes, left out: no memory to redact it)", strlen(text));
    return;
  }
  redact_uris(text, out, outsz);
  redact_tokens(out, tmp, outsz);
  redact_keys(tmp, out, outsz);
  if (tmp != stack) free(tmp);
}
