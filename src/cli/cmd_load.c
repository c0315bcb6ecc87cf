/* mongo2delta load: export files into a Delta table, each file exactly once. */
#include "cli/commands.h"
#include "core/log.h"
#include "parquet/compress.h"
#include "pipeline/load.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

static const m2d_opt_spec_t opts[] = {
    {"input", "PATH", "an export file or a folder of them, local or an " M2D_URL_FORMS " URL (more may follow)", NULL, true},
    M2D_OPT_TABLE(" (created when missing)"),
    M2D_OPTS_COMPRESSION,
    M2D_OPT_TARGET_FILE_SIZE,
    {"partition-by", "FIELD", "partition a new table by this top-level field", "none", false},
    {"rejects", "FILE", "append bad records to FILE (JSON lines) and go on, instead of failing the file", NULL,
     false},
    {"watch", NULL,
     "keep listing the inputs and load new files as they arrive, until SIGINT/SIGTERM (which finish the file in "
     "hand), as Auto Loader's directory listing does",
     NULL, false},
    {"interval", "DURATION", "with --watch: time between listings (e.g. 30s, 500ms, 2m)", "30s", false},
    {"max-files-per-batch", "N", "load at most N new files per listing (the rest at the next)", "all", false},
    {"full-listing-every", "N",
     "with --watch: every Nth listing is whole (to find files named before the last one taken); the others start "
     "after the last file taken",
     "10", false},
    {"max-rounds", "N", "with --watch: stop after N listings (scripts, tests)", "0 (never)", false},
    M2D_OPT_END,
};

static int run(const m2d_command_t *cmd, m2d_args_t *args) {
  (void)cmd;
  m2d_error_t err = {0};
  const char *inputs[1 + M2D_MAX_POSITIONAL];
  int n = 0;
  inputs[n++] = m2d_args_get(args, "input");
  for (int i = 0; i < args->npositional; i++) inputs[n++] = args->positional[i];
  m2d_load_options_t o = {.inputs = inputs, .ninputs = n, .table = m2d_args_get(args, "table"), .codec = PQ_CODEC_SNAPPY};
  if (!m2d_args_compression(args, &o.codec, &o.level, &err) || !m2d_args_target_file_size(args, &o.target_file_size, &err))
    return m2d_cli_fail(&err);
  if (m2d_args_flag(args, "partition-by")) o.partition_by = m2d_args_get(args, "partition-by");
  if (m2d_args_flag(args, "rejects")) o.rejects = m2d_args_get(args, "rejects");
  o.watch = m2d_args_flag(args, "watch");
  int64_t max_files = 0, full_every = 10, rounds = 0;
  if (!m2d_args_duration_ms(args, "interval", 1, (int64_t)86400 * 1000, &o.interval_ms, &err) ||
      !m2d_args_int_if_given(args, "max-files-per-batch", 1, 1000000000, &max_files, &err) ||
      !m2d_args_int(args, "full-listing-every", 1, 1000000000, &full_every, &err) ||
      !m2d_args_int_if_given(args, "max-rounds", 1, INT64_MAX, &rounds, &err))
    return m2d_cli_fail(&err);
  o.max_files_per_batch = (int)max_files;
  o.full_listing_every = (int)full_every;
  o.max_rounds = rounds;
  o.stop = m2d_cli_stop_on_signals();
  m2d_load_summary_t s;
  bool ok = m2d_load_run(&o, &s, &err);
  if (s.files_taken || s.files_skipped || ok)
    fprintf(stderr,
            "load: %d file(s) loaded, %d already loaded before; %lld documents, %lld rejected, %lld value(s) "
            "rescued; %lld data file(s), %lld bytes; table version %lld%s\n",
            s.files_taken, s.files_skipped, (long long)s.documents, (long long)s.rejected, (long long)s.rescued,
            (long long)s.data_files, (long long)s.bytes, (long long)s.version,
            s.interrupted ? "; stopped by a signal after the file in hand" : "");
  if (s.files_changed)
    fprintf(stderr, "load: %d file(s) changed after they were loaded and were not loaded again (see the warnings)\n",
            s.files_changed);
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
        "A bad record fails its file (nothing of it is committed) unless --rejects sets it aside.\n"
        "Inputs may be local or in a bucket or container (s3://, gs://, az://). With --watch the inputs\n"
        "are listed again every --interval and new files are loaded as they arrive; listings start\n"
        "after the last file taken (names in lexical order, as $out and mongodump write them), with\n"
        "a whole listing every --full-listing-every rounds. A file that changes after it was loaded is\n"
        "reported, not loaded twice. Write local files under another name and rename them when done.",
    .example = "mongo2delta load --input ./dump/shop --table ./lake/orders --partition-by country",
    .opts = opts,
    .run = run,
};
