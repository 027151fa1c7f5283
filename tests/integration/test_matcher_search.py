"""The matcher's search for a need's candidates by place, against a real
redis-server, broker and matcher.

With `[matcher] max_candidates = 2`, only the two offers nearest the need are
scored, so which offers get proposed shows which ones the search found. The
search (near() in services/matcher/state.c) gets, from the C side
(s_search_spec() in matcher.c), the communes of the table nearest the need's
commune (at most 64 within its radius, nearest first), and takes one of two
paths:

- the walk: when the category is dense enough (nopen * count >= want * total),
  it reads those communes' cells (mg:cell:offer:<cat>:<com>) in turn until it
  has `want` offers; when the list is not complete (more communes lie within
  the radius) and the walk found too few, it goes on with the fallback;
- the fallback: GEOSEARCH of mg:cells:offer:<cat> (the communes that have
  offers) by distance, skipping the communes already read.

Four scenarios around Caen (14118): a dense category where the walk finds
the two nearest offers among 100, a dense category where the 64 communes read
hold nothing and the fallback finds the only offer within the radius
(Lisieux, 45 km), and a sparse category (the fallback alone) that must give
the same result as the walk; and an offer at the very edge of the need's
radius, which the fallback's GEOSEARCH (another Earth radius) must not lose.
Three more check which items of a crowded cell or territory index are read:
a need takes the newest offers (the freshness the score rewards), an offer
the needs waiting longest, never the first ids, and an offer serving a
department the needs waiting longest anywhere in it; and those without a
proposal before those with one. Others check what a search passes over so
it does not take the slots of candidates: the needs or offers an offer's
conditions exclude, and a structure's own items.
Each test checks in Python, from the commune
table, which path its numbers select, and checks the path itself from the
commands the script ran (MONITOR shows a script's commands as "[0 lua]")."""

import csv
import math
import os
import re
import socket
import time
import unittest

import harness as h
import test_matcher as tm  # the Stack and the event builders (as a module: its tests do not run here)

CAEN, EPRON, LISIEUX, HONFLEUR = "14118", "14242", "14366", "14333"
CAEN_LA_MER = "200065597"  # the EPCI of Caen and Épron
CATEGORY = "locaux"
WANT = 2            # [matcher] max_candidates of these tests
NEARBY_MAX = 64     # S_NEARBY_MAX in matcher.c: the communes a search lists
EARTH_KM = 6371.0088  # mg_communes_distance_km()'s mean Earth radius


# ---- the commune table, as the matcher reads it -------------------------------

def _load_communes():
    path = os.path.join(h.SOURCE, "config", "communes-normandie.csv")
    with open(path, newline="", encoding="utf-8") as f:
        return {r["code_insee"]: (float(r["latitude"]), float(r["longitude"]), r["dep_code"])
                for r in csv.DictReader(f)}


COMMUNES = _load_communes()


def km(a, b):
    """Haversine distance between two communes, as mg_communes_distance_km()."""
    return km_from(COMMUNES[a][0], COMMUNES[a][1], b)


def km_from(lat1, lon1, b):
    """Haversine distance between a point and commune `b`."""
    lat2, lon2, _ = COMMUNES[b]
    rad = math.pi / 180.0
    dlat, dlon = (lat2 - lat1) * rad, (lon2 - lon1) * rad
    x = math.sin(dlat / 2) ** 2 + math.cos(lat1 * rad) * math.cos(lat2 * rad) * math.sin(dlon / 2) ** 2
    return 2 * EARTH_KM * math.asin(math.sqrt(min(1.0, x)))


def calvados_centre():
    """The mean position (lat, lon) of Calvados' communes, from which a search
    for a department-wide offer walked before 2026-11-27."""
    calvados = [c for c in COMMUNES if COMMUNES[c][2] == "14"]
    return (sum(COMMUNES[c][0] for c in calvados) / len(calvados),
            sum(COMMUNES[c][1] for c in calvados) / len(calvados))


def central_calvados():
    """The two communes nearest Calvados' centre."""
    lat, lon = calvados_centre()
    return sorted((c for c in COMMUNES if COMMUNES[c][2] == "14"), key=lambda c: km_from(lat, lon, c))[:2]


def calvados_need(nid, sid, commune, **options):
    """Need `nid` of structure `sid` at `commune`, within 5 km."""
    return tm.need(nid, sid, commune, category=CATEGORY, radius=5, **options)


