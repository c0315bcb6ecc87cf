#include "parquet/writer.h"

#include "parquet/compress.h"
#include "parquet/encode.h"
#include "parquet/metadata_write.h"
#include "version.h"

#include <stdlib.h>
#include <string.h>

#define BUF_MAX ((size_t)1 << 31)
/* A chunk whose first DICT_PROBE_VALUES values are more than half distinct is written PLAIN
 * (checked again at the end of the first page for chunks with smaller pages). */
#define DICT_PROBE_VALUES 32768

typedef struct {
  const pq_node_t *leaf;
  m2d_col_type_t ctype;
  const char **path; /* path_in_schema */
  int32_t path_len;
  /* column chunk of the current row group */
  m2d_buf_t pages;   /* encoded data pages, headers included */
  pq_dict_t *dict;
  bool dict_active;  /* values still go through the dictionary */
  bool used_dict, used_plain;
  int64_t num_values;
  int64_t uncompressed, compressed; /* of the data pages, headers included */
  pq_stats_t chunk_stats, file_stats;
  /* the page being filled */
  int16_t *def, *rep;
  size_t nlev, lev_cap, rep_cap;
  uint32_t *idx;
  size_t nidx, idx_cap;
  m2d_buf_t plain;
  size_t page_est;
} chunk_t;

typedef struct block {
  struct block *next;
} block_t;

struct pq_writer {
  const pq_schema_t *schema;
  m2d_sink_t *sink;
  pq_writer_options_t opts;
  chunk_t *chunks;
  int nchunks;
  m2d_buf_t scratch, compressed, header;
  pq_compressor_t compressor;
  pq_row_group_t *row_groups;
  int32_t num_row_groups, row_groups_cap;
  int64_t rg_rows, total_rows;
  block_t *blocks; /* memory the footer points into */
};

static void *keep(pq_writer_t *w, size_t n, m2d_error_t *err) {
  block_t *b = calloc(1, sizeof *b + n);
  if (!b) return m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory"), NULL;
  b->next = w->blocks;
  w->blocks = b;
  return b + 1;
}


pq_writer_t *pq_writer_new(const pq_schema_t *schema, m2d_sink_t *sink, const pq_writer_options_t *opts,
                           m2d_error_t *err) {
  pq_writer_t *w = calloc(1, sizeof *w);
  if (!w) return m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory"), NULL;
  w->schema = schema;
  w->sink = sink;
  if (opts) w->opts = *opts;
  else w->opts.codec = PQ_CODEC_SNAPPY;
  if (!w->opts.dictionary_max_bytes) w->opts.dictionary_max_bytes = (size_t)1 << 20;
  if (!w->opts.page_size) w->opts.page_size = (size_t)1 << 20;
  if (!w->opts.row_group_size) w->opts.row_group_size = (size_t)128 << 20;
  m2d_buf_init(&w->scratch, BUF_MAX);
  m2d_buf_init(&w->compressed, BUF_MAX);
  m2d_buf_init(&w->header, 1 << 20);
  w->nchunks = schema->nleaves;
  w->chunks = calloc((size_t)(w->nchunks ? w->nchunks : 1), sizeof *w->chunks);
  if (!w->chunks) goto oom;
  for (int i = 0; i < w->nchunks; i++) {
    chunk_t *c = &w->chunks[i];
    c->leaf = schema->leaves[i];
    c->ctype = pq_leaf_col_type(c->leaf);
    m2d_buf_init(&c->pages, BUF_MAX);
    m2d_buf_init(&c->plain, BUF_MAX);
    pq_stats_init(&c->chunk_stats);
    pq_stats_init(&c->file_stats);
    int depth = 0;
    for (const pq_node_t *p = c->leaf; p->parent; p = p->parent) depth++;
    c->path = keep(w, (size_t)depth * sizeof *c->path, err);
    if (!c->path) goto fail;
    c->path_len = depth;
    int k = depth;
    for (const pq_node_t *p = c->leaf; p->parent; p = p->parent) c->path[--k] = p->name;
    c->dict_active = !w->opts.no_dictionary && c->ctype != M2D_COL_BOOL;
    if (c->dict_active && !(c->dict = pq_dict_new(c->ctype, c->leaf->type_length))) goto oom;
  }
  if (!m2d_sink_write(sink, "PAR1", 4, err)) goto fail;
  return w;
oom:
  m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory");
fail:
  pq_writer_destroy(w);
  return NULL;
}

