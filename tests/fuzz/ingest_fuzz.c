/* tests/fuzz/ingest_fuzz.c - libFuzzer target for the framer and the
 * parser: split invariance, byte accounting, stream == lone parse, and the
 * limits every event must keep. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actor/actor.h"
#include "ingest/event.h"
#include "ingest/ingest_impl.h"
#include "tests/fuzz/fuzz_check.h"
#include "tests/ingest_test_util.h"

/*
 * The first three bytes choose the run: byte 0 the document limit (64,
 * 512, 4096 bytes or the default), whether the connection is bound to a
 * source, and whether parses also run short of memory; bytes 1-2 seed the
 * sizes of the reads the rest is cut into.
 * The stream is framed twice, whole and in those reads, and the two
 * transcripts must match to the byte. Every document is parsed twice, in
 * the stream and alone, and the results must match to the letter.
 */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct run {
    struct actor_buf frames; /* transcript of what the framer said */
    int rc;                  /* its last status */
};

/* Frames @s whole (@split false) or in reads of random sizes. */
static void frame_all(const char *s, size_t n, size_t doc_max, bool split,
                      unsigned max_log2, struct run *out)
{
    struct ingest__framer f;
    struct ingest__frame fr;
    int rc = 0;

    CHECK(ingest__frame_init(&f, doc_max) == 0);
    actor_buf_reset(&out->frames);
    size_t at = 0;
    do {
        size_t len = n - at;
        if (split) {
            size_t want = 1 + trng() % ((size_t)1 << (trng() % max_log2));
            len = want < len ? want : len;
        }
        ingest__frame_input(&f, s + at, len, (int64_t)at);
        while ((rc = ingest__frame_next(&f, &fr)) > 0) {
            CHECK(fr.len > 0 && fr.data[0] == '<');
            if (rc == INGEST__FRAME_DOC) {
                CHECK(fr.len == fr.size && fr.size <= f.doc_max);
                CHECK(fr.data[fr.len - 1] == '>');
            } else {
                CHECK(rc == INGEST__FRAME_TOO_LARGE);
                CHECK(fr.size > f.doc_max && fr.len == f.keep);
            }
            actor_buf_printf(&out->frames, "K%d S%zu L%zu:", rc, fr.size,
                             fr.len);
            actor_buf_add(&out->frames, fr.data, fr.len);
            actor_buf_char(&out->frames, '\n');
        }
        at += len;
    } while (rc >= 0 && at < n);
    const struct ingest__frame_stats *st = &f.stats;
    size_t pending = ingest__frame_pending(&f);
    CHECK(st->bytes == st->docs_bytes + st->oversize_bytes + st->junk_bytes +
                           st->space_bytes + pending);
    CHECK(rc < 0 || st->bytes == n);
    CHECK(rc == 0 || rc == -EMSGSIZE);
    /* a runaway is a document open at exactly four times the limit */
    CHECK((rc == -EMSGSIZE) == (pending == f.doc_max * INGEST_RUNAWAY_FACTOR));
    CHECK(pending <= f.doc_max * INGEST_RUNAWAY_FACTOR);
    actor_buf_printf(&out->frames,
                     "rc=%d bytes=%llu junk=%llu space=%llu "
                     "pending=%zu\n",
                     rc, (unsigned long long)st->bytes,
                     (unsigned long long)st->junk_bytes,
                     (unsigned long long)st->space_bytes, pending);
    CHECK(out->frames.err == 0);
    out->rc = rc;
    ingest__frame_release(&f);
}

static void check_string(const char *s, const struct event *ev, size_t max)
{
    if (!s) {
        return;
    }
    const char *lo = (const char *)ev, *hi = lo + ev->size;
    CHECK(s > lo && s < hi);
    size_t len = strnlen(s, (size_t)(hi - s));
    CHECK(len < (size_t)(hi - s) && len <= max);
}

