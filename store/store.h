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
 *
 * What can still go wrong, and the answer to each:
 * - COMMIT sent, connection lost, outcome unknown. The whole batch is kept
 *   and written again after reconnecting, in safe mode: log tables through
 *   staging with ON CONFLICT DO NOTHING, latest-state upserts guarded by
 *   version, offsets by GREATEST. Committed or not, the tables end up with
 *   each row once. (A commit marker row or pg_xact_status() could tell the
 *   outcome instead; safe mode needs neither and covers the next case.)
 * - The primary key fires in a plain write anyway (a bug, a hand-made row,
 *   a second writer). The batch is rolled back and written again at once in
 *   safe mode; the skipped rows are counted so the actor can say so. A key
 *   never stalls the pipeline.
 * - A source actor restarts while the store lives: it asks the store for
 *   acked, the feed resends from there, and events still pending in the
 *   store would reach the model twice. The store answers with both acked
 *   (durable) and the highest seq it holds (store__pending_last_seq); the
 *   source dedupes against the latter. The tracker also drops a stale seq
 *   itself.
 * - An element whose match actor died with it queued: the runtime frees
 *   the queued message, whose free function sends the store an outcome
 *   MODEL_LOST, which completes the element like any other (no deadline
 *   needed). The element's change is not applied; the restarted match
 *   rebuilds from the newest state the store knows.
 * - A crash between an event's first durable update and its ack: the
 *   resend applies its elements again. With msgnr (kept in matches) the
 *   model skips them; without, an element is applied twice: the same state,
 *   one more version.
 * - Bad bytes (invalid UTF-8 from a feed, a start time that is not RFC
 *   3339) would fail a whole COPY and stall every feed behind it: text is
 *   mended and times checked as rows are encoded.
 * - A rejected document without a seq is never acked: a crash before its
 *   batch commits loses it, and nothing can resend it.
 *
 * Back-pressure and memory: what the store holds is bounded by the feeds'
 * windows (an unacked event blocks its window) plus its mailbox. While
 * PostgreSQL takes writes the store always drains its mailbox (a batch
 * that is full is written first); only while writes fail does it stop
 * draining at its backlog bound, and that cannot deadlock: completing an
 * event needs messages from the mailbox, writing it needs only the
 * database.
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

#include "actor/actor.h"
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
    int8_t clock_running;  /* EVENT_ABSENT (never given), 0 or 1 */
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

/* ---- the store actor ----------------------------------------------------- */

#define STORE_BATCH_ROWS_DEFAULT    8192u          /* rows that flush a batch */
#define STORE_BATCH_MS_DEFAULT      50u            /* ms that flush a batch */
#define STORE_BACKLOG_DEFAULT       200000u        /* rows held in an outage */
#define STORE_BACKLOG_BYTES_DEFAULT (256ull << 20) /* 256 MiB */
#define STORE_RETENTION_S_DEFAULT   86400u     /* s an ended match is loaded */
#define STORE_MAILBOX_DEFAULT       (1u << 20) /* messages */
#define STORE_SHUTDOWN_MS           15000u     /* grace for the last flush */

struct store_config {
    const char *conninfo;     /* libpq conninfo or URI; NULL or "": libpq's
                                 PG* environment. Not owned. */
    uint32_t batch_rows;      /* flush when the batch holds this many rows */
    uint32_t batch_ms;        /* ... or its first row is this old (ms) */
    uint32_t backlog_rows;    /* rows held (batch and incomplete events) at
                                 which an outage stops the mailbox's draining */
    uint64_t backlog_bytes;   /* ... or bytes of rows in the batch (raw
                                 documents may be large) */
    uint32_t retention_s;     /* finished matches older than this are not
                                 loaded at start-up; 0: every one is */
    uint32_t idle_s;          /* ... nor unfinished ones older than this;
                                 0: every one is */
    uint32_t mailbox;         /* mailbox capacity in messages */
    uint32_t backoff_base_ms; /* reconnection backoff: first ceiling */
    uint32_t backoff_cap_ms;  /* ... and its cap */
    bool no_idle_flush;       /* tests and benchmarks: flush on rows and time
                                 only, not as soon as the mailbox is drained */
};

/* Fills @cfg with the defaults above (conninfo NULL). Any field left 0 in
 * a config means its default too, except retention_s and idle_s (0: keep
 * all). */
void store_config_default(struct store_config *cfg);

