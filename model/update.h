/* model/update.h - what the model hands to notify and store: immutable match
 * images and the updates between them. */
#ifndef MODEL_UPDATE_H
#define MODEL_UPDATE_H

/*
 * DESIGN
 * A match actor owns its match's state; everything it gives away is
 * immutable and reference-counted, shared by every receiver on every thread:
 *
 * - struct match_image: the whole state of one match at one version. A new
 *   image shares what did not change with the previous one (the fixture
 *   strings, the incident list), so an update costs a small allocation, not
 *   a copy of the match. Notify keeps the latest image of every match to
 *   serve snapshots; the store writes the `matches` row and the snapshot
 *   column from it.
 * - struct update: one applied change: the new image, the WebSocket JSON of
 *   the change (a `delta`, or a `snapshot` for a `full` message) serialized
 *   once with UPDATE_HEADROOM writable bytes before it (libwebsockets writes
 *   its frame header there), and for the store the incidents it touched.
 *
 * Absent values follow ingest/event.h: NULL strings, EVENT_ABSENT integers.
 */

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "actor/actor.h"

struct event;

#define UPDATE_HEADROOM 32 /* bytes before update->json the sender may use */

enum match_feed { MATCH_FEED_LIVE, MATCH_FEED_STALE, MATCH_FEED_OFFLINE };

struct match_incident {
    const char *id;   /* never NULL */
    const char *type; /* NULL: not known */
    const char *player;
    const char *assist;
    int32_t minute; /* EVENT_ABSENT or >= 0 */
    int32_t stoppage;
    int8_t team;      /* enum event_team; NONE: not known */
    int8_t confirmed; /* EVENT_ABSENT, 0 or 1 */
    uint64_t version; /* match version that last changed it */
};

struct match_image {
    atomic_uint refs;
    const char *id;
    uint64_t version; /* 1, 2, 3, ... per applied change */
    uint64_t msgnr;   /* last applied msgnr, valid when has_msgnr */
    bool has_msgnr;
    const char *source; /* source of the last applied event, or NULL */
    const char *sport;  /* fixture; NULL: absent */
    const char *competition;
    const char *home;
    const char *away;
    const char *start;
    const char *phase;     /* NULL: no status yet */
    int32_t clock_seconds; /* EVENT_ABSENT: no time yet */
    int8_t clock_running;  /* EVENT_ABSENT (never given), 0 or 1 */
    bool has_score;        /* false: no score yet (both 0) */
    uint32_t score_home;
    uint32_t score_away;
    uint8_t feed;       /* enum match_feed */
    bool gap;           /* a msgnr gap not yet healed by a full message */
    int64_t updated_ms; /* wall clock of this version */
    const struct match_incident *incidents; /* live ones, in first-seen
                                               order (after a full message:
                                               its order) */
    uint32_t n_incidents;
};

enum update_kind {
    UPDATE_DELTA,   /* json is a "delta" message */
    UPDATE_SNAPSHOT /* json is a "snapshot" message (a full message, a
                       rebuilt or restarted match) */
};

struct update {
    atomic_uint refs;
    enum update_kind kind;
    struct match_image *image; /* state after the change; owned reference */
    const char *json;          /* the WebSocket message, NUL-terminated;
                                  UPDATE_HEADROOM writable bytes precede
                                  it, for one sending thread (notify's);
                                  no one else touches them */
    size_t json_len;
    int64_t sent_ms; /* the feed's `sent`, or EVENT_ABSENT */
    /*
     * For the store: the incidents this change wrote or removed, by net
     * effect (a full message included): upserted are those new or with an
     * attribute changed, each with version == image->version; deleted are
     * the ids that were there before and are not now. An id is never in
     * both; an incident re-sent unchanged is in neither and keeps its
     * version.
     */
    const struct match_incident *const *upserted; /* into image->incidents */
    uint32_t n_upserted;
    const char *const *deleted; /* incident ids, NUL-terminated */
    uint32_t n_deleted;
};

/* Reference counting; the last unref frees. Both unrefs accept NULL. */
static inline struct match_image *match_image_ref(struct match_image *img)
{
    atomic_fetch_add_explicit(&img->refs, 1, memory_order_relaxed);
    return img;
}
void match_image_unref(struct match_image *img);

static inline struct update *update_ref(struct update *up)
{
    atomic_fetch_add_explicit(&up->refs, 1, memory_order_relaxed);
    return up;
}
void update_unref(struct update *up);

/*
 * Appends the WebSocket `snapshot` message of @img (ws-protocol.md) to
 * @out. The same text the model sends for a full message at that version.
 */
void match_image_snapshot_json(const struct match_image *img,
                               struct actor_buf *out);

/* Appends just the match object of the snapshot (the `matches.snapshot`
 * column and the page's /api/matches). */
void match_image_json(const struct match_image *img, struct actor_buf *out);

/* ---- the messages that carry them --------------------------------------- */

enum {
    MODEL_MSG_UPDATE = 0x210,      /* struct model_update_msg */
    MODEL_MSG_FEED_NOTICE = 0x211, /* struct model_feed_notice_msg */
};

/* What became of one match element a match actor was given. */
enum model_outcome {
    MODEL_APPLIED,   /* applied: a new version, `up` set */
    MODEL_DUPLICATE, /* msgnr not above the last applied: skipped */
    MODEL_LOST       /* never handled: the match actor ended first */
};

/*
 * From a match actor to `store` (one per element it was given, whatever
 * the outcome, so the store can tell when an event is complete) and to
 * `notify` (applied ones, and snapshots). A change not caused by an event
 * (a source's feed state) has ev == NULL; a snapshot re-sent to notify is
 * kind UPDATE_SNAPSHOT at the match's current version.
 */
struct model_update_msg {
    struct actor_msg hdr; /* MODEL_MSG_UPDATE */
    struct update *up;    /* owned reference, or NULL */
    struct event *ev;     /* owned reference, or NULL */
    uint32_t index;       /* the element's index in ev->matches */
    uint8_t outcome;      /* enum model_outcome */
};

/*
 * Returns a new message holding its own references to @up and @ev (either
 * may be NULL), or NULL when out of memory. Its free drops them.
 */
struct model_update_msg *model_update_msg_new(struct update *up,
                                              struct event *ev, uint32_t index,
                                              enum model_outcome outcome);

/* A source's feed state changed: notify sends {"type":"feed",...}. */
struct model_feed_notice_msg {
    struct actor_msg hdr; /* MODEL_MSG_FEED_NOTICE */
    uint8_t state;        /* enum match_feed */
    char source[];        /* NUL-terminated */
};

/* Returns a new notice, or NULL when out of memory. */
struct model_feed_notice_msg *model_feed_notice_msg_new(const char *source,
                                                        enum match_feed state);

/* "live", "stale" or "offline". */
const char *match_feed_name(enum match_feed state);

#endif /* MODEL_UPDATE_H */
