/* ingest/ingest_parse.c - turns one SFP/1 document into a parse result. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <expat.h>

#include "ingest/ingest_impl.h"

/*
 * DESIGN
 * One expat parser per ingest__parser, in one of two ways:
 *
 * - The stream (the fast path): a small document that starts with its root
 *   element is fed to a parser that has read "<sfp>" and runs on across
 *   documents, each an element of that synthetic root. No reset, no prolog,
 *   and attribute names stay interned: expat reads our feed about a third
 *   faster than with a reset per document. The answer must be what the
 *   document alone would give, so the stream is trusted only when the
 *   document's root closed and nothing but whitespace follows it (a second
 *   root, text, a comment or a bad token after it, or any expat error,
 *   sends the document to a lone parse, which words the answer). A
 *   rejection by our own handlers stands: expat had accepted every byte
 *   before it, as it would alone. Deferred reparsing is off, so handlers
 *   have seen the whole document when XML_Parse returns. The stream starts
 *   over after a rejection and every STREAM_RESET_BYTES (expat keeps every
 *   attribute name it has seen until a reset).
 * - Alone: the parser is reset (XML_ParserReset) and parses the document
 *   with isFinal set: documents with a prolog (XML declaration, comments,
 *   DOCTYPE), large ones, heads of too_large ones, and those the stream
 *   declined.
 *
 * A reset clears handlers, user data, the hash salt and the protection
 * settings, so each start sets them all again; setting the salt ourselves
 * also spares expat a getrandom() per reset.
 *
 * Handlers validate as they go and copy what they keep into scratch (the
 * attribute strings die with the callback): string bytes into one arena
 * addressed by offsets, matches and incidents into arrays. The first
 * violation stops expat and is the answer. A good event is then built in
 * one allocation of exactly the right size (ingest__event_alloc).
 *
 * DOCTYPE: not accepted. SFP/1 documents are a restricted XML, as in XMPP
 * and SOAP: a document with a document type declaration is rejected as
 * not_well_formed from the DOCTYPE's start handler, before expat has read
 * one declaration of its internal subset. No entity other than the five
 * predefined ones and character references can appear, so entity
 * expansion (billion laughs) and external entities cannot happen at all;
 * expat's own amplification limits are set as well, in case that ever
 * changes. Element depth, attributes per element and value length are
 * bounded (ingest__limits); together with the document limit they bound
 * the memory one parse takes.
 *
 * The input encoding is forced to UTF-8 (an encoding declaration cannot
 * change it), so every string handed on is valid UTF-8 without NULs.
 *
 * Memory held between documents is bounded too: after a document larger
 * than RETAIN_BYTES the expat parser is rebuilt (its buffer keeps the size
 * of the largest document) and large scratch is freed.
 *
 * Optional expat setters are declared weak: the library actually loaded
 * decides (a NULL address means it lacks them), never a version macro.
 */

/* Weak: present in expat >= 2.4 (billion laughs) and 2.7.2 (allocation
 * tracking; Debian backports it to 2.5.0). */
extern XML_Bool XML_SetBillionLaughsAttackProtectionMaximumAmplification(
    XML_Parser parser, float factor) __attribute__((weak));
extern XML_Bool XML_SetBillionLaughsAttackProtectionActivationThreshold(
    XML_Parser parser, unsigned long long bytes) __attribute__((weak));
extern XML_Bool XML_SetAllocTrackerMaximumAmplification(XML_Parser parser,
                                                        float factor)
    __attribute__((weak));
extern XML_Bool XML_SetAllocTrackerActivationThreshold(XML_Parser parser,
                                                       unsigned long long bytes)
    __attribute__((weak));
/* Weak: expat >= 2.6.0 (Debian backports it to 2.5.0). */
extern XML_Bool XML_SetReparseDeferralEnabled(XML_Parser parser,
                                              XML_Bool enabled)
    __attribute__((weak));

/* Scratch or an expat buffer grown past this is let go after the
 * document; larger documents are parsed alone, not in the stream. */
#define RETAIN_BYTES (64u << 10)
/* The stream's synthetic root, and the bytes after which it restarts
 * (expat keeps every attribute name it has seen until a reset). */
#define STREAM_OPEN        "<sfp>"
#define STREAM_RESET_BYTES (1u << 20)
/* Entity expansion, should DOCTYPEs ever pass; expat's allocations per
 * input byte, past a threshold no good document reaches. */
#define BL_AMPLIFICATION 10.0f
#define BL_THRESHOLD     (1ull << 20)
#define AT_AMPLIFICATION 100.0f
#define AT_THRESHOLD_MIN (16ull << 20)

enum root { ROOT_NONE, ROOT_LOGIN, ROOT_CT, ROOT_EVENT, ROOT_UNKNOWN };

/*
 * Scratch copies of a match and an incident. A kept string is a uint32_t
 * ref: 0 when absent, else its offset in the arena plus one (the arena
 * moves as it grows, so no pointers until the event is built).
 */
struct smatch {
    uint32_t id, sport, competition, home, away, start, phase; /* refs */
    uint64_t msgnr;
    bool has_msgnr;
    bool full;
    uint8_t parts;
    int8_t clock_running;
    int32_t clock_seconds;
    uint32_t score_home, score_away;
    uint32_t first_incident, n_incidents;
};

struct sincident {
    uint32_t id, type, player, assist; /* refs */
    int32_t minute, stoppage;
    int8_t team, confirmed;
    uint8_t action;
};

struct ingest__parser {
    XML_Parser xp;      /* NULL: build one before the next parse */
    bool streaming;     /* xp is in the stream, between two documents */
    bool wrapper_open;  /* expat has read STREAM_OPEN */
    size_t fed;         /* bytes fed to the stream since it opened */
    unsigned long salt; /* expat's hash salt, never 0 */
    struct ingest__limits lim;
    struct ingest__parse_stats stats;

