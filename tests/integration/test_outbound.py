"""mg_outbound against real servers on loopback: an SMTP server (aiosmtpd)
and an HTTP receiver (http.server), driven through tests/tools/outbound_probe.

What these tests prove:
- a mail reaches a real SMTP server with the right envelope, headers, an
  RFC 2047 subject decoded back to the French original, and both parts
  (text and HTML) with their accents intact, in lines of at most 76 chars;
- SMTP refusals are classified: 5xx permanent, 4xx retryable, a server that
  is down retryable, STARTTLS required but not offered permanent (and the
  mail is never sent in clear), bad credentials retryable (ours to fix);
- a slow server delays only its own mails (they are sent by worker
  threads), a mail sent whole but not answered in time is not retried, and
  destroying the engine cuts a mail waiting for its reply;
- a header-injection attempt never reaches the network;
- webhooks: 2xx delivered with the JSON body and Content-Type intact, 500 and
  429 retryable, 400 permanent, connection refused retryable, a timeout
  reported within its timeout, redirects followed up to 3;
- many webhooks at once: a stalled receiver does not delay a healthy one;
- destroying the engine mid-flight ends every request once, retryable.
"""

import asyncio
import email
import email.policy
import email.utils
import json
import os
import socket
import subprocess
import tempfile
import threading
import time
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from harness import BUILD, free_port

PROBE = os.path.join(BUILD, "tests", "outbound_probe")

FROM = "Maillage CRESS Normandie <maillage@example.org>"
TO = "Élise Durand <elise.durand@example.org>"
SUBJECT = "Nouvelle mise en relation : locaux à Caen"
TEXT = (
    "Bonjour Élise,\n"
    "\n"
    "La Ressourcerie du Bocage (Vire Normandie) et l'Épicerie solidaire de Caen "
    "pourraient coopérer : un local de stockage de 40 m² est disponible à Caen, "
    "précisément ce que cherche l'épicerie.\n"
    ".Une ligne qui commence par un point.\n"
    "Pourquoi ce message ? Vous suivez le Calvados et la catégorie « locaux ».\n"
    "Voir : https://maillage.example.org/staff/mises-en-relation/01J0000000000000000000000\n"
)
HTML = (
    "<html><body><p>Bonjour Élise,</p>"
    "<p>La <b>Ressourcerie du Bocage</b> et l'<b>Épicerie solidaire de Caen</b> "
    "pourraient coopérer : un local de 40 m² à Caen.</p>"
    "<p><a href=\"https://maillage.example.org/staff/\">Voir la mise en relation</a></p>"
    "</body></html>\n"
)


def run_probe(args, timeout=20):
    """Run the probe; return (list of JSON result lines, wall seconds)."""
    start = time.monotonic()
    proc = subprocess.run([PROBE] + list(args), capture_output=True, timeout=timeout, check=False)
    wall = time.monotonic() - start
    if proc.returncode != 0:
        raise AssertionError("outbound_probe failed (%d): %s" % (proc.returncode,
                                                                  proc.stderr.decode()))
    lines = [json.loads(line) for line in proc.stdout.decode().splitlines() if line.strip()]
    return lines, wall


