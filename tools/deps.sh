#!/usr/bin/env bash
# tools/deps.sh - installs the Debian packages Scorewire needs, when missing.
#
#   tools/deps.sh build   compilers, headers, PostgreSQL: what `make run` needs
#   tools/deps.sh test    the above, plus what the tests and benchmarks drive:
#                         clang (libFuzzer), python3, expat's xmlwf, promtool,
#                         Chromium and Node.js (for playwright-core)
#
# A no-op when everything is there. Needs root (or sudo) only to install.
set -euo pipefail

build_pkgs=(make gcc libc6-dev pkg-config libexpat1-dev libpq-dev
    libwebsockets-dev libcmocka-dev libjemalloc-dev postgresql
    postgresql-client)
test_pkgs=(clang libclang-rt-dev python3 expat prometheus chromium
    procps iproute2 curl ca-certificates)

want=("${build_pkgs[@]}")
if [ "${1:-build}" = test ]; then
    want+=("${test_pkgs[@]}")
    # Node.js may come from elsewhere (nodesource); only add Debian's when
    # there is no node or no npm at all.
    command -v node >/dev/null 2>&1 || want+=(nodejs)
    command -v npm >/dev/null 2>&1 || want+=(npm)
fi

missing=()
for p in "${want[@]}"; do
    st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    case "$st" in
    *" installed") ;;
    *) missing+=("$p") ;;
    esac
done
[ "${#missing[@]}" -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}" >&2
sudo=()
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || {
        echo "deps: missing packages and not root: ${missing[*]}" >&2
        exit 1
    }
    sudo=(sudo)
fi

# Packages such as prometheus and postgresql start a system service when
# installed; on a developer's machine that would take port 9090 and friends.
# Keep them stopped while we install (policy-rc.d exit 101: "not allowed").
policy=/usr/sbin/policy-rc.d
ours=0
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null
    "${sudo[@]}" chmod 755 "$policy"
    ours=1
fi
cleanup() { [ "$ours" = 1 ] && "${sudo[@]}" rm -f "$policy"; }
trap cleanup EXIT

export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -q
"${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