    /* the document being parsed */
    const struct ingest__doc *doc;
    struct ingest__result *res;
    enum root root;
    uint32_t depth; /* open elements */
    uint32_t skip;  /* depth of the ignored subtree we are in, or 0 */
    bool failed;    /* stopped: res->reason, or nomem */
    bool nomem;
    bool in_match;         /* a match element is open (depth 2) */
    uint8_t seen;          /* its children so far, enum event_part bits */
    uint32_t source, sent; /* refs */
    int64_t sent_ms;
    uint64_t seq;
    bool root_closed; /* the root element has ended */
    bool anomaly;     /* the stream saw what a lone document would refuse */
    size_t base;      /* stream offset of the document's first byte */
    size_t root_end;  /* document offset after the root's end tag */

    /* scratch, kept between documents */
    struct smatch *matches;
    uint32_t n_matches, cap_matches;
    struct sincident *incidents;
    uint32_t n_incidents, cap_incidents;
    char *arena;
    size_t arena_len, arena_cap;
};

static const char *const reason_names[INGEST__REASON_COUNT] = {
    [INGEST__REASON_NONE] = "none",
    [INGEST__REASON_NOT_WELL_FORMED] = "not_well_formed",
    [INGEST__REASON_TOO_LARGE] = "too_large",
    [INGEST__REASON_BAD_ATTRIBUTE] = "bad_attribute",
    [INGEST__REASON_BAD_ELEMENT] = "bad_element",
    [INGEST__REASON_MISSING_SEQ] = "missing_seq",
    [INGEST__REASON_UNAUTHENTICATED] = "unauthenticated",
};

const char *ingest__reason_name(enum ingest__reason reason)
{
    if ((unsigned)reason >= INGEST__REASON_COUNT) {
        return "none";
    }
    return reason_names[reason];
}

/* ---- small readers ------------------------------------------------------ */

/* Reads 1 to 20 decimal digits, no sign, into *@out when <= @max. */
static bool read_uint(const char *s, size_t len, uint64_t max, uint64_t *out)
{
    if (len == 0 || len > 20) {
        return false;
    }
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned d = (unsigned)(unsigned char)s[i] - '0';
        if (d > 9 || v > (UINT64_MAX - d) / 10) {
            return false;
        }
        v = v * 10 + d;
    }
    if (v > max) {
        return false;
    }
    *out = v;
    return true;
}

/* Reads exactly @n digits at @s. */
static bool read_digits(const char *s, unsigned n, unsigned *out)
{
    unsigned v = 0;
    for (unsigned i = 0; i < n; i++) {
        unsigned d = (unsigned)(unsigned char)s[i] - '0';
        if (d > 9) {
            return false;
        }
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static unsigned days_in_month(unsigned y, unsigned m)
{
    static const unsigned char days[12] = {31, 28, 31, 30, 31, 30,
                                           31, 31, 30, 31, 30, 31};
    if (m == 2 && (y % 4 == 0 && (y % 100 != 0 || y % 400 == 0))) {
        return 29;
    }
    return days[m - 1];
}

bool ingest__rfc3339_ms(const char *s, size_t len, int64_t *ms)
{
    unsigned y, mo, d, h, mi, sec, frac = 0;
    if (len < 20 || !read_digits(s, 4, &y) || s[4] != '-' ||
        !read_digits(s + 5, 2, &mo) || s[7] != '-' ||
        !read_digits(s + 8, 2, &d) || (s[10] != 'T' && s[10] != 't') ||
        !read_digits(s + 11, 2, &h) || s[13] != ':' ||
        !read_digits(s + 14, 2, &mi) || s[16] != ':' ||
        !read_digits(s + 17, 2, &sec)) {
        return false;
    }
    if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 ||
        mi > 59 || sec > 60) {
        return false;
    }
    size_t i = 19;
    if (s[i] == '.') {
        size_t first = ++i;
        unsigned scale = 100;
        while (i < len && (unsigned)(unsigned char)s[i] - '0' <= 9) {
            frac += ((unsigned)s[i] - '0') * scale;
            scale /= 10;
            i++;
        }
        if (i == first) {
            return false;
        }
    }
    int offset = 0; /* minutes east of UTC */
    if (i < len && (s[i] == 'Z' || s[i] == 'z')) {
        i++;
    } else if (i < len && (s[i] == '+' || s[i] == '-')) {
        unsigned oh, om;
        if (len - i < 6 || !read_digits(s + i + 1, 2, &oh) || s[i + 3] != ':' ||
            !read_digits(s + i + 4, 2, &om) || oh > 23 || om > 59) {
            return false;
        }
        offset = (int)(oh * 60 + om) * (s[i] == '-' ? -1 : 1);
        i += 6;
    } else {
        return false;
    }
    if (i != len) {
        return false;
    }
    int64_t t = days_from_civil(y, mo, d) * 86400 + (int64_t)h * 3600 +
                (int64_t)mi * 60 + sec - (int64_t)offset * 60;
    *ms = t * 1000 + frac;
    return true;
}

bool ingest__source_is_valid(const char *s, size_t len)
{
    if (len == 0 || len > INGEST_SOURCE_MAX) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!((unsigned)((c | 0x20) - 'a') < 26u || (unsigned)(c - '0') < 10u ||
              c == '.' || c == '_' || c == ':' || c == '-')) {
            return false;
        }
    }
    return true;
}

/* Copies at most @cap - 1 bytes of @s, cut at a UTF-8 character boundary. */
static void copy_cut(char *dst, size_t cap, const char *s)
{
    size_t n = strlen(s);
    if (n >= cap) {
        n = cap - 1;
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80) {
            n--;
        }
    }
    memcpy(dst, s, n);
    dst[n] = '\0';
}

/* ---- failing --------------------------------------------------------------
 */

static void stop(struct ingest__parser *p)
{
    p->failed = true;
    XML_StopParser(p->xp, XML_FALSE);
}

__attribute__((format(printf, 3, 4))) static void
fail(struct ingest__parser *p, enum ingest__reason reason, const char *fmt, ...)
{
    if (p->failed) {
        return;
    }
    p->res->reason = reason;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->res->detail, sizeof(p->res->detail), fmt, ap);
    va_end(ap);
    /* Names quoted from the document may be cut mid-character: keep the
     * detail plain ASCII, safe in any log line or reply. */
    for (char *c = p->res->detail; *c; c++) {
        if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f) {
            *c = '?';
        }
    }
    stop(p);
}

