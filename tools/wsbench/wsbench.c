/* tools/wsbench/wsbench.c - scorewire-wsbench: opens K WebSocket
 * connections to the daemon, subscribes, and reports what arrives. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tools/wsbench/wsbench.h"

/*
 * DESIGN
 * One client thread, so the numbers measure the server and a reading
 * client per connection, like a browser each. Connections open in a ramp
 * (a slice every 10 ms), each subscribes once when established, and every
 * received message goes through wb_read_frame(), which checks versions per
 * connection and match and takes the latency from the delta's `sent`. The
 * run has phases: connect, settle (initial snapshots arrive), measure
 * (counters start from zero), then report. With --dump every connection
 * keeps a full view, and they must all agree.
 *
 * Two engines carry the bytes. The default is libwebsockets' client. Its
 * receive path handles payload a byte at a time (about 10 ns a byte
 * measured here), so at a million deltas a second the client alone would
 * need more than the machine's two cores; --engine raw is a small
 * epoll-based RFC 6455 client (wsbench_raw.c) for such rates, so that the
 * benchmark measures the server rather than the client library.
 */

int64_t wb_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t wb_wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

long wb_rss_kib(long pid)
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

int64_t wb_cpu_us(long pid)
{
    if (pid <= 0) {
        return -1;
    }
    char path[64], line[1024];
    snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f) {
        return -1;
    }
    char *ok = fgets(line, sizeof(line), f);
    fclose(f);
    /* Fields 14 and 15 (utime, stime, in clock ticks) follow the command
     * name, which ends at the last ')'. */
    char *p = ok ? strrchr(line, ')') : NULL;
    unsigned long long ut, st;
    if (!p || sscanf(p + 1,
                     " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u "
                     "%llu %llu",
                     &ut, &st) != 2) {
        return -1;
    }
    long hz = sysconf(_SC_CLK_TCK);
    return hz > 0 ? (int64_t)((ut + st) * 1000000ull / (unsigned long)hz) : -1;
}

int64_t wb_self_cpu_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

__attribute__((format(printf, 2, 3))) static void say(const struct wb_run *run,
                                                      const char *fmt, ...)
{
    if (run->o.quiet) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "wsbench: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* ---- engine events ------------------------------------------------------ */

void wb_on_established(struct wb_run *run, struct wb_conn *c)
{
    c->open = true;
    run->established++;
}

void wb_on_failed(struct wb_run *run, struct wb_conn *c, const char *why)
{
    (void)c;
    run->failed++;
    snprintf(run->last_connect_error, sizeof(run->last_connect_error), "%s",
             why ? why : "unknown");
}

void wb_on_close_frame(struct wb_run *run, struct wb_conn *c, int code)
{
    run->close_codes[code == 1009 ? 0 : code == 1013 ? 1 : 2]++;
    c->close_frame = true;
}

void wb_on_closed(struct wb_run *run, struct wb_conn *c)
{
    if (!c->open) {
        return;
    }
    c->open = false;
    if (run->phase != WB_DONE) {
        run->closed++;
        run->close_codes[3] += !c->close_frame;
    }
}

int wb_on_data(struct wb_run *run, struct wb_conn *c, const char *in,
               size_t len, bool first, bool last)
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
    run->last_frame_us = wb_mono_us();
    return wb_read_frame(&run->reader, &c->view, msg, len, wb_wall_us());
}

/* ---- phases ------------------------------------------------------------- */

static void start_measure(struct wb_run *run, int64_t now)
{
    run->phase = WB_MEASURE;
    run->phase_start_us = now;
    run->rss_start_kib = wb_rss_kib(run->o.pid);
    run->cpu_start_us = wb_self_cpu_us();
    run->daemon_start_us = wb_cpu_us(run->o.pid);
    run->conns_at_start = run->established - run->closed;
    run->before = run->reader.counts;
    run->reader.counts = (struct wb_counts){0};
    wb_hist_reset(&run->reader.hist);
    run->reader.measure = true;
    say(run, "measuring: %u connections open", run->conns_at_start);
}

static void end_measure(struct wb_run *run, int64_t in_phase)
{
    run->window_us = in_phase;
    run->rss_end_kib = wb_rss_kib(run->o.pid);
    run->cpu_end_us = wb_self_cpu_us();
    run->daemon_end_us = wb_cpu_us(run->o.pid);
}

