/* tools/top/top_json.c - a small strict JSON parser (RFC 8259) for the
 * admin port's /actors. */

/*
 * DESIGN
 * Recursive descent over a length-bounded buffer (no NUL needed), with a
 * depth limit so hostile nesting cannot exhaust the stack. The tree and
 * its decoded strings live in one arena: a poll's document is freed in one
 * call. Strict means the grammar exactly: anything RFC 8259 does not allow
 * is an error with its offset, never a guess; raw bytes in strings must be
 * valid UTF-8, so the drawing code can count characters safely.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tools/top/top.h"

struct parser {
    const char *p;   /* next byte */
    const char *end; /* one past the last byte */
    const char *start;
    struct top_arena *arena;
    int depth;
    int err; /* the first error: -EINVAL or -ENOMEM */
    const char *err_at;
};

static int fail(struct parser *ps, int err)
{
    if (!ps->err) {
        ps->err = err;
        ps->err_at = ps->p;
    }
    return ps->err;
}

static void skip_ws(struct parser *ps)
{
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' ||
                               *ps->p == '\n' || *ps->p == '\r')) {
        ps->p++;
    }
}

static bool literal(struct parser *ps, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0) {
        return false;
    }
    ps->p += n;
    return true;
}

static bool is_digit(const char *p, const char *end)
{
    return p < end && *p >= '0' && *p <= '9';
}

static int number(struct parser *ps, struct top_json *v)
{
    const char *s = ps->p;
    if (ps->p < ps->end && *ps->p == '-') {
        ps->p++;
    }
    if (!is_digit(ps->p, ps->end)) {
        return fail(ps, -EINVAL);
    }
    if (*ps->p == '0') {
        ps->p++; /* no leading zeros: "01" stops here and fails later */
    } else {
        while (is_digit(ps->p, ps->end)) {
            ps->p++;
        }
    }
    if (ps->p < ps->end && *ps->p == '.') {
        ps->p++;
        if (!is_digit(ps->p, ps->end)) {
            return fail(ps, -EINVAL);
        }
        while (is_digit(ps->p, ps->end)) {
            ps->p++;
        }
    }
    if (ps->p < ps->end && (*ps->p == 'e' || *ps->p == 'E')) {
        ps->p++;
        if (ps->p < ps->end && (*ps->p == '+' || *ps->p == '-')) {
            ps->p++;
        }
        if (!is_digit(ps->p, ps->end)) {
            return fail(ps, -EINVAL);
        }
        while (is_digit(ps->p, ps->end)) {
            ps->p++;
        }
    }
    /* strtod needs a terminated copy; the grammar above already holds. */
    size_t n = (size_t)(ps->p - s);
    char small[64];
    char *copy = n < sizeof(small) ? small : top_arena_alloc(ps->arena, n + 1);
    if (!copy) {
        return fail(ps, -ENOMEM);
    }
    memcpy(copy, s, n);
    copy[n] = '\0';
    v->type = TOP_JSON_NUMBER;
    v->num = strtod(copy, NULL);
    return 0;
}

static int hex4(const char *p, const char *end, unsigned *out)
{
    if (end - p < 4) {
        return -EINVAL;
    }
    unsigned u = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        unsigned d;
        if (c >= '0' && c <= '9') {
            d = (unsigned)(c - '0');
        } else if (c >= 'a' && c <= 'f') {
            d = (unsigned)(c - 'a' + 10);
        } else if (c >= 'A' && c <= 'F') {
            d = (unsigned)(c - 'A' + 10);
        } else {
            return -EINVAL;
        }
        u = u << 4 | d;
    }
    *out = u;
    return 0;
}

