/* tools/feedsim/feedsim_bad.c - malformed documents a receiver must reject
 * (or, for junk, skip), one kind per SFP/1 error reason. */
#include <errno.h>
#include <string.h>

#include "tools/feedsim/feedsim.h"

/*
 * DESIGN
 * Every malformed document starts as a valid one around a decoy element
 * (a real match id, the next msgnr, a 99-99 score, an incident "<n>-bad")
 * and gets one defect by replacing a piece of its text. A receiver that
 * lets a defect through therefore changes a real match visibly, and the
 * comparison with the expected state catches it.
 *
 * Each defect keeps the document framable by any reasonable framer: start
 * and end tags stay balanced in number and no '<' appears inside an
 * attribute, so a receiver that rejects the document still finds the next
 * one where it starts.
 */

#define SCORE   "<score home=\"99\" away=\"99\"/>"
#define FIXTURE "<fixture sport=\"soccer\" home=\"Decoy A\" away=\"Decoy B\"/>"
#define LONG_ID                                                                \
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"

struct variant {
    const char *event_attrs; /* added to the event's start tag */
    const char *find;        /* replaced once in the match element */
    const char *replace;
};

static const struct variant not_well_formed[] = {
    {"", SCORE,
     "<score home=\"99\" away=\"99\"><status phase=\"ended\"></score>"
     "</status>"},
    {"", "player=\"Z. Decoy\"", "player=\"Z. & Decoy\""},
    {"", "player=\"Z. Decoy\"", "player=\"Z.&nbsp;Decoy\""},
    {"", SCORE, "<score home=\"99\" home=\"98\" away=\"99\"/>"},
    {"", SCORE, "<score home=99 away=\"99\"/>"},
    {"", "player=\"Z. Decoy\"", "player=\"Z. &#1;Decoy\""},
    {"", "player=\"Z. Decoy\"", "player=\"Z. \xff\xfe Decoy\""},
};

static const struct variant bad_attribute[] = {
    {" sent=\"yesterday\"", NULL, NULL},
    {"", SCORE, "<score home=\"-1\" away=\"99\"/>"},
    {"", SCORE, "<score home=\"99\" away=\"many\"/>"},
    {"", SCORE, SCORE "<clock time=\"7x:00\" running=\"1\"/>"},
    {"", SCORE, SCORE "<clock time=\"12:00\" running=\"2\"/>"},
    {"", "team=\"home\"", "team=\"both\""},
    {"", "confirmed=\"1\"", "confirmed=\"yes\""},
    {"", "minute=\"1\"", "minute=\"ninety\""},
    {"", " msgnr=\"", " msgnr=\"x"},
    {"", "<match id=\"", "<match id=\"" LONG_ID},
};

static const struct variant bad_element[] = {
    {"", SCORE, SCORE SCORE},
    {"", SCORE,
     "<status phase=\"first_half\"/><status phase=\"second_half\"/>" SCORE},
    {"", SCORE,
     "<clock time=\"10:00\" running=\"1\"/><clock time=\"11:00\" "
     "running=\"1\"/>" SCORE},
    {"", SCORE, FIXTURE FIXTURE SCORE},
};

static const char *const names[FEEDSIM_BAD_N] = {
    [FEEDSIM_BAD_NOT_WELL_FORMED] = "not_well_formed",
    [FEEDSIM_BAD_ATTRIBUTE] = "bad_attribute",
    [FEEDSIM_BAD_ELEMENT] = "bad_element",
    [FEEDSIM_BAD_MISSING_SEQ] = "missing_seq",
    [FEEDSIM_BAD_TOO_LARGE] = "too_large",
    [FEEDSIM_BAD_JUNK] = "junk",
};

const char *feedsim_bad_name(enum feedsim_bad_kind kind)
{
    return kind < FEEDSIM_BAD_N ? names[kind] : "unknown";
}

int feedsim_bad_parse(const char *name, enum feedsim_bad_kind *kind)
{
    for (int k = 0; k < FEEDSIM_BAD_N; k++) {
        if (strcmp(name, names[k]) == 0) {
            *kind = (enum feedsim_bad_kind)k;
            return 0;
        }
    }
    return -EINVAL;
}

