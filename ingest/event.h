/* ingest/event.h - a parsed feed event: an immutable, reference-counted value.
 */
#ifndef INGEST_EVENT_H
#define INGEST_EVENT_H

/*
 * DESIGN
 * The parser turns one composed <event> document into one struct event: a
 * single allocation holding the header, the match and incident arrays, every
 * string (NUL-terminated) and the raw document bytes. Later stages read it
 * without touching XML and without locks: once the parser hands it out
 * (the message send that carries it orders the writes) nothing in it
 * changes but the reference count. Every stage that keeps it takes a
 * reference (event_ref) and drops it (event_unref); the last drop frees it.
 * The raw bytes are followed by a NUL that raw_len does not count.
 *
 * Absent values: strings are NULL, integers EVENT_ABSENT, enums *_NONE.
 */

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EVENT_ABSENT (-1)
#define EVENT_ID_MAX 64 /* bytes in a match id */

enum event_action {
    EVENT_ACTION_INSERT, /* replace the whole incident (add when new) */
    EVENT_ACTION_UPDATE, /* change only the attributes given */
    EVENT_ACTION_DELETE  /* remove it; unknown id: no-op */
};

enum event_team { EVENT_TEAM_NONE, EVENT_TEAM_HOME, EVENT_TEAM_AWAY };

/* Which children a match element carried. */
enum event_part {
    EVENT_HAS_FIXTURE = 1u << 0,
    EVENT_HAS_STATUS = 1u << 1,
    EVENT_HAS_CLOCK = 1u << 2,
    EVENT_HAS_SCORE = 1u << 3
};

struct event_incident {
    const char *id;     /* never NULL */
    const char *type;   /* NULL: absent */
    const char *player; /* NULL: absent */
    const char *assist; /* NULL: absent (also the player coming on) */
    int32_t minute;     /* EVENT_ABSENT or >= 0 */
    int32_t stoppage;   /* EVENT_ABSENT or >= 0 */
    int8_t team;        /* enum event_team; NONE: absent */
    int8_t confirmed;   /* EVENT_ABSENT, 0 or 1 */
    uint8_t action;     /* enum event_action */
};

struct event_fixture {
    const char *sport; /* each NULL when absent */
    const char *competition;
    const char *home;
    const char *away;
    const char *start; /* RFC 3339 text as sent */
};

struct event_match {
    const char *id; /* never NULL, at most EVENT_ID_MAX bytes */
    uint64_t msgnr; /* valid when has_msgnr */
    bool has_msgnr;
    bool full;     /* feedtype="full": replaces the whole state */
    uint8_t parts; /* enum event_part bits */
    struct event_fixture fixture; /* EVENT_HAS_FIXTURE */
    const char *phase;            /* EVENT_HAS_STATUS; NULL: absent */
    int32_t clock_seconds;        /* EVENT_HAS_CLOCK; EVENT_ABSENT or
                                     MM*60+SS */
    int8_t clock_running;         /* EVENT_ABSENT, 0 or 1 */
    uint32_t score_home;          /* EVENT_HAS_SCORE */
    uint32_t score_away;
    const struct event_incident *incidents; /* in document order */
    uint32_t n_incidents;
};

struct event {
    atomic_uint refs;
    const char *source;  /* the source the event came from */
    uint64_t seq;        /* 1 .. 2^63-1 */
    int64_t sent_ms;     /* `sent`, ms since the epoch; EVENT_ABSENT */
    const char *sent;    /* `sent` as given, or NULL */
    int64_t received_ms; /* wall clock when its last byte was framed */
    const char *raw;     /* the document as received (NUL after raw_len) */
    size_t raw_len;
    const struct event_match *matches; /* in document order */
    uint32_t n_matches;
    uint32_t size; /* bytes of the whole allocation */
};

/* Takes a reference; returns @ev. */
static inline struct event *event_ref(struct event *ev)
{
    atomic_fetch_add_explicit(&ev->refs, 1, memory_order_relaxed);
    return ev;
}

/* Drops a reference; the last one frees the event. Accepts NULL. */
void event_unref(struct event *ev);

#endif /* INGEST_EVENT_H */
