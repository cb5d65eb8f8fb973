/* tests/actor_mt_test.c - the runtime on real threads: a stress test (no
 * message lost, per-pair order kept), causal order, blocking actors, spawn
 * and exit churn against stale pids, restarts under load. Bounded in
 * count; each wait has a generous limit so a hang fails instead of
 * blocking CI. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>

#include <cmocka.h>

#include "actor/actor.h"
#include "actor/actor_impl.h"
#include "tests/probe.h"

#define WAIT_MS 60000

static int start_runtime(unsigned schedulers)
{
    probe_reset();
    return actor_runtime_start(
        &(struct actor_config){.schedulers = schedulers});
}

static int setup(void **state)
{
    (void)state;
    return start_runtime(4);
}

static int teardown(void **state)
{
    (void)state;
    actor_runtime_stop();
    return 0;
}

/* ---- stress: S senders x R receivers x N messages --------------------- */

enum { M_SEQ = ACTOR_MSG_USER + 100, M_GO, M_DONE };

struct seq_msg {
    struct actor_msg hdr;
    uint32_t sender; /* index */
    uint32_t seq;    /* 1, 2, ... per (sender, receiver) */
};

#define S 8
#define R 64
#define N 2000

static uint64_t receivers[R];
static uint64_t collector;
static _Atomic long received_total;
static _Atomic long order_errors;
static _Atomic long msgs_live;

static void seq_free(struct actor_msg *m)
{
    atomic_fetch_sub(&msgs_live, 1);
    free(m);
}

struct sender {
    uint32_t idx;
    uint32_t next[R];        /* next seq per receiver */
    uint32_t r;              /* receiver being served */
    struct seq_msg *pending; /* refused by a full mailbox */
};

static int sender_init(struct actor_ctx *ctx, void *arg, void **state)
{
    (void)ctx;
    struct sender *s = calloc(1, sizeof(*s));
    if (!s) {
        return -ENOMEM;
    }
    s->idx = (uint32_t)(uintptr_t)arg;
    for (int i = 0; i < R; i++) {
        s->next[i] = 1;
    }
    *state = s;
    return 0;
}

/* Sends round-robin until done, or until a mailbox is full (then waits
 * for RESUME, keeping the refused message: nothing is dropped). */
static int sender_pump(struct actor_ctx *ctx, struct sender *s)
{
    unsigned budget = 256; /* then yield the scheduler */
    while (budget-- > 0) {
        uint32_t r = s->r;
        if (s->next[r] > N) {
            bool all = true;
            for (int i = 0; i < R; i++) {
                if (s->next[i] <= N) {
                    s->r = (uint32_t)i;
                    all = false;
                    break;
                }
            }
            if (all) {
                struct actor_msg *d = actor_msg_new(sizeof(*d), M_DONE);
                if (!d) {
                    return -ENOMEM;
                }
                actor_send_or_free(ctx, collector, d);
                return 0;
            }
            continue;
        }
        struct seq_msg *m = s->pending;
        if (!m) {
            m = actor_msg_new(sizeof(*m), M_SEQ);
            if (!m) {
                return -ENOMEM;
            }
            m->hdr.free = seq_free;
            atomic_fetch_add(&msgs_live, 1);
            m->sender = s->idx;
            m->seq = s->next[r];
        }
        int rc = actor_send(ctx, receivers[r], &m->hdr);
        if (rc == -EAGAIN) {
            s->pending = m;
            return 0; /* RESUME will call us again */
        }
        if (rc != 0) {
            actor_msg_free(&m->hdr);
            return rc;
        }
        s->pending = NULL;
        s->next[r]++;
        s->r = (r + 1) % R;
    }
    struct actor_msg *go = actor_msg_new(sizeof(*go), M_GO);
    if (!go) {
        return -ENOMEM;
    }
    return actor_send(ctx, actor_self(ctx), go) == 0 ? 0 : -EIO;
}

static int sender_handle(struct actor_ctx *ctx, void *state,
                         struct actor_msg *msg)
{
    struct sender *s = state;
    switch (msg->type) {
    case M_GO:
        return sender_pump(ctx, s);
    case ACTOR_MSG_RESUME:
        /* Only the receiver we wait on matters; others are stale. */
        if (s->pending && msg->from == receivers[s->r]) {
            return sender_pump(ctx, s);
        }
        return 0;
    default:
        return -EINVAL;
    }
}

