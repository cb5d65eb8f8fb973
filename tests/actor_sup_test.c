/* tests/actor_sup_test.c - supervisors in manual mode: every strategy and
 * restart type, intensity and escalation, start and shutdown order,
 * shutdown timeouts, dynamic children. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>

#include <cmocka.h>

#include "actor/actor.h"
#include "tests/probe.h"

static struct probe_cfg cfg_c1 = {.rec = "c1"};
static struct probe_cfg cfg_c2 = {.rec = "c2"};
static struct probe_cfg cfg_c3 = {.rec = "c3"};

#define CHILD(idv, cfgp, restartv)                                             \
    {                                                                          \
        .id = (idv), .start = {.ops = &probe_ops, .arg = (cfgp)},              \
        .restart = (restartv), .shutdown_ms = 1000                             \
    }

static uint64_t start_sup(const struct actor_sup_spec *spec)
{
    uint64_t pid = 0;
    assert_int_equal(actor_sup_start(spec, 0, &pid), 0);
    actor_run_until_idle();
    return pid;
}

static void stop_sup(uint64_t sup)
{
    struct actor_exit why = {.kind = ACTOR_EXIT_SHUTDOWN};
    actor_exit(NULL, sup, &why);
    actor_run_until_idle();
    actor_advance_ms(10000);
    actor_run_until_idle();
    assert_false(actor_is_alive(sup));
}

static void crash(const char *rec)
{
    probe_send_type(NULL, probe_rec(rec)->pid, PROBE_CRASH);
    actor_run_until_idle();
}

static const struct actor_child_spec three[] = {
    CHILD("c1", &cfg_c1, ACTOR_PERMANENT),
    CHILD("c2", &cfg_c2, ACTOR_PERMANENT),
    CHILD("c3", &cfg_c3, ACTOR_PERMANENT),
};

static void test_start_order_and_shutdown_order(void **state)
{
    (void)state;
    struct actor_sup_spec spec = {.strategy = ACTOR_ONE_FOR_ONE,
                                  .intensity = 3,
                                  .period_ms = 5000,
                                  .children = three,
                                  .n_children = 3};
    uint64_t sup = start_sup(&spec);
    struct probe_rec *c1 = probe_rec("c1"), *c2 = probe_rec("c2"),
                     *c3 = probe_rec("c3");
    assert_true(c1->init_order < c2->init_order);
    assert_true(c2->init_order < c3->init_order);
    /* children are linked to their supervisor, which they name */
    struct actor_info info;
    assert_int_equal(actor_info_get(c2->pid, &info), 0);
    assert_int_equal(info.parent, sup);
    assert_int_equal(actor_info_get(sup, &info), 0);
    assert_true(info.supervisor);
    stop_sup(sup);
    assert_int_equal(c1->stops, 1);
    assert_true(c3->stop_order < c2->stop_order);
    assert_true(c2->stop_order < c1->stop_order);
    assert_int_equal(c1->stop_why.kind, ACTOR_EXIT_SHUTDOWN);
}

static void test_one_for_one(void **state)
{
    (void)state;
    struct actor_sup_spec spec = {.strategy = ACTOR_ONE_FOR_ONE,
                                  .intensity = 3,
                                  .period_ms = 5000,
                                  .children = three,
                                  .n_children = 3};
    uint64_t sup = start_sup(&spec);
    uint64_t old = probe_rec("c2")->pid;
    crash("c2");
    assert_int_equal(probe_rec("c1")->inits, 1);
    assert_int_equal(probe_rec("c2")->inits, 2);
    assert_int_equal(probe_rec("c3")->inits, 1);
    uint64_t now = probe_rec("c2")->pid;
    assert_int_not_equal(old, now);
    assert_true(actor_is_alive(now));
    struct actor_info info;
    assert_int_equal(actor_info_get(now, &info), 0);
    assert_int_equal(info.restarts, 1);
    struct actor_stats st;
    actor_stats_get(&st);
    assert_true(st.restarts >= 1);
    stop_sup(sup);
}

static void test_one_for_all(void **state)
{
    (void)state;
    struct actor_sup_spec spec = {.strategy = ACTOR_ONE_FOR_ALL,
                                  .intensity = 3,
                                  .period_ms = 5000,
                                  .children = three,
                                  .n_children = 3};
    uint64_t sup = start_sup(&spec);
    crash("c2");
    struct probe_rec *c1 = probe_rec("c1"), *c3 = probe_rec("c3");
    assert_int_equal(c1->inits, 2);
    assert_int_equal(probe_rec("c2")->inits, 2);
    assert_int_equal(c3->inits, 2);
    /* the others stopped in reverse order, then all started in order */
    assert_true(c3->stop_order < c1->stop_order);
    assert_true(c1->init_order < probe_rec("c2")->init_order);
    assert_true(probe_rec("c2")->init_order < c3->init_order);
    assert_int_equal(c1->stop_why.kind, ACTOR_EXIT_SHUTDOWN);
    stop_sup(sup);
}

