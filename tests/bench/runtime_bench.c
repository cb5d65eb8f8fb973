/* tests/bench/runtime_bench.c - the runtime measured the way the BEAM
 * usually is: fan-in, ping-pong, spawning idle actors. */

/*
 * DESIGN
 * Each figure is one bounded run on the real scheduler (one thread per
 * core): fan-in is 2 senders x 2,000,000 messages to one receiver, with the
 * senders honouring back-pressure (they stop on -EAGAIN and go on at
 * ACTOR_MSG_RESUME, so the bound is really in play); ping-pong is 2 pairs x
 * 500,000 round trips; spawn is 100,000 idle actors, timed until every one
 * has run its init, with the memory measured as the growth of the
 * process's resident set. Erlang/OTP 25 on this machine with 2 schedulers:
 * 3 M fan-in msgs/s, 1.9 M round trips/s, 2.4 us per spawn, 2.7 KB per
 * process; the goals are ahead of each.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "actor/actor.h"

#define FANIN_SENDERS    2
#define FANIN_PER_SENDER 2000000
#define PINGPONG_PAIRS   2
#define PINGPONG_ROUNDS  500000
#define SPAWN_N          100000

enum { B_GO = ACTOR_MSG_USER + 1, B_DATA, B_PING, B_PONG, B_INIT };

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void free_state(struct actor_ctx *ctx, void *state,
                       const struct actor_exit *why)
{
    (void)ctx;
    (void)why;
    free(state);
}

static void wait_for(_Atomic long *counter, long target)
{
    while (atomic_load(counter) < target) {
        usleep(200);
    }
}

/* ---- fan-in ----------------------------------------------------------- */

static uint64_t sink;
static _Atomic long sink_count;
static double fanin_end;

static int sink_handle(struct actor_ctx *ctx, void *state,
                       struct actor_msg *msg)
{
    (void)ctx;
    (void)state;
    (void)msg;
    if (atomic_fetch_add_explicit(&sink_count, 1, memory_order_relaxed) + 1 ==
        (long)FANIN_SENDERS * FANIN_PER_SENDER) {
        fanin_end = now_s();
    }
    return 0;
}

struct source {
    long left;
    struct actor_msg *pending;
};

static int source_init(struct actor_ctx *ctx, void *arg, void **state)
{
    (void)ctx;
    (void)arg;
    struct source *s = calloc(1, sizeof(*s));
    if (!s) {
        return -ENOMEM;
    }
    s->left = FANIN_PER_SENDER;
    *state = s;
    return 0;
}

static int source_pump(struct actor_ctx *ctx, struct source *s)
{
    for (int burst = 0; burst < 1024 && s->left > 0; burst++) {
        struct actor_msg *m = s->pending;
        if (!m) {
            m = actor_msg_new(sizeof(*m), B_DATA);
            if (!m) {
                return -ENOMEM;
            }
        }
        int rc = actor_send(ctx, sink, m);
        if (rc == -EAGAIN) {
            s->pending = m;
            return 0; /* RESUME brings us back */
        }
        s->pending = NULL;
        if (rc != 0) {
            actor_msg_free(m);
            return rc;
        }
        s->left--;
    }
    if (s->left == 0) {
        return 0;
    }
    struct actor_msg *go = actor_msg_new(sizeof(*go), B_GO);
    return go ? actor_send_or_free(ctx, actor_self(ctx), go) : -ENOMEM;
}

static int source_handle(struct actor_ctx *ctx, void *state,
                         struct actor_msg *msg)
{
    switch (msg->type) {
    case B_GO:
    case ACTOR_MSG_RESUME:
        return source_pump(ctx, state);
    default:
        return -EINVAL;
    }
}

static const struct actor_ops sink_ops = {.name = "sink",
                                          .handle = sink_handle};
static const struct actor_ops source_ops = {.name = "source",
                                            .init = source_init,
                                            .handle = source_handle,
                                            .stop = free_state};

static void bench_fanin(void)
{
    atomic_store(&sink_count, 0);
    actor_spawn(&(struct actor_spawn){.ops = &sink_ops, .mailbox = 65536},
                &sink);
    uint64_t src[FANIN_SENDERS];
    for (int i = 0; i < FANIN_SENDERS; i++) {
        actor_spawn(&(struct actor_spawn){.ops = &source_ops}, &src[i]);
    }
    double t0 = now_s();
    for (int i = 0; i < FANIN_SENDERS; i++) {
        actor_send(NULL, src[i], actor_msg_new(sizeof(struct actor_msg), B_GO));
    }
    wait_for(&sink_count, (long)FANIN_SENDERS * FANIN_PER_SENDER);
    double secs = fanin_end - t0;
    printf("bench runtime_fanin_msgs_per_s %.0f msgs/s\n",
           FANIN_SENDERS * (double)FANIN_PER_SENDER / secs);
    struct actor_exit sd = {.kind = ACTOR_EXIT_SHUTDOWN};
    for (int i = 0; i < FANIN_SENDERS; i++) {
        actor_exit(NULL, src[i], &sd);
        actor_wait(src[i], 10000, NULL);
    }
    actor_exit(NULL, sink, &sd);
    actor_wait(sink, 10000, NULL);
}

/* ---- ping-pong -------------------------------------------------------- */

struct ball {
    struct actor_msg hdr;
    long round;
};

static _Atomic long pairs_done;
static double pingpong_end;

