/* model/model_match.c - the match state machine: applies match elements to
 * immutable, shared match images and makes the updates between them. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "actor/actor.h"
#include "model/model_impl.h"
#include "store/store.h"

/*
 * DESIGN
 * See model_impl.h for the shape of an image. Applying an element goes in
 * three steps, and only the last one touches the match:
 * 1. build the next image: copy the current one's scalars, take references
 *   on its texts and incident list, and replace a blob only when one of its
 *   values differs (a clock tick copies no string);
 * 2. write the JSON into a per-thread scratch buffer and allocate the update
 *   with its exact size: one block holding the struct, the lists for the
 *   store, the headroom and the text;
 * 3. swap the image in.
 * Any failure in 1 or 2 drops what was built and leaves the match as it was.
 */

_Thread_local uint32_t model__fail_alloc;

void *model__alloc(size_t size)
{
    if (model__fail_alloc != 0 && --model__fail_alloc == 0) {
        return NULL;
    }
    return malloc(size);
}

/* ---- shared blobs -------------------------------------------------------- */

/* The strings of an image other than the incidents', NUL-terminated one
 * after the other; the image points into data. */
struct texts {
    atomic_uint refs;
    char data[];
};

/* An image's incidents; their strings follow the array. */
struct ilist {
    atomic_uint refs;
    uint32_t n;
    struct match_incident items[];
};

struct image {
    struct match_image pub;
    struct texts *texts; /* owned reference; never NULL */
    struct ilist *list;  /* owned reference; NULL: no incidents */
};

/* Drops one reference; true when it was the last. */
static bool drop(atomic_uint *refs)
{
    return atomic_fetch_sub_explicit(refs, 1, memory_order_acq_rel) == 1;
}

static void hold(atomic_uint *refs)
{
    atomic_fetch_add_explicit(refs, 1, memory_order_relaxed);
}

static void texts_unref(struct texts *t)
{
    if (t && drop(&t->refs)) {
        free(t);
    }
}

static void list_unref(struct ilist *l)
{
    if (l && drop(&l->refs)) {
        free(l);
    }
}

void match_image_unref(struct match_image *img)
{
    if (!img || !drop(&img->refs)) {
        return;
    }
    struct image *im = container_of(img, struct image, pub);
    texts_unref(im->texts);
    list_unref(im->list);
    free(im);
}

void update_unref(struct update *up)
{
    if (!up || !drop(&up->refs)) {
        return;
    }
    match_image_unref(up->image);
    free(up);
}

static bool str_eq(const char *a, const char *b)
{
    if (a == b) {
        return true;
    }
    return a && b && strcmp(a, b) == 0;
}

static size_t str_size(const char *s)
{
    return s ? strlen(s) + 1 : 0;
}

/* Copies @s (NULL stays NULL) to *@at and moves *@at past it. */
static const char *stash(char **at, const char *s)
{
    if (!s) {
        return NULL;
    }
    size_t n = strlen(s) + 1;
    char *copy = memcpy(*at, s, n);
    *at += n;
    return copy;
}

/* ---- texts --------------------------------------------------------------- */

enum text {
    T_ID,
    T_SOURCE,
    T_SPORT,
    T_COMPETITION,
    T_HOME,
    T_AWAY,
    T_START,
    T_PHASE,
    T_N
};

static void texts_get(const struct match_image *img, const char *t[T_N])
{
    t[T_ID] = img->id;
    t[T_SOURCE] = img->source;
    t[T_SPORT] = img->sport;
    t[T_COMPETITION] = img->competition;
    t[T_HOME] = img->home;
    t[T_AWAY] = img->away;
    t[T_START] = img->start;
    t[T_PHASE] = img->phase;
}

