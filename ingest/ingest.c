/* ingest/ingest.c - the stage's settings, metrics, supervision subtree and
 * drain. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "ingest/ingest_impl.h"

struct ingest__metrics ingest__m;
_Atomic uint32_t ingest__conns_alive;
_Atomic uint32_t ingest__sources_alive;
_Atomic uint32_t ingest__sources_pending;
_Atomic bool ingest__draining;

static double conns_gauge(void *arg)
{
    (void)arg;
    return (double)atomic_load_explicit(&ingest__conns_alive,
                                        memory_order_relaxed);
}

static void metrics_register(void)
{
    struct ingest__metrics *m = &ingest__m;
    m->bytes = actor_metric_counter("scorewire_ingest_bytes_total",
                                    "Bytes read from feed connections.", NULL);
    m->documents = actor_metric_counter(
        "scorewire_ingest_documents_total",
        "Documents framed on feed connections (any outcome).", NULL);
    m->events = actor_metric_counter(
        "scorewire_ingest_events_total",
        "Events accepted (not duplicates), sent to the store and the model.",
        NULL);
    m->junk = actor_metric_counter("scorewire_ingest_junk_bytes_total",
                                   "Bytes between documents that were not "
                                   "whitespace (discarded).",
                                   NULL);
    m->duplicates = actor_metric_counter(
        "scorewire_ingest_duplicates_total",
        "Events and seq-using rejections at or below the source's last seq "
        "(dropped).",
        NULL);
    m->refused = actor_metric_counter(
        "scorewire_ingest_refused_total",
        "Feed connections closed at once: the connection limit was reached.",
        NULL);
    for (int r = INGEST__REASON_NONE + 1; r < INGEST__REASON_COUNT; r++) {
        char label[64];
        if (actor_metric_label(label, sizeof(label), "reason",
                               ingest__reason_name(r)) == 0) {
            m->rejected[r] = actor_metric_counter(
                "scorewire_ingest_rejected_total",
                "Documents rejected, by SFP/1 reason.", label);
        }
    }
    static const char help[] =
        "Things ignored for forward compatibility: unknown root elements "
        "(documents), and unknown elements and attributes inside events.";
    m->unknown_root = actor_metric_counter("scorewire_ingest_unknown_total",
                                           help, "what=\"root\"");
    m->unknown_element = actor_metric_counter("scorewire_ingest_unknown_total",
                                              help, "what=\"element\"");
    m->unknown_attribute = actor_metric_counter(
        "scorewire_ingest_unknown_total", help, "what=\"attribute\"");
    actor_metric_gauge_fn("scorewire_ingest_connections",
                          "Feed connections open now.", NULL, conns_gauge,
                          NULL);
}

static pthread_once_t metrics_once = PTHREAD_ONCE_INIT;

static void build_specs(struct ingest__env *env)
{
    env->sources_sup = (struct actor_sup_spec){
        .name = "ingest.sources",
        .strategy = ACTOR_DYNAMIC,
        .intensity = 3,
        .period_ms = 60000,
    };
    env->conns_sup = (struct actor_sup_spec){
        .name = "ingest.conns",
        .strategy = ACTOR_DYNAMIC,
        .intensity = 3,
        .period_ms = 60000,
    };
    env->children[0] = (struct actor_child_spec){
        .id = "ingest.sources",
        .sup = &env->sources_sup,
        .restart = ACTOR_PERMANENT,
        .shutdown_ms = ACTOR_INFINITY,
    };
    env->children[1] = (struct actor_child_spec){
        .id = "ingest.conns",
        .sup = &env->conns_sup,
        .restart = ACTOR_PERMANENT,
        .shutdown_ms = ACTOR_INFINITY,
    };
    env->children[2] = (struct actor_child_spec){
        .id = "ingest.listener",
        .start = {.ops = &ingest__listener_ops,
                  .arg = env,
                  .name = "ingest.listener"},
        .restart = ACTOR_PERMANENT,
        .shutdown_ms = 1000,
    };
    /* rest_for_one: sources outlive conns, which outlive the listener; a
     * restart of the sources restarts every conn (the feeds log in again
     * and resend from their acked seq). */
    env->sup = (struct actor_sup_spec){
        .name = "ingest",
        .strategy = ACTOR_REST_FOR_ONE,
        .intensity = 3,
        .period_ms = 60000,
        .children = env->children,
        .n_children = 3,
    };
}

