/* tests/fuzz/wsbench_read_fuzz.c - libFuzzer target for scorewire-wsbench's
 * frame reader: in bounds on any bytes, the lean reader the same with every
 * classifier, the lean and full readers alike on valid JSON, and the RFC 3339
 * parser what a plain reference says. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The fuzz build links actor/ ingest/ model/ store/ only: take the reader
 * and the tokenizer it shares with notify in whole. */
#include "notify/notify_json.c"
#include "tools/wsbench/wsbench_read.c"

#include "tests/fuzz/fuzz_check.h"
#include "tests/wsbench_test_util.h"

/*
 * An input is frames separated by 0x1e (ASCII RS): a control character,
 * which valid JSON holds nowhere, so every valid frame is one the server
 * could send, and versions carry from frame to frame as on a connection.
 * Each frame is read from a copy of its exact size, so ASan sees a read
 * past its end.
 *
 * Frames the tokenizer accepts go to the full reader (with views) and to a
 * lean reader per classifier (plain C, SSE2, AVX2 where the CPU has it);
 * after each, all four must have counted alike: every counter, latency
 * samples, the last error, and the same ids at the same versions
 * (twb_same(), as tests/wsbench_test.c has it). The rest go to three
 * more lean readers, one per classifier, which must count alike too: the
 * classifiers mark the same bits for any bytes, so the walker takes the
 * same path.
 * After the last frame the full reader's view is dumped, and the dump must
 * itself be strict JSON.
 *
 * Every frame, and every string in a valid one, is also an RFC 3339 time
 * to wb_parse_rfc3339_ms(): alone, with the minute of the times before
 * remembered, and with its own (the word-at-a-time seconds of the
 * server's form); each must be what ref_rfc3339_ms() says.
 */

#define MAX_IN (1u << 16) /* bytes; longer inputs add time, not paths */
#define SEP    0x1e
#define NOW_US 1795273445123000LL /* 2026-11-21T15:04:05.123Z */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A reader and the view of the connection it reads for. */
struct side {
    struct wb_reader r;
    struct wb_conn_view v;
    const char *name;
};

static const enum wb_simd simds[] = {WB_SIMD_NONE, WB_SIMD_SSE2, WB_SIMD_AVX2};
#define N_SIMD (sizeof(simds) / sizeof(simds[0]))

static struct side full;          /* valid frames */
static struct side lean[N_SIMD];  /* valid frames, by classifier */
static struct side loose[N_SIMD]; /* the frames the tokenizer refuses */
static struct side scanned;       /* those too, never from its memo */
static struct notify_json_tok *toks;
static uint32_t max_toks;

static void side_init(struct side *s, bool keep_views, enum wb_simd simd,
                      const char *name)
{
    CHECK(wb_reader_init(&s->r, keep_views) == 0);
    s->r.simd = simd;
    s->r.measure = true;
    s->name = name;
}

/* Forgets what the previous input read, so an input reads the same alone.
 * The histogram's buckets stay: only quantiles read them, and clearing
 * their 2.4 MB per reader and input would be most of the run. */
static void side_reset(struct side *s)
{
    wb_view_release(&s->v);
    wb_ids_release(&s->r.ids);
    s->r.memo.valid = false; /* its messages index the ids just emptied */
    s->r.counts = (struct wb_counts){0};
    s->r.hist.count = 0;
    s->r.hist.max_us = 0;
    s->r.sent_minute = (struct wb_minute){0};
    s->r.last_error[0] = '\0';
}

static void setup(void)
{
    side_init(&full, true, WB_SIMD_AVX2, "full");
    static const char *const names[N_SIMD][2] = {
        {"lean plain C", "loose plain C"},
        {"lean SSE2", "loose SSE2"},
        {"lean AVX2", "loose AVX2"},
    };
    for (size_t i = 0; i < N_SIMD; i++) {
        side_init(&lean[i], false, simds[i], names[i][0]);
        side_init(&loose[i], false, simds[i], names[i][1]);
    }
    side_init(&scanned, false, WB_SIMD_NONE, "scanned plain C");
    max_toks = 4096; /* tokenize() grows it */
    toks = malloc(max_toks * sizeof(*toks));
    CHECK(toks);
}

