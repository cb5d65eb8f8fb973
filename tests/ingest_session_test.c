/* tests/ingest_session_test.c - the ingest stage's actors in manual mode:
 * the real subtree (listener, conns, parsers, sources) on loopback sockets,
 * with stand-ins registered as `store` and `model.matches`; plus the tokens
 * table, rings and outboxes. Deterministic: a test clock, no threads. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>

#include <cmocka.h>

#include "actor/actor.h"
#include "ingest/ingest.h"
#include "ingest/ingest_impl.h"
#include "store/store.h"
#include "tests/ingest_test_util.h"

/* ---- the store stand-in -------------------------------------------------- */

#define FS_MAX 4096

struct fs_rejected {
    char reason[32];
    char source[INGEST_SOURCE_MAX + 1]; /* "" when none */
    bool has_seq;
    uint64_t seq;
    size_t raw_len;
    uint64_t size;
};

/* What `store` was sent, and what it answers ACKED_REQ with. */
static struct {
    uint64_t pid;
    uint64_t events[FS_MAX]; /* seqs of STORE_MSG_EVENT, in order */
    char event_source[FS_MAX][INGEST_SOURCE_MAX + 1];
    int n_events;
    struct fs_rejected rejected[FS_MAX];
    int n_rejected;
    int acked_reqs;
    uint64_t acked, pending; /* the answer for every source */
    uint64_t lost_seq[64];   /* MODEL_LOST outcomes: event and element */
    uint32_t lost_index[64];
    int n_lost;
} fs;

static int fs_handle(struct actor_ctx *ctx, void *state, struct actor_msg *msg)
{
    (void)state;
    switch (msg->type) {
    case STORE_MSG_EVENT: {
        struct store_event_msg *m = (struct store_event_msg *)msg;
        assert_true(fs.n_events < FS_MAX);
        fs.events[fs.n_events] = m->ev->seq;
        snprintf(fs.event_source[fs.n_events], INGEST_SOURCE_MAX + 1, "%s",
                 m->ev->source);
        fs.n_events++;
        return 0;
    }
    case STORE_MSG_REJECTED: {
        struct store_rejected_msg *m = (struct store_rejected_msg *)msg;
        if (fs.n_rejected++ >= FS_MAX) {
            return 0; /* counted only */
        }
        struct fs_rejected *r = &fs.rejected[fs.n_rejected - 1];
        snprintf(r->reason, sizeof(r->reason), "%s", m->rej.reason);
        snprintf(r->source, sizeof(r->source), "%s",
                 m->rej.source ? m->rej.source : "");
        r->has_seq = m->rej.has_seq;
        r->seq = m->rej.seq;
        r->raw_len = m->rej.raw_len;
        r->size = m->rej.size;
        return 0;
    }
    case MODEL_MSG_UPDATE: {
        struct model_update_msg *m = (struct model_update_msg *)msg;
        assert_int_equal(m->outcome, MODEL_LOST);
        assert_null(m->up);
        assert_true(fs.n_lost < 64);
        fs.lost_seq[fs.n_lost] = m->ev->seq;
        fs.lost_index[fs.n_lost] = m->index;
        fs.n_lost++;
        return 0;
    }
    case STORE_MSG_ACKED_REQ: {
        struct store_acked_req_msg *m = (struct store_acked_req_msg *)msg;
        fs.acked_reqs++;
        struct store_ack_msg *a =
            store_ack_msg_new(m->source, fs.acked, fs.pending);
        assert_non_null(a);
        actor_send_or_free(ctx, m->reply_to, &a->hdr);
        return 0;
    }
    default:
        return -EINVAL;
    }
}

static const struct actor_ops fs_ops = {.name = "test.store",
                                        .handle = fs_handle};

/* The store commits everything of @source up to @seq (pending: what it
 * holds). Returns the send's status. */
static int commit(const char *source, uint64_t seq, uint64_t pending)
{
    char name[80];
    snprintf(name, sizeof(name), "source:%s", source);
    struct store_ack_msg *a = store_ack_msg_new(source, seq, pending);
    return actor_send_or_free(NULL, actor_whereis(name), &a->hdr);
}

/* ---- the model stand-in -------------------------------------------------- */

#define MODEL_ROUTE 0x7001

struct route_msg {
    struct actor_msg hdr;
    uint64_t seq;
    uint32_t index;
};

static struct {
    uint64_t pid;
    uint64_t seq[FS_MAX]; /* routed elements, in the order handled */
    uint32_t index[FS_MAX];
    int n;
    bool check_row_first; /* route asserts the event's row went first */
    bool hold;            /* route answers -EAGAIN, as a mailbox that
                             stays full */
    int route_calls;
    /* feed calls */
    char feed_source[64][INGEST_SOURCE_MAX + 1];
    enum match_feed feed_state[64];
    size_t feed_ids[64];
    bool feed_broadcast[64];
    int n_feed;
} fm;

static int fm_handle(struct actor_ctx *ctx, void *state, struct actor_msg *msg)
{
    (void)ctx;
    (void)state;
    if (msg->type != MODEL_ROUTE) {
        return -EINVAL;
    }
    struct route_msg *m = (struct route_msg *)msg;
    assert_true(fm.n < FS_MAX);
    fm.seq[fm.n] = m->seq;
    fm.index[fm.n] = m->index;
    fm.n++;
    return 0;
}

static const struct actor_ops fm_ops = {.name = "test.model",
                                        .handle = fm_handle};

static int route(struct actor_ctx *ctx, struct event *ev, uint32_t index)
{
    fm.route_calls++;
    assert_true(index < ev->n_matches);
    if (fm.hold) {
        return -EAGAIN;
    }
    if (fm.check_row_first) {
        /* Every row up to this event is with the store, handled or
         * queued (the test sends events 1..n, nothing else). */
        struct actor_info info;
        assert_int_equal(actor_info_get(fs.pid, &info), 0);
        assert_true((uint64_t)fs.n_events + info.mailbox >= ev->seq);
    }
    struct route_msg *m = actor_msg_new(sizeof(*m), MODEL_ROUTE);
    m->seq = ev->seq;
    m->index = index;
    int rc = actor_send(ctx, fm.pid, &m->hdr);
    if (rc != 0) {
        actor_msg_free(&m->hdr);
    }
    return rc;
}

static int feed(struct actor_ctx *ctx, const char *source,
                enum match_feed state, const char *const *ids, size_t n)
{
    (void)ctx;
    assert_true(fm.n_feed < 64);
    snprintf(fm.feed_source[fm.n_feed], INGEST_SOURCE_MAX + 1, "%s", source);
    fm.feed_state[fm.n_feed] = state;
    fm.feed_ids[fm.n_feed] = n;
    fm.feed_broadcast[fm.n_feed] = ids == NULL;
    fm.n_feed++;
    return 0;
}

/* ---- the subtree --------------------------------------------------------- */

static struct ingest__env env;
static uint64_t sup;
static char tokens_path[64];

static void run(void)
{
    actor_run_until_idle();
}

/* Starts the runtime, the stand-ins and the ingest subtree with @cfg
 * (route, feed and bind filled in here). */
static void start(struct ingest_config cfg, uint32_t store_mailbox,
                  uint32_t model_mailbox)
{
    memset(&fs, 0, sizeof(fs));
    memset(&fm, 0, sizeof(fm));
    assert_int_equal(
        actor_runtime_start(&(struct actor_config){.manual = true}), 0);
    assert_int_equal(
        actor_spawn(&(struct actor_spawn){.ops = &fs_ops,
                                          .name = "store",
                                          .mailbox = store_mailbox},
                    &fs.pid),
        0);
    assert_int_equal(
        actor_spawn(&(struct actor_spawn){.ops = &fm_ops,
                                          .name = "model.matches",
                                          .mailbox = model_mailbox},
                    &fm.pid),
        0);
    cfg.bind = "127.0.0.1";
    cfg.port = 0;
    cfg.route = route;
    cfg.feed = feed;
    assert_int_equal(ingest__env_init(&env, &cfg), 0);
    assert_int_equal(actor_sup_start(&env.sup, 0, &sup), 0);
    run();
    assert_int_not_equal(ingest_port(), 0);
}

