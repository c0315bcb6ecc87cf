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
} m2d_load_options_t;

typedef struct {
  int files_taken, files_skipped;
  int64_t documents, rejected, rescued, data_files, bytes;
  int64_t version; /* the table's version after the load */
  json_t *rescued_fields; /* path -> values rescued; the caller json_decref()s it */
} m2d_load_summary_t;

bool m2d_load_run(const m2d_load_options_t *opts, m2d_load_summary_t *sum, m2d_error_t *err);

#endif