static void free_writer(pq_writer_t *w) {
  for (int i = 0; i < w->nchunks; i++) {
    chunk_t *c = &w->chunks[i];
    m2d_buf_free(&c->pages);
    m2d_buf_free(&c->plain);
    pq_dict_destroy(c->dict);
    pq_stats_free(&c->chunk_stats);
    pq_stats_free(&c->file_stats);
    free(c->def);
    free(c->rep);
    free(c->idx);
  }
  free(w->chunks);
  m2d_buf_free(&w->scratch);
  m2d_buf_free(&w->compressed);
  m2d_buf_free(&w->header);
  pq_compressor_free(&w->compressor);
  while (w->blocks) {
    block_t *n = w->blocks->next;
    free(w->blocks);
    w->blocks = n;
  }
  free(w->row_groups);
  free(w);
}

void pq_writer_destroy(pq_writer_t *w) {
  if (!w) return;
  m2d_sink_abort(w->sink);
  free_writer(w);
}

size_t pq_writer_buffered(const pq_writer_t *w) {
  size_t n = 0;
  for (int i = 0; i < w->nchunks; i++) {
    const chunk_t *c = &w->chunks[i];
    n += c->pages.len + c->page_est + (c->dict && c->used_dict ? pq_dict_plain(c->dict)->len : 0);
  }
  return n;
}

uint64_t pq_writer_bytes_written(const pq_writer_t *w) { return w->sink->written; }

/* --- pages -------------------------------------------------------------------------------- */

static bool grow(void **p, size_t *cap, size_t need, size_t elem, m2d_error_t *err) {
  if (need <= *cap) return true;
  size_t n = *cap ? *cap : 4096;
  while (n < need) n *= 2;
  void *q = realloc(*p, n * elem);
  if (!q) return m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory buffering a page");
  *p = q;
  *cap = n;
  return true;
}

static bool levels(m2d_buf_t *out, const int16_t *lv, size_t n, int16_t max, m2d_error_t *err) {
  size_t at = out->len;
  uint32_t len = 0;
  if (!m2d_buf_append(out, &len, 4, err)) return false;
  if (!pq_rle_encode_i16(lv, n, pq_bit_width((uint32_t)max), out, err)) return false;
  len = (uint32_t)(out->len - at - 4);
  memcpy(out->data + at, &len, 4);
  return true;
}

/* Compresses body, writes header + compressed body into dst. */
static bool emit_page(pq_writer_t *w, pq_page_header_t *ph, const m2d_buf_t *body, m2d_buf_t *dst, int64_t *uncompressed,
                      int64_t *compressed, m2d_error_t *err) {
  m2d_buf_reset(&w->compressed);
  if (!pq_compress(&w->compressor, w->opts.codec, w->opts.level, body->data, body->len, &w->compressed, err)) return false;
  if (body->len > INT32_MAX || w->compressed.len > INT32_MAX)
    return m2d_error_set(err, M2D_ERR_LIMIT, 0, "a page is over 2 GiB: lower the page size");
  ph->uncompressed_page_size = (int32_t)body->len;
  ph->compressed_page_size = (int32_t)w->compressed.len;
  m2d_buf_reset(&w->header);
  if (!pq_encode_page_header(ph, &w->header, err)) return false;
  if (!m2d_buf_append(dst, w->header.data, w->header.len, err) ||
      !m2d_buf_append(dst, w->compressed.data, w->compressed.len, err))
    return false;
  *uncompressed += (int64_t)(w->header.len + body->len);
  *compressed += (int64_t)(w->header.len + w->compressed.len);
  return true;
}

