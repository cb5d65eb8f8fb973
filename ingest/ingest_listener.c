/* ingest/ingest_listener.c - the feed port: accepts connections and starts
 * one conn actor for each under `ingest.conns`. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ingest/ingest_impl.h"

/*
 * DESIGN
 * A non-blocking listening socket watched through the runtime. Each
 * readiness accepts at most ACCEPT_BATCH connections, then re-arms, so a
 * connection storm takes turns with everything else. Over the connection
 * limit a connection is accepted and closed at once (counted): the kernel
 * backlog would otherwise fill and real feeds could not get in either.
 * When the process is out of file descriptors, accept fails without
 * taking the connection off the backlog, and epoll would report it again
 * at once: the listener pauses for ACCEPT_PAUSE_MS instead of spinning.
 * Once the stage drains, the socket is closed (connections still in the
 * kernel's backlog are refused with it) and a listener restarted during
 * the drain never opens one: feeds find the port closed and retry later.
 */

#define ACCEPT_BATCH    64
#define ACCEPT_PAUSE_MS 100
#define LISTEN_BACKLOG  1024

static _Atomic unsigned listen_port;

unsigned ingest_port(void)
{
    return atomic_load(&listen_port);
}

struct listener {
    const struct ingest__env *env; /* not owned */
    int fd;                        /* owned; -1 once draining */
    uint64_t watch;
    uint64_t conns; /* the `ingest.conns` supervisor */
    uint64_t pause; /* timer while paused, or 0 */
};

/* Binds and listens on @host:@port. Returns the socket or a negative
 * errno. */
static int open_socket(const char *host, unsigned port)
{
    char service[8];
    snprintf(service, sizeof(service), "%u", port);
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC,
        .ai_socktype = SOCK_STREAM,
        .ai_flags = AI_PASSIVE | AI_NUMERICSERV,
    };
    struct addrinfo *res;
    int gai = getaddrinfo(host, service, &hints, &res);
    if (gai != 0) {
        actor_log(NULL, ACTOR_LOG_ERROR, "feed address not resolved", "bind",
                  host, "error", gai_strerror(gai), NULL);
        return -EADDRNOTAVAIL;
    }
    int rc = -EADDRNOTAVAIL;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        int fd = socket(ai->ai_family,
                        ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            rc = -errno;
            continue;
        }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 &&
            listen(fd, LISTEN_BACKLOG) == 0) {
            freeaddrinfo(res);
            return fd;
        }
        rc = -errno;
        close(fd);
    }
    freeaddrinfo(res);
    return rc;
}

/* The port @fd is bound to. */
static unsigned bound_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0) {
        return 0;
    }
    if (ss.ss_family == AF_INET6) {
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    }
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

/* Writes "address:port" of @sa into @out. */
static void peer_name(const struct sockaddr_storage *sa, char *out, size_t size)
{
    char host[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    if (sa->ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
        port = ntohs(in->sin_port);
    } else if (sa->ss_family == AF_INET6) {
        const struct sockaddr_in6 *in = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &in->sin6_addr, host, sizeof(host));
        port = ntohs(in->sin6_port);
    }
    snprintf(out, size, "%s:%u", host, port);
}

static int listener_init(struct actor_ctx *ctx, void *arg, void **state)
{
    const struct ingest__env *env = arg;
    struct listener *l = calloc(1, sizeof(*l));
    if (!l) {
        return -ENOMEM;
    }
    int rc;
    l->env = env;
    l->fd = -1;
    l->conns = actor_whereis("ingest.conns");
    if (!l->conns) {
        rc = -ESRCH;
        goto out_free;
    }
    if (ingest__is_draining()) {
        *state = l;
        return 0;
    }
    l->fd = open_socket(env->cfg.bind, env->cfg.port);
    if (l->fd < 0) {
        rc = l->fd;
        actor_log(ctx, ACTOR_LOG_ERROR, "feed port not opened", "bind",
                  env->cfg.bind, "port", ACTOR_LOG_INT(env->cfg.port), "error",
                  strerror(-rc), NULL);
        goto out_free;
    }
    l->watch = actor_io_watch(ctx, l->fd, EPOLLIN);
    if (!l->watch) {
        rc = -errno;
        goto out_close;
    }
    atomic_store(&listen_port, bound_port(l->fd));
    actor_log(ctx, ACTOR_LOG_INFO, "feed port open", "bind", env->cfg.bind,
              "port", ACTOR_LOG_INT(bound_port(l->fd)), "tokens",
              env->tokens ? "yes" : "no", NULL);
    *state = l;
    return 0;

out_close:
    close(l->fd);
out_free:
    free(l);
    return rc;
}

