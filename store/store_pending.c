/* store/store_pending.c - events held until complete, in seq order per
 * source. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ingest/event.h"
#include "store/store_impl.h"

/*
 * DESIGN
 * Per source, a ring of the items received and not yet moved into a batch,
 * in seq order (sources send in seq order, so an arrival is an append and an
 * applied element finds its event by binary search). An item is an event
 * waiting for its match elements, or a rejected document that used up a seq
 * (complete at once). Only the oldest complete items leave, so the offset a
 * batch advances to is always a prefix of complete items.
 *
 * Elements are tracked one bit each, not just counted: the same element
 * reported twice (a bug upstream) must not complete an event early, which
 * would ack it before all its updates are durable.
 *
 * An applied element for an event the tracker does not hold is ignored, not
 * fatal: the update it carries is written anyway, and not counting it can
 * only delay an ack, never bring one forward.
 */

struct item {
    uint64_t seq;
    struct event *ev;           /* held reference; NULL for a rejected one */
    struct store_rejected *rej; /* own copy (one allocation), or NULL */
    uint64_t rej_id;
    uint32_t left; /* elements not yet applied */
    uint64_t bits; /* applied elements when n_matches <= 64 */
    uint64_t *big; /* ... or here when more */
};

struct source {
    struct item *items; /* ring of cap slots */
    size_t head;        /* oldest */
    size_t count;
    size_t cap;        /* a power of two, or 0 */
    uint64_t last_seq; /* highest seq received */
};

struct store__pending {
    struct store__map sources; /* name -> struct source * (data) */
    void (*release)(struct event *ev);
    size_t count;
};

struct store__pending *store__pending_new(void (*release)(struct event *ev))
{
    struct store__pending *p = store__calloc(1, sizeof(*p));
    if (!p) {
        return NULL;
    }
    store__map_init(&p->sources);
    p->release = release;
    return p;
}

static struct item *at(const struct source *s, size_t i)
{
    return &s->items[(s->head + i) & (s->cap - 1)];
}

static void drop_item(struct store__pending *p, struct item *it)
{
    if (it->ev) {
        p->release(it->ev);
    }
    free(it->rej);
    free(it->big);
    memset(it, 0, sizeof(*it));
}

void store__pending_free(struct store__pending *p)
{
    if (!p) {
        return;
    }
    for (uint32_t i = 0; i < p->sources.n; i++) {
        struct source *s = p->sources.entries[i].data;
        for (size_t j = 0; j < s->count; j++) {
            drop_item(p, at(s, j));
        }
        free(s->items);
        free(s);
    }
    store__map_release(&p->sources);
    free(p);
}

size_t store__pending_count(const struct store__pending *p)
{
    return p->count;
}

uint64_t store__pending_last_seq(const struct store__pending *p,
                                 const char *source)
{
    const struct store__map_entry *e =
        store__map_get(&p->sources, source, strlen(source));
    return e ? ((const struct source *)e->data)->last_seq : 0;
}

static struct source *find_source(const struct store__pending *p,
                                  const char *name)
{
    const struct store__map_entry *e =
        store__map_get(&p->sources, name, strlen(name));
    return e ? e->data : NULL;
}

static struct source *get_source(struct store__pending *p, const char *name)
{
    struct source *s = find_source(p, name);
    if (s) {
        return s;
    }
    s = store__calloc(1, sizeof(*s));
    if (!s) {
        return NULL;
    }
    bool added;
    struct store__map_entry *e =
        store__map_put(&p->sources, name, strlen(name), &added);
    if (!e) {
        free(s);
        return NULL;
    }
    e->data = s;
    return s;
}

/* Makes room for one more item at the tail. */
static int reserve(struct source *s)
{
    if (s->count < s->cap) {
        return 0;
    }
    size_t cap = s->cap ? s->cap * 2 : 16;
    struct item *items = store__calloc(cap, sizeof(*items));
    if (!items) {
        return -ENOMEM;
    }
    for (size_t i = 0; i < s->count; i++) {
        items[i] = *at(s, i);
    }
    free(s->items);
    s->items = items;
    s->head = 0;
    s->cap = cap;
    return 0;
}

/*
 * Moves the oldest complete items of @s into @b: each its row, then the
 * offset. On failure the item that failed stays first, complete, and the
 * next call tries it again; the batch holds exactly the rows the offset
 * covers.
 */
