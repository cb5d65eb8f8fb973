/* tests/notify_hub_test.c - the hub: subscriptions, fan-out, resume,
 * batching, conflation, limits and errors, driven directly with a fake
 * model and a fake transport. */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>

#include <cmocka.h>

#include "ingest/event.h"
#include "notify/notify_impl.h"

/* ---- a fake model: images and updates with the real layouts ------------- */

static int images_alive, updates_alive, snapshots_serialized;

static struct match_image *img_new(const char *id, uint64_t version)
{
    struct match_image *img = calloc(1, sizeof(*img));
    assert_non_null(img);
    atomic_init(&img->refs, 1);
    img->id = strdup(id);
    img->version = version;
    images_alive++;
    return img;
}

static void fake_image_unref(struct match_image *img)
{
    if (img && atomic_fetch_sub(&img->refs, 1) == 1) {
        free((char *)img->id);
        free(img);
        images_alive--;
    }
}

static void fake_snapshot_json(const struct match_image *img,
                               struct actor_buf *out)
{
    snapshots_serialized++;
    actor_buf_printf(out,
                     "{\"type\":\"snapshot\",\"match\":{\"id\":\"%s\","
                     "\"version\":%" PRIu64 "}}",
                     img->id, img->version);
}

static struct update *up_new(const char *id, uint64_t version,
                             enum update_kind kind)
{
    struct update *up = calloc(1, sizeof(*up));
    assert_non_null(up);
    atomic_init(&up->refs, 1);
    up->kind = kind;
    up->image = img_new(id, version);
    up->sent_ms = (int64_t)version * 10;
    struct actor_buf b;
    actor_buf_init(&b);
    actor_buf_add(&b, (char[NOTIFY__HEADROOM]){0}, NOTIFY__HEADROOM);
    if (kind == UPDATE_DELTA) {
        actor_buf_printf(
            &b,
            "{\"type\":\"delta\",\"id\":\"%s\",\"version\":%" PRIu64
            ",\"changes\":{}}",
            id, version);
    } else {
        fake_snapshot_json(up->image, &b);
        snapshots_serialized--; /* the model's, not notify's */
    }
    assert_int_equal(b.err, 0);
    up->json_len = b.len - NOTIFY__HEADROOM;
    up->json = actor_buf_take(&b, NULL) + NOTIFY__HEADROOM;
    updates_alive++;
    return up;
}

static void fake_update_unref(struct update *up)
{
    if (up && atomic_fetch_sub(&up->refs, 1) == 1) {
        fake_image_unref(up->image);
        free((char *)up->json - NOTIFY__HEADROOM);
        free(up);
        updates_alive--;
    }
}

static const struct notify__model fake_model = {
    .update_unref = fake_update_unref,
    .image_unref = fake_image_unref,
    .snapshot_json = fake_snapshot_json,
};

/* ---- a fake transport and a checking client ----------------------------- */

#define MAX_VIEW 64
#define MAX_LOG  4096

struct rec {
    char type[16];
    char id[EVENT_ID_MAX + 1];
    uint64_t version;
    bool recovered;
    char text[160]; /* pong id, error reason, feed state */
};

struct tclient {
    struct notify__client c;
    int wants;    /* want_write calls */
    int asked_at; /* when the last one came, in want_write calls overall */
    bool closed;  /* the hub asked to close */
    uint16_t code;
    bool added;
    int frames;
    size_t max_frame;
    const char *last_data; /* of the last frame taken */
    /* per match: the client's version, checked as messages arrive */
    struct {
        char id[EVENT_ID_MAX + 1];
        uint64_t version;
    } view[MAX_VIEW];
    int n_view;
    struct rec log[MAX_LOG];
    int n_log;
};

static void fake_want_write(void *io)
{
    static int asked;
    ((struct tclient *)io)->wants++;
    ((struct tclient *)io)->asked_at = ++asked;
}

static void fake_close(void *io, uint16_t code, const char *reason)
{
    (void)reason;
    struct tclient *t = io;
    t->closed = true;
    t->code = code;
}

static struct notify__hub_config base_cfg(void)
{
    return (struct notify__hub_config){
        .ring = 8,
        .max_subs = 16,
        .max_unknown = 8,
        .max_frame_in = 4096,
        .max_frame_out = 64 * 1024,
        .backlog_soft = 64 * 1024,
        .backlog_hard = 256 * 1024,
        .stall_ms = 10000,
        .ring_idle_ms = 600000,
        .forget_ms = 3600000,
        .model = &fake_model,
        .want_write = fake_want_write,
        .close = fake_close,
    };
}

static struct notify__hub *hub_new(const struct notify__hub_config *cfg)
{
    struct notify__hub *hub = notify__hub_new(cfg);
    assert_non_null(hub);
    return hub;
}

static struct tclient *tc_new(struct notify__hub *hub)
{
    struct tclient *t = calloc(1, sizeof(*t));
    assert_non_null(t);
    assert_int_equal(notify__hub_client_add(hub, &t->c, t, 0), 0);
    t->added = true;
    return t;
}

static void tc_free(struct notify__hub *hub, struct tclient *t)
{
    if (t->added) {
        notify__hub_client_remove(hub, &t->c);
    }
    free(t);
}

static void check_message(struct tclient *t, const char *text,
                          const struct notify_json_tok *tk, uint32_t i)
{
    assert_true(t->n_log < MAX_LOG);
    struct rec *r = &t->log[t->n_log++];
    memset(r, 0, sizeof(*r));
    uint32_t v = notify_json_get(text, tk, i, "type");
    assert_int_not_equal(v, 0);
    assert_int_equal(
        notify_json_str(text, &tk[v], r->type, sizeof(r->type), NULL), 0);
    r->recovered = notify_json_get(text, tk, i, "recovered") != 0;
    uint32_t holder = i;
    if (strcmp(r->type, "snapshot") == 0) {
        holder = notify_json_get(text, tk, i, "match");
    }
    if (strcmp(r->type, "snapshot") == 0 || strcmp(r->type, "delta") == 0) {
        uint32_t id = notify_json_get(text, tk, holder, "id");
        uint32_t ver = notify_json_get(text, tk, holder, "version");
        assert_int_equal(
            notify_json_str(text, &tk[id], r->id, sizeof(r->id), NULL), 0);
        assert_int_equal(notify_json_u64(text, &tk[ver], &r->version), 0);
        /* The protocol's promise, checked on every message. */
        int k = 0;
        while (k < t->n_view && strcmp(t->view[k].id, r->id) != 0) {
            k++;
        }
        if (strcmp(r->type, "delta") == 0) {
            if (k == t->n_view) {
                fail_msg("delta %s v%" PRIu64 " before any snapshot", r->id,
                         r->version);
            }
            if (r->version != t->view[k].version + 1) {
                fail_msg("delta %s v%" PRIu64 " after v%" PRIu64, r->id,
                         r->version, t->view[k].version);
            }
        }
        if (k == t->n_view) {
            assert_true(t->n_view < MAX_VIEW);
            memcpy(t->view[k].id, r->id, sizeof(r->id));
            t->n_view++;
        }
        t->view[k].version = r->version;
        return;
    }
    const char *field = strcmp(r->type, "pong") == 0    ? "id"
                        : strcmp(r->type, "error") == 0 ? "reason"
                                                        : "state";
    uint32_t f = notify_json_get(text, tk, i, field);
    if (f) {
        snprintf(r->text, sizeof(r->text), "%.*s", (int)tk[f].len,
                 text + tk[f].start);
    }
}

