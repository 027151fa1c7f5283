#!/usr/bin/env bash
# bench/run-matcher.sh BUILD_DIR -- the matcher's benchmark (issue 4), called
# by bench/run.sh (or alone). Not a test.
#
# Starts a private redis-server (AOF everysec, as deployed) on a unix socket
# in a temp directory and runs build/bench/bench_matcher against it: for
# 10k, 100k and 1M open offers (and as many open needs) on Normandy's
# communes, the time to match one new need and one new offer (p50, p99) and
# the Redis memory per open item, then prints a table, where the time goes (a
# fit of each new offer's time over the match events it recorded, the phases of
# the matcher's job, a PING's round trip to the same Redis), the floor of any
# design that records its decisions in Redis (bench/matcher-floor.lua, through
# redis-benchmark) and the targets:
# p99 <= 1 ms at 1M, cost at 1M <= 3 x cost at 10k, <= 1 KB per open item.
# BENCH_MATCHER_SIZES (default "10000 100000 1000000"), BENCH_MATCHER_SAMPLES
# (default 1000), BENCH_MATCHER_CONF (extra [matcher] lines, e.g.
# "max_candidates = 10"), BENCH_MATCHER_STEADY=1 (the open items matched as
# they are loaded, as in steady state, instead of a cold start: about a
# millisecond per item, so ~5 minutes at 100k and much longer at 1M).
set -euo pipefail

BUILD=${1:-build}
SIZES=${BENCH_MATCHER_SIZES:-10000 100000 1000000}
SAMPLES=${BENCH_MATCHER_SAMPLES:-1000}
PY=/usr/bin/python3
[ -x "$BUILD/bench/bench_matcher" ] || { echo "Error: $BUILD/bench/bench_matcher missing (configure with -DMAILLAGE_BENCH=ON)" >&2; exit 1; }
command -v redis-server >/dev/null || { echo "Error: redis-server not found" >&2; exit 1; }

WORK=$(mktemp -d /tmp/maillage-bench-matcher-XXXXXX)
RPID=""
cleanup() {
  if [ -n "$RPID" ]; then kill "$RPID" 2>/dev/null || true; wait "$RPID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

redis-server --port 0 --unixsocket "$WORK/redis.sock" --unixsocketperm 700 --dir "$WORK" \
  --appendonly yes --appendfsync everysec --save "" --logfile "$WORK/redis.log" &
RPID=$!
for _ in $(seq 1 200); do
  grep -q "Ready to accept connections" "$WORK/redis.log" 2>/dev/null && break
  sleep 0.05
done

echo "Matcher benchmark: $(nproc) CPU(s), $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)," \
     "$(date -u '+%Y-%m-%d %H:%M UTC'); $SAMPLES new needs and $SAMPLES new offers per size" >&2
echo "(N open offers and N open needs, random communes of Normandy, 12 categories;" \
     "$([ "${BENCH_MATCHER_STEADY:-}" = 1 ] && echo "each matched as it was loaded: steady state)" || echo "none matched yet: a cold start)")" >&2
out=$("$BUILD/bench/bench_matcher" "unix://$WORK/redis.sock" "$SAMPLES" $SIZES)

# The floor (bench/matcher-floor.lua), on the Redis the last size left: one
# script call writing what a new need's decisions leave in Redis, at the sizes
# measured there (a need's record, a pair record, an explanation; an event is
# its explanation and the envelope's own fields, about 130 B), for 10
# proposals (max_proposals), with and without the explanations. Sequential
# calls (one client), as the matcher's.
avg_len() ( # avg_len PATTERN: the mean STRLEN of up to 200 keys matching it
  set +o pipefail # (head ends the scan early)
  redis-cli -s "$WORK/redis.sock" --scan --pattern "$1" 2>/dev/null | head -200 |
    while read -r k; do redis-cli -s "$WORK/redis.sock" STRLEN "$k"; done |
    awk '{ s += $1; n++ } END { printf "%d", n ? s / n : 0 }'
)
floor() { # floor EXPLAINED: p50 and p99 in µs of 2,000 calls
  redis-benchmark -s "$WORK/redis.sock" -c 1 -n 2000 -r 1000000 EVALSHA "$sha" 0 __rand_int__ \
    "$(head -c "$rec" /dev/zero | tr '\0' r)" "$(head -c "$pair" /dev/zero | tr '\0' p)" \
    "$(head -c $((exp + 130)) /dev/zero | tr '\0' e)" "$(head -c "$exp" /dev/zero | tr '\0' x)" 10 "$1" |
    awk '/p50 +p95 +p99/ { getline; printf "%.0f / %.0f", $3 * 1000, $5 * 1000 }'
}
rec=$(avg_len 'mg:need:*') pair=$(avg_len 'mg:pair:*') exp=$(avg_len 'mg:mexp:*')
sha=$(redis-cli -s "$WORK/redis.sock" SCRIPT LOAD "$(cat "$(dirname "$0")/matcher-floor.lua")")
floor_explained=$(floor 1) floor_bare=$(floor 0)

