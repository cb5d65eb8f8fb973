/* tests/ingest_mt_test.c - the ingest subtree on real scheduler threads and
 * loopback TCP: good feeds get every event through, in order, and every
 * ack, while hostile peers (junk, a runaway document, a peer that never
 * reads, connect-and-drop) are cut off around them; and a drain started
 * from outside the actors in the middle of it all. Run under TSan. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
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

#define SOURCES    4
#define EVENTS     3000 /* per source */
#define MATCHES    2    /* per event */
#define DEADLINE_S 120  /* a hung run fails; not a speed figure */

/* ---- stand-ins: a store that commits at once, a model that counts -------- */

static _Atomic uint64_t st_events;       /* rows received */
static _Atomic uint64_t st_out_of_order; /* rows not in seq order */
static _Atomic uint64_t st_rejected;
static _Atomic uint64_t md_elements; /* elements routed */
static _Atomic uint64_t md_feeds;
/* the last seq per source (feed-<i>); written by the store only */
static _Atomic uint64_t st_last[SOURCES];

static int st_handle(struct actor_ctx *ctx, void *state, struct actor_msg *msg)
{
    (void)state;
    switch (msg->type) {
    case STORE_MSG_EVENT: {
        struct event *ev = ((struct store_event_msg *)msg)->ev;
        int i = atoi(ev->source + strlen("feed-"));
        assert_true(i >= 0 && i < SOURCES);
        if (ev->seq != atomic_load(&st_last[i]) + 1) {
            atomic_fetch_add(&st_out_of_order, 1);
        }
        atomic_store(&st_last[i], ev->seq);
        atomic_fetch_add(&st_events, 1);
        /* durable at once: the ack goes to the source by name */
        char name[80];
        snprintf(name, sizeof(name), "source:%s", ev->source);
        struct store_ack_msg *a =
            store_ack_msg_new(ev->source, ev->seq, ev->seq);
        actor_send_or_free(ctx, actor_whereis(name), &a->hdr);
        return 0;
    }
    case STORE_MSG_REJECTED:
        atomic_fetch_add(&st_rejected, 1);
        return 0;
    case STORE_MSG_ACKED_REQ: {
        struct store_acked_req_msg *m = (struct store_acked_req_msg *)msg;
        struct store_ack_msg *a = store_ack_msg_new(m->source, 0, 0);
        actor_send_or_free(ctx, m->reply_to, &a->hdr);
        return 0;
    }
    default:
        return -EINVAL;
    }
}

static const struct actor_ops st_ops = {
    .name = "test.store",
    .handle = st_handle,
};

static uint64_t model_pid;

static int md_handle(struct actor_ctx *ctx, void *state, struct actor_msg *msg)
{
    (void)ctx;
    (void)state;
    (void)msg;
    atomic_fetch_add(&md_elements, 1);
    return 0;
}

static const struct actor_ops md_ops = {.name = "test.model",
                                        .handle = md_handle};

static int route(struct actor_ctx *ctx, struct event *ev, uint32_t index)
{
    (void)ev;
    (void)index;
    struct actor_msg *m = actor_msg_new(sizeof(*m), ACTOR_MSG_USER + 7);
    int rc = actor_send(ctx, model_pid, m);
    if (rc != 0) {
        actor_msg_free(m);
    }
    return rc; /* -EAGAIN from a mailbox of 16: RESUME follows */
}

static int feed(struct actor_ctx *ctx, const char *source,
                enum match_feed state, const char *const *ids, size_t n)
{
    (void)ctx;
    (void)source;
    (void)state;
    (void)ids;
    (void)n;
    atomic_fetch_add(&md_feeds, 1);
    return 0;
}

/* ---- clients
 * ------------------------------------------------------------------ */

/* Connects to the feed port; @rcvbuf > 0 shrinks the receive buffer. */
static int connect_feed(int rcvbuf)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (rcvbuf > 0) {
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    }
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)ingest_port())};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    fcntl(fd, F_SETFL, O_NONBLOCK);
    return fd;
}

