/* store/store_batch.c - the rows of one transaction, in COPY binary form. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingest/event.h"
#include "store/store_impl.h"

/*
 * DESIGN
 * Rows are encoded once, as they arrive, in PostgreSQL's COPY binary
 * format: measured here, binary COPY into feed_events (bytea raw) ran at
 * about 540k rows/s against 250k for text COPY with hex-escaped bytea, and
 * it needs no escaping pass on our side. A field is a 4-byte big-endian
 * length (-1: NULL) and the value in the type's binary form:
 *   text, json   the UTF-8 bytes
 *   jsonb        a version byte (1) and the text
 *   bytea        the bytes
 *   int8, int4   8 or 4 bytes big-endian
 *   bool         1 byte
 *   timestamptz  int8 microseconds since 2000-01-01 UTC
 *   numeric      base-10000 digits (msgnr only; it may exceed int8)
 * Every add either appends whole rows or leaves the batch as it was.
 */

#define PG_EPOCH_MS 946684800000LL /* 2000-01-01 in Unix ms */
/* Years 0001..9999, the range RFC 3339 can write and PostgreSQL holds. */
#define TS_MIN_MS (-62135596800000LL)
#define TS_MAX_MS 253402300799999LL

/* ---- UTF-8 --------------------------------------------------------------- */

/* Bytes of the valid UTF-8 sequence at @s, or 0 (NUL counts as invalid). */
static size_t utf8_seq(const unsigned char *s, size_t left)
{
    unsigned char c = s[0];
    if (c >= 0x01 && c <= 0x7f) {
        return 1;
    }
    unsigned char lo = 0x80, hi = 0xbf;
    size_t n;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        lo = c == 0xe0 ? 0xa0 : 0x80;
        hi = c == 0xed ? 0x9f : 0xbf;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        lo = c == 0xf0 ? 0x90 : 0x80;
        hi = c == 0xf4 ? 0x8f : 0xbf;
    } else {
        return 0;
    }
    if (left < n || s[1] < lo || s[1] > hi) {
        return 0;
    }
    for (size_t i = 2; i < n; i++) {
        if (s[i] < 0x80 || s[i] > 0xbf) {
            return 0;
        }
    }
    return n;
}

bool store__utf8_is_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        /* Eight ASCII bytes, none of them NUL, at a time. */
        if (len - i >= 8) {
            uint64_t x;
            memcpy(&x, p + i, 8);
            const uint64_t high = 0x8080808080808080ull;
            if (((x | ((x - 0x0101010101010101ull) & ~x)) & high) == 0) {
                i += 8;
                continue;
            }
        }
        size_t n = utf8_seq(p + i, len - i);
        if (n == 0) {
            return false;
        }
        i += n;
    }
    return true;
}

/* Appends @s with each invalid byte replaced by U+FFFD. */
static void add_mended(struct actor_buf *out, const char *s, size_t len)
{
    static const char replacement[] = "\xef\xbf\xbd";
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        size_t n = utf8_seq(p + i, len - i);
        if (n == 0) {
            actor_buf_add(out, replacement, 3);
            i++;
        } else {
            actor_buf_add(out, p + i, n);
            i += n;
        }
    }
}

/* ---- RFC 3339 ------------------------------------------------------------ */

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    /* Howard Hinnant's algorithm: days since 1970-01-01. */
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static bool digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return false;
        }
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

