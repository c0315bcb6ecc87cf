#include "delta/dv.h"

#include "core/buf.h"
#include "delta/actions.h"

#include <roaring/roaring.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define DV_MAGIC 1681511377u
#define MAX_DV ((size_t)256 << 20)

struct delta_dv {
  uint32_t nbuckets;
  uint32_t *keys;            /* high 32 bits of the row index */
  roaring_bitmap_t **bitmaps; /* low 32 bits */
};

static const char Z85[] = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";

void delta_z85_encode(const uint8_t *in, size_t len, char *out) {
  size_t o = 0;
  for (size_t i = 0; i + 4 <= len; i += 4) {
    uint32_t v = (uint32_t)in[i] << 24 | (uint32_t)in[i + 1] << 16 | (uint32_t)in[i + 2] << 8 | in[i + 3];
    for (int k = 4; k >= 0; k--) {
      out[o + (size_t)k] = Z85[v % 85];
      v /= 85;
    }
    o += 5;
  }
  out[o] = 0;
}

long delta_z85_decode(const char *in, size_t len, uint8_t *out, size_t cap) {
  static int8_t map[256];
  static bool ready;
  if (!ready) {
    memset(map, -1, sizeof map);
    for (int i = 0; i < 85; i++) map[(unsigned char)Z85[i]] = (int8_t)i;
    ready = true;
  }
  if (len % 5) return -1;
  size_t o = 0;
  for (size_t i = 0; i < len; i += 5) {
    uint64_t v = 0;
    for (int k = 0; k < 5; k++) {
      int d = map[(unsigned char)in[i + k]];
      if (d < 0) return -1;
      v = v * 85 + (uint64_t)d;
    }
    if (v > 0xffffffffu || o + 4 > cap) return -1;
    out[o++] = (uint8_t)(v >> 24);
    out[o++] = (uint8_t)(v >> 16);
    out[o++] = (uint8_t)(v >> 8);
    out[o++] = (uint8_t)v;
  }
  return (long)o;
}

static delta_dv_t *parse(const uint8_t *p, size_t n, const char *what, m2d_error_t *err) {
  uint32_t magic;
  uint64_t count;
  if (n < 12) goto bad;
  memcpy(&magic, p, 4); /* little-endian */
  if (magic != DV_MAGIC) goto bad;
  memcpy(&count, p + 4, 8);
  p += 12;
  n -= 12;
  if (count > n / 4 + 1) goto bad;
  delta_dv_t *dv = calloc(1, sizeof *dv);
  dv->keys = calloc((size_t)count + 1, sizeof *dv->keys);
  dv->bitmaps = calloc((size_t)count + 1, sizeof *dv->bitmaps);
  for (uint64_t i = 0; i < count; i++) {
    if (n < 4) {
      delta_dv_free(dv);
      goto bad;
    }
    memcpy(&dv->keys[i], p, 4);
    p += 4;
    n -= 4;
    size_t size = roaring_bitmap_portable_deserialize_size((const char *)p, n);
    roaring_bitmap_t *b = size ? roaring_bitmap_portable_deserialize_safe((const char *)p, n) : NULL;
    if (!b) {
      delta_dv_free(dv);
      goto bad;
    }
    dv->bitmaps[dv->nbuckets++] = b;
    p += size;
    n -= size;
  }
  return dv;
bad:
  m2d_error_set(err, M2D_ERR_FORMAT, 0, "%s: not a valid deletion vector (bad magic or bitmap)", what);
  return NULL;
}

bool delta_dv_descriptor_key(const json_t *d, char *out, size_t n) {
  const char *type = json_string_value(json_object_get(d, "storageType"));
  const char *pid = json_string_value(json_object_get(d, "pathOrInlineDv"));
  if (!type || !pid || strcmp(type, "u") != 0) return false;
  size_t len = strlen(pid);
  uint8_t uuid[20];
  if (len < 20 || delta_z85_decode(pid + len - 20, 20, uuid, sizeof uuid) != 16) return false;
  snprintf(out, n, "%.*s%sdeletion_vector_%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x.bin",
           (int)(len - 20), pid, len > 20 ? "/" : "", uuid[0], uuid[1], uuid[2], uuid[3], uuid[4], uuid[5], uuid[6],
           uuid[7], uuid[8], uuid[9], uuid[10], uuid[11], uuid[12], uuid[13], uuid[14], uuid[15]);
  return true;
}

