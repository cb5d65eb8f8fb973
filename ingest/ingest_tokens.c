/* ingest/ingest_tokens.c - the sources allowed to log in, and their tokens. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ingest/ingest_impl.h"

/*
 * DESIGN
 * The table is read once at start-up and never changes, so conns on every
 * scheduler read it without locks. Entries are sorted by source for a
 * binary search. Tokens are kept zero-padded to a fixed size and compared
 * in full with an XOR fold, so the time a check takes says nothing about
 * how much of a guess was right; only whether the source is listed shows
 * (a source name is not a secret).
 */

#define TOKENS_FILE_MAX                                                        \
    (4u << 20) /* a tokens file larger than this is                            \
                  not one */

struct entry {
    char source[INGEST_SOURCE_MAX + 1];
    unsigned char token[INGEST_TOKEN_MAX + 1]; /* NUL-padded */
};

struct ingest__tokens {
    struct entry *v; /* sorted by source */
    size_t n;
};

static int entry_cmp(const void *a, const void *b)
{
    return strcmp(((const struct entry *)a)->source,
                  ((const struct entry *)b)->source);
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

/* Cuts the next blank-separated word out of [*p, end). */
static void word(const char **p, const char *end, const char **w, size_t *len)
{
    while (*p < end && is_blank(**p)) {
        (*p)++;
    }
    *w = *p;
    while (*p < end && !is_blank(**p)) {
        (*p)++;
    }
    *len = (size_t)(*p - *w);
}

static bool is_token(const char *s, size_t len)
{
    if (len == 0 || len > INGEST_TOKEN_MAX) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        if (s[i] <= ' ' || s[i] > '~') {
            return false;
        }
    }
    return true;
}

/* Parses one line into @e. Returns NULL, or why it is not a good line. */
static const char *parse_line(const char *p, const char *end, struct entry *e)
{
    const char *src, *tok, *rest;
    size_t src_len, tok_len, rest_len;
    word(&p, end, &src, &src_len);
    word(&p, end, &tok, &tok_len);
    word(&p, end, &rest, &rest_len);
    if (!ingest__source_is_valid(src, src_len)) {
        return "the source is not 1-64 bytes of [A-Za-z0-9._:-]";
    }
    if (tok_len == 0) {
        return "no token after the source";
    }
    if (!is_token(tok, tok_len)) {
        return "the token is not 1-256 printable ASCII bytes";
    }
    if (rest_len != 0) {
        return "more than a source and a token";
    }
    memset(e, 0, sizeof(*e));
    memcpy(e->source, src, src_len);
    memcpy(e->token, tok, tok_len);
    return NULL;
}

int ingest__tokens_parse(const char *text, size_t len,
                         struct ingest__tokens **out, unsigned *line,
                         const char **why)
{
    struct ingest__tokens *t = ingest__malloc(sizeof(*t));
    size_t cap = 0;
    int rc = -ENOMEM;
    const char *p = text, *end = text + len;
    unsigned no = 0;

    *out = NULL;
    *line = 0;
    *why = NULL;
    if (!t) {
        return -ENOMEM;
    }
    t->v = NULL;
    t->n = 0;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *eol = nl ? nl : end;
        const char *q = p;
        no++;
        while (q < eol && is_blank(*q)) {
            q++;
        }
        if (q < eol && *q != '#') {
            if (t->n == cap) {
                size_t ncap = cap ? cap * 2 : 16;
                struct entry *v = ingest__realloc(t->v, ncap * sizeof(*v));
                if (!v) {
                    goto out_free;
                }
                t->v = v;
                cap = ncap;
            }
            *why = parse_line(q, eol, &t->v[t->n]);
            if (*why) {
                rc = -EINVAL;
                *line = no;
                goto out_free;
            }
            t->n++;
        }
        p = nl ? nl + 1 : end;
    }
    if (t->n > 1) {
        qsort(t->v, t->n, sizeof(*t->v), entry_cmp);
    }
    for (size_t i = 1; i < t->n; i++) {
        if (strcmp(t->v[i - 1].source, t->v[i].source) == 0) {
            *why = "a source is listed twice";
            rc = -EINVAL;
            goto out_free;
        }
    }
    *out = t;
    return 0;

out_free:
    ingest__tokens_free(t);
    return rc;
}

/* Reads the whole file at @path into a new buffer. Returns 0 or a
 * negative errno; warns when others may read it. */
static int slurp(const char *path, char **data, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return -errno;
    }
    int rc;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        rc = -errno;
        goto out_close;
    }
    if (!S_ISREG(st.st_mode) || st.st_size > (off_t)TOKENS_FILE_MAX) {
        rc = -EINVAL;
        goto out_close;
    }
    if (st.st_mode & (S_IRWXG | S_IRWXO)) {
        actor_log(NULL, ACTOR_LOG_WARN,
                  "tokens file is open to group or others (chmod 600)", "path",
                  path, NULL);
    }
    char *buf = malloc((size_t)st.st_size + 1);
    if (!buf) {
        rc = -ENOMEM;
        goto out_close;
    }
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            rc = n < 0 ? -errno : -EIO;
            free(buf);
            goto out_close;
        }
        got += (size_t)n;
    }
    *data = buf;
    *len = got;
    rc = 0;
out_close:
    close(fd);
    return rc;
}

int ingest__tokens_load(const char *path, struct ingest__tokens **out)
{
    char *data = NULL;
    size_t len = 0;
    int rc = slurp(path, &data, &len);
    if (rc != 0) {
        actor_log(NULL, ACTOR_LOG_ERROR, "tokens file not read", "path", path,
                  "error", strerror(-rc), NULL);
        return rc;
    }
    unsigned line;
    const char *why;
    rc = ingest__tokens_parse(data, len, out, &line, &why);
    /* The buffer held secrets: wipe it before it goes back to malloc. */
    explicit_bzero(data, len);
    free(data);
    if (rc == -EINVAL) {
        actor_log(NULL, ACTOR_LOG_ERROR, "tokens file is malformed", "path",
                  path, "line", ACTOR_LOG_INT(line), "problem", why, NULL);
    } else if (rc != 0) {
        actor_log(NULL, ACTOR_LOG_ERROR, "tokens file not loaded", "path", path,
                  "error", strerror(-rc), NULL);
    }
    return rc;
}

bool ingest__tokens_is_valid(const struct ingest__tokens *t, const char *source,
                             const char *token)
{
    struct entry key;
    size_t len = strlen(source);
    if (!t || t->n == 0 || len > INGEST_SOURCE_MAX ||
        strlen(token) > INGEST_TOKEN_MAX) {
        return false;
    }
    memcpy(key.source, source, len + 1);
    const struct entry *e = bsearch(&key, t->v, t->n, sizeof(*t->v), entry_cmp);
    if (!e) {
        return false;
    }
    unsigned char given[INGEST_TOKEN_MAX + 1] = {0};
    memcpy(given, token, strlen(token));
    unsigned diff = 0;
    for (size_t i = 0; i < sizeof(given); i++) {
        diff |= (unsigned)(given[i] ^ e->token[i]);
    }
    return diff == 0 && given[0] != 0;
}

size_t ingest__tokens_count(const struct ingest__tokens *t)
{
    return t ? t->n : 0;
}

void ingest__tokens_free(struct ingest__tokens *t)
{
    if (!t) {
        return;
    }
    if (t->v) {
        explicit_bzero(t->v, t->n * sizeof(*t->v));
    }
    ingest__free(t->v);
    ingest__free(t);
}
