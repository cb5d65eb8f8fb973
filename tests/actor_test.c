/* tests/actor_test.c - the runtime in manual mode: actors, mailboxes,
 * timers, links, monitors, names, fds, logs and metrics, deterministic. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>

#include <cmocka.h>

#include "actor/actor.h"
#include "tests/probe.h"

/* ---- basics ----------------------------------------------------------- */

static void test_spawn_send_handle(void **state)
{
    (void)state;
    uint64_t a = probe_spawn("a", NULL);
    assert_int_equal(probe_send_value(NULL, a, 1), 0);
    assert_int_equal(probe_send_value(NULL, a, 2), 0);
    actor_run_until_idle();
    struct probe_rec *r = probe_rec("a");
    assert_int_equal(r->inits, 1);
    assert_int_equal(r->n_values, 2);
    assert_int_equal(r->values[0], 1);
    assert_int_equal(r->values[1], 2);
    /* every message it was sent was freed after handling */
    assert_int_equal(probe_msgs_alive(), 0);
    struct actor_info info;
    assert_int_equal(actor_info_get(a, &info), 0);
    assert_string_equal(info.kind, "probe");
    assert_string_equal(info.name, "a");
    assert_int_equal(info.handled, 2);
    assert_int_equal(info.mailbox, 0);
    probe_stop(a);
}

static void test_stale_pid(void **state)
{
    (void)state;
    uint64_t a = probe_spawn("a", NULL);
    actor_run_until_idle();
    probe_send_type(NULL, a, PROBE_EXIT_NORMAL);
    actor_run_until_idle();
    assert_false(actor_is_alive(a));
    assert_int_equal(probe_rec("a")->stops, 1);
    assert_int_equal(probe_rec("a")->stop_why.kind, ACTOR_EXIT_NORMAL);
    /* the slot is reused by the next spawn; the old pid stays dead */
    uint64_t b = probe_spawn("b", NULL);
    assert_int_equal(b & 0xffffffffu, a & 0xffffffffu);
    assert_int_not_equal(a, b);
    struct actor_msg *m = probe_value_msg(7);
    assert_int_equal(actor_send(NULL, a, m), -ESRCH);
    actor_msg_free(m);
    assert_int_equal(actor_send_or_free(NULL, a, probe_value_msg(8)), -ESRCH);
    actor_run_until_idle();
    assert_int_equal(probe_rec("b")->n_values, 0);
    assert_int_equal(probe_msgs_alive(), 0);
    probe_stop(b);
}

static void test_undelivered_messages_freed(void **state)
{
    (void)state;
    uint64_t a = probe_spawn("a", NULL);
    actor_run_until_idle();
    probe_send_type(NULL, a, PROBE_CRASH);
    for (int i = 0; i < 10; i++) {
        probe_send_value(NULL, a, i);
    }
    actor_run_until_idle();
    assert_false(actor_is_alive(a));
    assert_int_equal(probe_rec("a")->n_values, 0);
    assert_int_equal(probe_msgs_alive(), 0);
}

static void test_crash_reasons(void **state)
{
    (void)state;
    uint64_t a = probe_spawn("a", NULL);
    uint64_t b = probe_spawn("b", NULL);
    actor_run_until_idle();
    probe_send_type(NULL, a, PROBE_CRASH);
    probe_send_type(NULL, b, PROBE_FAIL);
    actor_run_until_idle();
    struct probe_rec *ra = probe_rec("a"), *rb = probe_rec("b");
    assert_int_equal(ra->stop_why.kind, ACTOR_EXIT_ERROR);
    assert_int_equal(ra->stop_why.err, -EIO);
    assert_int_equal(rb->stop_why.kind, ACTOR_EXIT_ERROR);
    assert_string_equal(rb->stop_why.text, "boom 42");
    struct actor_stats st;
    actor_stats_get(&st);
    assert_true(st.crashed >= 2);
}

