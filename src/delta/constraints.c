#include "delta/constraints.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_DEPTH 64

typedef enum { N_COL, N_LIT, N_CMP, N_ISNULL, N_IN, N_AND, N_OR, N_NOT } node_kind_t;
typedef enum { C_EQ, C_NE, C_LT, C_LE, C_GT, C_GE } cmp_t;
typedef enum { V_NULL, V_INT, V_NUM, V_STR, V_BOOL, V_OTHER } vkind_t;

typedef struct {
  vkind_t k;
  int64_t i;
  double d;
  bool b;
  const char *s;
  size_t len;
} value_t;

typedef struct node {
  node_kind_t kind;
  cmp_t cmp;
  bool negate;          /* IS NOT NULL, NOT IN */
  char **path;          /* N_COL: its segments */
  int npath;
  value_t lit;          /* N_LIT (strings point into litbuf) */
  char *litbuf;
  struct node **kids;
  int nkids;
} node_t;

struct delta_constraint {
  node_t *root;
  node_t **cols; /* the column nodes, for describe */
  int ncols;
};

/* --- tokens ------------------------------------------------------------------------------ */

typedef enum { T_END, T_IDENT, T_QIDENT, T_NUM, T_STR, T_OP, T_LP, T_RP, T_COMMA, T_DOT } tok_kind_t;

typedef struct {
  const char *src, *p;
  tok_kind_t kind;
  const char *start; /* the token's text */
  size_t len;
  char *text;        /* T_QIDENT and T_STR: unquoted */
  m2d_error_t *err;
  bool failed;
  delta_constraint_t *c;
  int depth;
} parser_t;

static bool is_kw(const parser_t *ps, const char *kw);
static bool reserved(const parser_t *ps);

static bool fail(parser_t *ps, const char *what) {
  if (!ps->failed)
    m2d_error_set(ps->err, M2D_ERR_FORMAT, 0, "%s at offset %d of the expression '%s'", what,
                  (int)(ps->start - ps->src), ps->src);
  ps->failed = true;
  return false;
}

/* An unquoted copy of a quoted token (quote doubled or backslash-escaped). */
static char *unquote(const char *s, size_t len, char q, bool backslash) {
  char *out = malloc(len + 1);
  size_t n = 0;
  for (size_t i = 1; out && i + 1 < len; i++) {
    if (backslash && s[i] == '\\' && i + 2 < len) i++;
    else if (s[i] == q && i + 2 < len && s[i + 1] == q) i++;
    out[n++] = s[i];
  }
  if (out) out[n] = '\0';
  return out;
}

