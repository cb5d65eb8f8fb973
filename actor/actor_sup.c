/* actor/actor_sup.c - supervisors: OTP's restart strategies, intensity and
 * ordered start and shutdown. */

/*
 * DESIGN
 * A supervisor is an actor that traps exits. Everything it does that takes
 * time (start a child and wait for its init, stop a child and wait for its
 * exit) is an action in a queue, done one at a time, so a restart under
 * rest_for_one is just "stop the later ones in reverse, start them again in
 * order" and shutdown is "stop all in reverse". Exits that arrive while an
 * action is under way are judged at once (restart or not, intensity) and
 * add actions behind it. A dynamic supervisor (simple_one_for_one) starts
 * children on request from any thread, without waiting for their init, and
 * stops them all at once; its child table is the only state other threads
 * touch, under the supervisor's mutex.
 *
 * Shutdown of one child: an exit signal `shutdown`, a timer for its
 * shutdown_ms, then `killed`. A blocking actor cannot be killed while it is
 * blocked; if it is still there one more period later, the supervisor
 * gives up and exits with an error, which at the top ends the process.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "actor/actor_impl.h"

enum child_state { C_STOPPED, C_STARTING, C_RUNNING, C_STOPPING };

struct child {
    struct actor_child_spec spec; /* dynamic: strings and arg owned */
    uint64_t pid;
    uint64_t timer; /* shutdown timer while stopping, or 0 */
    uint32_t restarts;
    enum child_state st;
    bool killed; /* kill sent while stopping */
    bool forget; /* dynamic: drop the record once stopped */
};

enum action_kind { A_START, A_STOP, A_EXIT };

struct action {
    enum action_kind kind;
    struct child *child; /* START, STOP */
};

enum sup_phase { S_STARTING, S_RUNNING, S_TERMINATING };

struct sup {
    const struct actor_sup_spec *spec;
    uint64_t self;
    uint64_t parent;
    pthread_mutex_t lock; /* children, phase: start_child comes from afar */
    struct child **children;
    size_t n_children, cap_children;
    enum sup_phase phase;
    struct action *queue;
    size_t n_queue, cap_queue;
    bool busy;       /* the head action is under way */
    uint64_t timer;  /* shutdown timer of the action under way */
    int64_t *stamps; /* restart times, ms, a ring of intensity + 1 */
    uint32_t n_stamps, stamp_next;
    struct actor_exit final; /* reason for A_EXIT */
};

struct sup_timer_msg {
    struct actor_msg hdr;
    uint64_t pid; /* the child being stopped, 0 for all (dynamic) */
};

struct sup_cmd_msg {
    struct actor_msg hdr;
    uint64_t pid; /* child to stop and forget */
};

static void child_free(struct sup *s, struct child *c)
{
    if (!c) {
        return;
    }
    if (s->spec->strategy == ACTOR_DYNAMIC) {
        if (c->spec.arg_free) {
            c->spec.arg_free(c->spec.start.arg);
        }
        free((char *)c->spec.id);
        free((char *)c->spec.start.name);
    }
    free(c);
}

/* Takes the lock: actor_sup_start_child() may grow the array meanwhile.
 * The record found stays valid: only the supervisor frees records. */
static struct child *child_by_pid(struct sup *s, uint64_t pid)
{
    if (pid == 0) {
        return NULL; /* stopped children have no pid */
    }
    struct child *found = NULL;
    pthread_mutex_lock(&s->lock);
    for (size_t i = 0; i < s->n_children; i++) {
        if (s->children[i]->pid == pid) {
            found = s->children[i];
            break;
        }
    }
    pthread_mutex_unlock(&s->lock);
    return found;
}

static size_t child_index(struct sup *s, const struct child *c)
{
    for (size_t i = 0; i < s->n_children; i++) {
        if (s->children[i] == c) {
            return i;
        }
    }
    return s->n_children;
}

static void child_remove(struct sup *s, struct child *c)
{
    size_t i = child_index(s, c);
    if (i < s->n_children) {
        memmove(&s->children[i], &s->children[i + 1],
                (s->n_children - i - 1) * sizeof(*s->children));
        s->n_children--;
    }
    child_free(s, c);
}

