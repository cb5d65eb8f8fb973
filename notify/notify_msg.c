/* notify/notify_msg.c - constructors of notify's own messages. */
#include "notify/notify.h"

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
