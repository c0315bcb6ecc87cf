/* core/metrics: the registry, the text format, and the HTTP server on a real loopback socket. */
#include "core/metrics.h"
#include "test.h"

#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static int connect_to(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  struct timeval tv = {.tv_sec = 5};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

/* Sends request as is and returns the whole answer (the server closes after it), or NULL. */
static char *http(int port, const char *request) {
  int fd = connect_to(port);
  if (fd < 0) return NULL;
  size_t n = strlen(request);
  if (send(fd, request, n, MSG_NOSIGNAL) != (ssize_t)n) {
    close(fd);
    return NULL;
  }
  size_t cap = 4096, len = 0;
  char *out = malloc(cap);
  for (;;) {
    if (len + 1024 + 1 > cap) out = realloc(out, cap *= 2);
    ssize_t r = recv(fd, out + len, cap - len - 1, 0);
    if (r <= 0) break;
    len += (size_t)r;
  }
  out[len] = '\0';
  close(fd);
  return out;
}

static char *get(int port, const char *path) {
  char req[256];
  snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/plain\r\n\r\n", path);
  return http(port, req);
}

static double seconds_since(const struct timespec *t0) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) / 1e9;
}

TEST(metrics_render_counters_gauges_histograms_in_the_text_format) {
  m2d_error_t err = {0};
  m2d_metrics_t *m = m2d_metrics_start(NULL, 0, &err);
  CHECK(m);
  CHECK(m2d_metrics_counter_add(m, M2D_METRIC_EVENTS_APPLIED, "Change events applied", NULL, 3));
  CHECK(m2d_metrics_counter_add(m, M2D_METRIC_EVENTS_APPLIED, NULL, NULL, 1049));
  CHECK(m2d_metrics_counter_add(m, M2D_METRIC_RECONNECTS, "Reconnections", NULL, 0));
  CHECK(m2d_metrics_gauge_set(m, M2D_METRIC_LAG_SECONDS, "Lag", NULL, 7.5));
  CHECK(m2d_metrics_gauge_set(m, M2D_METRIC_LAG_SECONDS, "Lag", NULL, 0.25));
  CHECK(m2d_metrics_gauge_set(m, M2D_METRIC_LAST_EVENT_TIMESTAMP, "Last event", NULL, 1795619511));
  CHECK(m2d_metrics_gauge_add(m, "queue_depth", NULL, M2D_LABELS("table", "orders"), 2));
  CHECK(m2d_metrics_gauge_add(m, "queue_depth", NULL, M2D_LABELS("table", "orders"), -1));
  double b[] = {0.1, 1, 10};
  CHECK(m2d_metrics_histogram_buckets(m, M2D_METRIC_COMMIT_SECONDS, "Commit time", b, 3));
  CHECK(m2d_metrics_histogram_buckets(m, M2D_METRIC_COMMIT_SECONDS, NULL, b, 3)); /* same again: fine */
  CHECK(m2d_metrics_observe(m, M2D_METRIC_COMMIT_SECONDS, NULL, NULL, 0.05));
  CHECK(m2d_metrics_observe(m, M2D_METRIC_COMMIT_SECONDS, NULL, NULL, 0.1)); /* le is inclusive */
  CHECK(m2d_metrics_observe(m, M2D_METRIC_COMMIT_SECONDS, NULL, NULL, 2));
  CHECK(m2d_metrics_observe(m, M2D_METRIC_COMMIT_SECONDS, NULL, NULL, 100));
  size_t len = 0;
  char *page = m2d_metrics_render(m, &len);
  CHECK(page && len == strlen(page));
  const char *want =
      "# HELP mongo2delta_sync_events_applied_total Change events applied\n"
      "# TYPE mongo2delta_sync_events_applied_total counter\n"
      "mongo2delta_sync_events_applied_total 1052\n"
      "# HELP mongo2delta_sync_reconnects_total Reconnections\n"
      "# TYPE mongo2delta_sync_reconnects_total counter\n"
      "mongo2delta_sync_reconnects_total 0\n"
      "# HELP mongo2delta_sync_lag_seconds Lag\n"
      "# TYPE mongo2delta_sync_lag_seconds gauge\n"
      "mongo2delta_sync_lag_seconds 0.25\n"
      "# HELP mongo2delta_sync_last_event_timestamp_seconds Last event\n"
      "# TYPE mongo2delta_sync_last_event_timestamp_seconds gauge\n"
      "mongo2delta_sync_last_event_timestamp_seconds 1795619511\n"
      "# TYPE queue_depth gauge\n"
      "queue_depth{table=\"orders\"} 1\n"
      "# HELP mongo2delta_sync_commit_seconds Commit time\n"
      "# TYPE mongo2delta_sync_commit_seconds histogram\n"
      "mongo2delta_sync_commit_seconds_bucket{le=\"0.1\"} 2\n"
      "mongo2delta_sync_commit_seconds_bucket{le=\"1\"} 2\n"
      "mongo2delta_sync_commit_seconds_bucket{le=\"10\"} 3\n"
      "mongo2delta_sync_commit_seconds_bucket{le=\"+Inf\"} 4\n"
      "mongo2delta_sync_commit_seconds_sum 102.15\n"
      "mongo2delta_sync_commit_seconds_count 4\n";
  if (strcmp(page, want) != 0) fprintf(stderr, "got:\n%s", page);
  CHECK_STR(page, want);
  free(page);
  m2d_metrics_stop(m);
}

