/* The Azure Blob Storage store (also ADLS Gen2 accounts, through their Blob endpoint), over
 * storage/http with the Blob service REST API: az://container/prefix,
 * abfss://container@account.dfs.core.windows.net/prefix (abfs://, wasbs://, wasb:// too).
 *
 * Requests are signed with Shared Key (HMAC-SHA256 of the canonicalized headers and resource,
 * by the account key) or carry a SAS token in the query. The same design as storage/s3.c:
 *
 * - Commits are put-if-absent through Put Blob with `If-None-Match: *` (409 BlobAlreadyExists or
 *   412: another writer has the version), as delta-rs does on Azure. The first conditional write
 *   of a store probes the server (the same hidden key written twice) and refuses one that
 *   ignores the condition unless --unsafe-single-writer. A commit whose answer was lost and whose
 *   retry finds the key taken is resolved by reading the blob back.
 * - Data files go through a sink that buffers one block: up to 8 MiB one Put Blob, larger ones
 *   Put Block (8 MiB blocks, base64 ids) and one Put Block List that publishes them at once.
 *   Nothing needs aborting: blocks never committed belong to no blob (Get Blob and List Blobs do
 *   not see them) and Azure garbage-collects them after a week.
 * - Reads are ranged GETs (x-ms-range) with a read-ahead window; List Blobs pages by NextMarker.
 *   Azure has no start-after: list_all pages from the prefix and skips the keys up to it.
 *
 * The probe, the read-back, the read-ahead and the listing's bookkeeping are object_store's; this
 * file holds what is Azure's: Shared Key and SAS, URLs, requests, error codes. */
#include "storage/azure.h"
#include "storage/http.h"
#include "storage/object_store.h"

#include "core/log.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#define BLOCK_SIZE (8u << 20) /* one Put Blob up to this, else blocks of this size */
#define MAX_LIST_RESPONSE (64u << 20)
#define API_VERSION "2021-08-06"

typedef struct {
  m2d_store_t base;
  m2d_http_t *http;
  char account[128];
  char container[256];
  char prefix[1024];  /* without leading or trailing '/', may be empty */
  char endpoint[512]; /* scheme://host[:port][/account], no trailing '/' */
  unsigned char key[128];
  size_t key_len; /* 0: no key, the SAS token authorizes */
  char *sas;      /* the SAS token's query (no '?'), or NULL */
  m2d_objstore_commits_t commits;
} az_t;

/* --- URLs ------------------------------------------------------------------------------------ */

bool m2d_azure_parse_url(const char *url, m2d_azure_url_t *out, m2d_error_t *err) {
  memset(out, 0, sizeof *out);
  static const char *const schemes[] = {"az://", "abfss://", "abfs://", "wasbs://", "wasb://"};
  const char *p = NULL;
  bool with_account = false;
  for (size_t i = 0; i < sizeof schemes / sizeof schemes[0]; i++)
    if (strncmp(url, schemes[i], strlen(schemes[i])) == 0) {
      p = url + strlen(schemes[i]);
      with_account = i > 0;
    }
  if (!p) return m2d_error_set(err, M2D_ERR_USAGE, 0, "%s is not an az:// or abfss:// URL", url);
  const char *slash = strchr(p, '/');
  size_t alen = slash ? (size_t)(slash - p) : strlen(p);
  const char *at = memchr(p, '@', alen);
  size_t clen = at ? (size_t)(at - p) : alen;
  if (at) {
    const char *host = at + 1;
    size_t hlen = alen - clen - 1;
    const char *dot = memchr(host, '.', hlen);
    size_t acc = dot ? (size_t)(dot - host) : hlen;
    if (hlen == 0 || hlen >= sizeof out->host || acc == 0 || acc >= sizeof out->account)
      return m2d_error_set(err, M2D_ERR_USAGE, 0, "%s: no storage account after '@' (write %s)", url,
                           "abfss://CONTAINER@ACCOUNT.dfs.core.windows.net/PREFIX");
    memcpy(out->host, host, hlen);
    memcpy(out->account, host, acc);
  } else if (with_account) {
    return m2d_error_set(err, M2D_ERR_USAGE, 0, "%s: no storage account (write %s, or az://CONTAINER/PREFIX)", url,
                         "abfss://CONTAINER@ACCOUNT.dfs.core.windows.net/PREFIX");
  }
  if (clen == 0 || clen >= sizeof out->container)
    return m2d_error_set(err, M2D_ERR_USAGE, 0, "%s: no container name (write az://CONTAINER/PREFIX)", url);
  memcpy(out->container, p, clen);
  const char *rest = slash ? slash + 1 : "";
  while (*rest == '/') rest++;
  if (strlen(rest) >= sizeof out->prefix) return m2d_error_set(err, M2D_ERR_USAGE, 0, "%s: the path is too long", url);
  snprintf(out->prefix, sizeof out->prefix, "%s", rest);
  size_t pl = strlen(out->prefix);
  while (pl && out->prefix[pl - 1] == '/') out->prefix[--pl] = '\0';
  return true;
}

/* The request's URL: endpoint/container[/prefix/key][?query][&sas]. key NULL: the container. */
static bool request_url(az_t *s, const char *key, const char *query, m2d_buf_t *url, m2d_error_t *err) {
  m2d_buf_reset(url);
  bool ok = m2d_buf_appendf(url, err, "%s/%s", s->endpoint, s->container);
  if (ok && key) {
    m2d_buf_t full, enc;
    m2d_buf_init(&full, 1 << 16);
    m2d_buf_init(&enc, 1 << 17);
    ok = m2d_buf_appendf(&full, err, "%s%s%s", s->prefix, s->prefix[0] && key[0] ? "/" : "", key) &&
         m2d_buf_terminate(&full, err) && m2d_http_encode((const char *)full.data, true, &enc, err) &&
         m2d_buf_append_byte(url, '/', err) && m2d_buf_append(url, enc.data, enc.len, err);
    m2d_buf_free(&full);
    m2d_buf_free(&enc);
  }
  bool q = query && *query;
  if (ok && q) ok = m2d_buf_appendf(url, err, "?%s", query);
  if (ok && s->sas && !s->key_len) ok = m2d_buf_appendf(url, err, "%c%s", q ? '&' : '?', s->sas);
  return ok && m2d_buf_terminate(url, err);
}

