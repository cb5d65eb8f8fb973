/* notify/notify_lws.c - what the public port and the admin listener share
 * of libwebsockets: its log lines, the listen address, security headers,
 * and answers whose body is in memory. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <libwebsockets.h>

#include "notify/notify_impl.h"

#define ANSWER_PIECE 16384 /* body bytes per write */

/* ---- the service loop ---------------------------------------------------- */

int notify__service_run(struct notify__service *svc)
{
    while (!svc->done) {
        if (lws_service(svc->lws, 0) < 0) {
            actor_log(svc->ctx, ACTOR_LOG_ERROR, "lws_service failed", NULL);
            return -EIO;
        }
        if (svc->after_service) {
            svc->after_service(svc);
        }
    }
    return svc->err;
}

void notify__service_end(struct notify__service *svc)
{
    svc->done = true;
    lws_cancel_service(svc->lws);
}

void notify__service_fail(struct notify__service *svc, int err,
                          const char *what)
{
    actor_log(svc->ctx, ACTOR_LOG_ERROR, svc->failing, "in", what, "err",
              strerror(-err), NULL);
    if (!svc->err) {
        svc->err = err;
    }
    notify__service_end(svc);
}

int notify__client_socket_options(int fd, const struct notify_config *cfg)
{
    int sndbuf = (int)cfg->sndbuf;
    int lowat = (int)cfg->notsent_lowat;
    if (sndbuf &&
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf)) != 0) {
        return -errno;
    }
    if (lowat && setsockopt(fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &lowat,
                            sizeof(lowat)) != 0) {
        return -errno;
    }
    return 0;
}

/* ---- logging ------------------------------------------------------------- */

static void lws_log_line(int level, const char *line)
{
    size_t n = strlen(line);
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) {
        n--;
    }
    char text[256];
    snprintf(text, sizeof(text), "%.*s", (int)n, line);
    ACTOR_LOG_RL(NULL, level & LLL_ERR ? ACTOR_LOG_ERROR : ACTOR_LOG_WARN,
                 "libwebsockets", "line", text, NULL);
}

static void set_logging(void)
{
    lws_set_log_level(LLL_ERR | LLL_WARN, lws_log_line);
}

void notify__lws_logging(void)
{
    /* lws keeps its log settings in plain globals: set them once, before
     * either listener's thread reads them. */
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, set_logging);
}

/* ---- listening ----------------------------------------------------------- */

void notify__lws_listen(struct lws_context_creation_info *info,
                        const char *host, int port)
{
    info->port = port;
    if (!host || !host[0] || strcmp(host, "0.0.0.0") == 0 ||
        strcmp(host, "::") == 0) {
        info->iface = NULL;
        return;
    }
    info->iface = host;
    if (strchr(host, '.') && !strchr(host, ':')) {
        /* An IPv4 address: lws would open an IPv6 socket, not find the
         * address among its interfaces and listen on every one. */
        info->options |= LWS_SERVER_OPTION_DISABLE_IPV6;
    }
}

struct lws_http_mount notify__lws_file_mount(const char *root)
{
    return (struct lws_http_mount){
        .mountpoint = "/",
        .mountpoint_len = 1,
        .origin = root,
        .def = "index.html",
        .origin_protocol = LWSMPRO_FILE,
        .cache_max_age = 0,
        .cache_reusable = 1,
        .cache_revalidate = 1,
    };
}

void notify__lws_security_headers(struct lws_protocol_vhost_options *h,
                                  const char *csp)
{
    const char *const hdr[NOTIFY__SECURITY_HEADERS][2] = {
        {"content-security-policy:", csp},
        {"x-content-type-options:", "nosniff"},
        {"referrer-policy:", "no-referrer"},
        {"x-frame-options:", "DENY"},
    };
    for (int i = 0; i < NOTIFY__SECURITY_HEADERS; i++) {
        h[i] = (struct lws_protocol_vhost_options){
            .next = i + 1 < NOTIFY__SECURITY_HEADERS ? &h[i + 1] : NULL,
            .name = hdr[i][0],
            .value = hdr[i][1],
        };
    }
}

/* ---- answers ------------------------------------------------------------- */

int notify__http_answer(struct lws *wsi, struct notify__http_out *o,
                        unsigned status, const char *content_type,
                        const char *allow, bool head_only)
{
    unsigned char buf[LWS_PRE + 1024];
    unsigned char *start = buf + LWS_PRE, *p = start, *end = buf + sizeof(buf);
    if (lws_add_http_common_headers(wsi, status, content_type, o->body.len, &p,
                                    end) ||
        lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CACHE_CONTROL,
                                     (const unsigned char *)"no-store", 8, &p,
                                     end) ||
        (allow &&
         lws_add_http_header_by_name(
             wsi, (const unsigned char *)"allow:", (const unsigned char *)allow,
             (int)strlen(allow), &p, end)) ||
        lws_finalize_write_http_header(wsi, start, &p, end)) {
        return -1;
    }
    o->sent = head_only ? o->body.len : 0;
    o->pending = true;
    lws_callback_on_writable(wsi);
    return 0;
}

static int done(struct lws *wsi, struct notify__http_out *o)
{
    o->pending = false;
    if (o->close) {
        return -1;
    }
    return lws_http_transaction_completed(wsi) ? -1 : 1;
}

int notify__http_answer_more(struct lws *wsi, struct notify__http_out *o)
{
    if (!o->pending) {
        return 0;
    }
    size_t left = o->body.len - o->sent;
    if (left == 0) {
        /* HEAD, or an empty body: the headers were the whole answer. */
        return done(wsi, o);
    }
    size_t n = left < ANSWER_PIECE ? left : ANSWER_PIECE;
    bool last = n == left;
    unsigned char buf[LWS_PRE + ANSWER_PIECE];
    memcpy(buf + LWS_PRE, o->body.data + o->sent, n);
    if (lws_write(wsi, buf + LWS_PRE, n,
                  last ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) != (int)n) {
        return -1;
    }
    o->sent += n;
    if (!last) {
        lws_callback_on_writable(wsi);
        return 0;
    }
    return done(wsi, o);
}

void notify__http_out_release(struct notify__http_out *o)
{
    actor_buf_release(&o->body);
    o->sent = 0;
    o->pending = false;
    o->close = false;
}
