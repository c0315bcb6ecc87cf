/* pq_schema_t -> the footer's flattened SchemaElement list (depth-first, root first). */
#include "parquet/schema.h"

#include <stdlib.h>

/* The legacy converted type that matches a logical type, where one exists (older readers). */
static void legacy_annotation(const pq_node_t *n, pq_schema_element_t *e) {
  if (n->has_converted) {
    e->has_converted_type = true;
    e->converted_type = n->converted;
  }
  const pq_logical_type_t *lt = &n->logical;
  switch (lt->kind) {
  case PQ_LT_STRING: e->has_converted_type = true, e->converted_type = PQ_CT_UTF8; break;
  case PQ_LT_LIST: e->has_converted_type = true, e->converted_type = PQ_CT_LIST; break;
  case PQ_LT_MAP: e->has_converted_type = true, e->converted_type = PQ_CT_MAP; break;
  case PQ_LT_DATE: e->has_converted_type = true, e->converted_type = PQ_CT_DATE; break;
  case PQ_LT_JSON: e->has_converted_type = true, e->converted_type = PQ_CT_JSON; break;
  case PQ_LT_DECIMAL:
    e->has_converted_type = true, e->converted_type = PQ_CT_DECIMAL;
    e->has_scale = e->has_precision = true;
    e->scale = lt->scale;
    e->precision = lt->precision;
    break;
  case PQ_LT_TIMESTAMP:
    /* the legacy TIMESTAMP_* annotations mean UTC-adjusted; none exists for local time */
    if (lt->is_adjusted_to_utc && lt->unit == PQ_UNIT_MILLIS) e->has_converted_type = true, e->converted_type = PQ_CT_TIMESTAMP_MILLIS;
    if (lt->is_adjusted_to_utc && lt->unit == PQ_UNIT_MICROS) e->has_converted_type = true, e->converted_type = PQ_CT_TIMESTAMP_MICROS;
    break;
  case PQ_LT_INTEGER: {
    static const pq_converted_t s[] = {PQ_CT_INT_8, PQ_CT_INT_16, PQ_CT_INT_32, PQ_CT_INT_64};
    static const pq_converted_t u[] = {PQ_CT_UINT_8, PQ_CT_UINT_16, PQ_CT_UINT_32, PQ_CT_UINT_64};
    int i = lt->bit_width == 8 ? 0 : lt->bit_width == 16 ? 1 : lt->bit_width == 32 ? 2 : 3;
    e->has_converted_type = true;
    e->converted_type = lt->is_signed ? s[i] : u[i];
    break;
  }
  default: break;
  }
}

static void flatten(const pq_node_t *n, bool is_root, pq_schema_element_t *out, int32_t *k) {
  pq_schema_element_t *e = &out[(*k)++];
  e->name = n->name;
  if (!is_root) {
    e->has_repetition = true;
    e->repetition = n->repetition;
  }
  if (n->is_group) {
    e->has_num_children = true;
    e->num_children = n->nchildren;
  } else {
    e->has_type = true;
    e->type = n->type;
    if (n->type == PQ_FIXED_LEN_BYTE_ARRAY) {
      e->has_type_length = true;
      e->type_length = n->type_length;
    }
  }
  if (n->has_field_id) {
    e->has_field_id = true;
    e->field_id = n->field_id;
  }
  e->logical_type = n->logical;
  legacy_annotation(n, e);
  for (int i = 0; i < n->nchildren; i++) flatten(n->children[i], false, out, k);
}

static int32_t count_nodes(const pq_node_t *n) {
  int32_t c = 1;
  for (int i = 0; i < n->nchildren; i++) c += count_nodes(n->children[i]);
  return c;
}

bool pq_schema_to_elements(const pq_schema_t *s, pq_schema_element_t **out, int32_t *n, m2d_error_t *err) {
  int32_t total = count_nodes(s->root);
  pq_schema_element_t *e = calloc((size_t)total, sizeof *e);
  if (!e) return m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory");
  int32_t k = 0;
  flatten(s->root, true, e, &k);
  *out = e; /* names point into the schema's nodes */
  *n = total;
  return true;
}
