/* notify/notify_actor.c - the notify actor: one libwebsockets context on the
 * public port (WebSocket on /ws, the live page, /healthz, /readyz), its
 * service loop on the actor's own thread, and the mailbox drained inside it. */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <libwebsockets.h>

#include "ingest/event.h"
#include "notify/notify_impl.h"

/*
 * DESIGN
 * lws is single-threaded here (LWS_MAX_SMP 1): every lws object belongs to
 * this actor's thread. Other actors send messages; the runtime calls
 * ops->wake from their thread, which only calls lws_cancel_service(), and
 * the mailbox is drained in LWS_CALLBACK_EVENT_WAIT_CANCELLED (wake-ups
 * coalesce; a bounded drain that leaves messages queued wakes us again).
 *
 * Cycles. "*" subscribers read a log the hub shares between them; they are
 * asked to write by a flush, at most once per flush_ms, and each then takes
 * one frame with everything it has not read. Under load a cycle (one
 * service pass writing to every such client) lasts longer than flush_ms,
 * and the next flush follows it at once: each client gets one frame per
 * cycle, as big as the cycle is long, so the cost per delta falls as the
 * load grows and latency stays about one cycle. While a flush is pending
 * a wake-up does not drain (the flush will), so the runtime does not wake
 * us again meanwhile: one wake-up per cycle, not one per update. To keep
 * latency down in a long pass, the mailbox is also drained from writable
 * callbacks every DRAIN_EVERY_US, so clients written later in the pass
 * take the updates that arrived since its start.
 *
 * Everything about who gets what lives in the hub (notify_hub.c), which
 * knows nothing of lws: it asks for writable callbacks and closes through
 * two function pointers, and builds each frame when a socket can take one.
 * A client's hub state is embedded in lws's per-session data, so a
 * connection costs lws's wsi, its small rx buffer and about 150 bytes.
 */

#define DRAIN_BATCH 256 /* messages per drain when woken */
#define DRAIN_SLICE                                                            \
    32                         /* messages per drain between writes: an update \
                                  is one log entry for "*" clients, but a list \
                                  subscription is one push per client */
#define DRAIN_EVERY_US 2000    /* drain between writes this often */
#define CLOSE_GRACE_US 1000000 /* for the 1001 close frames, when ending */
#define WS_PATH        "/ws"
#define WS_PROTOCOL    "scorewire.v1"
#define RX_BUFFER      512 /* lws's per-connection receive buffer */
#define PUBLIC_CSP                                                             \
    "default-src 'self'; connect-src 'self' ws: wss:; "                        \
    "img-src 'self' data:; object-src 'none'; base-uri 'none'; "               \
    "frame-ancestors 'none'"

_Static_assert(LWS_PRE <= NOTIFY__HEADROOM, "lws needs more headroom");

struct notify_state {
    struct notify__service svc; /* ctx, lws, done, err */
    struct notify_config cfg;
    struct notify__hub *hub;
    struct lws_protocols protocols[3];
    struct lws_http_mount mounts[3];
    struct lws_protocol_vhost_options pvo_default;
    struct lws_protocol_vhost_options pvo;
    struct lws_protocol_vhost_options headers[NOTIFY__SECURITY_HEADERS];
    lws_retry_bo_t retry;
    lws_sorted_usec_list_t tick;
    lws_sorted_usec_list_t flush; /* the next flush, while armed */
    bool flush_armed;
    lws_usec_t last_flush_us;
    lws_usec_t last_drain_us;
    lws_usec_t pass_first_us, pass_last_us; /* this pass's writes, when */
    bool pass_wrote;                        /* ... if it made any yet */
    uint32_t ready; /* enum notify_ready_what bits that are ok */
    bool closing;   /* the actor is ending: clients are told 1001 */
    lws_sorted_usec_list_t close_wait; /* ends the closing grace */
    struct actor_metric *counter[16];  /* by counters[] */
    uint64_t published[16];            /* what each counter has so far */
    struct actor_metric *clients, *too_large, *throttled, *latency, *upstream,
        *pass;
};

