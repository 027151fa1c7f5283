"""Delivery guarantees under faults: no loss, no duplicate effect.

Each test runs a stream of at least 10,000 events through the real stack (a
redis-server with AOF, the real maillage-broker, real consuming daemons:
tests/tools/probe_consumer, built on mg_subscriber like every consumer) and
breaks something in the middle. At the end it checks, for each consumer,
that every acknowledged event (ACCEPTED or DUPLICATE) was applied exactly
once: the consumer's applied set equals the acked ids and its effects counter
equals their number; and that the journal holds each event exactly once,
under the sequence its ack gave.

Nothing here sleeps to prove anything: every wait is for a condition, with
a timeout."""

import os
import signal
import time
import unittest

import harness as h

# Events per fault test; `make soak` runs the same tests with many more
# (MAILLAGE_FAULT_EVENTS), and every wait scales with it.
EVENTS = int(os.environ.get("MAILLAGE_FAULT_EVENTS", "10000"))
SCALE = max(1.0, EVENTS / 10000)


def mixed_stream(n, offers_every=10):
    """n valid envelopes: needs, and an offer every `offers_every`."""
    return [h.offer_published() if i % offers_every == 0 else h.need_reported() for i in range(n)]


class StackTestCase(unittest.TestCase):
    """A private Redis per test; the broker and the probes started by it."""

    appendfsync = "everysec"

    def setUp(self):
        self.t0 = time.monotonic()
        self.ws = h.Workspace(prefix="maillage-delivery-")
        self.redis = self.ws.own(h.Redis(self.ws.dir, appendfsync=self.appendfsync)).start()

    def tearDown(self):
        keep = os.environ.get("MAILLAGE_KEEP") == "1"
        self.ws.close(keep=keep)
        if os.environ.get("MAILLAGE_TIMINGS") == "1":
            print("  [%s: %.1f s]" % (self._testMethodName, time.monotonic() - self.t0))

    # ---- the stack ------------------------------------------------------------

    def start_broker(self, **broker):
        self.broker, sections = h.start_broker(self.ws, self.redis, **broker)
        self.ingest = sections["broker"]["ingest"]
        self.fanout = sections["broker"]["fanout"]

    def probe(self, name, *args, ready=True, broker=None):
        p = self.ws.own(h.Probe(self.ws, self.redis, self.fanout, name, args, broker=broker))
        p.start(ready=ready)
        return p

    def produce(self, envelopes, **kw):
        return h.RetryingProducer(self.ingest, envelopes, **kw)

    # ---- the checks -------------------------------------------------------------

    def wait_applied(self, probe, expected_count, timeout=30.0 * SCALE):
        def done():
            if probe.proc.poll() is not None:
                raise RuntimeError("probe %s exited:\n%s" % (probe.name, probe.log()))
            return probe.applied_count() >= expected_count
        try:
            h.wait_until(done, timeout, interval=0.05, what="%s to apply %d events" % (probe.name, expected_count))
        except TimeoutError:
            raise AssertionError("%s applied %d of %d; stats %s\n%s" % (
                probe.name, probe.applied_count(), expected_count, probe.stats(), probe.log()[-3000:]))

    def assert_exactly_once(self, probe, acked_ids, checkpoint=True):
        """applied == acked, one effect each, and the consumer caught up
        (its position, and unless told otherwise its checkpoint, at the
        journal head)."""
        acked_ids = set(acked_ids)
        self.wait_applied(probe, len(acked_ids))
        applied = probe.applied()
        self.assertEqual(len(applied - acked_ids), 0, "applied but never acked")
        self.assertEqual(len(acked_ids - applied), 0, "acked but never applied")
        self.assertEqual(probe.effects(), len(acked_ids), "an effect applied twice")
        head = int(self.redis.call("GET", "mg:journal:seq") or 0)
        h.wait_until(lambda: probe.stats().get("position") == head, 5.0,
                     what="%s position at %d" % (probe.name, head))
        if checkpoint:
            h.wait_until(lambda: probe.checkpoint() == head, 5.0,
                         what="%s checkpoint at %d" % (probe.name, head))

    def assert_journal_once(self, acked):
        """The journal has each acked event once, at its acked sequence."""
        entries = h.journal_event_ids(self.redis)
        ids = [event_id for _, event_id in entries]
        self.assertEqual(len(ids), len(set(ids)), "an event journaled twice")
        self.assertEqual([s for s, _ in entries], list(range(1, len(entries) + 1)), "sequences not dense")
        self.assertEqual(set(ids), set(acked))
        by_id = dict((event_id, seq) for seq, event_id in entries)
        wrong = [i for i, seq in acked.items() if by_id[i] != seq]
        self.assertEqual(wrong, [], "acked with another sequence than the journal's")


