/* store/store_pg.c - the PostgreSQL writer: one connection, batches in one
 * transaction each, reconnection with backoff, the start-up load. */
#include <errno.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/store_impl.h"

/*
 * DESIGN
 * A write is one simple query holding the whole transaction:
 *
 *   BEGIN; COPY feed_events ...; COPY match_updates ...;
 *   COPY rejected_documents ...; COPY store_matches ...; INSERT INTO
 *   matches ... ON CONFLICT ...; (incidents, source_offsets alike); COMMIT
 *
 * The server runs the statements in order and asks for each COPY's rows in
 * turn, so a batch costs one round trip per COPY and no statement parsing
 * per row. Log tables take COPY straight in. Latest-state tables go through
 * session-private staging tables and an upsert guarded by version, so an
 * older row never overwrites a newer one and writing the same row twice
 * changes nothing. The upsert takes the staged rows out itself (WITH s AS
 * (DELETE ... RETURNING *) INSERT ...), and the staging tables are vacuumed
 * every so many rows: measured here, ON COMMIT DELETE ROWS (a truncate
 * at every commit) cost about 8 ms per transaction, more than the whole
 * rest of a 2,000-row batch; a DELETE costs about 0.1 ms.
 *
 * COPY errors surface late (after the rows are sent), and one error skips
 * the rest of the query: every result is drained before anything else is
 * sent, and a transaction left open is rolled back.
 *
 * Failures, by what they mean for the batch (the caller always keeps it):
 * - a duplicate key in a plain write (23505): something is already stored,
 *   which the design rules out but must survive (a commit whose reply was
 *   lost, an operator's hand). The write is rolled back and sent again at
 *   once in safe mode: every log table also through staging, with
 *   ON CONFLICT DO NOTHING, so what is there is skipped and counted.
 * - the connection lost: if it was lost after the last byte of the
 *   transaction was sent, the server may have committed; the next write
 *   goes in safe mode. Before that point it cannot have committed.
 * - a transient server error (disk full, a failover, a cancel): rolled
 *   back, retried after the backoff.
 * - a permanent one (bad data, a schema that does not match): reported;
 *   retrying cannot help. The rows are checked as they are encoded, so this
 *   is a bug or a schema problem, not bad feed data.
 * Every failure schedules the next attempt with full-jitter exponential
 * backoff (AWS's "full jitter": a uniform wait up to base * 2^attempt,
 * capped); the attempt count resets when a write or a load goes through,
 * not on a mere connection.
 *
 * The calls block (libpq's blocking mode): the store's thread has nothing
 * else to do while its batch is written. TCP keepalives and
 * tcp_user_timeout (defaults a conninfo may override) turn a silent dead
 * peer into an error instead of a hang.
 *
 * What a batch costs (tests/bench/store_bench.c): on top of the rows, a
 * commit (one WAL flush) and a few milliseconds of statements, so the
 * writer's rate approaches a raw COPY's as batches grow: about 0.5 of it
 * at 2,200 rows a batch, about 0.75 at 10,000, on this machine.
 */

#define CHUNK (256 * 1024) /* bytes per PQputCopyData */

static const char copy_header[19] = "PGCOPY\n\377\r\n\0\0\0\0\0\0\0\0\0";
static const char copy_trailer[2] = "\377\377";

#define COPY_IN(table, cols)                                                   \
    "COPY " table " (" cols ") FROM STDIN (FORMAT binary)"
/* Staging rows are taken out by the statement that uses them. */
#define FROM_STAGE(table, stage, cols)                                         \
    "WITH s AS (DELETE FROM " stage " RETURNING *) INSERT INTO " table         \
    " AS t (" cols ") SELECT " cols " FROM s"

#define KEEP(c) c " = EXCLUDED." c
/* A removed incident keeps what it last held. */
#define KEEP_LIVE(c)                                                           \
    c " = CASE WHEN EXCLUDED.deleted THEN t." c " ELSE EXCLUDED." c " END"

/* Session-private staging tables (see DESIGN: emptied by the statement
 * that reads them, vacuumed now and then). */
