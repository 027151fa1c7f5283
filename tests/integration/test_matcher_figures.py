"""mg:figures, the territory's counts kept by the matcher (docs/redis-keys.md,
"Figures"), against a real redis-server, broker and matcher(s).

A varied scenario (openings, updates that move a need or an offer to another
category or commune, closures, withdrawals, expiry, member.left, retirements
and re-proposals, feedback given, repeated and changed), then a kill -9
mid-stream, a replay of the whole journal and a second instance, and two
partitioned instances: after each step, mg:figures must equal what the
records say (mg:need:*, mg:offer:*, mg:nm:*, mg:pair:*, mg:pfb:*) and what
the journal says (which needs and offers are open, which matches are open,
proposed, accepted), with no field at 0 or below; and each open need must
be in its cell and indexes, after the needs without a proposal in its
department's index only if it has an open match."""

import collections
import signal
import unittest

import harness as h
import test_matcher as tm  # the Stack and the event builders (as a module: its tests do not run here)

CAEN, HEROUVILLE, IFS, BAYEUX, LISIEUX, ROUEN = tm.CAEN, tm.HEROUVILLE, tm.IFS, tm.BAYEUX, tm.LISIEUX, tm.ROUEN
VIRE = tm.VIRE
CM = h.events_pb2.MATCH_OUTCOME_CONTACT_MADE
NR = h.events_pb2.MATCH_OUTCOME_NOT_RELEVANT


feedback = tm.feedback


def scan(redis, pattern):
    cursor, keys = b"0", []
    while True:
        cursor, page = redis.call("SCAN", cursor, "MATCH", pattern, "COUNT", 1000)
        keys.extend(page)
        if cursor == b"0":
            return keys


def figures(redis):
    flat = redis.call("HGETALL", "mg:figures")
    return {k.decode(): int(v) for k, v in zip(flat[::2], flat[1::2])}


def from_records(redis):
    """The figures recomputed from the matcher's records."""
    want = collections.Counter()
    for kind, measure in (("need", "on"), ("offer", "oo")):
        prefix = "mg:%s:" % kind
        for key in scan(redis, prefix + "*"):
            fields = redis.call("GET", key).split(b"|", 11)
            if fields[1] != b"1":
                continue
            cat, com = fields[3].decode(), fields[4].decode()
            place = com or fields[9].decode().split(" ")[0]  # an offer placed by its territory: its first entry
            want["%s|%s|%s" % (measure, cat, place)] += 1
            if kind == "need" and redis.call("ZCARD", b"mg:nm:" + key[len(prefix):]) == 0:
                want["un|%s|%s" % (cat, com)] += 1
    for key in scan(redis, "mg:pair:*"):
        fields = redis.call("GET", key).decode().split("|")
        assert len(fields) == 13, fields  # docs/redis-keys.md: rev|...|pcat|pcom|pseq
        if int(fields[0]) < 1:
            continue
        cell = "%s|%s" % (fields[10], fields[11])
        want["mp|" + cell] += 1
        if redis.call("HGET", b"mg:pfb:" + key[len("mg:pair:"):], "acc") == b"1":
            want["ma|" + cell] += 1
    return dict(want)


MATCHED = 10 ** 15  # state.c: added to the score of a need moved in its department's index


def misplaced_needs(redis):
    """The open needs missing from their cell or their indexes by department
    and EPCI, or moved after the needs without a proposal in their
    department's index (MATCHED added, by an offer serving the department that
    read them) though they have no open match: (need, key, score) each."""
    wrong = []
    for key in scan(redis, "mg:need:*"):
        fields = redis.call("GET", key).split(b"|", 11)
        if fields[1] != b"1":
            continue
        nid = key[len("mg:need:"):]
        cat, com, dep, epci = (f.decode() for f in fields[3:7])
        matched = redis.call("ZCARD", b"mg:nm:" + nid) > 0
        keys = [("mg:cell:need:%s:%s" % (cat, com), False)]
        keys += [("mg:idx:need:%s:dep:%s" % (cat, dep), matched)] if dep else []
        keys += [("mg:idx:need:%s:epci:%s" % (cat, epci), False)] if epci else []
        for k, may_move in keys:
            score = redis.call("ZSCORE", k, nid)
            if score is None or (float(score) >= MATCHED and not may_move):
                wrong.append((nid.decode(), k, score))
    return wrong


def moved_needs(redis):
    """How many needs are moved after those without a proposal in their
    department's index."""
    return sum(len(redis.call("ZRANGE", k, MATCHED, "+inf", "BYSCORE")) for k in scan(redis, "mg:idx:need:*:dep:*"))


