/* tests/ingest_test_mem.h - a counting, failing allocator for ingest's
 * allocation seam (ingest__mem), shared by the ingest unit tests. */
#ifndef TESTS_INGEST_TEST_MEM_H
#define TESTS_INGEST_TEST_MEM_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ingest/ingest_impl.h"

/*
 * Every block carries its size in a header, so the tests know the bytes
 * live now and the peak. tmem.fail_at = N makes the Nth allocation from
 * now fail (0: none fails).
 */
struct tmem {
    size_t live;     /* bytes allocated and not freed */
    size_t peak;     /* highest live since tmem_start() or tmem_peak_reset */
    uint64_t allocs; /* allocations (and growing reallocs) attempted */
    uint64_t frees;
    uint64_t fail_at; /* fail the allocation with this number; 0: never */
    uint64_t failed;  /* allocations failed on purpose */
};

static struct tmem tmem;

#define TMEM_HDR 16

static inline void tmem_note(size_t add, size_t sub)
{
    tmem.live = tmem.live + add - sub;
    if (tmem.live > tmem.peak) {
        tmem.peak = tmem.live;
    }
}

static inline int tmem_should_fail(void)
{
    tmem.allocs++;
    if (tmem.fail_at != 0 && tmem.allocs == tmem.fail_at) {
        tmem.failed++;
        return 1;
    }
    return 0;
}

static inline void *tmem_malloc(size_t size)
{
    if (tmem_should_fail()) {
        return NULL;
    }
    char *b = malloc(size + TMEM_HDR);
    if (!b) {
        return NULL;
    }
    memcpy(b, &size, sizeof(size));
    tmem_note(size, 0);
    return b + TMEM_HDR;
}

static inline void tmem_free(void *ptr)
{
    if (!ptr) {
        return;
    }
    char *b = (char *)ptr - TMEM_HDR;
    size_t size;
    memcpy(&size, b, sizeof(size));
    tmem.frees++;
    tmem_note(0, size);
    free(b);
}

static inline void *tmem_realloc(void *ptr, size_t size)
{
    if (!ptr) {
        return tmem_malloc(size);
    }
    if (tmem_should_fail()) {
        return NULL;
    }
    char *b = (char *)ptr - TMEM_HDR;
    size_t old;
    memcpy(&old, b, sizeof(old));
    char *nb = realloc(b, size + TMEM_HDR);
    if (!nb) {
        return NULL;
    }
    memcpy(nb, &size, sizeof(size));
    tmem_note(size, old);
    return nb + TMEM_HDR;
}

/* Routes ingest's allocations through the counter, from zero. */
static inline void tmem_start(void)
{
    memset(&tmem, 0, sizeof(tmem));
    ingest__mem.malloc_fn = tmem_malloc;
    ingest__mem.realloc_fn = tmem_realloc;
    ingest__mem.free_fn = tmem_free;
}

/* Back to libc; everything allocated since tmem_start() must be freed. */
static inline void tmem_stop(void)
{
    ingest__mem.malloc_fn = malloc;
    ingest__mem.realloc_fn = realloc;
    ingest__mem.free_fn = free;
}

static inline void tmem_peak_reset(void)
{
    tmem.peak = tmem.live;
}

#endif /* TESTS_INGEST_TEST_MEM_H */
