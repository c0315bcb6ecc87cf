/* mongo2delta load: MongoDB export files (mongodump .bson/.bson.gz, mongoexport JSON lines)
 * into a Delta table, one commit per input file, exactly once: each commit carries a txn
 * action whose appId names the file ("mongo2delta-load:<absolute path>"), so a rerun on the
 * same folder takes only the files it has not taken, and two loads of one file cannot both
 * commit it. A file is read twice: once to learn its schema from every document, once to
 * write it. */
#ifndef M2D_PIPELINE_LOAD_H
#define M2D_PIPELINE_LOAD_H

#include "core/error.h"
#include "parquet/format.h"

#include <jansson.h>
#include <signal.h>
#include <stdint.h>

typedef struct {
  const char *const *inputs; /* files or folders (walked recursively) */
  int ninputs;
  const char *table;
  pq_codec_t codec;
  int level;
  uint64_t target_file_size;
  const char *partition_by;
  const char *rejects; /* a JSON-lines file for bad records, or NULL: a bad record fails its file */
  /* --watch: list the inputs again every interval_ms and load what is new, until *stop */
  bool watch;
  int64_t interval_ms;
  int max_files_per_batch;   /* files loaded per listing at most (0: all) */
  int full_listing_every;    /* every Nth listing is whole; the others start after the last key taken */
  int64_t max_rounds;        /* stop after this many listings (0: until stopped; tests) */
  volatile sig_atomic_t *stop;
} m2d_load_options_t;

typedef struct {
  int files_taken, files_skipped, files_changed;
  int64_t rounds;
  bool interrupted;
  int64_t documents, rejected, rescued, data_files, bytes;
  int64_t version; /* the table's version after the load */
  json_t *rescued_fields; /* path -> values rescued; the caller json_decref()s it */
} m2d_load_summary_t;

bool m2d_load_run(const m2d_load_options_t *opts, m2d_load_summary_t *sum, m2d_error_t *err);

#endif
