#include "pipeline/table_writer.h"

#include "columnar/shred.h"
#include "core/log.h"
#include "delta/actions.h"
#include "delta/constraints.h"
#include "delta/features.h"
#include "delta/log.h"
#include "delta/stats.h"
#include "delta/txn.h"
#include "parquet/schema_json.h"
#include "delta/colmap.h"
#include "parquet/writer.h"
#include "schema/infer.h"
#include "storage/store.h"

#include <ctype.h>
#include <strings.h>
#include <inttypes.h>
#include <stdio.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RESCUE "_rescued_data"
#define BATCH_BYTES ((size_t)8 << 20)    /* shredded columns handed to the Parquet writer */
#define MAX_PARTITIONS 10000             /* open partitions in one batch */
#define MAX_METADATA_RETRIES 100

typedef struct {
  char *value;         /* serialized partition value; NULL for null */
  m2d_shredder_t *shredder;
  pq_writer_t *writer; /* the open file, or NULL */
  char *key;           /* its path in the table */
  /* opts.background_encode: the batch a thread of its own encodes into writer meanwhile */
  m2d_shredder_t *inflight;
  pthread_t thread;
  bool busy, bg_ok;
  m2d_error_t bg_err;
} part_t;

struct m2d_table_writer {
  m2d_table_writer_options_t opts;
  m2d_store_t *store;
  int64_t version;   /* -1: no table yet */
  json_t *metadata;  /* the metaData action's value, NULL when new */
  json_t *protocol;  /* the protocol action's value, NULL when new */
  json_t *features;  /* table features the next commit enables: name -> {"reader", "config"} */
  json_t *txns;      /* appId -> version */
  char *partition;   /* the partition column, or NULL */
  m2d_dtype_t *schema;
  /* the batch */
  bool open, schema_changed;
  m2d_dtype_t *data_type; /* the table schema without the partition column and _rescued_data */
  pq_schema_t pq;         /* the data files' schema (data_type then _rescued_data) */
  part_t *parts;
  int nparts;
  json_t *adds;
  json_t *removes; /* remove actions of this batch */
  json_t *last_adds; /* the add actions of the last committed batch */
  json_t *written; /* keys of the files of this batch, for abort */
  m2d_table_writer_stats_t batch, last;
  bool rearrange;          /* the batch only rearranges rows the table holds (dataChange false) */
  bool no_rescue;          /* its files have no _rescued_data column (the table has none) */
  char batch_operation[64]; /* its commitInfo operation, "" for the writer's */
  uint64_t batch_target;   /* its target file size, 0 for the writer's */
  int file_seq;
  json_t *rescued_fields;
  /* what the table asks of every row and commit (PROTOCOL.md "CHECK Constraints", nullable
   * false, "Append-only Tables") */
  bool append_only;
  int nchecks;
  char **check_names;           /* the constraint's name (delta.constraints.<name>) */
  char **check_exprs;
  delta_constraint_t **checks;
  json_t *schema_json;          /* the table's parsed schemaString while a field is non-nullable */
  /* column mapping (delta/colmap), when the table has it on: the schema with every field's id
   * and physical name, new fields included, and the largest id given */
  json_t *cm_schema;
  int64_t cm_max_id;
};

/* --- the table --------------------------------------------------------------------------- */

static bool has_commits(m2d_store_t *store, bool *yes, m2d_error_t *err) {
  m2d_store_entry_t *e = NULL;
  size_t n = 0;
  *yes = false;
  if (!store->list(store, "_delta_log", &e, &n, err)) return false;
  for (size_t i = 0; i < n && !*yes; i++) {
    const char *name = e[i].name;
    const char *slash = strrchr(name, '/');
    if (slash) name = slash + 1;
    size_t d = 0;
    while (isdigit((unsigned char)name[d])) d++;
    *yes = d == 20 && (strcmp(name + 20, ".json") == 0 || strncmp(name + 20, ".checkpoint", 11) == 0);
  }
  m2d_store_entries_free(e, n);
  return true;
}

/* Refuses tables whose writer protocol asks for what this writer does not do. */
static bool check_writable(const json_t *protocol, const json_t *metadata, m2d_error_t *err) {
  int wv = (int)json_integer_value(json_object_get(protocol, "minWriterVersion"));
  if (wv == 6) {
    return m2d_error_set(err, M2D_ERR_FORMAT, 0,
                         "the table needs writer version 6 (identity columns); mongo2delta does not write such "
                         "tables yet: write to a new table");
  }
  if (wv < 1) return m2d_error_set(err, M2D_ERR_FORMAT, 0, "the table has an unknown writer version %d", wv);
  if (!delta_features_check(protocol, DELTA_USE_WRITE, ": write to a new table", err)) return false;
  /* features we accept only while the table does not use them */
  const char *schema = json_string_value(json_object_get(metadata, "schemaString"));
  static const char *const uses[][2] = {{"delta.invariants", "column invariants"},
                                        {"delta.generationExpression", "generated columns"},
                                        {"delta.identity", "identity columns"}};
  for (size_t k = 0; schema && k < sizeof uses / sizeof uses[0]; k++)
    if (strstr(schema, uses[k][0]))
      return m2d_error_set(err, M2D_ERR_FORMAT, 0, "the table uses %s, which mongo2delta does not write yet",
                           uses[k][1]);
  return true;
}

static void rules_clear(m2d_table_writer_t *w) {
  for (int i = 0; i < w->nchecks; i++) {
    free(w->check_names[i]);
    free(w->check_exprs[i]);
    delta_constraint_free(w->checks[i]);
  }
  free(w->check_names);
  free(w->check_exprs);
  free(w->checks);
  w->check_names = w->check_exprs = NULL;
  w->checks = NULL;
  w->nchecks = 0;
  w->append_only = false;
  json_decref(w->schema_json);
  w->schema_json = NULL;
}

/* Whether a schema type (schemaString JSON) has a non-nullable field or element anywhere. */
static bool has_not_null(const json_t *type) {
  if (!json_is_object(type)) return false;
  if (json_is_false(json_object_get(type, "containsNull")) || json_is_false(json_object_get(type, "valueContainsNull")))
    return true;
  size_t i;
  json_t *f;
  json_array_foreach(json_object_get(type, "fields"), i, f) {
    if (json_is_false(json_object_get(f, "nullable")) || has_not_null(json_object_get(f, "type"))) return true;
  }
  return has_not_null(json_object_get(type, "elementType")) || has_not_null(json_object_get(type, "valueType"));
}

/* The table's append-only property, CHECK constraints (each parsed, or the table refused: a
 * constraint is never skipped) and non-nullable fields. */
static bool rules_load(m2d_table_writer_t *w, const json_t *metadata, m2d_error_t *err) {
  rules_clear(w);
  const json_t *cfg = json_object_get(metadata, "configuration");
  delta_stats_spec_t spec;
  if (!delta_stats_spec(cfg, &spec, err)) return false; /* refused before a file is written */
  const char *ao = json_string_value(json_object_get(cfg, "delta.appendOnly"));
  w->append_only = ao && strcasecmp(ao, "true") == 0;
  const char *key;
  json_t *v;
  size_t n = 0;
  json_object_foreach((json_t *)cfg, key, v) n += strncmp(key, "delta.constraints.", 18) == 0;
  if (n) {
    w->check_names = calloc(n, sizeof *w->check_names);
    w->check_exprs = calloc(n, sizeof *w->check_exprs);
    w->checks = calloc(n, sizeof *w->checks);
    if (!w->check_names || !w->check_exprs || !w->checks) return m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory");
  }
  json_object_foreach((json_t *)cfg, key, v) {
    if (strncmp(key, "delta.constraints.", 18) != 0) continue;
    const char *expr = json_string_value(v) ? json_string_value(v) : "";
    delta_constraint_t *c = delta_constraint_parse(expr, err);
    if (!c)
      return m2d_error_prefix(err,
                              "the table has the CHECK constraint '%s' (%s), whose expression mongo2delta does not "
                              "support, so it cannot check rows against it and writes nothing to the table (it "
                              "evaluates comparisons of columns with literals, IS [NOT] NULL, [NOT] IN, AND, OR, "
                              "NOT): ",
                              key + 18, key);
    int i = w->nchecks++;
    w->checks[i] = c;
    w->check_names[i] = strdup(key + 18);
    w->check_exprs[i] = strdup(expr);
    if (!w->check_names[i] || !w->check_exprs[i]) return m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory");
  }
  const char *ss = json_string_value(json_object_get(metadata, "schemaString"));
  json_t *schema = ss ? json_loads(ss, 0, NULL) : NULL;
  if (has_not_null(schema)) w->schema_json = schema;
  else json_decref(schema);
  return true;
}

