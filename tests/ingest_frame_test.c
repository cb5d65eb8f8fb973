/* tests/ingest_frame_test.c - the stream framer: documents, junk, limits,
 * and the same result however the bytes are split. */
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
#include "ingest/ingest_impl.h"
#include "tests/ingest_test_util.h"

/* ---- helpers ------------------------------------------------------------- */

/*
 * Runs the framer over @n bytes at @s cut before each of the @n_cuts
 * ascending offsets in @cuts, and writes a transcript of everything it
 * said (frames with their bytes, the error, the counters) to @out.
 * Returns the last status (0 or an error).
 */
static int run_cuts(const char *s, size_t n, size_t doc_max, const size_t *cuts,
                    size_t n_cuts, struct actor_buf *out)
{
    struct ingest__framer f;
    struct ingest__frame fr;
    int rc = 0;

    assert_int_equal(ingest__frame_init(&f, doc_max), 0);
    actor_buf_reset(out);
    size_t at = 0;
    for (size_t i = 0; i <= n_cuts && rc >= 0; i++) {
        size_t to = i < n_cuts ? cuts[i] : n;
        ingest__frame_input(&f, s + at, to - at, 0);
        while ((rc = ingest__frame_next(&f, &fr)) > 0) {
            actor_buf_printf(out, "K%d S%zu L%zu:", rc, fr.size, fr.len);
            actor_buf_add(out, fr.data, fr.len);
            actor_buf_char(out, '\n');
        }
        at = to;
    }
    if (rc < 0) {
        actor_buf_printf(out, "E%d\n", rc);
    }
    const struct ingest__frame_stats *st = &f.stats;
    size_t pending = ingest__frame_pending(&f);
    actor_buf_printf(
        out,
        "bytes=%llu docs=%llu/%llu over=%llu/%llu junk=%llu "
        "space=%llu pending=%zu\n",
        (unsigned long long)st->bytes, (unsigned long long)st->docs,
        (unsigned long long)st->docs_bytes, (unsigned long long)st->oversize,
        (unsigned long long)st->oversize_bytes,
        (unsigned long long)st->junk_bytes, (unsigned long long)st->space_bytes,
        pending);
    /* Every byte consumed is in exactly one bucket. */
    assert_int_equal(st->bytes, st->docs_bytes + st->oversize_bytes +
                                    st->junk_bytes + st->space_bytes + pending);
    if (rc == 0) {
        assert_int_equal(st->bytes, n);
    }
    assert_int_equal(out->err, 0);
    ingest__frame_release(&f);
    return rc;
}

static void assert_same(const struct actor_buf *a, const struct actor_buf *b)
{
    if (a->len != b->len || memcmp(a->data, b->data, a->len) != 0) {
        print_error("expected:\n%s\ngot:\n%s\n", a->data, b->data);
        fail();
    }
}

/* Checks that every split into two pieces (and three, with @triples), and
 * bytes one at a time, give what the whole stream in one piece gives. */
static void check_all_splits(const char *s, size_t n, size_t doc_max,
                             bool triples)
{
    struct actor_buf whole, part;
    size_t cuts[2];
    size_t *each;

    actor_buf_init(&whole);
    actor_buf_init(&part);
    run_cuts(s, n, doc_max, NULL, 0, &whole);
    for (size_t i = 0; i <= n; i++) {
        cuts[0] = i;
        run_cuts(s, n, doc_max, cuts, 1, &part);
        assert_same(&whole, &part);
        for (size_t j = i; triples && j <= n; j++) {
            cuts[1] = j;
            run_cuts(s, n, doc_max, cuts, 2, &part);
            assert_same(&whole, &part);
        }
    }
    each = malloc((n + 1) * sizeof(*each));
    assert_non_null(each);
    for (size_t i = 0; i < n; i++) {
        each[i] = i + 1;
    }
    run_cuts(s, n, doc_max, each, n ? n - 1 : 0, &part);
    assert_same(&whole, &part);
    free(each);
    actor_buf_release(&whole);
    actor_buf_release(&part);
}

/* Frames @in in one piece and checks the documents, junk, whitespace and
 * what is left pending. */
struct frame_case {
    const char *in;
    const char *docs[4]; /* expected documents, NULL-terminated */
    uint64_t junk;
    uint64_t space;
    size_t pending;
};

