/* tools/top/main.c - scorewire-top: a terminal view of the busiest actors
 * and stages, refreshed every second from the daemon's admin port. */

/*
 * DESIGN
 * One thread, one loop: poll the admin port (/metrics, then /actors), build
 * the view against the previous good poll, draw, wait for the next tick.
 * Signals only write their number to a pipe; the loop reads it, so the
 * terminal is put back by ordinary code on every way out (q, Ctrl-C,
 * SIGTERM, SIGHUP) and around a suspend (Ctrl-Z). The same pipe cancels an
 * HTTP call in flight, so a signal never waits for a timeout. When the
 * daemon is down the screen says so, keeps the last figures it had, and
 * the loop keeps trying every interval.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "actor/actor.h"
#include "tools/top/top.h"

#define TIMEOUT_MS      2000 /* each HTTP call, connect to last byte */
#define INTERVAL_MIN_MS 100
#define INTERVAL_MAX_MS 3600000

struct top {
    char host[256], port[8];
    const char *admin; /* as given */
    int interval_ms;
    bool once;
    /* the terminal */
    bool screen_on; /* alternate screen entered */
    bool tty_saved; /* @saved holds stdin's modes */
    struct termios saved;
    struct top_screen scr;
    /* polls: the last good one and the good one before it */
    struct top_poll before, last;
    int64_t last_ok_ms;     /* monotonic; -1: never */
    struct top_poll failed; /* the last failure's reason */
    bool failing;
};

static int sig_pipe[2] = {-1, -1};

static void on_signal(int sig)
{
    int saved = errno;
    unsigned char b = (unsigned char)sig;
    if (write(sig_pipe[1], &b, 1) < 0) {
        /* the pipe is full: a signal is already pending */
    }
    errno = saved;
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: scorewire-top [--admin HOST:PORT] [--interval MS] "
            "[--once]\n\n"
            "A terminal view of a running scorewire: actors alive, restarts "
            "and crashes,\nstage rates (events in and stored, WebSocket "
            "messages, rejections per\nsecond) and the busiest actors, "
            "sorted by mailbox length then messages\nhandled per second. "
            "It polls the admin port's /metrics and /actors.\n\n"
            "  --admin HOST:PORT  the admin listener (default "
            "127.0.0.1:9090; [::1]:9090\n"
            "                     for IPv6)\n"
            "  --interval MS      refresh period in milliseconds (default "
            "1000)\n"
            "  --once             print one plain-text frame and exit: two "
            "polls an\n"
            "                     interval apart, so rates are shown; exit "
            "status 1 when\n"
            "                     the admin port could not be read\n"
            "  --help             this text\n\n"
            "Keys: q quits. Each HTTP call gives up after %d ms; while the "
            "daemon is\ndown the screen says so and keeps trying.\n",
            TIMEOUT_MS);
}

static int parse_args(struct top *t, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"admin", required_argument, NULL, 'a'},
        {"interval", required_argument, NULL, 'i'},
        {"once", no_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    t->admin = "127.0.0.1:9090";
    t->interval_ms = 1000;
    int c;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'a':
            t->admin = optarg;
            break;
        case 'i': {
            char *end;
            errno = 0;
            long v = strtol(optarg, &end, 10);
            if (errno || end == optarg || *end || v < INTERVAL_MIN_MS ||
                v > INTERVAL_MAX_MS) {
                fprintf(stderr,
                        "scorewire-top: --interval: milliseconds from %d "
                        "to %d, not \"%s\"\n",
                        INTERVAL_MIN_MS, INTERVAL_MAX_MS, optarg);
                return -EINVAL;
            }
            t->interval_ms = (int)v;
            break;
        }
        case 'o':
            t->once = true;
            break;
        case 'h':
            usage(stdout);
            return 1;
        default:
            usage(stderr);
            return -EINVAL;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "scorewire-top: unexpected argument \"%s\"\n",
                argv[optind]);
        return -EINVAL;
    }
    if (top_http_split_addr(t->admin, t->host, sizeof(t->host), t->port,
                            sizeof(t->port)) != 0) {
        fprintf(stderr,
                "scorewire-top: --admin: HOST:PORT or [IPV6]:PORT, not "
                "\"%s\"\n",
                t->admin);
        return -EINVAL;
    }
    return 0;
}

/* ---- the terminal -------------------------------------------------------- */

static int write_all(int fd, const char *s, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, s, n);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -errno;
        }
        s += w;
        n -= (size_t)w;
    }
    return 0;
}

static void measure(struct top *t)
{
    struct winsize ws;
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0 &&
        ws.ws_col > 0) {
        t->scr.rows = ws.ws_row;
        t->scr.cols = ws.ws_col;
        return;
    }
    const char *lines = getenv("LINES"), *columns = getenv("COLUMNS");
    t->scr.rows = lines && atoi(lines) > 0 ? atoi(lines) : 24;
    t->scr.cols = columns && atoi(columns) > 0 ? atoi(columns) : 80;
}

