/* Page decompression for the reader: snappy, gzip/zlib, zstd, lz4_raw, the Hadoop LZ4
 * framing (codec LZ4, with a fall back to raw LZ4 as other readers do), brotli. The output
 * is exactly the page's uncompressed size, never more. */
#ifndef M2D_PARQUET_DECOMPRESS_H
#define M2D_PARQUET_DECOMPRESS_H

#include "core/buf.h"
#include "parquet/format.h"

/* Decompresses in (n bytes) into out (reset first), which must end up exactly size bytes. */
bool pq_decompress(pq_codec_t codec, const uint8_t *in, size_t n, size_t size, m2d_buf_t *out, m2d_error_t *err);

#endif
