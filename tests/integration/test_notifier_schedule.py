"""maillage-notifier and time, with the test clock (MAILLAGE_CLOCK_FILE):
a daily digest whose hour passed while the notifier was stopped is sent when
it comes back that day, and never twice; a retry that would land inside the
recipient's quiet hours is held until they end, and nothing immediate is
sent inside them.

Real redis-server, broker, notifier, SMTP server (aiosmtpd) and HTTP
receiver on loopback."""

import calendar
import os
import time
import unittest

import harness as h
import test_notifier as tn  # the Stack, receivers and event builders (as a module: its tests do not run here)
import test_notifier_kinds as tnk  # (likewise: its collective need builder)

HOUR_MS = 3600 * 1000


def paris_offset_s(t):
    """Europe/Paris offset from UTC at Unix time t (the notifier's EU rule)."""
    year = time.gmtime(t).tm_year

    def last_sunday_1utc(month):
        last = 31
        while time.gmtime(calendar.timegm((year, month, last, 1, 0, 0))).tm_wday != 6:
            last -= 1
        return calendar.timegm((year, month, last, 1, 0, 0))
    return 7200 if last_sunday_1utc(3) <= t < last_sunday_1utc(10) else 3600


def clock_at(hour, minute, second, days=1):
    """(offset in ms for MAILLAGE_CLOCK_FILE, that Unix time in ms): the
    notifier's clock at hour:minute:second, Paris time, `days` days from today."""
    now = time.time()
    local = now + paris_offset_s(now)
    day = int(local // 86400) + days
    target_local = day * 86400 + hour * 3600 + minute * 60 + second
    target = target_local - paris_offset_s(target_local - 7200)
    return int((target - now) * 1000), int(target * 1000)


def wait_for_the_days_digest_slot(st, *staff_channels):
    """Until the notifier, started past the members' digest_hour, has taken
    the day's digest slot of each "<staff>:<channel>" (it does at its first
    digest call, nothing pending): what arrives after it waits for the next
    day's. Emitting before that call, as a loaded machine may let a test
    do, puts the items in the day's digest at once."""
    h.wait_until(lambda: all(st.redis.call("EXISTS", "mg:digest:last:" + sc) for sc in staff_channels), 10,
                 what="the day's digest slot of " + ", ".join(staff_channels))


def one_match_waiting_for_the_email_digest(st, staff):
    """Start `st`; a match m-a (need n1, offer o1) then waits in
    mg:digest:<staff>:email."""
    st.start()
    st.emit([tn.need("n1", "s-caen"), tn.offer("o1", "s-rouen", tn.ROUEN)])
    st.emit([tn.match("m-a", "n1", "o1", "s-caen", "s-rouen", score=0.9)])
    st.settle()
    h.wait_until(lambda: st.redis.call("ZCARD", "mg:digest:%s:email" % staff) == 1, 10, what="the pending item")


class NotifierScheduleTest(unittest.TestCase):
    def setUp(self):
        self.ws = h.Workspace("maillage-notifier-schedule-")

    def tearDown(self):
        self.ws.close(keep=bool(os.environ.get("KEEP")))

    def test_digest_missed_while_stopped_is_sent_when_back_that_day_never_twice(self):
        smtp = self.ws.own(tn.SmtpReceiver())
        off_0830, _ = clock_at(8, 30, 0)
        st = tn.Stack(self.ws, {"dora": {"name": "Dora", "channels": "inbox,email", "mode": "digest",
                                         "digest_hour": 10, "email": "dora@cress-normandie.example"}},
                      clock_offset_ms=off_0830, default_staff="dora", smtp_url=smtp.url)
        st.start()
        st.emit([tn.need("n1", "s-caen"), tn.offer("o1", "s-rouen", tn.ROUEN)])
        st.emit([tn.match("m-a", "n1", "o1", "s-caen", "s-rouen", score=0.55),
                 tn.match("m-b", "n1", "o1", "s-caen", "s-rouen", score=0.91)])
        st.settle()
        time.sleep(1.0)
        self.assertEqual(smtp.messages, [])  # 8:30: held for the 10:00 digest
        # the notifier stops before 10:00; one more match arrives meanwhile
        st.notifier.stop()
        st.emit([tn.match("m-c", "n1", "o1", "s-caen", "s-rouen", score=0.73)])
        # it comes back at 12:10 the same day: the day's digest goes at once,
        # with what arrived while it was down
        st.set_clock(off_0830 + 3 * HOUR_MS + 40 * 60 * 1000)
        st.start()
        h.wait_until(lambda: smtp.messages, 10, what="the missed digest")
        time.sleep(1.0)
        self.assertEqual(len(smtp.messages), 1)
        rcpt, msg = smtp.parsed()[0]
        self.assertEqual(rcpt, ["dora@cress-normandie.example"])
        self.assertEqual(str(msg["X-Maillage-Kind"]), "digest")
        text = msg.get_body(("plain",)).get_content()
        self.assertIn("(3 opportunités)", text)
        self.assertLess(text.index("91 %"), text.index("73 %"))
        self.assertLess(text.index("73 %"), text.index("55 %"))
        h.wait_until(lambda: st.pending() == 0, 5, what="the digest recorded")
        # never twice that day: not after another restart, not for a later item
        st.notifier.stop()
        st.start()
        st.emit([tn.match("m-d", "n1", "o1", "s-caen", "s-rouen", score=0.6)])
        st.settle()
        time.sleep(1.5)
        self.assertEqual(len(smtp.messages), 1)
        self.assertEqual(st.redis.call("ZCARD", "mg:digest:dora:email"), 1)  # m-d waits for tomorrow
        # the next day at 10:05: the next digest, with m-d
        st.set_clock(off_0830 + 25 * HOUR_MS + 35 * 60 * 1000)
        h.wait_until(lambda: len(smtp.messages) == 2, 10, what="the next day's digest")
        self.assertIn("(1 opportunité)", smtp.parsed()[1][1].get_body(("plain",)).get_content())
        # a day with nothing pending at the hour is done: what arrives later
        # that day waits for the next digest instead of making one at once
        st.set_clock(off_0830 + 49 * HOUR_MS + 35 * 60 * 1000)  # the day after, 10:05
        time.sleep(1.0)
        st.emit([tn.match("m-e", "n1", "o1", "s-caen", "s-rouen", score=0.6)])
        st.settle()
        time.sleep(1.5)
        self.assertEqual(len(smtp.messages), 2)

    def test_retry_inside_quiet_hours_is_held_until_they_end(self):
        q_hook = self.ws.own(tn.WebhookReceiver(plan=["500"]))
        g_hook = self.ws.own(tn.WebhookReceiver(plan=["500"]))
        off, t0 = clock_at(21, 59, 30)
        quiet_end = clock_at(7, 0, 0, days=2)[1]  # the next morning (a clock change may fall between)
        # The first attempts go at 21:59:30 and fail (HTTP 500); the retry
        # (60 s +-25 % later) would fall after 22:00.
        st = tn.Stack(self.ws, {
            "q": {"name": "Quentin", "channels": "webhook", "webhook": q_hook.url, "quiet_start": 22, "quiet_end": 7},
            "g": {"name": "Gaëlle", "channels": "webhook", "webhook": g_hook.url},
        }, clock_offset_ms=off, default_staff="q", retry_base_ms=60000, retry_max_ms=120000)
        st.start()

        def queued_until(notification):
            """Its due time in the send queue (ms), None when not queued."""
            due = st.redis.call("ZSCORE", "mg:notifier:queue", notification)
            return None if due is None else int(due)
        st.emit([tn.need("n1", "s-caen"), tn.offer("o1", "s-rouen", tn.ROUEN)])
        st.emit([tn.match("m-q", "n1", "o1", "s-caen", "s-rouen")])
        nid = {}
        for staff in ("q", "g"):
            nid[staff] = h.wait_until(
                lambda s=staff: next((k.decode()[len("mg:notif:"):] for k in st.redis.call("KEYS", "mg:notif:*")
                                      if st.redis.call("HGET", k, "staff") == s.encode()), None), 10)
        for staff in ("q", "g"):
            h.wait_until(lambda s=staff: st.record(nid[s]).get("last_error"), 10, what="the first attempt of " + staff)
        self.assertEqual([r[0] for r in q_hook.requests], ["500"])
        # Quentin's retry waits for the end of his quiet hours; Gaëlle, who has
        # none, retries about a minute later
        self.assertEqual(queued_until(nid["q"]), quiet_end)
        self.assertLess(queued_until(nid["g"]), t0 + 120 * 1000)
        # Gaëlle now sets quiet hours; her retry comes due inside them: held,
        # not sent, and the attempt not counted
        st.staff_set("g", "quiet_start", "21")
        st.staff_set("g", "quiet_end", "7")
        st.set_clock(off + 3 * 60 * 1000)  # 22:02:30
        h.wait_until(lambda: queued_until(nid["g"]) in (quiet_end, None), 10, what="Gaëlle's retry held")
        self.assertEqual(queued_until(nid["g"]), quiet_end)
        time.sleep(0.5)
        self.assertEqual([r[0] for r in g_hook.requests], ["500"])
        self.assertEqual(st.record(nid["g"])["attempts"], "1")
        self.assertEqual([r[0] for r in q_hook.requests], ["500"])
        # 07:00:30: both delivered, once
        st.set_clock(off + quiet_end - t0 + 30 * 1000)
        for hook in (q_hook, g_hook):
            h.wait_until(lambda hk=hook: hk.delivered(), 10, what="the retry after the quiet hours")
        time.sleep(0.5)
        for staff, hook in (("q", q_hook), ("g", g_hook)):
            self.assertEqual([r[0] for r in hook.requests], ["500", "200"], staff)
            h.wait_until(lambda s=staff: st.record(nid[s]).get("state") == "delivered", 10, what="delivered: " + staff)


    def test_shortened_quiet_hours_release_what_they_held(self):
        # Quentin's retry waits for 07:00, the end of his quiet hours (22 h to
        # 7 h). He moves their end to 5 h: it went on waiting for 07:00. Then
        # he removes them: it goes at once.
        hook = self.ws.own(tn.WebhookReceiver(plan=["500"]))
        off, t0 = clock_at(21, 59, 30)
        quiet_end, earlier_end = clock_at(7, 0, 0, days=2)[1], clock_at(5, 0, 0, days=2)[1]
        st = tn.Stack(self.ws, {
            "q": {"name": "Quentin", "channels": "webhook", "webhook": hook.url, "quiet_start": 22, "quiet_end": 7},
        }, clock_offset_ms=off, default_staff="q", retry_base_ms=60000, retry_max_ms=120000)
        st.start()
        st.emit([tn.need("n1", "s-caen"), tn.offer("o1", "s-rouen", tn.ROUEN)])
        st.emit([tn.match("m-q", "n1", "o1", "s-caen", "s-rouen")])
        nid = h.wait_until(lambda: next((k.decode()[len("mg:notif:"):] for k in st.redis.call("KEYS", "mg:notif:*")
                                         if st.redis.call("HGET", k, "staff") == b"q"), None), 10)
        h.wait_until(lambda: st.record(nid).get("last_error"), 10, what="the first attempt")

        def queued_until():
            due = st.redis.call("ZSCORE", "mg:notifier:queue", nid)
            return None if due is None else int(due)
        self.assertEqual(queued_until(), quiet_end)
        st.set_clock(off + 3 * 60 * 1000)  # 22:02:30: quiet under the old hours and the new
        st.staff_set("q", "quiet_end", "5")
        h.wait_until(lambda: queued_until() == earlier_end, 10, what="the retry due at 05:00")
        self.assertEqual([r[0] for r in hook.requests], ["500"])
        st.staff_set("q", "quiet_end", "22")  # none
        h.wait_until(lambda: hook.delivered(), 10, what="the retry once the quiet hours are gone")
        self.assertEqual([r[0] for r in hook.requests], ["500", "200"])

    def test_what_waited_for_the_digest_keeps_the_quiet_hours_when_the_member_leaves_digest_mode(self):
        # At 23:00, inside her quiet hours (22 h to 7 h), Dora leaves digest
        # mode with two matches waiting for her 10 h digest: they go in a
        # digest of their own, which is sent "at once" like an immediate
        # message, so at 07:00, not in the night. (It used to go at 23:00.)
        hook = self.ws.own(tn.WebhookReceiver())
        off, t0 = clock_at(23, 0, 0)
        quiet_end = clock_at(7, 0, 0, days=2)[1]  # the next morning
        st = tn.Stack(self.ws, {"d": {"name": "Dora", "channels": "inbox,webhook", "webhook": hook.url,
                                      "mode": "digest", "digest_hour": 10, "quiet_start": 22, "quiet_end": 7}},
                      clock_offset_ms=off, default_staff="d")
        st.start()
        wait_for_the_days_digest_slot(st, "d:webhook")
        st.emit([tn.need("n1", "s-caen"), tn.offer("o1", "s-rouen", tn.ROUEN)])
        st.emit([tn.match("m-a", "n1", "o1", "s-caen", "s-rouen", score=0.71),
                 tn.match("m-b", "n1", "o1", "s-caen", "s-rouen", score=0.52)])
        st.settle()
        h.wait_until(lambda: st.redis.call("ZCARD", "mg:digest:d:webhook") == 2, 10, what="the items held for the digest")
        out = st.cli("staff", "set", "d", "mode", "immediate")
        self.assertEqual(out.returncode, 0, out.stderr)
        h.wait_until(lambda: st.redis.call("EXISTS", "mg:digest:d:webhook") == 0, 10, what="the flushed digest")
        queued = st.redis.call("ZRANGE", "mg:notifier:queue", 0, -1, "WITHSCORES")
        self.assertEqual(len(queued), 2, queued)
        self.assertEqual(st.record(queued[0].decode())["kind"], "digest")
        self.assertEqual(int(queued[1]), quiet_end)
        time.sleep(1.0)
        self.assertEqual(hook.requests, [])
        # 07:00:30: it goes, once
        st.set_clock(off + quiet_end - t0 + 30 * 1000)
        h.wait_until(lambda: hook.delivered(), 10, what="the digest after the quiet hours")
        time.sleep(0.5)
        self.assertEqual(len(hook.requests), 1)
        text = hook.delivered()[0]["text"]
        self.assertIn("(2 opportunités)", text)
        self.assertIn("au fil de l'eau", text)

    def dora_waiting_for_her_email_digest(self):
        """Dora, in digest mode by e-mail at 10 h (a webhook too, off), at
        8:30 with a match m-a waiting for her e-mail digest: the stack, its
        webhook and SMTP receivers, the clock offset."""
        hook = self.ws.own(tn.WebhookReceiver())
        smtp = self.ws.own(tn.SmtpReceiver())
        off, _ = clock_at(8, 30, 0)
        st = tn.Stack(self.ws, {"dora": {"name": "Dora", "channels": "inbox,email", "mode": "digest",
                                         "digest_hour": 10, "email": "dora@cress.example", "webhook": hook.url}},
                      clock_offset_ms=off, default_staff="dora", smtp_url=smtp.url)
        one_match_waiting_for_the_email_digest(st, "dora")
        return st, hook, smtp, off

    def test_what_waited_for_a_channels_digest_goes_to_the_other_channel_when_it_is_turned_off(self):
        # Dora, in digest mode by e-mail, moves to the webhook before her
        # 10 h digest: what waited for the e-mail digest is in the webhook's
        # (it waited for good in mg:digest:dora:email, without expiry). Then
        # with the inbox only left, what waits is dropped: the inbox has it.
        st, hook, smtp, off = self.dora_waiting_for_her_email_digest()
        self.assertGreater(st.redis.call("PTTL", "mg:digest:dora:email"), 0)  # never kept for good
        out = st.cli("notifications", "--pending")  # (it said "Aucun envoi en attente.")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("En attente du récapitulatif de dora (e-mail) :", out.stdout)
        out = st.cli("staff", "set", "dora", "channels", "inbox,webhook")
        self.assertEqual(out.returncode, 0, out.stderr)
        h.wait_until(lambda: st.redis.call("ZCARD", "mg:digest:dora:webhook") == 1, 10, what="the item moved")
        self.assertEqual(st.redis.call("EXISTS", "mg:digest:dora:email"), 0)
        self.assertGreater(st.redis.call("PTTL", "mg:digest:dora:webhook"), 0)  # (ZUNIONSTORE drops a TTL)
        st.set_clock(off + 2 * 3600 * 1000)  # 10:30
        h.wait_until(lambda: hook.delivered(), 10, what="the webhook digest")
        self.assertIn("(1 opportunité)", hook.delivered()[0]["text"])
        self.assertEqual(smtp.messages, [])
        # The next item waits for tomorrow's digest; with the inbox only, it
        # is dropped from the pending set (it is in the inbox).
        st.emit([tn.match("m-b", "n1", "o1", "s-caen", "s-rouen", score=0.8)])
        h.wait_until(lambda: st.redis.call("ZCARD", "mg:digest:dora:webhook") == 1, 10, what="tomorrow's item")
        out = st.cli("staff", "set", "dora", "channels", "inbox")
        self.assertEqual(out.returncode, 0, out.stderr)
        h.wait_until(lambda: st.redis.call("EXISTS", "mg:digest:dora:webhook") == 0, 10, what="the item dropped")
        self.assertIn("match:m-b", [e["item"] for e in st.inbox("dora")])

    def test_a_digest_leaves_out_what_is_no_longer_an_opportunity_and_a_moved_item_waits_for_the_next_slot(self):
        # Dora's 10 h digest: a match retired before it, and a collective
        # need's revision replaced by the next, were still listed (counted
        # too: « 3 opportunités » for one). Then, past 10 h with the day's
        # e-mail digest sent, a channel switch sent what waited at once
        # (off-hour) instead of at the next day's 10 h.
        st, hook, smtp, off = self.dora_waiting_for_her_email_digest()
        st.emit([tn.match("m-a", "n1", "o1", "s-caen", "s-rouen", score=0.9, revision=2, retired=True)])
        cn1 = tnk.collective_need("c1", ["s-caen", "s-rouen"])
        cn2 = tnk.collective_need("c1", ["s-caen", "s-rouen", "s-cherb"])
        cn2.collective_need_detected.revision = 2
        st.emit([cn1])
        st.settle()
        st.emit([cn2])
        st.settle()
        h.wait_until(lambda: st.redis.call("ZCARD", "mg:digest:dora:email") == 3, 10, what="three items waiting")
        st.set_clock(off + 2 * 3600 * 1000)  # 10:30
        h.wait_until(lambda: smtp.messages, 10, what="the e-mail digest")
        text = smtp.parsed()[0][1].get_body(("plain",)).get_content()
        self.assertIn("(1 opportunité)", text)
        self.assertNotIn("Mise en relation", text)
        self.assertIn("3 structures", text)
        records = [st.record(k.decode()[len("mg:notif:"):]) for k in st.redis.call("KEYS", "mg:notif:*")]
        states = {r["item"]: r["state"] for r in records if r.get("channel") == "email" and r.get("item")}
        self.assertEqual((states["match:m-a"], states["cn:c1:1"]), ("dropped", "dropped"))
        # Something new waits for tomorrow, and a match retired then
        # proposed again (its first notification waits: it is an opportunity
        # again); one whose retirement is handled before its proposal is
        # notified to nobody.
        st.emit([tn.match("m-b", "n1", "o1", "s-caen", "s-rouen", score=0.8)])
        st.emit([tn.match("m-c", "n1", "o1", "s-caen", "s-rouen", score=0.7)])
        st.settle()
        st.emit([tn.match("m-c", "n1", "o1", "s-caen", "s-rouen", score=0.7, revision=2, retired=True)])
        st.settle()
        st.emit([tn.match("m-c", "n1", "o1", "s-caen", "s-rouen", score=0.75, revision=3)])
        st.emit([tn.match("m-d", "n1", "o1", "s-caen", "s-rouen", score=0.6, revision=2, retired=True)])
        st.settle()
        st.emit([tn.match("m-d", "n1", "o1", "s-caen", "s-rouen", score=0.6)])
        st.settle()
        h.wait_until(lambda: st.redis.call("ZCARD", "mg:digest:dora:email") == 2, 10, what="tomorrow's items")
        self.assertNotIn("match:m-d", [e["item"] for e in st.inbox("dora")])
        # At 12 h Dora turns the e-mail off for the webhook: they wait for
        # tomorrow's 10 h there too.
        st.set_clock(off + int(3.5 * 3600 * 1000))  # 12:00
        out = st.cli("staff", "set", "dora", "channels", "inbox,webhook")
        self.assertEqual(out.returncode, 0, out.stderr)
        h.wait_until(lambda: st.redis.call("ZCARD", "mg:digest:dora:webhook") == 2, 10, what="the items moved")
        time.sleep(2.5)
        self.assertEqual(hook.requests, [])
        st.set_clock(off + 26 * 3600 * 1000)  # tomorrow 10:30
        h.wait_until(lambda: hook.delivered(), 10, what="tomorrow's webhook digest")
        text = hook.delivered()[0]["text"]
        self.assertIn("(2 opportunités)", text)
        self.assertIn("#match/m-c", text)

    def test_what_waited_for_the_digest_of_a_member_left_with_the_inbox_only_goes_to_the_inbox(self):
        # Eve gets her digest by e-mail only (no inbox channel): what waits
        # for it is in no inbox. When she keeps only the inbox, it goes there.
        smtp = self.ws.own(tn.SmtpReceiver())
        off, _ = clock_at(8, 30, 0)
        st = tn.Stack(self.ws, {"eve": {"name": "Eve", "channels": "email", "mode": "digest", "digest_hour": 10,
                                        "email": "eve@cress.example"}},
                      clock_offset_ms=off, default_staff="eve", smtp_url=smtp.url)
        one_match_waiting_for_the_email_digest(st, "eve")
        self.assertEqual(st.inbox("eve"), [])
        out = st.cli("staff", "set", "eve", "channels", "inbox")
        self.assertEqual(out.returncode, 0, out.stderr)
        h.wait_until(lambda: st.redis.call("EXISTS", "mg:digest:eve:email") == 0, 10, what="the item moved")
        (entry,) = st.inbox("eve")
        self.assertEqual((entry["item"], entry["state"], entry["read"]), ("match:m-a", "delivered", "0"))
        self.assertIn("Mise en relation proposée", entry["title"])

    def waiting_for_both_digests(self, staff, channels):
        """`staff` in digest mode (10 h) with `channels`, e-mail and webhook
        among them; the clock at 8:30; a match waits for both digests.
        Returns (stack, webhook receiver, SMTP receiver, clock offset)."""
        hook = self.ws.own(tn.WebhookReceiver())
        smtp = self.ws.own(tn.SmtpReceiver())
        off, _ = clock_at(8, 30, 0)
        st = tn.Stack(self.ws, {staff: {"name": staff.capitalize(), "channels": channels, "mode": "digest",
                                        "digest_hour": 10, "email": staff + "@cress.example", "webhook": hook.url}},
                      clock_offset_ms=off, default_staff=staff, smtp_url=smtp.url)
        one_match_waiting_for_the_email_digest(st, staff)
        self.assertEqual(st.redis.call("ZCARD", "mg:digest:%s:webhook" % staff), 1)
        return st, hook, smtp, off

    def test_an_item_waiting_for_both_channels_digests_is_moved_once(self):
        # Dora waits for her 10 h digest by e-mail and by webhook: each match
        # waits once per channel. Turning the e-mail off, the webhook's digest
        # lists it once, not twice.
        st, hook, smtp, off = self.waiting_for_both_digests("dora", "inbox,email,webhook")
        out = st.cli("staff", "set", "dora", "channels", "inbox,webhook")
        self.assertEqual(out.returncode, 0, out.stderr)
        h.wait_until(lambda: st.redis.call("EXISTS", "mg:digest:dora:email") == 0, 10, what="the e-mail's items moved")
        self.assertEqual(st.redis.call("ZCARD", "mg:digest:dora:webhook"), 1)
        st.set_clock(off + 2 * 3600 * 1000)  # 10:30
        h.wait_until(lambda: hook.delivered(), 10, what="the webhook digest")
        text = hook.delivered()[0]["text"]
        self.assertIn("(1 opportunité)", text)
        self.assertEqual(smtp.messages, [])

    def test_an_item_waiting_for_both_channels_digests_reaches_the_inbox_once_with_its_text(self):
        # Eve, no inbox, waits for her digest by e-mail and by webhook. When
        # she keeps only the inbox, each match gets there once, readable.
        st, _, _, _ = self.waiting_for_both_digests("eve", "email,webhook")
        self.assertEqual(st.inbox("eve"), [])
        out = st.cli("staff", "set", "eve", "channels", "inbox")
        self.assertEqual(out.returncode, 0, out.stderr)
        h.wait_until(lambda: st.redis.call("EXISTS", "mg:digest:eve:email", "mg:digest:eve:webhook") == 0, 10,
                     what="the items moved")
        (entry,) = st.inbox("eve")
        self.assertEqual(entry["item"], "match:m-a")
        self.assertIn("Maillage propose une mise en relation", entry["text"])

    def test_what_waited_for_the_webhook_digest_reaches_the_inbox_readable(self):
        # Webhook only, then the inbox only: the webhook's copy (its message
        # is JSON for a chat) carries the text the inbox shows.
        hook = self.ws.own(tn.WebhookReceiver())
        off, _ = clock_at(8, 30, 0)
        st = tn.Stack(self.ws, {"eve": {"name": "Eve", "channels": "webhook", "mode": "digest",
                                        "digest_hour": 10, "webhook": hook.url}},
                      clock_offset_ms=off, default_staff="eve")
        st.start()
        st.emit([tn.need("n1", "s-caen"), tn.offer("o1", "s-rouen", tn.ROUEN)])
        st.emit([tn.match("m-a", "n1", "o1", "s-caen", "s-rouen", score=0.9)])
        h.wait_until(lambda: st.redis.call("ZCARD", "mg:digest:eve:webhook") == 1, 10, what="the pending item")
        out = st.cli("staff", "set", "eve", "channels", "inbox")
        self.assertEqual(out.returncode, 0, out.stderr)
        h.wait_until(lambda: st.inbox("eve"), 10, what="the item moved")
        (entry,) = st.inbox("eve")
        self.assertEqual(entry["item"], "match:m-a")
        self.assertIn("Maillage propose une mise en relation", entry.get("text", ""))

    def test_the_digest_of_what_waited_keeps_the_quiet_hours_for_its_retries_too(self):
        # The same as for an immediate message (above), for the digest sent
        # when a member leaves digest mode: its first attempt at 21:59:30
        # fails; Quentin's retry waits for the end of his quiet hours, and
        # Gaëlle's, due after she sets hers, is held when it comes due.
        q_hook = self.ws.own(tn.WebhookReceiver(plan=["500"]))
        g_hook = self.ws.own(tn.WebhookReceiver(plan=["500"]))
        off, t0 = clock_at(21, 59, 30)
        quiet_end = clock_at(7, 0, 0, days=2)[1]
        digest = {"channels": "webhook", "mode": "digest", "digest_hour": 10}
        st = tn.Stack(self.ws, {
            "q": dict(digest, name="Quentin", webhook=q_hook.url, quiet_start=22, quiet_end=7),
            "g": dict(digest, name="Gaëlle", webhook=g_hook.url),
        }, clock_offset_ms=off, default_staff="q", retry_base_ms=60000, retry_max_ms=120000)
        st.start()
        wait_for_the_days_digest_slot(st, "q:webhook", "g:webhook")
        st.emit([tn.need("n1", "s-caen"), tn.offer("o1", "s-rouen", tn.ROUEN)])
        st.emit([tn.match("m-a", "n1", "o1", "s-caen", "s-rouen", score=0.71),
                 tn.match("m-b", "n1", "o1", "s-caen", "s-rouen", score=0.52)])
        st.settle()
        for staff in ("q", "g"):
            h.wait_until(lambda s=staff: st.redis.call("ZCARD", "mg:digest:%s:webhook" % s) == 2, 10,
                         what="the items held for the digest of " + staff)
            out = st.cli("staff", "set", staff, "mode", "immediate")
            self.assertEqual(out.returncode, 0, out.stderr)

        def digest_of(staff):
            return next((k.decode()[len("mg:notif:"):] for k in st.redis.call("KEYS", "mg:notif:*")
                         if st.redis.call("HGET", k, "staff") == staff.encode()
                         and st.redis.call("HGET", k, "kind") == b"digest"), None)
        nid = {staff: h.wait_until(lambda s=staff: digest_of(s), 10) for staff in ("q", "g")}
        for staff in ("q", "g"):
            h.wait_until(lambda s=staff: st.record(nid[s]).get("last_error"), 10, what="the first attempt of " + staff)

        def queued_until(notification):
            due = st.redis.call("ZSCORE", "mg:notifier:queue", notification)
            return None if due is None else int(due)
        self.assertEqual(queued_until(nid["q"]), quiet_end)
        self.assertLess(queued_until(nid["g"]), t0 + 120 * 1000)
        for key, value in (("quiet_start", "21"), ("quiet_end", "7")):
            st.staff_set("g", key, value)
        st.set_clock(off + 3 * 60 * 1000)  # 22:02:30
        h.wait_until(lambda: queued_until(nid["g"]) in (quiet_end, None), 10, what="Gaëlle's retry held")
        self.assertEqual(queued_until(nid["g"]), quiet_end)
        self.assertEqual(st.record(nid["g"])["attempts"], "1")
        time.sleep(0.5)
        for hook in (q_hook, g_hook):
            self.assertEqual([r[0] for r in hook.requests], ["500"])
        st.set_clock(off + quiet_end - t0 + 30 * 1000)  # 07:00:30
        for hook in (q_hook, g_hook):
            h.wait_until(lambda hk=hook: hk.delivered(), 10, what="the digest after the quiet hours")
            self.assertIn("au fil de l'eau", hook.delivered()[0]["text"])

    def test_a_daily_digest_goes_at_its_hour_even_inside_the_quiet_hours(self):
        # The member chose that hour: it is not held until they end.
        hook = self.ws.own(tn.WebhookReceiver())
        off, _ = clock_at(22, 50, 0)
        st = tn.Stack(self.ws, {"d": {"name": "Dora", "channels": "webhook", "webhook": hook.url, "mode": "digest",
                                      "digest_hour": 23, "quiet_start": 22, "quiet_end": 7}},
                      clock_offset_ms=off, default_staff="d")
        st.start()
        st.emit([tn.need("n1", "s-caen"), tn.offer("o1", "s-rouen", tn.ROUEN)])
        st.emit([tn.match("m-a", "n1", "o1", "s-caen", "s-rouen")])
        st.settle()
        time.sleep(1.0)
        self.assertEqual(hook.requests, [])  # 22:50: waiting for the 23 h digest
        st.set_clock(off + 11 * 60 * 1000)  # 23:01
        h.wait_until(lambda: hook.delivered(), 10, what="the daily digest at 23 h")
        self.assertIn("une fois par jour, à 23 h", hook.delivered()[0]["text"])


if __name__ == "__main__":
    unittest.main()