/* Alternate screen, no cursor, keys without echo or line editing. */
static void screen_enter(struct top *t)
{
    if (isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &t->saved) == 0) {
        struct termios raw = t->saved;
        raw.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
        raw.c_cc[VMIN] = 0;
        raw.c_cc[VTIME] = 0;
        t->tty_saved = tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0;
    }
    static const char on[] = "\x1b[?1049h\x1b[?25l\x1b[H\x1b[2J";
    write_all(STDOUT_FILENO, on, sizeof(on) - 1);
    t->screen_on = true;
    measure(t);
}

static void screen_leave(struct top *t)
{
    if (t->screen_on) {
        static const char off[] = "\x1b[0m\x1b[?25h\x1b[?1049l";
        write_all(STDOUT_FILENO, off, sizeof(off) - 1);
        t->screen_on = false;
    }
    if (t->tty_saved) {
        tcsetattr(STDIN_FILENO, TCSANOW, &t->saved);
        t->tty_saved = false;
    }
}

/* No SA_RESTART: a blocking call returns EINTR and the loop looks. */
static int handle(int sig, void (*fn)(int))
{
    struct sigaction sa = {.sa_handler = fn};
    sigemptyset(&sa.sa_mask);
    return sigaction(sig, &sa, NULL) == 0 ? 0 : -errno;
}

static int signals_install(void)
{
    if (pipe2(sig_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
        return -errno;
    }
    static const int sigs[] = {SIGINT,   SIGTERM, SIGHUP,
                               SIGWINCH, SIGTSTP, SIGCONT};
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
        int rc = handle(sigs[i], on_signal);
        if (rc != 0) {
            return rc;
        }
    }
    return handle(SIGPIPE, SIG_IGN);
}

/* ---- polling ------------------------------------------------------------- */

/* GETs @path into @body, checking the status. Returns 0, -EINTR when a
 * signal cancelled it, or another error with @p->what set. */
static int fetch(const struct top *t, int cancel_fd, const char *path,
                 struct top_poll *p, struct actor_buf *body)
{
    int status = 0;
    int rc = top_http_get(t->host, t->port, path, TIMEOUT_MS, cancel_fd,
                          &status, body);
    if (rc == -EINTR) {
        return rc;
    }
    if (rc == -EHOSTUNREACH) {
        snprintf(p->what, sizeof(p->what), "GET %s: %.64s does not resolve",
                 path, t->host);
    } else if (rc == -EPROTO) {
        snprintf(p->what, sizeof(p->what), "GET %s: not an HTTP response",
                 path);
    } else if (rc != 0) {
        snprintf(p->what, sizeof(p->what), "GET %s: %s", path, strerror(-rc));
    } else if (status != 200) {
        rc = -EBADMSG;
        snprintf(p->what, sizeof(p->what), "GET %s: HTTP %d", path, status);
    }
    return rc;
}

/* One poll into @p (freed first). Returns 0, -EINTR (cancelled), or
 * another error with @p->err and @p->what set. */
static int poll_admin(const struct top *t, int cancel_fd, struct top_poll *p)
{
    top_poll_free(p);
    p->err = 0;
    p->what[0] = '\0';
    struct actor_buf body;
    actor_buf_init(&body);
    int rc = fetch(t, cancel_fd, "/metrics", p, &body);
    if (rc != 0) {
        goto out;
    }
    p->at_ms = top_now_ms();
    rc = top_prom_parse(&p->metrics, body.data ? body.data : "", body.len);
    if (rc != 0) {
        snprintf(p->what, sizeof(p->what),
                 "GET /metrics: not Prometheus text (line %zu)",
                 p->metrics.err_line);
        goto out;
    }
    p->have_metrics = true;
    rc = fetch(t, cancel_fd, "/actors", p, &body);
    if (rc != 0) {
        goto out;
    }
    p->actors_at_ms = top_now_ms();
    rc = top_json_parse(&p->actors, body.data ? body.data : "", body.len);
    if (rc != 0) {
        snprintf(p->what, sizeof(p->what), "GET /actors: not JSON (byte %zu)",
                 p->actors.err_at);
        goto out;
    }
    p->have_actors = true;

out:
    actor_buf_release(&body);
    if (rc != 0) {
        top_poll_free(p);
        if (rc == -ENOMEM) {
            snprintf(p->what, sizeof(p->what), "out of memory");
        }
    }
    p->err = rc == -EINTR ? 0 : rc;
    return rc;
}

/* Polls; a good poll becomes @t->last. Returns -EINTR when cancelled. */
static int refresh(struct top *t, int cancel_fd)
{
    int rc = poll_admin(t, cancel_fd, &t->failed);
    if (rc == -EINTR) {
        return rc;
    }
    t->failing = rc != 0;
    if (rc == 0) {
        top_poll_free(&t->before);
        t->before = t->last;
        t->last = t->failed;
        memset(&t->failed, 0, sizeof(t->failed));
        t->last_ok_ms = top_now_ms();
    }
    return 0;
}

