/* tools/top/top_arena.c - bump allocation for parsed documents: one poll's
 * nodes and strings live and die together. */
#include <stdalign.h>
#include <stdlib.h>
#include <string.h>

#include "tools/top/top.h"

#define CHUNK_MIN (64 * 1024) /* bytes per chunk, unless one item is bigger */

struct top_arena_chunk {
    struct top_arena_chunk *next;
    size_t size; /* usable bytes after the header */
    alignas(max_align_t) unsigned char data[];
};

void *top_arena_alloc(struct top_arena *a, size_t size)
{
    const size_t align = alignof(max_align_t);
    size_t need = (size + align - 1) & ~(align - 1);
    if (need < size) {
        return NULL;
    }
    struct top_arena_chunk *c = a->chunks;
    if (!c || c->size - a->used < need) {
        size_t cap = need > CHUNK_MIN ? need : CHUNK_MIN;
        if (cap > SIZE_MAX - sizeof(*c)) {
            return NULL;
        }
        c = malloc(sizeof(*c) + cap);
        if (!c) {
            return NULL;
        }
        c->next = a->chunks;
        c->size = cap;
        a->chunks = c;
        a->used = 0;
    }
    void *p = c->data + a->used;
    a->used += need;
    memset(p, 0, size);
    return p;
}

void top_arena_free(struct top_arena *a)
{
    struct top_arena_chunk *c = a->chunks;
    while (c) {
        struct top_arena_chunk *next = c->next;
        free(c);
        c = next;
    }
    a->chunks = NULL;
    a->used = 0;
}
