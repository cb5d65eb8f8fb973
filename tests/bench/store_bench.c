/* tests/bench/store_bench.c - the store's batch writer against a raw COPY of
 * the same rows, in the same database, in the same run. */
#include <errno.h>
#include <libpq-fe.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ingest/event.h"
#include "ingest/ingest_impl.h"
#include "model/model_impl.h"
#include "store/store_impl.h"
#include "tests/pgtemp.h"

/*
 * DESIGN
 * The workload is generated before any clock starts: events from a few
 * sources (one match element each, two for one event in ten, as feedsim
 * sends), every element an applied change to one of the matches (a delta,
 * the match's image; one in twenty writes an incident, one in a hundred
 * removes one), one rejected document in 2,000 events. The timed part is what
 * the store actor does with them: track completion, encode into the batch,
 * write the batch whenever it reaches its row limit, one transaction each.
 *
 * The limit: every row the writer left in the six tables is read back
 * (COPY TO, binary) and COPYed into empty copies of the same tables (same
 * columns, indexes, constraints) in one transaction. Both end with a
 * durable COMMIT on the same server, so the ratio is what batching, upserts
 * and per-batch commits cost over the bare minimum. Rows per second count
 * the rows in the final tables, the same number on both sides.
 *
 * Fairness on a shared machine: a first, untimed writer pass creates the
 * WAL segments and warms the caches (otherwise the writer pays for WAL
 * files the raw COPY then recycles); then each round runs the writer and
 * the raw COPY back to back, each after a checkpoint. The ratio is the
 * median of the rounds' ratios (each pair ran under the same conditions);
 * rates and latencies are the best round's.
 *
 * Three profiles. The headline is feedsim's defaults: one source, 10
 * matches, batches of at most its window (1000 unacknowledged events, about
 * 2,200 rows). "big": four sources, batches of 10,000 rows (what a batch
 * grows to when several sources send at once). "wide": the same with 500
 * matches, the cost of many matches: each batch rewrites the matches row
 * (jsonb snapshot) of every match it touched.
 *
 * The actor profile runs the store actor itself, on its own thread, fed
 * the way the pipeline feeds it: per source an actor that keeps a window
 * of events in flight (the row, then one message per match element, as
 * the source and the match actors send them), and sends more as acks come
 * back. Its events are ingest's (parsed from feedsim-like XML) and its
 * updates the model's own (model__match_apply), made before the clock
 * starts. The time runs from the first message to the last ack,
 * and the limit is again a raw COPY of exactly the rows it left. Latency
 * is each event's, from its row being sent to the ack that covered it.
 *
 *   store_bench [EVENTS]      events per profile (default 40000)
 *   STORE_BENCH_FSYNC=off     run the server without fsync
 *   STORE_BENCH_ONLY=writer   only the writer profiles (or =actor)
 *   STORE_BENCH_WINDOW=N      the actor profile's window per source
 *
 * By Little's law the actor profile's latency is its events in flight
 * (sources x window) over its rate: the window trades latency for batch
 * size, as it does in the pipeline.
 */

#define MAX_SOURCES 4
#define MAX_MATCHES 500
#define ROUNDS      3
#define BASE_MS     1795000000000LL

struct profile {
    const char *name; /* "" for the headline figures */
    int sources;
    int matches;
    uint32_t batch_rows;
};

static const char *const tables[] = {"feed_events",        "match_updates",
                                     "rejected_documents", "matches",
                                     "incidents",          "source_offsets"};
#define N_TABLES (sizeof(tables) / sizeof(tables[0]))

struct element {
    struct match_image img;
    struct match_incident inc;
    const struct match_incident *upserted[1];
    const char *deleted[1];
    struct update up;
    char *json;
    char *snapshot; /* what match_image_json would write */
    size_t snapshot_len;
};

struct bench_event {
    struct event ev;
    struct element *el[2];
    char *raw;
    bool rejected; /* a rejected document that used up the seq instead */
};

struct match_state {
    uint64_t version;
    uint32_t home, away;
    int32_t clock;
    uint32_t n_incidents; /* incident ids 0 .. n-1 have been used */
    bool live[16];
};

static char source_names[MAX_SOURCES][16];
static char match_ids[MAX_MATCHES][24];
static char incident_ids[MAX_MATCHES][16][16];
static struct match_state matches[MAX_MATCHES];
static uint64_t rng;

static uint32_t rnd(uint32_t n)
{
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return (uint32_t)((rng * 2685821657736338717ull) >> 33) % n;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU seconds (user + system) process @pid has used: the server backend's
 * own work, whatever else the machine runs meanwhile. */
static double cpu_s(int pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f) {
        return 0;
    }
    char buf[1024];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')');
    unsigned long long utime = 0, stime = 0;
    if (!p || sscanf(p + 2,
                     "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu "
                     "%llu",
                     &utime, &stime) != 2) {
        return 0;
    }
    return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

static struct pgtemp cluster;

