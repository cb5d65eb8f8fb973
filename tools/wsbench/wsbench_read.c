/* tools/wsbench/wsbench_read.c - reading server frames: versions and gaps,
 * latency from `sent`, and (for --dump) each connection's view of every
 * match, built from snapshots and deltas exactly as a browser would. */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "notify/notify.h"
#include "tools/wsbench/wsbench.h"

/* ---- latency histogram -------------------------------------------------- */

int wb_hist_init(struct wb_hist *h)
{
    *h = (struct wb_hist){0};
    h->bucket = calloc(WB_HIST_BUCKETS, sizeof(*h->bucket));
    return h->bucket ? 0 : -ENOMEM;
}

void wb_hist_release(struct wb_hist *h)
{
    free(h->bucket);
    *h = (struct wb_hist){0};
}

void wb_hist_reset(struct wb_hist *h)
{
    memset(h->bucket, 0, WB_HIST_BUCKETS * sizeof(*h->bucket));
    h->count = 0;
    h->max_us = 0;
}

void wb_hist_add(struct wb_hist *h, int64_t us)
{
    if (us < 0) {
        us = 0; /* clocks of one machine; `sent` has ms resolution */
    }
    uint64_t b = (uint64_t)us / WB_HIST_STEP_US;
    if (b >= WB_HIST_BUCKETS) {
        b = WB_HIST_BUCKETS - 1;
    }
    h->bucket[b]++;
    h->count++;
    if (us > h->max_us) {
        h->max_us = us;
    }
}

double wb_hist_quantile_ms(const struct wb_hist *h, double q)
{
    if (h->count == 0) {
        return 0;
    }
    uint64_t want = (uint64_t)(q * (double)h->count);
    if (want >= h->count) {
        want = h->count - 1;
    }
    uint64_t seen = 0;
    for (uint32_t b = 0; b < WB_HIST_BUCKETS; b++) {
        seen += h->bucket[b];
        if (seen > want) {
            /* The bucket's upper edge: never flatters. */
            return (double)(b + 1) * WB_HIST_STEP_US / 1000.0;
        }
    }
    return (double)h->max_us / 1000.0;
}

/* ---- interned ids
 * ------------------------------------------------------------ */

static uint64_t hash(const char *s, size_t len)
{
    uint64_t h = 14695981039346656037ull;
    for (size_t i = 0; i < len; i++) {
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    }
    return h;
}

static int ids_rehash(struct wb_ids *ids, uint32_t n_slots)
{
    uint32_t *slot = calloc(n_slots, sizeof(*slot));
    if (!slot) {
        return -ENOMEM;
    }
    for (uint32_t i = 0; i < ids->n; i++) {
        uint64_t h = hash(ids->id[i], strlen(ids->id[i]));
        uint32_t k = (uint32_t)h & (n_slots - 1);
        while (slot[k]) {
            k = (k + 1) & (n_slots - 1);
        }
        slot[k] = i + 1;
    }
    free(ids->slot);
    ids->slot = slot;
    ids->n_slots = n_slots;
    return 0;
}

int64_t wb_ids_get(struct wb_ids *ids, const char *id, size_t len)
{
    if (ids->n_slots == 0 && ids_rehash(ids, 256) != 0) {
        return -1;
    }
    uint64_t h = hash(id, len);
    uint32_t k = (uint32_t)h & (ids->n_slots - 1);
    for (; ids->slot[k]; k = (k + 1) & (ids->n_slots - 1)) {
        const char *have = ids->id[ids->slot[k] - 1];
        if (strncmp(have, id, len) == 0 && have[len] == '\0') {
            return ids->slot[k] - 1;
        }
    }
    if (ids->n == ids->cap) {
        uint32_t cap = ids->cap ? ids->cap * 2 : 64;
        char **a = realloc(ids->id, cap * sizeof(*a));
        if (!a) {
            return -1;
        }
        ids->id = a;
        ids->cap = cap;
    }
    char *copy = strndup(id, len);
    if (!copy) {
        return -1;
    }
    ids->id[ids->n] = copy;
    ids->slot[k] = ++ids->n;
    if (ids->n * 2 > ids->n_slots && ids_rehash(ids, ids->n_slots * 2) != 0) {
        return -1;
    }
    return ids->n - 1;
}

