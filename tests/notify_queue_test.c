/* tests/notify_queue_test.c - shared outbound messages and the per-client
 * queue of references to them. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>

#include <cmocka.h>

#include "ingest/event.h"
#include "notify/notify_impl.h"

static struct notify__out *msg(enum notify__out_kind kind, uint32_t match,
                               const char *text)
{
    struct notify__out *o = notify__out_new(kind, text, strlen(text));
    assert_non_null(o);
    o->match = match;
    return o;
}

static void test_out_new_has_headroom_and_nul(void **state)
{
    (void)state;
    struct notify__out *o = msg(NOTIFY__OUT_OTHER, 0, "{\"type\":\"pong\"}");
    assert_int_equal(o->refs, 1);
    assert_int_equal(o->len, 15);
    assert_string_equal(o->data, "{\"type\":\"pong\"}");
    assert_ptr_equal(o->data, o->bytes + NOTIFY__HEADROOM);
    assert_int_equal(o->sent_ms, EVENT_ABSENT);
    /* The headroom is writable (lws puts its frame header there). */
    memset((char *)o->data - NOTIFY__HEADROOM, 0xab, NOTIFY__HEADROOM);
    notify__out_unref(o);
    notify__out_unref(NULL);
}

static int unrefs;
static void fake_update_unref(struct update *up)
{
    if (atomic_fetch_sub(&up->refs, 1) == 1) {
        unrefs++;
    }
}

static void test_out_wrap_shares_the_update(void **state)
{
    (void)state;
    char json[NOTIFY__HEADROOM + 64] = {0};
    strcpy(json + NOTIFY__HEADROOM, "{\"type\":\"delta\"}");
    struct match_image img = {.id = "m", .version = 9};
    atomic_init(&img.refs, 1);
    struct update up = {
        .kind = UPDATE_DELTA,
        .image = &img,
        .json = json + NOTIFY__HEADROOM,
        .json_len = 16,
        .sent_ms = 1234,
    };
    atomic_init(&up.refs, 1);
    unrefs = 0;

    struct notify__out *o = notify__out_wrap(&up, fake_update_unref);
    assert_non_null(o);
    assert_int_equal(atomic_load(&up.refs), 2);
    assert_ptr_equal(o->data, up.json); /* not copied */
    assert_int_equal(o->len, 16);
    assert_int_equal(o->kind, NOTIFY__OUT_DELTA);
    assert_int_equal(o->version, 9);
    assert_int_equal(o->sent_ms, 1234);
    notify__out_ref(o);
    notify__out_unref(o);
    assert_int_equal(atomic_load(&up.refs), 2);
    notify__out_unref(o);
    assert_int_equal(atomic_load(&up.refs), 1);
    assert_int_equal(unrefs, 0);

    up.kind = UPDATE_SNAPSHOT;
    o = notify__out_wrap(&up, fake_update_unref);
    assert_int_equal(o->kind, NOTIFY__OUT_SNAPSHOT);
    notify__out_unref(o);
}

static void test_queue_fifo_bytes_and_growth(void **state)
{
    (void)state;
    struct notify__queue q = {0};
    struct notify__out *a = msg(NOTIFY__OUT_DELTA, 1, "aa");
    struct notify__out *b = msg(NOTIFY__OUT_DELTA, 2, "bbb");
    /* Wrap around the ring several times while it grows. */
    int pushed = 0, popped = 0;
    for (int round = 0; round < 50; round++) {
        for (int i = 0; i < round % 7 + 1; i++) {
            assert_int_equal(notify__queue_push(&q, pushed % 2 ? b : a), 0);
            pushed++;
        }
        for (int i = 0; i < round % 5 && q.len > 0; i++) {
            struct notify__out *o = notify__queue_pop(&q);
            assert_ptr_equal(o, popped % 2 ? b : a);
            notify__out_unref(o);
            popped++;
        }
        size_t bytes = 0;
        for (uint32_t i = 0; i < q.len; i++) {
            bytes += notify__queue_at(&q, i)->len;
        }
        assert_int_equal(q.bytes, bytes);
        assert_int_equal(q.len, pushed - popped);
    }
    uint32_t queued_a = 0;
    for (uint32_t i = 0; i < q.len; i++) {
        queued_a += notify__queue_at(&q, i) == a;
    }
    assert_int_equal(a->refs, 1 + queued_a);
    assert_int_equal(b->refs, 1 + q.len - queued_a);
    assert_int_equal(notify__queue_release(&q), (uint32_t)(pushed - popped));
    assert_int_equal(a->refs, 1);
    assert_int_equal(b->refs, 1);
    assert_null(q.slot);
    assert_null(notify__queue_pop(&q));
    notify__out_unref(a);
    notify__out_unref(b);
}