static void test_init_failure(void **state)
{
    (void)state;
    struct probe_cfg cfg = {.fail_init = -ENOENT};
    uint64_t a = probe_spawn("a", &cfg);
    uint64_t w = probe_spawn("w", NULL);
    actor_run_until_idle();
    probe_send_pid(NULL, w, PROBE_MONITOR, a);
    actor_run_until_idle();
    assert_false(actor_is_alive(a));
    /* init failed: stop is not owed */
    assert_int_equal(probe_rec("a")->stops, 0);
    probe_stop(w);
}

/* ---- mailboxes and back-pressure -------------------------------------- */

static void test_bounded_mailbox_and_resume(void **state)
{
    (void)state;
    struct probe_cfg small = {.mailbox = 4};
    uint64_t rx = probe_spawn("rx", &small);
    uint64_t tx = probe_spawn("tx", NULL);
    actor_run_until_idle();
    /* tx sends 10 to rx in one turn: 4 fit, the rest is refused */
    probe_send_burst(tx, rx, 10);
    actor_run_until_idle();
    struct probe_rec *t = probe_rec("tx");
    assert_int_equal(t->burst_ok, 4);
    assert_int_equal(t->burst_full, 6);
    /* rx drained, so tx was told to resume: exactly once */
    assert_int_equal(t->resumes, 1);
    assert_int_equal(t->resume_from, rx);
    assert_int_equal(probe_rec("rx")->n_values, 4);
    struct actor_stats st;
    actor_stats_get(&st);
    assert_true(st.full >= 6);
    probe_stop(rx);
    probe_stop(tx);
}

static void test_system_messages_ignore_bound(void **state)
{
    (void)state;
    struct probe_cfg small = {.mailbox = 1};
    uint64_t rx = probe_spawn("rx", &small);
    uint64_t w = probe_spawn("w", NULL);
    actor_run_until_idle();
    assert_int_equal(probe_send_value(NULL, rx, 1), 0);
    struct actor_msg *m = probe_value_msg(2);
    assert_int_equal(actor_send(NULL, rx, m), -EAGAIN);
    actor_msg_free(m);
    /* a monitor and an exit signal still get through a full mailbox */
    probe_send_pid(NULL, w, PROBE_MONITOR, rx);
    actor_run_until_idle();
    struct actor_exit why = {.kind = ACTOR_EXIT_SHUTDOWN};
    assert_int_equal(actor_exit(NULL, rx, &why), 0);
    actor_run_until_idle();
    assert_false(actor_is_alive(rx));
    assert_int_equal(probe_rec("w")->downs, 1);
    assert_int_equal(probe_rec("w")->down_why.kind, ACTOR_EXIT_SHUTDOWN);
    probe_stop(w);
}

static void test_unbounded_send_passes_a_full_mailbox(void **state)
{
    (void)state;
    struct probe_cfg small = {.mailbox = 1};
    uint64_t rx = probe_spawn("rx", &small);
    actor_run_until_idle();
    assert_int_equal(probe_send_value(NULL, rx, 1), 0);
    struct actor_msg *m = probe_value_msg(2);
    assert_int_equal(actor_send(NULL, rx, m), -EAGAIN);
    assert_int_equal(actor_send_unbounded(NULL, rx, m), 0);
    actor_run_until_idle();
    struct probe_rec *r = probe_rec("rx");
    assert_int_equal(r->n_values, 2);
    assert_int_equal(r->values[1], 2);
    /* The bound holds again for ordinary sends once it is drained. */
    assert_int_equal(probe_send_value(NULL, rx, 3), 0);
    m = probe_value_msg(4);
    assert_int_equal(actor_send(NULL, rx, m), -EAGAIN);
    actor_msg_free(m);
    probe_stop(rx);
    m = probe_value_msg(5);
    assert_int_equal(actor_send_unbounded(NULL, rx, m), -ESRCH);
    actor_msg_free(m);
}

