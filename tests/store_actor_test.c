/* tests/store_actor_test.c - the store actor's handlers, in manual mode,
 * against a real throwaway PostgreSQL; and its back-pressure with threads. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>

#include <cmocka.h>

#include "ingest/event.h"
#include "ingest/ingest_impl.h"
#include "model/model_impl.h"
#include "store/store_impl.h"
#include "tests/pgq.h"
#include "tests/pgtemp.h"

/*
 * DESIGN
 * The store is spawned without a thread of its own (manual mode runs every
 * actor on the test's thread, so handlers run in a known order), against a
 * real cluster that the tests stop and start. Its inputs are the real
 * messages: events parsed by ingest's parser, updates made by the model's
 * own pure code (model__match_apply), so events, images and their
 * references are the ones the daemon passes. Its outputs are watched by a
 * recorder actor registered as `source:<name>` (acks, with the database's state
 * at the moment each one is handled) or used as a requester (loads), by the
 * database, by the metrics and by the log.
 *
 * The back-pressure test needs the store's own loop, so it runs the
 * runtime with threads and waits (with a deadline) for what must happen.
 */

static struct pgtemp cluster;

#define BASE_MS 1795000000000LL

/* ---- events -------------------------------------------------------------- */

static struct ingest__parser *parser;

/*
 * A new event @seq of @source, parsed by ingest from its XML: one element
 * per id in @ids, each moving the clock and the score; @incident: each also
 * inserts an incident.
 */
static struct event *make_event(const char *source, uint64_t seq,
                                const char *const *ids, uint32_t n,
                                bool incident)
{
    struct actor_buf x;
    actor_buf_init(&x);
    actor_buf_printf(&x, "<event seq=\"%llu\">", (unsigned long long)seq);
    for (uint32_t i = 0; i < n; i++) {
        actor_buf_printf(&x,
                         "<match id=\"%s\"><clock time=\"%02u:%02u\" "
                         "running=\"1\"/><score home=\"%u\" away=\"1\"/>",
                         ids[i], (unsigned)(seq % 5400 / 60),
                         (unsigned)(seq % 60), (unsigned)(seq % 7));
        if (incident) {
            actor_buf_printf(&x,
                             "<incident id=\"i-%llu-%u\" type=\"goal\" "
                             "team=\"home\" minute=\"10\" confirmed=\"1\"/>",
                             (unsigned long long)seq, i);
        }
        actor_buf_str(&x, "</match>");
    }
    actor_buf_str(&x, "</event>");
    assert_int_equal(x.err, 0);
    const struct ingest__doc doc = {.data = x.data,
                                    .len = x.len,
                                    .received_ms = BASE_MS + (int64_t)seq,
                                    .source = source};
    struct ingest__result res;
    assert_int_equal(ingest__parse(parser, &doc, &res), 0);
    assert_int_equal(res.kind, INGEST__DOC_EVENT);
    struct event *ev = res.event;
    res.event = NULL;
    ingest__result_release(&res);
    actor_buf_release(&x);
    return ev;
}

/* ---- the model's side ---------------------------------------------------- */

struct test_match {
    char id[32];
    struct model__match m;
};

static struct test_match matches[8];
static size_t n_matches;

static struct model__match *match_of(const char *id)
{
    for (size_t i = 0; i < n_matches; i++) {
        if (strcmp(matches[i].id, id) == 0) {
            return &matches[i].m;
        }
    }
    assert_true(n_matches < sizeof(matches) / sizeof(matches[0]));
    struct test_match *tm = &matches[n_matches++];
    snprintf(tm->id, sizeof(tm->id), "%s", id);
    assert_int_equal(model__match_init(&tm->m, id), 0);
    return &tm->m;
}

static void matches_release(void)
{
    for (size_t i = 0; i < n_matches; i++) {
        model__match_release(&matches[i].m);
    }
    n_matches = 0;
}

/* ---- the store ----------------------------------------------------------- */

static struct store_config cfg;
static uint64_t store_pid;

static void store_spawn(void)
{
    struct actor_spawn how = {
        .ops = &store_ops, .arg = &cfg, .name = "store", .mailbox = 4096};
    assert_int_equal(actor_spawn(&how, &store_pid), 0);
    actor_run_until_idle();
}

static void store_stop(void)
{
    if (store_pid && actor_is_alive(store_pid)) {
        struct actor_exit why = {.kind = ACTOR_EXIT_SHUTDOWN};
        actor_exit(NULL, store_pid, &why);
        actor_run_until_idle();
    }
    assert_false(actor_is_alive(store_pid));
    store_pid = 0;
}

static bool store_may_be_gone; /* sends may find it dead */

static void send_store(struct actor_msg *m)
{
    assert_non_null(m);
    if (store_may_be_gone) {
        actor_send_or_free(NULL, store_pid, m);
        return;
    }
    assert_int_equal(actor_send(NULL, store_pid, m), 0);
}

static void send_event(struct event *ev)
{
    send_store(&store_event_msg_new(ev)->hdr);
}

/* Element @i of @ev applied by the model, its outcome sent to the store. */
static void send_applied(struct event *ev, uint32_t i)
{
    struct update *up = NULL;
    int rc = model__match_apply(match_of(ev->matches[i].id), ev, i,
                                BASE_MS + (int64_t)ev->seq, &up);
    assert_true(rc == 0 || rc == MODEL__GAP);
    send_store(&model_update_msg_new(up, ev, i, MODEL_APPLIED)->hdr);
    update_unref(up);
}

/* Element @i of @ev came back from the model without a change. */
static void send_outcome(struct event *ev, uint32_t i,
                         enum model_outcome outcome)
{
    send_store(&model_update_msg_new(NULL, ev, i, outcome)->hdr);
}

/* An event and all its elements, as a source and the match actors send
 * them. */
