/* What every object store (s3.c, gcs.c, azure.c) does the same way, written once so that a
 * store keeps only what is its cloud's own: signing, URLs, the shapes of requests and of error
 * answers. A store hands its own requests to these helpers as callbacks:
 *
 * - put-if-absent on a server that may ignore the condition: the probe at the first conditional
 *   write, and the read-back of a write whose answer was lost;
 * - sources: ranged GETs behind a read-ahead window;
 * - listings: entries collected, sorted, freed on failure;
 * - small helpers: XML element text, RFC 3339 times, loopback endpoints, how messages name an
 *   object.
 *
 * Dependencies: s3, gcs, azure -> object_store -> http, io, store. */
#ifndef M2D_STORAGE_OBJECT_STORE_H
#define M2D_STORAGE_OBJECT_STORE_H

#include "storage/store.h"

#include <pthread.h>

/* --- put-if-absent ------------------------------------------------------------------------- */

/* A store's conditional write: true when it created key; false with *exists when key was there
 * already (the condition refused the write), *lost_answer (may be NULL) when an attempt got no
 * answer before the last one (it may have reached the server). */
typedef bool (*m2d_objstore_put_cond_fn)(m2d_store_t *s, const char *key, const void *data, size_t len, bool *exists,
                                         bool *lost_answer, m2d_error_t *err);

/* A store's conditional write and the words its messages use for it (constant strings). */
typedef struct {
  m2d_objstore_put_cond_fn put_conditional;
  const char *condition; /* as the warning names it: "If-None-Match" */
  const char *overwrote; /* what the probe saw: "a PUT with If-None-Match: * overwrote an existing object" */
  const char *servers;   /* servers that honour it: "AWS S3, MinIO, Cloudflare R2, Ceph 18+" */
} m2d_objstore_cond_t;

/* The put-if-absent state of one store. */
typedef struct {
  const m2d_objstore_cond_t *cond;
  char where[1100];          /* how messages name the store: "s3://bucket" */
  const char *endpoint;      /* the server, named by the refusal (the store's own string) */
  bool unsafe_single_writer; /* --unsafe-single-writer: a server that ignores the condition is accepted */
  pthread_mutex_t lock;
  int probed; /* 0 not yet, 1 conditions honoured, -1 ignored (and accepted) */
} m2d_objstore_commits_t;

/* Right after the store is allocated (its destroy may then run at any point); where, endpoint and
 * unsafe_single_writer are the store's to fill in before the first write. */
void m2d_objstore_commits_init(m2d_objstore_commits_t *c, const m2d_objstore_cond_t *cond);
void m2d_objstore_commits_destroy(m2d_objstore_commits_t *c);

/* put_if_absent of a store whose server may ignore conditional writes (several S3-compatible
 * servers, emulators and proxies accept the condition and drop it). At the first call the
 * server is probed: a hidden key written twice, the second must be refused; a server that
 * overwrites is refused (the message names --unsafe-single-writer) unless c accepts it (then a
 * warning); the probe key is removed (s->remove). A write whose answer was lost and whose retry
 * found the key is read back (s->get): ours if the bytes are ours. */
bool m2d_objstore_put_if_absent(m2d_store_t *s, m2d_objstore_commits_t *c, const char *key, const void *data,
                                size_t len, bool *exists, m2d_error_t *err);

/* --- sources ------------------------------------------------------------------------------- */

typedef struct m2d_objstore_source m2d_objstore_source_t;

/* The store's ranged GET: len bytes of src->key at off into *into (reset; its max is len), an
 * error unless exactly len came. */
typedef bool (*m2d_objstore_fetch_fn)(m2d_objstore_source_t *src, uint64_t off, uint64_t len, m2d_buf_t *into,
                                      m2d_error_t *err);

/* Random reads of an object through ranged GETs, so the Parquet reader's small reads (footer,
 * page headers) do not each become a request: a read fetches a window of at least 4 MiB, a
 * read in the last MiB fetches the whole last MiB (the footer and the reads before it), and a
 * read of 4 MiB or more (a column chunk) goes straight into the caller's memory. */
struct m2d_objstore_source {
  m2d_source_t base;
  m2d_store_t *store;
  char *key;
  void *extra; /* the store's own, free()d with the source (GCS: the URL of the generation opened) */
  m2d_objstore_fetch_fn fetch;
  m2d_buf_t window;
  uint64_t window_off;
};

/* A source over key of store s, named "root/key". */
m2d_objstore_source_t *m2d_objstore_source_new(m2d_store_t *s, const char *key, uint64_t size,
                                               m2d_objstore_fetch_fn fetch, m2d_error_t *err);

/* --- listings ------------------------------------------------------------------------------ */

/* The key prefix a listing of dir asks for: "prefix/dir/" ("" for the bucket's root). */
void m2d_objstore_list_prefix(const char *prefix, const char *dir, char *out, size_t n);
/* Appends an entry (name copied) to *out, *n of *cap. */
bool m2d_objstore_push_entry(m2d_store_entry_t **out, size_t *n, size_t *cap, const char *name, uint64_t size,
                             int64_t mtime, bool is_dir, m2d_error_t *err);
/* The end of a listing: sorted by name (an object before a folder of the same name) when ok,
 * freed and emptied when not. Returns ok. */
bool m2d_objstore_entries_done(bool ok, m2d_store_entry_t **out, size_t *n);

/* --- small helpers --------------------------------------------------------------------------- */

/* The text of the first <tag>...</tag> (attributes allowed, <tag/> is "") in [p, end), entities
 * decoded, an element with Encoded="true" percent-decoded (Azure's names), into out. */
bool m2d_objstore_xml_text(const char *p, const char *end, const char *tag, char *out, size_t outsz);

/* "2025-12-03T14:25:00.123Z" (RFC 3339, ISO 8601) in ms since the epoch, 0 when unreadable. */
int64_t m2d_objstore_parse_rfc3339_ms(const char *t);

/* Whether url's host is 127.x, localhost or [::1] (a test server, where plain http is allowed). */
bool m2d_objstore_is_loopback(const char *url);

/* An endpoint from the environment checked: http:// or https:// (else "VAR ENDPOINT: write it as
 * FORM"), plain http on loopback only (else "...plain HTTP would send SENT unencrypted..."). */
bool m2d_objstore_check_endpoint(const char *var, const char *endpoint, const char *form, const char *sent,
                                 m2d_error_t *err);

/* "OP root/key" for messages (key NULL or "": the root itself). */
void m2d_objstore_describe(const m2d_store_t *s, const char *op, const char *key, char *out, size_t n);

#endif