/* --- Shared Key ------------------------------------------------------------------------------ */

typedef struct {
  char *name;  /* lower case */
  char *value; /* decoded (query) or trimmed (header) */
} pair_t;

static int cmp_pairs(const void *a, const void *b) {
  const pair_t *x = a, *y = b;
  int c = strcmp(x->name, y->name);
  return c ? c : strcmp(x->value, y->value);
}

static void free_pairs(pair_t *p, size_t n) {
  for (size_t i = 0; i < n; i++) {
    free(p[i].name);
    free(p[i].value);
  }
  free(p);
}

/* A header's value among "Name: value" lines (case-insensitive), trimmed, or "". */
static const char *find_header(const char *const *headers, const char *name, size_t *len) {
  size_t nl = strlen(name);
  for (const char *const *h = headers; h && *h; h++) {
    if (strncasecmp(*h, name, nl) == 0 && (*h)[nl] == ':') {
      const char *v = *h + nl + 1;
      while (*v == ' ' || *v == '\t') v++;
      size_t l = strlen(v);
      while (l && (v[l - 1] == ' ' || v[l - 1] == '\t')) l--;
      *len = l;
      return v;
    }
  }
  *len = 0;
  return "";
}

bool m2d_azure_string_to_sign(const char *method, const char *url, const char *account, const char *const *headers,
                              size_t content_length, m2d_buf_t *out, m2d_error_t *err) {
  m2d_buf_reset(out);
  bool ok = m2d_buf_appendf(out, err, "%s\n", method);
  static const char *const standard[] = {"Content-Encoding", "Content-Language", NULL /* length */, "Content-MD5",
                                         "Content-Type", "Date", "If-Modified-Since", "If-Match", "If-None-Match",
                                         "If-Unmodified-Since", "Range"};
  for (size_t i = 0; ok && i < sizeof standard / sizeof standard[0]; i++) {
    if (!standard[i]) {
      ok = content_length ? m2d_buf_appendf(out, err, "%zu\n", content_length) : m2d_buf_append_byte(out, '\n', err);
      continue;
    }
    size_t l;
    const char *v = find_header(headers, standard[i], &l);
    ok = m2d_buf_append(out, v, l, err) && m2d_buf_append_byte(out, '\n', err);
  }
  /* x-ms-* headers: lower-case names, sorted, "name:value\n" */
  size_t nh = 0;
  for (const char *const *h = headers; h && *h; h++) nh++;
  pair_t *ph = calloc(nh + 1, sizeof *ph);
  size_t k = 0;
  if (!ph) ok = m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory");
  for (const char *const *h = headers; ok && h && *h; h++) {
    if (strncasecmp(*h, "x-ms-", 5) != 0) continue;
    const char *colon = strchr(*h, ':');
    if (!colon) continue;
    size_t nl = (size_t)(colon - *h);
    const char *v = colon + 1;
    while (*v == ' ' || *v == '\t') v++;
    size_t vl = strlen(v);
    while (vl && (v[vl - 1] == ' ' || v[vl - 1] == '\t')) vl--;
    ph[k].name = strndup(*h, nl);
    ph[k].value = strndup(v, vl);
    if (!ph[k].name || !ph[k].value) {
      k++;
      ok = m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory");
      break;
    }
    for (char *c = ph[k].name; *c; c++) *c = (char)tolower((unsigned char)*c);
    k++;
  }
  if (ok) qsort(ph, k, sizeof *ph, cmp_pairs);
  for (size_t i = 0; ok && i < k; i++) ok = m2d_buf_appendf(out, err, "%s:%s\n", ph[i].name, ph[i].value);
  if (ph) free_pairs(ph, k);
  /* canonicalized resource: /account/path (encoded as sent), then the query's parameters */
  const char *path = strstr(url, "://");
  path = path ? strchr(path + 3, '/') : NULL;
  if (!path) path = "/";
  const char *qm = strchr(path, '?');
  size_t plen = qm ? (size_t)(qm - path) : strlen(path);
  ok = ok && m2d_buf_appendf(out, err, "/%s%.*s", account, (int)plen, path);
  if (ok && qm) {
    size_t nq = 1;
    for (const char *c = qm + 1; *c; c++) nq += *c == '&';
    pair_t *pq = calloc(nq, sizeof *pq);
    size_t m = 0;
    if (!pq) ok = m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory");
    for (const char *c = qm + 1; ok && *c;) {
      const char *amp = strchr(c, '&');
      size_t l = amp ? (size_t)(amp - c) : strlen(c);
      const char *eq = memchr(c, '=', l);
      size_t nl = eq ? (size_t)(eq - c) : l;
      m2d_buf_t n, v;
      m2d_buf_init(&n, 1 << 16);
      m2d_buf_init(&v, 1 << 16);
      m2d_http_decode(c, nl, &n, err);
      if (eq) m2d_http_decode(eq + 1, l - nl - 1, &v, err);
      m2d_buf_terminate(&n, err);
      m2d_buf_terminate(&v, err);
      if (nl) {
        pq[m].name = strdup(n.data ? (const char *)n.data : "");
        pq[m].value = strdup(v.data ? (const char *)v.data : "");
        m++;
        if (!pq[m - 1].name || !pq[m - 1].value) ok = m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory");
        else
          for (char *x = pq[m - 1].name; *x; x++) *x = (char)tolower((unsigned char)*x);
      }
      m2d_buf_free(&n);
      m2d_buf_free(&v);
      c += l + (amp ? 1 : 0);
    }
    if (ok) qsort(pq, m, sizeof *pq, cmp_pairs);
    for (size_t i = 0; ok && i < m; i++) {
      if (i > 0 && strcmp(pq[i].name, pq[i - 1].name) == 0) ok = m2d_buf_appendf(out, err, ",%s", pq[i].value);
      else ok = m2d_buf_appendf(out, err, "\n%s:%s", pq[i].name, pq[i].value);
    }
    if (pq) free_pairs(pq, m);
  }
  return ok && m2d_buf_terminate(out, err);
}

