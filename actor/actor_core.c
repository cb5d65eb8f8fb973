/* actor/actor_core.c - actors: slots and pids, mailboxes, turns, exits,
 * links and monitors. */

/*
 * DESIGN
 * Slots live in chunks that are never freed, so an actor's memory stays
 * valid for as long as the process runs; only its generation changes. A
 * sender pins the slot with a hazard pointer of its own thread (a store to
 * its own cache line, not a write to the receiver's), then checks the
 * generation, pushes and unpins. A dying actor bumps the generation, which
 * turns away new senders, and waits until no thread's hazard names its
 * slot before it drains its mailbox and gives the slot back. So a pid can
 * never reach the slot's next tenant, and no message is pushed into a
 * mailbox that is being drained. Senders write one cache line of the
 * receiver (queue head, length, run flag); the generation sits on a
 * read-mostly line, the consumer's fields on a third.
 *
 * The mailbox is Vyukov's intrusive MPSC queue: a push is one exchange. The
 * length is a separate counter, raised before the push (to enforce the
 * bound) and lowered once per turn. An actor is queued to run when a send
 * finds its `sched` flag clear; after a turn the runner clears the flag and
 * looks at the length again, so a message is never left without a turn
 * (the two sides form a Dekker pair with sequentially consistent atomics).
 */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "actor/actor_impl.h"

#define SLOT_CHUNK_BITS 10
#define SLOT_CHUNK      (1u << SLOT_CHUNK_BITS)
#define SLOT_CHUNKS     4096u /* up to 4 Mi actors */
#define PIN_MASK        0xffffffffull
#define HAZARDS         4 /* nested pins per thread */

/* One per thread that ever pinned; never freed, reused after its thread
 * ends. */
struct hazard_rec {
    _Atomic uint32_t slot[HAZARDS]; /* slot index + 1, or 0 */
    unsigned depth;                 /* owner thread only */
    _Atomic bool used;
    struct hazard_rec *next;
} __attribute__((aligned(ACTOR__CACHELINE)));

static struct hazard_rec *_Atomic hazards;
static _Thread_local struct hazard_rec *my_hazard;
static pthread_key_t hazard_key;
static pthread_once_t hazard_once = PTHREAD_ONCE_INIT;

struct actor__rt actor__rt;

static struct actor_ctx *_Atomic chunks[SLOT_CHUNKS];
static pthread_mutex_t slot_lock = PTHREAD_MUTEX_INITIALIZER;
static uint32_t *free_slots; /* stack of free slot indexes */
static uint32_t n_free, cap_free;
static uint32_t next_slot; /* slots ever handed out */

static _Thread_local struct actor_ctx *current;

/* actor_wait(): waiters for a pid's end */
struct waiter {
    uint64_t pid;
    bool done;
    struct actor_exit why;
    struct waiter *next;
};
static pthread_mutex_t wait_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wait_cond = PTHREAD_COND_INITIALIZER;
static struct waiter *waiters;

/* senders waiting for RESUME, striped by receiver slot */
#define WAIT_STRIPES 64
static struct resume_list {
    pthread_mutex_t lock;
    struct resume_entry {
        uint64_t receiver;
        uint64_t sender;
    } * v;
    size_t n, cap;
} resume[WAIT_STRIPES];
static pthread_once_t resume_once = PTHREAD_ONCE_INIT;

static void resume_init(void)
{
    for (size_t i = 0; i < WAIT_STRIPES; i++) {
        pthread_mutex_init(&resume[i].lock, NULL);
    }
}

_Noreturn void actor__assert_fail(const char *what, const char *file, int line,
                                  const char *func)
{
    fprintf(stderr,
            "level=error msg=\"assertion failed\" what=\"%s\" "
            "at=%s:%d func=%s\n",
            what, file, line, func);
    abort();
}

/* ---- small vectors ---------------------------------------------------- */

int actor__grow(void *v, size_t *cap, size_t n, size_t size, size_t first)
{
    if (n < *cap) {
        return 0;
    }
    size_t c = *cap ? *cap * 2 : first;
    void **pv = v;
    void *p = realloc(*pv, c * size);
    if (!p) {
        return -ENOMEM;
    }
    *pv = p;
    *cap = c;
    return 0;
}

int actor__vec_add(struct actor__vec *vec, uint64_t x)
{
    if (actor__grow(&vec->v, &vec->cap, vec->n, sizeof(*vec->v), 4) != 0) {
        return -ENOMEM;
    }
    vec->v[vec->n++] = x;
    return 0;
}

bool actor__vec_del(struct actor__vec *vec, uint64_t x)
{
    for (size_t i = 0; i < vec->n; i++) {
        if (vec->v[i] == x) {
            vec->v[i] = vec->v[--vec->n];
            return true;
        }
    }
    return false;
}

bool actor__vec_has(const struct actor__vec *vec, uint64_t x)
{
    for (size_t i = 0; i < vec->n; i++) {
        if (vec->v[i] == x) {
            return true;
        }
    }
    return false;
}

void actor__vec_free(struct actor__vec *vec)
{
    free(vec->v);
    vec->v = NULL;
    vec->n = 0;
    vec->cap = 0;
}

static int monvec_add(struct actor__monvec *mv, uint64_t ref, uint64_t pid)
{
    if (actor__grow(&mv->v, &mv->cap, mv->n, sizeof(*mv->v), 4) != 0) {
        return -ENOMEM;
    }
    mv->v[mv->n].ref = ref;
    mv->v[mv->n].pid = pid;
    mv->n++;
    return 0;
}

/* Removes @ref; returns its pid, or 0 when absent. */
static uint64_t monvec_del(struct actor__monvec *mv, uint64_t ref)
{
    for (size_t i = 0; i < mv->n; i++) {
        if (mv->v[i].ref == ref) {
            uint64_t pid = mv->v[i].pid;
            mv->v[i] = mv->v[--mv->n];
            return pid;
        }
    }
    return 0;
}

static void monvec_free(struct actor__monvec *mv)
{
    free(mv->v);
    mv->v = NULL;
    mv->n = 0;
    mv->cap = 0;
}

/* ---- messages and reasons --------------------------------------------- */

static void msg_free_plain(struct actor_msg *msg)
{
    free(msg);
}