/* (Re)reads the table's state. */
static bool load_table(m2d_table_writer_t *w, m2d_error_t *err) {
  bool exists;
  if (!has_commits(w->store, &exists, err)) return false;
  json_decref(w->metadata);
  json_decref(w->protocol);
  json_decref(w->txns);
  w->metadata = NULL;
  w->protocol = NULL;
  w->txns = json_object();
  m2d_dtype_free(w->schema);
  w->schema = NULL;
  w->version = -1;
  if (!exists) {
    json_t *m = json_pack("{sO?}", "configuration", w->opts.configuration);
    bool ok = rules_load(w, m, err);
    json_decref(m);
    if (!ok) return false;
    free(w->partition);
    w->partition = w->opts.partition_by ? strdup(w->opts.partition_by) : NULL;
    return true;
  }
  delta_snapshot_t snap; /* the files only by key (no jansson object each) */
  if (!delta_snapshot_load_ex(w->store, -1, DELTA_LOAD_COMPACT | DELTA_LOAD_NO_TOMBSTONES, &snap, err)) return false;
  bool ok = check_writable(snap.protocol, snap.metadata, err) && rules_load(w, snap.metadata, err);
  if (ok && w->open && json_array_size(w->removes)) {
    /* re-read during a batch (after a concurrent schema change): the files the batch removes
     * must still be in the table, or another writer deleted or rewrote them meanwhile */
    json_t *live = json_object();
    size_t i;
    json_t *a;
    char key[4096];
    for (size_t k = 0; k < snap.nadds; k++) json_object_set_new(live, snap.adds[k].key, json_true());
    json_array_foreach(w->removes, i, a) {
      json_t *r = json_object_get(a, "remove");
      delta_file_key(r, key, sizeof key);
      if (json_object_get(live, key)) continue;
      char path[4096];
      delta_path_decode(json_string_value(json_object_get(r, "path")) ?: "", path, sizeof path);
      ok = m2d_error_set(err, M2D_ERR_CONFLICT, DELTA_CONFLICT_FILES,
                         "the file %s, which this commit removes, was removed or rewritten by another writer "
                         "meanwhile (table version %lld); nothing was committed: run the command again",
                         path, (long long)snap.version);
      break;
    }
    json_decref(live);
  }
  if (ok) {
    w->version = snap.version;
    w->metadata = json_deep_copy(snap.metadata);
    w->protocol = json_deep_copy(snap.protocol);
    json_decref(w->cm_schema);
    w->cm_schema = NULL;
    w->cm_max_id = delta_colmap_max_id(w->metadata);
    json_object_update(w->txns, snap.txns);
    const char *ss = json_string_value(json_object_get(snap.metadata, "schemaString"));
    w->schema = ss ? m2d_dtype_from_schema_json(ss, err) : NULL;
    if (!w->schema) {
      ok = false;
      m2d_error_prefix(err, "the table's schema: ");
    }
  }
  json_t *pcols = ok ? json_object_get(snap.metadata, "partitionColumns") : NULL;
  if (ok && json_array_size(pcols) > 1) {
    ok = m2d_error_set(err, M2D_ERR_FORMAT, 0, "the table is partitioned by %zu columns; mongo2delta writes tables "
                       "partitioned by one column at most", json_array_size(pcols));
  }
  if (ok) {
    const char *p = json_string_value(json_array_get(pcols, 0));
    if (w->opts.partition_by && (!p || strcmp(p, w->opts.partition_by) != 0))
      ok = m2d_error_set(err, M2D_ERR_USAGE, 0, "the table is %s%s%s; --partition-by %s does not match it: leave it out",
                         p ? "partitioned by '" : "not partitioned", p ? p : "", p ? "'" : "", w->opts.partition_by);
    free(w->partition);
    w->partition = p ? strdup(p) : NULL;
  }
  delta_snapshot_free(&snap);
  return ok;
}

m2d_table_writer_t *m2d_table_writer_open(const m2d_table_writer_options_t *opts, m2d_error_t *err) {
  m2d_table_writer_t *w = calloc(1, sizeof *w);
  if (!w) return m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory"), NULL;
  w->opts = *opts;
  w->rescued_fields = json_object();
  if (!w->opts.target_file_size) w->opts.target_file_size = (uint64_t)128 << 20;
  if (!w->opts.operation) w->opts.operation = "WRITE";
  w->store = m2d_store_open(opts->table, err);
  if (!w->store || !load_table(w, err)) {
    m2d_table_writer_destroy(w);
    return NULL;
  }
  return w;
}

int64_t m2d_table_writer_version(const m2d_table_writer_t *w) { return w->version; }

int64_t m2d_table_writer_app_version(const m2d_table_writer_t *w, const char *app_id) {
  json_t *v = json_object_get(w->txns, app_id);
  return v ? (int64_t)json_integer_value(v) : -1;
}

m2d_table_writer_stats_t m2d_table_writer_last(const m2d_table_writer_t *w) { return w->last; }

/* --- a batch ----------------------------------------------------------------------------- */

/* Encoding in the background for one part at a time only (a partitioned table would hold two
 * batches and a thread per partition). */
static bool background(const m2d_table_writer_t *w) { return w->opts.background_encode && !w->partition; }

static void *encode_main(void *arg) {
  part_t *p = arg;
  p->bg_ok = pq_writer_write(p->writer, m2d_shredder_columns(p->inflight), &p->bg_err);
  m2d_shredder_reset(p->inflight);
  return NULL;
}

/* Waits for p's batch being encoded in the background; false (err set) when that failed. */
static bool join_part(part_t *p, m2d_error_t *err) {
  if (!p->busy) return true;
  pthread_join(p->thread, NULL);
  p->busy = false;
  if (!p->bg_ok) {
    if (err) *err = p->bg_err;
    return false;
  }
  return true;
}

static void batch_clear(m2d_table_writer_t *w) {
  for (int i = 0; i < w->nparts; i++) {
    join_part(&w->parts[i], NULL);
    free(w->parts[i].value);
    m2d_shredder_destroy(w->parts[i].inflight);
    m2d_shredder_destroy(w->parts[i].shredder);
    pq_writer_destroy(w->parts[i].writer);
    free(w->parts[i].key);
  }
  free(w->parts);
  w->parts = NULL;
  w->nparts = 0;
  m2d_dtype_free(w->data_type);
  w->data_type = NULL;
  pq_schema_free(&w->pq);
  memset(&w->pq, 0, sizeof w->pq);
  json_decref(w->adds);
  json_decref(w->removes);
  json_decref(w->written);
  w->adds = w->removes = w->written = NULL;
  w->open = w->schema_changed = false;
  memset(&w->batch, 0, sizeof w->batch);
  w->rearrange = w->no_rescue = false;
  w->batch_operation[0] = '\0';
  w->batch_target = 0;
}

void m2d_table_writer_abort(m2d_table_writer_t *w) {
  if (!w || !w->open) return;
  for (int i = 0; i < w->nparts; i++) {
    join_part(&w->parts[i], NULL);
    pq_writer_destroy(w->parts[i].writer); /* aborts the sink: nothing published */
    w->parts[i].writer = NULL;
  }
  size_t i;
  json_t *k;
  json_array_foreach(w->written, i, k) {
    m2d_error_t e;
    if (!w->store->remove(w->store, json_string_value(k), &e))
      m2d_warn("could not remove the uncommitted file %s: %s", json_string_value(k), e.message);
  }
  batch_clear(w);
}

void m2d_table_writer_destroy(m2d_table_writer_t *w) {
  if (!w) return;
  m2d_table_writer_abort(w);
  batch_clear(w);
  json_decref(w->metadata);
  json_decref(w->protocol);
  json_decref(w->features);
  json_decref(w->txns);
  json_decref(w->rescued_fields);
  json_decref(w->cm_schema);
  json_decref(w->last_adds);
  rules_clear(w);
  free(w->partition);
  m2d_dtype_free(w->schema);
  m2d_store_destroy(w->store);
  free(w);
}