delta_dv_t *delta_dv_load(m2d_store_t *store, const json_t *d, m2d_error_t *err) {
  const char *type = json_string_value(json_object_get(d, "storageType"));
  const char *pid = json_string_value(json_object_get(d, "pathOrInlineDv"));
  json_int_t offset = json_integer_value(json_object_get(d, "offset"));
  json_int_t size = json_integer_value(json_object_get(d, "sizeInBytes"));
  if (!type || !pid || size < 0 || (size_t)size > MAX_DV) {
    m2d_error_set(err, M2D_ERR_FORMAT, 0, "invalid deletionVector descriptor in the log");
    return NULL;
  }
  if (strcmp(type, "i") == 0) {
    size_t len = strlen(pid);
    uint8_t *buf = malloc(len + 8);
    long n = delta_z85_decode(pid, len, buf, len + 8);
    delta_dv_t *dv = n >= size ? parse(buf, (size_t)size, "inline deletion vector", err) : NULL;
    if (n < size) m2d_error_set(err, M2D_ERR_FORMAT, 0, "inline deletion vector is not valid base85");
    free(buf);
    return dv;
  }
  char key[2048];
  if (strcmp(type, "u") == 0) {
    if (!delta_dv_descriptor_key(d, key, sizeof key)) {
      m2d_error_set(err, M2D_ERR_FORMAT, 0, "deletion vector id '%s' is not a base85 UUID", pid);
      return NULL;
    }
  } else if (strcmp(type, "p") == 0) {
    m2d_error_set(err, M2D_ERR_FORMAT, 0, "deletion vectors at absolute paths ('p') are not supported yet: %s", pid);
    return NULL;
  } else {
    m2d_error_set(err, M2D_ERR_FORMAT, 0, "unknown deletion vector storage type '%s'", type);
    return NULL;
  }
  m2d_source_t *src = store->open(store, key, err);
  if (!src) return NULL;
  uint8_t len_be[4];
  uint8_t *data = NULL;
  delta_dv_t *dv = NULL;
  if (m2d_source_read_at(src, (uint64_t)offset, 4, len_be, err)) {
    uint32_t n = (uint32_t)len_be[0] << 24 | (uint32_t)len_be[1] << 16 | (uint32_t)len_be[2] << 8 | len_be[3];
    if (n != (uint32_t)size) {
      m2d_error_set(err, M2D_ERR_FORMAT, 0, "%s: deletion vector at offset %lld has %u bytes, the log says %lld", key,
                    (long long)offset, n, (long long)size);
    } else if ((data = malloc(n ? n : 1)) && m2d_source_read_at(src, (uint64_t)offset + 4, n, data, err)) {
      dv = parse(data, n, key, err);
    }
  }
  free(data);
  m2d_source_destroy(src);
  return dv;
}

bool delta_dv_contains(const delta_dv_t *dv, uint64_t row) {
  uint32_t hi = (uint32_t)(row >> 32);
  for (uint32_t i = 0; i < dv->nbuckets; i++)
    if (dv->keys[i] == hi) return roaring_bitmap_contains(dv->bitmaps[i], (uint32_t)row);
  return false;
}

uint64_t delta_dv_cardinality(const delta_dv_t *dv) {
  uint64_t n = 0;
  for (uint32_t i = 0; i < dv->nbuckets; i++) n += roaring_bitmap_get_cardinality(dv->bitmaps[i]);
  return n;
}

void delta_dv_free(delta_dv_t *dv) {
  if (!dv) return;
  for (uint32_t i = 0; i < dv->nbuckets; i++) roaring_bitmap_free(dv->bitmaps[i]);
  free(dv->keys);
  free(dv->bitmaps);
  free(dv);
}

/* --- writing --------------------------------------------------------------------------- */

delta_dv_t *delta_dv_new(void) { return calloc(1, sizeof(delta_dv_t)); }

/* The bucket for the high 32 bits hi, created in key order when missing. */
static roaring_bitmap_t *bucket(delta_dv_t *dv, uint32_t hi) {
  uint32_t i = 0;
  while (i < dv->nbuckets && dv->keys[i] < hi) i++;
  if (i < dv->nbuckets && dv->keys[i] == hi) return dv->bitmaps[i];
  uint32_t *k = realloc(dv->keys, (dv->nbuckets + 1) * sizeof *k);
  if (!k) return NULL;
  dv->keys = k;
  roaring_bitmap_t **b = realloc(dv->bitmaps, (dv->nbuckets + 1) * sizeof *b);
  if (!b) return NULL;
  dv->bitmaps = b;
  roaring_bitmap_t *nb = roaring_bitmap_create();
  if (!nb) return NULL;
  memmove(&k[i + 1], &k[i], (dv->nbuckets - i) * sizeof *k);
  memmove(&b[i + 1], &b[i], (dv->nbuckets - i) * sizeof *b);
  k[i] = hi;
  b[i] = nb;
  dv->nbuckets++;
  return nb;
}

