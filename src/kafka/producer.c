#include "kafka/producer.h"

#include "core/log.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct m2d_kafka_producer {
  rd_kafka_t *rk;
  atomic_llong delivered, failed;
  char first_failure[512];
};

static const char *advice(int kind) {
  switch (kind) {
  case M2D_KAFKA_RETRY: return " (retriable: the brokers may be unreachable; it is tried again)";
  case M2D_KAFKA_ABORT: return " (the transaction is aborted and the batch sent again)";
  default:
    return ". The producer cannot go on: another instance with the same transactional.id may have "
           "started (only one may run per source), or the brokers refuse the configuration";
  }
}

bool m2d_kafka_error(m2d_error_t *err, rd_kafka_error_t *e, const char *what) {
  int kind = rd_kafka_error_is_fatal(e)               ? M2D_KAFKA_FATAL
             : rd_kafka_error_txn_requires_abort(e) ? M2D_KAFKA_ABORT
             : rd_kafka_error_is_retriable(e)       ? M2D_KAFKA_RETRY
                                                    : M2D_KAFKA_FATAL;
  /* a timeout is worth another try even when librdkafka does not flag it */
  if (kind == M2D_KAFKA_FATAL && !rd_kafka_error_is_fatal(e) &&
      (rd_kafka_error_code(e) == RD_KAFKA_RESP_ERR__TIMED_OUT || rd_kafka_error_code(e) == RD_KAFKA_RESP_ERR__TRANSPORT))
    kind = M2D_KAFKA_RETRY;
  m2d_error_set(err, M2D_ERR_KAFKA, kind, "%s failed: %s%s", what, rd_kafka_error_string(e), advice(kind));
  if (err) err->retriable = kind != M2D_KAFKA_FATAL;
  rd_kafka_error_destroy(e);
  return false;
}

bool m2d_kafka_resp_error(m2d_error_t *err, rd_kafka_resp_err_t code, const char *what) {
  int kind = (code == RD_KAFKA_RESP_ERR__TIMED_OUT || code == RD_KAFKA_RESP_ERR__TRANSPORT ||
              code == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN || code == RD_KAFKA_RESP_ERR__QUEUE_FULL)
                 ? M2D_KAFKA_RETRY
                 : M2D_KAFKA_FATAL;
  m2d_error_set(err, M2D_ERR_KAFKA, kind, "%s failed: %s%s", what, rd_kafka_err2str(code), advice(kind));
  if (err) err->retriable = kind != M2D_KAFKA_FATAL;
  return false;
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
  (void)rk;
  m2d_kafka_producer_t *p = opaque;
  if (m->err) {
    if (atomic_fetch_add(&p->failed, 1) == 0)
      snprintf(p->first_failure, sizeof p->first_failure, "%s [%d]: %s", rd_kafka_topic_name(m->rkt), m->partition,
               rd_kafka_err2str(m->err));
  } else {
    atomic_fetch_add(&p->delivered, 1);
  }
}

void m2d_kafka_on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {
  (void)rk;
  if (level <= 3) m2d_warn("kafka: %s: %s", fac, buf);
  else if (level <= 6) m2d_debug("kafka: %s: %s", fac, buf);
}

void m2d_kafka_on_error(rd_kafka_t *rk, int code, const char *reason, void *opaque) {
  (void)rk, (void)opaque;
  /* brokers going away and coming back are reported here and retried by librdkafka itself */
  if (code == RD_KAFKA_RESP_ERR__FATAL) m2d_warn("kafka: fatal error: %s", reason);
  else m2d_debug("kafka: %s (%s)", reason, rd_kafka_err2name((rd_kafka_resp_err_t)code));
}

m2d_kafka_producer_t *m2d_kafka_producer_new(const m2d_kafka_producer_options_t *o, m2d_error_t *err) {
  m2d_kafka_producer_t *p = calloc(1, sizeof *p);
  if (!p) return m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory"), NULL;
  char tmo[32], errstr[512], maxmsg[32];
  snprintf(maxmsg, sizeof maxmsg, "%d", o->max_message_bytes);
  snprintf(tmo, sizeof tmo, "%d", o->transaction_timeout_ms > 0 ? o->transaction_timeout_ms : 60000);
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  const char *kv[][2] = {
      {"bootstrap.servers", o->brokers},
      {"transactional.id", o->transactional_id},
      {"enable.idempotence", "true"},
      {"transaction.timeout.ms", tmo},
      {"message.timeout.ms", tmo},
      {"linger.ms", "5"},
      {"message.max.bytes", o->max_message_bytes > 0 ? maxmsg : NULL},
      {"reconnect.backoff.max.ms", "2000"},
      {"socket.keepalive.enable", "true"},
  };
  for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++) {
    if (!kv[i][1]) continue;
    if (rd_kafka_conf_set(conf, kv[i][0], kv[i][1], errstr, sizeof errstr) != RD_KAFKA_CONF_OK) {
      rd_kafka_conf_destroy(conf);
      free(p);
      return m2d_error_set(err, M2D_ERR_USAGE, 0, "the Kafka setting %s=%s is refused: %s", kv[i][0], kv[i][1], errstr),
             NULL;
    }
  }
  rd_kafka_conf_set_opaque(conf, p);
  rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
  rd_kafka_conf_set_log_cb(conf, m2d_kafka_on_log);
  rd_kafka_conf_set_error_cb(conf, m2d_kafka_on_error);
  p->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
  if (!p->rk) {
    rd_kafka_conf_destroy(conf);
    free(p);
    return m2d_error_set(err, M2D_ERR_KAFKA, M2D_KAFKA_FATAL, "cannot create the Kafka producer: %s", errstr), NULL;
  }
  return p;
}

