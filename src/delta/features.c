#include "delta/features.h"

#include "core/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { READ = 1 << DELTA_USE_READ, WRITE = 1 << DELTA_USE_WRITE, VACUUM = 1 << DELTA_USE_VACUUM };

typedef struct {
  const char *name;
  int legacy_writer; /* the writer version that implies it before table features, 0: none */
  int legacy_reader; /* the reader version that implies it, 0: none */
  unsigned uses;     /* READ | WRITE | VACUUM */
} feature_t;

/* The legacy ones first, in the order of their versions: the upgrade lists them so. A feature
 * not here is supported by nothing. */
static const feature_t FEATURES[] = {
    {"appendOnly", 2, 0, WRITE | VACUUM},     /* delta.appendOnly honoured by table_writer */
    {"invariants", 2, 0, WRITE | VACUUM},       /* written while no column has one (table_writer) */
    {"checkConstraints", 3, 0, WRITE | VACUUM}, /* enforced on every row (delta/constraints) */
    {"changeDataFeed", 4, 0, WRITE | VACUUM},
    {"generatedColumns", 4, 0, WRITE | VACUUM}, /* written while no column is generated */
    {"columnMapping", 5, 2, READ | WRITE | VACUUM}, /* written by delta/colmap */
    {"identityColumns", 6, 0, VACUUM},
    {"deletionVectors", 0, 0, READ | WRITE | VACUUM},
    {"domainMetadata", 0, 0, READ | WRITE | VACUUM},
    {"vacuumProtocolCheck", 0, 0, READ | WRITE | VACUUM},
    {"timestampNtz", 0, 0, READ | WRITE | VACUUM},
    {"rowTracking", 0, 0, VACUUM},
    {"clustering", 0, 0, VACUUM},
    {"inCommitTimestamp", 0, 0, VACUUM}, /* vacuum then adds no commit: ours carry no timestamp */
    {"v2Checkpoint", 0, 0, READ | WRITE | VACUUM}, /* delta/checkpoint_v2: read with sidecars, written v2 */
    /* files written before a widening are read as the table's type (delta/widen); we never widen */
    {"typeWidening", 0, 0, READ | WRITE | VACUUM},
    {"typeWidening-preview", 0, 0, READ | WRITE | VACUUM},
};
#define NFEATURES (sizeof FEATURES / sizeof FEATURES[0])

static const feature_t *find(const char *name) {
  for (size_t i = 0; name && i < NFEATURES; i++)
    if (strcmp(FEATURES[i].name, name) == 0) return &FEATURES[i];
  return NULL;
}

bool delta_feature_supported(const char *name, delta_use_t use) {
  const feature_t *f = find(name);
  return f && (f->uses & (1u << use));
}

static long long version(const json_t *protocol, bool reader) {
  return (long long)json_integer_value(json_object_get(protocol, reader ? "minReaderVersion" : "minWriterVersion"));
}

static bool listed(const json_t *array, const char *name) {
  size_t i;
  json_t *v;
  json_array_foreach(array, i, v)
    if (json_is_string(v) && strcmp(json_string_value(v), name) == 0) return true;
  return false;
}

static bool implied(const feature_t *f, long long v, bool reader) {
  int since = reader ? f->legacy_reader : f->legacy_writer;
  return since && v >= since && v < (reader ? DELTA_MAX_READER_VERSION : DELTA_MAX_WRITER_VERSION);
}

bool delta_features_first_unsupported(const json_t *protocol, delta_use_t use, char *out, size_t n) {
  bool reader = use == DELTA_USE_READ;
  long long v = version(protocol, reader);
  if (v > (reader ? DELTA_MAX_READER_VERSION : DELTA_MAX_WRITER_VERSION)) {
    snprintf(out, n, "%s version %lld", reader ? "reader" : "writer", v);
    return true;
  }
  size_t i;
  json_t *f;
  json_array_foreach(json_object_get(protocol, reader ? "readerFeatures" : "writerFeatures"), i, f) {
    const char *name = json_string_value(f);
    if (!delta_feature_supported(name, use)) {
      snprintf(out, n, "%s", name ? name : "?");
      return true;
    }
  }
  for (size_t k = 0; k < NFEATURES; k++)
    if (implied(&FEATURES[k], v, reader) && !(FEATURES[k].uses & (1u << use))) {
      snprintf(out, n, "%s", FEATURES[k].name);
      return true;
    }
  if (n) out[0] = '\0';
  return false;
}

char *delta_unsupported_reader_features(const json_t *protocol) {
  long long rv = version(protocol, true);
  if (rv > DELTA_MAX_READER_VERSION) {
    char *m = malloc(64);
    if (m) snprintf(m, 64, "reader version %lld", rv);
    return m;
  }
  m2d_buf_t b;
  m2d_buf_init(&b, 1 << 16);
  size_t i;
  json_t *f;
  json_array_foreach(json_object_get(protocol, "readerFeatures"), i, f) {
    const char *name = json_string_value(f);
    if (!delta_feature_supported(name, DELTA_USE_READ))
      m2d_buf_appendf(&b, NULL, "%s%s", b.len ? ", " : "", name ? name : "?");
  }
  if (!b.len) {
    m2d_buf_free(&b);
    return NULL;
  }
  m2d_buf_terminate(&b, NULL);
  return (char *)m2d_buf_steal(&b, NULL);
}

bool delta_features_check(const json_t *protocol, delta_use_t use, const char *why, m2d_error_t *err) {
  why = why ? why : "";
  char *unread = delta_unsupported_reader_features(protocol);
  if (unread) {
    m2d_error_set(err, M2D_ERR_FORMAT, 0, "the table uses reader features mongo2delta does not support: %s%s", unread,
                  why);
    free(unread);
    return false;
  }
  char name[256];
  if (use == DELTA_USE_READ || !delta_features_first_unsupported(protocol, use, name, sizeof name)) return true;
  long long wv = version(protocol, false);
  if (wv > DELTA_MAX_WRITER_VERSION)
    return m2d_error_set(err, M2D_ERR_FORMAT, 0, "the table has an unknown writer version %lld%s", wv, why);
  return m2d_error_set(err, M2D_ERR_FORMAT, 0,
                       "the table uses the writer feature '%s', which mongo2delta does not %s%s", name,
                       use == DELTA_USE_WRITE ? "support" : "know", why);
}

static bool has_side(const json_t *protocol, const char *name, bool reader) {
  long long v = version(protocol, reader);
  if (v >= (reader ? DELTA_MAX_READER_VERSION : DELTA_MAX_WRITER_VERSION))
    return listed(json_object_get(protocol, reader ? "readerFeatures" : "writerFeatures"), name);
  const feature_t *f = find(name);
  return f && implied(f, v, reader);
}

bool delta_protocol_has_feature(const json_t *protocol, const char *name, bool reader) {
  return has_side(protocol, name, false) && (!reader || has_side(protocol, name, true));
}

json_t *delta_features_implied(int v, bool reader) {
  json_t *names = json_array();
  for (size_t k = 0; k < NFEATURES; k++)
    if (implied(&FEATURES[k], v, reader)) json_array_append_new(names, json_string(FEATURES[k].name));
  return names;
}