static void check_case(const struct frame_case *c)
{
    struct ingest__framer f;
    struct ingest__frame fr;
    size_t n = strlen(c->in), i = 0;
    int rc;

    assert_int_equal(ingest__frame_init(&f, 0), 0);
    ingest__frame_input(&f, c->in, n, 0);
    while ((rc = ingest__frame_next(&f, &fr)) > 0) {
        assert_int_equal(rc, INGEST__FRAME_DOC);
        if (!c->docs[i]) {
            print_error("case %s: extra document %.*s\n", c->in, (int)fr.len,
                        fr.data);
            fail();
        }
        assert_int_equal(fr.len, strlen(c->docs[i]));
        assert_memory_equal(fr.data, c->docs[i], fr.len);
        i++;
    }
    assert_int_equal(rc, 0);
    if (c->docs[i]) {
        print_error("case %s: missing document %s\n", c->in, c->docs[i]);
        fail();
    }
    assert_int_equal(f.stats.junk_bytes, c->junk);
    assert_int_equal(f.stats.space_bytes, c->space);
    assert_int_equal(ingest__frame_pending(&f), c->pending);
    ingest__frame_release(&f);
    check_all_splits(c->in, n, 0, true);
}

/* ---- tests --------------------------------------------------------------- */

static const struct frame_case cases[] = {
    {"<ct/>", {"<ct/>"}, 0, 0, 0},
    {"<ct/><ct/>", {"<ct/>", "<ct/>"}, 0, 0, 0},
    {"\r\n<ct/>\r\n\r\n<a></a>  ", {"<ct/>", "<a></a>"}, 0, 8, 0},
    {"<a><b/><c>x</c></a><d/>", {"<a><b/><c>x</c></a>", "<d/>"}, 0, 0, 0},
    /* junk: text, a '<' that starts nothing, a stray end tag */
    {"xx<ct/>yy", {"<ct/>"}, 4, 0, 0},
    {"< a/><1/><ct/>", {"<ct/>"}, 8, 1, 0},
    {"</x><ct/>", {"<ct/>"}, 4, 0, 0},
    {"<<ct/>", {"<ct/>"}, 1, 0, 0},
    /* '>' and "/>" inside quoted values */
    {"<a b=\"/>\"></a>", {"<a b=\"/>\"></a>"}, 0, 0, 0},
    {"<a b='>' c=\"'\"/>", {"<a b='>' c=\"'\"/>"}, 0, 0, 0},
    {"<a b=\"x\"\n/>", {"<a b=\"x\"\n/>"}, 0, 0, 0},
    /* comments and CDATA hiding end tags */
    {"<a><!-- </a> -- > --></a>", {"<a><!-- </a> -- > --></a>"}, 0, 0, 0},
    {"<a><![CDATA[</a>]]></a>", {"<a><![CDATA[</a>]]></a>"}, 0, 0, 0},
    {"<a><![CDATA[ ]] > ] ]]]></a>", {"<a><![CDATA[ ]] > ] ]]]></a>"}, 0, 0, 0},
    {"<!--> --><a/>", {"<!--> --><a/>"}, 0, 0, 0},
    {"<!----><a/>", {"<!----><a/>"}, 0, 0, 0},
    /* the XML declaration and PIs */
    {"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<a/>",
     {"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<a/>"},
     0,
     0,
     0},
    {"<?pi > ?><a/>", {"<?pi > ?><a/>"}, 0, 0, 0},
    {"<?>?><a/>", {"<?>?><a/>"}, 0, 0, 0},
    {"<a><?p </a> ?></a>", {"<a><?p </a> ?></a>"}, 0, 0, 0},
    /* DOCTYPE, with an internal subset full of traps */
    {"<!DOCTYPE a [ <!ENTITY x \"]>\"> <!-- ]> ' --> <?p ]> ?> ]><a>&x;</a>",
     {"<!DOCTYPE a [ <!ENTITY x \"]>\"> <!-- ]> ' --> <?p ]> ?> ]><a>&x;</a>"},
     0,
     0,
     0},
    {"<!DOCTYPE a SYSTEM \"x>y\"><a/>",
     {"<!DOCTYPE a SYSTEM \"x>y\"><a/>"},
     0,
     0,
     0},
    /* a stray end tag in the prolog ends the document there */
    {"<?x?></b><a/>", {"<?x?></b>", "<a/>"}, 0, 0, 0},
    /* unterminated */
    {"<ct/><event seq=\"1\">", {"<ct/>"}, 0, 0, 15},
    {"<", {NULL}, 0, 0, 1},
    {"<a>x</a>\n<", {"<a>x</a>"}, 0, 1, 1},
    {"<a b=\"x>", {NULL}, 0, 0, 8},
    {"<a><!-- x -", {NULL}, 0, 0, 11},
};

