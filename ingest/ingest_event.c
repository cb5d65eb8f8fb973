/* ingest/ingest_event.c - allocation and release of struct event. */
#include <errno.h>
#include <stdalign.h>
#include <stdlib.h>
#include <string.h>

#include "ingest/event.h"
#include "ingest/ingest_impl.h"

struct ingest__mem ingest__mem = {
    .malloc_fn = malloc,
    .realloc_fn = realloc,
    .free_fn = free,
};

/* Rounds @n up to the alignment of the arrays that follow it. */
static size_t align_up(size_t n)
{
    const size_t a =
        alignof(struct event_match) > alignof(struct event_incident)
            ? alignof(struct event_match)
            : alignof(struct event_incident);
    return (n + a - 1) & ~(a - 1);
}

int ingest__event_alloc(struct ingest__event_mem *out, uint32_t n_matches,
                        uint32_t n_incidents, size_t strings, const char *raw,
                        size_t raw_len)
{
    /* One block: header, matches, incidents, strings, raw + NUL. Every
     * term is bounded well below SIZE_MAX / 4, so the sum cannot wrap
     * before the UINT32_MAX check. */
    if (strings > UINT32_MAX || raw_len > UINT32_MAX) {
        return -E2BIG;
    }
    size_t at_matches = align_up(sizeof(struct event));
    size_t at_incidents =
        at_matches + (size_t)n_matches * sizeof(struct event_match);
    size_t at_strings =
        at_incidents + (size_t)n_incidents * sizeof(struct event_incident);
    size_t at_raw = at_strings + strings;
    size_t size = at_raw + raw_len + 1;
    if (size > UINT32_MAX) {
        return -E2BIG;
    }
    char *block = ingest__malloc(size);
    if (!block) {
        return -ENOMEM;
    }
    memset(block, 0, at_strings);
    struct event *ev = (struct event *)(void *)block;
    atomic_init(&ev->refs, 1);
    ev->matches = (struct event_match *)(void *)(block + at_matches);
    ev->n_matches = n_matches;
    ev->size = (uint32_t)size;
    char *raw_copy = block + at_raw;
    if (raw_len > 0) {
        memcpy(raw_copy, raw, raw_len);
    }
    raw_copy[raw_len] = '\0';
    ev->raw = raw_copy;
    ev->raw_len = raw_len;

    out->ev = ev;
    out->matches = (struct event_match *)(void *)(block + at_matches);
    out->incidents = (struct event_incident *)(void *)(block + at_incidents);
    out->strings = block + at_strings;
    return 0;
}

void event_unref(struct event *ev)
{
    if (!ev) {
        return;
    }
    /* Release orders this holder's reads before the free; the acquire on
     * the last drop orders the free after every other holder's reads. */
    if (atomic_fetch_sub_explicit(&ev->refs, 1, memory_order_acq_rel) == 1) {
        ingest__free(ev);
    }
}
