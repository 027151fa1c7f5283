"""The broker's security: CURVE endpoints, a ZAP allow-list, the source taken
from the client's key, permissions per source, refusal of unauthenticated
endpoints beyond loopback, key files, `maillage keygen`, the CLI through
CURVE, and the per-source rate limit.

Each test starts its own Redis and broker; clients are pyzmq CURVE sockets."""

import os
import subprocess
import time
import unittest

import zmq
from google.protobuf import json_format

import harness as h
import test_gateway_query as tg  # the full Stack (as a module: its tests do not run here)


def keypair():
    public, secret = zmq.curve_keypair()
    return public.decode(), secret.decode()


def read_key(path):
    with open(path) as f:
        for line in f:
            line = line.strip()
            if len(line) == 40:
                return line
    raise AssertionError("no key in %s" % path)


class Client(h.IngestClient):
    """A DEALER that is a CURVE client (or plain when keys is None)."""

    def __init__(self, endpoint, keys, server_public, kind=zmq.DEALER):
        self.ctx = zmq.Context.instance()
        self.sock = self.ctx.socket(kind)
        self.sock.setsockopt(zmq.LINGER, 0)
        # A DEALER with no completed connection blocks on send (a plain
        # client of a CURVE endpoint between two failed handshakes): never
        # forever.
        self.sock.setsockopt(zmq.SNDTIMEO, 3000)
        if keys:
            public, secret = keys
            self.sock.curve_publickey = public.encode()
            self.sock.curve_secretkey = secret.encode()
            self.sock.curve_serverkey = server_public.encode()
        if kind == zmq.SUB:
            self.sock.setsockopt(zmq.SUBSCRIBE, b"")
        self.sock.connect(endpoint)