static bool flush_page(pq_writer_t *w, chunk_t *c, m2d_error_t *err) {
  if (c->nlev == 0) return true;
  const pq_node_t *leaf = c->leaf;
  m2d_buf_t *body = &w->scratch;
  m2d_buf_reset(body);
  if (leaf->max_rep > 0 && !levels(body, c->rep, c->nlev, leaf->max_rep, err)) return false;
  if (leaf->max_def > 0 && !levels(body, c->def, c->nlev, leaf->max_def, err)) return false;
  pq_page_header_t ph = {0};
  ph.type = PQ_PAGE_DATA;
  ph.has_data_page_header = true;
  ph.data_page_header.num_values = (int32_t)c->nlev;
  ph.data_page_header.definition_level_encoding = PQ_ENC_RLE;
  ph.data_page_header.repetition_level_encoding = PQ_ENC_RLE;
  if (c->nidx || (c->dict_active && c->plain.len == 0)) {
    uint32_t count = pq_dict_count(c->dict);
    int bw = pq_bit_width(count ? count - 1 : 0);
    if (bw == 0) bw = 1;
    uint8_t b = (uint8_t)bw;
    if (!m2d_buf_append(body, &b, 1, err) || !pq_rle_encode_u32(c->idx, c->nidx, bw, body, err)) return false;
    ph.data_page_header.encoding = PQ_ENC_RLE_DICTIONARY;
    c->used_dict = true;
  } else if (c->ctype == M2D_COL_BOOL) {
    size_t nbytes = (c->plain.len + 7) / 8;
    if (!m2d_buf_reserve(body, nbytes, err)) return false;
    uint8_t *dst = body->data + body->len;
    memset(dst, 0, nbytes);
    for (size_t k = 0; k < c->plain.len; k++)
      if (c->plain.data[k]) dst[k / 8] |= (uint8_t)(1u << (k % 8));
    body->len += nbytes;
    ph.data_page_header.encoding = PQ_ENC_PLAIN;
    c->used_plain = true;
  } else {
    if (!m2d_buf_append(body, c->plain.data, c->plain.len, err)) return false;
    ph.data_page_header.encoding = PQ_ENC_PLAIN;
    c->used_plain = true;
  }
  if (!emit_page(w, &ph, body, &c->pages, &c->uncompressed, &c->compressed, err)) return false;
  c->num_values += (int64_t)c->nlev;
  c->nlev = c->nidx = 0;
  m2d_buf_reset(&c->plain);
  c->page_est = 0;
  /* the dictionary is full, or its values hardly repeat (more than half of them distinct
   * after a first page): the rest of this chunk is PLAIN */
  if (c->dict_active && (pq_dict_plain(c->dict)->len > w->opts.dictionary_max_bytes ||
                         (int64_t)pq_dict_count(c->dict) * 2 > c->chunk_stats.num_values))
    c->dict_active = false;
  return true;
}

/* Turns the indices of the page being filled back into PLAIN values and stops using the
 * dictionary for the rest of the chunk (no dictionary page has been written for it). */
static bool dict_to_plain(chunk_t *c, m2d_error_t *err) {
  bool bytes = c->ctype == M2D_COL_BYTES;
  for (size_t k = 0; k < c->nidx; k++) {
    size_t len;
    const uint8_t *p = pq_dict_entry(c->dict, c->idx[k], &len);
    uint32_t l = (uint32_t)len;
    if (!m2d_buf_reserve(&c->plain, len + 4, err)) return false;
    if (bytes) {
      memcpy(c->plain.data + c->plain.len, &l, 4);
      c->plain.len += 4;
    }
    if (len) memcpy(c->plain.data + c->plain.len, p, len);
    c->plain.len += len;
  }
  c->nidx = 0;
  pq_dict_clear(c->dict);
  c->dict_active = false;
  return true;
}

