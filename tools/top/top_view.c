/* tools/top/top_view.c - what one screen of scorewire-top shows, computed
 * from two polls of the admin port: counters, rates from counter deltas,
 * latency percentiles from histogram deltas, actors busiest first. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/top/top.h"

/* The series the stages keep (README's operator section lists them). */
#define M_IN           "scorewire_ingest_events_total"
#define M_STORED       "scorewire_store_events_total"
#define M_WS           "scorewire_notify_messages_sent_total"
#define M_REJECTED     "scorewire_ingest_rejected_total"
#define M_RESTARTS     "scorewire_supervisor_restarts_total"
#define M_BACKLOG      "scorewire_store_backlog_rows"
#define M_CLIENTS      "scorewire_notify_clients"
#define M_LATENCY      "scorewire_notify_latency_seconds"
#define M_SOURCE_STATE "scorewire_ingest_source_state"

void top_poll_free(struct top_poll *p)
{
    top_prom_free(&p->metrics);
    top_json_doc_free(&p->actors);
    p->have_metrics = false;
    p->have_actors = false;
}

static double gauge(const struct top_poll *p, const char *name)
{
    double v;
    return p->have_metrics && top_prom_sum(&p->metrics, name, NULL, NULL, &v)
               ? v
               : NAN;
}

static double counter_rate(const struct top_poll *prev,
                           const struct top_poll *cur, const char *name)
{
    if (!prev || !prev->have_metrics || !cur->have_metrics) {
        return NAN;
    }
    double a, b;
    if (!top_prom_sum(&prev->metrics, name, NULL, NULL, &a) ||
        !top_prom_sum(&cur->metrics, name, NULL, NULL, &b)) {
        return NAN;
    }
    return top_rate(a, b, (double)(cur->at_ms - prev->at_ms) / 1000.0);
}

static void latency(struct top_view *v, const struct top_poll *prev,
                    const struct top_poll *cur)
{
    v->p50_s = v->p99_s = NAN;
    struct top_hist a, b;
    if (!prev || !prev->have_metrics || !cur->have_metrics ||
        !top_prom_hist(&prev->metrics, M_LATENCY, &a) ||
        !top_prom_hist(&cur->metrics, M_LATENCY, &b)) {
        return;
    }
    v->p50_s = top_hist_quantile(&a, &b, 0.5);
    v->p99_s = top_hist_quantile(&a, &b, 0.99);
}

static void sources(struct top_view *v, const struct top_poll *cur)
{
    v->src_live = v->src_stale = v->src_offline = NAN;
    double any;
    if (!cur->have_metrics ||
        !top_prom_sum(&cur->metrics, M_SOURCE_STATE, NULL, NULL, &any)) {
        return;
    }
    v->src_live = v->src_stale = v->src_offline = 0;
    for (size_t i = 0; i < cur->metrics.n; i++) {
        const struct top_prom_sample *s = &cur->metrics.v[i];
        const char *state = top_prom_label(s, "state");
        if (strcmp(s->name, M_SOURCE_STATE) != 0 || !state ||
            !(s->value > 0.5)) {
            continue;
        }
        if (strcmp(state, "live") == 0) {
            v->src_live++;
        } else if (strcmp(state, "stale") == 0) {
            v->src_stale++;
        } else if (strcmp(state, "offline") == 0) {
            v->src_offline++;
        }
    }
}

/* ---- per kind ---------------------------------------------------------- */

static const struct {
    const char *name;
    size_t field;
} kind_series[] = {
    {"scorewire_actors", offsetof(struct top_kind, actors)},
    {"scorewire_actor_mailbox_messages", offsetof(struct top_kind, queued)},
    {"scorewire_actor_mailbox_max_messages",
     offsetof(struct top_kind, max_queued)},
    {"scorewire_actor_restarts", offsetof(struct top_kind, restarts)},
};

static int more_queued(const void *a, const void *b)
{
    const struct top_kind *x = a, *y = b;
    if (x->queued != y->queued) {
        return x->queued > y->queued ? -1 : 1;
    }
    if (x->actors != y->actors) {
        return x->actors > y->actors ? -1 : 1;
    }
    return strcmp(x->kind, y->kind);
}

static int kinds(struct top_view *v, const struct top_poll *cur)
{
    if (!cur->have_metrics) {
        return 0;
    }
    const struct top_prom *m = &cur->metrics;
    for (size_t i = 0; i < m->n; i++) {
        const char *kind = top_prom_label(&m->v[i], "kind");
        size_t f = 0, nf = sizeof(kind_series) / sizeof(kind_series[0]);
        while (f < nf && strcmp(m->v[i].name, kind_series[f].name) != 0) {
            f++;
        }
        if (f == nf || !kind) {
            continue;
        }
        struct top_kind *k = NULL;
        for (size_t j = 0; j < v->n_kinds && !k; j++) {
            if (strcmp(v->kinds[j].kind, kind) == 0) {
                k = &v->kinds[j];
            }
        }
        if (!k) {
            struct top_kind *grown =
                realloc(v->kinds, (v->n_kinds + 1) * sizeof(*grown));
            if (!grown) {
                return -ENOMEM;
            }
            v->kinds = grown;
            k = &v->kinds[v->n_kinds++];
            memset(k, 0, sizeof(*k));
            snprintf(k->kind, sizeof(k->kind), "%s", kind);
        }
        *(double *)(void *)((char *)k + kind_series[f].field) += m->v[i].value;
    }
    if (v->n_kinds > 1) {
        qsort(v->kinds, v->n_kinds, sizeof(*v->kinds), more_queued);
    }
    return 0;
}

