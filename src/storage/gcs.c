/* The Google Cloud Storage store (gs://bucket/prefix), over the JSON API through storage/http.
 *
 * Commits are put-if-absent through a media upload with ifGenerationMatch=0 (412: another
 * writer has the version), as delta-rs and Delta Spark do on GCS, without a lock service. The
 * first conditional write of a store probes the server (the same hidden key written twice, the
 * second must be refused) because an emulator or a proxy that drops the condition would let two
 * writers overwrite each other's commits; --unsafe-single-writer accepts such a server. A
 * commit whose answer was lost and whose retry meets 412 is resolved by reading the object
 * back, as in s3.c.
 *
 * Data files go up as one media upload up to 8 MiB, else through a resumable upload session
 * (chunks of 8 MiB, a multiple of the 256 KiB GCS asks of every chunk but the last), cancelled
 * when the sink is aborted or a chunk fails. GCS has no listing of open sessions: one left by a
 * killed process holds no object and expires after a week by itself, so abort_uploads is not
 * implemented. Reads are ranged GETs of one generation with a read-ahead window. The probe, the
 * read-back, the read-ahead and the listing's bookkeeping are object_store's; this file holds
 * what is GCS's: OAuth, URLs, requests, JSON errors.
 *
 * Credentials: a bearer token from GOOGLE_OAUTH_ACCESS_TOKEN or CLOUDSDK_AUTH_ACCESS_TOKEN, or
 * the service account key of GOOGLE_APPLICATION_CREDENTIALS (an RS256-signed JWT exchanged at
 * its token_uri for an access token, cached process-wide until shortly before it expires). An
 * emulator (STORAGE_EMULATOR_HOST, the variable of Google's client libraries) may be reached
 * without any. No token, key or JWT is ever put in a message: request lines name the method,
 * the object and the status. */
#include "storage/http.h"
#include "storage/object_store.h"

#include "core/log.h"

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#define CHUNK_SIZE (8u << 20)  /* simple upload up to this; resumable chunks of this size above */
#define MAX_LIST_RESPONSE (64u << 20)
#define MAX_ANSWER (1u << 20) /* JSON metadata, errors, token answers */
#define DEFAULT_ENDPOINT "https://storage.googleapis.com"
#define DEFAULT_TOKEN_URI "https://oauth2.googleapis.com/token"
#define SCOPE "https://www.googleapis.com/auth/devstorage.read_write"

typedef struct {
  m2d_store_t base;
  m2d_http_t *http;
  char bucket[256];
  char prefix[1024];   /* without leading or trailing '/', may be empty */
  char endpoint[512];  /* scheme://host[:port], no trailing '/' */
  bool emulator;       /* STORAGE_EMULATOR_HOST: credentials optional */
  char cred_source[1100]; /* for messages: "GOOGLE_OAUTH_ACCESS_TOKEN", "the service account x@y (FILE)" */
  char *static_token;     /* a token from the environment, or NULL */
  EVP_PKEY *sa_key;       /* a service account's private key, or NULL */
  char sa_email[320], sa_key_id[128], token_uri[512];
  m2d_objstore_commits_t commits;
} gcs_t;

/* --- small helpers ------------------------------------------------------------------------ */

static double mono_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + t.tv_nsec / 1e9;
}

static void wipe_free(char *p) {
  if (!p) return;
  memset(p, 0, strlen(p));
  free(p);
}

static void wipe_buf(m2d_buf_t *b) {
  if (b->data && b->cap) memset(b->data, 0, b->cap);
  m2d_buf_free(b);
}

/* The object name of key (relative to the store's prefix; "" is the prefix itself). */
static bool object_name(const gcs_t *s, const char *key, m2d_buf_t *out, m2d_error_t *err) {
  m2d_buf_reset(out);
  return m2d_buf_appendf(out, err, "%s%s%s", s->prefix, s->prefix[0] && key[0] ? "/" : "", key) &&
         m2d_buf_terminate(out, err);
}

/* Appends the percent-encoding of s (every '/' encoded too: an object name is one path segment). */
static bool append_enc(m2d_buf_t *url, const char *s, m2d_error_t *err) {
  m2d_buf_t enc;
  m2d_buf_init(&enc, 1 << 17);
  bool ok = m2d_http_encode(s, false, &enc, err) && m2d_buf_append(url, enc.data, enc.len, err);
  m2d_buf_free(&enc);
  return ok;
}

/* {endpoint}/storage/v1/b/{bucket}/o/{name}[?query] */
static bool object_url(const gcs_t *s, const char *key, const char *query, m2d_buf_t *url, m2d_error_t *err) {
  m2d_buf_t name;
  m2d_buf_init(&name, 1 << 16);
  m2d_buf_reset(url);
  bool ok = object_name(s, key, &name, err) && m2d_buf_appendf(url, err, "%s/storage/v1/b/", s->endpoint) &&
            append_enc(url, s->bucket, err) && m2d_buf_append_str(url, "/o/", err) &&
            append_enc(url, (const char *)name.data, err) &&
            (!query || !*query || m2d_buf_appendf(url, err, "?%s", query)) && m2d_buf_terminate(url, err);
  m2d_buf_free(&name);
  return ok;
}

/* {endpoint}/upload/storage/v1/b/{bucket}/o?uploadType=TYPE&name={name}[&extra] */
static bool upload_url(const gcs_t *s, const char *key, const char *type, const char *extra, m2d_buf_t *url,
                       m2d_error_t *err) {
  m2d_buf_t name;
  m2d_buf_init(&name, 1 << 16);
  m2d_buf_reset(url);
  bool ok = object_name(s, key, &name, err) && m2d_buf_appendf(url, err, "%s/upload/storage/v1/b/", s->endpoint) &&
            append_enc(url, s->bucket, err) && m2d_buf_appendf(url, err, "/o?uploadType=%s&name=", type) &&
            append_enc(url, (const char *)name.data, err) &&
            (!extra || !*extra || m2d_buf_appendf(url, err, "&%s", extra)) && m2d_buf_terminate(url, err);
  m2d_buf_free(&name);
  return ok;
}

/* A JSON number or a decimal string (GCS writes int64 values as strings), or -1. */
static int64_t json_int64(const json_t *v) {
  if (json_is_integer(v)) return (int64_t)json_integer_value(v);
  if (json_is_string(v)) {
    char *end;
    long long n = strtoll(json_string_value(v), &end, 10);
    if (end != json_string_value(v) && !*end) return n;
  }
  return -1;
}

