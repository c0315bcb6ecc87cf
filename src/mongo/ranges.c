#include "mongo/ranges.h"

#include "core/log.h"
#include "mongo/client.h"

#include <stdlib.h>
#include <string.h>

/* The brackets we cut inside, with their $type alias. */
typedef enum { BR_NUMBER, BR_STRING, BR_OID, BR_DATE, BR_OTHER } bracket_t;
static const char *bracket_alias[] = {"number", "string", "objectId", "date"};

#define SCAN_PLAN_MAX_DOCS 5000000

static bracket_t bracket_of(bson_type_t t) {
  switch (t) {
  case BSON_TYPE_INT32: case BSON_TYPE_INT64: case BSON_TYPE_DOUBLE: case BSON_TYPE_DECIMAL128: return BR_NUMBER;
  case BSON_TYPE_UTF8: case BSON_TYPE_SYMBOL: return BR_STRING;
  case BSON_TYPE_OID: return BR_OID;
  case BSON_TYPE_DATE_TIME: return BR_DATE;
  default: return BR_OTHER;
  }
}

typedef struct {
  bson_value_t v;
} sample_t;

static double number_of(const bson_value_t *v) {
  switch (v->value_type) {
  case BSON_TYPE_INT32: return v->value.v_int32;
  case BSON_TYPE_INT64: return (double)v->value.v_int64;
  case BSON_TYPE_DOUBLE: return v->value.v_double;
  default: return 0; /* decimals are rare as _id; they sort as 0 here, which only skews a boundary */
  }
}

/* Order within one bracket, as the server sorts (simple collation). */
static int cmp_values(const void *a, const void *b) {
  const bson_value_t *x = &((const sample_t *)a)->v, *y = &((const sample_t *)b)->v;
  switch (bracket_of(x->value_type)) {
  case BR_NUMBER: {
    double p = number_of(x), q = number_of(y);
    return p < q ? -1 : p > q;
  }
  case BR_STRING: {
    uint32_t n = x->value.v_utf8.len < y->value.v_utf8.len ? x->value.v_utf8.len : y->value.v_utf8.len;
    int c = memcmp(x->value.v_utf8.str, y->value.v_utf8.str, n);
    return c ? c : (x->value.v_utf8.len > y->value.v_utf8.len) - (x->value.v_utf8.len < y->value.v_utf8.len);
  }
  case BR_OID: return bson_oid_compare(&x->value.v_oid, &y->value.v_oid);
  case BR_DATE: return x->value.v_datetime < y->value.v_datetime ? -1 : x->value.v_datetime > y->value.v_datetime;
  default: return 0;
  }
}

static bson_t *range_filter(const bson_t *base, const bson_value_t *lo, const bson_value_t *hi) {
  bson_t *f = bson_new();
  bson_t and, clause, id;
  if (base && !bson_empty(base)) {
    BSON_APPEND_ARRAY_BEGIN(f, "$and", &and);
    BSON_APPEND_DOCUMENT(&and, "0", base);
    BSON_APPEND_DOCUMENT_BEGIN(&and, "1", &clause);
  }
  bson_t *target = base && !bson_empty(base) ? &clause : f;
  BSON_APPEND_DOCUMENT_BEGIN(target, "_id", &id);
  if (lo) BSON_APPEND_VALUE(&id, "$gte", lo);
  if (hi) BSON_APPEND_VALUE(&id, "$lt", hi);
  bson_append_document_end(target, &id);
  if (base && !bson_empty(base)) {
    bson_append_document_end(&and, &clause);
    bson_append_array_end(f, &and);
  }
  return f;
}

static bson_t *other_filter(const bson_t *base, bracket_t br) {
  bson_t *f = bson_new();
  bson_t and, clause;
  bool wrap = base && !bson_empty(base);
  if (wrap) {
    BSON_APPEND_ARRAY_BEGIN(f, "$and", &and);
    BSON_APPEND_DOCUMENT(&and, "0", base);
    BSON_APPEND_DOCUMENT_BEGIN(&and, "1", &clause);
  }
  bson_t *target = wrap ? &clause : f;
  bson_t id, not;
  BSON_APPEND_DOCUMENT_BEGIN(target, "_id", &id);
  BSON_APPEND_DOCUMENT_BEGIN(&id, "$not", &not);
  BSON_APPEND_UTF8(&not, "$type", bracket_alias[br]);
  bson_append_document_end(&id, &not);
  bson_append_document_end(target, &id);
  if (wrap) {
    bson_append_document_end(&and, &clause);
    bson_append_array_end(f, &and);
  }
  return f;
}

