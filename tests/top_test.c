/* tests/top_test.c - scorewire-top's parts: the strict JSON parser, the
 * Prometheus text parser (both also against what the daemon really
 * renders), histogram quantiles and counter rates, the HTTP response
 * parser and client, the view and the frame. */
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>

#include <cmocka.h>

#include "actor/actor.h"
#include "app/app.h"
#include "tests/probe.h"
#include "tools/top/top.h"

/* ---- JSON ---------------------------------------------------------------- */

static int parse_json(const char *text, struct top_json_doc *doc)
{
    memset(doc, 0, sizeof(*doc));
    return top_json_parse(doc, text, strlen(text));
}

static void test_json_values(void **state)
{
    (void)state;
    struct top_json_doc d;
    assert_int_equal(
        parse_json(" {\"a\":[1,-0.5,2e3,1E-2,0],\"s\":\"x\\\"\\\\\\/\\b\\f"
                   "\\n\\r\\t\\u00e9\\ud83d\\ude00\xc3\xa9\",\"t\":true,"
                   "\"f\":false,\"n\":null,\"o\":{},\"e\":[]}\r\n",
                   &d),
        0);
    const struct top_json *a = top_json_get(d.root, "a");
    assert_non_null(a);
    assert_int_equal(a->type, TOP_JSON_ARRAY);
    assert_int_equal(a->len, 5);
    double want[] = {1, -0.5, 2000, 0.01, 0};
    size_t i = 0;
    for (const struct top_json *m = a->first; m; m = m->next, i++) {
        assert_int_equal(m->type, TOP_JSON_NUMBER);
        assert_true(m->num == want[i]);
    }
    const struct top_json *s = top_json_get(d.root, "s");
    assert_int_equal(s->type, TOP_JSON_STRING);
    static const char decoded[] = "x\"\\/\b\f\n\r\t\xc3\xa9\xf0\x9f\x98\x80"
                                  "\xc3\xa9";
    assert_int_equal(s->len, sizeof(decoded) - 1);
    assert_memory_equal(s->str, decoded, sizeof(decoded));
    assert_true(top_json_bool(d.root, "t", false));
    assert_false(top_json_bool(d.root, "f", true));
    assert_true(top_json_bool(d.root, "n", true)); /* null: the default */
    assert_int_equal(top_json_get(d.root, "n")->type, TOP_JSON_NULL);
    assert_int_equal(top_json_get(d.root, "o")->len, 0);
    assert_null(top_json_get(d.root, "o")->first);
    assert_int_equal(top_json_get(d.root, "e")->type, TOP_JSON_ARRAY);
    assert_null(top_json_get(d.root, "missing"));
    assert_null(top_json_get(a, "a"));              /* not an object */
    assert_true(top_json_num(d.root, "s", 7) == 7); /* wrong type */
    assert_string_equal(top_json_str(d.root, "a", "def"), "def");
    top_json_doc_free(&d);

    /* an embedded NUL keeps its length; duplicate names: the first wins */
    assert_int_equal(parse_json("{\"k\":\"a\\u0000b\",\"k\":2}", &d), 0);
    assert_int_equal(top_json_get(d.root, "k")->len, 3);
    top_json_doc_free(&d);
    /* scalars at the top */
    assert_int_equal(parse_json("\"x\"", &d), 0);
    assert_string_equal(d.root->str, "x");
    top_json_doc_free(&d);
    assert_int_equal(parse_json("-12", &d), 0);
    assert_true(d.root->num == -12);
    top_json_doc_free(&d);
}

static void test_json_strict(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "   ",
        "{",
        "[1,]",
        "{\"a\":1,}",
        "[1 2]",
        "{\"a\" 1}",
        "{a:1}",
        "{'a':1}",
        "01",
        "-",
        "1.",
        ".5",
        "1e",
        "+1",
        "NaN",
        "Infinity",
        "tru",
        "nul",
        "[true false]",
        "\"abc",
        "\"a\nb\"", /* raw control character */
        "\"\\x\"",  /* unknown escape */
        "\"\\u12g4\"",
        "\"\\ud800\"",          /* high surrogate alone */
        "\"\\ud800\\u0041\"",   /* high surrogate, then not a low one */
        "\"\\udc00\"",          /* low surrogate alone */
        "\"\xc0\xaf\"",         /* overlong */
        "\"\xe0\x80\xaf\"",     /* overlong */
        "\"\xed\xa0\x80\"",     /* an encoded surrogate */
        "\"\xf4\x90\x80\x80\"", /* past U+10FFFF */
        "\"\xff\"",
        "\"\xc3\"", /* cut sequence */
        "\"\\",
        "[1] x",
        "{} {}",
        "/* c */ 1",
        "[1,\x0b 2]", /* vertical tab is not JSON whitespace */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct top_json_doc d;
        if (parse_json(bad[i], &d) != -EINVAL) {
            fail_msg("accepted: %s", bad[i]);
        }
        assert_null(d.root);
        top_json_doc_free(&d);
    }
    /* the offset names where it went wrong */
    struct top_json_doc d;
    assert_int_equal(parse_json("{\"a\":[1,2,]}", &d), -EINVAL);
    assert_int_equal(d.err_at, 10);
    top_json_doc_free(&d);
    /* a string is not cut at a NUL byte in the buffer */
    memset(&d, 0, sizeof(d));
    assert_int_equal(top_json_parse(&d, "\"a\0b\"", 5), -EINVAL);
    top_json_doc_free(&d);
}

