"""GET /v1/stream, the live stream of a staff member's inbox (Server-Sent
Events), against the real stack (redis-server, broker, matcher, notifier,
maillage-gateway) with a raw-socket SSE client that decodes the chunked
reply itself.

A new match arrives live after a need is emitted through POST /v1/events;
a client that reconnects with Last-Event-ID (or ?lastEventId=) gets exactly
what it missed, in order, without loss or duplicate; without it, only what
arrives later; heartbeats; the 503 beyond stream_max_clients; 401/403;
clients that disconnect mid-stream (a clean close and a reset) while the
others go on and the gateway keeps serving; SIGTERM ends every stream
cleanly. A match retired or revised (PUBLISH mg:match:changed, as the
notifier does) reaches every open stream as a hint, `event: match`, with no
`id:` (the inbox position is not moved), and {"all": true} when the gateway
had to subscribe again; a client that does not read is still dropped once
its backlog is full, hints or not. Under MAILLAGE_SANITIZE the gateway's log must hold no sanitizer
report."""

import json
import os
import signal
import socket
import struct
import time
import unittest

import harness as h
import test_gateway_query as gq
import test_matcher as tm  # the event builders (as a module: its tests do not run here)

CAEN, IFS, HEROUVILLE = tm.CAEN, tm.IFS, tm.HEROUVILLE