bool m2d_azure_hmac(const unsigned char *key, size_t key_len, const char *text, size_t text_len, char *out,
                    size_t outsz) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (outsz < 45 || !HMAC(EVP_sha256(), key, (int)key_len, (const unsigned char *)text, text_len, mac, &n))
    return false;
  EVP_EncodeBlock((unsigned char *)out, mac, (int)n);
  OPENSSL_cleanse(mac, sizeof mac);
  return true;
}

/* RFC 1123 in GMT, without the locale's names. */
static void http_date(char *out, size_t n) {
  static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  time_t t = time(NULL);
  struct tm tm;
  gmtime_r(&t, &tm);
  snprintf(out, n, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday], tm.tm_mday, months[tm.tm_mon],
           tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* --- XML answers ------------------------------------------------------------------------- */

/* An error answer as a message: the status, the XML's Code and Message (its first line: the
 * rest is the request id and time), and what to do. */
static bool az_fail(az_t *s, const char *what, const m2d_http_response_t *r, const m2d_buf_t *body, m2d_error_t *err) {
  char code[128] = "", msg[512] = "";
  if (body && body->data && body->len) {
    const char *p = (const char *)body->data, *end = p + body->len;
    m2d_objstore_xml_text(p, end, "Code", code, sizeof code);
    m2d_objstore_xml_text(p, end, "Message", msg, sizeof msg);
    msg[strcspn(msg, "\r\n")] = '\0';
  }
  if (!code[0]) snprintf(code, sizeof code, "%s", r->error_code);
  const char *hint = "";
  if (r->status == 403) {
    /* Azure says AuthenticationFailed for a bad signature; Azurite says AuthorizationFailure with
     * Azure's message */
    if (strcmp(code, "AuthenticationFailed") == 0 || strncmp(msg, "Server failed to authenticate", 29) == 0)
      hint = s->key_len ? "; check AZURE_STORAGE_KEY (the account key of AZURE_STORAGE_ACCOUNT)"
                        : "; check AZURE_STORAGE_SAS_TOKEN (expired, or for another account or container?)";
    else
      hint = s->key_len ? "; the account key is not allowed this operation"
                        : "; the SAS token does not allow this operation (it needs read, write, delete and list)";
  } else if (strcmp(code, "ContainerNotFound") == 0) {
    hint = "; create the container first (az storage container create), or check the table URL and "
           "AZURE_STORAGE_ACCOUNT";
  } else if (strcmp(code, "InvalidResourceName") == 0) {
    hint = "; container names are 3-63 lower-case letters, digits and hyphens";
  }
  bool retriable = r->status >= 500 || r->status == 429;
  m2d_error_set(err, M2D_ERR_IO, (int)r->status, "%s: Azure answered %ld%s%s%s%s (account %s, container %s)%s", what,
                r->status, code[0] ? " " : "", code, msg[0] ? ": " : "", msg, s->account, s->container, hint);
  if (err) err->retriable = retriable;
  return false;
}

/* --- requests ------------------------------------------------------------------------------ */

typedef struct {
  const char *method;
  const char *key; /* relative to the prefix; NULL: the container itself */
  const char *query;
  const char *const *extra; /* extra headers, NULL-terminated */
  const void *body;
  size_t body_len;
  m2d_buf_t *response;
  size_t max_response;
  const char *what; /* for messages, instead of "METHOD root/key" */
} az_call_t;

static bool az_do(az_t *s, const az_call_t *c, m2d_http_response_t *resp, m2d_error_t *err) {
  m2d_buf_t url, sts;
  m2d_buf_init(&url, 1 << 18);
  m2d_buf_init(&sts, 1 << 18);
  char what[1400], date[64], date_h[80], auth[300];
  if (c->what) snprintf(what, sizeof what, "%s", c->what);
  else m2d_objstore_describe(&s->base, c->method, c->key, what, sizeof what);
  http_date(date, sizeof date);
  snprintf(date_h, sizeof date_h, "x-ms-date: %s", date);
  bool ok = request_url(s, c->key, c->query, &url, err);
  const char *headers[20];
  int n = 0;
  headers[n++] = date_h;
  headers[n++] = "x-ms-version: " API_VERSION;
  for (const char *const *h = c->extra; h && *h && n < 16; h++) headers[n++] = *h;
  bool has_body = c->body || strcmp(c->method, "PUT") == 0 || strcmp(c->method, "POST") == 0;
  size_t l;
  /* libcurl would send its own form Content-Type with a body (and the signature must name it) */
  if (has_body && !*find_header(c->extra, "Content-Type", &l)) headers[n++] = "Content-Type: application/octet-stream";
  headers[n] = NULL;
  if (ok && s->key_len) {
    char sig[64];
    ok = m2d_azure_string_to_sign(c->method, (const char *)url.data, s->account, headers, has_body ? c->body_len : 0,
                                  &sts, err);
    if (ok && !m2d_azure_hmac(s->key, s->key_len, (const char *)sts.data, sts.len, sig, sizeof sig))
      ok = m2d_error_set(err, M2D_ERR_INTERNAL, 0, "%s: could not sign the request", what);
    if (ok) {
      snprintf(auth, sizeof auth, "Authorization: SharedKey %s:%s", s->account, sig);
      headers[n++] = auth;
      headers[n] = NULL;
    }
    OPENSSL_cleanse(sig, sizeof sig);
  }
  if (ok) {
    m2d_http_request_t req = {
        .method = c->method,
        .url = (const char *)url.data,
        .headers = headers,
        .body = c->body,
        .body_len = c->body_len,
        .what = what,
        .response = c->response,
        .max_response = c->max_response,
    };
    ok = m2d_http_do(s->http, &req, resp, err);
  }
  OPENSSL_cleanse(auth, sizeof auth);
  if (url.data) OPENSSL_cleanse(url.data, url.len); /* a SAS signature */
  m2d_buf_free(&url);
  m2d_buf_free(&sts);
  return ok;
}

/* --- get, list, remove ------------------------------------------------------------------- */

static bool az_get(m2d_store_t *st, const char *key, m2d_buf_t *out, bool *missing, m2d_error_t *err) {
  az_t *s = (az_t *)st;
  if (missing) *missing = false;
  m2d_http_response_t r;
  az_call_t c = {.method = "GET", .key = key, .response = out, .max_response = out->max};
  if (!az_do(s, &c, &r, err)) return false;
  char what[1400];
  m2d_objstore_describe(&s->base, "reading", key, what, sizeof what);
  if (r.status == 404) {
    if (missing) *missing = true;
    m2d_buf_reset(out);
    return m2d_error_set(err, M2D_ERR_IO, 2, "%s: no such blob", what);
  }
  if (r.status != 200) {
    bool f = az_fail(s, what, &r, out, err);
    m2d_buf_reset(out);
    return f;
  }
  return true;
}

/* "Wed, 03 Dec 2025 14:25:00 GMT" in ms since the epoch. */
static int64_t parse_http_date_ms(const char *t) {
  static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
  const char *comma = strchr(t, ',');
  struct tm tm = {0};
  char mon[4] = "";
  if (sscanf(comma ? comma + 1 : t, "%d %3s %d %d:%d:%d", &tm.tm_mday, mon, &tm.tm_year, &tm.tm_hour, &tm.tm_min,
             &tm.tm_sec) != 6)
    return 0;
  const char *m = strstr(months, mon);
  if (!m || !mon[0]) return 0;
  tm.tm_mon = (int)(m - months) / 3;
  tm.tm_year -= 1900;
  return (int64_t)timegm(&tm) * 1000;
}

/* List Blobs of dir: one level (delimiter '/') or every blob under it after start_after. */
static bool list_blobs(az_t *s, const char *dir, bool recursive, const char *start_after, m2d_store_entry_t **out,
                       size_t *n, m2d_error_t *err) {
  *out = NULL;
  *n = 0;
  size_t cap = 0;
  char prefix[2048];
  m2d_objstore_list_prefix(s->prefix, dir, prefix, sizeof prefix);
  size_t plen = strlen(prefix);
  m2d_buf_t body, query, enc;
  m2d_buf_init(&body, MAX_LIST_RESPONSE);
  m2d_buf_init(&query, 1 << 16);
  m2d_buf_init(&enc, 1 << 16);
  char marker[4096] = "";
  bool ok = true;
  char what[2400], req_what[2400];
  snprintf(what, sizeof what, "listing %s/%s", s->base.root, prefix + strlen(s->prefix) + (s->prefix[0] ? 1 : 0));
  snprintf(req_what, sizeof req_what, "GET %s/%s (List Blobs)", s->base.root,
           prefix + strlen(s->prefix) + (s->prefix[0] ? 1 : 0));
  do {
    m2d_buf_reset(&query);
    m2d_buf_reset(&enc);
    /* metadata: an ADLS Gen2 (hierarchical) account lists its directories as blobs marked
     * hdi_isfolder, which are no objects of ours */
    ok = m2d_buf_append_str(&query, "restype=container&comp=list&include=metadata&maxresults=5000", err);
    if (ok && !recursive) ok = m2d_buf_append_str(&query, "&delimiter=%2F", err);
    if (ok && plen) ok = m2d_http_encode(prefix, false, &enc, err) &&
                         m2d_buf_appendf(&query, err, "&prefix=%s", (const char *)enc.data);
    if (ok && marker[0]) {
      m2d_buf_reset(&enc);
      ok = m2d_http_encode(marker, false, &enc, err) && m2d_buf_appendf(&query, err, "&marker=%s", (const char *)enc.data);
    }
    ok = ok && m2d_buf_terminate(&query, err);
    if (!ok) break;
    m2d_http_response_t r;
    az_call_t c = {.method = "GET", .key = NULL, .query = (const char *)query.data, .response = &body,
                   .max_response = MAX_LIST_RESPONSE, .what = req_what};
    if (!(ok = az_do(s, &c, &r, err))) break;
    if (r.status == 404) break; /* no container: an empty listing, as a missing directory is */
    if (r.status != 200) {
      ok = az_fail(s, what, &r, &body, err);
      break;
    }
    const char *p = (const char *)body.data, *end = p + body.len, *q = p;
    char name[2048], val[128];
    while (ok && (q = memmem(q, (size_t)(end - q), "<Blob>", 6))) {
      const char *qe = memmem(q, (size_t)(end - q), "</Blob>", 7);
      if (!qe) break;
      bool folder = (m2d_objstore_xml_text(q, qe, "hdi_isfolder", val, sizeof val) && strcasecmp(val, "true") == 0) ||
                    (m2d_objstore_xml_text(q, qe, "ResourceType", val, sizeof val) && strcmp(val, "directory") == 0);
      if (!folder && m2d_objstore_xml_text(q, qe, "Name", name, sizeof name) && strlen(name) > plen &&
          strncmp(name, prefix, plen) == 0 && name[plen] != '.' && !strstr(name + plen, "/.") &&
          (recursive || !strchr(name + plen, '/')) &&
          !(start_after && strcmp(name + plen, start_after) <= 0)) {
        uint64_t size = m2d_objstore_xml_text(q, qe, "Content-Length", val, sizeof val) ? strtoull(val, NULL, 10) : 0;
        int64_t mt = m2d_objstore_xml_text(q, qe, "Last-Modified", val, sizeof val) ? parse_http_date_ms(val) : 0;
        ok = m2d_objstore_push_entry(out, n, &cap, name + plen, size, mt, false, err);
      }
      q = qe;
    }
    q = p;
    while (ok && (q = memmem(q, (size_t)(end - q), "<BlobPrefix>", 12))) {
      const char *qe = memmem(q, (size_t)(end - q), "</BlobPrefix>", 13);
      if (!qe) break;
      if (m2d_objstore_xml_text(q, qe, "Name", name, sizeof name) && strlen(name) > plen + 1 &&
          strncmp(name, prefix, plen) == 0 && name[plen] != '.') {
        name[strlen(name) - 1] = '\0'; /* the trailing '/' */
        ok = m2d_objstore_push_entry(out, n, &cap, name + plen, 0, 0, true, err);
      }
      q = qe;
    }
    marker[0] = '\0';
    if (ok) m2d_objstore_xml_text(p, end, "NextMarker", marker, sizeof marker);
  } while (ok && marker[0]);
  m2d_buf_free(&body);
  m2d_buf_free(&query);
  m2d_buf_free(&enc);
  return m2d_objstore_entries_done(ok, out, n);
}

static bool az_list(m2d_store_t *st, const char *dir, m2d_store_entry_t **out, size_t *n, m2d_error_t *err) {
  return list_blobs((az_t *)st, dir, false, NULL, out, n, err);
}

/* Azure has no start-after (nor a marker made from a key): the listing pages from the prefix and
 * the keys up to start_after are skipped here, 5,000 per request. */
static bool az_list_all(m2d_store_t *st, const char *dir, const char *start_after, m2d_store_entry_t **out,
                        size_t *n, m2d_error_t *err) {
  return list_blobs((az_t *)st, dir, true, start_after, out, n, err);
}

static bool az_remove(m2d_store_t *st, const char *key, m2d_error_t *err) {
  az_t *s = (az_t *)st;
  m2d_buf_t body;
  m2d_buf_init(&body, 1 << 20);
  m2d_http_response_t r;
  az_call_t c = {.method = "DELETE", .key = key, .response = &body, .max_response = 1 << 20};
  bool ok = az_do(s, &c, &r, err);
  if (ok && r.status != 202 && r.status != 200 && r.status != 404) {
    char what[1400];
    m2d_objstore_describe(&s->base, "removing", key, what, sizeof what);
    ok = az_fail(s, what, &r, &body, err);
  }
  m2d_buf_free(&body);
  return ok;
}

/* --- conditional writes ------------------------------------------------------------------ */

/* Put Blob with If-None-Match: *. *exists when the key was there already. */
static bool put_conditional(m2d_store_t *st, const char *key, const void *data, size_t len, bool *exists,
                            bool *lost_answer, m2d_error_t *err) {
  az_t *s = (az_t *)st;
  static const char *const cond[] = {"If-None-Match: *", "x-ms-blob-type: BlockBlob", NULL};
  m2d_buf_t body;
  m2d_buf_init(&body, 1 << 20);
  m2d_http_response_t r;
  az_call_t c = {.method = "PUT", .key = key, .extra = cond, .body = data, .body_len = len, .response = &body,
                 .max_response = 1 << 20};
  *exists = false;
  bool ok = az_do(s, &c, &r, err);
  if (lost_answer) *lost_answer = r.transport_failed_before;
  char what[1400];
  m2d_objstore_describe(&s->base, "writing", key, what, sizeof what);
  char code[128] = "";
  if (ok && body.data)
    m2d_objstore_xml_text((const char *)body.data, (const char *)body.data + body.len, "Code", code, sizeof code);
  if (!code[0]) snprintf(code, sizeof code, "%s", r.error_code);
  if (ok && (r.status == 412 || (r.status == 409 && (!code[0] || strcmp(code, "BlobAlreadyExists") == 0)))) {
    *exists = true;
    ok = m2d_error_set(err, M2D_ERR_IO, 17, "%s exists already (created by another writer)", what);
  } else if (ok && r.status != 201) {
    ok = az_fail(s, what, &r, &body, err);
  }
  m2d_buf_free(&body);
  return ok;
}

static const m2d_objstore_cond_t az_cond = {
    .put_conditional = put_conditional,
    .condition = "If-None-Match",
    .overwrote = "a Put Blob with If-None-Match: * overwrote an existing blob",
    .servers = "Azure Storage, Azurite",
};

static bool az_put_if_absent(m2d_store_t *st, const char *key, const void *data, size_t len, bool *exists,
                             m2d_error_t *err) {
  return m2d_objstore_put_if_absent(st, &((az_t *)st)->commits, key, data, len, exists, err);
}

/* --- sinks: one Put Blob, or blocks and a block list ------------------------------------- */

typedef struct {
  m2d_sink_t base;
  az_t *s;
  char *key;
  m2d_buf_t block;
  char id_base[20]; /* random, so ids are unique to this upload; every id has the same length */
  int nblocks;
} az_sink_t;

static void block_id(const az_sink_t *k, int i, char *out, size_t n) {
  char raw[40];
  int l = snprintf(raw, sizeof raw, "%s-%06d", k->id_base, i);
  if (n >= 4 * (((size_t)l + 2) / 3) + 1) EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)raw, l);
}

