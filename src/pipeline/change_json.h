/* Change events and documents as the MongoDB Kafka source connector writes them: JSON text in
 * one of three forms.
 *   M2D_JSON_EXTENDED   canonical Extended JSON v2 (the connector's ExtendedJson formatter):
 *                       every number typed ({"$numberInt": "1"}), dates {"$date": {"$numberLong": ms}};
 *   M2D_JSON_RELAXED    relaxed Extended JSON v2: plain JSON numbers, dates {"$date": "ISO-8601"}
 *                       (the connector's DefaultJson writes {"$date": ms} instead);
 *   M2D_JSON_SIMPLIFIED the connector's SimplifiedJson: ObjectId as its hex string, dates as
 *                       ISO-8601 strings, Decimal128 as its string, binary as base64, Int64 as a
 *                       plain number; the rest as relaxed. */
#ifndef M2D_PIPELINE_CHANGE_JSON_H
#define M2D_PIPELINE_CHANGE_JSON_H

#include <bson/bson.h>
#include <stdbool.h>

typedef enum { M2D_JSON_EXTENDED = 0, M2D_JSON_RELAXED, M2D_JSON_SIMPLIFIED } m2d_json_form_t;

/* "extended-json", "relaxed-json", "simplified-json". */
bool m2d_json_form_parse(const char *s, m2d_json_form_t *out);

/* doc as JSON text in form (bson_free / free: the result is malloc'd), NULL when it cannot be
 * written (invalid UTF-8). */
char *m2d_bson_json(const bson_t *doc, m2d_json_form_t form);

/* The document's _id: documentKey._id, else fullDocument._id (the test server's documentKey of an
 * update is the update itself); false when neither has one. */
bool m2d_change_id(const bson_t *event, bson_value_t *id);

/* The event the connector writes: the server's fields in its order, documentKey {_id} when the
 * server's lacks the _id and it is known, ns {db, coll} added when the server sent none (the test
 * server does not; MongoDB does). The caller destroys it. */
bson_t *m2d_change_normalized(const bson_t *event, const bson_value_t *id, const char *db, const char *coll);

/* A copied document as the connector's copy phase writes it: {_id: {_id, copyingData: true},
 * operationType: "insert", ns: {db, coll}, documentKey: {_id}, fullDocument}. */
bson_t *m2d_change_copy_event(const char *db, const char *coll, const bson_t *doc);

#endif
