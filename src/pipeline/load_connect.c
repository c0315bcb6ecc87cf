/* load --format kafka-connect-json: the files a Kafka Connect S3 sink (Confluent's, or its GCS
 * and Azure siblings) writes with its JSON format, applied to a mirror and/or a change log in
 * offset order per topic-partition, exactly once.
 *
 * The sink names each file <topic>+<partition>+<startOffset>.json (.json.gz when compressed;
 * the default partitioner puts it under <topics.dir>/<topic>/partition=<p>/), one record value
 * per line, the Nth line being the record at startOffset + N - 1 when the topic's offsets have no
 * holes. Each commit carries a txn per topic-partition it holds records of (appId
 * mongo2delta-load-kafka:[<name>:]<topic>:<partition>, version = the offset after the last
 * record taken), so a file whose records are all below the table's position is skipped, one that
 * straddles it (the sink wrote it again after a restart, rotated otherwise) gives only the records
 * after it, and a file the sink rewrote under the same name with the same content is taken once.
 *
 * Offsets without records (transactional producers' commit markers, compaction, aborted
 * transactions) look the same as a missing file: a file starting after the previous one's end.
 * That is an error (or, with --watch, a wait for the file) unless allow_offset_gaps says the
 * topic has such holes; then the lines' offsets are the file's start offset + line number - 1,
 * not the records' own. */
#include "pipeline/load.h"

#include "core/log.h"
#include "delta/txn.h"
#include "pipeline/change_record.h"
#include "pipeline/mirror.h"
#include "pipeline/table_writer.h"
#include "storage/store.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define APP_PREFIX "mongo2delta-load-kafka:"

/* A sink file in a listing. */
typedef struct {
  char *name; /* key relative to its input's root */
  int input;
  int part;   /* index in lc_t.parts */
  int64_t start;
  uint64_t size;
  int64_t mtime_ms;
} cfile_t;

typedef struct {
  cfile_t *v;
  size_t n, cap;
} cfiles_t;

/* A topic-partition the inputs hold files of. */
typedef struct {
  char topic[256];
  int32_t partition;
  char app[800];
  int input;
  char *dir;                     /* the folder of its files, relative to the input root */
  char *last_name;               /* the last file dealt with: listings between whole ones start after it */
  int64_t next_mirror, next_log; /* each table's position: the next offset it needs (-1: none of it yet) */
  int64_t pos;                   /* the offset after the last record taken by this run or the tables (-1: none) */
  int64_t batch_end;             /* the batch's position for it (-1: nothing of it in the batch) */
  int64_t gap_warned;            /* the offset of the last gap warned about (-1: none) */
  bool held;                     /* waiting at a gap in this round (--watch) */
  char *read_name;               /* the last file read, its size/time and lines: a later listing */
  char read_shape[64];           /* that finds it unchanged need not read it again */
  int64_t read_lines;
} cpart_t;

typedef struct {
  const char *url;
  m2d_store_t *st;
} cinput_t;

typedef struct {
  const m2d_load_options_t *o;
  m2d_load_summary_t *sum;
  cinput_t *inputs;
  m2d_mirror_t *mirror;
  m2d_table_writer_t *log;
  cpart_t *parts;
  int nparts, capparts;
  m2d_change_t *ev; /* the batch: changes with their partition and offset */
  int *evpart;
  int64_t *evoff;
  int nev, capev;
  json_t *batch_files; /* the files of the batch, for commitInfo */
  FILE *rejects;
  bool other_formats_warned;
} lc_t;

static int64_t next_needed(const lc_t *k, const cpart_t *p) {
  int64_t m = k->mirror ? p->next_mirror : INT64_MAX, l = k->log ? p->next_log : INT64_MAX;
  return m < l ? m : l;
}

/* --- names and listings ------------------------------------------------------------------- */

/* "<topic>+<partition>+<startOffset>.<extension>": *json tells the JSON format's extensions
 * (.json, .json.gz) from the others (.avro, .parquet, .bin, and .keys.json / .headers.json,
 * which hold a record's key or headers, not its value). */