static int setup(void **state)
{
    (void)state;
    start((struct ingest_config){0}, 0, 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    actor_exit(NULL, sup, &(struct actor_exit){.kind = ACTOR_EXIT_SHUTDOWN});
    run();
    actor_advance_ms(5000);
    run();
    assert_false(actor_is_alive(sup));
    /* every conn and source is gone, and counted out */
    assert_int_equal(atomic_load(&ingest__conns_alive), 0);
    assert_int_equal(atomic_load(&ingest__sources_alive), 0);
    assert_int_equal(atomic_load(&ingest__sources_pending), 0);
    assert_int_equal(ingest_port(), 0);
    actor_runtime_stop();
    ingest__env_release(&env);
    if (tokens_path[0]) {
        unlink(tokens_path);
        tokens_path[0] = '\0';
    }
    return 0;
}

/* ---- a feed client ------------------------------------------------------- */

struct client {
    int fd;
    char buf[1 << 16]; /* replies received, not yet taken */
    size_t len;
    bool closed; /* the server closed (EOF or reset) */
    bool reset;  /* ... with a reset */
};

/* A client over a socketpair: what it sends is there at once, so a run
 * sees all of it (loopback TCP may hold a segment back). */
static struct client *client_new(void)
{
    struct client *cl = calloc(1, sizeof(*cl));
    assert_non_null(cl);
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    fcntl(sv[0], F_SETFL, O_NONBLOCK);
    fcntl(sv[1], F_SETFL, O_NONBLOCK);
    assert_int_equal(ingest__conn_start(&env, actor_whereis("ingest.conns"),
                                        sv[0], "test", NULL),
                     0);
    cl->fd = sv[1];
    run();
    return cl;
}

/* A client through the listener, over loopback TCP; @rcvbuf > 0 sets its
 * receive buffer. */
static struct client *client_tcp_rcvbuf(int rcvbuf)
{
    struct client *cl = calloc(1, sizeof(*cl));
    assert_non_null(cl);
    cl->fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(cl->fd >= 0);
    int one = 1;
    setsockopt(cl->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (rcvbuf > 0) {
        setsockopt(cl->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    }
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)ingest_port())};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(cl->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    fcntl(cl->fd, F_SETFL, O_NONBLOCK);
    run();
    return cl;
}

static struct client *client_tcp(void)
{
    return client_tcp_rcvbuf(0);
}

static void client_free(struct client *cl)
{
    close(cl->fd);
    free(cl);
}

static void client_send(struct client *cl, const char *text)
{
    size_t len = strlen(text), off = 0;
    while (off < len) {
        ssize_t n = send(cl->fd, text + off, len - off, MSG_NOSIGNAL);
        if (n < 0 && errno == EAGAIN) {
            run(); /* let the server read */
            continue;
        }
        assert_true(n > 0);
        off += (size_t)n;
    }
}

/* Takes in what the server wrote. */
static void client_recv(struct client *cl)
{
    for (;;) {
        ssize_t n = recv(cl->fd, cl->buf + cl->len, sizeof(cl->buf) - cl->len,
                         MSG_DONTWAIT);
        if (n > 0) {
            cl->len += (size_t)n;
            assert_true(cl->len < sizeof(cl->buf));
            continue;
        }
        if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
            cl->reset |= !cl->closed && n < 0; /* the first word counts */
            cl->closed = true;
        }
        return;
    }
}

/* The next reply line (without "\r\n"), or "" when none is complete. */
static const char *client_line(struct client *cl)
{
    static char line[512];
    client_recv(cl);
    char *nl = memmem(cl->buf, cl->len, "\r\n", 2);
    if (!nl) {
        line[0] = '\0';
        return line;
    }
    size_t n = (size_t)(nl - cl->buf);
    assert_true(n < sizeof(line));
    memcpy(line, cl->buf, n);
    line[n] = '\0';
    memmove(cl->buf, nl + 2, cl->len - n - 2);
    cl->len -= n + 2;
    return line;
}

static bool client_is_closed(struct client *cl)
{
    client_recv(cl);
    return cl->closed;
}

/* True when the server ended the stream with a FIN (not a reset): the
 * client has read everything it wrote, then EOF. */
static bool client_has_fin(struct client *cl)
{
    return client_is_closed(cl) && !cl->reset;
}

/* Sends @text, runs the actors, returns the first reply line. */
static const char *exchange(struct client *cl, const char *text)
{
    client_send(cl, text);
    run();
    return client_line(cl);
}

static const char *login_of(const char *source)
{
    static char doc[128];
    snprintf(doc, sizeof(doc), "<login source=\"%s\" version=\"1\"/>", source);
    return doc;
}

/* An event of seq @seq with @n matches m<seq>-0 ... */
static const char *event_doc(uint64_t seq, int n)
{
    static char doc[1024];
    int len = snprintf(doc, sizeof(doc), "<event seq=\"%llu\">",
                       (unsigned long long)seq);
    for (int i = 0; i < n; i++) {
        len += snprintf(doc + len, sizeof(doc) - (size_t)len,
                        "<match id=\"m%d\"><score home=\"%d\" away=\"0\"/>"
                        "</match>",
                        i, (int)seq);
    }
    snprintf(doc + len, sizeof(doc) - (size_t)len, "</event>\r\n");
    return doc;
}

static void send_events(struct client *cl, uint64_t from, uint64_t to, int n)
{
    for (uint64_t s = from; s <= to; s++) {
        client_send(cl, event_doc(s, n));
    }
}

static struct client *logged_in(const char *source, const char *expect)
{
    struct client *cl = client_new();
    assert_string_equal(exchange(cl, login_of(source)), expect);
    return cl;
}

static uint64_t metric(struct actor_metric *m)
{
    return actor_metric_value(m);
}

static int64_t gauge_of(const char *name, const char *labels)
{
    struct actor_buf b;
    actor_buf_init(&b);
    assert_int_equal(actor_metric_render(&b), 0);
    char key[256];
    snprintf(key, sizeof(key), "\n%s{%s} ", name, labels);
    const char *at = strstr(b.data, key);
    int64_t v = at ? strtoll(at + strlen(key), NULL, 10) : -1;
    actor_buf_release(&b);
    return v;
}

static int64_t state_of(const char *source, const char *state)
{
    char labels[128];
    snprintf(labels, sizeof(labels), "source=\"%s\",state=\"%s\"", source,
             state);
    return gauge_of("scorewire_ingest_source_state", labels);
}

/* ---- login --------------------------------------------------------------- */

static void test_login_without_tokens(void **state)
{
    (void)state;
    fs.acked = 41;
    fs.pending = 41;
    /* through the feed port */
    struct client *cl = client_tcp();
    assert_string_equal(
        exchange(cl, login_of("feed-a")),
        "<login result=\"valid\" source=\"feed-a\" acked=\"41\"/>");
    assert_int_equal(fs.acked_reqs, 1);
    assert_int_equal(state_of("feed-a", "live"), 1);
    assert_int_equal(state_of("feed-a", "offline"), 0);
    assert_int_equal(fm.n_feed, 1);
    assert_string_equal(fm.feed_source[0], "feed-a");
    assert_int_equal(fm.feed_state[0], MATCH_FEED_LIVE);

    /* a token is ignored where none are configured */
    struct client *b = logged_in(
        "feed-b2", "<login result=\"valid\" source=\"feed-b2\" acked=\"41\"/>");
    assert_string_equal(
        exchange(b, "<login source=\"feed-b2\" token=\"x\"/>"),
        "<error reason=\"bad_element\"/>"); /* but not a second login */
    client_free(b);

    /* the peer goes: offline */
    client_free(cl);
    run();
    assert_int_equal(state_of("feed-a", "offline"), 1);
    assert_int_equal(state_of("feed-a", "live"), 0);
    assert_int_equal(fm.feed_state[fm.n_feed - 1], MATCH_FEED_OFFLINE);
}

