/* actor/actor_sched.c - scheduler threads, run queues, blocking actors'
 * threads and manual (threadless) mode. */

/*
 * DESIGN
 * One scheduler thread per core, each with a FIFO run queue under its own
 * mutex (Erlang measured one lock per run queue beating lock-free ones; on
 * two cores the lock is almost never contended). An actor made runnable by
 * a scheduler thread goes in that thread's `next` slot (the one it held
 * moves to the queue), as Go's runnext: it runs right after the current
 * turn, on the same core, with its messages still in cache, and no idle
 * thread can steal it away mid-conversation. After NEXT_STREAK such turns
 * in a row it goes to the back of the FIFO and the shared queue is served
 * first, so a chatty pair (or an actor busy with itself) cannot starve the
 * rest. One made runnable from elsewhere (the service thread, a blocking
 * actor, main) goes on a shared inject queue, which each thread also
 * serves first every INJECT_EVERY looks, so a FIFO that never empties
 * cannot starve it either. A thread out of work takes from the
 * inject queue, then steals from its peers, spins briefly, and only then parks
 * on a condition variable, so a busy system makes no futex calls while an idle
 * one sleeps.
 */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "actor/actor_impl.h"

struct runq {
    pthread_mutex_t lock;
    struct actor_ctx *head; /* linked through next_run */
    struct actor_ctx *tail;
    _Atomic uint32_t n;
    char pad_[ACTOR__CACHELINE];
};

struct sched {
    struct runq q;
    struct actor_ctx *_Atomic next; /* runs next; never stolen */
    unsigned streak;                /* turns in a row taken from next */
    unsigned ticks;                 /* looks at the queues */
    pthread_t tid;
    unsigned id;
};

/* Turns in a row from `next` before the queues get their due. */
#define NEXT_STREAK 64
/* Every so many looks at its own queue, a thread looks at the shared one
 * first (Go's scheduler does the same every 61 ticks). */
#define INJECT_EVERY 61

struct actor__thread {
    pthread_t tid;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool signaled;
};

static struct sched *scheds;
static unsigned n_scheds;
static struct runq inject;
static _Thread_local struct sched *self_sched;

static pthread_mutex_t park_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t park_cond = PTHREAD_COND_INITIALIZER;
static _Atomic int parked;
static _Atomic bool stopping;

static void runq_init(struct runq *q)
{
    pthread_mutex_init(&q->lock, NULL);
    q->head = NULL;
    q->tail = NULL;
    atomic_store(&q->n, 0);
}

static void runq_push(struct runq *q, struct actor_ctx *a)
{
    a->next_run = NULL;
    pthread_mutex_lock(&q->lock);
    if (q->tail) {
        q->tail->next_run = a;
    } else {
        q->head = a;
    }
    q->tail = a;
    atomic_fetch_add(&q->n, 1);
    pthread_mutex_unlock(&q->lock);
}

static struct actor_ctx *runq_pop(struct runq *q)
{
    if (atomic_load_explicit(&q->n, memory_order_relaxed) == 0) {
        return NULL;
    }
    pthread_mutex_lock(&q->lock);
    struct actor_ctx *a = q->head;
    if (a) {
        q->head = a->next_run;
        if (!q->head) {
            q->tail = NULL;
        }
        atomic_fetch_sub(&q->n, 1);
    }
    pthread_mutex_unlock(&q->lock);
    return a;
}

static void wake_parked(void)
{
    if (atomic_load(&parked) > 0) {
        pthread_mutex_lock(&park_lock);
        pthread_cond_signal(&park_cond);
        pthread_mutex_unlock(&park_lock);
    }
}

void actor__schedule(struct actor_ctx *a)
{
    if (self_sched) {
        struct actor_ctx *old = atomic_exchange(&self_sched->next, a);
        if (old) {
            runq_push(&self_sched->q, old);
            wake_parked(); /* someone idle may take it */
        }
        return;
    }
    runq_push(&inject, a);
    wake_parked();
}

bool actor__on_scheduler(void)
{
    return self_sched != NULL;
}

static bool work_visible(void)
{
    if (atomic_load(&inject.n) > 0) {
        return true;
    }
    for (unsigned i = 0; i < n_scheds; i++) {
        if (atomic_load(&scheds[i].q.n) > 0) {
            return true;
        }
    }
    return false;
}