static bool next(parser_t *ps) {
  free(ps->text);
  ps->text = NULL;
  while (isspace((unsigned char)*ps->p)) ps->p++;
  const char *p = ps->p;
  bool first = ps->start == NULL;
  if (!*p) {
    ps->start = p;
    ps->kind = T_END;
    ps->len = 0;
    return true;
  }
  bool after_operand = first ? false : ps->kind == T_IDENT ? !reserved(ps) : ps->kind == T_QIDENT || ps->kind == T_NUM ||
                                                                  ps->kind == T_STR || ps->kind == T_RP;
  if (!first && is_kw(ps, "NULL")) after_operand = true;
  ps->start = p;
  if (!after_operand && (*p == '-' || *p == '+') &&
      (isdigit((unsigned char)p[1]) || (p[1] == '.' && isdigit((unsigned char)p[2]))))
    p++; /* a signed number literal */
  if (p == ps->start && (isalpha((unsigned char)*p) || *p == '_')) {
    while (isalnum((unsigned char)*p) || *p == '_') p++;
    ps->kind = T_IDENT;
  } else if (isdigit((unsigned char)*p) || (*p == '.' && isdigit((unsigned char)p[1]))) {
    while (isdigit((unsigned char)*p)) p++;
    if (*p == '.') p++;
    while (isdigit((unsigned char)*p)) p++;
    if (*p == 'e' || *p == 'E') {
      p++;
      if (*p == '+' || *p == '-') p++;
      while (isdigit((unsigned char)*p)) p++;
    }
    if (isalpha((unsigned char)*p)) { /* 1L, 1.5BD, 2D ... : typed literals are not in the subset */
      ps->p = p;
      return fail(ps, "a typed number literal is not supported");
    }
    ps->kind = T_NUM;
  } else if (*p == '\'' || *p == '"' || *p == '`') {
    char q = *p++;
    while (*p) {
      if (q != '`' && *p == '\\' && p[1]) p += 2;
      else if (*p == q && p[1] == q) p += 2;
      else if (*p == q) break;
      else p++;
    }
    if (*p != q) return fail(ps, "an unterminated quote");
    p++;
    ps->kind = q == '`' ? T_QIDENT : T_STR;
    ps->text = unquote(ps->start, (size_t)(p - ps->start), q, q != '`');
  } else if (*p == '(' || *p == ')' || *p == ',' || *p == '.') {
    ps->kind = *p == '(' ? T_LP : *p == ')' ? T_RP : *p == ',' ? T_COMMA : T_DOT;
    p++;
  } else if (strchr("=<>!", *p)) {
    if ((p[0] == '<' && (p[1] == '=' || p[1] == '>')) || (p[0] == '>' && p[1] == '=') ||
        (p[0] == '!' && p[1] == '=') || (p[0] == '=' && p[1] == '='))
      p += 2;
    else if (p[0] == '!')
      return fail(ps, "'!' is not supported (use NOT)");
    else
      p++;
    if (ps->start[0] == '<' && ps->start[1] == '=' && *p == '>') return fail(ps, "'<=>' is not supported");
    ps->kind = T_OP;
  } else {
    ps->p = p + 1;
    return fail(ps, "this character is not supported (arithmetic and other operators are not)");
  }
  ps->len = (size_t)(p - ps->start);
  ps->p = p;
  return true;
}

static bool is_kw(const parser_t *ps, const char *kw) {
  return ps->kind == T_IDENT && ps->len == strlen(kw) && strncasecmp(ps->start, kw, ps->len) == 0;
}

static bool reserved(const parser_t *ps) {
  static const char *const kws[] = {"AND", "OR", "NOT", "IS", "NULL", "IN", "TRUE", "FALSE"};
  for (size_t i = 0; i < sizeof kws / sizeof kws[0]; i++)
    if (is_kw(ps, kws[i])) return true;
  return false;
}

/* --- tree -------------------------------------------------------------------------------- */

static void node_free(node_t *n) {
  if (!n) return;
  for (int i = 0; i < n->npath; i++) free(n->path[i]);
  free(n->path);
  free(n->litbuf);
  for (int i = 0; i < n->nkids; i++) node_free(n->kids[i]);
  free(n->kids);
  free(n);
}

static node_t *node_new(parser_t *ps, node_kind_t kind) {
  node_t *n = calloc(1, sizeof *n);
  if (!n) {
    fail(ps, "out of memory");
    return NULL;
  }
  n->kind = kind;
  return n;
}

static bool add_kid(parser_t *ps, node_t *n, node_t *kid) {
  node_t **k = realloc(n->kids, sizeof *k * (size_t)(n->nkids + 1));
  if (!k) {
    node_free(kid);
    return fail(ps, "out of memory");
  }
  n->kids = k;
  n->kids[n->nkids++] = kid;
  return true;
}

static node_t *parse_or(parser_t *ps);

