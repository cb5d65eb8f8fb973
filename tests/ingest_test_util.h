/* tests/ingest_test_util.h - helpers shared by the ingest tests and the
 * fuzzer: a counting, failing allocator for ingest's allocation seam
 * (ingest__mem), a seeded PRNG, and a canonical text of a parse result. */
#ifndef TESTS_INGEST_TEST_UTIL_H
#define TESTS_INGEST_TEST_UTIL_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "actor/actor.h"
#include "ingest/event.h"
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

/* A deterministic PRNG (xorshift64*): a failure replays from its seed. */
static uint64_t trng_state = 0x9e3779b97f4a7c15ull;

static inline uint64_t trng(void)
{
    trng_state ^= trng_state >> 12;
    trng_state ^= trng_state << 25;
    trng_state ^= trng_state >> 27;
    return trng_state * 2685821657736338717ull;
}

static inline const char *tdump_str(const char *s)
{
    return s ? s : "-";
}

/* Appends every field of @res (and its event) to @b, one canonical text:
 * two results are the same when their dumps are. */
static inline void tdump_result(struct actor_buf *b,
                                const struct ingest__result *res)
{
    actor_buf_printf(b, "kind=%d reason=%s seq=%llu unknown=%u/%u\n", res->kind,
                     ingest__reason_name(res->reason),
                     (unsigned long long)res->seq, res->unknown_elements,
                     res->unknown_attributes);
    actor_buf_printf(b, "login=%s|%d:%s|%d:%s source=%s root=%s\n",
                     res->login.source, res->login.has_token, res->login.token,
                     res->login.has_version, res->login.version,
                     res->event_source, res->root);
    actor_buf_printf(b, "detail=%s\n", res->detail);
    const struct event *ev = res->event;
    if (!ev) {
        return;
    }
    actor_buf_printf(b, "event %s %llu %lld %s %lld raw=%zu matches=%u\n",
                     ev->source, (unsigned long long)ev->seq,
                     (long long)ev->sent_ms, tdump_str(ev->sent),
                     (long long)ev->received_ms, ev->raw_len, ev->n_matches);
    for (uint32_t i = 0; i < ev->n_matches; i++) {
        const struct event_match *m = &ev->matches[i];
        actor_buf_printf(b,
                         " match %s msgnr=%d:%llu full=%d parts=%u "
                         "fixture=%s|%s|%s|%s|%s phase=%s clock=%d/%d "
                         "score=%u-%u incidents=%u\n",
                         m->id, m->has_msgnr, (unsigned long long)m->msgnr,
                         m->full, m->parts, tdump_str(m->fixture.sport),
                         tdump_str(m->fixture.competition),
                         tdump_str(m->fixture.home), tdump_str(m->fixture.away),
                         tdump_str(m->fixture.start), tdump_str(m->phase),
                         m->clock_seconds, m->clock_running, m->score_home,
                         m->score_away, m->n_incidents);
        for (uint32_t k = 0; k < m->n_incidents; k++) {
            const struct event_incident *in = &m->incidents[k];
            actor_buf_printf(b,
                             "  incident %s %s %s %s %d+%d team=%d "
                             "confirmed=%d action=%u\n",
                             in->id, tdump_str(in->type), tdump_str(in->player),
                             tdump_str(in->assist), in->minute, in->stoppage,
                             in->team, in->confirmed, in->action);
        }
    }
}

#endif /* TESTS_INGEST_TEST_UTIL_H */
