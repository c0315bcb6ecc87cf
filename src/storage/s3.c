/* The S3 store (AWS S3 and S3-compatibles: MinIO, R2, Ceph), over libcurl with SigV4.
 *
 * Commits are put-if-absent through `PUT` with `If-None-Match: *` (412: another writer has the
 * version), as delta-rs and Delta Spark do, without a lock service. A server that ignores the
 * condition would let two writers overwrite each other's commits, so the first conditional
 * write of a store probes the server (the same hidden key written twice) and refuses unless
 * the user accepted the risk (--unsafe-single-writer). A commit whose answer was lost (a
 * reset, a timeout) and then meets 412 on the retry is resolved by reading the object back:
 * ours if the bytes are ours, never written twice.
 *
 * Data files are written through a sink that buffers one part: small objects are one PUT,
 * larger ones a multipart upload (aborted when the sink is aborted or a part fails, so no
 * orphan parts stay). Reads are ranged GETs with a read-ahead window, so the Parquet reader's
 * small reads (footer, page headers) do not each become a request.
 *
 * The probe, the read-back, the read-ahead and the listing's bookkeeping are object_store's (the
 * same for every object store); this file holds what is S3's: SigV4, URLs, requests, XML errors. */
#include "storage/http.h"
#include "storage/object_store.h"

#include "core/log.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#define PART_SIZE (8u << 20)      /* S3's minimum part is 5 MiB (but the last) */
#define MAX_LIST_RESPONSE (64u << 20)

typedef struct {
  m2d_store_t base;
  m2d_http_t *http;
  char bucket[256];
  char prefix[1024]; /* without leading or trailing '/', may be empty */
  char endpoint[512]; /* scheme://host[:port], no trailing '/' */
  bool path_style;
  char region[64];
  char sigv4[128];
  char *userpwd; /* "key:secret" */
  char *session_token_header;
  m2d_objstore_commits_t commits;
} s3_t;

/* --- small helpers ------------------------------------------------------------------------ */

/* The object's URL for key (relative to the store's prefix; "" is the prefix itself), with a
 * query string already encoded and sorted (SigV4 signs it as sent). */
static bool object_url(s3_t *s, const char *key, bool absolute, const char *query, m2d_buf_t *url,
                       m2d_error_t *err) {
  m2d_buf_reset(url);
  bool ok;
  if (s->path_style) ok = m2d_buf_appendf(url, err, "%s/%s/", s->endpoint, s->bucket);
  else {
    const char *sep = strstr(s->endpoint, "://");
    ok = m2d_buf_appendf(url, err, "%.*s%s.%s/", (int)(sep + 3 - s->endpoint), s->endpoint, s->bucket, sep + 3);
  }
  if (!ok) return false;
  m2d_buf_t full;
  m2d_buf_init(&full, 1 << 16);
  const char *prefix = absolute ? "" : s->prefix;
  ok = m2d_buf_appendf(&full, err, "%s%s%s", prefix, prefix[0] && key[0] ? "/" : "", key) &&
       m2d_buf_terminate(&full, err);
  if (ok) {
    m2d_buf_t enc;
    m2d_buf_init(&enc, 1 << 17);
    ok = m2d_http_encode((const char *)full.data, true, &enc, err) && m2d_buf_append(url, enc.data, enc.len, err);
    m2d_buf_free(&enc);
  }
  m2d_buf_free(&full);
  if (ok && query && *query) ok = m2d_buf_appendf(url, err, "?%s", query);
  return ok && m2d_buf_terminate(url, err);
}

/* An S3 error answer as a message: status, the XML's Code and Message, and what to do. */
static bool s3_fail(s3_t *s, const char *what, const m2d_http_response_t *r, const m2d_buf_t *body, m2d_error_t *err) {
  char code[128] = "", msg[512] = "";
  if (body && body->data && body->len) {
    const char *p = (const char *)body->data, *end = p + body->len;
    m2d_objstore_xml_text(p, end, "Code", code, sizeof code);
    m2d_objstore_xml_text(p, end, "Message", msg, sizeof msg);
  }
  const char *hint = "";
  if (r->status == 403)
    hint = strcmp(code, "SignatureDoesNotMatch") == 0 || strcmp(code, "InvalidAccessKeyId") == 0
               ? "; check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or the AWS_PROFILE's keys)"
               : "; the credentials are not allowed this operation on the bucket";
  else if (strcmp(code, "NoSuchBucket") == 0)
    hint = "; create the bucket first, or check the table URL and AWS_ENDPOINT_URL";
  else if (r->status == 301 || strcmp(code, "PermanentRedirect") == 0 || strcmp(code, "AuthorizationHeaderMalformed") == 0)
    hint = "; the bucket is in another region: set AWS_REGION to it";
  bool retriable = r->status >= 500 || r->status == 429;
  m2d_error_set(err, M2D_ERR_IO, (int)r->status, "%s: S3 answered %ld%s%s%s%s (bucket %s)%s", what, r->status,
                code[0] ? " " : "", code, msg[0] ? ": " : "", msg, s->bucket, hint);
  if (err) err->retriable = retriable;
  return false;
}

