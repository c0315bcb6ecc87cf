#include "parquet/reader.h"

#include "parquet/compress.h"
#include "parquet/decode.h"
#include "parquet/decompress.h"
#include "parquet/metadata_read.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_FOOTER ((uint64_t)256 << 20)
#define MAX_PAGE ((size_t)512 << 20)
#define MAX_PAGE_VALUES ((int64_t)1 << 26)
#define MAX_HEADER ((size_t)16 << 20)

struct pq_reader {
  m2d_source_t *src;
  pq_footer_t *footer;
  const pq_file_metadata_t *md;
  pq_schema_t schema;
  m2d_buf_t page, raw;
  bool old_parquet_mr; /* written by parquet-mr 1.2.8 or older, or an unknown version */
};

/* "parquet-mr version 1.2.8 (build ...)", or "parquet-mr" with no version. */
static bool is_old_parquet_mr(const char *created_by) {
  if (!created_by || strncmp(created_by, "parquet-mr", 10) != 0) return false;
  int a, b, c;
  if (sscanf(created_by, "parquet-mr version %d.%d.%d", &a, &b, &c) != 3) return true;
  return a < 1 || (a == 1 && (b < 2 || (b == 2 && c < 9)));
}


pq_reader_t *pq_reader_open(m2d_source_t *src, m2d_error_t *err) {
  pq_reader_t *r = calloc(1, sizeof *r);
  if (!r) return m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory"), NULL;
  r->src = src;
  m2d_buf_init(&r->page, MAX_PAGE + 64);
  m2d_buf_init(&r->raw, MAX_PAGE + 64);
  uint8_t tail[8], head[4];
  uint8_t *footer = NULL;
  if (src->size < 12) {
    m2d_error_set(err, M2D_ERR_FORMAT, 0, "%s: not a Parquet file (%llu bytes is too small)", src->name,
                  (unsigned long long)src->size);
    goto fail;
  }
  if (!m2d_source_read_at(src, 0, 4, head, err) || !m2d_source_read_at(src, src->size - 8, 8, tail, err)) goto fail;
  if (memcmp(tail + 4, "PARE", 4) == 0) {
    m2d_error_set(err, M2D_ERR_FORMAT, 0, "%s: the file is encrypted (PARE); encrypted Parquet is not supported", src->name);
    goto fail;
  }
  if (memcmp(head, "PAR1", 4) != 0 || memcmp(tail + 4, "PAR1", 4) != 0) {
    m2d_error_set(err, M2D_ERR_FORMAT, 0, "%s: not a Parquet file (no PAR1 magic at both ends; truncated?)", src->name);
    goto fail;
  }
  uint32_t flen = (uint32_t)tail[0] | (uint32_t)tail[1] << 8 | (uint32_t)tail[2] << 16 | (uint32_t)tail[3] << 24;
  if ((uint64_t)flen + 12 > src->size || flen > MAX_FOOTER) {
    m2d_error_set(err, M2D_ERR_FORMAT, 0, "%s: footer length %u is larger than the file (%llu bytes): truncated or corrupt",
                  src->name, flen, (unsigned long long)src->size);
    goto fail;
  }
  footer = malloc(flen ? flen : 1);
  if (!footer) {
    m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory");
    goto fail;
  }
  if (!m2d_source_read_at(src, src->size - 8 - flen, flen, footer, err)) goto fail;
  r->footer = pq_footer_decode(footer, flen, err);
  free(footer);
  footer = NULL;
  if (!r->footer) goto fail_named;
  r->md = pq_footer_metadata(r->footer);
  r->old_parquet_mr = is_old_parquet_mr(r->md->created_by);
  if (!pq_schema_from_elements(r->md->schema, r->md->num_schema, &r->schema, err)) goto fail_named;
  for (int g = 0; g < r->md->num_row_groups; g++) {
    const pq_row_group_t *rg = &r->md->row_groups[g];
    if (rg->num_columns != r->schema.nleaves) {
      m2d_error_set(err, M2D_ERR_FORMAT, 0, "row group %d has %d columns, the schema %d", g, rg->num_columns, r->schema.nleaves);
      goto fail_named;
    }
    if (rg->num_rows < 0) {
      m2d_error_set(err, M2D_ERR_FORMAT, 0, "row group %d has a negative row count", g);
      goto fail_named;
    }
  }
  return r;
fail_named:
  m2d_error_prefix(err, "%s: ", src->name);
fail:
  free(footer);
  pq_reader_close(r);
  return NULL;
}

