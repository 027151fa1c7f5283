"""maillage-notifier: every kind of notification reaches the right staff
member through the inbox and by e-mail (a real aiosmtpd server), in French,
saying why it was sent; and each step that writes inbox entries announces
them at once on the Redis channel mg:inbox:new (the gateway's live stream);
a match retired or revised notifies nobody but is announced on
mg:match:changed (the staff pages showing it fetch it again).

Real redis-server, broker and notifier on loopback; events are emitted
through the broker (the matcher need not run)."""

import os
import threading
import time
import unittest

import harness as h
import test_notifier as tn  # the Stack, receivers and event builders (as a module: its tests do not run here)

CAEN, ROUEN = tn.CAEN, tn.ROUEN
CAEN_LA_MER = "200065597"  # EPCI of Caen in config/communes-normandie.csv
EVREUX = "27229"

WHY_CALVADOS = "Vous recevez ce message car vous suivez le Calvados et toutes les catégories."
WHY_SEINE_MARITIME = "Vous recevez ce message car vous suivez la Seine-Maritime et toutes les catégories."


def cooperation_proposed(pid, from_sid, to_sid, category="locaux", title="Mutualiser une cuisine professionnelle",
                         territory=(), description="Une cuisine aux normes, partagée trois jours par semaine.",
                         kind="COOPERATION_KIND_POOLING"):
    env = tn._env("cooperation.proposed")
    p = env.cooperation_proposed
    p.proposal_id, p.from_structure_id, p.to_structure_id = pid, from_sid, to_sid
    p.territory.extend(territory)
    p.kind = h.events_pb2.CooperationKind.Value(kind)
    p.category, p.title = category, title
    p.description = description
    return env


def cooperation_answered(pid, sid, answer="COOPERATION_ANSWER_ACCEPTED", comment="Avec plaisir, appelons-nous."):
    env = tn._env("cooperation.answered")
    a = env.cooperation_answered
    a.proposal_id, a.structure_id, a.comment = pid, sid, comment
    a.answer = h.events_pb2.CooperationAnswer.Value(answer)
    return env


def collective_need(cid, structure_ids, category="materiel"):
    env = tn._env("collective_need.detected")
    c = env.collective_need_detected
    c.collective_id, c.category, c.revision = cid, category, 1
    c.territory, c.territory_name = "epci:" + CAEN_LA_MER, "CU Caen la Mer"
    c.need_ids.extend(["cn-need-%d" % i for i in range(len(structure_ids))])
    c.structure_ids.extend(structure_ids)
    c.explanation = "3 structures de CU Caen la Mer expriment un besoin de matériel et réemploi."
    return env


class InboxAnnouncements:
    """SUBSCRIBE mg:inbox:new (or `channel`) on its own connection, in a
    thread. For each message, records the staff id (the message) and whether
    that staff member's inbox already held an entry when the message arrived."""

    def __init__(self, redis, channel="mg:inbox:new"):
        self.redis = redis
        self.conn = redis._connect()
        self.conn.sock.settimeout(0.2)
        assert self.conn.call("SUBSCRIBE", channel)[0] == b"subscribe"
        self.lookup = redis._connect()
        self.messages = []  # (staff id, inbox size when it arrived)
        self.lock = threading.Lock()
        self.stopping = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stopping:
            try:
                msg = self.conn.read()
            except OSError:  # the read timeout: look at `stopping` again
                continue
            if isinstance(msg, list) and msg[0] == b"message":
                staff = msg[2].decode()
                size = self.lookup.call("ZCARD", "mg:inbox:" + staff)
                with self.lock:
                    self.messages.append((staff, size))

    def staff(self):
        with self.lock:
            return [s for s, _ in self.messages]

    def all(self):
        with self.lock:
            return list(self.messages)

    def close(self):
        self.stopping = True
        self.thread.join(2)
        self.conn.sock.close()
        self.lookup.sock.close()


