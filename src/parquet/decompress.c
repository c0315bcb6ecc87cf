#include "parquet/decompress.h"

#include "parquet/compress.h"

#include <brotli/decode.h>
#include <lz4.h>
#include <snappy-c.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

static bool wrong_size(m2d_error_t *err, const char *codec, size_t got, size_t want) {
  return m2d_error_set(err, M2D_ERR_FORMAT, 0, "corrupt %s page: %zu bytes after decompression, the header says %zu",
                       codec, got, want);
}

static bool hadoop_lz4(const uint8_t *in, size_t n, size_t size, uint8_t *dst, size_t *got) {
  /* blocks of: 4-byte BE uncompressed length, 4-byte BE compressed length, lz4 data */
  size_t o = 0;
  while (n >= 8) {
    uint32_t ulen = (uint32_t)in[0] << 24 | (uint32_t)in[1] << 16 | (uint32_t)in[2] << 8 | in[3];
    uint32_t clen = (uint32_t)in[4] << 24 | (uint32_t)in[5] << 16 | (uint32_t)in[6] << 8 | in[7];
    in += 8;
    n -= 8;
    if (clen > n || ulen > size - o || clen > INT32_MAX || ulen > INT32_MAX) return false;
    int r = LZ4_decompress_safe((const char *)in, (char *)dst + o, (int)clen, (int)ulen);
    if (r < 0 || (uint32_t)r != ulen) return false;
    o += ulen;
    in += clen;
    n -= clen;
  }
  *got = o;
  return n == 0;
}

bool pq_decompress(pq_codec_t codec, const uint8_t *in, size_t n, size_t size, m2d_buf_t *out, m2d_error_t *err) {
  m2d_buf_reset(out);
  if (!m2d_buf_reserve(out, size, err)) return false;
  uint8_t *dst = out->data;
  switch (codec) {
  case PQ_CODEC_UNCOMPRESSED:
    if (n != size) return wrong_size(err, "uncompressed", n, size);
    memcpy(dst, in, n);
    break;
  case PQ_CODEC_SNAPPY: {
    size_t len;
    if (snappy_uncompressed_length((const char *)in, n, &len) != SNAPPY_OK || len != size)
      return m2d_error_set(err, M2D_ERR_FORMAT, 0, "corrupt snappy page (its length does not match the header)");
    if (snappy_uncompress((const char *)in, n, (char *)dst, &len) != SNAPPY_OK)
      return m2d_error_set(err, M2D_ERR_FORMAT, 0, "corrupt snappy page");
    break;
  }
  case PQ_CODEC_GZIP: {
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (inflateInit2(&zs, 15 + 32) != Z_OK) return m2d_error_set(err, M2D_ERR_INTERNAL, 0, "zlib init failed");
    zs.next_in = (Bytef *)in;
    zs.avail_in = (uInt)n;
    zs.next_out = dst;
    zs.avail_out = (uInt)size;
    int rc;
    /* a page may hold several concatenated gzip members */
    while ((rc = inflate(&zs, Z_FINISH)) == Z_STREAM_END && zs.avail_in > 0 && zs.avail_out > 0)
      if (inflateReset(&zs) != Z_OK) break;
    size_t got = size - zs.avail_out;
    inflateEnd(&zs);
    if (rc != Z_STREAM_END && !(rc == Z_BUF_ERROR && zs.avail_out == 0 && zs.avail_in == 0))
      return m2d_error_set(err, M2D_ERR_FORMAT, 0, "corrupt gzip page (zlib %d)", rc);
    if (got != size) return wrong_size(err, "gzip", got, size);
    break;
  }
  case PQ_CODEC_ZSTD: {
    size_t got = ZSTD_decompress(dst, size, in, n);
    if (ZSTD_isError(got)) return m2d_error_set(err, M2D_ERR_FORMAT, 0, "corrupt zstd page: %s", ZSTD_getErrorName(got));
    if (got != size) return wrong_size(err, "zstd", got, size);
    break;
  }
  case PQ_CODEC_LZ4_RAW: {
    if (n > INT32_MAX || size > INT32_MAX) return m2d_error_set(err, M2D_ERR_FORMAT, 0, "lz4 page too large");
    int got = LZ4_decompress_safe((const char *)in, (char *)dst, (int)n, (int)size);
    if (got < 0) return m2d_error_set(err, M2D_ERR_FORMAT, 0, "corrupt lz4_raw page");
    if ((size_t)got != size) return wrong_size(err, "lz4_raw", (size_t)got, size);
    break;
  }
  case PQ_CODEC_LZ4: {
    size_t got = 0;
    if (!hadoop_lz4(in, n, size, dst, &got) || got != size) {
      /* some writers put raw LZ4 blocks under this codec */
      if (n > INT32_MAX || size > INT32_MAX) return m2d_error_set(err, M2D_ERR_FORMAT, 0, "lz4 page too large");
      int r = LZ4_decompress_safe((const char *)in, (char *)dst, (int)n, (int)size);
      if (r < 0 || (size_t)r != size) return m2d_error_set(err, M2D_ERR_FORMAT, 0, "corrupt lz4 page");
    }
    break;
  }
  case PQ_CODEC_BROTLI: {
    size_t got = size;
    if (BrotliDecoderDecompress(n, in, &got, dst) != BROTLI_DECODER_RESULT_SUCCESS)
      return m2d_error_set(err, M2D_ERR_FORMAT, 0, "corrupt brotli page");
    if (got != size) return wrong_size(err, "brotli", got, size);
    break;
  }
  default:
    return m2d_error_set(err, M2D_ERR_FORMAT, 0, "unsupported compression codec %s (%d)", pq_codec_name(codec), (int)codec);
  }
  out->len = size;
  return true;
}