static size_t put_utf8(char *out, unsigned cp)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xc0 | cp >> 6);
        out[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xe0 | cp >> 12);
        out[1] = (char)(0x80 | (cp >> 6 & 0x3f));
        out[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | cp >> 18);
    out[1] = (char)(0x80 | (cp >> 12 & 0x3f));
    out[2] = (char)(0x80 | (cp >> 6 & 0x3f));
    out[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* Length of the valid UTF-8 sequence at @p (first byte >= 0x80), or 0. */
static size_t utf8_len(const unsigned char *p, const unsigned char *end)
{
    unsigned char c = p[0];
    size_t n;
    unsigned char lo = 0x80, hi = 0xbf; /* range of the second byte */
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        lo = c == 0xe0 ? 0xa0 : 0x80; /* no overlong forms */
        hi = c == 0xed ? 0x9f : 0xbf; /* no surrogates */
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        lo = c == 0xf0 ? 0x90 : 0x80;
        hi = c == 0xf4 ? 0x8f : 0xbf; /* nothing past U+10FFFF */
    } else {
        return 0;
    }
    if ((size_t)(end - p) < n || p[1] < lo || p[1] > hi) {
        return 0;
    }
    for (size_t i = 2; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80) {
            return 0;
        }
    }
    return n;
}

/* One escape after the backslash at ps->p - 1; writes its UTF-8 to @out. */
static int escape(struct parser *ps, char *out, size_t *n)
{
    if (ps->p >= ps->end) {
        return fail(ps, -EINVAL);
    }
    static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
    const char *hit = memchr(from, *ps->p, sizeof(from) - 1);
    if (hit) {
        *out = to[hit - from];
        *n = 1;
        ps->p++;
        return 0;
    }
    if (*ps->p != 'u') {
        return fail(ps, -EINVAL);
    }
    unsigned cp;
    if (hex4(ps->p + 1, ps->end, &cp) != 0) {
        return fail(ps, -EINVAL);
    }
    ps->p += 5;
    if (cp >= 0xdc00 && cp <= 0xdfff) {
        return fail(ps, -EINVAL); /* a low surrogate alone */
    }
    if (cp >= 0xd800 && cp <= 0xdbff) {
        unsigned lo;
        if (ps->end - ps->p < 6 || ps->p[0] != '\\' || ps->p[1] != 'u' ||
            hex4(ps->p + 2, ps->end, &lo) != 0 || lo < 0xdc00 || lo > 0xdfff) {
            return fail(ps, -EINVAL); /* a high surrogate alone */
        }
        ps->p += 6;
        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
    }
    *n = put_utf8(out, cp);
    return 0;
}

/* A string at ps->p (on its opening quote): decoded into the arena. */
static int string(struct parser *ps, const char **out, size_t *out_len)
{
    ps->p++;
    /* The decoded text is never longer than the source: find the end. */
    const char *q = ps->p;
    while (q < ps->end && *q != '"') {
        q += *q == '\\' && ps->end - q > 1 ? 2 : 1;
    }
    if (q >= ps->end) {
        ps->p = ps->end;
        return fail(ps, -EINVAL);
    }
    char *dst = top_arena_alloc(ps->arena, (size_t)(q - ps->p) + 1);
    if (!dst) {
        return fail(ps, -ENOMEM);
    }
    size_t n = 0;
    while (*ps->p != '"') {
        unsigned char c = (unsigned char)*ps->p;
        if (c < 0x20) {
            return fail(ps, -EINVAL);
        }
        if (c == '\\') {
            ps->p++;
            size_t k;
            if (escape(ps, dst + n, &k) != 0) {
                return ps->err;
            }
            n += k;
        } else if (c < 0x80) {
            dst[n++] = (char)c;
            ps->p++;
        } else {
            size_t k = utf8_len((const unsigned char *)ps->p,
                                (const unsigned char *)ps->end);
            if (k == 0) {
                return fail(ps, -EINVAL);
            }
            memcpy(dst + n, ps->p, k);
            n += k;
            ps->p += k;
        }
    }
    ps->p++;
    dst[n] = '\0';
    *out = dst;
    *out_len = n;
    return 0;
}

static int value(struct parser *ps, struct top_json *v);