void *actor_msg_new(size_t size, uint32_t type)
{
    if (size < sizeof(struct actor_msg)) {
        size = sizeof(struct actor_msg);
    }
    struct actor_msg *msg = calloc(1, size);
    if (!msg) {
        return NULL;
    }
    msg->type = type;
    msg->free = msg_free_plain;
    return msg;
}

void actor_msg_free(struct actor_msg *msg)
{
    if (msg && msg->free) {
        msg->free(msg);
    }
}

void actor__set_exit(struct actor_exit *e, enum actor_exit_kind kind, int err,
                     const char *fmt, ...)
{
    e->kind = kind;
    e->err = err;
    e->text[0] = '\0';
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->text, sizeof(e->text), fmt, ap);
        va_end(ap);
    }
}

bool actor_exit_is_abnormal(const struct actor_exit *why)
{
    return why->kind != ACTOR_EXIT_NORMAL && why->kind != ACTOR_EXIT_SHUTDOWN;
}

const char *actor_exit_kind_name(enum actor_exit_kind kind)
{
    switch (kind) {
    case ACTOR_EXIT_NORMAL:
        return "normal";
    case ACTOR_EXIT_SHUTDOWN:
        return "shutdown";
    case ACTOR_EXIT_KILLED:
        return "killed";
    case ACTOR_EXIT_NOPROC:
        return "noproc";
    case ACTOR_EXIT_ERROR:
        return "error";
    }
    return "unknown";
}

/* ---- slots ------------------------------------------------------------ */

static struct actor_ctx *slot_at(uint32_t idx)
{
    if (idx >= SLOT_CHUNKS * SLOT_CHUNK) {
        return NULL;
    }
    struct actor_ctx *chunk = atomic_load_explicit(
        &chunks[idx >> SLOT_CHUNK_BITS], memory_order_acquire);
    return chunk ? &chunk[idx & (SLOT_CHUNK - 1)] : NULL;
}

static int slot_alloc(uint32_t *idx)
{
    int rc = 0;
    pthread_mutex_lock(&slot_lock);
    if (n_free > 0) {
        *idx = free_slots[--n_free];
        goto out_unlock;
    }
    if (next_slot >= SLOT_CHUNKS * SLOT_CHUNK) {
        rc = -EAGAIN;
        goto out_unlock;
    }
    uint32_t c = next_slot >> SLOT_CHUNK_BITS;
    if (!atomic_load_explicit(&chunks[c], memory_order_relaxed)) {
        struct actor_ctx *chunk =
            aligned_alloc(ACTOR__CACHELINE, SLOT_CHUNK * sizeof(*chunk));
        if (!chunk) {
            rc = -ENOMEM;
            goto out_unlock;
        }
        memset(chunk, 0, SLOT_CHUNK * sizeof(*chunk));
        for (uint32_t i = 0; i < SLOT_CHUNK; i++) {
            atomic_init(&chunk[i].gen, 1);
        }
        atomic_store_explicit(&chunks[c], chunk, memory_order_release);
    }
    *idx = next_slot++;
out_unlock:
    pthread_mutex_unlock(&slot_lock);
    return rc;
}

static void slot_free(uint32_t idx)
{
    pthread_mutex_lock(&slot_lock);
    if (n_free == cap_free) {
        uint32_t cap = cap_free ? cap_free * 2 : 1024;
        uint32_t *v = realloc(free_slots, cap * sizeof(*v));
        if (!v) {
            /* The slot is leaked, not reused: harmless, and rare. */
            pthread_mutex_unlock(&slot_lock);
            return;
        }
        free_slots = v;
        cap_free = cap;
    }
    free_slots[n_free++] = idx;
    pthread_mutex_unlock(&slot_lock);
}

static void hazard_release(void *rec)
{
    struct hazard_rec *h = rec;
    atomic_store(&h->used, false);
}

static void hazard_key_init(void)
{
    pthread_key_create(&hazard_key, hazard_release);
}

static struct hazard_rec *hazard_get(void)
{
    if (my_hazard) {
        return my_hazard;
    }
    pthread_once(&hazard_once, hazard_key_init);
    struct hazard_rec *h;
    for (h = atomic_load(&hazards); h; h = h->next) {
        bool no = false;
        if (atomic_compare_exchange_strong(&h->used, &no, true)) {
            goto out;
        }
    }
    h = aligned_alloc(ACTOR__CACHELINE, sizeof(*h));
    ACTOR_ASSERT(h != NULL); /* a few bytes, once per thread */
    memset(h, 0, sizeof(*h));
    atomic_store(&h->used, true);
    h->next = atomic_load(&hazards);
    while (!atomic_compare_exchange_weak(&hazards, &h->next, h)) {
    }
out:
    h->depth = 0;
    my_hazard = h;
    pthread_setspecific(hazard_key, h);
    return h;
}

struct actor_ctx *actor__pin(uint64_t pid)
{
    if (pid == 0) {
        return NULL;
    }
    uint32_t idx = (uint32_t)(pid & PIN_MASK) - 1;
    struct actor_ctx *a = slot_at(idx);
    if (!a) {
        return NULL;
    }
    struct hazard_rec *h = hazard_get();
    unsigned d = h->depth;
    ACTOR_ASSERT(d < HAZARDS);
    /* Publish the hazard, then check: a dying actor bumps the generation,
     * then scans hazards; one of us sees the other (both seq_cst). */
    atomic_store(&h->slot[d], idx + 1);
    if (atomic_load(&a->gen) != (uint32_t)(pid >> 32)) {
        atomic_store_explicit(&h->slot[d], 0, memory_order_release);
        return NULL;
    }
    h->depth = d + 1;
    return a;
}

void actor__unpin(struct actor_ctx *a)
{
    struct hazard_rec *h = my_hazard;
    unsigned d = --h->depth;
    ACTOR_ASSERT(atomic_load_explicit(&h->slot[d], memory_order_relaxed) ==
                 (uint32_t)(a->pid & PIN_MASK));
    atomic_store_explicit(&h->slot[d], 0, memory_order_release);
}

/* Waits until no thread has @a's slot pinned (its generation is bumped
 * already, so no new pin can succeed). */
static void wait_unpinned(struct actor_ctx *a)
{
    uint32_t slot = (uint32_t)(a->pid & PIN_MASK);
    for (struct hazard_rec *h = atomic_load(&hazards); h; h = h->next) {
        for (int i = 0; i < HAZARDS; i++) {
            for (unsigned spins = 0; atomic_load(&h->slot[i]) == slot;
                 spins++) {
                if (spins > 64) {
                    sched_yield();
                }
            }
        }
    }
}