static void test_fair_batches(void **state)
{
    (void)state;
    uint64_t a = probe_spawn("a", NULL);
    uint64_t b = probe_spawn("b", NULL);
    actor_run_until_idle();
    for (int i = 0; i < 200; i++) {
        probe_send_value(NULL, a, i);
    }
    probe_send_value(NULL, b, 1000);
    /* b's one message is handled before a's 200 are: a yields per batch */
    unsigned turns = 0;
    while (probe_rec("b")->n_values == 0 && turns < 10) {
        actor_run_until_idle();
        turns++;
    }
    assert_int_equal(probe_rec("b")->n_values, 1);
    assert_true(probe_rec("b")->order < probe_rec("a")->order_last);
    probe_stop(a);
    probe_stop(b);
}

/* ---- timers ----------------------------------------------------------- */

static void test_timer_fires_and_cancels(void **state)
{
    (void)state;
    uint64_t a = probe_spawn("a", NULL);
    actor_run_until_idle();
    probe_send_timer(a, 100, 11); /* value 11 after 100 ms */
    probe_send_timer(a, 50, 12);
    actor_run_until_idle();
    struct probe_rec *r = probe_rec("a");
    assert_int_equal(r->n_values, 0);
    actor_advance_ms(49);
    actor_run_until_idle();
    assert_int_equal(r->n_values, 0);
    actor_advance_ms(1);
    actor_run_until_idle();
    assert_int_equal(r->n_values, 1);
    assert_int_equal(r->values[0], 12);
    /* cancel the 100 ms one before it fires */
    probe_send_type(NULL, a, PROBE_CANCEL_FIRST);
    actor_run_until_idle();
    assert_true(r->cancel_result);
    actor_advance_ms(1000);
    actor_run_until_idle();
    assert_int_equal(r->n_values, 1);
    probe_stop(a);
}

static void test_timer_cancel_after_fire(void **state)
{
    (void)state;
    uint64_t a = probe_spawn("a", NULL);
    actor_run_until_idle();
    probe_send_timer(a, 10, 5);
    actor_run_until_idle();
    /* fire it (the message is now queued), then cancel before handling */
    actor_advance_ms(10);
    probe_send_type(NULL, a, PROBE_CANCEL_FIRST);
    actor_run_until_idle();
    struct probe_rec *r = probe_rec("a");
    /* the cancel was queued first, the fired timer's message behind it:
     * cancel says "already fired", and the queued message is dropped */
    assert_false(r->cancel_result);
    assert_int_equal(r->cancels, 1);
    assert_int_equal(r->n_values, 0);
    assert_int_equal(probe_msgs_alive(), 0);
    probe_stop(a);
}

static void test_timers_released_on_exit(void **state)
{
    (void)state;
    uint64_t a = probe_spawn("a", NULL);
    actor_run_until_idle();
    probe_send_timer(a, 1000, 1);
    actor_run_until_idle();
    probe_send_type(NULL, a, PROBE_EXIT_NORMAL);
    actor_run_until_idle();
    actor_advance_ms(2000);
    actor_run_until_idle();
    /* the timer's message was freed with its actor, never sent */
    assert_int_equal(probe_msgs_alive(), 0);
}

/* ---- links, monitors, exits ------------------------------------------- */

static void test_link_propagates_crash(void **state)
{
    (void)state;
    uint64_t a = probe_spawn("a", NULL);
    uint64_t b = probe_spawn("b", NULL);
    actor_run_until_idle();
    probe_send_pid(NULL, a, PROBE_LINK, b);
    actor_run_until_idle();
    probe_send_type(NULL, b, PROBE_CRASH);
    actor_run_until_idle();
    assert_false(actor_is_alive(a));
    assert_false(actor_is_alive(b));
    /* a dies with b's reason */
    assert_int_equal(probe_rec("a")->stop_why.kind, ACTOR_EXIT_ERROR);
    assert_int_equal(probe_rec("a")->stop_why.err, -EIO);
}

