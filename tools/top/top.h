/* tools/top/top.h - scorewire-top's parts: a strict JSON parser, a
 * Prometheus text parser, a small HTTP/1.1 client, the view computed from
 * two polls and its drawing. main.c wires them to the terminal. */
#ifndef TOOLS_TOP_TOP_H
#define TOOLS_TOP_TOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct actor_buf;

/* ---- an arena: everything a parsed document holds, freed at once ------ */

struct top_arena {
    struct top_arena_chunk *chunks; /* owned, newest first */
    size_t used;                    /* bytes used in the newest chunk */
};

/* Returns @size zeroed bytes, aligned for any type, owned by @a; NULL when
 * out of memory. */
void *top_arena_alloc(struct top_arena *a, size_t size);
/* Frees every chunk; @a is empty and reusable after. Accepts an empty one. */
void top_arena_free(struct top_arena *a);

/* ---- JSON (RFC 8259, strict) ------------------------------------------ */

enum top_json_type {
    TOP_JSON_NULL,
    TOP_JSON_FALSE,
    TOP_JSON_TRUE,
    TOP_JSON_NUMBER,
    TOP_JSON_STRING,
    TOP_JSON_ARRAY,
    TOP_JSON_OBJECT
};

struct top_json {
    enum top_json_type type;
    const char *key; /* member name inside an object, else NULL */
    size_t key_len;
    const char *str; /* decoded string, NUL-terminated (UTF-8) */
    size_t len;      /* string: bytes; array/object: members */
    double num;
    struct top_json *first; /* array/object: first member */
    struct top_json *next;  /* next member of the parent */
};

#define TOP_JSON_DEPTH_MAX 128 /* nesting deeper than this is refused */

struct top_json_doc {
    struct top_arena arena;
    struct top_json *root; /* NULL until a parse succeeds */
    size_t err_at;         /* byte offset of the first error */
};

/*
 * Parses @len bytes of @text as one JSON value (RFC 8259: no comments, no
 * trailing commas, no leading zeros or bare NaN, strings of valid UTF-8
 * without raw control characters, paired surrogates, nothing after the
 * value but whitespace). Duplicate member names are accepted and
 * top_json_get() finds the first, as RFC 8259 allows. Returns 0 with
 * @doc->root set; -EINVAL with @doc->err_at set when the text is not JSON
 * or nests deeper than TOP_JSON_DEPTH_MAX; -ENOMEM. @doc must be zeroed
 * or freed before; release it with top_json_doc_free() in every case.
 */
int top_json_parse(struct top_json_doc *doc, const char *text, size_t len);
void top_json_doc_free(struct top_json_doc *doc);

/* The member @key of object @obj, or NULL (also when @obj is NULL or not
 * an object). Not owned. */
const struct top_json *top_json_get(const struct top_json *obj,
                                    const char *key);
/* @obj's member @key as a number / string / bool, or @def when it is
 * missing or of another type. */
double top_json_num(const struct top_json *obj, const char *key, double def);
const char *top_json_str(const struct top_json *obj, const char *key,
                         const char *def);
bool top_json_bool(const struct top_json *obj, const char *key, bool def);

/* ---- Prometheus text format 0.0.4 ------------------------------------- */

struct top_prom_label {
    const char *name;
    const char *value; /* unescaped */
};

struct top_prom_sample {
    const char *name; /* the series name, with _bucket/_sum/_count */
    struct top_prom_label *labels;
    size_t n_labels;
    double value;
};

struct top_prom {
    struct top_arena arena;
    struct top_prom_sample *v; /* in text order; in the arena */
    size_t n;
    size_t err_line; /* 1-based line of the first error */
};

/*
 * Parses an exposition in Prometheus text format 0.0.4: `# HELP`, `# TYPE`
 * and other comments are skipped; each sample line is `name`, optional
 * `{label="value",...}` (escapes \\ \" \n only; a trailing comma allowed),
 * a value (a float, +Inf, -Inf, NaN) and an optional integer timestamp.
 * Returns 0; -EINVAL with @p->err_line set for a malformed line; -ENOMEM.
 * @p must be zeroed or freed before; release it with top_prom_free() in
 * every case.
 */
int top_prom_parse(struct top_prom *p, const char *text, size_t len);
void top_prom_free(struct top_prom *p);

/* The value of label @name in @s, or NULL. Not owned. */
const char *top_prom_label(const struct top_prom_sample *s, const char *name);

/*
 * Sums the samples named @name whose label @key is @value (@key NULL: every
 * sample of the name). Returns true when at least one matched.
 */
bool top_prom_sum(const struct top_prom *p, const char *name, const char *key,
                  const char *value, double *sum);

#define TOP_HIST_MAX 64 /* buckets kept per histogram */

/* A histogram's cumulative buckets, summed over its label sets. */
struct top_hist {
    double le[TOP_HIST_MAX];    /* ascending upper bounds; last is +Inf */
    double count[TOP_HIST_MAX]; /* cumulative counts */
    size_t n;
};

/*
 * Collects @name's `@name_bucket` series into @h, adding up series that
 * differ only in labels other than `le`. Returns true when the histogram
 * is present with a +Inf bucket and fits TOP_HIST_MAX bounds.
 */
bool top_prom_hist(const struct top_prom *p, const char *name,
                   struct top_hist *h);

