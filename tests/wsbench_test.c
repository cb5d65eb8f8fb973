/* tests/wsbench_test.c - scorewire-wsbench's reading of server frames:
 * versions and gaps, latency from `sent`, and the final view it dumps. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>

#include <cmocka.h>

#include "notify/notify.h"
#include "tests/wsbench_test_util.h"
#include "tools/wsbench/wsbench.h"

static void test_rfc3339(void **state)
{
    (void)state;
    int64_t ms;
    const char *ok[][2] = {
        {"1970-01-01T00:00:00Z", "0"},
        {"2026-11-21T15:04:05.123Z", "1795273445123"},
        {"2026-11-21T15:04:05.1Z", "1795273445100"},
        {"2026-11-21T15:04:05.123456Z", "1795273445123"},
        {"2026-11-21T16:04:05.123+01:00", "1795273445123"},
        {"2026-11-21T14:34:05.123-00:30", "1795273445123"},
        {"2000-02-29T00:00:00Z", "951782400000"},
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        assert_int_equal(
            wb_parse_rfc3339_ms(ok[i][0], strlen(ok[i][0]), NULL, &ms), 0);
        if (ms != strtoll(ok[i][1], NULL, 10)) {
            fail_msg("%s: %lld", ok[i][0], (long long)ms);
        }
    }
    const char *bad[] = {"",
                         "2026-11-21",
                         "2026-11-21T15:04:05",
                         "2026-11-21T15:04:05.Z",
                         "2026-13-21T15:04:05Z",
                         "2026-11-21T25:04:05Z",
                         "2026-11-21T15:04:05Zx",
                         "2026-11-21T15:04:05+1:00"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (wb_parse_rfc3339_ms(bad[i], strlen(bad[i]), NULL, &ms) != -EINVAL) {
            fail_msg("accepted %s", bad[i]);
        }
    }
}

/* Every byte of a time in the server's form, changed to every value: read
 * with the minute remembered or not (its seconds then a word at a time),
 * it is what the same text with the zone written "+00:00" is (read byte
 * by byte). */
static void test_rfc3339_every_byte(void **state)
{
    (void)state;
    const char *base = "2026-11-21T15:04:05.123Z";
    int64_t want, ms, ms_cached, ms_slow;
    struct wb_minute last = {0};
    assert_int_equal(wb_parse_rfc3339_ms(base, 24, NULL, &want), 0);
    assert_true(want == 1795273445123LL);
    for (int i = 0; i < 24; i++) {
        for (int c = 0; c < 256; c++) {
            char text[24], slow[29];
            memcpy(text, base, sizeof(text));
            text[i] = (char)c;
            memcpy(slow, text, 23);
            memcpy(slow + 23, "+00:00", 6);
            int rc_slow = i == 23
                              ? (c == 'Z' || c == 'z' ? 0 : -EINVAL)
                              : wb_parse_rfc3339_ms(slow, 29, NULL, &ms_slow);
            if (i == 23) {
                ms_slow = want;
            }
            int rc = wb_parse_rfc3339_ms(text, 24, NULL, &ms);
            int64_t base_ms; /* remembers base's minute */
            assert_int_equal(wb_parse_rfc3339_ms(base, 24, &last, &base_ms), 0);
            int rc_cached = wb_parse_rfc3339_ms(text, 24, &last, &ms_cached);
            if (rc != rc_slow || rc_cached != rc_slow ||
                (rc == 0 && (ms != ms_slow || ms_cached != ms_slow))) {
                fail_msg("byte %d = 0x%02x: %d %lld, remembered %d %lld, "
                         "byte by byte %d %lld",
                         i, c, rc, (long long)ms, rc_cached,
                         (long long)ms_cached, rc_slow, (long long)ms_slow);
            }
        }
    }
    /* The minute remembered is still the right one. */
    assert_int_equal(wb_parse_rfc3339_ms(base, 24, &last, &ms), 0);
    assert_true(ms == want);
}

static void test_histogram(void **state)
{
    (void)state;
    struct wb_hist h;
    assert_int_equal(wb_hist_init(&h), 0);
    assert_true(wb_hist_quantile_ms(&h, 0.5) == 0);
    for (int i = 1; i <= 100; i++) {
        wb_hist_add(&h, i * 1000); /* 1 .. 100 ms */
    }
    double p50 = wb_hist_quantile_ms(&h, 0.50);
    double p99 = wb_hist_quantile_ms(&h, 0.99);
    assert_true(p50 >= 50 && p50 <= 51.1);
    assert_true(p99 >= 99 && p99 <= 100.1);
    assert_int_equal(h.max_us, 100000);
    wb_hist_add(&h, -5);                 /* clock skew: counted as 0 */
    wb_hist_add(&h, 3600LL * 1000000LL); /* beyond the range: last bucket */
    assert_int_equal(h.count, 102);
    wb_hist_reset(&h);
    assert_int_equal(h.count, 0);
    wb_hist_release(&h);
}

static void test_ids(void **state)
{
    (void)state;
    struct wb_ids ids = {0};
    char id[32];
    for (int i = 0; i < 1000; i++) {
        snprintf(id, sizeof(id), "sim:1:%d", i);
        assert_int_equal(wb_ids_get(&ids, id, strlen(id)), i);
    }
    assert_int_equal(wb_ids_get(&ids, "sim:1:500xyz", 9), 500);
    assert_int_equal(ids.n, 1000);
    wb_ids_release(&ids);
}

static int read_frame(struct wb_reader *r, struct wb_conn_view *v,
                      const char *text)
{
    return wb_read_frame(r, v, text, strlen(text), 0);
}