int store__rfc3339_us(const char *s, int64_t *us)
{
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int year, mon, day, hour, min, sec;
    if (!s || strnlen(s, 20) < 20 || !digits(s, 4, &year) || s[4] != '-' ||
        !digits(s + 5, 2, &mon) || s[7] != '-' || !digits(s + 8, 2, &day) ||
        (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
        !digits(s + 11, 2, &hour) || s[13] != ':' || !digits(s + 14, 2, &min) ||
        s[16] != ':' || !digits(s + 17, 2, &sec)) {
        return -EINVAL;
    }
    bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    if (year < 1 || mon < 1 || mon > 12 || day < 1 ||
        day > mdays[mon - 1] - (mon == 2 && !leap) || hour > 23 || min > 59 ||
        sec > 60) {
        return -EINVAL;
    }
    const char *p = s + 19;
    int64_t frac = 0;
    if (*p == '.') {
        int n = 0;
        for (p++; *p >= '0' && *p <= '9'; p++, n++) {
            if (n < 6) {
                frac = frac * 10 + (*p - '0');
            }
        }
        if (n == 0) {
            return -EINVAL;
        }
        for (; n < 6; n++) {
            frac *= 10;
        }
    }
    int offset = 0; /* minutes east of UTC */
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int oh, om;
        if (!digits(p + 1, 2, &oh) || p[3] != ':' || !digits(p + 4, 2, &om) ||
            oh > 23 || om > 59) {
            return -EINVAL;
        }
        offset = (oh * 60 + om) * (*p == '-' ? -1 : 1);
        p += 6;
    } else {
        return -EINVAL;
    }
    if (*p != '\0') {
        return -EINVAL;
    }
    /* A leap second (:60) lands on the next second, as PostgreSQL does. */
    int64_t secs = days_from_civil(year, (unsigned)mon, (unsigned)day) * 86400 +
                   hour * 3600 + min * 60 + sec - (int64_t)offset * 60;
    *us = secs * 1000000 + frac;
    return 0;
}

/* ---- field encoders ------------------------------------------------------ */

static void put_u16(struct actor_buf *out, uint16_t v)
{
    unsigned char b[2] = {(unsigned char)(v >> 8), (unsigned char)v};
    actor_buf_add(out, b, sizeof(b));
}

static void put_u32(struct actor_buf *out, uint32_t v)
{
    unsigned char b[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 8), (unsigned char)v};
    actor_buf_add(out, b, sizeof(b));
}

static void be64(unsigned char *b, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        b[i] = (unsigned char)v;
        v >>= 8;
    }
}

static void put_null(struct actor_buf *out)
{
    put_u32(out, UINT32_MAX);
}

static void put_int8(struct actor_buf *out, int64_t v)
{
    unsigned char b[12] = {0, 0, 0, 8};
    be64(b + 4, (uint64_t)v);
    actor_buf_add(out, b, sizeof(b));
}

static void put_bool(struct actor_buf *out, bool v)
{
    unsigned char b[5] = {0, 0, 0, 1, v ? 1 : 0};
    actor_buf_add(out, b, sizeof(b));
}

/* A field of @len bytes of @s, after the optional @prefix byte; text is
 * mended to valid UTF-8, bytea is taken as it is. */
static void put_field(struct actor_buf *out, const void *s, size_t len,
                      bool text, int prefix)
{
    size_t at = out->len;
    put_u32(out, 0); /* the length, written below */
    if (prefix >= 0) {
        actor_buf_char(out, (char)prefix);
    }
    if (!text || store__utf8_is_valid(s, len)) {
        actor_buf_add(out, s, len);
    } else {
        add_mended(out, s, len);
    }
    if (out->err) {
        return;
    }
    size_t n = out->len - at - 4;
    if (n > INT32_MAX) {
        out->err = -EINVAL;
        return;
    }
    unsigned char b[4] = {(unsigned char)(n >> 24), (unsigned char)(n >> 16),
                          (unsigned char)(n >> 8), (unsigned char)n};
    memcpy(out->data + at, b, 4);
}

static void put_text(struct actor_buf *out, const char *s)
{
    if (!s) {
        put_null(out);
    } else {
        put_field(out, s, strlen(s), true, -1);
    }
}

static void put_ts_us(struct actor_buf *out, int64_t unix_us)
{
    put_int8(out, unix_us - PG_EPOCH_MS * 1000);
}

static bool ms_in_range(int64_t ms)
{
    return ms >= TS_MIN_MS && ms <= TS_MAX_MS;
}

/* An int8 column holding one of our uint64 counters. */
static void put_u63(struct actor_buf *out, uint64_t v)
{
    if (v > INT64_MAX) {
        out->err = out->err ? out->err : -EINVAL;
        return;
    }
    put_int8(out, (int64_t)v);
}

