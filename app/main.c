/* app/main.c - the scorewire daemon: flags, the supervision tree, signals. */

/*
 * DESIGN
 * main is the only place that knows every stage. It reads the config,
 * starts the runtime and the root supervisor, then waits for signals on
 * its own thread (they are blocked everywhere else, so no handler runs in
 * the middle of an actor). If the root ends on its own, its restart
 * intensity was exceeded: the process exits 1 so systemd or `make run` can
 * restart it from a known state.
 *
 * SIGTERM or SIGINT stops in two steps. The drain: ingest stops accepting
 * and reading (ingest_drain), and everything else keeps running, so that
 * what the feeds had sent is parsed, applied, stored and acked to them;
 * main watches ingest_drain_is_done() for at most --drain-ms. Then the
 * shutdown: the tree stops in order (children in reverse of their start:
 * ingest, the model, the store with its last batch (the model's rows;
 * the events it had not acked are left to the feeds), notify with its
 * WebSocket clients), within SHUTDOWN_MS. Exit 0 when both ended in time;
 * 1 when the drain's deadline passed with accepted events not acked (the
 * feeds resend them: nothing is lost, but the stop was not clean), or the
 * shutdown's; a second signal exits 1 at once.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "actor/actor.h"
#include "app/app.h"
#include "ingest/ingest.h"
#include "model/model.h"
#include "notify/notify.h"
#include "store/store.h"

#define SHUTDOWN_MS  30000 /* the tree's grace once the drain is over */
#define TICK_MS      200   /* how often main looks at the tree */
#define STOP_TICK_MS 20    /* ... once stopping */

/*
 * The tree (ARCHITECTURE.md draws it). Specs and the configs they point to
 * live as long as the process: supervisors restart children from them.
 */
static struct store_config store_cfg;
static struct model_config model_cfg;
static struct notify_config notify_cfg;
static struct ingest_config ingest_cfg;
static struct notify_admin_config admin_cfg;
static char admin_root[4096]; /* <web-dir>/admin */

enum { P_NOTIFY, P_STORE, P_MODEL, P_INGEST, P_COUNT };
static struct actor_child_spec pipeline_children[P_COUNT];

static struct actor_sup_spec pipeline_spec = {
    .name = "pipeline",
    .strategy = ACTOR_REST_FOR_ONE,
    .intensity = 3,
    .period_ms = 60000,
    .children = pipeline_children,
    .n_children = P_COUNT,
};

static const struct actor_child_spec root_children[] = {
    {.id = "admin",
     .start = {.ops = &notify_admin_ops,
               .arg = &admin_cfg,
               .name = "admin",
               .thread = true},
     .restart = ACTOR_PERMANENT,
     .shutdown_ms = 10000}, /* a request may wait 5 s for the model */
    {.id = "pipeline",
     .sup = &pipeline_spec,
     .restart = ACTOR_PERMANENT,
     .shutdown_ms = ACTOR_INFINITY},
    {.id = "health",
     .start = {.ops = &app_health_ops, .name = "app.health"},
     .restart = ACTOR_PERMANENT,
     .shutdown_ms = 1000},
    {.id = "ready",
     .start = {.ops = &app_ready_ops, .name = "app.ready"},
     .restart = ACTOR_PERMANENT,
     .shutdown_ms = 1000},
};

static const struct actor_sup_spec root_spec = {
    .name = "scorewire",
    .strategy = ACTOR_ONE_FOR_ONE,
    .intensity = 3,
    .period_ms = 60000,
    .children = root_children,
    .n_children = sizeof(root_children) / sizeof(root_children[0]),
};

/* Ingest hands a source's feed state to the model; a repeat after
 * -EAGAIN is harmless (a state already set makes no new version). */
static int feed_state(struct actor_ctx *ctx, const char *source,
                      enum match_feed state, const char *const *ids, size_t n)
{
    size_t next = 0;
    return model_feed(ctx, source, state, ids, n, &next);
}

