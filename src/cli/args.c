#include "cli/args.h"
#include "storage/store.h"

#include "cli/commands.h"
#include "core/log.h"
#include "core/progress.h"
#include "core/redact.h"
#include "parquet/compress.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const m2d_opt_spec_t m2d_global_opts[] = {
    {"log-format", "text|json", "log lines on stderr as readable text or one JSON object each", "text", false},
    {"quiet", NULL, "log errors only", NULL, false},
    {"verbose", NULL, "log debugging detail", NULL, false},
    {"progress", "auto|always|never",
     "a progress line on stderr for long work: on a terminal (auto), also when stderr is not one (always, "
     "a line every 10 s), or never",
     "auto", false},
    {"unsafe-single-writer", NULL,
     "write to an object store that ignores conditional writes (If-None-Match), accepting that a second "
     "writer could overwrite commits",
     NULL, false},
    M2D_OPT_END,
};

static int find_spec(const m2d_opt_spec_t *specs, const char *name, size_t len) {
  for (int i = 0; specs[i].name; i++)
    if (strlen(specs[i].name) == len && strncmp(specs[i].name, name, len) == 0) return i;
  return -1;
}

bool m2d_args_parse(const m2d_command_t *cmd, int argc, char **argv, m2d_args_t *out,
                    bool *help_requested, m2d_error_t *err) {
  memset(out, 0, sizeof *out);
  out->specs = cmd->opts;
  *help_requested = false;
  m2d_log_level_t level = M2D_LOG_INFO;
  m2d_log_format_t format = M2D_LOG_TEXT;
  m2d_progress_mode_t progress = M2D_PROGRESS_AUTO;
  bool only_positional = false;

  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    if (only_positional || a[0] != '-' || a[1] == '\0') {
      if (!cmd->positional)
        return m2d_error_set(err, M2D_ERR_USAGE, 0,
                             "%s: unexpected argument '%s'; see 'mongo2delta %s --help'",
                             cmd->name, a, cmd->name);
      if (out->npositional == M2D_MAX_POSITIONAL)
        return m2d_error_set(err, M2D_ERR_USAGE, 0, "%s: more than %d arguments", cmd->name,
                             M2D_MAX_POSITIONAL);
      out->positional[out->npositional++] = a;
      continue;
    }
    if (strcmp(a, "--") == 0) {
      only_positional = true;
      continue;
    }
    if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
      *help_requested = true;
      return true;
    }
    if (strncmp(a, "--", 2) != 0)
      return m2d_error_set(err, M2D_ERR_USAGE, 0,
                           "%s: unknown option '%s' (options are long, like --uri); see "
                           "'mongo2delta %s --help'",
                           cmd->name, a, cmd->name);
    const char *name = a + 2;
    const char *eq = strchr(name, '=');
    size_t len = eq ? (size_t)(eq - name) : strlen(name);
    const char *value = eq ? eq + 1 : NULL;

    int g = find_spec(m2d_global_opts, name, len);
    int s = g < 0 && cmd->opts ? find_spec(cmd->opts, name, len) : -1;
    if (g < 0 && s < 0)
      return m2d_error_set(err, M2D_ERR_USAGE, 0, "%s: unknown option '--%.*s'; see 'mongo2delta %s --help'",
                           cmd->name, (int)len, name, cmd->name);
    const m2d_opt_spec_t *spec = g >= 0 ? &m2d_global_opts[g] : &cmd->opts[s];
    if (spec->arg && !value) {
      if (i + 1 >= argc)
        return m2d_error_set(err, M2D_ERR_USAGE, 0, "%s: option --%s needs a value (%s)", cmd->name,
                             spec->name, spec->arg);
      value = argv[++i];
    } else if (!spec->arg && value) {
      return m2d_error_set(err, M2D_ERR_USAGE, 0, "%s: option --%s takes no value", cmd->name, spec->name);
    }
    if (g >= 0) {
      if (strcmp(spec->name, "quiet") == 0) level = M2D_LOG_ERROR;
      else if (strcmp(spec->name, "verbose") == 0) level = M2D_LOG_DEBUG;
      else if (strcmp(spec->name, "unsafe-single-writer") == 0) m2d_store_default_options.unsafe_single_writer = true;
      else if (strcmp(spec->name, "progress") == 0) {
        if (!m2d_progress_mode_parse(value, &progress))
          return m2d_error_set(err, M2D_ERR_USAGE, 0, "--progress must be auto, always or never, not '%s'", value);
      }
      else if (!m2d_log_format_parse(value, &format))
        return m2d_error_set(err, M2D_ERR_USAGE, 0, "--log-format must be text or json, not '%s'", value);
      continue;
    }
    if (s >= M2D_MAX_OPTS)
      return m2d_error_set(err, M2D_ERR_INTERNAL, 0, "%s: too many options in the table", cmd->name);
    out->values[s] = spec->arg ? value : "true";
    out->seen[s] = true;
  }
  m2d_log_configure(level, format);
  m2d_progress_configure(progress);

  for (int i = 0; cmd->opts && cmd->opts[i].name; i++)
    if (cmd->opts[i].required && !out->seen[i])
      return m2d_error_set(err, M2D_ERR_USAGE, 0, "%s: --%s %s is required; see 'mongo2delta %s --help'",
                           cmd->name, cmd->opts[i].name, cmd->opts[i].arg ? cmd->opts[i].arg : "",
                           cmd->name);
  return true;
}