/* --- credentials ---------------------------------------------------------------------------- */

/* Tokens of service accounts, for the whole process (a command opens several stores). */
static struct {
  char email[320], token_uri[512];
  char *token;
  double refresh_at; /* monotonic seconds */
} token_cache[4];
static pthread_mutex_t token_lock = PTHREAD_MUTEX_INITIALIZER;

static bool b64url(const unsigned char *p, size_t n, m2d_buf_t *out, m2d_error_t *err) {
  size_t need = 4 * ((n + 2) / 3) + 1;
  if (!m2d_buf_reserve(out, need, err)) return false;
  int w = EVP_EncodeBlock(out->data + out->len, p, (int)n);
  if (w < 0) return m2d_error_set(err, M2D_ERR_INTERNAL, 0, "base64 encoding failed");
  uint8_t *q = out->data + out->len;
  size_t len = (size_t)w;
  while (len && q[len - 1] == '=') len--;
  for (size_t i = 0; i < len; i++) q[i] = q[i] == '+' ? '-' : q[i] == '/' ? '_' : q[i];
  out->len += len;
  return true;
}

static bool b64url_json(json_t *j, m2d_buf_t *out, m2d_error_t *err) {
  char *text = json_dumps(j, JSON_COMPACT);
  if (!text) return m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory");
  bool ok = b64url((const unsigned char *)text, strlen(text), out, err);
  free(text);
  return ok;
}

/* header.claims.signature, RS256 (RSASSA-PKCS1-v1_5 with SHA-256) by the service account's key. */
static bool make_jwt(const gcs_t *s, m2d_buf_t *jwt, m2d_error_t *err) {
  time_t now = time(NULL);
  json_t *hdr = json_pack("{s:s, s:s}", "alg", "RS256", "typ", "JWT");
  if (hdr && s->sa_key_id[0]) json_object_set_new(hdr, "kid", json_string(s->sa_key_id));
  json_t *claims = json_pack("{s:s, s:s, s:s, s:I, s:I}", "iss", s->sa_email, "scope", SCOPE, "aud", s->token_uri,
                             "iat", (json_int_t)now, "exp", (json_int_t)now + 3600);
  bool ok = hdr && claims ? b64url_json(hdr, jwt, err) && m2d_buf_append_byte(jwt, '.', err) &&
                                b64url_json(claims, jwt, err)
                          : m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory");
  json_decref(hdr);
  json_decref(claims);
  if (!ok) return false;
  unsigned char sig[1024];
  size_t siglen = sizeof sig;
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  ok = ctx && EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, s->sa_key) == 1 &&
       EVP_DigestSign(ctx, sig, &siglen, jwt->data, jwt->len) == 1;
  EVP_MD_CTX_free(ctx);
  if (!ok)
    return m2d_error_set(err, M2D_ERR_USAGE, 0, "%s: could not sign with the service account's private_key",
                         s->cred_source);
  return m2d_buf_append_byte(jwt, '.', err) && b64url(sig, siglen, jwt, err) && m2d_buf_terminate(jwt, err);
}

/* The JWT exchanged at token_uri for an access token: *token (malloc'ed), *expires_in. */
static bool fetch_token(gcs_t *s, char **token, long *expires_in, m2d_error_t *err) {
  m2d_buf_t jwt, body, answer;
  m2d_buf_init(&jwt, 1 << 16);
  m2d_buf_init(&body, 1 << 17);
  m2d_buf_init(&answer, MAX_ANSWER);
  bool ok = make_jwt(s, &jwt, err) &&
            m2d_buf_appendf(&body, err, "grant_type=urn%%3Aietf%%3Aparams%%3Aoauth%%3Agrant-type%%3Ajwt-bearer"
                                        "&assertion=%s",
                            (const char *)jwt.data);
  char what[700];
  snprintf(what, sizeof what, "POST %s (a token for %s)", s->token_uri, s->sa_email);
  m2d_http_response_t r;
  if (ok) {
    static const char *const headers[] = {"Content-Type: application/x-www-form-urlencoded", "Accept: application/json",
                                          NULL};
    m2d_http_request_t req = {.method = "POST", .url = s->token_uri, .headers = headers, .body = body.data,
                              .body_len = body.len, .what = what, .response = &answer, .max_response = MAX_ANSWER};
    ok = m2d_http_do(s->http, &req, &r, err);
  }
  json_t *j = NULL;
  if (ok) {
    j = json_loadb((const char *)answer.data, answer.len, 0, NULL);
    const char *tok = json_string_value(json_object_get(j, "access_token"));
    if (r.status == 200 && tok && *tok) {
      *token = strdup(tok);
      json_int_t e = json_integer_value(json_object_get(j, "expires_in"));
      *expires_in = e > 0 ? (long)e : 3600;
      if (!*token) ok = m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory");
      memset((char *)tok, 0, strlen(tok));
    } else {
      const char *code = json_string_value(json_object_get(j, "error"));
      const char *desc = json_string_value(json_object_get(j, "error_description"));
      ok = m2d_error_set(err, M2D_ERR_IO, (int)r.status,
                         "%s: the token endpoint answered %ld%s%s%s%s; check GOOGLE_APPLICATION_CREDENTIALS (the key "
                         "may have been deleted or disabled, or this machine's clock is off)",
                         s->cred_source, r.status, code ? " " : "", code ? code : "", desc ? ": " : "",
                         desc ? desc : "");
      if (err) err->retriable = r.status >= 500 || r.status == 429;
    }
  }
  json_decref(j);
  wipe_buf(&jwt);
  wipe_buf(&body);
  wipe_buf(&answer);
  return ok;
}

/* "Authorization: Bearer TOKEN" (malloc'ed; wipe_free it), or NULL without credentials (an
 * emulator). forget: the cached token was refused, fetch another. */
