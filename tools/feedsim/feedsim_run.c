/* tools/feedsim/feedsim_run.c - a run: sources, their connections and
 * sessions, pacing, and the figures at the end. */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "tools/feedsim/feedsim.h"

/*
 * DESIGN
 * One thread and one ppoll() loop drive every source. Each turn, every
 * source "ticks": it connects when its backoff has passed, produces events
 * that are due (as long as its window has room and its output is below the
 * high-water mark), hands window documents to its output buffer, sends a
 * heartbeat when idle, and writes what the socket takes. The loop then
 * sleeps until a socket is ready or the earliest deadline any source named
 * (the next event due, a retry, a heartbeat, a timeout).
 *
 * A document lives in its source's window from the moment it is made until
 * an ack covers it, so a reconnect simply rewinds the window's send cursor:
 * the resend and the first send are the same code. New events are made
 * only when the cursor is at the end of the window, which keeps the stream
 * in seq order across reconnects.
 */

#define HIGH_WATER         (256 * 1024) /* bytes queued per connection */
#define READ_CHUNK         65536
#define BACKOFF_BASE_MS    100
#define BACKOFF_CAP_MS     5000
#define CONNECT_TIMEOUT_NS 5000000000ll
#define BUNDLE_WINDOW_MS   5000 /* matches bundled in one event */
#define MAX_BUNDLE         4
#define MAX_REASONS        16     /* distinct error reasons counted */
#define SIM_LEAD_MS        240000 /* simulated 0 is 4 min before start */

enum conn_state {
    CONN_WAIT,       /* no socket; connect at retry_at_ns */
    CONN_CONNECTING, /* non-blocking connect in progress */
    CONN_LOGIN,      /* login sent, waiting for the reply */
    CONN_READY,      /* sending events */
    CONN_FAILED      /* login refused: never again */
};

struct slot {
    int64_t at;              /* simulated ms of the match's next step */
    uint32_t index;          /* match index: the tie-break */
    struct feedsim_gen *gen; /* not owned (run->gens) */
};

struct source {
    struct feedsim_run *run;
    char name[80];
    const char *token; /* not owned; NULL: none */

    struct slot *heap; /* its live matches, min-heap by (at, index) */
    size_t n_heap;
    uint64_t budget; /* events it may make */
    uint64_t made;
    int64_t due_ns; /* --rate: when the next event is due */
    bool gen_done;  /* makes no more events */
    uint64_t next_seq;
    uint64_t last_seq;       /* highest seq given, any document */
    uint64_t last_event_seq; /* highest seq of a good event */
    uint64_t rng_multi;      /* per-purpose streams: see feedsim_rng_seed */
    uint64_t rng_bad;
    uint64_t rng_split;
    uint64_t rng_jitter;
    struct feedsim_window win;

    int fd; /* -1 when not connected */
    enum conn_state st;
    struct actor_buf out; /* bytes for the socket from out_off */
    size_t out_off;
    size_t chunk_left; /* --split: bytes left of the current write */
    struct feedsim_scan scan;
    uint64_t acked;   /* highest seq the server acknowledged */
    int64_t since_ns; /* entered the current state */
    int64_t last_write_ns;
    int64_t last_read_ns;
    int64_t retry_at_ns;
    unsigned attempt;     /* reconnects since the last good login */
    uint64_t new_on_conn; /* first sends on this connection */
    bool dropping;        /* --reconnect-after: close once flushed */
    uint64_t connects;
    char last_error[64]; /* why the last connection ended, or "" */
};

struct reason {
    char name[48];
    uint64_t n;
};

struct feedsim_run {
    struct feedsim_config cfg;
    struct addrinfo *ai;
    struct source *src;
    struct feedsim_gen **gens; /* owned, by match index */
    struct feedsim_model *model;
    struct actor_buf doc; /* scratch for building a document */
    struct pollfd *pfd;
    struct source **pfd_src;

    int64_t start_ns;
    int64_t sim_epoch_ms;      /* wall ms of simulated 0 (--sent sim) */
    double ns_per_sim_ms;      /* --match-seconds pacing */
    int64_t interval_ns;       /* --rate pacing, per source */
    int64_t end_ns;            /* when it stopped, for elapsed */
    int64_t drain_deadline_ns; /* 0 until every source stopped making */
    int64_t now_ns;            /* of the current turn */
    bool gen_over;             /* --duration passed or stopping */
    bool fatal;
    bool nomem;
    bool interrupted;
    bool complete;
    char failure[256];

    struct feedsim_hist latency;
    uint64_t events_sent;
    uint64_t events_resent;
    uint64_t events_acked;
    uint64_t bad_sent[FEEDSIM_BAD_N];
    uint64_t bad_resent;
    uint64_t bad_acked;
    uint64_t writes;
    uint64_t bytes_out;
    uint64_t bytes_in;
    uint64_t heartbeats;
    uint64_t cts_in;
    uint64_t acks_in;
    uint64_t others_in;  /* replies we do not know */
    uint64_t acks_ahead; /* acks above anything we sent */
    uint64_t acks_back;  /* logins that acked less than before */
    uint64_t connects;
    struct reason reasons[MAX_REASONS];
    size_t n_reasons;
};

/* ---- small things ------------------------------------------------------- */

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