const char *m2d_args_get(const m2d_args_t *a, const char *name) {
  if (!a->specs) return NULL;
  int i = find_spec(a->specs, name, strlen(name));
  if (i < 0) return NULL;
  return a->seen[i] ? a->values[i] : a->specs[i].def;
}

bool m2d_args_flag(const m2d_args_t *a, const char *name) {
  if (!a->specs) return false;
  int i = find_spec(a->specs, name, strlen(name));
  return i >= 0 && a->seen[i];
}

bool m2d_args_int(const m2d_args_t *a, const char *name, int64_t min, int64_t max, int64_t *out,
                  m2d_error_t *err) {
  const char *v = m2d_args_get(a, name);
  if (!v) return m2d_error_set(err, M2D_ERR_USAGE, 0, "--%s needs a value", name);
  char *end;
  errno = 0;
  long long x = strtoll(v, &end, 10);
  if (errno || end == v || *end || x < min || x > max)
    return m2d_error_set(err, M2D_ERR_USAGE, 0, "--%s must be a whole number from %lld to %lld, not '%s'",
                         name, (long long)min, (long long)max, v);
  *out = x;
  return true;
}

static void print_opts(const m2d_opt_spec_t *opts) {
  for (int i = 0; opts && opts[i].name; i++) {
    char left[64];
    snprintf(left, sizeof left, "--%s%s%s", opts[i].name, opts[i].arg ? " " : "",
             opts[i].arg ? opts[i].arg : "");
    printf("  %-28s %s", left, opts[i].help);
    if (opts[i].required) printf(" (required)");
    if (opts[i].def) printf(" [default: %s]", opts[i].def);
    printf("\n");
  }
}

bool m2d_args_choice(const m2d_args_t *a, const char *name, const char *const *choices, int *out, m2d_error_t *err) {
  const char *v = m2d_args_get(a, name);
  int n = 0;
  for (; choices[n]; n++)
    if (v && strcmp(v, choices[n]) == 0) {
      *out = n;
      return true;
    }
  char list[512] = "";
  size_t len = 0;
  for (int i = 0; i < n && len < sizeof list; i++) {
    const char *sep = i == 0 ? "" : i == n - 1 ? " or " : ", ";
    len += (size_t)snprintf(list + len, sizeof list - len, "%s%s", sep, choices[i]);
  }
  return m2d_error_set(err, M2D_ERR_USAGE, 0, "--%s must be %s", name, list);
}

bool m2d_args_int_if_given(const m2d_args_t *a, const char *name, int64_t min, int64_t max, int64_t *out,
                           m2d_error_t *err) {
  return !m2d_args_flag(a, name) || m2d_args_int(a, name, min, max, out, err);
}

bool m2d_args_codec(const m2d_args_t *a, pq_codec_t *codec, m2d_error_t *err) {
  if (!pq_codec_parse(m2d_args_get(a, "compression"), codec))
    return m2d_error_set(err, M2D_ERR_USAGE, 0, "--compression must be " M2D_CODECS);
  return true;
}

bool m2d_args_compression(const m2d_args_t *a, pq_codec_t *codec, int *level, m2d_error_t *err) {
  pq_codec_t c = PQ_CODEC_SNAPPY;
  if (!m2d_args_codec(a, &c, err)) return false;
  int64_t l = 0;
  if (!m2d_args_int_if_given(a, "compression-level", 1, 22, &l, err)) return false;
  *codec = c;
  *level = (int)l;
  return true;
}

