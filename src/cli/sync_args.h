/* sync's options, shared with run, whose config file gives them per collection: one table of
 * options and one parser, so a key in the file means what the option means on sync. */
#ifndef M2D_CLI_SYNC_ARGS_H
#define M2D_CLI_SYNC_ARGS_H

#include "cli/args.h"
#include "pipeline/sync.h"

extern const m2d_opt_spec_t m2d_sync_opts[];

/* Fills *o (stop, pool and metrics left NULL) from sync's options in a; a usage error names the
 * option. Also aborts multipart uploads a crashed run left in the tables' buckets. */
bool m2d_args_sync(const m2d_args_t *a, m2d_sync_options_t *o, m2d_error_t *err);

#endif