static void write_tokens(const char *text)
{
    snprintf(tokens_path, sizeof(tokens_path), "/tmp/sw-tokens-XXXXXX");
    int fd = mkstemp(tokens_path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

static int setup_tokens(void **state)
{
    (void)state;
    write_tokens("# feeds\nfeed-t s3cr&t\n\n  feed-u   other  \n");
    start((struct ingest_config){.tokens_path = tokens_path}, 0, 0);
    return 0;
}

static void test_login_tokens(void **state)
{
    (void)state;
    static const char refused[] =
        "<login result=\"invalid\" reason=\"unauthenticated\"/>";
    struct {
        const char *doc;
        const char *reply;
    } cases[] = {
        {"<login source=\"feed-t\" token=\"s3cr&amp;t\" version=\"1\"/>",
         "<login result=\"valid\" source=\"feed-t\" acked=\"0\"/>"},
        {"<login source=\"feed-t\" token=\"s3cr\" version=\"1\"/>", refused},
        {"<login source=\"feed-t\" token=\"s3cr&amp;tt\"/>", refused},
        {"<login source=\"feed-t\" token=\"other\"/>", refused},
        {"<login source=\"feed-t\"/>", refused},
        {"<login source=\"feed-x\" token=\"s3cr&amp;t\"/>", refused},
        {"<login source=\"feed-u\" token=\"other\" version=\"2\"/>",
         "<login result=\"invalid\" reason=\"unsupported_version\"/>"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct client *cl = client_new();
        assert_string_equal(exchange(cl, cases[i].doc), cases[i].reply);
        bool ok = strstr(cases[i].reply, "result=\"valid\"") != NULL;
        assert_int_equal(client_is_closed(cl), !ok);
        client_free(cl);
        run();
    }
    /* only the good login started a source */
    assert_int_equal(fs.acked_reqs, 1);
}

static void test_no_login_with_tokens(void **state)
{
    (void)state;
    uint64_t unauth =
        metric(ingest__m.rejected[INGEST__REASON_UNAUTHENTICATED]);
    /* an event naming its source, and one naming none */
    const char *docs[] = {"<event seq=\"3\" source=\"feed-t\"/>",
                          "<event seq=\"4\"/>"};
    for (int i = 0; i < 2; i++) {
        struct client *cl = client_new();
        char want[64];
        snprintf(want, sizeof(want),
                 "<error seq=\"%d\" reason=\"unauthenticated\"/>", 3 + i);
        assert_string_equal(exchange(cl, docs[i]), want);
        assert_true(client_is_closed(cl));
        client_free(cl);
    }
    run();
    assert_int_equal(metric(ingest__m.rejected[INGEST__REASON_UNAUTHENTICATED]),
                     unauth + 2);
    /* nothing an unauthenticated peer sent reached the store */
    assert_int_equal(fs.n_events + fs.n_rejected + fs.acked_reqs, 0);
}

/* A login the parser rejects is refused with a login reply (its peer
 * waits for one), with the parser's reason, and closed. Without tokens
 * it is kept as a dead letter; with them nothing of it is. */
static void expect_login_refused(const char *doc, int dead_letters)
{
    struct client *cl = client_new();
    assert_string_equal(exchange(cl, doc),
                        "<login result=\"invalid\" reason=\"bad_attribute\"/>");
    run();
    actor_advance_ms(2000); /* the linger */
    run();
    assert_true(client_is_closed(cl));
    client_free(cl);
    assert_int_equal(fs.n_rejected, dead_letters);
}

static void test_unreadable_login_refused(void **state)
{
    (void)state;
    expect_login_refused("<login version=\"1\"/>", 1);
}

static void test_unreadable_login_refused_with_tokens(void **state)
{
    (void)state;
    char doc[INGEST_TOKEN_MAX + 64];
    snprintf(doc, sizeof(doc), "<login source=\"feed-t\" token=\"%0*d\"/>",
             (int)INGEST_TOKEN_MAX + 1, 7);
    expect_login_refused(doc, 0);
}

/* Where tokens are configured, heartbeats do not stand in for a login:
 * past the silence limit from its start, a peer that has not logged in
 * is told so and closed (else a few hundred of them hold every slot). */
static void test_login_deadline_with_tokens(void **state)
{
    (void)state;
    uint64_t unauth =
        metric(ingest__m.rejected[INGEST__REASON_UNAUTHENTICATED]);
    struct client *cl = client_new();
    int64_t waited = 0;
    while (waited < INGEST_SILENCE_MS_DEFAULT - 5000) {
        client_send(cl, "<ct/>");
        run();
        actor_advance_ms(5000);
        waited += 5000;
        run();
    }
    assert_false(client_is_closed(cl));
    client_send(cl, "<ct/>");
    actor_advance_ms(5000);
    run();
    const char *line = client_line(cl);
    while (strcmp(line, "<ct/>") == 0) { /* the server's heartbeats */
        line = client_line(cl);
    }
    assert_string_equal(line, "<error reason=\"unauthenticated\"/>");
    actor_advance_ms(2000); /* the linger */
    run();
    assert_true(client_is_closed(cl));
    client_free(cl);
    assert_int_equal(metric(ingest__m.rejected[INGEST__REASON_UNAUTHENTICATED]),
                     unauth + 1);
}

static void test_close_is_a_fin(void **state)
{
    (void)state;
    /* A refused login, and behind it more than the server will ever
     * read: the reply must still reach the peer, closed by a FIN (a
     * socket closed with unread input sends a reset instead, and a reset
     * may destroy what the peer has not read yet). */
    struct client *cl = client_tcp();
    client_send(cl, "<login source=\"feed-t\" token=\"wrong\"/>");
    size_t sent = 0;
    while (sent < (256u << 10)) {
        const char *doc = event_doc(sent + 1, 1);
        ssize_t n = send(cl->fd, doc, strlen(doc), MSG_NOSIGNAL);
        if (n < 0) {
            assert_int_equal(errno, EAGAIN);
            break;
        }
        sent += (size_t)n;
    }
    run();
    assert_string_equal(
        client_line(cl),
        "<login result=\"invalid\" reason=\"unauthenticated\"/>");
    assert_true(client_has_fin(cl));
    /* the conn drops what is left until the peer closes, or the linger */
    assert_int_equal(atomic_load(&ingest__conns_alive), 1);
    client_free(cl);
    run();
    assert_int_equal(atomic_load(&ingest__conns_alive), 0);
}

static void test_unknown_version(void **state)
{
    (void)state;
    struct client *cl = client_new();
    assert_string_equal(
        exchange(cl, "<login source=\"feed-v\" version=\"2\"/>"),
        "<login result=\"invalid\" reason=\"unsupported_version\"/>");
    assert_true(client_is_closed(cl));
    client_free(cl);
    /* without a version: SFP/1 */
    cl = client_new();
    assert_string_equal(
        exchange(cl, "<login source=\"feed-v\"/>"),
        "<login result=\"valid\" source=\"feed-v\" acked=\"0\"/>");
    client_free(cl);
}

static void test_skip_login(void **state)
{
    (void)state;
    struct client *cl = client_new();
    /* the first event names the source and binds the connection */
    client_send(cl, "<event seq=\"1\" source=\"feed-s\"><match id=\"m1\"/>"
                    "</event><event seq=\"2\"><match id=\"m2\"/></event>"
                    "<event seq=\"3\" source=\"feed-s\"/>");
    run();
    assert_string_equal(client_line(cl), ""); /* no login reply */
    assert_int_equal(fs.n_events, 3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(fs.events[i], (uint64_t)i + 1);
        assert_string_equal(fs.event_source[i], "feed-s");
    }
    assert_int_equal(fm.n, 2);
    /* another source's event on this connection: rejected, no seq */
    assert_string_equal(exchange(cl, "<event seq=\"9\" source=\"feed-z\"/>"),
                        "<error reason=\"bad_attribute\"/>");
    assert_int_equal(fs.n_rejected, 1);
    assert_false(fs.rejected[0].has_seq);
    assert_int_equal(commit("feed-s", 3, 3), 0);
    run();
    assert_string_equal(client_line(cl), "<ack seq=\"3\"/>");
    client_free(cl);

    /* without a source anywhere: unauthenticated, and the line stays */
    cl = client_new();
    assert_string_equal(exchange(cl, "<event seq=\"5\"/>"),
                        "<error seq=\"5\" reason=\"unauthenticated\"/>");
    assert_false(client_is_closed(cl));
    assert_string_equal(fs.rejected[1].reason, "unauthenticated");
    assert_string_equal(fs.rejected[1].source, "");
    client_free(cl);
}

/* ---- one connection per source ------------------------------------------- */

static void test_replacement(void **state)
{
    (void)state;
    static const char valid[] =
        "<login result=\"valid\" source=\"feed-r\" acked=\"0\"/>";
    struct client *a = logged_in("feed-r", valid);
    send_events(a, 1, 2, 1);
    run();
    struct client *b = logged_in("feed-r", valid);
    /* the older one is told and closed */
    assert_string_equal(client_line(a), "<error reason=\"replaced\"/>");
    assert_true(client_is_closed(a));
    /* the newer one goes on; what the old one sent is not lost */
    send_events(b, 3, 4, 1);
    run();
    assert_int_equal(fs.n_events, 4);
    assert_int_equal(commit("feed-r", 4, 4), 0);
    run();
    assert_string_equal(client_line(b), "<ack seq=\"4\"/>");
    assert_int_equal(state_of("feed-r", "live"), 1);
    client_free(a);
    run();
    assert_int_equal(state_of("feed-r", "live"), 1); /* b still feeds */
    client_free(b);
    run();
    assert_int_equal(state_of("feed-r", "offline"), 1);
}

/* ---- events, order, acks ------------------------------------------------- */

static int setup_small_mailboxes(void **state)
{
    (void)state;
    start((struct ingest_config){0}, 4, 4);
    return 0;
}

static void test_order_through_full_mailboxes(void **state)
{
    (void)state;
    fm.check_row_first = true;
    struct client *cl =
        logged_in("feed-o", "<login result=\"valid\" source=\"feed-o\" "
                            "acked=\"0\"/>");
    send_events(cl, 1, 200, 3);
    run();
    /* Every row, then every element, in order, none skipped or twice,
     * though the store's and the model's mailboxes (4) were full again
     * and again. */
    assert_int_equal(fs.n_events, 200);
    assert_int_equal(fm.n, 600);
    for (int i = 0; i < 200; i++) {
        assert_int_equal(fs.events[i], (uint64_t)i + 1);
        for (int k = 0; k < 3; k++) {
            assert_int_equal(fm.seq[3 * i + k], (uint64_t)i + 1);
            assert_int_equal(fm.index[3 * i + k], (uint32_t)k);
        }
    }
    assert_true(fm.route_calls > 600); /* some met a full mailbox */
    /* acks are cumulative: one line per relay */
    assert_int_equal(commit("feed-o", 150, 200), 0);
    assert_int_equal(commit("feed-o", 200, 200), 0);
    run();
    assert_string_equal(client_line(cl), "<ack seq=\"150\"/>");
    assert_string_equal(client_line(cl), "<ack seq=\"200\"/>");
    client_free(cl);
}

/* A document rejected for its content used up its seq; sent again (on
 * the same connection, or resent after a reconnect before its ack came)
 * it is a duplicate, and "a duplicate is not an error": no second
 * <error>, no second dead letter, counted as a duplicate. */
static void test_resent_rejection_is_a_duplicate(void **state)
{
    (void)state;
    uint64_t dups = metric(ingest__m.duplicates);
    uint64_t bad_element =
        metric(ingest__m.rejected[INGEST__REASON_BAD_ELEMENT]);
    static const char bad[] =
        "<event seq=\"2\"><match id=\"m\"><score home=\"1\" away=\"0\"/>"
        "<score home=\"2\" away=\"0\"/></match></event>";
    struct client *cl = logged_in(
        "feed-r", "<login result=\"valid\" source=\"feed-r\" acked=\"0\"/>");
    send_events(cl, 1, 1, 1);
    assert_string_equal(exchange(cl, bad),
                        "<error seq=\"2\" reason=\"bad_element\"/>");
    assert_string_equal(exchange(cl, bad), "");
    run();
    assert_int_equal(fs.n_rejected, 1);
    assert_int_equal(metric(ingest__m.duplicates), dups + 1);
    client_free(cl);
    run();

    /* Reconnect before any ack: acked 0, the feed resends 1 and 2. */
    cl = logged_in("feed-r",
                   "<login result=\"valid\" source=\"feed-r\" acked=\"0\"/>");
    send_events(cl, 1, 1, 1);
    assert_string_equal(exchange(cl, bad), "");
    /* and 3, new, goes on as usual */
    assert_string_equal(exchange(cl, event_doc(3, 1)), "");
    run();
    assert_int_equal(fs.n_rejected, 1);
    assert_int_equal(fs.n_events, 2);
    assert_int_equal(metric(ingest__m.duplicates), dups + 3);
    assert_int_equal(metric(ingest__m.rejected[INGEST__REASON_BAD_ELEMENT]),
                     bad_element + 1);
    client_free(cl);
}

static void test_dedupe_across_reconnects(void **state)
{
    (void)state;
    uint64_t dups = metric(ingest__m.duplicates);
    uint64_t events = metric(ingest__m.events);
    struct client *cl = logged_in(
        "feed-d", "<login result=\"valid\" source=\"feed-d\" acked=\"0\"/>");
    send_events(cl, 1, 5, 1);
    run();
    assert_int_equal(commit("feed-d", 3, 5), 0);
    run();
    assert_string_equal(client_line(cl), "<ack seq=\"3\"/>");
    client_free(cl);
    run();

    /* Reconnect: acked 3; the feed resends 4.. and 4, 5 are in flight. */
    cl = logged_in("feed-d",
                   "<login result=\"valid\" source=\"feed-d\" acked=\"3\"/>");
    send_events(cl, 4, 7, 1);
    run();
    assert_int_equal(fs.n_events, 7);
    assert_int_equal(fs.events[5], 6);
    assert_int_equal(fs.events[6], 7);
    assert_int_equal(metric(ingest__m.duplicates), dups + 2);
    /* a duplicate already durable is acked again */
    assert_string_equal(exchange(cl, event_doc(2, 1)), "<ack seq=\"3\"/>");
    assert_int_equal(metric(ingest__m.duplicates), dups + 3);
    client_free(cl);
    run();

    /* The source actor restarts (a crash): the store says acked 5 and
     * holds up to 7, and the new actor dedupes against that. */
    uint64_t src = actor_whereis("source:feed-d");
    actor_exit(NULL, src, &(struct actor_exit){.kind = ACTOR_EXIT_KILLED});
    run();
    fs.acked = 5;
    fs.pending = 7;
    cl = logged_in("feed-d",
                   "<login result=\"valid\" source=\"feed-d\" acked=\"5\"/>");
    send_events(cl, 6, 8, 1);
    run();
    assert_int_equal(fs.n_events, 8);
    assert_int_equal(fs.events[7], 8);
    assert_int_equal(metric(ingest__m.events), events + 8);
    client_free(cl);
}

static void test_source_end_reports_lost_elements(void **state)
{
    (void)state;
    struct client *cl = logged_in(
        "feed-x", "<login result=\"valid\" source=\"feed-x\" acked=\"0\"/>");
    fm.hold = true; /* the model never takes anything */
    send_events(cl, 1, 5, 3);
    run();
    /* event 1's row went; its elements wait; 2..5 wait behind it */
    assert_int_equal(fs.n_events, 1);
    assert_int_equal(fm.n, 0);
    uint64_t src = actor_whereis("source:feed-x");
    actor_exit(NULL, src, &(struct actor_exit){.kind = ACTOR_EXIT_KILLED});
    run();
    /* the store hears that event 1's elements were lost, so it completes;
     * the rest never reached the store and the feed resends them */
    assert_int_equal(fs.n_lost, 3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(fs.lost_seq[i], 1);
        assert_int_equal(fs.lost_index[i], (uint32_t)i);
    }
    assert_true(client_is_closed(cl));
    client_free(cl);
}

/* ---- errors -------------------------------------------------------------- */

static int setup_small_docs(void **state)
{
    (void)state;
    start((struct ingest_config){.doc_limit = 1024}, 0, 0);
    return 0;
}

static void test_error_replies(void **state)
{
    (void)state;
    uint64_t before[INGEST__REASON_COUNT];
    for (int r = 1; r < INGEST__REASON_COUNT; r++) {
        before[r] = metric(ingest__m.rejected[r]);
    }
    uint64_t unknown = metric(ingest__m.unknown_root);
    struct client *cl = logged_in(
        "feed-e", "<login result=\"valid\" source=\"feed-e\" acked=\"0\"/>");
    char big[2048];
    snprintf(big, sizeof(big),
             "<event seq=\"14\"><match id=\"%01500d\"/>"
             "</event>",
             0);
    struct {
        const char *doc;
        const char *reply;
        bool has_seq;
    } cases[] = {
        {"<event seq=\"1\"><match id=\"m\"/></event>", "", false},
        {"<event seq=\"10\"><match id=\"m\"/></evnt>",
         "<error seq=\"10\" reason=\"not_well_formed\"/>", false},
        {"<event seq=\"11\" sent=\"yesterday\"/>",
         "<error seq=\"11\" reason=\"bad_attribute\"/>", true},
        {"<event seq=\"12\"><match id=\"m\"><score home=\"1\" away=\"0\"/>"
         "<score home=\"2\" away=\"0\"/></match></event>",
         "<error seq=\"12\" reason=\"bad_element\"/>", true},
        {"<event><match id=\"m\"/></event>", "<error reason=\"missing_seq\"/>",
         false},
        {"<event seq=\"13\" source=\"other\"/>",
         "<error reason=\"bad_attribute\"/>", false},
        {big, "<error seq=\"14\" reason=\"too_large\"/>", false},
        {"<?xml version=\"1.0\"?><!DOCTYPE event><event seq=\"15\"/>",
         "<error reason=\"not_well_formed\"/>", false},
        {"<future kind=\"x\"/>", "", false},
        {"<event seq=\"16\"><match id=\"m\"/></event>", "", false},
    };
    int rejected = 0;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_string_equal(exchange(cl, cases[i].doc), cases[i].reply);
        if (cases[i].reply[0]) {
            struct fs_rejected *r = &fs.rejected[rejected++];
            assert_int_equal(fs.n_rejected, rejected);
            assert_int_equal(r->has_seq, cases[i].has_seq);
            assert_string_equal(r->source, "feed-e");
            assert_true(r->raw_len > 0 && r->raw_len <= r->size);
        }
    }
    assert_int_equal(fs.rejected[1].seq, 11);
    assert_int_equal(fs.rejected[2].seq, 12);
    assert_int_equal(fs.rejected[5].raw_len, 1024); /* too_large: the head */
    assert_true(fs.rejected[5].size > 1024);
    assert_int_equal(fs.n_events, 2);
    for (int r = 1; r < INGEST__REASON_COUNT; r++) {
        uint64_t want = before[r];
        want += r == INGEST__REASON_NOT_WELL_FORMED ? 2
                : r == INGEST__REASON_BAD_ATTRIBUTE ? 2
                : r == INGEST__REASON_BAD_ELEMENT   ? 1
                : r == INGEST__REASON_MISSING_SEQ   ? 1
                : r == INGEST__REASON_TOO_LARGE     ? 1
                                                    : 0;
        assert_int_equal(metric(ingest__m.rejected[r]), want);
    }
    assert_int_equal(metric(ingest__m.unknown_root), unknown + 1);
    /* the seqs the content rejections used up are acked like events */
    assert_int_equal(commit("feed-e", 16, 16), 0);
    run();
    assert_string_equal(client_line(cl), "<ack seq=\"16\"/>");
    assert_false(client_is_closed(cl));
    client_free(cl);
}

/* ---- flow control -------------------------------------------------------- */

static int setup_window(void **state)
{
    (void)state;
    start((struct ingest_config){.window = 4}, 0, 0);
    return 0;
}

static void test_window(void **state)
{
    (void)state;
    struct client *cl = logged_in(
        "feed-w", "<login result=\"valid\" source=\"feed-w\" acked=\"0\"/>");
    send_events(cl, 1, 10, 1);
    run();
    assert_int_equal(fs.n_events, 4); /* the window is full: no reading */
    actor_advance_ms(INGEST_SILENCE_MS_DEFAULT + 1000);
    run();
    assert_string_equal(client_line(cl), "<ct/>");
    /* not reading by our choice is not the source's silence */
    assert_int_equal(state_of("feed-w", "live"), 1);
    assert_int_equal(fs.n_events, 4);
    assert_int_equal(commit("feed-w", 2, 4), 0);
    run();
    assert_int_equal(fs.n_events, 6);
    assert_int_equal(commit("feed-w", 6, 6), 0);
    run();
    assert_int_equal(fs.n_events, 10);
    assert_string_equal(client_line(cl), "<ack seq=\"2\"/>");
    assert_string_equal(client_line(cl), "<ack seq=\"6\"/>");
    client_free(cl);
}

/* ---- time ---------------------------------------------------------------- */

static void test_heartbeat_and_silence(void **state)
{
    (void)state;
    struct client *cl = logged_in(
        "feed-h", "<login result=\"valid\" source=\"feed-h\" acked=\"0\"/>");
    actor_advance_ms(4000);
    run();
    assert_string_equal(client_line(cl), "");
    actor_advance_ms(1000);
    run();
    assert_string_equal(client_line(cl), "<ct/>"); /* 5 s without output */
    actor_advance_ms(5000);
    run();
    assert_string_equal(client_line(cl), "<ct/>");
    assert_int_equal(state_of("feed-h", "live"), 1);
    /* the feed's own <ct/> keeps it live */
    client_send(cl, "<ct/>");
    run();
    actor_advance_ms(10000);
    run();
    client_send(cl, "<ct/>");
    run();
    actor_advance_ms(10000);
    run();
    assert_int_equal(state_of("feed-h", "live"), 1);
    /* 20 s of nothing: stale */
    actor_advance_ms(10000);
    run();
    assert_int_equal(state_of("feed-h", "stale"), 1);
    assert_int_equal(state_of("feed-h", "live"), 0);
    assert_int_equal(fm.feed_state[fm.n_feed - 1], MATCH_FEED_STALE);
    /* the next byte: live again */
    client_send(cl, " ");
    run();
    assert_int_equal(state_of("feed-h", "live"), 1);
    assert_int_equal(fm.feed_state[fm.n_feed - 1], MATCH_FEED_LIVE);
    /* the feed notices name the matches the source routed to */
    send_events(cl, 1, 1, 2);
    run();
    actor_advance_ms(INGEST_SILENCE_MS_DEFAULT);
    run();
    assert_int_equal(fm.feed_state[fm.n_feed - 1], MATCH_FEED_STALE);
    assert_int_equal(fm.feed_ids[fm.n_feed - 1], 2);
    assert_false(fm.feed_broadcast[fm.n_feed - 1]);
    client_free(cl);
}

static void test_silent_before_login(void **state)
{
    (void)state;
    struct client *cl = client_new();
    actor_advance_ms(INGEST_SILENCE_MS_DEFAULT - 1000);
    run();
    assert_false(client_is_closed(cl));
    actor_advance_ms(1000);
    run();
    actor_advance_ms(2000); /* the linger */
    run();
    assert_true(client_is_closed(cl));
    client_free(cl);
}

/* ---- hostile peers ------------------------------------------------------- */

static void test_peer_that_never_reads(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    int small = 4096;
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
    fcntl(sv[0], F_SETFL, O_NONBLOCK);
    fcntl(sv[1], F_SETFL, O_NONBLOCK);
    uint64_t conn;
    assert_int_equal(ingest__conn_start(&env, actor_whereis("ingest.conns"),
                                        sv[0], "socketpair", &conn),
                     0);
    run();
    /* Each <event/> earns an <error> that is never read. */
    static const char doc[] = "<event/>";
    int sent = 0;
    while (actor_is_alive(conn) && sent < 100000) {
        ssize_t n = send(sv[1], doc, sizeof(doc) - 1, MSG_NOSIGNAL);
        if (n < 0) {
            assert_int_equal(errno, EAGAIN);
        } else {
            assert_int_equal(n, (ssize_t)sizeof(doc) - 1);
            sent++;
        }
        if (n < 0 || sent % 64 == 0) {
            run();
        }
    }
    assert_false(actor_is_alive(conn));
    /* closed once OUT_MAX (256 KiB) of 31-byte replies were unwritten */
    assert_true(sent > 8000);
    close(sv[1]);
}

static void test_silent_peer_that_never_reads(void **state)
{
    (void)state;
    struct client *reader = logged_in(
        "feed-q1", "<login result=\"valid\" source=\"feed-q1\" acked=\"0\"/>");
    /* The deaf peer earns 34 KB of <error> replies its small receive
     * buffer cannot take, then says nothing more (as a peer behind a dead
     * network path would). */
    struct client *deaf = client_tcp_rcvbuf(2048);
    client_send(deaf, login_of("feed-q2"));
    for (int i = 0; i < 1100; i++) {
        client_send(deaf, "<event/>");
    }
    run();
    /* both are silent now; one takes its heartbeats, the other nothing */
    for (int i = 0; i < 8; i++) {
        actor_advance_ms(5000);
        run();
        while (client_line(reader)[0]) {
        }
    }
    assert_int_equal(state_of("feed-q1", "stale"), 1);
    assert_false(client_is_closed(reader));
    assert_int_equal(state_of("feed-q2", "offline"), 1);
    client_free(deaf);
    client_free(reader);
}

static void test_hostile_peer_is_contained(void **state)
{
    (void)state;
    uint64_t junk = metric(ingest__m.junk);
    uint64_t large = metric(ingest__m.rejected[INGEST__REASON_TOO_LARGE]);
    struct client *good = logged_in(
        "feed-g", "<login result=\"valid\" source=\"feed-g\" acked=\"0\"/>");
    struct client *bad = client_new();
    /* junk between documents, a login, then a document that never ends */
    assert_string_equal(
        exchange(bad, "garbage!\r\n<login source=\"feed-b\"/>more junk"),
        "<login result=\"valid\" source=\"feed-b\" acked=\"0\"/>");
    assert_int_equal(metric(ingest__m.junk), junk + 16);
    send_events(good, 1, 3, 1);
    client_send(bad, "<event seq=\"1\"><match id=\"m\">");
    char chunk[1024];
    memset(chunk, 'x', sizeof(chunk));
    /* past 4 x 1 KiB it is a runaway; the peer may be cut off sooner
     * than it stops sending, so its sends may fail */
    for (int i = 0; i < 16 && !client_is_closed(bad); i++) {
        if (send(bad->fd, chunk, sizeof(chunk), MSG_NOSIGNAL) < 0) {
            break;
        }
        run();
    }
    actor_advance_ms(2000);
    run();
    assert_true(client_is_closed(bad));
    assert_int_equal(metric(ingest__m.rejected[INGEST__REASON_TOO_LARGE]),
                     large + 1);
    send_events(good, 4, 6, 1);
    run();
    /* the good feed never noticed */
    assert_int_equal(fs.n_events, 6);
    assert_int_equal(commit("feed-g", 6, 6), 0);
    run();
    assert_string_equal(client_line(good), "<ack seq=\"6\"/>");
    assert_false(client_is_closed(good));
    client_free(bad);
    client_free(good);
}

static void test_crash_is_contained(void **state)
{
    (void)state;
    struct client *a = logged_in(
        "feed-c1", "<login result=\"valid\" source=\"feed-c1\" acked=\"0\"/>");
    struct client *b = logged_in(
        "feed-c2", "<login result=\"valid\" source=\"feed-c2\" acked=\"0\"/>");
    /* a's next allocation in ingest fails: its conn (and with it its
     * parser) crashes; b's and the sources live on */
    tmem.fail_at = tmem.allocs + 1;
    client_send(a, event_doc(1, 1));
    run();
    assert_int_equal(tmem.failed, 1);
    assert_true(client_is_closed(a));
    send_events(b, 1, 2, 1);
    run();
    assert_int_equal(fs.n_events, 2);
    assert_int_equal(state_of("feed-c1", "offline"), 1);
    assert_int_equal(state_of("feed-c2", "live"), 1);
    client_free(a);
    client_free(b);
}

static int setup_tmem(void **state)
{
    tmem_start();
    return setup(state);
}

static int teardown_tmem(void **state)
{
    teardown(state);
    assert_int_equal(tmem.live, 0);
    tmem_stop();
    return 0;
}

/* ---- limits -------------------------------------------------------------- */

static int setup_limits(void **state)
{
    (void)state;
    start((struct ingest_config){.max_conns = 2, .max_sources = 1}, 0, 0);
    return 0;
}

static void test_limits(void **state)
{
    (void)state;
    uint64_t refused = metric(ingest__m.refused);
    struct client *a = logged_in(
        "feed-l", "<login result=\"valid\" source=\"feed-l\" acked=\"0\"/>");
    struct client *b = client_new();
    struct client *c = client_tcp(); /* a third connection */
    assert_true(client_is_closed(c));
    assert_int_equal(metric(ingest__m.refused), refused + 1);
    assert_string_equal(
        exchange(b, "<login source=\"feed-m\"/>"),
        "<login result=\"invalid\" reason=\"too_many_sources\"/>");
    assert_true(client_is_closed(b));
    client_free(c);
    client_free(b);
    client_free(a);
}

/* ---- the drain ----------------------------------------------------------- */

/* What the drain still waits for, as "conns/sources". */
static const char *drain_left(void)
{
    static char text[32];
    struct ingest_drain_status st;
    bool done = ingest_drain_is_done(&st);
    snprintf(text, sizeof(text), "%u/%u", st.conns, st.sources);
    assert_int_equal(done, st.conns == 0 && st.sources == 0);
    return text;
}

/* Wakes the source actor of @source as the runtime would once the
 * mailbox that refused it has room. */
static void resume_source(const char *source)
{
    char name[80];
    snprintf(name, sizeof(name), "source:%s", source);
    struct actor_msg *m = actor_msg_new(sizeof(*m), ACTOR_MSG_RESUME);
    assert_int_equal(actor_send_or_free(NULL, actor_whereis(name), m), 0);
}

static void test_drain_finishes_what_was_read(void **state)
{
    (void)state;
    unsigned port = ingest_port();
    struct client *cl = logged_in(
        "feed-dr", "<login result=\"valid\" source=\"feed-dr\" acked=\"0\"/>");
    send_events(cl, 1, 10, 1);
    run();
    assert_int_equal(fs.n_events, 10);
    assert_string_equal(drain_left(), "1/1");

    ingest_drain();
    run();
    /* the feed port is closed: new connections are refused */
    assert_int_equal(ingest_port(), 0);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), -1);
    assert_int_equal(errno, ECONNREFUSED);
    close(fd);
    /* what the peer sends now is not read: the feed resends it later */
    send_events(cl, 11, 12, 1);
    run();
    assert_int_equal(fs.n_events, 10);
    /* the session goes on until every accepted event is acked */
    assert_int_equal(commit("feed-dr", 6, 10), 0);
    run();
    assert_string_equal(client_line(cl), "<ack seq=\"6\"/>");
    assert_false(client_is_closed(cl));
    assert_string_equal(drain_left(), "1/1");
    assert_int_equal(commit("feed-dr", 10, 10), 0);
    run();
    assert_string_equal(client_line(cl), "<ack seq=\"10\"/>");
    assert_true(client_has_fin(cl));
    /* the conn waits for the peer to close its side too */
    assert_string_equal(drain_left(), "1/0");
    client_free(cl);
    run();
    assert_string_equal(drain_left(), "0/0");
    assert_int_equal(fs.n_events, 10);
    assert_int_equal(state_of("feed-dr", "offline"), 1);
}

