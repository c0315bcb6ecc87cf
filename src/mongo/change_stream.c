#include "mongo/change_stream.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* --- the pieces ---------------------------------------------------------------------------- */

mongoc_change_stream_t *m2d_change_stream_watch(mongoc_client_t *client, const char *db, const char *collection,
                                                const char *token, uint32_t t, uint32_t i, int max_await_ms) {
  bson_t pipeline = BSON_INITIALIZER;
  bson_t *opts = BCON_NEW("fullDocument", BCON_UTF8("updateLookup"), "maxAwaitTimeMS", BCON_INT64(max_await_ms));
  bson_error_t e;
  bson_t *tok = token && token[0] ? bson_new_from_json((const uint8_t *)token, -1, &e) : NULL;
  if (tok) BSON_APPEND_DOCUMENT(opts, "resumeAfter", tok);
  else if (t) BSON_APPEND_TIMESTAMP(opts, "startAtOperationTime", t, i);
  mongoc_change_stream_t *cs;
  if (collection) {
    mongoc_collection_t *c = mongoc_client_get_collection(client, db, collection);
    cs = mongoc_collection_watch(c, &pipeline, opts);
    mongoc_collection_destroy(c);
  } else {
    mongoc_database_t *d = mongoc_client_get_database(client, db);
    cs = mongoc_database_watch(d, &pipeline, opts);
    mongoc_database_destroy(d);
  }
  if (tok) bson_destroy(tok);
  bson_destroy(opts);
  bson_destroy(&pipeline);
  return cs;
}

bool m2d_change_stream_server_gone(const bson_error_t *e) {
  if (e->domain == MONGOC_ERROR_STREAM || e->domain == MONGOC_ERROR_SERVER_SELECTION) return true;
  switch (e->code) {
  case 6: case 7: case 89: case 91: case 189: case 9001: case 10107: case 11600: case 11602: case 13435: case 13436:
    return true;
  default: return false;
  }
}

bool m2d_change_stream_history_lost(const bson_error_t *e) {
  return e->code == 286 || e->code == 280 || e->code == 260 || e->code == 136 || e->code == 40647;
}

bool m2d_change_stream_position_make(const char *token, uint32_t t, uint32_t i, m2d_position_t *p, m2d_error_t *err) {
  bson_t d = BSON_INITIALIZER, ct;
  BSON_APPEND_UTF8(&d, "resumeToken", token ? token : "");
  BSON_APPEND_DOCUMENT_BEGIN(&d, "clusterTime", &ct);
  BSON_APPEND_INT64(&ct, "t", t);
  BSON_APPEND_INT64(&ct, "i", i);
  bson_append_document_end(&d, &ct);
  char *j = bson_as_relaxed_extended_json(&d, NULL);
  bson_destroy(&d);
  bool ok = j ? m2d_position_set(p, M2D_POSITION_CHANGE_STREAM, j, err)
              : m2d_error_set(err, M2D_ERR_FORMAT, 0, "a resume token that is not valid UTF-8");
  bson_free(j);
  return ok;
}

bool m2d_change_stream_position_read(const m2d_position_t *p, char *token, size_t token_size, uint32_t *t,
                                     uint32_t *i, m2d_error_t *err) {
  token[0] = 0;
  *t = *i = 0;
  if (!p || !p->json) return true;
  if (!p->source || strcmp(p->source, M2D_POSITION_CHANGE_STREAM))
    return m2d_error_set(err, M2D_ERR_FORMAT, 0, "a position of a %s, not of a change stream: it cannot resume one",
                         p->source ? p->source : "(unknown source)");
  bson_error_t be;
  bson_t *d = bson_new_from_json((const uint8_t *)p->json, -1, &be);
  if (!d)
    return m2d_error_set(err, M2D_ERR_FORMAT, 0, "the change stream's position (%.200s) is not JSON: %s", p->json,
                         be.message);
  bson_iter_t it, sub;
  if (bson_iter_init_find(&it, d, "resumeToken") && BSON_ITER_HOLDS_UTF8(&it))
    snprintf(token, token_size, "%s", bson_iter_utf8(&it, NULL));
  if (bson_iter_init_find(&it, d, "clusterTime") && BSON_ITER_HOLDS_DOCUMENT(&it) && bson_iter_recurse(&it, &sub)) {
    while (bson_iter_next(&sub)) {
      if (!strcmp(bson_iter_key(&sub), "t")) *t = (uint32_t)bson_iter_as_int64(&sub);
      else if (!strcmp(bson_iter_key(&sub), "i")) *i = (uint32_t)bson_iter_as_int64(&sub);
    }
  }
  bson_destroy(d);
  return true;
}

/* --- the source ---------------------------------------------------------------------------- */