static void test_link_normal_exit_ignored(void **state)
{
    (void)state;
    uint64_t a = probe_spawn("a", NULL);
    uint64_t b = probe_spawn("b", NULL);
    actor_run_until_idle();
    probe_send_pid(NULL, a, PROBE_LINK, b);
    actor_run_until_idle();
    probe_send_type(NULL, b, PROBE_EXIT_NORMAL);
    actor_run_until_idle();
    assert_true(actor_is_alive(a));
    probe_stop(a);
}

static void test_trap_exit(void **state)
{
    (void)state;
    struct probe_cfg trap = {.trap = true};
    uint64_t a = probe_spawn("a", &trap);
    uint64_t b = probe_spawn("b", NULL);
    uint64_t c = probe_spawn("c", NULL);
    actor_run_until_idle();
    probe_send_pid(NULL, a, PROBE_LINK, b);
    probe_send_pid(NULL, a, PROBE_LINK, c);
    actor_run_until_idle();
    probe_send_type(NULL, b, PROBE_CRASH);
    probe_send_type(NULL, c, PROBE_EXIT_NORMAL);
    actor_run_until_idle();
    struct probe_rec *r = probe_rec("a");
    assert_true(actor_is_alive(a));
    assert_int_equal(r->exits, 2); /* normal ones too, when trapping */
    assert_int_equal(r->exit_kinds[0] + r->exit_kinds[1],
                     ACTOR_EXIT_ERROR + ACTOR_EXIT_NORMAL);
    probe_stop(a);
}

static void test_kill_cannot_be_trapped(void **state)
{
    (void)state;
    struct probe_cfg trap = {.trap = true};
    uint64_t a = probe_spawn("a", &trap);
    actor_run_until_idle();
    struct actor_exit kill = {.kind = ACTOR_EXIT_KILLED};
    assert_int_equal(actor_exit(NULL, a, &kill), 0);
    actor_run_until_idle();
    assert_false(actor_is_alive(a));
    assert_int_equal(probe_rec("a")->stop_why.kind, ACTOR_EXIT_KILLED);
    /* a trapped shutdown is only a message (this one ignores it) */
    struct probe_cfg stubborn = {.trap = true, .ignore_shutdown = true};
    uint64_t b = probe_spawn("b", &stubborn);
    actor_run_until_idle();
    struct actor_exit sd = {.kind = ACTOR_EXIT_SHUTDOWN};
    actor_exit(NULL, b, &sd);
    actor_run_until_idle();
    assert_true(actor_is_alive(b));
    assert_int_equal(probe_rec("b")->exits, 1);
    actor_exit(NULL, b, &kill);
    actor_run_until_idle();
    assert_false(actor_is_alive(b));
}

static void test_unlink(void **state)
{
    (void)state;
    uint64_t a = probe_spawn("a", NULL);
    uint64_t b = probe_spawn("b", NULL);
    actor_run_until_idle();
    probe_send_pid(NULL, a, PROBE_LINK, b);
    actor_run_until_idle();
    probe_send_pid(NULL, a, PROBE_UNLINK, b);
    actor_run_until_idle();
    probe_send_type(NULL, b, PROBE_CRASH);
    actor_run_until_idle();
    assert_true(actor_is_alive(a));
    probe_stop(a);
}

static void test_link_to_dead_pid(void **state)
{
    (void)state;
    struct probe_cfg trap = {.trap = true};
    uint64_t a = probe_spawn("a", &trap);
    uint64_t b = probe_spawn("b", NULL);
    actor_run_until_idle();
    probe_send_type(NULL, b, PROBE_EXIT_NORMAL);
    actor_run_until_idle();
    probe_send_pid(NULL, a, PROBE_LINK, b);
    actor_run_until_idle();
    struct probe_rec *r = probe_rec("a");
    assert_int_equal(r->exits, 1);
    assert_int_equal(r->exit_kinds[0], ACTOR_EXIT_NOPROC);
    /* without trapping, noproc kills */
    uint64_t c = probe_spawn("c", NULL);
    actor_run_until_idle();
    probe_send_pid(NULL, c, PROBE_LINK, b);
    actor_run_until_idle();
    assert_false(actor_is_alive(c));
    assert_int_equal(probe_rec("c")->stop_why.kind, ACTOR_EXIT_NOPROC);
    probe_stop(a);
}

