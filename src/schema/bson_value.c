#include "schema/bson_value.h"

#include <string.h>

static void put_le32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

bool m2d_bson_append_value(bson_t *dst, const char *key, const bson_iter_t *it) {
  bson_type_t t = bson_iter_type(it);
  if (t != BSON_TYPE_CODE && t != BSON_TYPE_CODEWSCOPE) return bson_append_iter(dst, key, -1, it);
  uint32_t len = 0, scope_len = 0;
  const uint8_t *scope = NULL;
  const char *code =
      t == BSON_TYPE_CODE ? bson_iter_code(it, &len) : bson_iter_codewscope(it, &len, &scope_len, &scope);
  size_t klen = strlen(key);
  size_t vlen = (t == BSON_TYPE_CODEWSCOPE ? 4 : 0) + 4 + (size_t)len + 1 + scope_len;
  size_t n = 4 + 1 + klen + 1 + vlen + 1;
  if (!code || n > INT32_MAX) return false;
  uint8_t *buf = bson_malloc(n), *p = buf;
  put_le32(p, (uint32_t)n), p += 4;
  *p++ = (uint8_t)t;
  memcpy(p, key, klen + 1), p += klen + 1;
  if (t == BSON_TYPE_CODEWSCOPE) put_le32(p, (uint32_t)vlen), p += 4;
  put_le32(p, len + 1), p += 4;
  memcpy(p, code, len), p += len;
  *p++ = 0;
  if (scope_len) memcpy(p, scope, scope_len), p += scope_len;
  *p = 0;
  bson_t tmp;
  bool ok = bson_init_static(&tmp, buf, n) && bson_concat(dst, &tmp);
  bson_free(buf);
  return ok;
}