static bool begin_schema(m2d_table_writer_t *w, const m2d_dtype_t *observed, m2d_error_t *err);

static bool partition_type_ok(const m2d_dtype_t *t) {
  switch (t->kind) {
  case M2D_T_NULL: case M2D_T_STRING: case M2D_T_INTEGER: case M2D_T_LONG: case M2D_T_BOOLEAN: case M2D_T_TIMESTAMP:
    return t->orig != M2D_ORIG_EXTJSON && t->orig != M2D_ORIG_DECIMAL128;
  default: return false;
  }
}

/* data_type and the Parquet schema of the data files, from the table schema. */
static bool carry_attrs(const json_t *old, json_t *cur);

/* Column mapping: w->cm_schema from the writer's schema, each field keeping the id and physical
 * name the table (or an earlier batch) gave it, new fields given theirs. */
static bool colmap_update(m2d_table_writer_t *w, m2d_error_t *err) {
  m2d_buf_t js;
  m2d_buf_init(&js, (size_t)64 << 20);
  json_t *cur = NULL, *base = NULL;
  bool ok = m2d_dtype_to_schema_json(w->schema, &js, err) && m2d_buf_terminate(&js, err);
  if (ok) {
    cur = json_loads((const char *)js.data, 0, NULL);
    base = w->cm_schema ? json_incref(w->cm_schema)
                        : json_loads(json_string_value(json_object_get(w->metadata, "schemaString")) ?: "null", 0, NULL);
    ok = cur != NULL || m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory");
  }
  if (ok) {
    carry_attrs(base, cur);
    delta_colmap_assign(cur, &w->cm_max_id);
    json_decref(w->cm_schema);
    w->cm_schema = cur;
    cur = NULL;
  }
  json_decref(cur);
  json_decref(base);
  m2d_buf_free(&js);
  return ok;
}

static bool build_layout(m2d_table_writer_t *w, m2d_error_t *err) {
  m2d_dtype_t *d = m2d_dtype_new(M2D_T_STRUCT), *full = NULL;
  bool ok = d != NULL;
  for (int i = 0; ok && i < w->schema->nfields; i++) {
    const m2d_field_t *f = &w->schema->fields[i];
    if (strcmp(f->name, RESCUE) == 0 || (w->partition && strcmp(f->name, w->partition) == 0)) continue;
    m2d_dtype_t *c = m2d_dtype_clone(f->type);
    ok = c && m2d_dtype_add_field(d, f->name, c, err);
  }
  if (ok) {
    full = m2d_dtype_clone(d);
    ok = full != NULL;
    if (ok && !w->no_rescue) {
      m2d_dtype_t *r = m2d_dtype_new(M2D_T_STRING);
      ok = r && m2d_dtype_add_field(full, RESCUE, r, err);
    }
  }
  m2d_buf_t js;
  m2d_buf_init(&js, (size_t)64 << 20);
  ok = ok && m2d_dtype_to_schema_json(full, &js, err) && m2d_buf_terminate(&js, err);
  char *mapped = NULL; /* column mapping: the files' schema with the physical names and ids */
  if (ok && w->metadata && delta_colmap_on(w->metadata)) {
    json_t *files = NULL;
    ok = colmap_update(w, err) && (files = json_loads((const char *)js.data, 0, NULL)) != NULL;
    if (files) {
      carry_attrs(w->cm_schema, files);
      mapped = json_dumps(files, JSON_COMPACT | JSON_PRESERVE_ORDER);
      json_decref(files);
    }
    if (ok && !mapped) ok = m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory");
  }
  ok = ok && pq_schema_from_json(mapped ? mapped : (const char *)js.data, &w->pq, err);
  free(mapped);
  m2d_buf_free(&js);
  m2d_dtype_free(full);
  if (!ok) {
    m2d_dtype_free(d);
    return false;
  }
  w->data_type = d;
  return true;
}

/* The batch's file layout again, before any file is open (the schema or no_rescue changed). */
static bool rebuild_layout(m2d_table_writer_t *w, m2d_error_t *err) {
  m2d_dtype_free(w->data_type);
  w->data_type = NULL;
  pq_schema_free(&w->pq);
  memset(&w->pq, 0, sizeof w->pq);
  return build_layout(w, err);
}

bool m2d_table_writer_begin(m2d_table_writer_t *w, const m2d_dtype_t *observed_in, m2d_error_t *err) {
  m2d_table_writer_abort(w);
  m2d_dtype_t *observed = m2d_dtype_clone(observed_in);
  if (!observed) return m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory");
  m2d_dtype_strip_empty(observed);
  bool ok = begin_schema(w, observed, err);
  m2d_dtype_free(observed);
  return ok;
}

static bool begin_schema(m2d_table_writer_t *w, const m2d_dtype_t *observed, m2d_error_t *err) {
  if (!w->schema) {
    w->schema = m2d_dtype_clone(observed);
    if (!w->schema) return m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory");
    if (w->partition && !m2d_dtype_field(w->schema, w->partition) &&
        !m2d_dtype_add_field(w->schema, w->partition, m2d_dtype_new(M2D_T_NULL), err))
      return false;
    if (!m2d_dtype_field(w->schema, RESCUE) && !m2d_dtype_add_field(w->schema, RESCUE, m2d_dtype_new(M2D_T_STRING), err))
      return false;
    w->schema_changed = true;
  } else {
    bool changed = false;
    if (!m2d_infer_evolve(w->schema, observed, &changed, err)) return false;
    w->schema_changed = changed;
  }
  if (w->partition) {
    const m2d_field_t *pf = m2d_dtype_field(w->schema, w->partition);
    if (!pf || !partition_type_ok(pf->type)) {
      char tn[64];
      const char *name = pf ? m2d_dtype_primitive_name(pf->type, tn, sizeof tn) : NULL;
      return m2d_error_set(err, M2D_ERR_USAGE, 0,
                           "cannot partition by '%s': its values are %s; partition by a top-level string, "
                           "integer, boolean or date field",
                           w->partition, name ? name : "documents or arrays");
    }
  }
  if (!build_layout(w, err)) return false;
  w->adds = json_array();
  w->removes = json_array();
  w->written = json_array();
  w->open = true;
  return true;
}

/* --- partition values -------------------------------------------------------------------- */

static void hex_oid(const bson_oid_t *oid, char out[25]) { bson_oid_to_string(oid, out); }

static const char *bson_kind_name(bson_type_t t) {
  switch (t) {
  case BSON_TYPE_DOUBLE: return "double";
  case BSON_TYPE_UTF8: return "string";
  case BSON_TYPE_DOCUMENT: return "document";
  case BSON_TYPE_ARRAY: return "array";
  case BSON_TYPE_BINARY: return "binary";
  case BSON_TYPE_OID: return "ObjectId";
  case BSON_TYPE_BOOL: return "boolean";
  case BSON_TYPE_DATE_TIME: return "date";
  case BSON_TYPE_INT32: return "int32";
  case BSON_TYPE_INT64: return "int64";
  case BSON_TYPE_DECIMAL128: return "Decimal128";
  case BSON_TYPE_TIMESTAMP: return "timestamp";
  default: return "BSON";
  }
}

/* The partition value of doc as Delta serializes it (PROTOCOL.md "Partition Value
 * Serialization"), *out NULL for null. false when the value does not fit the column. */
