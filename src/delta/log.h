/* Delta log replay (PROTOCOL.md): a table's state at a version, from _last_checkpoint, the
 * newest usable checkpoint (classic or multi-part, read with our Parquet reader) and the JSON
 * commits after it. The live files are kept compact (delta_file_t: the fields every reader
 * needs typed, statistics as raw text, the rest as jansson); the other actions as jansson
 * objects, exactly as the log holds them. */
#ifndef M2D_DELTA_LOG_H
#define M2D_DELTA_LOG_H

#include "storage/store.h"

#include <jansson.h>

/* One live add action. Fields the log did not give as their type (a size that is not an
 * integer, ...) stay in extra, as they were, and the typed field is then absent. */
typedef struct {
  const char *path;          /* as the log spells it (percent-encoded); NULL when absent */
  const char *stats;         /* the statistics JSON text as the log holds it; NULL when absent */
  int64_t size;              /* DELTA_FILE_SIZE */
  int64_t modification_time; /* DELTA_FILE_MTIME */
  json_t *extra;             /* the other fields (partitionValues unless empty, deletionVector,
                                tags, baseRowId, ...), owned; NULL when none */
  const char *key;           /* reconciliation key (delta_file_key) */
  uint8_t flags;
} delta_file_t;

enum {
  DELTA_FILE_SIZE = 1,
  DELTA_FILE_MTIME = 2,
  DELTA_FILE_DATA_CHANGE = 4, /* dataChange present ... */
  DELTA_FILE_DATA_CHANGE_TRUE = 8, /* ... and true */
  DELTA_FILE_EMPTY_PV = 16,   /* partitionValues present and empty (not kept in extra) */
  DELTA_FILE_DEAD = 32,       /* replay only: removed or superseded */
};

/* The add's partitionValues (borrowed; NULL when the add has none or they are empty) and its
 * deletionVector (NULL when none). */
json_t *delta_file_partition_values(const delta_file_t *f);
json_t *delta_file_dv(const delta_file_t *f);
/* The add as the jansson object of the log's form (a new reference). */
json_t *delta_file_json(const delta_file_t *f);

typedef struct delta_arena delta_arena_t;

typedef struct {
  int64_t version;        /* the version read */
  int64_t checkpoint;     /* the checkpoint version used, -1 when replayed from JSON alone */
  json_t *protocol;       /* the protocol action */
  json_t *metadata;       /* the metaData action */
  json_t *files;          /* array of add actions, sorted by path (NULL until
                             delta_snapshot_files when loaded with DELTA_LOAD_COMPACT) */
  delta_file_t *adds;     /* the same files, compact, sorted by path */
  size_t nadds;
  json_t *txns;           /* object appId -> version */
  json_t *commits;        /* array of {version, timestamp, operation} for the last commits, newest last */
  json_t *domains;        /* object domain -> configuration (domainMetadata) */
  json_t *tombstones;     /* array of remove actions whose file is not live again, from the
                             checkpoint used and the commits after it (for VACUUM, checkpoints) */
  delta_arena_t *arena;   /* the strings of adds */
} delta_snapshot_t;

/* Reads the table at version (-1: the latest). Errors name the log file and what is wrong. */
bool delta_snapshot_load(m2d_store_t *store, int64_t version, delta_snapshot_t *snap, m2d_error_t *err);
/* DELTA_LOAD_COMPACT: files stays NULL (only adds is filled) until delta_snapshot_files asks;
 * building 100,000 jansson objects costs more than the replay itself. */
/* DELTA_LOAD_NO_TOMBSTONES: tombstones stays empty (the checkpoint's remove columns are not
 * read), for readers that only want the live files. */
enum { DELTA_LOAD_COMPACT = 1, DELTA_LOAD_NO_TOMBSTONES = 2 };
bool delta_snapshot_load_ex(m2d_store_t *store, int64_t version, unsigned flags, delta_snapshot_t *snap,
                            m2d_error_t *err);
/* snap->files, built from snap->adds on first use (borrowed). */
json_t *delta_snapshot_files(delta_snapshot_t *snap);
void delta_snapshot_free(delta_snapshot_t *snap);

/* Appends the sidecar actions of the checkpoint file key (Parquet or a v2 checkpoint's JSON) to
 * the array out. */
bool delta_checkpoint_sidecars(m2d_store_t *store, const char *key, json_t *out, m2d_error_t *err);

/* Parses a commit file's newline-delimited JSON actions into an array (each an object with
 * one action key). name is for messages. */
json_t *delta_parse_actions(const char *name, const uint8_t *data, size_t len, m2d_error_t *err);

/* The commitInfo (new reference) of the commit that holds txn (app_id, txn_version), searched
 * from version `from` down (JSON commits: the log keeps them). NULL with err set when that commit
 * is not in the log any more. */
json_t *delta_find_txn_commit(m2d_store_t *store, int64_t from, const char *app_id, int64_t txn_version,
                              m2d_error_t *err);

/* The reconciliation key of an add/remove (PROTOCOL.md): its path as the log spells it and its
 * deletion vector's id, written to out. */
void delta_file_key(const json_t *action, char *out, size_t n);

/* Decodes a percent-encoded add/remove path. */
void delta_path_decode(const char *in, char *out, size_t outsz);

/* The table's delta.deletedFileRetentionDuration (metaData configuration, Spark's interval
 * syntax: "interval 1 week", "interval 168 hours", "7 days") in milliseconds; one week when
 * absent or not understood. How long removed files stay for readers of older versions. */
int64_t delta_deleted_file_retention_ms(const json_t *metadata);

/* A duration in Spark's interval syntax ("interval 30 days", "interval 1 second", "2 hours 30
 * minutes"; units millisecond, second, minute, hour, day, week, singular or plural) in
 * milliseconds; false when s is not one. */
bool delta_interval_parse(const char *s, int64_t *ms);

#endif
