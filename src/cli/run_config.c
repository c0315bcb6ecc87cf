#include "cli/run_config.h"

#include "cli/sync_args.h"

#include <fnmatch.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool fail_at(const m2d_run_config_t *c, int line, m2d_error_t *err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static bool fail_at(const m2d_run_config_t *c, int line, m2d_error_t *err, const char *fmt, ...) {
  char msg[900];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return m2d_error_set(err, M2D_ERR_USAGE, 0, "%s:%d: %s", c->path, line, msg);
}

static const char *own(m2d_run_config_t *c, char *s) {
  if (!s) return NULL;
  if (c->nowned == c->owned_cap) {
    int cap = c->owned_cap ? c->owned_cap * 2 : 32;
    char **o = realloc(c->owned, (size_t)cap * sizeof *o);
    if (!o) {
      free(s);
      return NULL;
    }
    c->owned = o;
    c->owned_cap = cap;
  }
  return c->owned[c->nowned++] = s;
}

/* --- ${NAME} from the environment ---------------------------------------------------------- */

static bool expand(m2d_run_config_t *c, m2d_toml_t *v, m2d_error_t *err) {
  if (v->type == M2D_TOML_ARRAY || v->type == M2D_TOML_TABLE) {
    for (int i = 0; i < v->n; i++)
      if (!expand(c, v->items[i], err)) return false;
    return true;
  }
  if (v->type != M2D_TOML_STRING || !strstr(v->str, "${")) return true;
  size_t cap = strlen(v->str) + 1, n = 0;
  char *out = malloc(cap);
  for (const char *p = v->str; out && *p;) {
    if (p[0] != '$' || p[1] != '{') {
      out[n++] = *p++;
      continue;
    }
    const char *end = strchr(p + 2, '}');
    if (!end || end == p + 2) {
      free(out);
      return fail_at(c, v->line, err, "'${' without a variable name and a closing '}' in %s: write ${NAME}",
                     v->key ? v->key : "a string");
    }
    char name[256];
    snprintf(name, sizeof name, "%.*s", (int)(end - p - 2), p + 2);
    const char *val = getenv(name);
    if (!val) {
      free(out);
      return fail_at(c, v->line, err, "the environment variable %s (in %s) is not set: export it before the run",
                     name, v->key ? v->key : "a string");
    }
    size_t vl = strlen(val);
    char *grown = realloc(out, cap += vl);
    if (!grown) break;
    out = grown;
    memcpy(out + n, val, vl);
    n += vl;
    p = end + 1;
  }
  if (!out) return m2d_error_set(err, M2D_ERR_INTERNAL, 0, "out of memory");
  out[n] = 0;
  free(v->str);
  v->str = out;
  return true;
}

/* A password written in a URI ("scheme://user:password@") rather than taken from ${...}. */
static bool holds_password(const char *uri) {
  const char *s = strstr(uri, "://");
  if (!s) return false;
  s += 3;
  const char *at = strrchr(s, '@'), *slash = strchr(s, '/');
  if (!at || (slash && slash < at)) return false;
  const char *colon = memchr(s, ':', (size_t)(at - s));
  if (!colon || colon + 1 == at) return false;
  return strncmp(colon + 1, "${", 2) != 0;
}

/* --- sync's options from a table ---------------------------------------------------------- */

static int spec_index(const char *name) {
  for (int i = 0; m2d_sync_opts[i].name; i++)
    if (strcmp(m2d_sync_opts[i].name, name) == 0) return i;
  return -1;
}

static void set_arg(m2d_args_t *a, const char *name, const char *value) {
  int i = spec_index(name);
  a->values[i] = value;
  a->seen[i] = true;
}

/* Applies the members of table t (a section) to a, skipping the keys in skip (handled by the
 * caller). */
