#include "delta/scan.h"

#include "delta/dv.h"
#include "delta/features.h"
#include "parquet/json_rows.h"
#include "delta/widen.h"
#include "delta/colmap.h"
#include "parquet/reader.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef enum { CM_NONE, CM_NAME, CM_ID } cm_mode_t;


/* The file's node for a table field: by field id (mode id), physical name (mode name) or name. */
static pq_node_t *match(pq_node_t *group, json_t *field, cm_mode_t mode) {
  json_t *id = json_object_get(json_object_get(field, "metadata"), "delta.columnMapping.id");
  const char *want = mode == CM_NONE ? json_string_value(json_object_get(field, "name")) : delta_colmap_field_physical(field);
  for (int i = 0; i < group->nchildren; i++) {
    pq_node_t *c = group->children[i];
    if (mode == CM_ID && json_is_integer(id) && c->has_field_id && c->field_id == json_integer_value(id)) return c;
  }
  for (int i = 0; i < group->nchildren; i++)
    if (want && strcmp(group->children[i]->name, want) == 0) return group->children[i];
  for (int i = 0; i < group->nchildren && mode == CM_NONE; i++) /* Spark matches names case-insensitively */
    if (want && strcasecmp(group->children[i]->name, want) == 0) return group->children[i];
  return NULL;
}

static void rename_node(pq_node_t *n, const char *name) {
  if (strcmp(n->name, name) == 0) return;
  char *copy = strdup(name);
  if (!copy) return;
  free(n->name);
  n->name = copy;
}

/* Renames the file's nested fields to the table's logical names (below a matched node). */
static void rename_type(pq_node_t *n, json_t *type, cm_mode_t mode) {
  if (!json_is_object(type) || !n->is_group) return;
  const char *kind = json_string_value(json_object_get(type, "type"));
  if (kind && strcmp(kind, "struct") == 0) {
    size_t i;
    json_t *f;
    json_array_foreach(json_object_get(type, "fields"), i, f) {
      pq_node_t *c = match(n, f, mode);
      if (!c) {
        /* a nested field added after this file was written: null, as Spark reads it */
        char **nf = realloc(n->null_fields, (size_t)(n->nnull_fields + 1) * sizeof *nf);
        const char *name = json_string_value(json_object_get(f, "name"));
        if (nf && name && (nf[n->nnull_fields] = strdup(name))) n->nnull_fields++;
        if (nf) n->null_fields = nf;
        continue;
      }
      rename_node(c, json_string_value(json_object_get(f, "name")));
      rename_type(c, json_object_get(f, "type"), mode);
    }
  } else if (kind && strcmp(kind, "array") == 0 && n->nchildren == 1) {
    pq_node_t *rep = n->children[0];
    pq_node_t *elem = rep->is_group && rep->nchildren == 1 ? rep->children[0] : rep;
    rename_type(elem, json_object_get(type, "elementType"), mode);
  } else if (kind && strcmp(kind, "map") == 0 && n->nchildren == 1 && n->children[0]->nchildren == 2) {
    rename_type(n->children[0]->children[0], json_object_get(type, "keyType"), mode);
    rename_type(n->children[0]->children[1], json_object_get(type, "valueType"), mode);
  }
}

static void json_quote(m2d_buf_t *b, const char *s) {
  json_t *str = json_string(s);
  char *t = str ? json_dumps(str, JSON_ENCODE_ANY) : NULL;
  m2d_buf_append_str(b, t ? t : "null", NULL);
  free(t);
  json_decref(str);
}