/* Per-session data of a WebSocket connection. */
/*
 * What a client may send: CLIENT_BURST messages at once, then CLIENT_RATE
 * a second (a token bucket, in thousandths of a message). Past that its
 * reading pauses until the next message is due; nothing is dropped. The
 * page sends a few a minute, but each subscribe to "*" owes a snapshot of
 * every match: one client streaming them must not take the service
 * thread from everyone else.
 */
#define CLIENT_RATE  50
#define CLIENT_BURST 100

struct ws_session {
    struct notify__client c; /* linked in the hub while open */
    bool linked;
    char *rx; /* a message arriving in pieces, or NULL */
    uint32_t rx_len;
    int64_t budget;    /* thousandths of a message; below 0: paused */
    int64_t budget_ms; /* when it was last topped up */
};

/* Per-session data of an HTTP request to /healthz or /readyz. */
struct http_session {
    struct notify__http_out out;
};

static const struct notify__model model_ops = {
    .update_unref = update_unref,
    .image_unref = match_image_unref,
    .snapshot_json = match_image_snapshot_json,
};

void notify_config_default(struct notify_config *cfg)
{
    *cfg = (struct notify_config){
        .host = NULL,
        .port = 8080,
        .web_root = "web",
        .max_clients = 16384, /* the process has 20,000 fds */
        .max_subs = 256,
        .max_unknown = 10000,       /* ids subscribed before they exist */
        .ring = 64,                 /* about a minute of a busy match */
        .max_frame_in = 4096,       /* ws-protocol.md */
        .max_frame_out = 16384,     /* lws keeps what a full socket did not
                                       take: at most this much per client */
        .backlog_soft = 128 * 1024, /* some 7 s of 100 deltas/s */
        .backlog_hard = 1024 * 1024,
        .stall_ms = 10000,
        .ring_idle_s = 600,
        .forget_s = 24 * 3600,
        .ping_idle_s = 30, /* ws-protocol.md */
        .ping_grace_s = 30,
        .sndbuf = 64 * 1024, /* the kernel doubles it: what a client that
                                stops reading holds in the kernel, and how
                                stale its data can get before the backlog
                                (and conflation) starts */
        .flush_ms = 20,
        .notsent_lowat = 16 * 1024,
    };
}

/* ---- helpers ------------------------------------------------------------ */

static void io_want_write(void *io)
{
    lws_callback_on_writable(io);
}

static void io_close(void *io, uint16_t code, const char *reason)
{
    struct lws *wsi = io;
    struct notify_state *st = lws_context_user(lws_get_context(wsi));
    char peer[64];
    if (code != LWS_CLOSE_STATUS_GOINGAWAY) { /* that one is logged once */
        ACTOR_LOG_RL(st->svc.ctx, ACTOR_LOG_WARN, "closing a WebSocket client",
                     "code", ACTOR_LOG_INT(code), "reason", reason, "peer",
                     lws_get_peer_simple(wsi, peer, sizeof(peer)) ? peer : "?",
                     NULL);
    }
    lws_close_reason(wsi, (enum lws_close_status)code, (unsigned char *)reason,
                     strlen(reason));
    /* A client that does not read never becomes writable: give the close
     * frame a few seconds, then drop the socket. */
    lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, 5);
    lws_callback_on_writable(wsi);
}

static void on_flush(lws_sorted_usec_list_t *sul);

/* Arms the next flush when the log moved: flush_ms after the last one, or
 * at once when that is past (a long cycle). */
static void arm_flush(struct notify_state *st)
{
    if (st->flush_armed || st->closing || st->svc.done ||
        !notify__hub_flush_due(st->hub)) {
        return;
    }
    lws_usec_t at = st->last_flush_us + (lws_usec_t)st->cfg.flush_ms * 1000;
    lws_usec_t now = lws_now_usecs();
    st->flush_armed = true;
    lws_sul_schedule(st->svc.lws, 0, &st->flush, on_flush,
                     at > now ? at - now : 0);
}

/* The closing grace is over, or the last client has gone: leave run(). */
static void end_closing(lws_sorted_usec_list_t *sul)
{
    struct notify_state *st =
        lws_container_of(sul, struct notify_state, close_wait);
    st->svc.done = true;
}

/* The actor is ending (shutdown, or its supervisor's exit): tells every
 * client 1001 (going away, ws-protocol.md) so that it reconnects to the
 * next instance, and gives the close frames CLOSE_GRACE_US to leave. A
 * client that does not read is dropped when the grace ends. */
