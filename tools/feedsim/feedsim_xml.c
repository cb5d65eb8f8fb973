/* tools/feedsim/feedsim_xml.c - writes SFP/1 documents and frames the
 * server's replies. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tools/feedsim/feedsim.h"

/* ---- writing ------------------------------------------------------------ */

void feedsim_xml_escape(struct actor_buf *b, const char *s, size_t len)
{
    size_t run = 0; /* bytes from s + run_start copied as they are */
    size_t run_start = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *ref;
        switch (c) {
        case '&':
            ref = "&amp;";
            break;
        case '<':
            ref = "&lt;";
            break;
        case '>':
            ref = "&gt;";
            break;
        case '"':
            ref = "&quot;";
            break;
        case '\'':
            ref = "&apos;";
            break;
        /* Literal TAB, LF and CR in an attribute become spaces when
         * parsed; references keep them. */
        case '\t':
            ref = "&#9;";
            break;
        case '\n':
            ref = "&#10;";
            break;
        case '\r':
            ref = "&#13;";
            break;
        default:
            ref = c < 0x20 ? "\xef\xbf\xbd" : NULL;
        }
        if (!ref) {
            run++;
            continue;
        }
        actor_buf_add(b, s + run_start, run);
        actor_buf_str(b, ref);
        run = 0;
        run_start = i + 1;
    }
    actor_buf_add(b, s + run_start, run);
}

void feedsim_xml_attr(struct actor_buf *b, const char *name, const char *value)
{
    if (!value) {
        return;
    }
    actor_buf_char(b, ' ');
    actor_buf_str(b, name);
    actor_buf_str(b, "=\"");
    feedsim_xml_escape(b, value, strlen(value));
    actor_buf_char(b, '"');
}

static void attr_int(struct actor_buf *b, const char *name, long long value)
{
    if (value != EVENT_ABSENT) {
        actor_buf_printf(b, " %s=\"%lld\"", name, value);
    }
}

static const char *team_name(int team)
{
    switch (team) {
    case EVENT_TEAM_HOME:
        return "home";
    case EVENT_TEAM_AWAY:
        return "away";
    default:
        return NULL;
    }
}

static void write_incident(struct actor_buf *b, const struct event_incident *i)
{
    actor_buf_str(b, "<incident");
    feedsim_xml_attr(b, "id", i->id);
    if (i->action == EVENT_ACTION_UPDATE) {
        actor_buf_str(b, " action=\"update\"");
    } else if (i->action == EVENT_ACTION_DELETE) {
        actor_buf_str(b, " action=\"delete\"");
    }
    feedsim_xml_attr(b, "type", i->type);
    feedsim_xml_attr(b, "team", team_name(i->team));
    attr_int(b, "minute", i->minute);
    attr_int(b, "stoppage", i->stoppage);
    feedsim_xml_attr(b, "player", i->player);
    feedsim_xml_attr(b, "assist", i->assist);
    attr_int(b, "confirmed", i->confirmed);
    actor_buf_str(b, "/>");
}

void feedsim_xml_match(struct actor_buf *b, const struct event_match *m)
{
    actor_buf_str(b, "<match");
    feedsim_xml_attr(b, "id", m->id);
    if (m->has_msgnr) {
        actor_buf_printf(b, " msgnr=\"%llu\"", (unsigned long long)m->msgnr);
    }
    actor_buf_str(b, m->full ? " feedtype=\"full\">" : " feedtype=\"delta\">");
    if (m->parts & EVENT_HAS_FIXTURE) {
        actor_buf_str(b, "<fixture");
        feedsim_xml_attr(b, "sport", m->fixture.sport);
        feedsim_xml_attr(b, "competition", m->fixture.competition);
        feedsim_xml_attr(b, "home", m->fixture.home);
        feedsim_xml_attr(b, "away", m->fixture.away);
        feedsim_xml_attr(b, "start", m->fixture.start);
        actor_buf_str(b, "/>");
    }
    if (m->parts & EVENT_HAS_STATUS) {
        actor_buf_str(b, "<status");
        feedsim_xml_attr(b, "phase", m->phase);
        actor_buf_str(b, "/>");
    }
    if (m->parts & EVENT_HAS_CLOCK) {
        actor_buf_str(b, "<clock");
        if (m->clock_seconds != EVENT_ABSENT) {
            actor_buf_printf(b, " time=\"%02d:%02d\"", m->clock_seconds / 60,
                             m->clock_seconds % 60);
        }
        attr_int(b, "running", m->clock_running);
        actor_buf_str(b, "/>");
    }
    if (m->parts & EVENT_HAS_SCORE) {
        actor_buf_printf(b, "<score home=\"%u\" away=\"%u\"/>", m->score_home,
                         m->score_away);
    }
    for (uint32_t i = 0; i < m->n_incidents; i++) {
        write_incident(b, &m->incidents[i]);
    }
    actor_buf_str(b, "</match>");
}