/* One logfmt line on stderr: `ts=.. level=.. source=.. msg="@fmt..."`
 * plus @fmt's own key=value pairs after the message. */
static void say(const struct feedsim_run *r, int verbosity, const char *level,
                const struct source *s, const char *msg, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

static void say(const struct feedsim_run *r, int verbosity, const char *level,
                const struct source *s, const char *msg, const char *fmt, ...)
{
    if (r->cfg.verbosity < verbosity) {
        return;
    }
    char ts[32];
    char rest[256] = "";
    feedsim_rfc3339(ts, wall_ms());
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(rest, sizeof(rest), fmt, ap);
        va_end(ap);
    }
    fprintf(stderr, "ts=%s level=%s prog=feedsim%s%s msg=\"%s\"%s%s\n", ts,
            level, s ? " source=" : "", s ? s->name : "", msg,
            rest[0] ? " " : "", rest);
}

static void set_failure(struct feedsim_run *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void set_failure(struct feedsim_run *r, const char *fmt, ...)
{
    if (r->failure[0]) {
        return; /* the first cause is the one to tell */
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->failure, sizeof(r->failure), fmt, ap);
    va_end(ap);
}

static void fail_nomem(struct feedsim_run *r)
{
    r->fatal = true;
    r->nomem = true;
    set_failure(r, "out of memory");
}

static size_t out_pending(const struct source *s)
{
    return s->out.len - s->out_off;
}

static void count_reason(struct feedsim_run *r, const char *reason)
{
    const char *name = reason[0] ? reason : "unknown";
    size_t i;
    for (i = 0; i < r->n_reasons; i++) {
        if (strcmp(r->reasons[i].name, name) == 0) {
            break;
        }
    }
    if (i == r->n_reasons) {
        if (r->n_reasons == MAX_REASONS) {
            name = "other"; /* the last slot collects the rest */
            i = MAX_REASONS - 1;
        } else {
            r->n_reasons++;
        }
        snprintf(r->reasons[i].name, sizeof(r->reasons[i].name), "%s", name);
    }
    r->reasons[i].n++;
}

/* ---- the match heap ----------------------------------------------------- */

static bool slot_before(const struct slot *a, const struct slot *b)
{
    return a->at < b->at || (a->at == b->at && a->index < b->index);
}

static void heap_push(struct source *s, struct slot x)
{
    size_t i = s->n_heap++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!slot_before(&x, &s->heap[parent])) {
            break;
        }
        s->heap[i] = s->heap[parent];
        i = parent;
    }
    s->heap[i] = x;
}

static struct slot heap_pop(struct source *s)
{
    struct slot top = s->heap[0];
    struct slot last = s->heap[--s->n_heap];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= s->n_heap) {
            break;
        }
        if (c + 1 < s->n_heap && slot_before(&s->heap[c + 1], &s->heap[c])) {
            c++;
        }
        if (!slot_before(&s->heap[c], &last)) {
            break;
        }
        s->heap[i] = s->heap[c];
        i = c;
    }
    if (s->n_heap > 0) {
        s->heap[i] = last;
    }
    return top;
}

/* Puts a match back in line for its next step, unless it has ended. */
static void requeue(struct source *s, struct slot x)
{
    if (!feedsim_gen_is_done(x.gen)) {
        x.at = feedsim_gen_next_at(x.gen);
        heap_push(s, x);
    }
}

/* ---- making events ------------------------------------------------------ */

static int push_doc(struct source *s, uint64_t seq, int bad, bool required)
{
    struct feedsim_run *r = s->run;
    if (r->doc.err) {
        return r->doc.err;
    }
    struct feedsim_doc d = {
        .seq = seq, .bad = (int8_t)bad, .required = required};
    d.data = actor_buf_take(&r->doc, &d.len);
    return feedsim_window_push(&s->win, &d);
}

static enum feedsim_bad_kind pick_bad(struct source *s)
{
    enum feedsim_bad_kind on[FEEDSIM_BAD_N];
    uint32_t n = 0;
    for (int k = 0; k < FEEDSIM_BAD_N; k++) {
        if (s->run->cfg.bad_kinds & (1u << k)) {
            on[n++] = (enum feedsim_bad_kind)k;
        }
    }
    return on[feedsim_rng_below(&s->rng_bad, n)];
}

/* A malformed document after a good event, now and then. */
static int maybe_bad(struct source *s, struct feedsim_gen *gen)
{
    const struct feedsim_config *c = &s->run->cfg;
    if (c->bad_rate <= 0 || c->bad_kinds == 0 ||
        feedsim_rng_unit(&s->rng_bad) >= c->bad_rate) {
        return 0;
    }
    enum feedsim_bad_kind kind = pick_bad(s);
    uint64_t seq = 0;
    if (feedsim_bad_has_seq(kind)) {
        seq = s->next_seq++;
        s->last_seq = seq;
    }
    actor_buf_reset(&s->run->doc);
    feedsim_bad_write(&s->run->doc, kind, &s->rng_bad, seq,
                      feedsim_gen_decoy(gen), c->max_doc);
    return push_doc(s, seq, (int)kind, feedsim_bad_is_seq_used(kind));
}

/* Makes one event: the next step of the earliest match, sometimes with
 * the next steps of other matches due within BUNDLE_WINDOW_MS. */
