/* Min / max / null count of a column, in the sort order its logical type defines
 * (parquet.thrift ColumnOrder TYPE_ORDER): signed for signed integers, unsigned for unsigned
 * integers, IEEE order without NaN for floats (min -0.0, max +0.0 for zeros), unsigned
 * lexicographic bytes for strings and binary, signed big-endian for decimals. */
#ifndef M2D_PARQUET_STATS_H
#define M2D_PARQUET_STATS_H

#include "columnar/column.h"
#include "parquet/schema.h"

#include <stdint.h>

typedef struct {
  bool has_minmax;      /* false when no non-null, non-NaN value was seen (or the order is undefined) */
  uint8_t *min, *max;   /* PLAIN bytes of the value (no length prefix); owned */
  size_t min_len, max_len;
  size_t min_cap, max_cap;
  int64_t null_count;
  int64_t num_values;   /* non-null values */
} pq_stats_t;

void pq_stats_init(pq_stats_t *s);
void pq_stats_free(pq_stats_t *s);
void pq_stats_reset(pq_stats_t *s);

/* Folds values [from, to) of column c (leaf node gives the order) into s. */
bool pq_stats_update(pq_stats_t *s, const pq_node_t *leaf, const m2d_column_t *c, size_t from, size_t to,
                     m2d_error_t *err);
/* Folds one non-null PLAIN value (no length prefix) into min/max; NaN is left out. Does not
 * count it in num_values. */
bool pq_stats_add_value(pq_stats_t *s, const pq_node_t *leaf, const uint8_t *v, size_t len, m2d_error_t *err);
/* Folds another stats of the same column into s. */
bool pq_stats_merge(pq_stats_t *s, const pq_node_t *leaf, const pq_stats_t *other, m2d_error_t *err);
/* Compares two PLAIN values in the order of leaf's type. */
int pq_stats_compare(const pq_node_t *leaf, const uint8_t *a, size_t alen, const uint8_t *b, size_t blen);
/* False for orders Parquet leaves undefined (INT96, intervals). */
bool pq_stats_order_defined(const pq_node_t *leaf);

#endif
