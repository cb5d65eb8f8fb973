/* tests/bench/model_bench.c - the model's speed and size: match updates
 * applied per second (the state machine on one core, JSON included; the
 * actors on two cores), without I/O; and the bytes one match holds with 20
 * incidents, alone and as an actor. */
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "actor/actor.h"
#include "ingest/event.h"
#include "model/model.h"
#include "model/model_impl.h"
#include "model/update.h"
#include "store/store.h"
#include "tests/model_ev.h"

/*
 * DESIGN
 * Throughput: MATCHES matches, each set up by a full message with its
 * fixture and 10 incidents, then updated round-robin (so the working set is
 * several MB, not one hot match) with a feed-like mix: mostly clock ticks,
 * some ticks that repeat status and score, goals with a score change,
 * card and VAR incidents, confirmations, a deletion, now and then a resync
 * full. Each update is applied, serialized and released, as if notify and
 * the store had already dropped it. Each thread runs for at least MIN_NS of
 * its own CPU time, which is what it measures: this machine is shared, and
 * wall time would count other programs' turns. The two-thread figure sums
 * the threads' rates: what two free cores do.
 *
 * Memory: heap in use (jemalloc's stats.allocated, or mallinfo2) before
 * and after building SIZE_MATCHES
 * matches with a fixture, status, clock, score and 20 incidents each,
 * their updates released: what the model keeps per match (the state, the
 * image, its texts and its incident list, with malloc's own overhead).
 *
 * With actors: the real model subtree (model.matches, model.loader) on a
 * runtime with two schedulers, `store` and `notify` played by sink actors
 * on the same schedulers that count and release what they get (so the
 * figure pays for the messages' whole life). Two feeder actors, as two
 * ingest sources would, route pre-parsed events of one element each, 100
 * matches apiece round-robin, honouring -EAGAIN and RESUME. The elements
 * carry no msgnr, so a pool of events can be routed again and again and
 * every one is applied. The rate is wall-clock, applied outcomes counted
 * by the store sink over the run. The same set-up, with 20,000 matches
 * given a full message with 20 incidents and three ticks, gives the heap
 * per match actor: state, image, actor slot, registry entry, supervisor
 * record.
 */

#define MATCHES      1000
#define MIN_NS       1500000000ull
#define SIZE_MATCHES 20000
#define N_INC        20

/* jemalloc's mallctl() when the release build links it (mallinfo2() then
 * says nothing), else NULL. */
int mallctl(const char *name, void *oldp, size_t *oldlenp, void *newp,
            size_t newlen) __attribute__((weak));

/* Bytes the program has allocated and not freed: jemalloc's
 * stats.allocated (refreshed through its epoch), or glibc's small chunks
 * and mmapped blocks. */
static size_t heap_in_use(void)
{
    if (mallctl) {
        uint64_t epoch = 1;
        size_t allocated = 0, len = sizeof(allocated);
        if (mallctl("epoch", NULL, NULL, &epoch, sizeof(epoch)) == 0 &&
            mallctl("stats.allocated", &allocated, &len, NULL, 0) == 0) {
            return allocated;
        }
    }
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

static const char *const players[] = {
    "B. Saka",    "M. Odegaard",  "D. Rice",      "G. Jesus",   "K. Havertz",
    "W. Saliba",  "G. Magalhaes", "B. White",     "D. Raya",    "L. Trossard",
    "C. Palmer",  "N. Jackson",   "E. Fernandez", "M. Caicedo", "R. James",
    "L. Colwill", "W. Fofana",    "R. Sanchez",   "M. Mudryk",  "C. Nkunku"};
static const char *const inc_ids[N_INC] = {
    "8812-1",  "8812-2",  "8812-3",  "8812-4",  "8812-5",  "8812-6",  "8812-7",
    "8812-8",  "8812-9",  "8812-10", "8812-11", "8812-12", "8812-13", "8812-14",
    "8812-15", "8812-16", "8812-17", "8812-18", "8812-19", "8812-20"};
static const char *const inc_types[] = {"goal", "yellow_card", "substitution",
                                        "var"};

static _Thread_local uint64_t rng_state = 0x5eed;

static uint32_t rnd(uint32_t n)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return (uint32_t)((z ^ (z >> 31)) % n);
}

static uint64_t clock_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* CPU time of the calling thread: a core's work, whatever else the
 * machine runs meanwhile. */