uint32_t wb_tick(struct wb_run *run, bool stop)
{
    int64_t now = wb_mono_us();
    int64_t in_phase = now - run->phase_start_us;

    if (stop) {
        if (run->phase == WB_MEASURE) {
            end_measure(run, in_phase);
        }
        run->phase = WB_DONE;
        return 0;
    }
    switch (run->phase) {
    case WB_CONNECT: {
        if (run->established + run->failed >= run->o.connections) {
            say(run, "connected %u of %u (%u failed) in %.1f s",
                run->established, run->o.connections, run->failed,
                (double)in_phase / 1e6);
            if (run->failed && run->o.strict_connect) {
                run->error = -ECONNREFUSED;
                run->phase = WB_DONE;
                return 0;
            }
            run->phase = WB_SETTLE;
            run->phase_start_us = now;
            return 0;
        }
        if (in_phase > 120 * 1000000LL) {
            say(run, "gave up connecting after 120 s");
            run->error = -ETIMEDOUT;
            run->phase = WB_DONE;
            return 0;
        }
        uint32_t slice = run->o.ramp / (1000000 / WB_TICK_US);
        slice = slice ? slice : 1;
        uint32_t left = run->o.connections - run->opened;
        return slice < left ? slice : left;
    }
    case WB_SETTLE:
        if (in_phase >= (int64_t)(run->o.settle_s * 1e6)) {
            start_measure(run, now);
        }
        return 0;
    case WB_MEASURE: {
        bool timed_out = run->o.duration_s > 0 &&
                         in_phase >= (int64_t)(run->o.duration_s * 1e6);
        int64_t idle_us = (int64_t)run->o.idle_exit_ms * 1000;
        bool idle = run->o.idle_exit_ms > 0 &&
                    now - run->last_frame_us >= idle_us && in_phase >= idle_us;
        if (timed_out || idle) {
            end_measure(run, in_phase);
            run->phase = WB_DONE;
        }
        return 0;
    }
    case WB_DONE:
        return 0;
    }
    return 0;
}

/* ---- the subscription message ------------------------------------------- */

int wb_build_subscribe(struct wb_run *run)
{
    const char *s = run->o.subscribe;
    char *out = run->subscribe_msg;
    size_t cap = sizeof(run->subscribe_msg), n;
    if (strcmp(s, "*") == 0) {
        n = (size_t)snprintf(out, cap,
                             "{\"op\":\"subscribe\",\"matches\":\"*\"}");
    } else {
        n = (size_t)snprintf(out, cap, "{\"op\":\"subscribe\",\"matches\":[");
        for (const char *p = s; *p && n < cap;) {
            size_t k = strcspn(p, ",");
            n += (size_t)snprintf(out + n, cap - n, "%s\"%.*s\"",
                                  p == s ? "" : ",", (int)k, p);
            p += k + (p[k] == ',');
        }
        if (n < cap) {
            n += (size_t)snprintf(out + n, cap - n, "]}");
        }
    }
    if (n >= cap - 1) {
        return -E2BIG;
    }
    run->subscribe_len = n;
    return 0;
}

/* ---- report
 * ------------------------------------------------------------------ */

static void bench_line(const struct wb_run *run, const char *name, double v,
                       const char *unit)
{
    if (run->o.bench_prefix) {
        printf("bench %s_%s %.6g %s\n", run->o.bench_prefix, name, v, unit);
    }
}