static bool put_block(az_sink_t *k, m2d_error_t *err) {
  az_t *s = k->s;
  char id[64], q[160];
  block_id(k, k->nblocks, id, sizeof id);
  m2d_buf_t enc, body;
  m2d_buf_init(&enc, 256);
  m2d_buf_init(&body, 1 << 20);
  bool ok = m2d_http_encode(id, false, &enc, err);
  if (ok) {
    snprintf(q, sizeof q, "comp=block&blockid=%s", (const char *)enc.data);
    m2d_http_response_t r;
    az_call_t c = {.method = "PUT", .key = k->key, .query = q, .body = k->block.data, .body_len = k->block.len,
                   .response = &body, .max_response = 1 << 20};
    ok = az_do(s, &c, &r, err);
    char what[1400];
    m2d_objstore_describe(&s->base, "uploading a block of", k->key, what, sizeof what);
    if (ok && r.status != 201) ok = az_fail(s, what, &r, &body, err);
  }
  if (ok) {
    k->nblocks++;
    m2d_buf_reset(&k->block);
  }
  m2d_buf_free(&enc);
  m2d_buf_free(&body);
  return ok;
}

static bool az_sink_write(m2d_sink_t *sk, const void *data, size_t len, m2d_error_t *err) {
  az_sink_t *k = (az_sink_t *)sk;
  const uint8_t *p = data;
  while (len) {
    /* a full block goes up only when more follows: 8 MiB exactly is still one Put Blob */
    if (k->block.len == BLOCK_SIZE && !put_block(k, err)) return false;
    size_t room = BLOCK_SIZE - k->block.len;
    size_t n = len < room ? len : room;
    if (!m2d_buf_append(&k->block, p, n, err)) return false;
    p += n;
    len -= n;
  }
  return true;
}