static bool partition_value(m2d_table_writer_t *w, const bson_t *doc, char **out, m2d_error_t *err) {
  *out = NULL;
  bson_iter_t it;
  if (!bson_iter_init_find(&it, doc, w->partition)) return true;
  const m2d_dtype_t *t = m2d_dtype_field(w->schema, w->partition)->type;
  char buf[64];
  const char *s = NULL;
  bson_type_t bt = bson_iter_type(&it);
  if (bt == BSON_TYPE_NULL || bt == BSON_TYPE_UNDEFINED) return true;
  switch (t->kind) {
  case M2D_T_STRING:
  case M2D_T_NULL:
    if (bt == BSON_TYPE_UTF8) {
      uint32_t len;
      const char *v = bson_iter_utf8(&it, &len);
      if (len == 0) return true; /* Spark reads an empty partition value as null */
      *out = strndup(v, len);
      return *out != NULL;
    }
    if (bt == BSON_TYPE_OID && t->orig == M2D_ORIG_OBJECTID) {
      hex_oid(bson_iter_oid(&it), buf);
      s = buf;
    }
    break;
  case M2D_T_INTEGER:
    if (bt == BSON_TYPE_INT32) snprintf(buf, sizeof buf, "%d", bson_iter_int32(&it)), s = buf;
    break;
  case M2D_T_LONG:
    if (bt == BSON_TYPE_INT32 || bt == BSON_TYPE_INT64)
      snprintf(buf, sizeof buf, "%lld", (long long)bson_iter_as_int64(&it)), s = buf;
    break;
  case M2D_T_BOOLEAN:
    if (bt == BSON_TYPE_BOOL) s = bson_iter_bool(&it) ? "true" : "false";
    break;
  case M2D_T_TIMESTAMP:
    if (bt == BSON_TYPE_DATE_TIME) {
      int64_t ms = bson_iter_date_time(&it);
      time_t secs = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
      struct tm tm;
      if (gmtime_r(&secs, &tm) && tm.tm_year + 1900 >= 1 && tm.tm_year + 1900 <= 9999) {
        snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                 tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms - (int64_t)secs * 1000) * 1000);
        s = buf;
      }
    }
    break;
  default: break;
  }
  if (!s)
    return m2d_error_set(err, M2D_ERR_FORMAT, 0,
                         "the partition column '%s' holds a %s value that does not fit its type; a partition "
                         "value cannot be rescued: fix the document or partition by another field",
                         w->partition, bson_kind_name(bt));
  *out = strdup(s);
  return *out != NULL;
}

/* --- files ------------------------------------------------------------------------------- */

static const char *codec_ext(pq_codec_t c) {
  switch (c) {
  case PQ_CODEC_SNAPPY: return ".snappy";
  case PQ_CODEC_ZSTD: return ".zstd";
  case PQ_CODEC_GZIP: return ".gz";
  case PQ_CODEC_LZ4_RAW: return ".lz4raw";
  default: return "";
  }
}

static m2d_shredder_t *make_shredder(m2d_table_writer_t *w, m2d_error_t *err) {
  m2d_shredder_t *s = m2d_shredder_new(w->data_type, !w->no_rescue, BATCH_BYTES * 4, err);
  if (s) m2d_shredder_set_validated(s, w->opts.validated);
  if (s && w->partition && !m2d_shredder_skip_field(s, w->partition, err)) {
    m2d_shredder_destroy(s);
    s = NULL;
  }
  return s;
}

static bool new_shredder(m2d_table_writer_t *w, part_t *p, m2d_error_t *err) {
  p->shredder = make_shredder(w, err);
  return p->shredder != NULL;
}

static part_t *find_part(m2d_table_writer_t *w, const char *value, m2d_error_t *err) {
  for (int i = 0; i < w->nparts; i++) {
    const char *v = w->parts[i].value;
    if ((!v && !value) || (v && value && strcmp(v, value) == 0))
      return w->parts[i].shredder || new_shredder(w, &w->parts[i], err) ? &w->parts[i] : NULL;
  }
  if (w->nparts >= MAX_PARTITIONS)
    return m2d_error_set(err, M2D_ERR_LIMIT, 0,
                         "one batch holds more than %d values of the partition column '%s': partition by a field "
                         "with fewer distinct values",
                         MAX_PARTITIONS, w->partition),
           NULL;
  part_t *np = realloc(w->parts, (size_t)(w->nparts + 1) * sizeof *np);
  if (!np) return m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory"), NULL;
  w->parts = np;
  part_t *p = &w->parts[w->nparts];
  memset(p, 0, sizeof *p);
  if (value && !(p->value = strdup(value))) return m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory"), NULL;
  if (!new_shredder(w, p, err)) {
    free(p->value);
    return NULL;
  }
  w->nparts++;
  return p;
}

static bool open_file(m2d_table_writer_t *w, part_t *p, m2d_error_t *err) {
  char uuid[37];
  delta_uuid4(uuid);
  m2d_buf_t key;
  m2d_buf_init(&key, 1 << 16);
  bool ok = true;
  if (w->opts.data_dir) ok = m2d_buf_append_str(&key, w->opts.data_dir, err) && m2d_buf_append_byte(&key, '/', err);
  if (ok && w->partition) {
    ok = m2d_buf_append_str(&key, w->partition, err) && m2d_buf_append_byte(&key, '=', err) &&
         (p->value ? delta_hive_escape(p->value, &key, err) : m2d_buf_append_str(&key, "__HIVE_DEFAULT_PARTITION__", err)) &&
         m2d_buf_append_byte(&key, '/', err);
  }
  ok = ok && m2d_buf_appendf(&key, err, "%s-%05d-%s-c000%s.parquet", w->opts.file_prefix ? w->opts.file_prefix : "part",
                             w->file_seq++, uuid, codec_ext(w->opts.codec)) &&
       m2d_buf_terminate(&key, err);
  if (!ok) {
    m2d_buf_free(&key);
    return false;
  }
  free(p->key);
  p->key = strdup((const char *)key.data);
  m2d_buf_free(&key);
  if (!p->key) return m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory");
  m2d_sink_t *sink = w->store->create(w->store, p->key, err);
  if (!sink) return false;
  json_array_append_new(w->written, json_string(p->key));
  pq_writer_options_t o = {.codec = w->opts.codec, .level = w->opts.level, .row_group_size = (size_t)64 << 20};
  p->writer = pq_writer_new(&w->pq, sink, &o, err);
  return p->writer != NULL;
}

/* The shredded rows into p's file; with opts.background_encode, encoded by a thread while the
 * next batch is shredded (into a second shredder), the encoding of the one before waited for. */
static bool flush_rows(m2d_table_writer_t *w, part_t *p, m2d_error_t *err) {
  if (!join_part(p, err)) return false;
  if (m2d_shredder_rows(p->shredder) == 0) return true;
  if (!p->writer && !open_file(w, p, err)) return false;
  if (background(w)) {
    if (!p->inflight && !(p->inflight = make_shredder(w, err))) return false;
    m2d_shredder_t *full = p->shredder;
    p->shredder = p->inflight;
    p->inflight = full;
    p->bg_ok = false;
    memset(&p->bg_err, 0, sizeof p->bg_err);
    if (pthread_create(&p->thread, NULL, encode_main, p) == 0) {
      p->busy = true;
      return true;
    }
    encode_main(p); /* no thread to be had: here */
    if (!p->bg_ok && err) *err = p->bg_err;
    return p->bg_ok;
  }
  bool ok = pq_writer_write(p->writer, m2d_shredder_columns(p->shredder), err);
  m2d_shredder_reset(p->shredder);
  return ok;
}

static bool finish_file(m2d_table_writer_t *w, part_t *p, m2d_error_t *err);

/* Closes p's file and records its add action. */
static bool close_file(m2d_table_writer_t *w, part_t *p, m2d_error_t *err) {
  if (!flush_rows(w, p, err) || !join_part(p, err)) return false;
  return finish_file(w, p, err);
}

/* Closes p's file (its rows all written) and records its add action. */
static bool finish_file(m2d_table_writer_t *w, part_t *p, m2d_error_t *err) {
  if (!p->writer) return true;
  pq_write_result_t res = {0};
  bool ok = pq_writer_close(p->writer, &res, err);
  p->writer = NULL;
  /* the columns the table's configuration gives statistics (a new table: the options') */
  delta_stats_spec_t spec;
  ok = ok && delta_stats_spec(w->metadata ? json_object_get(w->metadata, "configuration") : w->opts.configuration,
                              &spec, err);
  char *stats = ok ? delta_stats_json(&w->pq, &res, &spec, err) : NULL;
  ok = ok && stats;
  if (ok) {
    json_t *pv = json_object();
    /* by the column's physical name under column mapping (PROTOCOL.md) */
    const char *pkey = w->partition && w->cm_schema ? delta_colmap_physical_name(w->cm_schema, w->partition) : w->partition;
    if (w->partition) json_object_set_new(pv, pkey, p->value ? json_string(p->value) : json_null());
    json_t *add = delta_add_action(p->key, pv, res.file_size, delta_now_ms(), stats);
    json_decref(pv);
    if (!add) ok = m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory");
    else json_array_append_new(w->adds, add);
    w->batch.files++;
    w->batch.bytes += (int64_t)res.file_size;
  }
  free(stats);
  pq_write_result_free(&res);
  if (!ok) m2d_error_prefix(err, "%s/%s: ", w->store->root, p->key);
  return ok;
}

