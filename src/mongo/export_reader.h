/* Reading MongoDB export files one document at a time, for `mongo2delta load`:
 *   mongodump .bson and .bson.gz  (concatenated BSON documents)
 *   mongoexport JSON lines, canonical or relaxed Extended JSON (.json, .jsonl, .ndjson, and .gz)
 * The format follows the file name. A bad record is reported with its file and byte offset
 * (BSON) or line (JSON); the caller may skip it (its raw bytes are kept for a rejects file)
 * where the format allows going on: a JSON line always, a BSON document whose length prefix
 * is sane. A BSON length that cannot be right ends the file. */
#ifndef M2D_MONGO_EXPORT_READER_H
#define M2D_MONGO_EXPORT_READER_H

#include "core/error.h"

#include <bson/bson.h>
#include <stdint.h>

typedef enum {
  M2D_REC_OK,    /* *doc is the next document */
  M2D_REC_BAD,   /* this record is invalid; err says where; next() goes on after it */
  M2D_REC_EOF,   /* no more documents */
  M2D_REC_FATAL  /* cannot go on in this file (I/O error, broken BSON framing) */
} m2d_rec_status_t;

typedef enum { M2D_EXPORT_BSON, M2D_EXPORT_JSON } m2d_export_format_t;

typedef struct m2d_export_reader m2d_export_reader_t;

/* True when the file name is one `load` reads. */
bool m2d_export_is_supported(const char *path);

m2d_export_reader_t *m2d_export_reader_open(const char *path, m2d_error_t *err);
/* Reads the local file local, named path in messages and for the format (an object store
 * file downloaded to a temporary file). */
m2d_export_reader_t *m2d_export_reader_open_named(const char *local, const char *path, m2d_error_t *err);
void m2d_export_reader_close(m2d_export_reader_t *r); /* accepts NULL */

/* The next record. *doc stays valid until the next call. */
m2d_rec_status_t m2d_export_reader_next(m2d_export_reader_t *r, const bson_t **doc, m2d_error_t *err);

/* Raw bytes of the last record returned (for a rejects file). */
const uint8_t *m2d_export_reader_raw(const m2d_export_reader_t *r, size_t *len);
/* A second read of a BSON file whose documents were all valid on the first read, up to
 * byte end: documents are not validated again, and the file ends at end (bytes appended
 * since were not seen by the first read). False (and no change) for JSON files. */
bool m2d_export_reader_trust(m2d_export_reader_t *r, uint64_t end);
m2d_export_format_t m2d_export_reader_format(const m2d_export_reader_t *r);
/* Bytes consumed of the (decompressed) input so far, for progress. */
uint64_t m2d_export_reader_offset(const m2d_export_reader_t *r);

#endif
