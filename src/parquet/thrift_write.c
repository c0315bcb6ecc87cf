#include "parquet/thrift_write.h"

#include <string.h>

void tw_init(tw_t *w, m2d_buf_t *out, m2d_error_t *err) {
  memset(w, 0, sizeof *w);
  w->out = out;
  w->err = err;
}

static void put(tw_t *w, const void *p, size_t n) {
  if (!w->failed && !m2d_buf_append(w->out, p, n, w->err)) w->failed = true;
}

static void put_byte(tw_t *w, uint8_t b) {
  if (!w->failed && !m2d_buf_append_byte(w->out, b, w->err)) w->failed = true;
}

void tw_varint(tw_t *w, uint64_t v) {
  if (!w->failed && !m2d_buf_append_varint(w->out, v, w->err)) w->failed = true;
}

static uint64_t zigzag(int64_t v) { return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63); }

static void field_header(tw_t *w, int16_t id, uint8_t type) {
  int delta = id - w->last[w->depth];
  if (delta > 0 && delta <= 15) {
    put_byte(w, (uint8_t)(delta << 4 | type));
  } else {
    put_byte(w, type);
    tw_varint(w, zigzag(id));
  }
  w->last[w->depth] = id;
}

void tw_field_i32(tw_t *w, int16_t id, int32_t v) {
  field_header(w, id, TC_I32);
  tw_varint(w, zigzag(v));
}

void tw_field_i64(tw_t *w, int16_t id, int64_t v) {
  field_header(w, id, TC_I64);
  tw_varint(w, zigzag(v));
}

void tw_field_byte(tw_t *w, int16_t id, int8_t v) {
  field_header(w, id, TC_BYTE);
  put_byte(w, (uint8_t)v); /* a byte is written raw, not as a varint */
}

void tw_field_i16(tw_t *w, int16_t id, int16_t v) {
  field_header(w, id, TC_I16);
  tw_varint(w, zigzag(v));
}

void tw_field_bool(tw_t *w, int16_t id, bool v) { field_header(w, id, v ? TC_BOOL_TRUE : TC_BOOL_FALSE); }

void tw_binary(tw_t *w, const void *p, size_t len) {
  tw_varint(w, len);
  put(w, p, len);
}

void tw_field_binary(tw_t *w, int16_t id, const void *p, size_t len) {
  field_header(w, id, TC_BINARY);
  tw_binary(w, p, len);
}

void tw_field_string(tw_t *w, int16_t id, const char *s) { tw_field_binary(w, id, s, strlen(s)); }

static void enter(tw_t *w) {
  if (w->depth + 1 >= TW_MAX_DEPTH) {
    w->failed = true;
    m2d_error_set(w->err, M2D_ERR_INTERNAL, 0, "thrift structures nested too deeply");
    return;
  }
  w->last[++w->depth] = 0;
}

void tw_field_struct_begin(tw_t *w, int16_t id) {
  field_header(w, id, TC_STRUCT);
  enter(w);
}

void tw_struct_begin(tw_t *w) { enter(w); }

void tw_struct_end(tw_t *w) {
  put_byte(w, 0);
  if (w->depth > 0) w->depth--;
}

void tw_field_list(tw_t *w, int16_t id, uint8_t etype, uint32_t n) {
  field_header(w, id, TC_LIST);
  if (n < 15) {
    put_byte(w, (uint8_t)(n << 4 | etype));
  } else {
    put_byte(w, (uint8_t)(0xF0 | etype));
    tw_varint(w, n);
  }
}

void tw_i32(tw_t *w, int32_t v) { tw_varint(w, zigzag(v)); }

void tw_stop(tw_t *w) { put_byte(w, 0); }
