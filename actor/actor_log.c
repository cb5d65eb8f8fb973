/* actor/actor_log.c - structured logs: one logfmt or JSON line per event. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "actor/actor_impl.h"

static _Atomic int cur_level = ACTOR_LOG_INFO;
static _Atomic int cur_format = ACTOR_LOG_LOGFMT;
static _Atomic int log_fd = STDERR_FILENO;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void actor_log_set_level(enum actor_log_level level)
{
    atomic_store(&cur_level, (int)level);
}

enum actor_log_level actor_log_get_level(void)
{
    return (enum actor_log_level)atomic_load_explicit(&cur_level,
                                                      memory_order_relaxed);
}

void actor_log_set_format(enum actor_log_format format)
{
    atomic_store(&cur_format, (int)format);
}

void actor_log_set_fd(int fd)
{
    atomic_store(&log_fd, fd);
}

const char *actor_log_level_name(enum actor_log_level level)
{
    return (unsigned)level < 4 ? level_names[level] : "unknown";
}

int actor_log_parse_level(const char *text, enum actor_log_level *level)
{
    for (int i = 0; i < 4; i++) {
        if (strcmp(text, level_names[i]) == 0) {
            *level = (enum actor_log_level)i;
            return 0;
        }
    }
    if (strcmp(text, "warning") == 0) {
        *level = ACTOR_LOG_WARN;
        return 0;
    }
    return -EINVAL;
}

const char *actor_log_fmt_int(char buf[24], long long value)
{
    snprintf(buf, 24, "%lld", value);
    return buf;
}

void actor__log_ctx_id(struct actor_ctx *ctx, char *buf, size_t len)
{
    uint64_t pid = actor_self(ctx);
    snprintf(buf, len, "<0.%u.%u>", (unsigned)(pid & 0xffffffffu) - 1,
             (unsigned)(pid >> 32));
}

static bool logfmt_needs_quotes(const char *v)
{
    if (!*v) {
        return true;
    }
    for (; *v; v++) {
        unsigned char c = (unsigned char)*v;
        if (c <= ' ' || c == '=' || c == '"' || c == '\\' || c == 0x7f) {
            return true;
        }
    }
    return false;
}

static void logfmt_value(struct actor_buf *b, const char *v)
{
    if (!logfmt_needs_quotes(v)) {
        actor_buf_str(b, v);
        return;
    }
    /* JSON string escaping is a valid logfmt quoting. */
    actor_buf_json_str(b, v, strlen(v));
}

static void add_pair(struct actor_buf *b, bool json, const char *k,
                     const char *v)
{
    if (json) {
        actor_buf_char(b, ',');
        actor_buf_json_str(b, k, strlen(k));
        actor_buf_char(b, ':');
        actor_buf_json_str(b, v, strlen(v));
    } else {
        actor_buf_char(b, ' ');
        actor_buf_str(b, k);
        actor_buf_char(b, '=');
        logfmt_value(b, v);
    }
}

static void write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            return; /* nowhere left to report it */
        }
        p += w;
        n -= (size_t)w;
    }
}

static void emit(struct actor_ctx *ctx, enum actor_log_level level,
                 const char *msg, va_list kv, const char *xk, const char *xv)
{
    struct actor_buf b;
    actor_buf_init(&b);
    bool json = atomic_load(&cur_format) == ACTOR_LOG_JSON;

    char ts[40];
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    struct tm tm;
    gmtime_r(&now.tv_sec, &tm);
    snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
             (tm.tm_year + 1900) % 10000, (tm.tm_mon + 1) % 100,
             tm.tm_mday % 100, tm.tm_hour % 100, tm.tm_min % 100,
             tm.tm_sec % 100, (int)(now.tv_nsec / 1000000) % 1000);

    const char *actor = "main";
    char pid[40] = "";
    if (ctx) {
        const char *name = actor_name(ctx);
        actor = name ? name : actor_kind(ctx);
        actor__log_ctx_id(ctx, pid, sizeof(pid));
    }
    if (json) {
        actor_buf_str(&b, "{\"ts\":");
        actor_buf_json_str(&b, ts, strlen(ts));
    } else {
        actor_buf_str(&b, "ts=");
        actor_buf_str(&b, ts);
    }
    add_pair(&b, json, "level", actor_log_level_name(level));
    add_pair(&b, json, "actor", actor);
    if (ctx) {
        add_pair(&b, json, "pid", pid);
    }
    add_pair(&b, json, "msg", msg);
    for (;;) {
        const char *k = va_arg(kv, const char *);
        if (!k) {
            break;
        }
        const char *v = va_arg(kv, const char *);
        add_pair(&b, json, k, v ? v : "");
    }
    if (xk) {
        add_pair(&b, json, xk, xv);
    }
    if (json) {
        actor_buf_char(&b, '}');
    }
    actor_buf_char(&b, '\n');
    if (b.err == 0) {
        write_all(atomic_load(&log_fd), b.data, b.len);
    }
    actor_buf_release(&b);
}

void actor_logv(struct actor_ctx *ctx, enum actor_log_level level,
                const char *msg, va_list kv)
{
    if (!actor_log_enabled(level)) {
        return;
    }
    emit(ctx, level, msg, kv, NULL, NULL);
}

void actor_log(struct actor_ctx *ctx, enum actor_log_level level,
               const char *msg, ...)
{
    if (!actor_log_enabled(level)) {
        return;
    }
    va_list ap;
    va_start(ap, msg);
    emit(ctx, level, msg, ap, NULL, NULL);
    va_end(ap);
}

void actor_log_limited(struct actor_log_limit *lim, struct actor_ctx *ctx,
                       enum actor_log_level level, const char *msg, ...)
{
    if (!actor_log_enabled(level)) {
        return;
    }
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    int64_t sec = now.tv_sec;
    int64_t w = atomic_load(&lim->window);
    if (w != sec && atomic_compare_exchange_strong(&lim->window, &w, sec)) {
        atomic_store(&lim->used, 0);
    }
    if (atomic_fetch_add(&lim->used, 1) >= ACTOR_LOG_BURST) {
        atomic_fetch_add(&lim->dropped, 1);
        return;
    }
    uint32_t dropped = atomic_exchange(&lim->dropped, 0);
    va_list ap;
    va_start(ap, msg);
    if (dropped) {
        char n[24];
        emit(ctx, level, msg, ap, "suppressed", actor_log_fmt_int(n, dropped));
    } else {
        emit(ctx, level, msg, ap, NULL, NULL);
    }
    va_end(ap);
}
