/* tools/top/top_draw.c - one frame of scorewire-top: a header of counters
 * and stage rates, the kinds of actors, then the busiest actors, fitted to
 * the terminal; ANSI for the full-screen view, plain text for --once. */

/*
 * DESIGN
 * Each line is built in full, then emitted through one function that
 * replaces control characters (names come from the daemon: an escape
 * sequence in an actor's name must not reach the terminal), cuts the line
 * at the terminal's width in characters, and adds the line's style. The
 * frame is drawn over the previous one (cursor home, clear to the end of
 * each line, clear below), written in one go: no flicker, no scrolling.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "actor/actor.h"
#include "tools/top/top.h"

#define STYLE_TITLE "\x1b[7m"    /* reverse */
#define STYLE_HEAD  "\x1b[1;7m"  /* bold reverse: a table's header */
#define STYLE_DOWN  "\x1b[1;31m" /* bold red */
#define STYLE_BUSY  "\x1b[1m"    /* bold: an actor with a queue */
#define STYLE_NONE  ""

struct frame {
    struct actor_buf *out;
    const struct top_screen *scr;
    int used;              /* lines emitted */
    struct actor_buf line; /* the line being built */
};

static bool full(const struct frame *f)
{
    return f->scr->rows > 0 && f->used >= f->scr->rows;
}

/* Appends @s (UTF-8, validated by the parsers) to @out with controls
 * replaced, at most @max characters (-1: all). Returns characters. */
static int clean(struct actor_buf *out, const char *s, size_t len, int max)
{
    int chars = 0;
    for (size_t i = 0; i < len && (max < 0 || chars < max);) {
        unsigned char c = (unsigned char)s[i];
        size_t n = c < 0x80 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
        if (i + n > len) {
            break;
        }
        /* C0, DEL and C1 (U+0080-U+009F is 0xc2 0x80-0x9f) */
        if (c < 0x20 || c == 0x7f ||
            (c == 0xc2 && (unsigned char)s[i + 1] < 0xa0)) {
            actor_buf_char(out, '?');
        } else {
            actor_buf_add(out, s + i, n);
        }
        i += n;
        chars++;
    }
    return chars;
}

/* Emits the line built so far in @style; a @bar fills the whole width. */
static void emit(struct frame *f, const char *style, bool bar)
{
    if (full(f)) {
        actor_buf_reset(&f->line);
        return;
    }
    bool ansi = f->scr->ansi;
    while (f->line.len > 0 && f->line.data[f->line.len - 1] == ' ') {
        f->line.len--; /* cells pad on the right; a bar is refilled */
    }
    if (f->used > 0) {
        actor_buf_char(f->out, '\n');
    }
    if (ansi && *style) {
        actor_buf_str(f->out, style);
    }
    int max = f->scr->cols > 0 ? f->scr->cols : -1;
    int chars =
        clean(f->out, f->line.data ? f->line.data : "", f->line.len, max);
    if (ansi && bar) {
        for (; chars < f->scr->cols; chars++) {
            actor_buf_char(f->out, ' ');
        }
    }
    if (ansi) {
        actor_buf_str(f->out, *style ? "\x1b[0m\x1b[K" : "\x1b[K");
    }
    f->used++;
    actor_buf_reset(&f->line);
}

