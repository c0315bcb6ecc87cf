#include "parquet/metadata_read.h"

#include "parquet/thrift_read.h"
#include "parquet/thrift_write.h"

#include <stdlib.h>
#include <string.h>

typedef struct chunk {
  struct chunk *next;
} chunk_t;

struct pq_footer {
  pq_file_metadata_t md;
  uint8_t *raw;
  chunk_t *mem;
};

static void *alloc(pq_footer_t *f, tr_t *r, size_t n) {
  chunk_t *c = calloc(1, sizeof *c + (n ? n : 1));
  if (!c) {
    tr_fail(r, "out of memory");
    return NULL;
  }
  c->next = f->mem;
  f->mem = c;
  return c + 1;
}

static const char *string(pq_footer_t *f, tr_t *r) {
  uint32_t len;
  const uint8_t *p = tr_binary(r, &len);
  char *s = alloc(f, r, (size_t)len + 1);
  if (!s) return "";
  memcpy(s, p, len);
  s[len] = '\0';
  return s;
}

static pq_bytes_t bytes(tr_t *r) {
  pq_bytes_t b;
  b.data = tr_binary(r, &b.len);
  return b;
}

static void statistics(tr_t *r, pq_statistics_t *s) {
  if (!tr_struct_begin(r)) return;
  int16_t id;
  uint8_t t;
  while (tr_field(r, &id, &t)) {
    if (id == 1 && t == TC_BINARY) s->max = bytes(r), s->has_max = true;
    else if (id == 2 && t == TC_BINARY) s->min = bytes(r), s->has_min = true;
    else if (id == 3 && t == TC_I64) s->null_count = tr_i64(r), s->has_null_count = true;
    else if (id == 4 && t == TC_I64) s->distinct_count = tr_i64(r), s->has_distinct_count = true;
    else if (id == 5 && t == TC_BINARY) s->max_value = bytes(r), s->has_max_value = true;
    else if (id == 6 && t == TC_BINARY) s->min_value = bytes(r), s->has_min_value = true;
    else if (id == 7 && (t == TC_BOOL_TRUE || t == TC_BOOL_FALSE))
      s->has_is_max_value_exact = true, s->is_max_value_exact = tr_bool_from_type(t);
    else if (id == 8 && (t == TC_BOOL_TRUE || t == TC_BOOL_FALSE))
      s->has_is_min_value_exact = true, s->is_min_value_exact = tr_bool_from_type(t);
    else tr_skip(r, t);
  }
  tr_struct_end(r);
}

/* A union whose only member is the empty struct or a struct we read: returns the member id. */
static int16_t union_member(tr_t *r, void (*member)(tr_t *, int16_t, void *), void *ud) {
  int16_t found = 0;
  if (!tr_struct_begin(r)) return 0;
  int16_t id;
  uint8_t t;
  while (tr_field(r, &id, &t)) {
    if (t == TC_STRUCT && !found) {
      found = id;
      if (member) member(r, id, ud);
      else tr_skip(r, t);
    } else {
      tr_skip(r, t);
    }
  }
  tr_struct_end(r);
  return found;
}

static void logical_member(tr_t *r, int16_t id, void *ud) {
  pq_logical_type_t *lt = ud;
  if (!tr_struct_begin(r)) return;
  int16_t f;
  uint8_t t;
  while (tr_field(r, &f, &t)) {
    if (id == PQ_LT_DECIMAL && f == 1 && t == TC_I32) lt->scale = tr_i32(r);
    else if (id == PQ_LT_DECIMAL && f == 2 && t == TC_I32) lt->precision = tr_i32(r);
    else if ((id == PQ_LT_TIME || id == PQ_LT_TIMESTAMP) && f == 1 && (t == TC_BOOL_TRUE || t == TC_BOOL_FALSE))
      lt->is_adjusted_to_utc = tr_bool_from_type(t);
    else if ((id == PQ_LT_TIME || id == PQ_LT_TIMESTAMP) && f == 2 && t == TC_STRUCT)
      lt->unit = (pq_time_unit_t)union_member(r, NULL, NULL);
    else if (id == PQ_LT_INTEGER && f == 1 && t == TC_BYTE) lt->bit_width = tr_byte(r);
    else if (id == PQ_LT_INTEGER && f == 2 && (t == TC_BOOL_TRUE || t == TC_BOOL_FALSE)) lt->is_signed = tr_bool_from_type(t);
    else tr_skip(r, t);
  }
  tr_struct_end(r);
}