static int produce(struct source *s)
{
    struct feedsim_run *r = s->run;
    const struct feedsim_config *c = &r->cfg;
    const struct event_match *els[MAX_BUNDLE];
    struct feedsim_gen *gens[MAX_BUNDLE];
    size_t n = 0;

    struct slot first = heap_pop(s);
    int64_t t0 = first.at;
    els[n] = feedsim_gen_step(first.gen);
    gens[n++] = first.gen;
    requeue(s, first);
    if (s->n_heap > 0 && feedsim_rng_unit(&s->rng_multi) < c->multi) {
        uint32_t more = 1 + feedsim_rng_below(&s->rng_multi, MAX_BUNDLE - 1);
        while (more-- > 0 && s->n_heap > 0 &&
               s->heap[0].at <= t0 + BUNDLE_WINDOW_MS) {
            bool taken = false;
            for (size_t i = 0; i < n; i++) {
                taken |= gens[i] == s->heap[0].gen;
            }
            if (taken) {
                break; /* one element per match and event */
            }
            struct slot x = heap_pop(s);
            els[n] = feedsim_gen_step(x.gen);
            gens[n++] = x.gen;
            requeue(s, x);
        }
    }

    char sent[32];
    const char *sentp = sent;
    if (c->sent == FEEDSIM_SENT_WALL) {
        feedsim_rfc3339(sent, wall_ms());
    } else if (c->sent == FEEDSIM_SENT_SIM) {
        feedsim_rfc3339(sent, r->sim_epoch_ms + t0);
    } else {
        sentp = NULL;
    }
    uint64_t seq = s->next_seq++;
    actor_buf_reset(&r->doc);
    feedsim_xml_event_open(&r->doc, seq, c->no_login ? s->name : NULL, sentp);
    for (size_t i = 0; i < n; i++) {
        feedsim_xml_match(&r->doc, els[i]);
        if (feedsim_model_apply(r->model, els[i]) < 0) {
            return -ENOMEM;
        }
    }
    feedsim_xml_event_close(&r->doc);
    int rc = push_doc(s, seq, -1, true);
    if (rc != 0) {
        return rc;
    }
    s->last_seq = s->last_event_seq = seq;
    s->made++;
    if (c->rate > 0 && c->match_seconds <= 0) {
        /* Catch up after a stall, but by one second's worth at most. */
        s->due_ns = s->due_ns + r->interval_ns;
        if (s->due_ns < r->now_ns - 1000000000ll) {
            s->due_ns = r->now_ns - 1000000000ll;
        }
    }
    return maybe_bad(s, gens[0]);
}

/* When the next event is due (0: now). */
static int64_t next_due(const struct source *s)
{
    const struct feedsim_run *r = s->run;
    if (r->cfg.match_seconds > 0) {
        return r->start_ns +
               (int64_t)((double)s->heap[0].at * r->ns_per_sim_ms);
    }
    return r->cfg.rate > 0 ? s->due_ns : 0;
}

/* ---- sending ------------------------------------------------------------ */

static void disconnect(struct source *s, const char *why);

/* Hands window documents to the output buffer. */
static void pump(struct source *s)
{
    struct feedsim_run *r = s->run;
    if (s->out_off > HIGH_WATER) {
        memmove(s->out.data, s->out.data + s->out_off, out_pending(s));
        s->out.len -= s->out_off;
        s->out_off = 0;
    }
    while (!s->dropping && out_pending(s) < HIGH_WATER) {
        struct feedsim_doc *d = feedsim_window_next(&s->win);
        if (!d) {
            break;
        }
        actor_buf_add(&s->out, d->data, d->len);
        d->sent_ns = r->now_ns;
        if (d->sends++ > 0) {
            if (d->bad < 0) {
                r->events_resent++;
            } else {
                r->bad_resent++;
            }
            continue;
        }
        if (d->bad >= 0) {
            r->bad_sent[d->bad]++;
            continue;
        }
        r->events_sent++;
        if (r->cfg.reconnect_after &&
            ++s->new_on_conn >= r->cfg.reconnect_after) {
            s->dropping = true;
        }
    }
    if (s->out.err) {
        fail_nomem(r);
    }
}

/* Makes the events that are due and queues them. Returns when to look
 * again (INT64_MAX: when the socket or an ack lets us). */
static int64_t produce_due(struct source *s)
{
    struct feedsim_run *r = s->run;
    pump(s);
    for (;;) {
        if (s->gen_done || s->dropping || r->fatal ||
            s->win.cursor < s->win.len || out_pending(s) >= HIGH_WATER ||
            s->win.len >= r->cfg.window) {
            return INT64_MAX;
        }
        if (s->n_heap == 0 || s->made >= s->budget || r->gen_over) {
            s->gen_done = true;
            return INT64_MAX;
        }
        int64_t due = next_due(s);
        if (due > r->now_ns) {
            return due;
        }
        if (produce(s) != 0) {
            fail_nomem(r);
            return INT64_MAX;
        }
        pump(s);
    }
}

