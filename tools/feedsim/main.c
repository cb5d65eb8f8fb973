/* tools/feedsim/main.c - scorewire-feedsim: a feed source that speaks SFP/1
 * like a real provider, for demos, load and tests. */

/*
 * DESIGN
 * The simulator is the tests' source of truth, so everything it says is
 * reproducible and everything it claims is checked against its own model:
 *
 * - Matches are generated from (seed, match index) alone (feedsim_gen.c),
 *   so the same seed and flags give the same events whatever the number of
 *   sources, the pacing or the server's speed. Separate random streams
 *   drive bundling, malformed documents, --split and backoff jitter, so
 *   turning one on does not move another.
 * - Every good event is applied, as it is made, to a reference model that
 *   implements SFP/1's rules on its own (feedsim_model.c); --expect writes
 *   what the model ends with. Malformed documents are never applied.
 * - Every document with a seq stays in its source's window until an ack
 *   covers it and is sent again after a reconnect (feedsim_run.c), so a
 *   run that ends with everything acknowledged has delivered everything.
 *
 * One thread, ppoll(), non-blocking sockets: a thousand sources cost a
 * thousand file descriptors and no threads. SIGINT and SIGTERM are blocked
 * except inside ppoll(), so a signal always ends the wait and the run stops
 * with its figures printed.
 */

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tools/feedsim/feedsim.h"

