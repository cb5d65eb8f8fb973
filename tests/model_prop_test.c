/* tests/model_prop_test.c - property tests of the match state machine:
 * random valid element sequences against a small independent reference
 * model, and snapshot(v) + deltas v+1..n == snapshot(n) through a JSON
 * parser and merger of the test's own. */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>

#include <cmocka.h>

#include "actor/actor.h"
#include "ingest/event.h"
#include "model/model_impl.h"
#include "model/update.h"

/*
 * DESIGN
 * Each run is one seed: a generator makes a random but valid sequence of
 * match elements (msgnr steps, duplicates and jumps, full and delta, every
 * child, incident actions on a small id pool so they collide) and feed
 * state changes. Every step goes to the code under test and to the
 * reference model below, written from the spec without looking at
 * model_match.c's mechanics (it keeps a plain list and the creation order
 * instead of tombstones); after each step the image must equal the
 * reference field by field. Two clients follow the JSON: one from version
 * 0, one joining later from a snapshot; each applies every update's text
 * with the merger below, and must equal the current snapshot after every
 * step. Some steps also fail an allocation first: the match must be
 * unchanged and the retry must succeed.
 *
 * A failure prints its seed; MODEL_PROP_SEED=<seed> runs that one alone.
 */

#define MATCH     "sr:match:4242"
#define RUNS      400
#define STEPS     160
#define MAX_IDS   48 /* incident ids of the large pool */
#define MAX_INC   64 /* more than a pool holds */
#define MAX_ELINC 64 /* incident actions in one element */

static uint64_t cur_seed;
static int cur_step;

#define PROP_FAIL(...)                                                         \
    do {                                                                       \
        print_error("seed %" PRIu64 " step %d: ", cur_seed, cur_step);         \
        print_error(__VA_ARGS__);                                              \
        print_error("\n");                                                     \
        fail();                                                                \
    } while (0)