/* The document's _id for messages. */
static void doc_id(const bson_t *doc, char *out, size_t n) {
  bson_iter_t it;
  snprintf(out, n, "(none)");
  if (!bson_iter_init_find(&it, doc, "_id")) return;
  if (BSON_ITER_HOLDS_OID(&it)) {
    char hex[25];
    bson_oid_to_string(bson_iter_oid(&it), hex);
    snprintf(out, n, "ObjectId(\"%s\")", hex);
  } else if (BSON_ITER_HOLDS_UTF8(&it)) {
    snprintf(out, n, "\"%.100s\"", bson_iter_utf8(&it, NULL));
  } else if (BSON_ITER_HOLDS_INT32(&it) || BSON_ITER_HOLDS_INT64(&it)) {
    snprintf(out, n, "%" PRId64, bson_iter_as_int64(&it));
  } else {
    bson_t one = BSON_INITIALIZER;
    bson_append_iter(&one, "_id", 3, &it);
    char *j = bson_as_relaxed_extended_json(&one, NULL);
    snprintf(out, n, "%.200s", j ? j : "?");
    bson_free(j);
    bson_destroy(&one);
  }
}

static bool not_null_ok(const json_t *type, bson_iter_t *it, char *path, size_t cap, size_t len);

/* Whether the fields of a struct type (schemaString JSON) have values where the schema says they
 * must, in the document child iterates (not begun); false with the first one's path in path. */
static bool fields_ok(const json_t *type, const bson_iter_t *child, char *path, size_t cap, size_t len) {
  size_t i;
  json_t *f;
  json_array_foreach(json_object_get(type, "fields"), i, f) {
    const char *name = json_string_value(json_object_get(f, "name"));
    if (!name) continue;
    int w = snprintf(path + len, cap - len, "%s%s", len ? "." : "", name);
    size_t l = len + (w > 0 ? (size_t)w : 0);
    if (l >= cap) l = cap - 1;
    bson_iter_t at = *child;
    bool present = bson_iter_find(&at, name) && !BSON_ITER_HOLDS_NULL(&at) && bson_iter_type(&at) != BSON_TYPE_UNDEFINED;
    if (!present && json_is_false(json_object_get(f, "nullable"))) return false;
    if (present && !not_null_ok(json_object_get(f, "type"), &at, path, cap, l)) return false;
  }
  path[len] = '\0';
  return true;
}

/* The same for the value it is positioned on, of the type (struct, array, map or other). */
static bool not_null_ok(const json_t *type, bson_iter_t *it, char *path, size_t cap, size_t len) {
  if (!json_is_object(type)) return true;
  bson_iter_t child;
  const char *kind = json_string_value(json_object_get(type, "type"));
  if (!kind) return true;
  if (strcmp(kind, "struct") == 0) {
    if (!BSON_ITER_HOLDS_DOCUMENT(it) || !bson_iter_recurse(it, &child)) return true; /* rescued: not this check's */
    return fields_ok(type, &child, path, cap, len);
  }
  bool array = strcmp(kind, "array") == 0, map = strcmp(kind, "map") == 0;
  if (!array && !map) return true;
  if (!(array ? BSON_ITER_HOLDS_ARRAY(it) : BSON_ITER_HOLDS_DOCUMENT(it)) || !bson_iter_recurse(it, &child)) return true;
  bool nulls = !json_is_false(json_object_get(type, array ? "containsNull" : "valueContainsNull"));
  const json_t *elem = json_object_get(type, array ? "elementType" : "valueType");
  while (bson_iter_next(&child)) {
    int w = snprintf(path + len, cap - len, array ? "[%s]" : "%s%s", array ? bson_iter_key(&child) : (len ? "." : ""),
                     bson_iter_key(&child));
    size_t l = len + (w > 0 ? (size_t)w : 0);
    if (l >= cap) l = cap - 1;
    if (BSON_ITER_HOLDS_NULL(&child) || bson_iter_type(&child) == BSON_TYPE_UNDEFINED) {
      if (!nulls) return false;
      continue;
    }
    if (!not_null_ok(elem, &child, path, cap, l)) return false;
  }
  path[len] = '\0';
  return true;
}

/* Refuses a document that breaks a NOT NULL column or a CHECK constraint of the table. */
static bool check_rules(const m2d_table_writer_t *w, const bson_t *doc, m2d_error_t *err) {
  char id[256];
  if (w->schema_json) {
    char path[1024] = "";
    bson_iter_t top;
    if (bson_iter_init(&top, doc) && !fields_ok(w->schema_json, &top, path, sizeof path, 0)) {
      doc_id(doc, id, sizeof id);
      return m2d_error_set(err, M2D_ERR_FORMAT, 0,
                           "the document with _id %s has no value (or null) for the column '%s', which the table "
                           "declares NOT NULL; nothing was committed: give the documents a value there or drop "
                           "the constraint (ALTER TABLE ... ALTER COLUMN %s DROP NOT NULL)",
                           id, path, path);
    }
  }
  for (int i = 0; i < w->nchecks; i++) {
    if (delta_constraint_holds(w->checks[i], doc)) continue;
    char values[512];
    delta_constraint_describe(w->checks[i], doc, values, sizeof values);
    doc_id(doc, id, sizeof id);
    return m2d_error_set(err, M2D_ERR_FORMAT, 0,
                         "the document with _id %s breaks the table's CHECK constraint '%s' "
                         "(delta.constraints.%s: %s) with %s; nothing was committed",
                         id, w->check_names[i], w->check_names[i], w->check_exprs[i], values);
  }
  return true;
}

bool m2d_table_writer_add(m2d_table_writer_t *w, const bson_t *doc, int64_t *rescued, m2d_error_t *err) {
  if (!w->open) return m2d_error_set(err, M2D_ERR_INTERNAL, 0, "no batch begun");
  /* rows rearranged are in the table already; change data files (data_dir) hold pre-images and
   * change types, not rows of the table */
  if (!w->rearrange && !w->opts.data_dir && !check_rules(w, doc, err)) return false;
  if (!w->rearrange && !w->opts.data_dir && !w->no_rescue && w->nparts == 0 && !m2d_dtype_field(w->schema, RESCUE)) {
    /* a table made by others (Spark) gets the column that keeps what does not fit its columns
     * with its first rows from MongoDB, so that nothing is lost; its files have it already */
    if (!m2d_dtype_add_field(w->schema, RESCUE, m2d_dtype_new(M2D_T_STRING), err)) return false;
    w->schema_changed = true;
    if (!rebuild_layout(w, err)) return false;
  }
  char *value = NULL;
  if (w->partition && !partition_value(w, doc, &value, err)) return false;
  part_t *p = find_part(w, value, err);
  free(value);
  if (!p) return false;
  int64_t n = 0;
  if (!m2d_shredder_add(p->shredder, doc, &n, err)) {
    bson_iter_t it;
    if (w->no_rescue && bson_iter_init(&it, m2d_shredder_row_rescued(p->shredder)) && bson_iter_next(&it))
      m2d_error_set(err, M2D_ERR_FORMAT, 0,
                    "a value of column '%s' does not fit the column's type as mongo2delta writes it, and the table "
                    "has no _rescued_data column to keep it: its rows cannot be rewritten exactly",
                    bson_iter_key(&it));
    return false;
  }
  if (n && rescued) *rescued += n;
  if (n && !w->rearrange) { /* a rearrangement rescues again what was rescued before */
    bson_iter_t it;
    if (bson_iter_init(&it, m2d_shredder_row_rescued(p->shredder)))
      while (bson_iter_next(&it)) {
        const char *k = bson_iter_key(&it);
        json_object_set_new(w->rescued_fields, k,
                            json_integer(json_integer_value(json_object_get(w->rescued_fields, k)) + 1));
      }
  }
  w->batch.rows++;
  /* the bytes of this batch's rows: the memory the columns hold stays at its largest after a
   * flush, and measured by it every later document was a batch of its own */
  if (m2d_shredder_bytes(p->shredder) < BATCH_BYTES) return true;
  uint64_t target = w->batch_target ? w->batch_target : w->opts.target_file_size;
  if (background(w)) {
    /* the file is cut where the synchronous path cuts it: after the batch that reached the
     * target, known once that batch is encoded, before this one is written */
    if (!join_part(p, err)) return false;
    if (p->writer && pq_writer_bytes_written(p->writer) + pq_writer_buffered(p->writer) >= target &&
        !finish_file(w, p, err))
      return false;
    return flush_rows(w, p, err);
  }
  if (!flush_rows(w, p, err)) return false;
  if (pq_writer_bytes_written(p->writer) + pq_writer_buffered(p->writer) >= target) return close_file(w, p, err);
  return true;
}

