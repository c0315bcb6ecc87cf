/* The per-file statistics of an add action (PROTOCOL.md "Per-file Statistics"), from what the
 * Parquet writer measured: {"numRecords", "minValues", "maxValues", "nullCount"}, nested like
 * the table's structs and keyed by physical column names. As Spark writes them:
 *   min/max for numbers, decimals, dates, timestamps and strings (not booleans, binary,
 *   arrays or maps); strings cut to their first 32 characters (the max then ends with
 *   U+10FFFF so it stays an upper bound); timestamps in milliseconds (min rounded down,
 *   max up); nullCount for every column outside arrays and maps. */
#ifndef M2D_DELTA_STATS_H
#define M2D_DELTA_STATS_H

#include "parquet/schema.h"
#include "parquet/writer.h"

#include <jansson.h>

/* Which columns get min, max and nullCount, as the table's configuration says (Spark's rules):
 * delta.dataSkippingStatsColumns, a comma-separated list of column names (`a.b` for a nested
 * one, a struct for all its fields, case-insensitive, backquotes for odd names), wins over
 * delta.dataSkippingNumIndexedCols, the first N columns in the file's order (a struct counts
 * its fields, an array or map one; -1: all; 32 when unset). */
typedef struct {
  int num_indexed;     /* < 0: all */
  const char *columns; /* NULL: by num_indexed; points into the configuration */
} delta_stats_spec_t;

#define DELTA_STATS_DEFAULT_INDEXED 32

/* The spec of a metaData configuration (NULL: the defaults); false with err set when
 * delta.dataSkippingNumIndexedCols is not an integer of -1 or more. */
bool delta_stats_spec(const json_t *configuration, delta_stats_spec_t *spec, m2d_error_t *err);

/* Returns the stats JSON text (caller frees), or NULL with err set; spec NULL: every column. */
char *delta_stats_json(const pq_schema_t *schema, const pq_write_result_t *written, const delta_stats_spec_t *spec,
                       m2d_error_t *err);

/* numRecords of an add action's stats (the file's physical rows), -1 when it has none. */
int64_t delta_stats_num_records(const json_t *add);

#endif
