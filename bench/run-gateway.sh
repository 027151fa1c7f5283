#!/usr/bin/env bash
# bench/run-gateway.sh BUILD_DIR -- the HTTP gateway's benchmark (issue 6),
# called by bench/run.sh (or alone). Not a test.
#
# One private stack (redis-server with AOF everysec, maillage-broker,
# maillage-gateway, loopback), then, on it and in this order:
#   - the ZeroMQ path: bench_maillage, acked need.reported of 200 bytes;
#   - POST /v1/events with wrk, one event per request (JSON object);
#   - POST /v1/events with wrk, 100 events per request (JSON array);
# each for BENCH_SECONDS (default 5), and prints acknowledged events per second
# side by side. An HTTP request is answered 202 only once the broker has
# journaled every event of it, so requests/s x events per request is an
# acked rate. Target (issue 6): >= 20,000 acked events/s in single-event
# requests. BENCH_WRK_CONNS (default 128) connections for single events,
# BENCH_WRK_BATCH_CONNS (default 16, so 1,600 events in flight) for batches,
# BENCH_WRK_THREADS (default 1) wrk threads.
set -euo pipefail

BUILD=${1:-build}
SECS=${BENCH_SECONDS:-5}
CONNS=${BENCH_WRK_CONNS:-128}
BATCH_CONNS=${BENCH_WRK_BATCH_CONNS:-16}
THREADS=${BENCH_WRK_THREADS:-1}
WINDOW=${BENCH_WINDOW:-2000}
PY=/usr/bin/python3
HERE=$(cd "$(dirname "$0")" && pwd)
for prog in "$BUILD/bin/maillage-broker" "$BUILD/bin/maillage-gateway" "$BUILD/bin/maillage" \
            "$BUILD/bench/bench_maillage"; do
  [ -x "$prog" ] || { echo "Error: $prog missing (configure with -DMAILLAGE_BENCH=ON)" >&2; exit 1; }
done
for prog in redis-server wrk; do
  command -v "$prog" >/dev/null || { echo "Error: $prog not found (scripts/deps.sh bench)" >&2; exit 1; }
done

WORK=$(mktemp -d /tmp/maillage-bench-gateway-XXXXXX)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
wait_for() { # FILE TEXT
  for _ in $(seq 1 200); do
    grep -q "$2" "$1" 2>/dev/null && return 0
    sleep 0.05
  done
  echo "Error: \"$2\" never appeared in $1:" >&2
  cat "$1" >&2
  exit 1
}

rport=$(free_port); iport=$(free_port); fport=$(free_port); hport=$(free_port)
redis-server --port "$rport" --bind 127.0.0.1 --dir "$WORK" --appendonly yes --appendfsync everysec \
  --save "" --logfile "$WORK/redis.log" &
PIDS+=($!)
wait_for "$WORK/redis.log" "Ready to accept connections"
cat >"$WORK/maillage.conf" <<CONF
[log]
level = warn
[redis]
url = redis://127.0.0.1:$rport/0
[broker]
ingest = tcp://127.0.0.1:$iport
fanout = tcp://127.0.0.1:$fport
[gateway]
listen = 127.0.0.1:$hport
rate_limit_per_s = 0
max_pending = 1000000
ack_timeout_ms = 30000
CONF
"$BUILD/bin/maillage-broker" --config "$WORK/maillage.conf" 2>"$WORK/broker.log" &
PIDS+=($!)
bpid=${PIDS[-1]}
"$BUILD/bin/maillage-gateway" --config "$WORK/maillage.conf" 2>"$WORK/gateway.log" &
PIDS+=($!)
gpid=$!
for _ in $(seq 1 200); do
  "$PY" -c "import socket; socket.create_connection(('127.0.0.1', $hport), 0.2)" 2>/dev/null && break
  sleep 0.05
done
token=$("$BUILD/bin/maillage" --config "$WORK/maillage.conf" token issue --network bench --types '*' 2>/dev/null)

echo "Gateway benchmark: $(nproc) CPU(s), $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)," \
     "$(date -u '+%Y-%m-%d %H:%M UTC'), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "200-byte need.reported events, ${SECS} s per run; wrk -t$THREADS, -c$CONNS (single) and -c$BATCH_CONNS (batches); ZeroMQ with $WINDOW in flight." >&2

echo "zeromq: throughput..." >&2
zmq_out=$("$BUILD/bench/bench_maillage" "tcp://127.0.0.1:$iport" throughput "$SECS" "$WINDOW" 1 gwz)

