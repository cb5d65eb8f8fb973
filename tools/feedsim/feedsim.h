/* tools/feedsim/feedsim.h - the simulator's parts, shared by its files and
 * by tests/feedsim_test.c. */
#ifndef TOOLS_FEEDSIM_FEEDSIM_H
#define TOOLS_FEEDSIM_FEEDSIM_H

/*
 * DESIGN
 * The pure parts (the match generator, the XML writer and the reply
 * scanner, the malformed documents, the reference model, the in-flight
 * window, the latency histogram) take no sockets and no clock, so the unit
 * test drives them directly; feedsim_run.c and main.c add the sockets.
 *
 * A match element travels as ingest/event.h's struct event_match, the
 * project's one vocabulary for "what a <match> said" (absent values: NULL
 * strings, EVENT_ABSENT integers). Only the type is shared: the generator,
 * the writer and the reference model are feedsim's own code, so that the
 * simulator stays an independent oracle for the stages it tests.
 */

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "actor/actor.h"
#include "ingest/event.h"

/* ---- deterministic randomness ------------------------------------------ */

/* splitmix64: a fast, well-mixed stream from any 64-bit state. */
static inline uint64_t feedsim_rng_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* A uniform integer in [0, @n); 0 when @n is 0. */
static inline uint32_t feedsim_rng_below(uint64_t *state, uint32_t n)
{
    return n ? (uint32_t)(((feedsim_rng_next(state) >> 32) * n) >> 32) : 0;
}

/* A uniform double in [0, 1). */
static inline double feedsim_rng_unit(uint64_t *state)
{
    return (double)(feedsim_rng_next(state) >> 11) * 0x1.0p-53;
}

/* The seed of stream @stream (a match index, a source, a purpose) under
 * the run's @seed: independent streams, so one part of a run does not move
 * another's randomness. */
uint64_t feedsim_rng_seed(uint64_t seed, uint64_t purpose, uint64_t stream);

/* ---- arrays ------------------------------------------------------------ */

/*
 * Makes room for one more item in a growable array: @arr (an lvalue
 * pointer to items) holds @n of room for @cap (an lvalue size_t). Doubles
 * the room when full. Evaluates to 0, or -ENOMEM with the array unchanged.
 */
#define FEEDSIM_MORE(arr, n, cap)                                              \
    ((n) < (cap) ? 0 : feedsim_more((void *)&(arr), &(cap), sizeof(*(arr))))
int feedsim_more(void *arrp, size_t *cap, size_t size);

/* ---- names ------------------------------------------------------------- */

struct feedsim_club {
    const char *name;
    const char *competition;
};

extern const struct feedsim_club feedsim_clubs[];
extern const size_t feedsim_n_clubs;
extern const char *const feedsim_surnames[];
extern const size_t feedsim_n_surnames;

/* ---- the match generator ----------------------------------------------- */

struct feedsim_gen_config {
    uint64_t seed;
    uint32_t tick_s;       /* game seconds between clock updates, >= 1 */
    int64_t start_epoch;   /* fixture `start` of a run's first kickoff, s */
    const char *id_prefix; /* match ids are <prefix><index>; copied */
};

/* A match's mean simulated length, from the fixture to full time: 2.5 min
 * to kickoff, 2 x 45 min, 8 min of stoppage, a 15 min break. A match with
 * --match-seconds S is played in about S real seconds. */
#define FEEDSIM_NOMINAL_MATCH_MS 6930000

struct feedsim_gen;

/*
 * Returns a new generator for match @index: its fixture, squads and the
 * plan of its whole match, all fixed by (@cfg->seed, @index) alone.
 * Release it with feedsim_gen_free(). NULL when out of memory.
 */
struct feedsim_gen *feedsim_gen_new(const struct feedsim_gen_config *cfg,
                                    uint32_t index);
void feedsim_gen_free(struct feedsim_gen *g);

