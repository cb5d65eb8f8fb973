/* tests/fuzz/notify_client_fuzz.c - libFuzzer target: whatever a WebSocket
 * client sends, the tokenizer and the request parser stay in bounds, and
 * every error reply is valid JSON (so valid UTF-8 for the browser). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The fuzz build links ingest/ and actor/ only: take notify's parsing
 * files in whole. */
#include "notify/notify_json.c"
#include "notify/notify_out.c"
#include "notify/notify_proto.c"

#define MAX_IN 4096

static void check_tokens(const char *text, size_t len,
                         const struct notify_json_tok *t, int n)
{
    for (int i = 0; i < n; i++) {
        if (t[i].next <= (uint32_t)i || t[i].next > (uint32_t)n ||
            (size_t)t[i].start + t[i].len > len) {
            abort();
        }
        if (t[i].type == NOTIFY_JSON_STRING) {
            char out[MAX_IN + 1];
            size_t got;
            if (notify_json_str(text, &t[i], out, sizeof(out), &got) != 0 ||
                got > t[i].len) {
                abort();
            }
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct notify__req req;
    static struct notify_json_tok toks[MAX_IN + 1];
    static bool ready;
    if (!ready) {
        if (notify__req_init(&req, MAX_IN) != 0) {
            abort();
        }
        ready = true;
    }
    if (size > MAX_IN) {
        return 0;
    }
    const char *text = (const char *)data;
    int n = notify_json_parse(text, size, toks, MAX_IN + 1, NULL);
    if (n > 0) {
        check_tokens(text, size, toks, n);
    }

    struct notify__err err;
    if (notify__req_parse(&req, text, size, &err) == 0) {
        for (uint32_t i = 0; i < req.n_ids; i++) {
            size_t l = strlen(req.ids[i]);
            if (l == 0 || l > 64) {
                abort();
            }
        }
        for (uint32_t i = 0; i < req.n_since; i++) {
            if (strlen(req.since[i].id) == 0) {
                abort();
            }
        }
        return 0;
    }
    /* The reply must itself be strict JSON. */
    struct actor_buf b;
    actor_buf_init(&b);
    notify__err_json(&err, &b);
    if (b.err ||
        notify_json_parse(b.data, b.len, toks, MAX_IN + 1, NULL) <= 0) {
        abort();
    }
    actor_buf_release(&b);
    return 0;
}
