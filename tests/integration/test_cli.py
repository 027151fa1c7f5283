"""The `maillage` CLI against the real stack it starts itself.

`maillage up --dir` starts a private redis-server and the real broker; every
test then drives the CLI as a user or a script would (subprocesses, exit codes,
stdout/stderr), and `maillage down` stops everything. Nothing is mocked.
"""

import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.request
import uuid

import harness as h

SOURCE = os.environ.get("MAILLAGE_SOURCE") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.environ.get("MAILLAGE_BIN") or os.path.join(SOURCE, "build", "bin")
CLI = os.path.join(BIN, "maillage")
DEMO = os.path.join(SOURCE, "demo", "normandie.ndjson")


def run(args, env=None, input_text=None, timeout=60):
    return subprocess.run([CLI] + args, env=env, input=input_text, capture_output=True,
                          text=True, timeout=timeout)


def read_env_file(path):
    values = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#") and "=" in line:
                key, value = line.split("=", 1)
                values[key] = value.strip("'")
    return values


def alive(pid):
    """True if pid runs and is not a zombie (nobody may reap a daemonised child)."""
    try:
        with open("/proc/%d/stat" % pid, encoding="utf-8") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state not in ("Z", "X")


def need_line(event_id, title="Cuisine partagée pour traiteur solidaire", commune="14118",
              category="locaux"):
    return json.dumps({
        "eventId": event_id,
        "type": "need.reported",
        "needReported": {"need": {
            "needId": "need-" + event_id, "structureId": "saveurs-partagees-caen",
            "category": category, "tags": ["cuisine"], "title": title,
            "commune": commune, "radiusKm": 15}},
    }, ensure_ascii=False)


def event_line(event_type, body, event_id=None):
    """An envelope of `event_type` ("need.closed") whose payload is `body`."""
    field = re.sub(r"[._](\w)", lambda m: m.group(1).upper(), event_type)
    return json.dumps({"eventId": event_id or "t-" + uuid.uuid4().hex[:16], "type": event_type, field: body},
                      ensure_ascii=False)


def text_line(seq, label, rest):
    """A line of `--format text`: the sequence and the event's label in their columns, then the rest."""
    return ("#%d" % seq).ljust(5) + " " + label.ljust(26) + rest


class Stack:
    """A stack started by `maillage up` in a fresh directory."""

    def __init__(self, with_conf=None, redis_server=None):
        # Short path: the Redis unix socket path must fit in sun_path.
        self.dir = tempfile.mkdtemp(prefix="mg-cli-")
        extra = ["--redis-server", redis_server] if redis_server else []
        if with_conf is not None:
            extra += ["--with", os.path.join(self.dir, "with.conf")]
            with open(extra[-1], "w", encoding="utf-8") as f:
                f.write(with_conf)
        self.up = run(["up", "--dir", self.dir] + extra)
        if self.up.returncode != 0:
            raise RuntimeError("maillage up failed: " + self.up.stderr)
        self.endpoints = read_env_file(os.path.join(self.dir, "endpoints.env"))
        self.env = dict(os.environ)
        self.env.pop("MAILLAGE_CONFIG", None)
        for key in ("MAILLAGE_REDIS_URL", "MAILLAGE_INGEST", "MAILLAGE_FANOUT"):
            self.env[key] = self.endpoints[key]

    def pids(self):
        pids = {}
        for name in os.listdir(self.dir):
            if name.endswith(".pid"):
                with open(os.path.join(self.dir, name), encoding="utf-8") as f:
                    pids[name[:-4]] = int(f.read().strip())
        return pids

    def cli(self, args, **kw):
        return run(args, env=self.env, **kw)

    def log_tail(self, name, lines=40):
        """The end of a daemon's log, for a failure's message."""
        try:
            with open(os.path.join(self.dir, name + ".log"), encoding="utf-8", errors="replace") as f:
                return "%s.log:\n%s" % (name, "".join(f.readlines()[-lines:]))
        except OSError as e:
            return "%s.log: %s" % (name, e)

    def down(self):
        return run(["down", "--dir", self.dir])

    def close(self):
        """Stop everything (by pid, even if `down` failed) and remove the directory."""
        pids = self.pids()
        self.down()
        for pid in pids.values():
            if alive(pid):
                os.kill(pid, 9)
        shutil.rmtree(self.dir, ignore_errors=True)


class CliTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.stack = Stack()

    @classmethod
    def tearDownClass(cls):
        cls.stack.close()

    def write(self, lines):
        fd, path = tempfile.mkstemp(suffix=".ndjson", dir=self.stack.dir)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
        return path

    def ids(self, n):
        prefix = "t-" + uuid.uuid4().hex[:12]
        return ["%s-%d" % (prefix, i) for i in range(n)]

    # --- up ----------------------------------------------------------------

    def test_up_writes_usable_endpoints(self):
        env = self.stack.endpoints
        for key in ("MAILLAGE_REDIS_URL", "MAILLAGE_INGEST", "MAILLAGE_FANOUT"):
            self.assertIn(key, env)
        # Redis answers on the advertised URL.
        self.assertEqual(self.redis("PING"), "PONG")
        # The broker listens on both advertised endpoints.
        for key in ("MAILLAGE_INGEST", "MAILLAGE_FANOUT"):
            host, port = env[key][len("tcp://"):].rsplit(":", 1)
            socket.create_connection((host, int(port)), timeout=2).close()
        self.assertLessEqual({"redis", "broker"}, set(self.stack.pids()))
        for name, pid in self.stack.pids().items():
            self.assertTrue(alive(pid), self.stack.log_tail(name))

    def test_up_points_the_messages_links_at_its_gateway(self):
        # The links in staff messages lead to this stack's staff page...
        with open(os.path.join(self.stack.dir, "maillage.conf"), encoding="utf-8") as f:
            conf = f.read()
        port = int(re.search(r"^listen = 127\.0\.0\.1:(\d+)$", conf, re.M).group(1))
        self.assertEqual(re.findall(r"^staff_url = (.*)$", conf, re.M), ["http://127.0.0.1:%d/" % port])
        self.assertTrue(alive(self.stack.pids()["gateway"]), self.stack.log_tail("gateway"))
        with urllib.request.urlopen("http://127.0.0.1:%d/" % port, timeout=5) as r:
            self.assertEqual(r.status, 200)
        # ... unless the caller's file says where they go.
        other = Stack(with_conf="[notifier]\nstaff_url = https://maillage.example.org/\n")
        try:
            with open(os.path.join(other.dir, "maillage.conf"), encoding="utf-8") as f:
                self.assertEqual(re.findall(r"^staff_url = (.*)$", f.read(), re.M), ["https://maillage.example.org/"])
        finally:
            other.close()

    def test_up_refuses_a_running_directory(self):
        r = run(["up", "--dir", self.stack.dir])
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("une pile tourne déjà", r.stderr)

    def test_up_that_fails_shows_this_start_s_log_not_an_earlier_one(self):
        # The logs keep earlier runs (appended); the lines shown to explain
        # a failed start are this start's, not the previous failure's.
        d = tempfile.mkdtemp(prefix="mg-cli-fail-")
        try:
            fake = os.path.join(d, "fake-redis-server")
            with open(fake, "w", encoding="utf-8") as f:
                f.write("#!/bin/sh\nn=$(( $(cat %s/count 2>/dev/null || echo 0) + 1 ))\necho $n > %s/count\n"
                        "echo \"fake redis-server, run $n\"\nexit 1\n" % (d, d))
            os.chmod(fake, 0o755)
            stack = os.path.join(d, "stack")
            first = run(["up", "--dir", stack, "--redis-server", fake], timeout=30)
            second = run(["up", "--dir", stack, "--redis-server", fake], timeout=30)
            self.assertNotEqual(first.returncode, 0)
            self.assertNotEqual(second.returncode, 0)
            self.assertIn("fake redis-server, run 1", first.stderr)
            self.assertIn("fake redis-server, run 2", second.stderr)
            self.assertNotIn("run 1", second.stderr)
        finally:
            shutil.rmtree(d, ignore_errors=True)

    # --- emit ----------------------------------------------------------------

    def test_emit_prints_one_accepted_ack_per_event_then_duplicates(self):
        ids = self.ids(3)
        path = self.write([need_line(i) for i in ids])
        first = self.stack.cli(["emit", path])
        self.assertEqual(first.returncode, 0, first.stderr)
        acks = dict(line.split(" ", 1) for line in first.stdout.splitlines())
        self.assertEqual(set(acks), set(ids))
        seqs = {}
        for event_id, rest in acks.items():
            status, seq = rest.split(" seq=")
            self.assertEqual(status, "accepted")
            seqs[event_id] = int(seq)
        self.assertEqual(len(set(seqs.values())), 3)

        again = self.stack.cli(["emit", path])
        self.assertEqual(again.returncode, 0, again.stderr)
        for line in again.stdout.splitlines():
            event_id, rest = line.split(" ", 1)
            self.assertEqual(rest, "duplicate seq=%d" % seqs[event_id])
        self.assertEqual(len(again.stdout.splitlines()), 3)

    def test_emit_sends_a_later_line_with_the_same_event_id_and_other_content(self):
        # Before, the later line was never sent: it got the first line's answer.
        fixed, reused, same = self.ids(3)
        lines = [need_line(fixed, category="licornes"), need_line(reused), need_line(same),
                 need_line(fixed), need_line(reused, title="Autre titre"), need_line(same)]
        r = self.stack.cli(["emit", self.write(lines)])
        self.assertEqual(r.returncode, 1, r.stderr)  # the line with a bad category
        out = r.stdout.splitlines()
        self.assertEqual(len(out), 6, out)
        fixed_out = [l for l in out if l.startswith(fixed + " ")]
        self.assertRegex(fixed_out[0], r" rejected: .+ \(need_reported\.need\.category\)$")
        self.assertRegex(fixed_out[1], r" accepted seq=\d+$")  # the corrected line, sent after the first answer
        first, later = [l for l in out if l.startswith(reused + " ")]
        seq = first.split(" accepted seq=")[1]
        self.assertEqual(later, reused + " duplicate seq=" + seq)  # the broker's answer, as it gave it
        self.assertIn("maillage emit: ligne 5 : %s en doublon : la ligne 2 a le même eventId avec un autre contenu" % reused,
                      r.stderr)
        # the same line twice: one event, both lines answered
        self.assertEqual(sorted(l.split(" seq=")[0] for l in out if l.startswith(same + " ")),
                         [same + " accepted", same + " duplicate"])
        self.assertEqual(len([l for l in r.stderr.splitlines() if "même eventId" in l]), 1, r.stderr)
        dead = [l for l in self.stack.cli(["dlq", "list"]).stdout.splitlines()
                if "need_reported.need.category" in l]
        shows = [self.stack.cli(["dlq", "show", l.split()[0]]).stdout for l in dead]
        self.assertEqual(len([s for s in shows if fixed in s]), 1)

    def test_emit_gives_a_later_line_its_own_answer_after_resends_of_the_earlier(self):
        # The broker is stopped: line 1 (refused) is sent again every 50 ms,
        # and all its copies are answered at once when the broker resumes.
        # The first answer is line 1's, the next ones its resends'; not line
        # 2's, the corrected content sent after it (answers name only the id).
        (eid,) = self.ids(1)
        path = self.write([need_line(eid, category="licornes"), need_line(eid)])
        broker = self.stack.pids()["broker"]
        os.kill(broker, signal.SIGSTOP)
        try:
            emit = subprocess.Popen([CLI, "emit", "--retry-ms", "50", path], env=self.stack.env,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            time.sleep(0.5)
        finally:
            os.kill(broker, signal.SIGCONT)
        out, err = emit.communicate(timeout=30)
        self.assertEqual(out.splitlines()[0].split(":")[0], eid + " rejected", out)
        self.assertRegex(out.splitlines()[1], r"^%s accepted seq=\d+$" % eid)
        self.assertEqual(len(out.splitlines()), 2, out + err)

    def test_emit_reports_a_bad_line_by_number_and_sends_the_others(self):
        ids = self.ids(2)
        path = self.write([need_line(ids[0]), '{"eventId": "broken", "type": ', need_line(ids[1]),
                           '{"eventId": "x", "noSuchField": 1}'])
        r = self.stack.cli(["emit", path])
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("ligne 2 :", r.stderr)
        self.assertIn("ligne 4 :", r.stderr)
        accepted = [l.split()[0] for l in r.stdout.splitlines() if " accepted seq=" in l]
        self.assertEqual(sorted(accepted), sorted(ids))

    def test_emit_refuses_a_line_larger_than_the_broker_takes_at_once(self):
        # Over 4 x max_message_bytes the broker's socket closes the connection
        # without an answer: emit waited out its --timeout, then said "no
        # answer from the broker". Now it says why, and sends the others.
        ids = self.ids(3)
        big = json.loads(need_line(ids[1]))
        big["needReported"]["need"]["description"] = "d" * (1100 * 1024)
        path = self.write([need_line(ids[0]), json.dumps(big), need_line(ids[2])])
        started = time.monotonic()
        r = self.stack.cli(["emit", "--timeout", "20", path])
        self.assertLess(time.monotonic() - started, 15)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("ligne 2 : %s : trop volumineux (" % ids[1], r.stderr)
        self.assertIn("max_message_bytes vaut 262144", r.stderr)
        # Counted as what it is: the line was read (it was counted unreadable).
        self.assertIn("0 ligne illisible, 1 trop volumineuse, 0 sans réponse", r.stderr)
        accepted = [l.split()[0] for l in r.stdout.splitlines() if " accepted seq=" in l]
        self.assertEqual(sorted(accepted), sorted([ids[0], ids[2]]))

    def test_emit_reads_a_file_that_starts_with_a_byte_order_mark(self):
        # Windows tools (a CRM's export) start UTF-8 files with a BOM. Before:
        # "line 1: invalid JSON ... expected near '\ufeff'", an invisible
        # character, and the first event was not sent.
        ids = self.ids(2)
        path = self.write([need_line(ids[0]), need_line(ids[1])])
        with open(path, "rb") as f:
            data = f.read()
        with open(path, "wb") as f:
            f.write(b"\xef\xbb\xbf" + data.replace(b"\n", b"\r\n"))
        r = self.stack.cli(["emit", path])
        self.assertEqual(r.returncode, 0, r.stderr)
        accepted = [l.split()[0] for l in r.stdout.splitlines() if " accepted seq=" in l]
        self.assertEqual(sorted(accepted), sorted(ids))

    def test_emit_reports_over_long_lines_even_the_last_one_without_newline(self):
        ids = self.ids(2)
        huge = "x" * (16 * 1024 * 1024 + 10)
        path = self.write([need_line(ids[0]), huge, need_line(ids[1])])
        with open(path, "a", encoding="utf-8") as f:
            f.write(huge)  # the last line, without its newline
        r = self.stack.cli(["emit", path])
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("ligne 2 : ", r.stderr)  # too long, or not JSON when read whole
        self.assertIn("ligne 4 : plus longue que", r.stderr)
        self.assertIn("2 lignes illisibles", r.stderr)
        accepted = [l.split()[0] for l in r.stdout.splitlines() if " accepted seq=" in l]
        self.assertEqual(sorted(accepted), sorted(ids))

    def test_emit_reads_stdin_and_fills_missing_event_id(self):
        line = json.dumps({"type": "need.reported", "needReported": {"need": {
            "needId": "need-" + uuid.uuid4().hex[:8], "structureId": "s1", "category": "formation",
            "title": "Formation sans identifiant", "commune": "76540"}}})
        r = self.stack.cli(["emit"], input_text=line + "\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        event_id, status = r.stdout.split()[:2]
        self.assertEqual(len(event_id), 26)  # a ULID
        self.assertEqual(status, "accepted")

    def test_emit_quiet_prints_only_a_summary(self):
        path = self.write([need_line(i) for i in self.ids(4)])
        r = self.stack.cli(["emit", "--quiet", path])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, "")
        self.assertIn("4 acceptés", r.stderr)

    def test_emit_fails_when_its_input_cannot_be_read(self):
        # A directory opens but does not read (EISDIR), as a file on a failing disk (EIO).
        r = self.stack.cli(["emit", self.stack.dir])
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("maillage emit: lecture de %s impossible : Is a directory\n" % self.stack.dir, r.stderr)

    def test_emit_without_a_broker_fails_with_one_clear_line(self):
        endpoint = "tcp://127.0.0.1:%d" % h.free_port()  # nothing listens there
        path = self.write([need_line(i) for i in self.ids(2)])
        r = self.stack.cli(["emit", "--ingest", endpoint, "--timeout", "1", path])
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("pas de réponse du broker (%s)" % endpoint, r.stderr)
        # Said after 3 s too, not only at --timeout (30 s of silence by default).
        r = self.stack.cli(["emit", "--ingest", endpoint, "--timeout", "4", path])
        early = "pas encore de réponse du broker (%s) après 3 s : tourne-t-il ?" % endpoint
        self.assertIn(early, r.stderr)
        self.assertLess(r.stderr.index(early), r.stderr.index("pas de réponse du broker (%s)" % endpoint))

    def test_emit_interrupted_says_so_without_blaming_the_broker(self):
        # Before, Ctrl-C after 1 s also printed "no answer from the broker
        # ... after 30 s", which neither happened nor was the cause.
        endpoint = "tcp://127.0.0.1:%d" % h.free_port()  # nothing listens there
        path = self.write([need_line(i) for i in self.ids(2)])
        p = subprocess.Popen([CLI, "emit", "--ingest", endpoint, path], env=self.stack.env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

        def catches_sigint():  # its handler is in place (else SIGINT would just end it)
            with open("/proc/%d/status" % p.pid, encoding="ascii") as f:
                caught = int(re.search(r"^SigCgt:\s*([0-9a-f]+)$", f.read(), re.M).group(1), 16)
            return caught & (1 << (signal.SIGINT - 1))
        h.wait_until(catches_sigint, 10, what="emit's SIGINT handler")
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=10)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("maillage emit: interrompu : 2 événements sans réponse", err)
        self.assertNotIn("pas de réponse du broker", err)

    # --- rejections and dead letters -----------------------------------------

    def test_rejected_event_is_explained_and_listed_in_dlq(self):
        event_id = self.ids(1)[0]
        path = self.write([need_line(event_id, category="licornes")])
        r = self.stack.cli(["emit", path])
        self.assertNotEqual(r.returncode, 0)
        self.assertRegex(r.stdout, event_id + r" rejected: .+ \(need_reported\.need\.category\)")
        # The broker writes a dead letter after answering, and earlier tests
        # left some of the same field: wait for the one of this event.
        def shown():
            listing = self.stack.cli(["dlq", "list"])
            self.assertEqual(listing.returncode, 0, listing.stderr)
            for line in reversed(listing.stdout.splitlines()):
                if "need_reported.need.category" in line:
                    show = self.stack.cli(["dlq", "show", line.split()[0]])
                    self.assertEqual(show.returncode, 0, show.stderr)
                    if event_id in show.stdout:  # the escaped preview of the raw bytes
                        return show
            return None
        show = h.wait_until(shown, what="the dead letter of " + event_id)
        self.assertIn("champ :         need_reported.need.category", show.stdout)
        missing = self.stack.cli(["dlq", "show", "1-1"])
        self.assertNotEqual(missing.returncode, 0)
        self.assertEqual(missing.stderr, "maillage dlq: aucune lettre morte d'identifiant 1-1 (voir « maillage dlq list »)\n")

    # --- tail ------------------------------------------------------------------

    def test_tail_started_before_emit_sees_the_events_in_order(self):
        ids = self.ids(5)
        tail = subprocess.Popen([CLI, "tail", "--count", "5", "need."], env=self.stack.env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            time.sleep(1.0)  # let it subscribe and note the last sequence
            r = self.stack.cli(["emit", self.write([need_line(i) for i in ids])])
            self.assertEqual(r.returncode, 0, r.stderr)
            out, err = tail.communicate(timeout=20)
        finally:
            if tail.poll() is None:
                tail.kill()
        self.assertEqual(tail.returncode, 0, err)
        events = [json.loads(l) for l in out.splitlines()]
        self.assertEqual([e["eventId"] for e in events], ids)
        seqs = [int(e["sequence"]) for e in events]
        self.assertEqual(seqs, list(range(seqs[0], seqs[0] + 5)))

    def test_tail_goes_on_when_redis_closes_its_connection(self):
        # A Redis restart killed tail with SIGPIPE at its next journal read,
        # without a word: the events after it were never shown. Its own
        # stack: every connection to this Redis is cut.
        stack = Stack()
        ids = self.ids(2)
        said = os.path.join(stack.dir, "tail.err")
        with open(said, "w", encoding="utf-8") as err_file:
            tail = subprocess.Popen([CLI, "tail", "--count", "2", "need."], env=stack.env,
                                    stdout=subprocess.PIPE, stderr=err_file, text=True)

        def err():
            with open(said, encoding="utf-8") as f:
                return f.read()
        try:
            time.sleep(1.0)  # let it subscribe and note the last sequence
            self.assertEqual(stack.cli(["emit", self.write([need_line(ids[0])])]).returncode, 0)
            url = stack.endpoints["MAILLAGE_REDIS_URL"]
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.connect(url[len("unix://"):])
                h._Resp(s).call("CLIENT", "KILL", "TYPE", "normal")
            # tail reads the journal each quiet second: it meets the closed
            # connection, then connects again a second later.
            h.wait_until(lambda: "le journal répond de nouveau" in err(), 10, what="tail's journal again")
            h.wait_until(lambda: stack.cli(["emit", self.write([need_line(ids[1])])]).returncode == 0, 20,
                         what="the broker journaling again")
            out, _ = tail.communicate(timeout=20)
        finally:
            if tail.poll() is None:
                tail.kill()
            said_text = err()
            stack.close()
        self.assertEqual(tail.returncode, 0, said_text)
        self.assertEqual([json.loads(l)["eventId"] for l in out.splitlines()], ids)
        self.assertIn("journal injoignable", said_text)

    def test_tail_ends_when_its_reader_goes_away(self):
        # `maillage tail | head -n 1`: with SIGPIPE ignored (for Redis), tail
        # went on forever writing into the closed pipe.
        ids = self.ids(2)
        tail = subprocess.Popen([CLI, "tail", "need."], env=self.stack.env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            time.sleep(1.0)  # let it subscribe and note the last sequence
            self.assertEqual(self.stack.cli(["emit", self.write([need_line(ids[0])])]).returncode, 0)
            self.assertIn(ids[0].encode(), tail.stdout.readline())
            tail.stdout.close()  # the reader goes away
            self.assertEqual(self.stack.cli(["emit", self.write([need_line(ids[1])])]).returncode, 0)
            self.assertEqual(tail.wait(timeout=10), 0)
        finally:
            if tail.poll() is None:
                tail.kill()
            tail.communicate()

    def test_tail_from_beyond_the_journal_says_it_waits(self):
        # Before, `tail --from 500` on a journal ending at 138 waited in
        # silence, and would never show 139 to 499.
        last = int(self.redis("GET", "mg:journal:seq") or 0)
        p = subprocess.Popen([CLI, "tail", "--from", str(last + 1000)], env=self.stack.env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            line = p.stderr.readline()
        finally:
            p.send_signal(signal.SIGINT)
            p.communicate(timeout=10)
        self.assertEqual(line, "maillage tail: attention : le journal s'arrête à %d ; attente de l'événement %d (les "
                               "999 précédents ne seront pas affichés)\n" % (last, last + 1000))

    def test_tail_from_a_sequence_reads_the_journal_first_then_text(self):
        ids = self.ids(3)
        match = json.dumps({"eventId": ids[2], "type": "match.found", "matchFound": {
            "matchId": "m-" + ids[2], "needId": "need-" + ids[0], "offerId": "offer-1",
            "needStructureId": "saveurs-partagees-caen", "offerStructureId": "lemoine", "category": "locaux",
            "department": "14", "score": 0.724, "rank": 1, "distanceKm": 3.6, "revision": 1,
            "explanation": "Même catégorie (locaux), à 4 km dans un rayon de 15 km"}}, ensure_ascii=False)
        r = self.stack.cli(["emit", self.write([need_line(ids[0]), need_line(ids[1], commune="76540"), match])])
        self.assertEqual(r.returncode, 0, r.stderr)
        first_seq = min(int(l.split("seq=")[1]) for l in r.stdout.splitlines())
        t = self.stack.cli(["tail", "--from", str(first_seq), "--count", "3", "--format", "text"],
                           timeout=20)
        self.assertEqual(t.returncode, 0, t.stderr)
        lines = t.stdout.splitlines()
        self.assertTrue(lines[0].startswith("#%d " % first_seq), lines)
        self.assertIn("besoin signalé", lines[0])
        self.assertIn("Calvados (14) · Locaux · « Cuisine partagée pour traiteur solidaire » — Caen", lines[0])
        self.assertIn("Seine-Maritime (76)", lines[1])
        self.assertIn("— Rouen", lines[1])
        # a score as staff read it everywhere: a percentage; the need by the
        # title this run printed above, the offer (never seen) by its id
        self.assertEqual(lines[2], text_line(first_seq + 2, "mise en relation proposée",
                                             " · Calvados (14) · Locaux · « Cuisine partagée pour traiteur solidaire » "
                                             "(need-%s) ↔ offer-1 · rang 1 · score 72 %% · Même catégorie (locaux), "
                                             "à 4 km dans un rayon de 15 km" % ids[0]))

    def test_an_offer_placed_by_its_territory_is_named_by_it_in_text_and_summary(self):
        # No commune: it read « département ? · … — ? », and the summary had a « ? » column.
        oid = "offer-" + self.ids(1)[0]
        offer = event_line("offer.published", {"offer": {
            "offerId": oid, "providerId": "lemoine", "category": "locaux", "title": "Salle partagée",
            "territory": ["epci:200065597", "dep:76"]}})
        seq, = self.emit_lines([offer])
        r = self.stack.cli(["journal", "--from", str(seq), "--format", "text"])
        self.assertEqual(r.stdout, text_line(seq, "offre publiée", " · Calvados (14) · Locaux · « Salle partagée » "
                                                                    "— CU Caen la Mer\n"))
        r = self.stack.cli(["journal", "--from", str(seq), "--summary"])
        self.assertIn("Départements : 14 Calvados\n", r.stdout)
        self.assertNotIn("?", r.stdout)

    # --- French text: names rather than ids --------------------------------------

    def redis(self, *args):
        """One command to the stack's Redis."""
        url = self.stack.endpoints["MAILLAGE_REDIS_URL"]
        if url.startswith("unix://"):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(url[len("unix://"):])
        else:
            host, port = url[len("redis://"):].split("/")[0].split(":")
            s = socket.create_connection((host, int(port)))
        with s:
            return h._Resp(s).call(*args)

    def emit_lines(self, lines):
        """Emit `lines`; the journal sequence of each, in order."""
        r = self.stack.cli(["emit", self.write(lines)])
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        seqs = dict(l.split(" accepted seq=") for l in r.stdout.splitlines())
        return [int(seqs[json.loads(l)["eventId"]]) for l in lines]

    def notifier_reached(self, seq):
        h.wait_until(lambda: int(self.redis("HGET", "mg:consumer:notifier", "seq") or 0) >= seq, 20,
                     what="the notifier to read #%d" % seq)

    def text_of(self, args, seqs):
        """The lines `args` (tail or journal) print in French for the events `seqs`."""
        r = self.stack.cli(args + ["--format", "text"], timeout=20)
        self.assertEqual(r.returncode, 0, r.stderr)
        by_seq = {int(l.split()[0][1:]): l for l in r.stdout.splitlines()}
        return [by_seq.get(seq) for seq in seqs]

    def test_text_names_the_territory_a_proposal_is_addressed_to(self):
        # It printed the entries as stored: « → dep:76, epci:200065597 ».
        p = uuid.uuid4().hex[:8]
        seq, = self.emit_lines([event_line("cooperation.proposed", {
            "proposalId": "coop-" + p, "fromStructureId": "s-" + p, "kind": "COOPERATION_KIND_JOINT_BID",
            "title": "Répondre ensemble", "territory": ["dep:76", "epci:200065597", "14118", "epci:999999999"]})])
        line, = self.text_of(["journal", "--from", str(seq), "--to", str(seq)], [seq])
        self.assertTrue(line.endswith(" → toute structure du territoire : Seine-Maritime, CU Caen la Mer, Caen, "
                                      "epci:999999999"), line)

    def test_text_names_what_events_refer_to(self):
        self.assertIn("notifier", self.stack.pids())  # its copies of the names are read
        p = uuid.uuid4().hex[:8]
        a, b, need, offer, coop = "saveurs-" + p, "laiterie-" + p, "need-" + p, "offer-" + p, "coop-" + p
        directory = [
            event_line("member.joined", {"network": "cress-normandie", "structure": {
                "structureId": a, "name": "Saveurs partagées", "family": "FAMILY_ASSOCIATION", "commune": "14118",
                "networks": ["cress-normandie"]}}),
            event_line("member.joined", {"network": "cress-normandie", "structure": {
                "structureId": b, "name": "Coopérative laitière du Val de Saire", "family": "FAMILY_COOPERATIVE",
                "commune": "50129", "networks": ["cress-normandie"]}}),
            event_line("need.reported", {"need": {"needId": need, "structureId": a, "category": "locaux",
                                                  "title": "Cuisine partagée", "commune": "14118", "radiusKm": 15}}),
            event_line("offer.published", {"offer": {"offerId": offer, "providerId": b, "category": "locaux",
                                                     "title": "Cuisine professionnelle", "commune": "14118"}}),
            event_line("cooperation.proposed", {"proposalId": coop, "fromStructureId": a, "toStructureId": b,
                                                "kind": "COOPERATION_KIND_POOLING", "title": "Mutualiser une cuisine"}),
        ]
        references = [
            event_line("match.found", {"matchId": "m-" + p, "needId": need, "offerId": offer, "needStructureId": a,
                                       "offerStructureId": b, "category": "locaux", "department": "14",
                                       "score": 0.724, "rank": 1, "revision": 1,
                                       "explanation": "Même catégorie (locaux)"}),
            event_line("cooperation.answered", {"proposalId": coop, "structureId": b,
                                                "answer": "COOPERATION_ANSWER_ACCEPTED"}),
            event_line("need.closed", {"needId": need, "structureId": a, "reason": "CLOSURE_SATISFIED"}),
            event_line("offer.withdrawn", {"offerId": offer, "providerId": b, "reason": "CLOSURE_CANCELLED"}),
            event_line("member.left", {"structureId": a, "network": "cress-normandie", "leftOn": "2026-12-01"}),
        ]
        first = self.emit_lines(directory)
        self.notifier_reached(first[-1])
        then = self.emit_lines(references)
        labels = ["mise en relation proposée", "réponse à une proposition de coopération", "besoin clos",
                  "offre retirée", "départ d'une structure adhérente"]

        def expected(need_ref, offer_ref, coop_ref, a_name, b_name):
            rests = [" · Calvados (14) · Locaux · %s ↔ %s · rang 1 · score 72 %% · Même catégorie (locaux)"
                     % (need_ref, offer_ref),
                     " · %s · %s : acceptée" % (coop_ref, b_name),
                     " · %s · satisfait" % need_ref,
                     " · %s · annulée" % offer_ref,
                     " · %s · a quitté cress-normandie" % a_name]  # a network that is no structure: its id
            return [text_line(seq, label, rest) for seq, label, rest in zip(then, labels, rests)]

        named = expected("« Cuisine partagée » (%s)" % need, "« Cuisine professionnelle » (%s)" % offer,
                         "« Mutualiser une cuisine » (%s)" % coop, "Saveurs partagées",
                         "Coopérative laitière du Val de Saire")
        # A run that starts after the names were stated finds them in the
        # notifier's copies (tail reads the journal from --from first).
        self.assertEqual(self.text_of(["tail", "--from", str(then[0]), "--count", str(then[-1] - then[0] + 1)], then),
                         named)
        self.assertEqual(self.text_of(["journal", "--type", "match.", "--from", str(then[0])], then[:1]), named[:1])
        # Without those copies, a run that saw the names stated says them ...
        self.notifier_reached(then[-1])
        self.redis("DEL", "mg:notifier:need:" + need, "mg:notifier:offer:" + offer, "mg:notifier:coop:" + coop,
                   "mg:notifier:structure:" + a, "mg:notifier:structure:" + b)
        run = self.text_of(["journal", "--from", str(first[0]), "--to", str(then[-1])], first[-1:] + then)
        self.assertEqual(run[0], text_line(first[-1], "proposition de coopération",
                                           " · mutualisation · « Mutualiser une cuisine » — Saveurs partagées → "
                                           "Coopérative laitière du Val de Saire"))
        self.assertEqual(run[1:], named)
        # ... and one that did not shows the ids.
        self.assertEqual(self.text_of(["journal", "--from", str(then[0]), "--to", str(then[-1])], then),
                         expected(need, offer, coop, a, b))

    def test_text_calls_a_new_member_as_messages_and_the_page_do(self):
        sid = "epicerie-" + uuid.uuid4().hex[:8]
        [seq] = self.emit_lines([event_line("member.joined", {"network": "cress-normandie", "structure": {
            "structureId": sid, "name": "Épicerie solidaire", "family": "FAMILY_ASSOCIATION", "commune": "14118"}})])
        self.assertEqual(self.text_of(["tail", "--from", str(seq), "--count", "1"], [seq]),
                         [text_line(seq, "nouvelle adhésion", " · Calvados (14) · association · « Épicerie solidaire » "
                                                              "— Caen")])

    # --- journal -----------------------------------------------------------------

    def test_journal_reads_everything_back_in_order(self):
        ids = self.ids(3)
        self.assertEqual(self.stack.cli(["emit", self.write([need_line(i) for i in ids])]).returncode, 0)
        r = self.stack.cli(["journal"])
        self.assertEqual(r.returncode, 0, r.stderr)
        events = [json.loads(l) for l in r.stdout.splitlines()]
        seqs = [int(e["sequence"]) for e in events]
        self.assertEqual(seqs, list(range(1, len(events) + 1)))  # dense, from 1
        self.assertEqual([e["eventId"] for e in events if e["eventId"] in ids], ids)
        # --from/--to/--type narrow it down.
        part = self.stack.cli(["journal", "--from", "2", "--to", "3", "--type", "need."])
        expected = [e for e in events if 2 <= int(e["sequence"]) <= 3 and e["type"].startswith("need.")]
        self.assertEqual([json.loads(l) for l in part.stdout.splitlines()], expected)

    def test_journal_summary_counts_in_french(self):
        ids = self.ids(5)
        # a pair proposed, revised and retired: one proposal, not three
        pair = {"matchId": "m-" + ids[2], "needId": "need-" + ids[0], "offerId": "offer-1",
                "needStructureId": "saveurs-partagees-caen", "offerStructureId": "lemoine", "category": "locaux",
                "department": "14", "score": 0.6, "rank": 1, "distanceKm": 3.6, "explanation": "Même catégorie"}
        steps = [json.dumps({"eventId": ids[2 + k], "type": "match.found",
                             "matchFound": dict(pair, revision=k + 1, retired=k == 2)}) for k in range(3)]
        self.stack.cli(["emit", self.write([need_line(ids[0]), need_line(ids[1], category="benevolat",
                                                                          commune="61001")] + steps)])
        r = self.stack.cli(["journal", "--summary"])
        self.assertEqual(r.returncode, 0, r.stderr)
        out = r.stdout
        self.assertRegex(out, r"Journal : \d+ événements")
        self.assertRegex(out, r"besoin signalé\s+\d+\s+need\.reported")
        self.assertRegex(out, r"mise en relation proposée\s+\d+\s+match\.found")
        self.assertRegex(out, r"mise en relation révisée\s+1\s+match\.found")
        self.assertRegex(out, r"mise en relation retirée\s+1\s+match\.found")
        self.assertIn("Besoins ouverts par catégorie et département", out)
        self.assertIn("14 Calvados", out)
        self.assertRegex(out, r"\n  Locaux\s+[1-9]")
        self.assertRegex(out, r"\n  Bénévolat\s+")
        # The matcher's rules, so that the counts are the API's: a close
        # naming another structure is void, a closed id stays closed (its
        # later report changes nothing), and « besoins clos » counts needs,
        # not close events (it said 2 open and 3 closed here).
        a, b, c = ("need-" + i for i in self.ids(3))
        close = lambda nid, sid: event_line("need.closed", {"needId": nid, "structureId": sid,  # noqa: E731
                                                            "reason": "CLOSURE_SATISFIED"})
        first, *_ = self.emit_lines([need_line(a[5:]), need_line(b[5:], category="benevolat"),
                                     close(b, "une-autre-structure"),
                                     close(c, "saveurs-partagees-caen"), need_line(c[5:]),
                                     close(a, "saveurs-partagees-caen"), close(a, "saveurs-partagees-caen")])
        r = self.stack.cli(["journal", "--summary", "--from", str(first)])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("Besoins ouverts par catégorie et département : 1\n", r.stdout)
        self.assertIn("  (1 besoin clos)\n", r.stdout)
        needs = r.stdout.split("Besoins ouverts")[1].split("Offres ouvertes")[0]
        self.assertRegex(needs, r"\n  Bénévolat\s+1")  # b, whose close was void
        self.assertRegex(needs, r"\n  Locaux\s+·\s+·\n")  # a closed, c never reopened
        # one event: « séquence N », not « séquences N à N »
        seq, = self.emit_lines([need_line(self.ids(1)[0])])
        r = self.stack.cli(["journal", "--summary", "--from", str(seq), "--to", str(seq)])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("Journal : 1 événement (séquence %d)\n" % seq, r.stdout)

    # --- help and usage ------------------------------------------------------------

    def test_every_command_has_help_and_bad_usage_fails(self):
        self.assertEqual(run(["--help"]).returncode, 0)
        self.assertIn("maillage", run(["--version"]).stdout)
        for cmd in ("emit", "tail", "journal", "dlq", "up", "down", "config"):
            r = run([cmd, "--help"])
            self.assertEqual(r.returncode, 0, cmd)
            self.assertIn("Usage : maillage " + cmd, r.stdout)
        r = run(["frobnicate"])
        self.assertEqual(r.returncode, 2)
        self.assertEqual(r.stderr, "maillage: commande inconnue « frobnicate » (voir « maillage --help »)\n")
        # A typo names the command meant; "help --help" is the help.
        r = run(["staf", "list"])
        self.assertEqual(r.returncode, 2)
        self.assertEqual(r.stderr, "maillage: commande inconnue « staf » : vouliez-vous dire « staff » ? "
                                   "(voir « maillage --help »)\n")
        self.assertIn("vouliez-vous dire « consumers »", run(["consumer"]).stderr)
        r = run(["help", "--help"])
        self.assertEqual((r.returncode, r.stderr), (0, ""))
        self.assertIn("Usage : maillage", r.stdout)
        self.assertNotEqual(run(["tail", "--format", "xml"]).returncode, 0)
        # A number option takes a positive integer, all of it (before, inbox
        # read "5x" as 5 and journal took an overflow for "nothing to show").
        for args, name in ((["inbox", "claire", "--limit", "5x"], "limit"),
                           (["inbox", "claire", "--count", "-3"], "count"),
                           (["journal", "--from", "99999999999999999999999"], "from"),
                           (["tail", "--count", " 7"], "count"), (["dlq", "list", "--count", "+2"], "count")):
            r = run(args)
            self.assertEqual(r.returncode, 2, (args, r.stderr))
            self.assertIn("--%s : « %s » n'est pas un entier positif" % (name, args[-1]), r.stderr)
        # A --redis, --ingest or --fanout that is no URL or endpoint at all is
        # the command line's fault (it exited 1, naming the file's [redis] url),
        # as is a dead letter's id spelled as none can be (Redis's error passed through).
        for args, said in ((["--redis", "bogus", "journal"], 'maillage journal: --redis : expected redis://HOST:PORT/DB '
                                                             'or unix:///PATH, got "bogus"\n'),  # (the URL once)
                           (["--redis", "redis://127.0.0.1:1/x", "journal"],
                            "--redis « redis://127.0.0.1:1/x » : invalid database number"),
                           (["--ingest", "bogus", "emit", "/dev/null"],
                            "--ingest « bogus » : ce n'est pas un point d'accès ZeroMQ"),
                           (["--fanout", "tcp://x:", "tail"], "--fanout « tcp://x: » : ce n'est pas un point d'accès ZeroMQ"),
                           (["dlq", "show", "nope"], "« nope » n'est pas un identifiant de lettre morte : ils s'écrivent")):
            r = run(args)
            self.assertEqual(r.returncode, 2, (args, r.stderr))
            self.assertIn(said, r.stderr)
            self.assertEqual(len(r.stderr.splitlines()), 1, r.stderr)
        # A Redis beyond loopback is no usage error: with the file's
        # password it is tried (nothing answers at TEST-NET-1), as it is
        # from MAILLAGE_REDIS_URL.
        with tempfile.TemporaryDirectory() as tmp:
            secret, conf = os.path.join(tmp, "redis.pass"), os.path.join(tmp, "maillage.conf")
            with open(secret, "w") as f:
                f.write("s3cret\n")
            os.chmod(secret, 0o600)
            with open(conf, "w") as f:
                f.write("[redis]\npassword_file = %s\nconnect_timeout_ms = 200\n" % secret)
            r = run(["--config", conf, "--redis", "redis://192.0.2.1:6379", "journal"])
            self.assertEqual(r.returncode, 1, r.stderr)
            self.assertIn("cannot connect to 192.0.2.1:6379", r.stderr)

    def test_tail_and_journal_refuse_a_type_prefix_that_selects_nothing(self):
        # Before, `tail ned.` waited forever and `journal --type ned.`
        # printed nothing with exit 0: a typo looked like an empty journal.
        for args, bad in ((["tail", "ned."], "ned."), (["tail", "need.", "offre."], "offre."),
                          (["journal", "--type", "ned.*"], "ned.")):
            r = self.stack.cli(args, timeout=10)
            self.assertEqual((r.returncode, r.stdout), (2, ""), args)
            self.assertIn("maillage %s: aucun type d'événement ne commence par « %s »" % (args[0], bad), r.stderr)
            self.assertIn("need.reported", r.stderr)
            self.assertEqual(len(r.stderr.splitlines()), 1, r.stderr)
        r = self.stack.cli(["journal", "--type", "need.", "--type", "offer.published", "--to", "1"])
        self.assertEqual(r.returncode, 0, r.stderr)
        # A pattern as tokens spell it (`--types 'need.*'`) selects the same.
        starred = self.stack.cli(["journal", "--type", "need.*", "--type", "offer.published", "--to", "1"])
        self.assertEqual((starred.returncode, starred.stdout), (0, r.stdout), starred.stderr)

    def test_config_defaults_and_check(self):
        defaults = run(["config", "defaults"])
        self.assertEqual(defaults.returncode, 0)
        path = os.path.join(self.stack.dir, "defaults.conf")
        with open(path, "w", encoding="utf-8") as f:
            f.write(defaults.stdout)
        ok = run(["config", "check", path])
        self.assertEqual(ok.returncode, 0, ok.stderr)
        self.assertIn("OK", ok.stdout)
        with open(path, "a", encoding="utf-8") as f:
            f.write("\n[broker]\nno_such_key = 1\n")
        bad = run(["config", "check", path])
        self.assertNotEqual(bad.returncode, 0)
        self.assertRegex(bad.stderr, r"defaults\.conf:\d+: ")


    def test_config_check_refuses_what_the_daemons_refuse_at_start(self):
        # Before, `config check` said OK to each of these files.
        secret = os.path.join(self.stack.dir, "secret-644")
        with open(secret, "w", encoding="utf-8") as f:
            f.write("s3cret\n")
        os.chmod(secret, 0o644)
        cases = (
            ("[staff.eva]\nname = Éva\nchannels = inbox,email\n", "[staff.eva] channels: email needs email = ..."),
            ("[redis]\npassword_file = %s\n" % secret,
             "[redis] password_file %s is accessible by group or others (mode 644); run chmod 600 on it" % secret),
            ("[notifier]\nsmtp_password_file = %s\n" % secret,
             "[notifier] smtp_password_file %s is accessible by group or others (mode 644)" % secret),
            ("[notifier]\ntemplates_dir = %s/no-templates\n" % self.stack.dir,
             "%s/no-templates/match.tpl" % self.stack.dir),
        )
        for i, (text, why) in enumerate(cases):
            self.assert_check_and_daemon_refuse("case-%d.conf" % i, text, "notifier", why)
        os.chmod(secret, 0o600)
        out = run(["config", "check", os.path.join(self.stack.dir, "case-1.conf")])
        self.assertEqual(out.returncode, 0, out.stderr)

    def test_config_check_refuses_template_typos_with_their_file_and_line(self):
        # A "{{" that starts no placeholder was kept as text, so a typo
        # reached staff as written ("{{Category}}"); a digest without its
        # item parts, or with an item's name outside them, sent empty lists.
        def templates(name, edit):
            d = os.path.join(self.stack.dir, name)
            shutil.copytree(os.path.join(SOURCE, "config", "templates"), d)
            for file, (old, new) in edit.items():
                path = os.path.join(d, file)
                with open(path, encoding="utf-8") as f:
                    text = f.read()
                self.assertIn(old, text)
                with open(path, "w", encoding="utf-8") as f:
                    f.write(text.replace(old, new, 1))
            return "[notifier]\ntemplates_dir = %s\n" % d
        subject = "Mise en relation proposée : {{need_title}} — {{category}}"
        with open(os.path.join(SOURCE, "config", "templates", "digest.tpl"), encoding="utf-8") as f:
            digest = f.read()
        cases = (
            ("capital", {"match.tpl": (subject, "Mise en relation : {{Category}}")},
             'match.tpl:7: "{{Category}}" is no placeholder'),
            ("unclosed", {"match.tpl": (subject, "Mise en relation : {{need_title")},
             'match.tpl:7: "{{need_title" is no placeholder'),
            ("no-items", {"digest.tpl": (digest[digest.index("[item_text]"):], "")},
             "digest.tpl: [subject] and [text] are required, and [item_text]"),
            ("item-outside", {"digest.tpl": ("[text]\n", "[text]\n{{item_title}}\n")},
             "digest.tpl:12: unknown placeholder {{item_title}} (item_* names go in [item_text] and [item_html])"),
            ("item-part-elsewhere", {"match.tpl": ("[text]\n", "[item_text]\n{{need_title}}\n[text]\n")},
             "match.tpl:8: [item_text] is a part of digest.tpl only"),
        )
        for name, edit, why in cases:
            self.assert_check_and_daemon_refuse(name + ".conf", templates(name, edit), "notifier", why)
        # Blanks inside the braces, as other template languages allow, are fine.
        path = os.path.join(self.stack.dir, "blanks.conf")
        with open(path, "w", encoding="utf-8") as f:
            f.write(templates("blanks", {"match.tpl": (subject, "Mise en relation : {{ need_title }} — {{category}}")}))
        out = run(["config", "check", path])
        self.assertEqual(out.returncode, 0, out.stderr)

    def test_config_check_refuses_what_the_broker_matcher_and_gateway_refuse_at_start(self):
        # Before, `config check` said OK to each of these files, and the
        # daemon named refused it at start: an operator who followed
        # deploy/README.md (check, then systemctl enable) found out there.
        keys = os.path.join(self.stack.dir, "check-keys")
        os.mkdir(keys)
        self.assertEqual(run(["keygen", "--out", keys, "--name", "broker"]).returncode, 0)
        os.chmod(os.path.join(keys, "broker.key"), 0o644)
        clients = os.path.join(keys, "clients")
        with open(clients, "w", encoding="utf-8") as f:
            f.write("# none yet\n")
        cases = (
            ("[log]\nlevel = verbose\n", "broker", '[log] level = "verbose": expected debug, info, warn or error'),
            ("[broker]\ningest = tcp://0.0.0.0:7450\n", "broker",
             "[broker] ingest = tcp://0.0.0.0:7450: refusing an unauthenticated endpoint beyond loopback"),
            ("[broker]\nfanout = tcp://192.0.2.1:7451\n", "broker",
             "[broker] fanout = tcp://192.0.2.1:7451: refusing an unauthenticated endpoint beyond loopback"),
            # libzmq binds both addresses of "A;B": the second was not checked.
            ("[broker]\ningest = tcp://127.0.0.1:7450;0.0.0.0:7452\n", "broker",
             "[broker] ingest = tcp://127.0.0.1:7450;0.0.0.0:7452: refusing an unauthenticated endpoint beyond "
             "loopback"),
            # libzmq cannot bind a host name: the broker failed at start.
            ("[broker]\ningest = tcp://localhost:7450\n", "broker",
             "[broker] ingest = tcp://localhost:7450: ZeroMQ binds an address or an interface, not a host name: "
             "use tcp://127.0.0.1:7450"),
            ("[broker]\nnetwork = cress normandie\n", "broker",
             '[broker] network = "cress normandie": not a valid id'),
            ("[broker]\ncurve_secret_key_file = %s/broker.key\ncurve_clients_file = %s\n" % (keys, clients),
             "broker", "[broker] curve_secret_key_file %s/broker.key is accessible by group or others" % keys),
            ("[broker]\ncurve_clients_file = %s\n" % clients, "broker",
             "[broker] curve_clients_file is set but curve_secret_key_file is not"),
            ("[matcher]\nthreshold = 0.04\n", "matcher",
             "[matcher] material_change = 0.05: must be below threshold = 0.04"),
            ("[matcher]\ninstance = 2\ninstances = 2\n", "matcher",
             "[matcher] instance = 2: must be below instances = 2"),
            ("[gateway]\nlisten = 0.0.0.0:8080\n", "gateway",
             "[gateway] listen = 0.0.0.0:8080: refusing plain HTTP beyond loopback"),
            ("[gateway]\nlisten = 8080\n", "gateway", '[gateway] listen = "8080": expected HOST:PORT'),
            ("[gateway]\nlisten = 127.0.0.1:+80\n", "gateway", '[gateway] listen = "127.0.0.1:+80": expected HOST:PORT'),
            ("[gateway]\nlisten = 127.0.0.1: 80\n", "gateway", '[gateway] listen = "127.0.0.1: 80": expected HOST:PORT'),
            ("[gateway]\nstaff_network = équipe cress\n", "gateway",
             '[gateway] staff_network = "équipe cress": not a valid id'),
            ("[curve]\nserver_public_key_file = %s/broker.pub\n" % keys, "matcher",
             "[curve] server_public_key_file is set but [curve] client_secret_key_file (or MAILLAGE_CLIENT_KEY) is not"),
        )
        for i, (text, daemon, why) in enumerate(cases):
            self.assert_check_and_daemon_refuse("daemon-case-%d.conf" % i, text, daemon, why)
        # What they accept, the check accepts: a remote listen the operator allowed, CURVE done right.
        os.chmod(os.path.join(keys, "broker.key"), 0o600)
        path = os.path.join(self.stack.dir, "daemon-ok.conf")
        with open(path, "w", encoding="utf-8") as f:
            f.write("[broker]\ningest = tcp://0.0.0.0:7450\nfanout = tcp://0.0.0.0:7451\n"
                    "curve_secret_key_file = %s/broker.key\ncurve_clients_file = %s\n"
                    "[gateway]\nlisten = 0.0.0.0:8080\nallow_plain_http_remote = true\n" % (keys, clients))
        out = run(["config", "check", path])
        self.assertEqual(out.returncode, 0, out.stderr)

    def test_config_check_of_a_machine_without_the_broker_names_its_daemons(self):
        # A matcher's machine connects to a broker elsewhere with its CURVE
        # keys: its [broker] endpoints are beyond loopback and it holds no
        # broker secret. Before, `config check` refused the file the matcher
        # starts with, and the broker's check could not be left out.
        keys = os.path.join(self.stack.dir, "client-keys")
        os.mkdir(keys)
        for name in ("broker", "matcher"):
            self.assertEqual(run(["keygen", "--out", keys, "--name", name]).returncode, 0)
        path = os.path.join(self.stack.dir, "client-only.conf")
        with open(path, "w", encoding="utf-8") as f:
            f.write("[redis]\nurl = %s\n[broker]\ningest = tcp://192.0.2.1:7450\nfanout = tcp://192.0.2.1:7451\n"
                    "[curve]\nclient_secret_key_file = %s/matcher.key\nserver_public_key_file = %s/broker.pub\n"
                    % (self.stack.env["MAILLAGE_REDIS_URL"], keys, keys))
        out = run(["config", "check", path])
        self.assertEqual(out.returncode, 1)
        self.assertIn("maillage-broker would not start: %s:4: [broker] ingest = tcp://192.0.2.1:7450" % path,
                      out.stderr)
        self.assertIn("name the daemons it runs with --daemon", out.stderr)
        for daemons in (["--daemon", "matcher,notifier,gateway"], ["--daemon", "matcher", "--daemon", "gateway"]):
            out = run(["config", "check"] + daemons + [path])
            self.assertEqual(out.returncode, 0, out.stderr)
            self.assertIn(": OK", out.stdout)
        # The matcher starts with it (its producer and subscriber reconnect
        # to a broker that is not there).
        ws = h.Workspace("mg-cli-client-")
        self.addCleanup(ws.close)
        ws.own(h.Daemon(ws.dir, "maillage-matcher", path)).start(ready="matcher: ready")
        out = run(["config", "check", "--daemon", "brokr", path])
        self.assertEqual(out.returncode, 2)
        self.assertIn("--daemon brokr : attendu broker, matcher, notifier ou gateway", out.stderr)
        # The daemons' keys come from their units' environment: the check
        # reads them as they do, and names them when they are wrong.
        out = run(["config", "check", "--daemon", "matcher", path],
                  env=dict(os.environ, MAILLAGE_CLIENT_KEY=os.path.join(keys, "gone.key")))
        self.assertEqual(out.returncode, 1)
        self.assertIn("MAILLAGE_CLIENT_KEY %s/gone.key" % keys, out.stderr)
        with open(path, "w", encoding="utf-8") as f:
            f.write("[broker]\ningest = tcp://192.0.2.1:7450\nfanout = tcp://192.0.2.1:7451\n")
        out = run(["config", "check", "--daemon", "matcher", path],
                  env=dict(os.environ, MAILLAGE_SERVER_KEY=os.path.join(keys, "broker.pub")))
        self.assertEqual(out.returncode, 1)
        self.assertIn("MAILLAGE_SERVER_KEY is set but [curve] client_secret_key_file (or MAILLAGE_CLIENT_KEY) "
                      "is not", out.stderr)
        out = run(["config", "check", "--daemon", "matcher", path],
                  env=dict(os.environ, MAILLAGE_CLIENT_KEY=os.path.join(keys, "matcher.key"),
                           MAILLAGE_SERVER_KEY=os.path.join(keys, "broker.pub")))
        self.assertEqual(out.returncode, 0, out.stderr)

    def test_config_check_and_the_daemons_say_at_which_line_a_value_is_refused(self):
        # Before, these start-up checks named the file only, or nothing.
        cases = (
            ("[log]\nlevel = verbose\n", "broker", 4, '[log] level = "verbose"'),
            ("[redis]\nurl = redis://127.0.0.1:notaport/0\n", "matcher", 4,
             '[redis] url: invalid port in "redis://127.0.0.1:notaport/0"'),
            ("[gateway]\nlisten = 8080\n", "gateway", 4, '[gateway] listen = "8080": expected HOST:PORT'),
            ("[broker]\nnetwork = cress normandie\n", "broker", 4, '[broker] network = "cress normandie"'),
            ("[notifier]\nchat_format = teams\n", "notifier", 4, '[notifier] chat_format: "teams"'),
        )
        for i, (text, daemon, line, why) in enumerate(cases):
            path = os.path.join(self.stack.dir, "line-case-%d.conf" % i)
            self.assert_check_and_daemon_refuse(os.path.basename(path), "# Site.\n\n" + text, daemon,
                                                "%s:%d: %s" % (path, line, why))

    def assert_check_and_daemon_refuse(self, name, text, daemon, why):
        """`config check` refuses the config file `text` (written as `name`)
        saying `why`, and maillage-<daemon> refuses it at start with the same
        words."""
        path = os.path.join(self.stack.dir, name)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        out = run(["config", "check", path])
        self.assertEqual((out.returncode, out.stdout), (1, ""), text)
        self.assertIn(why, out.stderr, text)
        start = subprocess.run([os.path.join(BIN, "maillage-" + daemon), "--config", path],
                               capture_output=True, text=True, timeout=10)
        self.assertEqual(start.returncode, 1, text)
        self.assertIn(why, start.stderr, text)


class PrivateRedisTest(unittest.TestCase):
    """A private redis-server is all these commands need."""

    def setUp(self):
        self.ws = h.Workspace("mg-cli-staff-")
        self.addCleanup(self.ws.close)
        self.redis = self.ws.own(h.Redis(self.ws.dir)).start()
        self.env = dict(os.environ, MAILLAGE_REDIS_URL=self.redis.url)
        self.env.pop("MAILLAGE_CONFIG", None)


class RedisUrlOverrideTest(PrivateRedisTest):
    def test_redis_named_by_flag_or_environment_is_checked_not_the_files(self):
        # Before, the file's own [redis] url was checked first: a file naming
        # a remote Redis without a password failed every command, even one
        # pointed at this machine's Redis with --redis.
        path = self.ws.path("remote-redis.conf")
        with open(path, "w", encoding="utf-8") as f:
            f.write("[redis]\nurl = redis://192.0.2.1:6379/0\n")
        out = run(["staff", "list", "--config", path], env=self.env)
        self.assertEqual(out.returncode, 0, out.stderr)
        env = dict(self.env)
        del env["MAILLAGE_REDIS_URL"]
        out = run(["staff", "list", "--config", path, "--redis", self.redis.url], env=env)
        self.assertEqual(out.returncode, 0, out.stderr)
        out = run(["staff", "list", "--config", path], env=env)
        self.assertEqual(out.returncode, 1)
        self.assertIn("refusing a Redis beyond loopback without a password", out.stderr)


class InboxTest(PrivateRedisTest):
    def test_inbox_of_an_unknown_staff_member_is_an_error(self):
        # Before: "Boîte de réception de nobody : 0 notification", exit 0.
        out = run(["inbox", "nobody"], env=self.env)
        self.assertEqual((out.returncode, out.stdout), (1, ""))
        self.assertEqual(out.stderr, "maillage inbox: chargé·e de mission inconnu·e : « nobody » "
                                     "(voir « maillage staff list »)\n")
        # Known: a staff member, [notifier] default_staff (written even if not
        # declared), or an id whose inbox is left after its removal.
        self.redis.call("SADD", "mg:staff", "eva")
        self.redis.call("ZADD", "mg:inbox:ancien", 1, "n-1")
        for sid in ("eva", "accueil", "ancien"):
            out = run(["inbox", sid], env=self.env)
            self.assertEqual(out.returncode, 0, out.stderr)
            self.assertIn("Boîte de réception", out.stdout)


    def test_inbox_shows_a_persons_failed_sends_beyond_the_newest_of_everyone(self):
        # Before, only the newest --limit of everyone's failures were read,
        # then filtered: eva's older one was never shown.
        self.redis.call("SADD", "mg:staff", "eva", "noe")

        def failed(nid, staff, at):
            self.redis.call("HSET", "mg:notif:" + nid, "staff", staff, "kind", "match", "title", "Titre " + nid,
                            "channel", "email", "state", "failed", "attempts", "5", "created_at", str(at),
                            "last_error", "550 boîte inconnue")
            self.redis.call("ZADD", "mg:notifier:failed", at, nid)
        for i in range(3):
            failed("n-eva-%d" % i, "eva", 1000 + i)
        for i in range(250):
            failed("n-noe-%03d" % i, "noe", 2000 + i)
        for args, want in ((["inbox", "eva"], ["n-eva-2", "n-eva-1", "n-eva-0"]),
                           (["inbox", "eva", "--count", "2"], ["n-eva-2", "n-eva-1"]),
                           (["inbox", "noe", "--limit", "120"], ["n-noe-%03d" % i for i in range(249, 129, -1)])):
            out = run(args, env=self.env)
            self.assertEqual(out.returncode, 0, out.stderr)
            failures = out.stdout.split("Envois en échec :\n")[1]
            self.assertEqual(re.findall(r"^(n-\S+) ", failures, re.M), want, args)
            self.assertIn("dernière erreur : 550 boîte inconnue", failures)


    def test_inbox_pages_by_position_so_new_entries_repeat_nothing(self):
        # Pages were read by rank: each entry written at the top while the
        # command read pushed the next page down one, and the entry ending a
        # page began the next one too.
        self.redis.call("SADD", "mg:staff", "eva", "noe")

        def entry(conn, nid, at):
            conn.call("HSET", "mg:notif:" + nid, "staff", "eva", "kind", "match", "title", "Titre " + nid,
                      "channel", "inbox", "state", "delivered", "created_at", str(at), "read", "0")
            conn.call("ZADD", "mg:inbox:eva", at, nid)
        for i in range(250):
            entry(self.redis, "n-old-%03d" % i, 1000 + i)
        stop = threading.Event()

        def writer():
            conn, i = self.redis._connect(), 0
            while not stop.is_set():
                entry(conn, "n-new-%06d" % i, 10 ** 9 + i)
                i += 1
                time.sleep(0.001)
            conn.sock.close()
        thread = threading.Thread(target=writer)
        thread.start()
        try:
            for _ in range(5):
                out = run(["inbox", "eva", "-n", "100000"], env=self.env)
                self.assertEqual(out.returncode, 0, out.stderr)
                ids = re.findall(r"^(n-\S+) ", out.stdout, re.M)
                self.assertEqual(len(ids), len(set(ids)))
                self.assertEqual([x for x in ids if x.startswith("n-old-")],
                                 ["n-old-%03d" % i for i in range(249, -1, -1)])
        finally:
            stop.set()
            thread.join()
        # Equal scores across pages (failures in one millisecond): each once.
        for i in range(250):
            self.redis.call("HSET", "mg:notif:n-f-%03d" % i, "staff", "noe", "kind", "match", "title", "Titre",
                            "channel", "email", "state", "failed", "attempts", "5", "created_at", "7")
            self.redis.call("ZADD", "mg:notifier:failed", 7, "n-f-%03d" % i)
        out = run(["inbox", "noe", "-n", "300"], env=self.env)
        self.assertEqual(out.returncode, 0, out.stderr)
        failures = out.stdout.split("Envois en échec :\n")[1]
        self.assertEqual(re.findall(r"^(n-\S+) ", failures, re.M), ["n-f-%03d" % i for i in range(249, -1, -1)])


class StaffChannelsTest(PrivateRedisTest):
    """`maillage staff` refuses a channel without its address, whatever the
    order of the edits: the notifier would drop that channel silently."""

    def cli(self, *args):
        return run(["staff"] + list(args), env=self.env)

    def record(self, sid):
        f = self.redis.call("HGETALL", "mg:staff:" + sid)
        return {f[i].decode(): f[i + 1].decode() for i in range(0, len(f), 2)}

    def members(self):
        return sorted(x.decode() for x in self.redis.call("SMEMBERS", "mg:staff"))

    def assert_refused(self, args, line, code=1):
        """Refused, nothing written: 1 for what the records refuse, 2 (a
        usage error) for a value refused by itself."""
        before = (self.members(), {sid: self.record(sid) for sid in ("eva", "noe")})
        out = self.cli(*args)
        self.assertEqual(out.returncode, code, args)
        self.assertEqual(out.stderr, "maillage staff: " + line + "\n", args)
        self.assertEqual(out.stdout, "", args)
        self.assertEqual((self.members(), {sid: self.record(sid) for sid in ("eva", "noe")}), before, args)

    def test_bad_options_are_said_in_one_french_line(self):
        # getopt's English ("option '--name' requires an argument") and the
        # whole help were printed; a negative value read as an option.
        self.assert_refused(("add", "eva", "--name"), "--name : une valeur est attendue (voir « maillage staff --help »)", 2)
        self.assert_refused(("add", "eva", "--name", "Éva", "--bogus"),
                            "option inconnue « --bogus » (voir « maillage staff --help »)", 2)
        self.assert_refused(("set", "eva", "quiet_start", "-1"), "option inconnue « -1 » (voir « maillage staff --help »)", 2)
        for args, said in ((["inbox", "eva", "--full=1"], "--full : aucune valeur attendue"),
                           (["notifications", "--mark-read", "n-abc"], "« --mark-read » ne va pas avec"),
                           (["inbox", "eva", "--full", "-xq"], "option inconnue « -x »")):
            out = run(args, env=self.env)
            self.assertEqual(out.returncode, 2, args)
            self.assertIn(said, out.stderr, args)
        out = run(["inbox", "eva", "--failed"], env=self.env)
        self.assertEqual((out.returncode, out.stderr), (2, "maillage inbox: « --failed » ne va pas avec « maillage inbox » "
                                                            "(voir « maillage inbox --help »)\n"))
        out = run(["dlq", "--count"], env=self.env)  # an operator's command: in French too
        self.assertEqual((out.returncode, out.stderr), (2, "maillage dlq: --count : une valeur est attendue "
                                                            "(voir « maillage dlq --help »)\n"))

    def test_a_threshold_is_read_as_staff_write_it(self):
        # "0,5" (a decimal comma) and "50 %" (as `staff list` shows it) were refused.
        out = self.cli("add", "eva", "--name", "Éva", "--min-score", "0,5")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(self.record("eva")["min_score"], "0.5")
        for value, stored in (("65 %", "0.65"), ("70%", "0.7"), ("72,5\u202f%", "0.725"), ("0.8", "0.8")):
            out = self.cli("set", "eva", "min_score", value)
            self.assertEqual((out.returncode, out.stdout), (0, "eva : min_score = %s\n" % stored), value)
            self.assertEqual(self.record("eva")["min_score"], stored)
        self.assert_refused(("set", "eva", "min_score", "150 %"), "min_score : un nombre de 0 à 1 est attendu, pas « 1.5 »", 2)
        self.assert_refused(("set", "eva", "min_score", "0,5,1"), "min_score : un nombre de 0 à 1 est attendu, pas « 0,5,1 »", 2)

    def test_add_with_a_channel_but_no_address_is_refused(self):
        self.assert_refused(("add", "eva", "--name", "Éva", "--channels", "inbox,email"),
                            "channels : le canal « email » a besoin d'une adresse (--email ADRESSE)")
        self.assert_refused(("add", "eva", "--name", "Éva", "--channels", "webhook", "--email", "eva@example.org"),
                            "channels : le canal « webhook » a besoin d'une URL (--webhook URL)")
        self.assertEqual(self.members(), [])

    def test_add_with_its_address_is_accepted(self):
        out = self.cli("add", "eva", "--name", "Éva", "--email", "eva@example.org", "--channels", "inbox,email")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(out.stdout, "eva ajouté·e.\n")
        self.assertEqual(self.members(), ["eva"])
        self.assertEqual(self.record("eva"), {"name": "Éva", "email": "eva@example.org", "channels": "inbox,email",
                                              "origin": "cli"})
        show = self.cli("show", "eva")
        self.assertEqual(show.returncode, 0, show.stderr)
        self.assertRegex(show.stdout, r"\n  canaux \(channels\) +boîte de réception, e-mail\n")

    def test_set_channels_without_the_address_in_the_record_is_refused(self):
        out = self.cli("add", "eva", "--name", "Éva", "--email", "eva@example.org", "--channels", "inbox,email")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assert_refused(("set", "eva", "channels", "webhook"),
                            "channels : le canal « webhook » a besoin d'une URL, et eva n'en a pas "
                            "(l'ajouter d'abord : « maillage staff set eva webhook URL »)")
        out = self.cli("add", "noe", "--name", "Noé")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assert_refused(("set", "noe", "channels", "inbox,email"),
                            "channels : le canal « email » a besoin d'une adresse, et noe n'en a pas "
                            "(l'ajouter d'abord : « maillage staff set noe email ADRESSE »)")
        # The address first, then the channel: accepted.
        for key, value in (("webhook", "https://chat.example.org/hooks/eva"), ("channels", "email,webhook")):
            out = self.cli("set", "eva", key, value)
            self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(self.record("eva")["channels"], "email,webhook")

    def test_emptying_the_address_of_an_active_channel_is_refused(self):
        out = self.cli("add", "eva", "--name", "Éva", "--email", "eva@example.org", "--webhook",
                       "https://chat.example.org/hooks/eva", "--channels", "inbox,email,webhook")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assert_refused(("set", "eva", "email", ""),
                            "email : une adresse est nécessaire tant que le canal « email » est actif pour eva "
                            "(le retirer d'abord : « maillage staff set eva channels inbox,webhook »)")
        self.assert_refused(("set", "eva", "webhook", ""),
                            "webhook : une URL est nécessaire tant que le canal « webhook » est actif pour eva "
                            "(le retirer d'abord : « maillage staff set eva channels inbox,email »)")
        # The channel first, then the address: accepted.
        for key, value in (("channels", "inbox"), ("email", ""), ("webhook", "")):
            out = self.cli("set", "eva", key, value)
            self.assertEqual(out.returncode, 0, out.stderr)

    def test_show_and_list_say_a_channel_without_address_is_inactive(self):
        # Written by hand, or by a version that let it through.
        self.redis.call("SADD", "mg:staff", "eva", "noe")
        self.redis.call("HSET", "mg:staff:eva", "name", "Éva", "channels", "email")
        self.redis.call("HSET", "mg:staff:noe", "name", "Noé", "channels", "inbox,webhook", "webhook", "")
        out = self.cli("show", "eva")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertRegex(out.stdout, r"\n  e-mail \(email\) +non renseigné\n")
        # No channel left active: the notifier writes to the inbox, and says so.
        self.assertRegex(out.stdout, r"\n  canaux \(channels\) +e-mail \(sans adresse : canal inactif\) ; "
                                     r"à défaut : boîte de réception\n")
        out = self.cli("show", "noe")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertRegex(out.stdout,
                         r"\n  canaux \(channels\) +boîte de réception, webhook \(sans URL : canal inactif\)\n")
        out = self.cli("list")
        self.assertEqual(out.returncode, 0, out.stderr)
        rows = {l.split()[0]: l for l in out.stdout.splitlines()}
        self.assertIn("  e-mail (sans adresse : canal inactif) ; à défaut : boîte de réception  ", rows["eva"])
        self.assertIn("  boîte de réception, webhook (sans URL : canal inactif)  ", rows["noe"])
        # Another key may still be edited; the address then makes the channel work.
        out = self.cli("set", "eva", "departments", "14")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(out.stderr, "maillage staff: attention : le canal « email » reste inactif pour eva, sans "
                                     "adresse (« maillage staff set eva email ADRESSE »)\n")
        self.assertEqual(self.record("eva")["departments"], "14")
        out = self.cli("set", "eva", "email", "eva@example.org")
        self.assertEqual(out.returncode, 0, out.stderr)
        out = self.cli("show", "eva")
        self.assertRegex(out.stdout, r"\n  canaux \(channels\) +e-mail\n")
        # No channel at all: the inbox too.
        out = self.cli("set", "eva", "channels", "")
        self.assertEqual(out.returncode, 0, out.stderr)
        out = self.cli("show", "eva")
        self.assertRegex(out.stdout, r"\n  canaux \(channels\) +aucun ; à défaut : boîte de réception\n")

    def test_unknown_departments_and_categories_are_refused(self):
        # Before, the person was added and silently received nothing of them.
        deps = "département inconnu « %s » (14, 27, 50, 61, 76)"
        cats = ("catégorie inconnue « %s » (locaux, financement, competences, emploi_partage, achats, "
                "logistique, materiel, formation, benevolat, numerique, communication, accompagnement)")
        self.assert_refused(("add", "eva", "--name", "Éva", "--categories", "locaux,lcoaux"),
                            "categories : " + cats % "lcoaux", 2)
        self.assert_refused(("add", "eva", "--name", "Éva", "--departments", "14 35"), "departments : " + deps % "35", 2)
        self.assertEqual(self.cli("add", "noe", "--name", "Noé", "--departments", "14,50",
                                  "--categories", "locaux").returncode, 0)
        self.assert_refused(("set", "noe", "departments", "Calvados"), "departments : " + deps % "Calvados", 2)
        self.assert_refused(("set", "noe", "categories", "locaux Locaux"), "categories : " + cats % "Locaux", 2)
        out = self.cli("set", "noe", "departments", "27\t76")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(self.record("noe")["departments"], "27\t76")

    def test_add_refuses_an_existing_id_and_record_options_go_only_with_add(self):
        # Before, add merged into the record and said "ajouté·e"; set, remove
        # and list ignored the record's options without a word.
        self.assertEqual(self.cli("add", "eva", "--name", "Éva", "--departments", "14").returncode, 0)
        self.assert_refused(("add", "eva", "--name", "Éva Martin", "--email", "eva@example.org"),
                            "« eva » existe déjà ; utilisez « maillage staff set eva CLÉ VALEUR »")
        for args, line in ((("set", "eva", "mode", "digest", "--digest-hour", "7"),
                            "set : --digest-hour ne va qu'avec add ; une clé à la fois : "
                            "« maillage staff set eva digest_hour 7 »"),
                           (("remove", "eva", "--name", "Éva"), "remove : --name ne va qu'avec add"),
                           (("list", "--categories", "locaux"), "list : --categories ne va qu'avec add")):
            before = self.record("eva")
            out = self.cli(*args)
            self.assertEqual((out.returncode, out.stdout, out.stderr), (2, "", "maillage staff: " + line + "\n"))
            self.assertEqual(self.record("eva"), before)
        self.assertEqual(self.record("eva")["name"], "Éva")
        self.assertEqual(self.members(), ["eva"])

    def test_add_refuses_options_that_mean_something_only_together(self):
        # Before, a digest hour without the digest mode was stored and never
        # used, and a quiet start alone meant "until 0 h".
        self.assert_refused(("add", "eva", "--name", "Éva", "--digest-hour", "7"),
                            "add : --digest-hour ne sert qu'avec --mode digest (l'heure du récapitulatif "
                            "quotidien)", 2)
        self.assert_refused(("add", "eva", "--name", "Éva", "--mode", "immediate", "--digest-hour", "7"),
                            "add : --digest-hour ne sert qu'avec --mode digest (l'heure du récapitulatif "
                            "quotidien)", 2)
        for flag in ("--quiet-start", "--quiet-end"):
            self.assert_refused(("add", "eva", "--name", "Éva", flag, "22"),
                                "add : --quiet-start et --quiet-end vont ensemble (les heures de silence, de H "
                                "à H)", 2)
        out = self.cli("add", "eva", "--name", "Éva", "--mode", "digest", "--digest-hour", "7",
                       "--quiet-start", "22", "--quiet-end", "7")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual({k: self.record("eva")[k] for k in ("mode", "digest_hour", "quiet_start", "quiet_end")},
                         {"mode": "digest", "digest_hour": "7", "quiet_start": "22", "quiet_end": "7"})

    def test_channels_split_on_commas_spaces_and_tabs_as_the_notifier_does(self):
        out = self.cli("add", "eva", "--name", "Éva", "--email", "eva@example.org")
        self.assertEqual(out.returncode, 0, out.stderr)
        out = self.cli("set", "eva", "channels", "inbox\temail")
        self.assertEqual(out.returncode, 0, out.stderr)
        out = self.cli("show", "eva")
        self.assertRegex(out.stdout, r"\n  canaux \(channels\) +boîte de réception, e-mail\n")
        self.assert_refused(("set", "eva", "channels", "inbox\tsms"),
                            "channels : canal inconnu « sms » (inbox, email, webhook)", 2)


class UpDownTest(unittest.TestCase):
    def test_down_stops_everything_and_is_idempotent(self):
        stack = Stack()
        pids = stack.pids()
        self.assertIn("redis", pids)
        self.assertIn("broker", pids)
        r = stack.down()
        self.assertEqual(r.returncode, 0, r.stderr)
        for name, pid in pids.items():
            self.assertFalse(alive(pid), name)
        self.assertEqual([n for n in os.listdir(stack.dir) if n.endswith(".pid")], [])
        self.assertFalse(os.path.exists(os.path.join(stack.dir, "endpoints.env")))
        again = stack.down()
        self.assertEqual(again.returncode, 0)
        self.assertIn("rien ne tournait", again.stderr)
        stack.close()

    def test_the_use_line_of_endpoints_env_gives_every_command_the_stacks_configuration(self):
        # Before, the line (and README, `maillage --help`) exported only the
        # three endpoints: commands ran with the built-in configuration, so a
        # category added with `up --with` was "catégorie inconnue".
        stack = Stack(with_conf="[categories]\nlocaux = Locaux\ntiers_lieux = Tiers-lieux\n")
        self.addCleanup(stack.close)
        with open(os.path.join(stack.dir, "endpoints.env"), encoding="utf-8") as f:
            use = next(line for line in f if line.startswith("# Use: "))[len("# Use: "):].strip()
        env = {k: v for k, v in os.environ.items() if not k.startswith("MAILLAGE_")}
        script = "cd %s && %s && %s staff add eva --name Eva --categories tiers_lieux" % (stack.dir, use, CLI)
        r = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("eva ajouté·e.", r.stdout)
        self.assertIn("export MAILLAGE_CONFIG MAILLAGE_REDIS_URL MAILLAGE_INGEST MAILLAGE_FANOUT",
                      " ".join(run(["--help"]).stdout.split()))

    def test_up_with_a_file_it_cannot_use_starts_nothing(self):
        # Before, `up` started a redis-server, then read the --with file and
        # refused it, then stopped the redis-server again.
        d = tempfile.mkdtemp(prefix="mg-up-with-")
        self.addCleanup(shutil.rmtree, d, True)
        bad = os.path.join(d, "bad.conf")
        with open(bad, "w", encoding="utf-8") as f:
            f.write("[nowhere]\nkey = 1\n")
        for path, why in ((os.path.join(d, "missing.conf"), "impossible de lire"),
                          (bad, "--with refusé : %s:1: " % bad)):  # its own line, not the generated file's
            r = run(["up", "--dir", os.path.join(d, "stack"), "--with", path])
            self.assertEqual(r.returncode, 1, r.stderr)
            self.assertIn(why, r.stderr)
            self.assertNotIn("redis", [n.split(".")[0] for n in os.listdir(os.path.join(d, "stack"))])

    def test_a_daemon_that_died_is_named_by_up_and_down(self):
        # Before, `up` named only the Redis still running ("already
        # running ... (redis, pid N)") and `down` tidied the dead broker up in
        # silence: nothing said a daemon had crashed.
        stack = Stack()
        self.addCleanup(stack.close)
        pids = stack.pids()
        os.kill(pids["broker"], 9)
        h.wait_until(lambda: not alive(pids["broker"]), what="the broker's end")
        again = run(["up", "--dir", stack.dir])
        self.assertNotEqual(again.returncode, 0)
        self.assertIn("(redis pid %d, " % pids["redis"], again.stderr)
        self.assertIn(" ; arrêtés depuis, voir leurs journaux : broker)", again.stderr)
        self.assertNotIn("broker pid", again.stderr)
        r = stack.down()
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("maillage-broker (pid %d) était déjà arrêté ; voir %s/broker.log"
                      % (pids["broker"], stack.dir), r.stdout)

    def test_a_redis_started_by_hand_on_the_stack_is_neither_doubled_nor_left(self):
        # The stack's Redis stopped and was started again by hand on its
        # config: `down` said "redis-server (pid N) était déjà arrêté" and left
        # it serving the stack's data; `up` then started a second Redis on the
        # same AOF and socket, which the first removed when it stopped.
        stack = Stack()
        self.addCleanup(stack.close)
        pids = stack.pids()
        for name, pid in pids.items():
            os.kill(pid, signal.SIGTERM)
        for name, pid in pids.items():
            h.wait_until(lambda: not alive(pid), what="the end of " + name)
        by_hand = subprocess.Popen(["redis-server", os.path.join(stack.dir, "redis.conf")],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.addCleanup(lambda: by_hand.poll() is None and by_hand.kill())
        socket_path = os.path.join(stack.dir, "redis.sock")

        def pong():
            try:
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                    s.connect(socket_path)
                    return h._Resp(s).call("PING") == "PONG"
            except (OSError, h.RedisError):
                return False
        h.wait_until(pong, 10, what="the Redis started by hand")
        refused = run(["up", "--dir", stack.dir])
        self.assertEqual(refused.returncode, 1, refused.stderr)
        self.assertIn("un Redis répond déjà sur %s sans que cette pile l'ait démarré" % socket_path, refused.stderr)
        r = stack.down()
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("redis-server (sans fichier pid, sur %s) arrêté" % socket_path, r.stdout)
        self.assertEqual(by_hand.wait(timeout=10), 0)
        again = run(["up", "--dir", stack.dir])
        self.assertEqual(again.returncode, 0, again.stderr)

    def test_down_stops_a_redis_server_program_of_another_name(self):
        # Before: "pid N in DIR/redis.pid is not redis-server any more; not
        # signalled", and that Redis kept running.
        bindir = tempfile.mkdtemp(prefix="mg-cli-bin-")
        self.addCleanup(shutil.rmtree, bindir, ignore_errors=True)
        program = os.path.join(bindir, "kv-store")
        os.symlink(shutil.which("redis-server"), program)
        stack = Stack(redis_server=program)
        self.addCleanup(stack.close)
        pids = stack.pids()
        self.addCleanup(lambda: [os.kill(pid, 9) for pid in pids.values() if alive(pid)])
        r = stack.down()
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn("aucun signal envoyé", r.stderr)
        self.assertIn("redis-server arrêté (pid %d)" % pids["redis"], r.stdout)
        for name, pid in pids.items():
            self.assertFalse(alive(pid), name)

    def test_up_restarts_on_the_same_directory_with_the_journal_kept(self):
        stack = Stack()
        try:
            event_id = "t-" + uuid.uuid4().hex[:12]
            path = os.path.join(stack.dir, "one.ndjson")
            with open(path, "w", encoding="utf-8") as f:
                f.write(need_line(event_id) + "\n")
            self.assertEqual(stack.cli(["emit", path]).returncode, 0)
            # A browser's keep-alive connection, closed by the stopping
            # gateway: its port lingers in TIME_WAIT for a minute.
            browser = http.client.HTTPConnection(stack.endpoints["MAILLAGE_HTTP"][len("http://"):], timeout=5)
            browser.request("GET", "/healthz")
            self.assertEqual(browser.getresponse().read(), b'{"status":"ok"}')
            self.assertEqual(stack.down().returncode, 0)
            browser.close()
            stack2_up = run(["up", "--dir", stack.dir])
            self.assertEqual(stack2_up.returncode, 0, stack2_up.stderr)
            env = dict(stack.env)
            again = read_env_file(os.path.join(stack.dir, "endpoints.env"))
            # The same ports (they are free again): links already sent to
            # staff, and scripts, keep working.
            for key in ("MAILLAGE_REDIS_URL", "MAILLAGE_INGEST", "MAILLAGE_FANOUT", "MAILLAGE_HTTP"):
                self.assertEqual(again[key], stack.endpoints[key], key)
            env.update(again)
            r = run(["emit", path], env=env)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn(event_id + " duplicate seq=1", r.stdout)  # AOF kept the journal
        finally:
            stack.close()


class RedisOutageTest(unittest.TestCase):
    @staticmethod
    def kill_redis_and_write_needs(stack, ids):
        """Kill the stack's Redis (the broker then answers UNAVAILABLE) and
        write a file of one need per id; returns its path."""
        redis_pid = stack.pids()["redis"]
        os.kill(redis_pid, 9)
        while alive(redis_pid):
            time.sleep(0.01)
        path = os.path.join(stack.dir, "outage.ndjson")
        with open(path, "w", encoding="utf-8") as f:
            f.write("\n".join(need_line(i) for i in ids) + "\n")
        return path

    def test_emit_waits_out_a_redis_outage_and_every_event_is_accepted(self):
        stack = Stack()
        try:
            ids = ["t-%s-%d" % (uuid.uuid4().hex[:8], i) for i in range(20)]
            path = self.kill_redis_and_write_needs(stack, ids)
            emit = subprocess.Popen([CLI, "emit", "--timeout", "30", path], env=stack.env,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            time.sleep(1.0)  # the broker answers UNAVAILABLE meanwhile
            self.assertIsNone(emit.poll())
            # Redis comes back on the same socket and data directory.
            with open(os.path.join(stack.dir, "redis.log"), "a", encoding="utf-8") as log:
                redis = subprocess.Popen(["redis-server", os.path.join(stack.dir, "redis.conf")],
                                         stdout=log, stderr=log, start_new_session=True)
            with open(os.path.join(stack.dir, "redis.pid"), "w", encoding="utf-8") as f:
                f.write("%d\n" % redis.pid)
            out, err = emit.communicate(timeout=40)
            self.assertEqual(emit.returncode, 0, err)
            self.assertIn("unavailable", err)
            self.assertEqual(sorted(l.split()[0] for l in out.splitlines() if " accepted seq=" in l), sorted(ids))
            # Journaled in the order of the file: each event sent again on
            # its own backoff came in any order (a need's update before its
            # report, which then overwrote it).
            seq = {l.split()[0]: int(l.split("seq=")[1]) for l in out.splitlines() if " accepted seq=" in l}
            self.assertEqual(sorted(ids, key=seq.get), ids)
        finally:
            stack.close()

    def test_emit_gives_up_after_its_timeout_while_the_journal_stays_unavailable(self):
        # The broker answers UNAVAILABLE as long as Redis is down. Each
        # answer restarted --timeout, so emit (a cron job) waited as long as
        # the outage lasted; it now gives up after --timeout and says why.
        stack = Stack()
        try:
            path = self.kill_redis_and_write_needs(stack, ["t-%s-%d" % (uuid.uuid4().hex[:8], i) for i in range(3)])
            started = time.monotonic()
            r = run(["emit", "--timeout", "3", path], env=stack.env, timeout=30)
            self.assertLess(time.monotonic() - started, 15)
            self.assertEqual(r.returncode, 1, r.stderr)
            self.assertEqual(r.stderr.count("journal du broker est encore indisponible après 3 s"), 3, r.stderr)
            self.assertIn("3 sans réponse (dont 3 retenus par le broker", r.stderr)
        finally:
            stack.close()


    def test_emit_with_more_lines_than_its_window_ends_during_a_long_outage(self):
        # An unavailable journal stalls the emitter (no new line, one probe):
        # when the events held back timed out, the stall must end too, or
        # the lines beyond the window were never read and emit waited for
        # good.
        stack = Stack()
        try:
            path = self.kill_redis_and_write_needs(stack, ["t-%s-%d" % (uuid.uuid4().hex[:8], i) for i in range(3)])
            r = run(["emit", "--timeout", "2", "--window", "1", path], env=stack.env, timeout=30)
            self.assertEqual(r.returncode, 1, r.stderr)
            self.assertEqual(r.stderr.count("journal du broker est encore indisponible après 2 s"), 3, r.stderr)
        finally:
            stack.close()

    def test_an_event_the_broker_stops_answering_is_not_blamed_on_the_journal(self):
        # It answered UNAVAILABLE, then went quiet (stopped): the event was
        # reported "journal still unavailable", which was no longer known.
        stack = Stack()
        broker_pid = stack.pids()["broker"]
        try:
            path = self.kill_redis_and_write_needs(stack, ["t-%s" % uuid.uuid4().hex[:8]])
            emit = subprocess.Popen([CLI, "emit", "--timeout", "5", "--retry-ms", "300", path], env=stack.env,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            time.sleep(1.0)  # answered UNAVAILABLE meanwhile
            os.kill(broker_pid, signal.SIGSTOP)
            _, err = emit.communicate(timeout=30)
            self.assertEqual(emit.returncode, 1, err)
            self.assertIn("le broker répond « unavailable »", err)
            self.assertIn("pas de réponse du broker après 5 s", err)
            self.assertNotIn("encore indisponible", err)
        finally:
            os.kill(broker_pid, signal.SIGCONT)
            stack.close()


class DemoDatasetTest(unittest.TestCase):
    def assert_no_contact_in_logs(self, stack, lines):
        """Personal data never reaches a log: after the whole dataset went
        through every daemon of the stack, no contact name, e-mail or phone
        of the dataset appears in any of their logs (the logs are searched
        once the notifier, the last consumer, has gone quiet)."""
        contacts = set()
        for line in lines:
            env = json.loads(line)
            for body in env.values():
                if isinstance(body, dict) and isinstance(body.get("structure"), dict):
                    contact = body["structure"].get("contact", {})
                    contacts.update(v for k, v in contact.items() if k in ("name", "email", "phone"))
        self.assertGreater(len(contacts), 20)
        logs = [os.path.join(stack.dir, n) for n in os.listdir(stack.dir) if n.endswith(".log")]
        self.assertGreaterEqual(len(logs), 2)
        previous = None
        for _ in range(40):  # until the logs stop growing
            sizes = [os.path.getsize(p) for p in logs]
            if sizes == previous:
                break
            previous = sizes
            time.sleep(0.25)
        for path in logs:
            with open(path, encoding="utf-8", errors="replace") as f:
                text = f.read()
            leaked = sorted(c for c in contacts if c in text)
            self.assertEqual(leaked, [], "personal data in %s" % path)

    def test_every_line_of_the_demo_dataset_is_accepted(self):
        with open(DEMO, encoding="utf-8") as f:
            lines = [l for l in f if l.strip()]
        stack = Stack()
        try:
            r = stack.cli(["emit", DEMO])
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            acks = r.stdout.splitlines()
            self.assertEqual(len(acks), len(lines))
            self.assertTrue(all(" accepted seq=" in a for a in acks), [a for a in acks if "accepted" not in a])
            # The dataset's own events, counted from the journal (the matcher,
            # when built, adds its match.found and closures after them).
            journal = stack.cli(["journal"]).stdout.splitlines()
            ids = {json.loads(l)["eventId"] for l in lines}
            self.assertEqual(ids, {json.loads(l)["eventId"] for l in journal} & ids)
            summary = stack.cli(["journal", "--summary"]).stdout
            self.assertIn("14 Calvados · 27 Eure · 50 Manche · 61 Orne · 76 Seine-Maritime", summary)
            # Needs and offers in every category of the default taxonomy.
            needs, offers = summary.split("Besoins ouverts")[1].split("Offres ouvertes")
            offers = offers.split("Structures par famille")[0]
            for label in ("Locaux", "Financement", "Compétences", "Emploi partagé", "Achats",
                          "Logistique", "Matériel", "Formation", "Bénévolat", "Outils numériques",
                          "Communication", "Accompagnement"):
                for table in (needs, offers):
                    row = [l for l in table.splitlines() if l.strip().startswith(label)]
                    self.assertTrue(row and row[0].split()[-1] != "·", (label, table))
            self.assert_no_contact_in_logs(stack, lines)
        finally:
            stack.close()


if __name__ == "__main__":
    unittest.main()
