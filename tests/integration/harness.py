"""Shared harness of the integration tests: real servers, real daemons.

What it provides, for every test module to reuse:

- ``Redis``: a private redis-server (AOF on: appendonly yes, appendfsync
  everysec by default) on a free loopback port or a unix socket in a temp
  directory; ``stop()`` (SHUTDOWN NOSAVE, which still flushes the AOF),
  ``kill()`` (SIGKILL), ``start()`` again on the same port and directory, and
  ``call(*args)``: a tiny blocking RESP client (python3-redis is not part of
  the stack).
- ``Daemon``: a Maillage program from MAILLAGE_BIN started with a generated
  configuration file, stderr captured to a file, readiness awaited on a log
  line, stopped by pid.
- ``write_config()``: the INI file from a dict of sections.
- ``IngestClient``: a producer (python3-zmq DEALER) speaking the ingest
  protocol (one frame out: Envelope, one frame back: Ack), with the
  generated ``maillage.v1`` classes from build/python.
- ``Subscriber``: a SUB on the fan-out ([type][seq 8 bytes BE][Envelope]).
- ``need_reported()`` and friends: valid envelopes for tests.

Every process started here is stopped by its pid in ``close()``/``stop()``;
``Workspace`` ties them to one temporary directory removed at the end.
"""

import fcntl
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
import uuid

import zmq

from maillage.v1 import envelope_pb2, events_pb2  # noqa: F401  (generated, build/python)

SOURCE = os.environ.get("MAILLAGE_SOURCE") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("MAILLAGE_BUILD") or os.path.join(SOURCE, "build")
BIN = os.environ.get("MAILLAGE_BIN") or os.path.join(BUILD, "bin")

Envelope = envelope_pb2.Envelope
Ack = envelope_pb2.Ack

ACCEPTED = Ack.STATUS_ACCEPTED
DUPLICATE = Ack.STATUS_DUPLICATE
REJECTED = Ack.STATUS_REJECTED
UNAVAILABLE = Ack.STATUS_UNAVAILABLE


def _ephemeral_low():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


_port_rng = random.Random(os.getpid() ^ time.monotonic_ns())
PORT_SLOTS = 16
_port_slot = None  # (lo, hi, lock fd): the share of ports this process owns
_ports_given = set()


