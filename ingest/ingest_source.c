/* ingest/ingest_source.c - the source actor: one per source name, across
 * reconnects: dedupe, the ordered hand-off to store and model, acks, and
 * the source's feed state. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingest/ingest_impl.h"
#include "store/store.h"

/*
 * DESIGN
 * A source actor (`source:<name>`, a temporary child of `ingest.sources`)
 * is started by the first valid login or self-naming event of its name
 * and lives until the ingest subtree restarts. It takes its offsets from
 * the store (STORE_MSG_ACKED_REQ; any STORE_MSG_ACK carries them): acked,
 * the durable seq, and pending_seq, the highest the store holds at all,
 * which is where dedupe starts, so a restarted source never lets an event
 * still in flight through twice.
 *
 * One connection feeds it at a time. A BIND from a new conn replaces the
 * old one, which is told to close (or shut down, if its mailbox is full);
 * whatever the old conn still had in our mailbox is dropped, because the
 * new conn resends everything above the acked seq it is given.
 *
 * Each accepted event becomes a job: its row to the store, then each match
 * element to the model, strictly in that order and in seq order across
 * jobs (the store must see the row before any update naming it). A full
 * mailbox (-EAGAIN) stops the queue where it is until ACTOR_MSG_RESUME; a
 * job is never skipped or reordered. The conn's window bounds the queue.
 *
 * A source whose last seq passed on is above its acked seq holds events
 * the store has not made durable yet; it is counted in
 * ingest__sources_pending while it does, which is how a drain knows that
 * everything accepted is durable, whether or not its connection is still
 * there to be acked.
 *
 * The feed state (live, stale, offline) follows the conn: live when bound,
 * stale when the conn reports silence, offline when the conn is gone
 * without a successor. Each change goes to the gauges and, through the
 * feed function, to the matches this source has routed to and to notify.
 */

#define ROUTED_MAX (1u << 16) /* match ids remembered; past it: broadcast */

struct source_arg {
    const struct ingest__env *env; /* not owned */
    char name[INGEST_SOURCE_MAX + 1];
};

/* An accepted event or seq-using rejection on its way out. */
struct job {
    struct actor_msg *msg; /* to the store; NULL once sent */
    struct event *ev;      /* elements to route (owned ref), or NULL */
    uint32_t next;         /* the next element to route */
};

/* The match ids this source has routed to (an open-addressing set). */
struct idset {
    char **v; /* cap slots, NULL when free; owned strings */
    size_t cap;
    size_t n;
    bool overflow; /* more than ROUTED_MAX: forgotten, broadcast instead */
};

struct source {
    const struct ingest__env *env; /* not owned */
    const char *name;              /* in the arg, which outlives us */
    struct ingest__seen *seen;     /* not owned; never freed */
    uint64_t self;
    uint64_t store; /* `store`, looked up again when it is gone */
    bool req_owed;  /* the ACKED_REQ found the store's mailbox full */
    /* the connection */
    uint64_t conn;     /* the conn feeding us, or 0 */
    uint64_t conn_mon; /* our monitor of it */
    bool bind_owed;    /* the conn waits for BOUND */
    /* offsets */
    bool have_offsets;  /* the store has answered */
    uint64_t acked;     /* durable */
    uint64_t last_seen; /* the highest seq passed on (dedupe) */
    bool pending;       /* last_seen > acked: counted in
                           ingest__sources_pending */
    uint64_t relayed;   /* the highest ack the conn has been given */
    bool ack_owed;      /* an ack found the conn's mailbox full */
    bool ack_again;     /* ... and it was a duplicate's */
    /* feed state */
    enum match_feed state;
    bool feed_owed;           /* the feed function said -EAGAIN */
    struct ingest__ring jobs; /* struct job, in seq order */
    struct idset routed;
};

/* ---- the last-seen records ----------------------------------------------- */

static pthread_mutex_t seen_lock = PTHREAD_MUTEX_INITIALIZER;
static struct ingest__seen *seen_list;

static double seen_age(void *arg)
{
    const struct ingest__seen *s = arg;
    int64_t last = atomic_load_explicit(&s->last_ms, memory_order_relaxed);
    return (double)(actor_now_ms() - last) / 1000.0;
}