TEST(metrics_histogram_default_buckets_and_labels) {
  m2d_metrics_t *m = m2d_metrics_start("127.0.0.1", 0, NULL);
  CHECK(m);
  CHECK(m2d_metrics_observe(m, "h_seconds", "h", M2D_LABELS("table", "a"), 0.003));
  CHECK(m2d_metrics_observe(m, "h_seconds", "h", M2D_LABELS("table", "b"), 45));
  char *page = m2d_metrics_render(m, NULL);
  CHECK(page);
  CHECK(strstr(page, "h_seconds_bucket{table=\"a\",le=\"0.005\"} 1\n"));
  CHECK(strstr(page, "h_seconds_bucket{table=\"a\",le=\"120\"} 1\n"));
  CHECK(strstr(page, "h_seconds_bucket{table=\"b\",le=\"30\"} 0\n"));
  CHECK(strstr(page, "h_seconds_bucket{table=\"b\",le=\"60\"} 1\n"));
  CHECK(strstr(page, "h_seconds_bucket{table=\"b\",le=\"+Inf\"} 1\n"));
  CHECK(strstr(page, "h_seconds_sum{table=\"a\"} 0.003\n"));
  CHECK(strstr(page, "h_seconds_count{table=\"b\"} 1\n"));
  free(page);
  m2d_metrics_stop(m);
}

TEST(metrics_escape_label_values_and_help) {
  m2d_metrics_t *m = m2d_metrics_start(NULL, 0, NULL);
  CHECK(m);
  CHECK(m2d_metrics_counter_add(m, "c_total", "line one\nback\\slash \"q\"",
                                M2D_LABELS("coll", "a\"b\\c\nd", "db", "shop"), 1));
  char *page = m2d_metrics_render(m, NULL);
  CHECK(page);
  CHECK_STR(page, "# HELP c_total line one\\nback\\\\slash \"q\"\n"
                  "# TYPE c_total counter\n"
                  "c_total{coll=\"a\\\"b\\\\c\\nd\",db=\"shop\"} 1\n");
  free(page);
  m2d_metrics_stop(m);
}