/* Writes what the socket takes, in --split pieces when asked. */
static void flush(struct source *s)
{
    struct feedsim_run *r = s->run;
    while (out_pending(s) > 0) {
        size_t n = out_pending(s);
        if (r->cfg.split) {
            if (s->chunk_left == 0) {
                s->chunk_left =
                    1 + feedsim_rng_below(&s->rng_split, r->cfg.split);
            }
            if (n > s->chunk_left) {
                n = s->chunk_left;
            }
        }
        ssize_t w = send(s->fd, s->out.data + s->out_off, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                disconnect(s, strerror(errno));
            }
            return;
        }
        s->out_off += (size_t)w;
        if (r->cfg.split) {
            s->chunk_left -= (size_t)w;
        }
        r->writes++;
        r->bytes_out += (uint64_t)w;
        s->last_write_ns = r->now_ns;
    }
    actor_buf_reset(&s->out);
    s->out_off = 0;
    if (s->dropping) {
        /* A reset, as a network failure gives: what the server had not
         * read yet is lost, and comes again after the next login. */
        struct linger reset = {.l_onoff = 1, .l_linger = 0};
        setsockopt(s->fd, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
        say(r, 1, "info", s, "resetting the connection", "after=%llu",
            (unsigned long long)s->new_on_conn);
        disconnect(s, "forced by --reconnect-after");
    }
}

/* ---- acks --------------------------------------------------------------- */

static void on_acked_doc(const struct feedsim_doc *d, void *arg)
{
    struct feedsim_run *r = arg;
    if (d->seq == 0) {
        return; /* a seq-less document leaving once sent */
    }
    if (d->sends > 0) {
        int64_t ns = r->now_ns - d->sent_ns;
        feedsim_hist_add(&r->latency, ns > 0 ? (uint64_t)ns / 1000 : 0);
    }
    if (d->bad < 0) {
        r->events_acked++;
    } else {
        r->bad_acked++;
    }
}

/* Takes @acked from an <ack> or a login reply (@login). */
static void take_ack(struct source *s, uint64_t acked, bool login)
{
    struct feedsim_run *r = s->run;
    if (acked > s->last_seq) {
        /* The server holds seqs we never sent (another process used this
         * source name): ours at and below it count as duplicates there. */
        r->acks_ahead++;
        say(r, 0, "warn", s, "server acknowledged more than was sent",
            "acked=%llu last_seq=%llu", (unsigned long long)acked,
            (unsigned long long)s->last_seq);
        if (acked >= s->next_seq) {
            s->next_seq = acked + 1;
        }
    }
    if (acked < s->acked) {
        if (login) {
            /* The server lost what it had acknowledged: what left our
             * window cannot be sent again. */
            r->acks_back++;
            say(r, 0, "warn", s, "server acknowledges less than before",
                "acked=%llu before=%llu", (unsigned long long)acked,
                (unsigned long long)s->acked);
            s->acked = acked;
        }
        return; /* a stale ack: cumulative, nothing to do */
    }
    s->acked = acked;
    feedsim_window_ack(&s->win, acked, on_acked_doc, r);
}

/* ---- the connection ----------------------------------------------------- */

static void disconnect(struct source *s, const char *why)
{
    struct feedsim_run *r = s->run;
    if (s->fd >= 0) {
        close(s->fd);
        s->fd = -1;
    }
    actor_buf_reset(&s->out);
    s->out_off = 0;
    s->chunk_left = 0;
    feedsim_scan_reset(&s->scan);
    if (s->st == CONN_FAILED) {
        return;
    }
    /* Full jitter: uniform in [0, min(cap, base * 2^attempt)]. */
    unsigned shift = s->attempt < 10 ? s->attempt : 10;
    uint32_t cap = BACKOFF_BASE_MS << shift;
    if (cap > BACKOFF_CAP_MS) {
        cap = BACKOFF_CAP_MS;
    }
    uint32_t delay = feedsim_rng_below(&s->rng_jitter, cap + 1);
    s->attempt++;
    s->st = CONN_WAIT;
    s->retry_at_ns = r->now_ns + (int64_t)delay * 1000000;
    snprintf(s->last_error, sizeof(s->last_error), "%s", why);
    say(r, s->dropping ? 2 : 1, "info", s, "disconnected",
        "reason=\"%s\" retry_ms=%u", why, delay);
    s->dropping = false;
}

static void on_connected(struct source *s)
{
    struct feedsim_run *r = s->run;
    s->connects++;
    r->connects++;
    s->since_ns = s->last_read_ns = s->last_write_ns = r->now_ns;
    s->new_on_conn = 0;
    s->dropping = false;
    say(r, 2, "debug", s, "connected", NULL);
    if (!r->cfg.no_login) {
        feedsim_xml_login(&s->out, s->name, s->token);
        s->st = CONN_LOGIN;
        return;
    }
    /* Without a login the first event names the source: a malformed
     * document cannot go first (the server could not tell whose it is).
     * Those it skips are covered by the acks of the events after them. */
    while (s->win.len > 0 && feedsim_window_at(&s->win, 0)->bad >= 0) {
        feedsim_window_drop_oldest(&s->win);
    }
    feedsim_window_rewind(&s->win);
    s->attempt = 0;
    s->st = CONN_READY;
}

static void conn_start(struct source *s)
{
    struct feedsim_run *r = s->run;
    int err = 0;
    for (const struct addrinfo *a = r->ai; a; a = a->ai_next) {
        int fd =
            socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                   a->ai_protocol);
        if (fd < 0) {
            err = errno;
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        int rc;
        do {
            rc = connect(fd, a->ai_addr, a->ai_addrlen);
        } while (rc < 0 && errno == EINTR);
        if (rc == 0 || errno == EINPROGRESS) {
            s->fd = fd;
            s->since_ns = r->now_ns;
            if (rc == 0) {
                on_connected(s);
            } else {
                s->st = CONN_CONNECTING;
            }
            return;
        }
        err = errno;
        close(fd);
    }
    disconnect(s, strerror(err));
}

