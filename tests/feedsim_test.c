/* tests/feedsim_test.c - the simulator's pure parts: the match generator,
 * the reference model, XML writing, the reply scanner, malformed documents,
 * the in-flight window and the latency histogram. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/feedsim/feedsim.h"

/* ---- helpers ------------------------------------------------------------ */

static const struct feedsim_gen_config base_cfg = {
    .seed = 42,
    .tick_s = 10,
    .start_epoch = 1795273200, /* 2026-11-21T15:00:00Z */
    .id_prefix = "t:",
};

/* Every step of match @index under @cfg as XML, one element a line. */
static char *play_xml(const struct feedsim_gen_config *cfg, uint32_t index)
{
    struct feedsim_gen *g = feedsim_gen_new(cfg, index);
    assert_non_null(g);
    struct actor_buf b;
    actor_buf_init(&b);
    const struct event_match *el;
    while ((el = feedsim_gen_step(g))) {
        feedsim_xml_match(&b, el);
        actor_buf_char(&b, '\n');
    }
    feedsim_xml_match(&b, feedsim_gen_decoy(g));
    feedsim_gen_free(g);
    assert_int_equal(b.err, 0);
    return actor_buf_take(&b, NULL);
}

static struct event_incident inc(const char *id, enum event_action action)
{
    return (struct event_incident){
        .id = id,
        .minute = EVENT_ABSENT,
        .stoppage = EVENT_ABSENT,
        .confirmed = EVENT_ABSENT,
        .team = EVENT_TEAM_NONE,
        .action = (uint8_t)action,
    };
}

static struct event_match delta(const char *id)
{
    return (struct event_match){
        .id = id,
        .clock_seconds = EVENT_ABSENT,
        .clock_running = EVENT_ABSENT,
    };
}

/* Applies @el and returns the match's JSON (static buffer). */
static const char *apply_json(struct feedsim_model *m,
                              const struct event_match *el, int want_rc)
{
    static char text[4096];
    assert_int_equal(feedsim_model_apply(m, el), want_rc);
    struct actor_buf b;
    actor_buf_init(&b);
    assert_int_equal(feedsim_model_match_json(m, el->id, &b), 0);
    assert_int_equal(b.err, 0);
    assert_true(b.len < sizeof(text));
    memcpy(text, b.data, b.len + 1);
    actor_buf_release(&b);
    return text;
}

/* ---- the generator ------------------------------------------------------ */

static void test_gen_is_deterministic(void **state)
{
    (void)state;
    char *a = play_xml(&base_cfg, 3);
    char *b = play_xml(&base_cfg, 3);
    assert_string_equal(a, b);

    struct feedsim_gen_config other = base_cfg;
    other.seed = 43;
    char *c = play_xml(&other, 3);
    assert_string_not_equal(a, c);
    char *d = play_xml(&base_cfg, 4);
    assert_string_not_equal(a, d);
    free(a);
    free(b);
    free(c);
    free(d);
}

static int phase_rank(const char *phase)
{
    static const char *const order[] = {"not_started", "first_half", "halftime",
                                        "second_half", "ended"};
    for (int i = 0; i < 5; i++) {
        if (strcmp(phase, order[i]) == 0) {
            return i;
        }
    }
    fail_msg("unknown phase %s", phase);
    return -1;
}

static bool scores(const char *type)
{
    return strcmp(type, "goal") == 0 || strcmp(type, "penalty_goal") == 0 ||
           strcmp(type, "own_goal") == 0;
}

struct coverage {
    unsigned types[16];
    unsigned deletes;
    unsigned updates;
    unsigned fulls;
};

static const char *const all_types[] = {
    "goal",           "penalty_goal", "own_goal",
    "missed_penalty", "yellow_card",  "second_yellow",
    "red_card",       "substitution", "var"};
#define N_TYPES (sizeof(all_types) / sizeof(all_types[0]))

static void count_type(struct coverage *cov, const char *type)
{
    for (size_t i = 0; i < N_TYPES; i++) {
        if (strcmp(type, all_types[i]) == 0) {
            cov->types[i]++;
            return;
        }
    }
    fail_msg("unexpected incident type %s", type);
}

/* Plays one match and checks it is a plausible football match, and that
 * the reference model ends where the generator does. */