static bool sha256_hex(const void *data, size_t len, char out[65]) {
  unsigned char md[32];
  unsigned int n = 0;
  if (!EVP_Digest(data ? data : "", len, md, &n, EVP_sha256(), NULL)) return false;
  for (int i = 0; i < 32; i++) snprintf(out + 2 * i, 3, "%02x", md[i]);
  return true;
}

typedef struct {
  const char *method;
  const char *key;
  bool absolute; /* key is the bucket's key, not relative to the store's prefix */
  const char *query;
  const char *const *extra; /* extra headers, NULL-terminated */
  const void *body;
  size_t body_len;
  m2d_buf_t *response;
  size_t max_response;
} s3_call_t;

/* One signed request; *resp gets the answer. */
static bool s3_do(s3_t *s, const s3_call_t *c, m2d_http_response_t *resp, m2d_error_t *err) {
  m2d_buf_t url, what;
  m2d_buf_init(&url, 1 << 18);
  m2d_buf_init(&what, 4096);
  char hash[65];
  char hash_header[100];
  bool ok = object_url(s, c->key, c->absolute, c->query, &url, err) && sha256_hex(c->body, c->body_len, hash) &&
            m2d_buf_appendf(&what, err, "%s s3://%s/%s%s%s", c->method, s->bucket, s->prefix,
                            s->prefix[0] && c->key[0] ? "/" : "", c->key) &&
            m2d_buf_terminate(&what, err);
  if (!ok) goto done;
  snprintf(hash_header, sizeof hash_header, "x-amz-content-sha256: %s", hash);
  const char *headers[16];
  int n = 0;
  headers[n++] = hash_header;
  if (s->session_token_header) headers[n++] = s->session_token_header;
  for (const char *const *h = c->extra; h && *h && n < 14; h++) headers[n++] = *h;
  if (c->body || strcmp(c->method, "PUT") == 0 || strcmp(c->method, "POST") == 0)
    headers[n++] = "Content-Type: application/octet-stream";
  headers[n] = NULL;
  m2d_http_request_t req = {
      .method = c->method,
      .url = (const char *)url.data,
      .headers = headers,
      .body = c->body,
      .body_len = c->body_len,
      .sigv4 = s->sigv4,
      .userpwd = s->userpwd,
      .what = (const char *)what.data,
      .response = c->response,
      .max_response = c->max_response,
  };
  ok = m2d_http_do(s->http, &req, resp, err);
done:
  m2d_buf_free(&url);
  m2d_buf_free(&what);
  return ok;
}

/* --- get, list, remove ------------------------------------------------------------------- */

static bool s3_get(m2d_store_t *st, const char *key, m2d_buf_t *out, bool *missing, m2d_error_t *err) {
  s3_t *s = (s3_t *)st;
  if (missing) *missing = false;
  m2d_http_response_t r;
  s3_call_t c = {.method = "GET", .key = key, .response = out, .max_response = out->max};
  if (!s3_do(s, &c, &r, err)) return false;
  char what[1200];
  m2d_objstore_describe(&s->base, "reading", key, what, sizeof what);
  if (r.status == 404) {
    if (missing) *missing = true;
    m2d_buf_reset(out);
    return m2d_error_set(err, M2D_ERR_IO, 2, "%s: no such object", what);
  }
  if (r.status != 200) {
    bool f = s3_fail(s, what, &r, out, err);
    m2d_buf_reset(out);
    return f;
  }
  return true;
}