static bool put_block_list(az_sink_t *k, m2d_error_t *err) {
  m2d_buf_t xml, body;
  m2d_buf_init(&xml, 1 << 24);
  m2d_buf_init(&body, 1 << 20);
  bool ok = m2d_buf_append_str(&xml, "<?xml version=\"1.0\" encoding=\"utf-8\"?><BlockList>", err);
  for (int i = 0; ok && i < k->nblocks; i++) {
    char id[64];
    block_id(k, i, id, sizeof id);
    ok = m2d_buf_appendf(&xml, err, "<Latest>%s</Latest>", id);
  }
  ok = ok && m2d_buf_append_str(&xml, "</BlockList>", err);
  if (ok) {
    static const char *const extra[] = {"Content-Type: application/xml", NULL};
    m2d_http_response_t r;
    az_call_t c = {.method = "PUT", .key = k->key, .query = "comp=blocklist", .extra = extra, .body = xml.data,
                   .body_len = xml.len, .response = &body, .max_response = 1 << 20};
    ok = az_do(k->s, &c, &r, err);
    char what[1400];
    m2d_objstore_describe(&k->s->base, "committing the blocks of", k->key, what, sizeof what);
    if (ok && r.status != 201) ok = az_fail(k->s, what, &r, &body, err);
  }
  m2d_buf_free(&xml);
  m2d_buf_free(&body);
  return ok;
}