/* Fills the stages' configs and the pipeline's child specs from @cfg. */
static int build_tree(const struct app_config *cfg)
{
    int n = snprintf(admin_root, sizeof(admin_root), "%s/admin", cfg->web_dir);
    if (n < 0 || (size_t)n >= sizeof(admin_root)) {
        return -ENAMETOOLONG;
    }
    admin_cfg = (struct notify_admin_config){
        .host = cfg->admin_bind,
        .port = (int)cfg->admin_port,
        .web_root = admin_root,
    };
    app_admin_routes(&admin_cfg);

    notify_config_default(&notify_cfg);
    notify_cfg.host = strcmp(cfg->bind, "0.0.0.0") == 0 ? NULL : cfg->bind;
    notify_cfg.port = (int)cfg->http_port;
    notify_cfg.web_root = cfg->web_dir;
    notify_cfg.max_clients = cfg->max_clients;
    notify_cfg.flush_ms = cfg->ws_flush_ms;
    pipeline_children[P_NOTIFY] = (struct actor_child_spec){
        .id = "notify",
        .start = {.ops = &notify_ops,
                  .arg = &notify_cfg,
                  .name = "notify",
                  .thread = true,
                  .mailbox = 1u << 16},
        .restart = ACTOR_PERMANENT,
        .shutdown_ms = 5000,
    };

    store_config_default(&store_cfg);
    store_cfg.conninfo = cfg->db;
    store_cfg.batch_rows = cfg->batch_rows;
    store_cfg.batch_ms = cfg->batch_ms;
    store_cfg.backlog_rows = cfg->store_backlog;
    store_cfg.backlog_bytes = (uint64_t)cfg->store_backlog_mb << 20;
    store_cfg.retention_s = cfg->store_retention;
    store_cfg.idle_s = cfg->idle_retention;
    int rc = store_child_spec(&store_cfg, &pipeline_children[P_STORE]);
    if (rc != 0) {
        return rc;
    }

    model_cfg.retention_ms = cfg->retention * 1000u;
    /* ms in 32 bits: 49 days at most */
    model_cfg.idle_ms = cfg->idle_retention < UINT32_MAX / 1000u
                            ? cfg->idle_retention * 1000u
                            : UINT32_MAX / 1000u * 1000u;
    rc = model_child_spec(&model_cfg, &pipeline_children[P_MODEL]);
    if (rc != 0) {
        return rc;
    }

    ingest_cfg = (struct ingest_config){
        .bind = cfg->bind,
        .port = cfg->feed_port,
        .tokens_path = cfg->tokens,
        .max_conns = cfg->max_conns,
        .silence_ms = cfg->silence_ms,
        .doc_limit = cfg->doc_limit,
        .window = cfg->window,
        .route = model_route,
        .feed = feed_state,
    };
    return ingest_child_spec(&ingest_cfg, &pipeline_children[P_INGEST]);
}

static int configure_logs(const struct app_config *cfg)
{
    enum actor_log_level level;
    if (actor_log_parse_level(cfg->log_level, &level) != 0) {
        fprintf(stderr,
                "scorewire: --log-level: debug, info, warn or error, "
                "not \"%s\"\n",
                cfg->log_level);
        return -EINVAL;
    }
    actor_log_set_level(level);
    if (strcmp(cfg->log_format, "json") == 0) {
        actor_log_set_format(ACTOR_LOG_JSON);
    } else if (strcmp(cfg->log_format, "logfmt") == 0) {
        actor_log_set_format(ACTOR_LOG_LOGFMT);
    } else {
        fprintf(stderr,
                "scorewire: --log-format: logfmt or json, not "
                "\"%s\"\n",
                cfg->log_format);
        return -EINVAL;
    }
    return 0;
}

enum phase {
    RUNNING,  /* serving */
    DRAINING, /* a signal came: ingest finishes what it read */
    STOPPING  /* the tree shuts down */
};

static void shut_down(uint64_t root)
{
    actor_log(NULL, ACTOR_LOG_INFO, "shutting down", NULL);
    struct actor_exit why = {.kind = ACTOR_EXIT_SHUTDOWN};
    actor_exit(NULL, root, &why);
}

/* Ends the drain when it is done or its deadline has passed. Returns the
 * exit status it earns (0, or 1 when incomplete), or -1 while it goes on. */
