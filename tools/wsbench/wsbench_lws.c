/* tools/wsbench/wsbench_lws.c - the libwebsockets client engine of
 * scorewire-wsbench: one client context, one thread. */
#include <errno.h>
#include <string.h>

#include <libwebsockets.h>

#include "tools/wsbench/wsbench.h"

struct engine {
    struct wb_run *run;
    struct lws_context *lws;
    lws_sorted_usec_list_t tick;
    volatile sig_atomic_t *interrupted;
};

static struct engine *the_engine; /* lws callbacks reach it through this */

static void open_some(struct engine *e, uint32_t n)
{
    struct wb_run *run = e->run;
    for (; n > 0 && run->opened < run->o.connections; n--) {
        struct wb_conn *c = &run->conns[run->opened];
        c->idx = run->opened++;
        struct lws_client_connect_info ci = {
            .context = e->lws,
            .address = run->o.address,
            .port = run->o.port,
            .path = run->o.path,
            .host = run->o.address,
            .origin = run->o.address,
            .protocol = "scorewire.v1",
            .local_protocol_name = "scorewire.v1",
            .ietf_version_or_minus_one = -1,
            .userdata = c,
            .pwsi = (struct lws **)&c->io,
        };
        if (!lws_client_connect_via_info(&ci)) {
            c->io = NULL; /* the failure callback has counted it */
        }
    }
}

static void on_tick(lws_sorted_usec_list_t *sul)
{
    struct engine *e = lws_container_of(sul, struct engine, tick);
    uint32_t n = wb_tick(e->run, *e->interrupted);
    if (e->run->phase == WB_DONE) {
        return;
    }
    open_some(e, n);
    lws_sul_schedule(e->lws, 0, &e->tick, on_tick, WB_TICK_US);
}

static int on_client(struct lws *wsi, enum lws_callback_reasons reason,
                     void *user, void *in, size_t len)
{
    struct wb_run *run = the_engine->run;
    struct wb_conn *c = user;

    switch (reason) {
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        wb_on_failed(run, c, in);
        if (c) {
            c->io = NULL;
        }
        return 0;
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        wb_on_established(run, c);
        lws_callback_on_writable(wsi);
        return 0;
    case LWS_CALLBACK_CLIENT_WRITEABLE:
        if (!c->sent_subscribe) {
            unsigned char buf[LWS_PRE + sizeof(run->subscribe_msg)];
            memcpy(buf + LWS_PRE, run->subscribe_msg, run->subscribe_len);
            if (lws_write(wsi, buf + LWS_PRE, run->subscribe_len,
                          LWS_WRITE_TEXT) < (int)run->subscribe_len) {
                return -1;
            }
            c->sent_subscribe = true;
        }
        return 0;
    case LWS_CALLBACK_CLIENT_RECEIVE: {
        int rc = wb_on_data(run, c, in, len, lws_is_first_fragment(wsi),
                            lws_is_final_fragment(wsi));
        if (rc != 0) {
            run->error = rc;
            *the_engine->interrupted = 1;
        }
        return 0;
    }
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE: {
        const unsigned char *p = in;
        wb_on_close_frame(run, c, len >= 2 ? p[0] << 8 | p[1] : 0);
        return 0;
    }
    case LWS_CALLBACK_CLIENT_CLOSED:
        if (c) {
            wb_on_closed(run, c);
            c->io = NULL;
        }
        return 0;
    default:
        return 0;
    }
}

int wb_lws_run(struct wb_run *run, volatile sig_atomic_t *interrupted)
{
    static const struct lws_protocols protocols[] = {
        {.name = "scorewire.v1",
         .callback = on_client,
         .rx_buffer_size = 16384},
        {0},
    };
    struct engine e = {.run = run, .interrupted = interrupted};
    the_engine = &e;
    lws_set_log_level(LLL_ERR, NULL);
    struct lws_context_creation_info info = {
        .port = CONTEXT_PORT_NO_LISTEN,
        .protocols = protocols,
        .fd_limit_per_thread = run->o.connections + 64,
        .timeout_secs = 30,
        .connect_timeout_secs = 30,
    };
    e.lws = lws_create_context(&info);
    if (!e.lws) {
        return -ENOMEM;
    }
    lws_sul_schedule(e.lws, 0, &e.tick, on_tick, 1);
    while (run->phase != WB_DONE) {
        if (lws_service(e.lws, 0) < 0) {
            break;
        }
        if (*interrupted && run->phase != WB_DONE) {
            wb_tick(run, true);
        }
    }
    lws_context_destroy(e.lws);
    the_engine = NULL;
    return 0;
}
