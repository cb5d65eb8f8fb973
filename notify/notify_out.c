/* notify/notify_out.c - outbound messages shared by many clients, the
 * per-client queue of references to them, and the log "*" clients share. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ingest/event.h"
#include "notify/notify_impl.h"

/* ---- allocation seam ---------------------------------------------------- */

long notify__alloc_fail_at = -1;

static bool alloc_fails(void)
{
    if (notify__alloc_fail_at <= 0) {
        return false;
    }
    if (--notify__alloc_fail_at > 0) {
        return false;
    }
    notify__alloc_fail_at = -1;
    return true;
}

void *notify__malloc(size_t size)
{
    return alloc_fails() ? NULL : malloc(size);
}

void *notify__calloc(size_t n, size_t size)
{
    return alloc_fails() ? NULL : calloc(n, size);
}

void *notify__realloc(void *p, size_t size)
{
    return alloc_fails() ? NULL : realloc(p, size);
}

/* ---- outbound messages -------------------------------------------------- */

struct notify__out *notify__out_new(enum notify__out_kind kind,
                                    const char *data, size_t len)
{
    struct notify__out *o =
        notify__malloc(sizeof(*o) + NOTIFY__HEADROOM + len + 1);
    if (!o) {
        return NULL;
    }
    *o = (struct notify__out){
        .refs = 1,
        .kind = (uint8_t)kind,
        .sent_ms = EVENT_ABSENT,
        .len = len,
    };
    char *d = o->bytes + NOTIFY__HEADROOM;
    memcpy(d, data, len);
    d[len] = '\0';
    o->data = d;
    return o;
}

struct notify__out *notify__out_wrap(struct update *up,
                                     void (*up_unref)(struct update *up))
{
    struct notify__out *o = notify__malloc(sizeof(*o));
    if (!o) {
        return NULL;
    }
    *o = (struct notify__out){
        .refs = 1,
        .kind = up->kind == UPDATE_SNAPSHOT ? NOTIFY__OUT_SNAPSHOT
                                            : NOTIFY__OUT_DELTA,
        .version = up->image->version,
        .sent_ms = up->sent_ms,
        .up = update_ref(up),
        .up_unref = up_unref,
        .data = up->json,
        .len = up->json_len,
    };
    return o;
}

void notify__out_unref(struct notify__out *o)
{
    if (!o || --o->refs > 0) {
        return;
    }
    if (o->up) {
        o->up_unref(o->up);
    }
    free(o);
}

/* ---- per-client queue --------------------------------------------------- */

#define QUEUE_MIN      8  /* first allocation, in slots */
#define QUEUE_IDLE_MAX 16 /* an empty queue keeps at most this many slots */

static int grow(struct notify__queue *q)
{
    uint32_t cap = q->cap ? q->cap * 2 : QUEUE_MIN;
    if (cap < q->cap) {
        return -ENOMEM;
    }
    struct notify__out **slot = notify__malloc(cap * sizeof(*slot));
    if (!slot) {
        return -ENOMEM;
    }
    for (uint32_t i = 0; i < q->len; i++) {
        slot[i] = q->slot[(q->head + i) & (q->cap - 1)];
    }
    free(q->slot);
    q->slot = slot;
    q->cap = cap;
    q->head = 0;
    return 0;
}

int notify__queue_push(struct notify__queue *q, struct notify__out *o)
{
    if (q->len == q->cap) {
        int rc = grow(q);
        if (rc != 0) {
            return rc;
        }
    }
    q->slot[(q->head + q->len) & (q->cap - 1)] = notify__out_ref(o);
    q->len++;
    q->bytes += o->len;
    return 0;
}

struct notify__out *notify__queue_at(const struct notify__queue *q, uint32_t i)
{
    return q->slot[(q->head + i) & (q->cap - 1)];
}

struct notify__out *notify__queue_pop(struct notify__queue *q)
{
    if (q->len == 0) {
        return NULL;
    }
    struct notify__out *o = q->slot[q->head];
    q->head = (q->head + 1) & (q->cap - 1);
    q->len--;
    q->bytes -= o->len;
    return o;
}

uint32_t notify__queue_remove_if(struct notify__queue *q,
                                 bool (*drop)(void *arg,
                                              const struct notify__out *o),
                                 void *arg)
{
    uint32_t kept = 0, removed = 0;
    for (uint32_t i = 0; i < q->len; i++) {
        struct notify__out *o = notify__queue_at(q, i);
        if (drop(arg, o)) {
            q->bytes -= o->len;
            notify__out_unref(o);
            removed++;
            continue;
        }
        q->slot[(q->head + kept) & (q->cap - 1)] = o;
        kept++;
    }
    q->len = kept;
    return removed;
}

uint32_t notify__queue_clear(struct notify__queue *q)
{
    uint32_t n = q->len;
    struct notify__out *o;
    while ((o = notify__queue_pop(q))) {
        notify__out_unref(o);
    }
    q->head = 0;
    return n;
}

void notify__queue_shrink(struct notify__queue *q)
{
    if (q->len == 0 && q->cap > QUEUE_IDLE_MAX) {
        free(q->slot);
        q->slot = NULL;
        q->cap = 0;
        q->head = 0;
    }
}

uint32_t notify__queue_release(struct notify__queue *q)
{
    uint32_t n = notify__queue_clear(q);
    free(q->slot);
    *q = (struct notify__queue){0};
    return n;
}

/* ---- the shared log ------------------------------------------------------ */

#define LOG_MIN 64 /* first allocation, in entries */

static void log_drop_oldest(struct notify__log *lg)
{
    struct notify__log_entry *e = notify__log_at(lg, lg->tail);
    notify__out_unref(e->o);
    e->o = NULL;
    lg->tail++;
}

static int log_grow(struct notify__log *lg)
{
    uint32_t cap = lg->cap ? lg->cap * 2 : LOG_MIN;
    if (cap < lg->cap) {
        return -ENOMEM;
    }
    struct notify__log_entry *slot = notify__malloc(cap * sizeof(*slot));
    if (!slot) {
        return -ENOMEM;
    }
    for (uint64_t s = lg->tail; s < lg->head; s++) {
        slot[s & (cap - 1)] = *notify__log_at(lg, s);
    }
    free(lg->slot);
    lg->slot = slot;
    lg->cap = cap;
    return 0;
}

int notify__log_push(struct notify__log *lg, struct notify__out *o, bool owe)
{
    /* Past the bound the oldest go, keeping this one whatever its size. */
    while (lg->tail < lg->head &&
           lg->end_pos - notify__log_at(lg, lg->tail)->pos + o->len >
               lg->max_bytes) {
        log_drop_oldest(lg);
    }
    if (lg->head - lg->tail == lg->cap) {
        int rc = log_grow(lg);
        if (rc != 0) {
            return rc;
        }
    }
    *notify__log_at(lg, lg->head) = (struct notify__log_entry){
        .o = notify__out_ref(o), .pos = lg->end_pos, .owe = owe};
    lg->head++;
    lg->end_pos += o->len;
    return 0;
}

void notify__log_release(struct notify__log *lg)
{
    while (lg->tail < lg->head) {
        log_drop_oldest(lg);
    }
    free(lg->slot);
    lg->slot = NULL;
    lg->cap = 0;
}