static bool auth_header(gcs_t *s, bool forget, char **out, m2d_error_t *err) {
  *out = NULL;
  const char *tok = s->static_token;
  char *fetched = NULL;
  bool ok = true;
  if (s->sa_key) {
    pthread_mutex_lock(&token_lock);
    int slot = -1, free_slot = -1;
    for (int i = 0; i < 4; i++) {
      if (token_cache[i].email[0] && strcmp(token_cache[i].email, s->sa_email) == 0 &&
          strcmp(token_cache[i].token_uri, s->token_uri) == 0)
        slot = i;
      else if (!token_cache[i].email[0] && free_slot < 0)
        free_slot = i;
    }
    if (slot < 0) slot = free_slot >= 0 ? free_slot : 0;
    double now = mono_s();
    if (forget || !token_cache[slot].token || strcmp(token_cache[slot].email, s->sa_email) != 0 ||
        strcmp(token_cache[slot].token_uri, s->token_uri) != 0 || now >= token_cache[slot].refresh_at) {
      char *t = NULL;
      long expires_in = 0;
      ok = fetch_token(s, &t, &expires_in, err);
      if (ok) {
        wipe_free(token_cache[slot].token);
        token_cache[slot].token = t;
        snprintf(token_cache[slot].email, sizeof token_cache[slot].email, "%s", s->sa_email);
        snprintf(token_cache[slot].token_uri, sizeof token_cache[slot].token_uri, "%s", s->token_uri);
        /* renewed five minutes before it expires (a quarter of its life when that is short) */
        long margin = expires_in / 4 < 300 ? expires_in / 4 : 300;
        token_cache[slot].refresh_at = now + (double)(expires_in - margin);
        m2d_debug("gs://%s: an access token for %s, valid %ld s", s->bucket, s->sa_email, expires_in);
      }
    }
    if (ok) fetched = strdup(token_cache[slot].token);
    pthread_mutex_unlock(&token_lock);
    if (!ok) return false;
    if (!fetched) return m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory");
    tok = fetched;
  }
  if (!tok) return true;
  size_t n = strlen(tok) + 32;
  *out = malloc(n);
  if (*out) snprintf(*out, n, "Authorization: Bearer %s", tok);
  wipe_free(fetched);
  return *out ? true : m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory");
}

/* --- requests ----------------------------------------------------------------------------- */

typedef struct {
  const char *method;
  const char *url;
  const char *what;
  const char *const *extra; /* extra headers, NULL-terminated */
  const char *content_type; /* for a body (and every POST/PUT) */
  const void *body;
  size_t body_len;
  bool no_auth; /* a URL outside the endpoint (a session on another host): no bearer token */
  m2d_buf_t *response;
  size_t max_response;
} gcs_call_t;

static bool gcs_do(gcs_t *s, const gcs_call_t *c, m2d_http_response_t *r, m2d_error_t *err) {
  bool ok = false;
  for (int round = 0; round < 2; round++) {
    char *auth = NULL;
    if (!c->no_auth && !auth_header(s, round > 0, &auth, err)) return false;
    const char *headers[16];
    int n = 0;
    if (auth) headers[n++] = auth;
    char ct[160];
    if (c->body || strcmp(c->method, "PUT") == 0 || strcmp(c->method, "POST") == 0) {
      snprintf(ct, sizeof ct, "Content-Type: %s", c->content_type ? c->content_type : "application/octet-stream");
      headers[n++] = ct;
    }
    for (const char *const *h = c->extra; h && *h && n < 15; h++) headers[n++] = *h;
    headers[n] = NULL;
    m2d_http_request_t req = {.method = c->method, .url = c->url, .headers = headers, .body = c->body,
                              .body_len = c->body_len, .what = c->what, .response = c->response,
                              .max_response = c->max_response};
    ok = m2d_http_do(s->http, &req, r, err);
    wipe_free(auth);
    /* a service account's token refused before it expired (revoked, clock skew): one new one */
    if (!(ok && r->status == 401 && s->sa_key && !c->no_auth)) break;
    m2d_debug("%s: the access token was refused, fetching another", c->what);
  }
  return ok;
}

/* A GCS error answer as a message: status, the JSON error's message, and what to do. */
static bool gcs_fail(const gcs_t *s, const char *what, const m2d_http_response_t *r, const m2d_buf_t *body,
                     bool bucket_level, m2d_error_t *err) {
  char msg[600] = "";
  const char *reason = NULL;
  json_t *j = body && body->len ? json_loadb((const char *)body->data, body->len, 0, NULL) : NULL;
  json_t *e = json_object_get(j, "error");
  if (json_is_object(e)) {
    const char *m = json_string_value(json_object_get(e, "message"));
    if (m) snprintf(msg, sizeof msg, "%s", m);
    reason = json_string_value(json_object_get(json_array_get(json_object_get(e, "errors"), 0), "reason"));
  } else if (!j && body && body->len && body->len < 300) {
    snprintf(msg, sizeof msg, "%.*s", (int)body->len, (const char *)body->data);
    size_t l = strlen(msg);
    while (l && (msg[l - 1] == '\n' || msg[l - 1] == '\r' || msg[l - 1] == ' ')) msg[--l] = '\0';
  }
  char hint[1400] = "";
  if (r->status == 401)
    snprintf(hint, sizeof hint,
             "; check the credentials: %s %s refused (an access token lasts an hour: get a new one, e.g. with "
             "`gcloud auth print-access-token`, or use a service account key in GOOGLE_APPLICATION_CREDENTIALS)",
             s->cred_source[0] ? s->cred_source : "no credentials", s->cred_source[0] ? "was" : "were");
  else if (r->status == 403)
    snprintf(hint, sizeof hint,
             "; check the credentials: %s may not do this on bucket %s (it needs roles/storage.objectAdmin there: "
             "objects get, list, create and delete)",
             s->cred_source[0] ? s->cred_source : "no credentials", s->bucket);
  else if (r->status == 404 && bucket_level)
    snprintf(hint, sizeof hint,
             "; create the bucket first (`gcloud storage buckets create gs://%s`), or check the table URL%s", s->bucket,
             s->emulator ? " and STORAGE_EMULATOR_HOST" : "");
  m2d_error_set(err, M2D_ERR_IO, (int)r->status, "%s: GCS answered %ld%s%s%s%s%s", what, r->status,
                reason ? " " : "", reason ? reason : "", msg[0] ? ": " : "", msg, hint);
  if (err) err->retriable = r->status >= 500 || r->status == 429;
  json_decref(j);
  return false;
}

/* The object's size (and generation) from an answer holding its metadata. */
static bool answer_object(const m2d_buf_t *body, int64_t *size, int64_t *generation) {
  json_t *j = body->len ? json_loadb((const char *)body->data, body->len, 0, NULL) : NULL;
  *size = json_int64(json_object_get(j, "size"));
  if (generation) *generation = json_int64(json_object_get(j, "generation"));
  json_decref(j);
  return *size >= 0;
}

