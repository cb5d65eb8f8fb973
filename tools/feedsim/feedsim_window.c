/* tools/feedsim/feedsim_window.c - a source's documents in flight, and the
 * histogram of their send-to-ack latencies. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tools/feedsim/feedsim.h"

/* ---- growable arrays ---------------------------------------------------- */

int feedsim_more(void *arrp, size_t *cap, size_t size)
{
    /* The array pointer is read and written as bytes: its type is the
     * caller's. */
    void *old;
    memcpy(&old, arrp, sizeof(old));
    size_t want = *cap ? *cap * 2 : 16;
    if (want > SIZE_MAX / size) {
        return -ENOMEM;
    }
    void *grown = realloc(old, want * size);
    if (!grown) {
        return -ENOMEM;
    }
    memcpy(arrp, &grown, sizeof(grown));
    *cap = want;
    return 0;
}

/* ---- the window --------------------------------------------------------- */

void feedsim_window_init(struct feedsim_window *w)
{
    memset(w, 0, sizeof(*w));
}

void feedsim_window_release(struct feedsim_window *w)
{
    for (size_t i = 0; i < w->len; i++) {
        free(feedsim_window_at(w, i)->data);
    }
    free(w->docs);
    feedsim_window_init(w);
}

struct feedsim_doc *feedsim_window_at(struct feedsim_window *w, size_t i)
{
    return i < w->len ? &w->docs[(w->head + i) % w->cap] : NULL;
}

int feedsim_window_push(struct feedsim_window *w, const struct feedsim_doc *doc)
{
    if (w->len == w->cap) {
        /* Unroll the ring so the oldest is first, then grow it. */
        size_t head = w->head;
        size_t cap = w->cap;
        struct feedsim_doc *docs = w->docs;
        if (FEEDSIM_MORE(docs, w->len, cap) != 0) {
            free(doc->data);
            return -ENOMEM;
        }
        /* Move the wrapped part [0, head) after the rest. */
        memcpy(docs + w->len, docs, head * sizeof(*docs));
        memmove(docs, docs + head, w->len * sizeof(*docs));
        w->docs = docs;
        w->cap = cap;
        w->head = 0;
    }
    w->docs[(w->head + w->len) % w->cap] = *doc;
    w->len++;
    w->required += doc->required;
    return 0;
}

struct feedsim_doc *feedsim_window_next(struct feedsim_window *w)
{
    while (w->cursor < w->len) {
        struct feedsim_doc *d = feedsim_window_at(w, w->cursor++);
        if (d->seq != 0 || d->sends == 0) {
            return d;
        }
    }
    return NULL;
}

void feedsim_window_drop_oldest(struct feedsim_window *w)
{
    if (w->len == 0) {
        return;
    }
    struct feedsim_doc *d = feedsim_window_at(w, 0);
    w->required -= d->required;
    free(d->data);
    w->head = (w->head + 1) % w->cap;
    w->len--;
    if (w->cursor > 0) {
        w->cursor--;
    }
}

size_t feedsim_window_ack(struct feedsim_window *w, uint64_t acked,
                          void (*done)(const struct feedsim_doc *doc,
                                       void *arg),
                          void *arg)
{
    size_t n = 0;
    while (w->len > 0) {
        const struct feedsim_doc *d = feedsim_window_at(w, 0);
        bool covered = d->seq != 0 ? d->seq <= acked : d->sends > 0;
        if (!covered) {
            break;
        }
        if (done) {
            done(d, arg);
        }
        feedsim_window_drop_oldest(w);
        n++;
    }
    return n;
}

void feedsim_window_rewind(struct feedsim_window *w)
{
    w->cursor = 0;
}

bool feedsim_window_has_required(const struct feedsim_window *w)
{
    return w->required > 0;
}

/* ---- latency histogram -------------------------------------------------- */

#define HIST_MAX_EXP 40 /* values above 2^41 us land in the last bucket */

static size_t hist_bucket(uint64_t us)
{
    if (us < 64) {
        return (size_t)us;
    }
    unsigned e = 63u - (unsigned)__builtin_clzll(us);
    if (e > HIST_MAX_EXP) {
        e = HIST_MAX_EXP;
        us = (2ull << HIST_MAX_EXP) - 1;
    }
    unsigned sub = (unsigned)(us >> (e - 5)) - FEEDSIM_HIST_SUB;
    return 64 + (e - 6) * FEEDSIM_HIST_SUB + sub;
}

/* The largest value that lands in bucket @i. */
static uint64_t hist_upper(size_t i)
{
    if (i < 64) {
        return i;
    }
    unsigned e = (unsigned)((i - 64) / FEEDSIM_HIST_SUB) + 6;
    uint64_t sub = (i - 64) % FEEDSIM_HIST_SUB;
    return ((sub + FEEDSIM_HIST_SUB + 1) << (e - 5)) - 1;
}

void feedsim_hist_add(struct feedsim_hist *h, uint64_t us)
{
    h->counts[hist_bucket(us)]++;
    h->n++;
    if (us > h->max_us) {
        h->max_us = us;
    }
}

uint64_t feedsim_hist_quantile(const struct feedsim_hist *h, double q)
{
    if (h->n == 0) {
        return 0;
    }
    double want = q * (double)h->n;
    uint64_t rank = want <= 1 ? 1 : (uint64_t)want;
    if ((double)rank < want) {
        rank++;
    }
    uint64_t seen = 0;
    for (size_t i = 0; i < FEEDSIM_HIST_BUCKETS; i++) {
        seen += h->counts[i];
        if (seen >= rank) {
            /* The last bucket is open-ended: its edge is the maximum. */
            uint64_t up =
                i + 1 < FEEDSIM_HIST_BUCKETS ? hist_upper(i) : h->max_us;
            return up < h->max_us ? up : h->max_us;
        }
    }
    return h->max_us;
}
