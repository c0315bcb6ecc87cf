/* The footer's flattened SchemaElement list -> pq_schema_t, validated. */
#include "parquet/schema.h"

#include <stdlib.h>
#include <string.h>

static pq_node_t *build(const pq_schema_element_t *e, int32_t n, int32_t *pos, int depth, m2d_error_t *err) {
  if (*pos >= n) return m2d_error_set(err, M2D_ERR_FORMAT, 0, "corrupt schema: a group has more children than elements"), NULL;
  if (depth > 64) return m2d_error_set(err, M2D_ERR_FORMAT, 0, "corrupt schema: nested deeper than 64 levels"), NULL;
  const pq_schema_element_t *el = &e[(*pos)++];
  pq_repetition_t rep = el->has_repetition ? el->repetition : PQ_REQUIRED;
  bool group = el->has_num_children && (el->num_children > 0 || !el->has_type);
  pq_node_t *node = group ? pq_node_group(el->name, rep) : pq_node_leaf(el->name, rep, el->type);
  if (!node) return m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory"), NULL;
  if (!group && !el->has_type) {
    pq_node_free(node);
    return m2d_error_set(err, M2D_ERR_FORMAT, 0, "corrupt schema: column '%s' has neither a type nor children", el->name), NULL;
  }
  if (!group && el->type == PQ_FIXED_LEN_BYTE_ARRAY) {
    if (!el->has_type_length || el->type_length <= 0 || el->type_length > (1 << 20)) {
      pq_node_free(node);
      return m2d_error_set(err, M2D_ERR_FORMAT, 0, "corrupt schema: column '%s' has an invalid fixed length", el->name), NULL;
    }
    node->type_length = el->type_length;
  }
  node->logical = el->logical_type;
  if (el->has_converted_type) {
    node->has_converted = true;
    node->converted = el->converted_type;
  }
  node->scale = el->has_scale ? el->scale : 0;
  node->precision = el->has_precision ? el->precision : 0;
  if (el->has_field_id) {
    node->has_field_id = true;
    node->field_id = el->field_id;
  }
  if (group) {
    if (el->num_children > n - *pos) {
      pq_node_free(node);
      return m2d_error_set(err, M2D_ERR_FORMAT, 0, "corrupt schema: '%s' claims %d children, only %d elements remain",
                           el->name, el->num_children, n - *pos), NULL;
    }
    for (int32_t i = 0; i < el->num_children; i++) {
      pq_node_t *child = build(e, n, pos, depth + 1, err);
      if (!child || !pq_node_add(node, child, err)) {
        pq_node_free(node);
        return NULL;
      }
    }
  }
  return node;
}

bool pq_schema_from_elements(const pq_schema_element_t *elems, int32_t n, pq_schema_t *out, m2d_error_t *err) {
  memset(out, 0, sizeof *out);
  if (n < 1) return m2d_error_set(err, M2D_ERR_FORMAT, 0, "corrupt schema: no elements");
  int32_t pos = 0;
  pq_node_t *root = build(elems, n, &pos, 0, err);
  if (!root) return false;
  if (!root->is_group) {
    pq_node_free(root);
    return m2d_error_set(err, M2D_ERR_FORMAT, 0, "corrupt schema: the root is not a group");
  }
  if (pos != n) {
    pq_node_free(root);
    return m2d_error_set(err, M2D_ERR_FORMAT, 0, "corrupt schema: %d elements are not part of the tree", n - pos);
  }
  if (!pq_schema_init(out, root, err)) {
    pq_schema_free(out);
    return false;
  }
  return true;
}
