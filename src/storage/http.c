#include "storage/http.h"

#include "core/log.h"

#include <ctype.h>
#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define POOL_MAX 16

struct m2d_http {
  m2d_http_policy_t policy;
  pthread_mutex_t lock;
  CURL *idle[POOL_MAX]; /* easy handles keep their connections alive between requests */
  int nidle;
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static void global_init(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

static atomic_ulong counts[6]; /* GET PUT POST DELETE HEAD other */
static atomic_ulong bytes_sent, bytes_received;
static int method_index(const char *m) {
  static const char *const names[] = {"GET", "PUT", "POST", "DELETE", "HEAD"};
  for (int i = 0; i < 5; i++)
    if (strcmp(m, names[i]) == 0) return i;
  return 5;
}

uint64_t m2d_http_requests(const char *method) { return atomic_load(&counts[method_index(method)]); }

void m2d_http_totals(uint64_t *requests, uint64_t *sent, uint64_t *received) {
  *requests = 0;
  for (int i = 0; i < 6; i++) *requests += atomic_load(&counts[i]);
  *sent = atomic_load(&bytes_sent);
  *received = atomic_load(&bytes_received);
}

m2d_http_t *m2d_http_new(const m2d_http_policy_t *policy, m2d_error_t *err) {
  pthread_once(&global_once, global_init);
  m2d_http_t *h = calloc(1, sizeof *h);
  if (!h) return m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory"), NULL;
  m2d_http_policy_t p = policy ? *policy : (m2d_http_policy_t){0};
  if (p.max_attempts <= 0) p.max_attempts = 8;
  if (p.base_delay_ms <= 0) p.base_delay_ms = 100;
  if (p.max_delay_ms <= 0) p.max_delay_ms = 5000;
  if (p.connect_timeout_s <= 0) p.connect_timeout_s = 10;
  if (p.timeout_s <= 0) p.timeout_s = 60;
  h->policy = p;
  pthread_mutex_init(&h->lock, NULL);
  return h;
}

void m2d_http_free(m2d_http_t *h) {
  if (!h) return;
  for (int i = 0; i < h->nidle; i++) curl_easy_cleanup(h->idle[i]);
  pthread_mutex_destroy(&h->lock);
  free(h);
}

static CURL *take(m2d_http_t *h) {
  CURL *c = NULL;
  pthread_mutex_lock(&h->lock);
  if (h->nidle) c = h->idle[--h->nidle];
  pthread_mutex_unlock(&h->lock);
  if (c) curl_easy_reset(c);
  else c = curl_easy_init();
  return c;
}

static void give_back(m2d_http_t *h, CURL *c) {
  pthread_mutex_lock(&h->lock);
  if (h->nidle < POOL_MAX) {
    h->idle[h->nidle++] = c;
    c = NULL;
  }
  pthread_mutex_unlock(&h->lock);
  if (c) curl_easy_cleanup(c);
}

typedef struct {
  m2d_buf_t *out;
  size_t max;
  bool overflow;
} body_ctx_t;

static size_t on_body(char *p, size_t size, size_t n, void *ud) {
  body_ctx_t *b = ud;
  size_t len = size * n;
  if (!b->out) return len;
  if (b->max && b->out->len + len > b->max) {
    b->overflow = true;
    return 0;
  }
  return m2d_buf_append(b->out, p, len, NULL) ? len : 0;
}

/* Copies a header's value (trimmed) when the line is "name: value". */
static void header_value(const char *line, size_t len, const char *name, char *out, size_t outsz) {
  size_t nl = strlen(name);
  if (len <= nl + 1 || strncasecmp(line, name, nl) != 0 || line[nl] != ':') return;
  const char *v = line + nl + 1;
  const char *end = line + len;
  while (v < end && (*v == ' ' || *v == '\t')) v++;
  while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ')) end--;
  snprintf(out, outsz, "%.*s", (int)(end - v), v);
}

static size_t on_header(char *p, size_t size, size_t n, void *ud) {
  m2d_http_response_t *r = ud;
  size_t len = size * n;
  header_value(p, len, "ETag", r->etag, sizeof r->etag);
  header_value(p, len, "Content-Range", r->content_range, sizeof r->content_range);
  header_value(p, len, "x-amz-request-id", r->request_id, sizeof r->request_id);
  header_value(p, len, "x-ms-request-id", r->request_id, sizeof r->request_id);
  header_value(p, len, "X-GUploader-UploadID", r->request_id, sizeof r->request_id);
  header_value(p, len, "Location", r->location, sizeof r->location);
  header_value(p, len, "Range", r->range, sizeof r->range);
  header_value(p, len, "x-ms-error-code", r->error_code, sizeof r->error_code);
  char cl[32] = "";
  header_value(p, len, "Content-Length", cl, sizeof cl);
  if (cl[0]) {
    r->content_length = strtoull(cl, NULL, 10);
    r->has_content_length = true;
  }
  return len;
}

static bool retried_status(long s) { return s == 429 || s == 500 || s == 502 || s == 503 || s == 504; }

static void backoff(const m2d_http_policy_t *p, int attempt) {
  long d = p->base_delay_ms;
  for (int i = 1; i < attempt && d < p->max_delay_ms; i++) d *= 2;
  if (d > p->max_delay_ms) d = p->max_delay_ms;
  /* full jitter: a random delay up to the exponential bound, so writers that failed together
   * do not come back together */
  unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid() ^ (unsigned)attempt * 2654435761u ^ (unsigned)(uintptr_t)&d;
  long ms = d / 2 + (long)(rand_r(&seed) % (unsigned)(d / 2 + 1));
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0) {
  }
}

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

bool m2d_http_do(m2d_http_t *h, const m2d_http_request_t *req, m2d_http_response_t *resp, m2d_error_t *err) {
  memset(resp, 0, sizeof *resp);
  struct curl_slist *hdrs = NULL;
  for (const char *const *p = req->headers; p && *p; p++) hdrs = curl_slist_append(hdrs, *p);
  /* (no "Expect:" header to suppress 100-continue: libcurl 7.88 signs it into SigV4 while not
   * sending it, and every request is refused) */
  bool has_body = req->body || strcmp(req->method, "PUT") == 0 || strcmp(req->method, "POST") == 0;
  char errbuf[CURL_ERROR_SIZE];
  bool ok = false;
  for (int attempt = 1;; attempt++) {
    CURL *c = take(h);
    if (!c) {
      ok = m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory (curl handle)");
      break;
    }
    if (req->response) m2d_buf_reset(req->response);
    body_ctx_t body = {req->response, req->max_response, false};
    m2d_http_response_t r = {0};
    errbuf[0] = '\0';
    curl_easy_setopt(c, CURLOPT_URL, req->url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, h->policy.connect_timeout_s);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1024L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, h->policy.timeout_s);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &r);
    if (strcmp(req->method, "HEAD") == 0) {
      curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    } else if (has_body) {
      /* POSTFIELDS with a custom method: libcurl sends (and SigV4 hashes) the bytes as they are */
      curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
      curl_easy_setopt(c, CURLOPT_POSTFIELDS, req->body ? (const char *)req->body : "");
      curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, req->method);
    } else if (strcmp(req->method, "GET") != 0) {
      curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, req->method);
    }
    if (req->sigv4) curl_easy_setopt(c, CURLOPT_AWS_SIGV4, req->sigv4);
    if (req->userpwd) curl_easy_setopt(c, CURLOPT_USERPWD, req->userpwd);
    atomic_fetch_add(&counts[method_index(req->method)], 1);
    double t0 = now_ms();
    CURLcode rc = curl_easy_perform(c);
    long status = 0;
    if (rc == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    long req_size = 0, hdr_size = 0;
    curl_off_t up = 0, down = 0;
    curl_easy_getinfo(c, CURLINFO_REQUEST_SIZE, &req_size);
    curl_easy_getinfo(c, CURLINFO_HEADER_SIZE, &hdr_size);
    curl_easy_getinfo(c, CURLINFO_SIZE_UPLOAD_T, &up);
    curl_easy_getinfo(c, CURLINFO_SIZE_DOWNLOAD_T, &down);
    atomic_fetch_add(&bytes_sent, (unsigned long)req_size + (unsigned long)up);
    atomic_fetch_add(&bytes_received, (unsigned long)hdr_size + (unsigned long)down);
    if (rc == CURLE_OK || body.overflow) give_back(h, c);
    else curl_easy_cleanup(c); /* a broken connection is not reused */
    r.attempts = attempt;
    r.transport_failed_before = resp->transport_failed_before;
    r.status = status;
    if (body.overflow)
      return curl_slist_free_all(hdrs),
             m2d_error_set(err, M2D_ERR_LIMIT, 0, "%s: the response is larger than %zu bytes", req->what,
                           req->max_response);
    m2d_debug("%s -> %s%ld (%.0f ms, attempt %d)", req->what, rc == CURLE_OK ? "" : "no answer, ",
              rc == CURLE_OK ? status : (long)rc, now_ms() - t0, attempt);
    bool retry = rc != CURLE_OK || retried_status(status);
    if (!retry) {
      *resp = r;
      ok = true;
      break;
    }
    if (rc != CURLE_OK) resp->transport_failed_before = true;
    r.transport_failed_before = resp->transport_failed_before;
    *resp = r;
    if (attempt >= h->policy.max_attempts) {
      if (rc != CURLE_OK)
        m2d_error_set(err, M2D_ERR_IO, (int)rc, "%s: %s (after %d attempts)", req->what,
                      errbuf[0] ? errbuf : curl_easy_strerror(rc), attempt);
      else
        m2d_error_set(err, M2D_ERR_IO, (int)status, "%s: the server answered %ld (after %d attempts)", req->what,
                      status, attempt);
      if (err) err->retriable = true;
      ok = false;
      break;
    }
    m2d_debug("%s: retrying (%s)", req->what, rc != CURLE_OK ? curl_easy_strerror(rc) : "server busy");
    backoff(&h->policy, attempt);
  }
  curl_slist_free_all(hdrs);
  return ok;
}

bool m2d_http_encode(const char *s, bool keep_slash, m2d_buf_t *out, m2d_error_t *err) {
  static const char hex[] = "0123456789ABCDEF";
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    unsigned char c = *p;
    bool keep = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
                c == '_' || c == '.' || c == '~' || (keep_slash && c == '/');
    if (keep) {
      if (!m2d_buf_append_byte(out, c, err)) return false;
    } else {
      char e[3] = {'%', hex[c >> 4], hex[c & 15]};
      if (!m2d_buf_append(out, e, 3, err)) return false;
    }
  }
  return m2d_buf_terminate(out, err);
}

static int hexval(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  c = tolower(c);
  return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

void m2d_http_decode(const char *s, size_t n, m2d_buf_t *out, m2d_error_t *err) {
  for (size_t i = 0; i < n; i++) {
    int hi, lo;
    if (s[i] == '%' && i + 2 < n && (hi = hexval(s[i + 1])) >= 0 && (lo = hexval(s[i + 2])) >= 0) {
      m2d_buf_append_byte(out, (uint8_t)(hi * 16 + lo), err);
      i += 2;
    } else {
      m2d_buf_append_byte(out, (uint8_t)s[i], err);
    }
  }
}
