#!/usr/bin/env bash
# bench/run.sh BUILD_DIR -- the benchmark of `make bench` (not a test).
#
# On this machine, in one run, for 200-byte events, prints one table:
#   - maillage-broker with its real journal (redis-server, AOF everysec,
#     loopback): acknowledged ingest throughput with many events in flight,
#     and one-at-a-time round trip (p50, p99);
#   - NATS JetStream (nats-server -js, file storage): js_PublishAsync with a
#     message id, and synchronous js_Publish;
#   - the raw ceilings: redis-benchmark pipelined XADD, and a ZeroMQ
#     DEALER/ROUTER echo without Redis.
# Everything it starts lives in a temp directory and is stopped by pid.
# BENCH_SECONDS (default 5) is the duration of each throughput run,
# BENCH_SAMPLES (default 5000) the number of round trips timed.
set -euo pipefail

BUILD=${1:-build}
SECS=${BENCH_SECONDS:-5}
SAMPLES=${BENCH_SAMPLES:-5000}
WINDOW=${BENCH_WINDOW:-2000}
PY=/usr/bin/python3
for prog in "$BUILD/bin/maillage-broker" "$BUILD/bench/bench_maillage" "$BUILD/bench/bench_nats" \
            "$BUILD/bench/bench_zmq"; do
  [ -x "$prog" ] || { echo "Error: $prog missing (configure with -DMAILLAGE_BENCH=ON)" >&2; exit 1; }
done
for prog in redis-server redis-benchmark nats-server; do
  command -v "$prog" >/dev/null || { echo "Error: $prog not found (scripts/deps.sh bench)" >&2; exit 1; }
done