static void check_match(uint32_t index, struct coverage *cov)
{
    struct feedsim_gen *g = feedsim_gen_new(&base_cfg, index);
    struct feedsim_model *m = feedsim_model_new();
    assert_non_null(g);
    assert_non_null(m);
    char seen_ids[128][24];
    size_t n_ids = 0;
    char off[2][40][48]; /* players who left the pitch, per team */
    size_t n_off[2] = {0, 0};
    unsigned subs[2] = {0, 0};
    int rank = 0;
    uint64_t msgnr = 0;
    int64_t at = 0;
    const struct event_match *el;
    const struct event_match *last = NULL;

    while (!feedsim_gen_is_done(g)) {
        int64_t next = feedsim_gen_next_at(g);
        assert_true(next >= at);
        at = next;
        el = feedsim_gen_step(g);
        assert_non_null(el);
        assert_string_equal(el->id, feedsim_gen_id(g));
        assert_int_equal(el->msgnr, ++msgnr);
        if (msgnr == 1) {
            assert_true(el->full);
            assert_true(el->parts & EVENT_HAS_FIXTURE);
            assert_string_equal(el->fixture.sport, "soccer");
            assert_string_not_equal(el->fixture.home, el->fixture.away);
        }
        cov->fulls += el->full;
        if (el->parts & EVENT_HAS_STATUS) {
            int r = phase_rank(el->phase);
            assert_true(r >= rank);
            rank = r;
        }
        if (el->parts & EVENT_HAS_CLOCK) {
            assert_true(el->clock_seconds >= 0 && el->clock_seconds < 100 * 60);
            assert_true(el->clock_running == 0 || el->clock_running == 1);
        }
        for (uint32_t i = 0; i < el->n_incidents && !el->full; i++) {
            const struct event_incident *x = &el->incidents[i];
            bool known = false;
            for (size_t k = 0; k < n_ids; k++) {
                known |= strcmp(seen_ids[k], x->id) == 0;
            }
            if (x->action != EVENT_ACTION_INSERT) {
                assert_true(known); /* updates and deletes name old ids */
                cov->deletes += x->action == EVENT_ACTION_DELETE;
                cov->updates += x->action == EVENT_ACTION_UPDATE;
                continue;
            }
            assert_false(known); /* a new incident, a new id */
            assert_true(n_ids < 128);
            snprintf(seen_ids[n_ids++], sizeof(seen_ids[0]), "%s", x->id);
            count_type(cov, x->type);
            int team = x->team == EVENT_TEAM_AWAY;
            assert_true(x->team == EVENT_TEAM_HOME ||
                        x->team == EVENT_TEAM_AWAY);
            assert_true(x->minute >= 1 && x->minute <= 90);
            /* Nobody who left the pitch scores, is booked or goes off. */
            int own = strcmp(x->type, "own_goal") == 0;
            for (size_t k = 0; x->player && k < n_off[team ^ own]; k++) {
                assert_string_not_equal(x->player, off[team ^ own][k]);
            }
            if (strcmp(x->type, "substitution") == 0 ||
                strcmp(x->type, "red_card") == 0 ||
                strcmp(x->type, "second_yellow") == 0) {
                assert_non_null(x->player);
                assert_true(n_off[team] < 40);
                snprintf(off[team][n_off[team]++], sizeof(off[0][0]), "%s",
                         x->player);
            }
            if (strcmp(x->type, "substitution") == 0) {
                assert_non_null(x->assist); /* the player coming on */
                assert_true(++subs[team] <= 5);
            }
        }
        assert_true(feedsim_model_apply(m, el) == 0);
        last = el;
    }
    assert_null(feedsim_gen_step(g));
    assert_int_equal(feedsim_gen_next_at(g), INT64_MAX);
    assert_non_null(last);
    assert_string_equal(last->phase, "ended");
    assert_int_equal(last->clock_running, 0);
    assert_true(last->clock_seconds >= 90 * 60);

    /* The score is the live scoring incidents, every goal confirmed. */
    struct actor_buf before;
    actor_buf_init(&before);
    assert_int_equal(feedsim_model_match_json(m, feedsim_gen_id(g), &before),
                     0);
    unsigned goals[2] = {0, 0};
    const char *p = before.data;
    while ((p = strstr(p, "\"type\":\""))) {
        p += 8;
        char type[32];
        size_t n = strcspn(p, "\"");
        snprintf(type, sizeof(type), "%.*s", (int)n, p);
        if (scores(type)) {
            const char *team = strstr(p, "\"team\":\"");
            assert_non_null(team);
            goals[strncmp(team + 8, "away", 4) == 0]++;
            const char *end = strchr(p, '}');
            const char *conf = strstr(p, "\"confirmed\":true");
            assert_true(conf && conf < end);
        }
    }
    char want[64];
    snprintf(want, sizeof(want), "\"score\":{\"home\":%u,\"away\":%u}",
             goals[0], goals[1]);
    assert_non_null(strstr(before.data, want));
    actor_buf_release(&before);
    feedsim_model_free(m);
    feedsim_gen_free(g);
}

