/* notify/notify_json.c - a strict, allocation-free JSON tokenizer. */
#include <errno.h>
#include <string.h>

#include "notify/notify.h"

/*
 * DESIGN
 * Clients send us at most a few KiB of JSON, and the tools read our own
 * output at a million messages a second; neither wants a tree of
 * allocations. The tokenizer writes a flat array of tokens in document
 * order (jsmn's idea), each knowing where its subtree ends, so a reader
 * skips a value in O(1) and nothing is copied until a caller asks for a
 * decoded string. It is strict (RFC 8259): one value, no trailing commas,
 * no comments, no leading zeros, no control characters or invalid UTF-8 in
 * strings, no lone surrogates. Anything we echo back to a browser therefore
 * is valid text, and anything we accept is what JSON.parse accepts.
 * libwebsockets' LEJP would do the parsing with callbacks per path, but its
 * paths cannot carry arbitrary keys (our `since` map is keyed by match id)
 * and it is not available to the unit tests and fuzzers without lws.
 */

struct parser {
    const unsigned char *s;
    size_t len;
    size_t pos;
    struct notify_json_tok *toks;
    uint32_t max;
    uint32_t n;
};

static bool is_ws(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static inline void skip_ws(struct parser *p)
{
    /* Compact JSON has none: test the first byte before looping. */
    if (p->pos < p->len && p->s[p->pos] > ' ') {
        return;
    }
    while (p->pos < p->len && is_ws(p->s[p->pos])) {
        p->pos++;
    }
}

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "plain_run() finds the first byte of a word with ctz: little-endian"
#endif

#define ONES  0x0101010101010101ull
#define HIGHS 0x8080808080808080ull

/* Bytes of @v below @n (n <= 128) have their high bit set in the result. */
static inline uint64_t below(uint64_t v, uint64_t n)
{
    return (v - ONES * n) & ~v & HIGHS;
}

static inline uint64_t equal(uint64_t v, unsigned char b)
{
    return below(v ^ (ONES * b), 1);
}

/* Skips the plain ASCII bytes of a string (no quote, backslash, control
 * or non-ASCII byte) eight at a time. Returns the index of the first byte
 * that is not plain, or a position within the last seven bytes. The
 * lowest flagged byte of a word is always a real one (false flags only
 * appear above a real one), so the word's first special byte is found
 * without a byte loop. */
static inline size_t plain_run(const unsigned char *s, size_t i, size_t len)
{
    while (i + 8 <= len) {
        uint64_t v;
        memcpy(&v, s + i, 8);
        uint64_t special =
            below(v, 0x20) | equal(v, '"') | equal(v, '\\') | (v & HIGHS);
        if (special) {
            return i + ((size_t)__builtin_ctzll(special) >> 3);
        }
        i += 8;
    }
    return i;
}

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/* Reads 4 hex digits at @s. Returns the code unit or -1. */
static long hex4(const unsigned char *s)
{
    long v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval(s[i]);
        if (h < 0) {
            return -1;
        }
        v = v * 16 + h;
    }
    return v;
}

/*
 * Length of the valid UTF-8 sequence starting at @s (at most @left bytes),
 * or 0 when it is not valid (overlong, surrogate, above U+10FFFF, cut).
 */
static size_t utf8_len(const unsigned char *s, size_t left)
{
    unsigned char c = s[0];
    if (c < 0x80) {
        return 1;
    }
    if (c >= 0xc2 && c <= 0xdf) {
        return left >= 2 && (s[1] & 0xc0) == 0x80 ? 2 : 0;
    }
    if (c >= 0xe0 && c <= 0xef) {
        if (left < 3 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80) {
            return 0;
        }
        if (c == 0xe0 && s[1] < 0xa0) {
            return 0; /* overlong */
        }
        if (c == 0xed && s[1] >= 0xa0) {
            return 0; /* UTF-16 surrogate */
        }
        return 3;
    }
    if (c >= 0xf0 && c <= 0xf4) {
        if (left < 4 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80 ||
            (s[3] & 0xc0) != 0x80) {
            return 0;
        }
        if (c == 0xf0 && s[1] < 0x90) {
            return 0; /* overlong */
        }
        if (c == 0xf4 && s[1] >= 0x90) {
            return 0; /* above U+10FFFF */
        }
        return 4;
    }
    return 0;
}