static void test_drain_frames_what_waits_in_the_buffer(void **state)
{
    (void)state;
    struct client *cl = logged_in(
        "feed-dw", "<login result=\"valid\" source=\"feed-dw\" acked=\"0\"/>");
    /* one read takes all ten; the window (4) lets four through */
    send_events(cl, 1, 10, 1);
    run();
    assert_int_equal(fs.n_events, 4);
    ingest_drain();
    send_events(cl, 11, 12, 1);
    run();
    assert_int_equal(fs.n_events, 4);
    /* each ack frees the window for what was read before the drain, and
     * for nothing after it */
    assert_int_equal(commit("feed-dw", 4, 4), 0);
    run();
    assert_int_equal(fs.n_events, 8);
    assert_int_equal(commit("feed-dw", 8, 8), 0);
    run();
    assert_int_equal(fs.n_events, 10);
    assert_false(client_is_closed(cl));
    assert_int_equal(commit("feed-dw", 10, 10), 0);
    run();
    assert_int_equal(fs.n_events, 10);
    assert_int_equal(fs.events[9], 10);
    assert_string_equal(client_line(cl), "<ack seq=\"4\"/>");
    assert_string_equal(client_line(cl), "<ack seq=\"8\"/>");
    assert_string_equal(client_line(cl), "<ack seq=\"10\"/>");
    assert_true(client_has_fin(cl));
    client_free(cl);
    run();
    assert_string_equal(drain_left(), "0/0");
}