static bool plan_push(m2d_range_plan_t *plan, bson_t *filter) {
  bson_t **f = realloc(plan->filters, (size_t)(plan->count + 1) * sizeof *f);
  if (!f) {
    bson_destroy(filter);
    return false;
  }
  plan->filters = f;
  f[plan->count++] = filter;
  return true;
}

bool m2d_ranges_plan(mongoc_collection_t *coll, int target, const bson_t *base_filter, m2d_range_plan_t *plan,
                     m2d_error_t *err) {
  memset(plan, 0, sizeof *plan);
  bool ok = false;
  sample_t *samples = NULL;
  int nsamples = 0;
  mongoc_cursor_t *cursor = NULL;
  bson_t *pipeline = NULL;
  bson_error_t e;

  int64_t count = mongoc_collection_estimated_document_count(coll, NULL, NULL, NULL, &e);
  if (count < 0) {
    m2d_mongo_error(err, &e, "cannot count the collection's documents");
    goto done;
  }
  int want = target;
  if (want > count / 1000) want = (int)(count / 1000);
  if (want <= 1) {
    ok = plan_push(plan, bson_copy(base_filter ? base_filter : &(bson_t)BSON_INITIALIZER));
    goto done;
  }
  /* about 50 samples per range keeps boundaries within a few percent of even */
  int size = want * 50;
  pipeline = BCON_NEW("pipeline", "[", "{", "$sample", "{", "size", BCON_INT32(size), "}", "}", "{", "$project", "{",
                      "_id", BCON_INT32(1), "}", "}", "]");
  /* Up to a few million documents, a scan of _id alone costs little next to the snapshot and
   * gives evenly spaced boundaries; $sample is not uniform everywhere (mongo-java-server's
   * favours the start of the collection). */
  bool scan = count <= SCAN_PLAN_MAX_DOCS;
  cursor = scan ? NULL : mongoc_collection_aggregate(coll, MONGOC_QUERY_NONE, pipeline, NULL, NULL);
  samples = calloc((size_t)size, sizeof *samples);
  if (!samples) {
    m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory");
    goto done;
  }
  int per_bracket[BR_OTHER + 1] = {0};
  const bson_t *doc;
  while (cursor && nsamples < size && mongoc_cursor_next(cursor, &doc)) {
    bson_iter_t it;
    if (!bson_iter_init_find(&it, doc, "_id")) continue;
    bson_value_copy(bson_iter_value(&it), &samples[nsamples].v);
    per_bracket[bracket_of(samples[nsamples].v.value_type)]++;
    nsamples++;
  }
  if (scan || mongoc_cursor_error(cursor, &e)) {
    /* no (working) $sample: a systematic sample instead, every step-th _id of a scan of the
     * _id index (mongo-java-server's $sample fails now and then on large collections) */
    if (!scan) m2d_debug("$sample failed (%s); sampling by a scan of _id", e.message);
    for (int i = 0; i < nsamples; i++) bson_value_destroy(&samples[i].v);
    nsamples = 0;
    memset(per_bracket, 0, sizeof per_bracket);
    if (cursor) mongoc_cursor_destroy(cursor);
    bson_t *proj = BCON_NEW("projection", "{", "_id", BCON_INT32(1), "}");
    cursor = mongoc_collection_find_with_opts(coll, &(bson_t)BSON_INITIALIZER, proj, NULL);
    bson_destroy(proj);
    int64_t step = count / size > 1 ? count / size : 1, seen = 0;
    while (nsamples < size && mongoc_cursor_next(cursor, &doc)) {
      bson_iter_t it;
      if (seen++ % step != 0 || !bson_iter_init_find(&it, doc, "_id")) continue;
      bson_value_copy(bson_iter_value(&it), &samples[nsamples].v);
      per_bracket[bracket_of(samples[nsamples].v.value_type)]++;
      nsamples++;
    }
    if (mongoc_cursor_error(cursor, &e)) {
      m2d_mongo_error(err, &e, "cannot read _id values to plan ranges");
      goto done;
    }
  }
  bracket_t br = BR_NUMBER;
  for (int b = BR_NUMBER; b < BR_OTHER; b++)
    if (per_bracket[b] > per_bracket[br]) br = (bracket_t)b;
  int in = per_bracket[br];
  if (in < want * 2) { /* too few _ids of one cuttable type: one range is as good */
    ok = plan_push(plan, bson_copy(base_filter ? base_filter : &(bson_t)BSON_INITIALIZER));
    goto done;
  }
  /* keep the chosen bracket's samples, sorted, and take every (in/want)-th as a boundary */
  int k = 0;
  for (int i = 0; i < nsamples; i++)
    if (bracket_of(samples[i].v.value_type) == br) {
      sample_t tmp = samples[k];
      samples[k] = samples[i];
      samples[i] = tmp;
      k++;
    }
  qsort(samples, (size_t)in, sizeof *samples, cmp_values);
  const bson_value_t *lo = NULL;
  for (int r = 1; r < want; r++) {
    const bson_value_t *b = &samples[(int64_t)r * in / want].v;
    if (lo && cmp_values(lo, b) == 0) continue; /* duplicate boundary */
    if (!plan_push(plan, range_filter(base_filter, lo, b))) goto oom;
    lo = b;
  }
  if (!plan_push(plan, range_filter(base_filter, lo, NULL))) goto oom;
  if (!plan_push(plan, other_filter(base_filter, br))) goto oom;
  ok = true;
  goto done;
oom:
  m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory planning ranges");
done:
  for (int i = 0; i < nsamples; i++) bson_value_destroy(&samples[i].v);
  free(samples);
  mongoc_cursor_destroy(cursor);
  bson_destroy(pipeline);
  if (!ok) m2d_ranges_free(plan);
  return ok;
}