/* ---- actors ------------------------------------------------------------- */

/* Calls @fn on every node of the /actors tree, listed children and the
 * busiest of summarized supervisors alike. */
static void walk(const struct top_json *nodes,
                 void (*fn)(const struct top_json *node, void *arg), void *arg)
{
    if (!nodes || nodes->type != TOP_JSON_ARRAY) {
        return;
    }
    for (const struct top_json *n = nodes->first; n; n = n->next) {
        if (n->type != TOP_JSON_OBJECT || !top_json_str(n, "pid", NULL)) {
            continue;
        }
        fn(n, arg);
        walk(top_json_get(n, "children"), fn, arg);
        walk(top_json_get(n, "busiest"), fn, arg);
    }
}

static void count_node(const struct top_json *node, void *arg)
{
    (void)node;
    (*(size_t *)arg)++;
}

static void add_node(const struct top_json *node, void *arg)
{
    struct top_view *v = arg;
    struct top_actor *a = &v->actors[v->n_actors++];
    a->pid = top_json_str(node, "pid", "");
    a->kind = top_json_str(node, "kind", "?");
    a->name = top_json_str(node, "name", "");
    a->state = top_json_str(node, "state", "");
    a->mailbox = top_json_num(node, "mailbox", 0);
    a->capacity = top_json_num(node, "capacity", 0);
    a->handled = top_json_num(node, "handled", 0);
    a->restarts = top_json_num(node, "restarts", 0);
    a->supervisor = top_json_bool(node, "supervisor", false);
    a->rate = NAN;
}

static int by_pid(const void *a, const void *b)
{
    return strcmp(((const struct top_actor *)a)->pid,
                  ((const struct top_actor *)b)->pid);
}

static int busier(const void *a, const void *b)
{
    const struct top_actor *x = a, *y = b;
    if (x->mailbox != y->mailbox) {
        return x->mailbox > y->mailbox ? -1 : 1;
    }
    double rx = isnan(x->rate) ? -1 : x->rate,
           ry = isnan(y->rate) ? -1 : y->rate;
    if (rx != ry) {
        return rx > ry ? -1 : 1;
    }
    if (x->handled != y->handled) {
        return x->handled > y->handled ? -1 : 1;
    }
    return strcmp(x->pid, y->pid);
}

/* The actors of @p's /actors, in tree order, into @v. */
static int flatten(struct top_view *v, const struct top_poll *p)
{
    const struct top_json *tree = top_json_get(p->actors.root, "tree");
    size_t n = 0;
    walk(tree, count_node, &n);
    if (n == 0) {
        return 0;
    }
    v->actors = calloc(n, sizeof(*v->actors));
    if (!v->actors) {
        return -ENOMEM;
    }
    walk(tree, add_node, v);
    return 0;
}

static int actor_rates(struct top_view *v, const struct top_poll *prev,
                       const struct top_poll *cur)
{
    if (!prev || !prev->have_actors || v->n_actors == 0) {
        return 0;
    }
    double dt = (double)(cur->actors_at_ms - prev->actors_at_ms) / 1000.0;
    struct top_view old = {0};
    int rc = flatten(&old, prev);
    if (rc != 0) {
        return rc;
    }
    qsort(old.actors, old.n_actors, sizeof(*old.actors), by_pid);
    for (size_t i = 0; i < v->n_actors; i++) {
        struct top_actor *a = &v->actors[i];
        const struct top_actor *was = old.n_actors
                                          ? bsearch(a, old.actors, old.n_actors,
                                                    sizeof(*old.actors), by_pid)
                                          : NULL;
        /* A pid is never reused while both polls could see it (the
         * generation changes), so a match is the same incarnation. */
        if (was && a->handled >= was->handled) {
            a->rate = top_rate(was->handled, a->handled, dt);
        }
    }
    top_view_free(&old);
    return 0;
}

int top_view_build(struct top_view *v, const struct top_poll *prev,
                   const struct top_poll *cur)
{
    const struct top_json *root = cur->have_actors ? cur->actors.root : NULL;
    v->alive = top_json_num(root, "alive", NAN);
    v->spawned = top_json_num(root, "spawned", NAN);
    v->exited = top_json_num(root, "exited", NAN);
    v->crashed = top_json_num(root, "crashed", NAN);
    v->restarts = top_json_num(root, "restarts", NAN);
    if (prev && prev->err) {
        prev = NULL;
    }
    v->in_rate = counter_rate(prev, cur, M_IN);
    v->stored_rate = counter_rate(prev, cur, M_STORED);
    v->ws_rate = counter_rate(prev, cur, M_WS);
    v->rejected_rate = counter_rate(prev, cur, M_REJECTED);
    v->restart_rate = counter_rate(prev, cur, M_RESTARTS);
    v->backlog = gauge(cur, M_BACKLOG);
    v->clients = gauge(cur, M_CLIENTS);
    latency(v, prev, cur);
    sources(v, cur);
    int rc = kinds(v, cur);
    if (rc == 0 && cur->have_actors) {
        rc = flatten(v, cur);
    }
    if (rc == 0) {
        rc = actor_rates(v, prev, cur);
    }
    if (rc == 0 && v->n_actors > 1) {
        qsort(v->actors, v->n_actors, sizeof(*v->actors), busier);
    }
    return rc;
}

void top_view_free(struct top_view *v)
{
    free(v->kinds);
    free(v->actors);
    memset(v, 0, sizeof(*v));
}