static void fail_nomem(struct ingest__parser *p)
{
    if (!p->failed) {
        p->nomem = true;
        stop(p);
    }
}

/* ---- scratch --------------------------------------------------------------
 */

/* Grows an array of @size-byte entries to room for one more. */
static void *grow(struct ingest__parser *p, void *arr, uint32_t n,
                  uint32_t *cap, size_t size)
{
    if (n < *cap) {
        return arr;
    }
    uint32_t ncap = *cap ? *cap * 2 : 8;
    void *a = ingest__realloc(arr, (size_t)ncap * size);
    if (!a) {
        fail_nomem(p);
        return NULL;
    }
    *cap = ncap;
    return a;
}

/* Keeps @len bytes at @s (plus a NUL). Returns its ref; 0 when out of
 * memory (the parse is stopped). */
static uint32_t keep(struct ingest__parser *p, const char *s, size_t len)
{
    if (len + 1 > p->arena_cap - p->arena_len) {
        size_t cap = p->arena_cap ? p->arena_cap : 1024;
        while (cap - p->arena_len < len + 1) {
            cap *= 2;
        }
        char *a = ingest__realloc(p->arena, cap);
        if (!a) {
            fail_nomem(p);
            return 0;
        }
        p->arena = a;
        p->arena_cap = cap;
    }
    uint32_t ref = (uint32_t)p->arena_len + 1;
    memcpy(p->arena + p->arena_len, s, len);
    p->arena[p->arena_len + len] = '\0';
    p->arena_len += len + 1;
    return ref;
}

/* ---- attributes -----------------------------------------------------------
 */

struct attr {
    const char *v; /* NULL: absent */
    uint32_t len;
};

/* strcmp(a, b) == 0 for the short names of SFP/1, two bytes a step (a
 * byte after a non-NUL byte that matched is always there to read). */
static inline bool streq(const char *a, const char *b)
{
    for (;; a += 2, b += 2) {
        if (a[0] != b[0]) {
            return false;
        }
        if (a[0] == '\0') {
            return true;
        }
        if (a[1] != b[1]) {
            return false;
        }
        if (a[1] == '\0') {
            return true;
        }
    }
}

/*
 * Checks the attributes of element @elem against the limits and picks
 * those named in @names (at most 16) into @out, in the same order; with
 * @count, counts the others as unknown. Returns false when a limit is
 * broken (the parse is stopped).
 */
static bool pick(struct ingest__parser *p, const char *elem,
                 const XML_Char **atts, const char *const *names,
                 unsigned n_names, struct attr *out, bool count)
{
    for (unsigned i = 0; i < n_names; i++) {
        out[i].v = NULL;
        out[i].len = 0;
    }
    for (uint32_t a = 0; atts[2 * a]; a++) {
        const char *name = atts[2 * a];
        const char *value = atts[2 * a + 1];
        size_t len = strlen(value);
        if (a == p->lim.attrs_max) {
            fail(p, INGEST__REASON_BAD_ATTRIBUTE,
                 "%.32s: more than %u attributes", elem, p->lim.attrs_max);
            return false;
        }
        if (len > p->lim.value_max) {
            fail(p, INGEST__REASON_BAD_ATTRIBUTE,
                 "%.32s: %.32s longer than %u bytes", elem, name,
                 p->lim.value_max);
            return false;
        }
        unsigned i = 0;
        while (i < n_names &&
               (names[i][0] != name[0] || !streq(names[i], name))) {
            i++;
        }
        if (i < n_names) {
            out[i].v = value;
            out[i].len = (uint32_t)len;
        } else if (count) {
            p->res->unknown_attributes++;
        }
    }
    return true;
}

static uint32_t keep_attr(struct ingest__parser *p, const struct attr *a)
{
    return a->v ? keep(p, a->v, a->len) : 0;
}

/* Reads an optional non-negative integer attribute into *@out
 * (EVENT_ABSENT when absent). */
static bool attr_int(struct ingest__parser *p, const char *elem,
                     const char *name, const struct attr *a, int32_t max,
                     int32_t *out)
{
    uint64_t v;
    if (!a->v) {
        *out = EVENT_ABSENT;
        return true;
    }
    if (!read_uint(a->v, a->len, (uint64_t)max, &v)) {
        fail(p, INGEST__REASON_BAD_ATTRIBUTE,
             "%s: %s is not an integer from 0 to %d", elem, name, max);
        return false;
    }
    *out = (int32_t)v;
    return true;
}

/* Reads an optional 0|1 attribute into *@out (EVENT_ABSENT when absent). */
static bool attr_bit(struct ingest__parser *p, const char *elem,
                     const char *name, const struct attr *a, int8_t *out)
{
    if (!a->v) {
        *out = EVENT_ABSENT;
        return true;
    }
    if (a->len != 1 || (a->v[0] != '0' && a->v[0] != '1')) {
        fail(p, INGEST__REASON_BAD_ATTRIBUTE, "%s: %s is not 0 or 1", elem,
             name);
        return false;
    }
    *out = (int8_t)(a->v[0] - '0');
    return true;
}

/* An id: required, 1 to EVENT_ID_MAX bytes. */
static bool attr_id(struct ingest__parser *p, const char *elem,
                    const struct attr *a)
{
    if (!a->v) {
        fail(p, INGEST__REASON_BAD_ATTRIBUTE, "%s: id missing", elem);
        return false;
    }
    if (a->len == 0 || a->len > EVENT_ID_MAX) {
        fail(p, INGEST__REASON_BAD_ATTRIBUTE,
             "%s: id empty or longer than %u bytes", elem, EVENT_ID_MAX);
        return false;
    }
    return true;
}

/* ---- elements -------------------------------------------------------------
 */

static void ignore_subtree(struct ingest__parser *p, const char *name,
                           const XML_Char **atts)
{
    p->skip = p->depth;
    p->res->unknown_elements++;
    pick(p, name, atts, NULL, 0, NULL, false);
}

