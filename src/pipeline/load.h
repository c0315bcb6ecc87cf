/* mongo2delta load: MongoDB export files (mongodump .bson/.bson.gz, mongoexport JSON lines)
 * into a Delta table, one commit per input file, exactly once: each commit carries a txn
 * action whose appId names the file ("mongo2delta-load:<absolute path>"), so a rerun on the
 * same folder takes only the files it has not taken, and two loads of one file cannot both
 * commit it. A file is read twice: once to learn its schema from every document, once to
 * write it.
 *
 * With format M2D_LOAD_KAFKA_CONNECT_JSON the inputs are what a Kafka Connect S3 sink (or its
 * GCS and Azure siblings) wrote in its JSON format: files named
 * <topic>+<partition>+<startOffset>.json[.gz], one record value per line, applied to a mirror
 * and/or change log in offset order per partition (pipeline/load_connect.c). */
#ifndef M2D_PIPELINE_LOAD_H
#define M2D_PIPELINE_LOAD_H

#include "core/error.h"
#include "parquet/format.h"
#include "pipeline/change_record.h"

#include <jansson.h>
#include <signal.h>
#include <stdint.h>

typedef enum {
  M2D_LOAD_EXPORT = 0,         /* mongodump / mongoexport files, by their names */
  M2D_LOAD_KAFKA_CONNECT_JSON, /* a Kafka Connect S3 sink's JSON files */
} m2d_load_format_t;

typedef struct {
  m2d_load_format_t format;
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
  /* M2D_LOAD_KAFKA_CONNECT_JSON: table is the mirror (mirror) or the change log (changelog
   * alone); both: table the mirror, changelog_table the log */
  bool mirror, changelog;
  const char *changelog_table;
  bool rewrite, soft_delete, change_data_feed;
  m2d_record_format_t record_format;
  bool allow_offset_gaps; /* a start offset past the previous file's end is passed over, not an error */
  int max_batch;          /* records per commit at most, whole files (0: 10000) */
  const char *name;       /* in the txn appIds, to tell two sinks' same-named topics apart (or NULL) */
} m2d_load_options_t;

typedef struct {
  int files_taken, files_skipped, files_changed;
  int64_t rounds;
  bool interrupted;
  int64_t documents, rejected, rescued, data_files, bytes;
  int64_t version; /* the table's version after the load */
  json_t *rescued_fields; /* path -> values rescued; the caller json_decref()s it */
  /* M2D_LOAD_KAFKA_CONNECT_JSON */
  int64_t records, records_skipped, upserts, deletes, changelog_rows, commits;
  int partitions, gaps; /* gaps: partitions held at a missing file (--watch) */
  int64_t changelog_version;
} m2d_load_summary_t;

/* The Kafka Connect sink files into the tables (m2d_load_run calls it for that format). */
bool m2d_load_connect_run(const m2d_load_options_t *opts, m2d_load_summary_t *sum, m2d_error_t *err);

/* Shared by the formats: a copy of an object store file in a local temporary file (*tmp gets its
 * path, with the object's extension; the caller unlinks it), and a pause that ends early on *stop
 * (false then). */
bool m2d_load_download(const char *url, char *tmp, size_t tmpsz, m2d_error_t *err);
bool m2d_load_sleep_ms(int64_t ms, volatile sig_atomic_t *stop);

bool m2d_load_run(const m2d_load_options_t *opts, m2d_load_summary_t *sum, m2d_error_t *err);

#endif
