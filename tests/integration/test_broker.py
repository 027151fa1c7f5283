"""maillage-broker against a real redis-server, real ZeroMQ sockets.

Each test starts its own Redis (AOF on) and broker in a temp directory, so
sequences start at 1 and nothing leaks between tests."""

import os
import signal
import struct
import threading
import time
import unittest

import zmq

import harness as h


class Subscriber(h.Subscriber):
    """harness.Subscriber that skips the broker's heartbeats (two frames on
    the topic "_heartbeat", which an empty subscription also receives)."""

    def recv(self, timeout=5.0):
        deadline = time.monotonic() + timeout
        while True:
            if not self.sock.poll(max(0, int((deadline - time.monotonic()) * 1000))):
                raise TimeoutError("nothing published within %.1f s" % timeout)
            frames = self.sock.recv_multipart()
            if frames[0] == b"_heartbeat":
                continue
            assert len(frames) == 3, "a publication is 3 frames, got %d" % len(frames)
            topic, seq_be, data = frames
            assert len(seq_be) == 8, "sequence frame of %d bytes" % len(seq_be)
            env = h.Envelope()
            env.ParseFromString(data)
            return topic.decode(), struct.unpack(">Q", seq_be)[0], env


def raw_subscriber(endpoint, topic=b""):
    sock = zmq.Context.instance().socket(zmq.SUB)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.SUBSCRIBE, topic)
    sock.connect(endpoint)
    return sock


def next_heartbeat(sock, timeout=5.0):
    """The sequence of the next heartbeat on `sock` (other messages skipped)."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not sock.poll(int(left * 1000)):
            raise TimeoutError("no heartbeat within %.1f s" % timeout)
        frames = sock.recv_multipart()
        if frames[0] == b"_heartbeat":
            assert len(frames) == 2 and len(frames[1]) == 8, frames
            return struct.unpack(">Q", frames[1])[0]


def resident_mb(pid):
    """The resident memory of process `pid`, in MB."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0


def journal(redis):
    """[(seq, type, Envelope)] of mg:journal, the sequence set from the id."""
    out = []
    for entry_id, fields in redis.call("XRANGE", "mg:journal", "-", "+"):
        f = dict(zip(fields[::2], fields[1::2]))
        seq = int(entry_id.split(b"-")[0])
        assert entry_id.endswith(b"-0"), entry_id
        env = h.Envelope()
        env.ParseFromString(f[b"e"])
        assert env.sequence == 0, "the journal keeps envelopes without their sequence"
        out.append((seq, f[b"t"].decode(), env))
    return out


def deadletters(redis):
    out = []
    for _, fields in redis.call("XRANGE", "mg:deadletter", "-", "+"):
        out.append({k.decode(): v for k, v in zip(fields[::2], fields[1::2])})
    return out


# ---- member events with a contact (personal data) --------------------------------

CONTACT = ("Camille Martin", "camille.martin@asso.example.org", "+33 2 31 00 00 01")
OTHER_CONTACT = ("Dominique Leroy", "d.leroy@asso.example.org", "02 31 00 00 02")


def member_event(type_, sid, contact=CONTACT):
    """A valid member.joined / member.updated of structure `sid` in Caen,
    with `contact` (name, e-mail, phone) unless None."""
    env = h.Envelope(event_id=h.new_id(), type=type_, occurred_at_ms=int(time.time() * 1000))
    body = env.member_joined if type_ == "member.joined" else env.member_updated
    s = body.structure
    s.structure_id = sid
    s.name = "Épicerie solidaire " + sid
    s.family = h.events_pb2.FAMILY_ASSOCIATION
    s.commune = "14118"
    s.networks.append("cress-normandie")
    if contact:
        s.contact.name, s.contact.email, s.contact.phone = contact
    if type_ == "member.joined":
        body.network = "cress-normandie"
        body.joined_on = "2026-01-15"
    return env


def member_left_event(sid):
    env = h.Envelope(event_id=h.new_id(), type="member.left", occurred_at_ms=int(time.time() * 1000))
    env.member_left.structure_id = sid
    env.member_left.network = "cress-normandie"
    env.member_left.left_on = "2026-02-01"
    return env


def stored_contact(redis, sid):
    """(name, email, phone) of mg:contact:<sid>, or None."""
    data = redis.call("GET", "mg:contact:" + sid)
    if data is None:
        return None
    c = h.events_pb2.Contact()
    c.ParseFromString(data)
    return (c.name, c.email, c.phone)