/* Takes every frame the hub has for @t. Returns how many. */
static int drain(struct notify__hub *hub, struct tclient *t)
{
    static struct notify_json_tok tk[1 << 16];
    int n = 0;
    struct notify__frame f;
    int rc;
    while ((rc = notify__hub_frame(hub, &t->c, &f)) == 1) {
        n++;
        t->frames++;
        t->last_data = f.data;
        if (f.len > t->max_frame) {
            t->max_frame = f.len;
        }
        /* The headroom before the payload is the transport's to write. */
        memset((char *)f.data - NOTIFY__HEADROOM, 0x55, NOTIFY__HEADROOM);
        int nt = notify_json_parse(f.data, f.len, tk, 1 << 16, NULL);
        assert_true(nt > 0);
        if (tk[0].type == NOTIFY_JSON_ARRAY) {
            assert_int_equal(tk[0].size, f.n_msgs);
            assert_true(f.n_msgs > 1);
            for (uint32_t i = 1, k = 0; k < tk[0].size; k++, i = tk[i].next) {
                check_message(t, f.data, tk, i);
            }
        } else {
            assert_int_equal(f.n_msgs, 1);
            check_message(t, f.data, tk, 0);
        }
        notify__hub_frame_done(hub, &f);
    }
    assert_int_equal(rc, 0);
    return n;
}

static void rx(struct notify__hub *hub, struct tclient *t, const char *msg)
{
    assert_int_equal(notify__hub_client_rx(hub, &t->c, msg, strlen(msg)), 0);
}

static void update(struct notify__hub *hub, const char *id, uint64_t version,
                   enum update_kind kind)
{
    struct update *up = up_new(id, version, kind);
    assert_int_equal(notify__hub_update(hub, up), 0);
    fake_update_unref(up);
}

static uint64_t view_of(const struct tclient *t, const char *id)
{
    for (int k = 0; k < t->n_view; k++) {
        if (strcmp(t->view[k].id, id) == 0) {
            return t->view[k].version;
        }
    }
    return 0;
}

/* A client resuming has a version already: seed its view with it. */
static void seed_view(struct tclient *t, const char *id, uint64_t version)
{
    snprintf(t->view[0].id, sizeof(t->view[0].id), "%s", id);
    t->view[0].version = version;
    t->n_view = 1;
}

/* The log entries from @from on, as "type:id:version[:r]" joined by ' '. */
static const char *log_str(const struct tclient *t, int from)
{
    static char out[8192];
    size_t n = 0;
    out[0] = '\0';
    for (int i = from; i < t->n_log && n < sizeof(out) - 128; i++) {
        const struct rec *r = &t->log[i];
        if (r->id[0]) {
            n += (size_t)snprintf(
                out + n, sizeof(out) - n, "%s%s:%s:%" PRIu64 "%s", n ? " " : "",
                r->type, r->id, r->version, r->recovered ? ":r" : "");
        } else {
            n += (size_t)snprintf(out + n, sizeof(out) - n, "%s%s:%s",
                                  n ? " " : "", r->type, r->text);
        }
    }
    return out;
}

static int teardown_check(void **state)
{
    (void)state;
    notify__alloc_fail_at = -1;
    /* Every image and update the tests made has been released. */
    int images = images_alive, updates = updates_alive;
    images_alive = updates_alive = snapshots_serialized = 0;
    assert_int_equal(images, 0);
    assert_int_equal(updates, 0);
    return 0;
}

/* ---- tests
 * ---------------------------------------------------------------------- */

static void test_subscribe_snapshot_then_deltas(void **state)
{
    (void)state;
    struct notify__hub_config cfg = base_cfg();
    struct notify__hub *hub = hub_new(&cfg);
    update(hub, "m1", 1, UPDATE_DELTA);
    update(hub, "m1", 2, UPDATE_DELTA);
    update(hub, "m2", 1, UPDATE_SNAPSHOT);
    struct tclient *t = tc_new(hub);
    assert_int_equal(drain(hub, t), 0);

    rx(hub, t, "{\"op\":\"subscribe\",\"matches\":[\"m1\"]}");
    assert_int_equal(t->wants, 1);
    assert_int_equal(drain(hub, t), 1);
    assert_string_equal(log_str(t, 0), "snapshot:m1:2");

    update(hub, "m1", 3, UPDATE_DELTA);
    update(hub, "m2", 2, UPDATE_DELTA); /* not subscribed */
    update(hub, "m1", 4, UPDATE_DELTA);
    /* Two deltas waiting: one frame, a JSON array. */
    assert_int_equal(drain(hub, t), 1);
    assert_string_equal(log_str(t, 1), "delta:m1:3 delta:m1:4");
    assert_int_equal(hub->stats.messages, 3);
    assert_int_equal(hub->stats.frames, 2);
    assert_int_equal(hub->stats.deltas, 2);

    tc_free(hub, t);
    notify__hub_free(hub);
}

