#include "delta/widen.h"

#include <stdlib.h>
#include <string.h>

typedef enum { TO_INT64, TO_DOUBLE, DATE_TO_TIMESTAMP_NTZ, TO_DECIMAL } conversion_t;

/* A leaf's declaration: what the reader decodes by, and what the table reads it as. */
typedef struct {
  pq_type_t type;
  int32_t type_length;
  pq_logical_type_t logical;
  bool has_converted;
  pq_converted_t converted;
  int32_t scale, precision;
} decl_t;

typedef struct {
  pq_node_t *leaf;
  conversion_t conv;
  decl_t file, table;
  int32_t from_scale; /* TO_DECIMAL: the file's scale (0 for an integer) */
} widened_t;

struct delta_widen {
  widened_t *v;
  int n, cap;
};

static decl_t decl_of(const pq_node_t *l) {
  return (decl_t){l->type, l->type_length, l->logical, l->has_converted, l->converted, l->scale, l->precision};
}

static void declare(pq_node_t *l, const decl_t *d) {
  l->type = d->type;
  l->type_length = d->type_length;
  l->logical = d->logical;
  l->has_converted = d->has_converted;
  l->converted = d->converted;
  l->scale = d->scale;
  l->precision = d->precision;
}

/* A signed integer of at most 32 bits (INT32 without an annotation other than a signed width). */
static bool is_int32(const pq_node_t *l) {
  if (l->type != PQ_INT32) return false;
  if (l->logical.kind == PQ_LT_INTEGER) return l->logical.is_signed;
  if (l->logical.kind != PQ_LT_NONE) return false;
  return !l->has_converted || l->converted == PQ_CT_INT_8 || l->converted == PQ_CT_INT_16 ||
         l->converted == PQ_CT_INT_32;
}

static bool is_int64(const pq_node_t *l) {
  if (l->type != PQ_INT64) return false;
  if (l->logical.kind == PQ_LT_INTEGER) return l->logical.is_signed;
  return l->logical.kind == PQ_LT_NONE && (!l->has_converted || l->converted == PQ_CT_INT_64);
}

static bool is_decimal(const pq_node_t *l, int32_t *scale, int32_t *precision) {
  if (l->logical.kind == PQ_LT_DECIMAL) {
    *scale = l->logical.scale;
    *precision = l->logical.precision;
    return true;
  }
  if (l->has_converted && l->converted == PQ_CT_DECIMAL) {
    *scale = l->scale;
    *precision = l->precision;
    return true;
  }
  return false;
}

static bool is_date(const pq_node_t *l) {
  return l->type == PQ_INT32 &&
         (l->logical.kind == PQ_LT_DATE || (l->logical.kind == PQ_LT_NONE && l->has_converted && l->converted == PQ_CT_DATE));
}

static bool add(delta_widen_t **plan, pq_node_t *leaf, conversion_t conv, decl_t table, int32_t from_scale,
                m2d_error_t *err) {
  if (!*plan && !(*plan = calloc(1, sizeof **plan))) return m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory");
  delta_widen_t *p = *plan;
  if (p->n == p->cap) {
    int cap = p->cap ? p->cap * 2 : 4;
    widened_t *v = realloc(p->v, (size_t)cap * sizeof *v);
    if (!v) return m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory");
    p->v = v;
    p->cap = cap;
  }
  p->v[p->n++] = (widened_t){leaf, conv, decl_of(leaf), table, from_scale};
  return true;
}

static bool leaf_plan(delta_widen_t **plan, pq_node_t *l, const char *t, m2d_error_t *err) {
  decl_t d = {0};
  int32_t s0 = 0, p0 = 0, p = 0, s = 0;
  if (!strcmp(t, "long") && is_int32(l)) {
    d = (decl_t){.type = PQ_INT64, .logical = {.kind = PQ_LT_INTEGER, .bit_width = 64, .is_signed = true}};
    return add(plan, l, TO_INT64, d, 0, err);
  }
  if (!strcmp(t, "double") && (l->type == PQ_FLOAT || is_int32(l))) {
    d = (decl_t){.type = PQ_DOUBLE};
    return add(plan, l, TO_DOUBLE, d, 0, err);
  }
  if (!strcmp(t, "timestamp_ntz") && is_date(l)) {
    d = (decl_t){.type = PQ_INT64,
                 .logical = {.kind = PQ_LT_TIMESTAMP, .is_adjusted_to_utc = false, .unit = PQ_UNIT_MICROS}};
    return add(plan, l, DATE_TO_TIMESTAMP_NTZ, d, 0, err);
  }
  if (!strncmp(t, "decimal(", 8) && sscanf(t, "decimal(%d,%d)", &p, &s) == 2) {
    bool from_dec = is_decimal(l, &s0, &p0);
    if (!from_dec && !is_int32(l) && !is_int64(l)) return true;
    if (from_dec && s0 == s && p0 == p) return true;
    if (from_dec && (l->type == PQ_BYTE_ARRAY || l->type == PQ_FIXED_LEN_BYTE_ARRAY) && l->type_length > 16)
      return true; /* wider than any decimal: not ours to convert */
    d = (decl_t){.type = PQ_FIXED_LEN_BYTE_ARRAY, .type_length = 16,
                 .logical = {.kind = PQ_LT_DECIMAL, .scale = s, .precision = p},
                 .has_converted = true, .converted = PQ_CT_DECIMAL, .scale = s, .precision = p};
    return add(plan, l, TO_DECIMAL, d, from_dec ? s0 : 0, err);
  }
  return true;
}