/*
 * The @q quantile (0..1) of what was observed between @prev and @cur
 * (bucket deltas), interpolated linearly inside the bucket as Prometheus'
 * histogram_quantile() does; an observation past the last finite bound
 * counts as that bound. NAN when nothing was observed, the buckets differ
 * or a counter went backwards (a restart).
 */
double top_hist_quantile(const struct top_hist *prev,
                         const struct top_hist *cur, double q);

/* The per-second rate of a counter that went from @prev to @cur in @dt_s
 * seconds: after a reset (cur < prev) it counts from 0, as Prometheus
 * does. NAN when @dt_s <= 0 or either value is not finite. */
double top_rate(double prev, double cur, double dt_s);

/* Monotonic milliseconds. */
int64_t top_now_ms(void);

/* ---- HTTP/1.1 GET ------------------------------------------------------ */

#define TOP_HTTP_MORE     1          /* top_http_parse: incomplete, read on */
#define TOP_HTTP_BODY_MAX (64 << 20) /* bytes; a larger reply is refused */

/*
 * Parses the response bytes @raw received so far. With @eof the peer has
 * closed: a body without Content-Length or chunked framing ends there.
 * Returns 0 with the status in *@status and the (de-chunked) body in @body;
 * TOP_HTTP_MORE when more bytes are needed; -EPROTO for a malformed or
 * truncated response; -EMSGSIZE past TOP_HTTP_BODY_MAX; -ENOMEM.
 */
int top_http_parse(const char *raw, size_t len, bool eof, int *status,
                   struct actor_buf *body);

/* Splits "HOST:PORT" or "[V6]:PORT" into @host (of @size bytes) and @port.
 * Returns 0 or -EINVAL. */
int top_http_split_addr(const char *addr, char *host, size_t size, char *port,
                        size_t port_size);

/*
 * GETs http://@host:@port@path with Connection: close and fills @body and
 * *@status. Gives up after @timeout_ms in all (-ETIMEDOUT), or with -EINTR
 * as soon as @cancel_fd (when >= 0) becomes readable. Other returns: 0,
 * a negative errno from the system (-ECONNREFUSED...), -EHOSTUNREACH when
 * the name does not resolve, top_http_parse()'s errors.
 */
int top_http_get(const char *host, const char *port, const char *path,
                 int timeout_ms, int cancel_fd, int *status,
                 struct actor_buf *body);

/* ---- the view: what one screen shows, from two polls ------------------ */

/* One poll of the admin port. */
struct top_poll {
    int64_t at_ms;        /* monotonic, when /metrics arrived */
    int64_t actors_at_ms; /* monotonic, when /actors arrived */
    int err;              /* 0, or the poll failed (a negative errno) */
    char what[160];       /* why, e.g. "GET /metrics: HTTP 500" */
    bool have_metrics;
    struct top_prom metrics;
    bool have_actors;
    struct top_json_doc actors;
};

void top_poll_free(struct top_poll *p);

struct top_actor {
    const char *pid;  /* "<0.12.1>"; in the actors document */
    const char *kind; /* not NULL */
    const char *name; /* "" when unnamed */
    const char *state;
    double mailbox, capacity, handled, restarts;
    double rate; /* messages handled per second; NAN: unknown */
    bool supervisor;
};

struct top_kind {
    char kind[48];
    double actors, queued, max_queued, restarts;
};

struct top_view {
    /* header, from /actors */
    double alive, spawned, exited, crashed, restarts;
    /* stage rates, per second; NAN: unknown */
    double in_rate, stored_rate, ws_rate, rejected_rate, restart_rate;
    /* gauges; NAN: not exposed */
    double backlog, clients, p50_s, p99_s;
    double src_live, src_stale, src_offline; /* sources in each state */
    /* per kind, from /metrics, most queued first */
    struct top_kind *kinds;
    size_t n_kinds;
    /* every actor /actors lists, busiest first (mailbox, then rate) */
    struct top_actor *actors;
    size_t n_actors;
};

/*
 * Builds @v from @cur, with rates against @prev (NULL or a failed poll:
 * rates are NAN). @v's strings point into @cur: keep @cur while @v is
 * used. @v must be zeroed or freed before. Returns 0 or -ENOMEM; release
 * @v with top_view_free() in every case.
 */
int top_view_build(struct top_view *v, const struct top_poll *prev,
                   const struct top_poll *cur);
void top_view_free(struct top_view *v);

/* ---- drawing ------------------------------------------------------------ */

struct top_screen {
    int rows, cols; /* the terminal; rows 0: no limit (plain text) */
    bool ansi;      /* escapes (colours, full screen) or plain text */
};

/* What the header says about the connection. */
struct top_status {
    const char *admin;   /* "127.0.0.1:9090" */
    int err;             /* the last poll's error, 0 when it succeeded */
    const char *what;    /* why it failed */
    int64_t since_ok_ms; /* since the last good poll; -1: never */
    int interval_ms;
    char clock[16]; /* wall clock "15:04:05" */
};

/* Appends one frame to @out. Returns @out->err. */
int top_draw(struct actor_buf *out, const struct top_screen *scr,
             const struct top_status *st, const struct top_view *v);

#endif /* TOOLS_TOP_TOP_H */
