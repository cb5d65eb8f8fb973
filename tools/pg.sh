#!/usr/bin/env bash
# tools/pg.sh - a private, throwaway PostgreSQL cluster in a directory: for
# `make run` (./var/pg), the tests and the benchmarks.
#
#   tools/pg.sh [--no-fsync] start DIR [PORT]   initdb on first use, start,
#                                               wait until ready, print the
#                                               conninfo on stdout
#   tools/pg.sh stop DIR [fast|immediate]       stop (a no-op when stopped)
#   tools/pg.sh status DIR                      "running port=N" (exit 0) or
#                                               "stopped" (exit 3)
#   tools/pg.sh url DIR                         print the conninfo
#   tools/pg.sh psql DIR [PSQL-ARGS...]         psql against the cluster
#
# DIR holds data/ (PGDATA), sock/ (the unix socket), port, log. The port is
# picked free on first start (or given) and kept in DIR/port, so a restart
# keeps it and clients reconnect to the same conninfo. The conninfo uses the
# unix socket; the server also listens on 127.0.0.1:PORT.
#
# PostgreSQL refuses to run as root: as root, DIR is handed to the postgres
# user and the server runs as postgres (runuser); as any other user, DIR must
# be that user's and the server runs as them. Every parent of DIR must be
# searchable by that user.
#
# --no-fsync trades durability for speed (fsync, synchronous_commit and
# full_page_writes off) for the run it starts; tests may use it, benchmarks
# say which they ran with. Everything else is PostgreSQL's defaults plus
# room for bulk writes (shared_buffers, max_wal_size).
set -euo pipefail

PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
DB=scorewire

die() {
    echo "pg.sh: $*" >&2
    exit 1
}

usage() {
    sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

fsync=on
while [ $# -gt 0 ]; do
    case "$1" in
    --no-fsync) fsync=off ;;
    -h | --help) usage ;;
    -*) die "unknown option $1" ;;
    *) break ;;
    esac
    shift
done
[ $# -ge 2 ] || usage
cmd=$1
dir=$2
shift 2

case "$cmd" in
start) mkdir -p "$dir" ;;
stop) [ -d "$dir" ] || exit 0 ;;
status) [ -d "$dir" ] || {
    echo stopped
    exit 3
} ;;
esac
[ -d "$dir" ] || die "no such directory: $dir"
case "$dir" in
*\'*) die "a cluster directory may not contain a single quote" ;;
esac
dir=$(cd "$dir" && pwd)
data=$dir/data
sock=$dir/sock

# A unix socket path is limited to 107 bytes: sock/.s.PGSQL.NNNNN must fit.
[ $((${#sock} + 18)) -le 107 ] || die "$dir is too long a path for a unix socket"

if [ "$(id -u)" -eq 0 ]; then
    as_pg() { (cd / && runuser -u postgres -- "$@"); }
else
    as_pg() { (cd / && "$@"); }
fi

# Client programs run as the caller: root may always use the socket.
conninfo() { # port
    local h=${sock//\\/\\\\}
    h=${h//\'/\\\'}
    printf "host='%s' port=%s user=postgres dbname=%s\n" "$h" "$1" "$DB"
}

port_of() {
    [ -s "$dir/port" ] || die "$dir has no cluster (run start first)"
    cat "$dir/port"
}

is_running() {
    [ -f "$data/PG_VERSION" ] && as_pg "$PGBIN/pg_ctl" -D "$data" status >/dev/null 2>&1
}

free_port() {
    python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

take_dir() {
    if [ "$(id -u)" -eq 0 ]; then
        [ "$(stat -c %U "$dir")" = postgres ] || chown postgres:postgres "$dir"
        as_pg test -w "$dir" -a -x "$dir" ||
            die "the postgres user cannot use $dir (a parent is not searchable?)"
    else
        [ -O "$dir" ] || die "$dir is not owned by $(id -un)"
    fi
}

init_cluster() {
    [ -f "$data/PG_VERSION" ] && return 0
    take_dir
    local sync=()
    [ "$fsync" = off ] && sync=(--no-sync)
    as_pg "$PGBIN/initdb" -D "$data" -U postgres -A trust -E UTF8 \
        --locale=C --no-instructions "${sync[@]}" >"$dir/initdb.log" 2>&1 ||
        die "initdb failed; see $dir/initdb.log"
    cat >>"$data/postgresql.conf" <<'EOF'

# tools/pg.sh: a private cluster for Scorewire
listen_addresses = '127.0.0.1'
max_connections = 40
shared_buffers = 256MB
wal_buffers = 16MB
max_wal_size = 4GB
checkpoint_timeout = 15min
log_min_messages = warning
log_line_prefix = '%m [%p] '
EOF
    as_pg mkdir -p "$sock"
}

# One start attempt on @port; returns pg_ctl's status.
start_on() { # port
    local opts="-p $1 -k '$sock'"
    if [ "$fsync" = off ]; then
        opts+=" -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    fi
    as_pg "$PGBIN/pg_ctl" -D "$data" -l "$dir/log" -o "$opts" -w -t 60 \
        start >/dev/null 2>&1
}

start() {
    init_cluster
    if is_running; then
        conninfo "$(port_of)"
        return 0
    fi
    local port=${1:-}
    local fixed=1
    if [ -z "$port" ] && [ -s "$dir/port" ]; then
        port=$(cat "$dir/port")
    elif [ -z "$port" ]; then
        port=$(free_port)
        fixed=0
    fi
    # A port probed free may be taken before the server binds it: pick again.
    local tries=0
    until start_on "$port"; do
        tries=$((tries + 1))
        if [ "$fixed" = 1 ] || [ "$tries" -ge 5 ]; then
            tail -n 20 "$dir/log" >&2 || true
            die "the server did not start on port $port; see $dir/log"
        fi
        port=$(free_port)
    done
    echo "$port" >"$dir/port"
    if ! "$PGBIN/psql" "$(conninfo "$port" | sed "s/dbname=$DB/dbname=postgres/")" \
        -XtAqc "SELECT 1 FROM pg_database WHERE datname = '$DB'" | grep -q 1; then
        "$PGBIN/createdb" -h "$sock" -p "$port" -U postgres "$DB" ||
            die "createdb $DB failed"
    fi
    conninfo "$port"
}

stop() { # mode
    local mode=${1:-fast}
    case "$mode" in
    fast | immediate) ;;
    *) die "stop mode is fast or immediate, not $mode" ;;
    esac
    is_running || return 0
    as_pg "$PGBIN/pg_ctl" -D "$data" -m "$mode" -w -t 60 stop >/dev/null ||
        die "pg_ctl stop failed; see $dir/log"
}

case "$cmd" in
start) start "$@" ;;
stop) stop "$@" ;;
status)
    if is_running; then
        echo "running port=$(port_of)"
    else
        echo stopped
        exit 3
    fi
    ;;
url) conninfo "$(port_of)" ;;
psql) exec "$PGBIN/psql" -X "$(conninfo "$(port_of)")" "$@" ;;
*) usage ;;
esac
