/* libFuzzer: the config-file parser (core/toml) on any text. */
#include "core/toml.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *text = malloc(size + 1);
  if (!text) return 0;
  memcpy(text, data, size);
  text[size] = 0;
  m2d_error_t err;
  m2d_toml_free(m2d_toml_parse(text, "fuzz.toml", &err));
  free(text);
  return 0;
}
