#include "delta/checkpoint.h"

#include "delta/checkpoint_v2.h"

#include "delta/actions.h"
#include "delta/cleanup.h"
#include "core/log.h"
#include "delta/log.h"
#include "parquet/json_input.h"
#include "parquet/schema_json.h"
#include "parquet/writer.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define F(n, t) "{\"name\":\"" n "\",\"type\":" t ",\"nullable\":true,\"metadata\":{}}"
#define S(...) "{\"type\":\"struct\",\"fields\":[" __VA_ARGS__ "]}"
#define MAP_SS "{\"type\":\"map\",\"keyType\":\"string\",\"valueType\":\"string\",\"valueContainsNull\":true}"
#define ARR_S "{\"type\":\"array\",\"elementType\":\"string\",\"containsNull\":true}"
#define DV S(F("storageType", "\"string\"") "," F("pathOrInlineDv", "\"string\"") "," F("offset", "\"integer\"") "," \
             F("sizeInBytes", "\"integer\"") "," F("cardinality", "\"long\""))

/* The checkpoint schema Spark writes (and delta-rs reads), in Delta's own schema JSON; a v2
 * checkpoint adds the checkpointMetadata action (PROTOCOL.md "V2 Spec"). */
#define CHECKPOINT_FIELDS \
    F("txn", S(F("appId", "\"string\"") "," F("version", "\"long\"") "," F("lastUpdated", "\"long\""))) "," \
    F("add", S(F("path", "\"string\"") "," F("partitionValues", MAP_SS) "," F("size", "\"long\"") "," \
               F("modificationTime", "\"long\"") "," F("dataChange", "\"boolean\"") "," F("tags", MAP_SS) "," \
               F("deletionVector", DV) "," F("baseRowId", "\"long\"") "," F("defaultRowCommitVersion", "\"long\"") "," \
               F("stats", "\"string\""))) "," \
    F("remove", S(F("path", "\"string\"") "," F("deletionTimestamp", "\"long\"") "," F("dataChange", "\"boolean\"") "," \
                  F("extendedFileMetadata", "\"boolean\"") "," F("partitionValues", MAP_SS) "," F("size", "\"long\"") "," \
                  F("tags", MAP_SS) "," F("deletionVector", DV) "," F("baseRowId", "\"long\"") "," \
                  F("defaultRowCommitVersion", "\"long\""))) "," \
    F("metaData", S(F("id", "\"string\"") "," F("name", "\"string\"") "," F("description", "\"string\"") "," \
                    F("format", S(F("provider", "\"string\"") "," F("options", MAP_SS))) "," \
                    F("schemaString", "\"string\"") "," F("partitionColumns", ARR_S) "," \
                    F("configuration", MAP_SS) "," F("createdTime", "\"long\""))) "," \
    F("protocol", S(F("minReaderVersion", "\"integer\"") "," F("minWriterVersion", "\"integer\"") "," \
                    F("readerFeatures", ARR_S) "," F("writerFeatures", ARR_S))) "," \
    F("domainMetadata", S(F("domain", "\"string\"") "," F("configuration", "\"string\"") "," F("removed", "\"boolean\"")))
static const char CHECKPOINT_SCHEMA[] = S(CHECKPOINT_FIELDS);
static const char CHECKPOINT_V2_SCHEMA[] =
    S(CHECKPOINT_FIELDS "," F("checkpointMetadata", S(F("version", "\"long\"") "," F("tags", MAP_SS))));

/* A copy of obj with only the listed keys (the checkpoint schema's), so fields a newer
 * writer added to an action do not stop the checkpoint. */
static json_t *project(json_t *obj, const char *const *keys) {
  json_t *out = json_object();
  for (; *keys; keys++) {
    json_t *v = json_object_get(obj, *keys);
    if (v && !json_is_null(v)) json_object_set(out, *keys, v);
  }
  return out;
}

static const char *const DV_KEYS[] = {"storageType", "pathOrInlineDv", "offset", "sizeInBytes", "cardinality", NULL};
static const char *const ADD_KEYS[] = {"path",     "partitionValues", "size", "modificationTime", "dataChange", "tags",
                                       "baseRowId", "defaultRowCommitVersion", "stats", NULL};
static const char *const REMOVE_KEYS[] = {"path", "deletionTimestamp", "dataChange", "extendedFileMetadata",
                                          "partitionValues", "size", "baseRowId", "defaultRowCommitVersion", NULL};
static const char *const META_KEYS[] = {"id", "name", "description", "format", "schemaString", "partitionColumns",
                                        "configuration", "createdTime", NULL};
static const char *const PROTO_KEYS[] = {"minReaderVersion", "minWriterVersion", "readerFeatures", "writerFeatures",
                                         NULL};

typedef struct {
  pq_json_input_t *in;
  pq_writer_t *w;
  int64_t rows;
} out_t;

static bool flush(out_t *o, m2d_error_t *err) {
  if (pq_json_input_rows(o->in) == 0) return true;
  bool ok = pq_writer_write(o->w, pq_json_input_columns(o->in), err);
  pq_json_input_reset(o->in);
  return ok;
}

/* Adds the row {key: action}. Takes action. */
static bool row(out_t *o, const char *key, json_t *action, m2d_error_t *err) {
  json_t *r = json_pack("{so}", key, action);
  char *s = r ? json_dumps(r, JSON_COMPACT) : NULL;
  json_decref(r);
  if (!s) return m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory");
  bool ok = pq_json_input_add(o->in, s, strlen(s), err);
  free(s);
  o->rows++;
  if (ok && pq_json_input_memory(o->in) > ((size_t)16 << 20)) ok = flush(o, err);
  return ok;
}