/* --- get, list, remove ------------------------------------------------------------------- */

static bool gcs_get(m2d_store_t *st, const char *key, m2d_buf_t *out, bool *missing, m2d_error_t *err) {
  gcs_t *s = (gcs_t *)st;
  if (missing) *missing = false;
  m2d_buf_t url;
  m2d_buf_init(&url, 1 << 18);
  char what[1200];
  m2d_objstore_describe(&s->base, "GET", key, what, sizeof what);
  m2d_http_response_t r;
  bool ok = object_url(s, key, "alt=media", &url, err);
  gcs_call_t c = {.method = "GET", .url = (const char *)url.data, .what = what, .response = out,
                  .max_response = out->max};
  ok = ok && gcs_do(s, &c, &r, err);
  m2d_buf_free(&url);
  if (!ok) return false;
  m2d_objstore_describe(&s->base, "reading", key, what, sizeof what);
  if (r.status == 404) {
    if (missing) *missing = true;
    m2d_buf_reset(out);
    return m2d_error_set(err, M2D_ERR_IO, 2, "%s: no such object", what);
  }
  if (r.status != 200) {
    bool f = gcs_fail(s, what, &r, out, false, err);
    m2d_buf_reset(out);
    return f;
  }
  return true;
}

/* objects.list of dir: one level (delimiter '/', prefixes are folders) or every object under
 * it, after start_after (startOffset is inclusive: a name equal to it is skipped). */
static bool list_objects(gcs_t *s, const char *dir, bool recursive, const char *start_after, m2d_store_entry_t **out,
                         size_t *n, m2d_error_t *err) {
  *out = NULL;
  *n = 0;
  size_t cap = 0;
  char prefix[2048], offset[4200] = "";
  m2d_objstore_list_prefix(s->prefix, dir, prefix, sizeof prefix);
  size_t plen = strlen(prefix);
  if (start_after) snprintf(offset, sizeof offset, "%s%s", prefix, start_after);
  m2d_buf_t body, url;
  m2d_buf_init(&body, MAX_LIST_RESPONSE);
  m2d_buf_init(&url, 1 << 16);
  char *token = NULL;
  bool ok = true;
  char what[2200];
  snprintf(what, sizeof what, "listing gs://%s/%s", s->bucket, prefix);
  do {
    m2d_buf_reset(&url);
    ok = m2d_buf_appendf(&url, err, "%s/storage/v1/b/", s->endpoint) && append_enc(&url, s->bucket, err) &&
         m2d_buf_append_str(&url, "/o?maxResults=1000&fields=", err) &&
         append_enc(&url, "items(name,size,updated),prefixes,nextPageToken", err) &&
         m2d_buf_append_str(&url, "&prefix=", err) && append_enc(&url, prefix, err) &&
         (recursive || m2d_buf_append_str(&url, "&delimiter=%2F", err)) &&
         (!offset[0] || (m2d_buf_append_str(&url, "&startOffset=", err) && append_enc(&url, offset, err))) &&
         (!token || (m2d_buf_append_str(&url, "&pageToken=", err) && append_enc(&url, token, err))) &&
         m2d_buf_terminate(&url, err);
    if (!ok) break;
    m2d_http_response_t r;
    gcs_call_t c = {.method = "GET", .url = (const char *)url.data, .what = what, .response = &body,
                    .max_response = MAX_LIST_RESPONSE};
    if (!(ok = gcs_do(s, &c, &r, err))) break;
    if (r.status == 404) break; /* no bucket: an empty listing, as a missing directory is */
    if (r.status != 200) {
      ok = gcs_fail(s, what, &r, &body, true, err);
      break;
    }
    json_t *j = json_loadb((const char *)body.data, body.len, 0, NULL);
    if (!json_is_object(j)) {
      json_decref(j);
      ok = m2d_error_set(err, M2D_ERR_IO, 0, "%s: GCS answered a listing that is not JSON", what);
      break;
    }
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(j, "items"), i, v) {
      const char *name = json_string_value(json_object_get(v, "name"));
      if (!name || strlen(name) <= plen || strncmp(name, prefix, plen) != 0) continue;
      const char *rel = name + plen;
      /* hidden names at any level; "folder/" placeholder objects (the console's) are no files */
      if (rel[0] == '.' || strstr(rel, "/.") || rel[strlen(rel) - 1] == '/') continue;
      if (offset[0] && strcmp(name, offset) <= 0) continue;
      if (!recursive && strchr(rel, '/')) continue;
      int64_t size = json_int64(json_object_get(v, "size"));
      const char *upd = json_string_value(json_object_get(v, "updated"));
      if (!(ok = m2d_objstore_push_entry(out, n, &cap, rel, size > 0 ? (uint64_t)size : 0,
                                         upd ? m2d_objstore_parse_rfc3339_ms(upd) : 0, false, err)))
        break;
    }
    json_array_foreach(json_object_get(j, "prefixes"), i, v) {
      const char *p = json_string_value(v);
      if (!ok || !p || strlen(p) <= plen + 1 || strncmp(p, prefix, plen) != 0 || p[plen] == '.') continue;
      char name[2048];
      snprintf(name, sizeof name, "%s", p + plen);
      name[strlen(name) - 1] = '\0'; /* the trailing '/' */
      ok = m2d_objstore_push_entry(out, n, &cap, name, 0, 0, true, err);
    }
    free(token);
    const char *next = json_string_value(json_object_get(j, "nextPageToken"));
    token = next && *next ? strdup(next) : NULL;
    json_decref(j);
    if (next && *next && !token) ok = m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory listing");
  } while (ok && token);
  free(token);
  m2d_buf_free(&body);
  m2d_buf_free(&url);
  if (!m2d_objstore_entries_done(ok, out, n)) return false;
  if (*n) {
    /* a folder is named again on every page of a listing (fake-gcs-server does) */
    size_t w = 0;
    for (size_t i = 0; i < *n; i++) {
      if (w && (*out)[i].is_dir && (*out)[w - 1].is_dir && strcmp((*out)[i].name, (*out)[w - 1].name) == 0) {
        free((*out)[i].name);
        continue;
      }
      (*out)[w++] = (*out)[i];
    }
    *n = w;
  }
  return true;
}