static bool parse_name(const char *base, char *topic, size_t topicsz, int32_t *partition, int64_t *start,
                       bool *json) {
  *json = false;
  const char *p2 = strrchr(base, '+');
  if (!p2 || p2 == base) return false;
  const char *p1 = memrchr(base, '+', (size_t)(p2 - base));
  if (!p1 || p1 == base || p1 + 1 == p2 || (size_t)(p1 - base) >= topicsz) return false;
  int64_t part = 0, off = 0;
  for (const char *c = p1 + 1; c < p2; c++) {
    if (*c < '0' || *c > '9' || part > INT32_MAX / 10) return false;
    part = part * 10 + (*c - '0');
  }
  const char *c = p2 + 1;
  for (; *c >= '0' && *c <= '9'; c++) {
    if (off > (INT64_MAX - 9) / 10) return false;
    off = off * 10 + (*c - '0');
  }
  if (c == p2 + 1 || *c != '.') return false;
  *json = !strcmp(c, ".json") || !strcmp(c, ".json.gz");
  snprintf(topic, topicsz, "%.*s", (int)(p1 - base), base);
  *partition = (int32_t)part;
  *start = off;
  return true;
}

static cpart_t *find_part(lc_t *k, const char *topic, int32_t partition, int input, bool add, m2d_error_t *err) {
  for (int i = 0; i < k->nparts; i++)
    if (k->parts[i].partition == partition && !strcmp(k->parts[i].topic, topic)) return &k->parts[i];
  if (!add) return NULL;
  if (k->nparts == k->capparts) {
    int c = k->capparts ? k->capparts * 2 : 16;
    cpart_t *np = realloc(k->parts, (size_t)c * sizeof *np);
    if (!np) return m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory"), NULL;
    k->parts = np;
    k->capparts = c;
  }
  cpart_t *p = &k->parts[k->nparts++];
  memset(p, 0, sizeof *p);
  snprintf(p->topic, sizeof p->topic, "%s", topic);
  p->partition = partition;
  p->input = input;
  const char *name = k->o->name;
  snprintf(p->app, sizeof p->app, APP_PREFIX "%s%s%s:%" PRId32, name ? name : "", name ? ":" : "", topic, partition);
  p->next_mirror = k->mirror ? m2d_table_writer_app_version(m2d_mirror_writer(k->mirror), p->app) : -1;
  p->next_log = k->log ? m2d_table_writer_app_version(k->log, p->app) : -1;
  p->pos = next_needed(k, p);
  p->batch_end = p->gap_warned = -1;
  if (p->pos >= 0) m2d_info("%s[%" PRId32 "]: the table holds its records up to offset %lld", topic, partition, (long long)p->pos - 1);
  return p;
}

static bool files_add(cfiles_t *l, const cfile_t *f, m2d_error_t *err) {
  if (l->n == l->cap) {
    size_t cap = l->cap ? l->cap * 2 : 64;
    cfile_t *nv = realloc(l->v, cap * sizeof *nv);
    if (!nv) return m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory");
    l->v = nv;
    l->cap = cap;
  }
  l->v[l->n] = *f;
  if (!(l->v[l->n].name = strdup(f->name))) return m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory");
  l->n++;
  return true;
}

static void files_free(cfiles_t *l) {
  for (size_t i = 0; i < l->n; i++) free(l->v[i].name);
  free(l->v);
  *l = (cfiles_t){0};
}

/* One listed object: a sink file of the JSON format is kept (its partition made known), the
 * others are passed over. */
static bool consider(lc_t *k, int input, const char *name, uint64_t size, int64_t mtime, cfiles_t *out, int *others,
                     m2d_error_t *err) {
  const char *slash = strrchr(name, '/');
  const char *base = slash ? slash + 1 : name;
  char topic[256];
  int32_t partition;
  int64_t start;
  bool json;
  if (!parse_name(base, topic, sizeof topic, &partition, &start, &json)) return true;
  if (!json) {
    if (!strstr(base, ".keys.") && !strstr(base, ".headers.")) (*others)++;
    return true;
  }
  cpart_t *p = find_part(k, topic, partition, input, true, err);
  if (!p) return false;
  size_t dirlen = slash ? (size_t)(slash - name) : 0;
  if (!p->dir) {
    if (!(p->dir = strndup(name, dirlen))) return m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory");
  } else if (p->input != input || strlen(p->dir) != dirlen || strncmp(p->dir, name, dirlen)) {
    return m2d_error_set(err, M2D_ERR_FORMAT, 0,
                         "%s[%" PRId32 "] has files in two folders (%s/%s and %s/%.*s): load reads the layout of the "
                         "sink's default partitioner (<topics.dir>/<topic>/partition=<p>/), where a partition's files "
                         "follow each other; a field or time-based partitioner spreads a partition's records over "
                         "several files at once, and an input given twice holds each file twice",
                         topic, partition, k->inputs[p->input].st->root, p->dir, k->inputs[input].st->root,
                         (int)dirlen, name);
  }
  cfile_t f = {.name = (char *)name, .input = input, .part = (int)(p - k->parts), .start = start, .size = size,
               .mtime_ms = mtime};
  return files_add(out, &f, err);
}

