/* store/store_impl.h - inside the store: batches, completion tracking, the
 * PostgreSQL writer. Shared by store/ and its tests only. */
#ifndef STORE_STORE_IMPL_H
#define STORE_STORE_IMPL_H

/*
 * DESIGN
 * Three layers, each testable on its own:
 *
 * - store__batch (store_batch.c): the rows of one transaction. Log rows
 *   (feed_events, match_updates, rejected_documents) are encoded in COPY
 *   binary form as they arrive, one buffer per table. Latest-state rows are
 *   kept one per key, replaced by a higher version: per match a reference
 *   to its latest image (its row and snapshot JSON are built only when the
 *   batch is written), per (match, incident) its latest row, per source its
 *   highest advance. Text is checked for UTF-8 (and mended) as it is
 *   encoded, because PostgreSQL rejects a whole COPY for one bad byte, and a
 *   batch that can never be written would stall every feed behind it.
 *
 * - store__pending (store_pending.c): per source, the events (and rejected
 *   documents with a seq) received but not yet complete, in seq order. When
 *   the oldest ones are complete it moves them into the batch: their
 *   feed_events rows and the source's offset advance together, so an offset
 *   never passes an event whose row or updates are not in the same or an
 *   earlier transaction.
 *
 * - store__pg (store_pg.c): one libpq connection. Writes a batch in one
 *   transaction (a single simple query: BEGIN, a COPY per table, upserts
 *   from session-private staging tables, COMMIT), reconnects with capped,
 *   full-jitter exponential backoff, measures outages, and loads the
 *   start-up state. It never logs: it returns what happened and the store
 *   actor decides what to say. Its staging tables are temporary tables of
 *   its session, so it needs a session of its own (no transaction-mode
 *   pooler in between).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "actor/actor.h"
#include "store/store.h"

struct event;

/* ---- allocations (store_alloc.c) ----------------------------------------- */

/* Tests: the Nth allocation from now fails (1: the next one); 0: none. */
extern unsigned store__alloc_fail_in;
void *store__malloc(size_t size);
void *store__calloc(size_t n, size_t size);
void *store__realloc(void *p, size_t size);
char *store__strdup(const char *s);

/* ---- a string-keyed map with entries in insertion order ------------------ */

struct store__map_entry {
    char *key;    /* owned by the map, NUL-terminated */
    uint32_t len; /* bytes of key */
    uint32_t hash;
    uint64_t value; /* the user's: a version, a seq */
    void *data;     /* the user's; not owned by the map */
    size_t size;    /* the user's: bytes at data */
};

struct store__map {
    struct store__map_entry *entries; /* insertion order */
    uint32_t n;
    uint32_t cap;
    uint32_t *slots; /* open addressing: entry index + 1; 0: empty */
    uint32_t mask;   /* slots - 1; slots is a power of two */
};

void store__map_init(struct store__map *m);
/* Frees keys and tables, not entry data. Accepts a zeroed map. */
void store__map_release(struct store__map *m);
/* Forgets every entry (keys freed, not data); keeps the tables. */
void store__map_clear(struct store__map *m);
/* Returns the entry for @key, or NULL. */
struct store__map_entry *store__map_get(const struct store__map *m,
                                        const char *key, size_t len);
/*
 * Returns the entry for @key, adding a zeroed one (*@added = true) when
 * absent; NULL when out of memory. Entry pointers stay valid until the next
 * add.
 */
struct store__map_entry *store__map_put(struct store__map *m, const char *key,
                                        size_t len, bool *added);

/* ---- encoding helpers (store_batch.c) ------------------------------------ */

/* True when @s[0..@len) is valid UTF-8 without NUL bytes. */
bool store__utf8_is_valid(const char *s, size_t len);

/*
 * Parses an RFC 3339 date-time ("2026-11-21T15:04:05.123Z", an offset, any
 * number of fraction digits, years 0001-9999) into microseconds since
 * 1970-01-01 UTC. Returns 0 or -EINVAL.
 */
int store__rfc3339_us(const char *s, int64_t *us);

/* ---- batches ------------------------------------------------------------- */

/* Column lists, in the order the batch encodes them. */
#define STORE__COLS_FEED_EVENTS   "source, seq, received_at, sent_at, raw"
#define STORE__COLS_MATCH_UPDATES "match_id, version, delta, source, seq"
#define STORE__COLS_REJECTED      "id, source, seq, received_at, reason, size, raw"
#define STORE__COLS_MATCHES                                                    \
    "id, version, sport, competition, home, away, start_at, phase, "           \
    "clock_time, clock_running, home_score, away_score, feed, gap, "           \
    "updated_at, snapshot, start_text, msgnr, source"