static void test_gen_plays_football(void **state)
{
    (void)state;
    struct coverage cov = {0};
    for (uint32_t i = 0; i < 200; i++) {
        check_match(i, &cov);
    }
    /* 200 matches see every kind of incident, corrections and snapshots. */
    for (size_t i = 0; i < N_TYPES; i++) {
        if (cov.types[i] == 0) {
            fail_msg("no %s in 200 matches", all_types[i]);
        }
    }
    assert_true(cov.deletes > 0);
    assert_true(cov.updates > 0);
    assert_true(cov.fulls > 200); /* the fixture and more */
}

static void test_gen_full_snapshot_matches_model(void **state)
{
    (void)state;
    /* Apply everything but full snapshots to one model; whenever the
     * generator sends a full snapshot, the model fed deltas only must be in
     * exactly that state, but for the clock, which a snapshot reads fresh
     * between two ticks. */
    for (uint32_t index = 0; index < 40; index++) {
        struct feedsim_gen *g = feedsim_gen_new(&base_cfg, index);
        struct feedsim_model *deltas = feedsim_model_new();
        struct feedsim_model *fulls = feedsim_model_new();
        assert_non_null(g);
        assert_non_null(deltas);
        assert_non_null(fulls);
        const struct event_match *el;
        while ((el = feedsim_gen_step(g))) {
            if (el->full && el->msgnr > 1) {
                struct event_match copy = *el;
                copy.has_msgnr = false;
                assert_int_equal(feedsim_model_apply(fulls, &copy), 0);
                struct event_match tick = delta(el->id);
                tick.parts = EVENT_HAS_CLOCK;
                tick.clock_seconds = el->clock_seconds;
                tick.clock_running = el->clock_running;
                assert_int_equal(feedsim_model_apply(deltas, &tick), 0);
                struct actor_buf a;
                struct actor_buf b;
                actor_buf_init(&a);
                actor_buf_init(&b);
                assert_int_equal(feedsim_model_match_json(deltas, el->id, &a),
                                 0);
                assert_int_equal(feedsim_model_match_json(fulls, el->id, &b),
                                 0);
                assert_string_equal(a.data, b.data);
                actor_buf_release(&a);
                actor_buf_release(&b);
                continue;
            }
            struct event_match copy = *el;
            copy.has_msgnr = false;
            assert_int_equal(feedsim_model_apply(deltas, &copy), 0);
        }
        feedsim_model_free(deltas);
        feedsim_model_free(fulls);
        feedsim_gen_free(g);
    }
}

/* ---- the reference model ------------------------------------------------ */

static void test_model_delta_merges(void **state)
{
    (void)state;
    struct feedsim_model *m = feedsim_model_new();
    assert_non_null(m);

    struct event_match el = delta("m1");
    el.parts = EVENT_HAS_CLOCK | EVENT_HAS_SCORE;
    el.clock_seconds = 65;
    el.clock_running = 1;
    el.score_home = 1;
    assert_string_equal(apply_json(m, &el, 0),
                        "{\"id\":\"m1\",\"clock\":{\"time\":\"01:05\","
                        "\"running\":true},\"score\":{\"home\":1,\"away\":0},"
                        "\"incidents\":[]}");

    /* A clock without running keeps it; untouched children stay. */
    el = delta("m1");
    el.parts = EVENT_HAS_CLOCK | EVENT_HAS_STATUS;
    el.clock_seconds = 6001;
    el.phase = "second_half";
    assert_string_equal(apply_json(m, &el, 0),
                        "{\"id\":\"m1\",\"status\":{\"phase\":\"second_half\"},"
                        "\"clock\":{\"time\":\"100:01\",\"running\":true},"
                        "\"score\":{\"home\":1,\"away\":0},\"incidents\":[]}");

    /* A fixture child changes the attributes it carries. */
    el = delta("m1");
    el.parts = EVENT_HAS_FIXTURE;
    el.fixture.home = "A \"quoted\"\n";
    el.fixture.away = "B";
    apply_json(m, &el, 0);
    el.fixture = (struct event_fixture){.away = "C"};
    assert_string_equal(apply_json(m, &el, 0),
                        "{\"id\":\"m1\",\"fixture\":{\"home\":"
                        "\"A \\\"quoted\\\"\\n\",\"away\":\"C\"},"
                        "\"status\":{\"phase\":\"second_half\"},"
                        "\"clock\":{\"time\":\"100:01\",\"running\":true},"
                        "\"score\":{\"home\":1,\"away\":0},\"incidents\":[]}");
    feedsim_model_free(m);
}

