/* app/app_health.c - tells notify what /readyz waits for: the database is
 * reachable and the stored matches are loaded. */

/*
 * DESIGN
 * The store and the model publish their state as atomics; this actor (a
 * child of the root, beside the pipeline) reads them four times a second
 * and tells notify when one changes, and once a second anyway, so a
 * restarted notify learns the state without anyone tracking its restarts.
 * It keeps the stages from knowing about each other.
 */
#include <errno.h>
#include <stdlib.h>

#include "actor/actor.h"
#include "app/app.h"
#include "model/model.h"
#include "notify/notify.h"
#include "store/store.h"

enum { APP_MSG_HEALTH_TICK = 0x501 };

#define TICK_MS       250
#define REFRESH_TICKS 4 /* tell notify at least this often */

struct health {
    int db; /* -1 unknown, 0, 1 */
    int model;
    unsigned ticks;
};

static int arm(struct actor_ctx *ctx)
{
    struct actor_msg *m = actor_msg_new(sizeof(*m), APP_MSG_HEALTH_TICK);
    if (!m) {
        return -ENOMEM;
    }
    return actor_send_after(ctx, TICK_MS, m) ? 0 : -ENOMEM;
}

static void tell(struct actor_ctx *ctx, uint32_t what, bool ok)
{
    uint64_t notify = actor_whereis("notify");
    struct actor_msg *m = notify ? notify_ready_msg_new(what, ok) : NULL;
    if (m) {
        actor_send_or_free(ctx, notify, m);
    }
}

static int on_tick(struct actor_ctx *ctx, struct health *h)
{
    int db = store_db_is_up();
    int model = model_is_loaded();
    bool refresh = ++h->ticks % REFRESH_TICKS == 0;
    if (db != h->db || refresh) {
        tell(ctx, NOTIFY_READY_DATABASE, db);
    }
    if (model != h->model || refresh) {
        tell(ctx, NOTIFY_READY_MODEL, model);
    }
    h->db = db;
    h->model = model;
    return arm(ctx);
}

static int health_init(struct actor_ctx *ctx, void *arg, void **state)
{
    (void)arg;
    struct health *h = calloc(1, sizeof(*h));
    if (!h) {
        return -ENOMEM;
    }
    h->db = -1;
    h->model = -1;
    *state = h;
    return arm(ctx);
}

static int health_handle(struct actor_ctx *ctx, void *state,
                         struct actor_msg *msg)
{
    switch (msg->type) {
    case APP_MSG_HEALTH_TICK:
        return on_tick(ctx, state);
    default:
        return -EINVAL;
    }
}

static void health_stop(struct actor_ctx *ctx, void *state,
                        const struct actor_exit *why)
{
    (void)ctx;
    (void)why;
    free(state);
}

const struct actor_ops app_health_ops = {
    .name = "app.health",
    .init = health_init,
    .handle = health_handle,
    .stop = health_stop,
};