void m2d_kafka_producer_destroy(m2d_kafka_producer_t *p) {
  if (!p) return;
  rd_kafka_flush(p->rk, 5000);
  rd_kafka_destroy(p->rk);
  free(p);
}

rd_kafka_t *m2d_kafka_producer_handle(m2d_kafka_producer_t *p) { return p->rk; }

bool m2d_kafka_producer_init_transactions(m2d_kafka_producer_t *p, int timeout_ms, m2d_error_t *err) {
  rd_kafka_error_t *e = rd_kafka_init_transactions(p->rk, timeout_ms);
  return e ? m2d_kafka_error(err, e, "initializing the Kafka transactions (transactional.id)") : true;
}

bool m2d_kafka_producer_begin(m2d_kafka_producer_t *p, m2d_error_t *err) {
  atomic_store(&p->failed, 0);
  rd_kafka_error_t *e = rd_kafka_begin_transaction(p->rk);
  return e ? m2d_kafka_error(err, e, "beginning a Kafka transaction") : true;
}

bool m2d_kafka_producer_send(m2d_kafka_producer_t *p, const char *topic, const void *key, size_t key_len,
                             const void *value, size_t value_len, const m2d_kafka_header_t *headers, int nheaders,
                             m2d_error_t *err) {
  rd_kafka_headers_t *hdrs = NULL;
  if (nheaders > 0) {
    hdrs = rd_kafka_headers_new((size_t)nheaders);
    for (int i = 0; i < nheaders; i++) rd_kafka_header_add(hdrs, headers[i].name, -1, headers[i].value, -1);
  }
  for (;;) {
    rd_kafka_resp_err_t r = rd_kafka_producev(p->rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                              RD_KAFKA_V_KEY(key, key_len), RD_KAFKA_V_VALUE((void *)value, value_len),
                                              RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_END);
    if (r == RD_KAFKA_RESP_ERR_NO_ERROR) return true; /* the headers belong to the record now */
    if (r == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
      rd_kafka_poll(p->rk, 100);
      continue;
    }
    if (hdrs) rd_kafka_headers_destroy(hdrs);
    char what[600];
    snprintf(what, sizeof what, "queueing a record for topic %s", topic);
    m2d_kafka_resp_error(err, r, what);
    if (err && err->code == M2D_KAFKA_FATAL && r != RD_KAFKA_RESP_ERR__FATAL) err->code = M2D_KAFKA_ABORT;
    return false;
  }
}

bool m2d_kafka_producer_commit(m2d_kafka_producer_t *p, int timeout_ms, m2d_error_t *err) {
  rd_kafka_error_t *e = rd_kafka_commit_transaction(p->rk, timeout_ms);
  if (e) return m2d_kafka_error(err, e, "committing the Kafka transaction");
  rd_kafka_poll(p->rk, 0); /* delivery reports */
  return true;
}

bool m2d_kafka_producer_abort(m2d_kafka_producer_t *p, int timeout_ms, m2d_error_t *err) {
  rd_kafka_error_t *e = rd_kafka_abort_transaction(p->rk, timeout_ms);
  rd_kafka_poll(p->rk, 0);
  return e ? m2d_kafka_error(err, e, "aborting the Kafka transaction") : true;
}

bool m2d_kafka_producer_flush(m2d_kafka_producer_t *p, int timeout_ms, m2d_error_t *err) {
  rd_kafka_resp_err_t r = rd_kafka_flush(p->rk, timeout_ms);
  if (r) return m2d_kafka_resp_error(err, r, "flushing the Kafka producer");
  if (atomic_load(&p->failed))
    return m2d_error_set(err, M2D_ERR_KAFKA, M2D_KAFKA_RETRY, "%lld record(s) could not be delivered; the first: %s",
                         (long long)atomic_load(&p->failed), p->first_failure);
  return true;
}

void m2d_kafka_producer_counts(m2d_kafka_producer_t *p, int64_t *delivered, int64_t *failed) {
  *delivered = atomic_load(&p->delivered);
  *failed = atomic_load(&p->failed);
}