/* Makes @im's texts a new blob holding @want. Returns 0 or -ENOMEM. */
static int texts_replace(struct image *im, const char *const want[T_N])
{
    size_t size = sizeof(struct texts);
    for (int k = 0; k < T_N; k++) {
        size += str_size(want[k]);
    }
    struct texts *t = model__alloc(size);
    if (!t) {
        return -ENOMEM;
    }
    atomic_init(&t->refs, 1);
    char *at = t->data;
    struct match_image *img = &im->pub;
    img->id = stash(&at, want[T_ID]);
    img->source = stash(&at, want[T_SOURCE]);
    img->sport = stash(&at, want[T_SPORT]);
    img->competition = stash(&at, want[T_COMPETITION]);
    img->home = stash(&at, want[T_HOME]);
    img->away = stash(&at, want[T_AWAY]);
    img->start = stash(&at, want[T_START]);
    img->phase = stash(&at, want[T_PHASE]);
    texts_unref(im->texts);
    im->texts = t;
    return 0;
}

/* Applies the element's source, fixture and status. Adds MODEL__CH_FIXTURE
 * and MODEL__CH_STATUS to *@changes. Returns 0 or -ENOMEM. */
static int apply_texts(struct image *im, const struct event *ev,
                       const struct event_match *em, unsigned *changes)
{
    const char *was[T_N];
    const char *want[T_N];
    texts_get(&im->pub, was);
    memcpy(want, was, sizeof(want));
    want[T_SOURCE] = ev->source;
    /* A full element sets every attribute, absent ones to NULL; a delta
     * only those it carries. */
    bool has_fixture = em->parts & EVENT_HAS_FIXTURE;
    const struct event_fixture *f = &em->fixture;
    const char *given[] = {f->sport, f->competition, f->home, f->away,
                           f->start}; /* T_SPORT .. T_START */
    for (int k = 0; k < 5; k++) {
        if (em->full || (has_fixture && given[k])) {
            want[T_SPORT + k] = has_fixture ? given[k] : NULL;
        }
    }
    const char *phase = (em->parts & EVENT_HAS_STATUS) ? em->phase : NULL;
    if (em->full || phase) {
        want[T_PHASE] = phase;
    }
    bool differ = false;
    for (int k = T_SOURCE; k < T_N; k++) {
        if (str_eq(want[k], was[k])) {
            continue;
        }
        differ = true;
        if (k == T_PHASE) {
            *changes |= MODEL__CH_STATUS;
        } else if (k != T_SOURCE) {
            *changes |= MODEL__CH_FIXTURE;
        }
    }
    return differ ? texts_replace(im, want) : 0;
}

/* ---- clock and score ----------------------------------------------------- */

static void apply_clock(struct match_image *img, const struct event_match *em,
                        unsigned *changes)
{
    int32_t seconds = img->clock_seconds;
    int8_t running = img->clock_running;
    bool has = em->parts & EVENT_HAS_CLOCK;
    if (em->full) {
        seconds = has ? em->clock_seconds : EVENT_ABSENT;
        running = has ? em->clock_running : EVENT_ABSENT;
    } else if (has) {
        if (em->clock_seconds != EVENT_ABSENT) {
            seconds = em->clock_seconds;
        }
        if (em->clock_running != EVENT_ABSENT) {
            running = em->clock_running;
        }
    }
    if (running != EVENT_ABSENT) {
        running = running != 0;
    }
    if (seconds != img->clock_seconds || running != img->clock_running) {
        *changes |= MODEL__CH_CLOCK;
    }
    img->clock_seconds = seconds;
    img->clock_running = running;
}

static void apply_score(struct match_image *img, const struct event_match *em,
                        unsigned *changes)
{
    bool has = em->parts & EVENT_HAS_SCORE;
    if (!has && !em->full) {
        return;
    }
    uint32_t home = has ? em->score_home : 0;
    uint32_t away = has ? em->score_away : 0;
    if (has != img->has_score || home != img->score_home ||
        away != img->score_away) {
        *changes |= MODEL__CH_SCORE;
    }
    img->has_score = has;
    img->score_home = home;
    img->score_away = away;
}

/* ---- incidents ----------------------------------------------------------- */