static bool apply(m2d_run_config_t *c, m2d_args_t *a, const m2d_toml_t *t, const char *section,
                  const char *const *skip, m2d_error_t *err) {
  for (int m = 0; m < t->n; m++) {
    const m2d_toml_t *v = t->items[m];
    char k[128];
    snprintf(k, sizeof k, "%s", v->key);
    for (char *p = k; *p; p++)
      if (*p == '_') *p = '-';
    bool skipped = false;
    for (int s = 0; skip && skip[s]; s++) skipped |= strcmp(k, skip[s]) == 0;
    if (skipped) continue;
    if (!strcmp(k, "uri") || !strcmp(k, "db") || !strcmp(k, "metrics-port") || !strcmp(k, "collection") ||
        !strcmp(k, "name"))
      return fail_at(c, v->line, err, "'%s' does not belong in [%s]: %s", v->key, section,
                     !strcmp(k, "uri") ? "the URI is [source] uri"
                     : !strcmp(k, "db") ? "the database is [source] db (a [[collection]] may set its own)"
                     : !strcmp(k, "metrics-port") ? "the metrics port is [metrics] port"
                                                   : "a [[collection]] is named by its name key");
    int i = spec_index(k);
    if (i < 0)
      return fail_at(c, v->line, err,
                     "unknown key '%s' in [%s]; the keys are sync's options (see 'mongo2delta sync --help')",
                     v->key, section);
    const m2d_opt_spec_t *spec = &m2d_sync_opts[i];
    if (!spec->arg) {
      if (v->type != M2D_TOML_BOOL)
        return fail_at(c, v->line, err, "'%s' is a flag: write %s = true or false", v->key, v->key);
      a->seen[i] = v->b;
      a->values[i] = NULL;
    } else if (v->type == M2D_TOML_STRING) {
      a->values[i] = v->str;
      a->seen[i] = true;
    } else if (v->type == M2D_TOML_INT) {
      char num[32];
      snprintf(num, sizeof num, "%" PRId64, v->i);
      if (!(a->values[i] = own(c, strdup(num)))) return m2d_error_set(err, M2D_ERR_INTERNAL, 0, "out of memory");
      a->seen[i] = true;
    } else {
      return fail_at(c, v->line, err, "'%s' takes a %s, not a %s", v->key, spec->arg, m2d_toml_type_name(v->type));
    }
  }
  return true;
}

static m2d_run_entry_t *add_entry(m2d_run_config_t *c, const m2d_args_t *base, const char *db, const char *coll,
                                  int line) {
  if (c->n == c->cap) {
    int cap = c->cap ? c->cap * 2 : 8;
    m2d_run_entry_t *e = realloc(c->entries, (size_t)cap * sizeof *e);
    if (!e) return NULL;
    c->entries = e;
    c->cap = cap;
  }
  m2d_run_entry_t *e = &c->entries[c->n++];
  memset(e, 0, sizeof *e);
  e->args = *base;
  e->line = line;
  snprintf(e->name, sizeof e->name, "%s.%s", db, coll);
  set_arg(&e->args, "uri", c->uri);
  set_arg(&e->args, "db", db);
  set_arg(&e->args, "collection", coll);
  return e;
}

static const m2d_toml_t *section(m2d_run_config_t *c, const char *name, m2d_toml_type_t type, m2d_error_t *err,
                                 bool *ok) {
  const m2d_toml_t *t = m2d_toml_get(c->root, name);
  if (t && t->type != type && !(type == M2D_TOML_ARRAY && t->type == M2D_TOML_TABLE))
    *ok = fail_at(c, t->line, err, "'%s' must be a %s section", name,
                  type == M2D_TOML_ARRAY ? "[[collection]]" : "[...]");
  if (t && type == M2D_TOML_ARRAY && !t->array_of_tables)
    *ok = fail_at(c, t->line, err, "write each collection as a [[collection]] section (two brackets)");
  return *ok ? t : NULL;
}

