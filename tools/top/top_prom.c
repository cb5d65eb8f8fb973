/* tools/top/top_prom.c - the Prometheus text format (0.0.4) as the admin
 * port's /metrics serves it: samples with labels, histograms, rates. */

/*
 * DESIGN
 * One pass over the lines; a sample's name, labels and unescaped values
 * are copied into the arena so the text can go as soon as it is parsed.
 * The sample array is sized once from the number of lines (a sample is
 * one line), so nothing is reallocated. Lookups are linear scans: a scrape
 * is a few hundred samples and is read a few dozen times a second at most.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tools/top/top.h"

#define LABELS_MAX 64 /* labels on one sample; more is refused */

struct line {
    const char *p, *end;
    struct top_arena *arena;
};

static void blanks(struct line *l)
{
    while (l->p < l->end && (*l->p == ' ' || *l->p == '\t')) {
        l->p++;
    }
}

static bool name_char(char c, bool first, bool colon)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
           (colon && c == ':') || (!first && c >= '0' && c <= '9');
}

/* A metric name (colons allowed) or a label name, copied to the arena. */
static int name(struct line *l, bool colon, const char **out)
{
    const char *s = l->p;
    while (l->p < l->end && name_char(*l->p, l->p == s, colon)) {
        l->p++;
    }
    size_t n = (size_t)(l->p - s);
    if (n == 0) {
        return -EINVAL;
    }
    char *copy = top_arena_alloc(l->arena, n + 1);
    if (!copy) {
        return -ENOMEM;
    }
    memcpy(copy, s, n);
    copy[n] = '\0';
    *out = copy;
    return 0;
}

/* A quoted label value at l->p, unescaped (\\ \" \n) into the arena. */
static int label_value(struct line *l, const char **out)
{
    if (l->p >= l->end || *l->p != '"') {
        return -EINVAL;
    }
    l->p++;
    const char *q = l->p; /* the closing quote bounds the unescaped size */
    while (q < l->end && *q != '"') {
        q += *q == '\\' && l->end - q > 1 ? 2 : 1;
    }
    if (q >= l->end) {
        return -EINVAL;
    }
    char *dst = top_arena_alloc(l->arena, (size_t)(q - l->p) + 1);
    if (!dst) {
        return -ENOMEM;
    }
    size_t n = 0;
    while (l->p < q) {
        char c = *l->p++;
        if (c == '\\') {
            c = *l->p++;
            if (c == 'n') {
                c = '\n';
            } else if (c != '\\' && c != '"') {
                return -EINVAL;
            }
        }
        dst[n++] = c;
    }
    l->p++; /* the closing quote */
    dst[n] = '\0';
    *out = dst;
    return 0;
}

static int labels(struct line *l, struct top_prom_sample *s)
{
    struct top_prom_label tmp[LABELS_MAX];
    size_t n = 0;
    l->p++; /* '{' */
    for (;;) {
        blanks(l);
        if (l->p < l->end && *l->p == '}') {
            break; /* empty, or after a trailing comma */
        }
        if (n == LABELS_MAX) {
            return -EINVAL;
        }
        int rc = name(l, false, &tmp[n].name);
        if (rc != 0) {
            return rc;
        }
        blanks(l);
        if (l->p >= l->end || *l->p != '=') {
            return -EINVAL;
        }
        l->p++;
        blanks(l);
        if ((rc = label_value(l, &tmp[n].value)) != 0) {
            return rc;
        }
        n++;
        blanks(l);
        if (l->p < l->end && *l->p == ',') {
            l->p++;
            continue;
        }
        if (l->p < l->end && *l->p == '}') {
            break;
        }
        return -EINVAL;
    }
    l->p++; /* '}' */
    if (n > 0) {
        s->labels = top_arena_alloc(l->arena, n * sizeof(*s->labels));
        if (!s->labels) {
            return -ENOMEM;
        }
        memcpy(s->labels, tmp, n * sizeof(*s->labels));
    }
    s->n_labels = n;
    return 0;
}

/* A blank-delimited token: [*s, *s + return). */
static size_t token(struct line *l, const char **s)
{
    blanks(l);
    *s = l->p;
    while (l->p < l->end && *l->p != ' ' && *l->p != '\t') {
        l->p++;
    }
    return (size_t)(l->p - *s);
}

/* Go's ParseFloat, which Prometheus uses, in the forms that occur: decimal
 * floats, Inf, +Inf, -Inf, NaN (any case). */
static int float_value(const char *s, size_t n, double *out)
{
    char buf[64];
    if (n == 0 || n >= sizeof(buf)) {
        return -EINVAL;
    }
    memcpy(buf, s, n);
    buf[n] = '\0';
    const char *word = buf + (buf[0] == '+' || buf[0] == '-');
    if (strcasecmp(word, "inf") == 0 || strcasecmp(word, "infinity") == 0) {
        *out = buf[0] == '-' ? -INFINITY : INFINITY;
        return 0;
    }
    if (strcasecmp(word, "nan") == 0) {
        *out = NAN;
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        if (!strchr("0123456789.eE+-", buf[i])) {
            return -EINVAL; /* no hex floats, no "nan(...)" */
        }
    }
    char *end;
    *out = strtod(buf, &end);
    return *end == '\0' && end != buf ? 0 : -EINVAL;
}

static int timestamp(const char *s, size_t n)
{
    size_t i = n > 0 && s[0] == '-';
    if (i == n || n > 20) {
        return -EINVAL;
    }
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return -EINVAL;
        }
    }
    return 0;
}