class NotifierKindsTest(unittest.TestCase):
    def setUp(self):
        self.ws = h.Workspace("maillage-notifier-kinds-")

    def tearDown(self):
        self.ws.close(keep=bool(os.environ.get("KEEP")))

    def test_each_kind_reaches_the_right_staff_by_inbox_and_email_saying_why(self):
        smtp = self.ws.own(tn.SmtpReceiver())
        st = tn.Stack(self.ws, {
            "claire": {"name": "Claire Dupont", "departments": "14", "channels": "inbox,email",
                       "email": "claire.dupont@cress-normandie.example"},
            "remi": {"name": "Rémi Leroy", "departments": "76", "channels": "inbox,email",
                     "email": "remi.leroy@cress-normandie.example"},
        }, smtp_url=smtp.url, mail_from="Maillage CRESS <maillage@cress-normandie.example>", unanswered_days=14)
        st.start()
        # member.joined: one in the Calvados (Claire), one in Seine-Maritime (Rémi)
        st.emit([tn.member("s-caen", CAEN, "Épicerie solidaire de Caen"),
                 tn.member("s-rouen", ROUEN, "Atelier vélo Rouen")])
        # a need nobody answers, a match of another need of the Caen structure
        # with an offer of the Rouen one, a cooperation proposed by the Caen
        # structure and answered by the Rouen one, a collective need in Caen
        # la Mer (whose second structure is known, the third not)
        st.emit([tn.need("n-alone", "s-caen", title="Local pour une épicerie")])
        st.emit([tn.need("n-cuisine", "s-caen"), tn.need("n-four", "s-caen", title="Un four de boulanger"),
                 tn.offer("o-rouen", "s-rouen", ROUEN, title="Cuisine de Rouen"),
                 tn.offer("o-caen", "s-rouen", CAEN, title="Cuisine de Caen")])
        same_commune = tn.match("m-2", "n-four", "o-caen", "s-caen", "s-rouen")
        same_commune.match_found.distance_km = 0.0
        st.emit([tn.match("m-1", "n-cuisine", "o-rouen", "s-caen", "s-rouen"), same_commune])
        st.emit([cooperation_proposed("p-1", "s-caen", "s-rouen")])
        st.emit([cooperation_answered("p-1", "s-rouen")])
        st.emit([collective_need("c-1", ["s-caen", "s-rouen", "s-c"])])
        st.settle()
        # 14 days later (the test clock), the need is still without any match
        st.set_clock(15 * 86400 * 1000)
        want_claire = {"member:s-caen:cress-normandie", "match:m-1", "match:m-2", "coop:p-1", "coopans:p-1:s-rouen:1", "cn:c-1:1",
                       "unanswered:n-alone"}
        h.wait_until(lambda: {e["item"] for e in st.inbox("claire")} >= want_claire, 15, what="claire's inbox")
        h.wait_until(lambda: len(smtp.messages) >= 10, 15, what="ten e-mails")
        time.sleep(1.5)  # anything extra would arrive now

        # -- the inbox: the right person, once, in French, saying why
        claire = {e["item"]: e for e in st.inbox("claire")}
        self.assertEqual(set(claire), want_claire)
        remi = {e["item"]: e for e in st.inbox("remi")}
        # the cooperation is addressed to a structure of the Seine-Maritime
        self.assertEqual(set(remi), {"member:s-rouen:cress-normandie", "coop:p-1", "coopans:p-1:s-rouen:1"})
        self.assertEqual(st.inbox("accueil"), [])  # nothing fell to the default recipient
        expected = {
            "member:s-caen:cress-normandie": (
                "member_joined", "Nouvelle structure adhérente à accueillir : Épicerie solidaire de Caen (Caen)",
                "Épicerie solidaire de Caen (association, Caen, Calvados) vient d'adhérer au réseau "
                "cress-normandie."),
            # each line names its own item, structure and commune; the
            # distance as the explanation says it
            "match:m-1": (
                "match", "Mise en relation proposée : Cuisine partagée et stockage — Locaux",
                "- Besoin : Cuisine partagée et stockage, exprimé par Épicerie solidaire de Caen (Caen)\n"
                "- Offre : Cuisine de Rouen, proposée par Atelier vélo Rouen (Rouen)\n"
                "- Score : 80 %, à 3 km, rang 1 parmi les offres proposées pour ce besoin à ce jour\n"),
            "coop:p-1": (
                "cooperation_proposed", "Proposition de coopération : Mutualiser une cuisine professionnelle",
                "Épicerie solidaire de Caen propose une coopération (mutualisation) à Atelier vélo Rouen"),
            "coopans:p-1:s-rouen:1": (
                "cooperation_answered", "Coopération « Mutualiser une cuisine professionnelle » : acceptée",
                "Atelier vélo Rouen a accepté la proposition de coopération faite par Épicerie solidaire de Caen "
                "(« Mutualiser une cuisine professionnelle »)."),
            "cn:c-1:1": (
                "collective_need", "Opportunité de mutualisation : Matériel et réemploi à la CU Caen la Mer (3 structures)",
                "3 structures de la CU Caen la Mer expriment le même besoin : Matériel et réemploi."),
            "unanswered:n-alone": (
                "unanswered_need", "Besoin sans réponse depuis 14 jours : Local pour une épicerie",
                "n'a reçu aucune proposition de mise en relation depuis 14 jours"),
        }
        for item, (kind, title, sentence) in expected.items():
            e = claire[item]
            self.assertEqual(e["kind"], kind, item)
            self.assertEqual(e["title"], title, item)
            self.assertIn("Bonjour Claire Dupont,", e["text"], item)
            self.assertIn(sentence, e["text"], item)
            self.assertIn(WHY_CALVADOS, e["text"], item)
        # two items of one commune: no "à 0,0 km"
        m2 = [e for e in st.inbox("claire") if e["item"] == "match:m-2"][0]
        self.assertIn("- Offre : Cuisine de Caen, proposée par Atelier vélo Rouen (Caen)\n"
                      "- Score : 80 %, dans la même commune, rang 1", m2["text"])
        self.assertIn("Avec plaisir, appelons-nous.", claire["coopans:p-1:s-rouen:1"]["text"])
        self.assertIn("Épicerie solidaire de Caen, Atelier vélo Rouen, s-c", claire["cn:c-1:1"]["text"])
        self.assertIn(WHY_SEINE_MARITIME, remi["member:s-rouen:cress-normandie"]["text"])
        # the summary (the card's line, the digest's second) says what the title does not
        summaries = {item: claire[item]["summary"] for item in expected}
        self.assertEqual(summaries["member:s-caen:cress-normandie"], "Association · adhésion au réseau cress-normandie")
        self.assertTrue(summaries["match:m-1"].startswith(
            "Cuisine partagée et stockage (Épicerie solidaire de Caen, Caen) ↔ Cuisine de Rouen (Atelier vélo Rouen, "
            "Rouen) : "), summaries["match:m-1"])
        self.assertEqual(summaries["coop:p-1"], "Épicerie solidaire de Caen propose une coopération (mutualisation) "
                                                "à Atelier vélo Rouen.")
        self.assertEqual(summaries["cn:c-1:1"], "Structures : Épicerie solidaire de Caen, Atelier vélo Rouen, s-c")
        self.assertRegex(summaries["unanswered:n-alone"], r"^Exprimé par .+ \(Locaux, Caen\) le \d\d/\d\d/\d{4}\.$")

        # -- the e-mails: the same people, one each, both parts saying why
        # (Claire's checked here)
        mails = smtp.parsed()
        self.assertEqual(len(mails), 10, [str(m["Subject"]) for _, m in mails])
        by_subject = {}
        for rcpt, msg in mails:
            by_subject.setdefault(str(msg["Subject"]), []).append((rcpt, msg))
        for item, (kind, title, sentence) in expected.items():
            got = [m for m in by_subject.get(title, []) if m[0] == ["claire.dupont@cress-normandie.example"]]
            self.assertEqual(len(got), 1, title)
            rcpt, msg = got[0]
            self.assertEqual(rcpt, ["claire.dupont@cress-normandie.example"], title)
            self.assertEqual(str(msg["X-Maillage-Kind"]), kind)
            self.assertEqual(str(msg["X-Maillage-Idempotency-Key"]), "%s|claire|email" % item)
            text = msg.get_body(("plain",)).get_content().replace("\r\n", "\n")
            html = msg.get_body(("html",)).get_content()
            self.assertIn(sentence, text, title)
            self.assertIn(WHY_CALVADOS, text, title)
            self.assertIn(WHY_CALVADOS, html, title)
            self.assertIn("https://maillage.example.org/#", text)
        rcpt, msg = by_subject["Nouvelle structure adhérente à accueillir : Atelier vélo Rouen (Rouen)"][0]
        self.assertEqual(rcpt, ["remi.leroy@cress-normandie.example"])
        self.assertIn(WHY_SEINE_MARITIME, msg.get_body(("plain",)).get_content())

    def test_a_collective_need_of_many_long_names_lists_whole_names_then_how_many_more(self):
        # 40 structures with long accented names overflow the list's room:
        # it stops after a whole name ("…, Name et 31 autres"), so the text
        # stays UTF-8 and the webhook gets it (jansson refuses a cut
        # character: the webhook got "{}").
        hook = self.ws.own(tn.WebhookReceiver())
        st = tn.Stack(self.ws, {"claire": {"name": "Claire", "departments": "14", "channels": "inbox,webhook",
                                           "webhook": hook.url}}, default_staff="claire")
        st.start()
        sids = ["s-long-%02d" % i for i in range(40)]
        names = ["Coopérative d'activité et d'emploi des métiers du bâtiment écologique et de l'éco-rénovation "
                 "du Calvados, antenne numéro %02d" % i for i in range(40)]
        st.emit([tn.member(sid, CAEN, name) for sid, name in zip(sids, names)])
        st.emit([collective_need("c-long", sids)])
        h.wait_until(lambda: [b for b in hook.delivered() if "cn:c-long" in b.get("idempotency_key", "")], 15,
                     what="the collective need's webhook")
        body = [b for b in hook.delivered() if "cn:c-long" in b["idempotency_key"]][0]
        entry = [e for e in st.inbox("claire") if e["item"] == "cn:c-long:1"][0]
        for text in (body["text"], entry["text"]):
            self.assertNotIn("\ufffd", text)
            listed = [n for n in names if n in text]
            self.assertGreater(len(listed), 3)
            self.assertEqual(listed, names[:len(listed)])
            self.assertIn("%s et %d autres" % (names[len(listed) - 1], 40 - len(listed)), text)

    def test_a_collective_needs_revision_older_than_one_notified_is_not(self):
        # Redundant matchers each send the revisions they made: the journal
        # may hold revision 4 (6 structures) before revision 3 (5), and staff
        # got the smaller group last, as if it were the news.
        st = tn.Stack(self.ws, {"claire": {"name": "Claire", "departments": "14", "channels": "inbox"}},
                      default_staff="claire")
        st.start()
        sids = ["s-a", "s-b", "s-c", "s-d"]
        st.emit([tn.member(sid, CAEN, "Structure " + sid) for sid in sids])
        newer, older, later = (collective_need("c-ord", sids[:k]) for k in (4, 3, 4))
        newer.collective_need_detected.revision = 2
        older.collective_need_detected.revision = 1
        later.collective_need_detected.revision = 3
        st.emit([newer])
        st.emit([older])
        st.settle()
        collective = lambda: sorted(e["item"] for e in st.inbox("claire") if e["item"].startswith("cn:"))  # noqa: E731
        self.assertEqual(collective(), ["cn:c-ord:2"])
        st.emit([later])
        h.wait_until(lambda: collective() == ["cn:c-ord:2", "cn:c-ord:3"], 10, what="the later revision")

    def test_a_collective_need_around_le_havre_says_du_havre_and_its_radius(self):
        # A group by distance is named by its centre commune: "à Le Havre"
        # and "structures de Le Havre" were written as is, then "structures
        # du Havre", as if all were in Le Havre, then "autour du Havre"
        # without the radius the explanation gave ("à moins de 20 km du
        # Havre"). A department's group read "à dep:14".
        st = tn.Stack(self.ws, {"remi": {"name": "Rémi", "departments": "76, 14", "channels": "inbox"}},
                      default_staff="remi")
        st.start()
        cn = collective_need("c-havre", ["s-a", "s-b", "s-c"])
        cn.collective_need_detected.territory, cn.collective_need_detected.territory_name = "76351", "Le Havre"
        cn.collective_need_detected.radius_km = 20
        no_radius = collective_need("c-caen", ["s-a", "s-b", "s-c"])  # from a matcher before radius_km
        no_radius.collective_need_detected.territory, no_radius.collective_need_detected.territory_name = CAEN, "Caen"
        by_department = collective_need("c-dep", ["s-a", "s-b", "s-c"])
        by_department.collective_need_detected.territory = "dep:14"
        seine_maritime = collective_need("c-dep76", ["s-a", "s-b", "s-c"])
        seine_maritime.collective_need_detected.territory = "dep:76"
        st.emit([cn, no_radius, by_department, seine_maritime])
        entry = h.wait_until(lambda: next((e for e in st.inbox("remi") if e["item"] == "cn:c-havre:1"), None), 15,
                             what="the collective need's inbox entry")
        self.assertEqual(entry["title"],
                         "Opportunité de mutualisation : Matériel et réemploi autour du Havre (3 structures)")
        # its radius said where the text says who
        self.assertIn("3 structures à moins de 20 km du Havre expriment le même besoin", entry["text"])
        self.assertEqual(entry["summary"], "Structures : s-a, s-b, s-c")
        entry = h.wait_until(lambda: next((e for e in st.inbox("remi") if e["item"] == "cn:c-caen:1"), None), 15,
                             what="the collective need without a radius")
        self.assertIn("3 structures autour de Caen expriment le même besoin", entry["text"])
        entry = h.wait_until(lambda: next((e for e in st.inbox("remi") if e["item"] == "cn:c-dep:1"), None), 15,
                             what="the department's collective need")
        self.assertEqual(entry["title"],
                         "Opportunité de mutualisation : Matériel et réemploi dans le Calvados (3 structures)")
        self.assertIn("3 structures du Calvados expriment", entry["text"])
        self.assertNotIn("dep:", entry["text"] + entry["title"] + entry["summary"])
        # « en Seine-Maritime », not « dans la Seine-Maritime »
        entry = h.wait_until(lambda: next((e for e in st.inbox("remi") if e["item"] == "cn:c-dep76:1"), None), 15,
                             what="the Seine-Maritime's collective need")
        self.assertEqual(entry["title"],
                         "Opportunité de mutualisation : Matériel et réemploi en Seine-Maritime (3 structures)")
        self.assertIn("3 structures de la Seine-Maritime expriment", entry["text"])

    def test_an_epci_across_two_departments_reaches_the_staff_of_both(self):
        # The CC du Pays de Honfleur-Beuzeville lies in the Calvados and the
        # Eure. A collective need or a proposal addressed to it went to the
        # staff of the department of its first commune in the table only:
        # the Eure's never heard of it.
        honfleur_beuzeville = "epci:200066827"
        st = tn.Stack(self.ws, {
            "claire": {"name": "Claire Dupont", "departments": "14", "channels": "inbox"},
            "eva": {"name": "Eva Martin", "departments": "27", "channels": "inbox"},
        })
        st.start()
        st.emit([tn.member("s-rouen", ROUEN, "Atelier vélo Rouen")])
        cn = collective_need("c-pays", ["s-a", "s-b", "s-c"])
        cn.collective_need_detected.territory = honfleur_beuzeville
        cn.collective_need_detected.territory_name = "CC du Pays de Honfleur-Beuzeville"
        st.emit([cn, cooperation_proposed("p-pays", "s-rouen", "", title="Une réponse commune",
                                          territory=(honfleur_beuzeville,))])
        for staff in ("claire", "eva"):
            h.wait_until(lambda: {e["item"] for e in st.inbox(staff)} >= {"cn:c-pays:1", "coop:p-pays"}, 15,
                         what=staff + "'s inbox")
        self.assertEqual(st.redis.call("HGET", "mg:notifier:coop:p-pays", "also"), b"14 27")

    def test_a_cooperation_reaches_the_staff_of_both_sides_and_of_its_territory(self):
        # Staff following the Calvados, the Eure, the Seine-Maritime. p-2
        # goes from Caen to Évreux: the staff of both hear of it, and of its
        # answer. p-3 goes from Rouen to any structure of the Eure or of Caen
        # la Mer: the staff of all three departments hear of it, in words.
        # (The Caen structure joins a network that is a member itself: its
        # message names it. p-3 has no description and p-2's answer no
        # comment: their messages have no blank line for them.)
        st = tn.Stack(self.ws, {
            "claire": {"name": "Claire Dupont", "departments": "14", "channels": "inbox"},
            "eva": {"name": "Eva Martin", "departments": "27", "channels": "inbox"},
            "remi": {"name": "Rémi Leroy", "departments": "76", "channels": "inbox"},
        })
        st.start()
        st.emit([tn.member("reseau-epiceries", CAEN, "Épiceries solidaires de Normandie")])
        st.emit([tn.member("s-caen", CAEN, "Épicerie solidaire de Caen", networks=("reseau-epiceries",)),
                 tn.member("s-evreux", EVREUX, "Ressourcerie d'Évreux"),
                 tn.member("s-rouen", ROUEN, "Atelier vélo Rouen")])
        st.emit([cooperation_proposed("p-2", "s-caen", "s-evreux", title="Un camion en commun"),
                 cooperation_proposed("p-3", "s-rouen", "", title="Une réponse commune",
                                      territory=("dep:27", "epci:" + CAEN_LA_MER), description="", category="",
                                      kind="COOPERATION_KIND_UNSPECIFIED")])
        st.emit([cooperation_answered("p-2", "s-evreux", comment="")])
        want = {"claire": {"member:reseau-epiceries:cress-normandie", "member:s-caen:reseau-epiceries", "coop:p-2",
                           "coop:p-3", "coopans:p-2:s-evreux:1"},
                "eva": {"member:s-evreux:cress-normandie", "coop:p-2", "coop:p-3", "coopans:p-2:s-evreux:1"},
                "remi": {"member:s-rouen:cress-normandie", "coop:p-3"}}
        for staff, items in want.items():
            h.wait_until(lambda: {e["item"] for e in st.inbox(staff)} >= items, 15, what=staff + "'s inbox")
        time.sleep(1.0)  # anything extra would arrive now
        inbox = {staff: {e["item"]: e for e in st.inbox(staff)} for staff in want}
        self.assertEqual({staff: set(items) for staff, items in inbox.items()}, want)
        self.assertEqual(st.inbox("accueil"), [])
        self.assertIn("Épicerie solidaire de Caen (association, Caen, Calvados) vient d'adhérer au réseau "
                      "Épiceries solidaires de Normandie.", inbox["claire"]["member:s-caen:reseau-epiceries"]["text"])
        p3 = inbox["eva"]["coop:p-3"]["text"]
        # (Without a kind nor a category: "une coopération (coopération)",
        # "Catégorie : toutes catégories" were written.)
        self.assertIn("Atelier vélo Rouen propose une coopération (type non précisé) à toute structure de l'Eure et "
                      "de la CU Caen la Mer :\n\nUne réponse commune\n\nCatégorie : non précisée", p3)
        self.assertIn("propose une coopération (mutualisation) à Ressourcerie d'Évreux",
                      inbox["eva"]["coop:p-2"]["text"])
        self.assertIn("Vous recevez ce message car vous suivez l'Eure et toutes les catégories.", p3)
        self.assertIn("Vous recevez ce message car vous suivez le Calvados et toutes les catégories.",
                      inbox["claire"]["coop:p-3"]["text"])
        answer = inbox["eva"]["coopans:p-2:s-evreux:1"]["text"]
        self.assertIn("Vous recevez ce message car vous suivez l'Eure et toutes les catégories.", answer)
        self.assertIn("Ressourcerie d'Évreux a accepté la proposition de coopération faite par Épicerie solidaire de "
                      "Caen (« Un camion en commun »).\n\nSuivre la proposition : ", answer)

    def test_whoever_heard_of_a_proposal_by_its_network_hears_of_its_answers(self):
        # Nora follows reseau-manche: she got p-1 (from a member of it); its
        # answer, by a structure of another network, went to the default
        # recipient (departments were carried over to answers, networks not).
        st = tn.Stack(self.ws, {"nora": {"name": "Nora", "networks": "reseau-manche", "channels": "inbox"}})
        st.start()
        st.emit([tn.member("s-cherb", tn.CHERBOURG, "Ressourcerie du Cotentin", networks=("reseau-manche",)),
                 tn.member("s-rouen", ROUEN, "Atelier vélo Rouen", networks=("reseau-velo",))])
        st.emit([cooperation_proposed("p-1", "s-cherb", "s-rouen")])
        h.wait_until(lambda: "coop:p-1" in [e["item"] for e in st.inbox("nora")], 10, what="the proposal")
        st.emit([cooperation_answered("p-1", "s-rouen")])
        h.wait_until(lambda: "coopans:p-1:s-rouen:1" in [e["item"] for e in st.inbox("nora")], 10, what="the answer")
        self.assertNotIn("coopans:p-1:s-rouen:1", [e["item"] for e in st.inbox("accueil")])

    def test_a_webhook_whose_idempotency_key_is_too_long_for_a_header_carries_the_notification_id(self):
        # Ids of 64 bytes make an answer's key "coopans:<pid>:<sid>:1|<staff>|webhook"
        # longer than a header may be (200 bytes): the notification's id, a
        # hash of the key, goes in its place (the webhook was refused for good).
        hook = self.ws.own(tn.WebhookReceiver())
        staff = "c" * 64
        st = tn.Stack(self.ws, {staff: {"name": "Claire", "departments": "14", "channels": "webhook",
                                        "webhook": hook.url}})
        st.start()
        pid, a, b = "p" * 64, "s-caen-" + "a" * 57, "s-caen-" + "b" * 57
        st.emit([tn.member(a, CAEN, "Épicerie solidaire de Caen"), tn.member(b, CAEN, "Atelier vélo Caen")])
        st.emit([cooperation_proposed(pid, a, b)])
        st.emit([cooperation_answered(pid, b)])
        item = "coopans:%s:%s:1" % (pid, b)
        h.wait_until(lambda: [r for r in hook.requests if r[1]["idempotency_key"].startswith(item)], 15,
                     what="the answer's webhook")
        _, body, headers = [r for r in hook.requests if r[1]["idempotency_key"].startswith(item)][0]
        self.assertGreater(len(body["idempotency_key"]), 200)
        nid = next(iter(st.records(item)))
        self.assertEqual(headers.get("Idempotency-Key"), nid)
        # Recorded once the notifier has read the receiver's answer.
        h.wait_until(lambda: st.record(nid).get("state") == "delivered", 10, what="the delivered state")

    def test_a_network_named_in_the_configuration_goes_by_its_name(self):
        # [networks] names urscop-normandie: the welcome and the reason say
        # « URSCOP Normandie ». fcs-normandie is not named there but is a
        # member structure: its name, in both. A network neither names goes
        # by its id.
        st = tn.Stack(self.ws, {"claire": {"name": "Claire", "channels": "inbox",
                                           "networks": "urscop-normandie,fcs-normandie,reseau-x"}},
                      more_sections={"networks": {"urscop-normandie": "URSCOP Normandie"}})
        st.start()
        st.emit([tn.member("fcs-normandie", CAEN, "Fédération des centres sociaux de Normandie")])
        st.emit([tn.member("s-scop", CAEN, "Scop du bocage", networks=("urscop-normandie",)),
                 tn.member("s-fcs", ROUEN, "Centre social de Rouen", networks=("fcs-normandie",)),
                 tn.member("s-x", ROUEN, "Atelier X", networks=("reseau-x",))])
        entries = h.wait_until(lambda: (lambda e: e if len(e) == 3 else None)(
            {e["item"]: e["text"] for e in st.inbox("claire")}), 15, what="the three welcomes")
        # With the article the name wants: « à la Fédération ... », not
        # « au réseau Fédération ... ».
        why = "car vous suivez tous les départements, toutes les catégories et %s."
        for item, to, the in (("member:s-scop:urscop-normandie", "au réseau URSCOP Normandie",
                               "le réseau URSCOP Normandie"),
                              ("member:s-fcs:fcs-normandie", "à la Fédération des centres sociaux de Normandie",
                               "la Fédération des centres sociaux de Normandie"),
                              ("member:s-x:reseau-x", "au réseau reseau-x", "le réseau reseau-x")):
            self.assertIn("vient d'adhérer %s." % to, entries[item])
            self.assertIn(why % the, entries[item])

    def test_an_offer_placed_by_its_territory_only_is_named_by_it_at_no_distance(self):
        st = tn.Stack(self.ws, {"claire": {"name": "Claire", "departments": "14", "channels": "inbox"}})
        st.start()
        st.emit([tn.member("s-caen", CAEN, "Épicerie solidaire de Caen"),
                 tn.member("s-rouen", ROUEN, "Fondation du littoral")])
        fund = tn.offer("o-fonds", "s-rouen", commune="", title="Fonds d'amorçage")
        fund.offer_published.offer.territory.append("dep:14")
        st.emit([tn.need("n1", "s-caen"), fund])
        found = tn.match("m-t", "n1", "o-fonds", "s-caen", "s-rouen")
        found.match_found.distance_km = -1.0  # placed by its territory: no distance
        st.emit([found])
        h.wait_until(lambda: [e for e in st.inbox("claire") if e["item"] == "match:m-t"], 15, what="the match")
        text = [e for e in st.inbox("claire") if e["item"] == "match:m-t"][0]["text"]
        self.assertIn("- Offre : Fonds d'amorçage, proposée par Fondation du littoral (Calvados)\n", text)
        self.assertIn("- Score : 80 %, sur le territoire desservi, rang 1", text)

    def test_new_inbox_entries_are_announced_once_per_staff_and_step(self):
        st = tn.Stack(self.ws, {
            "claire": {"name": "Claire", "departments": "14", "channels": "inbox"},
            "tous": {"name": "Toute la Normandie", "channels": "inbox,webhook",
                     "webhook": "http://127.0.0.1:%d/hook" % h.free_port()},
            "hook": {"name": "Webhook seulement", "channels": "webhook",
                     "webhook": "http://127.0.0.1:%d/hook" % h.free_port()},
            "remi": {"name": "Rémi", "departments": "76", "channels": "inbox"},
        })
        st.start()
        ann = self.ws.own(InboxAnnouncements(st.redis))
        st.emit([tn.need("n1", "s-caen"), tn.offer("o1", "s-rouen", ROUEN)])
        st.emit([tn.match("m-1", "n1", "o1", "s-caen", "s-rouen", department="14")])
        h.wait_until(lambda: sorted(ann.staff()) == ["claire", "tous"], 10, what="the announcements")
        # announced after the entry was written (same script call): a reader
        # woken by the message finds it
        for staff, size in ann.all():
            self.assertEqual(size, 1, staff)
        # a second event: one more announcement per staff member concerned
        st.emit([tn.match("m-2", "n1", "o1", "s-caen", "s-rouen", department="76")])
        h.wait_until(lambda: len(ann.staff()) == 4, 10, what="the second event's announcements")
        self.assertEqual(sorted(ann.staff()[2:]), ["remi", "tous"])
        # a replay creates nothing, so announces nothing
        st.settle()
        st.notifier.stop()
        st.redis.call("HSET", "mg:consumer:notifier", "seq", "0")
        st.start()
        st.settle()
        time.sleep(0.5)
        self.assertEqual(len(ann.staff()), 4, ann.all())
        self.assertEqual(len(st.inbox("tous")), 2)

    def test_a_retired_or_revised_match_is_announced_on_mg_match_changed_not_notified(self):
        st = tn.Stack(self.ws, {"claire": {"name": "Claire", "departments": "14", "channels": "inbox"}})
        st.start()
        changed = self.ws.own(InboxAnnouncements(st.redis, "mg:match:changed"))
        inbox = self.ws.own(InboxAnnouncements(st.redis))
        st.emit([tn.need("n1", "s-caen"), tn.offer("o1", "s-rouen", ROUEN)])
        # A first proposal is news: an inbox entry, no hint.
        st.emit([tn.match("m-1", "n1", "o1", "s-caen", "s-rouen")])
        h.wait_until(lambda: inbox.staff() == ["claire"], 10, what="the first proposal's announcement")
        st.settle()
        self.assertEqual(changed.staff(), [])
        # A revision, then the retirement: no notification, one hint each.
        st.emit([tn.match("m-1", "n1", "o1", "s-caen", "s-rouen", score=0.9, revision=2)])
        h.wait_until(lambda: changed.staff() == ["m-1"], 10, what="the revision's hint")
        st.emit([tn.match("m-1", "n1", "o1", "s-caen", "s-rouen", revision=3, retired=True)])
        h.wait_until(lambda: changed.staff() == ["m-1", "m-1"], 10, what="the retirement's hint")
        st.settle()
        time.sleep(0.3)
        self.assertEqual([e["item"] for e in st.inbox("claire")], ["match:m-1"])
        self.assertEqual(inbox.staff(), ["claire"])


if __name__ == "__main__":
    unittest.main()