/* Retires the tenant's pid: new pins fail, pinned senders are waited out. */
static void retire_pid(struct actor_ctx *a)
{
    atomic_fetch_add(&a->gen, 1);
    wait_unpinned(a);
}

/* ---- the mailbox ------------------------------------------------------ */

static void mbox_init(struct actor_ctx *a)
{
    atomic_store_explicit(&a->stub.next, NULL, memory_order_relaxed);
    atomic_store_explicit(&a->head, &a->stub, memory_order_relaxed);
    a->tail = &a->stub;
    atomic_store_explicit(&a->len, 0, memory_order_relaxed);
}

static void mbox_push(struct actor_ctx *a, struct actor_msg *msg)
{
    atomic_store_explicit(&msg->next, NULL, memory_order_relaxed);
    struct actor_msg *prev =
        atomic_exchange_explicit(&a->head, msg, memory_order_acq_rel);
    atomic_store_explicit(&prev->next, msg, memory_order_release);
}

static struct actor_msg *mbox_pop(struct actor_ctx *a)
{
    struct actor_msg *tail = a->tail;
    struct actor_msg *next =
        atomic_load_explicit(&tail->next, memory_order_acquire);
    if (tail == &a->stub) {
        if (!next) {
            return NULL;
        }
        a->tail = next;
        tail = next;
        next = atomic_load_explicit(&next->next, memory_order_acquire);
    }
    if (next) {
        a->tail = next;
        return tail;
    }
    if (tail != atomic_load_explicit(&a->head, memory_order_acquire)) {
        return NULL; /* a push is half done; its turn will come */
    }
    mbox_push(a, &a->stub);
    next = atomic_load_explicit(&tail->next, memory_order_acquire);
    if (next) {
        a->tail = next;
        return tail;
    }
    return NULL;
}

bool actor__mailbox_empty(struct actor_ctx *a)
{
    return atomic_load(&a->len) == 0;
}

static void resume_add(struct actor_ctx *a, uint64_t sender)
{
    pthread_once(&resume_once, resume_init);
    struct resume_list *rl = &resume[(a->pid & PIN_MASK) % WAIT_STRIPES];
    pthread_mutex_lock(&rl->lock);
    for (size_t i = 0; i < rl->n; i++) {
        if (rl->v[i].receiver == a->pid && rl->v[i].sender == sender) {
            goto out_unlock;
        }
    }
    if (actor__grow(&rl->v, &rl->cap, rl->n, sizeof(*rl->v), 16) != 0) {
        goto out_unlock; /* the sender retries on its own timer */
    }
    rl->v[rl->n].receiver = a->pid;
    rl->v[rl->n].sender = sender;
    rl->n++;
out_unlock:
    pthread_mutex_unlock(&rl->lock);
}

static void send_resume(uint64_t to, uint64_t from)
{
    struct actor_msg *m = actor_msg_new(sizeof(*m), ACTOR_MSG_RESUME);
    if (!m) {
        return;
    }
    m->from = from;
    actor__send_sys(to, m);
}

/* Tells every sender waiting on @a that there is room (or that it died). */
static void resume_wake(struct actor_ctx *a)
{
    if (!atomic_exchange(&a->waiters, false)) {
        return;
    }
    pthread_once(&resume_once, resume_init);
    struct resume_list *rl = &resume[(a->pid & PIN_MASK) % WAIT_STRIPES];
    uint64_t woken[64];
    uint32_t n = 0;
    bool more;
    do {
        more = false;
        n = 0;
        pthread_mutex_lock(&rl->lock);
        for (size_t i = 0; i < rl->n;) {
            if (rl->v[i].receiver != a->pid) {
                i++;
                continue;
            }
            if (n == 64) {
                more = true;
                break;
            }
            woken[n++] = rl->v[i].sender;
            rl->v[i] = rl->v[--rl->n];
        }
        pthread_mutex_unlock(&rl->lock);
        for (uint32_t i = 0; i < n; i++) {
            send_resume(woken[i], a->pid);
        }
    } while (more);
}

int actor__push(struct actor_ctx *a, struct actor_msg *msg, bool system,
                struct actor_ctx *sender)
{
    uint32_t n = atomic_fetch_add(&a->len, 1);
    if (!system && n >= a->cap) {
        atomic_fetch_sub(&a->len, 1);
        atomic_fetch_add_explicit(&actor__rt.st_full, 1, memory_order_relaxed);
        if (sender) {
            resume_add(a, sender->pid);
            atomic_store(&a->waiters, true);
            /* The receiver may have drained before it saw the flag. */
            if (atomic_load(&a->len) <= a->cap / 2) {
                resume_wake(a);
            }
        }
        return -EAGAIN;
    }
    bool exit_sig = false;
    if (system) {
        msg->flags |= ACTOR__F_SYSTEM;
        exit_sig = msg->type == ACTOR__SIG_EXIT;
        if (exit_sig) {
            atomic_fetch_add(&a->exits_queued, 1);
        }
    }
    mbox_push(a, msg);
    if (!atomic_load(&a->sched) && !atomic_exchange(&a->sched, 1)) {
        if (a->thread) {
            actor__thread_wake(a);
        } else {
            actor__schedule(a);
        }
    } else if (exit_sig && a->thread) {
        /* A blocking actor may be sleeping away from its mailbox
         * (actor_sleep()): an exit wakes it all the same. */
        actor__thread_wake(a);
    }
    return 0;
}

static int send_msg(struct actor_ctx *ctx, uint64_t to, struct actor_msg *msg,
                    bool unbounded)
{
    struct actor_ctx *a = actor__pin(to);
    if (!a) {
        atomic_fetch_add_explicit(&actor__rt.st_dead, 1, memory_order_relaxed);
        return -ESRCH;
    }
    msg->from = ctx ? ctx->pid : 0;
    int rc = actor__push(a, msg, unbounded, ctx);
    actor__unpin(a);
    return rc;
}

int actor_send(struct actor_ctx *ctx, uint64_t to, struct actor_msg *msg)
{
    return send_msg(ctx, to, msg, false);
}

