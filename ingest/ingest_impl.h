/* ingest/ingest_impl.h - the ingest stage's internals, shared inside
 * ingest/: the pure core (the stream framer, the document parser, the event
 * builder, the tokens table, rings) and the actors built on it (listener,
 * conn, parser actor, source). */
#ifndef INGEST_INGEST_IMPL_H
#define INGEST_INGEST_IMPL_H

/*
 * DESIGN
 * The connection actor reads its socket into a buffer and hands the bytes to
 * its framer; the framer cuts them into documents (pointer, length), zero
 * copy when a document lies whole in one read, and copies only the part of
 * a document that spans reads. Each document goes (copied into a message)
 * to the connection's parser actor, which turns it into an ingest__result:
 * a login, a heartbeat, a new struct event, an unknown root, or a rejection
 * with its reason and, when it could be read, its seq. The parser reads
 * most documents in one long expat stream and the others alone, with the
 * same answer either way (ingest_parse.c says how). Nothing here touches
 * actors, clocks or sockets, so everything is tested by calling it.
 *
 * Memory is bounded per connection: the framer holds at most one document
 * of at most the limit (it keeps only the first INGEST_DEAD_LETTER_MAX
 * bytes of a larger one and gives up on a runaway), and the parser's
 * scratch and expat's buffers are bounded by the document it parses; both
 * let go of memory a rare large document made them take.
 *
 * Every allocation in this core goes through ingest__mem, a seam tests use
 * to count bytes and to fail the Nth allocation.
 */

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "actor/actor.h"
#include "ingest/event.h"
#include "ingest/ingest.h"

/* ---- limits ------------------------------------------------------------ */

#define INGEST_DOC_MAX_DEFAULT (1u << 20)   /* bytes in one document */
#define INGEST_DOC_MAX_LIMIT   (256u << 20) /* largest limit accepted */
#define INGEST_RUNAWAY_FACTOR  4u           /* open past 4x the limit: fatal */
#define INGEST_DEAD_LETTER_MAX (64u << 10)  /* bytes kept of a too_large doc */
#define INGEST_DEPTH_MAX       32u          /* element depth, root = 1 */
#define INGEST_ATTRS_MAX       32u          /* attributes on one element */
#define INGEST_VALUE_MAX       1024u        /* bytes in one attribute value */
#define INGEST_SOURCE_MAX      64u          /* bytes in a source name */
#define INGEST_TOKEN_MAX       256u         /* bytes in a login token */
#define INGEST_VERSION_MAX     16u          /* bytes in a login version */

/* ---- allocation seam --------------------------------------------------- */

/*
 * The allocator of events, framer buffers, parser scratch and expat. Tests
 * replace the functions (before creating objects, restoring them after
 * freeing those objects) to count memory or fail the Nth allocation;
 * production never touches it. Not thread-safe to change.
 */
struct ingest__mem {
    void *(*malloc_fn)(size_t size);
    void *(*realloc_fn)(void *ptr, size_t size);
    void (*free_fn)(void *ptr);
};

extern struct ingest__mem ingest__mem; /* default: malloc, realloc, free */

static inline void *ingest__malloc(size_t size)
{
    return ingest__mem.malloc_fn(size);
}

static inline void *ingest__realloc(void *ptr, size_t size)
{
    return ingest__mem.realloc_fn(ptr, size);
}

static inline void ingest__free(void *ptr)
{
    ingest__mem.free_fn(ptr);
}

/* True when @c may start an XML name (ASCII letters, '_', ':', and any
 * byte of a multi-byte UTF-8 character: expat judges those). */
static inline bool ingest__is_name_start(unsigned char c)
{
    return (unsigned)((c | 0x20) - 'a') < 26u || c == '_' || c == ':' ||
           c >= 0x80;
}

/* ---- events (ingest_event.c) ------------------------------------------- */

/* The writable views of a newly allocated event, for the one who fills it. */
struct ingest__event_mem {
    struct event *ev;
    struct event_match *matches;      /* ev->n_matches entries, zeroed */
    struct event_incident *incidents; /* @n_incidents entries, zeroed */
    char *strings;                    /* @strings bytes, uninitialised */
};