static void test_versions_gaps_and_orphans(void **state)
{
    (void)state;
    struct wb_reader r;
    struct wb_conn_view v = {0};
    assert_int_equal(wb_reader_init(&r, false), 0);
    /* A delta before any snapshot is an orphan. */
    read_frame(&r, &v, "{\"type\":\"delta\",\"id\":\"a\",\"version\":3}");
    assert_int_equal(r.counts.orphans, 1);
    read_frame(&r, &v,
               "[{\"type\":\"snapshot\",\"match\":{\"id\":\"a\","
               "\"version\":5}},{\"type\":\"delta\",\"id\":\"a\","
               "\"version\":6},{\"type\":\"feed\",\"source\":\"s\","
               "\"state\":\"live\"}]");
    assert_int_equal(r.counts.gaps, 0);
    assert_int_equal(r.counts.snapshots, 1);
    assert_int_equal(r.counts.deltas, 2);
    assert_int_equal(r.counts.feeds, 1);
    assert_int_equal(r.counts.frames, 2);
    read_frame(&r, &v, "{\"type\":\"delta\",\"id\":\"a\",\"version\":8}");
    assert_int_equal(r.counts.gaps, 1);
    /* A snapshot resets the version; then deltas go on from it. */
    read_frame(
        &r, &v,
        "{\"type\":\"snapshot\",\"match\":{\"id\":\"a\",\"version\":2}}");
    read_frame(&r, &v,
               "{\"type\":\"delta\",\"recovered\":true,\"id\":\"a\","
               "\"version\":3}");
    assert_int_equal(r.counts.gaps, 1);
    assert_int_equal(r.counts.recovered, 1);
    /* Not protocol JSON: counted, never fatal. */
    read_frame(&r, &v, "{\"type\":");
    read_frame(&r, &v, "[1]");
    read_frame(&r, &v, "{\"type\":\"delta\",\"id\":\"a\"}");
    assert_int_equal(r.counts.bad, 3);
    read_frame(
        &r, &v,
        "{\"type\":\"error\",\"reason\":\"unknown_op\",\"detail\":\"x\"}");
    assert_int_equal(r.counts.errors, 1);
    assert_non_null(strstr(r.last_error, "unknown_op"));
    wb_view_release(&v);
    wb_reader_release(&r);
}

static void test_latency_from_sent(void **state)
{
    (void)state;
    struct wb_reader r;
    struct wb_conn_view v = {0};
    assert_int_equal(wb_reader_init(&r, false), 0);
    r.measure = true;
    read_frame(&r, &v,
               "{\"type\":\"snapshot\",\"match\":{\"id\":\"a\","
               "\"version\":1}}");
    const char *d = "{\"type\":\"delta\",\"id\":\"a\",\"version\":2,"
                    "\"sent\":\"1970-01-01T00:00:01.000Z\"}";
    /* Received 25 ms after it was sent. */
    assert_int_equal(wb_read_frame(&r, &v, d, strlen(d), 1025000), 0);
    assert_int_equal(r.hist.count, 1);
    assert_int_equal(r.hist.max_us, 25000);
    wb_view_release(&v);
    wb_reader_release(&r);
}

/* ---- the lean reader against the full one ------------------------------
 *
 * The lean reader (counting only) skips what it does not count without
 * validating it; the full reader (with views) tokenizes strictly. On every
 * frame the full reader accepts, the two must count alike; on the rest the
 * lean one must stay in bounds and count the frame bad where it cannot
 * follow it. A pair of readers gets only frames the tokenizer accepts, so
 * their version state stays the same; anything else goes to a third,
 * lean reader of its own.
 */

struct pair {
    struct wb_reader lean, full;
    struct wb_conn_view lv, fv;
    struct notify_json_tok *toks; /* to tell valid frames */
    uint32_t max_toks;
};

#define NOW_US 1795273445123000LL /* 2026-11-21T15:04:05.123Z */

/* The classifier level a lean test runs with: its cmocka state. */
static enum wb_simd simd_of(void **state)
{
    return *(const enum wb_simd *)*state;
}

static void pair_init(struct pair *p, enum wb_simd simd)
{
    *p = (struct pair){.max_toks = 1u << 16};
    assert_int_equal(wb_reader_init(&p->lean, false), 0);
    p->lean.simd = simd;
    assert_int_equal(wb_reader_init(&p->full, true), 0);
    p->lean.measure = p->full.measure = true;
    p->toks = malloc(p->max_toks * sizeof(*p->toks));
    assert_non_null(p->toks);
}

static void pair_release(struct pair *p)
{
    wb_view_release(&p->lv);
    wb_view_release(&p->fv);
    wb_reader_release(&p->lean);
    wb_reader_release(&p->full);
    free(p->toks);
}

static bool is_valid(struct pair *p, const char *f, size_t len)
{
    return notify_json_parse(f, len, p->toks, p->max_toks, NULL) > 0;
}

/* Both readers read @f; they must agree (twb_same()). */
static void agree(struct pair *p, const char *f, size_t len)
{
    assert_int_equal(wb_read_frame(&p->lean, &p->lv, f, len, NOW_US), 0);
    assert_int_equal(wb_read_frame(&p->full, &p->fv, f, len, NOW_US), 0);
    if (!twb_same(&p->lean, &p->lv, &p->full, &p->fv)) {
        char l[512], u[512];
        twb_print_frame(f, len);
        fail_msg("lean: %s\nfull: %s", twb_counted(&p->lean, l, sizeof(l)),
                 twb_counted(&p->full, u, sizeof(u)));
    }
}

static void agree_str(struct pair *p, const char *f)
{
    agree(p, f, strlen(f));
}

/* The lean and full readers agree on every counter, whatever the strings
 * hold. */