/* A literal at the current token (after an optional sign), or NULL when there is none. */
static node_t *parse_literal(parser_t *ps) {
  bool neg = false;
  if (ps->kind == T_NUM && (*ps->start == '-' || *ps->start == '+')) neg = *ps->start == '-';
  node_t *n = NULL;
  if (ps->kind == T_NUM) {
    if (!(n = node_new(ps, N_LIT))) return NULL;
    size_t skip = *ps->start == '-' || *ps->start == '+';
    char *txt = strndup(ps->start + skip, ps->len - skip);
    if (!txt) return node_free(n), fail(ps, "out of memory"), NULL;
    if (!strpbrk(txt, ".eE")) {
      errno = 0;
      long long v = strtoll(txt, NULL, 10);
      if (errno) {
        free(txt);
        node_free(n);
        fail(ps, "an integer literal out of range");
        return NULL;
      }
      n->lit.k = V_INT;
      n->lit.i = neg ? -v : v;
    } else {
      n->lit.k = V_NUM;
      n->lit.d = strtod(txt, NULL) * (neg ? -1 : 1);
    }
    free(txt);
  } else if (ps->kind == T_STR) {
    if (!(n = node_new(ps, N_LIT))) return NULL;
    n->litbuf = ps->text;
    ps->text = NULL;
    n->lit.k = V_STR;
    n->lit.s = n->litbuf;
    n->lit.len = strlen(n->litbuf);
  } else if ((is_kw(ps, "TRUE") || is_kw(ps, "FALSE") || is_kw(ps, "NULL"))) {
    if (!(n = node_new(ps, N_LIT))) return NULL;
    n->lit.k = is_kw(ps, "NULL") ? V_NULL : V_BOOL;
    n->lit.b = is_kw(ps, "TRUE");
  } else {
    return NULL;
  }
  if (!next(ps)) return node_free(n), NULL;
  return n;
}

static node_t *parse_column(parser_t *ps) {
  node_t *n = node_new(ps, N_COL);
  while (n) {
    if (ps->kind != T_IDENT && ps->kind != T_QIDENT) return node_free(n), fail(ps, "a column name expected"), NULL;
    char **p = realloc(n->path, sizeof *p * (size_t)(n->npath + 1));
    if (!p) return node_free(n), fail(ps, "out of memory"), NULL;
    n->path = p;
    n->path[n->npath] = ps->kind == T_QIDENT ? ps->text : strndup(ps->start, ps->len);
    ps->text = NULL;
    if (!n->path[n->npath++]) return node_free(n), fail(ps, "out of memory"), NULL;
    if (!next(ps)) return node_free(n), NULL;
    if (ps->kind == T_LP) return node_free(n), fail(ps, "functions are not supported"), NULL;
    if (ps->kind != T_DOT) break;
    if (!next(ps)) return node_free(n), NULL;
  }
  if (!n) return NULL;
  delta_constraint_t *c = ps->c;
  node_t **cols = realloc(c->cols, sizeof *cols * (size_t)(c->ncols + 1));
  if (!cols) return node_free(n), fail(ps, "out of memory"), NULL;
  c->cols = cols;
  c->cols[c->ncols++] = n;
  return n;
}

/* A column or a literal; a leading sign belongs to a number literal. */
static node_t *parse_operand(parser_t *ps) {
  if (ps->kind == T_OP) return fail(ps, "an operand expected"), NULL;
  if (ps->kind == T_END) return fail(ps, "the expression ends early"), NULL;
  if ((ps->kind == T_IDENT && !reserved(ps)) || ps->kind == T_QIDENT) return parse_column(ps);
  node_t *lit = parse_literal(ps);
  if (!lit && !ps->failed) fail(ps, "this is not supported here");
  return lit;
}

static bool parse_cmp(parser_t *ps, cmp_t *out) {
  if (ps->kind != T_OP) return false;
  static const struct {
    const char *op;
    cmp_t cmp;
  } ops[] = {{"=", C_EQ}, {"==", C_EQ}, {"<>", C_NE}, {"!=", C_NE}, {"<", C_LT},
             {"<=", C_LE}, {">", C_GT}, {">=", C_GE}};
  for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
    if (strlen(ops[i].op) == ps->len && strncmp(ops[i].op, ps->start, ps->len) == 0) {
      *out = ops[i].cmp;
      return true;
    }
  return false;
}

static node_t *parse_signed(parser_t *ps) { return parse_operand(ps); }