static void sender_stop(struct actor_ctx *ctx, void *state,
                        const struct actor_exit *why)
{
    (void)ctx;
    (void)why;
    struct sender *s = state;
    if (s->pending) {
        actor_msg_free(&s->pending->hdr);
    }
    free(s);
}

static const struct actor_ops sender_ops = {
    .name = "sender",
    .init = sender_init,
    .handle = sender_handle,
    .stop = sender_stop,
};

struct receiver {
    uint32_t expect[S];
};

static int receiver_init(struct actor_ctx *ctx, void *arg, void **state)
{
    (void)ctx;
    (void)arg;
    struct receiver *r = calloc(1, sizeof(*r));
    if (!r) {
        return -ENOMEM;
    }
    for (int i = 0; i < S; i++) {
        r->expect[i] = 1;
    }
    *state = r;
    return 0;
}

static int receiver_handle(struct actor_ctx *ctx, void *state,
                           struct actor_msg *msg)
{
    (void)ctx;
    struct receiver *r = state;
    if (msg->type != M_SEQ) {
        return -EINVAL;
    }
    struct seq_msg *m = (struct seq_msg *)msg;
    if (m->seq != r->expect[m->sender]) {
        atomic_fetch_add(&order_errors, 1);
    }
    r->expect[m->sender] = m->seq + 1;
    atomic_fetch_add(&received_total, 1);
    return 0;
}

static void free_state(struct actor_ctx *ctx, void *state,
                       const struct actor_exit *why)
{
    (void)ctx;
    (void)why;
    free(state);
}

static const struct actor_ops receiver_ops = {
    .name = "receiver",
    .init = receiver_init,
    .handle = receiver_handle,
    .stop = free_state,
};

static _Atomic int done_senders;

static int collector_handle(struct actor_ctx *ctx, void *state,
                            struct actor_msg *msg)
{
    (void)state;
    if (msg->type != M_DONE) {
        return -EINVAL;
    }
    if (atomic_fetch_add(&done_senders, 1) + 1 == S) {
        actor_exit_self(ctx, ACTOR_EXIT_NORMAL);
    }
    return 0;
}

static const struct actor_ops collector_ops = {
    .name = "collector",
    .handle = collector_handle,
};

static void test_stress_no_loss_order_kept(void **state)
{
    (void)state;
    atomic_store(&received_total, 0);
    atomic_store(&order_errors, 0);
    atomic_store(&done_senders, 0);
    atomic_store(&msgs_live, 0);
    assert_int_equal(
        actor_spawn(&(struct actor_spawn){.ops = &collector_ops}, &collector),
        0);
    for (int i = 0; i < R; i++) {
        /* small mailboxes so back-pressure really happens */
        assert_int_equal(actor_spawn(&(struct actor_spawn){.ops = &receiver_ops,
                                                           .mailbox = 32},
                                     &receivers[i]),
                         0);
    }
    uint64_t senders[S];
    for (int i = 0; i < S; i++) {
        assert_int_equal(
            actor_spawn(&(struct actor_spawn){.ops = &sender_ops,
                                              .arg = (void *)(uintptr_t)i},
                        &senders[i]),
            0);
        struct actor_msg *go = actor_msg_new(sizeof(*go), M_GO);
        assert_int_equal(actor_send(NULL, senders[i], go), 0);
    }
    struct actor_exit why;
    assert_true(actor_wait(collector, WAIT_MS, &why));
    assert_int_equal(why.kind, ACTOR_EXIT_NORMAL);
    /* the last messages may still be in receivers' mailboxes */
    for (int spin = 0; spin < 6000; spin++) {
        if (atomic_load(&received_total) == (long)S * R * N) {
            break;
        }
        usleep(10000);
    }
    assert_int_equal(atomic_load(&received_total), (long)S * R * N);
    assert_int_equal(atomic_load(&order_errors), 0);
    struct actor_stats st;
    actor_stats_get(&st);
    assert_true(st.full > 0); /* the bound was hit and honoured */
    for (int i = 0; i < S; i++) {
        struct actor_exit sd = {.kind = ACTOR_EXIT_SHUTDOWN};
        actor_exit(NULL, senders[i], &sd);
        actor_wait(senders[i], WAIT_MS, NULL);
    }
    for (int i = 0; i < R; i++) {
        struct actor_exit sd = {.kind = ACTOR_EXIT_SHUTDOWN};
        actor_exit(NULL, receivers[i], &sd);
        assert_true(actor_wait(receivers[i], WAIT_MS, NULL));
    }
    assert_int_equal(atomic_load(&msgs_live), 0);
}

