/* tests/notify_proto_test.c - client messages: parsing and error replies. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>

#include <cmocka.h>

#include "notify/notify_impl.h"

#define MAX_IN 4096

static int setup(void **state)
{
    static struct notify__req req;
    if (notify__req_init(&req, MAX_IN) != 0) {
        notify__req_release(&req);
        return -1;
    }
    *state = &req;
    return 0;
}

static int teardown(void **state)
{
    notify__req_release(*state);
    return 0;
}

static int parse(struct notify__req *req, const char *s,
                 struct notify__err *err)
{
    memset(err, 0, sizeof(*err));
    return notify__req_parse(req, s, strlen(s), err);
}

static void test_subscribe_list(void **state)
{
    struct notify__req *req = *state;
    struct notify__err err;
    assert_int_equal(
        parse(req,
              "{\"op\":\"subscribe\",\"matches\":[\"sr:match:2\","
              "\"sr:match:1\",\"sr:match:2\"],\"extra\":{\"x\":[1]}}",
              &err),
        0);
    assert_int_equal(req->op, NOTIFY__OP_SUBSCRIBE);
    assert_false(req->all);
    /* Sorted and de-duplicated. */
    assert_int_equal(req->n_ids, 2);
    assert_string_equal(req->ids[0], "sr:match:1");
    assert_string_equal(req->ids[1], "sr:match:2");
    assert_int_equal(req->n_since, 0);
}

static void test_subscribe_all_with_since(void **state)
{
    struct notify__req *req = *state;
    struct notify__err err;
    assert_int_equal(parse(req,
                           "{\"since\":{\"b\\u00e9\":0,\"a\":57},"
                           "\"matches\":\"*\",\"op\":\"subscribe\"}",
                           &err),
                     0);
    assert_true(req->all);
    assert_int_equal(req->n_ids, 0);
    assert_int_equal(req->n_since, 2); /* sorted by id */
    assert_string_equal(req->since[0].id, "a");
    assert_int_equal(req->since[0].version, 57);
    assert_string_equal(req->since[1].id, "b\xc3\xa9");
    assert_int_equal(req->since[1].version, 0);
}

static void test_unsubscribe(void **state)
{
    struct notify__req *req = *state;
    struct notify__err err;
    assert_int_equal(
        parse(req, "{\"op\":\"unsubscribe\",\"matches\":[\"x\"]}", &err), 0);
    assert_int_equal(req->op, NOTIFY__OP_UNSUBSCRIBE);
    assert_int_equal(req->n_ids, 1);
    /* A parse resets what the previous one found. */
    assert_int_equal(
        parse(req, "{\"op\":\"unsubscribe\",\"matches\":\"*\"}", &err), 0);
    assert_true(req->all);
    assert_int_equal(req->n_ids, 0);
}

static void test_ping_ids(void **state)
{
    struct notify__req *req = *state;
    struct notify__err err;
    assert_int_equal(parse(req, "{\"op\":\"ping\",\"id\":7}", &err), 0);
    assert_int_equal(req->op, NOTIFY__OP_PING);
    assert_int_equal(req->ping_id_len, 1);
    assert_memory_equal(req->ping_id, "7", 1);

    assert_int_equal(parse(req, "{\"op\":\"ping\",\"id\":\"a\\\"b\"}", &err),
                     0);
    assert_int_equal(req->ping_id_len, 6);
    assert_memory_equal(req->ping_id, "\"a\\\"b\"", 6);

    assert_int_equal(parse(req, "{\"op\":\"ping\"}", &err), 0);
    assert_null(req->ping_id);

    assert_int_equal(parse(req, "{\"op\":\"ping\",\"id\":{}}", &err), -EINVAL);
    assert_string_equal(err.reason, "malformed");
    char longid[128];
    snprintf(longid, sizeof(longid), "{\"op\":\"ping\",\"id\":\"%070d\"}", 1);
    assert_int_equal(parse(req, longid, &err), -EINVAL);
}

static void expect_error(struct notify__req *req, const char *msg,
                         const char *reason, const char *detail_part)
{
    struct notify__err err;
    if (parse(req, msg, &err) != -EINVAL) {
        fail_msg("accepted: %s", msg);
    }
    if (strcmp(err.reason, reason) != 0) {
        fail_msg("%s: reason %s, wanted %s", msg, err.reason, reason);
    }
    if (detail_part && !strstr(err.detail, detail_part)) {
        fail_msg("%s: detail '%s' lacks '%s'", msg, err.detail, detail_part);
    }
}

