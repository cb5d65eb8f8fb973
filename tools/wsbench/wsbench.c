/* tools/wsbench/wsbench.c - scorewire-wsbench: opens K WebSocket
 * connections to the daemon, subscribes, and reports what arrives. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libwebsockets.h>

#include "notify/notify.h"
#include "tools/wsbench/wsbench.h"

/*
 * DESIGN
 * One lws client context on one thread, so the numbers measure the server
 * and one reading client, like a browser per connection. Connections open
 * in a ramp (a timer opens a slice every 10 ms), each subscribes once when
 * established, and every received frame goes through wb_read_frame(),
 * which checks versions per connection and match and takes the latency
 * from the delta's `sent`. The run has phases: connect, settle (initial
 * snapshots arrive), measure (counters start from zero), then report. With
 * --dump the connections keep full views and must all agree.
 */

#define TICK_US (10 * 1000) /* the phase clock and the ramp slice */

enum phase { PH_CONNECT, PH_SETTLE, PH_MEASURE, PH_DONE };

struct conn {
    struct lws *wsi;
    uint32_t idx;
    bool open;
    bool sent_subscribe;
    char *buf; /* a frame arriving in pieces */
    size_t len, cap;
    struct wb_conn_view view;
};

struct opts {
    const char *address;
    int port;
    const char *path;
    uint32_t connections;
    uint32_t ramp;         /* connections opened per second */
    const char *subscribe; /* "*" or a comma-separated list */
    double settle_s;
    double duration_s; /* 0: until --idle-exit or a signal */
    uint32_t idle_exit_ms;
    long pid; /* the daemon, for RSS */
    const char *dump;
    const char *bench_prefix;
    bool strict_connect;
    bool quiet;
};

struct bench {
    struct opts o;
    struct lws_context *lws;
    struct conn *conns;
    uint32_t opened;
    uint32_t established;
    uint32_t failed;
    uint32_t closed;         /* by the server or the network */
    uint32_t close_codes[4]; /* 1009, 1013, other, none */
    char subscribe_msg[4096];
    size_t subscribe_len;
    struct wb_reader reader;
    enum phase phase;
    int64_t phase_start_us; /* monotonic */
    int64_t last_frame_us;  /* monotonic */
    int64_t window_us;      /* length of the measure phase */
    long rss_before_kib, rss_start_kib, rss_end_kib;
    uint32_t conns_at_start;
    struct wb_counts before; /* counted before the window */
    lws_sorted_usec_list_t tick;
    int error;
    char last_connect_error[128];
};

static volatile sig_atomic_t interrupted;
static struct bench *the_bench;

static int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static long rss_kib(long pid)
{
    if (pid <= 0) {
        return -1;
    }
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%ld/status", pid);
    FILE *f = fopen(path, "r");
    if (!f) {
        return -1;
    }
    long kib = -1;
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, "VmRSS:", 6) == 0) {
            kib = strtol(line + 6, NULL, 10);
            break;
        }
    }
    fclose(f);
    return kib;
}

