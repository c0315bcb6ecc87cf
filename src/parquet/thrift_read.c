#include "parquet/thrift_read.h"

#include "parquet/thrift_write.h" /* the type codes */

#include "core/buf.h"

#include <stdio.h>
#include <string.h>

void tr_init(tr_t *r, const uint8_t *p, size_t n) {
  memset(r, 0, sizeof *r);
  r->p = p;
  r->end = p + n;
}

void tr_fail(tr_t *r, const char *what) {
  if (!r->failed) snprintf(r->what, sizeof r->what, "%s", what);
  r->failed = true;
  r->p = r->end;
}

static uint64_t varint(tr_t *r) {
  uint64_t v;
  int got = m2d_varint_read(&r->p, r->end, &v);
  if (got == 1) return v;
  tr_fail(r, got == 0 ? "truncated varint" : "varint longer than 10 bytes");
  return 0;
}

static int64_t unzigzag(uint64_t v) { return (int64_t)(v >> 1) ^ -(int64_t)(v & 1); }

int64_t tr_i64(tr_t *r) { return unzigzag(varint(r)); }

int32_t tr_i32(tr_t *r) {
  int64_t v = tr_i64(r);
  if (v < INT32_MIN || v > INT32_MAX) {
    tr_fail(r, "i32 out of range");
    return 0;
  }
  return (int32_t)v;
}

int8_t tr_byte(tr_t *r) {
  if (r->p >= r->end) {
    tr_fail(r, "truncated byte");
    return 0;
  }
  return (int8_t)*r->p++;
}

double tr_double(tr_t *r) {
  if (r->end - r->p < 8) {
    tr_fail(r, "truncated double");
    return 0;
  }
  double d;
  memcpy(&d, r->p, 8);
  r->p += 8;
  return d;
}

const uint8_t *tr_binary(tr_t *r, uint32_t *len) {
  uint64_t n = varint(r);
  if (r->failed || n > (uint64_t)(r->end - r->p)) {
    tr_fail(r, "binary length past the end of the metadata");
    *len = 0;
    return (const uint8_t *)"";
  }
  const uint8_t *p = r->p;
  r->p += n;
  *len = (uint32_t)n;
  return p;
}

bool tr_field(tr_t *r, int16_t *id, uint8_t *type) {
  if (r->failed) return false;
  if (r->p >= r->end) {
    tr_fail(r, "truncated struct (no stop byte)");
    return false;
  }
  uint8_t b = *r->p++;
  if (b == 0) return false; /* stop */
  *type = b & 0x0f;
  int delta = b >> 4;
  if (delta) {
    *id = (int16_t)(r->last[r->depth] + delta);
  } else {
    int64_t v = tr_i64(r);
    if (v < INT16_MIN || v > INT16_MAX) {
      tr_fail(r, "field id out of range");
      return false;
    }
    *id = (int16_t)v;
  }
  r->last[r->depth] = *id;
  if (*type == 0 || *type > TC_STRUCT) {
    tr_fail(r, "unknown field type");
    return false;
  }
  return true;
}

bool tr_list(tr_t *r, uint8_t *etype, uint32_t *n) {
  if (r->p >= r->end) {
    tr_fail(r, "truncated list header");
    return false;
  }
  uint8_t b = *r->p++;
  *etype = b & 0x0f;
  uint64_t count = b >> 4;
  if (count == 15) count = varint(r);
  /* every element takes at least one byte (bools too): a larger count is a lie */
  if (r->failed || count > (uint64_t)(r->end - r->p) || *etype == 0 || *etype > TC_STRUCT) {
    tr_fail(r, "list longer than the metadata that holds it");
    return false;
  }
  *n = (uint32_t)count;
  return true;
}

bool tr_struct_begin(tr_t *r) {
  if (r->depth + 1 >= TR_MAX_DEPTH) {
    tr_fail(r, "metadata nested too deeply");
    return false;
  }
  r->last[++r->depth] = 0;
  return !r->failed;
}

void tr_struct_end(tr_t *r) {
  if (r->depth > 0) r->depth--;
}

bool tr_bool_from_type(uint8_t type) { return type == TC_BOOL_TRUE; }

void tr_skip(tr_t *r, uint8_t type) {
  if (r->failed) return;
  switch (type) {
  case TC_BOOL_TRUE:
  case TC_BOOL_FALSE: return; /* the value is in the header */
  case TC_BYTE: tr_byte(r); return;
  case TC_I16:
  case TC_I32:
  case TC_I64: varint(r); return;
  case TC_DOUBLE: tr_double(r); return;
  case TC_BINARY: {
    uint32_t len;
    tr_binary(r, &len);
    return;
  }
  case TC_LIST:
  case TC_SET: {
    uint8_t et;
    uint32_t n;
    if (!tr_list(r, &et, &n) || !tr_struct_begin(r)) return; /* nesting counts like a struct's */
    for (uint32_t i = 0; i < n && !r->failed; i++) {
      if (et == TC_BOOL_TRUE || et == TC_BOOL_FALSE) tr_byte(r); /* list bools take a byte */
      else tr_skip(r, et);
    }
    tr_struct_end(r);
    return;
  }
  case TC_MAP: {
    uint64_t n = varint(r);
    if (n == 0) return;
    if (r->p >= r->end || n > (uint64_t)(r->end - r->p)) {
      tr_fail(r, "map longer than the metadata that holds it");
      return;
    }
    uint8_t kv = *r->p++;
    if (!tr_struct_begin(r)) return;
    for (uint64_t i = 0; i < n && !r->failed; i++) {
      tr_skip(r, kv >> 4);
      tr_skip(r, kv & 0x0f);
    }
    tr_struct_end(r);
    return;
  }
  case TC_STRUCT: {
    if (!tr_struct_begin(r)) return;
    int16_t id;
    uint8_t t;
    while (tr_field(r, &id, &t)) tr_skip(r, t);
    tr_struct_end(r);
    return;
  }
  default: tr_fail(r, "unknown type to skip");
  }
}