/* numeric: ndigits, weight, sign, dscale, then base-10000 digits. */
static void put_numeric_u64(struct actor_buf *out, uint64_t v)
{
    uint16_t digit[5];
    int n = 0;
    for (uint64_t x = v; x > 0; x /= 10000) {
        digit[n++] = (uint16_t)(x % 10000);
    }
    put_u32(out, (uint32_t)(8 + 2 * n));
    put_u16(out, (uint16_t)n);
    put_u16(out, (uint16_t)(n > 0 ? n - 1 : 0));
    put_u16(out, 0); /* positive */
    put_u16(out, 0); /* no fraction digits */
    for (int i = n - 1; i >= 0; i--) {
        put_u16(out, digit[i]);
    }
}

/* ---- rows ---------------------------------------------------------------- */

static const char *feed_name(uint8_t feed)
{
    switch (feed) {
    case MATCH_FEED_LIVE:
        return "live";
    case MATCH_FEED_STALE:
        return "stale";
    case MATCH_FEED_OFFLINE:
        return "offline";
    default:
        return NULL;
    }
}

static int put_team(struct actor_buf *out, int8_t team)
{
    switch (team) {
    case EVENT_TEAM_NONE:
        put_null(out);
        return 0;
    case EVENT_TEAM_HOME:
        put_text(out, "home");
        return 0;
    case EVENT_TEAM_AWAY:
        put_text(out, "away");
        return 0;
    default:
        return -EINVAL;
    }
}

/* An integer (int4) column: minute, stoppage; negative is absent. */
static void put_count(struct actor_buf *out, int32_t v)
{
    if (v < 0) {
        put_null(out);
        return;
    }
    put_u32(out, 4);
    put_u32(out, (uint32_t)v);
}

/* What the schema needs of an image, checked when it is put, so that
 * encoding it later cannot fail on it. */
static bool match_is_valid(const struct match_image *img)
{
    return img->id && feed_name(img->feed) && img->version > 0 &&
           img->version <= INT64_MAX && ms_in_range(img->updated_ms);
}

static void encode_match(struct actor_buf *out, const struct match_image *img,
                         const char *snapshot, size_t snapshot_len)
{
    put_u16(out, 19);
    put_text(out, img->id);
    put_u63(out, img->version);
    put_text(out, img->sport);
    put_text(out, img->competition);
    put_text(out, img->home);
    put_text(out, img->away);
    int64_t start_us;
    if (img->start && store__rfc3339_us(img->start, &start_us) == 0) {
        put_ts_us(out, start_us);
    } else {
        put_null(out);
    }
    put_text(out, img->phase);
    /* Time and running each NULL when never given: a clock that only
     * said it runs, or only its time, reads back the same. */
    if (img->clock_seconds >= 0) {
        char clock[24];
        snprintf(clock, sizeof(clock), "%02d:%02d", img->clock_seconds / 60,
                 img->clock_seconds % 60);
        put_text(out, clock);
    } else {
        put_null(out);
    }
    if (img->clock_running == 0 || img->clock_running == 1) {
        put_bool(out, img->clock_running == 1);
    } else {
        put_null(out);
    }
    if (img->has_score) {
        put_int8(out, img->score_home);
        put_int8(out, img->score_away);
    } else {
        put_null(out);
        put_null(out);
    }
    put_text(out, feed_name(img->feed));
    put_bool(out, img->gap);
    put_ts_us(out, img->updated_ms * 1000);
    put_field(out, snapshot, snapshot_len, true, 1);
    put_text(out, img->start);
    if (img->has_msgnr) {
        put_numeric_u64(out, img->msgnr);
    } else {
        put_null(out);
    }
    put_text(out, img->source);
}

/*
 * The incidents row: the last two fields (deleted: bool, version: int8) sit
 * at fixed offsets from the end, so a removal can be written into a row
 * already held.
 */
#define INCIDENT_DELETED_FROM_END (8 + 4 + 1)
#define INCIDENT_VERSION_FROM_END 8

