/* store/store_map.c - a string-keyed map with entries in insertion order. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_impl.h"

/*
 * DESIGN
 * Entries live in a dense array (insertion order, so a batch writes its
 * rows in a stable order and iterating is a plain loop); an open-addressing
 * table of indices finds them. Nothing is ever removed from a map except
 * all at once (store__map_clear), so there are no tombstones. The table is
 * kept at most half full.
 */

static uint32_t hash_key(const char *key, size_t len)
{
    /* FNV-1a: keys are short ids; quality is ample for a load of 1/2. */
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)key[i];
        h *= 16777619u;
    }
    return h;
}

void store__map_init(struct store__map *m)
{
    memset(m, 0, sizeof(*m));
}

void store__map_clear(struct store__map *m)
{
    for (uint32_t i = 0; i < m->n; i++) {
        free(m->entries[i].key);
    }
    m->n = 0;
    if (m->slots) {
        memset(m->slots, 0, ((size_t)m->mask + 1) * sizeof(*m->slots));
    }
}

void store__map_release(struct store__map *m)
{
    store__map_clear(m);
    free(m->entries);
    free(m->slots);
    store__map_init(m);
}

static uint32_t *find_slot(const struct store__map *m, const char *key,
                           size_t len, uint32_t hash)
{
    for (uint32_t i = hash & m->mask;; i = (i + 1) & m->mask) {
        uint32_t *slot = &m->slots[i];
        if (*slot == 0) {
            return slot;
        }
        const struct store__map_entry *e = &m->entries[*slot - 1];
        if (e->hash == hash && e->len == len && memcmp(e->key, key, len) == 0) {
            return slot;
        }
    }
}

struct store__map_entry *store__map_get(const struct store__map *m,
                                        const char *key, size_t len)
{
    if (!m->slots) {
        return NULL;
    }
    uint32_t *slot = find_slot(m, key, len, hash_key(key, len));
    return *slot ? &m->entries[*slot - 1] : NULL;
}

static int grow_slots(struct store__map *m)
{
    size_t n_slots = m->slots ? ((size_t)m->mask + 1) * 2 : 16;
    if (n_slots > UINT32_MAX / 2) {
        return -ENOMEM;
    }
    uint32_t *slots = store__calloc(n_slots, sizeof(*slots));
    if (!slots) {
        return -ENOMEM;
    }
    free(m->slots);
    m->slots = slots;
    m->mask = (uint32_t)n_slots - 1;
    for (uint32_t i = 0; i < m->n; i++) {
        const struct store__map_entry *e = &m->entries[i];
        *find_slot(m, e->key, e->len, e->hash) = i + 1;
    }
    return 0;
}

struct store__map_entry *store__map_put(struct store__map *m, const char *key,
                                        size_t len, bool *added)
{
    *added = false;
    if (len > UINT32_MAX - 1) {
        return NULL;
    }
    uint32_t hash = hash_key(key, len);
    if (m->slots) {
        uint32_t *slot = find_slot(m, key, len, hash);
        if (*slot) {
            return &m->entries[*slot - 1];
        }
    }
    if ((!m->slots || (size_t)m->n + 1 > ((size_t)m->mask + 1) / 2) &&
        grow_slots(m) != 0) {
        return NULL;
    }
    if (m->n == m->cap) {
        uint32_t cap = m->cap ? m->cap * 2 : 16;
        struct store__map_entry *entries =
            store__realloc(m->entries, (size_t)cap * sizeof(*entries));
        if (!entries) {
            return NULL;
        }
        m->entries = entries;
        m->cap = cap;
    }
    char *copy = store__malloc(len + 1);
    if (!copy) {
        return NULL;
    }
    memcpy(copy, key, len);
    copy[len] = '\0';
    struct store__map_entry *e = &m->entries[m->n];
    memset(e, 0, sizeof(*e));
    e->key = copy;
    e->len = (uint32_t)len;
    e->hash = hash;
    *find_slot(m, key, len, hash) = ++m->n;
    *added = true;
    return e;
}
