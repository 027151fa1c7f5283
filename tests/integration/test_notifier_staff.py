"""maillage-notifier's staff records and secrets at start.

- [staff.<id>] sections of the config and `maillage staff` together: a record
  added or edited with the CLI (origin cli) is never overwritten by the
  config at the next start, an id removed with the CLI is not brought back;
  the config's own records (origin config) follow the config, and are
  removed with their section; `maillage staff reset ID` hands a record back.
- the SMTP password file is refused when group or others may read or write
  it: the daemon exits non-zero with one line naming the setting.

Real redis-server, broker and notifier on loopback."""

import os
import re
import subprocess
import time
import unittest

import harness as h
import test_gateway as tg  # the Gateway (as a module: its tests do not run here)
import test_notifier as tn  # the Stack (as a module: its tests do not run here)


class NotifierStaffTest(unittest.TestCase):
    def setUp(self):
        self.ws = h.Workspace("maillage-notifier-staff-")

    def tearDown(self):
        self.ws.close(keep=bool(os.environ.get("KEEP")))

    def staff(self, st, sid):
        f = st.redis.call("HGETALL", "mg:staff:" + sid)
        return {k.decode(): v.decode() for k, v in zip(f[::2], f[1::2])}

    def members(self, st):
        return sorted(x.decode() for x in st.redis.call("SMEMBERS", "mg:staff"))

    def restart_with(self, st, staff):
        """Stop the notifier, rewrite its config's [staff.*] sections, start it."""
        st.notifier.stop()
        sections = dict(st.sections)
        sections["notifier"] = {"staff_url": "https://maillage.example.org/", "default_staff": "accueil",
                                "staff_refresh_ms": 200}
        for sid, keys in staff.items():
            sections["staff." + sid] = keys
        h.write_config(st.conf, sections)
        st.start()  # ready once the staff are loaded, after the config's were written

    def test_cli_edits_survive_a_restart_and_config_records_follow_the_config(self):
        config = {"claire": {"name": "Claire Dupont", "departments": "14"},
                  "remi": {"name": "Rémi Leroy", "departments": "76"},
                  "lea": {"name": "Léa Martin", "departments": "50"},
                  "old": {"name": "Ancien poste", "departments": "61"}}
        st = tn.Stack(self.ws, config)
        st.start()
        self.assertEqual(self.staff(st, "claire")["origin"], "config")
        # edits through the CLI
        out = st.cli("staff", "set", "claire", "departments", "14,50")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(self.staff(st, "claire")["origin"], "cli")
        out = st.cli("staff", "add", "nina", "--name", "Nina Kader", "--departments", "27")
        self.assertEqual(out.returncode, 0, out.stderr)
        out = st.cli("staff", "remove", "lea")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("ne l'ajoutera plus", out.stdout)
        out = st.cli("staff", "show", "claire")
        self.assertRegex(out.stdout, r"\n  origine +maillage staff\n")
        # the config changes too: Rémi moves to the Eure, "old" is gone
        config["remi"]["departments"] = "27"
        del config["old"]
        self.restart_with(st, config)
        # the CLI's edits are kept ...
        self.assertEqual(self.staff(st, "claire")["departments"], "14,50")
        self.assertEqual(self.staff(st, "claire")["origin"], "cli")
        self.assertEqual(self.staff(st, "nina")["name"], "Nina Kader")
        self.assertNotIn("lea", self.members(st))
        self.assertEqual(self.staff(st, "lea"), {})
        # ... the config's records follow the config
        self.assertEqual(self.staff(st, "remi")["departments"], "27")
        self.assertEqual(self.staff(st, "remi")["origin"], "config")
        self.assertNotIn("old", self.members(st))
        self.assertEqual(self.members(st), ["claire", "nina", "remi"])
        self.assertIn("[staff.*] not applied to", st.notifier.log())
        # the notifier routes with the kept edit: a Manche match reaches Claire
        st.emit([tn.need("n1", "s-x", commune=tn.CHERBOURG), tn.offer("o1", "s-y", tn.CHERBOURG)])
        st.emit([tn.match("m-50", "n1", "o1", "s-x", "s-y", department="50")])
        h.wait_until(lambda: st.inbox("claire"), 10, what="claire's Manche match")
        # reset hands Claire and Léa back to the config at the next start
        for sid in ("claire", "lea"):
            out = st.cli("staff", "reset", sid)
            self.assertEqual(out.returncode, 0, out.stderr)
            self.assertIn("Fiche « %s » rendue à la configuration" % sid, out.stdout)
        self.assertNotEqual(st.cli("staff", "reset", "personne").returncode, 0)
        self.restart_with(st, config)
        self.assertEqual(self.staff(st, "claire")["departments"], "14")
        self.assertEqual(self.staff(st, "claire")["origin"], "config")
        self.assertEqual(self.staff(st, "lea")["departments"], "50")
        self.assertEqual(self.members(st), ["claire", "lea", "nina", "remi"])

    def test_a_staff_member_dropped_from_the_config_loses_their_tokens_at_once(self):
        # The notifier removed "old" from mg:staff but left their tokens: a
        # gateway that had the token in its cache (token_cache_s) kept
        # answering them, and kept their live stream open, until it expired.
        config = {"claire": {"name": "Claire Dupont"}, "old": {"name": "Ancien poste"}}
        st = tn.Stack(self.ws, config)
        st.start()
        gw = tg.Gateway(self.ws, st.sections, token_cache_s=3600)
        claire, old = gw.token("--staff", "claire"), gw.token("--staff", "old")
        for token in (claire, old):
            self.assertEqual(gw.request("GET", "/v1/me", token=token).status, 200)  # now cached
        del config["old"]
        self.restart_with(st, config)
        self.assertNotIn("old", self.members(st))
        h.wait_until(lambda: gw.request("GET", "/v1/me", token=old).status == 401, timeout=5, what="old refused")
        self.assertEqual(gw.request("GET", "/v1/me", token=claire).status, 200)
        self.assertEqual(st.redis.call("HLEN", "mg:tokens"), 1)  # claire's is left

    def test_show_says_every_field_in_french_in_a_fixed_order(self):
        webhook = "https://chat.cress-normandie.example.org/hooks/" + "0123456789abcdef" * 4  # > 64 bytes
        st = tn.Stack(self.ws, {"claire": {"name": "Claire Dupont", "email": "claire@cress-normandie.example.org",
                                           "webhook": webhook, "departments": "14,50",
                                           "categories": "locaux,logistique", "min_score": 0.4,
                                           "channels": "inbox,email", "mode": "digest", "digest_hour": 7},
                                "remi": {"name": "Rémi Leroy"}})
        st.start()
        for key, value in (("quiet_start", "22"), ("quiet_end", "7")):
            self.assertEqual(st.cli("staff", "set", "claire", key, value).returncode, 0)
        st.redis.call("HSET", "mg:staff:claire", "note", "équipe Calvados", "ancien_id", "c-114")  # unknown fields
        # Entries of now: the notifier trims those older than retention_days
        # (positions 1 to 3, in 1970, went at its next staff read, or not).
        now = int(time.time() * 1000)
        st.redis.call("ZADD", "mg:inbox:claire", now + 1, "n-1", now + 2, "n-2", now + 3, "n-3")
        st.redis.call("ZADD", "mg:inbox:remi", now + 1, "n-4")

        def row(label, value):
            return "  " + label.ljust(42) + "  " + value

        out = st.cli("staff", "show", "claire")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(out.stdout.splitlines(), [
            "claire",
            row("nom (name)", "Claire Dupont"),
            row("e-mail (email)", "claire@cress-normandie.example.org"),
            row("webhook (webhook)", webhook),
            row("départements (departments)", "Calvados (14), Manche (50)"),
            row("catégories (categories)", "Locaux [locaux], Logistique (transport, stockage) [logistique]"),
            row("réseaux (networks)", "tous"),
            row("seuil de score (min_score)", "40 %"),
            row("canaux (channels)", "boîte de réception, e-mail"),
            row("mode (mode, digest_hour)", "récapitulatif à 7 h"),
            row("heures de silence (quiet_start, quiet_end)", "de 22 h à 7 h"),
            row("origine", "maillage staff"),
            row("ancien_id", "c-114"),
            row("note", "équipe Calvados"),
            row("boîte de réception", "3 notifications"),
        ])
        out = st.cli("staff", "show", "remi")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(out.stdout.splitlines(), [
            "remi",
            row("nom (name)", "Rémi Leroy"),
            row("e-mail (email)", "non renseigné"),
            row("webhook (webhook)", "non renseigné"),
            row("départements (departments)", "tous"),
            row("catégories (categories)", "toutes"),
            row("réseaux (networks)", "tous"),
            row("seuil de score (min_score)", "0 %"),
            row("canaux (channels)", "boîte de réception"),
            row("mode (mode, digest_hour)", "immédiat"),
            row("heures de silence (quiet_start, quiet_end)", "aucune"),
            row("origine", "configuration"),
            row("boîte de réception", "1 notification"),
        ])

    def test_list_sizes_its_columns_to_their_content_and_shows_the_threshold(self):
        st = tn.Stack(self.ws, {"claire": {"name": "Claire Dupont", "departments": "14,50",
                                           "categories": "locaux,emploi_partage", "min_score": 0.4,
                                           "channels": "inbox,email", "email": "claire@cress-normandie.example.org",
                                           "mode": "digest", "digest_hour": 7},
                                "remi": {"name": "Rémi Leroy"}})
        st.start()
        out = st.cli("staff", "add", "marie", "--name", "Marie-Dominique de La Tour d'Auvergne",
                     "--departments", "27,76", "--min-score", "0.65", "--channels", "inbox,webhook",
                     "--webhook", "https://chat.example.org/hooks/marie")
        self.assertEqual(out.returncode, 0, out.stderr)
        out = st.cli("staff", "list")
        self.assertEqual(out.returncode, 0, out.stderr)
        # Categories stay codes here, as `staff set` takes them: their labels
        # (up to 36 characters, some with commas) are in `staff show`.
        row = "{:<6}  {:<37}  {:<12}  {:<22}  {:<5}  {:<27}  {}".format
        self.assertEqual(out.stdout.splitlines(), [
            row("id", "nom", "départements", "catégories", "seuil", "canaux", "mode"),
            row("claire", "Claire Dupont", "14, 50", "locaux, emploi_partage", "40 %", "boîte de réception, e-mail",
                "récapitulatif à 7 h"),
            row("marie", "Marie-Dominique de La Tour d'Auvergne", "27, 76", "toutes", "65 %",
                "boîte de réception, webhook", "immédiat"),
            row("remi", "Rémi Leroy", "tous", "toutes", "0 %", "boîte de réception", "immédiat"),
        ])

    def test_inbox_cli_finds_unread_entries_beyond_the_newest_and_marks_no_expired_one(self):
        st = tn.Stack(self.ws, {"claire": {"name": "Claire Dupont"}})
        st.start()
        now = int(time.time() * 1000)
        for i in range(120):  # the 5 oldest unread, beyond the default 50 and a page of 100
            nid = "n-%03d" % i
            st.redis.call("ZADD", "mg:inbox:claire", now + i, nid)
            st.redis.call("HSET", "mg:notif:" + nid, "kind", "match", "title", "Mise en relation %d" % i,
                          "created_at", now + i, "read", "0" if i < 5 else "1", "link", "#match/m-%d" % i)
        out = st.cli("inbox", "claire", "--unread")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(re.findall(r"^(n-\d+) ", out.stdout, re.M), ["n-004", "n-003", "n-002", "n-001", "n-000"])
        self.assertIn("Boîte de réception « claire » : 120 notifications\n", out.stdout)  # all of them...
        self.assertIn("\n(5 non lues affichées)\n", out.stdout)  # ... and what --unread found
        self.assertEqual(len(re.findall(r"^n-\d+ ", st.cli("inbox", "claire", "-n", "7").stdout, re.M)), 7)
        # An entry whose record has expired is not marked: no stray record.
        st.redis.call("DEL", "mg:notif:n-000")
        out = st.cli("inbox", "claire", "--mark-read", "n-000")
        self.assertNotEqual(out.returncode, 0)
        self.assertIn("(ou elle a expiré)", out.stderr)
        self.assertEqual(st.redis.call("EXISTS", "mg:notif:n-000"), 0)
        self.assertEqual(st.cli("inbox", "claire", "--mark-read", "n-001").returncode, 0)
        self.assertEqual(st.redis.call("HGET", "mg:notif:n-001", "read"), b"1")

    def test_staff_and_inbox_errors_are_in_french(self):
        st = tn.Stack(self.ws, {"claire": {"name": "Claire Dupont"}})
        st.start()
        cases = [
            (("staff", "show", "personne"),
             "maillage staff: chargé·e de mission inconnu·e : « personne » (voir « maillage staff list »)"),
            (("staff", "set", "personne", "name", "X"),
             "maillage staff: chargé·e de mission inconnu·e : « personne » "
             "(l'ajouter d'abord : « maillage staff add personne --name … »)"),
            (("staff", "remove", "personne"), "maillage staff: chargé·e de mission inconnu·e : « personne »"),
            (("staff", "reset", "personne"), "maillage staff: chargé·e de mission inconnu·e : « personne »"),
            (("staff", "set", "claire", "colour", "red"),
             "maillage staff: clé inconnue « colour » (name, email, webhook, departments, categories, networks, "
             "min_score, channels, mode, digest_hour, quiet_start, quiet_end)"),
            (("staff", "set", "claire", "mode", "sometimes"),
             "maillage staff: mode : « immediate » ou « digest » attendu, pas « sometimes »"),
            (("staff", "set", "claire", "min_score", "40"),
             "maillage staff: min_score : un nombre de 0 à 1 est attendu, pas « 40 »"),
            (("staff", "set", "claire", "digest_hour", "25"),
             "maillage staff: digest_hour : un nombre entier de 0 à 23 est attendu, pas « 25 »"),
            (("staff", "set", "claire", "channels", "inbox,sms"),
             "maillage staff: channels : canal inconnu « sms » (inbox, email, webhook)"),
            (("staff", "set", "claire", "email", "claire@cress.example, remi@cress.example"),
             "maillage staff: email : « claire@cress.example, remi@cress.example » n'est pas une adresse "
             "électronique (une seule, par exemple claire.dupont@cress-normandie.org)"),
            (("staff", "set", "claire", "webhook", "chat.cress.example/hooks/x"),
             "maillage staff: webhook : « chat.cress.example/hooks/x » n'est pas une adresse http:// ou https://"),
            (("staff", "set", "claire", "name", "Claire\nDupont"),
             "maillage staff: name : la valeur doit tenir sur une seule ligne"),
            (("staff", "add", "nina"), "maillage staff: add : --name est obligatoire"),
            (("staff", "show", "a b"),
             "maillage staff: « a b » n'est pas un identifiant valide (de 1 à 64 lettres, chiffres ou « . _ : - »)"),
            (("staff", "frobnicate"),
             "maillage staff: attendu : list, show ID, add ID --name NOM, set ID CLÉ VALEUR, remove ID ou reset ID "
             "(voir « maillage staff --help »)"),
            (("inbox", "claire", "--mark-read", "n-nope"),
             "maillage inbox: pas de notification « n-nope » dans la boîte de réception « claire » (ou elle a expiré)"),
            (("inbox", "claire", "--mark-read", "n/1"),
             "maillage inbox: « n/1 » n'est pas un identifiant valide (de 1 à 64 lettres, chiffres ou « . _ : - »)"),
        ]
        # 2, a usage error: what the command line says is refused before
        # anything is done (a value, an id, an action); 1: the operation
        # failed (someone unknown, a notification not there).
        usage = {("staff", "set", "claire"), ("staff", "add", "nina"), ("staff", "show", "a b"),
                 ("staff", "frobnicate"), ("inbox", "claire", "--mark-read", "n/1")}
        for args, line in cases:
            out = st.cli(*args)
            self.assertEqual(out.returncode, 2 if args[:3] in usage or args in usage else 1, args)
            self.assertEqual(out.stderr, line + "\n", args)
        # Redis's own words after a French prefix
        st.redis.call("SET", "mg:inbox:bob", "not a sorted set")
        out = st.cli("inbox", "bob")
        self.assertEqual(out.stderr, "maillage inbox: erreur Redis : WRONGTYPE Operation against a key holding the "
                                     "wrong kind of value\n")

    def test_staff_help_states_the_rule(self):
        r = h.run_program("maillage", ["staff", "--help"])
        self.assertEqual(r.returncode, 0)
        out = r.stdout.decode()
        self.assertIn("reset ID", out)
        self.assertIn("prend l'origine cli", out)
        self.assertIn("survit aux redémarrages", out)

    def test_smtp_password_file_open_to_group_or_others_is_refused(self):
        st = tn.Stack(self.ws, {"claire": {"name": "Claire"}})
        secret = h.write_secret(self.ws.path("smtp.password"), "s3cret-smtp")
        for mode in (0o640, 0o620, 0o604, 0o602):
            os.chmod(secret, mode)
            conf = self.ws.path("smtp-%o.conf" % mode)
            sections = dict(st.sections)
            sections["notifier"] = {"smtp_user": "maillage", "smtp_password_file": secret}
            h.write_config(conf, sections)
            d = self.ws.own(h.Daemon(self.ws.dir, "maillage-notifier", conf))
            d.start()
            try:
                rc = d.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.fail("started with a password file of mode %o" % mode)
            log = d.log()
            d.stop()
            self.assertNotEqual(rc, 0, oct(mode))
            lines = [line for line in log.splitlines() if "smtp_password_file" in line]
            self.assertEqual(len(lines), 1, log)
            self.assertIn("Error: [notifier] smtp_password_file %s is accessible by group or others (mode %o)"
                          % (secret, mode), lines[0])
            self.assertNotIn("s3cret-smtp", log)
        # owner-only: accepted
        os.chmod(secret, 0o600)
        d = self.ws.own(h.Daemon(self.ws.dir, "maillage-notifier", conf))
        d.start(ready="staff member(s)")
        self.assertIsNone(d.proc.poll())


if __name__ == "__main__":
    unittest.main()
