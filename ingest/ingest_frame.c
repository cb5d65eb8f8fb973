/* ingest/ingest_frame.c - cuts a byte stream into XML documents. */
#include <errno.h>
#include <string.h>

#include "ingest/ingest_impl.h"

/*
 * DESIGN
 * A resumable scanner that knows just enough XML to find where a root
 * element ends: tags and their quoted values (a '>' or "/>" in quotes is
 * not the end of a tag), comments, CDATA sections, processing instructions
 * (the XML declaration is one) and declarations (DOCTYPE, whose internal
 * subset may hold quoted literals, comments and PIs). It checks nothing
 * else; the parser judges well-formedness. A document starts at a '<'
 * followed by a name, '?' or '!' and ends when its root element closes (a
 * stray end tag in the prolog ends it too, so the parser can reject it and
 * the stream goes on).
 *
 * Speed: text, values, end tags and comment bodies are skipped with
 * memchr; only the inside of start tags is walked byte by byte, through a
 * lookup table, unrolled, with the state in locals. A document that lies whole
 * in one input is handed out where it lies; only one that spans inputs is
 * gathered in acc.
 *
 * The result depends only on the bytes, never on how they were split: the
 * state carries every lookback the scanner needs (the last byte of a tag,
 * the closing bytes seen of a comment), and the runaway check fires at the
 * same byte of the document whatever the input sizes.
 */

enum {
    S_IDLE,           /* between documents */
    S_LT,             /* between documents, after a '<' */
    S_TEXT,           /* in a document, outside markup */
    S_MARKUP,         /* after a '<' in a document */
    S_STAG,           /* in a start tag */
    S_ETAG,           /* in an end tag */
    S_QUOTE,          /* in a quoted value; then back to ->ret */
    S_PI,             /* in a PI ("?>" ends it); then back to ->ret */
    S_COMMENT,        /* in a comment ("-->") ; then back to ->ret */
    S_CDATA,          /* in a CDATA section ("]]>"); then S_TEXT */
    S_BANG,           /* after "<!" */
    S_BANG_DASH,      /* after "<!-" */
    S_CDATA_OPEN,     /* in "<![CDATA[", ->run bytes of it matched */
    S_DECL,           /* in a declaration (DOCTYPE) */
    S_DECL_LT,        /* after a '<' inside a declaration's brackets */
    S_DECL_BANG,      /* after "<!" there */
    S_DECL_BANG_DASH, /* after "<!-" there */
};

/* What closes S_PI, S_COMMENT and S_CDATA: this byte, this many times,
 * then '>'. */
static const struct {
    char ch;
    uint8_t need;
} closer[] = {
    [S_PI] = {'?', 1},
    [S_COMMENT] = {'-', 2},
    [S_CDATA] = {']', 2},
};

#define ACC_RETAIN (64u << 10) /* acc larger than this is freed when idle */

static const char cdata_open[] = "[CDATA[";

/* The bytes that end a run inside a start tag: its end and the quotes. */
static const uint8_t tag_stop[256] = {['>'] = 1, ['"'] = 1, ['\''] = 1};

/* Returns the first byte in [p, end) that ends a run in a start tag, or
 * @end. Unrolled: tag bytes are a third of a feed. */
static inline const char *tag_run(const char *p, const char *end)
{
    while (end - p >= 4) {
        if (tag_stop[(unsigned char)p[0]]) {
            return p;
        }
        if (tag_stop[(unsigned char)p[1]]) {
            return p + 1;
        }
        if (tag_stop[(unsigned char)p[2]]) {
            return p + 2;
        }
        if (tag_stop[(unsigned char)p[3]]) {
            return p + 3;
        }
        p += 4;
    }
    while (p < end && !tag_stop[(unsigned char)*p]) {
        p++;
    }
    return p;
}