static void start_login(struct ingest__parser *p, const XML_Char **atts)
{
    static const char *const names[] = {"source", "token", "version"};
    struct attr a[3];
    if (!pick(p, "login", atts, names, 3, a, true)) {
        return;
    }
    if (!a[0].v || !ingest__source_is_valid(a[0].v, a[0].len)) {
        fail(p, INGEST__REASON_BAD_ATTRIBUTE,
             "login: source missing or not 1-%u bytes of [A-Za-z0-9._:-]",
             INGEST_SOURCE_MAX);
        return;
    }
    if (a[1].len > INGEST_TOKEN_MAX) {
        fail(p, INGEST__REASON_BAD_ATTRIBUTE,
             "login: token longer than %u bytes", INGEST_TOKEN_MAX);
        return;
    }
    if (a[2].len > INGEST_VERSION_MAX) {
        fail(p, INGEST__REASON_BAD_ATTRIBUTE,
             "login: version longer than %u bytes", INGEST_VERSION_MAX);
        return;
    }
    struct ingest__result *res = p->res;
    memcpy(res->login.source, a[0].v, a[0].len + 1);
    if (a[1].v) {
        memcpy(res->login.token, a[1].v, a[1].len + 1);
        res->login.has_token = true;
    }
    if (a[2].v) {
        memcpy(res->login.version, a[2].v, a[2].len + 1);
        res->login.has_version = true;
    }
}

static void start_event(struct ingest__parser *p, const XML_Char **atts)
{
    static const char *const names[] = {"seq", "sent", "source"};
    struct attr a[3];
    uint64_t seq;
    if (!pick(p, "event", atts, names, 3, a, true)) {
        return;
    }

    if (!a[0].v) {
        fail(p, INGEST__REASON_MISSING_SEQ, "event: seq missing");
        return;
    }
    if (!read_uint(a[0].v, a[0].len, INT64_MAX, &seq) || seq == 0) {
        fail(p, INGEST__REASON_BAD_ATTRIBUTE,
             "event: seq is not an integer from 1 to 2^63-1");
        return;
    }
    p->seq = seq;
    p->res->seq = seq;
    if (p->doc->truncated) {
        stop(p); /* a too_large head: the seq is all we wanted */
        return;
    }
    if (a[1].v) {
        if (!ingest__rfc3339_ms(a[1].v, a[1].len, &p->sent_ms)) {
            fail(p, INGEST__REASON_BAD_ATTRIBUTE,
                 "event: sent is not an RFC 3339 date-time");
            return;
        }
        p->sent = keep_attr(p, &a[1]);
    }
    const char *bound = p->doc->source;
    if (a[2].v) {
        if (!ingest__source_is_valid(a[2].v, a[2].len)) {
            fail(p, INGEST__REASON_BAD_ATTRIBUTE,
                 "event: source is not 1-%u bytes of [A-Za-z0-9._:-]",
                 INGEST_SOURCE_MAX);
            return;
        }
        if (bound && !streq(bound, a[2].v)) {
            /* Its seq counts in another source's sequence: reported
             * here, it would use up (and could skip far ahead of) the
             * bound source's. */
            p->res->seq = 0;
            fail(p, INGEST__REASON_BAD_ATTRIBUTE,
                 "event: source is not the connection's source");
            return;
        }
        memcpy(p->res->event_source, a[2].v, a[2].len + 1);
    }
    if (bound) {
        p->source = keep(p, bound, strlen(bound));
    } else if (a[2].v) {
        p->source = keep_attr(p, &a[2]);
    } else {
        fail(p, INGEST__REASON_UNAUTHENTICATED,
             "event: no login and no source attribute");
    }
}

static void start_root(struct ingest__parser *p, const XML_Char *name,
                       const XML_Char **atts)
{
    if (streq(name, "event")) {
        p->root = ROOT_EVENT;
        start_event(p, atts);
        return;
    }
    if (p->doc->truncated) {
        stop(p); /* not an event: a too_large head without a seq */
        return;
    }
    if (streq(name, "login")) {
        p->root = ROOT_LOGIN;
        start_login(p, atts);
    } else if (streq(name, "ct")) {
        p->root = ROOT_CT;
        pick(p, "ct", atts, NULL, 0, NULL, true);
    } else {
        p->root = ROOT_UNKNOWN;
        p->skip = 1;
        pick(p, name, atts, NULL, 0, NULL, false);
        copy_cut(p->res->root, sizeof(p->res->root), name);
    }
}

static void start_match(struct ingest__parser *p, const XML_Char **atts)
{
    static const char *const names[] = {"id", "msgnr", "feedtype"};
    struct attr a[3];
    if (!pick(p, "match", atts, names, 3, a, true) ||
        !attr_id(p, "match", &a[0])) {
        return;
    }
    struct smatch *m =
        grow(p, p->matches, p->n_matches, &p->cap_matches, sizeof(*m));
    if (!m) {
        return;
    }
    p->matches = m;
    m += p->n_matches;
    memset(m, 0, sizeof(*m));
    m->clock_seconds = EVENT_ABSENT;
    m->clock_running = EVENT_ABSENT;
    m->first_incident = p->n_incidents;
    if (a[1].v) {
        if (!read_uint(a[1].v, a[1].len, UINT64_MAX, &m->msgnr)) {
            fail(p, INGEST__REASON_BAD_ATTRIBUTE,
                 "match: msgnr is not a non-negative integer");
            return;
        }
        m->has_msgnr = true;
    }
    if (a[2].v) {
        if (streq(a[2].v, "full")) {
            m->full = true;
        } else if (!streq(a[2].v, "delta")) {
            fail(p, INGEST__REASON_BAD_ATTRIBUTE,
                 "match: feedtype is not full or delta");
            return;
        }
    }
    m->id = keep_attr(p, &a[0]);
    p->n_matches++;
    p->in_match = true;
    p->seen = 0;
}