/* A good feed: its whole stream prepared, written in pieces of random
 * size, acks read as they come. */
struct feed {
    int fd;
    struct actor_buf out; /* everything it will send */
    size_t sent;
    char in[4096];
    size_t in_len;
    uint64_t acked;
    bool logged_in;
    bool may_end; /* the server may close (it drains) */
    bool ended;   /* ... and has: EOF after the last reply */
};

static void feed_start(struct feed *f, int i)
{
    memset(f, 0, sizeof(*f));
    actor_buf_init(&f->out);
    actor_buf_printf(&f->out, "<login source=\"feed-%d\" version=\"1\"/>\r\n",
                     i);
    for (int s = 1; s <= EVENTS; s++) {
        actor_buf_printf(&f->out, "<event seq=\"%d\">", s);
        for (int m = 0; m < MATCHES; m++) {
            actor_buf_printf(&f->out,
                             "<match id=\"f%d-m%d\" msgnr=\"%d\"><score "
                             "home=\"%d\" away=\"0\"/></match>",
                             i, m, s, s);
        }
        actor_buf_str(&f->out, "</event>\r\n");
    }
    assert_int_equal(f->out.err, 0);
    f->fd = connect_feed(0);
}

/* Takes in replies; returns false once the feed has its last ack, or
 * its end when it may end. */
static bool feed_step(struct feed *f)
{
    if (f->ended) {
        return false;
    }
    if (f->sent < f->out.len) {
        size_t n = 1 + trng() % 9000;
        if (n > f->out.len - f->sent) {
            n = f->out.len - f->sent;
        }
        ssize_t w = send(f->fd, f->out.data + f->sent, n, MSG_NOSIGNAL);
        if (w > 0) {
            f->sent += (size_t)w;
        } else if (errno != EAGAIN) {
            assert_true(f->may_end); /* the server has gone: read the rest */
        }
    }
    ssize_t r = recv(f->fd, f->in + f->in_len, sizeof(f->in) - 1 - f->in_len,
                     MSG_DONTWAIT);
    if (r == 0 && f->may_end) {
        f->ended = true; /* a FIN: every reply was read */
        return false;
    }
    if (r == 0 || (r < 0 && errno != EAGAIN)) {
        fail_msg("a good feed was cut off: %s", r ? strerror(errno) : "EOF");
    }
    if (r > 0) {
        f->in_len += (size_t)r;
        f->in[f->in_len] = '\0';
        char *line, *rest = f->in;
        while ((line = strstr(rest, "\r\n"))) {
            *line = '\0';
            unsigned long long seq;
            if (sscanf(rest, "<ack seq=\"%llu\"/>", &seq) == 1) {
                assert_true(seq >= f->acked);
                f->acked = seq;
            } else if (strncmp(rest, "<login result=\"valid\"", 21) == 0) {
                f->logged_in = true;
            } else {
                assert_string_equal(rest, "<ct/>");
            }
            rest = line + 2;
        }
        f->in_len -= (size_t)(rest - f->in);
        memmove(f->in, rest, f->in_len);
    }
    return f->acked < EVENTS;
}

/* ---- the run
 * ------------------------------------------------------------------- */

static void dump_actor(const struct actor_info *info, void *arg)
{
    (void)arg;
    fprintf(stderr, "  actor %s %s mailbox=%u/%u handled=%llu runnable=%d\n",
            info->kind, info->name, info->mailbox, info->capacity,
            (unsigned long long)info->handled, info->runnable);
}

static int64_t mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec;
}

static struct ingest__env env;
static uint64_t store_pid, sup;