/* Appends slots [i, j) holding values [v, vv) of column src to the chunk's page. */
static bool append_segment(pq_writer_t *w, chunk_t *c, const m2d_column_t *src, size_t i, size_t j, size_t v, size_t vv,
                           m2d_error_t *err) {
  (void)w;
  size_t n = j - i;
  if (c->leaf->max_def > 0 && !grow((void **)&c->def, &c->lev_cap, c->nlev + n, sizeof *c->def, err)) return false;
  if (c->leaf->max_rep > 0 && !grow((void **)&c->rep, &c->rep_cap, c->nlev + n, sizeof *c->rep, err)) return false;
  if (c->leaf->max_def > 0) memcpy(c->def + c->nlev, src->def + i, n * sizeof *c->def);
  if (c->leaf->max_rep > 0) memcpy(c->rep + c->nlev, src->rep + i, n * sizeof *c->rep);
  c->nlev += n;
  c->chunk_stats.null_count += (int64_t)(n - (vv - v));
  if (c->dict_active && c->plain.len == 0) {
    if (!grow((void **)&c->idx, &c->idx_cap, c->nidx + (vv - v), sizeof *c->idx, err)) return false;
    uint32_t before = pq_dict_count(c->dict);
    if (!pq_dict_index_values(c->dict, src, v, vv, c->idx + c->nidx, err)) return false;
    c->nidx += vv - v;
    /* min and max can only change with values new to the dictionary */
    c->chunk_stats.num_values += (int64_t)(vv - v);
    for (uint32_t e = before; e < pq_dict_count(c->dict); e++) {
      size_t len;
      const uint8_t *p = pq_dict_entry(c->dict, e, &len);
      if (!pq_stats_add_value(&c->chunk_stats, c->leaf, p, len, err)) return false;
    }
    /* values that hardly repeat, seen early: PLAIN from the start of the chunk */
    if (!c->used_dict && c->chunk_stats.num_values >= DICT_PROBE_VALUES &&
        (int64_t)pq_dict_count(c->dict) * 2 > c->chunk_stats.num_values)
      return dict_to_plain(c, err);
    return true;
  }
  if (!pq_stats_update(&c->chunk_stats, c->leaf, src, v, vv, err)) return false;
  if (src->type == M2D_COL_BOOL) {
    /* one byte per value until the page is flushed: PLAIN booleans are bit-packed across
     * the whole page, not per segment */
    if (!m2d_buf_append(&c->plain, src->values + v, vv - v, err)) return false;
  } else {
    if (!pq_plain_encode(src, v, vv, &c->plain, err)) return false;
  }
  return true;
}


/* Writes slots [i, end) of src, whose first value is value v; returns the next value index. */
static bool write_slots(pq_writer_t *w, chunk_t *c, const m2d_column_t *src, size_t i, size_t end, size_t *vp,
                        m2d_error_t *err) {
  const pq_node_t *leaf = c->leaf;
  size_t v = *vp;
  while (i < end) {
    size_t j = i, vv = v, est = c->page_est;
    size_t width = src->type == M2D_COL_BYTES ? 0 : src->type == M2D_COL_BOOL ? 1 : m2d_col_type_width(src->type, src->fixed_len);
    if (leaf->max_rep == 0 && width) {
      /* one width and no repetition: the page boundary is arithmetic (counting every slot as
       * a value errs on the small side) */
      size_t room = est >= w->opts.page_size ? 1 : (w->opts.page_size - est + width) / (width + 1);
      j = i + room < end ? i + room : end;
      size_t defined = j - i;
      if (leaf->max_def > 0) {
        defined = 0;
        const int16_t *def = src->def;
        int16_t maxd = leaf->max_def;
        for (size_t k = i; k < j; k++) defined += def[k] == maxd;
      }
      vv = v + defined;
      est += (j - i) + defined * width;
    } else {
      const int16_t *def = src->def, *rep = src->rep;
      int16_t maxd = leaf->max_def;
      while (j < end) {
        if (j > i && est >= w->opts.page_size && (leaf->max_rep == 0 || rep[j] == 0)) break;
        if (maxd == 0 || def[j] == maxd) {
          est += width ? width : 4 + (src->offsets[vv + 1] - src->offsets[vv]);
          vv++;
        }
        est += 1; /* levels and indices: about a byte a slot before compression */
        j++;
      }
    }
    if (vv > src->nvalues) {
      char path[512];
      pq_node_path(leaf, path, sizeof path);
      return m2d_error_set(err, M2D_ERR_INTERNAL, 0, "column '%s': fewer values than defined slots", path);
    }
    if (!append_segment(w, c, src, i, j, v, vv, err)) return false;
    c->page_est = est;
    /* j is a row boundary here: the end of the slice or a slot starting a row */
    if (c->page_est >= w->opts.page_size && !flush_page(w, c, err)) return false;
    i = j;
    v = vv;
  }
  *vp = v;
  return true;
}