/* ---- causal order ------------------------------------------------------ */

/* A sends X(i) to C, then Y(i) to B; B forwards Z(i) to C. C must see
 * X(i) before Z(i) for every i: sends ordered by happens-before are
 * received in that order. */
enum { C_X = ACTOR_MSG_USER + 200, C_Y, C_Z, C_RUN };

struct cmsg {
    struct actor_msg hdr;
    int i;
};

#define ROUNDS 20000
static uint64_t pa, pb, pc;
static _Atomic int causal_errors, causal_seen;

static int a_handle(struct actor_ctx *ctx, void *state, struct actor_msg *msg)
{
    (void)state;
    if (msg->type != C_RUN) {
        return -EINVAL;
    }
    int start = ((struct cmsg *)msg)->i;
    for (int i = start; i < start + 100 && i < ROUNDS; i++) {
        struct cmsg *x = actor_msg_new(sizeof(*x), C_X);
        struct cmsg *y = actor_msg_new(sizeof(*y), C_Y);
        if (!x || !y) {
            free(x);
            free(y);
            return -ENOMEM;
        }
        x->i = i;
        y->i = i;
        if (actor_send(ctx, pc, &x->hdr) != 0 ||
            actor_send(ctx, pb, &y->hdr) != 0) {
            return actor_fail(ctx, "mailbox full in causal test");
        }
    }
    if (start + 100 < ROUNDS) {
        struct cmsg *r = actor_msg_new(sizeof(*r), C_RUN);
        if (!r) {
            return -ENOMEM;
        }
        r->i = start + 100;
        actor_send_or_free(ctx, actor_self(ctx), &r->hdr);
    }
    return 0;
}

static int b_handle(struct actor_ctx *ctx, void *state, struct actor_msg *msg)
{
    (void)state;
    if (msg->type != C_Y) {
        return -EINVAL;
    }
    struct cmsg *z = actor_msg_new(sizeof(*z), C_Z);
    if (!z) {
        return -ENOMEM;
    }
    z->i = ((struct cmsg *)msg)->i;
    return actor_send(ctx, pc, &z->hdr) == 0 ? 0 : -EIO;
}

struct cstate {
    int last_x;
};

static int c_init(struct actor_ctx *ctx, void *arg, void **state)
{
    (void)ctx;
    (void)arg;
    struct cstate *c = calloc(1, sizeof(*c));
    if (!c) {
        return -ENOMEM;
    }
    c->last_x = -1;
    *state = c;
    return 0;
}

static int c_handle(struct actor_ctx *ctx, void *state, struct actor_msg *msg)
{
    struct cstate *c = state;
    int i = ((struct cmsg *)msg)->i;
    switch (msg->type) {
    case C_X:
        c->last_x = i;
        return 0;
    case C_Z:
        if (c->last_x < i) {
            atomic_fetch_add(&causal_errors, 1);
        }
        if (atomic_fetch_add(&causal_seen, 1) + 1 == ROUNDS) {
            actor_exit_self(ctx, ACTOR_EXIT_NORMAL);
        }
        return 0;
    default:
        return -EINVAL;
    }
}

static const struct actor_ops a_ops = {.name = "a", .handle = a_handle};
static const struct actor_ops b_ops = {.name = "b", .handle = b_handle};
static const struct actor_ops c_ops = {
    .name = "c", .init = c_init, .handle = c_handle, .stop = free_state};