/*
 * Checks an escape starting at the backslash at @i. Returns its length in
 * the source, or 0 when malformed.
 */
static size_t escape_len(const unsigned char *s, size_t i, size_t len)
{
    if (i + 1 >= len) {
        return 0;
    }
    switch (s[i + 1]) {
    case '"':
    case '\\':
    case '/':
    case 'b':
    case 'f':
    case 'n':
    case 'r':
    case 't':
        return 2;
    case 'u':
        break;
    default:
        return 0;
    }
    if (i + 6 > len) {
        return 0;
    }
    long u = hex4(s + i + 2);
    if (u < 0) {
        return 0;
    }
    if (u >= 0xdc00 && u <= 0xdfff) {
        return 0; /* a low surrogate without its high half */
    }
    if (u < 0xd800 || u > 0xdbff) {
        return 6;
    }
    /* A high surrogate must be followed by \u and a low surrogate. */
    if (i + 12 > len || s[i + 6] != '\\' || s[i + 7] != 'u') {
        return 0;
    }
    long lo = hex4(s + i + 8);
    if (lo < 0xdc00 || lo > 0xdfff) {
        return 0;
    }
    return 12;
}

static struct notify_json_tok *push(struct parser *p, uint8_t type)
{
    if (p->n == p->max) {
        return NULL;
    }
    struct notify_json_tok *t = &p->toks[p->n++];
    t->type = type;
    t->flags = 0;
    t->start = (uint32_t)p->pos;
    t->len = 0;
    t->next = p->n;
    t->size = 0;
    return t;
}

static int parse_string(struct parser *p)
{
    struct notify_json_tok *t = push(p, NOTIFY_JSON_STRING);
    if (!t) {
        return -ENOSPC;
    }
    size_t i = p->pos + 1;
    t->start = (uint32_t)i;
    while (i < p->len) {
        i = plain_run(p->s, i, p->len);
        if (i >= p->len) {
            break;
        }
        unsigned char c = p->s[i];
        if (c == '"') {
            t->len = (uint32_t)(i - t->start);
            p->pos = i + 1;
            return 0;
        }
        if (c == '\\') {
            size_t n = escape_len(p->s, i, p->len);
            if (n == 0) {
                p->pos = i;
                return -EINVAL;
            }
            t->flags |= NOTIFY_JSON_ESCAPED;
            i += n;
            continue;
        }
        if (c < 0x20) {
            p->pos = i;
            return -EINVAL;
        }
        size_t n = utf8_len(p->s + i, p->len - i);
        if (n == 0) {
            p->pos = i;
            return -EINVAL;
        }
        i += n;
    }
    p->pos = i;
    return -EINVAL;
}

static bool is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

/* Consumes one or more digits at *@i. Returns false when there is none. */
static bool digits(const struct parser *p, size_t *i)
{
    if (*i >= p->len || !is_digit(p->s[*i])) {
        return false;
    }
    while (*i < p->len && is_digit(p->s[*i])) {
        (*i)++;
    }
    return true;
}

static int parse_number(struct parser *p)
{
    struct notify_json_tok *t = push(p, NOTIFY_JSON_NUMBER);
    if (!t) {
        return -ENOSPC;
    }
    const unsigned char *s = p->s;
    size_t i = p->pos;
    if (i < p->len && s[i] == '-') {
        i++;
    }
    if (i < p->len && s[i] == '0') {
        i++; /* no leading zeros */
    } else if (!digits(p, &i)) {
        goto bad;
    }
    if (i < p->len && s[i] == '.') {
        i++;
        if (!digits(p, &i)) {
            goto bad;
        }
        t->flags |= NOTIFY_JSON_FRACTION;
    }
    if (i < p->len && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < p->len && (s[i] == '+' || s[i] == '-')) {
            i++;
        }
        if (!digits(p, &i)) {
            goto bad;
        }
        t->flags |= NOTIFY_JSON_FRACTION;
    }
    t->len = (uint32_t)(i - p->pos);
    p->pos = i;
    return 0;
