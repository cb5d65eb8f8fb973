/* tools/feedsim/feedsim_gen.c - one football match, step by step, fixed by
 * the seed and the match's index. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tools/feedsim/feedsim.h"

/*
 * DESIGN
 * feedsim_gen_new() draws the whole match up front: fixture, squads, the
 * simulated times of kickoff, half time and full time, and a plan of
 * "beats" (an incident, a goal's confirmation or disallowance, a full
 * snapshot, a phase change) sorted by simulated time. Players are assigned
 * by walking the plan in time order with each team's squad state, so a
 * player sent off never scores and a substitute comes on only once. Clock
 * ticks are not planned: they come every tick_s game seconds between the
 * beats. A step then only reads the plan: it cannot fail and the same
 * (seed, index) always yields the same steps, whoever asks and when.
 *
 * What the match is at any simulated time (phase, clock) follows from the
 * time alone; the score and the incidents follow from the steps emitted so
 * far, and a full snapshot lists exactly those.
 *
 * Conventions: minutes count as football does (0:00-0:59 is the 1st, 47:10
 * in the first half is 45+3); an own goal's team is the team it counts
 * for, its player from the other side; a substitution's player goes off
 * and its assist comes on.
 */

#define HALF_S        2700   /* 45 minutes of game clock */
#define BREAK_MS      900000 /* the half-time break */
#define SQUAD         18     /* 11 starters, 7 on the bench */
#define STARTERS      11
#define MAX_SUBS      5
#define FOLLOW_MIN_MS 20000 /* a goal's confirmation, at the earliest */

enum beat_kind {
    BEAT_FIXTURE,
    BEAT_KICKOFF,
    BEAT_HALFTIME,
    BEAT_SECOND_HALF,
    BEAT_FULLTIME,
    BEAT_FULL,
    BEAT_INCIDENT, /* inc: the incident, inserted whole */
    BEAT_CONFIRM,  /* inc: the goal, updated to confirmed="1" */
    BEAT_CORRECT,  /* inc: the goal, updated to another scorer (arg) */
    BEAT_DISALLOW  /* inc: the goal, deleted; arg: the var incident */
};

/* What the plan is sorted by: simulated time, then creation order. Both
 * kinds of plan entries start with it, so one comparator sorts either. */
struct when {
    int64_t at_ms;  /* simulated, since the run's start */
    uint32_t order; /* creation order: ties keep it */
};

static int cmp_when(const void *a, const void *b)
{
    const struct when *x = a;
    const struct when *y = b;
    if (x->at_ms != y->at_ms) {
        return x->at_ms < y->at_ms ? -1 : 1;
    }
    return x->order < y->order ? -1 : x->order > y->order;
}

struct beat {
    struct when when; /* first: see cmp_when */
    uint8_t kind;     /* enum beat_kind */
    uint16_t inc;
    uint16_t arg;
};

enum inc_state { INC_PLANNED, INC_LIVE, INC_DELETED };

struct plan_incident {
    char id[24];        /* given when first emitted */
    const char *type;   /* static */
    const char *player; /* into the squads, or NULL */
    const char *assist;
    const char *player2; /* BEAT_CORRECT's scorer */
    int32_t minute;
    int32_t stoppage; /* EVENT_ABSENT when in regular time */
    int8_t team;      /* enum event_team */
    int8_t confirmed; /* current; EVENT_ABSENT for non-goals */
    uint8_t state;    /* enum inc_state */
    bool scores;      /* a goal of some kind: moves the score */
};

struct squad {
    bool on[SQUAD];     /* on the pitch now (while planning) */
    bool gone[SQUAD];   /* left the pitch for good */
    bool booked[SQUAD]; /* one yellow */
    uint8_t subs;
};

struct feedsim_gen {
    char id[96];
    uint32_t index;
    char start[24]; /* fixture start, RFC 3339 */
    const char *competition;
    const char *home;
    const char *away;
    char names[2][SQUAD][48]; /* [team][player] "B. Saka" */

    int64_t kickoff_ms; /* simulated times of the phases */
    int64_t halftime_ms;
    int64_t second_ms;
    int64_t fulltime_ms;
    int32_t h1_end; /* game clock at half time, s */
    int32_t h2_end; /* game clock at full time, s */
    uint32_t tick_s;