/* Registers @s's series. Returns 0 or -ENOMEM. */
static int seen_register(struct ingest__seen *s)
{
    char source[INGEST_SOURCE_MAX * 2 + 16];
    if (actor_metric_label(source, sizeof(source), "source", s->name) != 0) {
        return -ENOMEM;
    }
    for (int st = MATCH_FEED_LIVE; st <= MATCH_FEED_OFFLINE; st++) {
        char labels[sizeof(source) + 32];
        snprintf(labels, sizeof(labels), "%s,state=\"%s\"", source,
                 match_feed_name(st));
        s->state[st] = actor_metric_gauge(
            "scorewire_ingest_source_state",
            "A source's feed state: 1 for the current one (live, stale, "
            "offline), 0 for the others.",
            labels);
        if (!s->state[st]) {
            return -ENOMEM;
        }
    }
    return actor_metric_gauge_fn(
        "scorewire_ingest_source_last_seen_seconds",
        "Seconds since the source's last byte arrived (its age).", source,
        seen_age, s);
}

struct ingest__seen *ingest__seen_get(const char *name)
{
    pthread_mutex_lock(&seen_lock);
    struct ingest__seen *s;
    for (s = seen_list; s; s = s->next) {
        if (strcmp(s->name, name) == 0) {
            goto out_unlock;
        }
    }
    s = calloc(1, sizeof(*s));
    if (!s) {
        goto out_unlock;
    }
    snprintf(s->name, sizeof(s->name), "%s", name);
    atomic_init(&s->last_ms, actor_now_ms());
    if (seen_register(s) != 0) {
        free(s); /* the age gauge, the one series that points at @s, is
                    the last registered: none refers to it */
        s = NULL;
        goto out_unlock;
    }
    s->next = seen_list;
    seen_list = s;
out_unlock:
    pthread_mutex_unlock(&seen_lock);
    return s;
}

void ingest__seen_state(struct ingest__seen *seen, enum match_feed state)
{
    for (int st = MATCH_FEED_LIVE; st <= MATCH_FEED_OFFLINE; st++) {
        actor_metric_set(seen->state[st], st == (int)state);
    }
}

/* ---- the routed set ------------------------------------------------------ */

static uint64_t hash_id(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
    for (; *s; s++) {
        h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    }
    return h;
}

static void idset_free(struct idset *set)
{
    for (size_t i = 0; i < set->cap; i++) {
        free(set->v[i]);
    }
    free(set->v);
    set->v = NULL;
    set->cap = 0;
    set->n = 0;
}

/* The slot of @id, or the free slot where it would go. */
static char **idset_slot(const struct idset *set, const char *id)
{
    size_t mask = set->cap - 1;
    for (size_t i = hash_id(id) & mask;; i = (i + 1) & mask) {
        if (!set->v[i] || strcmp(set->v[i], id) == 0) {
            return &set->v[i];
        }
    }
}

static int idset_grow(struct idset *set)
{
    struct idset big = {.cap = set->cap ? set->cap * 2 : 64};
    big.v = calloc(big.cap, sizeof(*big.v));
    if (!big.v) {
        return -ENOMEM;
    }
    for (size_t i = 0; i < set->cap; i++) {
        if (set->v[i]) {
            *idset_slot(&big, set->v[i]) = set->v[i];
        }
    }
    big.n = set->n;
    free(set->v);
    *set = big;
    return 0;
}

/* Remembers @id. Returns 0 or -ENOMEM. */
static int idset_add(struct idset *set, const char *id)
{
    if (set->overflow) {
        return 0;
    }
    if (set->cap && *idset_slot(set, id)) {
        return 0; /* the common case: seen before */
    }
    if (set->n >= ROUTED_MAX) {
        idset_free(set);
        set->overflow = true;
        return 0;
    }
    if ((set->n + 1) * 4 > set->cap * 3 && idset_grow(set) != 0) {
        return -ENOMEM;
    }
    char *copy = strdup(id);
    if (!copy) {
        return -ENOMEM;
    }
    *idset_slot(set, id) = copy;
    set->n++;
    return 0;
}

/* ---- feed state ---------------------------------------------------------- */