static void test_rest_for_one(void **state)
{
    (void)state;
    struct actor_sup_spec spec = {.strategy = ACTOR_REST_FOR_ONE,
                                  .intensity = 3,
                                  .period_ms = 5000,
                                  .children = three,
                                  .n_children = 3};
    uint64_t sup = start_sup(&spec);
    crash("c2");
    assert_int_equal(probe_rec("c1")->inits, 1);
    assert_int_equal(probe_rec("c1")->stops, 0);
    assert_int_equal(probe_rec("c2")->inits, 2);
    assert_int_equal(probe_rec("c3")->inits, 2);
    assert_int_equal(probe_rec("c3")->stops, 1);
    stop_sup(sup);
}

static void test_restart_types(void **state)
{
    (void)state;
    static struct probe_cfg p = {.rec = "perm"}, t = {.rec = "trans"},
                            x = {.rec = "temp"};
    static const struct actor_child_spec kids[] = {
        CHILD("perm", &p, ACTOR_PERMANENT),
        CHILD("trans", &t, ACTOR_TRANSIENT),
        CHILD("temp", &x, ACTOR_TEMPORARY),
    };
    struct actor_sup_spec spec = {.strategy = ACTOR_ONE_FOR_ONE,
                                  .intensity = 10,
                                  .period_ms = 5000,
                                  .children = kids,
                                  .n_children = 3};
    uint64_t sup = start_sup(&spec);
    /* permanent: restarted even after a normal exit */
    probe_send_type(NULL, probe_rec("perm")->pid, PROBE_EXIT_NORMAL);
    actor_run_until_idle();
    assert_int_equal(probe_rec("perm")->inits, 2);
    /* transient: restarted after a crash, not after a normal exit */
    crash("trans");
    assert_int_equal(probe_rec("trans")->inits, 2);
    probe_send_type(NULL, probe_rec("trans")->pid, PROBE_EXIT_NORMAL);
    actor_run_until_idle();
    assert_int_equal(probe_rec("trans")->inits, 2);
    assert_false(actor_is_alive(probe_rec("trans")->pid));
    /* temporary: never */
    crash("temp");
    assert_int_equal(probe_rec("temp")->inits, 1);
    assert_false(actor_is_alive(probe_rec("temp")->pid));
    assert_true(actor_is_alive(sup));
    stop_sup(sup);
}

static void test_temporary_not_restarted_by_sibling(void **state)
{
    (void)state;
    static struct probe_cfg a = {.rec = "a"}, t = {.rec = "temp"};
    static const struct actor_child_spec kids[] = {
        CHILD("a", &a, ACTOR_PERMANENT),
        CHILD("temp", &t, ACTOR_TEMPORARY),
    };
    struct actor_sup_spec spec = {.strategy = ACTOR_ONE_FOR_ALL,
                                  .intensity = 10,
                                  .period_ms = 5000,
                                  .children = kids,
                                  .n_children = 2};
    uint64_t sup = start_sup(&spec);
    crash("a");
    assert_int_equal(probe_rec("a")->inits, 2);
    assert_int_equal(probe_rec("temp")->inits, 1);
    assert_int_equal(probe_rec("temp")->stops, 1);
    stop_sup(sup);
}

static void test_intensity(void **state)
{
    (void)state;
    static struct probe_cfg a = {.rec = "a"}, b = {.rec = "b"};
    static const struct actor_child_spec kids[] = {
        CHILD("a", &a, ACTOR_PERMANENT),
        CHILD("b", &b, ACTOR_PERMANENT),
    };
    struct actor_sup_spec spec = {.strategy = ACTOR_ONE_FOR_ONE,
                                  .intensity = 2,
                                  .period_ms = 1000,
                                  .children = kids,
                                  .n_children = 2};
    uint64_t sup = start_sup(&spec);
    /* spread out: never more than 2 within the period */
    for (int i = 0; i < 5; i++) {
        crash("a");
        actor_advance_ms(600);
    }
    assert_true(actor_is_alive(sup));
    assert_int_equal(probe_rec("a")->inits, 6);
    /* three within the period: the supervisor gives up */
    actor_advance_ms(1000);
    crash("a");
    crash("a");
    assert_true(actor_is_alive(sup));
    crash("a");
    assert_false(actor_is_alive(sup));
    /* and took its other children with it, in order */
    assert_int_equal(probe_rec("b")->stops, 1);
    assert_int_equal(probe_rec("b")->stop_why.kind, ACTOR_EXIT_SHUTDOWN);
}