    struct beat *beats; /* sorted by cmp_when */
    size_t n_beats;
    size_t next_beat;
    int32_t tick_clock; /* game clock of the next tick */
    uint8_t tick_half;  /* its half: 1 or 2; 0: no tick left */

    struct plan_incident *incs;
    size_t n_incs;
    uint16_t *seen; /* incidents in first-emitted order */
    size_t n_seen;

    uint64_t msgnr;    /* of the last element produced */
    uint32_t score[2]; /* [home, away] */
    uint32_t next_id;  /* incident ids given so far */

    struct event_match el;      /* the step handed out */
    struct event_incident *out; /* its incidents: n_incs + 1 */
    struct event_match decoy;
    struct event_incident decoy_inc;
    char decoy_id[40];
};

uint64_t feedsim_rng_seed(uint64_t seed, uint64_t purpose, uint64_t stream)
{
    uint64_t s = seed ^ (purpose * 0xd1b54a32d192ed03ull);
    feedsim_rng_next(&s);
    s ^= stream * 0x8cb92ba72f3d8dd7ull;
    return feedsim_rng_next(&s);
}

/* ---- time --------------------------------------------------------------- */

/* The game clock at @at_ms, and whether it runs there. */
static int32_t clock_at(const struct feedsim_gen *g, int64_t at_ms,
                        bool *running)
{
    *running = false;
    if (at_ms < g->kickoff_ms) {
        return 0;
    }
    if (at_ms < g->halftime_ms) {
        *running = true;
        return (int32_t)((at_ms - g->kickoff_ms) / 1000);
    }
    if (at_ms < g->second_ms) {
        return g->h1_end;
    }
    if (at_ms < g->fulltime_ms) {
        *running = true;
        return HALF_S + (int32_t)((at_ms - g->second_ms) / 1000);
    }
    return g->h2_end;
}

static const char *phase_at(const struct feedsim_gen *g, int64_t at_ms)
{
    if (at_ms < g->kickoff_ms) {
        return "not_started";
    }
    if (at_ms < g->halftime_ms) {
        return "first_half";
    }
    if (at_ms < g->second_ms) {
        return "halftime";
    }
    if (at_ms < g->fulltime_ms) {
        return "second_half";
    }
    return "ended";
}

/* The simulated time of game clock @clock in half @half (1 or 2). */
static int64_t ms_of(const struct feedsim_gen *g, int half, int32_t clock)
{
    if (half == 1) {
        return g->kickoff_ms + (int64_t)clock * 1000;
    }
    return g->second_ms + (int64_t)(clock - HALF_S) * 1000;
}

/* Football's minutes: the 1st minute is 0:00-0:59; stoppage time is
 * 45+N or 90+N. */
static void minute_at(const struct feedsim_gen *g, int64_t at_ms,
                      int32_t *minute, int32_t *stoppage)
{
    bool running;
    int32_t clock = clock_at(g, at_ms, &running);
    int32_t regular = at_ms < g->second_ms ? HALF_S : 2 * HALF_S;
    if (clock >= regular) {
        *minute = regular / 60;
        *stoppage = (clock - regular) / 60 + 1;
    } else {
        *minute = clock / 60 + 1;
        *stoppage = EVENT_ABSENT;
    }
}

/* The simulated time of the next clock tick, INT64_MAX when none is left. */
static int64_t tick_at(const struct feedsim_gen *g)
{
    return g->tick_half ? ms_of(g, g->tick_half, g->tick_clock) : INT64_MAX;
}

/* Ticks run while the clock does: up to half time, then from 45:00 up to
 * full time. */
static void advance_tick(struct feedsim_gen *g)
{
    g->tick_clock += (int32_t)g->tick_s;
    if (g->tick_half == 1 && g->tick_clock >= g->h1_end) {
        g->tick_half = 2;
        g->tick_clock = HALF_S + (int32_t)g->tick_s;
    }
    if (g->tick_half == 2 && g->tick_clock >= g->h2_end) {
        g->tick_half = 0;
    }
}