static void conn_finish(struct source *s)
{
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) {
        err = errno;
    }
    if (err == EINPROGRESS) {
        return;
    }
    if (err != 0) {
        disconnect(s, strerror(err));
        return;
    }
    on_connected(s);
}

static void on_login(struct source *s, const struct feedsim_reply *rep)
{
    struct feedsim_run *r = s->run;
    if (s->st != CONN_LOGIN) {
        r->others_in++;
        return;
    }
    if (strcmp(rep->result, "valid") != 0) {
        s->st = CONN_FAILED;
        r->fatal = true;
        set_failure(r, "source %s: login refused: %s", s->name,
                    rep->reason[0] ? rep->reason : rep->result);
        say(r, 0, "error", s, "login refused", "reason=\"%s\"", rep->reason);
        disconnect(s, "login refused");
        return;
    }
    uint64_t acked = rep->has_acked ? rep->acked : 0;
    if (s->last_seq == 0) {
        /* Nothing sent yet: number our events above the server's history
         * of this source, so they are not taken for duplicates. */
        if (acked >= s->next_seq) {
            s->next_seq = acked + 1;
        }
        s->acked = acked;
    } else {
        take_ack(s, acked, true);
    }
    say(r, 1, "info", s, "logged in", "acked=%llu resend=%zu",
        (unsigned long long)acked, s->win.len);
    feedsim_window_rewind(&s->win);
    s->attempt = 0;
    s->st = CONN_READY;
}

static void on_reply(struct source *s, const struct feedsim_reply *rep)
{
    struct feedsim_run *r = s->run;
    switch (rep->kind) {
    case FEEDSIM_REPLY_LOGIN:
        on_login(s, rep);
        break;
    case FEEDSIM_REPLY_ACK:
        r->acks_in++;
        if (rep->has_seq) {
            take_ack(s, rep->seq, false);
        } else {
            r->others_in++;
        }
        break;
    case FEEDSIM_REPLY_ERROR:
        count_reason(r, rep->reason);
        say(r, 2, "debug", s, "error reply", "reason=\"%s\" seq=%llu",
            rep->reason, (unsigned long long)rep->seq);
        break;
    case FEEDSIM_REPLY_CT:
        r->cts_in++;
        break;
    case FEEDSIM_REPLY_OTHER:
        r->others_in++;
        break;
    }
}

static void conn_read(struct source *s)
{
    struct feedsim_run *r = s->run;
    char buf[READ_CHUNK];
    while (s->fd >= 0) {
        ssize_t n = recv(s->fd, buf, sizeof(buf), 0);
        if (n == 0) {
            disconnect(s, "closed by the server");
            return;
        }
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                disconnect(s, strerror(errno));
            }
            return;
        }
        r->now_ns = mono_ns(); /* acks time latencies: be exact */
        r->bytes_in += (uint64_t)n;
        s->last_read_ns = r->now_ns;
        if (feedsim_scan_push(&s->scan, buf, (size_t)n) != 0) {
            fail_nomem(r);
            return;
        }
        struct feedsim_reply rep;
        int rc;
        while (s->fd >= 0 && (rc = feedsim_scan_next(&s->scan, &rep)) != 0) {
            if (rc < 0) {
                disconnect(s, rc == -EMSGSIZE ? "reply too large"
                                              : "unreadable reply");
                return;
            }
            on_reply(s, &rep);
        }
    }
}

/* One turn of a source. Returns when it wants the next turn at the latest
 * (INT64_MAX: only when its socket is ready). */
static int64_t source_tick(struct source *s)
{
    struct feedsim_run *r = s->run;
    const struct feedsim_config *c = &r->cfg;
    int64_t now = r->now_ns;
    int64_t wake = INT64_MAX;

    switch (s->st) {
    case CONN_FAILED:
        return INT64_MAX;
    case CONN_WAIT:
        if (now < s->retry_at_ns) {
            return s->retry_at_ns;
        }
        conn_start(s);
        if (s->st == CONN_WAIT) {
            return s->retry_at_ns;
        }
        if (s->st == CONN_CONNECTING) {
            return s->since_ns + CONNECT_TIMEOUT_NS;
        }
        break;
    case CONN_CONNECTING:
        if (now - s->since_ns >= CONNECT_TIMEOUT_NS) {
            disconnect(s, "connect timed out");
            return s->retry_at_ns;
        }
        return s->since_ns + CONNECT_TIMEOUT_NS;
    case CONN_LOGIN:
    case CONN_READY:
        break;
    }

    int64_t hb_ns = (int64_t)(c->heartbeat_s * 1e9);
    if (s->st == CONN_READY) {
        wake = produce_due(s);
        if (hb_ns > 0 && out_pending(s) == 0 &&
            now - s->last_write_ns >= hb_ns) {
            actor_buf_str(&s->out, "<ct/>\r\n");
            r->heartbeats++;
        }
    }
    flush(s);
    if (s->fd < 0) {
        return min64(wake, s->retry_at_ns);
    }
    int64_t silent_ns = (int64_t)(c->peer_timeout_s * 1e9);
    if (silent_ns > 0) {
        if (now - s->last_read_ns >= silent_ns) {
            disconnect(s, s->st == CONN_LOGIN ? "no login reply"
                                              : "server silent");
            return s->retry_at_ns;
        }
        wake = min64(wake, s->last_read_ns + silent_ns);
    }
    if (s->st == CONN_READY && hb_ns > 0) {
        wake = min64(wake, s->last_write_ns + hb_ns);
    }
    return wake;
}

