/* ingest/ingest_conn.c - one feed connection: socket I/O, framing, and the
 * SFP/1 session. */
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/sockios.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ingest/ingest_impl.h"
#include "store/store.h"

/*
 * DESIGN
 * The conn owns the socket, the framer and the session; its parser actor
 * owns the expat parser. Every message ends in pump(), which hands framed
 * documents to the parser while there is room, writes what is queued, and
 * arms the one-shot watch for what the conn can take next (EPOLLIN only
 * when it would read, EPOLLOUT only when output waits). Not arming is how
 * the conn stops reading: the kernel's buffers fill and TCP pushes back
 * on the peer.
 *
 * Reads go into one buffer that the framer consumes in place; the next
 * read waits until it is consumed, and each readiness reads at most
 * READS_PER_TURN buffers, so a fast peer takes turns with the rest.
 *
 * Room: before the session has a source, one document at a time is with
 * the parser (a login or self-naming event changes how the next ones are
 * read); while binding, none; once bound, up to INFLIGHT_DOCS and
 * INFLIGHT_BYTES, and only while the accepted-but-unacked events (the
 * window, plus what the parser holds) stay under the configured window.
 * An ack from the source frees window entries and so reopens reading. A
 * message that meets a full mailbox waits in the outbox, and reading
 * stops until it has gone.
 *
 * Closing: the session's replies (a refused login, a last error, the last
 * <ack>) are flushed first, then the write side is shut (FIN) and what the
 * peer still sends is read and dropped until it closes too, all within
 * LINGER_MS. Closing a socket with unread input would send an RST instead
 * of the FIN, and an RST may make the peer's kernel throw away replies it
 * has received but not yet read. A peer that stops reading is cut
 * off two ways: while it sends, once OUT_MAX bytes pile up here (the
 * kernel's share is fixed at SNDBUF, not autotuned to megabytes); while it
 * is silent, when a whole silence period passes without the kernel's send
 * queue draining (a dead network path looks the same, and TCP alone
 * would take many minutes to give up). Silence: no byte for the silence
 * limit makes a bound source stale (told to the source actor; live again
 * on the next byte) and closes a connection that never named a source;
 * time spent not reading by our own choice does not count.
 *
 * Draining (ingest_drain): the conn stops reading for good, so whatever
 * the peer sends from then on stays in the kernel, unacked, for the feed
 * to resend after its next login. What it has read is finished as usual:
 * the framer's input is cut into documents as the window lets it, the
 * parser's answers are handled, a pending bind completes, messages wait
 * in the outbox for room. Once all of that is done and every accepted
 * event is acked, the conn writes that last <ack> and closes. A drain
 * with the store down never completes here: the caller's deadline ends
 * it with a shutdown, and the feed resends what was not acked.
 */

#define RBUF_SIZE      (32u << 10)  /* bytes per read */
#define READS_PER_TURN 4            /* reads per readiness */
#define INFLIGHT_DOCS  64           /* documents with the parser, bound */
#define INFLIGHT_BYTES (1u << 20)   /* ... and their bytes */
#define PARSER_MAILBOX 256          /* > INFLIGHT_DOCS: a send never fails */
#define OUT_MAX        (256u << 10) /* unwritten bytes before we give up */
#define OUT_RETAIN     (16u << 10)  /* an empty output buffer keeps this */
#define SNDBUF         (64u << 10)  /* the kernel's send buffer, bytes */
#define LINGER_MS      2000         /* a closing conn's time to flush */

enum phase {
    P_OPEN,    /* no source yet: one document at a time */
    P_BINDING, /* waiting for the source actor's BOUND */
    P_BOUND,   /* bound: documents pipelined, events to the source */
    P_CLOSING  /* flushing the last replies */
};

/* What the listener hands a new conn; the supervisor frees it after the
 * conn is gone (conn_arg_free). */
struct conn_arg {
    const struct ingest__env *env; /* not owned */
    int fd;                        /* -1 once the conn owns it */
    char peer[64];
};

/* An event or seq-using rejection waiting for its ack. */
struct pending {
    uint64_t seq;
    size_t bytes;
};

struct conn {
    const struct ingest__env *env;   /* not owned */
    const struct ingest_config *cfg; /* &env->cfg */
    const char *peer;                /* in the arg */
    int fd;                          /* owned */
    uint64_t watch;
    uint32_t armed;  /* events the watch waits for; 0: fired */
    bool done;       /* exiting: nothing more to do */
    bool draining;   /* reads nothing more; closes once all is acked */
    bool wr_shut;    /* closing: FIN sent, input dropped until EOF */
    const char *why; /* why it closes, for the log */
    /* input */
    char *rbuf; /* RBUF_SIZE bytes the framer reads in place */
    struct ingest__framer framer;
    uint64_t junk; /* framer junk bytes counted so far */
    bool input;    /* the framer has unconsumed input in rbuf */
    bool eof;
    int64_t last_in_ms; /* monotonic */
    int64_t opened_ms;  /* monotonic: the start, for the login deadline */
    uint64_t seen_seq;  /* bound: the source's highest seq seen (at BOUND,
                           then what this conn passed it): a seq at or
                           below it is a duplicate */
    /* the parser actor */
    uint64_t parser;
    uint32_t inflight;
    size_t inflight_bytes;
    /* the session */
    enum phase phase;
    bool login; /* bound by a login (it gets the reply) */
    bool stale; /* the source was told we are silent */
    char source[INGEST_SOURCE_MAX + 1]; /* "" before binding */
    uint64_t source_pid;
    uint64_t source_mon;
    struct ingest__seen *seen;    /* not owned */
    struct ingest__doc_msg *held; /* owned: the event that named the
                                     source, while binding */
    uint64_t store;               /* `store`, looked up when first needed */
    /* the window */
    struct ingest__ring window; /* struct pending, in arrival order */
    size_t window_bytes;
    uint64_t acked_out; /* the highest ack written */
    /* output */
    struct actor_buf out;
    size_t out_off;      /* bytes of out already written */
    int64_t last_out_ms; /* monotonic */
    uint64_t written;    /* bytes handed to the kernel, in all */
    uint64_t taken;      /* what the peer had taken of them (written less
                            the kernel's queue) at the last silent check
                            with output waiting; UINT64_MAX: none since
                            its last byte */
    struct ingest__outbox outbox;
    uint64_t t_linger;
};

