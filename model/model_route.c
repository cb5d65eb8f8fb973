/* model/model_route.c - finding a match's actor (starting it on first
 * sight) and the messages that travel to match actors. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "ingest/event.h"
#include "model/model.h"
#include "model/model_impl.h"
#include "store/store.h"

/*
 * DESIGN
 * A match actor's name goes away when it ends, a moment after its pid
 * stops taking messages (the runtime retires the pid, waits for pinned
 * senders, then drops the name). A route that meets that moment sees the
 * old pid by name and -ESRCH from the send; it looks again, and again
 * (yielding) until the name is gone or taken by the next incarnation: a
 * short, bounded wait for a match that is restarting.
 *
 * An element already queued when its actor ends is freed unhandled and
 * reported lost: the price of a crash, by design (restart from the stored
 * state), but not of a retirement, which nothing forces. So a route looks
 * the name up and sends under a lock (one of ROUTE_LOCKS, by the name's
 * hash), and a retiring actor drops its name under the same lock only
 * when its mailbox is empty (model__retire). An element is then either
 * queued before the check, which keeps the actor, or routed after the
 * name is gone, to the next incarnation. The lock is held for a lookup
 * and a push, never across a spawn (that waits for the supervisor).
 */

#define ROUTE_ATTEMPTS    100
#define ROUTE_LOCKS       64
#define MATCH_SHUTDOWN_MS 1000 /* a match actor's stop does not block */

static pthread_mutex_t route_locks[ROUTE_LOCKS];
static pthread_once_t route_locks_once = PTHREAD_ONCE_INIT;

static void route_locks_init(void)
{
    for (size_t i = 0; i < ROUTE_LOCKS; i++) {
        pthread_mutex_init(&route_locks[i], NULL);
    }
}

static pthread_mutex_t *route_lock(const char *name)
{
    pthread_once(&route_locks_once, route_locks_init);
    uint32_t h = 2166136261u; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
        h = (h ^ *p) * 16777619u;
    }
    return &route_locks[h % ROUTE_LOCKS];
}

bool model__retire(struct actor_ctx *ctx)
{
    const char *name = actor_name(ctx);
    if (!name) {
        return true; /* nobody finds it by name */
    }
    pthread_mutex_t *lock = route_lock(name);
    pthread_mutex_lock(lock);
    bool idle = actor_queued(ctx) == 0;
    if (idle) {
        actor_unregister(ctx);
    }
    pthread_mutex_unlock(lock);
    return idle;
}

int model__match_name(char buf[MODEL__NAME_MAX], const char *id)
{
    size_t len = strlen(id);
    if (len == 0 || len > EVENT_ID_MAX) {
        return -EINVAL;
    }
    memcpy(buf, MODEL__NAME_PREFIX, sizeof(MODEL__NAME_PREFIX) - 1);
    memcpy(buf + sizeof(MODEL__NAME_PREFIX) - 1, id, len + 1);
    return 0;
}

void model__start_free(void *arg)
{
    struct model__start *start = arg;
    if (start) {
        match_image_unref(start->image);
        free(start);
    }
}

int model__start_match(const char *name, struct model__start *start,
                       uint64_t *pid)
{
    uint64_t sup = actor_whereis("model.matches");
    if (!sup) {
        model__start_free(start);
        return -ESRCH;
    }
    const struct actor_child_spec spec = {
        .id = name,
        .start = {.ops = &model__match_ops,
                  .arg = start,
                  .name = name,
                  .mailbox = model__match_mailbox()},
        .arg_free = start ? model__start_free : NULL,
        .restart = ACTOR_TRANSIENT,
        .shutdown_ms = MATCH_SHUTDOWN_MS,
    };
    return actor_sup_start_child(sup, &spec, pid);
}

/* ---- lost elements ------------------------------------------------------- */

void model__report_lost(struct event *ev, uint32_t index)
{
    actor_metric_add(model__metrics()->lost, 1);
    struct model_update_msg *m =
        model_update_msg_new(NULL, ev, index, MODEL_LOST);
    int rc = -ENOMEM;
    if (m) {
        /* Past the store's bound: this is the element's last word (its
         * holder is ending), and the feeds' windows bound how many. */
        rc = actor_send_unbounded(NULL, actor_whereis("store"), &m->hdr);
        if (rc != 0) {
            actor_msg_free(&m->hdr);
        }
    }
    if (rc != 0) {
        /* Its event cannot complete now: no store is running (it is
         * restarting, and ingest with it) or memory ran out. */
        ACTOR_LOG_RL(NULL, ACTOR_LOG_ERROR, "lost element not reported",
                     "source", ev->source, "seq", ACTOR_LOG_INT(ev->seq),
                     "match", ev->matches[index].id, "error", strerror(-rc),
                     NULL);
    }
}

/* ---- element messages ---------------------------------------------------- */

static void element_free(struct actor_msg *msg)
{
    struct model__element_msg *e =
        container_of(msg, struct model__element_msg, hdr);
    if (!e->settled) {
        model__report_lost(e->ev, e->index);
    }
    event_unref(e->ev);
    free(e);
}

static struct model__element_msg *element_new(struct event *ev, uint32_t index)
{
    struct model__element_msg *e = actor_msg_new(sizeof(*e), MODEL_MSG_ELEMENT);
    if (!e) {
        return NULL;
    }
    e->hdr.free = element_free;
    e->ev = event_ref(ev);
    e->index = index;
    return e;
}

