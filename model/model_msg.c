/* model/model_msg.c - the messages that carry updates to notify and store. */
#include <stdlib.h>
#include <string.h>

#include "ingest/event.h"
#include "model/update.h"

static void update_msg_free(struct actor_msg *msg)
{
    struct model_update_msg *m = (struct model_update_msg *)msg;
    update_unref(m->up);
    event_unref(m->ev);
    free(m);
}

struct model_update_msg *model_update_msg_new(struct update *up,
                                              struct event *ev,
                                              uint32_t index,
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