class SseClient:
    """GET /v1/stream over a raw socket: status, headers, then events."""

    def __init__(self, port, token=None, last_event_id=None, query="", timeout=15.0, extra_headers=()):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        lines = ["GET /v1/stream%s HTTP/1.1" % query, "Host: 127.0.0.1", "Accept: text/event-stream"]
        if token:
            lines.append("Authorization: Bearer " + token)
        if last_event_id:
            lines.append("Last-Event-ID: " + last_event_id)
        lines.extend(extra_headers)
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        self.raw = b""
        self.hints = []       # `event: match` blocks next_event() passed over, as lines
        self.text = b""       # decoded body
        self.ended = False    # the terminating chunk was received
        head = self._until(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        self.status = int(status_line.split()[1])
        self.headers = {}
        for line in header_lines:
            k, _, v = line.partition(":")
            self.headers[k.strip().lower()] = v.strip()
        self.chunked = self.headers.get("transfer-encoding", "").lower() == "chunked"
        if not self.chunked:
            n = int(self.headers.get("content-length", "0"))
            while len(self.raw) < n:
                self._recv()
            self.body = self.raw[:n]

    def _recv(self):
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("connection closed")
        self.raw += data

    def _until(self, marker):
        while marker not in self.raw:
            self._recv()
        head, _, self.raw = self.raw.partition(marker)
        return head

    def _decode(self):
        """Move complete chunks from raw to text."""
        while True:
            end = self.raw.find(b"\r\n")
            if end < 0:
                return
            size = int(self.raw[:end].split(b";")[0], 16)
            if size == 0:
                self.ended = True
                return
            if len(self.raw) < end + 2 + size + 2:
                return
            self.text += self.raw[end + 2:end + 2 + size]
            self.raw = self.raw[end + 2 + size + 2:]

    def next_block(self, timeout=15.0):
        """The next SSE block (lines up to a blank line), as a list of lines."""
        deadline = time.monotonic() + timeout
        self._decode()
        while b"\n\n" not in self.text:
            if self.ended:
                raise EOFError("stream ended")
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("nothing on the stream")
            self.sock.settimeout(left)
            try:
                self._recv()
            except socket.timeout:
                raise TimeoutError("nothing on the stream") from None
            self._decode()
        block, _, self.text = self.text.partition(b"\n\n")
        return block.decode("utf-8").split("\n")

    def next_event(self, timeout=15.0):
        """The next notification as {"id", "event", "data"} (comments and
        retry skipped; the starting `position` event kept in self.position,
        `match` hints in self.hints)."""
        deadline = time.monotonic() + timeout
        while True:
            lines = self.next_block(max(0.01, deadline - time.monotonic()))
            ev = {}
            for line in lines:
                if line.startswith(":"):
                    continue
                k, _, v = line.partition(":")
                ev[k] = v[1:] if v.startswith(" ") else v
            if ev.get("event") == "position":
                self.position = ev
                continue
            if ev.get("event") == "match":
                self.hints.append(lines)
                continue
            if "data" in ev:
                ev["data"] = json.loads(ev["data"])
                return ev

    def next_hint(self, timeout=15.0):
        """The next `event: match` block, as its lines (comments dropped);
        a notification meanwhile is a failure."""
        if self.hints:
            return self.hints.pop(0)
        deadline = time.monotonic() + timeout
        while True:
            lines = [line for line in self.next_block(max(0.01, deadline - time.monotonic()))
                     if not line.startswith(":")]
            if "event: match" in lines:
                return lines
            if "event: position" in lines or lines == ["retry: 2000"] or not lines:
                continue
            raise AssertionError("a notification instead of a hint: %r" % lines)

    def events(self, n, timeout=20.0):
        return [self.next_event(timeout) for _ in range(n)]

    def quiet(self, seconds):
        """Assert nothing but comments arrive for `seconds`."""
        try:
            ev = self.next_event(seconds)
        except TimeoutError:
            return
        raise AssertionError("unexpected event %r" % ev)

    def wait_end(self, timeout=15.0):
        """Until the terminating chunk or EOF."""
        deadline = time.monotonic() + timeout
        self._decode()
        while not self.ended:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                self._recv()
            except EOFError:
                return "eof"
            self._decode()
        return "end"

    def reset(self):
        """Close abruptly (RST), as a client that crashes."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()

    def close(self):
        self.sock.close()


sanitizer_reports = gq.sanitizer_reports


class StreamTest(unittest.TestCase):
    def setUp(self):
        self.ws = h.Workspace("maillage-gws-")
        self.clients = []

    def tearDown(self):
        for c in self.clients:
            c.close()
        try:
            if getattr(self, "st", None) and self.st.gateway and self.st.gateway.proc:
                rc = self.st.gateway.stop()
                log = self.st.gateway.log()
                self.assertEqual(sanitizer_reports(log), [])
                self.assertEqual(rc, 0, log[-3000:])
        finally:
            self.ws.close(keep=bool(os.environ.get("KEEP")))

    def stack(self, **gateway):
        self.st = gq.Stack(self.ws, gateway=gateway or None)
        gq.scenario(self.st)
        self.claire = self.st.token("--staff", "claire")
        self.network = self.st.token("--network", "reseau-caen", "--types", "*")
        return self.st

    def open(self, token=None, **kw):
        c = SseClient(self.st.port, token or self.claire, **kw)
        self.clients.append(c)
        return c

    def open_unread(self, rcvbuf):
        """A raw socket asking claire's stream, with a receive buffer of
        `rcvbuf` bytes, that the test never reads."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.connect(("127.0.0.1", self.st.port))
        sock.sendall(("GET /v1/stream HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n\r\n"
                      % self.claire).encode())
        self.clients.append(sock)
        return sock

    def post_need(self, nid, sid="s-caen", commune=CAEN, title="Besoin de local"):
        """need.reported through POST /v1/events with the network token."""
        from google.protobuf import json_format
        env = tm.need(nid, sid, commune, title=title)
        body = json_format.MessageToDict(env)
        status, answer, _ = self.st.http.request("POST", "/v1/events", self.network, body=body)
        self.assertEqual(status, 202, answer)
        return answer

    def inbox_after(self, position):
        """The inbox's entries after `position`, oldest first (what a
        resumed stream must send)."""
        items = self.st.http.get("/v1/staff/me/inbox", self.claire, limit=200)[1]["items"]
        def key(p):
            ms, _, nid = p.partition("-")
            return int(ms), nid
        return [i["id"] for i in reversed(items) if key(i["position"]) > key(position)]

    def test_new_match_arrives_live(self):
        self.stack()
        c = self.open()
        self.assertEqual(c.status, 200)
        self.assertTrue(c.headers["content-type"].startswith("text/event-stream"))
        self.assertEqual(c.headers["cache-control"], "no-cache")
        self.assertEqual(c.next_block(), ["retry: 2000"])
        # Only what arrives from now on: the scenario's entries are not sent
        # (only where the stream starts).
        c.quiet(0.5)
        self.assertEqual(c.position["event"], "position")
        self.post_need("n-live", title="Cuisine pour traiteur solidaire")
        ev = c.next_event()
        self.assertEqual(ev["event"], "notification")
        d = ev["data"]
        self.assertEqual(ev["id"], d["position"])
        self.assertEqual(ev["id"], "%s-%s" % (ev["id"].split("-")[0], d["id"]))
        self.assertEqual((d["kind"], d["needId"], d["offerId"], d["status"], d["category"], d["department"]),
                         ("match", "n-live", "o-herouville", "new", "locaux", "14"))
        self.assertEqual(d["matchId"], self.st.match_id("n-live", "o-herouville"))
        self.assertIn("Cuisine pour traiteur solidaire", d["title"])
        self.assertIs(d["read"], False)
        # The same entry as the inbox shows.
        top = self.st.http.get("/v1/staff/me/inbox", self.claire, limit=1)[1]["items"][0]
        self.assertEqual(top, d)
        doc = gq.openapi()
        gq.check_schema(doc, {"$ref": "#/components/schemas/Notification"}, d)

    def test_a_client_cut_before_any_notification_resumes_from_where_it_started(self):
        self.stack()
        newest = self.st.http.get("/v1/staff/me/inbox", self.claire, limit=1)[1]["items"][0]["position"]
        c = self.open()
        self.assertEqual(c.next_block(), ["retry: 2000"])
        # The starting position comes first, as an event of its own.
        self.assertEqual(c.next_block(), ["id: " + newest, "event: position", "data: " + newest])
        c.close()
        self.post_need("n-while-away", title="Local pendant la coupure")
        self.st.settle()
        again = self.open(last_event_id=newest)
        self.assertEqual(again.next_event()["data"]["needId"], "n-while-away")

    def test_a_stream_on_an_empty_inbox_starts_at_its_beginning(self):
        """So that a client cut off before its first notification gets
        what arrived meanwhile (without a position it would start again at
        the newest entry, skipping it)."""
        self.stack()
        self.st.redis.call("DEL", "mg:inbox:claire")
        c = self.open()
        self.assertEqual(c.next_block(), ["retry: 2000"])
        self.assertEqual(c.next_block(), ["id: 0-0", "event: position", "data: 0-0"])
        c.close()
        self.post_need("n-while-away", title="Local pendant la coupure")
        self.st.settle()
        again = self.open(last_event_id="0-0")
        self.assertEqual(again.next_event()["data"]["needId"], "n-while-away")

    def test_resume_after_last_event_id_without_loss_or_duplicate(self):
        self.stack()
        c = self.open()
        c.next_block()
        self.post_need("n-a", title="Premier local")
        first = c.next_event()
        c.close()
        # Missed while disconnected: three matches.
        for i in range(3):
            self.post_need("n-b%d" % i, title="Local %d" % i)
        self.st.settle()
        missed = self.inbox_after(first["id"])
        self.assertEqual(len(missed), 3)
        again = self.open(last_event_id=first["id"])
        got = again.events(3)
        self.assertEqual([e["data"]["id"] for e in got], missed)
        self.assertEqual(sorted(e["data"]["needId"] for e in got), ["n-b0", "n-b1", "n-b2"])
        again.quiet(1.0)
        # Then live again on the resumed stream, once.
        self.post_need("n-c", title="Encore un local")
        self.assertEqual(again.next_event()["data"]["needId"], "n-c")
        again.quiet(2.5)  # past a poll: nothing is sent twice
        # ?lastEventId= for clients that cannot set the header.
        q = self.open(query="?lastEventId=" + got[0]["id"])
        self.assertEqual([e["data"]["needId"] for e in q.events(3)],
                         [e["data"]["needId"] for e in got[1:]] + ["n-c"])
        # From the very beginning of the inbox.
        everything = self.open(last_event_id="0-0")
        total = self.st.http.get("/v1/staff/me/inbox", self.claire, limit=200)[1]["total"]
        ids = [e["data"]["id"] for e in everything.events(total)]
        self.assertEqual(len(set(ids)), total)
        everything.quiet(0.5)
        for hostile in ("yesterday", "-", "12-", "-n-1", "9" * 40 + "-n-1", "12-a b", "12-" + "x" * 65, "12-é",
                        "12-n-1\x01"):
            bad = self.open(last_event_id=hostile)
            self.assertEqual(bad.status, 400, hostile)
        self.assertEqual(self.open(query="?lastEventId=nope").status, 400)

    def test_entries_at_the_same_millisecond_are_neither_lost_nor_repeated(self):
        self.stack()
        # Entries written at one millisecond (as a notifier writes a batch):
        # the position orders them by id too.
        ms = int(time.time() * 1000) + 60000
        nids = ["n-%032x" % (0xabc000 + i) for i in range(60)]
        for nid in nids:
            self.st.redis.call("HSET", "mg:notif:" + nid, "kind", "digest", "item", "digest:x", "title", "t",
                               "created_at", ms, "read", 0)
            self.st.redis.call("ZADD", "mg:inbox:claire", ms, nid)
        c = self.open(last_event_id="%d-n-0" % (ms - 1))
        got = [e["data"]["id"] for e in c.events(60)]
        self.assertEqual(got, sorted(nids))
        c.close()
        resumed = self.open(last_event_id="%d-%s" % (ms, nids[29]))
        self.assertEqual([e["data"]["id"] for e in resumed.events(30)], sorted(nids)[30:])
        resumed.quiet(0.5)
        page = self.st.http.get("/v1/staff/me/inbox", self.claire, limit=7)[1]
        paged, _ = gq.follow(self, lambda cur: self.st.http.get(
            "/v1/staff/me/inbox", self.claire, limit=7, **({"cursor": cur} if cur else {}))[1], 7)
        self.assertEqual([i["id"] for i in paged][:60], sorted(nids, reverse=True))
        self.assertEqual(page["items"][0]["id"], max(nids))

    def publish_hints(self, match_ids):
        """PUBLISH mg:match:changed for each id, pipelined on a connection
        of its own; returns how many subscribers got the last one."""
        conn = self.st.redis._connect()
        try:
            conn.sock.settimeout(30)
            out = b"".join(b"*3\r\n$7\r\nPUBLISH\r\n$16\r\nmg:match:changed\r\n$%d\r\n%s\r\n"
                           % (len(m), m.encode()) for m in match_ids)
            conn.sock.sendall(out)
            return [conn.read() for _ in match_ids][-1]
        finally:
            conn.sock.close()

    def metric(self, name):
        status, body, _ = self.st.http.get("/metrics")
        for line in body.decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        return None

    def test_a_changed_match_is_a_hint_to_every_stream_that_keeps_the_position(self):
        self.stack()
        c = self.open()
        self.assertEqual(c.next_block(), ["retry: 2000"])
        self.post_need("n-hint", title="Cuisine retirée ensuite")
        ev = c.next_event()
        mid, position = ev["data"]["matchId"], ev["id"]
        # Another staff member's stream gets the hint too.
        remi = self.open(token=self.st.token("--staff", "remi"))
        self.assertEqual(remi.next_block(), ["retry: 2000"])
        # The notifier's PUBLISH for a retired or revised match.
        self.assertEqual(self.publish_hints([mid]), 1)  # the gateway's one subscription
        hint = c.next_hint()
        # No id: line at all (an empty one would reset the client's
        # Last-Event-ID): the position stays the last notification's.
        self.assertEqual(hint, ["event: match", 'data: {"matchId":"%s"}' % mid])
        self.assertEqual(json.loads(hint[1][len("data: "):]), {"matchId": mid})
        self.assertEqual(remi.next_hint(), hint)
        h.wait_until(lambda: self.metric("maillage_gateway_stream_match_hints_total") == 2, 10, 0.1,
                     "the hints counted")
        # Not replayed: a client resuming from the position gets what it
        # missed in the inbox, and no hint.
        c.close()
        self.post_need("n-after-hint", title="Local après l'indice")
        self.st.settle()
        again = self.open(last_event_id=position)
        self.assertEqual(again.next_event()["data"]["needId"], "n-after-hint")
        again.quiet(1.0)
        self.assertEqual(again.hints, [])
        # Not an id: ignored.
        self.publish_hints(["pas un identifiant"])
        again.quiet(0.5)
        self.assertEqual(again.hints, [])
        # The gateway's subscription cut (hints may be lost meanwhile): once
        # it has subscribed again, every stream is told to look again at all.
        self.st.redis.call("CLIENT", "KILL", "TYPE", "pubsub")
        self.assertEqual(again.next_hint(10), ["event: match", 'data: {"all":true}'])
        self.assertEqual(remi.next_hint(10), ["event: match", 'data: {"all":true}'])
        h.wait_until(lambda: self.publish_hints([mid]) == 1, 10, 0.1, "the gateway subscribed again")
        self.assertEqual(again.next_hint(), hint)

    def test_a_client_not_reading_is_dropped_with_hints_too(self):
        self.stack()
        # A client that stops reading, with a small receive buffer; another that reads.
        slow = self.open_unread(4096)
        reader = self.open()
        reader.next_block()
        h.wait_until(lambda: self.metric("maillage_gateway_streams") == 2, 10, 0.1, "both streams")

        def drain(until=None, seconds=0.3):
            """Read the reader's raw bytes (not decoded: too many) until
            quiet, or until `until` is seen; returns the last bytes."""
            tail = b""
            deadline = time.monotonic() + 30
            reader.sock.settimeout(seconds)
            while time.monotonic() < deadline:
                try:
                    chunk = reader.sock.recv(1 << 20)
                except socket.timeout:
                    if until is None:
                        return tail
                    continue
                if not chunk:
                    raise EOFError("the reader's stream ended")
                tail = (tail + chunk)[-65536:]
                if until is not None and until in tail:
                    return tail
            raise TimeoutError("nothing more for the reader")
        # Hints of ~75 bytes each until the slow one's backlog passes 1 MiB
        # (plus what the kernel's buffers hold), in batches the reader drains.
        mid = "m-" + "0" * 32
        sent = 0
        while self.metric("maillage_gateway_streams_dropped_total") == 0:
            self.assertLess(sent, 400000, "the client that does not read was never dropped")
            self.publish_hints([mid] * 2000)
            sent += 2000
            self.assertIn(b"event: match", drain())
        self.assertEqual(self.metric("maillage_gateway_streams"), 1)
        self.assertEqual(self.metric("maillage_gateway_streams_dropped_total"), 1)
        self.assertIn("stream of claire dropped: the client does not read", self.st.gateway.log())
        # Dropped means gone: the connection is closed at once and its backlog
        # thrown away (it was kept until the client read it all, or for as
        # long as it read a byte now and then).
        self.assert_closed_soon(slow)
        # The one that reads goes on.
        self.post_need("n-after-flood", title="Local après le flot")
        drain(until=b'"needId":"n-after-flood"')

    def test_a_client_that_acknowledges_nothing_frees_its_slot(self):
        # What a vanished client (a laptop put to sleep: no FIN, no RST) and
        # one that keeps its receive window shut have in common: the data
        # sent to them stays unacknowledged. Here, the window: a tiny receive
        # buffer never read, filled by a few hints, far below the 1 MiB of
        # backlog that drops a client not reading. Without TCP_USER_TIMEOUT
        # the kernel's window probes are answered and the stream stays.
        self.stack(stream_heartbeat_s=1, stream_max_per_staff=1)
        self.open_unread(2048)
        h.wait_until(lambda: self.metric("maillage_gateway_streams") == 1, 10, 0.1, "the stream")
        self.assertEqual(self.publish_hints(["m-" + "0" * 32] * 200), 1)  # ~15 kB
        # Two heartbeats after the window closed, the connection ends and
        # claire (one stream at most) can open another.
        h.wait_until(lambda: self.metric("maillage_gateway_streams") == 0, 15, 0.2, "the stuck stream ended")
        self.assertEqual(self.metric("maillage_gateway_streams_dropped_total"), 0)
        again = self.open()
        self.assertEqual(again.status, 200)
        again.next_block()  # retry
        self.assertEqual(again.next_block()[1], "event: position")
        # A client that reads is acknowledging: its stream outlives many
        # heartbeats.
        time.sleep(5)
        self.assertEqual(again.next_block(5), [": ping"])
        self.assertEqual(self.metric("maillage_gateway_streams"), 1)

    def assert_closed_soon(self, sock, seconds=5):
        """The server closes `sock`'s connection within `seconds` (what it
        had sent before is read and ignored)."""
        deadline = time.monotonic() + seconds
        sock.settimeout(seconds)
        try:
            while sock.recv(1 << 20):
                self.assertLess(time.monotonic(), deadline, "the connection stays open")
        except ConnectionResetError:
            pass
        except socket.timeout:
            self.fail("the connection stays open")

    def test_a_client_sending_data_on_its_stream_is_dropped_and_disconnected(self):
        self.stack(stream_heartbeat_s=1)
        chatty = socket.create_connection(("127.0.0.1", self.st.port))
        chatty.sendall(("GET /v1/stream HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n\r\n"
                        % self.claire).encode())
        self.clients.append(chatty)
        h.wait_until(lambda: self.metric("maillage_gateway_streams") == 1, 10, 0.1, "the stream")
        chatty.sendall(b"x" * 40000)  # a stream's client sends nothing; reading stops at 16 KiB
        h.wait_until(lambda: self.metric("maillage_gateway_streams_dropped_total") == 1, 10, 0.1, "the drop")
        self.assertIn("stream of claire dropped: the client sends data", self.st.gateway.log())
        self.assertEqual(self.metric("maillage_gateway_streams"), 0)
        self.assert_closed_soon(chatty)
        # And the gateway goes on.
        reader = self.open()
        reader.next_block()
        self.post_need("n-after-chatty", title="Local après le bavard")
        self.assertEqual(reader.next_event()["data"]["needId"], "n-after-chatty")

    def test_one_staff_member_cannot_take_every_stream(self):
        self.stack(stream_max_per_staff=2, stream_max_clients=10)
        a, b = self.open(), self.open()
        self.assertEqual((a.status, b.status), (200, 200))
        c = self.open()
        self.assertEqual(c.status, 429)
        self.assertEqual(json.loads(c.body)["error"]["code"], "too_many_streams_for_staff")
        self.assertTrue(c.headers.get("retry-after"))
        # Another staff member still gets one.
        other = self.open(token=self.st.token("--staff", "remi"))
        self.assertEqual(other.status, 200)
        # One of claire's closes: room for her again.
        a.close()
        def room():
            again = self.open()
            if again.status == 200:
                return again
            again.close()
            return None
        self.assertIsNotNone(h.wait_until(room, 10, 0.2, "room for a stream of claire's"))

    def test_heartbeats_and_the_limit_of_streams(self):
        self.stack(stream_heartbeat_s=1, stream_max_clients=2)
        a, b = self.open(), self.open()
        self.assertEqual((a.status, b.status), (200, 200))
        a.next_block()  # retry
        self.assertEqual(a.next_block()[1], "event: position")
        self.assertEqual(a.next_block(5), [": ping"])
        c = self.open()
        self.assertEqual(c.status, 503)
        self.assertTrue(c.headers.get("retry-after"))
        self.assertEqual(json.loads(c.body)["error"]["code"], "too_many_streams")
        b.close()
        # Once b's close is seen, there is room again.
        def room():
            d = SseClient(self.st.port, self.claire)
            if d.status == 200:
                self.clients.append(d)
                return True
            d.close()
            return False
        h.wait_until(room, 10, interval=0.1, what="a free stream slot")

    def test_a_revoked_token_ends_its_streams(self):
        self.stack(stream_heartbeat_s=1)
        other = self.st.token("--staff", "claire", "--label", "second")
        # One stream by bearer token, one by the session cookie of the same token.
        gone = self.open()
        status, _, resp = self.st.http.request("POST", "/v1/session", body={"token": self.claire})
        self.assertEqual(status, 204)
        cookie = resp.getheader("Set-Cookie").split(";")[0]
        by_cookie = SseClient(self.st.port, None, extra_headers=["Cookie: " + cookie])
        self.clients.append(by_cookie)
        kept = self.open(token=other)
        for c in (gone, by_cookie, kept):
            self.assertEqual(c.status, 200)
            c.next_block()
        listed = h.run_program("maillage", ["--config", self.st.conf, "token", "list"]).stdout.decode()
        token_id = [line.split()[0] for line in listed.splitlines() if "claire" in line and "second" not in line][0]
        r = h.run_program("maillage", ["--config", self.st.conf, "token", "revoke", token_id])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(gone.wait_end(10), "end")
        self.assertEqual(by_cookie.wait_end(10), "end")
        # The other token's stream goes on.
        self.post_need("n-after", title="Après la révocation")
        self.assertEqual(kept.next_event()["data"]["needId"], "n-after")
        self.assertEqual(self.open().status, 401)

    def test_tokens(self):
        self.stack()
        c = self.open(token="mgt_" + "A" * 43)
        self.assertEqual(c.status, 401)
        self.assertEqual(c.headers["www-authenticate"], "Bearer")
        c = SseClient(self.st.port, None)
        self.clients.append(c)
        self.assertEqual(c.status, 401)
        c = self.open(token=self.network)
        self.assertEqual(c.status, 403)

    def test_clients_disconnecting_mid_stream(self):
        self.stack()
        keep = self.open()
        keep.next_block()
        gone = [self.open() for _ in range(4)]
        for g in gone:
            g.next_block()
        # Events are being sent while two clients close cleanly and two
        # reset their connection, some in the middle of a read.
        self.post_need("n-d0", title="Local 0")
        gone[0].close()
        gone[1].reset()
        self.post_need("n-d1", title="Local 1")
        gone[2].reset()
        gone[3].close()
        self.post_need("n-d2", title="Local 2")
        # (Inbox order is the notifier's: two in one millisecond sort by id.)
        self.assertEqual(sorted(e["data"]["needId"] for e in keep.events(3)), ["n-d0", "n-d1", "n-d2"])
        # The gateway forgot the four: its gauge says one stream.
        def streams():
            status, body, _ = self.st.http.get("/metrics")
            for line in body.decode().splitlines():
                if line.startswith("maillage_gateway_streams "):
                    return float(line.split()[1]) == 1
            return False
        h.wait_until(streams, 10, interval=0.1, what="the closed streams to be forgotten")
        # And goes on serving everything else.
        self.assertEqual(self.st.http.get("/healthz")[0], 200)
        self.assertEqual(self.st.http.get("/v1/needs/n-d2", self.claire)[0], 200)
        for _ in range(20):
            s = SseClient(self.st.port, self.claire)
            s.next_block()
            s.reset()
        self.post_need("n-d3", title="Local 3")
        self.assertEqual(keep.next_event()["data"]["needId"], "n-d3")
        # A client gone while its stream's read is in flight: Redis paused,
        # the 2 s poll sends reads that wait, the clients leave, Redis
        # resumes and the replies come back for streams already closed.
        late = [self.open() for _ in range(3)]
        for c in late:
            c.next_block()
            # Their starting read is done (a start failed by Redis ends
            # the stream, and the browser comes back).
            self.assertIn("event: position", c.next_block())
        self.st.redis.proc.send_signal(signal.SIGSTOP)
        try:
            time.sleep(2.5)
            late[0].reset()
            late[1].close()
            time.sleep(0.3)
        finally:
            self.st.redis.proc.send_signal(signal.SIGCONT)
        # The pause may outlast the daemons' reply timeout (2.5 s here):
        # then they drop Redis and reconnect, and the gateway answers 503
        # meanwhile, as it should. Post once it is ready again.
        h.wait_until(lambda: self.st.http.get("/readyz")[0] == 200, 10, interval=0.05, what="the gateway ready")
        self.post_need("n-d4", title="Local 4")
        self.assertEqual(keep.next_event()["data"]["needId"], "n-d4")
        self.assertEqual(late[2].next_event()["data"]["needId"], "n-d4")
        self.assertIsNone(self.st.gateway.proc.poll())

    def test_sigterm_ends_every_stream(self):
        self.stack()
        streams = [self.open() for _ in range(3)]
        for s in streams:
            s.next_block()
        self.st.gateway.send_signal(signal.SIGTERM)
        for s in streams:
            self.assertIn(s.wait_end(), ("end", "eof"))
        self.assertTrue(all(s.ended for s in streams))  # the terminating chunk, not a cut
        self.assertEqual(self.st.gateway.proc.wait(15), 0)
        self.assertEqual(sanitizer_reports(self.st.gateway.log()), [])


if __name__ == "__main__":
    unittest.main()
