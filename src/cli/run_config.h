/* run's config file (TOML, core/toml): which collections to sync into which tables, with
 * sync's options per collection. The layout:
 *
 *   [source]                      uri (required), db (required)
 *   [metrics]                     port: serve Prometheus metrics for every collection
 *   [defaults]                    sync options for every collection
 *   [[collection]]                name (required), db (default: [source]'s), table, and any
 *                                 sync option (mode, changelog-table, merge-strategy, ...)
 *   [all-collections]             table-root (required), changelog-root (mode both), include
 *                                 and exclude (arrays of glob patterns), and sync options:
 *                                 every collection of db that matches and is not listed above,
 *                                 into ROOT/<collection>
 *
 * Keys are sync's option names (max-batch-docs, or max_batch_docs); a flag is true or false.
 * "${NAME}" in a string is replaced by the environment variable NAME (a missing one is an
 * error), so secrets stay out of the file: a password written in [source] uri is refused.
 * Every error names the file and line. */
#ifndef M2D_CLI_RUN_CONFIG_H
#define M2D_CLI_RUN_CONFIG_H

#include "cli/args.h"
#include "core/toml.h"

#include <signal.h>

typedef struct {
  char name[512]; /* "db.collection" */
  int line;       /* its section's header */
  m2d_args_t args; /* sync's options */
} m2d_run_entry_t;

typedef struct {
  const char *path;
  m2d_toml_t *root;
  const char *uri, *db;
  int metrics_port; /* -1: no metrics */
  m2d_run_entry_t *entries;
  int n, cap;
  /* [all-collections], when all is set */
  bool all;
  int all_line;
  m2d_args_t all_args;
  const char *table_root, *changelog_root;
  const char *include[64], *exclude[64];
  int ninclude, nexclude;
  char **owned; /* strings made here (numbers as text, table paths) */
  int nowned, owned_cap;
} m2d_run_config_t;

/* Reads and checks path into *c (free with m2d_run_config_free, also after a failure). */
bool m2d_run_config_load(m2d_run_config_t *c, const char *path, m2d_error_t *err);

/* For [all-collections]: whether collection (of [source] db) is to be synced by it: it matches
 * an include pattern, no exclude pattern, is not a system collection and not listed by a
 * [[collection]] of that db. */
bool m2d_run_config_matches(const m2d_run_config_t *c, const char *collection);
/* Adds an entry for collection from [all-collections]: tables ROOT/<collection>. */
bool m2d_run_config_add_matched(m2d_run_config_t *c, const char *collection, m2d_error_t *err);

/* The config `sync --all-collections` stands for: [source] from --uri and --db, [metrics] port
 * from --metrics-port, [all-collections] from --table-root, --changelog-root, --include and
 * --exclude (comma-separated) and the other sync options given. */
bool m2d_run_config_from_sync_args(m2d_run_config_t *c, const m2d_args_t *args, m2d_error_t *err);

/* Runs the config (cmd_run.c): lists the collections [all-collections] matches, then one sync
 * loop per collection sharing a connection pool and the metrics endpoint, until stop is set or
 * every loop ends; dry_run prints the collections and their tables instead. Returns the exit
 * status. */
int m2d_run_collections(m2d_run_config_t *c, bool dry_run, volatile sig_atomic_t *stop);

void m2d_run_config_free(m2d_run_config_t *c);

#endif