def _own_port_range():
    """The range of ports this process draws from: one of PORT_SLOTS shares of
    the ports below the ephemeral range, held with an flock for the life of
    the process, so parallel test processes never draw the same port (a port
    checked free is not bound until the daemon starts, and a restarted daemon
    binds its port again). With every share held, the whole range."""
    global _port_slot
    if _port_slot is None:
        hi = _ephemeral_low() - 1
        lo = 10000 if hi - 10000 >= 1000 else 1024
        size = (hi - lo + 1) // PORT_SLOTS
        _port_slot = (lo, hi, None)
        lockdir = os.path.join(tempfile.gettempdir(), "maillage-test-ports-%d" % os.getuid())
        os.makedirs(lockdir, exist_ok=True)
        for k in _port_rng.sample(range(PORT_SLOTS), PORT_SLOTS):
            fd = os.open(os.path.join(lockdir, "share-%d" % k), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            _port_slot = (lo + k * size, lo + (k + 1) * size - 1, fd)
            break
    return _port_slot[0], _port_slot[1]


def _forget_port_share():
    """In a forked child: its own share and draws, not its parent's."""
    global _port_slot
    _port_slot = None
    _ports_given.clear()
    _port_rng.seed(os.getpid() ^ time.monotonic_ns())


os.register_at_fork(after_in_child=_forget_port_share)


def free_port():
    """A TCP port free on 127.0.0.1 right now, never handed out before by this
    process nor by any other test process running beside it (see
    _own_port_range()). It is drawn below the kernel's ephemeral range: a port
    from bind(0) may be taken, before the daemon binds it, as the source port
    of any outgoing connection (parallel tests make plenty); ports below the
    range are never handed out that way."""
    lo, hi = _own_port_range()
    if len(_ports_given) >= (hi - lo + 1) // 2:
        _ports_given.clear()  # a long run: the earliest ports are long closed
    for _ in range(200):
        port = _port_rng.randint(lo, hi)
        if port in _ports_given:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _ports_given.add(port)
        return port
    raise RuntimeError("no free port below the ephemeral range")


def wait_until(predicate, timeout=5.0, interval=0.02, what="condition"):
    """Poll predicate() until it returns a true value; return that value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError("timed out waiting for " + what)
        time.sleep(interval)


def settle(redis, names, timeout=30.0, quiet=0.5, empty=(("HLEN", "mg:matcher:outbox"),), tick=None):
    """Until the consumers `names` completed the whole journal, every (command,
    key) of `empty` counts 0 (the matcher's outbox by default), and nothing
    moved for `quiet` seconds; returns the journal's head. `tick()` runs at
    each look (to drain a socket, say)."""
    deadline = time.monotonic() + timeout
    last, since = None, time.monotonic()
    while True:
        if tick:
            tick()
        head = int(redis.call("GET", "mg:journal:seq") or 0)
        positions = tuple(int(redis.call("HGET", "mg:consumer:" + n, "seq") or 0) for n in names)
        counts = tuple(int(redis.call(command, key) or 0) for command, key in empty)
        state = (head, positions, counts)
        if state != last:
            last, since = state, time.monotonic()
        elif all(p >= head for p in positions) and not any(counts) and time.monotonic() - since >= quiet:
            return head
        if time.monotonic() > deadline:
            raise TimeoutError("the stack did not settle: head %d, positions %s, counts %s" % state)
        time.sleep(0.05)


# ---- Redis -----------------------------------------------------------------

class RedisError(Exception):
    pass


class _Resp:
    """A minimal blocking RESP2 client: enough for tests to look at keys."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("redis closed the connection")
        self.buf += chunk

    def _line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n):
        while len(self.buf) < n + 2:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def read(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RedisError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self._exact(n)
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self.read() for _ in range(n)]
        raise RedisError("unexpected reply %r" % line)

    def call(self, *args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            if isinstance(a, str):
                a = a.encode()
            elif isinstance(a, int):
                a = str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        self.sock.sendall(b"".join(out))
        return self.read()


class Redis:
    """A private redis-server with AOF, on a free port (or a unix socket)."""

    def __init__(self, directory, unix=False, appendfsync="everysec", password=None):
        self.dir = os.path.join(directory, "redis")
        os.makedirs(self.dir, exist_ok=True)
        self.unix = unix
        self.port = 0 if unix else free_port()
        self.socket_path = os.path.join(self.dir, "redis.sock") if unix else None
        self.appendfsync = appendfsync
        self.password = password
        self.proc = None
        self._client = None

    @property
    def url(self):
        if self.unix:
            return "unix://" + self.socket_path
        return "redis://127.0.0.1:%d/0" % self.port

    def _write_conf(self):
        lines = [
            "bind 127.0.0.1",
            "port %d" % self.port,
            "dir %s" % self.dir,
            "appendonly yes",
            "appendfsync %s" % self.appendfsync,
            'save ""',
            "daemonize no",
            "protected-mode yes",
            "logfile %s" % os.path.join(self.dir, "redis.log"),
        ]
        if self.unix:
            lines += ["unixsocket %s" % self.socket_path, "unixsocketperm 700"]
        if self.password:
            lines.append("requirepass %s" % self.password)
        path = os.path.join(self.dir, "redis.conf")
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        return path

    def _connect(self):
        if self.unix:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(self.socket_path)
            except OSError:
                s.close()
                raise
        else:
            s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        s.settimeout(5)
        client = _Resp(s)
        if self.password:
            client.call("AUTH", self.password)
        return client

    def start(self, timeout=10.0):
        """Start (or restart, on the same port and data) and wait for PING."""
        assert self.proc is None, "redis already running"
        conf = self._write_conf()
        self.proc = subprocess.Popen(["redis-server", conf], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def ready():
            if self.proc.poll() is not None:
                raise RuntimeError("redis-server exited: " + self.log())
            try:
                c = self._connect()
                try:
                    # LOADING while the AOF is replayed: not ready yet.
                    return c.call("PING") == "PONG"
                finally:
                    c.sock.close()
            except (OSError, RedisError):
                return False
        wait_until(ready, timeout, what="redis-server to answer PING")
        return self

    def log(self):
        try:
            with open(os.path.join(self.dir, "redis.log")) as f:
                return f.read()[-4000:]
        except OSError:
            return ""

    def call(self, *args):
        """Run one command on a persistent connection (reconnecting after a
        restart). Returns the decoded reply: str, int, bytes, list or None."""
        for attempt in (0, 1):
            try:
                if self._client is None:
                    self._client = self._connect()
                return self._client.call(*args)
            except (OSError, ConnectionError):
                self._drop_client()
                if attempt:
                    raise

    def _drop_client(self):
        if self._client is not None:
            try:
                self._client.sock.close()
            except OSError:
                pass
        self._client = None

    def stop(self, timeout=10.0):
        """SHUTDOWN NOSAVE (the AOF is still flushed and fsynced) and wait."""
        if self.proc is None:
            return
        self._drop_client()
        try:
            c = self._connect()
            try:
                c.call("SHUTDOWN", "NOSAVE")
            except (ConnectionError, OSError, RedisError):
                pass
            c.sock.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def kill(self):
        """SIGKILL: what an OOM kill or a power cut looks like."""
        if self.proc is None:
            return
        self._drop_client()
        self.proc.kill()
        self.proc.wait()
        self.proc = None

    def close(self):
        self.stop()


# ---- daemons ---------------------------------------------------------------

def set_clock(path, offset_ms):
    """Move the daemons started with MAILLAGE_CLOCK_FILE=`path` to `offset_ms`
    from now (they re-read it within 20 ms). Written whole, then renamed, so a
    daemon never reads a half-written offset."""
    with open(path + ".tmp", "w") as f:
        f.write("%d\n" % offset_ms)
    os.replace(path + ".tmp", path)


def write_config(path, sections):
    """Write an INI file from {section: {key: value}} (values str()'d)."""
    with open(path, "w") as f:
        for section, keys in sections.items():
            f.write("[%s]\n" % section)
            for key, value in keys.items():
                if isinstance(value, bool):
                    value = "true" if value else "false"
                f.write("%s = %s\n" % (key, value))
            f.write("\n")
    return path


class Daemon:
    """One Maillage program, its stderr in DIR/<name>.log."""

    def __init__(self, directory, program, config_path=None, args=(), env=None):
        self.program = program
        self.path = os.path.join(BIN, program)
        self.config_path = config_path
        self.args = list(args)
        self.env = env
        self.log_path = os.path.join(directory, "%s.%s.log" % (program, uuid.uuid4().hex[:6]))
        self.proc = None

    def start(self, ready=None, timeout=10.0):
        """Start; if `ready` (a substring) is given, wait until it appears
        in the log. Raises with the log if the program exits meanwhile."""
        argv = [self.path]
        if self.config_path:
            argv += ["--config", self.config_path]
        argv += self.args
        self._log = open(self.log_path, "wb")
        env = dict(os.environ)
        if self.env:
            env.update(self.env)
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT, env=env)
        if ready:
            self.wait_log(ready, timeout)
        return self

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def wait_log(self, text, timeout=10.0, count=1):
        def seen():
            if self.log().count(text) >= count:
                return True
            if self.proc.poll() is not None:
                raise RuntimeError("%s exited with %s before logging %r:\n%s"
                                   % (self.program, self.proc.returncode, text, self.log()))
            return False
        wait_until(seen, timeout, what="%r in the %s log" % (text, self.program))

    def send_signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, sig=signal.SIGTERM, timeout=10.0):
        """Send `sig` and wait; returns the exit code (kills after timeout)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        rc = self.proc.returncode
        self._log.close()
        self.proc = None
        return rc

    def close(self):
        self.stop(signal.SIGTERM, timeout=5.0)


def run_program(program, args=(), timeout=10.0, input=None, env=None):
    """Run a program from MAILLAGE_BIN to completion; CompletedProcess."""
    e = dict(os.environ)
    if env:
        e.update(env)
    return subprocess.run([os.path.join(BIN, program)] + list(args), input=input,
                          capture_output=True, timeout=timeout, env=e)


def refused_at_start(program, conf, code=1, timeout=10.0):
    """Run `program --config conf`, which must refuse to start: exit with
    `code` (None: any failure) after exactly one line on stderr; returns it."""
    res = run_program(program, ["--config", conf], timeout=timeout)
    err = res.stderr.decode()
    if code is None:
        assert res.returncode != 0, err
    else:
        assert res.returncode == code, (res.returncode, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def run_tool(tool, args=(), timeout=10.0, input=None):
    """Run a helper from build/tests (tests/tools/<tool>.c)."""
    return subprocess.run([os.path.join(BUILD, "tests", tool)] + list(args), input=input,
                          capture_output=True, timeout=timeout)


def write_secret(path, secret):
    """A password file only its owner can read, as the daemons require."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secret + "\n")
    return path


# ---- ZeroMQ clients ----------------------------------------------------------

class IngestClient:
    """A producer: DEALER connected to the broker's ingest endpoint."""

    def __init__(self, endpoint, context=None):
        self.ctx = context or zmq.Context.instance()
        self.sock = self.ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(endpoint)

    def send(self, envelope):
        """Send an Envelope (message) or raw bytes as one frame."""
        data = envelope if isinstance(envelope, (bytes, bytearray)) else envelope.SerializeToString()
        self.sock.send(data)

    def send_frames(self, frames):
        self.sock.send_multipart(frames)

    def recv_ack(self, timeout=5.0):
        if not self.sock.poll(int(timeout * 1000)):
            raise TimeoutError("no ack within %.1f s" % timeout)
        frames = self.sock.recv_multipart()
        assert len(frames) == 1, "an ack is one frame, got %d" % len(frames)
        ack = Ack()
        ack.ParseFromString(frames[0])
        return ack

    def emit(self, envelope, timeout=5.0):
        """Send one envelope and return its ack (nothing else in flight)."""
        self.send(envelope)
        return self.recv_ack(timeout)

    def emit_many(self, envelopes, timeout=10.0):
        """Send all, then collect one ack per envelope; returns {event_id: Ack}
        (acks may come back in any order). Raw bytes are keyed by index."""
        for e in envelopes:
            self.send(e)
        acks = {}
        deadline = time.monotonic() + timeout
        for _ in envelopes:
            ack = self.recv_ack(max(0.01, deadline - time.monotonic()))
            acks[ack.event_id] = ack
        return acks

    def close(self):
        self.sock.close(0)


class Subscriber:
    """A SUB on the fan-out: yields (type, seq, Envelope)."""

    def __init__(self, endpoint, topics=("",), context=None):
        self.ctx = context or zmq.Context.instance()
        self.sock = self.ctx.socket(zmq.SUB)
        self.sock.setsockopt(zmq.LINGER, 0)
        for t in topics:
            self.sock.setsockopt(zmq.SUBSCRIBE, t.encode())
        self.sock.connect(endpoint)

    def recv(self, timeout=5.0):
        if not self.sock.poll(int(timeout * 1000)):
            raise TimeoutError("nothing published within %.1f s" % timeout)
        frames = self.sock.recv_multipart()
        while frames[0] == b"_heartbeat":  # [topic][last sequence]: not a publication
            if not self.sock.poll(int(timeout * 1000)):
                raise TimeoutError("nothing published within %.1f s" % timeout)
            frames = self.sock.recv_multipart()
        assert len(frames) == 3, "a publication is 3 frames, got %d" % len(frames)
        topic, seq_be, data = frames
        assert len(seq_be) == 8, "sequence frame of %d bytes" % len(seq_be)
        env = Envelope()
        env.ParseFromString(data)
        return topic.decode(), struct.unpack(">Q", seq_be)[0], env

    def close(self):
        self.sock.close(0)


def wait_subscribed(sub, client, timeout=5.0, make=None):
    """Slow-joiner guard: emit throw-away events (from make(), a need by
    default) until one is published to `sub`; returns the last sequence seen
    so tests can start after it."""
    deadline = time.monotonic() + timeout
    make = make or need_reported
    while True:
        ack = client.emit(make())
        assert ack.status == ACCEPTED, ack
        try:
            while True:
                _, seq, _ = sub.recv(0.2)
                if seq == ack.sequence:
                    return seq
        except TimeoutError:
            if time.monotonic() > deadline:
                raise


# ---- envelopes -----------------------------------------------------------------

def new_id(prefix="ev"):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:20])