static int child_add(struct sup *s, struct child *c)
{
    if (actor__grow(&s->children, &s->cap_children, s->n_children,
                    sizeof(*s->children), 8) != 0) {
        return -ENOMEM;
    }
    s->children[s->n_children++] = c;
    return 0;
}

static const char *child_id(const struct child *c)
{
    return c->spec.id ? c->spec.id : "child";
}

/* Spawns @c linked to the supervisor. Returns 0, -EEXIST (*@holder is
 * the pid that has the name), or an error. */
static int child_spawn(struct actor_ctx *ctx, struct sup *s, struct child *c,
                       bool wait_init, uint64_t *holder)
{
    uint64_t pid = 0;
    int rc;
    if (c->spec.sup) {
        struct actor_spawn how = {
            .ops = &actor__sup_ops,
            .arg = (void *)c->spec.sup,
            .name = c->spec.sup->name,
            .mailbox = 4096,
            .link = s->self,
            .restarts = c->restarts,
        };
        rc = actor__spawn(&how, wait_init ? s->self : 0, &pid);
    } else {
        struct actor_spawn how = c->spec.start;
        how.link = s->self;
        how.restarts = c->restarts;
        rc = actor__spawn(&how, wait_init ? s->self : 0, &pid);
    }
    if (rc == -EEXIST) {
        if (holder) {
            *holder = pid;
        }
        return rc;
    }
    if (rc != 0) {
        actor_log(ctx, ACTOR_LOG_ERROR, "child not started", "child",
                  child_id(c), "error", strerror(-rc), NULL);
        return rc;
    }
    c->pid = pid;
    c->st = wait_init ? C_STARTING : C_RUNNING;
    c->killed = false;
    return 0;
}

/* ---- the action queue ------------------------------------------------- */

static int queue_add(struct sup *s, enum action_kind kind, struct child *c)
{
    for (size_t i = s->busy ? 1 : 0; i < s->n_queue; i++) {
        if (s->queue[i].kind == kind && s->queue[i].child == c) {
            return 0; /* already planned */
        }
    }
    if (actor__grow(&s->queue, &s->cap_queue, s->n_queue, sizeof(*s->queue),
                    16) != 0) {
        return -ENOMEM;
    }
    s->queue[s->n_queue].kind = kind;
    s->queue[s->n_queue].child = c;
    s->n_queue++;
    return 0;
}

static void queue_pop(struct sup *s)
{
    memmove(&s->queue[0], &s->queue[1], (s->n_queue - 1) * sizeof(*s->queue));
    s->n_queue--;
    s->busy = false;
}

static uint64_t start_timer(struct actor_ctx *ctx, uint32_t ms, uint64_t pid)
{
    struct sup_timer_msg *m = actor_msg_new(sizeof(*m), ACTOR__MSG_SUP_TIMER);
    if (!m) {
        return 0;
    }
    m->pid = pid;
    return actor_send_after(ctx, ms, &m->hdr);
}

static void send_exit(struct actor_ctx *ctx, uint64_t pid,
                      enum actor_exit_kind kind)
{
    struct actor_exit why;
    actor__set_exit(&why, kind, 0, NULL);
    actor_exit(ctx, pid, &why);
}

/* Begins stopping @c; returns true when it is already stopped. */
static bool stop_begin(struct actor_ctx *ctx, struct sup *s, struct child *c)
{
    if (c->st == C_STOPPED || !c->pid) {
        c->st = C_STOPPED;
        return true;
    }
    (void)s;
    c->st = C_STOPPING;
    if (c->spec.shutdown_ms == 0) {
        c->killed = true;
        send_exit(ctx, c->pid, ACTOR_EXIT_KILLED);
        c->timer = start_timer(ctx, 5000, c->pid);
    } else {
        send_exit(ctx, c->pid, ACTOR_EXIT_SHUTDOWN);
        if (c->spec.shutdown_ms != ACTOR_INFINITY) {
            c->timer = start_timer(ctx, c->spec.shutdown_ms, c->pid);
        }
    }
    return false;
}