#define PROP_CHECK(cond)                                                       \
    do {                                                                       \
        if (!(cond)) {                                                         \
            PROP_FAIL("%s", #cond);                                            \
        }                                                                      \
    } while (0)

/* ---- random numbers (splitmix64) --------------------------------------- */

static uint64_t rng_state;

static uint64_t rng_next(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in [0, n). */
static uint32_t rnd(uint32_t n)
{
    return (uint32_t)(rng_next() % n);
}

static bool chance(uint32_t percent)
{
    return rnd(100) < percent;
}

#define PICK(pool) ((pool)[rnd(sizeof(pool) / sizeof((pool)[0]))])

/* Incident ids: most runs use 6, so actions collide often; every fourth
 * uses 48, so lists grow past the point where the model indexes them. */
static char ids[MAX_IDS][8];
static uint32_t n_ids;
static const char *const types[] = {"goal",         "own_goal", "yellow_card",
                                    "substitution", "var",      "x\"y"};
static const char *const names[] = {"B. Saka",     "M. \u00d8degaard",
                                    "tab\there",   "quote\"back\\slash",
                                    "ctl\x01\x1f", "",
                                    "C. Palmer"};
static const char *const phases[] = {
    "not_started", "first_half", "halftime", "second_half",
    "ended",       "suspended",  ""};
static const char *const fixture_texts[] = {
    "soccer", "Premier League",    "Arsenal", "Chelsea", "2026-11-21T15:00:00Z",
    "",       "Caf\xc3\xa9 \"FC\""};
static const char *const sources[] = {"feed-eu-1", "feed-eu-1", "feed-eu-2"};
static const char *const sents[] = {NULL, "2026-11-21T15:04:05.123Z",
                                    "2026-11-21T15:04:06Z"};

/* ---- the reference model ------------------------------------------------ */

struct ref_inc {
    const char *id; /* pool strings: compared by value */
    const char *type;
    const char *player;
    const char *assist;
    int32_t minute;
    int32_t stoppage;
    int8_t team;
    int8_t confirmed;
    uint64_t version;
};

struct ref {
    uint64_t version;
    bool has_msgnr;
    uint64_t msgnr;
    bool gap;
    const char *source;
    int feed;
    const char *fix[5]; /* sport competition home away start */
    const char *phase;
    int32_t clock;
    int32_t running;
    bool has_score;
    uint32_t home;
    uint32_t away;
    struct ref_inc inc[MAX_INC];
    int n;
    uint64_t gaps;
    uint64_t dups;
};

static bool same_str(const char *a, const char *b)
{
    if (!a || !b) {
        return a == b;
    }
    return strcmp(a, b) == 0;
}

static int ref_find(const struct ref_inc *list, int n, const char *id)
{
    for (int k = 0; k < n; k++) {
        if (strcmp(list[k].id, id) == 0) {
            return k;
        }
    }
    return -1;
}

static bool ref_inc_same(const struct ref_inc *a, const struct ref_inc *b)
{
    return same_str(a->id, b->id) && same_str(a->type, b->type) &&
           same_str(a->player, b->player) && same_str(a->assist, b->assist) &&
           a->minute == b->minute && a->stoppage == b->stoppage &&
           a->team == b->team && a->confirmed == b->confirmed;
}

static void ref_incidents(struct ref *r, const struct event_match *em)
{
    struct ref_inc before[MAX_INC];
    int n_before = r->n;
    memcpy(before, r->inc, sizeof(before));
    /* The actions on a plain list, in order. */
    struct ref_inc cur[MAX_INC];
    int n_cur = em->full ? 0 : n_before;
    memcpy(cur, before, sizeof(cur));
    const char *created[MAX_INC]; /* ids new to the list, first creation */
    int n_created = 0;
    for (uint32_t i = 0; i < em->n_incidents; i++) {
        const struct event_incident *ei = &em->incidents[i];
        int k = ref_find(cur, n_cur, ei->id);
        if (ei->action == EVENT_ACTION_DELETE) {
            if (k >= 0) {
                memmove(&cur[k], &cur[k + 1],
                        (size_t)(n_cur - k - 1) * sizeof(cur[0]));
                n_cur--;
            }
            continue;
        }
        if (k < 0) {
            k = n_cur++;
            cur[k] = (struct ref_inc){.id = ei->id,
                                      .minute = EVENT_ABSENT,
                                      .stoppage = EVENT_ABSENT,
                                      .confirmed = EVENT_ABSENT};
            bool was_before =
                !em->full && ref_find(before, n_before, ei->id) >= 0;
            bool known = false;
            for (int c = 0; c < n_created; c++) {
                known = known || strcmp(created[c], ei->id) == 0;
            }
            if (!was_before && !known) {
                created[n_created++] = ei->id;
            }
        } else if (ei->action == EVENT_ACTION_INSERT) {
            cur[k] = (struct ref_inc){.id = ei->id,
                                      .minute = EVENT_ABSENT,
                                      .stoppage = EVENT_ABSENT,
                                      .confirmed = EVENT_ABSENT};
        }
        struct ref_inc *x = &cur[k];
        if (ei->type) {
            x->type = ei->type;
        }
        if (ei->player) {
            x->player = ei->player;
        }
        if (ei->assist) {
            x->assist = ei->assist;
        }
        if (ei->minute != EVENT_ABSENT) {
            x->minute = ei->minute;
        }
        if (ei->stoppage != EVENT_ABSENT) {
            x->stoppage = ei->stoppage;
        }
        if (ei->team != EVENT_TEAM_NONE) {
            x->team = ei->team;
        }
        if (ei->confirmed != EVENT_ABSENT) {
            x->confirmed = ei->confirmed;
        }
    }
    /* Order: survivors of the old list where they were (a delta), then
     * new ids in the order they were first created. */
    r->n = 0;
    if (!em->full) {
        for (int k = 0; k < n_before; k++) {
            int c = ref_find(cur, n_cur, before[k].id);
            if (c >= 0) {
                r->inc[r->n++] = cur[c];
            }
        }
    }
    for (int k = 0; k < n_created; k++) {
        int c = ref_find(cur, n_cur, created[k]);
        if (c >= 0) {
            r->inc[r->n++] = cur[c];
        }
    }
    PROP_CHECK(r->n == n_cur);
    for (int k = 0; k < r->n; k++) {
        int b = ref_find(before, n_before, r->inc[k].id);
        bool same = b >= 0 && ref_inc_same(&r->inc[k], &before[b]);
        r->inc[k].version = same ? before[b].version : r->version;
    }
}

/* Returns what model__match_apply() must return. */
static int ref_apply(struct ref *r, const struct event *ev,
                     const struct event_match *em)
{
    bool jump = false;
    if (em->has_msgnr && r->has_msgnr) {
        if (em->msgnr <= r->msgnr) {
            r->dups++;
            return MODEL__DUPLICATE;
        }
        jump = em->msgnr > r->msgnr + 1;
    }
    r->version++;
    if (em->has_msgnr) {
        r->has_msgnr = true;
        r->msgnr = em->msgnr;
    }
    if (jump) {
        r->gaps++;
    }
    r->gap = em->full ? false : r->gap || jump;
    r->source = ev->source;
    r->feed = MATCH_FEED_LIVE;
    const char *fix[5] = {em->fixture.sport, em->fixture.competition,
                          em->fixture.home, em->fixture.away,
                          em->fixture.start};
    bool has_fix = em->parts & EVENT_HAS_FIXTURE;
    bool has_status = em->parts & EVENT_HAS_STATUS;
    bool has_clock = em->parts & EVENT_HAS_CLOCK;
    bool has_score = em->parts & EVENT_HAS_SCORE;
    if (em->full) {
        for (int k = 0; k < 5; k++) {
            r->fix[k] = has_fix ? fix[k] : NULL;
        }
        r->phase = has_status ? em->phase : NULL;
        r->clock = has_clock ? em->clock_seconds : EVENT_ABSENT;
        r->running = has_clock ? em->clock_running : EVENT_ABSENT;
        r->has_score = has_score;
        r->home = has_score ? em->score_home : 0;
        r->away = has_score ? em->score_away : 0;
    } else {
        for (int k = 0; k < 5 && has_fix; k++) {
            r->fix[k] = fix[k] ? fix[k] : r->fix[k];
        }
        if (has_status && em->phase) {
            r->phase = em->phase;
        }
        if (has_clock && em->clock_seconds != EVENT_ABSENT) {
            r->clock = em->clock_seconds;
        }
        if (has_clock && em->clock_running != EVENT_ABSENT) {
            r->running = em->clock_running;
        }
        if (has_score) {
            r->has_score = true;
            r->home = em->score_home;
            r->away = em->score_away;
        }
    }
    ref_incidents(r, em);
    return jump ? MODEL__GAP : 0;
}

static int ref_feed(struct ref *r, const char *source, int feed)
{
    if (!r->source || strcmp(r->source, source) != 0 || r->feed == feed) {
        return MODEL__UNCHANGED;
    }
    r->version++;
    r->feed = feed;
    return 0;
}

static void check_same(const struct ref *r, const struct model__match *m)
{
    const struct match_image *img = m->image;
    PROP_CHECK(img->version == r->version);
    PROP_CHECK(img->has_msgnr == r->has_msgnr);
    PROP_CHECK(!r->has_msgnr || img->msgnr == r->msgnr);
    PROP_CHECK(img->gap == r->gap);
    PROP_CHECK(same_str(img->source, r->source));
    PROP_CHECK(img->feed == r->feed);
    PROP_CHECK(same_str(img->sport, r->fix[0]));
    PROP_CHECK(same_str(img->competition, r->fix[1]));
    PROP_CHECK(same_str(img->home, r->fix[2]));
    PROP_CHECK(same_str(img->away, r->fix[3]));
    PROP_CHECK(same_str(img->start, r->fix[4]));
    PROP_CHECK(same_str(img->phase, r->phase));
    PROP_CHECK(img->clock_seconds == r->clock);
    PROP_CHECK(img->clock_running == r->running);
    PROP_CHECK(img->has_score == r->has_score);
    PROP_CHECK(img->score_home == r->home && img->score_away == r->away);
    PROP_CHECK(m->gaps == r->gaps && m->duplicates == r->dups);
    PROP_CHECK(img->n_incidents == (uint32_t)r->n);
    for (int k = 0; k < r->n; k++) {
        const struct match_incident *in = &img->incidents[k];
        const struct ref_inc *x = &r->inc[k];
        PROP_CHECK(same_str(in->id, x->id));
        PROP_CHECK(same_str(in->type, x->type));
        PROP_CHECK(same_str(in->player, x->player));
        PROP_CHECK(same_str(in->assist, x->assist));
        PROP_CHECK(in->minute == x->minute && in->stoppage == x->stoppage);
        PROP_CHECK(in->team == x->team && in->confirmed == x->confirmed);
        PROP_CHECK(in->version == x->version);
    }
}

/* ---- the generator --------------------------------------------------------
 */

struct gen {
    uint64_t last_nr; /* highest msgnr sent so far; 0: none */
    struct event_incident incs[MAX_ELINC];
};

static int32_t maybe_int(uint32_t percent, uint32_t below)
{
    return chance(percent) ? (int32_t)rnd(below) : EVENT_ABSENT;
}

static const char *maybe_str(uint32_t percent, const char *const *pool,
                             size_t n)
{
    return chance(percent) ? pool[rnd((uint32_t)n)] : NULL;
}

#define MAYBE(percent, pool)                                                   \
    maybe_str((percent), (pool), sizeof(pool) / sizeof((pool)[0]))

/*
 * A full that re-sends @r's state, as providers do to resync: its incidents
 * in a shuffled order half the time, one of them changed now and then.
 */
static void gen_resync(struct gen *g, const struct ref *r,
                       struct event_match *em)
{
    em->parts = EVENT_HAS_FIXTURE | EVENT_HAS_STATUS | EVENT_HAS_CLOCK |
                EVENT_HAS_SCORE;
    em->fixture = (struct event_fixture){r->fix[0], r->fix[1], r->fix[2],
                                         r->fix[3], r->fix[4]};
    em->phase = r->phase;
    em->clock_seconds = r->clock;
    em->clock_running = (int8_t)r->running;
    em->score_home = r->home;
    em->score_away = r->away;
    if (!r->has_score) {
        em->parts &= ~(unsigned)EVENT_HAS_SCORE;
    }
    uint32_t n = (uint32_t)r->n < MAX_ELINC ? (uint32_t)r->n : MAX_ELINC;
    for (uint32_t i = 0; i < n; i++) {
        const struct ref_inc *x = &r->inc[i];
        g->incs[i] = (struct event_incident){
            .id = x->id,
            .type = x->type,
            .player = x->player,
            .assist = x->assist,
            .minute = x->minute,
            .stoppage = x->stoppage,
            .team = x->team,
            .confirmed = x->confirmed,
            .action = EVENT_ACTION_INSERT,
        };
    }
    for (uint32_t i = n; i > 1 && chance(50); i--) {
        uint32_t j = rnd(i);
        struct event_incident t = g->incs[i - 1];
        g->incs[i - 1] = g->incs[j];
        g->incs[j] = t;
    }
    if (n > 0 && chance(30)) {
        g->incs[rnd(n)].minute = (int32_t)rnd(130);
    }
    em->incidents = n ? g->incs : NULL;
    em->n_incidents = n;
}

static void gen_element(struct gen *g, const struct ref *r,
                        struct event_match *em)
{
    *em = (struct event_match){.id = MATCH,
                               .clock_seconds = EVENT_ABSENT,
                               .clock_running = EVENT_ABSENT};
    uint32_t pick = rnd(100);
    if (pick < 10) {
        /* no msgnr */
    } else if (pick < 75 || g->last_nr == 0) {
        em->has_msgnr = true;
        em->msgnr = g->last_nr + 1;
    } else if (pick < 87) {
        em->has_msgnr = true;
        em->msgnr =
            g->last_nr - rnd((uint32_t)(g->last_nr < 3 ? g->last_nr : 3));
    } else {
        em->has_msgnr = true;
        em->msgnr = g->last_nr + 2 + rnd(5);
    }
    if (em->has_msgnr && em->msgnr > g->last_nr) {
        g->last_nr = em->msgnr;
    }
    em->full = chance(6);
    if (em->full && chance(40)) {
        gen_resync(g, r, em);
        return;
    }
    uint32_t more = em->full ? 40 : 0;
    if (chance(8 + more)) {
        em->parts |= EVENT_HAS_FIXTURE;
        em->fixture.sport = MAYBE(50, fixture_texts);
        em->fixture.competition = MAYBE(50, fixture_texts);
        em->fixture.home = MAYBE(50, fixture_texts);
        em->fixture.away = MAYBE(50, fixture_texts);
        em->fixture.start = MAYBE(50, fixture_texts);
    }
    if (chance(20 + more)) {
        em->parts |= EVENT_HAS_STATUS;
        em->phase = MAYBE(85, phases);
    }
    if (chance(60 + more)) {
        em->parts |= EVENT_HAS_CLOCK;
        em->clock_seconds = maybe_int(80, chance(5) ? 400000 : 130 * 60);
        em->clock_running = (int8_t)maybe_int(60, 2);
    }
    if (chance(20 + more)) {
        em->parts |= EVENT_HAS_SCORE;
        em->score_home = rnd(6);
        em->score_away = rnd(6);
    }
    uint32_t most = em->full ? n_ids + n_ids / 4 : 4;
    uint32_t n = chance(30 + more) ? 1 + rnd(most) : 0;
    for (uint32_t i = 0; i < n; i++) {
        struct event_incident *ei = &g->incs[i];
        uint32_t a = rnd(100);
        *ei = (struct event_incident){
            .id = ids[rnd(n_ids)],
            .action = a < 50   ? EVENT_ACTION_INSERT
                      : a < 80 ? EVENT_ACTION_UPDATE
                               : EVENT_ACTION_DELETE,
            .type = MAYBE(60, types),
            .player = MAYBE(50, names),
            .assist = MAYBE(30, names),
            .minute = maybe_int(60, 130),
            .stoppage = maybe_int(20, 15),
            .team = (int8_t)rnd(3),
            .confirmed = (int8_t)((int)rnd(3) - 1),
        };
        if (ei->action == EVENT_ACTION_DELETE && chance(70)) {
            /* a delete usually carries only its id */
            *ei = (struct event_incident){.id = ei->id,
                                          .action = EVENT_ACTION_DELETE,
                                          .minute = EVENT_ABSENT,
                                          .stoppage = EVENT_ABSENT,
                                          .confirmed = EVENT_ABSENT};
        }
    }
    em->incidents = n ? g->incs : NULL;
    em->n_incidents = n;
}

/* ---- JSON: parse, merge, compare ------------------------------------------
 */

enum jtype { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ };

struct jv {
    enum jtype t;
    bool b;
    int64_t num;
    char *s; /* J_STR: bytes, NUL-terminated */
    size_t len;
    struct jv **items; /* J_ARR, J_OBJ */
    char **keys;       /* J_OBJ */
    size_t n;
};

static void jfree(struct jv *v)
{
    if (!v) {
        return;
    }
    for (size_t i = 0; i < v->n; i++) {
        jfree(v->items[i]);
        if (v->keys) {
            free(v->keys[i]);
        }
    }
    free(v->items);
    free(v->keys);
    free(v->s);
    free(v);
}

static struct jv *jnew(enum jtype t)
{
    struct jv *v = calloc(1, sizeof(*v));
    assert_non_null(v);
    v->t = t;
    return v;
}

/* Appends @item (and @key for objects) to @v; takes both. */
static void jpush(struct jv *v, char *key, struct jv *item)
{
    v->items = realloc(v->items, (v->n + 1) * sizeof(v->items[0]));
    assert_non_null(v->items);
    if (v->t == J_OBJ) {
        v->keys = realloc(v->keys, (v->n + 1) * sizeof(v->keys[0]));
        assert_non_null(v->keys);
        v->keys[v->n] = key;
    }
    v->items[v->n++] = item;
}

struct jp {
    const char *p;
    bool bad;
};

static void jws(struct jp *jp)
{
    while (*jp->p == ' ' || *jp->p == '\n' || *jp->p == '\t' ||
           *jp->p == '\r') {
        jp->p++;
    }
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

static unsigned jhex4(struct jp *jp)
{
    unsigned u = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval(jp->p[i]);
        if (h < 0) {
            jp->bad = true;
            return 0;
        }
        u = u * 16 + (unsigned)h;
    }
    jp->p += 4;
    return u;
}

static char *jstring(struct jp *jp, size_t *len)
{
    if (*jp->p != '"') {
        jp->bad = true;
        return NULL;
    }
    jp->p++;
    struct actor_buf b;
    actor_buf_init(&b);
    while (*jp->p != '"') {
        unsigned char c = (unsigned char)*jp->p++;
        if (c == '\0' || c < 0x20) {
            jp->bad = true; /* JSON forbids raw control characters */
            break;
        }
        if (c != '\\') {
            actor_buf_char(&b, (char)c);
            continue;
        }
        char e = *jp->p++;
        const char *simple = strchr("\"\\/bfnrt", e);
        if (e && simple) {
            actor_buf_char(&b, "\"\\/\b\f\n\r\t"[simple - "\"\\/bfnrt"]);
            continue;
        }
        if (e != 'u') {
            jp->bad = true;
            break;
        }
        unsigned u = jhex4(jp);
        if (u >= 0xd800 && u < 0xdc00 && jp->p[0] == '\\' && jp->p[1] == 'u') {
            jp->p += 2;
            u = 0x10000 + ((u - 0xd800) << 10) + (jhex4(jp) - 0xdc00);
        }
        char utf8[4];
        int n = 0;
        if (u < 0x80) {
            utf8[n++] = (char)u;
        } else if (u < 0x800) {
            utf8[n++] = (char)(0xc0 | (u >> 6));
            utf8[n++] = (char)(0x80 | (u & 0x3f));
        } else if (u < 0x10000) {
            utf8[n++] = (char)(0xe0 | (u >> 12));
            utf8[n++] = (char)(0x80 | ((u >> 6) & 0x3f));
            utf8[n++] = (char)(0x80 | (u & 0x3f));
        } else {
            utf8[n++] = (char)(0xf0 | (u >> 18));
            utf8[n++] = (char)(0x80 | ((u >> 12) & 0x3f));
            utf8[n++] = (char)(0x80 | ((u >> 6) & 0x3f));
            utf8[n++] = (char)(0x80 | (u & 0x3f));
        }
        actor_buf_add(&b, utf8, (size_t)n);
    }
    if (*jp->p == '"') {
        jp->p++;
    }
    actor_buf_reserve(&b, 0); /* an empty string still gets its NUL */
    assert_int_equal(b.err, 0);
    return actor_buf_take(&b, len);
}

static struct jv *jvalue(struct jp *jp, int depth);

static struct jv *jcontainer(struct jp *jp, int depth, bool obj)
{
    struct jv *v = jnew(obj ? J_OBJ : J_ARR);
    jp->p++;
    jws(jp);
    if (*jp->p == (obj ? '}' : ']')) {
        jp->p++;
        return v;
    }
    for (;;) {
        char *key = NULL;
        if (obj) {
            jws(jp);
            key = jstring(jp, NULL);
            jws(jp);
            if (jp->bad || *jp->p != ':') {
                jp->bad = true;
                free(key);
                return v;
            }
            jp->p++;
        }
        jpush(v, key, jvalue(jp, depth + 1));
        if (jp->bad) {
            return v;
        }
        jws(jp);
        if (*jp->p == ',') {
            jp->p++;
            continue;
        }
        if (*jp->p == (obj ? '}' : ']')) {
            jp->p++;
            return v;
        }
        jp->bad = true;
        return v;
    }
}

static struct jv *jvalue(struct jp *jp, int depth)
{
    jws(jp);
    if (depth > 16) {
        jp->bad = true;
        return jnew(J_NULL);
    }
    char c = *jp->p;
    if (c == '{' || c == '[') {
        return jcontainer(jp, depth, c == '{');
    }
    if (c == '"') {
        struct jv *v = jnew(J_STR);
        v->s = jstring(jp, &v->len);
        return v;
    }
    if (strncmp(jp->p, "true", 4) == 0 || strncmp(jp->p, "false", 5) == 0) {
        struct jv *v = jnew(J_BOOL);
        v->b = c == 't';
        jp->p += v->b ? 4 : 5;
        return v;
    }
    if (strncmp(jp->p, "null", 4) == 0) {
        jp->p += 4;
        return jnew(J_NULL);
    }
    if (c == '-' || (c >= '0' && c <= '9')) {
        struct jv *v = jnew(J_NUM);
        char *end;
        errno = 0;
        v->num = strtoll(jp->p, &end, 10);
        jp->bad =
            jp->bad || errno != 0 || *end == '.' || *end == 'e' || *end == 'E';
        jp->p = end;
        return v;
    }
    jp->bad = true;
    return jnew(J_NULL);
}

static struct jv *jparse(const char *text)
{
    struct jp jp = {.p = text};
    struct jv *v = jvalue(&jp, 0);
    jws(&jp);
    if (jp.bad || *jp.p != '\0') {
        PROP_FAIL("bad JSON at offset %td: %s", jp.p - text, text);
    }
    return v;
}

static struct jv *jget(const struct jv *obj, const char *key)
{
    if (!obj || obj->t != J_OBJ) {
        return NULL;
    }
    for (size_t i = 0; i < obj->n; i++) {
        if (strcmp(obj->keys[i], key) == 0) {
            return obj->items[i];
        }
    }
    return NULL;
}

/* Sets @obj[@key] to @val (taken), replacing an old value in place. */
static void jset(struct jv *obj, const char *key, struct jv *val)
{
    for (size_t i = 0; i < obj->n; i++) {
        if (strcmp(obj->keys[i], key) == 0) {
            jfree(obj->items[i]);
            obj->items[i] = val;
            return;
        }
    }
    jpush(obj, strdup(key), val);
}

/* Takes item @i out of array @arr. */
static struct jv *jtake(struct jv *arr, size_t i)
{
    struct jv *v = arr->items[i];
    memmove(&arr->items[i], &arr->items[i + 1],
            (arr->n - i - 1) * sizeof(arr->items[0]));
    arr->n--;
    return v;
}

/* Takes member @key out of @obj (NULL when absent). */
static struct jv *jtake_member(struct jv *obj, const char *key)
{
    for (size_t i = 0; i < obj->n; i++) {
        if (strcmp(obj->keys[i], key) == 0) {
            free(obj->keys[i]);
            memmove(&obj->keys[i], &obj->keys[i + 1],
                    (obj->n - i - 1) * sizeof(obj->keys[0]));
            return jtake(obj, i);
        }
    }
    return NULL;
}

/* Equal as JSON values: object members in any order, arrays in order. */
static bool jequal(const struct jv *a, const struct jv *b)
{
    if (a->t != b->t) {
        return false;
    }
    switch (a->t) {
    case J_NULL:
        return true;
    case J_BOOL:
        return a->b == b->b;
    case J_NUM:
        return a->num == b->num;
    case J_STR:
        return a->len == b->len && memcmp(a->s, b->s, a->len) == 0;
    case J_ARR:
        if (a->n != b->n) {
            return false;
        }
        for (size_t i = 0; i < a->n; i++) {
            if (!jequal(a->items[i], b->items[i])) {
                return false;
            }
        }
        return true;
    case J_OBJ:
        if (a->n != b->n) {
            return false;
        }
        for (size_t i = 0; i < a->n; i++) {
            const struct jv *other = jget(b, a->keys[i]);
            if (!other || !jequal(a->items[i], other)) {
                return false;
            }
        }
        return true;
    }
    return false;
}

static const char *jstr(const struct jv *v)
{
    return v && v->t == J_STR ? v->s : NULL;
}

static int64_t jnum(const struct jv *v)
{
    return v && v->t == J_NUM ? v->num : -1;
}

static ssize_t find_incident(const struct jv *arr, const char *id)
{
    for (size_t i = 0; i < arr->n; i++) {
        if (strcmp(jstr(jget(arr->items[i], "id")), id) == 0) {
            return (ssize_t)i;
        }
    }
    return -1;
}

/* A client: what a browser keeps of one match. */
struct client {
    struct jv *match; /* NULL until its first snapshot */
};

/* Applies one server message to @c, as a client following
 * ws-protocol.md would. */
static void client_apply(struct client *c, const char *text)
{
    struct jv *msg = jparse(text);
    const char *type = jstr(jget(msg, "type"));
    PROP_CHECK(type != NULL);
    if (strcmp(type, "snapshot") == 0) {
        jfree(c->match);
        c->match = jtake_member(msg, "match");
        PROP_CHECK(c->match && c->match->t == J_OBJ);
        jfree(msg);
        return;
    }
    PROP_CHECK(strcmp(type, "delta") == 0);
    PROP_CHECK(c->match != NULL);
    PROP_CHECK(strcmp(jstr(jget(msg, "id")), jstr(jget(c->match, "id"))) == 0);
    int64_t version = jnum(jget(msg, "version"));
    PROP_CHECK(version == jnum(jget(c->match, "version")) + 1);
    jset(c->match, "version", jtake_member(msg, "version"));
    struct jv *changes = jget(msg, "changes");
    PROP_CHECK(changes && changes->t == J_OBJ);
    static const char *const parts[] = {"fixture", "status", "clock",
                                        "score",   "feed",   "gap"};
    for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
        struct jv *v = jtake_member(changes, parts[i]);
        if (v) {
            jset(c->match, parts[i], v);
        }
    }
    PROP_CHECK(changes->n == 0); /* nothing else may change */
    struct jv *inc = jget(msg, "incidents");
    if (inc) {
        struct jv *list = jget(c->match, "incidents");
        struct jv *ups = jget(inc, "upsert");
        struct jv *dels = jget(inc, "delete");
        PROP_CHECK(ups && dels && ups->n + dels->n > 0);
        while (ups->n > 0) {
            struct jv *x = jtake(ups, 0);
            const char *id = jstr(jget(x, "id"));
            PROP_CHECK(id != NULL);
            for (size_t d = 0; d < dels->n; d++) {
                PROP_CHECK(strcmp(jstr(dels->items[d]), id) != 0);
            }
            ssize_t at = find_incident(list, id);
            if (at >= 0) {
                jfree(list->items[at]);
                list->items[at] = x;
            } else {
                jpush(list, NULL, x);
            }
        }
        for (size_t d = 0; d < dels->n; d++) {
            ssize_t at = find_incident(list, jstr(dels->items[d]));
            PROP_CHECK(at >= 0); /* deletes name only known incidents */
            jfree(jtake(list, (size_t)at));
        }
    }
    jfree(msg);
}

static void client_check(const struct client *c, const struct jv *snapshot,
                         const char *text)
{
    if (!jequal(c->match, jget(snapshot, "match"))) {
        PROP_FAIL("client state differs from the snapshot %s", text);
    }
}

/* ---- the store's view ------------------------------------------------------
 */

/* The incident rows a store writes from update->upserted and ->deleted. */
struct row {
    char *id;
    char *text; /* the incident's JSON and version */
    bool deleted;
};

struct rows {
    struct row r[64];
    int n;
};

static char *incident_text(const struct match_incident *in)
{
    char buf[1024];
    snprintf(buf, sizeof(buf), "%s|%s|%s|%s|%d|%d|%d|%d|%" PRIu64, in->id,
             in->type ? in->type : "~", in->player ? in->player : "~",
             in->assist ? in->assist : "~", in->minute, in->stoppage, in->team,
             in->confirmed, in->version);
    char *t = strdup(buf);
    assert_non_null(t);
    return t;
}

static struct row *row_find(struct rows *rs, const char *id)
{
    for (int k = 0; k < rs->n; k++) {
        if (strcmp(rs->r[k].id, id) == 0) {
            return &rs->r[k];
        }
    }
    return NULL;
}

static void rows_apply(struct rows *rs, const struct update *up)
{
    for (uint32_t k = 0; k < up->n_upserted; k++) {
        const struct match_incident *in = up->upserted[k];
        PROP_CHECK(in->version == up->image->version);
        struct row *x = row_find(rs, in->id);
        if (!x) {
            PROP_CHECK(rs->n < 64);
            x = &rs->r[rs->n++];
            x->id = strdup(in->id);
            x->text = NULL;
        }
        free(x->text);
        x->text = incident_text(in);
        x->deleted = false;
    }
    for (uint32_t k = 0; k < up->n_deleted; k++) {
        struct row *x = row_find(rs, up->deleted[k]);
        PROP_CHECK(x && !x->deleted);
        x->deleted = true;
    }
}

/* The live rows are the image's incidents, attribute for attribute. */
static void rows_check(struct rows *rs, const struct match_image *img)
{
    int live = 0;
    for (int k = 0; k < rs->n; k++) {
        live += !rs->r[k].deleted;
    }
    PROP_CHECK(live == (int)img->n_incidents);
    for (uint32_t k = 0; k < img->n_incidents; k++) {
        struct row *x = row_find(rs, img->incidents[k].id);
        PROP_CHECK(x && !x->deleted);
        char *t = incident_text(&img->incidents[k]);
        if (strcmp(t, x->text) != 0) {
            PROP_FAIL("store row %s, image %s", x->text, t);
        }
        free(t);
    }
}

static void rows_free(struct rows *rs)
{
    for (int k = 0; k < rs->n; k++) {
        free(rs->r[k].id);
        free(rs->r[k].text);
    }
    rs->n = 0;
}

/* ---- the property ----------------------------------------------------------
 */

static char *snapshot_text(const struct match_image *img)
{
    struct actor_buf b;
    actor_buf_init(&b);
    match_image_snapshot_json(img, &b);
    assert_int_equal(b.err, 0);
    return actor_buf_take(&b, NULL);
}

/* Runs one step against the model, with an allocation failure first on
 * some steps. Returns the result and sets *@out. */
static int model_step(struct model__match *m, const struct event *ev, int feed,
                      const char *feed_source, int64_t now, struct update **out)
{
    for (;;) {
        const struct match_image *was = m->image;
        uint64_t version = was->version;
        bool inject = chance(10);
        model__fail_alloc = inject ? 1 + rnd(4) : 0;
        int rc = ev ? model__match_apply(m, ev, 0, now, out)
                    : model__match_feed(m, feed_source, (enum match_feed)feed,
                                        now, out);
        bool failed = inject && model__fail_alloc == 0;
        model__fail_alloc = 0;
        if (rc != -ENOMEM) {
            return rc;
        }
        PROP_CHECK(failed);
        PROP_CHECK(*out == NULL);
        PROP_CHECK(m->image == was && was->version == version);
    }
}

static void run_seed(uint64_t seed)
{
    cur_seed = seed;
    rng_state = seed;
    n_ids = seed % 4 == 0 ? MAX_IDS : 6;
    for (uint32_t k = 0; k < MAX_IDS; k++) {
        snprintf(ids[k], sizeof(ids[k]), "i%u", k);
    }
    struct model__match m;
    assert_int_equal(model__match_init(&m, MATCH), 0);
    struct ref r = {.clock = EVENT_ABSENT,
                    .running = EVENT_ABSENT,
                    .feed = MATCH_FEED_LIVE};
    struct gen g = {0};
    struct client from0 = {0};
    struct client late = {0};
    static struct rows rows;
    char *snap = snapshot_text(m.image);
    client_apply(&from0, snap);
    free(snap);
    int join = 1 + (int)rnd(STEPS - 1);

    for (cur_step = 1; cur_step <= STEPS; cur_step++) {
        struct update *up = NULL;
        int rc;
        int want;
        struct event_match em;
        struct event ev = {0};
        bool is_feed = chance(8);
        if (is_feed) {
            const char *source = PICK(sources);
            int feed = (int)rnd(3);
            want = ref_feed(&r, source, feed);
            rc = model_step(&m, NULL, feed, source, cur_step, &up);
        } else {
            gen_element(&g, &r, &em);
            ev = (struct event){.source = PICK(sources),
                                .sent = PICK(sents),
                                .sent_ms = EVENT_ABSENT,
                                .matches = &em,
                                .n_matches = 1};
            want = ref_apply(&r, &ev, &em);
            rc = model_step(&m, &ev, 0, NULL, cur_step, &up);
        }
        if (rc != want) {
            PROP_FAIL("returned %d, the reference says %d", rc, want);
        }
        check_same(&r, &m);
        if (!up) {
            PROP_CHECK(rc == MODEL__DUPLICATE || rc == MODEL__UNCHANGED);
        } else {
            PROP_CHECK(up->image == m.image);
            PROP_CHECK(up->kind ==
                       (!is_feed && em.full ? UPDATE_SNAPSHOT : UPDATE_DELTA));
            if (up->kind == UPDATE_DELTA) {
                struct jv *msg = jparse(up->json);
                PROP_CHECK(same_str(jstr(jget(msg, "sent")),
                                    is_feed ? NULL : ev.sent));
                jfree(msg);
            }
            rows_apply(&rows, up);
            client_apply(&from0, up->json);
            if (late.match) {
                client_apply(&late, up->json);
            }
        }
        rows_check(&rows, m.image);
        snap = snapshot_text(m.image);
        struct jv *now = jparse(snap);
        if (cur_step == join) {
            client_apply(&late, snap);
        }
        client_check(&from0, now, snap);
        if (late.match) {
            client_check(&late, now, snap);
        }
        jfree(now);
        free(snap);
        update_unref(up);
    }
    jfree(from0.match);
    jfree(late.match);
    rows_free(&rows);
    model__match_release(&m);
}

static void test_random_sequences(void **state)
{
    (void)state;
    const char *one = getenv("MODEL_PROP_SEED");
    if (one) {
        run_seed(strtoull(one, NULL, 0));
        return;
    }
    for (uint64_t i = 1; i <= RUNS; i++) {
        run_seed(i * 0x2545f4914f6cdd1dull);
    }
}

/* The merger itself must be able to tell states apart, or the property
 * above proves nothing. */
static void test_merger_detects_difference(void **state)
{
    (void)state;
    struct client c = {0};
    cur_seed = 0;
    cur_step = 0;
    client_apply(&c, "{\"type\":\"snapshot\",\"match\":{\"id\":\"m\","
                     "\"version\":1,\"incidents\":[{\"id\":\"a\"}],"
                     "\"feed\":\"live\",\"gap\":false}}");
    client_apply(&c, "{\"type\":\"delta\",\"id\":\"m\",\"version\":2,"
                     "\"changes\":{\"clock\":{\"time\":\"00:01\"}},"
                     "\"incidents\":{\"upsert\":[{\"id\":\"b\"}],"
                     "\"delete\":[\"a\"]}}");
    struct jv *same = jparse(
        "{\"match\":{\"gap\":false,\"id\":\"m\",\"version\":2,\"clock\":{"
        "\"time\":\"00:01\"},\"incidents\":[{\"id\":\"b\"}],\"feed\":"
        "\"live\"}}");
    struct jv *other = jparse(
        "{\"match\":{\"gap\":false,\"id\":\"m\",\"version\":2,\"clock\":{"
        "\"time\":\"00:01\"},\"incidents\":[{\"id\":\"a\"}],\"feed\":"
        "\"live\"}}");
    assert_true(jequal(c.match, jget(same, "match")));
    assert_false(jequal(c.match, jget(other, "match")));
    struct jv *esc = jparse("\"a\\n\\u0001\\u00d8\\ud83d\\ude00\"");
    assert_int_equal(esc->len, 9);
    assert_memory_equal(esc->s, "a\n\x01\xc3\x98\xf0\x9f\x98\x80", 9);
    jfree(esc);
    jfree(same);
    jfree(other);
    jfree(c.match);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_merger_detects_difference),
        cmocka_unit_test(test_random_sequences),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