int ingest__env_init(struct ingest__env *env, const struct ingest_config *cfg)
{
    memset(env, 0, sizeof(*env));
    atomic_store(&ingest__draining, false); /* a new stage (tests) */
    if (!cfg->route || !cfg->feed || cfg->port > 65535 ||
        cfg->doc_limit > INGEST_DOC_MAX_LIMIT) {
        return -EINVAL;
    }
    struct ingest_config *c = &env->cfg;
    *c = *cfg;
    if (!c->bind) {
        c->bind = "0.0.0.0";
    }
    if (!c->max_conns) {
        c->max_conns = INGEST_MAX_CONNS_DEFAULT;
    }
    if (!c->max_sources) {
        c->max_sources = INGEST_MAX_SOURCES_DEFAULT;
    }
    if (!c->silence_ms) {
        c->silence_ms = INGEST_SILENCE_MS_DEFAULT;
    }
    if (!c->heartbeat_ms) {
        c->heartbeat_ms = INGEST_HEARTBEAT_MS_DEFAULT;
    }
    if (!c->doc_limit) {
        c->doc_limit = INGEST_DOC_MAX_DEFAULT;
    }
    if (!c->window) {
        c->window = INGEST_WINDOW_DEFAULT;
    }
    if (!c->window_bytes) {
        c->window_bytes = INGEST_WINDOW_BYTES_DEFAULT;
    }
    if (c->tokens_path) {
        int rc = ingest__tokens_load(c->tokens_path, &env->tokens);
        if (rc != 0) {
            memset(env, 0, sizeof(*env));
            return rc;
        }
    }
    pthread_once(&metrics_once, metrics_register);
    build_specs(env);
    return 0;
}

void ingest__env_release(struct ingest__env *env)
{
    ingest__tokens_free(env->tokens);
    memset(env, 0, sizeof(*env));
}

int ingest_child_spec(const struct ingest_config *cfg,
                      struct actor_child_spec *out)
{
    static struct ingest__env env; /* lives as long as the process */
    int rc = ingest__env_init(&env, cfg);
    if (rc != 0) {
        return rc;
    }
    if (env.tokens) {
        actor_log(NULL, ACTOR_LOG_INFO, "feed tokens loaded", "sources",
                  ACTOR_LOG_INT(ingest__tokens_count(env.tokens)), NULL);
    }
    *out = (struct actor_child_spec){
        .id = "ingest",
        .sup = &env.sup,
        .restart = ACTOR_PERMANENT,
        .shutdown_ms = ACTOR_INFINITY,
    };
    return 0;
}

/* ---- the drain ----------------------------------------------------------- */

/*
 * The flag is what counts: the listener and every conn look at it after
 * each message, and a conn also when it starts, so none that starts while
 * we walk the actors misses it. The messages only wake those that would
 * otherwise sleep (an idle listener, a quiet connection); one that cannot
 * be sent (out of memory, a full mailbox) is made up for by the actor's
 * next message, at the latest its heartbeat timer.
 */
static void wake(uint64_t pid)
{
    struct actor_msg *m = actor_msg_new(sizeof(*m), INGEST_MSG_DRAIN);
    if (m) {
        actor_send_or_free(NULL, pid, m);
    }
}

static void wake_conn(const struct actor_info *info, void *arg)
{
    const uint64_t *conns = arg;
    if (info->parent == *conns &&
        strcmp(info->kind, ingest__conn_ops.name) == 0) {
        wake(info->pid);
    }
}

void ingest_drain(void)
{
    if (atomic_exchange(&ingest__draining, true)) {
        return;
    }
    uint64_t listener = actor_whereis("ingest.listener");
    if (listener) {
        wake(listener);
    }
    uint64_t conns = actor_whereis("ingest.conns");
    if (conns) {
        actor_foreach(wake_conn, &conns);
    }
}

bool ingest_drain_is_done(struct ingest_drain_status *out)
{
    struct ingest_drain_status st = {
        .conns = atomic_load(&ingest__conns_alive),
        .sources = atomic_load(&ingest__sources_pending),
    };
    if (out) {
        *out = st;
    }
    return st.conns == 0 && st.sources == 0;
}
