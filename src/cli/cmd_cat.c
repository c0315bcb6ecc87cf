/* mongo2delta cat: a Delta table's rows as JSON lines. */
#include "cli/commands.h"
#include "delta/scan.h"

#include <stdio.h>

static const m2d_opt_spec_t opts[] = {
    M2D_OPT_TABLE(""),
    {"version", "N", "read the table as of version N", "latest", false},
    {"columns", "A,B", "only these top-level columns", "all", false},
    {"limit", "N", "stop after N rows", "no limit", false},
    M2D_OPT_END,
};

static bool print_row(const char *json, size_t len, void *ud) {
  (void)ud;
  fwrite(json, 1, len, stdout);
  fputc('\n', stdout);
  return !ferror(stdout);
}

static int run(const m2d_command_t *cmd, m2d_args_t *args) {
  (void)cmd;
  m2d_error_t err = {0};
  int64_t version = -1, limit = -1;
  if (!m2d_args_int_if_given(args, "version", 0, INT64_MAX, &version, &err) ||
      !m2d_args_int_if_given(args, "limit", 0, INT64_MAX, &limit, &err))
    return m2d_cli_fail(&err);
  m2d_store_t *store = m2d_store_open(m2d_args_get(args, "table"), &err);
  if (!store) return m2d_cli_fail(&err);
  delta_snapshot_t s;
  int status = 0;
  if (!delta_snapshot_load(store, version, &s, &err)) {
    status = m2d_cli_fail(&err);
  } else {
    const char *cols = m2d_args_flag(args, "columns") ? m2d_args_get(args, "columns") : NULL;
    if (!delta_scan(store, &s, cols, limit, print_row, NULL, &err)) status = m2d_cli_fail(&err);
    delta_snapshot_free(&s);
  }
  fflush(stdout);
  m2d_store_destroy(store);
  return status;
}

const m2d_command_t m2d_cmd_cat = {
    .name = "cat",
    .summary = "print a Delta table's rows as JSON lines (any version)",
    .description = "Reads a Delta table at its latest version (or --version N) and prints its rows as JSON\n"
                   "lines in the form of docs/json-form.md: column mapping, partition values and deletion\n"
                   "vectors are applied, and columns a file predates are null.",
    .example = "mongo2delta cat --table ./demo/lake/users --columns _id,name --limit 5",
    .opts = opts,
    .run = run,
};