static void test_model_full_replaces(void **state)
{
    (void)state;
    struct feedsim_model *m = feedsim_model_new();
    assert_non_null(m);
    struct event_incident incs[2] = {inc("i1", EVENT_ACTION_INSERT),
                                     inc("i2", EVENT_ACTION_INSERT)};
    incs[0].type = "goal";
    incs[1].type = "var";
    struct event_match el = delta("m");
    el.parts = EVENT_HAS_SCORE | EVENT_HAS_STATUS | EVENT_HAS_CLOCK;
    el.score_home = 2;
    el.phase = "first_half";
    el.clock_seconds = 10;
    el.clock_running = 1;
    el.incidents = incs;
    el.n_incidents = 2;
    apply_json(m, &el, 0);

    /* full: children it omits are reset, incidents not listed are gone. */
    struct event_incident keep = inc("i2", EVENT_ACTION_INSERT);
    keep.type = "var";
    keep.minute = 12;
    el = delta("m");
    el.full = true;
    el.parts = EVENT_HAS_STATUS;
    el.phase = "halftime";
    el.incidents = &keep;
    el.n_incidents = 1;
    assert_string_equal(apply_json(m, &el, 0),
                        "{\"id\":\"m\",\"status\":{\"phase\":\"halftime\"},"
                        "\"incidents\":[{\"id\":\"i2\",\"type\":\"var\","
                        "\"minute\":12}]}");
    feedsim_model_free(m);
}

static void test_model_incidents(void **state)
{
    (void)state;
    struct feedsim_model *m = feedsim_model_new();
    assert_non_null(m);
    struct event_incident a = inc("a", EVENT_ACTION_INSERT);
    a.type = "goal";
    a.team = EVENT_TEAM_HOME;
    a.minute = 45;
    a.stoppage = 2;
    a.player = "B. Saka";
    a.assist = "M. Ødegaard";
    a.confirmed = 0;
    struct event_incident b = inc("b", EVENT_ACTION_INSERT);
    b.type = "yellow_card";
    b.team = EVENT_TEAM_AWAY;
    struct event_match el = delta("m");
    el.incidents = (struct event_incident[]){a, b};
    el.n_incidents = 2;
    apply_json(m, &el, 0);

    /* update: only the attributes given; confirmed becomes true. */
    struct event_incident up = inc("a", EVENT_ACTION_UPDATE);
    up.confirmed = 1;
    el.incidents = &up;
    el.n_incidents = 1;
    assert_string_equal(
        apply_json(m, &el, 0),
        "{\"id\":\"m\",\"incidents\":[{\"id\":\"a\",\"type\":\"goal\","
        "\"team\":\"home\",\"minute\":45,\"stoppage\":2,\"player\":\"B. "
        "Saka\",\"assist\":\"M. Ødegaard\",\"confirmed\":true},{\"id\":\"b\","
        "\"type\":\"yellow_card\",\"team\":\"away\"}]}");

    /* insert of a known id: the whole incident, in its first-seen place. */
    struct event_incident re = inc("a", EVENT_ACTION_INSERT);
    re.type = "own_goal";
    el.incidents = &re;
    assert_string_equal(apply_json(m, &el, 0),
                        "{\"id\":\"m\",\"incidents\":[{\"id\":\"a\","
                        "\"type\":\"own_goal\"},{\"id\":\"b\","
                        "\"type\":\"yellow_card\",\"team\":\"away\"}]}");

    /* delete, delete of an unknown id (no-op), update of an unknown id
     * (added), insert again after a delete (last). */
    struct event_incident ops[4] = {
        inc("a", EVENT_ACTION_DELETE), inc("zz", EVENT_ACTION_DELETE),
        inc("c", EVENT_ACTION_UPDATE), inc("a", EVENT_ACTION_INSERT)};
    ops[2].player = "X";
    el.incidents = ops;
    el.n_incidents = 4;
    assert_string_equal(apply_json(m, &el, 0),
                        "{\"id\":\"m\",\"incidents\":[{\"id\":\"b\","
                        "\"type\":\"yellow_card\",\"team\":\"away\"},"
                        "{\"id\":\"c\",\"player\":\"X\"},{\"id\":\"a\"}]}");
    feedsim_model_free(m);
}

static void test_model_msgnr(void **state)
{
    (void)state;
    struct feedsim_model *m = feedsim_model_new();
    assert_non_null(m);
    struct event_match el = delta("m");
    el.parts = EVENT_HAS_SCORE;
    el.has_msgnr = true;
    el.msgnr = 5; /* the first seen is the baseline */
    el.score_home = 1;
    apply_json(m, &el, 0);
    el.score_home = 7;
    assert_string_equal(apply_json(m, &el, FEEDSIM_SKIPPED),
                        "{\"id\":\"m\",\"score\":{\"home\":1,\"away\":0},"
                        "\"incidents\":[]}");
    el.msgnr = 4;
    apply_json(m, &el, FEEDSIM_SKIPPED);
    el.msgnr = 9; /* a gap: still applied */
    assert_string_equal(apply_json(m, &el, 0),
                        "{\"id\":\"m\",\"score\":{\"home\":7,\"away\":0},"
                        "\"incidents\":[]}");
    el.has_msgnr = false; /* without msgnr: always applied */
    el.score_home = 8;
    apply_json(m, &el, 0);
    el.has_msgnr = true;
    el.msgnr = 9;
    apply_json(m, &el, FEEDSIM_SKIPPED);
    feedsim_model_free(m);
}