static void feed(const char *source, uint64_t seq, const char *const *ids,
                 uint32_t n, bool incident)
{
    struct event *ev = make_event(source, seq, ids, n, incident);
    send_event(ev);
    for (uint32_t i = 0; i < n; i++) {
        send_applied(ev, i);
    }
    event_unref(ev);
}

static const char *const one[] = {"m:1"};
static const char *const two[] = {"m:1", "m:2"};

/* ---- the recorder: a source actor, or someone asking for loads ----------- */

#define MAX_RECORDS 64

struct ack_rec {
    uint64_t seq;
    uint64_t pending_seq;
    long long db_acked; /* source_offsets when the ack was handled */
};

struct recorder {
    const char *source; /* acks: the source it stands for; NULL: none */
    bool check_db;      /* read source_offsets at each ack (manual mode) */
    pthread_mutex_t lock;
    struct ack_rec acks[MAX_RECORDS];
    int n_acks;
    struct store_loaded_msg *loaded[MAX_RECORDS]; /* kept replies */
    int n_loaded;
    int fillers;
};

enum { FILLER = ACTOR_MSG_USER + 1 };

static int rec_init(struct actor_ctx *ctx, void *arg, void **state)
{
    (void)ctx;
    *state = arg;
    return 0;
}

static int rec_handle(struct actor_ctx *ctx, void *state, struct actor_msg *msg)
{
    (void)ctx;
    struct recorder *r = state;
    int rc = 0;
    pthread_mutex_lock(&r->lock);
    switch (msg->type) {
    case STORE_MSG_ACK: {
        const struct store_ack_msg *m = (const struct store_ack_msg *)msg;
        assert_true(r->n_acks < MAX_RECORDS);
        assert_string_equal(m->source, r->source);
        struct ack_rec *a = &r->acks[r->n_acks++];
        a->seq = m->seq;
        a->pending_seq = m->pending_seq;
        a->db_acked = r->check_db ? pgq_int("SELECT coalesce((SELECT "
                                            "acked_seq FROM source_offsets "
                                            "WHERE source = '%s'), 0)",
                                            r->source)
                                  : -1;
        break;
    }
    case STORE_MSG_LOADED:
        assert_true(r->n_loaded < MAX_RECORDS);
        r->loaded[r->n_loaded++] = (struct store_loaded_msg *)msg;
        rc = ACTOR_KEPT;
        break;
    case FILLER:
        r->fillers++;
        break;
    default:
        break;
    }
    pthread_mutex_unlock(&r->lock);
    return rc;
}

static void rec_stop(struct actor_ctx *ctx, void *state,
                     const struct actor_exit *why)
{
    (void)ctx;
    (void)state;
    (void)why;
}

static const struct actor_ops rec_ops = {
    .name = "recorder",
    .init = rec_init,
    .handle = rec_handle,
    .stop = rec_stop,
};

static struct recorder recs[3];
static uint64_t rec_pids[3];

/* Starts recorder @i, registered `source:@source` (or unnamed). */
static struct recorder *recorder(int i, const char *source, uint32_t mailbox)
{
    struct recorder *r = &recs[i];
    r->source = source;
    r->check_db = true;
    char name[64];
    snprintf(name, sizeof(name), "source:%s", source ? source : "");
    struct actor_spawn how = {.ops = &rec_ops,
                              .arg = r,
                              .name = source ? name : NULL,
                              .mailbox = mailbox};
    assert_int_equal(actor_spawn(&how, &rec_pids[i]), 0);
    actor_run_until_idle();
    return r;
}

static int n_acks(struct recorder *r)
{
    pthread_mutex_lock(&r->lock);
    int n = r->n_acks;
    pthread_mutex_unlock(&r->lock);
    return n;
}

/* The seq of the last ack @r got; 0: none yet. */
static uint64_t last_seq(struct recorder *r)
{
    pthread_mutex_lock(&r->lock);
    uint64_t seq = r->n_acks ? r->acks[r->n_acks - 1].seq : 0;
    pthread_mutex_unlock(&r->lock);
    return seq;
}

static const struct ack_rec *last_ack(struct recorder *r)
{
    assert_true(r->n_acks > 0);
    return &r->acks[r->n_acks - 1];
}

/* Asks the store for @match_id's state (NULL: every match) on behalf of
 * recorder @r; returns the reply once it came, or NULL. */
static struct store_loaded_msg *ask_load(int i, const char *match_id)
{
    struct recorder *r = &recs[i];
    int before = r->n_loaded;
    send_store(&store_load_req_msg_new(rec_pids[i], match_id)->hdr);
    actor_run_until_idle();
    return r->n_loaded > before ? r->loaded[r->n_loaded - 1] : NULL;
}

/* ---- logs and metrics ---------------------------------------------------- */

static int log_fd = -1;

/* Lines of the log so far that contain @what. */
static int log_count(const char *what)
{
    static char text[1 << 16];
    ssize_t n = pread(log_fd, text, sizeof(text) - 1, 0);
    assert_true(n >= 0);
    text[n] = '\0';
    int count = 0;
    for (const char *p = text; (p = strstr(p, what)); p += strlen(what)) {
        count++;
    }
    return count;
}

/* The first integer after @key= in the log, or -1. */
static long long log_value(const char *key)
{
    static char text[1 << 16];
    ssize_t n = pread(log_fd, text, sizeof(text) - 1, 0);
    assert_true(n >= 0);
    text[n] = '\0';
    char pat[64];
    snprintf(pat, sizeof(pat), "%s=", key);
    const char *p = strstr(text, pat);
    if (!p) {
        return -1;
    }
    p += strlen(pat);
    if (*p == '"') {
        p++;
    }
    return atoll(p);
}

static uint64_t metric(const char *name, const char *labels)
{
    struct actor_metric *m = actor_metric_counter(name, "", labels);
    if (!m) {
        m = actor_metric_gauge(name, "", labels);
    }
    assert_non_null(m);
    return actor_metric_value(m);
}

static struct actor_metric *gauge(const char *name)
{
    struct actor_metric *m = actor_metric_gauge(name, "", NULL);
    assert_non_null(m);
    return m;
}

