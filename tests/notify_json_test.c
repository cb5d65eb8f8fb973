/* tests/notify_json_test.c - the strict JSON tokenizer (notify_json_*). */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>

#include <cmocka.h>

#include "notify/notify.h"

#define MAXT 256

static int parse(const char *s, struct notify_json_tok *t)
{
    return notify_json_parse(s, strlen(s), t, MAXT, NULL);
}

static void test_valid_documents(void **state)
{
    (void)state;
    static const char *ok[] = {
        "0",
        "-0",
        "1.5",
        "-12e+3",
        "1E9",
        "0.0e-0",
        "true",
        "false",
        "null",
        "\"\"",
        "\"a\\\"b\\\\c\\/\\b\\f\\n\\r\\t\"",
        "\"\\u00e9\\uD83D\\uDE00\"",
        "\"caf\xc3\xa9 \xf0\x9f\x98\x80\"",
        "[]",
        "{}",
        " [ 1 , [ ] , { } ] ",
        "{\"a\":{\"b\":[1,2,{\"c\":null}]},\"d\":\"e\"}",
        "\t\r\n{}\n",
    };
    struct notify_json_tok t[MAXT];
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        int n = parse(ok[i], t);
        if (n <= 0) {
            fail_msg("rejected valid JSON: %s (%d)", ok[i], n);
        }
    }
}

static void test_invalid_documents(void **state)
{
    (void)state;
    static const char *bad[] = {
        "",
        " ",
        "01",
        "-",
        "1.",
        ".5",
        "1e",
        "+1",
        "1 2",
        "[1,]",
        "[,1]",
        "{\"a\":1,}",
        "{\"a\"}",
        "{\"a\" 1}",
        "{1:2}",
        "{'a':1}",
        "[1}",
        "{\"a\":1]",
        "tru",
        "nul",
        "True",
        "\"abc",
        "\"a\\x\"",
        "\"\\u12\"",
        "\"\\uD800\"",
        "\"\\uDC00\"",
        "\"\\uD800\\u0041\"",
        "\"a\tb\"",
        "\"\x01\"",
        "\"\xc0\xaf\"",
        "\"\xed\xa0\x80\"",
        "\"\xf4\x90\x80\x80\"",
        "\"\xe2\x82\"",
        "\"\xff\"",
        "[1]x",
        "{}{}",
        "/* c */ 1",
        "NaN",
        "Infinity",
        "[-]",
        "[1,2",
    };
    struct notify_json_tok t[MAXT];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int n = parse(bad[i], t);
        if (n != -EINVAL) {
            fail_msg("accepted or misjudged invalid JSON: %s (%d)", bad[i], n);
        }
    }
}

/* Strings long enough for the eight-at-a-time scan, with the byte that
 * matters at every position. */
static void test_long_strings_every_offset(void **state)
{
    (void)state;
    struct notify_json_tok t[8];
    char buf[64];
    for (int at = 0; at < 24; at++) {
        char body[40];
        memset(body, 'a', sizeof(body));
        body[30] = '\0';
        /* A closing quote at @at: the string ends there. */
        snprintf(buf, sizeof(buf), "[\"%.*s\",1]", at, body);
        assert_int_equal(notify_json_parse(buf, strlen(buf), t, 8, NULL), 3);
        assert_int_equal(t[1].len, at);
        /* A control character at @at: rejected. */
        snprintf(buf, sizeof(buf), "\"%.*s\t%s\"", at, body, body + at);
        assert_int_equal(notify_json_parse(buf, strlen(buf), t, 8, NULL),
                         -EINVAL);
        /* An invalid UTF-8 byte at @at: rejected; a valid sequence: not. */
        snprintf(buf, sizeof(buf), "\"%.*s\xff%s\"", at, body, body + at);
        assert_int_equal(notify_json_parse(buf, strlen(buf), t, 8, NULL),
                         -EINVAL);
        snprintf(buf, sizeof(buf), "\"%.*s\xc3\xa9%s\"", at, body, body + at);
        assert_int_equal(notify_json_parse(buf, strlen(buf), t, 8, NULL), 1);
        /* An escape at @at: kept and flagged. */
        snprintf(buf, sizeof(buf), "\"%.*s\\\"%s\"", at, body, body + at);
        assert_int_equal(notify_json_parse(buf, strlen(buf), t, 8, NULL), 1);
        assert_true(t[0].flags & NOTIFY_JSON_ESCAPED);
        /* Cut short at @at: no closing quote. */
        snprintf(buf, sizeof(buf), "\"%.*s", at, body);
        assert_int_equal(notify_json_parse(buf, strlen(buf), t, 8, NULL),
                         -EINVAL);
    }
}

static void test_embedded_nul_rejected(void **state)
{
    (void)state;
    struct notify_json_tok t[4];
    const char s[] = "\"a\0b\"";
    assert_int_equal(notify_json_parse(s, sizeof(s) - 1, t, 4, NULL), -EINVAL);
}

