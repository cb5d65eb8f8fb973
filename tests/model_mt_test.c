/* tests/model_mt_test.c - the model's actors on real schedulers: several
 * source actors route many events for many matches at once, through tiny
 * mailboxes; every match must apply its elements in its source's order
 * and end in the state a serial run of the same elements gives. */
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>

#include <cmocka.h>

#include "actor/actor.h"
#include "ingest/event.h"
#include "model/model.h"
#include "model/model_impl.h"
#include "model/update.h"
#include "store/store.h"
#include "tests/model_ev.h"

/*
 * DESIGN
 * The oracle is the state machine itself, run serially on the test's
 * thread over the same events in each source's order: what the actors
 * add (routing, mailboxes, back-pressure, two schedulers, sources that
 * interleave) must change nothing but timing. The state machine's own
 * rules are checked against an independent model in model_prop_test.
 * `store` and `notify` are recorder actors that check, as they receive,
 * that each match's versions and msgnrs come one after the other.
 */

#define SOURCES         4
#define MATCHES_PER_SRC 25
#define MATCHES         (SOURCES * MATCHES_PER_SRC)
#define EVENTS_PER_SRC  1500
#define MAX_PER_EVENT   3
#define SEND_BATCH      32
#define WAIT_LIMIT_S    120 /* a hang guard, not a speed check */

enum { T_GO = ACTOR_MSG_USER + 1, T_MORE };

/* ---- the feed ------------------------------------------------------------ */

static const char *const players[] = {"B. Saka",   "M. Odegaard", "D. Rice",
                                      "C. Palmer", "R. James",    "N. Jackson"};
static const char *const phases[] = {"first_half", "halftime", "second_half",
                                     "ended"};
static int n_phases = 3; /* 4 in the retirement run: "ended" comes and goes */

struct gen {
    char id[16];
    uint64_t msgnr;
    int32_t clock;
    uint32_t home, away;
    uint32_t next_inc;
    int phase;
};

static uint64_t rng = 0x5eed;

