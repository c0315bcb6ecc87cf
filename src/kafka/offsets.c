#include "kafka/offsets.h"

#include "kafka/producer.h"

#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

bool m2d_kafka_offsets_read(const char *brokers, const char *topic, const char *key, int timeout_ms, char **value,
                            m2d_error_t *err) {
  *value = NULL;
  char errstr[512];
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  const char *kv[][2] = {{"bootstrap.servers", brokers},      {"group.id", "mongo2delta-offsets-reader"},
                         {"enable.auto.commit", "false"},     {"isolation.level", "read_committed"},
                         {"enable.partition.eof", "true"},    {"auto.offset.reset", "earliest"},
                         {"reconnect.backoff.max.ms", "2000"}};
  for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++)
    if (rd_kafka_conf_set(conf, kv[i][0], kv[i][1], errstr, sizeof errstr) != RD_KAFKA_CONF_OK) {
      rd_kafka_conf_destroy(conf);
      return m2d_error_set(err, M2D_ERR_USAGE, 0, "the Kafka setting %s=%s is refused: %s", kv[i][0], kv[i][1], errstr);
    }
  rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
  if (!rk) {
    rd_kafka_conf_destroy(conf);
    return m2d_error_set(err, M2D_ERR_KAFKA, M2D_KAFKA_FATAL, "cannot create the Kafka consumer: %s", errstr);
  }
  char what[600];
  snprintf(what, sizeof what, "reading the positions in topic %s", topic);
  bool ok = true;
  rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
  const rd_kafka_metadata_t *md = NULL;
  rd_kafka_resp_err_t r = rd_kafka_metadata(rk, 0, rkt, &md, timeout_ms);
  int nparts = 0;
  if (r) ok = m2d_kafka_resp_error(err, r, what);
  else if (md->topic_cnt != 1 || md->topics[0].err)
    ok = m2d_kafka_resp_error(err, md->topic_cnt ? md->topics[0].err : RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART, what);
  else nparts = md->topics[0].partition_cnt;
  rd_kafka_topic_destroy(rkt);
  rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(nparts > 0 ? nparts : 1);
  for (int i = 0; ok && i < nparts; i++)
    rd_kafka_topic_partition_list_add(parts, topic, md->topics[0].partitions[i].id)->offset = RD_KAFKA_OFFSET_BEGINNING;
  if (md) rd_kafka_metadata_destroy(md);
  if (ok && (r = rd_kafka_assign(rk, parts))) ok = m2d_kafka_resp_error(err, r, what);
  int eofs = 0;
  size_t klen = strlen(key);
  double deadline = now_s() + timeout_ms / 1000.0;
  while (ok && eofs < nparts) {
    if (now_s() > deadline) {
      ok = m2d_kafka_resp_error(err, RD_KAFKA_RESP_ERR__TIMED_OUT, what);
      break;
    }
    rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 500);
    if (!m) continue;
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) eofs++;
    else if (m->err) {
      if (m->err != RD_KAFKA_RESP_ERR__TRANSPORT && m->err != RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN)
        ok = m2d_kafka_resp_error(err, m->err, what);
    } else if (m->key_len == klen && memcmp(m->key, key, klen) == 0) {
      free(*value);
      *value = NULL;
      if (m->payload) { /* a tombstone forgets the position */
        *value = malloc(m->len + 1);
        memcpy(*value, m->payload, m->len);
        (*value)[m->len] = 0;
      }
    }
    rd_kafka_message_destroy(m);
  }
  rd_kafka_topic_partition_list_destroy(parts);
  rd_kafka_consumer_close(rk);
  rd_kafka_destroy(rk);
  if (!ok) {
    free(*value);
    *value = NULL;
  }
  return ok;
}