static void start_closing(struct notify_state *st)
{
    st->closing = true;
    uint32_t n = st->hub->n_clients;
    if (n == 0) {
        notify__service_end(&st->svc);
        return;
    }
    actor_log(st->svc.ctx, ACTOR_LOG_INFO, "closing WebSocket clients",
              "clients", ACTOR_LOG_INT(n), "code",
              ACTOR_LOG_INT(LWS_CLOSE_STATUS_GOINGAWAY), NULL);
    for (struct notify__client *c = st->hub->clients; c; c = c->next) {
        notify__hub_close_client(st->hub, c, LWS_CLOSE_STATUS_GOINGAWAY,
                                 "server shutting down");
    }
    lws_sul_schedule(st->svc.lws, 0, &st->close_wait, end_closing,
                     CLOSE_GRACE_US);
}

/* Handles up to @max messages. When more wait, actor_drain() wakes us
 * again (through notify_wake), so the loop comes back here. */
static void drain(struct notify_state *st, unsigned max)
{
    if (st->closing) {
        return; /* the mailbox is done with */
    }
    st->last_drain_us = lws_now_usecs();
    if (actor_drain(st->svc.ctx, max) == ACTOR_DONE) {
        start_closing(st);
        return;
    }
    arm_flush(st);
}

static void on_flush(lws_sorted_usec_list_t *sul)
{
    struct notify_state *st = lws_container_of(sul, struct notify_state, flush);
    if (st->closing || st->svc.done) {
        st->flush_armed = false;
        return;
    }
    /* The flush takes what is queued too; still armed meanwhile, so the
     * drain does not arm another for what this one covers. */
    drain(st, DRAIN_BATCH);
    st->flush_armed = false;
    st->last_flush_us = lws_now_usecs();
    notify__hub_flush(st->hub);
}

/* The hub's counters, published to the metrics registry once a second. */
static const struct counter_def {
    size_t stat; /* offset of a uint64_t in struct notify__stats */
    const char *name;
    const char *help;
    const char *labels;
} counters[] = {
    {offsetof(struct notify__stats, messages),
     "scorewire_notify_messages_sent_total",
     "Messages written to WebSocket clients (each to each client)", NULL},
    {offsetof(struct notify__stats, deltas),
     "scorewire_notify_deltas_sent_total",
     "Deltas written to WebSocket clients (each to each client)", NULL},
    {offsetof(struct notify__stats, frames),
     "scorewire_notify_frames_sent_total", "WebSocket frames written", NULL},
    {offsetof(struct notify__stats, bytes), "scorewire_notify_sent_bytes_total",
     "WebSocket payload bytes written", NULL},
    {offsetof(struct notify__stats, conflated),
     "scorewire_notify_conflated_total",
     "Match messages replaced by a later snapshot for a slow client", NULL},
    {offsetof(struct notify__stats, dropped), "scorewire_notify_dropped_total",
     "Queued messages discarded when their client went away", NULL},
    {offsetof(struct notify__stats, slow_closed),
     "scorewire_notify_slow_clients_closed_total",
     "Clients closed with 1013 for falling behind", NULL},
    {offsetof(struct notify__stats, errors),
     "scorewire_notify_client_errors_total",
     "Error messages sent for bad client messages", NULL},
    {offsetof(struct notify__stats, updates), "scorewire_notify_updates_total",
     "Match updates received", NULL},
    {offsetof(struct notify__stats, stale),
     "scorewire_notify_stale_updates_total",
     "Match updates ignored as not newer than the match", NULL},
    {offsetof(struct notify__stats, recovered),
     "scorewire_notify_resumes_total", "Resumes with since",
     "result=\"recovered\""},
    {offsetof(struct notify__stats, resume_snapshots),
     "scorewire_notify_resumes_total", "Resumes with since",
     "result=\"snapshot\""},
    {offsetof(struct notify__stats, snapshots),
     "scorewire_notify_snapshots_built_total",
     "Snapshots serialized by notify (once per match version)", NULL},
    {offsetof(struct notify__stats, forgotten),
     "scorewire_notify_matches_forgotten_total",
     "Matches dropped after a long quiet time", NULL},
};
#define N_COUNTERS (sizeof(counters) / sizeof(counters[0]))
_Static_assert(N_COUNTERS <= 16, "notify_state.counter is too small");

