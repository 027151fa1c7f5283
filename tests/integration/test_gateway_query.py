"""The gateway's read API against the real stack: redis-server, broker,
matcher, notifier and maillage-gateway on loopback, tokens from
`maillage token issue`, data produced by emitting events (POST /v1/events
with a network token, or the ZeroMQ ingest).

Every endpoint of the read API with real data: structures (with their
contact, for staff), needs and offers (the journal's title and description,
then the notifier's title once the journal is trimmed), the matches of a need
and of an offer, one match with its explanation and the caller's feedback,
the inbox (paging without loss or duplicate, filters, marking read, another
staff member's inbox), a cooperation proposal with its answers (and damaged
records of it), collective needs, figures that match the scenario by
department, category and EPCI, the map; 400 for bad parameters, 404 for
unknown ids, 401 without a token and 403 for network tokens."""

import http.client
import json
import os
import unittest
import urllib.parse

import harness as h
import test_matcher as tm  # the event builders (as a module: its tests do not run here)
import test_notifier_kinds as tk  # the cooperation events

CAEN, HEROUVILLE, IFS, BAYEUX, LISIEUX, ROUEN = tm.CAEN, tm.HEROUVILLE, tm.IFS, tm.BAYEUX, tm.LISIEUX, tm.ROUEN

CLAIRE = {"name": "Claire Dupont", "departments": "14", "channels": "inbox"}
REMI = {"name": "Rémi Leroy", "departments": "76", "channels": "inbox"}


class Http:
    """A tiny JSON client for one gateway (a new connection per request)."""

    def __init__(self, port):
        self.port = port

    def request(self, method, path, token=None, body=None, headers=None, query=None, content_type=None):
        if query:
            path += "?" + urllib.parse.urlencode(query)
        hdrs = dict(headers or {})
        if token:
            hdrs["Authorization"] = "Bearer " + token
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            hdrs["Content-Type"] = content_type or "application/json"
        elif content_type:
            hdrs["Content-Type"] = content_type
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=20)
        try:
            conn.request(method, path, body=data, headers=hdrs)
            resp = conn.getresponse()
            raw = resp.read()
            ctype = resp.getheader("Content-Type") or ""
            value = json.loads(raw) if raw and ctype.startswith("application/json") else raw
            return resp.status, value, resp
        finally:
            conn.close()

    def get(self, path, token=None, **query):
        return self.request("GET", path, token=token, query=query or None)


class Stack:
    """Redis, broker, matcher, notifier and gateway, one configuration file."""

    def __init__(self, ws, staff=None, gateway=None, notifier=None, matcher=None, redis_options=None,
                 before_start=None):
        self.ws = ws
        self.redis = ws.own(h.Redis(ws.dir).start())
        if before_start:
            before_start(self.redis)  # (e.g. an ACL user the daemons log in as: redis_options)
        sections = h.broker_sections(self.redis, redis_options)
        m = {"expiry_interval_s": 1, "collective_min_structures": 3}
        m.update(matcher or {})
        sections["matcher"] = m
        n = {"staff_url": "https://maillage.example.org/", "default_staff": "accueil", "staff_refresh_ms": 200,
             "unanswered_check_s": 1}
        n.update(notifier or {})
        sections["notifier"] = n
        for sid, keys in (staff if staff is not None else {"claire": CLAIRE, "remi": REMI}).items():
            sections["staff." + sid] = keys
        sections["networks"] = {"urscop-normandie": "URSCOP Normandie", "cress-normandie": "CRESS Normandie"}
        self.port = h.free_port()
        g = {"listen": "127.0.0.1:%d" % self.port}
        g.update(gateway or {})
        sections["gateway"] = g
        self.sections = sections
        self.conf = h.write_config(ws.path("stack-%s.conf" % h.new_id("c")), sections)
        self.broker = ws.own(h.Daemon(ws.dir, "maillage-broker", self.conf)).start(ready="broker: ready")
        self.client = ws.own(h.IngestClient(sections["broker"]["ingest"]))
        self.matcher = ws.own(h.Daemon(ws.dir, "maillage-matcher", self.conf)).start(ready="matcher: ready")
        self.notifier = ws.own(h.Daemon(ws.dir, "maillage-notifier", self.conf)).start(ready="staff member(s)")
        self.http = Http(self.port)
        self.gateway = None
        self.start_gateway()

    def start_gateway(self, env=None):
        self.gateway = self.ws.own(h.Daemon(self.ws.dir, "maillage-gateway", self.conf, env=env))
        self.gateway.start()

        def ready():
            if self.gateway.proc.poll() is not None:
                raise RuntimeError("gateway exited:\n" + self.gateway.log())
            try:
                status, _, _ = self.http.get("/readyz")
            except OSError:
                return False
            return status == 200
        h.wait_until(ready, 15, what="the gateway to be ready")
        return self.gateway

    def token(self, *args):
        r = h.run_program("maillage", ["--config", self.conf, "token", "issue"] + list(args))
        assert r.returncode == 0, r.stderr.decode()
        return r.stdout.decode().strip().splitlines()[-1]

    def emit(self, envelopes):
        acks = self.client.emit_many(envelopes, timeout=20)
        for e in envelopes:
            assert acks[e.event_id].status in (h.ACCEPTED, h.DUPLICATE), (e.event_id, acks[e.event_id])

    def settle(self, names=("matcher", "notifier"), timeout=30.0, quiet=0.4):
        """Until every consumer completed the whole journal and the matcher's
        outbox is empty, with nothing moving for `quiet` seconds."""
        return h.settle(self.redis, names, timeout, quiet)

    def match_id(self, nid, oid):
        v = self.redis.call("GET", "mg:pair:%s|%s" % (nid, oid))
        return v.decode().split("|")[3] if v else None


def scenario(st):
    """Members, needs and offers around Caen and Rouen: matches in the
    Calvados (premises) and in Seine-Maritime (equipment), an unmatched
    need in Lisieux, a cooperation proposed in Caen and accepted. Returns
    nothing; the tests read what the stack made."""
    st.emit([tm.member("s-caen", CAEN), tm.member("s-herouville", HEROUVILLE), tm.member("s-ifs", IFS),
             tm.member("s-rouen", ROUEN), tm.member("s-rouen2", ROUEN), tm.member("s-lisieux", LISIEUX)])
    st.emit([tm.need("n-caen", "s-caen", CAEN, title="Cuisine partagée et stockage",
                     description="Nous cherchons une cuisine aux normes pour deux jours par semaine."),
             tm.need("n-ifs", "s-ifs", IFS, title="Local de stockage à Ifs"),
             tm.need("n-lisieux", "s-lisieux", LISIEUX, category="formation", tags=("comptabilite",),
                     title="Formation à la comptabilité"),
             tm.need("n-rouen", "s-rouen2", ROUEN, category="materiel", tags=("velo", "outillage"),
                     title="Outillage pour atelier vélo")])
    st.emit([tm.offer("o-herouville", "s-herouville", HEROUVILLE, title="Cuisine professionnelle et stockage"),
             tm.offer("o-rouen", "s-rouen", ROUEN, category="materiel", tags=("velo", "outillage"),
                      title="Prêt d'outillage vélo")])
    st.emit([tk.cooperation_proposed("p-caen", "s-caen", "s-herouville")])
    st.emit([tk.cooperation_answered("p-caen", "s-herouville")])
    st.settle()


# ---- docs/openapi.json: a small validator for the JSON Schema it uses -------------

def openapi():
    with open(os.path.join(h.SOURCE, "docs", "openapi.json")) as f:
        return json.load(f)


_TYPES = {"string": str, "array": list, "object": dict, "boolean": bool}


def _is_type(value, name):
    if name == "null":
        return value is None
    if name == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if name == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, _TYPES[name])