static uint64_t now_ns(void)
{
    return clock_ns(CLOCK_THREAD_CPUTIME_ID);
}

static void die(const char *what, int rc)
{
    fprintf(stderr, "model_bench: %s: %d\n", what, rc);
    exit(1);
}

/* What a feed would say about one match. */
struct sim {
    char id[32];
    uint64_t msgnr;
    int32_t clock;
    uint32_t home;
    uint32_t away;
    uint32_t next_inc;
};

static struct event_incident make_incident(uint32_t k, enum event_action a)
{
    return (struct event_incident){
        .id = inc_ids[k % N_INC],
        .type = inc_types[k % 4],
        .player = players[k % 20],
        .assist = k % 3 == 0 ? players[(k + 7) % 20] : NULL,
        .minute = (int32_t)(k * 4 % 90),
        .stoppage = EVENT_ABSENT,
        .team = (int8_t)(1 + k % 2),
        .confirmed = (int8_t)(k % 2),
        .action = (uint8_t)a,
    };
}

static void make_incidents(struct event_incident *incs, uint32_t n)
{
    for (uint32_t k = 0; k < n; k++) {
        incs[k] = make_incident(k, EVENT_ACTION_INSERT);
    }
}

/* A full message with msgnr @s->msgnr: fixture, status, clock, score and
 * the @n incidents @incs. */
static void make_full(struct sim *s, struct event_match *em,
                      struct event_incident *incs, uint32_t n)
{
    *em = (struct event_match){
        .id = s->id,
        .msgnr = s->msgnr,
        .has_msgnr = true,
        .full = true,
        .parts = EVENT_HAS_FIXTURE | EVENT_HAS_STATUS | EVENT_HAS_CLOCK |
                 EVENT_HAS_SCORE,
        .fixture = {.sport = "soccer",
                    .competition = "Premier League",
                    .home = "Arsenal",
                    .away = "Chelsea",
                    .start = "2026-11-21T15:00:00Z"},
        .phase = "second_half",
        .clock_seconds = s->clock,
        .clock_running = 1,
        .score_home = s->home,
        .score_away = s->away,
        .incidents = incs,
        .n_incidents = n,
    };
}

/* The next clock tick of @s. */
static struct event_match make_tick(struct sim *s)
{
    return (struct event_match){.id = s->id,
                                .msgnr = ++s->msgnr,
                                .has_msgnr = true,
                                .parts = EVENT_HAS_CLOCK,
                                .clock_seconds = ++s->clock,
                                .clock_running = 1};
}

/* One element of the feed-like mix. */
static void make_delta(struct sim *s, struct event_match *em,
                       struct event_incident *incs)
{
    *em = (struct event_match){.id = s->id,
                               .msgnr = ++s->msgnr,
                               .has_msgnr = true,
                               .parts = EVENT_HAS_CLOCK,
                               .clock_seconds = ++s->clock,
                               .clock_running = 1};
    uint32_t r = rnd(1000);
    if (r < 700) {
        return; /* a clock tick */
    }
    if (r < 850) { /* a tick repeating status and score */
        em->parts |= EVENT_HAS_STATUS | EVENT_HAS_SCORE;
        em->phase = "second_half";
        em->score_home = s->home;
        em->score_away = s->away;
        return;
    }
    if (r < 990) {
        em->incidents = incs;
        em->n_incidents = 1;
    }
    if (r < 900) { /* a goal */
        em->parts |= EVENT_HAS_SCORE;
        if (rnd(2)) {
            s->home++;
        } else {
            s->away++;
        }
        em->score_home = s->home;
        em->score_away = s->away;
        incs[0] = make_incident(s->next_inc++, EVENT_ACTION_INSERT);
    } else if (r < 950) { /* a card, a substitution, a VAR check */
        incs[0] = make_incident(s->next_inc++, EVENT_ACTION_INSERT);
    } else if (r < 980) { /* a confirmation */
        incs[0] = (struct event_incident){.id = inc_ids[rnd(N_INC)],
                                          .action = EVENT_ACTION_UPDATE,
                                          .minute = EVENT_ABSENT,
                                          .stoppage = EVENT_ABSENT,
                                          .confirmed = 1};
    } else if (r < 990) { /* a deletion */
        incs[0] = (struct event_incident){.id = inc_ids[rnd(N_INC)],
                                          .action = EVENT_ACTION_DELETE,
                                          .minute = EVENT_ABSENT,
                                          .stoppage = EVENT_ABSENT,
                                          .confirmed = EVENT_ABSENT};
    } else { /* a resync */
        make_incidents(incs, 10 + s->next_inc % 10);
        make_full(s, em, incs, 10 + s->next_inc % 10);
    }
}