static void test_drain_waits_for_the_source_queue(void **state)
{
    (void)state;
    struct client *cl = logged_in(
        "feed-dq", "<login result=\"valid\" source=\"feed-dq\" acked=\"0\"/>");
    fm.hold = true; /* the model's mailbox is full */
    send_events(cl, 1, 5, 2);
    run();
    /* event 1's row went; its elements and events 2..5 wait in order */
    assert_int_equal(fs.n_events, 1);
    ingest_drain();
    run();
    assert_false(client_is_closed(cl));
    assert_string_equal(drain_left(), "1/1");
    /* the model takes elements again: the queue goes out, in order */
    fm.hold = false;
    resume_source("feed-dq");
    run();
    assert_int_equal(fs.n_events, 5);
    assert_int_equal(fm.n, 10);
    assert_int_equal(fm.seq[9], 5);
    assert_false(client_is_closed(cl));
    assert_int_equal(commit("feed-dq", 5, 5), 0);
    run();
    assert_string_equal(client_line(cl), "<ack seq=\"5\"/>");
    assert_true(client_has_fin(cl));
    client_free(cl);
    run();
    assert_string_equal(drain_left(), "0/0");
}

/* Log lines of the actors go to a temporary file while it is open. */
static int log_fd = -1;

static void log_capture(void)
{
    char path[] = "/tmp/sw-ingest-log-XXXXXX";
    log_fd = mkstemp(path);
    assert_true(log_fd >= 0);
    unlink(path);
    actor_log_set_fd(log_fd);
    actor_log_set_level(ACTOR_LOG_INFO);
}

