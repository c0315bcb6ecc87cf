/* A strict subset of TOML, for configuration files: [table] and [[array.of.tables]] headers
 * (dotted, bare or "quoted" keys), key = value lines with bare or quoted keys, and values that
 * are basic "strings" (with \" \\ \b \f \n \r \t \uXXXX \UXXXXXXXX escapes), 'literal strings',
 * integers (decimal, _ between digits), true/false and arrays of those (over several lines,
 * trailing comma allowed); # comments. Anything else (floats, dates, inline tables, multi-line
 * strings, dotted keys in assignments) is refused with an error that says so, rather than read
 * in some other way. Duplicate keys and tables defined twice are errors. Every error reads
 * "NAME:LINE: what". */
#ifndef M2D_CORE_TOML_H
#define M2D_CORE_TOML_H

#include "core/error.h"

#include <stdbool.h>
#include <stdint.h>

typedef enum { M2D_TOML_STRING, M2D_TOML_INT, M2D_TOML_BOOL, M2D_TOML_ARRAY, M2D_TOML_TABLE } m2d_toml_type_t;

typedef struct m2d_toml m2d_toml_t;
struct m2d_toml {
  m2d_toml_type_t type;
  int line;        /* where the value, or the table's header, is (1-based; 0: the root) */
  char *key;       /* its key in its table; NULL for array elements and the root */
  char *str;       /* STRING */
  int64_t i;       /* INT */
  bool b;          /* BOOL */
  bool array_of_tables; /* an ARRAY made by [[...]] headers */
  bool defined;    /* a TABLE given by a [header] (not only implied by a longer one) */
  m2d_toml_t **items; /* ARRAY elements, TABLE members in file order */
  int n, cap;
};

/* Parses text (name is used in error messages). Returns the root table, or NULL with err
 * (M2D_ERR_USAGE) set to "name:LINE: ...". */
m2d_toml_t *m2d_toml_parse(const char *text, const char *name, m2d_error_t *err);
/* Reads and parses a file; a file that cannot be read is an M2D_ERR_USAGE error too. */
m2d_toml_t *m2d_toml_parse_file(const char *path, m2d_error_t *err);

/* The member key of a table, or NULL (also when t is NULL or not a table). */
const m2d_toml_t *m2d_toml_get(const m2d_toml_t *t, const char *key);
/* "string", "integer", "boolean", "array", "table". */
const char *m2d_toml_type_name(m2d_toml_type_t type);
void m2d_toml_free(m2d_toml_t *t);

#endif