/* ---- fixtures ------------------------------------------------------------ */

static void reset_common(void)
{
    /* A test that failed with the cluster stopped must not fail the next. */
    assert_int_equal(pgtemp_up(&cluster), 0);
    pgq_connect(cluster.conninfo);
    pgq_truncate_all();
    assert_int_equal(ftruncate(log_fd, 0), 0);
    assert_int_equal(lseek(log_fd, 0, SEEK_SET), 0);
    memset(recs, 0, sizeof(recs));
    for (size_t i = 0; i < 3; i++) {
        pthread_mutex_init(&recs[i].lock, NULL);
    }
    store_config_default(&cfg);
    cfg.conninfo = cluster.conninfo;
    cfg.backoff_base_ms = 100;
    cfg.backoff_cap_ms = 1000;
}

static int setup(void **state)
{
    (void)state;
    reset_common();
    assert_int_equal(
        actor_runtime_start(&(struct actor_config){.manual = true}), 0);
    return 0;
}

static void free_loaded(void)
{
    for (size_t i = 0; i < 3; i++) {
        for (int j = 0; j < recs[i].n_loaded; j++) {
            actor_msg_free(&recs[i].loaded[j]->hdr);
        }
        recs[i].n_loaded = 0;
    }
}

static int teardown(void **state)
{
    (void)state;
    if (store_pid) {
        store_stop();
    }
    for (size_t i = 0; i < 3; i++) {
        if (rec_pids[i]) {
            struct actor_exit why = {.kind = ACTOR_EXIT_SHUTDOWN};
            actor_exit(NULL, rec_pids[i], &why);
            rec_pids[i] = 0;
        }
    }
    actor_run_until_idle();
    free_loaded();
    actor_runtime_stop();
    matches_release();
    return 0;
}

/* Brings the cluster back after a test stopped it. */
static void cluster_up(void)
{
    assert_int_equal(pgtemp_up(&cluster), 0);
    pgq_connect(cluster.conninfo);
}

static void cluster_down(void)
{
    pgq_close();
    assert_int_equal(pgtemp_down(&cluster, "fast"), 0);
}

/* ---- tests --------------------------------------------------------------- */

static void test_acked_after_commit(void **state)
{
    (void)state;
    struct recorder *a = recorder(0, "feed-a", 0);
    struct recorder *b = recorder(1, "feed-b", 0);
    store_spawn();
    uint64_t acks0 = metric("scorewire_store_acks_total", NULL);
    uint64_t events0 = metric("scorewire_store_events_total", NULL);

    feed("feed-a", 1, two, 2, true);
    feed("feed-b", 7, one, 1, false);
    feed("feed-a", 2, one, 1, false);
    actor_run_until_idle();

    /* Each ack came after its rows were committed. */
    assert_int_equal(a->n_acks, 1);
    assert_int_equal(last_ack(a)->seq, 2);
    assert_int_equal(last_ack(a)->pending_seq, 2);
    assert_int_equal(last_ack(a)->db_acked, 2);
    assert_int_equal(b->n_acks, 1);
    assert_int_equal(last_ack(b)->seq, 7);
    assert_int_equal(last_ack(b)->db_acked, 7);

    assert_int_equal(pgq_int("SELECT count(*) FROM feed_events"), 3);
    assert_int_equal(pgq_int("SELECT count(*) FROM feed_events"
                             " WHERE source = 'feed-a' AND seq IN (1, 2)"),
                     2);
    assert_int_equal(pgq_int("SELECT count(*) FROM match_updates"), 4);
    assert_int_equal(pgq_int("SELECT max(version) FROM match_updates"
                             " WHERE match_id = 'm:1'"),
                     3);
    assert_int_equal(pgq_int("SELECT version FROM matches WHERE id = 'm:1'"),
                     3);
    assert_int_equal(pgq_int("SELECT count(*) FROM incidents"), 2);
    assert_string_equal(
        pgq_text("SELECT convert_from(raw, 'UTF8') FROM feed_events"
                 " WHERE seq = 7"),
        "<event seq=\"7\"><match id=\"m:1\"><clock time=\"00:07\" "
        "running=\"1\"/><score home=\"0\" away=\"1\"/></match></event>");
    assert_string_equal(
        pgq_text("SELECT source || ':' || seq FROM match_updates"
                 " WHERE match_id = 'm:2'"),
        "feed-a:1");
    assert_int_equal(metric("scorewire_store_acks_total", NULL) - acks0, 2);
    assert_int_equal(metric("scorewire_store_events_total", NULL) - events0, 3);
    assert_true(store_db_is_up());
}

static void test_ack_waits_for_every_element(void **state)
{
    (void)state;
    struct recorder *a = recorder(0, "feed-a", 0);
    store_spawn();
    struct event *e1 = make_event("feed-a", 1, two, 2, false);
    struct event *e2 = make_event("feed-a", 2, one, 1, false);
    send_event(e1);
    send_event(e2);
    send_applied(e1, 0);
    send_applied(e2, 0); /* e2 is complete, but e1 is not */
    actor_run_until_idle();
    /* The updates are written as they come; events wait, and no ack. */
    assert_int_equal(a->n_acks, 0);
    assert_int_equal(pgq_int("SELECT count(*) FROM match_updates"), 2);
    assert_int_equal(pgq_int("SELECT count(*) FROM feed_events"), 0);
    assert_int_equal(pgq_int("SELECT count(*) FROM source_offsets"), 0);

    /* The store tells a restarted source what it holds. */
    send_store(&store_acked_req_msg_new(rec_pids[0], "feed-a")->hdr);
    actor_run_until_idle();
    assert_int_equal(a->n_acks, 1);
    assert_int_equal(last_ack(a)->seq, 0);
    assert_int_equal(last_ack(a)->pending_seq, 2);

    send_applied(e1, 1);
    actor_run_until_idle();
    assert_int_equal(a->n_acks, 2);
    assert_int_equal(last_ack(a)->seq, 2);
    assert_int_equal(last_ack(a)->db_acked, 2);
    assert_int_equal(pgq_int("SELECT count(*) FROM feed_events"), 2);
    event_unref(e1);
    event_unref(e2);

    /* A source nobody has heard of: nothing durable, nothing pending. */
    recorder(1, "feed-z", 0);
    send_store(&store_acked_req_msg_new(rec_pids[1], "feed-z")->hdr);
    actor_run_until_idle();
    assert_int_equal(recs[1].n_acks, 1);
    assert_int_equal(recs[1].acks[0].seq, 0);
    assert_int_equal(recs[1].acks[0].pending_seq, 0);
}

