/* tests/notify_admin_test.c - the admin listener's requests without a
 * socket: routing (404, 405 with Allow, HEAD), body bounds (411, 413,
 * streamed past the bound), what the route says, and its failures. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>

#include <cmocka.h>

#include "notify/notify_impl.h"

/* What the last route call saw. */
static struct {
    int calls;
    char body[64];
    size_t len;
    bool terminated; /* body[len] was NUL */
} seen;

static int route_echo(const char *body, size_t len, struct actor_buf *out,
                      const char **type)
{
    seen.calls++;
    seen.len = len;
    seen.terminated = body[len] == '\0';
    snprintf(seen.body, sizeof(seen.body), "%s", body);
    actor_buf_printf(out, "got %zu", len);
    *type = "application/json";
    return 201;
}

static int route_plain(const char *body, size_t len, struct actor_buf *out,
                       const char **type)
{
    (void)body;
    (void)len;
    (void)type; /* leaves the default */
    seen.calls++;
    actor_buf_str(out, "plain");
    return 200;
}

static int route_enomem(const char *body, size_t len, struct actor_buf *out,
                        const char **type)
{
    (void)body;
    (void)len;
    (void)out;
    (void)type;
    seen.calls++;
    return -ENOMEM;
}

static int route_eio(const char *body, size_t len, struct actor_buf *out,
                     const char **type)
{
    (void)body;
    (void)len;
    (void)type;
    seen.calls++;
    actor_buf_str(out, "half an answer");
    return -EIO;
}

static int route_bad_status(const char *body, size_t len, struct actor_buf *out,
                            const char **type)
{
    (void)body;
    (void)len;
    (void)out;
    (void)type;
    seen.calls++;
    return 42;
}

static const struct notify_route routes[] = {
    {.method = "GET", .path = "/plain", .handle = route_plain},
    {.method = "PUT", .path = "/echo", .handle = route_echo},
    {.method = "POST", .path = "/echo", .handle = route_echo},
    {.method = "GET", .path = "/enomem", .handle = route_enomem},
    {.method = "GET", .path = "/eio", .handle = route_eio},
    {.method = "GET", .path = "/status", .handle = route_bad_status},
};

static const struct notify_admin_config cfg = {
    .routes = routes,
    .n_routes = sizeof(routes) / sizeof(routes[0]),
    .max_body = 16,
};

static int reset(void **state)
{
    (void)state;
    memset(&seen, 0, sizeof(seen));
    return 0;
}

/* Runs a whole request whose body (if any) arrives in pieces of @piece
 * bytes. Returns what finish returned (or begin's error). */
static int request(struct notify__admin_req *r, const char *method,
                   const char *path, const char *body, int64_t clen,
                   size_t piece)
{
    memset(r, 0, sizeof(*r));
    int rc = notify__admin_begin(&cfg, r, method, path, clen);
    if (rc != 0) {
        return rc < 0 ? rc : 0;
    }
    size_t len = body ? strlen(body) : 0;
    for (size_t at = 0; at < len; at += piece) {
        size_t n = len - at < piece ? len - at : piece;
        rc = notify__admin_body(r, body + at, n);
        if (rc != 0) {
            return rc;
        }
    }
    return notify__admin_finish(r);
}

static void test_route_answers(void **state)
{
    (void)state;
    struct notify__admin_req r;
    assert_int_equal(request(&r, "GET", "/plain", NULL, -1, 1), 0);
    assert_true(r.answered);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.content_type, "text/plain; charset=utf-8");
    assert_string_equal(r.out.body.data, "plain");
    assert_string_equal(r.allow, "");
    assert_false(r.head);
    assert_int_equal(seen.calls, 1);
    notify__admin_req_release(&r);
    /* Finishing twice runs the route once. */
    assert_int_equal(request(&r, "GET", "/plain", NULL, -1, 1), 0);
    assert_int_equal(notify__admin_finish(&r), 0);
    assert_int_equal(seen.calls, 2);
    notify__admin_req_release(&r);
}

static void test_head_is_get_without_body(void **state)
{
    (void)state;
    struct notify__admin_req r;
    assert_int_equal(request(&r, "HEAD", "/plain", NULL, -1, 1), 0);
    assert_true(r.head);
    assert_int_equal(r.status, 200);
    /* The body is there, so Content-Length says what GET would send. */
    assert_string_equal(r.out.body.data, "plain");
    notify__admin_req_release(&r);
}

