#include "delta/actions.h"

#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>
#include <time.h>

void delta_uuid4(char out[37]) {
  uint8_t b[16];
  if (getrandom(b, sizeof b, 0) != (ssize_t)sizeof b) {
    /* getrandom on Linux does not fail for 16 bytes once the pool is ready; never leave a
     * fixed id behind if it did */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t x = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ ((uint64_t)getpid() << 40);
    for (int i = 0; i < 16; i++) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      b[i] = (uint8_t)x;
    }
  }
  b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
  b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
  snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2], b[3],
           b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}

int64_t delta_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool append_pct(m2d_buf_t *out, unsigned char c, m2d_error_t *err) {
  char hex[4];
  snprintf(hex, sizeof hex, "%%%02X", c);
  return m2d_buf_append(out, hex, 3, err);
}

bool delta_hive_escape(const char *value, m2d_buf_t *out, m2d_error_t *err) {
  for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
    bool esc = *p < 0x20 || *p == 0x7f || strchr("\"#%'*/:=?\\{[]^", *p);
    if (!(esc ? append_pct(out, *p, err) : m2d_buf_append(out, p, 1, err))) return false;
  }
  return true;
}

bool delta_uri_encode_path(const char *path, m2d_buf_t *out, m2d_error_t *err) {
  for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
    bool keep = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                (*p && strchr("-_.~!$&'()*+,;=:@/", *p));
    if (!(keep ? m2d_buf_append(out, p, 1, err) : append_pct(out, *p, err))) return false;
  }
  return true;
}

json_t *delta_protocol_action(int min_reader, int min_writer, json_t *reader_features, json_t *writer_features) {
  json_t *p = json_pack("{sisi}", "minReaderVersion", min_reader, "minWriterVersion", min_writer);
  if (reader_features) json_object_set(p, "readerFeatures", reader_features);
  if (writer_features) json_object_set(p, "writerFeatures", writer_features);
  return json_pack("{so}", "protocol", p);
}

json_t *delta_metadata_action(const char *table_id, const char *schema_string, json_t *partition_columns,
                              json_t *configuration, int64_t created_ms) {
  json_t *m = json_pack("{sss{sss{}}sssOsOsI}", "id", table_id, "format", "provider", "parquet", "options",
                        "schemaString", schema_string, "partitionColumns",
                        partition_columns ? partition_columns : json_array(), "configuration",
                        configuration ? configuration : json_object(), "createdTime", (json_int_t)created_ms);
  /* json_pack's O took a reference even of the fresh defaults: drop ours */
  if (!partition_columns) json_decref(json_object_get(m, "partitionColumns"));
  if (!configuration) json_decref(json_object_get(m, "configuration"));
  return json_pack("{so}", "metaData", m);
}

json_t *delta_add_action(const char *path, json_t *partition_values, uint64_t size, int64_t modification_ms,
                         const char *stats) {
  m2d_buf_t enc;
  m2d_buf_init(&enc, 1 << 20);
  if (!delta_uri_encode_path(path, &enc, NULL) || !m2d_buf_append(&enc, "", 1, NULL)) {
    m2d_buf_free(&enc);
    return NULL;
  }
  json_t *a = json_pack("{sssOsIsIsb}", "path", (const char *)enc.data, "partitionValues",
                        partition_values ? partition_values : json_object(), "size", (json_int_t)size,
                        "modificationTime", (json_int_t)modification_ms, "dataChange", 1);
  if (!partition_values) json_decref(json_object_get(a, "partitionValues"));
  m2d_buf_free(&enc);
  if (stats) json_object_set_new(a, "stats", json_string(stats));
  return json_pack("{so}", "add", a);
}

json_t *delta_txn_action(const char *app_id, int64_t version, int64_t last_updated_ms) {
  return json_pack("{s{sssIsI}}", "txn", "appId", app_id, "version", (json_int_t)version, "lastUpdated",
                   (json_int_t)last_updated_ms);
}

json_t *delta_remove_action(const json_t *add, int64_t deletion_ms) {
  json_t *r = json_pack("{s{sOsIsbsbsOsO}}", "remove", "path", json_object_get(add, "path"), "deletionTimestamp",
                        (json_int_t)deletion_ms, "dataChange", 1, "extendedFileMetadata", 1, "partitionValues",
                        json_object_get(add, "partitionValues"), "size", json_object_get(add, "size"));
  json_t *dv = json_object_get(add, "deletionVector");
  if (r && json_is_object(dv)) json_object_set(json_object_get(r, "remove"), "deletionVector", dv);
  return r;
}
