/* pipeline/columns_bson against the reference it replaces: for every row of a table, the
 * document made straight from the columns is byte for byte the one m2d_row_to_bson makes of the
 * row's JSON form (or both refuse the row). Over Spark's golden tables and over tables the
 * table writer (what snapshot and sync write with) makes of every BSON corpus value and of the
 * MongoDB sample collections. */
#include "delta/log.h"
#include "delta/scan.h"
#include "pipeline/columns_bson.h"
#include "pipeline/row_bson.h"
#include "pipeline/table_writer.h"
#include "schema/infer.h"
#include "test.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_ROWS 3000 /* a table's first rows (the largest golden tables hold millions) */

typedef struct {
  json_t *schema;
  json_t *docs; /* one string a row: the document's bytes in hex, or "!" for a refused row */
} rows_t;

static json_t *hex_of(const bson_t *doc) {
  const uint8_t *p = bson_get_data(doc);
  char *h = malloc(doc->len * 2 + 1);
  for (uint32_t i = 0; i < doc->len; i++) snprintf(h + 2 * i, 3, "%02x", p[i]);
  h[doc->len * 2] = 0;
  json_t *s = json_string(h);
  free(h);
  return s;
}

static bool json_row(const char *json, size_t len, void *ud) {
  rows_t *r = ud;
  json_t *row = json_loadb(json, len, JSON_ALLOW_NUL, NULL);
  bson_t doc;
  bson_init(&doc);
  m2d_error_t e = {0};
  bool ok = row && m2d_row_to_bson(r->schema, row, &doc, &e);
  json_array_append_new(r->docs, ok ? hex_of(&doc) : json_string("!"));
  bson_destroy(&doc);
  json_decref(row);
  return true; /* delta_scan's limit stops it */
}

static bool typed_row(const bson_t *doc, const m2d_error_t *row_err, size_t file, uint64_t row, void *ud) {
  (void)file, (void)row;
  json_t *docs = ((rows_t *)ud)->docs;
  if (!doc) fprintf(stderr, "    (a row refused: %s)\n", row_err->message);
  json_array_append_new(docs, doc ? hex_of(doc) : json_string("!"));
  return json_array_size(docs) < MAX_ROWS;
}

static void show(const char *table, size_t i, const char *what, const char *hex) {
  size_t n = strlen(hex) / 2;
  uint8_t *b = malloc(n + 1);
  for (size_t k = 0; k < n; k++) sscanf(hex + 2 * k, "%2hhx", &b[k]);
  bson_t doc;
  char *j = n && bson_init_static(&doc, b, n) ? bson_as_canonical_extended_json(&doc, NULL) : NULL;
  fprintf(stderr, "    %s row %zu %s: %s\n", table, i, what, j ? j : hex);
  bson_free(j);
  free(b);
}

/* Both paths over one table: -1 when they disagree, else the rows compared (0 when both
 * refuse the table). */
static long parity(const char *table, const char *columns) {
  m2d_store_t *store = m2d_store_open(table, NULL);
  delta_snapshot_t snap;
  if (!store || !delta_snapshot_load(store, -1, &snap, NULL)) {
    m2d_store_destroy(store);
    return 0;
  }
  const char *ss = json_string_value(json_object_get(snap.metadata, "schemaString"));
  rows_t a = {ss ? json_loads(ss, 0, NULL) : NULL, json_array()}, b = {NULL, json_array()};
  m2d_error_t ea = {0}, eb = {0};
  bool oka = delta_scan(store, &snap, columns, MAX_ROWS, json_row, &a, &ea);
  bool okb = m2d_scan_documents(store, &snap, columns, typed_row, &b, &eb);
  long n = (long)json_array_size(a.docs);
  if (oka != okb) {
    fprintf(stderr, "    %s: JSON path %s (%s), typed path %s (%s)\n", table, oka ? "reads" : "fails", ea.message,
            okb ? "reads" : "fails", eb.message);
    n = -1;
  } else if (!oka) {
    n = 0;
  } else if (json_array_size(a.docs) != json_array_size(b.docs)) {
    fprintf(stderr, "    %s: %zu rows by JSON, %zu typed\n", table, json_array_size(a.docs), json_array_size(b.docs));
    n = -1;
  } else {
    for (size_t i = 0; i < json_array_size(a.docs); i++) {
      const char *x = json_string_value(json_array_get(a.docs, i)), *y = json_string_value(json_array_get(b.docs, i));
      if (strcmp(x, y) != 0) {
        show(table, i, "by JSON", x);
        show(table, i, "typed  ", y);
        n = -1;
        break;
      }
    }
  }
  json_decref(a.schema);
  json_decref(a.docs);
  json_decref(b.docs);
  delta_snapshot_free(&snap);
  m2d_store_destroy(store);
  return n;
}

static bool is_table(const char *dir) {
  char p[1200];
  struct stat st;
  snprintf(p, sizeof p, "%s/_delta_log", dir);
  return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Every table under dir, two levels down at most. */
static void each_table(const char *dir, int depth, long *rows, int *tables, int *bad) {
  DIR *d = opendir(dir);
  if (!d) return;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.' || e->d_name[0] == '_') continue;
    char p[1200];
    snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
    if (is_table(p)) {
      long n = parity(p, NULL);
      if (n < 0) (*bad)++;
      else *rows += n, (*tables)++;
    } else if (depth < 2) {
      each_table(p, depth + 1, rows, tables, bad);
    }
  }
  closedir(d);
}