static void start_fixture(struct ingest__parser *p, struct smatch *m,
                          const XML_Char **atts)
{
    static const char *const names[] = {"sport", "competition", "home", "away",
                                        "start"};
    struct attr a[5];
    if (!pick(p, "fixture", atts, names, 5, a, true)) {
        return;
    }
    m->sport = keep_attr(p, &a[0]);
    m->competition = keep_attr(p, &a[1]);
    m->home = keep_attr(p, &a[2]);
    m->away = keep_attr(p, &a[3]);
    m->start = keep_attr(p, &a[4]);
}

static void start_status(struct ingest__parser *p, struct smatch *m,
                         const XML_Char **atts)
{
    static const char *const names[] = {"phase"};
    struct attr a[1];
    if (!pick(p, "status", atts, names, 1, a, true)) {
        return;
    }
    m->phase = keep_attr(p, &a[0]);
}

/* "MM:SS": one or more digits of minutes (up to 6), two of seconds. */
static bool read_clock(const char *s, size_t len, int32_t *seconds)
{
    const char *colon = memchr(s, ':', len);
    if (!colon) {
        return false;
    }
    size_t mlen = (size_t)(colon - s);
    uint64_t min;
    unsigned sec;
    if (mlen > 6 || !read_uint(s, mlen, 999999, &min) || len - mlen - 1 != 2 ||
        !read_digits(colon + 1, 2, &sec) || sec > 59) {
        return false;
    }
    *seconds = (int32_t)(min * 60 + sec);
    return true;
}

static void start_clock(struct ingest__parser *p, struct smatch *m,
                        const XML_Char **atts)
{
    static const char *const names[] = {"time", "running"};
    struct attr a[2];
    if (!pick(p, "clock", atts, names, 2, a, true)) {
        return;
    }
    if (a[0].v && !read_clock(a[0].v, a[0].len, &m->clock_seconds)) {
        fail(p, INGEST__REASON_BAD_ATTRIBUTE, "clock: time is not MM:SS");
        return;
    }
    attr_bit(p, "clock", "running", &a[1], &m->clock_running);
}

static void start_score(struct ingest__parser *p, struct smatch *m,
                        const XML_Char **atts)
{
    static const char *const names[] = {"home", "away"};
    struct attr a[2];
    uint64_t home, away;
    if (!pick(p, "score", atts, names, 2, a, true)) {
        return;
    }
    if (!a[0].v || !a[1].v || !read_uint(a[0].v, a[0].len, UINT32_MAX, &home) ||
        !read_uint(a[1].v, a[1].len, UINT32_MAX, &away)) {
        fail(p, INGEST__REASON_BAD_ATTRIBUTE,
             "score: home and away must both be non-negative integers");
        return;
    }
    m->score_home = (uint32_t)home;
    m->score_away = (uint32_t)away;
}

static void start_incident(struct ingest__parser *p, struct smatch *m,
                           const XML_Char **atts)
{
    static const char *const names[] = {"id",     "type",      "team",
                                        "minute", "stoppage",  "player",
                                        "assist", "confirmed", "action"};
    struct attr a[9];
    if (!pick(p, "incident", atts, names, 9, a, true) ||
        !attr_id(p, "incident", &a[0])) {
        return;
    }
    struct sincident *in =
        grow(p, p->incidents, p->n_incidents, &p->cap_incidents, sizeof(*in));
    if (!in) {
        return;
    }
    p->incidents = in;
    in += p->n_incidents;
    memset(in, 0, sizeof(*in));
    if (a[2].v) {
        if (streq(a[2].v, "home")) {
            in->team = EVENT_TEAM_HOME;
        } else if (streq(a[2].v, "away")) {
            in->team = EVENT_TEAM_AWAY;
        } else {
            fail(p, INGEST__REASON_BAD_ATTRIBUTE,
                 "incident: team is not home or away");
            return;
        }
    }
    if (!attr_int(p, "incident", "minute", &a[3], INT32_MAX, &in->minute) ||
        !attr_int(p, "incident", "stoppage", &a[4], INT32_MAX, &in->stoppage) ||
        !attr_bit(p, "incident", "confirmed", &a[7], &in->confirmed)) {
        return;
    }
    in->action = EVENT_ACTION_INSERT;
    if (a[8].v) {
        if (streq(a[8].v, "update")) {
            in->action = EVENT_ACTION_UPDATE;
        } else if (streq(a[8].v, "delete")) {
            in->action = EVENT_ACTION_DELETE;
        } else if (!streq(a[8].v, "insert")) {
            fail(p, INGEST__REASON_BAD_ATTRIBUTE,
                 "incident: action is not insert, update or delete");
            return;
        }
    }
    in->id = keep_attr(p, &a[0]);
    in->type = keep_attr(p, &a[1]);
    in->player = keep_attr(p, &a[5]);
    in->assist = keep_attr(p, &a[6]);
    p->n_incidents++;
    m->n_incidents++;
}

/* The enum event_part bit of a match child's name; 0 for an incident,
 * -1 for anything else. */
static int child_part(const char *name)
{
    switch (name[0]) {
    case 'i':
        return streq(name, "incident") ? 0 : -1;
    case 'f':
        return streq(name, "fixture") ? EVENT_HAS_FIXTURE : -1;
    case 'c':
        return streq(name, "clock") ? EVENT_HAS_CLOCK : -1;
    case 's':
        return streq(name, "status")  ? EVENT_HAS_STATUS
               : streq(name, "score") ? EVENT_HAS_SCORE
                                      : -1;
    default:
        return -1;
    }
}

/* A child of a match: at most one of each but incident. */
static void start_match_child(struct ingest__parser *p, const XML_Char *name,
                              const XML_Char **atts)
{
    struct smatch *m = &p->matches[p->n_matches - 1];
    int part = child_part(name);
    if (part < 0) {
        ignore_subtree(p, name, atts);
        return;
    }
    if (part == 0) {
        start_incident(p, m, atts);
        return;
    }
    if (p->seen & part) {
        fail(p, INGEST__REASON_BAD_ELEMENT, "match: %s repeated", name);
        return;
    }
    p->seen |= (uint8_t)part;
    m->parts |= (uint8_t)part;
    switch (part) {
    case EVENT_HAS_FIXTURE:
        start_fixture(p, m, atts);
        break;
    case EVENT_HAS_STATUS:
        start_status(p, m, atts);
        break;
    case EVENT_HAS_CLOCK:
        start_clock(p, m, atts);
        break;
    default:
        start_score(p, m, atts);
        break;
    }
}