static bool az_sink_close(m2d_sink_t *sk, bool commit, m2d_error_t *err) {
  az_sink_t *k = (az_sink_t *)sk;
  bool ok = true;
  if (commit) {
    if (k->nblocks == 0) {
      static const char *const extra[] = {"x-ms-blob-type: BlockBlob", NULL};
      m2d_buf_t body;
      m2d_buf_init(&body, 1 << 20);
      m2d_http_response_t r;
      az_call_t c = {.method = "PUT", .key = k->key, .extra = extra,
                     .body = k->block.data ? k->block.data : (const uint8_t *)"", .body_len = k->block.len,
                     .response = &body, .max_response = 1 << 20};
      ok = az_do(k->s, &c, &r, err);
      char what[1400];
      m2d_objstore_describe(&k->s->base, "writing", k->key, what, sizeof what);
      if (ok && r.status != 201) ok = az_fail(k->s, what, &r, &body, err);
      m2d_buf_free(&body);
    } else {
      ok = (k->block.len == 0 || put_block(k, err)) && put_block_list(k, err);
    }
  }
  /* aborted or failed: the blocks already staged stay uncommitted, invisible (no blob has them)
   * and garbage-collected by Azure after a week; there is no call to drop them sooner */
  m2d_buf_free(&k->block);
  free(k->key);
  free(k);
  return ok;
}

static m2d_sink_t *az_create(m2d_store_t *st, const char *key, m2d_error_t *err) {
  az_sink_t *k = calloc(1, sizeof *k);
  if (!k || !(k->key = strdup(key))) {
    free(k);
    return m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory"), NULL;
  }
  k->s = (az_t *)st;
  unsigned char rnd[6];
  RAND_bytes(rnd, sizeof rnd);
  snprintf(k->id_base, sizeof k->id_base, "m2d%02x%02x%02x%02x%02x%02x", rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5]);
  m2d_buf_init(&k->block, BLOCK_SIZE);
  k->base.write = az_sink_write;
  k->base.close = az_sink_close;
  return &k->base;
}

/* --- sources: ranged GETs with read-ahead ---------------------------------------------- */

