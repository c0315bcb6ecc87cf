#include "core/toml.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  const char *p;
  const char *name;
  int line;
  int depth; /* arrays open: bounded, so that nesting cannot exhaust the stack */
  m2d_error_t *err;
} parser_t;

static bool fail(parser_t *ps, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool fail(parser_t *ps, const char *fmt, ...) {
  char msg[900];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return m2d_error_set(ps->err, M2D_ERR_USAGE, 0, "%s:%d: %s", ps->name, ps->line, msg);
}

static m2d_toml_t *node(m2d_toml_type_t type, int line) {
  m2d_toml_t *t = calloc(1, sizeof *t);
  if (t) t->type = type, t->line = line;
  return t;
}

static bool add(m2d_toml_t *parent, m2d_toml_t *child) {
  if (parent->n == parent->cap) {
    int cap = parent->cap ? parent->cap * 2 : 8;
    m2d_toml_t **items = realloc(parent->items, (size_t)cap * sizeof *items);
    if (!items) return false;
    parent->items = items;
    parent->cap = cap;
  }
  parent->items[parent->n++] = child;
  return true;
}

const m2d_toml_t *m2d_toml_get(const m2d_toml_t *t, const char *key) {
  if (!t || t->type != M2D_TOML_TABLE) return NULL;
  for (int i = 0; i < t->n; i++)
    if (strcmp(t->items[i]->key, key) == 0) return t->items[i];
  return NULL;
}

const char *m2d_toml_type_name(m2d_toml_type_t type) {
  static const char *const names[] = {"string", "integer", "boolean", "array", "table"};
  return names[type];
}

void m2d_toml_free(m2d_toml_t *t) {
  if (!t) return;
  for (int i = 0; i < t->n; i++) m2d_toml_free(t->items[i]);
  free(t->items);
  free(t->key);
  free(t->str);
  free(t);
}

/* --- lexing ------------------------------------------------------------------------------- */

static void skip_blank(parser_t *ps) {
  while (*ps->p == ' ' || *ps->p == '\t') ps->p++;
}

/* Blanks, comments and newlines (inside arrays). */
static void skip_space(parser_t *ps) {
  for (;;) {
    skip_blank(ps);
    if (*ps->p == '#')
      while (*ps->p && *ps->p != '\n') ps->p++;
    if (*ps->p == '\r' && ps->p[1] == '\n') ps->p++;
    if (*ps->p != '\n') return;
    ps->p++;
    ps->line++;
  }
}

/* After a line's content: blanks, a comment, then the end of the line or of the text. */
static bool end_of_line(parser_t *ps) {
  skip_blank(ps);
  if (*ps->p == '#')
    while (*ps->p && *ps->p != '\n') ps->p++;
  if (*ps->p == '\r' && ps->p[1] == '\n') ps->p++;
  if (*ps->p == '\n') {
    ps->p++;
    ps->line++;
    return true;
  }
  if (!*ps->p) return true;
  return fail(ps, "unexpected '%c' after the value (one key = value per line; a comment starts with #)", *ps->p);
}

static bool is_bare(char c) { return isalnum((unsigned char)c) || c == '_' || c == '-'; }

static bool put_utf8(char *out, size_t *n, unsigned long cp) {
  if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
  if (cp < 0x80) out[(*n)++] = (char)cp;
  else if (cp < 0x800) out[(*n)++] = (char)(0xC0 | cp >> 6), out[(*n)++] = (char)(0x80 | (cp & 0x3F));
  else if (cp < 0x10000)
    out[(*n)++] = (char)(0xE0 | cp >> 12), out[(*n)++] = (char)(0x80 | ((cp >> 6) & 0x3F)),
    out[(*n)++] = (char)(0x80 | (cp & 0x3F));
  else
    out[(*n)++] = (char)(0xF0 | cp >> 18), out[(*n)++] = (char)(0x80 | ((cp >> 12) & 0x3F)),
    out[(*n)++] = (char)(0x80 | ((cp >> 6) & 0x3F)), out[(*n)++] = (char)(0x80 | (cp & 0x3F));
  return true;
}

/* A "basic" or 'literal' string at ps->p, into a new allocation. */
static char *string(parser_t *ps) {
  char q = *ps->p;
  if (ps->p[1] == q && ps->p[2] == q) {
    fail(ps, "multi-line strings (%c%c%c) are not supported: write the value on one line", q, q, q);
    return NULL;
  }
  const char *s = ++ps->p;
  size_t cap = strcspn(s, "\n") + 8, n = 0; /* a string ends on its line; an escape never grows */
  char *out = malloc(cap);
  if (!out) {
    fail(ps, "out of memory");
    return NULL;
  }
  for (;;) {
    char c = *ps->p;
    if (!c || c == '\n' || (c == '\r' && ps->p[1] == '\n')) {
      fail(ps, "the string has no closing %c", q);
      break;
    }
    ps->p++;
    if (c == q) {
      out[n] = 0;
      return out;
    }
    if ((unsigned char)c < 0x20 && c != '\t') {
      fail(ps, "a control character (0x%02x) in a string: write it as an escape", (unsigned)c);
      break;
    }
    if (c != '\\' || q == '\'') {
      out[n++] = c;
      continue;
    }
    char e = *ps->p++;
    const char *simple = strchr("btnfr\"\\", e);
    if (e && simple) {
      static const char map[] = "\b\t\n\f\r\"\\";
      out[n++] = map[simple - "btnfr\"\\"];
      continue;
    }
    if (e == 'u' || e == 'U') {
      int digits = e == 'u' ? 4 : 8;
      unsigned long cp = 0;
      int k = 0;
      for (; k < digits && isxdigit((unsigned char)ps->p[k]); k++)
        cp = cp * 16 + (unsigned long)(isdigit((unsigned char)ps->p[k]) ? ps->p[k] - '0' : (tolower(ps->p[k]) - 'a' + 10));
      if (k == digits && put_utf8(out, &n, cp)) {
        ps->p += digits;
        continue;
      }
      fail(ps, "\\%c needs %d hexadecimal digits of a Unicode scalar value", e, digits);
      break;
    }
    fail(ps, "unknown escape \\%c in a string (use \\\\ for a backslash, or a 'literal string')", e ? e : ' ');
    break;
  }
  free(out);
  return NULL;
}

/* A bare or quoted key. */
static char *key(parser_t *ps) {
  if (*ps->p == '"' || *ps->p == '\'') return string(ps);
  const char *s = ps->p;
  while (is_bare(*ps->p)) ps->p++;
  if (ps->p == s) {
    if (!*ps->p || *ps->p == '\n') fail(ps, "a key is missing");
    else fail(ps, "unexpected '%c' where a key should be (keys are letters, digits, _ and -, or \"quoted\")", *ps->p);
    return NULL;
  }
  return strndup(s, (size_t)(ps->p - s));
}

static m2d_toml_t *value(parser_t *ps);

static m2d_toml_t *array(parser_t *ps) {
  if (ps->depth >= 16) {
    fail(ps, "arrays nested more than 16 deep");
    return NULL;
  }
  m2d_toml_t *a = node(M2D_TOML_ARRAY, ps->line);
  ps->p++;
  ps->depth++;
  for (;;) {
    skip_space(ps);
    if (*ps->p == ']') {
      ps->p++;
      ps->depth--;
      return a;
    }
    m2d_toml_t *v = value(ps);
    if (!v) break;
    if (a->n && a->items[0]->type != v->type) {
      fail(ps, "an array's elements must be of one type (a %s after a %s)", m2d_toml_type_name(v->type),
           m2d_toml_type_name(a->items[0]->type));
      m2d_toml_free(v);
      break;
    }
    add(a, v);
    skip_space(ps);
    if (*ps->p == ',') ps->p++;
    else if (*ps->p != ']') {
      fail(ps, *ps->p ? "expected ',' or ']' in the array, not '%c'" : "the array has no closing ]%c", *ps->p);
      break;
    }
  }
  m2d_toml_free(a);
  return NULL;
}

static m2d_toml_t *value(parser_t *ps) {
  char c = *ps->p;
  int line = ps->line;
  if (c == '"' || c == '\'') {
    char *s = string(ps);
    if (!s) return NULL;
    m2d_toml_t *v = node(M2D_TOML_STRING, line);
    v->str = s;
    return v;
  }
  if (c == '[') return array(ps);
  if (c == '{') {
    fail(ps, "inline tables ({...}) are not supported: use a [table] section");
    return NULL;
  }
  const char *s = ps->p;
  while (*ps->p && !strchr(" \t\r\n#,]", *ps->p)) ps->p++;
  size_t len = (size_t)(ps->p - s);
  if (len == 0) {
    fail(ps, "a value is missing");
    return NULL;
  }
  if ((len == 4 && !strncmp(s, "true", 4)) || (len == 5 && !strncmp(s, "false", 5))) {
    m2d_toml_t *v = node(M2D_TOML_BOOL, line);
    v->b = len == 4;
    return v;
  }
  /* an integer: optional sign, digits with single _ between them, no leading zero */
  char digits[32];
  size_t n = 0, i = 0;
  bool ok = true;
  if (s[0] == '+' || s[0] == '-') digits[n++] = s[i++];
  size_t first = i;
  for (; ok && i < len; i++) {
    if (isdigit((unsigned char)s[i]) && n < sizeof digits - 1) digits[n++] = s[i];
    else if (s[i] == '_' && i > first && i + 1 < len && isdigit((unsigned char)s[i - 1]) &&
             isdigit((unsigned char)s[i + 1]))
      continue;
    else ok = false;
  }
  digits[n] = 0;
  if (ok && i > first && !(s[first] == '0' && len - first > 1)) {
    errno = 0;
    char *end;
    long long x = strtoll(digits, &end, 10);
    if (errno || *end) {
      fail(ps, "the integer %.*s is out of range", (int)len, s);
      return NULL;
    }
    m2d_toml_t *v = node(M2D_TOML_INT, line);
    v->i = x;
    return v;
  }
  if (strpbrk(digits, "0123456789") && (memchr(s, '.', len) || memchr(s, 'e', len) || memchr(s, ':', len) || memchr(s + 1, '-', len - 1)))
    fail(ps, "'%.*s': floats and dates are not supported here: write a whole number or a \"string\"", (int)len, s);
  else
    fail(ps, "'%.*s' is not a value: strings are \"quoted\"; integers, true and false are bare", (int)len, s);
  return NULL;
}

/* --- structure ---------------------------------------------------------------------------- */

/* The member key of table t, made (an implied table) when missing. For a header: an array of
 * tables stands for its last element. */
static m2d_toml_t *descend(parser_t *ps, m2d_toml_t *t, char *k, bool *made) {
  *made = false;
  m2d_toml_t *c = (m2d_toml_t *)m2d_toml_get(t, k);
  if (!c) {
    c = node(M2D_TOML_TABLE, ps->line);
    c->key = k;
    add(t, c);
    *made = true;
    return c;
  }
  free(k);
  if (c->type == M2D_TOML_ARRAY && c->array_of_tables) return c->items[c->n - 1];
  if (c->type != M2D_TOML_TABLE) {
    fail(ps, "'%s' is already a %s (line %d), not a table", c->key, m2d_toml_type_name(c->type), c->line);
    return NULL;
  }
  return c;
}

static m2d_toml_t *header(parser_t *ps, m2d_toml_t *root) {
  bool aot = ps->p[1] == '[';
  ps->p += aot ? 2 : 1;
  m2d_toml_t *t = root;
  char path[512] = "";
  for (int parts = 1;; parts++) {
    if (parts > 16) {
      fail(ps, "the header [%s...] has more than 16 keys", path);
      return NULL;
    }
    skip_blank(ps);
    char *k = key(ps);
    if (!k) return NULL;
    size_t pl = strlen(path);
    snprintf(path + pl, sizeof path - pl, "%s%s", pl ? "." : "", k);
    skip_blank(ps);
    bool last = *ps->p != '.';
    if (!last) {
      ps->p++;
      bool made;
      if (!(t = descend(ps, t, k, &made))) return NULL;
      continue;
    }
    if (aot ? strncmp(ps->p, "]]", 2) : *ps->p != ']') {
      free(k);
      fail(ps, "the header [%s%s has no closing %s", aot ? "[" : "", path, aot ? "]]" : "]");
      return NULL;
    }
    ps->p += aot ? 2 : 1;
    m2d_toml_t *c = (m2d_toml_t *)m2d_toml_get(t, k);
    if (aot) {
      if (c && !(c->type == M2D_TOML_ARRAY && c->array_of_tables)) {
        fail(ps, "[[%s]]: '%s' is already a %s (line %d)", path, k, m2d_toml_type_name(c->type), c->line);
        free(k);
        return NULL;
      }
      if (!c) {
        c = node(M2D_TOML_ARRAY, ps->line);
        c->array_of_tables = true;
        c->key = k;
        add(t, c);
      } else {
        free(k);
      }
      m2d_toml_t *e = node(M2D_TOML_TABLE, ps->line);
      e->defined = true;
      add(c, e);
      return end_of_line(ps) ? e : NULL;
    }
    if (c && (c->type != M2D_TOML_TABLE || c->defined)) {
      fail(ps, "[%s] is defined twice (first on line %d)", path, c->line);
      free(k);
      return NULL;
    }
    bool made;
    if (!(c = descend(ps, t, k, &made))) return NULL;
    c->defined = true;
    c->line = ps->line;
    return end_of_line(ps) ? c : NULL;
  }
}

m2d_toml_t *m2d_toml_parse(const char *text, const char *name, m2d_error_t *err) {
  parser_t ps = {.p = text, .name = name ? name : "config", .line = 1, .err = err};
  m2d_toml_t *root = node(M2D_TOML_TABLE, 0), *cur = root;
  bool ok = true;
  if (!strncmp(ps.p, "\xEF\xBB\xBF", 3)) ps.p += 3;
  while (ok) {
    skip_space(&ps);
    if (!*ps.p) break;
    if (*ps.p == '[') {
      ok = (cur = header(&ps, root)) != NULL;
      continue;
    }
    int line = ps.line;
    char *k = key(&ps);
    if (!(ok = k != NULL)) break;
    skip_blank(&ps);
    if (*ps.p == '.') {
      ok = fail(&ps, "dotted keys (%s.…) are not supported: use a [%s] section", k, k);
      free(k);
      break;
    }
    if (*ps.p != '=') {
      ok = fail(&ps, "expected '=' after the key '%s'", k);
      free(k);
      break;
    }
    ps.p++;
    skip_blank(&ps);
    const m2d_toml_t *dup = m2d_toml_get(cur, k);
    if (dup) {
      ok = fail(&ps, "the key '%s' is given twice (first on line %d)", k, dup->line);
      free(k);
      break;
    }
    m2d_toml_t *v = value(&ps);
    if (!(ok = v != NULL)) {
      free(k);
      break;
    }
    v->key = k;
    v->line = line;
    add(cur, v);
    ok = end_of_line(&ps);
  }
  if (!ok) {
    m2d_toml_free(root);
    return NULL;
  }
  return root;
}

m2d_toml_t *m2d_toml_parse_file(const char *path, m2d_error_t *err) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    m2d_error_set(err, M2D_ERR_USAGE, errno, "cannot read the config file %s: %s", path, strerror(errno));
    return NULL;
  }
  size_t cap = 1 << 16, n = 0;
  char *text = malloc(cap);
  size_t r;
  while (text && (r = fread(text + n, 1, cap - n - 1, f)) > 0) {
    n += r;
    if (cap - n - 1 == 0 && cap < ((size_t)16 << 20)) {
      char *t = realloc(text, cap * 2);
      if (!t) break;
      text = t;
      cap *= 2;
    } else if (cap - n - 1 == 0) {
      break;
    }
  }
  bool too_big = !feof(f);
  fclose(f);
  if (!text || too_big) {
    free(text);
    m2d_error_set(err, M2D_ERR_USAGE, 0, "the config file %s is too large (16 MiB at most)", path);
    return NULL;
  }
  text[n] = 0;
  if (strlen(text) != n) {
    free(text);
    m2d_error_set(err, M2D_ERR_USAGE, 0, "the config file %s holds a NUL byte: it is not a text file", path);
    return NULL;
  }
  m2d_toml_t *t = m2d_toml_parse(text, path, err);
  free(text);
  return t;
}
