/* app/main.c - the scorewire daemon: flags, the supervision tree, signals. */

/*
 * DESIGN
 * main is the only place that knows every stage. It reads the config,
 * starts the runtime and the root supervisor, then waits for signals on
 * its own thread (they are blocked everywhere else, so no handler runs in
 * the middle of an actor). SIGTERM or SIGINT shuts the tree down in order
 * (children stop in reverse of their start) and exits 0; a second one
 * exits at once. If the root ends on its own, its restart intensity was
 * exceeded: the process exits 1 so systemd or `make run` can restart it
 * from a known state.
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
#include "model/model.h"
#include "notify/notify.h"
#include "store/store.h"

#define DRAIN_MS 30000 /* the whole tree's grace on SIGTERM */

/*
 * The tree (ARCHITECTURE.md draws it). Specs and the configs they point to
 * live as long as the process: supervisors restart children from them.
 */
static struct store_config store_cfg;
static struct model_config model_cfg;
static struct notify_config notify_cfg;
static struct notify_admin_config admin_cfg;
static char admin_root[4096]; /* <web-dir>/admin */

enum { P_NOTIFY, P_STORE, P_MODEL, P_COUNT };
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
    store_cfg.retention_s = cfg->store_retention;
    int rc = store_child_spec(&store_cfg, &pipeline_children[P_STORE]);
    if (rc != 0) {
        return rc;
    }

    model_cfg.retention_ms = cfg->retention * 1000u;
    return model_child_spec(&model_cfg, &pipeline_children[P_MODEL]);
}

static int configure_logs(const struct app_config *cfg)
{
    enum actor_log_level level;
    if (actor_log_parse_level(cfg->log_level, &level) != 0) {
        fprintf(stderr, "scorewire: --log-level: debug, info, warn or error, "
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
        fprintf(stderr, "scorewire: --log-format: logfmt or json, not "
                        "\"%s\"\n",
                cfg->log_format);
        return -EINVAL;
    }
    return 0;
}

/* Waits for the root to end, turning signals into an orderly shutdown.
 * Returns the process's exit status. */
static int supervise(uint64_t root)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    bool stopping = false;
    int64_t deadline = 0;
    for (;;) {
        struct timespec tick = {.tv_sec = 0, .tv_nsec = 200 * 1000000L};
        int sig = sigtimedwait(&set, NULL, &tick);
        if (sig == SIGINT || sig == SIGTERM) {
            if (stopping) {
                actor_log(NULL, ACTOR_LOG_WARN, "second signal: exiting now",
                          "signal", strsignal(sig), NULL);
                return 1;
            }
            stopping = true;
            deadline = actor_now_ms() + DRAIN_MS;
            actor_log(NULL, ACTOR_LOG_INFO, "shutting down", "signal",
                      strsignal(sig), NULL);
            struct actor_exit why = {.kind = ACTOR_EXIT_SHUTDOWN};
            actor_exit(NULL, root, &why);
        }
        struct actor_exit why;
        if (actor_wait(root, 0, &why)) {
            if (stopping) {
                actor_log(NULL, ACTOR_LOG_INFO, "stopped", NULL);
                return 0;
            }
            actor_log(NULL, ACTOR_LOG_ERROR, "supervision tree ended",
                      "reason", actor_exit_kind_name(why.kind), "detail",
                      why.text, NULL);
            return 1;
        }
        if (stopping && actor_now_ms() > deadline) {
            actor_log(NULL, ACTOR_LOG_ERROR, "shutdown timed out", "limit_ms",
                      ACTOR_LOG_INT(DRAIN_MS), NULL);
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
    actor_log(NULL, ACTOR_LOG_INFO, "scorewire started", "feed_port",
              ACTOR_LOG_INT(cfg.feed_port), "http_port",
              ACTOR_LOG_INT(cfg.http_port), "admin_port",
              ACTOR_LOG_INT(cfg.admin_port), NULL);
    status = supervise(root);
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