bad:
    p->pos = i;
    return -EINVAL;
}

static int parse_word(struct parser *p, const char *word, uint8_t type)
{
    size_t n = strlen(word);
    if (p->len - p->pos < n || memcmp(p->s + p->pos, word, n) != 0) {
        return -EINVAL;
    }
    struct notify_json_tok *t = push(p, type);
    if (!t) {
        return -ENOSPC;
    }
    t->len = (uint32_t)n;
    p->pos += n;
    return 0;
}

/*
 * The value grammar with an explicit stack of open containers, so hostile
 * nesting costs neither C stack nor time beyond the depth limit.
 */
int notify_json_parse(const char *text, size_t len,
                      struct notify_json_tok *toks, uint32_t max, size_t *where)
{
    struct parser p = {
        .s = (const unsigned char *)text,
        .len = len,
        .toks = toks,
        .max = max,
    };
    uint32_t stack[NOTIFY_JSON_MAX_DEPTH];
    unsigned depth = 0;
    int rc = 0;

    if (len > UINT32_MAX) {
        rc = -E2BIG;
        goto out;
    }
    for (;;) {
        /* Expect a value. */
        skip_ws(&p);
        if (p.pos >= p.len) {
            rc = -EINVAL;
            goto out;
        }
        unsigned char c = p.s[p.pos];
        if (c == '{' || c == '[') {
            if (depth == NOTIFY_JSON_MAX_DEPTH) {
                rc = -E2BIG;
                goto out;
            }
            struct notify_json_tok *t =
                push(&p, c == '{' ? NOTIFY_JSON_OBJECT : NOTIFY_JSON_ARRAY);
            if (!t) {
                rc = -ENOSPC;
                goto out;
            }
            stack[depth++] = p.n - 1;
            p.pos++;
            skip_ws(&p);
            if (p.pos < p.len && p.s[p.pos] == (c == '{' ? '}' : ']')) {
                goto close;
            }
            if (c == '{') {
                goto key;
            }
            continue;
        }
        if (c == '"') {
            rc = parse_string(&p);
        } else if (c == '-' || is_digit(c)) {
            rc = parse_number(&p);
        } else if (c == 't') {
            rc = parse_word(&p, "true", NOTIFY_JSON_TRUE);
        } else if (c == 'f') {
            rc = parse_word(&p, "false", NOTIFY_JSON_FALSE);
        } else if (c == 'n') {
            rc = parse_word(&p, "null", NOTIFY_JSON_NULL);
        } else {
            rc = -EINVAL;
        }
        if (rc != 0) {
            goto out;
        }

    after_value:
        /* A value ended: a separator, a closer, or the end. */
        skip_ws(&p);
        if (depth == 0) {
            if (p.pos != p.len) {
                rc = -EINVAL;
                goto out;
            }
            rc = (int)p.n;
            goto out;
        }
        {
            struct notify_json_tok *top = &p.toks[stack[depth - 1]];
            top->size++;
            if (p.pos >= p.len) {
                rc = -EINVAL;
                goto out;
            }
            c = p.s[p.pos];
            if (c == ',') {
                p.pos++;
                if (top->type == NOTIFY_JSON_OBJECT) {
                    skip_ws(&p);
                    goto key;
                }
                continue;
            }
            if (c != (top->type == NOTIFY_JSON_OBJECT ? '}' : ']')) {
                rc = -EINVAL;
                goto out;
            }
        }

    close:
        /* p.s[p.pos] closes the innermost container. */
        {
            struct notify_json_tok *top = &p.toks[stack[--depth]];
            p.pos++;
            top->len = (uint32_t)(p.pos - top->start);
            top->next = p.n;
        }
        goto after_value;

    key:
        /* Inside an object: a string key and a colon, then a value. */
        if (p.pos >= p.len || p.s[p.pos] != '"') {
            rc = -EINVAL;
            goto out;
        }
        rc = parse_string(&p);
        if (rc != 0) {
            goto out;
        }
        skip_ws(&p);
        if (p.pos >= p.len || p.s[p.pos] != ':') {
            rc = -EINVAL;
            goto out;
        }
        p.pos++;
    }

out:
    if (where) {
        *where = p.pos;
    }
    return rc;
}

