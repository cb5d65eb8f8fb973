/* tools/wsbench/wsbench.h - scorewire-wsbench's shared parts: what a client
 * connection tracks, and the reading of server messages (ws-protocol.md). */
#ifndef TOOLS_WSBENCH_WSBENCH_H
#define TOOLS_WSBENCH_WSBENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <signal.h>
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
    uint32_t *len; /* of each id */
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

/* The vector instructions the lean reader may use to classify a frame's
 * bytes: the widest the CPU has, up to this (tests lower it, to run each
 * way). */
enum wb_simd { WB_SIMD_NONE, WB_SIMD_SSE2, WB_SIMD_AVX2 };

/* The minute of the latest RFC 3339 time read: the times a run reads
 * mostly share it, and then only seconds and zone are left to read. */
struct wb_minute {
    char text[16]; /* "YYYY-MM-DDTHH:MM" */
    int64_t s;     /* its start, since the epoch */
    bool valid;
};

/* The last frame the lean reader read, and what its messages came to:
 * every "*" client that keeps up gets the same bytes in a cycle, so the
 * next connection to receive them skips the scan, the id lookups and the
 * time parsing, and only applies the result to its own view. */
struct wb_counted;
struct wb_memo {
    char *bytes; /* a copy of the frame; the messages' spans point here */
    size_t len, cap;
    struct wb_counted *msgs;
    uint32_t n, cap_msgs;
    uint64_t bad;   /* what the frame counted bad outside its messages */
    bool valid;     /* cleared by whoever empties ids (indexes into them) */
    bool recording; /* while the lean reader reads a new frame */
};

struct wb_reader {
    struct wb_ids ids;
    struct wb_memo memo;
    struct wb_hist hist;
    struct wb_counts counts;
    bool keep_views;              /* apply snapshots and deltas (for --dump) */
    bool measure;                 /* record latencies */
    struct wb_minute sent_minute; /* of the latest `sent` read */
    enum wb_simd simd;            /* WB_SIMD_AVX2 but in tests */
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

/* Parses RFC 3339 text (@len bytes) to ms since the epoch. @last, when not
 * NULL, is the minute read before, and becomes this one's. Returns 0 or
 * -EINVAL. */
int wb_parse_rfc3339_ms(const char *s, size_t len, struct wb_minute *last,
                        int64_t *ms);

/* ---- the run, shared by the two client engines -------------------------- */

enum wb_phase { WB_CONNECT, WB_SETTLE, WB_MEASURE, WB_DONE };

struct wb_opts {
    const char *address;
    int port;
    const char *path;
    uint32_t connections;
    uint32_t ramp;         /* connections opened per second */
    const char *subscribe; /* "*" or a comma-separated list */
    double settle_s;
    double duration_s; /* 0: until --idle-exit or a signal */
    uint32_t idle_exit_ms;
    long pid; /* the daemon, for RSS */
    const char *dump;
    const char *bench_prefix;
    bool raw; /* --engine raw */
    bool strict_connect;
    bool quiet;
};

/* One client connection, whichever engine drives it. */
struct wb_conn {
    void *io; /* the engine's handle */
    uint32_t idx;
    bool open;
    bool sent_subscribe;
    bool close_frame; /* the server sent a close frame */
    char *buf;        /* a message arriving in pieces */
    size_t len, cap;
    struct wb_conn_view view;
};

struct wb_run {
    struct wb_opts o;
    struct wb_conn *conns;
    uint32_t opened;
    uint32_t established;
    uint32_t failed;
    uint32_t closed;         /* by the server or the network */
    uint32_t close_codes[4]; /* 1009, 1013, other, without a close frame */
    char subscribe_msg[4096];
    size_t subscribe_len;
    struct wb_reader reader;
    enum wb_phase phase;
    int64_t phase_start_us; /* monotonic */
    int64_t last_frame_us;  /* monotonic */
    int64_t window_us;      /* length of the measure phase */
    long rss_before_kib, rss_start_kib, rss_end_kib;
    int64_t cpu_start_us, cpu_end_us;       /* ours, over the window */
    int64_t daemon_start_us, daemon_end_us; /* the daemon's; -1: unknown */
    uint32_t conns_at_start;
    struct wb_counts before; /* counted before the window */
    int error;
    char last_connect_error[128];
};

#define WB_TICK_US (10 * 1000) /* the phase clock and the ramp slice */

int64_t wb_mono_us(void);
/* VmRSS of process @pid in KiB, or -1. */
long wb_rss_kib(long pid);
/* CPU time (user and system) of process @pid in microseconds, or -1. */
int64_t wb_cpu_us(long pid);
/* CPU time of this process in microseconds. */
int64_t wb_self_cpu_us(void);
int64_t wb_wall_us(void);

/*
 * The phase clock, called by the engine every WB_TICK_US (and on a
 * signal). Returns how many connections the engine should open now; sets
 * run->phase to WB_DONE when the run is over.
 */
uint32_t wb_tick(struct wb_run *run, bool interrupted);

/* Engine events. */
void wb_on_established(struct wb_run *run, struct wb_conn *c);
void wb_on_failed(struct wb_run *run, struct wb_conn *c, const char *why);
/* @code: the close frame's code, 0 when it had none, -1 when no close
 * frame came. */
void wb_on_close_frame(struct wb_run *run, struct wb_conn *c, int code);
void wb_on_closed(struct wb_run *run, struct wb_conn *c);
/* A piece of a message; the engine says whether it is the first and the
 * last. Returns 0 or -ENOMEM. */
int wb_on_data(struct wb_run *run, struct wb_conn *c, const char *in,
               size_t len, bool first, bool last);

/* The subscription message of run->o.subscribe. Returns 0 or -E2BIG. */
int wb_build_subscribe(struct wb_run *run);

/* Prints the report (and `bench` lines with --bench-prefix) on stdout. */
void wb_report(const struct wb_run *run);

/* Writes the first connection's view to run->o.dump. Returns 0, 1 when
 * another connection's view differs, or -errno. */
int wb_dump(struct wb_run *run);

/* The engines: run until run->phase is WB_DONE. Return 0 or -errno. */
int wb_lws_run(struct wb_run *run, volatile sig_atomic_t *interrupted);
int wb_raw_run(struct wb_run *run, volatile sig_atomic_t *interrupted);

#endif /* TOOLS_WSBENCH_WSBENCH_H */