static void test_escalation_to_parent(void **state)
{
    (void)state;
    static struct probe_cfg w = {.rec = "w"};
    static const struct actor_child_spec inner_kids[] = {
        CHILD("w", &w, ACTOR_PERMANENT),
    };
    static const struct actor_sup_spec inner = {.name = "inner",
                                                .strategy = ACTOR_ONE_FOR_ONE,
                                                .intensity = 1,
                                                .period_ms = 1000,
                                                .children = inner_kids,
                                                .n_children = 1};
    static struct probe_cfg s = {.rec = "sibling"};
    static const struct actor_child_spec outer_kids[] = {
        {.id = "inner",
         .sup = &inner,
         .restart = ACTOR_PERMANENT,
         .shutdown_ms = ACTOR_INFINITY},
        CHILD("sibling", &s, ACTOR_PERMANENT),
    };
    struct actor_sup_spec outer = {.strategy = ACTOR_ONE_FOR_ONE,
                                   .intensity = 1,
                                   .period_ms = 1000,
                                   .children = outer_kids,
                                   .n_children = 2};
    uint64_t root = start_sup(&outer);
    uint64_t inner_pid = actor_whereis("inner");
    assert_int_not_equal(inner_pid, 0);
    /* inner gives up after 2 crashes; outer restarts it once */
    crash("w");
    crash("w");
    assert_false(actor_is_alive(inner_pid));
    uint64_t inner2 = actor_whereis("inner");
    assert_int_not_equal(inner2, 0);
    assert_int_not_equal(inner2, inner_pid);
    assert_true(actor_is_alive(root));
    assert_int_equal(probe_rec("w")->inits, 3); /* first, restart, fresh */
    /* again: now the root exceeds its own intensity and ends */
    crash("w");
    crash("w");
    assert_false(actor_is_alive(root));
    assert_false(actor_is_alive(probe_rec("sibling")->pid));
}

static void test_root_end_seen_by_wait(void **state)
{
    (void)state;
    static struct probe_cfg a = {.rec = "a"};
    static const struct actor_child_spec kids[] = {
        CHILD("a", &a, ACTOR_PERMANENT),
    };
    struct actor_sup_spec spec = {.strategy = ACTOR_ONE_FOR_ONE,
                                  .intensity = 0,
                                  .period_ms = 1000,
                                  .children = kids,
                                  .n_children = 1};
    uint64_t sup = start_sup(&spec);
    crash("a");
    struct actor_exit why;
    assert_true(actor_wait(sup, 0, &why));
    assert_int_equal(why.kind, ACTOR_EXIT_SHUTDOWN);
    assert_string_equal(why.text, "reached max restart intensity");
}

static void test_shutdown_timeout_kills(void **state)
{
    (void)state;
    static struct probe_cfg stubborn = {
        .rec = "stubborn", .trap = true, .ignore_shutdown = true};
    static struct probe_cfg brutal = {
        .rec = "brutal", .trap = true, .ignore_shutdown = true};
    static const struct actor_child_spec kids[] = {
        {.id = "stubborn",
         .start = {.ops = &probe_ops, .arg = &stubborn},
         .restart = ACTOR_PERMANENT,
         .shutdown_ms = 500},
        {.id = "brutal",
         .start = {.ops = &probe_ops, .arg = &brutal},
         .restart = ACTOR_PERMANENT,
         .shutdown_ms = 0},
    };
    struct actor_sup_spec spec = {.strategy = ACTOR_ONE_FOR_ONE,
                                  .intensity = 1,
                                  .period_ms = 1000,
                                  .children = kids,
                                  .n_children = 2};
    uint64_t sup = 0;
    assert_int_equal(actor_sup_start(&spec, 0, &sup), 0);
    actor_run_until_idle();
    struct actor_exit why = {.kind = ACTOR_EXIT_SHUTDOWN};
    actor_exit(NULL, sup, &why);
    actor_run_until_idle();
    /* brutal (stopped first, reverse order) is killed at once */
    assert_int_equal(probe_rec("brutal")->stops, 1);
    assert_int_equal(probe_rec("brutal")->stop_why.kind, ACTOR_EXIT_KILLED);
    /* stubborn ignores shutdown; it is killed when its 500 ms are up */
    assert_int_equal(probe_rec("stubborn")->exits, 1);
    assert_int_equal(probe_rec("stubborn")->stops, 0);
    actor_advance_ms(499);
    actor_run_until_idle();
    assert_int_equal(probe_rec("stubborn")->stops, 0);
    actor_advance_ms(1);
    actor_run_until_idle();
    assert_int_equal(probe_rec("stubborn")->stops, 1);
    assert_int_equal(probe_rec("stubborn")->stop_why.kind, ACTOR_EXIT_KILLED);
    assert_false(actor_is_alive(sup));
}

