/* tests/model_actor_test.c - the model's actors in manual mode: routing,
 * outcomes, back-pressure, rebuilds, feed state, retention and the
 * start-up load, against recorder actors registered as `store` and
 * `notify`. No threads: every run is deterministic. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
#include "tests/probe.h"

/* The element macros spell absent values once and override them per use. */
#if defined(__clang__)
#pragma clang diagnostic ignored "-Winitializer-overrides"
#else
#pragma GCC diagnostic ignored "-Woverride-init"
#endif

#define SRC   "feed-eu-1"
#define SRC_B "feed-us-1"

#define EM(idv, ...)                                                           \
    ((struct event_match){.id = (idv),                                         \
                          .clock_seconds = EVENT_ABSENT,                       \
                          .clock_running = EVENT_ABSENT,                       \
                          __VA_ARGS__})
#define NR(n) .msgnr = (n), .has_msgnr = true
#define CLOCK(s)                                                               \
    .parts = EVENT_HAS_CLOCK, .clock_seconds = (s), .clock_running = 1
#define PHASE(p) .parts = EVENT_HAS_STATUS, .phase = (p)
#define SCORE(h, a)                                                            \
    .parts = EVENT_HAS_SCORE, .score_home = (h), .score_away = (a)

enum {
    TEST_RELEASE = ACTOR_MSG_USER + 100, /* recorder: answer held requests */
    TEST_GO,                             /* feeder: start routing */
    TEST_BOGUS = 0x2ff,                  /* a type nobody handles */
};

static struct model_config cfg;

/* ---- recorders: `store`, `notify` and a snapshot asker --------------------
 */

struct entry {
    uint32_t type;     /* MODEL_MSG_UPDATE, MODEL_MSG_FEED_NOTICE,
                          STORE_MSG_LOAD_REQ */
    struct update *up; /* owned reference, or NULL */
    struct event *ev;  /* owned reference, or NULL */
    uint32_t index;
    uint8_t outcome;
    uint8_t state; /* a notice's */
    char text[80]; /* a load request's match id, a notice's source */
    uint64_t from;
};

struct recorder {
    struct entry *v;
    size_t n, cap;
    uint64_t pid;
    int resumes;
};

static struct recorder rec_store, rec_notify, rec_snap;

enum reply { R_NOTHING, R_HOLD, R_ROW, R_IMAGE, R_EAGAIN };

/* How `store` answers load requests. */
static struct {
    enum reply one; /* a request for one match */
    bool hold_all;  /* a request for every match waits for RELEASE */
    const struct store_match *rows;
    size_t n_rows;
    struct match_image *image; /* R_IMAGE: each reply gets a reference */
    uint64_t held_to[16];
    char held_id[16][80];
    size_t n_held;
} reply;

static void recorder_reset(struct recorder *r)
{
    for (size_t k = 0; k < r->n; k++) {
        update_unref(r->v[k].up);
        event_unref(r->v[k].ev);
    }
    free(r->v);
    *r = (struct recorder){0};
}

static struct entry *record(struct recorder *r, uint32_t type, uint64_t from)
{
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 64;
        r->v = realloc(r->v, r->cap * sizeof(*r->v));
        assert_non_null(r->v);
    }
    struct entry *e = &r->v[r->n++];
    *e = (struct entry){.type = type, .from = from};
    return e;
}

/* A load for the given rows (not copied: they are the test's statics). */
static struct store_load *load_new(const struct store_match *rows, size_t n)
{
    struct store_load *load =
        malloc(sizeof(*load) + n * sizeof(struct store_match));
    assert_non_null(load);
    struct store_match *m = (struct store_match *)(load + 1);
    for (size_t k = 0; k < n; k++) {
        m[k] = rows[k];
    }
    *load = (struct store_load){.matches = m, .n_matches = n};
    return load;
}

static struct store_loaded_msg *answer_for(const char *id)
{
    if (id[0] == '\0') {
        return store_loaded_msg_new(0, load_new(reply.rows, reply.n_rows),
                                    NULL);
    }
    switch (reply.one) {
    case R_ROW:
        for (size_t k = 0; k < reply.n_rows; k++) {
            if (strcmp(reply.rows[k].id, id) == 0) {
                return store_loaded_msg_new(0, load_new(&reply.rows[k], 1),
                                            NULL);
            }
        }
        return store_loaded_msg_new(0, load_new(NULL, 0), NULL);
    case R_IMAGE:
        return store_loaded_msg_new(0, NULL, match_image_ref(reply.image));
    case R_EAGAIN:
        return store_loaded_msg_new(-EAGAIN, NULL, NULL);
    default:
        return store_loaded_msg_new(0, load_new(NULL, 0), NULL);
    }
}

static void answer(struct actor_ctx *ctx, uint64_t to, const char *id)
{
    struct store_loaded_msg *m = answer_for(id);
    assert_non_null(m);
    actor_send_or_free(ctx, to, &m->hdr);
}

static int on_load_req(struct actor_ctx *ctx, struct recorder *r,
                       struct store_load_req_msg *req)
{
    struct entry *e = record(r, STORE_MSG_LOAD_REQ, req->hdr.from);
    snprintf(e->text, sizeof(e->text), "%s", req->match_id);
    bool all = req->match_id[0] == '\0';
    if ((all && reply.hold_all) || (!all && reply.one == R_HOLD)) {
        assert_true(reply.n_held < 16);
        reply.held_to[reply.n_held] = req->reply_to;
        snprintf(reply.held_id[reply.n_held], 80, "%s", req->match_id);
        reply.n_held++;
        return 0;
    }
    answer(ctx, req->reply_to, req->match_id);
    return 0;
}

