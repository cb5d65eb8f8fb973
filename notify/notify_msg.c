/* notify/notify_msg.c - constructors of the messages other actors send to
 * notify. */
#include <stdio.h>
#include <stdlib.h>

#include "model/update.h"
#include "notify/notify.h"

static void update_msg_free(struct actor_msg *msg)
{
    struct notify_update_msg *m =
        container_of(msg, struct notify_update_msg, hdr);
    update_unref(m->up);
    free(m);
}

struct actor_msg *notify_update_msg_new(struct update *up)
{
    /* Allocated here, not by actor_msg_new(), because releasing it must
     * also drop the update reference. */
    struct notify_update_msg *m = calloc(1, sizeof(*m));
    if (!m) {
        return NULL;
    }
    m->hdr.type = NOTIFY_MSG_UPDATE;
    m->hdr.free = update_msg_free;
    m->up = update_ref(up);
    return &m->hdr;
}

struct actor_msg *notify_feed_msg_new(const char *source, unsigned state)
{
    struct notify_feed_msg *m = actor_msg_new(sizeof(*m), NOTIFY_MSG_FEED);
    if (!m) {
        return NULL;
    }
    snprintf(m->source, sizeof(m->source), "%s", source);
    m->state = (uint8_t)state;
    return &m->hdr;
}

struct actor_msg *notify_ready_msg_new(uint32_t what, bool ok)
{
    struct notify_ready_msg *m = actor_msg_new(sizeof(*m), NOTIFY_MSG_READY);
    if (!m) {
        return NULL;
    }
    m->what = what;
    m->ok = ok;
    return &m->hdr;
}