static node_t *parse_pred(parser_t *ps) {
  if (++ps->depth > MAX_DEPTH) return fail(ps, "the expression nests too deeply"), NULL;
  node_t *n = NULL;
  if (ps->kind == T_LP) {
    if (!next(ps)) return NULL;
    n = parse_or(ps);
    if (!n) return NULL;
    if (ps->kind != T_RP) return node_free(n), fail(ps, "')' expected"), NULL;
    if (!next(ps)) return node_free(n), NULL;
    ps->depth--;
    return n;
  }
  node_t *left = parse_signed(ps);
  if (!left) return NULL;
  cmp_t cmp;
  if (parse_cmp(ps, &cmp)) {
    if (!next(ps)) return node_free(left), NULL;
    node_t *right = parse_signed(ps);
    if (!right) return node_free(left), NULL;
    if (!(n = node_new(ps, N_CMP))) return node_free(left), node_free(right), NULL;
    n->cmp = cmp;
    add_kid(ps, n, left);
    add_kid(ps, n, right);
  } else if (is_kw(ps, "IS")) {
    if (!next(ps)) return node_free(left), NULL;
    bool neg = is_kw(ps, "NOT");
    if (neg && !next(ps)) return node_free(left), NULL;
    if (!is_kw(ps, "NULL")) return node_free(left), fail(ps, "only IS NULL and IS NOT NULL are supported"), NULL;
    if (!next(ps) || !(n = node_new(ps, N_ISNULL))) return node_free(left), NULL;
    n->negate = neg;
    add_kid(ps, n, left);
  } else if (is_kw(ps, "IN") || is_kw(ps, "NOT")) {
    bool neg = is_kw(ps, "NOT");
    if (!next(ps)) return node_free(left), NULL;
    if (neg && !is_kw(ps, "IN")) return node_free(left), fail(ps, "only NOT IN is supported after an operand"), NULL;
    if (neg && !next(ps)) return node_free(left), NULL;
    if (ps->kind != T_LP) return node_free(left), fail(ps, "'(' expected after IN"), NULL;
    if (!(n = node_new(ps, N_IN))) return node_free(left), NULL;
    n->negate = neg;
    add_kid(ps, n, left);
    do {
      if (!next(ps)) return node_free(n), NULL;
      node_t *lit = parse_literal(ps);
      if (!lit) return node_free(n), fail(ps, "IN lists of literals only are supported"), NULL;
      if (!add_kid(ps, n, lit)) return node_free(n), NULL;
    } while (ps->kind == T_COMMA);
    if (ps->kind != T_RP) return node_free(n), fail(ps, "')' expected after the IN list"), NULL;
    if (!next(ps)) return node_free(n), NULL;
  } else {
    n = left; /* a boolean column or literal on its own */
  }
  if (ps->failed) return node_free(n), NULL;
  ps->depth--;
  return n;
}

static node_t *parse_not(parser_t *ps) {
  if (is_kw(ps, "NOT")) {
    if (++ps->depth > MAX_DEPTH) return fail(ps, "the expression nests too deeply"), NULL;
    if (!next(ps)) return NULL;
    node_t *kid = parse_not(ps);
    if (!kid) return NULL;
    node_t *n = node_new(ps, N_NOT);
    if (!n) return node_free(kid), NULL;
    add_kid(ps, n, kid);
    ps->depth--;
    return ps->failed ? node_free(n), NULL : n;
  }
  return parse_pred(ps);
}

static node_t *parse_list(parser_t *ps, node_kind_t kind, const char *kw) {
  node_t *first = kind == N_AND ? parse_not(ps) : parse_list(ps, N_AND, "AND");
  if (!first || !is_kw(ps, kw)) return first;
  node_t *n = node_new(ps, kind);
  if (!n || !add_kid(ps, n, first)) return node_free(n), NULL;
  while (is_kw(ps, kw)) {
    if (!next(ps)) return node_free(n), NULL;
    node_t *k = kind == N_AND ? parse_not(ps) : parse_list(ps, N_AND, "AND");
    if (!k || !add_kid(ps, n, k)) return node_free(n), NULL;
  }
  return n;
}

static node_t *parse_or(parser_t *ps) { return parse_list(ps, N_OR, "OR"); }