int actor_send_unbounded(struct actor_ctx *ctx, uint64_t to,
                         struct actor_msg *msg)
{
    return send_msg(ctx, to, msg, true);
}

int actor_send_or_free(struct actor_ctx *ctx, uint64_t to,
                       struct actor_msg *msg)
{
    int rc = actor_send(ctx, to, msg);
    if (rc != 0) {
        actor_msg_free(msg);
    }
    return rc;
}

int actor__send_sys(uint64_t to, struct actor_msg *msg)
{
    struct actor_ctx *a = actor__pin(to);
    if (!a) {
        actor_msg_free(msg);
        return -ESRCH;
    }
    actor__push(a, msg, true, NULL);
    actor__unpin(a);
    return 0;
}

bool actor_is_alive(uint64_t pid)
{
    struct actor_ctx *a = actor__pin(pid);
    if (!a) {
        return false;
    }
    actor__unpin(a);
    return true;
}

/* ---- spawning --------------------------------------------------------- */

static void drain_dead(struct actor_ctx *a);
static void notify_waiters(struct actor_ctx *a, uint64_t pid,
                           const struct actor_exit *why);

static struct actor__sig *sig_new(uint32_t type, uint64_t from)
{
    struct actor__sig *s = actor_msg_new(sizeof(*s), type);
    if (s) {
        s->hdr.from = from;
    }
    return s;
}

/* Queues a signal to @a itself, from its own turn (a cannot die now). */
static void push_self(struct actor_ctx *a, struct actor_msg *msg)
{
    actor__push(a, msg, true, NULL);
}

int (*actor__spawn_hook)(uint64_t pid);

int actor__spawn(const struct actor_spawn *how, uint64_t ack_to, uint64_t *pid)
{
    if (!how || !how->ops || !how->ops->handle || !pid) {
        return -EINVAL;
    }
    char *name = NULL;
    if (how->name) {
        name = strdup(how->name);
        if (!name) {
            return -ENOMEM;
        }
    }
    struct actor__sig *link_sig = NULL;
    if (how->link) {
        link_sig = sig_new(ACTOR__SIG_LINK, 0);
        if (!link_sig) {
            free(name);
            return -ENOMEM;
        }
    }
    uint32_t idx;
    int rc = slot_alloc(&idx);
    if (rc != 0) {
        goto out_free;
    }
    struct actor_ctx *a = slot_at(idx);
    uint64_t gen = atomic_load(&a->gen);
    a->pid = (gen << 32) | (uint64_t)(idx + 1);
    mbox_init(a);
    /* Queued-or-running until the first turn: a send that finds us by
     * name before spawn returns only pushes. */
    atomic_store(&a->sched, 1);
    a->cap = how->mailbox ? how->mailbox : ACTOR_MAILBOX_DEFAULT;
    a->ops = how->ops;
    a->thread = NULL;
    atomic_store(&a->wake_state, NULL);
    atomic_store(&a->handled, 0);
    atomic_store(&a->waiters, false);
    atomic_store(&a->exits_queued, 0);
    atomic_store(&a->is_sup, how->ops == &actor__sup_ops);
    a->parent = how->link;
    a->ack_to = ack_to;
    a->restarts = how->restarts;
    a->arg_free = NULL;
    a->state = NULL;
    a->arg = how->arg;
    a->phase = ACTOR__NEW;
    a->init_ok = false;
    a->trap_exit = false;
    a->exit_pending = false;
    a->in_turn = false;
    a->turn_popped = 0;
    a->dropped_name = NULL;
    memset(&a->exit, 0, sizeof(a->exit));
    memset(&a->links, 0, sizeof(a->links));
    memset(&a->timers, 0, sizeof(a->timers));
    memset(&a->watches, 0, sizeof(a->watches));
    memset(&a->monitors, 0, sizeof(a->monitors));
    memset(&a->monitored_by, 0, sizeof(a->monitored_by));
    atomic_store(&a->name, NULL);

    if (name) {
        uint64_t holder = 0;
        rc = actor__registry_add(name, a->pid, &holder);
        if (rc != 0) {
            *pid = holder;
            goto out_slot;
        }
        atomic_store(&a->name, name);
        name = NULL;
    }
    if (actor__spawn_hook) {
        rc = actor__spawn_hook(a->pid);
        if (rc != 0) {
            goto out_unregister;
        }
    }
    if (how->link) {
        rc = actor__vec_add(&a->links, how->link);
        if (rc != 0) {
            goto out_unregister;
        }
    }
    *pid = a->pid;
    atomic_store(&a->live, a->pid);
    if (how->thread) {
        rc = actor__thread_start(a);
        if (rc != 0) {
            goto out_unregister;
        }
    }
    atomic_fetch_add_explicit(&actor__rt.st_spawned, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&actor__rt.alive, 1, memory_order_relaxed);

    if (link_sig) {
        link_sig->hdr.from = a->pid;
        if (actor__send_sys(how->link, &link_sig->hdr) != 0) {
            /* The parent is gone: we get its exit signal, as a link would. */
            struct actor__sig *s = sig_new(ACTOR__SIG_EXIT, how->link);
            if (s) {
                s->from_link = true;
                actor__set_exit(&s->why, ACTOR_EXIT_NOPROC, 0, NULL);
                /* As any exit signal: counted, and a thread woken (it
                 * may be waiting already). */
                actor__send_sys(a->pid, &s->hdr);
            }
        }
    }
    /* The first turn runs init. Threads run their own. */
    if (!how->thread) {
        actor__schedule(a);
    }
    return 0;

out_unregister:
    if (atomic_load(&a->name)) {
        char *n = atomic_exchange(&a->name, NULL);
        actor__registry_del(n, a->pid);
        free(n);
    }
    actor__vec_free(&a->links);
    /* Someone may have found the name already: retire the pid for good,
     * and tell a link, a monitor or a wait on it that it never lived. */
    retire_pid(a);
    if (a->thread) {
        actor__thread_discard(a); /* no sender can be waking it now */
    }
    actor__set_exit(&a->exit, ACTOR_EXIT_NOPROC, 0, NULL);
    drain_dead(a);
    notify_waiters(a, a->pid, &a->exit);
out_slot:
    slot_free(idx);
out_free:
    free(link_sig);
    free(name);
    return rc;
}

int actor_spawn(const struct actor_spawn *how, uint64_t *pid)
{
    return actor__spawn(how, 0, pid);
}

