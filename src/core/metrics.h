/* Prometheus metrics: a registry of counters, gauges and histograms, served in the text
 * exposition format (version 0.0.4) over HTTP by one small server thread.
 *
 *   m2d_error_t err;
 *   m2d_metrics_t *m = m2d_metrics_start("127.0.0.1", port, &err);   // port 0: any free port
 *   if (!m) { ... err.message: "port 9108 is in use: choose another --metrics-port" ... }
 *   m2d_metrics_counter_add(m, M2D_METRIC_EVENTS_APPLIED, "Change events applied", NULL, n);
 *   m2d_metrics_observe(m, M2D_METRIC_COMMIT_SECONDS, "Time to commit a batch", NULL, secs);
 *   ...
 *   m2d_metrics_stop(m);                                              // joins the thread, frees
 *
 * `GET /metrics` (and HEAD) answers 200 with `Content-Type: text/plain; version=0.0.4`; any
 * other path 404, any other method 405. Each connection gets one answer and is closed.
 *
 * Every update function accepts m == NULL and then does nothing (returns true), so a caller
 * without --metrics-port passes NULL around and needs no ifs. Updates take one mutex for a
 * few hundred nanoseconds and never wait for a scrape's network I/O (the page is rendered under
 * the mutex into memory, then sent without it), so they are safe from any thread and never
 * block the caller on a slow client. They return false only for programming errors: a name
 * or label name that is not valid in Prometheus, the same name used with two types, a negative
 * counter increment, different histogram buckets for one name, or more than
 * M2D_METRICS_MAX_SERIES series in all; the registry is then unchanged.
 *
 * Labels are given as a NULL-terminated array of name, value, name, value, ...; M2D_LABELS
 * builds one: M2D_LABELS("table", "orders", "mode", "mirror"). Values are escaped as the
 * format wants (backslash, double quote, newline); a series is identified by its name and its
 * labels in the order given, so always give them in the same order. NULL means no labels.
 *
 * Names the sync command uses (the other end of the --metrics-port option):
 *   mongo2delta_sync_events_applied_total            counter: change events applied (committed)
 *   mongo2delta_sync_batches_total                   counter: batches committed
 *   mongo2delta_sync_commit_seconds                  histogram: time to commit one batch (all
 *                                                    its tables), seconds; default buckets
 *   mongo2delta_sync_lag_seconds                     gauge: now minus the cluster time of the
 *                                                    last applied event, seconds
 *   mongo2delta_sync_last_event_timestamp_seconds    gauge: cluster time of the last applied
 *                                                    event, seconds since the epoch
 *   mongo2delta_sync_reconnects_total                counter: reconnections to the server
 *
 * Names kafka-produce uses (labelled source="<db>.<collection>" or "<db>.*", the records by
 * topic="..."):
 *   mongo2delta_kafka_produce_records_total          counter: change-event and copy records
 *                                                    committed (heartbeats and positions not)
 *   mongo2delta_kafka_produce_transactions_total     counter: Kafka transactions committed
 *   mongo2delta_kafka_produce_aborted_transactions_total
 *                                                    counter: transactions aborted (then sent again)
 *   mongo2delta_kafka_produce_commit_seconds         histogram: from the transaction's first
 *                                                    send to its commit, retries included
 *   mongo2delta_kafka_produce_last_event_timestamp_seconds
 *                                                    gauge: cluster time of the last change
 *                                                    event committed, seconds since the epoch
 *   mongo2delta_kafka_produce_lag_seconds            gauge: now minus that cluster time at its commit
 *   mongo2delta_kafka_produce_heartbeats_total       counter: heartbeat positions written
 *   mongo2delta_kafka_produce_reconnects_total       counter, also labelled server="mongodb"
 *                                                    (the stream reopened after the server went
 *                                                    away) or server="kafka" (a transaction that
 *                                                    went through after the brokers were away)
 */
#ifndef M2D_CORE_METRICS_H
#define M2D_CORE_METRICS_H

#include "core/error.h"

#include <stdbool.h>
#include <stddef.h>

