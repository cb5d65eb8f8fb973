/* notify/notify_hub.c - matches, subscriptions and fan-out: who gets which
 * message, in which order, and what a slow client gets instead. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingest/event.h"
#include "notify/notify_impl.h"

/*
 * DESIGN
 * Every match has a dense index. A client owes nothing, or owes a snapshot
 * of some matches: a bitmap by match index ("pending"). That one mechanism
 * serves a new subscription, a match seen for the first time, a version
 * jump, a resume that is too old, and conflation: the snapshot is built at
 * the moment the client can take it, from the latest image, once per match
 * version for every client that needs it (match->snap). While a snapshot is
 * owed, deltas of that match are skipped for that client, so what it
 * receives per match is always a snapshot followed by consecutive deltas.
 *
 * An update is wrapped once (struct notify__out around the model's JSON).
 * A list subscriber gets its reference pushed onto its queue. "*"
 * subscribers, who may be thousands, share one log instead: an update is
 * one append whatever their number, each of them keeps a position in it,
 * and the transport asks them all to write once per cycle
 * (notify__hub_flush), so each takes one frame with everything since its
 * last. Clients at the same position get the same bytes: a batched frame
 * is built once and kept for the next one (hub->shared).
 *
 * When a client's queue, or its unread part of the log, passes
 * backlog_soft bytes it turns to conflation: what it has not taken of a
 * match becomes an owed snapshot, and while conflating every new match
 * message does too; its memory is then bounded by the bitmap. It leaves
 * conflation once it has drained everything. A "*" client's owed snapshots
 * go only once it has read the log to its end, so no delta older than a
 * snapshot can follow it. A client that owes messages and takes no frame
 * for stall_ms (its socket is full: it does not read), or whose queue of
 * other messages (pongs, errors) passes backlog_hard, is closed with 1013.
 */

#define WS_TRY_AGAIN_LATER 1013

/* ---- the match table ---------------------------------------------------- */

static uint64_t hash_id(const char *id, size_t len)
{
    uint64_t h = 14695981039346656037ull; /* FNV-1a */
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)id[i];
        h *= 1099511628211ull;
    }
    return h;
}

static struct notify__match *find(const struct notify__hub *hub, const char *id,
                                  size_t len, uint64_t h)
{
    struct notify__match *m = hub->buckets[h & (hub->n_buckets - 1)];
    for (; m; m = m->hnext) {
        if (m->hash == h && m->id_len == len && memcmp(m->id, id, len) == 0) {
            return m;
        }
    }
    return NULL;
}

struct notify__match *notify__hub_find(const struct notify__hub *hub,
                                       const char *id)
{
    size_t len = strlen(id);
    return find(hub, id, len, hash_id(id, len));
}

static int table_grow(struct notify__hub *hub)
{
    uint32_t n = hub->n_buckets * 2;
    struct notify__match **b = notify__calloc(n, sizeof(*b));
    if (!b) {
        return -ENOMEM;
    }
    for (uint32_t i = 0; i < hub->n_buckets; i++) {
        struct notify__match *m = hub->buckets[i], *next;
        for (; m; m = next) {
            next = m->hnext;
            m->hnext = b[m->hash & (n - 1)];
            b[m->hash & (n - 1)] = m;
        }
    }
    free(hub->buckets);
    hub->buckets = b;
    hub->n_buckets = n;
    return 0;
}

static int index_take(struct notify__hub *hub, uint32_t *idx)
{
    if (hub->n_free_index > 0) {
        *idx = hub->free_index[--hub->n_free_index];
        return 0;
    }
    if (hub->n_index == hub->cap_index) {
        uint32_t cap = hub->cap_index ? hub->cap_index * 2 : 64;
        struct notify__match **bi =
            notify__realloc(hub->by_index, cap * sizeof(*bi));
        if (!bi) {
            return -ENOMEM;
        }
        hub->by_index = bi;
        uint32_t *fi = notify__realloc(hub->free_index, cap * sizeof(*fi));
        if (!fi) {
            return -ENOMEM;
        }
        hub->free_index = fi;
        hub->cap_index = cap;
    }
    *idx = hub->n_index++;
    return 0;
}

/* The match @id; created (unseen, without image) when @create. Sets *@m to
 * NULL when absent and not created. Returns 0 or -ENOMEM. */
static int match_get(struct notify__hub *hub, const char *id, size_t len,
                     bool create, struct notify__match **out)
{
    uint64_t h = hash_id(id, len);
    struct notify__match *m = find(hub, id, len, h);
    *out = m;
    if (m || !create) {
        return 0;
    }
    if (hub->n_matches >= hub->n_buckets && table_grow(hub) != 0) {
        return -ENOMEM;
    }
    m = notify__calloc(1, sizeof(*m) + len + 1);
    if (!m) {
        return -ENOMEM;
    }
    if (index_take(hub, &m->index) != 0) {
        free(m);
        return -ENOMEM;
    }
    m->hash = h;
    m->id_len = (uint32_t)len;
    memcpy(m->id, id, len);
    m->hnext = hub->buckets[h & (hub->n_buckets - 1)];
    hub->buckets[h & (hub->n_buckets - 1)] = m;
    hub->by_index[m->index] = m;
    hub->n_matches++;
    hub->n_unknown++;
    *out = m;
    return 0;
}

static void ring_clear(struct notify__match *m, uint32_t cap)
{
    for (uint32_t i = 0; i < m->ring_len; i++) {
        notify__out_unref(m->ring[(m->ring_head + i) % cap]);
    }
    m->ring_head = 0;
    m->ring_len = 0;
}