static uint32_t rnd(uint32_t n)
{
    uint64_t z = (rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return (uint32_t)((z ^ (z >> 31)) % n);
}

/* Scratch for one element's incidents and their ids (copied by
 * model_ev_new). */
struct scratch {
    struct event_incident inc[3];
    char ids[3][24];
};

static struct event_incident incident(struct scratch *sc, int k,
                                      const struct gen *g, uint32_t n,
                                      enum event_action action)
{
    snprintf(sc->ids[k], sizeof(sc->ids[k]), "%s-%u", g->id, n);
    struct event_incident in = {.id = sc->ids[k],
                                .minute = EVENT_ABSENT,
                                .stoppage = EVENT_ABSENT,
                                .confirmed = EVENT_ABSENT,
                                .action = (uint8_t)action};
    if (action == EVENT_ACTION_INSERT) {
        in.type = n % 3 ? "yellow_card" : "goal";
        in.player = players[n % 6];
        in.team = (int8_t)(1 + n % 2);
        in.minute = g->clock / 60;
        in.confirmed = 0;
    }
    return in;
}

/* The next element of match @g: ticks mostly, goals, cards,
 * confirmations, deletions, a phase, now and then a full message. */
static struct event_match gen_next(struct gen *g, struct scratch *sc)
{
    g->clock += 10;
    struct event_match em = {.id = g->id,
                             .msgnr = ++g->msgnr,
                             .has_msgnr = true,
                             .parts = EVENT_HAS_CLOCK,
                             .clock_seconds = g->clock,
                             .clock_running = 1};
    uint32_t r = rnd(100);
    if (r < 55) {
        return em;
    }
    if (r < 65) {
        em.parts |= EVENT_HAS_SCORE;
        if (rnd(2)) {
            g->home++;
        } else {
            g->away++;
        }
        em.score_home = g->home;
        em.score_away = g->away;
        sc->inc[0] = incident(sc, 0, g, g->next_inc++, EVENT_ACTION_INSERT);
        em.incidents = sc->inc;
        em.n_incidents = 1;
    } else if (r < 75) {
        sc->inc[0] = incident(sc, 0, g, g->next_inc++, EVENT_ACTION_INSERT);
        em.incidents = sc->inc;
        em.n_incidents = 1;
    } else if (r < 82 && g->next_inc > 0) {
        sc->inc[0] = incident(sc, 0, g, rnd(g->next_inc), EVENT_ACTION_UPDATE);
        sc->inc[0].confirmed = 1;
        em.incidents = sc->inc;
        em.n_incidents = 1;
    } else if (r < 86 && g->next_inc > 0) {
        sc->inc[0] = incident(sc, 0, g, rnd(g->next_inc), EVENT_ACTION_DELETE);
        em.incidents = sc->inc;
        em.n_incidents = 1;
    } else if (r < 93) {
        g->phase = (g->phase + 1) % n_phases;
        em.parts |= EVENT_HAS_STATUS;
        em.phase = phases[g->phase];
    } else {
        /* A resync: the whole state, with the last few incidents. */
        em.full = true;
        em.parts |= EVENT_HAS_FIXTURE | EVENT_HAS_STATUS | EVENT_HAS_SCORE;
        em.fixture = (struct event_fixture){.sport = "soccer",
                                            .competition = "Test League",
                                            .home = "Home FC",
                                            .away = "Away FC",
                                            .start = "2026-11-21T15:00:00Z"};
        em.phase = phases[g->phase];
        em.score_home = g->home;
        em.score_away = g->away;
        uint32_t n = g->next_inc < 3 ? g->next_inc : 3;
        for (uint32_t k = 0; k < n; k++) {
            sc->inc[k] = incident(sc, (int)k, g, g->next_inc - 1 - k,
                                  EVENT_ACTION_INSERT);
        }
        em.incidents = sc->inc;
        em.n_incidents = n;
    }
    return em;
}

/* ---- sources ---------------------------------------------------------------
 */

struct source {
    char name[16];
    struct event **evs;
    size_t n;
    size_t k;
    uint32_t i;
    _Atomic int failed; /* a route error other than -EAGAIN */
};

static struct source sources[SOURCES];

static int pump_batch = SEND_BATCH;
static unsigned
    pump_pause_us; /* between batches: gaps that let matches retire */

static int source_pump(struct actor_ctx *ctx, struct source *s)
{
    if (pump_pause_us) {
        usleep(pump_pause_us);
    }
    for (int b = 0; b < pump_batch && s->k < s->n; b++) {
        int rc = model_route(ctx, s->evs[s->k], s->i);
        if (rc == -EAGAIN) {
            return 0; /* RESUME from that match */
        }
        if (rc != 0) {
            atomic_store(&s->failed, rc);
            return 0;
        }
        if (++s->i == s->evs[s->k]->n_matches) {
            s->i = 0;
            s->k++;
        }
    }
    if (s->k < s->n) {
        /* Interleave with everyone else: go on in a later turn. */
        struct actor_msg *more = actor_msg_new(sizeof(*more), T_MORE);
        return more ? actor_send_or_free(ctx, actor_self(ctx), more) == -ENOMEM
                          ? -ENOMEM
                          : 0
                    : -ENOMEM;
    }
    return 0;
}

static int source_handle(struct actor_ctx *ctx, void *state,
                         struct actor_msg *msg)
{
    switch (msg->type) {
    case T_GO:
    case T_MORE:
    case ACTOR_MSG_RESUME:
        return source_pump(ctx, state);
    default:
        return -EINVAL;
    }
}

static int plain_init(struct actor_ctx *ctx, void *arg, void **state)
{
    (void)ctx;
    *state = arg;
    return 0;
}

static const struct actor_ops source_ops = {
    .name = "source",
    .init = plain_init,
    .handle = source_handle,
};

/* ---- recorders
 * --------------------------------------------------------------- */

struct seen {
    uint64_t version;          /* last version seen */
    uint64_t msgnr;            /* last msgnr seen (store: from the event) */
    struct match_image *image; /* last one (owned reference) */
};

struct recorder {
    _Atomic uint64_t updates; /* written by the recorder only */
    _Atomic uint64_t errors;
    struct seen seen[MATCHES];
    bool is_store;
    /* replies that met a full mailbox, sent again on RESUME, as the store
     * does */
    struct store_loaded_msg *later[MATCHES];
    uint64_t later_to[MATCHES];
    size_t n_later;
};

static struct recorder rec_store = {.is_store = true}, rec_notify;
static bool answer_with_image; /* the store answers with its newest image */
static _Atomic uint64_t loads; /* load requests the store answered */

static int match_index(const char *id)
{
    int n = -1;
    if (sscanf(id, "mt:%d", &n) != 1 || n < 0 || n >= MATCHES) {
        return -1;
    }
    return n;
}

static void bad(struct recorder *r)
{
    atomic_fetch_add(&r->errors, 1);
}

static void on_update(struct recorder *r, const struct model_update_msg *m)
{
    if (!m->up || m->outcome != MODEL_APPLIED) {
        bad(r); /* no duplicates and no losses in this run */
        /* but the element is done: counted, so the wait ends */
        atomic_fetch_add(&r->updates, 1);
        return;
    }
    const struct match_image *img = m->up->image;
    int x = match_index(img->id);
    if (x < 0) {
        bad(r);
        return;
    }
    struct seen *s = &r->seen[x];
    if (!r->is_store && m->up->kind == UPDATE_SNAPSHOT &&
        img->version == s->version && img->msgnr == s->msgnr) {
        return; /* a restarted match says where it stands */
    }
    /* Every version once, in order: the order the source routed. */
    if (img->version != s->version + 1 || img->msgnr != s->msgnr + 1) {
        bad(r);
    }
    if (r->is_store &&
        (!m->ev || m->ev->matches[m->index].msgnr != img->msgnr)) {
        bad(r);
    }
    s->version = img->version;
    s->msgnr = img->msgnr;
    match_image_unref(s->image);
    s->image = match_image_ref(m->up->image);
    atomic_store_explicit(
        &r->updates,
        atomic_load_explicit(&r->updates, memory_order_relaxed) + 1,
        memory_order_release);
}

static void reply(struct actor_ctx *ctx, struct recorder *r, uint64_t to,
                  struct store_loaded_msg *m)
{
    int rc = actor_send(ctx, to, &m->hdr);
    if (rc == -EAGAIN && r->n_later < MATCHES) {
        r->later[r->n_later] = m;
        r->later_to[r->n_later++] = to;
    } else if (rc != 0) {
        actor_msg_free(&m->hdr);
    }
}

static int on_load(struct actor_ctx *ctx, struct recorder *r,
                   struct store_load_req_msg *req)
{
    /* Nothing stored: every match is new. Retiring, a match comes back
     * from the newest state the store has, as the real one's batch keeps
     * it. */
    atomic_fetch_add(&loads, 1);
    int x = match_index(req->match_id);
    struct match_image *img = answer_with_image && x >= 0 && r->seen[x].image
                                  ? match_image_ref(r->seen[x].image)
                                  : NULL;
    struct store_loaded_msg *m =
        img ? store_loaded_msg_new(0, NULL, img) : model_ev_nothing_stored();
    if (!m) {
        match_image_unref(img);
        return -ENOMEM;
    }
    reply(ctx, r, req->reply_to, m);
    return 0;
}

static void on_resume(struct actor_ctx *ctx, struct recorder *r)
{
    size_t n = r->n_later;
    r->n_later = 0;
    for (size_t k = 0; k < n; k++) {
        reply(ctx, r, r->later_to[k], r->later[k]);
    }
}

static int recorder_handle(struct actor_ctx *ctx, void *state,
                           struct actor_msg *msg)
{
    struct recorder *r = state;
    switch (msg->type) {
    case MODEL_MSG_UPDATE:
        on_update(r, (struct model_update_msg *)msg);
        return 0;
    case STORE_MSG_LOAD_REQ:
        return on_load(ctx, r, (struct store_load_req_msg *)msg);
    case ACTOR_MSG_RESUME:
        on_resume(ctx, r);
        return 0;
    default:
        bad(r);
        return 0;
    }
}

static const struct actor_ops recorder_ops = {
    .name = "recorder",
    .init = plain_init,
    .handle = recorder_handle,
};

/* ---- the test
 * ------------------------------------------------------------------ */

static uint64_t spawn(const struct actor_ops *ops, void *arg, const char *name,
                      uint32_t mailbox)
{
    struct actor_spawn how = {
        .ops = ops, .arg = arg, .name = name, .mailbox = mailbox};
    uint64_t pid;
    assert_int_equal(actor_spawn(&how, &pid), 0);
    return pid;
}

static void stop(uint64_t pid)
{
    struct actor_exit why = {.kind = ACTOR_EXIT_SHUTDOWN};
    actor_exit(NULL, pid, &why);
    assert_true(actor_wait(pid, 30000, NULL));
}

static bool wait_count(const _Atomic uint64_t *n, uint64_t want)
{
    for (int k = 0; k < WAIT_LIMIT_S * 1000; k++) {
        if (atomic_load_explicit(n, memory_order_acquire) >= want) {
            return true;
        }
        usleep(1000);
    }
    return false;
}

/* The whole run; @retire: matches end now and then ("ended" for a while,
 * a 1 ms retention), so their actors retire while elements are routed to
 * them and come back from the store's image: not one element may be lost
 * or reordered on the way. */
static void run(bool retire)
{
    n_phases = retire ? 4 : 3;
    pump_batch = retire ? 4 : SEND_BATCH;
    pump_pause_us = retire ? 1000 : 0;
    answer_with_image = retire;
    atomic_store(&loads, 0);
    memset(&rec_store.seen, 0, sizeof(rec_store.seen));
    memset(&rec_notify.seen, 0, sizeof(rec_notify.seen));
    atomic_store(&rec_store.updates, 0);
    atomic_store(&rec_notify.updates, 0);
    uint64_t lost0 = 0;
    /* The feed, and the serial run that says how it must end. */
    struct gen gens[MATCHES];
    struct model__match want[MATCHES];
    for (int m = 0; m < MATCHES; m++) {
        gens[m] = (struct gen){.clock = (int32_t)rnd(2700)};
        snprintf(gens[m].id, sizeof(gens[m].id), "mt:%d", m);
        assert_int_equal(model__match_init(&want[m], gens[m].id), 0);
    }
    uint64_t elements = 0;
    for (int s = 0; s < SOURCES; s++) {
        struct source *src = &sources[s];
        snprintf(src->name, sizeof(src->name), "src-%d", s);
        src->k = 0;
        src->i = 0;
        atomic_store(&src->failed, 0);
        src->n = EVENTS_PER_SRC;
        src->evs = calloc(src->n, sizeof(*src->evs));
        assert_non_null(src->evs);
        for (size_t e = 0; e < src->n; e++) {
            struct event_match ems[MAX_PER_EVENT];
            struct scratch sc[MAX_PER_EVENT];
            int picked[MAX_PER_EVENT];
            uint32_t n = 1 + rnd(MAX_PER_EVENT);
            for (uint32_t j = 0; j < n; j++) {
                int m;
                bool again;
                do { /* distinct matches of this source */
                    m = s * MATCHES_PER_SRC + (int)rnd(MATCHES_PER_SRC);
                    again = false;
                    for (uint32_t i = 0; i < j; i++) {
                        again |= picked[i] == m;
                    }
                } while (again);
                picked[j] = m;
                ems[j] = gen_next(&gens[m], &sc[j]);
            }
            src->evs[e] = model_ev_new(src->name, e + 1, ems, n);
            assert_non_null(src->evs[e]);
            for (uint32_t j = 0; j < n; j++) {
                struct update *up;
                int rc = model__match_apply(&want[picked[j]], src->evs[e], j, 0,
                                            &up);
                assert_int_equal(rc, 0);
                update_unref(up);
            }
            elements += n;
        }
    }

    assert_int_equal(
        actor_runtime_start(&(struct actor_config){.schedulers = 2}), 0);
    uint64_t store = spawn(&recorder_ops, &rec_store, "store", 1u << 20);
    uint64_t notify = spawn(&recorder_ops, &rec_notify, "notify", 1u << 20);
    /* Tiny match mailboxes: the sources meet -EAGAIN all the time. */
    const struct model_config cfg = {.match_mailbox = 8,
                                     .retention_ms = retire ? 1 : 0};
    struct actor_child_spec spec;
    assert_int_equal(model_child_spec(&cfg, &spec), 0);
    uint64_t model;
    assert_int_equal(actor_sup_start(spec.sup, 0, &model), 0);
    for (int k = 0; k < 10000 && !model_is_loaded(); k++) {
        usleep(1000);
    }
    assert_true(model_is_loaded());
    lost0 =
        model__metrics()->lost ? actor_metric_value(model__metrics()->lost) : 0;

    uint64_t pids[SOURCES];
    for (int s = 0; s < SOURCES; s++) {
        pids[s] = spawn(&source_ops, &sources[s], NULL, 0);
    }
    for (int s = 0; s < SOURCES; s++) {
        struct actor_msg *go = actor_msg_new(sizeof(*go), T_GO);
        assert_int_equal(actor_send_or_free(NULL, pids[s], go), 0);
    }
    bool all = wait_count(&rec_store.updates, elements) &&
               wait_count(&rec_notify.updates, elements);
    if (!all) { /* say where it stands before the test fails */
        fprintf(stderr, "store %llu, notify %llu of %llu elements\n",
                (unsigned long long)atomic_load(&rec_store.updates),
                (unsigned long long)atomic_load(&rec_notify.updates),
                (unsigned long long)elements);
        for (int s = 0; s < SOURCES; s++) {
            fprintf(stderr, "source %d: event %zu of %zu, error %d\n", s,
                    sources[s].k, sources[s].n,
                    atomic_load(&sources[s].failed));
        }
    }
    assert_true(all);
    for (int s = 0; s < SOURCES; s++) {
        assert_int_equal(atomic_load(&sources[s].failed), 0);
    }

    assert_int_equal(actor_metric_value(model__metrics()->lost), lost0);
    if (retire) {
        /* Retirements happened (a match's first load is one per match). */
        assert_true(atomic_load(&loads) > MATCHES);
        fprintf(stderr, "%llu loads for %d matches\n",
                (unsigned long long)atomic_load(&loads), MATCHES);
    }

    /* The admin view, from this plain thread: every live match, in id
     * order (retired ones are not live). */
    struct actor_buf got, expect;
    actor_buf_init(&got);
    actor_buf_init(&expect);
    assert_int_equal(model_snapshot_json(&got, 30000), 0);
    const struct match_image *sorted[MATCHES];
    for (int m = 0; m < MATCHES; m++) {
        sorted[m] = want[m].image;
    }
    for (int a = 1; a < MATCHES; a++) { /* ids sort as text */
        for (int b = a; b > 0 && strcmp(sorted[b - 1]->id, sorted[b]->id) > 0;
             b--) {
            const struct match_image *t = sorted[b];
            sorted[b] = sorted[b - 1];
            sorted[b - 1] = t;
        }
    }
    actor_buf_char(&expect, '[');
    for (int m = 0; m < MATCHES; m++) {
        if (m > 0) {
            actor_buf_char(&expect, ',');
        }
        match_image_json(sorted[m], &expect);
    }
    actor_buf_char(&expect, ']');
    if (!retire) {
        assert_string_equal(got.data, expect.data);
    }

    for (int s = 0; s < SOURCES; s++) {
        stop(pids[s]);
    }
    stop(model);
    stop(store);
    stop(notify);
    actor_runtime_stop(); /* joins the schedulers: their writes are ours */

    assert_int_equal(atomic_load(&rec_store.errors), 0);
    assert_int_equal(atomic_load(&rec_notify.errors), 0);
    for (int m = 0; m < MATCHES; m++) {
        struct actor_buf a, b;
        actor_buf_init(&a);
        actor_buf_init(&b);
        assert_non_null(rec_notify.seen[m].image);
        match_image_json(rec_notify.seen[m].image, &a);
        match_image_json(want[m].image, &b);
        assert_string_equal(a.data, b.data);
        assert_int_equal(rec_store.seen[m].version, want[m].image->version);
        actor_buf_release(&a);
        actor_buf_release(&b);
        match_image_unref(rec_store.seen[m].image);
        match_image_unref(rec_notify.seen[m].image);
        model__match_release(&want[m]);
    }
    actor_buf_release(&got);
    actor_buf_release(&expect);
    for (int s = 0; s < SOURCES; s++) {
        for (size_t e = 0; e < sources[s].n; e++) {
            event_unref(sources[s].evs[e]);
        }
        free(sources[s].evs);
    }
}

static void test_many_sources_many_matches(void **state)
{
    (void)state;
    run(false);
}

static void test_retirements_amid_routes(void **state)
{
    (void)state;
    run(true);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_many_sources_many_matches),
        cmocka_unit_test(test_retirements_amid_routes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