/* Accepts one connection. Returns 1 when one was handled, 0 when the
 * backlog is empty or the listener pauses. */
static int accept_one(struct actor_ctx *ctx, struct listener *l)
{
    struct sockaddr_storage sa;
    socklen_t len = sizeof(sa);
    int fd = accept4(l->fd, (struct sockaddr *)&sa, &len,
                     SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
        switch (errno) {
        case EAGAIN:
            return 0;
        case EMFILE:
        case ENFILE:
        case ENOBUFS:
        case ENOMEM: {
            int err = errno;
            ACTOR_LOG_RL(ctx, ACTOR_LOG_ERROR, "accept failed: pausing",
                         "error", strerror(err), "pause_ms",
                         ACTOR_LOG_INT(ACCEPT_PAUSE_MS), NULL);
            struct actor_msg *m = actor_msg_new(sizeof(*m), INGEST_MSG_ACCEPT);
            if (m) {
                l->pause = actor_send_after(ctx, ACCEPT_PAUSE_MS, m);
            }
            return 0;
        }
        default:
            return 1; /* the peer's trouble (ECONNABORTED, ...): next */
        }
    }
    char peer[64];
    peer_name(&sa, peer, sizeof(peer));
    if (atomic_load(&ingest__conns_alive) >= l->env->cfg.max_conns) {
        close(fd);
        actor_metric_add(ingest__m.refused, 1);
        ACTOR_LOG_RL(ctx, ACTOR_LOG_WARN, "feed connection refused: limit",
                     "peer", peer, "max_conns",
                     ACTOR_LOG_INT(l->env->cfg.max_conns), NULL);
        return 1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    int rc = ingest__conn_start(l->env, l->conns, fd, peer, NULL);
    if (rc != 0) {
        ACTOR_LOG_RL(ctx, ACTOR_LOG_ERROR, "feed connection not started",
                     "peer", peer, "error", strerror(-rc), NULL);
    }
    return 1;
}

static int on_ready(struct actor_ctx *ctx, struct listener *l)
{
    for (int i = 0; i < ACCEPT_BATCH; i++) {
        if (!accept_one(ctx, l)) {
            break;
        }
    }
    if (l->pause) {
        return 0; /* the timer re-arms */
    }
    int rc = actor_io_rearm(ctx, l->watch, EPOLLIN);
    return rc < 0 ? rc : 0;
}

/* Closes the feed port for good: the stage drains. */
static void stop_listening(struct actor_ctx *ctx, struct listener *l)
{
    actor_io_unwatch(ctx, l->watch);
    l->watch = 0;
    if (l->pause) {
        actor_cancel_timer(ctx, l->pause);
        l->pause = 0;
    }
    close(l->fd);
    l->fd = -1;
    atomic_store(&listen_port, 0);
    actor_log(ctx, ACTOR_LOG_INFO, "feed port closed: draining", NULL);
}

static int listener_handle(struct actor_ctx *ctx, void *state,
                           struct actor_msg *msg)
{
    struct listener *l = state;
    if (l->fd >= 0 && ingest__is_draining()) {
        stop_listening(ctx, l); /* before accepting anything more */
    }
    switch (msg->type) {
    case ACTOR_MSG_IO:
        return l->fd >= 0 ? on_ready(ctx, l) : 0;
    case INGEST_MSG_ACCEPT:
        l->pause = 0;
        return l->fd >= 0 ? on_ready(ctx, l) : 0;
    case INGEST_MSG_DRAIN:
        return 0; /* a wake-up: the flag was looked at above */
    default:
        return -EINVAL;
    }
}

static void listener_stop(struct actor_ctx *ctx, void *state,
                          const struct actor_exit *why)
{
    (void)ctx;
    (void)why;
    struct listener *l = state;
    if (l->fd >= 0) {
        atomic_store(&listen_port, 0);
        close(l->fd);
    }
    free(l);
}

const struct actor_ops ingest__listener_ops = {
    .name = "ingest.listener",
    .init = listener_init,
    .handle = listener_handle,
    .stop = listener_stop,
};
