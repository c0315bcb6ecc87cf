#include "delta/stats.h"

#include "parquet/json_rows.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define STRING_PREFIX 32 /* Spark's delta.dataSkippingStringPrefixLength default */

typedef enum { SEC_MIN, SEC_MAX, SEC_NULLS } section_t;

static bool is_list_or_map(const pq_node_t *n) {
  return n->is_group && (n->logical.kind == PQ_LT_LIST || n->logical.kind == PQ_LT_MAP ||
                         (n->has_converted && (n->converted == PQ_CT_LIST || n->converted == PQ_CT_MAP ||
                                               n->converted == PQ_CT_MAP_KEY_VALUE)));
}

/* Appends s as a JSON string; false when s is not valid UTF-8 (nothing appended then). */
static bool json_text(m2d_buf_t *o, const char *s, size_t n, bool *valid, m2d_error_t *err) {
  json_t *j = json_stringn(s, n);
  *valid = j != NULL;
  if (!j) return true;
  char *t = json_dumps(j, JSON_ENCODE_ANY);
  json_decref(j);
  bool ok = t && m2d_buf_append_str(o, t, err);
  free(t);
  return ok;
}

static bool is_string_leaf(const pq_node_t *l) {
  return l->type == PQ_BYTE_ARRAY &&
         (l->logical.kind == PQ_LT_STRING || (l->has_converted && l->converted == PQ_CT_UTF8));
}

static bool is_decimal_leaf(const pq_node_t *l) {
  return l->logical.kind == PQ_LT_DECIMAL || (l->has_converted && l->converted == PQ_CT_DECIMAL);
}

/* Bytes of the first max_chars UTF-8 characters of s. */
static size_t utf8_prefix(const uint8_t *s, size_t n, size_t max_chars, bool *cut) {
  size_t i = 0, chars = 0;
  while (i < n && chars < max_chars) {
    i++;
    while (i < n && (s[i] & 0xC0) == 0x80) i++;
    chars++;
  }
  *cut = i < n;
  return i;
}

/* The value of one bound, in the form Spark's stats use; *have false when this column gets
 * no bound (type not collected, NaN/infinite, out of the printable range). */
static bool bound_value(const pq_node_t *l, const pq_stats_t *st, bool is_max, m2d_buf_t *o, bool *have,
                        m2d_error_t *err) {
  const uint8_t *v = is_max ? st->max : st->min;
  size_t len = is_max ? st->max_len : st->min_len;
  *have = false;
  if (!st->has_minmax) return true;
  if (is_string_leaf(l)) {
    bool cut;
    size_t keep = utf8_prefix(v, len, STRING_PREFIX, &cut);
    m2d_buf_t t;
    m2d_buf_init(&t, len + 8);
    bool ok = m2d_buf_append(&t, v, keep, err);
    if (ok && cut && is_max) ok = m2d_buf_append(&t, "\xF4\x8F\xBF\xBF", 4, err); /* U+10FFFF */
    if (ok) ok = json_text(o, (const char *)t.data, t.len, have, err);
    m2d_buf_free(&t);
    return ok;
  }
  if (l->type == PQ_BOOLEAN || l->type == PQ_INT96 || l->type == PQ_BYTE_ARRAY) return true;
  if (l->type == PQ_FIXED_LEN_BYTE_ARRAY && !is_decimal_leaf(l)) return true;
  m2d_buf_t t;
  m2d_buf_init(&t, 256);
  bool ok = true;
  if (l->type == PQ_INT64 && l->logical.kind == PQ_LT_TIMESTAMP && l->logical.unit == PQ_UNIT_MICROS) {
    /* milliseconds, rounded outward so the bounds still hold */
    int64_t us;
    memcpy(&us, v, 8);
    int64_t r = us % 1000;
    if (r < 0) r += 1000;
    if (r) us = is_max ? us - r + 1000 : us - r;
    ok = pq_json_value(l, (const uint8_t *)&us, 8, &t, err) && m2d_buf_terminate(&t, err);
    const char *s = ok ? (const char *)t.data : "";
    const char *dot = strchr(s, '.');
    /* "YYYY-MM-DDTHH:MM:SS.ffffff[Z]": 4-digit years only */
    if (ok && dot && dot - s == 20 && strlen(dot) >= 8) {
      ok = m2d_buf_append(o, s, (size_t)(dot - s) + 4, err) && m2d_buf_append_str(o, dot + 7, err);
      *have = true;
    }
  } else if (l->type == PQ_INT64 && l->logical.kind == PQ_LT_TIMESTAMP) {
    /* other units are not what Delta writes: no bound rather than a wrong one */
  } else {
    ok = pq_json_value(l, v, len, &t, err) && m2d_buf_terminate(&t, err);
    const char *s = ok ? (const char *)t.data : "";
    if (ok && is_decimal_leaf(l) && s[0] == '"') {
      /* decimals are JSON numbers in stats, exact as text */
      ok = m2d_buf_append(o, s + 1, strlen(s) - 2, err);
      *have = true;
    } else if (ok && s[0] == '"' && (l->logical.kind == PQ_LT_DATE)) {
      ok = m2d_buf_append_str(o, s, err);
      *have = true;
    } else if (ok && s[0] != '"') { /* numbers; NaN and infinities are quoted: left out */
      ok = m2d_buf_append_str(o, s, err);
      *have = true;
    }
  }
  m2d_buf_free(&t);
  return ok;
}