static const char setup_sql[] =
    "SET client_min_messages = warning;"
    "SET temp_buffers = '64MB';"
    "CREATE TEMP TABLE IF NOT EXISTS store_feed_events (LIKE feed_events);"
    "CREATE TEMP TABLE IF NOT EXISTS store_match_updates (LIKE match_updates);"
    "CREATE TEMP TABLE IF NOT EXISTS store_rejected (LIKE rejected_documents);"
    "CREATE TEMP TABLE IF NOT EXISTS store_matches (LIKE matches)"
    " WITH (toast_tuple_target = 8160);"
    "CREATE TEMP TABLE IF NOT EXISTS store_incidents (LIKE incidents);"
    "CREATE TEMP TABLE IF NOT EXISTS store_offsets"
    " (source text NOT NULL, acked_seq bigint NOT NULL)";

/* Nothing vacuums temporary tables but their session. */
static const char vacuum_sql[] =
    "VACUUM store_feed_events, store_match_updates, store_rejected,"
    " store_matches, store_incidents, store_offsets";

/* The log tables: straight in, or through staging in safe mode. */
struct log_table {
    const char *copy;      /* COPY into the table itself */
    const char *copy_safe; /* COPY into its staging table */
    const char *insert;    /* staging -> table, skipping what is there */
};

static const struct log_table log_tables[] = {
    {
        COPY_IN("feed_events", STORE__COLS_FEED_EVENTS),
        COPY_IN("store_feed_events", STORE__COLS_FEED_EVENTS),
        FROM_STAGE("feed_events", "store_feed_events",
                   STORE__COLS_FEED_EVENTS) " ON CONFLICT DO NOTHING",
    },
    {
        COPY_IN("match_updates", STORE__COLS_MATCH_UPDATES),
        COPY_IN("store_match_updates", STORE__COLS_MATCH_UPDATES),
        FROM_STAGE("match_updates", "store_match_updates",
                   STORE__COLS_MATCH_UPDATES) " ON CONFLICT DO NOTHING",
    },
    {
        COPY_IN("rejected_documents", STORE__COLS_REJECTED),
        COPY_IN("store_rejected", STORE__COLS_REJECTED),
        FROM_STAGE("rejected_documents", "store_rejected",
                   STORE__COLS_REJECTED) " ON CONFLICT DO NOTHING",
    },
};

/* The upserts, laid out by hand. */
/* clang-format off */
static const char copy_matches[] =
    COPY_IN("store_matches", STORE__COLS_MATCHES);
static const char upsert_matches[] =
    FROM_STAGE("matches", "store_matches", STORE__COLS_MATCHES)
    " ON CONFLICT (id) DO UPDATE SET "
    KEEP("version") ", " KEEP("sport") ", " KEEP("competition") ", "
    KEEP("home") ", " KEEP("away") ", " KEEP("start_at") ", "
    KEEP("phase") ", " KEEP("clock_time") ", " KEEP("clock_running") ", "
    KEEP("home_score") ", " KEEP("away_score") ", " KEEP("feed") ", "
    KEEP("gap") ", " KEEP("updated_at") ", " KEEP("snapshot") ", "
    KEEP("start_text") ", " KEEP("msgnr") ", " KEEP("source")
    " WHERE t.version < EXCLUDED.version";

static const char copy_incidents[] =
    COPY_IN("store_incidents", STORE__COLS_INCIDENTS);
static const char upsert_incidents[] =
    FROM_STAGE("incidents", "store_incidents", STORE__COLS_INCIDENTS)
    " ON CONFLICT (match_id, incident_id) DO UPDATE SET "
    KEEP_LIVE("type") ", " KEEP_LIVE("team") ", " KEEP_LIVE("minute") ", "
    KEEP_LIVE("stoppage") ", " KEEP_LIVE("player") ", "
    KEEP_LIVE("assist") ", " KEEP_LIVE("confirmed") ", "
    KEEP("deleted") ", " KEEP("version")
    " WHERE t.version < EXCLUDED.version";

static const char copy_offsets[] =
    COPY_IN("store_offsets", STORE__COLS_OFFSETS);
static const char upsert_offsets[] =
    FROM_STAGE("source_offsets", "store_offsets", STORE__COLS_OFFSETS)
    " ON CONFLICT (source) DO UPDATE SET "
    KEEP("acked_seq") ", updated_at = now()"
    " WHERE t.acked_seq < EXCLUDED.acked_seq";
/* clang-format on */

