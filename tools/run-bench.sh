#!/usr/bin/env bash
# tools/run-bench.sh - runs the benchmarks of one part (runtime, ingest,
# model, store, notify): build/<variant>/bench/<part>_bench and,
# for end-to-end figures, tests/bench/<part>_bench.py. Each prints lines
# `bench <name> <value> <unit>`; this script passes them through and fails
# when a benchmark fails or prints none.
set -uo pipefail

part=$1
root=$(cd "$(dirname "$0")/.." && pwd)
bin="$root/build/${VARIANT:-release}/bench/${part}_bench"
script="$root/tests/bench/${part}_bench.py"
limit=${BENCH_TIMEOUT:-300}

ran=0
rc=0
run() {
    local out
    out=$(timeout --kill-after=10 "$limit" "$@") || rc=1
    printf '%s\n' "$out" | grep '^bench ' || true
    printf '%s\n' "$out" | grep -q '^bench ' || {
        echo "run-bench: $* printed no figures" >&2
        rc=1
    }
    ran=$((ran + 1))
}

[ -x "$bin" ] && run "$bin"
[ -f "$script" ] && run python3 "$script"
if [ "$ran" -eq 0 ]; then
    echo "run-bench: no benchmark for part '$part'" >&2
    exit 1
fi
exit "$rc"