/*
 * Allocates one event with room for @n_matches matches, @n_incidents
 * incidents and @strings bytes of strings, and copies the @raw_len bytes
 * at @raw into it (followed by a NUL that raw_len does not count). Sets
 * ev->refs = 1, ev->raw, ev->raw_len, ev->matches, ev->n_matches,
 * ev->size; every other field is zero. Fills @out. Returns 0, -ENOMEM, or
 * -E2BIG when the whole would exceed UINT32_MAX bytes. The caller owns the
 * reference; release it with event_unref().
 */
int ingest__event_alloc(struct ingest__event_mem *out, uint32_t n_matches,
                        uint32_t n_incidents, size_t strings, const char *raw,
                        size_t raw_len);

/* ---- the framer (ingest_frame.c) --------------------------------------- */

enum ingest__frame_kind {
    INGEST__FRAME_DOC = 1,      /* a whole document */
    INGEST__FRAME_TOO_LARGE = 2 /* a document over the limit: its head */
};

struct ingest__frame {
    const char *data;    /* the document, or the head of a too_large one;
                            valid until the next framer call; not owned */
    size_t len;          /* bytes at data */
    size_t size;         /* bytes of the whole document (> len: too_large) */
    int64_t received_ms; /* @now_ms of the input that held its last byte */
};

/* Counters since ingest__frame_init(); bytes = docs_bytes + oversize_bytes
 * + junk_bytes + space_bytes + ingest__frame_pending(). */
struct ingest__frame_stats {
    uint64_t bytes;          /* input bytes consumed */
    uint64_t docs;           /* INGEST__FRAME_DOC frames */
    uint64_t docs_bytes;     /* bytes in them */
    uint64_t oversize;       /* INGEST__FRAME_TOO_LARGE frames */
    uint64_t oversize_bytes; /* bytes in those documents, discarded or not */
    uint64_t junk_bytes;     /* bytes outside documents, not whitespace */
    uint64_t space_bytes;    /* whitespace between documents */
};

struct ingest__framer {
    /* configuration */
    size_t doc_max; /* larger documents are too_large */
    size_t keep;    /* bytes kept of a too_large document */
    /* the input being consumed; not owned */
    const char *in; /* next byte to scan */
    const char *in_end;
    int64_t in_ms;
    /* the open document */
    const char *start; /* its first byte in this input, or NULL when it
                          began in an earlier one */
    size_t doc_len;    /* its bytes in earlier inputs */
    uint32_t depth;    /* elements open */
    uint32_t brackets; /* '[' open in a declaration (DOCTYPE) */
    uint8_t state;     /* the scanner's state (ingest_frame.c) */
    uint8_t ret;       /* state after a comment or PI (in a DOCTYPE) */
    uint8_t quote;     /* the quote that closes the value being read */
    uint8_t last;      /* in a start tag: the last byte outside values */
    uint8_t run;       /* closing bytes seen ("--", "]]", "?"), or the
                          bytes of "[CDATA[" matched */
    bool oversize;     /* over doc_max: only its head is kept */
    bool acc_out;      /* the last frame pointed into acc */
    int err;           /* sticky: -EMSGSIZE (runaway) or -ENOMEM */
    /* the part of the open document that arrived in earlier inputs: all
       of it while it is within doc_max, else its first @keep bytes */
    char *acc;
    size_t acc_len;
    size_t acc_cap;
    struct ingest__frame_stats stats;
};

/*
 * Sets up @f for documents of at most @doc_max bytes (0: the default;
 * INGEST_DOC_MAX_LIMIT at most). Allocates nothing. Returns 0 or -EINVAL.
 */
int ingest__frame_init(struct ingest__framer *f, size_t doc_max);

/* Frees what @f holds. @f may be zeroed or half set up; accepts NULL. */
void ingest__frame_release(struct ingest__framer *f);

/*
 * Gives @f the next @len bytes of the stream, read at @now_ms (wall clock,
 * ms). Not copied: they must stay unchanged until ingest__frame_next()
 * returns 0 or an error. Call it only when the previous input is consumed
 * or the framer has failed (anything else is our bug: it aborts).
 */
void ingest__frame_input(struct ingest__framer *f, const char *data, size_t len,
                         int64_t now_ms);

/*
 * Scans the input for the next document. Returns INGEST__FRAME_DOC or
 * INGEST__FRAME_TOO_LARGE with *@out filled (its data valid until the next
 * call on @f, or until the input changes); 0 when the input is consumed
 * (an open document waits in @f for more); -EMSGSIZE when a document is
 * still open after INGEST_RUNAWAY_FACTOR times the limit (the stream
 * cannot be framed again: close it); -ENOMEM. Errors are sticky.
 */