void wb_report(const struct wb_run *run)
{
    const struct wb_counts *k = &run->reader.counts;
    double secs = (double)run->window_us / 1e6;
    if (secs <= 0) {
        secs = 1e-9;
    }
    double p50 = wb_hist_quantile_ms(&run->reader.hist, 0.50);
    double p99 = wb_hist_quantile_ms(&run->reader.hist, 0.99);
    double max = (double)run->reader.hist.max_us / 1000.0;
    uint32_t open = run->conns_at_start ? run->conns_at_start : 1;

    printf("connections %u established %u failed %u closed %u "
           "(1009: %u, 1013: %u, other code: %u, no close frame: %u)\n",
           run->o.connections, run->established, run->failed, run->closed,
           run->close_codes[0], run->close_codes[1], run->close_codes[2],
           run->close_codes[3]);
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
           p50, p99, max, (unsigned long long)run->reader.hist.count);
    printf("checks: gaps %llu, orphans %llu, bad %llu, errors %llu, "
           "recovered %llu (before the window: gaps %llu, orphans %llu, "
           "bad %llu)\n",
           (unsigned long long)k->gaps, (unsigned long long)k->orphans,
           (unsigned long long)k->bad, (unsigned long long)k->errors,
           (unsigned long long)k->recovered,
           (unsigned long long)run->before.gaps,
           (unsigned long long)run->before.orphans,
           (unsigned long long)run->before.bad);
    if (run->reader.last_error[0]) {
        printf("last problem: %s\n", run->reader.last_error);
    }
    double per_conn = -1, per_conn_end = -1;
    if (run->rss_before_kib >= 0 && run->rss_start_kib >= 0) {
        per_conn =
            (double)(run->rss_start_kib - run->rss_before_kib) * 1024.0 / open;
        if (run->rss_end_kib >= 0) {
            per_conn_end = (double)(run->rss_end_kib - run->rss_before_kib) *
                           1024.0 / open;
        }
        printf("daemon rss: %ld KiB before connecting, %ld KiB connected, "
               "%ld KiB at the end: %.0f bytes per connection (%.0f at the "
               "end)\n",
               run->rss_before_kib, run->rss_start_kib, run->rss_end_kib,
               per_conn, per_conn_end);
    }

    /* CPU per delta: what the rate would be on free cores, whatever else
     * the machine was doing meanwhile. */
    double client_us = -1, daemon_us = -1;
    if (k->deltas > 0) {
        client_us =
            (double)(run->cpu_end_us - run->cpu_start_us) / (double)k->deltas;
        if (run->daemon_start_us >= 0 && run->daemon_end_us >= 0) {
            daemon_us = (double)(run->daemon_end_us - run->daemon_start_us) /
                        (double)k->deltas;
        }
        printf("cpu: client %.0f%% (%.3f us a delta), daemon %.0f%% (%.3f us "
               "a delta)\n",
               (double)(run->cpu_end_us - run->cpu_start_us) / 1e4 / secs,
               client_us,
               daemon_us < 0
                   ? -1.0
                   : (double)(run->daemon_end_us - run->daemon_start_us) / 1e4 /
                         secs,
               daemon_us);
    }

    bench_line(run, "connections", open, "connections");
    bench_line(run, "deltas_per_s", (double)k->deltas / secs, "deltas/s");
    bench_line(run, "messages_per_s", (double)k->messages / secs, "messages/s");
    bench_line(run, "frames_per_s", (double)k->frames / secs, "frames/s");
    bench_line(run, "latency_p50", p50, "ms");
    bench_line(run, "latency_p99", p99, "ms");
    bench_line(run, "latency_max", max, "ms");
    bench_line(
        run, "gaps",
        (double)(k->gaps + k->orphans + run->before.gaps + run->before.orphans),
        "count");
    if (client_us >= 0) {
        bench_line(run, "client_cpu_per_delta", client_us, "us");
    }
    if (daemon_us >= 0) {
        bench_line(run, "daemon_cpu_per_delta", daemon_us, "us");
    }
    if (per_conn >= 0) {
        bench_line(run, "rss_per_conn", per_conn, "bytes");
    }
    if (per_conn_end >= 0) {
        bench_line(run, "rss_per_conn_loaded", per_conn_end, "bytes");
    }
    fflush(stdout);
}

int wb_dump(struct wb_run *run)
{
    FILE *f = fopen(run->o.dump, "w");
    if (!f) {
        fprintf(stderr, "wsbench: %s: %s\n", run->o.dump, strerror(errno));
        return -errno;
    }
    int rc = wb_view_dump(&run->reader, &run->conns[0].view, f);
    if (fclose(f) != 0 && rc == 0) {
        rc = -EIO;
    }
    char *first = NULL, *other = NULL;
    size_t first_len = 0, other_len = 0;
    FILE *m = rc == 0 ? open_memstream(&first, &first_len) : NULL;
    if (rc == 0 && !m) {
        rc = -ENOMEM;
    }
    if (m) {
        rc = wb_view_dump(&run->reader, &run->conns[0].view, m);
        fclose(m);
    }
    for (uint32_t i = 1; rc == 0 && i < run->opened; i++) {
        m = open_memstream(&other, &other_len);
        if (!m) {
            rc = -ENOMEM;
            break;
        }
        rc = wb_view_dump(&run->reader, &run->conns[i].view, m);
        fclose(m);
        if (rc == 0 &&
            (other_len != first_len || memcmp(first, other, first_len))) {
            fprintf(stderr,
                    "wsbench: connection %u's view differs from connection "
                    "0's\n",
                    i);
            rc = 1;
        }
        free(other);
        other = NULL;
    }
    free(first);
    return rc;
}