bool m2d_table_writer_extend(m2d_table_writer_t *w, const m2d_dtype_t *observed_in, m2d_error_t *err) {
  if (!w->open) return m2d_table_writer_begin(w, observed_in, err);
  m2d_dtype_t *observed = m2d_dtype_clone(observed_in);
  if (!observed) return m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory");
  m2d_dtype_strip_empty(observed);
  bool changed = false;
  bool ok = m2d_infer_evolve(w->schema, observed, &changed, err);
  m2d_dtype_free(observed);
  if (!ok || !changed) return ok;
  w->schema_changed = true;
  /* the open files keep the schema they began with */
  for (int i = 0; ok && i < w->nparts; i++) {
    ok = close_file(w, &w->parts[i], err);
    m2d_shredder_destroy(w->parts[i].shredder);
    w->parts[i].shredder = NULL;
    m2d_shredder_destroy(w->parts[i].inflight);
    w->parts[i].inflight = NULL;
  }
  if (!ok) return false;
  m2d_dtype_free(w->data_type);
  w->data_type = NULL;
  pq_schema_free(&w->pq);
  memset(&w->pq, 0, sizeof w->pq);
  return build_layout(w, err);
}

const m2d_dtype_t *m2d_table_writer_schema(const m2d_table_writer_t *w) { return w->schema; }

bool m2d_table_writer_write(m2d_table_writer_t *w, bson_t **docs, int n, m2d_error_t *err) {
  m2d_infer_t *inf = m2d_infer_new(NULL);
  bool ok = inf != NULL || m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory");
  for (int i = 0; ok && i < n; i++) ok = m2d_infer_observe(inf, docs[i], err);
  ok = ok && m2d_table_writer_begin(w, m2d_infer_schema(inf), err);
  for (int i = 0; ok && i < n; i++) ok = m2d_table_writer_add(w, docs[i], NULL, err);
  m2d_infer_destroy(inf);
  return ok;
}

bool m2d_table_writer_take_files(m2d_table_writer_t *w, json_t **adds, m2d_error_t *err) {
  *adds = NULL;
  bool ok = w->open || m2d_error_set(err, M2D_ERR_INTERNAL, 0, "no batch begun");
  for (int i = 0; ok && i < w->nparts; i++) ok = close_file(w, &w->parts[i], err);
  if (!ok) {
    m2d_table_writer_abort(w);
    return false;
  }
  *adds = json_incref(w->adds);
  json_decref(w->written);
  w->written = json_array(); /* the caller's now: abort must not remove them */
  batch_clear(w);
  return true;
}

bool m2d_table_writer_add_action(m2d_table_writer_t *w, json_t *action, m2d_error_t *err) {
  if (!w->open) {
    json_decref(action);
    return m2d_error_set(err, M2D_ERR_INTERNAL, 0, "no batch begun");
  }
  json_array_append_new(w->adds, action);
  return true;
}

static bool append_only_error(m2d_error_t *err) {
  return m2d_error_set(err, M2D_ERR_FORMAT, 0,
                       "the table is append-only (delta.appendOnly = true): mongo2delta cannot remove or change "
                       "rows in it (updates and deletes of a mirror, --restart); nothing was committed: load or "
                       "append to it only, or unset the property (ALTER TABLE ... SET TBLPROPERTIES "
                       "('delta.appendOnly' = 'false'))");
}

bool m2d_table_writer_remove_file(m2d_table_writer_t *w, const json_t *add, m2d_error_t *err) {
  if (!w->open) return m2d_error_set(err, M2D_ERR_INTERNAL, 0, "no batch begun");
  if (w->append_only && !w->rearrange) return append_only_error(err);
  json_t *r = delta_remove_action(add, delta_now_ms());
  if (!r) return m2d_error_set(err, M2D_ERR_FORMAT, 0, "an add action without path, partitionValues or size");
  json_array_append_new(w->removes, r);
  return true;
}

const json_t *m2d_table_writer_last_adds(const m2d_table_writer_t *w) { return w->last_adds; }

bool m2d_table_writer_rearrange(m2d_table_writer_t *w, const char *operation, uint64_t target_file_size,
                                m2d_error_t *err) {
  if (!w->open) return m2d_error_set(err, M2D_ERR_INTERNAL, 0, "no batch begun");
  if (w->schema_changed)
    return m2d_error_set(err, M2D_ERR_INTERNAL, 0, "a batch that rearranges rows cannot change the table's schema");
  w->rearrange = true;
  snprintf(w->batch_operation, sizeof w->batch_operation, "%s", operation ? operation : "OPTIMIZE");
  w->batch_target = target_file_size;
  if (!m2d_dtype_field(w->schema, RESCUE) && w->nparts == 0) {
    /* a table written by others: its rows are rewritten as they are, without a column it lacks */
    w->no_rescue = true;
    return rebuild_layout(w, err);
  }
  return true;
}

bool m2d_table_writer_close_files(m2d_table_writer_t *w, m2d_error_t *err) {
  if (!w->open) return m2d_error_set(err, M2D_ERR_INTERNAL, 0, "no batch begun");
  for (int i = 0; i < w->nparts; i++)
    if (!close_file(w, &w->parts[i], err)) return false;
  return true;
}

const json_t *m2d_table_writer_batch_adds(const m2d_table_writer_t *w) { return w->open ? w->adds : NULL; }

bool m2d_table_writer_in_batch(const m2d_table_writer_t *w) { return w->open; }

m2d_store_t *m2d_table_writer_store(m2d_table_writer_t *w) { return w->store; }

const json_t *m2d_table_writer_metadata(const m2d_table_writer_t *w) { return w->metadata; }
const json_t *m2d_table_writer_protocol(const m2d_table_writer_t *w) { return w->protocol; }

const json_t *m2d_table_writer_configuration(const m2d_table_writer_t *w) {
  return w->metadata ? json_object_get(w->metadata, "configuration") : NULL;
}

const json_t *m2d_table_writer_rescued_fields(const m2d_table_writer_t *w) { return w->rescued_fields; }

/* --- commit ------------------------------------------------------------------------------ */

/* Whether every column of ours exists in theirs with the same type (our files then fit the
 * table another writer changed). */
static bool fits(const m2d_dtype_t *ours, const m2d_dtype_t *theirs) {
  if (ours->kind == M2D_T_NULL) return theirs->kind == M2D_T_NULL || theirs->kind == M2D_T_STRING;
  if (theirs->kind == M2D_T_NULL) return ours->kind == M2D_T_STRING;
  if (ours->kind != theirs->kind) return false;
  switch (ours->kind) {
  case M2D_T_DECIMAL: return ours->precision == theirs->precision && ours->scale == theirs->scale;
  case M2D_T_STRUCT:
    for (int i = 0; i < ours->nfields; i++) {
      const m2d_field_t *t = m2d_dtype_field((m2d_dtype_t *)theirs, ours->fields[i].name);
      if (t && !fits(ours->fields[i].type, t->type)) return false;
    }
    return true;
  case M2D_T_ARRAY: case M2D_T_MAP: return fits(ours->elem, theirs->elem);
  default: return true;
  }
}

/* After a concurrent schema change: re-reads the table and adopts its schema, plus our
 * fields it lacks. false when our files no longer fit. */
static bool rebase(m2d_table_writer_t *w, m2d_error_t *err) {
  m2d_dtype_t *ours = w->schema;
  char *partition = w->partition ? strdup(w->partition) : NULL;
  w->schema = NULL;
  bool ok = load_table(w, err);
  if (ok && w->schema) {
    bool p_same = (!partition && !w->partition) || (partition && w->partition && strcmp(partition, w->partition) == 0);
    if (!p_same || !fits(ours, w->schema)) {
      ok = m2d_error_set(err, M2D_ERR_CONFLICT, DELTA_CONFLICT_METADATA,
                         "another writer changed the table's schema or partitioning in a way the files of this "
                         "batch do not fit; nothing was committed: run the command again");
    } else {
      bool changed = false;
      ok = m2d_infer_evolve(w->schema, ours, &changed, err);
      w->schema_changed = changed;
    }
  } else if (ok) {
    ok = m2d_error_set(err, M2D_ERR_CONFLICT, 0, "the table disappeared while this batch was written");
  }
  m2d_dtype_free(ours);
  free(partition);
  return ok;
}

