#include "parquet/dremel.h"

#include <stdlib.h>

bool pq_dremel_init(pq_dremel_t *d, const m2d_column_t *cols, const bool *selected, int nleaves, m2d_error_t *err) {
  size_t n = (size_t)(nleaves > 0 ? nleaves : 1);
  *d = (pq_dremel_t){.cols = cols, .selected = selected, .slot = calloc(n, sizeof *d->slot),
                     .val = calloc(n, sizeof *d->val)};
  if (d->slot && d->val) return true;
  pq_dremel_free(d);
  return m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory");
}

void pq_dremel_free(pq_dremel_t *d) {
  free(d->slot);
  free(d->val);
  d->slot = d->val = NULL;
}

bool pq_dremel_node_selected(const pq_dremel_t *d, const pq_node_t *n) {
  if (!n->is_group) return pq_dremel_leaf_selected(d, n);
  for (int i = 0; i < n->nchildren; i++)
    if (pq_dremel_node_selected(d, n->children[i])) return true;
  return false;
}

const pq_node_t *pq_dremel_first_leaf(const pq_dremel_t *d, const pq_node_t *n) {
  if (!n->is_group) return pq_dremel_leaf_selected(d, n) ? n : NULL;
  for (int i = 0; i < n->nchildren; i++) {
    const pq_node_t *l = pq_dremel_first_leaf(d, n->children[i]);
    if (l) return l;
  }
  return NULL;
}

bool pq_dremel_skip(pq_dremel_t *d, const pq_node_t *n, m2d_error_t *err) {
  if (!n->is_group) {
    if (!pq_dremel_leaf_selected(d, n)) return true;
    const m2d_column_t *c = &d->cols[n->leaf_index];
    if (d->slot[n->leaf_index] >= c->nlevels)
      return m2d_error_set(err, M2D_ERR_FORMAT, 0, "corrupt column: levels end inside a row");
    size_t s = d->slot[n->leaf_index]++;
    if (c->max_def == 0 || c->def[s] == c->max_def) d->val[n->leaf_index]++; /* cannot happen for nulls */
    return true;
  }
  for (int i = 0; i < n->nchildren; i++)
    if (!pq_dremel_skip(d, n->children[i], err)) return false;
  return true;
}

bool pq_dremel_take(pq_dremel_t *d, const pq_node_t *leaf, const uint8_t **v, size_t *len, m2d_error_t *err) {
  const m2d_column_t *c = &d->cols[leaf->leaf_index];
  size_t vi = d->val[leaf->leaf_index]++;
  d->slot[leaf->leaf_index]++;
  if (vi >= c->nvalues) return m2d_error_set(err, M2D_ERR_FORMAT, 0, "corrupt column: fewer values than its levels define");
  *v = c->type == M2D_COL_BYTES ? m2d_column_bytes_at(c, vi, len) : m2d_column_fixed_at(c, vi);
  if (c->type != M2D_COL_BYTES) *len = m2d_col_type_width(c->type, c->fixed_len);
  return true;
}

bool pq_check_maps(const pq_node_t *n, m2d_error_t *err) {
  bool map = n->logical.kind == PQ_LT_MAP || (n->has_converted && n->converted == PQ_CT_MAP);
  if (map && n->nchildren == 1 && n->children[0]->is_group && n->children[0]->nchildren >= 1 &&
      n->children[0]->children[0]->repetition != PQ_REQUIRED)
    return m2d_error_set(err, M2D_ERR_FORMAT, 0,
                         "invalid schema: the keys of map '%s' are not required (LogicalTypes.md: MAP keys must be "
                         "required)",
                         n->name);
  for (int i = 0; i < n->nchildren; i++)
    if (!pq_check_maps(n->children[i], err)) return false;
  return true;
}
