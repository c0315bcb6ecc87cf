/* parquet.thrift structures (format.h) to thrift compact bytes. */
#ifndef M2D_PARQUET_METADATA_WRITE_H
#define M2D_PARQUET_METADATA_WRITE_H

#include "core/buf.h"
#include "parquet/format.h"

/* Appends the encoded FileMetaData (the footer, without length and magic) to out. */
bool pq_encode_file_metadata(const pq_file_metadata_t *md, m2d_buf_t *out, m2d_error_t *err);
/* Appends an encoded PageHeader to out. */
bool pq_encode_page_header(const pq_page_header_t *ph, m2d_buf_t *out, m2d_error_t *err);

#endif