int ingest__frame_next(struct ingest__framer *f, struct ingest__frame *out);

/* Bytes of a document begun and not ended (what an end of stream cuts). */
size_t ingest__frame_pending(const struct ingest__framer *f);

/* ---- the parser (ingest_parse.c) --------------------------------------- */

enum ingest__reason {
    INGEST__REASON_NONE,
    INGEST__REASON_NOT_WELL_FORMED,
    INGEST__REASON_TOO_LARGE,
    INGEST__REASON_BAD_ATTRIBUTE,
    INGEST__REASON_BAD_ELEMENT,
    INGEST__REASON_MISSING_SEQ,
    INGEST__REASON_UNAUTHENTICATED,
    INGEST__REASON_COUNT
};

/* The SFP/1 name of @reason ("not_well_formed", ...); "none" when out of
 * range. */
const char *ingest__reason_name(enum ingest__reason reason);

enum ingest__doc_kind {
    INGEST__DOC_LOGIN = 1, /* <login>: res->login */
    INGEST__DOC_CT,        /* <ct/>: a heartbeat */
    INGEST__DOC_EVENT,     /* <event>: res->event */
    INGEST__DOC_UNKNOWN,   /* another root: ignored; res->root names it */
    INGEST__DOC_REJECTED   /* res->reason, res->seq, res->detail */
};

struct ingest__limits {
    size_t doc_max;     /* bytes; 0: INGEST_DOC_MAX_DEFAULT */
    uint32_t depth_max; /* element depth; 0: INGEST_DEPTH_MAX */
    uint32_t attrs_max; /* attributes per element; 0: INGEST_ATTRS_MAX */
    uint32_t value_max; /* bytes per attribute value; 0: INGEST_VALUE_MAX */
    bool standalone;    /* parse every document alone, never in the
                           stream (tests compare the two) */
};

/* One document to parse. */
struct ingest__doc {
    const char *data; /* not owned; need not be NUL-terminated */
    size_t len;
    int64_t received_ms; /* becomes event->received_ms */
    const char *source;  /* the source the connection is bound to, or
                            NULL; not owned */
    bool truncated;      /* @data is the head of a too_large document:
                            only its seq is read */
};

struct ingest__result {
    enum ingest__doc_kind kind;
    struct event *event;         /* EVENT: a new event; the result holds its
                                    one reference (take it, or release the
                                    result) */
    enum ingest__reason reason;  /* REJECTED */
    uint64_t seq;                /* the event's seq when it could be read
                                    (also for a rejection), else 0; 0 too
                                    for an event naming another source
                                    than the bound one */
    uint32_t unknown_elements;   /* ignored elements (a subtree counts 1) */
    uint32_t unknown_attributes; /* ignored attributes of known elements */
    struct {
        char source[INGEST_SOURCE_MAX + 1];   /* never empty */
        char token[INGEST_TOKEN_MAX + 1];     /* "" when absent */
        char version[INGEST_VERSION_MAX + 1]; /* "" when absent */
        bool has_token;
        bool has_version;
    } login;                                  /* LOGIN */
    char event_source[INGEST_SOURCE_MAX + 1]; /* EVENT: the event's own
                                 `source` attribute, or "" */
    char root[32];    /* UNKNOWN: the root's name, maybe cut */
    bool was_login;   /* REJECTED: a <login> (its peer waits for a reply) */
    char detail[128]; /* REJECTED: why, for people; printable ASCII */
};

struct ingest__parser;

/*
 * Returns a new parser with @lim (NULL: every default), or NULL when out of
 * memory or @lim is out of range. Release it with ingest__parser_free().
 */
struct ingest__parser *ingest__parser_new(const struct ingest__limits *lim);

/* Frees @p. Accepts NULL. */
void ingest__parser_free(struct ingest__parser *p);

/*
 * Parses one document into *@res (overwritten; release it with
 * ingest__result_release()). @doc and its bytes are not kept (an event
 * holds a copy of them as raw). An event's source is @doc->source or else
 * the event's own `source` attribute; one that names neither is rejected
 * as unauthenticated, and an attribute that names another source than
 * @doc->source is a bad_attribute. The first violation is the answer.
 * Returns 0 with res->kind set to any kind, or -ENOMEM (res holds nothing;
 * @p stays usable).
 */
int ingest__parse(struct ingest__parser *p, const struct ingest__doc *doc,
                  struct ingest__result *res);