def from_journal(st):
    """What the journal alone says: the open needs and offers by category and
    commune, the unmet needs, and how many matches were proposed and
    accepted (totals: a proposal's cell is the need's place when the matcher
    judged it, which the journal does not say once two instances run)."""
    items = {"need": {}, "offer": {}}
    closed = set()
    latest, proposed, accepted = {}, set(), set()
    for e in st.journal():
        t = e.type
        if t in ("need.reported", "need.updated", "offer.published", "offer.updated"):
            kind = t.split(".")[0]
            body = getattr(e, e.WhichOneof("payload"))
            item = getattr(body, kind)
            ident = item.need_id if kind == "need" else item.offer_id
            if (kind, ident) not in closed:
                place = item.commune or (item.territory[0] if kind == "offer" and item.territory else "")
                items[kind][ident] = (item.category, place)
        elif t in ("need.closed", "offer.withdrawn"):
            kind = "need" if t == "need.closed" else "offer"
            body = e.need_closed if kind == "need" else e.offer_withdrawn
            ident = body.need_id if kind == "need" else body.offer_id
            closed.add((kind, ident))
            items[kind].pop(ident, None)
        elif t == "match.found":
            m = e.match_found
            if m.match_id not in latest or m.revision > latest[m.match_id].revision:
                latest[m.match_id] = m
            if m.revision == 1:
                proposed.add(m.match_id)
        elif t == "match.feedback" and e.match_feedback.outcome == CM:
            accepted.add(e.match_feedback.match_id)
    want = collections.Counter()
    for kind, measure in (("need", "on"), ("offer", "oo")):
        for cat, com in items[kind].values():
            want["%s|%s|%s" % (measure, cat, com)] += 1
    matched = {m.need_id for m in latest.values() if not m.retired}
    for nid, (cat, com) in items["need"].items():
        if nid not in matched:
            want["un|%s|%s" % (cat, com)] += 1
    return dict(want), len(proposed), len(accepted & proposed)