static void test_cases(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        check_case(&cases[i]);
    }
}

static const char mixed[] =
    "junk\r\n<?xml version=\"1.0\"?>\n<login source=\"feed-eu-1\"/>\r\n"
    "<ct/><event seq=\"1\" x='a>b/>'><match id=\"m\"><!-- </match> -->"
    "<clock time=\"1:02\"/><![CDATA[</event>]]></match></event>\n"
    "<!DOCTYPE e [<!ENTITY a \"]>\"><?p ?>?>]><e/>< x<y/>stray</z>"
    "<?pi ?><!-- c --><q/><r a=\"\"/>";

static void test_every_split_small(void **state)
{
    (void)state;
    check_all_splits(mixed, sizeof(mixed) - 1, 0, true);
    /* and with a limit small enough that some documents are too_large */
    check_all_splits(mixed, sizeof(mixed) - 1, 40, false);
}

static void test_every_split_runaway(void **state)
{
    (void)state;
    /* doc_max 16: the second document is still open at byte 64 */
    static const char s[] = "<a/> <b>0123456789012345678901234567890123456"
                            "78901234567890123456789</b><c/>";
    struct actor_buf out;
    actor_buf_init(&out);
    assert_int_equal(run_cuts(s, sizeof(s) - 1, 16, NULL, 0, &out), -EMSGSIZE);
    actor_buf_release(&out);
    check_all_splits(s, sizeof(s) - 1, 16, true);
}

/* Appends one random document (or junk) to @b. */
static void gen_piece(struct actor_buf *b, uint64_t i)
{
    switch (trng() % 12) {
    case 0:
        actor_buf_str(b, "\r\n\r\n");
        break;
    case 1:
        actor_buf_str(b, "<ct/>");
        break;
    case 2:
        actor_buf_str(b, "garbage > / \" ' ");
        break;
    case 3:
        actor_buf_str(b, "<?xml version=\"1.0\"?><!-- a -- > b -->"
                         "<x a='>'><![CDATA[ ]]] </x> ]]></x>");
        break;
    case 4: { /* big: over the 4096-byte limit used below, under 4x */
        actor_buf_printf(b, "<big n=\"%llu\">", (unsigned long long)i);
        size_t n = 4000 + trng() % 8000;
        for (size_t k = 0; k < n; k += 10) {
            actor_buf_str(b, "<i v='>'/>");
        }
        actor_buf_str(b, "</big>");
        break;
    }
    case 5:
        actor_buf_str(b, "<!DOCTYPE d [<!ENTITY e \"]>\"><!--]>-->]><d/>");
        break;
    default:
        actor_buf_printf(
            b,
            "<event seq=\"%llu\" sent=\"2026-11-21T15:04:05.123Z\">"
            "<match id=\"sr:match:%llu\" msgnr=\"%llu\" feedtype=\"delta\">"
            "<status phase=\"second_half\"/><clock time=\"66:12\" "
            "running=\"1\"/><score home=\"2\" away=\"1\"/>"
            "<incident id=\"8812-17\" type=\"goal\" team=\"home\" "
            "minute=\"66\" player=\"B. Saka\"/></match></event>",
            (unsigned long long)i, (unsigned long long)(trng() % 100),
            (unsigned long long)i);
        break;
    }
}

static void test_random_splits_large(void **state)
{
    (void)state;
    struct actor_buf s, whole, part;
    actor_buf_init(&s);
    actor_buf_init(&whole);
    actor_buf_init(&part);
    trng_state = 0x9e3779b97f4a7c15ull;
    for (uint64_t i = 0; s.len < (2u << 20); i++) {
        gen_piece(&s, i);
    }
    actor_buf_str(&s, "<open><unterminated>");
    assert_int_equal(s.err, 0);

    run_cuts(s.data, s.len, 4096, NULL, 0, &whole);
    size_t cap = 1024;
    size_t *cuts = malloc(cap * sizeof(*cuts));
    assert_non_null(cuts);
    for (int round = 0; round < 60; round++) {
        size_t n = 0, at = 0;
        /* piece sizes from 1 byte to 64 KiB, mostly small */
        size_t max = (size_t)1 << (trng() % 17);
        for (;;) {
            at += 1 + trng() % max;
            if (at >= s.len) {
                break;
            }
            if (n == cap) {
                cap *= 2;
                cuts = realloc(cuts, cap * sizeof(*cuts));
                assert_non_null(cuts);
            }
            cuts[n++] = at;
        }
        run_cuts(s.data, s.len, 4096, cuts, n, &part);
        assert_same(&whole, &part);
    }
    free(cuts);
    actor_buf_release(&s);
    actor_buf_release(&whole);
    actor_buf_release(&part);
}

