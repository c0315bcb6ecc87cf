/* mongo2delta parquet write: JSON lines (the documented JSON form) into a Parquet file. */
#include "cli/commands.h"
#include "core/log.h"
#include "parquet/compress.h"
#include "parquet/json_input.h"
#include "parquet/schema_json.h"
#include "parquet/writer.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const m2d_opt_spec_t opts[] = {
    {"schema", "FILE", "table schema in the Delta/Spark StructType JSON form", NULL, true},
    {"input", "FILE", "rows as JSON lines ('-' for standard input)", "-", false},
    {"output", "FILE", "the Parquet file to write (replaced only when complete)", NULL, true},
    M2D_OPT_CODEC(""),
    {"level", "N", "compression level for zstd (1-22) or gzip (1-9)", "codec default", false},
    {"dictionary", "on|off", "dictionary-encode columns (falls back to PLAIN past --dictionary-size)", "on", false},
    {"dictionary-size", "BYTES", "dictionary bound per column chunk", "1048576", false},
    {"page-size", "BYTES", "target data page size", "1048576", false},
    {"row-group-size", "BYTES", "target row group size", "134217728", false},
    {"metadata", "K=V[,K=V]", "key-value metadata for the footer", NULL, false},
    M2D_OPT_END,
};

static char *read_file(const char *path, m2d_error_t *err) {
  FILE *f = fopen(path, "rb");
  if (!f) return m2d_error_set(err, M2D_ERR_IO, errno, "cannot open %s: %s", path, strerror(errno)), NULL;
  m2d_buf_t b;
  m2d_buf_init(&b, 64 << 20);
  char chunk[65536];
  size_t n;
  bool ok = true;
  while (ok && (n = fread(chunk, 1, sizeof chunk, f)) > 0) ok = m2d_buf_append(&b, chunk, n, err);
  fclose(f);
  if (!ok || !m2d_buf_terminate(&b, err)) {
    m2d_buf_free(&b);
    return NULL;
  }
  return (char *)m2d_buf_steal(&b, NULL);
}

static bool size_opt(const m2d_args_t *a, const char *name, size_t *out, m2d_error_t *err) {
  int64_t v;
  if (!m2d_args_flag(a, name)) return true;
  if (!m2d_args_int(a, name, 1, (int64_t)1 << 40, &v, err)) return false;
  *out = (size_t)v;
  return true;
}

static int run(const m2d_command_t *cmd, m2d_args_t *args) {
  (void)cmd;
  m2d_error_t err = {0};
  int status = 1;
  char *schema_text = NULL, *kvbuf = NULL, *line = NULL;
  pq_schema_t schema = {0};
  pq_json_input_t *in = NULL;
  pq_writer_t *w = NULL;
  FILE *input = NULL;
  pq_key_value_t kv[64];
  pq_writer_options_t wo = {.codec = PQ_CODEC_SNAPPY};

  static const char *const on_off[] = {"on", "off", NULL};
  int64_t level = 0;
  int dict = 0;
  if (!m2d_args_codec(args, &wo.codec, &err) || !m2d_args_int_if_given(args, "level", 1, 22, &level, &err) ||
      !m2d_args_choice(args, "dictionary", on_off, &dict, &err))
    goto fail;
  wo.level = (int)level;
  wo.no_dictionary = dict == 1;
  if (!size_opt(args, "dictionary-size", &wo.dictionary_max_bytes, &err) || !size_opt(args, "page-size", &wo.page_size, &err) ||
      !size_opt(args, "row-group-size", &wo.row_group_size, &err))
    goto fail;
  if (m2d_args_get(args, "metadata")) {
    kvbuf = strdup(m2d_args_get(args, "metadata"));
    for (char *save = NULL, *tok = strtok_r(kvbuf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
      char *eq = strchr(tok, '=');
      if (!eq || wo.num_key_value_metadata == 64) {
        m2d_error_set(&err, M2D_ERR_USAGE, 0, "--metadata takes KEY=VALUE pairs separated by commas (64 at most)");
        goto fail;
      }
      *eq = '\0';
      kv[wo.num_key_value_metadata].key = tok;
      kv[wo.num_key_value_metadata++].value = eq + 1;
    }
    wo.key_value_metadata = kv;
  }

  if (!(schema_text = read_file(m2d_args_get(args, "schema"), &err))) goto fail;
  if (!pq_schema_from_json(schema_text, &schema, &err)) {
    m2d_error_prefix(&err, "%s: ", m2d_args_get(args, "schema"));
    goto fail;
  }
  const char *input_path = m2d_args_get(args, "input");
  input = strcmp(input_path, "-") == 0 ? stdin : fopen(input_path, "rb");
  if (!input) {
    m2d_error_set(&err, M2D_ERR_IO, errno, "cannot open %s: %s", input_path, strerror(errno));
    goto fail;
  }
  const char *out = m2d_args_get(args, "output");
  m2d_sink_t *sink = m2d_file_sink_new(out, &err);
  if (!sink || !(w = pq_writer_new(&schema, sink, &wo, &err)) || !(in = pq_json_input_new(&schema, &err))) goto fail;

  size_t cap = 0;
  ssize_t len;
  long long lineno = 0;
  while ((len = getline(&line, &cap, input)) >= 0) {
    lineno++;
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) len--;
    if (len == 0) continue;
    if (!pq_json_input_add(in, line, (size_t)len, &err)) {
      m2d_error_prefix(&err, "%s line %lld: ", input_path, lineno);
      goto fail;
    }
    if (pq_json_input_memory(in) >= ((size_t)64 << 20) || pq_json_input_rows(in) >= 65536) {
      if (!pq_writer_write(w, pq_json_input_columns(in), &err)) goto fail;
      pq_json_input_reset(in);
    }
  }
  if (ferror(input)) {
    m2d_error_set(&err, M2D_ERR_IO, errno, "reading %s: %s", input_path, strerror(errno));
    goto fail;
  }
  if (pq_json_input_rows(in) && !pq_writer_write(w, pq_json_input_columns(in), &err)) goto fail;
  pq_write_result_t res;
  pq_writer_t *closing = w;
  w = NULL;
  if (!pq_writer_close(closing, &res, &err)) goto fail;
  m2d_info("wrote %s: %lld rows, %d row groups, %llu bytes", out, (long long)res.num_rows, res.num_row_groups,
           (unsigned long long)res.file_size);
  pq_write_result_free(&res);
  status = 0;
  goto done;
fail:
  status = m2d_cli_fail(&err);
done:
  pq_writer_destroy(w);
  pq_json_input_destroy(in);
  pq_schema_free(&schema);
  if (input && input != stdin) fclose(input);
  free(line);
  free(schema_text);
  free(kvbuf);
  return status;
}

const m2d_command_t m2d_cmd_parquet_write = {
    .name = "parquet write",
    .summary = "write JSON lines (the documented JSON form) into a Parquet file",
    .description = "Reads rows as JSON lines in the JSON form of docs/json-form.md and writes them to a\n"
                   "Parquet file with the given schema (Delta/Spark StructType JSON). A row that does not\n"
                   "match the schema stops the write with its line number and field; the output file is\n"
                   "only created when complete.",
    .example = "mongo2delta parquet write --schema schema.json --input rows.jsonl --output rows.parquet --compression zstd",
    .opts = opts,
    .run = run,
};
