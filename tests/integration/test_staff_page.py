"""The staff page in headless Chromium against the real stack.

redis-server, maillage-broker, -matcher, -notifier and -gateway on loopback;
Debian's chromium driven by chromedriver (python3-selenium). A staff member
signs in with a token issued by `maillage token issue --staff`; a network
system (its own token) posts members, an offer and two needs to
POST /v1/events; the matches and the collective need reach the page live
over the event stream, without a reload; "Mise en relation faite" is
clicked, "Pas pertinent" is reached with Tab and pressed with Enter, and
both match.feedback events are found in the journal with the match id and
the staff id. The gateway restarts and the stream resumes with
Last-Event-ID, showing what arrived meanwhile. The map and the charts are
drawn from the real figures; at phone width no view scrolls sideways; a
revoked token sends the page back to the sign-in form. Screenshots (laptop and phone) are saved in
$MAILLAGE_BUILD/artifacts/.

What staff open from a notification: the links of a cooperation's and a new
member's notifications open the proposal (with its answers) and the
structure (with its open items), names link on to structures and needs, a
need lists its open matches best first with their current rank (a better
offer that came later is first, the older match second; one in the need's
commune is « dans la même commune », not « 0 km »), an unknown id
says so in French, and a collective need names its structures. A match
whose offer is withdrawn shows as retired: a muted card without « Non lue »
nor feedback buttons, and a detail titled « Mise en relation retirée »
saying why.

A match retired while the page is open turns retired live: its need closed
through the gateway, its card says « Mise en relation retirée » and why,
without a reload (the stream's `match` hint, which leaves the stream's
Last-Event-ID alone); one retired while the stream is cut is shown retired,
card and open detail, once the stream is back.

Skipped only when chromium or chromedriver is not installed."""

import csv
import hashlib
import http.client
import json
import os
import time
import unittest
import urllib.error
import urllib.request

import harness as h

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
HAVE_CHROMIUM = os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)

if HAVE_CHROMIUM:
    from selenium import webdriver
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select, WebDriverWait

CAEN, HEROUVILLE, IFS = "14118", "14327", "14341"  # all three in CU Caen la Mer
STAFF = "claire"
STAFF_NETWORK = "cress-normandie"
NETWORK = "reseau-test"
NETWORK_NAME = "Réseau des tiers-lieux de test"  # [networks]
ARTIFACTS = os.path.join(h.BUILD, "artifacts")
LAPTOP = (1366, 900)
PHONE = (390, 844)
# A title with markup: the page must show it as text, never as HTML.
NEED_TITLE = "Cuisine <b>partagée</b> & stockage"


def communes_count():
    with open(os.path.join(h.SOURCE, "config", "communes-normandie.csv"), newline="") as f:
        return sum(1 for _ in csv.DictReader(f))


# ---- events in proto3 JSON, as a network system would post them ------------------

def member(sid, commune, name):
    return {"type": "member.joined", "memberJoined": {
        "structure": {"structureId": sid, "name": name, "family": "FAMILY_ASSOCIATION", "nafCode": "88.99B",
                      "commune": commune, "networks": [NETWORK]},
        "network": NETWORK, "joinedOn": time.strftime("%Y-%m-%d")}}


def need(nid, sid, commune, title=NEED_TITLE):
    return {"type": "need.reported", "needReported": {"need": {
        "needId": nid, "structureId": sid, "category": "locaux", "commune": commune, "radiusKm": 30,
        "tags": ["cuisine", "stockage"], "title": title}}}


def offer(oid, sid, commune):
    return {"type": "offer.published", "offerPublished": {"offer": {
        "offerId": oid, "providerId": sid, "category": "locaux", "commune": commune, "radiusKm": 20,
        "tags": ["cuisine", "stockage"], "title": "Cuisine professionnelle et stockage"}}}


def cooperation(pid, from_sid, to_sid):
    return [{"type": "cooperation.proposed", "cooperationProposed": {
                "proposalId": pid, "fromStructureId": from_sid, "toStructureId": to_sid,
                "kind": "COOPERATION_KIND_POOLING", "category": "locaux", "title": "Mutualiser une cuisine",
                "description": "Une cuisine aux normes, partagée trois jours par semaine."}},
            {"type": "cooperation.answered", "cooperationAnswered": {
                "proposalId": pid, "structureId": to_sid, "answer": "COOPERATION_ANSWER_ACCEPTED",
                "comment": "À étudier en conseil d'administration de janvier."}}]


# ---- the stack ---------------------------------------------------------------------------

def post_two_needs_and_an_offer(st, token, title=NEED_TITLE, members=()):
    """What a network system posts in these tests: the structures of Caen,
    Hérouville and Ifs (and `members`), an offer at Hérouville, a need at Caen
    (`title`) and one at Ifs, with fresh ids. Returns the needs' ids, the
    offer's, and the response's status and body."""
    suffix = h.new_id("")[1:9]
    nid, nid2, oid = "need-%s" % suffix, "need2-%s" % suffix, "offer-%s" % suffix
    batch = [member("s-caen", CAEN, "Épicerie solidaire de Caen"),
             member("s-herouville", HEROUVILLE, "Atelier partagé d’Hérouville"),
             member("s-ifs", IFS, "Jardin d’Ifs"), *members,
             offer(oid, "s-herouville", HEROUVILLE),
             need(nid, "s-caen", CAEN, title=title),
             need(nid2, "s-ifs", IFS, title="Cuisine pour ateliers")]
    status, body = st.http("POST", "/v1/events", batch, token=token)
    return nid, nid2, oid, status, body


class Stack:
    """Redis, broker, matcher, notifier (staff "claire": Calvados, premises)
    and gateway, all from one configuration file."""

    def __init__(self, ws, gateway=None):
        self.ws = ws
        self.redis = ws.own(h.Redis(ws.dir).start())
        self.broker, sections = h.start_broker(ws, self.redis)
        self.client = ws.own(h.IngestClient(sections["broker"]["ingest"]))
        self.port = h.free_port()
        self.base = "http://127.0.0.1:%d" % self.port
        sections = dict(sections)
        sections["matcher"] = {"expiry_interval_s": 1, "collective_min_structures": 2}
        sections["notifier"] = {"staff_url": self.base + "/", "default_staff": "accueil",
                                "staff_refresh_ms": 200, "unanswered_check_s": 3600}
        sections["gateway"] = {"listen": "127.0.0.1:%d" % self.port, "staff_network": STAFF_NETWORK,
                               "token_cache_s": 1, "stream_heartbeat_s": 2, **(gateway or {})}
        sections["networks"] = {NETWORK: NETWORK_NAME}
        sections["staff." + STAFF] = {"name": "Claire Lemarchand", "departments": "14", "categories": "locaux",
                                      "channels": "inbox"}
        self.conf = h.write_config(ws.path("maillage-%s.conf" % h.new_id("c")), sections)
        ws.own(h.Daemon(ws.dir, "maillage-matcher", self.conf)).start(ready="matcher: ready")
        # The notifier writes the [staff.*] sections to mg:staff, which
        # `token issue --staff` requires.
        ws.own(h.Daemon(ws.dir, "maillage-notifier", self.conf)).start(ready="staff member(s)")
        self.gateway = ws.own(h.Daemon(ws.dir, "maillage-gateway", self.conf))
        self.gateway.start()
        h.wait_until(self._ready, 20, 0.1, "the gateway's /readyz")

    def _ready(self):
        if self.gateway.proc.poll() is not None:
            raise RuntimeError("maillage-gateway exited:\n" + self.gateway.log())
        try:
            status, _ = self.http("GET", "/readyz")
        except OSError:
            return False
        return status == 200

    def restart_gateway(self):
        h.restart(self.gateway)
        h.wait_until(self._ready, 20, 0.1, "the gateway's /readyz after a restart")

    def inbox_items(self, staff):
        """The `item` of every entry of a staff inbox ("match:<id>", ...)."""
        return [self.redis.call("HGET", b"mg:notif:" + nid, "item").decode()
                for nid in self.redis.call("ZRANGE", "mg:inbox:" + staff, 0, -1)]

    def cli(self, *args):
        r = h.run_program("maillage", ["--config", self.conf] + list(args))
        assert r.returncode == 0, (args, r.stdout.decode(), r.stderr.decode())
        return r.stdout.decode()

    def issue(self, *args):
        lines = [line for line in self.cli("token", "issue", *args).splitlines() if line.startswith("mgt_")]
        assert len(lines) == 1, lines
        return lines[0]

    def http(self, method, path, body=None, token=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method)
        if body is not None:
            req.add_header("Content-Type", "application/json")
        if token:
            req.add_header("Authorization", "Bearer " + token)
        try:
            with urllib.request.urlopen(req, timeout=20) as res:
                return res.status, res.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def journal(self, type_):
        out = []
        for entry_id, fields in self.redis.call("XRANGE", "mg:journal", "-", "+"):
            f = dict(zip(fields[::2], fields[1::2]))
            if f[b"t"].decode() != type_:
                continue
            env = h.Envelope()
            env.ParseFromString(f[b"e"])
            out.append(env)
        return out


def browser(ws):
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--disable-extensions", "--no-first-run", "--lang=fr-FR",
                "--user-data-dir=" + ws.path("chromium-profile"),
                "--window-size=%d,%d" % LAPTOP):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    try:  # selenium 4.8 (Debian 12) has log_path, later versions log_output
        service = Service(CHROMEDRIVER, log_output=ws.path("chromedriver.log"))
    except TypeError:
        service = Service(CHROMEDRIVER, log_path=ws.path("chromedriver.log"))
    return webdriver.Chrome(service=service, options=options)


