/* Delta table features (PROTOCOL.md "Table Features"): the one list of what mongo2delta can
 * read, what it can write and what its vacuum knows, and the features the legacy protocol
 * versions imply. Supporting a feature starts here: every check (cat and the scan, the table
 * writer, vacuum) asks this list. */
#ifndef M2D_DELTA_FEATURES_H
#define M2D_DELTA_FEATURES_H

#include "core/error.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* The newest protocol versions: reader 3 / writer 7 list their features by name. */
#define DELTA_MAX_READER_VERSION 3
#define DELTA_MAX_WRITER_VERSION 7

typedef enum {
  DELTA_USE_READ,   /* reading rows: the reader features count */
  DELTA_USE_WRITE,  /* committing data files: the writer features count */
  DELTA_USE_VACUUM, /* deleting unreferenced files: writer features whose files vacuum knows */
} delta_use_t;

/* Whether `use` supports the feature (a name from readerFeatures / writerFeatures). */
bool delta_feature_supported(const char *name, delta_use_t use);

/* The first feature that protocol (a protocol action's value) asks for and `use` does not
 * support, written to out: a name from its feature lists, one its legacy versions imply
 * (minWriterVersion 5: "columnMapping"), or "reader version N" / "writer version N" for a version
 * newer than table features. Returns false, out "", when `use` supports everything. */
bool delta_features_first_unsupported(const json_t *protocol, delta_use_t use, char *out, size_t n);

/* Refuses (M2D_ERR_FORMAT) a table whose protocol asks for what `use` does not support, naming
 * the reader features not read, the unknown writer version or the first writer feature `use`
 * does not support (writing and vacuum read the table too: the reader side is checked for every
 * use). why is appended to the message (what it means for the command), or NULL. */
bool delta_features_check(const json_t *protocol, delta_use_t use, const char *why, m2d_error_t *err);

/* Every reader feature of the protocol that reading does not support, ", "-separated ("reader
 * version N" for a version newer than table features), for messages; NULL when none; caller frees. */
char *delta_unsupported_reader_features(const json_t *protocol);

/* Whether the protocol has the feature: listed (reader 3 / writer 7) or implied by its legacy
 * version (writer 4: changeDataFeed). With reader, it must be a reader feature of it too. */
bool delta_protocol_has_feature(const json_t *protocol, const char *name, bool reader);

/* The features a legacy version implies, as a new JSON array of names (for the upgrade to table
 * features, which must list them): writer 2 appendOnly and invariants, 3 checkConstraints, 4
 * changeDataFeed and generatedColumns, 5 columnMapping, 6 identityColumns; reader 2 columnMapping. */
json_t *delta_features_implied(int version, bool reader);

#endif