/* ---- planning ----------------------------------------------------------- */

struct planner {
    struct feedsim_gen *g;
    uint64_t rng;
    size_t cap_beats;
    size_t cap_incs;
    uint32_t order;
    struct squad squad[2];
};

static int add_beat(struct planner *p, int64_t at_ms, enum beat_kind kind,
                    size_t inc, size_t arg)
{
    struct feedsim_gen *g = p->g;
    if (FEEDSIM_MORE(g->beats, g->n_beats, p->cap_beats) != 0) {
        return -ENOMEM;
    }
    g->beats[g->n_beats++] = (struct beat){
        .when = {at_ms, p->order++},
        .kind = (uint8_t)kind,
        .inc = (uint16_t)inc,
        .arg = (uint16_t)arg,
    };
    return 0;
}

/* Returns the index of a new planned incident, or -ENOMEM. */
static int add_incident(struct planner *p, const char *type, int team,
                        int64_t at_ms)
{
    struct feedsim_gen *g = p->g;
    if (FEEDSIM_MORE(g->incs, g->n_incs, p->cap_incs) != 0) {
        return -ENOMEM;
    }
    struct plan_incident *inc = &g->incs[g->n_incs];
    *inc = (struct plan_incident){
        .type = type,
        .team = (int8_t)team,
        .confirmed = EVENT_ABSENT,
    };
    minute_at(g, at_ms, &inc->minute, &inc->stoppage);
    return (int)g->n_incs++;
}

/* A random player of @team on the pitch other than @not (-1: any), or -1
 * when there is none. */
static int pick_on(struct planner *p, int team, int not, bool booked_only)
{
    int cand[SQUAD];
    int n = 0;
    for (int i = 0; i < SQUAD; i++) {
        if (p->squad[team].on[i] &&
            i != not &&(!booked_only || p->squad[team].booked[i])) {
            cand[n++] = i;
        }
    }
    return n ? cand[feedsim_rng_below(&p->rng, (uint32_t)n)] : -1;
}

static int pick_bench(struct planner *p, int team)
{
    int cand[SQUAD];
    int n = 0;
    for (int i = STARTERS; i < SQUAD; i++) {
        if (!p->squad[team].on[i] && !p->squad[team].gone[i]) {
            cand[n++] = i;
        }
    }
    return n ? cand[feedsim_rng_below(&p->rng, (uint32_t)n)] : -1;
}

/* Raw draws before players are known: what happens when. */
enum draw_kind {
    DRAW_GOAL,
    DRAW_YELLOW,
    DRAW_SECOND_YELLOW,
    DRAW_RED,
    DRAW_MISSED_PENALTY,
    DRAW_VAR,
    DRAW_SUB
};

struct draw {
    struct when when; /* first: see cmp_when */
    uint8_t kind;
    uint8_t team; /* 0 home, 1 away */
};

/* A random time of play, at least 10 s before its half ends. */
static int64_t play_time(struct planner *p)
{
    struct feedsim_gen *g = p->g;
    uint32_t len1 = (uint32_t)g->h1_end - 10;
    uint32_t len2 = (uint32_t)(g->h2_end - HALF_S) - 10;
    uint32_t r = feedsim_rng_below(&p->rng, len1 + len2);
    if (r < len1) {
        return ms_of(g, 1, (int32_t)r);
    }
    return ms_of(g, 2, HALF_S + (int32_t)(r - len1));
}

static int64_t follow_time(const struct feedsim_gen *g, int64_t at_ms,
                           int64_t delay_ms)
{
    int64_t t = at_ms + delay_ms;
    return t < g->fulltime_ms ? t : g->fulltime_ms - 1;
}

static const char *name_of(const struct feedsim_gen *g, int team, int player)
{
    return player < 0 ? NULL : g->names[team][player];
}

