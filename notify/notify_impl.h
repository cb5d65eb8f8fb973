/* notify/notify_impl.h - notify's internals: outbound messages, per-client
 * queues, client requests and the hub (matches, subscriptions, fan-out);
 * HTTP answers and admin requests. No libwebsockets types here (only
 * opaque pointers): the hub and the admin's request logic are driven by the
 * lws glue and, in the unit tests, directly. Service thread only: nothing
 * here is locked. */
#ifndef NOTIFY_NOTIFY_IMPL_H
#define NOTIFY_NOTIFY_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "actor/actor.h"
#include "model/update.h"
#include "notify/notify.h"

/* Writable bytes before every outbound message (lws puts its header there;
 * notify_actor.c checks LWS_PRE fits). */
#define NOTIFY__HEADROOM UPDATE_HEADROOM

/* ---- allocation seam ---------------------------------------------------- */

/*
 * Every allocation in notify goes through these, so tests can fail the Nth
 * one: with notify__alloc_fail_at = N > 0, the Nth allocation from then on
 * fails (returns NULL) and the counter turns off (-1). 0 or -1: never.
 */
extern long notify__alloc_fail_at;
void *notify__malloc(size_t size);
void *notify__calloc(size_t n, size_t size);
void *notify__realloc(void *p, size_t size);

/* ---- outbound messages ------------------------------------------------ */

enum notify__out_kind {
    NOTIFY__OUT_DELTA,    /* a match delta (conflatable) */
    NOTIFY__OUT_SNAPSHOT, /* a match snapshot (conflatable) */
    NOTIFY__OUT_OTHER     /* feed, pong, error: never conflated */
};

/*
 * One serialized message, shared by every client it goes to. Either it
 * wraps a model update (the update's JSON, not copied) or it owns its bytes.
 * Reference-counted without atomics: only the service thread sees it.
 */
struct notify__out {
    uint32_t refs;
    uint8_t kind;      /* enum notify__out_kind */
    uint32_t match;    /* match index (notify__match.index); match kinds */
    uint64_t version;  /* match version after this message; match kinds */
    int64_t sent_ms;   /* the feed's `sent`, or EVENT_ABSENT */
    struct update *up; /* owned reference when wrapping, else NULL */
    void (*up_unref)(struct update *up); /* releases @up */
    const char *data; /* NOTIFY__HEADROOM writable bytes precede it */
    size_t len;
    char bytes[]; /* own storage: headroom, data, NUL */
};

/*
 * Returns a new message of @kind holding a copy of @data (@len bytes), one
 * reference; release it with notify__out_unref(). NULL when out of memory.
 */
struct notify__out *notify__out_new(enum notify__out_kind kind,
                                    const char *data, size_t len);

/*
 * Returns a new message wrapping @up's JSON (kind from up->kind), holding a
 * new reference to @up (the caller keeps its own) released through
 * @up_unref. NULL when out of memory.
 */
struct notify__out *notify__out_wrap(struct update *up,
                                     void (*up_unref)(struct update *up));

static inline struct notify__out *notify__out_ref(struct notify__out *o)
{
    o->refs++;
    return o;
}

/* Drops a reference; the last one frees. Accepts NULL. */
void notify__out_unref(struct notify__out *o);

static inline bool notify__out_is_match(const struct notify__out *o)
{
    return o->kind != NOTIFY__OUT_OTHER;
}

/* ---- per-client queue ---------------------------------------------------- */

/* A FIFO of message references with their total size. Empty: no memory. */
struct notify__queue {
    struct notify__out **slot; /* ring of cap entries, or NULL */
    uint32_t cap;              /* 0 or a power of two */
    uint32_t head;             /* index of the oldest */
    uint32_t len;
    size_t bytes; /* sum of ->len of the queued messages */
};

/* Appends @o, taking a new reference. Returns 0 or -ENOMEM. */
int notify__queue_push(struct notify__queue *q, struct notify__out *o);

/* The @i-th oldest message (i < len); not owned. */
struct notify__out *notify__queue_at(const struct notify__queue *q, uint32_t i);

/* Removes the oldest message and returns it; the caller owns that
 * reference. NULL when empty. */
