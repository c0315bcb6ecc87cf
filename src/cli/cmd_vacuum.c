/* mongo2delta vacuum: deletes the files a Delta table no longer references, after a retention. */
#include "cli/commands.h"
#include "core/log.h"
#include "pipeline/vacuum.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

static const m2d_opt_spec_t opts[] = {
    M2D_OPT_TABLE(""),
    {"retain-hours", "H", "keep files unneeded for less than H hours", "the table's retention, 168", false},
    {"force", NULL, "allow --retain-hours below the table's retention (no one may read or write the table meanwhile)",
     NULL, false},
    {"dry-run", NULL, "print the files that would be deleted (stdout: path and bytes) and delete nothing", NULL, false},
    M2D_OPT_END,
};

static int run(const m2d_command_t *cmd, m2d_args_t *args) {
  (void)cmd;
  volatile sig_atomic_t *stop_flag = m2d_cli_stop_on_signals();
  m2d_error_t err = {0};
  m2d_vacuum_options_t o = {.table = m2d_args_get(args, "table"), .retain_hours = -1,
                            .force = m2d_args_flag(args, "force"), .dry_run = m2d_args_flag(args, "dry-run"),
                            .stop = stop_flag};
  if (!m2d_args_int_if_given(args, "retain-hours", 0, (int64_t)24 * 365 * 100, &o.retain_hours, &err))
    return m2d_cli_fail(&err);
  m2d_vacuum_summary_t s;
  bool ok = m2d_vacuum_run(&o, &s, &err);
  int status = 0;
  double hours = (double)s.retain_ms / 3600000.0;
  if (ok && o.dry_run) {
    size_t i;
    json_t *f;
    json_array_foreach(s.deleted, i, f)
        printf("%s\t%lld\n", json_string_value(json_object_get(f, "path")), (long long)json_integer_value(json_object_get(f, "size")));
    fflush(stdout);
    fprintf(stderr,
            "vacuum %s (dry run): would delete %lld file(s), %lld bytes, unreferenced by version %lld for more than "
            "%g hours; %lld newer unreferenced file(s) kept; nothing was deleted\n",
            o.table, (long long)s.files_deleted, (long long)s.bytes_deleted, (long long)s.version, hours,
            (long long)s.files_retained);
  } else if (ok || s.files_deleted) {
    fprintf(stderr,
            "vacuum %s: %lld file(s) deleted, %lld bytes, unreferenced by version %lld for more than %g hours; %lld "
            "newer unreferenced file(s) kept%s\n",
            o.table, (long long)s.files_deleted, (long long)s.bytes_deleted, (long long)s.version, hours,
            (long long)s.files_retained, s.interrupted ? "; interrupted before the end" : "");
  }
  if (!ok) status = m2d_cli_fail(&err);
  else if (s.interrupted) status = 130;
  m2d_vacuum_summary_free(&s);
  return status;
}

const m2d_command_t m2d_cmd_vacuum = {
    .name = "vacuum",
    .summary = "delete the files a Delta table no longer references, after a retention",
    .description =
        "Deletes, under the table's directory, the data files, deletion vector files and _change_data files\n"
        "that the latest version does not reference and that have been unneeded for longer than the\n"
        "retention: since their remove's deletionTimestamp for files a commit removed, since their\n"
        "modification time for files never committed. _delta_log is never touched. The retention is the\n"
        "table's delta.deletedFileRetentionDuration (one week unless set); a shorter --retain-hours is\n"
        "refused without --force, because queries running now, time travel to recent versions and\n"
        "writers that have not committed yet read files the latest version no longer references. Time\n"
        "travel to versions whose files were deleted fails afterwards. A vacuum that deletes files adds\n"
        "VACUUM START and VACUUM END commits (commitInfo only) to the table's history.",
    .example = "mongo2delta vacuum --table ./lake/orders --dry-run",
    .opts = opts,
    .run = run,
};
