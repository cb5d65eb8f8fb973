/* tests/model_match_test.c - the match state machine, rule by rule: each
 * scenario applies elements directly (no actors) and checks every update's
 * exact JSON, the store's lists, the image and the final snapshot. */
#include <errno.h>
#include <pthread.h>
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
#include "model/model_impl.h"
#include "model/update.h"
#include "store/store.h"

/* The tables spell absent integers once in a macro and override them per
 * row; that is the point of the macros, not a mistake. */
#if defined(__clang__)
#pragma clang diagnostic ignored "-Winitializer-overrides"
#else
#pragma GCC diagnostic ignored "-Woverride-init"
#endif

#define MATCH  "sr:match:8812"
#define SOURCE "feed-eu-1"
#define SENT   "2026-11-21T15:04:05.123Z"

#define EM(...)                                                                \
    {                                                                          \
        .id = MATCH, .clock_seconds = EVENT_ABSENT,                            \
        .clock_running = EVENT_ABSENT, __VA_ARGS__                             \
    }
#define NR(n) .msgnr = (n), .has_msgnr = true
#define FULL  .full = true
#define INC(...)                                                               \
    {                                                                          \
        .minute = EVENT_ABSENT, .stoppage = EVENT_ABSENT,                      \
        .confirmed = EVENT_ABSENT, __VA_ARGS__                                 \
    }
#define INCS(...)                                                              \
    .incidents = (const struct event_incident[]){__VA_ARGS__},                 \
    .n_incidents = sizeof((const struct event_incident[]){__VA_ARGS__}) /      \
                   sizeof(struct event_incident)
#define P_FIX    EVENT_HAS_FIXTURE
#define P_STATUS EVENT_HAS_STATUS
#define P_CLOCK  EVENT_HAS_CLOCK
#define P_SCORE  EVENT_HAS_SCORE
#define HOME     EVENT_TEAM_HOME
#define AWAY     EVENT_TEAM_AWAY
#define UPDATE   .action = EVENT_ACTION_UPDATE
#define DELETE   .action = EVENT_ACTION_DELETE

#define D(v, ...)                                                              \
    "{\"type\":\"delta\",\"id\":\"" MATCH "\",\"version\":" #v __VA_ARGS__ "}"
#define S(v, ...)                                                              \
    "{\"type\":\"snapshot\",\"match\":{\"id\":\"" MATCH "\",\"version\":" #v   \
    "," __VA_ARGS__ "}}"
#define LIVE_NO_GAP "\"feed\":\"live\",\"gap\":false"

enum { FEED_NONE, FEED_LIVE, FEED_STALE, FEED_OFFLINE };

struct step {
    struct event_match em; /* applied unless .feed */
    const char *source;    /* the event's source; NULL: SOURCE */
    const char *sent;      /* the event's sent; NULL: absent */
    int feed;              /* FEED_*: a feed state change instead */
    const char *feed_source;
    int rc;                /* expected return */
    const char *json;      /* the update's JSON; NULL: no update */
    const char *store;     /* "+id -id" of upserted, deleted; NULL: skip */
    const char *incidents; /* "id@version ..." of the image; NULL: skip */
};

#define MAX_STEPS 10

struct scenario {
    const char *name;
    struct step steps[MAX_STEPS]; /* up to the first without em.id, feed */
    const char *snapshot;         /* the final snapshot */
    uint64_t gaps;
    uint64_t duplicates;
};