WORK=$(mktemp -d /tmp/maillage-bench-XXXXXX)
PIDS=()
stop_all() {
  for pid in "${PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  PIDS=()
}
cleanup() {
  stop_all
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
wait_for() { # FILE TEXT: until TEXT appears in FILE (10 s)
  for _ in $(seq 1 200); do
    grep -q "$2" "$1" 2>/dev/null && return 0
    sleep 0.05
  done
  echo "Error: \"$2\" never appeared in $1:" >&2
  cat "$1" >&2
  exit 1
}
field() { # LINE KEY -> value of KEY=value in LINE
  sed -n "s/.*\b$2=\([^ ]*\).*/\1/p" <<<"$1"
}
start_redis() { # DIR PORT
  mkdir -p "$1"
  redis-server --port "$2" --bind 127.0.0.1 --dir "$1" --appendonly yes --appendfsync everysec \
    --save "" --logfile "$1/redis.log" &
  PIDS+=($!)
  wait_for "$1/redis.log" "Ready to accept connections"
}

echo "Maillage benchmark: $(nproc) CPU(s), $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)," \
     "$(date -u '+%Y-%m-%d %H:%M UTC'), load average $(cut -d' ' -f1-3 /proc/loadavg)"
load1=$(cut -d' ' -f1 /proc/loadavg)
if awk "BEGIN { exit !($load1 > 1.0) }"; then
  echo "Warning: the machine is busy (load $load1): figures will be low and noisy." >&2
fi
echo "200-byte events; throughput runs of ${SECS} s with ${WINDOW} in flight; ${SAMPLES} timed round trips." >&2

# ---- (a) Maillage: the broker and its journal ---------------------------------
rport=$(free_port)
start_redis "$WORK/redis-a" "$rport"
iport=$(free_port)
fport=$(free_port)
cat >"$WORK/broker.conf" <<CONF
[log]
level = info
[redis]
url = redis://127.0.0.1:$rport/0
[broker]
ingest = tcp://127.0.0.1:$iport
fanout = tcp://127.0.0.1:$fport
CONF
"$BUILD/bin/maillage-broker" --config "$WORK/broker.conf" 2>"$WORK/broker.log" &
PIDS+=($!)
wait_for "$WORK/broker.log" "broker: ready"
echo "maillage: throughput..." >&2
mg_tp=$("$BUILD/bench/bench_maillage" "tcp://127.0.0.1:$iport" throughput "$SECS" "$WINDOW" 1 tp)
echo "maillage: round trips..." >&2
mg_lat=$("$BUILD/bench/bench_maillage" "tcp://127.0.0.1:$iport" latency "$SAMPLES" lat)
stop_all

# ---- (b) NATS JetStream -------------------------------------------------------
nport=$(free_port)
mkdir -p "$WORK/nats"
nats-server -js -a 127.0.0.1 -p "$nport" -sd "$WORK/nats" -l "$WORK/nats.log" &
PIDS+=($!)
wait_for "$WORK/nats.log" "Server is ready"
echo "jetstream: throughput..." >&2
js_tp=$("$BUILD/bench/bench_nats" "nats://127.0.0.1:$nport" throughput "$SECS" "$WINDOW" tp)
echo "jetstream: round trips..." >&2
js_lat=$("$BUILD/bench/bench_nats" "nats://127.0.0.1:$nport" latency "$SAMPLES" lat)
stop_all

# ---- (c) raw ceilings -----------------------------------------------------------
rport=$(free_port)
start_redis "$WORK/redis-c" "$rport"
value=$(head -c 200 /dev/zero | tr '\0' x)
echo "redis: pipelined XADD..." >&2
rb_tp=$(redis-benchmark -p "$rport" -P 64 -n 500000 -q XADD mg:bench '*' e "$value" | tr '\r' '\n' | tail -1)
echo "redis: one XADD at a time..." >&2
rb_lat=$(redis-benchmark -p "$rport" -c 1 -n "$SAMPLES" -q XADD mg:bench1 '*' e "$value" | tr '\r' '\n' | tail -1)
stop_all
echo "zeromq: echo..." >&2
zq_tp=$("$BUILD/bench/bench_zmq" throughput "$SECS" "$WINDOW")
zq_lat=$("$BUILD/bench/bench_zmq" latency "$SAMPLES")

# ---- the table ---------------------------------------------------------------------
rb_rate=$(sed -n 's/.*: \([0-9.]*\) requests per second.*/\1/p' <<<"$rb_tp")
rb_p50=$(sed -n 's/.*p50=\([0-9.]*\) msec.*/\1/p' <<<"$rb_lat")
"$PY" - "$(field "$mg_tp" rate)" "$(field "$mg_lat" p50_us)" "$(field "$mg_lat" p99_us)" \
  "$(field "$js_tp" rate)" "$(field "$js_lat" p50_us)" "$(field "$js_lat" p99_us)" \
  "${rb_rate:-0}" "${rb_p50:-0}" "$(field "$zq_tp" rate)" "$(field "$zq_lat" p50_us)" \
  "$(field "$zq_lat" p99_us)" <<'PYEOF'
import sys
v = [float(x or 0) for x in sys.argv[1:]]
mg_tp, mg_p50, mg_p99, js_tp, js_p50, js_p99, rb_tp, rb_p50_ms, zq_tp, zq_p50, zq_p99 = v
def r(x, y):
    return "%.2f" % (x / y) if y else "-"
rows = [
    ("Maillage broker + Redis journal (acked)", mg_tp, mg_p50, mg_p99),
    ("NATS JetStream, file storage (acked)", js_tp, js_p50, js_p99),
    ("Redis XADD raw (pipelined -P 64 / -c 1)", rb_tp, rb_p50_ms * 1000, None),
    ("ZeroMQ DEALER/ROUTER echo, no Redis", zq_tp, zq_p50, zq_p99),
]
print()
print("| %-41s | %12s | %8s | %9s | %9s | %8s |" % ("200-byte events", "events/s", "vs JS", "p50 µs", "p99 µs", "p50 vs JS"))
print("|%s|%s|%s|%s|%s|%s|" % ("-" * 43, "-" * 14, "-" * 10, "-" * 11, "-" * 11, "-" * 10))
for name, tp, p50, p99 in rows:
    print("| %-41s | %12.0f | %8s | %9.1f | %9s | %8s |" % (
        name, tp, r(tp, js_tp), p50, "%.1f" % p99 if p99 is not None else "-", r(p50, js_p50)))
print()
print("Targets: throughput >= JetStream async: %s (%s x); round trip p50 <= 60 %% of JetStream sync: %s (%s x)" % (
    "met" if mg_tp >= js_tp else "NOT met", r(mg_tp, js_tp),
    "met" if js_p50 and mg_p50 <= 0.6 * js_p50 else "NOT met", r(mg_p50, js_p50)))
PYEOF

# ---- the matcher (issue 4): time to match, memory per open item --------------------
echo
"$(dirname "$0")/run-matcher.sh" "$BUILD"

# ---- the notifier (issue 5): from match.found to the staff inbox --------------------
echo
"$(dirname "$0")/run-notifier.sh" "$BUILD"

# ---- the HTTP gateway (issue 6): acked POST /v1/events beside the ZeroMQ path ------
echo
"$(dirname "$0")/run-gateway.sh" "$BUILD"