static void source_io(struct source *s, short revents)
{
    if (s->st == CONN_CONNECTING) {
        conn_finish(s);
        return;
    }
    if (revents & (POLLIN | POLLHUP | POLLERR)) {
        conn_read(s);
    }
    if (s->fd >= 0 && (revents & POLLOUT)) {
        flush(s);
    }
}

/* Everything that must be acknowledged was, and on a live connection the
 * rest (junk, documents that may not use their seq) reached the socket. */
static bool source_settled(const struct source *s)
{
    if (!s->gen_done || feedsim_window_has_required(&s->win)) {
        return false;
    }
    return s->fd < 0 || (s->win.cursor == s->win.len && out_pending(s) == 0);
}

/* ---- the run ------------------------------------------------------------ */

static int source_init(struct feedsim_run *r, struct source *s, uint32_t i)
{
    const struct feedsim_config *c = &r->cfg;
    uint64_t seed = c->gen.seed;
    s->run = r;
    s->fd = -1;
    s->next_seq = 1;
    s->token = c->tokens ? c->tokens[i] : NULL;
    snprintf(s->name, sizeof(s->name), "%s%u", c->source_prefix, i + 1);
    s->rng_multi = feedsim_rng_seed(seed, 10, i);
    s->rng_bad = feedsim_rng_seed(seed, 11, i);
    s->rng_split = feedsim_rng_seed(seed, 12, i);
    s->rng_jitter = feedsim_rng_seed(seed, 13, i);
    feedsim_window_init(&s->win);
    actor_buf_init(&s->out);
    feedsim_scan_init(&s->scan);
    s->budget = UINT64_MAX;
    if (c->events) {
        s->budget = c->events / c->sources + (i < c->events % c->sources);
    }
    /* Matches are dealt round robin: match m belongs to source m % K. */
    size_t n = c->matches / c->sources + (i < c->matches % c->sources);
    s->heap = calloc(n ? n : 1, sizeof(*s->heap));
    if (!s->heap) {
        return -ENOMEM;
    }
    for (uint32_t m = i; m < c->matches; m += c->sources) {
        struct feedsim_gen *g = r->gens[m];
        heap_push(s, (struct slot){feedsim_gen_next_at(g), m, g});
    }
    return 0;
}

struct feedsim_run *feedsim_run_new(const struct feedsim_config *cfg)
{
    struct feedsim_run *r = calloc(1, sizeof(*r));
    if (!r) {
        return NULL;
    }
    r->cfg = *cfg;
    actor_buf_init(&r->doc);
    const struct addrinfo hints = {.ai_socktype = SOCK_STREAM};
    int rc = getaddrinfo(cfg->host, cfg->port, &hints, &r->ai);
    if (rc != 0) {
        r->ai = NULL;
        fprintf(stderr, "feedsim: %s:%s: %s\n", cfg->host, cfg->port,
                gai_strerror(rc));
        errno = EHOSTUNREACH;
        goto out_free;
    }
    r->model = feedsim_model_new();
    r->gens = calloc(cfg->matches, sizeof(*r->gens));
    r->src = calloc(cfg->sources, sizeof(*r->src));
    r->pfd = calloc(cfg->sources, sizeof(*r->pfd));
    r->pfd_src = calloc(cfg->sources, sizeof(*r->pfd_src));
    if (!r->model || !r->gens || !r->src || !r->pfd || !r->pfd_src) {
        goto out_nomem;
    }
    for (uint32_t m = 0; m < cfg->matches; m++) {
        if (!(r->gens[m] = feedsim_gen_new(&cfg->gen, m))) {
            goto out_nomem;
        }
    }
    for (uint32_t i = 0; i < cfg->sources; i++) {
        if (source_init(r, &r->src[i], i) != 0) {
            goto out_nomem;
        }
    }
    r->sim_epoch_ms = cfg->gen.start_epoch * 1000 - SIM_LEAD_MS;
    r->ns_per_sim_ms = cfg->match_seconds * 1e9 / FEEDSIM_NOMINAL_MATCH_MS;
    if (cfg->rate > 0) {
        r->interval_ns = (int64_t)(1e9 * cfg->sources / cfg->rate);
    }
    return r;

out_nomem:
    errno = ENOMEM;
out_free:
    feedsim_run_free(r);
    return NULL;
}

void feedsim_run_free(struct feedsim_run *r)
{
    if (!r) {
        return;
    }
    for (uint32_t i = 0; r->src && i < r->cfg.sources; i++) {
        struct source *s = &r->src[i];
        if (s->fd >= 0) {
            close(s->fd);
        }
        free(s->heap);
        feedsim_window_release(&s->win);
        actor_buf_release(&s->out);
        feedsim_scan_release(&s->scan);
    }
    for (uint32_t m = 0; r->gens && m < r->cfg.matches; m++) {
        feedsim_gen_free(r->gens[m]);
    }
    if (r->ai) {
        freeaddrinfo(r->ai);
    }
    feedsim_model_free(r->model);
    actor_buf_release(&r->doc);
    free(r->src);
    free(r->gens);
    free(r->pfd);
    free(r->pfd_src);
    free(r);
}