static void XMLCALL on_start(void *ud, const XML_Char *name,
                             const XML_Char **atts)
{
    struct ingest__parser *p = ud;
    if (p->failed) {
        return;
    }
    uint32_t depth = ++p->depth;
    if (depth == 1 && p->root_closed) {
        p->anomaly = true; /* a second root: only the stream lets it in */
        stop(p);
        return;
    }
    if (depth > p->lim.depth_max) {
        fail(p, INGEST__REASON_BAD_ELEMENT, "elements nested deeper than %u",
             p->lim.depth_max);
        return;
    }
    if (p->skip) {
        pick(p, name, atts, NULL, 0, NULL, false); /* limits still hold */
    } else if (depth == 1) {
        start_root(p, name, atts);
    } else if (depth == 2 && p->root == ROOT_EVENT && streq(name, "match")) {
        start_match(p, atts);
    } else if (depth == 3 && p->in_match) {
        start_match_child(p, name, atts);
    } else {
        ignore_subtree(p, name, atts);
    }
}

static void XMLCALL on_end(void *ud, const XML_Char *name)
{
    struct ingest__parser *p = ud;
    (void)name;
    if (p->failed) {
        return;
    }
    if (p->skip == p->depth) {
        p->skip = 0;
    } else if (p->depth == 2) {
        p->in_match = false;
    }
    if (--p->depth == 0) {
        /* Index and count span the end tag (an empty element's count is
         * 0 with the index after its tag). */
        p->root_closed = true;
        p->root_end = (size_t)(XML_GetCurrentByteIndex(p->xp) +
                               XML_GetCurrentByteCount(p->xp)) -
                      p->base;
    }
}

static void XMLCALL on_wrapper(void *ud, const XML_Char *name,
                               const XML_Char **atts)
{
    struct ingest__parser *p = ud;
    (void)name;
    (void)atts;
    p->wrapper_open = true;
}

static void XMLCALL on_doctype(void *ud, const XML_Char *name,
                               const XML_Char *sysid, const XML_Char *pubid,
                               int has_internal_subset)
{
    struct ingest__parser *p = ud;
    (void)name;
    (void)sysid;
    (void)pubid;
    (void)has_internal_subset;
    fail(p, INGEST__REASON_NOT_WELL_FORMED, "DOCTYPE not accepted");
}

/* ---- the parser object ----------------------------------------------------
 */

static void *XMLCALL mm_malloc(size_t size)
{
    return ingest__malloc(size);
}

static void *XMLCALL mm_realloc(void *ptr, size_t size)
{
    return ingest__realloc(ptr, size);
}

static void XMLCALL mm_free(void *ptr)
{
    ingest__free(ptr);
}

static const XML_Memory_Handling_Suite mm_suite = {
    .malloc_fcn = mm_malloc,
    .realloc_fcn = mm_realloc,
    .free_fcn = mm_free,
};

static unsigned long new_salt(void)
{
    unsigned long salt = 0;
    if (getrandom(&salt, sizeof(salt), GRND_NONBLOCK) != sizeof(salt)) {
        /* No entropy yet (early boot): the clock is a weak but varying
         * salt; hash flooding then needs to guess it. */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        salt =
            (unsigned long)ts.tv_nsec * 2654435761ul ^ (unsigned long)ts.tv_sec;
    }
    return salt ? salt : 1;
}

struct ingest__parser *ingest__parser_new(const struct ingest__limits *lim)
{
    struct ingest__limits l = lim ? *lim : (struct ingest__limits){0};
    if (l.doc_max == 0) {
        l.doc_max = INGEST_DOC_MAX_DEFAULT;
    }
    if (l.depth_max == 0) {
        l.depth_max = INGEST_DEPTH_MAX;
    }
    if (l.attrs_max == 0) {
        l.attrs_max = INGEST_ATTRS_MAX;
    }
    if (l.value_max == 0) {
        l.value_max = INGEST_VALUE_MAX;
    }
    if (l.doc_max > INGEST_DOC_MAX_LIMIT || l.attrs_max > 1024 ||
        l.depth_max > 1024 || l.value_max > l.doc_max) {
        return NULL;
    }
    struct ingest__parser *p = ingest__malloc(sizeof(*p));
    if (!p) {
        return NULL;
    }
    memset(p, 0, sizeof(*p));
    p->lim = l;
    p->salt = new_salt();
    return p; /* expat's parser is made by the first parse */
}

static void drop_scratch(struct ingest__parser *p)
{
    ingest__free(p->matches);
    ingest__free(p->incidents);
    ingest__free(p->arena);
    p->matches = NULL;
    p->incidents = NULL;
    p->arena = NULL;
    p->cap_matches = 0;
    p->cap_incidents = 0;
    p->arena_cap = 0;
}

void ingest__parser_free(struct ingest__parser *p)
{
    if (!p) {
        return;
    }
    if (p->xp) {
        XML_ParserFree(p->xp);
    }
    drop_scratch(p);
    ingest__free(p);
}

static void drop_xp(struct ingest__parser *p)
{
    if (p->xp) {
        XML_ParserFree(p->xp);
        p->xp = NULL;
    }
    p->streaming = false;
}

/* Readies expat for a new document or stream: a reset (or a new parser)
 * and every setting a reset clears, but no element handlers. Returns 0 or
 * -ENOMEM. */