static void test_model_many_matches(void **state)
{
    (void)state;
    struct feedsim_model *m = feedsim_model_new();
    assert_non_null(m);
    char id[32];
    for (int i = 0; i < 1000; i++) {
        snprintf(id, sizeof(id), "m%d", i);
        struct event_match el = delta(id);
        el.parts = EVENT_HAS_SCORE;
        el.score_home = (uint32_t)i;
        assert_int_equal(feedsim_model_apply(m, &el), 0);
    }
    struct actor_buf b;
    actor_buf_init(&b);
    assert_int_equal(feedsim_model_match_json(m, "m777", &b), 0);
    assert_string_equal(b.data, "{\"id\":\"m777\",\"score\":{\"home\":777,"
                                "\"away\":0},\"incidents\":[]}");
    actor_buf_reset(&b);
    assert_int_equal(feedsim_model_match_json(m, "nope", &b), -ENOENT);
    assert_int_equal(b.len, 0);
    feedsim_model_json(m, &b);
    assert_int_equal(strncmp(b.data, "{\"m0\":{\"id\":\"m0\"", 16), 0);
    assert_non_null(strstr(b.data, "},\"m999\":{\"id\":\"m999\""));
    actor_buf_release(&b);
    feedsim_model_free(m);
}

/* ---- XML ---------------------------------------------------------------- */

static void test_xml_escape(void **state)
{
    (void)state;
    struct actor_buf b;
    actor_buf_init(&b);
    const char in[] = "a&b<c>d\"e'f\tg\nh\ri\x01j Ø";
    feedsim_xml_escape(&b, in, sizeof(in) - 1);
    assert_string_equal(b.data, "a&amp;b&lt;c&gt;d&quot;e&apos;f&#9;g&#10;h"
                                "&#13;i\xef\xbf\xbdj Ø");
    actor_buf_reset(&b);
    feedsim_xml_attr(&b, "home", "Brighton & Hove Albion");
    feedsim_xml_attr(&b, "away", NULL);
    assert_string_equal(b.data, " home=\"Brighton &amp; Hove Albion\"");
    actor_buf_release(&b);
}

static void test_xml_documents(void **state)
{
    (void)state;
    struct event_incident x = inc("8812-17", EVENT_ACTION_INSERT);
    x.type = "goal";
    x.team = EVENT_TEAM_HOME;
    x.minute = 45;
    x.stoppage = 2;
    x.player = "N'Golo";
    x.confirmed = 0;
    struct event_incident d = inc("8812-3", EVENT_ACTION_DELETE);
    struct event_incident u = inc("8812-4", EVENT_ACTION_UPDATE);
    u.confirmed = 1;
    struct event_match el = delta("sr:match:8812");
    el.has_msgnr = true;
    el.msgnr = 57;
    el.parts = EVENT_HAS_STATUS | EVENT_HAS_CLOCK | EVENT_HAS_SCORE;
    el.phase = "second_half";
    el.clock_seconds = 66 * 60 + 12;
    el.clock_running = 1;
    el.score_home = 2;
    el.score_away = 1;
    el.incidents = (struct event_incident[]){x, d, u};
    el.n_incidents = 3;

    struct actor_buf b;
    actor_buf_init(&b);
    feedsim_xml_event_open(&b, 1042, "feed-1", "2026-11-21T15:04:05.123Z");
    feedsim_xml_match(&b, &el);
    feedsim_xml_event_close(&b);
    assert_string_equal(
        b.data,
        "<event seq=\"1042\" source=\"feed-1\" "
        "sent=\"2026-11-21T15:04:05.123Z\"><match id=\"sr:match:8812\" "
        "msgnr=\"57\" feedtype=\"delta\"><status phase=\"second_half\"/>"
        "<clock time=\"66:12\" running=\"1\"/><score home=\"2\" away=\"1\"/>"
        "<incident id=\"8812-17\" type=\"goal\" team=\"home\" minute=\"45\" "
        "stoppage=\"2\" player=\"N&apos;Golo\" confirmed=\"0\"/>"
        "<incident id=\"8812-3\" action=\"delete\"/><incident id=\"8812-4\" "
        "action=\"update\" confirmed=\"1\"/></match></event>\r\n");

    actor_buf_reset(&b);
    feedsim_xml_login(&b, "feed-1", "s\"3");
    assert_string_equal(b.data, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n"
                                "<login source=\"feed-1\" token=\"s&quot;3\" "
                                "version=\"1\"/>\r\n");
    actor_buf_release(&b);

    char ts[32];
    feedsim_rfc3339(ts, 1795273445123ll);
    assert_string_equal(ts, "2026-11-21T15:04:05.123Z");
}

