/* Splitting a collection into _id ranges that workers read in parallel (snapshot).
 *
 * MongoDB compares values of different types by "type bracketing": {_id: {$gte: 5}} never
 * matches a string. So the ranges are cut inside one bracket (numbers, strings, ObjectIds or
 * dates: the one most of a random sample of _ids falls in), and one more range takes every
 * _id outside that bracket ({_id: {$not: {$type: ...}}}). Every document is in exactly one
 * range, whatever mix of _id types the collection has.
 *
 * Boundaries come from $sample (present on MongoDB and mongo-java-server); $bucketAuto and
 * splitVector are not needed. The plan is serialized (canonical Extended JSON) so that a
 * resumed snapshot reads the very same ranges. */
#ifndef M2D_MONGO_RANGES_H
#define M2D_MONGO_RANGES_H

#include "core/error.h"

#include <bson/bson.h>
#include <mongoc/mongoc.h>

typedef struct {
  int count;      /* number of ranges */
  bson_t **filters; /* filter of range i: {_id: {...}} or {} for the whole collection */
} m2d_range_plan_t;

/* Plans about `target` ranges (>= 1) for the collection (at most one per 1,000 documents, so
 * small collections get one range). base_filter (may be NULL) is ANDed into every range. */
bool m2d_ranges_plan(mongoc_collection_t *coll, int target, const bson_t *base_filter, m2d_range_plan_t *plan,
                     m2d_error_t *err);

/* Plan <-> canonical Extended JSON (an array of filters). */
char *m2d_ranges_to_json(const m2d_range_plan_t *plan);
bool m2d_ranges_from_json(const char *json, m2d_range_plan_t *plan, m2d_error_t *err);

void m2d_ranges_free(m2d_range_plan_t *plan);

#endif