static void schema_element(pq_footer_t *f, tr_t *r, pq_schema_element_t *e) {
  if (!tr_struct_begin(r)) return;
  int16_t id;
  uint8_t t;
  bool named = false;
  while (tr_field(r, &id, &t)) {
    switch (id) {
    case 1: if (t == TC_I32) { e->has_type = true; e->type = (pq_type_t)tr_i32(r); continue; } break;
    case 2: if (t == TC_I32) { e->has_type_length = true; e->type_length = tr_i32(r); continue; } break;
    case 3: if (t == TC_I32) { e->has_repetition = true; e->repetition = (pq_repetition_t)tr_i32(r); continue; } break;
    case 4: if (t == TC_BINARY) { e->name = string(f, r); named = true; continue; } break;
    case 5: if (t == TC_I32) { e->has_num_children = true; e->num_children = tr_i32(r); continue; } break;
    case 6: if (t == TC_I32) { e->has_converted_type = true; e->converted_type = (pq_converted_t)tr_i32(r); continue; } break;
    case 7: if (t == TC_I32) { e->has_scale = true; e->scale = tr_i32(r); continue; } break;
    case 8: if (t == TC_I32) { e->has_precision = true; e->precision = tr_i32(r); continue; } break;
    case 9: if (t == TC_I32) { e->has_field_id = true; e->field_id = tr_i32(r); continue; } break;
    case 10:
      if (t == TC_STRUCT) {
        e->logical_type.kind = (pq_logical_kind_t)union_member(r, logical_member, &e->logical_type);
        continue;
      }
      break;
    }
    tr_skip(r, t);
  }
  tr_struct_end(r);
  if (!named) tr_fail(r, "a schema element has no name");
  if (e->has_type && (e->type < PQ_BOOLEAN || e->type > PQ_FIXED_LEN_BYTE_ARRAY)) tr_fail(r, "unknown physical type");
  if (e->has_repetition && (e->repetition < PQ_REQUIRED || e->repetition > PQ_REPEATED)) tr_fail(r, "unknown repetition");
  if (e->has_num_children && e->num_children < 0) tr_fail(r, "negative number of children");
}

static void key_values(pq_footer_t *f, tr_t *r, pq_key_value_t **out, int32_t *n) {
  uint8_t et;
  uint32_t count;
  if (!tr_list(r, &et, &count)) return;
  pq_key_value_t *kv = alloc(f, r, count * sizeof *kv);
  if (!kv) return;
  for (uint32_t i = 0; i < count && !r->failed; i++) {
    if (et != TC_STRUCT) {
      tr_skip(r, et);
      continue;
    }
    if (!tr_struct_begin(r)) return;
    int16_t id;
    uint8_t t;
    kv[i].key = "";
    while (tr_field(r, &id, &t)) {
      if (id == 1 && t == TC_BINARY) kv[i].key = string(f, r);
      else if (id == 2 && t == TC_BINARY) kv[i].value = string(f, r);
      else tr_skip(r, t);
    }
    tr_struct_end(r);
  }
  *out = kv;
  *n = (int32_t)count;
}