static void die(const char *what, const char *why)
{
    fprintf(stderr, "store_bench: %s: %s\n", what, why);
    pgtemp_stop(&cluster);
    exit(1);
}

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n, size);
    if (!p) {
        die("calloc", strerror(errno));
    }
    return p;
}

static char *xstrdup(const char *s)
{
    char *d = strdup(s);
    if (!d) {
        die("strdup", strerror(errno));
    }
    return d;
}

/* ---- the workload -------------------------------------------------------- */

static struct element *make_element(uint32_t k, const char *source,
                                    int64_t when)
{
    struct match_state *m = &matches[k];
    struct element *el = xcalloc(1, sizeof(*el));
    m->version++;
    m->clock = (m->clock + 7) % (90 * 60);
    if (rnd(20) == 0) {
        *(rnd(2) ? &m->home : &m->away) += 1;
    }
    el->img = (struct match_image){
        .id = match_ids[k],
        .version = m->version,
        .msgnr = m->version,
        .has_msgnr = true,
        .source = source,
        .sport = "soccer",
        .competition = "Premier League",
        .home = "Arsenal",
        .away = "Chelsea",
        .start = "2026-11-21T15:00:00Z",
        .phase = m->clock < 45 * 60 ? "first_half" : "second_half",
        .clock_seconds = m->clock,
        .clock_running = 1,
        .has_score = true,
        .score_home = m->home,
        .score_away = m->away,
        .feed = MATCH_FEED_LIVE,
        .updated_ms = when,
    };
    atomic_init(&el->img.refs, 1);
    el->up.kind = UPDATE_DELTA;
    el->up.image = &el->img;
    el->up.upserted = el->upserted;
    el->up.deleted = el->deleted;
    uint32_t roll = rnd(100);
    char incident_json[256] = "";
    if (roll < 5 && m->n_incidents < 16) {
        uint32_t i = rnd(m->n_incidents + 1);
        if (i == m->n_incidents) {
            m->n_incidents++;
        }
        m->live[i] = true;
        el->inc = (struct match_incident){
            .id = incident_ids[k][i],
            .type = "goal",
            .player = "B. Saka",
            .assist = "M. Odegaard",
            .minute = m->clock / 60,
            .stoppage = EVENT_ABSENT,
            .team = EVENT_TEAM_HOME,
            .confirmed = (int8_t)rnd(2),
            .version = m->version,
        };
        el->upserted[0] = &el->inc;
        el->up.n_upserted = 1;
        snprintf(incident_json, sizeof(incident_json),
                 "{\"id\":\"%s\",\"type\":\"goal\",\"team\":\"home\","
                 "\"minute\":%d,\"player\":\"B. Saka\","
                 "\"assist\":\"M. Odegaard\",\"confirmed\":%s}",
                 el->inc.id, el->inc.minute,
                 el->inc.confirmed ? "true" : "false");
    } else if (roll < 6 && m->n_incidents > 0) {
        uint32_t i = rnd(m->n_incidents);
        m->live[i] = false;
        el->deleted[0] = incident_ids[k][i];
        el->up.n_deleted = 1;
    }
    char buf[4096];
    int n = snprintf(buf, sizeof(buf),
                     "{\"type\":\"delta\",\"id\":\"%s\",\"version\":%llu,"
                     "\"sent\":\"2026-11-21T15:04:05.123Z\",\"changes\":{"
                     "\"clock\":{\"time\":\"%02d:%02d\",\"running\":true},"
                     "\"score\":{\"home\":%u,\"away\":%u}},\"incidents\":{"
                     "\"upsert\":[%s],\"delete\":[%s%s%s]}}",
                     match_ids[k], (unsigned long long)m->version,
                     m->clock / 60, m->clock % 60, m->home, m->away,
                     incident_json, el->up.n_deleted ? "\"" : "",
                     el->up.n_deleted ? el->deleted[0] : "",
                     el->up.n_deleted ? "\"" : "");
    el->json = xstrdup(buf);
    el->up.json = el->json;
    el->up.json_len = (size_t)n;

    n = snprintf(buf, sizeof(buf),
                 "{\"id\":\"%s\",\"version\":%llu,\"fixture\":{\"sport\":"
                 "\"soccer\",\"competition\":\"Premier League\",\"home\":"
                 "\"Arsenal\",\"away\":\"Chelsea\",\"start\":"
                 "\"2026-11-21T15:00:00Z\"},\"status\":{\"phase\":\"%s\"},"
                 "\"clock\":{\"time\":\"%02d:%02d\",\"running\":true},"
                 "\"score\":{\"home\":%u,\"away\":%u},\"incidents\":[",
                 match_ids[k], (unsigned long long)m->version, el->img.phase,
                 m->clock / 60, m->clock % 60, m->home, m->away);
    bool first = true;
    for (uint32_t i = 0; i < m->n_incidents; i++) {
        if (m->live[i]) {
            n += snprintf(buf + n, sizeof(buf) - (size_t)n,
                          "%s{\"id\":\"%s\",\"type\":\"goal\",\"team\":"
                          "\"home\",\"minute\":12,\"player\":\"B. Saka\"}",
                          first ? "" : ",", incident_ids[k][i]);
            first = false;
        }
    }
    n += snprintf(buf + n, sizeof(buf) - (size_t)n,
                  "],\"feed\":\"live\",\"gap\":false}");
    el->snapshot = xstrdup(buf);
    el->snapshot_len = (size_t)n;
    return el;
}