static int recorder_handle(struct actor_ctx *ctx, void *state,
                           struct actor_msg *msg)
{
    struct recorder *r = state;
    switch (msg->type) {
    case MODEL_MSG_UPDATE: {
        struct model_update_msg *m = (struct model_update_msg *)msg;
        struct entry *e = record(r, msg->type, msg->from);
        e->up = m->up ? update_ref(m->up) : NULL;
        e->ev = m->ev ? event_ref(m->ev) : NULL;
        e->index = m->index;
        e->outcome = m->outcome;
        return 0;
    }
    case MODEL_MSG_FEED_NOTICE: {
        struct model_feed_notice_msg *m = (struct model_feed_notice_msg *)msg;
        struct entry *e = record(r, msg->type, msg->from);
        e->state = m->state;
        snprintf(e->text, sizeof(e->text), "%s", m->source);
        return 0;
    }
    case STORE_MSG_LOAD_REQ:
        return on_load_req(ctx, r, (struct store_load_req_msg *)msg);
    case TEST_RELEASE:
        for (size_t k = 0; k < reply.n_held; k++) {
            reply.hold_all = false;
            answer(ctx, reply.held_to[k], reply.held_id[k]);
        }
        reply.n_held = 0;
        return 0;
    case ACTOR_MSG_RESUME:
        r->resumes++;
        return 0;
    default:
        return -EINVAL;
    }
}

static int recorder_init(struct actor_ctx *ctx, void *arg, void **state)
{
    (void)ctx;
    *state = arg;
    return 0;
}

static const struct actor_ops recorder_ops = {
    .name = "recorder",
    .init = recorder_init,
    .handle = recorder_handle,
};

static void spawn_recorder(struct recorder *r, const char *name,
                           uint32_t mailbox)
{
    struct actor_spawn how = {
        .ops = &recorder_ops, .arg = r, .name = name, .mailbox = mailbox};
    assert_int_equal(actor_spawn(&how, &r->pid), 0);
}

/* Entries of @r of @type, for match @id (NULL: any). */
static size_t count(const struct recorder *r, uint32_t type, const char *id)
{
    size_t n = 0;
    for (size_t k = 0; k < r->n; k++) {
        const struct entry *e = &r->v[k];
        if (e->type != type) {
            continue;
        }
        const char *eid = e->up   ? e->up->image->id
                          : e->ev ? e->ev->matches[e->index].id
                                  : e->text;
        if (!id || strcmp(eid, id) == 0) {
            n++;
        }
    }
    return n;
}

/* The @i-th update entry of @r for match @id (0-based), or NULL. */
static const struct entry *nth_update(const struct recorder *r, const char *id,
                                      size_t i)
{
    for (size_t k = 0; k < r->n; k++) {
        const struct entry *e = &r->v[k];
        if (e->type != MODEL_MSG_UPDATE) {
            continue;
        }
        const char *eid = e->up   ? e->up->image->id
                          : e->ev ? e->ev->matches[e->index].id
                                  : "";
        if (strcmp(eid, id) == 0 && i-- == 0) {
            return e;
        }
    }
    return NULL;
}

/* ---- the model's pieces ----------------------------------------------------
 */

static const struct actor_sup_spec matches_spec = {
    .name = "model.matches",
    .strategy = ACTOR_DYNAMIC,
    .intensity = MODEL_MATCH_RESTARTS,
    .period_ms = MODEL_MATCH_PERIOD_MS,
};

static uint64_t matches_sup;

static void apply_config(void)
{
    struct actor_child_spec spec;
    assert_int_equal(model_child_spec(&cfg, &spec), 0);
}

static void start_matches(void)
{
    apply_config();
    assert_int_equal(actor_sup_start(&matches_spec, 0, &matches_sup), 0);
    actor_run_until_idle();
}

static void count_one(const struct actor_info *info, void *arg)
{
    if (strcmp(info->kind, "match") == 0) {
        (*(int *)arg)++;
    }
}

static int match_actors(void)
{
    int n = 0;
    actor_foreach(count_one, &n);
    return n;
}

static uint64_t pid_of(const char *id)
{
    char name[96];
    snprintf(name, sizeof(name), "match:%s", id);
    return actor_whereis(name);
}

static uint64_t metric(struct actor_metric *m)
{
    return actor_metric_value(m);
}

/* The value of the scorewire_model_matches gauge, as /metrics shows it. */
static long matches_gauge(void)
{
    struct actor_buf b;
    actor_buf_init(&b);
    assert_int_equal(actor_metric_render(&b), 0);
    const char *at = strstr(b.data, "\nscorewire_model_matches ");
    assert_non_null(at);
    long v = strtol(at + strlen("\nscorewire_model_matches "), NULL, 10);
    actor_buf_release(&b);
    return v;
}

/* Routes every element of a new event of one element @em, outside any
 * actor; the event is dropped after (the model keeps its references). */
static void route1_from(const char *source, uint64_t seq, struct event_match em)
{
    struct event *ev = model_ev_new(source, seq, &em, 1);
    assert_non_null(ev);
    assert_int_equal(model_route(NULL, ev, 0), 0);
    event_unref(ev);
}

static void route1(uint64_t seq, struct event_match em)
{
    route1_from(SRC, seq, em);
}

static void kill_pid(uint64_t pid, enum actor_exit_kind kind)
{
    struct actor_exit why = {.kind = kind};
    assert_int_equal(actor_exit(NULL, pid, &why), 0);
}

static void send_bogus(uint64_t pid)
{
    struct actor_msg *m = actor_msg_new(sizeof(*m), TEST_BOGUS);
    assert_int_equal(actor_send_or_free(NULL, pid, m), 0);
}

static void release_store(void)
{
    struct actor_msg *m = actor_msg_new(sizeof(*m), TEST_RELEASE);
    assert_int_equal(actor_send_or_free(NULL, rec_store.pid, m), 0);
    actor_run_until_idle();
}

/* The JSON of @up as text. */
static const char *json_of(const struct entry *e)
{
    assert_non_null(e);
    assert_non_null(e->up);
    return e->up->json;
}

/* ---- setup -----------------------------------------------------------------
 */

static int setup(void **state)
{
    (void)state;
    cfg = (struct model_config){.retention_ms = 60000};
    memset(&reply, 0, sizeof(reply));
    matches_sup = 0;
    probe_reset();
    return actor_runtime_start(&(struct actor_config){.manual = true});
}

static void stop_pid(uint64_t pid)
{
    if (pid && actor_is_alive(pid)) {
        kill_pid(pid, ACTOR_EXIT_SHUTDOWN);
        actor_run_until_idle();
        actor_advance_ms(10000);
        actor_run_until_idle();
    }
}

static int teardown(void **state)
{
    (void)state;
    actor_run_until_idle();
    stop_pid(matches_sup); /* matches first: they may still tell the store */
    stop_pid(rec_store.pid);
    stop_pid(rec_notify.pid);
    stop_pid(rec_snap.pid);
    actor_runtime_stop();
    recorder_reset(&rec_store);
    recorder_reset(&rec_notify);
    recorder_reset(&rec_snap);
    match_image_unref(reply.image);
    reply.image = NULL;
    return 0;
}

