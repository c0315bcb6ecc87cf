/* storage/azure: the table URL forms, locations compared across them, the Shared Key string to
 * sign and its HMAC (the signature checked against one computed with Python's hmac). */
#include "storage/azure.h"
#include "storage/store.h"
#include "test.h"

#include <openssl/evp.h>
#include <stdlib.h>

TEST(azure_urls_name_container_account_and_prefix) {
  m2d_azure_url_t u;
  m2d_error_t err = {0};
  CHECK(m2d_azure_parse_url("az://lake/bronze/orders/", &u, &err));
  CHECK_STR(u.container, "lake");
  CHECK_STR(u.account, "");
  CHECK_STR(u.prefix, "bronze/orders");
  CHECK(m2d_azure_parse_url("abfss://lake@acct.dfs.core.windows.net/bronze/orders", &u, &err));
  CHECK_STR(u.container, "lake");
  CHECK_STR(u.account, "acct");
  CHECK_STR(u.host, "acct.dfs.core.windows.net");
  CHECK_STR(u.prefix, "bronze/orders");
  CHECK(m2d_azure_parse_url("wasbs://lake@acct.blob.core.windows.net", &u, &err));
  CHECK_STR(u.container, "lake");
  CHECK_STR(u.prefix, "");
  CHECK(m2d_azure_parse_url("abfs://lake@acct.dfs.core.windows.net/x", &u, &err));
  CHECK_STR(u.account, "acct");
  CHECK(!m2d_azure_parse_url("abfss://acct.dfs.core.windows.net/x", &u, &err)); /* no container@ */
  CHECK(strstr(err.message, "CONTAINER@ACCOUNT"));
  CHECK(!m2d_azure_parse_url("az:///x", &u, &err));
  CHECK(strstr(err.message, "no container"));
}

TEST(azure_locations_compare_across_url_forms) {
  setenv("AZURE_STORAGE_ACCOUNT", "acct", 1);
  setenv("AZURE_STORAGE_KEY", "a2V5", 1);
  m2d_error_t err = {0};
  m2d_store_t *s = m2d_store_open("abfss://lake@acct.dfs.core.windows.net/t", &err);
  CHECK(s);
  CHECK_STR(m2d_store_relative_key(s, "abfss://lake@acct.dfs.core.windows.net/t/part-0.parquet"), "part-0.parquet");
  CHECK_STR(m2d_store_relative_key(s, "az://lake/t/p=1/part-0.parquet"), "p=1/part-0.parquet");
  CHECK_STR(m2d_store_relative_key(s, "wasbs://lake@acct.blob.core.windows.net/t/x"), "x");
  CHECK(m2d_store_relative_key(s, "abfss://lake@other.dfs.core.windows.net/t/x") == NULL);
  CHECK(m2d_store_relative_key(s, "az://other/t/x") == NULL);
  CHECK(m2d_store_relative_key(s, "az://lake/tt/x") == NULL);
  CHECK(m2d_store_relative_key(s, "s3://lake/t/x") == NULL);
  CHECK(m2d_store_is_remote("az://lake/t") && m2d_store_is_remote("abfss://lake@a.dfs.core.windows.net/t"));
  m2d_store_destroy(s);
  /* plain http is for loopback test servers only */
  setenv("AZURE_STORAGE_ENDPOINT", "http://storage.example:10000/acct", 1);
  CHECK(!m2d_store_open("az://lake/t", &err));
  CHECK(strstr(err.message, "loopback"));
  unsetenv("AZURE_STORAGE_ENDPOINT");
  unsetenv("AZURE_STORAGE_KEY");
  CHECK(!m2d_store_open("az://lake/t", &err));
  CHECK(strstr(err.message, "AZURE_STORAGE_KEY"));
  unsetenv("AZURE_STORAGE_ACCOUNT");
}

TEST(azure_registry_change_keeps_s3_locations_as_they_were) {
  setenv("AWS_ACCESS_KEY_ID", "k", 1);
  setenv("AWS_SECRET_ACCESS_KEY", "s", 1);
  m2d_error_t err = {0};
  m2d_store_t *s = m2d_store_open("s3://b/t/", &err);
  CHECK(s);
  CHECK_STR(m2d_store_relative_key(s, "s3://b/t/x.parquet"), "x.parquet");
  CHECK_STR(m2d_store_relative_key(s, "s3a://b/t/p=1/x.parquet"), "p=1/x.parquet");
  CHECK(m2d_store_relative_key(s, "s3://b/tt/x") == NULL && m2d_store_relative_key(s, "s3://c/t/x") == NULL);
  CHECK(m2d_store_relative_key(s, "az://b/t/x") == NULL && m2d_store_relative_key(s, "s3://b/t") == NULL);
  m2d_store_destroy(s);
  s = m2d_store_open("s3://b", &err); /* a whole bucket */
  CHECK(s);
  CHECK_STR(m2d_store_relative_key(s, "s3://b/x/y"), "x/y");
  m2d_store_destroy(s);
  unsetenv("AWS_ACCESS_KEY_ID");
  unsetenv("AWS_SECRET_ACCESS_KEY");
}

TEST(azure_string_to_sign_follows_the_shared_key_spec) {
  const char *headers[] = {"x-ms-version: 2021-08-06", "x-ms-date: Wed, 03 Dec 2025 14:25:00 GMT",
                           "If-None-Match: *", "Content-Type: application/octet-stream",
                           "X-MS-Blob-Type:  BlockBlob ", NULL};
  m2d_buf_t sts;
  m2d_buf_init(&sts, 1 << 16);
  m2d_error_t err = {0};
  CHECK(m2d_azure_string_to_sign(
      "PUT", "http://127.0.0.1:10000/devstoreaccount1/cont/t/_delta_log/0.json?comp=block&blockid=bTJk%3D",
      "devstoreaccount1", headers, 12, &sts, &err));
  const char *want = "PUT\n\n\n12\n\napplication/octet-stream\n\n\n\n*\n\n\n"
                     "x-ms-blob-type:BlockBlob\nx-ms-date:Wed, 03 Dec 2025 14:25:00 GMT\nx-ms-version:2021-08-06\n"
                     "/devstoreaccount1/devstoreaccount1/cont/t/_delta_log/0.json\nblockid:bTJk=\ncomp:block";
  CHECK_STR((const char *)sts.data, want);
  /* the Azurite account key; the expected value computed with Python's hmac */
  unsigned char key[64];
  int kl = EVP_DecodeBlock(
      key, (const unsigned char *)"Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==",
      88);
  CHECK(kl == 66); /* 64 bytes and two of padding */
  char sig[64];
  CHECK(m2d_azure_hmac(key, 64, (const char *)sts.data, sts.len, sig, sizeof sig));
  CHECK_STR(sig, "3XDMMPK1mAEZ5r3z6bTDk/PHjvVqJyEdAP4zfs+oe7Q=");
  /* a listing: no body (an empty Content-Length line), the query decoded and sorted */
  const char *h2[] = {"x-ms-version: 2021-08-06", NULL};
  CHECK(m2d_azure_string_to_sign("GET",
                                 "https://acct.blob.core.windows.net/lake?restype=container&comp=list&prefix=a%2Fb%20c%2F",
                                 "acct", h2, 0, &sts, &err));
  CHECK_STR((const char *)sts.data, "GET\n\n\n\n\n\n\n\n\n\n\n\nx-ms-version:2021-08-06\n/acct/lake\ncomp:list\n"
                                    "prefix:a/b c/\nrestype:container");
  m2d_buf_free(&sts);
}