/* An array or an object at ps->p (on its opening bracket). */
static int container(struct parser *ps, struct top_json *v, bool object)
{
    if (++ps->depth > TOP_JSON_DEPTH_MAX) {
        return fail(ps, -EINVAL);
    }
    v->type = object ? TOP_JSON_OBJECT : TOP_JSON_ARRAY;
    char close = object ? '}' : ']';
    ps->p++;
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == close) {
        ps->p++;
        ps->depth--;
        return 0;
    }
    struct top_json **link = &v->first;
    for (;;) {
        struct top_json *m = top_arena_alloc(ps->arena, sizeof(*m));
        if (!m) {
            return fail(ps, -ENOMEM);
        }
        if (object) {
            skip_ws(ps);
            if (ps->p >= ps->end || *ps->p != '"') {
                return fail(ps, -EINVAL);
            }
            if (string(ps, &m->key, &m->key_len) != 0) {
                return ps->err;
            }
            skip_ws(ps);
            if (ps->p >= ps->end || *ps->p != ':') {
                return fail(ps, -EINVAL);
            }
            ps->p++;
        }
        if (value(ps, m) != 0) {
            return ps->err;
        }
        *link = m;
        link = &m->next;
        v->len++;
        skip_ws(ps);
        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            continue;
        }
        if (ps->p < ps->end && *ps->p == close) {
            ps->p++;
            ps->depth--;
            return 0;
        }
        return fail(ps, -EINVAL);
    }
}

static int value(struct parser *ps, struct top_json *v)
{
    skip_ws(ps);
    if (ps->p >= ps->end) {
        return fail(ps, -EINVAL);
    }
    switch (*ps->p) {
    case '{':
        return container(ps, v, true);
    case '[':
        return container(ps, v, false);
    case '"':
        v->type = TOP_JSON_STRING;
        return string(ps, &v->str, &v->len);
    case 't':
        v->type = TOP_JSON_TRUE;
        return literal(ps, "true") ? 0 : fail(ps, -EINVAL);
    case 'f':
        v->type = TOP_JSON_FALSE;
        return literal(ps, "false") ? 0 : fail(ps, -EINVAL);
    case 'n':
        v->type = TOP_JSON_NULL;
        return literal(ps, "null") ? 0 : fail(ps, -EINVAL);
    default:
        return number(ps, v);
    }
}

int top_json_parse(struct top_json_doc *doc, const char *text, size_t len)
{
    doc->root = NULL;
    doc->err_at = 0;
    struct parser ps = {
        .p = text, .end = text + len, .start = text, .arena = &doc->arena};
    struct top_json *root = top_arena_alloc(&doc->arena, sizeof(*root));
    if (!root) {
        return -ENOMEM;
    }
    if (value(&ps, root) == 0) {
        skip_ws(&ps);
        if (ps.p != ps.end) {
            fail(&ps, -EINVAL); /* something after the value */
        }
    }
    if (ps.err) {
        doc->err_at = (size_t)(ps.err_at - ps.start);
        return ps.err;
    }
    doc->root = root;
    return 0;
}

void top_json_doc_free(struct top_json_doc *doc)
{
    top_arena_free(&doc->arena);
    doc->root = NULL;
}

const struct top_json *top_json_get(const struct top_json *obj, const char *key)
{
    if (!obj || obj->type != TOP_JSON_OBJECT) {
        return NULL;
    }
    size_t n = strlen(key);
    for (const struct top_json *m = obj->first; m; m = m->next) {
        if (m->key_len == n && memcmp(m->key, key, n) == 0) {
            return m;
        }
    }
    return NULL;
}

double top_json_num(const struct top_json *obj, const char *key, double def)
{
    const struct top_json *m = top_json_get(obj, key);
    return m && m->type == TOP_JSON_NUMBER ? m->num : def;
}

const char *top_json_str(const struct top_json *obj, const char *key,
                         const char *def)
{
    const struct top_json *m = top_json_get(obj, key);
    return m && m->type == TOP_JSON_STRING ? m->str : def;
}

bool top_json_bool(const struct top_json *obj, const char *key, bool def)
{
    const struct top_json *m = top_json_get(obj, key);
    if (m && m->type == TOP_JSON_TRUE) {
        return true;
    }
    if (m && m->type == TOP_JSON_FALSE) {
        return false;
    }
    return def;
}