static void test_fanout_shares_one_buffer(void **state)
{
    (void)state;
    struct notify__hub_config cfg = base_cfg();
    struct notify__hub *hub = hub_new(&cfg);
    update(hub, "m", 1, UPDATE_DELTA);
    struct tclient *t[3];
    for (int i = 0; i < 3; i++) {
        t[i] = tc_new(hub);
        rx(hub, t[i], "{\"op\":\"subscribe\",\"matches\":\"*\"}");
    }
    for (int i = 0; i < 3; i++) {
        assert_int_equal(drain(hub, t[i]), 1);
    }
    /* One snapshot serialized for three clients. */
    assert_int_equal(snapshots_serialized, 1);

    struct update *up = up_new("m", 2, UPDATE_DELTA);
    assert_int_equal(notify__hub_update(hub, up), 0);
    for (int i = 0; i < 3; i++) {
        struct notify__frame f;
        assert_int_equal(notify__hub_frame(hub, &t[i]->c, &f), 1);
        /* The model's own bytes, not a copy. */
        assert_ptr_equal(f.data, up->json);
        assert_int_equal(f.len, up->json_len);
        assert_int_equal(f.n_deltas, 1);
        assert_int_equal(f.oldest_sent_ms, 20);
        notify__hub_frame_done(hub, &f);
    }
    assert_int_equal(snapshots_serialized, 1);
    fake_update_unref(up);
    for (int i = 0; i < 3; i++) {
        tc_free(hub, t[i]);
    }
    notify__hub_free(hub);
    snapshots_serialized = 0;
}

static void test_wildcard_log_shares_frames(void **state)
{
    (void)state;
    struct notify__hub_config cfg = base_cfg();
    struct notify__hub *hub = hub_new(&cfg);
    update(hub, "a", 1, UPDATE_DELTA);
    update(hub, "b", 1, UPDATE_DELTA);
    struct tclient *t[3];
    for (int i = 0; i < 3; i++) {
        t[i] = tc_new(hub);
        rx(hub, t[i], "{\"op\":\"subscribe\",\"matches\":\"*\"}");
        drain(hub, t[i]);
        t[i]->wants = 0;
    }
    /* Updates ask nobody to write: the flush does, once, for each client
     * behind. */
    update(hub, "a", 2, UPDATE_DELTA);
    update(hub, "b", 2, UPDATE_DELTA);
    update(hub, "a", 3, UPDATE_DELTA);
    assert_int_equal(t[0]->wants + t[1]->wants + t[2]->wants, 0);
    assert_true(notify__hub_flush_due(hub));
    notify__hub_flush(hub);
    assert_false(notify__hub_flush_due(hub));
    notify__hub_flush(hub); /* asked already: no second callback */
    for (int i = 0; i < 3; i++) {
        assert_int_equal(t[i]->wants, 1);
    }
    /* The first builds the frame, the others get the same bytes. */
    for (int i = 0; i < 3; i++) {
        assert_int_equal(drain(hub, t[i]), 1);
        assert_string_equal(log_str(t[i], 2), "delta:a:2 delta:b:2 delta:a:3");
    }
    assert_ptr_equal(t[1]->last_data, t[0]->last_data);
    assert_ptr_equal(t[2]->last_data, t[0]->last_data);
    assert_int_equal(hub->stats.frames, 3 + 3);
    assert_int_equal(hub->stats.deltas, 9);
    /* Caught up and nothing new: the next flush asks nobody. */
    notify__hub_flush(hub);
    assert_int_equal(t[0]->wants, 1);
    /* Something new: every one is asked, in the order they subscribed,
     * also one caught up since the last flush, so that every cycle writes
     * them in the same order. */
    update(hub, "b", 3, UPDATE_DELTA);
    drain(hub, t[1]); /* caught up again before the flush */
    assert_int_equal(t[1]->wants, 1);
    notify__hub_flush(hub);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(t[i]->wants, 2);
    }
    assert_true(t[0]->asked_at < t[1]->asked_at);
    assert_true(t[1]->asked_at < t[2]->asked_at);
    /* t[1] has nothing new when its turn comes: no frame. */
    assert_int_equal(drain(hub, t[1]), 0);
    /* One reads late: it gets its own frame with what came since. */
    drain(hub, t[0]);
    update(hub, "a", 4, UPDATE_DELTA);
    drain(hub, t[1]);
    drain(hub, t[0]);
    assert_string_equal(log_str(t[0], 5), "delta:b:3 delta:a:4");
    assert_string_equal(log_str(t[1], 5), "delta:b:3 delta:a:4");
    /* A jump in the log: a snapshot instead, after the rest of the log. */
    update(hub, "a", 9, UPDATE_DELTA);
    update(hub, "b", 4, UPDATE_DELTA);
    drain(hub, t[2]);
    assert_string_equal(log_str(t[2], 5),
                        "delta:b:3 delta:a:4 delta:b:4 snapshot:a:9");
    for (int i = 0; i < 3; i++) {
        tc_free(hub, t[i]);
    }
    notify__hub_free(hub);
}

static void test_wildcard_far_behind(void **state)
{
    (void)state;
    struct notify__hub_config cfg = base_cfg();
    cfg.backlog_soft = 400; /* the log keeps twice that */
    struct notify__hub *hub = hub_new(&cfg);
    for (int m = 0; m < 4; m++) {
        update(hub, (const char *[]){"a", "b", "c", "d"}[m], 1, UPDATE_DELTA);
    }
    struct tclient *t = tc_new(hub);
    rx(hub, t, "{\"op\":\"subscribe\",\"matches\":\"*\"}");
    drain(hub, t);
    assert_int_equal(t->n_log, 4);
    /* Past backlog_soft but still in the log: snapshots of the matches it
     * missed, and of those only. */
    for (uint64_t v = 2; v <= 12; v++) {
        update(hub, v % 2 ? "a" : "b", v, UPDATE_DELTA);
    }
    assert_true(notify__log_lag(&hub->log, t->c.cursor) > cfg.backlog_soft);
    assert_true(t->c.cursor >= hub->log.tail);
    drain(hub, t);
    assert_string_equal(log_str(t, 4), "snapshot:a:11 snapshot:b:12");
    assert_true(hub->stats.conflated >= 11);
    /* Caught up: deltas again. */
    update(hub, "c", 2, UPDATE_DELTA);
    drain(hub, t);
    assert_string_equal(log_str(t, 6), "delta:c:2");
    /* Out of the log altogether: a snapshot of every match. */
    for (uint64_t v = 13; v <= 60; v++) {
        update(hub, "a", v, UPDATE_DELTA);
    }
    assert_true(t->c.cursor < hub->log.tail);
    drain(hub, t);
    assert_string_equal(log_str(t, 7),
                        "snapshot:a:60 snapshot:b:12 snapshot:c:2 "
                        "snapshot:d:1");
    assert_false(t->c.conflating);
    tc_free(hub, t);
    notify__hub_free(hub);
}

