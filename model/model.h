/* model/model.h - the model stage: one actor per match, the routing of match
 * elements to them, feed state and the start-up load. */
#ifndef MODEL_MODEL_H
#define MODEL_MODEL_H

/*
 * DESIGN
 * Every match lives in its own actor, registered as `match:<id>` under the
 * dynamic supervisor `model.matches`, as a process per entity does on the
 * BEAM. A source actor hands each match element of an event to
 * model_route(), which finds the match's actor by name, starts it on first
 * sight, and sends it the element (a reference to the event and the
 * element's index). One source sends all of a match's elements, so they
 * arrive and are applied in the order the source sent them; different
 * matches run in parallel on the scheduler pool.
 *
 * A match actor applies the element to its state (model_impl.h), then
 * sends the store one MODEL_MSG_UPDATE per element whatever the outcome
 * (applied, duplicate) and notify the applied ones. An element that is
 * never handled (its match actor ended with it queued) reports itself to
 * the store as MODEL_LOST when it is freed, so every event completes.
 *
 * State comes from a known source, never from the wreck: the matches the
 * store holds are started by `model.loader` at start-up with their stored
 * state; any other match actor (a new match, a restart, a match that
 * comes back after its retention) asks the store for the newest state it
 * knows before it applies anything, queueing its elements meanwhile.
 *
 * The subtree is one_for_all: `model.matches` first, then `model.loader`,
 * whose deferred init acks only once every stored match has its actor, so
 * nothing after the model (ingest) starts before. (The loader needs the
 * matches' supervisor running, hence this order.)
 *
 * Back-pressure: a full match mailbox refuses model_route() with -EAGAIN
 * and the source waits for ACTOR_MSG_RESUME; a full store mailbox makes a
 * match keep an ordered outbox; a full notify mailbox makes it skip
 * deltas for notify and send one snapshot once notify has room again.
 * What a match holds meanwhile (its outbox, the elements that come while
 * it loads) is bounded by the sources' windows of unacknowledged events,
 * as everything in flight is.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "actor/actor.h"
#include "model/update.h"

struct event;

#define MODEL_RETENTION_DEFAULT_MS (10u * 60 * 1000) /* 10 minutes */

/* The dynamic supervisor `model.matches`: every match crash counts. */
#define MODEL_MATCH_RESTARTS  100   /* more than this many ... */
#define MODEL_MATCH_PERIOD_MS 10000 /* ... in this period restart the model */

struct model_config {
    /* How long a finished match (phase ended, cancelled, abandoned or
     * postponed) stays in memory after its last change before its actor
     * stops (its state stays in the database; an element for it later
     * brings it back from there). ms; 0: MODEL_RETENTION_DEFAULT_MS. */
    uint32_t retention_ms;
    /* The same for an unfinished match without a change for this long (a
     * match its provider abandoned without an end). ms; 0: it stays. */
    uint32_t idle_ms;
    /* Mailbox of each match actor, in messages; 0: ACTOR_MAILBOX_DEFAULT. */
    uint32_t match_mailbox;
};

/* Message types of the model (0x200-0x2ff); update.h has those it sends
 * other stages. The structs behind these are the model's own: only the
 * functions below make them. */
enum {
    MODEL_MSG_ELEMENT = 0x200,  /* a match element, from model_route() */
    MODEL_MSG_FEED = 0x201,     /* a source's feed state, from model_feed() */
    MODEL_MSG_SNAPSHOT = 0x202, /* a snapshot request, model_snapshot_all() */
};

/*
 * Fills @out with the spec of the `model` subtree (a one_for_all
 * supervisor: `model.matches`, then `model.loader`). @cfg is not owned and
 * must outlive the process's model; one model per process: a later call
 * replaces the configuration for actors started after it. Returns 0.
 */
int model_child_spec(const struct model_config *cfg,
                     struct actor_child_spec *out);

/* True once `model.loader` has started every stored match, until the
 * model stops (/readyz). Safe from any thread. */
bool model_is_loaded(void);

/*
 * Sends match element @index of @ev (not consumed: the message takes its
 * own reference) to its match actor, starting the actor on first sight.
 * @ctx is the calling actor (it gets ACTOR_MSG_RESUME after -EAGAIN), or
 * NULL outside actors. Returns:
 *   0        sent; the element's outcome will reach the store
 *   -EAGAIN  the match's mailbox is full; nothing was sent. @ctx gets
 *            ACTOR_MSG_RESUME from the match actor: route the same
 *            element again then, before any later element (keep order)
 *   -ESRCH   no match actor could take it (the model is not running: it
 *            is restarting) or -ENOMEM: out of memory; in both cases the
 *            element was reported to the store as MODEL_LOST (when memory
 *            allowed), so its event still completes
 *   -EINVAL  @index is out of range (nothing sent, nothing reported)
 */
int model_route(struct actor_ctx *ctx, struct event *ev, uint32_t index);

/*
 * Source @source (not owned) is now in @state: sends MODEL_MSG_FEED to
 * each match actor named in @ids[*@next .. @n) (match ids, not owned),
 * advancing *@next past each one handled (sent to, or not running); a
 * match whose last element came from @source makes a new version with the
 * feed state and publishes it like any change. Then tells notify
 * (MODEL_MSG_FEED_NOTICE, for the WebSocket `feed` message; best effort:
 * a full notify mailbox loses the notice, the matches' own updates still
 * carry the state). @ids NULL: every match actor, best effort (a full
 * mailbox skips that match; *@next is not used and may be NULL).
 * Returns 0 (done), -EAGAIN (the mailbox of ids[*@next] is full: @ctx gets
 * ACTOR_MSG_RESUME from it; call again with the same arguments, before
 * routing anything later, to keep order), or -ENOMEM (*@next tells how far
 * it got).
 */
int model_feed(struct actor_ctx *ctx, const char *source, enum match_feed state,
               const char *const *ids, size_t n, size_t *next);

/*
 * Asks every match actor to send @reply_to one MODEL_MSG_UPDATE holding
 * a snapshot of its current state (kind UPDATE_SNAPSHOT at its current
 * version, ev NULL, outcome MODEL_APPLIED), or with up == NULL when it
 * has nothing to show (version 0: nothing applied yet) or ends before it
 * answers. Each asked match answers exactly once, so @reply_to can count;
 * its mailbox must have room for one message per match (a reply that
 * finds it full is dropped). Returns how many were asked, or -ENOMEM.
 */
int model_snapshot_all(struct actor_ctx *ctx, uint64_t reply_to);

/*
 * Appends to @out a JSON array of the match object (match_image_json) of
 * every match held in memory, in id order, as their actors see them now:
 * the admin API's and the tests' view of the model. Blocks the calling
 * thread, which must not be a scheduler thread (a blocking actor's, or a
 * plain thread; not in manual mode), until every match answered or
 * @timeout_ms passed. Returns 0, -ETIMEDOUT (some matches did not answer;
 * nothing appended), or -ENOMEM.
 */
int model_snapshot_json(struct actor_buf *out, uint32_t timeout_ms);

#endif /* MODEL_MODEL_H */
