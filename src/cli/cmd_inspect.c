/* mongo2delta inspect: what a Delta table is, at its latest version or another. */
#include "cli/commands.h"
#include "delta/log.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double clock_s(clockid_t id) {
  struct timespec ts;
  clock_gettime(id, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Prints path as a JSON string (what json_dumps prints: paths are valid UTF-8). */
static void print_json_string(FILE *out, const char *path) {
  /* eight bytes at a time: none is '"', '\\' or a control character (below 0x20) */
  size_t n = strlen(path), i = 0;
  const uint64_t ones = 0x0101010101010101u, highs = 0x8080808080808080u;
  uint64_t bad = 0, w;
  for (; i + 8 <= n; i += 8) {
    memcpy(&w, path + i, 8);
    uint64_t q = w ^ (ones * '"'), bs = w ^ (ones * '\\');
    bad |= ((q - ones) & ~q) | ((bs - ones) & ~bs) | ((w - ones * 0x20) & ~w);
  }
  for (; i < n; i++) bad |= path[i] == '"' || path[i] == '\\' || (unsigned char)path[i] < 0x20 ? highs : 0;
  if (!(bad & highs)) {
    putc('"', out);
    fwrite(path, 1, n, out);
    putc('"', out);
    return;
  }
  json_t *s = json_string(path);
  char *t = s ? json_dumps(s, JSON_ENCODE_ANY) : NULL;
  fputs(t ? t : "null", out);
  free(t);
  json_decref(s);
}

static const m2d_opt_spec_t opts[] = {
    M2D_OPT_TABLE(""),
    {"version", "N", "read the table as of version N", "latest", false},
    {"json", NULL, "print one JSON object instead of text", NULL, false},
    {"timing", NULL, "print on stderr the time the log replay and the file list took (wall and CPU)", NULL, false},
    M2D_OPT_END,
};

/* Skips one JSON value at *p (strings, numbers, literals, nested objects and arrays). */
static bool skip_value(const char **p) {
  const char *q = *p;
  int depth = 0;
  do {
    while (*q == ' ' || *q == '\t' || *q == '\n' || *q == '\r' || *q == ',' || *q == ':') q++;
    if (*q == '"') {
      for (q++; *q && *q != '"'; q++)
        if (*q == '\\' && q[1]) q++;
      if (!*q) return false;
      q++;
    } else if (*q == '{' || *q == '[') {
      depth++, q++;
    } else if (*q == '}' || *q == ']') {
      if (--depth < 0) return false;
      q++;
    } else if (*q) {
      while (*q && !strchr(",:}] \t\r\n", *q)) q++;
    } else {
      return false;
    }
  } while (depth > 0);
  *p = q;
  return true;
}

/* numRecords of an add's stats JSON without parsing the rest (a table of 100,000 files spent
 * half of `inspect` parsing min/max values it does not print). */
static bool stats_num_records(const char *s, int64_t *out) {
  if (!s) return false;
  const char *p = s;
  while (*p == ' ') p++;
  if (*p++ != '{') return false;
  for (;;) {
    while (*p == ' ' || *p == ',' || *p == '\n') p++;
    if (*p != '"') return false;
    bool is = strncmp(p, "\"numRecords\"", 12) == 0;
    if (!skip_value(&p)) return false;
    while (*p == ' ') p++;
    if (*p++ != ':') return false;
    while (*p == ' ') p++;
    if (is) {
      char *end;
      long long v = strtoll(p, &end, 10);
      if (end == p || (*end && !strchr(",} \n", *end))) return false;
      *out = v;
      return true;
    }
    if (!skip_value(&p)) return false;
  }
}

static int run(const m2d_command_t *cmd, m2d_args_t *args) {
  (void)cmd;
  m2d_error_t err = {0};
  int64_t version = -1;
  if (!m2d_args_int_if_given(args, "version", 0, INT64_MAX, &version, &err)) return m2d_cli_fail(&err);
  m2d_store_t *store = m2d_store_open(m2d_args_get(args, "table"), &err);
  if (!store) return m2d_cli_fail(&err);
  delta_snapshot_t s;
  double w0 = clock_s(CLOCK_MONOTONIC), c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
  if (!delta_snapshot_load_ex(store, version, DELTA_LOAD_COMPACT | DELTA_LOAD_NO_TOMBSTONES, &s, &err)) {
    m2d_store_destroy(store);
    return m2d_cli_fail(&err);
  }
  /* the replay ends with the live files sorted by path (s.adds) */
  if (m2d_args_flag(args, "timing"))
    fprintf(stderr, "inspect timing: log replay %.1f ms wall, %.1f ms CPU (%zu files)\n",
            (clock_s(CLOCK_MONOTONIC) - w0) * 1e3, (clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0) * 1e3, s.nadds);
  json_int_t records = 0, bytes = 0;
  bool all_counted = true;
  size_t i;
  for (size_t k = 0; k < s.nadds; k++) {
    const delta_file_t *add = &s.adds[k];
    if (add->flags & DELTA_FILE_SIZE) bytes += add->size;
    int64_t nr;
    if (stats_num_records(add->stats, &nr)) {
      records += nr;
      json_t *dv = delta_file_dv(add);
      if (dv) records -= json_integer_value(json_object_get(dv, "cardinality"));
    } else {
      all_counted = false;
    }
  }
  json_t *out = json_object();
  json_object_set_new(out, "table", json_string(m2d_args_get(args, "table")));
  json_object_set_new(out, "version", json_integer(s.version));
  json_object_set(out, "protocol", s.protocol);
  json_object_set_new(out, "numFiles", json_integer((json_int_t)s.nadds));
  json_object_set_new(out, "numRecords", all_counted ? json_integer(records) : json_null());
  json_object_set_new(out, "sizeInBytes", json_integer(bytes));
  json_object_set(out, "schemaString", json_object_get(s.metadata, "schemaString"));
  json_object_set(out, "partitionColumns", json_object_get(s.metadata, "partitionColumns"));
  json_object_set(out, "configuration", json_object_get(s.metadata, "configuration"));
  json_object_set(out, "id", json_object_get(s.metadata, "id"));
  json_object_set(out, "appTransactions", s.txns);
  /* change streams (sync): where each is, from its last commit's commitInfo */
  json_t *streams = json_object();
  {
    const char *app;
    json_t *v;
    json_object_foreach(s.txns, app, v) {
      if (strncmp(app, "mongo2delta-sync:", 17) != 0) continue;
      m2d_error_t ferr = {0};
      json_t *ci = delta_find_txn_commit(store, s.version, app, json_integer_value(v), &ferr);
      json_t *pos = json_object_get(ci, "mongo2delta");
      json_t *st = json_pack("{sO}", "batch", v);
      if (pos) {
        json_object_set(st, "events", json_object_get(pos, "seq"));
        json_object_set(st, "clusterTime", json_object_get(pos, "clusterTime"));
        json_object_set(st, "resumeToken", json_object_get(pos, "resumeToken"));
        json_int_t t = json_integer_value(json_object_get(json_object_get(pos, "clusterTime"), "t"));
        time_t secs = (time_t)t;
        struct tm tm;
        char iso[32] = "";
        if (t > 0 && gmtime_r(&secs, &tm)) strftime(iso, sizeof iso, "%Y-%m-%dT%H:%M:%SZ", &tm);
        if (iso[0]) json_object_set_new(st, "lastEventTime", json_string(iso));
        json_object_set(st, "committedAtMs", json_object_get(ci, "timestamp"));
      } else {
        json_object_set_new(st, "error", json_string(ferr.message));
      }
      json_decref(ci);
      json_object_set_new(streams, app, st);
    }
  }
  json_object_set_new(out, "streams", streams);
  /* Kafka partitions (kafka-ingest): appId mongo2delta-kafka:<group>:<topic>:<partition>, version
   * = the next offset; group -> topic -> partition -> next offset */
  json_t *kafka = json_object();
  {
    const char *app;
    json_t *v;
    json_object_foreach(s.txns, app, v) {
      if (strncmp(app, "mongo2delta-kafka:", 18) != 0) continue;
      const char *rest = app + 18, *pc = strrchr(rest, ':');
      if (!pc || pc == rest) continue;
      const char *tc = pc - 1;
      while (tc > rest && *tc != ':') tc--;
      if (*tc != ':') continue; /* topics have no ':'; a group may */
      char group[512], topic[300];
      snprintf(group, sizeof group, "%.*s", (int)(tc - rest), rest);
      snprintf(topic, sizeof topic, "%.*s", (int)(pc - tc - 1), tc + 1);
      json_t *g = json_object_get(kafka, group);
      if (!g) json_object_set_new(kafka, group, g = json_object());
      json_t *t = json_object_get(g, topic);
      if (!t) json_object_set_new(g, topic, t = json_object());
      json_object_set(t, pc + 1, v);
    }
  }
  json_object_set_new(out, "kafka", kafka);
  json_object_set_new(out, "checkpointVersion", s.checkpoint >= 0 ? json_integer(s.checkpoint) : json_null());
  json_object_set(out, "lastCommits", s.commits);
  if (m2d_args_flag(args, "json")) {
    /* the object with "files" last, spliced in from the list built above */
    char *text = json_dumps(out, JSON_COMPACT);
    size_t len = text ? strlen(text) : 0;
    if (len < 2 || text[len - 1] != '}') {
      free(text);
      json_decref(out);
      delta_snapshot_free(&s);
      m2d_store_destroy(store);
      m2d_error_set(&err, M2D_ERR_LIMIT, 0, "out of memory printing the table");
      return m2d_cli_fail(&err);
    }
    static char obuf[1 << 16];
    setvbuf(stdout, obuf, _IOFBF, sizeof obuf);
    fwrite(text, 1, len - 1, stdout);
    fputs(",\"files\":[", stdout);
    for (size_t k = 0; k < s.nadds; k++) {
      if (k) putc(',', stdout);
      print_json_string(stdout, s.adds[k].path ? s.adds[k].path : "");
    }
    fputs("]}\n", stdout);
    fflush(stdout);
    free(text);
  } else {
    printf("table:         %s\n", m2d_args_get(args, "table"));
    printf("version:       %lld%s\n", (long long)s.version,
           s.checkpoint >= 0 ? "" : " (no checkpoint)");
    if (s.checkpoint >= 0) printf("checkpoint:    %lld\n", (long long)s.checkpoint);
    char *proto = json_dumps(s.protocol, JSON_COMPACT);
    printf("protocol:      %s\n", proto);
    free(proto);
    char *pc = json_dumps(json_object_get(s.metadata, "partitionColumns"), JSON_COMPACT);
    printf("partitioned:   %s\n", pc ? pc : "[]");
    free(pc);
    printf("files:         %zu (%lld bytes)\n", s.nadds, (long long)bytes);
    if (all_counted) printf("rows:          %lld\n", (long long)records);
    else printf("rows:          unknown (some files have no statistics)\n");
    const char *app;
    json_t *v;
    json_object_foreach(s.txns, app, v) {
      if (strncmp(app, "mongo2delta-kafka:", 18) == 0) continue; /* below, per partition */
      json_t *st = json_object_get(streams, app);
      if (st && json_object_get(st, "events"))
        printf("stream:        %s at batch %lld: %lld events applied, the last from %s\n", app,
               (long long)json_integer_value(v), (long long)json_integer_value(json_object_get(st, "events")),
               json_string_value(json_object_get(st, "lastEventTime")) ?: "?");
      else
        printf("stream:        %s at %lld\n", app, (long long)json_integer_value(v));
    }
    const char *gname, *tname, *pname;
    json_t *g, *tp, *off;
    json_object_foreach(kafka, gname, g) json_object_foreach(g, tname, tp) {
      printf("kafka:         group %s, topic %s:", gname, tname);
      json_object_foreach(tp, pname, off) printf(" [%s] next offset %lld", pname, (long long)json_integer_value(off));
      printf("\n");
    }
    printf("schema:\n");
    json_t *schema = json_loads(json_string_value(json_object_get(s.metadata, "schemaString")) ?: "{}", 0, NULL);
    json_t *f;
    json_array_foreach(json_object_get(schema, "fields"), i, f) {
      json_t *t = json_object_get(f, "type");
      char *ts = json_is_string(t) ? strdup(json_string_value(t)) : json_dumps(t, JSON_COMPACT);
      printf("  %s: %s%s\n", json_string_value(json_object_get(f, "name")), ts,
             json_is_false(json_object_get(f, "nullable")) ? " not null" : "");
      free(ts);
    }
    json_decref(schema);
    printf("last commits:\n");
    json_t *c;
    json_array_foreach(s.commits, i, c)
        printf("  %lld  %s  %lld\n", (long long)json_integer_value(json_object_get(c, "version")),
               json_string_value(json_object_get(c, "operation")) ?: "?",
               (long long)json_integer_value(json_object_get(c, "timestamp")));
  }
  json_decref(out);
  delta_snapshot_free(&s);
  m2d_store_destroy(store);
  return 0;
}

const m2d_command_t m2d_cmd_inspect = {
    .name = "inspect",
    .summary = "show a Delta table: version, protocol, schema, files, rows, stream positions, commits",
    .description = "Reads a Delta table's log (checkpoint and JSON commits) and prints its version, protocol\n"
                   "and features, partition columns, schema, number of files, bytes and rows (from the files'\n"
                   "statistics), the version recorded per stream (txn appId), the next offset of each Kafka\n"
                   "partition kafka-ingest applied, and the last commits.\n"
                   "--json prints one object (keys version, numFiles, numRecords, schemaString,\n"
                   "appTransactions, protocol, partitionColumns, sizeInBytes, files, ...).",
    .example = "mongo2delta inspect --table ./demo/lake/users --json",
    .opts = opts,
    .run = run,
};
