/* app/app_config.c - flags and environment into struct app_config. */

/*
 * DESIGN
 * One table describes every setting once: its flag, its type, where it
 * goes in struct app_config, its default and its help line. Parsing, the
 * environment fallback and --help all read the same table, so a new
 * setting is one line and cannot be documented in one place and missing in
 * another.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "app/app.h"

enum opt_type { OPT_STR, OPT_PORT, OPT_UINT };

struct opt {
    const char *flag; /* without the leading dashes */
    enum opt_type type;
    size_t offset;
    const char *def; /* NULL: unset */
    const char *help;
};

#define OFF(field) offsetof(struct app_config, field)

static const struct opt opts[] = {
    {"bind", OPT_STR, OFF(bind), "0.0.0.0",
     "address the feed and HTTP ports listen on"},
    {"feed-port", OPT_PORT, OFF(feed_port), "7700",
     "TCP port for feed sources (SFP/1)"},
    {"http-port", OPT_PORT, OFF(http_port), "8080",
     "HTTP and WebSocket port: the live page, /ws, /healthz, /readyz"},
    {"admin-port", OPT_PORT, OFF(admin_port), "9090",
     "admin port: /metrics, /actors, the operator page"},
    {"admin-bind", OPT_STR, OFF(admin_bind), "127.0.0.1",
     "address the admin port listens on"},
    {"db", OPT_STR, OFF(db), NULL,
     "PostgreSQL conninfo or URI (default: libpq's PG* environment)"},
    {"journal-dir", OPT_STR, OFF(journal_dir), NULL,
     "reserved for the local journal (not implemented yet; accepted, unused)"},
    {"tokens", OPT_STR, OFF(tokens), NULL,
     "file of source tokens, one \"source token\" per line"},
    {"doc-limit", OPT_UINT, OFF(doc_limit), "1048576",
     "bytes in one feed document; larger ones are rejected (too_large)"},
    {"silence-ms", OPT_UINT, OFF(silence_ms), "20000",
     "a source silent this long (ms) is marked stale"},
    {"window", OPT_UINT, OFF(window), "4096",
     "accepted, unacknowledged events per feed connection before it stops "
     "reading"},
    {"max-conns", OPT_UINT, OFF(max_conns), "1024",
     "feed connections at once; more are closed on accept"},
    {"batch-rows", OPT_UINT, OFF(batch_rows), "8192",
     "rows at which the store writes a batch (it also writes as soon as "
     "it has caught up)"},
    {"batch-ms", OPT_UINT, OFF(batch_ms), "50",
     "ms after a batch's first row at which the store writes it"},
    {"store-backlog", OPT_UINT, OFF(store_backlog), "200000",
     "rows the store holds while PostgreSQL is unreachable before feeds "
     "are held back"},
    {"store-backlog-mb", OPT_UINT, OFF(store_backlog_mb), "256",
     "MiB of rows the store holds while PostgreSQL is unreachable before "
     "feeds are held back (whichever bound comes first)"},
    {"store-retention", OPT_UINT, OFF(store_retention), "86400",
     "seconds an ended match is still loaded at start-up (0: always)"},
    {"retention", OPT_UINT, OFF(retention), "600",
     "seconds a finished match stays in memory after its last change"},
    {"idle-retention", OPT_UINT, OFF(idle_retention), "86400",
     "seconds an unfinished match without a change stays in memory, and "
     "is still loaded at start-up (0: for ever)"},
    {"max-clients", OPT_UINT, OFF(max_clients), "16384",
     "WebSocket connections in total"},
    {"ws-flush-ms", OPT_UINT, OFF(ws_flush_ms), "20",
     "ms between two frames to a client of every match, at least (under "
     "load, longer: one frame per fan-out cycle)"},
    {"schedulers", OPT_UINT, OFF(schedulers), "0",
     "scheduler threads (0: one per core)"},
    {"drain-ms", OPT_UINT, OFF(drain_ms), "10000",
     "on SIGTERM, ms to finish and acknowledge what feeds sent before "
     "stopping (exit 1 past it)"},
    {"log-level", OPT_STR, OFF(log_level), "info",
     "debug, info, warn or error (changeable at run time)"},
    {"log-format", OPT_STR, OFF(log_format), "logfmt", "logfmt or json"},
    {"web-dir", OPT_STR, OFF(web_dir), "web",
     "directory of the live page's files"},
};

#define N_OPTS (sizeof(opts) / sizeof(opts[0]))

