/* model/model_impl.h - shared inside model/: the match state machine, its
 * JSON writers and the allocation seam. Unit tests may include it. */
#ifndef MODEL_MODEL_IMPL_H
#define MODEL_MODEL_IMPL_H

/*
 * DESIGN
 * The state of a match is its current image and nothing else, plus two
 * counters. Applying an element never changes an image: it builds the next
 * one, sharing with the current one whatever did not change, and hands out
 * one update that owns a reference to it. So the functions here are pure
 * apart from allocation: the match actor calls them on its own thread,
 * tests call them directly, and a failure (ENOMEM) leaves the match exactly
 * as it was.
 *
 * An image is one allocation plus two shared, reference-counted blobs:
 * - texts: the match id, the source and the fixture and phase strings,
 *   rebuilt only when one of them changes;
 * - incidents: the incident array and its strings, rebuilt only when an
 *   incident changes.
 * A clock tick therefore costs one image, one update and two reference
 * increments.
 *
 * Incidents keep their first-seen order (a full message sets its own).
 * Within one element the net effect counts: an incident that existed
 * before and exists after keeps its place, even if the element deleted and
 * re-inserted it, and it is reported (upserted) only when an attribute
 * differs. Then an id is never both in `incidents.upsert` and
 * `incidents.delete`, and a client merges a delta by replacing upserted
 * ids in place, appending new ones and removing deleted ones, in any
 * order, and arrives at the snapshot's order. The same holds for the
 * other parts: `changes` names what differs, not what the element named.
 */

#include <stdbool.h>
#include <stdint.h>

#include "ingest/event.h"
#include "model/update.h"

struct actor_buf;

/* "Succeeded, but" outcomes of model__match_apply() and
 * model__match_feed(). */
#define MODEL__GAP       1 /* applied; its msgnr jumped: a gap */
#define MODEL__DUPLICATE 2 /* not applied: msgnr not above the last one */
#define MODEL__UNCHANGED 3 /* feed: nothing to do for this match */

/* The state of one match, owned by its match actor. */
struct model__match {
    struct match_image *image; /* current state; owned reference; never
                                  NULL between init and release */
    uint64_t gaps;             /* msgnr gaps seen */
    uint64_t duplicates;       /* elements skipped as duplicates */
};

/*
 * Sets up @m for the match @id (copied) at version 0: no fixture, status,
 * clock, score or incidents, feed live, no gap. Version 0 is never
 * published; the first applied element makes version 1.
 * Returns 0, -EINVAL (@id is empty or longer than EVENT_ID_MAX bytes) or
 * -ENOMEM; on error @m needs no release.
 */
int model__match_init(struct model__match *m, const char *id);

/* Drops @m's image. Accepts a zeroed @m. */
void model__match_release(struct model__match *m);

/*
 * Applies match element @i of @ev (feed-protocol.md section 3) to @m.
 * @ev is not kept: the new image copies what it needs. @now_ms is the wall
 * clock stored as the image's updated_ms.
 * Returns:
 *   0              applied: *@out is a new update (owned reference: release
 *                  it with update_unref()); @m holds its image
 *   MODEL__GAP     applied as for 0, and its msgnr jumped over a gap
 *                  (counted in @m->gaps; the match shows gap until a full
 *                  message heals it)
 *   MODEL__DUPLICATE  skipped: msgnr not above the last applied one
 *                  (counted in @m->duplicates); *@out is NULL
 *   -EINVAL        @i is out of range or the element is another match's:
 *                  a routing bug of ours; @m unchanged
 *   -ENOMEM        @m unchanged, *@out NULL
 */
int model__match_apply(struct model__match *m, const struct event *ev,
                       uint32_t i, int64_t now_ms, struct update **out);

/*
 * Tells @m that @source (not owned) is now in @feed state. When @source is
 * the source of @m's last applied element and the state differs, makes a
 * new version with the new feed state and returns 0 with *@out a new delta
 * (release it with update_unref()). Returns MODEL__UNCHANGED (*@out NULL)
 * when the match has another source or already has that state, -ENOMEM
 * (@m unchanged).
 */
