/* SIGINT and SIGTERM as a request to stop: long commands finish what is in hand and return. */
#include "cli/commands.h"

#include <signal.h>

static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int sig) {
  (void)sig;
  stop_requested = 1;
}

volatile sig_atomic_t *m2d_cli_stop_on_signals(void) {
  signal(SIGINT, on_stop_signal);
  signal(SIGTERM, on_stop_signal);
  return &stop_requested;
}