#define EXIT_USAGE 2

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static const char usage_text[] =
    "Usage: scorewire-feedsim [OPTION]...\n"
    "Plays football matches and sends them to a Scorewire ingest port over\n"
    "SFP/1 (shared/spec/feed-protocol.md), like a real provider.\n"
    "\n"
    "Connection\n"
    "  --host HOST          ingest host (127.0.0.1)\n"
    "  --port PORT          ingest port (7700)\n"
    "  --sources K          K sources at once, each its own TCP connection\n"
    "                       and seq space; match m goes to source m % K (1)\n"
    "  --source-prefix P    source names are P1..PK (feed-)\n"
    "  --token TOKEN        login token of every source\n"
    "  --tokens FILE        per-source tokens: lines `NAME TOKEN`, # starts\n"
    "                       a comment; sources not listed use --token\n"
    "  --no-login           skip the login: every event names its source\n"
    "                       (<event source=..>), as SFP/1 allows where the\n"
    "                       server has no tokens\n"
    "  --window N           documents in flight (unacknowledged) per\n"
    "                       source; a full window stops new events (1000)\n"
    "  --heartbeat S        send <ct/> after S seconds without output;\n"
    "                       0: never (5)\n"
    "  --peer-timeout S     reconnect when the server says nothing for S\n"
    "                       seconds; 0: never (30)\n"
    "  --reconnect-after N  reset the connection (RST) after every N new\n"
    "                       events sent on it, as a network failure would:\n"
    "                       what the server had not read is lost and sent\n"
    "                       again after the next login (0: never)\n"
    "  --ack-timeout S      at the end, wait S seconds for the last acks (30)\n"
    "\n"
    "Matches\n"
    "  --matches N          number of matches (10)\n"
    "  --seed S             the run's seed (1): the same seed and flags give\n"
    "                       the same events, byte for byte with --sent sim\n"
    "  --id-prefix P        match ids are P<index> (sim:<seed>:)\n"
    "  --start TIME         fixture start: RFC 3339 UTC such as\n"
    "                       2026-11-21T15:00:00Z (the default), or `now`\n"
    "                       (the next quarter hour)\n"
    "  --tick S             game seconds between clock updates (10)\n"
    "  --multi P            chance that an event also carries the next steps\n"
    "                       of other matches due within 5 s (0.1)\n"
    "  --sent MODE          the events' `sent`: wall (the wall clock, for\n"
    "                       latency figures; the default), sim (simulated\n"
    "                       time: reproducible bytes) or none\n"
    "\n"
    "Pace and length (--match-seconds and --rate exclude each other)\n"
    "  --match-seconds S    play each match (about 115 simulated minutes\n"
    "                       with the break) in about S real seconds; the\n"
    "                       default is real time (6930)\n"
    "  --rate N             N events per second in total, shared by the\n"
    "                       sources; 0: as fast as the server takes them\n"
    "  --events N           stop after N events in total (split evenly\n"
    "                       between the sources)\n"
    "  --duration S         stop making events after S seconds\n"
    "  Without --events or --duration a run ends when every match has ended\n"
    "  and everything sent is acknowledged.\n"
    "\n"
    "Stress\n"
    "  --split MAX          cut the byte stream into writes of 1..MAX bytes,\n"
    "                       at points fixed by the seed\n"
    "  --bad-rate P         after each event, with chance P, also send a\n"
    "                       malformed document the server must reject (0)\n"
    "  --bad-kinds LIST     comma-separated kinds to send (all of them):\n"
    "     not_well_formed   broken XML; carries a seq that the server may or\n"
    "                       may not count as used\n"
    "     bad_attribute     a bad value; uses up its seq\n"
    "     bad_element       a repeated child; uses up its seq\n"
    "     missing_seq       an event without a seq\n"
    "     too_large         over --max-doc; carries a seq that may or may not\n"
    "                       be counted as used\n"
    "     junk              bytes between documents\n"
    "  --max-doc BYTES      the server's document limit, for too_large\n"
    "                       (1048576)\n"
    "\n"
    "Output\n"
    "  --expect FILE        write the expected final state (below) to FILE\n"
    "  -q, --quiet          log errors only\n"
    "  -v, --verbose        log every connection event and error reply\n"
    "  -h, --help           this text\n"
    "\n"
    "At the end one JSON line goes to stdout: complete (everything sent was\n"
    "acknowledged), interrupted, elapsed_s, matches, matches_ended,\n"
    "events_sent (first sends), events_resent, events_acked, unacked\n"
    "(documents still owed an ack), bytes_sent, bytes_received, writes,\n"
    "heartbeats_sent, heartbeats_received, acks_received, other_replies,\n"
    "acks_ahead (acks above anything sent), acks_back (logins acking less\n"
    "than before), connects, errors {reason: count} from <error> replies,\n"
    "malformed {kind: count} first sends, malformed_seq_used (those that use\n"
    "up a seq), malformed_resent, malformed_acked, latency_ms {p50, p99, max}\n"
    "from a document's last send to the ack that covered it, and sources\n"
    "{name: {last_seq, last_event_seq, acked, events, unacked, connects}}.\n"
    "\n"
    "Expected state (--expect), one JSON object:\n"
    "  {\"matches\": {ID: MATCH, ...},\n"
    "   \"sources\": {NAME: {\"last_seq\": N, \"last_event_seq\": M}, ...}}\n"
    "MATCH has the shape of the match object of a WebSocket snapshot\n"
    "(ws-protocol.md) without version, feed and gap:\n"
    "  {\"id\": ID, \"fixture\": {\"sport\", \"competition\", \"home\", "
    "\"away\",\n"
    "   \"start\"}, \"status\": {\"phase\"}, \"clock\": {\"time\": \"MM:SS\",\n"
    "   \"running\": BOOL}, \"score\": {\"home\": INT, \"away\": INT},\n"
    "   \"incidents\": [INCIDENT, ...]}\n"
    "INCIDENT is a whole incident {\"id\", \"type\", \"team\", \"minute\",\n"
    "\"stoppage\", \"player\", \"assist\", \"confirmed\": BOOL}: live ones "
    "only, in\n"
    "first-seen order. An absent attribute is omitted, and so is a part the\n"
    "match never had; incidents is always there. It is the state SFP/1's\n"
    "rules give for the good events sent (full replaces, delta merges,\n"
    "incidents inserted, updated, deleted), malformed documents excluded.\n"
    "last_seq is the highest seq sent (any document), last_event_seq that of\n"
    "the last good event: the server's acked seq ends between the two.\n"
    "\n"
    "Exit status: 0 when every source got through and everything sent was\n"
    "acknowledged (also after SIGINT or SIGTERM, which stop the run at\n"
    "once); 1 otherwise, with the reason on stderr; 2 for a usage error.\n";