struct store__pg {
    char *conninfo;
    uint32_t base_ms;
    uint32_t cap_ms;
    void (*hook)(struct store__pg *pg, enum store__pg_step step, void *arg);
    void *hook_arg;
    PGconn *conn;          /* NULL: not connected */
    bool down;             /* in an outage that began at down_since */
    int64_t down_since;    /* ms, the caller's monotonic clock */
    bool uncertain;        /* a commit's outcome is unknown: write safely */
    uint64_t staged;       /* rows through staging since the last vacuum */
    uint32_t vacuum_rows;  /* ... and how many call for one */
    uint32_t attempt;      /* failures in a row */
    int64_t retry_at;      /* ms: no attempt before this */
    uint64_t rng;          /* xorshift state, never 0 */
    struct actor_buf sql;  /* the query of the write in progress */
    struct actor_buf rows; /* its latest-state and offset rows */
    char error[512];
};

/* ---- backoff ------------------------------------------------------------- */

static uint64_t next_random(uint64_t *rng)
{
    /* xorshift64*: plenty for spreading retries apart. */
    uint64_t x = *rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *rng = x;
    return x * 2685821657736338717ull;
}

uint32_t store__backoff_ms(uint32_t attempt, uint32_t base, uint32_t cap,
                           uint64_t *rng)
{
    uint64_t ceiling = attempt >= 32 ? UINT64_MAX : (uint64_t)base << attempt;
    if (ceiling > cap) {
        ceiling = cap;
    }
    return (uint32_t)(next_random(rng) % (ceiling + 1));
}

/* ---- errors -------------------------------------------------------------- */

enum store__pg_class store__pg_classify(const char *sqlstate)
{
    if (!sqlstate || strlen(sqlstate) != 5) {
        return STORE__PG_LOST; /* no server error: libpq lost the link */
    }
    if (strcmp(sqlstate, "23505") == 0) {
        return STORE__PG_DUPLICATE;
    }
    if (strncmp(sqlstate, "08", 2) == 0 || strcmp(sqlstate, "57P01") == 0 ||
        strcmp(sqlstate, "57P02") == 0 || strcmp(sqlstate, "57P03") == 0) {
        return STORE__PG_LOST;
    }
    /* Data, integrity, syntax and access, unsupported features, corrupt
     * data: the same statement fails the same way next time. */
    static const char *const permanent[] = {"22", "23", "42", "0A", "2B",
                                            "2D", "2F", "3F", "44", "P0"};
    for (size_t i = 0; i < sizeof(permanent) / sizeof(permanent[0]); i++) {
        if (strncmp(sqlstate, permanent[i], 2) == 0) {
            return STORE__PG_PERMANENT;
        }
    }
    if (strcmp(sqlstate, "XX001") == 0 || strcmp(sqlstate, "XX002") == 0) {
        return STORE__PG_PERMANENT;
    }
    return STORE__PG_TRANSIENT;
}

static void set_error(struct store__pg *pg, const char *what,
                      const PGresult *res)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *msg =
        res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    if (!msg) {
        msg = pg->conn ? PQerrorMessage(pg->conn) : "not connected";
    }
    /* Where in a COPY it failed ("COPY matches, line 3, column gap"). */
    const char *where = res ? PQresultErrorField(res, PG_DIAG_CONTEXT) : NULL;
    snprintf(pg->error, sizeof(pg->error), "%s: %s%s%s%s%s", what,
             state ? state : "", state ? " " : "", msg, where ? " at " : "",
             where ? where : "");
    /* libpq's own messages end with a newline: one line per log event. */
    for (char *p = pg->error; *p; p++) {
        if (*p == '\n' || *p == '\r') {
            *p = *(p + 1) ? ' ' : '\0';
        }
    }
}

const char *store__pg_error(const struct store__pg *pg)
{
    return pg->error;
}

/* A write or a load went through: the failures in a row are over. (A
 * connection alone is not enough: a server that accepts and then loses
 * every write, a backend killed each time, would keep the wait at its
 * shortest.) */
static void succeeded(struct store__pg *pg)
{
    pg->attempt = 0;
    pg->retry_at = 0;
}

uint32_t store__pg_failures(const struct store__pg *pg)
{
    return pg->attempt;
}

void store__pg_idle(struct store__pg *pg)
{
    if (pg->conn) {
        succeeded(pg);
    }
}

/* Schedules the next attempt after a failure at @now. */
static void schedule(struct store__pg *pg, int64_t now)
{
    pg->retry_at =
        now + store__backoff_ms(pg->attempt, pg->base_ms, pg->cap_ms, &pg->rng);
    if (pg->attempt < 64) {
        pg->attempt++;
    }
}

