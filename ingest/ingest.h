/* ingest/ingest.h - the ingest stage: the feed port, one actor per feed
 * connection, one per source, and the SFP/1 session between them. */
#ifndef INGEST_INGEST_H
#define INGEST_INGEST_H

/*
 * DESIGN
 * The stage is one supervision subtree (ingest_child_spec):
 *
 *   ingest            rest_for_one
 *   ├── ingest.sources   dynamic: source:<name>, one per source name
 *   ├── ingest.conns     dynamic: one conn per TCP connection, each with
 *   │                    its parser actor (linked: either dying takes the
 *   │                    other)
 *   └── ingest.listener  accepts on the feed port, starts the conns
 *
 * A conn reads its socket, frames documents and has them parsed by its
 * parser actor, on the scheduler pool, so a huge document delays only its
 * own connection. It runs the session (login, tokens, heartbeats, silence,
 * <error> replies, acks) and hands each accepted event and each rejected
 * document that used up a seq to its source actor. The source actor
 * outlives connections: it dedupes by seq, sends each event's row to the
 * store and then its match elements to the model (through the route
 * function below), relays the store's acks to the current conn, and keeps
 * the source's feed state (live, stale, offline).
 *
 * Seqs: an event at or below its source's last seq is a duplicate
 * (dropped, counted, acked again when durable). A document rejected for
 * its content (bad_attribute, bad_element) uses up its seq: it goes to the
 * store through the source actor, in order, and acks cover it. A document
 * that cannot be trusted (not_well_formed, too_large) uses up nothing, nor
 * does one whose seq cannot be read or that names another source: its
 * <error> carries the seq when one was read, and the provider may send a
 * corrected document under that seq (before any later one).
 *
 * Stopping: a supervisor's shutdown ends conns at once, and what they had
 * read but not seen acked is resent by the feeds later. The orderly stop
 * drains first (ingest_drain): no new connection, no new read, and every
 * event already read goes all the way to the store and is acked to its
 * feed before the caller shuts the stage down.
 *
 * The stage does not include the model: app/main.c hands it the model's
 * two entry points (route and feed) in the config. Everything a conn, a
 * source or the listener does is contained: a crash ends that actor only.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/update.h"

struct actor_ctx;
struct actor_child_spec;
struct event;

/*
 * Hands match element @index of @ev to its match actor. Called by a source
 * actor, in seq order, after the event's row went to the store. Does not
 * consume @ev (it takes its own reference to keep it). Returns 0; -EAGAIN
 * when a mailbox was full (the caller gets ACTOR_MSG_RESUME later and calls
 * again with the same element); any other negative errno is fatal to the
 * caller. model_route() is one.
 */
typedef int ingest_route_fn(struct actor_ctx *ctx, struct event *ev,
                            uint32_t index);

/*
 * Tells the model that @source is now @state: every match in @match_ids
 * (@n_ids of them; NULL: every match, the model broadcasts) and notify.
 * Nothing is consumed. Returns 0; -EAGAIN (the caller calls again after
 * ACTOR_MSG_RESUME; a repeat is harmless); any other negative errno is
 * fatal to the caller. model_feed() is one, or a thin adapter to it.
 */
typedef int ingest_feed_fn(struct actor_ctx *ctx, const char *source,
                           enum match_feed state, const char *const *match_ids,
                           size_t n_ids);

/* Defaults of the settings below (a 0 in the config means the default). */
#define INGEST_PORT_DEFAULT         7700
#define INGEST_MAX_CONNS_DEFAULT    1024u
#define INGEST_MAX_SOURCES_DEFAULT  4096u
#define INGEST_SILENCE_MS_DEFAULT   20000u
#define INGEST_HEARTBEAT_MS_DEFAULT 5000u
#define INGEST_WINDOW_DEFAULT       4096u
#define INGEST_WINDOW_BYTES_DEFAULT (16u << 20)

struct ingest_config {
    const char *bind;        /* listen address; NULL: "0.0.0.0" */
    unsigned port;           /* feed port; 0: any free one (tests) */
    const char *tokens_path; /* "source token" lines; NULL: no tokens */
    uint32_t max_conns;      /* feed connections at once */
    uint32_t max_sources;    /* source actors at once */
    uint32_t silence_ms;     /* no byte for this long: stale */
    uint32_t heartbeat_ms;   /* <ct/> after this long without output */
    size_t doc_limit;        /* bytes in one document (too_large past it) */
    uint32_t window;         /* accepted, unacked events per connection */
    size_t window_bytes;     /* ... and their bytes */
    ingest_route_fn *route;  /* required (model_route) */
    ingest_feed_fn *feed;    /* required (model_feed) */
};

/*
 * Fills @out with the child spec of the whole ingest subtree for @cfg: a
 * permanent supervisor named "ingest". Reads the tokens file now (a bad
 * one is an error here, at start-up, logged with its line). @cfg must
 * outlive the subtree; call this once per process. Returns 0, -EINVAL (a
 * setting out of range, a malformed tokens file, no route or feed), or the
 * negative errno of opening or reading the tokens file.
 */
int ingest_child_spec(const struct ingest_config *cfg,
                      struct actor_child_spec *out);

/* The feed port the listener is bound to, or 0 when it is not listening
 * (useful with port 0). Any thread. */
unsigned ingest_port(void);

/*
 * Starts the stage's drain, the first step of an orderly stop (SIGTERM).
 * The listener closes the feed port. Every feed connection stops reading
 * its socket (what the peer sends from then on stays unread: it is not
 * acked, and the source resends it after its next login), finishes what
 * it has read (framing, parsing, handing events to the source actor),
 * waits until every event it accepted is acked, writes the last <ack>,
 * and closes. Source actors and the rest of the pipeline work on as usual;
 * the stage is shut down afterwards (ingest_drain_is_done(), then the
 * supervisor's shutdown). One-way for the life of the process; calling it
 * again does nothing new. Any thread; the stage need not be running.
 */
void ingest_drain(void);

/* What a drain still waits for. */
struct ingest_drain_status {
    uint32_t conns;   /* feed connections open (or being started) */
    uint32_t sources; /* source actors holding events they passed on
                         that the store has not acked yet */
};

/*
 * True when nothing of what the stage accepted waits any more: no feed
 * connection is open and every source's accepted events are acked (hence
 * durable). Fills @out, when not NULL, with what is left. Any thread.
 */
bool ingest_drain_is_done(struct ingest_drain_status *out);

#endif /* INGEST_INGEST_H */
