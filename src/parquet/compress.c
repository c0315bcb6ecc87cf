#include "parquet/compress.h"

#include <lz4.h>
#include <snappy-c.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

bool pq_codec_parse(const char *name, pq_codec_t *codec) {
  static const struct {
    const char *name;
    pq_codec_t codec;
  } names[] = {{"snappy", PQ_CODEC_SNAPPY}, {"zstd", PQ_CODEC_ZSTD},           {"gzip", PQ_CODEC_GZIP},
               {"lz4_raw", PQ_CODEC_LZ4_RAW}, {"none", PQ_CODEC_UNCOMPRESSED}, {"uncompressed", PQ_CODEC_UNCOMPRESSED}};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (strcmp(names[i].name, name) == 0) return *codec = names[i].codec, true;
  return false;
}

const char *pq_codec_name(pq_codec_t codec) {
  switch (codec) {
  case PQ_CODEC_UNCOMPRESSED: return "none";
  case PQ_CODEC_SNAPPY: return "snappy";
  case PQ_CODEC_GZIP: return "gzip";
  case PQ_CODEC_LZO: return "lzo";
  case PQ_CODEC_BROTLI: return "brotli";
  case PQ_CODEC_LZ4: return "lz4";
  case PQ_CODEC_ZSTD: return "zstd";
  case PQ_CODEC_LZ4_RAW: return "lz4_raw";
  }
  return "unknown";
}

void pq_compressor_free(pq_compressor_t *cx) {
  if (!cx) return;
  ZSTD_freeCCtx(cx->zstd);
  cx->zstd = NULL;
}

bool pq_compress(pq_compressor_t *cx, pq_codec_t codec, int level, const uint8_t *in, size_t n, m2d_buf_t *out,
                 m2d_error_t *err) {
  switch (codec) {
  case PQ_CODEC_UNCOMPRESSED: return m2d_buf_append(out, in, n, err);
  case PQ_CODEC_SNAPPY: {
    size_t cap = snappy_max_compressed_length(n);
    if (!m2d_buf_reserve(out, cap, err)) return false;
    size_t len = cap;
    if (snappy_compress((const char *)in, n, (char *)out->data + out->len, &len) != SNAPPY_OK)
      return m2d_error_set(err, M2D_ERR_INTERNAL, 0, "snappy compression failed");
    out->len += len;
    return true;
  }
  case PQ_CODEC_ZSTD: {
    size_t cap = ZSTD_compressBound(n);
    if (!m2d_buf_reserve(out, cap, err)) return false;
    size_t len;
    if (cx) {
      if (!cx->zstd && !(cx->zstd = ZSTD_createCCtx())) return m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory");
      len = ZSTD_compressCCtx(cx->zstd, out->data + out->len, cap, in, n, level ? level : 3);
    } else {
      len = ZSTD_compress(out->data + out->len, cap, in, n, level ? level : 3);
    }
    if (ZSTD_isError(len)) return m2d_error_set(err, M2D_ERR_INTERNAL, 0, "zstd: %s", ZSTD_getErrorName(len));
    out->len += len;
    return true;
  }
  case PQ_CODEC_LZ4_RAW: {
    if (n > LZ4_MAX_INPUT_SIZE) return m2d_error_set(err, M2D_ERR_LIMIT, 0, "page too large for lz4");
    int cap = LZ4_compressBound((int)n);
    if (!m2d_buf_reserve(out, (size_t)cap, err)) return false;
    int len = LZ4_compress_default((const char *)in, (char *)out->data + out->len, (int)n, cap);
    if (len <= 0) return m2d_error_set(err, M2D_ERR_INTERNAL, 0, "lz4 compression failed");
    out->len += (size_t)len;
    return true;
  }
  case PQ_CODEC_GZIP: {
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (deflateInit2(&zs, level ? level : 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
      return m2d_error_set(err, M2D_ERR_INTERNAL, 0, "gzip: cannot start the compressor");
    size_t cap = deflateBound(&zs, n) + 32;
    if (!m2d_buf_reserve(out, cap, err)) {
      deflateEnd(&zs);
      return false;
    }
    zs.next_in = (Bytef *)in;
    zs.avail_in = (uInt)n;
    zs.next_out = out->data + out->len;
    zs.avail_out = (uInt)cap;
    int rc = deflate(&zs, Z_FINISH);
    size_t len = cap - zs.avail_out;
    deflateEnd(&zs);
    if (rc != Z_STREAM_END) return m2d_error_set(err, M2D_ERR_INTERNAL, 0, "gzip compression failed (%d)", rc);
    out->len += len;
    return true;
  }
  default:
    return m2d_error_set(err, M2D_ERR_USAGE, 0, "writing with codec %s is not supported; use snappy, zstd, gzip, lz4_raw or none",
                         pq_codec_name(codec));
  }
}
