/* model/model_actor.c - the match actor: one match's state, its elements
 * applied in the order they came, its updates to the store and notify. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ingest/event.h"
#include "model/model.h"
#include "model/model_impl.h"
#include "store/store.h"

/*
 * DESIGN
 * A match actor is loading or live. Loading: it has asked the store for
 * its state and keeps every element, feed change and snapshot request
 * that comes meanwhile (ACTOR_KEPT), in order; the reply makes it live and
 * it handles them then. Live: each message is handled as it comes. A
 * reply can be lost (it met a full mailbox, the store restarted): without
 * one in LOAD_RETRY_MS the actor asks again, waiting twice as long each
 * time; a reply that comes once it is live is a late twin and is dropped.
 * A reply that cannot say (the database is down, nothing newer pending)
 * leaves it loading: it asks again every LOAD_UNKNOWN_MS, and its elements
 * wait (the feeds' windows bound them), since only the stored state gives
 * the versions to go on from.
 *
 * The store hears of every element, in the order they were applied: the
 * versions it writes and its per-event completion depend on it. So while
 * the store's mailbox is full, outcomes wait in an ordered outbox that
 * RESUME flushes. Notify only needs the newest state: while its mailbox is
 * full, deltas for it are dropped, and once it has room one snapshot
 * replaces them all (notify takes a snapshot as authoritative).
 *
 * Retention: when a change leaves the match finished (ended, cancelled,
 * abandoned, postponed), a timer is set for the retention period from that
 * change; any later change sets it again. An unfinished match has the idle
 * retention (a day by default: a match its provider abandoned without an
 * end), checked against its last change when it fires. When it fires the
 * actor ends normally (a transient child: not restarted) once its outbox
 * is empty and nothing waits in its mailbox (model__retire(): see
 * model_route.c). An element that comes after that finds no actor and
 * starts a new one, which loads the match back from the store.
 */

#define LOAD_RETRY_MS     1000  /* first wait for the store's answer */
#define LOAD_RETRY_MAX_MS 30000 /* longest */
#define LOAD_UNKNOWN_MS   1000  /* "cannot say": asked again after */
#define RETIRE_RECHECK_MS 1000  /* retention over, mail waiting: again */

struct match {
    struct model__match m;
    uint64_t store;            /* pid of `store` as last found, or 0 */
    uint64_t notify;           /* pid of `notify` as last found, or 0 */
    uint64_t retain_timer;     /* the retention timer, or 0 */
    uint64_t reask_timer;      /* while loading: when to ask again, or 0 */
    uint32_t reask_ms;         /* the next wait for an answer */
    struct model__fifo outbox; /* outcomes for the store while it is full,
                                  oldest first */
    struct model__fifo held;   /* messages that came while loading */
    bool loading;              /* waiting for STORE_MSG_LOADED */
    bool asked;                /* the load request is in the store's mailbox */
    bool notify_owed;          /* notify missed updates: a snapshot is due
                                  when it has room */
    bool retiring;             /* retention is over: end once flushed */
    bool retain_idle;          /* retain_timer is the idle retention's */
    int64_t changed_ms;        /* the last change, on actor_now_ms()'s clock */
};

static const char *match_id(const struct match *s)
{
    return s->m.image->id;
}

/* True when the match has something to show: version 0 is never
 * published, unless it is a state we know we do not know (a gap). */
static bool has_state(const struct match *s)
{
    return s->m.image->version > 0 || s->m.image->gap;
}

/*
 * Sends @msg to the actor registered as @name, whose pid we keep in *@pid;
 * when that pid is gone, looks the name up again once (the actor
 * restarted). Returns actor_send()'s status; on error the caller still
 * owns @msg.
 */
static int send_named(struct actor_ctx *ctx, uint64_t *pid, const char *name,
                      struct actor_msg *msg)
{
    if (*pid) {
        int rc = actor_send(ctx, *pid, msg);
        if (rc != -ESRCH) {
            return rc;
        }
    }
    uint64_t now = actor_whereis(name);
    if (!now || now == *pid) {
        return -ESRCH;
    }
    *pid = now;
    return actor_send(ctx, now, msg);
}

