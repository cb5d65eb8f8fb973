/* tools/wsbench/wsbench_raw.c - the lean client engine of scorewire-wsbench:
 * nonblocking sockets on one epoll, the RFC 6455 client side by hand. */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tools/wsbench/wsbench.h"

/*
 * DESIGN
 * What libwebsockets' client does a byte at a time, this does a frame at a
 * time: each readable socket is read into one shared buffer (after the
 * bytes a previous read left unparsed), whole frames are handed on where
 * they lie, and only a partial frame's bytes are kept per connection. The
 * handshake is checked for status 101 and the upgrade; the accept key is
 * not verified (the peer is our own server, and SHA-1 would need OpenSSL
 * linked here). Server frames must not be masked; ours are.
 */

#define READ_CHUNK (256 * 1024)

enum rstate { R_CONNECTING, R_HANDSHAKE, R_OPEN };

struct rconn {
    int fd;
    enum rstate st;
    bool in_message; /* a fragmented text message is in progress */
    char *left;      /* bytes of a partial frame (or handshake) */
    size_t left_len;
};

struct engine {
    struct wb_run *run;
    int ep;
    struct addrinfo *ai;
    char *buf; /* the shared read buffer */
    size_t cap;
    char request[512];
    size_t request_len;
};

static void conn_close(struct engine *e, struct wb_conn *c)
{
    struct rconn *r = c->io;
    if (!r) {
        return;
    }
    if (r->st == R_OPEN) {
        wb_on_closed(e->run, c);
    }
    epoll_ctl(e->ep, EPOLL_CTL_DEL, r->fd, NULL);
    close(r->fd);
    free(r->left);
    free(r);
    c->io = NULL;
}

static void conn_fail(struct engine *e, struct wb_conn *c, const char *why)
{
    struct rconn *r = c->io;
    if (r && r->st != R_OPEN) {
        wb_on_failed(e->run, c, why);
    }
    conn_close(e, c);
}

/* Sends one masked client frame; small control messages only. */
static int send_frame(struct rconn *r, int opcode, const char *data, size_t len)
{
    unsigned char f[14 + 4096];
    if (len > 4096) {
        return -E2BIG;
    }
    size_t h = 0;
    f[h++] = (unsigned char)(0x80 | opcode);
    if (len < 126) {
        f[h++] = (unsigned char)(0x80 | len);
    } else {
        f[h++] = 0x80 | 126;
        f[h++] = (unsigned char)(len >> 8);
        f[h++] = (unsigned char)len;
    }
    uint32_t key = (uint32_t)random();
    unsigned char mask[4] = {(unsigned char)key, (unsigned char)(key >> 8),
                             (unsigned char)(key >> 16),
                             (unsigned char)(key >> 24)};
    memcpy(f + h, mask, 4);
    h += 4;
    for (size_t i = 0; i < len; i++) {
        f[h + i] = (unsigned char)data[i] ^ mask[i & 3];
    }
    ssize_t n = send(r->fd, f, h + len, MSG_NOSIGNAL);
    return n == (ssize_t)(h + len) ? 0 : -EIO;
}

