/* tests/bench/loopback_bench.c - the bare kernel limit of notify's writes:
 * one process sending a frame to each of N loopback TCP connections in
 * turn, another draining them, and nothing else. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "notify/notify.h"
#include "notify/notify_impl.h"

/*
 * DESIGN
 * Under load the daemon's notify thread is mostly kernel time: each cycle
 * it writes one frame to each of its 10,000 clients, one send() each, and
 * on loopback that send also does the receiving side's TCP work (softirq,
 * on the sending CPU). What the kernel manages varies with the host by up
 * to 2x over a day, so tests/bench/notify_bench.py runs this right after
 * the daemon, with the daemon's client count and mean frame size, and
 * reports the daemon's frames/s as a ratio of what this reaches.
 *
 * It keeps what the kernel sees and drops the rest (lws, polling 10,000
 * sockets, building frames): the ratio is what those cost. The sending
 * side is set up as notify leaves its sockets: nonblocking, TCP_NODELAY
 * (lws sets it on every socket it adopts), SO_SNDBUF and TCP_NOTSENT_LOWAT
 * from notify_config_default() (notify sets them once a WebSocket is
 * established); one send() per frame, header and payload together, as lws
 * writes them. A socket that would block is skipped for the round and
 * counted (the daemon waits for it to be writable and writes it the next
 * cycle); the rest of a partial send goes first the next round (lws keeps
 * it and sends it before anything else). The receiving side is wsbench's
 * raw engine: nonblocking sockets with the kernel's options, one
 * level-triggered epoll, one recv() of up to 256 KiB per ready socket into
 * one shared buffer.
 *
 * Two processes, each one thread, as the daemon and wsbench are: each
 * holds one end of every connection, so each needs N descriptors, not 2N
 * (the hard limit is often 20,000, which one process holding both ends of
 * 10,000 connections would pass). The receiver is a child; they share one
 * page for the phase and the receiver's figures.
 *
 *   loopback_bench [-c N] [-s BYTES] [-d SECONDS]
 *
 * N connections (10,000); BYTES per frame, its 2- or 4-byte WebSocket
 * header included (1,000); SECONDS measured after WARMUP_S of sending (3).
 */

#define WARMUP_S      0.5
#define GRACE_S       10.0         /* receiver: past the window, give up */
#define READ_CHUNK    (256 * 1024) /* bytes per recv(), as wsbench's */
#define CONNECT_BATCH 256          /* connects in flight: within the backlog */
#define STALL_S       10.0 /* setting up: this long without progress fails */
#define SPARE_FDS     64   /* stdio, the listener, epoll */
#define CLOCK_EVERY   64   /* sends between two looks at the clock */
#define MAX_ROUNDS    100000000ull /* the clock ends it long before */
#define MAX_WAITS     1000000000ull
#define EPOLL_BATCH   512
#define WAIT_MS       100 /* receiver: how soon it sees the end */

enum phase { CONNECTING, READY, WARMING, MEASURING, DONE, FAILED };

/* The page the two processes share. */
struct shared {
    _Atomic int phase;         /* enum phase: READY and FAILED are the
                                  receiver's, the others the sender's */
    _Atomic uint32_t accepted; /* by the sender: the receiver's pace */
    uint64_t recv_bytes;       /* over the window; read once reaped */
    uint64_t recv_errors;      /* connections that ended or failed */
    double receiver_cpu_s;     /* over the window, as far as it saw it */
};

struct sent {
    uint64_t frames;  /* whole frames in the kernel */
    uint64_t eagain;  /* sends skipped: the socket was full */
    uint64_t partial; /* sends the kernel took part of */
    uint64_t errors;  /* failed sends; the connection is closed */
    int last_errno;
};

struct bench {
    uint32_t n;           /* connections */
    uint32_t frame_len;   /* bytes per frame, header included */
    double seconds;       /* measured */
    int *fd;              /* n, this process's ends; -1: closed */
    uint32_t *left;       /* n, sender's: bytes of a frame still unsent */
    unsigned char *frame; /* frame_len bytes */
    struct shared *sh;
    struct sent sent;    /* the sender's, over the window */
    double window_s;     /* the sender's, monotonic */
    double sender_cpu_s; /* over the window */
};

static double clock_s(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double now_s(void)
{
    return clock_s(CLOCK_MONOTONIC);
}

static void pause_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = ms % 1000 * 1000000};
    nanosleep(&ts, NULL);
}

/* ---- setting up --------------------------------------------------------- */