static void start_all(uint32_t store_mailbox, uint32_t notify_mailbox)
{
    spawn_recorder(&rec_store, "store", store_mailbox);
    spawn_recorder(&rec_notify, "notify", notify_mailbox);
    start_matches();
}

/* ---- routing and order ------------------------------------------------------
 */

/* A source-like actor: routes its events' elements in order, waiting for
 * RESUME after -EAGAIN, as ingest's source actor does. */
struct feeder {
    struct event **evs;
    size_t n;
    size_t k;   /* next event */
    uint32_t i; /* next element of it */
    int eagains;
    bool done;
};

static int feeder_pump(struct actor_ctx *ctx, struct feeder *f)
{
    while (f->k < f->n) {
        int rc = model_route(ctx, f->evs[f->k], f->i);
        if (rc == -EAGAIN) {
            f->eagains++;
            return 0;
        }
        if (rc != 0) {
            return rc;
        }
        if (++f->i == f->evs[f->k]->n_matches) {
            f->i = 0;
            f->k++;
        }
    }
    f->done = true;
    return 0;
}

static int feeder_handle(struct actor_ctx *ctx, void *state,
                         struct actor_msg *msg)
{
    switch (msg->type) {
    case TEST_GO:
    case ACTOR_MSG_RESUME:
        return feeder_pump(ctx, state);
    default:
        return -EINVAL;
    }
}

static const struct actor_ops feeder_ops = {
    .name = "feeder",
    .init = recorder_init,
    .handle = feeder_handle,
};

static uint64_t spawn_feeder(struct feeder *f)
{
    uint64_t pid;
    struct actor_spawn how = {.ops = &feeder_ops, .arg = f};
    assert_int_equal(actor_spawn(&how, &pid), 0);
    struct actor_msg *go = actor_msg_new(sizeof(*go), TEST_GO);
    assert_int_equal(actor_send_or_free(NULL, pid, go), 0);
    return pid;
}

#define N_EVENTS 120

static void test_route_order_under_backpressure(void **state)
{
    (void)state;
    cfg.match_mailbox = 4; /* a tiny mailbox: -EAGAIN every few sends */
    start_all(0, 0);
    static const char *const ids[] = {"m0", "m1", "m2"};
    struct model__match want[3];
    for (int m = 0; m < 3; m++) {
        assert_int_equal(model__match_init(&want[m], ids[m]), 0);
    }
    uint64_t msgnr[3] = {0};
    struct feeder f = {.n = N_EVENTS};
    f.evs = calloc(N_EVENTS, sizeof(*f.evs));
    assert_non_null(f.evs);
    for (int k = 0; k < N_EVENTS; k++) {
        /* One or two matches per event, each element its match's next. */
        struct event_match em[2];
        uint32_t n = k % 4 == 0 ? 2 : 1;
        for (uint32_t j = 0; j < n; j++) {
            int m = (k + (int)j) % 3;
            em[j] = EM(ids[m], NR(++msgnr[m]), CLOCK((int32_t)msgnr[m]));
            if (msgnr[m] % 5 == 0) {
                em[j].parts |= EVENT_HAS_SCORE;
                em[j].score_home = (uint32_t)msgnr[m] / 5;
            }
        }
        f.evs[k] = model_ev_new(SRC, (uint64_t)k + 1, em, n);
        assert_non_null(f.evs[k]);
        for (uint32_t j = 0; j < n; j++) {
            struct update *up;
            assert_int_equal(model__match_apply(&want[(k + (int)j) % 3],
                                                f.evs[k], j, 0, &up),
                             0);
            update_unref(up);
        }
    }
    spawn_feeder(&f);
    actor_run_until_idle();

    assert_true(f.done);
    assert_true(f.eagains > 0); /* the back-pressure path was taken */
    assert_int_equal(match_actors(), 3);
    assert_int_equal(count(&rec_store, STORE_MSG_LOAD_REQ, NULL), 3);
    for (int m = 0; m < 3; m++) {
        /* The store saw every element, applied, in the order routed;
         * notify every version once. */
        size_t n = count(&rec_store, MODEL_MSG_UPDATE, ids[m]);
        assert_int_equal(n, msgnr[m]);
        for (size_t v = 0; v < n; v++) {
            const struct entry *e = nth_update(&rec_store, ids[m], v);
            assert_int_equal(e->outcome, MODEL_APPLIED);
            assert_int_equal(e->up->image->version, v + 1);
            assert_int_equal(e->ev->matches[e->index].msgnr, v + 1);
            const struct entry *x = nth_update(&rec_notify, ids[m], v);
            assert_non_null(x);
            assert_int_equal(x->up->image->version, v + 1);
            assert_ptr_equal(x->up, e->up); /* one update, two receivers */
        }
        assert_null(nth_update(&rec_notify, ids[m], n));
        /* And the last state is the serial one. */
        struct actor_buf a, b;
        actor_buf_init(&a);
        actor_buf_init(&b);
        match_image_json(nth_update(&rec_store, ids[m], n - 1)->up->image, &a);
        match_image_json(want[m].image, &b);
        assert_string_equal(a.data, b.data);
        actor_buf_release(&a);
        actor_buf_release(&b);
        model__match_release(&want[m]);
    }
    for (int k = 0; k < N_EVENTS; k++) {
        event_unref(f.evs[k]);
    }
    free(f.evs);
}

static void test_route_invalid_and_without_model(void **state)
{
    (void)state;
    spawn_recorder(&rec_store, "store", 0);
    apply_config();
    struct event_match em = EM("m1", NR(1), CLOCK(1));
    struct event *ev = model_ev_new(SRC, 7, &em, 1);
    assert_non_null(ev);
    assert_int_equal(model_route(NULL, ev, 1), -EINVAL);
    /* No model.matches: the element is settled as lost. */
    uint64_t lost = metric(model__metrics()->lost);
    assert_int_equal(model_route(NULL, ev, 0), -ESRCH);
    actor_run_until_idle();
    assert_int_equal(metric(model__metrics()->lost), lost + 1);
    assert_int_equal(count(&rec_store, MODEL_MSG_UPDATE, "m1"), 1);
    assert_int_equal(rec_store.v[0].outcome, MODEL_LOST);
    assert_int_equal(rec_store.v[0].ev->seq, 7);
    assert_null(rec_store.v[0].up);
    event_unref(ev);
}

