/* delta/constraints: the Spark SQL subset CHECK constraints are evaluated in, on documents. */
#include "delta/constraints.h"
#include "test.h"

#include <stdio.h>

/* Whether the JSON document satisfies the expression: 1 yes, 0 no, -1 not parsed. */
static int holds(const char *sql, const char *json) {
  m2d_error_t err = {0};
  delta_constraint_t *c = delta_constraint_parse(sql, &err);
  if (!c) return -1;
  bson_error_t be;
  bson_t *doc = bson_new_from_json((const uint8_t *)json, -1, &be);
  int r = doc ? delta_constraint_holds(c, doc) : -2;
  bson_destroy(doc);
  delta_constraint_free(c);
  return r;
}

TEST(constraint_comparisons) {
  CHECK(holds("x > 0", "{\"x\": 1}") == 1);
  CHECK(holds("x > 0", "{\"x\": 0}") == 0);
  CHECK(holds("x >= 0", "{\"x\": 0}") == 1);
  CHECK(holds("x < 10", "{\"x\": 10}") == 0);
  CHECK(holds("x <= 10", "{\"x\": 10}") == 1);
  CHECK(holds("x = 3", "{\"x\": 3.0}") == 1);
  CHECK(holds("x == 3", "{\"x\": {\"$numberLong\": \"3\"}}") == 1);
  CHECK(holds("x <> 3", "{\"x\": 3}") == 0);
  CHECK(holds("x != 3", "{\"x\": 4}") == 1);
  CHECK(holds("x > -2.5", "{\"x\": -2}") == 1);
  CHECK(holds("x > -2.5", "{\"x\": -3}") == 0);
  CHECK(holds("x > 1e3", "{\"x\": 1001}") == 1);
  CHECK(holds("0 < x", "{\"x\": 1}") == 1); /* literal first */
  CHECK(holds("0 < x", "{\"x\": -1}") == 0);
  CHECK(holds("x < y", "{\"x\": 1, \"y\": 2}") == 1); /* two columns */
  CHECK(holds("x > 9007199254740992", "{\"x\": {\"$numberLong\": \"9007199254740993\"}}") == 1); /* exact */
  CHECK(holds("x > 0", "{\"x\": {\"$numberDecimal\": \"0.5\"}}") == 1);
}

TEST(constraint_strings_booleans) {
  CHECK(holds("s = 'a''b'", "{\"s\": \"a'b\"}") == 1);
  CHECK(holds("s = \"x\"", "{\"s\": \"x\"}") == 1);
  CHECK(holds("s = 'it\\'s'", "{\"s\": \"it's\"}") == 1);
  CHECK(holds("s < 'b'", "{\"s\": \"abc\"}") == 1);
  CHECK(holds("s < 'b'", "{\"s\": \"b\"}") == 0);
  CHECK(holds("s >= 'b'", "{\"s\": \"ba\"}") == 1);
  CHECK(holds("ok = true", "{\"ok\": true}") == 1);
  CHECK(holds("ok", "{\"ok\": false}") == 0);
  CHECK(holds("ok", "{\"ok\": true}") == 1);
  CHECK(holds("NOT ok", "{\"ok\": false}") == 1);
  CHECK(holds("TRUE", "{}") == 1);
}

TEST(constraint_nulls) {
  /* Delta: a row passes only when the expression is true; null fails it */
  CHECK(holds("x > 0", "{}") == 0);
  CHECK(holds("x > 0", "{\"x\": null}") == 0);
  CHECK(holds("x IS NULL OR x > 0", "{}") == 1);
  CHECK(holds("x IS NULL OR x > 0", "{\"x\": -1}") == 0);
  CHECK(holds("x is not null", "{\"x\": 0}") == 1);
  CHECK(holds("x IS NOT NULL", "{\"x\": null}") == 0);
  CHECK(holds("NOT (x > 0)", "{}") == 0);         /* NOT null is null */
  CHECK(holds("x > 0 OR y > 0", "{\"y\": 1}") == 1); /* null OR true */
  CHECK(holds("x > 0 AND y > 0", "{\"y\": 1}") == 0);
  CHECK(holds("x = 'a'", "{\"x\": 1}") == 0);  /* different kinds: null */
  CHECK(holds("x = 1", "{\"x\": {\"$oid\": \"5f1d7a1b2c3d4e5f60718293\"}}") == 0);
}