/* ---- the reply scanner -------------------------------------------------- */

static const char replies[] =
    "<?xml version=\"1.0\"?>\r\n"
    "<login result=\"valid\" source=\"feed-&amp;1&#233;\" acked=\"1041\"/>"
    "\r\n\r\n<ack seq=\"1042\"/><!-- a comment -->"
    "<error seq='7' reason=\"bad_attribute\">detail <b x=\"/>\">x</b></error>"
    "<ct/>\n<hello/><ack seq=\"x\"/>";

static void check_replies(struct feedsim_reply *r, int n)
{
    assert_int_equal(n, 6);
    assert_int_equal(r[0].kind, FEEDSIM_REPLY_LOGIN);
    assert_string_equal(r[0].result, "valid");
    assert_string_equal(r[0].source, "feed-&1\xc3\xa9");
    assert_true(r[0].has_acked);
    assert_int_equal(r[0].acked, 1041);
    assert_int_equal(r[1].kind, FEEDSIM_REPLY_ACK);
    assert_true(r[1].has_seq);
    assert_int_equal(r[1].seq, 1042);
    assert_int_equal(r[2].kind, FEEDSIM_REPLY_ERROR);
    assert_int_equal(r[2].seq, 7);
    assert_string_equal(r[2].reason, "bad_attribute");
    assert_int_equal(r[3].kind, FEEDSIM_REPLY_CT);
    assert_int_equal(r[4].kind, FEEDSIM_REPLY_OTHER);
    assert_int_equal(r[5].kind, FEEDSIM_REPLY_ACK);
    assert_false(r[5].has_seq);
}

static void test_scan_concatenated(void **state)
{
    (void)state;
    struct feedsim_scan s;
    struct feedsim_reply r[8];
    int n = 0;
    int rc;
    feedsim_scan_init(&s);
    assert_int_equal(feedsim_scan_push(&s, replies, sizeof(replies) - 1), 0);
    while ((rc = feedsim_scan_next(&s, &r[n])) == 1) {
        n++;
    }
    assert_int_equal(rc, 0);
    check_replies(r, n);
    feedsim_scan_release(&s);
}

static void test_scan_split_anywhere(void **state)
{
    (void)state;
    /* Byte by byte, and every two-piece cut: always the same replies. */
    for (size_t cut = 0; cut <= sizeof(replies) - 1; cut++) {
        struct feedsim_scan s;
        struct feedsim_reply r[8];
        int n = 0;
        int rc;
        feedsim_scan_init(&s);
        size_t len = sizeof(replies) - 1;
        size_t step = cut == 0 ? 1 : len;
        for (size_t off = 0; off < len;) {
            size_t piece = off < cut ? cut - off : step;
            if (piece > len - off) {
                piece = len - off;
            }
            assert_int_equal(feedsim_scan_push(&s, replies + off, piece), 0);
            off += piece;
            while ((rc = feedsim_scan_next(&s, &r[n])) == 1) {
                assert_true(++n < 8);
            }
            assert_int_equal(rc, 0);
        }
        check_replies(r, n);
        feedsim_scan_release(&s);
    }
}

static void test_scan_rejects(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "<ack seq=5/>",           "</ack>",
        "<ack seq=\"1\" / >",     "<!DOCTYPE x>",
        "<ack seq=\"&bogus;\"/>", "<ack =\"1\"/>",
        "<ack seq=\"a<b\"/>",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct feedsim_scan s;
        struct feedsim_reply r;
        feedsim_scan_init(&s);
        feedsim_scan_push(&s, bad[i], strlen(bad[i]));
        assert_int_equal(feedsim_scan_next(&s, &r), -EPROTO);
        feedsim_scan_release(&s);
    }

    /* An unfinished reply may not grow past the limit. */
    struct feedsim_scan s;
    struct feedsim_reply r;
    feedsim_scan_init(&s);
    feedsim_scan_push(&s, "<error reason=\"", 15);
    assert_int_equal(feedsim_scan_next(&s, &r), 0);
    char junk[4096];
    memset(junk, 'x', sizeof(junk));
    int rc = 0;
    for (int i = 0; i < 20 && rc == 0; i++) {
        feedsim_scan_push(&s, junk, sizeof(junk));
        rc = feedsim_scan_next(&s, &r);
    }
    assert_int_equal(rc, -EMSGSIZE);

    /* After a reset the scanner starts afresh; numbers are strict. */
    feedsim_scan_reset(&s);
    const char ok[] = "<ack seq=\"18446744073709551615\"/><ack seq=\"-1\"/>"
                      "<ack seq=\"18446744073709551616\"/>";
    feedsim_scan_push(&s, ok, sizeof(ok) - 1);
    assert_int_equal(feedsim_scan_next(&s, &r), 1);
    assert_true(r.has_seq);
    assert_true(r.seq == UINT64_MAX);
    assert_int_equal(feedsim_scan_next(&s, &r), 1);
    assert_false(r.has_seq);
    assert_int_equal(feedsim_scan_next(&s, &r), 1);
    assert_false(r.has_seq);
    assert_int_equal(feedsim_scan_next(&s, &r), 0);
    feedsim_scan_release(&s);
}

