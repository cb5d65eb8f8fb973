/* notify/notify.h - the public port: live match state over WebSocket, the
 * live page and health endpoints over HTTP, on one libwebsockets context
 * owned by one blocking actor; and the admin listener, another. */
#ifndef NOTIFY_NOTIFY_H
#define NOTIFY_NOTIFY_H

/*
 * DESIGN
 * Notify is one blocking actor (registered `notify`) whose thread runs the
 * libwebsockets service loop; no other thread touches lws. Other actors send
 * it messages (the runtime wakes it through lws_cancel_service()), and it
 * drains its mailbox inside the loop.
 *
 * The model sends every applied update (struct update, model/update.h) as a
 * MODEL_MSG_UPDATE; notify keeps per match the latest image (to serialize a
 * snapshot at any time) and a ring of recent updates (to resume a client
 * with `since`), and fans each update out to the subscribers as the one
 * reference-counted JSON buffer the model built. Per client it keeps a queue
 * of references bounded in bytes: a client that is behind gets several
 * messages in one frame (a JSON array), then is conflated to the latest
 * snapshot per match, and finally closed with 1013 (ws-protocol.md).
 *
 * The same port serves the live page (web/), /healthz and /readyz. Metrics
 * go to the process registry (actor_metric_*), rendered by the admin
 * listener (below, a second lws context on its own actor), never on this
 * port.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "actor/actor.h"

/* ---- configuration ----------------------------------------------------- */

struct notify_config {
    const char *host;       /* listen address (IP or interface name);
                               NULL: every interface */
    int port;               /* HTTP + WebSocket port (default 8080) */
    const char *web_root;   /* directory served at / (default "web") */
    uint32_t max_clients;   /* WebSocket connections in total */
    uint32_t max_subs;      /* match subscriptions per connection */
    uint32_t max_unknown;   /* ids subscribed before they exist, in total */
    uint32_t ring;          /* recent updates kept per match for `since` */
    uint32_t max_frame_in;  /* bytes in a client frame; larger: close 1009 */
    uint32_t max_frame_out; /* bytes in one batched server frame */
    uint32_t backlog_soft;  /* bytes queued per client before conflating */
    uint32_t backlog_hard;  /* bytes queued per client before closing 1013 */
    uint32_t stall_ms;      /* owing messages and taking none this long:
                               close 1013 */
    uint32_t ring_idle_s;   /* a match quiet this long drops its ring
                               (resumes get a snapshot) */
    uint32_t forget_s;      /* a match quiet this long, with no list
                               subscriber, is forgotten */
    uint32_t ping_idle_s;   /* ping a connection idle this long */
    uint32_t ping_grace_s;  /* then close it after this long unanswered */
    uint32_t sndbuf;        /* SO_SNDBUF of WebSocket sockets; 0: kernel's */
    uint32_t notsent_lowat; /* TCP_NOTSENT_LOWAT: a socket is writable
                               again once less than this is still unsent,
                               so what a slow reader has not taken waits
                               in notify (batched, conflated), not in the
                               kernel; 0: the kernel's */
    uint32_t flush_ms;      /* ms: "*" subscribers are written at most this
                               often (one frame each with all since the
                               last); under load, once per service cycle */
};

/* Fills @cfg with the defaults (notify_actor.c lists them). */
void notify_config_default(struct notify_config *cfg);

/* ---- the actor --------------------------------------------------------- */

/*
 * The notify actor. Spawn it with .thread = true, .name = "notify" and
 * .arg = a struct notify_config (not owned; must outlive the actor; NULL:
 * defaults). init binds the port and fails with a negative errno when it
 * cannot.
 */
extern const struct actor_ops notify_ops;

/* ---- the admin listener -------------------------------------------------- */

/*
 * A second HTTP listener, for operators: its own lws context on its own
 * blocking actor (registered `admin`), serving a static directory at / and
 * the routes the application gives it. Notify owns the lws code; the
 * application owns what the routes say (metrics, the actor tree, the log
 * level), so notify stays ignorant of every other stage.
 */

/*
 * Answers one request to @path. Called on the admin's thread, one request
 * at a time; it may block briefly (a slow handler delays only the admin
 * port). @body is the request body (@body_len bytes, at most the
 * configured bound; NUL-terminated; "" for a GET), not owned. The handler
 * appends the response body to @out and may set *@content_type (a static
 * string; default "text/plain; charset=utf-8"). Returns the HTTP status
 * (100-599), or a negative errno: -ENOMEM ends the admin actor (its
 * supervisor restarts it), any other answers 500.
 */
typedef int (*notify_route_fn)(const char *body, size_t body_len,
                               struct actor_buf *out,
                               const char **content_type);

struct notify_route {
    const char *method; /* "GET", "PUT", "POST" or "DELETE" */
    const char *path;   /* exact path, from the root: "/metrics" */
    notify_route_fn handle;
};