int model__match_feed(struct model__match *m, const char *source,
                      enum match_feed feed, int64_t now_ms,
                      struct update **out);

struct store_match;

/*
 * Sets up @m with the state of the stored @row (not kept: everything is
 * copied), at the row's version; nothing is published. Returns 0, -EINVAL
 * (an id that is empty or too long, version 0) or -ENOMEM; on error @m
 * needs no release.
 */
int model__match_restore(struct model__match *m, const struct store_match *row);

/* Sets up @m with @img (consumed: the reference becomes @m's), an image
 * this model made (a pending update's, handed back by the store). */
void model__match_adopt(struct model__match *m, struct match_image *img);

/* Marks @m as not knowing its past (a gap, until a full message heals
 * it). Only for a fresh @m from model__match_init(), before anything is
 * published. */
void model__match_set_gap(struct model__match *m);

/*
 * Makes a snapshot of @m at its current version (no new version): kind
 * UPDATE_SNAPSHOT, the `snapshot` JSON, sent_ms EVENT_ABSENT, no store
 * lists. Returns 0 with *@out a new update (release it with
 * update_unref()), or -ENOMEM.
 */
int model__match_snapshot(const struct model__match *m, struct update **out);

/* ---- JSON (model_json.c) ---------------------------------------------- */

/* What a delta's `changes` object holds. */
enum model__change {
    MODEL__CH_FIXTURE = 1u << 0,
    MODEL__CH_STATUS = 1u << 1,
    MODEL__CH_CLOCK = 1u << 2,
    MODEL__CH_SCORE = 1u << 3,
    MODEL__CH_FEED = 1u << 4,
    MODEL__CH_GAP = 1u << 5
};

/*
 * Appends to @out the WebSocket `delta` message that leads to @img:
 * `changes` holds the parts in @changes (enum model__change bits) with
 * @img's values; `sent` is @sent (NULL: omitted); `incidents` lists the
 * @n_upserted incidents @upserted (whole) and the @n_deleted ids @deleted,
 * and is omitted when both are empty. Nothing is owned. Errors stick in
 * @out->err.
 */
void model__delta_json(struct actor_buf *out, const struct match_image *img,
                       unsigned changes, const char *sent,
                       const struct match_incident *const *upserted,
                       uint32_t n_upserted, const char *const *deleted,
                       uint32_t n_deleted);

/* ---- actors (model_actor.c, model_route.c, model_loader.c) ------------- */

/* Internal message types (model.h numbers those others may see). */
enum {
    MODEL__MSG_RETAIN = 0x2f0, /* plain: a match's retention timer */
    MODEL__MSG_STOP,           /* plain: the snapshot collector's timeout */
    MODEL__MSG_REASK,          /* plain: a loading match asks again */
};

/* A match element on its way to its match actor (MODEL_MSG_ELEMENT). */
struct model__element_msg {
    struct actor_msg hdr;
    struct event *ev; /* owned reference */
    uint32_t index;   /* in ev->matches */
    bool settled;     /* the element's outcome went to the store (or is
                         not ours to report); false when freed: the free
                         reports it lost */
};

/* MODEL_MSG_FEED is a struct model_feed_notice_msg (update.h) with that
 * type. */

/* MODEL_MSG_SNAPSHOT */
struct model__snapshot_msg {
    struct actor_msg hdr;
    uint64_t reply_to;
    bool answered; /* false when freed: the free answers up == NULL */
};

/*
 * Makes the two messages of applied update @up: *@to_store (with @ev, may
 * be NULL, and @index) and *@to_notify (no event), outcome MODEL_APPLIED,
 * in one allocation holding one reference to each of @up and @ev (neither
 * consumed). Each message is freed on its own (hdr.free); the last frees
 * the block. Returns 0 or -ENOMEM.
 */
int model__update_pair_new(struct update *up, struct event *ev, uint32_t index,
                           struct model_update_msg **to_store,
                           struct model_update_msg **to_notify);