static void open_some(struct engine *e, uint32_t n)
{
    struct wb_run *run = e->run;
    for (; n > 0 && run->opened < run->o.connections; n--) {
        struct wb_conn *c = &run->conns[run->opened];
        c->idx = run->opened++;
        struct rconn *r = calloc(1, sizeof(*r));
        if (!r) {
            wb_on_failed(run, c, "out of memory");
            continue;
        }
        r->fd = socket(e->ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
        if (r->fd < 0) {
            wb_on_failed(run, c, strerror(errno));
            free(r);
            continue;
        }
        c->io = r;
        if (connect(r->fd, e->ai->ai_addr, e->ai->ai_addrlen) != 0 &&
            errno != EINPROGRESS) {
            conn_fail(e, c, strerror(errno));
            continue;
        }
        struct epoll_event ev = {.events = EPOLLOUT | EPOLLIN, .data.ptr = c};
        if (epoll_ctl(e->ep, EPOLL_CTL_ADD, r->fd, &ev) != 0) {
            conn_fail(e, c, strerror(errno));
        }
    }
}

/* Parses whole frames in @p (@n bytes). Returns bytes consumed, or -1 when
 * the connection must close. */
static ssize_t frames(struct engine *e, struct wb_conn *c, const char *p,
                      size_t n)
{
    struct rconn *r = c->io;
    size_t at = 0;
    while (n - at >= 2) {
        const unsigned char *h = (const unsigned char *)p + at;
        bool fin = h[0] & 0x80;
        int op = h[0] & 0x0f;
        if (h[1] & 0x80) {
            return -1; /* a server must not mask */
        }
        uint64_t len = h[1] & 0x7f;
        size_t hl = 2;
        if (len == 126) {
            if (n - at < 4) {
                break;
            }
            len = (uint64_t)h[2] << 8 | h[3];
            hl = 4;
        } else if (len == 127) {
            if (n - at < 10) {
                break;
            }
            len = 0;
            for (int i = 0; i < 8; i++) {
                len = len << 8 | h[2 + i];
            }
            hl = 10;
        }
        if (n - at - hl < len) {
            break;
        }
        const char *payload = p + at + hl;
        at += hl + (size_t)len;
        switch (op) {
        case 0x0: /* continuation */
        case 0x1: /* text */
            if (wb_on_data(e->run, c, payload, (size_t)len, op == 0x1, fin) !=
                0) {
                e->run->error = -ENOMEM;
                return -1;
            }
            r->in_message = !fin;
            break;
        case 0x8: { /* close: answer and go */
            int code = len >= 2 ? (unsigned char)payload[0] << 8 |
                                      (unsigned char)payload[1]
                                : 0;
            wb_on_close_frame(e->run, c, code);
            (void)send_frame(r, 0x8, payload, len >= 2 ? 2 : 0);
            return -1;
        }
        case 0x9: /* ping */
            (void)send_frame(r, 0xa, payload, (size_t)len);
            break;
        case 0xa: /* pong */
            break;
        default: /* binary or reserved: not ours */
            e->run->reader.counts.bad++;
            break;
        }
    }
    return (ssize_t)at;
}

static void on_handshake(struct engine *e, struct wb_conn *c, char *p, size_t n,
                         size_t *used)
{
    struct rconn *r = c->io;
    char *end = memmem(p, n, "\r\n\r\n", 4);
    *used = 0;
    if (!end) {
        if (n > 8192) {
            conn_fail(e, c, "handshake too long");
        }
        return;
    }
    *end = '\0';
    if (strncmp(p, "HTTP/1.1 101", 12) != 0 ||
        !strcasestr(p, "\nupgrade: websocket")) {
        char why[64];
        snprintf(why, sizeof(why), "handshake: %.40s", p);
        conn_fail(e, c, why);
        return;
    }
    *used = (size_t)(end - p) + 4;
    r->st = R_OPEN;
    wb_on_established(e->run, c);
    /* Edge-triggered from here: a read that comes back short has emptied
     * the socket, so the event need not be polled again to learn that
     * (level-triggered, that second poll was a tenth of our CPU). */
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | EPOLLET,
                             .data.ptr = c};
    epoll_ctl(e->ep, EPOLL_CTL_MOD, r->fd, &ev);
    if (send_frame(r, 0x1, e->run->subscribe_msg, e->run->subscribe_len) != 0) {
        conn_close(e, c);
        return;
    }
    c->sent_subscribe = true;
}

/* What a read left: */
enum {
    READ_STOP = -1, /* nothing more now: EAGAIN, or the connection is gone */
    READ_SHORT = 0, /* a short read: the socket was emptied */
    READ_MORE = 1   /* the buffer filled (or EINTR): read again */
};

/* Reads what one recv() brings and handles it; returns READ_*. */
static int on_readable(struct engine *e, struct wb_conn *c)
{
    struct rconn *r = c->io;
    /* The unparsed bytes first, then as much as one read brings. */
    if (r->left_len + READ_CHUNK > e->cap) {
        size_t cap = e->cap;
        while (r->left_len + READ_CHUNK > cap) {
            cap *= 2;
        }
        char *b = realloc(e->buf, cap);
        if (!b) {
            e->run->error = -ENOMEM;
            return READ_STOP;
        }
        e->buf = b;
        e->cap = cap;
    }
    if (r->left_len > 0) {
        memcpy(e->buf, r->left, r->left_len);
    }
    ssize_t got = recv(r->fd, e->buf + r->left_len, READ_CHUNK, 0);
    if (got <= 0) {
        if (got < 0 && errno == EINTR) {
            return READ_MORE;
        }
        if (got < 0 && errno == EAGAIN) {
            return READ_STOP;
        }
        conn_fail(e, c, got == 0 ? "closed by the server" : strerror(errno));
        return READ_STOP;
    }
    size_t n = r->left_len + (size_t)got, used = 0;
    char *p = e->buf;
    if (r->st == R_HANDSHAKE) {
        on_handshake(e, c, p, n, &used);
        if (!c->io) {
            return READ_STOP; /* failed and freed */
        }
        if (r->st != R_OPEN) {
            /* Keep the partial response for the next read. */
            char *l = realloc(r->left, n);
            if (!l) {
                e->run->error = -ENOMEM;
                return READ_STOP;
            }
            memcpy(l, p, n);
            r->left = l;
            r->left_len = n;
            return got == READ_CHUNK ? READ_MORE : READ_SHORT;
        }
    }
    ssize_t k = frames(e, c, p + used, n - used);
    if (k < 0) {
        conn_close(e, c);
        return READ_STOP;
    }
    used += (size_t)k;
    size_t rest = n - used;
    if (rest > 0) {
        char *l = rest > r->left_len ? realloc(r->left, rest) : r->left;
        if (!l) {
            e->run->error = -ENOMEM;
            return READ_STOP;
        }
        memmove(l, p + used, rest);
        r->left = l;
    }
    r->left_len = rest;
    return got == READ_CHUNK ? READ_MORE : READ_SHORT;
}

