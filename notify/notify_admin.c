/* notify/notify_admin.c - the admin listener: a second libwebsockets context
 * on its own blocking actor, serving the operator page's files and the
 * routes the application gives it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libwebsockets.h>

#include "notify/notify_impl.h"

/*
 * DESIGN
 * The admin port is for one operator and a Prometheus scraper, not for the
 * public: it listens on loopback unless told otherwise, takes small
 * request bodies only, and runs one request at a time on its own thread,
 * so a handler that blocks (the model's snapshot waits for every match
 * actor) delays the admin port and nothing else.
 *
 * lws serves the static files (a file mount at /, with its own checks
 * against escaping the directory); each route path is a callback mount.
 * What a request means (which route, which status, which body) is decided
 * by the notify__admin_* functions below, which know nothing of lws, so
 * the unit tests drive them directly; the glue only moves bytes.
 */

#define ADMIN_CSP                                                              \
    "default-src 'self'; img-src 'self' data:; object-src 'none'; "            \
    "base-uri 'none'; frame-ancestors 'none'"
#define DEFAULT_TYPE "text/plain; charset=utf-8"

/* ---- requests ------------------------------------------------------------ */

static void answer_text(struct notify__admin_req *r, int status,
                        const char *text)
{
    actor_buf_reset(&r->out.body);
    actor_buf_str(&r->out.body, text);
    actor_buf_char(&r->out.body, '\n');
    r->status = status;
    r->content_type = DEFAULT_TYPE;
    r->answered = true;
}

static bool has_body(const char *method)
{
    return strcmp(method, "PUT") == 0 || strcmp(method, "POST") == 0;
}

int notify__admin_begin(const struct notify_admin_config *cfg,
                        struct notify__admin_req *r, const char *method,
                        const char *path, int64_t content_length)
{
    r->max_body = cfg->max_body ? cfg->max_body : NOTIFY__ADMIN_BODY_MAX;
    r->head = strcmp(method, "HEAD") == 0;
    const char *as = r->head ? "GET" : method;
    bool path_known = false;
    for (size_t i = 0; i < cfg->n_routes; i++) {
        const struct notify_route *rt = &cfg->routes[i];
        if (strcmp(rt->path, path) != 0) {
            continue;
        }
        if (strcmp(rt->method, as) == 0) {
            r->route = rt;
            break;
        }
        /* Allow lists the methods the path takes, as RFC 9110 asks. */
        size_t used = strlen(r->allow);
        snprintf(r->allow + used, sizeof(r->allow) - used, "%s%s",
                 path_known ? ", " : "", rt->method);
        path_known = true;
    }
    if (!r->route) {
        if (path_known) {
            answer_text(r, HTTP_STATUS_METHOD_NOT_ALLOWED,
                        "method not allowed");
        } else {
            r->allow[0] = '\0';
            answer_text(r, HTTP_STATUS_NOT_FOUND, "not found");
        }
        return r->out.body.err ? r->out.body.err : 1;
    }
    r->allow[0] = '\0';
    if (has_body(as) && content_length < 0) {
        answer_text(r, HTTP_STATUS_LENGTH_REQUIRED, "Content-Length required");
    } else if (content_length > (int64_t)r->max_body) {
        answer_text(r, HTTP_STATUS_REQ_ENTITY_TOO_LARGE, "body too large");
    } else {
        return 0;
    }
    return r->out.body.err ? r->out.body.err : 1;
}

int notify__admin_body(struct notify__admin_req *r, const char *data,
                       size_t len)
{
    if (r->refused || r->answered) {
        return 0;
    }
    if (r->in.len + len > r->max_body) {
        r->refused = true;
        actor_buf_release(&r->in);
        return 0;
    }
    actor_buf_add(&r->in, data, len);
    return r->in.err;
}

int notify__admin_finish(struct notify__admin_req *r)
{
    if (r->answered) {
        return 0;
    }
    if (r->refused) {
        answer_text(r, HTTP_STATUS_REQ_ENTITY_TOO_LARGE, "body too large");
        return r->out.body.err;
    }
    if (!r->route) {
        answer_text(r, HTTP_STATUS_NOT_FOUND, "not found");
        return r->out.body.err;
    }
    const char *body = r->in.len ? r->in.data : "";
    const char *type = NULL;
    actor_buf_reset(&r->out.body);
    int status = r->route->handle(body, r->in.len, &r->out.body, &type);
    if (status == -ENOMEM || r->out.body.err) {
        return -ENOMEM;
    }
    if (status < 100 || status > 599) {
        ACTOR_LOG_RL(NULL, ACTOR_LOG_ERROR, "admin route failed", "path",
                     r->route->path, "err",
                     status < 0 ? strerror(-status) : "bad status", NULL);
        answer_text(r, HTTP_STATUS_INTERNAL_SERVER_ERROR, "internal error");
        return r->out.body.err;
    }
    r->status = status;
    r->content_type = type ? type : DEFAULT_TYPE;
    r->answered = true;
    return 0;
}

void notify__admin_req_release(struct notify__admin_req *r)
{
    actor_buf_release(&r->in);
    notify__http_out_release(&r->out);
    *r = (struct notify__admin_req){0};
}

