/* The Parquet reader: footer, schema, row groups, and column chunks decoded page by page into
 * column vectors. Memory stays bounded by one column chunk of one row group (pages are read
 * and decoded one at a time). Everything read from the file is checked before it is used. */
#ifndef M2D_PARQUET_READER_H
#define M2D_PARQUET_READER_H

#include "columnar/column.h"
#include "parquet/format.h"
#include "parquet/schema.h"
#include "storage/io.h"

typedef struct pq_reader pq_reader_t;

/* src is borrowed and must outlive the reader. Errors name the source. */
pq_reader_t *pq_reader_open(m2d_source_t *src, m2d_error_t *err);
void pq_reader_close(pq_reader_t *r); /* accepts NULL */

const pq_file_metadata_t *pq_reader_metadata(const pq_reader_t *r);
const pq_schema_t *pq_reader_schema(const pq_reader_t *r);
int pq_reader_num_row_groups(const pq_reader_t *r);
int64_t pq_reader_row_group_rows(const pq_reader_t *r, int rg);

/* Decodes leaf `leaf` of row group `rg` into out (initialized here; free with
 * m2d_column_free). */
bool pq_reader_read_column(pq_reader_t *r, int rg, int leaf, m2d_column_t *out, m2d_error_t *err);

#endif