void feedsim_xml_event_open(struct actor_buf *b, uint64_t seq,
                            const char *source, const char *sent)
{
    actor_buf_printf(b, "<event seq=\"%llu\"", (unsigned long long)seq);
    feedsim_xml_attr(b, "source", source);
    feedsim_xml_attr(b, "sent", sent);
    actor_buf_char(b, '>');
}

void feedsim_xml_event_close(struct actor_buf *b)
{
    actor_buf_str(b, "</event>\r\n");
}

void feedsim_xml_login(struct actor_buf *b, const char *source,
                       const char *token)
{
    actor_buf_str(b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n<login");
    feedsim_xml_attr(b, "source", source);
    feedsim_xml_attr(b, "token", token);
    actor_buf_str(b, " version=\"1\"/>\r\n");
}

void feedsim_rfc3339(char out[32], int64_t ms)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, 32 - n, ".%03dZ", (int)(ms % 1000));
}

/* ---- reading ------------------------------------------------------------ */

void feedsim_scan_init(struct feedsim_scan *s)
{
    actor_buf_init(&s->buf);
    s->off = 0;
}

void feedsim_scan_reset(struct feedsim_scan *s)
{
    actor_buf_reset(&s->buf);
    s->off = 0;
}

void feedsim_scan_release(struct feedsim_scan *s)
{
    actor_buf_release(&s->buf);
    s->off = 0;
}

int feedsim_scan_push(struct feedsim_scan *s, const void *data, size_t len)
{
    if (s->off > 0 && s->off == s->buf.len) {
        actor_buf_reset(&s->buf);
        s->off = 0;
    } else if (s->off >= 4096) {
        memmove(s->buf.data, s->buf.data + s->off, s->buf.len - s->off);
        s->buf.len -= s->off;
        s->off = 0;
    }
    actor_buf_add(&s->buf, data, len);
    return s->buf.err;
}

/* What scanning a piece found. */
enum scan_rc { SCAN_OK, SCAN_MORE, SCAN_BAD };

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool is_name_char(char c)
{
    return !is_space(c) && c != '=' && c != '/' && c != '>' && c != '<' &&
           c != '"' && c != '\'';
}

/* Finds @needle in [p, end); sets *@after past it. */
static enum scan_rc skip_past(const char *p, const char *end,
                              const char *needle, const char **after)
{
    size_t n = strlen(needle);
    for (; (size_t)(end - p) >= n; p++) {
        if (memcmp(p, needle, n) == 0) {
            *after = p + n;
            return SCAN_OK;
        }
    }
    return SCAN_MORE;
}

/* Decodes the five predefined entities and character references of an
 * attribute value into @out (truncated to @cap - 1 bytes, NUL-ended). */
