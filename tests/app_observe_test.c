/* tests/app_observe_test.c - the admin views of the runtime: the actor
 * tree as JSON (listing small supervisors, summarizing big ones) and the
 * runtime's Prometheus series. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>

#include <cmocka.h>

#include "actor/actor.h"
#include "app/app.h"
#include "tests/probe.h"

static void test_tree_json(void **state)
{
    (void)state;
    probe_reset();
    assert_int_equal(
        actor_runtime_start(&(struct actor_config){.manual = true}), 0);
    uint64_t busy = probe_tree("a", "a", 50, 17);
    assert_int_not_equal(busy, 0);
    /* make one child the busiest: messages queued, not yet handled */
    for (int i = 0; i < 5; i++) {
        probe_send_value(NULL, busy, i);
    }

    struct actor_buf b;
    actor_buf_init(&b);
    assert_int_equal(app_actors_json(&b, 3), 0);
    assert_non_null(strstr(b.data, "\"name\":\"root\",\"supervisor\":true"));
    assert_non_null(strstr(b.data, "\"name\":\"a\",\"supervisor\":false"));
    assert_non_null(strstr(b.data, "\"children_count\":50"));
    assert_non_null(strstr(b.data, "\"by_kind\":{\"probe\":50}"));
    /* the busiest comes first, with its queue */
    char *busiest = strstr(b.data, "\"busiest\":[");
    assert_non_null(busiest);
    assert_non_null(strstr(busiest, "\"mailbox\":5"));
    assert_true(strstr(busiest, "\"mailbox\":5") <
                strstr(busiest, "\"mailbox\":0"));
    actor_buf_reset(&b);
    assert_int_equal(app_runtime_metrics(&b), 0);
    assert_non_null(strstr(b.data, "# TYPE scorewire_actors gauge\n"));
    assert_non_null(strstr(b.data, "scorewire_actors{kind=\"probe\"} 51\n"));
    assert_non_null(
        strstr(b.data, "scorewire_actors{kind=\"supervisor\"} 2\n"));
    assert_non_null(strstr(b.data, "scorewire_actor_mailbox_max_messages"
                                   "{kind=\"probe\"} 5\n"));
    actor_buf_release(&b);

    assert_true(probe_tree_stop());
    actor_runtime_stop();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tree_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