static void usage_error(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));

static void usage_error(const char *fmt, ...)
{
    va_list ap;
    fputs("scorewire-feedsim: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\nTry 'scorewire-feedsim --help'.\n", stderr);
    exit(EXIT_USAGE);
}

static uint64_t parse_count(const char *flag, const char *text, uint64_t min,
                            uint64_t max)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno || end == text || *end || text[0] == '-' || v < min || v > max) {
        usage_error("%s wants a whole number from %llu to %llu, not '%s'", flag,
                    (unsigned long long)min, (unsigned long long)max, text);
    }
    return v;
}

static double parse_real(const char *flag, const char *text, double min,
                         double max)
{
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (errno || end == text || *end || !isfinite(v) || v < min || v > max) {
        usage_error("%s wants a number from %g to %g, not '%s'", flag, min, max,
                    text);
    }
    return v;
}

static int64_t parse_start(const char *text)
{
    if (strcmp(text, "now") == 0) {
        int64_t now = (int64_t)time(NULL);
        return (now / 900 + 1) * 900;
    }
    struct tm tm = {0};
    const char *end = strptime(text, "%Y-%m-%dT%H:%M:%SZ", &tm);
    if (!end || *end) {
        usage_error("--start wants a time like 2026-11-21T15:00:00Z or "
                    "'now', not '%s'",
                    text);
    }
    return (int64_t)timegm(&tm);
}

static uint32_t parse_kinds(const char *text)
{
    uint32_t mask = 0;
    char *copy = strdup(text);
    if (!copy) {
        usage_error("out of memory");
    }
    char *save = NULL;
    for (char *k = strtok_r(copy, ",", &save); k;
         k = strtok_r(NULL, ",", &save)) {
        enum feedsim_bad_kind kind;
        if (feedsim_bad_parse(k, &kind) != 0) {
            free(copy);
            usage_error("--bad-kinds: unknown kind '%s'", k);
        }
        mask |= 1u << kind;
    }
    free(copy);
    if (!mask) {
        usage_error("--bad-kinds names no kind");
    }
    return mask;
}

/* Reads `NAME TOKEN` lines; fills @tokens[i] for the sources named. The
 * strings live in *@text (a new buffer; the caller frees it). */
static int read_tokens(const char *path, const char *prefix, uint32_t sources,
                       const char **tokens, char **text)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "scorewire-feedsim: --tokens %s: %s\n", path,
                strerror(errno));
        return -errno;
    }
    struct actor_buf b;
    actor_buf_init(&b);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        actor_buf_add(&b, chunk, n);
    }
    bool failed = ferror(f);
    fclose(f);
    if (failed || b.err) {
        actor_buf_release(&b);
        fprintf(stderr, "scorewire-feedsim: --tokens %s: read failed\n", path);
        return -EIO;
    }
    *text = actor_buf_take(&b, NULL);
    if (!*text) {
        return 0; /* an empty file */
    }
    char *save = NULL;
    for (char *line = strtok_r(*text, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        char *lsave = NULL;
        char *name = strtok_r(line, " \t\r", &lsave);
        char *token = name ? strtok_r(NULL, " \t\r", &lsave) : NULL;
        if (!name || name[0] == '#') {
            continue;
        }
        size_t plen = strlen(prefix);
        if (!token || strncmp(name, prefix, plen) != 0) {
            continue;
        }
        char *end;
        unsigned long i = strtoul(name + plen, &end, 10);
        if (*end == '\0' && i >= 1 && i <= sources) {
            tokens[i - 1] = token;
        }
    }
    return 0;
}