static void publish(struct notify_state *st)
{
    const char *stats = (const char *)&st->hub->stats;
    for (size_t i = 0; i < N_COUNTERS; i++) {
        uint64_t v;
        memcpy(&v, stats + counters[i].stat, sizeof(v));
        actor_metric_add(st->counter[i], v - st->published[i]);
        st->published[i] = v;
    }
    actor_metric_set(st->clients, st->hub->n_clients);
}

static void on_tick(lws_sorted_usec_list_t *sul)
{
    struct notify_state *st = lws_container_of(sul, struct notify_state, tick);
    int rc = notify__hub_tick(st->hub, actor_now_ms());
    if (rc != 0) {
        notify__service_fail(&st->svc, rc, "tick");
        return;
    }
    publish(st);
    lws_sul_schedule(st->svc.lws, 0, &st->tick, on_tick, LWS_USEC_PER_SEC);
}

/* ---- WebSocket ---------------------------------------------------------- */

static bool is_ws_path(struct lws *wsi)
{
    char uri[16];
    return lws_hdr_copy(wsi, uri, sizeof(uri), WSI_TOKEN_GET_URI) > 0 &&
           strcmp(uri, WS_PATH) == 0;
}

static int ws_writeable(struct notify_state *st, struct ws_session *s,
                        struct lws *wsi)
{
    if (s->c.closing) {
        return -1; /* lws sends the close frame set by io_close() */
    }
    lws_usec_t start = lws_now_usecs();
    if (start - st->last_drain_us > DRAIN_EVERY_US) {
        drain(st, DRAIN_SLICE);
        if (s->c.closing) {
            return -1;
        }
    }
    struct notify__frame f;
    int rc = notify__hub_frame(st->hub, &s->c, &f);
    if (rc < 0) {
        notify__service_fail(&st->svc, rc, "frame");
        return 0;
    }
    if (rc == 0) {
        return 0;
    }
    int n = lws_write(wsi, (unsigned char *)f.data, f.len, LWS_WRITE_TEXT);
    if (!st->pass_wrote) {
        st->pass_wrote = true;
        st->pass_first_us = start;
    }
    st->pass_last_us = lws_now_usecs();
    if (f.oldest_sent_ms != EVENT_ABSENT) {
        actor_metric_observe(
            st->latency, (double)(actor_wall_ms() - f.oldest_sent_ms) / 1000.0);
    }
    notify__hub_frame_done(st->hub, &f);
    return n < (int)f.len ? -1 : 0;
}

/* After each service call: the frames it wrote were one pass (the first
 * write's start to the last's end). Under load a "*" subscriber's next
 * frame is a pass away, so a delta waits up to a pass, and the pass grows
 * with the clients a flush asks. */
static void end_pass(struct notify__service *svc)
{
    struct notify_state *st = lws_container_of(svc, struct notify_state, svc);
    if (st->pass_wrote) {
        actor_metric_observe(
            st->pass, (double)(st->pass_last_us - st->pass_first_us) / 1e6);
        st->pass_wrote = false;
    }
}

/* Collects a message that may arrive in several pieces, then hands it to
 * the hub. Returns 0, or -1 to close (too large). */
/* A whole message came: it costs one from the budget; when that runs
 * out, reading pauses until the next is due (LWS_CALLBACK_TIMER). */
static void spend(struct notify_state *st, struct ws_session *s,
                  struct lws *wsi)
{
    int64_t now = actor_now_ms();
    int64_t budget = s->budget + (now - s->budget_ms) * CLIENT_RATE;
    s->budget_ms = now;
    s->budget =
        (budget < CLIENT_BURST * 1000 ? budget : CLIENT_BURST * 1000) - 1000;
    if (s->budget < 0) {
        actor_metric_add(st->throttled, 1);
        lws_rx_flow_control(wsi, 0);
        lws_set_timer_usecs(wsi, (-s->budget / CLIENT_RATE + 1) * 1000);
    }
}

