/* mongo2delta parquet bench-write / bench-read: the Parquet engine alone, for bench/. The
 * rows are generated in C (simple arithmetic) straight into column vectors, the same rows
 * bench/parquet_bench.py builds for pyarrow. */
#include "cli/commands.h"
#include "core/log.h"
#include "parquet/compress.h"
#include "parquet/reader.h"
#include "parquet/schema_json.h"
#include "parquet/writer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* id long, value double, ts timestamp, country string (10 values), user string (unique),
 * s struct<a: integer, b: double, c: string>, tags array<string> (0 to 3 of 50 values) */
static const char *SCHEMA =
    "{\"type\":\"struct\",\"fields\":["
    "{\"name\":\"id\",\"type\":\"long\",\"nullable\":false,\"metadata\":{}},"
    "{\"name\":\"value\",\"type\":\"double\",\"nullable\":true,\"metadata\":{}},"
    "{\"name\":\"ts\",\"type\":\"timestamp\",\"nullable\":true,\"metadata\":{}},"
    "{\"name\":\"country\",\"type\":\"string\",\"nullable\":true,\"metadata\":{}},"
    "{\"name\":\"user\",\"type\":\"string\",\"nullable\":true,\"metadata\":{}},"
    "{\"name\":\"s\",\"type\":{\"type\":\"struct\",\"fields\":["
    "{\"name\":\"a\",\"type\":\"integer\",\"nullable\":true,\"metadata\":{}},"
    "{\"name\":\"b\",\"type\":\"double\",\"nullable\":true,\"metadata\":{}},"
    "{\"name\":\"c\",\"type\":\"string\",\"nullable\":true,\"metadata\":{}}]},\"nullable\":true,\"metadata\":{}},"
    "{\"name\":\"tags\",\"type\":{\"type\":\"array\",\"elementType\":\"string\",\"containsNull\":true},"
    "\"nullable\":true,\"metadata\":{}}]}";

static const m2d_opt_spec_t write_opts[] = {
    {"rows", "N", "rows to write", "10000000", false},
    {"output", "FILE", "the Parquet file", NULL, true},
    M2D_OPT_CODEC(""),
    M2D_OPT_END,
};

