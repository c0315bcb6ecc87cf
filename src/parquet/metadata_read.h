/* Thrift compact bytes to parquet.thrift structures (format.h), strictly bounded. */
#ifndef M2D_PARQUET_METADATA_READ_H
#define M2D_PARQUET_METADATA_READ_H

#include "parquet/format.h"
#include "core/error.h"

/* A decoded footer: md's strings and arrays live in the footer's own memory. */
typedef struct pq_footer pq_footer_t;

/* Decodes a FileMetaData from bytes (copied). Errors name what is wrong; the caller adds the
 * file name. */
pq_footer_t *pq_footer_decode(const uint8_t *bytes, size_t n, m2d_error_t *err);
const pq_file_metadata_t *pq_footer_metadata(const pq_footer_t *f);
void pq_footer_free(pq_footer_t *f);

/* Decodes a PageHeader from the start of bytes; *used is its encoded length. Statistics
 * inside point into bytes. */
bool pq_page_header_decode(const uint8_t *bytes, size_t n, pq_page_header_t *ph, size_t *used, m2d_error_t *err);

#endif