TEST(metrics_refuse_misuse_and_leave_the_registry_unchanged) {
  m2d_metrics_t *m = m2d_metrics_start(NULL, 0, NULL);
  CHECK(m);
  CHECK(m2d_metrics_counter_add(m, "x_total", NULL, NULL, 1));
  CHECK(!m2d_metrics_counter_add(m, "x_total", NULL, NULL, -1));       /* counters only go up */
  CHECK(!m2d_metrics_gauge_set(m, "x_total", NULL, NULL, 1));          /* already a counter */
  CHECK(!m2d_metrics_counter_add(m, "9lives", NULL, NULL, 1));         /* bad metric name */
  CHECK(!m2d_metrics_counter_add(m, "a-b", NULL, NULL, 1));
  CHECK(!m2d_metrics_counter_add(m, "y_total", NULL, M2D_LABELS("bad-label", "v"), 1));
  CHECK(!m2d_metrics_counter_add(m, "y_total", NULL, M2D_LABELS("__reserved", "v"), 1));
  CHECK(!m2d_metrics_observe(m, "h", NULL, M2D_LABELS("le", "1"), 1)); /* le is the histogram's */
  CHECK(!m2d_metrics_observe(m, "h2", NULL, NULL, NAN));
  double b1[] = {1, 2}, b2[] = {1, 3}, bad[] = {2, 1};
  CHECK(!m2d_metrics_histogram_buckets(m, "h3", NULL, bad, 2));
  CHECK(m2d_metrics_histogram_buckets(m, "h3", NULL, b1, 2));
  CHECK(!m2d_metrics_histogram_buckets(m, "h3", NULL, b2, 2));
  char *page = m2d_metrics_render(m, NULL);
  CHECK(page);
  CHECK(strstr(page, "x_total 1\n"));
  CHECK(!strstr(page, "9lives") && !strstr(page, "y_total") && !strstr(page, "h2"));
  free(page);
  m2d_metrics_stop(m);
  /* without a server (no --metrics-port) every update is a no-op */
  CHECK(m2d_metrics_counter_add(NULL, "x_total", NULL, NULL, 1));
  CHECK(m2d_metrics_gauge_set(NULL, "g", NULL, NULL, 1));
  CHECK(m2d_metrics_observe(NULL, "h", NULL, NULL, 1));
  CHECK(m2d_metrics_port(NULL) == 0);
  m2d_metrics_stop(NULL);
}