static int encode_incident(struct actor_buf *out, const char *match_id,
                           const struct match_incident *inc, bool deleted,
                           uint64_t version)
{
    if (version == 0) {
        return -EINVAL;
    }
    put_u16(out, 11);
    put_text(out, match_id);
    put_text(out, inc->id);
    put_text(out, inc->type);
    if (put_team(out, inc->team) != 0) {
        return -EINVAL;
    }
    put_count(out, inc->minute);
    put_count(out, inc->stoppage);
    put_text(out, inc->player);
    put_text(out, inc->assist);
    if (inc->confirmed == EVENT_ABSENT) {
        put_null(out);
    } else {
        put_bool(out, inc->confirmed == 1);
    }
    put_bool(out, deleted);
    put_u63(out, version);
    return out->err;
}

/* ---- the batch ----------------------------------------------------------- */

static void copy_init(struct store__copy *c)
{
    actor_buf_init(&c->buf);
    c->rows = 0;
}

struct store__batch *store__batch_new(size_t raw_max,
                                      const struct store__image_ops *ops)
{
    struct store__batch *b = store__calloc(1, sizeof(*b));
    if (!b) {
        return NULL;
    }
    copy_init(&b->events);
    copy_init(&b->updates);
    copy_init(&b->rejected);
    copy_init(&b->rejected_seq);
    store__map_init(&b->matches);
    store__map_init(&b->incidents);
    store__map_init(&b->offsets);
    actor_buf_init(&b->scratch);
    actor_buf_init(&b->key);
    b->raw_max = raw_max ? raw_max : STORE_REJECTED_RAW_MAX;
    b->ops = *ops;
    return b;
}

static void free_rows(struct store__map *m)
{
    for (uint32_t i = 0; i < m->n; i++) {
        free(m->entries[i].data);
    }
}

void store__batch_reset(struct store__batch *b)
{
    actor_buf_reset(&b->events.buf);
    actor_buf_reset(&b->updates.buf);
    actor_buf_reset(&b->rejected.buf);
    actor_buf_reset(&b->rejected_seq.buf);
    b->events.rows = b->updates.rows = b->rejected.rows = 0;
    b->rejected_seq.rows = 0;
    for (uint32_t i = 0; i < b->matches.n; i++) {
        b->ops.unref(b->matches.entries[i].data);
    }
    free_rows(&b->incidents);
    store__map_clear(&b->matches);
    store__map_clear(&b->incidents);
    store__map_clear(&b->offsets);
    b->bytes = 0;
}

void store__batch_forget_events(struct store__batch *b)
{
    struct store__copy *logs[] = {&b->events, &b->rejected_seq};
    for (size_t i = 0; i < 2; i++) {
        b->bytes -= logs[i]->buf.len;
        actor_buf_reset(&logs[i]->buf);
        logs[i]->rows = 0;
    }
    store__map_clear(&b->offsets);
}

void store__batch_free(struct store__batch *b)
{
    if (!b) {
        return;
    }
    store__batch_reset(b);
    actor_buf_release(&b->events.buf);
    actor_buf_release(&b->updates.buf);
    actor_buf_release(&b->rejected.buf);
    actor_buf_release(&b->rejected_seq.buf);
    store__map_release(&b->matches);
    store__map_release(&b->incidents);
    store__map_release(&b->offsets);
    actor_buf_release(&b->scratch);
    actor_buf_release(&b->key);
    free(b);
}

uint32_t store__batch_rows(const struct store__batch *b)
{
    return b->events.rows + b->updates.rows + b->rejected.rows +
           b->rejected_seq.rows + b->matches.n + b->incidents.n + b->offsets.n;
}

bool store__batch_is_empty(const struct store__batch *b)
{
    return store__batch_rows(b) == 0;
}

/* Ends a log row begun at @at: counts it, or takes it back on error. */
static int end_row(struct store__batch *b, struct store__copy *c, size_t at,
                   int err)
{
    if (err == 0 && c->buf.err) {
        err = c->buf.err;
    }
    if (err != 0) {
        c->buf.len = at;
        c->buf.err = 0;
        return err;
    }
    c->rows++;
    b->bytes += c->buf.len - at;
    return 0;
}