static enum scan_rc decode_value(const char *v, size_t len, char *out,
                                 size_t cap)
{
    static const struct {
        const char *name;
        char c;
    } ents[] = {
        {"lt", '<'}, {"gt", '>'}, {"amp", '&'}, {"quot", '"'}, {"apos", '\''}};
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        char c = v[i];
        char utf8[4];
        size_t n = 1;
        utf8[0] = c;
        if (c == '&') {
            const char *semi = memchr(v + i, ';', len - i);
            if (!semi) {
                return SCAN_BAD;
            }
            size_t elen = (size_t)(semi - (v + i)) - 1;
            const char *e = v + i + 1;
            n = 0;
            for (size_t k = 0; k < sizeof(ents) / sizeof(ents[0]); k++) {
                if (strlen(ents[k].name) == elen &&
                    memcmp(e, ents[k].name, elen) == 0) {
                    utf8[0] = ents[k].c;
                    n = 1;
                }
            }
            if (n == 0 && elen >= 2 && e[0] == '#') {
                char num[16];
                if (elen - 1 >= sizeof(num)) {
                    return SCAN_BAD;
                }
                memcpy(num, e + 1, elen - 1);
                num[elen - 1] = '\0';
                char *stop;
                unsigned long cp = num[0] == 'x' ? strtoul(num + 1, &stop, 16)
                                                 : strtoul(num, &stop, 10);
                if (*stop || stop == num || cp == 0 || cp > 0x10ffff) {
                    return SCAN_BAD;
                }
                if (cp < 0x80) {
                    utf8[0] = (char)cp;
                    n = 1;
                } else if (cp < 0x800) {
                    utf8[0] = (char)(0xc0 | (cp >> 6));
                    utf8[1] = (char)(0x80 | (cp & 0x3f));
                    n = 2;
                } else if (cp < 0x10000) {
                    utf8[0] = (char)(0xe0 | (cp >> 12));
                    utf8[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
                    utf8[2] = (char)(0x80 | (cp & 0x3f));
                    n = 3;
                } else {
                    utf8[0] = (char)(0xf0 | (cp >> 18));
                    utf8[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
                    utf8[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
                    utf8[3] = (char)(0x80 | (cp & 0x3f));
                    n = 4;
                }
            }
            if (n == 0) {
                return SCAN_BAD;
            }
            i = (size_t)(semi - v);
        } else if (c == '<') {
            return SCAN_BAD;
        }
        if (o + n < cap) {
            memcpy(out + o, utf8, n);
            o += n;
        }
    }
    out[o] = '\0';
    return SCAN_OK;
}

/* A decimal in 0..2^64-1, digits only. */
static bool parse_u64(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    if (!*s) {
        return false;
    }
    for (; *s; s++) {
        if (*s < '0' || *s > '9') {
            return false;
        }
        uint64_t digit = (uint64_t)(*s - '0');
        if (v > (UINT64_MAX - digit) / 10) {
            return false;
        }
        v = v * 10 + digit;
    }
    *out = v;
    return true;
}

/* Copies @src into @dst of @cap bytes, truncated, NUL-terminated. */
static void copy_text(char *dst, size_t cap, const char *src)
{
    size_t n = strnlen(src, cap - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
}

static void reply_attr(struct feedsim_reply *r, const char *name, size_t nlen,
                       const char *value)
{
#define IS(lit) (nlen == sizeof(lit) - 1 && memcmp(name, lit, nlen) == 0)
    if (IS("result")) {
        copy_text(r->result, sizeof(r->result), value);
    } else if (IS("reason")) {
        copy_text(r->reason, sizeof(r->reason), value);
    } else if (IS("source")) {
        copy_text(r->source, sizeof(r->source), value);
    } else if (IS("seq")) {
        r->has_seq = parse_u64(value, &r->seq);
    } else if (IS("acked")) {
        r->has_acked = parse_u64(value, &r->acked);
    }
#undef IS
}

/*
 * Scans one start tag from @p ('<' then a name): its attributes go to @r
 * when not NULL. Sets *@after past its '>' and *@empty for "/>".
 */
static enum scan_rc scan_tag(const char *p, const char *end,
                             struct feedsim_reply *r, const char **after,
                             bool *empty)
{
    const char *name = ++p;
    while (p < end && is_name_char(*p)) {
        p++;
    }
    if (p == end) {
        return SCAN_MORE;
    }
    if (p == name) {
        return SCAN_BAD;
    }
    if (r) {
        static const struct {
            const char *name;
            enum feedsim_reply_kind kind;
        } kinds[] = {{"login", FEEDSIM_REPLY_LOGIN},
                     {"ack", FEEDSIM_REPLY_ACK},
                     {"error", FEEDSIM_REPLY_ERROR},
                     {"ct", FEEDSIM_REPLY_CT}};
        size_t nlen = (size_t)(p - name);
        *r = (struct feedsim_reply){.kind = FEEDSIM_REPLY_OTHER};
        for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
            if (strlen(kinds[k].name) == nlen &&
                memcmp(kinds[k].name, name, nlen) == 0) {
                r->kind = kinds[k].kind;
            }
        }
    }
    for (;;) {
        while (p < end && is_space(*p)) {
            p++;
        }
        if (p == end) {
            return SCAN_MORE;
        }
        if (*p == '>') {
            *after = p + 1;
            *empty = false;
            return SCAN_OK;
        }
        if (*p == '/') {
            if (end - p < 2) {
                return SCAN_MORE;
            }
            if (p[1] != '>') {
                return SCAN_BAD;
            }
            *after = p + 2;
            *empty = true;
            return SCAN_OK;
        }
        const char *an = p;
        while (p < end && is_name_char(*p)) {
            p++;
        }
        size_t alen = (size_t)(p - an);
        while (p < end && is_space(*p)) {
            p++;
        }
        if (p == end) {
            return SCAN_MORE;
        }
        if (alen == 0 || *p != '=') {
            return SCAN_BAD;
        }
        p++;
        while (p < end && is_space(*p)) {
            p++;
        }
        if (p == end) {
            return SCAN_MORE;
        }
        if (*p != '"' && *p != '\'') {
            return SCAN_BAD;
        }
        const char *close = memchr(p + 1, *p, (size_t)(end - p - 1));
        if (!close) {
            return SCAN_MORE;
        }
        if (r) {
            char value[128];
            if (decode_value(p + 1, (size_t)(close - p - 1), value,
                             sizeof(value)) != SCAN_OK) {
                return SCAN_BAD;
            }
            reply_attr(r, an, alen, value);
        }
        p = close + 1;
    }
}

/* Skips a declaration, comment or processing instruction at @p, if any.
 * SCAN_OK with *@after == @p means there was none. */
static enum scan_rc skip_misc(const char *p, const char *end,
                              const char **after)
{
    *after = p;
    if (end - p < 4) {
        /* Not enough to tell "<!--" or "<?" from a tag. */
        return (end - p >= 2 && p[1] != '!' && p[1] != '?') ? SCAN_OK
                                                            : SCAN_MORE;
    }
    if (p[1] == '?') {
        return skip_past(p + 2, end, "?>", after);
    }
    if (p[1] == '!') {
        return memcmp(p, "<!--", 4) == 0 ? skip_past(p + 4, end, "-->", after)
                                         : SCAN_BAD;
    }
    return SCAN_OK;
}

/* Scans the content of an element up to its matching end tag. */
static enum scan_rc scan_content(const char *p, const char *end,
                                 const char **after)
{
    unsigned depth = 1;
    while (depth > 0) {
        p = memchr(p, '<', (size_t)(end - p));
        if (!p) {
            return SCAN_MORE;
        }
        const char *next;
        enum scan_rc rc = skip_misc(p, end, &next);
        if (rc != SCAN_OK) {
            return rc;
        }
        if (next != p) {
            p = next;
            continue;
        }
        if (p[1] == '/') {
            const char *gt = memchr(p, '>', (size_t)(end - p));
            if (!gt) {
                return SCAN_MORE;
            }
            depth--;
            p = gt + 1;
            continue;
        }
        bool empty;
        rc = scan_tag(p, end, NULL, &next, &empty);
        if (rc != SCAN_OK) {
            return rc;
        }
        depth += !empty;
        p = next;
    }
    *after = p;
    return SCAN_OK;
}

int feedsim_scan_next(struct feedsim_scan *s, struct feedsim_reply *out)
{
    const char *base = s->buf.data;
    const char *end = base + s->buf.len;
    const char *p = base + s->off;
    enum scan_rc rc = SCAN_MORE;

    for (;;) {
        /* Whitespace (and any junk) before a document is skipped. */
        while (p < end && *p != '<') {
            p++;
        }
        s->off = (size_t)(p - base);
        if (p == end) {
            return 0;
        }
        const char *next;
        rc = skip_misc(p, end, &next);
        if (rc != SCAN_OK) {
            break;
        }
        if (next != p) {
            p = next;
            continue;
        }
        bool empty;
        rc = scan_tag(p, end, out, &next, &empty);
        if (rc == SCAN_OK && !empty) {
            rc = scan_content(next, end, &next);
        }
        if (rc == SCAN_OK) {
            s->off = (size_t)(next - base);
            return 1;
        }
        break;
    }
    if (rc == SCAN_BAD) {
        return -EPROTO;
    }
    return s->buf.len - s->off > FEEDSIM_REPLY_MAX ? -EMSGSIZE : 0;
}