static void disconnect(struct store__pg *pg, int64_t now)
{
    PQfinish(pg->conn);
    pg->conn = NULL;
    if (!pg->down) {
        pg->down = true;
        pg->down_since = now;
    }
}

/* ---- life cycle ---------------------------------------------------------- */

struct store__pg *store__pg_new(const struct store__pg_config *cfg)
{
    struct store__pg *pg = store__calloc(1, sizeof(*pg));
    if (!pg) {
        return NULL;
    }
    pg->conninfo = store__strdup(cfg->conninfo ? cfg->conninfo : "");
    if (!pg->conninfo) {
        free(pg);
        return NULL;
    }
    pg->base_ms = cfg->backoff_base_ms ? cfg->backoff_base_ms : 500;
    pg->cap_ms = cfg->backoff_cap_ms ? cfg->backoff_cap_ms : 30000;
    pg->vacuum_rows = cfg->vacuum_rows ? cfg->vacuum_rows : 20000;
    pg->hook = cfg->hook;
    pg->hook_arg = cfg->hook_arg;
    pg->rng = cfg->seed;
    if (pg->rng == 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        pg->rng = ((uint64_t)ts.tv_sec * 1000000007u) ^ (uint64_t)ts.tv_nsec;
        pg->rng |= 1;
    }
    actor_buf_init(&pg->sql);
    actor_buf_init(&pg->rows);
    return pg;
}

void store__pg_free(struct store__pg *pg)
{
    if (!pg) {
        return;
    }
    PQfinish(pg->conn);
    actor_buf_release(&pg->sql);
    actor_buf_release(&pg->rows);
    free(pg->conninfo);
    free(pg);
}

bool store__pg_is_up(const struct store__pg *pg)
{
    return pg->conn != NULL;
}

int64_t store__pg_retry_at(const struct store__pg *pg)
{
    return pg->retry_at;
}

int store__pg_backend_pid(const struct store__pg *pg)
{
    return pg->conn ? PQbackendPID(pg->conn) : 0;
}

int store__pg_socket(const struct store__pg *pg)
{
    return pg->conn ? PQsocket(pg->conn) : -1;
}

int store__pg_connect(struct store__pg *pg, int64_t now_ms, int64_t *outage_ms)
{
    if (pg->conn) {
        return 0;
    }
    if (now_ms < pg->retry_at) {
        return -EAGAIN;
    }
    /* Our defaults come first: whatever the conninfo says overrides them. */
    static const char *const keys[] = {"fallback_application_name",
                                       "connect_timeout",
                                       "keepalives",
                                       "keepalives_idle",
                                       "keepalives_interval",
                                       "keepalives_count",
                                       "tcp_user_timeout",
                                       "dbname",
                                       NULL};
    const char *values[] = {
        "scorewire-store", "10",         "1", "10", "5", "3",
        "30000",           pg->conninfo, NULL};
    pg->conn = PQconnectdbParams(keys, values, 1);
    if (!pg->conn) {
        return -ENOMEM;
    }
    int err = 0;
    if (PQstatus(pg->conn) != CONNECTION_OK) {
        set_error(pg, "connect", NULL);
        err = -ECONNREFUSED;
        goto out_fail;
    }
    PGresult *res = PQexec(pg->conn, setup_sql);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        set_error(pg, "session setup", res);
        const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        err = state && strcmp(state, "42P01") == 0 ? -ENOENT : -ECONNREFUSED;
        PQclear(res);
        goto out_fail;
    }
    PQclear(res);
    pg->retry_at = 0;
    pg->error[0] = '\0';
    if (pg->down) {
        pg->down = false;
        if (outage_ms) {
            *outage_ms = now_ms - pg->down_since;
        }
        return STORE_PG_RECOVERED;
    }
    return 0;

out_fail:
    disconnect(pg, now_ms);
    schedule(pg, now_ms);
    return err;
}

/* ---- running a transaction ----------------------------------------------- */

/* One statement of a write; COPY statements carry their rows. */
struct step {
    const char *sql;
    const char *data; /* COPY rows (without header and trailer), or NULL */
    size_t len;
    long rows;   /* rows in data; for an insert from staging, rows staged */
    bool direct; /* a COPY into the table itself: all its rows count */
    bool insert; /* an insert from staging: count what it inserted */
};