static void apply(struct model__match *m, struct event_match *em,
                  uint64_t *json_bytes)
{
    struct event ev = {.source = "feed-eu-1",
                       .sent = "2026-11-21T15:04:05.123Z",
                       .sent_ms = 1795273445123,
                       .matches = em,
                       .n_matches = 1};
    struct update *up = NULL;
    int rc = model__match_apply(m, &ev, 0, 0, &up);
    if (rc != 0 || !up) {
        die("model__match_apply", rc);
    }
    *json_bytes += up->json_len;
    update_unref(up);
}

/* One core's share: its own matches, nothing shared with another. */
struct worker {
    uint64_t seed;
    struct model__match ms[MATCHES];
    struct sim sims[MATCHES];
    uint64_t n;       /* updates applied */
    uint64_t elapsed; /* ns */
    uint64_t json_bytes;
};

static void *run_worker(void *arg)
{
    struct worker *w = arg;
    struct event_incident incs[N_INC];
    struct event_match em;
    rng_state = w->seed;
    for (uint32_t i = 0; i < MATCHES; i++) {
        struct sim *s = &w->sims[i];
        snprintf(s->id, sizeof(s->id), "sr:match:%u", 880000 + i);
        s->clock = (int32_t)rnd(90 * 60);
        int rc = model__match_init(&w->ms[i], s->id);
        if (rc != 0) {
            die("model__match_init", rc);
        }
        s->msgnr = 1;
        make_incidents(incs, 10);
        make_full(s, &em, incs, 10);
        s->next_inc = 10;
        apply(&w->ms[i], &em, &w->json_bytes);
    }
    w->json_bytes = 0;
    uint64_t n = 0;
    uint64_t start = now_ns();
    uint64_t elapsed;
    do {
        for (uint32_t k = 0; k < 100000; k++, n++) {
            uint32_t i = (uint32_t)(n % MATCHES);
            make_delta(&w->sims[i], &em, incs);
            apply(&w->ms[i], &em, &w->json_bytes);
        }
        elapsed = now_ns() - start;
    } while (elapsed < MIN_NS);
    for (uint32_t i = 0; i < MATCHES; i++) {
        model__match_release(&w->ms[i]);
    }
    w->n = n;
    w->elapsed = elapsed;
    return NULL;
}

/* Runs @n workers at once; returns their summed updates per second. */
static double run_workers(unsigned n, uint64_t *json_bytes, uint64_t *updates)
{
    struct worker *w = calloc(n, sizeof(*w));
    pthread_t t[8];
    if (!w || n > 8) {
        die("calloc", -ENOMEM);
    }
    for (unsigned k = 0; k < n; k++) {
        w[k].seed = 0x5eed + k;
        if (pthread_create(&t[k], NULL, run_worker, &w[k]) != 0) {
            die("pthread_create", -errno);
        }
    }
    double rate = 0;
    *json_bytes = 0;
    *updates = 0;
    for (unsigned k = 0; k < n; k++) {
        pthread_join(t[k], NULL);
        rate += (double)w[k].n * 1e9 / (double)w[k].elapsed;
        *json_bytes += w[k].json_bytes;
        *updates += w[k].n;
    }
    free(w);
    return rate;
}

static void bench_updates(void)
{
    uint64_t json_bytes;
    uint64_t n;
    double one = run_workers(1, &json_bytes, &n);
    printf("bench model_updates_per_s_1core %.0f updates/s\n", one);
    printf("bench model_ns_per_update %.0f ns\n", 1e9 / one);
    printf("bench model_json_bytes_per_update %.1f B\n",
           (double)json_bytes / (double)n);
    /* No actors yet: two threads, each with its own matches, show what
     * shared state (malloc, the allocator's arenas) costs on two cores. */
    double two = run_workers(2, &json_bytes, &n);
    printf("bench model_updates_per_s_2threads %.0f updates/s\n", two);
}