static int run_queue(struct actor_ctx *ctx, struct sup *s);

static void sup_exit(struct actor_ctx *ctx, struct sup *s,
                     const struct actor_exit *why)
{
    s->final = *why;
    actor_exit_self(ctx, why->kind);
    ctx->exit = *why;
}

/* Plans stopping every child, in reverse order, then our exit. */
static int terminate_all(struct actor_ctx *ctx, struct sup *s,
                         const struct actor_exit *why)
{
    pthread_mutex_lock(&s->lock);
    s->phase = S_TERMINATING;
    pthread_mutex_unlock(&s->lock);
    /* Nothing planned matters any more but the action under way; a start
     * under way becomes a stop. */
    s->n_queue = s->busy ? 1 : 0;
    if (s->busy && s->queue[0].kind == A_START) {
        s->queue[0].kind = A_STOP;
        if (stop_begin(ctx, s, s->queue[0].child)) {
            queue_pop(s);
        }
    }
    s->final = *why;
    if (s->spec->strategy == ACTOR_DYNAMIC) {
        /* Dynamic children stop all at once. */
        uint32_t longest = 0;
        bool any = false;
        pthread_mutex_lock(&s->lock);
        for (size_t i = 0; i < s->n_children; i++) {
            struct child *c = s->children[i];
            if (c->st == C_STOPPED || !c->pid) {
                continue;
            }
            any = true;
            c->st = C_STOPPING;
            send_exit(ctx, c->pid,
                      c->spec.shutdown_ms == 0 ? ACTOR_EXIT_KILLED
                                               : ACTOR_EXIT_SHUTDOWN);
            c->killed = c->spec.shutdown_ms == 0;
            if (c->spec.shutdown_ms > longest) {
                longest = c->spec.shutdown_ms;
            }
        }
        pthread_mutex_unlock(&s->lock);
        if (!any) {
            sup_exit(ctx, s, why);
            return 0;
        }
        if (longest != ACTOR_INFINITY) {
            s->timer = start_timer(ctx, longest ? longest : 5000, 0);
        }
        return 0;
    }
    for (size_t i = s->n_children; i-- > 0;) {
        if (queue_add(s, A_STOP, s->children[i]) != 0) {
            return -ENOMEM;
        }
    }
    if (queue_add(s, A_EXIT, NULL) != 0) {
        return -ENOMEM;
    }
    return run_queue(ctx, s);
}

/* Does queued actions until one has to wait. */
static int run_queue(struct actor_ctx *ctx, struct sup *s)
{
    while (!s->busy && s->n_queue > 0) {
        struct action *a = &s->queue[0];
        switch (a->kind) {
        case A_EXIT:
            sup_exit(ctx, s, &s->final);
            s->n_queue = 0;
            return 0;
        case A_STOP:
            if (stop_begin(ctx, s, a->child)) {
                queue_pop(s);
            } else {
                s->busy = true;
            }
            break;
        case A_START: {
            struct child *c = a->child;
            if (c->st != C_STOPPED) {
                queue_pop(s);
                break;
            }
            int rc = child_spawn(ctx, s, c, true, NULL);
            if (rc == 0) {
                s->busy = true;
                break;
            }
            queue_pop(s);
            if (s->phase == S_STARTING) {
                struct actor_exit why;
                actor__set_exit(&why, ACTOR_EXIT_ERROR, rc,
                                "failed to start child %s", child_id(c));
                return terminate_all(ctx, s, &why);
            }
            /* A failed restart counts; try again after other messages. */
            struct actor_exit why;
            actor__set_exit(&why, ACTOR_EXIT_ERROR, rc, "start failed");
            int r = queue_add(s, A_START, c);
            if (r != 0) {
                return r;
            }
            struct actor_msg *kick =
                actor_msg_new(sizeof(*kick), ACTOR__MSG_SUP_RETRY);
            if (!kick) {
                return -ENOMEM;
            }
            kick->from = s->self;
            actor__send_sys(s->self, kick);
            return 0;
        }
        }
    }
    if (!s->busy && s->n_queue == 0 && s->phase == S_STARTING) {
        pthread_mutex_lock(&s->lock);
        s->phase = S_RUNNING;
        pthread_mutex_unlock(&s->lock);
        actor_init_done(ctx);
    }
    return 0;
}