static void test_lost_element_completes(void **state)
{
    (void)state;
    struct recorder *a = recorder(0, "feed-a", 0);
    store_spawn();
    uint64_t repeated0 =
        metric("scorewire_store_ignored_total", "reason=\"repeated_element\"");
    struct event *ev = make_event("feed-a", 1, two, 2, false);
    send_event(ev);
    send_applied(ev, 0);
    /* The match actor of element 1 died with it queued. */
    send_outcome(ev, 1, MODEL_LOST);
    event_unref(ev);
    actor_run_until_idle();
    assert_int_equal(a->n_acks, 1);
    assert_int_equal(last_ack(a)->seq, 1);
    assert_int_equal(pgq_int("SELECT count(*) FROM feed_events"), 1);
    assert_int_equal(pgq_int("SELECT count(*) FROM match_updates"), 1);
    assert_int_equal(pgq_int("SELECT count(*) FROM matches"), 1);

    /* A duplicate (the model skipped it) completes too, writing nothing. */
    ev = make_event("feed-a", 2, one, 1, false);
    send_event(ev);
    send_outcome(ev, 0, MODEL_DUPLICATE);
    /* The same element reported twice does not complete anything early. */
    struct event *e3 = make_event("feed-a", 3, two, 2, false);
    send_event(e3);
    send_applied(e3, 0);
    send_outcome(e3, 0, MODEL_DUPLICATE);
    event_unref(ev);
    actor_run_until_idle();
    assert_int_equal(last_ack(a)->seq, 2);
    assert_int_equal(
        metric("scorewire_store_ignored_total", "reason=\"repeated_element\"") -
            repeated0,
        1);
    send_applied(e3, 1);
    event_unref(e3);
    actor_run_until_idle();
    assert_int_equal(last_ack(a)->seq, 3);
    assert_int_equal(pgq_int("SELECT count(*) FROM feed_events"), 3);
}

static void test_feed_state_update(void **state)
{
    (void)state;
    struct recorder *a = recorder(0, "feed-a", 0);
    store_spawn();
    feed("feed-a", 1, one, 1, false);
    actor_run_until_idle();
    assert_int_equal(a->n_acks, 1);

    /* The source went stale: a new version no event caused. */
    struct update *up = NULL;
    assert_int_equal(model__match_feed(match_of("m:1"), "feed-a",
                                       MATCH_FEED_STALE, BASE_MS + 50, &up),
                     0);
    send_store(&model_update_msg_new(up, NULL, 0, MODEL_APPLIED)->hdr);
    update_unref(up);
    actor_run_until_idle();
    assert_int_equal(a->n_acks, 1); /* nothing to ack */
    assert_string_equal(pgq_text("SELECT feed FROM matches"), "stale");
    assert_int_equal(pgq_int("SELECT version FROM matches"), 2);
    assert_int_equal(pgq_int("SELECT count(*) FROM match_updates"
                             " WHERE version = 2 AND source IS NULL"
                             " AND seq IS NULL"),
                     1);
}

static void test_rejected_documents(void **state)
{
    (void)state;
    struct recorder *a = recorder(0, "feed-a", 0);
    long long floor = (long long)actor_wall_ms() << 20;
    store_spawn();
    struct event *e1 = make_event("feed-a", 1, one, 1, false);
    send_event(e1);
    struct store_rejected rej = {
        .source = "feed-a",
        .seq = 2,
        .has_seq = true,
        .received_ms = BASE_MS,
        .reason = "bad_attribute",
        .raw = "<event seq=\"2\" sent=\"x\"/>",
        .raw_len = 25,
    };
    send_store(&store_rejected_msg_new(&rej)->hdr);
    /* Without a seq (or a source): written, never acked. */
    struct store_rejected junk = {
        .received_ms = BASE_MS, .reason = "junk", .raw = "\xff", .raw_len = 1};
    send_store(&store_rejected_msg_new(&junk)->hdr);
    actor_run_until_idle();
    /* Seq 2 used its seq, but 1 is not complete: no ack yet. */
    assert_int_equal(a->n_acks, 0);
    assert_int_equal(pgq_int("SELECT count(*) FROM rejected_documents"), 1);
    send_applied(e1, 0);
    event_unref(e1);
    actor_run_until_idle();
    assert_int_equal(last_ack(a)->seq, 2);
    assert_int_equal(
        pgq_int("SELECT count(*) FROM rejected_documents WHERE seq = 2"
                " AND source = 'feed-a' AND reason = 'bad_attribute'"),
        1);
    /* Ids start above the wall clock's ms times 2^20, one apart. */
    long long first = pgq_int("SELECT min(id) FROM rejected_documents");
    assert_true(first > floor);
    assert_int_equal(pgq_int("SELECT max(id) FROM rejected_documents"),
                     first + 1);
    assert_int_equal(pgq_int("SELECT count(*) FROM feed_events"), 1);

    /* A restarted store goes on above the highest id stored, even when
     * the clock says less (it stepped back). */
    pgq_exec("UPDATE rejected_documents SET id = id + (1::bigint << 61)");
    store_stop();
    store_spawn();
    send_store(&store_rejected_msg_new(&junk)->hdr);
    actor_run_until_idle();
    assert_int_equal(pgq_int("SELECT max(id) FROM rejected_documents"),
                     first + 2 + (1LL << 61));
}