/* --- table features ---------------------------------------------------------------------- */

static bool has_name(const json_t *array, const char *name) {
  size_t i;
  json_t *v;
  json_array_foreach(array, i, v) if (json_is_string(v) && strcmp(json_string_value(v), name) == 0) return true;
  return false;
}

static void add_name(json_t *array, const char *name) {
  if (!has_name(array, name)) json_array_append_new(array, json_string(name));
}

bool m2d_table_writer_has_feature(const m2d_table_writer_t *w, const char *feature) {
  return w->protocol && delta_protocol_has_feature(w->protocol, feature, false);
}

void m2d_table_writer_enable_feature(m2d_table_writer_t *w, const char *feature, bool reader, const char *config_key) {
  if (!w->features) w->features = json_object();
  json_t *f = json_object();
  json_object_set_new(f, "reader", json_boolean(reader));
  if (config_key) json_object_set_new(f, "config", json_string(config_key));
  json_object_set_new(w->features, feature, f);
}

/* The protocol action the next commit needs: {1, 2} for a new table, an upgrade to table
 * features (reader 3 / writer 7, listing what the legacy versions implied) when a wanted
 * feature is missing; NULL when the table's protocol stays. */
static json_t *protocol_action(const m2d_table_writer_t *w) {
  json_t *p = w->protocol ? json_deep_copy(w->protocol) : json_pack("{sisi}", "minReaderVersion", 1, "minWriterVersion", 2);
  bool changed = w->protocol == NULL;
  const char *name;
  json_t *f;
  json_object_foreach(w->features, name, f) {
    int rv = (int)json_integer_value(json_object_get(p, "minReaderVersion"));
    int wv = (int)json_integer_value(json_object_get(p, "minWriterVersion"));
    bool reader = json_is_true(json_object_get(f, "reader"));
    if (delta_protocol_has_feature(p, name, reader)) continue;
    changed = true;
    if (wv < DELTA_MAX_WRITER_VERSION) {
      json_object_set_new(p, "writerFeatures", delta_features_implied(wv, false));
      json_object_set_new(p, "minWriterVersion", json_integer(DELTA_MAX_WRITER_VERSION));
    }
    add_name(json_object_get(p, "writerFeatures"), name);
    if (reader) {
      if (rv < DELTA_MAX_READER_VERSION) {
        json_object_set_new(p, "readerFeatures", delta_features_implied(rv, true));
        json_object_set_new(p, "minReaderVersion", json_integer(DELTA_MAX_READER_VERSION));
      }
      add_name(json_object_get(p, "readerFeatures"), name);
    }
  }
  if (!changed) {
    json_decref(p);
    return NULL;
  }
  return json_pack("{so}", "protocol", p);
}

/* Whether a wanted feature's configuration key is not "true" yet. */
static bool config_missing(const m2d_table_writer_t *w) {
  const char *name;
  json_t *f;
  json_object_foreach(w->features, name, f) {
    const char *key = json_string_value(json_object_get(f, "config"));
    json_t *cfg = w->metadata ? json_object_get(w->metadata, "configuration") : NULL;
    if (key && (!w->metadata || !json_is_string(json_object_get(cfg, key)) ||
                strcmp(json_string_value(json_object_get(cfg, key)), "true") != 0))
      return true;
  }
  return false;
}

/* Copies onto the new schema what the table's schema says of its fields that ours does not
 * (nullable false, containsNull false, field metadata such as comments): a grown schema keeps
 * the table's NOT NULL columns. Returns whether anything was copied. */
static bool carry_attrs(const json_t *old, json_t *cur) {
  if (!json_is_object(old) || !json_is_object(cur)) return false;
  bool changed = false;
  static const char *const flags[] = {"containsNull", "valueContainsNull"};
  for (size_t k = 0; k < 2; k++)
    if (json_is_false(json_object_get(old, flags[k])) && json_object_get(cur, flags[k])) {
      changed |= !json_is_false(json_object_get(cur, flags[k]));
      json_object_set_new(cur, flags[k], json_false());
    }
  changed |= carry_attrs(json_object_get(old, "elementType"), json_object_get(cur, "elementType"));
  changed |= carry_attrs(json_object_get(old, "valueType"), json_object_get(cur, "valueType"));
  size_t i, j;
  json_t *nf, *of;
  json_array_foreach(json_object_get(cur, "fields"), i, nf) {
    const char *name = json_string_value(json_object_get(nf, "name"));
    json_array_foreach(json_object_get(old, "fields"), j, of) {
      if (!name || !json_equal(json_object_get(of, "name"), json_object_get(nf, "name"))) continue;
      if (json_is_false(json_object_get(of, "nullable")) && !json_is_false(json_object_get(nf, "nullable"))) {
        json_object_set_new(nf, "nullable", json_false());
        changed = true;
      }
      json_t *om = json_object_get(of, "metadata");
      if (json_object_size(om) && !json_equal(om, json_object_get(nf, "metadata"))) {
        json_object_set(nf, "metadata", om);
        changed = true;
      }
      changed |= carry_attrs(json_object_get(of, "type"), json_object_get(nf, "type"));
      break;
    }
  }
  return changed;
}

