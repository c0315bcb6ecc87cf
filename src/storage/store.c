#include "storage/store.h"

#include <stdlib.h>
#include <string.h>

m2d_store_t *m2d_store_open(const char *url, m2d_error_t *err) {
  if (strncmp(url, "s3://", 5) == 0)
    return m2d_error_set(err, M2D_ERR_USAGE, 0, "%s: S3 tables are not supported yet; use a local path", url), NULL;
  if (strncmp(url, "file://", 7) == 0) url += 7;
  if (strstr(url, "://"))
    return m2d_error_set(err, M2D_ERR_USAGE, 0, "%s: unknown table location; use a local path", url), NULL;
  m2d_store_t *s = m2d_store_local_new(url, err);
  const char *fault = getenv("MONGO2DELTA_FAULT");
  return s && fault && *fault ? m2d_store_fault_new(s, fault, err) : s;
}

void m2d_store_destroy(m2d_store_t *s) {
  if (s) s->destroy(s);
}

void m2d_store_entries_free(m2d_store_entry_t *e, size_t n) {
  for (size_t i = 0; i < n; i++) free(e[i].name);
  free(e);
}
