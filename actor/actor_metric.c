/* actor/actor_metric.c - the Prometheus series every stage counts into. */

/*
 * DESIGN
 * Series are created once (usually at start-up, sometimes when a new source
 * appears) under one mutex and never freed, so a stage keeps the pointer and
 * counts with a relaxed atomic add: no lock on the hot path. Rendering takes
 * the mutex only to walk the lists, which are append-only.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actor/actor_impl.h"

struct actor_metric {
    struct family *fam;
    char *labels;           /* "" when none */
    _Atomic uint64_t count; /* counters; histogram observations */
    _Atomic int64_t gauge;
    _Atomic uint64_t sum_bits; /* histogram sum, a double's bits */
    _Atomic uint64_t *buckets; /* histogram, one per bound (not cumulative) */
    double (*fn)(void *arg);
    void *arg;
    struct actor_metric *next;
};

struct family {
    char *name;
    char *help;
    enum actor_metric_type type;
    double *bounds;
    char (*le)[40]; /* histograms: each bound's label, le="...", made once */
    size_t n_bounds;
    struct actor_metric *series, **tail;
    struct family *next;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct family *families, **fam_tail = &families;

static struct family *family_get(const char *name, const char *help,
                                 enum actor_metric_type type)
{
    for (struct family *f = families; f; f = f->next) {
        if (strcmp(f->name, name) == 0) {
            return f->type == type ? f : NULL;
        }
    }
    struct family *f = calloc(1, sizeof(*f));
    if (!f) {
        return NULL;
    }
    f->name = strdup(name);
    f->help = strdup(help ? help : "");
    if (!f->name || !f->help) {
        free(f->name);
        free(f->help);
        free(f);
        return NULL;
    }
    f->type = type;
    f->tail = &f->series;
    *fam_tail = f;
    fam_tail = &f->next;
    return f;
}

static struct actor_metric *series_get(struct family *f, const char *labels,
                                       bool *created)
{
    labels = labels ? labels : "";
    *created = false;
    for (struct actor_metric *m = f->series; m; m = m->next) {
        if (strcmp(m->labels, labels) == 0) {
            return m;
        }
    }
    struct actor_metric *m = calloc(1, sizeof(*m));
    if (!m) {
        return NULL;
    }
    m->labels = strdup(labels);
    if (!m->labels) {
        free(m);
        return NULL;
    }
    m->fam = f;
    *created = true;
    return m;
}

static void series_link(struct family *f, struct actor_metric *m)
{
    *f->tail = m;
    f->tail = &m->next;
}

static struct actor_metric *simple(const char *name, const char *help,
                                   const char *labels,
                                   enum actor_metric_type type)
{
    pthread_mutex_lock(&lock);
    struct actor_metric *m = NULL;
    struct family *f = family_get(name, help, type);
    bool created;
    if (f) {
        m = series_get(f, labels, &created);
        if (m && created) {
            series_link(f, m);
        }
    }
    pthread_mutex_unlock(&lock);
    return m;
}

struct actor_metric *actor_metric_counter(const char *name, const char *help,
                                          const char *labels)
{
    return simple(name, help, labels, ACTOR_METRIC_COUNTER);
}

struct actor_metric *actor_metric_gauge(const char *name, const char *help,
                                        const char *labels)
{
    return simple(name, help, labels, ACTOR_METRIC_GAUGE);
}

/* Writes @v in the fewest digits that read back as the same double:
 * le="0.1", not 0.10000000000000001; and never fewer than its integer part
 * has, so that 10 stays "10" and does not become "1e+01". */
static void shortest_double(char *buf, size_t size, double v)
{
    int digits = 1;
    for (double a = v < 0 ? -v : v; a >= 10 && digits < 17; a /= 10) {
        digits++;
    }
    for (; digits < 17; digits++) {
        snprintf(buf, size, "%.*g", digits, v);
        if (strtod(buf, NULL) == v) {
            return;
        }
    }
    snprintf(buf, size, "%.17g", v);
}

struct actor_metric *actor_metric_histogram(const char *name, const char *help,
                                            const char *labels,
                                            const double *bounds,
                                            size_t n_bounds)
{
    pthread_mutex_lock(&lock);
    struct actor_metric *m = NULL;
    struct family *f = family_get(name, help, ACTOR_METRIC_HISTOGRAM);
    if (!f) {
        goto out_unlock;
    }
    if (!f->bounds) {
        double *b = malloc(n_bounds * sizeof(*b));
        char(*le)[40] = malloc(n_bounds * sizeof(*le));
        if (!b || !le) {
            free(b);
            free(le);
            goto out_unlock;
        }
        memcpy(b, bounds, n_bounds * sizeof(*bounds));
        for (size_t i = 0; i < n_bounds; i++) {
            char v[32];
            shortest_double(v, sizeof(v), b[i]);
            snprintf(le[i], sizeof(le[i]), "le=\"%s\"", v);
        }
        f->bounds = b;
        f->le = le;
        f->n_bounds = n_bounds;
    }
    bool created;
    m = series_get(f, labels, &created);
    if (m && created) {
        m->buckets = calloc(f->n_bounds + 1, sizeof(*m->buckets));
        if (!m->buckets) {
            free(m->labels);
            free(m);
            m = NULL;
            goto out_unlock;
        }
        series_link(f, m);
    }
out_unlock:
    pthread_mutex_unlock(&lock);
    return m;
}

int actor_metric_gauge_fn(const char *name, const char *help,
                          const char *labels, double (*fn)(void *arg),
                          void *arg)
{
    pthread_mutex_lock(&lock);
    int rc = -ENOMEM;
    struct family *f = family_get(name, help, ACTOR_METRIC_GAUGE);
    if (f) {
        bool created;
        struct actor_metric *m = series_get(f, labels, &created);
        if (m) {
            m->fn = fn;
            m->arg = arg;
            if (created) {
                series_link(f, m);
            }
            rc = 0;
        }
    }
    pthread_mutex_unlock(&lock);
    return rc;
}

void actor_metric_add(struct actor_metric *m, uint64_t n)
{
    if (m) {
        atomic_fetch_add_explicit(&m->count, n, memory_order_relaxed);
    }
}

void actor_metric_set(struct actor_metric *m, int64_t v)
{
    if (m) {
        atomic_store_explicit(&m->gauge, v, memory_order_relaxed);
    }
}

void actor_metric_observe(struct actor_metric *m, double v)
{
    if (!m || !m->buckets) {
        return;
    }
    const struct family *f = m->fam;
    size_t i = 0;
    while (i < f->n_bounds && v > f->bounds[i]) {
        i++;
    }
    atomic_fetch_add_explicit(&m->buckets[i], 1, memory_order_relaxed);
    uint64_t old = atomic_load_explicit(&m->sum_bits, memory_order_relaxed);
    for (;;) {
        double sum;
        memcpy(&sum, &old, sizeof(sum));
        sum += v;
        uint64_t nb;
        memcpy(&nb, &sum, sizeof(nb));
        if (atomic_compare_exchange_weak_explicit(&m->sum_bits, &old, nb,
                                                  memory_order_relaxed,
                                                  memory_order_relaxed)) {
            break;
        }
    }
    atomic_fetch_add_explicit(&m->count, 1, memory_order_relaxed);
}

uint64_t actor_metric_value(const struct actor_metric *m)
{
    if (!m) {
        return 0;
    }
    if (m->fam->type == ACTOR_METRIC_GAUGE) {
        return (uint64_t)atomic_load(&((struct actor_metric *)m)->gauge);
    }
    return atomic_load(&((struct actor_metric *)m)->count);
}

int actor_metric_label(char *out, size_t size, const char *key,
                       const char *value)
{
    struct actor_buf b;
    actor_buf_init(&b);
    actor_buf_str(&b, key);
    actor_buf_str(&b, "=\"");
    for (const char *p = value; *p; p++) {
        if (*p == '\\' || *p == '"') {
            actor_buf_char(&b, '\\');
            actor_buf_char(&b, *p);
        } else if (*p == '\n') {
            actor_buf_str(&b, "\\n");
        } else {
            actor_buf_char(&b, *p);
        }
    }
    actor_buf_char(&b, '"');
    int rc = b.err;
    if (rc == 0 && b.len >= size) {
        rc = -ENOSPC;
    }
    if (rc == 0) {
        memcpy(out, b.data, b.len + 1);
    }
    actor_buf_release(&b);
    return rc;
}

static void help_text(struct actor_buf *out, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\') {
            actor_buf_str(out, "\\\\");
        } else if (*s == '\n') {
            actor_buf_str(out, "\\n");
        } else {
            actor_buf_char(out, *s);
        }
    }
}