int store__batch_add_event(struct store__batch *b, const struct event *ev)
{
    struct actor_buf *out = &b->events.buf;
    size_t at = out->len;
    int err = 0;
    if (!ev->source || !ms_in_range(ev->received_ms)) {
        err = -EINVAL;
        goto out;
    }
    put_u16(out, 5);
    put_text(out, ev->source);
    put_u63(out, ev->seq);
    put_ts_us(out, ev->received_ms * 1000);
    if (ev->sent_ms != EVENT_ABSENT && ms_in_range(ev->sent_ms)) {
        put_ts_us(out, ev->sent_ms * 1000);
    } else {
        put_null(out);
    }
    put_field(out, ev->raw, ev->raw_len, false, -1);
out:
    return end_row(b, &b->events, at, err);
}

int store__batch_add_update(struct store__batch *b, const struct update *up,
                            const char *source, uint64_t seq)
{
    struct actor_buf *out = &b->updates.buf;
    size_t at = out->len;
    int err = 0;
    if (up->image->version == 0) {
        err = -EINVAL;
        goto out;
    }
    put_u16(out, 5);
    put_text(out, up->image->id);
    put_u63(out, up->image->version);
    put_field(out, up->json, up->json_len, true, -1);
    put_text(out, source);
    if (source) {
        put_u63(out, seq);
    } else {
        put_null(out);
    }
out:
    return end_row(b, &b->updates, at, err);
}

int store__batch_add_rejected(struct store__batch *b, uint64_t id,
                              const struct store_rejected *rej)
{
    struct store__copy *c = rej->has_seq ? &b->rejected_seq : &b->rejected;
    struct actor_buf *out = &c->buf;
    size_t at = out->len;
    int err = 0;
    if (!rej->reason || !ms_in_range(rej->received_ms) || id == 0) {
        err = -EINVAL;
        goto out;
    }
    size_t keep = rej->raw_len < b->raw_max ? rej->raw_len : b->raw_max;
    uint64_t size = rej->size > rej->raw_len ? rej->size : rej->raw_len;
    put_u16(out, 7);
    put_u63(out, id);
    put_text(out, rej->source);
    if (rej->has_seq) {
        put_u63(out, rej->seq);
    } else {
        put_null(out);
    }
    put_ts_us(out, rej->received_ms * 1000);
    put_text(out, rej->reason);
    put_u63(out, size);
    put_field(out, rej->raw, keep, false, -1);
out:
    return end_row(b, c, at, err);
}

/*
 * Keeps the row encoded in b->scratch as the one for @key in @m, replacing
 * the row held before. The row is copied before the map is touched, so a
 * failure leaves both as they were.
 */
static int keep_row(struct store__batch *b, struct store__map *m,
                    const char *key, size_t key_len, uint64_t version)
{
    if (b->scratch.err) {
        return b->scratch.err;
    }
    size_t len = b->scratch.len;
    void *data = store__malloc(len);
    if (!data) {
        return -ENOMEM;
    }
    memcpy(data, b->scratch.data, len);
    bool added;
    struct store__map_entry *e = store__map_put(m, key, key_len, &added);
    if (!e) {
        free(data);
        return -ENOMEM;
    }
    b->bytes = b->bytes - e->size + len;
    free(e->data);
    e->data = data;
    e->size = len;
    e->value = version;
    return 0;
}

int store__batch_put_match(struct store__batch *b, struct match_image *img)
{
    size_t len = strlen(img->id);
    struct store__map_entry *e = store__map_get(&b->matches, img->id, len);
    if (e && e->value >= img->version) {
        return 0;
    }
    if (!match_is_valid(img)) {
        return -EINVAL;
    }
    if (!e) {
        bool added;
        e = store__map_put(&b->matches, img->id, len, &added);
        if (!e) {
            return -ENOMEM;
        }
    }
    if (e->data) {
        b->ops.unref(e->data);
    }
    e->data = match_image_ref(img);
    e->value = img->version;
    return 0;
}

/* Builds "match\0incident" in b->key. */
static int incident_key(struct store__batch *b, const char *match_id,
                        const char *incident_id)
{
    actor_buf_reset(&b->key);
    actor_buf_str(&b->key, match_id);
    actor_buf_char(&b->key, '\0');
    actor_buf_str(&b->key, incident_id);
    return b->key.err;
}