TEST(metrics_serve_get_metrics_404_and_405_over_http) {
  m2d_error_t err = {0};
  m2d_metrics_t *m = m2d_metrics_start("127.0.0.1", 0, &err);
  CHECK(m);
  int port = m2d_metrics_port(m);
  CHECK(port > 0);
  CHECK(m2d_metrics_counter_add(m, M2D_METRIC_BATCHES, "Batches committed", NULL, 9));
  for (int i = 0; i < 20; i++) { /* several scrapes, each on its own connection */
    CHECK(m2d_metrics_counter_add(m, M2D_METRIC_BATCHES, NULL, NULL, 1));
    char *r = get(port, "/metrics");
    CHECK(r);
    char want[512];
    snprintf(want, sizeof want, "\r\n\r\n# HELP mongo2delta_sync_batches_total Batches committed\n"
                                "# TYPE mongo2delta_sync_batches_total counter\n"
                                "mongo2delta_sync_batches_total %d\n", 10 + i);
    bool ok = strncmp(r, "HTTP/1.1 200 OK\r\n", 17) == 0 &&
              strstr(r, "\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n") &&
              strstr(r, want) && strcmp(strstr(r, want), want) == 0;
    if (!ok) fprintf(stderr, "got:\n%s\n", r);
    free(r);
    CHECK(ok);
  }
  char *r = get(port, "/metrics?name[]=x");
  CHECK(r && strncmp(r, "HTTP/1.1 200 OK\r\n", 17) == 0);
  free(r);
  r = get(port, "/");
  CHECK(r && strncmp(r, "HTTP/1.1 404 Not Found\r\n", 24) == 0);
  free(r);
  r = get(port, "/metricsx");
  CHECK(r && strncmp(r, "HTTP/1.1 404 Not Found\r\n", 24) == 0);
  free(r);
  r = http(port, "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
  CHECK(r && strncmp(r, "HTTP/1.1 405 Method Not Allowed\r\n", 33) == 0 && strstr(r, "\r\nAllow: GET, HEAD\r\n"));
  free(r);
  r = http(port, "HEAD /metrics HTTP/1.1\r\n\r\n");
  CHECK(r && strncmp(r, "HTTP/1.1 200 OK\r\n", 17) == 0);
  CHECK(strstr(r, "\r\n\r\n")[4] == '\0'); /* headers only */
  free(r);
  r = http(port, "garbage\r\n\r\n");
  CHECK(r && strncmp(r, "HTTP/1.1 400 Bad Request\r\n", 26) == 0);
  free(r);
  /* a client that connects and goes away without a word does not stop the server */
  int fd = connect_to(port);
  CHECK(fd >= 0);
  close(fd);
  r = get(port, "/metrics");
  CHECK(r && strncmp(r, "HTTP/1.1 200 OK\r\n", 17) == 0);
  free(r);
  m2d_metrics_stop(m);
}

TEST(metrics_port_in_use_is_a_clear_error) {
  m2d_metrics_t *m = m2d_metrics_start("127.0.0.1", 0, NULL);
  CHECK(m);
  int port = m2d_metrics_port(m);
  m2d_error_t err = {0};
  m2d_metrics_t *again = m2d_metrics_start("127.0.0.1", port, &err);
  CHECK(again == NULL);
  char want[128];
  snprintf(want, sizeof want, "port %d is in use: choose another --metrics-port", port);
  CHECK_STR(err.message, want);
  CHECK(err.domain == M2D_ERR_USAGE);
  CHECK(m2d_metrics_start("localhost:9", 0, &err) == NULL); /* not an address */
  CHECK(m2d_metrics_start(NULL, 70000, &err) == NULL);
  m2d_metrics_stop(m);
}

TEST(metrics_stop_is_prompt_even_with_a_silent_client_connected) {
  m2d_metrics_t *m = m2d_metrics_start(NULL, 0, NULL);
  CHECK(m);
  int fd = connect_to(m2d_metrics_port(m)); /* sends nothing: the server waits for its request */
  CHECK(fd >= 0);
  usleep(100 * 1000);
  struct timespec t0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  m2d_metrics_stop(m);
  double took = seconds_since(&t0);
  close(fd);
  CHECK(took < 0.5);
}

struct updater {
  m2d_metrics_t *m;
  int n;
};

static void *update_many(void *arg) {
  struct updater *u = arg;
  for (int i = 0; i < u->n; i++) {
    m2d_metrics_counter_add(u->m, M2D_METRIC_EVENTS_APPLIED, "Change events applied", NULL, 1);
    m2d_metrics_observe(u->m, M2D_METRIC_COMMIT_SECONDS, "Commit time", NULL, 0.01);
    m2d_metrics_gauge_set(u->m, M2D_METRIC_LAG_SECONDS, "Lag", NULL, i);
  }
  return NULL;
}

TEST(metrics_updates_from_threads_while_scrapes_run) {
  m2d_metrics_t *m = m2d_metrics_start(NULL, 0, NULL);
  CHECK(m);
  pthread_t th[2];
  struct updater u = {m, 20000};
  for (int i = 0; i < 2; i++) CHECK(pthread_create(&th[i], NULL, update_many, &u) == 0);
  int scrapes_ok = 0;
  for (int i = 0; i < 10; i++) {
    char *r = get(m2d_metrics_port(m), "/metrics");
    if (r && strncmp(r, "HTTP/1.1 200 OK\r\n", 17) == 0) scrapes_ok++;
    free(r);
  }
  for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
  CHECK(scrapes_ok == 10);
  char *r = get(m2d_metrics_port(m), "/metrics");
  CHECK(r);
  bool ok = strstr(r, "\nmongo2delta_sync_events_applied_total 40000\n") &&
            strstr(r, "\nmongo2delta_sync_commit_seconds_count 40000\n") &&
            strstr(r, "\nmongo2delta_sync_commit_seconds_bucket{le=\"0.01\"} 40000\n") &&
            strstr(r, "\nmongo2delta_sync_lag_seconds 19999\n");
  if (!ok) fprintf(stderr, "got:\n%s\n", r);
  free(r);
  CHECK(ok);
  m2d_metrics_stop(m);
}