void wb_ids_release(struct wb_ids *ids)
{
    for (uint32_t i = 0; i < ids->n; i++) {
        free(ids->id[i]);
    }
    free(ids->id);
    free(ids->slot);
    *ids = (struct wb_ids){0};
}

/* ---- RFC 3339
 * ------------------------------------------------------------------ */

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static bool num(const char *s, size_t at, size_t n, size_t len, int *out)
{
    if (at + n > len) {
        return false;
    }
    int v = 0;
    for (size_t i = at; i < at + n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return false;
        }
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

int wb_parse_rfc3339_ms(const char *s, size_t len, int64_t *ms)
{
    int y, mo, d, h, mi, sec;
    if (!num(s, 0, 4, len, &y) || len < 19 || s[4] != '-' ||
        !num(s, 5, 2, len, &mo) || s[7] != '-' || !num(s, 8, 2, len, &d) ||
        (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
        !num(s, 11, 2, len, &h) || s[13] != ':' || !num(s, 14, 2, len, &mi) ||
        s[16] != ':' || !num(s, 17, 2, len, &sec) || mo < 1 || mo > 12 ||
        d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60) {
        return -EINVAL;
    }
    size_t i = 19;
    int frac_ms = 0;
    if (i < len && s[i] == '.') {
        int digits = 0;
        for (i++; i < len && s[i] >= '0' && s[i] <= '9'; i++, digits++) {
            if (digits < 3) {
                frac_ms = frac_ms * 10 + (s[i] - '0');
            }
        }
        if (digits == 0) {
            return -EINVAL;
        }
        for (; digits < 3; digits++) {
            frac_ms *= 10;
        }
    }
    int offset_min = 0;
    if (i < len && (s[i] == 'Z' || s[i] == 'z')) {
        i++;
    } else if (i < len && (s[i] == '+' || s[i] == '-')) {
        int oh, om;
        if (!num(s, i + 1, 2, len, &oh) || i + 3 >= len || s[i + 3] != ':' ||
            !num(s, i + 4, 2, len, &om)) {
            return -EINVAL;
        }
        offset_min = (oh * 60 + om) * (s[i] == '-' ? -1 : 1);
        i += 6;
    } else {
        return -EINVAL;
    }
    if (i != len) {
        return -EINVAL;
    }
    int64_t days = days_from_civil(y, (unsigned)mo, (unsigned)d);
    int64_t secs = days * 86400 + h * 3600 + mi * 60 + sec - offset_min * 60;
    *ms = secs * 1000 + frac_ms;
    return 0;
}

/* ---- reading frames
 * ---------------------------------------------------------------- */

int wb_reader_init(struct wb_reader *r, bool keep_views)
{
    *r = (struct wb_reader){.keep_views = keep_views};
    r->max_toks = 4096;
    r->toks = calloc(r->max_toks, sizeof(*r->toks));
    if (!r->toks || wb_hist_init(&r->hist) != 0) {
        wb_reader_release(r);
        return -ENOMEM;
    }
    return 0;
}

void wb_reader_release(struct wb_reader *r)
{
    free(r->toks);
    wb_hist_release(&r->hist);
    wb_ids_release(&r->ids);
    r->toks = NULL;
}

static void match_clear(struct wb_match *m)
{
    for (uint32_t i = 0; i < m->n_members; i++) {
        free(m->members[i].key);
        free(m->members[i].json);
    }
    for (uint32_t i = 0; i < m->n_incidents; i++) {
        free(m->incidents[i].id);
        free(m->incidents[i].json);
    }
    free(m->members);
    free(m->incidents);
    *m = (struct wb_match){0};
}

void wb_view_release(struct wb_conn_view *v)
{
    if (v->match) {
        for (uint32_t i = 0; i < v->n; i++) {
            match_clear(&v->match[i]);
        }
    }
    free(v->version);
    free(v->match);
    *v = (struct wb_conn_view){0};
}

static int view_reserve(struct wb_conn_view *v, uint32_t idx, bool views)
{
    if (idx < v->n) {
        return 0;
    }
    uint32_t n = v->n ? v->n : 16;
    while (n <= idx) {
        n *= 2;
    }
    uint64_t *ver = realloc(v->version, n * sizeof(*ver));
    if (!ver) {
        return -ENOMEM;
    }
    memset(ver + v->n, 0, (n - v->n) * sizeof(*ver));
    v->version = ver;
    if (views) {
        struct wb_match *m = realloc(v->match, n * sizeof(*m));
        if (!m) {
            return -ENOMEM;
        }
        memset(m + v->n, 0, (n - v->n) * sizeof(*m));
        v->match = m;
    }
    v->n = n;
    return 0;
}

static char *raw(const char *text, const struct notify_json_tok *t)
{
    /* Strings keep their quotes: the raw JSON of the value. */
    size_t start = t->start, len = t->len;
    if (t->type == NOTIFY_JSON_STRING) {
        start--;
        len += 2;
    }
    return strndup(text + start, len);
}

static char *decoded(const char *text, const struct notify_json_tok *t)
{
    char *out = malloc(t->len + 1);
    if (out && notify_json_str(text, t, out, t->len + 1, NULL) != 0) {
        free(out);
        out = NULL;
    }
    return out;
}

static bool skipped_key(const char *key)
{
    return strcmp(key, "id") == 0 || strcmp(key, "version") == 0 ||
           strcmp(key, "feed") == 0 || strcmp(key, "gap") == 0 ||
           strcmp(key, "incidents") == 0;
}

/* Sets member @key of @m to the raw JSON of token @v; null removes it. */
static int set_member(struct wb_match *m, const char *text, const char *key,
                      const struct notify_json_tok *v)
{
    uint32_t i = 0;
    while (i < m->n_members && strcmp(m->members[i].key, key) != 0) {
        i++;
    }
    if (v->type == NOTIFY_JSON_NULL) {
        if (i < m->n_members) {
            free(m->members[i].key);
            free(m->members[i].json);
            memmove(&m->members[i], &m->members[i + 1],
                    (m->n_members - i - 1) * sizeof(*m->members));
            m->n_members--;
        }
        return 0;
    }
    char *json = raw(text, v);
    if (!json) {
        return -ENOMEM;
    }
    if (i < m->n_members) {
        free(m->members[i].json);
        m->members[i].json = json;
        return 0;
    }
    struct wb_member *a = realloc(m->members, (m->n_members + 1) * sizeof(*a));
    if (!a) {
        free(json);
        return -ENOMEM;
    }
    m->members = a;
    char *k = strdup(key);
    if (!k) {
        free(json);
        return -ENOMEM;
    }
    m->members[m->n_members++] = (struct wb_member){k, json};
    return 0;
}

/* Inserts or replaces incident object token @obj (it has an "id"). */
static int upsert_incident(struct wb_match *m, const char *text,
                           const struct notify_json_tok *toks, uint32_t obj)
{
    uint32_t idt = notify_json_get(text, toks, obj, "id");
    if (!idt || toks[idt].type != NOTIFY_JSON_STRING) {
        return -EINVAL;
    }
    char *id = decoded(text, &toks[idt]);
    char *json = raw(text, &toks[obj]);
    if (!id || !json) {
        free(id);
        free(json);
        return -ENOMEM;
    }
    for (uint32_t i = 0; i < m->n_incidents; i++) {
        if (strcmp(m->incidents[i].id, id) == 0) {
            free(id);
            free(m->incidents[i].json);
            m->incidents[i].json = json;
            return 0;
        }
    }
    struct wb_incident *a =
        realloc(m->incidents, (m->n_incidents + 1) * sizeof(*a));
    if (!a) {
        free(id);
        free(json);
        return -ENOMEM;
    }
    m->incidents = a;
    m->incidents[m->n_incidents++] = (struct wb_incident){id, json};
    return 0;
}

static void delete_incident(struct wb_match *m, const char *text,
                            const struct notify_json_tok *t)
{
    char id[256];
    if (notify_json_str(text, t, id, sizeof(id), NULL) != 0) {
        return;
    }
    for (uint32_t i = 0; i < m->n_incidents; i++) {
        if (strcmp(m->incidents[i].id, id) == 0) {
            free(m->incidents[i].id);
            free(m->incidents[i].json);
            memmove(&m->incidents[i], &m->incidents[i + 1],
                    (m->n_incidents - i - 1) * sizeof(*m->incidents));
            m->n_incidents--;
            return;
        }
    }
}

static int apply_snapshot(struct wb_match *m, const char *text,
                          const struct notify_json_tok *toks, uint32_t obj)
{
    match_clear(m);
    uint32_t k = obj + 1;
    for (uint32_t i = 0; i < toks[obj].size; i++, k = toks[k + 1].next) {
        char key[64];
        if (notify_json_str(text, &toks[k], key, sizeof(key), NULL) != 0) {
            continue;
        }
        int rc = 0;
        if (strcmp(key, "incidents") == 0 &&
            toks[k + 1].type == NOTIFY_JSON_ARRAY) {
            uint32_t e = k + 2;
            for (uint32_t j = 0; j < toks[k + 1].size; j++, e = toks[e].next) {
                if (toks[e].type == NOTIFY_JSON_OBJECT) {
                    rc = upsert_incident(m, text, toks, e);
                    if (rc == -ENOMEM) {
                        return rc;
                    }
                }
            }
        } else if (!skipped_key(key)) {
            rc = set_member(m, text, key, &toks[k + 1]);
        }
        if (rc == -ENOMEM) {
            return rc;
        }
    }
    return 0;
}

static int apply_delta(struct wb_match *m, const char *text,
                       const struct notify_json_tok *toks, uint32_t msg)
{
    uint32_t ch = notify_json_get(text, toks, msg, "changes");
    if (ch && toks[ch].type == NOTIFY_JSON_OBJECT) {
        uint32_t k = ch + 1;
        for (uint32_t i = 0; i < toks[ch].size; i++, k = toks[k + 1].next) {
            char key[64];
            if (notify_json_str(text, &toks[k], key, sizeof(key), NULL) != 0 ||
                skipped_key(key)) {
                continue;
            }
            int rc = set_member(m, text, key, &toks[k + 1]);
            if (rc != 0) {
                return rc;
            }
        }
    }
    uint32_t inc = notify_json_get(text, toks, msg, "incidents");
    if (!inc || toks[inc].type != NOTIFY_JSON_OBJECT) {
        return 0;
    }
    uint32_t up = notify_json_get(text, toks, inc, "upsert");
    if (up && toks[up].type == NOTIFY_JSON_ARRAY) {
        uint32_t e = up + 1;
        for (uint32_t j = 0; j < toks[up].size; j++, e = toks[e].next) {
            if (toks[e].type == NOTIFY_JSON_OBJECT &&
                upsert_incident(m, text, toks, e) == -ENOMEM) {
                return -ENOMEM;
            }
        }
    }
    uint32_t del = notify_json_get(text, toks, inc, "delete");
    if (del && toks[del].type == NOTIFY_JSON_ARRAY) {
        uint32_t e = del + 1;
        for (uint32_t j = 0; j < toks[del].size; j++, e = toks[e].next) {
            delete_incident(m, text, &toks[e]);
        }
    }
    return 0;
}

/* The members of a message that matter here, found in one pass (0: absent;
 * the first of a repeated key wins). */
struct fields {
    uint32_t type, id, version, sent, recovered, match;
};

static void fields_of(const char *text, const struct notify_json_tok *toks,
                      uint32_t obj, struct fields *f)
{
    static const struct {
        const char *name;
        size_t off;
    } names[] = {
        {"type", offsetof(struct fields, type)},
        {"id", offsetof(struct fields, id)},
        {"version", offsetof(struct fields, version)},
        {"sent", offsetof(struct fields, sent)},
        {"recovered", offsetof(struct fields, recovered)},
        {"match", offsetof(struct fields, match)},
    };
    *f = (struct fields){0};
    uint32_t k = obj + 1;
    for (uint32_t m = 0; m < toks[obj].size; m++, k = toks[k + 1].next) {
        const struct notify_json_tok *key = &toks[k];
        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
            size_t n = strlen(names[i].name);
            bool same = key->flags & NOTIFY_JSON_ESCAPED
                            ? notify_json_eq(text, key, names[i].name)
                            : key->len == n && memcmp(text + key->start,
                                                      names[i].name, n) == 0;
            if (same) {
                uint32_t *slot = (uint32_t *)((char *)f + names[i].off);
                if (!*slot) {
                    *slot = k + 1;
                }
                break;
            }
        }
    }
}

/* Reads id and version of object token @holder (the message itself may be
 * token 0). Returns the match index, -1 when they are missing (counted
 * bad), or -2 when out of memory. */
static int64_t id_version(struct wb_reader *r, struct wb_conn_view *v,
                          const char *text, const struct fields *f,
                          uint64_t *ver)
{
    const struct notify_json_tok *toks = r->toks;
    if (!f->id || !f->version || toks[f->id].type != NOTIFY_JSON_STRING ||
        (toks[f->id].flags & NOTIFY_JSON_ESCAPED) ||
        notify_json_u64(text, &toks[f->version], ver) != 0) {
        r->counts.bad++;
        return -1;
    }
    int64_t idx =
        wb_ids_get(&r->ids, text + toks[f->id].start, toks[f->id].len);
    if (idx < 0 || view_reserve(v, (uint32_t)idx, r->keep_views) != 0) {
        return -2;
    }
    return idx;
}

static int read_message(struct wb_reader *r, struct wb_conn_view *v,
                        const char *text, uint32_t msg, int64_t now_us)
{
    const struct notify_json_tok *toks = r->toks;
    struct fields f;
    fields_of(text, toks, msg, &f);
    uint32_t tt = f.type;
    if (!tt || toks[tt].type != NOTIFY_JSON_STRING) {
        r->counts.bad++;
        return 0;
    }
    r->counts.messages++;
    if (f.recovered) {
        r->counts.recovered++;
    }
    uint64_t ver;
    if (notify_json_eq(text, &toks[tt], "delta")) {
        r->counts.deltas++;
        int64_t idx = id_version(r, v, text, &f, &ver);
        if (idx < 0) {
            return idx == -2 ? -ENOMEM : 0;
        }
        uint64_t last = v->version[idx];
        if (last == 0) {
            r->counts.orphans++;
            snprintf(r->last_error, sizeof(r->last_error),
                     "delta %s v%llu before its snapshot", r->ids.id[idx],
                     (unsigned long long)ver);
        } else if (ver != last + 1) {
            r->counts.gaps++;
            snprintf(r->last_error, sizeof(r->last_error),
                     "delta %s v%llu after v%llu", r->ids.id[idx],
                     (unsigned long long)ver, (unsigned long long)last);
        }
        v->version[idx] = ver;
        uint32_t st = f.sent;
        int64_t sent_ms;
        if (r->measure && st && toks[st].type == NOTIFY_JSON_STRING &&
            wb_parse_rfc3339_ms(text + toks[st].start, toks[st].len,
                                &sent_ms) == 0) {
            wb_hist_add(&r->hist, now_us - sent_ms * 1000);
        }
        if (r->keep_views && last != 0) {
            return apply_delta(&v->match[idx], text, toks, msg);
        }
        return 0;
    }
    if (notify_json_eq(text, &toks[tt], "snapshot")) {
        r->counts.snapshots++;
        uint32_t m = f.match;
        if (!m || toks[m].type != NOTIFY_JSON_OBJECT) {
            r->counts.bad++;
            return 0;
        }
        struct fields mf;
        fields_of(text, toks, m, &mf);
        int64_t idx = id_version(r, v, text, &mf, &ver);
        if (idx < 0) {
            return idx == -2 ? -ENOMEM : 0;
        }
        v->version[idx] = ver;
        if (r->keep_views) {
            return apply_snapshot(&v->match[idx], text, toks, m);
        }
        return 0;
    }
    if (notify_json_eq(text, &toks[tt], "feed")) {
        r->counts.feeds++;
    } else if (notify_json_eq(text, &toks[tt], "pong")) {
        r->counts.pongs++;
    } else if (notify_json_eq(text, &toks[tt], "error")) {
        r->counts.errors++;
        snprintf(r->last_error, sizeof(r->last_error), "server error: %.*s",
                 (int)(toks[msg].len > 120 ? 120 : toks[msg].len),
                 text + toks[msg].start);
    }
    return 0;
}

int wb_read_frame(struct wb_reader *r, struct wb_conn_view *v, const char *text,
                  size_t len, int64_t now_us)
{
    r->counts.frames++;
    r->counts.bytes += len;
    int n;
    while ((n = notify_json_parse(text, len, r->toks, r->max_toks, NULL)) ==
           -ENOSPC) {
        uint32_t max = r->max_toks * 2;
        struct notify_json_tok *t = realloc(r->toks, max * sizeof(*t));
        if (!t) {
            return -ENOMEM;
        }
        r->toks = t;
        r->max_toks = max;
    }
    if (n < 0) {
        r->counts.bad++;
        snprintf(r->last_error, sizeof(r->last_error), "invalid JSON frame");
        return 0;
    }
    if (r->toks[0].type == NOTIFY_JSON_OBJECT) {
        return read_message(r, v, text, 0, now_us);
    }
    if (r->toks[0].type != NOTIFY_JSON_ARRAY) {
        r->counts.bad++;
        return 0;
    }
    uint32_t e = 1;
    for (uint32_t i = 0; i < r->toks[0].size; i++, e = r->toks[e].next) {
        if (r->toks[e].type != NOTIFY_JSON_OBJECT) {
            r->counts.bad++;
            continue;
        }
        int rc = read_message(r, v, text, e, now_us);
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

/* ---- the dump
 * ------------------------------------------------------------------------ */

static void put_str(FILE *out, const char *s)
{
    fputc('"', out);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            fprintf(out, "\\%c", c);
        } else if (c < 0x20) {
            fprintf(out, "\\u%04x", c);
        } else {
            fputc(c, out);
        }
    }
    fputc('"', out);
}

static const struct wb_ids *sort_ids;
static int by_id(const void *a, const void *b)
{
    return strcmp(sort_ids->id[*(const uint32_t *)a],
                  sort_ids->id[*(const uint32_t *)b]);
}

int wb_view_dump(const struct wb_reader *r, const struct wb_conn_view *v,
                 FILE *out)
{
    uint32_t *order = malloc((r->ids.n + 1) * sizeof(*order));
    if (!order) {
        return -ENOMEM;
    }
    uint32_t n = 0;
    for (uint32_t i = 0; i < r->ids.n && i < v->n; i++) {
        if (v->version[i] > 0) {
            order[n++] = i;
        }
    }
    sort_ids = &r->ids;
    qsort(order, n, sizeof(*order), by_id);
    fputc('{', out);
    for (uint32_t k = 0; k < n; k++) {
        uint32_t i = order[k];
        const struct wb_match *m = &v->match[i];
        fputs(k ? ",\n" : "\n", out);
        put_str(out, r->ids.id[i]);
        fputs(":{\"id\":", out);
        put_str(out, r->ids.id[i]);
        for (uint32_t j = 0; j < m->n_members; j++) {
            fputc(',', out);
            put_str(out, m->members[j].key);
            fprintf(out, ":%s", m->members[j].json);
        }
        fputs(",\"incidents\":[", out);
        for (uint32_t j = 0; j < m->n_incidents; j++) {
            fprintf(out, "%s%s", j ? "," : "", m->incidents[j].json);
        }
        fputs("]}", out);
    }
    fputs("\n}\n", out);
    free(order);
    return ferror(out) ? -EIO : 0;
}
