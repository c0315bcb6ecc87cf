/* HTTP for the object stores, through libcurl: one request with its headers and body, a pool
 * of easy handles so connections are reused across requests (and threads), and one retry
 * policy (jittered exponential backoff, a bounded count) for what a cloud store answers when
 * it is busy or the network drops: timeouts, resets, 429, 500, 502, 503, 504. Signing is the
 * caller's (SigV4 through libcurl's CURLOPT_AWS_SIGV4 for S3, a bearer token header for GCS,
 * Shared Key in azure.c). Nothing here logs a header: debug lines name the method, the object
 * and the status only. */
#ifndef M2D_STORAGE_HTTP_H
#define M2D_STORAGE_HTTP_H

#include "core/buf.h"
#include "core/error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct m2d_http m2d_http_t;

typedef struct {
  int max_attempts;       /* tries of one request, 1 = no retry (default 8) */
  int base_delay_ms;      /* first backoff (default 100), doubled each retry, jittered */
  int max_delay_ms;       /* cap of one backoff (default 5000) */
  long connect_timeout_s; /* default 10 */
  long timeout_s;         /* a request that moves fewer than 1 KB/s for this long is cut (default 60) */
} m2d_http_policy_t;

typedef struct {
  const char *method; /* GET, PUT, POST, DELETE, HEAD */
  const char *url;
  const char *const *headers; /* "Name: value" lines, NULL-terminated, or NULL */
  const void *body;           /* request body (PUT/POST), may be NULL */
  size_t body_len;
  const char *sigv4;     /* CURLOPT_AWS_SIGV4 provider string, or NULL */
  const char *userpwd;   /* "key:secret" for SigV4, or NULL */
  const char *what;      /* for messages: "PUT s3://bucket/key" */
  m2d_buf_t *response;   /* body into this buffer (reset first), or NULL to drop it */
  size_t max_response;   /* 0 = no bound */
} m2d_http_request_t;

typedef struct {
  long status;       /* HTTP status of the last attempt, 0 when none answered */
  int attempts;      /* how many were made */
  bool transport_failed_before; /* an earlier attempt got no answer (it may have reached the server) */
  char etag[128];
  char content_range[128];
  uint64_t content_length;
  bool has_content_length;
  char request_id[128];
  char location[4096]; /* Location (a GCS resumable upload session) */
  char range[128];     /* Range of a GCS resumable upload's 308: the bytes the server holds */
  char error_code[128]; /* x-ms-error-code (Azure names the error in a header: HEAD has no body) */
} m2d_http_response_t;

m2d_http_t *m2d_http_new(const m2d_http_policy_t *policy, m2d_error_t *err);
void m2d_http_free(m2d_http_t *h); /* accepts NULL */

/* Runs one request with the retry policy. Returns true when a response arrived (any status:
 * the caller reads resp->status); false with err set (retriable) when every attempt failed in
 * transport or with a retried status. */
bool m2d_http_do(m2d_http_t *h, const m2d_http_request_t *req, m2d_http_response_t *resp, m2d_error_t *err);

/* Percent-encodes s into out (RFC 3986 unreserved kept; '/' kept when keep_slash). */
bool m2d_http_encode(const char *s, bool keep_slash, m2d_buf_t *out, m2d_error_t *err);
/* Percent-decodes the n bytes of s onto out (a '%' without two hex digits after it kept as it is). */
void m2d_http_decode(const char *s, size_t n, m2d_buf_t *out, m2d_error_t *err);

/* Requests made by this process, by method (tests and --verbose summaries count them). */
uint64_t m2d_http_requests(const char *method);
/* All requests made by this process, the bytes sent (headers and bodies) and received. */
void m2d_http_totals(uint64_t *requests, uint64_t *sent, uint64_t *received);

#endif