static bool drop_match_2(void *arg, const struct notify__out *o)
{
    int *calls = arg;
    (*calls)++;
    return notify__out_is_match(o) && o->match == 2;
}

static void test_queue_remove_if_keeps_order(void **state)
{
    (void)state;
    struct notify__queue q = {0};
    struct notify__out *m[6] = {
        msg(NOTIFY__OUT_DELTA, 1, "1a"),   msg(NOTIFY__OUT_DELTA, 2, "2a"),
        msg(NOTIFY__OUT_OTHER, 2, "pong"), msg(NOTIFY__OUT_SNAPSHOT, 2, "2b"),
        msg(NOTIFY__OUT_DELTA, 3, "3a"),   msg(NOTIFY__OUT_DELTA, 1, "1b"),
    };
    /* Start mid-ring so the compaction crosses the wrap. */
    for (int i = 0; i < 5; i++) {
        assert_int_equal(notify__queue_push(&q, m[0]), 0);
        notify__out_unref(notify__queue_pop(&q));
    }
    for (int i = 0; i < 6; i++) {
        assert_int_equal(notify__queue_push(&q, m[i]), 0);
    }
    int calls = 0;
    assert_int_equal(notify__queue_remove_if(&q, drop_match_2, &calls), 2);
    assert_int_equal(calls, 6);
    assert_int_equal(q.len, 4);
    assert_ptr_equal(notify__queue_at(&q, 0), m[0]);
    assert_ptr_equal(notify__queue_at(&q, 1), m[2]); /* other: kept */
    assert_ptr_equal(notify__queue_at(&q, 2), m[4]);
    assert_ptr_equal(notify__queue_at(&q, 3), m[5]);
    assert_int_equal(q.bytes, 2 + 4 + 2 + 2);
    assert_int_equal(m[1]->refs, 1);
    assert_int_equal(m[3]->refs, 1);
    notify__queue_release(&q);
    for (int i = 0; i < 6; i++) {
        assert_int_equal(m[i]->refs, 1);
        notify__out_unref(m[i]);
    }
}

static void test_queue_shrink(void **state)
{
    (void)state;
    struct notify__queue q = {0};
    struct notify__out *o = msg(NOTIFY__OUT_DELTA, 1, "x");
    assert_int_equal(notify__queue_push(&q, o), 0);
    notify__queue_shrink(&q); /* not empty: kept */
    assert_non_null(q.slot);
    notify__queue_clear(&q);
    notify__queue_shrink(&q); /* small: kept, no churn */
    assert_non_null(q.slot);
    for (int i = 0; i < 100; i++) {
        assert_int_equal(notify__queue_push(&q, o), 0);
    }
    assert_int_equal(notify__queue_clear(&q), 100);
    notify__queue_shrink(&q);
    assert_null(q.slot);
    assert_int_equal(q.cap, 0);
    notify__queue_release(&q);
    notify__out_unref(o);
}

static void test_out_of_memory(void **state)
{
    (void)state;
    notify__alloc_fail_at = 1;
    assert_null(notify__out_new(NOTIFY__OUT_OTHER, "x", 1));
    assert_int_equal(notify__alloc_fail_at, -1);

    struct notify__queue q = {0};
    struct notify__out *o = msg(NOTIFY__OUT_DELTA, 1, "x");
    for (int i = 0; i < 8; i++) {
        assert_int_equal(notify__queue_push(&q, o), 0);
    }
    /* The ninth push needs a bigger ring: it fails and changes nothing. */
    notify__alloc_fail_at = 1;
    assert_int_equal(notify__queue_push(&q, o), -ENOMEM);
    assert_int_equal(q.len, 8);
    assert_int_equal(o->refs, 9);
    assert_int_equal(notify__queue_push(&q, o), 0);
    notify__queue_release(&q);
    assert_int_equal(o->refs, 1);
    notify__out_unref(o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_out_new_has_headroom_and_nul),
        cmocka_unit_test(test_out_wrap_shares_the_update),
        cmocka_unit_test(test_queue_fifo_bytes_and_growth),
        cmocka_unit_test(test_queue_remove_if_keeps_order),
        cmocka_unit_test(test_queue_shrink),
        cmocka_unit_test(test_out_of_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
