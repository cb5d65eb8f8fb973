/* tests/ingest_parse_test.c - the document parser: every kind of result,
 * every rejection, hostile documents, and allocation failure. */
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
#include "ingest/event.h"
#include "ingest/ingest_impl.h"
#include "tests/ingest_test_util.h"

static const char spec_example[] =
    "<event seq=\"1042\" sent=\"2026-11-21T15:04:05.123Z\">\n"
    "  <match id=\"sr:match:8812\" msgnr=\"57\" feedtype=\"delta\">\n"
    "    <status phase=\"second_half\"/>\n"
    "    <clock time=\"66:12\" running=\"1\"/>\n"
    "    <score home=\"2\" away=\"1\"/>\n"
    "    <incident id=\"8812-17\" type=\"goal\" team=\"home\" "
    "minute=\"66\"\n"
    "              player=\"B. Saka\" assist=\"M. Odegaard\" "
    "confirmed=\"0\"/>\n"
    "  </match>\n"
    "  <match id=\"sr:match:8813\" msgnr=\"3\" feedtype=\"full\">\n"
    "    <fixture sport=\"soccer\" competition=\"Premier League\"\n"
    "             home=\"Arsenal\" away=\"Chelsea\" "
    "start=\"2026-11-21T15:00:00Z\"/>\n"
    "    <status phase=\"first_half\"/>\n"
    "    <clock time=\"03:10\" running=\"1\"/>\n"
    "    <score home=\"0\" away=\"0\"/>\n"
    "  </match>\n"
    "</event>";

/* ---- helpers ------------------------------------------------------------- */

static int parse_with(struct ingest__parser *p, const char *xml, size_t len,
                      const char *source, struct ingest__result *res)
{
    struct ingest__doc doc = {
        .data = xml, .len = len, .received_ms = 4242, .source = source};
    return ingest__parse(p, &doc, res);
}

static int parse(struct ingest__parser *p, const char *xml, const char *source,
                 struct ingest__result *res)
{
    return parse_with(p, xml, strlen(xml), source, res);
}

static int setup(void **state)
{
    *state = ingest__parser_new(NULL);
    return *state ? 0 : -1;
}

static int teardown(void **state)
{
    ingest__parser_free(*state);
    return 0;
}

/* Parses @xml (bound to @source) and checks it is rejected for @reason
 * with @seq. */
static void expect_reject(struct ingest__parser *p, const char *xml,
                          const char *source, enum ingest__reason reason,
                          uint64_t seq)
{
    struct ingest__result res;
    assert_int_equal(parse(p, xml, source, &res), 0);
    if (res.kind != INGEST__DOC_REJECTED || res.reason != reason ||
        res.seq != seq) {
        print_error("%s\n  kind %d reason %s seq %llu (%s); expected %s "
                    "seq %llu\n",
                    xml, res.kind, ingest__reason_name(res.reason),
                    (unsigned long long)res.seq, res.detail,
                    ingest__reason_name(reason), (unsigned long long)seq);
        fail();
    }
    assert_null(res.event);
    assert_true(res.detail[0] != '\0');
    for (const char *c = res.detail; *c; c++) {
        assert_true(*c >= 0x20 && *c < 0x7f);
    }
    ingest__result_release(&res);
}

/* Parses @xml bound to "s" and returns its event (the caller unrefs). */
static struct event *expect_event(struct ingest__parser *p, const char *xml)
{
    struct ingest__result res;
    assert_int_equal(parse(p, xml, "s", &res), 0);
    if (res.kind != INGEST__DOC_EVENT) {
        print_error("%s\n  kind %d reason %s (%s)\n", xml, res.kind,
                    ingest__reason_name(res.reason), res.detail);
        fail();
    }
    struct event *ev = res.event;
    res.event = NULL; /* taken */
    ingest__result_release(&res);
    return ev;
}

/* ---- results ------------------------------------------------------------- */

static void check_spec_event(const struct event *ev, const char *raw,
                             size_t raw_len)
{
    assert_int_equal(atomic_load(&ev->refs), 1);
    assert_string_equal(ev->source, "feed-eu-1");
    assert_int_equal(ev->seq, 1042);
    assert_string_equal(ev->sent, "2026-11-21T15:04:05.123Z");
    assert_int_equal(ev->sent_ms, 1795273445123ll);
    assert_int_equal(ev->received_ms, 4242);
    assert_int_equal(ev->raw_len, raw_len);
    assert_memory_equal(ev->raw, raw, raw_len);
    assert_int_equal(ev->raw[raw_len], '\0');
    assert_int_equal(ev->n_matches, 2);

    const struct event_match *m = &ev->matches[0];
    assert_string_equal(m->id, "sr:match:8812");
    assert_true(m->has_msgnr);
    assert_int_equal(m->msgnr, 57);
    assert_false(m->full);
    assert_int_equal(m->parts,
                     EVENT_HAS_STATUS | EVENT_HAS_CLOCK | EVENT_HAS_SCORE);
    assert_null(m->fixture.sport);
    assert_string_equal(m->phase, "second_half");
    assert_int_equal(m->clock_seconds, 66 * 60 + 12);
    assert_int_equal(m->clock_running, 1);
    assert_int_equal(m->score_home, 2);
    assert_int_equal(m->score_away, 1);
    assert_int_equal(m->n_incidents, 1);
    const struct event_incident *in = &m->incidents[0];
    assert_string_equal(in->id, "8812-17");
    assert_string_equal(in->type, "goal");
    assert_int_equal(in->team, EVENT_TEAM_HOME);
    assert_int_equal(in->minute, 66);
    assert_int_equal(in->stoppage, EVENT_ABSENT);
    assert_string_equal(in->player, "B. Saka");
    assert_string_equal(in->assist, "M. Odegaard");
    assert_int_equal(in->confirmed, 0);
    assert_int_equal(in->action, EVENT_ACTION_INSERT);

    m = &ev->matches[1];
    assert_string_equal(m->id, "sr:match:8813");
    assert_int_equal(m->msgnr, 3);
    assert_true(m->full);
    assert_int_equal(m->parts, EVENT_HAS_FIXTURE | EVENT_HAS_STATUS |
                                   EVENT_HAS_CLOCK | EVENT_HAS_SCORE);
    assert_string_equal(m->fixture.sport, "soccer");
    assert_string_equal(m->fixture.competition, "Premier League");
    assert_string_equal(m->fixture.home, "Arsenal");
    assert_string_equal(m->fixture.away, "Chelsea");
    assert_string_equal(m->fixture.start, "2026-11-21T15:00:00Z");
    assert_string_equal(m->phase, "first_half");
    assert_int_equal(m->clock_seconds, 190);
    assert_int_equal(m->clock_running, 1);
    assert_int_equal(m->score_home, 0);
    assert_int_equal(m->score_away, 0);
    assert_int_equal(m->n_incidents, 0);
    assert_null(m->incidents);
}