static int fresh(struct ingest__parser *p)
{
    p->streaming = false;
    if (p->xp && !XML_ParserReset(p->xp, NULL)) {
        drop_xp(p);
    }
    if (!p->xp) {
        p->xp = XML_ParserCreate_MM(NULL, &mm_suite, NULL);
        if (!p->xp) {
            return -ENOMEM;
        }
    }
    XML_Parser xp = p->xp;
    /* Given to reset or create, the name is copied without a check, and
     * a failed copy would let the document's declaration choose. */
    if (XML_SetEncoding(xp, "UTF-8") != XML_STATUS_OK) {
        return -ENOMEM;
    }
    XML_SetHashSalt(xp, p->salt);
    XML_SetUserData(xp, p);
    XML_SetStartDoctypeDeclHandler(xp, on_doctype);
    if (XML_SetBillionLaughsAttackProtectionMaximumAmplification) {
        XML_SetBillionLaughsAttackProtectionMaximumAmplification(
            xp, BL_AMPLIFICATION);
        XML_SetBillionLaughsAttackProtectionActivationThreshold(xp,
                                                                BL_THRESHOLD);
    }
    if (XML_SetAllocTrackerMaximumAmplification) {
        unsigned long long at = 8ull * p->lim.doc_max;
        XML_SetAllocTrackerMaximumAmplification(xp, AT_AMPLIFICATION);
        XML_SetAllocTrackerActivationThreshold(
            xp, at > AT_THRESHOLD_MIN ? at : AT_THRESHOLD_MIN);
    }
    return 0;
}

/*
 * Starts a stream: expat reads STREAM_OPEN, and every document after it is
 * an element of its content. Deferred reparsing is off: handlers must have
 * seen a whole document when XML_Parse returns. Returns 1 when the stream
 * is open, 0 when expat would not open it (the caller parses alone), or
 * -ENOMEM.
 */
static int open_stream(struct ingest__parser *p)
{
    int rc = fresh(p);
    if (rc < 0) {
        return rc;
    }
    if (XML_SetReparseDeferralEnabled) {
        XML_SetReparseDeferralEnabled(p->xp, XML_FALSE);
    }
    p->wrapper_open = false;
    XML_SetStartElementHandler(p->xp, on_wrapper);
    if (XML_Parse(p->xp, STREAM_OPEN, sizeof(STREAM_OPEN) - 1, 0) !=
        XML_STATUS_OK) {
        drop_xp(p); /* out of memory is all that can fail here */
        return -ENOMEM;
    }
    if (!p->wrapper_open) {
        return 0;
    }
    XML_SetElementHandler(p->xp, on_start, on_end);
    p->fed = sizeof(STREAM_OPEN) - 1;
    p->streaming = true;
    p->stats.stream_opens++;
    return 1;
}

/* True when @doc may go through the stream: one element first, small. */
static bool stream_fits(const struct ingest__parser *p,
                        const struct ingest__doc *doc)
{
    return !p->lim.standalone && !doc->truncated && doc->len >= 2 &&
           doc->len <= RETAIN_BYTES && doc->data[0] == '<' &&
           ingest__is_name_start((unsigned char)doc->data[1]);
}

static bool is_all_space(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (s[i] != ' ' && s[i] != '\n' && s[i] != '\r' && s[i] != '\t') {
            return false;
        }
    }
    return true;
}

/*
 * Parses p->doc in the stream. Returns 1 when *@st and the result stand
 * as a lone parse would give them, 0 when the document must be parsed
 * alone for the answer (it ended oddly, or expat found it bad: the lone
 * parse words the error), or -ENOMEM.
 */
static int parse_in_stream(struct ingest__parser *p, enum XML_Status *st)
{
    const struct ingest__doc *doc = p->doc;
    if (!p->streaming || p->fed > STREAM_RESET_BYTES) {
        int rc = open_stream(p);
        if (rc <= 0) {
            return rc;
        }
    }
    p->base = p->fed;
    *st = XML_Parse(p->xp, doc->data, (int)doc->len, 0);
    p->fed += doc->len;
    if (*st != XML_STATUS_OK) {
        p->streaming = false; /* stopped or broken: reopen for the next */
        if (p->nomem) {
            return -ENOMEM;
        }
        if (XML_GetErrorCode(p->xp) == XML_ERROR_NO_MEMORY) {
            drop_xp(p);
            return -ENOMEM;
        }
        /* Our own verdict on content stands: expat had accepted every
         * byte before it, as it would alone. */
        return p->failed && !p->anomaly ? 1 : 0;
    }
    if (!p->root_closed ||
        !is_all_space(doc->data + p->root_end, doc->len - p->root_end)) {
        p->streaming = false;
        return 0;
    }
    return 1;
}

/* Builds the event of a good <event> document. Returns 0 or -ENOMEM. */
static int build_event(struct ingest__parser *p)
{
    struct ingest__event_mem mem;
    const struct ingest__doc *doc = p->doc;
    int rc = ingest__event_alloc(&mem, p->n_matches, p->n_incidents,
                                 p->arena_len, doc->data, doc->len);
    if (rc == -E2BIG) {
        /* Only a huge limit lets a document need more than 4 GiB. */
        p->res->kind = INGEST__DOC_REJECTED;
        p->res->reason = INGEST__REASON_TOO_LARGE;
        snprintf(p->res->detail, sizeof(p->res->detail),
                 "event too large to hold");
        return 0;
    }
    if (rc < 0) {
        return rc;
    }
    char *s = mem.strings;
    memcpy(s, p->arena, p->arena_len);
#define STR(ref) ((ref) ? s + (ref)-1 : NULL)
    struct event *ev = mem.ev;
    ev->source = STR(p->source);
    ev->seq = p->seq;
    ev->sent = STR(p->sent);
    ev->sent_ms = p->sent ? p->sent_ms : EVENT_ABSENT;
    ev->received_ms = doc->received_ms;
    for (uint32_t i = 0; i < p->n_incidents; i++) {
        const struct sincident *si = &p->incidents[i];
        struct event_incident *di = &mem.incidents[i];
        di->id = STR(si->id);
        di->type = STR(si->type);
        di->player = STR(si->player);
        di->assist = STR(si->assist);
        di->minute = si->minute;
        di->stoppage = si->stoppage;
        di->team = si->team;
        di->confirmed = si->confirmed;
        di->action = si->action;
    }
    for (uint32_t i = 0; i < p->n_matches; i++) {
        const struct smatch *sm = &p->matches[i];
        struct event_match *dm = &mem.matches[i];
        dm->id = STR(sm->id);
        dm->msgnr = sm->msgnr;
        dm->has_msgnr = sm->has_msgnr;
        dm->full = sm->full;
        dm->parts = sm->parts;
        dm->fixture.sport = STR(sm->sport);
        dm->fixture.competition = STR(sm->competition);
        dm->fixture.home = STR(sm->home);
        dm->fixture.away = STR(sm->away);
        dm->fixture.start = STR(sm->start);
        dm->phase = STR(sm->phase);
        dm->clock_seconds = sm->clock_seconds;
        dm->clock_running = sm->clock_running;
        dm->score_home = sm->score_home;
        dm->score_away = sm->score_away;
        dm->incidents =
            sm->n_incidents ? mem.incidents + sm->first_incident : NULL;
        dm->n_incidents = sm->n_incidents;
    }
#undef STR
    p->res->event = ev;
    return 0;
}

