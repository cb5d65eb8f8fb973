/* tools/feedsim/feedsim_model.c - the reference model: what every match
 * must look like after the elements the simulator sent, by SFP/1's rules. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tools/feedsim/feedsim.h"

/*
 * DESIGN
 * Deliberately plain: owned strings, an array of incidents searched
 * linearly (a match has tens), a table of matches in first-seen order with
 * an open-addressing index by id. It serves as a test oracle, so each rule
 * of feed-protocol.md section 3 is one visible branch below, written from
 * the spec and not from the model stage.
 *
 * A `delta` child changes the attributes it carries and keeps the others
 * (the spec says so for clock's `running`; the same reading is applied to
 * every child). The simulator itself always sends whole children, so the
 * expected state does not depend on that reading.
 */

struct m_incident {
    char *id; /* owned, like every string here; NULL: absent */
    char *type;
    char *player;
    char *assist;
    int32_t minute; /* EVENT_ABSENT when absent */
    int32_t stoppage;
    int8_t team;      /* enum event_team */
    int8_t confirmed; /* EVENT_ABSENT, 0, 1 */
};

struct m_match {
    char *id;
    uint64_t msgnr; /* last applied, valid when has_msgnr */
    bool has_msgnr;
    bool has_fixture;
    bool has_status;
    bool has_clock;
    bool has_score;
    char *fixture[5]; /* sport, competition, home, away, start */
    char *phase;
    int32_t clock_seconds; /* EVENT_ABSENT when absent */
    int8_t running;        /* EVENT_ABSENT, 0, 1 */
    uint32_t score[2];
    struct m_incident *incs; /* live, first-seen order */
    size_t n_incs;
    size_t cap_incs;
};

struct feedsim_model {
    struct m_match **matches; /* first-seen order */
    size_t n;
    size_t cap;
    uint32_t *index;  /* open addressing: position + 1, 0 empty */
    size_t index_cap; /* a power of two, > 2 * n */
};

static uint64_t hash_id(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++) {
        h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    }
    return h;
}

/* Replaces *@dst with a copy of @src (NULL: absent). */
static int set_str(char **dst, const char *src)
{
    char *copy = NULL;
    if (src && !(copy = strdup(src))) {
        return -ENOMEM;
    }
    free(*dst);
    *dst = copy;
    return 0;
}

static void incident_release(struct m_incident *inc)
{
    free(inc->id);
    free(inc->type);
    free(inc->player);
    free(inc->assist);
}

static void match_clear(struct m_match *m)
{
    for (size_t i = 0; i < 5; i++) {
        free(m->fixture[i]);
        m->fixture[i] = NULL;
    }
    free(m->phase);
    m->phase = NULL;
    for (size_t i = 0; i < m->n_incs; i++) {
        incident_release(&m->incs[i]);
    }
    m->n_incs = 0;
    m->has_fixture = m->has_status = m->has_clock = m->has_score = false;
    m->clock_seconds = EVENT_ABSENT;
    m->running = EVENT_ABSENT;
}

static void match_free(struct m_match *m)
{
    if (!m) {
        return;
    }
    match_clear(m);
    free(m->incs);
    free(m->id);
    free(m);
}

struct feedsim_model *feedsim_model_new(void)
{
    return calloc(1, sizeof(struct feedsim_model));
}

void feedsim_model_free(struct feedsim_model *m)
{
    if (!m) {
        return;
    }
    for (size_t i = 0; i < m->n; i++) {
        match_free(m->matches[i]);
    }
    free(m->matches);
    free(m->index);
    free(m);
}

static struct m_match *find(const struct feedsim_model *m, const char *id)
{
    if (m->index_cap == 0) {
        return NULL;
    }
    size_t mask = m->index_cap - 1;
    for (size_t i = hash_id(id) & mask; m->index[i]; i = (i + 1) & mask) {
        struct m_match *x = m->matches[m->index[i] - 1];
        if (strcmp(x->id, id) == 0) {
            return x;
        }
    }
    return NULL;
}

static int grow_index(struct feedsim_model *m)
{
    size_t cap = m->index_cap ? m->index_cap * 2 : 64;
    uint32_t *index = calloc(cap, sizeof(*index));
    if (!index) {
        return -ENOMEM;
    }
    for (size_t k = 0; k < m->n; k++) {
        size_t i = hash_id(m->matches[k]->id) & (cap - 1);
        while (index[i]) {
            i = (i + 1) & (cap - 1);
        }
        index[i] = (uint32_t)k + 1;
    }
    free(m->index);
    m->index = index;
    m->index_cap = cap;
    return 0;
}

