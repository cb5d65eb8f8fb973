/* notify/notify_proto.c - client messages of ws-protocol.md: parsing
 * `subscribe`, `unsubscribe` and `ping`, and the `error` reply. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingest/event.h"
#include "notify/notify_impl.h"

#define PING_ID_MAX 64 /* bytes of the raw JSON of a ping's id */

int notify__req_init(struct notify__req *req, size_t max_len)
{
    *req = (struct notify__req){.max_len = max_len};
    /* Every token takes at least one byte of text; every decoded string is
     * no longer than its source plus a NUL, and strings and ids number at
     * most one per two bytes. */
    req->max_toks = (uint32_t)max_len + 1;
    req->toks = notify__calloc(req->max_toks, sizeof(*req->toks));
    req->arena_cap = max_len * 2 + 2;
    req->arena = notify__malloc(req->arena_cap);
    size_t max_items = max_len / 2 + 1;
    req->ids = notify__calloc(max_items, sizeof(*req->ids));
    req->since = notify__calloc(max_items, sizeof(*req->since));
    if (!req->toks || !req->arena || !req->ids || !req->since) {
        return -ENOMEM;
    }
    return 0;
}

void notify__req_release(struct notify__req *req)
{
    free(req->toks);
    free(req->arena);
    free(req->ids);
    free(req->since);
    *req = (struct notify__req){0};
}

/* Length of @s without a trailing incomplete UTF-8 sequence. */
static size_t utf8_whole(const char *s, size_t len)
{
    size_t i = len;
    while (i > 0 && ((unsigned char)s[i - 1] & 0xc0) == 0x80) {
        i--;
    }
    if (i == 0) {
        return len;
    }
    unsigned char lead = (unsigned char)s[i - 1];
    size_t want = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
    return len - (i - 1) >= want ? len : i - 1;
}

__attribute__((format(printf, 3, 4))) static int
fail(struct notify__err *err, const char *reason, const char *fmt, ...)
{
    err->reason = reason;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(err->detail, sizeof(err->detail), fmt, ap);
    va_end(ap);
    /* Truncation may cut a character of client text in two. */
    if (n >= (int)sizeof(err->detail)) {
        size_t len = sizeof(err->detail) - 1;
        err->detail[utf8_whole(err->detail, len)] = '\0';
    }
    return -EINVAL;
}

/*
 * Decodes string token @t into the arena as a match id (1 to EVENT_ID_MAX
 * bytes). Returns it, or NULL when it is not a valid id.
 */
