/* store/store_msg.c - the messages other stages send the store, and its
 * replies. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingest/event.h"
#include "store/store.h"

static void event_msg_free(struct actor_msg *msg)
{
    event_unref(((struct store_event_msg *)msg)->ev);
    free(msg);
}

struct store_event_msg *store_event_msg_new(struct event *ev)
{
    struct store_event_msg *m = actor_msg_new(sizeof(*m), STORE_MSG_EVENT);
    if (!m) {
        return NULL;
    }
    m->hdr.free = event_msg_free;
    m->ev = event_ref(ev);
    return m;
}

/* The rejected message is one allocation: header, then source, reason and
 * raw bytes copied behind it. */
struct store_rejected_msg *
store_rejected_msg_new(const struct store_rejected *rej)
{
    size_t src = rej->source ? strlen(rej->source) + 1 : 0;
    size_t reason = strlen(rej->reason) + 1;
    size_t raw = rej->raw_len < STORE_REJECTED_RAW_MAX ? rej->raw_len
                                                       : STORE_REJECTED_RAW_MAX;
    struct store_rejected_msg *m =
        actor_msg_new(sizeof(*m) + src + reason + raw, STORE_MSG_REJECTED);
    if (!m) {
        return NULL;
    }
    char *p = (char *)(m + 1);
    m->rej = *rej;
    if (src) {
        memcpy(p, rej->source, src);
        m->rej.source = p;
        p += src;
    }
    memcpy(p, rej->reason, reason);
    m->rej.reason = p;
    p += reason;
    if (raw) {
        memcpy(p, rej->raw, raw);
    }
    m->rej.raw = p;
    m->rej.raw_len = raw;
    if (m->rej.size < rej->raw_len) {
        m->rej.size = rej->raw_len;
    }
    return m;
}

struct store_load_req_msg *store_load_req_msg_new(uint64_t reply_to,
                                                  const char *match_id)
{
    struct store_load_req_msg *m =
        actor_msg_new(sizeof(*m), STORE_MSG_LOAD_REQ);
    if (!m) {
        return NULL;
    }
    m->reply_to = reply_to;
    if (match_id) {
        snprintf(m->match_id, sizeof(m->match_id), "%s", match_id);
    }
    return m;
}

static void loaded_msg_free(struct actor_msg *msg)
{
    struct store_loaded_msg *m = (struct store_loaded_msg *)msg;
    store_load_free(m->load);
    match_image_unref(m->image);
    free(m);
}

struct store_loaded_msg *store_loaded_msg_new(int status,
                                              struct store_load *load,
                                              struct match_image *image)
{
    struct store_loaded_msg *m = actor_msg_new(sizeof(*m), STORE_MSG_LOADED);
    if (!m) {
        return NULL;
    }
    m->hdr.free = loaded_msg_free;
    m->status = status;
    m->load = load;
    m->image = image;
    return m;
}

struct store_acked_req_msg *store_acked_req_msg_new(uint64_t reply_to,
                                                    const char *source)
{
    size_t len = strlen(source) + 1;
    struct store_acked_req_msg *m =
        actor_msg_new(sizeof(*m) + len, STORE_MSG_ACKED_REQ);
    if (!m) {
        return NULL;
    }
    m->reply_to = reply_to;
    memcpy(m->source, source, len);
    return m;
}

struct store_ack_msg *store_ack_msg_new(const char *source, uint64_t seq,
                                        uint64_t pending_seq)
{
    size_t len = strlen(source) + 1;
    struct store_ack_msg *m = actor_msg_new(sizeof(*m) + len, STORE_MSG_ACK);
    if (!m) {
        return NULL;
    }
    m->seq = seq;
    m->pending_seq = pending_seq;
    memcpy(m->source, source, len);
    return m;
}
