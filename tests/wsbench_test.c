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
        assert_int_equal(wb_parse_rfc3339_ms(ok[i][0], strlen(ok[i][0]), &ms),
                         0);
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
        if (wb_parse_rfc3339_ms(bad[i], strlen(bad[i]), &ms) != -EINVAL) {
            fail_msg("accepted %s", bad[i]);
        }
    }
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

/* The lean reader (counting) and the full one (with views) agree on
 * every counter, whatever the strings hold. */
static void test_lean_and_full_readers_agree(void **state)
{
    (void)state;
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
    struct wb_reader lean, full;
    struct wb_conn_view lv = {0}, fv = {0};
    assert_int_equal(wb_reader_init(&lean, false), 0);
    assert_int_equal(wb_reader_init(&full, true), 0);
    lean.measure = full.measure = true;
    for (size_t i = 0; i < sizeof(frames) / sizeof(frames[0]); i++) {
        const char *f = frames[i];
        assert_int_equal(wb_read_frame(&lean, &lv, f, strlen(f), 0), 0);
        assert_int_equal(wb_read_frame(&full, &fv, f, strlen(f), 0), 0);
        if (memcmp(&lean.counts, &full.counts, sizeof(lean.counts)) != 0) {
            fail_msg("frame %zu: lean messages %llu deltas %llu snapshots "
                     "%llu gaps %llu orphans %llu bad %llu recovered %llu; "
                     "full %llu %llu %llu %llu %llu %llu %llu",
                     i, (unsigned long long)lean.counts.messages,
                     (unsigned long long)lean.counts.deltas,
                     (unsigned long long)lean.counts.snapshots,
                     (unsigned long long)lean.counts.gaps,
                     (unsigned long long)lean.counts.orphans,
                     (unsigned long long)lean.counts.bad,
                     (unsigned long long)lean.counts.recovered,
                     (unsigned long long)full.counts.messages,
                     (unsigned long long)full.counts.deltas,
                     (unsigned long long)full.counts.snapshots,
                     (unsigned long long)full.counts.gaps,
                     (unsigned long long)full.counts.orphans,
                     (unsigned long long)full.counts.bad,
                     (unsigned long long)full.counts.recovered);
        }
    }
    /* Which the frames above do exercise. */
    assert_int_equal(lean.counts.snapshots, 3);
    assert_int_equal(lean.counts.deltas, 6);
    assert_int_equal(lean.counts.gaps, 1);    /* m 5 -> 9 */
    assert_int_equal(lean.counts.orphans, 1); /* q */
    assert_int_equal(lean.counts.recovered, 1);
    assert_int_equal(lean.counts.errors, 1);
    assert_int_equal(lean.counts.pongs, 1);
    assert_true(lean.counts.bad >= 3);
    assert_int_equal(lean.hist.count, 1);
    assert_int_equal(lv.version[0], 9);
    wb_view_release(&lv);
    wb_view_release(&fv);
    wb_reader_release(&lean);
    wb_reader_release(&full);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc3339),
        cmocka_unit_test(test_histogram),
        cmocka_unit_test(test_ids),
        cmocka_unit_test(test_versions_gaps_and_orphans),
        cmocka_unit_test(test_latency_from_sent),
        cmocka_unit_test(test_view_applies_snapshots_and_deltas),
        cmocka_unit_test(test_lean_and_full_readers_agree),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