static int ws_receive(struct notify_state *st, struct ws_session *s,
                      struct lws *wsi, const char *in, size_t len)
{
    bool first = lws_is_first_fragment(wsi);
    bool last = lws_is_final_fragment(wsi);
    if (first && s->rx) {
        free(s->rx);
        s->rx = NULL;
        s->rx_len = 0;
    }
    size_t total = s->rx_len + len;
    if (total > st->cfg.max_frame_in ||
        (size_t)lws_remaining_packet_payload(wsi) + total >
            st->cfg.max_frame_in) {
        actor_metric_add(st->too_large, 1);
        lws_close_reason(wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE,
                         (unsigned char *)"too large", 9);
        return -1;
    }
    if (lws_frame_is_binary(wsi)) {
        static const char bin[] = "{\"op\":\"binary\"}";
        if (last) {
            /* Answered like any unknown op: an error, and the connection
             * stays. */
            int rc =
                notify__hub_client_rx(st->hub, &s->c, bin, sizeof(bin) - 1);
            if (rc != 0) {
                notify__service_fail(&st->svc, rc, "receive");
            }
            spend(st, s, wsi);
        }
        return 0;
    }
    const char *msg = in;
    if (!(first && last)) {
        char *rx = realloc(s->rx, total ? total : 1);
        if (!rx) {
            notify__service_fail(&st->svc, -ENOMEM, "receive");
            return 0;
        }
        memcpy(rx + s->rx_len, in, len);
        s->rx = rx;
        s->rx_len = (uint32_t)total;
        if (!last) {
            return 0;
        }
        msg = s->rx;
        len = total;
    }
    int rc = notify__hub_client_rx(st->hub, &s->c, msg, len);
    free(s->rx);
    s->rx = NULL;
    s->rx_len = 0;
    if (rc != 0) {
        notify__service_fail(&st->svc, rc, "receive");
    }
    spend(st, s, wsi);
    return 0;
}

static int on_ws(struct lws *wsi, enum lws_callback_reasons reason, void *user,
                 void *in, size_t len)
{
    struct notify_state *st = lws_context_user(lws_get_context(wsi));
    struct ws_session *s = user;

    switch (reason) {
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
        /* Reaches every protocol; only this one drains. With a flush
         * armed, the flush drains: until then the runtime does not wake
         * us again. */
        if (st && st->hub && !st->closing && !st->svc.done &&
            !st->flush_armed) {
            drain(st, DRAIN_BATCH);
        }
        return 0;
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
        if (!is_ws_path(wsi) || st->closing) {
            return 1;
        }
        if (st->hub->n_clients >= st->cfg.max_clients) {
            ACTOR_LOG_RL(st->svc.ctx, ACTOR_LOG_WARN, "connection refused",
                         "reason", "max_clients", NULL);
            return 1;
        }
        return 0;
    case LWS_CALLBACK_ESTABLISHED: {
        /* Best effort: the kernel's defaults serve too. */
        (void)notify__client_socket_options(lws_get_socket_fd(wsi), &st->cfg);
        int rc = notify__hub_client_add(st->hub, &s->c, wsi, actor_now_ms());
        if (rc != 0) {
            notify__service_fail(&st->svc, rc, "established");
            return -1;
        }
        s->linked = true;
        s->budget = CLIENT_BURST * 1000;
        s->budget_ms = actor_now_ms();
        actor_metric_set(st->clients, st->hub->n_clients);
        return 0;
    }
    case LWS_CALLBACK_RECEIVE:
        return ws_receive(st, s, wsi, in, len);
    case LWS_CALLBACK_TIMER:
        /* The next message is due: read on. */
        lws_rx_flow_control(wsi, 1);
        return 0;
    case LWS_CALLBACK_SERVER_WRITEABLE:
        return ws_writeable(st, s, wsi);
    case LWS_CALLBACK_CLOSED:
        if (s->linked) {
            notify__hub_client_remove(st->hub, &s->c);
            s->linked = false;
            actor_metric_set(st->clients, st->hub->n_clients);
            if (st->closing && st->hub->n_clients == 0) {
                st->svc.done = true; /* every client has its 1001 */
            }
        }
        free(s->rx);
        s->rx = NULL;
        return 0;
    default:
        /* Being the default protocol (for WebSockets without one), this one
         * also gets bound to kept-alive HTTP connections between requests;
         * lws's own handling finishes those transactions. */
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    }
}