/* A store restarted while its predecessor's last commit was in flight
 * reads max(id) without that commit's rows. Were its ids max(id) + 1, its
 * first dead letter would collide with them when they land, and the resend
 * in safe mode would skip it as already stored: a dead letter lost. */
static void test_rejected_ids_clear_of_a_late_commit(void **state)
{
    (void)state;
    store_spawn();
    struct store_rejected junk = {
        .received_ms = BASE_MS, .reason = "junk", .raw = "\xff", .raw_len = 1};
    send_store(&store_rejected_msg_new(&junk)->hdr);
    actor_run_until_idle();
    long long last = pgq_int("SELECT max(id) FROM rejected_documents");
    store_stop();
    usleep(2000); /* the next incarnation starts in a later millisecond */
    store_spawn();
    /* the predecessor's late rows land after the new store has loaded */
    pgq_exec("INSERT INTO rejected_documents (id, received_at, reason, size,"
             " raw) SELECT %lld + g, now(), 'late', 1, '\\x00'"
             " FROM generate_series(1, 16) g",
             last);
    struct store_rejected again = {
        .received_ms = BASE_MS, .reason = "after", .raw = "\xfe", .raw_len = 1};
    send_store(&store_rejected_msg_new(&again)->hdr);
    actor_run_until_idle();
    assert_int_equal(
        pgq_int(
            "SELECT count(*) FROM rejected_documents WHERE reason = 'after'"),
        1);
    assert_int_equal(pgq_int("SELECT count(*) FROM rejected_documents"), 18);
}

static void test_stale_event_ignored(void **state)
{
    (void)state;
    struct recorder *a = recorder(0, "feed-a", 0);
    store_spawn();
    uint64_t stale0 =
        metric("scorewire_store_ignored_total", "reason=\"stale_seq\"");
    feed("feed-a", 5, one, 1, false);
    actor_run_until_idle();
    /* Sent again (a source that did not dedupe): not a second row. */
    struct event *ev = make_event("feed-a", 5, one, 1, false);
    send_event(ev);
    event_unref(ev);
    feed("feed-a", 6, one, 1, false);
    actor_run_until_idle();
    assert_int_equal(last_ack(a)->seq, 6);
    assert_int_equal(pgq_int("SELECT count(*) FROM feed_events"), 2);
    assert_int_equal(
        metric("scorewire_store_ignored_total", "reason=\"stale_seq\"") -
            stale0,
        1);
}

static void test_load_all(void **state)
{
    (void)state;
    recorder(0, NULL, 0);
    store_spawn();
    feed("feed-a", 1, two, 2, true);
    feed("feed-a", 2, one, 1, false);
    feed("feed-b", 4, one, 1, false);
    actor_run_until_idle();
    /* m:2 is over (postponed, a phase the model retires like ended) and
     * old: the start-up load leaves it out. */
    pgq_exec("UPDATE matches SET phase = 'postponed',"
             " updated_at = now() - interval '3 days' WHERE id = 'm:2'");
    store_stop();

    cfg.retention_s = 86400;
    store_spawn();
    struct store_loaded_msg *r = ask_load(0, NULL);
    assert_non_null(r);
    assert_int_equal(r->status, 0);
    assert_null(r->image);
    const struct store_load *load = r->load;
    assert_int_equal(load->n_matches, 1);
    assert_string_equal(load->matches[0].id, "m:1");
    assert_int_equal(load->matches[0].version, 3);
    assert_int_equal(load->matches[0].n_incidents, 1);
    assert_int_equal(store_load_acked(load, "feed-a"), 2);
    assert_int_equal(store_load_acked(load, "feed-b"), 4);

    /* The offsets stay the store's own. */
    recorder(1, "feed-b", 0);
    send_store(&store_acked_req_msg_new(rec_pids[1], "feed-b")->hdr);
    actor_run_until_idle();
    assert_int_equal(recs[1].acks[0].seq, 4);

    /* The model restarted while the store lives: a fresh load, with what
     * was received since written first. */
    static const char *const nine[] = {"m:9"};
    feed("feed-a", 3, nine, 1, false);
    r = ask_load(0, NULL);
    assert_non_null(r);
    assert_int_equal(r->status, 0);
    assert_int_equal(r->load->n_matches, 2);
    assert_string_equal(r->load->matches[1].id, "m:9");
    assert_int_equal(store_load_acked(r->load, "feed-a"), 3);
}

static void test_load_one(void **state)
{
    (void)state;
    recorder(0, NULL, 0);
    store_spawn();
    /* Still in the batch (the request comes before the kick that writes
     * it): the newest image, by reference. */
    feed("feed-a", 1, one, 1, false);
    feed("feed-a", 2, one, 1, false);
    struct store_loaded_msg *r = ask_load(0, "m:1");
    assert_non_null(r);
    assert_int_equal(r->status, 0);
    assert_null(r->load);
    assert_non_null(r->image);
    assert_string_equal(r->image->id, "m:1");
    assert_int_equal(r->image->version, 2);
    assert_int_equal(pgq_int("SELECT count(*) FROM matches"), 1);

    /* Written: the row. */
    r = ask_load(0, "m:1");
    assert_non_null(r);
    assert_int_equal(r->status, 0);
    assert_null(r->image);
    assert_int_equal(r->load->n_matches, 1);
    assert_int_equal(r->load->matches[0].version, 2);
    assert_int_equal(r->load->matches[0].clock_seconds, 2);

    /* Never seen: no match, not an error. */
    r = ask_load(0, "m:404");
    assert_non_null(r);
    assert_int_equal(r->status, 0);
    assert_int_equal(r->load->n_matches, 0);

    /* The database down and nothing pending: -EAGAIN. */
    cluster_down();
    r = ask_load(0, "m:1");
    assert_non_null(r);
    assert_int_equal(r->status, -EAGAIN);
    assert_null(r->load);
    assert_null(r->image);
    assert_false(store_db_is_up());
    cluster_up();
}

