/* Thrift compact protocol, the decoding side, over untrusted bytes: every length is checked
 * against what remains, nesting is bounded, unknown fields of any type are skipped. */
#ifndef M2D_PARQUET_THRIFT_READ_H
#define M2D_PARQUET_THRIFT_READ_H

#include "core/error.h"

#include <stdint.h>

#define TR_MAX_DEPTH 64

typedef struct {
  const uint8_t *p, *end;
  int16_t last[TR_MAX_DEPTH];
  int depth;
  bool failed;
  char what[160]; /* first failure */
} tr_t;

void tr_init(tr_t *r, const uint8_t *p, size_t n);

/* Reads the next field header of the current struct: false at the stop byte (or on failure).
 * *type is the compact type (bool fields: 1 true, 2 false). */
bool tr_field(tr_t *r, int16_t *id, uint8_t *type);
int64_t tr_i64(tr_t *r);    /* zigzag varint: i16, i32, i64 */
int32_t tr_i32(tr_t *r);    /* range-checked */
int8_t tr_byte(tr_t *r);
double tr_double(tr_t *r);
/* A binary/string: points into the input (not NUL-terminated). */
const uint8_t *tr_binary(tr_t *r, uint32_t *len);
/* List header: element type and count (count bounded by the bytes that remain). */
bool tr_list(tr_t *r, uint8_t *etype, uint32_t *n);
bool tr_struct_begin(tr_t *r);
void tr_struct_end(tr_t *r); /* after tr_field returned false for this struct */
/* Skips a value of the given type (after its header). */
void tr_skip(tr_t *r, uint8_t type);
/* A bool list element or a bool field value from its type. */
bool tr_bool_from_type(uint8_t type);

void tr_fail(tr_t *r, const char *what);

#endif