/* ---- HTTP: /healthz and /readyz (files are lws's file mount) ------------ */

static int http_request(struct notify_state *st, struct http_session *h,
                        struct lws *wsi)
{
    /* The method by its URI header: lws numbers methods differently
     * depending on how it was built. */
    bool head = lws_hdr_total_length(wsi, WSI_TOKEN_HEAD_URI) > 0;
    bool get = !head && lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) > 0;
    char uri[16] = "";
    if (head || get) {
        lws_hdr_copy(wsi, uri, sizeof(uri),
                     head ? WSI_TOKEN_HEAD_URI : WSI_TOKEN_GET_URI);
    }
    uint32_t want = NOTIFY_READY_DATABASE | NOTIFY_READY_MODEL;
    unsigned status = HTTP_STATUS_OK;
    const char *allow = NULL;
    notify__http_out_release(&h->out);
    if (!head && !get) {
        /* Read-only probes; a body we do not read closes the connection. */
        status = HTTP_STATUS_METHOD_NOT_ALLOWED;
        allow = "GET, HEAD";
        h->out.close = true;
        actor_buf_str(&h->out.body, "method not allowed\n");
    } else if (strcmp(uri, "/healthz") == 0) {
        actor_buf_str(&h->out.body, "ok\n");
    } else if ((st->ready & want) == want) {
        actor_buf_str(&h->out.body, "ready\n");
    } else {
        status = HTTP_STATUS_SERVICE_UNAVAILABLE;
        actor_buf_printf(&h->out.body, "not ready:%s%s\n",
                         st->ready & NOTIFY_READY_DATABASE ? "" : " database",
                         st->ready & NOTIFY_READY_MODEL ? "" : " model");
    }
    if (h->out.body.err) {
        notify__service_fail(&st->svc, h->out.body.err, "http");
        return -1;
    }
    return notify__http_answer(wsi, &h->out, status,
                               "text/plain; charset=utf-8", allow, head);
}

