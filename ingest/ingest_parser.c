/* ingest/ingest_parser.c - the parser actor: parses one connection's
 * documents on the scheduler pool, in order, and hands them back. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ingest/ingest_impl.h"

/*
 * DESIGN
 * Each conn has its own parser actor, spawned linked to it, so the expat
 * parser and its scratch belong to one connection (no sharing, no locks)
 * and a huge or slow document occupies one scheduler turn of this actor,
 * never the conn's or another connection's. The document message makes
 * the round trip: it comes in with the bytes, goes back with the result
 * in it. Replies go to whoever sent the document (the conn), in order; the
 * conn bounds what it has in flight, so the parser's queue stays short.
 */

static void doc_msg_free(struct actor_msg *msg)
{
    struct ingest__doc_msg *m = (struct ingest__doc_msg *)msg;
    ingest__result_release(&m->res);
    ingest__free(m);
}

struct ingest__doc_msg *ingest__doc_msg_new(const struct ingest__frame *frame,
                                            bool truncated, const char *source)
{
    struct ingest__doc_msg *m = ingest__malloc(sizeof(*m) + frame->len);
    if (!m) {
        return NULL;
    }
    memset(m, 0, sizeof(*m));
    m->hdr.type = INGEST_MSG_DOC;
    m->hdr.free = doc_msg_free;
    m->received_ms = frame->received_ms;
    m->size = frame->size;
    m->truncated = truncated;
    if (source) {
        size_t n = strlen(source);
        ACTOR_ASSERT(n <= INGEST_SOURCE_MAX);
        memcpy(m->source, source, n + 1);
    }
    m->len = frame->len;
    memcpy(m->data, frame->data, frame->len);
    return m;
}

struct parser {
    struct ingest__parser *p;
    struct ingest__outbox out; /* replies the conn's mailbox had no room
                                  for */
};

static int parser_init(struct actor_ctx *ctx, void *arg, void **state)
{
    (void)ctx;
    const struct ingest__env *env = arg;
    struct parser *w = calloc(1, sizeof(*w));
    if (!w) {
        return -ENOMEM;
    }
    struct ingest__limits lim = {.doc_max = env->cfg.doc_limit};
    w->p = ingest__parser_new(&lim);
    if (!w->p) {
        free(w);
        return -ENOMEM;
    }
    ingest__outbox_init(&w->out);
    *state = w;
    return 0;
}

static int on_doc(struct actor_ctx *ctx, struct parser *w,
                  struct ingest__doc_msg *m)
{
    struct ingest__doc doc = {
        .data = m->data,
        .len = m->len,
        .received_ms = m->received_ms,
        .source = m->source[0] ? m->source : NULL,
        .truncated = m->truncated,
    };
    int rc = ingest__parse(w->p, &doc, &m->res);
    if (rc < 0) {
        return rc; /* out of memory: we and our conn end */
    }
    uint64_t conn = m->hdr.from;
    m->hdr.type = INGEST_MSG_PARSED;
    rc = ingest__outbox_send(ctx, &w->out, conn, &m->hdr);
    return rc < 0 ? rc : ACTOR_KEPT;
}

static int parser_handle(struct actor_ctx *ctx, void *state,
                         struct actor_msg *msg)
{
    struct parser *w = state;
    switch (msg->type) {
    case INGEST_MSG_DOC:
        return on_doc(ctx, w, (struct ingest__doc_msg *)msg);
    case ACTOR_MSG_RESUME:
        ingest__outbox_flush(ctx, &w->out);
        return 0;
    default:
        return -EINVAL;
    }
}

static void parser_stop(struct actor_ctx *ctx, void *state,
                        const struct actor_exit *why)
{
    (void)ctx;
    (void)why;
    struct parser *w = state;
    ingest__outbox_release(&w->out);
    ingest__parser_free(w->p);
    free(w);
}

const struct actor_ops ingest__parser_ops = {
    .name = "ingest.parser",
    .init = parser_init,
    .handle = parser_handle,
    .stop = parser_stop,
};