/* ListObjectsV2 of dir: one level (delimiter '/') or every key under it, after start_after. */
static bool list_keys(s3_t *s, const char *dir, bool recursive, const char *start_after, m2d_store_entry_t **out,
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
  char token[2048] = "";
  bool ok = true;
  char what[2200];
  snprintf(what, sizeof what, "listing s3://%s/%s", s->bucket, prefix);
  do {
    m2d_buf_reset(&query);
    m2d_buf_reset(&enc);
    /* parameters in sorted order (SigV4 signs the canonical query) */
    if (token[0]) {
      ok = m2d_http_encode(token, false, &enc, err) &&
           m2d_buf_appendf(&query, err, "continuation-token=%s&", (const char *)enc.data);
      m2d_buf_reset(&enc);
    }
    if (ok && !recursive) ok = m2d_buf_append_str(&query, "delimiter=%2F&", err);
    ok = ok && m2d_http_encode(prefix, false, &enc, err) &&
         m2d_buf_appendf(&query, err, "list-type=2&prefix=%s", (const char *)enc.data);
    if (ok && start_after && !token[0]) {
      char sa[4096];
      snprintf(sa, sizeof sa, "%s%s", prefix, start_after);
      m2d_buf_reset(&enc);
      ok = m2d_http_encode(sa, false, &enc, err) && m2d_buf_appendf(&query, err, "&start-after=%s", (const char *)enc.data);
    }
    ok = ok && m2d_buf_terminate(&query, err);
    if (!ok) break;
    m2d_http_response_t r;
    /* the request is for the bucket itself */
    s3_call_t c = {.method = "GET", .key = "", .absolute = true, .query = (const char *)query.data,
                   .response = &body, .max_response = MAX_LIST_RESPONSE};
    ok = s3_do(s, &c, &r, err);
    if (!ok) break;
    if (r.status == 404) break; /* no bucket: an empty listing, as a missing directory is */
    if (r.status != 200) {
      ok = s3_fail(s, what, &r, &body, err);
      break;
    }
    const char *p = (const char *)body.data, *end = p + body.len;
    const char *q = p;
    char name[2048], val[64];
    while ((q = memmem(q, (size_t)(end - q), "<Contents>", 10))) {
      const char *qe = memmem(q, (size_t)(end - q), "</Contents>", 11);
      if (!qe) break;
      if (m2d_objstore_xml_text(q, qe, "Key", name, sizeof name) && strlen(name) > plen &&
          strncmp(name, prefix, plen) == 0 && name[plen] != '.' && !strstr(name + plen, "/.")) {
        uint64_t size = m2d_objstore_xml_text(q, qe, "Size", val, sizeof val) ? strtoull(val, NULL, 10) : 0;
        int64_t mt =
            m2d_objstore_xml_text(q, qe, "LastModified", val, sizeof val) ? m2d_objstore_parse_rfc3339_ms(val) : 0;
        if ((recursive || !strchr(name + plen, '/')) &&
            !m2d_objstore_push_entry(out, n, &cap, name + plen, size, mt, false, err)) {
          ok = false;
          break;
        }
      }
      q = qe;
    }
    q = p;
    while (ok && (q = memmem(q, (size_t)(end - q), "<CommonPrefixes>", 16))) {
      const char *qe = memmem(q, (size_t)(end - q), "</CommonPrefixes>", 17);
      if (!qe) break;
      if (m2d_objstore_xml_text(q, qe, "Prefix", name, sizeof name) && strlen(name) > plen + 1 && name[plen] != '.') {
        name[strlen(name) - 1] = '\0'; /* the trailing '/' */
        if (!m2d_objstore_push_entry(out, n, &cap, name + plen, 0, 0, true, err)) ok = false;
      }
      q = qe;
    }
    char trunc[16] = "";
    token[0] = '\0';
    if (m2d_objstore_xml_text(p, end, "IsTruncated", trunc, sizeof trunc) && strcmp(trunc, "true") == 0)
      m2d_objstore_xml_text(p, end, "NextContinuationToken", token, sizeof token);
  } while (ok && token[0]);
  m2d_buf_free(&body);
  m2d_buf_free(&query);
  m2d_buf_free(&enc);
  return m2d_objstore_entries_done(ok, out, n);
}

static bool s3_list(m2d_store_t *st, const char *dir, m2d_store_entry_t **out, size_t *n, m2d_error_t *err) {
  return list_keys((s3_t *)st, dir, false, NULL, out, n, err);
}

static bool s3_list_all(m2d_store_t *st, const char *dir, const char *start_after, m2d_store_entry_t **out,
                        size_t *n, m2d_error_t *err) {
  return list_keys((s3_t *)st, dir, true, start_after, out, n, err);
}

static bool s3_remove(m2d_store_t *st, const char *key, m2d_error_t *err) {
  s3_t *s = (s3_t *)st;
  m2d_buf_t body;
  m2d_buf_init(&body, 1 << 20);
  m2d_http_response_t r;
  s3_call_t c = {.method = "DELETE", .key = key, .response = &body, .max_response = 1 << 20};
  bool ok = s3_do(s, &c, &r, err);
  if (ok && r.status != 204 && r.status != 200 && r.status != 404) {
    char what[1200];
    m2d_objstore_describe(&s->base, "removing", key, what, sizeof what);
    ok = s3_fail(s, what, &r, &body, err);
  }
  m2d_buf_free(&body);
  return ok;
}

/* --- conditional writes ------------------------------------------------------------------ */

/* PUT key with If-None-Match: *. *exists when the key was there already. */
static bool put_conditional(m2d_store_t *st, const char *key, const void *data, size_t len, bool *exists,
                            bool *lost_answer, m2d_error_t *err) {
  s3_t *s = (s3_t *)st;
  static const char *const cond[] = {"If-None-Match: *", NULL};
  m2d_buf_t body;
  m2d_buf_init(&body, 1 << 20);
  m2d_http_response_t r;
  s3_call_t c = {.method = "PUT", .key = key, .extra = cond, .body = data, .body_len = len, .response = &body,
                 .max_response = 1 << 20};
  *exists = false;
  bool ok = s3_do(s, &c, &r, err);
  if (lost_answer) *lost_answer = r.transport_failed_before;
  char what[1200];
  m2d_objstore_describe(&s->base, "writing", key, what, sizeof what);
  if (ok && r.status == 409) {
    /* ConditionalRequestConflict: a concurrent conditional write of the same key is in flight;
     * the caller reads the log again, as for a lost race */
    *exists = true;
    ok = m2d_error_set(err, M2D_ERR_IO, 409, "%s: a concurrent write of the same key is in progress", what);
  } else if (ok && r.status == 412) {
    *exists = true;
    ok = m2d_error_set(err, M2D_ERR_IO, 17, "%s exists already (created by another writer)", what);
  } else if (ok && r.status != 200) {
    ok = s3_fail(s, what, &r, &body, err);
  }
  m2d_buf_free(&body);
  return ok;
}

static const m2d_objstore_cond_t s3_cond = {
    .put_conditional = put_conditional,
    .condition = "If-None-Match",
    .overwrote = "a PUT with If-None-Match: * overwrote an existing object",
    .servers = "AWS S3, MinIO, Cloudflare R2, Ceph 18+",
};