class BrokerTest(unittest.TestCase):
    def setUp(self):
        self.ws = h.Workspace()
        self.redis = self.ws.own(h.Redis(self.ws.dir)).start()

    def tearDown(self):
        self.ws.close(keep=os.environ.get("MAILLAGE_KEEP") == "1")

    def start(self, **broker):
        self.broker, sections = h.start_broker(self.ws, self.redis, **broker)
        self.ingest = sections["broker"]["ingest"]
        self.fanout = sections["broker"]["fanout"]
        self.client = self.ws.own(h.IngestClient(self.ingest))
        return self.client

    # ---- the happy path --------------------------------------------------

    def test_events_in_flight_are_all_accepted_with_sequences_1_to_n(self):
        client = self.start()
        sent = [h.need_reported() if i % 2 else h.offer_published() for i in range(50)]
        for e in sent:
            e.source = "someone-else"  # the broker stamps its own
        acks = client.emit_many(sent)
        self.assertEqual({a.status for a in acks.values()}, {h.ACCEPTED})
        self.assertEqual(sorted(a.sequence for a in acks.values()), list(range(1, 51)))

        entries = journal(self.redis)
        self.assertEqual([s for s, _, _ in entries], list(range(1, 51)))
        for seq, type_, env in entries:
            self.assertEqual(acks[env.event_id].sequence, seq)
            self.assertEqual(type_, env.type)
            self.assertEqual(env.source, "test-net")
            self.assertGreater(env.received_at_ms, 0)
            self.assertEqual(env.schema_version, 1)
        by_id = {e.event_id: e for e in sent}
        for _, _, env in entries:
            self.assertEqual(env.WhichOneof("payload"), by_id[env.event_id].WhichOneof("payload"))
        self.assertEqual(self.redis.call("GET", "mg:journal:seq"), b"50")

    def test_same_event_id_twice_is_journaled_once_and_answered_duplicate(self):
        client = self.start()
        first = h.need_reported()
        self.assertEqual(client.emit(h.need_reported()).sequence, 1)
        ack = client.emit(first)
        self.assertEqual((ack.status, ack.sequence), (h.ACCEPTED, 2))
        again = client.emit(first)
        self.assertEqual((again.status, again.sequence, again.event_id),
                         (h.DUPLICATE, 2, first.event_id))
        # Twice in the same batch: the script sees the first copy.
        twin = h.need_reported()
        client.send(twin)
        client.send(twin)
        acks = [client.recv_ack(), client.recv_ack()]
        self.assertEqual(sorted(a.status for a in acks), sorted([h.ACCEPTED, h.DUPLICATE]))
        self.assertEqual({a.sequence for a in acks}, {3})
        self.assertEqual(self.redis.call("XLEN", "mg:journal"), 3)
        self.assertEqual(self.redis.call("GET", "mg:dedupe:test-net:" + first.event_id), b"2")
        ttl = self.redis.call("TTL", "mg:dedupe:test-net:" + first.event_id)
        self.assertTrue(0 < ttl <= 604800, ttl)

    def test_subscribers_receive_what_was_acked_in_order_with_topic_and_sequence(self):
        client = self.start()
        sub = self.ws.own(Subscriber(self.fanout))
        offers = self.ws.own(Subscriber(self.fanout, topics=("offer.",)))
        start = h.wait_subscribed(sub, client)
        h.wait_subscribed(offers, client, make=h.offer_published)
        while True:  # what the offers warm-up published to `sub`
            try:
                _, start, _ = sub.recv(0.3)
            except TimeoutError:
                break
        sent = [h.offer_published() if i % 3 == 0 else h.need_reported() for i in range(30)]
        acks = client.emit_many(sent)
        dup = client.emit(sent[0])  # not published again
        self.assertEqual(dup.status, h.DUPLICATE)

        got = [sub.recv() for _ in sent]
        self.assertEqual([seq for _, seq, _ in got], list(range(start + 1, start + 31)))
        for topic, seq, env in got:
            self.assertEqual(topic, env.type)
            self.assertEqual(env.sequence, seq)
            self.assertEqual(acks[env.event_id].sequence, seq)
            self.assertEqual(env.source, "test-net")
        with self.assertRaises(TimeoutError):
            sub.recv(0.3)  # the duplicate was not published
        # A prefix subscription gets the offers only (it may have missed the
        # warm-up events, never the ones after).
        offer_ids = {e.event_id for e in sent if e.type == "offer.published"}
        seen = set()
        while True:
            try:
                topic, _, env = offers.recv(0.3)
            except TimeoutError:
                break
            self.assertEqual(topic, "offer.published")
            seen.add(env.event_id)
        self.assertTrue(offer_ids <= seen, offer_ids - seen)

    def test_stamped_fields_override_what_the_producer_sent(self):
        # The broker appends source, received_at_ms (and schema_version,
        # sequence 0 when needed) to the bytes received instead of re-encoding
        # them: any protobuf reader must see the broker's values.
        client = self.start()
        sub = self.ws.own(Subscriber(self.fanout))
        start = h.wait_subscribed(sub, client)
        e = h.need_reported()
        e.source, e.sequence, e.received_at_ms, e.schema_version = "forged", 99, 5, 0
        ack = client.emit(e)
        self.assertEqual((ack.status, ack.sequence), (h.ACCEPTED, start + 1))
        seq, _, env = journal(self.redis)[-1]  # asserts sequence 0 in the journal
        self.assertEqual((seq, env.event_id, env.source, env.schema_version), (start + 1, e.event_id, "test-net", 1))
        self.assertGreater(env.received_at_ms, 1_600_000_000_000)
        self.assertEqual(env.need_reported, e.need_reported)
        _, pub_seq, pub = sub.recv()
        self.assertEqual((pub_seq, pub.sequence, pub.source, pub.received_at_ms),
                         (start + 1, start + 1, "test-net", env.received_at_ms))
        # Nor do the producer's own values stay in the bytes, beside the
        # stamp: a `source` that is not UTF-8 made readers that check it (this
        # one) refuse the whole envelope, journaled and published all the same.
        (_, fields), = self.redis.call("XRANGE", "mg:journal", "%d-0" % (start + 1), "%d-0" % (start + 1))
        self.assertNotIn(b"forged", dict(zip(fields[::2], fields[1::2]))[b"e"])
        e = h.need_reported()
        ack = client.emit(e.SerializeToString() + b"\x1a\x02\xff\xfe")  # field 3, source
        self.assertEqual((ack.status, ack.sequence), (h.ACCEPTED, start + 2))
        seq, _, env = journal(self.redis)[-1]  # parses
        self.assertEqual((seq, env.event_id, env.source), (start + 2, e.event_id, "test-net"))
        _, pub_seq, pub = sub.recv()  # parses
        self.assertEqual((pub_seq, pub.event_id, pub.source), (start + 2, e.event_id, "test-net"))

    def test_a_relay_stamps_the_network_it_sends_for_and_retries_are_scoped_by_it(self):
        # The HTTP gateway relays for the network of each token: the broker
        # stamps that network, echoes it in the ack, and keeps the dedupe
        # per network (two networks may use the same event id).
        client = self.start()
        e = h.need_reported()
        e.source = "forged"
        raw = e.SerializeToString()
        client.send_frames([b"on-behalf-of:net-a", raw])
        a = client.recv_ack()
        self.assertEqual((a.status, a.on_behalf_of, a.event_id), (h.ACCEPTED, "net-a", e.event_id))
        other = h.need_reported(event_id=e.event_id)  # the same event id, net-b's own need
        client.send_frames([b"on-behalf-of:net-b", other.SerializeToString()])
        b = client.recv_ack()
        self.assertEqual((b.status, b.on_behalf_of), (h.ACCEPTED, "net-b"))
        self.assertEqual(b.sequence, a.sequence + 1)
        client.send_frames([b"on-behalf-of:net-a", raw])
        again = client.recv_ack()
        self.assertEqual((again.status, again.sequence, again.on_behalf_of), (h.DUPLICATE, a.sequence, "net-a"))
        direct = client.emit(raw)  # the sender's own name: the configured network
        self.assertEqual((direct.status, direct.on_behalf_of), (h.ACCEPTED, ""))
        sources = [env.source for _, _, env in journal(self.redis)[-3:]]
        self.assertEqual(sources, ["net-a", "net-b", "test-net"])

    def test_a_nul_byte_in_a_text_field_is_refused_not_cut_short(self):
        # protobuf-c keeps a string's bytes after an embedded NUL, while every
        # reader of the unpacked envelope stops there: "ok\0\xff\x07" would be
        # validated and journaled as "ok", and two event ids differing after a
        # NUL would be one event (the second answered DUPLICATE, lost).
        client = self.start()
        before = len(journal(self.redis))
        e = h.Envelope(event_id=h.new_id(), type="need.closed")
        e.need_closed.need_id = "need-1"
        e.need_closed.structure_id = "s-1"
        e.need_closed.comment = "okABC"
        raw = e.SerializeToString()
        ack = client.emit(raw.replace(b"okABC", b"ok\x00\xff\x07"))
        self.assertEqual((ack.status, ack.field, ack.event_id), (h.REJECTED, "need_closed.comment", e.event_id))
        self.assertIn("NUL", ack.reason)
        for suffix in (b"A", b"B"):  # two events, not one and a duplicate
            e = h.Envelope(event_id="zznulX" + suffix.decode(), type="need.closed")
            e.need_closed.need_id = "need-" + suffix.decode()
            e.need_closed.structure_id = "s-1"
            ack = client.emit(e.SerializeToString().replace(b"zznulX" + suffix, b"zznul\x00" + suffix))
            self.assertEqual((ack.status, ack.field, ack.event_id), (h.REJECTED, "event_id", ""))
        e = h.Envelope(event_id=h.new_id(), type="need.reported")  # nested: the path says where
        e.need_reported.need.need_id = "need-2"
        e.need_reported.need.tags.append("cuisineX")
        ack = client.emit(e.SerializeToString().replace(b"cuisineX", b"cuisine\x00"))
        self.assertEqual((ack.status, ack.field), (h.REJECTED, "need_reported.need.tags"))
        self.assertEqual(len(journal(self.redis)), before)
        # A dead letter is written after the producer's answer: wait for it.
        h.wait_until(lambda: len(deadletters(self.redis)) >= 4, what="four dead letters")
        self.assertEqual(len(deadletters(self.redis)), 4)

    def test_a_nul_in_a_string_made_up_for_by_encodings_that_grow_is_still_caught(self):
        # A NUL, with the bytes lost at it made up for: the offer's
        # conditions carry `families` unpacked (one byte more once packed)
        # and are 127 bytes long (a length prefix of one byte more at 128).
        # Received and re-encoded sizes are equal; the bytes are not.
        client = self.start()
        def varint(n):
            out = b""
            while n > 0x7F:
                out += bytes([(n & 0x7F) | 0x80])
                n >>= 7
            return out + bytes([n])
        tmpl = h.offer_published(title="LocalXY")
        offer = tmpl.offer_published.offer
        cond = h.events_pb2.OfferConditions(departments=["14"], member_of=["reseau-" + "a" * 50])
        pad = 127 - len(cond.SerializeToString()) - 2 - 2  # then a second network, its tag and length
        cond.member_of.append("reseau-" + "b" * (pad - 7))
        cond_raw = cond.SerializeToString() + b"\x18\x01"  # families = [FAMILY_ASSOCIATION], unpacked
        self.assertEqual(len(cond_raw), 127)
        offer_raw = offer.SerializeToString().replace(b"LocalXY", b"Local\x00\xff") + b"\x72" + varint(127) + cond_raw
        published = b"\x0a" + varint(len(offer_raw)) + offer_raw
        tmpl.ClearField("offer_published")
        hostile = tmpl.SerializeToString() + b"\xd2\x01" + varint(len(published)) + published  # field 26
        before = len(journal(self.redis))
        ack = client.emit(hostile)
        self.assertEqual((ack.status, ack.field), (h.REJECTED, "offer_published.offer.title"), ack.reason)
        self.assertEqual(len(journal(self.redis)), before)
        # Without the NUL, the same bytes pass, journaled re-encoded (packed).
        ack = client.emit(hostile.replace(b"Local\x00\xff", b"Local\xc3\xa9"))
        self.assertEqual(ack.status, h.ACCEPTED, ack.reason)
        _, _, env = journal(self.redis)[-1]  # parses with python-protobuf
        self.assertEqual(env.offer_published.offer.title, "Localé")
        self.assertEqual(list(env.offer_published.offer.conditions.families), [h.events_pb2.FAMILY_ASSOCIATION])
        self.assertEqual(env.event_id, tmpl.event_id)

    # ---- personal data: the contact never enters the journal -------------------

    def test_member_events_are_journaled_and_published_without_their_contact(self):
        client = self.start()
        sub = self.ws.own(Subscriber(self.fanout))
        start = h.wait_subscribed(sub, client)
        joined = member_event("member.joined", "asso-1")
        joined.member_joined.structure.contact.role = "coordinatrice"
        updated = member_event("member.updated", "asso-1", contact=OTHER_CONTACT)
        acks = client.emit_many([joined, updated])
        self.assertEqual({a.status for a in acks.values()}, {h.ACCEPTED})
        entries = journal(self.redis)[-2:]
        published = [sub.recv() for _ in range(2)]
        for (seq, _, env), (_, pub_seq, pub), sent in zip(entries, published, (joined, updated)):
            field = sent.WhichOneof("payload")
            body, pub_body = getattr(env, field), getattr(pub, field)
            self.assertFalse(body.structure.HasField("contact"))
            self.assertFalse(pub_body.structure.HasField("contact"))
            self.assertEqual((env.event_id, pub_seq), (sent.event_id, seq))
            # Everything else of the record is kept.
            expected = type(body)()
            expected.CopyFrom(getattr(sent, field))
            expected.structure.ClearField("contact")
            self.assertEqual(body, expected)
            self.assertEqual(pub_body, expected)
        self.assertEqual([s for s, _, _ in entries], [start + 1, start + 2])
        # Not a byte of it, in any form, in the journal.
        raw = b"".join(f for _, fields in self.redis.call("XRANGE", "mg:journal", "-", "+") for f in fields)
        for value in CONTACT + OTHER_CONTACT:
            self.assertNotIn(value.encode(), raw)
        # The contact of the last event is kept apart.
        self.assertEqual(stored_contact(self.redis, "asso-1"), OTHER_CONTACT)

    def test_the_contact_follows_joined_updated_left_in_order_whatever_the_retries(self):
        client = self.start()
        joined = member_event("member.joined", "asso-2")
        updated = member_event("member.updated", "asso-2", contact=OTHER_CONTACT)
        # The joined and the update, then a retry of the joined: a
        # duplicate must not put the old contact back.
        acks = client.emit_many([joined, updated])
        again = client.emit(joined)
        self.assertEqual((again.status, again.sequence), (h.DUPLICATE, acks[joined.event_id].sequence))
        self.assertEqual(stored_contact(self.redis, "asso-2"), OTHER_CONTACT)
        # The same sent back to back (one batch, usually): the second copy
        # of `joined2`, behind the update, is a duplicate.
        joined2 = member_event("member.joined", "asso-3")
        updated2 = member_event("member.updated", "asso-3", contact=OTHER_CONTACT)
        for e in (joined2, updated2, joined2):
            client.send(e)
        statuses = sorted(client.recv_ack().status for _ in range(3))
        self.assertEqual(statuses, sorted([h.ACCEPTED, h.ACCEPTED, h.DUPLICATE]))
        self.assertEqual(stored_contact(self.redis, "asso-3"), OTHER_CONTACT)
        # A record without a contact replaces the whole structure: erased. A
        # retry of an older update with one changes nothing.
        bare = member_event("member.updated", "asso-2", contact=None)
        self.assertEqual(client.emit(bare).status, h.ACCEPTED)
        self.assertIsNone(self.redis.call("GET", "mg:contact:asso-2"))
        self.assertEqual(client.emit(updated).status, h.DUPLICATE)
        self.assertIsNone(self.redis.call("GET", "mg:contact:asso-2"))
        # A member.joined without a contact (another network's record of a
        # known structure) keeps the one known.
        self.assertEqual(client.emit(member_event("member.joined", "asso-3", contact=None)).status, h.ACCEPTED)
        self.assertEqual(stored_contact(self.redis, "asso-3"), OTHER_CONTACT)
        # member.left erases it; then retries of the joined and the update
        # that carried it are duplicates, and it stays erased.
        self.assertEqual(client.emit(member_left_event("asso-3")).status, h.ACCEPTED)
        self.assertIsNone(self.redis.call("GET", "mg:contact:asso-3"))
        answers = client.emit_many([joined2, updated2])
        self.assertEqual({a.status for a in answers.values()}, {h.DUPLICATE})
        self.assertIsNone(self.redis.call("GET", "mg:contact:asso-3"))
        # Joining again with a contact (a new event) keeps it again.
        back = member_event("member.joined", "asso-3")
        self.assertEqual(client.emit(back).status, h.ACCEPTED)
        self.assertEqual(stored_contact(self.redis, "asso-3"), CONTACT)
        # An empty Contact message is no contact.
        empty = member_event("member.updated", "asso-3", contact=None)
        empty.member_updated.structure.contact.SetInParent()
        self.assertEqual(client.emit(empty).status, h.ACCEPTED)
        self.assertIsNone(self.redis.call("GET", "mg:contact:asso-3"))

    def test_a_rejected_member_event_keeps_its_raw_bytes_apart_and_sets_no_contact(self):
        # What was received is kept, contact included (operators need it to
        # tell a producer what was wrong), but apart from the dead letter:
        # under the structure, which its member.left or `maillage forget`
        # erases; the dead letter keeps the event without its contact, and
        # nothing of it reaches mg:contact or the journal.
        client = self.start()
        bad = member_event("member.joined", "asso-4")
        bad.member_joined.structure.commune = "99999"
        raw = bad.SerializeToString()
        ack = client.emit(raw)
        self.assertEqual(ack.status, h.REJECTED)
        self.assertEqual(ack.field, "member_joined.structure.commune")
        dls = h.wait_until(lambda: deadletters(self.redis) or None, what="the dead letter")
        self.assertEqual(dls[0]["held"], b"asso-4")
        self.assertEqual(int(dls[0]["raw_len"]), len(raw))
        without = h.Envelope()
        without.ParseFromString(raw)
        without.member_joined.structure.ClearField("contact")
        self.assertEqual(h.Envelope.FromString(dls[0]["raw"]), without)
        [(dl_id, _)] = self.redis.call("XRANGE", "mg:deadletter", "-", "+")
        self.assertEqual(self.redis.call("HGETALL", "mg:deadletter:held:asso-4"), [dl_id, raw])
        self.assertIsNone(self.redis.call("GET", "mg:contact:asso-4"))
        self.assertEqual(self.redis.call("XLEN", "mg:journal"), 0)

    def test_held_contacts_expire_go_with_their_trimmed_letters_and_are_bounded(self):
        # The bytes held apart must not outlive what the structure's
        # member.left can reach: they expire (deadletter_contact_days after
        # the last), those of letters MAXLEN trimmed go at the structure's
        # next refusal, and a structure keeps 100 at most (beyond, the
        # contact is not kept). Before, a letter trimmed or refused after the
        # member left kept its contact for good.
        client = self.start(deadletter_maxlen=100, deadletter_contact_days=2)

        def refused(sid):
            bad = member_event("member.updated", sid)
            bad.member_updated.structure.commune = "99999"
            return bad

        ack = client.emit(refused("s-trim"))
        self.assertEqual(ack.status, h.REJECTED)
        key = "mg:deadletter:held:s-trim"
        h.wait_until(lambda: self.redis.call("HLEN", key) == 1, what="the held bytes")
        self.assertTrue(2 * 86400 - 60 < self.redis.call("TTL", key) <= 2 * 86400)
        [old] = self.redis.call("HKEYS", key)
        for _ in range(400):
            client.send(b"\xff junk")
        for _ in range(400):
            self.assertEqual(client.recv_ack().status, h.REJECTED)
        h.wait_until(lambda: self.redis.call("XLEN", "mg:deadletter") < 300, what="the trimming")
        self.assertEqual(self.redis.call("XRANGE", "mg:deadletter", old, old), [])
        self.assertEqual(client.emit(refused("s-trim")).status, h.REJECTED)
        h.wait_until(lambda: self.redis.call("HKEYS", key) not in ([old], []), what="the new held bytes")
        self.assertEqual(self.redis.call("HLEN", key), 1)
        self.assertNotIn(old, self.redis.call("HKEYS", key))

        sent = [refused("s-many") for _ in range(103)]
        for env in sent:
            client.send(env)
        for _ in sent:
            self.assertEqual(client.recv_ack().status, h.REJECTED)
        h.wait_until(lambda: len([1 for d in deadletters(self.redis) if b"s-many" in d["raw"]]) == 103,
                     what="the 103 dead letters")
        self.assertEqual(self.redis.call("HLEN", "mg:deadletter:held:s-many"), 100)
        letters = [d for d in deadletters(self.redis) if b"s-many" in d["raw"]]
        self.assertEqual(len([d for d in letters if "held" in d]), 100)
        self.assertFalse([d for d in letters if CONTACT[1].encode() in d["raw"]])

    def test_numbering_continues_after_the_stream_when_the_counter_is_missing(self):
        self.redis.call("XADD", "mg:journal", "7-0", "t", "need.reported",
                        "e", h.need_reported().SerializeToString())
        client = self.start()
        acks = client.emit_many([h.need_reported() for _ in range(3)])
        self.assertEqual(sorted(a.sequence for a in acks.values()), [8, 9, 10])
        self.assertEqual(self.redis.call("GET", "mg:journal:seq"), b"10")
        # A counter behind the stream (restored alone): repaired from the
        # stream's last id, numbering goes on, nothing refused.
        self.redis.call("SET", "mg:journal:seq", "2")
        late = h.need_reported()
        ack = client.emit(late)
        self.assertEqual((ack.status, ack.sequence), (h.ACCEPTED, 11))
        self.assertEqual(self.redis.call("GET", "mg:dedupe:test-net:" + late.event_id), b"11")
        self.assertEqual(self.redis.call("GET", "mg:journal:seq"), b"11")
        self.assertEqual(client.emit(late).status, h.DUPLICATE)
        # The counter lost after retention emptied the stream: the stream's
        # last generated id (kept by XTRIM) still says where numbering is.
        self.redis.call("XTRIM", "mg:journal", "MAXLEN", "0")
        self.redis.call("DEL", "mg:journal:seq")
        ack = client.emit(h.need_reported())
        self.assertEqual((ack.status, ack.sequence), (h.ACCEPTED, 12))

    # ---- the heartbeat ------------------------------------------------------

    def test_heartbeat_announces_the_last_journaled_sequence_about_every_period(self):
        client = self.start(heartbeat_ms=100)
        hb = raw_subscriber(self.fanout, b"_heartbeat")
        try:
            self.assertEqual(next_heartbeat(hb), 0)  # empty journal
            client.emit_many([h.need_reported() for _ in range(3)])
            h.wait_until(lambda: next_heartbeat(hb) == 3, what="heartbeat 3")
            # Duplicates and rejections do not move it.
            client.emit(b"junk")
            t0 = time.monotonic()
            beats = [next_heartbeat(hb) for _ in range(5)]
            self.assertEqual(beats, [3] * 5)
            elapsed = time.monotonic() - t0
            self.assertTrue(0.3 < elapsed < 1.5, elapsed)
        finally:
            hb.close(0)

    def test_heartbeat_at_start_reads_the_counter_left_by_an_earlier_broker(self):
        # An earlier broker journaled up to 41 and was killed before it
        # published: the new one announces 41 without journaling anything.
        self.redis.call("SET", "mg:journal:seq", "41")
        self.redis.call("XADD", "mg:journal", "41-0", "t", "need.reported",
                        "e", h.need_reported().SerializeToString())
        client = self.start(heartbeat_ms=100)
        hb = raw_subscriber(self.fanout, b"_heartbeat")
        try:
            self.assertEqual(next_heartbeat(hb), 41)
            self.assertEqual(client.emit(h.need_reported()).sequence, 42)
            h.wait_until(lambda: next_heartbeat(hb) == 42, what="heartbeat 42")
        finally:
            hb.close(0)

    def test_heartbeat_follows_the_publication_of_every_sequence_it_announces(self):
        # The property subscribers rely on: a heartbeat saying N comes after
        # the publication of every event up to N, so only a lost publication
        # can leave a subscriber behind a heartbeat.
        client = self.start(heartbeat_ms=20)
        sock = raw_subscriber(self.fanout)
        try:
            h.wait_until(lambda: next_heartbeat(sock) == 0, what="first heartbeat")
            acks = client.emit_many([h.need_reported() for _ in range(300)])
            last = max(a.sequence for a in acks.values())
            seen = set()
            checked = 0
            deadline = time.monotonic() + 10
            while True:
                self.assertLess(time.monotonic(), deadline)
                frames = sock.recv_multipart()
                if frames[0] == b"_heartbeat":
                    n = struct.unpack(">Q", frames[1])[0]
                    self.assertEqual(set(range(1, n + 1)) - seen, set(), "heartbeat %d" % n)
                    checked += 1
                    if n == last:
                        break
                else:
                    seen.add(struct.unpack(">Q", frames[1])[0])
            self.assertGreater(checked, 0)
        finally:
            sock.close(0)

    # ---- journal retention ----------------------------------------------------

    def seqs(self):
        return [int(i.split(b"-")[0]) for i, _ in self.redis.call("XRANGE", "mg:journal", "-", "+")]

    def wait_seqs(self, expected, timeout=6.0):
        h.wait_until(lambda: self.seqs() == expected, timeout=timeout,
                     what="journal %d..%d" % (expected[0], expected[-1]))
        time.sleep(1.3)  # one more tick changes nothing (idempotent)
        self.assertEqual(self.seqs(), expected)

    def test_retention_by_size_keeps_the_newest_entries(self):
        client = self.start(retention_interval_s=1, retention_max_events=10, retention_max_age_s=0)
        client.emit_many([h.need_reported() for _ in range(25)])
        self.wait_seqs(list(range(16, 26)))
        # Numbering goes on after the trim.
        self.assertEqual(client.emit(h.need_reported()).sequence, 26)
        self.wait_seqs(list(range(17, 27)))
        self.broker.wait_log("retention: ")

    def test_retention_by_age_trims_what_was_journaled_before_the_cutoff(self):
        # The marks say the journal had reached 10 eleven days ago.
        old = int(time.time() * 1000) - 11 * 86400 * 1000
        self.redis.call("ZADD", "mg:journal:marks", old, "10")
        client = self.start(retention_interval_s=1, retention_max_age_s=10 * 86400, retention_max_events=0)
        client.emit_many([h.need_reported() for _ in range(15)])
        self.wait_seqs(list(range(11, 16)))
        # The old mark is the newest before the cutoff: kept; a fresh one was added.
        marks = self.redis.call("ZRANGE", "mg:journal:marks", 0, -1)
        self.assertEqual(marks[0], b"10")
        self.assertGreaterEqual(len(marks), 2)

    def _consumers(self, **seqs):
        for name, seq in seqs.items():
            self.redis.call("SADD", "mg:consumers", name)
            if seq is not None:
                self.redis.call("HSET", "mg:consumer:" + name, "seq", str(seq), "topics", "")

    def test_retention_never_trims_past_the_slowest_registered_consumer(self):
        self._consumers(slow=4, fast=20, newcomer=None)
        client = self.start(retention_interval_s=1, retention_max_events=10, retention_max_age_s=0)
        client.emit_many([h.need_reported() for _ in range(25)])
        # "newcomer" has no checkpoint yet: it needs everything.
        time.sleep(1.5)
        self.assertEqual(self.seqs(), list(range(1, 26)))
        # The advice is the CLI command that forgets it properly (its parked
        # events become dead letters), not a raw SREM on mg:consumers.
        self.broker.wait_log('consumer "newcomer" (at sequence 0 of 25) holds back the trimming of the journal '
                             'below 16 (if it is gone for good: maillage consumers forget newcomer; or set '
                             'retention_force)')
        self.redis.call("SREM", "mg:consumers", "newcomer")
        self.wait_seqs(list(range(5, 26)))  # slow completed 4: it still needs 5
        self.broker.wait_log('consumer "slow" (at sequence 4 of 25) holds back')
        self.redis.call("HSET", "mg:consumer:slow", "seq", "18")
        self.wait_seqs(list(range(16, 26)))  # now the size limit binds
        self.assertNotIn("retention_force:", self.broker.log())

    def test_retention_keeps_what_a_consumer_has_parked_for_retry(self):
        # "fast" has completed 20 but parked 7 for a retry: 7 must stay.
        self._consumers(fast=20)
        self.redis.call("ZADD", "mg:retry:fast", "1", "7")
        client = self.start(retention_interval_s=1, retention_max_events=10, retention_max_age_s=0)
        client.emit_many([h.need_reported() for _ in range(25)])
        self.wait_seqs(list(range(7, 26)))
        self.broker.wait_log('consumer "fast" (at sequence 6 of 25) holds back')
        self.redis.call("ZREM", "mg:retry:fast", "7")
        self.wait_seqs(list(range(16, 26)))

    def test_retention_force_trims_past_consumers_and_says_so(self):
        self._consumers(slow=4)
        client = self.start(retention_interval_s=1, retention_max_events=10, retention_max_age_s=0,
                            retention_force="true")
        client.emit_many([h.need_reported() for _ in range(25)])
        self.wait_seqs(list(range(16, 26)))
        self.broker.wait_log('retention_force: journal trimmed below sequence 16 (15 entries) although '
                             'consumer "slow" has only completed 4')

    # ---- bad input --------------------------------------------------------

    def test_bad_input_is_rejected_with_a_reason_and_dead_lettered(self):
        client = self.start(max_message_bytes=2048)
        mismatch = h.need_reported()
        mismatch.type = "offer.published"
        unknown = h.need_reported()
        unknown.type = "need.invented"
        bad_commune = h.need_reported(commune="99999")
        bad_category = h.need_reported(category="licornes")
        oversized = h.need_reported(description="x" * 3000)
        cases = [
            # (bytes, expected reason fragment, expected field, expected event_id)
            (b"\xff\xfe not protobuf", "not a protobuf Envelope", "", ""),
            (unknown.SerializeToString(), "unknown event type", "type", unknown.event_id),
            (mismatch.SerializeToString(), "does not match the payload", "type", mismatch.event_id),
            (bad_commune.SerializeToString(), "commune", "need_reported.need.commune", bad_commune.event_id),
            (bad_category.SerializeToString(), "categor", "need_reported.need.category", bad_category.event_id),
            (oversized.SerializeToString(), "message too large", "", oversized.event_id),
        ]
        for raw, reason, field, event_id in cases:
            with self.subTest(reason=reason):
                ack = client.emit(raw)
                self.assertEqual(ack.status, h.REJECTED, ack)
                self.assertIn(reason, ack.reason)
                self.assertEqual(ack.field, field)
                self.assertEqual(ack.event_id, event_id)
                self.assertEqual(ack.sequence, 0)
        # Three frames: neither a plain envelope nor a relay's header + envelope.
        client.send_frames([b"on-behalf-of:net-a", h.need_reported().SerializeToString(), b"extra"])
        ack = client.recv_ack()
        self.assertEqual(ack.status, h.REJECTED)
        self.assertIn("expected one frame", ack.reason)
        # More frames than zsock delivers (16): answered too, with the event
        # id of its last frame (it was dropped unanswered: the producer waited).
        many = h.need_reported()
        client.send_frames([b"x"] * 16 + [many.SerializeToString()])
        ack = client.recv_ack()
        self.assertEqual((ack.status, ack.event_id), (h.REJECTED, many.event_id))
        self.assertIn("got 15 or more", ack.reason)
        # Two frames whose first is not a relay header.
        for header in (b"extra", b"on-behalf-of:", b"on-behalf-of:bad id", b"on-behalf-of:" + b"x" * 65):
            with self.subTest(header=header):
                client.send_frames([header, h.need_reported().SerializeToString()])
                ack = client.recv_ack()
                self.assertEqual(ack.status, h.REJECTED)
                self.assertIn("malformed relay header", ack.reason)

        # The broker still serves, and nothing bad reached the journal.
        good = client.emit(h.need_reported())
        self.assertEqual((good.status, good.sequence), (h.ACCEPTED, 1))
        self.assertEqual(self.redis.call("XLEN", "mg:journal"), 1)

        # One dead letter per rejection: the cases, the three frames, the
        # seventeen, the four malformed relay headers.
        dls = h.wait_until(lambda: (lambda d: d if len(d) == len(cases) + 6 else None)(
            deadletters(self.redis)), what="dead letters")
        for (raw, reason, field, _), dl in zip(cases, dls):
            self.assertIn(reason, dl["reason"].decode())
            self.assertEqual(dl["field"].decode(), field)
            self.assertEqual(dl["source"], b"test-net")
            self.assertEqual(int(dl["raw_len"]), len(raw))
            self.assertEqual(dl["raw"], raw[:2048])
            self.assertGreater(int(dl["received_at_ms"]), 0)
        self.assertEqual(len(dls[len(cases) - 1]["raw"]), 2048)  # the oversized one, truncated
        self.assertIn(b"expected one frame", dls[len(cases)]["reason"])
        self.assertIn(b"got 15 or more", dls[len(cases) + 1]["reason"])
        self.assertEqual(dls[len(cases) + 1]["raw"], many.SerializeToString())
        for dl in dls[len(cases) + 2:]:
            self.assertIn(b"malformed relay header", dl["reason"])

    # ---- Redis going away ---------------------------------------------------

    def _outage(self, stop):
        client = self.start()
        before = [h.need_reported() for _ in range(5)]
        acks = client.emit_many(before)
        self.assertEqual({a.status for a in acks.values()}, {h.ACCEPTED})

        stop()
        during = [h.need_reported() for _ in range(5)]
        # The first sends may still race the broker noticing the loss: any
        # answer is fine but ACCEPTED (nothing can be journaled now).
        answers = client.emit_many(during)
        self.assertNotIn(h.ACCEPTED, {a.status for a in answers.values()})
        self.assertNotIn(h.DUPLICATE, {a.status for a in answers.values()})
        for a in answers.values():
            self.assertEqual(a.status, h.UNAVAILABLE)
            self.assertIn("retry", a.reason)
        self.broker.wait_log("journal unavailable")

        self.redis.start()
        # Producers retry with the same ids until the broker is back.
        retried = {}
        deadline = time.monotonic() + 10
        pending = list(during)
        while pending:
            self.assertLess(time.monotonic(), deadline, "broker did not recover")
            for e in list(pending):
                ack = client.emit(e)
                if ack.status == h.ACCEPTED:
                    retried[e.event_id] = ack.sequence
                    pending.remove(e)
                else:
                    self.assertEqual(ack.status, h.UNAVAILABLE)
                    time.sleep(0.05)
        after = client.emit_many([h.need_reported() for _ in range(5)])

        ids_in_journal = [env.event_id for _, _, env in journal(self.redis)]
        self.assertEqual(len(ids_in_journal), 15)
        for ids in (acks, retried, after):
            for event_id in ids:
                self.assertIn(event_id, ids_in_journal)
        self.assertEqual(sorted(retried.values()), list(range(6, 11)))
        self.assertEqual(sorted(a.sequence for a in after.values()), list(range(11, 16)))
        log = self.broker.log()
        self.assertEqual(log.count("journal unavailable;"), 1, log)
        self.assertEqual(log.count("journal available again"), 1, log)

    def test_redis_shutdown_and_restart_nothing_acked_while_down_nothing_lost(self):
        self._outage(self.redis.stop)

    def test_redis_killed_and_restarted_with_fsync_always(self):
        # kill -9 loses what the AOF had not fsynced; with "always" nothing
        # acked may be missing afterwards.
        self.redis.stop()
        self.redis = self.ws.own(h.Redis(self.ws.path("always"), appendfsync="always")).start()
        self._outage(self.redis.kill)

    def test_a_script_cache_flushed_during_a_burst_keeps_each_producers_order(self):
        # SCRIPT FLUSH (or a failover to a replica without the script) while
        # batches are pipelined: every EVALSHA in flight gets NOSCRIPT and is
        # sent again with EVAL. A batch sent meanwhile used to go before
        # those retries, its events journaled before earlier ones of the
        # same producer; new batches now wait for the retries. (A race:
        # without the wait, one run in three reordered some.)
        client = self.start()
        flusher = self.redis._connect()
        stop = threading.Event()
        def flush():
            while not stop.is_set():
                flusher.call("SCRIPT", "FLUSH")
                time.sleep(0.0005)
        t = threading.Thread(target=flush, daemon=True)
        t.start()
        try:
            sent = [h.need_reported() for _ in range(20000)]
            acks = client.emit_many(sent, timeout=30)
        finally:
            stop.set()
            t.join()
        self.assertEqual({a.status for a in acks.values()}, {h.ACCEPTED})
        order = [env.event_id for _, _, env in journal(self.redis)]
        self.assertEqual(order, [e.event_id for e in sent])

    def test_a_flood_of_refused_messages_while_redis_stalls_stays_within_a_budget(self):
        # Refused messages are dead-lettered with up to max_message_bytes of
        # their bytes; refusing does not stop reading, so while Redis does not
        # answer, 300 messages of 900 kB made 75 MB of dead letters wait in
        # the broker's memory. Beyond 16 MiB waiting, they are dropped.
        client = self.start()
        os.kill(self.redis.proc.pid, signal.SIGSTOP)
        try:
            garbage = b"\xff" * 900000
            for _ in range(300):
                client.send(garbage)
            self.broker.wait_log("too many dead letters wait for Redis", timeout=5)
            time.sleep(0.3)
            if "ASAN_OPTIONS" not in os.environ:  # (AddressSanitizer keeps freed memory in quarantine)
                self.assertLess(resident_mb(self.broker.proc.pid), 50)
        finally:
            os.kill(self.redis.proc.pid, signal.SIGCONT)
        while client.sock.poll(500):  # the refusals' acks
            client.sock.recv_multipart()
        deadline = time.monotonic() + 10
        while client.emit(h.need_reported()).status != h.ACCEPTED:
            self.assertLess(time.monotonic(), deadline, "broker did not recover")
            time.sleep(0.05)

    def test_large_events_waiting_for_redis_are_bounded_in_bytes_and_all_answered(self):
        # Valid events wait for Redis too: the broker stopped reading at 64
        # batches in flight, each up to 512 envelopes of 256 kB (8 GiB, held
        # twice). 2000 events of 200 kB sent while Redis does not answer grew
        # it by about 500 MB. Reading now pauses at 16 MiB in flight, a batch
        # ends at 2 MiB, and every event sent is journaled in the end (sent
        # again, as a producer does, when its ack was dropped at the HWM).
        # ZeroMQ's queue counts too: with the default ingest_hwm (100,000
        # messages) for both directions it took 390 MB of them in 2 s; what it
        # receives for a producer is now bounded by 16 MiB of envelopes.
        client = self.start()
        self.assertEqual(client.emit(h.need_reported()).status, h.ACCEPTED)


        def padded(env, size):
            # valid, made `size` bytes long by an unknown field (kept verbatim)
            data = env.SerializeToString()
            pad = size - len(data) - 6
            return data + b"\xc2\x3e" + bytes([0x80 | (pad & 0x7F), 0x80 | ((pad >> 7) & 0x7F), pad >> 14]) + b"u" * pad

        base = resident_mb(self.broker.proc.pid)
        sent = {}
        os.kill(self.redis.proc.pid, signal.SIGSTOP)
        try:
            deadline = time.monotonic() + 2.0  # within the watchdog's 2.5 s
            peak = base
            while len(sent) < 2000 and time.monotonic() < deadline:
                env = h.need_reported()
                try:
                    data = padded(env, 200000)
                    client.sock.send(data, zmq.NOBLOCK)
                    sent[env.event_id] = data
                except zmq.Again:
                    time.sleep(0.001)
                if len(sent) % 50 == 0:
                    peak = max(peak, resident_mb(self.broker.proc.pid))
            peak = max(peak, resident_mb(self.broker.proc.pid))
        finally:
            os.kill(self.redis.proc.pid, signal.SIGCONT)
        if "ASAN_OPTIONS" not in os.environ:  # (AddressSanitizer keeps freed memory in quarantine)
            self.assertLess(peak - base, 64, "the broker grew by %.0f MB while Redis did not answer" % (peak - base))
        self.assertGreater(len(sent), 100)
        while client.sock.poll(3000):  # the acks not dropped
            client.sock.recv_multipart()
        for event_id, data in sent.items():
            deadline = time.monotonic() + 10
            while client.emit(data).status not in (h.ACCEPTED, h.DUPLICATE):
                self.assertLess(time.monotonic(), deadline, "broker did not recover")
                time.sleep(0.05)
        self.assertTrue(set(sent) <= {env.event_id for _, _, env in journal(self.redis)})

    def test_a_subscriber_that_stops_reading_costs_the_broker_a_bounded_memory(self):
        # The fan-out keeps at most [broker] fanout_hwm messages for each
        # subscriber (ZeroMQ counts messages, not bytes); beyond, they are
        # dropped for it and it reads them from the journal. With the old
        # default (100,000) a subscriber that stopped reading made the broker
        # keep 20,000 events of 10 kB: about 200 MB. The default is now 1,000.
        client = self.start()
        stalled = zmq.Context.instance().socket(zmq.SUB)
        self.addCleanup(stalled.close, 0)
        stalled.setsockopt(zmq.RCVHWM, 1)
        stalled.setsockopt(zmq.RCVBUF, 4096)
        stalled.setsockopt(zmq.SUBSCRIBE, b"")
        stalled.connect(self.fanout)
        first = h.need_reported()
        h.wait_until(lambda: client.emit(first).status in (h.ACCEPTED, h.DUPLICATE) and stalled.poll(100),
                     what="the subscription")
        data = h.need_reported().SerializeToString()
        pad = 10000 - len(data) - 4
        base = peak = resident_mb(self.broker.proc.pid)
        accepted = 0
        for _ in range(40):
            burst = []
            for _ in range(500):
                env = h.need_reported()
                data = env.SerializeToString()
                # valid, made 10 kB long by an unknown field (kept verbatim)
                burst.append(data + b"\xc2\x3e" + bytes([0x80 | (pad & 0x7F), pad >> 7]) + b"u" * pad)
            accepted += sum(a.status == h.ACCEPTED for a in client.emit_many(burst, timeout=20).values())
            peak = max(peak, resident_mb(self.broker.proc.pid))
        self.assertEqual(accepted, 20000)
        if "ASAN_OPTIONS" not in os.environ:  # (AddressSanitizer keeps freed memory in quarantine)
            self.assertLess(peak - base, 64, "the broker grew by %.0f MB for a subscriber that does not read"
                            % (peak - base))

    def test_redis_not_answering_in_flight_events_get_unavailable_then_recover(self):
        # SIGSTOP: the connection stays open but nothing answers. hiredis has
        # no timeout of its own; the redis module's watchdog must drop the
        # connection so that the batch in flight is answered, not left hanging.
        client = self.start()
        self.assertEqual(client.emit(h.need_reported()).status, h.ACCEPTED)
        os.kill(self.redis.proc.pid, signal.SIGSTOP)
        try:
            stuck = [h.need_reported() for _ in range(5)]
            t0 = time.monotonic()
            answers = client.emit_many(stuck, timeout=8)
            self.assertEqual({a.status for a in answers.values()}, {h.UNAVAILABLE})
            self.assertLess(time.monotonic() - t0, 6)
            self.broker.wait_log("has not answered")
        finally:
            os.kill(self.redis.proc.pid, signal.SIGCONT)
        # Redis may still run the script it had received before the broker
        # gave up on it: a retry then gets DUPLICATE, never a second copy.
        deadline = time.monotonic() + 10
        pending = list(stuck)
        while pending:
            self.assertLess(time.monotonic(), deadline, "broker did not recover")
            e = pending[0]
            ack = client.emit(e)
            if ack.status in (h.ACCEPTED, h.DUPLICATE):
                self.assertGreater(ack.sequence, 1)
                pending.pop(0)
            else:
                self.assertEqual(ack.status, h.UNAVAILABLE)
                time.sleep(0.05)
        ids = [env.event_id for _, _, env in journal(self.redis)]
        self.assertEqual(len(ids), 6)
        self.assertEqual(sorted(ids[1:]), sorted(e.event_id for e in stuck))
        self.assertEqual([s for s, _, _ in journal(self.redis)], list(range(1, 7)))

    def test_redis_out_of_memory_is_logged_once_per_doubling_not_per_batch(self):
        # Under maxmemory with noeviction every append is refused (-OOM) and
        # answered UNAVAILABLE. Each failed batch logged an ERROR line: a
        # producer retrying filled the log (421 lines in a minute).
        client = self.start()
        self.assertEqual(client.emit(h.need_reported()).status, h.ACCEPTED)
        self.redis.call("CONFIG", "SET", "maxmemory-policy", "noeviction")
        self.redis.call("CONFIG", "SET", "maxmemory", "1")
        try:
            for _ in range(40):
                self.assertEqual(client.emit(h.need_reported()).status, h.UNAVAILABLE)
        finally:
            self.redis.call("CONFIG", "SET", "maxmemory", "0")
        self.assertEqual(client.emit(h.need_reported()).status, h.ACCEPTED)
        self.broker.wait_log("appends succeed again after 40 failed batch(es)")
        failed = [l for l in self.broker.log().splitlines() if "append script failed" in l]
        self.assertEqual(len(failed), 6, failed)  # batches 1, 2, 4, 8, 16 and 32
        self.assertIn("(32 batch(es) in a row)", failed[-1])
        self.assertIn("OOM", failed[-1])

    def test_broker_started_before_redis_answers_unavailable_then_serves(self):
        self.redis.stop()
        client = self.start(ready=False)
        self.broker.wait_log("cannot connect")
        ack = client.emit(h.need_reported())
        self.assertEqual(ack.status, h.UNAVAILABLE)
        self.redis.start()
        self.broker.wait_log("broker: ready")
        self.assertEqual(client.emit(h.need_reported()).status, h.ACCEPTED)

    # ---- the readers of journal.h (used by the CLI) ----------------------------

    def test_journal_readers_page_through_and_set_the_sequence(self):
        client = self.start()
        acks = client.emit_many([h.need_reported() for _ in range(1205)], timeout=20)
        self.assertEqual(len(acks), 1205)
        for _ in range(3):
            client.emit(b"not protobuf at all")
        h.wait_until(lambda: len(deadletters(self.redis)) >= 3, what="the dead letters")  # written after the acks
        conf = self.broker.config_path

        res = h.run_tool("journal_read", ["--config", conf, "journal", "1", "0"])
        self.assertEqual(res.returncode, 0, res.stderr)
        lines = res.stdout.decode().splitlines()
        self.assertEqual(len(lines), 1205)  # more than one XRANGE page
        for i, line in enumerate(lines, start=1):
            seq, type_, event_id, env_seq, source = line.split()
            self.assertEqual((int(seq), int(env_seq)), (i, i))
            self.assertEqual(acks[event_id].sequence, i)
            self.assertEqual((type_, source), ("need.reported", "test-net"))

        res = h.run_tool("journal_read", ["--config", conf, "journal", "1100", "10"])
        self.assertEqual([int(l.split()[0]) for l in res.stdout.decode().splitlines()],
                         list(range(1100, 1110)))
        res = h.run_tool("journal_read", ["--config", conf, "last"])
        self.assertEqual(res.stdout.strip(), b"1205")
        res = h.run_tool("journal_read", ["--config", conf, "dlq", "2"])
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertEqual(res.stdout.decode().splitlines(),
                         ["not a protobuf Envelope\t\t19\t19"] * 2)

    def test_redis_password_file_and_wrong_password(self):
        self.redis.stop()
        self.redis = self.ws.own(h.Redis(self.ws.path("auth"), password="s3cret-pw")).start()
        good = h.write_secret(self.ws.path("pw"), "s3cret-pw")
        client = self.start(redis_options={"password_file": good})
        self.assertEqual(client.emit(h.need_reported()).status, h.ACCEPTED)
        res = h.run_tool("journal_read", ["--config", self.broker.config_path, "last"])
        self.assertEqual((res.returncode, res.stdout.strip()), (0, b"1"), res.stderr)

        # A wrong password is a configuration error: one line, no start
        # (integration.security has the other daemons and the CLI).
        bad = h.write_secret(self.ws.path("pw-bad"), "wrong")
        conf = h.write_config(self.ws.path("bad-pw.conf"),
                              h.broker_sections(self.redis, {"password_file": bad}))
        line = h.refused_at_start("maillage-broker", conf)
        self.assertTrue(line.startswith("Error: redis: "), line)
        self.assertIn(": AUTH refused: WRONGPASS", line)

    # ---- the process ----------------------------------------------------------

    def test_sigterm_exits_zero_promptly(self):
        client = self.start()
        client.emit(h.need_reported())
        t0 = time.monotonic()
        rc = self.broker.stop(signal.SIGTERM, timeout=5)
        self.assertEqual(rc, 0, self.broker.log())
        self.assertLess(time.monotonic() - t0, 2.0)

    def test_sighup_reloads_the_log_level(self):
        self.start()
        with open(self.broker.config_path) as f:
            text = f.read()
        with open(self.broker.config_path, "w") as f:
            f.write(text.replace("level = info", "level = debug"))
        self.broker.send_signal(signal.SIGHUP)
        self.broker.wait_log("SIGHUP: log level reloaded")
        self.client.emit(b"junk")
        self.broker.wait_log("DEBUG broker: rejected")

    def test_unknown_config_key_is_one_error_line_with_file_and_line(self):
        conf = h.write_config(self.ws.path("bad.conf"), {
            "log": {"level": "info"},
            "broker": {"ingest": "tcp://127.0.0.1:%d" % h.free_port(), "bogus_key": "1"},
        })
        line = h.refused_at_start("maillage-broker", conf, code=None)
        self.assertTrue(line.startswith("Error: "), line)
        self.assertIn("%s:6:" % conf, line)  # [log], level, blank, [broker], ingest, bogus
        self.assertIn("bogus_key", line)

    def test_endpoint_beyond_loopback_is_refused(self):
        conf = h.write_config(self.ws.path("open.conf"), {
            "redis": {"url": self.redis.url},
            "broker": {"ingest": "tcp://0.0.0.0:%d" % h.free_port()},
        })
        self.assertIn("beyond loopback", h.refused_at_start("maillage-broker", conf, code=None))
        # A second address after ';' (libzmq binds both) or anything else
        # after the port is not loopback either.
        for ingest in ("tcp://127.0.0.1:%d;0.0.0.0:%d" % (h.free_port(), h.free_port()),
                       "tcp://127.0.0.1:%d/x" % h.free_port()):
            conf = h.write_config(self.ws.path("open.conf"), {
                "redis": {"url": self.redis.url},
                "broker": {"ingest": ingest},
            })
            self.assertIn("beyond loopback", h.refused_at_start("maillage-broker", conf, code=None))

    def test_help_and_version(self):
        res = h.run_program("maillage-broker", ["--help"])
        self.assertEqual(res.returncode, 0)
        self.assertIn(b"--config FILE", res.stdout)
        res = h.run_program("maillage-broker", ["--version"])
        self.assertEqual(res.returncode, 0)
        self.assertTrue(res.stdout.startswith(b"maillage-broker "))

    def test_unix_socket_redis(self):
        self.redis.stop()
        self.redis = self.ws.own(h.Redis(self.ws.path("unix"), unix=True)).start()
        client = self.start()
        self.assertEqual(client.emit(h.need_reported()).status, h.ACCEPTED)
        self.assertEqual(self.redis.call("XLEN", "mg:journal"), 1)


if __name__ == "__main__":
    unittest.main()