/* A partition value (its string form in the log) in the JSON form, by the column's type. */
static void partition_literal(json_t *type, json_t *value, m2d_buf_t *out) {
  const char *s = json_string_value(value);
  const char *t = json_string_value(type);
  if (!s || !t || (!*s && strcmp(t, "string") != 0) || (!*s)) {
    m2d_buf_append_str(out, "null", NULL);
    return;
  }
  if (strcmp(t, "string") == 0 || strcmp(t, "date") == 0 || strncmp(t, "decimal", 7) == 0) {
    json_quote(out, s);
  } else if (strcmp(t, "timestamp") == 0 || strcmp(t, "timestamp_ntz") == 0) {
    /* "YYYY-MM-DD HH:MM:SS[.ffffff]" (or ISO-8601) -> the JSON form */
    char buf[64];
    int y, mo, d, h = 0, mi = 0, sec = 0, used = 0;
    long frac = 0;
    int fd = 0;
    if (sscanf(s, "%d-%d-%d%*[ T]%d:%d:%d%n", &y, &mo, &d, &h, &mi, &sec, &used) >= 3) {
      const char *p = s + used;
      if (*p == '.') {
        p++;
        while (*p >= '0' && *p <= '9' && fd < 6) frac = frac * 10 + (*p++ - '0'), fd++;
        while (fd < 6) frac *= 10, fd++;
      }
      snprintf(buf, sizeof buf, "\"%04d-%02d-%02dT%02d:%02d:%02d.%06ld%s\"", y, mo, d, h, mi, sec, frac,
               strcmp(t, "timestamp") == 0 ? "Z" : "");
      m2d_buf_append_str(out, buf, NULL);
    } else {
      json_quote(out, s);
    }
  } else if (strcmp(t, "boolean") == 0) {
    m2d_buf_append_str(out, strcasecmp(s, "true") == 0 ? "true" : "false", NULL);
  } else if (strcmp(t, "binary") == 0) {
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t n = strlen(s);
    m2d_buf_append_byte(out, '"', NULL);
    for (size_t i = 0; i < n; i += 3) {
      const uint8_t *p = (const uint8_t *)s;
      uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) | (i + 2 < n ? p[i + 2] : 0);
      char q[4] = {a[v >> 18 & 63], a[v >> 12 & 63], i + 1 < n ? a[v >> 6 & 63] : '=', i + 2 < n ? a[v & 63] : '='};
      m2d_buf_append(out, q, 4, NULL);
    }
    m2d_buf_append_byte(out, '"', NULL);
  } else if (strcmp(t, "double") == 0 || strcmp(t, "float") == 0) {
    if (strcmp(s, "NaN") == 0 || strcmp(s, "Infinity") == 0 || strcmp(s, "-Infinity") == 0) json_quote(out, s);
    else m2d_buf_append_str(out, s, NULL);
  } else {
    m2d_buf_append_str(out, s, NULL); /* integers */
  }
}

static bool wanted(const char *columns, const char *name) {
  if (!columns) return true;
  size_t n = strlen(name);
  for (const char *p = columns; p && *p;) {
    const char *comma = strchr(p, ',');
    size_t len = comma ? (size_t)(comma - p) : strlen(p);
    if (len == n && strncmp(p, name, n) == 0) return true;
    p = comma ? comma + 1 : NULL;
  }
  return false;
}

typedef struct {
  delta_row_fn fn;
  void *ud;
} plain_t;

static bool plain_row(const char *json, size_t len, size_t file, uint64_t row, void *ud) {
  (void)file, (void)row;
  plain_t *p = ud;
  return p->fn(json, len, p->ud);
}

bool delta_scan(m2d_store_t *store, const delta_snapshot_t *snap, const char *columns, int64_t limit, delta_row_fn fn,
                void *ud, m2d_error_t *err) {
  plain_t p = {fn, ud};
  return delta_scan_at(store, snap, columns, limit, plain_row, &p, err);
}