static bool s3_put_if_absent(m2d_store_t *st, const char *key, const void *data, size_t len, bool *exists,
                             m2d_error_t *err) {
  return m2d_objstore_put_if_absent(st, &((s3_t *)st)->commits, key, data, len, exists, err);
}

/* --- sinks: one PUT or a multipart upload --------------------------------------------- */

#define PARTS_IN_FLIGHT 4 /* parts uploaded at once by one sink (each 8 MiB of memory) */

/* One part on its way up, in a thread of its own. */
typedef struct {
  struct s3_sink *k;
  int number; /* 1-based */
  m2d_buf_t data;
  char etag[128];
  bool ok;
  m2d_error_t err;
  pthread_t thread;
  bool running;
} part_job_t;

typedef struct s3_sink {
  m2d_sink_t base;
  s3_t *s;
  char *key;
  m2d_buf_t part; /* the part being filled */
  char upload_id[1024];
  char **etags; /* by part number - 1 */
  int nparts;   /* parts handed over so far */
  part_job_t jobs[PARTS_IN_FLIGHT];
  bool failed;
  m2d_error_t first_err;
} s3_sink_t;

static bool start_upload(s3_sink_t *k, m2d_error_t *err) {
  s3_t *s = k->s;
  m2d_buf_t body;
  m2d_buf_init(&body, 1 << 20);
  char what[1200];
  m2d_objstore_describe(&s->base, "uploading", k->key, what, sizeof what);
  m2d_http_response_t r;
  s3_call_t c = {.method = "POST", .key = k->key, .query = "uploads=", .response = &body, .max_response = 1 << 20};
  bool ok = s3_do(s, &c, &r, err);
  if (ok && r.status != 200) ok = s3_fail(s, what, &r, &body, err);
  if (ok && !m2d_objstore_xml_text((const char *)body.data, (const char *)body.data + body.len, "UploadId",
                                   k->upload_id, sizeof k->upload_id))
    ok = m2d_error_set(err, M2D_ERR_IO, 0, "%s: S3 started a multipart upload without an UploadId", what);
  m2d_buf_free(&body);
  return ok;
}

static void *part_thread(void *arg) {
  part_job_t *j = arg;
  s3_sink_t *k = j->k;
  s3_t *s = k->s;
  m2d_buf_t body, q, enc;
  m2d_buf_init(&body, 1 << 20);
  m2d_buf_init(&q, 4096);
  m2d_buf_init(&enc, 4096);
  char what[1200];
  m2d_objstore_describe(&s->base, "uploading", k->key, what, sizeof what);
  m2d_http_response_t r;
  bool ok = m2d_http_encode(k->upload_id, false, &enc, &j->err) &&
            m2d_buf_appendf(&q, &j->err, "partNumber=%d&uploadId=%s", j->number, (const char *)enc.data) &&
            m2d_buf_terminate(&q, &j->err);
  if (ok) {
    s3_call_t c = {.method = "PUT", .key = k->key, .query = (const char *)q.data, .body = j->data.data,
                   .body_len = j->data.len, .response = &body, .max_response = 1 << 20};
    ok = s3_do(s, &c, &r, &j->err);
    if (ok && r.status != 200) ok = s3_fail(s, what, &r, &body, &j->err);
    if (ok && !r.etag[0]) ok = m2d_error_set(&j->err, M2D_ERR_IO, 0, "%s: S3 accepted a part without an ETag", what);
    if (ok) snprintf(j->etag, sizeof j->etag, "%s", r.etag);
  }
  j->ok = ok;
  m2d_buf_free(&body);
  m2d_buf_free(&q);
  m2d_buf_free(&enc);
  return NULL;
}

/* A finished job: its ETag into the sink, its failure remembered. */
static void finish_job(s3_sink_t *k, part_job_t *j) {
  j->running = false;
  if (j->ok && !(k->etags[j->number - 1] = strdup(j->etag))) {
    j->ok = false;
    m2d_error_set(&j->err, M2D_ERR_LIMIT, 0, "out of memory");
  }
  if (!j->ok && !k->failed) {
    k->failed = true;
    k->first_err = j->err;
  }
  m2d_buf_free(&j->data);
}

/* Waits for a job. */
static void join_job(s3_sink_t *k, part_job_t *j) {
  if (!j->running) return;
  pthread_join(j->thread, NULL);
  finish_job(k, j);
}

static bool join_all(s3_sink_t *k, m2d_error_t *err) {
  for (int i = 0; i < PARTS_IN_FLIGHT; i++) join_job(k, &k->jobs[i]);
  if (k->failed && err) *err = k->first_err;
  return !k->failed;
}

