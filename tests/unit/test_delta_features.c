/* delta/features: what each use supports, on protocol actions as Spark and Databricks write
 * them (legacy versions and table features). */
#include "delta/features.h"
#include "test.h"

#include <stdlib.h>

static json_t *proto(const char *text) { return json_loads(text, 0, NULL); }

/* The first unsupported feature for use, "" when none. */
static const char *first(const char *protocol, delta_use_t use) {
  static char out[128];
  json_t *p = proto(protocol);
  bool found = delta_features_first_unsupported(p, use, out, sizeof out);
  json_decref(p);
  if (!found && out[0]) return "(found is false but out is not empty)";
  return out;
}

/* A protocol action's value and the first feature reading, writing and vacuum do not support. */
static const struct {
  const char *protocol, *read, *write, *vacuum;
} CASES[] = {
    /* what mongo2delta creates, and the legacy versions it writes */
    {"{\"minReaderVersion\":1,\"minWriterVersion\":2}", "", "", ""},
    {"{\"minReaderVersion\":1,\"minWriterVersion\":4}", "", "", ""},
    /* writer 5 and 6 imply column mapping (read and written) and identity columns (not written) */
    {"{\"minReaderVersion\":2,\"minWriterVersion\":5}", "", "", ""},
    {"{\"minReaderVersion\":2,\"minWriterVersion\":6}", "", "identityColumns", ""},
    /* versions newer than table features */
    {"{\"minReaderVersion\":99,\"minWriterVersion\":7}", "reader version 99", "", ""},
    {"{\"minReaderVersion\":1,\"minWriterVersion\":8}", "", "writer version 8", "writer version 8"},
    /* what sync turns on */
    {"{\"minReaderVersion\":3,\"minWriterVersion\":7,\"readerFeatures\":[\"deletionVectors\"],"
     "\"writerFeatures\":[\"deletionVectors\",\"appendOnly\",\"invariants\",\"changeDataFeed\"]}",
     "", "", ""},
    /* Spark's type widening: read as the table's types (delta/widen), written (we never widen) */
    {"{\"minReaderVersion\":3,\"minWriterVersion\":7,\"readerFeatures\":[\"timestampNtz\",\"typeWidening-preview\"],"
     "\"writerFeatures\":[\"timestampNtz\",\"typeWidening-preview\"]}",
     "", "", ""},
    /* row tracking and liquid clustering: vacuum knows their files, the writer does not keep them */
    {"{\"minReaderVersion\":1,\"minWriterVersion\":7,\"writerFeatures\":[\"appendOnly\",\"rowTracking\","
     "\"clustering\"]}",
     "", "rowTracking", ""},
    /* column mapping as a table feature */
    {"{\"minReaderVersion\":3,\"minWriterVersion\":7,\"readerFeatures\":[\"columnMapping\"],"
     "\"writerFeatures\":[\"columnMapping\"]}",
     "", "", ""},
    /* v2 checkpoints: read (sidecars too), written as v2 ones (delta/checkpoint_v2) */
    {"{\"minReaderVersion\":3,\"minWriterVersion\":7,\"readerFeatures\":[\"v2Checkpoint\"],"
     "\"writerFeatures\":[\"v2Checkpoint\"]}",
     "", "", ""},
    /* a name nobody knows is refused by everyone */
    {"{\"minReaderVersion\":3,\"minWriterVersion\":7,\"readerFeatures\":[\"someFutureFeature\"],"
     "\"writerFeatures\":[\"someFutureFeature\"]}",
     "someFutureFeature", "someFutureFeature", "someFutureFeature"},
};

TEST(features_first_unsupported_per_use) {
  for (size_t i = 0; i < sizeof CASES / sizeof CASES[0]; i++) {
    CHECK_STR(first(CASES[i].protocol, DELTA_USE_READ), CASES[i].read);
    CHECK_STR(first(CASES[i].protocol, DELTA_USE_WRITE), CASES[i].write);
    CHECK_STR(first(CASES[i].protocol, DELTA_USE_VACUUM), CASES[i].vacuum);
  }
  CHECK(delta_feature_supported("inCommitTimestamp", DELTA_USE_VACUUM));
  CHECK(!delta_feature_supported("inCommitTimestamp", DELTA_USE_WRITE));
  CHECK(!delta_feature_supported(NULL, DELTA_USE_READ));
}