/* ---- the store ----------------------------------------------------------- */

/* Sends the store @m (consumed in every case), after anything still in
 * the outbox. Returns 0 or -ENOMEM. */
static int to_store(struct actor_ctx *ctx, struct match *s,
                    struct model_update_msg *m)
{
    if (s->outbox.n == 0) {
        int rc = send_named(ctx, &s->store, "store", &m->hdr);
        if (rc == 0) {
            return 0;
        }
        if (rc == -ESRCH) {
            /* The store is restarting, and the model with it. */
            ACTOR_LOG_RL(ctx, ACTOR_LOG_WARN, "store not running", "match",
                         match_id(s), NULL);
            actor_msg_free(&m->hdr);
            return 0;
        }
    }
    if (model__fifo_push(&s->outbox, &m->hdr) != 0) {
        actor_msg_free(&m->hdr);
        return -ENOMEM;
    }
    return 0;
}

/* Sends the store the outcome of element @index of @ev when nothing was
 * applied. Returns 0 or -ENOMEM. */
static int store_outcome(struct actor_ctx *ctx, struct match *s,
                         struct event *ev, uint32_t index,
                         enum model_outcome outcome)
{
    struct model_update_msg *m = model_update_msg_new(NULL, ev, index, outcome);
    if (!m) {
        return -ENOMEM;
    }
    return to_store(ctx, s, m);
}

static void retire(struct actor_ctx *ctx, struct match *s);

/* The store has room: sends what waits, in order, until it is full again. */
static void flush(struct actor_ctx *ctx, struct match *s)
{
    struct actor_msg *msg;
    while ((msg = model__fifo_peek(&s->outbox))) {
        int rc = send_named(ctx, &s->store, "store", msg);
        if (rc == -EAGAIN) {
            return;
        }
        model__fifo_pop(&s->outbox);
        if (rc != 0) {
            actor_msg_free(msg); /* the store is gone; the model follows */
        }
    }
    if (s->retiring) {
        retire(ctx, s);
    }
}

static int ask_store(struct actor_ctx *ctx, struct match *s)
{
    struct store_load_req_msg *req =
        store_load_req_msg_new(actor_self(ctx), match_id(s));
    if (!req) {
        return -ENOMEM;
    }
    int rc = send_named(ctx, &s->store, "store", &req->hdr);
    if (rc != 0) {
        actor_msg_free(&req->hdr);
        return rc == -EAGAIN ? 0 : rc; /* -EAGAIN: asked again on RESUME */
    }
    s->asked = true;
    s->reask_ms = s->reask_ms ? s->reask_ms : LOAD_RETRY_MS;
    struct actor_msg *t = actor_msg_new(sizeof(*t), MODEL__MSG_REASK);
    if (!t) {
        return -ENOMEM;
    }
    s->reask_timer = actor_send_after(ctx, s->reask_ms, t);
    return s->reask_timer ? 0 : -ENOMEM;
}

/* No answer in time: ask again, and wait longer for the next one. */
static int on_reask(struct actor_ctx *ctx, struct match *s)
{
    s->reask_timer = 0;
    if (!s->loading) {
        return 0;
    }
    ACTOR_LOG_RL(ctx, ACTOR_LOG_WARN, "no state from the store: asking again",
                 "match", match_id(s), "waited_ms", ACTOR_LOG_INT(s->reask_ms),
                 NULL);
    s->reask_ms = s->reask_ms < LOAD_RETRY_MAX_MS / 2 ? s->reask_ms * 2
                                                      : LOAD_RETRY_MAX_MS;
    s->asked = false;
    return ask_store(ctx, s);
}

/* ---- notify -------------------------------------------------------------- */

/* Sends notify @m (consumed in every case), unless it is owed a snapshot
 * anyway. */