/* Sets up the per-document state. */
static void begin(struct ingest__parser *p, const struct ingest__doc *doc,
                  struct ingest__result *res)
{
    memset(res, 0, sizeof(*res));
    p->doc = doc;
    p->res = res;
    p->root = ROOT_NONE;
    p->depth = 0;
    p->skip = 0;
    p->failed = false;
    p->nomem = false;
    p->in_match = false;
    p->seen = 0;
    p->source = 0;
    p->sent = 0;
    p->sent_ms = EVENT_ABSENT;
    p->seq = 0;
    p->n_matches = 0;
    p->n_incidents = 0;
    p->arena_len = 0;
    p->root_closed = false;
    p->anomaly = false;
    p->base = 0;
    p->root_end = 0;
}

/* Lets go of memory a large document made us take. */
static void trim(struct ingest__parser *p, size_t doc_len)
{
    size_t scratch = p->arena_cap +
                     (size_t)p->cap_matches * sizeof(struct smatch) +
                     (size_t)p->cap_incidents * sizeof(struct sincident);
    if (scratch > RETAIN_BYTES) {
        drop_scratch(p);
    }
    if (doc_len > RETAIN_BYTES) {
        drop_xp(p);
    }
}

/* Sets the result from the parse's outcome. Returns 0 or -ENOMEM. */
static int finish(struct ingest__parser *p, enum XML_Status st)
{
    struct ingest__result *res = p->res;
    const struct ingest__doc *doc = p->doc;

    if (p->nomem) {
        return -ENOMEM;
    }
    enum XML_Error err = st == XML_STATUS_OK || p->failed
                             ? XML_ERROR_NONE
                             : XML_GetErrorCode(p->xp);
    if (err == XML_ERROR_NO_MEMORY) {
        drop_xp(p); /* rebuilt by the next parse */
        return -ENOMEM;
    }
    if (doc->truncated) {
        res->kind = INGEST__DOC_REJECTED;
        res->reason = INGEST__REASON_TOO_LARGE;
        snprintf(res->detail, sizeof(res->detail),
                 "document larger than %zu bytes", p->lim.doc_max);
        return 0;
    }
    if (err != XML_ERROR_NONE) {
        res->reason = INGEST__REASON_NOT_WELL_FORMED;
        snprintf(res->detail, sizeof(res->detail), "line %lu col %lu: %s",
                 (unsigned long)XML_GetCurrentLineNumber(p->xp),
                 (unsigned long)XML_GetCurrentColumnNumber(p->xp) + 1,
                 XML_ErrorString(err));
    }
    if (res->reason != INGEST__REASON_NONE) {
        res->kind = INGEST__DOC_REJECTED;
        res->was_login = p->root == ROOT_LOGIN;
        return 0;
    }
    switch (p->root) {
    case ROOT_LOGIN:
        res->kind = INGEST__DOC_LOGIN;
        return 0;
    case ROOT_CT:
        res->kind = INGEST__DOC_CT;
        return 0;
    case ROOT_EVENT:
        res->kind = INGEST__DOC_EVENT;
        return build_event(p); /* may turn it into a rejection */
    case ROOT_UNKNOWN:
        res->kind = INGEST__DOC_UNKNOWN;
        return 0;
    default:
        /* expat accepted a document without a root element: impossible. */
        res->kind = INGEST__DOC_REJECTED;
        res->reason = INGEST__REASON_NOT_WELL_FORMED;
        snprintf(res->detail, sizeof(res->detail), "no root element");
        return 0;
    }
}

int ingest__parse(struct ingest__parser *p, const struct ingest__doc *doc,
                  struct ingest__result *res)
{
    enum XML_Status st = XML_STATUS_ERROR;
    int rc = 0;

    begin(p, doc, res);
    if (doc->len > p->lim.doc_max) {
        res->kind = INGEST__DOC_REJECTED;
        res->reason = INGEST__REASON_TOO_LARGE;
        snprintf(res->detail, sizeof(res->detail),
                 "document larger than %zu bytes", p->lim.doc_max);
        return 0;
    }
    if (stream_fits(p, doc)) {
        rc = parse_in_stream(p, &st);
        if (rc < 0) {
            goto out;
        }
        if (rc == 0) {
            begin(p, doc, res); /* again, alone */
            p->stats.reparsed++;
        } else {
            p->stats.streamed++;
        }
    }
    if (rc == 0) {
        rc = fresh(p);
        if (rc < 0) {
            goto out;
        }
        XML_SetElementHandler(p->xp, on_start, on_end);
        st = XML_Parse(p->xp, doc->data, (int)doc->len, 1);
        p->stats.alone++;
    }
    rc = finish(p, st);
    trim(p, doc->len);
out:
    if (rc < 0) {
        ingest__result_release(res);
    }
    return rc;
}

void ingest__parser_stats(const struct ingest__parser *p,
                          struct ingest__parse_stats *out)
{
    *out = p->stats;
}

void ingest__result_release(struct ingest__result *res)
{
    event_unref(res->event);
    memset(res, 0, sizeof(*res));
}
