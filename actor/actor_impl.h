/* actor/actor_impl.h - the runtime's internals, shared by the actor folder
 * only. */
#ifndef ACTOR_ACTOR_IMPL_H
#define ACTOR_ACTOR_IMPL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "actor/actor.h"

#define ACTOR__CACHELINE 64

/* Runtime-internal message types: signals handled before ops->handle. */
enum {
    ACTOR__SIG_EXIT = 8, /* struct actor__sig: an exit signal */
    ACTOR__SIG_LINK,     /* struct actor__sig: from links to us */
    ACTOR__SIG_UNLINK,
    ACTOR__SIG_MONITOR,   /* from monitors us with ref */
    ACTOR__SIG_DEMONITOR, /* ref is gone */
    ACTOR__MSG_INIT_ACK,  /* to a supervisor: from finished init */
    ACTOR__MSG_SUP_RETRY, /* a supervisor's own "restart pending" kick */
    ACTOR__MSG_SUP_TIMER, /* a supervisor's shutdown timer */
    ACTOR__MSG_SUP_CMD,   /* a supervisor command (stop a child) */
};

/* msg->flags */
#define ACTOR__F_SYSTEM 1u /* bypasses the mailbox bound */
#define ACTOR__F_TIMER  2u /* tag is a timer id of the receiver */

struct actor__sig {
    struct actor_msg hdr;
    uint64_t ref;   /* monitors */
    bool from_link; /* exit signals: from a link, not actor_exit() */
    struct actor_exit why;
};

/* A small vector of u64 (links, timer ids, watch ids). */
struct actor__vec {
    uint64_t *v;
    size_t n;
    size_t cap;
};

/* Makes room for one more element in the array *@v of *@n elements of
 * @size bytes (capacity *@cap, doubling from @first). Returns 0 or
 * -ENOMEM (the array is unchanged). */
int actor__grow(void *v, size_t *cap, size_t n, size_t size, size_t first);

int actor__vec_add(struct actor__vec *vec, uint64_t x);
bool actor__vec_del(struct actor__vec *vec, uint64_t x); /* true: found */
bool actor__vec_has(const struct actor__vec *vec, uint64_t x);
void actor__vec_free(struct actor__vec *vec);

struct actor__mon {
    uint64_t ref;
    uint64_t pid; /* watcher (in monitored_by) or target (in monitors) */
};

struct actor__monvec {
    struct actor__mon *v;
    size_t n;
    size_t cap;
};

enum actor__phase {
    ACTOR__FREE, /* slot unused */
    ACTOR__NEW,  /* spawned, init not run */
    ACTOR__LIVE, /* init done */
    ACTOR__DYING /* exit in progress */
};

struct actor__thread; /* a blocking actor's thread, actor_sched.c */

/*
 * One actor, in a type-stable slot. Fields above the line are touched by
 * senders on any thread; those below only by the thread running the actor
 * (its turn), except where marked.
 */
struct actor_ctx {
    /* read-mostly: set at spawn, changed at exit; any thread reads */
    _Atomic uint32_t gen;         /* generation of the slot's tenant */
    uint32_t cap;                 /* bound for ordinary messages */
    const struct actor_ops *ops;  /* set before the pid is published */
    struct actor__thread *thread; /* blocking actors only */
    _Atomic(void *) wake_state;   /* state for ops->wake, once init ran */
    _Atomic uint64_t live;        /* the pid once spawned, until told */
    uint64_t pid;
    uint64_t parent; /* linked-at-birth pid */
    uint64_t ack_to; /* gets ACTOR__MSG_INIT_ACK, or 0 */
    uint32_t restarts;
    _Atomic bool is_sup;
    char *_Atomic name; /* registered name, freed at exit */
    char *dropped_name; /* actor_unregister()'s: a pinned reader may still
                           hold it, so it is freed at exit */

    /* producers: a cache line of their own (the only one they write) */
    _Alignas(ACTOR__CACHELINE) struct actor_msg *_Atomic head;
    _Atomic uint32_t len;          /* queued messages, system ones included */
    _Atomic int sched;             /* 1: queued or running; 0: idle */
    _Atomic bool waiters;          /* senders wait for ACTOR_MSG_RESUME */
    _Atomic uint32_t exits_queued; /* exit signals not yet handled */