static void to_notify(struct actor_ctx *ctx, struct match *s,
                      struct model_update_msg *m)
{
    int rc = s->notify_owed ? -EAGAIN
                            : send_named(ctx, &s->notify, "notify", &m->hdr);
    if (rc != 0) {
        actor_msg_free(&m->hdr);
        s->notify_owed = rc == -EAGAIN;
    }
}

/* Sends notify a snapshot of the current state, if there is one. Returns
 * 0 or -ENOMEM. */
static int snapshot_to_notify(struct actor_ctx *ctx, struct match *s)
{
    s->notify_owed = false;
    if (!has_state(s)) {
        return 0;
    }
    struct update *up;
    int rc = model__match_snapshot(&s->m, &up);
    if (rc != 0) {
        return rc;
    }
    struct model_update_msg *m =
        model_update_msg_new(up, NULL, 0, MODEL_APPLIED);
    update_unref(up);
    if (!m) {
        return -ENOMEM;
    }
    to_notify(ctx, s, m);
    return 0;
}

/* ---- retention ----------------------------------------------------------- */

static bool is_finished(const char *phase)
{
    static const char *const final[] = {"ended", "cancelled", "abandoned",
                                        "postponed"};
    for (size_t k = 0; phase && k < sizeof(final) / sizeof(final[0]); k++) {
        if (strcmp(phase, final[k]) == 0) {
            return true;
        }
    }
    return false;
}

/* Sets the retention timer to fire in @ms. Returns 0 or -ENOMEM. */
static int retain_in(struct actor_ctx *ctx, struct match *s, uint32_t ms)
{
    struct actor_msg *t = actor_msg_new(sizeof(*t), MODEL__MSG_RETAIN);
    if (!t) {
        return -ENOMEM;
    }
    s->retain_timer = actor_send_after(ctx, ms, t);
    return s->retain_timer ? 0 : -ENOMEM;
}

/* How long the match stays after its last change, in ms (0: for ever):
 * the retention when finished, else the idle retention. */
static uint32_t keep_ms(const struct match *s)
{
    return is_finished(s->m.image->phase) ? model__retention_ms()
                                          : model__idle_ms();
}

/* What is left of @keep ms since the last change. */
static uint32_t left_ms(const struct match *s, uint32_t keep)
{
    int64_t age = actor_now_ms() - s->changed_ms;
    return age <= 0 ? keep : age >= keep ? 0 : keep - (uint32_t)age;
}

/*
 * After a change (or on becoming live): sets the retention timer from the
 * time of the last change. A finished match's is set again at each change
 * (its period is short); an unfinished one's (the idle retention, a day)
 * is left running, and looks at the match's age when it fires, so a
 * clock tick does not cost a timer. Returns 0 or -ENOMEM.
 */
static int retention(struct actor_ctx *ctx, struct match *s)
{
    /* The change's time on the runtime's clock (the image's is the wall
     * clock's; a restored one may be old). */
    int64_t age = actor_wall_ms() - s->m.image->updated_ms;
    s->changed_ms = actor_now_ms() - (age > 0 ? age : 0);
    bool finished = is_finished(s->m.image->phase);
    if (s->retain_timer) {
        if (!finished && s->retain_idle) {
            return 0;
        }
        actor_cancel_timer(ctx, s->retain_timer);
        s->retain_timer = 0;
    }
    s->retiring = false;
    uint32_t keep = keep_ms(s);
    if (keep == 0) {
        return 0;
    }
    s->retain_idle = !finished;
    return retain_in(ctx, s, left_ms(s, keep));
}

/*
 * Ends the actor, its outbox empty, unless something waits in its mailbox:
 * model__retire() drops the name only when nothing does, under the lock a
 * route sends under, so no element can land behind the end (it would be
 * freed unhandled, and reported lost though nothing failed). Otherwise
 * what came is handled first and retention looks again in
 * RETIRE_RECHECK_MS (a change resets it anyway).
 */
