/* Compaction of a Delta table (`mongo2delta optimize`): small files are bin-packed, per
 * partition, into files near the target size, and every file that carries a deletion vector
 * is rewritten without its deleted rows. The rows are read with delta/scan (deletion vectors,
 * partition values, schema evolution), turned back into BSON (pipeline/row_bson) and written
 * with pipeline/table_writer; the whole run is one commit whose add and remove actions have
 * dataChange false (commitInfo operation OPTIMIZE), so readers and streams see the same rows
 * before and after, and time travel to earlier versions still reads the old files.
 *
 * What is rewritten, per partition:
 *   - candidates: files smaller than min_file_size (default target_file_size / 4: a file of a
 *     quarter of the target or more is not what makes a table slow, and rewriting it costs
 *     more than it gains), and every file with a deletion vector, whatever its size;
 *   - the candidates, oldest first (modificationTime, then path), fill bins up to
 *     target_file_size bytes (a file with a deletion vector counts for its live rows' share
 *     of its size); a bin of one file without a deletion vector is left alone, so a second
 *     run right after the first finds nothing to do;
 *   - each bin is written into its own new file(s), cut at target_file_size.
 * Every bin is checked before the commit: the rows of its new files, read back, must be the
 * rows of the files it replaces (same count, same values in the JSON form of
 * docs/json-form.md); a value the writer cannot write exactly (a Spark timestamp with
 * microseconds, say) fails the run with nothing committed, never a changed table.
 *
 * One commit for the whole run: readers never see half a compaction, and a run that fails or
 * is stopped leaves the table as it was (its new files are removed). The price is that a
 * concurrent writer that removes one of the files being compacted (a sync batch rewriting it,
 * a DELETE) makes the commit fail with a conflict (delta/txn.h DELTA_CONFLICT_FILES); the
 * table is intact and the run can simply be repeated. */
#ifndef M2D_PIPELINE_OPTIMIZE_H
#define M2D_PIPELINE_OPTIMIZE_H

#include "core/error.h"
#include "parquet/format.h"
#include "pipeline/table_writer.h"

#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct {
  const char *table;          /* local path or file:// URL (m2d_optimize_run only) */
  uint64_t target_file_size;  /* bytes per new file; 0: 128 MiB */
  uint64_t min_file_size;     /* files below this are compacted; 0: target_file_size / 4 */
  bool dry_run;               /* plan only: say what would be rewritten, write nothing */
  double dv_min_deleted;      /* 0: every file with a deletion vector is rewritten; else only those with at least
                                 this fraction of their rows deleted (sync's background compaction) */
  pq_codec_t codec;           /* new files' codec (m2d_optimize_run only; default snappy) */
  int level;                  /* codec level, 0: default */
  volatile sig_atomic_t *stop; /* may be NULL; when it becomes non-zero the run stops, nothing committed */
} m2d_optimize_options_t;

typedef struct {
  int64_t version;       /* the version committed; with nothing done or a dry run, the version read */
  int64_t files_removed; /* files rewritten (dry run: that would be) */
  int64_t files_added;   /* new files (dry run: an estimate, one per target size of each bin) */
  int64_t rows;          /* rows rewritten (dry run: from the files' statistics, when they have some) */
  int64_t bytes_removed, bytes_added;
  int64_t dvs_folded;    /* files whose deletion vector was applied and dropped */
  int64_t partitions;    /* partitions touched */
  bool interrupted;      /* the stop flag ended the run: nothing was committed */
  json_t *removed_paths; /* array of the removed files' paths, as the log spells them */
  json_t *added;         /* array of the add actions committed (the inner objects, as
                            delta_snapshot_t.files holds them); empty for a dry run */
} m2d_optimize_summary_t;

/* Opens the table, compacts it, closes it. true when the run did what it should (also when
 * there was nothing to do, or when it was interrupted: see summary->interrupted); the summary
 * is filled in either case and must be freed. */
bool m2d_optimize_run(const m2d_optimize_options_t *opts, m2d_optimize_summary_t *summary, m2d_error_t *err);

/* The same with a table writer the caller holds open (the sync pipeline, between its
 * batches): opts->table, codec and level are not used (the writer's are); the table is read at
 * the writer's version, and after the commit the writer is at the new version, so its next
 * batch follows on. The writer must have no batch in hand. summary->removed_paths and
 * summary->added tell the caller which files went and came (e.g. to re-index keys). */
bool m2d_optimize_with_writer(m2d_table_writer_t *w, const m2d_optimize_options_t *opts,
                              m2d_optimize_summary_t *summary, m2d_error_t *err);

void m2d_optimize_summary_free(m2d_optimize_summary_t *summary);

#endif