static void bench_memory(void)
{
    struct event_incident incs[N_INC];
    struct event_match em;
    uint64_t json_bytes = 0;
    struct sim s = {0};
    snprintf(s.id, sizeof(s.id), "sr:match:%u", 999999);

    /* Warm up: the thread's JSON scratch is not a match's memory. */
    struct model__match warm;
    s.msgnr = 1;
    if (model__match_init(&warm, s.id) != 0) {
        die("model__match_init", -ENOMEM);
    }
    make_incidents(incs, 1);
    make_full(&s, &em, incs, 1);
    apply(&warm, &em, &json_bytes);
    model__match_release(&warm);

    size_t before = heap_in_use();
    struct model__match *ms = malloc(SIZE_MATCHES * sizeof(*ms));
    if (!ms) {
        die("malloc", -ENOMEM);
    }
    for (uint32_t i = 0; i < SIZE_MATCHES; i++) {
        s.msgnr = 1;
        snprintf(s.id, sizeof(s.id), "sr:match:%u", 1000000 + i);
        int rc = model__match_init(&ms[i], s.id);
        if (rc != 0) {
            die("model__match_init", rc);
        }
        make_incidents(incs, N_INC);
        make_full(&s, &em, incs, N_INC);
        apply(&ms[i], &em, &json_bytes);
        /* and a few ticks, as a live match has had */
        for (int t = 0; t < 3; t++) {
            struct event_match tick = make_tick(&s);
            apply(&ms[i], &tick, &json_bytes);
        }
    }
    size_t after = heap_in_use();
    if (ms[0].image->n_incidents != N_INC) {
        die("incidents", (int)ms[0].image->n_incidents);
    }
    printf("bench model_bytes_per_match_20_incidents %.0f B\n",
           (double)(after - before) / SIZE_MATCHES);
    for (uint32_t i = 0; i < SIZE_MATCHES; i++) {
        model__match_release(&ms[i]);
    }
    free(ms);
}

/* A full message listing many incidents, then one incident change: both
 * must stay linear in the list's length. */
static void bench_long_list(void)
{
    enum { N = 10000 };
    struct event_incident *incs = calloc(N, sizeof(*incs));
    char(*idbuf)[16] = calloc(N, sizeof(*idbuf));
    if (!incs || !idbuf) {
        die("calloc", -ENOMEM);
    }
    for (uint32_t k = 0; k < N; k++) {
        snprintf(idbuf[k], sizeof(idbuf[k]), "inc-%u", k);
        incs[k] = make_incident(k, EVENT_ACTION_INSERT);
        incs[k].id = idbuf[k];
    }
    struct sim s = {.id = "sr:match:77", .msgnr = 1};
    struct model__match m;
    if (model__match_init(&m, s.id) != 0) {
        die("model__match_init", -ENOMEM);
    }
    struct event_match em;
    uint64_t json_bytes = 0;
    make_full(&s, &em, incs, N);
    uint64_t start = now_ns();
    apply(&m, &em, &json_bytes);
    s.msgnr++; /* the same full again: every incident compared, none new */
    make_full(&s, &em, incs, N);
    apply(&m, &em, &json_bytes);
    uint64_t mid = now_ns();
    struct event_incident one = make_incident(N / 2, EVENT_ACTION_UPDATE);
    one.id = idbuf[N / 2];
    one.confirmed = 1 - one.confirmed;
    struct event_match delta = {.id = s.id,
                                .msgnr = ++s.msgnr,
                                .has_msgnr = true,
                                .incidents = &one,
                                .n_incidents = 1};
    apply(&m, &delta, &json_bytes);
    uint64_t end = now_ns();
    printf("bench model_full_10000_incidents_ms %.2f ms\n",
           (double)(mid - start) / 2e6);
    printf("bench model_incident_delta_10000_incidents_ms %.2f ms\n",
           (double)(end - mid) / 1e6);
    model__match_release(&m);
    free(idbuf);
    free(incs);
}

/* ---- with actors ----------------------------------------------------------
 */

#define ACTOR_MATCHES 200
#define FEEDERS       2
#define POOL_VARIANTS 32
#define ACTOR_UPDATES 2000000 /* in total, after the warm-up */
#define ACTOR_SIZE_N  20000
#define FEEDER_BATCH  256  /* elements a feeder routes per turn */
#define WINDOW        8192 /* elements a feeder has unacknowledged */
#define ACK_EVERY     512  /* the store sink acks a feeder this often */
#define SINK_MAILBOX  (1u << 20)

enum { B_GO = ACTOR_MSG_USER + 1, B_MORE, B_ACK };

