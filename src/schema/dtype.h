/* Delta column types as a tree, learned from BSON documents (infer.c) and written into the
 * table's schemaString. Each node also remembers which BSON type its values came from, so
 * `publish` can give ObjectId, UUID, Decimal128 and BSON timestamps back as themselves; that
 * origin is stored in the field's metadata ("mongo2delta.bsonType"). */
#ifndef M2D_SCHEMA_DTYPE_H
#define M2D_SCHEMA_DTYPE_H

#include "core/buf.h"
#include "core/error.h"

#include <stdbool.h>
#include <stdint.h>

typedef enum {
  M2D_T_NULL = 0, /* only nulls seen so far; written as string */
  M2D_T_BOOLEAN,
  M2D_T_INTEGER,
  M2D_T_LONG,
  M2D_T_DOUBLE,
  M2D_T_DECIMAL,
  M2D_T_STRING,
  M2D_T_BINARY,
  M2D_T_TIMESTAMP,
  M2D_T_STRUCT,
  M2D_T_ARRAY,
  M2D_T_MAP /* map<string, value> */
} m2d_kind_t;

/* Where a column's values came from in BSON, when the Delta type alone does not say. */
typedef enum {
  M2D_ORIG_NONE = 0,
  M2D_ORIG_OBJECTID,   /* string of 24 hex digits */
  M2D_ORIG_UUID,       /* string, canonical UUID (binary subtype 4) */
  M2D_ORIG_UUID_LEGACY, /* string, canonical UUID of the bytes as stored (binary subtype 3) */
  M2D_ORIG_DECIMAL128, /* decimal(p,s) or, when a value does not fit, exact string */
  M2D_ORIG_BSON_TIMESTAMP, /* struct<t: long, i: long> */
  M2D_ORIG_EXTJSON,    /* regex, code, symbol, dbPointer, minKey, maxKey, undefined: string */
  M2D_ORIG_DATE,       /* timestamp from a BSON date */
  M2D_ORIG_UNFIT       /* a value no Delta column can hold (a date outside years 1-9999):
                          never establishes a column, always rescued */
} m2d_orig_t;

typedef struct m2d_dtype m2d_dtype_t;

typedef struct {
  char *name;
  m2d_dtype_t *type;
} m2d_field_t;

struct m2d_dtype {
  m2d_kind_t kind;
  m2d_orig_t orig;
  int precision, scale; /* DECIMAL */
  /* STRUCT */
  m2d_field_t *fields;
  int nfields, fields_cap;
  /* ARRAY element, MAP value */
  m2d_dtype_t *elem;
};

m2d_dtype_t *m2d_dtype_new(m2d_kind_t kind);
void m2d_dtype_free(m2d_dtype_t *t); /* recursive; accepts NULL */
m2d_dtype_t *m2d_dtype_clone(const m2d_dtype_t *t);

/* Finds a struct field by exact name; NULL when absent. */
m2d_field_t *m2d_dtype_field(const m2d_dtype_t *st, const char *name);
/* Finds a struct field by name ignoring ASCII case; NULL when absent. */
m2d_field_t *m2d_dtype_field_ci(const m2d_dtype_t *st, const char *name);
/* Appends a field (name copied, type owned by the struct). */
bool m2d_dtype_add_field(m2d_dtype_t *st, const char *name, m2d_dtype_t *type, m2d_error_t *err);

/* Removes the fields that a table cannot have: fields that would hold no column (documents
 * only ever seen empty ({}), arrays and maps of them: Parquet has no empty group and readers
 * reject struct<>) and fields whose name equals an earlier field's ignoring case (Spark
 * resolves names case-insensitively and refuses such a schema). Their values are kept in the
 * rescue column instead (the shredder rescues fields the schema lacks). */
void m2d_dtype_strip_empty(m2d_dtype_t *root);

/* The Delta type name of a primitive ("long", "decimal(20,4)"), or NULL for nested types. */
const char *m2d_dtype_primitive_name(const m2d_dtype_t *t, char *buf, size_t bufsz);
const char *m2d_orig_name(m2d_orig_t o);

/* Appends the Delta schemaString JSON of a top-level struct (PROTOCOL.md "Schema
 * Serialization Format"); every field nullable; NULL-kind columns become string. */
bool m2d_dtype_to_schema_json(const m2d_dtype_t *root, m2d_buf_t *out, m2d_error_t *err);

/* Parses a Delta schemaString (as written by m2d_dtype_to_schema_json, or by Spark) back into
 * a type tree; "mongo2delta.bsonType" field metadata restores origins. Types outside our
 * mapping (byte, short, float, date, timestamp_ntz) are refused with a clear error naming
 * the field. Caller frees the result. */
m2d_dtype_t *m2d_dtype_from_schema_json(const char *json, m2d_error_t *err);

#endif