/* Tells the model the current state. Returns 0 or a fatal error. */
static int tell_feed(struct actor_ctx *ctx, struct source *s)
{
    static const char *const none[1];
    const char **ids = NULL;
    size_t n = 0;
    if (!s->routed.overflow && s->routed.n > 0) {
        ids = malloc(s->routed.n * sizeof(*ids));
        if (!ids) {
            return -ENOMEM;
        }
        for (size_t i = 0; i < s->routed.cap; i++) {
            if (s->routed.v[i]) {
                ids[n++] = s->routed.v[i];
            }
        }
    }
    const char *const *list = s->routed.overflow ? NULL : ids ? ids : none;
    int rc = s->env->cfg.feed(ctx, s->name, s->state, list, n);
    free(ids);
    if (rc == -EAGAIN) {
        s->feed_owed = true;
        return 0;
    }
    s->feed_owed = false;
    return rc;
}

static int set_state(struct actor_ctx *ctx, struct source *s,
                     enum match_feed state)
{
    if (s->state == state) {
        return 0;
    }
    s->state = state;
    ingest__seen_state(s->seen, state);
    actor_log(ctx, ACTOR_LOG_INFO, "source state", "source", s->name, "state",
              match_feed_name(state), NULL);
    return tell_feed(ctx, s);
}

/* ---- the conn ------------------------------------------------------------ */

/* Sends BOUND when the conn waits for it and the offsets are known. */
static void send_bound(struct actor_ctx *ctx, struct source *s)
{
    if (!s->bind_owed || !s->have_offsets) {
        return;
    }
    struct ingest__bound_msg *m = actor_msg_new(sizeof(*m), INGEST_MSG_BOUND);
    if (!m) {
        return; /* RESUME or the next ack tries again */
    }
    m->acked = s->acked;
    m->last_seen = s->last_seen;
    int rc = actor_send(ctx, s->conn, &m->hdr);
    if (rc == -EAGAIN) {
        actor_msg_free(&m->hdr);
        return;
    }
    if (rc != 0) {
        actor_msg_free(&m->hdr); /* gone: its DOWN is on the way */
    }
    s->bind_owed = false;
    s->relayed = s->acked;
}

/* Gives the conn the acked seq when it has not had it, or @again. */
static void relay_ack(struct actor_ctx *ctx, struct source *s, bool again)
{
    if (!s->conn || s->bind_owed || (!again && s->acked <= s->relayed)) {
        return; /* BOUND carries it */
    }
    struct ingest__ack_msg *m = actor_msg_new(sizeof(*m), INGEST_MSG_ACK);
    if (!m) {
        s->ack_owed = true;
        s->ack_again |= again;
        return;
    }
    m->seq = s->acked;
    m->again = again;
    int rc = actor_send(ctx, s->conn, &m->hdr);
    if (rc == -EAGAIN) {
        actor_msg_free(&m->hdr);
        s->ack_owed = true;
        s->ack_again |= again;
        return;
    }
    if (rc != 0) {
        actor_msg_free(&m->hdr);
    }
    s->relayed = s->acked;
    s->ack_owed = false;
    s->ack_again = false;
}

static void drop_conn(struct actor_ctx *ctx, struct source *s)
{
    if (s->conn_mon) {
        actor_demonitor(ctx, s->conn_mon);
    }
    s->conn = 0;
    s->conn_mon = 0;
    s->bind_owed = false;
    s->ack_owed = false;
    s->ack_again = false;
}

/* Tells the old conn it is replaced; shuts it down if it cannot hear. */
static void replace(struct actor_ctx *ctx, struct source *s)
{
    struct actor_msg *m = actor_msg_new(sizeof(*m), INGEST_MSG_REPLACED);
    if (!m || actor_send(ctx, s->conn, m) == -EAGAIN) {
        actor_msg_free(m);
        struct actor_exit why = {.kind = ACTOR_EXIT_SHUTDOWN};
        snprintf(why.text, sizeof(why.text), "replaced");
        actor_exit(ctx, s->conn, &why);
    }
    actor_log(ctx, ACTOR_LOG_INFO, "source connection replaced", "source",
              s->name, NULL);
    drop_conn(ctx, s);
}

static int on_bind(struct actor_ctx *ctx, struct source *s,
                   struct ingest__bind_msg *m)
{
    uint64_t from = m->hdr.from;
    if (s->conn != from) {
        if (s->conn) {
            replace(ctx, s);
        }
        s->conn = from;
        s->conn_mon = actor_monitor(ctx, from);
    }
    s->bind_owed = true;
    send_bound(ctx, s);
    return set_state(ctx, s, MATCH_FEED_LIVE);
}

