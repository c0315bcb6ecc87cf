/* Page compression for the writer: snappy, gzip, zstd, lz4_raw, or none. */
#ifndef M2D_PARQUET_COMPRESS_H
#define M2D_PARQUET_COMPRESS_H

#include "core/buf.h"
#include "parquet/format.h"

/* State kept from page to page (a zstd context: making one per page costs more than
 * compressing a small page). Zero-initialize; pq_compressor_free releases it. */
typedef struct {
  void *zstd; /* ZSTD_CCtx, made on first use */
} pq_compressor_t;
void pq_compressor_free(pq_compressor_t *cx);

/* Appends the compressed form of in to out. level is used by zstd (1..22) and gzip (1..9);
 * 0 means the codec's default. cx may be NULL (no state kept). */
bool pq_compress(pq_compressor_t *cx, pq_codec_t codec, int level, const uint8_t *in, size_t n, m2d_buf_t *out,
                 m2d_error_t *err);

/* Parses "snappy", "zstd", "gzip", "lz4_raw", "none"/"uncompressed". */
bool pq_codec_parse(const char *name, pq_codec_t *codec);
const char *pq_codec_name(pq_codec_t codec);

#endif