#define STORE__COLS_INCIDENTS                                                  \
    "match_id, incident_id, type, team, minute, stoppage, player, assist, "    \
    "confirmed, deleted, version"
#define STORE__COLS_OFFSETS "source, acked_seq"

/* One table's rows in COPY binary form, without header and trailer. */
struct store__copy {
    struct actor_buf buf;
    uint32_t rows;
};

/*
 * How the batch reaches the model's images: the daemon passes
 * match_image_json and match_image_unref; tests pass their own.
 */
struct store__image_ops {
    /* Appends the match object of @img's snapshot to @out. */
    void (*json)(const struct match_image *img, struct actor_buf *out);
    /* Drops a reference taken with match_image_ref(). */
    void (*unref)(struct match_image *img);
};

struct store__batch {
    struct store__copy events;       /* feed_events */
    struct store__copy updates;      /* match_updates */
    struct store__copy rejected;     /* rejected_documents without a seq */
    struct store__copy rejected_seq; /* ... with one: their source's
                                        offsets advance over them */
    struct store__map matches;   /* id -> latest image (data, a reference) */
    struct store__map incidents; /* "match\0incident" -> latest row */
    struct store__map offsets;   /* source -> highest seq (value) */
    size_t bytes;                /* encoded bytes held */
    size_t raw_max;              /* rejected raw bytes kept per document */
    struct store__image_ops ops;
    struct actor_buf scratch; /* a row or a snapshot being encoded */
    struct actor_buf key;     /* an incident key being built */
};

/*
 * Returns a new empty batch keeping at most @raw_max bytes of a rejected
 * document (0: STORE_REJECTED_RAW_MAX) and reaching images through @ops
 * (copied), or NULL when out of memory. Release it with store__batch_free().
 */
struct store__batch *store__batch_new(size_t raw_max,
                                      const struct store__image_ops *ops);
void store__batch_free(struct store__batch *b); /* accepts NULL */
/* Empties @b after a commit (releasing the images it held); keeps its
 * buffers. */
void store__batch_reset(struct store__batch *b);

/* Drops @b's feed_events rows, the dead letters that carry a seq and the
 * offset advances over both, keeping the model's rows (updates, latest
 * state) and the other dead letters (no feed sends those again): for a
 * last write that must not tell the sources' next sessions those
 * documents are stored. */
void store__batch_forget_events(struct store__batch *b);

/* Rows in @b (each kept latest-state row counts once). */
uint32_t store__batch_rows(const struct store__batch *b);
bool store__batch_is_empty(const struct store__batch *b);

/*
 * Every add copies what it needs (images excepted: see put_match). Each
 * returns 0, -ENOMEM (@b is unchanged), or -EINVAL for a value the schema
 * cannot hold (a version or seq above INT64_MAX, an unknown enum): our own
 * bug.
 */

/* A feed_events row for @ev (source, seq, times, raw bytes). */
int store__batch_add_event(struct store__batch *b, const struct event *ev);

/*
 * A match_updates row: @up's message for @up->image's version, caused by
 * (@source, @seq) (NULL, 0: no event).
 */
int store__batch_add_update(struct store__batch *b, const struct update *up,
                            const char *source, uint64_t seq);

/*
 * The matches row of @img, kept when newer than the image @b holds for that
 * match: @b takes a reference to @img (dropping the older one) and encodes
 * the row, snapshot included, only when it is written. A match changed a
 * thousand times in a batch costs one snapshot.
 */
int store__batch_put_match(struct store__batch *b, struct match_image *img);

/* The incidents row of @inc (live, at inc->version) in match @match_id,
 * kept when newer than the one @b holds. */
int store__batch_put_incident(struct store__batch *b, const char *match_id,
                              const struct match_incident *inc);

/*
 * Marks incident @incident_id of @match_id removed at @version. A live row
 * for it in @b keeps its data; the stored row keeps its data too.
 */
int store__batch_delete_incident(struct store__batch *b, const char *match_id,
                                 const char *incident_id, uint64_t version);

/*
 * Everything one applied change writes: its match_updates row (caused by
 * @source, @seq as above), the matches row of up->image, an incidents row
 * for each incident it upserted and a removal for each id it deleted.
 * Returns 0, -ENOMEM or -EINVAL; on failure @b may hold part of the change
 * (both are fatal to the store actor, which then rebuilds).
 */
int store__batch_add_change(struct store__batch *b, const struct update *up,
                            const char *source, uint64_t seq);

/* A rejected_documents row with id @id; raw is cut to the batch's limit. */
int store__batch_add_rejected(struct store__batch *b, uint64_t id,
                              const struct store_rejected *rej);