/* ---- malformed documents ------------------------------------------------ */

/* Frames @doc like a depth-counting receiver would; returns where the
 * first root element ends (0 if it does not). */
static size_t framed_length(const char *doc, size_t len)
{
    int depth = 0;
    size_t i = 0;
    while (i < len) {
        const char *lt = memchr(doc + i, '<', len - i);
        if (!lt) {
            return 0;
        }
        i = (size_t)(lt - doc);
        if (doc[i + 1] == '/') {
            depth--;
            i = (size_t)((const char *)memchr(doc + i, '>', len - i) - doc) + 1;
        } else {
            char quote = 0;
            size_t j = i + 1;
            for (; j < len; j++) {
                if (quote) {
                    quote = doc[j] == quote ? 0 : quote;
                } else if (doc[j] == '"' || doc[j] == '\'') {
                    quote = doc[j];
                } else if (doc[j] == '>') {
                    break;
                }
            }
            depth += doc[j - 1] != '/';
            i = j + 1;
        }
        if (depth == 0) {
            return i;
        }
    }
    return 0;
}

static void test_bad_documents(void **state)
{
    (void)state;
    struct feedsim_gen *g = feedsim_gen_new(&base_cfg, 5);
    assert_non_null(g);
    feedsim_gen_step(g);
    const struct event_match *decoy = feedsim_gen_decoy(g);
    assert_int_equal(decoy->msgnr, 2);
    assert_int_equal(decoy->score_home, 99);

    for (int k = 0; k < FEEDSIM_BAD_N; k++) {
        enum feedsim_bad_kind kind = (enum feedsim_bad_kind)k;
        enum feedsim_bad_kind parsed;
        assert_int_equal(feedsim_bad_parse(feedsim_bad_name(kind), &parsed), 0);
        assert_int_equal(parsed, kind);
        uint64_t rng = 7;
        for (int i = 0; i < 50; i++) {
            struct actor_buf b;
            actor_buf_init(&b);
            feedsim_bad_write(&b, kind, &rng, 1234, decoy, 4096);
            assert_int_equal(b.err, 0);
            if (kind == FEEDSIM_BAD_JUNK) {
                assert_null(memchr(b.data, '<', b.len));
                actor_buf_release(&b);
                continue;
            }
            bool has = strstr(b.data, "seq=\"1234\"") != NULL;
            assert_true(has == feedsim_bad_has_seq(kind));
            assert_int_equal(strncmp(b.data, "<event", 6), 0);
            /* Framable: the root ends exactly at the document's end. */
            assert_int_equal(framed_length(b.data, b.len), b.len - 2);
            if (kind == FEEDSIM_BAD_TOO_LARGE) {
                assert_true(b.len > 4096 && b.len < 4 * 4096);
            } else {
                assert_true(b.len < 1024);
            }
            actor_buf_release(&b);
        }
    }
    assert_true(feedsim_bad_is_seq_used(FEEDSIM_BAD_ATTRIBUTE));
    assert_true(feedsim_bad_is_seq_used(FEEDSIM_BAD_ELEMENT));
    assert_false(feedsim_bad_is_seq_used(FEEDSIM_BAD_NOT_WELL_FORMED));
    assert_false(feedsim_bad_is_seq_used(FEEDSIM_BAD_TOO_LARGE));
    assert_false(feedsim_bad_is_seq_used(FEEDSIM_BAD_MISSING_SEQ));
    enum feedsim_bad_kind kind;
    assert_int_equal(feedsim_bad_parse("nonsense", &kind), -EINVAL);
    feedsim_gen_free(g);
}

/* ---- the window --------------------------------------------------------- */

static int push(struct feedsim_window *w, uint64_t seq, bool required)
{
    struct feedsim_doc d = {.seq = seq, .required = required, .bad = -1};
    char text[32];
    d.len = (size_t)snprintf(text, sizeof(text), "<doc %llu/>",
                             (unsigned long long)seq);
    d.data = strdup(text);
    assert_non_null(d.data);
    return feedsim_window_push(w, &d);
}