static bool gcs_list(m2d_store_t *st, const char *dir, m2d_store_entry_t **out, size_t *n, m2d_error_t *err) {
  return list_objects((gcs_t *)st, dir, false, NULL, out, n, err);
}

static bool gcs_list_all(m2d_store_t *st, const char *dir, const char *start_after, m2d_store_entry_t **out,
                         size_t *n, m2d_error_t *err) {
  return list_objects((gcs_t *)st, dir, true, start_after, out, n, err);
}

static bool gcs_remove(m2d_store_t *st, const char *key, m2d_error_t *err) {
  gcs_t *s = (gcs_t *)st;
  m2d_buf_t body, url;
  m2d_buf_init(&body, MAX_ANSWER);
  m2d_buf_init(&url, 1 << 18);
  char what[1200];
  m2d_objstore_describe(&s->base, "DELETE", key, what, sizeof what);
  m2d_http_response_t r;
  bool ok = object_url(s, key, NULL, &url, err);
  gcs_call_t c = {.method = "DELETE", .url = (const char *)url.data, .what = what, .response = &body,
                  .max_response = MAX_ANSWER};
  ok = ok && gcs_do(s, &c, &r, err);
  if (ok && r.status != 204 && r.status != 200 && r.status != 404) {
    m2d_objstore_describe(&s->base, "removing", key, what, sizeof what);
    ok = gcs_fail(s, what, &r, &body, false, err);
  }
  m2d_buf_free(&body);
  m2d_buf_free(&url);
  return ok;
}

/* --- uploads and conditional writes ------------------------------------------------------ */

/* One media upload of key (condition: "ifGenerationMatch=0" or NULL). *status gets the answer's
 * status (0 when none came), *lost_answer whether an attempt got no answer first. */
static bool media_upload(gcs_t *s, const char *key, const void *data, size_t len, const char *condition, long *status,
                         bool *lost_answer, m2d_error_t *err) {
  m2d_buf_t body, url;
  m2d_buf_init(&body, MAX_ANSWER);
  m2d_buf_init(&url, 1 << 18);
  char what[1200];
  m2d_objstore_describe(&s->base, "POST (upload)", key, what, sizeof what);
  m2d_http_response_t r = {0};
  bool ok = upload_url(s, key, "media", condition, &url, err);
  gcs_call_t c = {.method = "POST", .url = (const char *)url.data, .what = what, .body = data ? data : "",
                  .body_len = len, .response = &body, .max_response = MAX_ANSWER};
  ok = ok && gcs_do(s, &c, &r, err);
  *status = ok ? r.status : 0;
  if (lost_answer) *lost_answer = r.transport_failed_before;
  m2d_objstore_describe(&s->base, "writing", key, what, sizeof what);
  if (ok && r.status == 412) {
    ok = m2d_error_set(err, M2D_ERR_IO, 17, "%s exists already (created by another writer)", what);
  } else if (ok && r.status == 409) {
    ok = m2d_error_set(err, M2D_ERR_IO, 409, "%s: a concurrent write of the same object is in progress", what);
  } else if (ok && r.status != 200 && r.status != 201) {
    ok = gcs_fail(s, what, &r, &body, true, err);
  } else if (ok) {
    int64_t size = -1;
    if (!answer_object(&body, &size, NULL) || (uint64_t)size != len)
      ok = m2d_error_set(err, M2D_ERR_IO, 0, "%s: GCS stored %lld bytes of %zu", what, (long long)size, len);
  }
  m2d_buf_free(&body);
  m2d_buf_free(&url);
  return ok;
}

static bool put_conditional(m2d_store_t *st, const char *key, const void *data, size_t len, bool *exists,
                            bool *lost_answer, m2d_error_t *err) {
  long status = 0;
  bool ok = media_upload((gcs_t *)st, key, data, len, "ifGenerationMatch=0", &status, lost_answer, err);
  *exists = !ok && (status == 412 || status == 409);
  return ok;
}

static const m2d_objstore_cond_t gcs_cond = {
    .put_conditional = put_conditional,
    .condition = "ifGenerationMatch=0",
    .overwrote = "an upload with ifGenerationMatch=0 overwrote an existing object",
    .servers = "Google Cloud Storage, fake-gcs-server",
};

static bool gcs_put_if_absent(m2d_store_t *st, const char *key, const void *data, size_t len, bool *exists,
                              m2d_error_t *err) {
  return m2d_objstore_put_if_absent(st, &((gcs_t *)st)->commits, key, data, len, exists, err);
}

/* --- sinks: one media upload or a resumable session ------------------------------------- */

typedef struct {
  m2d_sink_t base;
  gcs_t *s;
  char *key;
  m2d_buf_t chunk;
  char *session;      /* the session URI (a capability: never printed) */
  bool session_auth;  /* the session is on the endpoint: the bearer token goes along */
  uint64_t sent;      /* bytes the session holds */
} gcs_sink_t;

static bool start_session(gcs_sink_t *k, m2d_error_t *err) {
  gcs_t *s = k->s;
  m2d_buf_t body, url;
  m2d_buf_init(&body, MAX_ANSWER);
  m2d_buf_init(&url, 1 << 18);
  char what[1200];
  m2d_objstore_describe(&s->base, "POST (resumable upload)", k->key, what, sizeof what);
  static const char *const extra[] = {"X-Upload-Content-Type: application/octet-stream", NULL};
  m2d_http_response_t r;
  bool ok = upload_url(s, k->key, "resumable", NULL, &url, err);
  gcs_call_t c = {.method = "POST", .url = (const char *)url.data, .what = what, .extra = extra,
                  .content_type = "application/json; charset=UTF-8", .body = "{}", .body_len = 2,
                  .response = &body, .max_response = MAX_ANSWER};
  ok = ok && gcs_do(s, &c, &r, err);
  m2d_objstore_describe(&s->base, "starting the upload of", k->key, what, sizeof what);
  if (ok && r.status != 200 && r.status != 201) ok = gcs_fail(s, what, &r, &body, true, err);
  if (ok && strncmp(r.location, "https://", 8) != 0 &&
      !(strncmp(r.location, "http://", 7) == 0 && m2d_objstore_is_loopback(r.location)))
    ok = m2d_error_set(err, M2D_ERR_IO, 0, "%s: GCS gave no usable upload session (Location)", what);
  if (ok && !(k->session = strdup(r.location))) ok = m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory");
  if (ok) {
    size_t el = strlen(s->endpoint);
    k->session_auth = strncmp(k->session, s->endpoint, el) == 0 && k->session[el] == '/';
  }
  memset(r.location, 0, sizeof r.location);
  m2d_buf_free(&body);
  m2d_buf_free(&url);
  return ok;
}