/* ---- restarts --------------------------------------------------------- */

/* Records a restart; true when intensity is exceeded. */
static bool restart_too_many(struct sup *s)
{
    int64_t now = actor_now_ms();
    uint32_t cap = s->spec->intensity + 1;
    s->stamps[s->stamp_next] = now;
    s->stamp_next = (s->stamp_next + 1) % cap;
    if (s->n_stamps < cap) {
        s->n_stamps++;
    }
    uint32_t recent = 0;
    for (uint32_t i = 0; i < s->n_stamps; i++) {
        if (now - s->stamps[i] <= (int64_t)s->spec->period_ms) {
            recent++;
        }
    }
    return recent > s->spec->intensity;
}

static bool wants_restart(const struct child *c, const struct actor_exit *why)
{
    switch (c->spec.restart) {
    case ACTOR_PERMANENT:
        return true;
    case ACTOR_TRANSIENT:
        return actor_exit_is_abnormal(why);
    case ACTOR_TEMPORARY:
        return false;
    }
    return false;
}

static int on_child_down(struct actor_ctx *ctx, struct sup *s, struct child *c,
                         const struct actor_exit *why)
{
    bool restart = wants_restart(c, why);
    if (actor_exit_is_abnormal(why)) {
        actor_log(ctx, ACTOR_LOG_ERROR, "child terminated", "child",
                  child_id(c), "reason", actor_exit_kind_name(why->kind),
                  "detail", why->text, "restart", restart ? "yes" : "no", NULL);
    }
    pthread_mutex_lock(&s->lock);
    c->st = C_STOPPED;
    c->pid = 0;
    pthread_mutex_unlock(&s->lock);

    if (!restart) {
        if (s->spec->strategy == ACTOR_DYNAMIC ||
            c->spec.restart == ACTOR_TEMPORARY) {
            pthread_mutex_lock(&s->lock);
            child_remove(s, c);
            pthread_mutex_unlock(&s->lock);
        }
        return 0;
    }
    atomic_fetch_add_explicit(&actor__rt.st_restarts, 1, memory_order_relaxed);
    if (restart_too_many(s)) {
        actor_log(ctx, ACTOR_LOG_ERROR, "reached max restart intensity",
                  "child", child_id(c), "intensity",
                  ACTOR_LOG_INT(s->spec->intensity), "period_ms",
                  ACTOR_LOG_INT(s->spec->period_ms), NULL);
        struct actor_exit end;
        actor__set_exit(&end, ACTOR_EXIT_SHUTDOWN, 0,
                        "reached max restart intensity");
        return terminate_all(ctx, s, &end);
    }
    c->restarts++;
    switch (s->spec->strategy) {
    case ACTOR_DYNAMIC: {
        pthread_mutex_lock(&s->lock);
        int rc = child_spawn(ctx, s, c, false, NULL);
        if (rc != 0) {
            /* -EEXIST: someone started a new one under the name. */
            child_remove(s, c);
        }
        pthread_mutex_unlock(&s->lock);
        return rc == -EEXIST || rc == 0 ? 0 : rc;
    }
    case ACTOR_ONE_FOR_ONE:
        if (queue_add(s, A_START, c) != 0) {
            return -ENOMEM;
        }
        return run_queue(ctx, s);
    case ACTOR_ONE_FOR_ALL:
    case ACTOR_REST_FOR_ONE: {
        size_t first =
            s->spec->strategy == ACTOR_ONE_FOR_ALL ? 0 : child_index(s, c);
        for (size_t i = s->n_children; i-- > first;) {
            if (s->children[i] != c && queue_add(s, A_STOP, s->children[i])) {
                return -ENOMEM;
            }
        }
        for (size_t i = first; i < s->n_children; i++) {
            struct child *x = s->children[i];
            /* Temporary children taken down by a sibling stay down. */
            if (x != c && x->spec.restart == ACTOR_TEMPORARY) {
                continue;
            }
            if (queue_add(s, A_START, x) != 0) {
                return -ENOMEM;
            }
        }
        return run_queue(ctx, s);
    }
    }
    return 0;
}