/* Sends one COPY's rows. Returns false when libpq refused. */
static bool send_copy(struct store__pg *pg, const struct step *st)
{
    if (PQputCopyData(pg->conn, copy_header, sizeof(copy_header)) != 1) {
        return false;
    }
    for (size_t off = 0; off < st->len; off += CHUNK) {
        size_t n = st->len - off < CHUNK ? st->len - off : CHUNK;
        if (PQputCopyData(pg->conn, st->data + off, (int)n) != 1) {
            return false;
        }
    }
    return PQputCopyData(pg->conn, copy_trailer, sizeof(copy_trailer)) == 1;
}

/* What a failed run means, after it has been cleaned up. */
static int failed(struct store__pg *pg, int64_t now, const char *state,
                  bool sent_all)
{
    enum store__pg_class cls = store__pg_classify(state);
    if (pg->conn && PQstatus(pg->conn) != CONNECTION_OK) {
        cls = STORE__PG_LOST;
    }
    if (cls != STORE__PG_LOST && pg->conn &&
        PQtransactionStatus(pg->conn) != PQTRANS_IDLE) {
        PGresult *res = PQexec(pg->conn, "ROLLBACK");
        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
            cls = STORE__PG_LOST;
        }
        PQclear(res);
    }
    switch (cls) {
    case STORE__PG_DUPLICATE:
        return -EEXIST;
    case STORE__PG_PERMANENT:
        schedule(pg, now);
        return -EINVAL;
    case STORE__PG_TRANSIENT:
        schedule(pg, now);
        return -EAGAIN;
    case STORE__PG_LOST:
    default:
        if (sent_all) {
            pg->uncertain = true;
        }
        disconnect(pg, now);
        schedule(pg, now);
        return -ECONNRESET;
    }
}

/*
 * Runs BEGIN; @steps; COMMIT as one query. Returns 0 (committed), -EEXIST
 * (a duplicate key; rolled back), or what failed() says.
 */
static int run(struct store__pg *pg, const struct step *steps, size_t n,
               int64_t now, struct store__pg_stats *stats)
{
    actor_buf_reset(&pg->sql);
    actor_buf_str(&pg->sql, "BEGIN;\n");
    size_t last_copy = 0;
    for (size_t i = 0; i < n; i++) {
        actor_buf_str(&pg->sql, steps[i].sql);
        actor_buf_str(&pg->sql, ";\n");
        if (steps[i].data) {
            last_copy = i + 1;
        }
    }
    actor_buf_str(&pg->sql, "COMMIT");
    if (pg->sql.err) {
        return -ENOMEM;
    }
    if (!PQsendQuery(pg->conn, pg->sql.data)) {
        set_error(pg, "write", NULL);
        return failed(pg, now, NULL, false);
    }
    /* Results: BEGIN is 0, steps 1..n, COMMIT n + 1. */
    bool sent_all = last_copy == 0;
    char state[6] = "";
    bool error = false;
    size_t k = 0;
    for (;;) {
        PGresult *res = PQgetResult(pg->conn);
        if (!res) {
            break;
        }
        switch (PQresultStatus(res)) {
        case PGRES_COPY_IN: {
            const struct step *st = k >= 1 && k <= n ? &steps[k - 1] : NULL;
            bool ok = !error && st && st->data && send_copy(pg, st);
            if (ok && pg->hook) {
                pg->hook(pg, STORE__PG_STEP_COPY_SENT, pg->hook_arg);
            }
            if (!ok && !error) {
                set_error(pg, "write: COPY", NULL);
                error = true;
            }
            int end = PQputCopyEnd(pg->conn, ok ? NULL : "aborted");
            if (ok && end == 1 && k == last_copy) {
                sent_all = true;
                if (pg->hook) {
                    pg->hook(pg, STORE__PG_STEP_ALL_SENT, pg->hook_arg);
                }
            }
            break;
        }
        case PGRES_COMMAND_OK:
            if (!error && k >= 1 && k <= n) {
                const struct step *st = &steps[k - 1];
                if (st->insert) {
                    long done = atol(PQcmdTuples(res));
                    stats->inserted += (uint64_t)done;
                    stats->skipped += (uint64_t)(st->rows - done);
                } else if (st->direct) {
                    stats->inserted += (uint64_t)st->rows;
                }
            }
            k++;
            break;
        default:
            if (!error) {
                const char *s = PQresultErrorField(res, PG_DIAG_SQLSTATE);
                snprintf(state, sizeof(state), "%s", s ? s : "");
                set_error(pg, "write", res);
                error = true;
            }
            break;
        }
        PQclear(res);
    }
    if (!error && (k != n + 2 || PQstatus(pg->conn) != CONNECTION_OK)) {
        set_error(pg, "write: connection ended", NULL);
        error = true;
    }
    if (error) {
        return failed(pg, now, state[0] ? state : NULL, sent_all);
    }
    return 0;
}

