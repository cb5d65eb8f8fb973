/* actor/actor.h - Scorewire's actor runtime: BEAM-style processes in C. */
#ifndef ACTOR_ACTOR_H
#define ACTOR_ACTOR_H

/*
 * DESIGN
 * Actors are scheduled M:N: many lightweight actors run on a small pool of
 * scheduler threads (one per core by default). An actor is a state pointer,
 * a const ops table and a bounded MPSC mailbox; it handles at most a batch of
 * messages per turn, so no actor starves another. Blocking actors (libpq, the
 * libwebsockets service loop) get a thread of their own and are addressed by
 * pid like any other.
 *
 * A pid is a slot index (low 32 bits) plus that slot's generation (high 32
 * bits). Slots are never returned to the system, and a sender pins the slot
 * while it pushes, so a stale pid is detected and a send to a dead actor is a
 * no-op (-ESRCH), never a use-after-free.
 *
 * Ordering: messages from one sender to one receiver arrive in send order.
 * Stronger, and relied on by the pipeline: if a send A happens-before a send
 * B to the same receiver (in one thread, or through a message that A's
 * sender sent and B's sender received), A is received before B. Each mailbox
 * is a single queue, so causality carries through.
 *
 * Failure follows Erlang: a handler that returns a negative errno, or calls
 * actor_fail(), ends its actor with that reason. The runtime releases the
 * actor's name, timers and fd watches, calls ops->stop, frees the messages
 * still queued, then tells links (exit signals) and monitors (DOWN). Nothing
 * else is affected. Supervisors (actor_sup_*) restart children per their
 * specs, with OTP's strategies and restart intensity.
 *
 * Messages: every message starts with struct actor_msg. The runtime releases
 * a delivered message through msg->free after ops->handle returns, unless
 * the handler returns ACTOR_KEPT (it took ownership, e.g. to forward it).
 * Undelivered messages (dead receiver) are released through msg->free too.
 */

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct actor_ctx;
struct actor_buf;

/* ---- status values ---------------------------------------------------- */

#define ACTOR_KEPT  1 /* handle: the handler now owns @msg */
#define ACTOR_DEFER 2 /* init: the actor calls actor_init_done() later */
#define ACTOR_DONE  3 /* actor_drain: the actor has ended; leave run() */

#define ACTOR_INFINITY UINT32_MAX /* a shutdown timeout that never expires */

/* Catches our own bugs; stays on in every build (not <assert.h>, which
 * -DNDEBUG turns off). Input must never trigger it. */