static int write_file(const char *path, const struct actor_buf *b)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp)) {
        return -ENAMETOOLONG;
    }
    FILE *f = fopen(tmp, "w");
    if (!f) {
        return -errno;
    }
    size_t n = fwrite(b->data, 1, b->len, f);
    int rc = (n == b->len && fputc('\n', f) != EOF) ? 0 : -EIO;
    if (fclose(f) != 0 && rc == 0) {
        rc = -errno;
    }
    if (rc == 0 && rename(tmp, path) != 0) {
        rc = -errno;
    }
    if (rc != 0) {
        unlink(tmp);
    }
    return rc;
}

enum {
    OPT_HOST = 256,
    OPT_PORT,
    OPT_SOURCES,
    OPT_SOURCE_PREFIX,
    OPT_TOKEN,
    OPT_TOKENS,
    OPT_NO_LOGIN,
    OPT_WINDOW,
    OPT_HEARTBEAT,
    OPT_PEER_TIMEOUT,
    OPT_RECONNECT_AFTER,
    OPT_ACK_TIMEOUT,
    OPT_MATCHES,
    OPT_SEED,
    OPT_ID_PREFIX,
    OPT_START,
    OPT_TICK,
    OPT_MULTI,
    OPT_SENT,
    OPT_MATCH_SECONDS,
    OPT_RATE,
    OPT_EVENTS,
    OPT_DURATION,
    OPT_SPLIT,
    OPT_BAD_RATE,
    OPT_BAD_KINDS,
    OPT_MAX_DOC,
    OPT_EXPECT
};