cpu_ticks() { # PID: user + system clock ticks of the process (all its threads)
  awk '{ print $14 + $15 }' "/proc/$1/stat"
}
run_wrk() { # BATCH TAG CONNECTIONS; then a line "cpu gateway=TICKS broker=TICKS"
  local g0 b0
  g0=$(cpu_ticks "$gpid"); b0=$(cpu_ticks "$bpid")
  BENCH_TOKEN=$token BENCH_BATCH=$1 BENCH_TAG=$2 \
    wrk -t"$THREADS" -c"$3" -d"${SECS}s" --latency -s "$HERE/gateway.lua" "http://127.0.0.1:$hport/v1/events"
  echo "cpu gateway=$(( $(cpu_ticks "$gpid") - g0 )) broker=$(( $(cpu_ticks "$bpid") - b0 )) hz=$(getconf CLK_TCK)"
}
echo "http: single-event requests..." >&2
single=$(run_wrk 1 s "$CONNS")
echo "http: batches of 100..." >&2
batch=$(run_wrk 100 b "$BATCH_CONNS")
journaled=$("$PY" - "$rport" <<'PYEOF'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"GET mg:journal:seq\r\n")
f = s.makefile("rb")
line = f.readline()
print(f.readline().strip().decode() if line.startswith(b"$") and not line.startswith(b"$-1") else 0)
PYEOF
)

"$PY" - "$zmq_out" "$single" "$batch" "$journaled" <<'PYEOF'
import re, sys
zmq, single, batch, journaled = sys.argv[1:5]
zf = dict(kv.split("=", 1) for kv in zmq.split())

def cpu_us(text, events):
    """CPU time of the gateway and the broker per acked event, in µs: what
    the figure costs, whatever else the machine was doing."""
    m = re.search(r"cpu gateway=(\d+) broker=(\d+) hz=(\d+)", text)
    if not m or not events:
        return "-"
    g, b, hz = (int(x) for x in m.groups())
    return "%.1f / %.1f" % (g * 1e6 / hz / events, b * 1e6 / hz / events)

def wrk(text, per):
    rps = float(re.search(r"Requests/sec:\s*([0-9.]+)", text).group(1))
    total = int(re.search(r"(\d+) requests in", text).group(1))
    bad = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", text)
    bad = int(bad.group(1)) if bad else 0
    errors = re.search(r"Socket errors:.*", text)
    good = rps * (total - bad) / total if total else 0
    lat = dict(re.findall(r"^\s+(50|99)%\s+([0-9.]+\w+)", text, re.M))
    return (good * per, rps, lat.get("50", "-"), lat.get("99", "-"), bad, errors.group(0) if errors else "",
            cpu_us(text, (total - bad) * per))

rows = [("ZeroMQ ingest (bench_maillage, 1 DEALER)", float(zf["rate"]), "-", "-", "-", 0, "", "-")]
for name, text, per in (("HTTP POST /v1/events, 1 event/request", single, 1),
                        ("HTTP POST /v1/events, 100 events/request", batch, 100)):
    ev, rps, p50, p99, bad, errors, cpu = wrk(text, per)
    rows.append((name, ev, "%.0f" % rps, p50, p99, bad, errors, cpu))
print()
print("| %-42s | %14s | %10s | %9s | %9s | %7s | %19s |" % (
    "path (same broker, same Redis)", "acked events/s", "requests/s", "p50", "p99", "non-2xx",
    "CPU µs/event gw/brk"))
print("|%s|%s|%s|%s|%s|%s|%s|" % ("-" * 44, "-" * 16, "-" * 12, "-" * 11, "-" * 11, "-" * 9, "-" * 21))
for name, ev, rps, p50, p99, bad, errors, cpu in rows:
    print("| %-42s | %14.0f | %10s | %9s | %9s | %7s | %19s |" % (name, ev, rps, p50, p99, bad, cpu))
for name, *_, errors, cpu in rows:
    if errors:
        print("%s: wrk %s" % (name, errors))
single_rate = rows[1][1]
print()
print("journal sequence at the end: %s" % journaled)
print("Target: >= 20,000 acked events/s in single-event requests: %s (%.0f; %.2f x the ZeroMQ path)" % (
    "met" if single_rate >= 20000 else "NOT met", single_rate, single_rate / rows[0][1] if rows[0][1] else 0))
PYEOF