bool delta_dv_add(delta_dv_t *dv, uint64_t row) {
  roaring_bitmap_t *b = bucket(dv, (uint32_t)(row >> 32));
  if (!b) return false;
  roaring_bitmap_add(b, (uint32_t)row);
  return true;
}

bool delta_dv_or(delta_dv_t *dst, const delta_dv_t *src) {
  for (uint32_t i = 0; i < src->nbuckets; i++) {
    roaring_bitmap_t *b = bucket(dst, src->keys[i]);
    if (!b) return false;
    roaring_bitmap_or_inplace(b, src->bitmaps[i]);
  }
  return true;
}

bool delta_dv_serialize(delta_dv_t *dv, m2d_buf_t *out, m2d_error_t *err) {
  uint32_t magic = DV_MAGIC;
  uint64_t count = dv->nbuckets;
  if (!m2d_buf_append(out, &magic, 4, err) || !m2d_buf_append(out, &count, 8, err)) return false; /* little-endian */
  for (uint32_t i = 0; i < dv->nbuckets; i++) {
    roaring_bitmap_run_optimize(dv->bitmaps[i]);
    size_t n = roaring_bitmap_portable_size_in_bytes(dv->bitmaps[i]);
    if (!m2d_buf_append(out, &dv->keys[i], 4, err) || !m2d_buf_reserve(out, n, err)) return false;
    roaring_bitmap_portable_serialize(dv->bitmaps[i], (char *)out->data + out->len);
    out->len += n;
  }
  return true;
}

struct delta_dv_file {
  m2d_buf_t data;
  char uuid[37];
  char key[96];
  char id[24]; /* z85 of the uuid's 16 bytes */
  int count;
};

delta_dv_file_t *delta_dv_file_new(void) {
  delta_dv_file_t *f = calloc(1, sizeof *f);
  if (!f) return NULL;
  m2d_buf_init(&f->data, (size_t)1 << 31);
  delta_uuid4(f->uuid);
  snprintf(f->key, sizeof f->key, "deletion_vector_%s.bin", f->uuid);
  uint8_t raw[16];
  for (int i = 0, j = 0; i < 16; i++, j += 2) {
    if (f->uuid[j] == '-') j++;
    unsigned v;
    sscanf(f->uuid + j, "%2x", &v);
    raw[i] = (uint8_t)v;
  }
  delta_z85_encode(raw, 16, f->id);
  return f;
}

static void put_be32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

json_t *delta_dv_file_put(delta_dv_file_t *f, delta_dv_t *dv, m2d_error_t *err) {
  if (f->data.len == 0 && !m2d_buf_append_byte(&f->data, 1, err)) return NULL; /* format version */
  size_t at = f->data.len;
  uint8_t be[4] = {0};
  if (!m2d_buf_append(&f->data, be, 4, err) || !delta_dv_serialize(dv, &f->data, err)) return NULL;
  size_t size = f->data.len - at - 4;
  put_be32(f->data.data + at, (uint32_t)size);
  put_be32(be, (uint32_t)crc32(0L, f->data.data + at + 4, (uInt)size));
  if (!m2d_buf_append(&f->data, be, 4, err)) return NULL;
  f->count++;
  return json_pack("{sssssIsIsI}", "storageType", "u", "pathOrInlineDv", f->id, "offset", (json_int_t)at, "sizeInBytes",
                   (json_int_t)size, "cardinality", (json_int_t)delta_dv_cardinality(dv));
}

bool delta_dv_file_finish(delta_dv_file_t *f, m2d_store_t *store, m2d_error_t *err) {
  if (f->count == 0) return true;
  m2d_sink_t *s = store->create(store, f->key, err);
  if (!s) return false;
  if (!m2d_sink_write(s, f->data.data, f->data.len, err)) {
    m2d_sink_abort(s);
    return false;
  }
  return m2d_sink_finish(s, err);
}

const char *delta_dv_file_key(const delta_dv_file_t *f) { return f->key; }

void delta_dv_file_free(delta_dv_file_t *f) {
  if (!f) return;
  m2d_buf_free(&f->data);
  free(f);
}