static void test_zero_copy_and_received_ms(void **state)
{
    (void)state;
    struct ingest__framer f;
    struct ingest__frame fr;
    static const char a[] = "<ct/><event seq=\"1\">";
    static const char b[] = "</event>";

    assert_int_equal(ingest__frame_init(&f, 0), 0);
    ingest__frame_input(&f, a, sizeof(a) - 1, 1000);
    assert_int_equal(ingest__frame_next(&f, &fr), INGEST__FRAME_DOC);
    assert_ptr_equal(fr.data, a); /* whole in the input: not copied */
    assert_int_equal(fr.len, 5);
    assert_int_equal(fr.received_ms, 1000);
    assert_int_equal(ingest__frame_next(&f, &fr), 0);
    assert_int_equal(ingest__frame_pending(&f), 15);

    ingest__frame_input(&f, b, sizeof(b) - 1, 2000);
    assert_int_equal(ingest__frame_next(&f, &fr), INGEST__FRAME_DOC);
    assert_true(fr.data < b || fr.data >= b + sizeof(b)); /* gathered */
    assert_int_equal(fr.len, 23);
    assert_memory_equal(fr.data, "<event seq=\"1\"></event>", 23);
    assert_int_equal(fr.received_ms, 2000); /* its last byte's read */
    assert_int_equal(ingest__frame_next(&f, &fr), 0);
    assert_int_equal(ingest__frame_pending(&f), 0);
    ingest__frame_release(&f);
}

static void test_too_large_keeps_head(void **state)
{
    (void)state;
    struct ingest__framer f;
    struct ingest__frame fr;
    size_t n = 3u << 20; /* 3 MiB: over 1 MiB, under the 4 MiB runaway */
    char *doc = malloc(n + 5);
    assert_non_null(doc);
    memcpy(doc, "<a>", 3);
    memset(doc + 3, 'x', n - 7);
    memcpy(doc + n - 4, "</a>", 4);
    memcpy(doc + n, "<b/>", 4);
    doc[n + 4] = '\0';

    /* whole in one input, then in reads of a few sizes */
    const size_t pieces[] = {n + 4, 65536, 1000};
    for (size_t k = 0; k < sizeof(pieces) / sizeof(pieces[0]); k++) {
        size_t piece = pieces[k];
        assert_int_equal(ingest__frame_init(&f, 0), 0);
        size_t at = 0, got = 0;
        while (at < n + 4) {
            size_t len = n + 4 - at < piece ? n + 4 - at : piece;
            ingest__frame_input(&f, doc + at, len, 0);
            at += len;
            int rc;
            while ((rc = ingest__frame_next(&f, &fr)) > 0) {
                if (got == 0) {
                    assert_int_equal(rc, INGEST__FRAME_TOO_LARGE);
                    assert_int_equal(fr.size, n);
                    assert_int_equal(fr.len, INGEST_DEAD_LETTER_MAX);
                    assert_memory_equal(fr.data, doc, fr.len);
                } else {
                    assert_int_equal(rc, INGEST__FRAME_DOC);
                    assert_int_equal(fr.len, 4);
                    assert_memory_equal(fr.data, "<b/>", 4);
                }
                got++;
            }
            assert_int_equal(rc, 0);
            /* memory stays bounded by the limit while it is discarded */
            assert_true(f.acc_cap <= INGEST_DOC_MAX_DEFAULT);
        }
        assert_int_equal(got, 2);
        assert_int_equal(f.stats.oversize, 1);
        assert_int_equal(f.stats.oversize_bytes, n);
        ingest__frame_release(&f);
    }
    free(doc);
}