/* Appends the UTF-8 encoding of @cp to @out (4 bytes of room needed). */
static size_t put_utf8(char *out, unsigned long cp)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xc0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xe0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    out[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

int notify_json_str(const char *text, const struct notify_json_tok *tok,
                    char *out, size_t cap, size_t *out_len)
{
    if (tok->type != NOTIFY_JSON_STRING) {
        return -EINVAL;
    }
    const unsigned char *s = (const unsigned char *)text + tok->start;
    size_t n = 0;
    if (!(tok->flags & NOTIFY_JSON_ESCAPED)) {
        if (tok->len >= cap) {
            return -ENOSPC;
        }
        memcpy(out, s, tok->len);
        n = tok->len;
        goto done;
    }
    /* The tokenizer validated every escape; decode without re-checking. */
    for (size_t i = 0; i < tok->len;) {
        char tmp[4];
        size_t k;
        if (s[i] != '\\') {
            tmp[0] = (char)s[i];
            k = 1;
            i++;
        } else {
            char e = (char)s[i + 1];
            switch (e) {
            case 'b':
                tmp[0] = '\b';
                break;
            case 'f':
                tmp[0] = '\f';
                break;
            case 'n':
                tmp[0] = '\n';
                break;
            case 'r':
                tmp[0] = '\r';
                break;
            case 't':
                tmp[0] = '\t';
                break;
            default:
                tmp[0] = e;
                break;
            }
            k = 1;
            i += 2;
            if (e == 'u') {
                unsigned long cp = (unsigned long)hex4(s + i);
                i += 4;
                if (cp >= 0xd800 && cp <= 0xdbff) {
                    unsigned long lo = (unsigned long)hex4(s + i + 2);
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                    i += 6;
                }
                k = put_utf8(tmp, cp);
            }
        }
        if (n + k >= cap) {
            return -ENOSPC;
        }
        memcpy(out + n, tmp, k);
        n += k;
    }
done:
    out[n] = '\0';
    if (out_len) {
        *out_len = n;
    }
    return 0;
}

bool notify_json_eq(const char *text, const struct notify_json_tok *tok,
                    const char *lit)
{
    if (tok->type != NOTIFY_JSON_STRING) {
        return false;
    }
    size_t n = strlen(lit);
    if (!(tok->flags & NOTIFY_JSON_ESCAPED)) {
        return tok->len == n && memcmp(text + tok->start, lit, n) == 0;
    }
    /* Rare: an escaped key. Decoding never makes a string longer. */
    char buf[256];
    size_t got;
    if (n >= sizeof(buf) ||
        notify_json_str(text, tok, buf, sizeof(buf), &got) != 0) {
        return false;
    }
    return got == n && memcmp(buf, lit, n) == 0;
}

int notify_json_u64(const char *text, const struct notify_json_tok *tok,
                    uint64_t *value)
{
    if (tok->type != NOTIFY_JSON_NUMBER ||
        (tok->flags & NOTIFY_JSON_FRACTION)) {
        return -EINVAL;
    }
    const char *s = text + tok->start;
    if (s[0] == '-') {
        return -ERANGE;
    }
    uint64_t v = 0;
    for (uint32_t i = 0; i < tok->len; i++) {
        uint64_t d = (uint64_t)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10) {
            return -ERANGE;
        }
        v = v * 10 + d;
    }
    *value = v;
    return 0;
}

uint32_t notify_json_get(const char *text, const struct notify_json_tok *toks,
                         uint32_t obj, const char *key)
{
    if (toks[obj].type != NOTIFY_JSON_OBJECT) {
        return 0;
    }
    uint32_t i = obj + 1;
    for (uint32_t m = 0; m < toks[obj].size; m++) {
        if (notify_json_eq(text, &toks[i], key)) {
            return i + 1;
        }
        i = toks[i + 1].next;
    }
    return 0;
}