static double wall_s(void)
{
    return (double)clock_ns(CLOCK_MONOTONIC) / 1e9;
}

/* A source: routes its pool round-robin, FEEDER_BATCH per turn, with at
 * most WINDOW elements not yet acknowledged by the store (the pipeline's
 * flow control: without it nothing bounds what waits in mailboxes). */
struct feeder {
    char source[16];
    uint64_t pid;
    struct event **pool;
    size_t n_pool;
    size_t next;
    uint64_t routed;
    _Atomic uint64_t acked; /* written by the store sink */
    uint64_t target;
};

static struct feeder feeders[FEEDERS];

struct ack_msg {
    struct actor_msg hdr; /* B_ACK */
    uint64_t count;
};

/* `store` and `notify`: count, answer load requests, release; the store
 * acks each feeder's elements as the real store acks events. */
struct sink {
    _Atomic uint64_t updates; /* MODEL_MSG_UPDATE received */
    uint64_t per_feeder[FEEDERS];
    bool acks;
};

static struct sink store_sink = {.acks = true}, notify_sink;

static int sink_init(struct actor_ctx *ctx, void *arg, void **state)
{
    (void)ctx;
    *state = arg;
    return 0;
}

static int sink_load(struct actor_ctx *ctx, struct store_load_req_msg *req)
{
    /* Nothing stored: every match starts empty. */
    struct store_loaded_msg *m = model_ev_nothing_stored();
    if (!m) {
        return -ENOMEM;
    }
    actor_send_or_free(ctx, req->reply_to, &m->hdr);
    return 0;
}

static int sink_ack(struct actor_ctx *ctx, struct sink *k,
                    const struct event *ev)
{
    for (int f = 0; f < FEEDERS; f++) {
        if (strcmp(ev->source, feeders[f].source) != 0) {
            continue;
        }
        if (++k->per_feeder[f] % ACK_EVERY != 0) {
            return 0;
        }
        struct ack_msg *a = actor_msg_new(sizeof(*a), B_ACK);
        if (!a) {
            return -ENOMEM;
        }
        a->count = k->per_feeder[f];
        actor_send_or_free(ctx, feeders[f].pid, &a->hdr);
        return 0;
    }
    return 0;
}

static int sink_handle(struct actor_ctx *ctx, void *state,
                       struct actor_msg *msg)
{
    struct sink *k = state;
    switch (msg->type) {
    case MODEL_MSG_UPDATE: {
        /* One writer: a plain increment published for the main thread. */
        atomic_store_explicit(
            &k->updates,
            atomic_load_explicit(&k->updates, memory_order_relaxed) + 1,
            memory_order_release);
        struct model_update_msg *m = (struct model_update_msg *)msg;
        return k->acks && m->ev ? sink_ack(ctx, k, m->ev) : 0;
    }
    case STORE_MSG_LOAD_REQ:
        return sink_load(ctx, (struct store_load_req_msg *)msg);
    default:
        return 0;
    }
}

static const struct actor_ops sink_ops = {
    .name = "sink",
    .init = sink_init,
    .handle = sink_handle,
};

static int feeder_pump(struct actor_ctx *ctx, struct feeder *f)
{
    uint64_t acked = atomic_load_explicit(&f->acked, memory_order_relaxed);
    int k = 0;
    for (; k < FEEDER_BATCH && f->routed < f->target &&
           f->routed - acked < WINDOW;
         k++) {
        int rc = model_route(ctx, f->pool[f->next], 0);
        if (rc == -EAGAIN) {
            return 0; /* RESUME comes */
        }
        if (rc != 0) {
            return rc;
        }
        f->next = (f->next + 1) % f->n_pool;
        f->routed++;
    }
    if (k == FEEDER_BATCH && f->routed < f->target) {
        /* Let the match actors run: go on in our next turn. */
        struct actor_msg *more = actor_msg_new(sizeof(*more), B_MORE);
        if (!more) {
            return -ENOMEM;
        }
        actor_send_or_free(ctx, actor_self(ctx), more);
    }
    return 0; /* else an ack or RESUME brings us back */
}

static int feeder_handle(struct actor_ctx *ctx, void *state,
                         struct actor_msg *msg)
{
    struct feeder *f = state;
    switch (msg->type) {
    case B_ACK:
        atomic_store_explicit(&f->acked, ((struct ack_msg *)msg)->count,
                              memory_order_relaxed);
        return feeder_pump(ctx, f);
    case B_GO:
    case B_MORE:
    case ACTOR_MSG_RESUME:
        return feeder_pump(ctx, f);
    default:
        return -EINVAL;
    }
}