/* The filled part handed to a thread (the oldest finished first when all are busy). */
static bool upload_part(s3_sink_t *k, m2d_error_t *err) {
  if (k->failed) return join_all(k, err);
  if (!k->upload_id[0] && !start_upload(k, err)) return false;
  char **e = realloc(k->etags, (size_t)(k->nparts + 1) * sizeof *e);
  if (!e) return m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory");
  k->etags = e;
  e[k->nparts] = NULL;
  part_job_t *j = &k->jobs[k->nparts % PARTS_IN_FLIGHT];
  join_job(k, j);
  if (k->failed) return join_all(k, err);
  j->k = k;
  j->number = ++k->nparts;
  j->data = k->part; /* the buffer moves to the job */
  j->ok = false;
  memset(&j->err, 0, sizeof j->err);
  m2d_buf_init(&k->part, PART_SIZE);
  if (pthread_create(&j->thread, NULL, part_thread, j) != 0) {
    part_thread(j); /* no thread to be had: the part goes up from here */
    finish_job(k, j);
    if (k->failed && err) *err = k->first_err;
    return !k->failed;
  }
  j->running = true;
  return true;
}

static bool s3_sink_write(m2d_sink_t *sk, const void *data, size_t len, m2d_error_t *err) {
  s3_sink_t *k = (s3_sink_t *)sk;
  const uint8_t *p = data;
  while (len) {
    size_t room = PART_SIZE - k->part.len;
    size_t n = len < room ? len : room;
    if (!m2d_buf_append(&k->part, p, n, err)) return false;
    p += n;
    len -= n;
    if (k->part.len == PART_SIZE && !upload_part(k, err)) return false;
  }
  return true;
}

static void abort_upload(s3_sink_t *k) {
  if (!k->upload_id[0]) return;
  m2d_buf_t q, enc;
  m2d_buf_init(&q, 4096);
  m2d_buf_init(&enc, 4096);
  m2d_error_t e = {0};
  if (m2d_http_encode(k->upload_id, false, &enc, &e) &&
      m2d_buf_appendf(&q, &e, "uploadId=%s", (const char *)enc.data) && m2d_buf_terminate(&q, &e)) {
    m2d_http_response_t r;
    s3_call_t c = {.method = "DELETE", .key = k->key, .query = (const char *)q.data};
    if (!s3_do(k->s, &c, &r, &e) || (r.status != 204 && r.status != 200 && r.status != 404))
      m2d_warn("s3://%s: could not abort the multipart upload of %s (%s); a bucket lifecycle rule for "
               "incomplete uploads removes its parts",
               k->s->bucket, k->key, e.message[0] ? e.message : "unexpected answer");
  }
  m2d_buf_free(&q);
  m2d_buf_free(&enc);
}

static bool complete_upload(s3_sink_t *k, m2d_error_t *err) {
  s3_t *s = k->s;
  m2d_buf_t xml, q, enc, body;
  m2d_buf_init(&xml, 1 << 22);
  m2d_buf_init(&q, 4096);
  m2d_buf_init(&enc, 4096);
  m2d_buf_init(&body, 1 << 20);
  bool ok = m2d_buf_append_str(&xml, "<CompleteMultipartUpload>", err);
  for (int i = 0; ok && i < k->nparts; i++)
    ok = m2d_buf_appendf(&xml, err, "<Part><PartNumber>%d</PartNumber><ETag>%s</ETag></Part>", i + 1, k->etags[i]);
  ok = ok && m2d_buf_append_str(&xml, "</CompleteMultipartUpload>", err) &&
       m2d_http_encode(k->upload_id, false, &enc, err) &&
       m2d_buf_appendf(&q, err, "uploadId=%s", (const char *)enc.data) && m2d_buf_terminate(&q, err);
  if (ok) {
    m2d_http_response_t r;
    s3_call_t c = {.method = "POST", .key = k->key, .query = (const char *)q.data, .body = xml.data,
                   .body_len = xml.len, .response = &body, .max_response = 1 << 20};
    ok = s3_do(s, &c, &r, err);
    char what[1200];
    m2d_objstore_describe(&s->base, "completing the upload of", k->key, what, sizeof what);
    /* S3 may answer 200 with an error document in the body */
    if (ok && (r.status != 200 || (body.data && memmem(body.data, body.len, "<Error>", 7))))
      ok = s3_fail(s, what, &r, &body, err);
    if (ok) k->upload_id[0] = '\0';
  }
  m2d_buf_free(&xml);
  m2d_buf_free(&q);
  m2d_buf_free(&enc);
  m2d_buf_free(&body);
  return ok;
}

static bool s3_sink_close(m2d_sink_t *sk, bool commit, m2d_error_t *err) {
  s3_sink_t *k = (s3_sink_t *)sk;
  bool ok = true;
  if (commit) {
    if (!k->upload_id[0]) {
      m2d_buf_t body;
      m2d_buf_init(&body, 1 << 20);
      m2d_http_response_t r;
      s3_call_t c = {.method = "PUT", .key = k->key, .body = k->part.data ? k->part.data : (const uint8_t *)"",
                     .body_len = k->part.len, .response = &body, .max_response = 1 << 20};
      ok = s3_do(k->s, &c, &r, err);
      char what[1200];
      m2d_objstore_describe(&k->s->base, "writing", k->key, what, sizeof what);
      if (ok && r.status != 200) ok = s3_fail(k->s, what, &r, &body, err);
      m2d_buf_free(&body);
    } else {
      ok = (k->part.len == 0 || upload_part(k, err)) && join_all(k, err) && complete_upload(k, err);
    }
  }
  join_all(k, NULL); /* no thread outlives the sink */
  if (!commit || !ok) abort_upload(k);
  for (int i = 0; i < k->nparts; i++) free(k->etags[i]);
  free(k->etags);
  m2d_buf_free(&k->part);
  free(k->key);
  free(k);
  return ok;
}

