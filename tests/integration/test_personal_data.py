"""Personal data (a structure's contact: name, e-mail, phone, role) against a
real redis-server, broker, matcher, notifier and a probe consumer.

What is proved:
- the journal, the fan-out and the consumer dead letters (copies of journal
  entries) never hold a contact: the broker takes it out of member events
  and keeps it in mg:contact:<sid> only;
- after a full run (members with contacts, updates, a rejected member event
  and junk with a contact in the dead letters, matches and notifications),
  `maillage forget SID --yes` leaves no key in Redis holding the structure's
  contact name, e-mail or phone: every key is dumped (SCAN, TYPE, the value
  of every type, streams included) and its bytes searched; another
  structure's contact is untouched;
- a replay (consumers reset to sequence 0, producers' retries) cannot bring
  it back;
- forget works with every daemon stopped, asks for confirmation unless
  --yes, and says what it erased without printing personal data;
- a legacy journal (written before the broker stripped contacts) is
  rewritten with the same ids, the other entries byte for byte, no hole for a
  consumer reading it from the start;
- no log of the run (every daemon at debug level, the CLI's output) holds a
  contact name, e-mail or phone.
"""

import json
import os
import subprocess
import time
import unittest


import harness as h

CAEN = "14118"
TODAY = time.strftime("%Y-%m-%d")

# The structure whose data is forgotten: the contact it joined with, the one
# of its update, and the one of a member.joined the broker rejected.
JOINED = ("Hélène Lefèvre-Martin", "helene.lefevre@epicerie-caen.example.org", "+33 2 31 45 67 89")
UPDATED = ("Hélène Lefèvre-Martin", "h.lefevre-martin@epicerie-caen.example.org", "02 31 45 67 00")
REJECTED = ("Hélène Lefèvre", "helene.perso@courriel.example.net", "06 12 34 56 78")
FORGOTTEN = JOINED + UPDATED + REJECTED
# Two structures that stay.
SCOP = ("Yannick Le Goff", "y.legoff@scop-caen.example.org", "+33 2 31 98 76 54")
OTHER = ("Josiane Quesnel", "josiane.quesnel@asso-vire.example.org", "02 31 11 22 33")
SCOP_REFUSED = ("Erwan Le Goff", "erwan.legoff@scop-caen.example.org", "+33 6 98 76 54 32")
KEPT = SCOP + OTHER
ROLE = "coordinatrice bénévole"


def _env(type_, event_id=None):
    return h.Envelope(event_id=event_id or h.new_id(), type=type_, occurred_at_ms=int(time.time() * 1000))


def member(sid, contact, type_="member.joined", commune=CAEN, family="FAMILY_ASSOCIATION"):
    env = _env(type_)
    body = env.member_joined if type_ == "member.joined" else env.member_updated
    s = body.structure
    s.structure_id = sid
    s.name = "Structure " + sid
    s.family = h.events_pb2.Family.Value(family)
    s.naf_code = "88.99B"
    s.commune = commune
    s.networks.append("cress-normandie")
    s.description = "Épicerie solidaire et tiers-lieu"
    if contact:
        s.contact.name, s.contact.email, s.contact.phone = contact
        s.contact.role = ROLE
    if type_ == "member.joined":
        body.network = "cress-normandie"
        body.joined_on = TODAY
    return env


def need(nid, sid):
    env = _env("need.reported")
    n = env.need_reported.need
    n.need_id, n.structure_id, n.category, n.commune, n.radius_km = nid, sid, "locaux", CAEN, 30
    n.tags.extend(["cuisine", "stockage"])
    n.title = "Cuisine partagée et stockage"
    return env


def offer(oid, sid):
    env = _env("offer.published")
    o = env.offer_published.offer
    o.offer_id, o.provider_id, o.category, o.commune, o.radius_km = oid, sid, "locaux", CAEN, 20
    o.tags.extend(["cuisine", "stockage"])
    o.title = "Cuisine professionnelle et stockage"
    return env


