/* tests/bench/model_bench.c - the match state machine's speed and size:
 * match updates applied per second on one core, JSON included, without
 * I/O; and the bytes one match holds with 20 incidents. */
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ingest/event.h"
#include "model/model_impl.h"
#include "model/update.h"

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
 * Memory: heap in use (mallinfo2) before and after building SIZE_MATCHES
 * matches with a fixture, status, clock, score and 20 incidents each,
 * their updates released: what the model keeps per match (the state, the
 * image, its texts and its incident list, with malloc's own overhead).
 */

#define MATCHES      1000
#define MIN_NS       1500000000ull
#define SIZE_MATCHES 20000
#define N_INC        20

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

    size_t before = mallinfo2().uordblks;
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
            struct event_match tick = {.id = s.id,
                                       .msgnr = ++s.msgnr,
                                       .has_msgnr = true,
                                       .parts = EVENT_HAS_CLOCK,
                                       .clock_seconds = ++s.clock,
                                       .clock_running = 1};
            apply(&ms[i], &tick, &json_bytes);
        }
    }
    size_t after = mallinfo2().uordblks;
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

int main(void)
{
    bench_memory();
    bench_long_list();
    bench_updates();
    return 0;
}