/* ---- the lws glue -------------------------------------------------------- */

struct admin_state {
    struct notify__service svc; /* ctx, lws, done, err */
    struct notify_admin_config cfg;
    struct lws_protocols protocols[2];
    struct lws_http_mount *mounts; /* one per route path, then the files */
    char **mount_paths;            /* owned copies, by mount */
    size_t n_mounts;
    struct lws_protocol_vhost_options headers[NOTIFY__SECURITY_HEADERS];
};

/* Per-session data of an HTTP transaction on a route. */
struct admin_session {
    struct notify__admin_req req;
    bool live; /* req holds a transaction */
};

static const char *const method_names[] = {
    [LWSHUMETH_GET] = "GET",         [LWSHUMETH_POST] = "POST",
    [LWSHUMETH_OPTIONS] = "OPTIONS", [LWSHUMETH_PUT] = "PUT",
    [LWSHUMETH_PATCH] = "PATCH",     [LWSHUMETH_DELETE] = "DELETE",
    [LWSHUMETH_CONNECT] = "CONNECT", [LWSHUMETH_HEAD] = "HEAD",
};

static void session_end(struct admin_session *s)
{
    if (s && s->live) {
        notify__admin_req_release(&s->req);
        s->live = false;
    }
}

static int send_answer(struct admin_session *s, struct lws *wsi)
{
    struct notify__admin_req *r = &s->req;
    return notify__http_answer(wsi, &r->out, (unsigned)r->status,
                               r->content_type, r->allow[0] ? r->allow : NULL,
                               r->head);
}

static int64_t content_length(struct lws *wsi)
{
    char text[24];
    if (lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH) <= 0 ||
        lws_hdr_copy(wsi, text, sizeof(text), WSI_TOKEN_HTTP_CONTENT_LENGTH) <=
            0) {
        return -1;
    }
    char *end;
    long long v = strtoll(text, &end, 10);
    return end == text || v < 0 ? -1 : (int64_t)v;
}

static int on_request(struct admin_state *st, struct admin_session *s,
                      struct lws *wsi)
{
    char *uri;
    int uri_len;
    int meth = lws_http_get_uri_and_method(wsi, &uri, &uri_len);
    if (meth < 0 ||
        meth >= (int)(sizeof(method_names) / sizeof(method_names[0])) ||
        !method_names[meth]) {
        return -1;
    }
    char path[256];
    snprintf(path, sizeof(path), "%.*s", uri_len, uri);
    session_end(s);
    s->live = true;
    int64_t len = content_length(wsi);
    int rc =
        notify__admin_begin(&st->cfg, &s->req, method_names[meth], path, len);
    if (rc == 0 && (len <= 0 || !has_body(method_names[meth]))) {
        rc = notify__admin_finish(&s->req); /* nothing more to wait for */
    }
    if (rc < 0) {
        notify__service_fail(&st->svc, rc, "request");
        return -1;
    }
    if (!s->req.answered) {
        return 0; /* the body comes next */
    }
    /* Refused before its body was read: the connection goes with it. */
    s->req.out.close = has_body(method_names[meth]) && len != 0;
    return send_answer(s, wsi);
}

