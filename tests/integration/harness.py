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

import os
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


def free_port():
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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


def start_broker(ws, redis, ready=True, redis_options=None, **broker):
    """Write a config and start maillage-broker; waits until the journal is
    available unless ready=False. Returns (daemon, sections)."""
    sections = broker_sections(redis, redis_options, **broker)
    conf = write_config(ws.path("broker-%s.conf" % uuid.uuid4().hex[:6]), sections)
    d = ws.own(Daemon(ws.dir, "maillage-broker", conf))
    d.start(ready="broker: ready" if ready else None)
    return d, sections