/* Checks what section 3 and our limits promise of every event. */
static void check_event(const struct event *ev, const char *doc, size_t len,
                        const struct ingest__limits *lim)
{
    CHECK(atomic_load(&ev->refs) == 1);
    CHECK(ev->source &&
          ingest__source_is_valid(ev->source, strlen(ev->source)));
    check_string(ev->source, ev, INGEST_SOURCE_MAX);
    CHECK(ev->seq >= 1 && ev->seq <= (uint64_t)INT64_MAX);
    CHECK((ev->sent == NULL) == (ev->sent_ms == EVENT_ABSENT));
    check_string(ev->sent, ev, lim->value_max);
    CHECK(ev->raw_len == len && memcmp(ev->raw, doc, len) == 0);
    CHECK(ev->raw[len] == '\0');
    for (uint32_t i = 0; i < ev->n_matches; i++) {
        const struct event_match *m = &ev->matches[i];
        CHECK(m->id && m->id[0] != '\0');
        check_string(m->id, ev, EVENT_ID_MAX);
        check_string(m->fixture.sport, ev, lim->value_max);
        check_string(m->fixture.competition, ev, lim->value_max);
        check_string(m->fixture.home, ev, lim->value_max);
        check_string(m->fixture.away, ev, lim->value_max);
        check_string(m->fixture.start, ev, lim->value_max);
        check_string(m->phase, ev, lim->value_max);
        CHECK(m->parts < 16);
        CHECK(m->clock_seconds == EVENT_ABSENT || m->clock_seconds >= 0);
        CHECK(m->clock_running == EVENT_ABSENT || m->clock_running == 0 ||
              m->clock_running == 1);
        CHECK((m->n_incidents == 0) == (m->incidents == NULL));
        for (uint32_t k = 0; k < m->n_incidents; k++) {
            const struct event_incident *in = &m->incidents[k];
            CHECK(in->id && in->id[0] != '\0');
            check_string(in->id, ev, EVENT_ID_MAX);
            check_string(in->type, ev, lim->value_max);
            check_string(in->player, ev, lim->value_max);
            check_string(in->assist, ev, lim->value_max);
            CHECK(in->minute == EVENT_ABSENT || in->minute >= 0);
            CHECK(in->stoppage == EVENT_ABSENT || in->stoppage >= 0);
            CHECK(in->team >= EVENT_TEAM_NONE && in->team <= EVENT_TEAM_AWAY);
            CHECK(in->confirmed == EVENT_ABSENT || in->confirmed == 0 ||
                  in->confirmed == 1);
            CHECK(in->action <= EVENT_ACTION_DELETE);
        }
    }
}

/* Parses one frame with both parsers; the results must be the same. With
 * @starve, parses it once more in the stream with one of its first
 * allocations failing: out of memory, or the same result again. */