/* @a and @b, having read frame @f, must agree (twb_same()). */
static void agree(const struct side *a, const struct side *b, const char *f,
                  size_t len)
{
    if (!twb_same(&a->r, &a->v, &b->r, &b->v)) {
        char x[512], y[512];
        twb_print_frame(f, len);
        fprintf(stderr, "%s: %s\n%s: %s\n", a->name,
                twb_counted(&a->r, x, sizeof(x)), b->name,
                twb_counted(&b->r, y, sizeof(y)));
        abort();
    }
}

/* Reads @f with @s: never an error, one frame more. */
static void read_one(struct side *s, const char *f, size_t len)
{
    uint64_t frames = s->r.counts.frames;
    CHECK(wb_read_frame(&s->r, &s->v, f, len, NOW_US) == 0);
    CHECK(s->r.counts.frames == frames + 1);
}

/* Tokenizes @len bytes at @f into toks, growing it. Returns what
 * notify_json_parse() does, but -ENOSPC. */
static int tokenize(const char *f, size_t len)
{
    int n;
    while ((n = notify_json_parse(f, len, toks, max_toks, NULL)) == -ENOSPC) {
        max_toks *= 2;
        toks = realloc(toks, max_toks * sizeof(*toks));
        CHECK(toks);
    }
    return n;
}

/* ---- RFC 3339 ----------------------------------------------------------- */

/* Whether the @n bytes at @s fit @tmpl, where '9' stands for a digit and
 * 'T' for the date and time's separator. */
static bool ref_fits(const char *s, const char *tmpl, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        bool ok = tmpl[i] == '9'   ? s[i] >= '0' && s[i] <= '9'
                  : tmpl[i] == 'T' ? s[i] == 'T' || s[i] == 't' || s[i] == ' '
                                   : s[i] == tmpl[i];
        if (!ok) {
            return false;
        }
    }
    return true;
}

