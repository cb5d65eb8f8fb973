/* tests/probe.c - the probe actor used by the runtime's tests. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "tests/probe.h"

#define MAX_RECS 64

static struct probe_rec recs[MAX_RECS];
static int n_recs;
static _Atomic long msgs_alive;
static long order_seq;
static pthread_mutex_t rec_lock = PTHREAD_MUTEX_INITIALIZER;

void probe_reset(void)
{
    memset(recs, 0, sizeof(recs));
    n_recs = 0;
    atomic_store(&msgs_alive, 0);
    order_seq = 0;
}

struct probe_rec *probe_rec(const char *name)
{
    pthread_mutex_lock(&rec_lock);
    struct probe_rec *r = NULL;
    for (int i = 0; i < n_recs; i++) {
        if (strcmp(recs[i].name, name) == 0) {
            r = &recs[i];
            goto out;
        }
    }
    if (n_recs < MAX_RECS) {
        r = &recs[n_recs++];
        snprintf(r->name, sizeof(r->name), "%s", name);
        r->fd = -1;
    }
out:
    pthread_mutex_unlock(&rec_lock);
    return r;
}

long probe_msgs_alive(void)
{
    return atomic_load(&msgs_alive);
}

static void probe_msg_free(struct actor_msg *msg)
{
    atomic_fetch_sub(&msgs_alive, 1);
    free(msg);
}

static struct probe_msg *msg_new(int type)
{
    struct probe_msg *m = actor_msg_new(sizeof(*m), (uint32_t)type);
    if (!m) {
        abort();
    }
    m->hdr.free = probe_msg_free;
    atomic_fetch_add(&msgs_alive, 1);
    return m;
}

struct actor_msg *probe_value_msg(int value)
{
    struct probe_msg *m = msg_new(PROBE_VALUE);
    m->value = value;
    return &m->hdr;
}

struct state {
    struct probe_rec *rec;
    const struct probe_cfg *cfg;
};

static int init_locked(struct actor_ctx *ctx, void *arg, void **out)
{
    const struct probe_cfg *cfg = arg;
    struct state *s = calloc(1, sizeof(*s));
    if (!s) {
        return -ENOMEM;
    }
    const char *name = cfg && cfg->rec ? cfg->rec : actor_name(ctx);
    s->rec = probe_rec(name ? name : "anon");
    s->cfg = cfg;
    s->rec->inits++;
    s->rec->init_order = ++order_seq;
    s->rec->pid = actor_self(ctx);
    if (cfg && cfg->fail_init) {
        free(s);
        return cfg->fail_init;
    }
    if (cfg && cfg->trap) {
        actor_trap_exit(ctx, true);
    }
    *out = s;
    return cfg && cfg->defer ? ACTOR_DEFER : 0;
}

static void on_value(struct state *s, int value)
{
    struct probe_rec *r = s->rec;
    long o = ++order_seq;
    if (r->n_values == 0) {
        r->order = o;
    }
    r->order_last = o;
    if (r->n_values < PROBE_MAX_VALUES) {
        r->values[r->n_values] = value;
    }
    r->n_values++;
}

static int on_io(struct actor_ctx *ctx, struct state *s,
                 struct actor_io_msg *io)
{
    char buf[4096];
    ssize_t n;
    s->rec->io_events++;
    while ((n = read(io->fd, buf, sizeof(buf))) > 0) {
        s->rec->io_bytes += n;
    }
    return actor_io_rearm(ctx, io->watch, EPOLLIN);
}

static int handle_locked(struct actor_ctx *ctx, void *state,
                         struct actor_msg *msg)
{
    struct state *s = state;
    struct probe_msg *m = (struct probe_msg *)msg;
    struct probe_rec *r = s->rec;
    switch (msg->type) {
    case PROBE_VALUE:
        on_value(s, m->value);
        return 0;
    case PROBE_CRASH:
        return -EIO;
    case PROBE_FAIL:
        return actor_fail(ctx, "boom %d", 42);
    case PROBE_EXIT_NORMAL:
        actor_exit_self(ctx, ACTOR_EXIT_NORMAL);
        return 0;
    case PROBE_LINK:
        return actor_link(ctx, m->pid);
    case PROBE_UNLINK:
        return actor_unlink(ctx, m->pid);
    case PROBE_MONITOR:
        r->monitor_ref = actor_monitor(ctx, m->pid);
        return r->monitor_ref ? 0 : -ENOMEM;
    case PROBE_DEMONITOR:
        actor_demonitor(ctx, r->monitor_ref);
        return 0;
    case PROBE_TIMER: {
        uint64_t id = actor_send_after(ctx, m->ms, probe_value_msg(m->value));
        if (!r->first_timer) {
            r->first_timer = id;
        }
        return id ? 0 : -ENOMEM;
    }
    case PROBE_CANCEL_FIRST:
        r->cancels++;
        r->cancel_result = actor_cancel_timer(ctx, r->first_timer);
        return 0;
    case PROBE_BURST:
        for (int i = 0; i < m->count; i++) {
            struct actor_msg *v = probe_value_msg(i);
            if (actor_send(ctx, m->pid, v) == 0) {
                r->burst_ok++;
            } else {
                r->burst_full++;
                actor_msg_free(v);
            }
        }
        return 0;
    case PROBE_FD:
        r->fd = m->fd;
        r->watch = actor_io_watch(ctx, m->fd, EPOLLIN);
        return r->watch ? 0 : -errno;
    case PROBE_UNWATCH:
        actor_io_unwatch(ctx, r->watch);
        return 0;
    case PROBE_INIT_DONE:
        actor_init_done(ctx);
        return 0;
    case PROBE_UNREGISTER:
        r->queued = actor_queued(ctx);
        r->unregister_rc = actor_unregister(ctx);
        return 0;
    case PROBE_ECHO: {
        struct actor_msg *v = probe_value_msg(m->value);
        actor_send_or_free(ctx, m->pid, v);
        return 0;
    }
    case ACTOR_MSG_IO:
        return on_io(ctx, s, (struct actor_io_msg *)msg);
    case ACTOR_MSG_RESUME:
        r->resumes++;
        r->resume_from = msg->from;
        return 0;
    case ACTOR_MSG_DOWN: {
        struct actor_down_msg *d = (struct actor_down_msg *)msg;
        r->downs++;
        r->down_pid = d->pid;
        r->down_ref = d->ref;
        r->down_why = d->why;
        return 0;
    }
    case ACTOR_MSG_EXIT: {
        struct actor_exit_msg *e = (struct actor_exit_msg *)msg;
        if (r->exits < 16) {
            r->exit_kinds[r->exits] = e->why.kind;
            r->exit_pids[r->exits] = e->pid;
        }
        r->exits++;
        if (s->cfg && s->cfg->ignore_shutdown) {
            return 0;
        }
        /* A trapping worker still ends when its supervisor says so. */
        if (e->why.kind == ACTOR_EXIT_SHUTDOWN) {
            actor_exit_self(ctx, ACTOR_EXIT_SHUTDOWN);
        }
        return 0;
    }
    default:
        return -EINVAL;
    }
}

