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

/* Returns the stats JSON text (caller frees), or NULL with err set. */
/* numRecords of an add action's stats (the file's physical rows), -1 when it has none. */
int64_t delta_stats_num_records(const json_t *add);
char *delta_stats_json(const pq_schema_t *schema, const pq_write_result_t *written, m2d_error_t *err);

#endif