static void test_json_depth(void **state)
{
    (void)state;
    char deep[2 * (TOP_JSON_DEPTH_MAX + 1) + 1];
    size_t n = 0;
    for (int i = 0; i < TOP_JSON_DEPTH_MAX; i++) {
        deep[n++] = '[';
    }
    for (int i = 0; i < TOP_JSON_DEPTH_MAX; i++) {
        deep[n++] = ']';
    }
    deep[n] = '\0';
    struct top_json_doc d;
    assert_int_equal(parse_json(deep, &d), 0);
    top_json_doc_free(&d);
    memmove(deep + 1, deep, n + 1);
    deep[0] = '[';
    deep[n + 1] = ']';
    deep[n + 2] = '\0';
    assert_int_equal(parse_json(deep, &d), -EINVAL);
    top_json_doc_free(&d);
    /* a hostile nesting far past the limit fails without recursing */
    size_t big = 1 << 20;
    char *bomb = malloc(big + 1);
    assert_non_null(bomb);
    memset(bomb, '[', big);
    bomb[big] = '\0';
    assert_int_equal(parse_json(bomb, &d), -EINVAL);
    assert_int_equal(d.err_at, TOP_JSON_DEPTH_MAX);
    top_json_doc_free(&d);
    free(bomb);
}

static void test_arena(void **state)
{
    (void)state;
    struct top_arena a = {0};
    assert_null(top_arena_alloc(&a, SIZE_MAX));
    assert_null(top_arena_alloc(&a, SIZE_MAX - 8));
    char *small = top_arena_alloc(&a, 10);
    char *big = top_arena_alloc(&a, 1 << 20); /* its own chunk */
    char *after = top_arena_alloc(&a, 3);
    assert_non_null(small);
    assert_non_null(big);
    assert_non_null(after);
    assert_int_equal((uintptr_t)after % _Alignof(max_align_t), 0);
    memset(big, 1, 1 << 20);
    top_arena_free(&a);
    top_arena_free(&a); /* empty: fine */
}

/* ---- Prometheus ---------------------------------------------------------- */

static int parse_prom(const char *text, struct top_prom *p)
{
    memset(p, 0, sizeof(*p));
    return top_prom_parse(p, text, strlen(text));
}

static void test_prom_samples(void **state)
{
    (void)state;
    struct top_prom p;
    assert_int_equal(
        parse_prom(
            "# HELP a_total Things.\n"
            "# TYPE a_total counter\n"
            "a_total 12\n"
            "\n"
            "  # a comment\n"
            "b{reason=\"too_large\",src=\"q\\\"\\\\\\n\"} 3 1700000000000\n"
            "b{reason=\"bad_xml\",} 4\n"
            "b { reason = \"x\" } -5e-1\n"
            "c:rule{} +Inf\n"
            "d -Inf\n"
            "e NaN\n"
            "f 1.5e3 -12",
            &p),
        0);
    assert_int_equal(p.n, 8);
    assert_string_equal(p.v[0].name, "a_total");
    assert_true(p.v[0].value == 12);
    assert_int_equal(p.v[0].n_labels, 0);
    assert_int_equal(p.v[1].n_labels, 2);
    assert_string_equal(top_prom_label(&p.v[1], "reason"), "too_large");
    assert_string_equal(top_prom_label(&p.v[1], "src"), "q\"\\\n");
    assert_null(top_prom_label(&p.v[1], "nope"));
    assert_string_equal(top_prom_label(&p.v[2], "reason"), "bad_xml");
    assert_true(p.v[3].value == -0.5);
    assert_string_equal(p.v[4].name, "c:rule");
    assert_true(isinf(p.v[4].value) && p.v[4].value > 0);
    assert_true(isinf(p.v[5].value) && p.v[5].value < 0);
    assert_true(isnan(p.v[6].value));
    assert_true(p.v[7].value == 1500);
    double sum;
    assert_true(top_prom_sum(&p, "b", NULL, NULL, &sum));
    assert_true(sum == 6.5);
    assert_true(top_prom_sum(&p, "b", "reason", "bad_xml", &sum));
    assert_true(sum == 4);
    assert_false(top_prom_sum(&p, "b", "reason", "other", &sum));
    assert_false(top_prom_sum(&p, "zzz", NULL, NULL, &sum));
    top_prom_free(&p);
}

static void test_prom_strict(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "a\n",       /* no value */
        "a 1 2 3\n", /* too many fields */
        "a x\n",
        "a 0x10\n", /* no hex floats */
        "a nan(1)\n",
        "a 1 1.5\n", /* timestamp is an integer */
        "1a 1\n",
        "a{1b=\"x\"} 1\n",
        "a{b=x} 1\n",
        "a{b=\"x} 1\n",
        "a{b=\"x\\t\"} 1\n", /* unknown escape */
        "a{b=\"x\"\n",
        "a{b=\"x\" c=\"y\"} 1\n",
        "a{b:c=\"x\"} 1\n", /* no colon in a label name */
        "a{,} 1\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct top_prom p;
        if (parse_prom(bad[i], &p) != -EINVAL) {
            fail_msg("accepted: %s", bad[i]);
        }
        top_prom_free(&p);
    }
    struct top_prom p;
    assert_int_equal(parse_prom("# ok\na 1\nb{x=\"1\"} 2\nc{ 3\n", &p),
                     -EINVAL);
    assert_int_equal(p.err_line, 4);
    top_prom_free(&p);
    /* more labels than a sample may have */
    char many[4096];
    size_t n = (size_t)snprintf(many, sizeof(many), "a{");
    for (int i = 0; i < 65; i++) {
        n += (size_t)snprintf(many + n, sizeof(many) - n, "l%d=\"v\",", i);
    }
    snprintf(many + n, sizeof(many) - n, "} 1\n");
    assert_int_equal(parse_prom(many, &p), -EINVAL);
    top_prom_free(&p);
}