struct notify__out *notify__queue_pop(struct notify__queue *q);

/*
 * Removes, in order, every message for which @drop(@arg, o) is true,
 * releasing the queue's reference after the call. Returns how many.
 */
uint32_t notify__queue_remove_if(struct notify__queue *q,
                                 bool (*drop)(void *arg,
                                              const struct notify__out *o),
                                 void *arg);

/* Releases every message; keeps the queue usable. Returns how many. */
uint32_t notify__queue_clear(struct notify__queue *q);

/* Frees the slot array when empty and larger than a small idle size. */
void notify__queue_shrink(struct notify__queue *q);

/* Releases every message and the slot array. Returns how many messages. */
uint32_t notify__queue_release(struct notify__queue *q);

/* ---- the shared log of "*" subscribers ------------------------------------
 */

/*
 * Every match message for "*" subscribers, in order, once: each of them
 * keeps only a position (a sequence number) in it. Bounded in bytes: the
 * oldest entries go first; a subscriber whose position fell out of it
 * owes a snapshot of every match instead.
 */
struct notify__log_entry {
    struct notify__out *o; /* owned reference */
    uint64_t pos;          /* bytes of every entry before this one */
    bool owe;              /* a version jump: readers owe a snapshot of
                              o->match instead of this message */
};

struct notify__log {
    struct notify__log_entry *slot; /* ring of cap entries, or NULL */
    uint32_t cap;                   /* 0 or a power of two */
    uint64_t tail;                  /* sequence number of the oldest */
    uint64_t head;                  /* sequence number of the next */
    uint64_t end_pos;               /* pos of the next entry */
    size_t max_bytes;               /* bytes held at most */
};

/* Appends @o (taking a reference), dropping the oldest entries past the
 * bound. Returns 0 or -ENOMEM. */
int notify__log_push(struct notify__log *lg, struct notify__out *o, bool owe);

/* Entry @seq (tail <= seq < head); not owned. */
static inline struct notify__log_entry *
notify__log_at(const struct notify__log *lg, uint64_t seq)
{
    return &lg->slot[seq & (lg->cap - 1)];
}

/* Bytes of the entries from @seq (tail <= seq <= head) to the head. */
static inline uint64_t notify__log_lag(const struct notify__log *lg,
                                       uint64_t seq)
{
    return seq == lg->head ? 0 : lg->end_pos - notify__log_at(lg, seq)->pos;
}

/* Releases every entry and the ring. */
void notify__log_release(struct notify__log *lg);

/* ---- client requests ----------------------------------------------------- */

enum notify__op {
    NOTIFY__OP_SUBSCRIBE,
    NOTIFY__OP_UNSUBSCRIBE,
    NOTIFY__OP_PING
};

struct notify__since {
    const char *id; /* into the request's arena, NUL-terminated */
    uint64_t version;
};

/* What went wrong with a client message; sent back as an `error`. */
struct notify__err {
    const char *reason; /* static: "malformed", "unknown_op", ... */
    char detail[112];   /* NUL-terminated, UTF-8 */
};

/*
 * A parsed client message. The arrays point into storage that the request
 * owns, sized once for the largest frame, and reused by every parse.
 */
struct notify__req {
    enum notify__op op;
    bool all;         /* "matches":"*" */
    const char **ids; /* "matches" list, decoded, de-duplicated */
    uint32_t n_ids;
    struct notify__since *since; /* "since" map, decoded */
    uint32_t n_since;
    const char *ping_id; /* ping: the raw JSON of "id", or NULL */
    size_t ping_id_len;
    /* storage */
    size_t max_len;
    struct notify_json_tok *toks;
    uint32_t max_toks;
    char *arena;
    size_t arena_cap;
    size_t arena_used;
};

/* Prepares @req for messages up to @max_len bytes. Returns 0 or -ENOMEM;
 * release it with notify__req_release() in both cases. */
int notify__req_init(struct notify__req *req, size_t max_len);
void notify__req_release(struct notify__req *req);

/*
 * Parses one client message. Returns 0; -EINVAL with @err filled when the
 * message is malformed or asks for an unknown op. @text need not be
 * NUL-terminated and is not kept, except that req->ping_id points into it.
 */
