/* Appending BSON values exactly. */
#ifndef M2D_SCHEMA_BSON_VALUE_H
#define M2D_SCHEMA_BSON_VALUE_H

#include <bson/bson.h>

/* bson_append_iter, except for JavaScript code: libbson (1.23) appends code through
 * bson_append_code, which stops at an embedded NUL (the BSON corpus has "ab\0bab\0babab"), so
 * code and code with scope are copied byte for byte. */
bool m2d_bson_append_value(bson_t *dst, const char *key, const bson_iter_t *it);

#endif