static void test_errors(void **state)
{
    struct notify__req *req = *state;
    expect_error(req, "{\"op\":", "malformed", "invalid JSON at byte 6");
    expect_error(req, "[1]", "malformed", "object");
    expect_error(req, "{}", "malformed", "op");
    expect_error(req, "{\"op\":5}", "malformed", "op");
    expect_error(req, "{\"op\":\"dance\"}", "unknown_op", "dance");
    expect_error(req, "{\"op\":\"subscribe\"}", "malformed", "matches");
    expect_error(req, "{\"op\":\"subscribe\",\"matches\":\"x\"}", "malformed",
                 "matches");
    expect_error(req, "{\"op\":\"subscribe\",\"matches\":[1]}", "malformed",
                 "matches[0]");
    expect_error(req, "{\"op\":\"subscribe\",\"matches\":[\"\"]}", "malformed",
                 "matches[0]");
    expect_error(req, "{\"op\":\"subscribe\",\"matches\":[\"*\"]}", "malformed",
                 "alone");
    expect_error(req, "{\"op\":\"subscribe\",\"matches\":[\"a\\u0000b\"]}",
                 "malformed", "matches[0]");
    expect_error(req, "{\"op\":\"subscribe\",\"matches\":[\"a\"],\"since\":[]}",
                 "malformed", "since");
    expect_error(req,
                 "{\"op\":\"subscribe\",\"matches\":[\"a\"],"
                 "\"since\":{\"a\":-1}}",
                 "malformed", "since[a]");
    expect_error(req,
                 "{\"op\":\"subscribe\",\"matches\":[\"a\"],"
                 "\"since\":{\"a\":1.5}}",
                 "malformed", "since[a]");
    /* An id twice would resume its match twice (deltas sent again). */
    expect_error(req,
                 "{\"op\":\"subscribe\",\"matches\":\"*\","
                 "\"since\":{\"b\":1,\"a\":2,\"b\":1}}",
                 "malformed", "since: b twice");
    expect_error(req, "{\"op\":\"ping\",\"op\":\"ping\"}", "malformed",
                 "duplicate");
    char id65[200];
    snprintf(id65, sizeof(id65),
             "{\"op\":\"subscribe\",\"matches\":[\"%065d\"]}", 0);
    expect_error(req, id65, "malformed", "1 to 64");
}

static void test_unknown_op_detail_is_valid_utf8(void **state)
{
    struct notify__req *req = *state;
    /* 110 ASCII bytes then a 3-byte character straddling the detail's end:
     * the cut must not leave half a character. */
    char msg[256];
    snprintf(msg, sizeof(msg), "{\"op\":\"%0110d\xe2\x82\xac\"}", 0);
    struct notify__err err;
    assert_int_equal(parse(req, msg, &err), -EINVAL);
    assert_string_equal(err.reason, "unknown_op");
    assert_int_equal(strlen(err.detail), 110);
}

static void test_too_long(void **state)
{
    struct notify__req *req = *state;
    static char big[MAX_IN + 2];
    memset(big, ' ', sizeof(big) - 1);
    big[0] = '{';
    big[MAX_IN] = '}';
    struct notify__err err;
    assert_int_equal(notify__req_parse(req, big, MAX_IN + 1, &err), -EINVAL);
    assert_string_equal(err.reason, "malformed");
}

static void test_largest_message_fits(void **state)
{
    /* The storage is sized for the worst case: as many ids as fit. */
    struct notify__req *req = *state;
    static char big[MAX_IN + 1];
    size_t n = (size_t)snprintf(big, sizeof(big),
                                "{\"op\":\"subscribe\",\"matches\":[");
    int ids = 0;
    while (n + 6 < MAX_IN) {
        n += (size_t)snprintf(big + n, sizeof(big) - n, "%s\"%c\"",
                              ids ? "," : "", 'a' + ids % 26);
        ids++;
    }
    n += (size_t)snprintf(big + n, sizeof(big) - n, "]}");
    assert_true(n <= MAX_IN);
    struct notify__err err;
    assert_int_equal(notify__req_parse(req, big, n, &err), 0);
    assert_int_equal(req->n_ids, 26);
}

static void test_error_json(void **state)
{
    (void)state;
    struct notify__err err = {.reason = "unknown_op"};
    snprintf(err.detail, sizeof(err.detail), "a\"b\\c\n");
    struct actor_buf b;
    actor_buf_init(&b);
    notify__err_json(&err, &b);
    assert_string_equal(
        b.data, "{\"type\":\"error\",\"reason\":\"unknown_op\",\"detail\":"
                "\"a\\\"b\\\\c\\n\"}");
    /* And it is valid JSON. */
    struct notify_json_tok t[16];
    assert_int_equal(notify_json_parse(b.data, b.len, t, 16, NULL), 7);
    actor_buf_release(&b);
}

static void test_init_out_of_memory(void **state)
{
    (void)state;
    for (long n = 1; n <= 4; n++) {
        struct notify__req req;
        notify__alloc_fail_at = n;
        assert_int_equal(notify__req_init(&req, MAX_IN), -ENOMEM);
        notify__req_release(&req);
    }
    notify__alloc_fail_at = -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_subscribe_list),
        cmocka_unit_test(test_subscribe_all_with_since),
        cmocka_unit_test(test_unsubscribe),
        cmocka_unit_test(test_ping_ids),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_unknown_op_detail_is_valid_utf8),
        cmocka_unit_test(test_too_long),
        cmocka_unit_test(test_largest_message_fits),
        cmocka_unit_test(test_error_json),
        cmocka_unit_test(test_init_out_of_memory),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