static bool fetch_range(m2d_objstore_source_t *src, uint64_t off, uint64_t len, m2d_buf_t *into, m2d_error_t *err) {
  az_t *s = (az_t *)src->store;
  char range[96];
  snprintf(range, sizeof range, "x-ms-range: bytes=%llu-%llu", (unsigned long long)off,
           (unsigned long long)(off + len - 1));
  const char *extra[] = {range, NULL};
  m2d_http_response_t r;
  az_call_t c = {.method = "GET", .key = src->key, .extra = extra, .response = into, .max_response = (size_t)len};
  if (!az_do(s, &c, &r, err)) return false;
  char what[1400];
  m2d_objstore_describe(&s->base, "reading", src->key, what, sizeof what);
  if (r.status != 206 && r.status != 200) return az_fail(s, what, &r, into, err);
  if (into->len != len)
    return m2d_error_set(err, M2D_ERR_IO, 0, "%s: asked for %llu bytes at %llu, got %zu (the blob changed?)", what,
                         (unsigned long long)len, (unsigned long long)off, into->len);
  return true;
}

static m2d_source_t *az_open(m2d_store_t *st, const char *key, m2d_error_t *err) {
  az_t *s = (az_t *)st;
  m2d_http_response_t r;
  az_call_t c = {.method = "HEAD", .key = key};
  if (!az_do(s, &c, &r, err)) return NULL;
  char what[1400];
  m2d_objstore_describe(&s->base, "opening", key, what, sizeof what);
  if (r.status == 404 && strcmp(r.error_code, "ContainerNotFound") != 0)
    return m2d_error_set(err, M2D_ERR_IO, 2, "%s: no such blob", what), NULL;
  if (r.status != 200) return az_fail(s, what, &r, NULL, err), NULL;
  if (!r.has_content_length) return m2d_error_set(err, M2D_ERR_IO, 0, "%s: Azure gave no Content-Length", what), NULL;
  m2d_objstore_source_t *src = m2d_objstore_source_new(st, key, r.content_length, fetch_range, err);
  return src ? &src->base : NULL;
}

/* --- configuration: the environment, as Azure's own tools read it ---------------------- */

/* Value of name in a connection string "A=x;B=y" (case-insensitive names), or false. */
static bool conn_get(const char *cs, const char *name, char *out, size_t n) {
  size_t nl = strlen(name);
  for (const char *p = cs; p && *p;) {
    while (*p == ';' || *p == ' ') p++;
    const char *semi = strchr(p, ';');
    size_t l = semi ? (size_t)(semi - p) : strlen(p);
    if (l > nl && strncasecmp(p, name, nl) == 0 && p[nl] == '=') {
      snprintf(out, n, "%.*s", (int)(l - nl - 1), p + nl + 1);
      return true;
    }
    p = semi ? semi + 1 : NULL;
  }
  return false;
}

static const char *env(const char *name) {
  const char *v = getenv(name);
  return v && *v ? v : NULL;
}

static void az_destroy(m2d_store_t *st) {
  az_t *s = (az_t *)st;
  m2d_http_free(s->http);
  OPENSSL_cleanse(s->key, sizeof s->key);
  if (s->sas) {
    OPENSSL_cleanse(s->sas, strlen(s->sas));
    free(s->sas);
  }
  m2d_objstore_commits_destroy(&s->commits);
  free(s);
}

__attribute__((format(printf, 3, 4))) static m2d_store_t *fail_new(az_t *s, m2d_error_t *err, const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  m2d_error_set(err, M2D_ERR_USAGE, 0, "%s", msg);
  az_destroy(&s->base);
  return NULL;
}