/* The end (exclusive) of what a 308 says the session holds: "bytes=0-N" is N+1, none is 0. */
static uint64_t held_bytes(const char *range) {
  const char *dash = strchr(range, '-');
  return range[0] && dash ? strtoull(dash + 1, NULL, 10) + 1 : 0;
}

/* Sends k->chunk to the session at offset k->sent; final: the last one (the total is known). */
static bool send_chunk(gcs_sink_t *k, bool final, m2d_error_t *err) {
  gcs_t *s = k->s;
  if (!k->session && !start_session(k, err)) return false;
  char what[1200], fail[1200];
  m2d_objstore_describe(&s->base, "PUT (upload chunk)", k->key, what, sizeof what);
  m2d_objstore_describe(&s->base, "uploading", k->key, fail, sizeof fail);
  m2d_buf_t body;
  m2d_buf_init(&body, MAX_ANSWER);
  uint64_t start = k->sent, end = k->sent + k->chunk.len; /* [start, end) */
  uint64_t from = start;                                  /* what the server does not hold yet */
  bool ok = true;
  for (int round = 0; ok && round < 8; round++) {
    char range[128];
    if (from == end)
      snprintf(range, sizeof range, "Content-Range: bytes */%llu", (unsigned long long)end);
    else if (final)
      snprintf(range, sizeof range, "Content-Range: bytes %llu-%llu/%llu", (unsigned long long)from,
               (unsigned long long)end - 1, (unsigned long long)end);
    else
      snprintf(range, sizeof range, "Content-Range: bytes %llu-%llu/*", (unsigned long long)from,
               (unsigned long long)end - 1);
    const char *extra[] = {range, NULL};
    m2d_http_response_t r;
    gcs_call_t c = {.method = "PUT", .url = k->session, .what = what, .extra = extra,
                    .body = k->chunk.data ? k->chunk.data + (from - start) : (const uint8_t *)"",
                    .body_len = (size_t)(end - from), .no_auth = !k->session_auth, .response = &body,
                    .max_response = MAX_ANSWER};
    if (!(ok = gcs_do(s, &c, &r, err))) break;
    if (r.status == 308 && !final) {
      /* the server may keep less than it was sent: the rest again, from where it stopped */
      uint64_t held = held_bytes(r.range);
      if (held == end) {
        k->sent = end;
        m2d_buf_reset(&k->chunk);
        break;
      }
      if (held < start || held > end)
        ok = m2d_error_set(err, M2D_ERR_IO, 0, "%s: the upload session holds %llu bytes, %llu were sent", fail,
                           (unsigned long long)held, (unsigned long long)end);
      from = held;
      continue;
    }
    if ((r.status == 200 || r.status == 201) && final) {
      int64_t size = -1;
      if (!answer_object(&body, &size, NULL) || (uint64_t)size != end) {
        ok = m2d_error_set(err, M2D_ERR_IO, 0, "%s: GCS stored %lld bytes of %llu", fail, (long long)size,
                           (unsigned long long)end);
        m2d_error_t ignore = {0};
        gcs_remove(&s->base, k->key, &ignore); /* a new data file no table refers to yet */
      }
      k->sent = end;
      m2d_buf_reset(&k->chunk);
      free(k->session);
      k->session = NULL; /* finished: nothing to cancel */
      break;
    }
    if (r.status == 308 && final) {
      uint64_t held = held_bytes(r.range);
      if (held < start || held > end) {
        ok = m2d_error_set(err, M2D_ERR_IO, 0, "%s: the upload session holds %llu bytes of %llu", fail,
                           (unsigned long long)held, (unsigned long long)end);
        break;
      }
      from = held;
      continue;
    }
    if (r.status == 404 || r.status == 410)
      ok = m2d_error_set(err, M2D_ERR_IO, (int)r.status, "%s: the upload session is gone (%ld: expired or cancelled)",
                         fail, r.status);
    else
      ok = gcs_fail(s, fail, &r, &body, false, err);
  }
  if (ok && k->chunk.len)
    ok = m2d_error_set(err, M2D_ERR_IO, 0, "%s: the server did not take the chunk after 8 tries", fail);
  m2d_buf_free(&body);
  return ok;
}

/* DELETE on the session URI: GCS answers 499 to a cancelled session. */
static void cancel_session(gcs_sink_t *k) {
  if (!k->session) return;
  char what[1200];
  m2d_objstore_describe(&k->s->base, "DELETE (upload session)", k->key, what, sizeof what);
  m2d_error_t e = {0};
  m2d_http_response_t r;
  static const char *const extra[] = {"Content-Length: 0", NULL}; /* as GCS asks of a cancel */
  gcs_call_t c = {.method = "DELETE", .url = k->session, .what = what, .extra = extra, .no_auth = !k->session_auth};
  if (!gcs_do(k->s, &c, &r, &e) || (r.status != 499 && r.status != 204 && r.status != 200 && r.status != 404 &&
                                    r.status != 410))
    m2d_warn("gs://%s: could not cancel the upload session of %s (%s); it holds no object and expires in a week",
             k->s->bucket, k->key, e.message[0] ? e.message : "unexpected answer");
  wipe_free(k->session);
  k->session = NULL;
}

static bool gcs_sink_write(m2d_sink_t *sk, const void *data, size_t len, m2d_error_t *err) {
  gcs_sink_t *k = (gcs_sink_t *)sk;
  const uint8_t *p = data;
  while (len) {
    /* a full chunk is sent only when more data follows: the last one is sent with the total */
    if (k->chunk.len == CHUNK_SIZE && !send_chunk(k, false, err)) return false;
    size_t room = CHUNK_SIZE - k->chunk.len;
    size_t n = len < room ? len : room;
    if (!m2d_buf_append(&k->chunk, p, n, err)) return false;
    p += n;
    len -= n;
  }
  return true;
}

static bool gcs_sink_close(m2d_sink_t *sk, bool commit, m2d_error_t *err) {
  gcs_sink_t *k = (gcs_sink_t *)sk;
  bool ok = true;
  if (commit) {
    if (!k->session && k->sent == 0) {
      long status;
      ok = media_upload(k->s, k->key, k->chunk.data, k->chunk.len, NULL, &status, NULL, err);
    } else {
      ok = send_chunk(k, true, err);
    }
  }
  if (!commit || !ok) cancel_session(k);
  wipe_free(k->session);
  m2d_buf_free(&k->chunk);
  free(k->key);
  free(k);
  return ok;
}

