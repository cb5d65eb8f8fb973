/* store/store_load.c - the start-up load as plain values, in one allocation. */
#include <errno.h>
#include <libpq-fe.h>
#include <stdalign.h>
#include <stdlib.h>
#include <string.h>

#include "ingest/event.h"
#include "store/store_impl.h"

/*
 * DESIGN
 * The load is built in two passes over the result sets: the first sizes
 * everything (arrays and every string), the second copies into a single
 * allocation laid out as
 *   struct store_load | matches[] | incidents[] | offsets[] | strings
 * so the model receives one value, frees it with one call, and nothing in
 * it points into libpq's results. Values are checked, not trusted: a row
 * the writer could not have written (a version of 0, a score above 2^32)
 * fails the load rather than build a match that never existed.
 */

enum {
    O_SOURCE,
    O_ACKED,
};
enum {
    M_ID,
    M_VERSION,
    M_MSGNR,
    M_SOURCE,
    M_SPORT,
    M_COMPETITION,
    M_HOME,
    M_AWAY,
    M_START,
    M_PHASE,
    M_CLOCK,
    M_RUNNING,
    M_SCORE_HOME,
    M_SCORE_AWAY,
    M_FEED,
    M_GAP,
    M_UPDATED,
    M_COLUMNS
};
enum {
    I_MATCH,
    I_ID,
    I_TYPE,
    I_TEAM,
    I_MINUTE,
    I_STOPPAGE,
    I_PLAYER,
    I_ASSIST,
    I_CONFIRMED,
    I_VERSION,
    I_COLUMNS
};

static size_t align_up(size_t n)
{
    const size_t a = alignof(max_align_t);
    return (n + a - 1) / a * a;
}

/* Strict unsigned decimal, at most @max. */
static bool parse_u64(const char *s, uint64_t max, uint64_t *out)
{
    if (!*s) {
        return false;
    }
    uint64_t v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9') {
            return false;
        }
        unsigned d = (unsigned)(*s - '0');
        if (v > (max - d) / 10) {
            return false;
        }
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

static bool parse_i64(const char *s, int64_t *out)
{
    bool neg = *s == '-';
    uint64_t v;
    if (!parse_u64(s + neg, (uint64_t)INT64_MAX, &v)) {
        return false;
    }
    *out = neg ? -(int64_t)v : (int64_t)v;
    return true;
}

/* NULL: EVENT_ABSENT; else 0..INT32_MAX. */
static bool parse_count(const PGresult *r, int row, int col, int32_t *out)
{
    uint64_t v;
    if (PQgetisnull(r, row, col)) {
        *out = EVENT_ABSENT;
        return true;
    }
    if (!parse_u64(PQgetvalue(r, row, col), INT32_MAX, &v)) {
        return false;
    }
    *out = (int32_t)v;
    return true;
}

static bool parse_clock(const char *s, int32_t *seconds)
{
    const char *colon = strchr(s, ':');
    uint64_t min, sec;
    if (!colon || colon == s || strlen(colon + 1) != 2) {
        return false;
    }
    char mm[12];
    size_t len = (size_t)(colon - s);
    if (len >= sizeof(mm)) {
        return false;
    }
    memcpy(mm, s, len);
    mm[len] = '\0';
    if (!parse_u64(mm, INT32_MAX / 60 - 1, &min) ||
        !parse_u64(colon + 1, 59, &sec)) {
        return false;
    }
    *seconds = (int32_t)(min * 60 + sec);
    return true;
}

/* Bytes the strings of @r's text columns @cols need. */
static size_t text_bytes(const PGresult *r, const int *cols, size_t n_cols)
{
    size_t total = 0;
    for (int row = 0; row < PQntuples(r); row++) {
        for (size_t c = 0; c < n_cols; c++) {
            if (!PQgetisnull(r, row, cols[c])) {
                total += (size_t)PQgetlength(r, row, cols[c]) + 1;
            }
        }
    }
    return total;
}