static bool string_key(m2d_run_config_t *c, const m2d_toml_t *t, const char *key, const char *where, bool required,
                       const char **out, m2d_error_t *err) {
  const m2d_toml_t *v = m2d_toml_get(t, key);
  if (!v) {
    if (required) return fail_at(c, t->line, err, "[%s] needs %s = \"...\"", where, key);
    return true;
  }
  if (v->type != M2D_TOML_STRING || !v->str[0])
    return fail_at(c, v->line, err, "%s must be a non-empty string", key);
  *out = v->str;
  return true;
}

static bool patterns(m2d_run_config_t *c, const m2d_toml_t *v, const char **out, int *n, m2d_error_t *err) {
  if (v->type != M2D_TOML_ARRAY || (v->n && v->items[0]->type != M2D_TOML_STRING))
    return fail_at(c, v->line, err, "%s must be an array of glob patterns, e.g. [\"orders*\"]", v->key);
  if (v->n > 64) return fail_at(c, v->line, err, "%s has more than 64 patterns", v->key);
  for (int i = 0; i < v->n; i++) out[(*n)++] = v->items[i]->str;
  return true;
}

bool m2d_run_config_load(m2d_run_config_t *c, const char *path, m2d_error_t *err) {
  memset(c, 0, sizeof *c);
  c->path = path;
  c->metrics_port = -1;
  if (!(c->root = m2d_toml_parse_file(path, err))) return false;
  static const char *const sections[] = {"source", "metrics", "defaults", "collection", "all-collections", NULL};
  for (int i = 0; i < c->root->n; i++) {
    const m2d_toml_t *t = c->root->items[i];
    bool known = false;
    for (int s = 0; sections[s]; s++) known |= strcmp(t->key, sections[s]) == 0;
    if (!known)
      return fail_at(c, t->line, err,
                     "unknown %s '%s'; a config has [source], [metrics], [defaults], [[collection]] and "
                     "[all-collections]",
                     t->type == M2D_TOML_TABLE || t->array_of_tables ? "section" : "key", t->key);
  }
  bool ok = true;
  const m2d_toml_t *src = section(c, "source", M2D_TOML_TABLE, err, &ok);
  const m2d_toml_t *met = ok ? section(c, "metrics", M2D_TOML_TABLE, err, &ok) : NULL;
  const m2d_toml_t *def = ok ? section(c, "defaults", M2D_TOML_TABLE, err, &ok) : NULL;
  const m2d_toml_t *colls = ok ? section(c, "collection", M2D_TOML_ARRAY, err, &ok) : NULL;
  const m2d_toml_t *all = ok ? section(c, "all-collections", M2D_TOML_TABLE, err, &ok) : NULL;
  if (!ok) return false;
  if (!src) return fail_at(c, 1, err, "the config needs a [source] section with uri = \"${MONGO_URI}\" and db = \"...\"");
  for (int i = 0; i < src->n; i++)
    if (strcmp(src->items[i]->key, "uri") && strcmp(src->items[i]->key, "db"))
      return fail_at(c, src->items[i]->line, err, "unknown key '%s' in [source] (it has uri and db)",
                     src->items[i]->key);
  const m2d_toml_t *uri = m2d_toml_get(src, "uri");
  if (uri && uri->type == M2D_TOML_STRING && holds_password(uri->str))
    return fail_at(c, uri->line, err,
                   "uri holds a password: keep secrets out of the file, e.g. uri = \"${MONGO_URI}\" with the "
                   "URI in the environment variable MONGO_URI");
  if (!expand(c, c->root, err)) return false;
  if (!string_key(c, src, "uri", "source", true, &c->uri, err) ||
      !string_key(c, src, "db", "source", true, &c->db, err))
    return false;
  if (met) {
    for (int i = 0; i < met->n; i++) {
      const m2d_toml_t *v = met->items[i];
      if (strcmp(v->key, "port"))
        return fail_at(c, v->line, err, "unknown key '%s' in [metrics] (it has port)", v->key);
      if (v->type != M2D_TOML_INT || v->i < 0 || v->i > 65535)
        return fail_at(c, v->line, err, "port must be a whole number from 0 (any free port) to 65535");
      c->metrics_port = (int)v->i;
    }
  }
  m2d_args_t base = {.specs = m2d_sync_opts};
  if (def && !apply(c, &base, def, "defaults", NULL, err)) return false;
  for (int k = 0; colls && k < colls->n; k++) {
    const m2d_toml_t *t = colls->items[k];
    const char *name = NULL, *db = c->db;
    if (!string_key(c, t, "name", "[collection]", true, &name, err) ||
        !string_key(c, t, "db", "[collection]", false, &db, err))
      return false;
    m2d_run_entry_t *e = add_entry(c, &base, db, name, t->line);
    if (!e) return m2d_error_set(err, M2D_ERR_INTERNAL, 0, "out of memory");
    static const char *const skip[] = {"name", "db", NULL};
    if (!apply(c, &e->args, t, "[collection]", skip, err)) return false;
    if (!e->args.seen[spec_index("table")])
      return fail_at(c, t->line, err, "collection %s needs table = \"PATH\"", e->name);
    for (int j = 0; j < c->n - 1; j++)
      if (!strcmp(c->entries[j].name, e->name))
        return fail_at(c, t->line, err, "collection %s is listed twice (first on line %d)", e->name,
                       c->entries[j].line);
  }
  if (all) {
    c->all = true;
    c->all_line = all->line;
    c->all_args = base;
    if (!string_key(c, all, "table-root", "all-collections", true, &c->table_root, err) ||
        !string_key(c, all, "changelog-root", "all-collections", false, &c->changelog_root, err))
      return false;
    const m2d_toml_t *inc = m2d_toml_get(all, "include"), *exc = m2d_toml_get(all, "exclude");
    if (inc && !patterns(c, inc, c->include, &c->ninclude, err)) return false;
    if (exc && !patterns(c, exc, c->exclude, &c->nexclude, err)) return false;
    if (!inc) c->include[c->ninclude++] = "*";
    static const char *const skip[] = {"table-root", "changelog-root", "include", "exclude", NULL};
    if (!apply(c, &c->all_args, all, "all-collections", skip, err)) return false;
    for (int i = 0; i < all->n; i++)
      if (!strcmp(all->items[i]->key, "table") || !strcmp(all->items[i]->key, "changelog-table") ||
          !strcmp(all->items[i]->key, "changelog_table"))
        return fail_at(c, all->items[i]->line, err,
                       "[all-collections] takes table-root (and changelog-root), not %s: each collection's "
                       "tables are ROOT/<collection>",
                       all->items[i]->key);
    const char *mode = m2d_args_get(&c->all_args, "mode");
    if (mode && !strcmp(mode, "both") && !c->changelog_root)
      return fail_at(c, all->line, err, "[all-collections] with mode both needs changelog-root = \"PATH\"");
  }
  if (c->n == 0 && !c->all)
    return fail_at(c, 1, err, "the config names no collection: add [[collection]] sections or [all-collections]");
  return true;
}