static void retire(struct actor_ctx *ctx, struct match *s)
{
    s->retiring = false;
    if (!model__retire(ctx)) {
        if (!s->retain_timer && retain_in(ctx, s, RETIRE_RECHECK_MS) != 0) {
            actor_fail(ctx, "retention: out of memory");
        }
        return;
    }
    actor_log(ctx, ACTOR_LOG_DEBUG, "match retired", "match", match_id(s),
              "phase", s->m.image->phase, NULL);
    actor_exit_self(ctx, ACTOR_EXIT_NORMAL);
}

static int on_retain(struct actor_ctx *ctx, struct match *s)
{
    s->retain_timer = 0;
    uint32_t keep = keep_ms(s);
    if (keep == 0) {
        return 0; /* unfinished, kept for ever */
    }
    uint32_t left = left_ms(s, keep);
    if (left > 0) {
        return retain_in(ctx, s, left); /* changed since it was set */
    }
    if (s->outbox.n > 0) {
        s->retiring = true; /* flush() ends us */
        return 0;
    }
    retire(ctx, s);
    return 0;
}

/* ---- changes ------------------------------------------------------------- */

/*
 * Publishes applied @up (consumed), the change element @index of @ev made
 * (@ev NULL: a change of our own): its outcome to the store, after what
 * waits in the outbox, and the update to notify; then metrics and
 * retention. Sets *@stored once the store's message is ours no more.
 * Returns 0 or -ENOMEM.
 */
static int publish(struct actor_ctx *ctx, struct match *s, struct update *up,
                   struct event *ev, uint32_t index, bool *stored)
{
    struct model_update_msg *for_store, *for_notify;
    int rc = model__update_pair_new(up, ev, index, &for_store, &for_notify);
    update_unref(up);
    if (rc != 0) {
        return rc;
    }
    rc = to_store(ctx, s, for_store);
    if (rc != 0) {
        actor_msg_free(&for_notify->hdr);
        return rc;
    }
    *stored = true;
    to_notify(ctx, s, for_notify);
    actor_metric_add(model__metrics()->updates, 1);
    return retention(ctx, s);
}

static int on_element(struct actor_ctx *ctx, struct match *s,
                      struct model__element_msg *e)
{
    const struct event_match *em = &e->ev->matches[e->index];
    uint64_t last = s->m.image->msgnr;
    struct update *up;
    int rc = model__match_apply(&s->m, e->ev, e->index, actor_wall_ms(), &up);
    switch (rc) {
    case MODEL__GAP:
        actor_metric_add(model__metrics()->gaps, 1);
        ACTOR_LOG_RL(ctx, ACTOR_LOG_WARN, "msgnr gap", "match", match_id(s),
                     "source", e->ev->source, "seq", ACTOR_LOG_INT(e->ev->seq),
                     "last", ACTOR_LOG_INT(last), "msgnr",
                     ACTOR_LOG_INT(em->msgnr), NULL);
        /* fall through */
    case 0:
        return publish(ctx, s, up, e->ev, e->index, &e->settled);
    case MODEL__DUPLICATE:
        actor_metric_add(model__metrics()->duplicates, 1);
        rc = store_outcome(ctx, s, e->ev, e->index, MODEL_DUPLICATE);
        e->settled = rc == 0;
        return rc;
    default:
        /* -ENOMEM, or -EINVAL (routed to the wrong match: our bug). The
         * element's free reports it lost. */
        return rc;
    }
}

static int on_feed(struct actor_ctx *ctx, struct match *s,
                   struct model_feed_notice_msg *f)
{
    struct update *up;
    int rc = model__match_feed(&s->m, f->source, (enum match_feed)f->state,
                               actor_wall_ms(), &up);
    if (rc == MODEL__UNCHANGED) {
        return 0;
    }
    if (rc != 0) {
        return rc;
    }
    bool stored = false;
    return publish(ctx, s, up, NULL, 0, &stored);
}