/*
 * The store actor: register it `store`, with .thread = true and a mailbox
 * of cfg->mailbox messages, .arg = a struct store_config (not owned; must
 * outlive the actor). Its init connects and loads, retrying with backoff
 * while the database is down, and defers (ACTOR_DEFER) until loaded, so
 * nothing started after it sees an unloaded store.
 *
 * It takes STORE_MSG_EVENT, STORE_MSG_REJECTED, MODEL_MSG_UPDATE (every
 * outcome; ev == NULL for changes no event caused), STORE_MSG_LOAD_REQ and
 * STORE_MSG_ACKED_REQ; after each COMMIT it sends STORE_MSG_ACK to
 * `source:<name>` for every source whose durable seq advanced.
 */
extern const struct actor_ops store_ops;

/*
 * Fills @out with the store's child spec: permanent, STORE_SHUTDOWN_MS to
 * stop, the actor above with @cfg as its arg (not owned: it must live as
 * long as the process). Returns 0.
 */
int store_child_spec(const struct store_config *cfg,
                     struct actor_child_spec *out);

/* True while the store is connected to PostgreSQL (any thread; /readyz). */
bool store_db_is_up(void);

/* ---- messages ------------------------------------------------------------ */

struct event;

enum {
    STORE_MSG_EVENT = 0x300, /* struct store_event_msg, to `store` */
    STORE_MSG_REJECTED,      /* struct store_rejected_msg, to `store` */
    STORE_MSG_LOAD_REQ,      /* struct store_load_req_msg, to `store` */
    STORE_MSG_LOADED,        /* struct store_loaded_msg, the reply */
    STORE_MSG_ACKED_REQ,     /* struct store_acked_req_msg, to `store` */
    STORE_MSG_ACK,           /* struct store_ack_msg, to `source:<name>` */
};

/*
 * An accepted event's row, from its source actor, in seq order per source,
 * sent before any of its match elements goes to the model (so it reaches
 * the store before the updates that name it).
 */
struct store_event_msg {
    struct actor_msg hdr; /* STORE_MSG_EVENT */
    struct event *ev;     /* owned reference */
};

/* A rejected document. Those with a seq come from the source actor in seq
 * order (they are acked like events); the rest from the connection. */
struct store_rejected_msg {
    struct actor_msg hdr;      /* STORE_MSG_REJECTED */
    struct store_rejected rej; /* strings and raw owned by the message */
};

/* Asks for the stored state: every match (match_id[0] == '\0', the
 * model's start-up) or one match (a restarted match actor). */
struct store_load_req_msg {
    struct actor_msg hdr; /* STORE_MSG_LOAD_REQ */
    uint64_t reply_to;
    char match_id[65];
};

/*
 * The reply. For one match: the newest state the store knows, which is
 * either the image of an update still pending in its batch (image set) or
 * the stored row (load with at most one match); status -EAGAIN when the
 * database cannot be read and nothing is pending.
 */
struct store_loaded_msg {
    struct actor_msg hdr;      /* STORE_MSG_LOADED */
    int status;                /* 0 or a negative errno */
    struct store_load *load;   /* owned, or NULL */
    struct match_image *image; /* owned reference, or NULL */
};

/* Asks for a source's acked seq (a source actor starting). */
struct store_acked_req_msg {
    struct actor_msg hdr; /* STORE_MSG_ACKED_REQ */
    uint64_t reply_to;
    char source[]; /* NUL-terminated */
};

/*
 * Every event of @source with seq <= @seq is durable (with every update it
 * caused). @pending_seq is the highest seq of @source the store holds at
 * all, durable or not (>= seq): a restarted source actor dedupes against it.
 */
struct store_ack_msg {
    struct actor_msg hdr; /* STORE_MSG_ACK */
    uint64_t seq;
    uint64_t pending_seq;
    char source[]; /* NUL-terminated */
};

/* Constructors: each returns a new message or NULL when out of memory.
 * The event one takes its own reference; the rejected one copies @rej's
 * strings and at most STORE_REJECTED_RAW_MAX bytes of raw; the loaded one
 * takes ownership of @load and of the reference @image. */
struct store_event_msg *store_event_msg_new(struct event *ev);
struct store_rejected_msg *
store_rejected_msg_new(const struct store_rejected *rej);
struct store_load_req_msg *store_load_req_msg_new(uint64_t reply_to,
                                                  const char *match_id);
struct store_loaded_msg *store_loaded_msg_new(int status,
                                              struct store_load *load,
                                              struct match_image *image);
struct store_acked_req_msg *store_acked_req_msg_new(uint64_t reply_to,
                                                    const char *source);
struct store_ack_msg *store_ack_msg_new(const char *source, uint64_t seq,
                                        uint64_t pending_seq);

#endif /* STORE_STORE_H */