char *m2d_ranges_to_json(const m2d_range_plan_t *plan) {
  bson_t arr = BSON_INITIALIZER;
  for (int i = 0; i < plan->count; i++) {
    char key[16];
    const char *k;
    bson_uint32_to_string((uint32_t)i, &k, key, sizeof key);
    bson_append_document(&arr, k, -1, plan->filters[i]);
  }
  bson_t wrap = BSON_INITIALIZER;
  bson_append_array(&wrap, "ranges", -1, &arr);
  char *json = bson_as_canonical_extended_json(&wrap, NULL);
  bson_destroy(&arr);
  bson_destroy(&wrap);
  return json;
}

bool m2d_ranges_from_json(const char *json, m2d_range_plan_t *plan, m2d_error_t *err) {
  memset(plan, 0, sizeof *plan);
  bson_error_t e;
  bson_t *wrap = bson_new_from_json((const uint8_t *)json, -1, &e);
  bson_iter_t it, child;
  if (!wrap || !bson_iter_init_find(&it, wrap, "ranges") || !BSON_ITER_HOLDS_ARRAY(&it) ||
      !bson_iter_recurse(&it, &child)) {
    if (wrap) bson_destroy(wrap);
    return m2d_error_set(err, M2D_ERR_FORMAT, 0, "the snapshot's saved range plan is unreadable: rerun with --restart");
  }
  while (bson_iter_next(&child)) {
    uint32_t len;
    const uint8_t *data;
    if (!BSON_ITER_HOLDS_DOCUMENT(&child)) continue;
    bson_iter_document(&child, &len, &data);
    if (!plan_push(plan, bson_new_from_data(data, len))) {
      bson_destroy(wrap);
      m2d_ranges_free(plan);
      return m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory");
    }
  }
  bson_destroy(wrap);
  return true;
}

void m2d_ranges_free(m2d_range_plan_t *plan) {
  for (int i = 0; i < plan->count; i++) bson_destroy(plan->filters[i]);
  free(plan->filters);
  memset(plan, 0, sizeof *plan);
}