static bool list_dir(lc_t *k, int input, const char *dir, const char *after, cfiles_t *out, int *others,
                     m2d_error_t *err) {
  m2d_store_entry_t *e = NULL;
  size_t n = 0;
  bool ok = m2d_store_list_all(k->inputs[input].st, dir, after, &e, &n, err);
  for (size_t i = 0; ok && i < n; i++) {
    if (e[i].is_dir) continue;
    char name[2200];
    snprintf(name, sizeof name, "%s%s%s", dir, dir[0] ? "/" : "", e[i].name);
    ok = consider(k, input, name, e[i].size, e[i].mtime_ms, out, others, err);
  }
  m2d_store_entries_free(e, n);
  return ok;
}

/* The sink files of one input: all of them, or (between whole listings) those after the last
 * file dealt with in each known partition's folder. */
static bool list_input(lc_t *k, int input, bool full, cfiles_t *out, int *others, m2d_error_t *err) {
  if (full) return list_dir(k, input, "", NULL, out, others, err);
  bool ok = true;
  for (int i = 0; ok && i < k->nparts; i++) {
    cpart_t *p = &k->parts[i];
    if (p->input != input || !p->dir) continue;
    /* a folder shared by several partitions is listed once, after the least of their last files */
    bool first = true, from_start = false;
    const char *after = NULL;
    for (int j = 0; j < k->nparts; j++) {
      cpart_t *q = &k->parts[j];
      if (q->input != input || !q->dir || strcmp(q->dir, p->dir)) continue;
      if (j < i) first = false;
      if (!q->last_name) from_start = true;
      else if (!after || strcmp(q->last_name, after) < 0) after = q->last_name;
    }
    if (!first) continue;
    if (from_start) after = NULL;
    /* last_name is relative to the input root; the listing wants it relative to the folder */
    const char *rel = after && p->dir[0] ? after + strlen(p->dir) + 1 : after;
    ok = list_dir(k, input, p->dir, rel, out, others, err);
  }
  return ok;
}

static int file_order(const void *a, const void *b, void *ud) {
  const cfile_t *x = a, *y = b;
  const lc_t *k = ud;
  const cpart_t *px = &k->parts[x->part], *py = &k->parts[y->part];
  int c = strcmp(px->topic, py->topic);
  if (c) return c;
  if (px->partition != py->partition) return px->partition < py->partition ? -1 : 1;
  return x->start < y->start ? -1 : x->start > y->start;
}

/* --- the batch and its commits ------------------------------------------------------------ */

static void clear_batch(lc_t *k) {
  for (int i = 0; i < k->nev; i++) m2d_change_clear(&k->ev[i]);
  k->nev = 0;
  for (int i = 0; i < k->nparts; i++) k->parts[i].batch_end = -1;
  json_array_clear(k->batch_files);
}

static bool push_change(lc_t *k, const m2d_change_t *e, int part, int64_t off, m2d_error_t *err) {
  if (k->nev == k->capev) {
    int c = k->capev ? k->capev * 2 : 1024;
    m2d_change_t *ev = realloc(k->ev, (size_t)c * sizeof *ev);
    if (ev) k->ev = ev;
    int *evpart = ev ? realloc(k->evpart, (size_t)c * sizeof *evpart) : NULL;
    if (evpart) k->evpart = evpart;
    int64_t *evoff = evpart ? realloc(k->evoff, (size_t)c * sizeof *evoff) : NULL;
    if (evoff) k->evoff = evoff;
    if (!evoff) return m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory");
    k->capev = c;
  }
  k->ev[k->nev] = *e;
  k->evpart[k->nev] = part;
  k->evoff[k->nev] = off;
  k->nev++;
  return true;
}

static json_t *batch_info(lc_t *k, int records) {
  json_t *offsets = json_object();
  for (int i = 0; i < k->nparts; i++) {
    cpart_t *p = &k->parts[i];
    if (p->batch_end < 0) continue;
    char name[300];
    snprintf(name, sizeof name, "%s:%" PRId32, p->topic, p->partition);
    json_object_set_new(offsets, name, json_integer(p->batch_end - 1));
  }
  return json_pack("{s{sososi}}", "kafkaConnectFiles", "files", json_deep_copy(k->batch_files), "lastOffsets", offsets,
                   "records", records);
}