struct notify_admin_config {
    const char *host;     /* listen address; NULL: 127.0.0.1 (loopback
                             only); "0.0.0.0" or "::": every interface */
    int port;             /* 0: a free port (logged) */
    const char *web_root; /* directory served at / (index.html, ...);
                             NULL: none */
    const struct notify_route *routes; /* not owned; outlive the actor */
    size_t n_routes;
    uint32_t max_body; /* request body bytes; larger: 413. 0: 4096 */
};

/*
 * The admin actor. Spawn it with .thread = true, .name = "admin" and .arg =
 * a struct notify_admin_config (not owned; it and everything it points to
 * must outlive the actor). init binds the port and fails with a negative
 * errno when it cannot. Every response of a route carries Cache-Control:
 * no-store; every response a strict Content-Security-Policy (the page's own
 * files only, images also from data: URLs).
 */
extern const struct actor_ops notify_admin_ops;

/* ---- messages ---------------------------------------------------------- */

/*
 * Notify takes, besides its own messages below, the model's
 * MODEL_MSG_UPDATE (struct model_update_msg, model/update.h: an applied
 * update or a re-sent snapshot; its `up` is kept by reference, never
 * copied) and MODEL_MSG_FEED_NOTICE (a source's feed state, sent on to
 * every client as a `feed` message).
 */
enum notify_msg_type {
    NOTIFY_MSG_READY = 0x400 /* struct notify_ready_msg */
};

/* What /readyz waits for. */
enum notify_ready_what {
    NOTIFY_READY_DATABASE = 1u << 0, /* the store reaches PostgreSQL */
    NOTIFY_READY_MODEL = 1u << 1     /* stored matches are loaded */
};

/* A readiness input changed: /readyz answers 200 once every bit is ok. */
struct notify_ready_msg {
    struct actor_msg hdr; /* NOTIFY_MSG_READY */
    uint32_t what;        /* enum notify_ready_what bits */
    bool ok;
};

/* Returns a new NOTIFY_MSG_READY; release it with actor_msg_free() unless a
 * send took it. NULL when out of memory. */
struct actor_msg *notify_ready_msg_new(uint32_t what, bool ok);

/* ---- JSON reading (shared with tools/wsbench) -------------------------- */

/*
 * A strict RFC 8259 tokenizer that allocates nothing: it fills a caller's
 * array with tokens in document order. An object's children are its keys
 * and values alternating; an array's its elements. Offsets index the text.
 */
enum notify_json_type {
    NOTIFY_JSON_OBJECT = 1,
    NOTIFY_JSON_ARRAY,
    NOTIFY_JSON_STRING,
    NOTIFY_JSON_NUMBER,
    NOTIFY_JSON_TRUE,
    NOTIFY_JSON_FALSE,
    NOTIFY_JSON_NULL
};

#define NOTIFY_JSON_ESCAPED  1u /* string: holds escapes (decode it) */
#define NOTIFY_JSON_FRACTION 2u /* number: has a fraction or exponent */

#define NOTIFY_JSON_MAX_DEPTH 32 /* nesting deeper than this is refused */

struct notify_json_tok {
    uint8_t type;   /* enum notify_json_type */
    uint8_t flags;  /* NOTIFY_JSON_ESCAPED, NOTIFY_JSON_FRACTION */
    uint32_t start; /* first byte; strings: after the opening quote */
    uint32_t len;   /* bytes; strings: without the quotes */
    uint32_t next;  /* index of the first token after this subtree */
    uint32_t size;  /* objects: members; arrays: elements; else 0 */
};

/*
 * Tokenizes the single JSON value in @text (@len bytes; surrounding
 * whitespace allowed) into @toks (room for @max). Returns the number of
 * tokens (> 0); -EINVAL when @text is not valid JSON or not valid UTF-8;
 * -ENOSPC when it needs more than @max tokens; -E2BIG when nested deeper
 * than NOTIFY_JSON_MAX_DEPTH or longer than 4 GiB. @where, when not NULL,
 * gets the byte offset where parsing stopped (the error's position).
 */
int notify_json_parse(const char *text, size_t len,
                      struct notify_json_tok *toks, uint32_t max,
                      size_t *where);

/*
 * Decodes string token @tok of @text into @out (@cap bytes, NUL-terminated)
 * and sets *@out_len (may be NULL). Returns 0, -ENOSPC when it does not
 * fit, -EINVAL when @tok is not a string.
 */
int notify_json_str(const char *text, const struct notify_json_tok *tok,
                    char *out, size_t cap, size_t *out_len);

/* True when @tok is a string whose decoded value is @lit. */
bool notify_json_eq(const char *text, const struct notify_json_tok *tok,
                    const char *lit);

/* Reads @tok as a non-negative integer. Returns 0, -EINVAL (not an integer
 * number), -ERANGE (negative or above UINT64_MAX). */
int notify_json_u64(const char *text, const struct notify_json_tok *tok,
                    uint64_t *value);

/* Index of the value of member @key in object token @obj, or 0 when it has
 * none (or @obj is not an object). The first member with that key wins. */
uint32_t notify_json_get(const char *text, const struct notify_json_tok *toks,
                         uint32_t obj, const char *key);

#endif /* NOTIFY_NOTIFY_H */
