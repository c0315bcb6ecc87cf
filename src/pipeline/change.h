/* One change event of a collection's change stream, as sync hands it to the tables. */
#ifndef M2D_PIPELINE_CHANGE_H
#define M2D_PIPELINE_CHANGE_H

#include <bson/bson.h>
#include <stdint.h>

typedef struct {
  char op[16];          /* insert, update, replace or delete */
  bson_t *id;           /* {"_id": value} from documentKey, or NULL */
  bson_t *doc;          /* fullDocument (looked up for updates), or NULL */
  uint32_t ct_t, ct_i;  /* cluster time */
  char token[1024];     /* resume token (canonical Extended JSON), "" when unknown */
  int64_t seq;          /* sequence number in the stream, from 1 */
} m2d_change_t;

#endif