/* Stops capturing; returns what was logged (static, NUL-terminated). */
static const char *log_captured(void)
{
    static char text[1 << 16];
    actor_log_set_fd(2);
    actor_log_set_level(ACTOR_LOG_ERROR);
    ssize_t n = pread(log_fd, text, sizeof(text) - 1, 0);
    assert_true(n >= 0);
    text[n] = '\0';
    close(log_fd);
    log_fd = -1;
    return text;
}

static void test_drain_without_acks_until_the_deadline(void **state)
{
    (void)state;
    struct client *cl = logged_in(
        "feed-dd", "<login result=\"valid\" source=\"feed-dd\" acked=\"0\"/>");
    send_events(cl, 1, 3, 1);
    run();
    log_capture();
    ingest_drain();
    run();
    /* The store commits nothing (it is down): the conn holds on, as
     * long as it takes, and not reading is not the source's silence. */
    for (int i = 0; i < 12; i++) {
        actor_advance_ms(INGEST_HEARTBEAT_MS_DEFAULT);
        run();
    }
    assert_string_equal(client_line(cl), "<ct/>");
    assert_false(client_is_closed(cl));
    assert_int_equal(state_of("feed-dd", "live"), 1);
    assert_string_equal(drain_left(), "1/1");
    /* The caller's deadline passes: it shuts the stage down, and the
     * stage says what was not acked. */
    actor_exit(NULL, sup, &(struct actor_exit){.kind = ACTOR_EXIT_SHUTDOWN});
    run();
    assert_false(actor_is_alive(sup));
    assert_string_equal(drain_left(), "0/0");
    const char *log = log_captured();
    assert_non_null(strstr(log, "msg=\"source stopped with events not acked\" "
                                "source=feed-dd acked=0 last_seq=3"));
    assert_non_null(strstr(log, "source=feed-dd reason=shutdown unacked=3"));
    assert_true(client_is_closed(cl));
    client_free(cl);
}