static void test_causal_order(void **state)
{
    (void)state;
    atomic_store(&causal_errors, 0);
    atomic_store(&causal_seen, 0);
    uint32_t big = 4 * ROUNDS;
    assert_int_equal(
        actor_spawn(&(struct actor_spawn){.ops = &c_ops, .mailbox = big}, &pc),
        0);
    assert_int_equal(
        actor_spawn(&(struct actor_spawn){.ops = &b_ops, .mailbox = big}, &pb),
        0);
    assert_int_equal(actor_spawn(&(struct actor_spawn){.ops = &a_ops}, &pa), 0);
    struct cmsg *r = actor_msg_new(sizeof(*r), C_RUN);
    r->i = 0;
    assert_int_equal(actor_send(NULL, pa, &r->hdr), 0);
    assert_true(actor_wait(pc, WAIT_MS, NULL));
    assert_int_equal(atomic_load(&causal_seen), ROUNDS);
    assert_int_equal(atomic_load(&causal_errors), 0);
    struct actor_exit sd = {.kind = ACTOR_EXIT_SHUTDOWN};
    actor_exit(NULL, pa, &sd);
    actor_exit(NULL, pb, &sd);
    assert_true(actor_wait(pa, WAIT_MS, NULL));
    assert_true(actor_wait(pb, WAIT_MS, NULL));
}

/* ---- blocking actors -------------------------------------------------- */

static void test_blocking_actor(void **state)
{
    (void)state;
    struct probe_cfg tcfg = {.thread = true};
    uint64_t t = probe_spawn("blocking", &tcfg);
    uint64_t p = probe_spawn("pool", NULL);
    /* from outside, and from a pool actor through ECHO */
    for (int i = 0; i < 1000; i++) {
        assert_int_equal(probe_send_value(NULL, t, i), 0);
    }
    struct probe_msg *echo = actor_msg_new(sizeof(*echo), PROBE_ECHO);
    echo->value = 777;
    echo->pid = t;
    assert_int_equal(actor_send(NULL, p, &echo->hdr), 0);
    struct probe_rec *r = probe_rec("blocking");
    for (int spin = 0; spin < 6000 && PROBE_READ(r->n_values) < 1001; spin++) {
        usleep(1000);
    }
    assert_int_equal(PROBE_READ(r->n_values), 1001);
    for (int i = 0; i < 1000; i++) {
        assert_int_equal(PROBE_READ(r->values[i]), i);
    }
    struct actor_info info;
    assert_int_equal(actor_info_get(t, &info), 0);
    assert_true(info.thread);
    /* a crash ends it like any actor; a monitor sees it */
    probe_send_pid(NULL, p, PROBE_MONITOR, t);
    usleep(10000);
    probe_send_type(NULL, t, PROBE_CRASH);
    struct actor_exit why;
    assert_true(actor_wait(t, WAIT_MS, &why));
    assert_int_equal(why.kind, ACTOR_EXIT_ERROR);
    struct probe_rec *pool = probe_rec("pool");
    for (int spin = 0; spin < 6000 && PROBE_READ(pool->downs) == 0; spin++) {
        usleep(1000);
    }
    assert_int_equal(PROBE_READ(pool->downs), 1);
    struct actor_exit sd = {.kind = ACTOR_EXIT_SHUTDOWN};
    actor_exit(NULL, p, &sd);
    assert_true(actor_wait(p, WAIT_MS, NULL));
}

/* ---- churn: spawn, exit and send to stale pids at once ----------------- */

#define CHURN_ROUNDS 20000

/* Waits for @pid's exit; when it does not come, says what the actor looks
 * like (twice, a second apart: stuck or busy?) before the test fails. */
static bool wait_or_describe(uint64_t pid)
{
    if (actor_wait(pid, WAIT_MS, NULL)) {
        return true;
    }
    for (int i = 0; i < 2; i++) {
        struct actor_info info;
        if (actor_info_get(pid, &info) != 0) {
            fprintf(stderr, "pid %#llx: gone\n", (unsigned long long)pid);
            break;
        }
        fprintf(stderr,
                "pid %#llx: mailbox %u handled %llu runnable %d thread %d\n",
                (unsigned long long)pid, info.mailbox,
                (unsigned long long)info.handled, info.runnable, info.thread);
        sleep(1);
    }
    return false;
}

