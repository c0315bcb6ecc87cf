/* The table of commands; each lives in its own cmd_<name>.c. */
#ifndef M2D_CLI_COMMANDS_H
#define M2D_CLI_COMMANDS_H

#include "cli/args.h"

#include <signal.h>

extern const m2d_command_t m2d_cmd_check;
extern const m2d_command_t m2d_cmd_watch;
extern const m2d_command_t m2d_cmd_parquet;
extern const m2d_command_t m2d_cmd_inspect;
extern const m2d_command_t m2d_cmd_cat;
extern const m2d_command_t m2d_cmd_load;
extern const m2d_command_t m2d_cmd_snapshot;
extern const m2d_command_t m2d_cmd_publish;
extern const m2d_command_t m2d_cmd_sync;
extern const m2d_command_t m2d_cmd_run;
extern const m2d_command_t m2d_cmd_kafka_produce;
extern const m2d_command_t m2d_cmd_kafka_ingest;
extern const m2d_command_t m2d_cmd_optimize;
extern const m2d_command_t m2d_cmd_vacuum;
extern const m2d_command_t m2d_cmd_parquet_write;
extern const m2d_command_t m2d_cmd_parquet_schema;
extern const m2d_command_t m2d_cmd_parquet_dump;
extern const m2d_command_t m2d_cmd_parquet_bench_write;
extern const m2d_command_t m2d_cmd_parquet_bench_read;

/* Catches SIGINT and SIGTERM from now on; the flag returned becomes 1 when one arrives. */
volatile sig_atomic_t *m2d_cli_stop_on_signals(void);

/* Prints "mongo2delta: <message>" on stderr (redacted) and returns the exit status for err. */
int m2d_cli_fail(const m2d_error_t *err);
/* m2d_cli_fail for a usage error with this message (printf-style): returns 2. */
int m2d_cli_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