static void test_match_not_seen_yet(void **state)
{
    (void)state;
    struct notify__hub_config cfg = base_cfg();
    struct notify__hub *hub = hub_new(&cfg);
    struct tclient *t = tc_new(hub);
    rx(hub, t, "{\"op\":\"subscribe\",\"matches\":[\"later\"]}");
    assert_int_equal(drain(hub, t), 0);
    assert_int_equal(hub->n_unknown, 1);
    /* First sight arrives as a delta: the client still starts with a
     * snapshot. */
    update(hub, "later", 5, UPDATE_DELTA);
    update(hub, "later", 6, UPDATE_DELTA);
    drain(hub, t);
    assert_string_equal(log_str(t, 0), "snapshot:later:6");
    update(hub, "later", 7, UPDATE_DELTA);
    drain(hub, t);
    assert_string_equal(log_str(t, 1), "delta:later:7");
    assert_int_equal(hub->n_unknown, 0);
    tc_free(hub, t);
    notify__hub_free(hub);
}

static void test_wildcard_gets_new_matches(void **state)
{
    (void)state;
    struct notify__hub_config cfg = base_cfg();
    struct notify__hub *hub = hub_new(&cfg);
    update(hub, "a", 1, UPDATE_DELTA);
    struct tclient *t = tc_new(hub);
    rx(hub, t, "{\"op\":\"subscribe\",\"matches\":[\"a\"]}");
    rx(hub, t, "{\"op\":\"subscribe\",\"matches\":\"*\"}");
    /* The list subscription folded into "*": one snapshot only. */
    assert_int_equal(t->c.n_subs, 0);
    drain(hub, t);
    assert_string_equal(log_str(t, 0), "snapshot:a:1");
    update(hub, "b", 1, UPDATE_DELTA);
    update(hub, "a", 2, UPDATE_DELTA);
    update(hub, "b", 2, UPDATE_DELTA);
    drain(hub, t);
    assert_string_equal(log_str(t, 1), "delta:a:2 snapshot:b:2");
    tc_free(hub, t);
    notify__hub_free(hub);
}