static void test_drain_peer_that_keeps_sending(void **state)
{
    (void)state;
    struct client *cl = client_tcp();
    assert_string_equal(
        exchange(cl, login_of("feed-dk")),
        "<login result=\"valid\" source=\"feed-dk\" acked=\"0\"/>");
    send_events(cl, 1, 3, 1);
    run();
    ingest_drain();
    run();
    /* the peer sends on until its kernel will take no more: none of it
     * is read */
    size_t sent = 0;
    for (uint64_t seq = 4;; seq++) {
        const char *doc = event_doc(seq, 1);
        if (send(cl->fd, doc, strlen(doc), MSG_NOSIGNAL) < 0) {
            assert_int_equal(errno, EAGAIN);
            break;
        }
        sent += strlen(doc);
    }
    run();
    assert_true(sent > 64 * 1024);
    assert_int_equal(fs.n_events, 3);
    /* Its last ack reaches it, then a FIN: the unread input did not make
     * the close a reset. */
    assert_int_equal(commit("feed-dk", 3, 3), 0);
    run();
    assert_string_equal(client_line(cl), "<ack seq=\"3\"/>");
    assert_true(client_has_fin(cl));
    /* what it still sends is dropped until the linger ends the conn */
    assert_string_equal(drain_left(), "1/0");
    actor_advance_ms(2000);
    run();
    assert_string_equal(drain_left(), "0/0");
    assert_int_equal(fs.n_events, 3);
    client_free(cl);
}

static void test_drain_without_a_session(void **state)
{
    (void)state;
    struct client *idle = client_new(); /* connected, no login yet */
    ingest_drain();
    run();
    assert_true(client_has_fin(idle)); /* nothing to finish */
    /* a connection accepted as the drain began reads nothing */
    struct client *late = client_new();
    assert_true(client_has_fin(late));
    client_send(late, login_of("feed-late"));
    run();
    assert_string_equal(client_line(late), "");
    assert_int_equal(fs.acked_reqs, 0); /* no source was started */
    client_free(late);
    client_free(idle);
    run();
    assert_string_equal(drain_left(), "0/0");
}

/* ---- tokens, rings, outboxes --------------------------------------------- */