class DeliveryTest(StackTestCase):

    def test_broker_killed_mid_stream_and_restarted_producer_retries_nothing_lost_or_doubled(self):
        """kill -9 of the broker while 10,000 events flow. Events in flight
        are either lost (never journaled: the producer's retry journals them)
        or journaled but never acked nor published (the retry is answered
        DUPLICATE and the consumers fill the hole from the journal, whether
        the next publication or the idle check reveals it)."""
        self.start_broker()
        a = self.probe("alpha")
        b = self.probe("beta", "--topics", "offer.")
        sent = mixed_stream(EVENTS)
        # Full speed: a window of 500 envelopes is in flight at every kill.
        producer = self.produce(sent, window=500)
        producer.start()
        for fifth in (1, 2, 3):  # three kills: more chances to cut a batch in flight
            h.wait_until(lambda: producer.acked_count() >= EVENTS * fifth // 5, 30 * SCALE,
                         what="%d/5 acked" % fifth)
            self.broker.stop(signal.SIGKILL)
            h.restart(self.broker, ready="broker: ready")
        acked = producer.finish()
        self.assertEqual(len(acked), EVENTS)
        self.assertEqual(producer.rejected, [])
        self.assertGreater(producer.resent, 0, "the kill did not interrupt anything")
        self.assert_journal_once(acked)
        self.assert_exactly_once(a, acked)
        offers = {e.event_id for e in sent if e.type == "offer.published"}
        self.assert_exactly_once(b, offers)

    def test_consumer_killed_mid_stream_resumes_from_its_checkpoint_without_reapplying(self):
        """kill -9 of a consumer while 10,000 events flow, then a restart. It
        resumes from its checkpoint in Redis: events up to the checkpoint are
        never delivered again, those after it (applied but not yet
        checkpointed) are delivered again and their effect is not repeated."""
        self.start_broker()
        probe = self.probe("gamma", "--checkpoint-every", 700, "--checkpoint-interval-ms", 60000)
        # 2,500 events/s: 4 s of stream, so that the consumer, killed once it
        # applied a third, is back before the end even under the sanitizers
        # (at 5,000/s the stream was sometimes over first).
        producer = self.produce(mixed_stream(EVENTS), rate=2500)
        producer.start()
        h.wait_until(lambda: probe.applied_count() >= EVENTS // 3, 30 * SCALE, what="a third applied")
        probe.stop(signal.SIGKILL)
        checkpoint_at_kill = probe.checkpoint()
        applied_at_kill = probe.applied_count()
        h.restart(probe, ready="subscriber gamma: live")
        self.assertLess(producer.acked_count(), EVENTS, "the stream was over before the restart")
        acked = producer.finish()
        self.assertEqual(len(acked), EVENTS)
        self.assert_journal_once(acked)
        self.assert_exactly_once(probe, acked, checkpoint=False)

        deliveries = probe.deliveries()
        seq_of = {i: s for i, s in acked.items()}
        again = {i for i, n in deliveries.items() if n > 1}
        self.assertGreater(checkpoint_at_kill, 0)
        self.assertEqual({i for i in again if seq_of[i] <= checkpoint_at_kill}, set(),
                         "events before the checkpoint were delivered again")
        self.assertTrue(all(n <= 2 for n in deliveries.values()))
        if applied_at_kill > checkpoint_at_kill:
            self.assertGreater(len(again), 0, "at-least-once: the uncheckpointed tail comes again")

    def test_consumer_paused_beyond_the_high_water_mark_fills_the_gap_from_the_journal(self):
        """SIGSTOP of a consumer during a burst of 12,000 events, far beyond
        what the fan-out buffers for it ([broker] fanout_hwm = 1000, the SUB
        socket's 1000, and an ipc socket's small kernel buffers): the broker
        drops its messages, and after SIGCONT the consumer sees the jump in
        sequences and reads the missing ones from the journal."""
        self.start_broker(fanout_hwm=1000, fanout="ipc://" + self.ws.path("fanout.sock"))
        steady = self.probe("steady")
        paused = self.probe("paused")
        paused.send_signal(signal.SIGSTOP)
        try:
            producer = self.produce(mixed_stream(12000))
            producer.start()
            acked = producer.finish()
        finally:
            paused.send_signal(signal.SIGCONT)
        self.assertEqual(len(acked), 12000)
        self.assert_journal_once(acked)
        self.assert_exactly_once(paused, acked)
        self.assert_exactly_once(steady, acked)
        h.wait_until(lambda: paused.stats().get("gaps", 0) >= 1, 5, what="stats")
        stats = paused.stats()
        self.assertGreater(stats["from_journal"], 0, stats)

    def test_late_consumer_reads_everything_from_the_journal(self):
        """A consumer that starts after 10,000 events were published (and one
        that only wants offers) gets all of its events from the journal."""
        self.start_broker()
        sent = mixed_stream(EVENTS)
        producer = self.produce(sent)
        producer.start()
        acked = producer.finish()
        self.assertEqual(len(acked), EVENTS)
        late = self.probe("late")
        offers_only = self.probe("late-offers", "--topics", "offer.")
        self.assert_exactly_once(late, acked)
        offers = {e.event_id for e in sent if e.type == "offer.published"}
        self.assert_exactly_once(offers_only, offers)
        h.wait_until(lambda: late.stats().get("delivered") == EVENTS, 5 * SCALE, what="stats")
        self.assertEqual(late.stats()["from_journal"], EVENTS)
        h.wait_until(lambda: offers_only.stats().get("skipped") == EVENTS - len(offers), 5 * SCALE, what="stats")
        self.assert_journal_once(acked)

    def test_poison_events_are_retried_then_dead_lettered_without_blocking_the_others(self):
        """20 offers the consumer cannot process, then 10,000 needs. The needs
        are all applied while the offers wait in the retry set (nothing
        blocks behind them); each offer is tried max_attempts = 3 times in
        all, then lands in mg:deadletter with the reason, the consumer and
        the sequence. The retry delay is one minute, and the test moves the
        parked events' due times to now instead of waiting: no race."""
        self.start_broker()
        probe = self.probe("delta", "--fail-type", "offer.published", "--max-attempts", 3,
                           "--retry-base-ms", 60000)
        poison = [h.offer_published() for _ in range(20)]
        needs = [h.need_reported() for _ in range(EVENTS)]
        producer = self.produce(poison + needs)
        producer.start()
        acked = producer.finish()
        need_ids = {e.event_id for e in needs}
        self.assert_exactly_once(probe, need_ids)
        # Everything behind the poison went through while it is parked.
        self.assertEqual(self.redis.call("ZCARD", "mg:retry:delta"), 20)
        self.assertEqual(self.redis.call("XLEN", "mg:deadletter"), 0)
        self.assertEqual(set(probe.failures().values()), {1})

        def fast_forward():
            for member in self.redis.call("ZRANGE", "mg:retry:delta", 0, -1):
                self.redis.call("ZADD", "mg:retry:delta", "XX", 0, member)
            return self.redis.call("XLEN", "mg:deadletter") == 20
        h.wait_until(fast_forward, 15, interval=0.1, what="20 dead letters")
        self.assertEqual(self.redis.call("ZCARD", "mg:retry:delta"), 0)
        self.assertEqual(self.redis.call("HLEN", "mg:retry:delta:attempts"), 0)
        self.assertEqual(probe.failures(), {e.event_id: 3 for e in poison})
        dls = [dict(zip(f[::2], f[1::2])) for _, f in self.redis.call("XRANGE", "mg:deadletter", "-", "+")]
        self.assertEqual({d[b"event_id"].decode() for d in dls}, {e.event_id for e in poison})
        for d in dls:
            event_id = d[b"event_id"].decode()
            self.assertEqual(int(d[b"seq"]), acked[event_id])
            self.assertEqual(d[b"consumer"], b"delta")
            self.assertEqual(d[b"source"], b"consumer:delta")
            self.assertEqual(d[b"type"], b"offer.published")
            self.assertEqual(int(d[b"attempts"]), 3)
            self.assertIn(b"simulated failure", d[b"reason"])
            env = h.Envelope()
            env.ParseFromString(d[b"raw"])
            self.assertEqual(env.event_id, event_id)
            self.assertEqual(int(d[b"raw_len"]), len(d[b"raw"]))
        self.assertEqual(probe.effects(), EVENTS)
        self.assertTrue(probe.applied().isdisjoint({e.event_id for e in poison}))

    def test_a_consumer_keeps_as_many_dead_letters_as_the_broker_is_told_to(self):
        """[broker] deadletter_maxlen = 200,000: a consumer's dead letter
        trimmed the stream back to about 100,000 all the same."""
        self.start_broker()
        self.redis.call("EVAL", "for i = 1, 120000 do redis.call('XADD', KEYS[1], '*', 'reason', 'old') end",
                        1, "mg:deadletter")
        probe = self.probe("echo", "--fail-type", "offer.published", "--max-attempts", 1,
                           broker={"deadletter_maxlen": 200000})
        producer = self.produce([h.offer_published()])
        producer.start()
        producer.finish()
        h.wait_until(lambda: self.redis.call("XLEN", "mg:deadletter") != 120000, 10, interval=0.1,
                     what="the dead letter")
        self.assertEqual(self.redis.call("XLEN", "mg:deadletter"), 120001)
        self.assertEqual(len(probe.failures()), 1)

    def test_an_event_journaled_but_never_published_at_the_tail_is_found(self):
        """The broker can die between journaling a batch and publishing it;
        if nothing is published after it, no jump reveals the hole. Here the
        test journals an event itself, as the append script would, without
        publishing it: the consumer must find it (the idle check reads
        mg:journal:seq after a second of silence; the broker's heartbeat
        would tell as well)."""
        self.start_broker()
        probe = self.probe("theta")
        producer = self.produce(mixed_stream(100))
        producer.start()
        acked = dict(producer.finish())
        self.wait_applied(probe, 100)
        ghost = h.need_reported()
        ghost.source, ghost.received_at_ms, ghost.schema_version = "test-net", int(time.time() * 1000), 1
        seq = self.redis.call("EVAL", "local s = redis.call('INCR', KEYS[2])\n"
                              "redis.call('XADD', KEYS[1], s .. '-0', 't', ARGV[1], 'e', ARGV[2])\n"
                              "return s", 2, "mg:journal", "mg:journal:seq", ghost.type,
                              ghost.SerializeToString())
        self.assertEqual(seq, 101)
        acked[ghost.event_id] = seq
        self.assert_exactly_once(probe, acked)

    def test_clean_stop_flushes_the_checkpoint_and_a_restart_redelivers_nothing(self):
        """SIGTERM saves the checkpoint; the restarted consumer starts right
        after it: no event is delivered twice, the new ones are caught up."""
        self.start_broker()
        probe = self.probe("epsilon", "--checkpoint-every", 100000, "--checkpoint-interval-ms", 60000)
        first = self.produce(mixed_stream(2000))
        first.start()
        acked = dict(first.finish())
        self.wait_applied(probe, 2000)
        self.assertEqual(probe.stop(signal.SIGTERM), 0)
        self.assertEqual(probe.checkpoint(), 2000)
        second = self.produce(mixed_stream(2000))
        second.start()
        acked.update(second.finish())
        h.restart(probe, ready="subscriber epsilon: live")
        self.assert_exactly_once(probe, acked, checkpoint=False)
        self.assertEqual(set(probe.deliveries().values()), {1})

    def test_a_checkpoint_beyond_the_journal_is_lowered_in_redis_at_once(self):
        """Redis lost its last second of writes, the consumer's checkpoint
        with them... but not the consumer's own write: it is ahead of the
        journal. The consumer resumes from the head and writes that down at
        once, so that a reconnection before its next checkpoint does not
        read the old one again and skip what was journaled meanwhile."""
        self.start_broker()
        first = self.produce(mixed_stream(200))
        first.start()
        acked = dict(first.finish())
        head = int(self.redis.call("GET", "mg:journal:seq"))
        self.redis.call("SADD", "mg:consumers", "theta")
        self.redis.call("HSET", "mg:consumer:theta", "seq", head + 50)
        probe = self.probe("theta", "--checkpoint-every", 100000, "--checkpoint-interval-ms", 60000)
        probe.wait_log("is beyond the journal head", 10)
        h.wait_until(lambda: int(self.redis.call("HGET", "mg:consumer:theta", "seq")) == head, 5,
                     what="the checkpoint lowered to the head")
        self.assertEqual(probe.applied(), set())  # resumed from the head: none of the 200 again
        second = self.produce(mixed_stream(100))
        second.start()
        later = dict(second.finish())
        self.wait_applied(probe, len(later))
        self.assertEqual(probe.applied(), set(later))
        self.assertTrue(set(acked).isdisjoint(probe.applied()))

    def test_malformed_journal_entries_are_passed_over_not_read_forever(self):
        """Entries without a type or an envelope (written by hand, not by
        the broker): a whole page of them (--catchup-batch 2), one parked
        for retry, and one at the tail. The consumer passes over them with
        an error in its log, applies every real event around them, and its
        position reaches the journal's head."""
        self.start_broker()
        first = self.produce(mixed_stream(300))
        first.start()
        acked = dict(first.finish())
        head = int(self.redis.call("GET", "mg:journal:seq"))
        for seq in range(head + 1, head + 4):
            self.redis.call("XADD", "mg:journal", "%d-0" % seq, "t", "need.reported")
        self.redis.call("SET", "mg:journal:seq", head + 3)
        self.redis.call("ZADD", "mg:retry:eta", 0, head + 2)  # as if it had failed once
        second = self.produce(mixed_stream(300))
        second.start()
        acked.update(second.finish())
        last = int(self.redis.call("GET", "mg:journal:seq"))
        self.redis.call("XADD", "mg:journal", "%d-0" % (last + 1), "e", b"")
        self.redis.call("SET", "mg:journal:seq", last + 1)
        probe = self.probe("eta", "--catchup-batch", 2)
        self.wait_applied(probe, len(acked))
        self.assertEqual(probe.applied(), set(acked))
        h.wait_until(lambda: probe.stats().get("position") == last + 1, 10, what="eta's position at the head")
        h.wait_until(lambda: self.redis.call("ZCARD", "mg:retry:eta") == 0, 10, what="the parked entry forgotten")
        self.assertIn("is malformed in mg:journal", probe.log())

    def test_a_restart_without_the_journal_counter_redelivers_nothing(self):
        """mg:journal:seq deleted (by hand, or a stream restored alone): the
        broker numbers on after the stream's last id, and a restarted
        consumer takes its head from there too instead of from 0, which
        would make it deliver the whole journal again."""
        self.start_broker()
        probe = self.probe("zeta")
        first = self.produce(mixed_stream(500))
        first.start()
        acked = dict(first.finish())
        self.assert_exactly_once(probe, acked)
        self.assertEqual(probe.stop(signal.SIGTERM), 0)
        self.redis.call("DEL", "mg:journal:seq")
        h.restart(probe, ready="subscriber zeta: live")
        second = self.produce(mixed_stream(500))
        second.start()
        acked.update(second.finish())
        self.assert_exactly_once(probe, acked)
        self.assertEqual(set(probe.deliveries().values()), {1})


class RedisRestartTest(StackTestCase):
    """Redis killed (SIGKILL) and restarted from its AOF while events flow.

    With the default appendfsync everysec: Redis write(2)s the AOF before it
    sends the replies of a loop turn, so once an ack, an applied effect or a
    checkpoint has been answered its bytes are in the kernel, and a kill -9
    of Redis loses none of them (README, "Durability"). What everysec can
    lose -- the last second on an OS crash or power cut -- is not something
    a process kill shows; the subclass below runs the same test with
    appendfsync always, the setting for that case."""

    appendfsync = "everysec"

    def test_redis_killed_and_restarted_from_its_aof_while_events_flow(self):
        self.start_broker()
        a = self.probe("zeta")
        b = self.probe("eta", "--topics", "need.")
        sent = mixed_stream(EVENTS)
        producer = self.produce(sent, rate=4000)
        producer.start()
        # Mid-stream, once the consumers have checkpointed something.
        h.wait_until(lambda: producer.acked_count() >= EVENTS // 3 and a.checkpoint() > 0
                     and b.checkpoint() > 0, 30, what="a third acked and checkpoints")
        self.redis.kill()
        self.broker.wait_log("journal unavailable", timeout=10)
        self.redis.start()
        self.assertLess(producer.acked_count(), EVENTS, "the stream was over before the restart")
        acked = producer.finish()
        self.assertEqual(len(acked), EVENTS)
        self.assertGreater(producer.statuses[h.UNAVAILABLE] + producer.resent, 0)
        self.assert_journal_once(acked)
        self.assert_exactly_once(a, acked)
        self.assert_exactly_once(b, {e.event_id for e in sent if e.type == "need.reported"})
        self.assertGreaterEqual(a.stats()["redis_losses"], 1)


class RedisRestartAlwaysTest(RedisRestartTest):
    """The same with appendfsync always (fsync before every reply): slower,
    and what an installation that must survive power loss runs."""

    appendfsync = "always"


if __name__ == "__main__":
    unittest.main()


class RedisRefusalTest(StackTestCase):
    """Redis up but refusing commands (a long script answering -BUSY, -OOM
    under maxmemory): the subscriber must neither freeze nor skip."""

    def setUp(self):
        super().setUp()
        self.start_broker()

    def tearDown(self):
        try:
            self.redis.call("CONFIG", "SET", "maxmemory", "0")
        except Exception:  # the stack may be gone already
            pass
        super().tearDown()

    def test_busy_redis_during_catchup_leaves_no_command_stuck_and_the_checkpoint_advances(self):
        """A script runs 1.5 s while the consumer catches up one entry per
        XRANGE: its XRANGE, the housekeeping scan and the checkpoint HSET
        sent after it wait, then are all answered -BUSY. The XRANGE error
        restarts the subscriber; the replies behind it belong to the old
        epoch and must not leave their in-flight flags set: afterwards the
        checkpoint reaches the journal head again."""
        needs = [h.need_reported() for _ in range(20000)]
        offers = [h.offer_published() for _ in range(10)]
        producer = self.produce(needs + offers)
        producer.start()
        acked = producer.finish()
        self.assertEqual(len(acked), len(needs) + len(offers))
        self.redis.call("CONFIG", "SET", "busy-reply-threshold", "400")
        probe = self.probe("kappa", "--topics", "offer.", "--catchup-batch", 1,
                           "--checkpoint-every", 10000000, ready=False)
        h.wait_until(lambda: probe.stats().get("position", 0) > 200, 10, what="catch-up under way")
        self.redis.call("EVAL", "local t0 = redis.call('TIME')\n"
                        "local start = t0[1] * 1000000 + t0[2]\n"
                        "repeat local t = redis.call('TIME')\n"
                        "until t[1] * 1000000 + t[2] - start > 1500000\n"
                        "return 1", 0)
        self.assertLess(probe.stats().get("position", 0), len(acked), "caught up before the script")
        probe.wait_log("BUSY", timeout=5)
        self.assert_exactly_once(probe, {e.event_id for e in offers})

    def test_a_park_refused_under_maxmemory_does_not_lose_the_event(self):
        """Every write refused (-OOM): the handler fails and so does the
        park script. The event must be neither applied-and-forgotten nor
        skipped: once memory is back it is delivered and applied."""
        sent = mixed_stream(200)
        producer = self.produce(sent)
        producer.start()
        acked = producer.finish()
        self.redis.call("CONFIG", "SET", "maxmemory-policy", "noeviction")
        self.redis.call("CONFIG", "SET", "maxmemory", "1")
        probe = self.probe("lambda", ready=False)
        probe.wait_log("parking sequence", timeout=10)
        self.redis.call("CONFIG", "SET", "maxmemory", "0")
        self.assert_exactly_once(probe, acked)

    def test_a_refused_checkpoint_is_sent_again(self):
        """The checkpoint HSET answered -OOM: once memory is back it is sent
        again although the position has not moved since."""
        producer = self.produce([h.need_reported() for _ in range(200)])
        producer.start()
        acked = producer.finish()
        head = max(acked.values())
        self.redis.call("CONFIG", "SET", "maxmemory-policy", "noeviction")
        self.redis.call("CONFIG", "SET", "maxmemory", "1")
        probe = self.probe("mu", "--topics", "offer.", "--checkpoint-every", 10000000, ready=False)
        probe.wait_log("checkpoint %d refused" % head, timeout=10)
        self.redis.call("CONFIG", "SET", "maxmemory", "0")
        h.wait_until(lambda: probe.checkpoint() == head, 5, what="checkpoint at %d" % head)
