/* core: bounded buffers, errors, redaction of secrets. */
#include "core/buf.h"
#include "core/redact.h"
#include "test.h"

#include <stdlib.h>

TEST(buf_grows_until_its_cap_then_fails_cleanly) {
  m2d_buf_t b;
  m2d_buf_init(&b, 10);
  m2d_error_t err = {0};
  CHECK(m2d_buf_append(&b, "hello", 5, &err));
  CHECK(m2d_buf_appendf(&b, &err, "%d", 1234));
  CHECK(b.len == 9);
  CHECK(!m2d_buf_append(&b, "xy", 2, &err));
  CHECK(err.domain == M2D_ERR_LIMIT);
  CHECK(b.len == 9); /* a failed append leaves the content as it was */
  CHECK(m2d_buf_terminate(&b, &err));
  CHECK_STR((char *)b.data, "hello1234");
  m2d_buf_free(&b);
}

TEST(buf_steal_hands_over_the_storage) {
  m2d_buf_t b;
  m2d_buf_init(&b, 1 << 20);
  for (int i = 0; i < 1000; i++) CHECK(m2d_buf_append_byte(&b, (uint8_t)i, NULL));
  size_t n;
  uint8_t *p = m2d_buf_steal(&b, &n);
  CHECK(n == 1000 && p[999] == (uint8_t)999);
  CHECK(b.data == NULL && b.len == 0);
  free(p);
}

TEST(error_prefix_keeps_the_original_message) {
  m2d_error_t err;
  CHECK(!m2d_error_set(&err, M2D_ERR_USAGE, 0, "bad value %d", 7));
  m2d_error_prefix(&err, "reading %s: ", "x.parquet");
  CHECK_STR(err.message, "reading x.parquet: bad value 7");
  CHECK(m2d_error_exit_status(&err) == 2);
}

TEST(redact_hides_passwords_in_uris) {
  char out[256];
  m2d_redact("mongodb://alice:s3cr%40t@db.example:27017/?authSource=admin", out, sizeof out);
  CHECK_STR(out, "mongodb://alice:****@db.example:27017/?authSource=admin");
  m2d_redact("failed: mongodb://u:p@@h1,h2/x and s3://k:v@bucket/p", out, sizeof out);
  CHECK_STR(out, "failed: mongodb://u:****@h1,h2/x and s3://k:****@bucket/p");
  m2d_redact("mongodb://127.0.0.1:27017/db", out, sizeof out);
  CHECK_STR(out, "mongodb://127.0.0.1:27017/db");
  m2d_redact("mongodb://user@host/", out, sizeof out);
  CHECK_STR(out, "mongodb://user@host/");
}

TEST(redact_hides_signatures_keys_and_tokens) {
  char out[512];
  m2d_redact("GET https://b.s3.amazonaws.com/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIA%2F2026&"
             "X-Amz-Signature=abc123&x=1 failed",
             out, sizeof out);
  CHECK_STR(out, "GET https://b.s3.amazonaws.com/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=****&"
                 "X-Amz-Signature=****&x=1 failed");
  m2d_redact("https://acct.blob.core.windows.net/c/b?sv=2024-08-04&se=2027&sig=Zm9v%2Bbar%3D&sp=rw", out, sizeof out);
  CHECK_STR(out, "https://acct.blob.core.windows.net/c/b?sv=2024-08-04&se=2027&sig=****&sp=rw");
  m2d_redact("DefaultEndpointsProtocol=https;AccountName=a;AccountKey=c2VjcmV0==;EndpointSuffix=x", out, sizeof out);
  CHECK_STR(out, "DefaultEndpointsProtocol=https;AccountName=a;AccountKey=****;EndpointSuffix=x");
  m2d_redact("Authorization: AWS4-HMAC-SHA256 Credential=k/x, Signature=ff\nnext", out, sizeof out);
  CHECK_STR(out, "Authorization: ****\nnext");
  m2d_redact("{\"type\": \"service_account\", \"private_key\": \"-----BEGIN\\nKEY\\n\", \"x\": 1}", out, sizeof out);
  CHECK_STR(out, "{\"type\": \"service_account\", \"private_key\": \"****\", \"x\": 1}");
  /* words that only look alike stay */
  m2d_redact("SignatureDoesNotMatch: the signature we calculated; config=a; designation=b", out, sizeof out);
  CHECK_STR(out, "SignatureDoesNotMatch: the signature we calculated; config=a; designation=b");
}

TEST(redact_truncates_without_overflow) {
  char out[8];
  m2d_redact("mongodb://a:b@c", out, sizeof out);
  CHECK(strlen(out) == 7);
}