#define ACTOR_ASSERT(cond)                                                     \
    do {                                                                       \
        if (!(cond)) {                                                         \
            actor__assert_fail(#cond, __FILE__, __LINE__, __func__);           \
        }                                                                      \
    } while (0)

_Noreturn void actor__assert_fail(const char *what, const char *file, int line,
                                  const char *func);

/* ---- messages --------------------------------------------------------- */

enum actor_msg_type {
    ACTOR_MSG_EXIT = 1, /* struct actor_exit_msg: a link ended (trapping) */
    ACTOR_MSG_DOWN,     /* struct actor_down_msg: a monitored actor ended */
    ACTOR_MSG_IO,       /* struct actor_io_msg: a watched fd is ready */
    ACTOR_MSG_RESUME,   /* struct actor_msg: ->from has mailbox room again */
    ACTOR_MSG_USER = 64 /* stages number their own messages from here */
};

struct actor_msg {
    struct actor_msg *_Atomic next;      /* runtime: mailbox link */
    void (*free)(struct actor_msg *msg); /* releases msg; NULL: not owned */
    uint64_t from;                       /* sender pid; 0 outside actors */
    uint64_t tag;                        /* runtime: timer id, or 0 */
    uint32_t type;                       /* enum actor_msg_type or stage's */
    uint32_t flags;                      /* runtime */
};

#ifndef container_of
#define container_of(ptr, type, member)                                        \
    ((type *)(void *)((char *)(ptr)-offsetof(type, member)))
#endif

/*
 * Returns a new zeroed message of @size bytes (at least the header) with
 * ->type = @type and ->free set to release it; NULL when out of memory.
 * Release it with actor_msg_free() unless a send took it.
 */
void *actor_msg_new(size_t size, uint32_t type);

/* Releases @msg through msg->free. Accepts NULL. */
void actor_msg_free(struct actor_msg *msg);

/* ---- exit reasons ----------------------------------------------------- */

enum actor_exit_kind {
    ACTOR_EXIT_NORMAL,   /* done; links ignore it unless trapping */
    ACTOR_EXIT_SHUTDOWN, /* asked to stop by a supervisor or the system */
    ACTOR_EXIT_KILLED,   /* killed; cannot be trapped */
    ACTOR_EXIT_NOPROC,   /* the pid was not alive */
    ACTOR_EXIT_ERROR     /* crashed: see err and text */
};

struct actor_exit {
    enum actor_exit_kind kind;
    int err;        /* negative errno for ACTOR_EXIT_ERROR, else 0 */
    char text[120]; /* human reason, NUL-terminated, may be empty */
};

/* True when @why is neither normal nor shutdown (OTP's "abnormal"). */
bool actor_exit_is_abnormal(const struct actor_exit *why);

/* Writes a one-word name for @why's kind ("normal", "error", ...). */
const char *actor_exit_kind_name(enum actor_exit_kind kind);

struct actor_exit_msg {
    struct actor_msg hdr; /* ACTOR_MSG_EXIT */
    uint64_t pid;         /* the linked actor that ended */
    struct actor_exit why;
};

struct actor_down_msg {
    struct actor_msg hdr; /* ACTOR_MSG_DOWN */
    uint64_t ref;         /* from actor_monitor() */
    uint64_t pid;         /* the monitored actor */
    struct actor_exit why;
};

struct actor_io_msg {
    struct actor_msg hdr; /* ACTOR_MSG_IO */
    uint64_t watch;       /* from actor_io_watch() */
    int fd;
    uint32_t events; /* EPOLLIN, EPOLLOUT, EPOLLHUP, EPOLLERR bits */
};

/* ---- actors ----------------------------------------------------------- */

struct actor_ops {
    const char *name; /* the actor's kind, for logs and /actors */
    /*
     * Sets *@state. Returns 0 (started), ACTOR_DEFER (the actor calls
     * actor_init_done() once ready; its supervisor waits), or a negative
     * errno (the actor ends with that error; stop is not called).
     */
    int (*init)(struct actor_ctx *ctx, void *arg, void **state);
    /*
     * Handles one message. Returns 0, ACTOR_KEPT (it owns @msg now), or a
     * negative errno: the actor ends with that error.
     */
    int (*handle)(struct actor_ctx *ctx, void *state, struct actor_msg *msg);
    /* Frees @state. Called once, on the actor's thread, with the reason. */
    void (*stop)(struct actor_ctx *ctx, void *state,
                 const struct actor_exit *why);
    /*
     * Blocking actors only (spawned with .thread), both optional.
     * run: the actor's own loop; it calls actor_drain() when woken and
     * returns once actor_drain() says ACTOR_DONE. Without it the runtime
     * waits for messages and drains them itself.
     * wake: called from any thread when a message arrives while the actor
     * may be blocked; it may touch only what is safe from any thread.
     */
    int (*run)(struct actor_ctx *ctx, void *state);
    void (*wake)(void *state);
};

#define ACTOR_MAILBOX_DEFAULT 1024u

struct actor_spawn {
    const struct actor_ops *ops;
    void *arg;         /* passed to init; not owned */
    const char *name;  /* registered name (copied), or NULL */
    uint32_t mailbox;  /* capacity in messages; 0: ACTOR_MAILBOX_DEFAULT */
    bool thread;       /* a blocking actor on a thread of its own */
    uint64_t link;     /* linked at birth to this pid (a supervisor), or 0 */
    uint32_t restarts; /* restarts of its spec so far, for observability */
};

/*
 * Starts an actor: it is addressable at once, and init runs as its first
 * turn. Sets *@pid. Returns 0; -EEXIST when .name is taken (*@pid is then
 * the holder's pid); -ENOMEM; -EINVAL.
 */
int actor_spawn(const struct actor_spawn *how, uint64_t *pid);

/*
 * Sends @msg to @to. @ctx is the sending actor, or NULL outside actors.
 * Returns 0: the receiver owns @msg. -ESRCH: no such actor. -EAGAIN: its
 * mailbox is full; when @ctx is given, the sender gets ACTOR_MSG_RESUME
 * (from = @to) once there is room. On error the caller still owns @msg.
 * Never blocks.
 */
int actor_send(struct actor_ctx *ctx, uint64_t to, struct actor_msg *msg);

/*
 * As actor_send(), past the receiver's mailbox bound: 0 or -ESRCH. Only
 * for a message that cannot wait for room and whose number is bounded
 * elsewhere: an outcome reported as its holder ends (there is no later
 * turn to retry from), its count bounded by the feeds' windows.
 */
int actor_send_unbounded(struct actor_ctx *ctx, uint64_t to,
                         struct actor_msg *msg);

/* As actor_send(), but releases @msg when the send fails. */
int actor_send_or_free(struct actor_ctx *ctx, uint64_t to,
                       struct actor_msg *msg);

/* True while @pid names a live actor (a hint: it may end right after). */
bool actor_is_alive(uint64_t pid);

uint64_t actor_self(const struct actor_ctx *ctx);

/* From a handler: the messages in the caller's mailbox behind the one it
 * is handling (a push under way counts). */
uint32_t actor_queued(const struct actor_ctx *ctx);

/* The actor's kind (ops->name) and registered name (or NULL). */
const char *actor_kind(const struct actor_ctx *ctx);
const char *actor_name(const struct actor_ctx *ctx);

/*
 * Ends the calling actor with an error after the current message. Returns
 * -ECANCELED so a handler can write `return actor_fail(ctx, "...", ...)`.
 */
int actor_fail(struct actor_ctx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Ends the calling actor after the current message with @kind (normal or
 * shutdown). */
void actor_exit_self(struct actor_ctx *ctx, enum actor_exit_kind kind);

/* Deferred init: the actor is ready; its supervisor may go on. */
void actor_init_done(struct actor_ctx *ctx);

/* Exit signals from links arrive as ACTOR_MSG_EXIT instead of ending us. */
void actor_trap_exit(struct actor_ctx *ctx, bool on);

/* Links the caller and @pid both ways. A dead @pid sends us an exit signal
 * with reason noproc. Returns 0 or -EINVAL. */
int actor_link(struct actor_ctx *ctx, uint64_t pid);
int actor_unlink(struct actor_ctx *ctx, uint64_t pid);

/* Monitors @pid: one ACTOR_MSG_DOWN when it ends (noproc at once if it is
 * not alive). Returns the monitor's ref (never 0). */
uint64_t actor_monitor(struct actor_ctx *ctx, uint64_t pid);
/* Stops a monitor; a DOWN for @ref is never delivered after this. */
void actor_demonitor(struct actor_ctx *ctx, uint64_t ref);

/*
 * Sends @to an exit signal with @why, as erlang:exit/2: killed cannot be
 * trapped; normal is ignored unless @to traps exits or is the caller.
 * @ctx may be NULL. Returns 0 or -ESRCH.
 */
int actor_exit(struct actor_ctx *ctx, uint64_t to,
               const struct actor_exit *why);

/* ---- timers ----------------------------------------------------------- */

/*
 * Delivers @msg to the caller after @ms milliseconds. Consumes @msg in every
 * case. Returns the timer id (never 0), or 0 when out of memory.
 */
uint64_t actor_send_after(struct actor_ctx *ctx, uint32_t ms,
                          struct actor_msg *msg);

/* Cancels a timer of the caller: its message is never handled after this.
 * Returns true when it had not fired yet. */
bool actor_cancel_timer(struct actor_ctx *ctx, uint64_t timer);

/* Monotonic milliseconds as the runtime sees them (a test clock in manual
 * mode), and wall-clock milliseconds since the epoch. */
int64_t actor_now_ms(void);
int64_t actor_wall_ms(void);

/* ---- file descriptors ------------------------------------------------- */

/*
 * Watches @fd for @events (EPOLLIN, EPOLLOUT): one ACTOR_MSG_IO when ready,
 * then the watch sleeps until actor_io_rearm(). The fd stays the caller's.
 * Returns the watch id (never 0), or 0 with errno set.
 */
uint64_t actor_io_watch(struct actor_ctx *ctx, int fd, uint32_t events);
int actor_io_rearm(struct actor_ctx *ctx, uint64_t watch, uint32_t events);
/* Stops a watch: no ACTOR_MSG_IO for it is handled after this. Call it
 * before closing the fd. Accepts 0. */
void actor_io_unwatch(struct actor_ctx *ctx, uint64_t watch);

/* ---- names ------------------------------------------------------------ */

/* Registers the caller under @name (copied). Returns 0, -EEXIST (taken),
 * -EBUSY (the caller has a name already) or -ENOMEM. */
int actor_register(struct actor_ctx *ctx, const char *name);
/* The pid registered under @name, or 0. */
uint64_t actor_whereis(const char *name);
/* Drops the caller's name (Erlang's unregister/1); its pid stays good.
 * Returns 0 or -ENOENT (it had none). */
int actor_unregister(struct actor_ctx *ctx);

/* ---- blocking actors -------------------------------------------------- */

/*
 * From a blocking actor's run(): handles up to @max queued messages on the
 * caller's thread. Returns 0, or ACTOR_DONE once the actor has ended.
 */
int actor_drain(struct actor_ctx *ctx, unsigned max);

/* From a blocking actor's thread: waits up to @ms for a message. Returns
 * true when one may be queued. */
bool actor_wait_message(struct actor_ctx *ctx, int ms);

/*
 * For a blocking actor that leaves its mailbox alone for a while (holding
 * back under back-pressure): true when an exit signal (a shutdown, a kill,
 * a linked actor's exit) is queued that actor_drain() has not handled. It
 * should then drain until the signal is handled, or it cannot be stopped.
 */
bool actor_exit_queued(struct actor_ctx *ctx);

/*
 * From a blocking actor's thread (one without ops->wake): sleeps up to @ms
 * milliseconds, ending early when an exit signal is queued for it, or a
 * message reaches it while it is idle (not when it is behind on its
 * mailbox). Does not touch the mailbox.
 */
void actor_sleep(struct actor_ctx *ctx, int ms);

/* ---- supervisors ------------------------------------------------------ */

enum actor_restart {
    ACTOR_PERMANENT, /* always restarted */
    ACTOR_TRANSIENT, /* restarted after an abnormal exit only */
    ACTOR_TEMPORARY  /* never restarted */
};

enum actor_strategy {
    ACTOR_ONE_FOR_ONE,
    ACTOR_ONE_FOR_ALL,
    ACTOR_REST_FOR_ONE,
    ACTOR_DYNAMIC /* simple_one_for_one: children added at run time */
};

struct actor_sup_spec;

struct actor_child_spec {
    const char *id;                   /* unique among siblings; for logs */
    struct actor_spawn start;         /* what to start (ignored when .sup) */
    const struct actor_sup_spec *sup; /* a nested supervisor instead */
    void (*arg_free)(void *arg);      /* frees start.arg when the child is gone;
                                         NULL: the arg outlives the supervisor */
    enum actor_restart restart;
    uint32_t shutdown_ms; /* grace before a kill; ACTOR_INFINITY for sups */
};

struct actor_sup_spec {
    const char *name; /* registered name of the supervisor, or NULL */
    enum actor_strategy strategy;
    uint32_t intensity; /* more than this many restarts ... */
    uint32_t period_ms; /* ... within this period end the supervisor */
    const struct actor_child_spec *children; /* started in order */
    size_t n_children;
};

/*
 * Starts a supervisor (linked to @parent unless 0) and, in order, its
 * children, each waiting for the previous one's init. Sets *@pid. Returns
 * 0 or a negative errno. The spec must outlive the supervisor.
 */
int actor_sup_start(const struct actor_sup_spec *spec, uint64_t parent,
                    uint64_t *pid);

/*
 * Adds a child to the running supervisor @sup; callable from any thread.
 * The supervisor copies @spec and owns spec->start.arg from here on (it
 * calls spec->arg_free when the child is gone), in every case. Sets *@pid.
 * Returns 0; -EEXIST when its name is taken (*@pid is the holder);
 * -ESRCH when @sup is not a running supervisor; -ENOMEM.
 */
int actor_sup_start_child(uint64_t sup, const struct actor_child_spec *spec,
                          uint64_t *pid);

/* Shuts down a child of @sup (per its spec) and forgets it. Returns 0 or
 * -ESRCH. */
int actor_sup_stop_child(uint64_t sup, uint64_t child);

/* ---- the runtime ------------------------------------------------------ */

struct actor_config {
    unsigned schedulers; /* threads; 0: one per online core */
    unsigned batch;      /* messages per turn; 0: 64 */
    bool manual;         /* tests: no threads; actor_run_until_idle() */
};

/* Starts the runtime. Returns 0 or a negative errno. */
int actor_runtime_start(const struct actor_config *cfg);

/* Stops the scheduler, timer and I/O threads. Actors still alive are
 * abandoned (their state is not stopped). For tests and process exit. */
void actor_runtime_stop(void);

/* Blocks the calling (non-actor) thread until @pid ends or @ms pass
 * (ACTOR_INFINITY: no limit). Returns true with *@why set when it ended
 * (NOPROC: long before, or it never lived). @pid must be one a spawn
 * handed out, or found by name: a made-up one may wait out @ms. */
bool actor_wait(uint64_t pid, uint32_t ms, struct actor_exit *why);

/* Manual mode: runs actors, due timers and ready fds on the calling thread
 * until nothing is runnable. Returns how many turns ran. */
unsigned actor_run_until_idle(void);
/* Manual mode: moves the test clock forward by @ms. */
void actor_advance_ms(uint32_t ms);

/* ---- observability ---------------------------------------------------- */

struct actor_info {
    uint64_t pid;
    uint64_t parent;   /* linked supervisor, or 0 */
    const char *kind;  /* ops->name; static */
    char name[72];     /* registered name, or "" */
    uint32_t mailbox;  /* messages queued now */
    uint32_t capacity; /* mailbox bound */
    uint64_t handled;  /* messages handled since start */
    uint32_t restarts; /* restarts of its spec before this incarnation */
    bool thread;       /* blocking actor */
    bool supervisor;
    bool runnable; /* queued or running now, else waiting */
};

/*
 * Calls @fn for every live actor; safe from any thread (a consistent view
 * of each actor, not of all at once). Returns how many were visited.
 */
size_t actor_foreach(void (*fn)(const struct actor_info *info, void *arg),
                     void *arg);

/* Fills @info for @pid. Returns 0 or -ESRCH. */
int actor_info_get(uint64_t pid, struct actor_info *info);

struct actor_stats {
    uint64_t spawned;  /* actors started */
    uint64_t exited;   /* actors ended */
    uint64_t crashed;  /* ended abnormally */
    uint64_t restarts; /* restarts by supervisors */
    uint64_t full;     /* sends refused by a full mailbox */
    uint64_t dead;     /* sends to dead pids */
    uint32_t alive;    /* actors alive now */
};

void actor_stats_get(struct actor_stats *out);

/* ---- logging ---------------------------------------------------------- */

enum actor_log_level {
    ACTOR_LOG_DEBUG,
    ACTOR_LOG_INFO,
    ACTOR_LOG_WARN,
    ACTOR_LOG_ERROR
};

enum actor_log_format { ACTOR_LOG_LOGFMT, ACTOR_LOG_JSON };

void actor_log_set_level(enum actor_log_level level);
enum actor_log_level actor_log_get_level(void);
void actor_log_set_format(enum actor_log_format format);
/* Parses "debug", "info", "warn", "error". Returns 0 or -EINVAL. */
int actor_log_parse_level(const char *text, enum actor_log_level *level);
const char *actor_log_level_name(enum actor_log_level level);
/* Sends log lines to @fd instead of stderr (tests). */
void actor_log_set_fd(int fd);

static inline bool actor_log_enabled(enum actor_log_level level)
{
    return level >= actor_log_get_level();
}

/*
 * Writes one line: ts, level, actor (the calling actor's kind and pid, or
 * "main" when @ctx is NULL), msg, then key/value string pairs ending with
 * NULL. Values are quoted and escaped as the format needs.
 *   actor_log(ctx, ACTOR_LOG_WARN, "document rejected",
 *             "source", src, "reason", "too_large", NULL);
 */
void actor_log(struct actor_ctx *ctx, enum actor_log_level level,
               const char *msg, ...) __attribute__((sentinel));
void actor_logv(struct actor_ctx *ctx, enum actor_log_level level,
                const char *msg, va_list kv);

/* A rate limit for one log site: at most ACTOR_LOG_BURST lines per second;
 * the first line after a suppressed run adds suppressed=N. */
struct actor_log_limit {
    _Atomic int64_t window; /* second of the current window */
    _Atomic uint32_t used;  /* lines written in it */
    _Atomic uint32_t dropped;
};
#define ACTOR_LOG_BURST 10

void actor_log_limited(struct actor_log_limit *lim, struct actor_ctx *ctx,
                       enum actor_log_level level, const char *msg, ...)
    __attribute__((sentinel));

/* Logs at most ACTOR_LOG_BURST lines a second from this call site. */
#define ACTOR_LOG_RL(ctx, level, ...)                                          \
    do {                                                                       \
        static struct actor_log_limit actor__lim;                              \
        actor_log_limited(&actor__lim, (ctx), (level), __VA_ARGS__);           \
    } while (0)

/* Formats an integer for a log value: ACTOR_LOG_INT(len). */
const char *actor_log_fmt_int(char buf[24], long long value);
#define ACTOR_LOG_INT(v) actor_log_fmt_int((char[24]){0}, (long long)(v))

/* ---- metrics ---------------------------------------------------------- */

/*
 * A process-wide registry of Prometheus series. Counters and gauges are
 * atomics, safe from any thread; series are created once and never freed.
 */
enum actor_metric_type {
    ACTOR_METRIC_COUNTER,
    ACTOR_METRIC_GAUGE,
    ACTOR_METRIC_HISTOGRAM
};

struct actor_metric;

/*
 * Returns the series @name{@labels} (created on first use; @labels is
 * Prometheus label text such as `reason="too_large"`, or NULL), or NULL
 * when out of memory or @name is already another type. Not owned.
 */
struct actor_metric *actor_metric_counter(const char *name, const char *help,
                                          const char *labels);
struct actor_metric *actor_metric_gauge(const char *name, const char *help,
                                        const char *labels);
/* @bounds: ascending upper bounds, without +Inf; copied. */
struct actor_metric *actor_metric_histogram(const char *name, const char *help,
                                            const char *labels,
                                            const double *bounds,
                                            size_t n_bounds);
/* A gauge read at render time by @fn(@arg) from the rendering thread. */
int actor_metric_gauge_fn(const char *name, const char *help,
                          const char *labels, double (*fn)(void *arg),
                          void *arg);

/* Writes `@key="@value"` with Prometheus escaping into @out. Returns 0,
 * -ENOSPC when it does not fit in @size bytes, or -ENOMEM. */
int actor_metric_label(char *out, size_t size, const char *key,
                       const char *value);

/* All accept NULL (a series that failed to register counts nothing). */
void actor_metric_add(struct actor_metric *m, uint64_t n);
void actor_metric_set(struct actor_metric *m, int64_t v);
void actor_metric_observe(struct actor_metric *m, double v);
uint64_t actor_metric_value(const struct actor_metric *m);

/* Appends every series in Prometheus text format 0.0.4 to @out.
 * Returns 0 or -ENOMEM. */
int actor_metric_render(struct actor_buf *out);

/* ---- byte buffers ----------------------------------------------------- */

/*
 * A growable byte buffer with a sticky error: after a failed allocation
 * every append is a no-op and ->err is -ENOMEM, so a caller builds a whole
 * text and checks once. ->data is always NUL-terminated when ->cap > 0.
 */
struct actor_buf {
    char *data;
    size_t len;
    size_t cap;
    int err; /* 0 or -ENOMEM */
};

void actor_buf_init(struct actor_buf *b);
void actor_buf_release(struct actor_buf *b); /* frees data; reusable */
void actor_buf_reset(struct actor_buf *b);   /* len = 0, keeps memory */
int actor_buf_reserve(struct actor_buf *b, size_t extra);
void actor_buf_add(struct actor_buf *b, const void *data, size_t len);
void actor_buf_str(struct actor_buf *b, const char *s);
void actor_buf_printf(struct actor_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void actor_buf_char(struct actor_buf *b, char c);
/* Appends @s (of @len bytes) as a JSON string, quotes included. */
void actor_buf_json_str(struct actor_buf *b, const char *s, size_t len);
/* Takes the bytes out: returns ->data (caller frees) and resets @b. */
char *actor_buf_take(struct actor_buf *b, size_t *len);

#endif /* ACTOR_ACTOR_H */