/* Appends the section's object for group g ("{...}"), or nothing (*emitted false) when no
 * column below it has a value for this section. */
static bool section(const pq_node_t *g, const pq_write_result_t *w, const bool *sel, section_t sec, m2d_buf_t *o,
                    bool *emitted, m2d_error_t *err) {
  *emitted = false;
  size_t start = o->len;
  bool ok = m2d_buf_append_byte(o, '{', err);
  int n = 0;
  for (int i = 0; ok && i < g->nchildren; i++) {
    const pq_node_t *c = g->children[i];
    if (is_list_or_map(c) || c->repetition == PQ_REPEATED) continue;
    if (!c->is_group && !sel[c->leaf_index]) continue;
    size_t mark = o->len;
    bool key_valid;
    ok = (n == 0 || m2d_buf_append_byte(o, ',', err)) && json_text(o, c->name, strlen(c->name), &key_valid, err) &&
         m2d_buf_append_byte(o, ':', err);
    if (!ok) break;
    bool have = false;
    if (key_valid && c->is_group) {
      ok = section(c, w, sel, sec, o, &have, err);
    } else if (key_valid) {
      const pq_stats_t *st = &w->leaf_stats[c->leaf_index];
      if (sec == SEC_NULLS) ok = m2d_buf_appendf(o, err, "%lld", (long long)st->null_count), have = true;
      else ok = bound_value(c, st, sec == SEC_MAX, o, &have, err);
    }
    if (have) n++;
    else o->len = mark;
  }
  if (ok && n > 0) {
    ok = m2d_buf_append_byte(o, '}', err);
    *emitted = true;
  } else {
    o->len = start;
  }
  return ok;
}

/* --- which columns ----------------------------------------------------------------------- */

bool delta_stats_spec(const json_t *configuration, delta_stats_spec_t *spec, m2d_error_t *err) {
  spec->num_indexed = DELTA_STATS_DEFAULT_INDEXED;
  spec->columns = json_string_value(json_object_get(configuration, "delta.dataSkippingStatsColumns"));
  const char *n = json_string_value(json_object_get(configuration, "delta.dataSkippingNumIndexedCols"));
  if (!n) return true;
  char *end;
  errno = 0;
  long v = strtol(n, &end, 10);
  while (*end == ' ') end++;
  if (errno || end == n || *end || v < -1 || v > 1000000)
    return m2d_error_set(err, M2D_ERR_FORMAT, 0,
                         "the table's delta.dataSkippingNumIndexedCols is '%s', not a number of columns (-1 for "
                         "all): set it to one with ALTER TABLE ... SET TBLPROPERTIES",
                         n);
  spec->num_indexed = (int)v;
  return true;
}

static void select_all(const pq_node_t *n, bool *sel) {
  if (!n->is_group) {
    sel[n->leaf_index] = true;
    return;
  }
  for (int i = 0; i < n->nchildren; i++) select_all(n->children[i], sel);
}

/* The first *budget columns below g (Spark's truncateSchema): a struct's fields count one
 * each, any other column (a leaf, an array, a map) one. */
static void select_first(const pq_node_t *g, int *budget, bool *sel) {
  for (int i = 0; i < g->nchildren && *budget > 0; i++) {
    const pq_node_t *c = g->children[i];
    if (c->is_group && !is_list_or_map(c) && c->repetition != PQ_REPEATED) {
      select_first(c, budget, sel);
    } else {
      if (!c->is_group) sel[c->leaf_index] = true;
      (*budget)--;
    }
  }
}