static int on_snapshot(struct match *s, struct actor_msg *msg)
{
    struct update *up = NULL;
    if (has_state(s)) {
        int rc = model__match_snapshot(&s->m, &up);
        if (rc != 0) {
            return rc; /* the request's free answers */
        }
    }
    model__snapshot_answer(msg, up);
    update_unref(up);
    return 0;
}

/* Handles an element, a feed change or a snapshot request, live. */
static int on_work(struct actor_ctx *ctx, struct match *s,
                   struct actor_msg *msg)
{
    switch (msg->type) {
    case MODEL_MSG_ELEMENT:
        return on_element(ctx, s,
                          container_of(msg, struct model__element_msg, hdr));
    case MODEL_MSG_FEED:
        return on_feed(ctx, s,
                       container_of(msg, struct model_feed_notice_msg, hdr));
    case MODEL_MSG_SNAPSHOT:
        return on_snapshot(s, msg);
    default:
        return -EINVAL;
    }
}

/* ---- loading ------------------------------------------------------------- */

/* Becomes live with the state in s->m: tells notify, arms retention. */
static int go_live(struct actor_ctx *ctx, struct match *s)
{
    s->loading = false;
    int rc = snapshot_to_notify(ctx, s);
    return rc ? rc : retention(ctx, s);
}

/* Takes the state out of the store's reply @r into @m. Returns 0 (@m set
 * up), 1 (nothing stored: keep the fresh state), -EAGAIN (unknown: the
 * store could not say), or -ENOMEM. */
static int state_from(struct actor_ctx *ctx, const struct match *s,
                      struct store_loaded_msg *r, struct model__match *m)
{
    const char *id = match_id(s);
    if (r->status != 0) {
        ACTOR_LOG_RL(ctx, ACTOR_LOG_WARN, "match state unknown", "match", id,
                     "error", strerror(-r->status), NULL);
        return -EAGAIN;
    }
    const char *got = NULL;
    if (r->image) {
        got = r->image->id;
        if (strcmp(got, id) == 0) {
            model__match_adopt(m, r->image);
            r->image = NULL;
            return 0;
        }
    } else if (r->load && r->load->n_matches > 0) {
        got = r->load->matches[0].id;
        if (strcmp(got, id) == 0) {
            int rc = model__match_restore(m, &r->load->matches[0]);
            if (rc != -EINVAL) {
                return rc;
            }
        }
    } else {
        return 1;
    }
    ACTOR_LOG_RL(ctx, ACTOR_LOG_ERROR, "store answered another state", "match",
                 id, "got", got, NULL);
    return -EAGAIN;
}

/*
 * The store could not say (the database is down and it holds nothing newer
 * of the match): keeps loading, holding what comes, and asks again soon.
 * Starting empty instead would number versions from 1 again, below what
 * browsers and the database have: the database's upserts would keep the
 * old row, and its match_updates would collide with the stored versions.
 */
static int ask_later(struct actor_ctx *ctx, struct match *s)
{
    s->asked = false;
    s->reask_ms = LOAD_UNKNOWN_MS;
    struct actor_msg *t = actor_msg_new(sizeof(*t), MODEL__MSG_REASK);
    if (!t) {
        return -ENOMEM;
    }
    s->reask_timer = actor_send_after(ctx, LOAD_UNKNOWN_MS, t);
    return s->reask_timer ? 0 : -ENOMEM;
}

static int on_loaded(struct actor_ctx *ctx, struct match *s,
                     struct store_loaded_msg *r)
{
    if (!s->loading) {
        return 0; /* the answer to a question asked twice */
    }
    if (s->reask_timer) {
        actor_cancel_timer(ctx, s->reask_timer);
        s->reask_timer = 0;
    }
    struct model__match m;
    int rc = state_from(ctx, s, r, &m);
    if (rc == 0) {
        model__match_release(&s->m);
        s->m = m;
    } else if (rc == -EAGAIN) {
        return ask_later(ctx, s);
    } else if (rc != 1) {
        return rc;
    }
    rc = go_live(ctx, s);
    struct actor_msg *msg;
    while (rc == 0 && (msg = model__fifo_pop(&s->held))) {
        rc = on_work(ctx, s, msg);
        actor_msg_free(msg);
    }
    return rc;
}