static bool scan(m2d_store_t *store, const delta_snapshot_t *snap, const char *columns, int64_t limit,
                 delta_row_at_fn fn, delta_batch_fn bfn, void *ud, m2d_error_t *err) {
  const char *mode_s = json_string_value(json_object_get(json_object_get(snap->metadata, "configuration"), "delta.columnMapping.mode"));
  cm_mode_t mode = !mode_s || strcmp(mode_s, "none") == 0 ? CM_NONE : strcmp(mode_s, "id") == 0 ? CM_ID : CM_NAME;
  if (!delta_features_check(snap->protocol, DELTA_USE_READ, NULL, err)) {
    m2d_error_prefix(err, "%s: ", store->root);
    return false;
  }
  json_t *schema = json_loads(json_string_value(json_object_get(snap->metadata, "schemaString")) ?: "", 0, NULL);
  json_t *fields = json_object_get(schema, "fields");
  json_t *parts = json_object_get(snap->metadata, "partitionColumns");
  if (!json_is_array(fields)) {
    json_decref(schema);
    if (!json_is_string(json_object_get(snap->metadata, "schemaString")))
      return m2d_error_set(err, M2D_ERR_FORMAT, 0, "%s: the table has no columns (its metaData has no schemaString)",
                           store->root);
    return m2d_error_set(err, M2D_ERR_FORMAT, 0, "%s: the table's schemaString is not readable", store->root);
  }
  if (columns) { /* every asked column must exist */
    const char *p = columns;
    while (p && *p) {
      const char *comma = strchr(p, ',');
      size_t len = comma ? (size_t)(comma - p) : strlen(p);
      bool found = false;
      size_t i;
      json_t *f;
      json_array_foreach(fields, i, f) {
        const char *nm = json_string_value(json_object_get(f, "name"));
        found |= nm && strlen(nm) == len && strncmp(nm, p, len) == 0;
      }
      if (!found) {
        json_decref(schema);
        return m2d_error_set(err, M2D_ERR_USAGE, 0, "--columns: the table has no column '%.*s'; see 'mongo2delta inspect'",
                             (int)len, p);
      }
      p = comma ? comma + 1 : NULL;
    }
  }
  size_t nf = json_array_size(fields);
  pq_json_field_t *out_fields = calloc(nf + 1, sizeof *out_fields);
  delta_scan_field_t *bfields = calloc(nf + 1, sizeof *bfields);
  m2d_buf_t *literals = calloc(nf + 1, sizeof *literals);
  m2d_buf_t line;
  m2d_buf_init(&line, (size_t)1 << 31);
  int64_t printed = 0;
  bool ok = true, stop = false;
  size_t fi;
  json_t *add;
  json_array_foreach(snap->files, fi, add) {
    if (!ok || stop) break;
    char key[4096];
    delta_path_decode(json_string_value(json_object_get(add, "path")) ?: "", key, sizeof key);
    const char *k = key;
    if (strncmp(k, "file://", 7) == 0) k += 7;
    else if (strncmp(k, "file:", 5) == 0) k += 5;
    m2d_store_t *fstore = store;
    m2d_store_t *abs = NULL;
    const char *inside = m2d_store_relative_key(store, k);
    if (inside) { /* an absolute URL into the table itself (other writers write them) */
      k = inside;
    } else if (strstr(k, "://")) { /* another location: a store of its own */
      const char *slash = strrchr(k, '/');
      char parent[4096];
      snprintf(parent, sizeof parent, "%.*s", (int)(slash - k), k);
      abs = m2d_store_open(parent, err);
      fstore = abs;
      k = slash + 1;
    } else if (k[0] == '/') { /* an absolute path: its own store at / */
      abs = m2d_store_local_new("/", err);
      fstore = abs;
      k++;
    }
    delta_dv_t *dv = NULL;
    json_t *dvd = json_object_get(add, "deletionVector");
    if (json_is_object(dvd) && !(dv = delta_dv_load(store, dvd, err))) {
      m2d_error_prefix(err, "%s: deletion vector of %s: ", store->root, key);
      m2d_store_destroy(abs);
      ok = false;
      break;
    }
    m2d_source_t *src = fstore ? fstore->open(fstore, k, err) : NULL;
    pq_reader_t *r = src ? pq_reader_open(src, err) : NULL;
    if (!r) {
      m2d_error_prefix(err, "%s: data file %s: ", store->root, key);
      delta_dv_free(dv);
      m2d_source_destroy(src);
      m2d_store_destroy(abs);
      ok = false;
      break;
    }
    /* the reader's schema, renamed to the table's names (the reader is ours alone) */
    pq_schema_t *fs = (pq_schema_t *)pq_reader_schema(r);
    bool *sel = calloc((size_t)fs->nleaves + 1, sizeof *sel);
    delta_widen_t *widen = NULL; /* columns whose type was widened after this file */
    int nout = 0;
    json_t *f;
    size_t i;
    json_array_foreach(fields, i, f) {
      const char *name = json_string_value(json_object_get(f, "name"));
      if (!wanted(columns, name)) continue;
      out_fields[nout].name = name;
      out_fields[nout].node = NULL;
      m2d_buf_init(&literals[nout], 1 << 20);
      bool is_part = false;
      size_t pi;
      json_t *pc;
      json_array_foreach(parts, pi, pc) is_part |= json_is_string(pc) && strcmp(json_string_value(pc), name) == 0;
      if (is_part) {
        json_t *pv = json_object_get(json_object_get(add, "partitionValues"), delta_colmap_field_physical(f));
        if (!pv) pv = json_object_get(json_object_get(add, "partitionValues"), name);
        partition_literal(json_object_get(f, "type"), pv, &literals[nout]);
      } else {
        pq_node_t *node = match(fs->root, f, mode);
        if (node) {
          rename_node(node, name);
          rename_type(node, json_object_get(f, "type"), mode);
          if (ok && !delta_widen_plan_add(&widen, node, json_object_get(f, "type"), err)) ok = false;
          for (int l = 0; l < fs->nleaves; l++)
            for (const pq_node_t *p = fs->leaves[l]; p; p = p->parent)
              if (p == node) sel[l] = true;
          out_fields[nout].node = node;
        } else {
          m2d_buf_append_str(&literals[nout], "null", NULL); /* a column added after this file */
        }
      }
      m2d_buf_terminate(&literals[nout], NULL);
      out_fields[nout].literal = (const char *)literals[nout].data;
      bfields[nout] = (delta_scan_field_t){name, f, out_fields[nout].node, out_fields[nout].literal};
      nout++;
    }
    uint64_t row = 0;
    bool failed_here = false;
    m2d_column_t *cols = calloc((size_t)fs->nleaves + 1, sizeof *cols);
    for (int g = 0; ok && !stop && g < pq_reader_num_row_groups(r); g++) {
      delta_widen_restore(widen);
      for (int l = 0; ok && l < fs->nleaves; l++)
        if (sel[l]) ok = pq_reader_read_column(r, g, l, &cols[l], err);
      ok = ok && delta_widen_apply(widen, cols, err);
      if (bfn) { /* the typed form: the row group as it is */
        delta_batch_t b = {fi, g, row, pq_reader_row_group_rows(r, g), fs, cols, sel, bfields, nout, dv};
        m2d_error_t be = {0};
        if (ok && !bfn(&b, ud, &be)) {
          stop = true;
          if (be.message[0]) { /* the caller's failure, reported as it is */
            if (err) *err = be;
            failed_here = true;
          }
        }
        row += (uint64_t)b.nrows;
        for (int l = 0; l < fs->nleaves; l++) m2d_column_free(&cols[l]);
        continue;
      }
      pq_json_rows_t *rows = ok ? pq_json_rows_new(fs, cols, sel, err) : NULL;
      ok = ok && rows;
      if (rows) pq_json_rows_int96_as_micros(rows, true);
      int64_t nrows = pq_reader_row_group_rows(r, g);
      for (int64_t k2 = 0; ok && !stop && k2 < nrows; k2++, row++) {
        bool end = false;
        m2d_buf_reset(&line);
        if (!pq_json_rows_next_fields(rows, out_fields, nout, &line, &end, err)) {
          ok = end ? m2d_error_set(err, M2D_ERR_FORMAT, 0, "%s: row group %d ends before its %lld rows", key, g,
                                   (long long)nrows)
                   : false;
          break;
        }
        if (dv && delta_dv_contains(dv, row)) continue; /* deleted */
        if (limit >= 0 && printed >= limit) {
          stop = true;
          break;
        }
        if (!fn((const char *)line.data, line.len, fi, row, ud)) stop = true;
        printed++;
      }
      pq_json_rows_destroy(rows);
      for (int l = 0; l < fs->nleaves; l++) m2d_column_free(&cols[l]);
    }
    if (!ok) m2d_error_prefix(err, "%s: ", store->root);
    if (failed_here) ok = false;
    free(cols);
    free(sel);
    delta_widen_free(widen);
    for (int o = 0; o < nout; o++) m2d_buf_free(&literals[o]);
    pq_reader_close(r);
    m2d_source_destroy(src);
    delta_dv_free(dv);
    m2d_store_destroy(abs);
    if (limit >= 0 && printed >= limit) stop = true;
  }
  m2d_buf_free(&line);
  free(out_fields);
  free(bfields);
  free(literals);
  json_decref(schema);
  return ok;
}

bool delta_scan_at(m2d_store_t *store, const delta_snapshot_t *snap, const char *columns, int64_t limit,
                   delta_row_at_fn fn, void *ud, m2d_error_t *err) {
  return scan(store, snap, columns, limit, fn, NULL, ud, err);
}

bool delta_scan_batches(m2d_store_t *store, const delta_snapshot_t *snap, const char *columns, delta_batch_fn fn,
                        void *ud, m2d_error_t *err) {
  return scan(store, snap, columns, -1, NULL, fn, ud, err);
}