@unittest.skipUnless(HAVE_CHROMIUM, "chromium and chromedriver are not installed (Debian: chromium chromium-driver)")
class StaffPageTest(unittest.TestCase):
    def setUp(self):
        self.ws = h.Workspace("maillage-staff-page-")
        self.driver = None

    def tearDown(self):
        if self.driver is not None:
            self.driver.quit()
        self.ws.close(keep=bool(os.environ.get("KEEP")))

    # -- helpers ------------------------------------------------------------------------

    def wait(self, predicate, timeout=30, what="the page"):
        try:
            return WebDriverWait(self.driver, timeout, poll_frequency=0.1).until(lambda d: predicate())
        except TimeoutException:
            self.fail("timed out waiting for %s\nJS console: %s" % (what, self.console()))

    def js(self, script, *args):
        return self.driver.execute_script(script, *args)

    def console(self):
        try:
            return [e["message"] for e in self.driver.get_log("browser")]
        except Exception:
            return []

    def shot(self, name, full=False):
        """A screenshot in the artifacts; `full`: the whole page's height."""
        os.makedirs(ARTIFACTS, exist_ok=True)
        path = os.path.join(ARTIFACTS, name)
        size = self.driver.get_window_size()
        if full:
            height = self.js("return document.documentElement.scrollHeight")
            self.driver.set_window_size(size["width"], min(int(height) + 120, 5000))
            time.sleep(0.3)
        self.assertTrue(self.driver.save_screenshot(path), path)
        if full:
            self.driver.set_window_size(size["width"], size["height"])
        return path

    def no_horizontal_scroll(self, view, element=None):
        """Open #`view` (shown in #view-`element`, by default the hash's
        head) and check the page is not wider than the window."""
        self.js("location.hash = arguments[0]", "#" + view)
        self.wait(lambda: self.js("return !document.getElementById(arguments[0]).hidden",
                                  "view-" + (element or view.split("/")[0])), 10, "view " + view)
        time.sleep(0.3)  # layout after the view's data arrived
        width, client = self.js("return [document.documentElement.scrollWidth, document.documentElement.clientWidth]")
        self.assertLessEqual(width, client, "view %s scrolls sideways at phone width" % view)

    def item(self, mid):
        found = self.driver.find_elements(By.CSS_SELECTOR, '#inbox-list > li[data-match-id="%s"]' % mid)
        return found[0] if found else None

    def tab_to(self, element, limit=200):
        """Press Tab from the top of the main content until `element` has the
        focus: it is reachable by keyboard, in order."""
        self.js("document.getElementById('contenu').focus()")
        for _ in range(limit):
            ActionChains(self.driver).send_keys(Keys.TAB).perform()
            if self.js("return document.activeElement === arguments[0]", element):
                return
        self.fail("the element was not reached with Tab")

    # -- the test ----------------------------------------------------------------------------

    def test_sign_in_live_match_feedback_map_figures_phone_and_revocation(self):
        st = Stack(self.ws)
        staff_token = st.issue("--staff", STAFF, "--label", "test navigateur")
        network_token = st.issue("--network", NETWORK, "--label", "test navigateur")
        self.driver = d = browser(self.ws)
        d.set_window_size(*LAPTOP)

        # The page is served by the gateway, embedded.
        status, body = st.http("GET", "/")
        self.assertEqual(status, 200)
        self.assertIn(b'<html lang="fr">', body)

        # -- sign in: a wrong token first, then the right one --
        d.get(st.base + "/")
        token = self.wait(lambda: d.find_element(By.ID, "token") if d.find_element(By.ID, "token").is_displayed()
                          else None, 20, "the sign-in form")
        self.assertEqual(d.find_element(By.CSS_SELECTOR, "label[for=token]").text, "Jeton d’accès")
        token.send_keys("mgt_" + "A" * 43 + Keys.ENTER)
        error = d.find_element(By.ID, "signin-error")
        self.wait(lambda: error.is_displayed(), 10, "the sign-in error")
        self.assertIn("n’est pas reconnu", error.text)
        token.clear()
        token.send_keys(staff_token)
        d.find_element(By.ID, "signin-submit").click()
        self.wait(lambda: d.find_element(By.ID, "main-nav").is_displayed(), 20, "the signed-in page")
        self.assertIn("Claire Lemarchand", d.find_element(By.ID, "who-name").text)
        # The session is a cookie the page's script cannot read (HttpOnly).
        self.assertNotIn(staff_token, self.js("return document.cookie"))
        self.wait(lambda: d.find_element(By.ID, "live-state").get_attribute("data-state") == "on", 20,
                  "the live stream to open")
        self.wait(lambda: d.find_element(By.ID, "inbox-status").text != "Chargement des opportunités…", 20,
                  "the inbox to load")
        # Marks this page load: still there after the match arrives = no reload.
        self.js("window.__sameLoad = 'oui'")

        # -- a network system posts members, an offer and two needs --
        nid, nid2, oid, status, body = post_two_needs_and_an_offer(st, network_token)
        self.assertEqual(status, 202, body)
        results = json.loads(body)["results"]
        self.assertEqual([r["status"] for r in results], ["accepted"] * 6, results)

        found = h.wait_until(lambda: [e.match_found for e in st.journal("match.found") if e.match_found.need_id == nid],
                             60, 0.1, "the match of the need in the journal")
        mid = found[0].match_id
        self.assertEqual(found[0].offer_id, oid)

        # -- it appears live, with its reason, as text --
        li = self.wait(lambda: self.item(mid), 60, "the match to appear live on the page")
        self.assertEqual(self.js("return window.__sameLoad"), "oui", "the page was reloaded")
        self.assertIn("is-live", li.get_attribute("class"))
        title = li.find_element(By.CSS_SELECTOR, ".card-title").text
        self.assertIn(NEED_TITLE, title)  # the markup shown literally...
        self.assertEqual(li.find_elements(By.CSS_SELECTOR, ".card-title b"), [])  # ...and never parsed
        reason = li.find_element(By.CSS_SELECTOR, ".reason")
        self.wait(lambda: reason.is_displayed() and reason.text.startswith("Pourquoi : ") and len(reason.text) > 15,
                  20, "the reason of the match")
        self.wait(lambda: "Nouvelle opportunité" in d.find_element(By.ID, "announcer").text
                  or "Nouvelle opportunité" in d.find_element(By.ID, "announcer").get_attribute("textContent"),
                  10, "the aria-live announcement")
        self.assertTrue(d.find_element(By.ID, "new-counter").is_displayed())
        # the tab says it too, seen when the page is scrolled or in the background
        self.assertRegex(d.title, r"^\([1-9]\d*\) Mes opportunités — Maillage$")
        self.js("arguments[0].scrollIntoView()", li)
        self.shot("staff-page-laptop.png")

        # -- "Mise en relation faite", with the mouse, and a comment pasted
        # from a word processor: its page break, carriage return and
        # direction mark (refused by the API) become a line break or go --
        self.js("arguments[0].value = arguments[1]", li.find_element(By.CSS_SELECTOR, ".comment textarea"),
                "Rencontre prévue\r\nmardi\f\u200evers 10\u00a0h")
        made = li.find_element(By.CSS_SELECTOR, "button[data-outcome=contact_made]")
        self.assertEqual(made.text, "Mise en relation faite")
        made.click()
        result = li.find_element(By.CSS_SELECTOR, ".result")
        self.wait(lambda: "Enregistré" in result.text, 30, "the feedback result")
        self.assertIn("Mise en relation faite", result.text)
        self.assertEqual(made.get_attribute("aria-pressed"), "true")

        def feedback(outcome):
            return [e for e in st.journal("match.feedback")
                    if e.match_feedback.match_id == mid and e.match_feedback.outcome == outcome]
        contact_made = h.events_pb2.MatchOutcome.Value("MATCH_OUTCOME_CONTACT_MADE")
        events = h.wait_until(lambda: feedback(contact_made), 20, 0.1, "match.feedback in the journal")
        self.assertEqual(len(events), 1)
        self.assertEqual(events[0].match_feedback.staff_id, STAFF)
        self.assertEqual(events[0].source, STAFF_NETWORK)
        self.assertEqual(events[0].match_feedback.comment, "Rencontre prévue\nmardi\nvers 10\u00a0h")

        # -- "Pas pertinent", with the keyboard only: Tab to it, Enter --
        not_relevant = li.find_element(By.CSS_SELECTOR, "button[data-outcome=not_relevant]")
        self.tab_to(not_relevant)
        outline = self.js("var s = getComputedStyle(arguments[0]); return [s.outlineStyle, s.outlineWidth]", not_relevant)
        self.assertNotEqual(outline[0], "none", "no visible focus on the button")
        self.assertNotEqual(outline[1], "0px", "no visible focus on the button")
        ActionChains(d).send_keys(Keys.ENTER).perform()
        self.wait(lambda: "Pas pertinent" in result.text, 30, "the keyboard feedback result")
        self.assertEqual(not_relevant.get_attribute("aria-pressed"), "true")
        self.assertEqual(made.get_attribute("aria-pressed"), "false")
        events = h.wait_until(lambda: feedback(h.events_pb2.MatchOutcome.Value("MATCH_OUTCOME_NOT_RELEVANT")),
                              20, 0.1, "the second match.feedback in the journal")
        self.assertEqual(events[0].match_feedback.staff_id, STAFF)

        # -- the stream resumes after a cut, from the last entry it showed --
        # The gateway stops; meanwhile a need arrives through ZeroMQ and its
        # match is written to the inbox; the gateway comes back. A stream
        # opened afresh would only show what follows; the page's EventSource
        # reconnects with Last-Event-ID and gets the missed entry.
        st.gateway.stop()
        self.wait(lambda: d.find_element(By.ID, "live-state").get_attribute("data-state") != "on", 20,
                  "the page to notice the cut")
        nid3 = "need3-" + nid[len("need-"):]
        env = h.need_reported(commune=CAEN, category="locaux", title="Cuisine pendant la coupure", need_id=nid3,
                              structure_id="s-caen", radius_km=30)
        env.need_reported.need.tags.extend(["cuisine", "stockage"])
        self.assertEqual(st.client.emit(env, timeout=10).status, h.ACCEPTED)
        mid3 = h.wait_until(lambda: [e.match_found.match_id for e in st.journal("match.found")
                                     if e.match_found.need_id == nid3], 60, 0.1, "the third match")[0]
        h.wait_until(lambda: "match:" + mid3 in st.inbox_items(STAFF), 30, 0.1, "the third match in the inbox")
        self.assertIsNone(self.item(mid3))
        st.restart_gateway()
        self.wait(lambda: self.item(mid3), 60, "the match written during the cut to appear")
        self.wait(lambda: d.find_element(By.ID, "live-state").get_attribute("data-state") == "on", 20,
                  "the stream to be live again")
        self.assertEqual(self.js("return window.__sameLoad"), "oui", "the page was reloaded")
        self.assertEqual(len(d.find_elements(By.CSS_SELECTOR, '#inbox-list > li[data-match-id="%s"]' % mid)), 1)

        # -- the comment: given with the first choice, kept by the second (given
        # without one), read back in the match's detail; one given there replaces it --
        view = self.open_view("#match/" + mid, "match")
        # (the browser's text gives its no-break space as a space)
        self.wait(lambda: self.field(view, "comment") == "Rencontre prévue\nmardi\nvers 10 h", 20,
                  "the comment in the detail")
        self.assertEqual(self.field(view, "status"), "Pas pertinent")
        view.find_element(By.ID, "match-comment").send_keys("Rappeler en janvier")
        view.find_element(By.CSS_SELECTOR, "button[data-outcome=contact_made]").click()
        self.wait(lambda: self.field(view, "comment") == "Rappeler en janvier", 20, "the new comment")
        self.assertEqual(self.field(view, "status"), "Mise en relation faite")
        h.wait_until(lambda: [e for e in feedback(contact_made) if e.match_feedback.comment == "Rappeler en janvier"],
                     20, 0.1, "the detail's match.feedback in the journal")

        # -- collective needs: two structures of CU Caen la Mer need premises --
        d.find_element(By.CSS_SELECTOR, "#main-nav a[data-view=collectifs]").click()
        card = self.wait(lambda: d.find_elements(By.CSS_SELECTOR, "#collective-list > li"), 30, "the collective need")
        self.assertIn("Locaux", card[0].text)
        self.assertIn("2 structures", card[0].text)

        # -- the territory: the dot cloud, the markers, the charts --
        d.find_element(By.CSS_SELECTOR, "#main-nav a[data-view=territoire]").click()
        self.wait(lambda: d.find_elements(By.CSS_SELECTOR, '#map-box g.marker[data-commune="%s"] .mk-needs' % CAEN),
                  30, "the need on the map")
        dots = sum(int(p.get_attribute("data-count"))
                   for p in d.find_elements(By.CSS_SELECTOR, "#map-box path.commune-dots"))
        self.assertEqual(dots, communes_count(), "every commune of Normandy as a dot")
        self.assertTrue(d.find_elements(By.CSS_SELECTOR, '#map-box g.marker[data-commune="%s"] .mk-offers' % HEROUVILLE))
        self.assertTrue(d.find_elements(By.CSS_SELECTOR, '#map-box g.marker[data-commune="%s"] .mk-matches' % CAEN))
        desc = d.find_element(By.ID, "map-svg-desc").get_attribute("textContent")
        self.assertIn("besoins ouverts", desc)
        map_rows = d.find_elements(By.CSS_SELECTOR, "#map-table tbody tr")
        self.assertTrue(any(r.get_attribute("textContent").startswith("Caen") for r in map_rows))

        def bar_values(chart, code):
            row = d.find_elements(By.CSS_SELECTOR, '#%s .bar-row[data-code="%s"]' % (chart, code))
            if not row:
                return None
            return [int(v.get_attribute("textContent").replace("\u202f", "").replace("\xa0", "") or 0)
                    for v in row[0].find_elements(By.CSS_SELECTOR, ".bar-value")]
        # open needs, open offers, matches proposed (Calvados; premises): three
        # needs, one offer, a match for each need
        calvados = self.wait(lambda: bar_values("dep-chart", "14"), 30, "the department chart")
        self.assertEqual(calvados[:2], [3, 1], calvados)
        self.assertGreaterEqual(calvados[2], 3, calvados)
        locaux = bar_values("cat-chart", "locaux")
        self.assertEqual(locaux[:2], [3, 1], locaux)
        bars = d.find_elements(By.CSS_SELECTOR, '#dep-chart .bar-row[data-code="14"] .bar')
        self.assertTrue(all(float(b.value_of_css_property("width").replace("px", "")) > 0 for b in bars))
        self.assertTrue(d.find_elements(By.CSS_SELECTOR, "#dep-table table tbody tr"))
        totals = d.find_element(By.ID, "totals").text
        self.assertIn("Besoins ouverts", totals)
        self.shot("staff-page-laptop-territoire.png", full=True)

        # -- phone width: no view scrolls sideways --
        d.set_window_size(*PHONE)
        for view in ("territoire", "collectifs", "match/" + mid, "opportunites"):
            self.no_horizontal_scroll(view)
            if view == "territoire":
                self.shot("staff-page-phone-territoire.png", full=True)
        self.wait(lambda: self.item(mid), 10, "the match in the list")
        self.js("arguments[0].scrollIntoView()", self.item(mid))
        self.shot("staff-page-phone.png")
        self.assertEqual(self.js("return window.__sameLoad"), "oui")
        d.set_window_size(*LAPTOP)

        # -- a revoked token: the next request sends the page back to sign-in --
        token_id = "tok-" + hashlib.sha256(staff_token.encode()).hexdigest()[:12]
        st.cli("token", "revoke", token_id)
        status_filter = Select(d.find_element(By.ID, "f-status"))
        signin = d.find_element(By.ID, "view-signin")
        deadline = time.monotonic() + 30
        flip = 0
        while not signin.is_displayed():
            self.assertLess(time.monotonic(), deadline, "still signed in with a revoked token")
            flip += 1
            status_filter.select_by_value("new" if flip % 2 else "")
            time.sleep(0.5)
        self.assertIn("session a pris fin", d.find_element(By.ID, "signin-error").text)
        self.assertFalse(d.find_element(By.ID, "main-nav").is_displayed())
        self.assertEqual(d.find_element(By.ID, "inbox-list").find_elements(By.TAG_NAME, "li"), [])

        # -- no script error on the way, nothing refused by the gateway's CSP --
        errors = [m for m in self.console()
                  if any(w in m for w in ("Uncaught", "TypeError", "ReferenceError", "Refused to"))]
        self.assertEqual(errors, [])

    def sign_in(self, st, token):
        d = self.driver
        d.get(st.base + "/")
        self.wait(lambda: d.find_element(By.ID, "token").is_displayed(), 20, "the sign-in form")
        d.find_element(By.ID, "token").send_keys(token + Keys.ENTER)
        self.wait(lambda: d.find_element(By.ID, "main-nav").is_displayed(), 20, "the signed-in page")

    def open_view(self, hash_, view):
        """Go to `hash_` and return the element of `view` once it shows."""
        d = self.driver
        self.js("location.hash = arguments[0]", hash_)
        return self.wait(lambda: d.find_element(By.ID, "view-" + view) if d.find_element(By.ID, "view-" + view)
                         .is_displayed() else None, 10, "the view of " + hash_)

    def field(self, root, name):
        """The text of the facts' <dd data-field=name> under `root`, or None."""
        found = root.find_elements(By.CSS_SELECTOR, 'dd[data-field="%s"]' % name)
        return found[0].text if found else None

    def test_what_staff_open_from_a_notification(self):
        st = Stack(self.ws)
        staff_token = st.issue("--staff", STAFF)
        network_token = st.issue("--network", NETWORK)
        nid, nid2, oid, status, body = post_two_needs_and_an_offer(
            st, network_token, members=[member("s-cuisine", CAEN, "Cuisine centrale de Caen")])
        self.assertEqual(status, 202, body)
        suffix = nid[len("need-"):]
        oid2 = "offer2-%s" % suffix

        def match_id(offer_id):
            found = [e.match_found.match_id for e in st.journal("match.found")
                     if e.match_found.need_id == nid and e.match_found.offer_id == offer_id]
            return found[0] if found else None
        mid = h.wait_until(lambda: match_id(oid), 60, 0.1, "the first match")
        # A better offer (in Caen itself) comes later: the first match is now
        # second, though its match.found said rank 1 and is never revised.
        status, body = st.http("POST", "/v1/events", [offer(oid2, "s-cuisine", CAEN)], token=network_token)
        self.assertEqual(status, 202, body)
        mid2 = h.wait_until(lambda: match_id(oid2), 60, 0.1, "the second match")
        self.assertEqual([e.match_found.rank for e in st.journal("match.found") if e.match_found.match_id == mid], [1])

        pid = "coop-%s" % suffix
        status, body = st.http("POST", "/v1/events", cooperation(pid, "s-caen", "s-herouville"), token=network_token)
        self.assertEqual(status, 202, body)

        def inbox_link(kind, **fields):
            status, body = st.http("GET", "/v1/staff/me/inbox?limit=200&kind=" + kind, token=staff_token)
            self.assertEqual(status, 200, body)
            found = [i["link"] for i in json.loads(body)["items"] if all(i.get(k) == v for k, v in fields.items())]
            return found[0] if found else None
        coop_link = h.wait_until(lambda: inbox_link("cooperation_proposed"), 30, 0.1, "the cooperation in the inbox")
        joined_link = h.wait_until(lambda: inbox_link("member_joined", structureId="s-herouville"), 30, 0.1,
                                   "the new member in the inbox")
        self.assertEqual((coop_link, joined_link), (st.base + "/#cooperation/" + pid, st.base + "/#structure/s-herouville"))

        self.driver = d = browser(self.ws)
        self.sign_in(st, staff_token)

        # -- the links of the notifications open what they name --
        # A cooperation proposal, from its notification's link (as in an e-mail).
        d.get(coop_link)
        view = self.wait(lambda: d.find_element(By.ID, "view-detail") if d.find_element(By.ID, "view-detail")
                         .is_displayed() else None, 20, "the cooperation's view")
        self.wait(lambda: self.field(view, "from") == "Épicerie solidaire de Caen", 20, "the cooperation")
        self.assertEqual(d.find_element(By.ID, "detail-title").text, "Proposition de coopération")
        self.assertEqual(view.find_element(By.CSS_SELECTOR, "#detail-body > h2").text, "Mutualiser une cuisine")
        self.assertEqual((self.field(view, "to"), self.field(view, "kind")), ("Atelier partagé d’Hérouville", "Mutualisation"))
        self.assertIn("partagée trois jours par semaine", view.text)
        # the answer, when, and what it said
        [answer] = [a.text for a in view.find_elements(By.CSS_SELECTOR, ".answers li")]
        self.assertRegex(answer, r"^Atelier partagé d’Hérouville : acceptée, le \d+ [a-zéû]+\.? 20\d\d, \d\d:\d\d\n"
                                 r"À étudier en conseil d'administration de janvier\.$")
        # A structure, from a member's notification: its facts and open items.
        d.get(joined_link)
        self.wait(lambda: self.field(view, "family") == "Association", 20, "the structure's view")
        self.assertEqual(d.find_element(By.ID, "detail-title").text, "Structure")
        self.assertEqual(view.find_element(By.CSS_SELECTOR, "#detail-body > h2").text, "Atelier partagé d’Hérouville")
        self.assertEqual((self.field(view, "commune"), self.field(view, "networks")), ("Hérouville-Saint-Clair", NETWORK_NAME))
        self.assertEqual([a.get_attribute("href") for a in view.find_elements(By.CSS_SELECTOR, ".links a")],
                         [st.base + "/#offer/" + oid])
        # From the cooperation to the proposing structure, then to its need.
        self.js("history.back()")
        self.wait(lambda: self.field(view, "from") == "Épicerie solidaire de Caen", 20, "the cooperation again")
        view.find_element(By.CSS_SELECTOR, 'dd[data-field="from"] a').click()
        self.wait(lambda: view.find_elements(By.CSS_SELECTOR, ".links a")
                  and view.find_element(By.CSS_SELECTOR, ".links a").text == NEED_TITLE, 20, "the structure's need")
        self.assertEqual(d.find_element(By.CSS_SELECTOR, "#detail-body > h2").text, "Épicerie solidaire de Caen")
        view.find_element(By.CSS_SELECTOR, ".links a").click()
        # The need: its facts and its open matches, best first, each linking to its detail.
        self.wait(lambda: d.find_element(By.ID, "detail-title").text == "Besoin"
                  and len(view.find_elements(By.CSS_SELECTOR, ".matches > li")) == 2, 20, "the need and its matches")
        self.assertEqual(view.find_element(By.CSS_SELECTOR, "#detail-body > h2").text, NEED_TITLE)
        self.assertEqual(view.find_elements(By.CSS_SELECTOR, "#detail-body > h2 b"), [])
        self.assertEqual((self.field(view, "structure"), self.field(view, "commune"), self.field(view, "radius")),
                         ("Épicerie solidaire de Caen", "Caen (14)", "30 km"))
        rows = view.find_elements(By.CSS_SELECTOR, ".matches > li")
        self.assertEqual([r.get_attribute("data-match-id") for r in rows], [mid2, mid])
        self.assertEqual([r.find_element(By.CSS_SELECTOR, '[data-field="rank"]').text for r in rows],
                         ["1re des offres proposées pour ce besoin", "2e des offres proposées pour ce besoin"])
        self.assertIn("Cuisine centrale de Caen", rows[0].text)
        self.assertEqual(rows[0].find_element(By.CSS_SELECTOR, '[data-field="distance"]').text, "dans la même commune")
        self.shot("staff-page-need.png", full=True)
        rows[1].find_element(By.TAG_NAME, "a").click()
        self.wait(lambda: d.find_element(By.ID, "view-match").is_displayed(), 10, "the match from the need")
        d.set_window_size(*PHONE)
        for hash_ in ("need/" + nid, "structure/s-caen", "cooperation/" + pid):
            self.no_horizontal_scroll(hash_, "detail")
        self.shot("staff-page-phone-cooperation.png", full=True)
        d.set_window_size(*LAPTOP)
        # An unknown id says so, in French.
        for hash_, what in (("#need/need-inconnu", "Ce besoin est introuvable"),
                            ("#structure/s-inconnue", "Cette structure est introuvable"),
                            ("#cooperation/coop-inconnue", "Cette proposition de coopération est introuvable"),
                            ("#need/", "Ce besoin est introuvable")):
            self.open_view(hash_, "detail")
            self.wait(lambda: what in d.find_element(By.ID, "detail-status").text, 10, "the message for " + hash_)
            self.assertEqual(d.find_element(By.ID, "detail-body").text, "")
        # -- a collective need lists its needs and their structures, each a link to its view --
        h.wait_until(lambda: st.journal("collective_need.detected"), 30, 0.1, "the collective need")
        self.open_view("#collectifs", "collectifs")
        card = self.wait(lambda: d.find_elements(By.CSS_SELECTOR, "#collective-list > li"), 30, "its card")[0]
        self.assertIn("2 structures", card.text)
        rows = sorted(tuple((a.text, a.get_attribute("href")) for a in li.find_elements(By.TAG_NAME, "a"))
                      for li in card.find_elements(By.CSS_SELECTOR, ".collective-needs > li"))
        self.assertEqual(rows, [((NEED_TITLE, st.base + "/#need/" + nid),  # as text, not markup
                                 ("Épicerie solidaire de Caen", st.base + "/#structure/s-caen")),
                                (("Cuisine pour ateliers", st.base + "/#need/" + nid2),
                                 ("Jardin d’Ifs", st.base + "/#structure/s-ifs"))])

        # Its notification's link names it: that card is marked, and has the focus.
        cid = st.journal("collective_need.detected")[-1].collective_need_detected.collective_id
        self.open_view("#collective/" + cid, "collectifs")
        marked = self.wait(lambda: d.find_elements(By.CSS_SELECTOR, "#collective-list > li.is-target"), 30, "the card named")
        self.assertEqual(marked[0].get_attribute("data-collective-id"), cid)
        self.assertEqual(self.js("return document.activeElement.closest('li') === arguments[0]", marked[0]), True)

        # The inbox cards of those notifications link to the same views.
        self.open_view("#opportunites", "opportunites")
        self.wait(lambda: d.find_elements(By.CSS_SELECTOR, '#inbox-list a.detail-link[href="#cooperation/%s"]' % pid),
                  20, "the cooperation's card with its link")
        self.wait(lambda: d.find_elements(By.CSS_SELECTOR, '#inbox-list a.detail-link[href="#collective/%s"]' % cid),
                  20, "the collective need's card with its link")

        # -- a match shows its rank now among the need's open matches --
        view = self.open_view("#match/" + mid, "match")
        self.wait(lambda: self.field(view, "rank") == "2e des offres proposées pour ce besoin", 20, "the rank of the first match")
        near = self.field(view, "distance")  # Hérouville-Saint-Clair to Caen
        self.assertRegex(near, r"^[1-9]\d* km$")
        # As the explanation beside it says it (it read "3,6 km" there, « à 4 km » here).
        self.assertIn("à %s" % near, view.find_element(By.CSS_SELECTOR, "p.reason").text)
        view = self.open_view("#match/" + mid2, "match")
        self.wait(lambda: self.field(view, "rank") == "1re des offres proposées pour ce besoin", 20, "the rank of the better one")
        # Need and offer in Caen: said as the notification says it, not "0 km".
        self.assertEqual(self.field(view, "distance"), "dans la même commune")

        # -- the better offer withdrawn: its match is retired, and shows it --
        status, body = st.http("POST", "/v1/events", [{"type": "offer.withdrawn", "offerWithdrawn": {
            "offerId": oid2, "providerId": "s-cuisine", "reason": "CLOSURE_CANCELLED"}}], token=network_token)
        self.assertEqual(status, 202, body)
        h.wait_until(lambda: [e for e in st.journal("match.found") if e.match_found.match_id == mid2 and e.match_found.retired],
                     30, 0.1, "the retirement")
        d.get(st.base + "/#opportunites")
        d.refresh()  # the inbox as it is now
        retired, still_open = self.wait(lambda: self.item(mid2) and self.item(mid) and (self.item(mid2), self.item(mid)), 30,
                                        "both matches in the inbox")
        self.wait(lambda: "is-retired" in retired.get_attribute("class"), 10, "the retired card")
        self.assertTrue(retired.find_element(By.CSS_SELECTOR, ".badge-retired").is_displayed())
        self.assertEqual(retired.find_element(By.CSS_SELECTOR, ".badges").text, "Mise en relation retirée")
        # its title was the message's « Mise en relation proposée : … »
        title = retired.find_element(By.CSS_SELECTOR, ".card-title").text
        self.assertTrue(title.startswith("Mise en relation retirée : "), title)
        self.assertTrue(still_open.find_element(By.CSS_SELECTOR, ".card-title").text.startswith(
            "Mise en relation proposée : "))
        # who with whom under the title; the explanation once, in its own box
        for card in (retired, still_open):
            line = card.find_element(By.CSS_SELECTOR, ".summary").text
            self.assertRegex(line, r"^.+ \(.+, .+\) ↔ .+ \(.+, .+\)$")
            self.assertNotIn("Même catégorie", line)
        self.assertFalse(retired.find_element(By.CSS_SELECTOR, ".badge-new").is_displayed())
        self.assertEqual([b for b in retired.find_elements(By.CSS_SELECTOR, "button[data-outcome], textarea") if b.is_displayed()], [])
        reason = retired.find_element(By.CSS_SELECTOR, ".reason")
        self.wait(lambda: reason.text == "Mise en relation retirée : l'offre est retirée.", 20, "why it was retired")
        # The match still open looks as before.
        self.assertNotIn("is-retired", still_open.get_attribute("class"))
        self.assertTrue(still_open.find_element(By.CSS_SELECTOR, ".badge-new").is_displayed())
        self.assertEqual(len([b for b in still_open.find_elements(By.CSS_SELECTOR, "button[data-outcome]") if b.is_displayed()]), 2)
        colours = [self.js("return getComputedStyle(arguments[0].querySelector('.card')).borderLeftColor", li)
                   for li in (retired, still_open)]
        self.assertNotEqual(colours[0], colours[1])
        self.js("arguments[0].scrollIntoView()", retired)
        self.shot("staff-page-retired.png")
        # Its detail: retired, why, no feedback to give.
        view = self.open_view("#match/" + mid2, "match")
        self.wait(lambda: d.find_element(By.ID, "match-title").text == "Mise en relation retirée", 20, "the retired detail")
        self.assertEqual(view.find_elements(By.CSS_SELECTOR, "button[data-outcome]"), [])
        self.assertIn("Mise en relation retirée : l'offre est retirée.", view.find_element(By.CSS_SELECTOR, ".reason").text)
        self.assertIsNone(self.field(view, "rank"))
        self.assertIsNone(self.field(view, "status"))  # no « Suite donnée : À traiter » left to give
        # the need's and the offer's titles open their own views
        links = self.wait(lambda: (lambda a: a if len(a) == 2 else None)(
            view.find_elements(By.CSS_SELECTOR, ".side h3 a[href^='#need/'], .side h3 a[href^='#offer/']")), 20,
            "the two sides' titles")
        self.assertEqual([a.get_attribute("href").split("#", 1)[1] for a in links], ["need/" + nid, "offer/" + oid2])
        # a detail's tab is named by its item
        view = self.open_view("#offer/" + oid2, "detail")
        self.wait(lambda: d.title.endswith(" — Offre — Maillage") and d.title != "Offre — Maillage", 20,
                  "the offer's tab title")
        view = self.open_view("#match/" + mid, "match")
        self.wait(lambda: self.field(view, "rank") == "1re des offres proposées pour ce besoin", 20, "the first match, first now")
        self.assertEqual(d.find_element(By.ID, "match-title").text, "Mise en relation proposée")
        self.assertEqual(len(view.find_elements(By.CSS_SELECTOR, "button[data-outcome]")), 2)
        # A network [networks] does not name, but a member structure is: by its name, a link to it.
        joined = member("s-in-two", CAEN, "Membre de deux réseaux")
        joined["memberJoined"]["structure"]["networks"] = [NETWORK, "s-caen"]
        status, body = st.http("POST", "/v1/events", [joined], token=network_token)
        self.assertEqual(status, 202, body)
        view = self.open_view("#structure/s-in-two", "detail")
        self.wait(lambda: self.field(view, "networks") == NETWORK_NAME + ", Épicerie solidaire de Caen", 20,
                  "the networks by their names")
        self.assertEqual(view.find_element(By.CSS_SELECTOR, 'dd[data-field="networks"] a').get_attribute("href"),
                         st.base + "/#structure/s-caen")

        errors = [m for m in self.console()
                  if any(w in m for w in ("Uncaught", "TypeError", "ReferenceError", "Refused to"))]
        self.assertEqual(errors, [])

    def test_a_match_retired_while_the_page_is_open_turns_retired_live(self):
        st = Stack(self.ws)
        staff_token = st.issue("--staff", STAFF)
        network_token = st.issue("--network", NETWORK)
        self.driver = d = browser(self.ws)
        self.sign_in(st, staff_token)
        self.wait(lambda: d.find_element(By.ID, "live-state").get_attribute("data-state") == "on", 20,
                  "the live stream to open")
        self.js("window.__sameLoad = 'oui'")

        # -- two needs matched with one offer, shown live --
        nid, nid2, oid, status, body = post_two_needs_and_an_offer(st, network_token, title="Cuisine à fermer")
        self.assertEqual(status, 202, body)

        def match_id(need_id):
            found = [e.match_found.match_id for e in st.journal("match.found") if e.match_found.need_id == need_id]
            return found[0] if found else None
        mid = h.wait_until(lambda: match_id(nid), 60, 0.1, "the first match")
        mid2 = h.wait_until(lambda: match_id(nid2), 60, 0.1, "the second match")
        for m in (mid, mid2):
            li = self.wait(lambda: self.item(m), 60, "the match to appear live")
            reason = li.find_element(By.CSS_SELECTOR, ".reason")
            self.wait(lambda: reason.text.startswith("Pourquoi : "), 20, "the reason of the match")
            self.assertNotIn("is-retired", li.get_attribute("class"))
        # What the page's EventSource gives each hint: no id of its own.
        self.js("window.__hints = []; MG.state.stream.es.addEventListener('match', function (e) {"
                " window.__hints.push({id: e.lastEventId, data: e.data}); });")

        # -- the first need closed through the gateway: its card turns retired, live --
        status, body = st.http("POST", "/v1/events", [{"type": "need.closed", "needClosed": {
            "needId": nid, "structureId": "s-caen", "reason": "CLOSURE_SATISFIED"}}], token=network_token)
        self.assertEqual(status, 202, body)
        li = self.item(mid)
        self.wait(lambda: "is-retired" in li.get_attribute("class"), 30, "the card to turn retired without a reload")
        self.assertEqual(self.js("return window.__sameLoad"), "oui", "the page was reloaded")
        self.assertEqual(li.find_element(By.CSS_SELECTOR, ".badges").text, "Mise en relation retirée")
        self.assertFalse(li.find_element(By.CSS_SELECTOR, ".badge-new").is_displayed())
        self.assertEqual([b for b in li.find_elements(By.CSS_SELECTOR, "button[data-outcome], textarea")
                          if b.is_displayed()], [])
        reason = li.find_element(By.CSS_SELECTOR, ".reason")
        self.wait(lambda: reason.text == "Mise en relation retirée : le besoin est satisfait.", 20, "why it was retired")
        self.wait(lambda: "Mise en relation retirée" in d.find_element(By.ID, "announcer").get_attribute("textContent"),
                  10, "the aria-live announcement")
        # The other match is still proposed.
        other = self.item(mid2)
        self.assertNotIn("is-retired", other.get_attribute("class"))
        self.assertEqual(len([b for b in other.find_elements(By.CSS_SELECTOR, "button[data-outcome]") if b.is_displayed()]), 2)
        # The hint left the stream's position where the last notification put it.
        hints = self.js("return window.__hints")
        self.assertIn({"matchId": mid}, [json.loads(x["data"]) for x in hints])
        position = self.js("return MG.state.stream.lastEventId")
        self.assertTrue(position)
        self.assertEqual({x["id"] for x in hints}, {position})

        # -- the offer updated: the other match's revision shows its score as it is now, live --
        meta = other.find_element(By.CSS_SELECTOR, ".meta")
        before = meta.text
        update = offer(oid, "s-herouville", HEROUVILLE)
        update["offerPublished"]["offer"].update(tags=["cuisine", "stockage", "ateliers", "formation"],
                                                title="Cuisine professionnelle pour ateliers de formation")
        status, body = st.http("POST", "/v1/events", [{"type": "offer.updated",
                                                       "offerUpdated": update["offerPublished"]}], token=network_token)
        self.assertEqual(status, 202, body)
        revised = h.wait_until(lambda: [e.match_found for e in st.journal("match.found")
                                        if e.match_found.match_id == mid2 and e.match_found.revision == 2],
                               30, 0.1, "the second match's revision")[0]
        score = "Score %d" % round(revised.score * 100)
        self.assertNotIn(score, before)
        self.wait(lambda: score in meta.text, 20, "the card's score to follow the revision")
        self.assertNotIn("is-retired", other.get_attribute("class"))

        # -- the second one retired while the stream is cut: shown once it is back --
        view = self.open_view("#match/" + mid2, "match")
        self.wait(lambda: len(view.find_elements(By.CSS_SELECTOR, "button[data-outcome]")) == 2, 20, "the match's detail")
        self.assertEqual(d.find_element(By.ID, "match-title").text, "Mise en relation proposée")
        st.gateway.stop()
        self.wait(lambda: d.find_element(By.ID, "live-state").get_attribute("data-state") != "on", 20,
                  "the page to notice the cut")
        closed = h.Envelope(event_id=h.new_id(), type="need.closed", occurred_at_ms=int(time.time() * 1000))
        closed.need_closed.need_id, closed.need_closed.structure_id = nid2, "s-ifs"
        closed.need_closed.reason = h.events_pb2.Closure.Value("CLOSURE_CANCELLED")
        self.assertEqual(st.client.emit(closed, timeout=10).status, h.ACCEPTED)
        h.wait_until(lambda: [e for e in st.journal("match.found") if e.match_found.match_id == mid2 and e.match_found.retired],
                     30, 0.1, "the second retirement")
        h.settle(st.redis, ("matcher", "notifier"), 30, 0.4)  # its hint published to nobody
        st.restart_gateway()
        self.wait(lambda: d.find_element(By.ID, "match-title").text == "Mise en relation retirée", 30,
                  "the open detail to turn retired once the stream is back")
        self.assertEqual(view.find_elements(By.CSS_SELECTOR, "button[data-outcome]"), [])
        self.assertIn("Mise en relation retirée : le besoin est annulé.", view.find_element(By.CSS_SELECTOR, ".reason").text)
        self.open_view("#opportunites", "opportunites")
        li2 = self.item(mid2)
        self.wait(lambda: "is-retired" in li2.get_attribute("class"), 20, "the second card retired")
        self.assertEqual(li2.find_element(By.CSS_SELECTOR, ".badges").text, "Mise en relation retirée")
        self.assertEqual(self.js("return window.__sameLoad"), "oui", "the page was reloaded")
        errors = [m for m in self.console()
                  if any(w in m for w in ("Uncaught", "TypeError", "ReferenceError", "Refused to"))]
        self.assertEqual(errors, [])

    def test_a_stream_that_opens_late_misses_nothing_and_filters_look_further(self):
        """The page's stream cannot open at first (the only stream slot is
        taken): the inbox loads without it; the matches written before the
        stream opens are fetched when it does (a stream without a position
        starts at the newest entry, and would skip them), however many
        entries were written meanwhile (before, the newest 50 only). Filtering resets
        the "nouvelles" counter with the list, and a filter whose matches
        are older than the entries a page examines still finds them."""
        st = Stack(self.ws, gateway={"stream_max_clients": 1})
        staff_token = st.issue("--staff", STAFF)
        network_token = st.issue("--network", NETWORK)
        taken = http.client.HTTPConnection("127.0.0.1", st.port, timeout=20)
        self.addCleanup(taken.close)
        taken.request("GET", "/v1/stream", headers={"Authorization": "Bearer " + staff_token})
        self.assertEqual(taken.getresponse().status, 200)
        self.driver = d = browser(self.ws)
        d.get(st.base + "/")
        self.wait(lambda: d.find_element(By.ID, "token").is_displayed(), 20, "the sign-in form")
        d.find_element(By.ID, "token").send_keys(staff_token + Keys.ENTER)
        self.wait(lambda: "Aucune opportunité pour le moment" in d.find_element(By.ID, "inbox-status").text, 20,
                  "the empty inbox, loaded without the stream")
        self.assertNotEqual(d.find_element(By.ID, "live-state").get_attribute("data-state"), "on")

        nid, nid2, _, status, body = post_two_needs_and_an_offer(st, network_token)
        self.assertEqual(status, 202, body)
        # (both: the two needs are matched by two jobs, one after the other)
        mids = h.wait_until(lambda: (lambda m: m if len(m) == 2 else None)(
            [e.match_found.match_id for e in st.journal("match.found") if e.match_found.need_id in (nid, nid2)]),
            60, 0.1, "the two matches")
        h.wait_until(lambda: {"match:" + mid for mid in mids} <= set(st.inbox_items(STAFF)), 30, 0.1,
                     "the matches in the inbox")
        self.assertEqual([self.item(mid) for mid in mids], [None, None])
        # And 60 newer entries: the matches are on the catch-up's second page.
        seeded = self.seed(st, 60, int(time.time() * 1000) + 1000, prefix="n-late")
        taken.close()  # the slot is free: the page's stream opens (it retries every 2 s, then more)
        self.wait(lambda: all(self.item(mid) for mid in mids), 30, "the matches written before the stream opened")
        self.assertEqual(set(seeded) - set(self.shown_ids()), set())
        self.assertEqual(d.find_element(By.ID, "live-state").get_attribute("data-state"), "on")
        self.assertTrue(d.find_element(By.ID, "new-counter").is_displayed())

        # 250 newer entries of another category: more than a filtered page examines.
        now = int(time.time() * 1000)
        for i in range(250):
            nid_ = "n-other-%03d" % i
            st.redis.call("HSET", "mg:notif:" + nid_, "kind", "member_joined", "item", "member:s-%03d:x" % i,
                          "title", "Nouvelle adhérente %d" % i, "created_at", now + i, "cat", "formation",
                          "dep", "14", "staff", STAFF)
            st.redis.call("ZADD", "mg:inbox:" + STAFF, now + i, nid_)
        Select(d.find_element(By.ID, "f-category")).select_by_value("locaux")
        self.wait(lambda: all(self.item(mid) for mid in mids), 30, "the filtered matches")
        self.assertNotIn("Aucune", d.find_element(By.ID, "inbox-status").text)
        self.assertNotIn("Nouvelle adhérente", d.find_element(By.ID, "inbox-list").text)
        self.assertFalse(d.find_element(By.ID, "new-counter").is_displayed())
        self.assertEqual(d.title, "Mes opportunités — Maillage")

    def seed(self, st, count, start, read=False, prefix="n-seed", link=False):
        """`count` notifications (new members) written straight to the staff
        inbox, created at `start` ms and the following ones; their ids.
        `link`: each links to its structure's view."""
        ids = []
        for i in range(count):
            nid_ = "%s-%03d" % (prefix, i)
            fields = ["kind", "member_joined", "item", "member:s-%s-%03d:x" % (prefix, i),
                      "title", "Adhérente %s %d" % (prefix, i), "created_at", start + i,
                      "cat", "formation", "dep", "14", "staff", STAFF]
            if read:
                fields += ["read", "1"]
            if link:
                fields += ["link", st.base + "/#structure/s-%s-%03d" % (prefix, i)]
            st.redis.call("HSET", "mg:notif:" + nid_, *fields)
            st.redis.call("ZADD", "mg:inbox:" + STAFF, start + i, nid_)
            ids.append(nid_)
        return ids

    def shown_ids(self):
        return self.js("return Array.prototype.map.call(document.querySelectorAll('#inbox-list > li'),"
                       " function (li) { return li.dataset.nid; })")

    def test_an_entry_read_elsewhere_caught_up_is_placed_by_date(self):
        """The stream opens late (its only slot is taken): the entries
        written meanwhile are caught up on opening. One already read
        elsewhere is not new, but it is the newest: first in the list, not
        at the bottom under older entries."""
        st = Stack(self.ws, gateway={"stream_max_clients": 1})
        staff_token = st.issue("--staff", STAFF)
        now = int(time.time() * 1000)
        older = self.seed(st, 3, now - 60000)
        taken = http.client.HTTPConnection("127.0.0.1", st.port, timeout=20)
        self.addCleanup(taken.close)
        taken.request("GET", "/v1/stream", headers={"Authorization": "Bearer " + staff_token})
        self.assertEqual(taken.getresponse().status, 200)
        self.driver = d = browser(self.ws)
        self.sign_in(st, staff_token)
        self.wait(lambda: len(self.shown_ids()) == 3, 20, "the inbox, loaded without the stream")
        read = self.seed(st, 1, now, read=True, prefix="n-read")
        taken.close()
        self.wait(lambda: read[0] in self.shown_ids(), 30, "the entry read elsewhere, caught up")
        self.assertEqual(self.shown_ids(), read + older[::-1])

    def one_match(self):
        """A stack where a need and an offer made a match: (stack, staff token, match id)."""
        st = Stack(self.ws)
        staff_token = st.issue("--staff", STAFF)
        network_token = st.issue("--network", NETWORK)
        nid, _, _, status, body = post_two_needs_and_an_offer(st, network_token)
        self.assertEqual(status, 202, body)
        mid = h.wait_until(lambda: [e.match_found.match_id for e in st.journal("match.found")
                                    if e.match_found.need_id == nid], 60, 0.1, "the match")[0]
        return st, staff_token, mid

    def test_feedback_from_a_match_detail_is_sent_once_and_updates_every_card(self):
        """The detail's buttons, as a card's: a double click sends one
        request; once recorded, every card of the match (here it was
        notified twice) shows the outcome and is marked read."""
        st, staff_token, mid = self.one_match()
        h.wait_until(lambda: "match:" + mid in st.inbox_items(STAFF), 30, 0.1, "the match in the inbox")
        now = int(time.time() * 1000)
        st.redis.call("HSET", "mg:notif:n-again", "kind", "match", "item", "match:" + mid,
                      "title", "La même mise en relation, notifiée à nouveau", "created_at", now, "staff", STAFF)
        st.redis.call("ZADD", "mg:inbox:" + STAFF, now, "n-again")
        self.driver = d = browser(self.ws)
        self.sign_in(st, staff_token)
        self.wait(lambda: len(d.find_elements(By.CSS_SELECTOR, '#inbox-list > li[data-match-id="%s"]' % mid)) == 2,
                  20, "the two cards of the match")
        view = self.open_view("#match/" + mid, "match")
        made = self.wait(lambda: view.find_elements(By.CSS_SELECTOR, "button[data-outcome=contact_made]"), 20,
                         "the detail's buttons")[0]
        self.js("window.__posts = 0; var f = window.fetch; window.fetch = function (url, opts) {"
                " if (opts && opts.method === 'POST' && /feedback$/.test(url)) window.__posts++;"
                " return f.apply(this, arguments); };")
        self.js("arguments[0].click(); arguments[0].click();", made)
        result = view.find_element(By.CSS_SELECTOR, ".result")
        self.wait(lambda: "Enregistré" in result.text, 20, "the feedback result")
        self.assertEqual(self.js("return window.__posts"), 1, "a double click sent two requests")
        self.assertIsNone(made.get_attribute("aria-disabled"))
        self.open_view("#opportunites", "opportunites")
        cards = d.find_elements(By.CSS_SELECTOR, '#inbox-list > li[data-match-id="%s"]' % mid)
        self.assertEqual(len(cards), 2)
        for card in cards:
            self.assertEqual(card.find_element(By.CSS_SELECTOR, ".badge-status").text, "Mise en relation faite")
            self.assertEqual(card.find_element(By.CSS_SELECTOR, "button[data-outcome=contact_made]")
                             .get_attribute("aria-pressed"), "true")
            self.wait(lambda: not card.find_element(By.CSS_SELECTOR, ".badge-new").is_displayed(), 10,
                      "the card marked read")

        def read_flags():
            status, body = st.http("GET", "/v1/staff/me/inbox?kind=match", token=staff_token)
            return {i["id"]: i["read"] for i in json.loads(body)["items"] if i.get("matchId") == mid}
        flags = read_flags()
        self.assertEqual(len(flags), 2, flags)
        self.assertEqual(set(flags.values()), {True}, flags)

    def test_the_last_page_of_the_inbox_keeps_the_keyboard_focus(self):
        """« Afficher les suivantes » pressed with the keyboard on the last
        page hides itself: the focus goes to the first card loaded, not back
        to the top of the page."""
        st = Stack(self.ws)
        staff_token = st.issue("--staff", STAFF)
        ids = self.seed(st, 55, int(time.time() * 1000) - 600000)
        self.driver = d = browser(self.ws)
        self.sign_in(st, staff_token)
        more = d.find_element(By.ID, "inbox-more")
        self.wait(lambda: more.is_displayed(), 20, "the first page")
        self.assertEqual(len(self.shown_ids()), 50)
        self.js("arguments[0].focus()", more)
        ActionChains(d).send_keys(Keys.ENTER).perform()
        self.wait(lambda: len(self.shown_ids()) == 55, 20, "the last page")
        self.assertFalse(more.is_displayed())
        first_new = d.find_element(By.CSS_SELECTOR, '#inbox-list > li[data-nid="%s"]' % ids[4])
        self.assertEqual(self.shown_ids()[50], ids[4])
        self.wait(lambda: self.js("return arguments[0].contains(document.activeElement)", first_new), 5,
                  "the focus on the first card loaded (it is on %s)" % self.js("return document.activeElement.tagName"))

    def test_back_from_a_detail_to_the_card_it_was_opened_from(self):
        """A card's « Voir le détail » followed, then « Retour aux
        opportunités »: the focus is on that card's link, in view, not on the
        heading at the top of a long list."""
        st = Stack(self.ws)
        staff_token = st.issue("--staff", STAFF)
        ids = self.seed(st, 30, int(time.time() * 1000) - 600000, link=True)
        self.driver = d = browser(self.ws)
        self.sign_in(st, staff_token)
        self.wait(lambda: len(self.shown_ids()) == 30, 20, "the inbox")
        card = d.find_element(By.CSS_SELECTOR, '#inbox-list > li[data-nid="%s"]' % ids[5])
        link = card.find_element(By.CSS_SELECTOR, "a.detail-link")
        self.js("arguments[0].scrollIntoView({block: 'center'})", link)
        link.click()
        self.wait(lambda: d.find_element(By.ID, "view-detail").is_displayed(), 10, "the structure's view")
        self.js("window.scrollTo(0, 0)")
        d.find_element(By.CSS_SELECTOR, "#view-detail a.back-link").click()
        self.wait(lambda: d.find_element(By.ID, "view-opportunites").is_displayed(), 10, "the list again")
        self.wait(lambda: self.js("return document.activeElement === arguments[0]", link), 5,
                  "the focus on the card's link (it is on %s)" % self.js("return document.activeElement.id"))
        top, bottom, height = self.js("var r = arguments[0].getBoundingClientRect();"
                                      " return [r.top, r.bottom, window.innerHeight]", link)
        self.assertTrue(0 <= top and bottom <= height, (top, bottom, height))

    def test_an_unknown_match_is_titled_as_not_found(self):
        st = Stack(self.ws)
        staff_token = st.issue("--staff", STAFF)
        self.driver = d = browser(self.ws)
        self.sign_in(st, staff_token)
        self.open_view("#match/inconnue", "match")
        self.wait(lambda: "introuvable" in d.find_element(By.ID, "match-status").text, 10, "the message")
        self.assertEqual(d.find_element(By.ID, "match-title").text, "Mise en relation introuvable")
        # No collective need yet, no filter: the page says what would make one
        # (not « pour ces critères », when there are none).
        self.open_view("#collectifs", "collectifs")
        self.wait(lambda: d.find_element(By.ID, "collective-status").text.startswith(
            "Aucun besoin collectif pour le moment. Il en apparaît un quand plusieurs structures"), 10, "the empty view")

    def test_a_large_collective_need_shows_its_radius_and_five_needs_then_a_toggle(self):
        # A group by distance of seven needs, as the matcher records it, and
        # the notifier's records of its needs (one closed since).
        st = Stack(self.ws)
        staff_token = st.issue("--staff", STAFF)
        cn = h.events_pb2.CollectiveNeedDetected(
            collective_id="cn.locaux.near." + CAEN, category="locaux", territory=CAEN, territory_name="Caen",
            need_ids=["n-cn-%d" % i for i in range(7)], structure_ids=["s-cn-%d" % i for i in range(7)],
            revision=1, explanation="7 structures à moins de 20 km de Caen expriment un besoin de locaux",
            radius_km=20)
        for i in range(7):
            st.redis.call("HSET", "mg:notifier:need:n-cn-%d" % i, "title", "Local %d" % i, "sid", "s-cn-%d" % i,
                          "state", "closed" if i == 6 else "open")
        key = "mg:collective:locaux:near:" + CAEN
        st.redis.call("HSET", key, "rev", 1, "n", 7, "at", int(time.time() * 1000), "pb", cn.SerializeToString())
        st.redis.call("SADD", "mg:collectives", key)
        self.driver = d = browser(self.ws)
        self.sign_in(st, staff_token)
        self.open_view("#collectifs", "collectifs")
        card = self.wait(lambda: d.find_elements(By.CSS_SELECTOR, "#collective-list > li"), 20, "its card")[0]
        self.assertEqual(card.find_element(By.CSS_SELECTOR, '[data-field="radius"]').text, "Dans un rayon de 20 km")
        self.assertEqual(card.find_element(By.CSS_SELECTOR, ".card-title").text, "Locaux — autour de Caen")
        self.assertEqual([li.text for li in card.find_elements(By.CSS_SELECTOR, "article > .collective-needs > li")],
                         ["Local %d — s-cn-%d" % (i, i) for i in range(5)])
        more = card.find_element(By.CSS_SELECTOR, ".collective-more")
        self.assertEqual([li.text for li in more.find_elements(By.TAG_NAME, "li")], ["", ""])  # folded
        toggle = more.find_element(By.TAG_NAME, "summary")
        self.assertEqual(toggle.text, "Voir les 2 autres besoins")
        toggle.click()
        self.wait(lambda: [li.text for li in more.find_elements(By.TAG_NAME, "li")]
                  == ["Local 5 — s-cn-5", "Local 6 — s-cn-6 Clos"], 10, "the other two, the closed one marked")
        self.shot("staff-page-collective.png")
        d.set_window_size(*PHONE)
        self.no_horizontal_scroll("collectifs")
        self.shot("staff-page-phone-collective.png")

    def test_french_typography_keeps_signs_with_their_words(self):
        """A narrow no-break space before %, a no-break space before a colon
        and inside « »: a line never starts with « % » or « : »."""
        st = Stack(self.ws)
        staff_token = st.issue("--staff", STAFF)
        now = int(time.time() * 1000)
        st.redis.call("HSET", "mg:notif:n-typo", "kind", "match", "item", "match:m-typo", "title", "Cuisine",
                      "score", "0.42", "text", "Une cuisine.\nPourquoi : même catégorie.", "created_at", now,
                      "staff", STAFF)
        st.redis.call("ZADD", "mg:inbox:" + STAFF, now, "n-typo")
        self.driver = d = browser(self.ws)
        d.get(st.base + "/")
        self.wait(lambda: d.find_element(By.ID, "token").is_displayed(), 20, "the sign-in form")
        self.assertEqual(d.find_element(By.ID, "token-hint").get_attribute("textContent"),
                         "Il commence par \u00abĀmgt_Ā\u00bb.".replace("Ā", "\u00a0"))
        d.find_element(By.ID, "token").send_keys(staff_token + Keys.ENTER)
        card = self.wait(lambda: self.item("m-typo"), 20, "the match's card")
        texts = [li.get_attribute("textContent") for li in card.find_elements(By.CSS_SELECTOR, ".meta li")]
        self.assertIn("Score 42\u202f%", texts)
        reason = card.find_element(By.CSS_SELECTOR, ".reason")
        self.wait(lambda: reason.get_attribute("textContent") == "Pourquoi\u00a0: même catégorie.", 10, "the reason")
        self.open_view("#match/m-typo", "match")
        self.wait(lambda: d.find_element(By.ID, "match-status").get_attribute("textContent")
                  .startswith("Élément introuvable\u00a0: "), 10, "the message")

    def test_the_menu_stays_on_one_row_on_a_phone(self):
        """On a 390 px phone the sections' links (with a count of new
        ones) hold on one row, not two, above the live state."""
        st = Stack(self.ws)
        staff_token = st.issue("--staff", STAFF)
        self.driver = d = browser(self.ws)
        d.set_window_size(*PHONE)
        self.sign_in(st, staff_token)
        self.wait(lambda: d.find_element(By.ID, "live-state").get_attribute("data-state") == "on", 20, "the stream")
        self.js("var c = document.getElementById('new-counter'); c.textContent = '12'; c.hidden = false;")
        tops = self.js("return Array.prototype.map.call(document.querySelectorAll('#main-nav a[data-view]'),"
                       " function (a) { return Math.round(a.getBoundingClientRect().top); })")
        self.assertEqual(len(set(tops)), 1, "the menu's links on %d rows: %s" % (len(set(tops)), tops))
        # The live state on at most one row more.
        nav, link = self.js("return [document.getElementById('main-nav').getBoundingClientRect().height,"
                            " document.querySelector('#main-nav a[data-view]').getBoundingClientRect().height]")
        self.assertLess(nav, 2 * link, (nav, link))
        width, client = self.js("var n = document.getElementById('main-nav'); return [n.scrollWidth, n.clientWidth]")
        self.assertLessEqual(width, client, "the menu wider than the phone")
        self.shot("staff-page-phone-menu.png")

    def test_the_score_components_fit_a_small_phone(self):
        """At 360 px the table of the score's components is laid out as a
        list of rows, each value named: nothing to scroll sideways."""
        st, staff_token, mid = self.one_match()
        self.driver = d = browser(self.ws)
        d.set_window_size(360, 780)
        self.sign_in(st, staff_token)
        view = self.open_view("#match/" + mid, "match")
        box = self.wait(lambda: view.find_elements(By.CSS_SELECTOR, ".table-scroll"), 20, "the score's components")[0]
        time.sleep(0.3)
        scroll, client = self.js("return [arguments[0].scrollWidth, arguments[0].clientWidth]", box)
        self.assertLessEqual(scroll, client, "the table scrolls sideways at 360 px")
        detail = box.find_element(By.CSS_SELECTOR, "tbody tr td:last-child")
        self.assertGreater(detail.size["width"], 200, "the detail squeezed in a narrow column")
        self.assertIn("Détail", self.js("return getComputedStyle(arguments[0], '::before').content", detail))
        self.js("arguments[0].scrollIntoView()", box)
        self.shot("staff-page-phone-components.png")

    def test_a_page_loaded_while_redis_is_down_waits_instead_of_asking_for_the_token(self):
        st = Stack(self.ws)
        staff_token = st.issue("--staff", STAFF)
        self.driver = d = browser(self.ws)
        d.get(st.base + "/")
        self.wait(lambda: d.find_element(By.ID, "token").is_displayed(), 20, "the sign-in form")
        d.find_element(By.ID, "token").send_keys(staff_token + Keys.ENTER)
        self.wait(lambda: d.find_element(By.ID, "main-nav").is_displayed(), 20, "the signed-in page")
        st.redis.stop()
        d.refresh()
        banner = self.wait(lambda: d.find_element(By.ID, "banner") if d.find_element(By.ID, "banner").is_displayed()
                           else None, 20, "the banner")
        self.assertIn("momentanément indisponible : nouvel essai automatique", banner.text)
        self.assertFalse(d.find_element(By.ID, "token").is_displayed())
        st.redis.start()
        self.wait(lambda: d.find_element(By.ID, "main-nav").is_displayed(), 40, "the page, without the token again")
        self.assertFalse(d.find_element(By.ID, "banner").is_displayed())
        self.assertIn("Claire Lemarchand", d.find_element(By.ID, "who-name").text)

    def test_a_tab_beyond_the_live_streams_allowed_says_why_and_goes_live_once_one_closes(self):
        # EventSource only says "error": before, the tab beyond
        # stream_max_per_staff showed « Direct interrompu, nouvel essai… »
        # for as long as the others stayed open, without saying why.
        st = Stack(self.ws, gateway={"stream_max_per_staff": 1})
        staff_token = st.issue("--staff", STAFF)
        self.driver = d = browser(self.ws)
        d.get(st.base + "/")
        self.wait(lambda: d.find_element(By.ID, "token").is_displayed(), 20, "the sign-in form")
        d.find_element(By.ID, "token").send_keys(staff_token + Keys.ENTER)
        live = lambda: d.find_element(By.ID, "live-text").get_attribute("textContent")
        self.wait(lambda: live() == "En direct", 20, "the first tab live")
        first = d.current_window_handle
        d.switch_to.new_window("tab")
        d.get(st.base + "/")  # the session cookie signs it in
        self.wait(lambda: live() == "Trop d\u2019onglets en direct\u00a0: fermez-en un", 20, "the reason")
        self.assertEqual(d.find_element(By.ID, "live-state").get_attribute("data-state"), "full")
        second = d.current_window_handle
        d.switch_to.window(first)
        d.close()
        d.switch_to.window(second)
        self.wait(lambda: live() == "En direct", 40, "the second tab live")

    def test_sign_out_clears_the_session(self):
        st = Stack(self.ws)
        staff_token = st.issue("--staff", STAFF)
        self.driver = d = browser(self.ws)
        d.set_window_size(*PHONE)
        d.get(st.base + "/#territoire")
        self.wait(lambda: d.find_element(By.ID, "token").is_displayed(), 20, "the sign-in form")
        d.find_element(By.ID, "token").send_keys(staff_token + Keys.ENTER)
        # The deep link survives the sign-in.
        self.wait(lambda: d.find_element(By.ID, "view-territoire").is_displayed(), 20, "the territory view")
        self.wait(lambda: d.find_elements(By.CSS_SELECTOR, "#map-box path.commune-dots"), 30, "the map")
        self.no_horizontal_scroll("territoire")
        d.find_element(By.ID, "sign-out").click()
        self.wait(lambda: d.find_element(By.ID, "token").is_displayed(), 20, "the sign-in form again")
        self.assertEqual(self.js("return document.activeElement.id"), "token")
        # said on the page, not only to screen readers; not as an error
        self.assertEqual(d.find_element(By.ID, "signin-notice").text, "Vous êtes déconnecté·e.")
        self.assertFalse(d.find_element(By.ID, "signin-error").is_displayed())
        self.assertEqual(d.title, "Maillage — espace des chargé·e·s de mission")  # no view, no count left
        # The cookie is gone: the API answers 401 to the page.
        status = self.driver.execute_async_script(
            "var done = arguments[0]; fetch('v1/me', {credentials: 'same-origin'}).then(function (r) { done(r.status); });")
        self.assertEqual(status, 401)
        self.assertFalse(d.find_element(By.ID, "main-nav").is_displayed())

    def test_filters_do_not_outlive_the_session(self):
        """On a shared computer, the next person to sign in sees the whole
        inbox: the filters chosen before a sign-out are cleared."""
        st = Stack(self.ws)
        staff_token = st.issue("--staff", STAFF)
        self.driver = d = browser(self.ws)
        self.sign_in(st, staff_token)
        self.wait(lambda: d.find_element(By.ID, "inbox-status").text != "Chargement des opportunités…", 20,
                  "the inbox to load")
        selects = ("f-department", "f-category", "f-status", "f-kind", "c-department", "c-category",
                   "t-category", "t-department")
        # Claire follows the Calvados: her department first, the others apart.
        for select in ("f-department", "c-department", "t-department"):
            groups = self.js("return Array.from(document.querySelectorAll('#' + arguments[0] + ' optgroup'))"
                             ".map(function (g) { return [g.label, Array.from(g.children).map("
                             "function (o) { return o.value; })]; })", select)
            self.assertEqual(groups, [["Vos départements", ["14"]],
                                      ["Autres départements", ["27", "50", "61", "76"]]], select)
        Select(d.find_element(By.ID, "f-category")).select_by_value("locaux")
        Select(d.find_element(By.ID, "f-status")).select_by_value("new")
        self.js("document.getElementById('c-department').value = '14';"
                "document.getElementById('t-category').value = 'locaux';")
        self.wait(lambda: "Aucune opportunité ne correspond" in d.find_element(By.ID, "inbox-status").text, 20,
                  "the filtered inbox")
        d.find_element(By.ID, "sign-out").click()
        self.wait(lambda: d.find_element(By.ID, "token").is_displayed(), 20, "the sign-in form")
        d.find_element(By.ID, "token").send_keys(staff_token + Keys.ENTER)
        self.wait(lambda: d.find_element(By.ID, "main-nav").is_displayed(), 20, "the signed-in page")
        self.wait(lambda: "Aucune opportunité pour le moment" in d.find_element(By.ID, "inbox-status").text, 20,
                  "the whole inbox, unfiltered")
        self.assertEqual([d.find_element(By.ID, s).get_attribute("value") for s in selects], [""] * len(selects))


if __name__ == "__main__":
    unittest.main()