/* The runtime on two schedulers, the stand-ins and the ingest subtree. */
static int setup(void **state)
{
    (void)state;
    atomic_store(&st_events, 0);
    atomic_store(&st_out_of_order, 0);
    atomic_store(&st_rejected, 0);
    atomic_store(&md_elements, 0);
    atomic_store(&md_feeds, 0);
    for (int i = 0; i < SOURCES; i++) {
        atomic_store(&st_last[i], 0);
    }
    assert_int_equal(
        actor_runtime_start(&(struct actor_config){.schedulers = 2}), 0);
    assert_int_equal(
        actor_spawn(&(struct actor_spawn){.ops = &st_ops, .name = "store"},
                    &store_pid),
        0);
    assert_int_equal(actor_spawn(&(struct actor_spawn){.ops = &md_ops,
                                                       .name = "model.matches",
                                                       .mailbox = 16},
                                 &model_pid),
                     0);
    /* a short silence limit: a peer stuck at the TCP level (the deaf one
     * can get there) is cut after two of them */
    struct ingest_config cfg = {.bind = "127.0.0.1",
                                .doc_limit = 4096,
                                .silence_ms = 2000,
                                .window = 256,
                                .route = route,
                                .feed = feed};
    assert_int_equal(ingest__env_init(&env, &cfg), 0);
    assert_int_equal(actor_sup_start(&env.sup, 0, &sup), 0);
    for (int i = 0; i < 1000 && !ingest_port(); i++) {
        usleep(2000);
    }
    assert_int_not_equal(ingest_port(), 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    struct actor_exit why;
    actor_exit(NULL, sup, &(struct actor_exit){.kind = ACTOR_EXIT_SHUTDOWN});
    assert_true(actor_wait(sup, 10000, &why));
    assert_int_equal(atomic_load(&ingest__conns_alive), 0);
    assert_int_equal(atomic_load(&ingest__sources_alive), 0);
    assert_int_equal(atomic_load(&ingest__sources_pending), 0);
    actor_exit(NULL, store_pid,
               &(struct actor_exit){.kind = ACTOR_EXIT_KILLED});
    actor_exit(NULL, model_pid,
               &(struct actor_exit){.kind = ACTOR_EXIT_KILLED});
    assert_true(actor_wait(store_pid, 10000, &why));
    assert_true(actor_wait(model_pid, 10000, &why));
    actor_runtime_stop();
    ingest__env_release(&env);
    return 0;
}

static void test_feeds_and_hostile_peers(void **state)
{
    (void)state;

    struct feed feeds[SOURCES];
    for (int i = 0; i < SOURCES; i++) {
        feed_start(&feeds[i], i);
    }
    /* hostile: junk then a runaway; a peer that never reads */
    int junk = connect_feed(0);
    int deaf = connect_feed(4096);
    /* the deaf peer logs in (its documents then pipeline) and sends
     * documents that each earn an <error> it never reads */
    static const char deaf_login[] = "<login source=\"feed-deaf\"/>";
    assert_true(send(deaf, deaf_login, sizeof(deaf_login) - 1, MSG_NOSIGNAL) >
                0);
    char deaf_docs[256 * 8 + 1];
    for (int k = 0; k < 256; k++) {
        memcpy(deaf_docs + 8 * k, "<event/>", 8);
    }
    char chunk[1024];
    memset(chunk, 'x', sizeof(chunk));
    const char *junk_head =
        "junk junk<login source=\"feed-j\"/><event seq=\"1\">";
    assert_true(send(junk, junk_head, strlen(junk_head), MSG_NOSIGNAL) > 0);
    bool junk_open = true, deaf_open = true;
    int drops = 0;

    int64_t deadline = mono_s() + DEADLINE_S;
    for (;;) {
        bool busy = false;
        for (int i = 0; i < SOURCES; i++) {
            busy |= feed_step(&feeds[i]);
        }
        if (junk_open && send(junk, chunk, sizeof(chunk), MSG_NOSIGNAL) < 0 &&
            errno != EAGAIN) {
            junk_open = false; /* cut off: the runaway was seen */
        }
        if (deaf_open && send(deaf, deaf_docs, 256 * 8, MSG_NOSIGNAL) < 0 &&
            errno != EAGAIN) {
            deaf_open = false; /* cut off: too much unread output */
        }
        if (drops < 200) {
            close(connect_feed(0)); /* connect and drop */
            drops++;
        }
        if (!busy && !junk_open && !deaf_open) {
            break;
        }
        if (mono_s() > deadline) {
            actor_foreach(dump_actor, NULL);
            fail_msg("not done after %d s: acks %llu %llu %llu %llu, junk "
                     "open %d, deaf open %d",
                     DEADLINE_S, (unsigned long long)feeds[0].acked,
                     (unsigned long long)feeds[1].acked,
                     (unsigned long long)feeds[2].acked,
                     (unsigned long long)feeds[3].acked, junk_open, deaf_open);
        }
        poll(NULL, 0, 1);
    }

    assert_int_equal(atomic_load(&st_events), SOURCES * EVENTS);
    assert_int_equal(atomic_load(&st_out_of_order), 0);
    /* every element reached the model, through its full mailbox */
    while (atomic_load(&md_elements) < (uint64_t)SOURCES * EVENTS * MATCHES &&
           mono_s() <= deadline) {
        poll(NULL, 0, 1);
    }
    assert_int_equal(atomic_load(&md_elements), SOURCES * EVENTS * MATCHES);
    assert_true(atomic_load(&st_rejected) > 0); /* the deaf peer's */
    for (int i = 0; i < SOURCES; i++) {
        assert_true(feeds[i].logged_in);
        close(feeds[i].fd);
        actor_buf_release(&feeds[i].out);
    }
    close(junk);
    close(deaf);
}

/*
 * Feeds send as fast as they can while the drain starts from this thread
 * (as main's would), and others keep connecting: the drain completes, and
 * what each feed saw acked is what the store got, with nothing after it.
 */
static void test_drain_under_load(void **state)
{
    (void)state;
    struct feed feeds[SOURCES];
    for (int i = 0; i < SOURCES; i++) {
        feed_start(&feeds[i], i);
        feeds[i].may_end = true;
    }
    int64_t deadline = mono_s() + DEADLINE_S;
    while (atomic_load(&st_events) < SOURCES * EVENTS / 4) {
        for (int i = 0; i < SOURCES; i++) {
            feed_step(&feeds[i]);
        }
        assert_true(mono_s() <= deadline);
        poll(NULL, 0, 1);
    }
    unsigned port = ingest_port();
    ingest_drain();
    bool busy = true;
    for (int k = 0; busy || !ingest_drain_is_done(NULL); k++) {
        busy = false;
        for (int i = 0; i < SOURCES; i++) {
            busy |= feed_step(&feeds[i]);
        }
        if (k < 200) {
            /* connect and drop, racing the listener's close */
            int fd = socket(AF_INET, SOCK_STREAM, 0);
            struct sockaddr_in sa = {.sin_family = AF_INET,
                                     .sin_port = htons((uint16_t)port)};
            sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            connect(fd, (struct sockaddr *)&sa, sizeof(sa));
            close(fd);
        }
        if (mono_s() > deadline) {
            actor_foreach(dump_actor, NULL);
            fail_msg("drain not done after %d s", DEADLINE_S);
        }
        poll(NULL, 0, 1);
    }
    assert_int_equal(ingest_port(), 0);
    uint64_t acked = 0;
    for (int i = 0; i < SOURCES; i++) {
        /* every feed was cut mid-stream, after its last ack */
        assert_true(feeds[i].ended);
        assert_true(feeds[i].acked < EVENTS);
        assert_int_equal(feeds[i].acked, atomic_load(&st_last[i]));
        acked += feeds[i].acked;
        close(feeds[i].fd);
        actor_buf_release(&feeds[i].out);
    }
    assert_int_equal(atomic_load(&st_events), acked);
    assert_int_equal(atomic_load(&st_out_of_order), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_feeds_and_hostile_peers, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_drain_under_load, setup, teardown),
    };
    actor_log_set_level(getenv("TEST_DEBUG") ? ACTOR_LOG_DEBUG
                                             : ACTOR_LOG_ERROR);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