static void column_metadata(pq_footer_t *f, tr_t *r, pq_column_metadata_t *m) {
  if (!tr_struct_begin(r)) return;
  int16_t id;
  uint8_t t;
  while (tr_field(r, &id, &t)) {
    if (id == 1 && t == TC_I32) m->type = (pq_type_t)tr_i32(r);
    else if (id == 2 && t == TC_LIST) {
      uint8_t et;
      uint32_t n;
      if (!tr_list(r, &et, &n)) break;
      m->encodings = alloc(f, r, n * sizeof *m->encodings);
      if (!m->encodings) break;
      for (uint32_t i = 0; i < n; i++) m->encodings[i] = (pq_encoding_t)tr_i32(r);
      m->num_encodings = (int32_t)n;
    } else if (id == 3 && t == TC_LIST) {
      uint8_t et;
      uint32_t n;
      if (!tr_list(r, &et, &n)) break;
      m->path_in_schema = alloc(f, r, n * sizeof *m->path_in_schema);
      if (!m->path_in_schema) break;
      for (uint32_t i = 0; i < n; i++) m->path_in_schema[i] = string(f, r);
      m->path_len = (int32_t)n;
    } else if (id == 4 && t == TC_I32) m->codec = (pq_codec_t)tr_i32(r);
    else if (id == 5 && t == TC_I64) m->num_values = tr_i64(r);
    else if (id == 6 && t == TC_I64) m->total_uncompressed_size = tr_i64(r);
    else if (id == 7 && t == TC_I64) m->total_compressed_size = tr_i64(r);
    else if (id == 8 && t == TC_LIST) key_values(f, r, &m->key_value_metadata, &m->num_key_value_metadata);
    else if (id == 9 && t == TC_I64) m->data_page_offset = tr_i64(r);
    else if (id == 10 && t == TC_I64) m->has_index_page_offset = true, m->index_page_offset = tr_i64(r);
    else if (id == 11 && t == TC_I64) m->has_dictionary_page_offset = true, m->dictionary_page_offset = tr_i64(r);
    else if (id == 12 && t == TC_STRUCT) m->has_statistics = true, statistics(r, &m->statistics);
    else tr_skip(r, t);
  }
  tr_struct_end(r);
}

static void row_group(pq_footer_t *f, tr_t *r, pq_row_group_t *rg) {
  if (!tr_struct_begin(r)) return;
  int16_t id;
  uint8_t t;
  while (tr_field(r, &id, &t)) {
    if (id == 1 && t == TC_LIST) {
      uint8_t et;
      uint32_t n;
      if (!tr_list(r, &et, &n)) break;
      rg->columns = alloc(f, r, n * sizeof *rg->columns);
      if (!rg->columns) break;
      rg->num_columns = (int32_t)n;
      for (uint32_t i = 0; i < n && !r->failed; i++) {
        if (et != TC_STRUCT) {
          tr_fail(r, "row group columns are not structs");
          break;
        }
        pq_column_chunk_t *cc = &rg->columns[i];
        if (!tr_struct_begin(r)) break;
        int16_t cid;
        uint8_t ct;
        while (tr_field(r, &cid, &ct)) {
          if (cid == 1 && ct == TC_BINARY) cc->file_path = string(f, r);
          else if (cid == 2 && ct == TC_I64) cc->file_offset = tr_i64(r);
          else if (cid == 3 && ct == TC_STRUCT) cc->has_meta_data = true, column_metadata(f, r, &cc->meta_data);
          else tr_skip(r, ct);
        }
        tr_struct_end(r);
      }
    } else if (id == 2 && t == TC_I64) rg->total_byte_size = tr_i64(r);
    else if (id == 3 && t == TC_I64) rg->num_rows = tr_i64(r);
    else if (id == 5 && t == TC_I64) rg->has_file_offset = true, rg->file_offset = tr_i64(r);
    else if (id == 6 && t == TC_I64) rg->has_total_compressed_size = true, rg->total_compressed_size = tr_i64(r);
    else if (id == 7 && t == TC_I16) rg->has_ordinal = true, rg->ordinal = (int16_t)tr_i64(r);
    else tr_skip(r, t);
  }
  tr_struct_end(r);
}