/* ---- messages --------------------------------------------------------- */

static bool is_parent(struct sup *s, uint64_t pid)
{
    return pid == s->parent || (pid == 0 && s->parent == 0);
}

static int on_exit_msg(struct actor_ctx *ctx, struct sup *s,
                       struct actor_exit_msg *m)
{
    struct child *c = child_by_pid(s, m->pid);
    if (!c) {
        if (is_parent(s, m->pid) && s->phase != S_TERMINATING) {
            return terminate_all(ctx, s, &m->why);
        }
        return 0;
    }
    bool head = s->busy && s->queue[0].child == c;
    if (c->timer) {
        actor_cancel_timer(ctx, c->timer);
        c->timer = 0;
    }
    if (c->st == C_STOPPING || s->phase == S_TERMINATING) {
        pthread_mutex_lock(&s->lock);
        c->st = C_STOPPED;
        c->pid = 0;
        if (c->forget ||
            (s->spec->strategy == ACTOR_DYNAMIC && s->phase == S_TERMINATING)) {
            child_remove(s, c);
        }
        pthread_mutex_unlock(&s->lock);
    } else if (c->st == C_STARTING && s->phase == S_STARTING) {
        /* Init failed while the supervisor itself starts: it fails too. */
        c->st = C_STOPPED;
        c->pid = 0;
        if (head) {
            queue_pop(s);
        }
        struct actor_exit why;
        actor__set_exit(&why, ACTOR_EXIT_ERROR, m->why.err,
                        "child %s failed to start: %s", child_id(c),
                        m->why.text);
        return terminate_all(ctx, s, &why);
    } else {
        if (head) {
            queue_pop(s);
        }
        int rc = on_child_down(ctx, s, c, &m->why);
        if (rc != 0 || ctx->exit_pending) {
            return rc;
        }
        return run_queue(ctx, s);
    }
    if (head) {
        queue_pop(s);
    }
    if (s->phase == S_TERMINATING && s->spec->strategy == ACTOR_DYNAMIC) {
        if (s->n_children == 0) {
            if (s->timer) {
                actor_cancel_timer(ctx, s->timer);
                s->timer = 0;
            }
            sup_exit(ctx, s, &s->final);
        }
        return 0;
    }
    return run_queue(ctx, s);
}

static int on_init_ack(struct actor_ctx *ctx, struct sup *s, uint64_t pid)
{
    struct child *c = child_by_pid(s, pid);
    if (!c || c->st != C_STARTING) {
        return 0;
    }
    c->st = C_RUNNING;
    if (s->busy && s->queue[0].child == c) {
        queue_pop(s);
    }
    return run_queue(ctx, s);
}

static int on_timer(struct actor_ctx *ctx, struct sup *s,
                    struct sup_timer_msg *m)
{
    if (m->pid == 0) {
        s->timer = 0;
        /* Dynamic shutdown: kill what is left, then give up. */
        bool killed_before = false, any = false;
        for (size_t i = 0; i < s->n_children; i++) {
            struct child *c = s->children[i];
            if (c->st != C_STOPPING) {
                continue;
            }
            any = true;
            killed_before |= c->killed;
            c->killed = true;
            send_exit(ctx, c->pid, ACTOR_EXIT_KILLED);
        }
        if (!any) {
            return 0;
        }
        if (!killed_before) {
            s->timer = start_timer(ctx, 5000, 0);
            return 0;
        }
        return actor_fail(ctx, "children did not stop");
    }
    struct child *c = child_by_pid(s, m->pid);
    if (!c || c->st != C_STOPPING) {
        return 0;
    }
    c->timer = 0;
    if (!c->killed) {
        actor_log(ctx, ACTOR_LOG_WARN, "child missed its shutdown timeout",
                  "child", child_id(c), "timeout_ms",
                  ACTOR_LOG_INT(c->spec.shutdown_ms), NULL);
        c->killed = true;
        send_exit(ctx, c->pid, ACTOR_EXIT_KILLED);
        c->timer = start_timer(ctx, 5000, c->pid);
        return 0;
    }
    /* A blocking actor stuck in a call: nothing here can stop it. */
    return actor_fail(ctx, "child %s did not stop", child_id(c));
}

