/* A transactional Kafka producer (librdkafka) with the program's error type.
 *
 * One producer per source (transactional.id): init once (which fences an older instance with
 * the same id and aborts what it left open), then begin, produce, commit (or abort) per batch.
 * Delivery reports are counted; a record that cannot be delivered makes the commit fail.
 *
 * Errors: err->domain is M2D_ERR_KAFKA and err->code says what the caller may do:
 *   M2D_KAFKA_RETRY  the same call may succeed later (broker unreachable, timeout): call it again;
 *   M2D_KAFKA_ABORT  the transaction cannot commit: abort it, then produce the batch again;
 *   M2D_KAFKA_FATAL  the producer is unusable (fenced by a newer instance, bad configuration). */
#ifndef M2D_KAFKA_PRODUCER_H
#define M2D_KAFKA_PRODUCER_H

#include "core/error.h"

#include <librdkafka/rdkafka.h>
#include <stddef.h>
#include <stdint.h>

enum { M2D_KAFKA_RETRY = 1, M2D_KAFKA_ABORT = 2, M2D_KAFKA_FATAL = 3 };

typedef struct m2d_kafka_producer m2d_kafka_producer_t;

typedef struct {
  const char *brokers;         /* "host:port[,host:port...]" */
  const char *transactional_id;
  int transaction_timeout_ms;  /* 0: 60000 */
  int max_message_bytes;       /* 0: librdkafka's default (1 MB) */
} m2d_kafka_producer_options_t;

/* A record's header (name, value as text). */
typedef struct {
  const char *name, *value;
} m2d_kafka_header_t;

m2d_kafka_producer_t *m2d_kafka_producer_new(const m2d_kafka_producer_options_t *o, m2d_error_t *err);
void m2d_kafka_producer_destroy(m2d_kafka_producer_t *p);

/* The librdkafka handle (for the admin API on the same connections). */
rd_kafka_t *m2d_kafka_producer_handle(m2d_kafka_producer_t *p);

bool m2d_kafka_producer_init_transactions(m2d_kafka_producer_t *p, int timeout_ms, m2d_error_t *err);
bool m2d_kafka_producer_begin(m2d_kafka_producer_t *p, m2d_error_t *err);
/* Queues one record (copied) in the open transaction; waits while librdkafka's queue is full.
 * key or value NULL: a record without one (a NULL value is a tombstone). */
bool m2d_kafka_producer_send(m2d_kafka_producer_t *p, const char *topic, const void *key, size_t key_len,
                             const void *value, size_t value_len, const m2d_kafka_header_t *headers, int nheaders,
                             m2d_error_t *err);
bool m2d_kafka_producer_commit(m2d_kafka_producer_t *p, int timeout_ms, m2d_error_t *err);
bool m2d_kafka_producer_abort(m2d_kafka_producer_t *p, int timeout_ms, m2d_error_t *err);
/* Waits for every queued record's delivery report (outside transactions). */
bool m2d_kafka_producer_flush(m2d_kafka_producer_t *p, int timeout_ms, m2d_error_t *err);

/* Records delivered and failed since the producer was made (delivery reports). */
void m2d_kafka_producer_counts(m2d_kafka_producer_t *p, int64_t *delivered, int64_t *failed);

/* Fills err from a librdkafka error object (destroyed here) or code; what: "committing the
 * transaction". Always returns false. */
bool m2d_kafka_error(m2d_error_t *err, rd_kafka_error_t *e, const char *what);
bool m2d_kafka_resp_error(m2d_error_t *err, rd_kafka_resp_err_t code, const char *what);

/* librdkafka's log and error callbacks into our log (producers and consumers alike): brokers
 * going away are retried by librdkafka itself, so only fatal errors are warnings. */
void m2d_kafka_on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf);
void m2d_kafka_on_error(rd_kafka_t *rk, int code, const char *reason, void *opaque);

#endif