/* One incident while an element is applied. */
struct work {
    struct match_incident inc; /* strings in the old list or the event */
    int32_t old;               /* index in the old list; -1: new */
    bool dead;                 /* deleted (a tombstone keeps its place) */
    bool upsert;               /* differs from the old one: reported */
};

/* What apply_incidents() reports; arena holds the arrays. */
struct touched {
    void *arena; /* free() it */
    const struct match_incident **upserted;
    uint32_t n_upserted;
    const char **deleted;
    uint32_t n_deleted;
};

static void incident_blank(struct match_incident *in, const char *id)
{
    *in = (struct match_incident){.id = id,
                                  .minute = EVENT_ABSENT,
                                  .stoppage = EVENT_ABSENT,
                                  .team = EVENT_TEAM_NONE,
                                  .confirmed = EVENT_ABSENT};
}

/* action="update": the attributes @ei carries. */
static void incident_merge(struct match_incident *in,
                           const struct event_incident *ei)
{
    if (ei->type) {
        in->type = ei->type;
    }
    if (ei->player) {
        in->player = ei->player;
    }
    if (ei->assist) {
        in->assist = ei->assist;
    }
    if (ei->minute != EVENT_ABSENT) {
        in->minute = ei->minute;
    }
    if (ei->stoppage != EVENT_ABSENT) {
        in->stoppage = ei->stoppage;
    }
    if (ei->team != EVENT_TEAM_NONE) {
        in->team = ei->team;
    }
    if (ei->confirmed != EVENT_ABSENT) {
        in->confirmed = ei->confirmed != 0;
    }
}

static bool incident_eq(const struct match_incident *a,
                        const struct match_incident *b)
{
    return a->minute == b->minute && a->stoppage == b->stoppage &&
           a->team == b->team && a->confirmed == b->confirmed &&
           str_eq(a->id, b->id) && str_eq(a->type, b->type) &&
           str_eq(a->player, b->player) && str_eq(a->assist, b->assist);
}

/* Bytes of @in's strings, NULs included. */
static size_t incident_bytes(const struct match_incident *in)
{
    return str_size(in->id) + str_size(in->type) + str_size(in->player) +
           str_size(in->assist);
}

/* Copies @src to @dst with its strings at *@at (moved past them). */
static void incident_copy(struct match_incident *dst,
                          const struct match_incident *src, char **at)
{
    *dst = *src;
    dst->id = stash(at, src->id);
    dst->type = stash(at, src->type);
    dst->player = stash(at, src->player);
    dst->assist = stash(at, src->assist);
}

/* Returns a new list of @n items with @bytes of room for their strings
 * after the array (refs 1), or NULL when out of memory. */
static struct ilist *list_new(uint32_t n, size_t bytes)
{
    struct ilist *l =
        model__alloc(sizeof(*l) + n * sizeof(l->items[0]) + bytes);
    if (!l) {
        return NULL;
    }
    atomic_init(&l->refs, 1);
    l->n = n;
    return l;
}

/* Makes @l (consumed; NULL: none) @im's incident list. */
static void image_set_list(struct image *im, struct ilist *l)
{
    list_unref(im->list);
    im->list = l;
    im->pub.incidents = l ? l->items : NULL;
    im->pub.n_incidents = l ? l->n : 0;
}

/*
 * Finding an incident by id: a scan for short lists, an open-addressing
 * index past INDEX_MIN, so that a full message listing thousands of
 * incidents costs linear time, not quadratic. An index works on any array
 * whose items start with a struct match_incident.
 */
#define INDEX_MIN 16

struct index {
    const char *base; /* the items */
    size_t stride;    /* bytes from one item to the next */
    uint32_t n;       /* items */
    uint32_t *slots;  /* item + 1; 0: empty */
    uint32_t mask;    /* slots - 1; 0: no slots, scan */
};

