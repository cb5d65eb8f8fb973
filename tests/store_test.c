/* tests/store_test.c - the store's batches, completion tracking and
 * PostgreSQL writer, against a real throwaway cluster (tools/pg.sh). */
#include <errno.h>
#include <libpq-fe.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>

#include <cmocka.h>

#include "ingest/event.h"
#include "store/store_impl.h"
#include "tests/pgq.h"
#include "tests/pgtemp.h"

static struct pgtemp cluster;

#define BASE_MS 1795000000000LL /* 2026-11-19, wall clock of the events */

/* ---- database helpers ---------------------------------------------------- */

/* Waits (bounded) until backend @pid has left. */
static void wait_backend_gone(int pid)
{
    for (int i = 0; i < 1000; i++) {
        if (pgq_int("SELECT count(*) FROM pg_stat_activity WHERE pid = %d",
                    pid) == 0) {
            return;
        }
        usleep(10000);
    }
    fail_msg("backend %d did not end", pid);
}

static struct store__pg *
writer(void (*hook)(struct store__pg *, enum store__pg_step, void *), void *arg)
{
    struct store__pg_config cfg = {
        .conninfo = cluster.conninfo,
        .seed = 42,
        .vacuum_rows = 1, /* vacuum the staging tables before every write */
        .hook = hook,
        .hook_arg = arg,
    };
    struct store__pg *pg = store__pg_new(&cfg);
    assert_non_null(pg);
    assert_int_equal(store__pg_connect(pg, 0, NULL), 0);
    return pg;
}

/* Writes @b, expecting @want; says why when it differs. */
static void write_expect(struct store__pg *pg, struct store__batch *b,
                         int64_t now, struct store__pg_stats *st, int want)
{
    int got = store__pg_write(pg, b, now, st);
    if (got != want) {
        fail_msg("write: %d, want %d: %s", got, want, store__pg_error(pg));
    }
}

/* ---- values -------------------------------------------------------------- */

struct test_event {
    struct event ev;
    struct event_match m[3];
    char raw[128];
};

static int released;

static void release_event(struct event *ev)
{
    released++;
    free(container_of(ev, struct test_event, ev));
}

static struct event *new_event(const char *source, uint64_t seq,
                               uint32_t n_matches)
{
    struct test_event *t = calloc(1, sizeof(*t));
    assert_non_null(t);
    atomic_init(&t->ev.refs, 1);
    t->ev.source = source;
    t->ev.seq = seq;
    t->ev.sent_ms = seq % 2 ? BASE_MS + (int64_t)seq : EVENT_ABSENT;
    t->ev.received_ms = BASE_MS + (int64_t)seq + 5;
    int n = snprintf(t->raw, sizeof(t->raw),
                     "<event seq=\"%llu\">\r\n\t<x a='\\'/></event>",
                     (unsigned long long)seq);
    t->ev.raw = t->raw;
    t->ev.raw_len = (size_t)n;
    t->ev.matches = t->m;
    t->ev.n_matches = n_matches;
    return &t->ev;
}

/* One applied change: an image, its update and its snapshot text. */
struct change {
    struct match_image img;
    struct match_incident inc[4];
    const struct match_incident *upserted[4];
    const char *deleted[4];
    struct update up;
    char json[256];
    char snapshot[1024];
};

static void add_incident(struct change *c, const char *id, const char *type,
                         int8_t team, int32_t minute, int8_t confirmed)
{
    struct match_incident *inc = &c->inc[c->img.n_incidents++];
    *inc = (struct match_incident){
        .id = id,
        .type = type,
        .player = "B. Saka",
        .assist = NULL,
        .minute = minute,
        .stoppage = EVENT_ABSENT,
        .team = team,
        .confirmed = confirmed,
        .version = c->img.version,
    };
    c->upserted[c->up.n_upserted++] = inc;
}

/* Changes live until the test's teardown: a batch holds their images. */
static struct change changes[8];
static size_t n_changes;

/* Returns a new change in @match at @version. */
static struct change *make_change(const char *match, uint64_t version)
{
    assert_true(n_changes < sizeof(changes) / sizeof(changes[0]));
    struct change *c = &changes[n_changes++];
    memset(c, 0, sizeof(*c));
    c->img = (struct match_image){
        .id = match,
        .version = version,
        .msgnr = version + 100,
        .has_msgnr = true,
        .source = "feed-a",
        .sport = "soccer",
        .competition = "Premier League",
        .home = "Arsenal",
        .away = "Chelsea",
        .start = "2026-11-21T15:00:00Z",
        .phase = "second_half",
        .clock_seconds = 66 * 60 + 12,
        .clock_running = 1,
        .has_score = true,
        .score_home = 2,
        .score_away = 1,
        .feed = MATCH_FEED_LIVE,
        .updated_ms = BASE_MS + (int64_t)version,
        .incidents = c->inc,
    };
    c->up.kind = UPDATE_DELTA;
    c->up.image = &c->img;
    c->up.upserted = c->upserted;
    c->up.deleted = c->deleted;
    c->up.sent_ms = EVENT_ABSENT;
    int n = snprintf(c->json, sizeof(c->json),
                     "{\"type\":\"delta\",\"id\":\"%s\",\"version\":%llu}",
                     match, (unsigned long long)version);
    c->up.json = c->json;
    c->up.json_len = (size_t)n;
    atomic_init(&c->img.refs, 1);
    return c;
}

/* The model's side for the batch: a snapshot from the image, references
 * counted down. */
static void test_json(const struct match_image *img, struct actor_buf *out)
{
    actor_buf_printf(out, "{\"id\":\"%s\",\"version\":%llu,\"incidents\":[",
                     img->id, (unsigned long long)img->version);
    for (uint32_t i = 0; i < img->n_incidents; i++) {
        actor_buf_printf(out, "%s{\"id\":\"%s\"}", i ? "," : "",
                         img->incidents[i].id);
    }
    actor_buf_str(out, "]}");
}

static void test_unref(struct match_image *img)
{
    assert_true(atomic_fetch_sub(&img->refs, 1) > 1);
}

static const struct store__image_ops test_ops = {test_json, test_unref};

/* A snapshot that cannot be made (its buffer out of memory). */
static void failing_json(const struct match_image *img, struct actor_buf *out)
{
    (void)img;
    out->err = -ENOMEM;
}