static int plan_goal(struct planner *p, const struct draw *d)
{
    struct feedsim_gen *g = p->g;
    int team = d->team;
    uint32_t r = feedsim_rng_below(&p->rng, 100);
    const char *type = r < 82 ? "goal" : r < 94 ? "penalty_goal" : "own_goal";
    int inc = add_incident(p, type, team + EVENT_TEAM_HOME, d->when.at_ms);
    if (inc < 0) {
        return inc;
    }
    struct plan_incident *pi = &g->incs[inc];
    pi->scores = true;
    int scorer;
    if (strcmp(type, "own_goal") == 0) {
        scorer = pick_on(p, 1 - team, -1, false);
        pi->player = name_of(g, 1 - team, scorer);
    } else {
        scorer = pick_on(p, team, -1, false);
        pi->player = name_of(g, team, scorer);
        if (strcmp(type, "goal") == 0 && feedsim_rng_below(&p->rng, 10) < 6) {
            pi->assist = name_of(g, team, pick_on(p, team, scorer, false));
        }
    }
    int rc = add_beat(p, d->when.at_ms, BEAT_INCIDENT, (size_t)inc, 0);
    uint32_t fate = feedsim_rng_below(&p->rng, 100);
    if (rc != 0) {
        return rc;
    }
    if (fate < 12) {
        /* Disallowed after a VAR review: a var incident, the goal deleted,
         * the score corrected. */
        int64_t at = follow_time(g, d->when.at_ms,
                                 60000 + feedsim_rng_below(&p->rng, 90000));
        int var = add_incident(p, "var", team + EVENT_TEAM_HOME, at);
        if (var < 0) {
            return var;
        }
        g->incs[inc].confirmed = 0;
        return add_beat(p, at, BEAT_DISALLOW, (size_t)inc, (size_t)var);
    }
    if (fate >= 92) {
        pi->confirmed = 1; /* confirmed at once */
        return 0;
    }
    pi->confirmed = 0;
    rc =
        add_beat(p,
                 follow_time(g, d->when.at_ms,
                             FOLLOW_MIN_MS + feedsim_rng_below(&p->rng, 70000)),
                 BEAT_CONFIRM, (size_t)inc, 0);
    if (rc == 0 && fate < 18 && strcmp(type, "own_goal") != 0) {
        /* The scorer is corrected later: another teammate. */
        int other = pick_on(p, team, scorer, false);
        if (other >= 0) {
            g->incs[inc].player2 = name_of(g, team, other);
            rc =
                add_beat(p,
                         follow_time(g, d->when.at_ms,
                                     30000 + feedsim_rng_below(&p->rng, 90000)),
                         BEAT_CORRECT, (size_t)inc, 0);
        }
    }
    return rc;
}

/* Plans incident @type of @team's @player (which may be -1: none) at the
 * draw's time. */
static int plan_player(struct planner *p, const struct draw *d,
                       const char *type, int player)
{
    int inc = add_incident(p, type, d->team + EVENT_TEAM_HOME, d->when.at_ms);
    if (inc < 0) {
        return inc;
    }
    p->g->incs[inc].player = name_of(p->g, d->team, player);
    return add_beat(p, d->when.at_ms, BEAT_INCIDENT, (size_t)inc, 0);
}

/* A yellow card, or a second one: the player is sent off. */
static int plan_booking(struct planner *p, const struct draw *d, bool second)
{
    struct squad *sq = &p->squad[d->team];
    int player = pick_on(p, d->team, -1, second);
    if (player < 0 && second) {
        second = false; /* nobody on a yellow: a first one after all */
        player = pick_on(p, d->team, -1, false);
    }
    if (player < 0 || (!second && sq->booked[player])) {
        return 0;
    }
    if (second) {
        sq->on[player] = false;
        sq->gone[player] = true;
    }
    sq->booked[player] = true;
    return plan_player(p, d, second ? "second_yellow" : "yellow_card", player);
}