/* ---- output -------------------------------------------------------------- */

static void say(struct conn *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void say(struct conn *c, const char *fmt, ...)
{
    char line[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    ACTOR_ASSERT(n > 0 && (size_t)n < sizeof(line));
    actor_buf_add(&c->out, line, (size_t)n);
    c->last_out_ms = actor_now_ms();
}

static void say_error(struct conn *c, uint64_t seq, const char *reason)
{
    if (seq) {
        say(c, "<error seq=\"%llu\" reason=\"%s\"/>\r\n",
            (unsigned long long)seq, reason);
    } else {
        say(c, "<error reason=\"%s\"/>\r\n", reason);
    }
}

/* Ends the conn now, whatever is unwritten. */
static void close_now(struct actor_ctx *ctx, struct conn *c, const char *why)
{
    if (c->done) {
        return;
    }
    c->done = true;
    c->phase = P_CLOSING;
    if (!c->why) {
        c->why = why;
    }
    actor_exit_self(ctx, ACTOR_EXIT_NORMAL);
}

/* Stops taking input; the conn ends once its replies are out. */
static void begin_close(struct actor_ctx *ctx, struct conn *c, const char *why)
{
    if (c->phase == P_CLOSING) {
        return;
    }
    c->phase = P_CLOSING;
    c->why = why;
    if (c->held) {
        actor_msg_free(&c->held->hdr);
        c->held = NULL;
    }
    struct actor_msg *m = actor_msg_new(sizeof(*m), INGEST_MSG_LINGER);
    if (m) {
        c->t_linger = actor_send_after(ctx, LINGER_MS, m);
    }
    if (!c->t_linger) {
        close_now(ctx, c, why);
    }
}

/* Writes what it can. Returns 0 or -ENOMEM. */
static int flush_out(struct actor_ctx *ctx, struct conn *c)
{
    if (c->out.err) {
        return c->out.err;
    }
    while (c->out_off < c->out.len && !c->done) {
        ssize_t n = send(c->fd, c->out.data + c->out_off,
                         c->out.len - c->out_off, MSG_NOSIGNAL);
        if (n > 0) {
            c->out_off += (size_t)n;
            c->written += (uint64_t)n;
        } else if (errno == EAGAIN) {
            break;
        } else if (errno != EINTR) {
            actor_log(ctx, ACTOR_LOG_DEBUG, "feed connection write failed",
                      "peer", c->peer, "error", strerror(errno), NULL);
            close_now(ctx, c, "write failed");
        }
    }
    size_t left = c->out.len - c->out_off;
    if (left == 0) {
        if (c->out.cap > OUT_RETAIN) {
            actor_buf_release(&c->out);
        }
        actor_buf_reset(&c->out);
        c->out_off = 0;
    } else if (left > OUT_MAX) {
        ACTOR_LOG_RL(ctx, ACTOR_LOG_WARN, "feed peer does not read: closing",
                     "peer", c->peer, "source", c->source, "unwritten",
                     ACTOR_LOG_INT(left), NULL);
        close_now(ctx, c, "peer does not read");
    } else if (c->out_off > c->out.len / 2) {
        memmove(c->out.data, c->out.data + c->out_off, left);
        c->out.len = left;
        c->out_off = 0;
    }
    return 0;
}

/* ---- room, reading and arming -------------------------------------------- */

static bool window_has_room(const struct conn *c)
{
    return c->window.len + c->inflight < c->cfg->window &&
           c->window_bytes + c->inflight_bytes < c->cfg->window_bytes;
}

/* True when one more document may go to the parser. */
static bool has_room(const struct conn *c)
{
    if (c->done || !ingest__outbox_is_empty(&c->outbox)) {
        return false;
    }
    switch (c->phase) {
    case P_OPEN:
        return c->inflight == 0;
    case P_BOUND:
        return c->inflight < INFLIGHT_DOCS &&
               c->inflight_bytes < INFLIGHT_BYTES && window_has_room(c);
    default:
        return false;
    }
}

static bool can_read(const struct conn *c)
{
    return !c->input && !c->eof && !c->draining && has_room(c);
}

/* Frames documents and hands them to the parser while there is room.
 * Returns 0 or a fatal error. */
static int feed_parser(struct actor_ctx *ctx, struct conn *c)
{
    while (c->input && has_room(c)) {
        struct ingest__frame fr;
        int kind = ingest__frame_next(&c->framer, &fr);
        if (kind == 0) {
            c->input = false;
            break;
        }
        if (kind == -EMSGSIZE) {
            c->input = false;
            actor_metric_add(ingest__m.rejected[INGEST__REASON_TOO_LARGE], 1);
            ACTOR_LOG_RL(ctx, ACTOR_LOG_WARN,
                         "runaway document: closing the connection", "peer",
                         c->peer, "source", c->source, "limit",
                         ACTOR_LOG_INT(c->cfg->doc_limit), NULL);
            say_error(c, 0, "too_large");
            begin_close(ctx, c, "runaway document");
            break;
        }
        if (kind < 0) {
            return kind;
        }
        actor_metric_add(ingest__m.documents, 1);
        struct ingest__doc_msg *m =
            ingest__doc_msg_new(&fr, kind == INGEST__FRAME_TOO_LARGE,
                                c->phase == P_BOUND ? c->source : NULL);
        if (!m) {
            return -ENOMEM;
        }
        /* The parser's mailbox holds more than we ever have in flight. */
        int rc = actor_send(ctx, c->parser, &m->hdr);
        if (rc != 0) {
            actor_msg_free(&m->hdr);
            return rc == -EAGAIN ? -EOVERFLOW : rc;
        }
        c->inflight++;
        c->inflight_bytes += fr.len;
    }
    uint64_t junk = c->framer.stats.junk_bytes;
    if (junk > c->junk) {
        actor_metric_add(ingest__m.junk, junk - c->junk);
        ACTOR_LOG_RL(ctx, ACTOR_LOG_INFO, "junk between documents", "peer",
                     c->peer, "source", c->source, "bytes",
                     ACTOR_LOG_INT(junk - c->junk), NULL);
        c->junk = junk;
    }
    return 0;
}

static int send_feed(struct actor_ctx *ctx, struct conn *c, bool stale)
{
    struct ingest__feed_msg *m = actor_msg_new(sizeof(*m), INGEST_MSG_FEED);
    if (!m) {
        return -ENOMEM;
    }
    m->stale = stale;
    c->stale = stale;
    return ingest__outbox_send(ctx, &c->outbox, c->source_pid, &m->hdr);
}

static int on_bytes(struct actor_ctx *ctx, struct conn *c, size_t n)
{
    actor_metric_add(ingest__m.bytes, n);
    c->last_in_ms = actor_now_ms();
    c->taken = UINT64_MAX;
    if (c->seen) {
        atomic_store_explicit(&c->seen->last_ms, c->last_in_ms,
                              memory_order_relaxed);
    }
    ingest__frame_input(&c->framer, c->rbuf, n, actor_wall_ms());
    c->input = true;
    if (c->stale && c->phase == P_BOUND) {
        actor_log(ctx, ACTOR_LOG_INFO, "source sends again", "source",
                  c->source, "peer", c->peer, NULL);
        int rc = send_feed(ctx, c, false);
        if (rc < 0) {
            return rc;
        }
    }
    return feed_parser(ctx, c);
}

static void on_eof(struct actor_ctx *ctx, struct conn *c)
{
    c->eof = true;
    size_t cut = ingest__frame_pending(&c->framer);
    if (cut) {
        ACTOR_LOG_RL(ctx, ACTOR_LOG_INFO,
                     "feed connection closed inside a document", "peer",
                     c->peer, "source", c->source, "bytes", ACTOR_LOG_INT(cut),
                     NULL);
    }
}

/* Reads up to READS_PER_TURN buffers while there is room. */
static int read_some(struct actor_ctx *ctx, struct conn *c)
{
    for (int i = 0; i < READS_PER_TURN && can_read(c); i++) {
        ssize_t n = recv(c->fd, c->rbuf, RBUF_SIZE, 0);
        if (n > 0) {
            int rc = on_bytes(ctx, c, (size_t)n);
            if (rc < 0) {
                return rc;
            }
            if ((size_t)n < RBUF_SIZE) {
                break; /* drained; the re-armed watch says when there is
                          more */
            }
        } else if (n == 0) {
            on_eof(ctx, c);
        } else if (errno == EINTR) {
            i--;
        } else if (errno == EAGAIN) {
            break;
        } else {
            actor_log(ctx, ACTOR_LOG_DEBUG, "feed connection read failed",
                      "peer", c->peer, "error", strerror(errno), NULL);
            close_now(ctx, c, "read failed");
        }
    }
    return 0;
}

/* Reads and drops what the peer of a closing conn still sends, until its
 * EOF (see DESIGN: closing). */
static void discard_input(struct actor_ctx *ctx, struct conn *c)
{
    c->input = false; /* the framer's input is abandoned: rbuf is free */
    for (int i = 0; i < READS_PER_TURN; i++) {
        ssize_t n = recv(c->fd, c->rbuf, RBUF_SIZE, 0);
        if (n > 0) {
            continue;
        }
        if (n == 0) {
            c->eof = true;
        } else if (errno == EINTR) {
            continue;
        } else if (errno != EAGAIN) {
            close_now(ctx, c, c->why);
        }
        return;
    }
}

/* Asks for the events the conn can take now. Returns 0 or an error. */
static int arm(struct actor_ctx *ctx, struct conn *c)
{
    bool in = can_read(c) || (c->wr_shut && !c->eof);
    uint32_t want =
        (in ? EPOLLIN : 0) | (c->out_off < c->out.len ? EPOLLOUT : 0);
    if (want == 0 || want == c->armed) {
        return 0; /* an event armed before is harmless */
    }
    int rc = actor_io_rearm(ctx, c->watch, want);
    if (rc < 0) {
        return rc;
    }
    c->armed = want;
    return 0;
}

/* True when everything read has been handled (acks still owed are not
 * waited for: a peer that has gone resends them after its next login). */
static bool is_drained(const struct conn *c)
{
    return c->inflight == 0 && !c->input && !c->held &&
           ingest__outbox_is_empty(&c->outbox);
}

/* True when a draining conn has only its goodbye left: everything it read
 * is handled and every event it accepted is acked. */
static bool drain_is_done(const struct conn *c)
{
    return c->draining && c->phase != P_BINDING && is_drained(c) &&
           c->window.len == 0;
}

/* Once the replies are out: FIN, then wait for the peer's EOF (see DESIGN:
 * closing). */
static void shut_write(struct actor_ctx *ctx, struct conn *c)
{
    if (c->wr_shut) {
        return;
    }
    c->wr_shut = true;
    if (shutdown(c->fd, SHUT_WR) != 0) {
        close_now(ctx, c, c->why); /* the peer is gone already */
    }
}

/* Moves everything on after a message. Returns 0 or a fatal error. */
static int pump(struct actor_ctx *ctx, struct conn *c)
{
    if (c->done) {
        return 0;
    }
    int rc = feed_parser(ctx, c);
    if (rc < 0) {
        return rc;
    }
    if (c->eof && is_drained(c)) {
        begin_close(ctx, c, "peer closed");
    } else if (drain_is_done(c)) {
        begin_close(ctx, c, "drained");
    }
    rc = flush_out(ctx, c);
    if (rc < 0 || c->done) {
        return rc;
    }
    if (c->phase == P_CLOSING && c->out.len == 0 &&
        ingest__outbox_is_empty(&c->outbox)) {
        if (c->eof) {
            close_now(ctx, c, c->why);
            return 0;
        }
        shut_write(ctx, c);
        if (c->done) {
            return 0;
        }
    }
    return arm(ctx, c);
}

/* ---- the session --------------------------------------------------------- */

static void count_unknown(const struct ingest__result *res)
{
    actor_metric_add(ingest__m.unknown_element, res->unknown_elements);
    actor_metric_add(ingest__m.unknown_attribute, res->unknown_attributes);
}

/* Refuses a login with @reason and closes. */
static void refuse(struct actor_ctx *ctx, struct conn *c, const char *source,
                   const char *reason)
{
    ACTOR_LOG_RL(ctx, ACTOR_LOG_WARN, "login refused", "source", source,
                 "reason", reason, "peer", c->peer, NULL);
    say(c, "<login result=\"invalid\" reason=\"%s\"/>\r\n", reason);
    begin_close(ctx, c, "login refused");
}

/* Binds the session to source @name: finds or starts its actor and asks
 * it for the connection. Returns 0 (binding, or refused and closing) or a
 * fatal error. */
static int bind_source(struct actor_ctx *ctx, struct conn *c, const char *name,
                       bool login, uint64_t seq)
{
    uint64_t pid;
    int rc = ingest__source_get(ctx, c->env, name, &pid);
    if (rc == -EUSERS) {
        if (login) {
            refuse(ctx, c, name, "too_many_sources");
        } else {
            ACTOR_LOG_RL(ctx, ACTOR_LOG_WARN, "source refused: too many",
                         "source", name, "peer", c->peer, NULL);
            say_error(c, seq, "too_many_sources");
            begin_close(ctx, c, "too many sources");
        }
        return 0;
    }
    if (rc < 0) {
        return rc;
    }
    c->seen = ingest__seen_get(name);
    if (!c->seen) {
        return -ENOMEM;
    }
    atomic_store_explicit(&c->seen->last_ms, c->last_in_ms,
                          memory_order_relaxed);
    struct ingest__bind_msg *m = actor_msg_new(sizeof(*m), INGEST_MSG_BIND);
    if (!m) {
        return -ENOMEM;
    }
    m->login = login;
    snprintf(c->source, sizeof(c->source), "%s", name);
    c->source_pid = pid;
    c->source_mon = actor_monitor(ctx, pid);
    c->login = login;
    c->phase = P_BINDING;
    return ingest__outbox_send(ctx, &c->outbox, pid, &m->hdr);
}

static int on_login(struct actor_ctx *ctx, struct conn *c,
                    const struct ingest__result *res)
{
    if (c->phase != P_OPEN) {
        actor_metric_add(ingest__m.rejected[INGEST__REASON_BAD_ELEMENT], 1);
        ACTOR_LOG_RL(ctx, ACTOR_LOG_WARN, "login inside a session ignored",
                     "source", c->source, "peer", c->peer, NULL);
        say_error(c, 0, "bad_element");
        return 0;
    }
    const char *source = res->login.source;
    if (res->login.has_version && strcmp(res->login.version, "1") != 0) {
        refuse(ctx, c, source, "unsupported_version");
        return 0;
    }
    if (c->env->tokens &&
        (!res->login.has_token ||
         !ingest__tokens_is_valid(c->env->tokens, source, res->login.token))) {
        refuse(ctx, c, source, "unauthenticated");
        return 0;
    }
    return bind_source(ctx, c, source, true, 0);
}

/* Where tokens are configured, a peer that has not logged in is answered
 * and closed, and nothing it sent is kept. @why goes to the log. */
static void unauthenticated(struct actor_ctx *ctx, struct conn *c, uint64_t seq,
                            const char *why)
{
    actor_metric_add(ingest__m.rejected[INGEST__REASON_UNAUTHENTICATED], 1);
    ACTOR_LOG_RL(ctx, ACTOR_LOG_WARN, why, "peer", c->peer, NULL);
    say_error(c, seq, "unauthenticated");
    begin_close(ctx, c, "no login");
}

/* Hands @msg, an event or a rejection that used up @seq, to the source
 * actor and keeps it in the window until an ack covers it. Takes @msg.
 * Returns 0 or an error. */
static int to_source(struct actor_ctx *ctx, struct conn *c, uint64_t seq,
                     size_t bytes, struct actor_msg *msg)
{
    struct pending *p = ingest__ring_push(&c->window);
    if (!p) {
        actor_msg_free(msg);
        return -ENOMEM;
    }
    p->seq = seq;
    p->bytes = bytes;
    c->window_bytes += bytes;
    if (seq > c->seen_seq) {
        c->seen_seq = seq;
    }
    return ingest__outbox_send(ctx, &c->outbox, c->source_pid, msg);
}

static int submit_event(struct actor_ctx *ctx, struct conn *c, struct event *ev)
{
    struct store_event_msg *m = store_event_msg_new(ev);
    if (!m) {
        return -ENOMEM;
    }
    return to_source(ctx, c, ev->seq, ev->raw_len, &m->hdr);
}

static int on_event(struct actor_ctx *ctx, struct conn *c,
                    struct ingest__doc_msg *m)
{
    count_unknown(&m->res);
    if (c->phase == P_BOUND) {
        return submit_event(ctx, c, m->res.event);
    }
    /* Not bound: the parser took it only because it names its source. */
    ACTOR_ASSERT(c->phase == P_OPEN && m->res.event_source[0]);
    if (c->env->tokens) {
        unauthenticated(ctx, c, m->res.seq, "document before login: closing");
        return 0;
    }
    int rc = bind_source(ctx, c, m->res.event_source, false, m->res.seq);
    if (rc < 0 || c->phase != P_BINDING) {
        return rc;
    }
    c->held = m;
    return ACTOR_KEPT;
}

/* Sends a dead letter to the store (a transient absence loses it: it has
 * no seq, nothing would resend it). Takes @msg. */
static int send_store(struct actor_ctx *ctx, struct conn *c,
                      struct actor_msg *msg)
{
    if (!c->store || !actor_is_alive(c->store)) {
        c->store = actor_whereis("store");
    }
    if (!c->store) {
        ACTOR_LOG_RL(ctx, ACTOR_LOG_ERROR, "no store: dead letter dropped",
                     "peer", c->peer, NULL);
        actor_msg_free(msg);
        return 0;
    }
    return ingest__outbox_send(ctx, &c->outbox, c->store, msg);
}

/*
 * A rejected document: the <error> reply, the count, the log line, and
 * its bytes for the dead letters. Content rejections of a bound source's
 * event use up their seq (SFP/1 section 3) and go through the source actor
 * in seq order; the rest (not_well_formed and too_large included: a
 * document that cannot be trusted uses up nothing) go to the store
 * directly, without a seq.
 */
static int on_rejected(struct actor_ctx *ctx, struct conn *c,
                       struct ingest__doc_msg *m)
{
    const struct ingest__result *res = &m->res;
    const char *reason = ingest__reason_name(res->reason);
    bool uses_seq = c->phase == P_BOUND && res->seq &&
                    (res->reason == INGEST__REASON_BAD_ATTRIBUTE ||
                     res->reason == INGEST__REASON_BAD_ELEMENT);
    /* A resend of a seq the source has seen: "a duplicate is not an
     * error" (SFP/1 section 2). It was answered and kept the first time;
     * the source counts it (and acks it again when durable). */
    bool duplicate = uses_seq && res->seq <= c->seen_seq;
    if (!duplicate) {
        actor_metric_add(ingest__m.rejected[res->reason], 1);
    }
    ACTOR_LOG_RL(ctx, ACTOR_LOG_WARN, "document rejected", "source", c->source,
                 "reason", reason, "seq",
                 res->seq ? ACTOR_LOG_INT(res->seq) : "", "detail", res->detail,
                 "peer", c->peer, NULL);
    if (res->was_login && c->phase == P_OPEN) {
        /* A login it cannot read is refused like any other (SFP/1 section
         * 2): the peer waits for a <login> reply, not an <error>. With
         * tokens nothing of it is kept; without, it is a dead letter. */
        refuse(ctx, c, "", reason);
        if (c->env->tokens) {
            return 0;
        }
    } else if (!duplicate) {
        say_error(c, res->seq, reason);
        if (c->env->tokens && c->phase != P_BOUND) {
            begin_close(ctx, c, "no login");
            return 0;
        }
    }
    const struct store_rejected rej = {
        .source = c->phase == P_BOUND ? c->source : NULL,
        .seq = uses_seq ? res->seq : 0,
        .has_seq = uses_seq,
        .received_ms = m->received_ms,
        .reason = reason,
        .raw = m->data,
        .raw_len = m->len,
        .size = m->size,
    };
    struct store_rejected_msg *sm = store_rejected_msg_new(&rej);
    if (!sm) {
        return -ENOMEM;
    }
    return uses_seq ? to_source(ctx, c, res->seq, m->len, &sm->hdr)
                    : send_store(ctx, c, &sm->hdr);
}

static int on_parsed(struct actor_ctx *ctx, struct conn *c,
                     struct ingest__doc_msg *m)
{
    c->inflight--;
    c->inflight_bytes -= m->len;
    if (c->phase == P_CLOSING) {
        return 0;
    }
    switch (m->res.kind) {
    case INGEST__DOC_LOGIN:
        return on_login(ctx, c, &m->res);
    case INGEST__DOC_CT:
        return 0;
    case INGEST__DOC_EVENT:
        return on_event(ctx, c, m);
    case INGEST__DOC_UNKNOWN:
        actor_metric_add(ingest__m.unknown_root, 1);
        ACTOR_LOG_RL(ctx, ACTOR_LOG_INFO, "unknown document ignored", "root",
                     m->res.root, "source", c->source, "peer", c->peer, NULL);
        return 0;
    case INGEST__DOC_REJECTED:
        return on_rejected(ctx, c, m);
    }
    return -EINVAL;
}

static int on_bound(struct actor_ctx *ctx, struct conn *c,
                    struct ingest__bound_msg *m)
{
    if (m->hdr.from != c->source_pid || c->phase != P_BINDING) {
        return 0;
    }
    c->phase = P_BOUND;
    c->acked_out = m->acked;
    c->seen_seq = m->last_seen;
    if (c->login) {
        say(c, "<login result=\"valid\" source=\"%s\" acked=\"%llu\"/>\r\n",
            c->source, (unsigned long long)m->acked);
    }
    actor_log(ctx, ACTOR_LOG_INFO, "source connected", "source", c->source,
              "peer", c->peer, "acked", ACTOR_LOG_INT(m->acked), "login",
              c->login ? "yes" : "no", NULL);
    if (!c->held) {
        return 0;
    }
    struct ingest__doc_msg *held = c->held;
    c->held = NULL;
    int rc = submit_event(ctx, c, held->res.event);
    actor_msg_free(&held->hdr);
    return rc;
}

static int on_ack(struct actor_ctx *ctx, struct conn *c,
                  struct ingest__ack_msg *m)
{
    (void)ctx;
    if (m->hdr.from != c->source_pid) {
        return 0;
    }
    struct pending *p;
    while ((p = ingest__ring_at(&c->window, 0)) && p->seq <= m->seq) {
        c->window_bytes -= p->bytes;
        ingest__ring_pop(&c->window);
    }
    if (m->seq > c->acked_out || m->again) {
        say(c, "<ack seq=\"%llu\"/>\r\n", (unsigned long long)m->seq);
        if (m->seq > c->acked_out) {
            c->acked_out = m->seq;
        }
    }
    return 0;
}

static int on_replaced(struct actor_ctx *ctx, struct conn *c,
                       struct actor_msg *m)
{
    if (m->from != c->source_pid) {
        return 0;
    }
    actor_log(ctx, ACTOR_LOG_INFO, "feed connection replaced by a new login",
              "source", c->source, "peer", c->peer, NULL);
    actor_demonitor(ctx, c->source_mon);
    c->source_mon = 0;
    c->source_pid = 0;
    say_error(c, 0, "replaced");
    begin_close(ctx, c, "replaced");
    return 0;
}

static int on_down(struct actor_ctx *ctx, struct conn *c,
                   struct actor_down_msg *m)
{
    if (m->ref != c->source_mon) {
        return 0;
    }
    actor_log(ctx, ACTOR_LOG_WARN, "source actor ended: closing", "source",
              c->source, "peer", c->peer, "reason",
              actor_exit_kind_name(m->why.kind), NULL);
    c->source_mon = 0;
    c->source_pid = 0;
    begin_close(ctx, c, "source actor ended");
    return 0;
}

/* ---- timers -------------------------------------------------------------- */

static int start_timer(struct actor_ctx *ctx, uint32_t type, int64_t ms)
{
    struct actor_msg *m = actor_msg_new(sizeof(*m), type);
    if (!m) {
        return -ENOMEM;
    }
    if (ms < 1) {
        ms = 1;
    }
    return actor_send_after(ctx, (uint32_t)ms, m) ? 0 : -ENOMEM;
}

/* <ct/> once the output has been quiet for the heartbeat period. */
static int on_heartbeat(struct actor_ctx *ctx, struct conn *c)
{
    int64_t period = c->cfg->heartbeat_ms;
    int64_t quiet = actor_now_ms() - c->last_out_ms;
    if (quiet >= period && c->phase != P_CLOSING) {
        say(c, "<ct/>\r\n");
        quiet = 0;
    }
    return start_timer(ctx, INGEST_MSG_HEARTBEAT, period - quiet);
}

/* Bytes the kernel still holds for the peer (unsent or unacknowledged). */
static int kernel_outq(int fd)
{
    int n = 0;
    return ioctl(fd, SIOCOUTQ, &n) == 0 ? n : 0;
}

static int on_silence(struct actor_ctx *ctx, struct conn *c)
{
    int64_t limit = c->cfg->silence_ms;
    int64_t now = actor_now_ms();
    if (!c->eof && (!has_room(c) || c->draining) && c->phase != P_CLOSING) {
        c->last_in_ms = now; /* we are not reading: not the peer's doing */
    }
    /* Where tokens are configured, logging in is not optional: a peer that
     * has not within the silence limit (bytes or not: a <ct/> now and then
     * would keep it) gives up its connection slot. Without tokens a feed
     * may name itself on its first event, whenever that comes. */
    if (c->env->tokens && c->phase == P_OPEN && !c->eof &&
        now - c->opened_ms >= limit) {
        unauthenticated(ctx, c, 0,
                        "no login within the silence limit: closing");
        return 0;
    }
    int64_t quiet = now - c->last_in_ms;
    int held = quiet >= limit ? kernel_outq(c->fd) : 0;
    if (held > 0) {
        /* Output waits, the peer is silent: has it taken anything since
         * the last check? */
        uint64_t taken = c->written - (uint64_t)held;
        if (taken == c->taken) {
            ACTOR_LOG_RL(ctx, ACTOR_LOG_WARN,
                         "feed peer neither sends nor reads: closing", "peer",
                         c->peer, "source", c->source, "unread",
                         ACTOR_LOG_INT(held), NULL);
            close_now(ctx, c, "peer does not read");
            return 0;
        }
        c->taken = taken;
    }
    if (quiet >= limit) {
        if (c->eof || c->phase == P_OPEN) {
            ACTOR_LOG_RL(ctx, ACTOR_LOG_INFO, "feed connection silent: closing",
                         "peer", c->peer, "source", c->source, NULL);
            begin_close(ctx, c, "silent");
        } else if (c->phase == P_BOUND && !c->stale) {
            actor_log(ctx, ACTOR_LOG_INFO, "source silent", "source", c->source,
                      "peer", c->peer, "limit_ms", ACTOR_LOG_INT(limit), NULL);
            int rc = send_feed(ctx, c, true);
            if (rc < 0) {
                return rc;
            }
        }
        quiet = 0;
    }
    return start_timer(ctx, INGEST_MSG_SILENCE, limit - quiet);
}

/* ---- the actor ----------------------------------------------------------- */

static void conn_arg_free(void *p)
{
    struct conn_arg *a = p;
    if (a->fd >= 0) {
        close(a->fd);
    }
    free(a);
    atomic_fetch_sub(&ingest__conns_alive, 1);
}

int ingest__conn_start(const struct ingest__env *env, uint64_t sup, int fd,
                       const char *peer, uint64_t *pid)
{
    struct conn_arg *a = malloc(sizeof(*a));
    if (!a) {
        close(fd);
        return -ENOMEM;
    }
    a->env = env;
    a->fd = fd;
    snprintf(a->peer, sizeof(a->peer), "%s", peer);
    atomic_fetch_add(&ingest__conns_alive, 1); /* conn_arg_free undoes it */
    const struct actor_child_spec spec = {
        .id = "conn",
        .start = {.ops = &ingest__conn_ops, .arg = a},
        .arg_free = conn_arg_free,
        .restart = ACTOR_TEMPORARY,
        .shutdown_ms = 1000,
    };
    uint64_t child;
    int rc = actor_sup_start_child(sup, &spec, &child);
    if (rc == 0 && pid) {
        *pid = child;
    }
    return rc;
}

static void conn_free(struct conn *c)
{
    if (c->held) {
        actor_msg_free(&c->held->hdr);
    }
    ingest__outbox_release(&c->outbox);
    ingest__ring_release(&c->window);
    actor_buf_release(&c->out);
    ingest__frame_release(&c->framer);
    free(c->rbuf);
    free(c);
}

static int conn_init(struct actor_ctx *ctx, void *arg, void **state)
{
    struct conn_arg *a = arg;
    struct conn *c = calloc(1, sizeof(*c));
    if (!c) {
        return -ENOMEM;
    }
    int rc = -ENOMEM;
    c->env = a->env;
    c->cfg = &a->env->cfg;
    c->peer = a->peer;
    c->fd = a->fd;
    actor_buf_init(&c->out);
    ingest__ring_init(&c->window, sizeof(struct pending));
    ingest__outbox_init(&c->outbox);
    c->rbuf = malloc(RBUF_SIZE);
    if (!c->rbuf) {
        goto out_free;
    }
    rc = ingest__frame_init(&c->framer, c->cfg->doc_limit);
    if (rc != 0) {
        goto out_free;
    }
    const struct actor_spawn how = {
        .ops = &ingest__parser_ops,
        .arg = (void *)c->env,
        .mailbox = PARSER_MAILBOX,
        .link = actor_self(ctx),
    };
    rc = actor_spawn(&how, &c->parser);
    if (rc != 0) {
        goto out_free;
    }
    int sndbuf = SNDBUF;
    setsockopt(c->fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
    c->watch = actor_io_watch(ctx, c->fd, EPOLLIN);
    if (!c->watch) {
        rc = -errno;
        goto out_parser;
    }
    c->armed = EPOLLIN;
    c->last_in_ms = c->last_out_ms = c->opened_ms = actor_now_ms();
    c->taken = UINT64_MAX;
    rc = start_timer(ctx, INGEST_MSG_HEARTBEAT, c->cfg->heartbeat_ms);
    if (rc == 0) {
        rc = start_timer(ctx, INGEST_MSG_SILENCE, c->cfg->silence_ms);
    }
    c->draining = ingest__is_draining();
    if (rc == 0 && c->draining) {
        /* Started as the drain began: a turn to close in, whether the
         * peer sends or not. */
        struct actor_msg *m = actor_msg_new(sizeof(*m), INGEST_MSG_DRAIN);
        rc = m ? actor_send_or_free(ctx, actor_self(ctx), m) : -ENOMEM;
    }
    if (rc != 0) {
        goto out_parser;
    }
    a->fd = -1; /* ours now: closed by conn_stop */
    actor_log(ctx, ACTOR_LOG_DEBUG, "feed connection", "peer", c->peer, NULL);
    *state = c;
    return 0;

out_parser:
    actor_exit(ctx, c->parser,
               &(struct actor_exit){.kind = ACTOR_EXIT_SHUTDOWN});
out_free:
    conn_free(c);
    return rc; /* the socket goes with the arg */
}

static int dispatch(struct actor_ctx *ctx, struct conn *c,
                    struct actor_msg *msg)
{
    switch (msg->type) {
    case ACTOR_MSG_IO:
        c->armed = 0;
        if (c->wr_shut) {
            discard_input(ctx, c);
            return 0;
        }
        return read_some(ctx, c);
    case INGEST_MSG_PARSED:
        return on_parsed(ctx, c, (struct ingest__doc_msg *)msg);
    case INGEST_MSG_BOUND:
        return on_bound(ctx, c, (struct ingest__bound_msg *)msg);
    case INGEST_MSG_ACK:
        return on_ack(ctx, c, (struct ingest__ack_msg *)msg);
    case INGEST_MSG_REPLACED:
        return on_replaced(ctx, c, msg);
    case ACTOR_MSG_DOWN:
        return on_down(ctx, c, (struct actor_down_msg *)msg);
    case ACTOR_MSG_RESUME:
        ingest__outbox_flush(ctx, &c->outbox);
        return 0;
    case INGEST_MSG_HEARTBEAT:
        return on_heartbeat(ctx, c);
    case INGEST_MSG_SILENCE:
        return on_silence(ctx, c);
    case INGEST_MSG_LINGER:
        close_now(ctx, c, c->why);
        return 0;
    case INGEST_MSG_DRAIN:
        return 0; /* a wake-up: conn_handle looked at the flag */
    default:
        return -EINVAL;
    }
}

static int conn_handle(struct actor_ctx *ctx, void *state,
                       struct actor_msg *msg)
{
    struct conn *c = state;
    if (!c->draining && ingest__is_draining()) {
        c->draining = true; /* before this message can read anything */
        actor_log(ctx, ACTOR_LOG_DEBUG, "feed connection draining", "peer",
                  c->peer, "source", c->source, "unacked",
                  ACTOR_LOG_INT(c->window.len), NULL);
    }
    int rc = dispatch(ctx, c, msg);
    if (rc < 0) {
        return rc;
    }
    int prc = pump(ctx, c);
    if (prc < 0 && rc == ACTOR_KEPT) {
        /* @msg is ours now: end after it without having it freed */
        actor_fail(ctx, "%s", strerror(-prc));
        return ACTOR_KEPT;
    }
    return prc < 0 ? prc : rc;
}

static void conn_stop(struct actor_ctx *ctx, void *state,
                      const struct actor_exit *why)
{
    struct conn *c = state;
    /* A normal exit does not travel the link. */
    actor_exit(ctx, c->parser,
               &(struct actor_exit){.kind = ACTOR_EXIT_SHUTDOWN});
    close(c->fd);
    const char *reason = c->why ? c->why : actor_exit_kind_name(why->kind);
    if (c->source[0]) {
        /* unacked: accepted here, not acked yet (the feed resends them) */
        actor_log(ctx, ACTOR_LOG_INFO, "feed connection closed", "peer",
                  c->peer, "source", c->source, "reason", reason, "unacked",
                  ACTOR_LOG_INT(c->window.len), NULL);
    } else {
        /* Sourceless connections are cheap to open: their lines are too. */
        ACTOR_LOG_RL(ctx, ACTOR_LOG_INFO, "feed connection closed", "peer",
                     c->peer, "reason", reason, NULL);
    }
    conn_free(c);
}

const struct actor_ops ingest__conn_ops = {
    .name = "ingest.conn",
    .init = conn_init,
    .handle = conn_handle,
    .stop = conn_stop,
};