static int player_handle(struct actor_ctx *ctx, void *state,
                         struct actor_msg *msg)
{
    uint64_t peer = (uint64_t)(uintptr_t)state;
    struct ball *b = (struct ball *)msg;
    switch (msg->type) {
    case B_PING:
        /* The same ball goes back: one message per hop, as in Erlang. */
        msg->type = B_PONG;
        if (actor_send(ctx, msg->from, msg) != 0) {
            return -EIO;
        }
        return ACTOR_KEPT;
    case B_PONG:
        if (++b->round == PINGPONG_ROUNDS) {
            if (atomic_fetch_add(&pairs_done, 1) + 1 == PINGPONG_PAIRS) {
                pingpong_end = now_s();
            }
            return 0;
        }
        msg->type = B_PING;
        if (actor_send(ctx, peer, msg) != 0) {
            return -EIO;
        }
        return ACTOR_KEPT;
    default:
        return -EINVAL;
    }
}

static int player_init(struct actor_ctx *ctx, void *arg, void **state)
{
    (void)ctx;
    *state = arg; /* the peer's pid, or 0 */
    return 0;
}

static const struct actor_ops player_ops = {
    .name = "player", .init = player_init, .handle = player_handle};

static void bench_pingpong(void)
{
    atomic_store(&pairs_done, 0);
    uint64_t pong[PINGPONG_PAIRS], ping[PINGPONG_PAIRS];
    for (int i = 0; i < PINGPONG_PAIRS; i++) {
        actor_spawn(&(struct actor_spawn){.ops = &player_ops}, &pong[i]);
        actor_spawn(&(struct actor_spawn){.ops = &player_ops,
                                          .arg = (void *)(uintptr_t)pong[i]},
                    &ping[i]);
    }
    double t0 = now_s();
    for (int i = 0; i < PINGPONG_PAIRS; i++) {
        struct ball *b = actor_msg_new(sizeof(*b), B_PONG);
        b->round = -1; /* the first PONG starts round 0 */
        b->hdr.from = pong[i];
        actor_send(NULL, ping[i], &b->hdr);
    }
    wait_for(&pairs_done, PINGPONG_PAIRS);
    double secs = pingpong_end - t0;
    printf("bench runtime_pingpong_round_trips_per_s %.0f trips/s\n",
           PINGPONG_PAIRS * (double)PINGPONG_ROUNDS / secs);
    struct actor_exit sd = {.kind = ACTOR_EXIT_SHUTDOWN};
    for (int i = 0; i < PINGPONG_PAIRS; i++) {
        actor_exit(NULL, ping[i], &sd);
        actor_exit(NULL, pong[i], &sd);
        actor_wait(ping[i], 10000, NULL);
        actor_wait(pong[i], 10000, NULL);
    }
}

/* ---- spawning idle actors ---------------------------------------------- */

static _Atomic long inits_done;

static int idle_init(struct actor_ctx *ctx, void *arg, void **state)
{
    (void)ctx;
    (void)arg;
    *state = NULL;
    atomic_fetch_add_explicit(&inits_done, 1, memory_order_relaxed);
    return 0;
}

static int idle_handle(struct actor_ctx *ctx, void *state,
                       struct actor_msg *msg)
{
    (void)ctx;
    (void)state;
    (void)msg;
    return 0;
}

static const struct actor_ops idle_ops = {
    .name = "idle", .init = idle_init, .handle = idle_handle};

static long rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, rss = 0;
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &rss) != 2) {
            rss = 0;
        }
        fclose(f);
    }
    return rss * sysconf(_SC_PAGESIZE);
}

static void bench_spawn(void)
{
    uint64_t *pids = malloc(SPAWN_N * sizeof(*pids));
    if (!pids) {
        return;
    }
    atomic_store(&inits_done, 0);
    long rss0 = rss_bytes();
    double t0 = now_s();
    for (int i = 0; i < SPAWN_N; i++) {
        if (actor_spawn(&(struct actor_spawn){.ops = &idle_ops}, &pids[i]) !=
            0) {
            fprintf(stderr, "spawn failed at %d\n", i);
            exit(1);
        }
    }
    wait_for(&inits_done, SPAWN_N);
    double secs = now_s() - t0;
    long rss1 = rss_bytes();
    printf("bench runtime_spawn_us_per_actor %.3f us\n", secs * 1e6 / SPAWN_N);
    printf("bench runtime_idle_actor_bytes %.0f B\n",
           (double)(rss1 - rss0) / SPAWN_N);
    struct actor_stats st;
    actor_stats_get(&st);
    printf("bench runtime_idle_actors_alive %u actors\n", st.alive);
    struct actor_exit sd = {.kind = ACTOR_EXIT_SHUTDOWN};
    for (int i = 0; i < SPAWN_N; i++) {
        actor_exit(NULL, pids[i], &sd);
    }
    actor_wait(pids[SPAWN_N - 1], 60000, NULL);
    free(pids);
}

int main(int argc, char **argv)
{
    unsigned schedulers = argc > 1 ? (unsigned)atoi(argv[1]) : 0;
    if (actor_runtime_start(&(struct actor_config){.schedulers = schedulers}) !=
        0) {
        fprintf(stderr, "runtime_bench: cannot start the runtime\n");
        return 1;
    }
    bench_spawn(); /* first: a fresh heap measures memory honestly */
    bench_fanin();
    bench_pingpong();
    actor_runtime_stop();
    return 0;
}