static int plan_draw(struct planner *p, const struct draw *d)
{
    struct squad *sq = &p->squad[d->team];
    int player;
    switch (d->kind) {
    case DRAW_GOAL:
        return plan_goal(p, d);
    case DRAW_YELLOW:
        return plan_booking(p, d, false);
    case DRAW_SECOND_YELLOW:
        return plan_booking(p, d, true);
    case DRAW_RED:
        player = pick_on(p, d->team, -1, false);
        if (player < 0) {
            return 0;
        }
        sq->on[player] = false;
        sq->gone[player] = true;
        return plan_player(p, d, "red_card", player);
    case DRAW_MISSED_PENALTY:
        return plan_player(p, d, "missed_penalty",
                           pick_on(p, d->team, -1, false));
    case DRAW_VAR:
        return plan_player(p, d, "var", -1);
    case DRAW_SUB: {
        int off = pick_on(p, d->team, -1, false);
        int on = pick_bench(p, d->team);
        if (off < 0 || on < 0 || sq->subs >= MAX_SUBS) {
            return 0;
        }
        sq->subs++;
        sq->on[off] = false;
        sq->gone[off] = true;
        sq->on[on] = true;
        int rc = plan_player(p, d, "substitution", off);
        if (rc == 0) {
            /* The player coming on travels in `assist`. */
            p->g->incs[p->g->n_incs - 1].assist = name_of(p->g, d->team, on);
        }
        return rc;
    }
    }
    return -EINVAL;
}

static int push_draw(struct draw **draws, size_t *n, size_t *cap, struct draw d)
{
    if (FEEDSIM_MORE(*draws, *n, *cap) != 0) {
        return -ENOMEM;
    }
    d.when.order = (uint32_t)*n;
    (*draws)[(*n)++] = d;
    return 0;
}

/* Goals a team scores: 0 25%, 1 33%, 2 24%, 3 11%, 4 5%, 5 2%. */
static unsigned draw_goals(uint64_t *rng)
{
    static const uint8_t cumulative[] = {25, 58, 82, 93, 98, 100};
    uint32_t r = feedsim_rng_below(rng, 100);
    unsigned n = 0;
    while (r >= cumulative[n]) {
        n++;
    }
    return n;
}

static int plan_incidents(struct planner *p)
{
    struct feedsim_gen *g = p->g;
    struct draw *draws = NULL;
    size_t n = 0;
    size_t cap = 0;
    int rc = 0;
    uint64_t *rng = &p->rng;

    for (uint8_t team = 0; team < 2 && rc == 0; team++) {
        for (unsigned i = draw_goals(rng); i > 0 && rc == 0; i--) {
            rc = push_draw(&draws, &n, &cap,
                           (struct draw){{play_time(p), 0}, DRAW_GOAL, team});
        }
        /* Substitutions: some at the restart, most from the 55th minute. */
        for (unsigned i = 3 + feedsim_rng_below(rng, 3); i > 0 && rc == 0;
             i--) {
            int64_t at =
                feedsim_rng_below(rng, 5) == 0
                    ? ms_of(g, 2, HALF_S) + feedsim_rng_below(rng, 30) * 1000
                    : ms_of(g, 2, 3300 + (int32_t)feedsim_rng_below(rng, 1900));
            rc = push_draw(&draws, &n, &cap,
                           (struct draw){{at, 0}, DRAW_SUB, team});
        }
    }
    /* One draw per statement: the order of evaluation inside an
     * initializer list is unspecified, and the stream's order is the
     * match. */
    struct {
        uint8_t kind;
        unsigned percent; /* the chance of one, or 0: count */
        unsigned count;
    } others[] = {
        {DRAW_YELLOW, 0, 0}, {DRAW_SECOND_YELLOW, 8, 0},
        {DRAW_RED, 4, 0},    {DRAW_MISSED_PENALTY, 12, 0},
        {DRAW_VAR, 20, 0},
    };
    others[0].count = feedsim_rng_below(rng, 6); /* 0-5 yellow cards */
    for (size_t k = 1; k < sizeof(others) / sizeof(others[0]); k++) {
        others[k].count = feedsim_rng_below(rng, 100) < others[k].percent;
    }
    for (size_t k = 0; k < sizeof(others) / sizeof(others[0]); k++) {
        for (unsigned i = others[k].count; i > 0 && rc == 0; i--) {
            uint8_t team = (uint8_t)feedsim_rng_below(rng, 2);
            rc = push_draw(
                &draws, &n, &cap,
                (struct draw){{play_time(p), 0}, others[k].kind, team});
        }
    }
    if (rc == 0) {
        qsort(draws, n, sizeof(*draws), cmp_when);
    }
    for (size_t i = 0; i < n && rc == 0; i++) {
        rc = plan_draw(p, &draws[i]);
    }
    free(draws);
    return rc;
}