/* The next name of a column path at *p (`a`, `` `a.b` ``, spaces around), lower-cased into
 * out; *p moves past it and past a '.' after it. False at the end of the path (',' or NUL). */
static bool path_part(const char **p, char *out, size_t n) {
  const char *s = *p;
  while (*s == ' ' || *s == '\t') s++;
  if (!*s || *s == ',') {
    *p = s;
    return false;
  }
  size_t k = 0;
  if (*s == '`') {
    for (s++; *s && !(*s == '`' && s[1] != '`'); s++) {
      if (*s == '`') s++; /* `` is one backquote */
      if (k + 1 < n) out[k++] = (char)tolower((unsigned char)*s);
    }
    if (*s == '`') s++;
  } else {
    for (; *s && *s != '.' && *s != ','; s++)
      if (k + 1 < n) out[k++] = (char)tolower((unsigned char)*s);
    while (k && (out[k - 1] == ' ' || out[k - 1] == '\t')) k--;
  }
  out[k] = '\0';
  while (*s == ' ' || *s == '\t') s++;
  if (*s == '.') s++;
  *p = s;
  return true;
}

static bool same_name(const char *lower, const char *name) {
  for (; *lower && *name; lower++, name++)
    if (*lower != (char)tolower((unsigned char)*name)) return false;
  return !*lower && !*name;
}

/* Marks the columns named in list (delta.dataSkippingStatsColumns); a name the file does not
 * hold selects nothing (the table may have it in files still to come). */
static void select_named(const pq_node_t *root, const char *list, bool *sel) {
  const char *p = list;
  char part[1024];
  while (*p) {
    const pq_node_t *n = root;
    bool found = true;
    while (path_part(&p, part, sizeof part)) {
      const pq_node_t *next = NULL;
      for (int i = 0; found && n->is_group && i < n->nchildren; i++)
        if (same_name(part, n->children[i]->name)) next = n->children[i];
      if (!next || is_list_or_map(next)) found = false;
      else n = next;
    }
    if (found && n != root) select_all(n, sel);
    if (*p == ',') p++;
  }
}

char *delta_stats_json(const pq_schema_t *schema, const pq_write_result_t *w, const delta_stats_spec_t *spec,
                       m2d_error_t *err) {
  if (w->nleaves != schema->nleaves) {
    m2d_error_set(err, M2D_ERR_INTERNAL, 0, "statistics for %d columns, schema has %d", w->nleaves, schema->nleaves);
    return NULL;
  }
  bool *sel = calloc((size_t)schema->nleaves + 1, sizeof *sel);
  if (!sel) {
    m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory");
    return NULL;
  }
  if (!spec || (!spec->columns && spec->num_indexed < 0)) {
    select_all(schema->root, sel);
  } else if (spec->columns) {
    select_named(schema->root, spec->columns, sel);
  } else {
    int budget = spec->num_indexed;
    select_first(schema->root, &budget, sel);
  }
  m2d_buf_t o;
  m2d_buf_init(&o, (size_t)64 << 20);
  bool ok = m2d_buf_appendf(&o, err, "{\"numRecords\":%lld", (long long)w->num_rows);
  static const char *names[] = {"minValues", "maxValues", "nullCount"};
  for (int s = 0; ok && s < 3; s++) {
    size_t mark = o.len;
    bool emitted;
    ok = m2d_buf_appendf(&o, err, ",\"%s\":", names[s]) &&
         section(schema->root, w, sel, (section_t)s, &o, &emitted, err);
    if (ok && !emitted) o.len = mark;
  }
  free(sel);
  ok = ok && m2d_buf_append_byte(&o, '}', err) && m2d_buf_terminate(&o, err);
  char *out = ok ? strdup((const char *)o.data) : NULL;
  m2d_buf_free(&o);
  if (ok && !out) m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory");
  return out;
}

int64_t delta_stats_num_records(const json_t *add) {
  const char *st = json_string_value(json_object_get(add, "stats"));
  json_t *s = st ? json_loads(st, 0, NULL) : NULL;
  json_t *n = json_object_get(s, "numRecords");
  int64_t r = json_is_integer(n) ? (int64_t)json_integer_value(n) : -1;
  json_decref(s);
  return r;
}
