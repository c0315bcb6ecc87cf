#include "kafka/admin.h"

#include "kafka/producer.h"

#include <stdio.h>
#include <string.h>

bool m2d_kafka_ensure_topic(rd_kafka_t *rk, const char *topic, bool compact, int timeout_ms, m2d_error_t *err) {
  char errstr[512];
  rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(topic, -1, -1, errstr, sizeof errstr);
  if (!nt) return m2d_error_set(err, M2D_ERR_USAGE, 0, "the topic name '%s' is refused: %s", topic, errstr);
  if (compact) rd_kafka_NewTopic_set_config(nt, "cleanup.policy", "compact");
  rd_kafka_AdminOptions_t *ao = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
  rd_kafka_AdminOptions_set_request_timeout(ao, timeout_ms, errstr, sizeof errstr);
  rd_kafka_AdminOptions_set_operation_timeout(ao, timeout_ms, errstr, sizeof errstr);
  rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
  rd_kafka_CreateTopics(rk, &nt, 1, ao, q);
  rd_kafka_event_t *ev = rd_kafka_queue_poll(q, timeout_ms + 2000);
  bool ok = true;
  char what[600];
  snprintf(what, sizeof what, "creating the topic %s", topic);
  if (!ev) {
    ok = m2d_kafka_resp_error(err, RD_KAFKA_RESP_ERR__TIMED_OUT, what);
  } else if (rd_kafka_event_error(ev)) {
    ok = m2d_kafka_resp_error(err, rd_kafka_event_error(ev), what);
  } else {
    size_t n;
    const rd_kafka_topic_result_t **res = rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
    for (size_t i = 0; i < n; i++) {
      rd_kafka_resp_err_t e = rd_kafka_topic_result_error(res[i]);
      if (e && e != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
        const char *msg = rd_kafka_topic_result_error_string(res[i]);
        ok = m2d_error_set(err, M2D_ERR_KAFKA, M2D_KAFKA_FATAL,
                           "creating the topic %s failed: %s (%s); create it yourself%s", topic,
                           msg ? msg : rd_kafka_err2str(e), rd_kafka_err2name(e),
                           compact ? " with cleanup.policy=compact" : "");
      }
    }
  }
  if (ev) rd_kafka_event_destroy(ev);
  rd_kafka_queue_destroy(q);
  rd_kafka_AdminOptions_destroy(ao);
  rd_kafka_NewTopic_destroy(nt);
  return ok;
}
