/* The options of the commands that keep tables in step with a stream of changes (sync,
 * kafka-ingest): which tables, how changes are merged, batching, compaction and metrics. One
 * block of option rows and one parser, so the two commands cannot drift apart. */
#ifndef M2D_CLI_TARGET_ARGS_H
#define M2D_CLI_TARGET_ARGS_H

#include "cli/args.h"
#include "pipeline/stream_tables.h"

/* The tables and how changes are merged into them: also taken by load --format
 * kafka-connect-json, whose own --table row comes first. */
#define M2D_OPTS_TABLE_MODES                                                                                          \
  {"mode", "MODE", "mirror (the table equals the collection), changelog (one row per event) or both", "mirror", false}, \
  {"changelog-table", "PATH", "with --mode both: the change-log table", NULL, false},                                  \
  {"merge-strategy", "HOW",                                                                                            \
   "deletion-vectors (rows replaced are marked deleted: cost per batch does not grow with the table; "                 \
   "Spark, Databricks) or rewrite (copy-on-write: the files touched are rewritten; for readers without "              \
   "deletion-vector support such as delta-rs)",                                                                        \
   "deletion-vectors", false},                                                                                         \
  {"delete", "HOW", "hard (deleted documents leave the mirror) or soft (they stay, _deleted = true)", "hard", false},   \
  {"change-data-feed", NULL,                                                                                           \
   "write the mirror's change data (_change_data files, delta.enableChangeDataFeed) so that Databricks "              \
   "table_changes and Spark's readChangeFeed read its inserts, updates and deletes",                                   \
   NULL, false}

#define M2D_OPT_TABLE_TARGET(required)                                                                                \
  {"table", "PATH", "the mirror table (mirror and both modes), or the change log (changelog mode): a local path or an " M2D_URL_FORMS " URL", NULL, required}
#define M2D_OPTS_TABLE_TARGET M2D_OPT_TABLE_TARGET(true), M2D_OPTS_TABLE_TARGET_REST
/* Everything of the block but --table. */
#define M2D_OPTS_TABLE_TARGET_REST                                                                                    \
  M2D_OPTS_COMPRESSION, M2D_OPT_TARGET_FILE_SIZE,                                                                      \
  M2D_OPTS_TABLE_MODES,                                                                                                \
  {"max-batch-docs", "N", "events per commit at most", "1000", false},                                                 \
  {"max-latency", "MS", "commit a batch at the latest this long after its first event", "1000", false},                \
  M2D_OPT_STOP_WHEN_IDLE,                                                                                              \
  {"compact-every", "N",                                                                                               \
   "compact the tables every N batches, between batches (small files bin-packed, files with 30% or more "             \
   "rows deleted rewritten); 0: never (run 'mongo2delta optimize' yourself)",                                          \
   "50", false},                                                                                                       \
  {"metrics-port", "PORT",                                                                                             \
   "serve Prometheus metrics at http://127.0.0.1:PORT/metrics; 0 picks a free port and logs it", NULL, false}

/* The fields the options above fill (the pipeline's own struct, so that a command hands it on whole). */
typedef m2d_stream_tables_t m2d_table_target_args_t;

/* Parses M2D_OPTS_TABLE_MODES (and --table) into the tables, mirror/changelog and the merge
 * fields of *t, leaving the others alone. A usage error names the option. */
bool m2d_args_table_modes(const m2d_args_t *a, m2d_table_target_args_t *t, m2d_error_t *err);

/* Parses the block above; also aborts multipart uploads a crashed run left in the tables'
 * buckets. A usage error names the option. */
bool m2d_args_table_target(const m2d_args_t *a, m2d_table_target_args_t *t, m2d_error_t *err);

#endif
