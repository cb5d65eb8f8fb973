/* app/app_systemd.c - readiness and the watchdog for systemd: the last
 * child of the root supervisor. */

/*
 * DESIGN
 * Children start in order, each after the previous one's init, so an actor
 * placed last in the root supervisor runs its init only once every stage is
 * up: that is the moment to tell systemd READY=1. The same actor pings the
 * watchdog from a timer on the scheduler, so a scheduler that stops turning
 * stops the pings and systemd restarts the process. The protocol is one
 * datagram to $NOTIFY_SOCKET; without that variable (not under systemd)
 * everything here is a no-op. No libsystemd: the protocol is a few lines.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "actor/actor.h"
#include "app/app.h"

enum { APP_MSG_WATCHDOG = 0x500 };

int app_sd_notify(const char *state)
{
    const char *path = getenv("NOTIFY_SOCKET");
    if (!path || !*path) {
        return 0;
    }
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    size_t len = strlen(path);
    if (len >= sizeof(sa.sun_path) || (path[0] != '/' && path[0] != '@')) {
        return -EINVAL;
    }
    memcpy(sa.sun_path, path, len);
    if (path[0] == '@') {
        sa.sun_path[0] = '\0'; /* abstract namespace */
    }
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -errno;
    }
    socklen_t salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
    ssize_t n = sendto(fd, state, strlen(state), MSG_NOSIGNAL,
                       (struct sockaddr *)&sa, salen);
    int rc = n < 0 ? -errno : 0;
    close(fd);
    return rc;
}

/* Half of WATCHDOG_USEC, in ms; 0 when systemd asked for no watchdog. */
static uint32_t watchdog_ms(void)
{
    const char *usec = getenv("WATCHDOG_USEC");
    if (!usec) {
        return 0;
    }
    unsigned long long us = strtoull(usec, NULL, 10);
    return us >= 2000 ? (uint32_t)(us / 2000) : 0;
}

static int arm(struct actor_ctx *ctx, uint32_t ms)
{
    struct actor_msg *m = actor_msg_new(sizeof(*m), APP_MSG_WATCHDOG);
    if (!m) {
        return -ENOMEM;
    }
    return actor_send_after(ctx, ms, m) ? 0 : -ENOMEM;
}

static int ready_init(struct actor_ctx *ctx, void *arg, void **state)
{
    (void)arg;
    *state = NULL;
    int rc = app_sd_notify("READY=1\nSTATUS=serving");
    if (rc != 0) {
        actor_log(ctx, ACTOR_LOG_WARN, "sd_notify failed", "error",
                  strerror(-rc), NULL);
    }
    actor_log(ctx, ACTOR_LOG_INFO, "ready", NULL);
    uint32_t ms = watchdog_ms();
    return ms ? arm(ctx, ms) : 0;
}

static int ready_handle(struct actor_ctx *ctx, void *state,
                        struct actor_msg *msg)
{
    (void)state;
    switch (msg->type) {
    case APP_MSG_WATCHDOG:
        app_sd_notify("WATCHDOG=1");
        return arm(ctx, watchdog_ms());
    default:
        return -EINVAL;
    }
}

static void ready_stop(struct actor_ctx *ctx, void *state,
                       const struct actor_exit *why)
{
    (void)ctx;
    (void)state;
    if (why->kind == ACTOR_EXIT_SHUTDOWN) {
        app_sd_notify("STOPPING=1");
    }
}

const struct actor_ops app_ready_ops = {
    .name = "app.ready",
    .init = ready_init,
    .handle = ready_handle,
    .stop = ready_stop,
};
