/* store/store.h - the durable record: what the store keeps in PostgreSQL and
 * what it gives back at start-up. */
#ifndef STORE_STORE_H
#define STORE_STORE_H

/*
 * DESIGN
 * The store is one blocking actor (its own thread, libpq) fed by three kinds
 * of message: event rows from the source actors (in seq order per source,
 * each sent before that event's match elements reach the model), one
 * "applied" message per match element from the match actors (the update, or
 * none when the element changed nothing, with the event and element index),
 * and rejected documents. It writes in batches, one transaction each (COPY
 * for the logs, upserts for the latest state), and tells each source, after
 * COMMIT, the highest seq such that it, every earlier event of that source
 * and every update they caused are durable.
 *
 * Updates are written as they arrive. An event's feed_events row waits until
 * it and every earlier event of its source are complete (all elements
 * applied), and goes in the transaction that advances source_offsets past
 * it: feed_events never holds a row above its source's acked seq, so a
 * source that resends from acked + 1 after a restart inserts each event once.
 * A rejected document that used up a seq is ordered and acked like an event.
 * Every row has a deterministic key, and a batch whose COMMIT outcome is
 * unknown (the connection died after COMMIT was sent) is retried with
 * statements that skip what is already there, so a retry is harmless.
 *
 * At start-up the model is rebuilt from what store_load() hands back: every
 * stored match with its live incidents, in the order browsers saw them, and
 * every source's acked seq (the login reply's `acked`).
 *
 * Plain values: strings are NUL-terminated UTF-8, NULL when absent; integers
 * EVENT_ABSENT when absent (ingest/event.h).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/update.h"

#define STORE_REJECTED_RAW_MAX (64u * 1024) /* bytes of a dead letter kept */

/* A rejected document, as ingest reports it. */
struct store_rejected {
    const char *source; /* NULL: the connection had not named one yet */
    uint64_t seq;       /* valid when has_seq: it used up that seq */
    bool has_seq;
    int64_t received_ms; /* wall clock, ms since the epoch */
    const char *reason;  /* never NULL: "not_well_formed", "too_large", ... */
    const void *raw;     /* the bytes received (may be a prefix) */
    size_t raw_len;
    uint64_t size; /* bytes of the whole document (>= raw_len) */
};

/* A source's durable position. */
struct store_offset {
    const char *source;
    uint64_t acked_seq; /* 0: nothing durable yet */
};

/* One stored match: the fields of its latest durable match_image. */
struct store_match {
    const char *id;
    uint64_t version;
    uint64_t msgnr; /* valid when has_msgnr */
    bool has_msgnr;
    const char *source; /* source of the last applied event, or NULL */
    const char *sport;
    const char *competition;
    const char *home;
    const char *away;
    const char *start;     /* fixture start as the feed sent it */
    const char *phase;     /* NULL: no status yet */
    int32_t clock_seconds; /* EVENT_ABSENT: no clock yet */
    int8_t clock_running;  /* 0 or 1 */
    bool has_score;
    uint32_t score_home;
    uint32_t score_away;
    uint8_t feed; /* enum match_feed */
    bool gap;
    int64_t updated_ms; /* wall clock of this version */
    /* the live incidents, in the order of the match's incident list */
    const struct match_incident *incidents;
    uint32_t n_incidents;
};

/* What the database holds, for the rebuild at start-up. One allocation. */
struct store_load {
    const struct store_match *matches; /* sorted by id */
    size_t n_matches;
    const struct store_offset *offsets; /* sorted by source */
    size_t n_offsets;
    uint64_t rejected_id; /* highest rejected_documents.id; 0: none */
};

/* Releases @load and everything it points to. Accepts NULL. */
void store_load_free(struct store_load *load);

/*
 * Returns the acked seq of @source in @load, or 0 when it has none. @load
 * may be NULL.
 */
uint64_t store_load_acked(const struct store_load *load, const char *source);

#endif /* STORE_STORE_H */
