/* A change stream as a source of events: opened at the server's now or after a position, read
 * event by event, reopened after the server went away. sync reads its collection through it and
 * watch prints it; kafka-produce, whose positions are its own, shares the opening and the error
 * classes.
 *
 * Its position (core/position, kind M2D_POSITION_CHANGE_STREAM) is the JSON object
 * {"resumeToken": "<the token, canonical Extended JSON, or empty>", "clusterTime": {"t": s, "i": n}}:
 * the resume token of the last event, or where the stream started. A position without a token
 * (the test server has none before an event) resumes by cluster time, and the events at or
 * before it are passed over: they were applied already. */
#ifndef M2D_MONGO_CHANGE_STREAM_H
#define M2D_MONGO_CHANGE_STREAM_H

#include "core/error.h"
#include "core/position.h"

#include <mongoc/mongoc.h>
#include <stdint.h>

#define M2D_POSITION_CHANGE_STREAM "mongodb-change-stream"

/* --- the pieces ---------------------------------------------------------------------------- */

/* Opens a stream with full documents looked up on update, on collection (NULL: every collection
 * of db), after token (canonical Extended JSON; NULL or "": none), else at cluster time t.i
 * (0.0: none, the server's now). */
mongoc_change_stream_t *m2d_change_stream_watch(mongoc_client_t *client, const char *db, const char *collection,
                                                const char *token, uint32_t t, uint32_t i, int max_await_ms);
/* Errors of a server that went away (or is restarting), as opposed to a refused stream. */
bool m2d_change_stream_server_gone(const bson_error_t *e);
/* Errors of a stream that cannot resume from the position asked: the server's oplog moved past
 * it (ChangeStreamHistoryLost 286, CappedPositionLost 136, ChangeStreamFatalError 280) or the
 * token is not one it can use (InvalidResumeToken 260, 40647 for a token without _data). */
bool m2d_change_stream_history_lost(const bson_error_t *e);
/* A change stream position's JSON for (token, t.i) into *p; and back (token "" when none). */
bool m2d_change_stream_position_make(const char *token, uint32_t t, uint32_t i, m2d_position_t *p, m2d_error_t *err);
bool m2d_change_stream_position_read(const m2d_position_t *p, char *token, size_t token_size, uint32_t *t,
                                     uint32_t *i, m2d_error_t *err);

/* --- the source ---------------------------------------------------------------------------- */

typedef struct {
  mongoc_client_t *client; /* borrowed */
  const char *db, *collection; /* collection NULL: the database's stream */
  int max_await_ms;
  /* started at the server's now without a token: the clock (whole seconds) is the position
   * and, as for a position without a token, the events at or before it are passed over */
  bool clock_at_start;
} m2d_change_stream_options_t;

typedef enum { M2D_CS_EVENT, M2D_CS_NONE, M2D_CS_ERROR } m2d_cs_next_t;

typedef struct m2d_change_stream m2d_change_stream_t;

m2d_change_stream_t *m2d_change_stream_new(const m2d_change_stream_options_t *o, m2d_error_t *err);
void m2d_change_stream_destroy(m2d_change_stream_t *cs); /* accepts NULL */
/* (Re)opens the stream after from (NULL or no position: at the server's now). */
bool m2d_change_stream_start(m2d_change_stream_t *cs, const m2d_position_t *from, m2d_error_t *err);
/* Closes the stream (start opens it again). */
void m2d_change_stream_stop(m2d_change_stream_t *cs);
/* The next event (*ev borrowed until the next call); NONE: none came within max_await_ms;
 * ERROR: *be and *reply (borrowed, may be NULL) say why (m2d_change_stream_server_gone,
 * m2d_change_stream_history_lost). */
m2d_cs_next_t m2d_change_stream_next(m2d_change_stream_t *cs, const bson_t **ev, bson_error_t *be,
                                     const bson_t **reply);
/* The position after the last event returned, or, before one, where the stream started. */
bool m2d_change_stream_position(const m2d_change_stream_t *cs, m2d_position_t *p, m2d_error_t *err);
/* Events passed over so far because a position by cluster time already held them. */
int64_t m2d_change_stream_skipped(const m2d_change_stream_t *cs);

#endif