/* ---- outcomes --------------------------------------------------------------
 */

static void test_outcomes_applied_gap_duplicate(void **state)
{
    (void)state;
    start_all(0, 0);
    uint64_t gaps = metric(model__metrics()->gaps);
    uint64_t dups = metric(model__metrics()->duplicates);
    uint64_t updates = metric(model__metrics()->updates);
    route1(1, EM("m1", NR(1), .full = true, CLOCK(60)));
    route1(2, EM("m1", NR(3), CLOCK(61))); /* a gap */
    route1(3, EM("m1", NR(3), CLOCK(62))); /* a duplicate */
    route1(4, EM("m1", NR(2), CLOCK(63))); /* older: a duplicate */
    route1(5, EM("m1", NR(4), SCORE(1, 0)));
    actor_run_until_idle();

    static const uint8_t outcomes[] = {MODEL_APPLIED, MODEL_APPLIED,
                                       MODEL_DUPLICATE, MODEL_DUPLICATE,
                                       MODEL_APPLIED};
    static const uint64_t versions[] = {1, 2, 0, 0, 3};
    assert_int_equal(count(&rec_store, MODEL_MSG_UPDATE, "m1"), 5);
    for (size_t k = 0; k < 5; k++) {
        const struct entry *e = nth_update(&rec_store, "m1", k);
        assert_int_equal(e->outcome, outcomes[k]);
        assert_int_equal(e->ev->seq, k + 1);
        assert_int_equal(e->up ? e->up->image->version : 0, versions[k]);
    }
    assert_int_equal(metric(model__metrics()->gaps), gaps + 1);
    assert_int_equal(metric(model__metrics()->duplicates), dups + 2);
    assert_int_equal(metric(model__metrics()->updates), updates + 3);
    /* Notify: the full message as a snapshot, then deltas; the gap shows. */
    assert_int_equal(count(&rec_notify, MODEL_MSG_UPDATE, "m1"), 3);
    assert_int_equal(nth_update(&rec_notify, "m1", 0)->up->kind,
                     UPDATE_SNAPSHOT);
    assert_string_equal(json_of(nth_update(&rec_notify, "m1", 1)),
                        "{\"type\":\"delta\",\"id\":\"m1\",\"version\":2,"
                        "\"changes\":{\"clock\":{\"time\":\"01:01\","
                        "\"running\":true},\"gap\":true}}");
    assert_true(nth_update(&rec_notify, "m1", 2)->up->image->gap);
}

static void test_lost_when_match_dies_with_elements(void **state)
{
    (void)state;
    reply.one = R_HOLD;
    start_all(0, 0);
    uint64_t lost = metric(model__metrics()->lost);
    route1(1, EM("m1", NR(1), CLOCK(1)));
    actor_run_until_idle(); /* loading: the element is held */
    uint64_t pid = pid_of("m1");
    assert_true(pid != 0);
    assert_int_equal(count(&rec_store, MODEL_MSG_UPDATE, NULL), 0);

    kill_pid(pid, ACTOR_EXIT_KILLED);
    route1(2, EM("m1", NR(2), CLOCK(2))); /* queued behind the kill */
    route1(3, EM("m1", NR(3), CLOCK(3)));
    actor_run_until_idle();

    /* Held and queued alike come back lost, so their events complete. */
    assert_int_equal(count(&rec_store, MODEL_MSG_UPDATE, "m1"), 3);
    for (size_t k = 0; k < 3; k++) {
        const struct entry *e = nth_update(&rec_store, "m1", k);
        assert_int_equal(e->outcome, MODEL_LOST);
        assert_int_equal(e->ev->seq, k + 1);
        assert_null(e->up);
    }
    assert_int_equal(metric(model__metrics()->lost), lost + 3);
    /* The supervisor restarted it; it asked the store again. */
    uint64_t again = pid_of("m1");
    assert_true(again != 0 && again != pid);
    assert_int_equal(count(&rec_store, STORE_MSG_LOAD_REQ, "m1"), 2);
    release_store(); /* the dead one's reply goes nowhere */
    route1(4, EM("m1", NR(4), CLOCK(4)));
    actor_run_until_idle();
    const struct entry *e = nth_update(&rec_store, "m1", 3);
    assert_int_equal(e->outcome, MODEL_APPLIED);
    assert_int_equal(e->up->image->version, 1);
}

/* A match that dies with elements while the store's mailbox is full still
 * reports every one: there is no later turn to retry from, and an outcome
 * refused would leave its event (and its source's acks) stuck for good. */
static void test_lost_reported_past_a_full_store(void **state)
{
    (void)state;
    reply.one = R_HOLD;
    start_all(1, 0); /* the store takes one message at a time */
    route1(1, EM("m1", NR(1), CLOCK(1)));
    actor_run_until_idle(); /* loading: the element is held */
    uint64_t pid = pid_of("m1");
    assert_true(pid != 0);
    kill_pid(pid, ACTOR_EXIT_KILLED);
    route1(2, EM("m1", NR(2), CLOCK(2)));
    route1(3, EM("m1", NR(3), CLOCK(3)));
    actor_run_until_idle();
    assert_int_equal(count(&rec_store, MODEL_MSG_UPDATE, "m1"), 3);
    for (size_t k = 0; k < 3; k++) {
        assert_int_equal(nth_update(&rec_store, "m1", k)->outcome, MODEL_LOST);
    }
    release_store();
}

/* ---- back-pressure from the store and notify --------------------------------
 */

static void test_outbox_when_store_full(void **state)
{
    (void)state;
    start_all(2, 0); /* the store takes two messages at a time */
    struct actor_stats before;
    actor_stats_get(&before);
    for (uint64_t k = 1; k <= 20; k++) {
        route1(k, EM("m1", NR(k), CLOCK((int32_t)k)));
    }
    actor_run_until_idle();
    struct actor_stats after;
    actor_stats_get(&after);
    assert_true(after.full > before.full); /* the store said -EAGAIN */
    assert_int_equal(count(&rec_store, MODEL_MSG_UPDATE, "m1"), 20);
    for (size_t k = 0; k < 20; k++) {
        const struct entry *e = nth_update(&rec_store, "m1", k);
        assert_int_equal(e->outcome, MODEL_APPLIED);
        assert_int_equal(e->ev->seq, k + 1);
        assert_int_equal(e->up->image->version, k + 1);
    }
    /* Notify had room for all of it. */
    assert_int_equal(count(&rec_notify, MODEL_MSG_UPDATE, "m1"), 20);
}