pq_footer_t *pq_footer_decode(const uint8_t *in, size_t n, m2d_error_t *err) {
  pq_footer_t *f = calloc(1, sizeof *f);
  if (!f || !(f->raw = malloc(n ? n : 1))) {
    free(f);
    return m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory reading the footer"), NULL;
  }
  memcpy(f->raw, in, n);
  tr_t r;
  tr_init(&r, f->raw, n);
  pq_file_metadata_t *md = &f->md;
  int16_t id;
  uint8_t t;
  while (tr_field(&r, &id, &t)) {
    if (id == 1 && t == TC_I32) md->version = tr_i32(&r);
    else if (id == 2 && t == TC_LIST) {
      uint8_t et;
      uint32_t cnt;
      if (!tr_list(&r, &et, &cnt)) break;
      if (et != TC_STRUCT) {
        tr_fail(&r, "schema is not a list of structs");
        break;
      }
      md->schema = alloc(f, &r, cnt * sizeof *md->schema);
      if (!md->schema) break;
      md->num_schema = (int32_t)cnt;
      for (uint32_t i = 0; i < cnt && !r.failed; i++) schema_element(f, &r, &md->schema[i]);
    } else if (id == 3 && t == TC_I64) md->num_rows = tr_i64(&r);
    else if (id == 4 && t == TC_LIST) {
      uint8_t et;
      uint32_t cnt;
      if (!tr_list(&r, &et, &cnt)) break;
      if (et != TC_STRUCT) {
        tr_fail(&r, "row groups are not structs");
        break;
      }
      md->row_groups = alloc(f, &r, cnt * sizeof *md->row_groups);
      if (!md->row_groups) break;
      md->num_row_groups = (int32_t)cnt;
      for (uint32_t i = 0; i < cnt && !r.failed; i++) row_group(f, &r, &md->row_groups[i]);
    } else if (id == 5 && t == TC_LIST) key_values(f, &r, &md->key_value_metadata, &md->num_key_value_metadata);
    else if (id == 6 && t == TC_BINARY) md->created_by = string(f, &r);
    else if (id == 7 && t == TC_LIST) {
      uint8_t et;
      uint32_t cnt;
      if (!tr_list(&r, &et, &cnt)) break;
      md->has_column_orders = true;
      md->num_column_orders = (int32_t)cnt;
      for (uint32_t i = 0; i < cnt && !r.failed; i++) tr_skip(&r, et);
    } else if (id == 8 || id == 9) {
      tr_fail(&r, "the file is encrypted (encryption_algorithm in the footer); encrypted Parquet is not supported");
    } else tr_skip(&r, t);
  }
  if (!r.failed && md->num_schema == 0) tr_fail(&r, "the footer has no schema");
  if (r.failed) {
    m2d_error_set(err, M2D_ERR_FORMAT, 0, "corrupt footer: %s", r.what);
    pq_footer_free(f);
    return NULL;
  }
  return f;
}

const pq_file_metadata_t *pq_footer_metadata(const pq_footer_t *f) { return &f->md; }

void pq_footer_free(pq_footer_t *f) {
  if (!f) return;
  while (f->mem) {
    chunk_t *n = f->mem->next;
    free(f->mem);
    f->mem = n;
  }
  free(f->raw);
  free(f);
}