static m2d_sink_t *gcs_create(m2d_store_t *st, const char *key, m2d_error_t *err) {
  gcs_sink_t *k = calloc(1, sizeof *k);
  if (!k || !(k->key = strdup(key))) {
    free(k);
    return m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory"), NULL;
  }
  k->s = (gcs_t *)st;
  m2d_buf_init(&k->chunk, CHUNK_SIZE);
  k->base.write = gcs_sink_write;
  k->base.close = gcs_sink_close;
  return &k->base;
}

/* --- sources: ranged GETs of one generation with read-ahead ------------------------------ */

/* src->extra: the URL of the generation opened (...?alt=media&generation=G) */
static bool fetch_range(m2d_objstore_source_t *src, uint64_t off, uint64_t len, m2d_buf_t *into, m2d_error_t *err) {
  gcs_t *s = (gcs_t *)src->store;
  char range[96];
  snprintf(range, sizeof range, "Range: bytes=%llu-%llu", (unsigned long long)off, (unsigned long long)(off + len - 1));
  const char *extra[] = {range, NULL};
  char what[1200];
  m2d_objstore_describe(&s->base, "GET", src->key, what, sizeof what);
  m2d_http_response_t r;
  gcs_call_t c = {.method = "GET", .url = (const char *)src->extra, .what = what, .extra = extra, .response = into,
                  .max_response = (size_t)len};
  if (!gcs_do(s, &c, &r, err)) return false;
  m2d_objstore_describe(&s->base, "reading", src->key, what, sizeof what);
  if (r.status == 404)
    return m2d_error_set(err, M2D_ERR_IO, 2, "%s: the object is gone, or was replaced since it was opened", what);
  if (r.status != 206 && r.status != 200) return gcs_fail(s, what, &r, into, false, err);
  if (into->len != len)
    return m2d_error_set(err, M2D_ERR_IO, 0, "%s: asked for %llu bytes at %llu, got %zu (the object changed?)", what,
                         (unsigned long long)len, (unsigned long long)off, into->len);
  return true;
}

static m2d_source_t *gcs_open(m2d_store_t *st, const char *key, m2d_error_t *err) {
  gcs_t *s = (gcs_t *)st;
  m2d_buf_t url, body;
  m2d_buf_init(&url, 1 << 18);
  m2d_buf_init(&body, MAX_ANSWER);
  char what[1200];
  m2d_objstore_describe(&s->base, "GET (metadata)", key, what, sizeof what);
  m2d_http_response_t r;
  bool ok = object_url(s, key, NULL, &url, err);
  gcs_call_t c = {.method = "GET", .url = (const char *)url.data, .what = what, .response = &body,
                  .max_response = MAX_ANSWER};
  ok = ok && gcs_do(s, &c, &r, err);
  m2d_objstore_describe(&s->base, "opening", key, what, sizeof what);
  int64_t size = -1, generation = -1;
  if (ok && r.status == 404) ok = m2d_error_set(err, M2D_ERR_IO, 2, "%s: no such object", what);
  else if (ok && r.status != 200) ok = gcs_fail(s, what, &r, &body, false, err);
  else if (ok && !answer_object(&body, &size, &generation))
    ok = m2d_error_set(err, M2D_ERR_IO, 0, "%s: GCS gave no size for the object", what);
  m2d_buf_free(&body);
  m2d_objstore_source_t *src = NULL;
  if (ok) {
    char q[64];
    if (generation > 0) snprintf(q, sizeof q, "alt=media&generation=%lld", (long long)generation);
    else snprintf(q, sizeof q, "alt=media");
    ok = object_url(s, key, q, &url, err);
  }
  if (ok) ok = (src = m2d_objstore_source_new(st, key, (uint64_t)size, fetch_range, err)) != NULL;
  if (!ok) {
    m2d_buf_free(&url);
    return NULL;
  }
  size_t ulen;
  src->extra = m2d_buf_steal(&url, &ulen);
  return &src->base;
}

/* --- configuration: the environment as Google's tools read it --------------------------- */

static void gcs_destroy(m2d_store_t *st) {
  gcs_t *s = (gcs_t *)st;
  m2d_http_free(s->http);
  wipe_free(s->static_token);
  EVP_PKEY_free(s->sa_key);
  m2d_objstore_commits_destroy(&s->commits);
  free(s);
}

/* The service account key file: client_email, private_key (PEM), private_key_id, token_uri. */
static bool read_service_account(gcs_t *s, const char *path, m2d_error_t *err) {
  json_error_t je;
  json_t *j = json_load_file(path, 0, &je);
  if (!j) /* jansson's text may quote the file (the key): only where it stopped */
    return m2d_error_set(err, M2D_ERR_USAGE, 0,
                         "GOOGLE_APPLICATION_CREDENTIALS %s: not a readable JSON key file (line %d, column %d); "
                         "download a service account key (JSON) or set GOOGLE_OAUTH_ACCESS_TOKEN",
                         path, je.line, je.column);
  const char *type = json_string_value(json_object_get(j, "type"));
  const char *email = json_string_value(json_object_get(j, "client_email"));
  const char *pem = json_string_value(json_object_get(j, "private_key"));
  const char *kid = json_string_value(json_object_get(j, "private_key_id"));
  const char *uri = json_string_value(json_object_get(j, "token_uri"));
  bool ok = true;
  if (type && strcmp(type, "service_account") != 0)
    ok = m2d_error_set(err, M2D_ERR_USAGE, 0,
                       "GOOGLE_APPLICATION_CREDENTIALS %s holds credentials of type '%s'; only service account keys "
                       "are read: use one, or set GOOGLE_OAUTH_ACCESS_TOKEN=$(gcloud auth print-access-token)",
                       path, type);
  else if (!email || !*email || !pem || !*pem)
    ok = m2d_error_set(err, M2D_ERR_USAGE, 0,
                       "GOOGLE_APPLICATION_CREDENTIALS %s: a service account key needs client_email and private_key",
                       path);
  if (ok) {
    snprintf(s->sa_email, sizeof s->sa_email, "%s", email);
    snprintf(s->sa_key_id, sizeof s->sa_key_id, "%s", kid ? kid : "");
    snprintf(s->token_uri, sizeof s->token_uri, "%s", uri && *uri ? uri : DEFAULT_TOKEN_URI);
    snprintf(s->cred_source, sizeof s->cred_source, "the service account %s (GOOGLE_APPLICATION_CREDENTIALS %s)",
             email, path);
    BIO *bio = BIO_new_mem_buf(pem, -1);
    s->sa_key = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    if (!s->sa_key || EVP_PKEY_base_id(s->sa_key) != EVP_PKEY_RSA)
      ok = m2d_error_set(err, M2D_ERR_USAGE, 0,
                         "GOOGLE_APPLICATION_CREDENTIALS %s: private_key is not an RSA private key in PEM", path);
    else if (strncmp(s->token_uri, "https://", 8) != 0 &&
             !(strncmp(s->token_uri, "http://", 7) == 0 && m2d_objstore_is_loopback(s->token_uri)))
      ok = m2d_error_set(err, M2D_ERR_USAGE, 0,
                         "GOOGLE_APPLICATION_CREDENTIALS %s: token_uri %s is not https:// (plain http is accepted "
                         "for loopback test servers only)",
                         path, s->token_uri);
  }
  if (pem) memset((char *)pem, 0, strlen(pem));
  json_decref(j);
  return ok;
}

