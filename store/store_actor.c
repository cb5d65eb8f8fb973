/* store/store_actor.c - the store actor: batches, acks after COMMIT, outages,
 * the start-up load. */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ingest/event.h"
#include "store/store_impl.h"

/*
 * DESIGN
 * One blocking actor owns the connection, the batch being filled and the
 * completion tracker (store_impl.h). Every message adds to them at once;
 * the batch is written, in one transaction, when one of three things
 * happens:
 *   - it holds batch_rows rows;
 *   - its first row is batch_ms old (checked after every message, and a
 *     timer for when no message comes);
 *   - the mailbox has been drained up to the point where the batch got
 *     its first row: at that moment the actor sends itself a kick, and
 *     the mailbox being FIFO, the kick is handled once everything queued
 *     before it has been. An idle store so commits at once (the latency of
 *     one commit), a busy one commits everything that queued up while it
 *     wrote the previous batch (group commit: batches grow with the load,
 *     bounded by batch_rows).
 * A write blocks the thread (libpq's blocking mode): messages queue up in
 * the mailbox meanwhile, which is what a batch is made of.
 *
 * After COMMIT the durable offsets are updated in memory and every source
 * whose offset advanced gets STORE_MSG_ACK, looked up by name then. A
 * source whose mailbox is full is owed the ack: it gets the latest one
 * when the runtime says there is room (ACTOR_MSG_RESUME).
 *
 * Outages: a failed write or connection keeps the batch (and everything
 * still arriving goes into it), logs "database unreachable" once, and a
 * timer retries at the time the writer's full-jitter backoff allows. The
 * first success logs "database back" with the outage's length and writes
 * what waited, in one transaction (the writer's safe mode makes a retried
 * batch harmless whatever the fate of the one before).
 *
 * Back-pressure: while the database cannot be written and the backlog
 * (rows in the batch plus events waiting for their updates) is at its
 * bound, the actor stops draining its mailbox: senders then get -EAGAIN,
 * match actors and sources queue, and connections stop reading. The
 * runtime's default loop drains whatever arrives, so the store has a run()
 * that is that loop plus this one rule; while paused it sleeps until the
 * backoff allows the next attempt and makes it itself. It never pauses
 * while the database takes writes: completing an event may need messages
 * still in the mailbox, and a write can then always make room.
 *
 * Start-up: init connects and loads (offsets, matches with incidents, the
 * highest dead-letter id); while the database is down it defers and the
 * retry timer loads later. The model's first STORE_MSG_LOAD_REQ gets that
 * load; a later one (the model restarted while the store lives) gets a
 * fresh load after the batch is written, and waits while it cannot be.
 *
 * A match actor asks for its one match when it starts: on first sight of
 * a match (the database mostly has no row for it) and after a restart.
 * A feed that starts 400 matches at once would cost 400 load queries in a
 * row, each a round trip and a transaction, ahead of every batch (measured:
 * about 0.3 s, the p99 of the e2e bench's ack latency). So such requests
 * wait for a kick of their own (MSG_ASK: the mailbox drained up to them;
 * the batch's kick is left alone, so batches keep their size), one query
 * tells which of them the database holds, the others are answered
 * "nothing stored" at once and only the stored ones are loaded one by one.
 */

enum {
    MSG_KICK = 0x3f0, /* to itself: the mailbox is drained up to here */
    MSG_FLUSH,        /* timer: the batch is batch_ms old */
    MSG_RETRY,        /* timer: the backoff allows another attempt */
    MSG_ASK,          /* to itself: the mailbox is drained up to the kept
                         one-match requests */
};

#define SOURCE_PREFIX "source:"

static const char *const table_names[] = {
    "feed_events", "match_updates", "rejected_documents",
    "matches",     "incidents",     "source_offsets"};
enum { T_EVENTS, T_UPDATES, T_REJECTED, T_MATCHES, T_INCIDENTS, T_OFFSETS };
#define N_TABLES 6

struct metrics {
    struct actor_metric *events; /* durable events */
    struct actor_metric *rows[N_TABLES];
    struct actor_metric *batch_rows;
    struct actor_metric *flush_seconds;
    struct actor_metric *backlog;
    struct actor_metric *backlog_bytes;
    struct actor_metric *acks;
    struct actor_metric *db_up;
    struct actor_metric *outages;
    struct actor_metric *paused;
    struct actor_metric *skipped;  /* rows found already stored */
    struct actor_metric *stale;    /* events at or below a seen seq */
    struct actor_metric *unknown;  /* outcomes for events not held */
    struct actor_metric *repeated; /* the same element reported twice */
};

struct store {
    struct store_config cfg; /* defaults applied */
    struct store__pg *pg;
    struct store__batch *batch;     /* the next transaction */
    struct store__pending *pending; /* events waiting for their updates */
    struct store__map acked;        /* source -> durable seq (value) */
    struct store__map owed;         /* sources whose ack met a full mailbox */
    struct store_load *load;        /* from init, until the model takes it
                                       or a commit makes it stale */
    bool loaded;                    /* offsets and ids known */
    bool deferred;                  /* init returned ACTOR_DEFER */
    bool failing;                   /* the last attempt failed; no success
                                       since */
    bool outage;                    /* "database unreachable" was logged */
    bool paused;                    /* "backlog full" was logged */
    bool kick_queued;
    bool ask_queued;
    uint64_t rejected_id;       /* the last dead-letter id given */
    int64_t batch_since;        /* ms: the batch's first row; 0: empty */
    int64_t paused_since;       /* ms: when the pause began */
    uint64_t flush_timer;       /* 0: none */
    uint64_t retry_timer;       /* 0: none */
    struct actor_msg **waiting; /* requests kept until they can be
                                   answered, in arrival order */
    size_t n_waiting;
    size_t cap_waiting;
    struct actor_msg **asking; /* one-match load requests, answered
                                  together at MSG_ASK */
    size_t n_asking;
    size_t cap_asking;
    struct actor_buf name; /* scratch: "source:<name>" */
    struct metrics m;
};

