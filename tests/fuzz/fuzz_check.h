/* tests/fuzz/fuzz_check.h - CHECK(), the fuzz targets' assertion: it names
 * the check that failed before libFuzzer reports the abort. */
#ifndef TESTS_FUZZ_FUZZ_CHECK_H
#define TESTS_FUZZ_FUZZ_CHECK_H

#include <stdio.h>
#include <stdlib.h>

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__,   \
                    #cond);                                                    \
            abort();                                                           \
        }                                                                      \
    } while (0)

#endif /* TESTS_FUZZ_FUZZ_CHECK_H */
