/* mongo2delta watch: print a collection's change events, to see what sync will receive. */
#include "cli/commands.h"
#include "core/log.h"
#include "mongo/change_stream.h"
#include "mongo/client.h"

#include <signal.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

static const m2d_opt_spec_t opts[] = {
    M2D_OPTS_COLLECTION("", "collection to watch", true),
    {"max-events", "N", "stop after N events", "0 (no limit)", false},
    {"timeout", "SECONDS", "stop after this many seconds without an event", "0 (never)", false},
    M2D_OPT_END,
};

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int run(const m2d_command_t *cmd, m2d_args_t *args) {
  (void)cmd;
  m2d_error_t err = {0};
  int64_t max_events = 0, timeout = 0;
  if (!m2d_args_int_if_given(args, "max-events", 1, INT64_MAX, &max_events, &err) ||
      !m2d_args_int_if_given(args, "timeout", 1, 86400 * 365, &timeout, &err))
    return m2d_cli_fail(&err);

  mongoc_client_t *client = m2d_mongo_client_new(m2d_args_get(args, "uri"), &err);
  if (!client) return m2d_cli_fail(&err);
  m2d_change_stream_options_t co = {.client = client, .db = m2d_args_get(args, "db"),
                                    .collection = m2d_args_get(args, "collection"), .max_await_ms = 500};
  m2d_change_stream_t *cs = m2d_change_stream_new(&co, &err);
  if (!cs || !m2d_change_stream_start(cs, NULL, &err)) {
    m2d_change_stream_destroy(cs);
    mongoc_client_destroy(client);
    return m2d_cli_fail(&err);
  }

  volatile sig_atomic_t *stop = m2d_cli_stop_on_signals();
  int status = 0;
  int64_t seen = 0;
  double last = now_s();
  m2d_info("watching %s.%s", m2d_args_get(args, "db"), m2d_args_get(args, "collection"));
  while (!*stop) {
    const bson_t *event;
    bson_error_t e;
    m2d_cs_next_t got = m2d_change_stream_next(cs, &event, &e, NULL);
    if (got == M2D_CS_EVENT) {
      char *json = bson_as_relaxed_extended_json(event, NULL);
      printf("%s\n", json);
      fflush(stdout);
      bson_free(json);
      last = now_s();
      if (max_events && ++seen >= max_events) break;
      continue;
    }
    if (got == M2D_CS_ERROR) {
      m2d_mongo_error(&err, &e, "change stream failed");
      status = m2d_cli_fail(&err);
      break;
    }
    if (timeout && now_s() - last >= (double)timeout) break;
    usleep(20000); /* servers whose getMore does not wait (mongo-java-server) return at once */
  }
  m2d_change_stream_destroy(cs);
  mongoc_client_destroy(client);
  return status;
}

const m2d_command_t m2d_cmd_watch = {
    .name = "watch",
    .summary = "print a collection's change events as Extended JSON lines (diagnostics)",
    .description = "Opens a change stream on one collection (with full documents looked up on update)\n"
                   "and prints each event as a relaxed Extended JSON line on stdout, until Ctrl-C,\n"
                   "--max-events or --timeout. Useful to see what 'sync' will receive.",
    .example = "mongo2delta watch --uri mongodb://127.0.0.1:27017 --db shop --collection orders --max-events 10",
    .opts = opts,
    .run = run,
};