/* The match id (not owned; lives as long as @g). */
const char *feedsim_gen_id(const struct feedsim_gen *g);

/* True once the final whistle has been produced. */
bool feedsim_gen_is_done(const struct feedsim_gen *g);

/* Simulated ms (since the run's start) of the next step; INT64_MAX when
 * done. */
int64_t feedsim_gen_next_at(const struct feedsim_gen *g);

/*
 * Produces the next step of the match as one match element and advances.
 * Returns the element (not owned: valid until the next call on @g or its
 * free), or NULL when the match is done. Never allocates.
 */
const struct event_match *feedsim_gen_step(struct feedsim_gen *g);

/*
 * A plausible element of this match that must never be applied: the next
 * msgnr, a 99-99 score and an incident "<index>-bad", for the malformed
 * documents (a receiver that wrongly applied one shows it in its state).
 * Not owned; valid until the next call on @g.
 */
const struct event_match *feedsim_gen_decoy(struct feedsim_gen *g);

/* ---- writing SFP/1 ----------------------------------------------------- */

/* Appends @s (@len bytes of UTF-8) escaped for an XML attribute value in
 * double quotes: & < > " ' and TAB LF CR as references; other control
 * bytes, which XML 1.0 cannot carry, as U+FFFD. */
void feedsim_xml_escape(struct actor_buf *b, const char *s, size_t len);

/* Appends ` name="value"` (escaped); nothing when @value is NULL. */
void feedsim_xml_attr(struct actor_buf *b, const char *name, const char *value);

/* Appends one <match> element for @m. */
void feedsim_xml_match(struct actor_buf *b, const struct event_match *m);

/* Appends `<event seq=.. [source=..] [sent=..]>`; @source and @sent may be
 * NULL. */
void feedsim_xml_event_open(struct actor_buf *b, uint64_t seq,
                            const char *source, const char *sent);
/* Appends `</event>` and the line break between documents. */
void feedsim_xml_event_close(struct actor_buf *b);

/* Appends the login document (with an XML declaration); @token may be
 * NULL. */
void feedsim_xml_login(struct actor_buf *b, const char *source,
                       const char *token);

/* Formats @ms since the epoch as RFC 3339 UTC with milliseconds. */
void feedsim_rfc3339(char out[32], int64_t ms);

/* ---- reading the server's replies -------------------------------------- */

enum feedsim_reply_kind {
    FEEDSIM_REPLY_LOGIN, /* <login result=.. [source=..] [acked=..]
                            [reason=..]/> */
    FEEDSIM_REPLY_ACK,   /* <ack seq=../> */
    FEEDSIM_REPLY_ERROR, /* <error [seq=..] reason=../> */
    FEEDSIM_REPLY_CT,    /* <ct/> */
    FEEDSIM_REPLY_OTHER  /* any other root element: ignored */
};

struct feedsim_reply {
    enum feedsim_reply_kind kind;
    char result[16]; /* login's result; "" when absent; truncated */
    char reason[48]; /* "" when absent; truncated */
    char source[72];
    uint64_t seq;   /* ack, error; valid when has_seq */
    uint64_t acked; /* login; valid when has_acked */
    bool has_seq;
    bool has_acked;
};

#define FEEDSIM_REPLY_MAX 65536 /* bytes of one unfinished reply we buffer */

/*
 * Frames the server's replies from a byte stream cut anywhere: documents
 * back to back, with optional declarations, comments and whitespace.
 */
struct feedsim_scan {
    struct actor_buf buf; /* unconsumed bytes from off */
    size_t off;
};

void feedsim_scan_init(struct feedsim_scan *s);
/* Forgets the buffered bytes (a new connection). */
void feedsim_scan_reset(struct feedsim_scan *s);
void feedsim_scan_release(struct feedsim_scan *s);

/* Appends received bytes. Returns 0 or -ENOMEM. */
int feedsim_scan_push(struct feedsim_scan *s, const void *data, size_t len);