/* Slots an index of up to @n items uses; 0: none (it scans). */
static uint32_t index_slots(uint32_t n)
{
    if (n <= INDEX_MIN) {
        return 0;
    }
    uint32_t size = 64;
    while (size < 2 * n) {
        size *= 2;
    }
    return size;
}

static const char *index_id(const struct index *ix, uint32_t k)
{
    const struct match_incident *in =
        (const void *)(ix->base + (size_t)k * ix->stride);
    return in->id;
}

static uint32_t hash_id(const char *id)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (; *id; id++) {
        h = (h ^ (unsigned char)*id) * 16777619u;
    }
    return h;
}

/* Adds item @k, already in the array, to @ix. */
static void index_add(struct index *ix, uint32_t k)
{
    if (ix->mask == 0) {
        return;
    }
    uint32_t i = hash_id(index_id(ix, k)) & ix->mask;
    while (ix->slots[i] != 0) {
        i = (i + 1) & ix->mask;
    }
    ix->slots[i] = k + 1;
}

/* Sets up @ix over the @n items at @base with @n_slots @slots (from
 * index_slots() of the most items it will hold). */
static void index_init(struct index *ix, const void *base, size_t stride,
                       uint32_t n, uint32_t *slots, uint32_t n_slots)
{
    *ix = (struct index){.base = base,
                         .stride = stride,
                         .slots = slots,
                         .mask = n_slots ? n_slots - 1 : 0};
    if (n_slots > 0) {
        memset(slots, 0, n_slots * sizeof(slots[0]));
    }
    for (; ix->n < n; ix->n++) {
        index_add(ix, ix->n);
    }
}

/* The index of the item with @id, or -1. */
static int32_t index_find(const struct index *ix, const char *id)
{
    if (ix->mask == 0) {
        for (uint32_t k = 0; k < ix->n; k++) {
            if (strcmp(index_id(ix, k), id) == 0) {
                return (int32_t)k;
            }
        }
        return -1;
    }
    for (uint32_t i = hash_id(id) & ix->mask;; i = (i + 1) & ix->mask) {
        uint32_t k = ix->slots[i];
        if (k == 0) {
            return -1;
        }
        if (strcmp(index_id(ix, k - 1), id) == 0) {
            return (int32_t)(k - 1);
        }
    }
}

/* Runs the element's incident actions over the items @ix indexes (room
 * for all of them). */
static void run_actions(struct work *w, struct index *ix,
                        const struct event_match *em)
{
    for (uint32_t i = 0; i < em->n_incidents; i++) {
        const struct event_incident *ei = &em->incidents[i];
        int32_t k = index_find(ix, ei->id);
        if (ei->action == EVENT_ACTION_DELETE) {
            if (k >= 0) {
                w[k].dead = true;
            }
            continue;
        }
        if (k < 0) {
            k = (int32_t)ix->n++;
            w[k].inc.id = ei->id;
            w[k].old = -1;
            w[k].dead = true;
            index_add(ix, (uint32_t)k);
        }
        /* A new id, or one deleted earlier in this element, starts
         * blank; an update merges into a live one. */
        if (w[k].dead || ei->action != EVENT_ACTION_UPDATE) {
            incident_blank(&w[k].inc, ei->id);
            w[k].dead = false;
        }
        incident_merge(&w[k].inc, ei);
    }
}

/*
 * Applies the element's incidents to @im (which shares the old list).
 * A full element starts from no incidents; each old incident that is not
 * there at the end is deleted. Fills @t. Returns 0 or -ENOMEM (@t->arena
 * may still need free()).
 */
