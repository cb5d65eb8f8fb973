/* tests/wsbench_test_util.h - helpers shared by the wsbench tests and the
 * fuzzer: what it takes for two readers to agree, and a frame and what a
 * reader counted, in words, for the report of a disagreement. */
#ifndef TESTS_WSBENCH_TEST_UTIL_H
#define TESTS_WSBENCH_TEST_UTIL_H

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "tools/wsbench/wsbench.h"

/*
 * Whether readers @a and @b, of connections whose views are @av and @bv,
 * agree: every counter, the latency samples, the last error, and the same
 * ids interned in the same order at the same versions.
 */
static inline bool twb_same(const struct wb_reader *a,
                            const struct wb_conn_view *av,
                            const struct wb_reader *b,
                            const struct wb_conn_view *bv)
{
    if (memcmp(&a->counts, &b->counts, sizeof(a->counts)) != 0 ||
        a->hist.count != b->hist.count || a->hist.max_us != b->hist.max_us ||
        strcmp(a->last_error, b->last_error) != 0 || a->ids.n != b->ids.n) {
        return false;
    }
    for (uint32_t i = 0; i < a->ids.n; i++) {
        if (a->ids.len[i] != b->ids.len[i] ||
            memcmp(a->ids.id[i], b->ids.id[i], a->ids.len[i]) != 0 ||
            av->version[i] != bv->version[i]) {
            return false;
        }
    }
    return true;
}

/* What @r counted, in words, into @buf (@cap bytes); returns @buf. */
static inline const char *twb_counted(const struct wb_reader *r, char *buf,
                                      size_t cap)
{
    const struct wb_counts *c = &r->counts;
    snprintf(buf, cap,
             "frames %llu bytes %llu messages %llu deltas %llu snapshots "
             "%llu feeds %llu pongs %llu errors %llu recovered %llu gaps "
             "%llu orphans %llu bad %llu latencies %llu max %lld us ids %u "
             "\"%s\"",
             (unsigned long long)c->frames, (unsigned long long)c->bytes,
             (unsigned long long)c->messages, (unsigned long long)c->deltas,
             (unsigned long long)c->snapshots, (unsigned long long)c->feeds,
             (unsigned long long)c->pongs, (unsigned long long)c->errors,
             (unsigned long long)c->recovered, (unsigned long long)c->gaps,
             (unsigned long long)c->orphans, (unsigned long long)c->bad,
             (unsigned long long)r->hist.count, (long long)r->hist.max_us,
             r->ids.n, r->last_error);
    return buf;
}

/* Writes the @len bytes at @f to stderr (up to 2,000 of them), those
 * outside printable ASCII as \xNN. */
static inline void twb_print_frame(const char *f, size_t len)
{
    fprintf(stderr, "frame (%zu bytes): ", len);
    for (size_t i = 0; i < len && i < 2000; i++) {
        unsigned char c = (unsigned char)f[i];
        fprintf(stderr, c >= 0x20 && c < 0x7f ? "%c" : "\\x%02x", c);
    }
    fputc('\n', stderr);
}

#endif /* TESTS_WSBENCH_TEST_UTIL_H */