static void count_done(const struct feedsim_doc *d, void *arg)
{
    (void)d;
    (*(int *)arg)++;
}

static void test_window(void **state)
{
    (void)state;
    struct feedsim_window w;
    feedsim_window_init(&w);
    for (uint64_t s = 1; s <= 3; s++) {
        assert_int_equal(push(&w, s, true), 0);
    }
    assert_int_equal(push(&w, 0, false), 0); /* junk: sent once */
    assert_int_equal(push(&w, 4, false), 0); /* a seq it may skip */
    assert_int_equal(push(&w, 5, true), 0);
    assert_true(feedsim_window_has_required(&w));

    struct feedsim_doc *d;
    uint64_t order[8];
    int n = 0;
    while ((d = feedsim_window_next(&w))) {
        d->sends++;
        order[n++] = d->seq;
    }
    assert_int_equal(n, 6);
    assert_true(order[3] == 0 && order[5] == 5);

    int done = 0;
    assert_int_equal(feedsim_window_ack(&w, 2, count_done, &done), 2);
    assert_int_equal(done, 2);
    assert_int_equal(w.len, 4);
    assert_int_equal(w.cursor, 4);

    /* A reconnect: everything left goes again but the junk. */
    feedsim_window_rewind(&w);
    n = 0;
    while ((d = feedsim_window_next(&w))) {
        order[n++] = d->seq;
    }
    assert_int_equal(n, 3);
    assert_true(order[0] == 3 && order[1] == 4 && order[2] == 5);

    /* The ack of 3 also lets the junk behind it go. */
    assert_int_equal(feedsim_window_ack(&w, 3, NULL, NULL), 2);
    assert_int_equal(feedsim_window_ack(&w, 3, NULL, NULL), 0);
    assert_true(feedsim_window_has_required(&w));
    feedsim_window_drop_oldest(&w); /* 4 */
    assert_int_equal(feedsim_window_ack(&w, 9, NULL, NULL), 1);
    assert_false(feedsim_window_has_required(&w));
    assert_int_equal(w.len, 0);

    /* Growth across the ring's wrap keeps the order. */
    for (uint64_t s = 10; s < 50; s++) {
        push(&w, s, true);
    }
    feedsim_window_ack(&w, 39, NULL, NULL);
    for (uint64_t s = 50; s < 300; s++) {
        push(&w, s, true);
    }
    assert_int_equal(w.len, 260);
    for (size_t i = 0; i < w.len; i++) {
        assert_int_equal(feedsim_window_at(&w, i)->seq, 40 + i);
    }
    assert_null(feedsim_window_at(&w, w.len));
    assert_int_equal(w.required, 260);
    feedsim_window_release(&w);
}

/* ---- the histogram ------------------------------------------------------ */

static void test_hist(void **state)
{
    (void)state;
    struct feedsim_hist h = {0};
    assert_int_equal(feedsim_hist_quantile(&h, 0.5), 0);
    for (uint64_t us = 1; us <= 100000; us++) {
        feedsim_hist_add(&h, us);
    }
    uint64_t p50 = feedsim_hist_quantile(&h, 0.5);
    uint64_t p99 = feedsim_hist_quantile(&h, 0.99);
    assert_true(p50 >= 50000 && p50 <= 50000 * 1.04);
    assert_true(p99 >= 99000 && p99 <= 100000);
    assert_int_equal(feedsim_hist_quantile(&h, 1.0), 100000);
    assert_int_equal(feedsim_hist_quantile(&h, 0.0), 1);

    struct feedsim_hist small = {0};
    for (uint64_t us = 0; us < 64; us++) {
        feedsim_hist_add(&small, us);
    }
    assert_int_equal(feedsim_hist_quantile(&small, 0.5), 31);
    feedsim_hist_add(&small, UINT64_MAX); /* lands in the last bucket */
    assert_true(feedsim_hist_quantile(&small, 1.0) == UINT64_MAX);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gen_is_deterministic),
        cmocka_unit_test(test_gen_plays_football),
        cmocka_unit_test(test_gen_full_snapshot_matches_model),
        cmocka_unit_test(test_model_delta_merges),
        cmocka_unit_test(test_model_full_replaces),
        cmocka_unit_test(test_model_incidents),
        cmocka_unit_test(test_model_msgnr),
        cmocka_unit_test(test_model_many_matches),
        cmocka_unit_test(test_xml_escape),
        cmocka_unit_test(test_xml_documents),
        cmocka_unit_test(test_scan_concatenated),
        cmocka_unit_test(test_scan_split_anywhere),
        cmocka_unit_test(test_scan_rejects),
        cmocka_unit_test(test_bad_documents),
        cmocka_unit_test(test_window),
        cmocka_unit_test(test_hist),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