/* Draws the fixture: matchday index / 22 pairs every club once, within
 * its competition, in an order fixed by the seed. */
static void plan_fixture(struct feedsim_gen *g, uint64_t seed)
{
    uint16_t perm[64];
    size_t n = feedsim_n_clubs < 64 ? feedsim_n_clubs : 64;
    uint32_t per_day = (uint32_t)(n / 2);
    uint32_t day = g->index / per_day;
    uint32_t slot = g->index % per_day;
    uint64_t rng = feedsim_rng_seed(seed, 1, day);

    /* Shuffle within each competition (the table groups them), then pair
     * neighbours: a pair never spans two competitions when each has an
     * even number of clubs. */
    for (size_t i = 0; i < n; i++) {
        perm[i] = (uint16_t)i;
    }
    size_t start = 0;
    while (start < n) {
        size_t end = start;
        while (end < n && strcmp(feedsim_clubs[end].competition,
                                 feedsim_clubs[start].competition) == 0) {
            end++;
        }
        for (size_t i = end - 1; i > start; i--) {
            size_t j =
                start + feedsim_rng_below(&rng, (uint32_t)(i - start + 1));
            uint16_t t = perm[i];
            perm[i] = perm[j];
            perm[j] = t;
        }
        start = end;
    }
    const struct feedsim_club *home = &feedsim_clubs[perm[2 * slot]];
    const struct feedsim_club *away = &feedsim_clubs[perm[2 * slot + 1]];
    g->home = home->name;
    g->away = away->name;
    g->competition = home->competition;
}