static void test_monitor_down(void **state)
{
    (void)state;
    uint64_t w = probe_spawn("w", NULL);
    uint64_t t = probe_spawn("t", NULL);
    actor_run_until_idle();
    probe_send_pid(NULL, w, PROBE_MONITOR, t);
    actor_run_until_idle();
    probe_send_type(NULL, t, PROBE_FAIL);
    actor_run_until_idle();
    struct probe_rec *r = probe_rec("w");
    assert_true(actor_is_alive(w)); /* monitors never kill */
    assert_int_equal(r->downs, 1);
    assert_int_equal(r->down_pid, t);
    assert_int_equal(r->down_ref, r->monitor_ref);
    assert_int_equal(r->down_why.kind, ACTOR_EXIT_ERROR);
    assert_string_equal(r->down_why.text, "boom 42");
    /* monitoring a dead pid: DOWN noproc at once */
    probe_send_pid(NULL, w, PROBE_MONITOR, t);
    actor_run_until_idle();
    assert_int_equal(r->downs, 2);
    assert_int_equal(r->down_why.kind, ACTOR_EXIT_NOPROC);
    probe_stop(w);
}

static void test_demonitor(void **state)
{
    (void)state;
    uint64_t w = probe_spawn("w", NULL);
    uint64_t t = probe_spawn("t", NULL);
    actor_run_until_idle();
    probe_send_pid(NULL, w, PROBE_MONITOR, t);
    actor_run_until_idle();
    probe_send_type(NULL, w, PROBE_DEMONITOR);
    actor_run_until_idle();
    probe_send_type(NULL, t, PROBE_CRASH);
    actor_run_until_idle();
    assert_int_equal(probe_rec("w")->downs, 0);
    probe_stop(w);
}

static void test_demonitor_with_down_queued(void **state)
{
    (void)state;
    uint64_t w = probe_spawn("w", NULL);
    uint64_t t = probe_spawn("t", NULL);
    actor_run_until_idle();
    probe_send_pid(NULL, w, PROBE_MONITOR, t);
    actor_run_until_idle();
    /* t dies (DOWN queued at w), then w demonitors before handling it */
    probe_send_type(NULL, t, PROBE_CRASH);
    actor_run_until_idle();
    probe_rec("w")->downs = 0;
    uint64_t t2 = probe_spawn("t2", NULL);
    actor_run_until_idle();
    probe_send_pid(NULL, w, PROBE_MONITOR, t2);
    probe_send_type(NULL, t2, PROBE_CRASH);
    probe_send_type(NULL, w, PROBE_DEMONITOR);
    actor_run_until_idle();
    assert_int_equal(probe_rec("w")->downs, 0);
    probe_stop(w);
}

/* ---- names ------------------------------------------------------------ */

static void test_registry(void **state)
{
    (void)state;
    uint64_t a = probe_spawn("a", NULL);
    assert_int_equal(actor_whereis("a"), a);
    assert_int_equal(actor_whereis("nope"), 0);
    uint64_t holder = 0;
    struct probe_cfg cfg = {0};
    assert_int_equal(probe_spawn_rc("a", &cfg, &holder), -EEXIST);
    assert_int_equal(holder, a);
    actor_run_until_idle();
    probe_send_type(NULL, a, PROBE_EXIT_NORMAL);
    actor_run_until_idle();
    /* the name went with its actor */
    assert_int_equal(actor_whereis("a"), 0);
    uint64_t b = probe_spawn("a", NULL);
    assert_int_equal(actor_whereis("a"), b);
    probe_stop(b);
}

/* unregister/1: the name goes, the pid stays good; actor_queued() counts
 * what waits behind the message being handled. */