TEST(columns_bson_equals_row_bson_on_spark_golden_tables) {
  char dir[512];
  snprintf(dir, sizeof dir, "%s/delta-golden", m2d_testdata_dir());
  long rows = 0;
  int tables = 0, bad = 0;
  each_table(dir, 0, &rows, &tables, &bad);
  fprintf(stderr, "    %d golden tables agree (%ld rows)\n", tables, rows);
  CHECK(bad == 0);
  CHECK(tables > 50 && rows > 1000);
}

static bson_t *doc_from_hex(const char *hex) {
  size_t n = strlen(hex) / 2;
  uint8_t *b = malloc(n + 1);
  for (size_t i = 0; i < n; i++) sscanf(hex + 2 * i, "%2hhx", &b[i]);
  bson_t *d = bson_new_from_data(b, n);
  free(b);
  return d;
}

/* Writes docs as one table (optionally partitioned) and returns parity over it. */
static long written(const char *name, bson_t **docs, int n, const char *partition_by) {
  char dir[256];
  snprintf(dir, sizeof dir, "/tmp/m2d-columns-bson-%d-%s", (int)getpid(), name);
  m2d_table_writer_options_t wo = {.table = dir, .partition_by = partition_by, .target_file_size = 64 << 10};
  m2d_table_writer_t *w = m2d_table_writer_open(&wo, NULL);
  m2d_infer_t *inf = m2d_infer_new(NULL);
  bool ok = w && inf;
  for (int i = 0; ok && i < n; i++) ok = m2d_infer_observe(inf, docs[i], NULL);
  ok = ok && m2d_table_writer_begin(w, m2d_infer_schema(inf), NULL);
  for (int i = 0; ok && i < n; i++) ok = m2d_table_writer_add(w, docs[i], NULL, NULL);
  int64_t v = -1;
  ok = ok && m2d_table_writer_commit(w, NULL, 0, NULL, &v, NULL);
  m2d_table_writer_destroy(w);
  m2d_infer_destroy(inf);
  long rows = ok ? parity(dir, NULL) : -1;
  long some = ok && rows > 0 ? parity(dir, "_id,_rescued_data") : rows; /* the mirror's key scan */
  if (rows == n && some != n) rows = -1;
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) return -1;
  return rows;
}

TEST(columns_bson_equals_row_bson_on_tables_of_every_bson_value) {
  const char *files[] = {"array.json",    "binary.json",      "boolean.json",   "code.json",
                         "code_w_scope.json", "datetime.json", "dbpointer.json", "dbref.json",
                         "decimal128-1.json", "decimal128-2.json", "document.json", "double.json",
                         "double2.json",  "int32.json",       "int64.json",     "maxkey.json",
                         "minkey.json",   "multi-type.json",  "null.json",      "oid.json",
                         "regex.json",    "string.json",      "symbol.json",    "timestamp.json",
                         "undefined.json"};
  bson_t *by_type[4096], *one_field[4096];
  int n = 0;
  for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
    char path[512];
    snprintf(path, sizeof path, "%s/bson-corpus/%s", m2d_testdata_dir(), files[f]);
    json_t *root = json_load_file(path, 0, NULL);
    CHECK(root != NULL);
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(root, "valid"), i, v) {
      bson_t *d = doc_from_hex(json_string_value(json_object_get(v, "canonical_bson")));
      if (!d || n >= 4000) continue;
      /* the value's fields in a column of their own (one type a column, mostly) and all of
       * them under one field (types in conflict: rescued) */
      char col[64];
      snprintf(col, sizeof col, "%.*s", (int)(strchr(files[f], '.') - files[f]), files[f]);
      by_type[n] = BCON_NEW("_id", BCON_INT32(n), "k", BCON_INT32(n % 3), col, BCON_DOCUMENT(d));
      one_field[n] = BCON_NEW("_id", BCON_INT32(n), "k", BCON_INT32(n % 3), "v", BCON_DOCUMENT(d));
      bson_iter_t it;
      if (bson_iter_init(&it, d) && bson_iter_next(&it)) bson_append_iter(one_field[n], "top", -1, &it);
      n++;
      bson_destroy(d);
    }
    json_decref(root);
  }
  long a = written("by-type", by_type, n, NULL), b = written("one-field", one_field, n, NULL),
       c = written("partitioned", one_field, n, "k");
  fprintf(stderr, "    %d corpus documents: %ld, %ld, %ld rows agree\n", n, a, b, c);
  for (int i = 0; i < n; i++) bson_destroy(by_type[i]), bson_destroy(one_field[i]);
  CHECK(n > 200 && a == n && b == n && c == n);
}

TEST(columns_bson_equals_row_bson_on_the_mongodb_sample_collections) {
  const char *files[] = {"sample_analytics/accounts.json", "sample_mflix/sessions.json", "sample_mflix/users.json"};
  for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
    char path[512];
    snprintf(path, sizeof path, "%s/mongodb-sample/%s", m2d_testdata_dir(), files[f]);
    FILE *in = fopen(path, "r");
    CHECK(in != NULL);
    bson_t **docs = calloc(3000, sizeof *docs);
    int n = 0;
    char *line = NULL;
    size_t cap = 0;
    while (n < 3000 && getline(&line, &cap, in) > 0) {
      bson_t *d = bson_new_from_json((const uint8_t *)line, -1, NULL);
      if (d) docs[n++] = d;
    }
    free(line);
    fclose(in);
    long rows = written("sample", docs, n, NULL);
    fprintf(stderr, "    %s: %d documents, %ld rows agree\n", files[f], n, rows);
    for (int i = 0; i < n; i++) bson_destroy(docs[i]);
    free(docs);
    CHECK(n > 0 && rows == n);
  }
}
