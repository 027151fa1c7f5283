#!/usr/bin/env bash
# bench/run-notifier.sh BUILD_DIR -- the notifier's benchmark (issue 5), called
# by bench/run.sh (or alone). Not a test.
#
# From match.found sent to the broker to the entry in the staff inbox: p50
# and p99 at BENCH_NOTIFIER_RATE (default 1000) matches per second for
# BENCH_SECONDS (default 5), against a private redis-server (AOF everysec),
# the real broker and notifier. Target: p99 <= 5 ms.
set -euo pipefail
BUILD=${1:-build}
[ -x "$BUILD/bin/maillage-notifier" ] || { echo "Error: $BUILD/bin/maillage-notifier missing (build first)" >&2; exit 1; }
exec /usr/bin/python3 "$(dirname "$0")/bench_notifier.py" "$BUILD"