static void plan_squads(struct feedsim_gen *g, uint64_t *rng)
{
    uint16_t perm[128];
    size_t n = feedsim_n_surnames < 128 ? feedsim_n_surnames : 128;
    for (size_t i = 0; i < n; i++) {
        perm[i] = (uint16_t)i;
    }
    /* A partial Fisher-Yates: distinct surnames for both squads. */
    for (size_t i = 0; i < 2 * SQUAD && i < n; i++) {
        size_t j = i + feedsim_rng_below(rng, (uint32_t)(n - i));
        uint16_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    for (int team = 0; team < 2; team++) {
        for (int i = 0; i < SQUAD; i++) {
            char initial = (char)('A' + feedsim_rng_below(rng, 26));
            size_t k = (size_t)(team * SQUAD + i) % n;
            snprintf(g->names[team][i], sizeof(g->names[team][i]), "%c. %s",
                     initial, feedsim_surnames[perm[k]]);
        }
    }
}

static void format_start(char out[24], int64_t epoch)
{
    time_t t = (time_t)epoch;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 24, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

struct feedsim_gen *feedsim_gen_new(const struct feedsim_gen_config *cfg,
                                    uint32_t index)
{
    struct feedsim_gen *g = calloc(1, sizeof(*g));
    if (!g) {
        return NULL;
    }
    struct planner p = {
        .g = g,
        .rng = feedsim_rng_seed(cfg->seed, 2, index),
    };
    g->index = index;
    g->tick_s = cfg->tick_s ? cfg->tick_s : 1;
    snprintf(g->id, sizeof(g->id), "%s%u", cfg->id_prefix ? cfg->id_prefix : "",
             index);
    format_start(g->start, cfg->start_epoch);
    plan_fixture(g, cfg->seed);
    plan_squads(g, &p.rng);
    for (int team = 0; team < 2; team++) {
        for (int i = 0; i < STARTERS; i++) {
            p.squad[team].on[i] = true;
        }
    }

    /* Teams walk out between one and four minutes after the fixture. */
    g->kickoff_ms = 60000 + (int64_t)feedsim_rng_below(&p.rng, 180) * 1000;
    g->h1_end = HALF_S + 60 + (int32_t)feedsim_rng_below(&p.rng, 240);
    g->h2_end = 2 * HALF_S + 120 + (int32_t)feedsim_rng_below(&p.rng, 360);
    g->halftime_ms = ms_of(g, 1, g->h1_end);
    g->second_ms = g->halftime_ms + BREAK_MS;
    g->fulltime_ms = ms_of(g, 2, g->h2_end);

    int rc = add_beat(&p, 0, BEAT_FIXTURE, 0, 0);
    rc = rc ? rc : add_beat(&p, g->kickoff_ms, BEAT_KICKOFF, 0, 0);
    rc = rc ? rc : add_beat(&p, g->halftime_ms, BEAT_HALFTIME, 0, 0);
    rc = rc ? rc : add_beat(&p, g->second_ms, BEAT_SECOND_HALF, 0, 0);
    rc = rc ? rc : plan_incidents(&p);
    for (unsigned i = 1 + feedsim_rng_below(&p.rng, 3); i > 0 && rc == 0; i--) {
        int64_t span = g->fulltime_ms - g->kickoff_ms;
        int64_t at =
            g->kickoff_ms + (int64_t)(feedsim_rng_unit(&p.rng) * (double)span);
        rc = add_beat(&p, at, BEAT_FULL, 0, 0);
    }
    /* Full time comes last, after everything planned at the same ms. */
    rc = rc ? rc : add_beat(&p, g->fulltime_ms, BEAT_FULLTIME, 0, 0);
    if (rc != 0) {
        goto out_free;
    }
    qsort(g->beats, g->n_beats, sizeof(*g->beats), cmp_when);

    g->seen = calloc(g->n_incs + 1, sizeof(*g->seen));
    g->out = calloc(g->n_incs + 2, sizeof(*g->out));
    if (!g->seen || !g->out) {
        goto out_free;
    }
    g->tick_clock = 0;
    g->tick_half = 1;
    advance_tick(g);
    return g;

out_free:
    feedsim_gen_free(g);
    return NULL;
}

void feedsim_gen_free(struct feedsim_gen *g)
{
    if (!g) {
        return;
    }
    free(g->beats);
    free(g->incs);
    free(g->seen);
    free(g->out);
    free(g);
}

const char *feedsim_gen_id(const struct feedsim_gen *g)
{
    return g->id;
}

bool feedsim_gen_is_done(const struct feedsim_gen *g)
{
    return g->next_beat == g->n_beats;
}

int64_t feedsim_gen_next_at(const struct feedsim_gen *g)
{
    if (feedsim_gen_is_done(g)) {
        return INT64_MAX;
    }
    int64_t beat = g->beats[g->next_beat].when.at_ms;
    int64_t tick = tick_at(g);
    return tick < beat ? tick : beat;
}

/* ---- steps -------------------------------------------------------------- */

static void put_clock(struct feedsim_gen *g, int64_t at_ms)
{
    bool running;
    g->el.clock_seconds = clock_at(g, at_ms, &running);
    g->el.clock_running = running;
    g->el.parts |= EVENT_HAS_CLOCK;
}

static void put_score(struct feedsim_gen *g)
{
    g->el.score_home = g->score[0];
    g->el.score_away = g->score[1];
    g->el.parts |= EVENT_HAS_SCORE;
}

static struct event_incident *next_out(struct feedsim_gen *g)
{
    struct event_incident *o = &g->out[g->el.n_incidents++];
    *o = (struct event_incident){
        .minute = EVENT_ABSENT,
        .stoppage = EVENT_ABSENT,
        .confirmed = EVENT_ABSENT,
        .team = EVENT_TEAM_NONE,
    };
    return o;
}

static void put_whole(struct feedsim_gen *g, const struct plan_incident *pi)
{
    struct event_incident *o = next_out(g);
    o->id = pi->id;
    o->type = pi->type;
    o->team = pi->team;
    o->minute = pi->minute;
    o->stoppage = pi->stoppage;
    o->player = pi->player;
    o->assist = pi->assist;
    o->confirmed = pi->confirmed;
    o->action = EVENT_ACTION_INSERT;
}

/* Emits incident @i for the first time. */
static void emit_new(struct feedsim_gen *g, size_t i)
{
    struct plan_incident *pi = &g->incs[i];
    snprintf(pi->id, sizeof(pi->id), "%u-%u", g->index, ++g->next_id);
    pi->state = INC_LIVE;
    g->seen[g->n_seen++] = (uint16_t)i;
    if (pi->scores) {
        g->score[pi->team == EVENT_TEAM_AWAY]++;
    }
    put_whole(g, pi);
}

static void put_full(struct feedsim_gen *g, int64_t at_ms)
{
    g->el.full = true;
    g->el.parts |= EVENT_HAS_FIXTURE | EVENT_HAS_STATUS;
    g->el.fixture = (struct event_fixture){
        .sport = "soccer",
        .competition = g->competition,
        .home = g->home,
        .away = g->away,
        .start = g->start,
    };
    g->el.phase = phase_at(g, at_ms);
    put_clock(g, at_ms);
    put_score(g);
    for (size_t k = 0; k < g->n_seen; k++) {
        const struct plan_incident *pi = &g->incs[g->seen[k]];
        if (pi->state == INC_LIVE) {
            put_whole(g, pi);
        }
    }
}

static void step_beat(struct feedsim_gen *g, const struct beat *b)
{
    struct plan_incident *pi = &g->incs[b->inc];
    struct event_incident *o;
    switch (b->kind) {
    case BEAT_FIXTURE:
    case BEAT_FULL:
        put_full(g, b->when.at_ms);
        break;
    case BEAT_KICKOFF:
    case BEAT_HALFTIME:
    case BEAT_SECOND_HALF:
    case BEAT_FULLTIME:
        g->el.parts |= EVENT_HAS_STATUS;
        g->el.phase = phase_at(g, b->when.at_ms);
        put_clock(g, b->when.at_ms);
        break;
    case BEAT_INCIDENT:
        put_clock(g, b->when.at_ms);
        emit_new(g, b->inc);
        if (pi->scores) {
            put_score(g);
        }
        break;
    case BEAT_CONFIRM:
        pi->confirmed = 1;
        o = next_out(g);
        o->id = pi->id;
        o->action = EVENT_ACTION_UPDATE;
        o->confirmed = 1;
        break;
    case BEAT_CORRECT:
        pi->player = pi->player2;
        o = next_out(g);
        o->id = pi->id;
        o->action = EVENT_ACTION_UPDATE;
        o->player = pi->player;
        break;
    case BEAT_DISALLOW:
        emit_new(g, b->arg);
        pi->state = INC_DELETED;
        g->score[pi->team == EVENT_TEAM_AWAY]--;
        o = next_out(g);
        o->id = pi->id;
        o->action = EVENT_ACTION_DELETE;
        put_score(g);
        break;
    }
}

const struct event_match *feedsim_gen_step(struct feedsim_gen *g)
{
    if (feedsim_gen_is_done(g)) {
        return NULL;
    }
    g->el = (struct event_match){
        .id = g->id,
        .msgnr = ++g->msgnr,
        .has_msgnr = true,
        .phase = NULL,
        .clock_seconds = EVENT_ABSENT,
        .clock_running = EVENT_ABSENT,
        .incidents = g->out,
    };
    const struct beat *b = &g->beats[g->next_beat];
    int64_t tick = tick_at(g);
    if (tick < b->when.at_ms) {
        put_clock(g, tick);
        advance_tick(g);
    } else {
        g->next_beat++;
        step_beat(g, b);
    }
    return &g->el;
}

const struct event_match *feedsim_gen_decoy(struct feedsim_gen *g)
{
    snprintf(g->decoy_id, sizeof(g->decoy_id), "%u-bad", g->index);
    g->decoy_inc = (struct event_incident){
        .id = g->decoy_id,
        .type = "goal",
        .team = EVENT_TEAM_HOME,
        .minute = 1,
        .stoppage = EVENT_ABSENT,
        .player = "Z. Decoy",
        .confirmed = 1,
        .action = EVENT_ACTION_INSERT,
    };
    g->decoy = (struct event_match){
        .id = g->id,
        .msgnr = g->msgnr + 1,
        .has_msgnr = true,
        .parts = EVENT_HAS_SCORE,
        .clock_seconds = EVENT_ABSENT,
        .clock_running = EVENT_ABSENT,
        .score_home = 99,
        .score_away = 99,
        .incidents = &g->decoy_inc,
        .n_incidents = 1,
    };
    return &g->decoy;
}