/* Records are shared with the test's own thread: every probe runs under
 * one lock, and tests read through probe_read(). */
static pthread_mutex_t run_lock = PTHREAD_MUTEX_INITIALIZER;

static int probe_init(struct actor_ctx *ctx, void *arg, void **out)
{
    pthread_mutex_lock(&run_lock);
    int rc = init_locked(ctx, arg, out);
    pthread_mutex_unlock(&run_lock);
    return rc;
}

static int probe_handle(struct actor_ctx *ctx, void *state,
                        struct actor_msg *msg)
{
    pthread_mutex_lock(&run_lock);
    int rc = handle_locked(ctx, state, msg);
    pthread_mutex_unlock(&run_lock);
    return rc;
}

static void probe_stop_cb(struct actor_ctx *ctx, void *state,
                          const struct actor_exit *why)
{
    (void)ctx;
    struct state *s = state;
    pthread_mutex_lock(&run_lock);
    s->rec->stops++;
    s->rec->stop_order = ++order_seq;
    s->rec->stop_why = *why;
    pthread_mutex_unlock(&run_lock);
    free(s);
}

long probe_read(const void *field, size_t size)
{
    long v = 0;
    pthread_mutex_lock(&run_lock);
    if (size == sizeof(int)) {
        v = *(const int *)field;
    } else if (size == sizeof(long)) {
        v = *(const long *)field;
    }
    pthread_mutex_unlock(&run_lock);
    return v;
}

const struct actor_ops probe_ops = {
    .name = "probe",
    .init = probe_init,
    .handle = probe_handle,
    .stop = probe_stop_cb,
};

