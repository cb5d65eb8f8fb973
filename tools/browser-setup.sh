#!/usr/bin/env bash
# tools/browser-setup.sh - makes the browser tests runnable: Debian's
# chromium (installed by `make deps-test`, or here when missing) driven by
# playwright-core from npm, pinned in tests/browser/package-lock.json.
# Playwright never downloads a browser of its own here: the tests pass
# executablePath.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir="$root/tests/browser"

# `make browser` on a fresh machine: what `make deps-test` would install.
if ! command -v chromium >/dev/null || ! command -v npm >/dev/null; then
    "$root/tools/deps.sh" test
fi
command -v chromium >/dev/null || {
    echo "browser-setup: chromium is missing (make deps-test installs it)" >&2
    exit 1
}
command -v npm >/dev/null || {
    echo "browser-setup: npm is missing (make deps-test installs it)" >&2
    exit 1
}
stamp="$dir/node_modules/.scorewire-lock"
if [ ! -f "$stamp" ] || ! cmp -s "$stamp" "$dir/package-lock.json"; then
    (cd "$dir" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit \
        --no-fund --loglevel=error)
    cp "$dir/package-lock.json" "$stamp"
fi