static int on_cmd(struct actor_ctx *ctx, struct sup *s, struct sup_cmd_msg *m)
{
    struct child *c = child_by_pid(s, m->pid);
    if (!c || s->phase == S_TERMINATING) {
        return 0;
    }
    c->forget = true;
    if (s->spec->strategy == ACTOR_DYNAMIC) {
        /* Dynamic children stop in parallel: no queue, a timer each. */
        if (c->st == C_RUNNING) {
            c->st = C_STOPPING;
            send_exit(ctx, c->pid,
                      c->spec.shutdown_ms == 0 ? ACTOR_EXIT_KILLED
                                               : ACTOR_EXIT_SHUTDOWN);
            if (c->spec.shutdown_ms != ACTOR_INFINITY) {
                c->timer = start_timer(
                    ctx, c->spec.shutdown_ms ? c->spec.shutdown_ms : 5000,
                    c->pid);
            }
        }
        return 0;
    }
    if (queue_add(s, A_STOP, c) != 0) {
        return -ENOMEM;
    }
    return run_queue(ctx, s);
}

static int sup_handle(struct actor_ctx *ctx, void *state, struct actor_msg *msg)
{
    struct sup *s = state;
    switch (msg->type) {
    case ACTOR_MSG_EXIT:
        return on_exit_msg(ctx, s, (struct actor_exit_msg *)msg);
    case ACTOR__MSG_INIT_ACK:
        return on_init_ack(ctx, s, msg->from);
    case ACTOR__MSG_SUP_TIMER:
        return on_timer(ctx, s, (struct sup_timer_msg *)msg);
    case ACTOR__MSG_SUP_RETRY:
        return run_queue(ctx, s);
    case ACTOR__MSG_SUP_CMD:
        return on_cmd(ctx, s, (struct sup_cmd_msg *)msg);
    default:
        /* Not ours to crash over: a supervisor outlives confused peers. */
        ACTOR_LOG_RL(ctx, ACTOR_LOG_WARN, "unexpected message", "type",
                     ACTOR_LOG_INT(msg->type), NULL);
        return 0;
    }
}

static int sup_init(struct actor_ctx *ctx, void *arg, void **state)
{
    const struct actor_sup_spec *spec = arg;
    struct sup *s = calloc(1, sizeof(*s));
    if (!s) {
        return -ENOMEM;
    }
    s->spec = spec;
    s->self = actor_self(ctx);
    s->parent = ctx->parent;
    pthread_mutex_init(&s->lock, NULL);
    s->stamps = calloc(spec->intensity + 1, sizeof(*s->stamps));
    if (!s->stamps) {
        goto out_free;
    }
    actor_trap_exit(ctx, true);
    *state = s;
    if (spec->strategy == ACTOR_DYNAMIC) {
        s->phase = S_RUNNING;
        return 0;
    }
    s->phase = S_STARTING;
    for (size_t i = 0; i < spec->n_children; i++) {
        struct child *c = calloc(1, sizeof(*c));
        if (!c || child_add(s, c) != 0) {
            free(c);
            goto out_children;
        }
        c->spec = spec->children[i];
        if (queue_add(s, A_START, c) != 0) {
            goto out_children;
        }
    }
    int rc = run_queue(ctx, s);
    if (rc != 0) {
        goto out_children;
    }
    return s->phase == S_RUNNING ? 0 : ACTOR_DEFER;

out_children:
    for (size_t i = 0; i < s->n_children; i++) {
        free(s->children[i]);
    }
    free(s->children);
    free(s->queue);
    free(s->stamps);
out_free:
    pthread_mutex_destroy(&s->lock);
    free(s);
    *state = NULL;
    return -ENOMEM;
}