/* Builds the steps of a write of @b; safe mode stages the log tables too. */
static size_t plan(struct store__pg *pg, struct store__batch *b, bool safe,
                   struct step *steps)
{
    size_t n = 0;
    /* Dead letters come in two buffers (see store__batch), one table. */
    const struct store__copy *logs[] = {&b->events, &b->updates, &b->rejected,
                                        &b->rejected_seq};
    const size_t table[] = {0, 1, 2, 2};
    for (size_t i = 0; i < 4; i++) {
        const struct store__copy *c = logs[i];
        const struct log_table *t = &log_tables[table[i]];
        if (c->rows == 0) {
            continue;
        }
        steps[n++] = (struct step){
            .sql = safe ? t->copy_safe : t->copy,
            .data = c->buf.data,
            .len = c->buf.len,
            .rows = c->rows,
            .direct = !safe,
        };
        if (safe) {
            steps[n++] = (struct step){
                .sql = t->insert, .rows = c->rows, .insert = true};
        }
    }
    /* Latest-state rows go into one buffer first; steps point into it once
     * it stops growing. */
    actor_buf_reset(&pg->rows);
    const struct {
        const struct store__map *map;
        const char *copy;
        const char *upsert;
    } kept[] = {{&b->matches, copy_matches, upsert_matches},
                {&b->incidents, copy_incidents, upsert_incidents},
                {NULL, copy_offsets, upsert_offsets}};
    size_t start[3], len[3];
    long rows[3];
    for (size_t i = 0; i < 3; i++) {
        start[i] = pg->rows.len;
        rows[i] = store__batch_encode(b, kept[i].map, &pg->rows);
        len[i] = pg->rows.len - start[i];
    }
    for (size_t i = 0; i < 3; i++) {
        if (rows[i] <= 0) {
            continue;
        }
        steps[n++] = (struct step){.sql = kept[i].copy,
                                   .data = pg->rows.data + start[i],
                                   .len = len[i],
                                   .rows = rows[i]};
        steps[n++] = (struct step){
            .sql = kept[i].upsert, .rows = rows[i], .insert = true};
    }
    return n;
}

int store__pg_write(struct store__pg *pg, struct store__batch *b,
                    int64_t now_ms, struct store__pg_stats *stats)
{
    struct store__pg_stats local;
    if (!stats) {
        stats = &local;
    }
    memset(stats, 0, sizeof(*stats));
    if (!pg->conn) {
        return -ENOTCONN;
    }
    if (now_ms < pg->retry_at) {
        return -EAGAIN;
    }
    if (pg->staged >= pg->vacuum_rows) {
        PGresult *res = PQexec(pg->conn, vacuum_sql);
        int err = 0;
        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
            const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
            set_error(pg, "vacuum", res);
            err = failed(pg, now_ms, state, false);
        }
        PQclear(res);
        if (err != 0) {
            return err == -EEXIST ? -EINVAL : err;
        }
        pg->staged = 0;
    }
    struct step steps[14]; /* 4 logs and 3 kept tables, 2 steps each */
    bool safe = pg->uncertain;
    size_t n = plan(pg, b, safe, steps);
    if (pg->rows.err) {
        return -ENOMEM; /* a row is missing: nothing may be written */
    }
    if (n == 0) {
        return 0;
    }
    int err = run(pg, steps, n, now_ms, stats);
    if (err == -EEXIST && !safe) {
        /* Already stored (see DESIGN): again, skipping what is there. */
        memset(stats, 0, sizeof(*stats));
        stats->retried = 1;
        safe = true;
        n = plan(pg, b, safe, steps);
        if (pg->rows.err) {
            return -ENOMEM;
        }
        err = run(pg, steps, n, now_ms, stats);
    }
    if (err == -EEXIST) {
        /* Safe mode skips every duplicate: this one is our own bug. */
        schedule(pg, now_ms);
        err = -EINVAL;
    }
    if (err != 0) {
        return err;
    }
    stats->safe = safe;
    for (size_t i = 0; i < n; i++) {
        pg->staged += steps[i].insert ? (uint64_t)steps[i].rows : 0;
    }
    pg->uncertain = false;
    succeeded(pg);
    return 0;
}