static const char *arena_id(struct notify__req *req, const char *text,
                            const struct notify_json_tok *t)
{
    size_t room = req->arena_cap - req->arena_used;
    size_t cap = room < EVENT_ID_MAX + 1 ? room : EVENT_ID_MAX + 1;
    char *out = req->arena + req->arena_used;
    size_t n;
    if (t->type != NOTIFY_JSON_STRING ||
        notify_json_str(text, t, out, cap, &n) != 0 || n == 0 ||
        memchr(out, '\0', n)) {
        return NULL;
    }
    req->arena_used += n + 1;
    return out;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int cmp_since(const void *a, const void *b)
{
    return strcmp(((const struct notify__since *)a)->id,
                  ((const struct notify__since *)b)->id);
}

static int parse_matches(struct notify__req *req, const char *text, uint32_t v,
                         struct notify__err *err)
{
    const struct notify_json_tok *toks = req->toks;
    if (toks[v].type == NOTIFY_JSON_STRING) {
        if (!notify_json_eq(text, &toks[v], "*")) {
            return fail(err, "malformed", "matches: \"*\" or a list of ids");
        }
        req->all = true;
        return 0;
    }
    if (toks[v].type != NOTIFY_JSON_ARRAY) {
        return fail(err, "malformed", "matches: \"*\" or a list of ids");
    }
    uint32_t i = v + 1;
    for (uint32_t k = 0; k < toks[v].size; k++, i = toks[i].next) {
        const char *id = arena_id(req, text, &toks[i]);
        if (!id) {
            return fail(err, "malformed", "matches[%u]: an id of 1 to %d bytes",
                        k, EVENT_ID_MAX);
        }
        if (strcmp(id, "*") == 0) {
            return fail(err, "malformed", "matches: \"*\" stands alone");
        }
        req->ids[req->n_ids++] = id;
    }
    /* Duplicates would count twice against the subscription limit. */
    qsort(req->ids, req->n_ids, sizeof(*req->ids), cmp_str);
    uint32_t out = 0;
    for (uint32_t k = 0; k < req->n_ids; k++) {
        if (out == 0 || strcmp(req->ids[out - 1], req->ids[k]) != 0) {
            req->ids[out++] = req->ids[k];
        }
    }
    req->n_ids = out;
    return 0;
}

static int parse_since(struct notify__req *req, const char *text, uint32_t v,
                       struct notify__err *err)
{
    const struct notify_json_tok *toks = req->toks;
    if (toks[v].type != NOTIFY_JSON_OBJECT) {
        return fail(err, "malformed", "since: an object of id: version");
    }
    uint32_t i = v + 1;
    for (uint32_t k = 0; k < toks[v].size; k++) {
        const char *id = arena_id(req, text, &toks[i]);
        if (!id) {
            return fail(err, "malformed", "since: an id of 1 to %d bytes",
                        EVENT_ID_MAX);
        }
        uint64_t ver;
        if (notify_json_u64(text, &toks[i + 1], &ver) != 0) {
            return fail(err, "malformed", "since[%s]: a version >= 0", id);
        }
        req->since[req->n_since++] = (struct notify__since){id, ver};
        i = toks[i + 1].next;
    }
    /* Sorted, for the hub's lookups; an id twice would resume its match
     * twice (its deltas sent again). */
    qsort(req->since, req->n_since, sizeof(*req->since), cmp_since);
    for (uint32_t k = 1; k < req->n_since; k++) {
        if (strcmp(req->since[k - 1].id, req->since[k].id) == 0) {
            return fail(err, "malformed", "since: %s twice", req->since[k].id);
        }
    }
    return 0;
}

static int parse_ping_id(struct notify__req *req, const char *text, uint32_t v,
                         struct notify__err *err)
{
    const struct notify_json_tok *t = &req->toks[v];
    if (t->type == NOTIFY_JSON_OBJECT || t->type == NOTIFY_JSON_ARRAY) {
        return fail(err, "malformed", "id: a number or a string");
    }
    /* Strings are echoed with their quotes, exactly as sent (valid JSON). */
    size_t start = t->start, len = t->len;
    if (t->type == NOTIFY_JSON_STRING) {
        start--;
        len += 2;
    }
    if (len > PING_ID_MAX) {
        return fail(err, "malformed", "id: at most %d bytes", PING_ID_MAX);
    }
    req->ping_id = text + start;
    req->ping_id_len = len;
    return 0;
}

int notify__req_parse(struct notify__req *req, const char *text, size_t len,
                      struct notify__err *err)
{
    req->all = false;
    req->n_ids = 0;
    req->n_since = 0;
    req->ping_id = NULL;
    req->ping_id_len = 0;
    req->arena_used = 0;

    if (len > req->max_len) {
        return fail(err, "malformed", "message over %zu bytes", req->max_len);
    }
    size_t where = 0;
    int n = notify_json_parse(text, len, req->toks, req->max_toks, &where);
    if (n < 0) {
        return fail(err, "malformed", "invalid JSON at byte %zu", where);
    }
    const struct notify_json_tok *toks = req->toks;
    if (toks[0].type != NOTIFY_JSON_OBJECT) {
        return fail(err, "malformed", "a message is a JSON object");
    }

    /* One pass over the members: known keys once each, others ignored
     * (newer clients may send more). */
    uint32_t op = 0, matches = 0, since = 0, id = 0;
    uint32_t i = 1;
    for (uint32_t k = 0; k < toks[0].size; k++, i = toks[i + 1].next) {
        uint32_t *slot = NULL;
        if (notify_json_eq(text, &toks[i], "op")) {
            slot = &op;
        } else if (notify_json_eq(text, &toks[i], "matches")) {
            slot = &matches;
        } else if (notify_json_eq(text, &toks[i], "since")) {
            slot = &since;
        } else if (notify_json_eq(text, &toks[i], "id")) {
            slot = &id;
        } else {
            continue;
        }
        if (*slot) {
            return fail(err, "malformed", "duplicate key %.*s",
                        (int)toks[i].len, text + toks[i].start);
        }
        *slot = i + 1;
    }

    if (!op || toks[op].type != NOTIFY_JSON_STRING) {
        return fail(err, "malformed", "op: a string is required");
    }
    if (notify_json_eq(text, &toks[op], "ping")) {
        req->op = NOTIFY__OP_PING;
        return id ? parse_ping_id(req, text, id, err) : 0;
    }
    if (notify_json_eq(text, &toks[op], "subscribe")) {
        req->op = NOTIFY__OP_SUBSCRIBE;
    } else if (notify_json_eq(text, &toks[op], "unsubscribe")) {
        req->op = NOTIFY__OP_UNSUBSCRIBE;
    } else {
        /* The op is valid UTF-8 (the tokenizer checked), so its bytes
         * may be echoed; fail() keeps a cut at a character boundary. */
        return fail(err, "unknown_op", "%.*s", (int)toks[op].len,
                    text + toks[op].start);
    }
    if (!matches) {
        return fail(err, "malformed", "matches: required");
    }
    int rc = parse_matches(req, text, matches, err);
    if (rc == 0 && since && req->op == NOTIFY__OP_SUBSCRIBE) {
        rc = parse_since(req, text, since, err);
    }
    return rc;
}

void notify__err_json(const struct notify__err *err, struct actor_buf *out)
{
    actor_buf_str(out, "{\"type\":\"error\",\"reason\":");
    actor_buf_json_str(out, err->reason, strlen(err->reason));
    actor_buf_str(out, ",\"detail\":");
    actor_buf_json_str(out, err->detail, strlen(err->detail));
    actor_buf_char(out, '}');
}