def need_reported(event_id=None, commune="14118", category="locaux", title="Local de stockage", **need):
    """A valid need.reported envelope (Caen, premises) unless told otherwise."""
    env = Envelope(event_id=event_id or new_id(), type="need.reported",
                   occurred_at_ms=int(time.time() * 1000))
    n = env.need_reported.need
    n.need_id = need.pop("need_id", new_id("need"))
    n.structure_id = need.pop("structure_id", "asso-14-001")
    n.category = category
    n.title = title
    n.commune = commune
    for k, v in need.items():
        setattr(n, k, v)
    return env


def offer_published(event_id=None, commune="76540", category="materiel", title="Prêt de matériel"):
    env = Envelope(event_id=event_id or new_id(), type="offer.published",
                   occurred_at_ms=int(time.time() * 1000))
    o = env.offer_published.offer
    o.offer_id = new_id("offer")
    o.provider_id = "scic-76-001"
    o.category = category
    o.title = title
    o.commune = commune
    return env


# ---- a workspace and a broker stack -----------------------------------------------

class Workspace:
    """A temp directory and the processes started in it, all cleaned up."""

    def __init__(self, prefix="maillage-it-"):
        self.dir = tempfile.mkdtemp(prefix=prefix)
        self._closers = []

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    def own(self, thing):
        self._closers.append(thing)
        return thing

    def close(self, keep=False):
        for thing in reversed(self._closers):
            try:
                thing.close()
            except Exception:  # cleanup must go on
                pass
        self._closers.clear()
        if not keep:
            shutil.rmtree(self.dir, ignore_errors=True)