/*
 * Takes the next complete reply out of the buffer. Returns 1 (*@out set),
 * 0 (it needs more bytes), -EPROTO (the bytes cannot be framed as XML
 * replies), or -EMSGSIZE (an unfinished reply exceeds FEEDSIM_REPLY_MAX).
 * After an error the stream is lost: reset before reuse.
 */
int feedsim_scan_next(struct feedsim_scan *s, struct feedsim_reply *out);

/* ---- malformed documents ----------------------------------------------- */

enum feedsim_bad_kind {
    FEEDSIM_BAD_NOT_WELL_FORMED, /* error: not_well_formed */
    FEEDSIM_BAD_ATTRIBUTE,       /* error: bad_attribute */
    FEEDSIM_BAD_ELEMENT,         /* error: bad_element (a repeated child) */
    FEEDSIM_BAD_MISSING_SEQ,     /* error: missing_seq */
    FEEDSIM_BAD_TOO_LARGE,       /* error: too_large */
    FEEDSIM_BAD_JUNK,            /* bytes between documents: counted */
    FEEDSIM_BAD_N
};

/* "not_well_formed", "bad_attribute", ...: the server's reason names,
 * "junk" for junk. */
const char *feedsim_bad_name(enum feedsim_bad_kind kind);
/* Parses a name of feedsim_bad_name(). Returns 0 or -EINVAL. */
int feedsim_bad_parse(const char *name, enum feedsim_bad_kind *kind);

/* The document carries a seq attribute: it takes the next seq number, so
 * the good events after it stay above it whatever the server decides. */
bool feedsim_bad_has_seq(enum feedsim_bad_kind kind);

/* Per SFP/1 section 3 the seq is used up for certain (a rejection for
 * content: acks must cover it). not_well_formed and too_large may or may
 * not use theirs, depending on how far the receiver read: never waited on. */
bool feedsim_bad_is_seq_used(enum feedsim_bad_kind kind);

/*
 * Appends one malformed document of @kind to @b, built around @decoy (see
 * feedsim_gen_decoy). @seq is its seq when feedsim_bad_has_seq(). The
 * variant within the kind comes from @rng. too_large documents are
 * @max_doc bytes plus up to 4 KiB (the receiver's limit, at most a quarter
 * of a runaway's).
 */
void feedsim_bad_write(struct actor_buf *b, enum feedsim_bad_kind kind,
                       uint64_t *rng, uint64_t seq,
                       const struct event_match *decoy, size_t max_doc);

/* ---- the reference model ----------------------------------------------- */

/*
 * The state every match must end in, built by applying exactly the SFP/1
 * rules to the accepted match elements, in order: msgnr duplicates are
 * skipped, `full` replaces the whole match, `delta` changes the children
 * (and, within a child, the attributes) it names, incidents are inserted
 * (whole), updated (attributes given) or deleted by id, and kept in
 * first-seen order.
 */
struct feedsim_model;

#define FEEDSIM_SKIPPED 1 /* apply: a duplicate msgnr, nothing changed */

/* Returns a new empty model; release it with feedsim_model_free(). NULL
 * when out of memory. */
struct feedsim_model *feedsim_model_new(void);
void feedsim_model_free(struct feedsim_model *m);

/* Applies @el (not kept). Returns 0, FEEDSIM_SKIPPED, or -ENOMEM (the
 * model is then unusable). */
int feedsim_model_apply(struct feedsim_model *m, const struct event_match *el);

/* Appends {"<id>":MATCH,...} for every match in first-seen order (MATCH as
 * feedsim_run_expect describes). Errors surface in @out->err. */
void feedsim_model_json(const struct feedsim_model *m, struct actor_buf *out);

/* Appends the MATCH object of @id. Returns 0, or -ENOENT (nothing
 * appended) when the model has never seen it. */
int feedsim_model_match_json(const struct feedsim_model *m, const char *id,
                             struct actor_buf *out);