/* Answers snapshot request @msg (a MODEL_MSG_SNAPSHOT; not consumed) with
 * @up (not consumed; NULL: nothing to show). */
void model__snapshot_answer(struct actor_msg *msg, struct update *up);

/*
 * The arg of a match actor started with a known state (the loader's);
 * owned by `model.matches` (model__start_free). The actor's first init
 * takes the image out, so a restart asks the store instead of reusing a
 * state that is old by then.
 */
struct model__start {
    struct match_image *image; /* owned reference, or NULL */
};

void model__start_free(void *arg);

extern const struct actor_ops model__match_ops;
extern const struct actor_ops model__loader_ops;

#define MODEL__NAME_PREFIX "match:"
#define MODEL__NAME_MAX    (sizeof(MODEL__NAME_PREFIX) + EVENT_ID_MAX)

/* Writes "match:<@id>" to @buf. Returns 0, or -EINVAL when @id is empty or
 * longer than EVENT_ID_MAX bytes. */
int model__match_name(char buf[MODEL__NAME_MAX], const char *id);

/*
 * Starts the actor `@name` (match:<id>) under `model.matches` with @start
 * (consumed in every case; NULL: the actor asks the store for its state).
 * Sets *@pid. Returns 0, -EEXIST (*@pid is the actor holding the name),
 * -ESRCH (`model.matches` is not running) or -ENOMEM.
 */
int model__start_match(const char *name, struct model__start *start,
                       uint64_t *pid);

/* From a match actor's handler: drops its name and returns true when
 * nothing waits in its mailbox, atomically with respect to model_route();
 * else false, and it keeps its name. Then it may end without an element
 * landing behind it. */
bool model__retire(struct actor_ctx *ctx);

/* Reports element @index of @ev (not consumed) to the store as MODEL_LOST,
 * from any thread, best effort (logged when it cannot be sent). */
void model__report_lost(struct event *ev, uint32_t index);

/* The configuration in force: model_child_spec()'s, or the defaults. */
uint32_t model__retention_ms(void);
uint32_t model__idle_ms(void); /* 0: unfinished matches stay */
uint32_t model__match_mailbox(void);

/* Series of the model (counters are process-wide; see CONTRACTS.md). */
struct model__metrics {
    struct actor_metric *updates;    /* new versions published */
    struct actor_metric *gaps;       /* msgnr gaps */
    struct actor_metric *duplicates; /* elements skipped as duplicates */
    struct actor_metric *lost;       /* elements never handled */
};

/* Registers the series on first use. Never NULL; members may be NULL. */
const struct model__metrics *model__metrics(void);

/* Match actors alive (the scorewire_model_matches gauge): +1 or -1. */
void model__matches_add(int delta);

/* ---- a queue of messages (model_route.c) ------------------------------- */

/* A FIFO of owned messages; zeroed is empty. */
struct model__fifo {
    struct actor_msg **v;
    uint32_t head; /* index of the oldest */
    uint32_t n;
    uint32_t cap; /* a power of two, or 0 */
};

/* Appends @msg (owned by the queue on success). Returns 0 or -ENOMEM (the
 * caller still owns @msg). */
int model__fifo_push(struct model__fifo *q, struct actor_msg *msg);
/* The oldest message (still queued), or NULL. */
struct actor_msg *model__fifo_peek(const struct model__fifo *q);
/* Takes the oldest message out (the caller owns it), or NULL. */
struct actor_msg *model__fifo_pop(struct model__fifo *q);
/* Releases every queued message through its free, oldest first, and the
 * queue's memory. */
void model__fifo_release(struct model__fifo *q);

/* ---- allocation seam --------------------------------------------------- */

/*
 * Every allocation the model makes for images and updates goes through
 * model__alloc(). Tests set model__fail_alloc to N to make the Nth
 * allocation from then on, on the calling thread, fail (it counts down to
 * 0, then stays off); 0 (the default) fails nothing.
 */
extern _Thread_local uint32_t model__fail_alloc;

/* malloc(), or NULL when the seam says so. */
void *model__alloc(size_t size);

#endif /* MODEL_MODEL_IMPL_H */