static void test_runaway_boundary(void **state)
{
    (void)state;
    struct ingest__framer f;
    struct ingest__frame fr;
    char doc[512];

    /* doc_max 100: a document of exactly 400 bytes is too_large ... */
    memset(doc, ' ', sizeof(doc));
    memcpy(doc, "<a>", 3);
    memcpy(doc + 396, "</a>", 4);
    assert_int_equal(ingest__frame_init(&f, 100), 0);
    ingest__frame_input(&f, doc, 400, 0);
    assert_int_equal(ingest__frame_next(&f, &fr), INGEST__FRAME_TOO_LARGE);
    assert_int_equal(fr.size, 400);
    assert_int_equal(fr.len, 100); /* the head: at most the limit */
    ingest__frame_release(&f);

    /* ... one of 401 is still open after 400: a runaway, for good */
    memcpy(doc + 396, " </a>", 5);
    assert_int_equal(ingest__frame_init(&f, 100), 0);
    ingest__frame_input(&f, doc, 401, 0);
    assert_int_equal(ingest__frame_next(&f, &fr), -EMSGSIZE);
    assert_int_equal(f.stats.bytes, 400);
    /* the fuzzer's first find (a wrong check of its own): the runaway
     * is pending at exactly four times the limit */
    assert_int_equal(ingest__frame_pending(&f), 400);
    assert_int_equal(ingest__frame_next(&f, &fr), -EMSGSIZE);
    ingest__frame_input(&f, doc, 10, 0); /* more bytes change nothing */
    assert_int_equal(ingest__frame_next(&f, &fr), -EMSGSIZE);
    ingest__frame_release(&f);
}

static void test_limits_rejected(void **state)
{
    (void)state;
    struct ingest__framer f;
    assert_int_equal(ingest__frame_init(&f, INGEST_DOC_MAX_LIMIT + 1), -EINVAL);
    assert_int_equal(ingest__frame_init(&f, INGEST_DOC_MAX_LIMIT), 0);
    ingest__frame_release(&f);
    ingest__frame_release(NULL);
}

static void test_alloc_failure(void **state)
{
    (void)state;
    struct ingest__framer f;
    struct ingest__frame fr;
    static const char a[] = "<event seq=\"1\">";
    static const char b[] = "</event><ct/>";

    tmem_start();
    assert_int_equal(ingest__frame_init(&f, 0), 0);
    tmem.fail_at = 1; /* gathering the open document fails */
    ingest__frame_input(&f, a, sizeof(a) - 1, 0);
    assert_int_equal(ingest__frame_next(&f, &fr), -ENOMEM);
    assert_int_equal(ingest__frame_next(&f, &fr), -ENOMEM); /* sticky */
    ingest__frame_release(&f);
    assert_int_equal(tmem.live, 0);

    /* the same stream with memory to spare */
    tmem.fail_at = 0;
    assert_int_equal(ingest__frame_init(&f, 0), 0);
    ingest__frame_input(&f, a, sizeof(a) - 1, 0);
    assert_int_equal(ingest__frame_next(&f, &fr), 0);
    ingest__frame_input(&f, b, sizeof(b) - 1, 0);
    assert_int_equal(ingest__frame_next(&f, &fr), INGEST__FRAME_DOC);
    assert_int_equal(ingest__frame_next(&f, &fr), INGEST__FRAME_DOC);
    assert_int_equal(ingest__frame_next(&f, &fr), 0);
    ingest__frame_release(&f);
    assert_int_equal(tmem.live, 0);
    tmem_stop();
}

static void test_large_buffer_let_go(void **state)
{
    (void)state;
    struct ingest__framer f;
    struct ingest__frame fr;
    size_t n = 512u << 10;
    char *doc = malloc(n);
    assert_non_null(doc);
    memcpy(doc, "<a>", 3);
    memset(doc + 3, 'x', n - 7);
    memcpy(doc + n - 4, "</a>", 4);

    tmem_start();
    assert_int_equal(ingest__frame_init(&f, 0), 0);
    ingest__frame_input(&f, doc, n / 2, 0);
    assert_int_equal(ingest__frame_next(&f, &fr), 0);
    ingest__frame_input(&f, doc + n / 2, n - n / 2, 0);
    assert_int_equal(ingest__frame_next(&f, &fr), INGEST__FRAME_DOC);
    assert_int_equal(fr.len, n);
    assert_true(tmem.live >= n); /* gathered while handed out */
    assert_int_equal(ingest__frame_next(&f, &fr), 0);
    assert_int_equal(tmem.live, 0); /* then let go */
    ingest__frame_release(&f);
    tmem_stop();
    free(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cases),
        cmocka_unit_test(test_every_split_small),
        cmocka_unit_test(test_every_split_runaway),
        cmocka_unit_test(test_random_splits_large),
        cmocka_unit_test(test_zero_copy_and_received_ms),
        cmocka_unit_test(test_too_large_keeps_head),
        cmocka_unit_test(test_runaway_boundary),
        cmocka_unit_test(test_limits_rejected),
        cmocka_unit_test(test_alloc_failure),
        cmocka_unit_test(test_large_buffer_let_go),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