int probe_spawn_rc(const char *name, const struct probe_cfg *cfg, uint64_t *pid)
{
    struct actor_spawn how = {
        .ops = &probe_ops,
        .arg = (void *)cfg,
        .name = name,
        .mailbox = cfg ? cfg->mailbox : 0,
        .thread = cfg ? cfg->thread : false,
    };
    if (name) {
        probe_rec(name);
    }
    return actor_spawn(&how, pid);
}

uint64_t probe_spawn(const char *name, const struct probe_cfg *cfg)
{
    uint64_t pid = 0;
    if (probe_spawn_rc(name, cfg, &pid) != 0) {
        abort();
    }
    return pid;
}

int probe_send_value(struct actor_ctx *ctx, uint64_t to, int value)
{
    return actor_send_or_free(ctx, to, probe_value_msg(value));
}

int probe_send_type(struct actor_ctx *ctx, uint64_t to, int type)
{
    return actor_send_or_free(ctx, to, &msg_new(type)->hdr);
}

int probe_send_pid(struct actor_ctx *ctx, uint64_t to, int type, uint64_t pid)
{
    struct probe_msg *m = msg_new(type);
    m->pid = pid;
    return actor_send_or_free(ctx, to, &m->hdr);
}

void probe_send_timer(uint64_t to, uint32_t ms, int value)
{
    struct probe_msg *m = msg_new(PROBE_TIMER);
    m->ms = ms;
    m->value = value;
    actor_send_or_free(NULL, to, &m->hdr);
}

void probe_send_burst(uint64_t tx, uint64_t rx, int count)
{
    struct probe_msg *m = msg_new(PROBE_BURST);
    m->pid = rx;
    m->count = count;
    actor_send_or_free(NULL, tx, &m->hdr);
}

void probe_send_fd(uint64_t to, int fd)
{
    struct probe_msg *m = msg_new(PROBE_FD);
    m->fd = fd;
    actor_send_or_free(NULL, to, &m->hdr);
}

void probe_stop(uint64_t pid)
{
    struct actor_exit why = {.kind = ACTOR_EXIT_SHUTDOWN};
    actor_exit(NULL, pid, &why);
    actor_run_until_idle();
}

uint64_t probe_tree(const char *name, const char *rec, int n, int busy)
{
    /* The supervisors read their specs for as long as they live. */
    static struct probe_cfg top;
    static struct probe_cfg kid = {.rec = "m"};
    static const struct actor_sup_spec many = {.name = "many",
                                               .strategy = ACTOR_DYNAMIC,
                                               .intensity = 1,
                                               .period_ms = 1000};
    static struct actor_child_spec kids[2];
    static struct actor_sup_spec root;
    top = (struct probe_cfg){.rec = rec};
    kids[0] = (struct actor_child_spec){
        .id = rec,
        .start = {.ops = &probe_ops, .arg = &top, .name = name},
        .restart = ACTOR_PERMANENT,
        .shutdown_ms = 100};
    kids[1] = (struct actor_child_spec){.id = "many",
                                        .sup = &many,
                                        .restart = ACTOR_PERMANENT,
                                        .shutdown_ms = ACTOR_INFINITY};
    root = (struct actor_sup_spec){.name = "root",
                                   .strategy = ACTOR_ONE_FOR_ONE,
                                   .intensity = 1,
                                   .period_ms = 1000,
                                   .children = kids,
                                   .n_children = 2};
    uint64_t sup;
    if (actor_sup_start(&root, 0, &sup) != 0) {
        return 0;
    }
    actor_run_until_idle();
    uint64_t many_pid = actor_whereis("many");
    if (many_pid == 0) {
        return 0;
    }
    uint64_t found = 0;
    for (int i = 0; i < n; i++) {
        struct actor_child_spec c = {.id = "m",
                                     .start = {.ops = &probe_ops, .arg = &kid},
                                     .restart = ACTOR_TEMPORARY,
                                     .shutdown_ms = 100};
        uint64_t pid;
        if (actor_sup_start_child(many_pid, &c, &pid) != 0) {
            return 0;
        }
        found = i == busy ? pid : found;
    }
    actor_run_until_idle();
    return found;
}

bool probe_tree_stop(void)
{
    uint64_t root = actor_whereis("root");
    if (root == 0) {
        return false;
    }
    probe_stop(root);
    return !actor_is_alive(root);
}

int probe_setup(void **state)
{
    (void)state;
    probe_reset();
    return actor_runtime_start(&(struct actor_config){.manual = true});
}

int probe_teardown(void **state)
{
    (void)state;
    actor_run_until_idle();
    actor_runtime_stop();
    return 0;
}