static const char hist_a[] = "# TYPE h histogram\n"
                             "h_bucket{stage=\"x\",le=\"0.01\"} 10\n"
                             "h_bucket{stage=\"x\",le=\"0.1\"} 20\n"
                             "h_bucket{stage=\"x\",le=\"1\"} 20\n"
                             "h_bucket{stage=\"x\",le=\"+Inf\"} 20\n"
                             "h_bucket{stage=\"y\",le=\"0.01\"} 0\n"
                             "h_bucket{stage=\"y\",le=\"0.1\"} 0\n"
                             "h_bucket{stage=\"y\",le=\"1\"} 0\n"
                             "h_bucket{stage=\"y\",le=\"+Inf\"} 0\n"
                             "h_sum 1.2\nh_count 20\n";
/* since hist_a: 100 more in (0, 0.01], 100 in (0.1, 1] (label set y), 0
 * past 1 */
static const char hist_b[] =
    "h_bucket{stage=\"x\",le=\"+Inf\"} 120\n" /* order does not matter */
    "h_bucket{stage=\"x\",le=\"0.01\"} 110\n"
    "h_bucket{stage=\"x\",le=\"0.1\"} 120\n"
    "h_bucket{stage=\"x\",le=\"1\"} 120\n"
    "h_bucket{stage=\"y\",le=\"0.01\"} 0\n"
    "h_bucket{stage=\"y\",le=\"0.1\"} 0\n"
    "h_bucket{stage=\"y\",le=\"1\"} 100\n"
    "h_bucket{stage=\"y\",le=\"+Inf\"} 100\n";

static void test_hist_quantile(void **state)
{
    (void)state;
    struct top_prom pa, pb;
    assert_int_equal(parse_prom(hist_a, &pa), 0);
    assert_int_equal(parse_prom(hist_b, &pb), 0);
    struct top_hist a, b;
    assert_true(top_prom_hist(&pa, "h", &a));
    assert_true(top_prom_hist(&pb, "h", &b));
    assert_int_equal(b.n, 4);
    assert_true(b.le[0] == 0.01 && isinf(b.le[3]));
    assert_true(b.count[0] == 110 && b.count[2] == 220);
    assert_false(top_prom_hist(&pa, "nothing", &a) ||
                 top_prom_hist(&pb, "h_sum", &a));
    assert_true(top_prom_hist(&pa, "h", &a));
    /* 200 observed: 100 in (0, 0.01], 100 in (0.1, 1] */
    assert_float_equal(top_hist_quantile(&a, &b, 0.25), 0.005, 1e-12);
    assert_float_equal(top_hist_quantile(&a, &b, 0.5), 0.01, 1e-12);
    assert_float_equal(top_hist_quantile(&a, &b, 0.75), 0.55, 1e-12);
    assert_float_equal(top_hist_quantile(&a, &b, 0.99), 0.982, 1e-12);
    /* against nothing: everything since the start */
    assert_float_equal(top_hist_quantile(NULL, &a, 0.25), 0.005, 1e-12);
    /* nothing new; a restart; out of range */
    assert_true(isnan(top_hist_quantile(&b, &b, 0.5)));
    assert_true(isnan(top_hist_quantile(&b, &a, 0.5)));
    assert_true(isnan(top_hist_quantile(&a, &b, 1.5)));
    assert_true(isnan(top_hist_quantile(&a, &b, NAN)));
    /* past the last finite bound: that bound */
    struct top_hist c = b;
    c.count[3] += 1000;
    assert_float_equal(top_hist_quantile(&b, &c, 0.99), 1, 1e-12);
    /* different bounds */
    c.le[1] = 0.2;
    assert_true(isnan(top_hist_quantile(&b, &c, 0.5)));
    top_prom_free(&pa);
    top_prom_free(&pb);
    /* no +Inf bucket */
    assert_int_equal(parse_prom("h_bucket{le=\"1\"} 3\n", &pa), 0);
    assert_false(top_prom_hist(&pa, "h", &a));
    top_prom_free(&pa);
}

static void test_rate(void **state)
{
    (void)state;
    assert_float_equal(top_rate(100, 300, 2), 100, 1e-12);
    assert_float_equal(top_rate(100, 100, 1), 0, 1e-12);
    /* a reset: counts from zero */
    assert_float_equal(top_rate(500, 40, 2), 20, 1e-12);
    assert_true(isnan(top_rate(1, 2, 0)));
    assert_true(isnan(top_rate(1, 2, -1)));
    assert_true(isnan(top_rate(NAN, 2, 1)));
    assert_true(isnan(top_rate(1, INFINITY, 1)));
}