static void test_unregister_and_queued(void **state)
{
    (void)state;
    uint64_t a = probe_spawn("a", NULL);
    actor_run_until_idle();
    probe_send_type(NULL, a, PROBE_UNREGISTER);
    probe_send_value(NULL, a, 1);
    probe_send_value(NULL, a, 2);
    actor_run_until_idle();
    struct probe_rec *r = probe_rec("a");
    assert_int_equal(r->queued, 2);
    assert_int_equal(r->unregister_rc, 0);
    assert_int_equal(actor_whereis("a"), 0);
    assert_true(actor_is_alive(a));
    assert_int_equal(r->n_values, 2);
    struct actor_info info;
    assert_int_equal(actor_info_get(a, &info), 0);
    assert_string_equal(info.name, "");
    /* the name is free for another; a second unregister has none */
    uint64_t b = probe_spawn("a", &(struct probe_cfg){.rec = "b"});
    assert_int_equal(actor_whereis("a"), b);
    probe_send_type(NULL, a, PROBE_UNREGISTER);
    actor_run_until_idle();
    assert_int_equal(r->queued, 0);
    assert_int_equal(r->unregister_rc, -ENOENT);
    assert_int_equal(actor_whereis("a"), b);
    probe_stop(a);
    probe_stop(b);
    assert_int_equal(actor_whereis("a"), 0);
}

/* ---- fds -------------------------------------------------------------- */

static void test_io_watch(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv),
                     0);
    uint64_t a = probe_spawn("a", NULL);
    actor_run_until_idle();
    probe_send_fd(a, sv[0]);
    actor_run_until_idle();
    struct probe_rec *r = probe_rec("a");
    assert_int_equal(r->io_events, 0);
    assert_int_equal(write(sv[1], "hello", 5), 5);
    actor_run_until_idle();
    assert_int_equal(r->io_events, 1);
    assert_int_equal(r->io_bytes, 5);
    /* one-shot until rearmed: the probe rearms after reading */
    assert_int_equal(write(sv[1], "!", 1), 1);
    actor_run_until_idle();
    assert_int_equal(r->io_events, 2);
    assert_int_equal(r->io_bytes, 6);
    probe_send_type(NULL, a, PROBE_UNWATCH);
    actor_run_until_idle();
    assert_int_equal(write(sv[1], "x", 1), 1);
    actor_run_until_idle();
    assert_int_equal(r->io_events, 2);
    probe_stop(a);
    close(sv[0]);
    close(sv[1]);
}

/* ---- logs and metrics ------------------------------------------------- */

static char *read_all(int fd)
{
    static char buf[65536];
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    buf[n > 0 ? n : 0] = '\0';
    return buf;
}

static void test_log_formats(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(pipe2(p, O_NONBLOCK), 0);
    actor_log_set_fd(p[1]);
    actor_log(NULL, ACTOR_LOG_WARN, "document rejected", "source", "feed eu",
              "reason", "too_large", NULL);
    char *out = read_all(p[0]);
    assert_non_null(strstr(out, " level=warn actor=main "
                                "msg=\"document rejected\" "
                                "source=\"feed eu\" reason=too_large\n"));
    assert_true(strncmp(out, "ts=", 3) == 0);
    actor_log_set_format(ACTOR_LOG_JSON);
    actor_log(NULL, ACTOR_LOG_ERROR, "x\"y", "k", "v\n", NULL);
    out = read_all(p[0]);
    assert_non_null(strstr(out, "\"level\":\"error\",\"actor\":\"main\","
                                "\"msg\":\"x\\\"y\",\"k\":\"v\\n\"}\n"));
    /* below the level: nothing */
    actor_log_set_format(ACTOR_LOG_LOGFMT);
    actor_log_set_level(ACTOR_LOG_WARN);
    actor_log(NULL, ACTOR_LOG_INFO, "quiet", NULL);
    out = read_all(p[0]);
    assert_string_equal(out, "");
    enum actor_log_level lv;
    assert_int_equal(actor_log_parse_level("debug", &lv), 0);
    assert_int_equal(lv, ACTOR_LOG_DEBUG);
    assert_int_equal(actor_log_parse_level("loud", &lv), -EINVAL);
    actor_log_set_level(ACTOR_LOG_INFO);
    actor_log_set_fd(2);
    close(p[0]);
    close(p[1]);
}