TEST(features_unsupported_reader_list_names_all) {
  json_t *p = proto("{\"minReaderVersion\":3,\"minWriterVersion\":7,\"readerFeatures\":[\"someFutureFeature\","
                    "\"deletionVectors\",\"variantType-preview\"],\"writerFeatures\":[]}");
  char *m = delta_unsupported_reader_features(p);
  json_decref(p);
  CHECK(m);
  bool same = strcmp(m, "someFutureFeature, variantType-preview") == 0;
  free(m);
  CHECK(same);
  p = proto("{\"minReaderVersion\":3,\"minWriterVersion\":7,\"readerFeatures\":[\"timestampNtz\"]}");
  m = delta_unsupported_reader_features(p);
  json_decref(p);
  CHECK(m == NULL);
}

TEST(features_has_and_implied) {
  json_t *p = proto("{\"minReaderVersion\":1,\"minWriterVersion\":4}");
  bool cdf = delta_protocol_has_feature(p, "changeDataFeed", false);
  bool dv = delta_protocol_has_feature(p, "deletionVectors", false);
  bool cm = delta_protocol_has_feature(p, "columnMapping", false);
  json_decref(p);
  CHECK(cdf && !dv && !cm);
  p = proto("{\"minReaderVersion\":3,\"minWriterVersion\":7,\"readerFeatures\":[\"deletionVectors\"],"
            "\"writerFeatures\":[\"deletionVectors\",\"inCommitTimestamp\"]}");
  bool dv_r = delta_protocol_has_feature(p, "deletionVectors", true);
  bool ict = delta_protocol_has_feature(p, "inCommitTimestamp", false);
  bool ict_r = delta_protocol_has_feature(p, "inCommitTimestamp", true);
  cdf = delta_protocol_has_feature(p, "changeDataFeed", false); /* writer 7 implies nothing */
  json_decref(p);
  CHECK(dv_r && ict && !ict_r && !cdf);
  /* the upgrade to table features lists what the legacy versions implied, in version order */
  json_t *w = delta_features_implied(4, false), *r = delta_features_implied(2, true),
         *none = delta_features_implied(1, false);
  char *ws = json_dumps(w, JSON_COMPACT), *rs = json_dumps(r, JSON_COMPACT);
  bool ok = strcmp(ws,
                   "[\"appendOnly\",\"invariants\",\"checkConstraints\",\"changeDataFeed\",\"generatedColumns\"]") ==
                0 &&
            strcmp(rs, "[\"columnMapping\"]") == 0 && json_array_size(none) == 0;
  free(ws);
  free(rs);
  json_decref(w);
  json_decref(r);
  json_decref(none);
  CHECK(ok);
  w = delta_features_implied(6, false);
  size_t n = json_array_size(w);
  const char *last = json_string_value(json_array_get(w, n - 1));
  ok = n == 7 && last && strcmp(last, "identityColumns") == 0;
  json_decref(w);
  CHECK(ok);
}

TEST(features_check_says_what_and_why) {
  m2d_error_t err = {0};
  json_t *p = proto("{\"minReaderVersion\":3,\"minWriterVersion\":7,\"readerFeatures\":[\"someFutureFeature\"],"
                    "\"writerFeatures\":[\"someFutureFeature\"]}");
  bool ok = delta_features_check(p, DELTA_USE_VACUUM, "; not vacuumed", &err);
  json_decref(p);
  CHECK(!ok && err.domain == M2D_ERR_FORMAT);
  CHECK_STR(err.message, "the table uses reader features mongo2delta does not support: someFutureFeature; not vacuumed");
  p = proto("{\"minReaderVersion\":1,\"minWriterVersion\":7,\"writerFeatures\":[\"appendOnly\",\"rowTracking\"]}");
  bool read = delta_features_check(p, DELTA_USE_READ, NULL, &err),
       vacuum = delta_features_check(p, DELTA_USE_VACUUM, NULL, &err);
  ok = delta_features_check(p, DELTA_USE_WRITE, ": write to a new table", &err);
  json_decref(p);
  CHECK(read && vacuum && !ok);
  CHECK_STR(
      err.message,
      "the table uses the writer feature 'rowTracking', which mongo2delta does not support: write to a new table");
  p = proto("{\"minReaderVersion\":1,\"minWriterVersion\":8}");
  read = delta_features_check(p, DELTA_USE_READ, NULL, &err);
  ok = delta_features_check(p, DELTA_USE_WRITE, NULL, &err);
  json_decref(p);
  CHECK(read && !ok);
  CHECK_STR(err.message, "the table has an unknown writer version 8");
}