static const struct store__image_ops failing_ops = {failing_json, test_unref};

static void add_change(struct store__batch *b, struct change *c,
                       const char *source, uint64_t seq)
{
    assert_int_equal(store__batch_add_change(b, &c->up, source, seq), 0);
}

/*
 * The batch most tests write: events 1 and 2 of feed-a, three changes to
 * two matches (one incident removed), one rejected document. 11 rows:
 * 2 events, 3 updates, 1 rejected, 2 matches, 2 incidents, 1 offset.
 */
#define STANDARD_ROWS 11

static void fill_standard(struct store__batch *b, struct store__pending *p)
{
    struct event *ev1 = new_event("feed-a", 1, 1);
    struct event *ev2 = new_event("feed-a", 2, 2);
    assert_int_equal(store__pending_event(p, ev1, b), 0);
    assert_int_equal(store__pending_event(p, ev2, b), 0);

    struct change *c1 = make_change("sr:match:1", 1);
    add_incident(c1, "i-1", "goal", EVENT_TEAM_HOME, 66, 0);
    add_incident(c1, "i-2", "yellow_card", EVENT_TEAM_AWAY, 12, 1);
    add_change(b, c1, "feed-a", 1);
    assert_int_equal(store__pending_applied(p, ev1, 0, b), 0);

    struct change *c2 = make_change("sr:match:2", 1);
    c2->img.has_score = false;
    c2->img.clock_seconds = EVENT_ABSENT; /* a clock that only said it runs */
    c2->img.has_msgnr = false;
    c2->img.start = "soon";
    c2->img.feed = MATCH_FEED_STALE;
    c2->img.gap = true;
    add_change(b, c2, "feed-a", 2);
    assert_int_equal(store__pending_applied(p, ev2, 0, b), 0);

    struct change *c3 = make_change("sr:match:1", 2);
    add_incident(c3, "i-1", "goal", EVENT_TEAM_HOME, 66, 1); /* confirmed */
    c3->deleted[c3->up.n_deleted++] = "i-2";
    add_change(b, c3, "feed-a", 2);
    assert_int_equal(store__pending_applied(p, ev2, 1, b), 0);

    const struct store_rejected rej = {
        .source = "feed-a",
        .received_ms = BASE_MS + 99,
        .reason = "not_well_formed",
        .raw = "<event seq=",
        .raw_len = 11,
        .size = 11,
    };
    assert_int_equal(store__batch_add_rejected(b, 1, &rej), 0);
}

/* ---- fixtures ------------------------------------------------------------ */

struct fix {
    struct store__batch *b;
    struct store__pending *p;
    struct store__pg *pg; /* the test's writer, or NULL */
};

/* Empty tables, an empty batch and tracker. */
static int setup_empty(void **state)
{
    pgq_truncate_all();
    released = 0;
    n_changes = 0;
    struct fix *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->b = store__batch_new(0, &test_ops);
    f->p = store__pending_new(release_event);
    assert_non_null(f->b);
    assert_non_null(f->p);
    *state = f;
    return 0;
}

/* ... and the standard batch in it. */
static int setup_standard(void **state)
{
    setup_empty(state);
    struct fix *f = *state;
    fill_standard(f->b, f->p);
    return 0;
}

static int teardown(void **state)
{
    struct fix *f = *state;
    store__pg_free(f->pg);
    store__pending_free(f->p);
    store__batch_free(f->b);
    free(f);
    /* The batch gave back every image reference it took. */
    for (size_t i = 0; i < n_changes; i++) {
        assert_int_equal(atomic_load(&changes[i].img.refs), 1);
    }
    return 0;
}

/* ---- tests: pure parts --------------------------------------------------- */

static void test_backoff_full_jitter(void **state)
{
    (void)state;
    uint64_t rng = 7;
    for (uint32_t attempt = 0; attempt < 70; attempt++) {
        uint64_t ceiling = attempt < 32 ? 500ull << attempt : UINT64_MAX;
        if (ceiling > 30000) {
            ceiling = 30000;
        }
        uint32_t lo = UINT32_MAX, hi = 0;
        for (int i = 0; i < 2000; i++) {
            uint32_t d = store__backoff_ms(attempt, 500, 30000, &rng);
            assert_true(d <= ceiling);
            lo = d < lo ? d : lo;
            hi = d > hi ? d : hi;
        }
        /* Full jitter spreads over the whole range, near 0 to the ceiling. */
        assert_true(lo < ceiling / 10 + 1);
        assert_true(hi > ceiling - ceiling / 10);
    }
}

static void test_classify(void **state)
{
    (void)state;
    assert_int_equal(store__pg_classify("23505"), STORE__PG_DUPLICATE);
    assert_int_equal(store__pg_classify("08006"), STORE__PG_LOST);
    assert_int_equal(store__pg_classify("57P01"), STORE__PG_LOST);
    assert_int_equal(store__pg_classify(NULL), STORE__PG_LOST);
    assert_int_equal(store__pg_classify("22P02"), STORE__PG_PERMANENT);
    assert_int_equal(store__pg_classify("23514"), STORE__PG_PERMANENT);
    assert_int_equal(store__pg_classify("42P01"), STORE__PG_PERMANENT);
    assert_int_equal(store__pg_classify("53100"), STORE__PG_TRANSIENT);
    assert_int_equal(store__pg_classify("40001"), STORE__PG_TRANSIENT);
    assert_int_equal(store__pg_classify("25006"), STORE__PG_TRANSIENT);
    assert_int_equal(store__pg_classify("57014"), STORE__PG_TRANSIENT);
}

