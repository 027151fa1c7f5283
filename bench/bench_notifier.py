"""bench_notifier.py BUILD_DIR -- from match.found to the staff inbox (issue 5).

Starts a private redis-server (AOF everysec), the broker and the notifier
(harness of the integration tests), emits match.found envelopes at
BENCH_NOTIFIER_RATE per second (default 1000) for BENCH_SECONDS (default 5)
through the broker's ingest, and takes each inbox entry as it arrives
(BZPOPMIN on the bench staff member's inbox, a consumer of its own). Latency
= arrival in the inbox - the moment the envelope was sent (so it includes the
broker's validation and journal append: an upper bound of "from the journal").
Prints p50, p99 and max in microseconds. Not a test."""

import os
import sys
import threading
import time

BUILD = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build")
SOURCE = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
os.environ.setdefault("MAILLAGE_BIN", os.path.join(BUILD, "bin"))
os.environ.setdefault("MAILLAGE_BUILD", BUILD)
sys.path[:0] = [os.path.join(BUILD, "python"), os.path.join(SOURCE, "tests", "integration")]

import harness as h  # noqa: E402

RATE = int(os.environ.get("BENCH_NOTIFIER_RATE", "1000"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "5"))


def main():
    ws = h.Workspace("maillage-bench-notifier-")
    try:
        redis = ws.own(h.Redis(ws.dir).start())
        broker, sections = h.start_broker(ws, redis)
        sections = dict(sections)
        sections["log"] = {"level": "warn"}
        sections["notifier"] = {"default_staff": "bench", "staff_refresh_ms": 1000}
        sections["staff.bench"] = {"name": "Bench", "channels": "inbox"}
        conf = h.write_config(ws.path("notifier.conf"), sections)
        d = ws.own(h.Daemon(ws.dir, "maillage-notifier", conf))
        d.start()
        h.wait_until(lambda: redis.call("SISMEMBER", "mg:consumers", "notifier") == 1, 10, what="notifier")
        time.sleep(0.5)
        client = ws.own(h.IngestClient(sections["broker"]["ingest"]))
        sent = {}
        got = {}
        n = int(RATE * SECONDS)

        def taker():
            import socket
            host, port = redis.url[len("redis://"):].split("/")[0].split(":")
            s = socket.create_connection((host, int(port)))
            r = h._Resp(s)
            while len(got) < n:
                reply = r.call("BZPOPMIN", "mg:inbox:bench", "2")
                t = time.monotonic()
                if not reply:
                    if time.monotonic() - last_send[0] > 5:
                        return
                    continue
                item = r.call("HGET", b"mg:notif:" + reply[1], "item")
                got[item.decode()[len("match:"):]] = t

        last_send = [time.monotonic()]
        th = threading.Thread(target=taker, daemon=True)
        th.start()
        start = time.monotonic()
        for i in range(n):
            due = start + i / RATE
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            env = h.Envelope(event_id="match.bench%d.1" % i, type="match.found",
                             occurred_at_ms=int(time.time() * 1000))
            m = env.match_found
            m.match_id, m.need_id, m.offer_id = "bench%d" % i, "n%d" % i, "o%d" % i
            m.need_structure_id, m.offer_structure_id = "s1", "s2"
            m.category, m.department, m.score, m.revision, m.rank = "locaux", "14", 0.8, 1, 1
            m.explanation = "Même catégorie, à 3 km."
            sent["bench%d" % i] = time.monotonic()
            client.send(env)
            while client.sock.poll(0):
                client.sock.recv()
            last_send[0] = time.monotonic()
        th.join(SECONDS + 15)
        lat = sorted((got[k] - sent[k]) * 1e6 for k in got if k in sent)
        if not lat:
            print("notifier bench: nothing arrived")
            return 1
        def pct(p):
            return lat[min(len(lat) - 1, int(p / 100.0 * len(lat)))]
        achieved = n / (last_send[0] - start)
        print("match.found -> inbox: %d of %d at %.0f/s: p50 %.0f us, p99 %.0f us, max %.0f us (target p99 <= 5000 us: %s)"
              % (len(lat), n, achieved, pct(50), pct(99), lat[-1], "met" if pct(99) <= 5000 else "NOT met"))
        return 0 if len(lat) == n else 1
    finally:
        ws.close()


if __name__ == "__main__":
    sys.exit(main())