static void test_notify_full_gets_snapshot_after_resume(void **state)
{
    (void)state;
    start_all(0, 2); /* notify takes two messages at a time */
    for (uint64_t k = 1; k <= 10; k++) {
        route1(k, EM("m1", NR(k), CLOCK((int32_t)k)));
    }
    actor_run_until_idle();
    /* Two deltas got in, the rest were dropped for one snapshot. */
    assert_int_equal(count(&rec_notify, MODEL_MSG_UPDATE, "m1"), 3);
    assert_int_equal(nth_update(&rec_notify, "m1", 0)->up->kind, UPDATE_DELTA);
    assert_int_equal(nth_update(&rec_notify, "m1", 1)->up->image->version, 2);
    const struct entry *snap = nth_update(&rec_notify, "m1", 2);
    assert_int_equal(snap->up->kind, UPDATE_SNAPSHOT);
    assert_int_equal(snap->up->image->version, 10);
    assert_string_equal(
        json_of(snap),
        "{\"type\":\"snapshot\",\"match\":{\"id\":\"m1\",\"version\":10,"
        "\"clock\":{\"time\":\"00:10\",\"running\":true},\"incidents\":[],"
        "\"feed\":\"live\",\"gap\":false}}");
    /* The store lost nothing. */
    assert_int_equal(count(&rec_store, MODEL_MSG_UPDATE, "m1"), 10);
    /* The next change is a delta again. */
    route1(11, EM("m1", NR(11), CLOCK(11)));
    actor_run_until_idle();
    assert_int_equal(nth_update(&rec_notify, "m1", 3)->up->kind, UPDATE_DELTA);
}

/* ---- rebuilds ------------------------------------------------------------ */

static const struct match_incident m7_incidents[] = {
    {.id = "7-1",
     .type = "goal",
     .player = "B. Saka",
     .minute = 12,
     .stoppage = EVENT_ABSENT,
     .team = EVENT_TEAM_HOME,
     .confirmed = 1,
     .version = 20},
    {.id = "7-2",
     .type = "yellow_card",
     .player = "C. Palmer",
     .minute = 30,
     .stoppage = EVENT_ABSENT,
     .team = EVENT_TEAM_AWAY,
     .confirmed = 0,
     .version = 33},
};

#define M7_FIXTURE                                                             \
    .sport = "soccer", .competition = "Premier League", .home = "Arsenal",     \
    .away = "Chelsea", .start = "2026-11-21T15:00:00Z"

static const struct store_match m7_row = {.id = "m7",
                                          .version = 41,
                                          .msgnr = 41,
                                          .has_msgnr = true,
                                          .source = SRC,
                                          M7_FIXTURE,
                                          .phase = "second_half",
                                          .clock_seconds = 66 * 60,
                                          .clock_running = 1,
                                          .has_score = true,
                                          .score_home = 2,
                                          .score_away = 1,
                                          .feed = MATCH_FEED_LIVE,
                                          .updated_ms = 1795273445123,
                                          .incidents = m7_incidents,
                                          .n_incidents = 2};

#define M7_REST                                                                \
    "\"fixture\":{\"sport\":\"soccer\",\"competition\":\"Premier League\","    \
    "\"home\":\"Arsenal\",\"away\":\"Chelsea\","                               \
    "\"start\":\"2026-11-21T15:00:00Z\"},"                                     \
    "\"status\":{\"phase\":\"second_half\"},"

#define M7_INCIDENTS                                                           \
    "\"incidents\":[{\"id\":\"7-1\",\"type\":\"goal\",\"team\":\"home\","      \
    "\"minute\":12,\"player\":\"B. Saka\",\"confirmed\":true},"                \
    "{\"id\":\"7-2\",\"type\":\"yellow_card\",\"team\":\"away\","              \
    "\"minute\":30,\"player\":\"C. Palmer\",\"confirmed\":false}],"

static void test_rebuild_from_row_then_pending_image(void **state)
{
    (void)state;
    reply.one = R_ROW;
    reply.rows = &m7_row;
    reply.n_rows = 1;
    start_all(0, 0);
    route1(100, EM("m7", NR(42), CLOCK(66 * 60 + 1)));
    actor_run_until_idle();
    /* Notify first gets the stored state, then the change on top. */
    assert_string_equal(json_of(nth_update(&rec_notify, "m7", 0)),
                        "{\"type\":\"snapshot\",\"match\":{\"id\":\"m7\","
                        "\"version\":41," M7_REST
                        "\"clock\":{\"time\":\"66:00\",\"running\":true},"
                        "\"score\":{\"home\":2,\"away\":1}," M7_INCIDENTS
                        "\"feed\":\"live\",\"gap\":false}}");
    assert_string_equal(json_of(nth_update(&rec_notify, "m7", 1)),
                        "{\"type\":\"delta\",\"id\":\"m7\",\"version\":42,"
                        "\"changes\":{\"clock\":{\"time\":\"66:01\","
                        "\"running\":true}}}");
    const struct entry *e = nth_update(&rec_store, "m7", 0);
    assert_int_equal(e->up->image->version, 42);
    /* A duplicate of what the row holds is still one. */
    route1(101, EM("m7", NR(41), CLOCK(1)));
    actor_run_until_idle();
    assert_int_equal(nth_update(&rec_store, "m7", 1)->outcome, MODEL_DUPLICATE);

    /* It crashes; the store still holds version 42 in its batch. */
    reply.one = R_IMAGE;
    reply.image = match_image_ref(e->up->image);
    uint64_t pid = pid_of("m7");
    send_bogus(pid);
    actor_run_until_idle();
    assert_true(pid_of("m7") != pid);
    assert_int_equal(count(&rec_store, STORE_MSG_LOAD_REQ, "m7"), 2);
    const struct entry *snap = nth_update(&rec_notify, "m7", 2);
    assert_int_equal(snap->up->kind, UPDATE_SNAPSHOT);
    assert_ptr_equal(snap->up->image, reply.image); /* adopted as is */
    route1(102, EM("m7", NR(43), SCORE(3, 1)));
    actor_run_until_idle();
    e = nth_update(&rec_store, "m7", 2);
    assert_int_equal(e->outcome, MODEL_APPLIED);
    assert_int_equal(e->up->image->version, 43);
    assert_int_equal(e->up->image->n_incidents, 2);
}