static int on_feed(struct actor_ctx *ctx, struct source *s,
                   struct ingest__feed_msg *m)
{
    if (m->hdr.from != s->conn) {
        return 0;
    }
    return set_state(ctx, s, m->stale ? MATCH_FEED_STALE : MATCH_FEED_LIVE);
}

static int on_down(struct actor_ctx *ctx, struct source *s,
                   struct actor_down_msg *m)
{
    if (m->ref != s->conn_mon) {
        return 0;
    }
    s->conn_mon = 0; /* a DOWN ends its monitor */
    drop_conn(ctx, s);
    return set_state(ctx, s, MATCH_FEED_OFFLINE);
}

/* ---- the store ----------------------------------------------------------- */

/* Keeps ingest__sources_pending in step after acked or last_seen moved. */
static void count_pending(struct source *s)
{
    bool pending = s->last_seen > s->acked;
    if (pending != s->pending) {
        s->pending = pending;
        if (pending) {
            atomic_fetch_add(&ingest__sources_pending, 1);
        } else {
            atomic_fetch_sub(&ingest__sources_pending, 1);
        }
    }
}

static int ask_offsets(struct actor_ctx *ctx, struct source *s)
{
    struct store_acked_req_msg *m = store_acked_req_msg_new(s->self, s->name);
    if (!m) {
        return -ENOMEM;
    }
    int rc = actor_send(ctx, s->store, &m->hdr);
    if (rc != 0) {
        actor_msg_free(&m->hdr);
    }
    s->req_owed = rc == -EAGAIN;
    return rc == -EAGAIN ? 0 : rc;
}

static int on_store_ack(struct actor_ctx *ctx, struct source *s,
                        struct store_ack_msg *m)
{
    if (m->seq > s->acked) {
        s->acked = m->seq;
    }
    if (m->pending_seq > s->last_seen) {
        s->last_seen = m->pending_seq;
    }
    count_pending(s);
    if (!s->have_offsets) {
        s->have_offsets = true;
        s->req_owed = false;
        actor_log(ctx, ACTOR_LOG_DEBUG, "source offsets", "source", s->name,
                  "acked", ACTOR_LOG_INT(s->acked), "pending",
                  ACTOR_LOG_INT(m->pending_seq), NULL);
    }
    send_bound(ctx, s);
    relay_ack(ctx, s, false);
    return 0;
}

/* Sends @msg to the store, looking it up again if it was restarted.
 * Returns 0, -EAGAIN (the caller keeps @msg) or -ESRCH (no store). */
static int send_store(struct actor_ctx *ctx, struct source *s,
                      struct actor_msg *msg, bool unbounded)
{
    int (*send)(struct actor_ctx *, uint64_t, struct actor_msg *) =
        unbounded ? actor_send_unbounded : actor_send;
    int rc = send(ctx, s->store, msg);
    if (rc == -ESRCH) {
        s->store = actor_whereis("store");
        rc = s->store ? send(ctx, s->store, msg) : -ESRCH;
    }
    return rc;
}

/* Runs the jobs in order until one meets a full mailbox. Returns 0 or a
 * fatal error. */
static int run_jobs(struct actor_ctx *ctx, struct source *s)
{
    struct job *j;
    while ((j = ingest__ring_at(&s->jobs, 0))) {
        if (j->msg) {
            int rc = send_store(ctx, s, j->msg, false);
            if (rc == -EAGAIN) {
                return 0;
            }
            if (rc < 0) {
                actor_log(ctx, ACTOR_LOG_ERROR, "no store to send to", "source",
                          s->name, NULL);
                return rc;
            }
            j->msg = NULL;
        }
        for (; j->ev && j->next < j->ev->n_matches; j->next++) {
            int rc = s->env->cfg.route(ctx, j->ev, j->next);
            if (rc == -EAGAIN) {
                return 0;
            }
            if (rc < 0) {
                return rc;
            }
            rc = idset_add(&s->routed, j->ev->matches[j->next].id);
            if (rc < 0) {
                return rc;
            }
        }
        event_unref(j->ev);
        ingest__ring_pop(&s->jobs);
    }
    return 0;
}

/* Judges seq @seq from the conn: true when it is new (and now the last
 * seen); a duplicate is counted and, when durable, acked again. */