static void test_tokens_parse(void **state)
{
    (void)state;
    struct ingest__tokens *t;
    unsigned line;
    const char *why;
    static const char good[] = "# sources\r\n"
                               "feed-1 tok1\r\n"
                               "\t feed-2\t t!k\"2 \n"
                               "\n"
                               "a:b.c_d-e x";
    assert_int_equal(
        ingest__tokens_parse(good, sizeof(good) - 1, &t, &line, &why), 0);
    assert_int_equal(ingest__tokens_count(t), 3);
    assert_true(ingest__tokens_is_valid(t, "feed-1", "tok1"));
    assert_true(ingest__tokens_is_valid(t, "feed-2", "t!k\"2"));
    assert_true(ingest__tokens_is_valid(t, "a:b.c_d-e", "x"));
    assert_false(ingest__tokens_is_valid(t, "feed-1", "tok"));
    assert_false(ingest__tokens_is_valid(t, "feed-1", "tok12"));
    assert_false(ingest__tokens_is_valid(t, "feed-1", ""));
    assert_false(ingest__tokens_is_valid(t, "feed-2", "tok1"));
    assert_false(ingest__tokens_is_valid(t, "feed-3", "tok1"));
    ingest__tokens_free(t);

    struct {
        const char *text;
        unsigned line;
    } bad[] = {
        {"feed-1\n", 1},        {"feed-1 a b\n", 1}, {"ok x\nfeed/1 tok\n", 2},
        {"ok x\n\n ok y\n", 0}, {"ok \x01\n", 1},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(ingest__tokens_parse(bad[i].text, strlen(bad[i].text),
                                              &t, &line, &why),
                         -EINVAL);
        assert_null(t);
        assert_int_equal(line, bad[i].line);
        assert_non_null(why);
    }
    char longtok[300];
    memset(longtok, 'a', sizeof(longtok));
    memcpy(longtok, "s ", 2);
    assert_int_equal(
        ingest__tokens_parse(longtok, sizeof(longtok), &t, &line, &why),
        -EINVAL);
    assert_int_equal(ingest__tokens_parse("", 0, &t, &line, &why), 0);
    assert_int_equal(ingest__tokens_count(t), 0);
    assert_false(ingest__tokens_is_valid(t, "s", "a"));
    ingest__tokens_free(t);
    assert_int_equal(ingest__tokens_load("/nonexistent/tokens", &t), -ENOENT);
}

static void test_bad_tokens_file_fails_start(void **state)
{
    (void)state;
    write_tokens("feed-1\n");
    struct ingest__env e;
    struct ingest_config cfg = {
        .tokens_path = tokens_path, .route = route, .feed = feed};
    assert_int_equal(ingest__env_init(&e, &cfg), -EINVAL);
    cfg.tokens_path = NULL;
    cfg.route = NULL;
    assert_int_equal(ingest__env_init(&e, &cfg), -EINVAL);
    unlink(tokens_path);
    tokens_path[0] = '\0';
}

static void test_ring(void **state)
{
    (void)state;
    struct ingest__ring r;
    ingest__ring_init(&r, sizeof(uint64_t));
    uint64_t next_in = 0, next_out = 0;
    for (int round = 0; round < 200; round++) {
        int push = (int)(trng() % 40), pop = (int)(trng() % 40);
        for (int i = 0; i < push; i++) {
            uint64_t *v = ingest__ring_push(&r);
            assert_non_null(v);
            *v = next_in++;
        }
        for (int i = 0; i < pop && r.len; i++) {
            assert_int_equal(*(uint64_t *)ingest__ring_at(&r, 0), next_out++);
            ingest__ring_pop(&r);
        }
        assert_int_equal(r.len, next_in - next_out);
        if (r.len) {
            assert_int_equal(*(uint64_t *)ingest__ring_at(&r, r.len - 1),
                             next_in - 1);
        }
        assert_null(ingest__ring_at(&r, r.len));
    }
    ingest__ring_release(&r);
}

#define OB_VALUE 0x7002

struct ob_msg {
    struct actor_msg hdr;
    int value;
};

static struct {
    int values[64];
    int n;
    uint64_t tx;
    uint64_t rx;
    int resumes;
    struct ingest__outbox ob;
} ob;

static int ob_rx_handle(struct actor_ctx *ctx, void *state,
                        struct actor_msg *msg)
{
    (void)ctx;
    (void)state;
    ob.values[ob.n++] = ((struct ob_msg *)msg)->value;
    return 0;
}

/* The sender: OB_VALUE sends its value through the outbox. */
static int ob_tx_handle(struct actor_ctx *ctx, void *state,
                        struct actor_msg *msg)
{
    (void)state;
    if (msg->type == ACTOR_MSG_RESUME) {
        ob.resumes++;
        ingest__outbox_flush(ctx, &ob.ob);
        return 0;
    }
    /* a burst of 10, as from one turn */
    for (int i = 0; i < 10; i++) {
        struct ob_msg *m = actor_msg_new(sizeof(*m), OB_VALUE);
        m->value = ((struct ob_msg *)msg)->value + i;
        assert_int_equal(ingest__outbox_send(ctx, &ob.ob, ob.rx, &m->hdr), 0);
    }
    return 0;
}

static void test_outbox(void **state)
{
    (void)state;
    static const struct actor_ops rx_ops = {.name = "rx",
                                            .handle = ob_rx_handle};
    static const struct actor_ops tx_ops = {.name = "tx",
                                            .handle = ob_tx_handle};
    memset(&ob, 0, sizeof(ob));
    ingest__outbox_init(&ob.ob);
    assert_int_equal(
        actor_spawn(&(struct actor_spawn){.ops = &rx_ops, .mailbox = 3},
                    &ob.rx),
        0);
    assert_int_equal(actor_spawn(&(struct actor_spawn){.ops = &tx_ops}, &ob.tx),
                     0);
    run();
    for (int k = 0; k < 3; k++) {
        struct ob_msg *m = actor_msg_new(sizeof(*m), OB_VALUE);
        m->value = 10 * k;
        assert_int_equal(actor_send(NULL, ob.tx, &m->hdr), 0);
    }
    run();
    assert_int_equal(ob.n, 30);
    for (int i = 0; i < 30; i++) {
        assert_int_equal(ob.values[i], i);
    }
    assert_true(ob.resumes > 0);
    assert_true(ingest__outbox_is_empty(&ob.ob));
    /* to an actor that is gone: dropped, freed */
    actor_exit(NULL, ob.rx, &(struct actor_exit){.kind = ACTOR_EXIT_KILLED});
    run();
    struct ob_msg *m = actor_msg_new(sizeof(*m), OB_VALUE);
    assert_int_equal(ingest__outbox_send(NULL, &ob.ob, ob.rx, &m->hdr), 0);
    assert_int_equal(ob.ob.dropped, 1);
    ingest__outbox_release(&ob.ob);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_login_without_tokens, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_unreadable_login_refused, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_unreadable_login_refused_with_tokens, setup_tokens, teardown),
        cmocka_unit_test_setup_teardown(test_login_deadline_with_tokens,
                                        setup_tokens, teardown),
        cmocka_unit_test_setup_teardown(test_login_tokens, setup_tokens,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_no_login_with_tokens, setup_tokens,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_close_is_a_fin, setup_tokens,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_unknown_version, setup, teardown),
        cmocka_unit_test_setup_teardown(test_skip_login, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replacement, setup, teardown),
        cmocka_unit_test_setup_teardown(test_order_through_full_mailboxes,
                                        setup_small_mailboxes, teardown),
        cmocka_unit_test_setup_teardown(test_resent_rejection_is_a_duplicate,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_dedupe_across_reconnects, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_source_end_reports_lost_elements,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_replies, setup_small_docs,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_window, setup_window, teardown),
        cmocka_unit_test_setup_teardown(test_heartbeat_and_silence, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_silent_before_login, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_peer_that_never_reads, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_silent_peer_that_never_reads,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_peer_is_contained,
                                        setup_small_docs, teardown),
        cmocka_unit_test_setup_teardown(test_crash_is_contained, setup_tmem,
                                        teardown_tmem),
        cmocka_unit_test_setup_teardown(test_limits, setup_limits, teardown),
        cmocka_unit_test_setup_teardown(test_drain_finishes_what_was_read,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_drain_frames_what_waits_in_the_buffer, setup_window, teardown),
        cmocka_unit_test_setup_teardown(test_drain_waits_for_the_source_queue,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_drain_without_acks_until_the_deadline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_drain_peer_that_keeps_sending,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_drain_without_a_session, setup,
                                        teardown),
        cmocka_unit_test(test_tokens_parse),
        cmocka_unit_test(test_bad_tokens_file_fails_start),
        cmocka_unit_test(test_ring),
        cmocka_unit_test_setup_teardown(test_outbox, setup, teardown),
    };
    actor_log_set_level(getenv("TEST_DEBUG") ? ACTOR_LOG_DEBUG
                                             : ACTOR_LOG_ERROR);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