/* The store cannot say (the database is down, nothing newer pending): the
 * match waits, holding the element, and asks again each second. Starting
 * empty would number versions from 1 again, below the stored 41. */
static void test_waits_while_store_cannot_say(void **state)
{
    (void)state;
    reply.one = R_EAGAIN;
    reply.rows = &m7_row;
    reply.n_rows = 1;
    start_all(0, 0);
    route1(1, EM("m7", NR(42), CLOCK(66 * 60 + 1)));
    actor_run_until_idle();
    assert_int_equal(count(&rec_store, STORE_MSG_LOAD_REQ, "m7"), 1);
    assert_int_equal(count(&rec_notify, MODEL_MSG_UPDATE, "m7"), 0);
    assert_int_equal(count(&rec_store, MODEL_MSG_UPDATE, "m7"), 0);
    actor_advance_ms(999);
    actor_run_until_idle();
    assert_int_equal(count(&rec_store, STORE_MSG_LOAD_REQ, "m7"), 1);
    actor_advance_ms(1);
    actor_run_until_idle();
    assert_int_equal(count(&rec_store, STORE_MSG_LOAD_REQ, "m7"), 2);
    assert_int_equal(count(&rec_notify, MODEL_MSG_UPDATE, "m7"), 0);
    /* The database is back: the stored state, then the change on top. */
    reply.one = R_ROW;
    actor_advance_ms(1000);
    actor_run_until_idle();
    assert_int_equal(count(&rec_store, STORE_MSG_LOAD_REQ, "m7"), 3);
    const struct entry *snap = nth_update(&rec_notify, "m7", 0);
    assert_int_equal(snap->up->kind, UPDATE_SNAPSHOT);
    assert_int_equal(snap->up->image->version, 41);
    const struct entry *e = nth_update(&rec_store, "m7", 0);
    assert_int_equal(e->outcome, MODEL_APPLIED);
    assert_int_equal(e->up->image->version, 42);
    assert_false(e->up->image->gap);
    assert_int_equal(count(&rec_store, MODEL_MSG_UPDATE, "m7"), 1);
}

static void test_asks_again_without_answer(void **state)
{
    (void)state;
    reply.one = R_HOLD; /* the store says nothing, as if a reply was lost */
    start_all(0, 0);
    route1(1, EM("q", NR(1), CLOCK(1)));
    actor_run_until_idle();
    assert_int_equal(count(&rec_store, STORE_MSG_LOAD_REQ, "q"), 1);
    actor_advance_ms(999);
    actor_run_until_idle();
    assert_int_equal(count(&rec_store, STORE_MSG_LOAD_REQ, "q"), 1);
    actor_advance_ms(1);
    actor_run_until_idle();
    assert_int_equal(count(&rec_store, STORE_MSG_LOAD_REQ, "q"), 2);
    actor_advance_ms(1999); /* it waits twice as long the next time */
    actor_run_until_idle();
    assert_int_equal(count(&rec_store, STORE_MSG_LOAD_REQ, "q"), 2);
    actor_advance_ms(1);
    actor_run_until_idle();
    assert_int_equal(count(&rec_store, STORE_MSG_LOAD_REQ, "q"), 3);
    /* Three answers come: the first makes it live, the others are late
     * twins; the element is applied once. */
    release_store();
    assert_int_equal(count(&rec_store, MODEL_MSG_UPDATE, "q"), 1);
    assert_int_equal(nth_update(&rec_store, "q", 0)->up->image->version, 1);
    actor_advance_ms(60000);
    actor_run_until_idle();
    assert_int_equal(count(&rec_store, STORE_MSG_LOAD_REQ, "q"), 3);
}

/* ---- feed state ---------------------------------------------------------- */

static void test_feed_state(void **state)
{
    (void)state;
    cfg.match_mailbox = 2;
    start_all(0, 0);
    route1_from(SRC, 1, EM("m1", NR(1), CLOCK(1)));
    route1_from(SRC, 2, EM("m2", NR(1), CLOCK(1)));
    route1_from(SRC_B, 1, EM("m3", NR(1), CLOCK(1)));
    actor_run_until_idle();
    size_t store_before = count(&rec_store, MODEL_MSG_UPDATE, NULL);

    static const char *const ids[] = {"m1", "m2", "m3", "not-a-match"};
    size_t next = 0;
    assert_int_equal(model_feed(NULL, SRC, MATCH_FEED_STALE, ids, 4, &next), 0);
    assert_int_equal(next, 4);
    actor_run_until_idle();
    /* m1 and m2 came from SRC: a new version each; m3 did not. */
    for (int m = 0; m < 2; m++) {
        const struct entry *e = nth_update(&rec_notify, ids[m], 1);
        assert_non_null(e);
        assert_int_equal(e->up->image->feed, MATCH_FEED_STALE);
        assert_string_equal(strstr(e->up->json, "\"changes\""),
                            "\"changes\":{\"feed\":\"stale\"}}");
        const struct entry *s = nth_update(&rec_store, ids[m], 1);
        assert_null(s->ev); /* not caused by an event */
        assert_int_equal(s->outcome, MODEL_APPLIED);
    }
    assert_null(nth_update(&rec_notify, "m3", 1));
    assert_int_equal(count(&rec_store, MODEL_MSG_UPDATE, NULL),
                     store_before + 2);
    /* One notice for the page (it may come before the matches' own). */
    assert_int_equal(count(&rec_notify, MODEL_MSG_FEED_NOTICE, SRC), 1);
    for (size_t k = 0; k < rec_notify.n; k++) {
        if (rec_notify.v[k].type == MODEL_MSG_FEED_NOTICE) {
            assert_int_equal(rec_notify.v[k].state, MATCH_FEED_STALE);
        }
    }

    /* Without ids: every match actor is asked. */
    assert_int_equal(model_feed(NULL, SRC_B, MATCH_FEED_OFFLINE, NULL, 0, NULL),
                     0);
    actor_run_until_idle();
    assert_int_equal(nth_update(&rec_notify, "m3", 1)->up->image->feed,
                     MATCH_FEED_OFFLINE);
    assert_null(nth_update(&rec_notify, "m1", 2));

    /* A full mailbox stops the walk where it is, to be resumed. */
    route1_from(SRC, 3, EM("m2", NR(2), CLOCK(2)));
    route1_from(SRC, 4, EM("m2", NR(3), CLOCK(3)));
    next = 0;
    static const char *const order[] = {"m1", "m2", "m3"};
    assert_int_equal(model_feed(NULL, SRC, MATCH_FEED_OFFLINE, order, 3, &next),
                     -EAGAIN);
    assert_int_equal(next, 1);
    actor_run_until_idle();
    assert_int_equal(model_feed(NULL, SRC, MATCH_FEED_OFFLINE, order, 3, &next),
                     0);
    assert_int_equal(next, 3);
    actor_run_until_idle();
    /* Applied after the elements routed before it: m2 ends offline. */
    const struct entry *last = nth_update(
        &rec_notify, "m2", count(&rec_notify, MODEL_MSG_UPDATE, "m2") - 1);
    assert_int_equal(last->up->image->feed, MATCH_FEED_OFFLINE);
    assert_int_equal(last->up->image->msgnr, 3);
}

