/* store/store_alloc.c - the store's allocations, with a seam for tests. */
#include <stdlib.h>
#include <string.h>

#include "store/store_impl.h"

/*
 * DESIGN
 * Every allocation the store makes itself goes through here, so a test can
 * fail the Nth one and check that each caller keeps its promise (-ENOMEM
 * and nothing changed, nothing leaked). libpq's and actor_buf's own
 * allocations are not covered. The countdown is touched by the store's
 * thread only (tests run single-threaded).
 */

unsigned store__alloc_fail_in;

static bool fails(void)
{
    if (store__alloc_fail_in == 0) {
        return false;
    }
    return --store__alloc_fail_in == 0;
}

void *store__malloc(size_t size)
{
    return fails() ? NULL : malloc(size);
}

void *store__calloc(size_t n, size_t size)
{
    return fails() ? NULL : calloc(n, size);
}

void *store__realloc(void *p, size_t size)
{
    return fails() ? NULL : realloc(p, size);
}

char *store__strdup(const char *s)
{
    size_t len = strlen(s) + 1;
    char *d = store__malloc(len);
    if (d) {
        memcpy(d, s, len);
    }
    return d;
}