int notify__req_parse(struct notify__req *req, const char *text, size_t len,
                      struct notify__err *err);

/* Appends {"type":"error","reason":...,"detail":...} to @out. */
void notify__err_json(const struct notify__err *err, struct actor_buf *out);

/* ---- the hub ---------------------------------------------------------------
 */

/* What the hub needs from the model (model/update.h); tests pass fakes. */
struct notify__model {
    void (*update_unref)(struct update *up);
    void (*image_unref)(struct match_image *img);
    void (*snapshot_json)(const struct match_image *img, struct actor_buf *out);
};

struct notify__hub_config {
    uint32_t ring;          /* updates kept per match; 0: no resume */
    uint32_t max_subs;      /* list subscriptions per client */
    uint32_t max_unknown;   /* matches subscribed before first seen */
    uint32_t max_frame_in;  /* bytes per client message */
    uint32_t max_frame_out; /* bytes per batched frame (one message may be
                               larger and then goes alone) */
    size_t backlog_soft;    /* queued bytes before conflating */
    size_t backlog_hard;    /* queued bytes before closing 1013 */
    uint32_t stall_ms;      /* owing messages this long without taking a
                               frame: close 1013 */
    uint32_t ring_idle_ms;  /* no update this long: release the ring */
    uint32_t forget_ms;     /* no update this long and no list subscriber:
                               forget the match */
    const struct notify__model *model; /* not owned */
    /* Asks the transport for a writable callback for @io. */
    void (*want_write)(void *io);
    /* Tells the transport to close @io with @code after what is in flight;
     * the transport calls notify__hub_client_remove() once it is closed. */
    void (*close)(void *io, uint16_t code, const char *reason);
};

struct notify__match;
struct notify__client;

/* One client's subscription to one match (list subscriptions only; "*"
 * clients are kept in the hub's wildcard array instead). */
struct notify__sub {
    struct notify__client *client;
    struct notify__match *match;
    struct notify__sub *next; /* the client's list */
    uint32_t pos;             /* index in match->subs */
};

struct notify__match {
    struct notify__match *hnext; /* hash chain */
    uint64_t hash;
    struct match_image *image; /* latest; owned reference; NULL: unseen */
    uint64_t version;          /* of image; 0 when unseen */
    struct notify__out *snap;  /* snapshot at version, built lazily */
    struct notify__out **ring; /* ring_len updates, versions consecutive,
                                  ending at version; owned references */
    uint32_t ring_head;        /* slot of the oldest */
    uint32_t ring_len;
    struct notify__sub **subs; /* list subscribers; not owned */
    uint32_t n_subs;
    uint32_t cap_subs;
    int64_t touched_ms; /* hub clock at the last update */
    uint32_t index;     /* dense, reused after the match is freed */
    uint32_t id_len;
    char id[]; /* NUL-terminated */
};

/*
 * One WebSocket client. The transport owns the memory (lws per-session
 * data); the hub links it in between client_add and client_remove.
 */
struct notify__client {
    void *io; /* transport handle (struct lws *); not owned */
    struct notify__client *prev, *next; /* hub's list of clients */
    struct notify__queue queue;
    struct notify__sub *subs; /* list subscriptions */
    uint32_t n_subs;
    uint32_t wild_pos; /* index in hub->wild while all */
    uint64_t cursor;   /* while all: next hub->log entry to take */
    bool all;          /* subscribed to "*" */
    bool conflating;   /* match messages become pending snapshots */
    bool write_wanted; /* a writable callback is requested */
    bool closing;      /* closed by the hub; waiting for the transport */
    uint64_t *pending; /* bitmap by match index: a snapshot is owed */
    uint32_t pending_words;
    uint32_t n_pending;      /* bits set */
    uint64_t frames;         /* frames taken by the transport */
    uint64_t frames_at_tick; /* ->frames at the last progress seen */
    int64_t progress_ms;     /* last tick with progress or nothing owed */
};