static int on_resume(struct actor_ctx *ctx, struct match *s, uint64_t from)
{
    if (from == s->store) {
        if (s->loading && !s->asked) {
            return ask_store(ctx, s);
        }
        flush(ctx, s);
        return 0;
    }
    if (from == s->notify && s->notify_owed) {
        return snapshot_to_notify(ctx, s);
    }
    return 0;
}

/* ---- the actor ----------------------------------------------------------- */

static int match_init(struct actor_ctx *ctx, void *arg, void **state)
{
    const size_t prefix = sizeof(MODEL__NAME_PREFIX) - 1;
    const char *name = actor_name(ctx);
    if (!name || strncmp(name, MODEL__NAME_PREFIX, prefix) != 0) {
        return -EINVAL;
    }
    const char *id = name + prefix;
    struct match *s = calloc(1, sizeof(*s));
    if (!s) {
        return -ENOMEM;
    }
    struct model__start *start = arg;
    int rc;
    if (start && start->image) {
        /* The loader's state; a restart will ask the store instead. */
        struct match_image *img = start->image;
        start->image = NULL;
        if (strcmp(img->id, id) != 0) {
            match_image_unref(img);
            free(s);
            return -EINVAL;
        }
        model__match_adopt(&s->m, img);
        rc = go_live(ctx, s);
    } else {
        rc = model__match_init(&s->m, id);
        if (rc != 0) {
            free(s);
            return rc;
        }
        s->loading = true;
        rc = ask_store(ctx, s);
    }
    if (rc != 0) {
        model__match_release(&s->m);
        free(s);
        return rc;
    }
    model__matches_add(1);
    *state = s;
    return 0;
}

static int match_handle(struct actor_ctx *ctx, void *state,
                        struct actor_msg *msg)
{
    struct match *s = state;
    switch (msg->type) {
    case MODEL_MSG_ELEMENT:
    case MODEL_MSG_FEED:
    case MODEL_MSG_SNAPSHOT:
        if (s->loading) {
            return model__fifo_push(&s->held, msg) == 0 ? ACTOR_KEPT : -ENOMEM;
        }
        return on_work(ctx, s, msg);
    case STORE_MSG_LOADED:
        return on_loaded(ctx, s, (struct store_loaded_msg *)msg);
    case ACTOR_MSG_RESUME:
        return on_resume(ctx, s, msg->from);
    case MODEL__MSG_RETAIN:
        return on_retain(ctx, s);
    case MODEL__MSG_REASK:
        return on_reask(ctx, s);
    default:
        return -EINVAL;
    }
}

static void match_stop(struct actor_ctx *ctx, void *state,
                       const struct actor_exit *why)
{
    (void)why;
    struct match *s = state;
    /* Outcomes still waiting for the store go past its bound: there is
     * no later turn to send them from, and without them their events
     * never complete. */
    struct actor_msg *msg;
    while ((msg = model__fifo_peek(&s->outbox)) &&
           actor_send_unbounded(NULL, s->store, msg) == 0) {
        model__fifo_pop(&s->outbox);
    }
    if (s->outbox.n > 0) {
        actor_log(ctx, ACTOR_LOG_ERROR, "outcomes not delivered", "match",
                  match_id(s), "count", ACTOR_LOG_INT(s->outbox.n), NULL);
    }
    model__fifo_release(&s->outbox);
    model__fifo_release(&s->held); /* elements report themselves lost */
    model__match_release(&s->m);
    model__matches_add(-1);
    free(s);
}

const struct actor_ops model__match_ops = {
    .name = "match",
    .init = match_init,
    .handle = match_handle,
    .stop = match_stop,
};