static void test_utf8(void **state)
{
    (void)state;
    assert_true(store__utf8_is_valid("", 0));
    assert_true(store__utf8_is_valid("plain ascii, long enough", 24));
    const char *intl = "Ødegaard Müller 日本 😀";
    assert_true(store__utf8_is_valid(intl, strlen(intl)));
    assert_false(store__utf8_is_valid("abc\0def", 7));
    assert_false(store__utf8_is_valid("\xc0\xaf", 2));         /* overlong */
    assert_false(store__utf8_is_valid("\xed\xa0\x80", 3));     /* surrogate */
    assert_false(store__utf8_is_valid("\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
    assert_false(store__utf8_is_valid("abcdefgh\xff", 9));
    assert_false(store__utf8_is_valid("\xe2\x82", 2)); /* cut short */
}

static void test_rfc3339(void **state)
{
    (void)state;
    int64_t us;
    assert_int_equal(store__rfc3339_us("1970-01-01T00:00:00Z", &us), 0);
    assert_int_equal(us, 0);
    assert_int_equal(store__rfc3339_us("2026-11-21T15:04:05.123Z", &us), 0);
    assert_int_equal(us, 1795273445123000LL);
    assert_int_equal(
        store__rfc3339_us("2026-11-21T16:04:05.1234567+01:00", &us), 0);
    assert_int_equal(us, 1795273445123456LL);
    assert_int_equal(store__rfc3339_us("2024-02-29 00:00:00-00:30", &us), 0);
    assert_int_equal(us, 1709166600000000LL);
    assert_int_equal(store__rfc3339_us("2023-02-29T00:00:00Z", &us), -EINVAL);
    assert_int_equal(store__rfc3339_us("2026-13-01T00:00:00Z", &us), -EINVAL);
    assert_int_equal(store__rfc3339_us("2026-11-21T15:04:05", &us), -EINVAL);
    assert_int_equal(store__rfc3339_us("2026-11-21T15:04:05Zjunk", &us),
                     -EINVAL);
    assert_int_equal(store__rfc3339_us("0000-01-01T00:00:00Z", &us), -EINVAL);
    assert_int_equal(store__rfc3339_us("soon", &us), -EINVAL);
}

static void test_map(void **state)
{
    (void)state;
    struct store__map m;
    store__map_init(&m);
    char key[32];
    for (int i = 0; i < 5000; i++) {
        bool added;
        int n = snprintf(key, sizeof(key), "k%d", i);
        struct store__map_entry *e = store__map_put(&m, key, (size_t)n, &added);
        assert_non_null(e);
        assert_true(added);
        e->value = (uint64_t)i;
    }
    for (int i = 0; i < 5000; i++) {
        bool added;
        int n = snprintf(key, sizeof(key), "k%d", i);
        struct store__map_entry *e = store__map_put(&m, key, (size_t)n, &added);
        assert_false(added);
        assert_int_equal(e->value, i);
        assert_ptr_equal(store__map_get(&m, key, (size_t)n), e);
        assert_int_equal(m.entries[i].value, i); /* insertion order */
    }
    assert_null(store__map_get(&m, "k5000", 5));
    store__map_clear(&m);
    assert_int_equal(m.n, 0);
    assert_null(store__map_get(&m, "k1", 2));
    store__map_release(&m);
}

/*
 * One pass of batch and tracker work in which any allocation may fail:
 * every step either succeeds or says -ENOMEM, leaving the batch as it was
 * (the tracker keeps or releases each event; ASan's leak check runs at
 * exit).
 */
static void alloc_pass(void)
{
    struct store__batch *b = store__batch_new(0, &test_ops);
    struct store__pending *p = store__pending_new(release_event);
    struct change *pool = calloc(24, sizeof(*pool));
    assert_non_null(pool);
    for (uint32_t i = 0; b && p && i < 24; i++) {
        struct change *c = &pool[i];
        char *id = c->json + 200; /* spare room in the change itself */
        snprintf(id, 40, "sr:alloc:%u", i % 5);
        c->img = (struct match_image){.id = id,
                                      .version = i + 1,
                                      .feed = MATCH_FEED_LIVE,
                                      .updated_ms = BASE_MS,
                                      .clock_seconds = EVENT_ABSENT,
                                      .incidents = c->inc};
        atomic_init(&c->img.refs, 1);
        c->up = (struct update){.image = &c->img, .json = "{}", .json_len = 2};
        c->inc[0] = (struct match_incident){.id = i % 2 ? "a" : "b",
                                            .minute = EVENT_ABSENT,
                                            .stoppage = EVENT_ABSENT,
                                            .version = i + 1};
        uint32_t rows = store__batch_rows(b);
        int err = store__batch_add_update(b, &c->up, "feed-n", i + 1);
        assert_true(err == 0 ||
                    (err == -ENOMEM && store__batch_rows(b) == rows));
        rows = store__batch_rows(b);
        err = store__batch_put_match(b, &c->img);
        assert_true(err == 0 ||
                    (err == -ENOMEM && store__batch_rows(b) == rows));
        rows = store__batch_rows(b);
        err = store__batch_put_incident(b, id, &c->inc[0]);
        assert_true(err == 0 ||
                    (err == -ENOMEM && store__batch_rows(b) == rows));
        rows = store__batch_rows(b);
        err = store__batch_delete_incident(b, id, i % 3 ? "a" : "c", i + 1);
        assert_true(err == 0 ||
                    (err == -ENOMEM && store__batch_rows(b) == rows));
        rows = store__batch_rows(b);
        err = store__batch_advance(b, i % 2 ? "feed-x" : "feed-y", i + 1);
        assert_true(err == 0 ||
                    (err == -ENOMEM && store__batch_rows(b) == rows));

        struct event *ev = new_event(i % 2 ? "feed-p" : "feed-q", i + 1, 1);
        err = store__pending_event(p, ev, b);
        assert_true(err == 0 || err == -ENOMEM);
        if (err == 0) {
            err = store__pending_applied(p, ev, 0, b);
            assert_true(err == 0 || err == -ENOMEM);
        }
        const struct store_rejected rej = {.source = "feed-r",
                                           .seq = i + 1,
                                           .has_seq = true,
                                           .received_ms = BASE_MS,
                                           .reason = "junk",
                                           .raw = "x",
                                           .raw_len = 1};
        err = store__pending_rejected(p, i + 1, &rej, b);
        assert_true(err == 0 || err == -ENOMEM);
    }
    store__pending_free(p);
    store__batch_free(b);
    for (uint32_t i = 0; i < 24; i++) {
        if (pool[i].img.id) {
            assert_int_equal(atomic_load(&pool[i].img.refs), 1);
        }
    }
    free(pool);
}

/* Fails the 1st, 2nd, ... allocation of the pass until one runs clean. */
static void test_allocation_failures(void **state)
{
    (void)state;
    unsigned n;
    for (n = 1; n < 10000; n++) {
        store__alloc_fail_in = n;
        alloc_pass();
        bool clean = store__alloc_fail_in != 0;
        store__alloc_fail_in = 0;
        if (clean) {
            break;
        }
    }
    print_message("allocation failures: %u passes\n", n);
    assert_true(n > 20 && n < 10000); /* it did fail, then ran through */
}

/* Offsets advance only over complete prefixes, element by element. */
static void test_offsets_complete_prefix(void **state)
{
    struct fix *f = *state;
    struct store__batch *b = f->b;
    struct store__pending *p = f->p;
    struct event *e1 = new_event("feed-b", 1, 2);
    struct event *e2 = new_event("feed-b", 2, 1);
    struct event *e3 = new_event("feed-b", 3, 0);
    struct event *e5 = new_event("feed-b", 5, 1);
    struct event *c1 = new_event("feed-c", 1, 0);
    assert_int_equal(store__pending_event(p, e1, b), 0);
    assert_int_equal(store__pending_event(p, e2, b), 0);
    assert_int_equal(store__pending_event(p, e3, b), 0);
    const struct store_rejected rej = {
        .source = "feed-b",
        .seq = 4,
        .has_seq = true,
        .received_ms = BASE_MS,
        .reason = "bad_attribute",
        .raw = "<event seq=\"4\" sent=\"x\"/>",
        .raw_len = 25,
    };
    assert_int_equal(store__pending_rejected(p, 7, &rej, b), 0);
    assert_int_equal(store__pending_event(p, e5, b), 0);
    assert_int_equal(store__pending_event(p, c1, b), 0);
    /* Only feed-c's event, complete on arrival, has moved. */
    assert_int_equal(b->events.rows, 1);
    assert_int_equal(store__map_get(&b->offsets, "feed-c", 6)->value, 1);
    assert_null(store__map_get(&b->offsets, "feed-b", 6));

    /* A stale seq, a repeat, out-of-range and foreign elements change
     * nothing. */
    assert_int_equal(store__pending_event(p, new_event("feed-b", 3, 1), b),
                     STORE_PENDING_STALE);
    assert_int_equal(store__pending_rejected(p, 8, &rej, b),
                     STORE_PENDING_STALE);
    assert_int_equal(store__pending_applied(p, e2, 0, b), 0);
    assert_int_equal(store__pending_applied(p, e2, 0, b), STORE_PENDING_REPEAT);
    assert_int_equal(store__pending_applied(p, e1, 2, b),
                     STORE_PENDING_UNKNOWN);
    struct event *stranger = new_event("feed-b", 1, 2);
    assert_int_equal(store__pending_applied(p, stranger, 0, b),
                     STORE_PENDING_UNKNOWN);
    release_event(stranger);
    assert_int_equal(store__pending_applied(p, e1, 1, b), 0);
    assert_int_equal(store__pending_applied(p, e1, 1, b), STORE_PENDING_REPEAT);
    assert_int_equal(b->events.rows, 1);
    assert_int_equal(store__pending_count(p), 5);

    /* The last element of the oldest: 1, 2, 3 and the rejected 4 go. */
    assert_int_equal(store__pending_applied(p, e1, 0, b), 0);
    assert_int_equal(b->events.rows, 4);
    assert_int_equal(b->rejected_seq.rows, 1); /* with a seq: kept apart */
    assert_int_equal(store__map_get(&b->offsets, "feed-b", 6)->value, 4);
    assert_int_equal(store__pending_count(p), 1);
    assert_int_equal(store__pending_last_seq(p, "feed-b"), 5);
    assert_int_equal(store__pending_last_seq(p, "nobody"), 0);

    struct store__pg *pg = f->pg = writer(NULL, NULL);
    write_expect(pg, b, 0, NULL, 0);
    assert_int_equal(
        pgq_int("SELECT acked_seq FROM source_offsets WHERE source = 'feed-b'"),
        4);
    assert_int_equal(
        pgq_int("SELECT acked_seq FROM source_offsets WHERE source = 'feed-c'"),
        1);
    /* No event row above its source's offset. */
    assert_int_equal(pgq_int("SELECT count(*) FROM feed_events f JOIN"
                             " source_offsets o USING (source)"
                             " WHERE f.seq > o.acked_seq"),
                     0);
    assert_int_equal(pgq_int("SELECT max(seq) FROM feed_events"
                             " WHERE source = 'feed-b'"),
                     3);
    assert_int_equal(pgq_int("SELECT seq FROM rejected_documents WHERE id = 7"),
                     4);

    store__batch_reset(b);
    assert_true(store__batch_is_empty(b));
    assert_int_equal(store__pending_applied(p, e5, 0, b), 0);
    write_expect(pg, b, 0, NULL, 0);
    assert_int_equal(
        pgq_int("SELECT acked_seq FROM source_offsets WHERE source = 'feed-b'"),
        5);
    assert_int_equal(pgq_int("SELECT count(*) FROM feed_events"), 5);

    store__pending_free(p);
    f->p = NULL;
    assert_int_equal(released, 7); /* 5 held, the stale one, the stranger */
}

/* ---- tests: against the database ----------------------------------------- */

static void test_schema_applies_twice(void **state)
{
    (void)state;
    /* The group setup applied it once already. */
    assert_int_equal(pgtemp_schema(&cluster), 0);
    assert_int_equal(pgtemp_schema(&cluster), 0);
    assert_int_equal(
        pgq_int("SELECT count(*) FROM information_schema.tables"
                " WHERE table_schema = 'public' AND table_name IN"
                " ('feed_events', 'matches', 'incidents', 'match_updates',"
                " 'rejected_documents', 'source_offsets')"),
        6);
    assert_int_equal(pgq_int("SELECT count(*) FROM information_schema.columns"
                             " WHERE table_name = 'matches'"),
                     19);
}

static void test_batch_writes_rows(void **state)
{
    struct fix *f = *state;
    struct store__batch *b = f->b;
    struct store__pending *p = f->p;
    assert_int_equal(store__batch_rows(b), STANDARD_ROWS);
    assert_int_equal(released, 2);
    assert_int_equal(store__pending_count(p), 0);

    struct store__pg *pg = f->pg = writer(NULL, NULL);
    struct store__pg_stats st;
    write_expect(pg, b, 0, &st, 0);
    assert_false(st.safe);
    assert_int_equal(st.retried, 0);
    assert_int_equal(st.inserted, STANDARD_ROWS);
    assert_int_equal(st.skipped, 0);
    assert_int_equal(pgq_all_rows(), STANDARD_ROWS);
    long staged = -1;
    assert_int_equal(store__pg_staged(pg, &staged), 0);
    assert_int_equal(staged, 0); /* the staging tables keep nothing */

    /* feed_events: the exact bytes, the times, sent_at NULL when absent */
    assert_string_equal(
        pgq_text("SELECT encode(raw, 'escape') FROM feed_events WHERE seq = 2"),
        "<event seq=\"2\">\r\n\t<x a='\\\\'/></event>");
    assert_int_equal(
        pgq_int("SELECT (extract(epoch FROM sent_at) * 1000)::bigint"
                " FROM feed_events WHERE seq = 1"),
        BASE_MS + 1);
    assert_int_equal(pgq_int("SELECT (extract(epoch FROM received_at) * 1000)"
                             "::bigint FROM feed_events WHERE seq = 1"),
                     BASE_MS + 6);
    assert_int_equal(
        pgq_int("SELECT count(*) FROM feed_events WHERE sent_at IS NULL"), 1);

    /* match_updates: the message text as sent, and its cause */
    assert_string_equal(
        pgq_text("SELECT delta::text FROM match_updates"
                 " WHERE match_id = 'sr:match:1' AND version = 2"),
        "{\"type\":\"delta\",\"id\":\"sr:match:1\","
        "\"version\":2}");
    assert_string_equal(
        pgq_text("SELECT source || '/' || seq FROM match_updates"
                 " WHERE match_id = 'sr:match:2'"),
        "feed-a/2");

    /* matches: the latest image only */
    assert_string_equal(
        pgq_text(
            "SELECT concat_ws('|', version, sport, competition, home, away,"
            " start_at = '2026-11-21T15:00:00Z', phase, clock_time,"
            " clock_running, home_score, away_score, feed, gap,"
            " (extract(epoch FROM updated_at) * 1000)::bigint,"
            " snapshot->>'version', start_text, msgnr, source)"
            " FROM matches WHERE id = 'sr:match:1'"),
        "2|soccer|Premier League|Arsenal|Chelsea|t|second_half|66:12|t|2|1|"
        "live|f|1795000000002|2|2026-11-21T15:00:00Z|102|feed-a");
    assert_string_equal(
        pgq_text("SELECT concat_ws('|', version, start_at IS NULL, start_text,"
                 " clock_time IS NULL, clock_running IS NULL,"
                 " home_score IS NULL, msgnr IS NULL, feed, gap)"
                 " FROM matches WHERE id = 'sr:match:2'"),
        "1|t|soon|t|f|t|t|stale|t");

    /* incidents: i-1 as of version 2; i-2 removed at 2, keeping its data */
    assert_string_equal(
        pgq_text("SELECT concat_ws('|', type, team, minute, stoppage IS NULL,"
                 " player, assist IS NULL, confirmed, deleted, version)"
                 " FROM incidents WHERE incident_id = 'i-1'"),
        "goal|home|66|t|B. Saka|t|t|f|2");
    assert_string_equal(
        pgq_text("SELECT concat_ws('|', type, team, minute, deleted, version)"
                 " FROM incidents WHERE incident_id = 'i-2'"),
        "yellow_card|away|12|t|2");

    assert_string_equal(
        pgq_text("SELECT concat_ws('|', id, source, seq IS NULL, reason, size,"
                 " encode(raw, 'escape'))"
                 " FROM rejected_documents"),
        "1|feed-a|t|not_well_formed|11|<event seq=");
    assert_int_equal(pgq_int("SELECT acked_seq FROM source_offsets"), 2);
}

/* A snapshot the model cannot make fails the write as a whole: no event
 * is stored (and acked) without its match's latest state. */
static void test_snapshot_failure_writes_nothing(void **state)
{
    struct fix *f = *state;
    store__batch_free(f->b);
    f->b = store__batch_new(0, &failing_ops);
    assert_non_null(f->b);
    fill_standard(f->b, f->p);
    struct store__pg *pg = f->pg = writer(NULL, NULL);
    write_expect(pg, f->b, 0, NULL, -ENOMEM);
    assert_int_equal(pgq_all_rows(), 0);
}

/* A batch written twice (a resend past every guard) adds no row. */
static void test_resend_adds_nothing(void **state)
{
    struct fix *f = *state;
    struct store__batch *b = f->b;
    struct store__pending *p = f->p;
    struct store__pg *pg = f->pg = writer(NULL, NULL);
    write_expect(pg, b, 0, NULL, 0);

    struct store__pg_stats st;
    write_expect(pg, b, 0, &st, 0);
    assert_int_equal(st.retried, 1);
    assert_true(st.safe);
    assert_int_equal(st.inserted, 0);
    assert_int_equal(st.skipped, STANDARD_ROWS);
    assert_int_equal(pgq_all_rows(), STANDARD_ROWS);
    long staged = -1;
    assert_int_equal(store__pg_staged(pg, &staged), 0);
    assert_int_equal(staged, 0); /* the staging tables keep nothing */

    /* The tracker drops a resent event itself. */
    store__batch_reset(b);
    assert_int_equal(store__pending_event(p, new_event("feed-a", 2, 1), b),
                     STORE_PENDING_STALE);
    assert_true(store__batch_is_empty(b));

    /* An older image of a match never replaces the stored one. */
    struct change *old = make_change("sr:match:1", 1);
    old->img.phase = "first_half";
    assert_int_equal(store__batch_put_match(b, &old->img), 0);
    write_expect(pg, b, 0, &st, 0);
    assert_int_equal(st.inserted, 0);
    assert_int_equal(st.skipped, 1);
    assert_string_equal(
        pgq_text("SELECT phase FROM matches WHERE id = 'sr:match:1'"),
        "second_half");
    assert_int_equal(pgq_all_rows(), STANDARD_ROWS);
}

/* Hook: the connection dies after the last byte was sent; the server
 * commits, but its reply never arrives. */
static void lose_reply(struct store__pg *pg, enum store__pg_step step,
                       void *arg)
{
    int *fired = arg;
    if (step != STORE__PG_STEP_ALL_SENT || *fired) {
        return;
    }
    *fired = store__pg_backend_pid(pg);
    /* Swap libpq's socket for an unconnected one: the real connection
     * closes under it, with everything already sent. */
    int fd = store__pg_socket(pg);
    int dead = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_true(dead >= 0);
    assert_int_equal(dup2(dead, fd), fd);
    close(dead);
}

static void test_commit_reply_lost(void **state)
{
    struct fix *f = *state;
    struct store__batch *b = f->b;
    struct store__pending *p = f->p;
    int backend = 0;
    struct store__pg *pg = f->pg = writer(lose_reply, &backend);

    write_expect(pg, b, 1000, NULL, -ECONNRESET);
    assert_false(store__pg_is_up(pg));
    assert_true(backend > 0);
    /* The server did commit: the outcome we could not see. */
    wait_backend_gone(backend);
    assert_int_equal(pgq_all_rows(), STANDARD_ROWS);

    int64_t now = store__pg_retry_at(pg);
    assert_true(now >= 1000 && now <= 1500);
    int64_t outage = -1;
    assert_int_equal(store__pg_connect(pg, now, &outage), STORE_PG_RECOVERED);
    assert_int_equal(outage, now - 1000);
    struct store__pg_stats st;
    write_expect(pg, b, now, &st, 0);
    assert_true(st.safe);
    assert_int_equal(st.retried, 0);
    assert_int_equal(st.inserted, 0);
    assert_int_equal(st.skipped, STANDARD_ROWS);
    assert_int_equal(pgq_all_rows(), STANDARD_ROWS);

    /* Back to plain writes after that. */
    store__batch_reset(b);
    assert_int_equal(store__pending_event(p, new_event("feed-a", 3, 0), b), 0);
    write_expect(pg, b, now, &st, 0);
    assert_false(st.safe);
    assert_int_equal(st.inserted, 2);
    assert_int_equal(pgq_int("SELECT acked_seq FROM source_offsets"), 3);
}

/* Hook: the backend is terminated while the first table's rows stream. */
static void kill_backend(struct store__pg *pg, enum store__pg_step step,
                         void *arg)
{
    int *fired = arg;
    if (step != STORE__PG_STEP_COPY_SENT || *fired) {
        return;
    }
    *fired = store__pg_backend_pid(pg);
    assert_int_equal(pgq_int("SELECT pg_terminate_backend(%d)::int", *fired),
                     1);
    wait_backend_gone(*fired);
}

static void test_backend_killed_mid_copy(void **state)
{
    struct fix *f = *state;
    struct store__batch *b = f->b;
    int backend = 0;
    struct store__pg *pg = f->pg = writer(kill_backend, &backend);

    write_expect(pg, b, 0, NULL, -ECONNRESET);
    assert_true(backend > 0);
    assert_false(store__pg_is_up(pg));
    assert_int_equal(pgq_all_rows(), 0);

    int64_t now = store__pg_retry_at(pg);
    assert_int_equal(store__pg_connect(pg, now, NULL), STORE_PG_RECOVERED);
    struct store__pg_stats st;
    write_expect(pg, b, now, &st, 0);
    assert_int_equal(st.inserted, STANDARD_ROWS);
    assert_int_equal(pgq_all_rows(), STANDARD_ROWS);
}

/* Kills the backend under each of the first three writes. */
static void kill_three_backends(struct store__pg *pg, enum store__pg_step step,
                                void *arg)
{
    int *killed = arg;
    if (step != STORE__PG_STEP_COPY_SENT || *killed == 3) {
        return;
    }
    int pid = store__pg_backend_pid(pg);
    assert_int_equal(pgq_int("SELECT pg_terminate_backend(%d)::int", pid), 1);
    wait_backend_gone(pid);
    (*killed)++;
}

/* A server that takes every connection and loses every write: the backoff
 * still grows (a connection used to reset it, so the wait stayed at its
 * shortest), and the first write that goes through resets it. */
static void test_backoff_grows_across_connections(void **state)
{
    struct fix *f = *state;
    int killed = 0;
    struct store__pg *pg = f->pg = writer(kill_three_backends, &killed);
    int64_t now = 0;
    for (uint32_t i = 1; i <= 3; i++) {
        write_expect(pg, f->b, now, NULL, -ECONNRESET);
        assert_int_equal(store__pg_failures(pg), i);
        now = store__pg_retry_at(pg);
        assert_int_equal(store__pg_connect(pg, now, NULL), STORE_PG_RECOVERED);
        assert_int_equal(store__pg_failures(pg), i);
    }
    assert_int_equal(killed, 3);
    assert_int_equal(pgq_all_rows(), 0);
    write_expect(pg, f->b, now, NULL, 0);
    assert_int_equal(store__pg_failures(pg), 0);
    assert_int_equal(pgq_all_rows(), STANDARD_ROWS);
}

/* The server stops between batches and comes back: the batch waits. */
static void test_server_restart(void **state)
{
    struct fix *f = *state;
    struct store__batch *b = f->b;
    struct store__pending *p = f->p;
    struct store__pg *pg = f->pg = writer(NULL, NULL);
    write_expect(pg, b, 0, NULL, 0);

    store__batch_reset(b);
    assert_int_equal(store__pending_event(p, new_event("feed-a", 3, 0), b), 0);
    assert_int_equal(pgtemp_down(&cluster, "fast"), 0);

    write_expect(pg, b, 100, NULL, -ECONNRESET);
    assert_false(store__pg_is_up(pg));
    int64_t now = store__pg_retry_at(pg);
    assert_int_equal(store__pg_connect(pg, now - 1, NULL), -EAGAIN);
    assert_int_equal(store__pg_connect(pg, now, NULL), -ECONNREFUSED);
    assert_true(strlen(store__pg_error(pg)) > 0);
    assert_true(store__pg_retry_at(pg) >= now);
    assert_true(store__pg_retry_at(pg) <= now + 1000); /* 2nd: up to 1 s */

    assert_int_equal(pgtemp_up(&cluster), 0);
    pgq_connect(cluster.conninfo);
    now = store__pg_retry_at(pg);
    int64_t outage = -1;
    assert_int_equal(store__pg_connect(pg, now, &outage), STORE_PG_RECOVERED);
    assert_int_equal(outage, now - 100);
    assert_int_equal(store__pg_connect(pg, now, &outage), 0);
    write_expect(pg, b, now, NULL, 0);
    assert_int_equal(pgq_all_rows(), STANDARD_ROWS + 1);
    assert_int_equal(pgq_int("SELECT acked_seq FROM source_offsets"), 3);
}

static void test_load_returns_what_was_written(void **state)
{
    struct fix *f = *state;
    struct store__batch *b = f->b;
    assert_int_equal(store__batch_advance(b, "feed-z", 7), 0);
    const struct store_rejected rej = {
        .received_ms = BASE_MS, .reason = "junk", .raw = "x", .raw_len = 1};
    assert_int_equal(store__batch_add_rejected(b, 3, &rej), 0);
    struct store__pg *pg = f->pg = writer(NULL, NULL);
    write_expect(pg, b, 0, NULL, 0);

    struct store_load *load = NULL;
    assert_int_equal(store__pg_load(pg, 0, NULL, 0, 0, &load), 0);
    assert_non_null(load);
    assert_int_equal(load->rejected_id, 3);
    assert_int_equal(load->n_offsets, 2);
    assert_string_equal(load->offsets[0].source, "feed-a");
    assert_int_equal(load->offsets[0].acked_seq, 2);
    assert_int_equal(store_load_acked(load, "feed-z"), 7);
    assert_int_equal(store_load_acked(load, "feed-a"), 2);
    assert_int_equal(store_load_acked(load, "feed-q"), 0);
    assert_int_equal(store_load_acked(NULL, "feed-a"), 0);

    assert_int_equal(load->n_matches, 2);
    const struct store_match *m = &load->matches[0];
    assert_string_equal(m->id, "sr:match:1");
    assert_int_equal(m->version, 2);
    assert_true(m->has_msgnr);
    assert_int_equal(m->msgnr, 102);
    assert_string_equal(m->source, "feed-a");
    assert_string_equal(m->sport, "soccer");
    assert_string_equal(m->competition, "Premier League");
    assert_string_equal(m->home, "Arsenal");
    assert_string_equal(m->away, "Chelsea");
    assert_string_equal(m->start, "2026-11-21T15:00:00Z");
    assert_string_equal(m->phase, "second_half");
    assert_int_equal(m->clock_seconds, 66 * 60 + 12);
    assert_int_equal(m->clock_running, 1);
    assert_true(m->has_score);
    assert_int_equal(m->score_home, 2);
    assert_int_equal(m->score_away, 1);
    assert_int_equal(m->feed, MATCH_FEED_LIVE);
    assert_false(m->gap);
    assert_int_equal(m->updated_ms, BASE_MS + 2);
    /* The live incident; the removed one is left out. */
    assert_int_equal(m->n_incidents, 1);
    assert_string_equal(m->incidents[0].id, "i-1");
    assert_string_equal(m->incidents[0].type, "goal");
    assert_string_equal(m->incidents[0].player, "B. Saka");
    assert_null(m->incidents[0].assist);
    assert_int_equal(m->incidents[0].team, EVENT_TEAM_HOME);
    assert_int_equal(m->incidents[0].minute, 66);
    assert_int_equal(m->incidents[0].stoppage, EVENT_ABSENT);
    assert_int_equal(m->incidents[0].confirmed, 1);
    assert_int_equal(m->incidents[0].version, 2);

    m = &load->matches[1];
    assert_string_equal(m->id, "sr:match:2");
    assert_false(m->has_msgnr);
    assert_false(m->has_score);
    assert_int_equal(m->clock_seconds, EVENT_ABSENT);
    assert_int_equal(m->clock_running, 1);
    assert_string_equal(m->start, "soon");
    assert_int_equal(m->feed, MATCH_FEED_STALE);
    assert_true(m->gap);
    assert_int_equal(m->n_incidents, 0);
    store_load_free(load);

    /* One match: that match with its incidents, no offsets. */
    assert_int_equal(store__pg_load(pg, 0, "sr:match:1", 0, 0, &load), 0);
    assert_int_equal(load->n_matches, 1);
    assert_string_equal(load->matches[0].id, "sr:match:1");
    assert_int_equal(load->matches[0].n_incidents, 1);
    assert_int_equal(load->n_offsets, 0);
    store_load_free(load);
    /* An id that is not stored, and one that needs quoting. */
    assert_int_equal(store__pg_load(pg, 0, "sr:match:9", 0, 0, &load), 0);
    assert_int_equal(load->n_matches, 0);
    store_load_free(load);
    assert_int_equal(store__pg_load(pg, 0, "x' OR 'a' = 'a", 0, 0, &load), 0);
    assert_int_equal(load->n_matches, 0);
    store_load_free(load);

    /* Retention: a match over for longer is left out of the start-up load
     * (its incidents too), but a restarted match actor still gets it. */
    pgq_exec(
        "UPDATE matches SET phase = 'ended',"
        " updated_at = now() - interval '2 hours' WHERE id = 'sr:match:1'");
    pgq_exec(
        "UPDATE matches SET phase = 'interrupted',"
        " updated_at = now() - interval '2 hours' WHERE id = 'sr:match:2'");
    assert_int_equal(store__pg_load(pg, 0, NULL, 3600, 0, &load), 0);
    assert_int_equal(load->n_matches, 1);
    assert_string_equal(load->matches[0].id, "sr:match:2");
    assert_int_equal(load->n_offsets, 2);
    store_load_free(load);
    assert_int_equal(store__pg_load(pg, 0, NULL, 3 * 3600, 0, &load), 0);
    assert_int_equal(load->n_matches, 2);
    assert_int_equal(load->matches[0].n_incidents, 1);
    store_load_free(load);
    assert_int_equal(store__pg_load(pg, 0, "sr:match:1", 3600, 0, &load), 0);
    assert_int_equal(load->n_matches, 1);
    assert_int_equal(load->matches[0].n_incidents, 1);
    store_load_free(load);
    /* An unfinished match idle for longer than idle_s is left out too
     * (the ended one is within its 3-hour retention). */
    assert_int_equal(store__pg_load(pg, 0, NULL, 3 * 3600, 3600, &load), 0);
    assert_int_equal(load->n_matches, 1);
    assert_string_equal(load->matches[0].id, "sr:match:1");
    store_load_free(load);
    assert_int_equal(store__pg_load(pg, 0, NULL, 3 * 3600, 3 * 3600, &load), 0);
    assert_int_equal(load->n_matches, 2);
    store_load_free(load);
    pgq_exec(
        "UPDATE matches SET phase = 'second_half' WHERE id = 'sr:match:1'");

    /* Out of memory building the load: reported, the connection usable. */
    store__alloc_fail_in = 1;
    assert_int_equal(store__pg_load(pg, 0, NULL, 0, 0, &load), -ENOMEM);
    store__alloc_fail_in = 0;
    assert_null(load);
    assert_true(store__pg_is_up(pg));

    /* The order comes from the snapshot, not from ids or versions. */
    store__batch_reset(b);
    struct change *c = make_change("sr:match:1", 3);
    add_incident(c, "i-9", "red_card", EVENT_TEAM_AWAY, 70, 1);
    add_incident(c, "i-5", "var", EVENT_TEAM_NONE, 71, 0);
    add_incident(c, "i-1", "goal", EVENT_TEAM_HOME, 66, 1);
    c->inc[2].version = 2;
    c->up.n_upserted = 2;
    add_change(b, c, NULL, 0);
    write_expect(pg, b, 0, NULL, 0);
    assert_int_equal(store__pg_load(pg, 0, NULL, 0, 0, &load), 0);
    m = &load->matches[0];
    assert_int_equal(m->n_incidents, 3);
    assert_string_equal(m->incidents[0].id, "i-9");
    assert_string_equal(m->incidents[1].id, "i-5");
    assert_int_equal(m->incidents[1].team, EVENT_TEAM_NONE);
    assert_string_equal(m->incidents[2].id, "i-1");
    store_load_free(load);
}

static void test_rejected_truncated(void **state)
{
    struct fix *f = *state;
    store__batch_free(f->b);
    struct store__batch *b = f->b = store__batch_new(16, &test_ops);
    struct store__pending *p = f->p;
    char raw[100];
    memset(raw, 'x', sizeof(raw));
    const struct store_rejected plain = {
        .source = NULL,
        .received_ms = BASE_MS,
        .reason = "too_large",
        .raw = raw,
        .raw_len = sizeof(raw),
    };
    assert_int_equal(store__batch_add_rejected(b, 5, &plain), 0);
    const struct store_rejected seqd = {
        .source = "feed-\xff",
        .seq = 9,
        .has_seq = true,
        .received_ms = BASE_MS,
        .reason = "too_large",
        .raw = raw,
        .raw_len = 40,
        .size = 1u << 20,
    };
    assert_int_equal(store__pending_rejected(p, 6, &seqd, b), 0);
    assert_int_equal(store__batch_rows(b), 3);
    struct store__pg *pg = f->pg = writer(NULL, NULL);
    write_expect(pg, b, 0, NULL, 0);

    assert_string_equal(
        pgq_text("SELECT concat_ws('|', length(raw), size, source IS NULL,"
                 " seq IS NULL) FROM rejected_documents WHERE id = 5"),
        "16|100|t|t");
    assert_string_equal(
        pgq_text("SELECT concat_ws('|', length(raw), size, source, seq)"
                 " FROM rejected_documents WHERE id = 6"),
        "16|1048576|feed-\xef\xbf\xbd|9");
    assert_int_equal(pgq_int("SELECT acked_seq FROM source_offsets"), 9);
}

/* A batch the server rejects as it is: reported, rolled back, and the
 * connection stays usable. */
static void test_permanent_error(void **state)
{
    struct fix *f = *state;
    struct store__batch *b = f->b;
    struct store__pg *pg = f->pg = writer(NULL, NULL);
    pgq_exec("ALTER TABLE feed_events ADD CONSTRAINT test_tiny"
             " CHECK (length(raw) < 5)");
    write_expect(pg, b, 0, NULL, -EINVAL);
    assert_non_null(strstr(store__pg_error(pg), "23514"));
    assert_true(store__pg_is_up(pg));
    pgq_exec("ALTER TABLE feed_events DROP CONSTRAINT test_tiny");
    assert_int_equal(pgq_all_rows(), 0);
    int64_t now = store__pg_retry_at(pg);
    write_expect(pg, b, now, NULL, 0);
    assert_int_equal(pgq_all_rows(), STANDARD_ROWS);
}

static void test_schema_missing(void **state)
{
    (void)state;
    char conninfo[900];
    snprintf(conninfo, sizeof(conninfo), "%s dbname=postgres",
             cluster.conninfo);
    struct store__pg_config cfg = {.conninfo = conninfo, .seed = 1};
    struct store__pg *pg = store__pg_new(&cfg);
    assert_int_equal(store__pg_connect(pg, 0, NULL), -ENOENT);
    assert_non_null(strstr(store__pg_error(pg), "42P01"));
    assert_false(store__pg_is_up(pg));
    store__pg_free(pg);

    cfg.conninfo = "host=/nonexistent port=1";
    pg = store__pg_new(&cfg);
    assert_int_equal(store__pg_connect(pg, 0, NULL), -ECONNREFUSED);
    write_expect(pg, NULL, 0, NULL, -ENOTCONN);
    store__pg_free(pg);
}

/* ---- the cluster --------------------------------------------------------- */

static int group_setup(void **state)
{
    (void)state;
    if (pgtemp_start(&cluster, false) != 0) {
        pgtemp_stop(&cluster);
        return -1;
    }
    pgq_connect(cluster.conninfo);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    pgq_close();
    pgtemp_stop(&cluster);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_backoff_full_jitter),
        cmocka_unit_test(test_classify),
        cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_rfc3339),
        cmocka_unit_test(test_map),
        cmocka_unit_test(test_allocation_failures),
        cmocka_unit_test(test_schema_applies_twice),
        cmocka_unit_test_setup_teardown(test_batch_writes_rows, setup_standard,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_failure_writes_nothing,
                                        setup_empty, teardown),
        cmocka_unit_test_setup_teardown(test_backoff_grows_across_connections,
                                        setup_standard, teardown),
        cmocka_unit_test_setup_teardown(test_resend_adds_nothing,
                                        setup_standard, teardown),
        cmocka_unit_test_setup_teardown(test_offsets_complete_prefix,
                                        setup_empty, teardown),
        cmocka_unit_test_setup_teardown(test_commit_reply_lost, setup_standard,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_backend_killed_mid_copy,
                                        setup_standard, teardown),
        cmocka_unit_test_setup_teardown(test_server_restart, setup_standard,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_load_returns_what_was_written,
                                        setup_standard, teardown),
        cmocka_unit_test_setup_teardown(test_rejected_truncated, setup_empty,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_permanent_error, setup_standard,
                                        teardown),
        cmocka_unit_test(test_schema_missing),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