static void match_release(struct notify__hub *hub, struct notify__match *m)
{
    ring_clear(m, hub->cfg.ring);
    free(m->ring);
    notify__out_unref(m->snap);
    if (m->image) {
        hub->cfg.model->image_unref(m->image);
    }
    free(m->subs);
    free(m);
}

/* Unlinks @m and frees it: an unseen match nobody subscribes to any more,
 * or a long-quiet one. A client still owing its snapshot finds its index
 * empty (or reused by a newer match) and moves on. */
static void match_forget(struct notify__hub *hub, struct notify__match *m)
{
    struct notify__match **p = &hub->buckets[m->hash & (hub->n_buckets - 1)];
    while (*p != m) {
        p = &(*p)->hnext;
    }
    *p = m->hnext;
    hub->by_index[m->index] = NULL;
    /* free_index has room for every index ever taken. */
    hub->free_index[hub->n_free_index++] = m->index;
    hub->n_matches--;
    if (!m->image) {
        hub->n_unknown--;
    }
    match_release(hub, m);
}

static int ring_push(struct notify__hub *hub, struct notify__match *m,
                     struct notify__out *o)
{
    uint32_t cap = hub->cfg.ring;
    if (cap == 0) {
        return 0;
    }
    if (!m->ring) {
        m->ring = notify__calloc(cap, sizeof(*m->ring));
        if (!m->ring) {
            return -ENOMEM;
        }
    }
    if (m->ring_len == cap) {
        notify__out_unref(m->ring[m->ring_head]);
        m->ring_head = (m->ring_head + 1) % cap;
        m->ring_len--;
    }
    m->ring[(m->ring_head + m->ring_len) % cap] = notify__out_ref(o);
    m->ring_len++;
    return 0;
}

/* The cached snapshot of @m at its version, built on first need. Not
 * owned. NULL when out of memory. */
static struct notify__out *match_snapshot(struct notify__hub *hub,
                                          struct notify__match *m)
{
    if (m->snap) {
        return m->snap;
    }
    actor_buf_reset(&hub->tmp);
    hub->cfg.model->snapshot_json(m->image, &hub->tmp);
    if (hub->tmp.err) {
        return NULL;
    }
    struct notify__out *o =
        notify__out_new(NOTIFY__OUT_SNAPSHOT, hub->tmp.data, hub->tmp.len);
    if (!o) {
        return NULL;
    }
    o->match = m->index;
    o->version = m->version;
    m->snap = o;
    hub->stats.snapshots++;
    return o;
}

/* ---- what a client owes ------------------------------------------------- */

static void want_write(struct notify__hub *hub, struct notify__client *c)
{
    if (!c->write_wanted && !c->closing) {
        c->write_wanted = true;
        hub->cfg.want_write(c->io);
    }
}

static bool pending_has(const struct notify__client *c, uint32_t idx)
{
    return idx / 64 < c->pending_words &&
           (c->pending[idx / 64] >> (idx % 64) & 1);
}

/* Makes room for every match index the hub has handed out. */
static int pending_reserve(struct notify__hub *hub, struct notify__client *c)
{
    uint32_t words = (hub->cap_index + 63) / 64;
    if (words <= c->pending_words) {
        return 0;
    }
    uint64_t *p = notify__realloc(c->pending, words * sizeof(*p));
    if (!p) {
        return -ENOMEM;
    }
    memset(p + c->pending_words, 0, (words - c->pending_words) * sizeof(*p));
    c->pending = p;
    c->pending_words = words;
    return 0;
}

/* @c owes a snapshot of match @idx. Returns 0 or -ENOMEM. */
static int owe(struct notify__hub *hub, struct notify__client *c, uint32_t idx)
{
    if (c->closing) {
        return 0;
    }
    if (idx / 64 >= c->pending_words) {
        int rc = pending_reserve(hub, c);
        if (rc != 0) {
            return rc;
        }
    }
    uint64_t bit = 1ull << (idx % 64);
    if (!(c->pending[idx / 64] & bit)) {
        c->pending[idx / 64] |= bit;
        c->n_pending++;
    }
    want_write(hub, c);
    return 0;
}

static void pending_clear(struct notify__client *c, uint32_t idx)
{
    if (pending_has(c, idx)) {
        c->pending[idx / 64] &= ~(1ull << (idx % 64));
        c->n_pending--;
    }
}

static void pending_free(struct notify__client *c)
{
    free(c->pending);
    c->pending = NULL;
    c->pending_words = 0;
    c->n_pending = 0;
}

struct owe_ctx {
    struct notify__hub *hub;
    struct notify__client *c;
    int64_t match; /* -1: every match message */
};

/* remove_if predicate: drops match messages (of one match, or all) and owes
 * their snapshots instead. The bitmap is reserved beforehand. */
static bool drop_owing(void *arg, const struct notify__out *o)
{
    struct owe_ctx *x = arg;
    if (!notify__out_is_match(o) ||
        (x->match >= 0 && o->match != (uint32_t)x->match)) {
        return false;
    }
    (void)owe(x->hub, x->c, o->match);
    return true;
}

static bool drop_match(void *arg, const struct notify__out *o)
{
    const struct owe_ctx *x = arg;
    return notify__out_is_match(o) &&
           (x->match < 0 || o->match == (uint32_t)x->match);
}