static const struct scenario scenarios[] = {
    {
        .name = "first msgnr is the baseline and makes version 1",
        .steps =
            {
                {.em = EM(NR(57), .parts = P_STATUS | P_CLOCK | P_SCORE,
                          .phase = "second_half", .clock_seconds = 66 * 60 + 12,
                          .clock_running = 1, .score_home = 2, .score_away = 1),
                 .sent = SENT,
                 .json = D(1, ",\"sent\":\"" SENT "\",\"changes\":{"
                              "\"status\":{\"phase\":\"second_half\"},"
                              "\"clock\":{\"time\":\"66:12\","
                              "\"running\":true},"
                              "\"score\":{\"home\":2,\"away\":1}}"),
                 .store = ""},
                {.em = EM(NR(58), .parts = P_CLOCK,
                          .clock_seconds = 66 * 60 + 13),
                 .json = D(2, ",\"changes\":{\"clock\":{\"time\":\"66:13\","
                              "\"running\":true}}")},
            },
        .snapshot = S(2, "\"status\":{\"phase\":\"second_half\"},"
                         "\"clock\":{\"time\":\"66:13\",\"running\":true},"
                         "\"score\":{\"home\":2,\"away\":1},"
                         "\"incidents\":[]," LIVE_NO_GAP),
    },
    {
        .name = "a msgnr not above the last applied one is a duplicate",
        .steps =
            {
                {.em = EM(NR(5), .parts = P_CLOCK, .clock_seconds = 60,
                          .clock_running = 1),
                 .json = D(1, ",\"changes\":{\"clock\":{\"time\":\"01:00\","
                              "\"running\":true}}")},
                {.em = EM(NR(5), .parts = P_CLOCK, .clock_seconds = 61),
                 .rc = MODEL__DUPLICATE},
                {.em = EM(NR(4), .parts = P_SCORE, .score_home = 1),
                 .rc = MODEL__DUPLICATE},
                {.em = EM(NR(6), .parts = P_CLOCK, .clock_seconds = 62),
                 .json = D(2, ",\"changes\":{\"clock\":{\"time\":\"01:02\","
                              "\"running\":true}}")},
                {.em = EM(NR(6), FULL), .rc = MODEL__DUPLICATE},
            },
        .snapshot = S(2, "\"clock\":{\"time\":\"01:02\",\"running\":true},"
                         "\"incidents\":[]," LIVE_NO_GAP),
        .duplicates = 3,
    },
    {
        .name = "a gap is applied and flagged until a full heals it",
        .steps =
            {
                {.em = EM(NR(1), .parts = P_CLOCK, .clock_seconds = 0,
                          .clock_running = 1),
                 .json = D(1, ",\"changes\":{\"clock\":{\"time\":\"00:00\","
                              "\"running\":true}}")},
                {.em = EM(NR(3), .parts = P_CLOCK, .clock_seconds = 10),
                 .rc = MODEL__GAP,
                 .json = D(2, ",\"changes\":{\"clock\":{\"time\":\"00:10\","
                              "\"running\":true},\"gap\":true}")},
                {.em = EM(NR(4), .parts = P_CLOCK, .clock_seconds = 11),
                 .json = D(3, ",\"changes\":{\"clock\":{\"time\":\"00:11\","
                              "\"running\":true}}")},
                {.em = EM(NR(7), .parts = P_SCORE, .score_home = 1),
                 .rc = MODEL__GAP,
                 .json = D(4, ",\"changes\":{\"score\":{\"home\":1,"
                              "\"away\":0}}")},
                {.em = EM(NR(8), FULL, .parts = P_CLOCK, .clock_seconds = 20,
                          .clock_running = 1),
                 .json = S(5, "\"clock\":{\"time\":\"00:20\","
                              "\"running\":true},"
                              "\"incidents\":[]," LIVE_NO_GAP)},
            },
        .snapshot = S(5, "\"clock\":{\"time\":\"00:20\",\"running\":true},"
                         "\"incidents\":[]," LIVE_NO_GAP),
        .gaps = 2,
    },
    {
        .name = "a full message that jumps heals its own gap",
        .steps =
            {
                {.em =
                     EM(NR(10), FULL, .parts = P_STATUS, .phase = "first_half"),
                 .json = S(1, "\"status\":{\"phase\":\"first_half\"},"
                              "\"incidents\":[]," LIVE_NO_GAP)},
                {.em = EM(NR(15), FULL, .parts = P_STATUS, .phase = "halftime"),
                 .rc = MODEL__GAP,
                 .json = S(2, "\"status\":{\"phase\":\"halftime\"},"
                              "\"incidents\":[]," LIVE_NO_GAP)},
            },
        .snapshot = S(2, "\"status\":{\"phase\":\"halftime\"},"
                         "\"incidents\":[]," LIVE_NO_GAP),
        .gaps = 1,
    },
    {
        .name = "elements without msgnr are never duplicates",
        .steps =
            {
                {.em = EM(.parts = P_SCORE),
                 .json = D(1, ",\"changes\":{\"score\":{\"home\":0,"
                              "\"away\":0}}")},
                {.em = EM(.parts = P_SCORE), .json = D(2, ",\"changes\":{}")},
                {.em = EM(NR(3), .parts = P_SCORE, .score_home = 1),
                 .json = D(3, ",\"changes\":{\"score\":{\"home\":1,"
                              "\"away\":0}}")},
                {.em = EM(.parts = P_SCORE, .score_home = 1, .score_away = 1),
                 .json = D(4, ",\"changes\":{\"score\":{\"home\":1,"
                              "\"away\":1}}")},
                {.em = EM(NR(3)), .rc = MODEL__DUPLICATE},
                {.em = EM(NR(4)), .json = D(5, ",\"changes\":{}")},
            },
        .snapshot = S(5, "\"score\":{\"home\":1,\"away\":1},"
                         "\"incidents\":[]," LIVE_NO_GAP),
        .duplicates = 1,
    },
    {
        .name = "full replaces everything: omitted parts and incidents go",
        .steps =
            {
                {.em =
                     EM(NR(1), .parts = P_FIX | P_STATUS | P_CLOCK | P_SCORE,
                        .fixture = {.sport = "soccer",
                                    .competition = "Premier League",
                                    .home = "Arsenal",
                                    .away = "Chelsea",
                                    .start = "2026-11-21T15:00:00Z"},
                        .phase = "first_half", .clock_seconds = 190,
                        .clock_running = 1,
                        INCS(INC(.id = "a", .type = "goal", .team = HOME,
                                 .minute = 3, .player = "B. Saka"),
                             INC(.id = "b", .type = "yellow_card", .team = AWAY,
                                 .minute = 5, .player = "C. Palmer"))),
                 .json = D(1, ",\"changes\":{\"fixture\":{\"sport\":"
                              "\"soccer\",\"competition\":\"Premier League\","
                              "\"home\":\"Arsenal\",\"away\":\"Chelsea\","
                              "\"start\":\"2026-11-21T15:00:00Z\"},"
                              "\"status\":{\"phase\":\"first_half\"},"
                              "\"clock\":{\"time\":\"03:10\","
                              "\"running\":true},"
                              "\"score\":{\"home\":0,\"away\":0}},"
                              "\"incidents\":{\"upsert\":["
                              "{\"id\":\"a\",\"type\":\"goal\",\"team\":"
                              "\"home\",\"minute\":3,\"player\":\"B. Saka\"},"
                              "{\"id\":\"b\",\"type\":\"yellow_card\","
                              "\"team\":\"away\",\"minute\":5,\"player\":"
                              "\"C. Palmer\"}],\"delete\":[]}"),
                 .store = "+a +b",
                 .incidents = "a@1 b@1"},
                {.em = EM(NR(2), FULL, .parts = P_STATUS, .phase = "halftime",
                          INCS(INC(.id = "c", .type = "var", .minute = 44))),
                 .json = S(2, "\"status\":{\"phase\":\"halftime\"},"
                              "\"incidents\":[{\"id\":\"c\",\"type\":\"var\","
                              "\"minute\":44}]," LIVE_NO_GAP),
                 .store = "+c -a -b",
                 .incidents = "c@2"},
            },
        .snapshot = S(2, "\"status\":{\"phase\":\"halftime\"},"
                         "\"incidents\":[{\"id\":\"c\",\"type\":\"var\","
                         "\"minute\":44}]," LIVE_NO_GAP),
    },
    {
        .name = "full lists incidents in its order; unchanged keep version",
        .steps =
            {
                {.em = EM(NR(1), INCS(INC(.id = "a", .minute = 3),
                                      INC(.id = "b", .minute = 5))),
                 .json = D(1, ",\"changes\":{},\"incidents\":{\"upsert\":["
                              "{\"id\":\"a\",\"minute\":3},"
                              "{\"id\":\"b\",\"minute\":5}],\"delete\":[]}"),
                 .store = "+a +b"},
                {.em =
                     EM(NR(2), FULL,
                        INCS(INC(.id = "b", .minute = 5),
                             INC(.id = "a", .minute = 3))),
                 .json = S(2, "\"incidents\":[{\"id\":\"b\",\"minute\":5},"
                              "{\"id\":\"a\",\"minute\":3}]," LIVE_NO_GAP),
                 .store = "",
                 .incidents = "b@1 a@1"},
                {.em = EM(NR(3), FULL, INCS(INC(.id = "b", .minute = 6))),
                 .json = S(3, "\"incidents\":[{\"id\":\"b\",\"minute\":6}]"
                              "," LIVE_NO_GAP),
                 .store = "+b -a",
                 .incidents = "b@3"},
                {.em = EM(NR(4), FULL),
                 .json = S(4, "\"incidents\":[]," LIVE_NO_GAP),
                 .store = "-b",
                 .incidents = ""},
            },
        .snapshot = S(4, "\"incidents\":[]," LIVE_NO_GAP),
    },
    {
        .name = "a delta fixture changes only the attributes it carries",
        .steps =
            {
                {.em = EM(.parts = P_FIX,
                          .fixture = {.sport = "soccer", .home = "Arsenal"}),
                 .json = D(1, ",\"changes\":{\"fixture\":{\"sport\":"
                              "\"soccer\",\"home\":\"Arsenal\"}}")},
                {.em = EM(.parts = P_FIX,
                          .fixture = {.start = "2026-11-21T15:30:00Z"}),
                 .json = D(2, ",\"changes\":{\"fixture\":{\"sport\":"
                              "\"soccer\",\"home\":\"Arsenal\",\"start\":"
                              "\"2026-11-21T15:30:00Z\"}}")},
                {.em = EM(.parts = P_FIX, .fixture = {.home = "Arsenal"}),
                 .json = D(3, ",\"changes\":{}")},
                {.em = EM(.parts = P_STATUS), .json = D(4, ",\"changes\":{}")},
            },
        .snapshot = S(4, "\"fixture\":{\"sport\":\"soccer\",\"home\":"
                         "\"Arsenal\",\"start\":\"2026-11-21T15:30:00Z\"},"
                         "\"incidents\":[]," LIVE_NO_GAP),
    },
    {
        .name = "insert replaces the whole incident",
        .steps =
            {
                {.em =
                     EM(INCS(INC(.id = "a", .type = "goal", .team = HOME,
                                 .minute = 66, .player = "B. Saka",
                                 .assist = "M. Odegaard", .confirmed = 0))),
                 .json = D(1, ",\"changes\":{},\"incidents\":{\"upsert\":["
                              "{\"id\":\"a\",\"type\":\"goal\",\"team\":"
                              "\"home\",\"minute\":66,\"player\":\"B. Saka\","
                              "\"assist\":\"M. Odegaard\",\"confirmed\":"
                              "false}],\"delete\":[]}"),
                 .store = "+a",
                 .incidents = "a@1"},
                {.em = EM(INCS(INC(.id = "a", .type = "goal",
                                   .team = HOME, .minute = 67))),
                 .json = D(2, ",\"changes\":{},\"incidents\":{\"upsert\":["
                              "{\"id\":\"a\",\"type\":\"goal\",\"team\":"
                              "\"home\",\"minute\":67}],\"delete\":[]}"),
                 .store = "+a",
                 .incidents = "a@2"},
            },
        .snapshot = S(2, "\"incidents\":[{\"id\":\"a\",\"type\":\"goal\","
                         "\"team\":\"home\",\"minute\":67}]," LIVE_NO_GAP),
    },
    {
        .name = "update changes only the attributes it carries",
        .steps =
            {
                {.em =
                     EM(INCS(INC(.id = "a", .type = "goal", .team = HOME,
                                 .minute = 66, .player = "B. Saka",
                                 .assist = "M. Odegaard", .confirmed = 0))),
                 .incidents = "a@1",
                 .json = D(1, ",\"changes\":{},\"incidents\":{\"upsert\":["
                              "{\"id\":\"a\",\"type\":\"goal\",\"team\":"
                              "\"home\",\"minute\":66,\"player\":\"B. Saka\","
                              "\"assist\":\"M. Odegaard\",\"confirmed\":"
                              "false}],\"delete\":[]}")},
                {.em = EM(INCS(INC(.id = "a", UPDATE, .confirmed = 1))),
                 .json = D(2, ",\"changes\":{},\"incidents\":{\"upsert\":["
                              "{\"id\":\"a\",\"type\":\"goal\",\"team\":"
                              "\"home\",\"minute\":66,\"player\":\"B. Saka\","
                              "\"assist\":\"M. Odegaard\",\"confirmed\":"
                              "true}],\"delete\":[]}"),
                 .store = "+a",
                 .incidents = "a@2"},
                {.em = EM(INCS(INC(.id = "a", UPDATE, .stoppage = 2))),
                 .json = D(3, ",\"changes\":{},\"incidents\":{\"upsert\":["
                              "{\"id\":\"a\",\"type\":\"goal\",\"team\":"
                              "\"home\",\"minute\":66,\"stoppage\":2,"
                              "\"player\":\"B. Saka\",\"assist\":"
                              "\"M. Odegaard\",\"confirmed\":true}],"
                              "\"delete\":[]}"),
                 .incidents = "a@3"},
                {.em = EM(INCS(INC(.id = "a", UPDATE, .confirmed = 1))),
                 .json = D(4, ",\"changes\":{}"),
                 .store = "",
                 .incidents = "a@3"},
            },
        .snapshot = S(4, "\"incidents\":[{\"id\":\"a\",\"type\":\"goal\","
                         "\"team\":\"home\",\"minute\":66,\"stoppage\":2,"
                         "\"player\":\"B. Saka\",\"assist\":\"M. Odegaard\","
                         "\"confirmed\":true}]," LIVE_NO_GAP),
    },
    {
        .name = "update of an unknown id adds it with what it carries",
        .steps =
            {
                {.em = EM(INCS(INC(.id = "x", UPDATE,
                                   .minute = 12, .team = AWAY))),
                 .json = D(1, ",\"changes\":{},\"incidents\":{\"upsert\":["
                              "{\"id\":\"x\",\"team\":\"away\","
                              "\"minute\":12}],\"delete\":[]}"),
                 .store = "+x",
                 .incidents = "x@1"},
            },
        .snapshot = S(1, "\"incidents\":[{\"id\":\"x\",\"team\":\"away\","
                         "\"minute\":12}]," LIVE_NO_GAP),
    },
    {
        .name = "delete removes; an unknown id is a no-op with a version",
        .steps =
            {
                {.em = EM(INCS(INC(.id = "a", .minute = 1),
                               INC(.id = "b", .minute = 2))),
                 .store = "+a +b",
                 .json = D(1, ",\"changes\":{},\"incidents\":{\"upsert\":["
                              "{\"id\":\"a\",\"minute\":1},{\"id\":\"b\","
                              "\"minute\":2}],\"delete\":[]}")},
                {.em = EM(INCS(INC(.id = "a", DELETE))),
                 .json = D(2, ",\"changes\":{},\"incidents\":{\"upsert\":[],"
                              "\"delete\":[\"a\"]}"),
                 .store = "-a",
                 .incidents = "b@1"},
                {.em = EM(INCS(INC(.id = "zz", DELETE))),
                 .json = D(3, ",\"changes\":{}"),
                 .store = "",
                 .incidents = "b@1"},
                {.em = EM(INCS(INC(.id = "a", DELETE))),
                 .json = D(4, ",\"changes\":{}"),
                 .store = ""},
            },
        .snapshot =
            S(4, "\"incidents\":[{\"id\":\"b\",\"minute\":2}]," LIVE_NO_GAP),
    },
    {
        .name = "delete then insert in one element keeps the place",
        .steps =
            {
                {.em = EM(INCS(INC(.id = "a", .minute = 1),
                               INC(.id = "b", .type = "var", .minute = 2),
                               INC(.id = "c", .minute = 3))),
                 .store = "+a +b +c",
                 .json = D(1, ",\"changes\":{},\"incidents\":{\"upsert\":["
                              "{\"id\":\"a\",\"minute\":1},{\"id\":\"b\","
                              "\"type\":\"var\",\"minute\":2},{\"id\":\"c\","
                              "\"minute\":3}],\"delete\":[]}")},
                {.em = EM(INCS(INC(.id = "a", DELETE),
                               INC(.id = "a", .minute = 10),
                               INC(.id = "d", .minute = 4),
                               INC(.id = "d", DELETE),
                               INC(.id = "e", .minute = 5))),
                 .json = D(2, ",\"changes\":{},\"incidents\":{\"upsert\":["
                              "{\"id\":\"a\",\"minute\":10},{\"id\":\"e\","
                              "\"minute\":5}],\"delete\":[]}"),
                 .store = "+a +e",
                 .incidents = "a@2 b@1 c@1 e@2"},
                {.em = EM(INCS(INC(.id = "b", DELETE),
                               INC(.id = "b", UPDATE, .minute = 20))),
                 .json = D(3, ",\"changes\":{},\"incidents\":{\"upsert\":["
                              "{\"id\":\"b\",\"minute\":20}],\"delete\":[]}"),
                 .store = "+b",
                 .incidents = "a@2 b@3 c@1 e@2"},
                {.em = EM(INCS(INC(.id = "c", DELETE),
                               INC(.id = "c", .minute = 3))),
                 .json = D(4, ",\"changes\":{}"),
                 .store = "",
                 .incidents = "a@2 b@3 c@1 e@2"},
            },
        .snapshot =
            S(4, "\"incidents\":[{\"id\":\"a\",\"minute\":10},"
                 "{\"id\":\"b\",\"minute\":20},{\"id\":\"c\","
                 "\"minute\":3},{\"id\":\"e\",\"minute\":5}]," LIVE_NO_GAP),
    },
    {
        .name = "an unknown phase is kept as given",
        .steps =
            {
                {.em = EM(.parts = P_STATUS, .phase = "suspended_weather"),
                 .json = D(1, ",\"changes\":{\"status\":{\"phase\":"
                              "\"suspended_weather\"}}")},
                {.em = EM(.parts = P_STATUS, .phase = "suspended_weather"),
                 .json = D(2, ",\"changes\":{}")},
                {.em = EM(.parts = P_STATUS, .phase = "second_half"),
                 .json = D(3, ",\"changes\":{\"status\":{\"phase\":"
                              "\"second_half\"}}")},
            },
        .snapshot = S(3, "\"status\":{\"phase\":\"second_half\"},"
                         "\"incidents\":[]," LIVE_NO_GAP),
    },
    {
        .name = "a correction is a new score or incident",
        .steps =
            {
                {.em = EM(.parts = P_SCORE, .score_home = 2, .score_away = 1,
                          INCS(INC(.id = "g", .type = "goal", .team = HOME,
                                   .minute = 30))),
                 .json = D(1, ",\"changes\":{\"score\":{\"home\":2,"
                              "\"away\":1}},\"incidents\":{\"upsert\":["
                              "{\"id\":\"g\",\"type\":\"goal\",\"team\":"
                              "\"home\",\"minute\":30}],\"delete\":[]}")},
                {.em = EM(.parts = P_SCORE, .score_home = 1, .score_away = 1,
                          INCS(INC(.id = "g", UPDATE, .type = "own_goal",
                                   .team = AWAY))),
                 .json = D(2, ",\"changes\":{\"score\":{\"home\":1,"
                              "\"away\":1}},\"incidents\":{\"upsert\":["
                              "{\"id\":\"g\",\"type\":\"own_goal\",\"team\":"
                              "\"away\",\"minute\":30}],\"delete\":[]}"),
                 .store = "+g",
                 .incidents = "g@2"},
                {.em = EM(.parts = P_SCORE, .score_home = 1, .score_away = 1),
                 .json = D(3, ",\"changes\":{}")},
            },
        .snapshot = S(3, "\"score\":{\"home\":1,\"away\":1},\"incidents\":["
                         "{\"id\":\"g\",\"type\":\"own_goal\",\"team\":"
                         "\"away\",\"minute\":30}]," LIVE_NO_GAP),
    },
    {
        .name = "clock is MM:SS past 99 minutes; absent attributes kept",
        .steps =
            {
                {.em = EM(.parts = P_CLOCK, .clock_seconds = 105 * 60 + 30,
                          .clock_running = 1),
                 .json = D(1, ",\"changes\":{\"clock\":{\"time\":\"105:30\","
                              "\"running\":true}}")},
                {.em = EM(.parts = P_CLOCK, .clock_running = 0),
                 .json = D(2, ",\"changes\":{\"clock\":{\"time\":\"105:30\","
                              "\"running\":false}}")},
                {.em = EM(.parts = P_CLOCK, .clock_seconds = 5 * 60 + 7),
                 .json = D(3, ",\"changes\":{\"clock\":{\"time\":\"05:07\","
                              "\"running\":false}}")},
                {.em = EM(.parts = P_CLOCK), .json = D(4, ",\"changes\":{}")},
                {.em = EM(.parts = P_CLOCK, .clock_seconds = 10000 * 60 + 59),
                 .json = D(5, ",\"changes\":{\"clock\":{\"time\":"
                              "\"10000:59\",\"running\":false}}")},
                {.em = EM(FULL, .parts = P_CLOCK, .clock_running = 1),
                 .json = S(6, "\"clock\":{\"running\":true},\"incidents\":[]"
                              "," LIVE_NO_GAP)},
                {.em = EM(.parts = P_CLOCK, .clock_seconds = 0),
                 .json = D(7, ",\"changes\":{\"clock\":{\"time\":\"00:00\","
                              "\"running\":true}}")},
            },
        .snapshot = S(7, "\"clock\":{\"time\":\"00:00\",\"running\":true},"
                         "\"incidents\":[]," LIVE_NO_GAP),
    },
    {
        .name = "the feed state of the match's source is a delta",
        .steps =
            {
                {.feed = FEED_STALE,
                 .feed_source = SOURCE,
                 .rc = MODEL__UNCHANGED},
                {.em = EM(.parts = P_CLOCK, .clock_seconds = 60,
                          .clock_running = 1),
                 .json = D(1, ",\"changes\":{\"clock\":{\"time\":\"01:00\","
                              "\"running\":true}}")},
                {.feed = FEED_STALE,
                 .feed_source = SOURCE,
                 .json = D(2, ",\"changes\":{\"feed\":\"stale\"}"),
                 .store = ""},
                {.feed = FEED_STALE,
                 .feed_source = SOURCE,
                 .rc = MODEL__UNCHANGED},
                {.feed = FEED_OFFLINE,
                 .feed_source = "feed-eu-2",
                 .rc = MODEL__UNCHANGED},
                {.feed = FEED_OFFLINE,
                 .feed_source = SOURCE,
                 .json = D(3, ",\"changes\":{\"feed\":\"offline\"}")},
                {.em = EM(.parts = P_CLOCK, .clock_seconds = 61),
                 .json = D(4, ",\"changes\":{\"clock\":{\"time\":\"01:01\","
                              "\"running\":true},\"feed\":\"live\"}")},
                {.em = EM(.parts = P_CLOCK, .clock_seconds = 61),
                 .source = "feed-eu-2",
                 .json = D(5, ",\"changes\":{}")},
                {.feed = FEED_STALE,
                 .feed_source = SOURCE,
                 .rc = MODEL__UNCHANGED},
                {.feed = FEED_STALE,
                 .feed_source = "feed-eu-2",
                 .json = D(6, ",\"changes\":{\"feed\":\"stale\"}")},
            },
        .snapshot = S(6, "\"clock\":{\"time\":\"01:01\",\"running\":true},"
                         "\"incidents\":[],\"feed\":\"stale\","
                         "\"gap\":false"),
    },
    {
        .name = "an element naming nothing known still makes a version",
        .steps =
            {
                {.em = EM(NR(1)),
                 .sent = SENT,
                 .json = D(1, ",\"sent\":\"" SENT "\",\"changes\":{}"),
                 .store = ""},
                {.em = EM(NR(2), FULL),
                 .json = S(2, "\"incidents\":[]," LIVE_NO_GAP)},
            },
        .snapshot = S(2, "\"incidents\":[]," LIVE_NO_GAP),
    },
    {
        .name = "strings are escaped as JSON",
        .steps =
            {
                {.em = EM(.parts = P_FIX | P_STATUS,
                          .fixture = {.home = "Quote \"Q\" \\ back"},
                          .phase = "tab\there",
                          INCS(INC(.id = "i\"1", .player = "a\nb\x01\xc3\x98"
                                                           "degaard"))),
                 .json = D(1, ",\"changes\":{\"fixture\":{\"home\":"
                              "\"Quote \\\"Q\\\" \\\\ back\"},\"status\":{"
                              "\"phase\":\"tab\\there\"}},\"incidents\":{"
                              "\"upsert\":[{\"id\":\"i\\\"1\",\"player\":"
                              "\"a\\nb\\u0001\xc3\x98"
                              "degaard\"}],\"delete\":[]}")},
            },
        .snapshot = S(1, "\"fixture\":{\"home\":\"Quote \\\"Q\\\" \\\\ back\"},"
                         "\"status\":{\"phase\":\"tab\\there\"},"
                         "\"incidents\":[{\"id\":\"i\\\"1\",\"player\":"
                         "\"a\\nb\\u0001\xc3\x98"
                         "degaard\"}]," LIVE_NO_GAP),
    },
    {
        .name = "an element of another match is refused",
        .steps =
            {
                {.em = {.id = "sr:match:1",
                        .clock_seconds = EVENT_ABSENT,
                        .clock_running = EVENT_ABSENT},
                 .rc = -EINVAL},
            },
        .snapshot = S(0, "\"incidents\":[]," LIVE_NO_GAP),
    },
};

