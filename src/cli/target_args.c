#include "cli/target_args.h"

#include "storage/store.h"

#include <string.h>

bool m2d_args_table_modes(const m2d_args_t *a, m2d_table_target_args_t *t, m2d_error_t *err) {
  const char *mode = m2d_args_get(a, "mode");
  if (strcmp(mode, "mirror") == 0) t->mirror = true, t->table = m2d_args_get(a, "table");
  else if (strcmp(mode, "changelog") == 0) t->changelog = true, t->changelog_table = m2d_args_get(a, "table");
  else if (strcmp(mode, "both") == 0) {
    t->mirror = t->changelog = true;
    t->table = m2d_args_get(a, "table");
    t->changelog_table = m2d_args_get(a, "changelog-table");
    if (!m2d_args_flag(a, "changelog-table"))
      return m2d_error_set(err, M2D_ERR_USAGE, 0, "--mode both needs --changelog-table PATH");
  } else {
    return m2d_error_set(err, M2D_ERR_USAGE, 0, "--mode must be mirror, changelog or both");
  }
  static const char *const merges[] = {"deletion-vectors", "rewrite", NULL}, *const deletes[] = {"hard", "soft", NULL};
  int merge = 0, del = 0;
  if (!m2d_args_choice(a, "merge-strategy", merges, &merge, err) || !m2d_args_choice(a, "delete", deletes, &del, err))
    return false;
  t->rewrite = merge == 1;
  t->soft_delete = del == 1;
  t->change_data_feed = m2d_args_flag(a, "change-data-feed");
  return true;
}

bool m2d_args_table_target(const m2d_args_t *a, m2d_table_target_args_t *t, m2d_error_t *err) {
  memset(t, 0, sizeof *t);
  if (!m2d_args_table_modes(a, t, err)) return false;
  int64_t batch = 1000, latency = 1000, compact = 50, mport = -1;
  if (!m2d_args_int(a, "max-batch-docs", 1, 1000000, &batch, err) ||
      !m2d_args_int(a, "max-latency", 1, 3600000, &latency, err) ||
      !m2d_args_stop_when_idle(a, &t->stop_when_idle_s, err) ||
      !m2d_args_int(a, "compact-every", 0, 1000000000, &compact, err) ||
      !m2d_args_int_if_given(a, "metrics-port", 0, 65535, &mport, err))
    return false;
  t->max_batch = (int)batch;
  t->max_latency_ms = (int)latency;
  t->compact_every = (int)compact;
  t->metrics_port = (int)mport;
  if (!m2d_args_compression(a, &t->codec, &t->level, err) || !m2d_args_target_file_size(a, &t->target_file_size, err))
    return false;
  return (!t->table || m2d_store_abort_orphan_uploads(t->table, err)) &&
         (!t->changelog_table || m2d_store_abort_orphan_uploads(t->changelog_table, err));
}
