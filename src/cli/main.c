/* mongo2delta: keeps Delta Lake tables in step with MongoDB. Entry point and command table. */
#include "cli/commands.h"
#include "core/log.h"
#include "storage/http.h"
#include "version.h"

#include <stdio.h>
#include <string.h>

static const m2d_command_t *const commands[] = {
    &m2d_cmd_check,
    &m2d_cmd_watch,
    &m2d_cmd_inspect,
    &m2d_cmd_cat,
    &m2d_cmd_snapshot,
    &m2d_cmd_sync,
    &m2d_cmd_run,
    &m2d_cmd_kafka_produce,
    &m2d_cmd_kafka_ingest,
    &m2d_cmd_load,
    &m2d_cmd_publish,
    &m2d_cmd_optimize,
    &m2d_cmd_vacuum,
    &m2d_cmd_parquet,
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

static void print_usage(FILE *f) {
  fprintf(f,
          "mongo2delta %s: keeps Delta Lake tables in step with MongoDB.\n\n"
          "Usage: mongo2delta COMMAND [OPTIONS]\n\nCommands:\n",
          M2D_VERSION);
  for (size_t i = 0; i < NCOMMANDS; i++) fprintf(f, "  %-13s %s\n", commands[i]->name, commands[i]->summary);
  fprintf(f,
          "\nRun 'mongo2delta COMMAND --help' for a command's options and an example.\n"
          "Global options: --log-format text|json, --quiet, --verbose, --progress auto|always|never, --unsafe-single-writer, --version.\n"
          "Exit status: 0 success, 1 the work failed, 2 usage error.\n");
}

int main(int argc, char **argv) {
  if (argc < 2) {
    print_usage(stderr);
    return 2;
  }
  const char *name = argv[1];
  if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0 || strcmp(name, "help") == 0) {
    print_usage(stdout);
    return 0;
  }
  if (strcmp(name, "--version") == 0 || strcmp(name, "version") == 0) {
    printf("mongo2delta %s\n", M2D_VERSION);
    return 0;
  }
  for (size_t i = 0; i < NCOMMANDS; i++) {
    if (strcmp(commands[i]->name, name) != 0) continue;
    if (commands[i]->main) return commands[i]->main(argc - 2, argv + 2);
    m2d_args_t args;
    bool help = false;
    m2d_error_t err = {0};
    if (!m2d_args_parse(commands[i], argc - 2, argv + 2, &args, &help, &err)) return m2d_cli_fail(&err);
    if (help) {
      m2d_command_print_help(commands[i]);
      return 0;
    }
    int rc = commands[i]->run(commands[i], &args);
    uint64_t requests, sent, received;
    m2d_http_totals(&requests, &sent, &received);
    if (requests)
      m2d_debug("object store: %llu requests (%llu GET, %llu PUT, %llu POST, %llu DELETE, %llu HEAD), %llu bytes "
                "sent, %llu received",
                (unsigned long long)requests, (unsigned long long)m2d_http_requests("GET"),
                (unsigned long long)m2d_http_requests("PUT"), (unsigned long long)m2d_http_requests("POST"),
                (unsigned long long)m2d_http_requests("DELETE"), (unsigned long long)m2d_http_requests("HEAD"),
                (unsigned long long)sent, (unsigned long long)received);
    return rc;
  }
  fprintf(stderr, "mongo2delta: unknown command '%s'; run 'mongo2delta --help' for the list\n", name);
  return 2;
}
