/* mongo2delta parquet schema / parquet dump: look inside one Parquet file. */
#include "cli/commands.h"
#include "parquet/compress.h"
#include "parquet/json_rows.h"
#include "parquet/reader.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *type_name(pq_type_t t) {
  static const char *names[] = {"boolean", "int32", "int64", "int96", "float", "double", "binary", "fixed_len_byte_array"};
  return (unsigned)t < 8 ? names[t] : "unknown";
}

static void annotation(const pq_node_t *n, char *out, size_t sz) {
  const pq_logical_type_t *lt = &n->logical;
  static const char *units[] = {"", "MILLIS", "MICROS", "NANOS"};
  switch (lt->kind) {
  case PQ_LT_STRING: snprintf(out, sz, "STRING"); return;
  case PQ_LT_MAP: snprintf(out, sz, "MAP"); return;
  case PQ_LT_LIST: snprintf(out, sz, "LIST"); return;
  case PQ_LT_ENUM: snprintf(out, sz, "ENUM"); return;
  case PQ_LT_DECIMAL: snprintf(out, sz, "DECIMAL(%d,%d)", lt->precision, lt->scale); return;
  case PQ_LT_DATE: snprintf(out, sz, "DATE"); return;
  case PQ_LT_TIME: snprintf(out, sz, "TIME(%s,%s)", units[lt->unit & 3], lt->is_adjusted_to_utc ? "UTC" : "local"); return;
  case PQ_LT_TIMESTAMP:
    snprintf(out, sz, "TIMESTAMP(%s,%s)", units[lt->unit & 3], lt->is_adjusted_to_utc ? "UTC" : "local");
    return;
  case PQ_LT_INTEGER: snprintf(out, sz, "INTEGER(%d,%s)", lt->bit_width, lt->is_signed ? "signed" : "unsigned"); return;
  case PQ_LT_JSON: snprintf(out, sz, "JSON"); return;
  case PQ_LT_BSON: snprintf(out, sz, "BSON"); return;
  case PQ_LT_UUID: snprintf(out, sz, "UUID"); return;
  case PQ_LT_FLOAT16: snprintf(out, sz, "FLOAT16"); return;
  case PQ_LT_UNKNOWN: snprintf(out, sz, "UNKNOWN"); return;
  default: break;
  }
  static const char *conv[] = {"UTF8", "MAP", "MAP_KEY_VALUE", "LIST", "ENUM", "DECIMAL", "DATE", "TIME_MILLIS",
                               "TIME_MICROS", "TIMESTAMP_MILLIS", "TIMESTAMP_MICROS", "UINT_8", "UINT_16", "UINT_32",
                               "UINT_64", "INT_8", "INT_16", "INT_32", "INT_64", "JSON", "BSON", "INTERVAL"};
  if (n->has_converted && (unsigned)n->converted < sizeof conv / sizeof conv[0]) {
    if (n->converted == PQ_CT_DECIMAL) snprintf(out, sz, "DECIMAL(%d,%d)", n->precision, n->scale);
    else snprintf(out, sz, "%s", conv[n->converted]);
    return;
  }
  out[0] = '\0';
}

static void print_node(const pq_node_t *n, int indent) {
  static const char *rep[] = {"required", "optional", "repeated"};
  char ann[64];
  annotation(n, ann, sizeof ann);
  char extra[96] = "";
  if (n->has_field_id) snprintf(extra, sizeof extra, " = %d", n->field_id);
  if (n->is_group) {
    if (indent == 0) printf("message %s {\n", n->name);
    else printf("%*s%s group %s%s%s%s {\n", indent, "", rep[n->repetition % 3], n->name, ann[0] ? " (" : "", ann,
                ann[0] ? ")" : "");
    for (int i = 0; i < n->nchildren; i++) print_node(n->children[i], indent + 2);
    printf("%*s}\n", indent, "");
    return;
  }
  char t[48];
  if (n->type == PQ_FIXED_LEN_BYTE_ARRAY) snprintf(t, sizeof t, "fixed_len_byte_array(%d)", n->type_length);
  else snprintf(t, sizeof t, "%s", type_name(n->type));
  printf("%*s%s %s %s%s%s%s%s;\n", indent, "", rep[n->repetition % 3], t, n->name, ann[0] ? " (" : "", ann,
         ann[0] ? ")" : "", extra);
}

static int run_schema(const m2d_command_t *cmd, m2d_args_t *args) {
  m2d_error_t err = {0};
  if (args->npositional != 1) return m2d_cli_usage("%s takes one FILE", cmd->name);
  m2d_source_t *src = m2d_file_source_new(args->positional[0], &err);
  pq_reader_t *r = src ? pq_reader_open(src, &err) : NULL;
  if (!r) {
    m2d_source_destroy(src);
    return m2d_cli_fail(&err);
  }
  const pq_file_metadata_t *md = pq_reader_metadata(r);
  print_node(pq_reader_schema(r)->root, 0);
  printf("-- %lld rows in %d row groups; created by %s\n", (long long)md->num_rows, md->num_row_groups,
         md->created_by ? md->created_by : "(unknown)");
  for (int i = 0; i < md->num_key_value_metadata; i++)
    printf("-- %s = %.200s%s\n", md->key_value_metadata[i].key, md->key_value_metadata[i].value ? md->key_value_metadata[i].value : "",
           md->key_value_metadata[i].value && strlen(md->key_value_metadata[i].value) > 200 ? "..." : "");
  pq_reader_close(r);
  m2d_source_destroy(src);
  return 0;
}

