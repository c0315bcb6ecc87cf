/* mongo2delta parquet SUBCOMMAND: tools for single Parquet files. Each subcommand is an
 * m2d_command_t of its own (cmd_parquet_*.c); this file only dispatches. */
#include "cli/commands.h"

#include <stdio.h>
#include <string.h>

static const m2d_command_t *const subcommands[] = {
    &m2d_cmd_parquet_schema,
    &m2d_cmd_parquet_dump,
    &m2d_cmd_parquet_write,
    &m2d_cmd_parquet_bench_write,
    &m2d_cmd_parquet_bench_read,
    NULL,
};

/* Subcommand names are "parquet <sub>", so their --help reads "Usage: mongo2delta parquet <sub>". */
static int parquet_main(int argc, char **argv) {
  if (argc < 1 || strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0) {
    FILE *f = argc < 1 ? stderr : stdout;
    fprintf(f, "Usage: mongo2delta parquet SUBCOMMAND [OPTIONS]\n\nSubcommands:\n");
    for (size_t i = 0; subcommands[i]; i++) fprintf(f, "  %-12s %s\n", subcommands[i]->name + strlen("parquet "), subcommands[i]->summary);
    fprintf(f, "\nRun 'mongo2delta parquet SUBCOMMAND --help' for its options.\n\n"
               "Example:\n  mongo2delta parquet dump data.parquet --limit 10\n");
    return argc < 1 ? 2 : 0;
  }
  for (size_t i = 0; subcommands[i]; i++) {
    if (strcmp(subcommands[i]->name + strlen("parquet "), argv[0]) != 0) continue;
    m2d_args_t a;
    bool help = false;
    m2d_error_t err = {0};
    if (!m2d_args_parse(subcommands[i], argc - 1, argv + 1, &a, &help, &err)) return m2d_cli_fail(&err);
    if (help) {
      m2d_command_print_help(subcommands[i]);
      return 0;
    }
    return subcommands[i]->run(subcommands[i], &a);
  }
  fprintf(stderr, "mongo2delta: unknown parquet subcommand '%s'; run 'mongo2delta parquet --help'\n", argv[0]);
  return 2;
}

const m2d_command_t m2d_cmd_parquet = {
    .name = "parquet",
    .summary = "inspect and write single Parquet files (schema, dump, write)",
    .description = "Tools for single Parquet files; see 'mongo2delta parquet --help'.",
    .example = "mongo2delta parquet dump data.parquet --limit 10",
    .main = parquet_main,
};