static void test_resume_since(void **state)
{
    (void)state;
    struct notify__hub_config cfg = base_cfg();
    cfg.ring = 4;
    struct notify__hub *hub = hub_new(&cfg);
    for (uint64_t v = 1; v <= 10; v++) {
        update(hub, "m", v, UPDATE_DELTA);
    }
    struct {
        const char *since;
        const char *want;
    } cases[] = {
        {"10", ""},
        {"8", "delta:m:9:r delta:m:10"},
        {"6", "delta:m:7:r delta:m:8 delta:m:9 delta:m:10"},
        {"5", "snapshot:m:10"}, /* the ring holds 7..10 */
        {"0", "snapshot:m:10"},
        {"11", "snapshot:m:10"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct tclient *t = tc_new(hub);
        char msg[128];
        snprintf(msg, sizeof(msg),
                 "{\"op\":\"subscribe\",\"matches\":[\"m\"],"
                 "\"since\":{\"m\":%s}}",
                 cases[i].since);
        seed_view(t, "m", strtoull(cases[i].since, NULL, 10));
        rx(hub, t, msg);
        drain(hub, t);
        if (strcmp(log_str(t, 0), cases[i].want) != 0) {
            fail_msg("since %s: got '%s', want '%s'", cases[i].since,
                     log_str(t, 0), cases[i].want);
        }
        assert_int_equal(view_of(t, "m"), 10);
        tc_free(hub, t);
    }
    assert_int_equal(hub->stats.recovered, 2);
    assert_int_equal(hub->stats.resume_snapshots, 3);

    /* since with "*", and for a match not seen yet. */
    struct tclient *t = tc_new(hub);
    seed_view(t, "m", 9);
    rx(hub, t,
       "{\"op\":\"subscribe\",\"matches\":\"*\","
       "\"since\":{\"m\":9,\"new\":3}}");
    drain(hub, t);
    assert_string_equal(log_str(t, 0), "delta:m:10:r");
    update(hub, "new", 4, UPDATE_DELTA);
    drain(hub, t);
    assert_string_equal(log_str(t, 1), "snapshot:new:4");
    tc_free(hub, t);
    notify__hub_free(hub);
}

static void test_batches_respect_frame_limit(void **state)
{
    (void)state;
    struct notify__hub_config cfg = base_cfg();
    cfg.max_frame_out = 200;
    cfg.ring = 0;
    struct notify__hub *hub = hub_new(&cfg);
    update(hub, "m", 1, UPDATE_DELTA);
    struct tclient *t = tc_new(hub);
    rx(hub, t, "{\"op\":\"subscribe\",\"matches\":[\"m\"]}");
    drain(hub, t);
    for (uint64_t v = 2; v <= 21; v++) {
        update(hub, "m", v, UPDATE_DELTA);
    }
    int frames = drain(hub, t);
    assert_true(frames > 1);
    assert_true(frames < 20);
    assert_true(t->max_frame <= 200);
    assert_int_equal(view_of(t, "m"), 21);
    assert_int_equal(t->n_log, 21);

    /* A message bigger than the limit still goes, alone. */
    char big[300];
    snprintf(big, sizeof(big), "{\"op\":\"ping\",\"id\":\"%060d\"}", 0);
    rx(hub, t, big);
    rx(hub, t, big);
    rx(hub, t, big);
    assert_int_equal(drain(hub, t), 2); /* 84 + 84 fit in 200; 84 alone */
    cfg.max_frame_out = 50;
    struct notify__hub *small = hub_new(&cfg);
    struct tclient *u = tc_new(small);
    rx(small, u, big);
    rx(small, u, big);
    assert_int_equal(drain(small, u), 2);
    tc_free(small, u);
    notify__hub_free(small);
    tc_free(hub, t);
    notify__hub_free(hub);
}

static void test_slow_client_is_conflated(void **state)
{
    (void)state;
    struct notify__hub_config cfg = base_cfg();
    cfg.backlog_soft = 600;
    struct notify__hub *hub = hub_new(&cfg);
    update(hub, "a", 1, UPDATE_DELTA);
    update(hub, "b", 1, UPDATE_DELTA);
    struct tclient *slow = tc_new(hub);
    struct tclient *fast = tc_new(hub);
    rx(hub, slow, "{\"op\":\"subscribe\",\"matches\":[\"a\",\"b\"]}");
    rx(hub, fast, "{\"op\":\"subscribe\",\"matches\":\"*\"}");
    drain(hub, slow);
    drain(hub, fast);
    for (uint64_t v = 2; v <= 40; v++) {
        update(hub, "a", v, UPDATE_DELTA);
        if (v % 4 == 0) {
            update(hub, "b", v / 4 + 1, UPDATE_DELTA);
        }
        drain(hub, fast);
    }
    assert_true(slow->c.conflating);
    /* Conflated: nothing of a match is queued, snapshots are owed. */
    assert_int_equal(slow->c.queue.len, 0);
    assert_int_equal(slow->c.n_pending, 2);
    assert_true(hub->stats.conflated > 0);
    drain(hub, slow);
    assert_string_equal(log_str(slow, 2), "snapshot:a:40 snapshot:b:11");
    assert_false(slow->c.conflating);
    assert_null(slow->c.pending);
    /* Caught up: plain deltas again. */
    update(hub, "a", 41, UPDATE_DELTA);
    drain(hub, slow);
    assert_string_equal(log_str(slow, 4), "delta:a:41");
    /* The fast one saw every version. */
    drain(hub, fast);
    assert_int_equal(fast->n_log, 2 + 40 + 10);
    assert_false(slow->closed);
    tc_free(hub, slow);
    tc_free(hub, fast);
    notify__hub_free(hub);
}

static void test_stalled_client_is_closed(void **state)
{
    (void)state;
    struct notify__hub_config cfg = base_cfg();
    cfg.backlog_soft = 300;
    cfg.stall_ms = 5000;
    struct notify__hub *hub = hub_new(&cfg);
    update(hub, "a", 1, UPDATE_DELTA);
    struct tclient *t = tc_new(hub);    /* added at 0 */
    struct tclient *idle = tc_new(hub); /* owes nothing: never closed */
    rx(hub, t, "{\"op\":\"subscribe\",\"matches\":\"*\"}");
    drain(hub, t);
    notify__hub_tick(hub, 1000); /* progress: a frame since the last tick */
    for (uint64_t v = 2; v <= 20; v++) {
        update(hub, "a", v, UPDATE_DELTA);
    }
    /* Far behind in the log: conflated at the next tick, though it takes
     * no frame. */
    assert_true(notify__log_lag(&hub->log, t->c.cursor) > cfg.backlog_soft);
    assert_false(t->c.conflating);
    assert_int_equal(notify__hub_tick(hub, 3000), 0);
    assert_true(t->c.conflating);
    assert_int_equal(t->c.cursor, hub->log.head);
    assert_int_equal(t->c.n_pending, 1);
    assert_true(hub->stats.conflated >= 19);
    notify__hub_tick(hub, 6000);
    assert_false(t->closed);
    notify__hub_tick(hub, 6001);
    assert_true(t->closed);
    assert_int_equal(t->code, 1013);
    assert_false(idle->closed);
    assert_int_equal(hub->stats.slow_closed, 1);
    /* Closing: nothing more is queued, nothing is written. */
    update(hub, "a", 21, UPDATE_DELTA);
    assert_int_equal(t->c.queue.len, 0);
    assert_int_equal(drain(hub, t), 0);
    assert_int_equal(hub->n_wild, 0);

    /* Slow but reading: conflated, never closed. */
    struct tclient *u = tc_new(hub);
    rx(hub, u, "{\"op\":\"subscribe\",\"matches\":[\"a\"]}");
    for (int64_t now = 7000; now < 30000; now += 1000) {
        for (int k = 0; k < 10; k++) {
            update(hub, "a", 22 + (uint64_t)(now / 100) + (uint64_t)k,
                   UPDATE_DELTA);
        }
        struct notify__frame f;
        if (notify__hub_frame(hub, &u->c, &f) == 1) {
            notify__hub_frame_done(hub, &f);
        }
        notify__hub_tick(hub, now);
    }
    assert_false(u->closed);
    tc_free(hub, u);
    tc_free(hub, idle);
    tc_free(hub, t);
    notify__hub_free(hub);
}

static void test_hard_bound_closes(void **state)
{
    (void)state;
    struct notify__hub_config cfg = base_cfg();
    cfg.backlog_soft = 100;
    cfg.backlog_hard = 400;
    struct notify__hub *hub = hub_new(&cfg);
    struct tclient *t = tc_new(hub);
    int pings = 0;
    while (!t->closed && pings < 100) {
        rx(hub, t, "{\"op\":\"ping\",\"id\":12345}");
        pings++;
    }
    assert_true(t->closed);
    assert_int_equal(t->code, 1013);
    assert_true(pings >= 400 / 26 && pings < 40);
    assert_int_equal(t->c.queue.len, 0);
    tc_free(hub, t);
    notify__hub_free(hub);
}

static void test_errors_keep_the_connection(void **state)
{
    (void)state;
    struct notify__hub_config cfg = base_cfg();
    cfg.max_subs = 2;
    cfg.max_unknown = 3;
    struct notify__hub *hub = hub_new(&cfg);
    update(hub, "a", 1, UPDATE_DELTA);
    struct tclient *t = tc_new(hub);
    rx(hub, t, "{\"op\":");
    rx(hub, t, "{\"op\":\"jump\"}");
    rx(hub, t, "{\"op\":\"subscribe\",\"matches\":[\"a\",\"x\",\"y\"]}");
    assert_int_equal(t->c.n_subs, 0); /* all or nothing */
    rx(hub, t, "{\"op\":\"subscribe\",\"matches\":[\"a\",\"x\"]}");
    rx(hub, t, "{\"op\":\"subscribe\",\"matches\":[\"a\",\"x\"]}"); /* same */
    assert_int_equal(t->c.n_subs, 2);
    struct tclient *u = tc_new(hub);
    rx(hub, u, "{\"op\":\"subscribe\",\"matches\":[\"p\",\"q\"]}");
    assert_int_equal(hub->n_unknown, 3);
    struct tclient *w = tc_new(hub);
    rx(hub, w, "{\"op\":\"subscribe\",\"matches\":[\"r\"]}");
    drain(hub, t);
    drain(hub, w);
    assert_string_equal(log_str(t, 0),
                        "error:malformed error:unknown_op "
                        "error:too_many_subscriptions snapshot:a:1");
    assert_string_equal(log_str(w, 0), "error:unknown_match");
    assert_false(t->closed);
    assert_false(w->closed);
    assert_int_equal(hub->stats.errors, 4);
    tc_free(hub, t);
    tc_free(hub, u);
    tc_free(hub, w);
    assert_int_equal(hub->n_unknown, 0);
    assert_int_equal(hub->n_matches, 1);
    notify__hub_free(hub);
}

static void test_ping_pong(void **state)
{
    (void)state;
    struct notify__hub_config cfg = base_cfg();
    struct notify__hub *hub = hub_new(&cfg);
    struct tclient *t = tc_new(hub);
    rx(hub, t, "{\"op\":\"ping\",\"id\":7}");
    rx(hub, t, "{\"id\":\"x\",\"op\":\"ping\"}");
    rx(hub, t, "{\"op\":\"ping\"}");
    drain(hub, t);
    assert_string_equal(log_str(t, 0), "pong:7 pong:x pong:");
    tc_free(hub, t);
    notify__hub_free(hub);
}

static void test_unsubscribe(void **state)
{
    (void)state;
    struct notify__hub_config cfg = base_cfg();
    struct notify__hub *hub = hub_new(&cfg);
    update(hub, "a", 1, UPDATE_DELTA);
    struct tclient *t = tc_new(hub);
    rx(hub, t, "{\"op\":\"subscribe\",\"matches\":[\"a\",\"ghost\"]}");
    assert_int_equal(hub->n_unknown, 1);
    drain(hub, t);
    update(hub, "a", 2, UPDATE_DELTA);
    /* Queued but unread: unsubscribing drops it. */
    rx(hub, t, "{\"op\":\"unsubscribe\",\"matches\":[\"a\",\"ghost\",\"no\"]}");
    assert_int_equal(t->c.n_subs, 0);
    assert_int_equal(hub->n_unknown, 0);
    assert_null(notify__hub_find(hub, "ghost"));
    assert_int_equal(drain(hub, t), 0);
    update(hub, "a", 3, UPDATE_DELTA);
    assert_int_equal(drain(hub, t), 0);

    rx(hub, t, "{\"op\":\"subscribe\",\"matches\":\"*\"}");
    rx(hub, t, "{\"op\":\"unsubscribe\",\"matches\":[\"a\"]}");
    drain(hub, t);
    assert_string_equal(log_str(t, 1), "error:unsupported snapshot:a:3");
    rx(hub, t, "{\"op\":\"unsubscribe\",\"matches\":\"*\"}");
    assert_int_equal(hub->n_wild, 0);
    update(hub, "a", 4, UPDATE_DELTA);
    assert_int_equal(drain(hub, t), 0);
    tc_free(hub, t);
    notify__hub_free(hub);
}

static void test_versions_jump_stale_and_reset(void **state)
{
    (void)state;
    struct notify__hub_config cfg = base_cfg();
    struct notify__hub *hub = hub_new(&cfg);
    update(hub, "m", 1, UPDATE_DELTA);
    struct tclient *t = tc_new(hub);
    rx(hub, t, "{\"op\":\"subscribe\",\"matches\":[\"m\"]}");
    drain(hub, t);
    update(hub, "m", 3, UPDATE_DELTA); /* notify missed 2 */
    drain(hub, t);
    update(hub, "m", 2, UPDATE_DELTA);    /* late: ignored */
    update(hub, "m", 3, UPDATE_SNAPSHOT); /* same version: ignored */
    assert_int_equal(hub->stats.stale, 2);
    update(hub, "m", 4, UPDATE_DELTA);
    update(hub, "m", 2, UPDATE_SNAPSHOT); /* rebuilt lower: start over */
    update(hub, "m", 3, UPDATE_DELTA);
    update(hub, "m", 9, UPDATE_SNAPSHOT); /* a jump that is a snapshot */
    drain(hub, t);
    assert_string_equal(log_str(t, 0),
                        "snapshot:m:1 snapshot:m:3 delta:m:4 snapshot:m:2 "
                        "delta:m:3 snapshot:m:9");
    /* The ring restarted at the reset: resuming from 8 works, 3 is old. */
    struct tclient *u = tc_new(hub);
    rx(hub, u,
       "{\"op\":\"subscribe\",\"matches\":[\"m\"],\"since\":{\"m\":3}}");
    drain(hub, u);
    assert_string_equal(log_str(u, 0), "snapshot:m:9");
    tc_free(hub, u);
    tc_free(hub, t);
    notify__hub_free(hub);
}

/* A snapshot owed behind queued deltas waits for them, even when a frame
 * fills up before it reaches them (it used to be added to that frame, and
 * the older deltas followed it). */
static void test_owed_snapshot_waits_for_the_queue(void **state)
{
    (void)state;
    struct notify__hub_config cfg = base_cfg();
    cfg.max_frame_out = 80; /* a pong and a snapshot fit, not a delta */
    struct notify__hub *hub = hub_new(&cfg);
    for (uint64_t v = 1; v <= 5; v++) {
        update(hub, "m", v, UPDATE_DELTA);
    }
    struct tclient *t = tc_new(hub);
    seed_view(t, "m", 3);
    rx(hub, t, "{\"op\":\"ping\",\"id\":1}");
    rx(hub, t,
       "{\"op\":\"subscribe\",\"matches\":[\"m\"],\"since\":{\"m\":3}}");
    update(hub, "m", 7, UPDATE_DELTA); /* notify missed 6: a snapshot owed */
    drain(hub, t);
    assert_string_equal(log_str(t, 0),
                        "pong:1 delta:m:4:r delta:m:5 snapshot:m:7");
    tc_free(hub, t);
    notify__hub_free(hub);
}

static void test_resubscribe_starts_over(void **state)
{
    (void)state;
    struct notify__hub_config cfg = base_cfg();
    struct notify__hub *hub = hub_new(&cfg);
    update(hub, "m", 1, UPDATE_DELTA);
    update(hub, "n", 1, UPDATE_DELTA);
    struct tclient *t = tc_new(hub);
    rx(hub, t, "{\"op\":\"subscribe\",\"matches\":[\"m\",\"n\"]}");
    drain(hub, t);
    update(hub, "m", 2, UPDATE_DELTA);
    update(hub, "n", 2, UPDATE_DELTA);
    update(hub, "m", 3, UPDATE_DELTA);
    /* A client that saw a jump re-subscribes: its queued deltas of that
     * match make way for one snapshot; the other match is untouched. */
    rx(hub, t, "{\"op\":\"subscribe\",\"matches\":[\"m\"]}");
    drain(hub, t);
    assert_string_equal(log_str(t, 2), "delta:n:2 snapshot:m:3");
    tc_free(hub, t);
    notify__hub_free(hub);
}

static void test_feed_states(void **state)
{
    (void)state;
    struct notify__hub_config cfg = base_cfg();
    struct notify__hub *hub = hub_new(&cfg);
    struct tclient *t = tc_new(hub);
    assert_int_equal(notify__hub_feed(hub, "feed-eu-1", MATCH_FEED_LIVE), 0);
    assert_int_equal(notify__hub_feed(hub, "feed-eu-1", MATCH_FEED_LIVE),
                     0); /* no change: no message */
    assert_int_equal(notify__hub_feed(hub, "feed-eu-1", MATCH_FEED_STALE), 0);
    assert_int_equal(notify__hub_feed(hub, "feed-us-2", MATCH_FEED_OFFLINE), 0);
    drain(hub, t);
    assert_string_equal(log_str(t, 0), "feed:live feed:stale feed:offline");
    /* A newcomer learns the current state of every source. */
    struct tclient *u = tc_new(hub);
    drain(hub, u);
    assert_string_equal(log_str(u, 0), "feed:stale feed:offline");
    tc_free(hub, t);
    tc_free(hub, u);
    notify__hub_free(hub);
}

static void test_remove_with_everything_pending(void **state)
{
    (void)state;
    struct notify__hub_config cfg = base_cfg();
    cfg.backlog_soft = 200;
    struct notify__hub *hub = hub_new(&cfg);
    struct tclient *t = tc_new(hub);
    rx(hub, t, "{\"op\":\"subscribe\",\"matches\":[\"a\",\"b\",\"c\"]}");
    for (uint64_t v = 1; v <= 20; v++) {
        update(hub, v % 2 ? "a" : "b", v,
               v == 1 ? UPDATE_SNAPSHOT : UPDATE_DELTA);
        rx(hub, t, "{\"op\":\"ping\"}");
    }
    tc_free(hub, t); /* queue, bitmap, subscriptions, placeholder: gone */
    assert_int_equal(hub->n_unknown, 0);
    notify__hub_free(hub);
}

static void test_quiet_matches_give_memory_back(void **state)
{
    (void)state;
    struct notify__hub_config cfg = base_cfg();
    cfg.ring_idle_ms = 10000;
    cfg.forget_ms = 60000;
    struct notify__hub *hub = hub_new(&cfg);
    notify__hub_tick(hub, 1000);
    for (uint64_t v = 1; v <= 5; v++) {
        update(hub, "quiet", v, UPDATE_DELTA);
        update(hub, "kept", v, UPDATE_DELTA);
    }
    struct tclient *t = tc_new(hub);
    rx(hub, t, "{\"op\":\"subscribe\",\"matches\":[\"kept\"]}");
    drain(hub, t);
    /* Past the ring's idle time: resumes turn into snapshots. */
    notify__hub_tick(hub, 1000 + 10001);
    assert_null(notify__hub_find(hub, "quiet")->ring);
    struct tclient *u = tc_new(hub);
    seed_view(u, "quiet", 3);
    rx(hub, u,
       "{\"op\":\"subscribe\",\"matches\":[\"quiet\"],"
       "\"since\":{\"quiet\":3}}");
    drain(hub, u);
    assert_string_equal(log_str(u, 0), "snapshot:quiet:5");
    rx(hub, u, "{\"op\":\"unsubscribe\",\"matches\":\"*\"}");
    /* Past the forget time: gone, unless a list subscriber holds it. */
    notify__hub_tick(hub, 1000 + 60001);
    assert_null(notify__hub_find(hub, "quiet"));
    assert_non_null(notify__hub_find(hub, "kept"));
    assert_int_equal(hub->stats.forgotten, 1);
    /* A forgotten match that comes back starts over with a snapshot. */
    struct tclient *w = tc_new(hub);
    rx(hub, w, "{\"op\":\"subscribe\",\"matches\":\"*\"}");
    drain(hub, w);
    update(hub, "quiet", 6, UPDATE_DELTA);
    drain(hub, w);
    assert_string_equal(log_str(w, 0), "snapshot:kept:5 snapshot:quiet:6");
    tc_free(hub, t);
    tc_free(hub, u);
    tc_free(hub, w);
    notify__hub_free(hub);
}

/* ---- randomized: many clients, random reading, random (re)subscriptions ---
 */

static uint64_t rng = 88172645463325252ull;
static uint32_t rnd(uint32_t n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng % n);
}