static void test_log_rate_limit(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(pipe2(p, O_NONBLOCK), 0);
    actor_log_set_fd(p[1]);
    struct actor_log_limit lim = {0};
    for (int i = 0; i < 50; i++) {
        actor_log_limited(&lim, NULL, ACTOR_LOG_WARN, "flood", NULL);
    }
    char *out = read_all(p[0]);
    int lines = 0;
    for (char *c = out; *c; c++) {
        lines += *c == '\n';
    }
    assert_int_equal(lines, ACTOR_LOG_BURST);
    assert_int_equal(lim.dropped, 50 - ACTOR_LOG_BURST);
    /* next window: the first line says how many were suppressed */
    lim.window = 0;
    actor_log_limited(&lim, NULL, ACTOR_LOG_WARN, "flood", NULL);
    out = read_all(p[0]);
    assert_non_null(strstr(out, "suppressed=40"));
    actor_log_set_fd(2);
    close(p[0]);
    close(p[1]);
}

static double gauge_fn(void *arg)
{
    return *(double *)arg;
}

static void test_metrics_render(void **state)
{
    (void)state;
    struct actor_metric *c = actor_metric_counter("t_docs_total", "Documents.",
                                                  "reason=\"too_large\"");
    struct actor_metric *c2 =
        actor_metric_counter("t_docs_total", "Documents.", NULL);
    assert_non_null(c);
    assert_ptr_equal(
        c, actor_metric_counter("t_docs_total", "x", "reason=\"too_large\""));
    /* one name, one type */
    assert_null(actor_metric_gauge("t_docs_total", "x", NULL));
    actor_metric_add(c, 3);
    actor_metric_add(c2, 1);
    struct actor_metric *g = actor_metric_gauge("t_backlog", "Rows.", NULL);
    actor_metric_set(g, -5);
    double bounds[] = {0.01, 0.1, 10, 2000};
    struct actor_metric *h =
        actor_metric_histogram("t_latency_seconds", "Lat.", NULL, bounds, 4);
    actor_metric_observe(h, 0.005);
    actor_metric_observe(h, 0.05);
    actor_metric_observe(h, 5);
    double gv = 2.5;
    assert_int_equal(actor_metric_gauge_fn("t_fn", "Fn.", NULL, gauge_fn, &gv),
                     0);
    char label[64];
    assert_int_equal(
        actor_metric_label(label, sizeof(label), "source", "a\"b\\c"), 0);
    assert_string_equal(label, "source=\"a\\\"b\\\\c\"");
    assert_int_equal(actor_metric_label(label, 4, "k", "long"), -ENOSPC);

    struct actor_buf b;
    actor_buf_init(&b);
    assert_int_equal(actor_metric_render(&b), 0);
    assert_non_null(strstr(b.data, "# HELP t_docs_total Documents.\n"
                                   "# TYPE t_docs_total counter\n"
                                   "t_docs_total{reason=\"too_large\"} 3\n"
                                   "t_docs_total 1\n"));
    assert_non_null(strstr(b.data, "t_backlog -5\n"));
    assert_non_null(strstr(b.data,
                           "t_latency_seconds_bucket{le=\"0.01\"} 1\n"
                           "t_latency_seconds_bucket{le=\"0.1\"} 2\n"
                           "t_latency_seconds_bucket{le=\"10\"} 3\n"
                           "t_latency_seconds_bucket{le=\"2000\"} 3\n"
                           "t_latency_seconds_bucket{le=\"+Inf\"} 3\n"));
    assert_non_null(strstr(b.data, "t_latency_seconds_count 3\n"));
    assert_non_null(strstr(b.data, "t_fn 2.5\n"));
    actor_buf_release(&b);
}