static struct m_match *add_match(struct feedsim_model *m, const char *id)
{
    if (2 * (m->n + 1) > m->index_cap && grow_index(m) != 0) {
        return NULL;
    }
    if (FEEDSIM_MORE(m->matches, m->n, m->cap) != 0) {
        return NULL;
    }
    struct m_match *x = calloc(1, sizeof(*x));
    if (!x || !(x->id = strdup(id))) {
        free(x);
        return NULL;
    }
    x->clock_seconds = EVENT_ABSENT;
    x->running = EVENT_ABSENT;
    size_t i = hash_id(id) & (m->index_cap - 1);
    while (m->index[i]) {
        i = (i + 1) & (m->index_cap - 1);
    }
    m->matches[m->n] = x;
    m->index[i] = (uint32_t)++m->n;
    return x;
}

static struct m_incident *find_incident(struct m_match *x, const char *id)
{
    for (size_t i = 0; i < x->n_incs; i++) {
        if (strcmp(x->incs[i].id, id) == 0) {
            return &x->incs[i];
        }
    }
    return NULL;
}

static struct m_incident *add_incident(struct m_match *x, const char *id)
{
    if (FEEDSIM_MORE(x->incs, x->n_incs, x->cap_incs) != 0) {
        return NULL;
    }
    struct m_incident *inc = &x->incs[x->n_incs];
    *inc = (struct m_incident){
        .minute = EVENT_ABSENT,
        .stoppage = EVENT_ABSENT,
        .team = EVENT_TEAM_NONE,
        .confirmed = EVENT_ABSENT,
    };
    if (!(inc->id = strdup(id))) {
        return NULL;
    }
    x->n_incs++;
    return inc;
}

/* Sets the attributes @in carries; with @whole, the others become absent
 * (an insert replaces the whole incident). */
static int merge_incident(struct m_incident *inc,
                          const struct event_incident *in, bool whole)
{
    int rc = 0;
    if (whole || in->type) {
        rc |= set_str(&inc->type, in->type);
    }
    if (whole || in->player) {
        rc |= set_str(&inc->player, in->player);
    }
    if (whole || in->assist) {
        rc |= set_str(&inc->assist, in->assist);
    }
    if (whole || in->minute != EVENT_ABSENT) {
        inc->minute = in->minute;
    }
    if (whole || in->stoppage != EVENT_ABSENT) {
        inc->stoppage = in->stoppage;
    }
    if (whole || in->team != EVENT_TEAM_NONE) {
        inc->team = in->team;
    }
    if (whole || in->confirmed != EVENT_ABSENT) {
        inc->confirmed = in->confirmed;
    }
    return rc ? -ENOMEM : 0;
}

static int apply_incident(struct m_match *x, const struct event_incident *in)
{
    struct m_incident *inc = find_incident(x, in->id);
    if (in->action == EVENT_ACTION_DELETE) {
        if (inc) {
            size_t i = (size_t)(inc - x->incs);
            incident_release(inc);
            memmove(inc, inc + 1, (x->n_incs - i - 1) * sizeof(*inc));
            x->n_incs--;
        }
        return 0;
    }
    /* insert and update both add an unknown id; a known one keeps its
     * first-seen place. */
    if (!inc && !(inc = add_incident(x, in->id))) {
        return -ENOMEM;
    }
    return merge_incident(inc, in, in->action == EVENT_ACTION_INSERT);
}

int feedsim_model_apply(struct feedsim_model *m, const struct event_match *el)
{
    struct m_match *x = find(m, el->id);
    if (!x && !(x = add_match(m, el->id))) {
        return -ENOMEM;
    }
    if (el->has_msgnr && x->has_msgnr && el->msgnr <= x->msgnr) {
        return FEEDSIM_SKIPPED;
    }
    if (el->full) {
        match_clear(x);
    }
    int rc = 0;
    if (el->parts & EVENT_HAS_FIXTURE) {
        const char *given[5] = {el->fixture.sport, el->fixture.competition,
                                el->fixture.home, el->fixture.away,
                                el->fixture.start};
        x->has_fixture = true;
        for (size_t i = 0; i < 5; i++) {
            if (given[i]) {
                rc |= set_str(&x->fixture[i], given[i]);
            }
        }
    }
    if (el->parts & EVENT_HAS_STATUS) {
        x->has_status = true;
        if (el->phase) {
            rc |= set_str(&x->phase, el->phase);
        }
    }
    if (el->parts & EVENT_HAS_CLOCK) {
        x->has_clock = true;
        if (el->clock_seconds != EVENT_ABSENT) {
            x->clock_seconds = el->clock_seconds;
        }
        if (el->clock_running != EVENT_ABSENT) {
            x->running = el->clock_running;
        }
    }
    if (el->parts & EVENT_HAS_SCORE) {
        x->has_score = true;
        x->score[0] = el->score_home;
        x->score[1] = el->score_away;
    }
    for (uint32_t i = 0; i < el->n_incidents && rc == 0; i++) {
        rc = apply_incident(x, &el->incidents[i]);
    }
    if (rc != 0) {
        return -ENOMEM;
    }
    if (el->has_msgnr) {
        x->msgnr = el->msgnr;
        x->has_msgnr = true;
    }
    return 0;
}