/* ---- retention ----------------------------------------------------------- */

static void test_retention(void **state)
{
    (void)state;
    start_all(0, 0);
    route1(1, EM("ended", NR(1), PHASE("second_half")));
    route1(2, EM("ended", NR(2), PHASE("ended")));
    route1(3, EM("live", NR(1), PHASE("second_half")));
    route1(4, EM("corrected", NR(1), PHASE("cancelled")));
    actor_run_until_idle();
    assert_int_equal(match_actors(), 3);
    long gauge = matches_gauge();

    actor_advance_ms(30000);
    actor_run_until_idle();
    /* A change to a finished match restarts its period. */
    route1(5, EM("corrected", NR(2), SCORE(0, 3)));
    actor_run_until_idle();

    actor_advance_ms(31000); /* 61 s since the first two ended */
    actor_run_until_idle();
    assert_int_equal(pid_of("ended"), 0);
    assert_true(pid_of("live") != 0);
    assert_true(pid_of("corrected") != 0);
    assert_int_equal(match_actors(), 2);
    assert_int_equal(matches_gauge(), gauge - 1);
    /* Stopped normally: not restarted, no new load request. */
    assert_int_equal(count(&rec_store, STORE_MSG_LOAD_REQ, "ended"), 1);

    actor_advance_ms(30000);
    actor_run_until_idle();
    assert_int_equal(pid_of("corrected"), 0);
    actor_advance_ms(600000);
    actor_run_until_idle();
    assert_true(pid_of("live") != 0);

    /* A late element brings a retired match back, from the store. */
    route1(6, EM("ended", NR(3), SCORE(1, 1)));
    actor_run_until_idle();
    assert_true(pid_of("ended") != 0);
    assert_int_equal(count(&rec_store, STORE_MSG_LOAD_REQ, "ended"), 2);
}

/* An unfinished match with no change for the idle retention retires too
 * (its provider abandoned it without an end); changes keep it, and a
 * finished phase takes the short retention. */
static void test_idle_retention(void **state)
{
    (void)state;
    cfg.idle_ms = 3600000;
    start_all(0, 0);
    route1(1, EM("idle", NR(1), PHASE("interrupted")));
    route1(2, EM("busy", NR(1), PHASE("second_half")));
    actor_run_until_idle();
    for (int k = 0; k < 5; k++) { /* busy ticks every 20 minutes */
        actor_advance_ms(1200000);
        route1(3 + k, EM("busy", NR(2 + k), CLOCK(60 * k)));
        actor_run_until_idle();
    }
    /* 100 minutes on: idle is gone, busy changed 0 minutes ago */
    assert_int_equal(pid_of("idle"), 0);
    assert_true(pid_of("busy") != 0);
    actor_advance_ms(3599000);
    actor_run_until_idle();
    assert_true(pid_of("busy") != 0);
    actor_advance_ms(1000);
    actor_run_until_idle();
    assert_int_equal(pid_of("busy"), 0);
    /* Back on an element, from the store, and ended: the short one. */
    route1(9, EM("busy", NR(7), PHASE("ended")));
    actor_run_until_idle();
    assert_true(pid_of("busy") != 0);
    actor_advance_ms(60000);
    actor_run_until_idle();
    assert_int_equal(pid_of("busy"), 0);
}

/* A late correction queued behind the retention timer's message: the
 * actor handles it instead of ending with it unread (freed, it would be
 * reported lost and its event acked: a correction gone for good). */
static void test_retention_with_mail_waiting(void **state)
{
    (void)state;
    start_all(0, 0);
    route1(1, EM("r1", NR(1), PHASE("ended")));
    actor_run_until_idle();
    uint64_t pid = pid_of("r1");
    uint64_t lost = metric(model__metrics()->lost);
    struct event_match em = EM("r1", NR(2), SCORE(1, 0));
    struct event *ev = model_ev_new(SRC, 2, &em, 1);
    struct feeder f = {.evs = &ev, .n = 1};
    actor_advance_ms(60000); /* the timer's message is queued first */
    spawn_feeder(&f);        /* then a source routes the correction */
    actor_run_until_idle();
    assert_true(f.done);
    event_unref(ev);
    assert_int_equal(metric(model__metrics()->lost), lost);
    assert_int_equal(pid_of("r1"), pid);
    assert_int_equal(count(&rec_store, MODEL_MSG_UPDATE, "r1"), 2);
    const struct entry *e = nth_update(&rec_store, "r1", 1);
    assert_int_equal(e->outcome, MODEL_APPLIED);
    assert_int_equal(e->up->image->score_home, 1);
    /* A retention period after the correction, it ends. */
    actor_advance_ms(60000);
    actor_run_until_idle();
    assert_int_equal(pid_of("r1"), 0);
    assert_int_equal(count(&rec_store, STORE_MSG_LOAD_REQ, "r1"), 1);
}

/* ---- the loader ---------------------------------------------------------- */