static void test_buf(void **state)
{
    (void)state;
    struct actor_buf b;
    actor_buf_init(&b);
    actor_buf_str(&b, "a");
    actor_buf_printf(&b, "%d-%s", 42, "x");
    actor_buf_char(&b, '!');
    const char raw[] = {'q', '"', '\\', '\n', 0x01, 'z'};
    actor_buf_json_str(&b, raw, sizeof(raw));
    assert_string_equal(b.data, "a42-x!\"q\\\"\\\\\\n\\u0001z\"");
    for (int i = 0; i < 1000; i++) {
        actor_buf_printf(&b, "%d", i);
    }
    assert_int_equal(b.err, 0);
    size_t len;
    char *taken = actor_buf_take(&b, &len);
    assert_int_equal(strlen(taken), len);
    assert_null(b.data);
    free(taken);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_spawn_send_handle, probe_setup,
                                        probe_teardown),
        cmocka_unit_test_setup_teardown(test_stale_pid, probe_setup,
                                        probe_teardown),
        cmocka_unit_test_setup_teardown(test_undelivered_messages_freed,
                                        probe_setup, probe_teardown),
        cmocka_unit_test_setup_teardown(test_crash_reasons, probe_setup,
                                        probe_teardown),
        cmocka_unit_test_setup_teardown(test_init_failure, probe_setup,
                                        probe_teardown),
        cmocka_unit_test_setup_teardown(test_bounded_mailbox_and_resume,
                                        probe_setup, probe_teardown),
        cmocka_unit_test_setup_teardown(
            test_unbounded_send_passes_a_full_mailbox, probe_setup,
            probe_teardown),
        cmocka_unit_test_setup_teardown(test_system_messages_ignore_bound,
                                        probe_setup, probe_teardown),
        cmocka_unit_test_setup_teardown(test_fair_batches, probe_setup,
                                        probe_teardown),
        cmocka_unit_test_setup_teardown(test_timer_fires_and_cancels,
                                        probe_setup, probe_teardown),
        cmocka_unit_test_setup_teardown(test_timer_cancel_after_fire,
                                        probe_setup, probe_teardown),
        cmocka_unit_test_setup_teardown(test_timers_released_on_exit,
                                        probe_setup, probe_teardown),
        cmocka_unit_test_setup_teardown(test_link_propagates_crash, probe_setup,
                                        probe_teardown),
        cmocka_unit_test_setup_teardown(test_link_normal_exit_ignored,
                                        probe_setup, probe_teardown),
        cmocka_unit_test_setup_teardown(test_trap_exit, probe_setup,
                                        probe_teardown),
        cmocka_unit_test_setup_teardown(test_kill_cannot_be_trapped,
                                        probe_setup, probe_teardown),
        cmocka_unit_test_setup_teardown(test_unlink, probe_setup,
                                        probe_teardown),
        cmocka_unit_test_setup_teardown(test_link_to_dead_pid, probe_setup,
                                        probe_teardown),
        cmocka_unit_test_setup_teardown(test_monitor_down, probe_setup,
                                        probe_teardown),
        cmocka_unit_test_setup_teardown(test_demonitor, probe_setup,
                                        probe_teardown),
        cmocka_unit_test_setup_teardown(test_demonitor_with_down_queued,
                                        probe_setup, probe_teardown),
        cmocka_unit_test_setup_teardown(test_unregister_and_queued, probe_setup,
                                        probe_teardown),
        cmocka_unit_test_setup_teardown(test_registry, probe_setup,
                                        probe_teardown),
        cmocka_unit_test_setup_teardown(test_io_watch, probe_setup,
                                        probe_teardown),
        cmocka_unit_test_setup_teardown(test_log_formats, probe_setup,
                                        probe_teardown),
        cmocka_unit_test_setup_teardown(test_log_rate_limit, probe_setup,
                                        probe_teardown),
        cmocka_unit_test_setup_teardown(test_metrics_render, probe_setup,
                                        probe_teardown),
        cmocka_unit_test_setup_teardown(test_buf, probe_setup, probe_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