/* prefix + decimal digits of v into buf; returns the length (snprintf would dominate). */
static int with_number(char *buf, const char *prefix, int64_t v) {
  int n = 0;
  while (*prefix) buf[n++] = *prefix++;
  char d[24];
  int k = 0;
  do {
    d[k++] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  while (k) buf[n++] = d[--k];
  return n;
}

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int run_write(const m2d_command_t *cmd, m2d_args_t *args) {
  (void)cmd;
  m2d_error_t err = {0};
  int64_t rows;
  pq_writer_options_t wo = {.codec = PQ_CODEC_SNAPPY};
  if (!m2d_args_int(args, "rows", 0, (int64_t)1 << 40, &rows, &err) || !m2d_args_codec(args, &wo.codec, &err))
    return m2d_cli_fail(&err);
  pq_schema_t schema;
  if (!pq_schema_from_json(SCHEMA, &schema, &err)) return m2d_cli_fail(&err);
  m2d_column_t cols[9];
  for (int i = 0; i < schema.nleaves; i++) {
    const pq_node_t *l = schema.leaves[i];
    m2d_column_init(&cols[i], pq_leaf_col_type(l), l->type_length, l->max_def, l->max_rep, 0);
  }
  double t0 = now(), gen = 0; /* the clock counts the writer only, as pyarrow's counts write_table */
  m2d_sink_t *sink = m2d_file_sink_new(m2d_args_get(args, "output"), &err);
  pq_writer_t *w = sink ? pq_writer_new(&schema, sink, &wo, &err) : NULL;
  static const char *countries[] = {"US", "DE", "FR", "IN", "BR", "JP", "GB", "CN", "NG", "MX"};
  char buf[64];
  bool ok = w != NULL;
  const int64_t batch = 65536;
  for (int64_t start = 0; ok && start < rows; start += batch) {
    int64_t end = start + batch < rows ? start + batch : rows;
    double g0 = now();
    for (int i = 0; i < schema.nleaves; i++) m2d_column_reset(&cols[i]);
    for (int64_t r = start; ok && r < end; r++) {
      /* the same arithmetic as bench/parquet_bench.py */
      ok = m2d_column_push_level(&cols[0], 0, 0, &err) && m2d_column_push_i64(&cols[0], r, &err);
      ok = ok && m2d_column_push_level(&cols[1], 1, 0, &err) && m2d_column_push_f64(&cols[1], (double)(r % 1000) * 0.25, &err);
      ok = ok && m2d_column_push_level(&cols[2], 1, 0, &err) &&
           m2d_column_push_i64(&cols[2], 1700000000000000LL + r * 1000000LL, &err);
      const char *c = countries[r % 10];
      ok = ok && m2d_column_push_level(&cols[3], 1, 0, &err) && m2d_column_push_bytes(&cols[3], c, 2, &err);
      int n = with_number(buf, "user-", r);
      ok = ok && m2d_column_push_level(&cols[4], 1, 0, &err) && m2d_column_push_bytes(&cols[4], buf, (size_t)n, &err);
      ok = ok && m2d_column_push_level(&cols[5], 2, 0, &err) && m2d_column_push_i32(&cols[5], (int32_t)(r % 100), &err);
      ok = ok && m2d_column_push_level(&cols[6], 2, 0, &err) && m2d_column_push_f64(&cols[6], (double)r * 0.5, &err);
      n = with_number(buf, "c", r % 1000);
      ok = ok && m2d_column_push_level(&cols[7], 2, 0, &err) && m2d_column_push_bytes(&cols[7], buf, (size_t)n, &err);
      int ntags = (int)(r % 4);
      if (ntags == 0) ok = ok && m2d_column_push_level(&cols[8], 1, 0, &err);
      for (int k = 0; ok && k < ntags; k++) {
        n = with_number(buf, "tag", (r + k) % 50);
        ok = m2d_column_push_level(&cols[8], 3, k ? 1 : 0, &err) && m2d_column_push_bytes(&cols[8], buf, (size_t)n, &err);
      }
    }
    gen += now() - g0;
    ok = ok && pq_writer_write(w, cols, &err);
  }
  pq_write_result_t res = {0};
  if (ok) {
    ok = pq_writer_close(w, &res, &err);
    w = NULL;
  }
  double t = now() - t0 - gen;
  pq_writer_destroy(w);
  for (int i = 0; i < schema.nleaves; i++) m2d_column_free(&cols[i]);
  pq_schema_free(&schema);
  if (!ok) return m2d_cli_fail(&err);
  printf("{\"rows\": %lld, \"seconds\": %.3f, \"generate_seconds\": %.3f, \"bytes\": %llu}\n", (long long)rows, t, gen,
         (unsigned long long)res.file_size);
  pq_write_result_free(&res);
  return 0;
}

static int run_read(const m2d_command_t *cmd, m2d_args_t *args) {
  m2d_error_t err = {0};
  if (args->npositional != 1) return m2d_cli_usage("%s takes one FILE", cmd->name);
  double t0 = now();
  m2d_source_t *src = m2d_file_source_new(args->positional[0], &err);
  pq_reader_t *r = src ? pq_reader_open(src, &err) : NULL;
  if (!r) {
    m2d_source_destroy(src);
    return m2d_cli_fail(&err);
  }
  int64_t values = 0;
  bool ok = true;
  const pq_schema_t *s = pq_reader_schema(r);
  for (int g = 0; ok && g < pq_reader_num_row_groups(r); g++)
    for (int i = 0; ok && i < s->nleaves; i++) {
      m2d_column_t c;
      ok = pq_reader_read_column(r, g, i, &c, &err);
      if (ok) {
        values += (int64_t)c.nlevels;
        m2d_column_free(&c);
      }
    }
  int64_t rows = pq_reader_metadata(r)->num_rows;
  pq_reader_close(r);
  m2d_source_destroy(src);
  if (!ok) return m2d_cli_fail(&err);
  printf("{\"rows\": %lld, \"values\": %lld, \"seconds\": %.3f}\n", (long long)rows, (long long)values, now() - t0);
  return 0;
}

const m2d_command_t m2d_cmd_parquet_bench_write = {
    .name = "parquet bench-write",
    .summary = "benchmark: write generated rows (bench/parquet_bench.py's schema)",
    .description = "Generates rows of a representative schema (long, double, timestamp, low- and high-\n"
                   "cardinality strings, a struct of three fields, a list of strings) in memory and writes\n"
                   "them; prints rows, seconds and bytes as JSON. Used by bench/parquet_bench.py.",
    .example = "mongo2delta parquet bench-write --rows 10000000 --output /tmp/b.parquet --compression zstd",
    .opts = write_opts,
    .run = run_write,
};

const m2d_command_t m2d_cmd_parquet_bench_read = {
    .name = "parquet bench-read",
    .summary = "benchmark: decode every column of a file into memory, without printing",
    .positional = "FILE",
    .description = "Decodes every column of every row group into column vectors and prints rows, values\n"
                   "and seconds as JSON. Used by bench/parquet_bench.py.",
    .example = "mongo2delta parquet bench-read /tmp/b.parquet",
    .opts = NULL,
    .run = run_read,
};