static const struct store_match stored[] = {
    {.id = "s1",
     .version = 3,
     .source = SRC,
     .phase = "first_half",
     .clock_seconds = EVENT_ABSENT,
     .feed = MATCH_FEED_LIVE,
     .updated_ms = 1},
    {.id = "s2",
     .version = 9,
     .msgnr = 9,
     .has_msgnr = true,
     .source = SRC,
     .clock_seconds = 600,
     .clock_running = 1,
     .feed = MATCH_FEED_STALE,
     .updated_ms = 1},
    {.id = "s3",
     .version = 1,
     .source = SRC_B,
     .phase = "halftime",
     .clock_seconds = EVENT_ABSENT,
     .gap = true,
     .updated_ms = 1},
};

static struct probe_cfg after_cfg = {.rec = "after"};

static void loader_pid(const struct actor_info *info, void *arg)
{
    if (strcmp(info->kind, "model.loader") == 0) {
        *(uint64_t *)arg = info->pid;
    }
}

static void test_loader_starts_stored_matches_before_ack(void **state)
{
    (void)state;
    reply.hold_all = true;
    reply.one = R_ROW;
    reply.rows = stored;
    reply.n_rows = 3;
    spawn_recorder(&rec_store, "store", 0);
    spawn_recorder(&rec_notify, "notify", 0);
    struct actor_child_spec children[2];
    assert_int_equal(model_child_spec(&cfg, &children[0]), 0);
    children[1] = (struct actor_child_spec){
        .id = "after",
        .start = {.ops = &probe_ops, .arg = &after_cfg},
        .restart = ACTOR_PERMANENT,
        .shutdown_ms = 1000};
    const struct actor_sup_spec root = {.strategy = ACTOR_REST_FOR_ONE,
                                        .intensity = 3,
                                        .period_ms = 60000,
                                        .children = children,
                                        .n_children = 2};
    uint64_t sup;
    assert_int_equal(actor_sup_start(&root, 0, &sup), 0);
    actor_run_until_idle();
    /* The loader waits for the store: nothing after the model started. */
    assert_false(model_is_loaded());
    assert_int_equal(probe_rec("after")->inits, 0);
    assert_int_equal(match_actors(), 0);
    assert_int_equal(count(&rec_store, STORE_MSG_LOAD_REQ, ""), 1);

    release_store();
    assert_true(model_is_loaded());
    assert_int_equal(match_actors(), 3);
    assert_int_equal(probe_rec("after")->inits, 1);
    /* Each started with its row: no question to the store, a snapshot
     * for notify at the stored version. */
    assert_int_equal(count(&rec_store, STORE_MSG_LOAD_REQ, NULL), 1);
    for (size_t k = 0; k < 3; k++) {
        const struct entry *e = nth_update(&rec_notify, stored[k].id, 0);
        assert_non_null(e);
        assert_int_equal(e->up->kind, UPDATE_SNAPSHOT);
        assert_int_equal(e->up->image->version, stored[k].version);
        assert_int_equal(e->up->image->feed, stored[k].feed);
        assert_int_equal(e->up->image->gap, stored[k].gap);
    }
    /* Dedupe resumes from the stored msgnr. */
    route1(1, EM("s2", NR(9), CLOCK(601)));
    actor_run_until_idle();
    assert_int_equal(nth_update(&rec_store, "s2", 0)->outcome, MODEL_DUPLICATE);

    /* The loader crashes: one_for_all restarts the model, and the matches
     * start again from the rows the store answers with (its newest). */
    uint64_t loader = 0;
    actor_foreach(loader_pid, &loader);
    assert_true(loader != 0);
    reply.hold_all = true;
    send_bogus(loader);
    actor_run_until_idle();
    assert_false(model_is_loaded());
    release_store();
    assert_true(model_is_loaded());
    assert_int_equal(match_actors(), 3);
    assert_int_equal(count(&rec_store, STORE_MSG_LOAD_REQ, ""), 2);
    assert_int_equal(count(&rec_store, STORE_MSG_LOAD_REQ, NULL), 2);
    for (size_t k = 0; k < 3; k++) {
        const struct entry *e = nth_update(&rec_notify, stored[k].id, 1);
        assert_non_null(e);
        assert_int_equal(e->up->image->version, stored[k].version);
    }
    stop_pid(sup);
    assert_false(model_is_loaded());
    assert_int_equal(match_actors(), 0);
}

/* ---- snapshots on request ------------------------------------------------ */

static void test_snapshot_all(void **state)
{
    (void)state;
    reply.one = R_HOLD;
    start_all(0, 0);
    spawn_recorder(&rec_snap, "asker", 0);
    route1(1, EM("a", NR(1), CLOCK(1)));
    route1(2, EM("b", NR(1), CLOCK(2)));
    route1(3, EM("c", NR(1), CLOCK(3)));
    actor_run_until_idle();
    release_store();
    route1(4, EM("d", NR(1), CLOCK(4))); /* d stays loading */
    actor_run_until_idle();

    /* "c" is killed with its request queued: its free answers. */
    kill_pid(pid_of("c"), ACTOR_EXIT_KILLED);
    assert_int_equal(model_snapshot_all(NULL, rec_snap.pid), 4);
    actor_run_until_idle();
    /* "d" answers once it has its state and its held element applied. */
    release_store();
    assert_int_equal(count(&rec_snap, MODEL_MSG_UPDATE, NULL), 4);
    int with_state = 0;
    for (size_t k = 0; k < rec_snap.n; k++) {
        const struct entry *e = &rec_snap.v[k];
        if (e->up) {
            assert_int_equal(e->up->kind, UPDATE_SNAPSHOT);
            assert_true(strcmp(e->up->image->id, "a") == 0 ||
                        strcmp(e->up->image->id, "b") == 0 ||
                        strcmp(e->up->image->id, "d") == 0);
            with_state++;
        }
    }
    assert_int_equal(with_state, 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_route_order_under_backpressure,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_route_invalid_and_without_model,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_outcomes_applied_gap_duplicate,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_lost_reported_past_a_full_store,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_lost_when_match_dies_with_elements,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_outbox_when_store_full, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_notify_full_gets_snapshot_after_resume, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_rebuild_from_row_then_pending_image, setup, teardown),
        cmocka_unit_test_setup_teardown(test_waits_while_store_cannot_say,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_asks_again_without_answer, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_feed_state, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retention, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idle_retention, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retention_with_mail_waiting, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_loader_starts_stored_matches_before_ack, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_all, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