#define N_SCENARIOS (sizeof(scenarios) / sizeof(scenarios[0]))

static bool step_is_end(const struct step *st)
{
    return !st->em.id && st->feed == FEED_NONE;
}

static char *snapshot_of(const struct match_image *img)
{
    struct actor_buf b;
    actor_buf_init(&b);
    match_image_snapshot_json(img, &b);
    assert_int_equal(b.err, 0);
    return actor_buf_take(&b, NULL);
}

static void check_store(const struct update *up, const char *want)
{
    char got[512] = "";
    size_t len = 0;
    for (uint32_t k = 0; k < up->n_upserted; k++) {
        len += (size_t)snprintf(got + len, sizeof(got) - len, "%s+%s",
                                len ? " " : "", up->upserted[k]->id);
    }
    for (uint32_t k = 0; k < up->n_deleted; k++) {
        len += (size_t)snprintf(got + len, sizeof(got) - len, "%s-%s",
                                len ? " " : "", up->deleted[k]);
    }
    assert_string_equal(got, want);
    /* Upserted incidents are the image's own. */
    for (uint32_t k = 0; k < up->n_upserted; k++) {
        const struct match_incident *in = up->upserted[k];
        assert_true(in >= up->image->incidents &&
                    in < up->image->incidents + up->image->n_incidents);
        assert_int_equal(in->version, up->image->version);
    }
}