/* Copies a text cell into the string area; NULL stays NULL. */
static const char *take(char **area, const PGresult *r, int row, int col)
{
    if (PQgetisnull(r, row, col)) {
        return NULL;
    }
    size_t len = (size_t)PQgetlength(r, row, col);
    char *s = *area;
    memcpy(s, PQgetvalue(r, row, col), len + 1);
    *area += len + 1;
    return s;
}

static const int offset_text[] = {O_SOURCE};
static const int match_text[] = {M_ID,   M_SOURCE, M_SPORT, M_COMPETITION,
                                 M_HOME, M_AWAY,   M_START, M_PHASE};
static const int incident_text[] = {I_ID, I_TYPE, I_PLAYER, I_ASSIST};

#define N(a) (sizeof(a) / sizeof((a)[0]))

static bool fill_offset(struct store_offset *o, char **area, const PGresult *r,
                        int row)
{
    o->source = take(area, r, row, O_SOURCE);
    return o->source &&
           parse_u64(PQgetvalue(r, row, O_ACKED), INT64_MAX, &o->acked_seq);
}

static bool fill_match(struct store_match *m, char **area, const PGresult *r,
                       int row)
{
    m->id = take(area, r, row, M_ID);
    m->source = take(area, r, row, M_SOURCE);
    m->sport = take(area, r, row, M_SPORT);
    m->competition = take(area, r, row, M_COMPETITION);
    m->home = take(area, r, row, M_HOME);
    m->away = take(area, r, row, M_AWAY);
    m->start = take(area, r, row, M_START);
    m->phase = take(area, r, row, M_PHASE);
    if (!m->id ||
        !parse_u64(PQgetvalue(r, row, M_VERSION), INT64_MAX, &m->version) ||
        m->version == 0 ||
        !parse_i64(PQgetvalue(r, row, M_UPDATED), &m->updated_ms)) {
        return false;
    }
    m->has_msgnr = !PQgetisnull(r, row, M_MSGNR);
    if (m->has_msgnr &&
        !parse_u64(PQgetvalue(r, row, M_MSGNR), UINT64_MAX, &m->msgnr)) {
        return false;
    }
    m->clock_seconds = EVENT_ABSENT;
    if (!PQgetisnull(r, row, M_CLOCK) &&
        !parse_clock(PQgetvalue(r, row, M_CLOCK), &m->clock_seconds)) {
        return false;
    }
    m->clock_running = PQgetisnull(r, row, M_RUNNING)
                           ? EVENT_ABSENT
                           : PQgetvalue(r, row, M_RUNNING)[0] == 't';
    m->has_score = !PQgetisnull(r, row, M_SCORE_HOME) &&
                   !PQgetisnull(r, row, M_SCORE_AWAY);
    uint64_t home = 0, away = 0;
    if (m->has_score &&
        (!parse_u64(PQgetvalue(r, row, M_SCORE_HOME), UINT32_MAX, &home) ||
         !parse_u64(PQgetvalue(r, row, M_SCORE_AWAY), UINT32_MAX, &away))) {
        return false;
    }
    m->score_home = (uint32_t)home;
    m->score_away = (uint32_t)away;
    const char *feed = PQgetvalue(r, row, M_FEED);
    if (strcmp(feed, "live") == 0) {
        m->feed = MATCH_FEED_LIVE;
    } else if (strcmp(feed, "stale") == 0) {
        m->feed = MATCH_FEED_STALE;
    } else if (strcmp(feed, "offline") == 0) {
        m->feed = MATCH_FEED_OFFLINE;
    } else {
        return false;
    }
    m->gap = PQgetvalue(r, row, M_GAP)[0] == 't';
    return true;
}

