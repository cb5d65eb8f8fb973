/* model/model_msg.c - the messages that carry updates to notify and store. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ingest/event.h"
#include "model/model_impl.h"
#include "model/update.h"

static void update_msg_free(struct actor_msg *msg)
{
    struct model_update_msg *m = (struct model_update_msg *)msg;
    update_unref(m->up);
    event_unref(m->ev);
    free(m);
}

struct model_update_msg *model_update_msg_new(struct update *up,
                                              struct event *ev, uint32_t index,
                                              enum model_outcome outcome)
{
    struct model_update_msg *m = actor_msg_new(sizeof(*m), MODEL_MSG_UPDATE);
    if (!m) {
        return NULL;
    }
    m->hdr.free = update_msg_free;
    m->up = up ? update_ref(up) : NULL;
    m->ev = ev ? event_ref(ev) : NULL;
    m->index = index;
    m->outcome = (uint8_t)outcome;
    return m;
}

/*
 * An applied update goes to the store and to notify: both messages live in
 * one block holding one reference to the update and one to the event, so
 * the hot path makes one allocation for the two, and the block goes when
 * both receivers are done with their message.
 */
struct pair;

struct half {
    struct model_update_msg msg; /* first: the receiver's message */
    struct pair *pair;
};

struct pair {
    atomic_uint refs; /* halves not yet freed */
    struct half half[2];
};

static void half_free(struct actor_msg *msg)
{
    struct pair *p = container_of(msg, struct half, msg.hdr)->pair;
    if (atomic_fetch_sub_explicit(&p->refs, 1, memory_order_acq_rel) == 1) {
        update_unref(p->half[0].msg.up);
        event_unref(p->half[0].msg.ev);
        free(p);
    }
}

int model__update_pair_new(struct update *up, struct event *ev, uint32_t index,
                           struct model_update_msg **to_store,
                           struct model_update_msg **to_notify)
{
    struct pair *p = calloc(1, sizeof(*p));
    if (!p) {
        return -ENOMEM;
    }
    atomic_init(&p->refs, 2);
    for (int k = 0; k < 2; k++) {
        struct model_update_msg *m = &p->half[k].msg;
        p->half[k].pair = p;
        m->hdr.type = MODEL_MSG_UPDATE;
        m->hdr.free = half_free;
        m->up = up;
        m->ev = k == 0 ? ev : NULL;
        m->index = k == 0 ? index : 0;
        m->outcome = MODEL_APPLIED;
    }
    update_ref(up);
    if (ev) {
        event_ref(ev);
    }
    *to_store = &p->half[0].msg;
    *to_notify = &p->half[1].msg;
    return 0;
}

struct model_feed_notice_msg *model_feed_notice_msg_new(const char *source,
                                                        enum match_feed state)
{
    size_t len = strlen(source);
    struct model_feed_notice_msg *m =
        actor_msg_new(sizeof(*m) + len + 1, MODEL_MSG_FEED_NOTICE);
    if (!m) {
        return NULL;
    }
    m->state = (uint8_t)state;
    memcpy(m->source, source, len + 1);
    return m;
}
