/* The Parquet writer: column vectors in, a Parquet file out through an m2d_sink_t.
 *   data pages v1 of about page_size bytes (cut at row boundaries), RLE levels,
 *   RLE_DICTIONARY with a fall back to PLAIN when the dictionary passes its bound,
 *   row groups cut by size (memory stays bounded by about one row group),
 *   statistics per column chunk and column_orders, field ids, key-value metadata. */
#ifndef M2D_PARQUET_WRITER_H
#define M2D_PARQUET_WRITER_H

#include "columnar/column.h"
#include "parquet/schema.h"
#include "parquet/stats.h"
#include "storage/io.h"

typedef struct {
  pq_codec_t codec;              /* default snappy */
  int level;                     /* zstd / gzip level, 0: codec default */
  bool no_dictionary;            /* PLAIN only */
  size_t dictionary_max_bytes;   /* default 1 MiB: past it, PLAIN for the rest of the chunk */
  size_t page_size;              /* default 1 MiB */
  size_t row_group_size;         /* default 128 MiB */
  const pq_key_value_t *key_value_metadata;
  int32_t num_key_value_metadata;
} pq_writer_options_t;

typedef struct {
  uint64_t file_size;
  int64_t num_rows;
  int32_t num_row_groups;
  int nleaves;
  pq_stats_t *leaf_stats; /* per leaf, over the whole file; owned, free with pq_write_result_free */
} pq_write_result_t;

typedef struct pq_writer pq_writer_t;

/* schema is borrowed. The sink is taken over in every case: finished by pq_writer_close,
 * aborted by pq_writer_destroy or when pq_writer_new fails. opts may be NULL. */
pq_writer_t *pq_writer_new(const pq_schema_t *schema, m2d_sink_t *sink, const pq_writer_options_t *opts,
                           m2d_error_t *err);

/* Appends rows: cols[i] is leaf i of the schema (same levels), all holding the same rows. */
bool pq_writer_write(pq_writer_t *w, const m2d_column_t *cols, m2d_error_t *err);

/* Bytes buffered for the current row group (for callers that cut files by size). */
size_t pq_writer_buffered(const pq_writer_t *w);
uint64_t pq_writer_bytes_written(const pq_writer_t *w);

/* Writes the rest and the footer, finishes the sink, fills result (may be NULL). The writer
 * is freed either way. */
bool pq_writer_close(pq_writer_t *w, pq_write_result_t *result, m2d_error_t *err);

/* Abandons the file (the sink is aborted). Accepts NULL. */
void pq_writer_destroy(pq_writer_t *w);

void pq_write_result_free(pq_write_result_t *r);

#endif