/* ---- JSON --------------------------------------------------------------- */

/* Writes `"key":` after a comma when *@first is false. */
static void key(struct actor_buf *b, bool *first, const char *k)
{
    if (!*first) {
        actor_buf_char(b, ',');
    }
    *first = false;
    actor_buf_json_str(b, k, strlen(k));
    actor_buf_char(b, ':');
}

static void str_field(struct actor_buf *b, bool *first, const char *k,
                      const char *v)
{
    if (v) {
        key(b, first, k);
        actor_buf_json_str(b, v, strlen(v));
    }
}

static void int_field(struct actor_buf *b, bool *first, const char *k,
                      long long v)
{
    if (v != EVENT_ABSENT) {
        key(b, first, k);
        actor_buf_printf(b, "%lld", v);
    }
}

static void incident_json(struct actor_buf *b, const struct m_incident *inc)
{
    bool first = true;
    actor_buf_char(b, '{');
    str_field(b, &first, "id", inc->id);
    str_field(b, &first, "type", inc->type);
    str_field(b, &first, "team",
              inc->team == EVENT_TEAM_HOME   ? "home"
              : inc->team == EVENT_TEAM_AWAY ? "away"
                                             : NULL);
    int_field(b, &first, "minute", inc->minute);
    int_field(b, &first, "stoppage", inc->stoppage);
    str_field(b, &first, "player", inc->player);
    str_field(b, &first, "assist", inc->assist);
    if (inc->confirmed != EVENT_ABSENT) {
        key(b, &first, "confirmed");
        actor_buf_str(b, inc->confirmed ? "true" : "false");
    }
    actor_buf_char(b, '}');
}

static void match_json(struct actor_buf *b, const struct m_match *x)
{
    static const char *const fixture_keys[5] = {"sport", "competition", "home",
                                                "away", "start"};
    bool first = true;
    actor_buf_char(b, '{');
    str_field(b, &first, "id", x->id);
    if (x->has_fixture) {
        bool f = true;
        key(b, &first, "fixture");
        actor_buf_char(b, '{');
        for (size_t i = 0; i < 5; i++) {
            str_field(b, &f, fixture_keys[i], x->fixture[i]);
        }
        actor_buf_char(b, '}');
    }
    if (x->has_status) {
        bool f = true;
        key(b, &first, "status");
        actor_buf_char(b, '{');
        str_field(b, &f, "phase", x->phase);
        actor_buf_char(b, '}');
    }
    if (x->has_clock) {
        bool f = true;
        key(b, &first, "clock");
        actor_buf_char(b, '{');
        if (x->clock_seconds != EVENT_ABSENT) {
            key(b, &f, "time");
            actor_buf_printf(b, "\"%02d:%02d\"", x->clock_seconds / 60,
                             x->clock_seconds % 60);
        }
        if (x->running != EVENT_ABSENT) {
            key(b, &f, "running");
            actor_buf_str(b, x->running ? "true" : "false");
        }
        actor_buf_char(b, '}');
    }
    if (x->has_score) {
        key(b, &first, "score");
        actor_buf_printf(b, "{\"home\":%u,\"away\":%u}", x->score[0],
                         x->score[1]);
    }
    key(b, &first, "incidents");
    actor_buf_char(b, '[');
    for (size_t i = 0; i < x->n_incs; i++) {
        if (i > 0) {
            actor_buf_char(b, ',');
        }
        incident_json(b, &x->incs[i]);
    }
    actor_buf_str(b, "]}");
}

void feedsim_model_json(const struct feedsim_model *m, struct actor_buf *out)
{
    actor_buf_char(out, '{');
    for (size_t i = 0; i < m->n; i++) {
        const struct m_match *x = m->matches[i];
        if (i > 0) {
            actor_buf_char(out, ',');
        }
        actor_buf_json_str(out, x->id, strlen(x->id));
        actor_buf_char(out, ':');
        match_json(out, x);
    }
    actor_buf_char(out, '}');
}

int feedsim_model_match_json(const struct feedsim_model *m, const char *id,
                             struct actor_buf *out)
{
    const struct m_match *x = find(m, id);
    if (!x) {
        return -ENOENT;
    }
    match_json(out, x);
    return 0;
}