def broker_sections(redis, redis_options=None, **broker):
    """Config sections for a broker on free loopback ports and `redis`
    (`redis_options` adds keys to [redis], e.g. password_file)."""
    b = {
        "ingest": "tcp://127.0.0.1:%d" % free_port(),
        "fanout": "tcp://127.0.0.1:%d" % free_port(),
        "network": "test-net",
    }
    b.update(broker)
    r = {"url": redis.url, "reconnect_min_ms": 50, "reconnect_max_ms": 200, "connect_timeout_ms": 500}
    r.update(redis_options or {})
    return {"log": {"level": "info"}, "redis": r, "broker": b}


def start_broker(ws, redis, ready=True, redis_options=None, more_sections=None, **broker):
    """Write a config and start maillage-broker; waits until the journal is
    available unless ready=False. `more_sections` (a [categories]...) are
    written beside [redis] and [broker]. Returns (daemon, sections)."""
    sections = broker_sections(redis, redis_options, **broker)
    sections.update(more_sections or {})
    conf = write_config(ws.path("broker-%s.conf" % uuid.uuid4().hex[:6]), sections)
    d = ws.own(Daemon(ws.dir, "maillage-broker", conf))
    d.start(ready="broker: ready" if ready else None)
    return d, sections


# ---- delivery guarantees: a producer that retries, probe consumers --------------
# (appended for the fault tests of test_delivery.py; nothing above changed)