static m2d_sink_t *s3_create(m2d_store_t *st, const char *key, m2d_error_t *err) {
  s3_sink_t *k = calloc(1, sizeof *k);
  if (!k || !(k->key = strdup(key))) {
    free(k);
    return m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory"), NULL;
  }
  k->s = (s3_t *)st;
  m2d_buf_init(&k->part, PART_SIZE);
  k->base.write = s3_sink_write;
  k->base.close = s3_sink_close;
  return &k->base;
}

/* --- sources: ranged GETs with read-ahead ---------------------------------------------- */

static bool fetch_range(m2d_objstore_source_t *src, uint64_t off, uint64_t len, m2d_buf_t *into, m2d_error_t *err) {
  s3_t *s = (s3_t *)src->store;
  char range[96];
  snprintf(range, sizeof range, "Range: bytes=%llu-%llu", (unsigned long long)off, (unsigned long long)(off + len - 1));
  const char *extra[] = {range, NULL};
  m2d_http_response_t r;
  s3_call_t c = {.method = "GET", .key = src->key, .extra = extra, .response = into, .max_response = (size_t)len};
  if (!s3_do(s, &c, &r, err)) return false;
  char what[1200];
  m2d_objstore_describe(&s->base, "reading", src->key, what, sizeof what);
  if (r.status != 206 && r.status != 200) return s3_fail(s, what, &r, into, err);
  if (into->len != len)
    return m2d_error_set(err, M2D_ERR_IO, 0, "%s: asked for %llu bytes at %llu, got %zu (the object changed?)", what,
                         (unsigned long long)len, (unsigned long long)off, into->len);
  return true;
}

static m2d_source_t *s3_open(m2d_store_t *st, const char *key, m2d_error_t *err) {
  s3_t *s = (s3_t *)st;
  m2d_http_response_t r;
  s3_call_t c = {.method = "HEAD", .key = key};
  if (!s3_do(s, &c, &r, err)) return NULL;
  char what[1200];
  m2d_objstore_describe(&s->base, "opening", key, what, sizeof what);
  if (r.status == 404) return m2d_error_set(err, M2D_ERR_IO, 2, "%s: no such object", what), NULL;
  if (r.status != 200) return s3_fail(s, what, &r, NULL, err), NULL;
  if (!r.has_content_length) return m2d_error_set(err, M2D_ERR_IO, 0, "%s: S3 gave no Content-Length", what), NULL;
  m2d_objstore_source_t *src = m2d_objstore_source_new(st, key, r.content_length, fetch_range, err);
  return src ? &src->base : NULL;
}

/* Multipart uploads under the store's prefix started before before_ms, aborted. */
static bool s3_abort_uploads(m2d_store_t *st, int64_t before_ms, int *aborted, m2d_error_t *err) {
  s3_t *s = (s3_t *)st;
  *aborted = 0;
  char prefix[1100];
  snprintf(prefix, sizeof prefix, "%s%s", s->prefix, s->prefix[0] ? "/" : "");
  size_t plen = strlen(prefix);
  m2d_buf_t body, q, enc;
  m2d_buf_init(&body, MAX_LIST_RESPONSE);
  m2d_buf_init(&q, 1 << 16);
  m2d_buf_init(&enc, 1 << 16);
  char key_marker[2048] = "", id_marker[1024] = "";
  bool ok = true, more = true;
  /* MinIO answers a prefix that is not a whole object name with no uploads: when the listing by
   * prefix finds none, the bucket's whole listing is filtered here instead */
  bool by_prefix = plen > 0;
  int listed = 0;
  char what[1200];
  snprintf(what, sizeof what, "listing the unfinished uploads of s3://%s/%s", s->bucket, prefix);
  while (ok && more) {
    m2d_buf_reset(&q);
    if (key_marker[0]) {
      m2d_buf_reset(&enc);
      ok = m2d_http_encode(key_marker, false, &enc, err) &&
           m2d_buf_appendf(&q, err, "key-marker=%s&", (const char *)enc.data);
    }
    m2d_buf_reset(&enc);
    if (by_prefix)
      ok = ok && m2d_http_encode(prefix, false, &enc, err) &&
           m2d_buf_appendf(&q, err, "prefix=%s&", (const char *)enc.data);
    if (ok && id_marker[0]) {
      m2d_buf_reset(&enc);
      ok = m2d_http_encode(id_marker, false, &enc, err) &&
           m2d_buf_appendf(&q, err, "upload-id-marker=%s&", (const char *)enc.data);
    }
    ok = ok && m2d_buf_append_str(&q, "uploads=", err) && m2d_buf_terminate(&q, err);
    if (!ok) break;
    m2d_http_response_t r;
    s3_call_t c = {.method = "GET", .key = "", .absolute = true, .query = (const char *)q.data, .response = &body,
                   .max_response = MAX_LIST_RESPONSE};
    if (!(ok = s3_do(s, &c, &r, err))) break;
    if (r.status == 404) break;
    if (r.status != 200) {
      ok = s3_fail(s, what, &r, &body, err);
      break;
    }
    const char *p = (const char *)body.data, *end = p + body.len, *u = p;
    char key[2048], id[1024], when[64];
    while (ok && (u = memmem(u, (size_t)(end - u), "<Upload>", 8))) {
      const char *ue = memmem(u, (size_t)(end - u), "</Upload>", 9);
      if (!ue) break;
      listed++;
      if (m2d_objstore_xml_text(u, ue, "Key", key, sizeof key) &&
          m2d_objstore_xml_text(u, ue, "UploadId", id, sizeof id) &&
          m2d_objstore_xml_text(u, ue, "Initiated", when, sizeof when) && strncmp(key, prefix, plen) == 0 &&
          m2d_objstore_parse_rfc3339_ms(when) < before_ms) {
        s3_sink_t k = {.s = s, .key = key + plen};
        snprintf(k.upload_id, sizeof k.upload_id, "%s", id);
        abort_upload(&k);
        (*aborted)++;
      }
      u = ue;
    }
    char trunc[16] = "";
    more = m2d_objstore_xml_text(p, end, "IsTruncated", trunc, sizeof trunc) && strcmp(trunc, "true") == 0 &&
           m2d_objstore_xml_text(p, end, "NextKeyMarker", key_marker, sizeof key_marker);
    if (more) m2d_objstore_xml_text(p, end, "NextUploadIdMarker", id_marker, sizeof id_marker);
    if (!more && by_prefix && listed == 0) {
      by_prefix = false;
      more = true;
      key_marker[0] = id_marker[0] = '\0';
    }
  }
  m2d_buf_free(&body);
  m2d_buf_free(&q);
  m2d_buf_free(&enc);
  return ok;
}