/* ---- the in-flight window ---------------------------------------------- */

/*
 * The documents of one source not yet acknowledged, oldest first, each
 * with its seq (0: a document without one, sent once and never resent) and
 * whether the server must ack it. A send cursor walks it: after a
 * reconnect it goes back to the oldest so everything unacknowledged is sent
 * again.
 */
struct feedsim_doc {
    char *data; /* owned */
    size_t len;
    uint64_t seq;    /* 0: none */
    int64_t sent_ns; /* last time it was handed to the socket, ns */
    uint32_t sends;  /* times handed to the socket */
    int8_t bad;      /* enum feedsim_bad_kind; -1: a good event */
    bool required;   /* the server must ack it */
};

struct feedsim_window {
    struct feedsim_doc *docs; /* ring of cap */
    size_t cap;
    size_t head; /* ring index of the oldest */
    size_t len;
    size_t cursor;   /* docs before it (from the oldest) were sent on this
                        connection */
    size_t required; /* docs with ->required in the window */
};

void feedsim_window_init(struct feedsim_window *w);
void feedsim_window_release(struct feedsim_window *w);

/* Appends @doc; the window takes @doc->data in every case. Returns 0 or
 * -ENOMEM. */
int feedsim_window_push(struct feedsim_window *w,
                        const struct feedsim_doc *doc);

/* The @i-th oldest (not owned), or NULL past the end. */
struct feedsim_doc *feedsim_window_at(struct feedsim_window *w, size_t i);

/* The next document to hand to the socket (advancing the cursor and
 * skipping seq-less documents already sent), or NULL. */
struct feedsim_doc *feedsim_window_next(struct feedsim_window *w);

/*
 * Drops, oldest first, every document with 0 < seq <= @acked and every
 * seq-less one already sent, calling @done (if not NULL) for each with
 * @arg before freeing it. Returns how many were dropped.
 */
size_t feedsim_window_ack(struct feedsim_window *w, uint64_t acked,
                          void (*done)(const struct feedsim_doc *doc,
                                       void *arg),
                          void *arg);

/* Drops the oldest document (not acknowledged: e.g. a malformed one that
 * cannot open a connection). */
void feedsim_window_drop_oldest(struct feedsim_window *w);

/* Sends everything again from the oldest (a new connection). */
void feedsim_window_rewind(struct feedsim_window *w);

/* True when a document the server must ack is still in the window. */
bool feedsim_window_has_required(const struct feedsim_window *w);

/* ---- latency ----------------------------------------------------------- */

/*
 * A log-linear histogram of durations in microseconds: exact below 64 us,
 * then 32 buckets per power of two (about 3% wide), up to about 2^40 us.
 */
#define FEEDSIM_HIST_SUB     32
#define FEEDSIM_HIST_BUCKETS (64 + 35 * FEEDSIM_HIST_SUB)

struct feedsim_hist {
    uint64_t counts[FEEDSIM_HIST_BUCKETS];
    uint64_t n;
    uint64_t max_us;
};

void feedsim_hist_add(struct feedsim_hist *h, uint64_t us);
/* The value (us) at quantile @q in [0, 1]: the upper edge of its bucket,
 * never above the maximum seen; 0 when empty. */
uint64_t feedsim_hist_quantile(const struct feedsim_hist *h, double q);

/* ---- a run ------------------------------------------------------------- */

enum feedsim_sent {
    FEEDSIM_SENT_WALL, /* `sent` is the wall clock when the event was made */
    FEEDSIM_SENT_SIM,  /* the simulated time: the bytes are reproducible */
    FEEDSIM_SENT_NONE  /* no `sent` */
};