static bool conflict(m2d_error_t *err) {
  if (err && err->domain == M2D_ERR_CONFLICT && err->code == DELTA_CONFLICT_APP)
    m2d_error_prefix(err, "another load applied some of these partitions to the table at the same time (run load again: "
                          "it goes on from the table's positions): ");
  return false;
}

static bool commit_changelog(lc_t *k, m2d_error_t *err) {
  m2d_app_txn_t *txns = calloc((size_t)k->nparts + 1, sizeof *txns);
  bson_t **docs = calloc((size_t)k->nev + 1, sizeof *docs);
  int ntx = 0, n = 0;
  bool ok = (txns && docs) || m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory");
  for (int i = 0; ok && i < k->nparts; i++)
    if (k->parts[i].batch_end >= 0 && k->parts[i].batch_end > k->parts[i].next_log)
      txns[ntx++] = (m2d_app_txn_t){k->parts[i].app, k->parts[i].batch_end};
  for (int i = 0; ok && ntx && i < k->nev; i++) {
    cpart_t *p = &k->parts[k->evpart[i]];
    if (k->evoff[i] < p->next_log) continue; /* already in the change log (committed before a crash) */
    docs[n++] = m2d_change_kafka_row(&k->ev[i], p->topic, p->partition, k->evoff[i]);
  }
  int64_t version;
  if (ok && ntx)
    ok = (m2d_table_writer_write(k->log, docs, n, err) &&
          m2d_table_writer_commit_txns(k->log, txns, ntx, batch_info(k, n), &version, err)) ||
         conflict(err);
  if (ok && ntx) {
    for (int i = 0; i < k->nparts; i++)
      if (k->parts[i].batch_end >= 0 && k->parts[i].batch_end > k->parts[i].next_log)
        k->parts[i].next_log = k->parts[i].batch_end;
    k->sum->changelog_rows += n;
    k->sum->commits++;
  } else if (!ok && k->log && m2d_table_writer_in_batch(k->log)) {
    m2d_table_writer_abort(k->log);
  }
  for (int i = 0; i < n; i++) bson_destroy(docs[i]);
  free(docs);
  free(txns);
  return ok;
}

static bool commit_mirror(lc_t *k, m2d_error_t *err) {
  m2d_app_txn_t *txns = calloc((size_t)k->nparts + 1, sizeof *txns);
  m2d_change_t *evs = calloc((size_t)k->nev + 1, sizeof *evs);
  int ntx = 0, n = 0;
  bool ok = (txns && evs) || m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory");
  for (int i = 0; ok && i < k->nparts; i++)
    if (k->parts[i].batch_end >= 0 && k->parts[i].batch_end > k->parts[i].next_mirror)
      txns[ntx++] = (m2d_app_txn_t){k->parts[i].app, k->parts[i].batch_end};
  for (int i = 0; ok && i < k->nev; i++)
    if (k->evoff[i] >= k->parts[k->evpart[i]].next_mirror) evs[n++] = k->ev[i]; /* shallow: the batch owns them */
  m2d_mirror_counts_t counts = {0};
  if (ok && ntx) {
    json_t *info = batch_info(k, n);
    ok = m2d_mirror_apply(k->mirror, evs, n, txns, ntx, info, &counts, err) || conflict(err);
    json_decref(info);
  }
  if (ok && ntx) {
    for (int i = 0; i < k->nparts; i++)
      if (k->parts[i].batch_end >= 0 && k->parts[i].batch_end > k->parts[i].next_mirror)
        k->parts[i].next_mirror = k->parts[i].batch_end;
    k->sum->upserts += counts.upserts;
    k->sum->deletes += counts.deletes;
    k->sum->commits++;
  }
  free(evs);
  free(txns);
  return ok;
}

/* The batch in hand: the change log first (it skips what it holds), then the mirror. */
static bool flush(lc_t *k, m2d_error_t *err) {
  bool any = false;
  for (int i = 0; i < k->nparts; i++) any = any || k->parts[i].batch_end >= 0;
  if (!any) return true;
  int nfiles = (int)json_array_size(k->batch_files), nev = k->nev;
  bool ok = (!k->rejects || fflush(k->rejects) == 0) ||
            m2d_error_set(err, M2D_ERR_IO, errno, "cannot write the rejects file: %s", strerror(errno));
  if (ok && k->log) ok = commit_changelog(k, err);
  if (ok && k->mirror) ok = commit_mirror(k, err);
  if (ok) {
    char versions[128] = "";
    if (k->mirror)
      snprintf(versions, sizeof versions, "mirror version %lld",
               (long long)m2d_table_writer_version(m2d_mirror_writer(k->mirror)));
    if (k->log)
      snprintf(versions + strlen(versions), sizeof versions - strlen(versions), "%schange log version %lld",
               k->mirror ? ", " : "", (long long)m2d_table_writer_version(k->log));
    m2d_info("%d file(s), %d record(s) committed: %s", nfiles, nev, versions);
  }
  clear_batch(k);
  return ok;
}