TEST(constraint_logic_nested_in) {
  CHECK(holds("a.b > 1 AND a.c = 'x'", "{\"a\": {\"b\": 2, \"c\": \"x\"}}") == 1);
  CHECK(holds("a.b > 1 AND a.c = 'x'", "{\"a\": {\"b\": 2, \"c\": \"y\"}}") == 0);
  CHECK(holds("`a`.`we ird` = 1", "{\"a\": {\"we ird\": 1}}") == 1);
  CHECK(holds("a.b > 1", "{\"a\": 5}") == 0); /* not a document: null */
  CHECK(holds("X > 1", "{\"x\": 5}") == 1);   /* names resolve regardless of case */
  CHECK(holds("(x > 0 AND x < 10) OR x = 100", "{\"x\": 100}") == 1);
  CHECK(holds("(x > 0 AND x < 10) OR x = 100", "{\"x\": 50}") == 0);
  CHECK(holds("x > 0 AND x < 10 OR x = 100", "{\"x\": 5}") == 1); /* AND binds tighter */
  CHECK(holds("x = 1 OR x = 2 AND y = 1", "{\"x\": 1, \"y\": 0}") == 1);
  CHECK(holds("NOT x = 1", "{\"x\": 2}") == 1);
  CHECK(holds("s IN ('a', 'b')", "{\"s\": \"b\"}") == 1);
  CHECK(holds("s IN ('a', 'b')", "{\"s\": \"c\"}") == 0);
  CHECK(holds("s NOT IN ('a', 'b')", "{\"s\": \"c\"}") == 1);
  CHECK(holds("s NOT IN ('a', 'b')", "{\"s\": \"a\"}") == 0);
  CHECK(holds("s NOT IN ('a', 'b')", "{}") == 0);
  CHECK(holds("x in (1, 2.5, -3)", "{\"x\": -3}") == 1);
  CHECK(holds("x IN (1, NULL)", "{\"x\": 2}") == 0); /* null, not false... and not true */
  CHECK(holds("x NOT IN (1, NULL)", "{\"x\": 2}") == 0);
  CHECK(holds("x IN (1, NULL)", "{\"x\": 1}") == 1);
}

TEST(constraint_refuses_outside_subset) {
  static const char *const bad[] = {"length(s) > 0", "x + 1 > 2", "x - 1 > 2", "s LIKE 'a%'", "x BETWEEN 1 AND 2",
                                    "x > 1L",        "x IN (y)",  "x IS TRUE", "CAST(x AS INT) > 0", "x <=> 1",
                                    "",              "x >",       "(x > 1",    "x > 1)", "x = 'abc", "x IN (1,",
                                    "a.b.(c) = 1", "x > 1 x", "!x"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    m2d_error_t err = {0};
    delta_constraint_t *c = delta_constraint_parse(bad[i], &err);
    if (c) fprintf(stderr, "    parsed: %s\n", bad[i]);
    CHECK(c == NULL);
    CHECK(err.domain == M2D_ERR_FORMAT);
    CHECK(strstr(err.message, "expression") != NULL);
  }
  char deep[400];
  memset(deep, '(', 200);
  strcpy(deep + 200, "x > 1");
  m2d_error_t err = {0};
  CHECK(delta_constraint_parse(deep, &err) == NULL);
}

TEST(constraint_describe_values) {
  m2d_error_t err = {0};
  delta_constraint_t *c = delta_constraint_parse("a.b > 1 AND s <> 'x' AND a.b < 9 AND z IS NULL", &err);
  CHECK(c != NULL);
  bson_error_t be;
  bson_t *doc = bson_new_from_json((const uint8_t *)"{\"a\": {\"b\": 0}, \"s\": \"q\"}", -1, &be);
  char out[256];
  delta_constraint_describe(c, doc, out, sizeof out);
  bool ok = strcmp(out, "a.b = 0, s = 'q', z = NULL") == 0;
  if (!ok) fprintf(stderr, "    describe: %s\n", out);
  bson_destroy(doc);
  delta_constraint_free(c);
  CHECK(ok);
}
