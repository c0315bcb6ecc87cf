#include "pipeline/change_record.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void m2d_change_clear(m2d_change_t *e) {
  if (e->id) bson_destroy(e->id);
  if (e->doc) bson_destroy(e->doc);
  e->id = e->doc = NULL;
}

bson_t *m2d_change_kafka_row(const m2d_change_t *e, const char *topic, int32_t partition, int64_t offset) {
  bson_t *d = bson_new();
  BSON_APPEND_UTF8(d, "_op", e->op);
  if (e->ct_t || e->ct_i) BSON_APPEND_TIMESTAMP(d, "_cluster_time", e->ct_t, e->ct_i);
  bson_iter_t it;
  if ((e->id && bson_iter_init_find(&it, e->id, "_id")) || (e->doc && bson_iter_init_find(&it, e->doc, "_id")))
    bson_append_iter(d, "_id", 3, &it);
  if (e->doc) BSON_APPEND_DOCUMENT(d, "document", e->doc);
  BSON_APPEND_UTF8(d, "_kafka_topic", topic);
  BSON_APPEND_INT32(d, "_kafka_partition", partition);
  BSON_APPEND_INT64(d, "_kafka_offset", offset);
  return d;
}

static bson_t *sub_document(const bson_iter_t *it) {
  uint32_t len;
  const uint8_t *data;
  bson_iter_document(it, &len, &data);
  return bson_new_from_data(data, len);
}

bool m2d_change_from_event(const bson_t *ev, m2d_change_t *e, m2d_error_t *err) {
  memset(e, 0, sizeof *e);
  bson_iter_t it, sub;
  if (bson_iter_init_find(&it, ev, "operationType") && BSON_ITER_HOLDS_UTF8(&it))
    snprintf(e->op, sizeof e->op, "%s", bson_iter_utf8(&it, NULL));
  if (strcmp(e->op, "insert") && strcmp(e->op, "update") && strcmp(e->op, "replace") && strcmp(e->op, "delete"))
    return m2d_error_set(err, M2D_ERR_FORMAT, 0,
                         "a '%s' event (the collection was dropped, renamed or the stream invalidated): only "
                         "insert, update, replace and delete change a table",
                         e->op[0] ? e->op : "(no operationType)");
  if (bson_iter_init_find(&it, ev, "documentKey") && BSON_ITER_HOLDS_DOCUMENT(&it) && bson_iter_recurse(&it, &sub) &&
      bson_iter_find(&sub, "_id")) {
    e->id = bson_new();
    bson_append_iter(e->id, "_id", 3, &sub);
  }
  if (bson_iter_init_find(&it, ev, "fullDocument") && BSON_ITER_HOLDS_DOCUMENT(&it)) e->doc = sub_document(&it);
  if (bson_iter_init_find(&it, ev, "clusterTime") && BSON_ITER_HOLDS_TIMESTAMP(&it))
    bson_iter_timestamp(&it, &e->ct_t, &e->ct_i);
  if (bson_iter_init_find(&it, ev, "_id") && BSON_ITER_HOLDS_DOCUMENT(&it)) {
    bson_t *tok = sub_document(&it);
    /* the connector's copy phase marks its records {_id, copyingData: true}: not a resume token */
    if (tok && !bson_has_field(tok, "copyingData")) {
      char *j = bson_as_canonical_extended_json(tok, NULL);
      snprintf(e->token, sizeof e->token, "%s", j ? j : "");
      bson_free(j);
    }
    if (tok) bson_destroy(tok);
  }
  return true;
}

/* The JSON text inside a value: itself, the string a JSON string holds, or a Kafka Connect
 * envelope's payload. *owned is set when the text had to be made (free it). */
