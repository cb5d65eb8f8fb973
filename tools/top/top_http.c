/* tools/top/top_http.c - a small HTTP/1.1 client for the admin port: one
 * GET with Connection: close, under a deadline, cancellable. */

/*
 * DESIGN
 * The socket is non-blocking and every wait is a poll() bounded by what is
 * left of the call's deadline, so a daemon that accepts and then hangs
 * costs one timeout, never a stuck screen. A second fd in the same poll
 * (the signal pipe) cancels the call at once, so Ctrl-C is immediate.
 * The response parser is a pure function of the bytes so far, called after
 * each read: it says "more" until the framing (Content-Length, chunked, or
 * the close) says the body is whole; the tests drive it directly.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "actor/actor.h"
#include "tools/top/top.h"

#define HEAD_MAX   (64 * 1024) /* bytes of status line and headers */
#define READ_CHUNK (64 * 1024)

int64_t top_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- parsing ----------------------------------------------------------- */

static const char *find(const char *s, const char *end, const char *what)
{
    size_t n = strlen(what);
    for (; (size_t)(end - s) >= n; s++) {
        if (memcmp(s, what, n) == 0) {
            return s;
        }
    }
    return NULL;
}

static bool header_is(const char *line, size_t name_len, const char *name)
{
    return strlen(name) == name_len && strncasecmp(line, name, name_len) == 0;
}

/* Decimal digits only, into *@out; -EPROTO when empty or too big. */
static int parse_length(const char *s, const char *end, size_t *out)
{
    size_t n = 0;
    if (s == end) {
        return -EPROTO;
    }
    for (; s < end; s++) {
        if (*s < '0' || *s > '9' || n > (SIZE_MAX - 9) / 10) {
            return -EPROTO;
        }
        n = n * 10 + (size_t)(*s - '0');
    }
    *out = n;
    return 0;
}

/* Whether the last transfer coding of "a, b, chunked" is chunked. */
static bool last_is_chunked(const char *v, const char *end)
{
    while (end > v && (end[-1] == ' ' || end[-1] == '\t')) {
        end--;
    }
    const char *s = end;
    while (s > v && s[-1] != ',' && s[-1] != ' ' && s[-1] != '\t') {
        s--;
    }
    return end - s == 7 && strncasecmp(s, "chunked", 7) == 0;
}

/* Decodes a chunked body at [s, end) into @body. */
static int dechunk(const char *s, const char *end, bool eof,
                   struct actor_buf *body)
{
    for (;;) {
        const char *crlf = find(s, end, "\r\n");
        if (!crlf) {
            return eof ? -EPROTO : TOP_HTTP_MORE;
        }
        size_t size = 0;
        const char *p = s;
        for (; p < crlf && *p != ';' && *p != ' ' && *p != '\t'; p++) {
            int d;
            if (*p >= '0' && *p <= '9') {
                d = *p - '0';
            } else if ((*p | 0x20) >= 'a' && (*p | 0x20) <= 'f') {
                d = (*p | 0x20) - 'a' + 10;
            } else {
                return -EPROTO;
            }
            if (size > (TOP_HTTP_BODY_MAX >> 4)) {
                return -EMSGSIZE;
            }
            size = size << 4 | (size_t)d;
        }
        if (p == s) {
            return -EPROTO; /* no size digits */
        }
        s = crlf + 2; /* chunk extensions after ';' are ignored */
        if (size == 0) {
            /* trailers, each a line, up to an empty line */
            for (;;) {
                crlf = find(s, end, "\r\n");
                if (!crlf) {
                    return eof ? -EPROTO : TOP_HTTP_MORE;
                }
                if (crlf == s) {
                    return body->err;
                }
                s = crlf + 2;
            }
        }
        if (body->len + size > TOP_HTTP_BODY_MAX) {
            return -EMSGSIZE;
        }
        if ((size_t)(end - s) < size + 2) {
            return eof ? -EPROTO : TOP_HTTP_MORE;
        }
        if (s[size] != '\r' || s[size + 1] != '\n') {
            return -EPROTO;
        }
        actor_buf_add(body, s, size);
        s += size + 2;
    }
}