def refused_port():
    """A bound but never listening socket: connecting to it is refused, and no
    other process can take the port while it is held."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    return s, s.getsockname()[1]


class Collector:
    """aiosmtpd handler: keeps every accepted message, or refuses on demand."""

    def __init__(self):
        self.messages = []
        self.rcpt_reply = None
        self.data_reply = None
        self.data_delay = 0  # seconds before the reply to the end of the message

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.rcpt_reply:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.data_delay:
            await asyncio.sleep(self.data_delay)
        if self.data_reply:
            return self.data_reply
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 Message accepted for delivery"


def authenticator(server, session, envelope, mechanism, auth_data):
    ok = (isinstance(auth_data, LoginPassword) and auth_data.login == b"maillage"
          and auth_data.password == b"s3cret")
    # handled=False: aiosmtpd then answers "535" itself on failure.
    return AuthResult(success=ok, handled=False)


class SmtpTests(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.text = os.path.join(self.tmp.name, "text.txt")
        self.html = os.path.join(self.tmp.name, "body.html")
        with open(self.text, "w", encoding="utf-8") as f:
            f.write(TEXT)
        with open(self.html, "w", encoding="utf-8") as f:
            f.write(HTML)
        self.handler = Collector()
        self.port = free_port()
        self.smtp = Controller(self.handler, hostname="127.0.0.1", port=self.port,
                               authenticator=authenticator, auth_require_tls=False)
        self.smtp.start()

    def tearDown(self):
        self.smtp.stop()
        self.tmp.cleanup()

    def send(self, *extra, url=None, subject=SUBJECT, to=TO):
        url = url or "smtp://127.0.0.1:%d" % self.port
        lines, wall = run_probe(["mail", "--smtp", url, "--from", FROM, "--to", to,
                                 "--subject", subject, "--text", self.text, "--html", self.html,
                                 "--message-id", "notif-42@maillage.example.org",
                                 "--timeout-ms", "3000"] + list(extra))
        self.assertEqual(len(lines), 1, lines)
        return lines[0], wall

    def test_mail_arrives_with_headers_both_parts_and_french_text_intact(self):
        result, _ = self.send("--header", "X-Maillage-Kind: match.found")
        self.assertTrue(result["delivered"], result)
        self.assertEqual(result["status"], 250)
        self.assertEqual(result["error"], "")
        self.assertEqual(len(self.handler.messages), 1)
        mail_from, rcpts, raw = self.handler.messages[0]
        self.assertEqual(mail_from, "maillage@example.org")
        self.assertEqual(rcpts, ["elise.durand@example.org"])
        for line in raw.split(b"\r\n"):
            self.assertLessEqual(len(line), 78, line)
        self.assertNotIn(b"\n", raw.replace(b"\r\n", b""), "bare LF in the message")

        msg = email.message_from_bytes(raw, policy=email.policy.default)
        self.assertEqual(str(msg["Subject"]), SUBJECT)
        self.assertEqual(msg["Message-ID"], "<notif-42@maillage.example.org>")
        self.assertEqual(msg["MIME-Version"], "1.0")
        self.assertEqual(msg["Auto-Submitted"], "auto-generated")
        self.assertEqual(msg["X-Maillage-Kind"], "match.found")
        self.assertEqual(msg["From"].addresses[0].display_name, "Maillage CRESS Normandie")
        self.assertEqual(msg["From"].addresses[0].addr_spec, "maillage@example.org")
        self.assertEqual(msg["To"].addresses[0].display_name, "Élise Durand")
        self.assertEqual(msg["To"].addresses[0].addr_spec, "elise.durand@example.org")
        sent = email.utils.parsedate_to_datetime(msg["Date"])
        self.assertLess(abs(time.time() - sent.timestamp()), 120)
        self.assertEqual(msg.get_content_type(), "multipart/alternative")

        parts = list(msg.iter_parts())
        self.assertEqual([p.get_content_type() for p in parts], ["text/plain", "text/html"])
        for part in parts:
            self.assertEqual(part.get_content_charset(), "utf-8")
            self.assertEqual(part["Content-Transfer-Encoding"], "quoted-printable")
        self.assertEqual(parts[0].get_content().replace("\r\n", "\n"), TEXT)
        self.assertEqual(parts[1].get_content().replace("\r\n", "\n"), HTML)

    def test_ascii_subject_and_bare_address_stay_plain(self):
        result, _ = self.send(subject="Digest du jour", to="staff@example.org")
        self.assertTrue(result["delivered"], result)
        msg = email.message_from_bytes(self.handler.messages[0][2], policy=email.policy.default)
        self.assertIn(b"\r\nSubject: Digest du jour\r\n", self.handler.messages[0][2])
        self.assertEqual(msg["To"], "staff@example.org")

    def test_recipient_refused_with_550_is_permanent(self):
        self.handler.rcpt_reply = "550 5.1.1 No such user"
        result, _ = self.send()
        self.assertFalse(result["delivered"])
        self.assertFalse(result["retryable"], result)
        self.assertEqual(result["status"], 550)
        self.assertEqual(result["error"], "SMTP 550: 5.1.1 No such user")  # the server's words
        self.assertEqual(self.handler.messages, [])

    def test_data_refused_with_451_is_retryable(self):
        self.handler.data_reply = "451 4.3.0 Try again later"
        result, _ = self.send()
        self.assertFalse(result["delivered"])
        self.assertTrue(result["retryable"], result)
        self.assertEqual(result["status"], 451)
        # The server's words, not libcurl's "Weird server reply".
        self.assertEqual(result["error"], "SMTP 451: 4.3.0 Try again later")

    def test_a_refusal_in_hostile_words_is_kept_printable_and_bounded(self):
        # The server's words reach logs and the staff's delivery state:
        # control bytes and non-ASCII become "?", a long reply is cut, and
        # a multi-line reply gives its last line.
        self.handler.data_reply = "452-4.2.2 Quota\r\n452 4.2.2 Bo\u00eete\x07pleine " + "x" * 300
        result, _ = self.send()
        self.assertTrue(result["retryable"], result)
        self.assertTrue(result["error"].startswith("SMTP 452: 4.2.2 Bo??te?pleine xxx"), result["error"])
        self.assertEqual(len(result["error"]), len("SMTP 452: ") + 159)

    def test_data_refused_with_554_is_permanent(self):
        self.handler.data_reply = "554 5.7.1 Rejected"
        result, _ = self.send()
        self.assertFalse(result["delivered"])
        self.assertFalse(result["retryable"], result)
        self.assertEqual(result["status"], 554)
        self.assertEqual(result["error"], "SMTP 554: 5.7.1 Rejected")

    def test_smtp_server_down_is_retryable(self):
        sock, port = refused_port()
        try:
            result, wall = self.send(url="smtp://127.0.0.1:%d" % port)
        finally:
            sock.close()
        self.assertFalse(result["delivered"])
        self.assertTrue(result["retryable"], result)
        self.assertEqual(result["status"], 0)
        self.assertLess(wall, 3.0)

    def test_starttls_required_but_not_offered_never_sends_in_clear(self):
        result, _ = self.send("--starttls")
        self.assertFalse(result["delivered"])
        self.assertFalse(result["retryable"], result)
        self.assertEqual(self.handler.messages, [])

    def test_authentication_with_right_and_wrong_password(self):
        result, _ = self.send("--user", "maillage", "--password", "s3cret")
        self.assertTrue(result["delivered"], result)
        # Refused credentials are ours to fix, not the message's: retryable
        # (a rotated password failed every mail for good), and said so.
        result, _ = self.send("--user", "maillage", "--password", "wrong")
        self.assertFalse(result["delivered"])
        self.assertTrue(result["retryable"], result)
        self.assertEqual(result["status"], 535)
        self.assertIn("smtp_password_file", result["error"])
        self.assertEqual(len(self.handler.messages), 1)

    def test_a_slow_mail_server_delays_only_its_own_mails(self):
        # libcurl waits, blocking, for the reply to the end of a message: in
        # the loop, a server taking 2 s to answer froze everything else for
        # 2 s (a webhook's 200 went unread, timed out and was sent again).
        self.handler.data_delay = 2.0
        receiver = Receiver()
        try:
            payload = os.path.join(self.tmp.name, "payload.json")
            with open(payload, "w", encoding="utf-8") as f:
                json.dump({"text": "Bonjour"}, f)
            lines, wall = run_probe(["mail", "--smtp", "smtp://127.0.0.1:%d" % self.port, "--from", FROM,
                                     "--to", TO, "--subject", SUBJECT, "--text", self.text,
                                     "--timeout-ms", "6000", "--count", "2",
                                     "--url", receiver.url("/ok"), "--url", receiver.url("/ok"),
                                     "--json", payload])
        finally:
            receiver.close()
        mails = [r for r in lines if r["url"] == -1]
        hooks = [r for r in lines if r["url"] >= 0]
        self.assertEqual((len(mails), len(hooks)), (2, 2), lines)
        self.assertTrue(all(r["delivered"] for r in lines), lines)
        self.assertLess(max(r["elapsed_ms"] for r in hooks), 700, lines)
        # Both mails at once (not one after the other), each after the delay.
        self.assertGreaterEqual(min(r["elapsed_ms"] for r in mails), 1900, lines)
        self.assertLess(max(r["elapsed_ms"] for r in mails), 3500, lines)
        self.assertEqual(sorted(r["url"] for r in lines[:2]), [0, 1])  # the webhooks first
        self.assertEqual(len(self.handler.messages), 2)
        self.assertLess(wall, 5.0)

    def test_no_reply_after_the_whole_message_is_not_retried(self):
        # The server has the message but answers after our timeout: sending
        # it again gave it a copy at every retry, for days. Not delivered,
        # not retryable, and the error says it may have arrived.
        self.handler.data_delay = 3.0
        result, wall = self.send("--timeout-ms", "1000")
        self.assertEqual((result["delivered"], result["retryable"]), (False, False), result)
        self.assertIn("may have been delivered", result["error"])
        self.assertLess(wall, 2.5, result)  # cut: libcurl alone waits for the reply
        # A timeout before the message went (no answer to the greeting) is retried.
        silent = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        try:
            result, _ = self.send("--timeout-ms", "800", url="smtp://127.0.0.1:%d" % silent.getsockname()[1])
        finally:
            silent.close()
        self.assertEqual((result["delivered"], result["retryable"]), (False, True), result)

    def test_destroy_while_a_mail_waits_for_its_reply_ends_it_retryable(self):
        self.handler.data_delay = 5.0
        result, wall = self.send("--timeout-ms", "8000", "--abort-after-ms", "300")
        self.assertEqual((result["delivered"], result["retryable"]), (False, True), result)
        self.assertEqual(result["error"], "aborted: shutting down")
        self.assertLess(wall, 2.5)

    def test_header_injection_is_refused_before_any_connection(self):
        for args in (dict(subject="Salut\r\nBcc: victim@example.org"),
                     dict(to="elise@example.org\r\nBcc: victim@example.org"),
                     dict(to="a@example.org, b@example.org")):
            result, _ = self.send(**args)
            self.assertEqual(result.get("started"), False, (args, result))
        result, _ = self.send("--header", "X-Evil: a\nBcc: victim@example.org")
        self.assertEqual(result.get("started"), False)
        self.assertEqual(self.handler.messages, [])


class Receiver:
    """An HTTP receiver on loopback. Paths: /ok (200), /fail (500), /busy
    (429), /later (429, Retry-After: 120), /bad (400), /slow (answers when released or after 10 s),
    /redirect (307 to /ok), /loop (302 to itself)."""

    def __init__(self):
        self.requests = []
        self.release = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                outer.requests.append((self.path, self.headers.get("Content-Type"), body))
                codes = {"/ok": 200, "/fail": 500, "/busy": 429, "/later": 429, "/bad": 400}
                if self.path == "/slow":
                    outer.release.wait(10)
                    code = 200
                elif self.path == "/redirect":
                    self.send_response(307)
                    self.send_header("Location", "/ok")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                elif self.path == "/loop":
                    self.send_response(302)
                    self.send_header("Location", "/loop")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                else:
                    code = codes.get(self.path, 404)
                payload = b"ok" if code == 200 else b"no"
                try:
                    self.send_response(code)
                    if self.path == "/later":
                        self.send_header("Retry-After", "120")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:
                    pass  # the client gave up (timeout test)

        class Server(ThreadingHTTPServer):
            # The default backlog (5) drops the SYNs of a burst, which the
            # kernel retransmits a second later: not the delay under test.
            request_queue_size = 128

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def close(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


PAYLOAD = {"text": "**Nouvelle mise en relation** : locaux à Caen (score 0,87)",
           "username": "Maillage"}


class WebhookTests(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.json = os.path.join(self.tmp.name, "payload.json")
        with open(self.json, "w", encoding="utf-8") as f:
            json.dump(PAYLOAD, f, ensure_ascii=False)
        self.receiver = Receiver()

    def tearDown(self):
        self.receiver.close()
        self.tmp.cleanup()

    def post(self, url, timeout_ms=3000):
        lines, wall = run_probe(["webhook", "--url", url, "--json", self.json,
                                 "--timeout-ms", str(timeout_ms)])
        self.assertEqual(len(lines), 1, lines)
        return lines[0], wall

    def test_2xx_is_delivered_with_the_json_body(self):
        result, _ = self.post(self.receiver.url("/ok"))
        self.assertEqual((result["delivered"], result["retryable"], result["status"]),
                         (True, False, 200), result)
        self.assertEqual(len(self.receiver.requests), 1)
        path, ctype, body = self.receiver.requests[0]
        self.assertEqual(path, "/ok")
        self.assertEqual(ctype, "application/json")
        self.assertEqual(json.loads(body.decode("utf-8")), PAYLOAD)

    def test_500_and_429_are_retryable_400_is_not(self):
        for path, retryable, status in (("/fail", True, 500), ("/busy", True, 429),
                                        ("/bad", False, 400)):
            result, _ = self.post(self.receiver.url(path))
            self.assertFalse(result["delivered"], result)
            self.assertEqual(result["retryable"], retryable, result)
            self.assertEqual(result["status"], status)
            self.assertNotIn("retry_after_ms", result)
        # A receiver that says when to come back is heard (the notifier waits that long).
        result, _ = self.post(self.receiver.url("/later"))
        self.assertEqual((result["retryable"], result["retry_after_ms"]), (True, 120000), result)

    def test_connection_refused_is_retryable(self):
        sock, port = refused_port()
        try:
            result, wall = self.post("http://127.0.0.1:%d/hook" % port)
        finally:
            sock.close()
        self.assertEqual((result["delivered"], result["retryable"], result["status"]),
                         (False, True, 0), result)
        self.assertLess(wall, 3.0)

    def test_timeout_is_reported_within_its_timeout_and_retryable(self):
        result, wall = self.post(self.receiver.url("/slow"), timeout_ms=400)
        self.assertFalse(result["delivered"])
        self.assertTrue(result["retryable"], result)
        self.assertGreaterEqual(result["elapsed_ms"], 350)
        self.assertLess(result["elapsed_ms"], 1400)
        self.assertLess(wall, 3.0)

    def test_redirects_are_followed_as_post_but_not_forever(self):
        result, _ = self.post(self.receiver.url("/redirect"))
        self.assertTrue(result["delivered"], result)
        self.assertEqual([r[0] for r in self.receiver.requests], ["/redirect", "/ok"])
        self.assertEqual(json.loads(self.receiver.requests[1][2]), PAYLOAD)
        result, _ = self.post(self.receiver.url("/loop"))
        self.assertFalse(result["delivered"])
        self.assertFalse(result["retryable"], result)
        self.assertEqual(sum(1 for r in self.receiver.requests if r[0] == "/loop"), 4)

    def test_other_schemes_are_refused(self):
        for url in ("file:///etc/passwd", "ftp://127.0.0.1/x", "gopher://127.0.0.1/"):
            result, _ = self.post(url)
            self.assertEqual(result.get("started"), False, result)

    def test_stalled_receiver_does_not_delay_a_healthy_one(self):
        # A receiver that accepts connections (the kernel's backlog) but never
        # reads nor answers: the worst kind of slow server.
        stalled = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        stalled.bind(("127.0.0.1", 0))
        stalled.listen(64)
        try:
            stalled_url = "http://127.0.0.1:%d/hook" % stalled.getsockname()[1]
            lines, wall = run_probe(["many", "--url", stalled_url, "--url",
                                     self.receiver.url("/ok"), "--json", self.json,
                                     "--count", "10", "--timeout-ms", "1500"])
        finally:
            stalled.close()
        self.assertEqual(len(lines), 20)
        healthy = [r for r in lines if r["url"] == 1]
        stuck = [r for r in lines if r["url"] == 0]
        self.assertEqual(len(healthy), 10)
        self.assertTrue(all(r["delivered"] for r in healthy), healthy)
        self.assertLess(max(r["elapsed_ms"] for r in healthy), 700)
        self.assertTrue(all(not r["delivered"] and r["retryable"] for r in stuck), stuck)
        self.assertGreaterEqual(min(r["elapsed_ms"] for r in stuck), 1400)
        # Results are printed as they happen: every healthy one came first.
        self.assertEqual([r["url"] for r in lines[:10]], [1] * 10)
        self.assertEqual(len(self.receiver.requests), 10)
        self.assertLess(wall, 4.0)

    def test_destroy_mid_flight_ends_every_request_once_retryable(self):
        lines, wall = run_probe(["many", "--url", self.receiver.url("/slow"), "--json",
                                 self.json, "--count", "5", "--timeout-ms", "5000",
                                 "--abort-after-ms", "200"])
        self.assertEqual(sorted(r["index"] for r in lines), list(range(5)))
        self.assertTrue(all(not r["delivered"] and r["retryable"] for r in lines), lines)
        self.assertLess(wall, 3.0)


if __name__ == "__main__":
    unittest.main()