static struct actor_ctx *find_work(struct sched *s)
{
    struct actor_ctx *a = atomic_exchange(&s->next, NULL);
    if (a) {
        if (++s->streak <= NEXT_STREAK) {
            return a;
        }
        runq_push(&s->q, a); /* its due: it queues behind the rest */
    }
    s->streak = 0;
    /* The shared queue first after a streak, and every INJECT_EVERY
     * looks: a thread whose own queue never empties must not starve what
     * other threads made runnable (timers, I/O, blocking actors). */
    if (a || ++s->ticks % INJECT_EVERY == 0) {
        a = runq_pop(&inject);
        if (a) {
            return a;
        }
    }
    a = runq_pop(&s->q);
    if (a) {
        return a;
    }
    a = runq_pop(&inject);
    if (a) {
        return a;
    }
    for (unsigned i = 1; i < n_scheds; i++) {
        struct sched *victim = &scheds[(s->id + i) % n_scheds];
        a = runq_pop(&victim->q);
        if (a) {
            return a;
        }
    }
    return NULL;
}

struct timespec actor__deadline(uint32_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

static void park(void)
{
    atomic_fetch_add(&parked, 1);
    pthread_mutex_lock(&park_lock);
    if (!work_visible() && !atomic_load(&stopping)) {
        struct timespec ts = actor__deadline(100);
        pthread_cond_timedwait(&park_cond, &park_lock, &ts);
    }
    pthread_mutex_unlock(&park_lock);
    atomic_fetch_sub(&parked, 1);
}

static void *sched_main(void *arg)
{
    struct sched *s = arg;
    self_sched = s;
    unsigned batch = actor__rt.cfg.batch;
    unsigned idle = 0;
    while (!atomic_load_explicit(&stopping, memory_order_relaxed)) {
        struct actor_ctx *a = find_work(s);
        if (!a) {
            if (++idle < 200) {
                sched_yield();
                continue;
            }
            park();
            idle = 0;
            continue;
        }
        idle = 0;
        if (!actor__turn(a, batch)) {
            actor__after_turn(a);
        }
    }
    self_sched = NULL;
    return NULL;
}

int actor__sched_start(void)
{
    atomic_store(&stopping, false);
    runq_init(&inject);
    if (actor__rt.cfg.manual) {
        n_scheds = 0;
        return 0;
    }
    n_scheds = actor__rt.cfg.schedulers;
    scheds = calloc(n_scheds, sizeof(*scheds));
    if (!scheds) {
        return -ENOMEM;
    }
    for (unsigned i = 0; i < n_scheds; i++) {
        runq_init(&scheds[i].q);
        scheds[i].id = i;
    }
    for (unsigned i = 0; i < n_scheds; i++) {
        int rc = pthread_create(&scheds[i].tid, NULL, sched_main, &scheds[i]);
        if (rc != 0) {
            atomic_store(&stopping, true);
            for (unsigned j = 0; j < i; j++) {
                pthread_join(scheds[j].tid, NULL);
            }
            free(scheds);
            scheds = NULL;
            n_scheds = 0;
            return -rc;
        }
    }
    return 0;
}

void actor__sched_stop(void)
{
    atomic_store(&stopping, true);
    pthread_mutex_lock(&park_lock);
    pthread_cond_broadcast(&park_cond);
    pthread_mutex_unlock(&park_lock);
    for (unsigned i = 0; i < n_scheds; i++) {
        pthread_join(scheds[i].tid, NULL);
    }
    free(scheds);
    scheds = NULL;
    n_scheds = 0;
}

bool actor__manual_step(void)
{
    struct actor_ctx *a = runq_pop(&inject);
    if (!a) {
        return false;
    }
    if (!actor__turn(a, actor__rt.cfg.batch)) {
        actor__after_turn(a);
    }
    return true;
}

unsigned actor_run_until_idle(void)
{
    unsigned turns = 0;
    for (;;) {
        bool any = actor__service_poll();
        while (actor__manual_step()) {
            turns++;
            any = true;
        }
        if (!any) {
            return turns;
        }
    }
}

/* ---- blocking actors -------------------------------------------------- */

void actor__thread_wake(struct actor_ctx *a)
{
    void *ws = atomic_load(&a->wake_state);
    if (ws && a->ops->wake) {
        a->ops->wake(ws);
        return;
    }
    struct actor__thread *t = a->thread;
    pthread_mutex_lock(&t->lock);
    t->signaled = true;
    pthread_cond_signal(&t->cond);
    pthread_mutex_unlock(&t->lock);
}

bool actor_wait_message(struct actor_ctx *ctx, int ms)
{
    struct actor__thread *t = ctx->thread;
    ACTOR_ASSERT(t != NULL);
    atomic_store(&ctx->sched, 0);
    if (atomic_load(&ctx->len) > 0) {
        atomic_store(&ctx->sched, 1);
        return true;
    }
    pthread_mutex_lock(&t->lock);
    if (!t->signaled) {
        if (ms < 0) {
            pthread_cond_wait(&t->cond, &t->lock);
        } else {
            struct timespec ts = actor__deadline((uint32_t)ms);
            pthread_cond_timedwait(&t->cond, &t->lock, &ts);
        }
    }
    t->signaled = false;
    pthread_mutex_unlock(&t->lock);
    atomic_store(&ctx->sched, 1);
    return atomic_load(&ctx->len) > 0;
}

void actor_sleep(struct actor_ctx *ctx, int ms)
{
    struct actor__thread *t = ctx->thread;
    ACTOR_ASSERT(t != NULL && ms >= 0);
    struct timespec ts = actor__deadline((uint32_t)ms);
    pthread_mutex_lock(&t->lock);
    if (!t->signaled) {
        pthread_cond_timedwait(&t->cond, &t->lock, &ts);
    }
    t->signaled = false;
    pthread_mutex_unlock(&t->lock);
}

int actor_drain(struct actor_ctx *ctx, unsigned max)
{
    if (actor__turn(ctx, max ? max : actor__rt.cfg.batch)) {
        return ACTOR_DONE;
    }
    /* As after a scheduler turn, but the wake-up goes to our own loop. */
    atomic_store(&ctx->sched, 0);
    if (atomic_load(&ctx->len) > 0 && !atomic_exchange(&ctx->sched, 1)) {
        actor__thread_wake(ctx);
    }
    return 0;
}

static void *thread_main(void *arg)
{
    struct actor_ctx *a = arg;
    struct actor__thread *t = a->thread;
    unsigned batch = actor__rt.cfg.batch;

    if (!actor__turn(a, batch)) {
        if (a->ops->run) {
            /* Clear the flag the spawn set, so senders wake the loop. */
            atomic_store(&a->sched, 0);
            if (atomic_load(&a->len) > 0 && !atomic_exchange(&a->sched, 1)) {
                actor__thread_wake(a);
            }
            int rc = a->ops->run(a, a->state);
            if (!a->exit_pending) {
                /* run() returned on its own: that ends the actor. */
                if (rc < 0) {
                    actor__set_exit(&a->exit, ACTOR_EXIT_ERROR, rc, "run: %s",
                                    strerror(-rc));
                } else {
                    actor__set_exit(&a->exit, ACTOR_EXIT_NORMAL, 0, NULL);
                }
                a->exit_pending = true;
            }
        } else {
            while (!actor__turn(a, batch)) {
                actor_wait_message(a, -1);
            }
        }
    }
    actor__thread_exit(a);
    pthread_mutex_destroy(&t->lock);
    pthread_cond_destroy(&t->cond);
    free(t);
    return NULL;
}

int actor__thread_start(struct actor_ctx *a)
{
    struct actor__thread *t = calloc(1, sizeof(*t));
    if (!t) {
        return -ENOMEM;
    }
    pthread_mutex_init(&t->lock, NULL);
    pthread_cond_init(&t->cond, NULL);
    a->thread = t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int rc = pthread_create(&t->tid, &attr, thread_main, a);
    pthread_attr_destroy(&attr);
    /* On failure @t stays: a sender that found the actor by name may be
     * waking it; actor__thread_discard() frees it once none is pinned. */
    return -rc;
}

void actor__thread_discard(struct actor_ctx *a)
{
    struct actor__thread *t = a->thread;
    a->thread = NULL;
    pthread_mutex_destroy(&t->lock);
    pthread_cond_destroy(&t->cond);
    free(t);
}