static void say(const struct bench *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void say(const struct bench *b, const char *fmt, ...)
{
    if (b->o.quiet) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "wsbench: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* ---- the subscription message
 * ------------------------------------------------ */

static int build_subscribe(struct bench *b)
{
    const char *s = b->o.subscribe;
    size_t n;
    if (strcmp(s, "*") == 0) {
        n = (size_t)snprintf(b->subscribe_msg, sizeof(b->subscribe_msg),
                             "{\"op\":\"subscribe\",\"matches\":\"*\"}");
    } else {
        n = (size_t)snprintf(b->subscribe_msg, sizeof(b->subscribe_msg),
                             "{\"op\":\"subscribe\",\"matches\":[");
        const char *p = s;
        bool first = true;
        while (*p && n < sizeof(b->subscribe_msg)) {
            size_t k = strcspn(p, ",");
            n += (size_t)snprintf(b->subscribe_msg + n,
                                  sizeof(b->subscribe_msg) - n, "%s\"%.*s\"",
                                  first ? "" : ",", (int)k, p);
            first = false;
            p += k + (p[k] == ',');
        }
        if (n < sizeof(b->subscribe_msg)) {
            n += (size_t)snprintf(b->subscribe_msg + n,
                                  sizeof(b->subscribe_msg) - n, "]}");
        }
    }
    if (n >= sizeof(b->subscribe_msg) - 1) {
        return -E2BIG;
    }
    b->subscribe_len = n;
    return 0;
}

/* ---- connections
 * --------------------------------------------------------------- */

static void open_some(struct bench *b, uint32_t n)
{
    for (; n > 0 && b->opened < b->o.connections; n--) {
        struct conn *c = &b->conns[b->opened];
        c->idx = b->opened++;
        struct lws_client_connect_info ci = {
            .context = b->lws,
            .address = b->o.address,
            .port = b->o.port,
            .path = b->o.path,
            .host = b->o.address,
            .origin = b->o.address,
            .protocol = "scorewire.v1",
            .local_protocol_name = "scorewire.v1",
            .ietf_version_or_minus_one = -1,
            .userdata = c,
            .pwsi = &c->wsi,
        };
        if (!lws_client_connect_via_info(&ci)) {
            /* The failure callback has counted it. */
            c->wsi = NULL;
        }
    }
}

static int on_frame(struct bench *b, struct conn *c, const char *in, size_t len,
                    bool first, bool last)
{
    if (first) {
        c->len = 0;
    }
    const char *msg = in;
    if (!(first && last)) {
        if (c->len + len > c->cap) {
            size_t cap = c->cap ? c->cap : 8192;
            while (cap < c->len + len) {
                cap *= 2;
            }
            char *nb = realloc(c->buf, cap);
            if (!nb) {
                return -ENOMEM;
            }
            c->buf = nb;
            c->cap = cap;
        }
        memcpy(c->buf + c->len, in, len);
        c->len += len;
        if (!last) {
            return 0;
        }
        msg = c->buf;
        len = c->len;
        c->len = 0;
    }
    b->last_frame_us = mono_us();
    return wb_read_frame(&b->reader, &c->view, msg, len, wall_us());
}

static int on_client(struct lws *wsi, enum lws_callback_reasons reason,
                     void *user, void *in, size_t len)
{
    struct bench *b = the_bench;
    struct conn *c = user;

    switch (reason) {
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        b->failed++;
        snprintf(b->last_connect_error, sizeof(b->last_connect_error), "%s",
                 in ? (const char *)in : "unknown");
        if (c) {
            c->wsi = NULL;
        }
        return 0;
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        c->open = true;
        b->established++;
        lws_callback_on_writable(wsi);
        return 0;
    case LWS_CALLBACK_CLIENT_WRITEABLE:
        if (!c->sent_subscribe) {
            unsigned char buf[LWS_PRE + sizeof(b->subscribe_msg)];
            memcpy(buf + LWS_PRE, b->subscribe_msg, b->subscribe_len);
            if (lws_write(wsi, buf + LWS_PRE, b->subscribe_len,
                          LWS_WRITE_TEXT) < (int)b->subscribe_len) {
                return -1;
            }
            c->sent_subscribe = true;
        }
        return 0;
    case LWS_CALLBACK_CLIENT_RECEIVE: {
        int rc = on_frame(b, c, in, len, lws_is_first_fragment(wsi),
                          lws_is_final_fragment(wsi));
        if (rc != 0) {
            b->error = rc;
            interrupted = 1;
        }
        return 0;
    }
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE: {
        unsigned code =
            len >= 2 ? ((unsigned char *)in)[0] << 8 | ((unsigned char *)in)[1]
                     : 0;
        b->close_codes[code == 1009 ? 0 : code == 1013 ? 1 : code ? 2 : 3]++;
        return 0;
    }
    case LWS_CALLBACK_CLIENT_CLOSED:
        if (c && c->open) {
            c->open = false;
            if (b->phase != PH_DONE) {
                b->closed++;
            }
        }
        if (c) {
            c->wsi = NULL;
        }
        return 0;
    default:
        return 0;
    }
}

/* ---- phases
 * ---------------------------------------------------------------------- */

static void start_measure(struct bench *b, int64_t now)
{
    b->phase = PH_MEASURE;
    b->phase_start_us = now;
    b->rss_start_kib = rss_kib(b->o.pid);
    b->conns_at_start = b->established - b->closed;
    b->before = b->reader.counts;
    b->reader.counts = (struct wb_counts){0};
    wb_hist_reset(&b->reader.hist);
    b->reader.measure = true;
    say(b, "measuring: %u connections open", b->conns_at_start);
}

static void on_tick(lws_sorted_usec_list_t *sul)
{
    struct bench *b = lws_container_of(sul, struct bench, tick);
    int64_t now = mono_us();
    int64_t in_phase = now - b->phase_start_us;

    if (interrupted) {
        if (b->phase == PH_MEASURE) {
            b->window_us = in_phase;
        }
        b->phase = PH_DONE;
        return;
    }
    switch (b->phase) {
    case PH_CONNECT: {
        uint32_t slice = b->o.ramp / (1000000 / TICK_US);
        open_some(b, slice ? slice : 1);
        if (b->established + b->failed >= b->o.connections) {
            say(b, "connected %u of %u (%u failed)", b->established,
                b->o.connections, b->failed);
            if (b->failed && b->o.strict_connect) {
                b->error = -ECONNREFUSED;
                b->phase = PH_DONE;
                return;
            }
            b->phase = PH_SETTLE;
            b->phase_start_us = now;
        } else if (in_phase > 120 * 1000000LL) {
            say(b, "gave up connecting after 120 s");
            b->error = -ETIMEDOUT;
            b->phase = PH_DONE;
            return;
        }
        break;
    }
    case PH_SETTLE:
        if (in_phase >= (int64_t)(b->o.settle_s * 1e6)) {
            start_measure(b, now);
        }
        break;
    case PH_MEASURE: {
        bool timed_out =
            b->o.duration_s > 0 && in_phase >= (int64_t)(b->o.duration_s * 1e6);
        bool idle =
            b->o.idle_exit_ms > 0 &&
            now - b->last_frame_us >= (int64_t)b->o.idle_exit_ms * 1000 &&
            now - b->phase_start_us >= (int64_t)b->o.idle_exit_ms * 1000;
        if (timed_out || idle) {
            b->window_us = in_phase;
            b->rss_end_kib = rss_kib(b->o.pid);
            b->phase = PH_DONE;
            return;
        }
        break;
    }
    case PH_DONE:
        return;
    }
    lws_sul_schedule(b->lws, 0, &b->tick, on_tick, TICK_US);
}

/* ---- report
 * ------------------------------------------------------------------------ */

static void bench_line(const struct bench *b, const char *name, double v,
                       const char *unit)
{
    if (b->o.bench_prefix) {
        printf("bench %s_%s %.6g %s\n", b->o.bench_prefix, name, v, unit);
    }
}

static void report(struct bench *b)
{
    const struct wb_counts *k = &b->reader.counts;
    double secs = (double)b->window_us / 1e6;
    if (secs <= 0) {
        secs = 1e-9;
    }
    double p50 = wb_hist_quantile_ms(&b->reader.hist, 0.50);
    double p99 = wb_hist_quantile_ms(&b->reader.hist, 0.99);
    double max = (double)b->reader.hist.max_us / 1000.0;
    uint32_t open = b->conns_at_start ? b->conns_at_start : 1;

    printf("connections %u established %u failed %u closed %u "
           "(1009: %u, 1013: %u, other: %u)\n",
           b->o.connections, b->established, b->failed, b->closed,
           b->close_codes[0], b->close_codes[1], b->close_codes[2]);
    printf("window %.2f s: %llu frames, %llu messages, %llu deltas, "
           "%llu snapshots, %llu bytes\n",
           secs, (unsigned long long)k->frames, (unsigned long long)k->messages,
           (unsigned long long)k->deltas, (unsigned long long)k->snapshots,
           (unsigned long long)k->bytes);
    printf("rate: %.0f deltas/s, %.0f messages/s, %.0f frames/s "
           "(%.1f messages per frame)\n",
           (double)k->deltas / secs, (double)k->messages / secs,
           (double)k->frames / secs,
           k->frames ? (double)k->messages / (double)k->frames : 0.0);
    printf("latency from sent: p50 %.1f ms, p99 %.1f ms, max %.1f ms "
           "(%llu samples)\n",
           p50, p99, max, (unsigned long long)b->reader.hist.count);
    printf("checks: gaps %llu, orphans %llu, bad %llu, errors %llu, "
           "recovered %llu\n",
           (unsigned long long)k->gaps, (unsigned long long)k->orphans,
           (unsigned long long)k->bad, (unsigned long long)k->errors,
           (unsigned long long)k->recovered);
    if (b->reader.last_error[0]) {
        printf("last problem: %s\n", b->reader.last_error);
    }
    double per_conn_start = -1, per_conn_end = -1;
    if (b->rss_before_kib >= 0 && b->rss_start_kib >= 0) {
        per_conn_start =
            (double)(b->rss_start_kib - b->rss_before_kib) * 1024.0 / open;
        printf("daemon rss: %ld KiB before, %ld KiB connected",
               b->rss_before_kib, b->rss_start_kib);
        if (b->rss_end_kib >= 0) {
            per_conn_end =
                (double)(b->rss_end_kib - b->rss_before_kib) * 1024.0 / open;
            printf(", %ld KiB at the end", b->rss_end_kib);
        }
        printf(": %.0f bytes per connection (%.0f at the end)\n",
               per_conn_start, per_conn_end);
    }
    fflush(stdout);

    bench_line(b, "connections", open, "connections");
    bench_line(b, "deltas_per_s", (double)k->deltas / secs, "deltas/s");
    bench_line(b, "messages_per_s", (double)k->messages / secs, "messages/s");
    bench_line(b, "frames_per_s", (double)k->frames / secs, "frames/s");
    bench_line(b, "latency_p50", p50, "ms");
    bench_line(b, "latency_p99", p99, "ms");
    bench_line(b, "latency_max", max, "ms");
    bench_line(b, "gaps", (double)(k->gaps + k->orphans), "count");
    if (per_conn_start >= 0) {
        bench_line(b, "rss_per_conn", per_conn_start, "bytes");
    }
    if (per_conn_end >= 0) {
        bench_line(b, "rss_per_conn_loaded", per_conn_end, "bytes");
    }
    fflush(stdout);
}

/* Writes the first connection's view; every other must be the same. */
static int dump(struct bench *b)
{
    FILE *f = fopen(b->o.dump, "w");
    if (!f) {
        fprintf(stderr, "wsbench: %s: %s\n", b->o.dump, strerror(errno));
        return -errno;
    }
    int rc = wb_view_dump(&b->reader, &b->conns[0].view, f);
    if (fclose(f) != 0 && rc == 0) {
        rc = -EIO;
    }
    if (rc != 0) {
        return rc;
    }
    char *first = NULL, *other = NULL;
    size_t first_len = 0, other_len = 0;
    FILE *m = open_memstream(&first, &first_len);
    if (!m) {
        return -ENOMEM;
    }
    rc = wb_view_dump(&b->reader, &b->conns[0].view, m);
    fclose(m);
    for (uint32_t i = 1; rc == 0 && i < b->opened; i++) {
        m = open_memstream(&other, &other_len);
        if (!m) {
            rc = -ENOMEM;
            break;
        }
        rc = wb_view_dump(&b->reader, &b->conns[i].view, m);
        fclose(m);
        if (rc == 0 &&
            (other_len != first_len || memcmp(first, other, first_len))) {
            fprintf(stderr,
                    "wsbench: connection %u's view differs from "
                    "connection 0's\n",
                    i);
            rc = 1;
        }
        free(other);
        other = NULL;
    }
    free(first);
    return rc;
}

/* ---- main
 * ---------------------------------------------------------------------------
 */

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
    if (the_bench && the_bench->lws) {
        lws_cancel_service(the_bench->lws);
    }
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: scorewire-wsbench [options]\n"
            "  --url ws://HOST:PORT/PATH  server (default "
            "ws://127.0.0.1:8080/ws)\n"
            "  -c, --connections K        connections (default 1)\n"
            "  --ramp N                   connections opened per second "
            "(default 5000)\n"
            "  --subscribe LIST           \"*\" or ids separated by commas "
            "(default \"*\")\n"
            "  --settle S                 seconds between connecting and "
            "measuring (default 1)\n"
            "  --duration S               seconds to measure; 0: until idle "
            "or a signal (default 10)\n"
            "  --idle-exit MS             stop when nothing arrived for MS "
            "ms\n"
            "  --pid PID                  the daemon, for RSS per "
            "connection\n"
            "  --dump FILE                write the final view of every "
            "match (all connections must agree)\n"
            "  --bench-prefix NAME        also print `bench NAME_x value "
            "unit` lines\n"
            "  --strict-connect           fail when any connection "
            "fails\n"
            "  -q, --quiet                no progress on stderr\n"
            "Exit: 0 ok; 1 setup failed; 2 version gaps or bad frames; 3 "
            "views differ.\n");
}

