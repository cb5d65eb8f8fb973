/* tests/model_ev.h - parsed events for the model's tests and benchmark,
 * built from element values as ingest's parser would build them from XML:
 * one malloc() block, reference-counted, released by ingest's
 * event_unref() (which frees the block). Header-only: the benchmarks link
 * no test support objects. */
#ifndef TESTS_MODEL_EV_H
#define TESTS_MODEL_EV_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ingest/event.h"
#include "store/store.h"

static inline size_t model_ev_str(const char *s)
{
    return s ? strlen(s) + 1 : 0;
}

static inline const char *model_ev_copy(char **at, const char *s)
{
    if (!s) {
        return NULL;
    }
    size_t n = strlen(s) + 1;
    char *d = memcpy(*at, s, n);
    *at += n;
    return d;
}

/* Returns a new event (refs 1) of @source and @seq holding copies of the
 * @n elements @ms, their incidents and every string, or NULL. */
static inline struct event *model_ev_new(const char *source, uint64_t seq,
                                         const struct event_match *ms,
                                         uint32_t n)
{
    size_t n_inc = 0;
    size_t strings = model_ev_str(source);
    for (uint32_t i = 0; i < n; i++) {
        const struct event_match *m = &ms[i];
        n_inc += m->n_incidents;
        strings += model_ev_str(m->id) + model_ev_str(m->phase) +
                   model_ev_str(m->fixture.sport) +
                   model_ev_str(m->fixture.competition) +
                   model_ev_str(m->fixture.home) +
                   model_ev_str(m->fixture.away) +
                   model_ev_str(m->fixture.start);
        for (uint32_t k = 0; k < m->n_incidents; k++) {
            const struct event_incident *in = &m->incidents[k];
            strings += model_ev_str(in->id) + model_ev_str(in->type) +
                       model_ev_str(in->player) + model_ev_str(in->assist);
        }
    }
    size_t a = alignof(max_align_t);
    size_t at_m = (sizeof(struct event) + a - 1) / a * a;
    size_t at_i = at_m + n * sizeof(struct event_match);
    size_t at_s = at_i + n_inc * sizeof(struct event_incident);
    char *block = malloc(at_s + strings + 1);
    if (!block) {
        return NULL;
    }
    struct event *ev = (struct event *)(void *)block;
    struct event_match *em = (struct event_match *)(void *)(block + at_m);
    struct event_incident *ei = (struct event_incident *)(void *)(block + at_i);
    char *at = block + at_s;
    *ev = (struct event){.seq = seq,
                         .sent_ms = EVENT_ABSENT,
                         .raw = "",
                         .matches = em,
                         .n_matches = n,
                         .size = (uint32_t)(at_s + strings + 1)};
    atomic_init(&ev->refs, 1);
    ev->source = model_ev_copy(&at, source);
    for (uint32_t i = 0; i < n; i++) {
        em[i] = ms[i];
        em[i].id = model_ev_copy(&at, ms[i].id);
        em[i].phase = model_ev_copy(&at, ms[i].phase);
        em[i].fixture.sport = model_ev_copy(&at, ms[i].fixture.sport);
        em[i].fixture.competition =
            model_ev_copy(&at, ms[i].fixture.competition);
        em[i].fixture.home = model_ev_copy(&at, ms[i].fixture.home);
        em[i].fixture.away = model_ev_copy(&at, ms[i].fixture.away);
        em[i].fixture.start = model_ev_copy(&at, ms[i].fixture.start);
        em[i].incidents = ei;
        for (uint32_t k = 0; k < ms[i].n_incidents; k++, ei++) {
            *ei = ms[i].incidents[k];
            ei->id = model_ev_copy(&at, ei->id);
            ei->type = model_ev_copy(&at, ei->type);
            ei->player = model_ev_copy(&at, ei->player);
            ei->assist = model_ev_copy(&at, ei->assist);
        }
    }
    return ev;
}

/* The store's answer to a load request when nothing is stored (a new
 * match, an empty database), or NULL when out of memory. */
static inline struct store_loaded_msg *model_ev_nothing_stored(void)
{
    struct store_load *load = calloc(1, sizeof(*load));
    struct store_loaded_msg *m =
        load ? store_loaded_msg_new(0, load, NULL) : NULL;
    if (!m) {
        free(load);
    }
    return m;
}

#endif /* TESTS_MODEL_EV_H */