/* Many matches starting at once: their requests are answered together (one
 * query says which are stored), each with the right answer, in order. */
static void test_load_one_together(void **state)
{
    (void)state;
    struct recorder *r = recorder(0, NULL, 0);
    store_spawn();
    feed("feed-a", 1, one, 1, false);
    actor_run_until_idle();
    assert_int_equal(pgq_int("SELECT count(*) FROM matches"), 1);

    enum { NEW = 40 };
    char id[32];
    for (int i = 0; i < NEW; i++) {
        snprintf(id, sizeof(id), "m:new-%d", i);
        send_store(&store_load_req_msg_new(rec_pids[0], id)->hdr);
        if (i == NEW / 2) {
            send_store(&store_load_req_msg_new(rec_pids[0], "m:1")->hdr);
            /* Not UTF-8: the database cannot take it; the rest can. */
            send_store(&store_load_req_msg_new(rec_pids[0], "m:\xff")->hdr);
        }
    }
    send_store(&store_load_req_msg_new(rec_pids[0], "m:1")->hdr);
    int before = r->n_loaded;
    actor_run_until_idle();
    assert_int_equal(r->n_loaded - before, NEW + 3);

    int k = before;
    for (int i = 0; i < NEW; i++) {
        struct store_loaded_msg *m = r->loaded[k++];
        assert_int_equal(m->status, 0);
        assert_null(m->image);
        assert_non_null(m->load);
        assert_int_equal(m->load->n_matches, 0);
        if (i == NEW / 2) {
            m = r->loaded[k++];
            assert_int_equal(m->status, 0);
            assert_int_equal(m->load->n_matches, 1);
            assert_string_equal(m->load->matches[0].id, "m:1");
            m = r->loaded[k++];
            assert_int_equal(m->status, -EINVAL);
        }
    }
    struct store_loaded_msg *m = r->loaded[k++];
    assert_int_equal(m->status, 0);
    assert_int_equal(m->load->n_matches, 1);
    assert_int_equal(m->load->matches[0].version, 1);
}

static void test_outage(void **state)
{
    (void)state;
    struct recorder *a = recorder(0, "feed-a", 0);
    store_spawn();
    uint64_t outages0 = metric("scorewire_store_outages_total", NULL);
    feed("feed-a", 1, one, 1, false);
    actor_run_until_idle();
    assert_int_equal(a->n_acks, 1);

    cluster_down();
    for (uint64_t seq = 2; seq <= 40; seq++) {
        feed("feed-a", seq, two, 2, seq % 3 == 0);
        actor_run_until_idle();
        actor_advance_ms(100); /* retries come and fail */
        actor_run_until_idle();
    }
    assert_int_equal(a->n_acks, 1); /* nothing acked without a COMMIT */
    assert_false(store_db_is_up());
    assert_int_equal(metric("scorewire_store_db_up", NULL), 0);
    assert_true(metric("scorewire_store_backlog_rows", NULL) > 39);

    cluster_up();
    actor_advance_ms(cfg.backoff_cap_ms);
    actor_run_until_idle();
    assert_true(store_db_is_up());
    assert_int_equal(a->n_acks, 2);
    assert_int_equal(last_ack(a)->seq, 40);
    assert_int_equal(last_ack(a)->db_acked, 40);

    /* Nothing lost, nothing twice. */
    assert_int_equal(pgq_int("SELECT count(*) FROM feed_events"), 40);
    assert_int_equal(pgq_int("SELECT count(DISTINCT seq) FROM feed_events"),
                     40);
    assert_int_equal(pgq_int("SELECT count(*) FROM match_updates"), 79);
    assert_int_equal(pgq_int("SELECT version FROM matches WHERE id = 'm:1'"),
                     40);
    assert_int_equal(pgq_int("SELECT count(*) FROM incidents"), 26);
    assert_int_equal(metric("scorewire_store_backlog_rows", NULL), 0);

    /* One line when it went, one with its length when it came back. */
    assert_int_equal(log_count("database unreachable"), 1);
    assert_int_equal(log_count("database back"), 1);
    assert_true(log_value("duration_ms") >= 39 * 100);
    assert_int_equal(metric("scorewire_store_outages_total", NULL) - outages0,
                     1);
}

static void test_init_waits_for_database(void **state)
{
    (void)state;
    recorder(0, NULL, 0);
    cluster_down();
    store_spawn();
    assert_false(store_db_is_up());
    /* Not loaded: the model's request waits. */
    assert_null(ask_load(0, NULL));
    actor_advance_ms(cfg.backoff_cap_ms);
    actor_run_until_idle();
    assert_null(ask_load(0, NULL));

    cluster_up();
    actor_advance_ms(cfg.backoff_cap_ms);
    actor_run_until_idle();
    assert_true(store_db_is_up());
    /* Both requests answered, in order; the first took the start-up load,
     * the second a fresh one. */
    assert_int_equal(recs[0].n_loaded, 2);
    assert_int_equal(recs[0].loaded[0]->status, 0);
    assert_int_equal(recs[0].loaded[0]->load->n_matches, 0);
    assert_int_equal(recs[0].loaded[1]->status, 0);
    assert_non_null(recs[0].loaded[1]->load);
    assert_int_equal(log_count("database unreachable"), 1);
    assert_int_equal(log_count("database back"), 1);
}

static void test_batch_rules(void **state)
{
    (void)state;
    struct recorder *a = recorder(0, "feed-a", 0);
    cfg.no_idle_flush = true;
    cfg.batch_rows = 6;
    cfg.batch_ms = 500;
    store_spawn();
    /* One event is 4 rows (event, update, match, offset): below 6. */
    feed("feed-a", 1, one, 1, false);
    actor_run_until_idle();
    assert_int_equal(a->n_acks, 0);
    /* Its first row is batch_ms old: written. */
    actor_advance_ms(500);
    actor_run_until_idle();
    assert_int_equal(a->n_acks, 1);

    /* Two events: 6 rows (one match, one offset), written at once. */
    feed("feed-a", 2, one, 1, false);
    feed("feed-a", 3, one, 1, false);
    actor_run_until_idle();
    assert_int_equal(a->n_acks, 2);
    assert_int_equal(last_ack(a)->seq, 3);
}