static void test_token_structure(void **state)
{
    (void)state;
    const char *s = "{\"a\":[1,{\"x\":true}],\"b\":\"s\"}";
    struct notify_json_tok t[MAXT];
    int n = parse(s, t);
    /* 0{ 1"a" 2[ 3 1 4{ 5"x" 6true 7"b" 8"s" */
    assert_int_equal(n, 9);
    assert_int_equal(t[0].type, NOTIFY_JSON_OBJECT);
    assert_int_equal(t[0].size, 2);
    assert_int_equal(t[0].next, 9);
    assert_int_equal(t[0].len, strlen(s));
    assert_true(notify_json_eq(s, &t[1], "a"));
    assert_int_equal(t[2].type, NOTIFY_JSON_ARRAY);
    assert_int_equal(t[2].size, 2);
    assert_int_equal(t[2].next, 7);
    assert_int_equal(t[3].type, NOTIFY_JSON_NUMBER);
    assert_int_equal(t[4].type, NOTIFY_JSON_OBJECT);
    assert_int_equal(t[4].size, 1);
    assert_int_equal(t[4].next, 7);
    assert_true(notify_json_eq(s, &t[5], "x"));
    assert_int_equal(t[6].type, NOTIFY_JSON_TRUE);
    assert_true(notify_json_eq(s, &t[7], "b"));
    assert_int_equal(t[8].type, NOTIFY_JSON_STRING);
    assert_int_equal(t[8].len, 1);
    assert_memory_equal(s + t[8].start, "s", 1);

    assert_int_equal(notify_json_get(s, t, 0, "b"), 8);
    assert_int_equal(notify_json_get(s, t, 0, "a"), 2);
    assert_int_equal(notify_json_get(s, t, 0, "zz"), 0);
    assert_int_equal(notify_json_get(s, t, 2, "a"), 0); /* not an object */
}

static void test_decode_strings(void **state)
{
    (void)state;
    const char *s = "[\"a\\u00e9\\n\\uD83D\\uDE00\\\"\",\"plain\"]";
    struct notify_json_tok t[MAXT];
    assert_int_equal(parse(s, t), 3);
    assert_true(t[1].flags & NOTIFY_JSON_ESCAPED);
    char out[32];
    size_t len;
    assert_int_equal(notify_json_str(s, &t[1], out, sizeof(out), &len), 0);
    assert_string_equal(out, "a\xc3\xa9\n\xf0\x9f\x98\x80\"");
    assert_int_equal(len, strlen(out));
    assert_int_equal(notify_json_str(s, &t[2], out, sizeof(out), NULL), 0);
    assert_string_equal(out, "plain");
    /* Too small: -ENOSPC, for escaped and plain strings alike. */
    assert_int_equal(notify_json_str(s, &t[1], out, 4, NULL), -ENOSPC);
    assert_int_equal(notify_json_str(s, &t[2], out, 5, NULL), -ENOSPC);
    assert_int_equal(notify_json_str(s, &t[0], out, 32, NULL), -EINVAL);
}

static void test_escaped_key_matches(void **state)
{
    (void)state;
    const char *s = "{\"\\u006fp\":\"ping\"}";
    struct notify_json_tok t[MAXT];
    assert_int_equal(parse(s, t), 3);
    assert_true(notify_json_eq(s, &t[1], "op"));
    assert_false(notify_json_eq(s, &t[1], "o"));
    assert_int_equal(notify_json_get(s, t, 0, "op"), 2);
}

static void test_u64(void **state)
{
    (void)state;
    const char *s = "[0,57,18446744073709551615,18446744073709551616,-1,1.0,"
                    "1e3,\"7\"]";
    struct notify_json_tok t[MAXT];
    assert_int_equal(parse(s, t), 9);
    uint64_t v;
    assert_int_equal(notify_json_u64(s, &t[1], &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(notify_json_u64(s, &t[2], &v), 0);
    assert_int_equal(v, 57);
    assert_int_equal(notify_json_u64(s, &t[3], &v), 0);
    assert_true(v == UINT64_MAX);
    assert_int_equal(notify_json_u64(s, &t[4], &v), -ERANGE);
    assert_int_equal(notify_json_u64(s, &t[5], &v), -ERANGE);
    assert_int_equal(notify_json_u64(s, &t[6], &v), -EINVAL);
    assert_int_equal(notify_json_u64(s, &t[7], &v), -EINVAL);
    assert_int_equal(notify_json_u64(s, &t[8], &v), -EINVAL);
}

static void test_limits(void **state)
{
    (void)state;
    struct notify_json_tok t[MAXT];
    /* Too many tokens. */
    assert_int_equal(notify_json_parse("[1,2,3]", 7, t, 3, NULL), -ENOSPC);
    assert_int_equal(notify_json_parse("[1,2,3]", 7, t, 4, NULL), 4);
    /* Depth: exactly the limit passes, one more is refused. */
    char deep[2 * NOTIFY_JSON_MAX_DEPTH + 3];
    size_t d = NOTIFY_JSON_MAX_DEPTH;
    memset(deep, '[', d);
    memset(deep + d, ']', d);
    assert_true(notify_json_parse(deep, 2 * d, t, MAXT, NULL) > 0);
    memset(deep, '[', d + 1);
    memset(deep + d + 1, ']', d + 1);
    assert_int_equal(notify_json_parse(deep, 2 * d + 2, t, MAXT, NULL), -E2BIG);
}

static void test_error_position(void **state)
{
    (void)state;
    struct notify_json_tok t[MAXT];
    size_t where = 0;
    const char *s = "{\"op\":\"ping\",x}";
    assert_int_equal(notify_json_parse(s, strlen(s), t, MAXT, &where), -EINVAL);
    assert_int_equal(where, 13);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_documents),
        cmocka_unit_test(test_invalid_documents),
        cmocka_unit_test(test_long_strings_every_offset),
        cmocka_unit_test(test_embedded_nul_rejected),
        cmocka_unit_test(test_token_structure),
        cmocka_unit_test(test_decode_strings),
        cmocka_unit_test(test_escaped_key_matches),
        cmocka_unit_test(test_u64),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_error_position),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