    /* consumer */
    _Alignas(ACTOR__CACHELINE) struct actor_msg *tail;
    struct actor_msg stub;
    _Atomic uint64_t handled;   /* written by the consumer, read by all */
    struct actor_ctx *next_run; /* run-queue link (scheduler's) */
    void *state;
    void *arg; /* for init */
    enum actor__phase phase;
    bool init_ok; /* init succeeded: stop is owed */
    bool trap_exit;
    bool exit_pending;
    bool in_turn;
    uint32_t turn_popped; /* messages taken so far in this turn */
    struct actor_exit exit;
    struct actor__vec links;
    struct actor__vec timers;          /* active timer ids */
    struct actor__vec watches;         /* active fd watch ids */
    struct actor__monvec monitors;     /* ours: ref -> target */
    struct actor__monvec monitored_by; /* ref -> watcher */
    void (*arg_free)(void *arg);       /* set by a dying supervisor, or NULL */
};

/* ---- actor_sched.c ---- */
/* The CLOCK_REALTIME time @ms milliseconds from now, for
 * pthread_cond_timedwait(). */
struct timespec actor__deadline(uint32_t ms);

/* ---- actor_core.c ---- */
extern struct actor__rt {
    struct actor_config cfg;
    bool running;
    _Atomic uint64_t next_ref;
    _Atomic uint64_t st_spawned, st_exited, st_crashed, st_restarts;
    _Atomic uint64_t st_full, st_dead;
    _Atomic uint32_t alive;
} actor__rt;

/* Pins @pid's slot (a hazard pointer of the calling thread); returns the
 * actor, or NULL when @pid is not alive. Release with actor__unpin(), in
 * reverse order of pinning. */
struct actor_ctx *actor__pin(uint64_t pid);
void actor__unpin(struct actor_ctx *a);

/* Pushes @msg (system: ignores the bound) and schedules @a. Returns 0 or
 * -EAGAIN (ordinary message, full mailbox). @a must be pinned. */
int actor__push(struct actor_ctx *a, struct actor_msg *msg, bool system,
                struct actor_ctx *sender);

/* Sends a runtime signal; frees it when @to is not alive. Returns 0 or
 * -ESRCH. */
int actor__send_sys(uint64_t to, struct actor_msg *msg);

/* Runs one turn of @a on the calling thread: init if new, then up to @max
 * messages. Returns true when the actor ended during the turn. */
bool actor__turn(struct actor_ctx *a, unsigned max);

/* After a turn: 0 -> idle, or requeue if messages arrived. */
void actor__after_turn(struct actor_ctx *a);

bool actor__mailbox_empty(struct actor_ctx *a);

int actor__spawn(const struct actor_spawn *how, uint64_t ack_to, uint64_t *pid);

/* Tests only: when set, spawn calls it with the new pid once the name is
 * registered (anyone may find the pid) and before the actor is live; a
 * nonzero return fails the spawn there, as a failure past that point
 * would. Set it only while nothing else spawns. */
extern int (*actor__spawn_hook)(uint64_t pid);

void actor__set_exit(struct actor_exit *e, enum actor_exit_kind kind, int err,
                     const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

struct actor_ctx *actor__current(void);

/* Gives @pid the job of freeing @arg when it exits (its supervisor is
 * going first). Returns false when @pid is already gone (then no init of
 * it can still read @arg). */
bool actor__hand_over_arg(uint64_t pid, void (*arg_free)(void *), void *arg);

/* ---- actor_sched.c ---- */
int actor__sched_start(void);
void actor__sched_stop(void);
/* Queues @a for a turn (its sched flag is already set). */
void actor__schedule(struct actor_ctx *a);
/* Starts @a's thread. On failure a->thread is left for
 * actor__thread_discard(), after the pid is retired. */
int actor__thread_start(struct actor_ctx *a);
void actor__thread_discard(struct actor_ctx *a);
void actor__thread_wake(struct actor_ctx *a);
bool actor__manual_step(void);
void actor__thread_exit(struct actor_ctx *a); /* core: ends a blocking actor */
bool actor__on_scheduler(void);

/* ---- actor_service.c ---- */
int actor__service_start(void);
void actor__service_stop(void);
void actor__timers_cancel_all(struct actor_ctx *a);
void actor__watches_remove_all(struct actor_ctx *a);
/* Manual mode: fire due timers and ready fds. Returns true if any. */
bool actor__service_poll(void);

/* ---- actor_registry.c ---- */
int actor__registry_add(const char *name, uint64_t pid, uint64_t *holder);
void actor__registry_del(const char *name, uint64_t pid);

/* ---- actor_sup.c ---- */
extern const struct actor_ops actor__sup_ops;

/* ---- actor_log.c ---- */
void actor__log_ctx_id(struct actor_ctx *ctx, char *buf, size_t len);

#endif /* ACTOR_ACTOR_IMPL_H */
