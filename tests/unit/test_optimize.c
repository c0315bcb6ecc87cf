/* pipeline/optimize on a table writer the caller keeps open (what sync does between batches):
 * the summary names the files removed and the adds committed, the writer follows on at the new
 * version, and a batch in hand is refused. */
#include "delta/log.h"
#include "pipeline/optimize.h"
#include "pipeline/table_writer.h"
#include "schema/infer.h"
#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static bool write_batch(m2d_table_writer_t *w, int first, int n, int64_t *version) {
  bson_t **docs = calloc((size_t)n, sizeof *docs);
  m2d_infer_t *inf = m2d_infer_new(NULL);
  bool ok = docs && inf;
  for (int i = 0; ok && i < n; i++) {
    docs[i] = BCON_NEW("_id", BCON_INT64(first + i), "name", BCON_UTF8("x"), "k", BCON_INT32((first + i) % 2));
    ok = m2d_infer_observe(inf, docs[i], NULL);
  }
  ok = ok && m2d_table_writer_begin(w, m2d_infer_schema(inf), NULL);
  for (int i = 0; ok && i < n; i++) ok = m2d_table_writer_add(w, docs[i], NULL, NULL);
  ok = ok && m2d_table_writer_commit(w, NULL, 0, NULL, version, NULL);
  for (int i = 0; docs && i < n; i++)
    if (docs[i]) bson_destroy(docs[i]);
  free(docs);
  m2d_infer_destroy(inf);
  return ok;
}

TEST(optimize_with_an_open_writer_reports_files_and_the_writer_follows_on) {
  char dir[256], cmd[300];
  snprintf(dir, sizeof dir, "/tmp/m2d-optimize-%d", (int)getpid());
  m2d_table_writer_options_t wo = {.table = dir, .partition_by = "k"};
  m2d_table_writer_t *w = m2d_table_writer_open(&wo, NULL);
  CHECK(w);
  int64_t v = -1;
  for (int b = 0; b < 3; b++) CHECK(write_batch(w, b * 10, 10, &v));
  CHECK(v == 2);

  /* a batch in hand is refused */
  m2d_infer_t *inf = m2d_infer_new(NULL);
  CHECK(m2d_table_writer_begin(w, m2d_infer_schema(inf), NULL));
  m2d_infer_destroy(inf);
  m2d_optimize_options_t o = {0};
  m2d_optimize_summary_t s;
  m2d_error_t err = {0};
  CHECK(!m2d_optimize_with_writer(w, &o, &s, &err));
  m2d_optimize_summary_free(&s);
  m2d_table_writer_abort(w);

  CHECK(m2d_optimize_with_writer(w, &o, &s, &err));
  CHECK(s.version == 3 && m2d_table_writer_version(w) == 3);
  CHECK(s.files_removed == 6 && s.files_added == 2 && s.rows == 30 && s.partitions == 2 && s.dvs_folded == 0);
  CHECK(json_array_size(s.removed_paths) == 6 && json_array_size(s.added) == 2);
  /* the adds are the inner objects, as a snapshot's files are, with dataChange false */
  json_t *a = json_array_get(s.added, 0);
  CHECK(json_is_string(json_object_get(a, "path")) && json_is_false(json_object_get(a, "dataChange")));
  CHECK(strncmp(json_string_value(json_array_get(s.removed_paths, 0)), "k=", 2) == 0);
  m2d_optimize_summary_free(&s);

  /* the writer's next batch lands on the next version; the snapshot has the compacted files */
  CHECK(write_batch(w, 100, 4, &v) && v == 4);
  delta_snapshot_t snap;
  CHECK(delta_snapshot_load(m2d_table_writer_store(w), -1, &snap, NULL));
  CHECK(json_array_size(snap.files) == 4);
  CHECK(json_array_size(snap.tombstones) == 6);
  delta_snapshot_free(&snap);

  /* a second run finds two lone compacted files plus two new small ones: one bin per partition */
  CHECK(m2d_optimize_with_writer(w, &o, &s, &err));
  CHECK(s.files_removed == 4 && s.files_added == 2 && s.version == 5);
  m2d_optimize_summary_free(&s);
  o.dry_run = true;
  CHECK(m2d_optimize_with_writer(w, &o, &s, &err));
  CHECK(s.files_removed == 0 && s.version == 5);
  m2d_optimize_summary_free(&s);

  m2d_table_writer_destroy(w);
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  CHECK(system(cmd) == 0);
}