/* ---- accessors -------------------------------------------------------- */

uint64_t actor_self(const struct actor_ctx *ctx)
{
    return ctx ? ctx->pid : 0;
}

const char *actor_kind(const struct actor_ctx *ctx)
{
    return ctx && ctx->ops->name ? ctx->ops->name : "actor";
}

const char *actor_name(const struct actor_ctx *ctx)
{
    return ctx ? atomic_load(&((struct actor_ctx *)ctx)->name) : NULL;
}

uint32_t actor_queued(const struct actor_ctx *ctx)
{
    /* len falls by a turn's count only when the turn ends. */
    uint32_t len = atomic_load(&((struct actor_ctx *)ctx)->len);
    return len > ctx->turn_popped ? len - ctx->turn_popped : 0;
}

int actor_unregister(struct actor_ctx *ctx)
{
    char *name = atomic_exchange(&ctx->name, NULL);
    if (!name) {
        return -ENOENT;
    }
    actor__registry_del(name, ctx->pid);
    free(ctx->dropped_name);
    ctx->dropped_name = name;
    return 0;
}

struct actor_ctx *actor__current(void)
{
    return current;
}

int actor_fail(struct actor_ctx *ctx, const char *fmt, ...)
{
    ctx->exit_pending = true;
    ctx->exit.kind = ACTOR_EXIT_ERROR;
    ctx->exit.err = -ECANCELED;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx->exit.text, sizeof(ctx->exit.text), fmt, ap);
    va_end(ap);
    return -ECANCELED;
}

void actor_exit_self(struct actor_ctx *ctx, enum actor_exit_kind kind)
{
    if (!ctx->exit_pending) {
        ctx->exit_pending = true;
        actor__set_exit(&ctx->exit, kind, 0, NULL);
    }
}

static void send_init_ack(struct actor_ctx *a)
{
    if (!a->ack_to) {
        return;
    }
    struct actor_msg *m = actor_msg_new(sizeof(*m), ACTOR__MSG_INIT_ACK);
    if (m) {
        m->from = a->pid;
        actor__send_sys(a->ack_to, m);
    }
    a->ack_to = 0;
}

void actor_init_done(struct actor_ctx *ctx)
{
    send_init_ack(ctx);
}

void actor_trap_exit(struct actor_ctx *ctx, bool on)
{
    ctx->trap_exit = on;
}

/* ---- links, monitors, exit signals ------------------------------------ */

int actor_link(struct actor_ctx *ctx, uint64_t pid)
{
    if (pid == 0) {
        return -EINVAL;
    }
    if (pid == ctx->pid || actor__vec_has(&ctx->links, pid)) {
        return 0;
    }
    struct actor__sig *s = sig_new(ACTOR__SIG_LINK, ctx->pid);
    if (!s || actor__vec_add(&ctx->links, pid) != 0) {
        free(s);
        return -ENOMEM;
    }
    if (actor__send_sys(pid, &s->hdr) != 0) {
        struct actor__sig *e = sig_new(ACTOR__SIG_EXIT, pid);
        if (!e) {
            actor__vec_del(&ctx->links, pid);
            return -ENOMEM;
        }
        e->from_link = true;
        actor__set_exit(&e->why, ACTOR_EXIT_NOPROC, 0, NULL);
        push_self(ctx, &e->hdr);
    }
    return 0;
}

int actor_unlink(struct actor_ctx *ctx, uint64_t pid)
{
    if (!actor__vec_del(&ctx->links, pid)) {
        return 0;
    }
    struct actor__sig *s = sig_new(ACTOR__SIG_UNLINK, ctx->pid);
    if (s) {
        actor__send_sys(pid, &s->hdr);
    }
    return 0;
}

static struct actor_msg *down_new(uint64_t ref, uint64_t pid,
                                  const struct actor_exit *why)
{
    struct actor_down_msg *d = actor_msg_new(sizeof(*d), ACTOR_MSG_DOWN);
    if (!d) {
        return NULL;
    }
    d->hdr.from = pid;
    d->ref = ref;
    d->pid = pid;
    d->why = *why;
    return &d->hdr;
}

uint64_t actor_monitor(struct actor_ctx *ctx, uint64_t pid)
{
    uint64_t ref = atomic_fetch_add(&actor__rt.next_ref, 1) + 1;
    if (monvec_add(&ctx->monitors, ref, pid) != 0) {
        return 0;
    }
    struct actor__sig *s = sig_new(ACTOR__SIG_MONITOR, ctx->pid);
    if (s) {
        s->ref = ref;
    }
    if (!s || actor__send_sys(pid, &s->hdr) != 0) {
        struct actor_exit why;
        actor__set_exit(&why, ACTOR_EXIT_NOPROC, 0, NULL);
        struct actor_msg *d = down_new(ref, pid, &why);
        if (!d) {
            monvec_del(&ctx->monitors, ref);
            return 0;
        }
        push_self(ctx, d);
    }
    return ref;
}

void actor_demonitor(struct actor_ctx *ctx, uint64_t ref)
{
    uint64_t target = monvec_del(&ctx->monitors, ref);
    if (!target) {
        return;
    }
    struct actor__sig *s = sig_new(ACTOR__SIG_DEMONITOR, ctx->pid);
    if (s) {
        s->ref = ref;
        actor__send_sys(target, &s->hdr);
    }
}

int actor_exit(struct actor_ctx *ctx, uint64_t to, const struct actor_exit *why)
{
    struct actor__sig *s = sig_new(ACTOR__SIG_EXIT, ctx ? ctx->pid : 0);
    if (!s) {
        return -ENOMEM;
    }
    s->from_link = false;
    s->why = *why;
    return actor__send_sys(to, &s->hdr);
}

static void die(struct actor_ctx *a, const struct actor_exit *why)
{
    a->exit_pending = true;
    a->exit = *why;
}

static void deliver(struct actor_ctx *a, struct actor_msg *msg)
{
    atomic_store_explicit(
        &a->handled,
        atomic_load_explicit(&a->handled, memory_order_relaxed) + 1,
        memory_order_relaxed);
    int rc = a->ops->handle(a, a->state, msg);
    if (rc != ACTOR_KEPT) {
        actor_msg_free(msg);
    }
    if (rc < 0 && !a->exit_pending) {
        actor__set_exit(&a->exit, ACTOR_EXIT_ERROR, rc, "%s: %s",
                        a->ops->name ? a->ops->name : "handle", strerror(-rc));
        a->exit_pending = true;
    }
}