/* --- row groups --------------------------------------------------------------------------- */

static bool copy_bytes(pq_writer_t *w, pq_bytes_t *dst, const uint8_t *p, size_t n, m2d_error_t *err) {
  uint8_t *q = keep(w, n ? n : 1, err);
  if (!q) return false;
  if (n) memcpy(q, p, n);
  dst->data = q;
  dst->len = (uint32_t)n;
  return true;
}

static bool flush_row_group(pq_writer_t *w, m2d_error_t *err) {
  if (w->rg_rows == 0) return true;
  if (w->num_row_groups == w->row_groups_cap) {
    int32_t cap = w->row_groups_cap ? w->row_groups_cap * 2 : 8;
    pq_row_group_t *rg = realloc(w->row_groups, (size_t)cap * sizeof *rg);
    if (!rg) return m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory");
    w->row_groups = rg;
    w->row_groups_cap = cap;
  }
  pq_row_group_t *rg = &w->row_groups[w->num_row_groups];
  memset(rg, 0, sizeof *rg);
  rg->columns = keep(w, (size_t)(w->nchunks ? w->nchunks : 1) * sizeof *rg->columns, err);
  if (!rg->columns) return false;
  rg->num_columns = w->nchunks;
  rg->num_rows = w->rg_rows;
  rg->has_file_offset = true;
  rg->file_offset = (int64_t)w->sink->written;
  rg->has_ordinal = true;
  rg->ordinal = (int16_t)w->num_row_groups;
  int64_t total_unc = 0, total_comp = 0;
  for (int i = 0; i < w->nchunks; i++) {
    chunk_t *c = &w->chunks[i];
    if (!flush_page(w, c, err)) return false;
    pq_column_chunk_t *cc = &rg->columns[i];
    pq_column_metadata_t *md = &cc->meta_data;
    cc->has_meta_data = true;
    md->type = c->leaf->type;
    md->path_in_schema = c->path;
    md->path_len = c->path_len;
    md->codec = w->opts.codec;
    md->num_values = c->num_values;
    int64_t start = (int64_t)w->sink->written, unc = 0, comp = 0;
    if (c->used_dict) {
      pq_page_header_t ph = {0};
      ph.type = PQ_PAGE_DICTIONARY;
      ph.has_dictionary_page_header = true;
      ph.dictionary_page_header.num_values = (int32_t)pq_dict_count(c->dict);
      ph.dictionary_page_header.encoding = PQ_ENC_PLAIN;
      m2d_buf_t page;
      m2d_buf_init(&page, BUF_MAX);
      bool ok = emit_page(w, &ph, pq_dict_plain(c->dict), &page, &unc, &comp, err) &&
                m2d_sink_write(w->sink, page.data, page.len, err);
      m2d_buf_free(&page);
      if (!ok) return false;
      md->has_dictionary_page_offset = true;
      md->dictionary_page_offset = start;
    }
    md->data_page_offset = (int64_t)w->sink->written;
    if (!m2d_sink_write(w->sink, c->pages.data, c->pages.len, err)) return false;
    unc += c->uncompressed;
    comp += c->compressed;
    md->total_uncompressed_size = unc;
    md->total_compressed_size = comp;
    cc->file_offset = start;
    pq_encoding_t *enc = keep(w, 3 * sizeof *enc, err);
    if (!enc) return false;
    int ne = 0;
    enc[ne++] = PQ_ENC_RLE; /* levels */
    if (c->used_dict) enc[ne++] = PQ_ENC_RLE_DICTIONARY;
    if (c->used_plain || c->used_dict) enc[ne++] = PQ_ENC_PLAIN; /* PLAIN values or the dictionary page */
    md->encodings = enc;
    md->num_encodings = ne;
    pq_stats_t *s = &c->chunk_stats;
    md->has_statistics = true;
    md->statistics.has_null_count = true;
    md->statistics.null_count = s->null_count;
    /* very long binary min/max would bloat the footer: leave them out */
    if (s->has_minmax && s->min_len <= 1024 && s->max_len <= 1024) {
      md->statistics.has_min_value = md->statistics.has_max_value = true;
      if (!copy_bytes(w, &md->statistics.min_value, s->min, s->min_len, err) ||
          !copy_bytes(w, &md->statistics.max_value, s->max, s->max_len, err))
        return false;
    }
    if (!pq_stats_merge(&c->file_stats, c->leaf, s, err)) return false;
    total_unc += unc;
    total_comp += comp;
    /* the next row group starts afresh */
    m2d_buf_reset(&c->pages);
    c->num_values = c->uncompressed = c->compressed = 0;
    c->used_dict = c->used_plain = false;
    pq_stats_reset(&c->chunk_stats);
    if (c->dict) {
      pq_dict_clear(c->dict);
      c->dict_active = true;
    }
  }
  rg->total_byte_size = total_unc;
  rg->has_total_compressed_size = true;
  rg->total_compressed_size = total_comp;
  w->num_row_groups++;
  w->rg_rows = 0;
  return true;
}