bool m2d_run_config_matches(const m2d_run_config_t *c, const char *collection) {
  if (!c->all || !strncmp(collection, "system.", 7)) return false;
  char name[512];
  snprintf(name, sizeof name, "%s.%s", c->db, collection);
  for (int i = 0; i < c->n; i++)
    if (!strcmp(c->entries[i].name, name)) return false;
  bool in = false;
  for (int i = 0; i < c->ninclude && !in; i++) in = fnmatch(c->include[i], collection, 0) == 0;
  for (int i = 0; i < c->nexclude && in; i++) in = fnmatch(c->exclude[i], collection, 0) != 0;
  return in;
}

static const char *join(m2d_run_config_t *c, const char *root, const char *name) {
  size_t rl = strlen(root);
  while (rl > 1 && root[rl - 1] == '/') rl--;
  char *s = malloc(rl + strlen(name) + 2);
  if (s) sprintf(s, "%.*s/%s", (int)rl, root, name);
  return own(c, s);
}

bool m2d_run_config_add_matched(m2d_run_config_t *c, const char *collection, m2d_error_t *err) {
  m2d_run_entry_t *e = add_entry(c, &c->all_args, c->db, collection, c->all_line);
  const char *coll = e ? own(c, strdup(collection)) : NULL;
  const char *table = coll ? join(c, c->table_root, collection) : NULL;
  const char *log = table && c->changelog_root ? join(c, c->changelog_root, collection) : table;
  if (!log) return m2d_error_set(err, M2D_ERR_INTERNAL, 0, "out of memory");
  set_arg(&e->args, "collection", coll);
  set_arg(&e->args, "table", table);
  const char *mode = m2d_args_get(&e->args, "mode");
  if (c->changelog_root && mode && !strcmp(mode, "both")) set_arg(&e->args, "changelog-table", log);
  return true;
}