static bool fill_incident(struct match_incident *inc, char **area,
                          const PGresult *r, int row)
{
    inc->id = take(area, r, row, I_ID);
    inc->type = take(area, r, row, I_TYPE);
    inc->player = take(area, r, row, I_PLAYER);
    inc->assist = take(area, r, row, I_ASSIST);
    const char *team =
        PQgetisnull(r, row, I_TEAM) ? "" : PQgetvalue(r, row, I_TEAM);
    if (strcmp(team, "home") == 0) {
        inc->team = EVENT_TEAM_HOME;
    } else if (strcmp(team, "away") == 0) {
        inc->team = EVENT_TEAM_AWAY;
    } else if (*team == '\0') {
        inc->team = EVENT_TEAM_NONE;
    } else {
        return false;
    }
    if (PQgetisnull(r, row, I_CONFIRMED)) {
        inc->confirmed = EVENT_ABSENT; /* the feed never said */
    } else {
        inc->confirmed = PQgetvalue(r, row, I_CONFIRMED)[0] == 't';
    }
    return inc->id && parse_count(r, row, I_MINUTE, &inc->minute) &&
           parse_count(r, row, I_STOPPAGE, &inc->stoppage) &&
           parse_u64(PQgetvalue(r, row, I_VERSION), INT64_MAX, &inc->version) &&
           inc->version > 0;
}

int store__load_build(struct pg_result *const sets[4], struct store_load **out)
{
    const PGresult *offs = sets[0], *mats = sets[1], *incs = sets[2];
    *out = NULL;
    if (PQnfields(offs) != 2 || PQnfields(mats) != M_COLUMNS ||
        PQnfields(incs) != I_COLUMNS || PQntuples(sets[3]) != 1) {
        return -EINVAL;
    }
    size_t n_off = (size_t)PQntuples(offs);
    size_t n_mat = (size_t)PQntuples(mats);
    size_t n_inc = (size_t)PQntuples(incs);
    size_t at_mat = align_up(sizeof(struct store_load));
    size_t at_inc = align_up(at_mat + n_mat * sizeof(struct store_match));
    size_t at_off = align_up(at_inc + n_inc * sizeof(struct match_incident));
    size_t at_str = at_off + n_off * sizeof(struct store_offset);
    size_t total = at_str + text_bytes(offs, offset_text, N(offset_text)) +
                   text_bytes(mats, match_text, N(match_text)) +
                   text_bytes(incs, incident_text, N(incident_text));
    char *mem = store__calloc(1, total);
    if (!mem) {
        return -ENOMEM;
    }
    struct store_load *load = (struct store_load *)mem;
    struct store_match *matches = (struct store_match *)(mem + at_mat);
    struct match_incident *incidents = (struct match_incident *)(mem + at_inc);
    struct store_offset *offsets = (struct store_offset *)(mem + at_off);
    char *area = mem + at_str;

    for (size_t i = 0; i < n_off; i++) {
        if (!fill_offset(&offsets[i], &area, offs, (int)i)) {
            goto out_invalid;
        }
    }
    /* Both sets are sorted by match id (byte order): a merge. */
    size_t j = 0;
    for (size_t i = 0; i < n_mat; i++) {
        struct store_match *m = &matches[i];
        if (!fill_match(m, &area, mats, (int)i)) {
            goto out_invalid;
        }
        m->incidents = &incidents[j];
        while (j < n_inc &&
               strcmp(PQgetvalue(incs, (int)j, I_MATCH), m->id) == 0) {
            if (!fill_incident(&incidents[j], &area, incs, (int)j)) {
                goto out_invalid;
            }
            j++;
            m->n_incidents++;
        }
    }
    if (j != n_inc) {
        goto out_invalid; /* an incident out of order: the query is wrong */
    }
    if (!parse_u64(PQgetvalue(sets[3], 0, 0), INT64_MAX, &load->rejected_id)) {
        goto out_invalid;
    }
    load->matches = matches;
    load->n_matches = n_mat;
    load->offsets = offsets;
    load->n_offsets = n_off;
    *out = load;
    return 0;

out_invalid:
    free(mem);
    return -EINVAL;
}

struct store_load *store__load_empty(void)
{
    return store__calloc(1, sizeof(struct store_load));
}

void store_load_free(struct store_load *load)
{
    free(load);
}

uint64_t store_load_acked(const struct store_load *load, const char *source)
{
    if (!load) {
        return 0;
    }
    size_t lo = 0, hi = load->n_offsets;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(load->offsets[mid].source, source);
        if (c == 0) {
            return load->offsets[mid].acked_seq;
        }
        if (c < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return 0;
}