struct feedsim_config {
    const char *host; /* not owned, like every pointer here */
    const char *port;
    uint32_t matches;
    uint32_t sources; /* 1 .. matches */
    const char *source_prefix;
    const char *const *tokens; /* [sources]; NULL entries: no token */
    struct feedsim_gen_config gen;
    double multi;         /* chance that an event carries several matches */
    double match_seconds; /* > 0: pace by simulated time, a match in ~this */
    double rate;          /* else events/s in total; 0: as fast as possible */
    uint64_t events;      /* events in total; 0: unbounded */
    double duration_s;    /* stop producing after this; 0: unbounded */
    bool no_login;        /* name the source on each event instead */
    enum feedsim_sent sent;
    uint32_t split;           /* max bytes per write; 0: write what fits */
    double bad_rate;          /* malformed documents per good event */
    uint32_t bad_kinds;       /* bit (1 << kind) per enabled kind */
    size_t max_doc;           /* the receiver's document limit, bytes */
    uint32_t window;          /* documents in flight per source, >= 1 */
    uint64_t reconnect_after; /* drop after N new events; 0: never */
    double heartbeat_s;       /* <ct/> after this long without output; 0: off */
    double peer_timeout_s; /* reconnect when the server is silent this long */
    double ack_timeout_s;  /* wait this long at the end for acks */
    int verbosity;         /* 0 errors only, 1 connections, 2 debug */
    const sigset_t *wait_mask;         /* the mask while waiting (ppoll) */
    const volatile sig_atomic_t *stop; /* set by a signal handler */
};

struct feedsim_run;

/* Returns a new run of @cfg (copied; the strings it points to must outlive
 * the run): generators, sources, the reference model; release it with
 * feedsim_run_free(). NULL with errno set (ENOMEM, or EHOSTUNREACH when
 * the host or port did not resolve). */
struct feedsim_run *feedsim_run_new(const struct feedsim_config *cfg);
void feedsim_run_free(struct feedsim_run *r);

#define FEEDSIM_INCOMPLETE 1 /* run: ended with documents unacknowledged */

/*
 * Plays the run until every match has ended (or --events, --duration) and
 * everything sent is acknowledged, the ack timeout passes, a login is
 * refused, or *cfg->stop is set. Returns 0 (every source connected and
 * everything sent was acknowledged, whatever stopped the run),
 * FEEDSIM_INCOMPLETE (see feedsim_run_failure), or -ENOMEM.
 */
int feedsim_run_loop(struct feedsim_run *r);

/* Why the run did not complete, or "" (not owned). */
const char *feedsim_run_failure(const struct feedsim_run *r);

/* Appends the one-line stats object (see --help). */
void feedsim_run_stats(const struct feedsim_run *r, struct actor_buf *out);

/*
 * Appends the expected state (--expect), one JSON object:
 *
 *   {"matches": {"<id>": MATCH, ...},
 *    "sources": {"<name>": {"last_seq": N, "last_event_seq": M}, ...}}
 *
 * MATCH is the match object of a WebSocket `snapshot` (ws-protocol.md)
 * without version, feed and gap, in first-seen order:
 *
 *   {"id": "sim:1:0",
 *    "fixture": {"sport", "competition", "home", "away", "start"},
 *    "status": {"phase": "ended"},
 *    "clock": {"time": "94:12", "running": false},
 *    "score": {"home": 2, "away": 1},
 *    "incidents": [{"id", "type", "team", "minute", "stoppage", "player",
 *                   "assist", "confirmed": true}, ...]}
 *
 * Incidents are whole, live ones only (deleted ones are gone), in
 * first-seen order. An absent attribute is omitted, and so is a part the
 * match never had (or a later full message reset); incidents is always
 * there. It is what SFP/1's rules make of the good events sent, malformed
 * documents excluded. last_seq is the highest seq sent on the source (any
 * document), last_event_seq the highest of a good event: the server's
 * acked seq ends between the two.
 */
void feedsim_run_expect(const struct feedsim_run *r, struct actor_buf *out);

#endif /* TOOLS_FEEDSIM_FEEDSIM_H */