int store__pg_staged(struct store__pg *pg, long *rows)
{
    if (!pg->conn) {
        return -ENOTCONN;
    }
    PGresult *res =
        PQexec(pg->conn, "SELECT (SELECT count(*) FROM store_feed_events)"
                         " + (SELECT count(*) FROM store_match_updates)"
                         " + (SELECT count(*) FROM store_rejected)"
                         " + (SELECT count(*) FROM store_matches)"
                         " + (SELECT count(*) FROM store_incidents)"
                         " + (SELECT count(*) FROM store_offsets)");
    int err = 0;
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
        *rows = atol(PQgetvalue(res, 0, 0));
    } else {
        set_error(pg, "staged", res);
        err = -EIO;
    }
    PQclear(res);
    return err;
}

/* ---- which matches are stored ------------------------------------------- */

int store__pg_stored(struct store__pg *pg, int64_t now_ms,
                     const char *const *ids, size_t n, bool *stored)
{
    if (n == 0) {
        return 0;
    }
    if (n > STORE__PG_STORED_MAX) {
        return -EINVAL;
    }
    if (!pg->conn) {
        return -ENOTCONN;
    }
    if (now_ms < pg->retry_at) {
        return -EAGAIN;
    }
    /* The server answers with the positions of the stored ones. */
    actor_buf_reset(&pg->sql);
    actor_buf_str(&pg->sql, "SELECT a.n FROM (VALUES ");
    for (size_t i = 0; i < n; i++) {
        actor_buf_printf(&pg->sql, "%s($%zu::text, %zu)", i ? ", " : "", i + 1,
                         i);
    }
    actor_buf_str(&pg->sql, ") AS a (id, n) JOIN matches m ON m.id = a.id");
    if (pg->sql.err) {
        return -ENOMEM;
    }
    memset(stored, 0, n * sizeof(*stored));
    PGresult *res =
        PQexecParams(pg->conn, pg->sql.data, (int)n, NULL, ids, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        const char *s = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
        char state[6];
        snprintf(state, sizeof(state), "%s", s ? s : "");
        set_error(pg, "stored", res);
        PQclear(res);
        int err = failed(pg, now_ms, state[0] ? state : NULL, false);
        return err == -EEXIST ? -EINVAL : err;
    }
    int err = 0;
    for (int r = 0; r < PQntuples(res) && err == 0; r++) {
        char *end;
        unsigned long i = strtoul(PQgetvalue(res, r, 0), &end, 10);
        if (*end != '\0' || i >= n) {
            set_error(pg, "stored: a position out of range", NULL);
            err = -EINVAL;
        } else {
            stored[i] = true;
        }
    }
    PQclear(res);
    return err;
}

/* ---- the start-up load --------------------------------------------------- */

/* Phases after which a match changes no more (feed-protocol.md 3). */
/* The phases the model retires a match in (model_actor.c is_finished()):
 * one loaded at start-up would be retired at once, at every start. */
#define PHASE_OVER "('ended', 'abandoned', 'cancelled', 'postponed')"

/*
 * The load query: four result sets in one snapshot. %1$s filters matches
 * (alias m), %2$s filters offsets; both appear as given.
 */
static const char load_sql[] =
    "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY;"
    "SELECT source, acked_seq FROM source_offsets WHERE %2$s"
    " ORDER BY source COLLATE \"C\";"
    "SELECT id, version, msgnr, source, sport, competition, home, away,"
    " start_text, phase, clock_time, clock_running, home_score, away_score,"
    " feed, gap, (extract(epoch FROM updated_at) * 1000)::bigint"
    " FROM matches m WHERE %1$s ORDER BY id COLLATE \"C\";"
    /* Live incidents in the order of the stored snapshot's list: the order
     * browsers saw. One the snapshot lacks (it should not) goes last. */
    "WITH pos AS (SELECT m.id AS match_id, o.e->>'id' AS incident_id, o.n"
    " FROM matches m, jsonb_array_elements(CASE jsonb_typeof("
    "m.snapshot->'incidents') WHEN 'array' THEN m.snapshot->'incidents'"
    " ELSE '[]'::jsonb END) WITH ORDINALITY AS o(e, n) WHERE %1$s)"
    " SELECT i.match_id, i.incident_id, i.type, i.team, i.minute, i.stoppage,"
    " i.player, i.assist, i.confirmed, i.version"
    " FROM incidents i JOIN matches m ON m.id = i.match_id"
    " LEFT JOIN pos p ON p.match_id = i.match_id"
    /* Keys are COLLATE "C" (schema.sql), ->> gives the default: say which
     * (an older database's keys may have the default, this works for both). */
    " AND p.incident_id = i.incident_id COLLATE \"C\""
    " WHERE NOT i.deleted AND %1$s"
    " ORDER BY i.match_id COLLATE \"C\", p.n NULLS LAST, i.version,"
    " i.incident_id COLLATE \"C\";"
    "SELECT coalesce(max(id), 0) FROM rejected_documents;"
    "COMMIT";