def calvados_offer(oid, **options):
    """Offer `oid` of structure "p-<oid>" at Rouen (no need within its 1 km),
    serving all of Calvados (dep:14)."""
    return tm.offer(oid, "p-" + oid, tm.ROUEN, category=CATEGORY, radius=1, territory=("dep:14",), **options)


def nearest(code):
    """Every commune of the table, nearest `code` first, equal distances by
    code (mg_communes_nearest())."""
    return sorted(COMMUNES, key=lambda c: (km(code, c), c))


def search_list(code, radius_km):
    """What s_search_spec() sends for a search of `radius_km` around `code`:
    (the communes listed, nearest first, whether they are all the communes
    within the radius)."""
    order = nearest(code)[:NEARBY_MAX + 1]
    listed = [c for c in order[:NEARBY_MAX] if km(code, c) <= radius_km]
    k = len(listed)
    complete = k >= len(order) or km(code, order[k]) > radius_km
    return listed, complete


def walks(nopen, listed):
    """near()'s choice: read the listed communes' cells in turn (True), or go
    straight to mg:cells: by distance (False)."""
    return nopen * len(listed) >= WANT * len(COMMUNES)


# ---- what the script read -------------------------------------------------------

class ScriptTrace:
    """A MONITOR connection to the test's Redis: the commands a Lua script
    ran, in order, between start and stop()."""

    LUA = re.compile(r"^\+\S+ \[\d+ lua\] (.*)$")
    ARG = re.compile(r'"((?:[^"\\]|\\.)*)"')

    def __init__(self, redis):
        self.sock = socket.create_connection(("127.0.0.1", redis.port), timeout=10)
        self.buf = b""
        self.sock.sendall(b"MONITOR\r\n")
        assert self._line() == b"+OK"

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("redis closed the MONITOR connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def stop(self, redis):
        """The script's commands up to now, as [name, arg, ...] lists."""
        marker = h.new_id("trace-end")
        redis.call("ECHO", marker)
        out = []
        try:
            while True:
                line = self._line().decode("utf-8", "replace")
                if marker in line:
                    return out
                m = self.LUA.match(line)
                if m:
                    out.append(self.ARG.findall(m.group(1)))
        finally:
            self.sock.close()


def search_steps(commands, kind="offer", category=CATEGORY):
    """The steps of near() for `kind` and `category`: ("cell", <com>) for each
    cell read, ("cells",) for each GEOSEARCH of the communes that have items."""
    cell, cells = "mg:cell:%s:%s:" % (kind, category), "mg:cells:%s:%s" % (kind, category)
    steps = []
    for c in commands:
        if len(c) > 1 and c[0].upper() == "ZRANGE" and c[1].startswith(cell):
            steps.append(("cell", c[1][len(cell):]))
        elif len(c) > 1 and c[0].upper() == "GEOSEARCH" and c[1] == cells:
            steps.append(("cells",))
    return steps


# ---- the scenarios ---------------------------------------------------------------

class MatcherSearchTest(unittest.TestCase):
    def setUp(self):
        self.ws = h.Workspace()

    def tearDown(self):
        self.ws.close(keep=False)

    def search(self, offers, commune, radius, newest=(), territory=()):
        """Publish `offers` ([(offer id, commune, radius)], each by its own
        association; those named in `newest` last, one at a time and 5 ms
        apart, in that order, so the broker stamps each later than the one
        before; those named in `territory` serving the need's department),
        let the matcher settle, then report need "n1" of an association at
        `commune` within `radius` km. Returns the need's match.found events,
        its open matches (mg:nm:n1) and near()'s steps."""
        st = tm.Stack(self.ws, max_candidates=WANT, max_proposals=10, collective_min_structures=0)
        st.start_matcher()
        members = [tm.member("asso-need", commune)] + [tm.member("p-" + oid, com) for oid, com, _ in offers]
        dep = ("dep:" + COMMUNES[commune][2],)
        items = {oid: tm.offer(oid, "p-" + oid, com, category=CATEGORY, radius=r,
                               territory=dep if oid in territory else ())
                 for oid, com, r in offers}
        for batch in (members, [e for oid, e in items.items() if oid not in newest]):
            for i in range(0, len(batch), 100):
                st.emit(batch[i:i + 100])
        for oid in newest:
            time.sleep(0.005)
            st.emit([items[oid]])
        st.settle()
        self.assertEqual(st.matches(), [])
        self.assertEqual(st.redis.call("ZCARD", "mg:open:offer:" + CATEGORY), len(offers))
        trace = ScriptTrace(st.redis)
        st.emit([tm.need("n1", "asso-need", commune, category=CATEGORY, radius=radius)])
        st.settle()
        steps = search_steps(trace.stop(st.redis))
        found = [m for m in st.matches() if m.need_id == "n1"]
        nm = sorted(o.decode() for o in st.redis.call("ZRANGE", "mg:nm:n1", 0, -1))
        return found, nm, steps

    def stack_with_needs(self, members, needs, max_candidates=4):
        """A stack with `max_candidates` (by default 4: 2 per territory entry)
        where `members` joined, then `needs` were reported in that order, 5 ms
        apart, so that each waits longer than the next; settled."""
        st = tm.Stack(self.ws, max_candidates=max_candidates, max_proposals=10, collective_min_structures=0)
        st.start_matcher()
        st.emit(members)
        for need in needs:
            time.sleep(0.005)
            st.emit([need])
        st.settle()
        return st

    def near_caen(self):
        """The offers nearest Caen: one at Caen, two at Épron, the 7th commune
        of the table nearest Caen (3.9 km): the walk reads Caen, six empty
        cells, then Épron's, where it takes the newest offer (o-epron-2, given
        to search() as `newest`: not the first by id)."""
        order = nearest(CAEN)
        self.assertEqual(order.index(EPRON), 6)
        return [("o-caen", CAEN, 50), ("o-epron-1", EPRON, 50), ("o-epron-2", EPRON, 50)]

    def assert_found(self, found, nm, expected):
        """`expected` (offer ids, best first) proposed to n1, and nothing else."""
        self.assertEqual(sorted((m.rank, m.offer_id) for m in found), list(enumerate(expected, 1)),
                         [(m.offer_id, round(m.distance_km, 1), m.explanation) for m in found])
        self.assertTrue(all(m.revision == 1 and not m.retired for m in found))
        self.assertEqual(nm, sorted(expected))

    def test_dense_category_walks_the_nearest_communes(self):
        order = nearest(CAEN)
        listed, complete = search_list(CAEN, 30)
        # 100 offers: 3 nearest Caen, decoys at each of the other communes of
        # the list from the 8th (4.1 to 11.6 km: a walk in another order, or
        # one that does not stop at 2 offers, proposes some of them), and 40
        # more between 20 and 29 km (within the need's radius, outside the
        # list). Every one would qualify (same tags, two ESS associations).
        offers = self.near_caen()
        offers += [("o-list-" + c, c, 50) for c in listed[7:]]
        offers += [("o-far-" + c, c, 50) for c in order if 20 <= km(CAEN, c) <= 29][:40]
        self.assertEqual(len(offers), 100)
        self.assertEqual(len({com for _, com, _ in offers}), 99)
        # The walk path: 64 communes listed within 30 km (276 lie within it,
        # so the list is not complete), 100 * 64 >= 2 * 2644.
        self.assertEqual((len(listed), complete, len(COMMUNES)), (NEARBY_MAX, False, 2644))
        self.assertTrue(walks(len(offers), listed))

        found, nm, steps = self.search(offers, CAEN, 30, newest=["o-epron-2"])
        self.assert_found(found, nm, ["o-caen", "o-epron-2"])
        self.assertLess(found[0].distance_km, 0.1)
        # The walk read the 7 nearest communes' cells, nearest first, and
        # stopped: no search of mg:cells:.
        self.assertEqual(steps, [("cell", c) for c in listed[:7]])

    def test_walk_of_an_incomplete_list_goes_on_by_distance(self):
        listed, complete = search_list(CAEN, 60)
        # One offer within the need's 60 km: at Lisieux (45 km, far beyond
        # the 64 communes nearest Caen, which lie within 11.6 km). 100 more
        # in Seine-Maritime, 75 km or more from Caen: open offers of the
        # category, counted by the density test, outside every search.
        self.assertNotIn(LISIEUX, listed)
        self.assertTrue(40 < km(CAEN, LISIEUX) < 50)
        far = [c for c in sorted(COMMUNES) if COMMUNES[c][2] == "76" and km(CAEN, c) >= 75][:100]
        self.assertEqual(len(far), 100)
        offers = [("o-lisieux", LISIEUX, 60)] + [("o-76-" + c, c, 50) for c in far]
        # The walk path first (101 * 64 >= 2 * 2644), over a list that is
        # not complete: the fallback must go on.
        self.assertEqual((len(listed), complete), (NEARBY_MAX, False))
        self.assertTrue(walks(len(offers), listed))

        found, nm, steps = self.search(offers, CAEN, 60)
        self.assert_found(found, nm, ["o-lisieux"])
        self.assertGreater(found[0].distance_km, 40)
        # The 64 listed cells in order (all empty), then mg:cells: by
        # distance (a circle growing up to 60 km), which leads to Lisieux
        # and nowhere else.
        self.assertEqual(steps[:NEARBY_MAX], [("cell", c) for c in listed])
        self.assertIn(("cells",), steps[NEARBY_MAX:])
        self.assertEqual([s for s in steps[NEARBY_MAX:] if s[0] == "cell"], [("cell", LISIEUX)])
        self.assertEqual(steps[-1], ("cell", LISIEUX))

    def test_sparse_category_finds_the_same_nearest_offers(self):
        listed, complete = search_list(CAEN, 30)
        # The three offers of the dense test nearest Caen, a decoy at the
        # 8th commune and one at 25 km: 5 * 64 < 2 * 2644, the fallback path.
        offers = self.near_caen()
        offers += [("o-list-" + listed[7], listed[7], 50)]
        offers += [("o-far-" + c, c, 50) for c in nearest(CAEN) if 25 <= km(CAEN, c) <= 29][:1]
        self.assertEqual(len(offers), 5)
        self.assertFalse(walks(len(offers), listed))

        found, nm, steps = self.search(offers, CAEN, 30, newest=["o-epron-2"])
        self.assert_found(found, nm, ["o-caen", "o-epron-2"])
        # No walk: mg:cells: by distance first, then the cells of Caen and
        # Épron only.
        self.assertEqual(steps[0], ("cells",))
        self.assertEqual([s for s in steps if s[0] == "cell"], [("cell", CAEN), ("cell", EPRON)])

    def test_an_offer_at_the_edge_of_the_radius_is_found(self):
        # Redis' GEO distances use a larger Earth radius than the commune
        # table's (the filters' distance): 61436 is 49.99 km from Caen by the
        # table, 50.005 km for GEOSEARCH. The fallback's circle must not lose it.
        edge = "61436"
        self.assertTrue(49.9 < km(CAEN, edge) < 50.0)
        offers = [("o-edge", edge, 60)]
        self.assertFalse(walks(len(offers), search_list(CAEN, 50)[0]))

        found, nm, _ = self.search(offers, CAEN, 50)
        self.assert_found(found, nm, ["o-edge"])

    def test_a_need_takes_the_newest_offers_of_a_cell_and_of_its_department(self):
        # Four offers at Épron and three at Honfleur (beyond both radii,
        # serving all of Calvados), each published 5 ms after the one before,
        # in id order. The need at Épron takes the two newest of Épron's cell
        # (WANT) and the newest of the department's (mg:idx:offer:...:terr:
        # dep:14, WANT / 2): by id, it would take the oldest.
        self.assertGreater(km(EPRON, HONFLEUR), 40)
        epron = [("o-epron-%d" % k, EPRON, 50) for k in range(1, 5)]
        dep = [("o-dep-%d" % k, HONFLEUR, 10) for k in range(1, 4)]
        everything = [oid for oid, _, _ in epron + dep]
        found, nm, steps = self.search(epron + dep, EPRON, 5, newest=everything,
                                       territory=[oid for oid, _, _ in dep])
        expected = ["o-dep-3", "o-epron-3", "o-epron-4"]
        self.assertEqual(sorted(m.offer_id for m in found), expected,
                         [(m.offer_id, m.explanation) for m in found])
        self.assertEqual(nm, expected)
        # A sparse category: mg:cells: by distance, then Épron's cell alone.
        self.assertEqual(steps, [("cells",), ("cell", EPRON)])

    def test_an_offer_takes_the_needs_waiting_longest(self):
        # Needs n-4 (reported first) to n-1 at Épron, 5 ms apart, then an
        # offer there: it takes the WANT needs reported first (oldest first
        # in the cell); by id it would take n-1 and n-2.
        st = tm.Stack(self.ws, max_candidates=WANT, max_proposals=10, collective_min_structures=0)
        st.start_matcher()
        st.emit([tm.member("asso-%d" % k, EPRON) for k in range(1, 5)] + [tm.member("p-o1", EPRON)])
        for k in (4, 3, 2, 1):
            time.sleep(0.005)
            st.emit([tm.need("n-%d" % k, "asso-%d" % k, EPRON, category=CATEGORY, radius=30)])
        st.settle()
        self.assertEqual(st.matches(), [])
        st.emit([tm.offer("o1", "p-o1", EPRON, category=CATEGORY, radius=30)])
        st.settle()
        found = st.matches()
        self.assertEqual(sorted(m.need_id for m in found), ["n-3", "n-4"],
                         [(m.need_id, m.explanation) for m in found])
        self.assertTrue(all(m.offer_id == "o1" and m.revision == 1 for m in found))

    def test_a_department_wide_offer_takes_the_needs_waiting_longest_across_it(self):
        # A need at Caen valid from next year, reported first, then needs at
        # Vire and Honfleur, at the edges of Calvados, then at the two
        # communes nearest its centre (the mean position of its communes,
        # from which the search walked before 2026-11-27), 5 ms apart; then an
        # offer at Rouen (no need within its 1 km) serving dep:14, with
        # max_candidates = 4 (2 per territory entry): it takes the two needs
        # waiting longest in the department, not the two nearest its centre,
        # and the need not valid yet waits from its valid_from day, so it does
        # not take their place.
        central = central_calvados()
        self.assertTrue(min(km_from(*calvados_centre(), c) for c in (tm.VIRE, HONFLEUR)) > 30)
        places = [("n-later", CAEN), ("n-vire", tm.VIRE), ("n-honfleur", HONFLEUR), ("n-centre-1", central[0]),
                  ("n-centre-2", central[1])]
        st = self.stack_with_needs(
            [tm.member("a-" + nid, com) for nid, com in places] + [tm.member("p-o1", tm.ROUEN)],
            [calvados_need(nid, "a-" + nid, com, valid_from=tm.paris_date(365) if nid == "n-later" else "")
             for nid, com in places])
        self.assertEqual(st.matches(), [])
        st.emit([calvados_offer("o1")])
        st.settle()
        found = st.matches()
        self.assertEqual(sorted(m.need_id for m in found), ["n-honfleur", "n-vire"],
                         [(m.need_id, m.explanation) for m in found])

    def test_an_offer_takes_first_the_needs_without_a_proposal(self):
        # Needs at Vire and Honfleur, then at the two communes nearest
        # Calvados' centre, then at Caen, 5 ms apart; offers at Rouen (no
        # need within their 1 km) serving dep:14, with max_candidates = 4 (2
        # per territory entry). o1 takes the two needs waiting longest (Vire,
        # Honfleur); o2 the two next, which have no proposal yet, not Vire and
        # Honfleur again, though they waited longer (it moves them after the
        # needs without a proposal in the department's index); once o1 is
        # withdrawn, Vire and Honfleur have none again, move back, and o3
        # takes them, not the need at Caen and one of them. (An update of o2
        # in between keeps its two needs: they are its candidates already.)
        central = central_calvados()
        places = [("n-vire", tm.VIRE), ("n-honfleur", HONFLEUR), ("n-centre-1", central[0]),
                  ("n-centre-2", central[1]), ("n-caen", CAEN)]
        st = self.stack_with_needs(
            [tm.member("a-" + nid, com) for nid, com in places] + [tm.member("p-o%d" % k, tm.ROUEN) for k in (1, 2, 3)],
            [calvados_need(nid, "a-" + nid, com) for nid, com in places])

        def publish_and_expect(oid, needs):
            st.emit([calvados_offer(oid)])
            st.settle()
            found = [m for m in st.matches() if m.offer_id == oid]
            self.assertEqual(sorted(m.need_id for m in found), needs, [(m.need_id, m.explanation) for m in found])

        def moved():
            index = st.redis.call("ZRANGE", "mg:idx:need:%s:dep:14" % CATEGORY, 0, -1, "WITHSCORES")
            return sorted(n.decode() for n, score in zip(index[::2], index[1::2]) if float(score) >= 1e15)

        publish_and_expect("o1", ["n-honfleur", "n-vire"])
        self.assertEqual(moved(), [])
        publish_and_expect("o2", ["n-centre-1", "n-centre-2"])
        self.assertEqual(moved(), ["n-honfleur", "n-vire"])
        # An update of o2 reads its own needs again, as taken: it does not
        # spread to the need at Caen.
        st.emit([calvados_offer("o2", title="Cuisine et stockage, mis à jour", event_type="offer.updated")])
        st.settle()
        self.assertEqual(sorted({m.need_id for m in st.matches() if m.offer_id == "o2"}), ["n-centre-1", "n-centre-2"])
        st.emit([tm.offer_withdrawn("o1", "p-o1")])
        h.wait_until(lambda: sum(m.retired for m in st.matches()) == 2, timeout=15, what="o1's matches retired")
        st.settle()
        self.assertEqual(moved(), [])
        publish_and_expect("o3", ["n-honfleur", "n-vire"])

    def test_a_department_wide_read_passes_over_its_provider_s_needs_and_those_proposed(self):
        # Needs in Calvados, 5 ms apart: n-1 of p-o2 itself (at Vire), n-2
        # (Honfleur), n-3 and n-4 (central), n-5 (Caen); an offer at
        # Honfleur (5 km) is proposed to n-2. Then o2 of p-o2, at Rouen,
        # serving dep:14 with max_candidates = 4 (2 from the department):
        # its first read (n-1, n-2) passes over its own need and moves n-2,
        # its second starts after n-1 and takes n-3 and n-4.
        central = central_calvados()
        self.assertTrue(all(km(HONFLEUR, c) > 10 for c in central + [tm.VIRE, CAEN]))
        places = [("n-1", "p-o2", tm.VIRE), ("n-2", "a-2", HONFLEUR), ("n-3", "a-3", central[0]),
                  ("n-4", "a-4", central[1]), ("n-5", "a-5", CAEN)]
        st = self.stack_with_needs(
            [tm.member(sid, com) for _, sid, com in places[1:]]
            + [tm.member("p-o2", tm.ROUEN), tm.member("p-near", HONFLEUR)],
            [calvados_need(nid, sid, com) for nid, sid, com in places])
        st.emit([tm.offer("o-near", "p-near", HONFLEUR, category=CATEGORY, radius=5)])
        st.settle()
        self.assertEqual([m.need_id for m in st.matches()], ["n-2"])
        st.emit([calvados_offer("o2")])
        st.settle()
        found = [m for m in st.matches() if m.offer_id == "o2"]
        self.assertEqual(sorted(m.need_id for m in found), ["n-3", "n-4"],
                         [(m.need_id, m.explanation) for m in found])
        index = st.redis.call("ZRANGE", "mg:idx:need:%s:dep:14" % CATEGORY, 0, -1)
        self.assertEqual([n.decode() for n in index], ["n-1", "n-3", "n-4", "n-5", "n-2"])

    def test_a_department_wide_read_passes_over_the_needs_its_conditions_exclude(self):
        # Needs in Calvados, 5 ms apart: n-1 of a structure outside the
        # network "reseau-x", n-2 of a local business in it, then n-3 to n-5
        # of ESS structures in it. o1, at Rouen, serving dep:14 with
        # max_candidates = 4 (2 from the department), is reserved to ESS
        # members of reseau-x in Calvados: it passes over n-1 and n-2 (the
        # two waiting longest) and takes n-3 and n-4.
        central = central_calvados()
        places = [("n-1", tm.member("a-1", tm.VIRE), tm.VIRE),
                  ("n-2", tm.member("a-2", HONFLEUR, family="FAMILY_LOCAL_BUSINESS", networks=("reseau-x",)),
                   HONFLEUR),
                  ("n-3", tm.member("a-3", central[0], networks=("cress-normandie", "reseau-x")), central[0]),
                  ("n-4", tm.member("a-4", central[1], family="FAMILY_COOPERATIVE", networks=("reseau-x",)),
                   central[1]),
                  ("n-5", tm.member("a-5", CAEN, networks=("reseau-x",)), CAEN)]
        st = self.stack_with_needs(
            [m for _, m, _ in places] + [tm.member("p-o1", tm.ROUEN)],
            [calvados_need(nid, m.member_joined.structure.structure_id, com) for nid, m, com in places])
        o1 = calvados_offer("o1", member_of=("reseau-x",))
        o1.offer_published.offer.conditions.ess_only = True
        o1.offer_published.offer.conditions.departments.append("14")
        st.emit([o1])
        st.settle()
        found = [m for m in st.matches() if m.offer_id == "o1"]
        self.assertEqual(sorted(m.need_id for m in found), ["n-3", "n-4"],
                         [(m.need_id, m.explanation) for m in found])

    def test_an_offer_with_conditions_passes_over_the_needs_they_exclude_everywhere(self):
        # With max_candidates = 2 (1 per territory entry), needs 5 ms apart:
        # n-1 of p-o1 itself and n-2 of a structure outside "reseau-x", both
        # at Caen, then n-3 of a member of reseau-x at Épron (3.9 km). o1 of
        # p-o1, at Caen within 10 km, and o2, at Rouen serving Caen la Mer
        # (its EPCI), are reserved to members of reseau-x: o1's radius and
        # its commune read n-1 and n-2 first, o2's EPCI index n-1; each
        # passes over them and takes n-3. Before, both proposed nothing.
        places = [("n-1", tm.member("p-o1", CAEN), CAEN), ("n-2", tm.member("a-2", CAEN), CAEN),
                  ("n-3", tm.member("a-3", EPRON, networks=("reseau-x",)), EPRON)]
        st = self.stack_with_needs(
            [m for _, m, _ in places] + [tm.member("p-o2", tm.ROUEN)],
            [tm.need(nid, m.member_joined.structure.structure_id, com, category=CATEGORY, radius=10)
             for nid, m, com in places], max_candidates=WANT)
        self.assertEqual(st.matches(), [])
        self.assertEqual([n.decode() for n in st.redis.call("ZRANGE", "mg:cell:need:%s:%s" % (CATEGORY, CAEN), 0, -1)],
                         ["n-1", "n-2"])
        st.emit([tm.offer("o1", "p-o1", CAEN, category=CATEGORY, radius=10, member_of=("reseau-x",)),
                 tm.offer("o2", "p-o2", tm.ROUEN, category=CATEGORY, radius=1, territory=("epci:" + CAEN_LA_MER,),
                          member_of=("reseau-x",))])
        st.settle()
        self.assertEqual(sorted((m.offer_id, m.need_id) for m in st.matches()), [("o1", "n-3"), ("o2", "n-3")],
                         [(m.offer_id, m.need_id, m.explanation) for m in st.matches()])

    def test_a_need_passes_over_the_offers_whose_conditions_exclude_it(self):
        # With max_candidates = 2 (1 per territory entry), offers 5 ms apart:
        # o-near-1 at Épron (3.9 km) and o-dep-1 at Rouen serving dep:14, for
        # anyone, then o-near-2 and o-near-3 at Caen and o-dep-2 serving
        # dep:14, reserved to members of "reseau-x". A need at Caen of a
        # structure outside it reads the newest first: the reserved ones, in
        # its radius and in its department's index; it passes over them and
        # takes o-near-1 and o-dep-1. Before, it proposed nothing. Once the
        # reserved offers are withdrawn, nothing is left of their conditions.
        st = tm.Stack(self.ws, max_candidates=WANT, max_proposals=10, collective_min_structures=0)
        st.start_matcher()
        offers = [("o-near-1", EPRON, (), ()), ("o-dep-1", tm.ROUEN, ("dep:14",), ()),
                  ("o-near-2", CAEN, (), ("reseau-x",)), ("o-near-3", CAEN, (), ("reseau-x",)),
                  ("o-dep-2", tm.ROUEN, ("dep:14",), ("reseau-x",))]
        st.emit([tm.member("p-" + oid, com) for oid, com, _, _ in offers] + [tm.member("a-1", CAEN)])
        for oid, com, territory, member_of in offers:
            time.sleep(0.005)
            st.emit([tm.offer(oid, "p-" + oid, com, category=CATEGORY, radius=1 if territory else 10,
                              territory=territory, member_of=member_of)])
        st.settle()
        self.assertEqual(sorted(st.redis.call("HKEYS", "mg:cond:offer:" + CATEGORY)),
                         [b"o-dep-2", b"o-near-2", b"o-near-3"])
        st.emit([tm.need("n-1", "a-1", CAEN, category=CATEGORY, radius=10)])
        st.settle()
        self.assertEqual(sorted(m.offer_id for m in st.matches()), ["o-dep-1", "o-near-1"],
                         [(m.offer_id, m.explanation) for m in st.matches()])
        st.emit([tm.offer_withdrawn(oid, "p-" + oid) for oid in ("o-near-2", "o-near-3", "o-dep-2")])
        st.settle()
        self.assertEqual(st.redis.call("EXISTS", "mg:cond:offer:" + CATEGORY), 0)

    def own_offers_first(self, others=0):
        """With max_candidates = 2: a-1 publishes ten offers at Caen, the
        newest of the category, after o-near at Épron (3.9 km), and `others`
        offers of another category; then a-1 reports a need at Caen. Its
        radius reads Caen's cell first, newest first: a-1's own offers, which
        it can never be proposed, more than the 4 x 2 a read looks at (they
        do not count). Returns the need's matches."""
        st = tm.Stack(self.ws, max_candidates=WANT, max_proposals=10, collective_min_structures=0)
        st.start_matcher()
        st.emit([tm.member("a-1", CAEN), tm.member("p-near", EPRON)])
        for i in range(0, others, 100):
            st.emit([tm.offer("o-other-%d" % k, "a-1", CAEN, category="formation")
                     for k in range(i, min(others, i + 100))])
        st.emit([tm.offer("o-near", "p-near", EPRON, category=CATEGORY, radius=10)])
        time.sleep(0.005)
        st.emit([tm.offer("o-own-%d" % k, "a-1", CAEN, category=CATEGORY, radius=10) for k in range(10)])
        st.settle()
        self.assertEqual(st.matches(), [])
        self.assertEqual(st.redis.call("SCARD", "mg:structure:a-1:items"), others + 10)
        st.emit([tm.need("n-1", "a-1", CAEN, category=CATEGORY, radius=10)])
        st.settle()
        return sorted((m.need_id, m.offer_id) for m in st.matches()), [(m.offer_id, m.explanation)
                                                                       for m in st.matches()]

    def test_a_need_passes_over_its_own_structure_s_offers(self):
        # It passes over them and takes o-near. Before, they filled its two
        # slots, or its look at 8, and it proposed nothing. (a-1's offers of
        # another category are not in its cells: it reads its items'
        # categories.)
        found, why = self.own_offers_first(others=3)
        self.assertEqual(found, [("n-1", "o-near")], why)

    def test_a_need_of_a_structure_with_many_items_passes_over_its_offers(self):
        # The same with 40 more offers of a-1 (over OWN_READ_MAX, 32, in
        # state.c): its items are asked per read (SMISMEMBER), not read whole.
        found, why = self.own_offers_first(others=40)
        self.assertEqual(found, [("n-1", "o-near")], why)

    def test_an_offer_passes_over_its_provider_s_needs(self):
        # With max_candidates = 2 (1 per territory entry), needs 5 ms apart:
        # n-1 to n-10 of p-o1 at Caen, waiting longest, then n-11 of a-3 at
        # Épron (3.9 km). p-o1's offer at Caen, without conditions, reads the
        # needs waiting longest within its 10 km and in its commune: its
        # provider's, more than the 4 x 2 a read looks at, which it passes
        # over uncounted, and takes n-11. Before, it proposed nothing.
        places = [("n-%d" % k, "p-o1", CAEN) for k in range(1, 11)] + [("n-11", "a-3", EPRON)]
        st = self.stack_with_needs(
            [tm.member("p-o1", CAEN), tm.member("a-3", EPRON)],
            [tm.need(nid, sid, com, category=CATEGORY, radius=10) for nid, sid, com in places],
            max_candidates=WANT)
        self.assertEqual(st.matches(), [])
        st.emit([tm.offer("o1", "p-o1", CAEN, category=CATEGORY, radius=10)])
        st.settle()
        self.assertEqual(sorted((m.offer_id, m.need_id) for m in st.matches()), [("o1", "n-11")],
                         [(m.offer_id, m.need_id, m.explanation) for m in st.matches()])


if __name__ == "__main__":
    unittest.main()