static const struct option long_options[] = {
    {"host", required_argument, NULL, OPT_HOST},
    {"port", required_argument, NULL, OPT_PORT},
    {"sources", required_argument, NULL, OPT_SOURCES},
    {"source-prefix", required_argument, NULL, OPT_SOURCE_PREFIX},
    {"token", required_argument, NULL, OPT_TOKEN},
    {"tokens", required_argument, NULL, OPT_TOKENS},
    {"no-login", no_argument, NULL, OPT_NO_LOGIN},
    {"window", required_argument, NULL, OPT_WINDOW},
    {"heartbeat", required_argument, NULL, OPT_HEARTBEAT},
    {"peer-timeout", required_argument, NULL, OPT_PEER_TIMEOUT},
    {"reconnect-after", required_argument, NULL, OPT_RECONNECT_AFTER},
    {"ack-timeout", required_argument, NULL, OPT_ACK_TIMEOUT},
    {"matches", required_argument, NULL, OPT_MATCHES},
    {"seed", required_argument, NULL, OPT_SEED},
    {"id-prefix", required_argument, NULL, OPT_ID_PREFIX},
    {"start", required_argument, NULL, OPT_START},
    {"tick", required_argument, NULL, OPT_TICK},
    {"multi", required_argument, NULL, OPT_MULTI},
    {"sent", required_argument, NULL, OPT_SENT},
    {"match-seconds", required_argument, NULL, OPT_MATCH_SECONDS},
    {"rate", required_argument, NULL, OPT_RATE},
    {"events", required_argument, NULL, OPT_EVENTS},
    {"duration", required_argument, NULL, OPT_DURATION},
    {"split", required_argument, NULL, OPT_SPLIT},
    {"bad-rate", required_argument, NULL, OPT_BAD_RATE},
    {"bad-kinds", required_argument, NULL, OPT_BAD_KINDS},
    {"max-doc", required_argument, NULL, OPT_MAX_DOC},
    {"expect", required_argument, NULL, OPT_EXPECT},
    {"quiet", no_argument, NULL, 'q'},
    {"verbose", no_argument, NULL, 'v'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

struct options {
    struct feedsim_config cfg;
    const char *token;
    const char *tokens_path;
    const char *expect_path;
    const char *id_prefix;
    bool rate_set;
    bool match_seconds_set;
};

static void parse_options(int argc, char **argv, struct options *o)
{
    struct feedsim_config *c = &o->cfg;
    *c = (struct feedsim_config){
        .host = "127.0.0.1",
        .port = "7700",
        .matches = 10,
        .sources = 1,
        .source_prefix = "feed-",
        .gen = {.seed = 1, .tick_s = 10, .start_epoch = 1795273200},
        .multi = 0.1,
        .match_seconds = FEEDSIM_NOMINAL_MATCH_MS / 1000.0,
        .sent = FEEDSIM_SENT_WALL,
        .bad_kinds = (1u << FEEDSIM_BAD_N) - 1,
        .max_doc = 1048576,
        .window = 1000,
        .heartbeat_s = 5,
        .peer_timeout_s = 30,
        .ack_timeout_s = 30,
        .verbosity = 1,
    };
    int opt;
    while ((opt = getopt_long(argc, argv, "qvh", long_options, NULL)) != -1) {
        const char *flag = optind > 0 ? argv[optind - 1] : "";
        switch (opt) {
        case OPT_HOST:
            c->host = optarg;
            break;
        case OPT_PORT:
            parse_count(flag, optarg, 1, 65535);
            c->port = optarg;
            break;
        case OPT_SOURCES:
            c->sources = (uint32_t)parse_count(flag, optarg, 1, 10000);
            break;
        case OPT_SOURCE_PREFIX:
            c->source_prefix = optarg;
            break;
        case OPT_TOKEN:
            o->token = optarg;
            break;
        case OPT_TOKENS:
            o->tokens_path = optarg;
            break;
        case OPT_NO_LOGIN:
            c->no_login = true;
            break;
        case OPT_WINDOW:
            c->window = (uint32_t)parse_count(flag, optarg, 1, 1000000);
            break;
        case OPT_HEARTBEAT:
            c->heartbeat_s = parse_real(flag, optarg, 0, 86400);
            break;
        case OPT_PEER_TIMEOUT:
            c->peer_timeout_s = parse_real(flag, optarg, 0, 86400);
            break;
        case OPT_RECONNECT_AFTER:
            c->reconnect_after = parse_count(flag, optarg, 0, UINT64_MAX);
            break;
        case OPT_ACK_TIMEOUT:
            c->ack_timeout_s = parse_real(flag, optarg, 0, 86400);
            break;
        case OPT_MATCHES:
            c->matches = (uint32_t)parse_count(flag, optarg, 1, 1000000);
            break;
        case OPT_SEED:
            c->gen.seed = parse_count(flag, optarg, 0, UINT64_MAX);
            break;
        case OPT_ID_PREFIX:
            o->id_prefix = optarg;
            break;
        case OPT_START:
            c->gen.start_epoch = parse_start(optarg);
            break;
        case OPT_TICK:
            c->gen.tick_s = (uint32_t)parse_count(flag, optarg, 1, 3600);
            break;
        case OPT_MULTI:
            c->multi = parse_real(flag, optarg, 0, 1);
            break;
        case OPT_SENT:
            if (strcmp(optarg, "wall") == 0) {
                c->sent = FEEDSIM_SENT_WALL;
            } else if (strcmp(optarg, "sim") == 0) {
                c->sent = FEEDSIM_SENT_SIM;
            } else if (strcmp(optarg, "none") == 0) {
                c->sent = FEEDSIM_SENT_NONE;
            } else {
                usage_error("--sent wants wall, sim or none, not '%s'", optarg);
            }
            break;
        case OPT_MATCH_SECONDS:
            c->match_seconds = parse_real(flag, optarg, 0.001, 1e7);
            o->match_seconds_set = true;
            break;
        case OPT_RATE:
            c->rate = parse_real(flag, optarg, 0, 1e9);
            o->rate_set = true;
            break;
        case OPT_EVENTS:
            c->events = parse_count(flag, optarg, 1, UINT64_MAX);
            break;
        case OPT_DURATION:
            c->duration_s = parse_real(flag, optarg, 0.001, 1e9);
            break;
        case OPT_SPLIT:
            c->split = (uint32_t)parse_count(flag, optarg, 1, 1 << 30);
            break;
        case OPT_BAD_RATE:
            c->bad_rate = parse_real(flag, optarg, 0, 1);
            break;
        case OPT_BAD_KINDS:
            c->bad_kinds = parse_kinds(optarg);
            break;
        case OPT_MAX_DOC:
            c->max_doc = parse_count(flag, optarg, 64, 256u << 20);
            break;
        case OPT_EXPECT:
            o->expect_path = optarg;
            break;
        case 'q':
            c->verbosity = 0;
            break;
        case 'v':
            c->verbosity = 2;
            break;
        case 'h':
            fputs(usage_text, stdout);
            exit(0);
        default:
            usage_error("unknown option");
        }
    }
    if (optind < argc) {
        usage_error("unexpected argument '%s'", argv[optind]);
    }
    if (o->rate_set && o->match_seconds_set) {
        usage_error("--rate and --match-seconds exclude each other");
    }
    if (o->rate_set) {
        c->match_seconds = 0;
    }
    if (c->sources > c->matches) {
        usage_error("--sources (%u) exceeds --matches (%u)", c->sources,
                    c->matches);
    }
}

int main(int argc, char **argv)
{
    struct options o = {0};
    parse_options(argc, argv, &o);
    struct feedsim_config *c = &o.cfg;

    char prefix[48];
    if (!o.id_prefix) {
        snprintf(prefix, sizeof(prefix),
                 "sim:%llu:", (unsigned long long)c->gen.seed);
        o.id_prefix = prefix;
    }
    c->gen.id_prefix = o.id_prefix;

    int status = 1;
    char *tokens_text = NULL;
    const char **tokens = calloc(c->sources, sizeof(*tokens));
    if (!tokens) {
        fputs("scorewire-feedsim: out of memory\n", stderr);
        return 1;
    }
    for (uint32_t i = 0; i < c->sources; i++) {
        tokens[i] = o.token;
    }
    if (o.tokens_path && read_tokens(o.tokens_path, c->source_prefix,
                                     c->sources, tokens, &tokens_text) != 0) {
        goto out_free_tokens;
    }
    c->tokens = tokens;

    /* SIGINT and SIGTERM only interrupt ppoll(): see DESIGN. */
    sigset_t block;
    sigset_t wait_mask;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    sigprocmask(SIG_BLOCK, &block, &wait_mask);
    sigdelset(&wait_mask, SIGINT);
    sigdelset(&wait_mask, SIGTERM);
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    c->wait_mask = &wait_mask;
    c->stop = &stop_requested;

    struct feedsim_run *run = feedsim_run_new(c);
    if (!run) {
        fprintf(stderr, "scorewire-feedsim: cannot start: %s\n",
                strerror(errno));
        goto out_free_tokens;
    }
    int rc = feedsim_run_loop(run);

    struct actor_buf out;
    actor_buf_init(&out);
    feedsim_run_stats(run, &out);
    actor_buf_char(&out, '\n');
    if (!out.err) {
        fwrite(out.data, 1, out.len, stdout);
        fflush(stdout);
    }
    if (o.expect_path) {
        actor_buf_reset(&out);
        feedsim_run_expect(run, &out);
        int wrc = out.err ? out.err : write_file(o.expect_path, &out);
        if (wrc != 0) {
            fprintf(stderr, "scorewire-feedsim: --expect %s: %s\n",
                    o.expect_path, strerror(-wrc));
            rc = rc ? rc : -EIO;
        }
    }
    actor_buf_release(&out);
    if (rc == 0) {
        status = 0;
    } else if (rc == FEEDSIM_INCOMPLETE) {
        fprintf(stderr, "scorewire-feedsim: incomplete: %s\n",
                feedsim_run_failure(run));
    } else {
        fprintf(stderr, "scorewire-feedsim: %s\n", strerror(-rc));
    }
    feedsim_run_free(run);

out_free_tokens:
    free(tokens_text);
    free(tokens);
    return status;
}