void pq_reader_close(pq_reader_t *r) {
  if (!r) return;
  pq_footer_free(r->footer);
  pq_schema_free(&r->schema);
  m2d_buf_free(&r->page);
  m2d_buf_free(&r->raw);
  free(r);
}

const pq_file_metadata_t *pq_reader_metadata(const pq_reader_t *r) { return r->md; }
const pq_schema_t *pq_reader_schema(const pq_reader_t *r) { return &r->schema; }
int pq_reader_num_row_groups(const pq_reader_t *r) { return r->md->num_row_groups; }
int64_t pq_reader_row_group_rows(const pq_reader_t *r, int rg) { return r->md->row_groups[rg].num_rows; }

/* Upper bound on the uncompressed size a page can honestly have, so a lying header cannot
 * make us allocate what it claims. */
static bool plausible_size(pq_codec_t codec, size_t compressed, size_t claimed) {
  if (claimed > MAX_PAGE) return false;
  if (codec == PQ_CODEC_UNCOMPRESSED) return claimed == compressed;
  return claimed <= compressed * 4096 + 65536;
}

static bool decode_levels(const pq_node_t *leaf, pq_encoding_t enc, const uint8_t *p, size_t len, int16_t max,
                          size_t n, int16_t *out, size_t *used, bool v1, m2d_error_t *err) {
  int bw = 0;
  for (int16_t m = max; m; m >>= 1) bw++;
  (void)leaf;
  if (enc == PQ_ENC_BIT_PACKED) {
    size_t bytes = (n * (size_t)bw + 7) / 8;
    if (bytes > len) return m2d_error_set(err, M2D_ERR_FORMAT, 0, "corrupt page: levels past the page");
    *used = bytes;
    return pq_bitpacked_decode_levels(p, bytes, bw, n, out, err);
  }
  if (enc != PQ_ENC_RLE) return m2d_error_set(err, M2D_ERR_FORMAT, 0, "unsupported level encoding %s", pq_encoding_name(enc));
  size_t body = len;
  if (v1) {
    if (len < 4) return m2d_error_set(err, M2D_ERR_FORMAT, 0, "corrupt page: level length missing");
    uint32_t l;
    memcpy(&l, p, 4);
    if (l > len - 4) return m2d_error_set(err, M2D_ERR_FORMAT, 0, "corrupt page: levels (%u bytes) past the page", l);
    p += 4;
    body = l;
    *used = 4 + (size_t)l;
  } else {
    *used = len;
  }
  return pq_rle_decode_levels(p, body, bw, n, out, err);
}

static bool check_levels(const int16_t *lv, size_t n, int16_t max, const char *what, m2d_error_t *err) {
  for (size_t i = 0; i < n; i++)
    if (lv[i] < 0 || lv[i] > max)
      return m2d_error_set(err, M2D_ERR_FORMAT, 0, "corrupt page: %s level %d over the maximum %d", what, lv[i], max);
  return true;
}

