#include "parquet/metadata_write.h"

#include "parquet/thrift_write.h"

#include <string.h>

static void statistics(tw_t *w, int16_t id, const pq_statistics_t *s) {
  tw_field_struct_begin(w, id);
  if (s->has_max) tw_field_binary(w, 1, s->max.data, s->max.len);
  if (s->has_min) tw_field_binary(w, 2, s->min.data, s->min.len);
  if (s->has_null_count) tw_field_i64(w, 3, s->null_count);
  if (s->has_distinct_count) tw_field_i64(w, 4, s->distinct_count);
  if (s->has_max_value) tw_field_binary(w, 5, s->max_value.data, s->max_value.len);
  if (s->has_min_value) tw_field_binary(w, 6, s->min_value.data, s->min_value.len);
  if (s->has_is_max_value_exact) tw_field_bool(w, 7, s->is_max_value_exact);
  if (s->has_is_min_value_exact) tw_field_bool(w, 8, s->is_min_value_exact);
  tw_struct_end(w);
}

static void key_values(tw_t *w, int16_t id, const pq_key_value_t *kv, int32_t n) {
  tw_field_list(w, id, TC_STRUCT, (uint32_t)n);
  for (int32_t i = 0; i < n; i++) {
    tw_struct_begin(w);
    tw_field_string(w, 1, kv[i].key);
    if (kv[i].value) tw_field_string(w, 2, kv[i].value);
    tw_struct_end(w);
  }
}

static void empty_struct(tw_t *w, int16_t id) {
  tw_field_struct_begin(w, id);
  tw_struct_end(w);
}

static void logical_type(tw_t *w, const pq_logical_type_t *lt) {
  tw_field_struct_begin(w, 10);
  switch (lt->kind) {
  case PQ_LT_DECIMAL:
    tw_field_struct_begin(w, 5);
    tw_field_i32(w, 1, lt->scale);
    tw_field_i32(w, 2, lt->precision);
    tw_struct_end(w);
    break;
  case PQ_LT_TIME:
  case PQ_LT_TIMESTAMP:
    tw_field_struct_begin(w, (int16_t)lt->kind);
    tw_field_bool(w, 1, lt->is_adjusted_to_utc);
    tw_field_struct_begin(w, 2); /* TimeUnit union */
    empty_struct(w, (int16_t)lt->unit);
    tw_struct_end(w);
    tw_struct_end(w);
    break;
  case PQ_LT_INTEGER:
    tw_field_struct_begin(w, 10);
    tw_field_byte(w, 1, lt->bit_width);
    tw_field_bool(w, 2, lt->is_signed);
    tw_struct_end(w);
    break;
  default:
    empty_struct(w, (int16_t)lt->kind);
    break;
  }
  tw_struct_end(w);
}

static void schema_element(tw_t *w, const pq_schema_element_t *e) {
  tw_struct_begin(w);
  if (e->has_type) tw_field_i32(w, 1, e->type);
  if (e->has_type_length) tw_field_i32(w, 2, e->type_length);
  if (e->has_repetition) tw_field_i32(w, 3, e->repetition);
  tw_field_string(w, 4, e->name);
  if (e->has_num_children) tw_field_i32(w, 5, e->num_children);
  if (e->has_converted_type) tw_field_i32(w, 6, e->converted_type);
  if (e->has_scale) tw_field_i32(w, 7, e->scale);
  if (e->has_precision) tw_field_i32(w, 8, e->precision);
  if (e->has_field_id) tw_field_i32(w, 9, e->field_id);
  if (e->logical_type.kind != PQ_LT_NONE) logical_type(w, &e->logical_type);
  tw_struct_end(w);
}

static void column_metadata(tw_t *w, const pq_column_metadata_t *m) {
  tw_field_struct_begin(w, 3);
  tw_field_i32(w, 1, m->type);
  tw_field_list(w, 2, TC_I32, (uint32_t)m->num_encodings);
  for (int32_t i = 0; i < m->num_encodings; i++) tw_i32(w, m->encodings[i]);
  tw_field_list(w, 3, TC_BINARY, (uint32_t)m->path_len);
  for (int32_t i = 0; i < m->path_len; i++) tw_binary(w, m->path_in_schema[i], strlen(m->path_in_schema[i]));
  tw_field_i32(w, 4, m->codec);
  tw_field_i64(w, 5, m->num_values);
  tw_field_i64(w, 6, m->total_uncompressed_size);
  tw_field_i64(w, 7, m->total_compressed_size);
  if (m->num_key_value_metadata) key_values(w, 8, m->key_value_metadata, m->num_key_value_metadata);
  tw_field_i64(w, 9, m->data_page_offset);
  if (m->has_index_page_offset) tw_field_i64(w, 10, m->index_page_offset);
  if (m->has_dictionary_page_offset) tw_field_i64(w, 11, m->dictionary_page_offset);
  if (m->has_statistics) statistics(w, 12, &m->statistics);
  tw_struct_end(w);
}

