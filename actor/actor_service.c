/* actor/actor_service.c - the service thread: timers and fd readiness,
 * delivered to actors as messages. */

/*
 * DESIGN
 * One thread owns a timer heap and an epoll set, like Pony's ASIO thread.
 * A timer holds the message it will deliver; a watch holds a fd and the
 * pid to tell. Both are found by id through one intrusive hash under one
 * mutex, so cancelling a timer or removing a watch is O(log n) and can be
 * done from the owning actor's thread at any time. What the service thread
 * has already sent cannot be recalled; the owning actor keeps the ids it
 * considers active and the dispatcher drops a message whose id it no
 * longer holds. Watches are EPOLLONESHOT: at most one readiness message per
 * watch is in flight, and the actor re-arms it when it has drained the fd.
 * In manual mode there is no thread: actor_run_until_idle() polls.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "actor/actor_impl.h"

struct hnode {
    uint64_t id;
    struct hnode *next;
    bool is_timer;
};

struct timer {
    struct hnode h; /* first: the hash finds timers by id */
    int64_t due;    /* ms, actor_now_ms() clock */
    uint64_t pid;
    struct actor_msg *msg;
    uint32_t idx; /* position in the heap */
};

struct watch {
    struct hnode h;
    int fd;
    uint64_t pid;
};

static struct {
    pthread_mutex_t lock;
    struct hnode **buckets;
    size_t n_buckets, n_nodes;
    struct timer **heap;
    size_t n_heap, cap_heap;
    int epfd;
    int evfd;
    pthread_t tid;
    bool thread;
    _Atomic bool stopping;
    _Atomic uint64_t next_id;
} svc = {.lock = PTHREAD_MUTEX_INITIALIZER, .epfd = -1, .evfd = -1};

static _Atomic int64_t test_clock = 1000000;