static void test_deferred_init_orders_start(void **state)
{
    (void)state;
    static struct probe_cfg slow = {.rec = "slow", .defer = true};
    static struct probe_cfg next = {.rec = "next"};
    static const struct actor_child_spec kids[] = {
        CHILD("slow", &slow, ACTOR_PERMANENT),
        CHILD("next", &next, ACTOR_PERMANENT),
    };
    struct actor_sup_spec spec = {.strategy = ACTOR_ONE_FOR_ONE,
                                  .intensity = 1,
                                  .period_ms = 1000,
                                  .children = kids,
                                  .n_children = 2};
    uint64_t sup = start_sup(&spec);
    assert_int_equal(probe_rec("slow")->inits, 1);
    assert_int_equal(probe_rec("next")->inits, 0);
    probe_send_type(NULL, probe_rec("slow")->pid, PROBE_INIT_DONE);
    actor_run_until_idle();
    assert_int_equal(probe_rec("next")->inits, 1);
    stop_sup(sup);
}

static void test_failed_start_fails_supervisor(void **state)
{
    (void)state;
    static struct probe_cfg ok = {.rec = "ok"};
    static struct probe_cfg bad = {.rec = "bad", .fail_init = -EACCES};
    static struct probe_cfg never = {.rec = "never"};
    static const struct actor_child_spec kids[] = {
        CHILD("ok", &ok, ACTOR_PERMANENT),
        CHILD("bad", &bad, ACTOR_PERMANENT),
        CHILD("never", &never, ACTOR_PERMANENT),
    };
    struct actor_sup_spec spec = {.strategy = ACTOR_ONE_FOR_ONE,
                                  .intensity = 5,
                                  .period_ms = 1000,
                                  .children = kids,
                                  .n_children = 3};
    uint64_t sup = start_sup(&spec);
    struct actor_exit why;
    assert_true(actor_wait(sup, 0, &why));
    assert_int_equal(why.kind, ACTOR_EXIT_ERROR);
    assert_non_null(strstr(why.text, "bad"));
    assert_int_equal(probe_rec("ok")->stops, 1);
    assert_int_equal(probe_rec("never")->inits, 0);
}

/* ---- dynamic ---------------------------------------------------------- */

static int args_freed;

static void arg_free(void *arg)
{
    args_freed++;
    free(arg);
}

static struct actor_child_spec dyn_spec(const char *rec, const char *name,
                                        enum actor_restart restart)
{
    struct probe_cfg *cfg = calloc(1, sizeof(*cfg));
    cfg->rec = rec;
    return (struct actor_child_spec){
        .id = rec,
        .start = {.ops = &probe_ops, .arg = cfg, .name = name},
        .arg_free = arg_free,
        .restart = restart,
        .shutdown_ms = 1000,
    };
}

static void test_dynamic(void **state)
{
    (void)state;
    args_freed = 0;
    struct actor_sup_spec spec = {.name = "dyn",
                                  .strategy = ACTOR_DYNAMIC,
                                  .intensity = 10,
                                  .period_ms = 1000};
    uint64_t sup = start_sup(&spec);
    uint64_t a = 0, b = 0, again = 0;
    struct actor_child_spec sa = dyn_spec("da", "match:a", ACTOR_TRANSIENT);
    struct actor_child_spec sb = dyn_spec("db", "match:b", ACTOR_TRANSIENT);
    assert_int_equal(actor_sup_start_child(sup, &sa, &a), 0);
    assert_int_equal(actor_sup_start_child(sup, &sb, &b), 0);
    /* the name is taken: the holder comes back, the arg is freed */
    struct actor_child_spec dup = dyn_spec("dup", "match:a", ACTOR_TRANSIENT);
    assert_int_equal(actor_sup_start_child(sup, &dup, &again), -EEXIST);
    assert_int_equal(again, a);
    assert_int_equal(args_freed, 1);
    actor_run_until_idle();
    assert_int_equal(actor_whereis("match:a"), a);
    /* a crash restarts it under the same name */
    crash("da");
    uint64_t a2 = actor_whereis("match:a");
    assert_int_not_equal(a2, 0);
    assert_int_not_equal(a2, a);
    assert_int_equal(probe_rec("da")->inits, 2);
    /* a normal exit of a transient child forgets it */
    probe_send_type(NULL, b, PROBE_EXIT_NORMAL);
    actor_run_until_idle();
    assert_int_equal(actor_whereis("match:b"), 0);
    assert_int_equal(args_freed, 2);
    /* stop_child stops and forgets */
    assert_int_equal(actor_sup_stop_child(sup, a2), 0);
    actor_run_until_idle();
    assert_false(actor_is_alive(a2));
    assert_int_equal(probe_rec("da")->inits, 2);
    assert_int_equal(args_freed, 3);
    /* a static supervisor takes no children at run time */
    struct actor_child_spec c = dyn_spec("dc", NULL, ACTOR_TEMPORARY);
    assert_int_equal(actor_sup_start_child(a2, &c, NULL), -ESRCH);
    assert_int_equal(args_freed, 4);
    stop_sup(sup);
}