/* Removes @c's queued messages of match @idx (-1: of every match). */
static void purge(struct notify__hub *hub, struct notify__client *c,
                  int64_t idx)
{
    struct owe_ctx x = {hub, c, idx};
    hub->stats.conflated += notify__queue_remove_if(&c->queue, drop_match, &x);
}

static int conflate(struct notify__hub *hub, struct notify__client *c)
{
    int rc = pending_reserve(hub, c);
    if (rc != 0) {
        return rc;
    }
    c->conflating = true;
    struct owe_ctx x = {hub, c, -1};
    hub->stats.conflated += notify__queue_remove_if(&c->queue, drop_owing, &x);
    if (c->queue.bytes > hub->cfg.backlog_hard) {
        notify__hub_close_client(hub, c, WS_TRY_AGAIN_LATER, "backlog");
    }
    return 0;
}

/* Owes a snapshot of every match with an image: @c lost its place in the
 * log. */
static int owe_all(struct notify__hub *hub, struct notify__client *c)
{
    int rc = pending_reserve(hub, c);
    for (uint32_t i = 0; rc == 0 && i < hub->n_index; i++) {
        struct notify__match *m = hub->by_index[i];
        if (m && m->image) {
            rc = owe(hub, c, i);
        }
    }
    return rc;
}

/* True when @c is too far behind in the log to take it as it is: past
 * backlog_soft, or out of it. */
static bool log_behind(const struct notify__hub *hub,
                       const struct notify__client *c)
{
    const struct notify__log *lg = &hub->log;
    return c->cursor < lg->tail ||
           notify__log_lag(lg, c->cursor) > hub->cfg.backlog_soft;
}

/* Conflates @c's unread part of the log: the matches it names become
 * owed snapshots (every match when @c fell out of the log), and @c moves
 * to the log's end. Returns 0 or -ENOMEM. */
static int log_conflate(struct notify__hub *hub, struct notify__client *c)
{
    struct notify__log *lg = &hub->log;
    c->conflating = true;
    if (c->cursor < lg->tail) {
        hub->stats.conflated += lg->head - c->cursor;
        c->cursor = lg->head;
        return owe_all(hub, c);
    }
    int rc = pending_reserve(hub, c);
    for (; rc == 0 && c->cursor < lg->head; c->cursor++) {
        rc = owe(hub, c, notify__log_at(lg, c->cursor)->o->match);
        hub->stats.conflated++;
    }
    return rc;
}

/* Queues @o for @c, or owes a snapshot instead when that is what @c needs.
 * Returns 0 or -ENOMEM. */
static int deliver(struct notify__hub *hub, struct notify__client *c,
                   struct notify__out *o)
{
    if (c->closing) {
        return 0;
    }
    if (notify__out_is_match(o)) {
        if (pending_has(c, o->match)) {
            hub->stats.conflated++;
            return 0;
        }
        if (c->conflating) {
            hub->stats.conflated++;
            return owe(hub, c, o->match);
        }
    }
    int rc = notify__queue_push(&c->queue, o);
    if (rc != 0) {
        return rc;
    }
    if (c->queue.bytes > hub->cfg.backlog_soft) {
        /* Once conflating, only other messages still queue: no need to
         * scan the queue again, only to watch the hard bound. */
        if (!c->conflating) {
            rc = conflate(hub, c);
        } else if (c->queue.bytes > hub->cfg.backlog_hard) {
            notify__hub_close_client(hub, c, WS_TRY_AGAIN_LATER, "backlog");
        }
        if (rc != 0) {
            return rc;
        }
    }
    want_write(hub, c);
    return 0;
}

/* Queues a message of @c's own (pong, error). Returns 0 or -ENOMEM. */
static int deliver_text(struct notify__hub *hub, struct notify__client *c,
                        const struct actor_buf *text)
{
    if (text->err) {
        return text->err;
    }
    struct notify__out *o =
        notify__out_new(NOTIFY__OUT_OTHER, text->data, text->len);
    if (!o) {
        return -ENOMEM;
    }
    int rc = deliver(hub, c, o);
    notify__out_unref(o);
    return rc;
}

/* ---- subscriptions ------------------------------------------------------ */

static struct notify__sub *sub_find(const struct notify__client *c,
                                    const struct notify__match *m)
{
    for (struct notify__sub *s = c->subs; s; s = s->next) {
        if (s->match == m) {
            return s;
        }
    }
    return NULL;
}

static int sub_add(struct notify__client *c, struct notify__match *m)
{
    if (m->n_subs == m->cap_subs) {
        uint32_t cap = m->cap_subs ? m->cap_subs * 2 : 4;
        struct notify__sub **s = notify__realloc(m->subs, cap * sizeof(*s));
        if (!s) {
            return -ENOMEM;
        }
        m->subs = s;
        m->cap_subs = cap;
    }
    struct notify__sub *s = notify__malloc(sizeof(*s));
    if (!s) {
        return -ENOMEM;
    }
    *s = (struct notify__sub){
        .client = c, .match = m, .next = c->subs, .pos = m->n_subs};
    m->subs[m->n_subs++] = s;
    c->subs = s;
    c->n_subs++;
    return 0;
}

static void sub_remove(struct notify__hub *hub, struct notify__sub *s)
{
    struct notify__match *m = s->match;
    struct notify__client *c = s->client;
    m->subs[s->pos] = m->subs[--m->n_subs];
    m->subs[s->pos]->pos = s->pos;
    struct notify__sub **p = &c->subs;
    while (*p != s) {
        p = &(*p)->next;
    }
    *p = s->next;
    c->n_subs--;
    free(s);
    if (!m->image && m->n_subs == 0) {
        match_forget(hub, m);
    }
}

