"""maillage-matcher against a real redis-server, broker and ZeroMQ sockets.

Hand-checked scenarios on real communes of Calvados (Caen 14118,
Hérouville-Saint-Clair 14327 and Ifs 14341 in CU Caen la Mer, Bayeux 14047,
Lisieux 14366, Rouen 76540), then the fault scenarios: a journal replay, a
kill -9 mid-stream and two instances must give exactly the matches of a clean
single run. Every test starts its own Redis, broker and matcher(s)."""

import datetime
import os
import re
import signal
import subprocess
import time
import unittest
import zoneinfo

import harness as h

CAEN, HEROUVILLE, IFS, BAYEUX, LISIEUX, ROUEN = "14118", "14327", "14341", "14047", "14366", "76540"
# Around Vire, three EPCIs within 15 km of Tinchebray-Bocage: Vire Normandie
# (CC Intercom de la Vire au Noireau, 14.3 km), Sourdeval (CA Mont-Saint-
# Michel-Normandie, 12.0 km), Tinchebray-Bocage (CC Domfront Tinchebray
# Interco); Saint-Lô is 36 km or more from all three.
VIRE, SOURDEVAL, TINCHEBRAY, SAINT_LO = "14762", "50582", "61486", "50502"
TODAY = time.strftime("%Y-%m-%d")
DAY_MS = 86400000


def paris_date(offset_days=0):
    """The date in Europe/Paris `offset_days` from now (the matcher's "today")."""
    return (datetime.datetime.now(zoneinfo.ZoneInfo("Europe/Paris"))
            + datetime.timedelta(days=offset_days)).strftime("%Y-%m-%d")


# ---- events ---------------------------------------------------------------------

def _env(type_, event_id=None):
    return h.Envelope(event_id=event_id or h.new_id(), type=type_, occurred_at_ms=int(time.time() * 1000))


def member(sid, commune=CAEN, family="FAMILY_ASSOCIATION", naf="88.99B", networks=("cress-normandie",),
           contact=True, event_type="member.joined"):
    env = _env(event_type)
    body = env.member_joined if event_type == "member.joined" else env.member_updated
    s = body.structure
    s.structure_id = sid
    s.name = "Structure " + sid
    s.family = h.events_pb2.Family.Value(family)
    s.naf_code = naf
    s.commune = commune
    s.networks.extend(networks)
    if contact:
        s.contact.name = "Camille Martin"
        s.contact.email = "camille@%s.example.org" % sid
    if event_type == "member.joined":
        body.network = "cress-normandie"
        body.joined_on = TODAY
    return env


def need(nid, sid, commune=CAEN, category="locaux", radius=30, tags=("cuisine", "stockage"),
         title="Cuisine partagée et stockage", description="", valid_until="", event_type="need.reported",
         valid_from=""):
    env = _env(event_type)
    n = (env.need_reported if event_type == "need.reported" else env.need_updated).need
    n.need_id = nid
    n.structure_id = sid
    n.category = category
    n.commune = commune
    n.radius_km = radius
    n.tags.extend(tags)
    n.title = title
    n.description = description
    n.valid_until = valid_until
    n.valid_from = valid_from
    return env


def offer(oid, sid, commune=CAEN, category="locaux", radius=20, tags=("cuisine", "stockage"),
          title="Cuisine professionnelle et stockage", territory=(), valid_until="", member_of=(),
          event_type="offer.published", valid_from=""):
    env = _env(event_type)
    o = (env.offer_published if event_type == "offer.published" else env.offer_updated).offer
    o.offer_id = oid
    o.provider_id = sid
    o.category = category
    o.commune = commune
    o.radius_km = radius
    o.tags.extend(tags)
    o.title = title
    o.territory.extend(territory)
    o.valid_until = valid_until
    o.valid_from = valid_from
    o.conditions.member_of.extend(member_of)
    return env


def need_closed(nid, sid):
    env = _env("need.closed")
    env.need_closed.need_id = nid
    env.need_closed.structure_id = sid
    env.need_closed.reason = h.events_pb2.CLOSURE_SATISFIED
    return env


def offer_withdrawn(oid, sid):
    env = _env("offer.withdrawn")
    env.offer_withdrawn.offer_id = oid
    env.offer_withdrawn.provider_id = sid
    env.offer_withdrawn.reason = h.events_pb2.CLOSURE_CANCELLED
    return env


def feedback(match_id, staff, outcome):
    env = _env("match.feedback")
    env.match_feedback.match_id = match_id
    env.match_feedback.staff_id = staff
    env.match_feedback.outcome = outcome
    return env


def member_left(sid):
    env = _env("member.left")
    env.member_left.structure_id = sid
    env.member_left.network = "cress-normandie"
    env.member_left.left_on = TODAY
    return env


# ---- a stack ----------------------------------------------------------------------

class Stack:
    """Redis + broker + matcher(s) in one workspace."""

    def __init__(self, ws, broker=None, more_sections=None, **matcher):
        self.ws = ws
        self.redis = ws.own(h.Redis(ws.dir).start())
        self.broker, self.sections = h.start_broker(ws, self.redis, more_sections=more_sections, **(broker or {}))
        self.client = ws.own(h.IngestClient(self.sections["broker"]["ingest"]))
        self.matcher_options = {"expiry_interval_s": 1, "collective_min_structures": 3}
        self.matcher_options.update(matcher)
        self.matchers = {}

    def start_matcher(self, instance=0, env=None, **options):
        sections = dict(self.sections)
        m = dict(self.matcher_options)
        m["instance"] = instance
        m.update(options)
        sections["matcher"] = m
        conf = h.write_config(self.ws.path("matcher-%d-%s.conf" % (instance, h.new_id("c"))), sections)
        d = self.ws.own(h.Daemon(self.ws.dir, "maillage-matcher", conf, env=env))
        d.start(ready="matcher: ready")
        self.matchers[instance] = d
        return d

    def emit(self, envelopes):
        acks = self.client.emit_many(envelopes, timeout=20)
        for e in envelopes:
            a = acks[e.event_id]
            assert a.status == h.ACCEPTED, (e.event_id, a)

    def journal(self, prefix=""):
        out = []
        for entry_id, fields in self.redis.call("XRANGE", "mg:journal", "-", "+"):
            f = dict(zip(fields[::2], fields[1::2]))
            if not f[b"t"].decode().startswith(prefix):
                continue
            env = h.Envelope()
            env.ParseFromString(f[b"e"])
            env.sequence = int(entry_id.split(b"-")[0])
            out.append(env)
        return out

    def matches(self):
        return [e.match_found for e in self.journal("match.found")]

    def settle(self, names=("matcher",), timeout=30.0, quiet=0.6):
        """Wait until every named consumer has completed the whole journal,
        the outbox is empty, and nothing moved for `quiet` seconds."""
        return h.settle(self.redis, names, timeout, quiet)


def stored_match(st, match_id):
    """mg:mexp:<mid>: the MatchFound of the pair's latest revision."""
    found = h.events_pb2.MatchFound()
    found.ParseFromString(st.redis.call("GET", "mg:mexp:" + match_id))
    return found


def stored_collectives(st):
    """Every hash listed in mg:collectives -> the CollectiveNeedDetected in its `pb`."""
    out = {}
    for key in st.redis.call("SMEMBERS", "mg:collectives"):
        cn = h.events_pb2.CollectiveNeedDetected()
        cn.ParseFromString(st.redis.call("HGET", key, "pb"))
        out[key.decode()] = cn
    return out


def open_pairs(matches):
    """The match ids proposed and not retired at the end: what staff see."""
    last = {}
    for m in matches:
        if m.match_id not in last or m.revision > last[m.match_id].revision:
            last[m.match_id] = m
    return sorted(mid for mid, m in last.items() if not m.retired)


def summary(matches):
    """What staff end up with: per match id, its last revision, retired flag
    and score (2 decimals), plus every (id, revision) emitted."""
    last = {}
    for m in matches:
        if m.match_id not in last or m.revision > last[m.match_id][0]:
            last[m.match_id] = (m.revision, m.retired, round(m.score, 2), m.need_id, m.offer_id)
    revisions = sorted((m.match_id, m.revision) for m in matches)
    return last, revisions