int top_http_parse(const char *raw, size_t len, bool eof, int *status,
                   struct actor_buf *body)
{
    const char *end = raw + len;
    const char *head_end = find(raw, end, "\r\n\r\n");
    if (!head_end) {
        if (len > HEAD_MAX) {
            return -EPROTO;
        }
        return eof ? -EPROTO : TOP_HTTP_MORE;
    }
    /* "HTTP/1.x NNN reason" */
    if (head_end - raw < 12 || memcmp(raw, "HTTP/1.", 7) != 0 ||
        (raw[7] != '0' && raw[7] != '1') || raw[8] != ' ') {
        return -EPROTO;
    }
    int code = 0;
    for (int i = 9; i < 12; i++) {
        if (raw[i] < '0' || raw[i] > '9') {
            return -EPROTO;
        }
        code = code * 10 + raw[i] - '0';
    }
    if (code < 100 || (raw[12] != ' ' && raw[12] != '\r')) {
        return -EPROTO;
    }
    bool chunked = false, coded = false, have_length = false;
    size_t length = 0;
    const char *line = find(raw, head_end + 2, "\r\n") + 2;
    while (line < head_end + 2) {
        const char *eol = find(line, head_end + 2, "\r\n");
        const char *colon = memchr(line, ':', (size_t)(eol - line));
        if (!colon || colon == line || *line == ' ' || *line == '\t') {
            return -EPROTO; /* no name, or obsolete line folding */
        }
        const char *v = colon + 1, *v_end = eol;
        while (v < v_end && (*v == ' ' || *v == '\t')) {
            v++;
        }
        while (v_end > v && (v_end[-1] == ' ' || v_end[-1] == '\t')) {
            v_end--;
        }
        size_t name_len = (size_t)(colon - line);
        if (header_is(line, name_len, "content-length")) {
            size_t n;
            if (parse_length(v, v_end, &n) != 0 ||
                (have_length && n != length)) {
                return -EPROTO;
            }
            have_length = true;
            length = n;
        } else if (header_is(line, name_len, "transfer-encoding")) {
            coded = true;
            chunked = last_is_chunked(v, v_end);
        }
        line = eol + 2;
    }
    *status = code;
    actor_buf_reset(body);
    const char *b = head_end + 4;
    size_t have = (size_t)(end - b);
    if (code < 200 || code == 204 || code == 304) {
        return body->err;
    }
    /* RFC 9112 6.3: a transfer coding wins over Content-Length; one
     * that does not end in chunked runs to the close */
    if (chunked) {
        return dechunk(b, end, eof, body);
    }
    if (have_length && !coded) {
        if (length > TOP_HTTP_BODY_MAX) {
            return -EMSGSIZE;
        }
        if (have < length) {
            return eof ? -EPROTO : TOP_HTTP_MORE;
        }
        actor_buf_add(body, b, length);
        return body->err;
    }
    if (have > TOP_HTTP_BODY_MAX) {
        return -EMSGSIZE;
    }
    if (!eof) {
        return TOP_HTTP_MORE;
    }
    actor_buf_add(body, b, have);
    return body->err;
}

int top_http_split_addr(const char *addr, char *host, size_t size, char *port,
                        size_t port_size)
{
    const char *h = addr, *h_end, *p;
    if (*addr == '[') {
        h = addr + 1;
        h_end = strchr(h, ']');
        if (!h_end || h_end[1] != ':') {
            return -EINVAL;
        }
        p = h_end + 2;
    } else {
        h_end = strrchr(addr, ':');
        if (!h_end || memchr(addr, ':', (size_t)(h_end - addr))) {
            return -EINVAL; /* no port, or a bare IPv6 address */
        }
        p = h_end + 1;
    }
    size_t hn = (size_t)(h_end - h), pn = strlen(p);
    if (hn == 0 || hn >= size || pn == 0 || pn >= port_size || pn > 5 ||
        strspn(p, "0123456789") != pn || atoi(p) < 1 || atoi(p) > 65535) {
        return -EINVAL;
    }
    memcpy(host, h, hn);
    host[hn] = '\0';
    memcpy(port, p, pn + 1);
    return 0;
}

/* ---- the request ------------------------------------------------------- */

/* Waits for @events on @fd until @deadline. Returns 0, -ETIMEDOUT, or
 * -EINTR when @cancel_fd is readable. */