static atomic_bool db_up;

bool store_db_is_up(void)
{
    return atomic_load_explicit(&db_up, memory_order_relaxed);
}

void store_config_default(struct store_config *cfg)
{
    *cfg = (struct store_config){
        .batch_rows = STORE_BATCH_ROWS_DEFAULT,
        .batch_ms = STORE_BATCH_MS_DEFAULT,
        .backlog_rows = STORE_BACKLOG_DEFAULT,
        .backlog_bytes = STORE_BACKLOG_BYTES_DEFAULT,
        .retention_s = STORE_RETENTION_S_DEFAULT,
        .mailbox = STORE_MAILBOX_DEFAULT,
    };
}

int store_child_spec(const struct store_config *cfg,
                     struct actor_child_spec *out)
{
    *out = (struct actor_child_spec){
        .id = "store",
        .start = {.ops = &store_ops,
                  .arg = (void *)cfg,
                  .name = "store",
                  .mailbox =
                      cfg->mailbox ? cfg->mailbox : STORE_MAILBOX_DEFAULT,
                  .thread = true},
        .restart = ACTOR_PERMANENT,
        .shutdown_ms = STORE_SHUTDOWN_MS,
    };
    return 0;
}

/* ---- metrics and gauges -------------------------------------------------- */

static void metrics_init(struct metrics *m)
{
    static const double rows_bounds[] = {1,    10,    100,   1000,  2000,
                                         5000, 10000, 20000, 50000, 100000};
    static const double secs_bounds[] = {
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
    m->events = actor_metric_counter("scorewire_store_events_total",
                                     "Events made durable.", NULL);
    for (size_t i = 0; i < N_TABLES; i++) {
        char label[64];
        actor_metric_label(label, sizeof(label), "table", table_names[i]);
        m->rows[i] = actor_metric_counter("scorewire_store_rows_total",
                                          "Rows committed, by table.", label);
    }
    m->batch_rows = actor_metric_histogram(
        "scorewire_store_batch_rows", "Rows per committed transaction.", NULL,
        rows_bounds, sizeof(rows_bounds) / sizeof(rows_bounds[0]));
    m->flush_seconds = actor_metric_histogram(
        "scorewire_store_flush_seconds",
        "Time to write one batch, COMMIT included.", NULL, secs_bounds,
        sizeof(secs_bounds) / sizeof(secs_bounds[0]));
    m->backlog = actor_metric_gauge(
        "scorewire_store_backlog_rows",
        "Rows held: the batch and events waiting for their updates.", NULL);
    m->backlog_bytes = actor_metric_gauge(
        "scorewire_store_backlog_bytes",
        "Bytes of the rows in the batch (the next transaction).", NULL);
    m->acks = actor_metric_counter("scorewire_store_acks_total",
                                   "Acks sent to source actors.", NULL);
    m->db_up = actor_metric_gauge("scorewire_store_db_up",
                                  "1 while connected to PostgreSQL.", NULL);
    m->outages =
        actor_metric_counter("scorewire_store_outages_total",
                             "Times PostgreSQL became unreachable.", NULL);
    m->paused = actor_metric_gauge(
        "scorewire_store_paused",
        "1 while the store leaves its mailbox alone (outage, full backlog).",
        NULL);
    m->skipped = actor_metric_counter(
        "scorewire_store_skipped_rows_total",
        "Rows a retried write found already stored.", NULL);
    const char *help = "Messages the store ignored, by reason.";
    m->stale = actor_metric_counter("scorewire_store_ignored_total", help,
                                    "reason=\"stale_seq\"");
    m->unknown = actor_metric_counter("scorewire_store_ignored_total", help,
                                      "reason=\"unknown_event\"");
    m->repeated = actor_metric_counter("scorewire_store_ignored_total", help,
                                       "reason=\"repeated_element\"");
}

static uint64_t backlog(const struct store *s)
{
    return store__batch_rows(s->batch) + store__pending_count(s->pending);
}

/* True while the actor must leave its mailbox alone (see DESIGN): writes
 * fail and the backlog is at its bound, in rows or in bytes. */
static bool is_paused(const struct store *s)
{
    return s->failing && (backlog(s) >= s->cfg.backlog_rows ||
                          s->batch->bytes >= s->cfg.backlog_bytes);
}

/* Publishes the backlog and whether the store is paused; logs the pause
 * once when it starts (feeds are held back from then on) and once when
 * it ends, with how long it lasted. */
static void note_backlog(struct actor_ctx *ctx, struct store *s)
{
    uint64_t rows = backlog(s);
    bool paused = is_paused(s);
    actor_metric_set(s->m.backlog, (int64_t)rows);
    actor_metric_set(s->m.backlog_bytes, (int64_t)s->batch->bytes);
    actor_metric_set(s->m.paused, paused);
    if (paused == s->paused) {
        return;
    }
    s->paused = paused;
    if (paused) {
        s->paused_since = actor_now_ms();
        actor_log(ctx, ACTOR_LOG_WARN, "backlog full: feeds held back", "rows",
                  ACTOR_LOG_INT((int64_t)rows), "bytes",
                  ACTOR_LOG_INT((int64_t)s->batch->bytes), NULL);
    } else {
        actor_log(ctx, ACTOR_LOG_INFO, "backlog below its bound", "rows",
                  ACTOR_LOG_INT((int64_t)rows), "paused_ms",
                  ACTOR_LOG_INT(actor_now_ms() - s->paused_since), NULL);
    }
}

static void set_db_up(struct store *s, bool up)
{
    atomic_store_explicit(&db_up, up, memory_order_relaxed);
    actor_metric_set(s->m.db_up, up);
}

/* ---- acks ---------------------------------------------------------------- */

static uint64_t acked_seq(const struct store *s, const char *source)
{
    const struct store__map_entry *e =
        store__map_get(&s->acked, source, strlen(source));
    return e ? e->value : 0;
}

/* Returns a new ack telling @source what is durable and what is held. */
static struct store_ack_msg *ack_new(const struct store *s, const char *source)
{
    uint64_t seq = acked_seq(s, source);
    uint64_t pending = store__pending_last_seq(s->pending, source);
    return store_ack_msg_new(source, seq, pending > seq ? pending : seq);
}

/*
 * Sends @source (@len bytes) its durable seq. A missing source actor is
 * skipped (it asks when it starts); a full mailbox makes the ack owed.
 * Returns 0 or -ENOMEM.
 */
static int send_ack(struct actor_ctx *ctx, struct store *s, const char *source,
                    size_t len)
{
    actor_buf_reset(&s->name);
    actor_buf_str(&s->name, SOURCE_PREFIX);
    actor_buf_add(&s->name, source, len);
    if (s->name.err) {
        return -ENOMEM;
    }
    uint64_t pid = actor_whereis(s->name.data);
    if (pid == 0) {
        return 0;
    }
    struct store_ack_msg *m = ack_new(s, source);
    if (!m) {
        return -ENOMEM;
    }
    int rc = actor_send(ctx, pid, &m->hdr);
    if (rc == 0) {
        actor_metric_add(s->m.acks, 1);
        return 0;
    }
    actor_msg_free(&m->hdr);
    if (rc == -EAGAIN) {
        bool added;
        if (!store__map_put(&s->owed, source, len, &added)) {
            return -ENOMEM;
        }
    }
    return 0;
}

/* Room in a mailbox: tries every owed ack again. */
static int on_resume(struct actor_ctx *ctx, struct store *s)
{
    struct store__map owed = s->owed;
    store__map_init(&s->owed);
    int err = 0;
    for (uint32_t i = 0; i < owed.n && err == 0; i++) {
        err = send_ack(ctx, s, owed.entries[i].key, owed.entries[i].len);
    }
    store__map_release(&owed);
    return err;
}

/* ---- writing ------------------------------------------------------------- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int arm_retry(struct actor_ctx *ctx, struct store *s)
{
    if (s->retry_timer) {
        return 0;
    }
    int64_t wait = store__pg_retry_at(s->pg) - actor_now_ms();
    struct actor_msg *m = actor_msg_new(sizeof(*m), MSG_RETRY);
    if (!m) {
        return -ENOMEM;
    }
    s->retry_timer = actor_send_after(ctx, wait > 0 ? (uint32_t)wait : 0, m);
    return s->retry_timer ? 0 : -ENOMEM;
}

static void outage_begins(struct actor_ctx *ctx, struct store *s)
{
    set_db_up(s, false);
    if (s->outage) {
        return;
    }
    s->outage = true;
    actor_metric_add(s->m.outages, 1);
    actor_log(ctx, ACTOR_LOG_WARN, "database unreachable", "error",
              store__pg_error(s->pg), NULL);
}

static void outage_ends(struct actor_ctx *ctx, struct store *s,
                        int64_t outage_ms)
{
    set_db_up(s, true);
    if (!s->outage) {
        return;
    }
    s->outage = false;
    actor_log(ctx, ACTOR_LOG_INFO, "database back", "duration_ms",
              ACTOR_LOG_INT(outage_ms), NULL);
}

/*
 * Handles a failed database call (@what names it): the work is kept and
 * the next attempt scheduled. Returns 0, or a negative errno when the
 * actor must end (out of memory, or the database refuses what we wrote).
 */
static int failed(struct actor_ctx *ctx, struct store *s, int err,
                  const char *what)
{
    switch (err) {
    case -ENOMEM:
        return err;
    case -EINVAL:
        return actor_fail(ctx, "%s: %s", what, store__pg_error(s->pg));
    case -EAGAIN:
        if (store__pg_is_up(s->pg)) {
            ACTOR_LOG_RL(ctx, ACTOR_LOG_WARN, "database refused, retrying",
                         "call", what, "error", store__pg_error(s->pg), NULL);
        }
        break;
    default: /* lost, refused, no schema: down until a connection works */
        outage_begins(ctx, s);
        break;
    }
    s->failing = true;
    return arm_retry(ctx, s);
}

/* A batch is durable: metrics, offsets, acks, an empty batch. */
static int committed(struct actor_ctx *ctx, struct store *s,
                     const struct store__pg_stats *st, double seconds)
{
    struct store__batch *b = s->batch;
    uint64_t offsets = 0;
    for (uint32_t i = 0; i < b->offsets.n; i++) {
        offsets += b->offsets.entries[i].value > 0;
    }
    const uint64_t rows[N_TABLES] = {b->events.rows,
                                     b->updates.rows,
                                     b->rejected.rows + b->rejected_seq.rows,
                                     b->matches.n,
                                     b->incidents.n,
                                     offsets};
    uint64_t total = 0;
    for (size_t i = 0; i < N_TABLES; i++) {
        actor_metric_add(s->m.rows[i], rows[i]);
        total += rows[i];
    }
    actor_metric_add(s->m.events, b->events.rows);
    actor_metric_observe(s->m.batch_rows, (double)total);
    actor_metric_observe(s->m.flush_seconds, seconds);
    if (actor_log_enabled(ACTOR_LOG_DEBUG)) {
        /* The benchmark reads batch sizes and write times from these. */
        actor_log(ctx, ACTOR_LOG_DEBUG, "batch written", "rows",
                  ACTOR_LOG_INT(total), "events", ACTOR_LOG_INT(b->events.rows),
                  "us", ACTOR_LOG_INT(seconds * 1e6), NULL);
    }
    if (st->skipped > 0) {
        actor_metric_add(s->m.skipped, st->skipped);
        ACTOR_LOG_RL(ctx, ACTOR_LOG_INFO, "rows already stored, skipped",
                     "rows", ACTOR_LOG_INT(st->skipped), NULL);
    }

    int err = 0;
    for (uint32_t i = 0; i < b->offsets.n && err == 0; i++) {
        const struct store__map_entry *e = &b->offsets.entries[i];
        if (e->value == 0) {
            continue;
        }
        bool added;
        struct store__map_entry *a =
            store__map_put(&s->acked, e->key, e->len, &added);
        if (!a) {
            return -ENOMEM;
        }
        if (a->value < e->value) {
            a->value = e->value;
        }
        err = send_ack(ctx, s, e->key, e->len);
    }
    store__batch_reset(b);
    s->batch_since = 0;
    s->failing = false;
    store_load_free(s->load);
    s->load = NULL;
    if (s->flush_timer) {
        actor_cancel_timer(ctx, s->flush_timer);
        s->flush_timer = 0;
    }
    return err;
}

/* Writes the batch if there is one and the database may be tried. Returns
 * 0 (written, or kept for later) or a fatal error. */
static int flush(struct actor_ctx *ctx, struct store *s)
{
    int64_t now = actor_now_ms();
    if (store__batch_is_empty(s->batch) || !store__pg_is_up(s->pg) ||
        now < store__pg_retry_at(s->pg)) {
        return 0; /* nothing to write, or the retry timer's turn */
    }
    struct store__pg_stats st;
    double t0 = now_s();
    int err = store__pg_write(s->pg, s->batch, now, &st);
    if (err != 0) {
        return failed(ctx, s, err, "write");
    }
    return committed(ctx, s, &st, now_s() - t0);
}

/* ---- loading and requests ------------------------------------------------ */

/*
 * Where this incarnation's dead-letter ids start: above the highest one
 * stored (adopt_load) and above the wall clock's milliseconds times 2^20.
 * max(id) + 1 alone could give out an id again: a store restarted while
 * its predecessor's commit was still in flight (the reply lost) reads the
 * max without that commit's rows, and a second daemon on the same
 * database reads the same max. The resend of the batch holding the reused
 * id would then skip the new row as already stored. With the clock an
 * incarnation starts clear of another one's ids unless that one gave out
 * a million of them per millisecond between the two starts (or the clock
 * stepped back that far). The ids still only grow, and fit a bigint until
 * the year 2248.
 */
#define REJECTED_ID_CLOCK_BITS 20

static uint64_t rejected_id_floor(int64_t wall_ms)
{
    if (wall_ms <= 0 || wall_ms > (INT64_MAX >> REJECTED_ID_CLOCK_BITS)) {
        return 0;
    }
    return (uint64_t)wall_ms << REJECTED_ID_CLOCK_BITS;
}

/* Takes a load's offsets and dead-letter id as the store's own. */
static int adopt_load(struct store *s, struct store_load *load)
{
    for (size_t i = 0; i < load->n_offsets; i++) {
        const struct store_offset *o = &load->offsets[i];
        bool added;
        struct store__map_entry *e =
            store__map_put(&s->acked, o->source, strlen(o->source), &added);
        if (!e) {
            return -ENOMEM;
        }
        if (e->value < o->acked_seq) {
            e->value = o->acked_seq;
        }
    }
    if (s->rejected_id < load->rejected_id) {
        s->rejected_id = load->rejected_id;
    }
    return 0;
}

/* Loads every match the model starts with. Sets *@out. */
static int load_all(struct store *s, struct store_load **out)
{
    return store__pg_load(s->pg, actor_now_ms(), NULL, s->cfg.retention_s,
                          s->cfg.idle_s, out);
}

/* The start-up load (connected). Returns 0, or what load_all returned. */
static int start_up(struct actor_ctx *ctx, struct store *s)
{
    struct store_load *load;
    int err = load_all(s, &load);
    if (err != 0) {
        return err;
    }
    err = adopt_load(s, load);
    if (err != 0) {
        store_load_free(load);
        return err;
    }
    s->load = load;
    s->loaded = true;
    actor_log(ctx, ACTOR_LOG_INFO, "database loaded", "matches",
              ACTOR_LOG_INT(load->n_matches), "sources",
              ACTOR_LOG_INT(load->n_offsets), NULL);
    if (s->deferred) {
        s->deferred = false;
        actor_init_done(ctx);
    }
    return 0;
}

static void reply(struct actor_ctx *ctx, uint64_t to, struct actor_msg *m)
{
    if (actor_send_or_free(ctx, to, m) != 0) {
        ACTOR_LOG_RL(ctx, ACTOR_LOG_WARN, "reply dropped", "to",
                     ACTOR_LOG_INT(to), NULL);
    }
}

static int answer_acked(struct actor_ctx *ctx, struct store *s,
                        const struct store_acked_req_msg *req)
{
    struct store_ack_msg *m = ack_new(s, req->source);
    if (!m) {
        return -ENOMEM;
    }
    reply(ctx, req->reply_to, &m->hdr);
    return 0;
}

/*
 * Answers the model's request for every match. Returns 0 (answered),
 * EAGAIN (positive: not now; keep it until the database is written) or a
 * fatal error.
 */
static int answer_load_all(struct actor_ctx *ctx, struct store *s,
                           const struct store_load_req_msg *req)
{
    struct store_load *load = s->load;
    s->load = NULL;
    if (!load) {
        if (!s->loaded || !store__batch_is_empty(s->batch) ||
            !store__pg_is_up(s->pg)) {
            return EAGAIN;
        }
        int err = load_all(s, &load);
        if (err != 0) {
            err = failed(ctx, s, err, "load");
            return err < 0 ? err : EAGAIN;
        }
    }
    struct store_loaded_msg *m = store_loaded_msg_new(0, load, NULL);
    if (!m) {
        store_load_free(load);
        return -ENOMEM;
    }
    reply(ctx, req->reply_to, &m->hdr);
    return 0;
}

/* Answers a restarted match actor: the newest state the store knows. */
static int answer_load_one(struct actor_ctx *ctx, struct store *s,
                           const struct store_load_req_msg *req)
{
    struct match_image *img = NULL;
    struct store_load *load = NULL;
    int status = 0;
    const struct store__map_entry *e =
        store__map_get(&s->batch->matches, req->match_id,
                       strnlen(req->match_id, sizeof(req->match_id)));
    if (e) {
        /* Newer than the row: every update not in the database is here. */
        img = match_image_ref(e->data);
    } else if (!s->loaded || !store__pg_is_up(s->pg)) {
        status = -EAGAIN;
    } else {
        status =
            store__pg_load(s->pg, actor_now_ms(), req->match_id, 0, 0, &load);
        if (status == -ENOMEM) {
            return status;
        }
        /* -EINVAL (an id the database cannot take, a row out of range) is
         * the requester's to handle: it starts empty. The rest is an
         * outage like any other. */
        if (status != 0 && status != -EINVAL) {
            int err = failed(ctx, s, status, "load match");
            if (err < 0) {
                return err;
            }
            status = -EAGAIN;
        }
    }
    struct store_loaded_msg *m = store_loaded_msg_new(status, load, img);
    if (!m) {
        store_load_free(load);
        match_image_unref(img);
        return -ENOMEM;
    }
    reply(ctx, req->reply_to, &m->hdr);
    return 0;
}

/* Answers what it can of the kept requests, in order. */
static int serve_waiting(struct actor_ctx *ctx, struct store *s)
{
    size_t kept = 0;
    int err = 0;
    for (size_t i = 0; i < s->n_waiting; i++) {
        struct actor_msg *msg = s->waiting[i];
        int rc = EAGAIN;
        if (err == 0 && s->loaded) {
            rc = msg->type == STORE_MSG_ACKED_REQ
                     ? answer_acked(
                           ctx, s,
                           container_of(msg, struct store_acked_req_msg, hdr))
                     : answer_load_all(
                           ctx, s,
                           container_of(msg, struct store_load_req_msg, hdr));
        }
        if (rc < 0) {
            err = rc;
        }
        if (rc == EAGAIN || rc < 0) {
            s->waiting[kept++] = msg;
        } else {
            actor_msg_free(msg);
        }
    }
    s->n_waiting = kept;
    return err;
}

/* Appends @msg to the list *@v (*@n of *@cap used). Returns ACTOR_KEPT or
 * -ENOMEM. */
static int keep(struct actor_msg ***v, size_t *n, size_t *cap,
                struct actor_msg *msg)
{
    if (*n == *cap) {
        size_t grown = *cap ? *cap * 2 : 4;
        struct actor_msg **w = store__realloc(*v, grown * sizeof(*w));
        if (!w) {
            return -ENOMEM;
        }
        *v = w;
        *cap = grown;
    }
    (*v)[(*n)++] = msg;
    return ACTOR_KEPT;
}

/* Keeps @msg until serve_waiting() can answer it. Returns ACTOR_KEPT or
 * -ENOMEM. */
static int keep_waiting(struct store *s, struct actor_msg *msg)
{
    return keep(&s->waiting, &s->n_waiting, &s->cap_waiting, msg);
}

/* True when the database must be asked for @req's match: it is not in the
 * batch, and the database can be read. */
static bool asks_database(const struct store *s,
                          const struct store_load_req_msg *req)
{
    return s->loaded && store__pg_is_up(s->pg) &&
           !store__map_get(&s->batch->matches, req->match_id,
                           strnlen(req->match_id, sizeof(req->match_id)));
}

/*
 * Answers the kept one-match requests (see DESIGN), in arrival order, at
 * most STORE__PG_STORED_MAX per query. Returns 0 or a fatal error; the
 * requests not answered then stay kept (the actor is ending).
 */
static int serve_asking(struct actor_ctx *ctx, struct store *s)
{
    const char *ids[STORE__PG_STORED_MAX];
    bool stored[STORE__PG_STORED_MAX];
    bool asked[STORE__PG_STORED_MAX]; /* by request: its id is in ids[] */
    size_t done = 0;
    int err = 0;
    while (done < s->n_asking && err == 0) {
        size_t n = s->n_asking - done;
        n = n < STORE__PG_STORED_MAX ? n : STORE__PG_STORED_MAX;
        size_t n_ids = 0;
        for (size_t i = 0; i < n; i++) {
            const struct store_load_req_msg *req = container_of(
                s->asking[done + i], struct store_load_req_msg, hdr);
            size_t len = strnlen(req->match_id, sizeof(req->match_id));
            asked[i] = asks_database(s, req) &&
                       store__utf8_is_valid(req->match_id, len);
            if (asked[i]) {
                ids[n_ids++] = req->match_id;
            }
        }
        int status =
            store__pg_stored(s->pg, actor_now_ms(), ids, n_ids, stored);
        if (status == -ENOMEM) {
            return status;
        }
        if (status != 0) {
            err = failed(ctx, s, status, "load match");
            if (err < 0) {
                break;
            }
        }
        /* ids[] is in request order: the k-th asked is ids[k]. */
        size_t k = 0;
        for (size_t i = 0; i < n && err == 0; i++) {
            struct actor_msg *msg = s->asking[done + i];
            const struct store_load_req_msg *req =
                container_of(msg, struct store_load_req_msg, hdr);
            bool answer_now = asked[i] && (status != 0 || !stored[k]);
            k += asked[i];
            if (answer_now) {
                /* Not stored (an empty load: start fresh), or unknown for
                 * now. */
                struct store_load *none = NULL;
                if (status == 0 && !(none = store__load_empty())) {
                    err = -ENOMEM;
                    break;
                }
                struct store_loaded_msg *m =
                    store_loaded_msg_new(status != 0 ? -EAGAIN : 0, none, NULL);
                if (!m) {
                    store_load_free(none);
                    err = -ENOMEM;
                    break;
                }
                reply(ctx, req->reply_to, &m->hdr);
            } else {
                /* In the batch, stored, invalid, or the database down. */
                err = answer_load_one(ctx, s, req);
                if (err < 0) {
                    break;
                }
            }
            actor_msg_free(msg);
            s->asking[done + i] = NULL;
        }
        while (done < s->n_asking && !s->asking[done]) {
            done++;
        }
    }
    if (done > 0) {
        memmove(s->asking, s->asking + done,
                (s->n_asking - done) * sizeof(*s->asking));
        s->n_asking -= done;
    }
    return err;
}

/*
 * Connects if needed, loads if not loaded yet, writes the batch and
 * answers kept requests: what a retry does. Returns 0 or a fatal error.
 */
static int catch_up(struct actor_ctx *ctx, struct store *s)
{
    int64_t outage_ms = 0;
    int rc = store__pg_connect(s->pg, actor_now_ms(), &outage_ms);
    if (rc < 0) {
        return failed(ctx, s, rc, "connect");
    }
    if (rc == STORE_PG_RECOVERED) {
        outage_ends(ctx, s, outage_ms);
    }
    set_db_up(s, true);
    if (!s->loaded) {
        rc = start_up(ctx, s);
        if (rc != 0) {
            return failed(ctx, s, rc, "load");
        }
    }
    if (store__batch_is_empty(s->batch)) {
        s->failing = false;
        store__pg_idle(s->pg);
    }
    rc = flush(ctx, s);
    if (rc == 0 && s->n_waiting > 0) {
        rc = serve_waiting(ctx, s);
    }
    return rc;
}

/* ---- handlers ------------------------------------------------------------ */

/* A handler's promise broken by a sender (our own bug): the actor ends. */
static int broken(struct actor_ctx *ctx, int err, const char *what)
{
    if (err == -ENOMEM) {
        return err;
    }
    return actor_fail(ctx, "%s: %s", what, strerror(-err));
}

/* Counts what the tracker ignored. */
static void ignored(struct actor_ctx *ctx, struct store *s, int rc,
                    const char *source, uint64_t seq)
{
    struct actor_metric *m = rc == STORE_PENDING_STALE     ? s->m.stale
                             : rc == STORE_PENDING_UNKNOWN ? s->m.unknown
                                                           : s->m.repeated;
    const char *why = rc == STORE_PENDING_STALE     ? "stale_seq"
                      : rc == STORE_PENDING_UNKNOWN ? "unknown_event"
                                                    : "repeated_element";
    actor_metric_add(m, 1);
    ACTOR_LOG_RL(ctx, ACTOR_LOG_WARN, "message ignored", "reason", why,
                 "source", source, "seq", ACTOR_LOG_INT(seq), NULL);
}

static int on_event(struct actor_ctx *ctx, struct store *s,
                    struct store_event_msg *m)
{
    struct event *ev = m->ev;
    if (!ev || !ev->source) {
        return broken(ctx, -EINVAL, "event without a source");
    }
    /* The tracker takes a reference of its own; the message keeps its
     * one until after the handler. */
    int rc = store__pending_event(s->pending, event_ref(ev), s->batch);
    if (rc < 0) {
        return broken(ctx, rc, "event");
    }
    if (rc > 0) {
        ignored(ctx, s, rc, ev->source, ev->seq);
    }
    return 0;
}

static int on_update(struct actor_ctx *ctx, struct store *s,
                     struct model_update_msg *m)
{
    const struct event *ev = m->ev;
    if (m->up) {
        int err = store__batch_add_change(
            s->batch, m->up, ev ? ev->source : NULL, ev ? ev->seq : 0);
        if (err != 0) {
            return broken(ctx, err, "update");
        }
    }
    if (!ev) {
        return 0; /* no event caused it: nothing to complete */
    }
    int rc = store__pending_applied(s->pending, ev, m->index, s->batch);
    if (rc < 0) {
        return broken(ctx, rc, "element");
    }
    if (rc > 0) {
        ignored(ctx, s, rc, ev->source, ev->seq);
    }
    return 0;
}

static int on_rejected(struct actor_ctx *ctx, struct store *s,
                       const struct store_rejected_msg *m)
{
    const struct store_rejected *rej = &m->rej;
    uint64_t id = s->rejected_id + 1;
    int rc = rej->has_seq && rej->source
                 ? store__pending_rejected(s->pending, id, rej, s->batch)
                 : store__batch_add_rejected(s->batch, id, rej);
    if (rc < 0) {
        return broken(ctx, rc, "rejected document");
    }
    if (rc > 0) {
        ignored(ctx, s, rc, rej->source, rej->seq);
        return 0;
    }
    s->rejected_id = id;
    return 0;
}

static int on_load_req(struct actor_ctx *ctx, struct store *s,
                       struct store_load_req_msg *m)
{
    if (m->match_id[0] != '\0') {
        if (!asks_database(s, m)) {
            return answer_load_one(ctx, s, m); /* at once, no query */
        }
        /* after() sends the MSG_ASK that answers it. */
        return keep(&s->asking, &s->n_asking, &s->cap_asking, &m->hdr);
    }
    if (s->n_waiting == 0 && s->loaded) {
        /* Written first, so the load holds every update received. */
        int err = flush(ctx, s);
        if (err != 0) {
            return err;
        }
        int rc = answer_load_all(ctx, s, m);
        if (rc != EAGAIN) {
            return rc;
        }
    }
    return keep_waiting(s, &m->hdr);
}

static int on_acked_req(struct actor_ctx *ctx, struct store *s,
                        struct store_acked_req_msg *m)
{
    if (!s->loaded) {
        return keep_waiting(s, &m->hdr);
    }
    return answer_acked(ctx, s, m);
}

static int on_kick(struct actor_ctx *ctx, struct store *s)
{
    s->kick_queued = false;
    return flush(ctx, s);
}

static int on_ask(struct actor_ctx *ctx, struct store *s)
{
    s->ask_queued = false;
    return serve_asking(ctx, s);
}

static int on_flush_timer(struct actor_ctx *ctx, struct store *s)
{
    s->flush_timer = 0;
    return flush(ctx, s);
}

static int on_retry(struct actor_ctx *ctx, struct store *s)
{
    s->retry_timer = 0;
    return catch_up(ctx, s);
}

/* Sends itself a kick of @type (MSG_KICK, MSG_ASK; see DESIGN) unless
 * *@queued says one is on its way. Returns 0 or -ENOMEM. */
static int kick(struct actor_ctx *ctx, uint32_t type, bool *queued)
{
    if (*queued) {
        return 0;
    }
    struct actor_msg *k = actor_msg_new(sizeof(*k), type);
    if (!k) {
        return -ENOMEM;
    }
    /* Refused only by a full mailbox: for the batch the rows rule acts;
     * for kept requests the next message tries again. */
    *queued = actor_send_or_free(NULL, actor_self(ctx), k) == 0;
    return 0;
}

/*
 * After every message: starts the clocks of a batch that just got its
 * first row, writes one that is full or old enough, and makes sure a kick
 * will answer the kept one-match requests.
 */
static int after(struct actor_ctx *ctx, struct store *s)
{
    int err = s->n_asking > 0 ? kick(ctx, MSG_ASK, &s->ask_queued) : 0;
    if (err != 0) {
        return err;
    }
    if (!store__batch_is_empty(s->batch)) {
        int64_t now = actor_now_ms();
        if (s->batch_since == 0) {
            s->batch_since = now > 0 ? now : 1;
            if (!s->flush_timer) {
                struct actor_msg *t = actor_msg_new(sizeof(*t), MSG_FLUSH);
                if (!t) {
                    return -ENOMEM;
                }
                s->flush_timer = actor_send_after(ctx, s->cfg.batch_ms, t);
                if (!s->flush_timer) {
                    return -ENOMEM;
                }
            }
            if (!s->cfg.no_idle_flush) {
                err = kick(ctx, MSG_KICK, &s->kick_queued);
                if (err != 0) {
                    return err;
                }
            }
        }
        if (store__batch_rows(s->batch) >= s->cfg.batch_rows ||
            now - s->batch_since >= (int64_t)s->cfg.batch_ms) {
            err = flush(ctx, s);
        }
    }
    note_backlog(ctx, s);
    return err;
}

static int store_handle(struct actor_ctx *ctx, void *state,
                        struct actor_msg *msg)
{
    struct store *s = state;
    int rc;
    switch (msg->type) {
    case STORE_MSG_EVENT:
        rc = on_event(ctx, s, container_of(msg, struct store_event_msg, hdr));
        break;
    case MODEL_MSG_UPDATE:
        rc = on_update(ctx, s, container_of(msg, struct model_update_msg, hdr));
        break;
    case STORE_MSG_REJECTED:
        rc = on_rejected(ctx, s,
                         container_of(msg, struct store_rejected_msg, hdr));
        break;
    case STORE_MSG_LOAD_REQ:
        rc = on_load_req(ctx, s,
                         container_of(msg, struct store_load_req_msg, hdr));
        break;
    case STORE_MSG_ACKED_REQ:
        rc = on_acked_req(ctx, s,
                          container_of(msg, struct store_acked_req_msg, hdr));
        break;
    case ACTOR_MSG_RESUME:
        rc = on_resume(ctx, s);
        break;
    case MSG_KICK:
        rc = on_kick(ctx, s);
        break;
    case MSG_FLUSH:
        rc = on_flush_timer(ctx, s);
        break;
    case MSG_RETRY:
        rc = on_retry(ctx, s);
        break;
    case MSG_ASK:
        rc = on_ask(ctx, s);
        break;
    default:
        return actor_fail(ctx, "unexpected message type %#x", msg->type);
    }
    if (rc < 0) {
        return rc;
    }
    int err = after(ctx, s);
    if (err < 0 && rc == ACTOR_KEPT) {
        /* The runtime frees it with the error: it was kept last. */
        if (s->n_asking > 0 && s->asking[s->n_asking - 1] == msg) {
            s->n_asking--;
        } else {
            s->n_waiting--;
        }
    }
    return err < 0 ? err : rc;
}

/* ---- life cycle ---------------------------------------------------------- */

static void store_free(struct store *s)
{
    if (!s) {
        return;
    }
    set_db_up(s, false);
    for (size_t i = 0; i < s->n_waiting; i++) {
        actor_msg_free(s->waiting[i]);
    }
    free(s->waiting);
    for (size_t i = 0; i < s->n_asking; i++) {
        actor_msg_free(s->asking[i]);
    }
    free(s->asking);
    store__pending_free(s->pending);
    store__batch_free(s->batch);
    store__pg_free(s->pg);
    store_load_free(s->load);
    store__map_release(&s->acked);
    store__map_release(&s->owed);
    actor_buf_release(&s->name);
    free(s);
}

static void config_apply(struct store_config *cfg,
                         const struct store_config *in)
{
    store_config_default(cfg);
    if (!in) {
        return;
    }
    cfg->conninfo = in->conninfo;
    cfg->retention_s = in->retention_s;
    cfg->idle_s = in->idle_s;
    cfg->no_idle_flush = in->no_idle_flush;
    cfg->backoff_base_ms = in->backoff_base_ms;
    cfg->backoff_cap_ms = in->backoff_cap_ms;
    if (in->batch_rows) {
        cfg->batch_rows = in->batch_rows;
    }
    if (in->batch_ms) {
        cfg->batch_ms = in->batch_ms;
    }
    if (in->backlog_rows) {
        cfg->backlog_rows = in->backlog_rows;
    }
    if (in->backlog_bytes) {
        cfg->backlog_bytes = in->backlog_bytes;
    }
    if (in->mailbox) {
        cfg->mailbox = in->mailbox;
    }
}

static int store_init(struct actor_ctx *ctx, void *arg, void **state)
{
    struct store *s = store__calloc(1, sizeof(*s));
    if (!s) {
        return -ENOMEM;
    }
    config_apply(&s->cfg, arg);
    store__map_init(&s->acked);
    store__map_init(&s->owed);
    actor_buf_init(&s->name);
    metrics_init(&s->m);
    s->rejected_id = rejected_id_floor(actor_wall_ms());
    set_db_up(s, false);
    const struct store__pg_config pg_cfg = {
        .conninfo = s->cfg.conninfo,
        .backoff_base_ms = s->cfg.backoff_base_ms,
        .backoff_cap_ms = s->cfg.backoff_cap_ms,
    };
    const struct store__image_ops ops = {.json = match_image_json,
                                         .unref = match_image_unref};
    s->pg = store__pg_new(&pg_cfg);
    s->batch = store__batch_new(0, &ops);
    s->pending = store__pending_new(event_unref);
    if (!s->pg || !s->batch || !s->pending) {
        store_free(s);
        return -ENOMEM;
    }
    int err = catch_up(ctx, s);
    if (err < 0) {
        store_free(s);
        return err;
    }
    *state = s;
    if (s->loaded) {
        return 0;
    }
    s->deferred = true;
    return ACTOR_DEFER;
}

/* Messages to handle in one go: while writes fail, few enough to stop
 * near the bound (most messages add a row or two); else the default. */
static unsigned room(const struct store *s)
{
    if (!s->failing) {
        return 0;
    }
    uint64_t held = backlog(s);
    uint64_t left = held < s->cfg.backlog_rows ? s->cfg.backlog_rows - held : 1;
    return left < 64 ? (unsigned)left : 64;
}

/*
 * The runtime's default loop for a blocking actor, plus one rule: while
 * paused (see DESIGN) leave the mailbox alone, sleep until the backoff
 * allows an attempt and make it here. Except when an exit is queued (a
 * shutdown, a kill): the mailbox is handled in order until it comes, or
 * an outage would make the store impossible to stop. What it holds is in
 * memory already; the backlog grows past its bound by at most that.
 */
static int store_run(struct actor_ctx *ctx, void *state)
{
    struct store *s = state;
    for (;;) {
        bool stopping = actor_exit_queued(ctx);
        if (!is_paused(s) || stopping) {
            if (actor_drain(ctx, stopping ? 0 : room(s)) == ACTOR_DONE) {
                return 0;
            }
            if (!is_paused(s)) {
                actor_wait_message(ctx, -1);
            }
            continue;
        }
        note_backlog(ctx, s);
        int64_t wait = store__pg_retry_at(s->pg) - actor_now_ms();
        if (wait > 0) {
            actor_sleep(ctx, (int)wait);
            continue;
        }
        int err = catch_up(ctx, s);
        if (err < 0) {
            return err;
        }
        note_backlog(ctx, s);
    }
}

static void store_stop(struct actor_ctx *ctx, void *state,
                       const struct actor_exit *why)
{
    struct store *s = state;
    /*
     * An orderly stop writes what it can once: the model's work (updates,
     * latest state) and the dead letters, but not the events nor their
     * offsets. Ingest and the model stopped first, and the elements they
     * still held came back lost, which completes their events: stored
     * with their offsets, the sources' next logins would skip them while
     * their changes were never applied. Left out, the feeds send them
     * again; the model skips by msgnr what it had applied.
     */
    store__batch_forget_events(s->batch);
    if (!actor_exit_is_abnormal(why) && store__pg_is_up(s->pg) &&
        !store__batch_is_empty(s->batch)) {
        int err = store__pg_write(s->pg, s->batch, actor_now_ms(), NULL);
        if (err != 0) {
            actor_log(ctx, ACTOR_LOG_WARN, "last batch not written", "error",
                      store__pg_error(s->pg), NULL);
        }
    }
    store_free(s);
}

const struct actor_ops store_ops = {
    .name = "store",
    .init = store_init,
    .handle = store_handle,
    .stop = store_stop,
    .run = store_run,
};