int64_t actor_now_ms(void)
{
    if (actor__rt.cfg.manual) {
        return atomic_load(&test_clock);
    }
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t actor_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void actor_advance_ms(uint32_t ms)
{
    atomic_fetch_add(&test_clock, ms);
}

/* ---- the id hash (svc.lock held) -------------------------------------- */

static size_t bucket_of(uint64_t id, size_t n)
{
    return (size_t)((id * 0x9e3779b97f4a7c15ull) >> 20) & (n - 1);
}

static int hash_put(struct hnode *node)
{
    if (svc.n_nodes + 1 > svc.n_buckets) {
        size_t n = svc.n_buckets ? svc.n_buckets * 2 : 256;
        struct hnode **b = calloc(n, sizeof(*b));
        if (!b) {
            return -ENOMEM;
        }
        for (size_t i = 0; i < svc.n_buckets; i++) {
            struct hnode *x = svc.buckets[i];
            while (x) {
                struct hnode *next = x->next;
                size_t k = bucket_of(x->id, n);
                x->next = b[k];
                b[k] = x;
                x = next;
            }
        }
        free(svc.buckets);
        svc.buckets = b;
        svc.n_buckets = n;
    }
    size_t k = bucket_of(node->id, svc.n_buckets);
    node->next = svc.buckets[k];
    svc.buckets[k] = node;
    svc.n_nodes++;
    return 0;
}

static struct hnode *hash_get(uint64_t id)
{
    if (!svc.n_buckets) {
        return NULL;
    }
    for (struct hnode *x = svc.buckets[bucket_of(id, svc.n_buckets)]; x;
         x = x->next) {
        if (x->id == id) {
            return x;
        }
    }
    return NULL;
}

static struct hnode *hash_del(uint64_t id)
{
    if (!svc.n_buckets) {
        return NULL;
    }
    for (struct hnode **p = &svc.buckets[bucket_of(id, svc.n_buckets)]; *p;
         p = &(*p)->next) {
        if ((*p)->id == id) {
            struct hnode *x = *p;
            *p = x->next;
            svc.n_nodes--;
            return x;
        }
    }
    return NULL;
}

/* ---- the timer heap (svc.lock held) ----------------------------------- */

static void heap_set(uint32_t i, struct timer *t)
{
    svc.heap[i] = t;
    t->idx = i;
}

static void heap_up(uint32_t i)
{
    struct timer *t = svc.heap[i];
    while (i > 0) {
        uint32_t parent = (i - 1) / 2;
        if (svc.heap[parent]->due <= t->due) {
            break;
        }
        heap_set(i, svc.heap[parent]);
        i = parent;
    }
    heap_set(i, t);
}

static void heap_down(uint32_t i)
{
    struct timer *t = svc.heap[i];
    for (;;) {
        uint32_t l = 2 * i + 1, r = l + 1, m = i;
        int64_t best = t->due;
        if (l < svc.n_heap && svc.heap[l]->due < best) {
            m = l;
            best = svc.heap[l]->due;
        }
        if (r < svc.n_heap && svc.heap[r]->due < best) {
            m = r;
        }
        if (m == i) {
            break;
        }
        heap_set(i, svc.heap[m]);
        i = m;
    }
    heap_set(i, t);
}

static int heap_push(struct timer *t)
{
    if (actor__grow(&svc.heap, &svc.cap_heap, svc.n_heap, sizeof(*svc.heap),
                    256) != 0) {
        return -ENOMEM;
    }
    heap_set((uint32_t)svc.n_heap++, t);
    heap_up(t->idx);
    return 0;
}

static void heap_remove(struct timer *t)
{
    uint32_t i = t->idx;
    struct timer *last = svc.heap[--svc.n_heap];
    if (i == svc.n_heap) {
        return;
    }
    heap_set(i, last);
    heap_down(i);
    heap_up(last->idx);
}

static void wake_service(void)
{
    if (svc.evfd >= 0) {
        uint64_t one = 1;
        ssize_t n = write(svc.evfd, &one, sizeof(one));
        (void)n; /* a full counter already means "wake up" */
    }
}

/* ---- timers ----------------------------------------------------------- */

uint64_t actor_send_after(struct actor_ctx *ctx, uint32_t ms,
                          struct actor_msg *msg)
{
    struct timer *t = malloc(sizeof(*t));
    if (!t) {
        goto out_free_msg;
    }
    t->h.id = atomic_fetch_add(&svc.next_id, 1) + 1;
    t->h.is_timer = true;
    t->due = actor_now_ms() + ms;
    t->pid = ctx->pid;
    t->msg = msg;
    msg->from = ctx->pid;
    if (actor__vec_add(&ctx->timers, t->h.id) != 0) {
        goto out_free_timer;
    }
    pthread_mutex_lock(&svc.lock);
    if (hash_put(&t->h) != 0) {
        pthread_mutex_unlock(&svc.lock);
        actor__vec_del(&ctx->timers, t->h.id);
        goto out_free_timer;
    }
    if (heap_push(t) != 0) {
        hash_del(t->h.id);
        pthread_mutex_unlock(&svc.lock);
        actor__vec_del(&ctx->timers, t->h.id);
        goto out_free_timer;
    }
    bool first = t->idx == 0;
    uint64_t id = t->h.id;
    pthread_mutex_unlock(&svc.lock);
    if (first) {
        wake_service();
    }
    return id;

out_free_timer:
    free(t);
out_free_msg:
    actor_msg_free(msg);
    return 0;
}

static bool timer_drop(uint64_t id)
{
    pthread_mutex_lock(&svc.lock);
    struct timer *t = (struct timer *)hash_del(id);
    if (t) {
        heap_remove(t);
    }
    pthread_mutex_unlock(&svc.lock);
    if (!t) {
        return false;
    }
    actor_msg_free(t->msg);
    free(t);
    return true;
}

bool actor_cancel_timer(struct actor_ctx *ctx, uint64_t timer)
{
    if (!actor__vec_del(&ctx->timers, timer)) {
        return false;
    }
    return timer_drop(timer);
}

void actor__timers_cancel_all(struct actor_ctx *a)
{
    for (size_t i = 0; i < a->timers.n; i++) {
        timer_drop(a->timers.v[i]);
    }
    a->timers.n = 0;
}

/* Sends every due timer's message. Returns how many fired. */
static unsigned fire_due(int64_t now)
{
    unsigned fired = 0;
    for (;;) {
        pthread_mutex_lock(&svc.lock);
        if (svc.n_heap == 0 || svc.heap[0]->due > now) {
            pthread_mutex_unlock(&svc.lock);
            return fired;
        }
        struct timer *t = svc.heap[0];
        heap_remove(t);
        hash_del(t->h.id);
        pthread_mutex_unlock(&svc.lock);
        t->msg->tag = t->h.id;
        t->msg->flags |= ACTOR__F_TIMER;
        actor__send_sys(t->pid, t->msg);
        free(t);
        fired++;
    }
}

/* ms until the next timer, -1 when none */
static int next_timeout(int64_t now)
{
    pthread_mutex_lock(&svc.lock);
    int ms = -1;
    if (svc.n_heap > 0) {
        int64_t d = svc.heap[0]->due - now;
        ms = d <= 0 ? 0 : (d > 60000 ? 60000 : (int)d);
    }
    pthread_mutex_unlock(&svc.lock);
    return ms;
}

/* ---- fd watches ------------------------------------------------------- */

uint64_t actor_io_watch(struct actor_ctx *ctx, int fd, uint32_t events)
{
    struct watch *w = malloc(sizeof(*w));
    if (!w) {
        errno = ENOMEM;
        return 0;
    }
    w->h.id = atomic_fetch_add(&svc.next_id, 1) + 1;
    w->h.is_timer = false;
    w->fd = fd;
    w->pid = ctx->pid;
    if (actor__vec_add(&ctx->watches, w->h.id) != 0) {
        free(w);
        errno = ENOMEM;
        return 0;
    }
    pthread_mutex_lock(&svc.lock);
    int rc = hash_put(&w->h);
    pthread_mutex_unlock(&svc.lock);
    if (rc != 0) {
        goto out_unvec;
    }
    struct epoll_event ev = {.events = events | EPOLLONESHOT,
                             .data.u64 = w->h.id};
    if (epoll_ctl(svc.epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        int err = errno;
        pthread_mutex_lock(&svc.lock);
        hash_del(w->h.id);
        pthread_mutex_unlock(&svc.lock);
        errno = err;
        goto out_unvec;
    }
    return w->h.id;

out_unvec:
    actor__vec_del(&ctx->watches, w->h.id);
    free(w);
    return 0;
}

int actor_io_rearm(struct actor_ctx *ctx, uint64_t watch, uint32_t events)
{
    if (!actor__vec_has(&ctx->watches, watch)) {
        return -ENOENT;
    }
    pthread_mutex_lock(&svc.lock);
    struct watch *w = (struct watch *)hash_get(watch);
    int fd = w ? w->fd : -1;
    pthread_mutex_unlock(&svc.lock);
    if (fd < 0) {
        return -ENOENT;
    }
    struct epoll_event ev = {.events = events | EPOLLONESHOT,
                             .data.u64 = watch};
    return epoll_ctl(svc.epfd, EPOLL_CTL_MOD, fd, &ev) == 0 ? 0 : -errno;
}

static void watch_drop(uint64_t id)
{
    pthread_mutex_lock(&svc.lock);
    struct watch *w = (struct watch *)hash_del(id);
    pthread_mutex_unlock(&svc.lock);
    if (w) {
        epoll_ctl(svc.epfd, EPOLL_CTL_DEL, w->fd, NULL);
        free(w);
    }
}

void actor_io_unwatch(struct actor_ctx *ctx, uint64_t watch)
{
    if (watch && actor__vec_del(&ctx->watches, watch)) {
        watch_drop(watch);
    }
}

void actor__watches_remove_all(struct actor_ctx *a)
{
    for (size_t i = 0; i < a->watches.n; i++) {
        watch_drop(a->watches.v[i]);
    }
    a->watches.n = 0;
}

static void io_ready(uint64_t id, uint32_t events)
{
    pthread_mutex_lock(&svc.lock);
    struct watch *w = (struct watch *)hash_get(id);
    uint64_t pid = w ? w->pid : 0;
    int fd = w ? w->fd : -1;
    pthread_mutex_unlock(&svc.lock);
    if (!pid) {
        return;
    }
    struct actor_io_msg *m = actor_msg_new(sizeof(*m), ACTOR_MSG_IO);
    if (!m) {
        /* Lost readiness would stall the fd: try again shortly. */
        struct epoll_event ev = {.events = events | EPOLLONESHOT,
                                 .data.u64 = id};
        epoll_ctl(svc.epfd, EPOLL_CTL_MOD, fd, &ev);
        return;
    }
    m->watch = id;
    m->fd = fd;
    m->events = events;
    actor__send_sys(pid, &m->hdr);
}

/* Waits up to @timeout ms for fds; returns how many became ready. */
static int poll_fds(int timeout)
{
    struct epoll_event evs[64];
    int n = epoll_wait(svc.epfd, evs, 64, timeout);
    int ready = 0;
    for (int i = 0; i < n; i++) {
        if (evs[i].data.u64 == 0) {
            uint64_t v;
            ssize_t r = read(svc.evfd, &v, sizeof(v));
            (void)r;
            continue;
        }
        io_ready(evs[i].data.u64, evs[i].events);
        ready++;
    }
    return ready;
}

static void *service_main(void *arg)
{
    (void)arg;
    while (!atomic_load(&svc.stopping)) {
        int64_t now = actor_now_ms();
        fire_due(now);
        poll_fds(next_timeout(now));
    }
    return NULL;
}

bool actor__service_poll(void)
{
    unsigned fired = fire_due(actor_now_ms());
    return fired > 0 || poll_fds(0) > 0;
}

int actor__service_start(void)
{
    int err;
    svc.epfd = epoll_create1(EPOLL_CLOEXEC);
    if (svc.epfd < 0) {
        return -errno;
    }
    svc.evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (svc.evfd < 0) {
        err = -errno;
        goto out_close_ep;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 0};
    if (epoll_ctl(svc.epfd, EPOLL_CTL_ADD, svc.evfd, &ev) != 0) {
        err = -errno;
        goto out_close_ev;
    }
    atomic_store(&svc.stopping, false);
    svc.thread = false;
    if (!actor__rt.cfg.manual) {
        err = -pthread_create(&svc.tid, NULL, service_main, NULL);
        if (err != 0) {
            goto out_close_ev;
        }
        svc.thread = true;
    }
    return 0;

out_close_ev:
    close(svc.evfd);
    svc.evfd = -1;
out_close_ep:
    close(svc.epfd);
    svc.epfd = -1;
    return err;
}

void actor__service_stop(void)
{
    atomic_store(&svc.stopping, true);
    wake_service();
    if (svc.thread) {
        pthread_join(svc.tid, NULL);
        svc.thread = false;
    }
    /* Actors still alive are abandoned: free what they left here. */
    pthread_mutex_lock(&svc.lock);
    for (size_t i = 0; i < svc.n_heap; i++) {
        actor_msg_free(svc.heap[i]->msg);
        free(svc.heap[i]);
    }
    for (size_t i = 0; i < svc.n_buckets; i++) {
        struct hnode *x = svc.buckets[i];
        while (x) {
            struct hnode *next = x->next;
            if (!x->is_timer) {
                free(x);
            }
            x = next;
        }
    }
    free(svc.buckets);
    svc.buckets = NULL;
    svc.n_buckets = 0;
    svc.n_nodes = 0;
    free(svc.heap);
    svc.heap = NULL;
    svc.n_heap = 0;
    svc.cap_heap = 0;
    pthread_mutex_unlock(&svc.lock);
    close(svc.evfd);
    svc.evfd = -1;
    close(svc.epfd);
    svc.epfd = -1;
}