/* How a parser has been reading its documents. */
struct ingest__parse_stats {
    uint64_t streamed;     /* documents answered in the stream */
    uint64_t alone;        /* documents parsed alone */
    uint64_t reparsed;     /* of those, after the stream declined them */
    uint64_t stream_opens; /* streams started (each a parser reset) */
};

/* Fills @out with @p's counters since ingest__parser_new(). */
void ingest__parser_stats(const struct ingest__parser *p,
                          struct ingest__parse_stats *out);

/* Drops what @res holds (its event reference) and clears it. */
void ingest__result_release(struct ingest__result *res);

/*
 * Reads an RFC 3339 date-time (`2026-11-21T15:04:05.123Z`, an offset
 * instead of Z, 't' and 'z' accepted, digits past milliseconds ignored) of
 * @len bytes into milliseconds since the epoch. Returns true when @s is
 * one, with *@ms set.
 */
bool ingest__rfc3339_ms(const char *s, size_t len, int64_t *ms);

/* True when @s (@len bytes) is a valid source name: 1 to INGEST_SOURCE_MAX
 * bytes of [A-Za-z0-9._:-]. */
bool ingest__source_is_valid(const char *s, size_t len);

/* ---- rings (ingest_ring.c) --------------------------------------------- */

/* A growable FIFO of fixed-size elements (windows, outboxes, job queues). */
struct ingest__ring {
    char *v;     /* cap elements of size bytes; owned */
    size_t size; /* bytes per element */
    size_t head; /* index of the oldest */
    size_t len;
    size_t cap;
};

/* Sets up an empty ring of @size-byte elements. Allocates nothing. */
void ingest__ring_init(struct ingest__ring *r, size_t size);

/* Frees the ring's memory (not what its elements point to). */
void ingest__ring_release(struct ingest__ring *r);

/* Returns room for one more element at the back (its bytes undefined),
 * or NULL when out of memory (the ring is unchanged). */
void *ingest__ring_push(struct ingest__ring *r);

/* The @i-th oldest element, or NULL past the end. Not owned. */
void *ingest__ring_at(const struct ingest__ring *r, size_t i);

/* Drops the oldest element; the ring must not be empty. */
void ingest__ring_pop(struct ingest__ring *r);

/* ---- outboxes (ingest_ring.c) ------------------------------------------ */

/*
 * Ordered sends that survive a full mailbox: a message goes out at once
 * when nothing waits before it, else it queues; ACTOR_MSG_RESUME flushes
 * the queue in order. A message to an actor that is gone is freed and
 * counted in ->dropped (its sender learns of the death by its monitor or
 * link, not here).
 */
struct ingest__outbox {
    struct ingest__ring q; /* struct ingest__outbox_item */
    uint64_t dropped;      /* messages freed because their receiver died */
};

void ingest__outbox_init(struct ingest__outbox *ob);
/* Frees every queued message and the queue. */
void ingest__outbox_release(struct ingest__outbox *ob);

/* Sends @msg to @to after everything queued before it. Consumes @msg in
 * every case. Returns 0 (sent, queued or dropped) or -ENOMEM. */
int ingest__outbox_send(struct actor_ctx *ctx, struct ingest__outbox *ob,
                        uint64_t to, struct actor_msg *msg);

/* Sends what it can of the queue, in order (on ACTOR_MSG_RESUME). */
void ingest__outbox_flush(struct actor_ctx *ctx, struct ingest__outbox *ob);

static inline bool ingest__outbox_is_empty(const struct ingest__outbox *ob)
{
    return ob->q.len == 0;
}

/* ---- tokens (ingest_tokens.c) ------------------------------------------ */

/* The sources that may log in and their tokens, immutable once loaded. */
struct ingest__tokens;

/*
 * Parses @len bytes of a tokens file: one `source token` a line, separated
 * by blanks; blank lines and lines starting with '#' are ignored. A source
 * is a valid source name (ingest__source_is_valid), a token 1 to
 * INGEST_TOKEN_MAX bytes of printable ASCII without blanks, and no source
 * appears twice. Sets *@out to a new table (release it with
 * ingest__tokens_free()). Returns 0, -EINVAL with *@line set to the first
 * bad line (1-based) and @why to a reason, or -ENOMEM.
 */
int ingest__tokens_parse(const char *text, size_t len,
                         struct ingest__tokens **out, unsigned *line,
                         const char **why);