static void test_lean_and_full_readers_agree(void **state)
{
    static const char *const frames[] = {
        "{\"type\":\"feed\",\"source\":\"s\",\"state\":\"live\"}",
        "[{\"type\":\"snapshot\",\"match\":{\"id\":\"m\",\"version\":4,"
        "\"fixture\":{\"home\":\"A \\\"q\\\" {[\",\"away\":\"B\\\\\"},"
        "\"incidents\":[{\"id\":\"x\",\"type\":\"goal\",\"version\":99}]},"
        "\"version\":77},"
        "{\"type\":\"snapshot\",\"match\":{\"version\":1,\"id\":\"n\"}}]",
        " [ {\"type\" : \"delta\" , \"id\" : \"m\" , \"version\" : 5 ,"
        "\"sent\":\"2026-11-21T15:04:05.123Z\",\"changes\":{\"id\":\"z\","
        "\"version\":1,\"clock\":{\"time\":\"1:00\",\"running\":true}},"
        "\"incidents\":{\"upsert\":[{\"id\":\"i\\u0041\",\"player\":"
        "\"\\\\\\\\\"}],\"delete\":[\"]\"]}} ,"
        "{\"id\":\"n\",\"type\":\"delta\",\"recovered\":true,\"version\":2}]",
        "{\"type\":\"delta\",\"id\":\"m\",\"version\":9,\"type\":\"pong\"}",
        "[{\"type\":\"delta\",\"id\":\"q\",\"version\":1},"
        "{\"type\":\"pong\",\"id\":7},{\"type\":\"error\",\"reason\":"
        "\"unknown_op\",\"detail\":\"}\"}]",
        "{\"type\":\"delta\",\"id\":\"m\",\"version\":-1}",
        "{\"type\":\"delta\",\"id\":\"m\\\"\",\"version\":10}",
        "{\"type\":\"snapshot\",\"match\":[]}",
        "[]",
        "{}",
    };
    struct pair p;
    pair_init(&p, simd_of(state));
    for (size_t i = 0; i < sizeof(frames) / sizeof(frames[0]); i++) {
        agree_str(&p, frames[i]);
    }
    /* Which the frames above do exercise. */
    const struct wb_counts *c = &p.lean.counts;
    assert_int_equal(c->snapshots, 3);
    assert_int_equal(c->deltas, 6);
    assert_int_equal(c->gaps, 1);    /* m 5 -> 9 */
    assert_int_equal(c->orphans, 1); /* q */
    assert_int_equal(c->recovered, 1);
    assert_int_equal(c->errors, 1);
    assert_int_equal(c->pongs, 1);
    assert_true(c->bad >= 3);
    assert_int_equal(p.lean.hist.count, 1);
    assert_int_equal(p.lv.version[0], 9);
    pair_release(&p);
}

/* The lean reader's memo: a frame the previous connection read, read
 * again by another, counts exactly as scanning it would, for each view;
 * the full reader (no memo) is the reference. */
static void test_lean_memo_counts_as_a_scan(void **state)
{
    static const char *const frames[] = {
        "[{\"type\":\"snapshot\",\"match\":{\"id\":\"a\",\"version\":1}},"
        "{\"type\":\"snapshot\",\"match\":{\"id\":\"b\",\"version\":3}}]",
        "[{\"type\":\"delta\",\"id\":\"a\",\"version\":2,"
        "\"sent\":\"2026-11-21T15:04:05.100Z\",\"changes\":{}},"
        "{\"type\":\"delta\",\"id\":\"b\",\"version\":5,"
        "\"sent\":\"2026-11-21T15:04:05.000Z\"},{\"no\":\"type\"},"
        "{\"type\":\"delta\",\"version\":1},{\"type\":\"feed\"},"
        "{\"type\":\"error\",\"reason\":\"x\"},{\"type\":\"pong\"},"
        "{\"type\":\"delta\",\"id\":\"c\",\"version\":4,"
        "\"recovered\":true}]",
        "[{\"type\":\"delta\",\"id\":\"a\",\"version\":3},7,"
        "{\"type\":\"snapshot\",\"match\":[]}]",
        /* An error last, so that last_error is its text at the end. */
        "[{\"type\":\"delta\",\"id\":\"b\",\"version\":6,"
        "\"sent\":\"2026-11-21T15:04:05.050Z\"},"
        "{\"type\":\"error\",\"reason\":\"last\"}]",
    };
    struct pair p;
    pair_init(&p, simd_of(state));
    struct wb_conn_view lv2 = {0}, fv2 = {0};
    for (size_t i = 0; i < sizeof(frames) / sizeof(frames[0]); i++) {
        size_t len = strlen(frames[i]);
        /* Read from a buffer that is gone before the memo serves: the
         * memo must hold its own copy. Not measuring while it records:
         * what it keeps must not depend on that. */
        char *gone = malloc(len);
        assert_non_null(gone);
        memcpy(gone, frames[i], len);
        p.lean.measure = p.full.measure = false;
        agree(&p, gone, len);
        p.lean.measure = p.full.measure = true;
        assert_true(p.lean.memo.valid);
        assert_memory_equal(p.lean.memo.bytes, frames[i], len);
        memset(gone, 'x', len); /* freed only after the memo served */
        const char *f = frames[i];
        /* Another connection, the same bytes: from the memo. */
        assert_int_equal(wb_read_frame(&p.lean, &lv2, f, len, NOW_US + 1000),
                         0);

        assert_int_equal(wb_read_frame(&p.full, &fv2, f, len, NOW_US + 1000),
                         0);
        if (!twb_same(&p.lean, &lv2, &p.full, &fv2) ||
            !twb_same(&p.lean, &p.lv, &p.full, &p.fv)) {
            char l[512], u[512];
            twb_print_frame(f, len);
            fail_msg("lean: %s\nfull: %s", twb_counted(&p.lean, l, sizeof(l)),
                     twb_counted(&p.full, u, sizeof(u)));
        }
        free(gone);
    }
    /* What the frames exercise, twice over (latencies: the second time
     * only, measured then). */
    const struct wb_counts *c = &p.lean.counts;
    assert_int_equal(c->gaps, 2);    /* b 3 -> 5 */
    assert_int_equal(c->orphans, 2); /* c */
    assert_int_equal(c->errors, 4);
    assert_int_equal(c->recovered, 2);
    assert_true(c->bad >= 8);
    assert_int_equal(p.lean.hist.count, 3);
    assert_string_equal(
        p.lean.last_error,
        "server error: {\"type\":\"error\",\"reason\":\"last\"}");
    assert_int_equal(lv2.version[0], 3);
    wb_view_release(&lv2);
    wb_view_release(&fv2);
    pair_release(&p);
}

/* Members the lean reader counts, each once, in any order, with repeated
 * keys (the first wins, whatever its value), escaped keys and values, and
 * blanks wherever JSON allows them. */