/* ---- what the daemon really renders -------------------------------------- */

static void test_parse_daemon_views(void **state)
{
    (void)state;
    probe_reset();
    assert_int_equal(
        actor_runtime_start(&(struct actor_config){.manual = true}), 0);
    uint64_t busy = probe_tree("w\x1b[2J", "w", 40, 7);
    assert_int_not_equal(busy, 0);
    for (int i = 0; i < 4; i++) {
        probe_send_value(NULL, busy, i);
    }
    static const double bounds[] = {0.001, 0.01, 0.1};
    struct actor_metric *h = actor_metric_histogram(
        "scorewire_notify_latency_seconds", "Feed to client.", NULL, bounds, 3);
    actor_metric_observe(h, 0.005);
    actor_metric_observe(h, 0.05);
    actor_metric_add(actor_metric_counter("scorewire_ingest_rejected_total",
                                          "Rejected.", "reason=\"a\\\"b\""),
                     2);

    struct actor_buf b;
    actor_buf_init(&b);
    assert_int_equal(app_actors_json(&b, 3), 0);
    struct top_poll poll = {0};
    assert_int_equal(top_json_parse(&poll.actors, b.data, b.len), 0);
    poll.have_actors = true;
    actor_buf_reset(&b);
    assert_int_equal(app_runtime_metrics(&b), 0);
    assert_int_equal(actor_metric_render(&b), 0);
    assert_int_equal(top_prom_parse(&poll.metrics, b.data, b.len), 0);
    poll.have_metrics = true;
    actor_buf_release(&b);

    struct top_view v = {0};
    assert_int_equal(top_view_build(&v, NULL, &poll), 0);
    assert_true(v.alive == 43); /* root, w, many, 40 children */
    assert_int_equal(v.n_kinds, 2);
    assert_string_equal(v.kinds[0].kind, "probe"); /* the queued kind */
    assert_true(v.kinds[0].actors == 41 && v.kinds[0].max_queued == 4);
    /* root, w, many and the 3 busiest of the summarized 40 */
    assert_int_equal(v.n_actors, 6);
    assert_true(v.actors[0].mailbox == 4);
    assert_string_equal(v.actors[0].kind, "probe");
    bool named = false; /* the escape in the name came through JSON */
    for (size_t i = 0; i < v.n_actors; i++) {
        named |= strcmp(v.actors[i].name, "w\x1b[2J") == 0;
    }
    assert_true(named);
    double rejected;
    assert_true(top_prom_sum(&poll.metrics, "scorewire_ingest_rejected_total",
                             "reason", "a\"b", &rejected));
    assert_true(rejected == 2);
    struct top_hist hist;
    assert_true(top_prom_hist(&poll.metrics, "scorewire_notify_latency_seconds",
                              &hist));
    assert_int_equal(hist.n, 4);
    assert_float_equal(top_hist_quantile(NULL, &hist, 0.5), 0.01, 1e-12);
    top_view_free(&v);
    top_poll_free(&poll);

    assert_true(probe_tree_stop());
    actor_runtime_stop();
}

/* ---- HTTP ---------------------------------------------------------------- */

static int http(const char *raw, bool eof, int *status, struct actor_buf *body)
{
    return top_http_parse(raw, strlen(raw), eof, status, body);
}

static void test_http_parse(void **state)
{
    (void)state;
    struct actor_buf body;
    actor_buf_init(&body);
    int status = 0;
    const char *cl = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                     "content-length:  5 \r\n\r\nhello";
    assert_int_equal(http(cl, false, &status, &body), 0);
    assert_int_equal(status, 200);
    assert_int_equal(body.len, 5);
    assert_memory_equal(body.data, "hello", 5);
    /* every prefix is "more", and a truncated one at EOF an error */
    size_t n = strlen(cl);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(top_http_parse(cl, i, false, &status, &body),
                         TOP_HTTP_MORE);
        assert_int_equal(top_http_parse(cl, i, true, &status, &body), -EPROTO);
    }

    const char *chunked = "HTTP/1.1 200 OK\r\n"
                          "Transfer-Encoding: gzip, chunked\r\n"
                          "Content-Length: 3\r\n\r\n"
                          "5;ext=1\r\nhello\r\nA\r\n, chunked!\r\n"
                          "0\r\nX-Trailer: 1\r\n\r\n";
    n = strlen(chunked);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(top_http_parse(chunked, i, false, &status, &body),
                         TOP_HTTP_MORE);
    }
    assert_int_equal(http(chunked, false, &status, &body), 0);
    assert_int_equal(body.len, 15);
    assert_memory_equal(body.data, "hello, chunked!", 15);

    /* no framing: the body ends at the close */
    const char *close = "HTTP/1.0 503 Busy\r\nX: y\r\n\r\nnot now";
    assert_int_equal(http(close, false, &status, &body), TOP_HTTP_MORE);
    assert_int_equal(http(close, true, &status, &body), 0);
    assert_int_equal(status, 503);
    assert_int_equal(body.len, 7);
    /* a coding other than chunked last: also to the close */
    assert_int_equal(http("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, "
                          "gzip\r\nContent-Length: 1\r\n\r\nabc",
                          true, &status, &body),
                     0);
    assert_int_equal(body.len, 3);
    /* no body whatever the headers say */
    assert_int_equal(http("HTTP/1.1 204 No Content\r\nContent-Length: 9"
                          "\r\n\r\n",
                          false, &status, &body),
                     0);
    assert_int_equal(body.len, 0);
    assert_int_equal(http("HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", false,
                          &status, &body),
                     0);

    static const char *const bad[] = {
        "HTTP/2 200 OK\r\n\r\n",
        "HTTP/1.1 20 OK\r\n\r\n",
        "HTTP/1.1 2000 OK\r\n\r\n",
        "HTTP/1.1 099 OK\r\n\r\n",
        "http/1.1 200 OK\r\n\r\n",
        "HTTP/1.1 200 OK\r\nNoColon\r\n\r\n",
        "HTTP/1.1 200 OK\r\n: empty\r\n\r\n",
        "HTTP/1.1 200 OK\r\nA: 1\r\n folded\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nz\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = http(bad[i], false, &status, &body);
        if (rc != -EPROTO) {
            fail_msg("%d for: %s", rc, bad[i]);
        }
    }
    /* too big to take */
    assert_int_equal(http("HTTP/1.1 200 OK\r\nContent-Length: 999999999\r\n"
                          "\r\n",
                          false, &status, &body),
                     -EMSGSIZE);
    assert_int_equal(http("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
                          "\r\nfffffffff\r\n",
                          false, &status, &body),
                     -EMSGSIZE);
    /* headers that never end */
    size_t big = 70 * 1024;
    char *junk = malloc(big + 1);
    assert_non_null(junk);
    memset(junk, 'a', big);
    memcpy(junk, "HTTP/1.1 200 OK\r\nX: ", 20);
    junk[big] = '\0';
    assert_int_equal(http(junk, false, &status, &body), -EPROTO);
    free(junk);
    actor_buf_release(&body);
}