import collections  # noqa: E402
import threading  # noqa: E402


class RetryingProducer(threading.Thread):
    """A producer that never gives up on an event, run in its own thread so a
    test can inject faults meanwhile: up to `window` envelopes in flight, each
    sent again with the SAME event_id after `retry_s` without an answer, or
    after an UNAVAILABLE (journal down), until it is ACCEPTED or DUPLICATE.

    After join(): ``acked`` {event_id: sequence} (accepted or duplicate),
    ``statuses`` {status: count}, ``resent`` (envelopes sent again),
    ``rejected`` [Ack], ``error`` (an exception, or None)."""

    def __init__(self, endpoint, envelopes, window=500, retry_s=0.5, timeout=60.0, rate=None):
        """`rate`: at most that many new envelopes per second (None: as fast
        as acks come back), to keep a stream flowing while a fault hits."""
        super().__init__(daemon=True)
        self.rate = rate
        self.endpoint = endpoint
        self.todo = collections.deque((e.event_id, e.SerializeToString()) for e in envelopes)
        self.total = len(self.todo)
        self.window = window
        self.retry_s = retry_s
        self.timeout = timeout
        self.acked = {}
        self.statuses = collections.Counter()
        self.resent = 0
        self.rejected = []
        self.error = None
        self._lock = threading.Lock()

    def acked_count(self):
        with self._lock:
            return len(self.acked)

    def run(self):
        try:
            self._run()
        except Exception as e:  # reported by finish()
            self.error = e

    def _run(self):
        sock = zmq.Context.instance().socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.SNDHWM, 100000)
        sock.connect(self.endpoint)
        inflight = {}  # event_id -> [bytes, resend deadline]
        started = time.monotonic()
        deadline = started + self.timeout
        last_scan = 0.0
        first_sends = 0
        try:
            while len(self.acked) + len(self.rejected) < self.total:
                now = time.monotonic()
                if now > deadline:
                    raise TimeoutError("producer: %d of %d acked after %.0f s"
                                       % (len(self.acked), self.total, self.timeout))
                allowed = self.total if self.rate is None else int((now - started) * self.rate) + 1
                while self.todo and len(inflight) < self.window and first_sends < allowed:
                    first_sends += 1
                    event_id, data = self.todo.popleft()
                    inflight[event_id] = [data, now + self.retry_s]
                    self._send(sock, data)
                if now - last_scan > 0.05:
                    last_scan = now
                    for event_id, item in inflight.items():
                        if item[1] <= now:
                            item[1] = now + self.retry_s
                            self.resent += 1
                            self._send(sock, item[0])
                if not sock.poll(20):
                    continue
                while True:
                    try:
                        frame = sock.recv(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    ack = Ack()
                    ack.ParseFromString(frame)
                    self.statuses[ack.status] += 1
                    if ack.event_id not in inflight:
                        continue  # an answer to a copy already answered
                    if ack.status in (ACCEPTED, DUPLICATE):
                        del inflight[ack.event_id]
                        with self._lock:
                            self.acked[ack.event_id] = ack.sequence
                    elif ack.status == UNAVAILABLE:
                        inflight[ack.event_id][1] = time.monotonic() + 0.05
                    else:
                        del inflight[ack.event_id]
                        self.rejected.append(ack)
        finally:
            sock.close(0)

    @staticmethod
    def _send(sock, data):
        try:
            sock.send(data, zmq.NOBLOCK)
        except zmq.Again:
            pass  # no broker right now: the resend timer tries again

    def finish(self, timeout=60.0):
        """join() and raise what went wrong in the thread; returns acked."""
        self.join(timeout)
        if self.is_alive():
            raise TimeoutError("producer still running after %.0f s" % timeout)
        if self.error:
            raise self.error
        return self.acked


def restart(daemon, ready=None, timeout=10.0):
    """Start a stopped (or killed) Daemon again with the same configuration,
    its log in a new file (the old one is kept for post-mortems)."""
    daemon.log_path = "%s.%s" % (daemon.log_path.split(".restart")[0], "restart%s" % uuid.uuid4().hex[:4])
    return daemon.start(ready=ready, timeout=timeout)


class Probe(Daemon):
    """tests/tools/probe_consumer: a consuming daemon (mg_subscriber) that
    applies each event idempotently in Redis (mg:probe:<name>:*)."""

    def __init__(self, ws, redis, fanout, name, args=(), broker=None):
        conf = write_config(ws.path("probe-%s-%s.conf" % (name, uuid.uuid4().hex[:6])), {
            "log": {"level": "info"},
            "redis": {"url": redis.url, "reconnect_min_ms": 50, "reconnect_max_ms": 200,
                      "connect_timeout_ms": 500},
            "broker": dict({"fanout": fanout}, **(broker or {})),
        })
        super().__init__(ws.dir, "probe_consumer", conf, ["--name", name] + [str(a) for a in args])
        self.path = os.path.join(BUILD, "tests", "probe_consumer")
        self.name = name
        self.redis = redis

    def start(self, ready=True, timeout=10.0):
        """Start; with ready, wait until its subscriber is live (caught up)."""
        return super().start(ready=("subscriber %s: live" % self.name) if ready else None, timeout=timeout)

    def key(self, what):
        return "mg:probe:%s:%s" % (self.name, what)

    def applied(self):
        return {m.decode() for m in self.redis.call("SMEMBERS", self.key("applied"))}

    def applied_count(self):
        return self.redis.call("SCARD", self.key("applied"))

    def effects(self):
        return int(self.redis.call("GET", self.key("effects")) or 0)

    def _int_hash(self, what):
        flat = self.redis.call("HGETALL", self.key(what)) or []
        return {k.decode(): int(v) for k, v in zip(flat[::2], flat[1::2])}

    def deliveries(self):
        return self._int_hash("deliveries")

    def failures(self):
        return self._int_hash("failures")

    def stats(self):
        return self._int_hash("stats")

    def checkpoint(self):
        return int(self.redis.call("HGET", "mg:consumer:" + self.name, "seq") or 0)


def journal_event_ids(redis):
    """[(seq, event_id)] of the whole journal, in order."""
    out = []
    for entry_id, fields in redis.call("XRANGE", "mg:journal", "-", "+"):
        f = dict(zip(fields[::2], fields[1::2]))
        env = Envelope()
        env.ParseFromString(f[b"e"])
        out.append((int(entry_id.split(b"-")[0]), env.event_id))
    return out