/* Advances @source's acked seq to @seq in this batch (the highest wins). */
int store__batch_advance(struct store__batch *b, const char *source,
                         uint64_t seq);

/*
 * For the writer: appends to @out the COPY binary rows of the latest-state
 * rows @b keeps in @m (b->matches or b->incidents), or of its offset
 * advances (@m NULL; sources with no advance are left out). Uses
 * b->scratch. Returns the number of rows, or -ENOMEM (and @out's error
 * is set: what it holds is short of rows).
 */
long store__batch_encode(struct store__batch *b, const struct store__map *m,
                         struct actor_buf *out);

/* ---- completion tracking ------------------------------------------------- */

struct store__pending;

/*
 * Returns a new tracker, or NULL when out of memory. @release drops the
 * reference the tracker holds on each event (event_unref in the daemon).
 * Release it with store__pending_free().
 */
struct store__pending *store__pending_new(void (*release)(struct event *ev));
/* Releases every event still held. Accepts NULL. */
void store__pending_free(struct store__pending *p);

/*
 * Every call below moves the events (and rejected documents) that are now
 * complete, oldest first per source, into @b: each its row, then the
 * source's advance. Each returns 0, -ENOMEM, or a positive status:
 */
#define STORE_PENDING_STALE   1 /* seq not above the source's last: ignored */
#define STORE_PENDING_UNKNOWN 2 /* no such event held: ignored */
#define STORE_PENDING_REPEAT  3 /* that element was already applied */

/*
 * Holds @ev (seq order per source) until each of its ev->n_matches
 * elements is applied. Consumes one reference to @ev in every case.
 */
int store__pending_event(struct store__pending *p, struct event *ev,
                         struct store__batch *b);

/*
 * Orders rejected document @rej (which has a source and a seq) among its
 * source's events; it is complete at once. @id is its rejected_documents id.
 * Copies @rej (raw cut to @b's limit). -EINVAL without a source or seq.
 */
int store__pending_rejected(struct store__pending *p, uint64_t id,
                            const struct store_rejected *rej,
                            struct store__batch *b);

/* Element @index of @ev (a pointer the tracker holds) was applied. */
int store__pending_applied(struct store__pending *p, const struct event *ev,
                           uint32_t index, struct store__batch *b);

/* Events and rejected documents held, and the highest seq received for
 * @source (0: none). */
size_t store__pending_count(const struct store__pending *p);
uint64_t store__pending_last_seq(const struct store__pending *p,
                                 const char *source);

/* ---- backoff ------------------------------------------------------------- */

/*
 * Full jitter: a uniform wait in [0, min(@cap, @base * 2^@attempt)] ms,
 * drawn from the xorshift state *@rng (any value but 0; advanced).
 */
uint32_t store__backoff_ms(uint32_t attempt, uint32_t base, uint32_t cap,
                           uint64_t *rng);

/* ---- the PostgreSQL writer ----------------------------------------------- */

struct store__pg;

/* Test seam: points in a write where a test may break the connection. */
enum store__pg_step {
    STORE__PG_STEP_COPY_SENT, /* a table's rows sent, before its COPY ends */
    STORE__PG_STEP_ALL_SENT   /* the last byte sent: the server may commit
                                 before we read its reply */
};

struct store__pg_config {
    const char *conninfo;     /* libpq conninfo or URI; copied */
    uint32_t backoff_base_ms; /* 0: 500 */
    uint32_t backoff_cap_ms;  /* 0: 30000 */
    uint64_t seed;            /* jitter; 0: from the clock */
    uint32_t vacuum_rows;     /* staged rows between vacuums; 0: 20000 */
    /* tests only: called at each step of a write; NULL in the daemon */
    void (*hook)(struct store__pg *pg, enum store__pg_step step, void *arg);
    void *hook_arg;
};

/* Outcomes beyond 0 and negative errnos. */
#define STORE_PG_RECOVERED 1 /* connected, ending an outage */

/* What a write did. */
struct store__pg_stats {
    bool safe;         /* written with the statements that skip existing rows */
    uint32_t retried;  /* 1 when a duplicate key sent it round again */
    uint64_t inserted; /* rows inserted or updated */
    uint64_t skipped;  /* rows already stored (or stored newer) */
};

/*
 * Returns a new writer (not connected yet) with a copy of @cfg, or NULL when
 * out of memory. Release it with store__pg_free().
 */
struct store__pg *store__pg_new(const struct store__pg_config *cfg);
void store__pg_free(struct store__pg *pg); /* accepts NULL; disconnects */

bool store__pg_is_up(const struct store__pg *pg);