static struct bench_event *make_workload(const struct profile *pr,
                                         size_t n_events)
{
    rng = 0x9e3779b97f4a7c15ull;
    memset(matches, 0, sizeof(matches));
    for (int s = 0; s < MAX_SOURCES; s++) {
        snprintf(source_names[s], sizeof(source_names[s]), "feed-%d", s + 1);
    }
    for (int k = 0; k < MAX_MATCHES; k++) {
        snprintf(match_ids[k], sizeof(match_ids[k]), "sr:match:%d", 10000 + k);
        for (int i = 0; i < 16; i++) {
            snprintf(incident_ids[k][i], sizeof(incident_ids[k][i]), "%d-%d",
                     10000 + k, i);
        }
    }
    struct bench_event *evs = xcalloc(n_events, sizeof(*evs));
    uint64_t seq[MAX_SOURCES] = {0};
    for (size_t i = 0; i < n_events; i++) {
        struct bench_event *be = &evs[i];
        int s = (int)(i % (size_t)pr->sources);
        int64_t when = BASE_MS + (int64_t)i;
        be->ev.source = source_names[s];
        be->ev.seq = ++seq[s];
        be->ev.sent_ms = when - 40;
        be->ev.received_ms = when;
        be->rejected = i % 2000 == 1999;
        uint32_t n = be->rejected ? 0 : (rnd(10) == 0 ? 2 : 1);
        char raw[1024];
        int len = snprintf(raw, sizeof(raw),
                           "<event seq=\"%llu\" sent=\"2026-11-21T15:04:05."
                           "123Z\">",
                           (unsigned long long)be->ev.seq);
        for (uint32_t j = 0; j < n; j++) {
            uint32_t k = rnd((uint32_t)pr->matches);
            struct element *el = make_element(k, be->ev.source, when);
            be->el[j] = el;
            len += snprintf(raw + len, sizeof(raw) - (size_t)len,
                            "<match id=\"%s\" msgnr=\"%llu\" "
                            "feedtype=\"delta\"><status phase=\"%s\"/>"
                            "<clock time=\"%02d:%02d\" running=\"1\"/>"
                            "<score home=\"%u\" away=\"%u\"/></match>",
                            match_ids[k], (unsigned long long)el->img.version,
                            el->img.phase, el->img.clock_seconds / 60,
                            el->img.clock_seconds % 60, el->img.score_home,
                            el->img.score_away);
        }
        len += snprintf(raw + len, sizeof(raw) - (size_t)len, "</event>");
        be->raw = xstrdup(raw);
        be->ev.raw = be->raw;
        be->ev.raw_len = (size_t)len;
        be->ev.n_matches = n;
        atomic_init(&be->ev.refs, 1);
    }
    return evs;
}

static void free_workload(struct bench_event *evs, size_t n_events)
{
    for (size_t i = 0; i < n_events; i++) {
        for (int j = 0; j < 2; j++) {
            struct element *el = evs[i].el[j];
            if (el) {
                free(el->json);
                free(el->snapshot);
                free(el);
            }
        }
        free(evs[i].raw);
    }
    free(evs);
}

/* The events and images live in the workload: nothing to free here. */
static void release_none(struct event *ev)
{
    (void)ev;
}

static void unref_none(struct match_image *img)
{
    (void)img;
}

static void image_json(const struct match_image *img, struct actor_buf *out)
{
    const struct element *el = container_of(img, struct element, img);
    actor_buf_add(out, el->snapshot, el->snapshot_len);
}

/* ---- the writer ---------------------------------------------------------- */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

struct run {
    double seconds;
    double pg_cpu_s; /* the backend's CPU seconds */
    size_t batches;
    double p50_ms, p99_ms;
};

static void flush(struct store__pg *pg, struct store__batch *b, double *lat,
                  size_t *n_lat)
{
    double t = now_s();
    int err = store__pg_write(pg, b, 0, NULL);
    if (err != 0) {
        die("write", store__pg_error(pg));
    }
    lat[(*n_lat)++] = (now_s() - t) * 1000.0;
    store__batch_reset(b);
}

