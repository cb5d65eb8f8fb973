/* ingest/ingest_ring.c - growable FIFOs, and the ordered outbox built on one.
 */
#include <errno.h>
#include <string.h>

#include "ingest/ingest_impl.h"

#define RING_FIRST  16u   /* elements of a ring's first allocation */
#define RING_RETAIN 1024u /* an empty ring larger than this lets go */

void ingest__ring_init(struct ingest__ring *r, size_t size)
{
    memset(r, 0, sizeof(*r));
    r->size = size;
}

void ingest__ring_release(struct ingest__ring *r)
{
    ingest__free(r->v);
    r->v = NULL;
    r->head = 0;
    r->len = 0;
    r->cap = 0;
}

void *ingest__ring_at(const struct ingest__ring *r, size_t i)
{
    if (i >= r->len) {
        return NULL;
    }
    return r->v + ((r->head + i) % r->cap) * r->size;
}

/* Doubles the room, unwrapping the elements to the start. */
static int grow(struct ingest__ring *r)
{
    size_t cap = r->cap ? r->cap * 2 : RING_FIRST;
    char *v = ingest__malloc(cap * r->size);
    if (!v) {
        return -ENOMEM;
    }
    size_t first = r->cap - r->head < r->len ? r->cap - r->head : r->len;
    if (r->len) {
        memcpy(v, r->v + r->head * r->size, first * r->size);
        memcpy(v + first * r->size, r->v, (r->len - first) * r->size);
    }
    ingest__free(r->v);
    r->v = v;
    r->cap = cap;
    r->head = 0;
    return 0;
}

void *ingest__ring_push(struct ingest__ring *r)
{
    if (r->len == r->cap && grow(r) != 0) {
        return NULL;
    }
    r->len++;
    return ingest__ring_at(r, r->len - 1);
}

void ingest__ring_pop(struct ingest__ring *r)
{
    ACTOR_ASSERT(r->len > 0);
    r->head = (r->head + 1) % r->cap;
    r->len--;
    if (r->len == 0) {
        r->head = 0;
        if (r->cap > RING_RETAIN) {
            ingest__ring_release(r); /* a burst is over */
        }
    }
}

/* ---- outbox -------------------------------------------------------------- */

struct ingest__outbox_item {
    uint64_t to;
    struct actor_msg *msg;
};

void ingest__outbox_init(struct ingest__outbox *ob)
{
    ingest__ring_init(&ob->q, sizeof(struct ingest__outbox_item));
    ob->dropped = 0;
}

void ingest__outbox_release(struct ingest__outbox *ob)
{
    struct ingest__outbox_item *it;
    while ((it = ingest__ring_at(&ob->q, 0))) {
        actor_msg_free(it->msg);
        ingest__ring_pop(&ob->q);
    }
    ingest__ring_release(&ob->q);
}

/* Sends @msg to @to. Returns false when the mailbox is full (the caller
 * keeps @msg); a dead receiver's message is freed. */
static bool try_send(struct actor_ctx *ctx, struct ingest__outbox *ob,
                     uint64_t to, struct actor_msg *msg)
{
    int rc = actor_send(ctx, to, msg);
    if (rc == -EAGAIN) {
        return false;
    }
    if (rc != 0) {
        actor_msg_free(msg);
        ob->dropped++;
    }
    return true;
}

int ingest__outbox_send(struct actor_ctx *ctx, struct ingest__outbox *ob,
                        uint64_t to, struct actor_msg *msg)
{
    if (ob->q.len == 0 && try_send(ctx, ob, to, msg)) {
        return 0;
    }
    struct ingest__outbox_item *it = ingest__ring_push(&ob->q);
    if (!it) {
        actor_msg_free(msg);
        return -ENOMEM;
    }
    it->to = to;
    it->msg = msg;
    return 0;
}

void ingest__outbox_flush(struct actor_ctx *ctx, struct ingest__outbox *ob)
{
    struct ingest__outbox_item *it;
    while ((it = ingest__ring_at(&ob->q, 0))) {
        if (!try_send(ctx, ob, it->to, it->msg)) {
            return;
        }
        ingest__ring_pop(&ob->q);
    }
}