static int sample(struct line *l, struct top_prom_sample *s)
{
    int rc = name(l, true, &s->name);
    if (rc != 0) {
        return rc;
    }
    blanks(l);
    if (l->p < l->end && *l->p == '{' && (rc = labels(l, s)) != 0) {
        return rc;
    }
    const char *t;
    size_t n = token(l, &t);
    if ((rc = float_value(t, n, &s->value)) != 0) {
        return rc;
    }
    n = token(l, &t);
    if (n > 0 && (rc = timestamp(t, n)) != 0) {
        return rc;
    }
    blanks(l);
    return l->p == l->end ? 0 : -EINVAL;
}

int top_prom_parse(struct top_prom *p, const char *text, size_t len)
{
    p->v = NULL;
    p->n = 0;
    p->err_line = 0;
    size_t lines = 1;
    for (size_t i = 0; i < len; i++) {
        lines += text[i] == '\n';
    }
    if (lines > SIZE_MAX / sizeof(*p->v)) {
        return -ENOMEM;
    }
    p->v = top_arena_alloc(&p->arena, lines * sizeof(*p->v));
    if (!p->v) {
        return -ENOMEM;
    }
    const char *s = text, *end = text + len;
    for (size_t no = 1; s < end; no++) {
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        struct line l = {.p = s, .end = nl ? nl : end, .arena = &p->arena};
        s = nl ? nl + 1 : end;
        blanks(&l);
        if (l.p == l.end || *l.p == '#') {
            continue; /* blank, HELP, TYPE or a comment */
        }
        struct top_prom_sample *smp = &p->v[p->n];
        memset(smp, 0, sizeof(*smp));
        int rc = sample(&l, smp);
        if (rc != 0) {
            p->err_line = no;
            return rc;
        }
        p->n++;
    }
    return 0;
}

void top_prom_free(struct top_prom *p)
{
    top_arena_free(&p->arena);
    p->v = NULL;
    p->n = 0;
}

const char *top_prom_label(const struct top_prom_sample *s, const char *name)
{
    for (size_t i = 0; i < s->n_labels; i++) {
        if (strcmp(s->labels[i].name, name) == 0) {
            return s->labels[i].value;
        }
    }
    return NULL;
}

bool top_prom_sum(const struct top_prom *p, const char *name, const char *key,
                  const char *value, double *sum)
{
    bool found = false;
    double total = 0;
    for (size_t i = 0; i < p->n; i++) {
        const struct top_prom_sample *s = &p->v[i];
        if (strcmp(s->name, name) != 0) {
            continue;
        }
        if (key) {
            const char *v = top_prom_label(s, key);
            if (!v || strcmp(v, value) != 0) {
                continue;
            }
        }
        total += s->value;
        found = true;
    }
    *sum = total;
    return found;
}

bool top_prom_hist(const struct top_prom *p, const char *name,
                   struct top_hist *h)
{
    h->n = 0;
    size_t n = strlen(name);
    for (size_t i = 0; i < p->n; i++) {
        const struct top_prom_sample *s = &p->v[i];
        if (strncmp(s->name, name, n) != 0 ||
            strcmp(s->name + n, "_bucket") != 0) {
            continue;
        }
        const char *le_text = top_prom_label(s, "le");
        double le;
        if (!le_text || float_value(le_text, strlen(le_text), &le) != 0 ||
            isnan(le)) {
            return false;
        }
        size_t at = 0;
        while (at < h->n && h->le[at] < le) {
            at++;
        }
        if (at == h->n || h->le[at] != le) {
            if (h->n == TOP_HIST_MAX) {
                return false;
            }
            memmove(&h->le[at + 1], &h->le[at], (h->n - at) * sizeof(double));
            memmove(&h->count[at + 1], &h->count[at],
                    (h->n - at) * sizeof(double));
            h->le[at] = le;
            h->count[at] = 0;
            h->n++;
        }
        h->count[at] += s->value;
    }
    return h->n > 0 && isinf(h->le[h->n - 1]) && h->le[h->n - 1] > 0;
}

double top_hist_quantile(const struct top_hist *prev,
                         const struct top_hist *cur, double q)
{
    if (!(q >= 0 && q <= 1) || cur->n < 2 || (prev && prev->n != cur->n)) {
        return NAN;
    }
    double d[TOP_HIST_MAX];
    for (size_t i = 0; i < cur->n; i++) {
        if (prev && prev->le[i] != cur->le[i]) {
            return NAN;
        }
        d[i] = cur->count[i] - (prev ? prev->count[i] : 0);
        if (d[i] < 0 || (i > 0 && d[i] < d[i - 1])) {
            return NAN; /* a restart, or buckets that are not cumulative */
        }
    }
    double total = d[cur->n - 1];
    if (!(total > 0)) {
        return NAN;
    }
    double rank = q * total;
    size_t i = 0;
    while (i < cur->n - 1 && d[i] < rank) {
        i++;
    }
    if (i == cur->n - 1) {
        return cur->le[cur->n - 2]; /* past the last finite bound */
    }
    double lo = 0, below = 0;
    if (i > 0) {
        lo = cur->le[i - 1];
        below = d[i - 1];
    } else if (cur->le[0] <= 0) {
        return cur->le[0];
    }
    double in = d[i] - below;
    if (in <= 0) {
        return cur->le[i];
    }
    return lo + (cur->le[i] - lo) * ((rank - below) / in);
}

double top_rate(double prev, double cur, double dt_s)
{
    if (!(dt_s > 0) || !isfinite(prev) || !isfinite(cur)) {
        return NAN;
    }
    return (cur < prev ? cur : cur - prev) / dt_s;
}