/* "true", or "m.updated_at within @s seconds" into @b. */
static void within(struct actor_buf *b, uint32_t s)
{
    if (s == 0) {
        actor_buf_str(b, "true");
    } else {
        actor_buf_printf(b, "m.updated_at >= now() - make_interval(secs => %u)",
                         s);
    }
}

/* Builds the load query for @match_id (or every match kept: a finished one
 * changed within @retention_s, an unfinished one within @idle_s; 0: all)
 * into pg->sql. Returns 0, -EINVAL (@match_id is not valid in the
 * connection's encoding) or -ENOMEM. */
static int load_query(struct store__pg *pg, const char *match_id,
                      uint32_t retention_s, uint32_t idle_s)
{
    struct actor_buf filter;
    actor_buf_init(&filter);
    if (match_id) {
        char *literal = PQescapeLiteral(pg->conn, match_id, strlen(match_id));
        if (!literal) {
            set_error(pg, "load: match id", NULL);
            return -EINVAL;
        }
        actor_buf_printf(&filter, "m.id = %s", literal);
        PQfreemem(literal);
    } else {
        /* A NULL phase is unfinished: the CASE takes the ELSE. */
        actor_buf_str(&filter, "CASE WHEN m.phase IN " PHASE_OVER " THEN ");
        within(&filter, retention_s);
        actor_buf_str(&filter, " ELSE ");
        within(&filter, idle_s);
        actor_buf_str(&filter, " END");
    }
    actor_buf_reset(&pg->sql);
    if (!filter.err) {
        actor_buf_printf(&pg->sql, load_sql, filter.data,
                         match_id ? "false" : "true");
    }
    int err = filter.err ? filter.err : pg->sql.err;
    actor_buf_release(&filter);
    return err;
}

int store__pg_load(struct store__pg *pg, int64_t now_ms, const char *match_id,
                   uint32_t retention_s, uint32_t idle_s,
                   struct store_load **out)
{
    *out = NULL;
    if (!pg->conn) {
        return -ENOTCONN;
    }
    if (now_ms < pg->retry_at) {
        return -EAGAIN;
    }
    int err = load_query(pg, match_id, retention_s, idle_s);
    if (err != 0) {
        return err;
    }
    if (!PQsendQuery(pg->conn, pg->sql.data)) {
        set_error(pg, "load", NULL);
        return failed(pg, now_ms, NULL, false);
    }
    PGresult *sets[4] = {NULL};
    size_t n_sets = 0;
    char state[6] = "";
    bool error = false;
    PGresult *res;
    while ((res = PQgetResult(pg->conn))) {
        ExecStatusType st = PQresultStatus(res);
        if (st == PGRES_TUPLES_OK && n_sets < 4 && !error) {
            sets[n_sets++] = res;
            continue;
        }
        if (st != PGRES_COMMAND_OK && !error) {
            const char *s = PQresultErrorField(res, PG_DIAG_SQLSTATE);
            snprintf(state, sizeof(state), "%s", s ? s : "");
            set_error(pg, "load", res);
            error = true;
        }
        PQclear(res);
    }
    if (!error && (n_sets != 4 || PQstatus(pg->conn) != CONNECTION_OK)) {
        set_error(pg, "load: connection ended", NULL);
        error = true;
    }
    if (error) {
        err = failed(pg, now_ms, state[0] ? state : NULL, false);
        if (err == -EEXIST) {
            err = -EINVAL;
        }
    } else {
        err = store__load_build(sets, out);
        if (err == 0) {
            succeeded(pg);
        }
        if (err == -EINVAL) {
            snprintf(pg->error, sizeof(pg->error),
                     "load: a stored value is out of range");
        }
    }
    for (size_t i = 0; i < n_sets; i++) {
        PQclear(sets[i]);
    }
    return err;
}