static void on_event(struct engine *e, struct wb_conn *c, uint32_t events)
{
    struct rconn *r = c->io;
    if (r->st == R_CONNECTING) {
        int err = 0;
        socklen_t el = sizeof(err);
        getsockopt(r->fd, SOL_SOCKET, SO_ERROR, &err, &el);
        if (err || (events & (EPOLLERR | EPOLLHUP))) {
            conn_fail(e, c, strerror(err ? err : ECONNREFUSED));
            return;
        }
        if (!(events & EPOLLOUT)) {
            return;
        }
        if (send(r->fd, e->request, e->request_len, MSG_NOSIGNAL) !=
            (ssize_t)e->request_len) {
            conn_fail(e, c, "sending the handshake");
            return;
        }
        r->st = R_HANDSHAKE;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        epoll_ctl(e->ep, EPOLL_CTL_MOD, r->fd, &ev);
        return;
    }
    /* Edge-triggered, a short read ends the event, but not when the
     * server has closed: then the FIN (or RST) behind the data is read too,
     * or no later edge would tell of it. */
    bool hangup = events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR);
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
        for (;;) {
            int rc = on_readable(e, c);
            if (rc == READ_STOP || !c->io || e->run->error ||
                (rc == READ_SHORT && !hangup)) {
                break;
            }
        }
    }
}

int wb_raw_run(struct wb_run *run, volatile sig_atomic_t *interrupted)
{
    struct engine e = {.run = run, .ep = -1, .cap = 2 * READ_CHUNK};
    char port[16];
    snprintf(port, sizeof(port), "%d", run->o.port);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM};
    int rc = getaddrinfo(run->o.address, port, &hints, &e.ai);
    if (rc != 0) {
        snprintf(run->last_connect_error, sizeof(run->last_connect_error), "%s",
                 gai_strerror(rc));
        return -EHOSTUNREACH;
    }
    e.request_len = (size_t)snprintf(
        e.request, sizeof(e.request),
        "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: c2NvcmV3aXJlLWJlbmNoIQ==\r\n"
        "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: scorewire.v1\r\n"
        "\r\n",
        run->o.path, run->o.address, run->o.port);
    e.buf = malloc(e.cap);
    e.ep = epoll_create1(EPOLL_CLOEXEC);
    if (!e.buf || e.ep < 0) {
        rc = -ENOMEM;
        goto out;
    }
    int64_t next_tick = wb_mono_us();
    struct epoll_event ev[512];
    while (run->phase != WB_DONE && !run->error) {
        int64_t now = wb_mono_us();
        if (now >= next_tick || *interrupted) {
            open_some(&e, wb_tick(run, *interrupted));
            next_tick += WB_TICK_US;
            if (next_tick < now) {
                next_tick = now + WB_TICK_US;
            }
            continue;
        }
        int wait_ms = (int)((next_tick - now + 999) / 1000);
        int n = epoll_wait(e.ep, ev, 512, wait_ms);
        for (int i = 0; i < n; i++) {
            struct wb_conn *c = ev[i].data.ptr;
            if (c->io) {
                on_event(&e, c, ev[i].events);
            }
        }
    }
    rc = 0;
out:
    for (uint32_t i = 0; i < run->opened; i++) {
        if (run->conns[i].io) {
            struct rconn *r = run->conns[i].io;
            if (r->st == R_OPEN) {
                run->conns[i].open = false; /* ours, not the server's */
            }
            conn_close(&e, &run->conns[i]);
        }
    }
    if (e.ep >= 0) {
        close(e.ep);
    }
    free(e.buf);
    freeaddrinfo(e.ai);
    return rc;
}