struct notify__stats {
    uint64_t updates;          /* updates received */
    uint64_t stale;            /* updates ignored: not newer than the image */
    uint64_t snapshots;        /* snapshots serialized by notify */
    uint64_t messages;         /* messages written to clients */
    uint64_t deltas;           /* of which deltas */
    uint64_t frames;           /* WebSocket frames written */
    uint64_t bytes;            /* payload bytes written */
    uint64_t conflated;        /* match messages replaced by a later snapshot */
    uint64_t dropped;          /* messages discarded with a closed client */
    uint64_t slow_closed;      /* clients closed 1013 */
    uint64_t errors;           /* error messages sent to clients */
    uint64_t recovered;        /* resumes served from the ring */
    uint64_t resume_snapshots; /* resumes too old: snapshot instead */
    uint64_t forgotten;        /* matches dropped for being quiet */
};

/* The frame the hub built for one client, valid until frame_done. */
struct notify__frame {
    const char *data; /* NOTIFY__HEADROOM writable bytes precede it */
    size_t len;
    uint32_t n_msgs;
    uint32_t n_deltas;
    int64_t oldest_sent_ms; /* earliest feed `sent` of its deltas, or
                               EVENT_ABSENT */
};

#define NOTIFY__SOURCE_MAX 64 /* bytes of a source name kept */

/* The last batched frame built from the log alone, for the next client
 * at the same position: clients that keep up share one frame per cycle. */
struct notify__shared_frame {
    uint64_t start, head; /* built for cursor start while the log ended at
                             head; 0, 0: none */
    uint64_t end;         /* the cursor after it */
    struct notify__frame f;
    struct actor_buf bytes; /* headroom, then the frame */
};

struct notify__feed_state {
    char source[NOTIFY__SOURCE_MAX + 1];
    uint8_t state;           /* enum match_feed */
    struct notify__out *out; /* the `feed` message for state; owned */
};

struct notify__hub {
    struct notify__hub_config cfg;
    struct notify__match **buckets; /* n_buckets (power of two) chains */
    uint32_t n_buckets;
    uint32_t n_matches;
    struct notify__match **by_index; /* NULL where free */
    uint32_t n_index;                /* high-water mark */
    uint32_t cap_index;
    uint32_t *free_index; /* reusable indexes */
    uint32_t n_free_index;
    uint32_t n_unknown;           /* matches without image (placeholders) */
    struct notify__client **wild; /* clients subscribed to "*" */
    uint32_t n_wild;
    uint32_t cap_wild;
    struct notify__log log; /* what "*" clients read */
    uint64_t flushed;       /* log.head at the last flush */
    struct notify__shared_frame shared;
    struct notify__client *clients; /* every client, newest first */
    uint32_t n_clients;
    struct notify__feed_state *feeds;
    uint32_t n_feeds;
    struct notify__req req;
    struct actor_buf batch;     /* the batched frame being written */
    struct actor_buf tmp;       /* scratch for one message */
    struct notify__out **frame; /* references held by the frame in flight */
    uint32_t n_frame;
    uint32_t cap_frame;
    int64_t now_ms; /* monotonic, as of the last tick */
    struct notify__stats stats;
};

/*
 * Returns a new hub configured by @cfg (copied; cfg->model must outlive
 * the hub); release it with notify__hub_free(). NULL when out of memory.
 */
struct notify__hub *notify__hub_new(const struct notify__hub_config *cfg);

/* Frees the hub and every match; clients must have been removed first.
 * Accepts NULL. */
void notify__hub_free(struct notify__hub *hub);

/*
 * Applies one model update: keeps the image and the update, queues it (or
 * a snapshot) for every list subscriber and appends it to the log of "*"
 * subscribers, who are asked to write at the next notify__hub_flush().
 * Does not consume @up: the hub takes its own references. Returns 0 or
 * -ENOMEM (the hub stays consistent but some clients may miss the update:
 * the caller should fail the actor).
 */
int notify__hub_update(struct notify__hub *hub, struct update *up);

/* Records @source's feed state and tells every client. Returns 0 or
 * -ENOMEM. */
int notify__hub_feed(struct notify__hub *hub, const char *source,
                     unsigned state);

/*
 * Links @c (zeroed memory the caller owns) with transport handle @io, and
 * queues the current feed states for it. Returns 0 or -ENOMEM (then @c is
 * not linked and needs no removal).
 */