/* Marks the leaves a --columns list selects (top-level names or dotted paths of fields). */
static bool select_columns(const pq_schema_t *s, const char *list, bool *sel, m2d_error_t *err) {
  char *copy = strdup(list), *save = NULL;
  bool ok = true;
  for (char *tok = strtok_r(copy, ",", &save); ok && tok; tok = strtok_r(NULL, ",", &save)) {
    bool any = false;
    for (int i = 0; i < s->nleaves; i++) {
      /* the leaf's field path, skipping list/map plumbing ("list", "element", "key_value") */
      char path[1024] = "";
      const pq_node_t *chain[80];
      int d = 0;
      for (const pq_node_t *p = s->leaves[i]; p && p->parent && d < 80; p = p->parent) chain[d++] = p;
      size_t o = 0;
      for (int k = d - 1; k >= 0; k--) {
        o += (size_t)snprintf(path + o, sizeof path - o, "%s%s", o ? "." : "", chain[k]->name);
        if (o >= sizeof path) break;
        size_t tl = strlen(tok);
        if (strncmp(path, tok, tl) == 0 && path[tl] == '\0') {
          sel[i] = any = true;
          break;
        }
      }
    }
    if (!any) ok = m2d_error_set(err, M2D_ERR_USAGE, 0, "--columns: no column '%s' in the file; see 'mongo2delta parquet schema'", tok);
  }
  free(copy);
  return ok;
}

static const m2d_opt_spec_t dump_opts[] = {
    {"columns", "A,B.C", "only these columns (top-level names or dotted paths)", "all", false},
    {"limit", "N", "stop after N rows", "no limit", false},
    M2D_OPT_END,
};

static int run_dump(const m2d_command_t *cmd, m2d_args_t *args) {
  m2d_error_t err = {0};
  int status = 1;
  int64_t limit = -1;
  if (args->npositional != 1) return m2d_cli_usage("%s takes one FILE", cmd->name);
  if (!m2d_args_int_if_given(args, "limit", 0, INT64_MAX, &limit, &err)) return m2d_cli_fail(&err);
  m2d_source_t *src = m2d_file_source_new(args->positional[0], &err);
  pq_reader_t *r = src ? pq_reader_open(src, &err) : NULL;
  bool *sel = NULL;
  m2d_column_t *cols = NULL;
  m2d_buf_t line;
  m2d_buf_init(&line, (size_t)1 << 31);
  if (!r) goto fail;
  const pq_schema_t *s = pq_reader_schema(r);
  sel = calloc((size_t)s->nleaves + 1, sizeof *sel);
  cols = calloc((size_t)s->nleaves + 1, sizeof *cols);
  if (m2d_args_get(args, "columns") && m2d_args_flag(args, "columns")) {
    if (!select_columns(s, m2d_args_get(args, "columns"), sel, &err)) goto fail;
  } else {
    for (int i = 0; i < s->nleaves; i++) sel[i] = true;
  }
  int64_t printed = 0;
  for (int g = 0; g < pq_reader_num_row_groups(r) && (limit < 0 || printed < limit); g++) {
    for (int i = 0; i < s->nleaves; i++)
      if (sel[i] && !pq_reader_read_column(r, g, i, &cols[i], &err)) goto fail;
    pq_json_rows_t *rows = pq_json_rows_new(s, cols, sel, &err);
    if (!rows) goto fail;
    bool end = false;
    int64_t in_group = 0;
    while (limit < 0 || printed < limit) {
      m2d_buf_reset(&line);
      if (!pq_json_rows_next(rows, &line, &end, &err)) {
        if (end) break;
        m2d_error_prefix(&err, "%s: row group %d: ", args->positional[0], g);
        pq_json_rows_destroy(rows);
        goto fail;
      }
      m2d_buf_append_byte(&line, '\n', NULL);
      fwrite(line.data, 1, line.len, stdout);
      printed++;
      in_group++;
    }
    pq_json_rows_destroy(rows);
    if (end && in_group != pq_reader_row_group_rows(r, g) && s->nleaves > 0) {
      m2d_error_set(&err, M2D_ERR_FORMAT, 0, "%s: row group %d has %lld rows in its columns, %lld in its metadata",
                    args->positional[0], g, (long long)in_group, (long long)pq_reader_row_group_rows(r, g));
      goto fail;
    }
    for (int i = 0; i < s->nleaves; i++)
      if (sel[i]) m2d_column_free(&cols[i]);
  }
  status = 0;
  goto done;
fail:
  status = m2d_cli_fail(&err);
done:
  fflush(stdout);
  if (cols && r)
    for (int i = 0; i < pq_reader_schema(r)->nleaves; i++) m2d_column_free(&cols[i]);
  free(cols);
  free(sel);
  m2d_buf_free(&line);
  pq_reader_close(r);
  m2d_source_destroy(src);
  return status;
}

const m2d_command_t m2d_cmd_parquet_schema = {
    .name = "parquet schema",
    .summary = "print a Parquet file's schema, row count and metadata",
    .positional = "FILE",
    .description = "Prints the schema tree of a Parquet file (repetition, physical and logical types,\n"
                   "field ids), its row and row group counts, writer and key-value metadata.",
    .example = "mongo2delta parquet schema part-00000.parquet",
    .opts = NULL,
    .run = run_schema,
};

const m2d_command_t m2d_cmd_parquet_dump = {
    .name = "parquet dump",
    .summary = "print a Parquet file's rows as JSON lines (docs/json-form.md)",
    .positional = "FILE",
    .description = "Prints the rows of a Parquet file as JSON lines, one object per row, in the JSON form\n"
                   "of docs/json-form.md. A corrupt file ends with an error naming the file, the row group\n"
                   "and the column.",
    .example = "mongo2delta parquet dump part-00000.parquet --columns id,address.city --limit 10",
    .opts = dump_opts,
    .run = run_dump,
};