/* --- reading a file ----------------------------------------------------------------------- */

/* The next line of gz into *line (its end of line and surrounding blanks cut); *eof when there is
 * none; *too_long when it held more than the buffer's cap (the rest of it is passed over). */
static bool next_line(gzFile gz, m2d_buf_t *line, size_t *start, size_t *len, bool *eof, bool *too_long,
                      const char *url, int64_t lineno, m2d_error_t *err) {
  m2d_buf_reset(line);
  *eof = *too_long = false;
  bool got = false;
  for (;;) {
    char chunk[65536];
    if (!gzgets(gz, chunk, sizeof chunk)) {
      int code;
      const char *msg = gzerror(gz, &code);
      if (code != Z_OK && code != Z_STREAM_END)
        return m2d_error_set(err, M2D_ERR_IO, code, "%s: read error after line %lld: %s (a corrupt .gz file?)", url,
                             (long long)lineno, msg);
      break;
    }
    got = true;
    size_t n = strlen(chunk);
    if (!*too_long && line->len + n > line->max) *too_long = true;
    if (!*too_long && !m2d_buf_append(line, chunk, n, err)) return false;
    if (n && chunk[n - 1] == '\n') break;
  }
  if (!got) {
    *eof = true;
    return true;
  }
  size_t e = line->len, s = 0;
  while (e && (line->data[e - 1] == '\n' || line->data[e - 1] == '\r' || line->data[e - 1] == ' ' ||
               line->data[e - 1] == '\t'))
    e--;
  while (s < e && (line->data[s] == ' ' || line->data[s] == '\t')) s++;
  *start = s;
  *len = e - s;
  return true;
}

static bool reject(lc_t *k, const char *url, const cpart_t *p, int64_t lineno, int64_t off, const char *text,
                   size_t len, const char *why, m2d_error_t *err) {
  json_t *o = json_pack("{sssssIsssisIss}", "file", url, "error", why, "lineNumber", (json_int_t)lineno, "topic",
                        p->topic, "partition", (int)p->partition, "offset", (json_int_t)off, "format",
                        "kafka-connect-json");
  json_t *s = text ? json_stringn(text, len) : NULL;
  json_object_set_new(o, "line", s ? s : json_string(text ? "(not valid UTF-8)" : "(too long to keep)"));
  char *out = json_dumps(o, JSON_COMPACT);
  json_decref(o);
  bool ok = out && fprintf(k->rejects, "%s\n", out) >= 0;
  free(out);
  if (!ok) return m2d_error_set(err, M2D_ERR_IO, errno, "cannot write the rejects file: %s", strerror(errno));
  k->sum->rejected++;
  return true;
}

/* The records of f from offset from on (all when from < 0) into the batch: the whole file or,
 * at a bad line (without a rejects file), nothing of it. *taken says whether it held records
 * past from; *lines gets its line count. */