int notify__hub_client_add(struct notify__hub *hub, struct notify__client *c,
                           void *io, int64_t now_ms);

/* Unlinks @c and releases everything the hub holds for it. */
void notify__hub_client_remove(struct notify__hub *hub,
                               struct notify__client *c);

/*
 * Handles one complete message from @c (@len bytes, at most
 * cfg.max_frame_in). Bad messages queue an `error` for @c. Returns 0, or
 * -ENOMEM.
 */
int notify__hub_client_rx(struct notify__hub *hub, struct notify__client *c,
                          const char *text, size_t len);

/*
 * Builds the next frame for @c from its queue and owed snapshots: one
 * message as is, several as a JSON array up to cfg.max_frame_out bytes.
 * Asks for another writable callback when more remains. Returns 1 with
 * @frame set (call notify__hub_frame_done() after writing it), 0 when
 * there is nothing to send, or -ENOMEM.
 */
int notify__hub_frame(struct notify__hub *hub, struct notify__client *c,
                      struct notify__frame *frame);

/*
 * When the log moved since the last flush, asks every "*" subscriber for a
 * writable callback, in the same order each time, caught up or not (by
 * its turn the log has usually moved again; if not, it writes nothing).
 * The transport calls it at most once per cycle (its pacing), so each
 * takes one frame per cycle with everything since its last, one cycle
 * after the one before. O(subscribers).
 */
void notify__hub_flush(struct notify__hub *hub);

/* True when the log moved since the last notify__hub_flush(). */
static inline bool notify__hub_flush_due(const struct notify__hub *hub)
{
    return hub->log.head != hub->flushed;
}

/* Releases what the frame held. */
void notify__hub_frame_done(struct notify__hub *hub,
                            struct notify__frame *frame);

/* Closes clients that owe messages and took no frame for cfg.stall_ms,
 * conflates "*" clients too far behind in the log, releases the rings of
 * quiet matches and forgets long-quiet ones. Call about once a second.
 * Returns 0 or -ENOMEM. */
int notify__hub_tick(struct notify__hub *hub, int64_t now_ms);

/*
 * Marks @c closing with @code: drops its queue and owed snapshots and asks
 * the transport to close it. Idempotent.
 */
void notify__hub_close_client(struct notify__hub *hub, struct notify__client *c,
                              uint16_t code, const char *reason);

/* The match @id (NUL-terminated), or NULL. */
struct notify__match *notify__hub_find(const struct notify__hub *hub,
                                       const char *id);

/* ---- HTTP answers (notify_lws.c) ----------------------------------------
 *
 * What both listeners need from lws beyond their own callbacks: logging,
 * the listen address, security headers and writing an answer whose body
 * is in memory. Only the listener's service thread calls these.
 */

struct lws;
struct lws_context_creation_info;
struct lws_protocol_vhost_options;

/* An answer being written: headers first, then the body in pieces. */
struct notify__http_out {
    struct actor_buf body; /* the answer's body; owned */
    size_t sent;           /* body bytes written */
    bool pending;          /* headers written, body not all written */
    bool close;            /* close after the answer: the request's body
                              was not read, so the next request cannot be
                              found on this connection */
};

/* Sends lws's own log lines (warnings and errors) to actor_log. Idempotent,
 * from any thread. */
void notify__lws_logging(void);

/* A blocking actor's lws service loop: the public port's and the admin
 * listener's. Everything runs on the actor's own thread. */
struct notify__service {
    struct actor_ctx *ctx;
    const char *failing; /* the log message of a failure ("notify failing") */
    struct lws_context *lws;
    bool done; /* the actor ended, or failed: leave run() */
    int err;   /* a failure inside a callback: run() returns it */
    /* Called after each lws_service() call (one poll and what it made
     * ready), or NULL. */
    void (*after_service)(struct notify__service *svc);
};

/* Serves lws until @svc is done. Returns svc->err, or -EIO when
 * lws_service() fails. */
int notify__service_run(struct notify__service *svc);

/* Makes run() return promptly. */
void notify__service_end(struct notify__service *svc);