static void test_unknown_path_and_method(void **state)
{
    (void)state;
    struct notify__admin_req r = {0};
    assert_int_equal(notify__admin_begin(&cfg, &r, "GET", "/nope", -1), 1);
    assert_int_equal(r.status, 404);
    assert_string_equal(r.allow, "");
    notify__admin_req_release(&r);
    /* Prefixes and suffixes of a route are other paths. */
    assert_int_equal(notify__admin_begin(&cfg, &r, "GET", "/plain/x", -1), 1);
    assert_int_equal(r.status, 404);
    notify__admin_req_release(&r);
    assert_int_equal(notify__admin_begin(&cfg, &r, "GET", "/pla", -1), 1);
    assert_int_equal(r.status, 404);
    notify__admin_req_release(&r);
    /* A known path, another method: 405 naming the ones it takes. */
    assert_int_equal(notify__admin_begin(&cfg, &r, "DELETE", "/echo", -1), 1);
    assert_int_equal(r.status, 405);
    assert_string_equal(r.allow, "PUT, POST");
    notify__admin_req_release(&r);
    assert_int_equal(notify__admin_begin(&cfg, &r, "PUT", "/plain", 3), 1);
    assert_int_equal(r.status, 405);
    assert_string_equal(r.allow, "GET");
    notify__admin_req_release(&r);
    assert_int_equal(seen.calls, 0);
}

static void test_body_reaches_the_route(void **state)
{
    (void)state;
    struct notify__admin_req r;
    assert_int_equal(request(&r, "PUT", "/echo", "warn\n", 5, 2), 0);
    assert_int_equal(r.status, 201);
    assert_string_equal(r.content_type, "application/json");
    assert_int_equal(seen.len, 5);
    assert_true(seen.terminated);
    assert_string_equal(seen.body, "warn\n");
    assert_string_equal(r.out.body.data, "got 5");
    notify__admin_req_release(&r);
    /* Exactly the bound is fine; an empty body is "". */
    assert_int_equal(request(&r, "POST", "/echo", "0123456789abcdef", 16, 5),
                     0);
    assert_int_equal(r.status, 201);
    assert_int_equal(seen.len, 16);
    notify__admin_req_release(&r);
    assert_int_equal(request(&r, "PUT", "/echo", "", 0, 1), 0);
    assert_int_equal(r.status, 201);
    assert_int_equal(seen.len, 0);
    assert_true(seen.terminated);
    notify__admin_req_release(&r);
}

static void test_body_bounds(void **state)
{
    (void)state;
    struct notify__admin_req r = {0};
    /* Announced too large: refused before reading. */
    assert_int_equal(notify__admin_begin(&cfg, &r, "PUT", "/echo", 17), 1);
    assert_int_equal(r.status, 413);
    notify__admin_req_release(&r);
    /* No length: refused. */
    assert_int_equal(notify__admin_begin(&cfg, &r, "PUT", "/echo", -1), 1);
    assert_int_equal(r.status, 411);
    notify__admin_req_release(&r);
    /* More bytes than announced and than the bound: refused at the end,
     * the route never runs, and nothing past the bound is kept. */
    assert_int_equal(request(&r, "PUT", "/echo", "0123456789abcdef0123", 4, 3),
                     0);
    assert_int_equal(r.status, 413);
    assert_true(r.refused);
    assert_int_equal(r.in.len, 0);
    notify__admin_req_release(&r);
    assert_int_equal(seen.calls, 0);
    /* The default bound is 4 KiB. */
    struct notify_admin_config dflt = cfg;
    dflt.max_body = 0;
    assert_int_equal(notify__admin_begin(&dflt, &r, "PUT", "/echo", 4096), 0);
    notify__admin_req_release(&r);
    assert_int_equal(notify__admin_begin(&dflt, &r, "PUT", "/echo", 4097), 1);
    assert_int_equal(r.status, 413);
    notify__admin_req_release(&r);
}

static void test_route_failures(void **state)
{
    (void)state;
    struct notify__admin_req r;
    /* Out of memory: the actor must fail. */
    assert_int_equal(request(&r, "GET", "/enomem", NULL, -1, 1), -ENOMEM);
    notify__admin_req_release(&r);
    /* Another error, or a status that is not one: 500, and what the route
     * wrote is not sent. */
    assert_int_equal(request(&r, "GET", "/eio", NULL, -1, 1), 0);
    assert_int_equal(r.status, 500);
    assert_string_equal(r.out.body.data, "internal error\n");
    notify__admin_req_release(&r);
    assert_int_equal(request(&r, "GET", "/status", NULL, -1, 1), 0);
    assert_int_equal(r.status, 500);
    notify__admin_req_release(&r);
    assert_int_equal(seen.calls, 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_route_answers, reset),
        cmocka_unit_test_setup(test_head_is_get_without_body, reset),
        cmocka_unit_test_setup(test_unknown_path_and_method, reset),
        cmocka_unit_test_setup(test_body_reaches_the_route, reset),
        cmocka_unit_test_setup(test_body_bounds, reset),
        cmocka_unit_test_setup(test_route_failures, reset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