static int wait_fd(int fd, short events, int cancel_fd, int64_t deadline)
{
    for (;;) {
        int64_t left = deadline - top_now_ms();
        if (left <= 0) {
            return -ETIMEDOUT;
        }
        struct pollfd pf[2] = {{.fd = fd, .events = events},
                               {.fd = cancel_fd, .events = POLLIN}};
        int n = poll(pf, cancel_fd >= 0 ? 2 : 1, (int)left);
        if (n < 0 && errno != EINTR) {
            return -errno;
        }
        if (n > 0 && (pf[1].revents & POLLIN) && cancel_fd >= 0) {
            return -EINTR;
        }
        if (n > 0 && pf[0].revents) {
            return 0;
        }
    }
}

static int connect_one(const struct addrinfo *ai, int cancel_fd,
                       int64_t deadline, int *out)
{
    int fd =
        socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
               ai->ai_protocol);
    if (fd < 0) {
        return -errno;
    }
    int rc = 0;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        if (errno != EINPROGRESS) {
            rc = -errno;
            goto out_close;
        }
        if ((rc = wait_fd(fd, POLLOUT, cancel_fd, deadline)) != 0) {
            goto out_close;
        }
        int so = 0;
        socklen_t sl = sizeof(so);
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &so, &sl) != 0) {
            rc = -errno;
            goto out_close;
        }
        if (so != 0) {
            rc = -so;
            goto out_close;
        }
    }
    *out = fd;
    return 0;

out_close:
    close(fd);
    return rc;
}

static int send_all(int fd, const char *s, size_t n, int cancel_fd,
                    int64_t deadline)
{
    while (n > 0) {
        ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno != EAGAIN) {
                return -errno;
            }
            int rc = wait_fd(fd, POLLOUT, cancel_fd, deadline);
            if (rc != 0) {
                return rc;
            }
            continue;
        }
        s += w;
        n -= (size_t)w;
    }
    return 0;
}

static int receive(int fd, int cancel_fd, int64_t deadline, int *status,
                   struct actor_buf *body)
{
    struct actor_buf raw;
    actor_buf_init(&raw);
    int rc;
    for (;;) {
        if (actor_buf_reserve(&raw, READ_CHUNK) != 0) {
            rc = -ENOMEM;
            break;
        }
        ssize_t r = recv(fd, raw.data + raw.len, READ_CHUNK, 0);
        if (r < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno != EAGAIN) {
                rc = -errno;
                break;
            }
            if ((rc = wait_fd(fd, POLLIN, cancel_fd, deadline)) != 0) {
                break;
            }
            continue;
        }
        raw.len += (size_t)r;
        rc = top_http_parse(raw.data, raw.len, r == 0, status, body);
        if (rc != TOP_HTTP_MORE) {
            break;
        }
    }
    actor_buf_release(&raw);
    return rc;
}

int top_http_get(const char *host, const char *port, const char *path,
                 int timeout_ms, int cancel_fd, int *status,
                 struct actor_buf *body)
{
    int64_t deadline = top_now_ms() + timeout_ms;
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICSERV};
    struct addrinfo *res;
    int gai = getaddrinfo(host, port, &hints, &res);
    if (gai != 0) {
        return gai == EAI_SYSTEM ? -errno : -EHOSTUNREACH;
    }
    int rc = -ECONNREFUSED, fd = -1;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        rc = connect_one(ai, cancel_fd, deadline, &fd);
        if (rc == 0 || rc == -EINTR || rc == -ETIMEDOUT) {
            break;
        }
    }
    freeaddrinfo(res);
    if (rc != 0) {
        return rc;
    }
    char req[512];
    bool v6 = strchr(host, ':') != NULL;
    int n = snprintf(req, sizeof(req),
                     "GET %s HTTP/1.1\r\nHost: %s%s%s:%s\r\n"
                     "User-Agent: scorewire-top\r\nAccept: */*\r\n"
                     "Connection: close\r\n\r\n",
                     path, v6 ? "[" : "", host, v6 ? "]" : "", port);
    if (n < 0 || (size_t)n >= sizeof(req)) {
        rc = -ENAMETOOLONG;
        goto out_close;
    }
    if ((rc = send_all(fd, req, (size_t)n, cancel_fd, deadline)) != 0) {
        goto out_close;
    }
    rc = receive(fd, cancel_fd, deadline, status, body);

out_close:
    close(fd);
    return rc;
}
