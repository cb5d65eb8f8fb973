/* model/model_loader.c - the model subtree: its configuration, metrics,
 * and model.loader, which starts every stored match before the model acks
 * its start. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"
#include "model/model_impl.h"
#include "store/store.h"

/*
 * DESIGN
 * The loader's request reaches the store after every update the previous
 * model sent (one_for_all stops the old match actors before the loader
 * starts; causal order does the rest), and the store answers it with the
 * newest rows: its start-up load the first time, else a fresh load once
 * its batch is written. So each row is a match's latest state, and the
 * match actor starts from it without asking again.
 */

static _Atomic(const struct model_config *) config;
static atomic_bool loaded;
static _Atomic int64_t matches_alive;

uint32_t model__retention_ms(void)
{
    const struct model_config *cfg = atomic_load(&config);
    return cfg && cfg->retention_ms ? cfg->retention_ms
                                    : MODEL_RETENTION_DEFAULT_MS;
}

uint32_t model__idle_ms(void)
{
    const struct model_config *cfg = atomic_load(&config);
    return cfg ? cfg->idle_ms : 0;
}

uint32_t model__match_mailbox(void)
{
    const struct model_config *cfg = atomic_load(&config);
    return cfg ? cfg->match_mailbox : 0;
}

bool model_is_loaded(void)
{
    return atomic_load(&loaded);
}

/* ---- metrics ------------------------------------------------------------- */

static struct model__metrics metrics;
static pthread_once_t metrics_once = PTHREAD_ONCE_INIT;

static double read_matches(void *arg)
{
    (void)arg;
    return (double)atomic_load(&matches_alive);
}

static void metrics_init(void)
{
    metrics.updates = actor_metric_counter(
        "scorewire_model_updates_total",
        "Match updates applied: new versions published", NULL);
    metrics.gaps = actor_metric_counter(
        "scorewire_model_gaps_total",
        "Match elements whose msgnr jumped over a gap", NULL);
    metrics.duplicates = actor_metric_counter(
        "scorewire_model_duplicates_total",
        "Match elements skipped: msgnr not above the last applied", NULL);
    metrics.lost = actor_metric_counter(
        "scorewire_model_lost_total",
        "Match elements never applied: their match actor ended first", NULL);
    actor_metric_gauge_fn("scorewire_model_matches",
                          "Matches held in memory (match actors alive)", NULL,
                          read_matches, NULL);
}

const struct model__metrics *model__metrics(void)
{
    pthread_once(&metrics_once, metrics_init);
    return &metrics;
}

void model__matches_add(int delta)
{
    atomic_fetch_add(&matches_alive, delta);
}

/* ---- the loader ---------------------------------------------------------- */

struct loader {
    bool asked; /* the request is in the store's mailbox */
    bool done;  /* loaded and acked */
};

/* Sends the store the request for every match. Returns 0, -EAGAIN (we get
 * ACTOR_MSG_RESUME), -ESRCH (no store) or -ENOMEM. */
static int ask(struct actor_ctx *ctx, struct loader *l)
{
    struct store_load_req_msg *req =
        store_load_req_msg_new(actor_self(ctx), NULL);
    if (!req) {
        return -ENOMEM;
    }
    int rc = actor_send(ctx, actor_whereis("store"), &req->hdr);
    if (rc != 0) {
        actor_msg_free(&req->hdr);
        return rc;
    }
    l->asked = true;
    return 0;
}

static int loader_init(struct actor_ctx *ctx, void *arg, void **state)
{
    (void)arg;
    atomic_store(&loaded, false);
    model__metrics();
    struct loader *l = calloc(1, sizeof(*l));
    if (!l) {
        return -ENOMEM;
    }
    *state = l;
    int rc = ask(ctx, l);
    if (rc != 0 && rc != -EAGAIN) {
        free(l);
        *state = NULL;
        return rc;
    }
    return ACTOR_DEFER;
}

/* Starts the actor of stored match @row with its state. Returns 0
 * (started, or already running: it has its own state) or a negative
 * errno. */