static void test_churn_stale_pids(void **state)
{
    (void)state;
    uint64_t live[256] = {0};
    struct probe_cfg cfg = {.rec = "churn"};
    long refused = 0, delivered = 0;
    uint64_t *all = calloc(CHURN_ROUNDS, sizeof(*all));
    assert_non_null(all);
    for (int round = 0; round < CHURN_ROUNDS; round++) {
        int k = round % 256;
        if (live[k]) {
            /* kill it, and keep sending to the pid while it dies */
            struct actor_exit kill = {.kind = ACTOR_EXIT_KILLED};
            actor_exit(NULL, live[k], &kill);
            if (round % 64 == 0) {
                /* sometimes wait: then the send must be refused */
                assert_true(wait_or_describe(live[k]));
                assert_int_equal(probe_send_value(NULL, live[k], 0), -ESRCH);
                refused++;
            }
        }
        for (int j = 0; j < 4; j++) {
            uint64_t to = live[(k + j * 37) % 256];
            if (!to) {
                continue;
            }
            if (probe_send_value(NULL, to, j) == 0) {
                delivered++;
            } else {
                refused++;
            }
        }
        assert_int_equal(probe_spawn_rc(NULL, &cfg, &live[k]), 0);
        all[round] = live[k];
    }
    for (int k = 0; k < 256; k++) {
        struct actor_exit kill = {.kind = ACTOR_EXIT_KILLED};
        actor_exit(NULL, live[k], &kill);
        assert_true(wait_or_describe(live[k]));
    }
    /* both outcomes happened; every message was freed either way */
    assert_true(delivered > 0);
    assert_true(refused > 0);
    /* Every actor of the run is dead (the ones killed in the loop were
     * not waited for there): then every message must have been freed. */
    for (int i = 0; i < CHURN_ROUNDS; i++) {
        assert_true(wait_or_describe(all[i]));
    }
    assert_int_equal(probe_msgs_alive(), 0);
    free(all);
}

/* ---- restarts under load ----------------------------------------------- */

static void test_restarts_under_load(void **state)
{
    (void)state;
    static struct probe_cfg w = {.rec = "w"};
    static const struct actor_child_spec kids[] = {
        {.id = "w",
         .start = {.ops = &probe_ops, .arg = &w, .name = "w"},
         .restart = ACTOR_PERMANENT,
         .shutdown_ms = 1000},
    };
    struct actor_sup_spec spec = {.strategy = ACTOR_ONE_FOR_ONE,
                                  .intensity = 1000,
                                  .period_ms = 60000,
                                  .children = kids,
                                  .n_children = 1};
    uint64_t sup;
    assert_int_equal(actor_sup_start(&spec, 0, &sup), 0);
    const int rounds = 200;
    for (int round = 0; round < rounds; round++) {
        uint64_t pid = 0;
        for (int spin = 0; spin < 60000 && !pid; spin++) {
            pid = actor_whereis("w");
            if (!pid) {
                usleep(100);
            }
        }
        assert_int_not_equal(pid, 0);
        /* load while it is being crashed; a full mailbox refuses some */
        for (int i = 0; i < 300; i++) {
            probe_send_value(NULL, pid, i);
        }
        int rc;
        for (int spin = 0; spin < 60000; spin++) {
            rc = probe_send_type(NULL, pid, PROBE_CRASH);
            if (rc != -EAGAIN) {
                break;
            }
            usleep(100);
        }
        assert_int_equal(rc, 0);
        /* The wait ends with the crash it caused: the pid was found by
         * name, maybe before its spawn had finished, and a wait then
         * once ended at once with "no such process". */
        struct actor_exit crashed;
        assert_true(actor_wait(pid, WAIT_MS, &crashed));
        assert_int_equal(crashed.kind, ACTOR_EXIT_ERROR);
        assert_int_equal(crashed.err, -EIO);
    }
    struct probe_rec *w_rec = probe_rec("w");
    for (int spin = 0; spin < 60000 && PROBE_READ(w_rec->inits) < rounds + 1;
         spin++) {
        usleep(100);
    }
    assert_int_equal(PROBE_READ(w_rec->inits), rounds + 1);
    assert_true(actor_is_alive(sup));
    struct actor_exit sd = {.kind = ACTOR_EXIT_SHUTDOWN};
    actor_exit(NULL, sup, &sd);
    struct actor_exit why;
    assert_true(actor_wait(sup, WAIT_MS, &why));
    assert_int_equal(why.kind, ACTOR_EXIT_SHUTDOWN);
    assert_int_equal(actor_whereis("w"), 0);
    assert_int_equal(PROBE_READ(w_rec->stops), rounds + 1);
}

