/* mongo2delta load: export files into a Delta table, each file exactly once. */
#include "cli/commands.h"
#include "core/log.h"
#include "parquet/compress.h"
#include "pipeline/load.h"

#include <stdio.h>
#include <string.h>

static const m2d_opt_spec_t opts[] = {
    {"input", "PATH", "an export file or a folder of them, local or s3://BUCKET/PREFIX (more may follow)", NULL, true},
    {"table", "PATH", "the Delta table: a local path or s3://BUCKET/PREFIX (created when missing)", NULL, true},
    {"compression", "CODEC", "snappy, zstd, gzip, lz4_raw or none", "snappy", false},
    {"compression-level", "N", "zstd (1-22) or gzip (1-9) level", "codec default", false},
    {"target-file-size", "SIZE", "Parquet bytes per data file (e.g. 128MB)", "128MB", false},
    {"partition-by", "FIELD", "partition a new table by this top-level field", "none", false},
    {"rejects", "FILE", "append bad records to FILE (JSON lines) and go on, instead of failing the file", NULL,
     false},
    {NULL, NULL, NULL, NULL, false},
};

static int run(const m2d_command_t *cmd, m2d_args_t *args) {
  (void)cmd;
  m2d_error_t err = {0};
  const char *inputs[1 + M2D_MAX_POSITIONAL];
  int n = 0;
  inputs[n++] = m2d_args_get(args, "input");
  for (int i = 0; i < args->npositional; i++) inputs[n++] = args->positional[i];
  m2d_load_options_t o = {.inputs = inputs, .ninputs = n, .table = m2d_args_get(args, "table"), .codec = PQ_CODEC_SNAPPY};
  if (!pq_codec_parse(m2d_args_get(args, "compression"), &o.codec)) {
    m2d_error_set(&err, M2D_ERR_USAGE, 0, "--compression must be snappy, zstd, gzip, lz4_raw or none");
    return m2d_cli_fail(&err);
  }
  int64_t level = 0;
  o.target_file_size = (uint64_t)128 << 20;
  if ((m2d_args_flag(args, "compression-level") && !m2d_args_int(args, "compression-level", 1, 22, &level, &err)) ||
      (m2d_args_flag(args, "target-file-size") &&
       !m2d_args_size(args, "target-file-size", 1 << 10, (uint64_t)1 << 40, &o.target_file_size, &err)))
    return m2d_cli_fail(&err);
  o.level = (int)level;
  if (m2d_args_flag(args, "partition-by")) o.partition_by = m2d_args_get(args, "partition-by");
  if (m2d_args_flag(args, "rejects")) o.rejects = m2d_args_get(args, "rejects");
  m2d_load_summary_t s;
  bool ok = m2d_load_run(&o, &s, &err);
  if (s.files_taken || s.files_skipped || ok)
    fprintf(stderr,
            "load: %d file(s) loaded, %d already loaded before; %lld documents, %lld rejected, %lld value(s) "
            "rescued; %lld data file(s), %lld bytes; table version %lld\n",
            s.files_taken, s.files_skipped, (long long)s.documents, (long long)s.rejected, (long long)s.rescued,
            (long long)s.data_files, (long long)s.bytes, (long long)s.version);
  const char *path;
  json_t *v;
  json_object_foreach(s.rescued_fields, path, v)
      fprintf(stderr, "  rescued into _rescued_data: %-40s %lld\n", path, (long long)json_integer_value(v));
  json_decref(s.rescued_fields);
  return ok ? 0 : m2d_cli_fail(&err);
}

const m2d_command_t m2d_cmd_load = {
    .name = "load",
    .summary = "load mongodump / mongoexport files into a Delta table, each file exactly once",
    .positional = "[PATH...]",
    .description =
        "Reads mongodump .bson / .bson.gz files and mongoexport JSON lines (canonical or relaxed\n"
        "Extended JSON; .json, .jsonl, .ndjson, .json.gz), or folders of them, and appends each file to\n"
        "the Delta table as one commit. The schema is learned from every document (docs/type-mapping.md);\n"
        "values that do not fit their column are kept in _rescued_data. Each commit records the file\n"
        "in the Delta log, so running the command again takes only files it has not taken.\n"
        "A bad record fails its file (nothing of it is committed) unless --rejects sets it aside.",
    .example = "mongo2delta load --input ./dump/shop --table ./lake/orders --partition-by country",
    .opts = opts,
    .run = run,
};