class MatcherTest(unittest.TestCase):
    def setUp(self):
        self.ws = h.Workspace()

    def tearDown(self):
        self.ws.close(keep=False)

    def clocked_stack(self, **matcher):
        """A Stack whose matcher acts on a test clock, at offset 0 until
        h.set_clock(): (the stack, its matcher, the clock file)."""
        clock = self.ws.path("clock")
        h.set_clock(clock, 0)
        st = Stack(self.ws, **matcher)
        return st, st.start_matcher(env={"MAILLAGE_CLOCK_FILE": clock}), clock

    def twelve_offers_waiting(self, **matcher):
        """A Stack whose matcher is stopped with twelve offers of twelve
        cooperatives of Caen to apply in the journal (asso-caen, a member,
        to report needs)."""
        st = Stack(self.ws, **matcher)
        st.start_matcher()
        st.emit([member("asso-caen", CAEN)] + [member("s%02d" % i, CAEN, family="FAMILY_COOPERATIVE")
                                               for i in range(12)])
        st.settle()
        st.matchers[0].stop()
        st.emit([offer("o%02d" % i, "s%02d" % i, CAEN) for i in range(12)])
        return st

    def valid_from_rounds(self, st, d, date, timeout=30):
        """Wait until the valid_from round of `date` ("YYYY-MM-DD") is done;
        returns how many items each of its parts matched again."""
        day = (datetime.date.fromisoformat(date) - datetime.date(1970, 1, 1)).days
        h.wait_until(lambda: st.redis.call("HGET", "mg:start:done", "m") == str(day).encode(), timeout, 0.1,
                     "the day's round to be done")
        return [int(n) for n in re.findall(r"matcher: (\d+) item\(s\) valid from today matched again", d.log())]

    # -- hand-checked scenarios ------------------------------------------------------

    def test_obvious_matches_found_in_order_and_non_matches_absent(self):
        st = Stack(self.ws)
        st.start_matcher()
        st.emit([
            member("asso-caen", CAEN),
            member("scop-caen", CAEN, family="FAMILY_COOPERATIVE", naf="88.99B"),
            member("asso-herouville", HEROUVILLE, naf="56.21Z"),
            member("biz-rouen", ROUEN, family="FAMILY_LOCAL_BUSINESS", naf="68.20B"),
        ])
        st.emit([
            # The best: same commune, both keywords.
            offer("o-near", "scop-caen", CAEN, tags=("cuisine", "stockage")),
            # Good: 3 km away, one keyword.
            offer("o-mid", "asso-herouville", HEROUVILLE, tags=("cuisine",), title="Salle avec cuisine"),
            # Non-matches: another category, beyond the radius, expired,
            # reserved to a network, the same structure, withdrawn.
            offer("o-other-category", "scop-caen", CAEN, category="materiel"),
            offer("o-far", "biz-rouen", ROUEN, radius=40),
            offer("o-expired", "scop-caen", CAEN, valid_until="2026-01-31"),
            offer("o-reserved", "asso-herouville", HEROUVILLE, member_of=("reseau-des-jardins",)),
            offer("o-same-structure", "asso-caen", CAEN),
            offer("o-withdrawn", "scop-caen", CAEN),
        ])
        st.emit([offer_withdrawn("o-withdrawn", "scop-caen")])
        st.emit([need("n-cuisine", "asso-caen", CAEN, radius=30)])
        st.settle()

        found = st.matches()
        by_offer = {m.offer_id: m for m in found}
        self.assertEqual(sorted(by_offer), ["o-mid", "o-near"], [m.explanation for m in found])
        near, mid = by_offer["o-near"], by_offer["o-mid"]
        self.assertEqual((near.rank, mid.rank), (1, 2))
        self.assertGreater(near.score, mid.score)
        for m in (near, mid):
            self.assertEqual(m.revision, 1)
            self.assertFalse(m.retired)
            self.assertEqual(m.need_id, "n-cuisine")
            self.assertEqual(m.need_structure_id, "asso-caen")
            self.assertEqual(m.category, "locaux")
            self.assertEqual(m.department, "14")
            self.assertEqual(len(m.components), 7)
            self.assertEqual({c.name for c in m.components},
                             {"distance", "keywords", "sector", "intercooperation", "freshness", "feedback",
                              "fairness"})
            self.assertTrue(m.explanation.startswith("Même catégorie (locaux)"), m.explanation)
        self.assertEqual(near.offer_structure_id, "scop-caen")
        self.assertIn("cuisine, stockage", near.explanation)
        self.assertIn("deux structures de l'ESS", near.explanation)
        self.assertLess(near.distance_km, 0.1)
        self.assertGreater(mid.distance_km, 2)
        self.assertLess(mid.distance_km, 5)
        self.assertIn("cuisine", mid.explanation)
        # The deterministic event id of a proposal.
        ids = [e.event_id for e in st.journal("match.found")]
        self.assertEqual(sorted(ids), sorted("match.%s.1" % m.match_id for m in found))
        # What the gateway shows of each match: its revision, as journaled.
        for m in found:
            self.assertEqual(stored_match(st, m.match_id), m)

    def test_new_offer_finds_the_needs_waiting_for_it(self):
        st = Stack(self.ws)
        st.start_matcher()
        st.emit([member("asso-caen", CAEN), member("asso-bayeux", HEROUVILLE), member("scic-ifs", IFS,
                                                                                   family="FAMILY_COOPERATIVE")])
        st.emit([need("n-caen", "asso-caen", CAEN, radius=20),
                 need("n-bayeux", "asso-bayeux", BAYEUX, radius=10)])  # Bayeux is 28 km from Ifs
        st.settle()
        self.assertEqual(st.matches(), [])
        st.emit([offer("o-ifs", "scic-ifs", IFS, radius=40)])
        st.settle()
        found = st.matches()
        self.assertEqual([(m.need_id, m.offer_id, m.rank) for m in found], [("n-caen", "o-ifs", 1)])
        # The provider's fairness set lasts a window (30 days) after its
        # newest proposal: a provider no longer proposed kept it for good.
        ttl = st.redis.call("PTTL", "mg:fair:scic-ifs")
        self.assertGreater(ttl, 29 * 86400 * 1000)
        self.assertLessEqual(ttl, 30 * 86400 * 1000)

    def test_nearer_items_that_cannot_reach_do_not_hide_one_that_can(self):
        # A search reads max_candidates (20) items, nearest first. Before,
        # those it could not keep (beyond their own radius, or not valid
        # yet) took the places: 20 offers of Caen that cannot reach
        # Hérouville hid the offer of Bayeux that can (28 km, within both
        # radii), and 20 needs of Caen too far for the offer of Bayeux hid
        # the need of Hérouville. Now they are passed over as they are read.
        st = Stack(self.ws)
        st.start_matcher()
        caen = ["coop-caen-%02d" % i for i in range(20)]
        st.emit([member(s, CAEN, family="FAMILY_COOPERATIVE") for s in caen]
                + [member("asso-herouville", HEROUVILLE), member("scop-bayeux", BAYEUX, family="FAMILY_COOPERATIVE")])
        st.emit([offer("o-caen-%02d" % i, caen[i], CAEN, radius=0 if i % 2 else 2) for i in range(10)]
                + [offer("o-caen-%02d" % i, caen[i], CAEN, radius=50, valid_from=paris_date(10))
                   for i in range(10, 20)])
        st.emit([offer("o-bayeux", "scop-bayeux", BAYEUX, radius=50)])
        st.emit([need("n-herouville", "asso-herouville", HEROUVILLE, radius=40)])
        st.settle()
        self.assertEqual([(m.need_id, m.offer_id) for m in st.matches()], [("n-herouville", "o-bayeux")])

        # The other way: the need waits, 20 needs of Caen with a 5 km radius
        # come, then an offer of Bayeux (Caen is nearer to it than Hérouville).
        st.emit([need_closed("n-herouville", "asso-herouville"), offer_withdrawn("o-bayeux", "scop-bayeux")])
        st.emit([need("n-herouville-2", "asso-herouville", HEROUVILLE, radius=40)])
        st.emit([need("n-caen-%02d" % i, caen[i], CAEN, radius=5) for i in range(20)])
        st.emit([offer("o-bayeux-2", "scop-bayeux", BAYEUX, radius=50)])
        st.settle()
        self.assertEqual([m.need_id for m in st.matches() if m.offer_id == "o-bayeux-2"], ["n-herouville-2"])

        # A need its radius keeps from the offer but in the offer's territory
        # is within reach all the same (the first version of this screen
        # passed it over, and the read of the territory took 10 older needs).
        st.emit([member("asso-bayeux-%02d" % i, BAYEUX) for i in range(11)])
        st.emit([need("n-bayeux-%02d" % i, "asso-bayeux-%02d" % i, BAYEUX, radius=0, category="materiel")
                 for i in range(10)])
        st.emit([need("n-bayeux-x", "asso-bayeux-10", BAYEUX, radius=10, category="materiel")])
        st.emit([offer("o-caen-terr", caen[0], CAEN, radius=50, territory=(BAYEUX,), category="materiel")])
        st.settle()
        self.assertIn("n-bayeux-x", [m.need_id for m in st.matches() if m.offer_id == "o-caen-terr"])

    def test_explanations_spell_plain_tags_as_the_word_list_does(self):
        # Both sides tag "comptabilite", "marche" and "strategie", typed
        # without accents, and their titles share no word. With a word list,
        # the explanation spells them as French does, except "marche"
        # (marche or marché?); with none ([data] words_file = ""), as typed.
        words = self.ws.path("french")
        with open(words, "w", encoding="utf-8") as f:
            f.write("comptabilité\ncomptabilités\nstratégie\nmarche\nmarché\n")
        st = Stack(self.ws)
        st.emit([member("asso-caen", CAEN), member("scic-ifs", IFS, family="FAMILY_COOPERATIVE")])
        tags = ("comptabilite", "marche", "strategie")
        for run, (words_file, common) in enumerate(((words, "comptabilité, marche, stratégie"),
                                                    ("", "comptabilite, marche, strategie"))):
            st.sections = dict(st.sections, data={"words_file": words_file})
            st.start_matcher()
            st.emit([need("n-%d" % run, "asso-caen", CAEN, category="competences", tags=tags,
                          title="Tenir les comptes"),
                     offer("o-%d" % run, "scic-ifs", IFS, category="competences", tags=tags,
                           title="Experts volontaires")])
            st.settle()
            found = [m for m in st.matches() if (m.need_id, m.offer_id) == ("n-%d" % run, "o-%d" % run)]
            self.assertEqual(len(found), 1, [m.explanation for m in st.matches()])
            self.assertTrue(found[0].explanation.endswith("mots communs : " + common), found[0].explanation)
            st.matchers[0].stop()

    def test_material_update_makes_revision_2_and_closing_retires(self):
        st = Stack(self.ws)
        st.start_matcher()
        st.emit([member("asso-caen", CAEN), member("scop-caen", CAEN, family="FAMILY_COOPERATIVE")])
        st.emit([offer("o1", "scop-caen", CAEN, tags=("cuisine", "stockage", "chambre", "froide"))])
        st.emit([need("n1", "asso-caen", CAEN, tags=("bureau",), title="Bureau")])
        st.settle()
        first = st.matches()
        self.assertEqual([(m.revision, m.retired) for m in first], [(1, False)])
        # Same need, now sharing four keywords: the score moves materially.
        st.emit([need("n1", "asso-caen", CAEN, tags=("cuisine", "stockage", "chambre", "froide"),
                      title="Cuisine et chambre froide", event_type="need.updated")])
        st.settle()
        # An update that changes nothing material: no new revision.
        st.emit([need("n1", "asso-caen", CAEN, tags=("cuisine", "stockage", "chambre", "froide"),
                      title="Cuisine et chambre froide", description="Merci !", event_type="need.updated")])
        st.settle()
        found = st.matches()
        self.assertEqual([(m.revision, m.retired) for m in found], [(1, False), (2, False)])
        self.assertGreaterEqual(found[1].score - found[0].score, 0.05)
        self.assertEqual(found[0].match_id, found[1].match_id)
        # Closing the need retires the pair.
        st.emit([need_closed("n1", "asso-caen")])
        st.settle()
        found = st.matches()
        self.assertEqual([(m.revision, m.retired) for m in found], [(1, False), (2, False), (3, True)])
        self.assertEqual(found[2].explanation, "Mise en relation retirée : le besoin est satisfait.")  # need_closed(): SATISFIED
        # mg:mexp:<mid> follows the pair to its latest revision.
        self.assertEqual(stored_match(st, found[0].match_id), found[2])
        # A withdrawn offer retires its pairs too.
        st.emit([need("n2", "asso-caen", CAEN)])
        st.settle()
        st.emit([offer_withdrawn("o1", "scop-caen")])
        st.settle()
        n2 = [(m.revision, m.retired) for m in st.matches() if m.need_id == "n2"]
        self.assertEqual(n2, [(1, False), (2, True)])

    def test_a_pair_that_no_longer_qualifies_is_retired_at_its_distance(self):
        # A need at Caen matched with an offer at Ifs, then moved to another
        # category: its match is retired, still at the distance it was
        # proposed at (not 0 km, which staff would read as « dans la même
        # commune »).
        st = Stack(self.ws)
        st.start_matcher()
        st.emit([member("asso-caen", CAEN), member("scop-ifs", IFS, family="FAMILY_COOPERATIVE")])
        st.emit([offer("o1", "scop-ifs", IFS), need("n1", "asso-caen", CAEN)])
        st.settle()
        st.emit([need("n1", "asso-caen", CAEN, category="formation", event_type="need.updated")])
        st.settle()
        found = st.matches()
        self.assertEqual([(m.revision, m.retired) for m in found], [(1, False), (2, True)])
        self.assertIn("ne correspondent plus", found[1].explanation)
        self.assertGreater(found[0].distance_km, 1)
        self.assertEqual(found[1].distance_km, found[0].distance_km)
        # ... and in the category and department it was proposed in, without
        # a rank, as the staff who got it filter it (it said « formation »).
        self.assertEqual((found[1].category, found[1].department, found[1].rank), ("locaux", "14", 0))
        self.assertEqual(stored_match(st, found[1].match_id).category, "locaux")
        # A need moved to Rouen, beyond the offer's radius: retired in the
        # Calvados, where it was proposed (it said 76).
        st.emit([need("n2", "asso-caen", CAEN, category="materiel"), offer("o2", "scop-ifs", IFS, category="materiel")])
        st.settle()
        st.emit([need("n2", "asso-caen", ROUEN, category="materiel", event_type="need.updated")])
        st.settle()
        retired = [m for m in st.matches() if m.offer_id == "o2" and m.retired]
        self.assertEqual([(m.category, m.department, m.rank) for m in retired], [("materiel", "14", 0)])

    def test_a_score_just_under_the_threshold_keeps_a_proposal_but_makes_no_new_one(self):
        # Hysteresis: a proposed pair is retired only when its score falls
        # material_change (0.05) below the threshold, so that a score drifting
        # around it does not retire and propose the pair again at each event.
        # The threshold is moved around the pair's score by restarting the
        # matcher: the same score is then just under it, then far under it.
        st = Stack(self.ws)
        st.start_matcher()
        st.emit([member("asso-caen", CAEN), member("scop-caen", CAEN, family="FAMILY_COOPERATIVE")])
        st.emit([offer("o1", "scop-caen", CAEN), need("n1", "asso-caen", CAEN)])
        st.settle()
        (first,) = st.matches()
        score = first.score

        def under_threshold_by(margin):
            st.matchers[0].stop()
            st.start_matcher(threshold="%.4f" % (score + margin))

        under_threshold_by(0.02)
        st.emit([need("n1", "asso-caen", CAEN, description="Précision sans effet.", event_type="need.updated"),
                 need("n2", "asso-caen", CAEN)])
        st.settle()
        self.assertEqual([(m.need_id, m.revision, m.retired) for m in st.matches()], [("n1", 1, False)])
        under_threshold_by(0.08)
        st.emit([need("n1", "asso-caen", CAEN, description="Autre précision.", event_type="need.updated")])
        st.settle()
        found = st.matches()
        self.assertEqual([(m.need_id, m.revision, m.retired) for m in found], [("n1", 1, False), ("n1", 2, True)])
        self.assertIn("sous le seuil", found[1].explanation)

    def test_a_material_change_that_would_never_retire_a_pair_is_refused_at_start(self):
        st = Stack(self.ws)
        sections = dict(st.sections)
        sections["matcher"] = {"threshold": "0.05", "material_change": "0.05"}
        conf = h.write_config(self.ws.path("matcher-bad.conf"), sections)
        self.assertIn("material_change = 0.05: must be below threshold = 0.05",
                      h.refused_at_start("maillage-matcher", conf))

    def test_an_offer_placed_by_its_territory_only_is_matched_both_ways(self):
        # The broker accepts an offer placed by its commune, its territory or
        # both. One with a territory and no commune was ignored ("offer
        # without a known commune"). It is found through its territory, from
        # either side, and only there; an update that drops the commune
        # leaves the old place.
        st = Stack(self.ws)
        st.start_matcher()
        st.emit([member("asso-caen", CAEN), member("asso-bayeux", HEROUVILLE), member("asso-rouen", ROUEN),
                 member("fondation", ROUEN, family="FAMILY_FOUNDATION")])
        st.emit([need("n-caen", "asso-caen", CAEN), need("n-rouen", "asso-rouen", ROUEN)])
        st.emit([offer("o-dep", "fondation", commune="", radius=0, territory=("dep:14",))])
        st.settle()
        self.assertEqual(sorted((m.need_id, m.offer_id) for m in st.matches()), [("n-caen", "o-dep")])
        found = st.matches()[0]
        self.assertIn("sur le territoire desservi (Calvados)", found.explanation)
        self.assertNotIn(" km", found.explanation)
        self.assertEqual(found.distance_km, -1)  # no place of its own: no distance
        st.emit([need("n-bayeux", "asso-bayeux", HEROUVILLE)])
        st.settle()
        self.assertEqual(sorted((m.need_id, m.offer_id) for m in st.matches()),
                         [("n-bayeux", "o-dep"), ("n-caen", "o-dep")])
        # An offer at Rouen that moves to the Calvados as a whole.
        st.emit([offer("o-moves", "fondation", commune=ROUEN, radius=5)])
        st.settle()
        self.assertIn(("n-rouen", "o-moves"), [(m.need_id, m.offer_id) for m in st.matches()])
        st.emit([offer("o-moves", "fondation", commune="", radius=0, territory=("dep:14",),
                       event_type="offer.updated")])
        st.settle()
        still = set(open_pairs(st.matches()))
        self.assertEqual(sorted(m.need_id for m in st.matches() if m.offer_id == "o-moves" and m.match_id in still
                                and not m.retired and m.revision == max(x.revision for x in st.matches()
                                                                         if x.match_id == m.match_id)),
                         ["n-bayeux", "n-caen"])

    def test_a_former_commune_code_is_matched_as_the_commune_it_merged_into(self):
        # Network systems still hold the codes of communes merged since into
        # a commune nouvelle: Fervaques (14265) and Heurtevent (14330) are
        # communes déléguées of Livarot-Pays-d'Auge (14371). The broker
        # refused them ("unknown commune code"); they are journaled as
        # today's commune, so the matcher places, indexes and explains them
        # there.
        livarot = "14371"
        st = Stack(self.ws)
        st.start_matcher()
        st.emit([member("asso-fervaques", "14265"), member("coop-livarot", livarot, family="FAMILY_COOPERATIVE"),
                 member("fondation", ROUEN, family="FAMILY_FOUNDATION")])
        st.emit([need("n-fervaques", "asso-fervaques", "14265", radius=5)])
        st.emit([offer("o-livarot", "coop-livarot", livarot, radius=5),
                 offer("o-heurtevent", "fondation", commune="", radius=0, territory=("14330",))])
        st.settle()
        journaled = {e.need_reported.need.commune for e in st.journal("need.reported")}
        self.assertEqual(journaled, {livarot})
        self.assertEqual([e.member_joined.structure.commune for e in st.journal("member.joined")
                          if e.member_joined.structure.structure_id == "asso-fervaques"], [livarot])
        self.assertEqual([list(e.offer_published.offer.territory) for e in st.journal("offer.published")
                          if e.offer_published.offer.offer_id == "o-heurtevent"], [[livarot]])
        found = {m.offer_id: m for m in st.matches()}
        self.assertEqual(sorted(found), ["o-heurtevent", "o-livarot"])
        self.assertEqual(found["o-livarot"].distance_km, 0)
        self.assertIn("sur le territoire desservi (Livarot-Pays-d'Auge)", found["o-heurtevent"].explanation)
        record = st.redis.call("GET", "mg:need:n-fervaques").split(b"|")  # seq|open|sid|cat|com|...
        self.assertEqual(record[4], livarot.encode())

    def test_match_events_over_the_brokers_rate_limit_are_sent_again_not_lost(self):
        """[broker] rate_limit_per_s counts the matcher's events like any
        source's: thirty proposals at once, beyond its burst of twenty, are
        refused for now, and the matcher sends them again until all are
        journaled. (The test's events are sent on behalf of three networks,
        so that they stay within their own limits, each for a structure of
        its own.)"""
        st = Stack(self.ws, broker={"rate_limit_per_s": 20})
        st.start_matcher()
        needs = [need("n-%02d" % i, "asso-%d" % (i % 3), CAEN) for i in range(30)]
        batches = [[member("asso-0", CAEN), member("scop-caen", CAEN, family="FAMILY_COOPERATIVE"),
                    offer("o1", "scop-caen", CAEN)], [member("asso-1", CAEN)], [member("asso-2", CAEN)]]
        batches += [needs[i::3] for i in range(3)]
        for network, batch in zip(("net-0", "net-1", "net-2", "net-0", "net-1", "net-2"), batches):
            for env in batch:
                st.client.send_frames([b"on-behalf-of:" + network.encode(), env.SerializeToString()])
            for _ in batch:
                ack = st.client.recv_ack()
                self.assertEqual(ack.status, h.ACCEPTED, ack)
            if batch is batches[0]:
                st.settle()
        st.settle()
        self.assertEqual(sorted(m.need_id for m in st.matches()), sorted(n.need_reported.need.need_id for n in needs))
        self.assertIn("rate limit", st.matchers[0].log())

    def test_expired_need_closes_by_itself(self):
        st = Stack(self.ws)
        st.start_matcher()
        st.emit([member("asso-caen", CAEN)])
        st.emit([need("n-old", "asso-caen", CAEN, valid_until="2026-01-31")])
        deadline = time.monotonic() + 10
        while not st.journal("need.closed") and time.monotonic() < deadline:
            time.sleep(0.1)
        closed = st.journal("need.closed")
        self.assertEqual(len(closed), 1)
        self.assertEqual(closed[0].need_closed.need_id, "n-old")
        self.assertEqual(closed[0].need_closed.reason, h.events_pb2.CLOSURE_EXPIRED)
        self.assertTrue(closed[0].event_id.startswith("close."))
        st.settle()
        time.sleep(1.5)  # more expiry rounds: still once
        self.assertEqual(len(st.journal("need.closed")), 1)
        # The record: "seq|open|..." (docs/redis-keys.md), now a tombstone.
        self.assertEqual(st.redis.call("GET", "mg:need:n-old").split(b"|")[1], b"0")
        # The rounds go on after one that closed something.
        st.emit([need("n-old2", "asso-caen", CAEN, valid_until="2026-01-31")])
        h.wait_until(lambda: len(st.journal("need.closed")) == 2, 10, what="the second expired need closed")
        self.assertEqual(st.journal("need.closed")[1].need_closed.need_id, "n-old2")

    def test_an_offer_that_expires_retires_its_matches_saying_so(self):
        st, d, clock = self.clocked_stack()
        st.emit([member("asso-caen", CAEN), member("coop-ifs", IFS, family="FAMILY_COOPERATIVE")])
        st.emit([offer("o-due", "coop-ifs", IFS, valid_until=paris_date(0)), need("n-1", "asso-caen", CAEN)])
        st.settle()
        self.assertEqual([(m.need_id, m.offer_id, m.retired) for m in st.matches()], [("n-1", "o-due", False)])
        h.set_clock(clock, DAY_MS)
        h.wait_until(lambda: any(m.retired for m in st.matches()), 20, what="the match retired")
        st.settle()
        self.assertEqual(st.journal("offer.withdrawn")[0].offer_withdrawn.reason, h.events_pb2.CLOSURE_EXPIRED)
        self.assertEqual([m.explanation for m in st.matches() if m.retired],
                         ["Mise en relation retirée : l'offre a expiré."])

    def test_an_extension_journaled_while_the_matcher_was_down_wins_over_the_expiry(self):
        # The matcher is down (a deploy, a crash); meanwhile a structure extends
        # its need, due today, by two months. It comes back two days later: its
        # expiry tick ran before it had caught up (8,000 events: longer than
        # the 1 s tick), closed the need as expired after the extension in the
        # journal, and closed items never reopen.
        st, d, clock = self.clocked_stack()
        st.emit([member("asso-caen", CAEN), member("asso-ifs", IFS)])
        st.emit([need("n-ext", "asso-caen", CAEN, valid_until=paris_date(0)),
                 need("n-due", "asso-caen", CAEN, category="formation", valid_until=paris_date(0))])
        st.settle()
        d.stop()
        for i in range(0, 8000, 500):
            st.emit([need("f-%04d" % k, "asso-ifs", IFS, category="formation", title="Formation")
                     for k in range(i, i + 500)])
        st.emit([need("n-ext", "asso-caen", CAEN, valid_until=paris_date(60), event_type="need.updated")])
        h.set_clock(clock, 2 * DAY_MS)
        st.start_matcher(env={"MAILLAGE_CLOCK_FILE": clock})
        h.wait_until(lambda: any(e.need_closed.need_id == "n-due" for e in st.journal("need.closed")), 60,
                     what="the need not extended closed")
        st.settle(timeout=60)
        self.assertEqual([e.need_closed.need_id for e in st.journal("need.closed")], ["n-due"])
        self.assertEqual(st.redis.call("GET", "mg:need:n-ext").split(b"|")[1], b"1")

    def test_a_conditional_close_is_void_once_a_later_event_changed_the_item(self):
        # What the expiry emits: a close that holds only if the item did not
        # change since the sequence it names (an extension may be journaled
        # between the tick's reading and the close's journaling).
        st = Stack(self.ws)
        st.start_matcher()
        st.emit([member("asso-caen", CAEN)])
        st.emit([need("n1", "asso-caen", CAEN)])
        st.settle()
        first = st.journal("need.reported")[0].sequence
        st.emit([need("n1", "asso-caen", CAEN, valid_until=paris_date(60), event_type="need.updated")])
        st.settle()
        updated = st.journal("need.updated")[0].sequence
        stale = need_closed("n1", "asso-caen")
        stale.need_closed.reason = h.events_pb2.CLOSURE_EXPIRED
        stale.need_closed.if_unchanged_since = first
        st.emit([stale])
        st.settle()
        self.assertEqual(st.redis.call("GET", "mg:need:n1").split(b"|")[1], b"1", "void close applied")
        current = need_closed("n1", "asso-caen")
        current.need_closed.reason = h.events_pb2.CLOSURE_EXPIRED
        current.need_closed.if_unchanged_since = updated
        st.emit([current])
        st.settle()
        self.assertEqual(st.redis.call("GET", "mg:need:n1").split(b"|")[1], b"0")

    def test_the_outbox_sent_again_after_a_crash_keeps_each_pairs_revisions_in_order(self):
        # A need proposed to twelve offers and closed: each pair's proposal
        # (revision 1) and retirement (revision 2) wait in the outbox while the
        # broker does not answer, and the matcher is killed. Its successor
        # sent the outbox again in the hash's order (HSCAN): retirements were
        # journaled before their proposals, so staff were told of matches
        # already withdrawn.
        st = self.twelve_offers_waiting()
        st.emit([need("n1", "asso-caen", CAEN)])
        st.emit([need_closed("n1", "asso-caen")])
        st.broker.proc.send_signal(signal.SIGSTOP)
        try:
            d = st.start_matcher()
            h.wait_until(lambda: st.redis.call("HLEN", "mg:matcher:outbox") >= 20, 20, what="the outbox")
            d.stop(signal.SIGKILL)
        finally:
            st.broker.proc.send_signal(signal.SIGCONT)
        st.start_matcher()
        st.settle()
        seen = {}
        for m in st.matches():
            self.assertEqual(m.revision, seen.get(m.match_id, 0) + 1, "revisions of %s out of order" % m.match_id)
            seen[m.match_id] = m.revision
        self.assertEqual(len(seen), 10)
        self.assertEqual(set(seen.values()), {2})

    def test_a_broker_that_does_not_answer_pauses_the_matcher_at_outbox_max(self):
        # The matcher works through its backlog from Redis even when the
        # broker does not answer: every decision waited in mg:matcher:outbox
        # (and in the producer's memory) without bound.
        st = self.twelve_offers_waiting(outbox_max=10)
        st.emit([need("n%d" % i, "asso-caen", CAEN) for i in range(6)])
        st.broker.proc.send_signal(signal.SIGSTOP)
        try:
            d = st.start_matcher()
            h.wait_until(lambda: st.redis.call("HLEN", "mg:matcher:outbox") >= 10, 10, what="the outbox")
            time.sleep(1.5)  # (the whole backlog takes a fraction of it)
            held = st.redis.call("HLEN", "mg:matcher:outbox")
            self.assertLess(held, 10 + 12, "the outbox grew past outbox_max and one event's decisions")
            self.assertIn("pausing until it answers", d.log())
        finally:
            st.broker.proc.send_signal(signal.SIGCONT)
        st.settle()
        self.assertEqual(st.redis.call("HLEN", "mg:matcher:outbox"), 0)
        self.assertEqual(len({(m.need_id, m.offer_id) for m in st.matches()}), 60)
        self.assertIn("the broker answers again", d.log())

    def test_collective_need_detected_once_then_updated(self):
        # With the grouping by distance on too (20 km holds Caen, Hérouville
        # and Ifs), the EPCI signal covers the same structures: no second one.
        for km in (0, 20):
            with self.subTest(collective_distance_km=km):
                ws = h.Workspace()
                try:
                    self.check_collective_by_epci(Stack(ws, collective_distance_km=km))
                finally:
                    ws.close()

    def check_collective_by_epci(self, st):
        st.start_matcher()
        st.emit([member("a-caen", CAEN), member("a-herouville", HEROUVILLE), member("a-ifs", IFS),
                 member("a-caen-2", CAEN), member("a-lisieux", LISIEUX)])
        st.emit([need("n1", "a-caen", CAEN), need("n2", "a-herouville", HEROUVILLE),
                 need("n-lisieux", "a-lisieux", LISIEUX),  # another EPCI
                 need("n-other", "a-ifs", IFS, category="financement")])  # another category
        st.settle()
        self.assertEqual(st.journal("collective_need.detected"), [])
        st.emit([need("n3", "a-ifs", IFS)])
        st.settle()
        st.emit([need("n4", "a-ifs", IFS, title="Un second local")])  # same structure: no new revision
        st.settle()
        # Nor an edit of a need of the group (it used to count as its
        # structure joining again: revision 2, the same structures).
        st.emit([need("n1", "a-caen", CAEN, title="Cuisine partagée, stockage et chambre froide",
                      event_type="need.updated")])
        st.settle()
        events = st.journal("collective_need.detected")
        self.assertEqual(len(events), 1)
        cn = events[0].collective_need_detected
        self.assertEqual((cn.revision, cn.category, cn.territory, cn.territory_name, cn.radius_km),
                         (1, "locaux", "epci:200065597", "CU Caen la Mer", 0))  # an EPCI's group has no radius
        self.assertEqual(sorted(cn.structure_ids), ["a-caen", "a-herouville", "a-ifs"])
        self.assertEqual(sorted(cn.need_ids), ["n1", "n2", "n3"])
        self.assertEqual(cn.explanation, "3 structures de la CU Caen la Mer expriment un besoin de locaux : "
                                         "une réponse mutualisée est possible")
        st.emit([need("n5", "a-caen-2", CAEN)])
        st.settle()
        events = st.journal("collective_need.detected")
        self.assertEqual([e.collective_need_detected.revision for e in events], [1, 2])
        self.assertEqual(events[1].collective_need_detected.collective_id, cn.collective_id)
        self.assertTrue(events[1].collective_need_detected.explanation.startswith("4 structures de la CU Caen la Mer"))
        # What the gateway lists: the signal's latest revision, and the key
        # in mg:collectives.
        self.assertEqual(stored_collectives(st), {"mg:collective:locaux:200065597": events[1].collective_need_detected})
        # One leaves (its need closed), another comes: still four, but not the
        # four signalled. The signal names who is there now (it waited for a
        # fifth before: a closed need and a departed structure stayed in it).
        st.emit([need_closed("n2", "a-herouville")])
        st.settle()
        self.assertEqual(len(st.journal("collective_need.detected")), 2)  # a departure alone says nothing
        st.emit([member("a-caen-3", CAEN), need("n6", "a-caen-3", CAEN)])
        st.settle()
        events = st.journal("collective_need.detected")
        self.assertEqual([e.collective_need_detected.revision for e in events], [1, 2, 3])
        cn = events[2].collective_need_detected
        self.assertEqual(sorted(cn.structure_ids), ["a-caen", "a-caen-2", "a-caen-3", "a-ifs"])
        self.assertNotIn("n2", cn.need_ids)
        self.assertEqual(stored_collectives(st), {"mg:collective:locaux:200065597": cn})

    def test_a_need_not_valid_today_does_not_make_a_collective_need(self):
        # Two needs valid today and a third expired (yesterday): not two
        # structures and the expired one, which the matcher neither matches nor
        # keeps (it closes it). Nor a need valid in 60 days; that one counts
        # from its day, matched then by the valid_from round. By EPCI (three
        # communes of CU Caen la Mer) and by distance (three EPCIs around
        # Tinchebray-Bocage).
        for km, communes, group in ((0, (CAEN, HEROUVILLE, IFS), "cn.formation.200065597"),
                                    (20, (VIRE, SOURDEVAL, TINCHEBRAY), "cn.formation.near.61486")):
            with self.subTest(collective_distance_km=km):
                ws = h.Workspace()
                try:
                    self.check_collective_counts_needs_valid_today(ws, km, communes, group)
                finally:
                    ws.close()

    def check_collective_counts_needs_valid_today(self, ws, km, communes, group):
        clock = ws.path("clock")
        h.set_clock(clock, 0)
        st = Stack(ws, collective_distance_km=km)
        st.start_matcher(env={"MAILLAGE_CLOCK_FILE": clock})
        first, second, third = communes
        st.emit([member("a-1", first), member("a-2", second), member("a-3", third)])
        st.emit([need("f1", "a-1", first, category="formation"), need("f2", "a-2", second, category="formation"),
                 need("f3", "a-3", third, category="formation", valid_until=paris_date(-1))])
        h.wait_until(lambda: st.journal("need.closed"), 10, what="the expired need closed")
        st.settle()
        self.assertEqual(st.journal("need.closed")[0].need_closed.need_id, "f3")
        self.assertEqual(st.journal("collective_need.detected"), [])
        st.emit([need("f4", "a-3", third, category="formation", valid_from=paris_date(60))])
        st.settle()
        time.sleep(1.5)  # expiry ticks (1 s): still not valid today
        self.assertEqual(st.journal("collective_need.detected"), [])
        # Its day: the valid_from round counts it, with no new event.
        h.set_clock(clock, 60 * DAY_MS)
        h.wait_until(lambda: st.journal("collective_need.detected"), 10, what="the collective need on f4's day")
        st.settle()
        (event,) = st.journal("collective_need.detected")
        cn = event.collective_need_detected
        self.assertEqual((cn.collective_id, cn.revision), (group, 1))
        self.assertEqual(sorted(cn.structure_ids), ["a-1", "a-2", "a-3"])
        self.assertEqual(sorted(cn.need_ids), ["f1", "f2", "f4"])

    def benevolat_group_of_three(self):
        """A Stack where a-caen, a-herouville and a-ifs (CU Caen la Mer)
        reported needs b1 to b3 of category benevolat: revision 1 of their
        group; a-caen-2, a member, has none yet."""
        st = Stack(self.ws)
        st.start_matcher()
        st.emit([member("a-caen", CAEN), member("a-herouville", HEROUVILLE), member("a-ifs", IFS),
                 member("a-caen-2", CAEN)])
        st.emit([need("b1", "a-caen", CAEN, category="benevolat"),
                 need("b2", "a-herouville", HEROUVILLE, category="benevolat"),
                 need("b3", "a-ifs", IFS, category="benevolat")])
        st.settle()
        return st

    def test_a_structure_that_closes_and_reports_again_does_not_re_signal_its_group(self):
        # Revision 1 names three structures; one closes its need and reports
        # another: the same three are there, nothing new to say (it was
        # revision 2, the same structures). A fourth one is.
        st = self.benevolat_group_of_three()
        self.assertEqual([e.collective_need_detected.revision for e in st.journal("collective_need.detected")], [1])
        st.emit([need_closed("b3", "a-ifs")])
        st.settle()
        st.emit([need("b3bis", "a-ifs", IFS, category="benevolat", title="Bénévoles pour la cuisine")])
        st.settle()
        events = st.journal("collective_need.detected")
        self.assertEqual([e.collective_need_detected.revision for e in events], [1],
                         [list(e.collective_need_detected.structure_ids) for e in events])
        st.emit([need("b4", "a-caen-2", CAEN, category="benevolat")])
        st.settle()
        events = st.journal("collective_need.detected")
        self.assertEqual([e.collective_need_detected.revision for e in events], [1, 2])
        cn = events[1].collective_need_detected
        self.assertEqual(sorted(cn.structure_ids), ["a-caen", "a-caen-2", "a-herouville", "a-ifs"])
        self.assertEqual(sorted(cn.need_ids), ["b1", "b2", "b3bis", "b4"])

    def test_a_group_signalled_before_its_structures_were_kept_still_names_a_newcomer(self):
        # A group's record from before `s` (the structures it named): a
        # structure replacing one that left was absorbed in silence, where
        # the version before signalled it.
        st = self.benevolat_group_of_three()
        st.redis.call("HDEL", "mg:collective:benevolat:200065597", "s")  # as the version before wrote it
        st.emit([need_closed("b3", "a-ifs")])
        st.settle()
        st.emit([need("b4", "a-caen-2", CAEN, category="benevolat")])
        st.settle()
        events = st.journal("collective_need.detected")
        self.assertEqual([e.collective_need_detected.revision for e in events], [1, 2])
        self.assertEqual(sorted(events[1].collective_need_detected.structure_ids),
                         ["a-caen", "a-caen-2", "a-herouville"])

    def test_a_feedback_journaled_before_its_match_counts_on_no_replay(self):
        # A match.feedback journaled before the need and offer of its match
        # found no match and was ignored; replayed, it found the match and
        # counted: "mise en relation faite" in the figures, and in the offer's
        # record, which its scores read.
        items = [member("asso-caen", CAEN), member("scop-ifs", IFS, family="FAMILY_COOPERATIVE"),
                 need("n1", "asso-caen", CAEN), offer("o1", "scop-ifs", IFS)]
        first = Stack(self.ws)
        first.start_matcher()
        first.emit(items)
        first.settle()
        (mid,) = [m.match_id for m in first.matches()]  # the same ids give the same match id
        first.matchers[0].stop()
        ws = h.Workspace()
        self.addCleanup(ws.close, keep=False)
        st = Stack(ws)
        st.start_matcher()
        st.emit(items[:2] + [feedback(mid, "staff-a", h.events_pb2.MATCH_OUTCOME_CONTACT_MADE)] + items[2:])
        st.settle()
        self.assertEqual([m.match_id for m in st.matches()], [mid])

        def counted():
            figures = st.redis.call("HGETALL", "mg:figures")
            return (st.redis.call("EXISTS", "mg:pfb:n1|o1"),
                    [f for f in figures[::2] if f.startswith(b"ma|")],
                    b",cm=" in b"," + st.redis.call("GET", "mg:offer:o1").split(b"|")[10])
        self.assertEqual(counted(), (0, [], False))
        st.matchers[0].stop()
        st.redis.call("HSET", "mg:consumer:matcher", "seq", 0)
        st.start_matcher()
        st.settle()
        self.assertEqual(counted(), (0, [], False))

    def test_equal_scores_rank_by_offer_id_when_the_offers_come_after_the_need(self):
        # Two identical offers for a need, the greater id first: ranks 1 and
        # 2, an equal score ranking the greater offer id first (the order in
        # which mg:nm:<nid> lists them, and the gateway with it: the ranks
        # were the other way round there), as when they come before the need
        # (the need's side sorts its candidates). (The rank compared a score
        # at full precision with the other's as stored, "%.6f": ranks 1 and
        # 1 when it rounded down.)
        st = Stack(self.ws)
        st.start_matcher()
        st.emit([member("asso-caen", CAEN)] + [member("coop-%d" % i, CAEN, family="FAMILY_COOPERATIVE",
                                                      naf="56.21Z") for i in range(2)])
        cases = [("locaux", CAEN, ("cuisine",)), ("materiel", HEROUVILLE, ("cuisine", "four")),
                 ("formation", IFS, ("cuisine", "stockage", "four")), ("benevolat", HEROUVILLE, ("four",))]
        for cat, _, _ in cases:
            st.emit([need("n-" + cat, "asso-caen", CAEN, category=cat, radius=30,
                          tags=("cuisine", "stockage", "salle"), title="Besoin")])
        st.settle()
        for cat, com, tags in cases:
            for who in ("b", "a"):
                st.emit([offer("o-%s-%s" % (who, cat), "coop-" + str("ab".index(who)), com, category=cat,
                               tags=tags, title="Offre")])
                st.settle()
        ranks = {m.offer_id: m.rank for m in st.matches()}
        for cat, _, _ in cases:
            self.assertEqual((ranks["o-b-" + cat], ranks["o-a-" + cat]), (1, 2), (cat, ranks))
            listed = st.redis.call("ZREVRANGE", "mg:nm:n-" + cat, 0, -1)
            self.assertEqual([o.decode() for o in listed], ["o-b-" + cat, "o-a-" + cat])

    def test_an_offer_ranks_among_all_of_a_needs_proposals_up_to_max_proposals(self):
        # With max_proposals = 21, a new offer counted its rank among the
        # need's 20 best open matches only: below 21 better offers it took
        # rank 21, and the need got 22 proposals.
        st = Stack(self.ws, max_proposals=21)
        st.start_matcher()
        tags = ("cuisine", "stockage", "salle")
        st.emit([member("asso-caen", CAEN)] + [member("coop-%d" % i, CAEN, family="FAMILY_COOPERATIVE",
                                                      naf="56.21Z") for i in range(22)])
        st.emit([need("n1", "asso-caen", CAEN, radius=30, tags=tags, title="Besoin")])
        st.settle()
        # (The greater ids first: an equal score ranks them first.)
        st.emit([offer("g%02d" % i, "coop-%d" % i, CAEN, tags=tags, title="Offre") for i in reversed(range(21))])
        st.settle()
        self.assertEqual(sorted(m.rank for m in st.matches()), list(range(1, 22)))
        st.emit([offer("w", "coop-21", HEROUVILLE, tags=("cuisine",), title="Offre")])
        st.settle()
        self.assertEqual([m.rank for m in st.matches() if m.offer_id == "w"], [])
        self.assertEqual(st.redis.call("ZCARD", "mg:nm:n1"), 21)

    def test_a_collective_need_of_a_long_category_label_keeps_it_whole(self):
        # A label may have 200 bytes: it was cut at 160, in the middle of an
        # "é", and the event's explanation was not UTF-8 (the journal below
        # is read by a parser that checks it). An acronym keeps its capitals.
        label = "RSE, " + "démarche " * 19
        st = Stack(self.ws, more_sections={"categories": {"locaux": "Locaux", "rse": label.strip()}})
        st.start_matcher()
        st.emit([member("a-caen", CAEN), member("a-herouville", HEROUVILLE), member("a-ifs", IFS)])
        st.emit([need("r1", "a-caen", CAEN, category="rse"), need("r2", "a-herouville", HEROUVILLE, category="rse"),
                 need("r3", "a-ifs", IFS, category="rse")])
        st.settle()
        (event,) = st.journal("collective_need.detected")
        self.assertEqual(event.collective_need_detected.explanation,
                         "3 structures de la CU Caen la Mer expriment un besoin de %s : une réponse mutualisée "
                         "est possible" % label.strip())

    def test_a_circle_its_structures_left_does_not_keep_a_new_group_from_forming(self):
        # A group centred on Vire; two of its three structures close their
        # needs. Structures of Les Monts d'Aunay and Saint-Amand-Villages (25
        # km from Vire) report, then one of Souleuvre en Bocage, inside Vire's
        # circle (16 km) and within 20 km of both: four structures within 20
        # km of Souleuvre, but no signal, since Vire's circle (two left) was
        # the only one the need lay in.
        st = Stack(self.ws, collective_distance_km=20)
        st.start_matcher()
        aunay, saint_amand, souleuvre = "14027", "50444", "14061"
        st.emit([member("a-vire", VIRE), member("a-sourdeval", SOURDEVAL), member("a-tinchebray", TINCHEBRAY),
                 member("a-aunay", aunay), member("a-saint-amand", saint_amand),
                 member("a-souleuvre", souleuvre)])
        st.emit([need("m-sourdeval", "a-sourdeval", SOURDEVAL, category="materiel"),
                 need("m-tinchebray", "a-tinchebray", TINCHEBRAY, category="materiel")])
        st.settle()
        st.emit([need("m-vire", "a-vire", VIRE, category="materiel")])
        st.settle()
        (first,) = st.journal("collective_need.detected")
        self.assertEqual(first.collective_need_detected.collective_id, "cn.materiel.near.14762")
        st.emit([need_closed("m-sourdeval", "a-sourdeval"), need_closed("m-tinchebray", "a-tinchebray")])
        st.emit([need("m-aunay", "a-aunay", aunay, category="materiel"),
                 need("m-saint-amand", "a-saint-amand", saint_amand, category="materiel")])
        st.settle()
        self.assertEqual(len(st.journal("collective_need.detected")), 1)
        st.emit([need("m-souleuvre", "a-souleuvre", souleuvre, category="materiel")])
        st.settle()
        events = st.journal("collective_need.detected")
        self.assertEqual(len(events), 2, events)
        cn = events[1].collective_need_detected
        self.assertEqual((cn.collective_id, cn.revision), ("cn.materiel.near.14061", 1))
        self.assertEqual(sorted(cn.structure_ids), ["a-aunay", "a-saint-amand", "a-souleuvre", "a-vire"])

    def test_a_collective_need_around_le_havre_reads_du_havre(self):
        # "de Le Havre" was written as is: the group's centre is named with
        # the article contracted, as French wants.
        st = Stack(self.ws, collective_distance_km=20)
        st.start_matcher()
        st.emit([member("a-honfleur", "14333"), member("a-villerville", "14755"), member("a-havre", "76351")])
        st.emit([need("m-honfleur", "a-honfleur", "14333", category="materiel"),
                 need("m-villerville", "a-villerville", "14755", category="materiel")])
        st.settle()
        st.emit([need("m-havre", "a-havre", "76351", category="materiel")])
        st.settle()
        near = [e.collective_need_detected for e in st.journal("collective_need.detected")
                if e.collective_need_detected.territory == "76351"]
        self.assertEqual(len(near), 1, st.journal("collective_need.detected"))
        self.assertEqual(near[0].explanation, "3 structures à moins de 20 km du Havre expriment un besoin "
                                              "de matériel et réemploi : une réponse mutualisée est possible")

    def test_collective_need_by_distance_across_epcis(self):
        st = Stack(self.ws, collective_distance_km=20)
        st.start_matcher()
        st.emit([member("a-vire", VIRE), member("a-sourdeval", SOURDEVAL), member("a-tinchebray", TINCHEBRAY),
                 member("a-vire-2", VIRE), member("a-saint-lo", SAINT_LO)])
        # Two structures within 20 km, one beyond: no group of 3.
        st.emit([need("m-vire", "a-vire", VIRE, category="materiel"),
                 need("m-sourdeval", "a-sourdeval", SOURDEVAL, category="materiel"),
                 need("m-saint-lo", "a-saint-lo", SAINT_LO, category="materiel"),
                 need("l-tinchebray", "a-tinchebray", TINCHEBRAY)])  # another category
        st.settle()
        self.assertEqual(st.journal("collective_need.detected"), [])
        # The third, in a third EPCI, within 20 km of both: one signal,
        # centred on its commune.
        st.emit([need("m-tinchebray", "a-tinchebray", TINCHEBRAY, category="materiel")])
        st.settle()
        events = st.journal("collective_need.detected")
        self.assertEqual(len(events), 1)
        cn = events[0].collective_need_detected
        self.assertEqual(events[0].event_id, "cn.materiel.near.61486.1")
        self.assertEqual((cn.collective_id, cn.revision, cn.category, cn.territory, cn.territory_name, cn.radius_km),
                         ("cn.materiel.near.61486", 1, "materiel", TINCHEBRAY, "Tinchebray-Bocage", 20))
        self.assertEqual(sorted(cn.structure_ids), ["a-sourdeval", "a-tinchebray", "a-vire"])
        self.assertEqual(sorted(cn.need_ids), ["m-sourdeval", "m-tinchebray", "m-vire"])
        self.assertEqual(cn.explanation, "3 structures à moins de 20 km de Tinchebray-Bocage expriment un besoin "
                                         "de matériel et réemploi : une réponse mutualisée est possible")
        # A second need of a structure already in: nothing new. A fourth
        # structure within the circle: revision 2 of the same group, not a
        # new group centred on Vire.
        st.emit([need("m-vire-b", "a-vire", VIRE, category="materiel", title="Une remorque")])
        st.settle()
        self.assertEqual(len(st.journal("collective_need.detected")), 1)
        st.emit([need("m-vire-2", "a-vire-2", VIRE, category="materiel")])
        st.settle()
        events = st.journal("collective_need.detected")
        self.assertEqual([(e.collective_need_detected.collective_id, e.collective_need_detected.revision)
                          for e in events], [("cn.materiel.near.61486", 1), ("cn.materiel.near.61486", 2)])
        cn2 = events[1].collective_need_detected
        self.assertEqual(sorted(cn2.structure_ids), ["a-sourdeval", "a-tinchebray", "a-vire", "a-vire-2"])
        self.assertTrue(cn2.explanation.startswith("4 structures à moins de 20 km de Tinchebray-Bocage"),
                        cn2.explanation)
        self.assertEqual(stored_collectives(st), {"mg:collective:materiel:near:61486": cn2})
        # One leaves, another comes: still four, but not the four signalled.
        # The group names who is there now (it waited for a fifth: a closed
        # need and a departed structure stayed in it). A departure alone says
        # nothing.
        st.emit([need_closed("m-sourdeval", "a-sourdeval")])
        st.settle()
        self.assertEqual(len(st.journal("collective_need.detected")), 2)
        st.emit([member("a-vire-3", VIRE), need("m-vire-3", "a-vire-3", VIRE, category="materiel")])
        st.settle()

        def near_group():  # (three structures of Vire's EPCI now have their own signal)
            return [e.collective_need_detected for e in st.journal("collective_need.detected")
                    if e.collective_need_detected.collective_id == "cn.materiel.near.61486"]
        self.assertEqual([cn.revision for cn in near_group()], [1, 2, 3])
        cn3 = near_group()[2]
        self.assertEqual(sorted(cn3.structure_ids), ["a-tinchebray", "a-vire", "a-vire-2", "a-vire-3"])
        self.assertNotIn("m-sourdeval", cn3.need_ids)
        self.assertEqual(stored_collectives(st)["mg:collective:materiel:near:61486"], cn3)
        # Another need of a structure signalled: nothing new.
        st.emit([need("m-vire-3b", "a-vire-3", VIRE, category="materiel", title="Un diable")])
        st.settle()
        self.assertEqual(len(near_group()), 3)
        # Replaying the whole journal creates nothing new.
        before = len(st.journal())
        st.matchers[0].stop()
        st.redis.call("HSET", "mg:consumer:matcher", "seq", 0)
        st.start_matcher()
        st.settle()
        self.assertEqual(len(st.journal()), before)

    def test_valid_from_tomorrow_is_matched_on_that_day_without_an_event(self):
        st, d, clock = self.clocked_stack()
        self.assertIn("TEST CLOCK", d.log())
        tomorrow = paris_date(1)
        st.emit([member("asso-caen", CAEN), member("scop-caen", CAEN, family="FAMILY_COOPERATIVE"),
                 member("asso-ifs", IFS)])
        # A need valid from tomorrow, an offer waiting for it; an offer valid
        # from tomorrow, a need waiting for it (another category).
        st.emit([offer("o-now", "scop-caen", CAEN, title="Cuisine équipée et stockage"),
                 need("n-tomorrow", "asso-caen", CAEN, valid_from=tomorrow, title="Cuisine équipée à partager"),
                 need("n-now", "asso-ifs", IFS, category="materiel", tags=("remorque",), title="Remorque bachee"),
                 offer("o-tomorrow", "scop-caen", CAEN, category="materiel", tags=("remorque",),
                       title="Remorque bâchée à prêter", valid_from=tomorrow)])
        st.settle()
        time.sleep(1.5)  # expiry ticks (1 s): still not valid today
        self.assertEqual(st.matches(), [])
        # Until then, their records keep the items themselves (their texts).
        self.assertIn("Cuisine équipée à partager".encode(), st.redis.call("GET", "mg:need:n-tomorrow"))
        head = int(st.redis.call("GET", "mg:journal:seq"))
        # Tomorrow: both pairs, with no new event in.
        h.set_clock(clock, DAY_MS)
        deadline = time.monotonic() + 10
        while len(st.matches()) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        found = sorted((m.need_id, m.offer_id, m.revision) for m in st.matches())
        self.assertEqual(found, [("n-now", "o-tomorrow", 1), ("n-tomorrow", "o-now", 1)])
        # Scored from their own texts: the explanations keep the accents
        # (the new item's spelling); the records keep the texts (for any other
        # instance's round).
        why = {m.need_id: m.explanation for m in st.matches()}
        self.assertIn("mots communs : cuisine, équipée", why["n-tomorrow"])
        self.assertIn("mots communs : bâchée, remorque", why["n-now"])
        self.assertIn("Cuisine équipée à partager".encode(), st.redis.call("GET", "mg:need:n-tomorrow"))
        journal = st.journal()
        self.assertEqual(sorted(e.type for e in journal if e.sequence > head), ["match.found", "match.found"])
        # More ticks, a restart, a replay: still once.
        time.sleep(1.5)
        st.matchers[0].stop()
        st.redis.call("HSET", "mg:consumer:matcher", "seq", 0)
        st.start_matcher(env={"MAILLAGE_CLOCK_FILE": clock})
        st.settle()
        time.sleep(1.5)
        self.assertEqual(len(st.matches()), 2)

    def test_a_valid_from_round_reads_in_parts_and_misses_none(self):
        # 1,001 needs valid from tomorrow, one more than a round reads of a
        # kind (S_START_LIMIT in matcher.c): tomorrow, a round reads the first
        # 1,000, the next one (an expiry tick later) the last one, and only
        # then is the day done. Before, every round read the same first ones
        # and the day was never done. A need of the first part closed between
        # the two leaves the set: the second part still reads the last one
        # (it went on at an offset, 1,000 of 1,000 left: none).
        st, d, clock = self.clocked_stack(expiry_interval_s=3)
        tomorrow = paris_date(1)
        st.emit([member("asso-caen", CAEN)])
        needs = [need("n-%04d" % i, "asso-caen", CAEN, valid_from=tomorrow) for i in range(1001)]
        for i in range(0, len(needs), 250):
            st.emit(needs[i:i + 250])
        st.settle()
        self.assertEqual(st.redis.call("ZCARD", "mg:start:need"), 1001)
        h.set_clock(clock, DAY_MS)
        d.wait_log("matcher: 1000 item(s) valid from today matched again", timeout=30)
        st.emit([need_closed("n-0000", "asso-caen")])
        self.assertEqual(self.valid_from_rounds(st, d, tomorrow), [1000, 1])

    def test_a_valid_from_round_in_parts_keeps_each_kinds_place(self):
        # 1,000 needs and 2,000 offers valid from tomorrow: the first part
        # reads 1,000 of each, the second the other 1,000 offers and no need.
        # A kind that reads nothing keeps its place: it went back to the
        # start, and the parts then read the same items again.
        st, d, clock = self.clocked_stack(expiry_interval_s=2)
        tomorrow = paris_date(1)
        st.emit([member("asso-caen", CAEN), member("scop-ifs", IFS, family="FAMILY_COOPERATIVE")])
        items = [need("n-%04d" % i, "asso-caen", CAEN, valid_from=tomorrow, category="materiel")
                 for i in range(1000)]
        items += [offer("o-%04d" % i, "scop-ifs", IFS, valid_from=tomorrow, category="formation")
                  for i in range(2000)]
        for i in range(0, len(items), 250):
            st.emit(items[i:i + 250])
        st.settle(timeout=60)
        h.set_clock(clock, DAY_MS)
        self.assertEqual(self.valid_from_rounds(st, d, tomorrow, timeout=60), [2000, 1000])

    def test_a_need_closed_while_the_valid_from_round_runs_keeps_no_match(self):
        # The round's jobs run beside the deliveries: a need closed between a
        # job's apply and its decide had its matches retired before the job
        # wrote its proposal, which then stayed open for good. Now the job
        # sees the need changed and decides nothing.
        st, d, clock = self.clocked_stack()
        tomorrow = paris_date(1)
        st.emit([member("asso-caen", CAEN), member("scop-ifs", IFS, family="FAMILY_COOPERATIVE")])
        st.emit([offer("o-1", "scop-ifs", IFS)])
        needs = [need("n-%04d" % i, "asso-caen", CAEN, valid_from=tomorrow) for i in range(600)]
        for i in range(0, len(needs), 200):
            st.emit(needs[i:i + 200])
        st.settle()
        # The needs close one by one while the clock moves: the round starts
        # at the next tick, with closes being applied between its read of the
        # open needs and its jobs. (A race: without the check, two runs in
        # three kept one such match.)
        h.set_clock(clock, DAY_MS)
        for k in range(len(needs)):
            st.emit([need_closed("n-%04d" % k, "asso-caen")])
            time.sleep(0.002)
        self.valid_from_rounds(st, d, tomorrow)
        st.settle()
        ids = ["n-%04d" % i for i in range(len(needs))]
        self.assertEqual([n for n in ids if st.redis.call("ZCARD", "mg:nm:" + n)], [])
        self.assertEqual(open_pairs(st.matches()), [])

    def round_with_offer_changed(self, change):
        """600 needs valid from tomorrow and one open offer o-1; tomorrow,
        `change` (an event of o-1) is emitted while the round's jobs are in
        flight. Returns the stack once the round is done and settled, and
        the needs' ids."""
        st, d, clock = self.clocked_stack()
        tomorrow = paris_date(1)
        st.emit([member("asso-caen", CAEN), member("scop-ifs", IFS, family="FAMILY_COOPERATIVE")])
        st.emit([offer("o-1", "scop-ifs", IFS)])
        ids = ["n-%04d" % i for i in range(600)]
        for i in range(0, len(ids), 200):
            st.emit([need(n, "asso-caen", CAEN, valid_from=tomorrow) for n in ids[i:i + 200]])
        st.settle()
        h.set_clock(clock, DAY_MS)
        d.wait_log("600 item(s) valid from today matched again", timeout=15)
        st.emit([change])
        self.valid_from_rounds(st, d, tomorrow, timeout=60)
        st.settle()
        return st, ids

    def test_an_offer_withdrawn_while_the_valid_from_round_runs_keeps_no_match(self):
        # The other side of the test above: the round's job of a need read
        # the offer open; the offer's withdrawal retired its matches of the
        # moment; the job then wrote its proposal, open for good with a
        # withdrawn offer. Now a proposal is recorded only if the other item
        # is still as the job's apply read it.
        st, ids = self.round_with_offer_changed(offer_withdrawn("o-1", "scop-ifs"))
        self.assertEqual(st.redis.call("ZCARD", "mg:om:o-1"), 0)
        self.assertEqual([n for n in ids if st.redis.call("ZCARD", "mg:nm:" + n)], [])
        self.assertEqual(open_pairs(st.matches()), [])

    def test_an_offer_updated_while_the_valid_from_round_runs_still_reaches_every_need(self):
        # A proposal whose candidate changed after the apply is not
        # recorded: the offer's own job may not have seen the need. The job
        # then fails and its part of the round is done again; refusing it
        # silently lost the proposal for good (393 of 600 needs).
        st, ids = self.round_with_offer_changed(
            offer("o-1", "scop-ifs", IFS, title="Cuisine professionnelle, stockage et chambre froide",
                  event_type="offer.updated"))
        self.assertEqual([n for n in ids if st.redis.call("ZSCORE", "mg:nm:" + n, "o-1") is None], [])
        self.assertEqual(st.redis.call("ZCARD", "mg:om:o-1"), 600)

    def test_closed_items_match_records_expire_after_the_retention(self):
        # [matcher] closed_retention_days = 365, the default. n1 closes with
        # two proposals, one with staff feedback; n2 stays open with two.
        st, d, clock = self.clocked_stack()
        st.emit([member("asso-caen", CAEN), member("asso-ifs", IFS),
                 member("scop-caen", CAEN, family="FAMILY_COOPERATIVE"),
                 member("scop-ifs", IFS, family="FAMILY_COOPERATIVE")])
        st.emit([offer("o1", "scop-caen", CAEN), offer("o2", "scop-ifs", IFS),
                 need("n1", "asso-caen", CAEN), need("n2", "asso-ifs", IFS)])
        st.settle()
        mids = {(m.need_id, m.offer_id): m.match_id for m in st.matches()}
        self.assertEqual(sorted(mids), [("n1", "o1"), ("n1", "o2"), ("n2", "o1"), ("n2", "o2")])
        st.emit([feedback(mids[("n1", "o1")], "claire", h.events_pb2.MATCH_OUTCOME_CONTACT_MADE)])
        st.emit([need_closed("n1", "asso-caen")])
        st.settle()

        def records(nid):
            """The match records of `nid`'s pairs still in Redis."""
            keys = []
            for (n, o), mid in sorted(mids.items()):
                if n == nid:
                    keys += ["mg:pair:%s|%s" % (n, o), "mg:mexp:" + mid, "mg:mid:" + mid, "mg:pfb:%s|%s" % (n, o)]
            return [k for k in keys if st.redis.call("EXISTS", k)]

        def cycles():
            return int(st.redis.call("HGET", "mg:matcher:sweep", "cycles") or 0)

        # A round of the scan starts an hour after the last one ended: the
        # clock moves on by more than that for each round awaited.
        offset = [0]

        def scans(n, what):
            for _ in range(n):
                start = cycles()
                offset[0] += 2 * 3600 * 1000
                h.set_clock(clock, offset[0])
                h.wait_until(lambda: cycles() > start, timeout=10, what=what)

        def with_cl():
            """n1's tombstone if it has `cl` (when it closed, in ms)."""
            value = st.redis.call("GET", "mg:need:n1").decode()
            return value if re.search(r"[|,]cl=\d{13}[,|]", value) else None

        n1_records = records("n1")
        self.assertEqual(len(n1_records), 7)  # 2 pairs x 3, and n1|o1's feedback
        n2_records = records("n2")
        self.assertEqual(len(n2_records), 6)
        tombstone = st.redis.call("GET", "mg:need:n1").decode()
        self.assertRegex(tombstone, r"^\d+\|0\|")
        self.assertIsNotNone(with_cl())
        # A tombstone written before `cl` existed gets it from the scan.
        fields = tombstone.split("|")
        fields[10] = ",".join(f for f in fields[10].split(",") if not f.startswith("cl="))
        st.redis.call("SET", "mg:need:n1", "|".join(fields))
        scans(1, "a scan after the tombstone lost its cl")
        tombstone = h.wait_until(with_cl, timeout=10, what="cl given to a tombstone without it")
        # Within the retention, whole scans of the pair records keep everything.
        scans(2, "two scans of the pair records")
        self.assertEqual(records("n1"), n1_records)
        # Between rounds, an idle matcher writes nothing (it wrote the scan's
        # cursor five times a second).
        before = st.redis.call("HGETALL", "mg:matcher:sweep")
        time.sleep(1.0)
        self.assertEqual(st.redis.call("HGETALL", "mg:matcher:sweep"), before)
        # 366 days later: n1's pairs go (record, explanation, match id,
        # feedback), n2's stay, and so does n1's tombstone.
        offset[0] = 366 * DAY_MS
        h.set_clock(clock, offset[0])
        h.wait_until(lambda: records("n1") == [], timeout=10, what="n1's match records deleted")
        scans(2, "two more scans")
        self.assertEqual(records("n2"), n2_records)
        self.assertEqual(st.redis.call("GET", "mg:need:n1").decode(), tombstone)

        # Logged when a scan comes round (the deletions may fall in two).
        def logged():
            found = re.findall(r"retention: a scan of the pair records came round: (\d+) of items closed", d.log())
            return sum(int(n) for n in found)

        h.wait_until(lambda: logged() == 2, timeout=10, what="the deletions logged")
        # The tombstone still stops n1: an update (a new sequence, as a
        # producer sending again after the dedupe window would give) neither
        # reopens it nor proposes its pairs again.
        found = len(st.matches())
        st.emit([need("n1", "asso-caen", CAEN, event_type="need.updated", title="Cuisine et stockage")])
        st.settle()
        self.assertEqual(len(st.matches()), found)
        self.assertRegex(st.redis.call("GET", "mg:need:n1").decode(), r"^\d+\|0\|")
        self.assertEqual(st.redis.call("ZSCORE", "mg:cell:need:locaux:" + CAEN, "n1"), None)
        # Feedback on a deleted match changes nothing, and matching goes on.
        before = st.redis.call("GET", "mg:offer:o2")
        st.emit([feedback(mids[("n1", "o2")], "claire", h.events_pb2.MATCH_OUTCOME_NOT_RELEVANT),
                 need("n3", "asso-caen", CAEN)])
        st.settle()
        self.assertEqual(st.redis.call("GET", "mg:offer:o2"), before)
        self.assertEqual(sorted(m.offer_id for m in st.matches() if m.need_id == "n3"), ["o1", "o2"])

    def test_feedback_and_answers_retried_after_later_ones_change_nothing(self):
        """Staff says "mise en relation faite", then "pas pertinent"; a
        structure accepts a cooperation, then declines it. If the first event
        of each comes back after the second (parked for retry, or replayed
        from the dead letters), the later outcome stays. The test puts the
        first events back in the matcher's retry set, as a failed handler
        would have."""
        st = Stack(self.ws)
        st.start_matcher()
        st.emit([member("asso-caen", CAEN), member("scop-caen", CAEN, family="FAMILY_COOPERATIVE")])
        st.emit([offer("o1", "scop-caen", CAEN), need("n1", "asso-caen", CAEN)])
        st.settle()
        [mid] = [m.match_id for m in st.matches()]

        def answered(answer):
            env = _env("cooperation.answered")
            a = env.cooperation_answered
            a.proposal_id, a.structure_id = "p-1", "scop-caen"
            a.answer = h.events_pb2.CooperationAnswer.Value(answer)
            return env

        st.emit([feedback(mid, "claire", h.events_pb2.MATCH_OUTCOME_CONTACT_MADE),
                 answered("COOPERATION_ANSWER_ACCEPTED")])
        st.emit([feedback(mid, "claire", h.events_pb2.MATCH_OUTCOME_NOT_RELEVANT),
                 answered("COOPERATION_ANSWER_DECLINED")])
        st.settle()

        def outcomes():
            offer_flags = st.redis.call("GET", "mg:offer:o1").decode().split("|")[10].split(",")
            return (st.redis.call("HGET", "mg:pfb:n1|o1", "fb:claire"),
                    sorted(f for f in offer_flags if f.startswith(("cm=", "nr="))),
                    int(st.redis.call("HGET", "mg:coop:p-1", "ans:scop-caen")))
        later = (b"nr", ["cm=0", "nr=1"], h.events_pb2.COOPERATION_ANSWER_DECLINED)
        self.assertEqual(outcomes(), later)

        first = [e.sequence for e in st.journal() if e.type in ("match.feedback", "cooperation.answered")][:2]
        now = int(time.time() * 1000)
        for seq in first:
            st.redis.call("ZADD", "mg:retry:matcher", now, seq)
        h.wait_until(lambda: st.redis.call("ZCARD", "mg:retry:matcher") == 0, 15, 0.1, "the retries")
        st.settle()
        self.assertEqual(outcomes(), later)

    def test_a_close_retried_after_a_later_event_on_its_item_still_retires_its_matches(self):
        """A need.closed whose retirements were not recorded (its decide
        failed: the event is parked), then a need.updated of the closed
        need, then the close's retry. The update used to move the
        tombstone's sequence past the close's, which the retry then took as
        done: the match stayed open for good. The test writes the state the
        failed close leaves (its tombstone, the pair still open) and puts
        the close back in the retry set, due after the update."""
        st = Stack(self.ws)
        st.start_matcher()
        st.emit([member("asso-caen", CAEN), member("scop-caen", CAEN, family="FAMILY_COOPERATIVE")])
        st.emit([offer("o1", "scop-caen", CAEN), need("n1", "asso-caen", CAEN)])
        st.settle()
        self.assertEqual(open_pairs(st.matches()), [st.matches()[0].match_id])
        st.matchers[0].stop()
        st.emit([need_closed("n1", "asso-caen"), need("n1", "asso-caen", CAEN, event_type="need.updated",
                                                      title="Cuisine partagée, stockage et bureau")])
        close_seq, update_seq = [e.sequence for e in st.journal("need.")][-2:]
        flags = st.redis.call("GET", "mg:need:n1").decode().split("|")[10]
        st.redis.call("SET", "mg:need:n1", "%d|0|||||||||%s|" % (close_seq, flags))
        st.redis.call("HSET", "mg:consumer:matcher", "seq", close_seq)
        st.redis.call("ZADD", "mg:retry:matcher", int(time.time() * 1000) + 2000, close_seq)
        st.start_matcher()
        h.wait_until(lambda: st.redis.call("ZCARD", "mg:retry:matcher") == 0, 15, 0.1, "the retry")
        st.settle()
        self.assertEqual(open_pairs(st.matches()), [])
        self.assertEqual(st.redis.call("ZCARD", "mg:nm:n1"), 0)
        self.assertEqual(st.redis.call("GET", "mg:need:n1").decode().split("|")[:2], [str(close_seq), "0"])
        self.assertGreater(update_seq, close_seq)

    def test_a_structure_that_no_longer_meets_an_offers_conditions_loses_its_match(self):
        # An offer reserved to a network's members matched a member's need;
        # the structure then leaves that network (member.updated): its items
        # are matched again and the match retired (it stayed open). A later
        # update that changes nothing matches nothing again.
        st = Stack(self.ws)
        st.start_matcher()
        st.emit([member("asso-caen", CAEN, networks=("cress-normandie", "reseau-des-jardins")),
                 member("scop-caen", CAEN, family="FAMILY_COOPERATIVE")])
        st.emit([offer("o1", "scop-caen", CAEN, member_of=("reseau-des-jardins",)),
                 offer("o2", "scop-caen", CAEN, title="Chambre froide et stockage"),
                 need("n1", "asso-caen", CAEN)])
        st.settle()
        self.assertEqual(sorted((m.offer_id, m.retired) for m in st.matches()), [("o1", False), ("o2", False)])
        update = member("asso-caen", CAEN, event_type="member.updated")  # cress-normandie only now
        st.emit([update])
        st.settle()
        last = {}
        for e in st.journal("match.found"):
            last[e.match_found.offer_id] = e.match_found
            if e.match_found.retired:
                self.assertEqual(e.correlation_id, update.event_id)  # staff can trace it to its cause
        self.assertTrue(last["o1"].retired)
        self.assertFalse(last["o2"].retired)
        self.assertEqual(st.redis.call("ZRANGE", "mg:nm:n1", 0, -1), [b"o2"])
        before = len(st.matches())
        st.emit([member("asso-caen", CAEN, event_type="member.updated")])  # the same record again
        st.settle()
        self.assertEqual(len(st.matches()), before)
        # (its other items, and a restart, find it handled: nothing new either)
        st.matchers[0].stop()
        st.start_matcher()
        st.settle()
        self.assertEqual(len(st.matches()), before)

    def test_a_need_reported_before_its_structure_joined_gets_the_offer_reserved_to_its_network(self):
        # The broker does not order a structure's events: its need may come
        # before its member.joined. Matched then as of an unknown structure,
        # it failed the offer's conditions; the member.joined matches the
        # structure's items again.
        st = Stack(self.ws)
        st.start_matcher()
        st.emit([member("scop-caen", CAEN, family="FAMILY_COOPERATIVE")])
        st.emit([offer("o1", "scop-caen", CAEN, member_of=("reseau-des-jardins",))])
        st.emit([need("n1", "asso-caen", CAEN)])
        st.settle()
        self.assertEqual(st.matches(), [])
        st.emit([member("asso-caen", CAEN, networks=("cress-normandie", "reseau-des-jardins"))])
        st.settle()
        self.assertEqual([(m.need_id, m.offer_id, m.retired) for m in st.matches()], [("n1", "o1", False)])
        # A structure is a member of the network it joined, whether its
        # record lists it or not (it was not, for the offer's conditions).
        joined = member("jardin-ifs", IFS, networks=())
        joined.member_joined.network = "reseau-des-jardins"
        st.emit([joined, need("n2", "jardin-ifs", IFS)])
        st.settle()
        self.assertIn(("n2", "o1"), [(m.need_id, m.offer_id) for m in st.matches()])
        # Until it leaves: an update whose record does not list it either
        # keeps it a member (its match was retired).
        st.emit([member("jardin-ifs", IFS, networks=(), naf="01.13Z", event_type="member.updated")])
        st.settle()
        self.assertEqual([m.retired for m in st.matches() if m.need_id == "n2"][-1:], [False])
        # After it left and came back through another network, not any more.
        st.emit([member_left("jardin-ifs")])
        st.emit([member("jardin-ifs", IFS, networks=())])
        st.emit([need("n3", "jardin-ifs", IFS)])
        st.settle()
        self.assertNotIn(("n3", "o1"), [(m.need_id, m.offer_id) for m in st.matches()])

    def test_a_structure_back_after_leaving_gets_the_matches_of_items_reported_meanwhile(self):
        # A need reported while its structure had left is kept, unmatched (a
        # CRM's need.reported may come just before the directory's member.joined
        # that brings the structure back). The member.joined matched nothing
        # again when the structure's record was unchanged: the need stayed
        # unmatched until something else changed it.
        st = Stack(self.ws)
        st.start_matcher()
        st.emit([member("asso-caen", CAEN), member("scop-caen", CAEN, family="FAMILY_COOPERATIVE")])
        st.emit([offer("o1", "scop-caen", CAEN)])
        st.emit([member_left("asso-caen")])
        st.settle()
        st.emit([need("n1", "asso-caen", CAEN)])
        st.settle()
        self.assertEqual(st.redis.call("GET", "mg:need:n1").split(b"|")[1], b"1")
        self.assertEqual(st.matches(), [])
        st.emit([member("asso-caen", CAEN)])  # back, with the same record
        st.settle()
        self.assertEqual([(m.need_id, m.offer_id, m.revision) for m in st.matches()], [("n1", "o1", 1)])

    def test_an_item_is_updated_and_closed_only_in_its_own_structures_name(self):
        # Any network could close another's need by its id, or take it over
        # with an update naming its own structure.
        st = Stack(self.ws)
        d = st.start_matcher()
        st.emit([member("asso-caen", CAEN), member("intrus", CAEN), member("scop-caen", CAEN,
                                                                           family="FAMILY_COOPERATIVE")])
        st.emit([need("n1", "asso-caen", CAEN), offer("o1", "scop-caen", CAEN)])
        st.settle()
        st.emit([need_closed("n1", "intrus"), offer_withdrawn("o1", "intrus"),
                 need("n1", "intrus", CAEN, title="Repris", event_type="need.updated")])
        st.settle()
        record = st.redis.call("GET", "mg:need:n1").split(b"|")
        self.assertEqual((record[1], record[2]), (b"1", b"asso-caen"))
        self.assertEqual(st.redis.call("GET", "mg:offer:o1").split(b"|")[1], b"1")
        self.assertEqual([(m.revision, m.retired) for m in st.matches()], [(1, False)])
        self.assertEqual(d.log().count("not the one it names"), 3, d.log())
        st.emit([need_closed("n1", "asso-caen")])
        st.settle()
        self.assertEqual(st.redis.call("GET", "mg:need:n1").split(b"|")[1], b"0")
        self.assertEqual([(m.revision, m.retired) for m in st.matches()], [(1, False), (2, True)])

    def test_a_report_journaled_after_its_own_update_changes_nothing(self):
        # A producer retrying through a Redis outage sends each event again
        # on its own backoff: a need's update can be journaled before its
        # report. The report (v1) used to overwrite the update (v2).
        st = Stack(self.ws)
        st.start_matcher()
        st.emit([member("asso-caen", CAEN), member("scop-caen", CAEN, family="FAMILY_COOPERATIVE")])
        st.emit([need("n1", "asso-caen", CAEN, title="Besoin v2", tags=("cuisine", "stockage", "froid"),
                      event_type="need.updated"),
                 offer("o1", "scop-caen", CAEN, title="Offre v2", tags=("cuisine", "stockage", "chambre"),
                       event_type="offer.updated")])
        st.settle()
        st.emit([need("n1", "asso-caen", CAEN, title="Besoin v1", category="materiel"),
                 offer("o1", "scop-caen", CAEN, title="Offre v1")])
        st.settle()
        # The records keep what matching reads: v2's category and words.
        need_record, offer_record = st.redis.call("GET", "mg:need:n1"), st.redis.call("GET", "mg:offer:o1")
        self.assertEqual(need_record.split(b"|")[3], b"locaux")
        self.assertIn(b"cuisine froid stockage", need_record)
        self.assertIn(b"chambre", offer_record)
        self.assertEqual([(m.revision, m.retired) for m in st.matches()], [(1, False)])
        # A later update still applies.
        st.emit([need("n1", "asso-caen", CAEN, title="Besoin v3", tags=("cuisine",), event_type="need.updated")])
        st.settle()
        self.assertNotIn(b"froid", st.redis.call("GET", "mg:need:n1"))
        # `journal --summary` reads it so too: the need is open under Locaux.
        summary = subprocess.run([os.path.join(h.BIN, "maillage"), "journal", "--summary", "--redis", st.redis.url],
                                 capture_output=True, text=True, timeout=30)
        self.assertEqual(summary.returncode, 0, summary.stderr)
        needs = summary.stdout[summary.stdout.index("Besoins ouverts"):summary.stdout.index("Offres ouvertes")]
        self.assertRegex(needs, r"\n  Locaux +1 +1\n")
        self.assertRegex(needs, r"\n  Matériel et réemploi +· +·\n")

    def test_member_left_closes_its_items_and_leaves_no_personal_data(self):
        # The contact (mg:contact:<sid>) is the broker's to write and erase;
        # the matcher's records never hold it, even from an event that
        # carries one.
        st = Stack(self.ws)
        st.start_matcher()
        st.emit([member("asso-caen", CAEN), member("scop-caen", CAEN, family="FAMILY_COOPERATIVE")])
        st.emit([offer("o1", "scop-caen", CAEN), need("n1", "asso-caen", CAEN)])
        st.settle()
        record = h.events_pb2.Structure()
        record.ParseFromString(st.redis.call("HGET", "mg:structure:asso-caen", "pb"))
        self.assertEqual(record.name, "Structure asso-caen")
        self.assertFalse(record.HasField("contact"))
        self.assertEqual(len(st.matches()), 1)
        st.emit([member_left("asso-caen")])
        st.settle()
        self.assertIsNone(st.redis.call("GET", "mg:contact:asso-caen"))
        self.assertEqual(st.redis.call("HGET", "mg:structure:asso-caen", "left"), b"1")
        closed = st.journal("need.closed")
        self.assertEqual([(e.need_closed.need_id, e.need_closed.reason) for e in closed],
                         [("n1", h.events_pb2.CLOSURE_MEMBER_LEFT)])
        self.assertEqual([(m.revision, m.retired) for m in st.matches()], [(1, False), (2, True)])
        # No personal data left anywhere in the matcher's state.
        for key in st.redis.call("KEYS", "mg:*"):
            if key.startswith(b"mg:journal") or key.startswith(b"mg:dedupe"):
                continue
            kind = st.redis.call("TYPE", key)
            if kind == "hash":
                blob = b"".join(v for v in st.redis.call("HGETALL", key) if isinstance(v, bytes))
            elif kind == "string":
                blob = st.redis.call("GET", key)
            else:
                continue
            self.assertNotIn(b"camille@asso-caen", blob, key)

    # -- faults: replay, kill -9, two instances ----------------------------------------

    def dataset(self):
        """A deterministic stream: 12 structures, 24 offers, 36 needs on six
        communes, with updates and closures interleaved."""
        communes = [CAEN, HEROUVILLE, IFS, BAYEUX, LISIEUX, CAEN]
        cats = ["locaux", "materiel", "formation"]
        tagsets = [("cuisine", "stockage"), ("atelier", "outillage"), ("formation", "gestion", "budget"),
                   ("cuisine", "froid"), ("stockage",)]
        events = [member("s%02d" % i, communes[i % 6],
                         family="FAMILY_COOPERATIVE" if i % 3 == 0 else "FAMILY_ASSOCIATION",
                         naf=["56.21Z", "88.99B", "85.59A"][i % 3]) for i in range(12)]
        for i in range(24):
            events.append(offer("o%02d" % i, "s%02d" % (i % 12), communes[(i * 5) % 6], category=cats[i % 3],
                                radius=[10, 30, 60][i % 3], tags=tagsets[i % 5]))
        for i in range(36):
            events.append(need("n%02d" % i, "s%02d" % ((i * 7 + 1) % 12), communes[(i * 7) % 6],
                               category=cats[(i * 2) % 3], radius=[15, 40, 0][i % 3], tags=tagsets[(i * 3) % 5]))
            if i % 6 == 5:
                events.append(need("n%02d" % (i - 2), "s%02d" % (((i - 2) * 7 + 1) % 12), communes[((i - 2) * 7) % 6],
                                   category=cats[((i - 2) * 2) % 3], radius=50, tags=("cuisine", "stockage", "froid"),
                                   event_type="need.updated"))
            if i % 9 == 8:
                events.append(need_closed("n%02d" % (i - 4), "s%02d" % (((i - 4) * 7 + 1) % 12)))
        events.append(offer_withdrawn("o03", "s03"))
        return events

    def clean_run(self, events, **options):
        ws = h.Workspace()
        try:
            st = Stack(ws, **options)
            st.start_matcher()
            for i in range(0, len(events), 10):
                st.emit(events[i:i + 10])
            st.settle()
            return st.matches()
        finally:
            ws.close()

    def test_replay_kill9_and_two_instances_give_the_same_matches(self):
        events = self.dataset()
        reference = summary(self.clean_run(events))
        self.assertGreater(len(reference[0]), 10, "the dataset should produce matches")
        self.assertTrue(any(r[1] for r in reference[0].values()), "and retirements")
        self.assertTrue(any(rev > 1 for _, rev in reference[1]), "and revisions")

        with self.subTest("kill -9 mid-stream"):
            ws = h.Workspace()
            try:
                st = Stack(ws)
                st.start_matcher()
                for i in range(0, len(events), 10):
                    st.emit(events[i:i + 10])
                    if i in (20, 50, 80):
                        st.matchers[0].stop(signal.SIGKILL)
                        st.start_matcher()
                st.matchers[0].stop(signal.SIGKILL)
                st.start_matcher()
                st.settle()
                self.assertEqual(summary(st.matches()), reference)

                # Replaying the whole journal creates nothing new.
                before = len(st.journal())
                st.matchers[0].stop()
                st.redis.call("HSET", "mg:consumer:matcher", "seq", 0)
                d = st.start_matcher()
                st.settle()
                self.assertIn("checkpoint 0", d.log())
                self.assertEqual(len(st.journal()), before)
                self.assertEqual(summary(st.matches()), reference)
            finally:
                ws.close()

        # Two instances run concurrently: one may see an event applied by the
        # other before its own turn, so a pair's score can be computed from a
        # later state, and the fairness counts interleave. What must not
        # differ is what staff end up with: the same pairs proposed and open,
        # each event once. Fairness (time- and order-dependent by design) is
        # off for this comparison.
        fair_off = {"weight_fairness": 0}
        expected = open_pairs(self.clean_run(events, **fair_off))
        self.assertGreater(len(expected), 10)
        for label, options in (("two redundant instances", {}), ("two partitioned instances", {"instances": 2})):
            with self.subTest(label):
                ws = h.Workspace()
                try:
                    st = Stack(ws, **fair_off, **options)
                    st.start_matcher(0)
                    st.start_matcher(1)
                    for i in range(0, len(events), 10):
                        st.emit(events[i:i + 10])
                    st.settle(("matcher", "matcher-1"))
                    found = st.matches()
                    self.assertEqual(open_pairs(found), expected)
                    # Each pair's revisions are 1, 2, 3... once each.
                    revisions = {}
                    for m in found:
                        revisions.setdefault(m.match_id, []).append(m.revision)
                    for mid, revs in revisions.items():
                        self.assertEqual(revs, list(range(1, len(revs) + 1)), mid)
                finally:
                    ws.close()

    def test_a_revision_goes_to_the_journal_after_the_previous_one_another_instance_could_not_send(self):
        # Two redundant matchers: A records a pair's revision 1 but cannot
        # reach the broker (its ingest is a closed port); B records revision
        # 2. Before, B sent only its own: revision 2 was journaled before
        # revision 1 (or without it while A stayed cut off). B now sends the
        # previous revision still waiting in the outbox first.
        st = Stack(self.ws, weight_fairness=0)
        b = st.start_matcher(1)
        sections = dict(st.sections)
        st.sections = dict(sections, broker=dict(sections["broker"], ingest="tcp://127.0.0.1:%d" % h.free_port()))
        a = st.start_matcher(0)
        st.sections = sections
        st.emit([member("asso-caen", CAEN), member("coop-ifs", IFS, family="FAMILY_COOPERATIVE")])
        st.settle(("matcher", "matcher-1"))
        b.send_signal(signal.SIGSTOP)
        try:
            st.emit([need("n-1", "asso-caen", CAEN), offer("o-1", "coop-ifs", IFS)])
            mid = None

            def recorded():
                nonlocal mid
                ids = [k.decode() for k in st.redis.call("HKEYS", "mg:matcher:outbox")]
                mid = next((i for i in ids if i.startswith("match.")), None)
                return mid is not None
            h.wait_until(recorded, 10, 0.05, "A's revision 1 in the outbox")
            self.assertTrue(mid.endswith(".1"), mid)
            a.send_signal(signal.SIGSTOP)
        finally:
            b.send_signal(signal.SIGCONT)
        try:
            st.emit([need("n-1", "asso-caen", CAEN, radius=8, event_type="need.updated")])
            h.wait_until(lambda: len([m for m in st.matches() if m.need_id == "n-1"]) >= 2, 15, 0.1,
                         "both revisions journaled")
            self.assertEqual([m.revision for m in st.matches() if m.need_id == "n-1"], [1, 2])
        finally:
            a.send_signal(signal.SIGCONT)

    def test_matchers_that_leave_a_share_unmatched_or_disagree_on_the_shares_say_so(self):
        # Two matchers both given instance 0 of 2: the needs of share 1 are
        # matched by nobody. Each says so, once, and counts it.
        st = Stack(self.ws, instances=2)
        a = st.start_matcher(0)
        b = st.start_matcher(0)
        alone = "no matcher handles share 1 of 2"
        a.wait_log(alone, timeout=20)
        b.wait_log(alone, timeout=20)
        self.assertIn("also has instance 0", a.log())
        h.wait_until(lambda: st.redis.call("HGET", "mg:metrics:matcher", "maillage_matcher_shares_unmatched") == b"1",
                     20, 0.2, "the gauge of shares without a matcher")
        # A matcher for share 1 starts: the share is handled again.
        st.start_matcher(1)
        a.wait_log("every share of the needs has a matcher again", timeout=20)
        self.assertEqual(a.log().count(alone), 1, "said once")
        # One that splits the needs into three shares disagrees with them.
        st.start_matcher(2, instances=3)
        a.wait_log("splits the needs into other shares than this one", timeout=20)
        members = st.redis.call("ZRANGE", "mg:matcher:live", 0, -1)
        self.assertEqual(sorted(m.split(b"|")[:2] for m in members),
                         [[b"0", b"2"], [b"0", b"2"], [b"1", b"2"], [b"2", b"3"]])

    def test_a_matcher_restarted_after_kill9_does_not_take_itself_for_a_twin(self):
        # The killed process' entry stays in the roll call until it lapses;
        # the new one knows it ended (same machine, its pid is gone).
        st = Stack(self.ws)
        first = st.start_matcher(0)
        h.wait_until(lambda: st.redis.call("ZCARD", "mg:matcher:live") == 1, 10, 0.1, "the roll call")
        first.stop(signal.SIGKILL)
        second = st.start_matcher(0)
        mine = (":%d:" % second.proc.pid).encode()
        # Its second renewal (2 s) drops the ended entry, which would
        # otherwise lapse 6 s after its last renewal.

        def only_mine():
            members = st.redis.call("ZRANGE", "mg:matcher:live", 0, -1)
            return len(members) == 1 and mine in members[0]
        h.wait_until(only_mine, 4, 0.1, "the ended entry dropped")
        self.assertNotIn("also has instance", second.log())


if __name__ == "__main__":
    unittest.main()