struct m2d_change_stream {
  m2d_change_stream_options_t o;
  char *db, *collection;
  mongoc_change_stream_t *cs;
  /* the position: the last event's, or where the stream started */
  char token[1024];
  uint32_t t, i;
  bson_t *last_id;   /* the last event's _id (its resume token), formatted only when asked */
  /* a start by cluster time: what is at or before it was applied */
  bool skip;
  uint32_t skip_t, skip_i;
  int64_t skipped;
};

m2d_change_stream_t *m2d_change_stream_new(const m2d_change_stream_options_t *o, m2d_error_t *err) {
  m2d_change_stream_t *cs = calloc(1, sizeof *cs);
  if (cs) {
    cs->o = *o;
    cs->db = strdup(o->db);
    cs->collection = o->collection ? strdup(o->collection) : NULL;
  }
  if (!cs || !cs->db || (o->collection && !cs->collection)) {
    m2d_change_stream_destroy(cs);
    m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory (a change stream)");
    return NULL;
  }
  cs->o.db = cs->db;
  cs->o.collection = cs->collection;
  return cs;
}

void m2d_change_stream_stop(m2d_change_stream_t *cs) {
  if (cs && cs->cs) mongoc_change_stream_destroy(cs->cs);
  if (cs) cs->cs = NULL;
}

void m2d_change_stream_destroy(m2d_change_stream_t *cs) {
  if (!cs) return;
  m2d_change_stream_stop(cs);
  if (cs->last_id) bson_destroy(cs->last_id);
  free(cs->db);
  free(cs->collection);
  free(cs);
}

bool m2d_change_stream_start(m2d_change_stream_t *cs, const m2d_position_t *from, m2d_error_t *err) {
  m2d_change_stream_stop(cs);
  if (cs->last_id) bson_destroy(cs->last_id);
  cs->last_id = NULL;
  cs->skip = false;
  if (from && from->json) {
    if (!m2d_change_stream_position_read(from, cs->token, sizeof cs->token, &cs->t, &cs->i, err)) return false;
    cs->cs = m2d_change_stream_watch(cs->o.client, cs->o.db, cs->o.collection, cs->token, cs->t, cs->i,
                                     cs->o.max_await_ms);
    cs->skip = !cs->token[0];
  } else {
    /* the aggregate's reply may carry a token; the test server's has none before an event */
    cs->cs = m2d_change_stream_watch(cs->o.client, cs->o.db, cs->o.collection, NULL, 0, 0, cs->o.max_await_ms);
    cs->token[0] = 0;
    cs->t = cs->o.clock_at_start ? (uint32_t)time(NULL) : 0;
    cs->i = 0;
    const bson_t *tok = mongoc_change_stream_get_resume_token(cs->cs);
    if (tok && !bson_empty(tok)) {
      char *j = bson_as_canonical_extended_json(tok, NULL);
      snprintf(cs->token, sizeof cs->token, "%s", j ? j : "");
      bson_free(j);
    }
    cs->skip = cs->o.clock_at_start && !cs->token[0];
  }
  cs->skip_t = cs->t;
  cs->skip_i = cs->i;
  return true;
}

m2d_cs_next_t m2d_change_stream_next(m2d_change_stream_t *cs, const bson_t **ev, bson_error_t *be,
                                     const bson_t **reply) {
  if (reply) *reply = NULL;
  for (;;) {
    if (!mongoc_change_stream_next(cs->cs, ev))
      return mongoc_change_stream_error_document(cs->cs, be, reply) ? M2D_CS_ERROR : M2D_CS_NONE;
    uint32_t t = 0, i = 0;
    bson_iter_t it;
    if (bson_iter_init_find(&it, *ev, "clusterTime") && BSON_ITER_HOLDS_TIMESTAMP(&it)) bson_iter_timestamp(&it, &t, &i);
    if (cs->skip && (t < cs->skip_t || (t == cs->skip_t && i <= cs->skip_i))) {
      cs->skipped++;
      continue;
    }
    cs->t = t;
    cs->i = i;
    cs->token[0] = 0;
    if (cs->last_id) bson_destroy(cs->last_id);
    cs->last_id = NULL;
    if (bson_iter_init_find(&it, *ev, "_id") && BSON_ITER_HOLDS_DOCUMENT(&it)) {
      uint32_t len;
      const uint8_t *data;
      bson_iter_document(&it, &len, &data);
      cs->last_id = bson_new_from_data(data, len);
    }
    return M2D_CS_EVENT;
  }
}

bool m2d_change_stream_position(const m2d_change_stream_t *cs, m2d_position_t *p, m2d_error_t *err) {
  if (!cs->last_id) return m2d_change_stream_position_make(cs->token, cs->t, cs->i, p, err);
  char *j = bson_as_canonical_extended_json(cs->last_id, NULL);
  char token[1024];
  snprintf(token, sizeof token, "%s", j ? j : "");
  bson_free(j);
  return m2d_change_stream_position_make(token, cs->t, cs->i, p, err);
}

int64_t m2d_change_stream_skipped(const m2d_change_stream_t *cs) { return cs->skipped; }