static void test_shutdown_writes_last_batch(void **state)
{
    (void)state;
    cfg.no_idle_flush = true;
    cfg.batch_ms = 60000;
    store_spawn();
    feed("feed-a", 1, two, 2, false);
    /* A dead letter with a seq (the feed sends it again, like an event)
     * and one without (nothing sends that again). */
    struct store_rejected rej = {.source = "feed-a",
                                 .seq = 2,
                                 .has_seq = true,
                                 .received_ms = BASE_MS,
                                 .reason = "bad_attribute",
                                 .raw = "<event seq=\"2\" sent=\"x\"/>",
                                 .raw_len = 25};
    send_store(&store_rejected_msg_new(&rej)->hdr);
    struct store_rejected junk = {
        .received_ms = BASE_MS, .reason = "junk", .raw = "\xff", .raw_len = 1};
    send_store(&store_rejected_msg_new(&junk)->hdr);
    actor_run_until_idle();
    assert_int_equal(pgq_all_rows(), 0);
    store_stop();
    /* The model's rows and the dead letter no feed resends; not the
     * documents with a seq nor their offset: an event completes at a stop
     * with elements reported lost (never applied), so the feed must send
     * it again (and a dead letter sent again would be stored twice). */
    assert_int_equal(pgq_int("SELECT count(*) FROM match_updates"), 2);
    assert_int_equal(pgq_int("SELECT count(*) FROM matches"), 2);
    assert_int_equal(pgq_int("SELECT count(*) FROM feed_events"), 0);
    assert_int_equal(pgq_int("SELECT count(*) FROM source_offsets"), 0);
    assert_int_equal(pgq_int("SELECT count(*) FROM rejected_documents"), 1);
    assert_int_equal(
        pgq_int("SELECT count(*) FROM rejected_documents WHERE seq IS NULL"),
        1);
}

static void test_ack_owed_to_full_mailbox(void **state)
{
    (void)state;
    struct recorder *a = recorder(0, "feed-a", 1);
    store_spawn();
    struct actor_stats before;
    actor_stats_get(&before);
    feed("feed-a", 1, one, 1, false);
    /* The source's mailbox (room for one) is full when the ack comes. */
    struct actor_msg *filler = actor_msg_new(sizeof(*filler), FILLER);
    assert_int_equal(actor_send(NULL, rec_pids[0], filler), 0);
    actor_run_until_idle();
    struct actor_stats after;
    actor_stats_get(&after);
    assert_true(after.full > before.full);
    assert_int_equal(a->fillers, 1);
    assert_int_equal(a->n_acks, 1);
    assert_int_equal(last_ack(a)->seq, 1);
}

static void test_backlog_gauge(void **state)
{
    (void)state;
    cfg.backlog_rows = 10;
    store_spawn();
    struct actor_metric *paused = gauge("scorewire_store_paused");
    cluster_down();
    for (uint64_t seq = 1; seq <= 2; seq++) {
        feed("feed-a", seq, one, 1, false);
        actor_run_until_idle();
    }
    assert_int_equal(actor_metric_value(paused), 0); /* 6 rows */
    feed("feed-a", 3, one, 1, false);
    feed("feed-a", 4, one, 1, false);
    feed("feed-a", 5, one, 1, false);
    actor_run_until_idle();
    /* At the bound while writes fail: a threaded store stops draining. */
    assert_true(metric("scorewire_store_backlog_rows", NULL) >= 10);
    assert_int_equal(actor_metric_value(paused), 1);
    cluster_up();
    actor_advance_ms(cfg.backoff_cap_ms);
    actor_run_until_idle();
    assert_int_equal(actor_metric_value(paused), 0);
    assert_int_equal(metric("scorewire_store_backlog_rows", NULL), 0);
    assert_int_equal(pgq_int("SELECT count(*) FROM feed_events"), 5);
}

static void test_out_of_memory(void **state)
{
    (void)state;
    recorder(0, "feed-a", 0);
    /* The Nth allocation of the store's own fails: in init the actor ends
     * with -ENOMEM, later it crashes; either way nothing leaks (the asan
     * build checks) and the next store starts clean. */
    store_may_be_gone = true;
    for (unsigned n = 1; n <= 40; n++) {
        store__alloc_fail_in = n;
        struct actor_spawn how = {
            .ops = &store_ops, .arg = &cfg, .name = "store", .mailbox = 64};
        assert_int_equal(actor_spawn(&how, &store_pid), 0);
        actor_run_until_idle();
        feed("feed-a", n, two, 2, n % 2 == 0);
        actor_run_until_idle();
        store__alloc_fail_in = 0;
        store_stop();
        matches_release(); /* a crashed store lost their updates */
    }
    store_may_be_gone = false;
    store_spawn();
    feed("feed-a", 100, one, 1, false);
    actor_run_until_idle();
    assert_int_equal(last_seq(&recs[0]), 100);
}

/* ---- back-pressure, with threads ----------------------------------------- */

/* Waits until @cond holds, failing after a generous deadline. */
#define WAIT_FOR(cond)                                                         \
    do {                                                                       \
        int waited_ = 0;                                                       \
        while (!(cond)) {                                                      \
            assert_true(waited_++ < 6000);                                     \
            usleep(10000);                                                     \
        }                                                                      \
    } while (0)

static int setup_threads(void **state)
{
    (void)state;
    reset_common();
    recs[0].check_db = false;
    assert_int_equal(
        actor_runtime_start(&(struct actor_config){.schedulers = 2}), 0);
    return 0;
}