m2d_store_t *m2d_store_gcs_new(const char *url, const m2d_store_options_t *opts, m2d_error_t *err) {
  if (strncmp(url, "gs://", 5) != 0) return m2d_error_set(err, M2D_ERR_USAGE, 0, "%s is not a gs:// URL", url), NULL;
  const char *b = url + 5;
  const char *slash = strchr(b, '/');
  size_t blen = slash ? (size_t)(slash - b) : strlen(b);
  gcs_t *s = calloc(1, sizeof *s);
  if (!s) return m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory"), NULL;
  m2d_objstore_commits_init(&s->commits, &gcs_cond);
  if (blen == 0 || blen >= sizeof s->bucket) {
    gcs_destroy(&s->base);
    return m2d_error_set(err, M2D_ERR_USAGE, 0, "%s: no bucket name (write gs://BUCKET/PREFIX)", url), NULL;
  }
  memcpy(s->bucket, b, blen);
  snprintf(s->prefix, sizeof s->prefix, "%s", slash ? slash + 1 : "");
  size_t pl = strlen(s->prefix);
  while (pl && s->prefix[pl - 1] == '/') s->prefix[--pl] = '\0';
  snprintf(s->base.root, sizeof s->base.root, "gs://%s%s%s", s->bucket, s->prefix[0] ? "/" : "", s->prefix);
  snprintf(s->commits.where, sizeof s->commits.where, "gs://%s", s->bucket);
  s->commits.endpoint = s->endpoint;

  /* the endpoint: the options', else an emulator's (host:port or a URL), else Google's */
  const char *emu = getenv("STORAGE_EMULATOR_HOST");
  s->emulator = emu && *emu;
  char endpoint[512];
  if (opts && opts->endpoint && *opts->endpoint) snprintf(endpoint, sizeof endpoint, "%s", opts->endpoint);
  else if (s->emulator) snprintf(endpoint, sizeof endpoint, "%s%s", strstr(emu, "://") ? "" : "http://", emu);
  else snprintf(endpoint, sizeof endpoint, "%s", DEFAULT_ENDPOINT);
  size_t el = strlen(endpoint);
  while (el && endpoint[el - 1] == '/') endpoint[--el] = '\0';
  const char *var = s->emulator ? "STORAGE_EMULATOR_HOST" : "the GCS endpoint";
  if (!m2d_objstore_check_endpoint(var, endpoint, "http://HOST:PORT or https://HOST[:PORT]",
                                   "the table's data (and any token)", err)) {
    gcs_destroy(&s->base);
    return NULL;
  }
  snprintf(s->endpoint, sizeof s->endpoint, "%s", endpoint);

  m2d_http_policy_t policy = {0};
  if (opts) policy.max_attempts = opts->max_attempts;
  s->http = m2d_http_new(&policy, err);
  if (!s->http) {
    gcs_destroy(&s->base);
    return NULL;
  }

  /* credentials: a token, else a service account key, else none (an emulator only) */
  static const char *const token_vars[] = {"GOOGLE_OAUTH_ACCESS_TOKEN", "CLOUDSDK_AUTH_ACCESS_TOKEN"};
  for (size_t i = 0; i < 2 && !s->static_token; i++) {
    const char *t = getenv(token_vars[i]);
    if (!t || !*t) continue;
    if (!(s->static_token = strdup(t))) {
      gcs_destroy(&s->base);
      return m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory"), NULL;
    }
    snprintf(s->cred_source, sizeof s->cred_source, "the access token in %s", token_vars[i]);
  }
  const char *sa = getenv("GOOGLE_APPLICATION_CREDENTIALS");
  if (!s->static_token && sa && *sa && !read_service_account(s, sa, err)) {
    gcs_destroy(&s->base);
    return NULL;
  }
  if (!s->static_token && !s->sa_key && !s->emulator) {
    m2d_error_set(err, M2D_ERR_USAGE, 0,
                  "%s: no Google Cloud credentials: set GOOGLE_APPLICATION_CREDENTIALS to a service account key "
                  "(JSON), or GOOGLE_OAUTH_ACCESS_TOKEN to an access token (e.g. `gcloud auth print-access-token`); "
                  "only an emulator (STORAGE_EMULATOR_HOST) is reached without",
                  s->base.root);
    gcs_destroy(&s->base);
    return NULL;
  }
  s->commits.unsafe_single_writer = opts && opts->unsafe_single_writer;
  s->base.get = gcs_get;
  s->base.list = gcs_list;
  s->base.list_all = gcs_list_all;
  s->base.put_if_absent = gcs_put_if_absent;
  s->base.create = gcs_create;
  s->base.open = gcs_open;
  s->base.remove = gcs_remove;
  s->base.abort_uploads = NULL; /* GCS lists no upload sessions; an orphan one expires in a week */
  s->base.destroy = gcs_destroy;
  m2d_debug("%s: endpoint %s%s, %s", s->base.root, s->endpoint, s->emulator ? " (an emulator)" : "",
            s->cred_source[0] ? s->cred_source : "no credentials");
  return &s->base;
}