delta_constraint_t *delta_constraint_parse(const char *sql, m2d_error_t *err) {
  delta_constraint_t *c = calloc(1, sizeof *c);
  if (!c) return m2d_error_set(err, M2D_ERR_LIMIT, 0, "out of memory"), NULL;
  parser_t ps = {.src = sql ? sql : "", .err = err, .c = c};
  ps.p = ps.src;
  if (next(&ps)) c->root = parse_or(&ps);
  if (c->root && ps.kind != T_END) fail(&ps, "this is not supported here");
  free(ps.text);
  if (ps.failed || !c->root) {
    if (!ps.failed) m2d_error_set(err, M2D_ERR_FORMAT, 0, "the expression '%s' is empty", ps.src);
    delta_constraint_free(c);
    return NULL;
  }
  return c;
}

void delta_constraint_free(delta_constraint_t *c) {
  if (!c) return;
  node_free(c->root);
  free(c->cols);
  free(c);
}

/* --- evaluation (three-valued: T, F, U for null) ------------------------------------------ */

enum { F = 0, T = 1, U = 2 };

static value_t column_value(const node_t *col, const bson_t *doc) {
  value_t v = {.k = V_NULL};
  bson_iter_t it, child;
  if (!bson_iter_init(&it, doc)) return v;
  for (int i = 0; i < col->npath; i++) {
    bson_iter_t at = it;
    if (!bson_iter_find(&at, col->path[i])) {
      at = it; /* Spark resolves column names regardless of case */
      if (!bson_iter_find_case(&at, col->path[i])) return v;
    }
    if (i + 1 < col->npath) {
      if (!BSON_ITER_HOLDS_DOCUMENT(&at) || !bson_iter_recurse(&at, &child)) return v;
      it = child;
      continue;
    }
    switch (bson_iter_type(&at)) {
    case BSON_TYPE_INT32: v.k = V_INT, v.i = bson_iter_int32(&at); break;
    case BSON_TYPE_INT64: v.k = V_INT, v.i = bson_iter_int64(&at); break;
    case BSON_TYPE_DOUBLE: v.k = V_NUM, v.d = bson_iter_double(&at); break;
    case BSON_TYPE_DECIMAL128: {
      bson_decimal128_t d;
      char txt[BSON_DECIMAL128_STRING];
      bson_iter_decimal128(&at, &d);
      bson_decimal128_to_string(&d, txt);
      v.k = V_NUM;
      v.d = strtod(txt, NULL);
      break;
    }
    case BSON_TYPE_BOOL: v.k = V_BOOL, v.b = bson_iter_bool(&at); break;
    case BSON_TYPE_UTF8: {
      uint32_t len;
      v.s = bson_iter_utf8(&at, &len);
      v.len = len;
      v.k = V_STR;
      break;
    }
    case BSON_TYPE_NULL:
    case BSON_TYPE_UNDEFINED: break;
    default: v.k = V_OTHER; break;
    }
  }
  return v;
}

static value_t operand_value(const node_t *n, const bson_t *doc) {
  if (n->kind == N_COL) return column_value(n, doc);
  if (n->kind == N_LIT) return n->lit;
  return (value_t){.k = V_OTHER};
}

/* <0, 0, >0, or 2 when the two are not comparable (null or different kinds). */
static int compare(const value_t *a, const value_t *b) {
  if (a->k == V_INT && b->k == V_INT) return (a->i > b->i) - (a->i < b->i);
  if ((a->k == V_INT || a->k == V_NUM) && (b->k == V_INT || b->k == V_NUM)) {
    double x = a->k == V_INT ? (double)a->i : a->d, y = b->k == V_INT ? (double)b->i : b->d;
    if (isnan(x) || isnan(y)) return isnan(x) && isnan(y) ? 0 : isnan(x) ? 1 : -1; /* Spark: NaN is largest */
    return (x > y) - (x < y);
  }
  if (a->k == V_STR && b->k == V_STR) {
    size_t n = a->len < b->len ? a->len : b->len;
    int c = memcmp(a->s, b->s, n);
    if (c) return c < 0 ? -1 : 1;
    return (a->len > b->len) - (a->len < b->len);
  }
  if (a->k == V_BOOL && b->k == V_BOOL) return (int)a->b - (int)b->b;
  return 2;
}