bool pq_encode_file_metadata(const pq_file_metadata_t *md, m2d_buf_t *out, m2d_error_t *err) {
  tw_t w;
  tw_init(&w, out, err);
  tw_field_i32(&w, 1, md->version);
  tw_field_list(&w, 2, TC_STRUCT, (uint32_t)md->num_schema);
  for (int32_t i = 0; i < md->num_schema; i++) schema_element(&w, &md->schema[i]);
  tw_field_i64(&w, 3, md->num_rows);
  tw_field_list(&w, 4, TC_STRUCT, (uint32_t)md->num_row_groups);
  for (int32_t r = 0; r < md->num_row_groups; r++) {
    const pq_row_group_t *rg = &md->row_groups[r];
    tw_struct_begin(&w);
    tw_field_list(&w, 1, TC_STRUCT, (uint32_t)rg->num_columns);
    for (int32_t c = 0; c < rg->num_columns; c++) {
      const pq_column_chunk_t *cc = &rg->columns[c];
      tw_struct_begin(&w);
      if (cc->file_path) tw_field_string(&w, 1, cc->file_path);
      tw_field_i64(&w, 2, cc->file_offset);
      if (cc->has_meta_data) column_metadata(&w, &cc->meta_data);
      tw_struct_end(&w);
    }
    tw_field_i64(&w, 2, rg->total_byte_size);
    tw_field_i64(&w, 3, rg->num_rows);
    if (rg->has_file_offset) tw_field_i64(&w, 5, rg->file_offset);
    if (rg->has_total_compressed_size) tw_field_i64(&w, 6, rg->total_compressed_size);
    if (rg->has_ordinal) tw_field_i16(&w, 7, rg->ordinal);
    tw_struct_end(&w);
  }
  if (md->num_key_value_metadata) key_values(&w, 5, md->key_value_metadata, md->num_key_value_metadata);
  if (md->created_by) tw_field_string(&w, 6, md->created_by);
  if (md->has_column_orders) {
    tw_field_list(&w, 7, TC_STRUCT, (uint32_t)md->num_column_orders);
    for (int32_t i = 0; i < md->num_column_orders; i++) {
      tw_struct_begin(&w); /* ColumnOrder union */
      empty_struct(&w, 1); /* TYPE_ORDER: TypeDefinedOrder */
      tw_struct_end(&w);
    }
  }
  tw_stop(&w);
  return !w.failed;
}

bool pq_encode_page_header(const pq_page_header_t *ph, m2d_buf_t *out, m2d_error_t *err) {
  tw_t w;
  tw_init(&w, out, err);
  tw_field_i32(&w, 1, ph->type);
  tw_field_i32(&w, 2, ph->uncompressed_page_size);
  tw_field_i32(&w, 3, ph->compressed_page_size);
  if (ph->has_crc) tw_field_i32(&w, 4, ph->crc);
  if (ph->has_data_page_header) {
    const pq_data_page_header_t *d = &ph->data_page_header;
    tw_field_struct_begin(&w, 5);
    tw_field_i32(&w, 1, d->num_values);
    tw_field_i32(&w, 2, d->encoding);
    tw_field_i32(&w, 3, d->definition_level_encoding);
    tw_field_i32(&w, 4, d->repetition_level_encoding);
    if (d->has_statistics) statistics(&w, 5, &d->statistics);
    tw_struct_end(&w);
  }
  if (ph->has_dictionary_page_header) {
    const pq_dictionary_page_header_t *d = &ph->dictionary_page_header;
    tw_field_struct_begin(&w, 7);
    tw_field_i32(&w, 1, d->num_values);
    tw_field_i32(&w, 2, d->encoding);
    if (d->has_is_sorted) tw_field_bool(&w, 3, d->is_sorted);
    tw_struct_end(&w);
  }
  if (ph->has_data_page_header_v2) {
    const pq_data_page_header_v2_t *d = &ph->data_page_header_v2;
    tw_field_struct_begin(&w, 8);
    tw_field_i32(&w, 1, d->num_values);
    tw_field_i32(&w, 2, d->num_nulls);
    tw_field_i32(&w, 3, d->num_rows);
    tw_field_i32(&w, 4, d->encoding);
    tw_field_i32(&w, 5, d->definition_levels_byte_length);
    tw_field_i32(&w, 6, d->repetition_levels_byte_length);
    tw_field_bool(&w, 7, d->is_compressed);
    if (d->has_statistics) statistics(&w, 8, &d->statistics);
    tw_struct_end(&w);
  }
  tw_stop(&w);
  return !w.failed;
}