static int on_http(struct lws *wsi, enum lws_callback_reasons reason,
                   void *user, void *in, size_t len)
{
    struct notify_state *st = lws_context_user(lws_get_context(wsi));
    struct http_session *h = user;

    switch (reason) {
    case LWS_CALLBACK_HTTP:
        return http_request(st, h, wsi);
    case LWS_CALLBACK_HTTP_WRITEABLE:
        if (!h || !h->out.pending) {
            break;
        }
        return notify__http_answer_more(wsi, &h->out) < 0 ? -1 : 0;
    case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
    case LWS_CALLBACK_CLOSED_HTTP:
        if (h) {
            notify__http_out_release(&h->out);
        }
        break;
    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

/* ---- the actor
 * ---------------------------------------------------------------- */

static void register_metrics(struct notify_state *st)
{
    /* Fine between 10 and 100 ms, where the p99 goal is decided. */
    static const double bounds[] = {
        0.001, 0.0025, 0.005, 0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07,
        0.08,  0.1,    0.15,  0.2,  0.3,  0.5,  1,    2.5,  5};
    for (size_t i = 0; i < N_COUNTERS; i++) {
        st->counter[i] = actor_metric_counter(
            counters[i].name, counters[i].help, counters[i].labels);
    }
    st->clients = actor_metric_gauge("scorewire_notify_clients",
                                     "WebSocket clients connected", NULL);
    st->too_large = actor_metric_counter(
        "scorewire_notify_too_large_total",
        "Clients closed with 1009 for an oversized message", NULL);
    st->throttled = actor_metric_counter(
        "scorewire_notify_throttled_total",
        "Times a client's reading paused: it sent faster than its budget",
        NULL);
    st->latency = actor_metric_histogram(
        "scorewire_notify_latency_seconds",
        "From the feed's sent time to the write of the oldest delta in a frame",
        NULL, bounds, sizeof(bounds) / sizeof(bounds[0]));
    st->upstream = actor_metric_histogram(
        "scorewire_notify_upstream_latency_seconds",
        "From the feed's sent time to the model applying the change (ingest, "
        "parse, model), taken as notify receives it",
        NULL, bounds, sizeof(bounds) / sizeof(bounds[0]));
    st->pass = actor_metric_histogram(
        "scorewire_notify_pass_seconds",
        "One service pass's writes to WebSocket clients, first to last: a "
        "subscriber of every match gets a frame a pass apart under load",
        NULL, bounds, sizeof(bounds) / sizeof(bounds[0]));
}

static void setup_lws_info(struct notify_state *st,
                           struct lws_context_creation_info *info)
{
    const struct notify_config *cfg = &st->cfg;
    st->protocols[0] = (struct lws_protocols){
        .name = "http",
        .callback = on_http,
        .per_session_data_size = sizeof(struct http_session),
    };
    st->protocols[1] = (struct lws_protocols){
        .name = WS_PROTOCOL,
        .callback = on_ws,
        .per_session_data_size = sizeof(struct ws_session),
        .rx_buffer_size = RX_BUFFER,
        /* lws caps one send() at this; a batched frame goes whole. */
        .tx_packet_size = cfg->max_frame_out + 64,
    };
    /* A WebSocket without a subprotocol gets ours, not "http". */
    st->pvo_default =
        (struct lws_protocol_vhost_options){.name = "default", .value = ""};
    st->pvo = (struct lws_protocol_vhost_options){
        .options = &st->pvo_default, .name = WS_PROTOCOL, .value = ""};

    st->mounts[0] = (struct lws_http_mount){
        .mount_next = &st->mounts[1],
        .mountpoint = "/healthz",
        .mountpoint_len = 8,
        .protocol = "http",
        .origin_protocol = LWSMPRO_CALLBACK,
    };
    st->mounts[1] = (struct lws_http_mount){
        .mount_next = &st->mounts[2],
        .mountpoint = "/readyz",
        .mountpoint_len = 7,
        .protocol = "http",
        .origin_protocol = LWSMPRO_CALLBACK,
    };
    st->mounts[2] = notify__lws_file_mount(cfg->web_root);
    /* The page is plain files from one origin: forbid everything else. */
    notify__lws_security_headers(st->headers, PUBLIC_CSP);
    st->retry = (lws_retry_bo_t){
        .secs_since_valid_ping = (uint16_t)cfg->ping_idle_s,
        .secs_since_valid_hangup =
            (uint16_t)(cfg->ping_idle_s + cfg->ping_grace_s),
    };

    memset(info, 0, sizeof(*info));
    notify__lws_listen(info, cfg->host, cfg->port);
    info->protocols = st->protocols;
    info->pvo = &st->pvo;
    info->mounts = &st->mounts[0];
    info->headers = &st->headers[0];
    info->retry_and_idle_policy = &st->retry;
    info->user = st;
    info->vhost_name = "scorewire";
    info->server_string = "scorewire";
    info->timeout_secs = 20;
}

static int notify_init(struct actor_ctx *ctx, void *arg, void **state)
{
    struct notify_state *st = calloc(1, sizeof(*st));
    if (!st) {
        return -ENOMEM;
    }
    st->svc.ctx = ctx;
    st->svc.failing = "notify failing";
    st->svc.after_service = end_pass;
    if (arg) {
        st->cfg = *(const struct notify_config *)arg;
    } else {
        notify_config_default(&st->cfg);
    }
    const struct notify_config *cfg = &st->cfg;
    struct notify__hub_config hcfg = {
        .ring = cfg->ring,
        .max_subs = cfg->max_subs,
        .max_unknown = cfg->max_unknown,
        .max_frame_in = cfg->max_frame_in,
        .max_frame_out = cfg->max_frame_out,
        .backlog_soft = cfg->backlog_soft,
        .backlog_hard = cfg->backlog_hard,
        .stall_ms = cfg->stall_ms,
        .ring_idle_ms = cfg->ring_idle_s * 1000u,
        .forget_ms = cfg->forget_s * 1000u,
        .model = &model_ops,
        .want_write = io_want_write,
        .close = io_close,
    };
    int rc = -ENOMEM;
    st->hub = notify__hub_new(&hcfg);
    if (!st->hub) {
        goto out_free;
    }
    /* Start the hub's clock (no client yet: nothing can fail). */
    (void)notify__hub_tick(st->hub, actor_now_ms());
    register_metrics(st);

    notify__lws_logging();
    struct lws_context_creation_info info;
    setup_lws_info(st, &info);
    st->svc.lws = lws_create_context(&info);
    if (!st->svc.lws) {
        /* lws says why on its log; bind failures are the usual cause. */
        actor_log(ctx, ACTOR_LOG_ERROR, "lws_create_context failed", "port",
                  ACTOR_LOG_INT(cfg->port), NULL);
        rc = -EADDRINUSE;
        goto out_hub;
    }
    struct lws_vhost *vh = lws_get_vhost_by_name(st->svc.lws, "scorewire");
    actor_log(ctx, ACTOR_LOG_INFO, "listening", "port",
              ACTOR_LOG_INT(vh ? lws_get_vhost_listen_port(vh) : cfg->port),
              "web_root", cfg->web_root, NULL);
    lws_sul_schedule(st->svc.lws, 0, &st->tick, on_tick, LWS_USEC_PER_SEC);
    *state = st;
    return 0;

out_hub:
    notify__hub_free(st->hub);
out_free:
    free(st);
    return rc;
}

static int notify_run(struct actor_ctx *ctx, void *state)
{
    struct notify_state *st = state;
    (void)ctx;
    drain(st, DRAIN_BATCH); /* what arrived before the loop started */
    return notify__service_run(&st->svc);
}

static void notify_wake(void *state)
{
    struct notify_state *st = state;
    lws_cancel_service(st->svc.lws);
}

static int handle_update(struct notify_state *st, struct actor_msg *msg)
{
    struct model_update_msg *m =
        container_of(msg, struct model_update_msg, hdr);
    if (!m->up || m->outcome != MODEL_APPLIED) {
        return 0; /* only the store cares about the other outcomes */
    }
    /* Which side of notify a late update lost its time on: the operator's
     * first question when browsers see updates late (README). */
    const struct update *up = m->up;
    if (up->sent_ms != EVENT_ABSENT && up->kind != UPDATE_SNAPSHOT) {
        actor_metric_observe(st->upstream,
                             (double)(up->image->updated_ms - up->sent_ms) /
                                 1000.0);
    }
    return notify__hub_update(st->hub, m->up);
}

static int handle_feed(struct notify_state *st, struct actor_msg *msg)
{
    struct model_feed_notice_msg *m =
        container_of(msg, struct model_feed_notice_msg, hdr);
    return notify__hub_feed(st->hub, m->source, m->state);
}

static int handle_ready(struct notify_state *st, struct actor_msg *msg)
{
    struct notify_ready_msg *m =
        container_of(msg, struct notify_ready_msg, hdr);
    if (m->ok) {
        st->ready |= m->what;
    } else {
        st->ready &= ~m->what;
    }
    return 0;
}

static int notify_handle(struct actor_ctx *ctx, void *state,
                         struct actor_msg *msg)
{
    struct notify_state *st = state;
    (void)ctx;
    switch (msg->type) {
    case MODEL_MSG_UPDATE:
        return handle_update(st, msg);
    case MODEL_MSG_FEED_NOTICE:
        return handle_feed(st, msg);
    case NOTIFY_MSG_READY:
        return handle_ready(st, msg);
    default:
        return -EINVAL;
    }
}

static void notify_stop(struct actor_ctx *ctx, void *state,
                        const struct actor_exit *why)
{
    struct notify_state *st = state;
    (void)ctx;
    (void)why;
    if (!st) {
        return;
    }
    /* No draining from callbacks lws makes while closing. */
    st->svc.done = true;
    if (st->svc.lws) {
        publish(st);
        /* Closes every connection: CLOSED unlinks each from the hub. */
        lws_sul_cancel(&st->tick);
        lws_sul_cancel(&st->flush);
        lws_sul_cancel(&st->close_wait);
        lws_context_destroy(st->svc.lws);
        st->svc.lws = NULL;
    }
    notify__hub_free(st->hub);
    free(st);
}

const struct actor_ops notify_ops = {
    .name = "notify",
    .init = notify_init,
    .handle = notify_handle,
    .stop = notify_stop,
    .run = notify_run,
    .wake = notify_wake,
};
