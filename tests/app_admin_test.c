/* tests/app_admin_test.c - the admin port's routes, called as the admin
 * listener calls them: the metrics (the registry and the runtime's series,
 * in Prometheus text), the actor tree as JSON, and the log level read and
 * changed at run time. */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>

#include <cmocka.h>

#include "actor/actor.h"
#include "app/app.h"
#include "notify/notify.h"
#include "tests/probe.h"

static notify_route_fn route(const char *method, const char *path)
{
    struct notify_admin_config cfg = {0};
    app_admin_routes(&cfg);
    for (size_t i = 0; i < cfg.n_routes; i++) {
        if (strcmp(cfg.routes[i].method, method) == 0 &&
            strcmp(cfg.routes[i].path, path) == 0) {
            return cfg.routes[i].handle;
        }
    }
    return NULL;
}

/* Calls @method @path with @body; returns the status, the body in @out. */
static int call(const char *method, const char *path, const char *body,
                struct actor_buf *out, const char **type)
{
    notify_route_fn fn = route(method, path);
    assert_non_null(fn);
    actor_buf_reset(out);
    *type = NULL;
    return fn(body, strlen(body), out, type);
}

static void test_routes_are_the_documented_ones(void **state)
{
    (void)state;
    assert_non_null(route("GET", "/metrics"));
    assert_non_null(route("GET", "/actors"));
    assert_non_null(route("GET", "/loglevel"));
    assert_non_null(route("PUT", "/loglevel"));
    assert_non_null(route("GET", "/api/model"));
    assert_null(route("PUT", "/metrics"));
}

static void test_loglevel(void **state)
{
    (void)state;
    struct actor_buf out;
    actor_buf_init(&out);
    const char *type;
    actor_log_set_level(ACTOR_LOG_INFO);
    assert_int_equal(call("GET", "/loglevel", "", &out, &type), 200);
    assert_string_equal(out.data, "info\n");

    /* The word, with the whitespace a shell adds. */
    assert_int_equal(call("PUT", "/loglevel", " debug\r\n", &out, &type), 200);
    assert_string_equal(out.data, "debug\n");
    assert_int_equal(actor_log_get_level(), ACTOR_LOG_DEBUG);
    assert_int_equal(call("GET", "/loglevel", "", &out, &type), 200);
    assert_string_equal(out.data, "debug\n");

    /* Anything else: 400 with the reason; the level stays. */
    static const char *const bad[] = {
        "", "   ", "loud", "INFO", "info warn", "debugdebugdebugdebug"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(call("PUT", "/loglevel", bad[i], &out, &type), 400);
        assert_non_null(strstr(out.data, "debug, info, warn, error"));
    }
    assert_int_equal(actor_log_get_level(), ACTOR_LOG_DEBUG);
    assert_int_equal(call("PUT", "/loglevel", "error", &out, &type), 200);
    assert_int_equal(actor_log_get_level(), ACTOR_LOG_ERROR);
    actor_log_set_level(ACTOR_LOG_INFO);
    actor_buf_release(&out);
}

static void test_metrics_and_actors(void **state)
{
    (void)state;
    assert_int_equal(
        actor_runtime_start(&(struct actor_config){.manual = true}), 0);
    probe_reset();
    static struct probe_cfg pc = {.rec = "p"};
    uint64_t pid;
    assert_int_equal(actor_spawn(&(struct actor_spawn){.ops = &probe_ops,
                                                       .arg = &pc,
                                                       .name = "admin.probe"},
                                 &pid),
                     0);
    actor_run_until_idle();
    struct actor_metric *c = actor_metric_counter(
        "scorewire_test_admin_total", "A counter of this test", NULL);
    actor_metric_add(c, 7);
    struct actor_buf out;
    actor_buf_init(&out);
    const char *type;

    assert_int_equal(call("GET", "/metrics", "", &out, &type), 200);
    assert_string_equal(type, "text/plain; version=0.0.4; charset=utf-8");
    /* The registry's series and the runtime's, in one text. */
    assert_non_null(strstr(out.data, "\nscorewire_test_admin_total 7\n"));
    assert_non_null(strstr(out.data, "# TYPE scorewire_actors_spawned_total "
                                     "counter\n"));

    assert_int_equal(call("GET", "/actors", "", &out, &type), 200);
    assert_string_equal(type, "application/json");
    assert_int_equal(strncmp(out.data, "{\"alive\":1,", 11), 0);
    assert_non_null(strstr(out.data, "\"name\":\"admin.probe\""));

    actor_buf_release(&out);
    actor_runtime_stop();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_routes_are_the_documented_ones),
        cmocka_unit_test(test_loglevel),
        cmocka_unit_test(test_metrics_and_actors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