/* The number the @n digits at @s write. */
static int ref_number(const char *s, size_t n)
{
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

/*
 * wb_parse_rfc3339_ms() the plain way, as its header and unit tests have
 * it: "YYYY-MM-DD", 'T', 't' or ' ', "HH:MM:SS" (a leap second 60 allowed),
 * a fraction of one digit or more (milliseconds: its first three), then
 * 'Z', 'z' or "+HH:MM" / "-HH:MM", and nothing after. Like the reader it
 * does not hold the day to its month (timegm() rolls it over the same way)
 * nor the offset to 23:59: wsbench reads the server's times, and those are
 * right.
 */
static int ref_rfc3339_ms(const char *s, size_t len, int64_t *ms)
{
    if (len < 19 || !ref_fits(s, "9999-99-99T99:99:99", 19)) {
        return -EINVAL;
    }
    struct tm tm = {.tm_year = ref_number(s, 4) - 1900,
                    .tm_mon = ref_number(s + 5, 2) - 1,
                    .tm_mday = ref_number(s + 8, 2),
                    .tm_hour = ref_number(s + 11, 2),
                    .tm_min = ref_number(s + 14, 2),
                    .tm_sec = ref_number(s + 17, 2)};
    if (tm.tm_mon > 11 || tm.tm_mon < 0 || tm.tm_mday < 1 || tm.tm_mday > 31 ||
        tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60) {
        return -EINVAL;
    }
    const char *zone = s + 19, *end = s + len;
    int frac_ms = 0;
    if (zone < end && *zone == '.') {
        size_t n = 1;
        while (zone + n < end && ref_fits(zone + n, "9", 1)) {
            n++;
        }
        if (n == 1) {
            return -EINVAL;
        }
        char ms3[4] = "000";
        memcpy(ms3, zone + 1, n - 1 < 3 ? n - 1 : 3);
        frac_ms = ref_number(ms3, 3);
        zone += n;
    }
    int64_t offset_s;
    if (end - zone == 1 && (*zone == 'Z' || *zone == 'z')) {
        offset_s = 0;
    } else if (end - zone == 6 && (*zone == '+' || *zone == '-') &&
               ref_fits(zone + 1, "99:99", 5)) {
        offset_s =
            (ref_number(zone + 1, 2) * 3600 + ref_number(zone + 4, 2) * 60) *
            (*zone == '-' ? -1 : 1);
    } else {
        return -EINVAL;
    }
    *ms = ((int64_t)timegm(&tm) - offset_s) * 1000 + frac_ms;
    return 0;
}

/* @len bytes at @f as a time, read alone, with the minute of the times
 * before remembered in @last, and then with its own: each must be what
 * the reference says. */
static void check_time(const char *f, size_t len, struct wb_minute *last)
{
    int64_t want = 0, got[3] = {0};
    int rc = ref_rfc3339_ms(f, len, &want), rc_got[3];
    rc_got[0] = wb_parse_rfc3339_ms(f, len, NULL, &got[0]);
    rc_got[1] = wb_parse_rfc3339_ms(f, len, last, &got[1]);
    rc_got[2] = wb_parse_rfc3339_ms(f, len, last, &got[2]);
    for (int i = 0; i < 3; i++) {
        if (rc_got[i] != rc || (rc == 0 && got[i] != want)) {
            twb_print_frame(f, len);
            fprintf(stderr,
                    "reference %d %lld; alone %d %lld, minute before %d "
                    "%lld, own minute %d %lld\n",
                    rc, (long long)want, rc_got[0], (long long)got[0],
                    rc_got[1], (long long)got[1], rc_got[2], (long long)got[2]);
            abort();
        }
    }
}

/* Reads frame @f with the readers, twice: the second time the lean
 * readers take it from their memo, and must still agree. The frame, and
 * each string in it (where the server's times are), is also a time to
 * check_time(). */
static void read_frame(const char *f, size_t len, struct wb_minute *last)
{
    int n = tokenize(f, len);
    check_time(f, len, last);
    if (n > 0) {
        for (int i = 0; i < n; i++) {
            if (toks[i].type == NOTIFY_JSON_STRING) {
                check_time(f + toks[i].start, toks[i].len, last);
            }
        }
    }
    for (int again = 0; again < 2; again++) {
        /* The reference: the full reader, or for what it refuses a lean
         * one that always scans. */
        struct side *ref = n > 0 ? &full : &scanned;
        scanned.r.memo.valid = false;
        read_one(ref, f, len);
        for (size_t i = 0; i < N_SIMD; i++) {
            struct side *s = n > 0 ? &lean[i] : &loose[i];
            read_one(s, f, len);
            agree(ref, s, f, len);
        }
    }
}

/* The full reader's view, as --dump writes it: strict JSON, an object. */
static void check_dump(void)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    CHECK(out);
    CHECK(wb_view_dump(&full.r, &full.v, out) == 0);
    CHECK(fclose(out) == 0);
    if (tokenize(text, len) <= 0 || toks[0].type != NOTIFY_JSON_OBJECT) {
        fprintf(stderr, "dump is not a JSON object:\n%s\n", text);
        abort();
    }
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool ready;
    if (!ready) {
        setup();
        ready = true;
    }
    if (size > MAX_IN) {
        return 0;
    }
    side_reset(&full);
    for (size_t i = 0; i < N_SIMD; i++) {
        side_reset(&lean[i]);
        side_reset(&loose[i]);
    }
    side_reset(&scanned);
    struct wb_minute last = {0};
    const char *s = (const char *)data, *end = s + size;
    for (;;) {
        const char *sep = s < end ? memchr(s, SEP, (size_t)(end - s)) : NULL;
        size_t len = (size_t)((sep ? sep : end) - s);
        char *f = malloc(len ? len : 1);
        CHECK(f);
        memcpy(f, s, len);
        read_frame(f, len, &last);
        free(f);
        if (!sep) {
            break;
        }
        s = sep + 1;
    }
    check_dump();
    return 0;
}