static void parse_frame(struct ingest__parser *stream,
                        struct ingest__parser *alone,
                        const struct ingest__limits *lim, const char *doc,
                        size_t len, bool truncated, const char *source,
                        bool starve)
{
    struct ingest__doc d = {.data = doc,
                            .len = len,
                            .received_ms = 7,
                            .source = source,
                            .truncated = truncated};
    struct ingest__result r1, r2;
    static struct actor_buf d1, d2;

    CHECK(ingest__parse(stream, &d, &r1) == 0);
    CHECK(ingest__parse(alone, &d, &r2) == 0);
    actor_buf_reset(&d1);
    actor_buf_reset(&d2);
    tdump_result(&d1, &r1);
    tdump_result(&d2, &r2);
    if (d1.len != d2.len || memcmp(d1.data, d2.data, d1.len) != 0) {
        fprintf(stderr, "stream:\n%s\nalone:\n%s\n", d1.data, d2.data);
        abort();
    }
    CHECK(r1.kind >= INGEST__DOC_LOGIN && r1.kind <= INGEST__DOC_REJECTED);
    CHECK((r1.kind == INGEST__DOC_EVENT) == (r1.event != NULL));
    if (r1.kind == INGEST__DOC_REJECTED) {
        CHECK(r1.reason > INGEST__REASON_NONE &&
              r1.reason < INGEST__REASON_COUNT);
        CHECK(r1.detail[0] != '\0');
        CHECK(!truncated || r1.reason == INGEST__REASON_TOO_LARGE);
    } else {
        CHECK(r1.reason == INGEST__REASON_NONE && !truncated);
    }
    if (r1.event) {
        CHECK(r1.seq == r1.event->seq);
        check_event(r1.event, doc, len, lim);
    }
    if (r1.kind == INGEST__DOC_LOGIN) {
        CHECK(
            ingest__source_is_valid(r1.login.source, strlen(r1.login.source)));
    }
    ingest__result_release(&r1);
    ingest__result_release(&r2);
    if (starve) {
        tmem.fail_at = tmem.allocs + 1 + trng() % 6;
        int rc = ingest__parse(stream, &d, &r1);
        tmem.fail_at = 0;
        if (rc == 0) {
            actor_buf_reset(&d1);
            tdump_result(&d1, &r1);
            if (d1.len != d2.len || memcmp(d1.data, d2.data, d1.len) != 0) {
                fprintf(stderr, "starved:\n%s\nalone:\n%s\n", d1.data, d2.data);
                abort();
            }
            ingest__result_release(&r1);
        } else {
            CHECK(rc == -ENOMEM && r1.event == NULL);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const size_t limits[] = {64, 512, 4096, 0};
    static struct run whole, split;

    if (size < 3) {
        return 0;
    }
    size_t doc_max = limits[data[0] & 3];
    const char *source = data[0] & 4 ? "feed-eu-1" : NULL;
    trng_state = 0x9e3779b97f4a7c15ull ^ ((uint64_t)data[1] << 8 | data[2]);
    const char *s = (const char *)data + 3;
    size_t n = size - 3;

    /* framing: the same transcript however the stream is cut */
    frame_all(s, n, doc_max, false, 1, &whole);
    for (unsigned max_log2 = 1; max_log2 <= 12; max_log2 += 5) {
        frame_all(s, n, doc_max, true, max_log2, &split);
        if (whole.frames.len != split.frames.len ||
            memcmp(whole.frames.data, split.frames.data, whole.frames.len) !=
                0) {
            fprintf(stderr, "whole:\n%s\nsplit:\n%s\n", whole.frames.data,
                    split.frames.data);
            abort();
        }
    }

    /* parsing: every framed document, in the stream and alone; with
     * starve, through the counting allocator, which fails now and then */
    bool starve = data[0] & 8;
    if (starve) {
        tmem_start();
    }
    struct ingest__limits lim = {.doc_max = doc_max ? doc_max
                                                    : INGEST_DOC_MAX_DEFAULT};
    lim.value_max = lim.doc_max < INGEST_VALUE_MAX ? (uint32_t)lim.doc_max
                                                   : INGEST_VALUE_MAX;
    lim.standalone = false;
    struct ingest__parser *stream = ingest__parser_new(&lim);
    lim.standalone = true;
    struct ingest__parser *alone = ingest__parser_new(&lim);
    CHECK(stream && alone);
    struct ingest__framer f;
    struct ingest__frame fr;
    int rc;
    CHECK(ingest__frame_init(&f, doc_max) == 0);
    ingest__frame_input(&f, s, n, 0);
    while ((rc = ingest__frame_next(&f, &fr)) > 0) {
        parse_frame(stream, alone, &lim, fr.data, fr.len,
                    rc == INGEST__FRAME_TOO_LARGE, source, starve);
    }
    /* and the raw input as one document, framed or not */
    if (n <= lim.doc_max) {
        parse_frame(stream, alone, &lim, s, n, false, source, starve);
    }
    ingest__frame_release(&f);
    ingest__parser_free(stream);
    ingest__parser_free(alone);
    if (starve) {
        CHECK(tmem.live == 0); /* nothing leaked, whatever failed */
        tmem_stop();
    }
    return 0;
}