static json_t *metadata_action(m2d_table_writer_t *w, m2d_error_t *err) {
  m2d_buf_t js;
  m2d_buf_init(&js, (size_t)64 << 20);
  json_t *action = NULL;
  if (m2d_dtype_to_schema_json(w->schema, &js, err) && m2d_buf_terminate(&js, err)) {
    if (w->metadata) {
      json_t *m = json_deep_copy(w->metadata);
      json_t *old = json_loads(json_string_value(json_object_get(w->metadata, "schemaString")) ?: "null", 0, NULL);
      json_t *cur = json_loads((const char *)js.data, 0, NULL);
      bool changed = old && cur && carry_attrs(old, cur);
      if (cur && w->cm_schema) { /* the ids and physical names given to new fields */
        changed |= carry_attrs(w->cm_schema, cur);
        if (w->cm_max_id > delta_colmap_max_id(w->metadata)) {
          char num[32];
          snprintf(num, sizeof num, "%lld", (long long)w->cm_max_id);
          if (!json_is_object(json_object_get(m, "configuration"))) json_object_set_new(m, "configuration", json_object());
          json_object_set_new(json_object_get(m, "configuration"), "delta.columnMapping.maxColumnId", json_string(num));
        }
      }
      char *merged = changed ? json_dumps(cur, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
      json_object_set_new(m, "schemaString", json_string(merged ? merged : (const char *)js.data));
      free(merged);
      json_decref(old);
      json_decref(cur);
      action = json_pack("{so}", "metaData", m);
    } else {
      char id[37];
      delta_uuid4(id);
      json_t *pc = json_array();
      if (w->partition) json_array_append_new(pc, json_string(w->partition));
      action = delta_metadata_action(id, (const char *)js.data, pc, w->opts.configuration, delta_now_ms());
      json_decref(pc);
    }
  }
  json_t *m = json_object_get(action, "metaData");
  const char *name;
  json_t *f;
  json_object_foreach(w->features, name, f) {
    const char *key = json_string_value(json_object_get(f, "config"));
    if (!key || !m) continue;
    if (!json_is_object(json_object_get(m, "configuration"))) json_object_set_new(m, "configuration", json_object());
    json_object_set_new(json_object_get(m, "configuration"), key, json_string("true"));
  }
  m2d_buf_free(&js);
  return action;
}

bool m2d_table_writer_commit(m2d_table_writer_t *w, const char *app_id, int64_t app_version, json_t *info,
                             int64_t *version, m2d_error_t *err) {
  m2d_app_txn_t one = {app_id, app_version};
  return m2d_table_writer_commit_txns(w, &one, app_id ? 1 : 0, info, version, err);
}

bool m2d_table_writer_commit_txns(m2d_table_writer_t *w, const m2d_app_txn_t *txns, int ntxns, json_t *info,
                                  int64_t *version, m2d_error_t *err) {
  bool ok = w->open || m2d_error_set(err, M2D_ERR_INTERNAL, 0, "no batch begun");
  for (int i = 0; ok && i < w->nparts; i++) ok = close_file(w, &w->parts[i], err);
  if (ok && w->rearrange) {
    /* PROTOCOL.md: dataChange false, the rows of the removed files are those of the added ones */
    size_t i;
    json_t *a;
    json_array_foreach(w->adds, i, a) json_object_set_new(json_object_get(a, "add"), "dataChange", json_false());
    json_array_foreach(w->removes, i, a) json_object_set_new(json_object_get(a, "remove"), "dataChange", json_false());
  }
  if (ok && w->append_only) { /* PROTOCOL.md "Append-only Tables": no remove with dataChange true */
    size_t i;
    json_t *a;
    json_array_foreach(w->removes, i, a) if (!json_is_false(json_object_get(json_object_get(a, "remove"), "dataChange"))) ok = false;
    json_array_foreach(w->adds, i, a) {
      json_t *r = json_object_get(a, "remove");
      if (r && !json_is_false(json_object_get(r, "dataChange"))) ok = false;
    }
    if (!ok) append_only_error(err);
  }
  json_t *meta = NULL; /* the metaData action committed, if any */
  json_t *proto = NULL;
  for (int attempt = 0; ok; attempt++) {
    json_decref(meta);
    json_decref(proto);
    meta = NULL;
    if (w->rearrange && (w->version < 0 || w->schema_changed)) {
      ok = m2d_error_set(err, M2D_ERR_CONFLICT, DELTA_CONFLICT_METADATA,
                         "the table's schema changed under a batch that only rearranges its rows; nothing was "
                         "committed: run the command again");
      break;
    }
    delta_txn_t *t = delta_txn_new(w->store, w->version, w->batch_operation[0] ? w->batch_operation : w->opts.operation, err);
    ok = t != NULL;
    proto = protocol_action(w);
    if (ok && proto) ok = delta_txn_add(t, json_incref(proto), err);
    if (ok && (w->version < 0 || w->schema_changed || config_missing(w))) {
      meta = metadata_action(w, err);
      ok = meta && delta_txn_add(t, json_incref(meta), err);
    }
    /* the table's delta.checkpointInterval (a metaData in this commit speaks for itself) */
    const char *every = json_string_value(
        json_object_get(json_object_get(w->metadata, "configuration"), "delta.checkpointInterval"));
    if (ok && !meta && every && atoi(every) > 0) delta_txn_set_checkpoint_interval(t, atoi(every));
    size_t i;
    json_t *a;
    json_array_foreach(w->removes, i, a) if (ok) ok = delta_txn_add(t, json_incref(a), err);
    json_array_foreach(w->adds, i, a) if (ok) ok = delta_txn_add(t, json_incref(a), err);
    for (int k = 0; ok && k < ntxns; k++)
      ok = delta_txn_add(t, delta_txn_action(txns[k].app_id, txns[k].version, delta_now_ms()), err);
    if (ok && w->rearrange) {
      /* what Spark's OPTIMIZE records */
      int64_t removed_bytes = 0, dvs = 0;
      json_array_foreach(w->removes, i, a) {
        json_t *r = json_object_get(a, "remove");
        removed_bytes += json_integer_value(json_object_get(r, "size"));
        dvs += json_is_object(json_object_get(r, "deletionVector"));
      }
      delta_txn_param(t, "predicate", "[]");
      delta_txn_param(t, "zOrderBy", "[]");
      delta_txn_param(t, "auto", "false");
      delta_txn_metric(t, "numRemovedFiles", (int64_t)json_array_size(w->removes));
      delta_txn_metric(t, "numRemovedBytes", removed_bytes);
      delta_txn_metric(t, "numAddedFiles", w->batch.files);
      delta_txn_metric(t, "numAddedBytes", w->batch.bytes);
      delta_txn_metric(t, "numDeletionVectorsRemoved", dvs);
      delta_txn_metric(t, "numOutputRows", w->batch.rows);
      if (info) delta_txn_info(t, "mongo2delta", json_incref(info));
    } else if (ok) {
      delta_txn_param(t, "mode", "Append");
      char pb[1100];
      snprintf(pb, sizeof pb, w->partition ? "[\"%s\"]" : "[]", w->partition);
      delta_txn_param(t, "partitionBy", pb);
      delta_txn_metric(t, "numFiles", w->batch.files);
      delta_txn_metric(t, "numOutputRows", w->batch.rows);
      delta_txn_metric(t, "numOutputBytes", w->batch.bytes);
      if (info) delta_txn_info(t, "mongo2delta", json_incref(info));
    }
    if (ok) ok = delta_txn_commit(t, version, err);
    delta_txn_destroy(t);
    if (ok) break;
    bool retry = err && err->domain == M2D_ERR_CONFLICT &&
                 (err->code == DELTA_CONFLICT_METADATA || err->code == DELTA_CONFLICT_CREATED) &&
                 attempt < MAX_METADATA_RETRIES;
    if (!retry) break;
    m2d_debug("the table changed under this batch (%s); re-reading it", err->message);
    ok = rebase(w, err);
    /* a concurrent writer may already have taken what this batch meant to take */
    for (int k = 0; ok && k < ntxns; k++)
      if (m2d_table_writer_app_version(w, txns[k].app_id) >= txns[k].version)
        ok = m2d_error_set(err, M2D_ERR_CONFLICT, DELTA_CONFLICT_APP,
                           "another writer committed application id '%s' version %lld meanwhile; nothing was "
                           "committed",
                           txns[k].app_id, (long long)txns[k].version);
  }
  json_decref(info);
  if (!ok) {
    json_decref(meta);
    json_decref(proto);
    m2d_table_writer_abort(w);
    return false;
  }
  if (proto) {
    json_decref(w->protocol);
    w->protocol = json_incref(json_object_get(proto, "protocol"));
    json_decref(proto);
  }
  w->version = *version;
  for (int k = 0; k < ntxns; k++) json_object_set_new(w->txns, txns[k].app_id, json_integer(txns[k].version));
  if (meta) {
    /* remember the metaData as committed, for the next batch's schema changes */
    json_decref(w->metadata);
    w->metadata = json_incref(json_object_get(meta, "metaData"));
    json_decref(meta);
  }
  w->last = w->batch;
  json_decref(w->last_adds);
  w->last_adds = json_incref(w->adds);
  json_decref(w->written);
  w->written = json_array(); /* committed: abort must not remove them */
  batch_clear(w);
  return true;
}

bool m2d_table_writer_truncate(m2d_table_writer_t *w, json_t *configuration, int64_t *version, m2d_error_t *err) {
  m2d_table_writer_abort(w);
  if (w->append_only && w->version >= 0) {
    json_decref(configuration);
    return append_only_error(err);
  }
  bool ok = true;
  delta_snapshot_t snap;
  if (w->version < 0) {
    json_decref(configuration);
    *version = -1;
    return true; /* nothing to empty */
  }
  if (!delta_snapshot_load(w->store, w->version, &snap, err)) {
    json_decref(configuration);
    return false;
  }
  delta_txn_t *t = delta_txn_new(w->store, w->version, "DELETE", err);
  ok = t != NULL;
  int64_t now = delta_now_ms();
  size_t i;
  json_t *add;
  json_array_foreach(snap.files, i, add) {
    if (!ok) break;
    ok = delta_txn_add(t, delta_remove_action(add, now), err);
  }
  if (ok) {
    /* the table's properties stay (column mapping, constraints, retention...); the given keys
     * are set over them */
    json_t *m = json_deep_copy(w->metadata);
    if (!json_is_object(json_object_get(m, "configuration"))) json_object_set_new(m, "configuration", json_object());
    json_object_update(json_object_get(m, "configuration"), configuration);
    json_decref(configuration);
    configuration = NULL;
    ok = delta_txn_add(t, json_pack("{so}", "metaData", m), err);
  }
  if (ok) {
    delta_txn_param(t, "predicate", "[\"true\"]");
    delta_txn_metric(t, "numRemovedFiles", (int64_t)json_array_size(snap.files));
    ok = delta_txn_commit(t, version, err);
  }
  delta_txn_destroy(t);
  json_decref(configuration);
  delta_snapshot_free(&snap);
  return ok && load_table(w, err);
}