static void test_spec_example(void **state)
{
    struct ingest__parser *p = *state;
    struct ingest__result res;

    assert_int_equal(parse(p, spec_example, "feed-eu-1", &res), 0);
    assert_int_equal(res.kind, INGEST__DOC_EVENT);
    assert_int_equal(res.seq, 1042);
    assert_int_equal(res.unknown_elements, 0);
    assert_int_equal(res.unknown_attributes, 0);
    assert_string_equal(res.event_source, "");
    check_spec_event(res.event, spec_example, strlen(spec_example));
    /* every pointer lies inside the one allocation */
    const char *lo = (const char *)res.event;
    const char *hi = lo + res.event->size;
    assert_true(res.event->matches[1].fixture.home > lo &&
                res.event->matches[1].fixture.home < hi);
    assert_true(res.event->raw > lo && res.event->raw < hi);
    ingest__result_release(&res);
    assert_null(res.event);
}

static void test_login(void **state)
{
    struct ingest__parser *p = *state;
    struct ingest__result res;

    assert_int_equal(
        parse(p, "<login source=\"feed-eu-1\" token=\"s3cret\" version=\"1\"/>",
              NULL, &res),
        0);
    assert_int_equal(res.kind, INGEST__DOC_LOGIN);
    assert_string_equal(res.login.source, "feed-eu-1");
    assert_true(res.login.has_token);
    assert_string_equal(res.login.token, "s3cret");
    assert_true(res.login.has_version);
    assert_string_equal(res.login.version, "1");
    ingest__result_release(&res);

    assert_int_equal(parse(p,
                           "<?xml version=\"1.0\"?>\n<login source=\"a\" "
                           "extra=\"x\"><hello/></login>",
                           NULL, &res),
                     0);
    assert_int_equal(res.kind, INGEST__DOC_LOGIN);
    assert_string_equal(res.login.source, "a");
    assert_false(res.login.has_token);
    assert_false(res.login.has_version);
    assert_int_equal(res.unknown_attributes, 1);
    assert_int_equal(res.unknown_elements, 1);
    ingest__result_release(&res);

    expect_reject(p, "<login/>", NULL, INGEST__REASON_BAD_ATTRIBUTE, 0);
    expect_reject(p, "<login source=\"\"/>", NULL, INGEST__REASON_BAD_ATTRIBUTE,
                  0);
    expect_reject(p, "<login source=\"a b\"/>", NULL,
                  INGEST__REASON_BAD_ATTRIBUTE, 0);
    expect_reject(p, "<login source=\"a\" version=\"12345678901234567\"/>",
                  NULL, INGEST__REASON_BAD_ATTRIBUTE, 0);
    expect_reject(p, "<login source=\"a\">", NULL,
                  INGEST__REASON_NOT_WELL_FORMED, 0);
}

