#include "delta/checkpoint_v2.h"

#include "delta/features.h"
#include "delta/log.h"

#include <stdio.h>
#include <string.h>

bool delta_cp2_uuid_name(const char *rest, bool *is_json) {
  if (strncmp(rest, ".checkpoint.", 12) != 0) return false;
  const char *u = rest + 12;
  /* 8-4-4-4-12 hex digits */
  for (int i = 0; i < 36; i++) {
    char c = u[i];
    bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? c != '-' : !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) return false;
  }
  bool json = strcmp(u + 36, ".json") == 0;
  if (!json && strcmp(u + 36, ".parquet") != 0) return false;
  if (is_json) *is_json = json;
  return true;
}

bool delta_cp2_sidecar_key(const json_t *sidecar, char *out, size_t n) {
  const char *p = json_string_value(json_object_get(sidecar, "path"));
  if (!p || !*p) return false;
  const char *slash = strrchr(p, '/');
  const char *name = slash ? slash + 1 : p;
  if (!*name) return false;
  char decoded[1024];
  delta_path_decode(name, decoded, sizeof decoded);
  int w = snprintf(out, n, "_delta_log/_sidecars/%s", decoded);
  return w > 0 && (size_t)w < n;
}

bool delta_cp2_required(const json_t *protocol) { return delta_protocol_has_feature(protocol, "v2Checkpoint", false); }

const char *delta_cp2_last_checkpoint_path(const json_t *lc) {
  return json_string_value(json_object_get(json_object_get(lc, "v2Checkpoint"), "path"));
}