bool pq_page_header_decode(const uint8_t *bytes, size_t n, pq_page_header_t *ph, size_t *used, m2d_error_t *err) {
  memset(ph, 0, sizeof *ph);
  tr_t r;
  tr_init(&r, bytes, n);
  int16_t id;
  uint8_t t;
  bool have_type = false, have_sizes = false;
  while (tr_field(&r, &id, &t)) {
    if (id == 1 && t == TC_I32) ph->type = (pq_page_type_t)tr_i32(&r), have_type = true;
    else if (id == 2 && t == TC_I32) ph->uncompressed_page_size = tr_i32(&r);
    else if (id == 3 && t == TC_I32) ph->compressed_page_size = tr_i32(&r), have_sizes = true;
    else if (id == 4 && t == TC_I32) ph->has_crc = true, ph->crc = tr_i32(&r);
    else if (id == 5 && t == TC_STRUCT) {
      pq_data_page_header_t *d = &ph->data_page_header;
      ph->has_data_page_header = true;
      if (!tr_struct_begin(&r)) break;
      int16_t f;
      uint8_t ft;
      while (tr_field(&r, &f, &ft)) {
        if (f == 1 && ft == TC_I32) d->num_values = tr_i32(&r);
        else if (f == 2 && ft == TC_I32) d->encoding = (pq_encoding_t)tr_i32(&r);
        else if (f == 3 && ft == TC_I32) d->definition_level_encoding = (pq_encoding_t)tr_i32(&r);
        else if (f == 4 && ft == TC_I32) d->repetition_level_encoding = (pq_encoding_t)tr_i32(&r);
        else if (f == 5 && ft == TC_STRUCT) d->has_statistics = true, statistics(&r, &d->statistics);
        else tr_skip(&r, ft);
      }
      tr_struct_end(&r);
    } else if (id == 7 && t == TC_STRUCT) {
      pq_dictionary_page_header_t *d = &ph->dictionary_page_header;
      ph->has_dictionary_page_header = true;
      if (!tr_struct_begin(&r)) break;
      int16_t f;
      uint8_t ft;
      while (tr_field(&r, &f, &ft)) {
        if (f == 1 && ft == TC_I32) d->num_values = tr_i32(&r);
        else if (f == 2 && ft == TC_I32) d->encoding = (pq_encoding_t)tr_i32(&r);
        else if (f == 3 && (ft == TC_BOOL_TRUE || ft == TC_BOOL_FALSE)) d->has_is_sorted = true, d->is_sorted = tr_bool_from_type(ft);
        else tr_skip(&r, ft);
      }
      tr_struct_end(&r);
    } else if (id == 8 && t == TC_STRUCT) {
      pq_data_page_header_v2_t *d = &ph->data_page_header_v2;
      ph->has_data_page_header_v2 = true;
      d->is_compressed = true;
      if (!tr_struct_begin(&r)) break;
      int16_t f;
      uint8_t ft;
      while (tr_field(&r, &f, &ft)) {
        if (f == 1 && ft == TC_I32) d->num_values = tr_i32(&r);
        else if (f == 2 && ft == TC_I32) d->num_nulls = tr_i32(&r);
        else if (f == 3 && ft == TC_I32) d->num_rows = tr_i32(&r);
        else if (f == 4 && ft == TC_I32) d->encoding = (pq_encoding_t)tr_i32(&r);
        else if (f == 5 && ft == TC_I32) d->definition_levels_byte_length = tr_i32(&r);
        else if (f == 6 && ft == TC_I32) d->repetition_levels_byte_length = tr_i32(&r);
        else if (f == 7 && (ft == TC_BOOL_TRUE || ft == TC_BOOL_FALSE)) d->is_compressed = tr_bool_from_type(ft);
        else if (f == 8 && ft == TC_STRUCT) d->has_statistics = true, statistics(&r, &d->statistics);
        else tr_skip(&r, ft);
      }
      tr_struct_end(&r);
    } else tr_skip(&r, t);
  }
  if (!r.failed && (!have_type || !have_sizes)) tr_fail(&r, "page header without type or sizes");
  if (!r.failed && (ph->compressed_page_size < 0 || ph->uncompressed_page_size < 0)) tr_fail(&r, "negative page size");
  if (r.failed) return m2d_error_set(err, M2D_ERR_FORMAT, 0, "corrupt page header: %s", r.what);
  *used = (size_t)(r.p - bytes);
  return true;
}