/* Slot index where row `rows` past slot i starts (or the end), for a repeated column. */
static size_t advance_rows(const m2d_column_t *c, size_t i, size_t rows) {
  if (c->max_rep == 0) return i + rows < c->nlevels ? i + rows : c->nlevels;
  size_t seen = 0;
  for (; i < c->nlevels; i++)
    if (c->rep[i] == 0 && seen++ == rows) return i;
  return c->nlevels;
}

bool pq_writer_write(pq_writer_t *w, const m2d_column_t *cols, m2d_error_t *err) {
  if (w->nchunks == 0) return true;
  size_t rows = m2d_column_rows(&cols[0]);
  for (int k = 0; k < w->nchunks; k++) {
    const m2d_column_t *src = &cols[k];
    const pq_node_t *leaf = w->chunks[k].leaf;
    if (src->max_def != leaf->max_def || src->max_rep != leaf->max_rep || src->type != w->chunks[k].ctype) {
      char path[512];
      pq_node_path(leaf, path, sizeof path);
      return m2d_error_set(err, M2D_ERR_INTERNAL, 0, "column '%s' does not match the file schema (levels or type)", path);
    }
    if (m2d_column_rows(src) != rows)
      return m2d_error_set(err, M2D_ERR_INTERNAL, 0, "columns of one batch hold different numbers of rows");
  }
  /* slices of rows, so that row groups can be cut inside a large batch */
  size_t *slot = calloc((size_t)w->nchunks, sizeof *slot), *val = calloc((size_t)w->nchunks, sizeof *val);
  bool ok = slot && val;
  if (!ok) m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory");
  /* about a quarter of a row group per slice, within [16, 8192] rows */
  size_t batch_bytes = 0;
  for (int k = 0; k < w->nchunks; k++) batch_bytes += cols[k].value_bytes + cols[k].nlevels;
  size_t per_row = rows ? batch_bytes / rows + 1 : 1;
  size_t slice = w->opts.row_group_size / 4 / per_row;
  if (slice < 16) slice = 16;
  if (slice > 8192) slice = 8192;
  for (size_t done = 0; ok && done < rows; done += slice) {
    size_t n = rows - done < slice ? rows - done : slice;
    for (int k = 0; ok && k < w->nchunks; k++) {
      size_t end = advance_rows(&cols[k], slot[k], n);
      ok = write_slots(w, &w->chunks[k], &cols[k], slot[k], end, &val[k], err);
      slot[k] = end;
    }
    w->rg_rows += (int64_t)n;
    w->total_rows += (int64_t)n;
    if (ok && pq_writer_buffered(w) >= w->opts.row_group_size) ok = flush_row_group(w, err);
  }
  for (int k = 0; ok && k < w->nchunks; k++)
    if (val[k] != cols[k].nvalues || slot[k] != cols[k].nlevels) {
      char path[512];
      pq_node_path(w->chunks[k].leaf, path, sizeof path);
      ok = m2d_error_set(err, M2D_ERR_INTERNAL, 0, "column '%s': values and levels disagree", path);
    }
  free(slot);
  free(val);
  return ok;
}