static void test_random_operations_keep_promises(void **state)
{
    (void)state;
    struct notify__hub_config cfg = base_cfg();
    cfg.ring = 5;
    cfg.backlog_soft = 1500;
    cfg.max_frame_out = 700;
    struct notify__hub *hub = hub_new(&cfg);
    enum { NC = 12, NM = 6 };
    static const char *ids[NM] = {"m0", "m1", "m2", "m3", "m4", "m5"};
    uint64_t version[NM] = {0};
    struct tclient *t[NC];
    for (int i = 0; i < NC; i++) {
        t[i] = tc_new(hub);
    }
    for (int step = 0; step < 20000; step++) {
        uint32_t op = rnd(100);
        struct tclient *c = t[rnd(NC)];
        if (op < 55) {
            /* Now and then a version notify never saw: a snapshot is
             * owed where a delta would not follow. */
            uint32_t m = rnd(NM);
            version[m] += rnd(20) == 0 ? 2 : 1;
            update(hub, ids[m], version[m], UPDATE_DELTA);
        } else if (op < 85) {
            drain(hub, c);
        } else if (op < 90) {
            rx(hub, c, "{\"op\":\"subscribe\",\"matches\":\"*\"}");
        } else if (op < 95) {
            char msg[128];
            uint32_t m = rnd(NM);
            uint64_t have = view_of(c, ids[m]);
            if (have && rnd(2)) {
                snprintf(msg, sizeof(msg),
                         "{\"op\":\"subscribe\",\"matches\":[\"%s\"],"
                         "\"since\":{\"%s\":%" PRIu64 "}}",
                         ids[m], ids[m], have);
            } else {
                snprintf(msg, sizeof(msg),
                         "{\"op\":\"subscribe\",\"matches\":[\"%s\"]}", ids[m]);
            }
            rx(hub, c, msg);
        } else if (op < 97) {
            rx(hub, c, "{\"op\":\"unsubscribe\",\"matches\":\"*\"}");
            c->n_view = 0; /* starts over */
        } else {
            rx(hub, c, "{\"op\":\"ping\",\"id\":1}");
        }
        if (c->n_log > MAX_LOG - 200) {
            c->n_log = 0;
        }
    }
    /* Everyone reads to the end: each subscribed match is current. */
    for (int i = 0; i < NC; i++) {
        drain(hub, t[i]);
        assert_false(t[i]->closed);
        for (int m = 0; m < NM; m++) {
            bool subscribed = t[i]->c.all;
            struct notify__match *mm = notify__hub_find(hub, ids[m]);
            for (struct notify__sub *s = t[i]->c.subs; s; s = s->next) {
                subscribed |= s->match == mm;
            }
            if (subscribed && version[m] > 0) {
                assert_int_equal(view_of(t[i], ids[m]), version[m]);
            }
        }
        tc_free(hub, t[i]);
    }
    assert_true(hub->stats.conflated > 0);
    assert_true(hub->stats.recovered > 0);
    notify__hub_free(hub);
}

