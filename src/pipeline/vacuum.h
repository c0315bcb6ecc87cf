/* Deleting the files a Delta table no longer needs (`mongo2delta vacuum`): every file under the
 * table's directory that the current version does not reference and that has been unneeded
 * for longer than the retention: data files (the root and any partition directory),
 * deletion_vector_*.bin files and _change_data/ files. _delta_log is never touched, nor
 * hidden names (starting with '.' or '_', other than _change_data and partition directories
 * such as _id=1), so another tool's bookkeeping stays.
 *
 * When a file became unneeded:
 *   - a file removed by a commit (a remove action, or a deletion vector named by one): its
 *     deletionTimestamp, the newest if it was removed more than once (the removes of every
 *     JSON commit still in the log, and the tombstones of the checkpoint);
 *   - any other file (never committed, e.g. left by a writer that died; change data files):
 *     its modification time from the store's listing;
 *   - never before its modification time, in either case.
 * A retention below the table's delta.deletedFileRetentionDuration (one week unless set) is
 * refused unless forced: queries running now on an older snapshot, time travel to versions
 * inside the retention and writers whose files are not committed yet all read files that
 * the current version no longer references.
 *
 * A vacuum that deletes files records itself in the table's history as Delta does: a commit
 * with only commitInfo "VACUUM START" (the retention and what will be deleted) before, and
 * "VACUUM END" (what was deleted, status COMPLETED or FAILED) after. Empty directories are
 * left in place. */
#ifndef M2D_PIPELINE_VACUUM_H
#define M2D_PIPELINE_VACUUM_H

#include "core/error.h"

#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct {
  const char *table;           /* local path or file:// URL */
  int64_t retain_hours;        /* < 0: the table's retention (delta.deletedFileRetentionDuration, default 168) */
  bool force;                  /* allow a retention below the table's */
  bool dry_run;                /* find the files, delete nothing, commit nothing */
  volatile sig_atomic_t *stop; /* may be NULL; when it becomes non-zero no more files are deleted */
} m2d_vacuum_options_t;

typedef struct {
  int64_t version;        /* the table version whose files were kept */
  int64_t retain_ms;      /* the retention applied */
  int64_t files_deleted;  /* dry run: that would be deleted */
  int64_t bytes_deleted;
  int64_t files_retained; /* unreferenced files kept because they are inside the retention */
  int64_t start_version, end_version; /* the VACUUM START / END commits, -1 when none */
  bool interrupted;       /* the stop flag ended the deletions early */
  json_t *deleted;        /* array of {"path": key relative to the table, "size": bytes} */
} m2d_vacuum_summary_t;

/* Vacuums the table. The summary is filled (also on failure, with what was done) and must be
 * freed. A retention below the table's without force is an M2D_ERR_USAGE error. */
bool m2d_vacuum_run(const m2d_vacuum_options_t *opts, m2d_vacuum_summary_t *summary, m2d_error_t *err);
void m2d_vacuum_summary_free(m2d_vacuum_summary_t *summary);

#endif