/* Parses @arg as a number in [@lo, @hi] (a whole one when @whole). */
static int parse_num(const char *arg, double lo, double hi, bool whole,
                     double *out)
{
    char *end;
    errno = 0;
    double v = strtod(arg, &end);
    if (errno || end == arg || *end || v < lo || v > hi ||
        (whole && v != (double)(uint64_t)v)) {
        return -EINVAL;
    }
    *out = v;
    return 0;
}

static int parse_args(int argc, char **argv, struct bench *b)
{
    double c = 10000, s = 1000, d = 3;
    int opt;
    while ((opt = getopt(argc, argv, "c:s:d:")) != -1) {
        int rc = -EINVAL;
        switch (opt) {
        case 'c':
            rc = parse_num(optarg, 1, 1000000, true, &c);
            break;
        case 's':
            rc = parse_num(optarg, 2, 65535, true, &s);
            break;
        case 'd':
            rc = parse_num(optarg, 0.1, 600, false, &d);
            break;
        default:
            break;
        }
        if (rc != 0) {
            fprintf(stderr,
                    "usage: loopback_bench [-c CONNECTIONS (1-1000000)] "
                    "[-s FRAME_BYTES (2-65535)] [-d SECONDS (0.1-600)]\n");
            return -EINVAL;
        }
    }
    b->n = (uint32_t)c;
    b->frame_len = (uint32_t)s;
    b->seconds = d;
    return 0;
}

/* Each process holds one end of every connection, and a few more. */
static int raise_nofile(uint32_t n)
{
    rlim_t need = (rlim_t)n + SPARE_FDS;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        int err = errno;
        fprintf(stderr, "loopback_bench: getrlimit(RLIMIT_NOFILE): %s\n",
                strerror(err));
        return -err;
    }
    if (rl.rlim_cur >= need) {
        return 0;
    }
    struct rlimit want = {.rlim_cur = need,
                          .rlim_max = rl.rlim_max >= need ? rl.rlim_max : need};
    if (setrlimit(RLIMIT_NOFILE, &want) == 0) {
        return 0;
    }
    int err = errno;
    fprintf(stderr,
            "loopback_bench: %u connections need %llu file descriptors, the "
            "limit is %llu (hard %llu) and setrlimit(RLIMIT_NOFILE) failed: "
            "%s; raise the hard limit (ulimit -Hn, as root) or ask for fewer "
            "connections (-c)\n",
            n, (unsigned long long)need, (unsigned long long)rl.rlim_cur,
            (unsigned long long)rl.rlim_max, strerror(err));
    return -err;
}

/* A text frame as lws sends one: unmasked, the length in the second byte
 * up to 125 payload bytes, else in 16 bits after it. The kernel sees only
 * the length; the header makes the bytes a frame a client could read. */
static void build_frame(unsigned char *f, uint32_t len)
{
    bool small = len - 2 <= 125;
    uint32_t head = small ? 2 : 4;
    uint32_t payload = len - head;
    f[0] = 0x81; /* FIN, text */
    if (small) {
        f[1] = (unsigned char)payload;
    } else {
        f[1] = 126;
        f[2] = (unsigned char)(payload >> 8);
        f[3] = (unsigned char)payload;
    }
    memset(f + head, 'x', payload);
}

