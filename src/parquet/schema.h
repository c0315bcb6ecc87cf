/* A Parquet schema as a tree, with the definition and repetition levels of every leaf
 * computed. Built by hand (writer), from a Delta schema (later), or from a file footer's
 * flattened SchemaElement list (reader). Nodes are owned by their schema. */
#ifndef M2D_PARQUET_SCHEMA_H
#define M2D_PARQUET_SCHEMA_H

#include "columnar/column.h"
#include "core/error.h"
#include "parquet/format.h"

typedef struct pq_node pq_node_t;
struct pq_node {
  char *name;
  pq_repetition_t repetition;
  bool is_group;
  /* leaves */
  pq_type_t type;
  int32_t type_length; /* FIXED_LEN_BYTE_ARRAY */
  /* annotations */
  pq_logical_type_t logical;
  bool has_converted; pq_converted_t converted; /* legacy annotation, kept as read or derived */
  int32_t scale, precision;                     /* legacy decimal (with converted DECIMAL) */
  bool has_field_id; int32_t field_id;
  /* groups */
  pq_node_t **children;
  int nchildren;
  /* structs: names record assembly prints as null after the children (a reader's table has
   * nested fields this file predates); owned */
  char **null_fields;
  int nnull_fields;
  /* computed by pq_schema_finish */
  pq_node_t *parent;
  int16_t max_def, max_rep; /* levels at this node */
  int leaf_index;           /* -1 for groups */
};

typedef struct {
  pq_node_t *root; /* a group named "schema" (the file's root) */
  pq_node_t **leaves;
  int nleaves;
} pq_schema_t;

/* Node constructors (name is copied). Return NULL only when out of memory. */
pq_node_t *pq_node_group(const char *name, pq_repetition_t rep);
pq_node_t *pq_node_leaf(const char *name, pq_repetition_t rep, pq_type_t type);
/* Adds child to group (ownership passes to group). */
bool pq_node_add(pq_node_t *group, pq_node_t *child, m2d_error_t *err);
void pq_node_free(pq_node_t *n); /* recursive; accepts NULL */

/* Common shapes, built from the nodes above (3-level LIST and MAP of LogicalTypes.md). */
pq_node_t *pq_node_list(const char *name, pq_repetition_t rep, pq_node_t *element /* named "element" */);
pq_node_t *pq_node_map(const char *name, pq_repetition_t rep, pq_node_t *key /* "key", required */,
                       pq_node_t *value /* "value" */);

/* Takes ownership of root, computes levels and the leaf list. */
bool pq_schema_init(pq_schema_t *s, pq_node_t *root, m2d_error_t *err);
void pq_schema_free(pq_schema_t *s);

/* The column vector type that holds a leaf's values (fixed length: leaf->type_length). */
m2d_col_type_t pq_leaf_col_type(const pq_node_t *leaf);

/* Dotted path of a node from below the root ("a.list.element"), written to out. */
void pq_node_path(const pq_node_t *n, char *out, size_t outsz);

/* Flattened form for a footer (schema_to_elements.c, writer) and back
 * (schema_from_elements.c, reader). */
bool pq_schema_to_elements(const pq_schema_t *s, pq_schema_element_t **out, int32_t *n, m2d_error_t *err);
bool pq_schema_from_elements(const pq_schema_element_t *elems, int32_t n, pq_schema_t *out, m2d_error_t *err);

#endif