static void check_incidents(const struct match_image *img, const char *want)
{
    char got[512] = "";
    size_t len = 0;
    for (uint32_t k = 0; k < img->n_incidents; k++) {
        len += (size_t)snprintf(got + len, sizeof(got) - len, "%s%s@%llu",
                                len ? " " : "", img->incidents[k].id,
                                (unsigned long long)img->incidents[k].version);
    }
    assert_string_equal(got, want);
}

/* Runs step @st on @m; returns its result and sets *@out. */
static int run_step(struct model__match *m, const struct step *st,
                    int64_t now_ms, struct update **out)
{
    if (st->feed != FEED_NONE) {
        return model__match_feed(m, st->feed_source,
                                 (enum match_feed)(st->feed - FEED_LIVE),
                                 now_ms, out);
    }
    struct event ev = {
        .source = st->source ? st->source : SOURCE,
        .seq = 1,
        .sent = st->sent,
        .sent_ms = st->sent ? 1795273445123 : EVENT_ABSENT,
        .matches = &st->em,
        .n_matches = 1,
    };
    return model__match_apply(m, &ev, 0, now_ms, out);
}

static void check_update(const struct model__match *m, const struct step *st,
                         const struct update *up, uint64_t version,
                         int64_t now_ms)
{
    assert_non_null(st->json);
    assert_string_equal(up->json, st->json);
    assert_int_equal(up->json_len, strlen(st->json));
    /* The sender may write its frame header before the text. */
    memset((char *)up->json - UPDATE_HEADROOM, 0, UPDATE_HEADROOM);
    assert_ptr_equal(up->image, m->image);
    assert_int_equal(atomic_load(&up->refs), 1);
    assert_int_equal(up->image->version, version);
    assert_int_equal(up->image->updated_ms, now_ms);
    bool full = st->feed == FEED_NONE && st->em.full;
    assert_int_equal(up->kind, full ? UPDATE_SNAPSHOT : UPDATE_DELTA);
    if (full) {
        char *snap = snapshot_of(up->image);
        assert_string_equal(snap, up->json);
        free(snap);
    }
    if (st->feed == FEED_NONE) {
        assert_string_equal(up->image->source,
                            st->source ? st->source : SOURCE);
        assert_int_equal(up->sent_ms, st->sent ? 1795273445123 : EVENT_ABSENT);
        if (st->em.has_msgnr) {
            assert_true(up->image->has_msgnr);
            assert_int_equal(up->image->msgnr, st->em.msgnr);
        }
    } else {
        assert_int_equal(up->image->feed, st->feed - FEED_LIVE);
        assert_int_equal(up->sent_ms, EVENT_ABSENT);
    }
    if (st->store) {
        check_store(up, st->store);
    }
}

