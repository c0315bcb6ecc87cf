/* Record assembly's cursors over one row group's decoded leaf columns (Dremel levels): where
 * each leaf stands in its levels and in its values. Shared by parquet/json_rows (rows as JSON
 * text) and pipeline/columns_bson (rows as BSON), which walk the schema the same way and only
 * write different output. */
#ifndef M2D_PARQUET_DREMEL_H
#define M2D_PARQUET_DREMEL_H

#include "columnar/column.h"
#include "core/error.h"
#include "parquet/schema.h"

typedef struct {
  const m2d_column_t *cols; /* per leaf, borrowed */
  const bool *selected;     /* per leaf, borrowed; NULL: every leaf */
  size_t *slot, *val;       /* per leaf: the next level slot, the next value */
} pq_dremel_t;

/* Allocates the per-leaf cursors (at zero) for nleaves leaves; false with err set when out of memory. */
bool pq_dremel_init(pq_dremel_t *d, const m2d_column_t *cols, const bool *selected, int nleaves, m2d_error_t *err);
void pq_dremel_free(pq_dremel_t *d);

static inline bool pq_dremel_leaf_selected(const pq_dremel_t *d, const pq_node_t *leaf) {
  return !d->selected || d->selected[leaf->leaf_index];
}

/* Whether any leaf under n is selected. */
bool pq_dremel_node_selected(const pq_dremel_t *d, const pq_node_t *n);

/* A selected leaf under n, whose levels speak for n's position; NULL when none is. */
const pq_node_t *pq_dremel_first_leaf(const pq_dremel_t *d, const pq_node_t *n);

/* The definition level at leaf's cursor (0 for a required column). */
static inline int16_t pq_dremel_def_at(const pq_dremel_t *d, const pq_node_t *leaf) {
  const m2d_column_t *c = &d->cols[leaf->leaf_index];
  return c->max_def ? c->def[d->slot[leaf->leaf_index]] : 0;
}

/* Whether leaf has a level slot left. */
static inline bool pq_dremel_has_slot(const pq_dremel_t *d, const pq_node_t *leaf) {
  return d->slot[leaf->leaf_index] < d->cols[leaf->leaf_index].nlevels;
}

/* Consumes one slot of every selected leaf under n (n null or empty here); false when a column
 * has no slot left (columns of one row group that disagree: a corrupt file). */
bool pq_dremel_skip(pq_dremel_t *d, const pq_node_t *n, m2d_error_t *err);

/* Consumes leaf's next (non-null) value: its bytes, or its fixed-width value and width. */
bool pq_dremel_take(pq_dremel_t *d, const pq_node_t *leaf, const uint8_t **v, size_t *len, m2d_error_t *err);

/* LogicalTypes.md: a MAP's key field is required; an error names the map otherwise. */
bool pq_check_maps(const pq_node_t *n, m2d_error_t *err);

#endif