int store__batch_put_incident(struct store__batch *b, const char *match_id,
                              const struct match_incident *inc)
{
    if (incident_key(b, match_id, inc->id) != 0) {
        return -ENOMEM;
    }
    const struct store__map_entry *e =
        store__map_get(&b->incidents, b->key.data, b->key.len);
    if (e && e->value > inc->version) {
        return 0;
    }
    actor_buf_reset(&b->scratch);
    int err = encode_incident(&b->scratch, match_id, inc, false, inc->version);
    if (err != 0) {
        return err;
    }
    return keep_row(b, &b->incidents, b->key.data, b->key.len, inc->version);
}

int store__batch_delete_incident(struct store__batch *b, const char *match_id,
                                 const char *incident_id, uint64_t version)
{
    if (version == 0 || version > INT64_MAX) {
        return -EINVAL;
    }
    if (incident_key(b, match_id, incident_id) != 0) {
        return -ENOMEM;
    }
    struct store__map_entry *e =
        store__map_get(&b->incidents, b->key.data, b->key.len);
    if (e) {
        if (e->value <= version) {
            unsigned char *row = e->data;
            row[e->size - INCIDENT_DELETED_FROM_END] = 1;
            be64(row + e->size - INCIDENT_VERSION_FROM_END, version);
            e->value = version;
        }
        return 0;
    }
    const struct match_incident gone = {
        .id = incident_id,
        .minute = EVENT_ABSENT,
        .stoppage = EVENT_ABSENT,
        .team = EVENT_TEAM_NONE,
    };
    actor_buf_reset(&b->scratch);
    int err = encode_incident(&b->scratch, match_id, &gone, true, version);
    if (err != 0) {
        return err;
    }
    return keep_row(b, &b->incidents, b->key.data, b->key.len, version);
}

int store__batch_advance(struct store__batch *b, const char *source,
                         uint64_t seq)
{
    if (seq > INT64_MAX) {
        return -EINVAL;
    }
    bool added;
    struct store__map_entry *e =
        store__map_put(&b->offsets, source, strlen(source), &added);
    if (!e) {
        return -ENOMEM;
    }
    if (e->value < seq) {
        e->value = seq;
    }
    return 0;
}

long store__batch_encode(struct store__batch *b, const struct store__map *m,
                         struct actor_buf *out)
{
    long rows = 0;
    if (m == &b->matches) {
        for (uint32_t i = 0; i < m->n; i++) {
            const struct match_image *img = m->entries[i].data;
            actor_buf_reset(&b->scratch);
            b->ops.json(img, &b->scratch);
            if (b->scratch.err) {
                /* @out lacks this row now: it must not be written. */
                out->err = b->scratch.err;
                return b->scratch.err;
            }
            encode_match(out, img, b->scratch.data, b->scratch.len);
        }
        rows = m->n;
    } else if (m) {
        for (uint32_t i = 0; i < m->n; i++) {
            actor_buf_add(out, m->entries[i].data, m->entries[i].size);
        }
        rows = m->n;
    } else {
        for (uint32_t i = 0; i < b->offsets.n; i++) {
            const struct store__map_entry *e = &b->offsets.entries[i];
            if (e->value == 0) {
                continue;
            }
            put_u16(out, 2);
            put_field(out, e->key, e->len, true, -1);
            put_u63(out, e->value);
            rows++;
        }
    }
    return out->err ? out->err : rows;
}

int store__batch_add_change(struct store__batch *b, const struct update *up,
                            const char *source, uint64_t seq)
{
    struct match_image *img = up->image;
    int err = store__batch_add_update(b, up, source, seq);
    if (err == 0) {
        err = store__batch_put_match(b, img);
    }
    for (uint32_t i = 0; err == 0 && i < up->n_upserted; i++) {
        err = store__batch_put_incident(b, img->id, up->upserted[i]);
    }
    for (uint32_t i = 0; err == 0 && i < up->n_deleted; i++) {
        err = store__batch_delete_incident(b, img->id, up->deleted[i],
                                           img->version);
    }
    return err;
}