/*
 * Runs @sc. With @fail_at > 0, the fail_at-th allocation fails: the step
 * must then return -ENOMEM and leave the match as it was, and is run again.
 * Returns whether a failure was injected (so the caller knows when to stop
 * counting up).
 */
static bool run_scenario_with(const struct scenario *sc, uint32_t fail_at)
{
    struct model__match m;
    model__fail_alloc = fail_at;
    int rc = model__match_init(&m, MATCH);
    bool injected = rc == -ENOMEM;
    if (injected) {
        assert_int_equal(model__fail_alloc, 0);
        assert_null(m.image);
        model__match_release(&m);
        rc = model__match_init(&m, MATCH);
    }
    assert_int_equal(rc, 0);
    uint64_t version = 0;
    for (int i = 0; i < MAX_STEPS && !step_is_end(&sc->steps[i]); i++) {
        const struct step *st = &sc->steps[i];
        int64_t now_ms = 1000 * (i + 1);
        struct update *up = (struct update *)&up; /* must be reset */
        char *before = snapshot_of(m.image);
        const struct match_image *was = m.image;
        rc = run_step(&m, st, now_ms, &up);
        if (rc == -ENOMEM && fail_at > 0 && model__fail_alloc == 0 &&
            !injected) {
            injected = true;
            assert_null(up);
            assert_ptr_equal(m.image, was);
            char *after = snapshot_of(m.image);
            assert_string_equal(after, before);
            free(after);
            rc = run_step(&m, st, now_ms, &up);
        }
        free(before);
        assert_int_equal(rc, st->rc);
        if (rc < 0 || rc == MODEL__DUPLICATE || rc == MODEL__UNCHANGED) {
            assert_null(up);
            assert_null(st->json);
            assert_ptr_equal(m.image, was);
            continue;
        }
        version++;
        check_update(&m, st, up, version, now_ms);
        if (st->incidents) {
            check_incidents(m.image, st->incidents);
        }
        update_unref(up);
    }
    model__fail_alloc = 0;
    char *snap = snapshot_of(m.image);
    assert_string_equal(snap, sc->snapshot);
    free(snap);
    assert_int_equal(m.gaps, sc->gaps);
    assert_int_equal(m.duplicates, sc->duplicates);
    model__match_release(&m);
    model__match_release(&m); /* a released match may be released again */
    return injected;
}