static int apply_incidents(struct image *im, const struct match_image *old,
                           const struct event_match *em, struct touched *t)
{
    uint32_t old_n = old->n_incidents;
    uint32_t room = (em->full ? 0 : old_n) + em->n_incidents;
    if (room == 0 && old_n == 0) {
        return 0;
    }
    uint32_t work_slots = index_slots(room);
    uint32_t old_slots = em->full ? index_slots(old_n) : 0;
    size_t size = (size_t)room * (sizeof(struct work) + sizeof(void *)) +
                  (size_t)old_n * sizeof(char *) +
                  ((size_t)work_slots + old_slots) * sizeof(uint32_t) + old_n;
    t->arena = model__alloc(size);
    if (!t->arena) {
        return -ENOMEM;
    }
    struct work *w = t->arena;
    t->upserted = (const struct match_incident **)(w + room);
    t->deleted = (const char **)(t->upserted + room);
    uint32_t *slots = (uint32_t *)(t->deleted + old_n);
    bool *kept = (bool *)(slots + work_slots + old_slots);
    memset(kept, 0, old_n);

    uint32_t n = 0;
    if (!em->full) {
        for (; n < old_n; n++) {
            w[n] = (struct work){.inc = old->incidents[n], .old = (int32_t)n};
        }
    }
    struct index ix;
    index_init(&ix, w, sizeof(w[0]), n, slots, work_slots);
    run_actions(w, &ix, em);
    n = ix.n;
    struct index old_ix;
    index_init(&old_ix, old->incidents, sizeof(old->incidents[0]), old_n,
               slots + work_slots, old_slots);

    uint32_t n_live = 0;
    size_t bytes = 0;
    bool same = true; /* the old list, unchanged and in order */
    for (uint32_t k = 0; k < n; k++) {
        struct work *x = &w[k];
        if (x->dead) {
            continue;
        }
        if (em->full) {
            x->old = index_find(&old_ix, x->inc.id);
        }
        x->upsert = true;
        x->inc.version = im->pub.version;
        if (x->old >= 0) {
            const struct match_incident *was = &old->incidents[x->old];
            kept[x->old] = true;
            if (incident_eq(&x->inc, was)) {
                x->upsert = false;
                x->inc.version = was->version;
            }
        }
        if (x->upsert || x->old != (int32_t)n_live) {
            same = false;
        }
        n_live++;
        bytes += incident_bytes(&x->inc);
    }
    for (uint32_t k = 0; k < old_n; k++) {
        if (!kept[k]) {
            t->deleted[t->n_deleted++] = old->incidents[k].id;
        }
    }
    if (same && t->n_deleted == 0) {
        return 0; /* @im keeps sharing the old list */
    }

    struct ilist *l = NULL;
    if (n_live > 0) {
        l = list_new(n_live, bytes);
        if (!l) {
            return -ENOMEM;
        }
        char *at = (char *)&l->items[n_live];
        uint32_t p = 0;
        for (uint32_t k = 0; k < n; k++) {
            if (w[k].dead) {
                continue;
            }
            struct match_incident *in = &l->items[p++];
            incident_copy(in, &w[k].inc, &at);
            if (w[k].upsert) {
                t->upserted[t->n_upserted++] = in;
            }
        }
    }
    image_set_list(im, l);
    return 0;
}

/* ---- images and updates -------------------------------------------------- */

/*
 * Sets @dst (not yet shared; refs 1) to @src's values. Not a struct copy:
 * that would read @src's reference count while other threads change it.
 */
static void image_copy(struct match_image *dst, const struct match_image *src)
{
    *dst = (struct match_image){.id = src->id,
                                .version = src->version,
                                .msgnr = src->msgnr,
                                .has_msgnr = src->has_msgnr,
                                .source = src->source,
                                .sport = src->sport,
                                .competition = src->competition,
                                .home = src->home,
                                .away = src->away,
                                .start = src->start,
                                .phase = src->phase,
                                .clock_seconds = src->clock_seconds,
                                .clock_running = src->clock_running,
                                .has_score = src->has_score,
                                .score_home = src->score_home,
                                .score_away = src->score_away,
                                .feed = src->feed,
                                .gap = src->gap,
                                .updated_ms = src->updated_ms,
                                .incidents = src->incidents,
                                .n_incidents = src->n_incidents};
    atomic_init(&dst->refs, 1);
}