/* ---- waits on a pid found mid-spawn ------------------------------------ */

static bool mid_ended;
static struct actor_exit mid_why;

/* Spawns a probe as @cfg says, with actor__spawn_hook set to @hook for
 * this spawn only. */
static int spawn_hooked(const char *name, struct probe_cfg *cfg,
                        int (*hook)(uint64_t pid), uint64_t *pid)
{
    actor__spawn_hook = hook;
    int rc = probe_spawn_rc(name, cfg, pid);
    actor__spawn_hook = NULL;
    return rc;
}

/* Runs inside spawn, the name registered, the actor not yet live. */
static int wait_mid_spawn(uint64_t pid)
{
    assert_int_equal(actor_whereis("mid"), pid); /* findable already */
    mid_ended = actor_wait(pid, 50, &mid_why);
    return 0;
}

static void test_wait_mid_spawn(void **state)
{
    (void)state;
    static struct probe_cfg cfg = {.rec = "mid"};
    uint64_t pid = 0;
    assert_int_equal(spawn_hooked("mid", &cfg, wait_mid_spawn, &pid), 0);
    /* Its exit was still to come: the wait ran out, not "no such
     * process". Once it is killed, the wait ends with that. */
    assert_false(mid_ended);
    struct actor_exit kill = {.kind = ACTOR_EXIT_KILLED}, why;
    actor_exit(NULL, pid, &kill);
    assert_true(actor_wait(pid, WAIT_MS, &why));
    assert_int_equal(why.kind, ACTOR_EXIT_KILLED);
}

struct waiter {
    uint64_t pid;
    bool ended;
    struct actor_exit why;
};

static void *wait_thread(void *arg)
{
    struct waiter *w = arg;
    w->ended = actor_wait(w->pid, 5000, &w->why);
    return NULL;
}

static struct waiter doomed;
static pthread_t doomed_thread;

/* A spawn that fails once its name is out: someone waits on it first. */
static int fail_mid_spawn(uint64_t pid)
{
    doomed.pid = pid;
    assert_int_equal(pthread_create(&doomed_thread, NULL, wait_thread, &doomed),
                     0);
    usleep(50 * 1000); /* let it start waiting */
    return -EIO;
}

static void test_wait_on_failed_spawn(void **state)
{
    (void)state;
    static struct probe_cfg cfg = {.rec = "doomed"};
    uint64_t pid = 0;
    assert_int_equal(spawn_hooked("doomed", &cfg, fail_mid_spawn, &pid), -EIO);
    assert_int_equal(actor_whereis("doomed"), 0);
    /* The waiter is told at once that it never lived (it used to wait
     * out its whole timeout). */
    pthread_join(doomed_thread, NULL);
    assert_true(doomed.ended);
    assert_int_equal(doomed.why.kind, ACTOR_EXIT_NOPROC);
    assert_false(actor_is_alive(doomed.pid));
}

/* ---- fairness ---------------------------------------------------------- */

/* An actor that keeps itself busy (a message to itself per message) runs
 * from its scheduler's `next` slot turn after turn. What other threads
 * made runnable (here: the main thread's spawn and send, on the shared
 * queue) must still get a turn on the only scheduler. */
enum { M_SPIN = ACTOR_MSG_USER + 200 };
static _Atomic bool spin_stop;
static _Atomic long spin_count;

static int spinner_handle(struct actor_ctx *ctx, void *state,
                          struct actor_msg *msg)
{
    (void)state;
    (void)msg;
    atomic_fetch_add(&spin_count, 1);
    if (atomic_load(&spin_stop)) {
        return 0;
    }
    struct actor_msg *m = actor_msg_new(sizeof(*m), M_SPIN);
    if (!m) {
        return -ENOMEM;
    }
    return actor_send_or_free(ctx, actor_self(ctx), m) == 0 ? 0 : -EIO;
}

static const struct actor_ops spinner_ops = {.name = "spinner",
                                             .handle = spinner_handle};

