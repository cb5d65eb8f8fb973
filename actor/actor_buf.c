/* actor/actor_buf.c - growable byte buffers with a sticky error. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actor/actor.h"

void actor_buf_init(struct actor_buf *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->err = 0;
}

void actor_buf_release(struct actor_buf *b)
{
    free(b->data);
    actor_buf_init(b);
}

void actor_buf_reset(struct actor_buf *b)
{
    b->len = 0;
    b->err = 0;
    if (b->cap > 0) {
        b->data[0] = '\0';
    }
}

int actor_buf_reserve(struct actor_buf *b, size_t extra)
{
    if (b->err) {
        return b->err;
    }
    /* +1 keeps room for the terminating NUL. */
    if (extra > SIZE_MAX / 2 - b->len - 1) {
        b->err = -ENOMEM;
        return b->err;
    }
    size_t need = b->len + extra + 1;
    if (need <= b->cap) {
        return 0;
    }
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need) {
        cap *= 2;
    }
    char *data = realloc(b->data, cap);
    if (!data) {
        b->err = -ENOMEM;
        return b->err;
    }
    b->data = data;
    b->cap = cap;
    return 0;
}

void actor_buf_add(struct actor_buf *b, const void *data, size_t len)
{
    if (actor_buf_reserve(b, len) != 0) {
        return;
    }
    if (len > 0) {
        memcpy(b->data + b->len, data, len);
    }
    b->len += len;
    b->data[b->len] = '\0';
}

void actor_buf_str(struct actor_buf *b, const char *s)
{
    actor_buf_add(b, s, strlen(s));
}

void actor_buf_char(struct actor_buf *b, char c)
{
    if (b->len + 1 < b->cap && !b->err) {
        b->data[b->len++] = c;
        b->data[b->len] = '\0';
        return;
    }
    actor_buf_add(b, &c, 1);
}

void actor_buf_printf(struct actor_buf *b, const char *fmt, ...)
{
    if (b->err) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    size_t room = b->cap > b->len ? b->cap - b->len : 0;
    int n = vsnprintf(room ? b->data + b->len : NULL, room, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->err = -EINVAL;
        return;
    }
    if ((size_t)n < room) {
        b->len += (size_t)n;
        return;
    }
    if (actor_buf_reserve(b, (size_t)n) != 0) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void actor_buf_json_str(struct actor_buf *b, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    /* Worst case every byte becomes \u00XX. */
    if (actor_buf_reserve(b, len * 6 + 2) != 0) {
        return;
    }
    char *o = b->data + b->len;
    *o++ = '"';
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '"':
            *o++ = '\\';
            *o++ = '"';
            break;
        case '\\':
            *o++ = '\\';
            *o++ = '\\';
            break;
        case '\n':
            *o++ = '\\';
            *o++ = 'n';
            break;
        case '\r':
            *o++ = '\\';
            *o++ = 'r';
            break;
        case '\t':
            *o++ = '\\';
            *o++ = 't';
            break;
        default:
            if (c < 0x20 || c == 0x7f) {
                *o++ = '\\';
                *o++ = 'u';
                *o++ = '0';
                *o++ = '0';
                *o++ = hex[c >> 4];
                *o++ = hex[c & 15];
            } else {
                *o++ = (char)c;
            }
        }
    }
    *o++ = '"';
    b->len = (size_t)(o - b->data);
    b->data[b->len] = '\0';
}

char *actor_buf_take(struct actor_buf *b, size_t *len)
{
    char *data = b->data;
    if (len) {
        *len = b->len;
    }
    actor_buf_init(b);
    return data;
}
