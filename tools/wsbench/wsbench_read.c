/* tools/wsbench/wsbench_read.c - reading server frames: versions and gaps,
 * latency from `sent`, and (for --dump) each connection's view of every
 * match, built from snapshots and deltas exactly as a browser would. */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#elif defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "notify/notify.h"
#include "tools/wsbench/wsbench.h"

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "words and masks of text here put its byte i at bits 8i or bit i"
#endif

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

/* FNV-1a four bytes at a time (ids are short and looked up per delta),
 * then mixed: the table uses the low bits. */
static inline uint64_t hash(const char *s, size_t len)
{
    uint64_t h = 14695981039346656037ull;
    for (; len >= 4; s += 4, len -= 4) {
        uint32_t w;
        memcpy(&w, s, sizeof(w));
        h = (h ^ w) * 1099511628211ull;
    }
    for (; len > 0; s++, len--) {
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    return h ^ h >> 33;
}

/* Whether the @n bytes at @a and @b are the same: a word at a time, for
 * ids of a few bytes. */
static inline bool same_bytes(const char *a, const char *b, size_t n)
{
    for (; n >= 8; a += 8, b += 8, n -= 8) {
        uint64_t x, y;
        memcpy(&x, a, sizeof(x));
        memcpy(&y, b, sizeof(y));
        if (x != y) {
            return false;
        }
    }
    if (n >= 4) {
        uint32_t x, y, u, v;
        memcpy(&x, a, sizeof(x));
        memcpy(&y, b, sizeof(y));
        memcpy(&u, a + n - 4, sizeof(u)); /* overlaps x when n < 8 */
        memcpy(&v, b + n - 4, sizeof(v));
        return x == y && u == v;
    }
    for (; n > 0; a++, b++, n--) {
        if (*a != *b) {
            return false;
        }
    }
    return true;
}

static int ids_rehash(struct wb_ids *ids, uint32_t n_slots)
{
    uint32_t *slot = calloc(n_slots, sizeof(*slot));
    if (!slot) {
        return -ENOMEM;
    }
    for (uint32_t i = 0; i < ids->n; i++) {
        uint64_t h = hash(ids->id[i], ids->len[i]);
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

/* Adds @id, which is not there yet, in free slot @k. */
static __attribute__((noinline)) int64_t ids_add(struct wb_ids *ids, uint32_t k,
                                                 const char *id, size_t len)
{
    if (ids->n == ids->cap) {
        uint32_t cap = ids->cap ? ids->cap * 2 : 64;
        char **a = realloc(ids->id, cap * sizeof(*a));
        if (!a) {
            return -1;
        }
        ids->id = a;
        uint32_t *l = realloc(ids->len, cap * sizeof(*l));
        if (!l) {
            return -1;
        }
        ids->len = l;
        ids->cap = cap;
    }
    char *copy = malloc(len + 1); /* all @len bytes: memcmp reads them */
    if (!copy) {
        return -1;
    }
    memcpy(copy, id, len);
    copy[len] = '\0';
    ids->len[ids->n] = (uint32_t)len;
    ids->id[ids->n] = copy;
    ids->slot[k] = ++ids->n;
    if (ids->n * 2 > ids->n_slots && ids_rehash(ids, ids->n_slots * 2) != 0) {
        return -1;
    }
    return ids->n - 1;
}

/* wb_ids_get(), inline where a delta is counted. */
static inline __attribute__((always_inline)) int64_t
ids_get(struct wb_ids *ids, const char *id, size_t len)
{
    if (ids->n_slots == 0 && ids_rehash(ids, 256) != 0) {
        return -1;
    }
    uint32_t k = (uint32_t)hash(id, len) & (ids->n_slots - 1);
    for (; ids->slot[k]; k = (k + 1) & (ids->n_slots - 1)) {
        uint32_t i = ids->slot[k] - 1;
        if (ids->len[i] == len && same_bytes(ids->id[i], id, len)) {
            return i;
        }
    }
    return ids_add(ids, k, id, len);
}

int64_t wb_ids_get(struct wb_ids *ids, const char *id, size_t len)
{
    return ids_get(ids, id, len);
}

void wb_ids_release(struct wb_ids *ids)
{
    for (uint32_t i = 0; i < ids->n; i++) {
        free(ids->id[i]);
    }
    free(ids->id);
    free(ids->len);
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
        unsigned d = (unsigned)(unsigned char)s[i] - '0';
        if (d > 9) {
            return false;
        }
        v = v * 10 + (int)d;
    }
    *out = v;
    return true;
}

/* The start of the minute "YYYY-MM-DDTHH:MM" at @s (16 bytes) into *@out,
 * in seconds since the epoch. Returns false when it is not one. */
static bool minute_of(const char *s, int64_t *out)
{
    int y, mo, d, h, mi;
    if (!num(s, 0, 4, 16, &y) || s[4] != '-' || !num(s, 5, 2, 16, &mo) ||
        s[7] != '-' || !num(s, 8, 2, 16, &d) ||
        (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
        !num(s, 11, 2, 16, &h) || s[13] != ':' || !num(s, 14, 2, 16, &mi) ||
        mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59) {
        return false;
    }
    *out = days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 +
           mi * 60;
    return true;
}

#define BYTES(b) (0x0101010101010101ull * (b)) /* @b in every byte */

/* The server's own end of a time, ":SS.mmmZ" at @t, read as one word (the
 * first byte lowest): sets *@sec and *@frac_ms. Returns false when @t is
 * not so. */
static inline bool seconds_ms(const char *t, int *sec, int *frac_ms)
{
    uint64_t w;
    memcpy(&w, t, sizeof(w));
    uint64_t d = (w ^ BYTES('0')) & 0x00ffffff00ffff00ull; /* the digits */
    /* A digit is 0..9 now: no high nibble, and no bit 4 after adding 6
     * (nor a carry, while no byte has a high nibble). */
    if ((d & BYTES(0xf0)) | ((d + BYTES(6)) & BYTES(0x10)) ||
        ((w | 0x20ull << 56) & 0xff000000ff0000ffull) !=
            ((uint64_t)'z' << 56 | (uint64_t)'.' << 24 | ':')) {
        return false;
    }
    *sec = (int)(d >> 8 & 0xff) * 10 + (int)(d >> 16 & 0xff);
    *frac_ms = (int)(d >> 32 & 0xff) * 100 + (int)(d >> 40 & 0xff) * 10 +
               (int)(d >> 48 & 0xff);
    return *sec <= 60;
}

/* wb_parse_rfc3339_ms() the long way: any form, any minute. */
static int rfc3339_ms(const char *s, size_t len, struct wb_minute *last,
                      int64_t *ms)
{
    if (len < 19) {
        return -EINVAL;
    }
    int64_t minute;
    if (last && last->valid && memcmp(s, last->text, sizeof(last->text)) == 0) {
        minute = last->s;
    } else if (minute_of(s, &minute)) {
        if (last) {
            memcpy(last->text, s, sizeof(last->text));
            last->s = minute;
            last->valid = true;
        }
    } else {
        return -EINVAL;
    }
    int sec, frac_ms = 0;
    if (s[16] != ':' || !num(s, 17, 2, len, &sec) || sec > 60) {
        return -EINVAL;
    }
    size_t i = 19;
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
    *ms = (minute + sec - offset_min * 60) * 1000 + frac_ms;
    return 0;
}

/* wb_parse_rfc3339_ms(), inline where a delta is counted: the server's
 * form, in the minute remembered, is read right here. */
static inline __attribute__((always_inline)) int
parse_rfc3339_ms(const char *s, size_t len, struct wb_minute *last, int64_t *ms)
{
    int sec, frac_ms;
    if (last && len == 24 && last->valid &&
        memcmp(s, last->text, sizeof(last->text)) == 0 &&
        seconds_ms(s + 16, &sec, &frac_ms)) {
        *ms = (last->s + sec) * 1000 + frac_ms;
        return 0;
    }
    return rfc3339_ms(s, len, last, ms);
}

int wb_parse_rfc3339_ms(const char *s, size_t len, struct wb_minute *last,
                        int64_t *ms)
{
    return parse_rfc3339_ms(s, len, last, ms);
}

/* ---- reading frames
 * ---------------------------------------------------------------- */

int wb_reader_init(struct wb_reader *r, bool keep_views)
{
    *r = (struct wb_reader){.keep_views = keep_views, .simd = WB_SIMD_AVX2};
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
    free(r->memo.bytes);
    free(r->memo.msgs);
    r->memo = (struct wb_memo){0};
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

/* ---- what every message counts ----------------------------------------- */

/* A byte range of the frame. */
struct span {
    const char *p;
    size_t n;
};

static bool span_is(struct span s, const char *lit)
{
    size_t n = strlen(lit);
    return s.n == n && memcmp(s.p, lit, n) == 0;
}

/* What the counters need of one message, however it was read. A message
 * without a type, or a delta or snapshot without an id or version, is
 * bad. */
struct msg {
    struct span text; /* the whole message, for error reports */
    struct span type; /* .p NULL: absent, not a string, or escaped */
    struct span id;   /* of the delta, or of the snapshot's match */
    bool has_version; /* it is a non-negative integer */
    uint64_t version;
    struct span sent; /* .p NULL: absent */
    bool recovered;   /* the first "recovered" is true */
    bool id_ok;       /* id is a string without escapes */
    unsigned seen;    /* lean reader: F_* members read (the first wins) */
};

/* What counting a message needs of it, worked out once: the kind its
 * type names, its id interned, its `sent` parsed. */
enum counted_kind {
    K_UNTYPED, /* no type: bad */
    K_DELTA,
    K_SNAPSHOT,
    K_FEED,
    K_PONG,
    K_ERROR,
    K_OTHER
};

struct wb_counted {
    uint8_t kind;     /* enum counted_kind */
    bool complete;    /* K_DELTA, K_SNAPSHOT: with an id and a version */
    bool recovered;   /* the first "recovered" is true */
    bool has_sent;    /* K_DELTA: sent_ms holds its parsed `sent` */
    uint32_t idx;     /* complete: the match's index in ids */
    uint64_t version; /* complete */
    int64_t sent_ms;
    struct span text; /* K_ERROR: the message, for last_error */
};

/* Works out what @m counts as. Returns 0 or -ENOMEM. */
static int classify(struct wb_reader *r, const struct msg *m,
                    struct wb_counted *out)
{
    *out = (struct wb_counted){.kind = K_UNTYPED, .text = m->text};
    if (!m->type.p) {
        return 0;
    }
    out->recovered = m->recovered;
    bool delta = span_is(m->type, "delta");
    if (delta || span_is(m->type, "snapshot")) {
        out->kind = delta ? K_DELTA : K_SNAPSHOT;
        if (!m->id_ok || !m->has_version) {
            return 0;
        }
        int64_t i = ids_get(&r->ids, m->id.p, m->id.n);
        if (i < 0) {
            return -ENOMEM;
        }
        out->complete = true;
        out->idx = (uint32_t)i;
        out->version = m->version;
        out->has_sent = delta && m->sent.p &&
                        parse_rfc3339_ms(m->sent.p, m->sent.n, &r->sent_minute,
                                         &out->sent_ms) == 0;
        return 0;
    }
    out->kind = span_is(m->type, "feed")    ? K_FEED
                : span_is(m->type, "pong")  ? K_PONG
                : span_is(m->type, "error") ? K_ERROR
                                            : K_OTHER;
    return 0;
}

/* Whether @c counts bad (apply_counted() counts it so). */
static bool counted_bad(const struct wb_counted *c)
{
    return c->kind == K_UNTYPED ||
           ((c->kind == K_DELTA || c->kind == K_SNAPSHOT) && !c->complete);
}

/* Counts @c for the connection whose view is @v, checks its version and
 * takes its latency. Sets *@idx to the match index when a view applies
 * it (a snapshot, or a delta after one), else -1. Returns 0 or -ENOMEM. */
static int apply_counted(struct wb_reader *r, struct wb_conn_view *v,
                         const struct wb_counted *c, int64_t now_us,
                         int64_t *idx)
{
    *idx = -1;
    r->counts.bad += counted_bad(c);
    if (c->kind == K_UNTYPED) {
        return 0;
    }
    r->counts.messages++;
    r->counts.recovered += c->recovered;
    switch (c->kind) {
    case K_FEED:
        r->counts.feeds++;
        return 0;
    case K_PONG:
        r->counts.pongs++;
        return 0;
    case K_ERROR:
        r->counts.errors++;
        snprintf(r->last_error, sizeof(r->last_error), "server error: %.*s",
                 (int)(c->text.n > 120 ? 120 : c->text.n), c->text.p);
        return 0;
    case K_OTHER:
        return 0;
    default: /* K_DELTA, K_SNAPSHOT */
        break;
    }
    bool delta = c->kind == K_DELTA;
    r->counts.deltas += delta;
    r->counts.snapshots += !delta;
    if (!c->complete) {
        return 0; /* counted bad above */
    }
    uint32_t i = c->idx;
    if (view_reserve(v, i, r->keep_views) != 0) {
        return -ENOMEM;
    }
    uint64_t last = v->version[i];
    v->version[i] = c->version;
    *idx = !delta || last != 0 ? (int64_t)i : -1;
    if (!delta) {
        return 0;
    }
    if (last == 0) {
        r->counts.orphans++;
        snprintf(r->last_error, sizeof(r->last_error),
                 "delta %s v%llu before its snapshot", r->ids.id[i],
                 (unsigned long long)c->version);
    } else if (c->version != last + 1) {
        r->counts.gaps++;
        snprintf(r->last_error, sizeof(r->last_error),
                 "delta %s v%llu after v%llu", r->ids.id[i],
                 (unsigned long long)c->version, (unsigned long long)last);
    }
    if (r->measure && c->has_sent) {
        wb_hist_add(&r->hist, now_us - c->sent_ms * 1000);
    }
    return 0;
}

/* Appends @c to the memo being recorded; one that cannot grow stops
 * recording, and is not used. */
static void memo_keep(struct wb_memo *mm, const struct wb_counted *c)
{
    if (mm->n == mm->cap_msgs) {
        uint32_t cap = mm->cap_msgs ? mm->cap_msgs * 2 : 16;
        struct wb_counted *a = realloc(mm->msgs, cap * sizeof(*a));
        if (!a) {
            mm->recording = false;
            return;
        }
        mm->msgs = a;
        mm->cap_msgs = cap;
    }
    mm->msgs[mm->n++] = *c;
}

/* Counts @m (classify(), then apply_counted()), and keeps what it counted
 * as in the memo while the lean reader records one. */
static int count_message(struct wb_reader *r, struct wb_conn_view *v,
                         const struct msg *m, int64_t now_us, int64_t *idx)
{
    struct wb_counted c;
    *idx = -1;
    int rc = classify(r, m, &c);
    if (rc != 0) {
        return rc;
    }
    if (r->memo.recording) {
        memo_keep(&r->memo, &c);
    }
    return apply_counted(r, v, &c, now_us, idx);
}

/* ---- the full reader (with views: every member, strictly) ---------------- */

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

/* Fills @m from object token @obj (the message). */
static void msg_of_tokens(const char *text, const struct notify_json_tok *toks,
                          uint32_t obj, struct msg *m)
{
    *m = (struct msg){
        .text = {text + toks[obj].start, toks[obj].len},
    };
    struct fields f;
    fields_of(text, toks, obj, &f);
    if (f.type && toks[f.type].type == NOTIFY_JSON_STRING &&
        !(toks[f.type].flags & NOTIFY_JSON_ESCAPED)) {
        m->type = (struct span){text + toks[f.type].start, toks[f.type].len};
    }
    m->recovered = f.recovered && toks[f.recovered].type == NOTIFY_JSON_TRUE;
    if (f.sent && toks[f.sent].type == NOTIFY_JSON_STRING) {
        m->sent = (struct span){text + toks[f.sent].start, toks[f.sent].len};
    }
    struct fields mf = f;
    if (m->type.p && span_is(m->type, "snapshot")) {
        mf = (struct fields){0};
        if (f.match && toks[f.match].type == NOTIFY_JSON_OBJECT) {
            fields_of(text, toks, f.match, &mf);
        }
    }
    if (mf.id && toks[mf.id].type == NOTIFY_JSON_STRING &&
        !(toks[mf.id].flags & NOTIFY_JSON_ESCAPED)) {
        m->id = (struct span){text + toks[mf.id].start, toks[mf.id].len};
        m->id_ok = true;
    }
    m->has_version = mf.version &&
                     notify_json_u64(text, &toks[mf.version], &m->version) == 0;
}

static int read_tokens(struct wb_reader *r, struct wb_conn_view *v,
                       const char *text, uint32_t obj, int64_t now_us)
{
    struct msg m;
    msg_of_tokens(text, r->toks, obj, &m);
    int64_t idx;
    int rc = count_message(r, v, &m, now_us, &idx);
    if (rc != 0 || idx < 0 || !r->keep_views) {
        return rc;
    }
    const struct notify_json_tok *toks = r->toks;
    if (span_is(m.type, "snapshot")) {
        return apply_snapshot(&v->match[idx], text, toks,
                              notify_json_get(text, toks, obj, "match"));
    }
    return apply_delta(&v->match[idx], text, toks, obj);
}

static int read_frame_tokens(struct wb_reader *r, struct wb_conn_view *v,
                             const char *text, size_t len, int64_t now_us)
{
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
        return read_tokens(r, v, text, 0, now_us);
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
        int rc = read_tokens(r, v, text, e, now_us);
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

/* ---- the lean reader (counting only) --------------------------------------
 *
 * DESIGN
 * What a million deltas a second needs: one pass over the frame that looks
 * only at the members it counts and skips every other value without
 * validating it. The server's frames are valid JSON (the full reader checks
 * that with --dump); anything this cannot follow is counted bad.
 *
 * The pass is simdjson's two stages. Stage one classifies the frame 64
 * bytes at a time into bitmasks: the quotes that open or close a string (a
 * quote after an odd run of backslashes does neither), and the brackets
 * outside strings (the running XOR of the quote bits says which bytes are
 * inside one). It runs a chunk of eight blocks at a time, in one loop of
 * vector code, just ahead of stage two, so a frame cut short costs what
 * was read and nothing is allocated. A block without backslashes (the
 * server rarely escapes) takes no escape work; one with them takes a loop
 * over its backslashes.
 *
 * Stage two is the walker: it reads keys and the values it counts byte by
 * byte, finds a string's end as the next quote bit and skips a nested value
 * by counting bracket bits, so the bytes of skipped values (most of a
 * delta) are never looked at one by one. Keys may come in any order, but
 * a delta is first read as model__delta_json() writes it, member after
 * member with no look at their keys, for as long as it is so.
 *
 * Nothing depends on the frame being valid to stay in bounds: every bit
 * found is a byte of the frame, and the last, short block is read from a
 * copy. On bytes that are not JSON the two stages may disagree on what is
 * inside a string; the walker then counts garbage or gives up.
 */

#define BLOCK 64 /* bytes a block, a bit each in a mask */
#define CHUNK 8  /* blocks classified at a time: 512 bytes of text */

/* A block's masks, bit i for its byte i. */
struct masks {
    uint64_t quote; /* quotes that open or close a string */
    uint64_t open;  /* '{' and '[' outside strings */
    uint64_t close; /* '}' and ']' outside strings */
};

/* The state carried from one block to the next. */
struct carry {
    uint64_t in_string; /* all ones when the block ended inside a string */
    uint64_t escaped;   /* 1 when the next block's first byte is escaped */
    bool backslash;     /* the blocks so far hold a backslash */
};

/* Classifies the @n blocks at @b, after those that left @c, into @out. */
typedef void classify_fn(struct carry *c, const char *b, unsigned n,
                         struct masks *out);

struct scan {
    const char *end;       /* of the frame */
    const char *block;     /* the block the walker is in */
    struct masks at;       /* its masks */
    unsigned k, n;         /* its index in chunk[], which holds n */
    struct carry carry;    /* after the chunk */
    classify_fn *classify; /* the best the CPU has */
    struct masks chunk[CHUNK];
};

/* The bytes of a block escaped by its backslashes @bs; *@carry is 1 when
 * the block's first byte is escaped, and becomes so for the next block. */
static uint64_t escaped_by(uint64_t bs, uint64_t *carry)
{
    uint64_t escaped = *carry;
    *carry = 0;
    bs &= ~escaped;
    while (bs) {
        int i = __builtin_ctzll(bs);
        if (i == BLOCK - 1) {
            *carry = 1;
            break;
        }
        escaped |= 2ull << i;
        bs &= ~(3ull << i); /* an escaped backslash escapes nothing */
    }
    return escaped;
}

/* Bit i: an odd number of the bits of @x at or below i. */
static inline uint64_t prefix_xor(uint64_t x)
{
    x ^= x << 1;
    x ^= x << 2;
    x ^= x << 4;
    x ^= x << 8;
    x ^= x << 16;
    x ^= x << 32;
    return x;
}

/* The masks of a block from its bytes' (bit i: byte i) quotes, backslashes
 * and brackets, wherever they are; @px is the prefix XOR to use. */
static inline __attribute__((always_inline)) struct masks
masks_of(struct carry *c, uint64_t quote, uint64_t backslash, uint64_t open,
         uint64_t close, uint64_t (*px)(uint64_t))
{
    if (backslash | c->escaped) {
        c->backslash |= backslash != 0;
        quote &= ~escaped_by(backslash, &c->escaped);
    }
    uint64_t inside = px(quote) ^ c->in_string;
    c->in_string = (uint64_t)((int64_t)inside >> 63);
    return (struct masks){quote, open & ~inside, close & ~inside};
}

/* Classifiers: one in plain C, one with SSE2 (every x86-64 has it), and
 * where the CPU has them, AVX2 with PCLMUL, which takes the prefix XOR in
 * one carry-less multiply. (AVX-512 was 6% faster on the microbenchmark,
 * not worth a fourth copy, nor the lower clock it can cost the daemon
 * that shares the core.) The brackets: '[' | 0x20 is '{',
 * and ']' | 0x20 is '}'. */
static void classify_plain(struct carry *c, const char *b, unsigned n,
                           struct masks *out)
{
    for (unsigned k = 0; k < n; k++, b += BLOCK) {
        uint64_t quote = 0, backslash = 0, open = 0, close = 0;
        for (int i = 0; i < BLOCK; i++) {
            quote |= (uint64_t)(b[i] == '"') << i;
            backslash |= (uint64_t)(b[i] == '\\') << i;
            open |= (uint64_t)((b[i] | 0x20) == '{') << i;
            close |= (uint64_t)((b[i] | 0x20) == '}') << i;
        }
        out[k] = masks_of(c, quote, backslash, open, close, prefix_xor);
    }
}

#if defined(__SSE2__)
static inline uint64_t bits16(__m128i hit, int i)
{
    return (uint64_t)(uint16_t)_mm_movemask_epi8(hit) << (16 * i);
}

static void classify_sse2(struct carry *c, const char *b, unsigned n,
                          struct masks *out)
{
    const __m128i q = _mm_set1_epi8('"'), bs = _mm_set1_epi8('\\'),
                  lower = _mm_set1_epi8(0x20), op = _mm_set1_epi8('{'),
                  cl = _mm_set1_epi8('}');
    for (unsigned k = 0; k < n; k++, b += BLOCK) {
        uint64_t quote = 0, backslash = 0, open = 0, close = 0;
        for (int i = 0; i < 4; i++) {
            __m128i v =
                _mm_loadu_si128((const __m128i *)(const void *)(b + 16 * i));
            __m128i l = _mm_or_si128(v, lower);
            quote |= bits16(_mm_cmpeq_epi8(v, q), i);
            backslash |= bits16(_mm_cmpeq_epi8(v, bs), i);
            open |= bits16(_mm_cmpeq_epi8(l, op), i);
            close |= bits16(_mm_cmpeq_epi8(l, cl), i);
        }
        out[k] = masks_of(c, quote, backslash, open, close, prefix_xor);
    }
}
#endif

#if defined(__x86_64__) && defined(__GNUC__)
#define SCAN_WIDE 1
__attribute__((target("pclmul"))) static inline uint64_t
prefix_xor_clmul(uint64_t x)
{
    __m128i all = _mm_set1_epi8((char)0xff);
    return (uint64_t)_mm_cvtsi128_si64(
        _mm_clmulepi64_si128(_mm_cvtsi64_si128((long long)x), all, 0));
}

__attribute__((target("avx2"))) static inline uint64_t bits32(__m256i lo,
                                                              __m256i hi)
{
    return (uint32_t)_mm256_movemask_epi8(lo) |
           (uint64_t)(uint32_t)_mm256_movemask_epi8(hi) << 32;
}

__attribute__((target("avx2,pclmul"))) static void
classify_avx2(struct carry *c, const char *b, unsigned n, struct masks *out)
{
    const __m256i q = _mm256_set1_epi8('"'), bs = _mm256_set1_epi8('\\'),
                  lower = _mm256_set1_epi8(0x20), op = _mm256_set1_epi8('{'),
                  cl = _mm256_set1_epi8('}');
    for (unsigned k = 0; k < n; k++, b += BLOCK) {
        __m256i lo = _mm256_loadu_si256((const __m256i *)(const void *)b);
        __m256i hi =
            _mm256_loadu_si256((const __m256i *)(const void *)(b + 32));
        __m256i llo = _mm256_or_si256(lo, lower),
                lhi = _mm256_or_si256(hi, lower);
        out[k] = masks_of(
            c, bits32(_mm256_cmpeq_epi8(lo, q), _mm256_cmpeq_epi8(hi, q)),
            bits32(_mm256_cmpeq_epi8(lo, bs), _mm256_cmpeq_epi8(hi, bs)),
            bits32(_mm256_cmpeq_epi8(llo, op), _mm256_cmpeq_epi8(lhi, op)),
            bits32(_mm256_cmpeq_epi8(llo, cl), _mm256_cmpeq_epi8(lhi, cl)),
            prefix_xor_clmul);
    }
}
#endif

/* Classifies the chunk of blocks from s->block on: up to CHUNK of them,
 * the last, short one of the frame from a copy padded with blanks (which
 * are none of the bytes classified). */
static void classify_chunk(struct scan *s)
{
    size_t left = (size_t)(s->end - s->block);
    unsigned full = left / BLOCK < CHUNK ? (unsigned)(left / BLOCK) : CHUNK;
    s->classify(&s->carry, s->block, full, s->chunk);
    s->n = full;
    if (full < CHUNK && left % BLOCK) {
        char tail[BLOCK];
        memset(tail, ' ', sizeof(tail));
        memcpy(tail, s->block + full * BLOCK, left % BLOCK);
        s->classify(&s->carry, tail, 1, s->chunk + full);
        s->n++;
    }
    s->k = 0;
    s->at = s->n ? s->chunk[0] : (struct masks){0}; /* an empty frame */
    /* The chunk after: its bytes come in while the walker is in this one
     * (a frame read soon after it arrived is in the cache anyway; one
     * that was not, say a benchmark's, would otherwise be read a cache
     * miss at a time). */
    for (size_t at = CHUNK * BLOCK; at < left && at < 2 * CHUNK * BLOCK;
         at += BLOCK) {
        __builtin_prefetch(s->block + at);
    }
}

/* Moves to the next block. Returns false at the last. */
static bool next_block(struct scan *s)
{
    if (s->end - s->block <= BLOCK) {
        return false;
    }
    s->block += BLOCK;
    if (++s->k < s->n) {
        s->at = s->chunk[s->k];
    } else {
        classify_chunk(s);
    }
    return true;
}

/* Moves up to the block holding @p (p < end: the walker never goes back);
 * returns @p's bit there. */
static inline __attribute__((always_inline)) int bit_of(struct scan *s,
                                                        const char *p)
{
    while (p - s->block >= BLOCK) {
        next_block(s);
    }
    return (int)(p - s->block);
}

/* Sets up @s for the @len bytes at @text, with the widest classifier the
 * CPU and @simd allow (leaving the chunk to classify_chunk(): it is
 * large). */
static void scan_init(struct scan *s, const char *text, size_t len,
                      enum wb_simd simd)
{
    s->end = text + len;
    s->block = text;
    s->carry = (struct carry){0};
    s->classify = classify_plain;
    (void)simd; /* there may be no other */
#if defined(__SSE2__)
    if (simd >= WB_SIMD_SSE2) {
        s->classify = classify_sse2;
    }
#endif
#ifdef SCAN_WIDE
    if (simd >= WB_SIMD_AVX2 && __builtin_cpu_supports("avx2") &&
        __builtin_cpu_supports("pclmul")) {
        s->classify = classify_avx2;
    }
#endif
    classify_chunk(s);
}

static inline bool is_blank(char c)
{
    return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

/* The walker's steps take the byte they start at and return the one they
 * stop at (NULL: the frame cannot be followed), so that position stays in
 * a register; struct scan holds only the blocks. */

/* Past the blanks at @p. */
static inline __attribute__((always_inline)) const char *
blank(const struct scan *s, const char *p)
{
    while (p < s->end && is_blank(*p)) {
        p++;
    }
    return p;
}

/* The byte @c at @p, or after blanks there (compact JSON has none, so that
 * test comes first); NULL when it is not there. */
static inline __attribute__((always_inline)) const char *
expect(const struct scan *s, const char *p, char c)
{
    if (p < s->end && *p == c) {
        return p;
    }
    p = blank(s, p);
    return p < s->end && *p == c ? p : NULL;
}

/* The first byte at or after @p that is not a blank; NULL at the end. */
static inline __attribute__((always_inline)) const char *
nonblank(const struct scan *s, const char *p)
{
    if (p < s->end && (unsigned char)*p > ' ') {
        return p;
    }
    p = blank(s, p);
    return p < s->end ? p : NULL;
}

/* The closing quote of the string whose contents start at @from, in a
 * block after the one classified. */
static const char *string_end_far(struct scan *s, const char *from)
{
    if (from >= s->end) {
        return NULL;
    }
    int at = bit_of(s, from); /* first: it may move to the next block */
    uint64_t q = s->at.quote & (~0ull << at);
    while (!q) {
        if (!next_block(s)) {
            return NULL;
        }
        q = s->at.quote;
    }
    return s->block + __builtin_ctzll(q);
}

/* The closing quote of the string whose contents start at @from; NULL
 * when there is none. A string mostly ends in the block it starts in, and
 * the blank bytes after a frame's end hold no quote bits. */
static inline __attribute__((always_inline)) const char *
string_end(struct scan *s, const char *from)
{
    ptrdiff_t at = from - s->block;
    if (at < BLOCK) {
        uint64_t q = s->at.quote >> at;
        if (q) {
            return from + __builtin_ctzll(q);
        }
    }
    return string_end_far(s, from);
}

/* At the opening quote @p: sets @out to the raw contents; returns the byte
 * after the closing quote. */
static inline __attribute__((always_inline)) const char *
scan_string(struct scan *s, const char *p, struct span *out)
{
    const char *to = string_end(s, p + 1);
    if (!to) {
        return NULL;
    }
    *out = (struct span){p + 1, (size_t)(to - p - 1)};
    return to + 1;
}

/* At '{' or '[': returns the byte after the bracket that closes it,
 * counting the brackets outside strings (of either kind: nothing is
 * validated). */
static const char *skip_nested(struct scan *s, const char *p)
{
    size_t depth = 1;
    int at = bit_of(s, p);
    uint64_t b = (s->at.open | s->at.close) & (~1ull << at);
    for (;;) {
        for (; b; b &= b - 1) {
            int i = __builtin_ctzll(b);
            if (s->at.open >> i & 1) {
                depth++;
            } else if (--depth == 0) {
                return s->block + i + 1;
            }
        }
        if (!next_block(s)) {
            return NULL;
        }
        b = s->at.open | s->at.close;
    }
}

/* Whether the digits [@p, @end) are at most UINT64_MAX; if so, sets
 * *@out to them. */
static bool fits_u64(const char *p, const char *end, uint64_t *out)
{
    uint64_t v = 0;
    for (; p < end; p++) {
        if (__builtin_mul_overflow(v, 10, &v) ||
            __builtin_add_overflow(v, (uint64_t)(*p - '0'), &v)) {
            return false;
        }
    }
    *out = v;
    return true;
}

/* Past the value at @p, whatever it is. */
static const char *scan_skip(struct scan *s, const char *p)
{
    struct span str;
    if (p >= s->end) {
        return NULL;
    }
    if (*p == '"') {
        return scan_string(s, p, &str);
    }
    if (*p == '{' || *p == '[') {
        return skip_nested(s, p);
    }
    /* A number or a word: a few bytes. */
    while (p < s->end && *p != ',' && *p != '}' && *p != ']') {
        p++;
    }
    return p < s->end ? p : NULL;
}

/* Reads the value at @p as a non-negative integer into *@out, as
 * notify_json_u64() would; sets *@ok false (and skips it) when it is
 * something else. */
static const char *scan_u64(struct scan *s, const char *p, uint64_t *out,
                            bool *ok)
{
    uint64_t v = 0;
    const char *from = p;
    for (; p < s->end && *p >= '0' && *p <= '9'; p++) {
        v = v * 10 + (uint64_t)(*p - '0'); /* 19 digits always fit */
    }
    *out = v;
    *ok = p - from <= 19 || fits_u64(from, p, out);
    if (p > from && p < s->end && (*p == ',' || *p == '}' || is_blank(*p))) {
        return p;
    }
    *ok = false; /* a sign, a fraction, not a number: skip the rest */
    return scan_skip(s, p);
}

/* The members a message is counted by, as bits of struct msg's seen. */
enum {
    F_TYPE = 1u << 0,
    F_ID = 1u << 1,
    F_VERSION = 1u << 2,
    F_SENT = 1u << 3,
    F_RECOVERED = 1u << 4,
    F_MATCH = 1u << 5,
};

/* The F_* bit of the key @n bytes at @k (without escapes), or 0. */
static inline unsigned field_of(const char *k, size_t n)
{
    switch (n) {
    case 2:
        return memcmp(k, "id", 2) == 0 ? F_ID : 0;
    case 4:
        return memcmp(k, "type", 4) == 0   ? F_TYPE
               : memcmp(k, "sent", 4) == 0 ? F_SENT
                                           : 0;
    case 5:
        return memcmp(k, "match", 5) == 0 ? F_MATCH : 0;
    case 7:
        return memcmp(k, "version", 7) == 0 ? F_VERSION : 0;
    case 9:
        return memcmp(k, "recovered", 9) == 0 ? F_RECOVERED : 0;
    default:
        return 0;
    }
}

static int hex_digit(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* field_of() of a key with escapes, decoded as the tokenizer would as far
 * as the names go: they are ASCII letters, so only \u00XX can spell one;
 * any other escape, and a malformed one, is no name. */
static unsigned escaped_field_of(struct span key)
{
    char name[16];
    size_t n = 0;
    for (size_t i = 0; i < key.n; n++) {
        if (n == sizeof(name)) {
            return 0;
        }
        if (key.p[i] != '\\') {
            name[n] = key.p[i++];
            continue;
        }
        if (key.n - i < 6 || key.p[i + 1] != 'u') {
            return 0;
        }
        int cp = 0;
        for (size_t k = i + 2; k < i + 6; k++) {
            int h = hex_digit(key.p[k]);
            if (h < 0) {
                return 0;
            }
            cp = cp * 16 + h;
        }
        if (cp >= 0x80) {
            return 0;
        }
        name[n] = (char)cp;
        i += 6;
    }
    return field_of(name, n);
}

/* Whether @v, bytes of classified blocks, holds a backslash. */
static inline bool has_backslash(const struct scan *s, struct span v)
{
    return s->carry.backslash && memchr(v.p, '\\', v.n);
}

static const char *scan_object(struct scan *s, const char *p, struct msg *m,
                               struct msg *match);

/* Reads the value at @p (< end) of member @f (an F_* bit) into @m. */
static inline const char *scan_member(struct scan *s, const char *p, unsigned f,
                                      struct msg *m, struct msg *match)
{
    struct span val;
    if (f & (F_TYPE | F_ID | F_SENT)) {
        if (*p != '"') {
            return scan_skip(s, p); /* absent, as the full reader has it */
        }
        if (!(p = scan_string(s, p, &val))) {
            return NULL;
        }
        if (f == F_TYPE) {
            m->type = has_backslash(s, val) ? (struct span){0} : val;
        } else if (f == F_ID) {
            m->id = val;
            m->id_ok = !has_backslash(s, val);
        } else {
            m->sent = val; /* raw: an escaped one is not RFC 3339 */
        }
        return p;
    }
    if (f == F_VERSION) {
        return scan_u64(s, p, &m->version, &m->has_version);
    }
    if (f == F_RECOVERED) {
        m->recovered = *p == 't';
    } else if (match && *p == '{') { /* F_MATCH */
        *match = (struct msg){.text = {p, 0}};
        return scan_object(s, p, match, NULL);
    }
    return scan_skip(s, p);
}

/* Reads the member whose key's opening quote is at @p into @m (see
 * scan_object()); returns the byte after its value. */
static inline __attribute__((always_inline)) const char *
scan_key_value(struct scan *s, const char *p, struct msg *m, struct msg *match)
{
    struct span key;
    if (!(p = scan_string(s, p, &key))) {
        return NULL;
    }
    if (s->end - p > 1 && p[0] == ':' && (unsigned char)p[1] > ' ') {
        p++; /* compact JSON: the value right after the colon */
    } else if (!(p = expect(s, p, ':')) || !(p = nonblank(s, p + 1))) {
        return NULL;
    }
    unsigned f =
        has_backslash(s, key) ? escaped_field_of(key) : field_of(key.p, key.n);
    f &= ~m->seen; /* the first of a repeated key wins */
    m->seen |= f;
    return f ? scan_member(s, p, f, m, match) : scan_skip(s, p);
}

/* From @p, just after a member's value, reads the members after it and
 * the end of their object; returns the byte after that. */
static const char *scan_rest(struct scan *s, const char *p, struct msg *m,
                             struct msg *match)
{
    while (p) {
        if (s->end - p > 1 && p[0] == ',' && p[1] == '"') {
            p++; /* compact JSON: the next key right after the comma */
        } else if (!(p = nonblank(s, p)) || *p != ',') {
            return p && *p == '}' ? p + 1 : NULL;
        } else if (!(p = expect(s, p + 1, '"'))) {
            return NULL;
        }
        p = scan_key_value(s, p, m, match);
    }
    return NULL;
}

/* Reads the object at @p into @m: its type, id, version, sent and
 * recovered, each the first of its key; and when @match is not NULL, its
 * "match" object into *@match. */
static const char *scan_object(struct scan *s, const char *p, struct msg *m,
                               struct msg *match)
{
    p = nonblank(s, p + 1); /* past '{' */
    if (!p || *p == '}') {
        return p ? p + 1 : NULL;
    }
    if (*p != '"' || !(p = scan_key_value(s, p, m, match))) {
        return NULL;
    }
    return scan_rest(s, p, m, match);
}

/* Whether the text at @p, up to @end, starts with the @n bytes at @lit. */
static inline bool starts(const char *p, const char *end, const char *lit,
                          size_t n)
{
    return (size_t)(end - p) >= n && memcmp(p, lit, n) == 0;
}

/* Past the value at @p of a member not counted, after blanks. */
static inline const char *skip_value(struct scan *s, const char *p)
{
    return (p = nonblank(s, p)) ? scan_skip(s, p) : NULL;
}

/* scan_object() of a message, first as the server writes a delta
 * (model__delta_json(): compact; type, id, version, then sent, changes
 * and incidents, the first and last of those when there are any), with no
 * look at those keys; from the first member that is not so on, and for
 * any other message, the general way. */
static const char *scan_message_object(struct scan *s, const char *p,
                                       struct msg *m, struct msg *match)
{
    static const char type[] = "{\"type\":\"delta\"", id[] = ",\"id\":\"",
                      version[] = ",\"version\":", sent[] = ",\"sent\":\"",
                      changes[] = ",\"changes\":",
                      incidents[] = ",\"incidents\":";
    const char *end = s->end;
    if (!starts(p, end, type, sizeof(type) - 1)) {
        return scan_object(s, p, m, match);
    }
    m->type = (struct span){p + sizeof(type) - 7, 5};
    m->seen = F_TYPE;
    p += sizeof(type) - 1;
    if (!starts(p, end, id, sizeof(id) - 1)) {
        return scan_rest(s, p, m, match);
    }
    if (!(p = scan_string(s, p + sizeof(id) - 2, &m->id))) {
        return NULL;
    }
    m->id_ok = !has_backslash(s, m->id);
    m->seen |= F_ID;
    if (!starts(p, end, version, sizeof(version) - 1)) {
        return scan_rest(s, p, m, match);
    }
    p = nonblank(s, p + sizeof(version) - 1);
    if (!p || !(p = scan_u64(s, p, &m->version, &m->has_version))) {
        return NULL;
    }
    m->seen |= F_VERSION;
    if (starts(p, end, sent, sizeof(sent) - 1)) {
        if (!(p = scan_string(s, p + sizeof(sent) - 2, &m->sent))) {
            return NULL;
        }
        m->seen |= F_SENT;
    }
    if (starts(p, end, changes, sizeof(changes) - 1) &&
        !(p = skip_value(s, p + sizeof(changes) - 1))) {
        return NULL;
    }
    if (starts(p, end, incidents, sizeof(incidents) - 1) &&
        !(p = skip_value(s, p + sizeof(incidents) - 1))) {
        return NULL;
    }
    return scan_rest(s, p, m, match);
}

/* Reads the message at *@p and moves *@p past it. Returns 0, 1 when the
 * frame cannot be followed (counted bad), or -ENOMEM. */
static int scan_message(struct wb_reader *r, struct wb_conn_view *v,
                        struct scan *s, const char **p, int64_t now_us)
{
    const char *at = blank(s, *p);
    if (at >= s->end || *at != '{') {
        r->counts.bad++;
        *p = scan_skip(s, at);
        return *p ? 0 : 1;
    }
    struct msg m = {.text = {at, 0}}, match; /* match: once there is one */
    match.text.p = NULL;
    *p = scan_message_object(s, at, &m, &match);
    if (!*p) {
        r->counts.bad++;
        return 1;
    }
    m.text.n = (size_t)(*p - at);
    if (m.type.p && span_is(m.type, "snapshot")) {
        /* A snapshot's id and version are its match's. */
        m.id_ok = m.has_version = false;
        if (match.text.p) {
            m.id = match.id;
            m.id_ok = match.id_ok;
            m.version = match.version;
            m.has_version = match.has_version;
        }
    }
    int64_t idx;
    return count_message(r, v, &m, now_us, &idx);
}

static int scan_frame(struct wb_reader *r, struct wb_conn_view *v,
                      const char *text, size_t len, int64_t now_us);

/*
 * The lean reader: the frame the previous connection read again, from the
 * memo; else scanned, from a copy the memo keeps. What the memo holds is
 * what scanning gave, message by message, and the bad count outside them,
 * so the counters come out the same either way (wsbench_test checks it
 * against the full reader).
 */
static int read_frame_lean(struct wb_reader *r, struct wb_conn_view *v,
                           const char *text, size_t len, int64_t now_us)
{
    struct wb_memo *mm = &r->memo;
    if (mm->valid && mm->len == len && memcmp(mm->bytes, text, len) == 0) {
        r->counts.bad += mm->bad;
        for (uint32_t i = 0; i < mm->n; i++) {
            int64_t idx;
            int rc = apply_counted(r, v, &mm->msgs[i], now_us, &idx);
            if (rc != 0) {
                return rc;
            }
        }
        return 0;
    }
    mm->valid = false;
    if (len > mm->cap || !mm->bytes) {
        size_t cap = len ? len : 1; /* never NULL: memcpy and memcmp */
        char *b = realloc(mm->bytes, cap);
        if (!b) {
            return scan_frame(r, v, text, len, now_us); /* no memo */
        }
        mm->bytes = b;
        mm->cap = cap;
    }
    memcpy(mm->bytes, text, len);
    mm->len = len;
    mm->n = 0;
    mm->recording = true;
    uint64_t bad = r->counts.bad;
    int rc = scan_frame(r, v, mm->bytes, len, now_us);
    /* What the frame counted bad outside its messages: a replay counts
     * the messages' own again. */
    mm->bad = r->counts.bad - bad;
    for (uint32_t i = 0; i < mm->n; i++) {
        mm->bad -= counted_bad(&mm->msgs[i]);
    }
    mm->valid = rc == 0 && mm->recording;
    mm->recording = false;
    return rc;
}

static int scan_frame(struct wb_reader *r, struct wb_conn_view *v,
                      const char *text, size_t len, int64_t now_us)
{
    struct scan s;
    scan_init(&s, text, len, r->simd);
    const char *p = blank(&s, text);
    if (p < s.end && *p == '{') {
        int rc = scan_message(r, v, &s, &p, now_us);
        return rc < 0 ? rc : 0;
    }
    if (p >= s.end || *p != '[') {
        r->counts.bad++;
        return 0;
    }
    p = blank(&s, p + 1);
    if (p < s.end && *p == ']') {
        return 0;
    }
    for (;;) {
        int rc = scan_message(r, v, &s, &p, now_us);
        if (rc != 0) {
            return rc < 0 ? rc : 0;
        }
        p = blank(&s, p);
        if (p < s.end && *p == ',') {
            p++;
            continue;
        }
        if (p >= s.end || *p != ']') {
            r->counts.bad++;
        }
        return 0;
    }
}

int wb_read_frame(struct wb_reader *r, struct wb_conn_view *v, const char *text,
                  size_t len, int64_t now_us)
{
    r->counts.frames++;
    r->counts.bytes += len;
    return r->keep_views ? read_frame_tokens(r, v, text, len, now_us)
                         : read_frame_lean(r, v, text, len, now_us);
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