static struct run run_writer(const struct profile *pr, struct bench_event *evs,
                             size_t n_events)
{
    static const struct store__image_ops ops = {image_json, unref_none};
    struct store__pg_config cfg = {.conninfo = cluster.conninfo, .seed = 1};
    struct store__pg *pg = store__pg_new(&cfg);
    struct store__batch *b = store__batch_new(0, &ops);
    struct store__pending *p = store__pending_new(release_none);
    if (!pg || !b || !p) {
        die("setup", "out of memory");
    }
    if (store__pg_connect(pg, 0, NULL) != 0) {
        die("connect", store__pg_error(pg));
    }
    /* Every event adds at most 3 log rows and 2 kept ones. */
    size_t max_batches = n_events * 5 / pr->batch_rows + 2;
    double *lat = xcalloc(max_batches, sizeof(*lat));
    size_t n_lat = 0;
    uint64_t rejected_id = 0;

    int backend = store__pg_backend_pid(pg);
    double cpu0 = cpu_s(backend);
    double t0 = now_s();
    for (size_t i = 0; i < n_events; i++) {
        struct bench_event *be = &evs[i];
        int err;
        if (be->rejected) {
            const struct store_rejected rej = {
                .source = be->ev.source,
                .seq = be->ev.seq,
                .has_seq = true,
                .received_ms = be->ev.received_ms,
                .reason = "bad_attribute",
                .raw = be->raw,
                .raw_len = be->ev.raw_len,
            };
            err = store__pending_rejected(p, ++rejected_id, &rej, b);
        } else {
            err = store__pending_event(p, &be->ev, b);
        }
        for (uint32_t j = 0; err == 0 && j < be->ev.n_matches; j++) {
            err = store__batch_add_change(b, &be->el[j]->up, be->ev.source,
                                          be->ev.seq);
            if (err == 0) {
                err = store__pending_applied(p, &be->ev, j, b);
            }
        }
        if (err != 0) {
            die("batch", strerror(-err));
        }
        if (store__batch_rows(b) >= pr->batch_rows) {
            flush(pg, b, lat, &n_lat);
        }
    }
    if (!store__batch_is_empty(b)) {
        flush(pg, b, lat, &n_lat);
    }
    struct run r = {.seconds = now_s() - t0,
                    .pg_cpu_s = cpu_s(backend) - cpu0,
                    .batches = n_lat};
    qsort(lat, n_lat, sizeof(*lat), cmp_double);
    r.p50_ms = lat[n_lat / 2];
    r.p99_ms = lat[n_lat * 99 / 100];
    free(lat);
    store__pending_free(p);
    store__batch_free(b);
    store__pg_free(pg);
    return r;
}

/* ---- the limit: a raw COPY of the same rows ------------------------------ */

static void exec_ok(PGconn *c, const char *sql)
{
    PGresult *res = PQexec(c, sql);
    if (PQresultStatus(res) != PGRES_COMMAND_OK &&
        PQresultStatus(res) != PGRES_TUPLES_OK) {
        die(sql, PQerrorMessage(c));
    }
    PQclear(res);
}

/* Empties the tables (prefix "" or "bench_") and checkpoints. */
static void empty_tables(PGconn *c, const char *prefix)
{
    char sql[512];
    int n = snprintf(sql, sizeof(sql), "TRUNCATE ");
    for (size_t i = 0; i < N_TABLES; i++) {
        n += snprintf(sql + n, sizeof(sql) - (size_t)n, "%s%s%s", i ? ", " : "",
                      prefix, tables[i]);
    }
    exec_ok(c, sql);
    exec_ok(c, "CHECKPOINT");
}

/* Reads table @t in COPY binary into @out. */
static void copy_out(PGconn *c, const char *t, struct actor_buf *out)
{
    char sql[256];
    snprintf(sql, sizeof(sql), "COPY %s TO STDOUT (FORMAT binary)", t);
    PGresult *res = PQexec(c, sql);
    if (PQresultStatus(res) != PGRES_COPY_OUT) {
        die(sql, PQerrorMessage(c));
    }
    PQclear(res);
    char *chunk;
    int n;
    while ((n = PQgetCopyData(c, &chunk, 0)) > 0) {
        actor_buf_add(out, chunk, (size_t)n);
        PQfreemem(chunk);
    }
    if (n != -1 || out->err) {
        die(sql, "COPY TO failed");
    }
    res = PQgetResult(c);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        die(sql, PQerrorMessage(c));
    }
    PQclear(res);
}

static void copy_in(PGconn *c, const char *t, const struct actor_buf *data)
{
    char sql[256];
    snprintf(sql, sizeof(sql), "COPY bench_%s FROM STDIN (FORMAT binary)", t);
    PGresult *res = PQexec(c, sql);
    if (PQresultStatus(res) != PGRES_COPY_IN) {
        die(sql, PQerrorMessage(c));
    }
    PQclear(res);
    const size_t chunk = 256 * 1024;
    for (size_t off = 0; off < data->len; off += chunk) {
        size_t n = data->len - off < chunk ? data->len - off : chunk;
        if (PQputCopyData(c, data->data + off, (int)n) != 1) {
            die(sql, PQerrorMessage(c));
        }
    }
    if (PQputCopyEnd(c, NULL) != 1) {
        die(sql, PQerrorMessage(c));
    }
    while ((res = PQgetResult(c))) {
        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
            die(sql, PQerrorMessage(c));
        }
        PQclear(res);
    }
}

