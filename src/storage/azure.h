/* Internals of the Azure Blob store (storage/azure.c) that the unit tests check: the table URL
 * forms and the Shared Key signature. The store itself is m2d_store_azure_new in store.h. */
#ifndef M2D_STORAGE_AZURE_H
#define M2D_STORAGE_AZURE_H

#include "core/buf.h"
#include "core/error.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct {
  char container[256];
  char account[128]; /* from the URL's host (abfss://c@ACCOUNT.dfs...), "" for az:// */
  char host[256];    /* the URL's host, "" for az:// */
  char prefix[1024]; /* without leading or trailing '/', may be empty */
} m2d_azure_url_t;

/* Splits az://container/prefix, abfs[s]://container@account.dfs.core.windows.net/prefix and
 * wasb[s]://container@account.blob.core.windows.net/prefix. */
bool m2d_azure_parse_url(const char *url, m2d_azure_url_t *out, m2d_error_t *err);

/* The Shared Key string to sign of a Blob service request (version 2015-02-21 and later):
 * method, the standard headers and the x-ms-* ones among headers ("Name: value" lines,
 * NULL-terminated, as sent), content_length the body's length (0 signs as ""), and the
 * canonicalized resource "/account/path" with the query's parameters, decoded and sorted. */
bool m2d_azure_string_to_sign(const char *method, const char *url, const char *account, const char *const *headers,
                              size_t content_length, m2d_buf_t *out, m2d_error_t *err);

/* base64(HMAC-SHA256(key, text)) into out (at least 45 bytes). */
bool m2d_azure_hmac(const unsigned char *key, size_t key_len, const char *text, size_t text_len, char *out,
                    size_t outsz);

#endif