static bool take_seq(struct actor_ctx *ctx, struct source *s, uint64_t seq)
{
    if (seq > s->last_seen) {
        s->last_seen = seq;
        count_pending(s);
        return true;
    }
    actor_metric_add(ingest__m.duplicates, 1);
    if (seq <= s->acked) {
        relay_ack(ctx, s, true);
    }
    return false;
}

/* Queues @msg (and @ev's elements) and runs the queue. Takes @msg. Returns
 * ACTOR_KEPT; a fatal error ends the actor after this message. */
static int submit(struct actor_ctx *ctx, struct source *s,
                  struct actor_msg *msg, struct event *ev)
{
    struct job *j = ingest__ring_push(&s->jobs);
    if (!j) {
        actor_msg_free(msg);
        actor_fail(ctx, "job queue: %s", strerror(ENOMEM));
        return ACTOR_KEPT;
    }
    j->msg = msg;
    j->ev = ev && ev->n_matches ? event_ref(ev) : NULL;
    j->next = 0;
    int rc = run_jobs(ctx, s);
    if (rc < 0) {
        actor_fail(ctx, "%s", strerror(-rc));
    }
    return ACTOR_KEPT;
}

/* True when @msg comes from the bound conn (anything else is left over
 * from a replaced one: its peer resends it). */
static bool is_current(const struct source *s, const struct actor_msg *msg)
{
    return s->conn && msg->from == s->conn && !s->bind_owed;
}

static int on_event(struct actor_ctx *ctx, struct source *s,
                    struct store_event_msg *m)
{
    if (!is_current(s, &m->hdr)) {
        return 0;
    }
    ACTOR_ASSERT(s->have_offsets); /* BOUND went out before any event */
    if (!take_seq(ctx, s, m->ev->seq)) {
        return 0;
    }
    actor_metric_add(ingest__m.events, 1);
    return submit(ctx, s, &m->hdr, m->ev);
}

static int on_rejected(struct actor_ctx *ctx, struct source *s,
                       struct store_rejected_msg *m)
{
    if (!is_current(s, &m->hdr)) {
        return 0;
    }
    ACTOR_ASSERT(s->have_offsets && m->rej.has_seq);
    if (!take_seq(ctx, s, m->rej.seq)) {
        return 0;
    }
    return submit(ctx, s, &m->hdr, NULL);
}

static int on_resume(struct actor_ctx *ctx, struct source *s)
{
    int rc = 0;
    if (s->req_owed) {
        rc = ask_offsets(ctx, s);
    }
    if (rc == 0) {
        rc = run_jobs(ctx, s);
    }
    send_bound(ctx, s);
    if (s->ack_owed) {
        relay_ack(ctx, s, s->ack_again);
    }
    if (rc == 0 && s->feed_owed) {
        rc = tell_feed(ctx, s);
    }
    return rc;
}

/* ---- the actor ----------------------------------------------------------- */

int ingest__source_get(struct actor_ctx *ctx, const struct ingest__env *env,
                       const char *name, uint64_t *pid)
{
    (void)ctx;
    char reg[sizeof("source:") + INGEST_SOURCE_MAX];
    snprintf(reg, sizeof(reg), "source:%s", name);
    *pid = actor_whereis(reg);
    if (*pid) {
        return 0;
    }
    if (atomic_load(&ingest__sources_alive) >= env->cfg.max_sources) {
        return -EUSERS;
    }
    uint64_t sup = actor_whereis("ingest.sources");
    if (!sup) {
        return -ESRCH;
    }
    struct source_arg *arg = malloc(sizeof(*arg));
    if (!arg) {
        return -ENOMEM;
    }
    arg->env = env;
    snprintf(arg->name, sizeof(arg->name), "%s", name);
    const struct actor_child_spec spec = {
        .id = "source",
        .start = {.ops = &ingest__source_ops,
                  .arg = arg,
                  .name = reg,
                  .mailbox = env->cfg.window + ACTOR_MAILBOX_DEFAULT},
        .arg_free = free,
        .restart = ACTOR_TEMPORARY,
        .shutdown_ms = 1000,
    };
    int rc = actor_sup_start_child(sup, &spec, pid);
    return rc == -EEXIST ? 0 : rc; /* another conn started it first */
}

