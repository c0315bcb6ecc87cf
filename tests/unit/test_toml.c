/* core/toml: the config-file subset, and its errors with line numbers. */
#include "core/toml.h"
#include "test.h"

#include <stdio.h>
#include <string.h>

static m2d_toml_t *parse(const char *text, m2d_error_t *err) {
  memset(err, 0, sizeof *err);
  return m2d_toml_parse(text, "m2d.toml", err);
}

TEST(toml_reads_tables_arrays_of_tables_and_values) {
  m2d_error_t err;
  m2d_toml_t *t = parse("# a config\n"
                        "[source]\n"
                        "uri = \"mongodb://h:1/?a=1\"  # trailing comment\n"
                        "db = 'sh\\op'\n"
                        "\n"
                        "[[collection]]\n"
                        "name = \"orders\"\n"
                        "max-batch-docs = 1_000\n"
                        "change_data_feed = true\n"
                        "[[collection]]\n"
                        "name = \"caf\\u00e9 \\\"x\\\"\\t\"\n"
                        "level = -3\n"
                        "[all-collections]\n"
                        "include = [\n"
                        "  \"a*\",  # first\n"
                        "  \"b?\",\n"
                        "]\n"
                        "exclude = []\n"
                        "[a.b]\n"
                        "\"quoted key\" = false\n",
                        &err);
  CHECK(t);
  const m2d_toml_t *src = m2d_toml_get(t, "source");
  CHECK(src && src->type == M2D_TOML_TABLE && src->line == 2);
  CHECK_STR(m2d_toml_get(src, "uri")->str, "mongodb://h:1/?a=1");
  CHECK_STR(m2d_toml_get(src, "db")->str, "sh\\op"); /* a literal string keeps its backslash */
  CHECK(m2d_toml_get(src, "db")->line == 4);
  const m2d_toml_t *c = m2d_toml_get(t, "collection");
  CHECK(c && c->type == M2D_TOML_ARRAY && c->array_of_tables && c->n == 2);
  CHECK(m2d_toml_get(c->items[0], "max-batch-docs")->i == 1000);
  CHECK(m2d_toml_get(c->items[0], "change_data_feed")->b);
  CHECK_STR(m2d_toml_get(c->items[1], "name")->str, "caf\xc3\xa9 \"x\"\t");
  CHECK(m2d_toml_get(c->items[1], "level")->i == -3);
  CHECK(c->items[1]->line == 10);
  const m2d_toml_t *inc = m2d_toml_get(m2d_toml_get(t, "all-collections"), "include");
  CHECK(inc && inc->type == M2D_TOML_ARRAY && inc->n == 2);
  CHECK_STR(inc->items[1]->str, "b?");
  CHECK(m2d_toml_get(m2d_toml_get(t, "all-collections"), "exclude")->n == 0);
  const m2d_toml_t *ab = m2d_toml_get(m2d_toml_get(t, "a"), "b");
  CHECK(ab && m2d_toml_get(ab, "quoted key")->type == M2D_TOML_BOOL && !m2d_toml_get(ab, "quoted key")->b);
  m2d_toml_free(t);
}

/* Each bad input fails with "m2d.toml:LINE: <words>". */
static bool fails_at(const char *text, int line, const char *words) {
  m2d_error_t err;
  m2d_toml_t *t = parse(text, &err);
  if (t) {
    m2d_toml_free(t);
    return false;
  }
  char want[64];
  snprintf(want, sizeof want, "m2d.toml:%d: ", line);
  return err.domain == M2D_ERR_USAGE && strncmp(err.message, want, strlen(want)) == 0 && strstr(err.message, words);
}

TEST(toml_refuses_what_it_does_not_read_with_the_line) {
  CHECK(fails_at("a = 1\nb = \"x\n", 2, "no closing \""));
  CHECK(fails_at("[s]\nx = 1\nx = 2\n", 3, "given twice (first on line 2)"));
  CHECK(fails_at("[s]\n[t]\n[s]\n", 3, "defined twice"));
  CHECK(fails_at("x = 1.5\n", 1, "floats and dates are not supported"));
  CHECK(fails_at("\n\nx = 1979-05-27\n", 3, "floats and dates"));
  CHECK(fails_at("x = {a = 1}\n", 1, "inline tables"));
  CHECK(fails_at("x = \"\"\"long\"\"\"\n", 1, "multi-line strings"));
  CHECK(fails_at("a.b = 1\n", 1, "dotted keys"));
  CHECK(fails_at("x = yes\n", 1, "is not a value"));
  CHECK(fails_at("x = 1 2\n", 1, "after the value"));
  CHECK(fails_at("x 1\n", 1, "expected '='"));
  CHECK(fails_at("x = [1, \"a\"]\n", 1, "one type"));
  CHECK(fails_at("x = [1,\n2\n", 3, "no closing ]"));
  CHECK(fails_at("[s\n", 1, "no closing ]"));
  CHECK(fails_at("x = \"a\\qb\"\n", 1, "unknown escape"));
  CHECK(fails_at("x = 007\n", 1, "is not a value"));
  CHECK(fails_at("x = 99999999999999999999\n", 1, "out of range"));
  CHECK(fails_at("x = 1\n[x]\n", 2, "defined twice"));
  CHECK(fails_at("[[x]]\n[x]\n", 2, "defined twice"));
  CHECK(fails_at("[x]\n[[x]]\n", 2, "already a table"));
  CHECK(fails_at("= 1\n", 1, "where a key should be"));
  CHECK(fails_at("x = [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]\n", 1, "nested more than 16"));
  CHECK(fails_at("[a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q]\n", 1, "more than 16 keys"));
  m2d_error_t err;
  m2d_toml_t *t = parse("x = [[[\"a\"], []], [[\"b\", \"c\"]]]\n", &err);
  CHECK(t && m2d_toml_get(t, "x")->n == 2 && m2d_toml_get(t, "x")->items[1]->items[0]->n == 2);
  m2d_toml_free(t);
}

TEST(toml_file_that_is_missing_is_a_usage_error) {
  m2d_error_t err = {0};
  CHECK(!m2d_toml_parse_file("/nonexistent/m2d.toml", &err));
  CHECK(err.domain == M2D_ERR_USAGE && strstr(err.message, "cannot read the config file /nonexistent/m2d.toml"));
}