static void test_http_split_addr(void **state)
{
    (void)state;
    char host[64], port[8];
    assert_int_equal(top_http_split_addr("127.0.0.1:9090", host, sizeof(host),
                                         port, sizeof(port)),
                     0);
    assert_string_equal(host, "127.0.0.1");
    assert_string_equal(port, "9090");
    assert_int_equal(
        top_http_split_addr("[::1]:80", host, sizeof(host), port, sizeof(port)),
        0);
    assert_string_equal(host, "::1");
    assert_int_equal(top_http_split_addr("localhost:1", host, sizeof(host),
                                         port, sizeof(port)),
                     0);
    static const char *const bad[] = {"",        "host",    "host:",  ":80",
                                      "::1:80",  "[::1]80", "[::1]:", "h:0",
                                      "h:65536", "h:8x",    "h:-1",   "[]:80"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (top_http_split_addr(bad[i], host, sizeof(host), port,
                                sizeof(port)) != -EINVAL) {
            fail_msg("accepted: %s", bad[i]);
        }
    }
    assert_int_equal(top_http_split_addr("averyveryverylonghostname:1", host, 8,
                                         port, sizeof(port)),
                     -EINVAL);
}

/* A one-shot loopback server: accepts, reads the request, answers @reply
 * in pieces (or nothing, with @reply NULL, until the test says stop). */
struct server {
    int lfd;
    char port[8];
    const char *reply;
    char request[1024];
    int stop[2]; /* a pipe: readable when the test is done */
    pthread_t thread;
};

static void *serve(void *arg)
{
    struct server *s = arg;
    int fd = accept(s->lfd, NULL, NULL);
    if (fd < 0) {
        return NULL;
    }
    size_t n = 0;
    while (n < sizeof(s->request) - 1 && !strstr(s->request, "\r\n\r\n")) {
        ssize_t r = read(fd, s->request + n, sizeof(s->request) - 1 - n);
        if (r <= 0) {
            break;
        }
        n += (size_t)r;
        s->request[n] = '\0';
    }
    if (s->reply) {
        /* in small pieces, to exercise the incremental parse */
        size_t len = strlen(s->reply);
        for (size_t i = 0; i < len; i += 7) {
            size_t k = len - i < 7 ? len - i : 7;
            if (write(fd, s->reply + i, k) < 0) {
                break;
            }
        }
    } else {
        struct pollfd pf = {.fd = s->stop[0], .events = POLLIN};
        poll(&pf, 1, -1);
    }
    close(fd);
    return NULL;
}

