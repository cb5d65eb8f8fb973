#!/usr/bin/env bash
# tools/run-demo.sh - `make run`: starts Scorewire in the foreground until
# Ctrl-C. Grows with the stages: PostgreSQL under ./var, the schema, the
# daemon and a demo feed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
echo "scorewire: starting (Ctrl-C stops it)"
exec "$root/bin/scorewire" "$@"