static int source_init(struct actor_ctx *ctx, void *arg, void **state)
{
    struct source_arg *a = arg;
    struct source *s = calloc(1, sizeof(*s));
    if (!s) {
        return -ENOMEM;
    }
    int rc;
    s->env = a->env;
    s->name = a->name;
    s->self = actor_self(ctx);
    s->state = MATCH_FEED_OFFLINE;
    ingest__ring_init(&s->jobs, sizeof(struct job));
    s->seen = ingest__seen_get(s->name);
    if (!s->seen) {
        rc = -ENOMEM;
        goto out_free;
    }
    s->store = actor_whereis("store");
    if (!s->store) {
        actor_log(ctx, ACTOR_LOG_ERROR, "no store to ask for offsets", "source",
                  s->name, NULL);
        rc = -ESRCH;
        goto out_free;
    }
    rc = ask_offsets(ctx, s);
    if (rc != 0) {
        goto out_free;
    }
    ingest__seen_state(s->seen, s->state);
    atomic_fetch_add(&ingest__sources_alive, 1);
    actor_log(ctx, ACTOR_LOG_INFO, "source started", "source", s->name, NULL);
    *state = s;
    return 0;

out_free:
    free(s);
    return rc;
}

static int source_handle(struct actor_ctx *ctx, void *state,
                         struct actor_msg *msg)
{
    struct source *s = state;
    switch (msg->type) {
    case STORE_MSG_EVENT:
        return on_event(ctx, s, (struct store_event_msg *)msg);
    case STORE_MSG_REJECTED:
        return on_rejected(ctx, s, (struct store_rejected_msg *)msg);
    case STORE_MSG_ACK:
        return on_store_ack(ctx, s, (struct store_ack_msg *)msg);
    case INGEST_MSG_BIND:
        return on_bind(ctx, s, (struct ingest__bind_msg *)msg);
    case INGEST_MSG_FEED:
        return on_feed(ctx, s, (struct ingest__feed_msg *)msg);
    case ACTOR_MSG_DOWN:
        return on_down(ctx, s, (struct actor_down_msg *)msg);
    case ACTOR_MSG_RESUME:
        return on_resume(ctx, s);
    default:
        return -EINVAL;
    }
}

/*
 * The store holds the row of @j's event and waits for an outcome of every
 * element; those we never routed are reported lost, as the model reports
 * the elements a dead match actor never handled, so the event completes
 * and the source's acks go on. (A job whose row was not sent yet is
 * simply dropped: it is unacked and the feed resends it.)
 */
static void report_lost(struct actor_ctx *ctx, struct source *s,
                        const struct job *j)
{
    for (uint32_t i = j->next; i < j->ev->n_matches; i++) {
        struct model_update_msg *m =
            model_update_msg_new(NULL, j->ev, i, MODEL_LOST);
        /* Past the store's bound: the source is ending, there is no
         * later turn to send them from. */
        if (!m || send_store(ctx, s, &m->hdr, true) != 0) {
            actor_msg_free(m ? &m->hdr : NULL);
            actor_log(ctx, ACTOR_LOG_ERROR,
                      "element outcome lost: the event never completes",
                      "source", s->name, "seq", ACTOR_LOG_INT(j->ev->seq),
                      NULL);
        }
    }
}

static void source_stop(struct actor_ctx *ctx, void *state,
                        const struct actor_exit *why)
{
    struct source *s = state;
    if (s->pending) {
        /* The store may still make some durable as it stops; either way
         * the feed resends from its acked seq. */
        actor_log(ctx, ACTOR_LOG_WARN, "source stopped with events not acked",
                  "source", s->name, "acked", ACTOR_LOG_INT(s->acked),
                  "last_seq", ACTOR_LOG_INT(s->last_seen), "reason",
                  actor_exit_kind_name(why->kind), NULL);
        s->last_seen = s->acked;
        count_pending(s);
    }
    struct job *j;
    while ((j = ingest__ring_at(&s->jobs, 0))) {
        if (!j->msg && j->ev) {
            report_lost(ctx, s, j);
        }
        actor_msg_free(j->msg);
        event_unref(j->ev);
        ingest__ring_pop(&s->jobs);
    }
    ingest__ring_release(&s->jobs);
    idset_free(&s->routed);
    ingest__seen_state(s->seen, MATCH_FEED_OFFLINE);
    atomic_fetch_sub(&ingest__sources_alive, 1);
    free(s);
}

const struct actor_ops ingest__source_ops = {
    .name = "ingest.source",
    .init = source_init,
    .handle = source_handle,
    .stop = source_stop,
};
