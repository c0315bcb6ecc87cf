/* Command-line parsing from one option table per command; --help is generated from the same
 * table, so help and behaviour cannot drift apart. */
#ifndef M2D_CLI_ARGS_H
#define M2D_CLI_ARGS_H

#include "core/error.h"
#include "parquet/format.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct {
  const char *name; /* long option without "--" */
  const char *arg;  /* placeholder for the value ("URI"), NULL for a flag */
  const char *help;
  const char *def; /* default shown in --help and returned when absent, or NULL */
  bool required;
} m2d_opt_spec_t;

#define M2D_MAX_OPTS 48
#define M2D_MAX_POSITIONAL 64

typedef struct {
  const m2d_opt_spec_t *specs; /* terminated by an entry with name NULL */
  const char *values[M2D_MAX_OPTS];
  bool seen[M2D_MAX_OPTS];
  const char *positional[M2D_MAX_POSITIONAL];
  int npositional;
} m2d_args_t;

typedef struct m2d_command m2d_command_t;
struct m2d_command {
  const char *name;
  const char *summary;    /* one line for `mongo2delta --help` */
  const char *positional; /* e.g. "FILE", or NULL when the command takes none */
  const char *description;
  const char *example;
  const m2d_opt_spec_t *opts;
  int (*run)(const m2d_command_t *cmd, m2d_args_t *args);
  /* Instead of run, for commands with subcommands: gets the arguments after the name. */
  int (*main)(int argc, char **argv);
};

/* Parses argv (after the command name) against cmd->opts. Global options (--quiet, --verbose,
 * --log-format) are accepted anywhere and applied. Returns false with a usage error. */
bool m2d_args_parse(const m2d_command_t *cmd, int argc, char **argv, m2d_args_t *out,
                    bool *help_requested, m2d_error_t *err);

/* The value of an option (or its default; NULL when neither). */
const char *m2d_args_get(const m2d_args_t *a, const char *name);
bool m2d_args_flag(const m2d_args_t *a, const char *name);
/* Parses an integer option within [min, max]; a usage error names the option. */
bool m2d_args_int(const m2d_args_t *a, const char *name, int64_t min, int64_t max, int64_t *out,
                  m2d_error_t *err);

/* Parses a size option ("128MB", "64MiB", "1G", "4096") within [min, max] bytes (KB, MB, GB
 * are powers of 1024). Leaves *out alone when the option is absent and has no default. */
bool m2d_args_size(const m2d_args_t *a, const char *name, uint64_t min, uint64_t max, uint64_t *out,
                   m2d_error_t *err);

/* Parses a duration option ("30s", "500ms", "2m", "1h"; a bare number is seconds) within
 * [min_ms, max_ms]. Leaves *out alone when the option is absent and has no default. */
bool m2d_args_duration_ms(const m2d_args_t *a, const char *name, int64_t min_ms, int64_t max_ms, int64_t *out,
                          m2d_error_t *err);

void m2d_command_print_help(const m2d_command_t *cmd);

/* --NAME's value as the index of one of choices (NULL-terminated) in *out; otherwise a usage
 * error "--NAME must be a, b or c". */
bool m2d_args_choice(const m2d_args_t *a, const char *name, const char *const *choices, int *out, m2d_error_t *err);
/* m2d_args_int for an option whose default is words ("latest", "0 (never)"): *out is left alone
 * unless the option is given. */
bool m2d_args_int_if_given(const m2d_args_t *a, const char *name, int64_t min, int64_t max, int64_t *out,
                           m2d_error_t *err);

/* Rows shared by commands: one place for their names, placeholders, help and limits. (Kept out
 * of clang-format, which lays braced rows in macros out as code.) */
/* clang-format off */

/* The end of an option table. */
#define M2D_OPT_END {NULL, NULL, NULL, NULL, false}

/* The URL forms a table or an input may take besides a local path (the stores of storage/). */
#define M2D_URL_FORMS "s3://, gs:// or az://"
/* --table, required; more is appended to the help ("" or " (created when missing)"). */
#define M2D_OPT_TABLE(more) \
  {"table", "PATH", "the Delta table: a local path or an " M2D_URL_FORMS " URL" more, NULL, true}

/* --uri, --db and --collection: the collection a command reads or writes. uri_more is appended
 * to --uri's help; --collection's help and whether it is required are the command's. */
#define M2D_OPTS_COLLECTION(uri_more, collection_help, collection_required) \
  {"uri", "URI", "MongoDB connection string" uri_more, NULL, true},         \
  {"db", "DB", "database", NULL, true},                                     \
  {"collection", "COLL", collection_help, NULL, collection_required}

/* The options of every command that writes Parquet files, parsed by m2d_args_compression and
 * m2d_args_target_file_size. M2D_OPT_CODEC(what): --compression alone, what put before the list. */
#define M2D_CODECS "snappy, zstd, gzip, lz4_raw or none"
#define M2D_OPT_CODEC(what) {"compression", "CODEC", what M2D_CODECS, "snappy", false}
#define M2D_OPTS_COMPRESSION            \
  M2D_OPT_CODEC("data files' codec: "), \
  {"compression-level", "N", "zstd (1-22) or gzip (1-9) level", "codec default", false}
#define M2D_OPT_TARGET_FILE_SIZE \
  {"target-file-size", "SIZE", "Parquet bytes per data file (e.g. 128MB)", "128MB", false}

/* --stop-when-idle, for the commands that follow a stream; parsed by m2d_args_stop_when_idle. */
#define M2D_OPT_STOP_WHEN_IDLE \
  {"stop-when-idle", "SECONDS", "exit 0 after this long without an event (scripts, tests)", "0 (never)", false}

/* clang-format on */

/* --compression into *codec. */
bool m2d_args_codec(const m2d_args_t *a, pq_codec_t *codec, m2d_error_t *err);
/* --compression and --compression-level into *codec and *level (0: the codec's default). */
bool m2d_args_compression(const m2d_args_t *a, pq_codec_t *codec, int *level, m2d_error_t *err);
/* --target-file-size into *bytes (default 128 MiB). */
bool m2d_args_target_file_size(const m2d_args_t *a, uint64_t *bytes, m2d_error_t *err);
/* --stop-when-idle into *seconds (0 when not given: never). */
bool m2d_args_stop_when_idle(const m2d_args_t *a, int *seconds, m2d_error_t *err);

/* Global options, shared by every command. */
extern const m2d_opt_spec_t m2d_global_opts[];

#endif
