/* Delta CHECK constraints (PROTOCOL.md "CHECK Constraints": configuration
 * delta.constraints.<name> holds a Spark SQL boolean expression every row must satisfy). This
 * evaluates a small subset of Spark SQL, the one constraints commonly use, against a BSON
 * document before it is written:
 *   comparisons (= == <> != < <= > >=) of columns (a.b for nested fields, `quoted` names) and
 *   literals (numbers, 'strings' or "strings", TRUE, FALSE, NULL); IS [NOT] NULL; [NOT] IN
 *   (literal, ...); AND, OR, NOT, parentheses; a boolean column on its own.
 * Anything else (functions, arithmetic, LIKE, BETWEEN, casts ...) is refused by the parser, so a
 * constraint is never skipped: a table with one cannot be written. As Delta does, a row passes
 * only when the expression is true (null, e.g. a missing column compared, is a violation).
 * Values of kinds the subset does not compare (dates, ObjectIds, a string with a number ...)
 * make the comparison null. */
#ifndef M2D_DELTA_CONSTRAINTS_H
#define M2D_DELTA_CONSTRAINTS_H

#include "core/error.h"

#include <bson/bson.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct delta_constraint delta_constraint_t;

/* Parses the expression; NULL with M2D_ERR_FORMAT saying what is not supported (and where). */
delta_constraint_t *delta_constraint_parse(const char *sql, m2d_error_t *err);
void delta_constraint_free(delta_constraint_t *c); /* accepts NULL */

/* Whether doc satisfies the constraint (the expression is true for it). */
bool delta_constraint_holds(const delta_constraint_t *c, const bson_t *doc);

/* The values in doc of the columns the expression names, for messages: "a.b = 3, c = NULL". */
void delta_constraint_describe(const delta_constraint_t *c, const bson_t *doc, char *out, size_t n);

#endif