def check_schema(doc, schema, value, where="$"):
    """Raise AssertionError where `value` breaks `schema` (the keywords
    docs/openapi.json uses: $ref, allOf, oneOf, type, const, enum, pattern,
    required, properties, additionalProperties, items, minimum, maximum)."""
    if "$ref" in schema:
        check_schema(doc, doc["components"]["schemas"][schema["$ref"].split("/")[-1]], value, where)
    for sub in schema.get("allOf", ()):
        check_schema(doc, sub, value, where)
    if "oneOf" in schema:
        fits = 0
        for sub in schema["oneOf"]:
            try:
                check_schema(doc, sub, value, where)
                fits += 1
            except AssertionError:
                pass
        assert fits == 1, "%s: fits %d of the oneOf: %r" % (where, fits, value)
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        assert any(_is_type(value, t) for t in types), "%s: %r is not %s" % (where, value, types)
    if "const" in schema:
        assert value == schema["const"], "%s: %r != %r" % (where, value, schema["const"])
    if "enum" in schema:
        assert value in schema["enum"], "%s: %r not in %r" % (where, value, schema["enum"])
    if "pattern" in schema and isinstance(value, str):
        import re
        assert re.search(schema["pattern"], value), "%s: %r does not match %s" % (where, value, schema["pattern"])
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        assert value >= schema.get("minimum", value) and value <= schema.get("maximum", value), where
    if isinstance(value, dict):
        for key in schema.get("required", ()):
            assert key in value, "%s: %s is required" % (where, key)
        props = schema.get("properties", {})
        for key, v in value.items():
            if key in props:
                check_schema(doc, props[key], v, "%s.%s" % (where, key))
            elif isinstance(schema.get("additionalProperties"), dict):
                check_schema(doc, schema["additionalProperties"], v, "%s.%s" % (where, key))
    if isinstance(value, list) and "items" in schema:
        for i, v in enumerate(value):
            check_schema(doc, schema["items"], v, "%s[%d]" % (where, i))


def response_schema(doc, template, status="200", method="get"):
    return doc["paths"][template][method]["responses"][status]["content"]["application/json"]["schema"]


def sanitizer_reports(log):
    return [line for line in log.splitlines()
            if "AddressSanitizer" in line or "LeakSanitizer" in line or "runtime error:" in line]


def stop_gateway(st):
    """Stop the gateway; its exit code and the sanitizer lines of its log."""
    if not st.gateway or not st.gateway.proc:
        return 0, []
    rc = st.gateway.stop()
    return rc, sanitizer_reports(st.gateway.log())


def communes_table():
    """INSEE code -> (department, EPCI) from the table the project ships."""
    import csv
    with open(os.path.join(h.SOURCE, "config", "communes-normandie.csv"), newline="") as f:
        return {row["code_insee"]: (row["dep_code"], row["epci_siren"]) for row in csv.DictReader(f)}


MEASURES = {"on": "openNeeds", "oo": "openOffers", "mp": "matchesProposed", "ma": "matchesAccepted",
            "un": "unmetNeeds"}


def fold_figures(redis, department=None):
    """mg:figures folded by department, category and EPCI, independently of
    the gateway: {"totals": {...}, "dep": {code: {...}}, "cat": ..., "epci": ...}."""
    table = communes_table()
    flat = redis.call("HGETALL", "mg:figures")
    out = {"totals": {m: 0 for m in MEASURES.values()}, "dep": {}, "cat": {}, "epci": {}}
    first_dep = {}  # an EPCI's department: its first commune's
    for dep, epci in table.values():
        first_dep.setdefault(epci, dep)
    for field, value in zip(flat[::2], flat[1::2]):
        measure, cat, com = field.decode().split("|")
        if com.startswith("dep:"):  # an offer placed by its territory only, at its first entry
            dep, epci = com[4:], ""
        elif com.startswith("epci:"):
            dep, epci = first_dep.get(com[5:], ""), com[5:]
        else:
            dep, epci = table.get(com, ("", ""))
        if department and dep != department:
            continue
        name, n = MEASURES[measure], int(value)
        out["totals"][name] += n
        for axis, key in (("dep", dep), ("cat", cat), ("epci", epci)):
            if key:
                out[axis].setdefault(key, {m: 0 for m in MEASURES.values()})[name] += n
    return out


def measures(row):
    return {m: row[m] for m in MEASURES.values()}


def follow(test, fetch, limit):
    """Every page of a list (fetch(cursor) -> body) until nextCursor is null;
    returns the items in order and the number of pages."""
    items, cursor, pages = [], None, 0
    while True:
        body = fetch(cursor)
        test.assertIn("nextCursor", body)
        items.extend(body["items"])
        pages += 1
        test.assertLess(pages, 100, "the cursor never ends")
        cursor = body["nextCursor"]
        if cursor is None:
            return items, pages