/* Decodes one data page (already decompressed where needed) into out. */
static bool data_page(pq_reader_t *r, const pq_node_t *leaf, const pq_page_header_t *ph, const uint8_t *levels_v2,
                      size_t rep_len, size_t def_len, const uint8_t *body, size_t body_len, const m2d_column_t *dict,
                      m2d_column_t *out, m2d_error_t *err) {
  (void)r;
  bool v2 = ph->type == PQ_PAGE_DATA_V2;
  int64_t nvals = v2 ? ph->data_page_header_v2.num_values : ph->data_page_header.num_values;
  pq_encoding_t enc = v2 ? ph->data_page_header_v2.encoding : ph->data_page_header.encoding;
  if (nvals < 0 || nvals > MAX_PAGE_VALUES)
    return m2d_error_set(err, M2D_ERR_FORMAT, 0, "corrupt page header: %lld values", (long long)nvals);
  size_t n = (size_t)nvals;
  if (n == 0) return true; /* an empty page */
  size_t base = out->nlevels;
  /* make room for the levels; the count is bounded above */
  for (size_t i = 0; i < n; i++)
    if (!m2d_column_push_level(out, 0, 0, err)) return false;
  const uint8_t *p = body;
  size_t len = body_len, used = 0;
  if (leaf->max_rep > 0) {
    if (v2) {
      if (!decode_levels(leaf, PQ_ENC_RLE, levels_v2, rep_len, leaf->max_rep, n, out->rep + base, &used, false, err)) return false;
    } else {
      if (!decode_levels(leaf, ph->data_page_header.repetition_level_encoding, p, len, leaf->max_rep, n, out->rep + base,
                         &used, true, err))
        return false;
      p += used;
      len -= used;
    }
    if (!check_levels(out->rep + base, n, leaf->max_rep, "repetition", err)) return false;
  }
  size_t defined = n;
  if (leaf->max_def > 0) {
    if (v2) {
      if (!decode_levels(leaf, PQ_ENC_RLE, levels_v2 + rep_len, def_len, leaf->max_def, n, out->def + base, &used, false, err))
        return false;
    } else {
      if (!decode_levels(leaf, ph->data_page_header.definition_level_encoding, p, len, leaf->max_def, n, out->def + base,
                         &used, true, err))
        return false;
      p += used;
      len -= used;
    }
    if (!check_levels(out->def + base, n, leaf->max_def, "definition", err)) return false;
    defined = 0;
    for (size_t i = 0; i < n; i++) defined += out->def[base + i] == leaf->max_def;
  }
  return pq_decode_values(enc, dict, p, len, defined, out, err);
}

