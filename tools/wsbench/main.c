/* tools/wsbench/main.c - scorewire-wsbench's command line. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/wsbench/wsbench.h"

static volatile sig_atomic_t interrupted;

/* ---- options and main
 * --------------------------------------------------------- */

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

static void usage(FILE *out)
{
    fputs("usage: scorewire-wsbench [options]\n"
          "  --url ws://HOST:PORT/PATH  server (default "
          "ws://127.0.0.1:8080/ws)\n"
          "  -c, --connections K        connections (default 1)\n"
          "  --ramp N                   connections opened per second "
          "(default 5000)\n"
          "  --subscribe LIST           \"*\" or ids separated by commas "
          "(default \"*\")\n"
          "  --settle S                 seconds from connected to measuring "
          "(default 1)\n"
          "  --duration S               seconds to measure; 0: until idle or "
          "a signal (default 10)\n"
          "  --idle-exit MS             stop when nothing arrived for MS ms\n"
          "  --pid PID                  the daemon, for RSS per connection\n"
          "  --dump FILE                write the final view of every match "
          "(all connections must agree)\n"
          "  --bench-prefix NAME        also print `bench NAME_x value unit` "
          "lines\n"
          "  --engine lws|raw           client: libwebsockets (default) or "
          "the lean built-in one\n"
          "  --strict-connect           fail when any connection fails\n"
          "  -q, --quiet                no progress on stderr\n"
          "Exit: 0 ok; 1 setup failed; 2 version gaps or bad frames; 3 views "
          "differ.\n",
          out);
}

static int parse_url(struct wb_opts *o, const char *url)
{
    static char host[256], path[256];
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
    long port = 80;
    if (*p == ':') {
        char *end;
        port = strtol(p + 1, &end, 10);
        p = end;
    }
    snprintf(path, sizeof(path), "%s", *p ? p : "/");
    o->address = host;
    o->port = (int)port;
    o->path = path;
    return port > 0 && port < 65536 ? 0 : -EINVAL;
}

static int parse_opts(struct wb_opts *o, int argc, char **argv)
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
        {"engine", required_argument, NULL, 'e'},
        {"strict-connect", no_argument, NULL, 'x'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    *o = (struct wb_opts){
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
        case 'e':
            if (strcmp(optarg, "raw") != 0 && strcmp(optarg, "lws") != 0) {
                fprintf(stderr, "wsbench: --engine lws or raw\n");
                return -EINVAL;
            }
            o->raw = strcmp(optarg, "raw") == 0;
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
    static struct wb_run run;
    if (parse_opts(&run.o, argc, argv) != 0 || wb_build_subscribe(&run) != 0) {
        return 1;
    }
    int status = 1;
    run.conns = calloc(run.o.connections, sizeof(*run.conns));
    if (!run.conns || wb_reader_init(&run.reader, run.o.dump != NULL) != 0) {
        fprintf(stderr, "wsbench: out of memory\n");
        goto out;
    }
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    run.rss_before_kib = wb_rss_kib(run.o.pid);
    run.rss_start_kib = run.rss_end_kib = -1;
    run.phase = WB_CONNECT;
    run.phase_start_us = run.last_frame_us = wb_mono_us();
    int rc = run.o.raw ? wb_raw_run(&run, &interrupted)
                       : wb_lws_run(&run, &interrupted);
    if (rc == 0) {
        rc = run.error;
    }
    if (rc != 0) {
        fprintf(stderr, "wsbench: %s%s%s\n", strerror(-rc),
                run.last_connect_error[0] ? ": " : "", run.last_connect_error);
        goto out;
    }
    wb_report(&run);
    status = 0;
    if (run.o.dump) {
        rc = wb_dump(&run);
        status = rc < 0 ? 1 : rc > 0 ? 3 : 0;
    }
    /* Gaps anywhere in the run, not only in the window, fail it. */
    const struct wb_counts *k = &run.reader.counts, *b = &run.before;
    if (k->gaps || k->orphans || k->bad || b->gaps || b->orphans || b->bad) {
        status = 2;
    }

out:
    for (uint32_t i = 0; run.conns && i < run.o.connections; i++) {
        free(run.conns[i].buf);
        wb_view_release(&run.conns[i].view);
    }
    free(run.conns);
    wb_reader_release(&run.reader);
    return status;
}