/* ---- out of memory anywhere: an error, never a crash or a leak ---------- */

static int scenario(void)
{
    struct notify__hub_config cfg = base_cfg();
    cfg.backlog_soft = 400;
    cfg.ring = 3;
    struct notify__hub *hub = notify__hub_new(&cfg);
    if (!hub) {
        return -ENOMEM;
    }
    struct tclient *t[3] = {0};
    int rc = 0;
    static const char *msgs[] = {
        "{\"op\":\"subscribe\",\"matches\":\"*\"}",
        "{\"op\":\"subscribe\",\"matches\":[\"a\",\"z\"]}",
        "{\"op\":\"subscribe\",\"matches\":[\"b\"],\"since\":{\"b\":2}}",
    };
    rc = notify__hub_feed(hub, "src", MATCH_FEED_LIVE);
    for (int i = 0; i < 3 && rc == 0; i++) {
        t[i] = calloc(1, sizeof(*t[i]));
        rc = notify__hub_client_add(hub, &t[i]->c, t[i], 0);
        t[i]->added = rc == 0;
        if (rc == 0) {
            rc = notify__hub_client_rx(hub, &t[i]->c, msgs[i], strlen(msgs[i]));
        }
    }
    for (uint64_t v = 1; v <= 12 && rc == 0; v++) {
        struct update *up = up_new(v % 2 ? "a" : "b", (v + 1) / 2,
                                   v < 3 ? UPDATE_SNAPSHOT : UPDATE_DELTA);
        rc = notify__hub_update(hub, up);
        fake_update_unref(up);
        struct notify__frame f;
        if (rc == 0 && v % 3 == 0) {
            rc = notify__hub_frame(hub, &t[v % 3]->c, &f);
            if (rc == 1) {
                notify__hub_frame_done(hub, &f);
                rc = 0;
            }
        }
    }
    if (rc == 0) {
        rc = notify__hub_client_rx(hub, &t[2]->c, msgs[1], strlen(msgs[1]));
    }
    if (rc == 0) {
        rc = notify__hub_feed(hub, "src", MATCH_FEED_STALE);
    }
    for (uint64_t v = 7; v <= 20 && rc == 0; v++) {
        struct update *up = up_new("a", v, UPDATE_DELTA);
        rc = notify__hub_update(hub, up);
        fake_update_unref(up);
    }
    if (rc == 0) {
        rc = notify__hub_tick(hub, 1); /* conflates the "*" client */
    }
    if (rc == 0 && !t[0]->c.conflating) {
        rc = -EINVAL; /* the scenario no longer covers it */
    }
    for (int i = 0; i < 3; i++) {
        if (t[i]) {
            tc_free(hub, t[i]);
        }
    }
    notify__hub_free(hub);
    return rc;
}

