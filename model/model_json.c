/* model/model_json.c - the WebSocket JSON of match images and deltas
 * (ws-protocol.md). */
#include <stdint.h>
#include <string.h>

#include "actor/actor.h"
#include "model/model_impl.h"

/*
 * DESIGN
 * This runs once per applied change, so it writes with memcpy and a small
 * integer formatter, never printf. Members come in one fixed order (the
 * spec's examples), absent attributes are omitted, and a part of the match
 * that is wholly absent (no fixture, status, clock or score yet) is omitted
 * too; a client treats a missing part as empty.
 */

#define PUT_LIT(b, s) actor_buf_add((b), (s), sizeof(s) - 1)

static void put_u64(struct actor_buf *b, uint64_t v)
{
    char tmp[20];
    char *p = tmp + sizeof(tmp);
    do {
        *--p = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    actor_buf_add(b, p, (size_t)(tmp + sizeof(tmp) - p));
}

static void put_i64(struct actor_buf *b, int64_t v)
{
    if (v < 0) {
        actor_buf_char(b, '-');
        put_u64(b, (uint64_t)0 - (uint64_t)v);
        return;
    }
    put_u64(b, (uint64_t)v);
}

static void put_str(struct actor_buf *b, const char *s)
{
    actor_buf_json_str(b, s, strlen(s));
}

static void put_bool(struct actor_buf *b, bool v)
{
    if (v) {
        PUT_LIT(b, "true");
    } else {
        PUT_LIT(b, "false");
    }
}

/* Appends `,"key":"value"` (or without the comma first) when @v is set. */
static void put_member_str(struct actor_buf *b, bool *first, const char *key,
                           size_t key_len, const char *v)
{
    if (!v) {
        return;
    }
    if (!*first) {
        actor_buf_char(b, ',');
    }
    *first = false;
    actor_buf_add(b, key, key_len);
    put_str(b, v);
}

#define MEMBER_STR(b, first, key, v)                                           \
    put_member_str((b), (first), "\"" key "\":", sizeof(key) + 2, (v))

const char *match_feed_name(enum match_feed feed)
{
    switch (feed) {
    case MATCH_FEED_LIVE:
        return "live";
    case MATCH_FEED_STALE:
        return "stale";
    case MATCH_FEED_OFFLINE:
        return "offline";
    }
    return "offline";
}

static bool has_fixture(const struct match_image *img)
{
    return img->sport || img->competition || img->home || img->away ||
           img->start;
}

static bool has_clock(const struct match_image *img)
{
    return img->clock_seconds != EVENT_ABSENT ||
           img->clock_running != EVENT_ABSENT;
}

static void put_fixture(struct actor_buf *b, const struct match_image *img)
{
    bool first = true;
    PUT_LIT(b, "\"fixture\":{");
    MEMBER_STR(b, &first, "sport", img->sport);
    MEMBER_STR(b, &first, "competition", img->competition);
    MEMBER_STR(b, &first, "home", img->home);
    MEMBER_STR(b, &first, "away", img->away);
    MEMBER_STR(b, &first, "start", img->start);
    actor_buf_char(b, '}');
}

static void put_status(struct actor_buf *b, const struct match_image *img)
{
    PUT_LIT(b, "\"status\":{\"phase\":");
    put_str(b, img->phase);
    actor_buf_char(b, '}');
}

/* "MM:SS", minutes at least two digits (they may exceed 99). */
static void put_clock_time(struct actor_buf *b, int32_t seconds)
{
    uint32_t s = seconds < 0 ? 0 : (uint32_t)seconds;
    uint32_t min = s / 60;
    uint32_t sec = s % 60;
    char tmp[16];
    char *p = tmp + sizeof(tmp);
    *--p = '"';
    *--p = (char)('0' + sec % 10);
    *--p = (char)('0' + sec / 10);
    *--p = ':';
    do {
        *--p = (char)('0' + min % 10);
        min /= 10;
    } while (min != 0);
    if (s / 60 < 10) {
        *--p = '0';
    }
    *--p = '"';
    actor_buf_add(b, p, (size_t)(tmp + sizeof(tmp) - p));
}

static void put_clock(struct actor_buf *b, const struct match_image *img)
{
    PUT_LIT(b, "\"clock\":{");
    if (img->clock_seconds != EVENT_ABSENT) {
        PUT_LIT(b, "\"time\":");
        put_clock_time(b, img->clock_seconds);
        if (img->clock_running != EVENT_ABSENT) {
            actor_buf_char(b, ',');
        }
    }
    if (img->clock_running != EVENT_ABSENT) {
        PUT_LIT(b, "\"running\":");
        put_bool(b, img->clock_running != 0);
    }
    actor_buf_char(b, '}');
}

static void put_score(struct actor_buf *b, const struct match_image *img)
{
    PUT_LIT(b, "\"score\":{\"home\":");
    put_u64(b, img->score_home);
    PUT_LIT(b, ",\"away\":");
    put_u64(b, img->score_away);
    actor_buf_char(b, '}');
}

/* Appends `,"key":value` when the value is present. */
static void put_opt_str(struct actor_buf *b, const char *key, size_t key_len,
                        const char *v)
{
    if (v) {
        actor_buf_add(b, key, key_len);
        put_str(b, v);
    }
}

static void put_opt_int(struct actor_buf *b, const char *key, size_t key_len,
                        int32_t v)
{
    if (v != EVENT_ABSENT) {
        actor_buf_add(b, key, key_len);
        put_i64(b, v);
    }
}

#define OPT_STR(b, key, v)                                                     \
    put_opt_str((b), ",\"" key "\":", sizeof(key) + 3, (v))
#define OPT_INT(b, key, v)                                                     \
    put_opt_int((b), ",\"" key "\":", sizeof(key) + 3, (v))

static const char *team_name(int8_t team)
{
    switch (team) {
    case EVENT_TEAM_HOME:
        return "home";
    case EVENT_TEAM_AWAY:
        return "away";
    }
    return NULL;
}

static void put_incident(struct actor_buf *b, const struct match_incident *in)
{
    PUT_LIT(b, "{\"id\":");
    put_str(b, in->id);
    OPT_STR(b, "type", in->type);
    OPT_STR(b, "team", team_name(in->team));
    OPT_INT(b, "minute", in->minute);
    OPT_INT(b, "stoppage", in->stoppage);
    OPT_STR(b, "player", in->player);
    OPT_STR(b, "assist", in->assist);
    if (in->confirmed != EVENT_ABSENT) {
        PUT_LIT(b, ",\"confirmed\":");
        put_bool(b, in->confirmed != 0);
    }
    actor_buf_char(b, '}');
}

static void put_feed(struct actor_buf *b, const struct match_image *img)
{
    PUT_LIT(b, "\"feed\":");
    put_str(b, match_feed_name((enum match_feed)img->feed));
}

static void put_gap(struct actor_buf *b, const struct match_image *img)
{
    PUT_LIT(b, "\"gap\":");
    put_bool(b, img->gap);
}

void match_image_json(const struct match_image *img, struct actor_buf *out)
{
    PUT_LIT(out, "{\"id\":");
    put_str(out, img->id);
    PUT_LIT(out, ",\"version\":");
    put_u64(out, img->version);
    actor_buf_char(out, ',');
    if (has_fixture(img)) {
        put_fixture(out, img);
        actor_buf_char(out, ',');
    }
    if (img->phase) {
        put_status(out, img);
        actor_buf_char(out, ',');
    }
    if (has_clock(img)) {
        put_clock(out, img);
        actor_buf_char(out, ',');
    }
    if (img->has_score) {
        put_score(out, img);
        actor_buf_char(out, ',');
    }
    PUT_LIT(out, "\"incidents\":[");
    for (uint32_t i = 0; i < img->n_incidents; i++) {
        if (i > 0) {
            actor_buf_char(out, ',');
        }
        put_incident(out, &img->incidents[i]);
    }
    PUT_LIT(out, "],");
    put_feed(out, img);
    actor_buf_char(out, ',');
    put_gap(out, img);
    actor_buf_char(out, '}');
}

void match_image_snapshot_json(const struct match_image *img,
                               struct actor_buf *out)
{
    PUT_LIT(out, "{\"type\":\"snapshot\",\"match\":");
    match_image_json(img, out);
    actor_buf_char(out, '}');
}

void model__delta_json(struct actor_buf *out, const struct match_image *img,
                       unsigned changes, const char *sent,
                       const struct match_incident *const *upserted,
                       uint32_t n_upserted, const char *const *deleted,
                       uint32_t n_deleted)
{
    PUT_LIT(out, "{\"type\":\"delta\",\"id\":");
    put_str(out, img->id);
    PUT_LIT(out, ",\"version\":");
    put_u64(out, img->version);
    if (sent) {
        PUT_LIT(out, ",\"sent\":");
        put_str(out, sent);
    }
    PUT_LIT(out, ",\"changes\":{");
    /* Each part a change names is present in @img: a delta never clears
     * one (only a full message does, and that is a snapshot). */
    _Static_assert(MODEL__CH_FIXTURE == 1 && MODEL__CH_STATUS == 2 &&
                       MODEL__CH_CLOCK == 4 && MODEL__CH_SCORE == 8 &&
                       MODEL__CH_FEED == 16 && MODEL__CH_GAP == 32,
                   "put_part follows enum model__change");
    bool first = true;
    static void (*const put_part[])(struct actor_buf *,
                                    const struct match_image *) = {
        put_fixture, put_status, put_clock, put_score, put_feed, put_gap};
    for (unsigned i = 0; i < sizeof(put_part) / sizeof(put_part[0]); i++) {
        if (!(changes & (1u << i))) {
            continue;
        }
        if (!first) {
            actor_buf_char(out, ',');
        }
        first = false;
        put_part[i](out, img);
    }
    actor_buf_char(out, '}');
    if (n_upserted + n_deleted > 0) {
        PUT_LIT(out, ",\"incidents\":{\"upsert\":[");
        for (uint32_t i = 0; i < n_upserted; i++) {
            if (i > 0) {
                actor_buf_char(out, ',');
            }
            put_incident(out, upserted[i]);
        }
        PUT_LIT(out, "],\"delete\":[");
        for (uint32_t i = 0; i < n_deleted; i++) {
            if (i > 0) {
                actor_buf_char(out, ',');
            }
            put_str(out, deleted[i]);
        }
        PUT_LIT(out, "]}");
    }
    actor_buf_char(out, '}');
}
