/* Change events from outside a change stream: Kafka records (kafka-ingest) and the lines of
 * files a Kafka Connect S3 sink wrote (load --format kafka-connect-json), turned into the
 * m2d_change_t that the mirror and the change log apply, as sync does with its stream.
 *
 * A record's value is one of:
 *   - a change event as a change stream gives it (and kafka-produce or the MongoDB Kafka source
 *     connector write it): operationType, documentKey {_id}, fullDocument, clusterTime, _id
 *     (the resume token; the connector's copy phase writes {_id, copyingData: true} instead);
 *   - with M2D_RECORD_DOCUMENTS, a plain document (the connector's publish.full.document.only):
 *     an upsert by its _id; a tombstone (no value) deletes the key's _id.
 * in any Extended JSON form libbson reads (canonical, relaxed, the connector's DefaultJson), as
 * a JSON object, as a JSON string holding one (a StringConverter's value written by a
 * JsonConverter), or inside a Kafka Connect JSON envelope {"schema": ..., "payload": ...}. The
 * key, when there is one, is {"_id": value} (or {"documentKey": {"_id": value}}). */
#ifndef M2D_PIPELINE_CHANGE_RECORD_H
#define M2D_PIPELINE_CHANGE_RECORD_H

#include "core/error.h"
#include "pipeline/change.h"

#include <stddef.h>

typedef enum { M2D_RECORD_CHANGE_EVENTS = 0, M2D_RECORD_DOCUMENTS } m2d_record_format_t;

/* The largest value taken: MongoDB's document limit (16 MiB) with room for the event around it. */
#define M2D_RECORD_MAX_VALUE ((size_t)17 << 20)

/* A change stream's event into *e (its id, doc: the caller destroys them). Events other than
 * insert, update, replace and delete fail with M2D_ERR_FORMAT saying which. */
bool m2d_change_from_event(const bson_t *ev, m2d_change_t *e, m2d_error_t *err);

/* One record into *e. Fails with M2D_ERR_FORMAT and a reason fit for a dead-letter header
 * (invalid JSON, no _id, an update without its full document, a value too large, ...). */
bool m2d_change_from_record(const void *key, size_t key_len, const void *value, size_t value_len,
                            m2d_record_format_t format, m2d_change_t *e, m2d_error_t *err);

/* The change-log row of a change that came from a Kafka record (kafka-ingest) or from a line of
 * a sink file (load): _op, _cluster_time, _id, document, _kafka_topic, _kafka_partition,
 * _kafka_offset. The caller destroys it. */
bson_t *m2d_change_kafka_row(const m2d_change_t *e, const char *topic, int32_t partition, int64_t offset);

/* Frees what *e holds (accepts a zeroed one). */
void m2d_change_clear(m2d_change_t *e);

#endif
