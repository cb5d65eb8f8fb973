/* app/app.h - the daemon's configuration: flags, environment, defaults. */
#ifndef APP_APP_H
#define APP_APP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/*
 * Every setting has a flag (--feed-port), an environment variable
 * (SCOREWIRE_FEED_PORT) and a default; the flag wins over the environment,
 * which wins over the default. The names are part of the operator's
 * interface: README.md lists them all, from this table.
 */
struct app_config {
    /* listeners */
    char *bind; /* address of the public ports */
    unsigned feed_port;
    unsigned http_port;
    unsigned admin_port;
    char *admin_bind; /* the admin listener's address */
    /* storage */
    char *db; /* libpq conninfo or URI; NULL: libpq's PG* env */
    char *journal_dir;
    /* feeds */
    char *tokens;        /* file of "source token" lines, or NULL */
    unsigned doc_limit;  /* bytes in one feed document */
    unsigned silence_ms; /* a source silent this long is stale */
    unsigned window;     /* unacked events per connection */
    unsigned max_conns;  /* feed connections at once */
    /* store */
    unsigned batch_rows;       /* rows at which a batch is written */
    unsigned batch_ms;         /* ms after a batch's first row */
    unsigned store_backlog;    /* rows held during an outage */
    unsigned store_backlog_mb; /* ... or MiB of them */
    unsigned store_retention;  /* s: finished matches loaded at start-up */
    /* model */
    unsigned retention;      /* s: a finished match stays in memory */
    unsigned idle_retention; /* s: an unfinished one without a change (also
                                the start-up load's bound for it) */
    /* notify */
    unsigned max_clients; /* WebSocket connections in total */
    unsigned ws_flush_ms; /* the shortest time between two frames to a "*"
                             subscriber */
    /* runtime */
    unsigned schedulers; /* 0: one per core */
    unsigned drain_ms;   /* on SIGTERM: what feeds sent is finished and
                            acked within this, before the tree stops */
    /* logs */
    char *log_level;
    char *log_format;
    /* pages */
    char *web_dir; /* the live page's files */
};

/*
 * Fills @cfg from @argv, the environment and defaults. Returns 0; 1 when
 * --help or --version was asked (the text went to @out); a negative errno
 * when a value is bad (the reason went to @err).
 */
int app_config_load(struct app_config *cfg, int argc, char **argv, FILE *out,
                    FILE *err);

/* Frees what app_config_load() allocated. */
void app_config_free(struct app_config *cfg);

struct actor_buf;

/*
 * Appends the live supervision tree as JSON to @out: {"alive":..,
 * "tree":[node...]}, each node {"pid","kind","name","supervisor","thread",
 * "state","mailbox","capacity","handled","restarts","children":[...]}; a
 * supervisor with many children shows "children_count", "by_kind" and its
 * @busiest busiest children instead. Returns 0 or -ENOMEM.
 */
int app_actors_json(struct actor_buf *out, size_t busiest);

/* Appends the runtime's Prometheus series (actors, mailboxes, restarts by
 * kind; spawn, exit, crash and refusal counters). Returns 0 or -ENOMEM. */
int app_runtime_metrics(struct actor_buf *out);

/* Sends @state ("READY=1", "WATCHDOG=1", ...) to systemd through
 * $NOTIFY_SOCKET. Returns 0 (also when not under systemd) or a negative
 * errno. */
int app_sd_notify(const char *state);

struct notify_admin_config;

/* Points @cfg's routes at the admin port's: GET /metrics, /actors,
 * /loglevel and /api/model, PUT /loglevel (static; not owned). */
void app_admin_routes(struct notify_admin_config *cfg);

/* The last child of the root supervisor: says READY=1 once every stage
 * before it has started, then pings the watchdog. */
extern const struct actor_ops app_ready_ops;

/* Beside the pipeline: feeds notify's /readyz from the store's and the
 * model's published state. */
extern const struct actor_ops app_health_ops;

#endif /* APP_APP_H */
