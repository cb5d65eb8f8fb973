/* actor/actor_registry.c - the name registry: find an actor by name. */

/*
 * DESIGN
 * Lookups happen on the hot path (ingest finds a match actor by id for
 * every match element), so the table is split into shards by hash, each a
 * chained hash under its own mutex; a lookup holds one lock for a few
 * comparisons. An actor's name goes away when it exits, before its links
 * and monitors hear of it, as on the BEAM.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "actor/actor_impl.h"

#define SHARDS 64

struct entry {
    struct entry *next;
    uint64_t pid;
    uint32_t hash;
    char name[]; /* NUL-terminated */
};

static struct shard {
    pthread_mutex_t lock;
    struct entry **buckets;
    size_t n_buckets, n;
} shards[SHARDS];

static pthread_once_t once = PTHREAD_ONCE_INIT;

static void init_shards(void)
{
    for (size_t i = 0; i < SHARDS; i++) {
        pthread_mutex_init(&shards[i].lock, NULL);
    }
}

static uint32_t hash_name(const char *s)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (; *s; s++) {
        h = (h ^ (unsigned char)*s) * 16777619u;
    }
    return h;
}

static struct shard *shard_of(uint32_t h)
{
    pthread_once(&once, init_shards);
    return &shards[h % SHARDS];
}

static struct entry **slot(struct shard *sh, uint32_t h, const char *name)
{
    struct entry **p = &sh->buckets[(h / SHARDS) & (sh->n_buckets - 1)];
    while (*p && ((*p)->hash != h || strcmp((*p)->name, name) != 0)) {
        p = &(*p)->next;
    }
    return p;
}

static int grow(struct shard *sh)
{
    size_t n = sh->n_buckets ? sh->n_buckets * 2 : 16;
    struct entry **b = calloc(n, sizeof(*b));
    if (!b) {
        return -ENOMEM;
    }
    for (size_t i = 0; i < sh->n_buckets; i++) {
        struct entry *e = sh->buckets[i];
        while (e) {
            struct entry *next = e->next;
            size_t k = (e->hash / SHARDS) & (n - 1);
            e->next = b[k];
            b[k] = e;
            e = next;
        }
    }
    free(sh->buckets);
    sh->buckets = b;
    sh->n_buckets = n;
    return 0;
}

int actor__registry_add(const char *name, uint64_t pid, uint64_t *holder)
{
    uint32_t h = hash_name(name);
    struct shard *sh = shard_of(h);
    size_t len = strlen(name);
    struct entry *e = malloc(sizeof(*e) + len + 1);
    if (!e) {
        return -ENOMEM;
    }
    e->pid = pid;
    e->hash = h;
    memcpy(e->name, name, len + 1);

    int rc = 0;
    pthread_mutex_lock(&sh->lock);
    if (sh->n + 1 > sh->n_buckets && grow(sh) != 0 && !sh->n_buckets) {
        rc = -ENOMEM;
        goto out_unlock;
    }
    struct entry **p = slot(sh, h, name);
    if (*p) {
        if (holder) {
            *holder = (*p)->pid;
        }
        rc = -EEXIST;
        goto out_unlock;
    }
    e->next = NULL;
    *p = e;
    sh->n++;
    e = NULL;
out_unlock:
    pthread_mutex_unlock(&sh->lock);
    free(e);
    return rc;
}

void actor__registry_del(const char *name, uint64_t pid)
{
    uint32_t h = hash_name(name);
    struct shard *sh = shard_of(h);
    struct entry *gone = NULL;
    pthread_mutex_lock(&sh->lock);
    if (sh->n_buckets) {
        struct entry **p = slot(sh, h, name);
        if (*p && (*p)->pid == pid) {
            gone = *p;
            *p = gone->next;
            sh->n--;
        }
    }
    pthread_mutex_unlock(&sh->lock);
    free(gone);
}

uint64_t actor_whereis(const char *name)
{
    uint32_t h = hash_name(name);
    struct shard *sh = shard_of(h);
    uint64_t pid = 0;
    pthread_mutex_lock(&sh->lock);
    if (sh->n_buckets) {
        struct entry *e = *slot(sh, h, name);
        if (e) {
            pid = e->pid;
        }
    }
    pthread_mutex_unlock(&sh->lock);
    return pid;
}

int actor_register(struct actor_ctx *ctx, const char *name)
{
    if (atomic_load(&ctx->name)) {
        return -EBUSY; /* one name per actor */
    }
    char *copy = strdup(name);
    if (!copy) {
        return -ENOMEM;
    }
    int rc = actor__registry_add(name, ctx->pid, NULL);
    if (rc != 0) {
        free(copy);
        return rc;
    }
    atomic_store(&ctx->name, copy);
    return 0;
}
