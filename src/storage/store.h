/* Where tables live: a small interface over object stores (design.md: local now; S3 and a
 * fault-injecting store stack on it later without touching delta/). Paths are keys relative
 * to the store's root, with '/' separators. */
#ifndef M2D_STORAGE_STORE_H
#define M2D_STORAGE_STORE_H

#include "core/buf.h"
#include "storage/io.h"

typedef struct {
  char *name; /* key relative to the listed prefix's directory root */
  uint64_t size;
  int64_t mtime_ms;
  bool is_dir; /* a directory (list it to see inside), not an object */
} m2d_store_entry_t;

typedef struct m2d_store m2d_store_t;
struct m2d_store {
  /* Whole object into out (reset first), at most max bytes. *missing (may be NULL) tells an
   * absent object apart from other errors. */
  bool (*get)(m2d_store_t *s, const char *key, m2d_buf_t *out, bool *missing, m2d_error_t *err);
  /* Entries directly under the directory key dir (non-recursive), sorted by name; hidden
   * names (starting with '.') are left out. Caller
   * frees with m2d_store_entries_free. A missing directory is an empty list. */
  bool (*list)(m2d_store_t *s, const char *dir, m2d_store_entry_t **out, size_t *n, m2d_error_t *err);
  /* Creates key with data only if it does not exist yet (atomically); *exists reports a lost race. */
  bool (*put_if_absent)(m2d_store_t *s, const char *key, const void *data, size_t len, bool *exists, m2d_error_t *err);
  /* Streaming write of a new object, published on m2d_sink_finish. */
  m2d_sink_t *(*create)(m2d_store_t *s, const char *key, m2d_error_t *err);
  /* Random reads of an object. */
  m2d_source_t *(*open)(m2d_store_t *s, const char *key, m2d_error_t *err);
  bool (*remove)(m2d_store_t *s, const char *key, m2d_error_t *err);
  /* Optional (NULL: m2d_store_list_all walks list()): every object under dir, recursively, names
   * relative to dir, in key order, only those after start_after (relative to dir; NULL or ""
   * for all); hidden names at any level left out. An object store answers it in pages of
   * keys, without a request per folder. */
  bool (*list_all)(m2d_store_t *s, const char *dir, const char *start_after, m2d_store_entry_t **out, size_t *n,
                   m2d_error_t *err);
  /* Optional (NULL: nothing of the kind): aborts the unfinished uploads (S3 multipart) under
   * the store started before before_ms, the leftovers of a writer that was killed; *n counts. */
  bool (*abort_uploads)(m2d_store_t *s, int64_t before_ms, int *n, m2d_error_t *err);
  /* Optional (NULL: list()): as list, but size and mtime_ms may be 0, so that a local directory
   * answers without a stat per entry (log replay lists 11,000 commits and needs their names). */
  bool (*list_names)(m2d_store_t *s, const char *dir, m2d_store_entry_t **out, size_t *n, m2d_error_t *err);
  void (*destroy)(m2d_store_t *s);
  char root[1024]; /* for messages */
};

/* How a store is reached, beyond its URL. Zero values mean the defaults (the environment's
 * settings, the standard retry policy). */
typedef struct {
  const char *endpoint;      /* object store endpoint overriding the environment's, or NULL */
  bool unsafe_single_writer; /* accept a server that ignores conditional writes */
  int max_attempts;          /* tries of one request (0: the default, 8) */
} m2d_store_options_t;

/* The options every m2d_store_open uses: set once by the command line's global options. */
extern m2d_store_options_t m2d_store_default_options;

/* A store over a local directory (created on first write). */
m2d_store_t *m2d_store_local_new(const char *dir, m2d_error_t *err);
/* A store that injects one fault into inner (taken over) at the Nth call of an operation,
 * spec "OP:N:ACTION": OP get, list, put_if_absent, create, finish (a sink's publish), open,
 * remove or any; ACTION fail (an I/O error), crash-before or crash-after (SIGKILL before or
 * after the real call) or pause-before (SIGSTOP before the real call, which goes on after
 * SIGCONT). For tests of what survives failures, crashes and races. */
m2d_store_t *m2d_store_fault_new(m2d_store_t *inner, const char *spec, m2d_error_t *err);

/* S3 or an S3-compatible server: "s3://bucket/prefix" (s3a:// too), credentials, region and
 * endpoint from the environment and ~/.aws as AWS's tools read them (see storage/s3.c). */
m2d_store_t *m2d_store_s3_new(const char *url, const m2d_store_options_t *opts, m2d_error_t *err);

/* Google Cloud Storage: "gs://bucket/prefix" over the JSON API; a token or a service account key
 * from the environment, STORAGE_EMULATOR_HOST for an emulator (see storage/gcs.c). */
m2d_store_t *m2d_store_gcs_new(const char *url, const m2d_store_options_t *opts, m2d_error_t *err);

/* Azure Blob Storage (and ADLS Gen2 accounts through their Blob endpoint): "az://container/prefix",
 * "abfss://container@account.dfs.core.windows.net/prefix" (abfs://, wasbs://, wasb:// too);
 * Shared Key, SAS token or connection string and the endpoint from the environment (see
 * storage/azure.c). */
m2d_store_t *m2d_store_azure_new(const char *url, const m2d_store_options_t *opts, m2d_error_t *err);

/* Opens "path", "file:///path" (local), "s3://bucket/prefix", "gs://bucket/prefix" or
 * "az://container/prefix" (and the other Azure forms), by the scheme registry in store.c. The environment variable MONGO2DELTA_FAULT (tests only) wraps the store in a
 * fault-injecting one. */
m2d_store_t *m2d_store_open(const char *url, m2d_error_t *err);
m2d_store_t *m2d_store_open_with(const char *url, const m2d_store_options_t *opts, m2d_error_t *err);
/* Whether url names an object store location (a scheme of the registry other than file). */
bool m2d_store_is_remote(const char *url);
/* Every object under dir recursively, after start_after (see list_all above). */
bool m2d_store_list_all(m2d_store_t *s, const char *dir, const char *start_after, m2d_store_entry_t **out, size_t *n,
                        m2d_error_t *err);
/* s->list_names where the store has one, s->list otherwise. */
bool m2d_store_list_names(m2d_store_t *s, const char *dir, m2d_store_entry_t **out, size_t *n, m2d_error_t *err);

/* s->abort_uploads where the store has one; true with *n = 0 otherwise. */
bool m2d_store_abort_uploads(m2d_store_t *s, int64_t before_ms, int *n, m2d_error_t *err);

/* For the commands that are a table's single writer (snapshot, sync): aborts the unfinished
 * uploads under url started before now, which only a killed earlier run can have left. */
bool m2d_store_abort_orphan_uploads(const char *url, m2d_error_t *err);

/* The key of url inside store s (an object store URL under its root, "s3://b/t/x" in the
 * store of "s3://b/t" is "x"), or NULL when url is elsewhere or not a URL. */
const char *m2d_store_relative_key(const m2d_store_t *s, const char *url);
void m2d_store_destroy(m2d_store_t *s); /* accepts NULL */
void m2d_store_entries_free(m2d_store_entry_t *e, size_t n);

#endif