bool delta_widen_plan_add(delta_widen_t **plan, pq_node_t *n, const json_t *type, m2d_error_t *err) {
  if (!n) return true;
  if (json_is_string(type)) return n->is_group ? true : leaf_plan(plan, n, json_string_value(type), err);
  if (!json_is_object(type) || !n->is_group) return true;
  const char *kind = json_string_value(json_object_get(type, "type"));
  if (kind && !strcmp(kind, "struct")) {
    size_t i;
    json_t *f;
    json_array_foreach(json_object_get(type, "fields"), i, f) {
      const char *name = json_string_value(json_object_get(f, "name"));
      for (int c = 0; name && c < n->nchildren; c++) /* the file's names are the table's by now */
        if (!strcmp(n->children[c]->name, name) && !delta_widen_plan_add(plan, n->children[c], json_object_get(f, "type"), err))
          return false;
    }
  } else if (kind && !strcmp(kind, "array") && n->nchildren == 1) {
    pq_node_t *rep = n->children[0];
    pq_node_t *elem = rep->is_group && rep->nchildren == 1 ? rep->children[0] : rep;
    return delta_widen_plan_add(plan, elem, json_object_get(type, "elementType"), err);
  } else if (kind && !strcmp(kind, "map") && n->nchildren == 1 && n->children[0]->nchildren == 2) {
    return delta_widen_plan_add(plan, n->children[0]->children[0], json_object_get(type, "keyType"), err) &&
           delta_widen_plan_add(plan, n->children[0]->children[1], json_object_get(type, "valueType"), err);
  }
  return true;
}

void delta_widen_restore(delta_widen_t *plan) {
  for (int i = 0; plan && i < plan->n; i++) declare(plan->v[i].leaf, &plan->v[i].file);
}

/* A big-endian two's complement integer of up to 16 bytes. */
static __int128 be_signed(const uint8_t *b, size_t n) {
  __int128 x = n && (b[0] & 0x80) ? -1 : 0;
  for (size_t i = 0; i < n; i++) x = (__int128)((unsigned __int128)x << 8 | b[i]);
  return x;
}

static bool convert(const widened_t *w, m2d_column_t *c, m2d_error_t *err) {
  size_t n = c->nvalues;
  size_t width = w->conv == TO_DECIMAL ? 16 : 8;
  uint8_t *out = malloc(n * width + 1);
  if (!out) return m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory");
  __int128 scale_by = 1;
  for (int32_t k = w->from_scale; k < w->table.scale; k++) scale_by *= 10;
  for (size_t i = 0; i < n; i++) {
    const uint8_t *v = NULL;
    size_t len = 0;
    if (c->type == M2D_COL_BYTES) v = m2d_column_bytes_at(c, i, &len);
    else v = m2d_column_fixed_at(c, i);
    if (w->conv == TO_INT64) {
      int32_t x;
      memcpy(&x, v, 4);
      int64_t y = x;
      memcpy(out + i * 8, &y, 8);
    } else if (w->conv == TO_DOUBLE) {
      double y;
      if (c->type == M2D_COL_FLOAT) {
        float f;
        memcpy(&f, v, 4);
        y = f;
      } else {
        int32_t x;
        memcpy(&x, v, 4);
        y = x;
      }
      memcpy(out + i * 8, &y, 8);
    } else if (w->conv == DATE_TO_TIMESTAMP_NTZ) {
      int32_t days;
      memcpy(&days, v, 4);
      int64_t micros = (int64_t)days * 86400LL * 1000000LL;
      memcpy(out + i * 8, &micros, 8);
    } else {
      __int128 x;
      if (c->type == M2D_COL_INT32) {
        int32_t y;
        memcpy(&y, v, 4);
        x = y;
      } else if (c->type == M2D_COL_INT64) {
        int64_t y;
        memcpy(&y, v, 8);
        x = y;
      } else {
        size_t l = c->type == M2D_COL_BYTES ? len : (size_t)c->fixed_len;
        if (l > 16) {
          free(out);
          return m2d_error_set(err, M2D_ERR_FORMAT, 0, "a decimal of %zu bytes cannot be widened", l);
        }
        x = be_signed(v, l);
      }
      x *= scale_by; /* the table's precision holds it: the widening rules guarantee so */
      unsigned __int128 u = (unsigned __int128)x;
      for (int b = 15; b >= 0; b--, u >>= 8) out[i * 16 + (size_t)b] = (uint8_t)u;
    }
  }
  free(c->values);
  c->values = out;
  c->value_bytes = n * width;
  c->value_cap = n * width + 1;
  c->type = w->conv == TO_DECIMAL ? M2D_COL_FIXED : w->conv == TO_DOUBLE ? M2D_COL_DOUBLE : M2D_COL_INT64;
  c->fixed_len = w->conv == TO_DECIMAL ? 16 : 0;
  return true;
}

bool delta_widen_apply(delta_widen_t *plan, m2d_column_t *cols, m2d_error_t *err) {
  for (int i = 0; plan && i < plan->n; i++) {
    const widened_t *w = &plan->v[i];
    if (!convert(w, &cols[w->leaf->leaf_index], err)) return false;
    declare(w->leaf, &w->table);
  }
  return true;
}

void delta_widen_free(delta_widen_t *plan) {
  if (!plan) return;
  free(plan->v);
  free(plan);
}