static void unsubscribe_all(struct notify__hub *hub, struct notify__client *c)
{
    if (c->all) {
        struct notify__client *last = hub->wild[--hub->n_wild];
        hub->wild[c->wild_pos] = last;
        last->wild_pos = c->wild_pos;
        c->all = false;
    }
    while (c->subs) {
        sub_remove(hub, c->subs);
    }
}

/* Recovers @c from @since in match @m: the ring's updates after @since (the
 * first marked "recovered"), nothing when current, else a snapshot. */
static int resume(struct notify__hub *hub, struct notify__client *c,
                  struct notify__match *m, uint64_t since)
{
    if (!m->image || since == m->version) {
        return 0;
    }
    uint64_t first = m->version - m->ring_len + 1;
    if (since > m->version || m->ring_len == 0 || since + 1 < first ||
        c->conflating) {
        hub->stats.resume_snapshots++;
        return owe(hub, c, m->index);
    }
    for (uint64_t v = since + 1; v <= m->version; v++) {
        struct notify__out *o =
            m->ring[(m->ring_head + (v - first)) % hub->cfg.ring];
        int rc;
        if (v == since + 1 && o->len > 1 && o->data[0] == '{') {
            /* One copy for this client: the first carries the flag. */
            actor_buf_reset(&hub->tmp);
            actor_buf_str(&hub->tmp, "{\"recovered\":true,");
            actor_buf_add(&hub->tmp, o->data + 1, o->len - 1);
            if (hub->tmp.err) {
                return hub->tmp.err;
            }
            struct notify__out *r =
                notify__out_new(o->kind, hub->tmp.data, hub->tmp.len);
            if (!r) {
                return -ENOMEM;
            }
            r->match = o->match;
            r->version = o->version;
            r->sent_ms = o->sent_ms;
            rc = deliver(hub, c, r);
            notify__out_unref(r);
        } else {
            rc = deliver(hub, c, o);
        }
        if (rc != 0) {
            return rc;
        }
    }
    hub->stats.recovered++;
    return 0;
}