static void test_scenario(void **state)
{
    run_scenario_with(*state, 0);
}

/* Every allocation of every scenario fails once, in turn: no leak, no
 * crash, the match unchanged, and the same end state after a retry. */
static void test_alloc_failure(void **state)
{
    (void)state;
    for (size_t s = 0; s < N_SCENARIOS; s++) {
        uint32_t n = 1;
        while (run_scenario_with(&scenarios[s], n)) {
            n++;
        }
        assert_true(n > 1);
    }
}

static void test_out_of_range(void **state)
{
    (void)state;
    struct model__match m;
    assert_int_equal(model__match_init(&m, MATCH), 0);
    struct event_match em = EM(NR(1));
    struct event ev = {.source = SOURCE, .matches = &em, .n_matches = 1};
    struct update *up;
    assert_int_equal(model__match_apply(&m, &ev, 1, 0, &up), -EINVAL);
    assert_null(up);
    assert_int_equal(m.image->version, 0);
    model__match_release(&m);
}

static void test_init_checks_id(void **state)
{
    (void)state;
    struct model__match m;
    char id[EVENT_ID_MAX + 2];
    memset(id, 'x', sizeof(id));
    id[EVENT_ID_MAX + 1] = '\0';
    assert_int_equal(model__match_init(&m, id), -EINVAL);
    assert_int_equal(model__match_init(&m, ""), -EINVAL);
    id[EVENT_ID_MAX] = '\0';
    assert_int_equal(model__match_init(&m, id), 0);
    assert_string_equal(m.image->id, id);
    assert_int_equal(m.image->clock_seconds, EVENT_ABSENT);
    assert_int_equal(m.image->clock_running, EVENT_ABSENT);
    assert_int_equal(m.image->feed, MATCH_FEED_LIVE);
    assert_null(m.image->source);
    model__match_release(&m);
}