class SecurityTest(unittest.TestCase):
    def setUp(self):
        self.ws = h.Workspace()
        self.redis = self.ws.own(h.Redis(self.ws.dir)).start()
        self.server = keypair()
        self.net_a, self.net_b, self.matcher, self.stranger = keypair(), keypair(), keypair(), keypair()
        self.server_key = h.write_secret(self.ws.path("broker.key"), self.server[1])
        self.clients_file = self.ws.path("clients")
        with open(self.clients_file, "w") as f:
            f.write("# network  key  types\n")
            f.write("net-a  %s  need.*,offer.*,member.*\n" % self.net_a[0])
            f.write("net-b  %s  need.*\n" % self.net_b[0])
            f.write("matcher  %s  match.found,collective_need.detected\n" % self.matcher[0])
        self.gateway = keypair()
        with open(self.clients_file, "a") as f:
            f.write("gateway  %s  relay,need.*,offer.*,match.feedback\n" % self.gateway[0])

    def tearDown(self):
        self.ws.close(keep=os.environ.get("MAILLAGE_KEEP") == "1")

    def start(self, **broker):
        opts = {"curve_secret_key_file": self.server_key, "curve_clients_file": self.clients_file}
        opts.update(broker)
        self.broker, sections = h.start_broker(self.ws, self.redis, **opts)
        self.ingest = sections["broker"]["ingest"]
        self.fanout = sections["broker"]["fanout"]
        return sections

    def client(self, keys, kind=zmq.DEALER, endpoint=None):
        if endpoint is None:
            endpoint = self.fanout if kind == zmq.SUB else self.ingest
        return self.ws.own(Client(endpoint, keys, self.server[0], kind))

    def journal_sources(self):
        out = {}
        for _, fields in self.redis.call("XRANGE", "mg:journal", "-", "+"):
            f = dict(zip(fields[::2], fields[1::2]))
            env = h.Envelope()
            env.ParseFromString(f[b"e"])
            out[env.event_id] = env.source
        return out

    def broker_fails(self, sections):
        """Run the broker with `sections`; it must exit 1 with one Error: line."""
        line = h.refused_at_start("maillage-broker", h.write_config(self.ws.path("fail.conf"), sections))
        self.assertTrue(line.startswith("Error: "), line)
        return line

    # ---- authentication ---------------------------------------------------

    def test_only_a_steward_key_acts_on_another_networks_need(self):
        # net-b may emit need.* but not close net-a's need; nor may a key
        # allowed every type ("*"): only the word "steward" (an operators'
        # CLI) or match.found written as such (the matcher) grant it.
        wide, ops = keypair(), keypair()
        with open(self.clients_file, "a") as f:
            f.write("wide  %s  *\n" % wide[0])
            f.write("ops  %s  steward,need.*\n" % ops[0])
        self.start()
        report = h.need_reported(need_id="n-1", structure_id="s-1")
        self.assertEqual(self.client(self.net_a).emit(report).status, h.ACCEPTED)

        def close():
            e = h.Envelope(event_id=h.new_id(), type="need.closed", occurred_at_ms=1)
            e.need_closed.need_id, e.need_closed.structure_id = "n-1", "s-1"
            e.need_closed.reason = h.events_pb2.CLOSURE_CANCELLED
            return e
        for keys, network in ((self.net_b, "net-b"), (wide, "wide")):
            ack = self.client(keys).emit(close())
            self.assertEqual((ack.status, ack.reason), (h.REJECTED, "not owner: network %s may not change need n-1: "
                                                                   "it belongs to network net-a" % network))
        self.assertEqual(self.client(ops).emit(close()).status, h.ACCEPTED)
        self.assertEqual(self.redis.call("XLEN", "mg:journal"), 2)

    def test_unknown_key_is_refused_and_the_denial_logged(self):
        self.start()
        stranger = self.client(self.stranger)
        stranger.send(h.need_reported())
        with self.assertRaises(TimeoutError):
            stranger.recv_ack(1.0)
        self.broker.wait_log("refused (unknown client key", timeout=3)
        self.assertIn(self.stranger[0], self.broker.log())
        # A known key on the same broker is served.
        self.assertEqual(self.client(self.net_a).emit(h.need_reported()).status, h.ACCEPTED)
        self.assertEqual(self.redis.call("XLEN", "mg:journal"), 1)

    def test_plain_text_clients_get_nothing_from_curve_endpoints(self):
        self.start()
        plain = self.client(None)
        try:
            plain.send(h.need_reported())
        except zmq.Again:
            pass  # no connection to queue it on: refused all the same
        with self.assertRaises(TimeoutError):
            plain.recv_ack(1.0)
        plain_sub = self.client(None, zmq.SUB)
        curve_sub = self.client(self.net_a, zmq.SUB)
        # The broker publishes a heartbeat every second: the CURVE subscriber
        # gets it, the plain one never does.
        self.assertTrue(curve_sub.sock.poll(3000), "no heartbeat for an authenticated subscriber")
        self.assertFalse(plain_sub.sock.poll(1500), "a plain-text subscriber read the fan-out")
        # (libzmq ends a NULL-vs-CURVE handshake itself, before any ZAP request.)
        self.assertEqual(self.redis.call("XLEN", "mg:journal"), 0)

    # ---- source from the key, permissions per source ------------------------

    def test_a_known_key_claiming_another_source_gets_its_own_stamped(self):
        self.start()
        env = h.need_reported()
        env.source = "net-b"
        ack = self.client(self.net_a).emit(env)
        self.assertEqual(ack.status, h.ACCEPTED, ack)
        env2 = h.need_reported()
        env2.source = "net-a"
        self.assertEqual(self.client(self.net_b).emit(env2).status, h.ACCEPTED)
        sources = self.journal_sources()
        self.assertEqual(sources[env.event_id], "net-a")
        self.assertEqual(sources[env2.event_id], "net-b")

    def test_one_network_cannot_shadow_another_networks_event_ids(self):
        # Retries are recognised per source: net-b sending net-a's next event
        # id first must not make net-a's real event a "duplicate".
        self.start()
        a, b = self.client(self.net_a), self.client(self.net_b)
        spoiler = h.need_reported()
        real = h.need_reported(event_id=spoiler.event_id)
        first = b.emit(spoiler)
        self.assertEqual(first.status, h.ACCEPTED)
        ack = a.emit(real)
        self.assertEqual(ack.status, h.ACCEPTED)
        self.assertNotEqual(ack.sequence, first.sequence)
        again = a.emit(real)
        self.assertEqual((again.status, again.sequence), (h.DUPLICATE, ack.sequence))
        self.assertEqual(self.redis.call("XLEN", "mg:journal"), 2)

    def test_only_a_key_granted_relay_may_send_for_another_network(self):
        self.start()
        env = h.need_reported()
        # net-a may emit needs, but not in net-b's name: refused, counted.
        a = self.client(self.net_a)
        a.send_frames([b"on-behalf-of:net-b", env.SerializeToString()])
        ack = a.recv_ack()
        self.assertEqual(ack.status, h.REJECTED)
        self.assertIn("may not relay", ack.reason)
        self.assertEqual(ack.on_behalf_of, "net-b")  # else the relay cannot match it and resends forever
        # The gateway's key may, and the network it names is stamped.
        g = self.client(self.gateway)
        g.send_frames([b"on-behalf-of:net-b", env.SerializeToString()])
        ack = g.recv_ack()
        self.assertEqual((ack.status, ack.on_behalf_of), (h.ACCEPTED, "net-b"))
        self.assertEqual(self.journal_sources()[env.event_id], "net-b")
        # What it relays is bounded by its own types (no member.* here).
        g.send_frames([b"on-behalf-of:net-a", h.offer_published().SerializeToString()])
        self.assertEqual(g.recv_ack().status, h.ACCEPTED)
        closed = h.Envelope(event_id=h.new_id(), type="member.left")
        closed.member_left.structure_id = "s-1"
        closed.member_left.network = "net-a"
        g.send_frames([b"on-behalf-of:net-a", closed.SerializeToString()])
        ack = g.recv_ack()
        self.assertEqual(ack.status, h.REJECTED, ack)
        self.assertIn("may not emit member.left", ack.reason)

    def test_a_forbidden_event_type_is_rejected_with_a_reason_and_dead_lettered(self):
        self.start()
        offer = h.offer_published()
        ack = self.client(self.net_b).emit(offer)
        self.assertEqual(ack.status, h.REJECTED)
        self.assertEqual(ack.reason, "network net-b may not emit offer.published")
        self.assertEqual(ack.field, "type")
        self.assertEqual(ack.event_id, offer.event_id)
        self.assertEqual(self.redis.call("XLEN", "mg:journal"), 0)
        h.wait_until(lambda: self.redis.call("XLEN", "mg:deadletter") == 1, what="the dead letter")
        _, fields = self.redis.call("XRANGE", "mg:deadletter", "-", "+")[0]
        f = dict(zip(fields[::2], fields[1::2]))
        self.assertEqual(f[b"source"], b"net-b")
        self.assertIn(b"may not emit", f[b"reason"])
        # The same network may still emit what it is allowed to.
        self.assertEqual(self.client(self.net_b).emit(h.need_reported()).status, h.ACCEPTED)

    # ---- endpoints beyond loopback ------------------------------------------

    def test_a_non_loopback_bind_without_curve_refuses_to_start(self):
        sections = h.broker_sections(self.redis, ingest="tcp://0.0.0.0:%d" % h.free_port())
        line = self.broker_fails(sections)
        self.assertIn("beyond loopback", line)
        self.assertIn("curve_secret_key_file", line)

    def test_a_host_name_that_merely_starts_with_127_is_not_loopback(self):
        port = h.free_port()
        for endpoint in ("tcp://127.relais.example.org:%d" % port, "tcp://127.0.0.1.example.org:%d" % port):
            sections = h.broker_sections(self.redis, ingest=endpoint)
            self.assertIn("beyond loopback", self.broker_fails(sections), endpoint)

    def test_the_insecure_override_starts_with_a_loud_warning(self):
        d, _ = h.start_broker(self.ws, self.redis, ingest="tcp://0.0.0.0:%d" % h.free_port(),
                              allow_insecure_remote=True)
        self.assertIn("WITHOUT CURVE", d.log())

    def test_a_non_loopback_bind_with_curve_starts(self):
        port = h.free_port()
        self.start(ingest="tcp://0.0.0.0:%d" % port)
        client = self.client(self.net_a, endpoint="tcp://127.0.0.1:%d" % port)
        self.assertEqual(client.emit(h.need_reported()).status, h.ACCEPTED)

    # ---- key files ------------------------------------------------------------

    def test_a_secret_key_readable_by_others_is_refused(self):
        os.chmod(self.server_key, 0o644)
        sections = h.broker_sections(self.redis, curve_secret_key_file=self.server_key,
                                     curve_clients_file=self.clients_file)
        line = self.broker_fails(sections)
        self.assertIn("accessible by group or others", line)
        self.assertIn(self.server_key, line)

    def test_a_world_writable_allow_list_is_refused(self):
        os.chmod(self.clients_file, 0o666)
        sections = h.broker_sections(self.redis, curve_secret_key_file=self.server_key,
                                     curve_clients_file=self.clients_file)
        self.assertIn("accessible by group or others", self.broker_fails(sections))

    def test_an_allow_list_with_a_nul_byte_is_refused_and_one_with_a_bom_is_read(self):
        # Before, a NUL ended the list there, silently: the keys after it
        # were not allowed, and the broker started. A BOM made the first
        # network "\ufeffnet-a", "not a valid id".
        with open(self.clients_file, "rb") as f:
            listed = f.read()
        with open(self.clients_file, "wb") as f:
            f.write(b"# networks\n\x00\n" + listed)
        sections = h.broker_sections(self.redis, curve_secret_key_file=self.server_key,
                                     curve_clients_file=self.clients_file)
        line = self.broker_fails(sections)
        self.assertIn("a NUL byte at offset 11: not a text file", line)
        with open(self.clients_file, "wb") as f:
            f.write(b"\xef\xbb\xbf" + listed.replace(b"\n", b"\r\n"))
        self.start()
        env = h.need_reported()
        self.assertEqual(self.client(self.net_a).emit(env).status, h.ACCEPTED)

    def test_keygen_makes_usable_keys_and_never_overwrites(self):
        keys = self.ws.path("keys")
        os.mkdir(keys)
        for name in ("broker", "net-c"):
            r = h.run_program("maillage", ["keygen", "--out", keys, "--name", name])
            self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(os.stat(os.path.join(keys, "broker.key")).st_mode & 0o777, 0o600)
        again = h.run_program("maillage", ["keygen", "--out", keys, "--name", "net-c"])
        self.assertEqual(again.returncode, 1)
        self.assertIn("existe déjà : une clé n'est jamais écrasée", again.stderr.decode())
        for bad in (".hidden", "a/b", "x" * 200):  # a name refused is a usage error (exit 2), no file made
            r = h.run_program("maillage", ["keygen", "--out", keys, "--name", bad])
            self.assertEqual(r.returncode, 2, r.stderr)
            self.assertIn("--name", r.stderr.decode())
        self.assertEqual(sorted(os.listdir(keys)), ["broker.key", "broker.pub", "net-c.key", "net-c.pub"])
        with open(self.clients_file, "a") as f:
            f.write("net-c %s need.*\n" % read_key(os.path.join(keys, "net-c.pub")))
        self.server = (read_key(os.path.join(keys, "broker.pub")), None)
        self.start(curve_secret_key_file=os.path.join(keys, "broker.key"))
        net_c = (read_key(os.path.join(keys, "net-c.pub")), read_key(os.path.join(keys, "net-c.key")))
        env = h.need_reported()
        self.assertEqual(self.client(net_c).emit(env).status, h.ACCEPTED)
        self.assertEqual(self.journal_sources()[env.event_id], "net-c")

    def test_a_key_added_to_the_allow_list_is_accepted_without_restart(self):
        self.start()
        newcomer = keypair()
        time.sleep(0.05)  # a distinct modification time
        with open(self.clients_file, "a") as f:
            f.write("net-d %s need.*\n" % newcomer[0])
        env = h.need_reported()
        self.assertEqual(self.client(newcomer).emit(env).status, h.ACCEPTED)
        self.assertEqual(self.journal_sources()[env.event_id], "net-d")

    def test_a_key_removed_from_the_allow_list_is_cut_off_on_its_open_connection(self):
        # A compromised key is removed from the list. Its connections,
        # established before, went on being served until the broker
        # restarted: each message of the ingest is now checked against the
        # list as it is, and the fan-out drops its connections (the others
        # reconnect).
        self.start()
        rotated = keypair()
        with open(self.clients_file, "a") as f:
            f.write("net-b  %s  need.*\n" % rotated[0])
        old, new, other = self.client(self.net_b), self.client(rotated), self.client(self.net_a)
        old_sub, other_sub = self.client(self.net_b, zmq.SUB), self.client(self.net_a, zmq.SUB)
        for c in (old, new, other):
            self.assertEqual(c.emit(h.need_reported()).status, h.ACCEPTED)
        for sub in (old_sub, other_sub):
            self.assertTrue(sub.sock.poll(3000), "no heartbeat for a subscriber of the allow-list")
        self.applied(lambda: self.remove_lines(self.net_b[0]))
        refused = h.need_reported()
        ack = old.emit(refused)
        self.assertEqual(ack.status, h.REJECTED)
        self.assertIn("no longer on the allow-list", ack.reason)
        self.assertNotIn(refused.event_id, self.journal_sources())
        # Not a dead letter: whoever holds the key could flood them.
        self.assertEqual(self.redis.call("XLEN", "mg:deadletter"), 0)
        # The network's other key, and the other networks, go on.
        for c, network in ((new, "net-b"), (other, "net-a")):
            env = h.need_reported()
            self.assertEqual(c.emit(env).status, h.ACCEPTED)
            self.assertEqual(self.journal_sources()[env.event_id], network)
        # The broker looks at the list every second, then drops the fan-out's
        # connections: the other network's subscriber reconnects and hears
        # heartbeats again; the removed key's hears nothing more.
        deadline = time.time() + 10
        while other_sub.sock.poll(0):
            other_sub.sock.recv_multipart()
        self.broker.wait_log("dropping every connection of the fan-out")
        while other_sub.sock.poll(0):
            other_sub.sock.recv_multipart()
        self.assertTrue(other_sub.sock.poll(max(0, int((deadline - time.time()) * 1000))),
                        "the other network's subscriber did not reconnect")
        while old_sub.sock.poll(0):
            old_sub.sock.recv_multipart()
        self.assertFalse(old_sub.sock.poll(2500), "the removed key's subscriber still receives the fan-out")

    def applied(self, edit):
        """Run `edit` of the allow-list, then wait until the broker applies
        the new list (looked at once a second; a removal waits until the
        file has settled)."""
        before = self.broker.log().count("CURVE allow-list reloaded")
        edit()
        self.broker.wait_log("CURVE allow-list reloaded", count=before + 1)

    def remove_lines(self, key, mode=None):
        """Rewrite the allow-list without the lines of `key` (with `mode`,
        else the file's)."""
        with open(self.clients_file, encoding="utf-8") as f:
            kept = [line for line in f if key not in line]
        with open(self.clients_file, "w", encoding="utf-8") as f:
            f.writelines(kept)
        if mode is not None:
            os.chmod(self.clients_file, mode)

    def test_a_removed_relay_key_is_answered_in_the_relayed_networks_name(self):
        # Before, the refusal of a key taken off the list did not name the
        # network it relayed for: the gateway could not match the ack and
        # resent the event forever.
        self.start()
        g = self.client(self.gateway)
        g.send_frames([b"on-behalf-of:net-b", h.need_reported().SerializeToString()])
        self.assertEqual(g.recv_ack().status, h.ACCEPTED)
        self.applied(lambda: self.remove_lines(self.gateway[0]))
        g.send_frames([b"on-behalf-of:net-b", h.need_reported().SerializeToString()])
        ack = g.recv_ack()
        self.assertEqual((ack.status, ack.on_behalf_of), (h.REJECTED, "net-b"))
        self.assertIn("no longer on the allow-list", ack.reason)

    def test_a_removal_in_a_refused_file_takes_effect_once_the_file_is_fixed(self):
        # The operator writes the new list under umask 002: it is refused
        # (group-writable) and the previous list is kept. Before, the broker
        # never looked at the file again after the chmod that fixes it (only
        # its change time moves): the removed key went on sending.
        self.start()
        os.chmod(self.clients_file, 0o644)
        b = self.client(self.net_b)
        self.assertEqual(b.emit(h.need_reported()).status, h.ACCEPTED)
        self.remove_lines(self.net_b[0], mode=0o664)
        self.broker.wait_log("CURVE allow-list not reloaded, keeping the previous one")
        self.assertEqual(b.emit(h.need_reported()).status, h.ACCEPTED)
        self.applied(lambda: os.chmod(self.clients_file, 0o644))
        ack = b.emit(h.need_reported())
        self.assertEqual(ack.status, h.REJECTED)
        self.assertIn("no longer on the allow-list", ack.reason)
        self.assertEqual(self.broker.log().count("CURVE allow-list not reloaded"), 1)

    def test_a_removal_takes_effect_whatever_the_files_modification_time(self):
        # The settling is timed on the broker's clock: a file copied with its
        # times from a host whose clock is ahead (or on a network share)
        # held the removal back until that time, silently.
        self.start()
        b = self.client(self.net_b)
        self.assertEqual(b.emit(h.need_reported()).status, h.ACCEPTED)
        def remove_ahead():
            self.remove_lines(self.net_b[0])
            ahead = time.time() + 60
            os.utime(self.clients_file, (ahead, ahead))
        self.applied(remove_ahead)
        self.assertEqual(b.emit(h.need_reported()).status, h.REJECTED)

    def test_a_list_being_rewritten_revokes_nothing(self):
        # An editor, `cat >` or open("w") truncates the file before writing
        # it: read in between, the list is empty (or cut), and every key
        # after the cut was revoked until the next read. A handshake reads
        # the list at once; a list that takes keys away now waits until the
        # file is a second old.
        self.start()
        a = self.client(self.net_a)
        self.assertEqual(a.emit(h.need_reported()).status, h.ACCEPTED)
        with open(self.clients_file, encoding="utf-8") as f:
            text = f.read()
        with open(self.clients_file, "w", encoding="utf-8") as f:
            f.flush()  # truncated, not yet written
            fresh = self.client(self.net_a)  # its handshake reads the list now
            self.assertEqual(fresh.emit(h.need_reported()).status, h.ACCEPTED)
            self.assertEqual(a.emit(h.need_reported()).status, h.ACCEPTED)
            f.write(text)
        time.sleep(2.5)
        for c in (a, fresh, self.client(self.net_a)):
            self.assertEqual(c.emit(h.need_reported()).status, h.ACCEPTED)

    def test_a_key_moved_to_another_network_sends_in_its_name_on_its_open_connection(self):
        # The operator fixes a mis-assigned line: net-a's key belongs to
        # net-c. Its open connection was authenticated as net-a; its events
        # now go out in net-c's name (with net-c's permissions).
        self.start()
        moved = self.client(self.net_a)
        self.assertEqual(moved.emit(h.need_reported()).status, h.ACCEPTED)
        with open(self.clients_file, encoding="utf-8") as f:
            text = f.read()
        def move():
            with open(self.clients_file, "w", encoding="utf-8") as f:
                f.write(text.replace("net-a  %s  need.*,offer.*,member.*" % self.net_a[0],
                                     "net-c  %s  need.*" % self.net_a[0]))
        self.applied(move)
        env = h.need_reported()
        self.assertEqual(moved.emit(env).status, h.ACCEPTED)
        self.assertEqual(self.journal_sources()[env.event_id], "net-c")
        refused = moved.emit(h.offer_published())
        self.assertEqual(refused.status, h.REJECTED)
        self.assertIn("network net-c may not emit offer.published", refused.reason)

    # ---- the CLI ----------------------------------------------------------------

    def cli_config(self, sections, network, types):
        """A CLI config with a new CURVE key (`maillage keygen`), allowed as
        `network` with `types`; returns its path."""
        keys = self.ws.path("keys-" + network)
        os.mkdir(keys)
        self.assertEqual(h.run_program("maillage", ["keygen", "--out", keys, "--name", "cli"]).returncode, 0)
        server_pub = self.ws.path("broker.pub")
        with open(server_pub, "w") as f:
            f.write(self.server[0] + "\n")
        with open(self.clients_file, "a") as f:
            f.write("%s %s %s\n" % (network, read_key(os.path.join(keys, "cli.pub")), types))
        conf = dict(sections)
        conf["curve"] = {"client_secret_key_file": os.path.join(keys, "cli.key"),
                         "server_public_key_file": server_pub}
        return h.write_config(self.ws.path(network + ".conf"), conf)

    def test_the_cli_emits_through_curve(self):
        sections = self.start()
        path = self.cli_config(sections, "staff-cli", "need.*")
        env = h.need_reported()
        line = json_format.MessageToJson(env, indent=None) + "\n"
        r = h.run_program("maillage", ["emit", "--config", path, "-"], input=line.encode(), timeout=15)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("accepted", r.stdout.decode())
        self.assertEqual(self.journal_sources()[env.event_id], "staff-cli")
        # Without keys the CLI gets no answer and says so.
        plain = dict(sections)
        path = h.write_config(self.ws.path("plain.conf"), plain)
        r = h.run_program("maillage", ["emit", "--config", path, "--timeout", "1", "-"],
                          input=(json_format.MessageToJson(h.need_reported(), indent=None) + "\n").encode(),
                          timeout=30)
        self.assertNotEqual(r.returncode, 0)

    def test_a_client_the_broker_refuses_is_told_why_not_asked_whether_it_runs(self):
        # Before, each of these clients only got "no answer from the broker
        # ...: is it running?", and a daemon's producer logged nothing at
        # all: the reason was only in the broker's log, on another machine.
        sections = self.start()
        line = (json_format.MessageToJson(h.need_reported(), indent=None) + "\n").encode()
        server_pub = self.ws.path("broker.pub")
        with open(server_pub, "w") as f:
            f.write(self.server[0] + "\n")
        unknown = h.write_secret(self.ws.path("unknown.key"), self.stranger[1])
        wrong_server = self.ws.path("not-the-broker.pub")
        with open(wrong_server, "w") as f:
            f.write(self.net_b[0] + "\n")
        known = h.write_secret(self.ws.path("net-a.key"), self.net_a[1])
        cases = (
            ({"client_secret_key_file": unknown, "server_public_key_file": server_pub},
             "the broker refused this program's CURVE key (ZAP status 400): add its public key to the broker's "
             "[broker] curve_clients_file"),
            ({"client_secret_key_file": known, "server_public_key_file": wrong_server},
             "the CURVE handshake with the broker failed: check that [curve] server_public_key_file is the "
             "broker's public key"),
            (None, "the handshake with the broker failed: it may require CURVE"),
        )
        for curve, why in cases:
            conf = dict(sections)
            if curve:
                conf["curve"] = curve
            path = h.write_config(self.ws.path(h.new_id("cli") + ".conf"), conf)
            r = h.run_program("maillage", ["emit", "--config", path, "--timeout", "2", "-"], input=line,
                              timeout=30)
            err = r.stderr.decode()
            self.assertEqual(r.returncode, 1, err)
            self.assertIn("pas de réponse du broker (%s) après 2 s : %s" % (self.ingest, why), err)
            self.assertNotIn("tourne-t-il ?", err)
        # `dlq replay` says it too.
        conf = dict(sections)
        conf["curve"] = cases[0][0]
        path = h.write_config(self.ws.path("refused-dlq.conf"), conf)
        self.redis.call("XADD", "mg:deadletter", "*", "reason", "taxonomy", "field", "", "source", "net-b",
                        "received_at_ms", "1", "raw", h.need_reported().SerializeToString())
        [(dl_id, _)] = self.redis.call("XRANGE", "mg:deadletter", "-", "+")
        r = h.run_program("maillage", ["dlq", "--config", path, "replay", dl_id.decode()], timeout=60)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("pas de réponse du broker (%s) : %s" % (self.ingest, cases[0][1]), r.stderr.decode())
        # `tail` says it too, and still prints the events, from the journal.
        tail = subprocess.Popen([os.path.join(h.BIN, "maillage"), "tail", "--config", path, "-n", "1"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            time.sleep(1.0)
            env = h.need_reported()
            self.assertEqual(self.client(self.net_a).emit(env).status, h.ACCEPTED)
            out, err = tail.communicate(timeout=20)
        finally:
            if tail.poll() is None:
                tail.kill()
                tail.wait()
        self.assertEqual(tail.returncode, 0, err)
        self.assertIn(env.event_id, out.decode())
        self.assertIn("maillage tail: attention : diffusion %s : %s" % (self.fanout, cases[0][1]), err.decode())
        # A daemon's producer says it in its log, once, and goes on retrying.
        conf = dict(sections)
        conf["curve"] = cases[0][0]
        path = h.write_config(self.ws.path("refused-matcher.conf"), conf)
        matcher = self.ws.own(h.Daemon(self.ws.dir, "maillage-matcher", path)).start(ready="matcher: ready")
        matcher.wait_log("producer: %s: %s" % (self.ingest, cases[0][1]), timeout=5)
        # Its subscriber too: the fan-out stays silent (new events are read
        # from the journal meanwhile), and the log says why.
        matcher.wait_log("subscriber matcher: fan-out %s: %s" % (self.fanout, cases[0][1]), timeout=5)
        time.sleep(1)
        self.assertEqual(matcher.log().count("producer: %s: the broker refused" % self.ingest), 1)
        self.assertEqual(matcher.log().count("subscriber matcher: fan-out %s: the broker refused" % self.fanout), 1)

    def test_dlq_replay_sends_for_the_network_only_with_a_key_granted_relay(self):
        sections = self.start()
        env = h.need_reported()
        self.redis.call("XADD", "mg:deadletter", "*", "reason", "taxonomy", "field", "", "source", "net-b",
                        "received_at_ms", "1", "raw", env.SerializeToString())
        [(dl_id, _)] = self.redis.call("XRANGE", "mg:deadletter", "-", "+")
        # A key without `relay` would journal it as its own: refused, and the
        # network's dead letter is kept (beside the broker's new one).
        plain = self.cli_config(sections, "staff-cli", "need.*")
        r = h.run_program("maillage", ["dlq", "--config", plain, "replay", dl_id.decode()], timeout=30)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("doit avoir « relay »", r.stderr.decode())
        self.assertEqual(self.redis.call("XRANGE", "mg:deadletter", dl_id, dl_id)[0][0], dl_id)
        self.assertEqual(self.journal_sources(), {})
        relay = self.cli_config(sections, "ops-cli", "relay,need.*")
        r = h.run_program("maillage", ["dlq", "--config", relay, "replay", dl_id.decode()], timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.journal_sources(), {env.event_id: "net-b"})
        self.assertEqual(self.redis.call("XRANGE", "mg:deadletter", dl_id, dl_id), [])

    def test_a_refused_member_event_keeps_its_contact_apart_until_the_member_leaves(self):
        # net-b may emit need.* only: its member events are refused. Their
        # contact (personal data) is held apart from the dead letter, under
        # the structure: the letter keeps the event without it, `dlq replay`
        # resends the bytes received, and a member.left erases them. Before,
        # the contact stayed in mg:deadletter until `maillage forget`.
        sections = self.start()
        contact = ("Madeleine Anquetil", "m.anquetil@ressourcerie-lisieux.example.org", "02 31 62 00 11")

        def member(type_, sid):
            env = h.Envelope(event_id=h.new_id(), type=type_, occurred_at_ms=int(time.time() * 1000))
            body = env.member_joined if type_ == "member.joined" else env.member_updated
            st = body.structure
            st.structure_id, st.name, st.commune, st.naf_code = sid, "Ressourcerie " + sid, "14118", "38.32Z"
            st.family = h.events_pb2.Family.Value("FAMILY_ASSOCIATION")
            st.networks.append("net-b")
            st.contact.name, st.contact.email, st.contact.phone = contact
            if type_ == "member.joined":
                body.network, body.joined_on = "net-b", time.strftime("%Y-%m-%d")
            return env

        def letters():
            return {i.decode(): dict(zip(f[::2], f[1::2])) for i, f in self.redis.call("XRANGE", "mg:deadletter", "-", "+")}

        def holders():
            keys = []
            for key in self.redis.call("KEYS", "*"):
                kind = self.redis.call("TYPE", key)
                if kind == "stream":
                    data = b"".join(v for _, f in self.redis.call("XRANGE", key, "-", "+") for v in f)
                elif kind == "hash":
                    data = b"".join(self.redis.call("HGETALL", key))
                elif kind == "string":
                    data = self.redis.call("GET", key)
                else:
                    continue
                if any(v.encode() in data for v in contact):
                    keys.append(key.decode())
            return sorted(keys)

        net_b = self.client(self.net_b)
        joined = member("member.joined", "ress-lisieux")
        updated = member("member.updated", "ress-pont")
        for env in (joined, updated):
            ack = net_b.emit(env)
            self.assertEqual(ack.status, h.REJECTED)
            self.assertIn("network net-b may not emit member.", ack.reason)
        h.wait_until(lambda: len(letters()) == 2, what="two dead letters")
        by_sid = {f[b"held"].decode(): (i, f) for i, f in letters().items()}
        self.assertEqual(sorted(by_sid), ["ress-lisieux", "ress-pont"])
        for sid, (dl_id, f) in by_sid.items():
            kept = h.Envelope()
            kept.ParseFromString(f[b"raw"])
            body = kept.member_joined if kept.type == "member.joined" else kept.member_updated
            self.assertEqual(body.structure.structure_id, sid)
            self.assertFalse(body.structure.HasField("contact"))
            self.assertEqual(int(f[b"raw_len"]), len(self.redis.call("HGET", "mg:deadletter:held:" + sid, dl_id)))
        self.assertEqual(holders(), ["mg:deadletter:held:ress-lisieux", "mg:deadletter:held:ress-pont"])
        plain = h.write_config(self.ws.path("plain-dlq.conf"), sections)
        shown = h.run_program("maillage", ["dlq", "--config", plain, "show", by_sid["ress-pont"][0]], timeout=30)
        self.assertEqual(shown.returncode, 0, shown.stderr)
        self.assertIn("contact :       gardé à part (mg:deadletter:held:ress-pont), effacé au départ de la structure",
                      shown.stdout.decode())
        self.assertIn(contact[1], shown.stdout.decode())  # what was received, for the operator

        # The member.left of one (net-a may): its held bytes go, its letter stays, without them.
        left = h.Envelope(event_id=h.new_id(), type="member.left", occurred_at_ms=int(time.time() * 1000))
        left.member_left.structure_id, left.member_left.network = "ress-pont", "net-a"
        left.member_left.left_on = time.strftime("%Y-%m-%d")
        self.assertEqual(self.client(self.net_a).emit(left).status, h.ACCEPTED)
        self.assertEqual(holders(), ["mg:deadletter:held:ress-lisieux"])
        self.assertIn(by_sid["ress-pont"][0], letters())
        shown = h.run_program("maillage", ["dlq", "--config", plain, "show", by_sid["ress-pont"][0]], timeout=30)
        self.assertEqual(shown.returncode, 0, shown.stderr)
        self.assertIn("contact :       effacé (départ de la structure « ress-pont » ou maillage forget)",
                      shown.stdout.decode())
        self.assertNotIn(contact[1], shown.stdout.decode())

        # The other is replayed by an operator's relay key (whose types bound
        # what it relays): the bytes received are journaled, so the contact
        # is kept where it belongs.
        relay = self.cli_config(sections, "ops-cli", "relay,member.*")
        r = h.run_program("maillage", ["dlq", "--config", relay, "replay", by_sid["ress-lisieux"][0]], timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.journal_sources()[joined.event_id], "net-b")
        self.assertEqual(holders(), ["mg:contact:ress-lisieux"])
        self.assertEqual(list(letters()), [by_sid["ress-pont"][0]])
        # The one whose structure left is not replayed without its contact.
        r = h.run_program("maillage", ["dlq", "--config", relay, "replay", by_sid["ress-pont"][0]], timeout=30)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("son contact a été effacé (départ de la structure « ress-pont » ou maillage forget) : "
                      "elle n'est pas renvoyée", r.stderr.decode())
        self.assertEqual(list(letters()), [by_sid["ress-pont"][0]])

    def test_cli_refuses_a_client_key_readable_by_others(self):
        sections = self.start()
        path = self.ws.path("loose.key")
        with open(path, "w") as f:
            f.write(self.net_a[1] + "\n")
        os.chmod(path, 0o644)
        conf = dict(sections)
        conf["curve"] = {"client_secret_key_file": path, "server_public_key_file": self.server_key}
        cfg = h.write_config(self.ws.path("loose.conf"), conf)
        r = h.run_program("maillage", ["emit", "--config", cfg, "-"], input=b"", timeout=10)
        self.assertEqual(r.returncode, 1)
        self.assertIn("accessible by group or others", r.stderr.decode())

    # ---- consuming daemons ------------------------------------------------------

    def test_the_matcher_consumes_and_emits_through_curve_as_its_own_network(self):
        """A daemon's [curve] keys (read by mg_daemon_main) make its subscriber
        and its producer CURVE clients: the matcher reads the fan-out and its
        match.found is journaled with the matcher's own source."""
        sections = self.start()
        secret = h.write_secret(self.ws.path("matcher.key"), self.matcher[1])
        server_pub = self.ws.path("broker.pub")
        with open(server_pub, "w") as f:
            f.write(self.server[0] + "\n")
        conf = dict(sections)
        conf["curve"] = {"client_secret_key_file": secret, "server_public_key_file": server_pub}
        conf["matcher"] = {"instance": 0}
        path = h.write_config(self.ws.path("matcher.conf"), conf)
        matcher = self.ws.own(h.Daemon(self.ws.dir, "maillage-matcher", path))
        matcher.start(ready="matcher: ready")

        [match] = self.one_match_found("a match.found through CURVE")
        self.assertEqual(match.source, "matcher")
        self.assertEqual((match.match_found.need_id, match.match_found.offer_id), ("n-1", "o-1"))

    def test_each_daemon_takes_its_own_key_from_its_environment(self):
        """Every program reads the one configuration file, so its [curve]
        names one key; a daemon's unit gives it its own with
        MAILLAGE_CLIENT_KEY (and MAILLAGE_SERVER_KEY), as the CLI takes it.
        Before, daemons ignored them: the matcher ran under the file's key
        (here net-a's, which may not emit match.found), as SECURITY.md's
        one [curve] section made every daemon do."""
        sections = self.start()
        server_pub = self.ws.path("broker.pub")
        with open(server_pub, "w") as f:
            f.write(self.server[0] + "\n")
        shared = h.write_secret(self.ws.path("net-a.key"), self.net_a[1])
        own = h.write_secret(self.ws.path("matcher.key"), self.matcher[1])
        conf = dict(sections)
        conf["curve"] = {"client_secret_key_file": shared, "server_public_key_file": server_pub}
        path = h.write_config(self.ws.path("shared.conf"), conf)
        matcher = self.ws.own(h.Daemon(self.ws.dir, "maillage-matcher", path,
                                       env={"MAILLAGE_CLIENT_KEY": own, "MAILLAGE_SERVER_KEY": server_pub}))
        matcher.start(ready="matcher: ready")

        self.assertEqual([e.source for e in self.one_match_found("a match.found under the matcher's own key")],
                         ["matcher"])
        self.assertNotIn("may not emit match.found", self.broker.log())

    def test_the_broker_reads_no_client_key(self):
        # SECURITY.md's [curve] names the operators' key, which only root may
        # read; the broker connects to no broker and must not need it. Before,
        # every daemon loaded it at start and the broker refused to start.
        root_only = {"client_secret_key_file": self.ws.path("root-only/staff-cli.key"),
                     "server_public_key_file": self.ws.path("root-only/broker.pub")}
        sections = self.start(more_sections={"curve": root_only})
        self.assertEqual(self.client(self.net_a).emit(h.need_reported()).status, h.ACCEPTED)
        # The matcher does read it, and says which file.
        line = h.refused_at_start("maillage-matcher", h.write_config(self.ws.path("shared.conf"), sections))
        self.assertIn("[curve] client_secret_key_file %s" % root_only["client_secret_key_file"], line)

    def one_match_found(self, what):
        """net-a emits two members, a need and an offer that match; returns
        the match.found events journaled once the running matcher has
        proposed the pair."""
        import test_matcher as tm
        client = self.client(self.net_a)
        for env in (tm.member("s-need"), tm.member("s-offer", commune=tm.HEROUVILLE),
                    tm.need("n-1", "s-need"), tm.offer("o-1", "s-offer", commune=tm.HEROUVILLE)):
            self.assertEqual(client.emit(env).status, h.ACCEPTED)

        def found():
            return [e for e in self.journal_envelopes() if e.type == "match.found"]
        return h.wait_until(found, 15, what=what)

    def journal_envelopes(self):
        out = []
        for _, fields in self.redis.call("XRANGE", "mg:journal", "-", "+"):
            f = dict(zip(fields[::2], fields[1::2]))
            env = h.Envelope()
            env.ParseFromString(f[b"e"])
            out.append(env)
        return out

    # ---- rate limit -----------------------------------------------------------------

    def test_a_burst_beyond_the_rate_limit_is_refused_without_harming_other_sources(self):
        self.start(rate_limit_per_s=5, rate_limit_burst=5)
        a, b = self.client(self.net_a), self.client(self.net_b)
        burst = [h.need_reported() for _ in range(40)]
        for e in burst:
            a.send(e)
        others = [h.need_reported() for _ in range(3)]
        for e in others:
            b.send(e)
        acks_a = [a.recv_ack(5) for _ in burst]
        acks_b = [b.recv_ack(5) for _ in others]
        accepted = [x for x in acks_a if x.status == h.ACCEPTED]
        refused = [x for x in acks_a if x.status == h.REJECTED]
        self.assertLessEqual(len(accepted), 7)
        self.assertGreaterEqual(len(accepted), 5)
        self.assertEqual(len(accepted) + len(refused), len(burst))
        for x in refused:
            self.assertTrue(x.reason.startswith("rate limit"), x.reason)
        self.assertEqual({x.status for x in acks_b}, {h.ACCEPTED})
        # Refusals are not dead-lettered (a flood must not fill the stream).
        self.assertEqual(self.redis.call("XLEN", "mg:deadletter"), 0)
        # The bucket refills.
        time.sleep(0.5)
        self.assertEqual(a.emit(h.need_reported()).status, h.ACCEPTED)


class RedisCredentialsTest(unittest.TestCase):
    """Wrong Redis credentials are a configuration error: every daemon
    refuses to start with one "Error:" line naming the cause (instead of
    retrying in the background forever), and the CLI says it in one line."""

    PROGRAMS = (("maillage-broker", "broker: ready"), ("maillage-matcher", "matcher: ready"),
                ("maillage-notifier", "staff member(s)"))

    def setUp(self):
        self.ws = h.Workspace()
        self.redis = self.ws.own(h.Redis(self.ws.dir, password="s3cret-pw")).start()
        # An ACL user limited to Maillage's keys, as deploy/ recommends.
        self.redis.call("ACL", "SETUSER", "maillage", "on", ">acl-pw", "~mg:*", "+@all")
        self.sections = h.broker_sections(self.redis)

    def tearDown(self):
        self.ws.close(keep=os.environ.get("MAILLAGE_KEEP") == "1")

    def conf(self, **redis):
        sections = {k: dict(v) for k, v in self.sections.items()}
        sections["redis"].update(redis)
        return h.write_config(self.ws.path("%s.conf" % h.new_id("c")), sections)

    def assert_one_error_line(self, result, *fragments):
        err = result.stderr.decode()
        self.assertNotEqual(result.returncode, 0, err)
        lines = [l for l in err.splitlines() if l.strip()]
        self.assertEqual(len(lines), 1, err)
        for fragment in fragments:
            self.assertIn(fragment, lines[0])
        self.assertNotIn("s3cret-pw", err)
        self.assertNotIn("wrong-pw", err)
        return lines[0]

    def test_every_daemon_refuses_to_start_with_wrong_credentials(self):
        wrong = h.write_secret(self.ws.path("wrong"), "wrong-pw")
        where = "127.0.0.1:%d" % self.redis.port
        cases = [
            ({"password_file": wrong}, (where + ": AUTH refused: WRONGPASS", "password_file")),
            ({"user": "maillage", "password_file": wrong}, ("AUTH refused: WRONGPASS",)),
            ({"user": "nobody", "password_file": h.write_secret(self.ws.path("acl"), "acl-pw")},
             ("AUTH refused: WRONGPASS",)),
            ({}, ("PING refused: NOAUTH", "requires a password", "password_file")),
        ]
        for program, _ in self.PROGRAMS:
            for redis, fragments in cases:
                with self.subTest(program=program, redis=sorted(redis)):
                    r = h.run_program(program, ["--config", self.conf(**redis)], timeout=15)
                    line = self.assert_one_error_line(r, *fragments)
                    self.assertTrue(line.startswith("Error: redis: "), line)
                    self.assertEqual(r.returncode, 1)

    def test_a_redis_beyond_loopback_without_a_password_is_refused(self):
        # deploy/redis/redis.conf said "Daemons refuse an unauthenticated
        # Redis beyond loopback"; before, every daemon and the CLI used one
        # without a word (whoever reaches it reads the contacts and rewrites
        # the journal).
        url = "redis://192.0.2.1:6379/0"  # TEST-NET-1: refused before any connection
        conf = self.conf(url=url)
        why = "[redis] url = %s: refusing a Redis beyond loopback without a password" % url
        for program in ("maillage-broker", "maillage-matcher", "maillage-notifier", "maillage-gateway"):
            with self.subTest(program=program):
                self.assertIn(why, h.refused_at_start(program, conf))
        for args in (["--config", conf, "consumers"], ["config", "check", conf], ["--redis", url, "consumers"]):
            with self.subTest(args=args):
                self.assert_one_error_line(h.run_program("maillage", args, timeout=15), why)
        # With a password, the same URL is a matter for Redis' AUTH.
        good = h.write_secret(self.ws.path("good"), "s3cret-pw")
        r = h.run_program("maillage", ["config", "check", self.conf(url=url, password_file=good)])
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_every_daemon_starts_with_the_right_password_or_acl_user(self):
        good = h.write_secret(self.ws.path("good"), "s3cret-pw")
        acl = h.write_secret(self.ws.path("acl"), "acl-pw")
        for redis in ({"password_file": good}, {"user": "maillage", "password_file": acl}):
            conf = self.conf(**redis)
            for program, ready in self.PROGRAMS:
                with self.subTest(program=program, redis=sorted(redis)):
                    d = self.ws.own(h.Daemon(self.ws.dir, program, conf)).start(ready=ready)
                    self.assertEqual(d.stop(), 0, d.log())

    def deploy_acl_rules(self):
        """The rules of the ACL line of deploy/redis/redis.conf (without its password)."""
        with open(os.path.join(h.SOURCE, "deploy", "redis", "redis.conf")) as f:
            line = next(l for l in f if l.lstrip("# ").startswith("user maillage on"))
        return [r for r in line.lstrip("# ").split()[3:] if not r.startswith(">")]

    def acl_stack(self, rules):
        """The whole stack (test_gateway_query's) logged in as an ACL user with `rules`."""
        return tg.Stack(self.ws, redis_options={"user": "maillage",
                                                "password_file": h.write_secret(self.ws.path("acl"), "acl-pw")},
                        before_start=lambda redis: redis.call("ACL", "SETUSER", "maillage", "on", ">acl-pw", *rules))

    def test_a_read_that_redis_refuses_says_why_in_the_gateway_log(self):
        # It answered 503 and logged nothing: the missing ACL permissions of
        # deploy/ were slow to find. A command refused inside MULTI makes
        # EXEC answer only EXECABORT: the refusal itself is what is logged.
        st = self.acl_stack(self.deploy_acl_rules())
        claire = st.token("--staff", "claire")
        self.assertEqual(st.http.get("/v1/staff/me/inbox", claire)[0], 200)
        st.redis.call("ACL", "SETUSER", "maillage", "-zrevrangebyscore")
        for _ in range(3):
            status, body, _ = st.http.get("/v1/staff/me/inbox", claire)
            self.assertEqual((status, body["error"]["code"]), (503, "unavailable"), body)
        log = st.gateway.log()
        self.assertEqual(log.count("a read failed in Redis (answered 503)"), 1, log)  # (at most every 10 s)
        self.assertRegex(log, r"answered 503\): NOPERM .*zrevrangebyscore")

    def test_the_acl_user_deploy_recommends_runs_the_whole_stack(self):
        # The ACL line of deploy/redis/redis.conf, as written (its password
        # aside), for every daemon and the CLI. Without +@pubsub it refused
        # PUBLISH, which aborted the notifier's script creating each
        # notification (nothing reached an inbox), and the gateway's SUBSCRIBE.
        st = self.acl_stack(self.deploy_acl_rules())
        claire = st.token("--staff", "claire")
        tg.scenario(st)
        st.settle()
        status, body, _ = st.http.get("/v1/staff/me/inbox", claire)
        self.assertEqual(status, 200, body)
        self.assertTrue(body["items"], "no notification reached Claire's inbox")
        for d in (st.broker, st.matcher, st.notifier, st.gateway):
            self.assertNotIn("NOPERM", d.log())
            self.assertNotIn("can't run this command", d.log())

    def test_the_cli_says_the_credentials_are_wrong_in_one_line(self):
        wrong = h.write_secret(self.ws.path("wrong"), "wrong-pw")
        r = h.run_program("maillage", ["journal", "--config", self.conf(password_file=wrong)])
        self.assert_one_error_line(r, "maillage journal: redis: ", "AUTH refused: WRONGPASS")
        r = h.run_program("maillage", ["journal", "--config", self.conf()])
        self.assert_one_error_line(r, "maillage journal: redis: ", "PING refused: NOAUTH", "requires a password")
        good = h.write_secret(self.ws.path("good"), "s3cret-pw")
        r = h.run_program("maillage", ["journal", "--config", self.conf(password_file=good)])
        self.assertEqual((r.returncode, r.stderr), (0, b""))

    def test_a_daemon_that_loses_its_credentials_while_running_says_so_and_recovers(self):
        # Refused at a reconnection (the password changed under it): not a
        # start-up error any more: the daemon logs the refusal once, keeps
        # answering UNAVAILABLE and retrying, and serves again once fixed.
        good = h.write_secret(self.ws.path("good"), "s3cret-pw")
        sections = {k: dict(v) for k, v in self.sections.items()}
        sections["redis"]["password_file"] = good
        conf = h.write_config(self.ws.path("broker.conf"), sections)
        broker = self.ws.own(h.Daemon(self.ws.dir, "maillage-broker", conf)).start(ready="broker: ready")
        client = self.ws.own(h.IngestClient(sections["broker"]["ingest"]))
        self.assertEqual(client.emit(h.need_reported()).status, h.ACCEPTED)
        self.redis.call("CONFIG", "SET", "requirepass", "rotated-pw")
        self.redis.call("CLIENT", "KILL", "TYPE", "normal")
        broker.wait_log("refused the connection set-up: WRONGPASS")
        self.assertEqual(client.emit(h.need_reported()).status, h.UNAVAILABLE)
        time.sleep(1.0)  # several reconnection attempts
        self.assertEqual(broker.log().count("refused the connection set-up"), 1, broker.log())
        self.redis.call("CONFIG", "SET", "requirepass", "s3cret-pw")
        broker.wait_log("journal available again")
        self.assertEqual(client.emit(h.need_reported()).status, h.ACCEPTED)

if __name__ == "__main__":
    unittest.main()
