"""maillage-gateway over real HTTP (http.client) against a real redis-server
and broker (and matcher where a match is needed).

Every status of the ingestion API, batch ingestion, retries with the same
id, tokens (issue, revoke seen at once), the session cookie, hostile bodies
(each gets its error and nothing reaches the journal), the source stamped
from the token, staff feedback as match.feedback, health, readiness and
metrics, and the start-up refusals (beyond loopback, wrong Redis
credentials). Event bodies are written by Python's own protobuf library
(json_format), an implementation independent of the gateway's converter.
"""

import hashlib
import http.client
import json
import os
import re
import signal
import socket
import threading
import time
import unittest

from google.protobuf import json_format

import harness as h


def body_of(*envelopes):
    """proto3 JSON of envelopes, as any protobuf library writes it."""
    return [json_format.MessageToDict(e) for e in envelopes]


class Reply:
    def __init__(self, status, headers, data):
        self.status = status
        self.headers = headers
        self.data = data
        try:
            self.json = json.loads(data) if data else None
        except ValueError:
            self.json = None

    @property
    def error(self):
        return (self.json or {}).get("error", {})

    def __repr__(self):
        return "<%d %s %r>" % (self.status, self.headers, self.data[:300])


class Gateway:
    """A maillage-gateway on a free loopback port, its config beside the broker's."""

    def __init__(self, ws, sections, ready=True, **gateway):
        self.ws = ws
        self.port = h.free_port()
        g = {"listen": "127.0.0.1:%d" % self.port, "ack_timeout_ms": 1000, "rate_limit_per_s": 0,
             "token_cache_s": 300}
        g.update(gateway)
        conf = dict(sections)
        conf["gateway"] = g
        self.sections = conf
        self.config_path = h.write_config(ws.path("gateway-%s.conf" % h.new_id("c")), conf)
        self.daemon = ws.own(h.Daemon(ws.dir, "maillage-gateway", self.config_path))
        if ready:
            self.daemon.start(ready="gateway: ready")

    def request(self, method, path, body=None, token=None, ctype="application/json", headers=None,
                timeout=15.0):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        hdrs = {}
        if body is not None:
            if not isinstance(body, (bytes, str)):
                body = json.dumps(body)
            if isinstance(body, str):
                body = body.encode()
            if ctype:
                hdrs["Content-Type"] = ctype
        if token:
            hdrs["Authorization"] = "Bearer " + token
        hdrs.update(headers or {})
        try:
            conn.request(method, path, body=body, headers=hdrs)
            resp = conn.getresponse()
            data = resp.read()
            return Reply(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data)
        finally:
            conn.close()

    def post_events(self, body, token, ctype="application/json"):
        return self.request("POST", "/v1/events", body, token=token, ctype=ctype)

    def token(self, *args):
        """`maillage token issue ARGS` -> the token printed on stdout."""
        res = h.run_program("maillage", ["--config", self.config_path, "token", "issue"] + list(args))
        if res.returncode != 0:
            raise AssertionError("token issue failed: %r" % res.stderr)
        return res.stdout.decode().strip()

    def cli(self, *args):
        return h.run_program("maillage", ["--config", self.config_path] + list(args))


def add_staff(redis, sid, name="Claire Dupont", departments="14,50"):
    """A staff member as the notifier records them (mg:staff, mg:staff:<id>)."""
    redis.call("HSET", "mg:staff:" + sid, "name", name, "departments", departments, "categories", "locaux",
               "networks", "", "channels", "inbox", "origin", "cli")
    redis.call("SADD", "mg:staff", sid)


def journal(redis):
    """[Envelope] of the whole journal, with their sequences."""
    out = []
    for entry_id, fields in redis.call("XRANGE", "mg:journal", "-", "+"):
        f = dict(zip(fields[::2], fields[1::2]))
        env = h.Envelope()
        env.ParseFromString(f[b"e"])
        env.sequence = int(entry_id.split(b"-")[0])
        out.append(env)
    return out


def journal_length(redis):
    return int(redis.call("XLEN", "mg:journal") or 0)