def forms(values):
    """Every byte form a value may take in Redis or a log: UTF-8, and the
    ASCII-escaped JSON string (é as \\u00e9)."""
    out = set()
    for v in values:
        out.add(v.encode())
        out.add(json.dumps(v)[1:-1].encode())
    return out


def dump(redis):
    """{key: every byte Redis holds under it}, for every key (SCAN, TYPE,
    then the value of its type; streams with every entry's fields)."""
    out = {}
    cursor = b"0"
    while True:
        cursor, keys = redis.call("SCAN", cursor, "COUNT", 1000)
        for key in keys:
            kind = redis.call("TYPE", key)
            if kind == "string":
                parts = [redis.call("GET", key)]
            elif kind == "hash":
                parts = redis.call("HGETALL", key)
            elif kind == "list":
                parts = redis.call("LRANGE", key, 0, -1)
            elif kind == "set":
                parts = redis.call("SMEMBERS", key)
            elif kind == "zset":
                parts = redis.call("ZRANGE", key, 0, -1, "WITHSCORES")
            elif kind == "stream":
                parts = [entry_id for entry_id, _ in redis.call("XRANGE", key, "-", "+")]
                parts += [f for _, fields in redis.call("XRANGE", key, "-", "+") for f in fields]
            elif kind == "none":  # deleted since the SCAN
                continue
            else:
                raise AssertionError("key %r of unexpected type %r" % (key, kind))
            out[key] = key + b"\0" + b"\0".join(p or b"" for p in parts)
        if cursor == b"0":
            return out


def holders(redis, values):
    """The keys whose bytes contain one of `values` (in any of its forms)."""
    needles = forms(values)
    return sorted(k.decode() for k, data in dump(redis).items() if any(n in data for n in needles))


def stored_contact(redis, sid):
    data = redis.call("GET", "mg:contact:" + sid)
    if data is None:
        return None
    c = h.events_pb2.Contact()
    c.ParseFromString(data)
    return (c.name, c.email, c.phone)


class Stack:
    """Redis, broker, matcher, notifier and a probe consumer that gives up on
    every member.joined (so the consumer dead letters hold copies of member
    events), every daemon at debug level; a SUB records the fan-out."""

    def __init__(self, ws):
        self.ws = ws
        self.redis = ws.own(h.Redis(ws.dir).start())
        sections = h.broker_sections(self.redis)
        sections["log"]["level"] = "debug"
        self.conf = h.write_config(ws.path("stack.conf"), dict(sections, **{
            "matcher": {"expiry_interval_s": 1},
            "notifier": {"staff_url": "https://maillage.example.org/", "default_staff": "accueil",
                         "staff_refresh_ms": 200},
            "staff.claire": {"name": "Claire Dupont", "departments": "14", "channels": "inbox"},
        }))
        self.broker = self.start("maillage-broker", "broker: ready")
        self.client = ws.own(h.IngestClient(sections["broker"]["ingest"]))
        self.fanout = ws.own(h.Subscriber(sections["broker"]["fanout"]))
        h.wait_subscribed(self.fanout, self.client)
        self.published = []
        self.matcher = self.start("maillage-matcher", "matcher: ready")
        self.notifier = self.start("maillage-notifier", "staff member(s)")
        self.probe = ws.own(h.Probe(ws, self.redis, sections["broker"]["fanout"], "audit",
                                    ["--fail-type", "member.joined", "--max-attempts", 1,
                                     "--retry-base-ms", 10]))
        self.probe.start()

    def start(self, program, ready):
        d = self.ws.own(h.Daemon(self.ws.dir, program, self.conf))
        d.start(ready=ready)
        return d

    def emit(self, envelopes, expect=(h.ACCEPTED,)):
        acks = self.client.emit_many(envelopes, timeout=20)
        for a in acks.values():
            assert a.status in expect, a
        return acks

    def drain_fanout(self):
        """Record every publication received so far (frames as bytes)."""
        while self.fanout.sock.poll(0):
            self.published.append(self.fanout.sock.recv_multipart())

    def settle(self, names=("matcher", "notifier", "audit"), timeout=30.0):
        """Until every consumer completed the whole journal, the matcher's
        outbox and the audit consumer's retries are empty and nothing moved
        for a while."""
        return h.settle(self.redis, names, timeout, quiet=0.8, tick=self.drain_fanout,
                        empty=(("HLEN", "mg:matcher:outbox"), ("ZCARD", "mg:retry:audit")))

    def cli(self, *args, input=None):
        r = h.run_program("maillage", ["--config", self.conf] + list(args), input=input, timeout=30)
        r.stdout, r.stderr = r.stdout.decode(), r.stderr.decode()
        return r