bool m2d_args_target_file_size(const m2d_args_t *a, uint64_t *bytes, m2d_error_t *err) {
  *bytes = (uint64_t)128 << 20;
  return !m2d_args_flag(a, "target-file-size") ||
         m2d_args_size(a, "target-file-size", 1 << 10, (uint64_t)1 << 40, bytes, err);
}

bool m2d_args_stop_when_idle(const m2d_args_t *a, int *seconds, m2d_error_t *err) {
  int64_t s = 0;
  if (!m2d_args_int_if_given(a, "stop-when-idle", 1, 86400 * 365, &s, err)) return false;
  *seconds = (int)s;
  return true;
}

bool m2d_args_duration_ms(const m2d_args_t *a, const char *name, int64_t min_ms, int64_t max_ms, int64_t *out,
                          m2d_error_t *err) {
  const char *v = m2d_args_get(a, name);
  if (!v) return true;
  char *end;
  errno = 0;
  double x = strtod(v, &end);
  double mult = 1000;
  if (strcmp(end, "ms") == 0) mult = 1;
  else if (strcmp(end, "s") == 0 || !*end) mult = 1000;
  else if (strcmp(end, "m") == 0 || strcmp(end, "min") == 0) mult = 60000;
  else if (strcmp(end, "h") == 0) mult = 3600000;
  else end = NULL;
  double ms = x * mult;
  if (!end || end == v || errno || ms < (double)min_ms || ms > (double)max_ms)
    return m2d_error_set(err, M2D_ERR_USAGE, 0,
                         "--%s must be a duration such as 30s, 500ms, 2m or 1h (from %lld ms to %lld ms), not '%s'", name,
                         (long long)min_ms, (long long)max_ms, v);
  *out = (int64_t)ms;
  return true;
}

void m2d_command_print_help(const m2d_command_t *cmd) {
  printf("Usage: mongo2delta %s [OPTIONS]%s%s\n\n", cmd->name, cmd->positional ? " " : "",
         cmd->positional ? cmd->positional : "");
  printf("%s\n", cmd->description ? cmd->description : cmd->summary);
  if (cmd->opts && cmd->opts[0].name) {
    printf("\nOptions:\n");
    print_opts(cmd->opts);
  }
  printf("\nGlobal options:\n");
  print_opts(m2d_global_opts);
  if (cmd->example) printf("\nExample:\n  %s\n", cmd->example);
}

int m2d_cli_usage(const char *fmt, ...) {
  m2d_error_t err = {.domain = M2D_ERR_USAGE};
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err.message, sizeof err.message, fmt, ap);
  va_end(ap);
  return m2d_cli_fail(&err);
}

int m2d_cli_fail(const m2d_error_t *err) {
  if (m2d_log_format() == M2D_LOG_JSON) { /* machines get the failure as a log record too */
    m2d_log(M2D_LOG_ERROR, "%s", err->message);
    return m2d_error_exit_status(err);
  }
  char safe[sizeof err->message + 64];
  m2d_redact(err->message, safe, sizeof safe);
  fprintf(stderr, "mongo2delta: %s\n", safe);
  return m2d_error_exit_status(err);
}

bool m2d_args_size(const m2d_args_t *a, const char *name, uint64_t min, uint64_t max, uint64_t *out, m2d_error_t *err) {
  const char *s = m2d_args_get(a, name);
  if (!s) return true;
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  uint64_t mult = 1;
  while (*end == ' ') end++;
  if (*end == 'k' || *end == 'K') mult = (uint64_t)1 << 10, end++;
  else if (*end == 'm' || *end == 'M') mult = (uint64_t)1 << 20, end++;
  else if (*end == 'g' || *end == 'G') mult = (uint64_t)1 << 30, end++;
  if (mult > 1 && (*end == 'i' || *end == 'I')) end++;
  if (*end == 'b' || *end == 'B') end++;
  double bytes = v * (double)mult;
  if (errno || end == s || *end || !(bytes >= (double)min && bytes <= (double)max))
    return m2d_error_set(err, M2D_ERR_USAGE, 0,
                         "--%s: '%s' is not a size between %llu and %llu bytes (write e.g. 128MB, 1GB or a byte count)",
                         name, s, (unsigned long long)min, (unsigned long long)max);
  *out = (uint64_t)bytes;
  return true;
}
