/* app/app_observe.c - what the admin port shows of the runtime: the live
 * supervision tree as JSON, and the runtime's own Prometheus series. */

/*
 * DESIGN
 * Both views are built from one actor_foreach() snapshot: every actor's
 * kind, name, parent, mailbox and counters, copied out under its pin. The
 * tree is rebuilt from parent links (a child is linked to its supervisor at
 * birth). A supervisor with many children (thousands of matches) shows
 * counts by kind and the busiest few instead of every child, so /actors
 * stays small and fast whatever the load.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actor/actor.h"
#include "app/app.h"

#define LIST_ALL_MAX 32 /* children listed one by one up to this many */

struct snap {
    struct actor_info *v;
    size_t n, cap;
    int err;
};

static void collect(const struct actor_info *info, void *arg)
{
    struct snap *s = arg;
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 256;
        struct actor_info *v = realloc(s->v, cap * sizeof(*v));
        if (!v) {
            s->err = -ENOMEM;
            return;
        }
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = *info;
}

static int by_parent(const void *a, const void *b)
{
    const struct actor_info *x = a, *y = b;
    if (x->parent != y->parent) {
        return x->parent < y->parent ? -1 : 1;
    }
    return x->pid < y->pid ? -1 : x->pid > y->pid;
}

/* Children of @pid: the run [*first, *first + return) in the sorted
 * snapshot. */
static size_t children_of(const struct snap *s, uint64_t pid, size_t *first)
{
    size_t lo = 0, hi = s->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (s->v[mid].parent < pid) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    size_t end = lo;
    while (end < s->n && s->v[end].parent == pid) {
        end++;
    }
    *first = lo;
    return end - lo;
}

static bool known(const struct snap *s, uint64_t pid)
{
    for (size_t i = 0; i < s->n; i++) {
        if (s->v[i].pid == pid) {
            return true;
        }
    }
    return false;
}

static void pid_text(uint64_t pid, char out[40])
{
    snprintf(out, 40, "<0.%u.%u>", (unsigned)(pid & 0xffffffffu) - 1,
             (unsigned)(pid >> 32));
}

static void node_fields(struct actor_buf *b, const struct actor_info *i)
{
    char pid[40];
    pid_text(i->pid, pid);
    actor_buf_str(b, "{\"pid\":");
    actor_buf_json_str(b, pid, strlen(pid));
    actor_buf_str(b, ",\"kind\":");
    actor_buf_json_str(b, i->kind, strlen(i->kind));
    if (i->name[0]) {
        actor_buf_str(b, ",\"name\":");
        actor_buf_json_str(b, i->name, strlen(i->name));
    }
    actor_buf_printf(b,
                     ",\"supervisor\":%s,\"thread\":%s,\"state\":\"%s\","
                     "\"mailbox\":%u,\"capacity\":%u,\"handled\":%llu,"
                     "\"restarts\":%u",
                     i->supervisor ? "true" : "false",
                     i->thread ? "true" : "false",
                     i->runnable ? "runnable" : "waiting", i->mailbox,
                     i->capacity, (unsigned long long)i->handled, i->restarts);
}

static int busier(const void *a, const void *b)
{
    const struct actor_info *x = *(const struct actor_info *const *)a;
    const struct actor_info *y = *(const struct actor_info *const *)b;
    if (x->mailbox != y->mailbox) {
        return x->mailbox > y->mailbox ? -1 : 1;
    }
    return x->handled > y->handled ? -1 : x->handled < y->handled;
}

static void render(struct actor_buf *b, const struct snap *s,
                   const struct actor_info *node, size_t busiest, int depth);

static void render_summary(struct actor_buf *b, const struct snap *s,
                           size_t first, size_t n, size_t busiest, int depth)
{
    /* counts by kind */
    actor_buf_printf(b, ",\"children_count\":%zu,\"by_kind\":{", n);
    const char *seen[16];
    size_t n_seen = 0;
    for (size_t i = first; i < first + n && n_seen < 16; i++) {
        const char *k = s->v[i].kind;
        bool dup = false;
        for (size_t j = 0; j < n_seen; j++) {
            dup |= strcmp(seen[j], k) == 0;
        }
        if (dup) {
            continue;
        }
        seen[n_seen++] = k;
        size_t count = 0;
        for (size_t j = first; j < first + n; j++) {
            count += strcmp(s->v[j].kind, k) == 0;
        }
        actor_buf_str(b, n_seen > 1 ? "," : "");
        actor_buf_json_str(b, k, strlen(k));
        actor_buf_printf(b, ":%zu", count);
    }
    actor_buf_str(b, "},\"busiest\":[");
    const struct actor_info **top = malloc(n * sizeof(*top));
    if (!top) {
        b->err = -ENOMEM;
        return;
    }
    for (size_t i = 0; i < n; i++) {
        top[i] = &s->v[first + i];
    }
    qsort(top, n, sizeof(*top), busier);
    for (size_t i = 0; i < n && i < busiest; i++) {
        actor_buf_str(b, i ? "," : "");
        render(b, s, top[i], busiest, depth + 1);
    }
    free(top);
    actor_buf_char(b, ']');
}

static void render(struct actor_buf *b, const struct snap *s,
                   const struct actor_info *node, size_t busiest, int depth)
{
    node_fields(b, node);
    size_t first;
    size_t n = children_of(s, node->pid, &first);
    if (n > 0 && depth < 16) {
        if (n > LIST_ALL_MAX) {
            render_summary(b, s, first, n, busiest, depth);
        } else {
            actor_buf_str(b, ",\"children\":[");
            for (size_t i = 0; i < n; i++) {
                actor_buf_str(b, i ? "," : "");
                render(b, s, &s->v[first + i], busiest, depth + 1);
            }
            actor_buf_char(b, ']');
        }
    }
    actor_buf_char(b, '}');
}

