#!/usr/bin/env bash
# tools/run-demo.sh - `make run`: a private PostgreSQL under ./var (unless
# SCOREWIRE_DB is set), the schema, the daemon, and scorewire-feedsim
# playing a dozen matches compressed into a few minutes each, over and over.
# Prints the live page's URL and the admin URL; Ctrl-C stops everything it
# started. If the daemon exits on its own (its supervision tree gave up),
# it is started again from the database, as systemd would.
#
# Environment: SCOREWIRE_DB (use this database instead of ./var/pg),
# DEMO_VAR (the directory for the database and logs; ./var),
# SCOREWIRE_FEED_PORT, SCOREWIRE_HTTP_PORT, SCOREWIRE_ADMIN_PORT,
# DEMO_MATCHES (12), DEMO_MATCH_SECONDS (240), and any other SCOREWIRE_*
# setting the daemon reads.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

feed_port=${SCOREWIRE_FEED_PORT:-7700}
http_port=${SCOREWIRE_HTTP_PORT:-8080}
admin_port=${SCOREWIRE_ADMIN_PORT:-9090}
matches=${DEMO_MATCHES:-12}
match_seconds=${DEMO_MATCH_SECONDS:-240}
var=${DEMO_VAR:-$root/var}
logdir="$var/log"
mkdir -p "$logdir"

daemon_pid=
feed_pid=
own_pg=0
stopping=0

say() { printf 'make run: %s\n' "$*"; }

stop_all() {
    stopping=1
    trap - INT TERM
    [ -n "$feed_pid" ] && kill "$feed_pid" 2>/dev/null
    [ -f "$var/feedsim.pid" ] && kill "$(cat "$var/feedsim.pid")" 2>/dev/null
    rm -f "$var/feedsim.pid"
    if [ -n "$daemon_pid" ] && kill -0 "$daemon_pid" 2>/dev/null; then
        kill -TERM "$daemon_pid" 2>/dev/null
        wait "$daemon_pid" 2>/dev/null
    fi
    [ -n "$feed_pid" ] && wait "$feed_pid" 2>/dev/null
    if [ "$own_pg" = 1 ]; then
        tools/pg.sh stop "$var/pg" >/dev/null 2>&1
    fi
    say "stopped"
}
trap 'stop_all; exit 0' INT TERM

for port in "$feed_port" "$http_port" "$admin_port"; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        say "port $port is taken; set SCOREWIRE_FEED_PORT, SCOREWIRE_HTTP_PORT or SCOREWIRE_ADMIN_PORT"
        exit 1
    fi
done

db=${SCOREWIRE_DB:-}
if [ -z "$db" ]; then
    say "starting PostgreSQL in $var/pg"
    db=$(tools/pg.sh start "$var/pg") || {
        say "PostgreSQL did not start (see $var/pg/log)"
        exit 1
    }
    own_pg=1
fi
if ! psql -X -q -v ON_ERROR_STOP=1 -d "$db" -f schema.sql >"$logdir/schema.log" 2>&1; then
    say "schema.sql did not apply (see $logdir/schema.log)"
    stop_all
    exit 1
fi

# Children run in sessions of their own, so Ctrl-C reaches only this
# script, which then stops each of them once, in order (a second signal
# would make the daemon skip its drain).
start_daemon() {
    setsid bin/scorewire --db "$db" --feed-port "$feed_port" \
        --http-port "$http_port" --admin-port "$admin_port" \
        --web-dir "$root/web" 2>>"$logdir/scorewire.log" &
    daemon_pid=$!
}

start_daemon
ready=0
for _ in $(seq 200); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$http_port") 2>/dev/null &&
        (exec 3<>"/dev/tcp/127.0.0.1/$feed_port") 2>/dev/null; then
        ready=1
        break
    fi
    kill -0 "$daemon_pid" 2>/dev/null || break
    sleep 0.1
done
if [ "$ready" != 1 ]; then
    say "scorewire did not come up; the end of $logdir/scorewire.log:"
    tail -n 20 "$logdir/scorewire.log"
    stop_all
    exit 1
fi

# The demo feed: a dozen matches kicking off now, each compressed into a
# few minutes; when they have all ended, a new round with a new seed.
feed_loop() {
    local round=1 child=
    trap '[ -n "$child" ] && kill "$child" 2>/dev/null; exit 0' INT TERM
    while :; do
        bin/scorewire-feedsim --port "$feed_port" \
            --matches "$matches" --match-seconds "$match_seconds" \
            --start now --seed "$round" --id-prefix "demo:$round:" \
            --sources 2 >>"$logdir/feedsim.log" 2>&1 &
        child=$!
        echo "$child" >"$var/feedsim.pid"
        wait "$child"
        round=$((round + 1))
        sleep 2
    done
}
feed_loop &
feed_pid=$!

say "live page:      http://127.0.0.1:$http_port/"
say "operator page:  http://127.0.0.1:$admin_port/   (metrics: /metrics, actors: /actors)"
say "logs:           $logdir/scorewire.log, $logdir/feedsim.log"
say "Ctrl-C stops everything."

while :; do
    wait "$daemon_pid"
    rc=$?
    [ "$stopping" = 1 ] && break
    say "scorewire exited with status $rc; starting it again"
    sleep 1
    start_daemon
done