static void test_lean_reader_members(void **state)
{
    static const struct {
        const char *frame;
        uint64_t deltas, bad, recovered, latencies;
    } cases[] = {
        /* Every order of four members. */
        {"{\"id\":\"a\",\"version\":1,\"type\":\"snapshot\"}", 0, 1, 0, 0},
        {"{\"type\":\"snapshot\",\"match\":{\"version\":1,\"id\":\"a\"}}", 0, 0,
         0, 0},
        {"{\"version\":2,\"sent\":\"2026-11-21T15:04:05.100Z\",\"id\":\"a\","
         "\"type\":\"delta\"}",
         1, 0, 0, 1},
        {"{\"sent\":\"2026-11-21T15:04:05.100Z\",\"type\":\"delta\","
         "\"version\":3,\"id\":\"a\"}",
         1, 0, 0, 1},
        {"{\"id\":\"a\",\"type\":\"delta\",\"sent\":"
         "\"2026-11-21T15:04:05.100Z\",\"version\":4}",
         1, 0, 0, 1},
        /* The match comes before the type that says it is a snapshot. */
        {"{\"match\":{\"id\":\"b\",\"x\":[{}],\"version\":7},\"type\":"
         "\"snapshot\"}",
         0, 0, 0, 0},
        /* Repeated keys: the first wins, even when it is not usable. */
        {"{\"type\":\"delta\",\"id\":\"a\",\"id\":\"b\",\"version\":5,"
         "\"version\":9}",
         1, 0, 0, 0},
        {"{\"type\":7,\"type\":\"delta\",\"id\":\"a\",\"version\":6}", 0, 1, 0,
         0},
        {"{\"type\":\"delta\",\"id\":1,\"id\":\"a\",\"version\":6}", 1, 1, 0,
         0},
        {"{\"type\":\"delta\",\"id\":\"a\",\"version\":\"6\",\"version\":6}", 1,
         1, 0, 0},
        {"{\"type\":\"delta\",\"id\":\"a\",\"version\":6,\"sent\":1,"
         "\"sent\":\"2026-11-21T15:04:05.100Z\"}",
         1, 0, 0, 0},
        {"{\"type\":\"snapshot\",\"match\":[],\"match\":{\"id\":\"a\","
         "\"version\":6}}",
         0, 1, 0, 0},
        {"{\"type\":\"delta\",\"recovered\":false,\"recovered\":true,"
         "\"id\":\"a\",\"version\":6}",
         1, 0, 0, 0},
        {"{\"type\":\"delta\",\"recovered\":true,\"recovered\":false,"
         "\"id\":\"a\",\"version\":7}",
         1, 0, 1, 0},
        {"{\"type\":\"delta\",\"recovered\":null,\"id\":\"a\",\"version\":8}",
         1, 0, 0, 0},
        /* Escaped keys are the keys they decode to. */
        {"{\"\\u0074ype\":\"delta\",\"i\\u0064\":\"a\",\"\\u0076ersion\":9}", 1,
         0, 0, 0},
        {"{\"type\":\"delta\",\"id\":\"a\",\"versio\\u006E\":10}", 1, 0, 0, 0},
        {"{\"type\":\"delta\",\"\\u0069\\u0064\":\"a\",\"version\":11,"
         "\"version\\u0000\":1,\"ver\\\"sion\":1,\"\\/id\":\"b\"}",
         1, 0, 0, 0},
        /* An escaped type is no type; an escaped id is no id. */
        {"{\"type\":\"d\\u0065lta\",\"id\":\"a\",\"version\":12}", 0, 1, 0, 0},
        {"{\"type\":\"delta\",\"id\":\"\\u0061\",\"version\":12}", 1, 1, 0, 0},
        /* Blanks after numbers and around every token. */
        {"{ \"type\" :\t\"delta\" ,\r\n\"id\"\n:\"a\", \"version\" : 12\n}", 1,
         0, 0, 0},
        {"\n[\t{\"type\":\"delta\",\"id\":\"a\",\"version\":13\t}\r\n]\n", 1, 0,
         0, 0},
        /* Versions that are not non-negative integers, or too big. */
        {"{\"type\":\"delta\",\"id\":\"a\",\"version\":14.0}", 1, 1, 0, 0},
        {"{\"type\":\"delta\",\"id\":\"a\",\"version\":1e3}", 1, 1, 0, 0},
        {"{\"type\":\"delta\",\"id\":\"a\",\"version\":-0}", 1, 1, 0, 0},
        {"{\"type\":\"delta\",\"id\":\"a\",\"version\":18446744073709551616}",
         1, 1, 0, 0},
        {"{\"type\":\"delta\",\"id\":\"a\",\"version\":true}", 1, 1, 0, 0},
        {"{\"type\":\"delta\",\"id\":\"a\",\"version\":{\"v\":14}}", 1, 1, 0,
         0},
        {"{\"type\":\"delta\",\"id\":\"c\",\"version\":18446744073709551615}",
         1, 0, 0, 0},
        /* Nested values to skip, brackets inside their strings. */
        {"{\"changes\":{\"a\":[[{\"b\":[]}],{},[[[\"]]]\"]]]],\"c\":{\"d\":"
         "{\"e\":\"}]\\\\\"}}},\"type\":\"delta\",\"incidents\":[[],{\"x\":"
         "[{\"y\":\"{\"}]}],\"id\":\"a\",\"version\":15}",
         1, 0, 0, 0},
    };
    struct pair p;
    pair_init(&p, simd_of(state));
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct wb_counts before = p.lean.counts;
        uint64_t latencies = p.lean.hist.count;
        assert_true(is_valid(&p, cases[i].frame, strlen(cases[i].frame)));
        agree_str(&p, cases[i].frame);
        const struct wb_counts *c = &p.lean.counts;
        if (c->deltas - before.deltas != cases[i].deltas ||
            c->bad - before.bad != cases[i].bad ||
            c->recovered - before.recovered != cases[i].recovered ||
            p.lean.hist.count - latencies != cases[i].latencies) {
            fail_msg("case %zu: deltas %llu bad %llu recovered %llu "
                     "latencies %llu",
                     i, (unsigned long long)(c->deltas - before.deltas),
                     (unsigned long long)(c->bad - before.bad),
                     (unsigned long long)(c->recovered - before.recovered),
                     (unsigned long long)(p.lean.hist.count - latencies));
        }
    }
    pair_release(&p);
}