static const struct actor_ops feeder_ops = {
    .name = "feeder",
    .init = sink_init,
    .handle = feeder_handle,
};

static uint64_t spawn_or_die(const struct actor_ops *ops, void *arg,
                             const char *name, uint32_t mailbox)
{
    struct actor_spawn how = {
        .ops = ops, .arg = arg, .name = name, .mailbox = mailbox};
    uint64_t pid;
    int rc = actor_spawn(&how, &pid);
    if (rc != 0) {
        die("actor_spawn", rc);
    }
    return pid;
}

static void send_or_die(uint64_t to, uint32_t type)
{
    struct actor_msg *m = actor_msg_new(sizeof(*m), type);
    if (!m || actor_send(NULL, to, m) != 0) {
        die("actor_send", -EIO);
    }
}

static void wait_updates(const struct sink *k, uint64_t n)
{
    while (atomic_load_explicit(&k->updates, memory_order_acquire) < n) {
        usleep(500);
    }
}

/* The runtime with @schedulers, the sinks and the model subtree. The
 * sinks run on the schedulers too: in production the store and notify
 * have threads of their own, so this is the harder case for the model. */
static uint64_t actors_up(unsigned schedulers)
{
    int rc =
        actor_runtime_start(&(struct actor_config){.schedulers = schedulers});
    if (rc != 0) {
        die("actor_runtime_start", rc);
    }
    atomic_store(&store_sink.updates, 0);
    atomic_store(&notify_sink.updates, 0);
    memset(store_sink.per_feeder, 0, sizeof(store_sink.per_feeder));
    spawn_or_die(&sink_ops, &store_sink, "store", SINK_MAILBOX);
    spawn_or_die(&sink_ops, &notify_sink, "notify", SINK_MAILBOX);
    static const struct model_config cfg = {.retention_ms = 60000};
    struct actor_child_spec spec;
    model_child_spec(&cfg, &spec);
    uint64_t model;
    rc = actor_sup_start(spec.sup, 0, &model);
    if (rc != 0) {
        die("actor_sup_start", rc);
    }
    while (!model_is_loaded()) {
        usleep(500);
    }
    return model;
}

static void actors_down(uint64_t model)
{
    struct actor_exit why = {.kind = ACTOR_EXIT_SHUTDOWN};
    actor_exit(NULL, model, &why);
    actor_wait(model, 10000, NULL);
    actor_runtime_stop();
}

/* Routes one element from outside the actors (a bound never reached:
 * a few per match). */
static void route_or_die(struct event_match *em)
{
    struct event *ev = model_ev_new("feed-0", 1, em, 1);
    if (!ev) {
        die("model_ev_new", -ENOMEM);
    }
    int rc = model_route(NULL, ev, 0);
    event_unref(ev);
    if (rc != 0) {
        die("model_route", rc);
    }
}

/* Each match is set up by a full message; each feeder gets a pool of
 * POOL_VARIANTS feed-like elements for each of its matches, round-robin. */
static void make_pools(void)
{
    struct event_incident incs[N_INC];
    struct event_match em;
    size_t per = ACTOR_MATCHES / FEEDERS;
    rng_state = 0xfeed;
    for (int f = 0; f < FEEDERS; f++) {
        struct feeder *fd = &feeders[f];
        *fd = (struct feeder){.n_pool = per * POOL_VARIANTS,
                              .target = ACTOR_UPDATES / FEEDERS};
        snprintf(fd->source, sizeof(fd->source), "feed-%d", f + 1);
        fd->pool = calloc(fd->n_pool, sizeof(struct event *));
        if (!fd->pool) {
            die("calloc", -ENOMEM);
        }
        for (size_t i = 0; i < per; i++) {
            struct sim s = {.msgnr = 1, .clock = (int32_t)rnd(90 * 60)};
            snprintf(s.id, sizeof(s.id), "sr:match:%zu", 770000 + f * per + i);
            make_incidents(incs, 10);
            make_full(&s, &em, incs, 10);
            em.has_msgnr = false;
            route_or_die(&em);
            s.next_inc = 10;
            for (size_t v = 0; v < POOL_VARIANTS; v++) {
                make_delta(&s, &em, incs);
                em.has_msgnr = false;
                fd->pool[v * per + i] = model_ev_new(fd->source, 1, &em, 1);
                if (!fd->pool[v * per + i]) {
                    die("model_ev_new", -ENOMEM);
                }
            }
        }
    }
}