static struct update *apply_one(struct model__match *m,
                                const struct event_match *em)
{
    struct event ev = {.source = SOURCE, .matches = em, .n_matches = 1};
    struct update *up = NULL;
    int rc = model__match_apply(m, &ev, 0, 0, &up);
    assert_true(rc == 0 || rc == MODEL__GAP);
    return up;
}

/* A match restored from its stored row shows the clock it showed before:
 * a time without "running", or "running" without a time, as given (the
 * row keeps each NULL when never given). A snapshot that differed at the
 * same version would be dropped by notify as stale. */
static void test_restore_keeps_the_clock_as_given(void **state)
{
    (void)state;
    static const struct {
        int32_t seconds;
        int8_t running;
    } clocks[] = {
        {190, EVENT_ABSENT}, {EVENT_ABSENT, 1}, {EVENT_ABSENT, 0}, {5400, 0}};
    for (size_t k = 0; k < sizeof(clocks) / sizeof(clocks[0]); k++) {
        struct model__match m;
        assert_int_equal(model__match_init(&m, MATCH), 0);
        struct event_match em =
            EM(.parts = P_CLOCK, .clock_seconds = clocks[k].seconds,
               .clock_running = clocks[k].running);
        update_unref(apply_one(&m, &em));
        const struct match_image *img = m.image;
        /* the row as store_batch.c writes it and store_load.c reads it */
        const struct store_match row = {.id = MATCH,
                                        .version = img->version,
                                        .source = SOURCE,
                                        .clock_seconds = img->clock_seconds,
                                        .clock_running = img->clock_running,
                                        .feed = img->feed,
                                        .updated_ms = img->updated_ms};
        struct model__match r;
        assert_int_equal(model__match_restore(&r, &row), 0);
        char *before = snapshot_of(img), *after = snapshot_of(r.image);
        assert_string_equal(after, before);
        free(before);
        free(after);
        model__match_release(&m);
        model__match_release(&r);
    }
}

/* A new image shares what did not change; an image handed out never
 * changes afterwards. */
static void test_images_share_and_stay(void **state)
{
    (void)state;
    struct model__match m;
    assert_int_equal(model__match_init(&m, MATCH), 0);
    struct event_match e1 =
        EM(NR(1), .parts = P_FIX | P_CLOCK, .fixture = {.home = "Arsenal"},
           .clock_seconds = 60, .clock_running = 1,
           INCS(INC(.id = "a", .minute = 1, .player = "B. Saka")));
    struct update *u1 = apply_one(&m, &e1);
    char *snap1 = snapshot_of(u1->image);

    struct event_match e2 = EM(NR(2), .parts = P_CLOCK, .clock_seconds = 61);
    struct update *u2 = apply_one(&m, &e2);
    assert_ptr_not_equal(u2->image, u1->image);
    assert_ptr_equal(u2->image->home, u1->image->home);
    assert_ptr_equal(u2->image->id, u1->image->id);
    assert_ptr_equal(u2->image->incidents, u1->image->incidents);

    struct event_match e3 =
        EM(NR(3), INCS(INC(.id = "a", UPDATE, .confirmed = 1)));
    struct update *u3 = apply_one(&m, &e3);
    assert_ptr_equal(u3->image->home, u1->image->home);
    assert_ptr_not_equal(u3->image->incidents, u1->image->incidents);
    assert_int_equal(u3->image->incidents[0].confirmed, 1);

    struct event_match e4 =
        EM(NR(4), .parts = P_FIX, .fixture = {.away = "Chelsea"});
    struct update *u4 = apply_one(&m, &e4);
    assert_ptr_not_equal(u4->image->home, u1->image->home);
    assert_ptr_equal(u4->image->incidents, u3->image->incidents);

    /* The match moved on; what was handed out did not. */
    update_unref(u2);
    update_unref(u3);
    char *again = snapshot_of(u1->image);
    assert_string_equal(again, snap1);
    assert_int_equal(u1->image->incidents[0].confirmed, EVENT_ABSENT);
    free(again);
    free(snap1);

    /* An image outlives the match and the update it came with. */
    struct match_image *kept = match_image_ref(u4->image);
    update_unref(u4);
    update_unref(u1);
    model__match_release(&m);
    assert_string_equal(kept->away, "Chelsea");
    assert_string_equal(kept->incidents[0].player, "B. Saka");
    match_image_unref(kept);
    update_unref(NULL);
    match_image_unref(NULL);
}