/* Strings with escapes, and objects, that start and end at every offset
 * around the 16, 32 and 64-byte blocks the lean reader classifies, and
 * strings far longer than a block. */
static void test_lean_reader_block_edges(void **state)
{
    static const char *const tails[] = {
        "\\\"",     "\\\\",     "\\\\\\\"",      "\\\\\\\\", "x\\\\",
        "\\u0022}", "{[\\\"]}", "\\\\\\\"}\\\"", "\\/\\n",
    };
    struct pair p;
    pair_init(&p, simd_of(state));
    uint64_t want = 0;
    char *f = malloc(300000);
    assert_non_null(f);
    for (size_t t = 0; t < sizeof(tails) / sizeof(tails[0]); t++) {
        for (int pad = 0; pad < 140; pad++) {
            /* A skipped string whose escape lands at offset pad + 40 or so,
             * then a nested object, then the members counted. */
            int n =
                snprintf(f, 300000,
                         "[{\"type\":\"delta\",\"note\":\"%.*s%s\","
                         "\"changes\":{\"k\":\"%.*s%s\",\"o\":{\"a\":"
                         "[1,{\"b\":\"%s\"}]}},\"id\":\"e\",\"version\":"
                         "%llu}]",
                         pad,
                         "......................................."
                         "......................................."
                         "......................................."
                         "......................................."
                         "......................................."
                         "......................................."
                         "...............",
                         tails[t], pad % 61,
                         "{}[]:,{}[]:,{}[]:,{}[]:,{}[]:,{}[]:,{}[]:,"
                         "{}[]:,{}[]:,{}[]:,{}[]:,",
                         tails[t], tails[t], (unsigned long long)(want + 1));
            assert_true(n > 0 && n < 300000);
            assert_true(is_valid(&p, f, (size_t)n));
            agree(&p, f, (size_t)n);
            want++;
            assert_int_equal(p.lean.counts.deltas, want);
        }
    }
    assert_int_equal(p.lean.counts.gaps, 0);
    assert_int_equal(p.lean.counts.orphans, 1);
    /* Long strings: a skipped one, then an id, of 100,000 bytes each. */
    size_t n = 0;
    n += (size_t)sprintf(f + n, "{\"type\":\"snapshot\",\"match\":{\"x\":\"");
    for (int i = 0; i < 100000; i++) {
        f[n++] = i % 1000 == 999 ? '\\' : "ab{}[]:,"[i % 8];
        if (f[n - 1] == '\\') {
            f[n++] = '"';
        }
    }
    n += (size_t)sprintf(f + n, "\",\"version\":1,\"id\":\"");
    memset(f + n, 'i', 100000);
    n += 100000;
    n += (size_t)sprintf(f + n, "\"}}");
    assert_true(is_valid(&p, f, n));
    agree(&p, f, n);
    assert_int_equal(p.lean.counts.snapshots, 1);
    assert_int_equal(p.lean.counts.bad, 0);
    assert_int_equal(p.lean.ids.len[p.lean.ids.n - 1], 100000);
    free(f);
    pair_release(&p);
}

/* A cut frame is one bad frame to both readers, wherever it is cut. */
static void test_lean_reader_cut_frames(void **state)
{
    const char *whole =
        "[{\"type\":\"snapshot\",\"match\":{\"id\":\"a\",\"version\":1,"
        "\"fixture\":{\"home\":\"H\\\"\",\"away\":\"A\"}}},"
        "{\"type\":\"delta\",\"id\":\"a\",\"version\":2,\"sent\":"
        "\"2026-11-21T15:04:05.100Z\",\"changes\":{\"clock\":{\"time\":"
        "\"45:12\",\"running\":true},\"score\":{\"home\":1,\"away\":0}},"
        "\"incidents\":{\"upsert\":[{\"id\":\"i1\",\"type\":\"goal\"}],"
        "\"delete\":[\"i0\"]}},{\"type\":\"pong\"}]";
    size_t len = strlen(whole);
    struct wb_reader lean;
    struct wb_conn_view v = {0};
    assert_int_equal(wb_reader_init(&lean, false), 0);
    lean.simd = simd_of(state);
    for (size_t cut = 0; cut < len; cut++) {
        /* On the heap with nothing after it: ASan sees a read past it. */
        char *f = malloc(cut ? cut : 1);
        assert_non_null(f);
        memcpy(f, whole, cut);
        uint64_t bad = lean.counts.bad;
        assert_int_equal(wb_read_frame(&lean, &v, f, cut, 0), 0);
        if (lean.counts.bad != bad + 1) {
            fail_msg("cut at %zu: bad %llu more", cut,
                     (unsigned long long)(lean.counts.bad - bad));
        }
        free(f);
    }
    wb_view_release(&v);
    wb_reader_release(&lean);
}

/* Bytes that are not JSON, NULs among them: never read out of bounds,
 * never fatal; what cannot be followed is bad. */