/* --- configuration: the environment and ~/.aws as AWS's own tools read them ----------- */

static void trim(char *s) {
  size_t n = strlen(s);
  while (n && isspace((unsigned char)s[n - 1])) s[--n] = '\0';
  size_t i = 0;
  while (s[i] && isspace((unsigned char)s[i])) i++;
  if (i) memmove(s, s + i, n - i + 1);
}

/* Reads key from [section] of an INI file (~/.aws/credentials, ~/.aws/config). */
static bool ini_get(const char *path, const char *section, const char *key, char *out, size_t n) {
  FILE *f = fopen(path, "r");
  if (!f) return false;
  char line[2048];
  bool in = false, found = false;
  while (!found && fgets(line, sizeof line, f)) {
    trim(line);
    if (line[0] == '#' || line[0] == ';' || !line[0]) continue;
    if (line[0] == '[') {
      char *e = strchr(line, ']');
      if (e) *e = '\0';
      const char *name = line + 1;
      if (strncmp(name, "profile ", 8) == 0) name += 8;
      in = strcmp(name, section) == 0;
      continue;
    }
    char *eq = strchr(line, '=');
    if (!in || !eq) continue;
    *eq = '\0';
    trim(line);
    char *v = eq + 1;
    trim(v);
    if (strcmp(line, key) == 0) {
      snprintf(out, n, "%s", v);
      found = true;
    }
  }
  fclose(f);
  return found;
}

static bool env_or_profile(const char *env, const char *profile, const char *file, const char *key, char *out,
                           size_t n) {
  const char *v = getenv(env);
  if (v && *v) {
    snprintf(out, n, "%s", v);
    return true;
  }
  return file && ini_get(file, profile, key, out, n);
}

static void s3_destroy(m2d_store_t *st) {
  s3_t *s = (s3_t *)st;
  m2d_http_free(s->http);
  if (s->userpwd) {
    memset(s->userpwd, 0, strlen(s->userpwd));
    free(s->userpwd);
  }
  free(s->session_token_header);
  m2d_objstore_commits_destroy(&s->commits);
  free(s);
}

