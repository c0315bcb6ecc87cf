/* Thrift compact protocol, the encoding side (what parquet.thrift structures are written
 * with). Struct nesting keeps the last field id per level for the field-id deltas. */
#ifndef M2D_PARQUET_THRIFT_WRITE_H
#define M2D_PARQUET_THRIFT_WRITE_H

#include "core/buf.h"

#include <stdint.h>

enum {
  TC_BOOL_TRUE = 1, TC_BOOL_FALSE = 2, TC_BYTE = 3, TC_I16 = 4, TC_I32 = 5, TC_I64 = 6,
  TC_DOUBLE = 7, TC_BINARY = 8, TC_LIST = 9, TC_SET = 10, TC_MAP = 11, TC_STRUCT = 12
};

#define TW_MAX_DEPTH 32

typedef struct {
  m2d_buf_t *out;
  int16_t last[TW_MAX_DEPTH];
  int depth;
  bool failed; /* a write failed (buffer cap); err holds why */
  m2d_error_t *err;
} tw_t;

void tw_init(tw_t *w, m2d_buf_t *out, m2d_error_t *err);

void tw_field_i32(tw_t *w, int16_t id, int32_t v);
void tw_field_i64(tw_t *w, int16_t id, int64_t v);
void tw_field_bool(tw_t *w, int16_t id, bool v);
void tw_field_byte(tw_t *w, int16_t id, int8_t v);
void tw_field_i16(tw_t *w, int16_t id, int16_t v);
void tw_field_binary(tw_t *w, int16_t id, const void *p, size_t len);
void tw_field_string(tw_t *w, int16_t id, const char *s);
/* A struct field: begin, the fields, end. */
void tw_field_struct_begin(tw_t *w, int16_t id);
void tw_struct_end(tw_t *w); /* writes the stop byte and leaves the struct */
/* A list field header for n elements of element type etype; then write the elements:
 * structs with tw_struct_begin/tw_struct_end, scalars with tw_i32/tw_binary. */
void tw_field_list(tw_t *w, int16_t id, uint8_t etype, uint32_t n);
void tw_struct_begin(tw_t *w); /* a struct as a list element */
void tw_i32(tw_t *w, int32_t v);
void tw_binary(tw_t *w, const void *p, size_t len);
/* The stop byte of the top-level struct. */
void tw_stop(tw_t *w);

/* Low level, also used by the page encoders. */
void tw_varint(tw_t *w, uint64_t v);

#endif
