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
