/* libFuzzer: a whole Parquet file in memory: footer, schema, every column of every row
 * group, and the rows assembled to JSON. */
#include "columnar/column.h"
#include "parquet/json_rows.h"
#include "parquet/reader.h"
#include "storage/io.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  m2d_error_t err;
  m2d_source_t *src = m2d_mem_source_new(data, size, "fuzz.parquet");
  pq_reader_t *r = pq_reader_open(src, &err);
  if (r) {
    const pq_schema_t *s = pq_reader_schema(r);
    m2d_column_t *cols = calloc((size_t)s->nleaves + 1, sizeof *cols);
    for (int g = 0; g < pq_reader_num_row_groups(r) && g < 4; g++) {
      bool ok = true;
      int i = 0;
      for (; i < s->nleaves && ok; i++) ok = pq_reader_read_column(r, g, i, &cols[i], &err);
      if (ok) {
        pq_json_rows_t *rows = pq_json_rows_new(s, cols, NULL, &err);
        m2d_buf_t line;
        m2d_buf_init(&line, 1 << 24);
        bool end = false;
        for (int k = 0; rows && k < 10000; k++) {
          m2d_buf_reset(&line);
          if (!pq_json_rows_next(rows, &line, &end, &err)) break;
        }
        m2d_buf_free(&line);
        pq_json_rows_destroy(rows);
      }
      for (int k = 0; k < i; k++) m2d_column_free(&cols[k]);
    }
    free(cols);
    pq_reader_close(r);
  }
  m2d_source_destroy(src);
  return 0;
}