bool pq_reader_read_column(pq_reader_t *r, int rg_index, int leaf_index, m2d_column_t *out, m2d_error_t *err) {
  const pq_node_t *leaf = r->schema.leaves[leaf_index];
  m2d_column_init(out, pq_leaf_col_type(leaf), leaf->type_length, leaf->max_def, leaf->max_rep, (size_t)2 << 30);
  const pq_column_chunk_t *cc = &r->md->row_groups[rg_index].columns[leaf_index];
  char path[512];
  pq_node_path(leaf, path, sizeof path);
  m2d_column_t dict;
  bool have_dict = false;
  bool ok = false;
  if (!cc->has_meta_data) {
    m2d_error_set(err, M2D_ERR_FORMAT, 0, "column chunk has no metadata (external column files are not supported)");
    goto done;
  }
  const pq_column_metadata_t *md = &cc->meta_data;
  if (md->type != leaf->type) {
    m2d_error_set(err, M2D_ERR_FORMAT, 0, "column chunk type %d differs from the schema's %d", md->type, leaf->type);
    goto done;
  }
  if (md->num_values == 0) {
    ok = true; /* an empty chunk: some writers leave its offsets at 0 */
    goto done;
  }
  uint64_t data_end = r->src->size - 8;
  int64_t start = md->data_page_offset;
  if (md->has_dictionary_page_offset && md->dictionary_page_offset >= 4 &&
      (md->dictionary_page_offset < start || start < 4))
    start = md->dictionary_page_offset;
  if (start < 4 || (uint64_t)start >= data_end || md->total_compressed_size < 0 ||
      (uint64_t)md->total_compressed_size > data_end - (uint64_t)start) {
    m2d_error_set(err, M2D_ERR_FORMAT, 0, "column chunk offsets point outside the file");
    goto done;
  }
  uint64_t pos = (uint64_t)start, end = (uint64_t)start + (uint64_t)md->total_compressed_size;
  if (r->old_parquet_mr) /* its sizes leave out the dictionary page header (IMPALA-694) */
    end = end + 100 < data_end ? end + 100 : data_end;
  int64_t seen = 0;
  while (pos < end && seen < md->num_values) {
    /* the page header: read a little, more only when it does not fit */
    size_t want = end - pos < 65536 ? (size_t)(end - pos) : 65536;
    pq_page_header_t ph;
    size_t hlen = 0;
    for (;;) {
      m2d_buf_reset(&r->raw);
      if (!m2d_buf_reserve(&r->raw, want, err) || !m2d_source_read_at(r->src, pos, want, r->raw.data, err)) goto done;
      if (pq_page_header_decode(r->raw.data, want, &ph, &hlen, err)) break;
      if (want == end - pos || want >= MAX_HEADER) goto done;
      want = end - pos < MAX_HEADER ? (size_t)(end - pos) : MAX_HEADER;
    }
    size_t csize = (size_t)ph.compressed_page_size;
    if (csize > end - pos - hlen) {
      m2d_error_set(err, M2D_ERR_FORMAT, 0, "page of %zu bytes runs past its column chunk", csize);
      goto done;
    }
    if (!plausible_size(md->codec, csize, (size_t)ph.uncompressed_page_size)) {
      m2d_error_set(err, M2D_ERR_FORMAT, 0, "page claims %d bytes uncompressed from %zu compressed: corrupt header",
                    ph.uncompressed_page_size, csize);
      goto done;
    }
    m2d_buf_reset(&r->raw);
    if (!m2d_buf_reserve(&r->raw, csize, err) || !m2d_source_read_at(r->src, pos + hlen, csize, r->raw.data, err)) goto done;
    pos += hlen + csize;
    if (ph.type == PQ_PAGE_DICTIONARY) {
      if (have_dict) {
        m2d_error_set(err, M2D_ERR_FORMAT, 0, "a second dictionary page in one column chunk");
        goto done;
      }
      int32_t nd = ph.has_dictionary_page_header ? ph.dictionary_page_header.num_values : -1;
      if (nd < 0 || nd > MAX_PAGE_VALUES) {
        m2d_error_set(err, M2D_ERR_FORMAT, 0, "corrupt dictionary page header");
        goto done;
      }
      if (!pq_decompress(md->codec, r->raw.data, csize, (size_t)ph.uncompressed_page_size, &r->page, err)) goto done;
      m2d_column_init(&dict, out->type, out->fixed_len, 0, 0, (size_t)2 << 30);
      have_dict = true;
      if (!pq_decode_values(PQ_ENC_PLAIN, NULL, r->page.data, r->page.len, (size_t)nd, &dict, err)) goto done;
    } else if (ph.type == PQ_PAGE_DATA) {
      if (!ph.has_data_page_header) {
        m2d_error_set(err, M2D_ERR_FORMAT, 0, "data page without its header");
        goto done;
      }
      if (!pq_decompress(md->codec, r->raw.data, csize, (size_t)ph.uncompressed_page_size, &r->page, err)) goto done;
      if (!data_page(r, leaf, &ph, NULL, 0, 0, r->page.data, r->page.len, have_dict ? &dict : NULL, out, err)) goto done;
      seen += ph.data_page_header.num_values;
    } else if (ph.type == PQ_PAGE_DATA_V2) {
      const pq_data_page_header_v2_t *h = &ph.data_page_header_v2;
      if (!ph.has_data_page_header_v2 || h->repetition_levels_byte_length < 0 || h->definition_levels_byte_length < 0 ||
          (size_t)h->repetition_levels_byte_length + (size_t)h->definition_levels_byte_length > csize ||
          (size_t)h->repetition_levels_byte_length + (size_t)h->definition_levels_byte_length >
              (size_t)ph.uncompressed_page_size) {
        m2d_error_set(err, M2D_ERR_FORMAT, 0, "corrupt data page v2 header");
        goto done;
      }
      size_t lv = (size_t)h->repetition_levels_byte_length + (size_t)h->definition_levels_byte_length;
      const uint8_t *vals = r->raw.data + lv;
      size_t vlen = csize - lv, ulen = (size_t)ph.uncompressed_page_size - lv;
      if (h->is_compressed && md->codec != PQ_CODEC_UNCOMPRESSED && vlen > 0) {
        if (!pq_decompress(md->codec, vals, vlen, ulen, &r->page, err)) goto done;
        vals = r->page.data;
        vlen = r->page.len;
      }
      if (!data_page(r, leaf, &ph, r->raw.data, (size_t)h->repetition_levels_byte_length,
                     (size_t)h->definition_levels_byte_length, vals, vlen, have_dict ? &dict : NULL, out, err))
        goto done;
      seen += h->num_values;
    }
    /* index pages and unknown page types are skipped */
  }
  if (seen != md->num_values) {
    m2d_error_set(err, M2D_ERR_FORMAT, 0, "column chunk holds %lld values, its metadata says %lld", (long long)seen,
                  (long long)md->num_values);
    goto done;
  }
  ok = true;
done:
  if (have_dict) m2d_column_free(&dict);
  if (!ok) {
    m2d_error_prefix(err, "%s: row group %d, column '%s': ", r->src->name, rg_index, path);
    m2d_column_free(out);
  }
  return ok;
}