class GatewayTest(unittest.TestCase):
    def setUp(self):
        self.ws = h.Workspace()
        self.redis = self.ws.own(h.Redis(self.ws.dir).start())
        self.broker, self.sections = h.start_broker(self.ws, self.redis)

    def tearDown(self):
        self.ws.close(keep=False)

    def gateway(self, **options):
        return Gateway(self.ws, self.sections, **options)

    # ---- 202: single, array, NDJSON, retries ----------------------------------------

    def test_single_event_is_journaled_with_the_source_of_the_token(self):
        gw = self.gateway()
        token = gw.token("--network", "fede-bio")
        env = h.need_reported()
        env.source = "someone-else"  # ignored: the token says who is speaking
        body = body_of(env)[0]
        r = gw.post_events(body, token)
        self.assertEqual(r.status, 202, r)
        self.assertEqual(r.json["eventId"], env.event_id)
        self.assertEqual(r.json["results"], [{"eventId": env.event_id, "sequence": r.json["sequence"],
                                              "status": "accepted"}])
        [journaled] = journal(self.redis)
        self.assertEqual(journaled.event_id, env.event_id)
        self.assertEqual(journaled.source, "fede-bio")
        self.assertEqual(journaled.sequence, int(r.json["sequence"]))
        self.assertEqual(journaled.need_reported.need.need_id, env.need_reported.need.need_id)

    def test_array_and_ndjson_batches_and_generated_ids(self):
        gw = self.gateway()
        token = gw.token("--network", "fede-bio")
        envs = [h.need_reported(), h.offer_published(), h.need_reported(commune="50129")]
        r = gw.post_events(body_of(*envs), token)
        self.assertEqual(r.status, 202, r)
        self.assertNotIn("eventId", r.json)  # only for a single object
        self.assertEqual([x["eventId"] for x in r.json["results"]], [e.event_id for e in envs])
        self.assertEqual([x["status"] for x in r.json["results"]], ["accepted"] * 3)
        seqs = [int(x["sequence"]) for x in r.json["results"]]
        self.assertEqual(sorted(seqs), [1, 2, 3])

        # NDJSON, blank lines ignored, one element without an eventId gets a ULID.
        a, b = body_of(h.need_reported(), h.offer_published())
        del b["eventId"]
        text = "\n" + json.dumps(a) + "\r\n\n" + json.dumps(b) + "\n"
        r = gw.post_events(text, token, ctype="application/x-ndjson; charset=utf-8")
        self.assertEqual(r.status, 202, r)
        self.assertEqual(r.json["results"][0]["eventId"], a["eventId"])
        self.assertRegex(r.json["results"][1]["eventId"], r"^[0-9A-HJKMNP-TV-Z]{26}$")
        ids = [e.event_id for e in journal(self.redis)]
        self.assertEqual(ids, [e.event_id for e in envs] + [a["eventId"], r.json["results"][1]["eventId"]])

    def test_retry_with_the_same_event_id_is_a_duplicate_with_the_same_sequence(self):
        gw = self.gateway()
        token = gw.token("--network", "fede-bio")
        body = body_of(h.need_reported())
        first = gw.post_events(body, token)
        again = gw.post_events(body, token)
        self.assertEqual(first.status, 202, first)
        self.assertEqual(again.status, 202, again)
        self.assertEqual(first.json["results"][0]["status"], "accepted")
        self.assertEqual(again.json["results"][0]["status"], "duplicate")
        self.assertEqual(again.json["results"][0]["sequence"], first.json["results"][0]["sequence"])
        self.assertEqual(journal_length(self.redis), 1)

    def test_a_network_whose_id_holds_a_colon_has_event_ids_of_its_own(self):
        # The dedupe key is mg:dedupe:<source>:<event id>, and both may hold
        # ':': network "a" sending "b:c" made network "a:b"'s "c" a
        # duplicate, answered 202 and never journaled.
        gw = self.gateway()
        a, ab = gw.token("--network", "a"), gw.token("--network", "a:b")
        first, second = h.need_reported(), h.need_reported()
        first.event_id, second.event_id = "b:c", "c"
        r = gw.post_events(body_of(first), a)
        self.assertEqual(r.json["results"][0]["status"], "accepted", r)
        r = gw.post_events(body_of(second), ab)
        self.assertEqual(r.json["results"][0]["status"], "accepted", r)
        self.assertEqual(sorted((env.source, env.event_id) for env in journal(self.redis)),
                         [("a", "b:c"), ("a:b", "c")])
        # and each one's retry is still its own duplicate
        for env, token in ((first, a), (second, ab)):
            self.assertEqual(gw.post_events(body_of(env), token).json["results"][0]["status"], "duplicate")
        self.assertEqual(journal_length(self.redis), 2)

    # ---- 400 --------------------------------------------------------------------------------

    def test_invalid_element_names_index_and_field_and_nothing_is_sent(self):
        gw = self.gateway()
        token = gw.token("--network", "fede-bio")
        good, bad = h.need_reported(), h.need_reported(commune="99999")
        r = gw.post_events(body_of(good, bad), token)
        self.assertEqual(r.status, 400, r)
        self.assertEqual(r.error["code"], "invalid_event")
        self.assertEqual(r.error["index"], 1)
        self.assertEqual(r.error["field"], "needReported.need.commune")
        self.assertIn("99999", r.error["message"])
        # NDJSON: the index counts events, not lines.
        text = json.dumps(body_of(good)[0]) + "\n\n" + json.dumps({"eventId": "x", "type": "need.reported",
                                                                     "needReported": {"need": {"radiusKm": "far"}}})
        r = gw.post_events(text, token, ctype="application/x-ndjson")
        self.assertEqual(r.status, 400, r)
        self.assertEqual((r.error["index"], r.error["field"]), (1, "needReported.need.radiusKm"))
        time.sleep(0.2)
        self.assertEqual(journal_length(self.redis), 0)

    # ---- 401, 403 ---------------------------------------------------------------------------

    def test_401_missing_malformed_unknown_and_revoked_token_seen_at_once(self):
        gw = self.gateway(token_cache_s=3600)
        body = body_of(h.need_reported())
        for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic Zm9vOmJhcg=="},
                        {"Authorization": "Bearer mgt_" + "A" * 43}, {"Cookie": "mg_session=mgt_" + "B" * 43}):
            r = gw.request("POST", "/v1/events", body, headers=headers)
            self.assertEqual(r.status, 401, (headers, r))
            self.assertEqual(r.headers.get("www-authenticate"), "Bearer")
            self.assertEqual(r.error["code"], "unauthorized")

        token = gw.token("--network", "fede-bio")
        self.assertEqual(gw.post_events(body, token).status, 202)  # now cached for an hour
        invalid = [{"eventId": "x", "type": "need.reported"}]
        self.assertEqual(gw.post_events(invalid, token).status, 400)
        token_id = "tok-" + hashlib.sha256(token.encode()).hexdigest()[:12]
        res = gw.cli("token", "revoke", token_id)
        self.assertEqual(res.returncode, 0, res.stderr)
        # Pushed on mg:tokens:revoked: refused within moments, not after the cache time.
        # Polled with the invalid event (400 while the token is still cached, never
        # journaled: authentication comes first), then a valid one must be refused.
        h.wait_until(lambda: gw.post_events(invalid, token).status == 401, timeout=3,
                     what="the revoked token refused")
        gw.daemon.wait_log("token revoked")
        self.assertEqual(gw.post_events(body_of(h.need_reported()), token).status, 401)
        self.assertEqual(journal_length(self.redis), 1)

    def test_403_wrong_kind_and_forbidden_type(self):
        gw = self.gateway()
        add_staff(self.redis, "claire")
        staff = gw.token("--staff", "claire")
        needs_only = gw.token("--network", "fede-bio", "--types", "need.*")
        r = gw.post_events(body_of(h.need_reported()), staff)
        self.assertEqual(r.status, 403, r)
        self.assertEqual(r.error["code"], "forbidden")
        r = gw.post_events(body_of(h.need_reported(), h.offer_published()), needs_only)
        self.assertEqual(r.status, 403, r)
        self.assertEqual((r.error["code"], r.error["index"], r.error["field"]), ("forbidden_type", 1, "type"))
        r = gw.request("POST", "/v1/matches/m-1/feedback", {"outcome": "MATCH_OUTCOME_CONTACT_MADE"},
                       token=needs_only)
        self.assertEqual(r.status, 403, r)
        time.sleep(0.2)
        self.assertEqual(journal_length(self.redis), 0)

    # ---- 404, 405, 413, 415 -------------------------------------------------------------------

    def test_404_405_with_allow_and_415(self):
        gw = self.gateway()
        token = gw.token("--network", "fede-bio")
        r = gw.request("GET", "/v1/nothing-here")
        self.assertEqual((r.status, r.error["code"]), (404, "not_found"))
        r = gw.request("GET", "/v1/events", token=token)
        self.assertEqual(r.status, 405, r)
        self.assertEqual(r.headers["allow"], "POST")
        r = gw.request("PUT", "/v1/session", {})
        self.assertEqual(r.status, 405, r)
        self.assertEqual(r.headers["allow"], "POST, DELETE")
        body = body_of(h.need_reported())
        for ctype in ("text/plain", "application/x-www-form-urlencoded", None, "application/jsonx"):
            r = gw.post_events(body, token, ctype=ctype)
            self.assertEqual(r.status, 415, (ctype, r))
            self.assertEqual(r.error["code"], "unsupported_media_type")
        # NDJSON only where a body of events is expected.
        r = gw.request("POST", "/v1/session", {"token": token}, ctype="application/x-ndjson")
        self.assertEqual(r.status, 415, r)
        self.assertEqual(gw.post_events(body, token, ctype="Application/JSON; charset=UTF-8").status, 202)

    def test_head_answers_headers_only_and_the_connection_stays_usable(self):
        # libevent 2.1 wrote a HEAD reply's body after its headers, without
        # a length: a keep-alive client read it as the start of its next reply.
        gw = self.gateway()
        add_staff(self.redis, "claire")
        staff = gw.token("--staff", "claire")
        conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=15)
        try:
            for path, token in (("/healthz", None), ("/v1/taxonomy", staff), ("/", None)):
                hdrs = {"Authorization": "Bearer " + token} if token else {}
                conn.request("GET", path, headers=hdrs)
                get = conn.getresponse()
                body = get.read()
                self.assertEqual(get.status, 200, path)
                conn.request("HEAD", path, headers=hdrs)
                head = conn.getresponse()
                self.assertEqual(head.read(), b"")
                self.assertEqual(head.status, 200, path)
                self.assertEqual(head.getheader("Content-Length"), str(len(body)), path)
                self.assertEqual(head.getheader("Content-Type"), get.getheader("Content-Type"), path)
            conn.request("GET", "/healthz")  # the same connection, in step
            after = conn.getresponse()
            self.assertEqual((after.status, json.loads(after.read())), (200, {"status": "ok"}))
        finally:
            conn.close()

    def test_a_connection_holds_at_most_max_body_bytes_of_a_body_too_large(self):
        # evhttp reads a whole body before the gateway sees its token, so
        # what a client without one can make it hold is evhttp's limit. It
        # was twice max_body_bytes: twenty clients each sending 1.5 MiB of a
        # 2 MiB body, and waiting, made it hold 30 MB. Now a body announced
        # beyond max_body_bytes (1 MiB) and a little is thrown away as it
        # comes, until what is left of it is under that limit.
        from test_broker import resident_mb
        gw = self.gateway()
        pid = gw.daemon.proc.pid
        before = resident_mb(pid)
        head = ("POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                "Content-Length: %d\r\n\r\n" % (2 << 20)).encode()
        chunk = b"x" * (1 << 20)
        clients = []
        try:
            for _ in range(20):
                c = socket.create_connection(("127.0.0.1", gw.port), timeout=10)
                clients.append(c)
                c.sendall(head + chunk + chunk[: 1 << 19])
            time.sleep(0.5)
            grown = resident_mb(pid) - before
            if "ASAN_OPTIONS" not in os.environ:  # (AddressSanitizer keeps freed memory in quarantine)
                self.assertLess(grown, 20 * (1 + 1 / 16), "the gateway holds %.0f MB of bodies" % grown)
            # Sent to the end, the body gets its 413.
            c = clients[0]
            c.sendall(chunk[: 1 << 19])
            answer = c.recv(4096)
            self.assertTrue(answer.startswith(b"HTTP/1.1 413"), answer[:80])
        finally:
            for c in clients:
                c.close()
        self.assertEqual(gw.request("GET", "/healthz").status, 200)

    def test_413_body_and_batch_too_large(self):
        gw = self.gateway(max_body_bytes=65536, max_batch_events=5)
        token = gw.token("--network", "fede-bio")
        env = h.need_reported()
        big = body_of(env)[0]
        big["needReported"]["need"]["description"] = "x" * 70000
        r = gw.post_events(big, token)
        self.assertEqual(r.status, 413, r)
        self.assertEqual(r.error["code"], "body_too_large")
        self.assertIn("65536", r.error["message"])
        r = gw.post_events(body_of(*[h.need_reported() for _ in range(6)]), token)
        self.assertEqual(r.status, 413, r)
        self.assertEqual(r.error["code"], "too_many_events")
        self.assertIn("at most 5", r.error["message"])
        text = "\n".join(json.dumps(b) for b in body_of(*[h.need_reported() for _ in range(6)]))
        self.assertEqual(gw.post_events(text, token, ctype="application/x-ndjson").status, 413)
        self.assertEqual(gw.post_events(body_of(*[h.need_reported() for _ in range(5)]), token).status, 202)
        self.assertEqual(journal_length(self.redis), 5)

    # ---- 403: another network's structure or item ---------------------------------------------

    def test_a_network_changes_only_its_own_structures_and_items(self):
        # Before, any network's token renamed another network's structure
        # (with a contact of its choosing), closed its needs, reported needs
        # or proposed cooperations in its name: the broker checked event
        # types only.
        gw = self.gateway()
        a, b = gw.token("--network", "fede-a"), gw.token("--network", "fede-b")

        def structure(sid, name):
            return {"structureId": sid, "name": name, "family": "FAMILY_ASSOCIATION", "commune": "14118"}

        def need(nid, sid, title="Local de stockage"):
            return {"needId": nid, "structureId": sid, "category": "locaux", "title": title, "commune": "14118"}

        events = {
            "joined": lambda sid, net: {"type": "member.joined", "memberJoined": {
                "structure": dict(structure(sid, "Asso"), contact={"name": "Pirate", "email": "pirate@example.org"}),
                "network": net, "joinedOn": "2026-11-02"}},
            "updated": lambda sid, name: {"type": "member.updated", "memberUpdated": {"structure": dict(
                structure(sid, name), contact={"name": "Pirate", "email": "pirate@example.org"})}},
            "left": lambda sid: {"type": "member.left", "memberLeft": {"structureId": sid, "network": "fede-b",
                                                                      "leftOn": "2026-11-03"}},
            "reported": lambda nid, sid: {"type": "need.reported", "needReported": {"need": need(nid, sid)}},
            "need.updated": lambda nid, sid: {"type": "need.updated", "needUpdated": {"need": need(nid, sid, "Autre")}},
            "closed": lambda nid, sid: {"type": "need.closed", "needClosed": {"needId": nid, "structureId": sid,
                                                                              "reason": "CLOSURE_CANCELLED"}},
            "proposed": lambda pid, sid: {"type": "cooperation.proposed", "cooperationProposed": {
                "proposalId": pid, "fromStructureId": sid, "territory": ["dep:14"], "kind": "COOPERATION_KIND_POOLING",
                "title": "Mutualiser un local"}},
        }

        def post(token, kind, *args):
            return gw.post_events(events[kind](*args), token)

        self.assertEqual(post(a, "joined", "s-a", "fede-a").status, 202)
        self.assertEqual(post(a, "reported", "n-a", "s-a").status, 202)
        contact = self.redis.call("GET", "mg:contact:s-a")
        before = journal_length(self.redis)
        mine = "not owner: network fede-b may not change %s: it belongs to network fede-a"
        for_it = "not owner: network fede-b may not act for structure s-a: it belongs to network fede-a"
        for kind, args, why in (
                ("joined", ("s-a", "fede-b"), mine % "structure s-a"),
                ("updated", ("s-a", "Renommée"), mine % "structure s-a"),
                ("left", ("s-a",), mine % "structure s-a"),
                ("need.updated", ("n-a", "s-a"), mine % "need n-a"),
                ("closed", ("n-a", "s-a"), mine % "need n-a"),
                ("reported", ("n-b", "s-a"), for_it),
                ("proposed", ("p-b", "s-a"), for_it)):
            r = post(b, kind, *args)
            self.assertEqual((r.status, r.error["code"]), (403, "not_owner"), (kind, r))
            self.assertEqual(r.json["results"][0]["reason"], why, kind)
        self.assertEqual(journal_length(self.redis), before, "nothing journaled")
        self.assertEqual(self.redis.call("GET", "mg:contact:s-a"), contact, "the contact is A's")
        reasons = [dict(zip(f[::2], f[1::2]))[b"reason"].decode()
                   for _, f in self.redis.call("XRANGE", "mg:deadletter", "-", "+")]
        self.assertEqual(len([x for x in reasons if x.startswith("not owner: network fede-b")]), 7, reasons)
        self.assertFalse([x for x in reasons if "Pirate" in x])
        # Its own: a structure nobody has joined, its items.
        self.assertEqual(post(b, "reported", "n-x", "s-x").status, 202)
        self.assertEqual(post(b, "need.updated", "n-x", "s-x").status, 202)
        # The owner goes on; a closed need is still its network's (a close
        # the matcher finds void, a conditional one, must leave it so); a
        # proposal's id is its network's; a structure that left is still
        # its network's.
        self.assertEqual(post(a, "need.updated", "n-a", "s-a").status, 202)
        self.assertEqual(post(a, "closed", "n-a", "s-a").status, 202)
        self.assertEqual(self.redis.call("HGET", "mg:owner", "n:n-a"), b"fede-a")
        self.assertEqual(post(b, "need.updated", "n-a", "s-a").status, 403)
        self.assertEqual(post(a, "proposed", "p-a", "s-a").status, 202)
        r = post(b, "proposed", "p-a", "s-x")
        self.assertEqual((r.status, r.json["results"][0]["reason"]),
                         (403, mine % "cooperation proposal p-a"))
        self.assertEqual(post(a, "left", "s-a").status, 202)
        self.assertEqual(post(b, "joined", "s-a", "fede-b").status, 403)
        self.assertEqual(post(a, "joined", "s-a", "fede-a").status, 202)
        # The chamber's own programs (here a loopback producer, as the CLI
        # and the matcher are) act on any: an expiry closes another's need.
        client = self.ws.own(h.IngestClient(self.sections["broker"]["ingest"]))
        close = h.Envelope(event_id=h.new_id(), type="need.closed", occurred_at_ms=1)
        close.need_closed.need_id, close.need_closed.structure_id = "n-x", "s-x"
        close.need_closed.reason = h.events_pb2.CLOSURE_EXPIRED
        self.assertEqual(client.emit(close).status, h.ACCEPTED)
        self.assertEqual(self.redis.call("HGET", "mg:owner", "n:n-x"), b"fede-b")

    # ---- 429 --------------------------------------------------------------------------------------

    def test_429_with_retry_after_does_not_harm_another_network(self):
        gw = self.gateway(rate_limit_per_s=1, rate_burst=3)
        a = gw.token("--network", "fede-a")
        b = gw.token("--network", "fede-b")
        self.assertEqual(gw.post_events(body_of(*[h.need_reported() for _ in range(3)]), a).status, 202)
        refused = body_of(h.need_reported())
        r = gw.post_events(refused, a)
        self.assertEqual(r.status, 429, r)
        self.assertEqual(r.error["code"], "rate_limited")
        self.assertGreaterEqual(int(r.headers["retry-after"]), 1)
        r = gw.post_events(body_of(*[h.need_reported() for _ in range(3)]), b)
        self.assertEqual(r.status, 202, r)
        sources = [e.source for e in journal(self.redis)]
        self.assertEqual(sources, ["fede-a"] * 3 + ["fede-b"] * 3)
        self.assertNotIn(refused[0]["eventId"], [e.event_id for e in journal(self.redis)])

    def test_broker_rejections_are_answered_per_element(self):
        # The broker's own per-source limit (not the gateway's): it rejects
        # what our validation cannot foresee, and the journaled ones keep
        # their results.
        self.broker.stop()
        self.broker, self.sections = h.start_broker(self.ws, self.redis, rate_limit_per_s=1, rate_limit_burst=2)
        gw = self.gateway()
        token = gw.token("--network", "fede-bio")
        envs = [h.need_reported() for _ in range(4)]
        r = gw.post_events(body_of(*envs), token)
        self.assertEqual(r.status, 429, r)
        self.assertEqual(r.error["code"], "rejected")
        statuses = [x["status"] for x in r.json["results"]]
        self.assertEqual(sorted(statuses), ["accepted", "accepted", "rejected", "rejected"], r)
        for x in r.json["results"]:
            if x["status"] == "rejected":
                self.assertIn("rate limit", x["reason"])
                self.assertNotIn("sequence", x)
        self.assertEqual(journal_length(self.redis), 2)

    # ---- 503 ----------------------------------------------------------------------------------------

    def test_503_when_the_broker_is_down_then_the_same_ids_are_accepted(self):
        gw = self.gateway(ack_timeout_ms=800)
        token = gw.token("--network", "fede-bio")
        self.assertEqual(gw.post_events(body_of(h.need_reported()), token).status, 202)
        self.broker.stop()
        # Not ready as soon as the broker is gone, before anything is sent to it.
        h.wait_until(lambda: gw.request("GET", "/readyz").status == 503, timeout=5, what="not ready")
        self.assertEqual(gw.request("GET", "/readyz").json, {"redis": True, "broker": False})
        envs = [h.need_reported(), h.offer_published()]
        body = body_of(*envs)
        r = gw.post_events(body, token)
        self.assertEqual(r.status, 503, r)
        self.assertGreaterEqual(int(r.headers["retry-after"]), 1)
        self.assertEqual([x["eventId"] for x in r.json["results"]], [e.event_id for e in envs])
        self.assertEqual(gw.request("GET", "/readyz").status, 503)
        h.restart(self.broker, ready="broker: ready")
        r = gw.post_events(body, token)
        self.assertEqual(r.status, 202, r)
        self.assertTrue(all(x["status"] in ("accepted", "duplicate") for x in r.json["results"]), r)
        ids = [e.event_id for e in journal(self.redis)]
        for e in envs:
            self.assertEqual(ids.count(e.event_id), 1)
        h.wait_until(lambda: gw.request("GET", "/readyz").status == 200, timeout=5, what="ready again")

    def test_503_when_redis_is_down_then_the_same_ids_are_accepted(self):
        gw = self.gateway()
        token = gw.token("--network", "fede-bio")
        self.assertEqual(gw.post_events(body_of(h.need_reported()), token).status, 202)  # token cached
        self.redis.stop()
        envs = [h.need_reported()]
        body = body_of(*envs)
        r = h.wait_until(lambda: (lambda x: x if x.status == 503 else None)(gw.post_events(body, token)),
                         timeout=5, what="503 without Redis")
        self.assertEqual(r.json["results"][0]["eventId"], envs[0].event_id)
        self.assertEqual(r.headers["retry-after"], "1")
        r = gw.request("GET", "/readyz")
        self.assertEqual((r.status, r.json["redis"]), (503, False))
        self.redis.start()
        h.wait_until(lambda: gw.request("GET", "/readyz").status == 200, timeout=10, what="ready again")
        r = gw.post_events(body, token)
        self.assertEqual(r.status, 202, r)
        self.assertEqual([e.event_id for e in journal(self.redis)].count(envs[0].event_id), 1)
        # Subscribed again after the restart: a revocation is still seen at once.
        gw.daemon.wait_log("listening to mg:tokens:revoked", count=2)
        self.assertEqual(gw.post_events(body_of(h.need_reported()), token).status, 202)
        res = gw.cli("token", "revoke", "tok-" + hashlib.sha256(token.encode()).hexdigest()[:12])
        self.assertEqual(res.returncode, 0, res.stderr)
        h.wait_until(lambda: gw.post_events(body_of(h.need_reported()), token).status == 401, timeout=3,
                     what="the revoked token refused")

    # ---- hostile bodies -----------------------------------------------------------------------------

    def test_hostile_bodies_each_get_their_error_and_nothing_reaches_the_journal(self):
        gw = self.gateway(max_body_bytes=65536)
        token = gw.token("--network", "fede-bio")
        need = body_of(h.need_reported())[0]

        def with_title(title):
            b = json.loads(json.dumps(need))
            b["needReported"]["need"]["title"] = title
            return b

        cases = [
            ("huge", b'{"eventId":"' + b"x" * 70000 + b'"}', 413, "body_too_large", None),
            ("far too huge", b"[" + b" " * 400000 + b"]", 413, None, None),
            ("invalid UTF-8", json.dumps(need).replace("Local", "Lo\\u00e9").encode().replace(b"\\u00e9", b"\xff\xfe"),
             400, "invalid_json", None),
            ("deep nesting", b"[" * 30000 + b"]" * 30000, 400, "invalid_json", None),
            ("deep nesting in a field", json.dumps(dict(need, bogus=json.loads("[" * 200 + "]" * 200))).encode(),
             400, "invalid_event", None),
            ("wrong type", json.dumps(dict(need, occurredAtMs={"a": 1})).encode(), 400, "invalid_event",
             "occurredAtMs"),
            ("wrong type inside", json.dumps({"type": "need.reported", "needReported": {"need": {"radiusKm": -3}}}).encode(),
             400, "invalid_event", "needReported.need.radiusKm"),
            ("unknown field", json.dumps(dict(need, isAdmin=True)).encode(), 400, "invalid_event", "isAdmin"),
            ("control character escaped", json.dumps(with_title("a\u0007b\u001b[31m")).encode(), 400,
             "invalid_event", "needReported.need.title"),
            ("control character raw", json.dumps(need).replace("Local", "Lo\x01cal").encode(), 400,
             "invalid_json", None),
            ("NUL escaped", json.dumps(with_title("a\u0000b")).encode(), 400, "invalid_json", None),
            ("NUL raw", json.dumps(need).encode() + b"\x00", 400, "invalid_json", None),
            ("CRLF in an id", json.dumps(dict(need, eventId="x\r\nSet-Cookie: a=b")).encode(), 400,
             "invalid_event", "eventId"),
            ("not JSON", b"<xml/>", 400, "invalid_json", None),
            ("truncated", json.dumps(need).encode()[:-5], 400, "invalid_json", None),
            ("empty", b"", 400, "empty_body", None),
            ("scalar", b"42", 400, "invalid_json", None),
            ("array of scalars", b"[1, 2]", 400, "invalid_event", None),
            ("duplicate keys", b'{"type":"need.reported","type":"offer.published"}', 400, "invalid_json", None),
            ("duplicate ids", json.dumps([need, need]).encode(), 400, "duplicate_event_id", "eventId"),
        ]
        for name, raw, status, code, field in cases:
            with self.subTest(name):
                r = gw.post_events(raw, token)
                self.assertEqual(r.status, status, (name, r))
                if code:
                    self.assertEqual(r.error["code"], code, (name, r))
                if field:
                    self.assertEqual(r.error["field"], field, (name, r))
        self.assertEqual(gw.request("GET", "/healthz").status, 200)
        self.assertEqual(gw.post_events(need, token).status, 202)  # still serving
        [only] = journal(self.redis)
        self.assertEqual(only.event_id, need["eventId"])
        self.assertEqual(int(self.redis.call("XLEN", "mg:deadletter") or 0), 0)

    # ---- staff: session, me, feedback ------------------------------------------------------------------

    def test_session_cookie_me_and_logout(self):
        gw = self.gateway()
        # (separated by a comma and a blank, or a tab, as `maillage staff` accepts them)
        add_staff(self.redis, "claire", name="Claire Dupont", departments="14, 50\t61")
        staff = gw.token("--staff", "claire")
        r = gw.request("POST", "/v1/session", {"token": "mgt_" + "C" * 43})
        self.assertEqual(r.status, 401, r)
        r = gw.request("POST", "/v1/session", {"token": staff})
        self.assertEqual(r.status, 204, r)
        cookie = r.headers["set-cookie"]
        self.assertIn("mg_session=" + staff, cookie)
        for attr in ("HttpOnly", "SameSite=Strict", "Path=/"):
            self.assertIn(attr, cookie)
        self.assertNotIn("Secure", cookie)
        r = gw.request("GET", "/v1/me", headers={"Cookie": "other=1; mg_session=" + staff})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json, {"kind": "staff", "id": "claire", "name": "Claire Dupont",
                                  "departments": ["14", "50", "61"], "categories": ["locaux"], "networks": []})
        # A value in double quotes, as RFC 6265 allows (it was not found).
        r = gw.request("GET", "/v1/me", headers={"Cookie": 'other=1; mg_session="%s"' % staff})
        self.assertEqual((r.status, r.json.get("id")), (200, "claire"), r)
        r = gw.request("GET", "/v1/me", headers={"Cookie": 'mg_session="%s' % staff})
        self.assertEqual(r.status, 401, r)
        r = gw.request("DELETE", "/v1/session")
        self.assertEqual(r.status, 204, r)
        self.assertIn("Max-Age=0", r.headers["set-cookie"])
        net = gw.token("--network", "fede-bio", "--types", "need.*")
        r = gw.request("GET", "/v1/me", token=net)
        self.assertEqual(r.json, {"kind": "network", "id": "fede-bio", "types": ["need.*"]})
        # A session is for staff: a network token gets none, and a network
        # token in the cookie posts nothing (it used to be accepted).
        r = gw.request("POST", "/v1/session", {"token": net})
        self.assertEqual((r.status, r.error["code"]), (403, "forbidden"), r)
        self.assertNotIn("set-cookie", r.headers)
        r = gw.request("POST", "/v1/events", body_of(h.need_reported()), headers={"Cookie": "mg_session=" + net})
        self.assertEqual(r.status, 401, r)
        self.assertEqual(journal_length(self.redis), 0)
        secure = self.gateway(cookie_secure=True)
        r = secure.request("POST", "/v1/session", {"token": staff})
        self.assertIn("; Secure", r.headers["set-cookie"])

    def test_feedback_emits_match_feedback_with_the_staff_id(self):
        matcher_sections = dict(self.sections)
        matcher_sections["matcher"] = {"collective_min_structures": 0}
        conf = h.write_config(self.ws.path("matcher.conf"), matcher_sections)
        self.ws.own(h.Daemon(self.ws.dir, "maillage-matcher", conf)).start(ready="matcher: ready")
        gw = self.gateway(staff_network="cress-normandie")
        add_staff(self.redis, "claire")
        net = gw.token("--network", "fede-bio")
        staff = gw.token("--staff", "claire")

        def member(sid, commune):
            e = h.Envelope(event_id=h.new_id(), type="member.joined")
            s = e.member_joined.structure
            s.structure_id, s.name, s.commune = sid, "Structure " + sid, commune
            s.family = h.events_pb2.FAMILY_ASSOCIATION
            e.member_joined.network = "cress-normandie"
            e.member_joined.joined_on = time.strftime("%Y-%m-%d")
            return e

        offer = h.offer_published(commune="14118", category="locaux", title="Local de stockage")
        offer.offer_published.offer.provider_id = "scop-caen"
        need = h.need_reported(commune="14118", category="locaux", title="Local de stockage", radius_km=30,
                               structure_id="asso-caen")
        r = gw.post_events(body_of(member("asso-caen", "14118"), member("scop-caen", "14118"), offer, need), net)
        self.assertEqual(r.status, 202, r)
        found = h.wait_until(lambda: [e for e in journal(self.redis) if e.type == "match.found"], timeout=20,
                             what="match.found")
        mid = found[0].match_found.match_id
        h.wait_until(lambda: self.redis.call("GET", "mg:mid:" + mid), timeout=5, what="the match record")

        r = gw.request("POST", "/v1/matches/%s/feedback" % mid,
                       {"outcome": "MATCH_OUTCOME_CONTACT_MADE", "comment": "Rencontre prévue"}, token=staff)
        self.assertEqual(r.status, 202, r)
        [fb] = [e for e in journal(self.redis) if e.type == "match.feedback"]
        self.assertEqual(fb.event_id, r.json["eventId"])
        self.assertEqual(fb.sequence, int(r.json["sequence"]))
        self.assertEqual(fb.source, "cress-normandie")
        self.assertEqual(fb.match_feedback.match_id, mid)
        self.assertEqual(fb.match_feedback.staff_id, "claire")
        self.assertEqual(fb.match_feedback.outcome, h.events_pb2.MATCH_OUTCOME_CONTACT_MADE)
        self.assertEqual(fb.match_feedback.comment, "Rencontre prévue")
        # Read back by its author with the match, once the matcher applied it;
        # a later choice without a comment keeps it.
        h.wait_until(lambda: gw.request("GET", "/v1/matches/" + mid, token=staff).json.get("comment"), timeout=10,
                     what="the comment applied")
        r = gw.request("POST", "/v1/matches/%s/feedback" % mid, {"outcome": "MATCH_OUTCOME_NOT_RELEVANT"}, token=staff)
        self.assertEqual(r.status, 202, r)
        m = h.wait_until(lambda: (lambda j: j if j.get("status") == "not_relevant" else None)(
            gw.request("GET", "/v1/matches/" + mid, token=staff).json), timeout=10, what="the second feedback applied")
        self.assertEqual(m["comment"], "Rencontre prévue")

        r = gw.request("POST", "/v1/matches/m-unknown/feedback", {"outcome": "MATCH_OUTCOME_NOT_RELEVANT"},
                       token=staff)
        self.assertEqual(r.status, 404, r)
        for bad, field in (({"outcome": "MATCH_OUTCOME_UNSPECIFIED"}, "outcome"), ({"outcome": "maybe"}, "outcome"),
                           ({"outcome": "MATCH_OUTCOME_NOT_RELEVANT", "staffId": "bob"}, "staffId"),
                           ({"outcome": "MATCH_OUTCOME_NOT_RELEVANT", "comment": "a\u0007"}, "comment")):
            r = gw.request("POST", "/v1/matches/%s/feedback" % mid, bad, token=staff)
            self.assertEqual((r.status, r.error.get("field")), (400, field), (bad, r))
        self.assertEqual(len([e for e in journal(self.redis) if e.type == "match.feedback"]), 2)

    # ---- health, readiness, metrics ----------------------------------------------------------------------

    def test_the_staff_page_and_the_openapi_document_are_served_with_their_guards(self):
        gw = self.gateway()
        page = gw.request("GET", "/")
        self.assertEqual(page.status, 200)
        self.assertTrue(page.headers["content-type"].startswith("text/html"))
        self.assertIn(b'lang="fr"', page.data)
        # The page is kept to its own origin, never framed, revalidated.
        self.assertIn("default-src 'self'", page.headers["content-security-policy"])
        self.assertIn("frame-ancestors 'none'", page.headers["content-security-policy"])
        self.assertEqual(page.headers["cache-control"], "no-cache")
        self.assertEqual(gw.request("GET", "/index.html").data, page.data)
        again = gw.request("GET", "/", headers={"If-None-Match": page.headers["etag"]})
        self.assertEqual((again.status, again.data), (304, b""))
        doc = gw.request("GET", "/v1/openapi.json")
        self.assertEqual(doc.status, 200)
        self.assertTrue(doc.json["openapi"].startswith("3."))
        self.assertIn("/v1/events", doc.json["paths"])
        with open(os.path.join(os.environ["MAILLAGE_SOURCE"], "docs", "openapi.json"), "rb") as f:
            self.assertEqual(json.loads(f.read()), doc.json)
        # Nothing outside the embedded files, however the path is spelled.
        for path in ("/../CMakeLists.txt", "/%2e%2e/CMakeLists.txt", "/web/index.html", "/index.html/x",
                     "/openapi.json"):
            with self.subTest(path=path):
                self.assertEqual(gw.request("GET", path).status, 404)
        self.assertEqual(gw.request("POST", "/", body={}).status, 405)

    def test_healthz_readyz_and_metrics_of_the_whole_system(self):
        gw = self.gateway()
        token = gw.token("--network", "fede-bio")
        self.redis.call("SADD", "mg:consumers", "probe")
        self.redis.call("HSET", "mg:consumer:probe", "seq", "0")
        self.redis.call("ZADD", "mg:notifier:queue", "1", "n-1")
        self.assertEqual(gw.post_events(body_of(h.need_reported(), h.need_reported()), token).status, 202)
        r = gw.request("GET", "/healthz")
        self.assertEqual((r.status, r.json), (200, {"status": "ok"}))
        r = gw.request("GET", "/readyz")
        self.assertEqual((r.status, r.json), (200, {"redis": True, "broker": True}))

        def metrics():
            r = gw.request("GET", "/metrics")
            self.assertEqual(r.status, 200)
            self.assertTrue(r.headers["content-type"].startswith("text/plain; version=0.0.4"))
            return r.data.decode()

        # The broker publishes its figures every 10 s: a snapshot taken
        # before the two events (a slow start) is followed by one with them.
        accepted = 'maillage_broker_acks_total{daemon="broker",status="accepted"} 2'
        text = h.wait_until(lambda: (lambda t: t if accepted in t else None)(metrics()), timeout=25,
                            what="the broker's figures")
        self.assertIn('maillage_gateway_acks_total{status="accepted"} 2', text)
        self.assertIn('maillage_gateway_responses_total{code="202"} 1', text)
        self.assertIn("maillage_journal_sequence 2", text)
        self.assertIn('maillage_consumer_lag{consumer="probe"} 2', text)
        self.assertIn("maillage_notifier_queue_length 1", text)
        self.assertIn("maillage_notifier_failed_notifications 0", text)
        # The counter lost (the broker numbers on from the stream): the same head.
        self.redis.call("DEL", "mg:journal:seq")
        self.assertIn("maillage_journal_sequence 2", metrics())
        # Every series line parses as Prometheus text, each family typed once.
        families = re.findall(r"^# TYPE (\S+) ", text, re.M)
        self.assertEqual(len(families), len(set(families)), families)
        for line in text.splitlines():
            if line and not line.startswith("#"):
                self.assertRegex(line, r'^[a-z_]+(\{[a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*\})? [0-9]+$')
        self.redis.stop()
        h.wait_until(lambda: gw.request("GET", "/readyz").status == 503, timeout=5, what="not ready")
        self.assertIn("maillage_gateway_system_metrics_up 0", metrics())

    # ---- the process ----------------------------------------------------------------------------------------

    def test_listen_beyond_loopback_refuses_to_start(self):
        conf = dict(self.sections)
        conf["gateway"] = {"listen": "0.0.0.0:%d" % h.free_port()}
        path = h.write_config(self.ws.path("open.conf"), conf)
        self.assertIn("beyond loopback", h.refused_at_start("maillage-gateway", path, code=None))
        # The override starts, and says so loudly.
        conf["gateway"] = {"listen": "0.0.0.0:%d" % h.free_port(), "allow_plain_http_remote": True}
        d = self.ws.own(h.Daemon(self.ws.dir, "maillage-gateway", h.write_config(self.ws.path("o2.conf"), conf)))
        d.start(ready="gateway: ready")
        self.assertIn("PLAIN HTTP", d.log())

    def test_wrong_redis_credentials_fail_with_one_clear_line(self):
        self.redis.stop()
        self.redis = self.ws.own(h.Redis(self.ws.path("auth"), password="s3cret-pw")).start()
        for name, options in (("wrong", {"password_file": h.write_secret(self.ws.path("pw-bad"), "wrong")}),
                              ("none", {})):
            with self.subTest(name):
                conf = dict(self.sections)
                r = dict(conf["redis"], url=self.redis.url)
                r.update(options)
                conf["redis"] = r
                conf["gateway"] = {"listen": "127.0.0.1:%d" % h.free_port()}
                path = h.write_config(self.ws.path("gw-%s.conf" % name), conf)
                line = h.refused_at_start("maillage-gateway", path, code=None)
                self.assertTrue(line.startswith("Error: "), line)
                self.assertRegex(line, "WRONGPASS|NOAUTH")
        good = dict(self.sections)
        good["redis"] = dict(good["redis"], url=self.redis.url,
                             password_file=h.write_secret(self.ws.path("pw"), "s3cret-pw"))
        gw = Gateway(self.ws, good)
        self.assertEqual(gw.request("GET", "/readyz").json["redis"], True)

    def test_sigterm_answers_what_is_in_flight_and_exits_zero(self):
        gw = self.gateway(ack_timeout_ms=20000)
        token = gw.token("--network", "fede-bio")
        self.assertEqual(gw.post_events(body_of(h.need_reported()), token).status, 202)
        self.broker.stop()
        replies = []
        t = threading.Thread(target=lambda: replies.append(gw.post_events(body_of(h.need_reported()), token)))
        t.start()
        h.wait_until(lambda: "maillage_gateway_awaiting 1" in gw.request("GET", "/metrics").data.decode(),
                     timeout=5, what="a request waiting for the broker")
        rc = gw.daemon.stop(signal.SIGTERM, timeout=10)
        t.join(10)
        self.assertEqual(rc, 0, gw.daemon.log())
        self.assertEqual(replies[0].status, 503, replies)
        self.assertEqual(len(replies[0].json["results"]), 1)
        with self.assertRaises(OSError):
            socket.create_connection(("127.0.0.1", gw.port), timeout=1).close()

    # ---- the token CLI ------------------------------------------------------------------------------------------

    def test_a_removed_staff_member_is_refused_at_once(self):
        gw = self.gateway(token_cache_s=3600)
        add_staff(self.redis, "claire")
        add_staff(self.redis, "yann", name="Yann Duval")
        claire, yann = gw.token("--staff", "claire"), gw.token("--staff", "yann")
        for token in (claire, yann):
            self.assertEqual(gw.request("GET", "/v1/me", token=token).status, 200)  # now cached
        # `maillage staff remove` revokes the person's tokens (pushed to the gateway).
        res = gw.cli("staff", "remove", "claire")
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertIn("1 jeton HTTP révoqué", res.stdout.decode())
        h.wait_until(lambda: gw.request("GET", "/v1/me", token=claire).status == 401, timeout=5,
                     what="claire refused")
        self.assertEqual(self.redis.call("HLEN", "mg:tokens"), 1)  # yann's is left
        # A staff member gone another way (their config section removed) is
        # refused at the next lookup even with a token still on record.
        self.redis.call("SREM", "mg:staff", "yann")
        gw2 = self.gateway(token_cache_s=3600)
        self.assertEqual(gw2.request("GET", "/v1/me", token=yann).status, 401)

    def test_token_cli_prints_once_and_stores_only_the_hash(self):
        gw = self.gateway()
        res = gw.cli("token", "issue", "--network", "fede-bio", "--types", "need.*,offer.published",
                     "--label", "CRM de la fédé")
        self.assertEqual(res.returncode, 0, res.stderr)
        token = res.stdout.decode()
        self.assertRegex(token, r"^mgt_[A-Za-z0-9_-]{43}\n$")
        token = token.strip()
        self.assertIn("conservé en clair", res.stderr.decode())
        digest = hashlib.sha256(token.encode()).hexdigest()
        record = self.redis.call("HGETALL", "mg:token:" + digest)
        record = dict(zip(record[::2], record[1::2]))
        self.assertEqual(record[b"kind"], b"network")
        self.assertEqual(record[b"subject"], b"fede-bio")
        self.assertEqual(record[b"types"], b"need.*,offer.published")
        self.assertEqual(record[b"id"], ("tok-" + digest[:12]).encode())
        self.assertEqual(self.redis.call("HGET", "mg:tokens", "tok-" + digest[:12]), digest.encode())
        for key in self.redis.call("KEYS", "mg:token*"):
            self.assertNotIn(token.encode(), key)
            kind = self.redis.call("TYPE", key)
            values = self.redis.call("HVALS", key) if kind == b"hash" else []
            self.assertFalse(any(token.encode() in v for v in values))
        listing = gw.cli("token", "list")
        self.assertEqual(listing.returncode, 0)
        self.assertIn("tok-" + digest[:12], listing.stdout.decode())
        self.assertIn("CRM de la fédé", listing.stdout.decode())
        self.assertNotIn(token, listing.stdout.decode())
        # A holder longer than the header's column keeps the columns in line
        # (a fixed 20 characters pushed the date and the events right).
        self.assertEqual(gw.cli("token", "issue", "--network", "fondation-bocage-avenir-normandie",
                                "--types", "need.*,offer.*,member.*").returncode, 0)
        lines = gw.cli("token", "list").stdout.decode().splitlines()
        self.assertEqual(len(lines), 3, lines)
        created, events = lines[0].index("créé le"), lines[0].index("événements")
        for line in lines[1:]:
            self.assertRegex(line[created:], r"^\d\d/\d\d/20\d\d \d\d:\d\d ", lines)
            self.assertTrue(line[events:].startswith("need.*,"), lines)

        self.assertEqual(gw.cli("token", "issue", "--staff", "nobody").returncode, 1)
        # The default recipient ([notifier] default_staff), undeclared: its
        # inbox is written all the same; the refusal says how to read it.
        res = gw.cli("token", "issue", "--staff", "accueil")
        self.assertEqual(res.returncode, 1)
        self.assertIn("est le destinataire par défaut", res.stderr.decode())
        self.assertIn("maillage staff add accueil --name NOM", res.stderr.decode())
        added = gw.cli("staff", "add", "accueil", "--name", "Accueil de la CRESS")
        self.assertEqual(added.returncode, 0, added.stderr)
        self.assertEqual(gw.cli("token", "issue", "--staff", "accueil").returncode, 0)
        self.assertEqual(gw.cli("token", "issue", "--network", "a", "--staff", "b").returncode, 2)
        self.assertEqual(gw.cli("token", "issue", "--network", "a", "--types", "Need").returncode, 2)  # usage
        self.assertEqual(gw.cli("token", "issue", "--network", "a b").returncode, 2)
        self.assertEqual(gw.cli("token", "revoke", "tok-000000000000").returncode, 1)
        self.assertEqual(gw.cli("token", "revoke", "tok-" + digest[:12]).returncode, 0)
        self.assertEqual(self.redis.call("EXISTS", "mg:token:" + digest), 0)
        self.assertIsNone(self.redis.call("HGET", "mg:tokens", "tok-" + digest[:12]))


if __name__ == "__main__":
    unittest.main()