m2d_store_t *m2d_store_azure_new(const char *url, const m2d_store_options_t *opts, m2d_error_t *err) {
  m2d_azure_url_t u;
  if (!m2d_azure_parse_url(url, &u, err)) return NULL;
  az_t *s = calloc(1, sizeof *s);
  if (!s) return m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory"), NULL;
  m2d_objstore_commits_init(&s->commits, &az_cond);
  snprintf(s->container, sizeof s->container, "%s", u.container);
  snprintf(s->prefix, sizeof s->prefix, "%s", u.prefix);
  const char *sep = strstr(url, "://");
  const char *slash = strchr(sep + 3, '/');
  size_t head = slash ? (size_t)(slash - url) : strlen(url);
  snprintf(s->base.root, sizeof s->base.root, "%.*s%s%s", (int)head, url, s->prefix[0] ? "/" : "", s->prefix);
  snprintf(s->commits.where, sizeof s->commits.where, "%s", s->base.root);
  s->commits.endpoint = s->endpoint;

  /* AZURE_STORAGE_CONNECTION_STRING first; the single variables override its parts */
  char account[128] = "", key_b64[256] = "", endpoint[512] = "", sas[4096] = "", v[64] = "";
  const char *cs = env("AZURE_STORAGE_CONNECTION_STRING");
  if (cs) {
    conn_get(cs, "AccountName", account, sizeof account);
    conn_get(cs, "AccountKey", key_b64, sizeof key_b64);
    conn_get(cs, "BlobEndpoint", endpoint, sizeof endpoint);
    conn_get(cs, "SharedAccessSignature", sas, sizeof sas);
    if (conn_get(cs, "UseDevelopmentStorage", v, sizeof v) && strcasecmp(v, "true") == 0) {
      /* the emulator's documented account (Azurite's default); not a secret */
      if (!account[0]) snprintf(account, sizeof account, "devstoreaccount1");
      if (!key_b64[0])
        snprintf(key_b64, sizeof key_b64, "%s",
                 "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==");
      if (!endpoint[0]) snprintf(endpoint, sizeof endpoint, "http://127.0.0.1:10000/%s", account);
    }
    char suffix[128] = "", proto[16] = "";
    if (!endpoint[0] && account[0] && conn_get(cs, "EndpointSuffix", suffix, sizeof suffix)) {
      if (!conn_get(cs, "DefaultEndpointsProtocol", proto, sizeof proto)) snprintf(proto, sizeof proto, "https");
      snprintf(endpoint, sizeof endpoint, "%s://%s.blob.%s", proto, account, suffix);
    }
  }
  if (env("AZURE_STORAGE_ACCOUNT")) snprintf(account, sizeof account, "%s", env("AZURE_STORAGE_ACCOUNT"));
  if (u.account[0]) snprintf(account, sizeof account, "%s", u.account); /* the URL names it */
  const char *k = env("AZURE_STORAGE_KEY") ? env("AZURE_STORAGE_KEY") : env("AZURE_STORAGE_ACCOUNT_KEY");
  if (k) snprintf(key_b64, sizeof key_b64, "%s", k);
  if (env("AZURE_STORAGE_SAS_TOKEN")) snprintf(sas, sizeof sas, "%s", env("AZURE_STORAGE_SAS_TOKEN"));
  if (env("AZURE_STORAGE_ENDPOINT")) snprintf(endpoint, sizeof endpoint, "%s", env("AZURE_STORAGE_ENDPOINT"));
  if (opts && opts->endpoint && *opts->endpoint) snprintf(endpoint, sizeof endpoint, "%s", opts->endpoint);
  snprintf(s->account, sizeof s->account, "%s", account);
  if (!account[0]) {
    OPENSSL_cleanse(key_b64, sizeof key_b64);
    OPENSSL_cleanse(sas, sizeof sas);
    return fail_new(s, err,
                    "%s: no storage account: set AZURE_STORAGE_ACCOUNT (and AZURE_STORAGE_KEY or "
                    "AZURE_STORAGE_SAS_TOKEN), AZURE_STORAGE_CONNECTION_STRING, or name it in the URL (%s)",
                    s->base.root, "abfss://CONTAINER@ACCOUNT.dfs.core.windows.net/PREFIX");
  }
  if (key_b64[0]) {
    unsigned char raw[sizeof key_b64]; /* decoding never makes more bytes than it reads */
    size_t kl = strlen(key_b64);
    int l = kl % 4 == 0 ? EVP_DecodeBlock(raw, (const unsigned char *)key_b64, (int)kl) : -1;
    if (l > 0) {
      /* EVP_DecodeBlock counts the '=' padding as zero bytes */
      if (key_b64[kl - 1] == '=') l--;
      if (kl >= 2 && key_b64[kl - 2] == '=') l--;
    }
    if (l > 0 && (size_t)l <= sizeof s->key) memcpy(s->key, raw, (size_t)l);
    OPENSSL_cleanse(raw, sizeof raw);
    OPENSSL_cleanse(key_b64, sizeof key_b64);
    if (l <= 0 || (size_t)l > sizeof s->key) {
      OPENSSL_cleanse(sas, sizeof sas);
      return fail_new(s, err, "%s: AZURE_STORAGE_KEY is not a base64 account key (%s)", s->base.root,
                      "copy key1 or key2 from the storage account's Access keys");
    }
    s->key_len = (size_t)l;
  } else if (sas[0]) {
    const char *t = sas[0] == '?' ? sas + 1 : sas;
    s->sas = strdup(t);
  }
  OPENSSL_cleanse(sas, sizeof sas);
  if (!s->key_len && !s->sas)
    return fail_new(s, err,
                    "%s: no Azure credentials: set AZURE_STORAGE_KEY (the account key of %s), "
                    "AZURE_STORAGE_SAS_TOKEN or AZURE_STORAGE_CONNECTION_STRING",
                    s->base.root, account);

  size_t el = strlen(endpoint);
  while (el && endpoint[el - 1] == '/') endpoint[--el] = '\0';
  if (endpoint[0]) {
    if (!m2d_objstore_check_endpoint("AZURE_STORAGE_ENDPOINT", endpoint,
                                     "https://HOST[:PORT] (Azurite: http://127.0.0.1:10000/devstoreaccount1)",
                                     "the table's data", err)) {
      az_destroy(&s->base);
      return NULL;
    }
    /* an emulator on loopback is addressed by path, the account first: added when missing */
    const char *host = strstr(endpoint, "://") + 3;
    if (m2d_objstore_is_loopback(endpoint) && !strchr(host, '/'))
      snprintf(s->endpoint, sizeof s->endpoint, "%s/%s", endpoint, account);
    else snprintf(s->endpoint, sizeof s->endpoint, "%s", endpoint);
  } else if (u.host[0] && strstr(u.host, ".dfs.")) {
    /* the Blob endpoint beside the URL's Data Lake one (other clouds have other suffixes) */
    const char *d = strstr(u.host, ".dfs.");
    snprintf(s->endpoint, sizeof s->endpoint, "https://%.*s.blob.%s", (int)(d - u.host), u.host, d + 5);
  } else if (u.host[0] && strchr(u.host, '.')) {
    snprintf(s->endpoint, sizeof s->endpoint, "https://%s", u.host);
  } else {
    snprintf(s->endpoint, sizeof s->endpoint, "https://%s.blob.core.windows.net", account);
  }
  s->commits.unsafe_single_writer = opts && opts->unsafe_single_writer;
  m2d_http_policy_t policy = {0};
  if (opts) policy.max_attempts = opts->max_attempts;
  s->http = m2d_http_new(&policy, err);
  if (!s->http || (s->key_len == 0 && !s->sas)) {
    az_destroy(&s->base);
    return NULL;
  }
  s->base.get = az_get;
  s->base.list = az_list;
  s->base.list_all = az_list_all;
  s->base.put_if_absent = az_put_if_absent;
  s->base.create = az_create;
  s->base.open = az_open;
  s->base.remove = az_remove;
  s->base.destroy = az_destroy;
  m2d_debug("%s: endpoint %s, account %s, %s", s->base.root, s->endpoint, s->account,
            s->key_len ? "Shared Key" : "SAS token");
  return &s->base;
}
