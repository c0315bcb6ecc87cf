/* Building the actions a commit writes (PROTOCOL.md "Actions"), and the path spellings they
 * need: Hive-style partition directories and URI-encoded add paths. Actions are jansson
 * objects of the form {"add": {...}}; the caller owns what these return. */
#ifndef M2D_DELTA_ACTIONS_H
#define M2D_DELTA_ACTIONS_H

#include "core/buf.h"

#include <jansson.h>
#include <stdint.h>

/* A random (version 4) UUID in its 36-character form. */
void delta_uuid4(char out[37]);
/* Milliseconds since the epoch, now. */
int64_t delta_now_ms(void);

/* Appends value escaped for a Hive partition directory name (Spark's escapePathName:
 * control characters, DEL and the characters " # % ' * slash : = ? backslash { [ ] ^
 * become %XX). */
bool delta_hive_escape(const char *value, m2d_buf_t *out, m2d_error_t *err);
/* Appends a relative path percent-encoded as a URI path (what add.path holds): everything
 * but unreserved characters, '/' and the sub-delimiters Java's URI leaves alone. */
bool delta_uri_encode_path(const char *path, m2d_buf_t *out, m2d_error_t *err);

/* {"protocol": {...}}; features may be NULL (legacy versions) and are borrowed. */
json_t *delta_protocol_action(int min_reader, int min_writer, json_t *reader_features, json_t *writer_features);
/* {"metaData": {...}} with a new table id; partition_columns (array of names) and
 * configuration (object of strings) are borrowed, may be NULL. */
json_t *delta_metadata_action(const char *table_id, const char *schema_string, json_t *partition_columns,
                              json_t *configuration, int64_t created_ms);
/* {"add": {...}}; path is the unencoded relative path; partition_values (object of strings or
 * nulls) is borrowed, may be NULL; stats may be NULL. */
json_t *delta_add_action(const char *path, json_t *partition_values, uint64_t size, int64_t modification_ms,
                         const char *stats);
/* {"remove": {...}} of a file the log holds as add (path, partition values, size and
 * deletion vector taken over, dataChange true); NULL when add lacks path, partitionValues or size. */
json_t *delta_remove_action(const json_t *add, int64_t deletion_ms);
/* {"txn": {"appId", "version", "lastUpdated"}}. */
json_t *delta_txn_action(const char *app_id, int64_t version, int64_t last_updated_ms);

#endif