static void test_lean_reader_garbage(void **state)
{
    static const struct {
        const char *frame;
        size_t len;
        uint64_t messages, bad;
    } cases[] = {
        {"", 0, 0, 1},
        {"\0", 1, 0, 1},
        {"{\0}", 3, 0, 1},
        {"[{\"type\":\"pong\"}\0]", 18, 1, 1},
        {"{\"type\":\"pong\",\0\"a\":1}", 22, 0, 1},
        /* The lean reader does not validate what it skips: a NUL inside a
         * skipped string is no concern of its. */
        {"{\"type\":\"pong\",\"a\":\"\0\"}", 23, 1, 0},
        {"{\"type\":\"pong\0\"}", 16, 1, 0},
        {"\"", 1, 0, 1},
        {"{\"", 2, 0, 1},
        {"{\"type\\", 7, 0, 1},
        {"{\"type\":\"\\", 10, 0, 1},
        {"{\"a\":{", 6, 0, 1},
        {"{\"a\":[}}}}}", 11, 0, 1},
        {"{\"a\":1}", 7, 0, 1},
        /* Nor does it look past a frame's one object. */
        {"{\"type\":\"pong\"}}}]]]", 20, 1, 0},
        {"[1,2,{}]", 8, 0, 3},
        {"}{", 2, 0, 1},
        {"\xff\xfe{\"type\":\"pong\"}", 17, 0, 1},
    };
    struct wb_reader lean;
    struct wb_conn_view v = {0};
    assert_int_equal(wb_reader_init(&lean, false), 0);
    lean.simd = simd_of(state);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *f = malloc(cases[i].len + 1);
        assert_non_null(f);
        memcpy(f, cases[i].frame, cases[i].len);
        struct wb_counts before = lean.counts;
        assert_int_equal(wb_read_frame(&lean, &v, f, cases[i].len, 0), 0);
        if (lean.counts.messages - before.messages != cases[i].messages ||
            lean.counts.bad - before.bad != cases[i].bad) {
            fail_msg(
                "case %zu: messages %llu bad %llu", i,
                (unsigned long long)(lean.counts.messages - before.messages),
                (unsigned long long)(lean.counts.bad - before.bad));
        }
        free(f);
    }
    wb_view_release(&v);
    wb_reader_release(&lean);
}

/* ---- random frames --------------------------------------------------------
 *
 * Frames built from the members the readers look at, in random order and
 * with random contents (escapes, brackets in strings, nested values of
 * every kind, repeated and escaped keys, blanks), some of them then
 * mutated byte by byte. A fixed seed: a failure repeats.
 */

#define GEN_CAP 65536

struct gen {
    uint64_t state;
    char *buf; /* GEN_CAP bytes */
    size_t n;
    bool compact; /* no blanks in the message being made */
};