static void add(struct frame *f, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void add(struct frame *f, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    actor_buf_str(&f->line, tmp);
}

/* @s cut or padded to @width characters; right-aligned with @right. */
static void cell(struct frame *f, const char *s, int width, bool right)
{
    int chars = 0;
    for (const char *p = s; *p; p++) {
        chars += ((unsigned char)*p & 0xc0) != 0x80;
    }
    if (right) {
        for (int i = chars; i < width; i++) {
            actor_buf_char(&f->line, ' ');
        }
    }
    chars = clean(&f->line, s, strlen(s), width);
    if (!right) {
        for (; chars < width; chars++) {
            actor_buf_char(&f->line, ' ');
        }
    }
    actor_buf_char(&f->line, ' ');
}

/* ---- numbers ------------------------------------------------------------ */

/* A number in the largest unit it reaches: {below this, divide by this,
 * print so}, the last row catching everything above. */
struct scale {
    double below, div;
    const char *fmt;
};

static const struct scale counts[] = {
    {1e6, 1, "%.0f"}, {1e9, 1e6, "%.2fM"}, {INFINITY, 1e9, "%.2fG"}};
static const struct scale rates[] = {
    {1e3, 1, "%.1f"}, {1e6, 1e3, "%.1fk"}, {INFINITY, 1e6, "%.2fM"}};
static const struct scale durations[] = {
    {1e-3, 1e-6, "%.0f us"}, {1, 1e-3, "%.1f ms"}, {INFINITY, 1, "%.2f s"}};

static const char *human(char out[24], double v, const struct scale *s)
{
    if (isnan(v)) {
        return "-";
    }
    while (!isinf(s->below) && !(fabs(v) < s->below)) {
        s++;
    }
    snprintf(out, 24, s->fmt, v / s->div);
    return out;
}

#define C(v) human((char[24]){0}, (v), counts)
#define R(v) human((char[24]){0}, (v), rates)
#define S(v) human((char[24]){0}, (v), durations)

/* ---- the parts ---------------------------------------------------------- */

static void title(struct frame *f, const struct top_status *st)
{
    const char *state = st->err ? "DOWN" : st->since_ok_ms < 0 ? "..." : "ok";
    add(f, " scorewire-top  %s  %s  every %.1f s", st->admin, st->clock,
        st->interval_ms / 1000.0);
    int pad = f->scr->cols - (int)f->line.len - (int)strlen(state) - 1;
    for (int i = 0; i < pad; i++) {
        actor_buf_char(&f->line, ' ');
    }
    add(f, "%s%s ", pad > 0 ? "" : "  ", state);
    emit(f, STYLE_TITLE, true);
    if (st->err) {
        add(f, "admin endpoint down: %s; retrying every %.1f s; ", st->what,
            st->interval_ms / 1000.0);
        if (st->since_ok_ms < 0) {
            add(f, "never reached");
        } else {
            add(f, "last good poll %lld s ago, figures below are from then",
                (long long)(st->since_ok_ms / 1000));
        }
        emit(f, STYLE_DOWN, false);
    }
}

static void summary(struct frame *f, const struct top_view *v)
{
    add(f,
        "actors %s alive  %s spawned  %s exited  %s crashed  "
        "%s restarts (%s/s)",
        C(v->alive), C(v->spawned), C(v->exited), C(v->crashed), C(v->restarts),
        R(v->restart_rate));
    emit(f, STYLE_NONE, false);
    add(f, "events in %s/s  stored %s/s  rejected %s/s  store backlog %s rows",
        R(v->in_rate), R(v->stored_rate), R(v->rejected_rate), C(v->backlog));
    emit(f, STYLE_NONE, false);
    add(f, "clients %s  ws messages %s/s  feed-to-client p50 %s  p99 %s",
        C(v->clients), R(v->ws_rate), S(v->p50_s), S(v->p99_s));
    emit(f, STYLE_NONE, false);
    add(f, "sources %s live  %s stale  %s offline", C(v->src_live),
        C(v->src_stale), C(v->src_offline));
    emit(f, STYLE_NONE, false);
}

static void kind_table(struct frame *f, const struct top_view *v, int max)
{
    if (v->n_kinds == 0 || max <= 1) {
        return;
    }
    emit(f, STYLE_NONE, false);
    cell(f, "KIND", 20, false);
    cell(f, "ACTORS", 8, true);
    cell(f, "QUEUED", 8, true);
    cell(f, "MAX MBOX", 8, true);
    cell(f, "RESTARTS", 8, true);
    emit(f, STYLE_HEAD, true);
    for (size_t i = 0; i < v->n_kinds && (int)i < max - 1; i++) {
        const struct top_kind *k = &v->kinds[i];
        cell(f, k->kind, 20, false);
        cell(f, C(k->actors), 8, true);
        cell(f, C(k->queued), 8, true);
        cell(f, C(k->max_queued), 8, true);
        cell(f, C(k->restarts), 8, true);
        emit(f, STYLE_NONE, false);
    }
}

static void actor_table(struct frame *f, const struct top_view *v)
{
    if (full(f) || v->n_actors == 0) {
        return;
    }
    emit(f, STYLE_NONE, false);
    /* PID KIND NAME MBOX [CAP] MSG/S RESTARTS [STATE]: the name takes what
     * the other columns leave; CAP and STATE go first when it is narrow */
    int cols = f->scr->cols;
    bool wide = cols <= 0 || cols >= 96;
    int others = 13 + 15 + 8 + 10 + 9 + (wide ? 7 + 9 : 0);
    int name_w = 12;
    if (cols > 0) {
        name_w = cols - others > name_w ? cols - others - 1 : name_w;
    } else {
        for (size_t i = 0; i < v->n_actors; i++) {
            int n = (int)strlen(v->actors[i].name);
            name_w = n > name_w ? (n < 64 ? n : 64) : name_w;
        }
    }
    cell(f, "PID", 12, false);
    cell(f, "KIND", 14, false);
    cell(f, "NAME", name_w, false);
    cell(f, "MBOX", 7, true);
    if (wide) {
        cell(f, "CAP", 6, true);
    }
    cell(f, "MSG/S", 9, true);
    cell(f, "RESTARTS", 8, true);
    if (wide) {
        cell(f, "STATE", 8, false);
    }
    emit(f, STYLE_HEAD, true);
    for (size_t i = 0; i < v->n_actors && !full(f); i++) {
        const struct top_actor *a = &v->actors[i];
        cell(f, a->pid, 12, false);
        cell(f, a->kind, 14, false);
        cell(f, a->name, name_w, false);
        cell(f, C(a->mailbox), 7, true);
        if (wide) {
            cell(f, C(a->capacity), 6, true);
        }
        cell(f, R(a->rate), 9, true);
        cell(f, C(a->restarts), 8, true);
        if (wide) {
            cell(f, a->state, 8, false);
        }
        emit(f, a->mailbox > 0 ? STYLE_BUSY : STYLE_NONE, false);
    }
}

int top_draw(struct actor_buf *out, const struct top_screen *scr,
             const struct top_status *st, const struct top_view *v)
{
    struct frame f = {.out = out, .scr = scr};
    actor_buf_init(&f.line);
    if (scr->ansi) {
        actor_buf_str(out, "\x1b[H");
    }
    title(&f, st);
    summary(&f, v);
    /* kinds get a third of what is left, the actors the rest */
    int left = scr->rows > 0 ? scr->rows - f.used : 1 << 20;
    kind_table(&f, v, left / 3 > 3 ? left / 3 : 3);
    actor_table(&f, v);
    /* full screen: clear below and leave the cursor on the last line, so
     * the terminal never scrolls */
    actor_buf_str(out, scr->ansi ? "\x1b[J" : "\n");
    int err = f.line.err;
    actor_buf_release(&f.line);
    return out->err ? out->err : err;
}