class FiguresTest(unittest.TestCase):
    def setUp(self):
        self.ws = h.Workspace()

    def tearDown(self):
        self.ws.close(keep=False)

    def check(self, st, label, names=("matcher",)):
        """mg:figures equals both recomputations; returns it."""
        st.settle(names)
        got = figures(st.redis)
        self.assertTrue(all(v > 0 for v in got.values()), (label, got))
        self.assertEqual(got, from_records(st.redis), label)
        self.assertEqual(misplaced_needs(st.redis), [], label)
        places, proposed, accepted = from_journal(st)
        self.assertEqual({k: v for k, v in got.items() if k[:2] in ("on", "oo", "un")}, places, label)
        self.assertEqual(sum(v for k, v in got.items() if k.startswith("mp|")), proposed, label)
        self.assertEqual(sum(v for k, v in got.items() if k.startswith("ma|")), accepted, label)
        return got

    def match_id(self, st, need_id, offer_id):
        ids = {m.match_id for m in st.matches() if (m.need_id, m.offer_id) == (need_id, offer_id)}
        self.assertEqual(len(ids), 1, (need_id, offer_id))
        return ids.pop()

    def test_figures_stay_exact_through_changes_crash_replay_and_a_second_instance(self):
        st = tm.Stack(self.ws)
        st.start_matcher()
        st.emit([tm.member("s-caen", CAEN), tm.member("s-caen-2", CAEN, family="FAMILY_COOPERATIVE"),
                 tm.member("s-herouville", HEROUVILLE), tm.member("s-ifs", IFS, family="FAMILY_COOPERATIVE"),
                 tm.member("s-bayeux", BAYEUX), tm.member("s-lisieux", LISIEUX),
                 tm.member("s-rouen", ROUEN, family="FAMILY_LOCAL_BUSINESS"), tm.member("s-vire", VIRE)])
        st.emit([
            tm.offer("o-caen", "s-caen-2", CAEN, radius=30),
            tm.offer("o-ifs", "s-ifs", IFS, radius=30, tags=("cuisine",)),
            tm.offer("o-bayeux-mat", "s-bayeux", BAYEUX, category="materiel", radius=40,
                     tags=("remorque", "outillage"), title="Remorque et outillage"),
            tm.offer("o-lisieux", "s-lisieux", LISIEUX, category="formation", radius=50,
                     tags=("gestion", "budget"), title="Formation gestion"),
            tm.offer("o-rouen", "s-rouen", ROUEN, radius=10),  # far from everything
            # placed by their territory only: counted at its first entry
            tm.offer("o-terr-dep", "s-rouen", "", category="formation", territory=("dep:14", "dep:76")),
            tm.offer("o-terr-epci", "s-rouen", "", category="numerique", territory=("epci:200065597",)),
        ])
        st.emit([
            tm.need("n-caen", "s-caen", CAEN),
            tm.need("n-herouville", "s-herouville", HEROUVILLE),
            tm.need("n-bayeux", "s-bayeux", BAYEUX, category="formation", tags=("gestion",), title="Gestion"),
            tm.need("n-vire", "s-vire", VIRE, category="numerique", tags=("logiciel",), title="Logiciel"),  # unmet
            tm.need("n-expiring", "s-herouville", HEROUVILLE, valid_until="2026-01-31"),  # expires
            tm.offer("o-expiring", "s-caen", CAEN, category="materiel", valid_until="2026-01-31"),
        ])
        # The expiry round (every second) closes both: wait for it, so that
        # nothing moves while the figures are compared.
        h.wait_until(lambda: len(st.journal("need.closed")) + len(st.journal("offer.withdrawn")) == 2,
                     timeout=15, what="expiry closures")
        first = self.check(st, "opened")
        self.assertGreater(first.get("un|numerique|" + VIRE, 0), 0)
        self.assertGreater(first.get("mp|locaux|" + CAEN, 0), 0)
        self.assertNotIn("on|locaux|" + ROUEN, first)
        self.assertEqual((first.get("oo|formation|dep:14"), first.get("oo|numerique|epci:200065597")), (1, 1))
        # One opened before such offers were counted (its record without the
        # tf flag, the figures without it): its withdrawal must not take
        # o-terr-dep out of their shared cell.
        st.emit([tm.offer("o-terr-old", "s-rouen", "", category="formation", territory=("dep:14",))])
        st.settle()
        fields = st.redis.call("GET", "mg:offer:o-terr-old").split(b"|", 11)
        self.assertIn(b"tf=1", fields[10])
        fields[10] = b",".join(f for f in fields[10].split(b",") if f and f != b"tf=1")
        st.redis.call("SET", "mg:offer:o-terr-old", b"|".join(fields))
        st.redis.call("HINCRBY", "mg:figures", "oo|formation|dep:14", -1)
        st.emit([tm.offer_withdrawn("o-terr-old", "s-rouen")])
        self.assertEqual(self.check(st, "an offer counted before withdrawn").get("oo|formation|dep:14"), 1)

        # An update that moves a need to another category and commune: its
        # locaux pairs are retired, materiel pairs may come.
        st.emit([tm.need("n-herouville", "s-herouville", BAYEUX, category="materiel", tags=("remorque",),
                         title="Remorque", event_type="need.updated")])
        moved = self.check(st, "need moved")
        self.assertEqual(moved.get("on|materiel|" + BAYEUX), 1)
        self.assertNotIn("on|locaux|" + HEROUVILLE, moved)  # n-expiring is closed by now
        # An offer moved to another commune; feedback: given twice (counted
        # once), not relevant (not counted), given then changed (stays).
        mid_caen = self.match_id(st, "n-caen", "o-caen")
        mid_ifs = self.match_id(st, "n-caen", "o-ifs")
        st.emit([tm.offer("o-ifs", "s-ifs", HEROUVILLE, radius=30, tags=("cuisine",), event_type="offer.updated"),
                 feedback(mid_caen, "staff-a", CM), feedback(mid_caen, "staff-b", CM),
                 feedback(mid_ifs, "staff-a", NR), feedback(mid_ifs, "staff-b", CM),
                 feedback(mid_ifs, "staff-b", NR), feedback("m-" + "0" * 32, "staff-a", CM)])
        fed = self.check(st, "offer moved, feedback")
        self.assertEqual(fed.get("ma|locaux|" + CAEN), 2)
        # Closures and withdrawals retire matches: n-caen keeps o-ifs, the
        # need that had only o-caen becomes unmet.
        st.emit([tm.offer_withdrawn("o-caen", "s-caen-2"), tm.need_closed("n-bayeux", "s-bayeux"),
                 tm.offer_withdrawn("o-terr-epci", "s-rouen")])
        self.assertNotIn("oo|numerique|epci:200065597", self.check(st, "closed and withdrawn"))
        # A structure leaves: its items are closed by the matcher's own events.
        st.emit([tm.member_left("s-lisieux")])
        self.check(st, "member left")
        # A retired pair proposed again; a new need on an existing cell.
        st.emit([tm.offer("o-caen-2", "s-caen-2", CAEN, radius=30),
                 tm.need("n-caen-b", "s-herouville", CAEN, tags=("stockage",), title="Stockage")])
        st.emit([tm.need("n-caen", "s-caen", CAEN, category="formation", tags=("gestion",), title="Gestion",
                         event_type="need.updated")])
        st.emit([tm.need("n-caen", "s-caen", CAEN, event_type="need.updated")])
        self.check(st, "retired and proposed again")
        revisions = [m.revision for m in st.matches() if m.match_id == mid_ifs]
        self.assertGreaterEqual(max(revisions), 3, revisions)

        # kill -9 mid-stream, more events of every kind, with offers serving
        # Calvados (their read moves the needs that have a match after those
        # without in mg:idx:need:<cat>:dep:14), one withdrawn.
        events = tm.MatcherTest.dataset(self)
        events[60:60] = [tm.offer("o-dep-%s" % cat, "s-rouen", ROUEN, category=cat, radius=1, territory=("dep:14",))
                         for cat in ("locaux", "materiel", "formation")]
        events += [tm.offer("o-dep-2", "s-rouen", ROUEN, radius=1, territory=("dep:14",)),
                   tm.offer_withdrawn("o-dep-locaux", "s-rouen")]
        for i in range(0, len(events), 10):
            st.emit(events[i:i + 10])
            if i in (30, 70):
                st.matchers[0].stop(signal.SIGKILL)
                st.start_matcher()
        st.matchers[0].stop(signal.SIGKILL)
        st.start_matcher()
        crashed = self.check(st, "after kill -9")
        self.assertGreater(sum(v for k, v in crashed.items() if k.startswith("mp|")), 20)
        self.assertGreater(moved_needs(st.redis), 0)

        # The whole journal replayed: nothing moves.
        st.matchers[0].stop()
        st.redis.call("HSET", "mg:consumer:matcher", "seq", 0)
        d = st.start_matcher()
        self.assertEqual(self.check(st, "replayed"), crashed)
        self.assertIn("checkpoint 0", d.log())

        # A second instance joins (it replays the whole journal) while new
        # events come, and both handle every event.
        st.start_matcher(1)
        more = [tm.need("x-%02d" % i, "s%02d" % (i % 12), [CAEN, IFS, BAYEUX, LISIEUX][i % 4],
                        category=["locaux", "materiel", "formation"][i % 3], tags=("cuisine", "stockage", "atelier"))
                for i in range(16)]
        more += [tm.need_closed("x-%02d" % i, "s%02d" % (i % 12)) for i in range(0, 16, 5)]
        more += [tm.offer_withdrawn("o%02d" % i, "s%02d" % (i % 12)) for i in (1, 7, 13)]
        for i in range(0, len(more), 6):
            st.emit(more[i:i + 6])
        self.check(st, "two instances", names=("matcher", "matcher-1"))

        # Every offer withdrawn: every need loses its matches, and the moved
        # ones move back.
        self.assertGreater(moved_needs(st.redis), 0)
        records = {k.decode()[len("mg:offer:"):]: st.redis.call("GET", k).split(b"|")
                   for k in scan(st.redis, "mg:offer:*")}
        st.emit([tm.offer_withdrawn(oid, f[2].decode()) for oid, f in records.items() if f[1] == b"1"])
        self.check(st, "every offer withdrawn", names=("matcher", "matcher-1"))
        self.assertEqual(moved_needs(st.redis), 0)

    def test_figures_exact_with_two_partitioned_instances(self):
        st = tm.Stack(self.ws, instances=2)
        st.start_matcher(0)
        st.start_matcher(1)
        events = tm.MatcherTest.dataset(self)
        for i in range(0, len(events), 10):
            st.emit(events[i:i + 10])
        got = self.check(st, "partitioned", names=("matcher", "matcher-1"))
        self.assertGreater(sum(v for k, v in got.items() if k.startswith("mp|")), 10)
        # Feedback reaches both instances: one acceptance per match.
        mids = sorted({m.match_id for m in st.matches()})[:4]
        st.emit([feedback(mid, staff, CM) for mid in mids for staff in ("staff-a", "staff-b")])
        got = self.check(st, "partitioned, feedback", names=("matcher", "matcher-1"))
        self.assertEqual(sum(v for k, v in got.items() if k.startswith("ma|")), 4)


if __name__ == "__main__":
    unittest.main()