/* Returns a new image: @old's state at the next version, sharing its blobs
 * (owned reference: refs 1), or NULL when out of memory. */
static struct image *image_next(const struct match_image *old, int64_t now_ms)
{
    const struct image *was = container_of(old, const struct image, pub);
    struct image *im = model__alloc(sizeof(*im));
    if (!im) {
        return NULL;
    }
    image_copy(&im->pub, old);
    im->pub.version = old->version + 1;
    im->pub.updated_ms = now_ms;
    im->texts = was->texts;
    hold(&im->texts->refs);
    im->list = was->list;
    if (im->list) {
        hold(&im->list->refs);
    }
    return im;
}

/* Per-thread scratch for the JSON: written once, then copied into the
 * update with its exact size. The thread's exit frees it. */
#define SCRATCH_START 4096
#define SCRATCH_KEEP  (64 * 1024) /* larger ones are freed after use */

static _Thread_local struct actor_buf scratch;
static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;
static bool scratch_key_ok;

static void scratch_release(void *b)
{
    actor_buf_release(b);
}

static void scratch_key_create(void)
{
    scratch_key_ok = pthread_key_create(&scratch_key, scratch_release) == 0;
}

/* Returns the calling thread's empty scratch buffer, or NULL. */
static struct actor_buf *scratch_get(void)
{
    struct actor_buf *b = &scratch;
    if (b->cap == 0) {
        pthread_once(&scratch_once, scratch_key_create);
        if (scratch_key_ok) {
            pthread_setspecific(scratch_key, b);
        }
        b->data = model__alloc(SCRATCH_START);
        if (!b->data) {
            return NULL;
        }
        b->cap = SCRATCH_START;
    }
    actor_buf_reset(b);
    return b;
}

static void scratch_put(struct actor_buf *b)
{
    if (b->cap > SCRATCH_KEEP) {
        actor_buf_release(b);
    }
}

/*
 * Makes the update for @im (consumed in every case) with @json and the
 * store's lists (copied). Returns a new update or NULL (out of memory).
 */
static struct update *update_new(struct image *im, enum update_kind kind,
                                 int64_t sent_ms, const struct actor_buf *json,
                                 const struct touched *t)
{
    size_t strings = 0;
    for (uint32_t k = 0; k < t->n_deleted; k++) {
        strings += strlen(t->deleted[k]) + 1;
    }
    size_t size = sizeof(struct update) +
                  (size_t)t->n_upserted * sizeof(t->upserted[0]) +
                  (size_t)t->n_deleted * sizeof(t->deleted[0]) + strings +
                  UPDATE_HEADROOM + json->len + 1;
    struct update *up = model__alloc(size);
    if (!up) {
        match_image_unref(&im->pub);
        return NULL;
    }
    const struct match_incident **ups =
        (const struct match_incident **)(up + 1);
    const char **dels = (const char **)(ups + t->n_upserted);
    char *at = (char *)(dels + t->n_deleted);
    for (uint32_t k = 0; k < t->n_upserted; k++) {
        ups[k] = t->upserted[k];
    }
    for (uint32_t k = 0; k < t->n_deleted; k++) {
        dels[k] = stash(&at, t->deleted[k]);
    }
    char *text = at + UPDATE_HEADROOM;
    memcpy(text, json->data, json->len + 1);
    atomic_init(&up->refs, 1);
    up->kind = kind;
    up->image = &im->pub;
    up->json = text;
    up->json_len = json->len;
    up->sent_ms = sent_ms;
    up->upserted = ups;
    up->n_upserted = t->n_upserted;
    up->deleted = dels;
    up->n_deleted = t->n_deleted;
    return up;
}

/*
 * Serializes the change to @im, makes its update and makes @im the match's
 * image. Consumes @im in every case. Returns 0 or -ENOMEM (@m unchanged).
 */