static int on_http(struct lws *wsi, enum lws_callback_reasons reason,
                   void *user, void *in, size_t len)
{
    struct admin_state *st = lws_context_user(lws_get_context(wsi));
    struct admin_session *s = user;
    int rc;

    switch (reason) {
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
        if (st && !st->svc.done && actor_drain(st->svc.ctx, 64) == ACTOR_DONE) {
            notify__service_end(&st->svc);
        }
        return 0;
    case LWS_CALLBACK_HTTP:
        return on_request(st, s, wsi);
    case LWS_CALLBACK_HTTP_BODY:
        if (!s->live) {
            return -1;
        }
        rc = notify__admin_body(&s->req, in, len);
        if (rc < 0) {
            notify__service_fail(&st->svc, rc, "body");
            return -1;
        }
        return 0;
    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        if (!s->live || s->req.answered) {
            return 0;
        }
        rc = notify__admin_finish(&s->req);
        if (rc < 0) {
            notify__service_fail(&st->svc, rc, "route");
            return -1;
        }
        return send_answer(s, wsi);
    case LWS_CALLBACK_HTTP_WRITEABLE:
        if (!s || !s->live) {
            break;
        }
        rc = notify__http_answer_more(wsi, &s->req.out);
        return rc < 0 ? -1 : 0;
    case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
    case LWS_CALLBACK_CLOSED_HTTP:
        session_end(s);
        break;
    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

/* ---- the actor ----------------------------------------------------------- */

static int add_mount(struct admin_state *st, const char *path)
{
    for (size_t i = 0; i < st->n_mounts; i++) {
        if (strcmp(st->mount_paths[i], path) == 0) {
            return 0; /* GET and PUT of one path share a mount */
        }
    }
    char *copy = strdup(path);
    if (!copy) {
        return -ENOMEM;
    }
    st->mount_paths[st->n_mounts] = copy;
    st->mounts[st->n_mounts] = (struct lws_http_mount){
        .mountpoint = copy,
        .mountpoint_len = (unsigned char)strlen(copy),
        .protocol = "admin",
        .origin_protocol = LWSMPRO_CALLBACK,
    };
    st->n_mounts++;
    return 0;
}

static int setup_mounts(struct admin_state *st)
{
    const struct notify_admin_config *cfg = &st->cfg;
    st->mounts = calloc(cfg->n_routes + 1, sizeof(*st->mounts));
    st->mount_paths = calloc(cfg->n_routes + 1, sizeof(*st->mount_paths));
    if (!st->mounts || !st->mount_paths) {
        return -ENOMEM;
    }
    for (size_t i = 0; i < cfg->n_routes; i++) {
        const char *p = cfg->routes[i].path;
        if (!p || p[0] != '/' || strlen(p) > 200 || strcmp(p, "/") == 0) {
            actor_log(st->svc.ctx, ACTOR_LOG_ERROR, "bad admin route", "path",
                      p ? p : "(null)", NULL);
            return -EINVAL;
        }
        int rc = add_mount(st, p);
        if (rc != 0) {
            return rc;
        }
    }
    if (cfg->web_root) {
        st->mounts[st->n_mounts++] = notify__lws_file_mount(cfg->web_root);
    }
    for (size_t i = 0; i + 1 < st->n_mounts; i++) {
        st->mounts[i].mount_next = &st->mounts[i + 1];
    }
    return 0;
}

static void admin_free(struct admin_state *st)
{
    if (st->svc.lws) {
        lws_context_destroy(st->svc.lws);
    }
    for (size_t i = 0; st->mount_paths && i < st->n_mounts; i++) {
        free(st->mount_paths[i]);
    }
    free(st->mount_paths);
    free(st->mounts);
    free(st);
}

static int admin_init(struct actor_ctx *ctx, void *arg, void **state)
{
    if (!arg) {
        return -EINVAL;
    }
    struct admin_state *st = calloc(1, sizeof(*st));
    if (!st) {
        return -ENOMEM;
    }
    st->svc.ctx = ctx;
    st->svc.failing = "admin failing";
    st->cfg = *(const struct notify_admin_config *)arg;
    if (!st->cfg.host) {
        st->cfg.host = "127.0.0.1";
    }
    int rc = setup_mounts(st);
    if (rc != 0) {
        goto out_free;
    }
    st->protocols[0] = (struct lws_protocols){
        .name = "admin",
        .callback = on_http,
        .per_session_data_size = sizeof(struct admin_session),
    };
    notify__lws_security_headers(st->headers, ADMIN_CSP);
    notify__lws_logging();

    struct lws_context_creation_info info;
    memset(&info, 0, sizeof(info));
    notify__lws_listen(&info, st->cfg.host, st->cfg.port);
    info.protocols = st->protocols;
    info.mounts = st->n_mounts ? &st->mounts[0] : NULL;
    info.headers = &st->headers[0];
    info.user = st;
    info.vhost_name = "admin";
    info.server_string = "scorewire";
    info.timeout_secs = 20;
    st->svc.lws = lws_create_context(&info);
    if (!st->svc.lws) {
        /* lws says why on its log; bind failures are the usual cause. */
        actor_log(ctx, ACTOR_LOG_ERROR, "lws_create_context failed", "host",
                  st->cfg.host, "port", ACTOR_LOG_INT(st->cfg.port), NULL);
        rc = -EADDRINUSE;
        goto out_free;
    }
    struct lws_vhost *vh = lws_get_vhost_by_name(st->svc.lws, "admin");
    actor_log(ctx, ACTOR_LOG_INFO, "listening", "host", st->cfg.host, "port",
              ACTOR_LOG_INT(vh ? lws_get_vhost_listen_port(vh) : st->cfg.port),
              "web_root", st->cfg.web_root ? st->cfg.web_root : "", NULL);
    *state = st;
    return 0;

out_free:
    admin_free(st);
    return rc;
}

static int admin_run(struct actor_ctx *ctx, void *state)
{
    struct admin_state *st = state;
    if (actor_drain(ctx, 64) == ACTOR_DONE) {
        return 0;
    }
    return notify__service_run(&st->svc);
}

static void admin_wake(void *state)
{
    struct admin_state *st = state;
    lws_cancel_service(st->svc.lws);
}

static int admin_handle(struct actor_ctx *ctx, void *state,
                        struct actor_msg *msg)
{
    (void)ctx;
    (void)state;
    switch (msg->type) {
    default:
        return -EINVAL; /* nobody sends the admin anything */
    }
}

static void admin_stop(struct actor_ctx *ctx, void *state,
                       const struct actor_exit *why)
{
    (void)ctx;
    (void)why;
    struct admin_state *st = state;
    if (st) {
        st->svc.done = true; /* no draining from callbacks while closing */
        admin_free(st);
    }
}

const struct actor_ops notify_admin_ops = {
    .name = "admin",
    .init = admin_init,
    .handle = admin_handle,
    .stop = admin_stop,
    .run = admin_run,
    .wake = admin_wake,
};