int app_actors_json(struct actor_buf *out, size_t busiest)
{
    struct snap s = {0};
    actor_foreach(collect, &s);
    if (s.err) {
        free(s.v);
        return s.err;
    }
    qsort(s.v, s.n, sizeof(*s.v), by_parent);
    struct actor_stats st;
    actor_stats_get(&st);
    actor_buf_printf(
        out,
        "{\"alive\":%u,\"spawned\":%llu,\"exited\":%llu,"
        "\"crashed\":%llu,\"restarts\":%llu,\"tree\":[",
        st.alive, (unsigned long long)st.spawned, (unsigned long long)st.exited,
        (unsigned long long)st.crashed, (unsigned long long)st.restarts);
    /* Roots: no parent, or a parent that is gone (orphans show too). */
    bool any = false;
    for (size_t i = 0; i < s.n; i++) {
        if (s.v[i].parent == 0 || !known(&s, s.v[i].parent)) {
            actor_buf_str(out, any ? "," : "");
            render(out, &s, &s.v[i], busiest, 0);
            any = true;
        }
    }
    actor_buf_str(out, "]}");
    free(s.v);
    return out->err;
}

/* ---- the runtime's series --------------------------------------------- */

struct kind_sum {
    const char *kind;
    uint64_t count, queued, max_queued, handled, restarts;
};

struct kinds {
    struct kind_sum v[64];
    size_t n;
};

static void sum_kind(const struct actor_info *info, void *arg)
{
    struct kinds *ks = arg;
    struct kind_sum *k = NULL;
    for (size_t i = 0; i < ks->n; i++) {
        if (strcmp(ks->v[i].kind, info->kind) == 0) {
            k = &ks->v[i];
        }
    }
    if (!k) {
        if (ks->n == 64) {
            return;
        }
        k = &ks->v[ks->n++];
        memset(k, 0, sizeof(*k));
        k->kind = info->kind;
    }
    k->count++;
    k->queued += info->mailbox;
    if (info->mailbox > k->max_queued) {
        k->max_queued = info->mailbox;
    }
    k->handled += info->handled;
    k->restarts += info->restarts;
}

static void family(struct actor_buf *b, const char *name, const char *type,
                   const char *help)
{
    actor_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

int app_runtime_metrics(struct actor_buf *out)
{
    struct kinds ks = {.n = 0};
    actor_foreach(sum_kind, &ks);
    static const struct {
        const char *name, *type, *help;
        size_t field;
    } per_kind[] = {
        {"scorewire_actors", "gauge", "Live actors, by kind.",
         offsetof(struct kind_sum, count)},
        {"scorewire_actor_mailbox_messages", "gauge",
         "Messages queued in the mailboxes of live actors, by kind.",
         offsetof(struct kind_sum, queued)},
        {"scorewire_actor_mailbox_max_messages", "gauge",
         "The longest mailbox among live actors of a kind.",
         offsetof(struct kind_sum, max_queued)},
        {"scorewire_actor_restarts", "gauge",
         "Restarts behind the live incarnations, by kind.",
         offsetof(struct kind_sum, restarts)},
    };
    for (size_t f = 0; f < sizeof(per_kind) / sizeof(per_kind[0]); f++) {
        family(out, per_kind[f].name, per_kind[f].type, per_kind[f].help);
        for (size_t i = 0; i < ks.n; i++) {
            char label[128];
            if (actor_metric_label(label, sizeof(label), "kind",
                                   ks.v[i].kind) != 0) {
                continue;
            }
            uint64_t v =
                *(const uint64_t *)((const char *)&ks.v[i] + per_kind[f].field);
            actor_buf_printf(out, "%s{%s} %llu\n", per_kind[f].name, label,
                             (unsigned long long)v);
        }
    }
    static const struct {
        const char *name, *help;
        size_t field; /* a uint64_t of struct actor_stats */
    } totals[] = {
        {"scorewire_actors_spawned_total",
         "Actors started since the process began.",
         offsetof(struct actor_stats, spawned)},
        {"scorewire_actors_exited_total", "Actors ended, normally or not.",
         offsetof(struct actor_stats, exited)},
        {"scorewire_actors_crashed_total",
         "Actors ended abnormally (an error, a kill, a linked crash).",
         offsetof(struct actor_stats, crashed)},
        {"scorewire_supervisor_restarts_total",
         "Children restarted by their supervisors.",
         offsetof(struct actor_stats, restarts)},
        {"scorewire_mailbox_full_total",
         "Sends refused because the receiver's mailbox was full.",
         offsetof(struct actor_stats, full)},
        {"scorewire_sends_to_dead_total",
         "Sends to an actor that had already ended.",
         offsetof(struct actor_stats, dead)},
    };
    struct actor_stats st;
    actor_stats_get(&st);
    for (size_t f = 0; f < sizeof(totals) / sizeof(totals[0]); f++) {
        uint64_t v = *(const uint64_t *)((const char *)&st + totals[f].field);
        family(out, totals[f].name, "counter", totals[f].help);
        actor_buf_printf(out, "%s %llu\n", totals[f].name,
                         (unsigned long long)v);
    }
    return out->err;
}