static bool read_file(lc_t *k, cpart_t *p, const cfile_t *f, int64_t from, bool *taken, int64_t *lines,
                      m2d_error_t *err) {
  *taken = false;
  const cinput_t *in = &k->inputs[f->input];
  char url[PATH_MAX + 2200], local[PATH_MAX];
  snprintf(url, sizeof url, "%s/%s", in->st->root, f->name);
  bool remote = m2d_store_is_remote(in->url);
  if (remote && !m2d_load_download(url, local, sizeof local, err)) return false;
  if (!remote) snprintf(local, sizeof local, "%s", url);
  gzFile gz = gzopen(local, "rb");
  if (!gz) {
    if (remote) unlink(local);
    return m2d_error_set(err, M2D_ERR_IO, errno, "cannot read %s: %s", url, strerror(errno));
  }
  gzbuffer(gz, 1 << 17);
  m2d_buf_t line;
  m2d_buf_init(&line, M2D_RECORD_MAX_VALUE + 1024); /* larger values are refused by name below */
  int before = k->nev;
  int64_t lineno = 0, skipped = 0, rejected = 0;
  bool ok = true;
  for (;;) {
    size_t s = 0, len = 0;
    bool eof, too_long;
    if (!(ok = next_line(gz, &line, &s, &len, &eof, &too_long, url, lineno, err)) || eof) break;
    lineno++;
    int64_t off = f->start + lineno - 1;
    if (from >= 0 && off < from) {
      skipped++;
      continue;
    }
    m2d_error_t why = {0};
    m2d_change_t e;
    const char *text = (const char *)line.data + s;
    bool good = false;
    if (too_long)
      m2d_error_set(&why, M2D_ERR_FORMAT, 0, "the value is more than %zu bytes, more than a MongoDB document can hold "
                                             "(16 MiB) with its event", M2D_RECORD_MAX_VALUE);
    else if (len == 0)
      m2d_error_set(&why, M2D_ERR_FORMAT, 0, "an empty line where a record should be");
    else if (len == 4 && !memcmp(text, "null", 4))
      m2d_error_set(&why, M2D_ERR_FORMAT, 0,
                    "a null value (a tombstone): the sink's value files do not hold the key, so which document it "
                    "deletes is unknown (have the source write deletes as change events, without "
                    "publish.full.document.only)");
    else
      good = m2d_change_from_record(NULL, 0, text, len, k->o->record_format, &e, &why);
    if (good) {
      e.seq = off;
      if (!(ok = push_change(k, &e, (int)(p - k->parts), off, err))) {
        m2d_change_clear(&e);
        break;
      }
    } else if (k->rejects) {
      rejected++;
      if (!(ok = reject(k, url, p, lineno, off, too_long ? NULL : text, len, why.message, err))) break;
    } else {
      ok = m2d_error_set(err, M2D_ERR_FORMAT, 0,
                         "%s, line %lld (offset %lld of %s[%" PRId32 "]): %s; nothing of this file was committed "
                         "(--rejects FILE sets bad records aside)",
                         url, (long long)lineno, (long long)off, p->topic, p->partition, why.message);
      break;
    }
  }
  gzclose(gz);
  m2d_buf_free(&line);
  if (remote) unlink(local);
  if (!ok) { /* nothing of the file stays in the batch */
    for (int i = before; i < k->nev; i++) m2d_change_clear(&k->ev[i]);
    k->nev = before;
    return false;
  }
  *lines = lineno;
  int64_t end = f->start + lineno;
  k->sum->records_skipped += skipped;
  if (from >= 0 && end <= from) return true; /* every record below the position */
  if (from >= 0 && f->start < from)
    m2d_info("%s starts at offset %lld, before the offset %lld %s[%" PRId32 "] is at (the sink wrote it again after a "
             "restart): only its records from offset %lld on are applied",
             url, (long long)f->start, (long long)from, p->topic, p->partition, (long long)from);
  *taken = true;
  p->pos = p->batch_end = end;
  k->sum->records += lineno - skipped - rejected;
  json_array_append_new(k->batch_files, json_string(url));
  m2d_debug("%s: %lld line(s), %lld new record(s)", url, (long long)lineno, (long long)(lineno - skipped));
  return true;
}

/* --- one round: the files of a listing, partition by partition ---------------------------- */

static void shape_of(const cfile_t *f, char *out, size_t n) {
  snprintf(out, n, "%llu/%lld", (unsigned long long)f->size, (long long)f->mtime_ms);
}

/* Lines of a file read before with the same size and time, or -1. */
static int64_t known_lines(const cpart_t *p, const cfile_t *f) {
  char shape[64];
  shape_of(f, shape, sizeof shape);
  if (!p->read_name || strcmp(p->read_name, f->name) || strcmp(p->read_shape, shape)) return -1;
  return p->read_lines;
}

static void set_last(cpart_t *p, const char *name) {
  if (p->last_name && strcmp(p->last_name, name) >= 0) return;
  char *c = strdup(name);
  if (!c) return; /* only the next listing's start point */
  free(p->last_name);
  p->last_name = c;
}

/* The files of one partition in this listing (v[0..n), by start offset). *gap gets the first
 * missing file of a run without --watch (reported when the round is over). */