/* Decides whether the run is over; updates the deadlines. */
static bool run_over(struct feedsim_run *r)
{
    const struct feedsim_config *c = &r->cfg;
    if (c->stop && *c->stop) {
        r->interrupted = true;
        set_failure(r, "interrupted");
        return true;
    }
    if (r->fatal) {
        return true;
    }
    if (c->duration_s > 0 &&
        r->now_ns - r->start_ns >= (int64_t)(c->duration_s * 1e9)) {
        r->gen_over = true;
    }
    bool making = false;
    bool settled = true;
    for (uint32_t i = 0; i < c->sources; i++) {
        struct source *s = &r->src[i];
        if (r->gen_over) {
            s->gen_done = true;
        }
        making |= !s->gen_done;
        settled &= source_settled(s);
    }
    if (making) {
        return false;
    }
    if (settled) {
        return true;
    }
    if (r->drain_deadline_ns == 0) {
        r->drain_deadline_ns = r->now_ns + (int64_t)(c->ack_timeout_s * 1e9);
    }
    if (r->now_ns >= r->drain_deadline_ns) {
        set_failure(r, "timed out waiting for acks");
        return true;
    }
    return false;
}

int feedsim_run_loop(struct feedsim_run *r)
{
    const struct feedsim_config *c = &r->cfg;
    r->start_ns = r->now_ns = mono_ns();
    for (uint32_t i = 0; i < c->sources; i++) {
        r->src[i].due_ns = r->start_ns;
        r->src[i].retry_at_ns = r->start_ns;
    }
    for (;;) {
        r->now_ns = mono_ns();
        int64_t wake = INT64_MAX;
        for (uint32_t i = 0; i < c->sources; i++) {
            wake = min64(wake, source_tick(&r->src[i]));
        }
        if (run_over(r)) {
            break;
        }
        if (r->drain_deadline_ns) {
            wake = min64(wake, r->drain_deadline_ns);
        }
        if (c->duration_s > 0 && !r->gen_over) {
            wake = min64(wake, r->start_ns + (int64_t)(c->duration_s * 1e9));
        }

        nfds_t n = 0;
        for (uint32_t i = 0; i < c->sources; i++) {
            struct source *s = &r->src[i];
            if (s->fd < 0) {
                continue;
            }
            short ev = s->st == CONN_CONNECTING ? POLLOUT : POLLIN;
            if (out_pending(s) > 0) {
                ev |= POLLOUT;
            }
            r->pfd[n] = (struct pollfd){.fd = s->fd, .events = ev};
            r->pfd_src[n++] = s;
        }
        struct timespec ts;
        struct timespec *tsp = NULL;
        if (wake != INT64_MAX) {
            int64_t d = wake - mono_ns();
            if (d < 0) {
                d = 0;
            }
            ts.tv_sec = (time_t)(d / 1000000000ll);
            ts.tv_nsec = (long)(d % 1000000000ll);
            tsp = &ts;
        }
        int rc = ppoll(r->pfd, n, tsp, c->wait_mask);
        if (rc < 0) {
            if (errno == EINTR) {
                continue;
            }
            set_failure(r, "ppoll: %s", strerror(errno));
            r->fatal = true;
            break;
        }
        r->now_ns = mono_ns();
        for (nfds_t k = 0; k < n && rc > 0; k++) {
            if (r->pfd[k].revents) {
                source_io(r->pfd_src[k], r->pfd[k].revents);
            }
        }
    }
    r->end_ns = mono_ns();
    if (r->nomem) {
        return -ENOMEM;
    }
    /* Stopped by a signal, the run may still owe nothing; a source that
     * never got through delivered nothing, whatever it owes. */
    uint64_t owed = 0;
    const struct source *first = NULL;
    const struct source *absent = NULL;
    for (uint32_t i = 0; i < c->sources; i++) {
        const struct source *s = &r->src[i];
        owed += s->win.required;
        if (!first && s->win.required) {
            first = s;
        }
        if (!absent && s->connects == 0) {
            absent = s;
        }
    }
    if (absent) {
        set_failure(r, "source %s never connected (%s)", absent->name,
                    absent->last_error[0] ? absent->last_error : "no attempt");
    }
    r->complete = !r->fatal && owed == 0 && !absent;
    if (r->complete) {
        return 0;
    }
    size_t len = strlen(r->failure);
    if (first) {
        snprintf(r->failure + len, sizeof(r->failure) - len,
                 "; %llu documents unacknowledged (%s: acked %llu, sent up to "
                 "%llu)",
                 (unsigned long long)owed, first->name,
                 (unsigned long long)first->acked,
                 (unsigned long long)first->last_seq);
    }
    return FEEDSIM_INCOMPLETE;
}

const char *feedsim_run_failure(const struct feedsim_run *r)
{
    return r->failure;
}

/* ---- figures ------------------------------------------------------------ */

static void json_key(struct actor_buf *b, const char *k)
{
    actor_buf_json_str(b, k, strlen(k));
    actor_buf_char(b, ':');
}

