/* tests/probe.h - a configurable test actor that records what happens to
 * it, for the runtime's tests. */
#ifndef TESTS_PROBE_H
#define TESTS_PROBE_H

#include <stdbool.h>
#include <stdint.h>

#include "actor/actor.h"

enum probe_type {
    PROBE_VALUE = ACTOR_MSG_USER + 1, /* record value */
    PROBE_CRASH,                      /* handler returns -EIO */
    PROBE_FAIL,                       /* actor_fail("boom 42") */
    PROBE_EXIT_NORMAL,                /* actor_exit_self(normal) */
    PROBE_LINK,                       /* link to pid */
    PROBE_UNLINK,
    PROBE_MONITOR,      /* monitor pid, keep the ref */
    PROBE_DEMONITOR,    /* drop the kept ref */
    PROBE_TIMER,        /* send value to self after ms */
    PROBE_CANCEL_FIRST, /* cancel the first timer started */
    PROBE_BURST,        /* send count values to pid, counting refusals */
    PROBE_FD,           /* watch fd for input */
    PROBE_UNWATCH,
    PROBE_INIT_DONE,  /* deferred init is done */
    PROBE_ECHO,       /* reply value to pid */
    PROBE_UNREGISTER, /* drop its name; note actor_queued() */
};

struct probe_msg {
    struct actor_msg hdr;
    int value;
    uint64_t pid;
    uint32_t ms;
    int fd;
    int count;
};

struct probe_cfg {
    const char *rec;      /* record name; NULL: the spawn name */
    bool trap;            /* trap exits */
    bool ignore_shutdown; /* trapping: ignore shutdown from anyone */
    int fail_init;        /* init returns this (negative) */
    bool defer;           /* init returns ACTOR_DEFER */
    uint32_t mailbox;
    bool thread;
};

#define PROBE_MAX_VALUES 4096

struct probe_rec {
    char name[32];
    int inits, stops;
    struct actor_exit stop_why;
    int values[PROBE_MAX_VALUES];
    int n_values;
    long order, order_last; /* global order of first and last value */
    int exits;
    enum actor_exit_kind exit_kinds[16];
    uint64_t exit_pids[16];
    int downs;
    uint64_t down_pid, down_ref, monitor_ref;
    struct actor_exit down_why;
    uint64_t first_timer;
    bool cancel_result;
    int cancels;
    int burst_ok, burst_full;
    int resumes;
    uint64_t resume_from;
    int io_events;
    long io_bytes;
    uint64_t watch;
    int fd;
    uint64_t pid;                /* latest incarnation */
    long init_order, stop_order; /* global order of the last init, stop */
    int unregister_rc;           /* PROBE_UNREGISTER's */
    uint32_t queued;             /* actor_queued() at PROBE_UNREGISTER */
};

extern const struct actor_ops probe_ops;

void probe_reset(void);
struct probe_rec *probe_rec(const char *name); /* creates it when new */
long probe_msgs_alive(void);

uint64_t probe_spawn(const char *name, const struct probe_cfg *cfg);
int probe_spawn_rc(const char *name, const struct probe_cfg *cfg,
                   uint64_t *pid);
struct actor_msg *probe_value_msg(int value);
int probe_send_value(struct actor_ctx *ctx, uint64_t to, int value);
int probe_send_type(struct actor_ctx *ctx, uint64_t to, int type);
int probe_send_pid(struct actor_ctx *ctx, uint64_t to, int type, uint64_t pid);
void probe_send_timer(uint64_t to, uint32_t ms, int value);
void probe_send_burst(uint64_t tx, uint64_t rx, int count);
void probe_send_fd(uint64_t to, int fd);
/* Reads an int or long field of a record under the probes' lock (for
 * tests whose probes run on other threads): PROBE_READ(r->n_values). */
long probe_read(const void *field, size_t size);
#define PROBE_READ(field) probe_read(&(field), sizeof(field))

/* cmocka fixtures: a manual-mode runtime with fresh probe records, and
 * its stop once everything queued has run. */
int probe_setup(void **state);
int probe_teardown(void **state);

/* Sends shutdown and runs until idle (manual mode). */
void probe_stop(uint64_t pid);

/* A tree for the observers' tests (manual mode, the runtime started):
 * "root" (one for one) over a permanent probe with id @rec, spawned as
 * @name, and the dynamic supervisor "many" holding @n temporary probes
 * (recording as "m"). Runs until idle; returns the pid of the @busy-th of
 * those, or 0 when anything failed. One tree at a time. */
uint64_t probe_tree(const char *name, const char *rec, int n, int busy);
/* Shuts that tree down and runs until idle; true when it has gone. */
bool probe_tree_stop(void);

#endif /* TESTS_PROBE_H */
