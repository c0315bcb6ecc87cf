/* Runs every registered unit test (or those whose name contains argv[1]). */
#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define MAX_TESTS 4096
static struct {
  const char *name, *file;
  m2d_test_fn fn;
} tests[MAX_TESTS];
static int ntests;
static bool current_failed;

void m2d_test_register(const char *name, const char *file, m2d_test_fn fn) {
  if (ntests == MAX_TESTS) {
    fprintf(stderr, "too many tests\n");
    exit(1);
  }
  tests[ntests].name = name;
  tests[ntests].file = file;
  tests[ntests].fn = fn;
  ntests++;
}

void m2d_test_fail(const char *file, int line, const char *what) {
  fprintf(stderr, "    %s:%d: CHECK(%s) failed\n", file, line, what);
  current_failed = true;
}

const char *m2d_testdata_dir(void) {
  static const char *candidates[] = {"../shared/testdata", "../../shared/testdata"};
  for (size_t i = 0; i < sizeof candidates / sizeof candidates[0]; i++)
    if (access(candidates[i], R_OK) == 0) return candidates[i];
  return "../shared/testdata";
}

int main(int argc, char **argv) {
  int passed = 0, failed = 0;
  for (int i = 0; i < ntests; i++) {
    if (argc > 1 && !strstr(tests[i].name, argv[1])) continue;
    current_failed = false;
    tests[i].fn();
    if (current_failed) {
      failed++;
      printf("FAIL %s (%s)\n", tests[i].name, tests[i].file);
    } else {
      passed++;
      printf("ok   %s\n", tests[i].name);
    }
  }
  printf("unit: %d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