static void test_dynamic_shutdown_parallel(void **state)
{
    (void)state;
    args_freed = 0;
    struct actor_sup_spec spec = {
        .strategy = ACTOR_DYNAMIC, .intensity = 10, .period_ms = 1000};
    uint64_t sup = start_sup(&spec);
    char name[8][8];
    for (int i = 0; i < 8; i++) {
        snprintf(name[i], sizeof(name[i]), "k%d", i);
        struct actor_child_spec s = dyn_spec(name[i], name[i], ACTOR_PERMANENT);
        assert_int_equal(actor_sup_start_child(sup, &s, NULL), 0);
    }
    actor_run_until_idle();
    stop_sup(sup);
    for (int i = 0; i < 8; i++) {
        assert_int_equal(probe_rec(name[i])->stops, 1);
    }
    assert_int_equal(args_freed, 8);
    uint64_t pid;
    struct actor_child_spec late = dyn_spec("late", NULL, ACTOR_TEMPORARY);
    assert_int_equal(actor_sup_start_child(sup, &late, &pid), -ESRCH);
}

static void test_dynamic_killed_hands_args_over(void **state)
{
    (void)state;
    args_freed = 0;
    struct actor_sup_spec spec = {
        .strategy = ACTOR_DYNAMIC, .intensity = 10, .period_ms = 1000};
    uint64_t sup = start_sup(&spec);
    struct actor_child_spec s = dyn_spec("orphan", NULL, ACTOR_PERMANENT);
    uint64_t child;
    assert_int_equal(actor_sup_start_child(sup, &s, &child), 0);
    /* kill the supervisor before its child has even run init */
    struct actor_exit kill = {.kind = ACTOR_EXIT_KILLED};
    actor_exit(NULL, sup, &kill);
    actor_run_until_idle();
    assert_false(actor_is_alive(sup));
    assert_false(actor_is_alive(child));
    assert_int_equal(probe_rec("orphan")->inits, 1);
    assert_int_equal(args_freed, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_start_order_and_shutdown_order,
                                        probe_setup, probe_teardown),
        cmocka_unit_test_setup_teardown(test_one_for_one, probe_setup,
                                        probe_teardown),
        cmocka_unit_test_setup_teardown(test_one_for_all, probe_setup,
                                        probe_teardown),
        cmocka_unit_test_setup_teardown(test_rest_for_one, probe_setup,
                                        probe_teardown),
        cmocka_unit_test_setup_teardown(test_restart_types, probe_setup,
                                        probe_teardown),
        cmocka_unit_test_setup_teardown(test_temporary_not_restarted_by_sibling,
                                        probe_setup, probe_teardown),
        cmocka_unit_test_setup_teardown(test_intensity, probe_setup,
                                        probe_teardown),
        cmocka_unit_test_setup_teardown(test_escalation_to_parent, probe_setup,
                                        probe_teardown),
        cmocka_unit_test_setup_teardown(test_root_end_seen_by_wait, probe_setup,
                                        probe_teardown),
        cmocka_unit_test_setup_teardown(test_shutdown_timeout_kills,
                                        probe_setup, probe_teardown),
        cmocka_unit_test_setup_teardown(test_deferred_init_orders_start,
                                        probe_setup, probe_teardown),
        cmocka_unit_test_setup_teardown(test_failed_start_fails_supervisor,
                                        probe_setup, probe_teardown),
        cmocka_unit_test_setup_teardown(test_dynamic, probe_setup,
                                        probe_teardown),
        cmocka_unit_test_setup_teardown(test_dynamic_shutdown_parallel,
                                        probe_setup, probe_teardown),
        cmocka_unit_test_setup_teardown(test_dynamic_killed_hands_args_over,
                                        probe_setup, probe_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
