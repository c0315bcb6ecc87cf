/* A source's position: where a run resumes. The loop and the tables keep it as the source gave
 * it, without looking inside; only a source of the same kind reads it back. A change stream's is
 * its resume token (or cluster time) — mongo/change_stream; a set of Kafka partition offsets
 * would be another kind. */
#ifndef M2D_CORE_POSITION_H
#define M2D_CORE_POSITION_H

#include "core/error.h"

#include <stdbool.h>

typedef struct {
  const char *source; /* the source's kind (a static string), NULL: no position */
  char *json;         /* the source's value, a JSON object (owned), NULL: no position */
} m2d_position_t;

/* Sets p to (source, a copy of json); p's old value is freed. */
bool m2d_position_set(m2d_position_t *p, const char *source, const char *json, m2d_error_t *err);
bool m2d_position_copy(m2d_position_t *dst, const m2d_position_t *src, m2d_error_t *err);
void m2d_position_clear(m2d_position_t *p); /* back to no position */

#endif