static int publish(struct model__match *m, struct image *im, bool full,
                   unsigned changes, const char *sent, int64_t sent_ms,
                   const struct touched *t, struct update **out)
{
    struct actor_buf *b = scratch_get();
    if (!b) {
        match_image_unref(&im->pub);
        return -ENOMEM;
    }
    if (full) {
        match_image_snapshot_json(&im->pub, b);
    } else {
        model__delta_json(b, &im->pub, changes, sent,
                          (const struct match_incident *const *)t->upserted,
                          t->n_upserted, (const char *const *)t->deleted,
                          t->n_deleted);
    }
    struct update *up = NULL;
    if (b->err == 0) {
        match_image_ref(&im->pub);
        up = update_new(im, full ? UPDATE_SNAPSHOT : UPDATE_DELTA, sent_ms, b,
                        t);
    }
    scratch_put(b);
    if (!up) {
        match_image_unref(&im->pub);
        return -ENOMEM;
    }
    match_image_unref(m->image);
    m->image = &im->pub;
    *out = up;
    return 0;
}

/* ---- the match ----------------------------------------------------------- */

static bool id_is_valid(const char *id)
{
    size_t len = strlen(id);
    return len > 0 && len <= EVENT_ID_MAX;
}

/* Returns a new image (refs 1, no incidents) with @fields' scalars and the
 * texts @want, or NULL when out of memory. */
static struct image *image_new(const struct match_image *fields,
                               const char *const want[T_N])
{
    struct image *im = model__alloc(sizeof(*im));
    if (!im) {
        return NULL;
    }
    *im = (struct image){0};
    image_copy(&im->pub, fields);
    im->pub.incidents = NULL;
    im->pub.n_incidents = 0;
    if (texts_replace(im, want) != 0) {
        free(im);
        return NULL;
    }
    return im;
}

int model__match_init(struct model__match *m, const char *id)
{
    *m = (struct model__match){0};
    if (!id_is_valid(id)) {
        return -EINVAL;
    }
    const struct match_image empty = {.clock_seconds = EVENT_ABSENT,
                                      .clock_running = EVENT_ABSENT,
                                      .feed = MATCH_FEED_LIVE};
    const char *want[T_N] = {[T_ID] = id};
    struct image *im = image_new(&empty, want);
    if (!im) {
        return -ENOMEM;
    }
    m->image = &im->pub;
    return 0;
}

int model__match_restore(struct model__match *m, const struct store_match *row)
{
    *m = (struct model__match){0};
    if (!id_is_valid(row->id) || row->version == 0) {
        return -EINVAL;
    }
    int8_t running = row->clock_running == 0 || row->clock_running == 1
                         ? row->clock_running
                         : EVENT_ABSENT;
    const struct match_image fields = {
        .version = row->version,
        .msgnr = row->msgnr,
        .has_msgnr = row->has_msgnr,
        .clock_seconds = row->clock_seconds,
        .clock_running = running,
        .has_score = row->has_score,
        .score_home = row->has_score ? row->score_home : 0,
        .score_away = row->has_score ? row->score_away : 0,
        .feed = row->feed <= MATCH_FEED_OFFLINE ? row->feed : MATCH_FEED_LIVE,
        .gap = row->gap,
        .updated_ms = row->updated_ms,
    };
    const char *want[T_N] = {
        [T_ID] = row->id,       [T_SOURCE] = row->source,
        [T_SPORT] = row->sport, [T_COMPETITION] = row->competition,
        [T_HOME] = row->home,   [T_AWAY] = row->away,
        [T_START] = row->start, [T_PHASE] = row->phase};
    struct image *im = image_new(&fields, want);
    if (!im) {
        return -ENOMEM;
    }
    if (row->n_incidents > 0) {
        size_t bytes = 0;
        for (uint32_t k = 0; k < row->n_incidents; k++) {
            bytes += incident_bytes(&row->incidents[k]);
        }
        struct ilist *l = list_new(row->n_incidents, bytes);
        if (!l) {
            match_image_unref(&im->pub);
            return -ENOMEM;
        }
        char *at = (char *)&l->items[l->n];
        for (uint32_t k = 0; k < l->n; k++) {
            incident_copy(&l->items[k], &row->incidents[k], &at);
        }
        image_set_list(im, l);
    }
    m->image = &im->pub;
    return 0;
}

