"""Operator commands against a real redis-server and the real broker:
`maillage dlq replay` re-injects a dead letter (refused input back to the
broker once its cause is fixed; a consumer's poison event back into that
consumer's retry set), `maillage consumers` shows each registered consumer's
checkpoint, lag and parked events, and `consumers forget` unregisters one.
"""

import json
import re
import signal
import subprocess
import time
import unittest

import harness
from harness import BIN, Redis, Workspace, need_reported, start_broker

CLI = BIN + "/maillage"


def write_needs(path, prefix, count):
    """`count` need.reported lines of JSON, ids prefix0, prefix1...: input for `maillage emit`."""
    with open(path, "w") as f:
        for i in range(count):
            f.write(json.dumps({"type": "need.reported", "needReported": {"need": {
                "needId": "%s%d" % (prefix, i), "structureId": "asso-14-001", "category": "locaux",
                "title": "Local", "commune": "14118"}}}) + "\n")


class OperationsTest(unittest.TestCase):
    def setUp(self):
        self.ws = Workspace()
        self.redis = self.ws.own(Redis(self.ws.dir))
        self.redis.start()

    def tearDown(self):
        self.ws.close()

    def cli(self, *args, ingest=None):
        cmd = [CLI, "--redis", self.redis.url]
        if ingest:
            cmd += ["--ingest", ingest]
        return subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=30)

    def deadletter_ids(self):
        return [entry[0].decode() for entry in self.redis.call("XRANGE", "mg:deadletter", "-", "+")]

    def only_deadletter(self, other_than=None):
        """The id of the one dead letter (not `other_than`), once the broker
        has stored it: it answers REJECTED first (docs/redis-keys.md)."""
        def one():
            ids = self.deadletter_ids()
            return ids[0] if len(ids) == 1 and ids[0] != other_than else None
        return harness.wait_until(one, what="the one dead letter")

    def test_rate_limited_events_are_sent_again_not_dropped(self):
        # The broker keeps no dead letter of an event over its network's rate
        # limit ("rate limit: ..., retry later"): emit and dlq replay send it
        # again after a pause. (Before: emit counted it rejected, lost from the
        # file; replay deleted the dead letter, the event's only copy.)
        broker, sections = start_broker(self.ws, self.redis, rate_limit_per_s=1, rate_limit_burst=1)
        ingest = sections["broker"]["ingest"]
        client = self.ws.own(harness.IngestClient(ingest))
        bad = need_reported(category="licornes")
        self.assertEqual(client.emit(bad).status, harness.REJECTED)
        dl_id = self.only_deadletter()
        lines = self.ws.path("five.ndjson")
        write_needs(lines, "n-rl-", 5)
        out = self.cli("emit", lines, ingest=ingest)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        self.assertIn("limite de débit", out.stderr)
        self.assertEqual(self.redis.call("XLEN", "mg:journal"), 5)
        # The network is busy when the operator replays: the replay waits its
        # turn, is refused again for its category, and that new refusal's
        # dead letter replaces this one.
        for i in range(3):
            client.send(need_reported())
        out = self.cli("dlq", "replay", dl_id, ingest=ingest)
        self.assertNotEqual(out.returncode, 0)
        self.assertIn("le broker la refuse encore", out.stderr)
        self.assertIn("need_reported.need.category", out.stderr)
        self.assertNotEqual(self.only_deadletter(other_than=dl_id), dl_id)

    def test_emit_timeout_counts_silence_not_the_rate_limits_answers(self):
        # 100 events at 25 per second take 4 s: with --timeout 2 counted from
        # each event's first send, those still held back at 2 s were reported
        # "no answer from the broker" although it answered every time.
        broker, sections = start_broker(self.ws, self.redis, rate_limit_per_s=25, rate_limit_burst=25)
        lines = self.ws.path("hundred.ndjson")
        write_needs(lines, "n-rt-", 100)
        started = time.monotonic()
        out = self.cli("emit", "--quiet", "--timeout", "2", lines, ingest=sections["broker"]["ingest"])
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("100 acceptés", out.stderr)
        self.assertNotIn("pas de réponse", out.stderr)
        self.assertEqual(self.redis.call("XLEN", "mg:journal"), 100)
        self.assertGreater(time.monotonic() - started, 3)  # the limit did hold it back
        # Held back, then silence (the broker stopped): that is what the
        # lines and the summary say.
        write_needs(lines, "n-rs-", 100)
        emit = subprocess.Popen([CLI, "--redis", self.redis.url, "--ingest", sections["broker"]["ingest"],
                                 "emit", "--quiet", "--timeout", "1", lines], stderr=subprocess.PIPE, text=True)
        try:
            self.assertIn("la limite de débit du broker retient des événements", emit.stderr.readline())
            broker.send_signal(signal.SIGSTOP)
            err = emit.stderr.read()
            self.assertEqual(emit.wait(timeout=20), 1)
        finally:
            broker.send_signal(signal.SIGCONT)
            if emit.poll() is None:
                emit.kill()
            emit.stderr.close()
        self.assertRegex(err, r"ligne \d+ : [0-9A-Z]+ : retenu par la limite de débit du broker, puis sans réponse "
                              r"pendant 1 s\n")
        # (those the broker had not answered yet when it stopped: "no answer from the broker")
        held = len(re.findall("retenu par la limite de débit", err))
        self.assertRegex(err, r"\d+ sans réponse \(dont %d retenus? par le broker : limite de débit ou journal "
                              r"indisponible\)\n$" % held)

    def test_replay_sends_refused_input_again_once_its_cause_is_fixed(self):
        # A broker whose taxonomy lacks "financement" refuses the need...
        broker, sections = start_broker(self.ws, self.redis)
        broker.stop()
        narrow = dict(sections, categories={"locaux": "Locaux"})
        conf = harness.write_config(self.ws.path("narrow.conf"), narrow)
        broker = self.ws.own(harness.Daemon(self.ws.dir, "maillage-broker", conf))
        broker.start(ready="broker: ready")
        ingest = sections["broker"]["ingest"]
        client = self.ws.own(harness.IngestClient(ingest))
        env = need_reported(category="financement")
        ack = client.emit(env)
        self.assertEqual(ack.status, ack.STATUS_REJECTED)
        dl_id = self.only_deadletter()

        # ... so replaying it now is refused again: a new dead letter replaces it.
        out = self.cli("dlq", "replay", dl_id, ingest=ingest)
        self.assertNotEqual(out.returncode, 0)
        self.assertIn("le broker la refuse encore", out.stderr)
        self.assertIn("need_reported.need.category", out.stderr)
        new_id = self.only_deadletter(other_than=dl_id)
        self.assertNotEqual(new_id, dl_id)
        dl_id = new_id

        # With the default taxonomy back, the replay is journaled and the dead letter goes.
        broker.stop()
        conf = harness.write_config(self.ws.path("wide.conf"), sections)
        broker = self.ws.own(harness.Daemon(self.ws.dir, "maillage-broker", conf))
        broker.start(ready="broker: ready")
        out = self.cli("dlq", "replay", dl_id, ingest=ingest)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("Renvoyé au broker", out.stdout)
        self.assertEqual(self.deadletter_ids(), [])
        journal = self.redis.call("XRANGE", "mg:journal", "-", "+")
        self.assertEqual(len(journal), 1)
        # Replaying is idempotent from the broker's side: the same bytes again are a duplicate.
        # (A new connection: the first one's broker is gone, and a message sent on a
        # connection not yet seen as dead would be lost with it.)
        client = self.ws.own(harness.IngestClient(ingest))
        ack = client.emit(env)
        self.assertEqual(ack.status, ack.STATUS_DUPLICATE)

    def test_a_letter_from_before_held_contacts_refused_again_is_replaced(self):
        # Written before contacts were held apart: the contact is in `raw`.
        # Refused again, the broker's new letter keeps the event without it
        # and holds the bytes received apart: it is the same refusal all the
        # same, which replaces the old letter (before, both stayed and the
        # CLI said the broker had kept no new letter).
        broker, sections = start_broker(self.ws, self.redis)
        env = harness.Envelope(event_id=harness.new_id(), type="member.joined", occurred_at_ms=1)
        st = env.member_joined.structure
        st.structure_id, st.name, st.commune = "epicerie-vire", "Épicerie de Vire", "99999"
        st.family = harness.events_pb2.FAMILY_ASSOCIATION
        st.contact.name, st.contact.email = "Gaëlle Hamel", "g.hamel@epicerie-vire.example.org"
        env.member_joined.network, env.member_joined.joined_on = "federation-x", "2026-01-15"
        self.redis.call("XADD", "mg:deadletter", "*", "reason", "unknown commune", "field",
                        "member_joined.structure.commune", "source", "federation-x", "received_at_ms", "1",
                        "raw", env.SerializeToString(), "raw_len", len(env.SerializeToString()))
        [dl_id] = self.deadletter_ids()
        out = self.cli("dlq", "replay", dl_id, ingest=sections["broker"]["ingest"])
        self.assertNotEqual(out.returncode, 0)
        self.assertIn("Le nouveau refus remplace cette lettre morte.", out.stdout)
        new_id = self.only_deadletter(other_than=dl_id)
        self.assertEqual(self.redis.call("HGET", "mg:deadletter:held:epicerie-vire", new_id),
                         env.SerializeToString())

    def test_replay_refuses_a_truncated_dead_letter(self):
        self.redis.call("XADD", "mg:deadletter", "*", "reason", "message too large", "field", "",
                        "source", "net", "received_at_ms", "1", "raw", b"\x0a\x02ab", "raw_len", "999999")
        [dl_id] = self.deadletter_ids()
        out = self.cli("dlq", "replay", dl_id, ingest="tcp://127.0.0.1:1")
        self.assertNotEqual(out.returncode, 0)
        self.assertIn("elle ne peut pas être renvoyée", out.stderr)
        self.assertEqual(self.deadletter_ids(), [dl_id])

    def test_replay_sends_input_again_in_the_name_of_the_network_it_came_from(self):
        """Not in the CLI's: the event keeps its network, its dedupe scope
        and its rights (the broker here has no CURVE: any client may relay)."""
        broker, sections = start_broker(self.ws, self.redis)
        env = need_reported()
        self.redis.call("XADD", "mg:deadletter", "*", "reason", "taxonomy", "field", "", "source", "federation-x",
                        "received_at_ms", "1", "raw", env.SerializeToString())
        [dl_id] = self.deadletter_ids()
        out = self.cli("dlq", "replay", dl_id, ingest=sections["broker"]["ingest"])
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("au nom de « federation-x »", out.stdout)
        self.assertEqual(self.deadletter_ids(), [])
        [(_, fields)] = self.redis.call("XRANGE", "mg:journal", "-", "+")
        journaled = harness.Envelope()
        journaled.ParseFromString(dict(zip(fields[::2], fields[1::2]))[b"e"])
        self.assertEqual((journaled.event_id, journaled.source), (env.event_id, "federation-x"))

    def test_replay_keeps_a_consumer_dead_letter_whose_event_is_gone(self):
        """Trimmed from the journal, or its consumer forgotten: requeued, it
        would be dropped by the consumer, and the dead letter is its last
        copy."""
        self.redis.call("XADD", "mg:journal", "100-0", "t", "need.reported", "e", b"")
        self.redis.call("SADD", "mg:consumers", "matcher")
        for consumer, seq, why in (("matcher", "42", "n'est plus dans le journal"),
                                   ("ancien", "100", "n'est plus enregistré")):
            self.redis.call("XADD", "mg:deadletter", "*", "reason", "handler failed", "consumer", consumer,
                            "seq", seq, "source", "consumer:" + consumer, "received_at_ms", "1", "raw", b"")
            dl_id = self.deadletter_ids()[-1]
            out = self.cli("dlq", "replay", dl_id)
            self.assertNotEqual(out.returncode, 0)
            self.assertIn(why, out.stderr)
            self.assertIn(dl_id, self.deadletter_ids())
            self.assertEqual(self.redis.call("ZCARD", "mg:retry:" + consumer), 0)

    def test_replay_refuses_a_consumer_dead_letter_without_its_consumer_field(self):
        # Before, it was sent to the broker in the name of a network "consumer:matcher".
        broker, sections = start_broker(self.ws, self.redis)
        self.redis.call("XADD", "mg:deadletter", "*", "reason", "handler failed", "seq", "42",
                        "source", "consumer:matcher", "received_at_ms", "1",
                        "raw", need_reported().SerializeToString())
        [dl_id] = self.deadletter_ids()
        out = self.cli("dlq", "replay", dl_id, ingest=sections["broker"]["ingest"])
        self.assertEqual((out.returncode, out.stdout), (1, ""))
        self.assertEqual(out.stderr, "maillage dlq: lettre morte de consommateur malformée (source « consumer:matcher » "
                                     "sans champ consumer) : elle n'est pas réinjectée et reste dans la file\n")
        self.assertEqual(self.deadletter_ids(), [dl_id])
        self.assertEqual(self.redis.call("XLEN", "mg:journal"), 0)

    def test_replay_puts_a_consumer_poison_event_back_in_its_retry_set(self):
        self.redis.call("XADD", "mg:journal", "42-0", "t", "need.reported", "e", b"")
        self.redis.call("SADD", "mg:consumers", "matcher")
        self.redis.call("HSET", "mg:retry:matcher:attempts", "42", "5")
        self.redis.call("XADD", "mg:deadletter", "*", "reason", "handler failed", "consumer", "matcher",
                        "seq", "42", "event_id", "ev-42", "type", "need.reported",
                        "source", "consumer:matcher", "received_at_ms", "1", "raw", b"", "raw_len", "0")
        [dl_id] = self.deadletter_ids()
        shown = self.cli("dlq", "show", dl_id)
        self.assertEqual(shown.returncode, 0, shown.stderr)
        self.assertIn("matcher (séquence 42)", shown.stdout)

        before = int(time.time() * 1000)
        out = self.cli("dlq", "replay", dl_id)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("« matcher »", out.stdout)
        due = float(self.redis.call("ZSCORE", "mg:retry:matcher", "42"))
        self.assertGreaterEqual(due, before)
        self.assertIsNone(self.redis.call("HGET", "mg:retry:matcher:attempts", "42"))
        self.assertEqual(self.deadletter_ids(), [])

    def test_show_and_replay_want_the_complete_id_of_one_dead_letter(self):
        """XRANGE reads "1795828102169" as every entry of that millisecond:
        acting on the first and XDELeting "1795828102169-0" would replay one
        dead letter and delete another (or none)."""
        self.redis.call("XADD", "mg:journal", "42-0", "t", "need.reported", "e", b"")
        self.redis.call("SADD", "mg:consumers", "matcher")
        for i, seq in ((1, "42"), (2, "43")):
            self.redis.call("XADD", "mg:deadletter", "1795828102169-%d" % i, "reason", "handler failed",
                            "consumer", "matcher", "seq", seq, "source", "consumer:matcher",
                            "received_at_ms", "1", "raw", b"")
        for action in ("show", "replay"):
            out = self.cli("dlq", action, "1795828102169")
            self.assertEqual(out.returncode, 1, action)
            self.assertEqual(out.stdout, "", action)
            self.assertEqual(out.stderr, "maillage dlq: « 1795828102169 » n'est pas un identifiant complet de "
                             "lettre morte ; identifiants complets : 1795828102169-1, 1795828102169-2\n")
        self.assertEqual(self.deadletter_ids(), ["1795828102169-1", "1795828102169-2"])
        self.assertEqual(self.redis.call("ZCARD", "mg:retry:matcher"), 0)
        out = self.cli("dlq", "replay", "1795828102169-1")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(self.deadletter_ids(), ["1795828102169-2"])
        self.assertEqual(self.redis.call("ZRANGE", "mg:retry:matcher", 0, -1), [b"42"])

    def test_dlq_list_reads_page_by_page_the_last_n_oldest_first(self):
        for i in range(70):  # pages of 32
            self.redis.call("XADD", "mg:deadletter", "*", "reason", "r%02d" % i, "field", "", "source", "net",
                            "received_at_ms", "1", "raw", b"x" * 1000)
        ids = self.deadletter_ids()
        for args, want in ((["dlq", "list"], ids), (["dlq", "list", "-n", "40"], ids[30:]),
                           (["dlq", "list", "-n", "32"], ids[38:]), (["dlq", "list", "-n", "5"], ids[65:]),
                           (["dlq", "list", "-n", "500"], ids)):
            out = self.cli(*args)
            self.assertEqual(out.returncode, 0, out.stderr)
            self.assertEqual([line.split()[0] for line in out.stdout.splitlines()], want, args)

    def test_journal_to_bounds_a_range_the_retention_has_trimmed(self):
        for seq in range(101, 106):  # 1 to 100 trimmed
            env = need_reported()
            env.sequence = seq
            self.redis.call("XADD", "mg:journal", "%d-0" % seq, "t", env.type, "e", env.SerializeToString())
        for to, want in ((5, []), (102, [101, 102])):
            out = self.cli("journal", "--from", "1", "--to", str(to))
            self.assertEqual(out.returncode, 0, out.stderr)
            self.assertEqual([int(json.loads(line)["sequence"]) for line in out.stdout.splitlines()], want)

    def test_consumers_shows_checkpoint_lag_and_parked_events_then_forgets(self):
        broker, sections = start_broker(self.ws, self.redis)
        client = self.ws.own(harness.IngestClient(sections["broker"]["ingest"]))
        for _ in range(5):
            self.assertEqual(client.emit(need_reported()).sequence > 0, True)
        now = str(int(time.time() * 1000))
        self.redis.call("SADD", "mg:consumers", "matcher", "notifier")
        self.redis.call("HSET", "mg:consumer:matcher", "seq", "3", "updated_at_ms", now,
                        "topics", "need.,offer.")
        self.redis.call("HSET", "mg:consumer:notifier", "seq", "5", "updated_at_ms", now)
        self.redis.call("ZADD", "mg:retry:matcher", now, "2")

        out = self.cli("consumers")
        self.assertEqual(out.returncode, 0, out.stderr)
        lines = out.stdout.splitlines()
        self.assertIn("dernière séquence 5", lines[0])
        matcher = next(line.split() for line in lines if line.startswith("matcher"))
        notifier = next(line.split() for line in lines if line.startswith("notifier"))
        self.assertEqual(matcher[1:4], ["3", "2", "1"])   # position, lag, parked
        self.assertEqual(notifier[1:4], ["5", "0", "0"])
        self.assertEqual(matcher[-1], "need.,offer.")

        # It moved its checkpoint just now: it may be running.
        out = self.cli("consumers", "forget", "matcher")
        self.assertEqual(out.returncode, 1)
        self.assertIn("le consommateur « matcher » a bougé sa position il y a 0 s : il tourne peut-être (arrêtez-le "
                      "d'abord, ou --force)", out.stderr)
        self.assertEqual(sorted(self.redis.call("SMEMBERS", "mg:consumers")), [b"matcher", b"notifier"])
        self.assertEqual(self.redis.call("ZCARD", "mg:retry:matcher"), 1)

        out = self.cli("consumers", "forget", "--force", "matcher")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("1 événement en attente de nouvelle tentative déplacé vers les lettres mortes", out.stdout)
        self.assertEqual(self.redis.call("SMEMBERS", "mg:consumers"), [b"notifier"])
        self.assertEqual(self.redis.call("EXISTS", "mg:consumer:matcher", "mg:retry:matcher"), 0)
        out = self.cli("consumers", "forget", "matcher")
        self.assertNotEqual(out.returncode, 0)
        self.assertIn("aucun consommateur enregistré", out.stderr)

    def test_forget_moves_the_parked_events_to_the_dead_letters(self):
        # Before, `forget` DELeted mg:retry:NAME: the parked events were gone.
        broker, sections = start_broker(self.ws, self.redis)
        client = self.ws.own(harness.IngestClient(sections["broker"]["ingest"]))
        envs = [need_reported() for _ in range(3)]
        for env in envs:
            client.emit(env)
        long_ago = str(int(time.time() * 1000) - 10 * 60 * 1000)
        self.redis.call("SADD", "mg:consumers", "ancien")
        self.redis.call("HSET", "mg:consumer:ancien", "seq", "1", "updated_at_ms", long_ago)
        self.redis.call("ZADD", "mg:retry:ancien", long_ago, "2", long_ago, "3")
        self.redis.call("HSET", "mg:retry:ancien:attempts", "2", "3", "2:reason", "handler failed")
        out = self.cli("consumers", "forget", "ancien")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("2 événements en attente de nouvelle tentative déplacés vers les lettres mortes", out.stdout)
        self.assertEqual(self.redis.call("EXISTS", "mg:consumer:ancien", "mg:retry:ancien",
                                         "mg:retry:ancien:attempts"), 0)
        dead = [dict(zip(f[::2], f[1::2])) for _, f in self.redis.call("XRANGE", "mg:deadletter", "-", "+")]
        self.assertEqual([(d[b"consumer"], d[b"seq"], d[b"source"], d[b"event_id"], d[b"type"], d[b"attempts"])
                          for d in dead],
                         [(b"ancien", b"2", b"consumer:ancien", envs[1].event_id.encode(), b"need.reported", b"3"),
                          (b"ancien", b"3", b"consumer:ancien", envs[2].event_id.encode(), b"need.reported", b"0")])
        self.assertEqual(dead[0][b"reason"], b"consumer forgotten while the event waited for a retry "
                                             b"(last failure: handler failed)")
        journaled = self.redis.call("XRANGE", "mg:journal", "2-0", "2-0")[0][1]
        self.assertEqual(dead[0][b"raw"], dict(zip(journaled[::2], journaled[1::2]))[b"e"])
        shown = self.cli("dlq", "show", self.deadletter_ids()[0])
        self.assertIn("ancien (séquence 2)", shown.stdout)


if __name__ == "__main__":
    unittest.main()