static void server_start(struct server *s, const char *reply)
{
    memset(s, 0, sizeof(*s));
    s->reply = reply;
    s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(s->lfd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(s->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(s->lfd, 4), 0);
    socklen_t sl = sizeof(sa);
    assert_int_equal(getsockname(s->lfd, (struct sockaddr *)&sa, &sl), 0);
    snprintf(s->port, sizeof(s->port), "%u", ntohs(sa.sin_port));
    assert_int_equal(pipe(s->stop), 0);
    assert_int_equal(pthread_create(&s->thread, NULL, serve, s), 0);
}

static void server_stop(struct server *s)
{
    assert_int_equal(write(s->stop[1], "x", 1), 1);
    pthread_join(s->thread, NULL);
    close(s->lfd);
    close(s->stop[0]);
    close(s->stop[1]);
}

static void test_http_get(void **state)
{
    (void)state;
    struct actor_buf body;
    actor_buf_init(&body);
    int status = 0;
    struct server s;
    server_start(&s, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n");
    assert_int_equal(
        top_http_get("127.0.0.1", s.port, "/actors", 5000, -1, &status, &body),
        0);
    server_stop(&s);
    assert_int_equal(status, 200);
    assert_int_equal(body.len, 6);
    assert_memory_equal(body.data, "abcdef", 6);
    assert_non_null(strstr(s.request, "GET /actors HTTP/1.1\r\n"));
    assert_non_null(strstr(s.request, "\r\nConnection: close\r\n"));
    char host_line[64];
    snprintf(host_line, sizeof(host_line), "\r\nHost: 127.0.0.1:%s\r\n",
             s.port);
    assert_non_null(strstr(s.request, host_line));

    /* a server that closes mid-body */
    server_start(&s, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc");
    assert_int_equal(
        top_http_get("127.0.0.1", s.port, "/metrics", 5000, -1, &status, &body),
        -EPROTO);
    server_stop(&s);

    /* a server that accepts and never answers: the deadline */
    server_start(&s, NULL);
    assert_int_equal(
        top_http_get("127.0.0.1", s.port, "/metrics", 100, -1, &status, &body),
        -ETIMEDOUT);
    server_stop(&s);

    /* ... or a signal's byte on the cancel fd, long before it */
    int cancel[2];
    assert_int_equal(pipe(cancel), 0);
    assert_int_equal(write(cancel[1], "x", 1), 1);
    server_start(&s, NULL);
    assert_int_equal(top_http_get("127.0.0.1", s.port, "/metrics", 60000,
                                  cancel[0], &status, &body),
                     -EINTR);
    server_stop(&s);
    close(cancel[0]);
    close(cancel[1]);

    /* nobody listening: the port of a socket bound but not listening */
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    socklen_t sl = sizeof(sa);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    char port[8];
    snprintf(port, sizeof(port), "%u", ntohs(sa.sin_port));
    assert_int_equal(
        top_http_get("127.0.0.1", port, "/metrics", 5000, -1, &status, &body),
        -ECONNREFUSED);
    close(fd);
    assert_int_equal(
        top_http_get("name.invalid", "80", "/", 5000, -1, &status, &body),
        -EHOSTUNREACH);
    actor_buf_release(&body);
}

/* ---- the view and the frame ---------------------------------------------- */

static const char actors_a[] =
    "{\"alive\":5,\"spawned\":9,\"exited\":4,\"crashed\":1,\"restarts\":1,"
    "\"tree\":[{\"pid\":\"<0.0.1>\",\"kind\":\"supervisor\",\"name\":\"root\","
    "\"supervisor\":true,\"thread\":false,\"state\":\"waiting\",\"mailbox\":0,"
    "\"capacity\":64,\"handled\":10,\"restarts\":0,\"children\":["
    "{\"pid\":\"<0.1.1>\",\"kind\":\"store\",\"name\":\"store\","
    "\"supervisor\":false,\"thread\":true,\"state\":\"runnable\","
    "\"mailbox\":3,\"capacity\":1024,\"handled\":1000,\"restarts\":0},"
    "{\"pid\":\"<0.2.1>\",\"kind\":\"supervisor\",\"name\":\"m\","
    "\"supervisor\":true,\"thread\":false,\"state\":\"waiting\",\"mailbox\":0,"
    "\"capacity\":64,\"handled\":5,\"restarts\":0,\"children_count\":5000,"
    "\"by_kind\":{\"match\":5000},\"busiest\":["
    "{\"pid\":\"<0.3.1>\",\"kind\":\"match\",\"name\":\"match:1\","
    "\"supervisor\":false,\"thread\":false,\"state\":\"waiting\","
    "\"mailbox\":0,\"capacity\":256,\"handled\":100,\"restarts\":0},"
    "{\"pid\":\"<0.4.1>\",\"kind\":\"match\",\"name\":\"match:\\u001b[2J\","
    "\"supervisor\":false,\"thread\":false,\"state\":\"waiting\","
    "\"mailbox\":0,\"capacity\":256,\"handled\":100,\"restarts\":2}]}]}]}";

/* a second later: the store handled 500 more, match:1 50 more, the second
 * match was restarted (a new pid) and queues 3 */
static const char actors_b[] =
    "{\"alive\":5,\"spawned\":10,\"exited\":5,\"crashed\":2,\"restarts\":2,"
    "\"tree\":[{\"pid\":\"<0.0.1>\",\"kind\":\"supervisor\",\"name\":\"root\","
    "\"supervisor\":true,\"thread\":false,\"state\":\"waiting\",\"mailbox\":0,"
    "\"capacity\":64,\"handled\":10,\"restarts\":0,\"children\":["
    "{\"pid\":\"<0.1.1>\",\"kind\":\"store\",\"name\":\"store\","
    "\"supervisor\":false,\"thread\":true,\"state\":\"runnable\","
    "\"mailbox\":3,\"capacity\":1024,\"handled\":1500,\"restarts\":0},"
    "{\"pid\":\"<0.2.1>\",\"kind\":\"supervisor\",\"name\":\"m\","
    "\"supervisor\":true,\"thread\":false,\"state\":\"waiting\",\"mailbox\":0,"
    "\"capacity\":64,\"handled\":6,\"restarts\":0,\"children_count\":5000,"
    "\"by_kind\":{\"match\":5000},\"busiest\":["
    "{\"pid\":\"<0.4.2>\",\"kind\":\"match\",\"name\":\"match:\\u001b[2J\","
    "\"supervisor\":false,\"thread\":false,\"state\":\"runnable\","
    "\"mailbox\":3,\"capacity\":256,\"handled\":1,\"restarts\":3},"
    "{\"pid\":\"<0.3.1>\",\"kind\":\"match\",\"name\":\"match:1\","
    "\"supervisor\":false,\"thread\":false,\"state\":\"waiting\","
    "\"mailbox\":0,\"capacity\":256,\"handled\":150,\"restarts\":0}]}]}]}";

static const char metrics_a[] =
    "scorewire_ingest_events_total 1000\n"
    "scorewire_store_events_total 900\n"
    "scorewire_notify_messages_sent_total 5000\n"
    "scorewire_ingest_rejected_total{reason=\"too_large\"} 1\n"
    "scorewire_ingest_rejected_total{reason=\"bad_xml\"} 1\n"
    "scorewire_supervisor_restarts_total 1\n"
    "scorewire_store_backlog_rows 40\n"
    "scorewire_actors{kind=\"match\"} 5000\n"
    "scorewire_actors{kind=\"store\"} 1\n"
    "scorewire_actor_mailbox_messages{kind=\"match\"} 0\n"
    "scorewire_actor_mailbox_messages{kind=\"store\"} 3\n"
    "scorewire_notify_latency_seconds_bucket{le=\"0.01\"} 0\n"
    "scorewire_notify_latency_seconds_bucket{le=\"0.1\"} 0\n"
    "scorewire_notify_latency_seconds_bucket{le=\"+Inf\"} 0\n";

static const char metrics_b[] =
    "scorewire_ingest_events_total 3000\n"
    "scorewire_store_events_total 2900\n"
    "scorewire_notify_messages_sent_total 65000\n"
    "scorewire_ingest_rejected_total{reason=\"too_large\"} 5\n"
    "scorewire_ingest_rejected_total{reason=\"bad_xml\"} 1\n"
    "scorewire_supervisor_restarts_total 2\n"
    "scorewire_store_backlog_rows 80\n"
    "scorewire_notify_clients 12\n"
    "scorewire_ingest_source_state{source=\"a\",state=\"live\"} 1\n"
    "scorewire_ingest_source_state{source=\"a\",state=\"stale\"} 0\n"
    "scorewire_ingest_source_state{source=\"b\",state=\"stale\"} 1\n"
    "scorewire_ingest_source_state{source=\"c\",state=\"offline\"} 1\n"
    "scorewire_actors{kind=\"match\"} 5000\n"
    "scorewire_actors{kind=\"store\"} 1\n"
    "scorewire_actor_mailbox_messages{kind=\"match\"} 7\n"
    "scorewire_actor_mailbox_messages{kind=\"store\"} 3\n"
    "scorewire_actor_mailbox_max_messages{kind=\"match\"} 3\n"
    "scorewire_notify_latency_seconds_bucket{le=\"0.01\"} 50\n"
    "scorewire_notify_latency_seconds_bucket{le=\"0.1\"} 100\n"
    "scorewire_notify_latency_seconds_bucket{le=\"+Inf\"} 100\n";

static void make_poll(struct top_poll *p, int64_t at, const char *metrics,
                      const char *actors)
{
    memset(p, 0, sizeof(*p));
    p->at_ms = p->actors_at_ms = at;
    assert_int_equal(top_prom_parse(&p->metrics, metrics, strlen(metrics)), 0);
    p->have_metrics = true;
    assert_int_equal(top_json_parse(&p->actors, actors, strlen(actors)), 0);
    p->have_actors = true;
}

static void test_view(void **state)
{
    (void)state;
    struct top_poll a, b;
    make_poll(&a, 10000, metrics_a, actors_a);
    make_poll(&b, 12000, metrics_b, actors_b);
    struct top_view v = {0};
    assert_int_equal(top_view_build(&v, &a, &b), 0);
    assert_true(v.alive == 5 && v.crashed == 2 && v.restarts == 2);
    assert_float_equal(v.in_rate, 1000, 1e-9);
    assert_float_equal(v.stored_rate, 1000, 1e-9);
    assert_float_equal(v.ws_rate, 30000, 1e-9);
    assert_float_equal(v.rejected_rate, 2, 1e-9);
    assert_float_equal(v.restart_rate, 0.5, 1e-9);
    assert_true(v.backlog == 80 && v.clients == 12);
    assert_float_equal(v.p50_s, 0.01, 1e-12);
    assert_float_equal(v.p99_s, 0.0982, 1e-12);
    assert_true(v.src_live == 1 && v.src_stale == 1 && v.src_offline == 1);
    /* kinds: most queued first */
    assert_int_equal(v.n_kinds, 2);
    assert_string_equal(v.kinds[0].kind, "match");
    assert_true(v.kinds[0].queued == 7 && v.kinds[0].max_queued == 3);
    /* actors: mailbox, then rate; a new incarnation has no rate yet */
    assert_int_equal(v.n_actors, 5);
    assert_string_equal(v.actors[0].pid, "<0.1.1>"); /* 3 queued, 250/s */
    assert_float_equal(v.actors[0].rate, 250, 1e-9);
    assert_string_equal(v.actors[1].pid, "<0.4.2>"); /* 3 queued, new */
    assert_true(isnan(v.actors[1].rate));
    assert_string_equal(v.actors[2].pid, "<0.3.1>"); /* 25/s */
    assert_float_equal(v.actors[2].rate, 25, 1e-9);
    assert_string_equal(v.actors[3].pid, "<0.2.1>"); /* 0.5/s */
    assert_string_equal(v.actors[4].pid, "<0.0.1>"); /* 0/s */
    assert_true(!v.actors[2].supervisor && v.actors[3].supervisor);
    top_view_free(&v);

    /* without a previous poll: figures but no rates */
    assert_int_equal(top_view_build(&v, NULL, &b), 0);
    assert_true(isnan(v.in_rate) && isnan(v.p50_s) && isnan(v.actors[0].rate));
    assert_true(v.backlog == 80);
    top_view_free(&v);
    /* a poll with nothing in it: everything unknown, nothing listed */
    struct top_poll empty = {0};
    assert_int_equal(top_view_build(&v, NULL, &empty), 0);
    assert_true(isnan(v.alive) && isnan(v.backlog) && isnan(v.src_live));
    assert_int_equal(v.n_actors + v.n_kinds, 0);
    top_view_free(&v);
    top_poll_free(&a);
    top_poll_free(&b);
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++) {
        n += *s == '\n';
    }
    return n;
}

static void test_draw(void **state)
{
    (void)state;
    struct top_poll a, b;
    make_poll(&a, 10000, metrics_a, actors_a);
    make_poll(&b, 12000, metrics_b, actors_b);
    struct top_view v = {0};
    assert_int_equal(top_view_build(&v, &a, &b), 0);
    struct top_status st = {.admin = "127.0.0.1:9090",
                            .since_ok_ms = 0,
                            .interval_ms = 1000,
                            .clock = "12:00:00"};
    struct actor_buf out;
    actor_buf_init(&out);

    /* plain: every actor, no escapes at all */
    struct top_screen plain = {.rows = 0, .cols = 0, .ansi = false};
    assert_int_equal(top_draw(&out, &plain, &st, &v), 0);
    assert_null(strchr(out.data, '\x1b'));
    assert_non_null(strstr(out.data, "127.0.0.1:9090"));
    assert_non_null(strstr(out.data, "events in 1.0k/s  stored 1.0k/s  "
                                     "rejected 2.0/s  store backlog 80 rows"));
    assert_non_null(strstr(out.data, "p50 10.0 ms  p99 98.2 ms"));
    assert_non_null(strstr(out.data, "sources 1 live  1 stale  1 offline"));
    assert_non_null(strstr(out.data, "match:?[2J")); /* the escape defused */
    assert_true(strstr(out.data, "<0.1.1>") < strstr(out.data, "<0.4.2>"));
    assert_true(strstr(out.data, "<0.4.2>") < strstr(out.data, "<0.2.1>"));
    assert_int_equal(out.data[out.len - 1], '\n');
    assert_null(strstr(out.data, " \n")); /* no trailing blanks */

    /* full screen: exactly the rows, none wider than the columns */
    actor_buf_reset(&out);
    struct top_screen scr = {.rows = 12, .cols = 50, .ansi = true};
    assert_int_equal(top_draw(&out, &scr, &st, &v), 0);
    assert_memory_equal(out.data, "\x1b[H", 3);
    assert_int_equal(count_lines(out.data), 11); /* no newline at the end */
    assert_non_null(strstr(out.data, "\x1b[J"));
    for (char *line = out.data; line; line = strchr(line, '\n')) {
        line += *line == '\n';
        int chars = 0;
        for (char *p = line; *p && *p != '\n'; p++) {
            if (*p == '\x1b') { /* skip a CSI sequence */
                while (*p && !(*p >= '@' && *p <= '~' && *p != '[')) {
                    p++;
                }
                continue;
            }
            chars += ((unsigned char)*p & 0xc0) != 0x80;
        }
        assert_true(chars <= 50);
        if (!strchr(line, '\n')) {
            break;
        }
    }

    /* down: said, with how long ago the figures are from */
    actor_buf_reset(&out);
    st.err = -ECONNREFUSED;
    st.what = "GET /metrics: Connection refused";
    st.since_ok_ms = 12500;
    assert_int_equal(top_draw(&out, &plain, &st, &v), 0);
    assert_non_null(strstr(out.data, "DOWN"));
    assert_non_null(strstr(out.data, "admin endpoint down: GET /metrics: "
                                     "Connection refused; retrying every "
                                     "1.0 s; last good poll 12 s ago"));
    actor_buf_release(&out);
    top_view_free(&v);
    top_poll_free(&a);
    top_poll_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_values),
        cmocka_unit_test(test_json_strict),
        cmocka_unit_test(test_json_depth),
        cmocka_unit_test(test_arena),
        cmocka_unit_test(test_prom_samples),
        cmocka_unit_test(test_prom_strict),
        cmocka_unit_test(test_hist_quantile),
        cmocka_unit_test(test_rate),
        cmocka_unit_test(test_parse_daemon_views),
        cmocka_unit_test(test_http_parse),
        cmocka_unit_test(test_http_split_addr),
        cmocka_unit_test(test_http_get),
        cmocka_unit_test(test_view),
        cmocka_unit_test(test_draw),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