int model_route(struct actor_ctx *ctx, struct event *ev, uint32_t index)
{
    char name[MODEL__NAME_MAX];
    if (index >= ev->n_matches ||
        model__match_name(name, ev->matches[index].id) != 0) {
        return -EINVAL;
    }
    struct model__element_msg *e = element_new(ev, index);
    if (!e) {
        return -ENOMEM;
    }
    pthread_mutex_t *lock = route_lock(name);
    int rc = -ESRCH;
    for (int attempt = 0; attempt < ROUTE_ATTEMPTS && rc == -ESRCH; attempt++) {
        if (attempt > 2) {
            sched_yield(); /* the old incarnation is ending: let it */
        }
        pthread_mutex_lock(lock);
        uint64_t pid = actor_whereis(name);
        if (pid) {
            rc = actor_send(ctx, pid, &e->hdr);
        }
        pthread_mutex_unlock(lock);
        if (!pid) {
            /* Started (or found started), it gets the element next time
             * round, under the lock. */
            rc = model__start_match(name, NULL, &pid);
            if (rc != 0 && rc != -EEXIST) {
                break;
            }
            rc = -ESRCH;
        }
    }
    if (rc == 0) {
        return 0;
    }
    /* -EAGAIN: the caller routes it again. Otherwise the free reports it
     * lost, so its event still completes. */
    e->settled = rc == -EAGAIN;
    actor_msg_free(&e->hdr);
    return rc == -EAGAIN || rc == -ENOMEM ? rc : -ESRCH;
}

/* ---- feed state ---------------------------------------------------------- */

/* Sends match @pid the feed message. Returns 0 (sent, or @pid is gone),
 * -EAGAIN or -ENOMEM. */
static int feed_send(struct actor_ctx *ctx, uint64_t pid, const char *source,
                     enum match_feed state)
{
    /* The notice's shape, addressed to a match. */
    struct model_feed_notice_msg *f = model_feed_notice_msg_new(source, state);
    if (!f) {
        return -ENOMEM;
    }
    f->hdr.type = MODEL_MSG_FEED;
    int rc = actor_send(ctx, pid, &f->hdr);
    if (rc != 0) {
        actor_msg_free(&f->hdr);
    }
    return rc == -ESRCH ? 0 : rc;
}

struct feed_all {
    const char *source;
    enum match_feed state;
    int err;       /* -ENOMEM, or 0 */
    size_t missed; /* full mailboxes */
};

static bool is_match_actor(const struct actor_info *info)
{
    return info->kind == model__match_ops.name &&
           strncmp(info->name, MODEL__NAME_PREFIX,
                   sizeof(MODEL__NAME_PREFIX) - 1) == 0;
}

static void feed_one(const struct actor_info *info, void *arg)
{
    struct feed_all *fa = arg;
    if (fa->err || !is_match_actor(info)) {
        return;
    }
    /* No RESUME for a broadcast: nobody would route this again. */
    int rc = feed_send(NULL, info->pid, fa->source, fa->state);
    if (rc == -EAGAIN) {
        fa->missed++;
    } else if (rc != 0) {
        fa->err = rc;
    }
}

int model_feed(struct actor_ctx *ctx, const char *source, enum match_feed state,
               const char *const *ids, size_t n, size_t *next)
{
    if (ids) {
        for (; *next < n; (*next)++) {
            char name[MODEL__NAME_MAX];
            if (model__match_name(name, ids[*next]) != 0) {
                continue; /* not a match id: no such actor */
            }
            uint64_t pid = actor_whereis(name);
            if (!pid) {
                continue;
            }
            int rc = feed_send(ctx, pid, source, state);
            if (rc != 0) {
                return rc;
            }
        }
    } else {
        struct feed_all fa = {.source = source, .state = state};
        actor_foreach(feed_one, &fa);
        if (fa.err) {
            return fa.err;
        }
        if (fa.missed) {
            ACTOR_LOG_RL(ctx, ACTOR_LOG_WARN,
                         "feed state not told to busy matches", "source",
                         source, "state", match_feed_name(state), "matches",
                         ACTOR_LOG_INT(fa.missed), NULL);
        }
    }
    struct model_feed_notice_msg *notice =
        model_feed_notice_msg_new(source, state);
    if (!notice) {
        return -ENOMEM;
    }
    actor_send_or_free(ctx, actor_whereis("notify"), &notice->hdr);
    return 0;
}

/* ---- a queue of messages ------------------------------------------------- */

int model__fifo_push(struct model__fifo *q, struct actor_msg *msg)
{
    if (q->n == q->cap) {
        uint32_t cap = q->cap ? q->cap * 2 : 8;
        struct actor_msg **v = malloc(cap * sizeof(*v));
        if (!v || cap < q->cap) {
            free(v);
            return -ENOMEM;
        }
        for (uint32_t k = 0; k < q->n; k++) {
            v[k] = q->v[(q->head + k) & (q->cap - 1)];
        }
        free(q->v);
        q->v = v;
        q->head = 0;
        q->cap = cap;
    }
    q->v[(q->head + q->n) & (q->cap - 1)] = msg;
    q->n++;
    return 0;
}

struct actor_msg *model__fifo_peek(const struct model__fifo *q)
{
    return q->n ? q->v[q->head] : NULL;
}

struct actor_msg *model__fifo_pop(struct model__fifo *q)
{
    if (q->n == 0) {
        return NULL;
    }
    struct actor_msg *msg = q->v[q->head];
    q->head = (q->head + 1) & (q->cap - 1);
    q->n--;
    return msg;
}

void model__fifo_release(struct model__fifo *q)
{
    struct actor_msg *msg;
    while ((msg = model__fifo_pop(q))) {
        actor_msg_free(msg);
    }
    free(q->v);
    *q = (struct model__fifo){0};
}