static long long count_rows(PGconn *c, const char *prefix)
{
    long long total = 0;
    for (size_t i = 0; i < N_TABLES; i++) {
        char sql[256];
        snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s%s", prefix,
                 tables[i]);
        PGresult *res = PQexec(c, sql);
        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
            die(sql, PQerrorMessage(c));
        }
        total += atoll(PQgetvalue(res, 0, 0));
        PQclear(res);
    }
    return total;
}

static double raw_cpu_s; /* the last raw COPY's backend CPU seconds */

static double run_raw_copy(PGconn *c, const struct actor_buf *data)
{
    double cpu0 = cpu_s(PQbackendPID(c));
    double t0 = now_s();
    exec_ok(c, "BEGIN");
    for (size_t i = 0; i < N_TABLES; i++) {
        copy_in(c, tables[i], &data[i]);
    }
    exec_ok(c, "COMMIT");
    raw_cpu_s = cpu_s(PQbackendPID(c)) - cpu0;
    return now_s() - t0;
}

static double median(double *v, size_t n)
{
    qsort(v, n, sizeof(*v), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/*
 * The limit, after a round that left its rows in the tables: round 0 keeps
 * them (in @data) for every raw COPY, later rounds must leave as many.
 * Loads them into the empty copies; returns the raw COPY's seconds.
 */
static double limit_round(PGconn *c, int round, struct actor_buf *data,
                          long long *rows, const char *what)
{
    if (round == 0) {
        *rows = count_rows(c, "");
        for (size_t i = 0; i < N_TABLES; i++) {
            actor_buf_init(&data[i]);
            copy_out(c, tables[i], &data[i]);
        }
    } else if (count_rows(c, "") != *rows) {
        die(what, "a round left other rows than the first");
    }
    empty_tables(c, "bench_");
    double raw = run_raw_copy(c, data);
    if (count_rows(c, "bench_") != *rows) {
        die(what, "the raw COPY left other rows than the round");
    }
    return raw;
}

/* ---- the actor profile --------------------------------------------------- */

#define ACTOR_SOURCES 4
#define ACTOR_WINDOW  500 /* events in flight per source */
#define ACTOR_MATCHES 40

struct actor_item {
    struct event *ev;
    struct update *up[2]; /* the model's update per element */
    double sent;          /* s, when its row went to the store */
};

struct bsource {
    char name[16];
    struct actor_item *items; /* seq i + 1 at i */
    size_t n;
    size_t next; /* index of the next item to send */
    size_t acked;
    uint64_t store;
    uint32_t window;
    double *lat_ms; /* per item */
    _Atomic bool done;
    double done_at;
};

enum { BSOURCE_START = ACTOR_MSG_USER + 1 };

/* Event @seq of @source as feedsim writes one, parsed by ingest. */
static struct event *make_actor_event(struct ingest__parser *parser,
                                      const char *source, uint64_t seq,
                                      const char *const *ids, uint32_t n,
                                      int minute)
{
    char xml[1024];
    int len = snprintf(xml, sizeof(xml),
                       "<event seq=\"%llu\" sent=\"2026-11-21T15:04:05.123Z\">",
                       (unsigned long long)seq);
    for (uint32_t j = 0; j < n; j++) {
        len += snprintf(xml + len, sizeof(xml) - (size_t)len,
                        "<match id=\"%s\" feedtype=\"delta\">"
                        "<status phase=\"%s\"/><clock time=\"%02d:%02d\" "
                        "running=\"1\"/><score home=\"%u\" away=\"1\"/>"
                        "</match>",
                        ids[j], minute < 45 ? "first_half" : "second_half",
                        minute, (int)(seq % 60), (unsigned)(seq % 3));
    }
    len += snprintf(xml + len, sizeof(xml) - (size_t)len, "</event>");
    const struct ingest__doc doc = {.data = xml,
                                    .len = (size_t)len,
                                    .received_ms = BASE_MS + (int64_t)seq,
                                    .source = source};
    struct ingest__result res;
    if (ingest__parse(parser, &doc, &res) != 0 ||
        res.kind != INGEST__DOC_EVENT) {
        die("parse", res.detail);
    }
    struct event *ev = res.event;
    res.event = NULL;
    ingest__result_release(&res);
    return ev;
}

/* Every source's events with the model's updates for them: match k is
 * source k % ACTOR_SOURCES's, one event in ten names two matches. */
static void make_actor_workload(struct bsource *src, size_t n_events)
{
    static char ids[ACTOR_MATCHES][24];
    struct model__match *models = xcalloc(ACTOR_MATCHES, sizeof(*models));
    for (int k = 0; k < ACTOR_MATCHES; k++) {
        snprintf(ids[k], sizeof(ids[k]), "sr:match:%d", 20000 + k);
        if (model__match_init(&models[k], ids[k]) != 0) {
            die("model", "init");
        }
    }
    struct ingest__parser *parser = ingest__parser_new(NULL);
    if (!parser) {
        die("parser", "out of memory");
    }
    rng = 0x9e3779b97f4a7c15ull;
    size_t per = n_events / ACTOR_SOURCES;
    for (int s = 0; s < ACTOR_SOURCES; s++) {
        struct bsource *b = &src[s];
        memset(b, 0, sizeof(*b));
        snprintf(b->name, sizeof(b->name), "feed-%d", s + 1);
        b->n = per;
        b->items = xcalloc(per, sizeof(*b->items));
        b->lat_ms = xcalloc(per, sizeof(*b->lat_ms));
        for (size_t i = 0; i < per; i++) {
            const int mine = ACTOR_MATCHES / ACTOR_SOURCES;
            int k1 = s + ACTOR_SOURCES * (int)rnd(mine);
            int k2 =
                s + ACTOR_SOURCES * (int)((rnd(mine - 1) + 1 +
                                           (uint32_t)(k1 / ACTOR_SOURCES)) %
                                          (uint32_t)mine);
            const char *pair[2] = {ids[k1], ids[k2]};
            uint32_t n = rnd(10) == 0 ? 2 : 1;
            struct event *ev = make_actor_event(parser, b->name, i + 1, pair, n,
                                                (int)(i * 90 / per));
            b->items[i].ev = ev;
            for (uint32_t j = 0; j < n; j++) {
                struct model__match *m = &models[j ? k2 : k1];
                int rc = model__match_apply(m, ev, j, ev->received_ms,
                                            &b->items[i].up[j]);
                if (rc != 0 && rc != MODEL__GAP) {
                    die("model", "apply");
                }
            }
        }
    }
    for (int k = 0; k < ACTOR_MATCHES; k++) {
        model__match_release(&models[k]);
    }
    free(models);
    ingest__parser_free(parser);
}

static void free_actor_workload(struct bsource *src)
{
    for (int s = 0; s < ACTOR_SOURCES; s++) {
        for (size_t i = 0; i < src[s].n; i++) {
            event_unref(src[s].items[i].ev);
            update_unref(src[s].items[i].up[0]);
            update_unref(src[s].items[i].up[1]);
        }
        free(src[s].items);
        free(src[s].lat_ms);
    }
}

static void bsource_send(struct actor_ctx *ctx, struct bsource *b)
{
    while (b->next < b->n && b->next - b->acked < b->window) {
        struct actor_item *it = &b->items[b->next++];
        it->sent = now_s();
        struct store_event_msg *m = store_event_msg_new(it->ev);
        if (!m || actor_send(ctx, b->store, &m->hdr) != 0) {
            die("send", "the store refused an event");
        }
        for (uint32_t j = 0; j < it->ev->n_matches; j++) {
            struct model_update_msg *u =
                model_update_msg_new(it->up[j], it->ev, j, MODEL_APPLIED);
            if (!u || actor_send(ctx, b->store, &u->hdr) != 0) {
                die("send", "the store refused an update");
            }
        }
    }
}

static int bsource_init(struct actor_ctx *ctx, void *arg, void **state)
{
    (void)ctx;
    *state = arg;
    return 0;
}

static int bsource_handle(struct actor_ctx *ctx, void *state,
                          struct actor_msg *msg)
{
    struct bsource *b = state;
    switch (msg->type) {
    case BSOURCE_START:
        bsource_send(ctx, b);
        return 0;
    case STORE_MSG_ACK: {
        const struct store_ack_msg *a = (const struct store_ack_msg *)msg;
        double now = now_s();
        for (; b->acked < a->seq && b->acked < b->n; b->acked++) {
            b->lat_ms[b->acked] = (now - b->items[b->acked].sent) * 1000.0;
        }
        if (b->acked == b->n) {
            b->done_at = now;
            atomic_store(&b->done, true);
            return 0;
        }
        bsource_send(ctx, b);
        return 0;
    }
    default:
        return 0;
    }
}

static void bsource_stop(struct actor_ctx *ctx, void *state,
                         const struct actor_exit *why)
{
    (void)ctx;
    (void)state;
    (void)why;
}

static const struct actor_ops bsource_ops = {
    .name = "bench-source",
    .init = bsource_init,
    .handle = bsource_handle,
    .stop = bsource_stop,
};

static uint32_t actor_window = ACTOR_WINDOW;

struct actor_run {
    double seconds;
    double p50_ms, p99_ms;
    double batches;
};

static struct actor_run run_actor(const struct store_config *cfg,
                                  struct bsource *src)
{
    if (actor_runtime_start(&(struct actor_config){0}) != 0) {
        die("runtime", "did not start");
    }
    struct actor_child_spec spec;
    store_child_spec(cfg, &spec);
    uint64_t store;
    if (actor_spawn(&spec.start, &store) != 0) {
        die("spawn", "store");
    }
    uint64_t pids[ACTOR_SOURCES];
    for (int s = 0; s < ACTOR_SOURCES; s++) {
        char name[32];
        snprintf(name, sizeof(name), "source:%.15s", src[s].name);
        src[s].store = store;
        src[s].window = actor_window;
        struct actor_spawn how = {
            .ops = &bsource_ops, .arg = &src[s], .name = name};
        if (actor_spawn(&how, &pids[s]) != 0) {
            die("spawn", "source");
        }
    }
    for (int i = 0; i < 10000 && !store_db_is_up(); i++) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    /* Registered by the store's init (which is done): found, not made. */
    struct actor_metric *batches =
        actor_metric_histogram("scorewire_store_batch_rows", "", NULL, NULL, 0);
    uint64_t batches0 = actor_metric_value(batches);
    double t0 = now_s();
    for (int s = 0; s < ACTOR_SOURCES; s++) {
        actor_send(NULL, pids[s],
                   actor_msg_new(sizeof(struct actor_msg), BSOURCE_START));
    }
    double end = t0;
    for (int s = 0; s < ACTOR_SOURCES; s++) {
        for (int i = 0; !atomic_load(&src[s].done); i++) {
            if (i > 120000) {
                die("actor", "no last ack within two minutes");
            }
            struct timespec ts = {0, 1000000};
            nanosleep(&ts, NULL);
        }
        end = src[s].done_at > end ? src[s].done_at : end;
    }
    struct actor_run r = {.seconds = end - t0};
    struct actor_exit why = {.kind = ACTOR_EXIT_SHUTDOWN};
    for (int s = 0; s < ACTOR_SOURCES; s++) {
        actor_exit(NULL, pids[s], &why);
    }
    r.batches = (double)(actor_metric_value(batches) - batches0);
    actor_exit(NULL, store, &why);
    actor_wait(store, 30000, NULL);
    actor_runtime_stop();

    size_t n = 0;
    for (int s = 0; s < ACTOR_SOURCES; s++) {
        n += src[s].n;
    }
    double *lat = xcalloc(n, sizeof(*lat));
    n = 0;
    for (int s = 0; s < ACTOR_SOURCES; s++) {
        memcpy(lat + n, src[s].lat_ms, src[s].n * sizeof(*lat));
        n += src[s].n;
    }
    qsort(lat, n, sizeof(*lat), cmp_double);
    r.p50_ms = lat[n / 2];
    r.p99_ms = lat[n * 99 / 100];
    free(lat);
    return r;
}

static void run_actor_profile(PGconn *c, const char *name,
                              const struct store_config *cfg, size_t n_events)
{
    struct bsource src[ACTOR_SOURCES];
    struct actor_buf data[N_TABLES];
    struct actor_run best = {.seconds = 1e30};
    double best_raw = 1e30;
    double ratio[ROUNDS];
    double p99[ROUNDS];
    long long rows = 0;
    for (int round = -1; round < ROUNDS; round++) {
        make_actor_workload(src, n_events);
        empty_tables(c, "");
        struct actor_run a = run_actor(cfg, src);
        free_actor_workload(src);
        if (round < 0) {
            continue; /* warm-up: WAL files, caches */
        }
        if (a.seconds < best.seconds) {
            best = a;
        }
        p99[round] = a.p99_ms;
        double raw = limit_round(c, round, data, &rows, name);
        best_raw = raw < best_raw ? raw : best_raw;
        ratio[round] = raw / a.seconds;
    }
    for (size_t i = 0; i < N_TABLES; i++) {
        actor_buf_release(&data[i]);
    }
    size_t events = n_events / ACTOR_SOURCES * ACTOR_SOURCES;
    printf("# %s: the store actor, %zu events, %d sources, window %d, %d"
           " matches, batch_rows %u, batch_ms %u%s; %lld rows; %d rounds\n",
           name, events, ACTOR_SOURCES, actor_window, ACTOR_MATCHES,
           cfg->batch_rows, cfg->batch_ms,
           cfg->no_idle_flush ? ", no idle flush" : "", rows, ROUNDS);
    printf("bench store_%s_events_per_s %.0f events/s\n", name,
           (double)events / best.seconds);
    printf("bench store_%s_rows_per_s %.0f rows/s\n", name,
           (double)rows / best.seconds);
    printf("bench store_%s_raw_copy_rows_per_s %.0f rows/s\n", name,
           (double)rows / best_raw);
    printf("bench store_%s_vs_copy_ratio %.3f x\n", name,
           median(ratio, ROUNDS));
    printf("bench store_%s_batch_rows_mean %.0f rows\n", name,
           (double)rows / (best.batches > 0 ? best.batches : 1));
    printf("bench store_%s_ack_p50_ms %.2f ms\n", name, best.p50_ms);
    printf("bench store_%s_ack_p99_ms %.2f ms\n", name, median(p99, ROUNDS));
    fflush(stdout);
}

/* ---- a profile ----------------------------------------------------------- */

static void run_profile(PGconn *c, const struct profile *pr, size_t n_events)
{
    struct bench_event *evs = make_workload(pr, n_events);
    empty_tables(c, "");
    run_writer(pr, evs, n_events); /* warm-up: WAL files, caches */

    struct actor_buf data[N_TABLES];
    struct run best = {.seconds = 1e30};
    double best_raw = 1e30;
    double ratio[ROUNDS], cpu_ratio[ROUNDS];
    long long rows = 0;
    for (int round = 0; round < ROUNDS; round++) {
        empty_tables(c, "");
        struct run w = run_writer(pr, evs, n_events);
        if (w.seconds < best.seconds) {
            best = w;
        }
        double raw = limit_round(c, round, data, &rows, pr->name);
        best_raw = raw < best_raw ? raw : best_raw;
        ratio[round] = raw / w.seconds;
        cpu_ratio[round] = w.pg_cpu_s > 0 ? raw_cpu_s / w.pg_cpu_s : 0;
    }
    for (size_t i = 0; i < N_TABLES; i++) {
        actor_buf_release(&data[i]);
    }
    free_workload(evs, n_events);

    const char *sep = pr->name[0] ? "_" : "";
    printf("# %s: %zu events, %d source(s), %d matches, batches of %u rows"
           " (%zu batches), %lld rows in the tables; %d rounds\n",
           pr->name[0] ? pr->name : "headline", n_events, pr->sources,
           pr->matches, pr->batch_rows, best.batches, rows, ROUNDS);
    printf("bench store_writer%s%s_rows_per_s %.0f rows/s\n", sep, pr->name,
           (double)rows / best.seconds);
    printf("bench store_raw_copy%s%s_rows_per_s %.0f rows/s\n", sep, pr->name,
           (double)rows / best_raw);
    printf("bench store_writer%s%s_vs_copy_ratio %.3f x\n", sep, pr->name,
           median(ratio, ROUNDS));
    printf("bench store_writer%s%s_server_cpu_ratio %.3f x\n", sep, pr->name,
           median(cpu_ratio, ROUNDS));
    printf("bench store_writer%s%s_events_per_s %.0f events/s\n", sep, pr->name,
           (double)n_events / best.seconds);
    printf("bench store_writer%s%s_batch_p50_ms %.2f ms\n", sep, pr->name,
           best.p50_ms);
    printf("bench store_writer%s%s_batch_p99_ms %.2f ms\n", sep, pr->name,
           best.p99_ms);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    size_t n_events = argc > 1 ? strtoul(argv[1], NULL, 10) : 40000;
    const char *fsync_env = getenv("STORE_BENCH_FSYNC");
    bool fsync = !fsync_env || strcmp(fsync_env, "off") != 0;
    if (n_events == 0) {
        die("usage", "store_bench [EVENTS]");
    }
    if (pgtemp_start(&cluster, fsync) != 0) {
        die("cluster", "tools/pg.sh could not start PostgreSQL");
    }
    PGconn *c = PQconnectdb(cluster.conninfo);
    if (PQstatus(c) != CONNECTION_OK) {
        die("connect", PQerrorMessage(c));
    }
    exec_ok(c, "SET client_min_messages = warning");
    actor_log_set_level(ACTOR_LOG_WARN);
    for (size_t i = 0; i < N_TABLES; i++) {
        char sql[256];
        snprintf(sql, sizeof(sql),
                 "CREATE TABLE bench_%s (LIKE %s INCLUDING ALL)", tables[i],
                 tables[i]);
        exec_ok(c, sql);
    }
    /* LIKE copies no storage parameters: the copies take the real tables'
     * (fillfactor, toast_tuple_target) so both sides store rows alike. */
    exec_ok(c, "DO $$ DECLARE r record; BEGIN"
               " FOR r IN SELECT relname, reloptions FROM pg_class"
               " WHERE reloptions IS NOT NULL AND relkind = 'r'"
               " AND relname IN ('feed_events', 'match_updates',"
               " 'rejected_documents', 'matches', 'incidents',"
               " 'source_offsets') LOOP"
               " EXECUTE format('ALTER TABLE %I SET (%s)', 'bench_' ||"
               " r.relname, array_to_string(r.reloptions, ', '));"
               " END LOOP; END $$");
    printf("# store writer vs raw COPY, PostgreSQL 15, fsync=%s\n",
           fsync ? "on" : "off");
    static const struct profile profiles[] = {
        {"", 1, 10, 2200},
        {"big", 4, 10, 10000},
        {"wide", 4, 500, 10000},
        {"live", 4, 400, 2400},
    };
    const char *only = getenv("STORE_BENCH_ONLY");
    const char *window = getenv("STORE_BENCH_WINDOW");
    if (window) {
        actor_window = (uint32_t)strtoul(window, NULL, 10);
    }
    for (size_t i = 0; i < sizeof(profiles) / sizeof(profiles[0]); i++) {
        if (!only || strcmp(only, "writer") == 0 ||
            strcmp(only, profiles[i].name) == 0) {
            run_profile(c, &profiles[i], n_events);
        }
    }
    struct store_config cfg;
    store_config_default(&cfg);
    cfg.conninfo = cluster.conninfo;
    if (only && strcmp(only, "actor") != 0) {
        goto out;
    }
    run_actor_profile(c, "actor", &cfg, n_events);
    cfg.no_idle_flush = true;
    run_actor_profile(c, "actor_no_idle", &cfg, n_events);
out:
    PQfinish(c);
    pgtemp_stop(&cluster);
    return 0;
}