static void sup_stop(struct actor_ctx *ctx, void *state,
                     const struct actor_exit *why)
{
    (void)ctx;
    (void)why;
    struct sup *s = state;
    if (!s) {
        return;
    }
    /* Children still alive get our exit signal from the runtime; one may
     * not have run its init yet, so its arg goes with it. */
    for (size_t i = 0; i < s->n_children; i++) {
        struct child *c = s->children[i];
        if (c->pid && c->spec.arg_free &&
            actor__hand_over_arg(c->pid, c->spec.arg_free, c->spec.start.arg)) {
            c->spec.arg_free = NULL;
        }
        child_free(s, c);
    }
    free(s->children);
    free(s->queue);
    free(s->stamps);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

const struct actor_ops actor__sup_ops = {
    .name = "supervisor",
    .init = sup_init,
    .handle = sup_handle,
    .stop = sup_stop,
};

int actor_sup_start(const struct actor_sup_spec *spec, uint64_t parent,
                    uint64_t *pid)
{
    if (!spec || (spec->strategy != ACTOR_DYNAMIC && spec->n_children &&
                  !spec->children)) {
        return -EINVAL;
    }
    struct actor_spawn how = {
        .ops = &actor__sup_ops,
        .arg = (void *)spec,
        .name = spec->name,
        .mailbox = 4096,
        .link = parent,
    };
    return actor__spawn(&how, 0, pid);
}

static char *dup_or_null(const char *s, bool *oom)
{
    if (!s) {
        return NULL;
    }
    char *d = strdup(s);
    if (!d) {
        *oom = true;
    }
    return d;
}

int actor_sup_start_child(uint64_t sup, const struct actor_child_spec *spec,
                          uint64_t *pid)
{
    int rc;
    struct actor_ctx *a = actor__pin(sup);
    if (!a) {
        rc = -ESRCH;
        goto out_free_arg;
    }
    struct sup *s = atomic_load(&a->wake_state);
    if (!atomic_load(&a->is_sup) || !s || s->spec->strategy != ACTOR_DYNAMIC) {
        rc = !s ? -ESRCH : -EINVAL;
        goto out_unpin;
    }
    struct child *c = calloc(1, sizeof(*c));
    if (!c) {
        rc = -ENOMEM;
        goto out_unpin;
    }
    bool oom = false;
    c->spec = *spec;
    c->spec.id = dup_or_null(spec->id, &oom);
    c->spec.start.name = dup_or_null(spec->start.name, &oom);
    if (oom) {
        rc = -ENOMEM;
        goto out_free_child;
    }
    pthread_mutex_lock(&s->lock);
    if (s->phase != S_RUNNING) {
        rc = -ESRCH;
        goto out_unlock;
    }
    rc = child_add(s, c);
    if (rc != 0) {
        goto out_unlock;
    }
    rc = child_spawn(NULL, s, c, false, pid);
    if (rc != 0) {
        s->n_children--;
        goto out_unlock;
    }
    if (pid) {
        *pid = c->pid;
    }
    pthread_mutex_unlock(&s->lock);
    actor__unpin(a);
    return 0;

out_unlock:
    pthread_mutex_unlock(&s->lock);
out_free_child:
    c->spec.arg_free = NULL; /* freed below, once */
    child_free(s, c);
out_unpin:
    actor__unpin(a);
out_free_arg:
    if (spec->arg_free) {
        spec->arg_free(spec->start.arg);
    }
    return rc;
}

int actor_sup_stop_child(uint64_t sup, uint64_t child)
{
    struct sup_cmd_msg *m = actor_msg_new(sizeof(*m), ACTOR__MSG_SUP_CMD);
    if (!m) {
        return -ENOMEM;
    }
    m->pid = child;
    return actor__send_sys(sup, &m->hdr);
}