static int start_stored(struct actor_ctx *ctx, const struct store_match *row)
{
    char name[MODEL__NAME_MAX];
    if (model__match_name(name, row->id) != 0) {
        ACTOR_LOG_RL(ctx, ACTOR_LOG_WARN, "stored match id not usable", "match",
                     row->id, NULL);
        return 0;
    }
    struct model__match m;
    int rc = model__match_restore(&m, row);
    if (rc == -EINVAL) {
        ACTOR_LOG_RL(ctx, ACTOR_LOG_WARN, "stored match not usable", "match",
                     row->id, NULL);
        return 0;
    }
    if (rc != 0) {
        return rc;
    }
    struct model__start *start = malloc(sizeof(*start));
    if (!start) {
        model__match_release(&m);
        return -ENOMEM;
    }
    start->image = m.image;
    uint64_t pid;
    rc = model__start_match(name, start, &pid);
    return rc == -EEXIST ? 0 : rc;
}

static int on_loaded(struct actor_ctx *ctx, struct loader *l,
                     struct store_loaded_msg *m)
{
    if (l->done) {
        ACTOR_LOG_RL(ctx, ACTOR_LOG_WARN, "unexpected load reply", NULL);
        return 0;
    }
    if (m->status != 0 || !m->load) {
        return actor_fail(ctx, "store load: %s",
                          strerror(m->status ? -m->status : EPROTO));
    }
    const struct store_load *load = m->load;
    for (size_t k = 0; k < load->n_matches; k++) {
        int rc = start_stored(ctx, &load->matches[k]);
        if (rc != 0) {
            return rc;
        }
    }
    atomic_store(&loaded, true);
    l->done = true;
    actor_log(ctx, ACTOR_LOG_INFO, "model loaded", "matches",
              ACTOR_LOG_INT(load->n_matches), NULL);
    actor_init_done(ctx);
    return 0;
}

/* The store has room again: ask, unless the request went already. */
static int on_resume(struct actor_ctx *ctx, struct loader *l)
{
    if (l->asked) {
        return 0;
    }
    int rc = ask(ctx, l);
    return rc == -EAGAIN ? 0 : rc;
}

static int loader_handle(struct actor_ctx *ctx, void *state,
                         struct actor_msg *msg)
{
    struct loader *l = state;
    switch (msg->type) {
    case STORE_MSG_LOADED:
        return on_loaded(ctx, l, (struct store_loaded_msg *)msg);
    case ACTOR_MSG_RESUME:
        return on_resume(ctx, l);
    default:
        return -EINVAL;
    }
}

static void loader_stop(struct actor_ctx *ctx, void *state,
                        const struct actor_exit *why)
{
    (void)ctx;
    (void)why;
    atomic_store(&loaded, false);
    free(state);
}

const struct actor_ops model__loader_ops = {
    .name = "model.loader",
    .init = loader_init,
    .handle = loader_handle,
    .stop = loader_stop,
};

/* ---- the subtree --------------------------------------------------------- */

static const struct actor_sup_spec matches_spec = {
    .name = "model.matches",
    .strategy = ACTOR_DYNAMIC,
    .intensity = MODEL_MATCH_RESTARTS,
    .period_ms = MODEL_MATCH_PERIOD_MS,
};

static const struct actor_child_spec model_children[] = {
    {.id = "model.matches",
     .sup = &matches_spec,
     .restart = ACTOR_PERMANENT,
     .shutdown_ms = ACTOR_INFINITY},
    {.id = "model.loader",
     .start = {.ops = &model__loader_ops},
     .restart = ACTOR_PERMANENT,
     .shutdown_ms = 1000},
};

static const struct actor_sup_spec model_spec = {
    .strategy = ACTOR_ONE_FOR_ALL,
    .intensity = 3,
    .period_ms = 60000,
    .children = model_children,
    .n_children = sizeof(model_children) / sizeof(model_children[0]),
};

int model_child_spec(const struct model_config *cfg,
                     struct actor_child_spec *out)
{
    atomic_store(&config, cfg);
    model__metrics();
    *out = (struct actor_child_spec){.id = "model",
                                     .sup = &model_spec,
                                     .restart = ACTOR_PERMANENT,
                                     .shutdown_ms = ACTOR_INFINITY};
    return 0;
}
