#!/usr/bin/env bash
# tools/run-tests.sh - runs one kind of test, each under a timeout, and says
# which failed. Called by the Makefile:
#   run-tests.sh unit SECONDS BINARY...      cmocka binaries
#   run-tests.sh integration SECONDS         tests/integration/test_*.py
#   run-tests.sh browser SECONDS             tests/browser/*.test.mjs
#   run-tests.sh fuzz SECONDS FUZZER...      each fuzzer for SECONDS (with
#                                            tests/fuzz/<name>.dict if any)
# Output of each test goes to out/<kind>/<name>.log; failures print it.
set -uo pipefail

kind=$1
limit=$2
shift 2
root=$(cd "$(dirname "$0")/.." && pwd)
out="$root/out/$kind"
mkdir -p "$out"

failed=()
total=0
tlimit=$limit # the timeout of one test
run_one() { # name, command...
    local name=$1
    shift
    total=$((total + 1))
    local log="$out/$name.log" start=$SECONDS
    if timeout --kill-after=10 "$tlimit" "$@" >"$log" 2>&1; then
        printf '  ok    %-40s %4ds\n' "$name" $((SECONDS - start))
    else
        local rc=$?
        printf '  FAIL  %-40s %4ds (exit %d)\n' "$name" $((SECONDS - start)) "$rc"
        tail -n 60 "$log" | sed 's/^/        /'
        failed+=("$name")
    fi
}

echo "== $kind tests"
case "$kind" in
unit)
    for t in "$@"; do run_one "$(basename "$t")" "$t"; done
    ;;
integration)
    for t in "$root"/tests/integration/test_*.py; do
        [ -e "$t" ] || continue
        run_one "$(basename "$t" .py)" python3 "$t"
    done
    ;;
browser)
    "$root/tools/browser-setup.sh" >"$out/setup.log" 2>&1 || {
        echo "  FAIL  browser setup (see $out/setup.log)"
        tail -n 30 "$out/setup.log"
        exit 1
    }
    for t in "$root"/tests/browser/*.test.mjs; do
        [ -e "$t" ] || continue
        run_one "$(basename "$t" .test.mjs)" node "$t"
    done
    ;;
fuzz)
    # The fuzzer stops itself after $limit seconds (-max_total_time); the
    # timeout only catches a hang, so it leaves room for loading the
    # corpus, the last run and writing out a crash.
    tlimit=$((limit + 60))
    for f in "$@"; do
        name=$(basename "$f")
        corpus="$root/tests/fuzz/corpus/${name%_fuzz}"
        work="$out/$name.corpus"
        dict="$root/tests/fuzz/${name%_fuzz}.dict"
        mkdir -p "$work"
        opts=()
        [ -f "$dict" ] && opts+=(-dict="$dict")
        run_one "$name" "$f" -max_total_time="$limit" -timeout=10 \
            -rss_limit_mb=2048 -artifact_prefix="$out/$name-" "${opts[@]}" \
            "$work" "$corpus"
    done
    ;;
*)
    echo "run-tests.sh: unknown kind $kind" >&2
    exit 2
    ;;
esac

if [ "${#failed[@]}" -gt 0 ]; then
    echo "== $kind: ${#failed[@]} of $total failed: ${failed[*]}"
    exit 1
fi
echo "== $kind: all $total passed"