static int drain(struct store__pending *p, const char *name, struct source *s,
                 struct store__batch *b)
{
    if (s->count == 0 || at(s, 0)->left > 0) {
        return 0;
    }
    bool added;
    struct store__map_entry *off =
        store__map_put(&b->offsets, name, strlen(name), &added);
    if (!off) {
        return -ENOMEM;
    }
    while (s->count > 0 && at(s, 0)->left == 0) {
        struct item *it = at(s, 0);
        int err = it->ev ? store__batch_add_event(b, it->ev)
                         : store__batch_add_rejected(b, it->rej_id, it->rej);
        if (err != 0) {
            return err;
        }
        if (off->value < it->seq) {
            off->value = it->seq;
        }
        drop_item(p, it);
        s->head = (s->head + 1) & (s->cap - 1);
        s->count--;
        p->count--;
    }
    return 0;
}

int store__pending_event(struct store__pending *p, struct event *ev,
                         struct store__batch *b)
{
    struct source *s = get_source(p, ev->source);
    if (!s) {
        p->release(ev);
        return -ENOMEM;
    }
    if (ev->seq <= s->last_seq) {
        p->release(ev);
        return STORE_PENDING_STALE;
    }
    uint64_t *big = NULL;
    if (ev->n_matches > 64) {
        big = store__calloc((ev->n_matches + 63) / 64, sizeof(*big));
    }
    if ((ev->n_matches > 64 && !big) || reserve(s) != 0) {
        free(big);
        p->release(ev);
        return -ENOMEM;
    }
    struct item *it = at(s, s->count);
    *it = (struct item){
        .seq = ev->seq, .ev = ev, .left = ev->n_matches, .big = big};
    s->count++;
    s->last_seq = ev->seq;
    p->count++;
    return drain(p, ev->source, s, b);
}

int store__pending_rejected(struct store__pending *p, uint64_t id,
                            const struct store_rejected *rej,
                            struct store__batch *b)
{
    if (!rej->source || !rej->has_seq) {
        return -EINVAL;
    }
    struct source *s = get_source(p, rej->source);
    if (!s) {
        return -ENOMEM;
    }
    if (rej->seq <= s->last_seq) {
        return STORE_PENDING_STALE;
    }
    /* One allocation: the struct, the source, the reason, the kept bytes. */
    size_t keep = rej->raw_len < b->raw_max ? rej->raw_len : b->raw_max;
    size_t src_len = strlen(rej->source) + 1;
    size_t reason_len = strlen(rej->reason) + 1;
    struct store_rejected *copy =
        store__malloc(sizeof(*copy) + src_len + reason_len + keep);
    if (!copy || reserve(s) != 0) {
        free(copy);
        return -ENOMEM;
    }
    char *text = (char *)(copy + 1);
    memcpy(text, rej->source, src_len);
    memcpy(text + src_len, rej->reason, reason_len);
    if (keep > 0) {
        memcpy(text + src_len + reason_len, rej->raw, keep);
    }
    *copy = *rej;
    copy->source = text;
    copy->reason = text + src_len;
    copy->raw = text + src_len + reason_len;
    copy->raw_len = keep;
    copy->size = rej->size > rej->raw_len ? rej->size : rej->raw_len;
    struct item *it = at(s, s->count);
    *it = (struct item){.seq = rej->seq, .rej = copy, .rej_id = id};
    s->count++;
    s->last_seq = rej->seq;
    p->count++;
    return drain(p, rej->source, s, b);
}

int store__pending_applied(struct store__pending *p, const struct event *ev,
                           uint32_t index, struct store__batch *b)
{
    struct source *s = find_source(p, ev->source);
    if (!s || s->count == 0 || index >= ev->n_matches) {
        return STORE_PENDING_UNKNOWN;
    }
    /* Binary search: seqs increase from the head. */
    size_t lo = 0, hi = s->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (at(s, mid)->seq < ev->seq) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    if (lo == s->count || at(s, lo)->ev != ev) {
        return STORE_PENDING_UNKNOWN;
    }
    struct item *it = at(s, lo);
    uint64_t *word = it->big ? &it->big[index / 64] : &it->bits;
    uint64_t bit = 1ull << (index % 64);
    if (*word & bit) {
        return STORE_PENDING_REPEAT;
    }
    *word |= bit;
    it->left--;
    return lo == 0 ? drain(p, ev->source, s, b) : 0;
}
