/* Column mapping for writers (PROTOCOL.md "Column Mapping", "Writer Requirements"): on a table
 * whose delta.columnMapping.mode is name or id, every struct field (nested ones too) has a
 * physical name and a 32-bit id in its metadata; data files name their columns by the physical
 * names and carry the ids as Parquet field ids; partition values and statistics use physical
 * names; a new column gets a fresh id (after delta.columnMapping.maxColumnId) and a physical
 * name of its own ("col-<uuid>"). Readers: delta/scan. */
#ifndef M2D_DELTA_COLMAP_H
#define M2D_DELTA_COLMAP_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

/* Whether the metaData action's configuration turns column mapping on (name or id). */
bool delta_colmap_on(const json_t *metadata);
/* delta.columnMapping.maxColumnId of the metaData action (0 when absent). */
int64_t delta_colmap_max_id(const json_t *metadata);
/* Gives every struct field of schema (a schemaString's parsed JSON, or any type in it) that has
 * no id an id (++*max_id) and a physical name, also inside arrays and maps. Returns whether any
 * field got one. */
bool delta_colmap_assign(json_t *type, int64_t *max_id);
/* A struct field's physical name (its name when it has none). */
const char *delta_colmap_field_physical(const json_t *field);
/* The physical name of the top-level field name of schema (the name itself when it has none). */
const char *delta_colmap_physical_name(const json_t *schema, const char *name);

#endif