/* Reads and parses the file at @path (ingest__tokens_parse), logging what
 * is wrong with it. Returns 0 or a negative errno. */
int ingest__tokens_load(const char *path, struct ingest__tokens **out);

/* True when @source may log in with @token: both known and equal. The
 * comparison takes the same time whatever the token's bytes. */
bool ingest__tokens_is_valid(const struct ingest__tokens *t, const char *source,
                             const char *token);

size_t ingest__tokens_count(const struct ingest__tokens *t);

/* Frees @t. Accepts NULL. */
void ingest__tokens_free(struct ingest__tokens *t);

/* ---- the stage's environment (ingest.c) -------------------------------- */

/*
 * What every ingest actor reads: the settings with defaults filled in, the
 * tokens, and the supervisor specs of the subtree. Immutable once built;
 * it outlives the subtree.
 */
struct ingest__env {
    struct ingest_config cfg;      /* defaults filled in */
    struct ingest__tokens *tokens; /* owned; NULL: no tokens configured */
    struct actor_child_spec children[3];
    struct actor_sup_spec sup;
    struct actor_sup_spec sources_sup;
    struct actor_sup_spec conns_sup;
};

/*
 * Fills @env from @cfg (copied; the strings it points to must outlive
 * @env), loads the tokens and builds the subtree's specs. Registers the
 * stage's metrics. Returns 0 or a negative errno (see ingest_child_spec);
 * on error @env holds nothing.
 */
int ingest__env_init(struct ingest__env *env, const struct ingest_config *cfg);

/* Frees what @env holds. The subtree must be gone. */
void ingest__env_release(struct ingest__env *env);

/* The stage's counters (registered by ingest__env_init; each may be NULL). */
struct ingest__metrics {
    struct actor_metric *bytes;      /* bytes read from feed sockets */
    struct actor_metric *documents;  /* documents framed */
    struct actor_metric *events;     /* events accepted (not duplicates) */
    struct actor_metric *junk;       /* bytes outside documents */
    struct actor_metric *duplicates; /* events and seqs seen before */
    struct actor_metric *refused;    /* connections over the limit */
    struct actor_metric *rejected[INGEST__REASON_COUNT]; /* by reason */
    struct actor_metric *unknown_root;
    struct actor_metric *unknown_element;
    struct actor_metric *unknown_attribute;
};

extern struct ingest__metrics ingest__m;

/* Feed connections alive or being started (the connection gauge and the
 * listener's limit). */
extern _Atomic uint32_t ingest__conns_alive;
/* Source actors alive (the --max-sources limit). */
extern _Atomic uint32_t ingest__sources_alive;
/* Source actors whose last seq passed on is above their acked seq. */
extern _Atomic uint32_t ingest__sources_pending;
/*
 * Set once by ingest_drain() (cleared by ingest__env_init() for tests).
 * The listener and the conns look at it at every message they handle and
 * at start; INGEST_MSG_DRAIN only wakes them up to look.
 */
extern _Atomic bool ingest__draining;

/* True once ingest_drain() has been called. Any thread. */
static inline bool ingest__is_draining(void)
{
    return atomic_load_explicit(&ingest__draining, memory_order_relaxed);
}

/* ---- messages between the ingest actors -------------------------------- */

enum {
    INGEST_MSG_DOC = 0x100, /* struct ingest__doc_msg: conn -> parser */
    INGEST_MSG_PARSED,      /* the same message back, res filled in */
    INGEST_MSG_BIND,        /* struct ingest__bind_msg: conn -> source */
    INGEST_MSG_BOUND,       /* struct ingest__bound_msg: source -> conn */
    INGEST_MSG_REPLACED,    /* struct actor_msg: source -> its old conn */
    INGEST_MSG_ACK,         /* struct ingest__ack_msg: source -> conn */
    INGEST_MSG_FEED,        /* struct ingest__feed_msg: conn -> source */
    INGEST_MSG_HEARTBEAT,   /* struct actor_msg: a conn's own timer */
    INGEST_MSG_SILENCE,     /* struct actor_msg: a conn's own timer */
    INGEST_MSG_LINGER,      /* struct actor_msg: a closing conn's deadline */
    INGEST_MSG_ACCEPT,      /* struct actor_msg: the listener's retry */
    INGEST_MSG_DRAIN,       /* struct actor_msg: ingest_drain() -> listener
                               and conns (a wake-up: see ingest__draining) */
};