bool pq_writer_close(pq_writer_t *w, pq_write_result_t *result, m2d_error_t *err) {
  bool ok = false;
  pq_schema_element_t *elems = NULL;
  m2d_buf_t footer;
  m2d_buf_init(&footer, BUF_MAX);
  if (!flush_row_group(w, err)) goto done;
  pq_file_metadata_t md = {0};
  md.version = 2;
  if (!pq_schema_to_elements(w->schema, &elems, &md.num_schema, err)) goto done;
  md.schema = elems;
  md.num_rows = w->total_rows;
  md.row_groups = w->row_groups;
  md.num_row_groups = w->num_row_groups;
  md.key_value_metadata = (pq_key_value_t *)w->opts.key_value_metadata;
  md.num_key_value_metadata = w->opts.num_key_value_metadata;
  md.created_by = "mongo2delta version " M2D_VERSION;
  md.has_column_orders = true;
  md.num_column_orders = w->nchunks;
  if (!pq_encode_file_metadata(&md, &footer, err)) goto done;
  uint32_t len = (uint32_t)footer.len;
  if (!m2d_sink_write(w->sink, footer.data, footer.len, err) || !m2d_sink_write(w->sink, &len, 4, err) ||
      !m2d_sink_write(w->sink, "PAR1", 4, err))
    goto done;
  uint64_t size = w->sink->written;
  m2d_sink_t *sink = w->sink;
  w->sink = NULL;
  if (!m2d_sink_finish(sink, err)) goto done;
  if (result) {
    memset(result, 0, sizeof *result);
    result->file_size = size;
    result->num_rows = w->total_rows;
    result->num_row_groups = w->num_row_groups;
    result->nleaves = w->nchunks;
    result->leaf_stats = calloc((size_t)(w->nchunks ? w->nchunks : 1), sizeof *result->leaf_stats);
    if (!result->leaf_stats) {
      m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory");
      goto done;
    }
    for (int i = 0; i < w->nchunks; i++) {
      result->leaf_stats[i] = w->chunks[i].file_stats; /* hand over */
      pq_stats_init(&w->chunks[i].file_stats);
    }
  }
  ok = true;
done:
  free(elems);
  m2d_buf_free(&footer);
  if (w->sink) m2d_sink_abort(w->sink);
  free_writer(w);
  return ok;
}

void pq_write_result_free(pq_write_result_t *r) {
  if (!r) return;
  for (int i = 0; i < r->nleaves; i++) pq_stats_free(&r->leaf_stats[i]);
  free(r->leaf_stats);
  memset(r, 0, sizeof *r);
}
