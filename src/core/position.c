#include "core/position.h"

#include <stdlib.h>
#include <string.h>

bool m2d_position_set(m2d_position_t *p, const char *source, const char *json, m2d_error_t *err) {
  char *copy = json ? strdup(json) : NULL;
  if (json && !copy) return m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory (a stream position)");
  free(p->json);
  p->source = json ? source : NULL;
  p->json = copy;
  return true;
}

bool m2d_position_copy(m2d_position_t *dst, const m2d_position_t *src, m2d_error_t *err) {
  if (dst == src) return true;
  return m2d_position_set(dst, src->source, src->json, err);
}

void m2d_position_clear(m2d_position_t *p) {
  free(p->json);
  p->json = NULL;
  p->source = NULL;
}