static void series_name(struct actor_buf *out, const char *name,
                        const char *suffix, const char *labels,
                        const char *extra)
{
    actor_buf_str(out, name);
    actor_buf_str(out, suffix);
    if (*labels || extra) {
        actor_buf_char(out, '{');
        actor_buf_str(out, labels);
        if (extra) {
            if (*labels) {
                actor_buf_char(out, ',');
            }
            actor_buf_str(out, extra);
        }
        actor_buf_char(out, '}');
    }
    actor_buf_char(out, ' ');
}

static void render_histogram(struct actor_buf *out, const struct family *f,
                             struct actor_metric *m)
{
    uint64_t cum = 0;
    for (size_t i = 0; i <= f->n_bounds; i++) {
        cum += atomic_load(&m->buckets[i]);
        series_name(out, f->name, "_bucket", m->labels,
                    i < f->n_bounds ? f->le[i] : "le=\"+Inf\"");
        actor_buf_printf(out, "%llu\n", (unsigned long long)cum);
    }
    uint64_t bits = atomic_load(&m->sum_bits);
    double sum;
    memcpy(&sum, &bits, sizeof(sum));
    series_name(out, f->name, "_sum", m->labels, NULL);
    actor_buf_printf(out, "%.17g\n", sum);
    series_name(out, f->name, "_count", m->labels, NULL);
    /* count equals the +Inf bucket in a consistent scrape */
    actor_buf_printf(out, "%llu\n", (unsigned long long)cum);
}

int actor_metric_render(struct actor_buf *out)
{
    static const char *const type_names[] = {"counter", "gauge", "histogram"};
    pthread_mutex_lock(&lock);
    for (struct family *f = families; f; f = f->next) {
        if (!f->series) {
            continue;
        }
        actor_buf_printf(out, "# HELP %s ", f->name);
        help_text(out, f->help);
        actor_buf_printf(out, "\n# TYPE %s %s\n", f->name, type_names[f->type]);
        for (struct actor_metric *m = f->series; m; m = m->next) {
            switch (f->type) {
            case ACTOR_METRIC_COUNTER:
                series_name(out, f->name, "", m->labels, NULL);
                actor_buf_printf(out, "%llu\n",
                                 (unsigned long long)atomic_load(&m->count));
                break;
            case ACTOR_METRIC_GAUGE:
                series_name(out, f->name, "", m->labels, NULL);
                if (m->fn) {
                    actor_buf_printf(out, "%.17g\n", m->fn(m->arg));
                } else {
                    actor_buf_printf(out, "%lld\n",
                                     (long long)atomic_load(&m->gauge));
                }
                break;
            case ACTOR_METRIC_HISTOGRAM:
                render_histogram(out, f, m);
                break;
            }
        }
    }
    pthread_mutex_unlock(&lock);
    return out->err;
}
