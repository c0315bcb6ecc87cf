/* A very small unit-test kit: TEST(name) registers itself (no central list to edit), CHECK
 * fails the current test and returns from it. One runner prints "N passed, N failed". */
#ifndef M2D_TEST_H
#define M2D_TEST_H

#include <stdbool.h>
#include <string.h>

typedef void (*m2d_test_fn)(void);
void m2d_test_register(const char *name, const char *file, m2d_test_fn fn);
void m2d_test_fail(const char *file, int line, const char *what);
/* Directory of ../shared/testdata, found from the working directory. */
const char *m2d_testdata_dir(void);

#define TEST(name)                                                                                \
  static void name(void);                                                                         \
  __attribute__((constructor)) static void register_##name(void) {                                \
    m2d_test_register(#name, __FILE__, name);                                                     \
  }                                                                                               \
  static void name(void)

#define CHECK(cond)                                                                               \
  do {                                                                                            \
    if (!(cond)) {                                                                                \
      m2d_test_fail(__FILE__, __LINE__, #cond);                                                   \
      return;                                                                                     \
    }                                                                                             \
  } while (0)

#define CHECK_STR(a, b) CHECK(strcmp((a), (b)) == 0)

#endif