bool delta_checkpoint_write(m2d_store_t *store, int64_t version, m2d_error_t *err) {
  delta_snapshot_t snap;
  if (!delta_snapshot_load(store, version, &snap, err)) return false;
  pq_schema_t schema = {0};
  out_t o = {0};
  char key[128], uuid[37];
  /* a v2Checkpoint table takes only v2 checkpoints: UUID-named, with checkpointMetadata (no
   * sidecars: every action in the one file) */
  bool v2 = delta_cp2_required(snap.protocol);
  if (v2) {
    delta_uuid4(uuid);
    snprintf(key, sizeof key, "_delta_log/%020" PRId64 ".checkpoint.%s.parquet", version, uuid);
  } else {
    snprintf(key, sizeof key, "_delta_log/%020" PRId64 ".checkpoint.parquet", version);
  }
  bool ok = pq_schema_from_json(v2 ? CHECKPOINT_V2_SCHEMA : CHECKPOINT_SCHEMA, &schema, err);
  if (ok) ok = (o.in = pq_json_input_new(&schema, err)) != NULL;
  m2d_sink_t *sink = ok ? store->create(store, key, err) : NULL;
  if (ok && !sink) ok = false;
  if (ok) {
    pq_writer_options_t opts = {.codec = PQ_CODEC_SNAPPY};
    o.w = pq_writer_new(&schema, sink, &opts, err);
    ok = o.w != NULL;
  }
  if (ok && v2) ok = row(&o, "checkpointMetadata", json_pack("{sI}", "version", (json_int_t)version), err);
  if (ok) ok = row(&o, "protocol", project(snap.protocol, PROTO_KEYS), err);
  if (ok) ok = row(&o, "metaData", project(snap.metadata, META_KEYS), err);
  const char *app;
  json_t *v;
  json_object_foreach(snap.txns, app, v) {
    if (!ok) break;
    ok = row(&o, "txn", json_pack("{sssO}", "appId", app, "version", v), err);
  }
  size_t i;
  json_t *add;
  int64_t nadds = 0;
  json_array_foreach(snap.files, i, add) {
    if (!ok) break;
    json_t *a = project(add, ADD_KEYS);
    json_t *dv = json_object_get(add, "deletionVector");
    if (json_is_object(dv)) json_object_set_new(a, "deletionVector", project(dv, DV_KEYS));
    ok = row(&o, "add", a, err);
    nadds++;
  }
  /* the tombstones that have not expired (PROTOCOL.md "Checkpoints"): VACUUM keeps their files
   * for readers of older versions until the retention has passed */
  int64_t expired_before = delta_now_ms() - delta_deleted_file_retention_ms(snap.metadata);
  json_t *rm;
  json_array_foreach(snap.tombstones, i, rm) {
    if (!ok) break;
    if (json_integer_value(json_object_get(rm, "deletionTimestamp")) <= expired_before) continue;
    json_t *r = project(rm, REMOVE_KEYS);
    json_t *dv = json_object_get(rm, "deletionVector");
    if (json_is_object(dv)) json_object_set_new(r, "deletionVector", project(dv, DV_KEYS));
    ok = row(&o, "remove", r, err);
  }
  const char *domain;
  json_object_foreach(snap.domains, domain, v) {
    if (!ok) break;
    ok = row(&o, "domainMetadata",
             json_pack("{sssOsb}", "domain", domain, "configuration", v, "removed", 0), err);
  }
  if (ok) ok = flush(&o, err);
  pq_write_result_t res = {0};
  if (ok) {
    ok = pq_writer_close(o.w, &res, err);
    o.w = NULL;
  }
  if (ok) {
    char *last = NULL;
    json_t *lc = json_pack("{sIsIsIsI}", "version", (json_int_t)version, "size", (json_int_t)o.rows, "sizeInBytes",
                           (json_int_t)res.file_size, "numOfAddFiles", (json_int_t)nadds);
    if (lc && v2) /* the v2 fields readers may use to skip the listing */
      json_object_set_new(lc, "v2Checkpoint",
                          json_pack("{sssIsI}", "path", key + strlen("_delta_log/"), "sizeInBytes",
                                    (json_int_t)res.file_size, "modificationTime", (json_int_t)delta_now_ms()));
    last = lc ? json_dumps(lc, JSON_COMPACT) : NULL;
    json_decref(lc);
    m2d_sink_t *ls = last ? store->create(store, "_delta_log/_last_checkpoint", err) : NULL;
    ok = ls && m2d_sink_write(ls, last, strlen(last), err) && m2d_sink_write(ls, "\n", 1, err);
    if (ls) ok = ok ? m2d_sink_finish(ls, err) : (m2d_sink_abort(ls), false);
    free(last);
  }
  if (ok) {
    /* the checkpoint stands either way; what was not removed goes at the next checkpoint */
    m2d_error_t cerr = {0};
    if (!delta_log_cleanup(store, snap.metadata, snap.txns, delta_now_ms(), NULL, NULL, &cerr))
      m2d_warn("checkpoint %" PRId64 " written, but the log was not cleaned up (nothing more was removed): %s",
               version, cerr.message);
  }
  pq_write_result_free(&res);
  pq_writer_destroy(o.w);
  pq_json_input_destroy(o.in);
  pq_schema_free(&schema);
  delta_snapshot_free(&snap);
  return ok;
}