void model__match_adopt(struct model__match *m, struct match_image *img)
{
    *m = (struct model__match){.image = img};
}

void model__match_set_gap(struct model__match *m)
{
    ACTOR_ASSERT(m->image->version == 0 &&
                 atomic_load(&m->image->refs) == 1); /* unpublished */
    m->image->gap = true;
}

int model__match_snapshot(const struct model__match *m, struct update **out)
{
    *out = NULL;
    struct actor_buf *b = scratch_get();
    if (!b) {
        return -ENOMEM;
    }
    match_image_snapshot_json(m->image, b);
    struct update *up = NULL;
    if (b->err == 0) {
        struct image *im =
            container_of(match_image_ref(m->image), struct image, pub);
        const struct touched none = {0};
        up = update_new(im, UPDATE_SNAPSHOT, EVENT_ABSENT, b, &none);
    }
    scratch_put(b);
    if (!up) {
        return -ENOMEM;
    }
    *out = up;
    return 0;
}

void model__match_release(struct model__match *m)
{
    match_image_unref(m->image);
    m->image = NULL;
}

int model__match_apply(struct model__match *m, const struct event *ev,
                       uint32_t i, int64_t now_ms, struct update **out)
{
    *out = NULL;
    if (i >= ev->n_matches) {
        return -EINVAL;
    }
    const struct event_match *em = &ev->matches[i];
    const struct match_image *old = m->image;
    if (strcmp(em->id, old->id) != 0) {
        return -EINVAL;
    }
    bool gap = false;
    if (em->has_msgnr && old->has_msgnr) {
        if (em->msgnr <= old->msgnr) {
            m->duplicates++;
            return MODEL__DUPLICATE;
        }
        gap = em->msgnr - old->msgnr > 1;
    }

    struct image *im = image_next(old, now_ms);
    if (!im) {
        return -ENOMEM;
    }
    struct match_image *img = &im->pub;
    unsigned changes = 0;
    if (em->has_msgnr) {
        img->msgnr = em->msgnr;
        img->has_msgnr = true;
    }
    /* A full message heals a gap, even one it jumps over itself. */
    img->gap = !em->full && (old->gap || gap);
    if (img->gap != old->gap) {
        changes |= MODEL__CH_GAP;
    }
    /* An element arrived, so its source is live. */
    img->feed = MATCH_FEED_LIVE;
    if (old->feed != MATCH_FEED_LIVE) {
        changes |= MODEL__CH_FEED;
    }
    apply_clock(img, em, &changes);
    apply_score(img, em, &changes);

    struct touched t = {0};
    int rc = apply_texts(im, ev, em, &changes);
    if (rc == 0 && (em->full || em->n_incidents > 0)) {
        rc = apply_incidents(im, old, em, &t);
    }
    if (rc == 0) {
        rc = publish(m, im, em->full, changes, ev->sent, ev->sent_ms, &t, out);
    } else {
        match_image_unref(img);
    }
    free(t.arena);
    if (rc != 0) {
        return rc;
    }
    if (gap) {
        m->gaps++;
        return MODEL__GAP;
    }
    return 0;
}

int model__match_feed(struct model__match *m, const char *source,
                      enum match_feed feed, int64_t now_ms, struct update **out)
{
    *out = NULL;
    const struct match_image *old = m->image;
    if (!old->source || strcmp(old->source, source) != 0 || old->feed == feed) {
        return MODEL__UNCHANGED;
    }
    struct image *im = image_next(old, now_ms);
    if (!im) {
        return -ENOMEM;
    }
    im->pub.feed = (uint8_t)feed;
    const struct touched none = {0};
    return publish(m, im, false, MODEL__CH_FEED, NULL, EVENT_ABSENT, &none,
                   out);
}