static int drain_check(int64_t started, int64_t deadline)
{
    struct ingest_drain_status st;
    int64_t now = actor_now_ms();
    if (ingest_drain_is_done(&st)) {
        actor_log(NULL, ACTOR_LOG_INFO, "drained", "ms",
                  ACTOR_LOG_INT(now - started), NULL);
        return 0;
    }
    if (now < deadline) {
        return -1;
    }
    /* The sources log their unacked seqs as they stop. */
    actor_log(NULL, ACTOR_LOG_ERROR,
              "drain deadline passed: accepted events not acked (the feeds "
              "resend them)",
              "limit_ms", ACTOR_LOG_INT(deadline - started), "conns",
              ACTOR_LOG_INT(st.conns), "sources", ACTOR_LOG_INT(st.sources),
              NULL);
    return 1;
}

/* Waits for the root to end, turning signals into an orderly stop (see
 * DESIGN). Returns the process's exit status. */
static int supervise(uint64_t root, uint32_t drain_ms)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    enum phase phase = RUNNING;
    int status = 0;
    int64_t started = 0, deadline = 0;
    for (;;) {
        long ms = phase == RUNNING ? TICK_MS : STOP_TICK_MS;
        struct timespec tick = {.tv_sec = 0, .tv_nsec = ms * 1000000L};
        int sig = sigtimedwait(&set, NULL, &tick);
        if (sig == SIGINT || sig == SIGTERM) {
            if (phase != RUNNING) {
                actor_log(NULL, ACTOR_LOG_WARN, "second signal: exiting now",
                          "signal", strsignal(sig), NULL);
                return 1;
            }
            phase = DRAINING;
            started = actor_now_ms();
            deadline = started + drain_ms;
            actor_log(NULL, ACTOR_LOG_INFO, "draining", "signal",
                      strsignal(sig), "limit_ms", ACTOR_LOG_INT(drain_ms),
                      NULL);
            app_sd_notify("STOPPING=1");
            ingest_drain();
        }
        struct actor_exit why;
        if (actor_wait(root, 0, &why)) {
            if (phase == STOPPING) {
                actor_log(NULL, ACTOR_LOG_INFO, "stopped", "status",
                          ACTOR_LOG_INT(status), NULL);
                return status;
            }
            actor_log(NULL, ACTOR_LOG_ERROR, "supervision tree ended", "reason",
                      actor_exit_kind_name(why.kind), "detail", why.text, NULL);
            return 1;
        }
        if (phase == DRAINING) {
            int rc = drain_check(started, deadline);
            if (rc >= 0) {
                status = rc;
                phase = STOPPING;
                deadline = actor_now_ms() + SHUTDOWN_MS;
                shut_down(root);
            }
        } else if (phase == STOPPING && actor_now_ms() > deadline) {
            actor_log(NULL, ACTOR_LOG_ERROR, "shutdown timed out", "limit_ms",
                      ACTOR_LOG_INT(SHUTDOWN_MS), NULL);
            return 1;
        }
    }
}

int main(int argc, char **argv)
{
    struct app_config cfg;
    int rc = app_config_load(&cfg, argc, argv, stdout, stderr);
    if (rc != 0) {
        return rc > 0 ? 0 : 2;
    }
    int status = 2;
    if (configure_logs(&cfg) != 0) {
        goto out_config;
    }

    /* Signals go to main's sigtimedwait only; threads inherit the mask. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (build_tree(&cfg) != 0) {
        fprintf(stderr, "scorewire: cannot build the supervision tree\n");
        goto out_config;
    }
    rc = actor_runtime_start(
        &(struct actor_config){.schedulers = cfg.schedulers});
    if (rc != 0) {
        actor_log(NULL, ACTOR_LOG_ERROR, "runtime did not start", "error",
                  strerror(-rc), NULL);
        goto out_config;
    }
    uint64_t root;
    rc = actor_sup_start(&root_spec, 0, &root);
    if (rc != 0) {
        actor_log(NULL, ACTOR_LOG_ERROR, "supervision tree did not start",
                  "error", strerror(-rc), NULL);
        goto out_runtime;
    }
    actor_log(NULL, ACTOR_LOG_INFO, "scorewire starting", "feed_port",
              ACTOR_LOG_INT(cfg.feed_port), "http_port",
              ACTOR_LOG_INT(cfg.http_port), "admin_port",
              ACTOR_LOG_INT(cfg.admin_port), NULL);
    status = supervise(root, cfg.drain_ms);
    if (status != 0) {
        /* Threads may be stuck in a child that would not stop. */
        fflush(NULL);
        _exit(status);
    }

out_runtime:
    actor_runtime_stop();
out_config:
    app_config_free(&cfg);
    return status;
}