/* Comma-separated globs into out (owned by c). */
static bool split_patterns(m2d_run_config_t *c, const char *list, const char *option, const char **out, int *n,
                           m2d_error_t *err) {
  for (const char *p = list; p && *p;) {
    const char *comma = strchr(p, ',');
    size_t len = comma ? (size_t)(comma - p) : strlen(p);
    if (len) {
      if (*n == 64) return m2d_error_set(err, M2D_ERR_USAGE, 0, "%s has more than 64 patterns", option);
      if (!(out[(*n)++] = own(c, strndup(p, len)))) return m2d_error_set(err, M2D_ERR_INTERNAL, 0, "out of memory");
    }
    p = comma ? comma + 1 : NULL;
  }
  return true;
}

bool m2d_run_config_from_sync_args(m2d_run_config_t *c, const m2d_args_t *args, m2d_error_t *err) {
  memset(c, 0, sizeof *c);
  c->path = "sync --all-collections";
  c->metrics_port = -1;
  c->uri = m2d_args_get(args, "uri");
  c->db = m2d_args_get(args, "db");
  c->all = true;
  c->all_args = (m2d_args_t){.specs = m2d_sync_opts};
  for (int i = 0; m2d_sync_opts[i].name; i++) {
    const char *name = m2d_sync_opts[i].name;
    if (!m2d_args_flag(args, name) || !strcmp(name, "uri") || !strcmp(name, "db") || !strcmp(name, "metrics-port"))
      continue;
    set_arg(&c->all_args, name, m2d_sync_opts[i].arg ? m2d_args_get(args, name) : "true");
  }
  int64_t port = -1;
  if (!m2d_args_int_if_given(args, "metrics-port", 0, 65535, &port, err)) return false;
  c->metrics_port = (int)port;
  c->table_root = m2d_args_get(args, "table-root");
  c->changelog_root = m2d_args_get(args, "changelog-root");
  if (!c->table_root || !c->table_root[0])
    return m2d_error_set(err, M2D_ERR_USAGE, 0, "sync --all-collections needs --table-root ROOT (each collection "
                                                "into ROOT/<collection>)");
  const char *mode = m2d_args_get(&c->all_args, "mode");
  if (mode && !strcmp(mode, "both") && !c->changelog_root)
    return m2d_error_set(err, M2D_ERR_USAGE, 0, "sync --all-collections --mode both needs --changelog-root ROOT");
  if (!split_patterns(c, m2d_args_get(args, "include"), "--include", c->include, &c->ninclude, err) ||
      !split_patterns(c, m2d_args_get(args, "exclude"), "--exclude", c->exclude, &c->nexclude, err))
    return false;
  if (c->ninclude == 0) c->include[c->ninclude++] = "*";
  return true;
}

void m2d_run_config_free(m2d_run_config_t *c) {
  m2d_toml_free(c->root);
  free(c->entries);
  for (int i = 0; i < c->nowned; i++) free(c->owned[i]);
  free(c->owned);
  memset(c, 0, sizeof *c);
}