class PersonalDataTest(unittest.TestCase):
    def setUp(self):
        self.ws = h.Workspace("maillage-pd-")
        self.outputs = []  # what the CLI printed, searched like the logs

    def tearDown(self):
        self.ws.close(keep=os.environ.get("MAILLAGE_KEEP") == "1")

    def cli(self, stack_or_conf, *args, input=None):
        if isinstance(stack_or_conf, Stack):
            r = stack_or_conf.cli(*args, input=input)
        else:
            r = h.run_program("maillage", ["--config", stack_or_conf] + list(args), input=input, timeout=30)
            r.stdout, r.stderr = r.stdout.decode(), r.stderr.decode()
        self.outputs.append(r.stdout + r.stderr)
        return r

    def full_run(self, stack):
        """Members with contacts, an update, needs and offers that match,
        a rejected member event and junk with a contact, retries."""
        joined = member("epicerie-caen", JOINED)
        scop = member("scop-caen", SCOP, family="FAMILY_COOPERATIVE")
        other = member("asso-vire", OTHER, commune="14762")
        stack.emit([joined, scop, other])
        stack.emit([offer("o-cuisine", "scop-caen"), need("n-cuisine", "epicerie-caen")])
        updated = member("epicerie-caen", UPDATED, type_="member.updated")
        stack.emit([updated])
        stack.emit([joined, updated], expect=(h.DUPLICATE,))  # a producer's retries
        bad = member("epicerie-caen", REJECTED)
        bad.member_joined.structure.commune = "99999"
        stack.client.send(bad)
        self.assertEqual(stack.client.recv_ack().status, h.REJECTED)
        # Too large: kept cut at max_message_bytes, undecodable, but with
        # the structure and its first contact (known nowhere else by now).
        huge = member("epicerie-caen", JOINED)
        huge.member_joined.network = "x" * 300000
        stack.client.send(huge)
        self.assertEqual(stack.client.recv_ack().status, h.REJECTED)
        # Junk around a contact's e-mail.
        stack.client.send(b"\xff\xfe junk around " + UPDATED[1].encode())
        self.assertEqual(stack.client.recv_ack().status, h.REJECTED)
        stack.settle()
        return joined, updated, scop, bad.event_id

    def test_after_a_full_run_forget_leaves_no_key_holding_the_contact(self):
        stack = Stack(self.ws)
        joined, updated, scop, bad_id = self.full_run(stack)
        r = stack.redis
        # The run did what it should: a match, notifications, consumer
        # dead letters of the member events, the contacts kept apart.
        self.assertGreaterEqual(len([e for e in r.call("XRANGE", "mg:journal", "-", "+")
                                     if dict(zip(e[1][::2], e[1][1::2]))[b"t"] == b"match.found"]), 1)
        self.assertGreater(r.call("ZCARD", "mg:inbox:claire"), 0)
        consumer_dls = [dict(zip(f[::2], f[1::2])) for _, f in r.call("XRANGE", "mg:deadletter", "-", "+")]
        self.assertEqual(len([d for d in consumer_dls if d.get(b"consumer") == b"audit"]), 3)
        self.assertEqual(stored_contact(r, "epicerie-caen"), UPDATED)
        self.assertEqual(stored_contact(r, "scop-caen"), SCOP)

        # Where contacts are: mg:contact:<sid>, the broker's dead letters
        # of what does not decode (the one too large, the junk), and the
        # bytes of the rejected member event, held apart under its
        # structure (its dead letter keeps it without the contact). Never
        # the journal, the fan-out, the consumer dead letters or the
        # consumers' state.
        self.assertEqual(holders(r, FORGOTTEN),
                         ["mg:contact:epicerie-caen", "mg:deadletter", "mg:deadletter:held:epicerie-caen"])
        self.assertEqual(holders(r, REJECTED[1:]), ["mg:deadletter:held:epicerie-caen"])
        self.assertEqual(holders(r, SCOP), ["mg:contact:scop-caen"])
        for d in consumer_dls:
            if d.get(b"consumer"):
                self.assertFalse(any(n in d[b"raw"] for n in forms(FORGOTTEN + KEPT)))
        stack.drain_fanout()
        self.assertGreater(len(stack.published), 8)
        fanout = b"".join(b"".join(frames) for frames in stack.published)
        self.assertFalse([v for v in FORGOTTEN + KEPT if v.encode() in fanout])

        # Forget, with the daemons running.
        res = self.cli(stack, "forget", "epicerie-caen", "--yes")
        self.assertEqual(res.returncode, 0, res.stdout + res.stderr)
        self.assertIn("Effacement des données personnelles de la structure « epicerie-caen » :", res.stdout)
        self.assertIn("Vérifié : plus aucune donnée personnelle de « epicerie-caen » dans "
                      "mg:contact:epicerie-caen, mg:deadletter, mg:deadletter:held:epicerie-caen ni mg:journal.",
                      res.stdout)
        self.assertIn("octets reçus gardés à part (mg:deadletter:held:epicerie-caen) : effacés", res.stdout)
        self.assertIn("contact (mg:contact:epicerie-caen) : 1 effacé", res.stdout)
        self.assertIn("lettres mortes (mg:deadletter) : 3 effacées", res.stdout)
        self.assertIn("entrées du journal (mg:journal) : 0 réécrite sans", res.stdout)
        self.assertEqual(holders(r, FORGOTTEN), [])
        self.assertEqual(holders(r, SCOP), ["mg:contact:scop-caen"])
        self.assertEqual(holders(r, OTHER), ["mg:contact:asso-vire"])
        # The consumer dead letters (no personal data) are kept.
        self.assertEqual(len([1 for _, f in r.call("XRANGE", "mg:deadletter", "-", "+")
                              if b"consumer" in f]), 3)
        # Twice is harmless.
        again = self.cli(stack, "forget", "epicerie-caen", "--yes")
        self.assertEqual(again.returncode, 0, again.stderr)
        self.assertIn("rien à effacer", again.stdout)

        # A replay cannot bring it back: producers' retries are
        # duplicates, and consumers reading the whole journal again find
        # no contact in it.
        stack.emit([joined, updated], expect=(h.DUPLICATE,))
        self.assertEqual(holders(r, FORGOTTEN), [])
        for d in (stack.matcher, stack.notifier, stack.probe):
            d.stop()
        for name in ("matcher", "notifier", "audit"):
            r.call("HSET", "mg:consumer:" + name, "seq", 0)
        h.restart(stack.matcher, ready="matcher: ready")
        h.restart(stack.notifier, ready="staff member(s)")
        h.restart(stack.probe, ready="subscriber audit: live")
        stack.settle()
        self.assertEqual(holders(r, FORGOTTEN), [])

        # A member.left erases the contact too, and the bytes of its
        # refused member events; then retries of the member.joined that
        # carried it change nothing.
        refused = member("scop-caen", SCOP_REFUSED, type_="member.updated", family="FAMILY_COOPERATIVE")
        refused.member_updated.structure.commune = "99999"
        stack.emit([refused], expect=(h.REJECTED,))
        h.wait_until(lambda: holders(r, SCOP_REFUSED) == ["mg:deadletter:held:scop-caen"], what="held bytes")
        letters = len(r.call("XRANGE", "mg:deadletter", "-", "+"))
        left = _env("member.left")
        left.member_left.structure_id, left.member_left.network = "scop-caen", "cress-normandie"
        left.member_left.left_on = TODAY
        stack.emit([left])
        self.assertIsNone(r.call("GET", "mg:contact:scop-caen"))
        self.assertEqual(holders(r, SCOP + SCOP_REFUSED), [])
        self.assertEqual(len(r.call("XRANGE", "mg:deadletter", "-", "+")), letters)  # the letter stays, without
        stack.emit([scop], expect=(h.DUPLICATE,))
        self.assertEqual(holders(r, SCOP), [])

        # With every daemon stopped: forget works on Redis alone.
        for d in (stack.matcher, stack.notifier, stack.probe, stack.broker):
            self.assertEqual(d.stop(), 0)
        res = self.cli(stack, "forget", "asso-vire", "--yes")
        self.assertEqual(res.returncode, 0, res.stdout + res.stderr)
        self.assertEqual(holders(r, FORGOTTEN + KEPT), [])

        # No log of the run, nor anything the CLI printed, holds a contact;
        # the paths that could log one ran (the rejections of member events
        # at debug level included).
        broker_log = stack.broker.log()
        self.assertIn("DEBUG broker: rejected %s: " % bad_id, broker_log)
        self.assertIn("at member_joined.structure.commune", broker_log)
        self.assertIn("message too large", broker_log)
        self.assert_no_contact_in_logs(FORGOTTEN + KEPT)

    def assert_no_contact_in_logs(self, values):
        logs = [self.ws.path(n) for n in os.listdir(self.ws.dir) if ".log" in n]
        self.assertGreaterEqual(len(logs), 5)
        debug_lines = 0
        needles = forms(values) | forms([v.lower() for v in values])
        for path in logs:
            with open(path, "rb") as f:
                text = f.read()
            debug_lines += text.count(b" DEBUG ")
            leaked = sorted(n.decode() for n in needles if n in text)
            self.assertEqual(leaked, [], "personal data in %s" % path)
        self.assertGreater(debug_lines, 0)  # the debug paths ran, rejections included
        for out in self.outputs:
            self.assertFalse([v for v in values if v in out], out)

    def test_forget_asks_for_confirmation_and_works_without_the_daemons(self):
        redis = self.ws.own(h.Redis(self.ws.dir).start())
        broker, sections = h.start_broker(self.ws, redis)
        client = self.ws.own(h.IngestClient(sections["broker"]["ingest"]))
        self.assertEqual(client.emit(member("epicerie-caen", JOINED)).status, h.ACCEPTED)
        self.assertEqual(broker.stop(), 0)
        conf = broker.config_path
        # An id nothing names (a typo): said so, a failure, nothing erased.
        res = self.cli(conf, "forget", "inconnue")
        self.assertEqual(res.returncode, 1, res.stderr)
        self.assertIn("aucune structure « inconnue » n'est connue", res.stderr)
        self.assertIn("vérifiez l'identifiant", res.stderr)
        self.assertEqual(stored_contact(redis, "epicerie-caen"), JOINED)
        # What would go, then a refusal, then a closed input: nothing erased.
        res = self.cli(conf, "forget", "epicerie-caen", "--dry-run")
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertIn("son contact (mg:contact:epicerie-caen)", res.stdout)
        self.assertIn("rien n'a été effacé", res.stdout)
        res = self.cli(conf, "forget", "epicerie-caen", input=b"non\n")
        self.assertEqual(res.returncode, 1)
        self.assertIn("Tapez « oui » pour confirmer", res.stdout)
        self.assertIn("Abandon : rien n'a été effacé.", res.stdout)
        res = self.cli(conf, "forget", "epicerie-caen", input=b"")
        self.assertEqual(res.returncode, 1)
        self.assertIn("--yes", res.stderr)
        self.assertEqual(stored_contact(redis, "epicerie-caen"), JOINED)
        # Confirmed.
        res = self.cli(conf, "forget", "epicerie-caen", input=b"oui\n")
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertIn("1 effacé", res.stdout)
        self.assertEqual(holders(redis, JOINED), [])
        # Again: known by its member event in the journal, nothing left, a success.
        res = self.cli(conf, "forget", "epicerie-caen", "--yes")
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertIn("rien à effacer", res.stdout)
        # Usage errors.
        self.assertEqual(self.cli(conf, "forget").returncode, 2)
        res = self.cli(conf, "forget", "pas un id")
        self.assertEqual(res.returncode, 2)
        self.assertIn("n'est pas un identifiant de structure", res.stderr)
        for out in self.outputs:
            self.assertFalse([v for v in JOINED if v in out], out)

    def test_forget_after_member_left_finds_what_json_and_a_misspelt_id_left_and_keeps_no_bytes(self):
        # After a member.left no contact value is known to search for: a
        # member event a network sent as JSON to the ZeroMQ ingest stayed in
        # the dead letters (one with its id misspelt did too, before its
        # contact was left out of it: the event cannot be replayed). And XDEL leaves an
        # entry's bytes in its stream node (DUMP, the AOF's rewrite, the
        # backups): the dead letters are copied without them instead.
        sent_json = ("Zéphirine Quellec", "zephirine.quellec@example.org", "06 11 22 33 44")
        misspelt = ("Anatole Rivière", "anatole.riviere@example.net", "07 55 44 33 22")
        redis = self.ws.own(h.Redis(self.ws.dir).start())
        broker, sections = h.start_broker(self.ws, redis)
        client = self.ws.own(h.IngestClient(sections["broker"]["ingest"]))
        self.assertEqual(client.emit(member("tiers-lieu", JOINED)).status, h.ACCEPTED)
        as_json = json.dumps({"eventId": h.new_id(), "type": "member.updated", "memberUpdated": {"structure": {
            "structureId": "tiers-lieu", "contact": dict(zip(("name", "email", "phone"), sent_json))}}})
        for raw in (as_json.encode(), member("Tiers-Lieu ", misspelt, type_="member.updated"),
                    b"\xff\xfe junk, no contact"):
            self.assertEqual(client.emit(raw).status, h.REJECTED)
        left = _env("member.left")
        left.member_left.structure_id, left.member_left.network = "tiers-lieu", "cress-normandie"
        left.member_left.left_on = TODAY
        self.assertEqual(client.emit(left).status, h.ACCEPTED)
        self.assertEqual(holders(redis, JOINED), [])
        self.assertEqual(holders(redis, sent_json), ["mg:deadletter"])
        self.assertEqual(holders(redis, misspelt), [])
        self.assertEqual(len(redis.call("XRANGE", "mg:deadletter", "-", "+")), 3)
        self.assertEqual(broker.stop(), 0)
        # Another rewrite under way: nothing erased, and a second run does
        # it all (the first way, XDEL then a rewrite that failed, left the
        # bytes behind and the second run found nothing to do).
        redis.call("SET", "mg:journal:rewrite:lock", "another-forget")
        res = self.cli(broker.config_path, "forget", "tiers-lieu", "--yes")
        self.assertEqual(res.returncode, 1, res.stdout + res.stderr)
        self.assertIn("une autre réécriture est en cours", res.stderr)
        self.assertEqual(holders(redis, sent_json + misspelt), ["mg:deadletter"])
        redis.call("DEL", "mg:journal:rewrite:lock")
        res = self.cli(broker.config_path, "forget", "tiers-lieu", "--yes")
        self.assertEqual(res.returncode, 0, res.stdout + res.stderr)
        self.assertIn("lettres mortes (mg:deadletter) : 1 effacée", res.stdout)
        self.assertEqual(holders(redis, sent_json + misspelt), [])
        redis.call("CONFIG", "SET", "rdbcompression", "no")
        raw = redis.call("DUMP", "mg:deadletter")
        self.assertEqual([n for n in forms(sent_json + misspelt) if n in raw], [])
        # The junk and the misspelt event without its contact are kept, with their ids.
        kept = [dict(zip(f[::2], f[1::2]))[b"raw"] for _, f in redis.call("XRANGE", "mg:deadletter", "-", "+")]
        self.assertEqual(len(kept), 2)
        self.assertIn(b"Tiers-Lieu ", kept[0])
        self.assertIn(b"junk, no contact", kept[1])

    def test_forget_rewrites_a_legacy_journal_with_the_same_ids_and_no_hole(self):
        # A journal written before the broker stripped contacts: member
        # events with their contact, as the old broker journaled them
        # (stamped, without sequence), among other events; a consumer dead
        # letter copying one of them.
        redis = self.ws.own(h.Redis(self.ws.dir).start())
        events = []
        for i in range(1, 1201):
            if i in (5, 700):
                e = member("epicerie-caen", JOINED if i == 5 else UPDATED,
                           type_="member.joined" if i == 5 else "member.updated")
            elif i == 6:
                e = member("asso-vire", OTHER)
            else:
                e = h.need_reported()
            e.source, e.received_at_ms, e.schema_version = "test-net", 1_700_000_000_000 + i, 1
            events.append(e)
            redis.call("XADD", "mg:journal", "%d-0" % i, "t", e.type, "e", e.SerializeToString())
        redis.call("SET", "mg:journal:seq", 1200)
        redis.call("XTRIM", "mg:journal", "MINID", "3-0")  # the retention went by
        redis.call("XADD", "mg:deadletter", "*", "reason", "handler failed", "field", "", "source",
                   "consumer:matcher", "received_at_ms", 1, "raw", events[4].SerializeToString(), "raw_len",
                   len(events[4].SerializeToString()), "consumer", "matcher", "seq", 5)
        before = redis.call("XRANGE", "mg:journal", "-", "+")
        info_before = dict(zip(*[iter(redis.call("XINFO", "STREAM", "mg:journal"))] * 2))
        conf = h.write_config(self.ws.path("cli.conf"), {"redis": {"url": redis.url}})

        res = self.cli(conf, "forget", "epicerie-caen", "--dry-run")
        self.assertIn("2 entrées du journal (mg:journal) écrites avant", res.stdout)
        self.assertIn("  - 1 lettre morte (mg:deadletter) qui contient ce contact\n", res.stdout)
        self.assertIn("séquences 5, 700", res.stdout)
        res = self.cli(conf, "forget", "epicerie-caen", "--yes")
        self.assertEqual(res.returncode, 0, res.stdout + res.stderr)
        self.assertIn("1 effacée\n", res.stdout)  # the consumer dead letter
        self.assertIn("2 réécrites sans le contact", res.stdout)

        self.assertEqual(holders(redis, JOINED + UPDATED), [])
        self.assertEqual(holders(redis, OTHER), ["mg:journal"])  # another structure: not this command's
        after = redis.call("XRANGE", "mg:journal", "-", "+")
        self.assertEqual([i for i, _ in after], [i for i, _ in before])
        for (entry_id, old), (_, new) in zip(before, after):
            if entry_id in (b"5-0", b"700-0"):
                old_env, new_env = h.Envelope(), h.Envelope()
                old_env.ParseFromString(dict(zip(old[::2], old[1::2]))[b"e"])
                new_env.ParseFromString(dict(zip(new[::2], new[1::2]))[b"e"])
                field = old_env.WhichOneof("payload")
                getattr(old_env, field).structure.ClearField("contact")
                self.assertEqual(new_env, old_env)
            else:
                self.assertEqual(new, old, entry_id)
        info = dict(zip(*[iter(redis.call("XINFO", "STREAM", "mg:journal"))] * 2))
        self.assertEqual(info[b"last-generated-id"], info_before[b"last-generated-id"])
        self.assertEqual(redis.call("TTL", "mg:journal"), -1)
        self.assertEqual(redis.call("EXISTS", "mg:journal:rewrite", "mg:journal:rewrite:lock"), 0)

        # The broker goes on after it, and a consumer reading from the start
        # gets every entry: no hole.
        broker, sections = h.start_broker(self.ws, redis)
        client = self.ws.own(h.IngestClient(sections["broker"]["ingest"]))
        self.assertEqual(client.emit(h.need_reported()).sequence, 1201)
        probe = self.ws.own(h.Probe(self.ws, redis, sections["broker"]["fanout"], "reader"))
        probe.start()
        h.wait_until(lambda: probe.checkpoint() >= 1201, timeout=20, what="the reader to catch up")
        self.assertEqual(probe.applied_count(), 1199)
        # Only what the retention trimmed before is missing.
        self.assertEqual(probe.log().count("no longer in the journal"), 1, probe.log())
        self.assertIn("sequences 1 to 2 are no longer in the journal", probe.log())
        broker.stop()
        probe.stop()

    def test_the_rewrite_keeps_what_the_broker_journals_meanwhile(self):
        # A big legacy journal (its copy takes a while) and a producer
        # emitting through the broker during the whole `forget`: every event
        # acknowledged is in the rewritten journal at its sequence.
        redis = self.ws.own(h.Redis(self.ws.dir).start())
        legacy = member("epicerie-caen", JOINED)
        legacy.source = "test-net"
        filler = h.need_reported()
        filler.source = "test-net"
        redis.call("XADD", "mg:journal", "1-0", "t", "member.joined", "e", legacy.SerializeToString())
        redis.call("EVAL", "for i = 2, 40000 do redis.call('XADD', KEYS[1], i .. '-0', 't', 'need.reported', "
                   "'e', ARGV[1]) end return 0", 1, "mg:journal", filler.SerializeToString())
        redis.call("SET", "mg:journal:seq", 40000)
        broker, sections = h.start_broker(self.ws, redis)
        client = self.ws.own(h.IngestClient(sections["broker"]["ingest"]))
        forget = subprocess.Popen([os.path.join(h.BIN, "maillage"), "forget", "epicerie-caen", "--yes",
                                   "--redis", redis.url], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        acked = {}
        while forget.poll() is None or not acked:
            e = h.need_reported()
            ack = client.emit(e)
            self.assertEqual(ack.status, h.ACCEPTED)
            acked[e.event_id] = ack.sequence
        out, err = forget.communicate(timeout=60)
        self.assertEqual(forget.returncode, 0, (out + err).decode())
        self.assertIn("1 réécrite sans le contact", out.decode())
        tail = redis.call("XRANGE", "mg:journal", "40001-0", "+")
        seen = {}
        for entry_id, fields in tail:
            env = h.Envelope()
            env.ParseFromString(dict(zip(fields[::2], fields[1::2]))[b"e"])
            seen[env.event_id] = int(entry_id.split(b"-")[0])
        self.assertEqual(seen, acked)
        self.assertEqual(redis.call("XLEN", "mg:journal"), 40000 + len(acked))
        self.assertEqual(holders(redis, JOINED), [])
        broker.stop()

if __name__ == "__main__":
    unittest.main()