static int setup_one(void **state)
{
    (void)state;
    return start_runtime(1);
}

static void test_busy_actor_starves_nobody(void **state)
{
    (void)state;
    atomic_store(&spin_stop, false);
    atomic_store(&spin_count, 0);
    uint64_t spinner;
    assert_int_equal(
        actor_spawn(&(struct actor_spawn){.ops = &spinner_ops}, &spinner), 0);
    struct actor_msg *m = actor_msg_new(sizeof(*m), M_SPIN);
    assert_int_equal(actor_send(NULL, spinner, m), 0);
    for (int i = 0; i < 10000 && atomic_load(&spin_count) < 1000; i++) {
        usleep(1000);
    }
    assert_true(atomic_load(&spin_count) >= 1000);

    static struct probe_cfg cfg = {.rec = "late"};
    uint64_t late = probe_spawn(NULL, &cfg);
    assert_int_equal(probe_send_value(NULL, late, 7), 0);
    struct probe_rec *r = probe_rec("late");
    for (int i = 0; i < 10000 && PROBE_READ(r->n_values) == 0; i++) {
        usleep(1000);
    }
    /* Read before the spinner is told to stop: it ran alongside. */
    long got = PROBE_READ(r->n_values);
    atomic_store(&spin_stop, true);
    assert_int_equal(got, 1);
    struct actor_exit kill = {.kind = ACTOR_EXIT_KILLED};
    actor_exit(NULL, spinner, &kill);
    actor_exit(NULL, late, &kill);
    assert_true(actor_wait(spinner, WAIT_MS, NULL));
    assert_true(actor_wait(late, WAIT_MS, NULL));
}

/* ---- a blocking actor holding back ------------------------------------ */

/* It leaves its mailbox alone (as the store does under back-pressure) and
 * sleeps until an exit is queued; then it drains until the exit ends it. */
static _Atomic bool sleeper_saw_exit;

static int sleeper_handle(struct actor_ctx *ctx, void *state,
                          struct actor_msg *msg)
{
    (void)ctx;
    (void)state;
    (void)msg;
    return 0;
}

static int sleeper_run(struct actor_ctx *ctx, void *state)
{
    (void)state;
    while (!actor_exit_queued(ctx)) {
        actor_sleep(ctx, 600000);
    }
    atomic_store(&sleeper_saw_exit, true);
    while (actor_drain(ctx, 0) != ACTOR_DONE) {
        actor_wait_message(ctx, -1);
    }
    return 0;
}

static const struct actor_ops sleeper_ops = {
    .name = "sleeper", .handle = sleeper_handle, .run = sleeper_run};

static void test_held_back_actor_can_be_stopped(void **state)
{
    (void)state;
    atomic_store(&sleeper_saw_exit, false);
    uint64_t pid;
    assert_int_equal(
        actor_spawn(&(struct actor_spawn){.ops = &sleeper_ops, .thread = true},
                    &pid),
        0);
    /* Messages it will not read: the first wakes it (it goes back to
     * sleep), the rest find it behind on its mailbox and wake nothing. */
    for (int i = 0; i < 3; i++) {
        assert_int_equal(probe_send_value(NULL, pid, i), 0);
        usleep(20 * 1000);
    }
    assert_false(atomic_load(&sleeper_saw_exit));
    struct actor_exit sd = {.kind = ACTOR_EXIT_SHUTDOWN}, why;
    assert_int_equal(actor_exit(NULL, pid, &sd), 0);
    /* Well under its sleep: the exit woke it. */
    assert_true(actor_wait(pid, 10000, &why));
    assert_true(atomic_load(&sleeper_saw_exit));
    assert_int_equal(why.kind, ACTOR_EXIT_SHUTDOWN);
    assert_int_equal(probe_msgs_alive(), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_stress_no_loss_order_kept, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_causal_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_blocking_actor, setup, teardown),
        cmocka_unit_test_setup_teardown(test_churn_stale_pids, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wait_mid_spawn, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wait_on_failed_spawn, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_restarts_under_load, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_busy_actor_starves_nobody,
                                        setup_one, teardown),
        cmocka_unit_test_setup_teardown(test_held_back_actor_can_be_stopped,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
