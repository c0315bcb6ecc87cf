/* core: bounded buffers, errors, redaction of secrets. */
#include "core/buf.h"
#include "core/redact.h"
#include "test.h"

#include <stdlib.h>
#include <string.h>

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

TEST(buf_varint_is_leb128) {
  m2d_buf_t b;
  m2d_buf_init(&b, 64);
  CHECK(m2d_buf_append_varint(&b, 0, NULL) && m2d_buf_append_varint(&b, 127, NULL) &&
        m2d_buf_append_varint(&b, 128, NULL) && m2d_buf_append_varint(&b, 300, NULL) &&
        m2d_buf_append_varint(&b, UINT64_MAX, NULL));
  static const uint8_t want[] = {0x00, 0x7f, 0x80, 0x01, 0xac, 0x02, 0xff, 0xff, 0xff, 0xff, 0xff,
                                 0xff, 0xff, 0xff, 0xff, 0x01};
  bool same = b.len == sizeof want && memcmp(b.data, want, sizeof want) == 0;
  m2d_buf_free(&b);
  CHECK(same);
  m2d_buf_init(&b, 3); /* the cap holds: a varint that does not fit is an error */
  m2d_error_t err = {0};
  bool fits = m2d_buf_append_varint(&b, UINT64_MAX, &err);
  m2d_buf_free(&b);
  CHECK(!fits && err.domain == M2D_ERR_LIMIT);
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

TEST(redact_hides_tokens_keys_and_jwts) {
  char out[1024];
  m2d_redact("request headers: Authorization: Bearer ya29.a0AfB_secret-Token\nHost: x", out, sizeof out);
  CHECK_STR(out, "request headers: Authorization: ****\nHost: x");
  m2d_redact("{\"Authorization\": \"Bearer ya29.secret\"}", out, sizeof out);
  CHECK_STR(out, "{\"Authorization\": \"Bearer ****\"}");
  m2d_redact("grant_type=x&assertion=abc.def.ghi&access_token=tok123 and refresh_token=r1", out, sizeof out);
  CHECK_STR(out, "grant_type=x&assertion=****&access_token=**** and refresh_token=****");
  m2d_redact("{\"access_token\": \"ya29.x\\\"y\", \"expires_in\": 3599, \"private_key\":\"-----BEGIN PRIVATE "
             "KEY-----\\nMIIE\\n-----END PRIVATE KEY-----\\n\", \"client_email\": \"a@b.iam\"}",
             out, sizeof out);
  CHECK_STR(out, "{\"access_token\": \"****\", \"expires_in\": 3599, \"private_key\":\"****\", \"client_email\": "
                 "\"a@b.iam\"}");
  m2d_redact("jwt eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJ4In0.c2lnbmF0dXJl-_x, then more", out, sizeof out);
  CHECK_STR(out, "jwt ****, then more");
  m2d_redact("PUT http://127.0.0.1:1/upload/storage/v1/b/b/o?uploadType=resumable&upload_id=abc123 -> 308", out,
             sizeof out);
  CHECK_STR(out, "PUT http://127.0.0.1:1/upload/storage/v1/b/b/o?uploadType=resumable&upload_id=**** -> 308");
  /* words that only contain the names, and ordinary text, stay */
  m2d_redact("myaccess_token=1 eyJnot-a-jwt bearer-less \"access_token_count\": 3 gs://b/eyJ.x", out, sizeof out);
  CHECK_STR(out, "myaccess_token=1 eyJnot-a-jwt bearer-less \"access_token_count\": 3 gs://b/eyJ.x");
  /* both passes in one text */
  m2d_redact("mongodb://u:pw@h/ Authorization: Bearer t", out, sizeof out);
  CHECK_STR(out, "mongodb://u:****@h/ Authorization: ****");
}

TEST(redact_masks_short_secrets_in_small_buffers) {
  char out[16];
  m2d_redact("access_token=a&access_token=b", out, sizeof out);
  CHECK(strlen(out) == 15);
  CHECK(strstr(out, "=a") == NULL);
  char big[20000];
  memset(big, 'x', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  memcpy(big + 10000, " Bearer secret", 14);
  static char out2[20000];
  m2d_redact(big, out2, sizeof out2);
  CHECK(strstr(out2, "secret") == NULL && strstr(out2, " Bearer ****") != NULL);
}

TEST(redact_truncates_without_overflow) {
  char out[8];
  m2d_redact("mongodb://a:b@c", out, sizeof out);
  CHECK(strlen(out) == 7);
}

TEST(redact_hides_sas_signatures_account_keys_and_authorization) {
  char out[512];
  m2d_redact("GET https://a.blob.core.windows.net/c/k?sv=2021-08-06&sp=rl&sig=AbC%2Bd%3D&se=x failed", out,
             sizeof out);
  CHECK_STR(out, "GET https://a.blob.core.windows.net/c/k?sv=2021-08-06&sp=rl&sig=****&se=x failed");
  m2d_redact("AccountName=a;AccountKey=Zm9vYmFy==;BlobEndpoint=https://a;SharedAccessSignature=sv=1&sig=x",
             out, sizeof out);
  CHECK_STR(out, "AccountName=a;AccountKey=****;BlobEndpoint=https://a;SharedAccessSignature=****");
  m2d_redact("sent Authorization: SharedKey acct:c2lnbmF0dXJl\nnext line", out, sizeof out);
  CHECK_STR(out, "sent Authorization: ****\nnext line");
  m2d_redact("config=1 xsig=2 designation", out, sizeof out); /* words that only contain a marker */
  CHECK_STR(out, "config=1 xsig=2 designation");
  m2d_redact("mongodb://u:p@h/?x=1 and sig=abc", out, sizeof out); /* both passes */
  CHECK_STR(out, "mongodb://u:****@h/?x=1 and sig=****");
}