static uint32_t rnd(struct gen *g, uint32_t n)
{
    /* splitmix64 */
    uint64_t z = (g->state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return (uint32_t)(z % n);
}

static void put_n(struct gen *g, const char *s, size_t n)
{
    if (g->n + n > GEN_CAP) {
        n = GEN_CAP - g->n; /* cut: the frame is then invalid */
    }
    memcpy(g->buf + g->n, s, n);
    g->n += n;
}

static void put(struct gen *g, const char *s)
{
    put_n(g, s, strlen(s));
}

static void put_blank(struct gen *g)
{
    static const char *const blanks[] = {" ", "\n", "\t", "\r\n", "  "};
    if (!g->compact && rnd(g, 8) == 0) {
        put(g, blanks[rnd(g, 5)]);
    }
}

/* A string of up to @max pieces, each a plain byte, a bracket, an escape or
 * a UTF-8 sequence; sometimes a long plain run. */
static void put_string(struct gen *g, uint32_t max)
{
    static const char *const pieces[] = {
        "a",
        "b",
        "Z",
        "0",
        " ",
        "{",
        "}",
        "[",
        "]",
        ":",
        ",",
        "\\\"",
        "\\\\",
        "\\/",
        "\\n",
        "\\t",
        "\\u0041",
        "\\u00e9",
        "\xc3\xa9",
        "\xe2\x82\xac",
        "\\ud83d\\ude00",
        "\xf0\x9f\x98\x80",
    };
    put(g, "\"");
    uint32_t n = rnd(g, max + 1);
    for (uint32_t i = 0; i < n; i++) {
        if (rnd(g, 40) == 0) {
            for (uint32_t k = rnd(g, 200); k > 0; k--) {
                put(g, "x");
            }
        }
        put(g, pieces[rnd(g, sizeof(pieces) / sizeof(pieces[0]))]);
    }
    put(g, "\"");
}

static void put_number(struct gen *g)
{
    static const char *const nums[] = {
        "0",
        "7",
        "42",
        "-1",
        "-0",
        "1.5",
        "1e3",
        "2E-2",
        "0.0",
        "1234567890123",
        "18446744073709551615",
        "18446744073709551616",
        "99999999999999999999999",
    };
    put(g, nums[rnd(g, sizeof(nums) / sizeof(nums[0]))]);
}

static void put_key(struct gen *g)
{
    static const char *const keys[] = {
        "\"type\"",       "\"id\"",       "\"version\"",       "\"sent\"",
        "\"recovered\"",  "\"match\"",    "\"changes\"",       "\"incidents\"",
        "\"\\u0074ype\"", "\"i\\u0064\"", "\"versio\\u006e\"", "\"typ\"",
        "\"types\"",      "\"ID\"",       "\"\\\"id\"",
    };
    if (rnd(g, 3) == 0) {
        put_string(g, 6);
    } else {
        put(g, keys[rnd(g, sizeof(keys) / sizeof(keys[0]))]);
    }
}

static void put_value(struct gen *g, int depth)
{
    uint32_t kind = rnd(g, depth > 5 ? 6 : 9);
    switch (kind) {
    case 0:
    case 1:
        put_string(g, 12);
        break;
    case 2:
        put_number(g);
        break;
    case 3:
        put(g, "true");
        break;
    case 4:
        put(g, "false");
        break;
    case 5:
        put(g, "null");
        break;
    case 6:
    case 7: {
        put(g, "{");
        put_blank(g);
        for (uint32_t i = 0, n = rnd(g, 5); i < n; i++) {
            put(g, i ? "," : "");
            put_blank(g);
            put_key(g);
            put_blank(g);
            put(g, ":");
            put_blank(g);
            put_value(g, depth + 1);
            put_blank(g);
        }
        put(g, "}");
        break;
    }
    default:
        put(g, "[");
        put_blank(g);
        for (uint32_t i = 0, n = rnd(g, 5); i < n; i++) {
            put(g, i ? "," : "");
            put_blank(g);
            put_value(g, depth + 1);
            put_blank(g);
        }
        put(g, "]");
        break;
    }
}

/* One member of a message: @what is its key; its value mostly what the
 * server sends, now and then anything. */
static void put_member(struct gen *g, const char *what, const char *type)
{
    static const char *const ids[] = {"\"m0\"", "\"m1\"", "\"m2\"",
                                      "\"m\\u0033\"", "\"sim:1:4\""};
    static const char *const sents[] = {
        "\"2026-11-21T15:04:05.100Z\"", "\"2026-11-21T15:04:05Z\"",
        "\"2026-11-21T15:04:05.1\\u005a\"", "\"yesterday\"", "12"};
    static const char *const types[] = {
        "\"delta\"", "\"snapshot\"", "\"feed\"",        "\"pong\"",
        "\"error\"", "\"other\"",    "\"del\\u0074a\"", "3"};
    put_blank(g);
    put(g, "\"");
    put(g, what);
    put(g, "\"");
    put_blank(g);
    put(g, ":");
    put_blank(g);
    bool odd = rnd(g, 12) == 0;
    if (odd) {
        put_value(g, 3);
    } else if (strcmp(what, "type") == 0) {
        put(g, rnd(g, 10) ? type : types[rnd(g, 8)]);
    } else if (strcmp(what, "id") == 0) {
        put(g, ids[rnd(g, 5)]);
    } else if (strcmp(what, "version") == 0) {
        char v[24];
        snprintf(v, sizeof(v), "%u", rnd(g, 12));
        put(g, rnd(g, 10) ? v : "1.0");
    } else if (strcmp(what, "sent") == 0) {
        put(g, sents[rnd(g, 5)]);
    } else if (strcmp(what, "recovered") == 0) {
        put(g, rnd(g, 3) ? "true" : "false");
    } else if (strcmp(what, "match") == 0) {
        put(g, "{");
        static const char *const inner[] = {"id", "version", "fixture",
                                            "incidents", "type"};
        uint32_t order = rnd(g, 5);
        for (uint32_t i = 0; i < 5; i++) {
            put(g, i ? "," : "");
            put_member(g, inner[(order + i) % 5], "\"snapshot\"");
        }
        put(g, "}");
    } else {
        put_value(g, 2);
    }
    put_blank(g);
}

static void put_message(struct gen *g)
{
    static const char *const all[] = {"type",    "id",        "version",
                                      "sent",    "recovered", "match",
                                      "changes", "incidents", "note"};
    const char *type = rnd(g, 4) ? "\"delta\"" : "\"snapshot\"";
    const char *members[12];
    uint32_t n = 0;
    for (uint32_t i = 0; i < 9; i++) {
        bool snapshot = type[1] == 's';
        bool usual = i < 2 || (i == 2 && !snapshot) || (i == 3 && !snapshot) ||
                     (i == 5 && snapshot) || i == 6;
        if (rnd(g, 10) < (usual ? 9u : 2u)) {
            members[n++] = all[i];
        }
    }
    while (n < 12 && rnd(g, 6) == 0) {
        members[n++] = all[rnd(g, 9)]; /* a repeated key */
    }
    /* Half in the server's order (type, id, version, sent first), most of
     * those compact as it writes them; the rest in any order. */
    bool server = rnd(g, 2);
    g->compact = server && rnd(g, 4);
    for (uint32_t i = n; !server && i > 1; i--) { /* shuffle */
        uint32_t j = rnd(g, i);
        const char *t = members[i - 1];
        members[i - 1] = members[j];
        members[j] = t;
    }
    put_blank(g);
    put(g, "{");
    for (uint32_t i = 0; i < n; i++) {
        put(g, i ? "," : "");
        if (rnd(g, 8) == 0) {
            put_key(g);
            put(g, ":");
            put_value(g, 1);
        } else {
            put_member(g, members[i], type);
        }
    }
    put(g, "}");
    g->compact = false;
    put_blank(g);
}

static void put_frame(struct gen *g)
{
    g->n = 0;
    uint32_t kind = rnd(g, 20);
    if (kind < 6) {
        put_message(g);
    } else if (kind < 19) {
        put(g, "[");
        for (uint32_t i = 0, n = rnd(g, 5); i < n; i++) {
            put(g, i ? "," : "");
            if (rnd(g, 30) == 0) {
                put_value(g, 2);
            } else {
                put_message(g);
            }
        }
        put(g, "]");
    } else {
        put_value(g, 0);
    }
}

/* Changes one to three bytes: a byte replaced, dropped or added, or the
 * frame cut. */
static void mutate(struct gen *g)
{
    static const char special[] = "\"\\{}[],: \0\xff\x01tn";
    for (uint32_t k = rnd(g, 3) + 1; k > 0 && g->n > 0; k--) {
        size_t at = rnd(g, (uint32_t)g->n);
        char c = rnd(g, 4) ? special[rnd(g, sizeof(special) - 1)]
                           : (char)rnd(g, 256);
        switch (rnd(g, 4)) {
        case 0:
            g->buf[at] = c;
            break;
        case 1:
            memmove(g->buf + at, g->buf + at + 1, g->n - at - 1);
            g->n--;
            break;
        case 2:
            if (g->n < GEN_CAP) {
                memmove(g->buf + at + 1, g->buf + at, g->n - at);
                g->buf[at] = c;
                g->n++;
            }
            break;
        default:
            g->n = at;
            break;
        }
    }
}

static void test_lean_reader_random_frames(void **state)
{
    struct gen g = {.state = 0x5c0e3e1e};
    g.buf = malloc(GEN_CAP);
    assert_non_null(g.buf);
    struct pair p;
    pair_init(&p, simd_of(state));
    struct wb_reader loose; /* frames the tokenizer refuses */
    struct wb_conn_view lv = {0};
    assert_int_equal(wb_reader_init(&loose, false), 0);
    loose.measure = true;
    loose.simd = simd_of(state);
    uint32_t valid = 0, mutated_valid = 0, invalid = 0;
    for (uint32_t i = 0; i < 30000; i++) {
        put_frame(&g);
        bool mutated = rnd(&g, 3) == 0;
        if (mutated) {
            mutate(&g);
        }
        /* A copy of its exact size: ASan sees a read past the end. */
        char *f = malloc(g.n ? g.n : 1);
        assert_non_null(f);
        memcpy(f, g.buf, g.n);
        if (is_valid(&p, f, g.n)) {
            agree(&p, f, g.n);
            valid++;
            mutated_valid += mutated;
        } else {
            uint64_t frames = loose.counts.frames;
            assert_int_equal(wb_read_frame(&loose, &lv, f, g.n, NOW_US), 0);
            assert_int_equal(loose.counts.frames, frames + 1);
            invalid++;
        }
        free(f);
    }
    /* What the frames did exercise. */
    const struct wb_counts *c = &p.lean.counts;
    if (valid < 15000 || mutated_valid < 300 || invalid < 3000 ||
        c->deltas < 10000 || c->snapshots < 3000 || c->gaps < 1000 ||
        c->orphans < 10 || c->recovered < 1000 || c->bad < 1000 ||
        c->feeds == 0 || c->pongs == 0 || c->errors == 0 ||
        p.lean.hist.count < 1000 || loose.counts.bad < 1000) {
        fail_msg("valid %u (mutated %u) invalid %u; deltas %llu snapshots "
                 "%llu gaps %llu orphans %llu recovered %llu bad %llu "
                 "latencies %llu",
                 valid, mutated_valid, invalid, (unsigned long long)c->deltas,
                 (unsigned long long)c->snapshots, (unsigned long long)c->gaps,
                 (unsigned long long)c->orphans,
                 (unsigned long long)c->recovered, (unsigned long long)c->bad,
                 (unsigned long long)p.lean.hist.count);
    }
    wb_view_release(&lv);
    wb_reader_release(&loose);
    pair_release(&p);
    free(g.buf);
}

static char *dump(const struct wb_reader *r, const struct wb_conn_view *v)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    assert_int_equal(wb_view_dump(r, v, f), 0);
    fclose(f);
    return text;
}