static void test_out_of_memory_anywhere(void **state)
{
    (void)state;
    assert_int_equal(scenario(), 0);
    int failures = 0;
    for (long n = 1;; n++) {
        notify__alloc_fail_at = n;
        int rc = scenario();
        bool injected = notify__alloc_fail_at == -1;
        notify__alloc_fail_at = -1;
        if (!injected) {
            assert_int_equal(rc, 0);
            break;
        }
        assert_int_equal(rc, -ENOMEM);
        failures++;
    }
    assert_true(failures > 20);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_subscribe_snapshot_then_deltas,
                                  teardown_check),
        cmocka_unit_test_teardown(test_fanout_shares_one_buffer,
                                  teardown_check),
        cmocka_unit_test_teardown(test_wildcard_log_shares_frames,
                                  teardown_check),
        cmocka_unit_test_teardown(test_wildcard_far_behind, teardown_check),
        cmocka_unit_test_teardown(test_match_not_seen_yet, teardown_check),
        cmocka_unit_test_teardown(test_wildcard_gets_new_matches,
                                  teardown_check),
        cmocka_unit_test_teardown(test_resume_since, teardown_check),
        cmocka_unit_test_teardown(test_owed_snapshot_waits_for_the_queue,
                                  teardown_check),
        cmocka_unit_test_teardown(test_batches_respect_frame_limit,
                                  teardown_check),
        cmocka_unit_test_teardown(test_slow_client_is_conflated,
                                  teardown_check),
        cmocka_unit_test_teardown(test_stalled_client_is_closed,
                                  teardown_check),
        cmocka_unit_test_teardown(test_hard_bound_closes, teardown_check),
        cmocka_unit_test_teardown(test_errors_keep_the_connection,
                                  teardown_check),
        cmocka_unit_test_teardown(test_ping_pong, teardown_check),
        cmocka_unit_test_teardown(test_unsubscribe, teardown_check),
        cmocka_unit_test_teardown(test_versions_jump_stale_and_reset,
                                  teardown_check),
        cmocka_unit_test_teardown(test_resubscribe_starts_over, teardown_check),
        cmocka_unit_test_teardown(test_feed_states, teardown_check),
        cmocka_unit_test_teardown(test_remove_with_everything_pending,
                                  teardown_check),
        cmocka_unit_test_teardown(test_quiet_matches_give_memory_back,
                                  teardown_check),
        cmocka_unit_test_teardown(test_random_operations_keep_promises,
                                  teardown_check),
        cmocka_unit_test_teardown(test_out_of_memory_anywhere, teardown_check),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
