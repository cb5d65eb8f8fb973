/* tools/wsbench/wsbench.h - scorewire-wsbench's shared parts: what a client
 * connection tracks, and the reading of server messages (ws-protocol.md). */
#ifndef TOOLS_WSBENCH_WSBENCH_H
#define TOOLS_WSBENCH_WSBENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ---- latency histogram --------------------------------------------------- */

#define WB_HIST_STEP_US 100     /* bucket width */
#define WB_HIST_BUCKETS 600000u /* up to 60 s; beyond goes to the last */

struct wb_hist {
    uint32_t *bucket; /* WB_HIST_BUCKETS counts */
    uint64_t count;
    int64_t max_us;
};

int wb_hist_init(struct wb_hist *h);
void wb_hist_release(struct wb_hist *h);
void wb_hist_reset(struct wb_hist *h);
void wb_hist_add(struct wb_hist *h, int64_t us);
/* The @q quantile (0..1) in milliseconds; 0 when empty. */
double wb_hist_quantile_ms(const struct wb_hist *h, double q);

/* ---- matches, shared by all connections ------------------------------------
 */

/* Interned match ids: each id gets a small index. */
struct wb_ids {
    char **id;
    uint32_t n;
    uint32_t cap;
    uint32_t *slot; /* open addressing: index + 1, or 0 */
    uint32_t n_slots;
};

/* Returns the index of @id (@len bytes), adding it. -1 when out of memory. */
int64_t wb_ids_get(struct wb_ids *ids, const char *id, size_t len);
void wb_ids_release(struct wb_ids *ids);

/* ---- one connection's view
 * --------------------------------------------------- */

struct wb_member {
    char *key;  /* NUL-terminated, decoded */
    char *json; /* raw JSON text of the value, NUL-terminated */
};

struct wb_incident {
    char *id;
    char *json;
};

/* A match as the client sees it (only with --dump). */
struct wb_match {
    struct wb_member *members; /* snapshot members but id, version, feed,
                                  gap and incidents, in arrival order */
    uint32_t n_members;
    struct wb_incident *incidents; /* in first-seen order */
    uint32_t n_incidents;
};

struct wb_conn_view {
    uint64_t *version;      /* by match index; 0: no snapshot yet */
    struct wb_match *match; /* by match index, when keeping views */
    uint32_t n;             /* entries in both */
};

/* What reading has counted (per run, summed over connections). */
struct wb_counts {
    uint64_t frames;
    uint64_t messages;
    uint64_t deltas;
    uint64_t snapshots;
    uint64_t feeds;
    uint64_t pongs;
    uint64_t errors;    /* `error` messages from the server */
    uint64_t recovered; /* messages flagged recovered */
    uint64_t gaps;      /* a delta whose version is not last + 1 */
    uint64_t orphans;   /* a delta before any snapshot of its match */
    uint64_t bad;       /* frames that are not valid protocol JSON */
    uint64_t bytes;
};

struct wb_reader {
    struct wb_ids ids;
    struct wb_hist hist;
    struct wb_counts counts;
    bool keep_views; /* apply snapshots and deltas (for --dump) */
    bool measure;    /* record latencies */
    struct notify_json_tok *toks;
    uint32_t max_toks;
    char last_error[160]; /* the latest error or protocol violation */
};

int wb_reader_init(struct wb_reader *r, bool keep_views);
void wb_reader_release(struct wb_reader *r);

/*
 * Reads one frame received by a connection whose view is @v, at wall-clock
 * @now_us. Returns 0, or -ENOMEM. Protocol violations are counted, not
 * returned.
 */
int wb_read_frame(struct wb_reader *r, struct wb_conn_view *v, const char *text,
                  size_t len, int64_t now_us);

void wb_view_release(struct wb_conn_view *v);

/*
 * Writes @v as a JSON object keyed by match id (sorted), each value the
 * match object without version, feed and gap. Returns 0 or -errno.
 */
int wb_view_dump(const struct wb_reader *r, const struct wb_conn_view *v,
                 FILE *out);

/* Parses RFC 3339 text (@len bytes) to ms since the epoch. Returns 0 or
 * -EINVAL. */
int wb_parse_rfc3339_ms(const char *s, size_t len, int64_t *ms);

#endif /* TOOLS_WSBENCH_WSBENCH_H */
