#include "parquet/schema.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static pq_node_t *node_new(const char *name, pq_repetition_t rep, bool group) {
  pq_node_t *n = calloc(1, sizeof *n);
  if (!n) return NULL;
  n->name = strdup(name);
  if (!n->name) {
    free(n);
    return NULL;
  }
  n->repetition = rep;
  n->is_group = group;
  n->leaf_index = -1;
  return n;
}

pq_node_t *pq_node_group(const char *name, pq_repetition_t rep) { return node_new(name, rep, true); }

pq_node_t *pq_node_leaf(const char *name, pq_repetition_t rep, pq_type_t type) {
  pq_node_t *n = node_new(name, rep, false);
  if (n) n->type = type;
  return n;
}

bool pq_node_add(pq_node_t *group, pq_node_t *child, m2d_error_t *err) {
  if (!child) return m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory building a schema");
  pq_node_t **c = realloc(group->children, (size_t)(group->nchildren + 1) * sizeof *c);
  if (!c) {
    pq_node_free(child);
    return m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory building a schema");
  }
  group->children = c;
  c[group->nchildren++] = child;
  child->parent = group;
  return true;
}

void pq_node_free(pq_node_t *n) {
  if (!n) return;
  for (int i = 0; i < n->nchildren; i++) pq_node_free(n->children[i]);
  free(n->children);
  for (int i = 0; i < n->nnull_fields; i++) free(n->null_fields[i]);
  free(n->null_fields);
  free(n->name);
  free(n);
}

pq_node_t *pq_node_list(const char *name, pq_repetition_t rep, pq_node_t *element) {
  pq_node_t *outer = pq_node_group(name, rep);
  pq_node_t *list = pq_node_group("list", PQ_REPEATED);
  if (!outer || !list || !element || !pq_node_add(list, element, NULL) || !pq_node_add(outer, list, NULL)) {
    pq_node_free(outer);
    return NULL;
  }
  outer->logical.kind = PQ_LT_LIST;
  outer->has_converted = true;
  outer->converted = PQ_CT_LIST;
  return outer;
}

pq_node_t *pq_node_map(const char *name, pq_repetition_t rep, pq_node_t *key, pq_node_t *value) {
  pq_node_t *outer = pq_node_group(name, rep);
  pq_node_t *kv = pq_node_group("key_value", PQ_REPEATED);
  if (!outer || !kv || !key || !pq_node_add(kv, key, NULL) || (value && !pq_node_add(kv, value, NULL)) ||
      !pq_node_add(outer, kv, NULL)) {
    pq_node_free(outer);
    return NULL;
  }
  outer->logical.kind = PQ_LT_MAP;
  outer->has_converted = true;
  outer->converted = PQ_CT_MAP;
  return outer;
}

static bool count_leaves(pq_node_t *n, int16_t def, int16_t rep, pq_schema_t *s, int depth, m2d_error_t *err) {
  if (depth > 64) return m2d_error_set(err, M2D_ERR_FORMAT, 0, "schema nested deeper than 64 levels");
  if (n != s->root) {
    if (n->repetition == PQ_OPTIONAL) def++;
    else if (n->repetition == PQ_REPEATED) def++, rep++;
  }
  n->max_def = def;
  n->max_rep = rep;
  if (!n->is_group) {
    pq_node_t **l = realloc(s->leaves, (size_t)(s->nleaves + 1) * sizeof *l);
    if (!l) return m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory");
    s->leaves = l;
    n->leaf_index = s->nleaves;
    l[s->nleaves++] = n;
    return true;
  }
  for (int i = 0; i < n->nchildren; i++) {
    n->children[i]->parent = n;
    if (!count_leaves(n->children[i], def, rep, s, depth + 1, err)) return false;
  }
  return true;
}

bool pq_schema_init(pq_schema_t *s, pq_node_t *root, m2d_error_t *err) {
  memset(s, 0, sizeof *s);
  s->root = root;
  if (!root || !root->is_group) return m2d_error_set(err, M2D_ERR_INTERNAL, 0, "schema root must be a group");
  root->parent = NULL;
  return count_leaves(root, 0, 0, s, 0, err);
}

void pq_schema_free(pq_schema_t *s) {
  if (!s) return;
  pq_node_free(s->root);
  free(s->leaves);
  memset(s, 0, sizeof *s);
}

void pq_node_path(const pq_node_t *n, char *out, size_t outsz) {
  const pq_node_t *chain[80];
  int depth = 0;
  for (const pq_node_t *p = n; p && p->parent && depth < 80; p = p->parent) chain[depth++] = p;
  size_t o = 0;
  out[0] = '\0';
  for (int i = depth - 1; i >= 0; i--) {
    int w = snprintf(out + o, o < outsz ? outsz - o : 0, "%s%s", i == depth - 1 ? "" : ".", chain[i]->name);
    if (w < 0) break;
    o += (size_t)w;
    if (o >= outsz) break;
  }
}

m2d_col_type_t pq_leaf_col_type(const pq_node_t *leaf) {
  switch (leaf->type) {
  case PQ_BOOLEAN: return M2D_COL_BOOL;
  case PQ_INT32: return M2D_COL_INT32;
  case PQ_INT64: return M2D_COL_INT64;
  case PQ_INT96: return M2D_COL_INT96;
  case PQ_FLOAT: return M2D_COL_FLOAT;
  case PQ_DOUBLE: return M2D_COL_DOUBLE;
  case PQ_BYTE_ARRAY: return M2D_COL_BYTES;
  default: return M2D_COL_FIXED;
  }
}