static void on_exit_signal(struct actor_ctx *a, struct actor__sig *s)
{
    uint64_t from = s->hdr.from;
    if (s->from_link && !actor__vec_del(&a->links, from)) {
        actor_msg_free(&s->hdr); /* unlinked since: not ours any more */
        return;
    }
    if (!s->from_link && s->why.kind == ACTOR_EXIT_KILLED) {
        die(a, &s->why); /* an explicit kill cannot be trapped */
        actor_msg_free(&s->hdr);
        return;
    }
    if (a->trap_exit && a->phase == ACTOR__LIVE) {
        struct actor_exit_msg *m = actor_msg_new(sizeof(*m), ACTOR_MSG_EXIT);
        if (!m) {
            die(a, &s->why);
            actor_msg_free(&s->hdr);
            return;
        }
        m->hdr.from = from;
        m->pid = from;
        m->why = s->why;
        actor_msg_free(&s->hdr);
        deliver(a, &m->hdr);
        return;
    }
    if (s->why.kind != ACTOR_EXIT_NORMAL || (!s->from_link && from == a->pid)) {
        die(a, &s->why);
    }
    actor_msg_free(&s->hdr);
}

static void dispatch(struct actor_ctx *a, struct actor_msg *msg)
{
    struct actor__sig *s = (struct actor__sig *)msg;
    switch (msg->type) {
    case ACTOR__SIG_EXIT:
        atomic_fetch_sub(&a->exits_queued, 1);
        on_exit_signal(a, s);
        return;
    case ACTOR__SIG_LINK:
        if (!actor__vec_has(&a->links, msg->from) &&
            actor__vec_add(&a->links, msg->from) != 0) {
            actor__set_exit(&a->exit, ACTOR_EXIT_ERROR, -ENOMEM, "link");
            a->exit_pending = true;
        }
        actor_msg_free(msg);
        return;
    case ACTOR__SIG_UNLINK:
        actor__vec_del(&a->links, msg->from);
        actor_msg_free(msg);
        return;
    case ACTOR__SIG_MONITOR:
        if (monvec_add(&a->monitored_by, s->ref, msg->from) != 0) {
            actor__set_exit(&a->exit, ACTOR_EXIT_ERROR, -ENOMEM, "monitor");
            a->exit_pending = true;
        }
        actor_msg_free(msg);
        return;
    case ACTOR__SIG_DEMONITOR:
        monvec_del(&a->monitored_by, s->ref);
        actor_msg_free(msg);
        return;
    case ACTOR_MSG_IO: {
        struct actor_io_msg *io = (struct actor_io_msg *)msg;
        if (!actor__vec_has(&a->watches, io->watch)) {
            actor_msg_free(msg); /* unwatched since */
            return;
        }
        break;
    }
    case ACTOR_MSG_DOWN: {
        struct actor_down_msg *d = (struct actor_down_msg *)msg;
        if (!monvec_del(&a->monitors, d->ref)) {
            actor_msg_free(msg); /* demonitored since */
            return;
        }
        break;
    }
    default:
        break;
    }
    if ((msg->flags & ACTOR__F_TIMER) &&
        !actor__vec_del(&a->timers, msg->tag)) {
        actor_msg_free(msg); /* cancelled */
        return;
    }
    deliver(a, msg);
}

/* ---- turns and exits -------------------------------------------------- */

/* The last exits, so actor_wait() after the fact still learns why. */
#define RECENT_EXITS 64
static struct {
    uint64_t pid;
    struct actor_exit why;
} recent[RECENT_EXITS];
static unsigned recent_next;

/* Tells @pid's exit to its waiters and the ring, and ends @a's tenancy
 * (`live`) under the same lock: actor_wait() checks both under it, so it
 * sees either an exit still coming that will wake it, or one told. (With
 * `live` cleared after the lock, a wait that came in between, once 64
 * later exits had pushed this one out of the ring, took the exit for still
 * coming and waited out its whole timeout.) */
static void notify_waiters(struct actor_ctx *a, uint64_t pid,
                           const struct actor_exit *why)
{
    pthread_mutex_lock(&wait_lock);
    atomic_store(&a->live, 0);
    recent[recent_next % RECENT_EXITS].pid = pid;
    recent[recent_next % RECENT_EXITS].why = *why;
    recent_next++;
    bool any = false;
    for (struct waiter *w = waiters; w; w = w->next) {
        if (w->pid == pid) {
            w->done = true;
            w->why = *why;
            any = true;
        }
    }
    if (any) {
        pthread_cond_broadcast(&wait_cond);
    }
    pthread_mutex_unlock(&wait_lock);
}

/* Answers link and monitor requests that came too late, frees the rest. */
static void drain_dead(struct actor_ctx *a)
{
    struct actor_msg *msg;
    while ((msg = mbox_pop(a))) {
        struct actor__sig *s = (struct actor__sig *)msg;
        if (msg->type == ACTOR__SIG_LINK) {
            struct actor__sig *e = sig_new(ACTOR__SIG_EXIT, a->pid);
            if (e) {
                e->from_link = true;
                e->why = a->exit;
                actor__send_sys(msg->from, &e->hdr);
            }
        } else if (msg->type == ACTOR__SIG_MONITOR) {
            struct actor_msg *d = down_new(s->ref, a->pid, &a->exit);
            if (d) {
                actor__send_sys(msg->from, d);
            }
        }
        actor_msg_free(msg);
    }
}

