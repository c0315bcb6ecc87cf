/* mongo2delta optimize: compacts a Delta table (small files bin-packed, deletion vectors folded
 * away), in one commit that changes no row. */
#include "cli/commands.h"
#include "core/log.h"
#include "parquet/compress.h"
#include "pipeline/optimize.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

static const m2d_opt_spec_t opts[] = {
    M2D_OPT_TABLE(""),
    {"target-size", "SIZE", "bytes per new file (e.g. 128MB)", "128MB", false},
    {"min-file-size", "SIZE", "files smaller than this are compacted", "a quarter of --target-size", false},
    M2D_OPTS_COMPRESSION,
    {"dry-run", NULL, "print the files that would be rewritten (stdout) and change nothing", NULL, false},
    M2D_OPT_END,
};

static int run(const m2d_command_t *cmd, m2d_args_t *args) {
  (void)cmd;
  volatile sig_atomic_t *stop_flag = m2d_cli_stop_on_signals();
  m2d_error_t err = {0};
  m2d_optimize_options_t o = {.table = m2d_args_get(args, "table"), .codec = PQ_CODEC_SNAPPY,
                              .dry_run = m2d_args_flag(args, "dry-run"), .stop = stop_flag};
  o.target_file_size = (uint64_t)128 << 20;
  if (!m2d_args_size(args, "target-size", 1 << 10, (uint64_t)1 << 40, &o.target_file_size, &err) ||
      (m2d_args_flag(args, "min-file-size") &&
       !m2d_args_size(args, "min-file-size", 1, (uint64_t)1 << 40, &o.min_file_size, &err)) ||
      !m2d_args_compression(args, &o.codec, &o.level, &err))
    return m2d_cli_fail(&err);
  m2d_optimize_summary_t s;
  bool ok = m2d_optimize_run(&o, &s, &err);
  int status = 0;
  if (!ok) {
    status = m2d_cli_fail(&err);
  } else if (s.files_removed == 0) {
    fprintf(stderr,
            "optimize %s: nothing to do at version %lld (no two small files share a partition, no deletion "
            "vector)\n",
            o.table, (long long)s.version);
  } else if (o.dry_run) {
    size_t i;
    json_t *p;
    json_array_foreach(s.removed_paths, i, p) printf("%s\n", json_string_value(p));
    fflush(stdout);
    char rows[64] = "rows unknown";
    if (s.rows >= 0) snprintf(rows, sizeof rows, "%lld rows", (long long)s.rows);
    fprintf(stderr,
            "optimize %s (dry run): would rewrite %lld file(s) (%lld bytes) in %lld partition(s) into about %lld "
            "file(s), %s, folding %lld deletion vector(s); nothing was changed (table version %lld)\n",
            o.table, (long long)s.files_removed, (long long)s.bytes_removed, (long long)s.partitions,
            (long long)s.files_added, rows, (long long)s.dvs_folded, (long long)s.version);
  } else if (s.interrupted) {
    fprintf(stderr, "optimize %s: interrupted; nothing was committed (table version %lld)\n", o.table,
            (long long)s.version);
    status = 130;
  } else {
    fprintf(stderr,
            "optimize %s: %lld file(s) removed (%lld bytes), %lld file(s) added (%lld bytes) in %lld partition(s); "
            "%lld rows rewritten, %lld deletion vector(s) folded; table version %lld\n",
            o.table, (long long)s.files_removed, (long long)s.bytes_removed, (long long)s.files_added,
            (long long)s.bytes_added, (long long)s.partitions, (long long)s.rows, (long long)s.dvs_folded,
            (long long)s.version);
  }
  m2d_optimize_summary_free(&s);
  return status;
}

const m2d_command_t m2d_cmd_optimize = {
    .name = "optimize",
    .summary = "compact a Delta table: small files bin-packed, deletion vectors folded away",
    .description =
        "Rewrites, per partition, the files smaller than --min-file-size into files near --target-size\n"
        "(oldest first; a lone small file is left alone), and every file carrying a deletion vector without\n"
        "its deleted rows. One commit (operation OPTIMIZE, dataChange false): the table's rows are the same\n"
        "before and after, checked file by file before committing, and earlier versions still read their\n"
        "old files (until `mongo2delta vacuum` deletes them). A concurrent writer that removes one of the\n"
        "files being compacted makes the commit fail with a conflict and nothing changes: run it again.\n"
        "Ctrl-C stops it with nothing committed (exit status 130).",
    .example = "mongo2delta optimize --table ./lake/orders --target-size 256MB --dry-run",
    .opts = opts,
    .run = run,
};