static inline bool is_space(unsigned char c)
{
    return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

int ingest__frame_init(struct ingest__framer *f, size_t doc_max)
{
    if (doc_max == 0) {
        doc_max = INGEST_DOC_MAX_DEFAULT;
    }
    if (doc_max > INGEST_DOC_MAX_LIMIT) {
        return -EINVAL;
    }
    memset(f, 0, sizeof(*f));
    f->doc_max = doc_max;
    f->keep =
        doc_max < INGEST_DEAD_LETTER_MAX ? doc_max : INGEST_DEAD_LETTER_MAX;
    f->state = S_IDLE;
    return 0;
}

void ingest__frame_release(struct ingest__framer *f)
{
    if (!f) {
        return;
    }
    ingest__free(f->acc);
    f->acc = NULL;
    f->acc_len = 0;
    f->acc_cap = 0;
}

void ingest__frame_input(struct ingest__framer *f, const char *data, size_t len,
                         int64_t now_ms)
{
    /* Our caller's bug, never input's: the last input is not consumed
     * (after an error the rest of it never will be, and that is fine). */
    ACTOR_ASSERT(f->in == f->in_end || f->err);
    f->in = data;
    f->in_end = data + len;
    f->in_ms = now_ms;
    if (f->state != S_IDLE) {
        f->start = data; /* the open document goes on here */
    }
}

size_t ingest__frame_pending(const struct ingest__framer *f)
{
    if (f->state == S_IDLE) {
        return 0;
    }
    return f->doc_len + (f->start ? (size_t)(f->in - f->start) : 0);
}

/* Appends @len bytes to acc. Returns 0 or -ENOMEM. */
static int acc_add(struct ingest__framer *f, const char *data, size_t len)
{
    if (len > f->acc_cap - f->acc_len) {
        size_t cap = f->acc_cap ? f->acc_cap : 4096;
        while (cap < f->acc_len + len) {
            cap *= 2;
        }
        char *acc = ingest__realloc(f->acc, cap);
        if (!acc) {
            return -ENOMEM;
        }
        f->acc = acc;
        f->acc_cap = cap;
    }
    memcpy(f->acc + f->acc_len, data, len);
    f->acc_len += len;
    return 0;
}

/* Makes acc hold the first ->keep bytes of a too_large document, taking
 * what it lacks from the @len bytes at @data (which follow acc's). */
static int acc_keep_head(struct ingest__framer *f, const char *data, size_t len)
{
    if (f->acc_len >= f->keep) {
        f->acc_len = f->keep;
        return 0;
    }
    size_t want = f->keep - f->acc_len;
    return acc_add(f, data, want < len ? want : len);
}

/*
 * Finds the end of a comment, CDATA section or PI: @need copies of @ch
 * right before a '>' ("-->", "]]>", "?>"), counting only bytes after the
 * opening. f->run carries the copies of @ch that ended earlier input.
 * Returns the byte after the '>', or NULL when [p, end) has no end.
 */
static const char *find_close(struct ingest__framer *f, const char *p,
                              const char *end, char ch, unsigned need)
{
    for (;;) {
        const char *gt = memchr(p, '>', (size_t)(end - p));
        const char *stop = gt ? gt : end;
        const char *q = stop;
        unsigned run = 0;
        while (q > p && run < need && q[-1] == ch) {
            q--;
            run++;
        }
        if (q == p && run < need) {
            run += f->run; /* every byte since p was @ch: earlier ones count */
        }
        if (!gt) {
            f->run = (uint8_t)(run < need ? run : need);
            return NULL;
        }
        f->run = 0;
        if (run >= need) {
            return gt + 1;
        }
        p = gt + 1;
    }
}

/*
 * Scans an open document from @p up to @end. Returns the byte after the
 * end of its root element, with the state back to S_IDLE; NULL when
 * [p, end) holds no end, with the state saved for the next input.
 */
static const char *scan(struct ingest__framer *f, const char *p,
                        const char *end)
{
    unsigned state = f->state;
    uint32_t depth = f->depth;
    const char *q;
    unsigned char c;

    for (;;) {
        if (p == end) {
            goto out; /* every state waits for a byte here */
        }
        switch (state) {
        case S_TEXT:
            /* Elements often follow each other directly. */
            q = *p == '<' ? p : memchr(p, '<', (size_t)(end - p));
            if (!q) {
                p = end;
                goto out;
            }
            p = q + 1;
            state = S_MARKUP;
            break;
        case S_MARKUP:
            c = (unsigned char)*p;
            if (c == '/') {
                p++;
                state = S_ETAG;
            } else if (c == '?') {
                p++;
                f->run = 0;
                f->ret = S_TEXT;
                state = S_PI;
            } else if (c == '!') {
                p++;
                state = S_BANG;
            } else if (ingest__is_name_start(c)) {
                p++;
                f->last = c;
                state = S_STAG;
            } else {
                state = S_TEXT; /* a stray '<': the parser rejects it */
            }
            break;
        case S_STAG: {
            /* The byte before the '>' decides "/>"; it is in this input
             * unless the '>' is the first byte scanned here. */
            const char *from = p;
            for (;;) {
                p = tag_run(p, end);
                if (p == end) {
                    if (p > from) {
                        f->last = (unsigned char)p[-1];
                    }
                    goto out;
                }
                c = (unsigned char)*p++;
                if (c == '>') {
                    break;
                }
                q = memchr(p, c, (size_t)(end - p));
                if (!q) {
                    f->last = c;
                    f->quote = c;
                    f->ret = S_STAG;
                    state = S_QUOTE;
                    p = end;
                    goto out;
                }
                p = q + 1;
            }
            c = p - 1 > from ? (unsigned char)p[-2] : f->last;
            if (c != '/') {
                depth++;
            } else if (depth == 0) {
                goto done; /* an empty root element */
            }
            state = S_TEXT;
            break;
        }
        case S_ETAG:
            q = memchr(p, '>', (size_t)(end - p));
            if (!q) {
                p = end;
                goto out;
            }
            p = q + 1;
            if (depth <= 1) {
                goto done; /* the root closed (or a stray end tag) */
            }
            depth--;
            state = S_TEXT;
            break;
        case S_QUOTE:
            q = memchr(p, f->quote, (size_t)(end - p));
            if (!q) {
                p = end;
                goto out;
            }
            p = q + 1;
            state = f->ret;
            break;
        case S_PI:
        case S_COMMENT:
        case S_CDATA:
            q = find_close(f, p, end, closer[state].ch, closer[state].need);
            if (!q) {
                p = end;
                goto out;
            }
            p = q;
            state = state == S_CDATA ? S_TEXT : f->ret;
            break;
        case S_BANG:
            if (*p == '-') {
                p++;
                state = S_BANG_DASH;
            } else if (*p == '[') {
                p++;
                f->run = 1;
                state = S_CDATA_OPEN;
            } else {
                f->brackets = 0;
                state = S_DECL;
            }
            break;
        case S_BANG_DASH:
        case S_DECL_BANG_DASH:
            /* "<!--" opens a comment; anything else is a declaration */
            f->ret = state == S_BANG_DASH ? S_TEXT : S_DECL;
            if (state == S_BANG_DASH) {
                f->brackets = 0;
            }
            if (*p == '-') {
                p++;
                f->run = 0;
                state = S_COMMENT;
            } else {
                state = S_DECL;
            }
            break;
        case S_CDATA_OPEN:
            if (*p == cdata_open[f->run]) {
                p++;
                if (++f->run == sizeof(cdata_open) - 1) {
                    f->run = 0;
                    state = S_CDATA;
                }
            } else {
                f->brackets = 1; /* "<![" opened one */
                state = S_DECL;
            }
            break;
        case S_DECL:
            for (;;) {
                if (p == end) {
                    goto out;
                }
                c = (unsigned char)*p++;
                if (c == '"' || c == '\'') {
                    f->quote = c;
                    f->ret = S_DECL;
                    state = S_QUOTE;
                    break;
                }
                if (c == '[') {
                    f->brackets++;
                } else if (c == ']') {
                    if (f->brackets > 0) {
                        f->brackets--;
                    }
                } else if (c == '>' && f->brackets == 0) {
                    state = S_TEXT;
                    break;
                } else if (c == '<' && f->brackets > 0) {
                    state = S_DECL_LT;
                    break;
                }
            }
            break;
        case S_DECL_LT:
            if (*p == '?') {
                p++;
                f->run = 0;
                f->ret = S_DECL;
                state = S_PI;
            } else if (*p == '!') {
                p++;
                state = S_DECL_BANG;
            } else {
                state = S_DECL;
            }
            break;
        case S_DECL_BANG:
            if (*p == '-') {
                p++;
                state = S_DECL_BANG_DASH;
            } else {
                state = S_DECL; /* <!ENTITY ...>: its '>' is in brackets */
            }
            break;
        default:
            /* S_IDLE and S_LT never reach the scanner */
            ACTOR_ASSERT(!"scanner state");
        }
    }
done:
    f->state = S_IDLE;
    f->depth = 0;
    return p;
out:
    f->state = (uint8_t)state;
    f->depth = depth;
    return NULL;
}

/*
 * Skips the bytes between documents, counting whitespace and junk, up to
 * the start of a document: then f->start is its '<' and the state S_MARKUP.
 * Returns where it stopped (@end when the input ran out first).
 */
static const char *skip_between(struct ingest__framer *f, const char *p,
                                const char *end)
{
    uint64_t space = 0, junk = 0;
    while (p < end) {
        unsigned char c = (unsigned char)*p;
        if (f->state == S_LT) {
            if (ingest__is_name_start(c) || c == '?' || c == '!') {
                f->state = S_MARKUP;
                f->depth = 0;
                break;
            }
            /* That '<' started nothing: junk, and so is what it held. */
            junk++;
            f->doc_len = 0;
            f->acc_len = 0;
            f->start = NULL;
            f->state = S_IDLE;
            continue; /* look at @c again */
        }
        p++;
        if (c == '<') {
            f->start = p - 1;
            f->state = S_LT;
        } else if (is_space(c)) {
            space++;
        } else {
            junk++;
        }
    }
    f->stats.space_bytes += space;
    f->stats.junk_bytes += junk;
    return p;
}

/* Frees a large acc once nothing points into it. */
static void acc_trim(struct ingest__framer *f)
{
    f->acc_len = 0;
    if (f->acc_cap > ACC_RETAIN) {
        ingest__free(f->acc);
        f->acc = NULL;
        f->acc_cap = 0;
    }
}

/* Hands out the document that ends at @p. Returns the frame kind. */
static int emit(struct ingest__framer *f, const char *p,
                struct ingest__frame *out)
{
    size_t chunk = (size_t)(p - f->start);
    size_t size = f->doc_len + chunk;
    bool fits = size <= f->doc_max;
    int rc = 0;

    if (f->doc_len == 0) {
        out->data = f->start; /* whole in this input: no copy */
        out->len = fits ? chunk : f->keep;
    } else {
        rc = fits ? acc_add(f, f->start, chunk)
                  : acc_keep_head(f, f->start, chunk);
        out->data = f->acc;
        out->len = f->acc_len;
        f->acc_out = true;
    }
    if (fits) {
        f->stats.docs++;
        f->stats.docs_bytes += size;
    } else {
        f->stats.oversize++;
        f->stats.oversize_bytes += size;
    }
    out->size = size;
    out->received_ms = f->in_ms;
    f->doc_len = 0;
    f->oversize = false;
    f->start = NULL;
    if (rc < 0) {
        return rc;
    }
    return fits ? INGEST__FRAME_DOC : INGEST__FRAME_TOO_LARGE;
}

/* Keeps the part of the open document in this input for the next one. */
static int hold(struct ingest__framer *f, const char *end)
{
    size_t chunk = (size_t)(end - f->start);
    size_t size = f->doc_len + chunk;
    int rc = 0;

    if (!f->oversize) {
        if (size <= f->doc_max) {
            rc = acc_add(f, f->start, chunk);
        } else {
            rc = acc_keep_head(f, f->start, chunk);
            f->oversize = true;
        }
    }
    f->doc_len = size;
    f->start = NULL;
    return rc;
}

int ingest__frame_next(struct ingest__framer *f, struct ingest__frame *out)
{
    if (f->err) {
        return f->err;
    }
    if (f->acc_out) {
        f->acc_out = false;
        acc_trim(f);
    }

    const char *p = f->in;
    const char *end = f->in_end;
    int rc;

    for (;;) {
        if (f->state == S_IDLE || f->state == S_LT) {
            p = skip_between(f, p, end);
            if (f->state == S_IDLE) {
                break; /* input consumed between documents */
            }
            if (f->state == S_LT) {
                rc = hold(f, end); /* the '<' waits for its next byte */
                goto consumed;
            }
        }
        /* An open document: scan no further than the runaway point. */
        size_t runaway = f->doc_max * INGEST_RUNAWAY_FACTOR;
        size_t room = runaway - f->doc_len;
        const char *lim =
            (size_t)(end - f->start) > room ? f->start + room : end;
        const char *q = scan(f, p, lim);
        if (q) {
            rc = emit(f, q, out);
            f->stats.bytes += (uint64_t)(q - f->in);
            f->in = q;
            if (rc < 0) {
                f->err = rc;
            }
            return rc;
        }
        if (f->doc_len + (size_t)(lim - f->start) >= runaway) {
            f->stats.bytes += (uint64_t)(lim - f->in);
            f->in = lim;
            f->err = -EMSGSIZE;
            return f->err;
        }
        rc = hold(f, end);
        goto consumed;
    }
    f->stats.bytes += (uint64_t)(end - f->in);
    f->in = end;
    return 0;

consumed:
    f->stats.bytes += (uint64_t)(end - f->in);
    f->in = end;
    if (rc < 0) {
        f->err = rc;
        return rc;
    }
    return 0;
}