static void test_view_applies_snapshots_and_deltas(void **state)
{
    (void)state;
    struct wb_reader r;
    struct wb_conn_view v = {0};
    assert_int_equal(wb_reader_init(&r, true), 0);
    read_frame(&r, &v,
               "{\"type\":\"snapshot\",\"match\":{\"id\":\"b\",\"version\":"
               "1,\"status\":{\"phase\":\"first_half\"},\"incidents\":[],"
               "\"feed\":\"live\",\"gap\":false}}");
    read_frame(&r, &v,
               "{\"type\":\"snapshot\",\"match\":{\"id\":\"a\",\"version\":"
               "7,\"fixture\":{\"home\":\"H\",\"away\":\"A\"},\"score\":"
               "{\"home\":0,\"away\":0},\"incidents\":[{\"id\":\"i1\","
               "\"type\":\"yellow_card\"}],\"feed\":\"stale\",\"gap\":true}}");
    read_frame(&r, &v,
               "[{\"type\":\"delta\",\"id\":\"a\",\"version\":8,\"changes\":"
               "{\"score\":{\"home\":1,\"away\":0},\"feed\":\"live\","
               "\"gap\":false},\"incidents\":{\"upsert\":[{\"id\":\"i2\","
               "\"type\":\"goal\",\"confirmed\":false}],\"delete\":[]}},"
               "{\"type\":\"delta\",\"id\":\"a\",\"version\":9,\"changes\":"
               "{},\"incidents\":{\"upsert\":[{\"id\":\"i2\",\"type\":"
               "\"goal\",\"confirmed\":true}],\"delete\":[\"i1\"]}}]");
    char *text = dump(&r, &v);
    /* Sorted by id; version, feed and gap left out; incidents in order. */
    assert_string_equal(
        text, "{\n\"a\":{\"id\":\"a\",\"fixture\":{\"home\":\"H\",\"away\":"
              "\"A\"},\"score\":{\"home\":1,\"away\":0},\"incidents\":[{"
              "\"id\":\"i2\",\"type\":\"goal\",\"confirmed\":true}]},\n"
              "\"b\":{\"id\":\"b\",\"status\":{\"phase\":\"first_half\"},"
              "\"incidents\":[]}\n}\n");
    free(text);
    /* A new snapshot replaces the whole view of its match. */
    read_frame(&r, &v,
               "{\"type\":\"snapshot\",\"match\":{\"id\":\"a\",\"version\":"
               "20,\"incidents\":[]}}");
    text = dump(&r, &v);
    assert_non_null(strstr(text, "\"a\":{\"id\":\"a\",\"incidents\":[]}"));
    free(text);
    wb_view_release(&v);
    wb_reader_release(&r);
}

/* Each lean reader test runs with every classifier: plain C, SSE2 and AVX2
 * (SSE2 where the CPU lacks AVX2). */
static const enum wb_simd simds[] = {WB_SIMD_NONE, WB_SIMD_SSE2, WB_SIMD_AVX2};
#define SIMD_TEST(f, i, level)                                                 \
    {                                                                          \
        .name = #f " (" level ")", .test_func = f,                             \
        .initial_state = (void *)&simds[i]                                     \
    }
#define EACH_SIMD(f)                                                           \
    SIMD_TEST(f, 0, "plain C"), SIMD_TEST(f, 1, "SSE2"), SIMD_TEST(f, 2, "AVX2")

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc3339),
        cmocka_unit_test(test_rfc3339_every_byte),
        cmocka_unit_test(test_histogram),
        cmocka_unit_test(test_ids),
        cmocka_unit_test(test_versions_gaps_and_orphans),
        cmocka_unit_test(test_latency_from_sent),
        cmocka_unit_test(test_view_applies_snapshots_and_deltas),
        EACH_SIMD(test_lean_and_full_readers_agree),
        EACH_SIMD(test_lean_memo_counts_as_a_scan),
        EACH_SIMD(test_lean_reader_members),
        EACH_SIMD(test_lean_reader_block_edges),
        EACH_SIMD(test_lean_reader_cut_frames),
        EACH_SIMD(test_lean_reader_garbage),
        EACH_SIMD(test_lean_reader_random_frames),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