static int teardown_threads(void **state)
{
    (void)state;
    struct actor_exit why = {.kind = ACTOR_EXIT_SHUTDOWN};
    for (size_t i = 0; i < 3; i++) {
        if (rec_pids[i]) {
            actor_exit(NULL, rec_pids[i], &why);
            actor_wait(rec_pids[i], 10000, NULL);
            rec_pids[i] = 0;
        }
    }
    if (store_pid) {
        actor_exit(NULL, store_pid, &why);
        assert_true(actor_wait(store_pid, 30000, NULL));
        store_pid = 0;
    }
    actor_runtime_stop();
    return 0;
}

/*
 * With the database down, sends events without elements (complete at
 * once: two rows each) until the store, at its bound (@rows, or @bytes of
 * them), lets its mailbox fill up; checks it paused with the rest waiting
 * in its full mailbox and nothing acked; then brings the database back:
 * everything accepted is written once and acked. @held_bytes says which
 * bound it stopped at.
 */
static void check_backlog_bound(uint32_t rows, uint64_t bytes, bool held_bytes)
{
    const uint32_t mailbox = 32;
    struct recorder *r = &recs[0];
    r->source = "feed-a";
    struct actor_spawn rs = {
        .ops = &rec_ops, .arg = r, .name = "source:feed-a"};
    assert_int_equal(actor_spawn(&rs, &rec_pids[0]), 0);
    cfg.backlog_rows = rows;
    cfg.backlog_bytes = bytes;
    cfg.backoff_base_ms = 20;
    cfg.backoff_cap_ms = 200;
    struct actor_spawn how = {.ops = &store_ops,
                              .arg = &cfg,
                              .name = "store",
                              .mailbox = mailbox,
                              .thread = true};
    assert_int_equal(actor_spawn(&how, &store_pid), 0);
    WAIT_FOR(store_db_is_up());
    struct actor_metric *paused = gauge("scorewire_store_paused");

    cluster_down();
    uint64_t seq = 0;
    int rc = 0;
    while (rc == 0) {
        assert_true(seq < 100000);
        struct event *ev = make_event("feed-a", seq + 1, NULL, 0, false);
        struct store_event_msg *m = store_event_msg_new(ev);
        event_unref(ev);
        rc = actor_send(NULL, store_pid, &m->hdr);
        if (rc == 0) {
            seq++;
        } else {
            actor_msg_free(&m->hdr);
            assert_int_equal(rc, -EAGAIN);
        }
        if (actor_metric_value(paused) == 0) {
            usleep(1000); /* let the store catch up until it pauses */
        }
    }
    assert_int_equal(actor_metric_value(paused), 1);
    /* It holds its bound (more only if it took a whole chunk of messages
     * before its first write failed): the rest waits in the full mailbox. */
    uint64_t held = metric("scorewire_store_backlog_rows", NULL);
    uint64_t held_b = metric("scorewire_store_backlog_bytes", NULL);
    if (held_bytes) {
        assert_true(held < rows);
        assert_true(held_b >= bytes && held_b < bytes + 64 * 256);
    } else {
        assert_true(held >= rows && held < rows + 64);
        assert_true(held_b < bytes);
    }
    assert_int_equal(log_count("backlog full: feeds held back"), 1);
    struct actor_info info;
    assert_int_equal(actor_info_get(store_pid, &info), 0);
    assert_true(info.mailbox >= mailbox); /* a timer may come on top */
    assert_int_equal(n_acks(r), 0);

    cluster_up();
    WAIT_FOR(last_seq(r) == seq);
    assert_int_equal(actor_metric_value(paused), 0);
    assert_int_equal(pgq_int("SELECT count(*) FROM feed_events"),
                     (long long)seq);
    assert_int_equal(pgq_int("SELECT max(seq) FROM feed_events"),
                     (long long)seq);
    assert_int_equal(pgq_int("SELECT acked_seq FROM source_offsets"),
                     (long long)seq);
    assert_int_equal(log_count("database unreachable"), 1);
    assert_int_equal(log_count("database back"), 1);
    assert_int_equal(log_count("backlog below its bound"), 1);
}

static void test_backlog_stops_the_mailbox(void **state)
{
    (void)state;
    check_backlog_bound(20, 1ull << 30, false);
}

/* Raw documents may be large: bytes bound the backlog as well as rows. */
static void test_backlog_bytes_stop_the_mailbox(void **state)
{
    (void)state;
    check_backlog_bound(100000, 2048, true);
}

/* ---- the cluster --------------------------------------------------------- */

static int group_setup(void **state)
{
    (void)state;
    if (pgtemp_start(&cluster, false) != 0) {
        pgtemp_stop(&cluster);
        return -1;
    }
    parser = ingest__parser_new(NULL);
    if (!parser) {
        return -1;
    }
    log_fd = memfd_create("store-log", 0);
    if (log_fd < 0) {
        return -1;
    }
    actor_log_set_fd(log_fd);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    pgq_close();
    pgtemp_stop(&cluster);
    actor_log_set_fd(2);
    close(log_fd);
    ingest__parser_free(parser);
    return 0;
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_acked_after_commit),
        T(test_ack_waits_for_every_element),
        T(test_lost_element_completes),
        T(test_feed_state_update),
        T(test_rejected_documents),
        T(test_rejected_ids_clear_of_a_late_commit),
        T(test_stale_event_ignored),
        T(test_load_all),
        T(test_load_one),
        T(test_load_one_together),
        T(test_outage),
        T(test_init_waits_for_database),
        T(test_batch_rules),
        T(test_shutdown_writes_last_batch),
        T(test_ack_owed_to_full_mailbox),
        T(test_backlog_gauge),
        T(test_out_of_memory),
        cmocka_unit_test_setup_teardown(test_backlog_bytes_stop_the_mailbox,
                                        setup_threads, teardown_threads),
        cmocka_unit_test_setup_teardown(test_backlog_stops_the_mailbox,
                                        setup_threads, teardown_threads),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