static int parse_url(struct opts *o, const char *url)
{
    static char host[256], path[256];
    int port = 80;
    if (strncmp(url, "ws://", 5) != 0) {
        return -EINVAL;
    }
    const char *h = url + 5;
    size_t hl = strcspn(h, ":/");
    if (hl == 0 || hl >= sizeof(host)) {
        return -EINVAL;
    }
    memcpy(host, h, hl);
    host[hl] = '\0';
    const char *p = h + hl;
    if (*p == ':') {
        port = (int)strtol(p + 1, (char **)&p, 10);
    }
    snprintf(path, sizeof(path), "%s", *p ? p : "/");
    o->address = host;
    o->port = port;
    o->path = path;
    return port > 0 && port < 65536 ? 0 : -EINVAL;
}

static int parse_opts(struct opts *o, int argc, char **argv)
{
    static const struct option longs[] = {
        {"url", required_argument, NULL, 'u'},
        {"connections", required_argument, NULL, 'c'},
        {"ramp", required_argument, NULL, 'r'},
        {"subscribe", required_argument, NULL, 's'},
        {"settle", required_argument, NULL, 'S'},
        {"duration", required_argument, NULL, 'd'},
        {"idle-exit", required_argument, NULL, 'i'},
        {"pid", required_argument, NULL, 'p'},
        {"dump", required_argument, NULL, 'D'},
        {"bench-prefix", required_argument, NULL, 'b'},
        {"strict-connect", no_argument, NULL, 'x'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    *o = (struct opts){
        .connections = 1,
        .ramp = 5000,
        .subscribe = "*",
        .settle_s = 1,
        .duration_s = 10,
    };
    if (parse_url(o, "ws://127.0.0.1:8080/ws") != 0) {
        return -EINVAL;
    }
    int ch;
    while ((ch = getopt_long(argc, argv, "c:qh", longs, NULL)) != -1) {
        switch (ch) {
        case 'u':
            if (parse_url(o, optarg) != 0) {
                fprintf(stderr, "wsbench: bad --url %s\n", optarg);
                return -EINVAL;
            }
            break;
        case 'c':
            o->connections = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case 'r':
            o->ramp = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case 's':
            o->subscribe = optarg;
            break;
        case 'S':
            o->settle_s = strtod(optarg, NULL);
            break;
        case 'd':
            o->duration_s = strtod(optarg, NULL);
            break;
        case 'i':
            o->idle_exit_ms = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case 'p':
            o->pid = strtol(optarg, NULL, 10);
            break;
        case 'D':
            o->dump = optarg;
            break;
        case 'b':
            o->bench_prefix = optarg;
            break;
        case 'x':
            o->strict_connect = true;
            break;
        case 'q':
            o->quiet = true;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            return -EINVAL;
        }
    }
    if (o->connections == 0 || o->ramp == 0 || optind != argc) {
        usage(stderr);
        return -EINVAL;
    }
    return 0;
}

int main(int argc, char **argv)
{
    static struct bench b;
    if (parse_opts(&b.o, argc, argv) != 0 || build_subscribe(&b) != 0) {
        return 1;
    }
    the_bench = &b;
    int status = 1;
    b.conns = calloc(b.o.connections, sizeof(*b.conns));
    if (!b.conns || wb_reader_init(&b.reader, b.o.dump != NULL) != 0) {
        fprintf(stderr, "wsbench: out of memory\n");
        goto out;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGPIPE, SIG_IGN);
    lws_set_log_level(LLL_ERR, NULL);

    static const struct lws_protocols protocols[] = {
        {.name = "scorewire.v1",
         .callback = on_client,
         .rx_buffer_size = 16384},
        {0},
    };
    struct lws_context_creation_info info = {
        .port = CONTEXT_PORT_NO_LISTEN,
        .protocols = protocols,
        .fd_limit_per_thread = b.o.connections + 64,
        .timeout_secs = 30,
        .connect_timeout_secs = 30,
    };
    b.lws = lws_create_context(&info);
    if (!b.lws) {
        fprintf(stderr, "wsbench: lws_create_context failed\n");
        goto out;
    }
    b.rss_before_kib = rss_kib(b.o.pid);
    b.rss_start_kib = b.rss_end_kib = -1;
    b.phase = PH_CONNECT;
    b.phase_start_us = b.last_frame_us = mono_us();
    lws_sul_schedule(b.lws, 0, &b.tick, on_tick, 1);
    while (b.phase != PH_DONE) {
        if (lws_service(b.lws, 0) < 0) {
            break;
        }
        if (interrupted && b.phase != PH_DONE) {
            on_tick(&b.tick);
        }
    }
    if (b.error) {
        fprintf(stderr, "wsbench: %s%s%s\n", strerror(-b.error),
                b.last_connect_error[0] ? ": " : "", b.last_connect_error);
        goto out;
    }
    report(&b);
    const struct wb_counts *k = &b.reader.counts;
    status = 0;
    if (b.o.dump) {
        int rc = dump(&b);
        status = rc < 0 ? 1 : rc > 0 ? 3 : 0;
    }
    /* Gaps anywhere in the run, not only in the window, fail it. */
    if (k->gaps || k->orphans || k->bad || b.before.gaps || b.before.orphans ||
        b.before.bad) {
        status = 2;
    }

out:
    if (b.lws) {
        lws_context_destroy(b.lws);
    }
    for (uint32_t i = 0; b.conns && i < b.o.connections; i++) {
        free(b.conns[i].buf);
        wb_view_release(&b.conns[i].view);
    }
    free(b.conns);
    wb_reader_release(&b.reader);
    return status;
}