bool feedsim_bad_has_seq(enum feedsim_bad_kind kind)
{
    return kind != FEEDSIM_BAD_MISSING_SEQ && kind != FEEDSIM_BAD_JUNK;
}

bool feedsim_bad_is_seq_used(enum feedsim_bad_kind kind)
{
    return kind == FEEDSIM_BAD_ATTRIBUTE || kind == FEEDSIM_BAD_ELEMENT;
}

/* Appends @text with the first @find replaced by @replace (when given and
 * present). */
static void add_replaced(struct actor_buf *b, const char *text,
                         const char *find, const char *replace)
{
    const char *at = find ? strstr(text, find) : NULL;
    if (!at) {
        actor_buf_str(b, text);
        return;
    }
    actor_buf_add(b, text, (size_t)(at - text));
    actor_buf_str(b, replace);
    actor_buf_str(b, at + strlen(find));
}

static void add_junk(struct actor_buf *b, uint64_t *rng)
{
    static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz"
                                   "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                   "0123456789 !\"#$%&'()*+,-./:;=>?@[]^_{}~";
    uint32_t n = 1 + feedsim_rng_below(rng, 48);
    for (uint32_t i = 0; i < n; i++) {
        actor_buf_char(
            b,
            alphabet[feedsim_rng_below(rng, (uint32_t)sizeof(alphabet) - 1)]);
    }
    actor_buf_str(b, "\r\n");
}

void feedsim_bad_write(struct actor_buf *b, enum feedsim_bad_kind kind,
                       uint64_t *rng, uint64_t seq,
                       const struct event_match *decoy, size_t max_doc)
{
    if (kind == FEEDSIM_BAD_JUNK) {
        add_junk(b, rng);
        return;
    }
    struct actor_buf match;
    actor_buf_init(&match);
    feedsim_xml_match(&match, decoy);
    if (match.err) {
        b->err = match.err;
        goto out_release;
    }

    struct variant v = {"", NULL, NULL};
    switch (kind) {
    case FEEDSIM_BAD_NOT_WELL_FORMED:
        v = not_well_formed[feedsim_rng_below(
            rng, sizeof(not_well_formed) / sizeof(not_well_formed[0]))];
        break;
    case FEEDSIM_BAD_ATTRIBUTE:
        v = bad_attribute[feedsim_rng_below(rng, sizeof(bad_attribute) /
                                                     sizeof(bad_attribute[0]))];
        break;
    case FEEDSIM_BAD_ELEMENT:
        v = bad_element[feedsim_rng_below(rng, sizeof(bad_element) /
                                                   sizeof(bad_element[0]))];
        break;
    default:
        break;
    }

    if (feedsim_bad_has_seq(kind)) {
        actor_buf_printf(b, "<event seq=\"%llu\"%s>", (unsigned long long)seq,
                         v.event_attrs);
    } else {
        actor_buf_str(b, "<event>");
    }
    if (kind == FEEDSIM_BAD_TOO_LARGE) {
        /* Padding in one attribute: over the limit, far from a runaway. */
        size_t pad = max_doc + 1 + feedsim_rng_below(rng, 4096);
        size_t at = b->len;
        add_replaced(b, match.data, SCORE,
                     "<fixture sport=\"soccer\" competition=\"\"/>" SCORE);
        const char *hole =
            b->err ? NULL : strstr(b->data + at, "competition=\"\"");
        size_t pos =
            hole ? (size_t)(hole - b->data) + strlen("competition=\"") : 0;
        if (hole && actor_buf_reserve(b, pad) == 0) {
            char *p = b->data + pos;
            memmove(p + pad, p, b->len - pos + 1);
            memset(p, 'x', pad);
            b->len += pad;
        }
    } else {
        add_replaced(b, match.data, v.find, v.replace);
    }
    feedsim_xml_event_close(b);

out_release:
    actor_buf_release(&match);
}