/* One event, several matches: element i goes to its own match. */
static void test_element_index(void **state)
{
    (void)state;
    struct event_match ems[2] = {
        EM(NR(1), .parts = P_SCORE, .score_home = 1),
        {.id = "sr:match:2",
         NR(9),
         .parts = P_SCORE,
         .score_away = 3,
         .clock_seconds = EVENT_ABSENT,
         .clock_running = EVENT_ABSENT},
    };
    struct event ev = {.source = SOURCE, .matches = ems, .n_matches = 2};
    struct model__match a, b;
    assert_int_equal(model__match_init(&a, MATCH), 0);
    assert_int_equal(model__match_init(&b, "sr:match:2"), 0);
    struct update *ua, *ub;
    assert_int_equal(model__match_apply(&a, &ev, 1, 0, &ua), -EINVAL);
    assert_int_equal(model__match_apply(&a, &ev, 0, 0, &ua), 0);
    assert_int_equal(model__match_apply(&b, &ev, 1, 0, &ub), 0);
    assert_int_equal(ua->image->score_home, 1);
    assert_int_equal(ub->image->score_away, 3);
    assert_int_equal(ub->image->msgnr, 9);
    update_unref(ua);
    update_unref(ub);
    model__match_release(&a);
    model__match_release(&b);
}

/* A large full message: many incidents, long strings, a JSON text bigger
 * than the scratch buffer keeps. */
static void test_large_full(void **state)
{
    (void)state;
    enum { N = 300 };
    static struct event_incident incs[N];
    static char ids_buf[N][16];
    char name[512];
    memset(name, 'n', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0';
    for (int k = 0; k < N; k++) {
        snprintf(ids_buf[k], sizeof(ids_buf[k]), "inc-%d", k);
        incs[k] = (struct event_incident)INC(.id = ids_buf[k], .player = name,
                                             .minute = k % 120);
    }
    struct model__match m;
    assert_int_equal(model__match_init(&m, MATCH), 0);
    struct event_match em =
        EM(NR(1), FULL, .incidents = incs, .n_incidents = N);
    struct update *up = apply_one(&m, &em);
    assert_true(up->json_len > 64 * 1024);
    assert_int_equal(up->n_upserted, N);
    assert_int_equal(m.image->n_incidents, N);
    char *snap = snapshot_of(m.image);
    assert_string_equal(snap, up->json);
    free(snap);
    update_unref(up);
    struct event_match tick = EM(NR(2), .parts = P_CLOCK, .clock_seconds = 1);
    up = apply_one(&m, &tick);
    assert_string_equal(up->json, D(2, ",\"changes\":{\"clock\":{\"time\":"
                                       "\"00:01\"}}"));
    assert_ptr_equal(up->image->incidents, m.image->incidents);
    update_unref(up);
    model__match_release(&m);
}

struct thread_run {
    uint32_t fail_at; /* in */
    int rc;           /* out: init's error, or apply's result */
    bool injected;
    char json[256];
};

/* Runs on a thread of its own, so the per-thread scratch is new: no cmocka
 * assertion here, the caller checks what it reports. */
static void *apply_on_new_thread(void *arg)
{
    struct thread_run *tr = arg;
    struct model__match m;
    tr->rc = model__match_init(&m, MATCH);
    if (tr->rc != 0) {
        return NULL;
    }
    struct event_match em = EM(NR(1), .parts = P_SCORE, .score_home = 1);
    struct event ev = {.source = SOURCE, .matches = &em, .n_matches = 1};
    struct update *up = NULL;
    model__fail_alloc = tr->fail_at;
    tr->rc = model__match_apply(&m, &ev, 0, 0, &up);
    tr->injected = tr->fail_at > 0 && model__fail_alloc == 0;
    model__fail_alloc = 0;
    if (up) {
        snprintf(tr->json, sizeof(tr->json), "%s", up->json);
    }
    if (tr->rc == -ENOMEM && m.image->version != 0) {
        tr->rc = -EPROTO; /* the failed apply changed the match */
    }
    update_unref(up);
    model__match_release(&m);
    return NULL; /* the thread's exit frees its scratch */
}

static void test_alloc_failure_new_thread(void **state)
{
    (void)state;
    uint32_t failures = 0;
    for (uint32_t n = 1;; n++) {
        struct thread_run tr = {.fail_at = n};
        pthread_t t;
        assert_int_equal(pthread_create(&t, NULL, apply_on_new_thread, &tr), 0);
        assert_int_equal(pthread_join(t, NULL), 0);
        if (!tr.injected) {
            assert_int_equal(tr.rc, 0);
            assert_string_equal(tr.json,
                                D(1, ",\"changes\":{\"score\":{\"home\":1,"
                                     "\"away\":0}}"));
            break;
        }
        assert_int_equal(tr.rc, -ENOMEM);
        failures++;
    }
    /* the image, its texts, the thread's scratch and the update */
    assert_int_equal(failures, 4);
}

int main(void)
{
    struct CMUnitTest tests[N_SCENARIOS + 8];
    size_t n = 0;
    for (size_t s = 0; s < N_SCENARIOS; s++) {
        tests[n++] = (struct CMUnitTest){
            .name = scenarios[s].name,
            .test_func = test_scenario,
            .initial_state = (void *)&scenarios[s],
        };
    }
    const struct CMUnitTest more[] = {
        cmocka_unit_test(test_alloc_failure),
        cmocka_unit_test(test_out_of_range),
        cmocka_unit_test(test_init_checks_id),
        cmocka_unit_test(test_restore_keeps_the_clock_as_given),
        cmocka_unit_test(test_images_share_and_stay),
        cmocka_unit_test(test_element_index),
        cmocka_unit_test(test_large_full),
        cmocka_unit_test(test_alloc_failure_new_thread),
    };
    for (size_t k = 0; k < sizeof(more) / sizeof(more[0]); k++) {
        tests[n++] = more[k];
    }
    return _cmocka_run_group_tests("model_match", tests, n, NULL, NULL);
}