static const char *unwrap(const char *v, size_t len, size_t *out_len, char **owned, m2d_error_t *err) {
  *owned = NULL;
  size_t i = 0;
  while (i < len && (v[i] == ' ' || v[i] == '\t' || v[i] == '\r' || v[i] == '\n')) i++;
  bool quoted = i < len && v[i] == '"';
  bool envelope = !quoted && len - i > 9 && memcmp(v + i, "{\"schema\"", 9) == 0;
  if (!quoted && !envelope) {
    *out_len = len;
    return v;
  }
  json_error_t je;
  json_t *j = json_loadb(v, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
  if (!j) return m2d_error_set(err, M2D_ERR_FORMAT, 0, "invalid JSON (%s at character %d)", je.text, je.position), NULL;
  json_t *p = envelope && json_object_get(j, "payload") ? json_object_get(j, "payload") : j;
  if (json_is_string(p)) {
    *out_len = json_string_length(p);
    *owned = malloc(*out_len + 1);
    if (*owned) memcpy(*owned, json_string_value(p), *out_len + 1);
  } else if (json_is_object(p)) {
    *owned = json_dumps(p, JSON_COMPACT | JSON_PRESERVE_ORDER);
    *out_len = *owned ? strlen(*owned) : 0;
  } else {
    json_decref(j);
    return m2d_error_set(err, M2D_ERR_FORMAT, 0, "the value is JSON but not an object (nor a string holding one)"),
           NULL;
  }
  json_decref(j);
  if (!*owned) return m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory"), NULL;
  return *owned;
}

static bson_t *parse_json(const void *data, size_t len, const char *what, m2d_error_t *err) {
  char *owned;
  size_t tlen;
  const char *text = unwrap(data, len, &tlen, &owned, err);
  if (!text) return m2d_error_prefix(err, "%s", what), NULL;
  bson_error_t be;
  bson_t *b = bson_new_from_json((const uint8_t *)text, (ssize_t)tlen, &be);
  free(owned);
  if (!b) m2d_error_set(err, M2D_ERR_FORMAT, 0, "%sinvalid JSON or Extended JSON: %s", what, be.message);
  return b;
}

/* The value a JSON text holds, whatever its type, as the field "v" of a document; NULL when the
 * text is not one JSON value. */
static bson_t *json_value(const char *text, size_t len) {
  json_t *j = json_loadb(text, len, JSON_DECODE_ANY, NULL);
  if (!j) return NULL;
  json_decref(j);
  char *w = malloc(len + 7);
  if (!w) return NULL;
  memcpy(w, "{\"v\":", 5);
  memcpy(w + 5, text, len);
  w[len + 5] = '}';
  bson_t *b = bson_new_from_json((const uint8_t *)w, (ssize_t)len + 6, NULL);
  free(w);
  return b;
}

/* The connector's schema output (output.format.value=schema, its default value schema) holds
 * these fields as strings of JSON text written by its JSON formatter. */
static bool string_field(const char *k) {
  return !strcmp(k, "_id") || !strcmp(k, "documentKey") || !strcmp(k, "fullDocument") || !strcmp(k, "clusterTime");
}

/* The event with such strings read back into their values (the event the stream gave), or NULL
 * when it has none; NULL with *failed when one is not JSON. */
static bson_t *strings_parsed(const bson_t *v, bool *failed, m2d_error_t *err) {
  bson_iter_t it;
  bool any = false;
  if (bson_iter_init(&it, v))
    while (!any && bson_iter_next(&it)) any = BSON_ITER_HOLDS_UTF8(&it) && string_field(bson_iter_key(&it));
  if (!any) return NULL;
  bson_t *out = bson_new();
  bson_iter_init(&it, v);
  while (bson_iter_next(&it)) {
    const char *k = bson_iter_key(&it);
    if (!BSON_ITER_HOLDS_UTF8(&it) || !string_field(k)) {
      bson_append_iter(out, k, -1, &it);
      continue;
    }
    uint32_t len;
    const char *s = bson_iter_utf8(&it, &len);
    bson_t *jv = json_value(s, len);
    bson_iter_t vi;
    if (!jv || !bson_iter_init_find(&vi, jv, "v")) {
      if (jv) bson_destroy(jv);
      bson_destroy(out);
      *failed = true;
      return m2d_error_set(err, M2D_ERR_FORMAT, 0, "the change event's %s is a string that holds no JSON value: %.80s", k,
                           s),
             NULL;
    }
    bson_append_iter(out, k, -1, &vi);
    bson_destroy(jv);
  }
  return out;
}

/* Whether a key's _id is a change event's _id, not a document's: a resume token {_data: ...}, as a
 * document or a string of JSON (the connector keys its records so unless
 * change.stream.document.key.as.key is set). */
static bool event_id(const bson_iter_t *id) {
  bson_iter_t it = *id, sub;
  bson_t *parsed = NULL;
  if (BSON_ITER_HOLDS_UTF8(&it)) {
    uint32_t len;
    const char *s = bson_iter_utf8(&it, &len);
    if (!(parsed = json_value(s, len)) || !bson_iter_init_find(&it, parsed, "v")) {
      if (parsed) bson_destroy(parsed);
      return false;
    }
  }
  bool yes = BSON_ITER_HOLDS_DOCUMENT(&it) && bson_iter_recurse(&it, &sub) && bson_iter_find(&sub, "_data");
  if (parsed) bson_destroy(parsed);
  return yes;
}

/* {"_id": v} of the key, or NULL with *why. */
static bson_t *key_id(const void *key, size_t key_len, const char **why) {
  *why = "a tombstone whose key holds no _id: the document to delete is unknown";
  if (!key || !key_len) return NULL;
  bson_t *k = parse_json(key, key_len, "", NULL);
  if (!k) return NULL;
  bson_iter_t it;
  bson_t *id = NULL;
  bool found = bson_iter_init_find(&it, k, "_id") ||
               (bson_iter_init(&it, k) && bson_iter_find_descendant(&it, "documentKey._id", &it));
  if (found && event_id(&it)) {
    *why = "a tombstone keyed by its change event's _id (a resume token), not by the document's _id: the document to delete is unknown (set change.stream.document.key.as.key=true on the MongoDB "
           "source connector)";
  } else if (found) {
    id = bson_new();
    bson_append_iter(id, "_id", 3, &it);
  }
  bson_destroy(k);
  return id;
}

bool m2d_change_from_record(const void *key, size_t key_len, const void *value, size_t value_len,
                            m2d_record_format_t format, m2d_change_t *e, m2d_error_t *err) {
  memset(e, 0, sizeof *e);
  if (value_len > M2D_RECORD_MAX_VALUE)
    return m2d_error_set(err, M2D_ERR_FORMAT, 0,
                         "the value is %zu bytes, more than a MongoDB document can hold (16 MiB) with its event",
                         value_len);
  if (!value) {
    /* a tombstone: the key's document is gone */
    if (format != M2D_RECORD_DOCUMENTS)
      return m2d_error_set(err, M2D_ERR_FORMAT, 0,
                           "a record without a value (a tombstone) among change events: use --format documents "
                           "for topics whose tombstones are deletes");
    const char *why;
    if (!(e->id = key_id(key, key_len, &why))) return m2d_error_set(err, M2D_ERR_FORMAT, 0, "%s", why);
    snprintf(e->op, sizeof e->op, "delete");
    return true;
  }
  bson_t *v = parse_json(value, value_len, "the value is not a change event: ", err);
  if (!v) return false;
  bool ok = true;
  if (format == M2D_RECORD_DOCUMENTS) {
    bson_iter_t it;
    if (!bson_iter_init_find(&it, v, "_id")) {
      ok = m2d_error_set(err, M2D_ERR_FORMAT, 0, "a document without _id");
    } else {
      snprintf(e->op, sizeof e->op, "replace");
      e->id = bson_new();
      bson_append_iter(e->id, "_id", 3, &it);
      e->doc = v;
      v = NULL;
    }
  } else {
    bool failed = false;
    bson_t *p = strings_parsed(v, &failed, err);
    if (p) {
      bson_destroy(v);
      v = p;
    }
    ok = !failed && m2d_change_from_event(v, e, err);
    bson_iter_t it;
    /* an update whose document was gone when looked up names it only through documentKey; the
     * test server's documentKey of an update is the update itself: such an event changes
     * nothing (the delete that follows does), as in sync */
    bool gone = ok && !e->id && (!strcmp(e->op, "update") || !strcmp(e->op, "replace")) &&
                ((!e->doc && bson_iter_init_find(&it, v, "fullDocument") && BSON_ITER_HOLDS_NULL(&it)) ||
                 (bson_has_field(v, "documentKey") && !(e->doc && bson_has_field(e->doc, "_id"))));
    if (gone && e->doc) { /* not the document: the test server's lookup of a deleted one */
      bson_destroy(e->doc);
      e->doc = NULL;
    }
    if (ok && !gone && !e->id && !(e->doc && bson_iter_init_find(&it, e->doc, "_id")))
      ok = m2d_error_set(err, M2D_ERR_FORMAT, 0, "a '%s' change event without _id (no documentKey._id, no fullDocument._id)",
                         e->op);
    if (ok && !e->id && e->doc) {
      e->id = bson_new();
      bson_append_iter(e->id, "_id", 3, &it);
    }
    /* an update's document: fullDocument null means it was gone when looked up (a delete
     * follows); no fullDocument at all means the producer did not look it up */
    if (ok && !gone && !e->doc && (!strcmp(e->op, "update") || !strcmp(e->op, "replace") || !strcmp(e->op, "insert")) &&
        !bson_has_field(v, "fullDocument"))
      ok = m2d_error_set(err, M2D_ERR_FORMAT, 0,
                         "an '%s' change event without fullDocument: the new version of the document is unknown "
                         "(set change.stream.full.document=updateLookup on the MongoDB source connector)",
                         e->op);
  }
  if (v) bson_destroy(v);
  if (!ok) m2d_change_clear(e);
  return ok;
}