static int draw(struct top *t)
{
    struct top_status st = {
        .admin = t->admin,
        .err = t->failing ? t->failed.err : 0,
        .what = t->failed.what,
        .since_ok_ms = t->last_ok_ms < 0 ? -1 : top_now_ms() - t->last_ok_ms,
        .interval_ms = t->interval_ms,
    };
    time_t now = time(NULL);
    struct tm tm;
    strftime(st.clock, sizeof(st.clock), "%H:%M:%S", localtime_r(&now, &tm));
    /* before the first good poll @t->last is empty: every figure is "-" */
    struct top_view v = {0};
    int rc = top_view_build(&v, t->before.have_metrics ? &t->before : NULL,
                            &t->last);
    struct actor_buf out;
    actor_buf_init(&out);
    if (rc == 0) {
        rc = top_draw(&out, &t->scr, &st, &v);
    }
    if (rc == 0) {
        rc = write_all(STDOUT_FILENO, out.data, out.len);
    }
    actor_buf_release(&out);
    top_view_free(&v);
    return rc;
}

/* ---- the two ways to run ------------------------------------------------- */

static int run_once(struct top *t)
{
    int rc = refresh(t, -1);
    if (rc == 0 && !t->failing) {
        struct timespec ts = {.tv_sec = t->interval_ms / 1000,
                              .tv_nsec = t->interval_ms % 1000 * 1000000L};
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
        }
        rc = refresh(t, -1);
    }
    struct winsize ws;
    t->scr.ansi = false;
    t->scr.rows = 0; /* every actor listed */
    t->scr.cols =
        isatty(STDOUT_FILENO) && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0
            ? ws.ws_col
            : 0;
    if (rc == 0) {
        rc = draw(t);
    }
    return rc != 0 || t->failing ? 1 : 0;
}

/* Handles the signals and keys waiting. Returns true to quit. */
static bool events(struct top *t, bool *redraw)
{
    unsigned char b[64];
    ssize_t n;
    bool quit = false;
    while ((n = read(sig_pipe[0], b, sizeof(b))) > 0) {
        for (ssize_t i = 0; i < n; i++) {
            switch (b[i]) {
            case SIGWINCH:
                measure(t);
                *redraw = true;
                break;
            case SIGTSTP:
                /* put the terminal back, stop for real, come back */
                screen_leave(t);
                handle(SIGTSTP, SIG_DFL);
                raise(SIGTSTP);
                handle(SIGTSTP, on_signal);
                screen_enter(t);
                *redraw = true;
                break;
            case SIGCONT:
                /* the shell may have reset the modes while we were away */
                screen_leave(t);
                screen_enter(t);
                *redraw = true;
                break;
            default: /* SIGINT, SIGTERM, SIGHUP */
                quit = true;
                break;
            }
        }
    }
    if (t->tty_saved) {
        while ((n = read(STDIN_FILENO, b, sizeof(b))) > 0) {
            quit |= memchr(b, 'q', (size_t)n) || memchr(b, 'Q', (size_t)n);
        }
    }
    return quit;
}

static int run_screen(struct top *t)
{
    int rc = signals_install();
    if (rc != 0) {
        fprintf(stderr, "scorewire-top: signals: %s\n", strerror(-rc));
        return 1;
    }
    t->scr.ansi = true;
    screen_enter(t);
    int64_t next = top_now_ms();
    bool redraw = false;
    for (;;) {
        if (top_now_ms() >= next) {
            next += t->interval_ms;
            if (next < top_now_ms()) {
                next = top_now_ms() + t->interval_ms; /* fell behind */
            }
            if (refresh(t, sig_pipe[0]) == -EINTR) {
                next = top_now_ms(); /* handle the signal, then poll again */
            }
            redraw = true;
        }
        if (redraw && (rc = draw(t)) != 0) {
            break;
        }
        redraw = false;
        int64_t left = next - top_now_ms();
        struct pollfd pf[2] = {{.fd = sig_pipe[0], .events = POLLIN},
                               {.fd = STDIN_FILENO, .events = POLLIN}};
        if (left > 0 && poll(pf, t->tty_saved ? 2 : 1, (int)left) < 0 &&
            errno != EINTR) {
            rc = -errno;
            break;
        }
        if (events(t, &redraw)) {
            break;
        }
    }
    screen_leave(t);
    if (rc != 0) {
        fprintf(stderr, "scorewire-top: %s\n", strerror(-rc));
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct top t = {.last_ok_ms = -1};
    int rc = parse_args(&t, argc, argv);
    if (rc != 0) {
        return rc > 0 ? 0 : 2;
    }
    int status = t.once ? run_once(&t) : run_screen(&t);
    top_poll_free(&t.before);
    top_poll_free(&t.last);
    top_poll_free(&t.failed);
    return status;
}