#define M2D_METRIC_EVENTS_APPLIED "mongo2delta_sync_events_applied_total"
#define M2D_METRIC_BATCHES "mongo2delta_sync_batches_total"
#define M2D_METRIC_COMMIT_SECONDS "mongo2delta_sync_commit_seconds"
#define M2D_METRIC_LAG_SECONDS "mongo2delta_sync_lag_seconds"
#define M2D_METRIC_LAST_EVENT_TIMESTAMP "mongo2delta_sync_last_event_timestamp_seconds"
#define M2D_METRIC_RECONNECTS "mongo2delta_sync_reconnects_total"

#define M2D_METRIC_KP_RECORDS "mongo2delta_kafka_produce_records_total"
#define M2D_METRIC_KP_TRANSACTIONS "mongo2delta_kafka_produce_transactions_total"
#define M2D_METRIC_KP_ABORTED "mongo2delta_kafka_produce_aborted_transactions_total"
#define M2D_METRIC_KP_COMMIT_SECONDS "mongo2delta_kafka_produce_commit_seconds"
#define M2D_METRIC_KP_LAST_EVENT_TIMESTAMP "mongo2delta_kafka_produce_last_event_timestamp_seconds"
#define M2D_METRIC_KP_LAG_SECONDS "mongo2delta_kafka_produce_lag_seconds"
#define M2D_METRIC_KP_HEARTBEATS "mongo2delta_kafka_produce_heartbeats_total"
#define M2D_METRIC_KP_RECONNECTS "mongo2delta_kafka_produce_reconnects_total"

/* Upper bound on series (label combinations) over all metrics: a guard against a label that
 * takes unbounded values. */
#define M2D_METRICS_MAX_SERIES 10000

/* Upper bounds (seconds) of the buckets of a histogram observed before any
 * m2d_metrics_histogram_buckets call for its name: Prometheus' defaults, extended to two
 * minutes for slow commits. */
#define M2D_METRICS_DEFAULT_BUCKETS                                                               \
  {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120}

/* A label list for the update functions: M2D_LABELS("table", "orders"). */
#define M2D_LABELS(...) ((const char *const[]){__VA_ARGS__, NULL})

typedef struct m2d_metrics m2d_metrics_t;

/* Listens on bind_addr:port (an IPv4 address; NULL means 127.0.0.1; port 0 picks a free port)
 * and starts the server thread. Returns NULL with err filled when the socket cannot be had
 * ("port N is in use: choose another --metrics-port", M2D_ERR_USAGE) or on other failures. */
m2d_metrics_t *m2d_metrics_start(const char *bind_addr, int port, m2d_error_t *err);

/* The port the server listens on (the one picked when started with 0). */
int m2d_metrics_port(const m2d_metrics_t *m);

/* Stops the server promptly (it wakes the thread; a scrape being answered is cut), joins its
 * thread and frees everything. Accepts NULL. */
void m2d_metrics_stop(m2d_metrics_t *m);

/* counter += value (value >= 0). The series appears with 0 when value is 0, so a counter can be
 * announced before its first event. */
bool m2d_metrics_counter_add(m2d_metrics_t *m, const char *name, const char *help,
                             const char *const *labels, double value);

/* gauge = value, and gauge += delta. */
bool m2d_metrics_gauge_set(m2d_metrics_t *m, const char *name, const char *help,
                           const char *const *labels, double value);
bool m2d_metrics_gauge_add(m2d_metrics_t *m, const char *name, const char *help,
                           const char *const *labels, double delta);

/* Declares a histogram with its bucket upper bounds (finite, strictly increasing, at most 64;
 * +Inf is added). Optional: a histogram observed first gets M2D_METRICS_DEFAULT_BUCKETS. Calling
 * it again with the same bounds is fine; with others, false. */
bool m2d_metrics_histogram_buckets(m2d_metrics_t *m, const char *name, const char *help,
                                   const double *bounds, size_t n);

/* Records one observation (seconds, for the _seconds histograms) into a histogram:
 * name_bucket{le="..."} (cumulative), name_sum, name_count. */
bool m2d_metrics_observe(m2d_metrics_t *m, const char *name, const char *help,
                         const char *const *labels, double value);

/* The page a scrape gets, as a NUL-terminated string to free(); NULL when out of memory.
 * For tests and for logging the metrics at exit. */
char *m2d_metrics_render(m2d_metrics_t *m, size_t *len);

#endif