m2d_store_t *m2d_store_s3_new(const char *url, const m2d_store_options_t *opts, m2d_error_t *err) {
  if (strncmp(url, "s3://", 5) != 0 && strncmp(url, "s3a://", 6) != 0)
    return m2d_error_set(err, M2D_ERR_USAGE, 0, "%s is not an s3:// URL", url), NULL;
  const char *b = strstr(url, "://") + 3;
  const char *slash = strchr(b, '/');
  size_t blen = slash ? (size_t)(slash - b) : strlen(b);
  s3_t *s = calloc(1, sizeof *s);
  if (!s) return m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory"), NULL;
  m2d_objstore_commits_init(&s->commits, &s3_cond);
  if (blen == 0 || blen >= sizeof s->bucket) {
    s3_destroy(&s->base);
    return m2d_error_set(err, M2D_ERR_USAGE, 0, "%s: no bucket name (write s3://BUCKET/PREFIX)", url), NULL;
  }
  memcpy(s->bucket, b, blen);
  const char *p = slash ? slash + 1 : "";
  snprintf(s->prefix, sizeof s->prefix, "%s", p);
  size_t pl = strlen(s->prefix);
  while (pl && s->prefix[pl - 1] == '/') s->prefix[--pl] = '\0';
  snprintf(s->base.root, sizeof s->base.root, "s3://%s%s%s", s->bucket, s->prefix[0] ? "/" : "", s->prefix);
  snprintf(s->commits.where, sizeof s->commits.where, "s3://%s", s->bucket);
  s->commits.endpoint = s->endpoint;

  /* credentials: the environment, else the profile of ~/.aws/credentials (AWS_PROFILE) */
  const char *home = getenv("HOME");
  char cred_file[1024] = "", conf_file[1024] = "";
  const char *cf = getenv("AWS_SHARED_CREDENTIALS_FILE");
  if (cf && *cf) snprintf(cred_file, sizeof cred_file, "%s", cf);
  else if (home) snprintf(cred_file, sizeof cred_file, "%s/.aws/credentials", home);
  const char *cfg = getenv("AWS_CONFIG_FILE");
  if (cfg && *cfg) snprintf(conf_file, sizeof conf_file, "%s", cfg);
  else if (home) snprintf(conf_file, sizeof conf_file, "%s/.aws/config", home);
  const char *profile = getenv("AWS_PROFILE");
  if (!profile || !*profile) profile = "default";
  char key[256] = "", secret[512] = "", token[4096] = "";
  bool have_env_key = getenv("AWS_ACCESS_KEY_ID") && *getenv("AWS_ACCESS_KEY_ID");
  if (have_env_key) {
    snprintf(key, sizeof key, "%s", getenv("AWS_ACCESS_KEY_ID"));
    env_or_profile("AWS_SECRET_ACCESS_KEY", profile, NULL, NULL, secret, sizeof secret);
    env_or_profile("AWS_SESSION_TOKEN", profile, NULL, NULL, token, sizeof token);
  } else {
    ini_get(cred_file, profile, "aws_access_key_id", key, sizeof key);
    ini_get(cred_file, profile, "aws_secret_access_key", secret, sizeof secret);
    ini_get(cred_file, profile, "aws_session_token", token, sizeof token);
  }
  if (!key[0] || !secret[0]) {
    m2d_error_set(err, M2D_ERR_USAGE, 0,
                  "%s: no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or a profile in %s "
                  "(AWS_PROFILE, now '%s')",
                  s->base.root, cred_file[0] ? cred_file : "~/.aws/credentials", profile);
    s3_destroy(&s->base);
    return NULL;
  }
  if (!env_or_profile("AWS_REGION", profile, NULL, NULL, s->region, sizeof s->region) &&
      !env_or_profile("AWS_DEFAULT_REGION", profile, conf_file, "region", s->region, sizeof s->region))
    snprintf(s->region, sizeof s->region, "us-east-1");

  char endpoint[512] = "";
  if (!env_or_profile("AWS_ENDPOINT_URL_S3", profile, NULL, NULL, endpoint, sizeof endpoint))
    env_or_profile("AWS_ENDPOINT_URL", profile, conf_file, "endpoint_url", endpoint, sizeof endpoint);
  if (opts && opts->endpoint && *opts->endpoint) snprintf(endpoint, sizeof endpoint, "%s", opts->endpoint);
  size_t el = strlen(endpoint);
  while (el && endpoint[el - 1] == '/') endpoint[--el] = '\0';
  const char *style = getenv("AWS_S3_ADDRESSING_STYLE");
  if (endpoint[0]) {
    if (!m2d_objstore_check_endpoint("AWS_ENDPOINT_URL", endpoint, "https://HOST[:PORT]", "the table's data", err)) {
      s3_destroy(&s->base);
      return NULL;
    }
    snprintf(s->endpoint, sizeof s->endpoint, "%s", endpoint);
    /* S3-compatible servers are reached by path unless told otherwise */
    s->path_style = !(style && strcmp(style, "virtual") == 0);
  } else {
    snprintf(s->endpoint, sizeof s->endpoint, "https://s3.%s.amazonaws.com", s->region);
    /* a bucket with dots does not match the certificate as a host name */
    s->path_style = (style && strcmp(style, "path") == 0) || strchr(s->bucket, '.');
  }
  snprintf(s->sigv4, sizeof s->sigv4, "aws:amz:%s:s3", s->region);
  size_t ul = strlen(key) + strlen(secret) + 2;
  s->userpwd = malloc(ul);
  if (s->userpwd) snprintf(s->userpwd, ul, "%s:%s", key, secret);
  if (token[0]) {
    size_t tl = strlen(token) + 32;
    s->session_token_header = malloc(tl);
    if (s->session_token_header) snprintf(s->session_token_header, tl, "x-amz-security-token: %s", token);
  }
  memset(secret, 0, sizeof secret);
  memset(token, 0, sizeof token);
  s->commits.unsafe_single_writer = opts && opts->unsafe_single_writer;
  m2d_http_policy_t policy = {0};
  if (opts) policy.max_attempts = opts->max_attempts;
  s->http = m2d_http_new(&policy, err);
  if (!s->userpwd || !s->http) {
    s3_destroy(&s->base);
    return NULL;
  }
  s->base.get = s3_get;
  s->base.list = s3_list;
  s->base.list_all = s3_list_all;
  s->base.put_if_absent = s3_put_if_absent;
  s->base.create = s3_create;
  s->base.open = s3_open;
  s->base.remove = s3_remove;
  s->base.abort_uploads = s3_abort_uploads;
  s->base.destroy = s3_destroy;
  m2d_debug("%s: endpoint %s, region %s, %s-style addressing", s->base.root, s->endpoint, s->region,
            s->path_style ? "path" : "virtual-hosted");
  return &s->base;
}