static void ms_field(struct actor_buf *b, const char *k, uint64_t us, bool last)
{
    json_key(b, k);
    actor_buf_printf(b, "%.3f%s", (double)us / 1000.0, last ? "" : ",");
}

void feedsim_run_stats(const struct feedsim_run *r, struct actor_buf *out)
{
    const struct feedsim_config *c = &r->cfg;
    uint64_t unacked = 0;
    uint32_t ended = 0;
    uint64_t seq_used = 0;
    for (uint32_t i = 0; i < c->sources; i++) {
        unacked += r->src[i].win.required;
    }
    for (uint32_t m = 0; m < c->matches; m++) {
        ended += feedsim_gen_is_done(r->gens[m]);
    }
    for (int k = 0; k < FEEDSIM_BAD_N; k++) {
        if (feedsim_bad_is_seq_used((enum feedsim_bad_kind)k)) {
            seq_used += r->bad_sent[k];
        }
    }
    int64_t end = r->end_ns ? r->end_ns : mono_ns();
    actor_buf_printf(
        out,
        "{\"complete\":%s,\"interrupted\":%s,\"elapsed_s\":%.3f,"
        "\"matches\":%u,\"matches_ended\":%u,\"events_sent\":%llu,"
        "\"events_resent\":%llu,\"events_acked\":%llu,\"unacked\":%llu,",
        r->complete ? "true" : "false", r->interrupted ? "true" : "false",
        (double)(end - r->start_ns) / 1e9, c->matches, ended,
        (unsigned long long)r->events_sent,
        (unsigned long long)r->events_resent,
        (unsigned long long)r->events_acked, (unsigned long long)unacked);
    actor_buf_printf(
        out,
        "\"bytes_sent\":%llu,\"bytes_received\":%llu,\"writes\":%llu,"
        "\"heartbeats_sent\":%llu,\"heartbeats_received\":%llu,"
        "\"acks_received\":%llu,\"other_replies\":%llu,\"acks_ahead\":%llu,"
        "\"acks_back\":%llu,\"connects\":%llu,",
        (unsigned long long)r->bytes_out, (unsigned long long)r->bytes_in,
        (unsigned long long)r->writes, (unsigned long long)r->heartbeats,
        (unsigned long long)r->cts_in, (unsigned long long)r->acks_in,
        (unsigned long long)r->others_in, (unsigned long long)r->acks_ahead,
        (unsigned long long)r->acks_back, (unsigned long long)r->connects);
    json_key(out, "errors");
    actor_buf_char(out, '{');
    for (size_t i = 0; i < r->n_reasons; i++) {
        actor_buf_str(out, i ? "," : "");
        json_key(out, r->reasons[i].name);
        actor_buf_printf(out, "%llu", (unsigned long long)r->reasons[i].n);
    }
    actor_buf_str(out, "},");
    json_key(out, "malformed");
    actor_buf_char(out, '{');
    for (int k = 0; k < FEEDSIM_BAD_N; k++) {
        actor_buf_str(out, k ? "," : "");
        json_key(out, feedsim_bad_name((enum feedsim_bad_kind)k));
        actor_buf_printf(out, "%llu", (unsigned long long)r->bad_sent[k]);
    }
    actor_buf_printf(out,
                     "},\"malformed_seq_used\":%llu,\"malformed_resent\":%llu,"
                     "\"malformed_acked\":%llu,",
                     (unsigned long long)seq_used,
                     (unsigned long long)r->bad_resent,
                     (unsigned long long)r->bad_acked);
    json_key(out, "latency_ms");
    actor_buf_char(out, '{');
    ms_field(out, "p50", feedsim_hist_quantile(&r->latency, 0.50), false);
    ms_field(out, "p99", feedsim_hist_quantile(&r->latency, 0.99), false);
    ms_field(out, "max", r->latency.max_us, true);
    actor_buf_str(out, "},");
    json_key(out, "sources");
    actor_buf_char(out, '{');
    for (uint32_t i = 0; i < c->sources; i++) {
        const struct source *s = &r->src[i];
        actor_buf_str(out, i ? "," : "");
        json_key(out, s->name);
        actor_buf_printf(
            out,
            "{\"last_seq\":%llu,\"last_event_seq\":%llu,\"acked\":%llu,"
            "\"events\":%llu,\"unacked\":%zu,\"connects\":%llu}",
            (unsigned long long)s->last_seq,
            (unsigned long long)s->last_event_seq, (unsigned long long)s->acked,
            (unsigned long long)s->made, s->win.required,
            (unsigned long long)s->connects);
    }
    actor_buf_str(out, "}}");
}

void feedsim_run_expect(const struct feedsim_run *r, struct actor_buf *out)
{
    actor_buf_char(out, '{');
    json_key(out, "matches");
    feedsim_model_json(r->model, out);
    actor_buf_char(out, ',');
    json_key(out, "sources");
    actor_buf_char(out, '{');
    for (uint32_t i = 0; i < r->cfg.sources; i++) {
        const struct source *s = &r->src[i];
        actor_buf_str(out, i ? "," : "");
        json_key(out, s->name);
        actor_buf_printf(out, "{\"last_seq\":%llu,\"last_event_seq\":%llu}",
                         (unsigned long long)s->last_seq,
                         (unsigned long long)s->last_event_seq);
    }
    actor_buf_str(out, "}}");
}