static int open_listener(struct sockaddr_in *addr)
{
    *addr = (struct sockaddr_in){.sin_family = AF_INET,
                                 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(*addr);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        fprintf(stderr, "loopback_bench: socket: %s\n", strerror(errno));
        return -1;
    }
    if (bind(fd, (struct sockaddr *)addr, sizeof(*addr)) != 0 ||
        listen(fd, CONNECT_BATCH * 2) != 0 ||
        getsockname(fd, (struct sockaddr *)addr, &len) != 0) {
        fprintf(stderr, "loopback_bench: listening on 127.0.0.1: %s\n",
                strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

/* The options notify's sockets have once a WebSocket is established:
 * TCP_NODELAY (lws's), then notify's own. */
static int sender_options(int fd, const struct notify_config *cfg)
{
    int one = 1;
    int rc = setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0
                 ? -errno
                 : notify__client_socket_options(fd, cfg);
    if (rc != 0) {
        fprintf(stderr, "loopback_bench: setsockopt: %s\n", strerror(-rc));
        return -1;
    }
    return 0;
}

/* Accepts every connection the receiver opens; its pace is sh->accepted. */
static int accept_all(struct bench *b, int lfd, const struct notify_config *cfg)
{
    double stall_at = now_s() + STALL_S;
    uint32_t got = 0;
    while (got < b->n) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            b->fd[got++] = fd;
            if (sender_options(fd, cfg) != 0) {
                return -1;
            }
            atomic_store(&b->sh->accepted, got);
            stall_at = now_s() + STALL_S;
            continue;
        }
        if (errno != EAGAIN && errno != EINTR) {
            fprintf(stderr, "loopback_bench: accept4: %s\n", strerror(errno));
            return -1;
        }
        if (atomic_load(&b->sh->phase) == FAILED) {
            return -1; /* the receiver said why */
        }
        if (now_s() >= stall_at) {
            fprintf(stderr,
                    "loopback_bench: %u of %u connections accepted, then "
                    "none for %.0f s\n",
                    got, b->n, STALL_S);
            return -1;
        }
        struct pollfd p = {.fd = lfd, .events = POLLIN};
        (void)poll(&p, 1, WAIT_MS);
    }
    return 0;
}

/* Waits until the sender has accepted @count connections. */
static int wait_accepted(struct bench *b, uint32_t count)
{
    double stall_at = now_s() + STALL_S;
    while (atomic_load(&b->sh->accepted) < count) {
        if (atomic_load(&b->sh->phase) == DONE) {
            return -1; /* the sender gave up and said why */
        }
        if (now_s() >= stall_at) {
            fprintf(stderr,
                    "loopback_bench: receiver: %u of %u connections accepted "
                    "after %.0f s\n",
                    atomic_load(&b->sh->accepted), count, STALL_S);
            return -1;
        }
        pause_ms(1);
    }
    return 0;
}

/* The receiver's: opens b->n connections, in batches the backlog holds. */
static int connect_all(struct bench *b, int ep, const struct sockaddr_in *addr)
{
    for (uint32_t at = 0; at < b->n;) {
        uint32_t count = b->n - at < CONNECT_BATCH ? b->n - at : CONNECT_BATCH;
        for (uint32_t i = at; i < at + count; i++) {
            b->fd[i] =
                socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
            if (b->fd[i] < 0) {
                fprintf(stderr, "loopback_bench: receiver: socket: %s\n",
                        strerror(errno));
                return -1;
            }
            if (connect(b->fd[i], (const struct sockaddr *)addr,
                        sizeof(*addr)) != 0 &&
                errno != EINPROGRESS) {
                fprintf(stderr,
                        "loopback_bench: receiver: connect (connection %u): "
                        "%s%s\n",
                        i, strerror(errno),
                        errno == EADDRNOTAVAIL
                            ? " (see net.ipv4.ip_local_port_range)"
                            : "");
                return -1;
            }
            struct epoll_event ev = {.events = EPOLLIN, .data.fd = b->fd[i]};
            if (epoll_ctl(ep, EPOLL_CTL_ADD, b->fd[i], &ev) != 0) {
                fprintf(stderr, "loopback_bench: receiver: epoll_ctl: %s\n",
                        strerror(errno));
                return -1;
            }
        }
        at += count;
        if (wait_accepted(b, at) != 0) {
            return -1;
        }
    }
    return 0;
}

/* Closes this process's ends. The receiver resets its ends rather than
 * closing them, so that no TIME_WAIT holds N ephemeral ports for a minute
 * after the run. */
static void close_all(struct bench *b, bool reset)
{
    struct linger now = {.l_onoff = 1, .l_linger = 0};
    for (uint32_t i = 0; i < b->n; i++) {
        if (b->fd[i] >= 0) {
            if (reset) {
                (void)setsockopt(b->fd[i], SOL_SOCKET, SO_LINGER, &now,
                                 sizeof(now));
            }
            close(b->fd[i]);
            b->fd[i] = -1;
        }
    }
}

/* ---- the receiver ------------------------------------------------------- */

/* Reads whatever arrives until the sender is done, measuring over the
 * sender's window as far as it sees it. */
static void drain(struct bench *b, int ep, char *buf)
{
    struct shared *sh = b->sh;
    struct epoll_event ev[EPOLL_BATCH];
    double deadline = now_s() + STALL_S + WARMUP_S + b->seconds + GRACE_S;
    bool measuring = false;
    uint64_t bytes = 0, bytes0 = 0;
    double cpu0 = 0;

    for (uint64_t w = 0; w < MAX_WAITS && now_s() < deadline; w++) {
        int ph = atomic_load(&sh->phase);
        if (!measuring && (ph == MEASURING || ph == DONE)) {
            measuring = true;
            cpu0 = clock_s(CLOCK_THREAD_CPUTIME_ID);
            bytes0 = bytes;
        }
        if (ph == DONE) {
            sh->receiver_cpu_s = clock_s(CLOCK_THREAD_CPUTIME_ID) - cpu0;
            sh->recv_bytes = bytes - bytes0;
            return;
        }
        int n = epoll_wait(ep, ev, EPOLL_BATCH, WAIT_MS);
        for (int i = 0; i < n; i++) {
            ssize_t got = recv(ev[i].data.fd, buf, READ_CHUNK, 0);
            if (got > 0) {
                bytes += (uint64_t)got;
            } else if (got == 0 || (errno != EAGAIN && errno != EINTR)) {
                /* An end on loopback is a surprise: the run fails. */
                sh->recv_errors++;
                epoll_ctl(ep, EPOLL_CTL_DEL, ev[i].data.fd, NULL);
            }
        }
    }
    fprintf(stderr, "loopback_bench: receiver: the sender never finished\n");
    sh->recv_errors++;
}

/* The child's whole life: connect, say so, drain. Returns its exit code. */
static int receiver(struct bench *b, const struct sockaddr_in *addr)
{
    char *buf = malloc(READ_CHUNK);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    int rc = 1;

    if (!buf || ep < 0) {
        fprintf(stderr, "loopback_bench: receiver: %s\n",
                buf ? strerror(errno) : "out of memory");
        atomic_store(&b->sh->phase, FAILED);
        goto out;
    }
    if (connect_all(b, ep, addr) != 0) {
        atomic_store(&b->sh->phase, FAILED);
        goto out;
    }
    atomic_store(&b->sh->phase, READY);
    drain(b, ep, buf);
    rc = 0;
out:
    close_all(b, true);
    if (ep >= 0) {
        close(ep);
    }
    free(buf);
    return rc;
}

/* ---- the sender --------------------------------------------------------- */

/* One frame, or what a partial send left of one, to connection @i. */
static void send_one(struct bench *b, uint32_t i, struct sent *s)
{
    int fd = b->fd[i];
    if (fd < 0) {
        return;
    }
    uint32_t left = b->left[i] ? b->left[i] : b->frame_len;
    ssize_t n = send(fd, b->frame + (b->frame_len - left), left, MSG_NOSIGNAL);
    if (n == (ssize_t)left) {
        s->frames++;
        b->left[i] = 0;
    } else if (n >= 0) {
        s->partial++;
        b->left[i] = left - (uint32_t)n;
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
        s->eagain++;
    } else if (errno != EINTR) {
        s->errors++;
        s->last_errno = errno;
        close(fd);
        b->fd[i] = -1;
    }
}

/* Round after round over every connection: WARMUP_S, then the window. */
static void send_all(struct bench *b)
{
    double measure_at = now_s() + WARMUP_S;
    double end_at = 0; /* set when the window starts */
    double cpu0 = 0;
    struct sent s = {0}, s0 = {0};
    int ph = WARMING;

    atomic_store(&b->sh->phase, WARMING);
    for (uint64_t round = 0; round < MAX_ROUNDS && ph != DONE; round++) {
        for (uint32_t i = 0; i < b->n && ph != DONE; i++) {
            if (i % CLOCK_EVERY == 0) {
                double now = now_s();
                if (ph == WARMING && now >= measure_at) {
                    ph = MEASURING;
                    measure_at = now;
                    end_at = now + b->seconds;
                    cpu0 = clock_s(CLOCK_THREAD_CPUTIME_ID);
                    s0 = s;
                    atomic_store(&b->sh->phase, MEASURING);
                } else if (ph == MEASURING && now >= end_at) {
                    ph = DONE;
                    break;
                }
            }
            send_one(b, i, &s);
        }
    }
    /* Out of rounds, the window ends here as well. */
    b->window_s = now_s() - measure_at;
    b->sender_cpu_s = clock_s(CLOCK_THREAD_CPUTIME_ID) - cpu0;
    b->sent = (struct sent){.frames = s.frames - s0.frames,
                            .eagain = s.eagain - s0.eagain,
                            .partial = s.partial - s0.partial,
                            .errors = s.errors,
                            .last_errno = s.last_errno};
    atomic_store(&b->sh->phase, DONE);
}

/* Waits for the receiver to be connected and draining. */
static int wait_ready(struct bench *b)
{
    double stall_at = now_s() + STALL_S;
    int ph;
    while ((ph = atomic_load(&b->sh->phase)) == CONNECTING) {
        if (now_s() >= stall_at) {
            fprintf(stderr, "loopback_bench: the receiver never got ready\n");
            return -1;
        }
        pause_ms(1);
    }
    return ph == READY ? 0 : -1;
}

/* Reaps the receiver, killing it if it outstays GRACE_S. Returns its exit
 * status, or -1. */
static int reap(pid_t pid)
{
    double kill_at = now_s() + GRACE_S;
    int status;
    pid_t r;
    while ((r = waitpid(pid, &status, WNOHANG)) == 0 && now_s() < kill_at) {
        pause_ms(10);
    }
    if (r == 0) {
        fprintf(stderr, "loopback_bench: the receiver hangs: killed\n");
        kill(pid, SIGKILL);
        r = waitpid(pid, &status, 0);
    }
    if (r != pid) {
        return -1;
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int report(const struct bench *b)
{
    const struct sent *s = &b->sent;
    const struct shared *sh = b->sh;
    if (s->errors) {
        fprintf(stderr, "loopback_bench: %llu sends failed, the last: %s\n",
                (unsigned long long)s->errors, strerror(s->last_errno));
        return -1;
    }
    if (sh->recv_errors || s->frames == 0 || b->window_s <= 0) {
        fprintf(stderr,
                "loopback_bench: %llu frames, %llu connections failed to "
                "read\n",
                (unsigned long long)s->frames,
                (unsigned long long)sh->recv_errors);
        return -1;
    }
    printf("# loopback: %u connections, %u-byte frames, %.2f s after %.1f s "
           "warm-up: %llu frames, eagain %llu, partial %llu; receiver %.3f us "
           "of CPU a frame, %.0f MB/s\n",
           b->n, b->frame_len, b->window_s, WARMUP_S,
           (unsigned long long)s->frames, (unsigned long long)s->eagain,
           (unsigned long long)s->partial,
           sh->receiver_cpu_s / (double)s->frames * 1e6,
           (double)sh->recv_bytes / b->window_s / 1e6);
    printf("bench loopback_frames_per_s %.6g frames/s\n",
           (double)s->frames / b->window_s);
    printf("bench loopback_sender_cpu_per_frame %.6g us\n",
           b->sender_cpu_s / (double)s->frames * 1e6);
    return 0;
}

int main(int argc, char **argv)
{
    struct bench b = {0};
    struct notify_config cfg;
    struct sockaddr_in addr;
    int lfd = -1;
    int rc = 1;

    notify_config_default(&cfg);
    if (parse_args(argc, argv, &b) != 0 || raise_nofile(b.n) != 0) {
        return 1;
    }
    b.fd = malloc(b.n * sizeof(*b.fd));
    b.left = calloc(b.n, sizeof(*b.left));
    b.frame = malloc(b.frame_len);
    if (!b.fd || !b.left || !b.frame) {
        fprintf(stderr, "loopback_bench: out of memory\n");
        goto out_free;
    }
    for (uint32_t i = 0; i < b.n; i++) {
        b.fd[i] = -1;
    }
    build_frame(b.frame, b.frame_len);
    b.sh = mmap(NULL, sizeof(*b.sh), PROT_READ | PROT_WRITE,
                MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (b.sh == MAP_FAILED) {
        fprintf(stderr, "loopback_bench: mmap: %s\n", strerror(errno));
        b.sh = NULL;
        goto out_free;
    }
    lfd = open_listener(&addr);
    if (lfd < 0) {
        goto out_unmap;
    }

    fflush(NULL); /* or the child would print what we buffered, again */
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "loopback_bench: fork: %s\n", strerror(errno));
        goto out_close_listener;
    }
    if (pid == 0) {
        close(lfd);
        /* Never outlive the sender, whatever becomes of it. */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent) {
            _exit(1);
        }
        _exit(receiver(&b, &addr));
    }

    bool ok = accept_all(&b, lfd, &cfg) == 0;
    close(lfd);
    lfd = -1;
    if (ok && wait_ready(&b) == 0) {
        send_all(&b);
    } else {
        ok = false;
    }
    atomic_store(&b.sh->phase, DONE);
    if (reap(pid) != 0) {
        fprintf(stderr, "loopback_bench: the receiver failed\n");
        ok = false;
    }
    if (ok && report(&b) == 0) {
        rc = 0;
    }
    close_all(&b, false);

out_close_listener:
    if (lfd >= 0) {
        close(lfd);
    }
out_unmap:
    if (b.sh) {
        munmap(b.sh, sizeof(*b.sh));
    }
out_free:
    free(b.frame);
    free(b.left);
    free(b.fd);
    return rc;
}