"$PY" - "$out" "$floor_explained" "$floor_bare" "$rec $pair $exp" <<'PYEOF'
import sys
rows = []
for line in sys.argv[1].splitlines():
    f = dict(kv.split("=", 1) for kv in line.split())
    rows.append({k: float(v) for k, v in f.items()})
def table(columns):
    """A Markdown table of `rows`: (header, format, value of a row) per column."""
    print()
    print("| " + " | ".join(h for h, _, _ in columns) + " |")
    print("|" + "---|" * len(columns))
    for r in rows:
        print("| " + " | ".join(fmt % value(r) for _, fmt, value in columns) + " |")

table([("open offers (+ as many needs)", "%d", lambda r: r["n"]),
       ("bytes/item", "%.0f", lambda r: r["bytes_per_item"]),
       ("new need p50 µs", "%.0f", lambda r: r["need_p50_us"]),
       ("p99 µs", "%.0f", lambda r: r["need_p99_us"]),
       ("new offer p50 µs", "%.0f", lambda r: r["offer_p50_us"]),
       ("p99 µs", "%.0f", lambda r: r["offer_p99_us"]),
       ("in Redis µs/event", "%.0f", lambda r: r["redis_us_per_event"]),
       ("proposals/event", "%.1f", lambda r: r["proposals_per_event"])])
table([("open offers", "%d", lambda r: r["n"]),
       ("new offer without decisions µs", "%.0f", lambda r: r["base_us"]),
       ("µs per decision", "%.1f", lambda r: r["per_decision_us"]),
       ("prepare µs", "%.0f", lambda r: r["prepare_us"]),
       ("apply call µs", "%.0f", lambda r: r["apply_us"]),
       ("score µs", "%.0f", lambda r: r["score_us"]),
       ("decide call µs", "%.0f", lambda r: r["decide_us"]),
       ("send µs", "%.0f", lambda r: r["send_us"] + r["rest_us"]),
       ("Redis PING µs, back to back / after 0.5 ms idle", "%s",
        lambda r: "%.0f / %.0f" % (r["rtt_busy_us"], r["rtt_idle_us"]))])
print()
print("Floor: one script call recording a new need and 10 decisions, nothing read (bench/matcher-floor.lua;"
      " record / pair record / explanation %s B): p50 / p99 %s µs with the explanations (mg:mexp:),"
      " %s µs without" % (" / ".join(sys.argv[4].split()), sys.argv[2], sys.argv[3]))
if rows:
    big, small = rows[-1], rows[0]
    p99 = max(big["need_p99_us"], big["offer_p99_us"])
    ratio = (big["need_p50_us"] + big["offer_p50_us"]) / max(1.0, small["need_p50_us"] + small["offer_p50_us"])
    mem = max(r["bytes_per_item"] for r in rows)
    print()
    print("Targets: p99 <= 1 ms at %d: %s (%.0f µs); cost at %d <= 3 x cost at %d: %s (%.2f x); "
          "<= 1 KB per open item: %s (%.0f B)" % (
              big["n"], "met" if p99 <= 1000 else "NOT met", p99, big["n"], small["n"],
              "met" if ratio <= 3 else "NOT met", ratio, "met" if mem <= 1024 else "NOT met", mem))
PYEOF