static void do_exit(struct actor_ctx *a)
{
    a->phase = ACTOR__DYING;
    uint64_t pid = a->pid;
    /* A free slot reads as queued-or-running, as a new one does until its
     * first turn: a scheduler late in actor__after_turn() for an earlier
     * tenant then cannot queue it. (A blocking actor's loop leaves the
     * flag clear.) */
    atomic_store(&a->sched, 1);

    /* Turn new senders away, then wait out those already pinned. */
    retire_pid(a);

    /* No sender can wake us any more (none is pinned); say so before
     * stop tears down what ops->wake touches. */
    atomic_store(&a->wake_state, NULL);

    /* Visible resources first: name, timers, fd watches. */
    char *name = atomic_exchange(&a->name, NULL);
    if (name) {
        actor__registry_del(name, pid);
    }
    actor__timers_cancel_all(a);
    actor__watches_remove_all(a);

    if (a->init_ok && a->ops->stop) {
        current = a;
        a->ops->stop(a, a->state, &a->exit);
        current = NULL;
    }
    a->state = NULL;
    if (a->arg_free) {
        a->arg_free(a->arg);
        a->arg_free = NULL;
    }
    drain_dead(a);

    for (size_t i = 0; i < a->links.n; i++) {
        struct actor__sig *e = sig_new(ACTOR__SIG_EXIT, pid);
        if (e) {
            e->from_link = true;
            e->why = a->exit;
            actor__send_sys(a->links.v[i], &e->hdr);
        }
    }
    for (size_t i = 0; i < a->monitored_by.n; i++) {
        struct actor_msg *d = down_new(a->monitored_by.v[i].ref, pid, &a->exit);
        if (d) {
            actor__send_sys(a->monitored_by.v[i].pid, d);
        }
    }
    for (size_t i = 0; i < a->monitors.n; i++) {
        struct actor__sig *s = sig_new(ACTOR__SIG_DEMONITOR, pid);
        if (s) {
            s->ref = a->monitors.v[i].ref;
            actor__send_sys(a->monitors.v[i].pid, &s->hdr);
        }
    }
    atomic_store(&a->waiters, true);
    resume_wake(a);

    atomic_fetch_add_explicit(&actor__rt.st_exited, 1, memory_order_relaxed);
    if (actor_exit_is_abnormal(&a->exit)) {
        atomic_fetch_add_explicit(&actor__rt.st_crashed, 1,
                                  memory_order_relaxed);
    }
    atomic_fetch_sub_explicit(&actor__rt.alive, 1, memory_order_relaxed);
    struct actor_exit why = a->exit;

    actor__vec_free(&a->links);
    actor__vec_free(&a->timers);
    actor__vec_free(&a->watches);
    monvec_free(&a->monitors);
    monvec_free(&a->monitored_by);
    free(a->dropped_name);
    a->dropped_name = NULL;
    a->ops = NULL;
    a->phase = ACTOR__FREE;
    /* `thread` stays set (spawn clears it): actor_runtime_stop() must not
     * take a blocking actor that is still exiting for an abandoned one. */
    free(name);
    /* Until now `live` told actor_wait() an exit is still coming. */
    notify_waiters(a, pid, &why);
    slot_free((uint32_t)(pid & PIN_MASK) - 1);
}

bool actor__hand_over_arg(uint64_t pid, void (*arg_free)(void *), void *arg)
{
    struct actor_ctx *a = actor__pin(pid);
    if (!a) {
        return false;
    }
    /* Pinned: its exit cannot pass the pin wait before we let go, and the
     * unpin publishes these fields to it. */
    ACTOR_ASSERT(a->arg == arg);
    a->arg_free = arg_free;
    actor__unpin(a);
    return true;
}

void actor__thread_exit(struct actor_ctx *a)
{
    do_exit(a);
}

static void run_init(struct actor_ctx *a)
{
    void *state = NULL;
    int rc = a->ops->init ? a->ops->init(a, a->arg, &state) : 0;
    a->state = state;
    if (rc < 0) {
        if (!a->exit_pending) {
            actor__set_exit(&a->exit, ACTOR_EXIT_ERROR, rc, "init: %s",
                            strerror(-rc));
        } else {
            a->exit.kind = ACTOR_EXIT_ERROR;
        }
        a->exit_pending = true;
        a->phase = ACTOR__LIVE;
        return;
    }
    a->init_ok = true;
    a->phase = ACTOR__LIVE;
    atomic_store(&a->wake_state, state);
    if (rc != ACTOR_DEFER) {
        send_init_ack(a);
    }
}

bool actor__turn(struct actor_ctx *a, unsigned max)
{
    current = a;
    a->in_turn = true;
    if (a->phase == ACTOR__NEW) {
        run_init(a);
    }
    unsigned popped = 0;
    while (!a->exit_pending && popped < max) {
        struct actor_msg *msg = mbox_pop(a);
        if (!msg) {
            break;
        }
        popped++;
        a->turn_popped = popped;
        dispatch(a, msg);
    }
    a->turn_popped = 0;
    if (popped) {
        atomic_fetch_sub(&a->len, popped);
    }
    a->in_turn = false;
    if (a->exit_pending) {
        /* A blocking actor ends on its own thread once its loop returns
         * (its stop may tear down what the loop is running in). */
        if (!a->thread) {
            do_exit(a);
        }
        current = NULL;
        return true;
    }
    if (atomic_load_explicit(&a->waiters, memory_order_relaxed) &&
        atomic_load(&a->len) <= a->cap / 2) {
        resume_wake(a);
    }
    current = NULL;
    return false;
}

void actor__after_turn(struct actor_ctx *a)
{
    atomic_store(&a->sched, 0);
    if (atomic_load(&a->len) > 0 && !atomic_exchange(&a->sched, 1)) {
        if (a->thread) {
            actor__thread_wake(a);
        } else {
            actor__schedule(a);
        }
    }
}

bool actor_exit_queued(struct actor_ctx *ctx)
{
    return atomic_load(&ctx->exits_queued) > 0;
}

/* ---- waiting from outside --------------------------------------------- */

