/* The tables a stream of changes is applied to, and how: the options sync, kafka-ingest and
 * load --format kafka-connect-json share (cli/target_args parses them once). */
#ifndef M2D_PIPELINE_STREAM_TABLES_H
#define M2D_PIPELINE_STREAM_TABLES_H

#include "parquet/format.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct {
  const char *table;           /* the mirror (mirror, both) */
  const char *changelog_table; /* the change log (changelog, both) */
  bool mirror, changelog;
  bool rewrite, soft_delete, change_data_feed;
  pq_codec_t codec;
  int level;
  uint64_t target_file_size;
  int max_batch;        /* events per commit, default 1000 */
  int max_latency_ms;   /* default 1000 */
  int stop_when_idle_s; /* 0: run until stopped */
  int compact_every;    /* batches between compactions, 0: never */
  int metrics_port;     /* -1: none, 0: any free port */
} m2d_stream_tables_t;

#endif