static int eval(const node_t *n, const bson_t *doc) {
  switch (n->kind) {
  case N_COL:
  case N_LIT: {
    value_t v = operand_value(n, doc);
    return v.k == V_BOOL ? (v.b ? T : F) : U;
  }
  case N_CMP: {
    value_t a = operand_value(n->kids[0], doc), b = operand_value(n->kids[1], doc);
    int c = compare(&a, &b);
    if (c == 2) return U;
    switch (n->cmp) {
    case C_EQ: return c == 0;
    case C_NE: return c != 0;
    case C_LT: return c < 0;
    case C_LE: return c <= 0;
    case C_GT: return c > 0;
    case C_GE: return c >= 0;
    }
    return U;
  }
  case N_ISNULL: {
    value_t v = operand_value(n->kids[0], doc);
    return (v.k == V_NULL) != n->negate;
  }
  case N_IN: {
    value_t v = operand_value(n->kids[0], doc);
    int r = F;
    if (v.k == V_NULL) r = U;
    for (int i = 1; r != T && v.k != V_NULL && i < n->nkids; i++) {
      int c = compare(&v, &n->kids[i]->lit);
      if (c == 0) r = T;
      else if (c == 2) r = U; /* SQL: x IN (.., NULL) is null when nothing matches */
    }
    return r == U ? U : n->negate ? !r : r;
  }
  case N_NOT: {
    int r = eval(n->kids[0], doc);
    return r == U ? U : !r;
  }
  case N_AND: {
    int r = T;
    for (int i = 0; i < n->nkids && r != F; i++) {
      int k = eval(n->kids[i], doc);
      if (k == F) r = F;
      else if (k == U) r = U;
    }
    return r;
  }
  case N_OR: {
    int r = F;
    for (int i = 0; i < n->nkids && r != T; i++) {
      int k = eval(n->kids[i], doc);
      if (k == T) r = T;
      else if (k == U) r = U;
    }
    return r;
  }
  }
  return U;
}

bool delta_constraint_holds(const delta_constraint_t *c, const bson_t *doc) { return eval(c->root, doc) == T; }

void delta_constraint_describe(const delta_constraint_t *c, const bson_t *doc, char *out, size_t n) {
  size_t len = 0;
  if (n) out[0] = '\0';
  for (int i = 0; i < c->ncols && len < n; i++) {
    const node_t *col = c->cols[i];
    char name[512] = "";
    size_t nl = 0;
    for (int k = 0; k < col->npath && nl < sizeof name; k++)
      nl += (size_t)snprintf(name + nl, sizeof name - nl, "%s%s", k ? "." : "", col->path[k]);
    bool seen = false; /* a column named twice is shown once */
    for (int j = 0; j < i && !seen; j++) {
      seen = c->cols[j]->npath == col->npath;
      for (int k = 0; seen && k < col->npath; k++) seen = strcmp(c->cols[j]->path[k], col->path[k]) == 0;
    }
    if (seen) continue;
    value_t v = column_value(col, doc);
    const char *sep = len ? ", " : "";
    int w = 0;
    switch (v.k) {
    case V_NULL: w = snprintf(out + len, n - len, "%s%s = NULL", sep, name); break;
    case V_INT: w = snprintf(out + len, n - len, "%s%s = %" PRId64, sep, name, v.i); break;
    case V_NUM: w = snprintf(out + len, n - len, "%s%s = %.17g", sep, name, v.d); break;
    case V_BOOL: w = snprintf(out + len, n - len, "%s%s = %s", sep, name, v.b ? "true" : "false"); break;
    case V_STR: w = snprintf(out + len, n - len, "%s%s = '%.*s'", sep, name, v.len > 200 ? 200 : (int)v.len, v.s); break;
    case V_OTHER: w = snprintf(out + len, n - len, "%s%s = (a value of a kind the expression cannot compare)", sep, name); break;
    }
    if (w < 0) break;
    len += (size_t)w;
  }
  if (len >= n && n > 4) memcpy(out + n - 4, "...", 4);
}