/* A failure inside an lws callback, where an error cannot be returned to
 * the runtime: logs it (svc->failing, in @what), keeps the first error for
 * run() to return, and ends the loop. */
void notify__service_fail(struct notify__service *svc, int err,
                          const char *what);

/* Sets the options notify gives a WebSocket client's socket once it is
 * established (send buffer, unsent-bytes low water mark; 0 in @cfg leaves
 * the kernel's). Returns 0, or -errno of the first that failed. */
int notify__client_socket_options(int fd, const struct notify_config *cfg);

/* Sets @info to listen on @host:@port: NULL, "", "0.0.0.0" or "::" means
 * every interface; an IPv4 literal binds that address only. */
void notify__lws_listen(struct lws_context_creation_info *info,
                        const char *host, int port);

#define NOTIFY__SECURITY_HEADERS 4

/* Fills @h (NOTIFY__SECURITY_HEADERS entries, linked) with the headers
 * every answer carries: @csp as the Content-Security-Policy, nosniff, no
 * referrer, no framing. @csp is not copied. */
void notify__lws_security_headers(struct lws_protocol_vhost_options *h,
                                  const char *csp);

/* The mount serving the files under @root at "/" (index.html by default,
 * revalidated on every use). @root is not copied. */
struct lws_http_mount notify__lws_file_mount(const char *root);

/*
 * Writes the headers of an answer with @status and @content_type whose body
 * is @o->body (Content-Length), with Cache-Control: no-store and, when not
 * NULL, an Allow header; with @head_only the body is not sent. Asks for a
 * writable callback for the body. Returns 0, or -1: close the connection.
 */
int notify__http_answer(struct lws *wsi, struct notify__http_out *o,
                        unsigned status, const char *content_type,
                        const char *allow, bool head_only);

/*
 * From LWS_CALLBACK_HTTP_WRITEABLE: writes the next piece of @o's body.
 * Returns 0 (more to come, or nothing pending), 1 when the answer is
 * complete and the connection may carry the next request, or -1: close
 * (an error, or the answer is complete and @o->close is set).
 */
int notify__http_answer_more(struct lws *wsi, struct notify__http_out *o);

/* Frees @o's body and resets it. */
void notify__http_out_release(struct notify__http_out *o);

/* ---- admin requests (notify_admin.c) ------------------------------------- */

#define NOTIFY__ADMIN_BODY_MAX 4096 /* default request body bound */

/* One admin request: the route it hit, its body, then its answer. */
struct notify__admin_req {
    const struct notify_route *route; /* matched; not owned */
    bool head;                        /* HEAD: answer without the body */
    bool refused;                     /* the body passed the bound */
    bool answered;                    /* status and out are final */
    uint32_t max_body;
    struct actor_buf in;         /* the request body, NUL-terminated */
    int status;                  /* the answer's HTTP status */
    const char *content_type;    /* static */
    char allow[40];              /* a 405's Allow value, or "" */
    struct notify__http_out out; /* the answer's body */
};

/*
 * Starts request @method @path (its Content-Length @content_length, -1 when
 * absent) against @cfg's routes, on zeroed @r. Returns 1 when @r is
 * answered already (404, 405, 411, 413), 0 when the route runs once the
 * body is in (notify__admin_body, then notify__admin_finish; a request
 * without a body: finish at once), or -ENOMEM.
 */
int notify__admin_begin(const struct notify_admin_config *cfg,
                        struct notify__admin_req *r, const char *method,
                        const char *path, int64_t content_length);

/* Adds @len bytes of the body; past the bound the request is refused
 * (413). Returns 0 or -ENOMEM. */
int notify__admin_body(struct notify__admin_req *r, const char *data,
                       size_t len);

/*
 * Runs the route on the body received (unless refused: 413) and fills the
 * answer. Idempotent once answered. Returns 0, or -ENOMEM (the route or
 * the answer ran out of memory: the actor fails).
 */
int notify__admin_finish(struct notify__admin_req *r);

/* Frees what @r holds and zeroes it. */
void notify__admin_req_release(struct notify__admin_req *r);

#endif /* NOTIFY_NOTIFY_IMPL_H */