static void test_ct_and_unknown_root(void **state)
{
    struct ingest__parser *p = *state;
    struct ingest__result res;

    assert_int_equal(parse(p, "<ct/>", NULL, &res), 0);
    assert_int_equal(res.kind, INGEST__DOC_CT);
    ingest__result_release(&res);

    assert_int_equal(parse(p, "<ct t=\"1\"/>", NULL, &res), 0);
    assert_int_equal(res.kind, INGEST__DOC_CT);
    assert_int_equal(res.unknown_attributes, 1);
    ingest__result_release(&res);

    assert_int_equal(parse(p,
                           "<news a=\"1\"><event seq=\"x\"/><b><c/></b></news>",
                           NULL, &res),
                     0);
    assert_int_equal(res.kind, INGEST__DOC_UNKNOWN);
    assert_string_equal(res.root, "news");
    assert_null(res.event);
    ingest__result_release(&res);

    /* a long root name is cut for the log, at a character boundary */
    assert_int_equal(parse(p,
                           "<aaaaaaaaaaaaaaaaaaaaaaaaaaaaa\xc3\xa9\xc3\xa9/>",
                           NULL, &res),
                     0);
    assert_int_equal(res.kind, INGEST__DOC_UNKNOWN);
    assert_string_equal(res.root, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaa\xc3\xa9");
    ingest__result_release(&res);

    /* an unknown root must still be well-formed */
    expect_reject(p, "<news><a></b></news>", NULL,
                  INGEST__REASON_NOT_WELL_FORMED, 0);
}

struct reject_case {
    const char *xml;
    enum ingest__reason reason;
    uint64_t seq;
};

#define EV(attrs, body) "<event seq=\"7\"" attrs ">" body "</event>"
#define E8              "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
#define V64             "0123456789012345678901234567890123456789012345678901234567890123"
#define V256            V64 V64 V64 V64
#define V1025           V256 V256 V256 V256 "x"
#define MA(body)        EV("", "<match id=\"m\">" body "</match>")

static const struct reject_case reject_cases[] = {
    /* not well-formed */
    {"", INGEST__REASON_NOT_WELL_FORMED, 0},
    {"<event seq=\"7\">", INGEST__REASON_NOT_WELL_FORMED, 7},
    {"<event seq=\"7\"><match id=\"m\"></event>",
     INGEST__REASON_NOT_WELL_FORMED, 7},
    {"<event seq=\"7\" seq=\"8\"/>", INGEST__REASON_NOT_WELL_FORMED, 0},
    {EV("", "&undefined;"), INGEST__REASON_NOT_WELL_FORMED, 7},
    {EV("", "\xff"), INGEST__REASON_NOT_WELL_FORMED, 7},
    {"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>" EV("", "\xe9"),
     INGEST__REASON_NOT_WELL_FORMED, 7},
    {"<event seq=\"7\"/><ct/>", INGEST__REASON_NOT_WELL_FORMED, 7},
    {"<!DOCTYPE event><event seq=\"7\"/>", INGEST__REASON_NOT_WELL_FORMED, 0},
    {"text<event seq=\"7\"/>", INGEST__REASON_NOT_WELL_FORMED, 0},
    /* seq */
    {"<event/>", INGEST__REASON_MISSING_SEQ, 0},
    {"<event sent=\"2026-11-21T15:04:05Z\"><match id=\"m\"/></event>",
     INGEST__REASON_MISSING_SEQ, 0},
    {"<event seq=\"0\"/>", INGEST__REASON_BAD_ATTRIBUTE, 0},
    {"<event seq=\"-1\"/>", INGEST__REASON_BAD_ATTRIBUTE, 0},
    {"<event seq=\"+1\"/>", INGEST__REASON_BAD_ATTRIBUTE, 0},
    {"<event seq=\" 1\"/>", INGEST__REASON_BAD_ATTRIBUTE, 0},
    {"<event seq=\"1x\"/>", INGEST__REASON_BAD_ATTRIBUTE, 0},
    {"<event seq=\"\"/>", INGEST__REASON_BAD_ATTRIBUTE, 0},
    {"<event seq=\"9223372036854775808\"/>", INGEST__REASON_BAD_ATTRIBUTE, 0},
    {"<event seq=\"99999999999999999999\"/>", INGEST__REASON_BAD_ATTRIBUTE, 0},
    /* sent; a content rejection keeps the seq */
    {EV(" sent=\"2026-11-21 15:04:05Z\"", ""), INGEST__REASON_BAD_ATTRIBUTE, 7},
    {EV(" sent=\"2026-02-29T15:04:05Z\"", ""), INGEST__REASON_BAD_ATTRIBUTE, 7},
    {EV(" sent=\"2026-11-21T24:00:00Z\"", ""), INGEST__REASON_BAD_ATTRIBUTE, 7},
    {EV(" sent=\"2026-11-21T15:04:05\"", ""), INGEST__REASON_BAD_ATTRIBUTE, 7},
    {EV(" sent=\"2026-11-21T15:04:05.Z\"", ""), INGEST__REASON_BAD_ATTRIBUTE,
     7},
    {EV(" sent=\"2026-11-21T15:04:05+0100\"", ""), INGEST__REASON_BAD_ATTRIBUTE,
     7},
    {EV(" sent=\"2026-11-21T15:04:05Zjunk\"", ""), INGEST__REASON_BAD_ATTRIBUTE,
     7},
    /* source */
    /* another source's event: its seq is not the bound source's */
    {EV(" source=\"other\"", ""), INGEST__REASON_BAD_ATTRIBUTE, 0},
    {EV(" source=\"s s\"", ""), INGEST__REASON_BAD_ATTRIBUTE, 7},
    /* match */
    {EV("", "<match/>"), INGEST__REASON_BAD_ATTRIBUTE, 7},
    {EV("", "<match id=\"\"/>"), INGEST__REASON_BAD_ATTRIBUTE, 7},
    {EV("", "<match id=\"0123456789012345678901234567890123456789"
            "01234567890123456789012345\"/>"),
     INGEST__REASON_BAD_ATTRIBUTE, 7},
    {EV("", "<match id=\"m\" msgnr=\"x\"/>"), INGEST__REASON_BAD_ATTRIBUTE, 7},
    {EV("", "<match id=\"m\" msgnr=\"-3\"/>"), INGEST__REASON_BAD_ATTRIBUTE, 7},
    {EV("", "<match id=\"m\" feedtype=\"snapshot\"/>"),
     INGEST__REASON_BAD_ATTRIBUTE, 7},
    /* children: each at most once except incident */
    {MA("<status/><status/>"), INGEST__REASON_BAD_ELEMENT, 7},
    {MA("<fixture/><score home=\"1\" away=\"1\"/><fixture/>"),
     INGEST__REASON_BAD_ELEMENT, 7},
    {MA("<clock/><clock/>"), INGEST__REASON_BAD_ELEMENT, 7},
    {MA("<score home=\"1\" away=\"1\"/><score home=\"1\" away=\"2\"/>"),
     INGEST__REASON_BAD_ELEMENT, 7},
    /* clock */
    {MA("<clock time=\"66\"/>"), INGEST__REASON_BAD_ATTRIBUTE, 7},
    {MA("<clock time=\"66:60\"/>"), INGEST__REASON_BAD_ATTRIBUTE, 7},
    {MA("<clock time=\"66:1\"/>"), INGEST__REASON_BAD_ATTRIBUTE, 7},
    {MA("<clock time=\":10\"/>"), INGEST__REASON_BAD_ATTRIBUTE, 7},
    {MA("<clock time=\"-1:10\"/>"), INGEST__REASON_BAD_ATTRIBUTE, 7},
    {MA("<clock time=\"1234567:10\"/>"), INGEST__REASON_BAD_ATTRIBUTE, 7},
    {MA("<clock time=\"10:10\" running=\"2\"/>"), INGEST__REASON_BAD_ATTRIBUTE,
     7},
    {MA("<clock running=\"yes\"/>"), INGEST__REASON_BAD_ATTRIBUTE, 7},
    /* score */
    {MA("<score home=\"1\"/>"), INGEST__REASON_BAD_ATTRIBUTE, 7},
    {MA("<score away=\"1\"/>"), INGEST__REASON_BAD_ATTRIBUTE, 7},
    {MA("<score home=\"-1\" away=\"0\"/>"), INGEST__REASON_BAD_ATTRIBUTE, 7},
    {MA("<score home=\"1\" away=\"4294967296\"/>"),
     INGEST__REASON_BAD_ATTRIBUTE, 7},
    {MA("<score home=\"1.0\" away=\"0\"/>"), INGEST__REASON_BAD_ATTRIBUTE, 7},
    /* incident */
    {MA("<incident type=\"goal\"/>"), INGEST__REASON_BAD_ATTRIBUTE, 7},
    {MA("<incident id=\"\"/>"), INGEST__REASON_BAD_ATTRIBUTE, 7},
    {MA("<incident id=\"i\" team=\"both\"/>"), INGEST__REASON_BAD_ATTRIBUTE, 7},
    {MA("<incident id=\"i\" minute=\"-1\"/>"), INGEST__REASON_BAD_ATTRIBUTE, 7},
    {MA("<incident id=\"i\" minute=\"2147483648\"/>"),
     INGEST__REASON_BAD_ATTRIBUTE, 7},
    {MA("<incident id=\"i\" stoppage=\"x\"/>"), INGEST__REASON_BAD_ATTRIBUTE,
     7},
    {MA("<incident id=\"i\" confirmed=\"true\"/>"),
     INGEST__REASON_BAD_ATTRIBUTE, 7},
    {MA("<incident id=\"i\" action=\"remove\"/>"), INGEST__REASON_BAD_ATTRIBUTE,
     7},
    /* a detail quoting a non-ASCII name (cut mid-character) stays ASCII */
    {MA("<status x" E8 E8 "=\"" V1025 "\"/>"), INGEST__REASON_BAD_ATTRIBUTE, 7},
    /* a later violation after good matches still rejects the event */
    {EV("", "<match id=\"a\"/><match id=\"b\"><score home=\"x\" "
            "away=\"1\"/></match>"),
     INGEST__REASON_BAD_ATTRIBUTE, 7},
};

static void test_rejections(void **state)
{
    struct ingest__parser *p = *state;
    for (size_t i = 0; i < sizeof(reject_cases) / sizeof(reject_cases[0]);
         i++) {
        const struct reject_case *c = &reject_cases[i];
        expect_reject(p, c->xml, "s", c->reason, c->seq);
    }
    /* and the parser is as good as new after each */
    struct event *ev = expect_event(p, MA("<score home=\"1\" away=\"2\"/>"));
    assert_int_equal(ev->matches[0].score_away, 2);
    event_unref(ev);
}

static void test_unauthenticated(void **state)
{
    struct ingest__parser *p = *state;
    struct ingest__result res;

    /* no login, no source attribute: no source to account it to */
    expect_reject(p, "<event seq=\"5\"/>", NULL, INGEST__REASON_UNAUTHENTICATED,
                  5);

    /* without a login the event may name its source */
    assert_int_equal(
        parse(p, "<event seq=\"5\" source=\"feed-x\"/>", NULL, &res), 0);
    assert_int_equal(res.kind, INGEST__DOC_EVENT);
    assert_string_equal(res.event->source, "feed-x");
    assert_string_equal(res.event_source, "feed-x");
    assert_int_equal(res.event->n_matches, 0);
    ingest__result_release(&res);

    /* naming the bound source again is fine */
    assert_int_equal(
        parse(p, "<event seq=\"6\" source=\"feed-x\"/>", "feed-x", &res), 0);
    assert_int_equal(res.kind, INGEST__DOC_EVENT);
    assert_string_equal(res.event->source, "feed-x");
    ingest__result_release(&res);
}

static void test_values(void **state)
{
    struct ingest__parser *p = *state;
    struct event *ev = expect_event(
        p, EV(" sent=\"2026-11-21T15:04:05+05:30\"",
              "<match id=\"m&amp;&#233;\" msgnr=\"18446744073709551615\">"
              "<status phase=\"penalty_shootout_v2\"/>"
              "<clock time=\"105:07\"/>"
              "<score home=\"4294967295\" away=\"0\"/>"
              "<incident id=\"a\" team=\"away\" minute=\"45\" stoppage=\"2\" "
              "confirmed=\"1\" action=\"update\"/>"
              "<incident id=\"b\" action=\"delete\"/>"
              "<incident id=\"c\" action=\"insert\" player=\"\"/>"
              "</match><match id=\"n\"/>"));
    assert_int_equal(ev->sent_ms, 1795253645000ll);
    const struct event_match *m = &ev->matches[0];
    assert_string_equal(m->id, "m&\xc3\xa9");
    assert_int_equal(m->msgnr, UINT64_MAX);
    assert_string_equal(m->phase, "penalty_shootout_v2"); /* kept */
    assert_int_equal(m->clock_seconds, 105 * 60 + 7);
    assert_int_equal(m->clock_running, EVENT_ABSENT);
    assert_int_equal(m->score_home, UINT32_MAX);
    assert_int_equal(m->n_incidents, 3);
    assert_int_equal(m->incidents[0].team, EVENT_TEAM_AWAY);
    assert_int_equal(m->incidents[0].minute, 45);
    assert_int_equal(m->incidents[0].stoppage, 2);
    assert_int_equal(m->incidents[0].confirmed, 1);
    assert_int_equal(m->incidents[0].action, EVENT_ACTION_UPDATE);
    assert_null(m->incidents[0].type);
    assert_int_equal(m->incidents[1].action, EVENT_ACTION_DELETE);
    assert_int_equal(m->incidents[1].team, EVENT_TEAM_NONE);
    assert_int_equal(m->incidents[1].confirmed, EVENT_ABSENT);
    assert_int_equal(m->incidents[1].minute, EVENT_ABSENT);
    assert_int_equal(m->incidents[2].action, EVENT_ACTION_INSERT);
    assert_string_equal(m->incidents[2].player, "");
    m = &ev->matches[1];
    assert_string_equal(m->id, "n");
    assert_false(m->has_msgnr);
    assert_false(m->full);
    assert_int_equal(m->parts, 0);
    assert_int_equal(m->clock_seconds, EVENT_ABSENT);
    event_unref(ev);

    /* ids of exactly EVENT_ID_MAX bytes; the largest seq */
    ev = expect_event(p, "<event seq=\"9223372036854775807\"><match id=\""
                         "0123456789012345678901234567890123456789"
                         "012345678901234567890123\"/></event>");
    assert_int_equal(ev->seq, INT64_MAX);
    assert_int_equal(strlen(ev->matches[0].id), EVENT_ID_MAX);
    assert_int_equal(ev->sent_ms, EVENT_ABSENT);
    assert_null(ev->sent);
    event_unref(ev);
}

static void test_rfc3339(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        bool ok;
        int64_t ms;
    } cases[] = {
        {"2026-11-21T15:04:05.123Z", true, 1795273445123ll},
        {"2026-11-21t15:04:05.123456789z", true, 1795273445123ll},
        {"2026-11-21T15:04:05+05:30", true, 1795253645000ll},
        {"2024-02-29T23:59:59.999-08:00", true, 1709279999999ll},
        {"1969-12-31T23:59:59Z", true, -1000},
        {"0001-01-01T00:00:00Z", true, -62135596800000ll},
        {"9999-12-31T23:59:59Z", true, 253402300799000ll},
        {"2026-06-30T23:59:60Z", true, 1782864000000ll},
        {"2026-11-21T15:04:05.1Z", true, 1795273445100ll},
        {"2023-02-29T00:00:00Z", false, 0},
        {"2026-13-01T00:00:00Z", false, 0},
        {"2026-00-01T00:00:00Z", false, 0},
        {"2026-04-31T00:00:00Z", false, 0},
        {"2026-11-21T15:60:00Z", false, 0},
        {"2026-11-21T15:04:61Z", false, 0},
        {"2026-11-21T15:04:05+24:00", false, 0},
        {"2026-11-21T15:04:05+01:60", false, 0},
        {"2026-11-21T15:04:05+01", false, 0},
        {"2026-11-21", false, 0},
        {"26-11-21T15:04:05Z", false, 0},
        {"", false, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t ms = 0;
        bool ok = ingest__rfc3339_ms(cases[i].s, strlen(cases[i].s), &ms);
        if (ok != cases[i].ok || (ok && ms != cases[i].ms)) {
            print_error("%s: ok %d ms %lld\n", cases[i].s, ok, (long long)ms);
            fail();
        }
    }
}

static void test_unknown_counted(void **state)
{
    struct ingest__parser *p = *state;
    struct ingest__result res;
    assert_int_equal(
        parse(p,
              "<event seq=\"9\" lang=\"en\" sent=\"2026-11-21T15:04:05Z\">"
              "<meta><deep><deeper/></deep></meta>"
              "<match id=\"m\" region=\"eu\" x=\"1\">"
              "<weather sky=\"clear\"/>"
              "<status phase=\"halftime\" color=\"red\"/>"
              "<incident id=\"i\" var=\"1\"><note>x</note></incident>"
              "<score home=\"1\" away=\"0\"><by/></score>"
              "</match><!-- c --><?pi x?>text</event>",
              "s", &res),
        0);
    assert_int_equal(res.kind, INGEST__DOC_EVENT);
    /* meta, weather, note, by: a subtree counts once */
    assert_int_equal(res.unknown_elements, 4);
    /* lang, region, x, color, var; not sky (inside an unknown element) */
    assert_int_equal(res.unknown_attributes, 5);
    assert_int_equal(res.event->n_matches, 1);
    assert_int_equal(res.event->matches[0].n_incidents, 1);
    assert_string_equal(res.event->matches[0].phase, "halftime");
    ingest__result_release(&res);

    /* known names in the wrong place are unknown there */
    assert_int_equal(parse(p,
                           "<event seq=\"9\"><score home=\"x\"/>"
                           "<match id=\"m\"><match id=\"n\"/></match>"
                           "</event>",
                           "s", &res),
                     0);
    assert_int_equal(res.kind, INGEST__DOC_EVENT);
    assert_int_equal(res.unknown_elements, 2);
    assert_int_equal(res.event->n_matches, 1);
    ingest__result_release(&res);
}

/* Writes into @b an event with one match holding @pre, @n copies of
 * @open, @n of @close, and @post. */
struct repeat {
    const char *pre, *open, *close, *post;
};

static void build_repeat(struct actor_buf *b, const struct repeat *r,
                         unsigned n)
{
    actor_buf_reset(b);
    actor_buf_str(b, "<event seq=\"3\"><match id=\"m\">");
    actor_buf_str(b, r->pre);
    for (unsigned i = 0; i < n; i++) {
        actor_buf_str(b, r->open);
    }
    for (unsigned i = 0; i < n; i++) {
        actor_buf_str(b, r->close);
    }
    actor_buf_str(b, r->post);
    actor_buf_str(b, "</match></event>");
    assert_int_equal(b->err, 0);
}

/* Checks that @n copies pass and @n + 1 are rejected for @reason. */
static void check_limit(struct ingest__parser *p, const struct repeat *r,
                        unsigned n, enum ingest__reason reason)
{
    struct actor_buf b;
    actor_buf_init(&b);
    build_repeat(&b, r, n);
    event_unref(expect_event(p, b.data));
    build_repeat(&b, r, n + 1);
    expect_reject(p, b.data, "s", reason, 3);
    actor_buf_release(&b);
}

static void test_limits(void **state)
{
    struct ingest__parser *p = *state;
    char attrs[INGEST_ATTRS_MAX * 8];
    size_t at = 0;

    /* depth: event and match are two levels */
    check_limit(p, &(struct repeat){"", "<x>", "</x>", ""},
                INGEST_DEPTH_MAX - 2, INGEST__REASON_BAD_ELEMENT);
    /* values of up to INGEST_VALUE_MAX bytes */
    check_limit(p, &(struct repeat){"<status phase=\"", "p", "", "\"/>"},
                INGEST_VALUE_MAX, INGEST__REASON_BAD_ATTRIBUTE);
    /* attributes per element: <x a0="" a1="" ... /> */
    attrs[0] = '\0';
    for (unsigned i = 0; i < INGEST_ATTRS_MAX; i++) {
        at += (size_t)snprintf(attrs + at, sizeof(attrs) - at, " a%u=\"\"", i);
    }
    struct actor_buf b;
    actor_buf_init(&b);
    actor_buf_printf(&b,
                     "<event seq=\"3\"><match id=\"m\"><x%s/></match>"
                     "</event>",
                     attrs);
    event_unref(expect_event(p, b.data));
    actor_buf_reset(&b);
    actor_buf_printf(&b,
                     "<event seq=\"3\"><match id=\"m\"><x%s b=\"\"/>"
                     "</match></event>",
                     attrs);
    expect_reject(p, b.data, "s", INGEST__REASON_BAD_ATTRIBUTE, 3);
    actor_buf_release(&b);

    /* the document limit itself */
    struct ingest__limits lim = {.doc_max = 64};
    assert_null(ingest__parser_new(&lim)); /* value_max > doc_max */
    lim.value_max = 16;
    struct ingest__parser *small = ingest__parser_new(&lim);
    assert_non_null(small);
    expect_reject(small,
                  "<event seq=\"3\"><match id=\"m\"/><match id=\"n\"/>"
                  "<match id=\"o\"/></event>",
                  "s", INGEST__REASON_TOO_LARGE, 0);
    ingest__parser_free(small);
    lim = (struct ingest__limits){.doc_max = INGEST_DOC_MAX_LIMIT + 1};
    assert_null(ingest__parser_new(&lim));
}

static void test_truncated_head(void **state)
{
    struct ingest__parser *p = *state;
    /* heads of too_large documents: the seq is read when it can be */
    static const struct {
        const char *head;
        uint64_t seq;
    } cases[] = {
        {"<?xml version=\"1.0\"?><event seq=\"77\" sent=\"bad\">"
         "<match id=\"m\"><incident id=\"i\" player=\"cut her",
         77},
        {"<event sent=\"x\"><match", 0},
        {"<event seq=\"0\"><match", 0},
        {"<login source=\"a\"><x", 0},
        {"<even", 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct ingest__result res;
        struct ingest__doc doc = {.data = cases[i].head,
                                  .len = strlen(cases[i].head),
                                  .truncated = true};
        assert_int_equal(ingest__parse(p, &doc, &res), 0);
        assert_int_equal(res.kind, INGEST__DOC_REJECTED);
        assert_int_equal(res.reason, INGEST__REASON_TOO_LARGE);
        assert_int_equal(res.seq, cases[i].seq);
        ingest__result_release(&res);
    }
}

/* ---- hostile documents ------------------------------------------------- */

static const char billion_laughs[] =
    "<?xml version=\"1.0\"?>\n"
    "<!DOCTYPE lolz [\n"
    " <!ENTITY lol \"lol\">\n"
    " <!ENTITY lol1 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">\n"
    " <!ENTITY lol2 \"&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;"
    "&lol1;\">\n"
    " <!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;"
    "&lol2;\">\n"
    " <!ENTITY lol4 \"&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;"
    "&lol3;\">\n"
    " <!ENTITY lol5 \"&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;"
    "&lol4;\">\n"
    " <!ENTITY lol6 \"&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;"
    "&lol5;\">\n"
    " <!ENTITY lol7 \"&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;"
    "&lol6;\">\n"
    " <!ENTITY lol8 \"&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;"
    "&lol7;\">\n"
    " <!ENTITY lol9 \"&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;"
    "&lol8;\">\n"
    "]>\n"
    "<event seq=\"1\" source=\"&lol9;\"><match id=\"&lol9;\"/></event>";

/* Parses @xml (@len bytes) with the counting allocator and returns the
 * peak bytes the parse added over what was live before it. */
static size_t parse_peak(const char *xml, size_t len, enum ingest__reason want)
{
    struct ingest__result res;
    tmem_start();
    struct ingest__parser *p = ingest__parser_new(NULL);
    assert_non_null(p);
    tmem_peak_reset();
    size_t before = tmem.live;
    assert_int_equal(parse_with(p, xml, len, "s", &res), 0);
    assert_int_equal(res.kind, INGEST__DOC_REJECTED);
    assert_int_equal(res.reason, want);
    ingest__result_release(&res);
    size_t peak = tmem.peak - before;
    ingest__parser_free(p);
    assert_int_equal(tmem.live, 0);
    tmem_stop();
    return peak;
}

static void test_billion_laughs(void **state)
{
    (void)state;
    size_t len = sizeof(billion_laughs) - 1;
    size_t peak =
        parse_peak(billion_laughs, len, INGEST__REASON_NOT_WELL_FORMED);
    /* expat's buffer holds the document; nothing is expanded */
    assert_true(peak < len + (64u << 10));

    /* quadratic blowup: one large entity referenced many times */
    struct actor_buf b;
    actor_buf_init(&b);
    actor_buf_str(&b, "<!DOCTYPE q [<!ENTITY a \"");
    for (int i = 0; i < 50000; i++) {
        actor_buf_char(&b, 'a');
    }
    actor_buf_str(&b, "\">]><event seq=\"1\">");
    for (int i = 0; i < 10000; i++) {
        actor_buf_str(&b, "&a;");
    }
    actor_buf_str(&b, "</event>");
    peak = parse_peak(b.data, b.len, INGEST__REASON_NOT_WELL_FORMED);
    assert_true(peak < b.len + (64u << 10));
    actor_buf_release(&b);
}

static void test_deep_nesting(void **state)
{
    (void)state;
    /* about 1 MiB of open elements: expat would keep one tag each */
    struct actor_buf b;
    actor_buf_init(&b);
    actor_buf_str(&b, "<event seq=\"1\">");
    while (b.len < INGEST_DOC_MAX_DEFAULT - 16) {
        actor_buf_str(&b, "<a>");
    }
    size_t peak = parse_peak(b.data, b.len, INGEST__REASON_BAD_ELEMENT);
    assert_true(peak < b.len + (64u << 10));

    /* the same inside an ignored subtree */
    actor_buf_reset(&b);
    actor_buf_str(&b, "<event seq=\"1\"><unknown>");
    while (b.len < INGEST_DOC_MAX_DEFAULT - 16) {
        actor_buf_str(&b, "<a x='1'>");
    }
    peak = parse_peak(b.data, b.len, INGEST__REASON_BAD_ELEMENT);
    assert_true(peak < b.len + (64u << 10));

    /* many attributes on one element */
    actor_buf_reset(&b);
    actor_buf_str(&b, "<event seq=\"1\" ");
    for (unsigned i = 0; b.len < INGEST_DOC_MAX_DEFAULT - 16; i++) {
        actor_buf_printf(&b, "a%u='' ", i);
    }
    actor_buf_str(&b, "/>");
    peak = parse_peak(b.data, b.len, INGEST__REASON_BAD_ATTRIBUTE);
    /* expat reads all attributes before we see one: bounded by the
     * document, not by us */
    assert_true(peak < 16 * b.len);
    actor_buf_release(&b);
}

/* ---- memory ------------------------------------------------------------- */

static void test_event_refcount(void **state)
{
    (void)state;
    struct ingest__event_mem mem;

    tmem_start();
    assert_int_equal(ingest__event_alloc(&mem, 2, 3, 10, "<x/>", 4), 0);
    struct event *ev = mem.ev;
    assert_int_equal(ev->n_matches, 2);
    assert_ptr_equal(ev->matches, mem.matches);
    assert_int_equal(ev->raw_len, 4);
    assert_string_equal(ev->raw, "<x/>");
    assert_int_equal(tmem.live, ev->size);
    assert_true((uintptr_t)mem.incidents % _Alignof(struct event_incident) ==
                0);
    assert_true((char *)(mem.incidents + 3) <= mem.strings);
    assert_true(mem.strings + 10 <= ev->raw);

    assert_ptr_equal(event_ref(ev), ev);
    event_unref(ev);
    assert_int_equal(tmem.frees, 0);
    event_unref(ev);
    assert_int_equal(tmem.frees, 1);
    assert_int_equal(tmem.live, 0);
    event_unref(NULL);

    tmem.fail_at = tmem.allocs + 1;
    assert_int_equal(ingest__event_alloc(&mem, 1, 0, 1, "", 0), -ENOMEM);
    assert_int_equal(
        ingest__event_alloc(&mem, 0, 0, (size_t)UINT32_MAX + 1, "", 0), -E2BIG);
    tmem_stop();
}

/* The right answers to the documents the allocation tests parse. */
static void check_spec(const struct ingest__result *res)
{
    assert_int_equal(res->kind, INGEST__DOC_EVENT);
    check_spec_event(res->event, spec_example, strlen(spec_example));
}

static void check_not_utf8(const struct ingest__result *res)
{
    assert_int_equal(res->kind, INGEST__DOC_REJECTED);
    assert_int_equal(res->reason, INGEST__REASON_NOT_WELL_FORMED);
}

static void check_head(const struct ingest__result *res)
{
    assert_int_equal(res->kind, INGEST__DOC_REJECTED);
    assert_int_equal(res->reason, INGEST__REASON_TOO_LARGE);
    assert_int_equal(res->seq, 77);
}

/*
 * Parses @doc with the Nth allocation failing, for N = 1, 2, ... until a
 * parse needs no failure; every outcome must be -ENOMEM or what @check
 * wants, nothing may leak, and the parser must give the right answer once
 * memory is back. With @warm the parser has parsed once before the failing
 * parse, so reset paths fail instead of creation.
 */
static void fail_each(const struct ingest__doc *doc, bool warm, bool standalone,
                      void (*check)(const struct ingest__result *res))
{
    const struct ingest__limits lim = {.standalone = standalone};
    struct ingest__result res;
    for (uint64_t n = 1;; n++) {
        tmem_start();
        struct ingest__parser *p = NULL;
        if (warm) {
            p = ingest__parser_new(&lim);
            assert_non_null(p);
            assert_int_equal(ingest__parse(p, doc, &res), 0);
            ingest__result_release(&res);
        }
        tmem.fail_at = tmem.allocs + n;
        if (!warm) {
            p = ingest__parser_new(&lim);
            if (!p) {
                assert_int_equal(tmem.failed, 1);
                assert_int_equal(tmem.live, 0);
                tmem_stop();
                continue;
            }
        }
        int rc = ingest__parse(p, doc, &res);
        if (rc == 0) {
            check(&res);
            ingest__result_release(&res);
        } else {
            assert_int_equal(rc, -ENOMEM);
            assert_int_equal(res.kind, 0);
            assert_null(res.event);
        }
        bool done = tmem.failed == 0;
        tmem.fail_at = 0;
        assert_int_equal(ingest__parse(p, doc, &res), 0);
        check(&res);
        ingest__result_release(&res);
        ingest__parser_free(p);
        assert_int_equal(tmem.live, 0);
        tmem_stop();
        if (done) {
            assert_true(n > 1); /* the parse did allocate */
            return;
        }
    }
}

static void fail_each_way(const struct ingest__doc *doc,
                          void (*check)(const struct ingest__result *res))
{
    for (int i = 0; i < 4; i++) {
        fail_each(doc, i & 1, i & 2, check);
    }
}

static void test_alloc_failure(void **state)
{
    (void)state;
    struct ingest__doc doc = {.data = spec_example,
                              .len = strlen(spec_example),
                              .received_ms = 4242,
                              .source = "feed-eu-1"};
    fail_each_way(&doc, check_spec);

    /* under memory pressure the input stays UTF-8: a parse that goes
     * through never reads a document in the encoding it declares */
    static const char latin1[] =
        "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><event seq=\"1\">"
        "<match id=\"\xe9\"/></event>";
    doc = (struct ingest__doc){
        .data = latin1, .len = strlen(latin1), .source = "s"};
    fail_each_way(&doc, check_not_utf8);

    /* the head of a too_large document: out of memory is not "no seq"
     * (the fuzzer's find) */
    static const char head[] = "<event seq=\"77\"><match id=\"m\"><inc";
    doc = (struct ingest__doc){
        .data = head, .len = strlen(head), .truncated = true};
    fail_each_way(&doc, check_head);
}

static void test_memory_let_go(void **state)
{
    (void)state;
    struct actor_buf b;
    struct ingest__result res;
    actor_buf_init(&b);
    actor_buf_str(&b, "<event seq=\"1\"><match id=\"m\">");
    for (unsigned i = 0; b.len < (512u << 10); i++) {
        actor_buf_printf(&b, "<incident id=\"%u\" player=\"P. Layer\"/>", i);
    }
    actor_buf_str(&b, "</match></event>");

    tmem_start();
    struct ingest__parser *p = ingest__parser_new(NULL);
    assert_non_null(p);
    assert_int_equal(parse(p, spec_example, "s", &res), 0);
    ingest__result_release(&res);
    size_t small = tmem.live;

    assert_int_equal(parse_with(p, b.data, b.len, "s", &res), 0);
    assert_int_equal(res.kind, INGEST__DOC_EVENT);
    assert_true(res.event->matches[0].n_incidents > 10000);
    ingest__result_release(&res);
    /* the large document's buffers are gone (expat's parser is rebuilt
     * lazily), so less is held than after a small one */
    assert_true(tmem.live <= small);

    assert_int_equal(parse(p, spec_example, "s", &res), 0);
    assert_int_equal(res.kind, INGEST__DOC_EVENT);
    ingest__result_release(&res);
    ingest__parser_free(p);
    assert_int_equal(tmem.live, 0);
    tmem_stop();
    actor_buf_release(&b);
}

/* Documents that a stream of documents in one expat parser could read
 * differently from a lone parse, if the stream were not checked. */
static const char *const stream_traps[] = {
    "<ct/>  \r\n",
    "<ct/><ct/>",
    "<ct/>text",
    "<ct/><!-- c -->",
    "<ct/><?pi x?>",
    "<ct/>&#32;",
    "<ct/><![CDATA[ ]]>",
    "<ct/></sfp>",
    "<ct/></sfp><sfp>",
    "<a><b></a>",
    "<event seq=\"1\"><match id=\"m\"/>",
    "<ct",
    "<ct/",
    "<e a='1'",
    "<x>&lt;&#x10FFFF;</x>",
    "<x>&#xD800;</x>",
    "<x>\xc3</x>",
    "<x y='\xed\xa0\x80'/>",
    "<?xml version=\"1.0\"?><ct/>",
    "<ct/><?xml version=\"1.0\"?>",
    "<x><?xml version=\"1.0\"?></x>",
    "<x><!DOCTYPE x></x>",
    "<x:y/>",
    "<x xmlns='urn:a'/>",
    "<ct/>\n\n<event seq=\"2\"/>",
};

/* Parses @xml (@len bytes) with both parsers and checks the results are
 * the same to the letter. */
static void check_same(struct ingest__parser *stream,
                       struct ingest__parser *alone, const char *xml,
                       size_t len, const char *source)
{
    struct ingest__result r1, r2;
    struct actor_buf d1, d2;
    actor_buf_init(&d1);
    actor_buf_init(&d2);
    assert_int_equal(parse_with(stream, xml, len, source, &r1), 0);
    assert_int_equal(parse_with(alone, xml, len, source, &r2), 0);
    tdump_result(&d1, &r1);
    tdump_result(&d2, &r2);
    if (d1.len != d2.len || memcmp(d1.data, d2.data, d1.len) != 0) {
        print_error("%.*s\nstream:\n%s\nalone:\n%s\n", (int)len, xml, d1.data,
                    d2.data);
        fail();
    }
    ingest__result_release(&r1);
    ingest__result_release(&r2);
    actor_buf_release(&d1);
    actor_buf_release(&d2);
}

static void test_stream_matches_standalone(void **state)
{
    (void)state;
    const struct ingest__limits lim = {.standalone = true};
    struct ingest__parser *stream = ingest__parser_new(NULL);
    struct ingest__parser *alone = ingest__parser_new(&lim);
    assert_non_null(stream);
    assert_non_null(alone);

    /* the stream answers good documents itself, in one expat stream */
    struct ingest__parse_stats st;
    for (int i = 0; i < 3; i++) {
        check_same(stream, alone, spec_example, strlen(spec_example), "s");
    }
    ingest__parser_stats(stream, &st);
    assert_int_equal(st.streamed, 3);
    assert_int_equal(st.alone, 0);
    assert_int_equal(st.stream_opens, 1);
    check_same(stream, alone, "<ct/><ct/>", 10, "s");
    ingest__parser_stats(stream, &st);
    assert_int_equal(st.reparsed, 1);
    assert_int_equal(st.alone, 1);
    ingest__parser_stats(alone, &st);
    assert_int_equal(st.streamed, 0);
    assert_int_equal(st.alone, 4);

    /* twice round, so each document also follows every other one */
    for (int round = 0; round < 2; round++) {
        check_same(stream, alone, spec_example, strlen(spec_example), "s");
        for (size_t i = 0; i < sizeof(reject_cases) / sizeof(reject_cases[0]);
             i++) {
            check_same(stream, alone, reject_cases[i].xml,
                       strlen(reject_cases[i].xml), "s");
            check_same(stream, alone, reject_cases[i].xml,
                       strlen(reject_cases[i].xml), NULL);
        }
        for (size_t i = 0; i < sizeof(stream_traps) / sizeof(stream_traps[0]);
             i++) {
            check_same(stream, alone, stream_traps[i], strlen(stream_traps[i]),
                       "s");
            check_same(stream, alone, spec_example, strlen(spec_example), "s");
        }
        check_same(stream, alone, "<ct/>\0", 6, "s");
    }
    ingest__parser_free(stream);
    ingest__parser_free(alone);
}

static void test_reason_names(void **state)
{
    (void)state;
    assert_string_equal(ingest__reason_name(INGEST__REASON_NOT_WELL_FORMED),
                        "not_well_formed");
    assert_string_equal(ingest__reason_name(INGEST__REASON_TOO_LARGE),
                        "too_large");
    assert_string_equal(ingest__reason_name(INGEST__REASON_BAD_ATTRIBUTE),
                        "bad_attribute");
    assert_string_equal(ingest__reason_name(INGEST__REASON_BAD_ELEMENT),
                        "bad_element");
    assert_string_equal(ingest__reason_name(INGEST__REASON_MISSING_SEQ),
                        "missing_seq");
    assert_string_equal(ingest__reason_name(INGEST__REASON_UNAUTHENTICATED),
                        "unauthenticated");
    assert_string_equal(ingest__reason_name(INGEST__REASON_COUNT), "none");
    assert_true(ingest__source_is_valid("feed-eu-1.a_b:c", 15));
    assert_false(ingest__source_is_valid("feed/1", 6));
    assert_false(ingest__source_is_valid("", 0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_spec_example, setup, teardown),
        cmocka_unit_test_setup_teardown(test_login, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ct_and_unknown_root, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_rejections, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unauthenticated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_values, setup, teardown),
        cmocka_unit_test(test_rfc3339),
        cmocka_unit_test_setup_teardown(test_unknown_counted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated_head, setup, teardown),
        cmocka_unit_test(test_billion_laughs),
        cmocka_unit_test(test_deep_nesting),
        cmocka_unit_test(test_event_refcount),
        cmocka_unit_test(test_alloc_failure),
        cmocka_unit_test(test_memory_let_go),
        cmocka_unit_test(test_stream_matches_standalone),
        cmocka_unit_test(test_reason_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