/* "feed-port" -> "SCOREWIRE_FEED_PORT" */
static void env_name(const char *flag, char *out, size_t size)
{
    size_t n = (size_t)snprintf(out, size, "SCOREWIRE_");
    for (; *flag && n + 1 < size; flag++) {
        out[n++] = *flag == '-' ? '_' : (char)(*flag & ~0x20);
    }
    out[n] = '\0';
}

static int set(struct app_config *cfg, const struct opt *o, const char *v,
               FILE *err)
{
    char *field = (char *)cfg + o->offset;
    if (o->type == OPT_STR) {
        char **s = (char **)(void *)field;
        char *copy = strdup(v);
        if (!copy) {
            return -ENOMEM;
        }
        free(*s);
        *s = copy;
        return 0;
    }
    char *end;
    errno = 0;
    unsigned long n = strtoul(v, &end, 10);
    unsigned long max = o->type == OPT_PORT ? 65535 : UINT_MAX;
    if (errno || end == v || *end || n > max || *v == '-') {
        fprintf(err, "scorewire: --%s: not a %s: \"%s\"\n", o->flag,
                o->type == OPT_PORT ? "port (0-65535)" : "whole number", v);
        return -EINVAL;
    }
    *(unsigned *)(void *)field = (unsigned)n;
    return 0;
}

static void usage(FILE *out)
{
    fprintf(out, "usage: scorewire [options]\n\n"
                 "Scorewire: live sports feeds (SFP/1) in, live state over "
                 "WebSocket and a\ndurable record in PostgreSQL out.\n\n"
                 "Each option can also come from the environment "
                 "(--feed-port from\nSCOREWIRE_FEED_PORT); a flag wins over "
                 "the environment.\n\n");
    for (size_t i = 0; i < N_OPTS; i++) {
        char env[64];
        env_name(opts[i].flag, env, sizeof(env));
        fprintf(out, "  --%-14s %s\n  %16s [%s; default %s]\n", opts[i].flag,
                opts[i].help, "", env, opts[i].def ? opts[i].def : "unset");
    }
    fprintf(out, "\n  --help           this text\n"
                 "  --version        the version\n");
}

int app_config_load(struct app_config *cfg, int argc, char **argv, FILE *out,
                    FILE *err)
{
    memset(cfg, 0, sizeof(*cfg));
    int rc;
    for (size_t i = 0; i < N_OPTS; i++) {
        char env[64];
        env_name(opts[i].flag, env, sizeof(env));
        const char *v = getenv(env);
        if (!v) {
            v = opts[i].def;
        }
        if (v && (rc = set(cfg, &opts[i], v, err)) != 0) {
            goto out_free;
        }
    }
    for (int a = 1; a < argc; a++) {
        const char *arg = argv[a];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            usage(out);
            rc = 1;
            goto out_free;
        }
        if (strcmp(arg, "--version") == 0) {
            fprintf(out, "scorewire 0.1\n");
            rc = 1;
            goto out_free;
        }
        if (strncmp(arg, "--", 2) != 0) {
            fprintf(err, "scorewire: unexpected argument \"%s\" (see --help)\n",
                    arg);
            rc = -EINVAL;
            goto out_free;
        }
        const char *name = arg + 2;
        const char *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        const struct opt *o = NULL;
        for (size_t i = 0; i < N_OPTS; i++) {
            if (strlen(opts[i].flag) == len &&
                strncmp(opts[i].flag, name, len) == 0) {
                o = &opts[i];
            }
        }
        if (!o) {
            fprintf(err, "scorewire: unknown option \"%s\" (see --help)\n",
                    arg);
            rc = -EINVAL;
            goto out_free;
        }
        const char *v = eq ? eq + 1 : NULL;
        if (!v) {
            if (a + 1 >= argc) {
                fprintf(err, "scorewire: --%s needs a value\n", o->flag);
                rc = -EINVAL;
                goto out_free;
            }
            v = argv[++a];
        }
        if ((rc = set(cfg, o, v, err)) != 0) {
            goto out_free;
        }
    }
    return 0;

out_free:
    app_config_free(cfg);
    return rc;
}

void app_config_free(struct app_config *cfg)
{
    for (size_t i = 0; i < N_OPTS; i++) {
        if (opts[i].type == OPT_STR) {
            char **s = (char **)(void *)((char *)cfg + opts[i].offset);
            free(*s);
            *s = NULL;
        }
    }
}