class ReadTest(unittest.TestCase):
    """One stack and one scenario for the read-only checks."""

    @classmethod
    def setUpClass(cls):
        cls.ws = h.Workspace("maillage-gwq-")
        try:
            cls.st = Stack(cls.ws)
            scenario(cls.st)
            cls.claire = cls.st.token("--staff", "claire", "--label", "tests")
            cls.remi = cls.st.token("--staff", "remi")
            cls.network = cls.st.token("--network", "reseau-test", "--types", "*")
        except BaseException:
            cls.ws.close(keep=bool(os.environ.get("KEEP")))
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            rc, reports = stop_gateway(cls.st)
            if reports or rc != 0:
                raise AssertionError("gateway exit %s, sanitizer: %s" % (rc, reports[:5]))
        finally:
            cls.ws.close(keep=bool(os.environ.get("KEEP")))

    def get(self, path, token=None, **query):
        return self.st.http.get(path, token or self.claire, **query)

    def ok(self, path, token=None, **query):
        status, body, _ = self.get(path, token, **query)
        self.assertEqual(status, 200, (path, query, body))
        return body

    def error(self, want, path, token=None, field=None, **query):
        got, body, _ = self.get(path, token, **query)
        self.assertEqual(got, want, (path, query, body))
        self.assertIn("code", body["error"])
        if field:
            self.assertEqual(body["error"].get("field"), field, body)
        return body

    READ_PATHS = ("/v1/taxonomy", "/v1/communes", "/v1/structures", "/v1/structures/s-caen", "/v1/needs",
                  "/v1/needs/n-caen", "/v1/needs/n-caen/matches", "/v1/offers", "/v1/offers/o-rouen",
                  "/v1/offers/o-rouen/matches", "/v1/cooperations/p-caen", "/v1/staff/me/inbox",
                  "/v1/collective-needs", "/v1/figures", "/v1/map")

    def test_reads_need_a_staff_token(self):
        for path in self.READ_PATHS:
            status, body, resp = self.st.http.get(path)
            self.assertEqual(status, 401, path)
            self.assertEqual(resp.getheader("WWW-Authenticate"), "Bearer", path)
            status, body, _ = self.st.http.get(path, self.network)
            self.assertEqual((status, body["error"]["code"]), (403, "forbidden"), path)
            self.ok(path)
        mid = self.st.match_id("n-caen", "o-herouville")
        self.assertEqual(self.st.http.get("/v1/matches/" + mid, self.network)[0], 403)
        status, _, resp = self.st.http.request("POST", "/v1/needs", self.claire, body={})
        self.assertEqual(status, 405)
        self.assertIn("GET", resp.getheader("Allow"))

    def test_taxonomy_and_communes(self):
        tax = self.ok("/v1/taxonomy")
        cats = {c["code"]: c["label"] for c in tax["categories"]}
        self.assertEqual(cats["locaux"], "Locaux")
        self.assertEqual(len(cats), 12)
        self.assertEqual([(d["code"], d["name"]) for d in tax["departments"]],
                         [("14", "Calvados"), ("27", "Eure"), ("50", "Manche"), ("61", "Orne"),
                          ("76", "Seine-Maritime")])
        self.assertEqual(tax["networks"], [{"id": "urscop-normandie", "name": "URSCOP Normandie"},
                                           {"id": "cress-normandie", "name": "CRESS Normandie"}])
        status, body, resp = self.get("/v1/communes")
        self.assertEqual(status, 200)
        self.assertIn("max-age=86400", resp.getheader("Cache-Control"))
        communes = {c["code"]: c for c in body["communes"]}
        self.assertEqual(len(communes), len(communes_table()))
        caen = communes[CAEN]
        self.assertEqual((caen["name"], caen["department"], caen["epci"]), ("Caen", "14", "200065597"))
        self.assertAlmostEqual(caen["lat"], 49.18, places=1)
        self.assertAlmostEqual(caen["lon"], -0.37, places=1)

    def test_structure_with_contact_and_paged_list(self):
        s = self.ok("/v1/structures/s-caen")
        self.assertEqual((s["id"], s["name"], s["commune"], s["communeName"]), ("s-caen", "Structure s-caen", CAEN, "Caen"))
        self.assertEqual((s["family"], s["familyLabel"], s["left"]), ("FAMILY_ASSOCIATION", "association", False))
        # Staff put people in touch: the contact is there, from mg:contact.
        self.assertEqual(s["contact"]["name"], "Camille Martin")
        self.assertEqual(s["contact"]["email"], "camille@s-caen.example.org")
        # Its open needs and offers, with their titles.
        self.assertEqual((s["openNeeds"], s["openOffers"]), ([{"id": "n-caen", "title": "Cuisine partagée et stockage"}], []))
        self.assertNotIn("openItemsTruncated", s)
        self.assertEqual(self.ok("/v1/structures/s-herouville")["openOffers"],
                         [{"id": "o-herouville", "title": "Cuisine professionnelle et stockage"}])
        self.error(404, "/v1/structures/s-nowhere")
        everything = self.ok("/v1/structures", limit=200)
        self.assertIsNone(everything["nextCursor"])
        ids = sorted(i["id"] for i in everything["items"])
        self.assertEqual(ids, ["s-caen", "s-herouville", "s-ifs", "s-lisieux", "s-rouen", "s-rouen2"])
        self.assertNotIn("contact", everything["items"][0])  # lists stay light
        # Paged: every structure once (the :items sets are not structures).
        items, _ = follow(self, lambda c: self.ok("/v1/structures", limit=2, **({"cursor": c} if c else {})), 2)
        self.assertEqual(sorted(i["id"] for i in items), ids)
        self.error(400, "/v1/structures", field="cursor", cursor="abc")
        self.error(400, "/v1/structures", field="limit", limit=0)
        self.error(400, "/v1/structures", field="limit", limit=201)

    def test_cooperation_proposal_with_names_and_answers(self):
        c = self.ok("/v1/cooperations/p-caen")
        self.assertEqual((c["id"], c["proposalId"], c["title"], c["description"]),
                         ("p-caen", "p-caen", "Mutualiser une cuisine professionnelle",
                          "Une cuisine aux normes, partagée trois jours par semaine."))
        self.assertEqual((c["kind"], c["kindLabel"], c["category"], c["categoryLabel"]),
                         ("COOPERATION_KIND_POOLING", "mutualisation", "locaux", "Locaux"))
        self.assertEqual((c["fromStructureId"], c["fromStructureName"], c["toStructureId"], c["toStructureName"]),
                         ("s-caen", "Structure s-caen", "s-herouville", "Structure s-herouville"))
        # the answer with what it said and when (its comment was only in the notification)
        answered_at = c["answers"][0].pop("answeredAt", "")
        self.assertRegex(answered_at, r"^20\d\d-\d\d-\d\dT\d\d:\d\d:\d\d")
        self.assertEqual(c["answers"], [{"structureId": "s-herouville", "structureName": "Structure s-herouville",
                                         "answer": "COOPERATION_ANSWER_ACCEPTED", "answerLabel": "acceptée",
                                         "comment": "Avec plaisir, appelons-nous."}])
        self.assertRegex(c["sequence"], r"^[1-9]\d*$")
        self.assertNotIn("contact", json.dumps(c))
        self.error(404, "/v1/cooperations/p-nowhere")
        self.error(404, "/v1/cooperations/bad%20id")
        self.error(404, "/v1/cooperations/" + "p" * 65)

    def test_a_percent_encoded_slash_stays_in_its_segment(self):
        # "%2F" was decoded before the path was split: x%2Fmatches read as
        # x's matches. Other escapes still decode within their segment.
        self.assertEqual(self.error(404, "/v1/needs/n-caen%2Fmatches")["error"]["message"], "no such resource")
        self.assertEqual(self.ok("/v1/needs/n%2Dcaen%2fmatches".replace("%2f", "/"))["items"],
                         self.ok("/v1/needs/n-caen/matches")["items"])
        self.assertEqual(self.ok("/v1/needs/n%2Dcaen")["id"], "n-caen")
        # A NUL is refused for the whole path, before any segment is decoded.
        self.assertEqual(self.error(400, "/v1/needs/n%00caen")["error"]["message"], "malformed path")

    def test_need_from_the_journal(self):
        n = self.ok("/v1/needs/n-caen")
        self.assertEqual((n["id"], n["open"], n["structureId"], n["structureName"]),
                         ("n-caen", True, "s-caen", "Structure s-caen"))
        self.assertEqual((n["title"], n["description"]),
                         ("Cuisine partagée et stockage", "Nous cherchons une cuisine aux normes pour deux jours par semaine."))
        self.assertEqual(n["tags"], ["cuisine", "stockage"])  # the original, not the folded keywords
        self.assertEqual((n["category"], n["categoryLabel"]), ("locaux", "Locaux"))
        self.assertEqual((n["commune"], n["communeName"], n["department"], n["departmentName"]),
                         (CAEN, "Caen", "14", "Calvados"))
        self.assertEqual((n["epci"], n["epciName"]), ("200065597", "CU Caen la Mer"))
        self.assertEqual((n["radiusKm"], n["openMatches"], n["complete"], n["source"]), (30, 1, True, "test-net"))
        self.assertRegex(n["receivedAt"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        o = self.ok("/v1/offers/o-herouville")
        self.assertEqual((o["id"], o["structureId"], o["providerId"], o["title"], o["openMatches"]),
                         ("o-herouville", "s-herouville", "s-herouville", "Cuisine professionnelle et stockage", 2))
        self.error(404, "/v1/needs/n-nowhere")
        self.error(404, "/v1/offers/o-nowhere")
        self.error(404, "/v1/needs/o-rouen")  # an offer is not a need
        self.assertEqual(self.get("/v1/needs/bad%20id")[0], 404)

    def test_need_lists_filters_and_paging(self):
        def ids(**query):
            return sorted(i["id"] for i in self.ok("/v1/needs", **query)["items"])
        self.assertEqual(ids(), ["n-caen", "n-ifs", "n-lisieux", "n-rouen"])
        self.assertEqual(ids(category="materiel"), ["n-rouen"])
        self.assertEqual(ids(department="76"), ["n-rouen"])
        self.assertEqual(ids(department="14", category="locaux"), ["n-caen", "n-ifs"])
        self.assertEqual(ids(department="50"), [])
        offers = self.ok("/v1/offers", category="locaux")["items"]
        self.assertEqual([o["id"] for o in offers], ["o-herouville"])
        items, pages = follow(self, lambda c: self.ok("/v1/needs", limit=1, **({"cursor": c} if c else {})), 1)
        self.assertEqual(sorted(i["id"] for i in items), ["n-caen", "n-ifs", "n-lisieux", "n-rouen"])
        self.assertGreater(pages, 1)
        self.error(400, "/v1/needs", field="category", category="nope")
        self.error(400, "/v1/needs", field="department", department="75")
        self.error(400, "/v1/needs", field="cursor", cursor="99.0")
        self.error(400, "/v1/offers", field="cursor", cursor="x")

    def test_matches_of_a_need_and_of_an_offer(self):
        mine = self.ok("/v1/needs/n-caen/matches")["items"]
        self.assertEqual(len(mine), 1)
        m = mine[0]
        self.assertEqual((m["needId"], m["offerId"], m["id"]),
                         ("n-caen", "o-herouville", self.st.match_id("n-caen", "o-herouville")))
        self.assertEqual((m["needStructureName"], m["offerStructureName"], m["needTitle"], m["offerTitle"]),
                         ("Structure s-caen", "Structure s-herouville", "Cuisine partagée et stockage",
                          "Cuisine professionnelle et stockage"))
        self.assertEqual((m["category"], m["department"], m["retired"], m["revision"], m["status"]),
                         ("locaux", "14", False, 1, "new"))
        self.assertIn("à 4 km", m["explanation"])
        self.assertEqual(m["components"]["distance"]["detail"], "à 4 km dans un rayon de 20 km")
        self.assertEqual(m["found"]["matchId"], m["id"])
        offer = self.ok("/v1/offers/o-herouville/matches")["items"]
        self.assertEqual(sorted(i["needId"] for i in offer), ["n-caen", "n-ifs"])
        scores = [i["score"] for i in offer]
        self.assertEqual(scores, sorted(scores, reverse=True))
        self.assertEqual(len(self.ok("/v1/offers/o-herouville/matches", limit=1)["items"]), 1)
        self.assertEqual(self.ok("/v1/needs/n-lisieux/matches")["items"], [])
        self.error(404, "/v1/needs/n-nowhere/matches")
        one = self.ok("/v1/matches/" + m["id"])
        self.assertEqual({k: one[k] for k in ("id", "needId", "offerId", "score", "status")},
                         {k: m[k] for k in ("id", "needId", "offerId", "score", "status")})
        self.assertRegex(one["proposedAt"], r"^\d{4}-\d\d-\d\dT")
        self.error(404, "/v1/matches/m-00000000000000000000000000000000")

    def test_inbox_pages_filters_and_owner(self):
        everything = self.ok("/v1/staff/me/inbox", limit=200)
        items = everything["items"]
        # Claire follows the Calvados: the two matches there, the three
        # members who joined there, the cooperation proposed there and its answer.
        kinds = sorted(i["kind"] for i in items)
        self.assertEqual(kinds.count("match"), 2, kinds)
        self.assertEqual(everything["total"], len(items))
        positions = [i["position"] for i in items]
        self.assertEqual(positions, sorted(positions, key=lambda p: (int(p.split("-")[0]), p), reverse=True))
        for i in items:
            self.assertEqual(i["position"], "%d-%s" % (int(i["position"].split("-")[0]), i["id"]))
            self.assertRegex(i["createdAt"], r"Z$")
            self.assertIs(i["read"], False)
            self.assertTrue(i["title"] and i["text"] and i["link"])
        match = [i for i in items if i["kind"] == "match"]
        for m in match:
            self.assertEqual((m["category"], m["department"], m["status"]), ("locaux", "14", "new"))
            self.assertEqual(m["offerId"], "o-herouville")
            self.assertIn(m["needId"], ("n-caen", "n-ifs"))
            self.assertEqual(m["matchId"], self.st.match_id(m["needId"], "o-herouville"))
        # Pages of 2: the same entries, in the same order, once each.
        paged, pages = follow(self, lambda c: self.ok("/v1/staff/me/inbox", limit=2, **({"cursor": c} if c else {})), 2)
        self.assertEqual([i["id"] for i in paged], [i["id"] for i in items])
        self.assertEqual(pages, (len(items) + 1) // 2)  # no empty page at the end
        # Filters.
        self.assertEqual([i["id"] for i in self.ok("/v1/staff/me/inbox", kind="match")["items"]],
                         [i["id"] for i in match])
        locaux = self.ok("/v1/staff/me/inbox", category="locaux")["items"]
        self.assertEqual(sorted(i["kind"] for i in locaux),
                         ["cooperation_answered", "cooperation_proposed", "match", "match"])
        self.assertEqual(self.ok("/v1/staff/me/inbox", category="materiel")["items"], [])
        self.assertEqual(len(self.ok("/v1/staff/me/inbox", status="new")["items"]), 2)
        self.assertEqual(self.ok("/v1/staff/me/inbox", status="contact_made")["items"], [])
        joined = self.ok("/v1/staff/me/inbox", kind="member_joined", department="14")["items"]
        self.assertTrue(joined)
        self.assertTrue(all(i["department"] == "14" for i in joined))
        filtered, _ = follow(self, lambda c: self.ok("/v1/staff/me/inbox", limit=1, kind="match",
                                                      **({"cursor": c} if c else {})), 1)
        self.assertEqual([i["id"] for i in filtered], [i["id"] for i in match])
        # Its own id works like "me"; another staff member's inbox does not.
        self.assertEqual(len(self.ok("/v1/staff/claire/inbox", limit=200)["items"]), len(items))
        self.error(403, "/v1/staff/remi/inbox")
        remi = self.ok("/v1/staff/me/inbox", self.remi)["items"]
        self.assertTrue(remi)
        self.assertTrue(all(i["department"] == "76" for i in remi if "department" in i))
        self.assertFalse({i["id"] for i in remi} & {i["id"] for i in items})
        for bad in ({"status": "done"}, {"kind": "nope"}, {"cursor": "x-y"}, {"cursor": "12-bad id"},
                    {"unread": "maybe"}, {"limit": "ten"}):
            self.error(400, "/v1/staff/me/inbox", **bad)

    def test_figures_by_department_category_and_epci(self):
        f = self.ok("/v1/figures")
        self.assertEqual(f["totals"], {"openNeeds": 4, "openOffers": 2, "matchesProposed": 3, "matchesAccepted": 0,
                                       "unmetNeeds": 1})
        deps = {d["code"]: d for d in f["byDepartment"]}
        self.assertEqual(sorted(deps), ["14", "27", "50", "61", "76"])
        self.assertEqual(deps["14"]["name"], "Calvados")
        self.assertEqual(measures(deps["14"]), {"openNeeds": 3, "openOffers": 1, "matchesProposed": 2,
                                                "matchesAccepted": 0, "unmetNeeds": 1})
        self.assertEqual(measures(deps["76"]), {"openNeeds": 1, "openOffers": 1, "matchesProposed": 1,
                                                "matchesAccepted": 0, "unmetNeeds": 0})
        self.assertEqual(measures(deps["27"]), {m: 0 for m in MEASURES.values()})
        cats = {c["code"]: c for c in f["byCategory"]}
        self.assertEqual(len(cats), 12)
        self.assertEqual((cats["locaux"]["label"], cats["locaux"]["openNeeds"], cats["locaux"]["openOffers"]),
                         ("Locaux", 2, 1))
        self.assertEqual((cats["formation"]["openNeeds"], cats["formation"]["unmetNeeds"]), (1, 1))
        epcis = {e["code"]: e for e in f["byEpci"]}
        caen = epcis["200065597"]
        self.assertEqual((caen["name"], caen["department"]), ("CU Caen la Mer", "14"))
        self.assertEqual(measures(caen), {"openNeeds": 2, "openOffers": 1, "matchesProposed": 2,
                                          "matchesAccepted": 0, "unmetNeeds": 0})
        # The same as mg:figures folded here through the commune table.
        folded = fold_figures(self.st.redis)
        self.assertEqual(f["totals"], folded["totals"])
        for code, row in folded["dep"].items():
            self.assertEqual(measures(deps[code]), row)
        for code, row in folded["epci"].items():
            self.assertEqual(measures(epcis[code]), row)
        self.assertEqual(set(epcis), set(folded["epci"]))
        one = self.ok("/v1/figures", department="76")
        self.assertEqual([d["code"] for d in one["byDepartment"]], ["76"])
        self.assertEqual(one["totals"], fold_figures(self.st.redis, "76")["totals"])
        self.assertEqual({c["code"]: c["openNeeds"] for c in one["byCategory"] if c["openNeeds"]}, {"materiel": 1})
        self.assertEqual([e["code"] for e in one["byEpci"]], ["200023414"])
        self.error(400, "/v1/figures", field="department", department="2A")

    def test_map_places_what_is_open(self):
        m = self.ok("/v1/map")
        places = {c["code"]: c for c in m["communes"]}
        self.assertEqual(sorted(places), sorted([CAEN, HEROUVILLE, IFS, LISIEUX, ROUEN]))
        self.assertEqual((places[CAEN]["openNeeds"], places[CAEN]["openOffers"], places[CAEN]["matches"]), (1, 0, 1))
        self.assertEqual((places[HEROUVILLE]["openNeeds"], places[HEROUVILLE]["openOffers"]), (0, 1))
        self.assertEqual((places[ROUEN]["openNeeds"], places[ROUEN]["openOffers"], places[ROUEN]["matches"]), (1, 1, 1))
        self.assertEqual(places[LISIEUX]["unmetNeeds"], 1)
        self.assertEqual(places[CAEN]["name"], "Caen")
        self.assertAlmostEqual(places[ROUEN]["lat"], 49.44, places=1)
        only = self.ok("/v1/map", category="materiel")
        self.assertEqual([c["code"] for c in only["communes"]], [ROUEN])
        self.error(400, "/v1/map", field="category", category="Locaux")

    def concrete(self, template):
        """A path of the scenario for an openapi.json path template."""
        mid = self.st.match_id("n-caen", "o-herouville")
        ids = {"/v1/structures/{id}": "s-caen", "/v1/needs/{id}": "n-caen", "/v1/needs/{id}/matches": "n-caen",
               "/v1/offers/{id}": "o-herouville", "/v1/offers/{id}/matches": "o-herouville",
               "/v1/matches/{id}": mid, "/v1/matches/{id}/feedback": mid, "/v1/cooperations/{id}": "p-caen",
               "/v1/staff/{id}/inbox": "me",
               "/v1/staff/{id}/inbox/{nid}/read": "me"}
        path = template.replace("{id}", ids.get(template, "x")).replace("{nid}", "n-nowhere")
        return path.replace("{asset}", "index.html")

    def test_answers_follow_the_openapi_document(self):
        doc = openapi()
        # Nothing is changed: POSTs get an empty object (400) or an unknown id (404).
        checked = 0
        for template, methods in doc["paths"].items():
            path = self.concrete(template)
            for method, op in methods.items():
                if template in ("/", "/{asset}", "/v1/openapi.json", "/v1/stream"):
                    continue  # the staff page's part; the stream has its own tests
                # Every documented operation is routed (the router's 404 says "no such resource").
                status, body, _ = self.st.http.request(method.upper(), path, self.claire,
                                                       body={} if method == "post" else None)
                if status == 404:
                    self.assertNotEqual(body["error"]["message"], "no such resource", (method, template))
                self.assertIn(str(status), op["responses"], (method, template, status, body))
                if method == "get" and status == 200 and template != "/v1/stream":
                    if "application/json" in op["responses"]["200"].get("content", {}):
                        check_schema(doc, response_schema(doc, template), body, template)
                        checked += 1
                if isinstance(body, dict) and "error" in body:
                    check_schema(doc, {"$ref": "#/components/schemas/Error"}, body, template)
        self.assertGreater(checked, 15)
        # Lists with every optional field present, and errors.
        check_schema(doc, response_schema(doc, "/v1/needs"), self.ok("/v1/needs", limit=1), "needs page")
        check_schema(doc, response_schema(doc, "/v1/me"), self.ok("/v1/me", self.network), "network me")
        body = self.error(400, "/v1/needs", field="limit", limit=0)
        check_schema(doc, {"$ref": "#/components/schemas/Error"}, body)
        # The proto3 messages are described field by field from the schema.
        need = doc["components"]["schemas"]["Need"]["properties"]
        self.assertEqual(sorted(need), sorted(f.json_name for f in h.events_pb2.Need.DESCRIPTOR.fields))
        env = doc["components"]["schemas"]["Envelope"]["properties"]
        self.assertEqual(sorted(env), sorted(f.json_name for f in h.Envelope.DESCRIPTOR.fields))

    def test_a_query_parameter_not_documented_is_refused(self):
        # A misspelt filter used to be ignored: "?categry=materiel" answered
        # every need, unfiltered. Each API route reads exactly the parameters
        # openapi.json documents for it, regardless of case, and no other.
        doc = openapi()
        routes = 0
        for template, methods in doc["paths"].items():
            get = methods.get("get")
            if not get or template in ("/", "/{asset}", "/v1/openapi.json", "/healthz", "/readyz", "/metrics"):
                continue  # public: a link's "?utm" still opens the page (below)
            path = self.concrete(template)
            names = [p["name"] for p in get.get("parameters", []) if p.get("in") == "query"]
            if template == "/v1/stream":
                # Each documented name is read (an empty value is no value)...
                # (an open stream would not end: a bad value shows it is read)
                status, body, _ = self.get(path, lastEventId="x")
                self.assertEqual((status, body["error"]["field"]), (400, "Last-Event-ID"), body)
            else:
                for name in names:
                    for spelling in (name, name.upper()):
                        status, body, _ = self.get(path, **{spelling: ""})
                        self.assertEqual(status, 200, (template, spelling, body))
            # ... and a name it does not document is refused, naming it.
            for unknown in ("categry", "utm_source", names[0] + "s" if names else "limit"):
                status, body, _ = self.get(path, **{unknown: "materiel"})
                self.assertEqual((status, body["error"]["code"], body["error"]["field"]),
                                 (400, "invalid_parameter", unknown), (template, body))
                self.assertIn("unknown query parameter " + unknown, body["error"]["message"])
                listed = body["error"]["message"].split("reads", 1)[1].strip(" :)").split()
                self.assertEqual(sorted(listed), sorted(names) or ["none"], template)
            routes += 1
        self.assertGreaterEqual(routes, 15)
        # The filter meant, spelt right, filters.
        self.assertEqual({n["category"] for n in self.ok("/v1/needs", category="materiel")["items"]}, {"materiel"})
        # Before the token: the same 400 with none.
        status, body, _ = self.st.http.get("/v1/needs?categry=materiel")
        self.assertEqual((status, body["error"]["field"]), (400, "categry"))

    def test_hostile_parameters_get_400_and_nothing_else(self):
        huge = "9" * 25
        cases = [
            ("/v1/structures", {"cursor": "18446744073709551616"}, "cursor"),  # 2^64: Redis would refuse it
            ("/v1/structures", {"cursor": "-1"}, "cursor"),
            ("/v1/structures", {"cursor": huge}, "cursor"),
            ("/v1/structures", {"limit": "1e3"}, "limit"),
            ("/v1/structures", {"limit": "-5"}, "limit"),
            ("/v1/structures", {"limit": huge}, "limit"),
            ("/v1/structures", {"limit": "+5"}, "limit"),
            ("/v1/structures", {"limit": " 5"}, "limit"),
            ("/v1/needs", {"cursor": "0.18446744073709551616"}, "cursor"),
            ("/v1/needs", {"cursor": ".0"}, "cursor"),
            ("/v1/needs", {"cursor": "0."}, "cursor"),
            ("/v1/needs", {"cursor": "+0.0"}, "cursor"),
            ("/v1/needs", {"department": "14' OR 1=1"}, "department"),
            ("/v1/offers", {"category": "*"}, "category"),
            ("/v1/collective-needs", {"cursor": huge}, "cursor"),
            ("/v1/staff/me/inbox", {"cursor": huge + "-n-1"}, "cursor"),
            ("/v1/staff/me/inbox", {"cursor": "-n-1"}, "cursor"),
            ("/v1/staff/me/inbox", {"cursor": "12-"}, "cursor"),
            ("/v1/staff/me/inbox", {"cursor": "12-a b"}, "cursor"),
            ("/v1/staff/me/inbox", {"cursor": "12-" + "a" * 65}, "cursor"),
            ("/v1/staff/me/inbox", {"cursor": "12-é"}, "cursor"),
            ("/v1/staff/me/inbox", {"kind": "match\r\nX-Injected: 1"}, "kind"),
            ("/v1/map", {"category": "x" * 5000}, "category"),
        ]
        for path, query, field in cases:
            self.error(400, path, field=field, **query)
        # A NUL or invalid UTF-8 in the query string would shorten or garble
        # a value: refused as a whole, before any route sees it.
        for query in ({"category": "locaux\x00x"}, {"department": b"\xff"}):
            self.error(400, "/v1/needs", **query)
        # A name given twice is refused (which one would count?), and a flood
        # of parameters too (each pair is compared with the others).
        status, body, _ = self.get("/v1/needs?limit=1&limit=999")
        self.assertEqual((status, body["error"]["code"], body["error"]["field"]), (400, "invalid_parameter", "limit"))
        # Names are read regardless of case, so "LIMIT" is "limit" given twice.
        status, body, _ = self.get("/v1/needs?limit=1&LIMIT=999")
        self.assertEqual((status, body["error"]["code"]), (400, "invalid_parameter"), body)
        status, body, _ = self.get("/v1/needs?" + "&".join("p%d=1" % i for i in range(2000)))
        self.assertEqual((status, body["error"]["code"]), (400, "bad_request"), body)
        # Empty pairs and a name alone are what browsers and shared links
        # make: taken (a name alone has an empty value), not a 400.
        first = self.ok("/v1/needs", limit=1)
        for raw in ("/v1/needs?limit=1&&", "/v1/needs?&limit=1", "/v1/needs?limit=1&cursor"):
            status, body, _ = self.get(raw)
            self.assertEqual((status, body), (200, first), raw)
        # The public routes read no parameter: the page opens whatever a link
        # adds to it (it used to answer a JSON 400 to "/?utm").
        for raw in ("/?utm", "/?&", "/?x=%ff", "/healthz?probe"):
            status, body, resp = self.st.http.get(raw)
            self.assertEqual(status, 200, (raw, body))
        self.assertTrue(self.st.http.get("/?utm")[2].getheader("Content-Type").startswith("text/html"))
        # The largest cursor Redis takes is taken (and just ends the list).
        self.assertIn("items", self.ok("/v1/structures", cursor="18446744073709551615"))
        self.assertEqual(self.ok("/v1/structures", cursor="")["items"], self.ok("/v1/structures")["items"])
        self.assertEqual(self.st.http.get("/healthz")[0], 200)

    def test_an_empty_parameter_is_an_absent_one(self):
        # The README's own templates ("inbox?limit=&cursor=&department=...")
        # and forms with a field left empty: every parameter reads an empty
        # value as no value (limit= and unread= used to be a 400, the others not).
        for path, raw in (("/v1/staff/me/inbox", "?limit=&cursor=&department=&category=&status=&kind=&unread="),
                          ("/v1/needs", "?limit=&category=&department=&cursor="),
                          ("/v1/offers/o-herouville/matches", "?limit&cursor"),
                          ("/v1/structures", "?limit=&cursor="),
                          ("/v1/collective-needs", "?limit=&category=&department=&cursor=")):
            status, body, _ = self.get(path + raw)
            self.assertEqual((status, body), (200, self.ok(path)), raw)

    def test_collective_needs_empty_and_checked(self):
        self.assertEqual(self.ok("/v1/collective-needs"), {"items": [], "nextCursor": None})
        self.error(400, "/v1/collective-needs", field="category", category="x")
        self.error(400, "/v1/collective-needs", field="limit", limit=501)


class ChangeTest(unittest.TestCase):
    """A stack per test, for what changes the data."""

    def setUp(self):
        self.ws = h.Workspace("maillage-gwq-")
        self.st = Stack(self.ws)
        scenario(self.st)
        self.claire = self.st.token("--staff", "claire")
        self.remi = self.st.token("--staff", "remi")

    def tearDown(self):
        try:
            rc, reports = stop_gateway(self.st)
            self.assertEqual(reports, [])
            self.assertEqual(rc, 0)
        finally:
            self.ws.close(keep=bool(os.environ.get("KEEP")))

    def ok(self, path, token=None, **query):
        status, body, _ = self.st.http.get(path, token or self.claire, **query)
        self.assertEqual(status, 200, (path, query, body))
        return body

    def test_an_offer_placed_by_its_territory_is_listed_in_the_departments_it_serves(self):
        # Such an offer has no commune, hence no department of its own: it
        # used to be missing from every ?department= list, and from the figures.
        def open_offers(department=None):
            body = self.ok("/v1/figures", **({"department": department} if department else {}))
            return body["totals"]["openOffers"], {e["code"]: e["openOffers"] for e in body["byEpci"]}
        before = {d: open_offers(d) for d in (None, "50", "14", "27")}
        self.st.emit([tm.offer("o-manche", "s-rouen", "", category="formation", territory=("dep:50",)),
                      tm.offer("o-caen-la-mer", "s-rouen", "", category="formation", territory=("epci:200065597",)),
                      tm.offer("o-evreux", "s-rouen", "", category="formation", territory=("27229", "dep:61")),
                      # an EPCI with communes in the Calvados and the Eure
                      tm.offer("o-two-deps", "s-rouen", "", category="formation", territory=("epci:200066827",))])
        self.st.settle()

        def ids(department):
            body = self.ok("/v1/offers", category="formation", department=department)
            return sorted(i["id"] for i in body["items"])
        self.assertEqual(ids("50"), ["o-manche"])
        self.assertEqual(ids("14"), ["o-caen-la-mer", "o-two-deps"])
        self.assertEqual(ids("27"), ["o-evreux", "o-two-deps"])
        self.assertEqual(ids("61"), ["o-evreux"])
        self.assertEqual(ids("76"), [])
        # The figures count each at its first entry: the Manche, the CU Caen la
        # Mer (and the Calvados), Évreux (the Eure), the EPCI across two
        # departments (and its first commune's, the Calvados).
        h.wait_until(lambda: open_offers()[0] == before[None][0] + 4, 10, what="the figures (cached 2 s)")
        for department, more in (("50", 1), ("14", 2), ("27", 1)):
            self.assertEqual(open_offers(department)[0], before[department][0] + more, department)
        epcis = open_offers()[1]
        self.assertEqual(epcis.get("200065597", 0), before[None][1].get("200065597", 0) + 1)
        self.assertEqual(epcis.get("200066827", 0), before[None][1].get("200066827", 0) + 1)
        # Read one by one: placed by its territory, named by it, no commune
        # ("commune": "dep:50" was shown as the commune).
        o = self.ok("/v1/offers/o-manche")
        self.assertNotIn("commune", o)
        self.assertEqual((o["department"], o["departmentName"], o["territoryNames"]), ("50", "Manche", ["Manche"]))
        o = self.ok("/v1/offers/o-caen-la-mer")
        self.assertEqual((o.get("commune"), o["department"], o["territoryNames"]), (None, "14", ["CU Caen la Mer"]))
        o = self.ok("/v1/offers/o-evreux")  # its first entry a commune: not its commune all the same
        self.assertNotIn("commune", o)
        self.assertEqual((o["department"], o["territoryNames"]), ("27", ["Évreux", "Orne"]))
        doc = openapi()
        check_schema(doc, response_schema(doc, "/v1/offers/{id}"), o)

    def test_feedback_shows_as_status_and_in_the_figures(self):
        mid = self.st.match_id("n-caen", "o-herouville")
        status, body, _ = self.st.http.request("POST", "/v1/matches/%s/feedback" % mid, self.claire,
                                               body={"outcome": "MATCH_OUTCOME_CONTACT_MADE"})
        self.assertEqual(status, 202, body)
        self.st.settle()
        self.assertEqual(self.ok("/v1/matches/" + mid)["status"], "contact_made")
        self.assertEqual(self.ok("/v1/matches/" + mid, self.remi)["status"], "new")  # remi's own feedback
        self.assertEqual(self.ok("/v1/needs/n-caen/matches")["items"][0]["status"], "contact_made")
        entries = self.ok("/v1/staff/me/inbox", status="contact_made")["items"]
        self.assertEqual([e["matchId"] for e in entries], [mid])
        # The figures cache lives 2 s: the accepted match shows within it.
        h.wait_until(lambda: self.ok("/v1/figures")["totals"]["matchesAccepted"] == 1, 10,
                     what="matchesAccepted to reach 1")
        deps = {d["code"]: d for d in self.ok("/v1/figures")["byDepartment"]}
        self.assertEqual(deps["14"]["matchesAccepted"], 1)

    def test_ranks_are_those_of_the_open_matches_now(self):
        # n-caen was proposed o-herouville (4 km). A better offer comes later
        # (in Caen itself), then a weaker one (Bayeux): the matcher sends no
        # revision of the pairs already proposed, so o-herouville's match.found
        # still says rank 1. The API ranks a need's open matches as they stand.
        self.st.emit([tm.member("s-caen2", CAEN), tm.member("s-bayeux", BAYEUX)])
        self.st.emit([tm.offer("o-caen", "s-caen2", CAEN)])
        self.st.settle()
        self.st.emit([tm.offer("o-bayeux", "s-bayeux", BAYEUX, radius=40)])
        self.st.settle()
        items = self.ok("/v1/needs/n-caen/matches")["items"]
        self.assertEqual([i["offerId"] for i in items], ["o-caen", "o-herouville", "o-bayeux"])
        scores = [i["score"] for i in items]
        self.assertEqual(scores, sorted(set(scores), reverse=True))
        self.assertEqual(items[1]["found"]["rank"], 1)  # as proposed: what staff were shown before
        self.assertEqual([i["rank"] for i in items], [1, 2, 3])
        for i in items:
            self.assertEqual(self.ok("/v1/matches/" + i["id"])["rank"], i["rank"], i["offerId"])
        # An offer's matches: each ranked among its own need's.
        ranks = {i["needId"]: i["rank"] for i in self.ok("/v1/offers/o-herouville/matches")["items"]}
        self.assertEqual(ranks["n-caen"], 2)
        self.assertEqual(ranks["n-ifs"], self.ok("/v1/matches/" + self.st.match_id("n-ifs", "o-herouville"))["rank"])
        # The best offer withdrawn: its match is retired, without a rank; the others move up.
        self.st.emit([tm.offer_withdrawn("o-caen", "s-caen2")])
        self.st.settle()
        gone = self.ok("/v1/matches/" + items[0]["id"])
        self.assertTrue(gone["retired"])
        self.assertNotIn("rank", gone)
        self.assertEqual([(i["offerId"], i["rank"]) for i in self.ok("/v1/needs/n-caen/matches")["items"]],
                         [("o-herouville", 1), ("o-bayeux", 2)])
        doc = openapi()
        check_schema(doc, response_schema(doc, "/v1/matches/{id}"), gone)

    def test_the_matches_of_an_offer_come_in_pages_without_loss_or_repeat(self):
        # An offer matched by many needs: every one of its open matches can
        # be read, page after page (the list used to stop at `limit`, 200 at
        # most, without saying more were there).
        self.st.emit([tm.need("n-more%d" % i, ("s-caen", "s-ifs", "s-herouville")[i % 3],
                              (CAEN, IFS, HEROUVILLE)[i % 3], title="Local %d" % i) for i in range(7)])
        self.st.settle()
        whole = self.ok("/v1/offers/o-herouville/matches", limit=200)
        self.assertIsNone(whole["nextCursor"])
        everything = [m["needId"] for m in whole["items"]]
        self.assertGreaterEqual(len(everything), 6)
        self.assertEqual(len(everything), self.ok("/v1/offers/o-herouville")["openMatches"])

        def pages(limit):
            return follow(self, lambda c: self.ok("/v1/offers/o-herouville/matches", limit=limit,
                                                  **({"cursor": c} if c else {})), limit)
        for limit in (1, 2, 4):
            items, count = pages(limit)
            self.assertEqual([m["needId"] for m in items], everything, limit)
            self.assertEqual(count, (len(everything) + limit - 1) // limit, limit)  # no empty last page
        # Equal scores: ordered by id, still once each.
        for nid in everything:
            self.st.redis.call("ZADD", "mg:om:o-herouville", "XX", "0.5", nid)
        items, _ = pages(1)
        self.assertEqual([m["needId"] for m in items], sorted(everything, reverse=True))
        # A match retired between two pages does not shift the next one.
        first = self.ok("/v1/offers/o-herouville/matches", limit=3)
        shown = [m["needId"] for m in first["items"]]
        self.st.emit([tm.need_closed(shown[0], self.ok("/v1/needs/" + shown[0])["structureId"])])
        self.st.settle()
        rest, _ = follow(self, lambda c: self.ok("/v1/offers/o-herouville/matches", limit=3,
                                                 cursor=c or first["nextCursor"]), 3)
        self.assertEqual(shown + [m["needId"] for m in rest], sorted(everything, reverse=True))
        doc = openapi()
        check_schema(doc, response_schema(doc, "/v1/offers/{id}/matches"), first)
        for bad in ("x", "0.5", "0.5:", ":n-caen", "nan:n-caen", "inf:n-caen", " 0.5:n-caen", "0x1p-1:n-caen",
                    "0.5:bad id", "1" * 40 + ":n-caen"):
            status, body, _ = self.st.http.get("/v1/needs/n-caen/matches", self.claire, cursor=bad)
            self.assertEqual((status, body["error"].get("field")), (400, "cursor"), bad)

    def test_damaged_cooperation_records_get_a_clear_answer(self):
        r = self.st.redis
        good = r.call("HGET", "mg:coop:p-caen", "pb")
        # A pb that is not a CooperationProposed: 500, said, and logged.
        r.call("HSET", "mg:coop:p-garbage", "seq", "7", "pb", b"\xff\xff\xff")
        status, body, _ = self.st.http.get("/v1/cooperations/p-garbage", self.claire)
        self.assertEqual((status, body["error"]["code"]), (500, "internal"), body)
        self.assertIn("mg:coop:p-garbage", self.st.gateway.log())
        # An answer without its proposal, or no key at all: 404.
        r.call("HSET", "mg:coop:p-answer-only", "ans:s-caen", "1")
        for pid in ("p-answer-only", "p-missing"):
            status, body, _ = self.st.http.get("/v1/cooperations/" + pid, self.claire)
            self.assertEqual((status, body["error"]["code"]), (404, "not_found"), pid)
        # Answers that are no CooperationAnswer number read as unspecified;
        # fields that name no structure are left out; a bad seq is not shown.
        r.call("HSET", "mg:coop:p-odd", "pb", good, "seq", "12x", "ans:s-ifs", "99", "ans:s-rouen", "x",
               "ans:s-lisieux", "-1", "ans:s-rouen2", "2", "ans:bad id", "1", "ans:", "1", "other", "1")
        c = self.ok("/v1/cooperations/p-odd")
        self.assertEqual([(a["structureId"], a["answer"]) for a in c["answers"]],
                         [("s-ifs", "COOPERATION_ANSWER_UNSPECIFIED"), ("s-lisieux", "COOPERATION_ANSWER_UNSPECIFIED"),
                          ("s-rouen", "COOPERATION_ANSWER_UNSPECIFIED"), ("s-rouen2", "COOPERATION_ANSWER_DECLINED")])
        self.assertEqual(c["answers"][0]["answerLabel"], "réponse non précisée")
        self.assertNotIn("sequence", c)
        doc = openapi()
        check_schema(doc, response_schema(doc, "/v1/cooperations/{id}"), c)
        # Nothing else was hurt: the gateway answers as before.
        self.assertEqual(self.ok("/v1/cooperations/p-caen")["answers"][0]["structureId"], "s-herouville")

    def test_a_retired_match_is_not_new_in_the_inbox(self):
        # "À traiter" on the staff page (status=new) listed retired matches,
        # which have no feedback to give.
        def statuses():
            return {i["needId"]: (i["status"], i["retired"])
                    for i in self.ok("/v1/staff/me/inbox", kind="match", limit=200)["items"]}
        self.assertEqual(statuses(), {"n-caen": ("new", False), "n-ifs": ("new", False)})
        self.st.emit([tm.need_closed("n-caen", "s-caen")])
        self.st.settle()
        h.wait_until(lambda: statuses()["n-caen"] == ("new", True), 10, what="the match retired")
        self.assertEqual([i["needId"] for i in self.ok("/v1/staff/me/inbox", status="new")["items"]], ["n-ifs"])

    def test_closed_need_and_a_trimmed_journal(self):
        self.st.emit([tm.need_closed("n-caen", "s-caen")])
        self.st.settle()
        n = self.ok("/v1/needs/n-caen")
        # A tombstone: the notifier's hash says what it was.
        self.assertEqual((n["open"], n["title"], n["structureId"], n["category"], n["commune"], n["complete"]),
                         (False, "Cuisine partagée et stockage", "s-caen", "locaux", CAEN, False))
        self.assertEqual(n["structureName"], "Structure s-caen")
        self.assertNotIn("description", n)
        s = self.ok("/v1/structures/s-caen")  # no open item left
        self.assertEqual((s["openNeeds"], s["openOffers"]), ([], []))
        self.assertNotIn("n-caen", [i["id"] for i in self.ok("/v1/needs")["items"]])
        h.wait_until(lambda: self.ok("/v1/figures")["totals"]["openNeeds"] == 3, 10, what="openNeeds 3")
        # The journal trimmed past n-ifs: its title still comes (notifier),
        # what only the journal knew does not, and the answer says so.
        head = int(self.st.redis.call("GET", "mg:journal:seq"))
        self.st.redis.call("XTRIM", "mg:journal", "MINID", "%d-0" % head)
        n = self.ok("/v1/needs/n-ifs")
        self.assertEqual((n["open"], n["title"], n["complete"], n["commune"]), (True, "Local de stockage à Ifs", False, IFS))
        self.assertEqual(n["radiusKm"], 30)  # kept by the record's matching view
        self.assertNotIn("tags", n)

    def test_collective_needs(self):
        # Three structures of CU Caen la Mer need training: a collective need.
        self.st.emit([tm.need("n-f1", "s-caen", CAEN, category="formation", tags=("gestion",), title="Formation gestion"),
                      tm.need("n-f2", "s-ifs", IFS, category="formation", tags=("gestion",), title="Formation paie"),
                      tm.need("n-f3", "s-herouville", HEROUVILLE, category="formation", tags=("gestion",),
                              title="Formation RH")])
        self.st.settle()
        items = self.ok("/v1/collective-needs")["items"]
        self.assertEqual(len(items), 1, items)
        c = items[0]
        self.assertEqual((c["category"], c["categoryLabel"], c["territory"], c["department"], c["structures"]),
                         ("formation", "Formation", "epci:200065597", "14", 3))
        self.assertEqual(sorted(c["needIds"]), ["n-f1", "n-f2", "n-f3"])
        self.assertEqual(sorted(c["structureIds"]), ["s-caen", "s-herouville", "s-ifs"])
        self.assertEqual(c["structureNames"], {"s-caen": "Structure s-caen", "s-herouville": "Structure s-herouville",
                                               "s-ifs": "Structure s-ifs"})
        self.assertEqual((c["revision"], c["id"]), (1, "cn.formation.200065597"))
        # Its needs as staff read them: title, structure, open.
        self.assertEqual(sorted((n["id"], n["title"], n["structureId"], n["open"]) for n in c["needs"]),
                         [("n-f1", "Formation gestion", "s-caen", True), ("n-f2", "Formation paie", "s-ifs", True),
                          ("n-f3", "Formation RH", "s-herouville", True)])
        self.assertEqual([n["id"] for n in c["needs"]], c["needIds"])
        self.assertTrue(c["explanation"])
        self.assertRegex(c["updatedAt"], r"Z$")
        self.assertEqual(len(self.ok("/v1/collective-needs", category="formation", department="14")["items"]), 1)
        self.assertEqual(self.ok("/v1/collective-needs", category="locaux")["items"], [])
        doc = openapi()
        check_schema(doc, response_schema(doc, "/v1/collective-needs"), self.ok("/v1/collective-needs"))
        self.assertEqual(self.ok("/v1/collective-needs", department="76")["items"], [])
        # Its inbox entry carries the same scope.
        entries = self.ok("/v1/staff/me/inbox", kind="collective_need")["items"]
        self.assertEqual([(e["category"], e["department"]) for e in entries], [("formation", "14")])
        # A need closed since is still listed, and marked so.
        self.st.emit([tm.need_closed("n-f2", "s-ifs")])
        self.st.settle()
        needs = self.ok("/v1/collective-needs")["items"][0]["needs"]
        self.assertEqual(sorted((n["id"], n["open"]) for n in needs), [("n-f1", True), ("n-f2", False), ("n-f3", True)])
        # A structure whose record is damaged is left unnamed, nothing else.
        self.st.redis.call("HSET", "mg:structure:s-ifs", "pb", b"\xff\xff")
        self.assertEqual(sorted(self.ok("/v1/collective-needs")["items"][0]["structureNames"]), ["s-caen", "s-herouville"])

    def test_a_cooperation_is_found_under_every_department_it_concerns(self):
        # Proposed by a structure of the Calvados to one of Seine-Maritime:
        # the notifier sends it (and its answer) to the staff of both
        # departments. Rémi follows the Seine-Maritime: filtering his inbox on
        # it must not hide them (they used to be under the Calvados only).
        self.st.emit([tk.cooperation_proposed("p-rouen", "s-caen", "s-rouen", title="Atelier partagé")])
        self.st.emit([tk.cooperation_answered("p-rouen", "s-rouen")])
        self.st.settle()
        kinds = ["cooperation_answered", "cooperation_proposed"]
        for token in (self.claire, self.remi):
            for department in ("14", "76"):
                found = self.ok("/v1/staff/me/inbox", token, department=department, limit=200)["items"]
                self.assertEqual(sorted(e["kind"] for e in found if "p-rouen" in e.get("item", "")), kinds,
                                 department)
            mine = [e for e in self.ok("/v1/staff/me/inbox", token, limit=200)["items"]
                    if e.get("item", "").startswith(("coop:p-rouen", "coopans:p-rouen"))]
            self.assertEqual(sorted(e["kind"] for e in mine), kinds)
            for e in mine:
                self.assertEqual((e["department"], e.get("otherDepartments")), ("14", ["76"]), e)
            self.assertEqual([e for e in self.ok("/v1/staff/me/inbox", token, department="50")["items"]
                              if "p-rouen" in e.get("item", "")], [])
        doc = openapi()
        check_schema(doc, response_schema(doc, "/v1/staff/{id}/inbox"), self.ok("/v1/staff/me/inbox", self.remi))
        # One department only: no otherDepartments.
        self.assertNotIn("otherDepartments", self.ok("/v1/staff/me/inbox", kind="cooperation_proposed",
                                                     department="14")["items"][-1])

    def test_entries_about_ids_with_a_colon_keep_their_scope(self):
        # Ids may hold ':' ("urscop:42", a network's own namespace). The
        # notifier's item of a member who joined is "member:<sid>:<network>",
        # of an answer "coopans:<proposal>:<sid>:<answer>": the entries used
        # to name a structure "urscop" and proposal "coop", without
        # department, so the Calvados filter hid them.
        self.st.emit([tm.member("urscop:42", CAEN, contact=False)])
        self.st.emit([tk.cooperation_proposed("coop:7", "urscop:42", "s-caen", title="Achats groupés")])
        self.st.emit([tk.cooperation_answered("coop:7", "s-caen")])
        self.st.settle()
        found = [e for e in self.ok("/v1/staff/me/inbox", department="14", limit=200)["items"]
                 if "urscop:42" in e.get("item", "") or "coop:7" in e.get("item", "")]
        self.assertEqual(sorted(e["kind"] for e in found),
                         ["cooperation_answered", "cooperation_proposed", "member_joined"], found)
        joined = [e for e in found if e["kind"] == "member_joined"][0]
        self.assertEqual((joined["structureId"], joined["commune"], joined["department"]), ("urscop:42", CAEN, "14"))
        for e in found:
            if e["kind"] != "member_joined":
                self.assertEqual((e["category"], e["department"]), ("locaux", "14"), e)

    def test_a_collective_need_of_an_epci_across_two_departments_is_in_both(self):
        # The CC du Pays de Honfleur-Beuzeville has communes in the Calvados
        # and the Eure. Three structures of its Eure side need training: a
        # chargé·e de mission of the Eure looking at the Eure's collective
        # needs must find it (it was under the Calvados only, its first commune's).
        self.st.emit([tm.member("s-beuzeville", "27065"), tm.member("s-boulleville", "27100"),
                      tm.member("s-conteville", "27169")])
        self.st.emit([tm.need("n-b%d" % i, sid, com, category="formation", tags=("gestion",), title="Formation %d" % i)
                      for i, (sid, com) in enumerate((("s-beuzeville", "27065"), ("s-boulleville", "27100"),
                                                      ("s-conteville", "27169")))])
        self.st.settle()
        for department in ("27", "14"):
            items = self.ok("/v1/collective-needs", department=department)["items"]
            self.assertEqual([c["territory"] for c in items], ["epci:200066827"], department)
        c = items[0]
        self.assertEqual((c["department"], c["otherDepartments"]), ("14", ["27"]))
        self.assertEqual(self.ok("/v1/collective-needs", department="76")["items"], [])
        doc = openapi()
        check_schema(doc, response_schema(doc, "/v1/collective-needs"), self.ok("/v1/collective-needs"))
        # Its inbox entry too: the notifier sends it to the staff of both
        # departments, and claire's (Calvados) is found under the Eure.
        entries = h.wait_until(lambda: self.ok("/v1/staff/me/inbox", kind="collective_need", department="27")["items"],
                               10, what="the collective need's inbox entry under the Eure")
        self.assertEqual([(e["department"], e["otherDepartments"]) for e in entries], [("14", ["27"])])
        check_schema(doc, response_schema(doc, "/v1/staff/{id}/inbox"), self.ok("/v1/staff/me/inbox"))

    def test_mark_read_and_paging_while_entries_arrive(self):
        first = self.ok("/v1/staff/me/inbox", limit=2)
        seen = [i["id"] for i in first["items"]]
        # New entries arrive between pages: the cursor goes on from where it
        # was, without repeating or skipping the older ones.
        self.st.emit([tm.need("n-new", "s-caen", CAEN, title="Autre cuisine")])
        self.st.settle()
        rest, _ = follow(self, lambda c: self.ok("/v1/staff/me/inbox", limit=2, cursor=c or first["nextCursor"]), 2)
        everything = self.ok("/v1/staff/me/inbox", limit=200)["items"]
        ids = [i["id"] for i in everything]
        self.assertEqual(seen + [i["id"] for i in rest], ids[ids.index(seen[0]):])
        self.assertGreater(ids.index(seen[0]), 0)  # the new one is on top
        nid = seen[0]
        status, _, _ = self.st.http.request("POST", "/v1/staff/me/inbox/%s/read" % nid, self.claire, body={})
        self.assertEqual(status, 204)
        self.assertEqual(self.st.redis.call("HGET", "mg:notif:" + nid, "read"), b"1")
        unread = [i["id"] for i in self.ok("/v1/staff/me/inbox", limit=200, unread="true")["items"]]
        self.assertNotIn(nid, unread)
        self.assertEqual(len(unread), len(ids) - 1)
        self.assertEqual([i["id"] for i in self.ok("/v1/staff/me/inbox", unread="false")["items"]], [nid])
        # Not in this inbox, unknown, or another's: nothing is written.
        remi_nid = self.ok("/v1/staff/me/inbox", self.remi)["items"][0]["id"]
        for path in ("/v1/staff/me/inbox/%s/read" % remi_nid, "/v1/staff/me/inbox/n-nowhere/read"):
            status, body, _ = self.st.http.request("POST", path, self.claire, body={})
            self.assertEqual((status, body["error"]["code"]), (404, "not_found"), path)
        self.assertNotEqual(self.st.redis.call("HGET", "mg:notif:" + remi_nid, "read"), b"1")
        self.assertFalse(self.st.redis.call("EXISTS", "mg:notif:n-nowhere"))
        status, _, _ = self.st.http.request("POST", "/v1/staff/remi/inbox/%s/read" % remi_nid, self.claire, body={})
        self.assertEqual(status, 403)


if __name__ == "__main__":
    unittest.main()