static bool take_partition(lc_t *k, cpart_t *p, const cfile_t *v, size_t n, int *taken, bool *limited, bool first_round,
                           m2d_error_t *gap, m2d_error_t *err) {
  const m2d_load_options_t *o = k->o;
  int max = o->max_batch > 0 ? o->max_batch : 10000;
  for (size_t i = 0; i < n; i++) {
    if (o->stop && *o->stop) break;
    const cfile_t *f = &v[i];
    char url[PATH_MAX + 2200];
    snprintf(url, sizeof url, "%s/%s", k->inputs[f->input].st->root, f->name);
    if (i + 1 < n && v[i + 1].start == f->start)
      return m2d_error_set(err, M2D_ERR_FORMAT, 0, "%s and %s/%s both start at offset %lld of %s[%" PRId32 "]: which "
                                                   "one holds the records is unknown; remove the one that is not the "
                                                   "sink's",
                           url, k->inputs[v[i + 1].input].st->root, v[i + 1].name, (long long)f->start, p->topic,
                           p->partition);
    int64_t pos = p->pos;
    /* below the position: the next file starts where this one's records are all taken */
    bool done = pos >= 0 && i + 1 < n && v[i + 1].start <= pos;
    if (!done && pos >= 0 && f->start < pos) {
      int64_t lines = known_lines(p, f);
      done = lines >= 0 && f->start + lines <= pos;
    }
    if (done) {
      if (first_round) {
        k->sum->files_skipped++;
        m2d_debug("%s: already loaded, skipped", url);
      }
      set_last(p, f->name);
      continue;
    }
    if (pos >= 0 && f->start > pos && !o->allow_offset_gaps) {
      char msg[900];
      snprintf(msg, sizeof msg,
               "%s[%" PRId32 "]: offsets %lld to %lld are in no file (the next one, %s, starts at offset %lld): a file "
               "of the sink is missing (not written yet, or deleted), or the topic has offsets without records "
               "(commit markers of transactional producers, compaction)",
               p->topic, p->partition, (long long)pos, (long long)f->start - 1, url, (long long)f->start);
      if (o->watch) {
        if (p->gap_warned != pos)
          m2d_warn("%s; waiting for it (--allow-offset-gaps passes over such holes)", msg);
        p->gap_warned = pos;
        p->held = true;
      } else if (gap->domain == M2D_ERR_NONE) {
        m2d_error_set(gap, M2D_ERR_FORMAT, 0,
                      "%s; the files before it are loaded: run load again once the file is there, or pass "
                      "--allow-offset-gaps if the topic's offsets have such holes",
                      msg);
      }
      return true;
    }
    if (pos >= 0 && f->start > pos)
      m2d_debug("%s[%" PRId32 "]: offsets %lld to %lld in no file (--allow-offset-gaps)", p->topic, p->partition,
                (long long)pos, (long long)f->start - 1);
    if (o->max_files_per_batch > 0 && *taken >= o->max_files_per_batch) {
      *limited = true;
      return true;
    }
    bool took;
    int64_t lines = 0;
    if (!read_file(k, p, f, pos, &took, &lines, err)) {
      m2d_error_t why = *err;
      if (!flush(k, err)) return false; /* the whole files before it stay committed */
      *err = why;
      return false;
    }
    free(p->read_name);
    p->read_name = strdup(f->name); /* NULL (out of memory) only means reading it again */
    shape_of(f, p->read_shape, sizeof p->read_shape);
    p->read_lines = lines;
    if (took) {
      k->sum->files_taken++;
      (*taken)++;
    } else if (first_round) {
      k->sum->files_skipped++;
    }
    set_last(p, f->name);
    if (k->nev >= max && !flush(k, err)) return false;
  }
  return true;
}

static bool round_(lc_t *k, int64_t round, int *taken, bool *limited, m2d_error_t *gap, m2d_error_t *err) {
  const m2d_load_options_t *o = k->o;
  int full_every = o->full_listing_every > 0 ? o->full_listing_every : 1;
  bool full = round % full_every == 0;
  cfiles_t files = {0};
  int others = 0;
  bool ok = true;
  for (int i = 0; ok && i < o->ninputs; i++) ok = list_input(k, i, full, &files, &others, err);
  if (ok && others && !k->other_formats_warned) {
    m2d_warn("%d sink file(s) of another format than JSON (.avro, .parquet, .bin ...) passed over: load reads the "
             "files of the sink's JsonFormat (.json, .json.gz)",
             others);
    k->other_formats_warned = true;
  }
  if (ok && round == 0 && files.n == 0 && !o->watch)
    ok = m2d_error_set(err, M2D_ERR_USAGE, 0,
                       "no Kafka Connect sink files (<topic>+<partition>+<startOffset>.json or .json.gz) under %s%s",
                       o->inputs[0], o->ninputs > 1 ? " and the other inputs" : "");
  if (ok) qsort_r(files.v, files.n, sizeof *files.v, file_order, k);
  for (int i = 0; i < k->nparts; i++) k->parts[i].held = false;
  for (size_t i = 0; ok && i < files.n && !*limited;) {
    size_t j = i;
    while (j < files.n && files.v[j].part == files.v[i].part) j++;
    ok = take_partition(k, &k->parts[files.v[i].part], files.v + i, j - i, taken, limited, round == 0, gap, err);
    if (o->stop && *o->stop) break;
    i = j;
  }
  if (ok) ok = flush(k, err);
  files_free(&files);
  return ok;
}

