#include "kafka/consumer.h"

#include "core/log.h"
#include "kafka/producer.h"

#include <stdio.h>
#include <stdlib.h>

bool m2d_kafka_cooperative(void) { return rd_kafka_version() >= 0x020300ff; }

rd_kafka_t *m2d_kafka_consumer_new(const m2d_kafka_consumer_options_t *o, m2d_error_t *err) {
  char errstr[512], session[32], heartbeat[32];
  int st = o->session_timeout_ms > 0 ? o->session_timeout_ms : 10000;
  snprintf(session, sizeof session, "%d", st);
  snprintf(heartbeat, sizeof heartbeat, "%d", st / 5 > 100 ? st / 5 : 100);
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  const char *kv[][2] = {
      {"bootstrap.servers", o->brokers},
      {"group.id", o->group},
      {"partition.assignment.strategy", m2d_kafka_cooperative() ? "cooperative-sticky" : "range"},
      {"isolation.level", "read_committed"},
      {"enable.auto.commit", "false"},
      {"enable.auto.offset.store", "false"},
      {"auto.offset.reset", "earliest"},
      {"session.timeout.ms", session},
      {"heartbeat.interval.ms", heartbeat},
      {"max.poll.interval.ms", "600000"},
      {"topic.metadata.refresh.interval.ms", "10000"}, /* new topics matching a pattern are seen soon */
      {"allow.auto.create.topics", "false"},
      {"reconnect.backoff.max.ms", "2000"},
      {"socket.keepalive.enable", "true"},
  };
  for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++) {
    if (rd_kafka_conf_set(conf, kv[i][0], kv[i][1], errstr, sizeof errstr) != RD_KAFKA_CONF_OK) {
      rd_kafka_conf_destroy(conf);
      return m2d_error_set(err, M2D_ERR_USAGE, 0, "the Kafka setting %s=%s is refused: %s", kv[i][0], kv[i][1], errstr),
             NULL;
    }
  }
  rd_kafka_conf_set_opaque(conf, o->opaque);
  if (o->rebalance) rd_kafka_conf_set_rebalance_cb(conf, o->rebalance);
  rd_kafka_conf_set_log_cb(conf, m2d_kafka_on_log);
  rd_kafka_conf_set_error_cb(conf, m2d_kafka_on_error);
  rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
  if (!rk) {
    rd_kafka_conf_destroy(conf);
    return m2d_error_set(err, M2D_ERR_KAFKA, M2D_KAFKA_FATAL, "cannot create the Kafka consumer: %s", errstr), NULL;
  }
  rd_kafka_poll_set_consumer(rk);
  return rk;
}

bool m2d_kafka_consumer_subscribe(rd_kafka_t *rk, const char *const *topics, int n, const char *pattern,
                                  m2d_error_t *err) {
  rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(n > 0 ? n : 1);
  char re[1024];
  if (pattern) {
    /* librdkafka takes a name beginning with ^ as a regular expression */
    snprintf(re, sizeof re, "%s%s", pattern[0] == '^' ? "" : "^", pattern);
    rd_kafka_topic_partition_list_add(l, re, RD_KAFKA_PARTITION_UA);
  } else {
    for (int i = 0; i < n; i++) rd_kafka_topic_partition_list_add(l, topics[i], RD_KAFKA_PARTITION_UA);
  }
  rd_kafka_resp_err_t r = rd_kafka_subscribe(rk, l);
  rd_kafka_topic_partition_list_destroy(l);
  return r ? m2d_kafka_resp_error(err, r, "subscribing to the topics") : true;
}
