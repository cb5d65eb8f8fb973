/* model/model_snapshot.c - the model's state on request: every match actor
 * answers with a snapshot (for the admin API, tests and tools). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"
#include "model/model_impl.h"

/*
 * DESIGN
 * The state lives in the match actors and nowhere else, so a view of the
 * whole model is a question to each of them. Every request is answered
 * exactly once: by its match actor, or by the request's free when the
 * actor ended first (or its mailbox was full), with no update. So the
 * asker counts answers instead of watching actors. model_snapshot_json()
 * gives a plain thread the same view: a short-lived collector actor asks,
 * counts and ends, and the caller waits for its end.
 */

#define COLLECT_MAILBOX (1u << 30) /* replies are never refused */

/* ---- requests ------------------------------------------------------------ */

/* Sends @reply_to an answer holding @up (may be NULL), outside any actor's
 * flow control: a full mailbox drops it (the asker's documented bound). */
static void answer(uint64_t reply_to, struct update *up)
{
    struct model_update_msg *m =
        model_update_msg_new(up, NULL, 0, MODEL_APPLIED);
    if (m) {
        actor_send_or_free(NULL, reply_to, &m->hdr);
    }
}

static void snapshot_msg_free(struct actor_msg *msg)
{
    struct model__snapshot_msg *r =
        container_of(msg, struct model__snapshot_msg, hdr);
    if (!r->answered) {
        answer(r->reply_to, NULL);
    }
    free(r);
}

struct ask {
    uint64_t reply_to;
    int asked;
    int err;
};

static void ask_one(const struct actor_info *info, void *arg)
{
    struct ask *a = arg;
    if (a->err || info->kind != model__match_ops.name ||
        strncmp(info->name, MODEL__NAME_PREFIX,
                sizeof(MODEL__NAME_PREFIX) - 1) != 0) {
        return;
    }
    struct model__snapshot_msg *r =
        actor_msg_new(sizeof(*r), MODEL_MSG_SNAPSHOT);
    if (!r) {
        a->err = -ENOMEM;
        return;
    }
    r->hdr.free = snapshot_msg_free;
    r->reply_to = a->reply_to;
    a->asked++;
    /* A refused request answers through its free: still one answer. */
    actor_send_or_free(NULL, info->pid, &r->hdr);
}

int model_snapshot_all(struct actor_ctx *ctx, uint64_t reply_to)
{
    (void)ctx; /* requests bypass flow control: each is answered once */
    struct ask a = {.reply_to = reply_to};
    actor_foreach(ask_one, &a);
    return a.err ? a.err : a.asked;
}

void model__snapshot_answer(struct actor_msg *msg, struct update *up)
{
    struct model__snapshot_msg *r =
        container_of(msg, struct model__snapshot_msg, hdr);
    r->answered = true;
    answer(r->reply_to, up);
}

/* ---- the collector ------------------------------------------------------- */

/* Shared by the caller and the collector actor: the collector writes while
 * it lives, the caller reads once it has ended (actor_wait orders the
 * two). */
struct collect {
    uint32_t timeout_ms;
    int expected; /* answers to wait for; -1 until asked */
    int answered;
    bool timed_out;
    int err;
    struct match_image **images; /* owned references */
    size_t n, cap;
};

static int collect_init(struct actor_ctx *ctx, void *arg, void **state)
{
    struct collect *c = arg;
    *state = c;
    c->expected = model_snapshot_all(ctx, actor_self(ctx));
    if (c->expected <= 0) {
        c->err = c->expected < 0 ? c->expected : 0;
        actor_exit_self(ctx, ACTOR_EXIT_NORMAL);
        return 0;
    }
    struct actor_msg *t = actor_msg_new(sizeof(*t), MODEL__MSG_STOP);
    if (!t || !actor_send_after(ctx, c->timeout_ms, t)) {
        c->err = -ENOMEM;
        actor_exit_self(ctx, ACTOR_EXIT_NORMAL);
    }
    return 0;
}

static int collect_update(struct actor_ctx *ctx, struct collect *c,
                          struct model_update_msg *m)
{
    if (m->up && m->up->image) {
        if (c->n == c->cap) {
            size_t cap = c->cap ? c->cap * 2 : 64;
            struct match_image **v = realloc(c->images, cap * sizeof(*v));
            if (!v) {
                c->err = -ENOMEM;
                actor_exit_self(ctx, ACTOR_EXIT_NORMAL);
                return 0;
            }
            c->images = v;
            c->cap = cap;
        }
        c->images[c->n++] = match_image_ref(m->up->image);
    }
    if (++c->answered == c->expected) {
        actor_exit_self(ctx, ACTOR_EXIT_NORMAL);
    }
    return 0;
}

static int collect_handle(struct actor_ctx *ctx, void *state,
                          struct actor_msg *msg)
{
    struct collect *c = state;
    switch (msg->type) {
    case MODEL_MSG_UPDATE:
        return collect_update(ctx, c, (struct model_update_msg *)msg);
    case MODEL__MSG_STOP:
        c->timed_out = true;
        actor_exit_self(ctx, ACTOR_EXIT_NORMAL);
        return 0;
    default:
        return -EINVAL;
    }
}

static const struct actor_ops collect_ops = {
    .name = "model.snapshot",
    .init = collect_init,
    .handle = collect_handle,
};

static int by_id(const void *a, const void *b)
{
    const struct match_image *x = *(const struct match_image *const *)a;
    const struct match_image *y = *(const struct match_image *const *)b;
    return strcmp(x->id, y->id);
}

int model_snapshot_json(struct actor_buf *out, uint32_t timeout_ms)
{
    struct collect *c = calloc(1, sizeof(*c));
    if (!c) {
        return -ENOMEM;
    }
    c->timeout_ms = timeout_ms;
    c->expected = -1;
    const struct actor_spawn how = {
        .ops = &collect_ops, .arg = c, .mailbox = COLLECT_MAILBOX};
    uint64_t pid;
    int rc = actor_spawn(&how, &pid);
    if (rc != 0) {
        goto out_free;
    }
    struct actor_exit why;
    actor_wait(pid, ACTOR_INFINITY, &why);
    if (actor_exit_is_abnormal(&why)) {
        rc = why.err ? why.err : -ENOMEM;
        goto out_free;
    }
    rc = c->err ? c->err : c->timed_out ? -ETIMEDOUT : 0;
    if (rc != 0) {
        goto out_free;
    }
    if (c->n > 1) { /* no matches: images is NULL */
        qsort(c->images, c->n, sizeof(c->images[0]), by_id);
    }
    size_t mark = out->len;
    actor_buf_char(out, '[');
    for (size_t k = 0; k < c->n; k++) {
        if (k > 0) {
            actor_buf_char(out, ',');
        }
        match_image_json(c->images[k], out);
    }
    actor_buf_char(out, ']');
    if (out->err) {
        rc = out->err;
        out->len = mark;
    }
out_free:
    for (size_t k = 0; k < c->n; k++) {
        match_image_unref(c->images[k]);
    }
    free(c->images);
    free(c);
    return rc;
}