/*
 * One framed document, to the conn's parser actor and back: the parser
 * fills in ->res, retypes the message INGEST_MSG_PARSED and sends it to the
 * conn that sent it. One allocation for the round trip; its free releases
 * ->res (the event reference).
 */
struct ingest__doc_msg {
    struct actor_msg hdr;
    struct ingest__result res;          /* PARSED: the outcome */
    int64_t received_ms;                /* wall clock of its last byte */
    size_t size;                        /* bytes of the whole document */
    bool truncated;                     /* data is a too_large head */
    char source[INGEST_SOURCE_MAX + 1]; /* the bound source, or "" */
    size_t len;                         /* bytes at data */
    char data[];
};

/* Returns a new document message holding a copy of @frame's bytes, or
 * NULL when out of memory. */
struct ingest__doc_msg *ingest__doc_msg_new(const struct ingest__frame *frame,
                                            bool truncated, const char *source);

/* A conn asks its source actor to take it as the source's connection. */
struct ingest__bind_msg {
    struct actor_msg hdr; /* INGEST_MSG_BIND; from: the conn */
    bool login;           /* the conn answers a login with the reply */
};

/* The source actor took the conn: @acked is the source's durable seq,
 * @last_seen the highest it has seen (durable or not: where dedupe starts;
 * only this conn moves it from now on). */
struct ingest__bound_msg {
    struct actor_msg hdr; /* INGEST_MSG_BOUND; from: the source */
    uint64_t acked;
    uint64_t last_seen;
};

/* Every event of the source with seq <= @seq is durable. @again: write
 * the ack even when it is not above the last one (a duplicate's). */
struct ingest__ack_msg {
    struct actor_msg hdr; /* INGEST_MSG_ACK; from: the source */
    uint64_t seq;
    bool again;
};

/* The conn's view of its peer: silent past the limit, or sending again. */
struct ingest__feed_msg {
    struct actor_msg hdr; /* INGEST_MSG_FEED; from: the conn */
    bool stale;
};

/*
 * What a conn sends its source actor besides the messages above: the very
 * messages the store takes, which the source forwards to `store` once it
 * has judged them (dedupe, order):
 *   STORE_MSG_EVENT     an accepted event (struct store_event_msg)
 *   STORE_MSG_REJECTED  a rejected document that used up its seq
 *                       (struct store_rejected_msg, rej.has_seq)
 */

/* ---- the actors -------------------------------------------------------- */

extern const struct actor_ops ingest__listener_ops; /* arg: the env */
extern const struct actor_ops ingest__conn_ops;     /* arg: conn_arg */
extern const struct actor_ops ingest__parser_ops;   /* arg: the env */
extern const struct actor_ops ingest__source_ops;   /* arg: source_arg */

/*
 * Starts a conn for the connected socket @fd under the dynamic supervisor
 * @sup, with @peer (an address for logs; copied). Counts it in
 * ingest__conns_alive until it is gone. Consumes @fd in every case (a conn
 * that does not start closes it). Sets *@pid when not NULL. Returns 0 or
 * a negative errno.
 */
int ingest__conn_start(const struct ingest__env *env, uint64_t sup, int fd,
                       const char *peer, uint64_t *pid);

/*
 * Finds the source actor of @name, starting it under `ingest.sources` when
 * there is none. Sets *@pid. Returns 0; -EUSERS when max_sources are alive
 * already; -ESRCH when the sources' supervisor is not running; -ENOMEM.
 */
int ingest__source_get(struct actor_ctx *ctx, const struct ingest__env *env,
                       const char *name, uint64_t *pid);

/*
 * A source's figures that outlive its actor, as its metric series do: the
 * state gauges and the monotonic time of its last byte (read by the
 * last-seen gauge at render time). One per source name, never freed.
 */
struct ingest__seen {
    _Atomic int64_t last_ms; /* actor_now_ms() of the last byte received */
    struct actor_metric *state[3]; /* by enum match_feed */
    struct ingest__seen *next;
    char name[INGEST_SOURCE_MAX + 1];
};

/* The record of @name, created (with its series) on first use. Returns
 * NULL when out of memory. Any thread. Not owned. */
struct ingest__seen *ingest__seen_get(const char *name);

/* Sets the state gauges of @seen: 1 for @state, 0 for the others. */
void ingest__seen_state(struct ingest__seen *seen, enum match_feed state);

#endif /* INGEST_INGEST_IMPL_H */