/* The request's since entry for @id (they are sorted by id), or NULL. */
static const struct notify__since *since_of(const struct notify__req *req,
                                            const char *id)
{
    uint32_t lo = 0, hi = req->n_since;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        int c = strcmp(req->since[mid].id, id);
        if (c == 0) {
            return &req->since[mid];
        }
        if (c < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return NULL;
}

static int reply_error(struct notify__hub *hub, struct notify__client *c,
                       const struct notify__err *err)
{
    hub->stats.errors++;
    actor_buf_reset(&hub->tmp);
    notify__err_json(err, &hub->tmp);
    return deliver_text(hub, c, &hub->tmp);
}

static int subscribe_all(struct notify__hub *hub, struct notify__client *c,
                         const struct notify__req *req)
{
    if (!c->all) {
        if (hub->n_wild == hub->cap_wild) {
            uint32_t cap = hub->cap_wild ? hub->cap_wild * 2 : 64;
            struct notify__client **w =
                notify__realloc(hub->wild, cap * sizeof(*w));
            if (!w) {
                return -ENOMEM;
            }
            hub->wild = w;
            hub->cap_wild = cap;
        }
        while (c->subs) {
            sub_remove(hub, c->subs);
        }
        c->all = true;
        c->wild_pos = hub->n_wild;
        hub->wild[hub->n_wild++] = c;
    }
    /* Start over: a snapshot of every match, except where since resumes,
     * and the log from here on. */
    c->cursor = hub->log.head;
    purge(hub, c, -1);
    int rc = pending_reserve(hub, c);
    if (rc != 0) {
        return rc;
    }
    for (uint32_t i = 0; i < hub->n_index; i++) {
        struct notify__match *m = hub->by_index[i];
        if (m && m->image) {
            (void)owe(hub, c, i);
        }
    }
    for (uint32_t i = 0; i < req->n_since; i++) {
        struct notify__match *m = notify__hub_find(hub, req->since[i].id);
        if (m && m->image) {
            pending_clear(c, m->index);
            rc = resume(hub, c, m, req->since[i].version);
            if (rc != 0) {
                return rc;
            }
        }
    }
    return 0;
}

static int subscribe_list(struct notify__hub *hub, struct notify__client *c,
                          const struct notify__req *req)
{
    struct notify__err err;
    if (!c->all) {
        /* All or nothing: check both limits before changing anything. */
        uint32_t fresh = 0, unknown = 0;
        const char *first_unknown = NULL;
        for (uint32_t i = 0; i < req->n_ids; i++) {
            struct notify__match *m = notify__hub_find(hub, req->ids[i]);
            if (!m) {
                fresh++;
                unknown++;
                first_unknown = first_unknown ? first_unknown : req->ids[i];
            } else if (!sub_find(c, m)) {
                fresh++;
            }
        }
        if (c->n_subs + fresh > hub->cfg.max_subs) {
            err.reason = "too_many_subscriptions";
            snprintf(err.detail, sizeof(err.detail),
                     "at most %u per connection", hub->cfg.max_subs);
            return reply_error(hub, c, &err);
        }
        if (hub->n_unknown + unknown > hub->cfg.max_unknown) {
            err.reason = "unknown_match";
            snprintf(err.detail, sizeof(err.detail), "%s", first_unknown);
            return reply_error(hub, c, &err);
        }
    }
    for (uint32_t i = 0; i < req->n_ids; i++) {
        const char *id = req->ids[i];
        struct notify__match *m;
        int rc = match_get(hub, id, strlen(id), !c->all, &m);
        if (rc != 0) {
            return rc;
        }
        if (!m) {
            continue; /* "*" covers it when it appears */
        }
        if (!c->all && !sub_find(c, m)) {
            rc = sub_add(c, m);
            if (rc != 0) {
                if (!m->image && m->n_subs == 0) {
                    match_forget(hub, m);
                }
                return rc;
            }
        }
        /* (Re)subscribing starts the match over for this client. A "*"
         * client resumes only when it has read the log to its end: the
         * deltas it has not read yet must not follow the ones resumed. */
        purge(hub, c, m->index);
        pending_clear(c, m->index);
        const struct notify__since *s = since_of(req, id);
        if (s && (!c->all || c->cursor == hub->log.head)) {
            rc = resume(hub, c, m, s->version);
        } else if (m->image) {
            rc = owe(hub, c, m->index);
        }
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

static int unsubscribe(struct notify__hub *hub, struct notify__client *c,
                       const struct notify__req *req)
{
    if (req->all) {
        unsubscribe_all(hub, c);
        purge(hub, c, -1);
        pending_free(c);
        return 0;
    }
    if (c->all) {
        struct notify__err err = {.reason = "unsupported"};
        snprintf(err.detail, sizeof(err.detail),
                 "subscribed to \"*\": unsubscribe \"*\" first");
        return reply_error(hub, c, &err);
    }
    for (uint32_t i = 0; i < req->n_ids; i++) {
        struct notify__match *m = notify__hub_find(hub, req->ids[i]);
        struct notify__sub *s = m ? sub_find(c, m) : NULL;
        if (!s) {
            continue; /* not subscribed: nothing to undo */
        }
        uint32_t idx = m->index;
        sub_remove(hub, s); /* may free m */
        purge(hub, c, idx);
        pending_clear(c, idx);
    }
    return 0;
}

static int pong(struct notify__hub *hub, struct notify__client *c,
                const struct notify__req *req)
{
    actor_buf_reset(&hub->tmp);
    actor_buf_str(&hub->tmp, "{\"type\":\"pong\"");
    if (req->ping_id) {
        actor_buf_str(&hub->tmp, ",\"id\":");
        actor_buf_add(&hub->tmp, req->ping_id, req->ping_id_len);
    }
    actor_buf_char(&hub->tmp, '}');
    return deliver_text(hub, c, &hub->tmp);
}

int notify__hub_client_rx(struct notify__hub *hub, struct notify__client *c,
                          const char *text, size_t len)
{
    if (c->closing) {
        return 0;
    }
    struct notify__err err;
    if (notify__req_parse(&hub->req, text, len, &err) != 0) {
        return reply_error(hub, c, &err);
    }
    const struct notify__req *req = &hub->req;
    switch (req->op) {
    case NOTIFY__OP_SUBSCRIBE:
        return req->all ? subscribe_all(hub, c, req)
                        : subscribe_list(hub, c, req);
    case NOTIFY__OP_UNSUBSCRIBE:
        return unsubscribe(hub, c, req);
    case NOTIFY__OP_PING:
        return pong(hub, c, req);
    }
    return -EINVAL;
}

/* ---- updates
 * ------------------------------------------------------------------ */

int notify__hub_update(struct notify__hub *hub, struct update *up)
{
    struct match_image *img = up->image;
    struct notify__match *m;
    hub->stats.updates++;
    int rc = match_get(hub, img->id, strlen(img->id), true, &m);
    if (rc != 0) {
        return rc;
    }
    uint64_t v = img->version;
    bool reset = false;
    if (m->image && v <= m->version) {
        /* A snapshot below the current version is a rebuilt match (the
         * model restarted from the database): start its clients over. */
        if (up->kind != UPDATE_SNAPSHOT || v == m->version) {
            hub->stats.stale++;
            return 0;
        }
        reset = true;
    }
    bool in_order = m->image && v == m->version + 1;
    struct notify__out *o = notify__out_wrap(up, hub->cfg.model->update_unref);
    if (!o) {
        return -ENOMEM;
    }
    o->match = m->index;

    if (m->image) {
        hub->cfg.model->image_unref(m->image);
    } else {
        hub->n_unknown--;
    }
    m->image = match_image_ref(img);
    m->version = v;
    m->touched_ms = hub->now_ms;
    notify__out_unref(m->snap);
    m->snap = o->kind == NOTIFY__OUT_SNAPSHOT ? notify__out_ref(o) : NULL;
    if (!in_order || reset) {
        ring_clear(m, hub->cfg.ring);
    }
    rc = ring_push(hub, m, o);

    /*
     * In order: everyone gets the update itself. Otherwise a client's last
     * version is not this one's predecessor: a snapshot-kind update still
     * serves as is, a delta does not, so a snapshot is owed instead.
     */
    bool as_is = in_order || o->kind == NOTIFY__OUT_SNAPSHOT;
    for (uint32_t i = 0; rc == 0 && i < m->n_subs; i++) {
        struct notify__client *c = m->subs[i]->client;
        rc = as_is ? deliver(hub, c, o) : owe(hub, c, m->index);
    }
    if (rc == 0 && hub->n_wild > 0) {
        rc = notify__log_push(&hub->log, o, !as_is);
    }
    notify__out_unref(o);
    return rc;
}

int notify__hub_feed(struct notify__hub *hub, const char *source,
                     unsigned state)
{
    struct notify__feed_state *f = NULL;
    for (uint32_t i = 0; i < hub->n_feeds; i++) {
        if (strcmp(hub->feeds[i].source, source) == 0) {
            f = &hub->feeds[i];
            break;
        }
    }
    if (f && f->state == state) {
        return 0;
    }
    actor_buf_reset(&hub->tmp);
    actor_buf_str(&hub->tmp, "{\"type\":\"feed\",\"source\":");
    actor_buf_json_str(&hub->tmp, source, strnlen(source, NOTIFY__SOURCE_MAX));
    actor_buf_printf(&hub->tmp, ",\"state\":\"%s\"}",
                     match_feed_name((enum match_feed)state));
    if (hub->tmp.err) {
        return hub->tmp.err;
    }
    struct notify__out *o =
        notify__out_new(NOTIFY__OUT_OTHER, hub->tmp.data, hub->tmp.len);
    if (!o) {
        return -ENOMEM;
    }
    if (!f) {
        f = notify__realloc(hub->feeds, (hub->n_feeds + 1) * sizeof(*f));
        if (!f) {
            notify__out_unref(o);
            return -ENOMEM;
        }
        hub->feeds = f;
        f = &hub->feeds[hub->n_feeds++];
        snprintf(f->source, sizeof(f->source), "%s", source);
        f->out = NULL;
    }
    f->state = (uint8_t)state;
    notify__out_unref(f->out);
    f->out = o;
    int rc = 0;
    for (struct notify__client *c = hub->clients; c && rc == 0; c = c->next) {
        rc = deliver(hub, c, o);
    }
    return rc;
}

/* ---- clients
 * --------------------------------------------------------------------- */

int notify__hub_client_add(struct notify__hub *hub, struct notify__client *c,
                           void *io, int64_t now_ms)
{
    *c = (struct notify__client){.io = io, .progress_ms = now_ms};
    /* Tell the newcomer how every source stands. */
    for (uint32_t i = 0; i < hub->n_feeds; i++) {
        int rc = deliver(hub, c, hub->feeds[i].out);
        if (rc != 0) {
            notify__queue_release(&c->queue);
            return rc;
        }
    }
    c->next = hub->clients;
    if (hub->clients) {
        hub->clients->prev = c;
    }
    hub->clients = c;
    hub->n_clients++;
    return 0;
}

void notify__hub_client_remove(struct notify__hub *hub,
                               struct notify__client *c)
{
    unsubscribe_all(hub, c);
    hub->stats.dropped += notify__queue_release(&c->queue);
    pending_free(c);
    if (c->prev) {
        c->prev->next = c->next;
    } else {
        hub->clients = c->next;
    }
    if (c->next) {
        c->next->prev = c->prev;
    }
    c->prev = c->next = NULL;
    hub->n_clients--;
}

void notify__hub_close_client(struct notify__hub *hub, struct notify__client *c,
                              uint16_t code, const char *reason)
{
    if (c->closing) {
        return;
    }
    unsubscribe_all(hub, c);
    hub->stats.dropped += notify__queue_release(&c->queue);
    pending_free(c);
    c->conflating = false;
    c->closing = true;
    if (code == WS_TRY_AGAIN_LATER) {
        hub->stats.slow_closed++;
    }
    hub->cfg.close(c->io, code, reason);
}

/* Quiet matches give back their memory: first the ring (resumes then get
 * a snapshot), much later the whole match, unless a list subscriber keeps
 * it. */
static void age_matches(struct notify__hub *hub)
{
    for (uint32_t i = 0; i < hub->n_index; i++) {
        struct notify__match *m = hub->by_index[i];
        if (!m || !m->image) {
            continue;
        }
        int64_t quiet = hub->now_ms - m->touched_ms;
        if (m->n_subs == 0 && quiet > hub->cfg.forget_ms) {
            match_forget(hub, m);
            hub->stats.forgotten++;
        } else if (m->ring && quiet > hub->cfg.ring_idle_ms) {
            ring_clear(m, hub->cfg.ring);
            free(m->ring);
            m->ring = NULL;
        }
    }
}

int notify__hub_tick(struct notify__hub *hub, int64_t now_ms)
{
    hub->now_ms = now_ms;
    age_matches(hub);
    int rc = 0;
    for (struct notify__client *c = hub->clients; c; c = c->next) {
        /* A "*" client too far behind is conflated now, not only at its
         * next frame: one that does not read may never take one. */
        if (rc == 0 && c->all && !c->closing && log_behind(hub, c)) {
            rc = log_conflate(hub, c);
        }
        bool owes = c->queue.len > 0 || c->n_pending > 0 ||
                    (c->all && c->cursor != hub->log.head);
        if (!owes || c->frames != c->frames_at_tick) {
            c->frames_at_tick = c->frames;
            c->progress_ms = now_ms;
        } else if (now_ms - c->progress_ms > hub->cfg.stall_ms && !c->closing) {
            notify__hub_close_client(hub, c, WS_TRY_AGAIN_LATER, "stalled");
        }
    }
    return rc;
}

/* ---- frames
 * ----------------------------------------------------------------------- */

static int frame_hold(struct notify__hub *hub, struct notify__out *o)
{
    if (hub->n_frame == hub->cap_frame) {
        uint32_t cap = hub->cap_frame ? hub->cap_frame * 2 : 64;
        struct notify__out **f = notify__realloc(hub->frame, cap * sizeof(*f));
        if (!f) {
            return -ENOMEM;
        }
        hub->frame = f;
        hub->cap_frame = cap;
    }
    hub->frame[hub->n_frame++] = o;
    return 0;
}

/* Adds owed snapshots to the frame while they fit. */
static int frame_snapshots(struct notify__hub *hub, struct notify__client *c,
                           size_t *total)
{
    for (uint32_t w = 0; w < c->pending_words && c->n_pending > 0; w++) {
        while (c->pending[w]) {
            uint32_t idx = w * 64 + (uint32_t)__builtin_ctzll(c->pending[w]);
            struct notify__match *m =
                idx < hub->n_index ? hub->by_index[idx] : NULL;
            if (!m || !m->image) {
                pending_clear(c, idx); /* cannot happen; stay consistent */
                continue;
            }
            struct notify__out *s = match_snapshot(hub, m);
            if (!s) {
                return -ENOMEM;
            }
            if (hub->n_frame > 0 &&
                *total + s->len + 1 > hub->cfg.max_frame_out) {
                return 0;
            }
            int rc = frame_hold(hub, notify__out_ref(s));
            if (rc != 0) {
                notify__out_unref(s);
                return rc;
            }
            pending_clear(c, idx);
            *total += s->len + 1;
        }
    }
    return 0;
}

/*
 * Adds @c's unread part of the log to the frame while it fits, owing
 * snapshots where the log says so. Too far behind (past backlog_soft, or
 * out of the log), or conflating: the matches it missed become owed
 * snapshots instead. Sets *@cacheable when the frame holds nothing else
 * than log entries taken as they are.
 */
static int frame_log(struct notify__hub *hub, struct notify__client *c,
                     size_t *total, bool *cacheable)
{
    struct notify__log *lg = &hub->log;
    if (c->cursor == lg->head) {
        return 0;
    }
    if (c->conflating || log_behind(hub, c)) {
        *cacheable = false;
        return log_conflate(hub, c);
    }
    for (; c->cursor < lg->head; c->cursor++) {
        const struct notify__log_entry *e = notify__log_at(lg, c->cursor);
        struct notify__out *o = e->o;
        if (e->owe || pending_has(c, o->match)) {
            /* A jump, or covered by the snapshot it owes already. */
            *cacheable = false;
            hub->stats.conflated += !e->owe;
            int rc = e->owe ? owe(hub, c, o->match) : 0;
            if (rc != 0) {
                return rc;
            }
            continue;
        }
        if (hub->n_frame > 0 && *total + o->len + 1 > hub->cfg.max_frame_out) {
            break;
        }
        int rc = frame_hold(hub, notify__out_ref(o));
        if (rc != 0) {
            notify__out_unref(o);
            return rc;
        }
        *total += o->len + 1;
    }
    return 0;
}

/* Writes the held messages as @frame: one as it is, several as an array in
 * hub->batch. Returns 0 or -ENOMEM. */
static int frame_compose(struct notify__hub *hub, struct actor_buf *b,
                         size_t total, struct notify__frame *frame)
{
    *frame = (struct notify__frame){.oldest_sent_ms = EVENT_ABSENT};
    if (hub->n_frame == 1) {
        frame->data = hub->frame[0]->data;
        frame->len = hub->frame[0]->len;
    } else {
        static const char headroom[NOTIFY__HEADROOM];
        actor_buf_reset(b);
        actor_buf_reserve(b, NOTIFY__HEADROOM + total);
        actor_buf_add(b, headroom, sizeof(headroom));
        actor_buf_char(b, '[');
        for (uint32_t i = 0; i < hub->n_frame; i++) {
            if (i > 0) {
                actor_buf_char(b, ',');
            }
            actor_buf_add(b, hub->frame[i]->data, hub->frame[i]->len);
        }
        actor_buf_char(b, ']');
        if (b->err) {
            return b->err;
        }
        frame->data = b->data + NOTIFY__HEADROOM;
        frame->len = b->len - NOTIFY__HEADROOM;
    }
    frame->n_msgs = hub->n_frame;
    for (uint32_t i = 0; i < hub->n_frame; i++) {
        const struct notify__out *o = hub->frame[i];
        if (o->kind == NOTIFY__OUT_DELTA) {
            frame->n_deltas++;
            if (o->sent_ms != EVENT_ABSENT &&
                (frame->oldest_sent_ms == EVENT_ABSENT ||
                 o->sent_ms < frame->oldest_sent_ms)) {
                frame->oldest_sent_ms = o->sent_ms;
            }
        }
    }
    return 0;
}

/* The shared frame, when it is what @c would get now: every client that
 * keeps up reads the same part of the log. */
static bool shared_fits(const struct notify__hub *hub,
                        const struct notify__client *c)
{
    const struct notify__shared_frame *sh = &hub->shared;
    return c->all && !c->conflating && c->queue.len == 0 && c->n_pending == 0 &&
           sh->end != 0 && sh->start == c->cursor && sh->head == hub->log.head;
}

int notify__hub_frame(struct notify__hub *hub, struct notify__client *c,
                      struct notify__frame *frame)
{
    c->write_wanted = false;
    hub->n_frame = 0;
    if (c->closing) {
        return 0;
    }
    const struct notify__log *lg = &hub->log;
    int rc = 0;
    if (shared_fits(hub, c)) {
        *frame = hub->shared.f;
        c->cursor = hub->shared.end;
        goto sent;
    }
    uint64_t start = c->cursor;
    bool cacheable =
        c->all && !c->conflating && c->queue.len == 0 && c->n_pending == 0;
    size_t total = 1; /* the brackets, when batched */
    while (c->queue.len > 0) {
        struct notify__out *o = notify__queue_at(&c->queue, 0);
        if (hub->n_frame > 0 && total + o->len + 1 > hub->cfg.max_frame_out) {
            break;
        }
        rc = frame_hold(hub, o);
        if (rc != 0) {
            goto fail;
        }
        (void)notify__queue_pop(&c->queue); /* the frame holds its ref */
        total += o->len + 1;
    }
    if (c->all && c->queue.len == 0) {
        rc = frame_log(hub, c, &total, &cacheable);
        if (rc != 0) {
            goto fail;
        }
    }
    /* Owed snapshots go once the queue is empty and the log read to its
     * end: no delta older than a snapshot may follow it. */
    if (c->n_pending > 0 && total < hub->cfg.max_frame_out &&
        c->queue.len == 0 && (!c->all || c->cursor == lg->head)) {
        rc = frame_snapshots(hub, c, &total);
        if (rc != 0) {
            goto fail;
        }
    }
    if (hub->n_frame == 0) {
        c->conflating = false;
        return 0;
    }
    cacheable = cacheable && hub->n_frame > 1;
    if (cacheable) {
        hub->shared.end = 0; /* its bytes are about to change */
    }
    rc = frame_compose(hub, cacheable ? &hub->shared.bytes : &hub->batch, total,
                       frame);
    if (rc != 0) {
        goto fail;
    }
    if (cacheable) {
        hub->shared.start = start;
        hub->shared.head = lg->head;
        hub->shared.end = c->cursor;
        hub->shared.f = *frame;
    }

sent:
    c->frames++;
    hub->stats.messages += frame->n_msgs;
    hub->stats.deltas += frame->n_deltas;
    hub->stats.frames++;
    hub->stats.bytes += frame->len;

    /* More now (the frame was full, or owed snapshots wait): another
     * callback. What comes later waits for the next flush. */
    if (c->queue.len > 0 || c->n_pending > 0 ||
        (c->all && c->cursor != lg->head)) {
        want_write(hub, c);
    } else if (!c->all || c->cursor == lg->head) {
        /* Caught up: back to plain queueing, and to idle-sized memory. */
        c->conflating = false;
        notify__queue_shrink(&c->queue);
        pending_free(c);
    }
    return 1;

fail:
    notify__hub_frame_done(hub, frame);
    return rc;
}

/* Every "*" client is asked, caught up or not, so that each cycle writes
 * them in the same order (the transport's writable callbacks come in the
 * order they were asked for) and a client's frames are one cycle apart.
 * Skipping the ones caught up at the flush, the last written in the cycle
 * before, moved them to the end of the next-but-one cycle: up to two
 * cycles between their frames. Under load the log has moved by the time
 * their turn comes; when it has not, the callback writes nothing. */
void notify__hub_flush(struct notify__hub *hub)
{
    if (hub->log.head == hub->flushed) {
        return; /* nothing new: whoever is behind was asked already */
    }
    for (uint32_t i = 0; i < hub->n_wild; i++) {
        want_write(hub, hub->wild[i]);
    }
    hub->flushed = hub->log.head;
}

void notify__hub_frame_done(struct notify__hub *hub,
                            struct notify__frame *frame)
{
    for (uint32_t i = 0; i < hub->n_frame; i++) {
        notify__out_unref(hub->frame[i]);
    }
    hub->n_frame = 0;
    if (frame) {
        *frame = (struct notify__frame){.oldest_sent_ms = EVENT_ABSENT};
    }
}

/* ---- the hub
 * ------------------------------------------------------------------------ */

struct notify__hub *notify__hub_new(const struct notify__hub_config *cfg)
{
    struct notify__hub *hub = notify__calloc(1, sizeof(*hub));
    if (!hub) {
        return NULL;
    }
    hub->cfg = *cfg;
    actor_buf_init(&hub->batch);
    actor_buf_init(&hub->tmp);
    actor_buf_init(&hub->shared.bytes);
    /* Past backlog_soft a reader conflates; keep twice that, so it finds
     * what it missed (and owes only those matches) rather than all. */
    hub->log.max_bytes = 2 * cfg->backlog_soft;
    hub->n_buckets = 64;
    hub->buckets = notify__calloc(hub->n_buckets, sizeof(*hub->buckets));
    if (!hub->buckets || notify__req_init(&hub->req, cfg->max_frame_in) != 0) {
        notify__hub_free(hub);
        return NULL;
    }
    return hub;
}

void notify__hub_free(struct notify__hub *hub)
{
    if (!hub) {
        return;
    }
    for (uint32_t i = 0; i < hub->n_buckets && hub->buckets; i++) {
        struct notify__match *m = hub->buckets[i], *next;
        for (; m; m = next) {
            next = m->hnext;
            match_release(hub, m);
        }
    }
    free(hub->buckets);
    free(hub->by_index);
    free(hub->free_index);
    free(hub->wild);
    for (uint32_t i = 0; i < hub->n_feeds; i++) {
        notify__out_unref(hub->feeds[i].out);
    }
    free(hub->feeds);
    free(hub->frame);
    notify__log_release(&hub->log);
    actor_buf_release(&hub->shared.bytes);
    notify__req_release(&hub->req);
    actor_buf_release(&hub->batch);
    actor_buf_release(&hub->tmp);
    free(hub);
}