/*
 * Connects unless connected. @now_ms is the caller's monotonic clock; a call
 * before the time the backoff allows (store__pg_retry_at) returns -EAGAIN
 * without trying. Returns 0 (connected, or already), STORE_PG_RECOVERED
 * (connected after an outage: *@outage_ms is its length, from the first
 * failure to now), -ECONNREFUSED (unreachable), -ENOENT (reachable but the
 * schema is missing), -ENOMEM. On failure the next attempt is scheduled.
 */
int store__pg_connect(struct store__pg *pg, int64_t now_ms, int64_t *outage_ms);

/* When the next connection attempt is allowed (monotonic ms). */
int64_t store__pg_retry_at(const struct store__pg *pg);

/* Failures in a row since the last write or load that went through: the
 * exponent of the backoff. */
uint32_t store__pg_failures(const struct store__pg *pg);

/* Connected with nothing to write: the failures in a row are over too
 * (else an outage that ends while idle leaves the next one's first wait
 * at the cap). */
void store__pg_idle(struct store__pg *pg);

/*
 * Writes @b in one transaction. @b's rows are not changed (its scratch
 * space is used): after a failure the
 * caller keeps it (and may add to it) and writes it again; every row has a
 * deterministic key, and after a failure whose outcome is unknown the next
 * write skips what is already stored. A duplicate key found by a plain
 * write is rolled back and written again the same way, at once.
 * Returns 0 (committed; *@stats filled when not NULL), -ENOTCONN (not
 * connected), -ECONNRESET (the connection failed: reconnect, then write
 * again), -EAGAIN (the server refused for now: retry after the backoff),
 * -EINVAL (the server rejects the batch as it is: a schema mismatch or our
 * own bug; retrying will not help), -ENOMEM.
 */
int store__pg_write(struct store__pg *pg, struct store__batch *b,
                    int64_t now_ms, struct store__pg_stats *stats);

/*
 * Loads what the database holds (one consistent snapshot). @match_id NULL:
 * every source's offset and every match but those whose phase says it is
 * over (ended, abandoned, cancelled, postponed) and whose last change is
 * more than @retention_s old, and the unfinished ones more than @idle_s
 * old (0: none is left out). @match_id set: that match alone
 * (no offsets; no match when it is not stored), whatever its age. Sets
 * *@out to a new load; release it with store_load_free(). Returns 0,
 * -ENOTCONN, -ECONNRESET, -EAGAIN, -EINVAL (a stored value out of range, or
 * @match_id not valid text), -ENOMEM.
 */
int store__pg_load(struct store__pg *pg, int64_t now_ms, const char *match_id,
                   uint32_t retention_s, uint32_t idle_s,
                   struct store_load **out);

/* Ids store__pg_stored() takes in one query. */
#define STORE__PG_STORED_MAX 1000u

/*
 * Sets @stored[i] to whether matches has a row for @ids[i], for @n ids
 * (at most STORE__PG_STORED_MAX, each valid UTF-8; not owned), in one
 * query. Returns 0, -ENOTCONN, -ECONNRESET, -EAGAIN, -EINVAL, -ENOMEM.
 */
int store__pg_stored(struct store__pg *pg, int64_t now_ms,
                     const char *const *ids, size_t n, bool *stored);

/* How a server error is handled, by SQLSTATE (NULL: no server error). */
enum store__pg_class {
    STORE__PG_TRANSIENT, /* the server refused for now: retry after backoff */
    STORE__PG_LOST,      /* the connection is ending */
    STORE__PG_DUPLICATE, /* a key already stored (unique_violation) */
    STORE__PG_PERMANENT  /* the statement can never succeed as it is */
};
enum store__pg_class store__pg_classify(const char *sqlstate);

/* Returns a new load holding nothing (what the database has for a match it
 * does not store), or NULL when out of memory. */
struct store_load *store__load_empty(void);

/* Builds a load from the four result sets of the load query (offsets,
 * matches, incidents, highest rejected id). Returns 0, -EINVAL, -ENOMEM. */
struct pg_result;
int store__load_build(struct pg_result *const sets[4], struct store_load **out);

/* The last error: "SQLSTATE message" or libpq's text; "" when none. Valid
 * until the next call on @pg. */
const char *store__pg_error(const struct store__pg *pg);

/* Tests: rows left in the staging tables (always 0 between writes).
 * Returns 0 or a negative errno. */
int store__pg_staged(struct store__pg *pg, long *rows);

/* The backend's process id and the socket (tests), or 0 / -1. */
int store__pg_backend_pid(const struct store__pg *pg);
int store__pg_socket(const struct store__pg *pg);

#endif /* STORE_STORE_IMPL_H */