bool m2d_load_connect_run(const m2d_load_options_t *o, m2d_load_summary_t *sum, m2d_error_t *err) {
  memset(sum, 0, sizeof *sum);
  lc_t k = {.o = o, .sum = sum, .batch_files = json_array()};
  bool ok = (k.inputs = calloc((size_t)o->ninputs + 1, sizeof *k.inputs)) != NULL ||
            m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory");
  for (int i = 0; ok && i < o->ninputs; i++) {
    const char *in = o->inputs[i];
    k.inputs[i].url = in;
    if (m2d_store_is_remote(in)) {
      ok = (k.inputs[i].st = m2d_store_open(in, err)) != NULL;
      continue;
    }
    struct stat st;
    char root[PATH_MAX];
    if (stat(in, &st) != 0) ok = m2d_error_set(err, M2D_ERR_USAGE, errno, "cannot read %s: %s", in, strerror(errno));
    else if (!S_ISDIR(st.st_mode))
      ok = m2d_error_set(err, M2D_ERR_USAGE, 0,
                         "%s is a file: give the folder the sink writes to (its topics.dir, or a topic's or partition's "
                         "folder), so that every file of a partition is seen in offset order",
                         in);
    else if (!realpath(in, root)) ok = m2d_error_set(err, M2D_ERR_IO, errno, "%s: %s", in, strerror(errno));
    else ok = (k.inputs[i].st = m2d_store_local_new(root, err)) != NULL;
  }
  if (ok && o->rejects && !(k.rejects = fopen(o->rejects, "a")))
    ok = m2d_error_set(err, M2D_ERR_IO, errno, "cannot open the rejects file %s: %s", o->rejects, strerror(errno));
  if (ok && o->mirror) {
    m2d_mirror_options_t mo = {.table = o->table, .rewrite = o->rewrite, .soft_delete = o->soft_delete,
                               .change_data_feed = o->change_data_feed, .codec = o->codec, .level = o->level};
    ok = (k.mirror = m2d_mirror_open(&mo, err)) && m2d_mirror_build_index(k.mirror, err);
  }
  if (ok && o->changelog) {
    m2d_table_writer_options_t lo = {.table = o->changelog_table, .codec = o->codec, .level = o->level,
                                     .target_file_size = o->target_file_size};
    ok = (k.log = m2d_table_writer_open(&lo, err)) != NULL;
  }
  m2d_error_t gap = {0};
  for (int64_t round = 0; ok; round++) {
    int taken = 0;
    bool limited = false;
    ok = round_(&k, round, &taken, &limited, &gap, err);
    sum->rounds++;
    if (ok && o->watch && taken) m2d_info("load --watch: %d new file(s) loaded", taken);
    if (!ok || !o->watch || (o->stop && *o->stop)) break;
    if (o->max_rounds > 0 && round + 1 >= o->max_rounds) break;
    /* a full batch: more may be waiting, list again now */
    if (!limited && !m2d_load_sleep_ms(o->interval_ms, o->stop)) break;
  }
  if (ok && gap.domain != M2D_ERR_NONE) {
    *err = gap;
    ok = false;
  }
  for (int i = 0; i < k.nparts; i++) sum->gaps += k.parts[i].held;
  sum->partitions = k.nparts;
  sum->interrupted = o->stop && *o->stop;
  sum->version = k.mirror ? m2d_table_writer_version(m2d_mirror_writer(k.mirror)) : -1;
  sum->changelog_version = k.log ? m2d_table_writer_version(k.log) : -1;
  sum->rescued_fields = json_object();
  if (k.mirror) json_object_update(sum->rescued_fields, (json_t *)m2d_table_writer_rescued_fields(m2d_mirror_writer(k.mirror)));
  clear_batch(&k);
  free(k.ev);
  free(k.evpart);
  free(k.evoff);
  for (int i = 0; i < k.nparts; i++) free(k.parts[i].dir), free(k.parts[i].last_name), free(k.parts[i].read_name);
  free(k.parts);
  for (int i = 0; k.inputs && i < o->ninputs; i++) m2d_store_destroy(k.inputs[i].st);
  free(k.inputs);
  if (ok && k.mirror) m2d_mirror_save_index(k.mirror);
  m2d_mirror_close(k.mirror);
  m2d_table_writer_destroy(k.log);
  if (k.rejects) fclose(k.rejects);
  json_decref(k.batch_files);
  return ok;
}