bool actor_wait(uint64_t pid, uint32_t ms, struct actor_exit *why)
{
    struct waiter w = {.pid = pid};
    pthread_mutex_lock(&wait_lock);
    w.next = waiters;
    waiters = &w;
    pthread_mutex_unlock(&wait_lock);

    /* Registered before this check, so an exit after it will find us; an
     * exit already told (in the ring) or never coming ends the wait. */
    bool ok = true;
    pthread_mutex_lock(&wait_lock);
    if (!w.done) {
        for (unsigned i = 0; i < RECENT_EXITS; i++) {
            if (recent[i].pid == pid) {
                w.why = recent[i].why;
                w.done = true;
            }
        }
        /* An exit is still coming while the pid is current (its spawn
         * may not have set `live` yet: a name makes it findable first)
         * or while its exit is not yet told (`live` outlasts the
         * generation bump in do_exit until notify_waiters clears it,
         * under this lock). */
        struct actor_ctx *a = slot_at((uint32_t)(pid & PIN_MASK) - 1);
        bool coming = a && (atomic_load(&a->live) == pid ||
                            atomic_load(&a->gen) == (uint32_t)(pid >> 32));
        if (!w.done && !coming) {
            w.done = true;
            actor__set_exit(&w.why, ACTOR_EXIT_NOPROC, 0, NULL);
        }
    }
    pthread_mutex_unlock(&wait_lock);
    struct timespec deadline = actor__deadline(ms == ACTOR_INFINITY ? 0 : ms);
    pthread_mutex_lock(&wait_lock);
    while (!w.done) {
        if (ms == ACTOR_INFINITY) {
            pthread_cond_wait(&wait_cond, &wait_lock);
        } else if (pthread_cond_timedwait(&wait_cond, &wait_lock, &deadline) ==
                   ETIMEDOUT) {
            ok = w.done;
            break;
        }
    }
    for (struct waiter **p = &waiters; *p; p = &(*p)->next) {
        if (*p == &w) {
            *p = w.next;
            break;
        }
    }
    pthread_mutex_unlock(&wait_lock);
    if (ok && why) {
        *why = w.why;
    }
    return ok;
}

/* ---- observability ---------------------------------------------------- */

static bool info_fill(struct actor_ctx *a, uint64_t pid,
                      struct actor_info *info)
{
    info->pid = pid;
    info->parent = a->parent;
    info->kind = a->ops && a->ops->name ? a->ops->name : "actor";
    const char *name = atomic_load(&a->name);
    snprintf(info->name, sizeof(info->name), "%s", name ? name : "");
    uint32_t len = atomic_load_explicit(&a->len, memory_order_relaxed);
    info->mailbox = len;
    info->capacity = a->cap;
    info->handled = atomic_load_explicit(&a->handled, memory_order_relaxed);
    info->restarts = a->restarts;
    info->thread = a->thread != NULL;
    info->supervisor = atomic_load(&a->is_sup);
    info->runnable = atomic_load_explicit(&a->sched, memory_order_relaxed);
    return true;
}

int actor_info_get(uint64_t pid, struct actor_info *info)
{
    struct actor_ctx *a = actor__pin(pid);
    if (!a) {
        return -ESRCH;
    }
    if (atomic_load(&a->live) != pid) {
        actor__unpin(a);
        return -ESRCH;
    }
    info_fill(a, pid, info);
    actor__unpin(a);
    return 0;
}

size_t actor_foreach(void (*fn)(const struct actor_info *info, void *arg),
                     void *arg)
{
    pthread_mutex_lock(&slot_lock);
    uint32_t n = next_slot;
    pthread_mutex_unlock(&slot_lock);
    size_t visited = 0;
    for (uint32_t i = 0; i < n; i++) {
        struct actor_ctx *a = slot_at(i);
        if (!a) {
            continue;
        }
        /* Pin by the current generation; only a published pid counts. */
        uint64_t pid = ((uint64_t)atomic_load(&a->gen) << 32) | (i + 1);
        if (!actor__pin(pid)) {
            continue;
        }
        bool live = atomic_load(&a->live) == pid;
        struct actor_info info;
        if (live) {
            info_fill(a, pid, &info);
        }
        actor__unpin(a);
        if (live) {
            fn(&info, arg);
            visited++;
        }
    }
    return visited;
}

void actor_stats_get(struct actor_stats *out)
{
    out->spawned = atomic_load(&actor__rt.st_spawned);
    out->exited = atomic_load(&actor__rt.st_exited);
    out->crashed = atomic_load(&actor__rt.st_crashed);
    out->restarts = atomic_load(&actor__rt.st_restarts);
    out->full = atomic_load(&actor__rt.st_full);
    out->dead = atomic_load(&actor__rt.st_dead);
    out->alive = atomic_load(&actor__rt.alive);
}

/* ---- the runtime ------------------------------------------------------ */

int actor_runtime_start(const struct actor_config *cfg)
{
    if (actor__rt.running) {
        return -EALREADY;
    }
    actor__rt.cfg = cfg ? *cfg : (struct actor_config){0};
    if (actor__rt.cfg.schedulers == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        actor__rt.cfg.schedulers = n > 0 ? (unsigned)n : 1;
    }
    if (actor__rt.cfg.batch == 0) {
        actor__rt.cfg.batch = 64;
    }
    int rc = actor__service_start();
    if (rc != 0) {
        return rc;
    }
    rc = actor__sched_start();
    if (rc != 0) {
        actor__service_stop();
        return rc;
    }
    actor__rt.running = true;
    return 0;
}

/* Frees what an abandoned actor holds in the runtime (not its state). */
static void abandon(struct actor_ctx *a)
{
    atomic_store(&a->sched, 1); /* as do_exit() leaves a free slot */
    retire_pid(a);
    /* A thread blocked in actor_wait() on it would wait for ever. */
    struct actor_exit why;
    actor__set_exit(&why, ACTOR_EXIT_NOPROC, 0, "runtime stopped");
    notify_waiters(a, a->pid, &why);
    char *name = atomic_exchange(&a->name, NULL);
    if (name) {
        actor__registry_del(name, a->pid);
        free(name);
    }
    struct actor_msg *msg;
    while ((msg = mbox_pop(a))) {
        actor_msg_free(msg);
    }
    actor__vec_free(&a->links);
    actor__vec_free(&a->timers);
    actor__vec_free(&a->watches);
    monvec_free(&a->monitors);
    monvec_free(&a->monitored_by);
    free(a->dropped_name);
    a->dropped_name = NULL;
    a->ops = NULL;
    a->phase = ACTOR__FREE;
    slot_free((uint32_t)(a->pid & PIN_MASK) - 1);
    atomic_fetch_sub(&actor__rt.alive, 1);
}

void actor_runtime_stop(void)
{
    if (!actor__rt.running) {
        return;
    }
    actor__sched_stop();
    actor__service_stop();
    pthread_mutex_lock(&slot_lock);
    uint32_t n = next_slot;
    pthread_mutex_unlock(&slot_lock);
    for (uint32_t i = 0; i < n; i++) {
        struct actor_ctx *a = slot_at(i);
        if (a && atomic_load(&a->live) && !a->thread) {
            abandon(a);
        }
    }
    actor__rt.running = false;
}