/* Routes ACTOR_UPDATES elements through the actors on @schedulers
 * threads (@cores: "1core", "2cores", for the figures' names); prints the
 * rate and what it cost in CPU time. */
static void bench_actors_rate(unsigned schedulers, const char *cores)
{
    uint64_t model = actors_up(schedulers);
    make_pools();
    wait_updates(&store_sink, ACTOR_MATCHES);
    uint64_t base = ACTOR_MATCHES;
    for (int f = 0; f < FEEDERS; f++) {
        feeders[f].pid = spawn_or_die(&feeder_ops, &feeders[f], NULL, 0);
    }
    double start = wall_s();
    uint64_t cpu_start = clock_ns(CLOCK_PROCESS_CPUTIME_ID);
    for (int f = 0; f < FEEDERS; f++) {
        send_or_die(feeders[f].pid, B_GO);
    }
    wait_updates(&store_sink, base + ACTOR_UPDATES);
    double elapsed = wall_s() - start;
    uint64_t cpu = clock_ns(CLOCK_PROCESS_CPUTIME_ID) - cpu_start;
    printf("bench model_updates_per_s_%s_actors %.0f updates/s\n", cores,
           ACTOR_UPDATES / elapsed);
    /* What it cost, whatever else ran on the machine meanwhile: the
     * process's CPU time (the main thread sleeps), per update, and how
     * many cores it had on average. */
    printf("bench model_actors_%s_cpu_ns_per_update %.0f ns\n", cores,
           (double)cpu / ACTOR_UPDATES);
    printf("bench model_actors_%s_cores_used %.2f cores\n", cores,
           (double)cpu / 1e9 / elapsed);
    actors_down(model);
    for (int f = 0; f < FEEDERS; f++) {
        for (size_t k = 0; k < feeders[f].n_pool; k++) {
            event_unref(feeders[f].pool[k]);
        }
        free(feeders[f].pool);
    }
}

static void bench_actors_memory(void)
{
    uint64_t model = actors_up(2);
    struct event_incident incs[N_INC];
    struct event_match em;
    /* Warm up: the schedulers' JSON scratch and the first slot chunks are
     * not a match's memory. */
    struct sim w = {.id = "sr:match:0", .msgnr = 1};
    make_incidents(incs, N_INC);
    make_full(&w, &em, incs, N_INC);
    for (int k = 0; k < 64; k++) {
        snprintf(w.id, sizeof(w.id), "sr:warm:%d", k);
        route_or_die(&em);
    }
    wait_updates(&store_sink, 64);
    wait_updates(&notify_sink, 64);

    size_t before = heap_in_use();
    for (uint32_t i = 0; i < ACTOR_SIZE_N; i++) {
        struct sim s = {.msgnr = 1};
        snprintf(s.id, sizeof(s.id), "sr:match:%u", 2000000 + i);
        make_incidents(incs, N_INC);
        make_full(&s, &em, incs, N_INC);
        route_or_die(&em);
        for (int t = 0; t < 3; t++) {
            struct event_match tick = make_tick(&s);
            route_or_die(&tick);
        }
    }
    uint64_t total = 64 + 4ull * ACTOR_SIZE_N;
    wait_updates(&store_sink, total);
    wait_updates(&notify_sink, total);
    /* The sinks count before the runtime releases the message. */
    usleep(100000);
    size_t after = heap_in_use();
    printf("bench model_bytes_per_match_actor_20_incidents %.0f B\n",
           (double)(after - before) / ACTOR_SIZE_N);
    actors_down(model);
}

int main(void)
{
    /* MODEL_BENCH_ACTORS=1: only the actor rates (for perf record). */
    bool actors_only = getenv("MODEL_BENCH_ACTORS") != NULL;
    if (!actors_only) {
        bench_memory();
        bench_long_list();
        bench_updates();
        bench_actors_memory();
    }
    /* One scheduler: the model's path through the runtime without
     * cross-core traffic; then the goal's figure, two. */
    bench_actors_rate(1, "1core");
    bench_actors_rate(2, "2cores");
    return 0;
}
