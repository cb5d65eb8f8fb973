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

static struct probe_cfg cfg_a = {.rec = "a"};

static void test_tree_json(void **state)
{
    (void)state;
    probe_reset();
    assert_int_equal(
        actor_runtime_start(&(struct actor_config){.manual = true}), 0);
    static const struct actor_sup_spec matches = {.name = "many",
                                                  .strategy = ACTOR_DYNAMIC,
                                                  .intensity = 1,
                                                  .period_ms = 1000};
    static const struct actor_child_spec top_kids[] = {
        {.id = "a",
         .start = {.ops = &probe_ops, .arg = &cfg_a, .name = "a"},
         .restart = ACTOR_PERMANENT,
         .shutdown_ms = 100},
        {.id = "many",
         .sup = &matches,
         .restart = ACTOR_PERMANENT,
         .shutdown_ms = ACTOR_INFINITY},
    };
    struct actor_sup_spec root = {.name = "root",
                                  .strategy = ACTOR_ONE_FOR_ONE,
                                  .intensity = 1,
                                  .period_ms = 1000,
                                  .children = top_kids,
                                  .n_children = 2};
    uint64_t sup;
    assert_int_equal(actor_sup_start(&root, 0, &sup), 0);
    actor_run_until_idle();
    uint64_t many = actor_whereis("many");
    assert_int_not_equal(many, 0);
    static struct probe_cfg m = {.rec = "m"};
    uint64_t busy = 0;
    for (int i = 0; i < 50; i++) {
        struct actor_child_spec c = {.id = "m",
                                     .start = {.ops = &probe_ops, .arg = &m},
                                     .restart = ACTOR_TEMPORARY,
                                     .shutdown_ms = 100};
        uint64_t pid;
        assert_int_equal(actor_sup_start_child(many, &c, &pid), 0);
        if (i == 17) {
            busy = pid;
        }
    }
    actor_run_until_idle();
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

    struct actor_exit sd = {.kind = ACTOR_EXIT_SHUTDOWN};
    actor_exit(NULL, sup, &sd);
    actor_run_until_idle();
    assert_false(actor_is_alive(sup));
    actor_runtime_stop();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tree_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
