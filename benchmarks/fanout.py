"""Chat server fan-out benchmark: richchat against ngircd and `ncat --chat`, same load.

N clients join one room, S of them send M messages each (payload P bytes), everyone
receives. Every payload carries ``~B<sender>.<seq>.<send-time-ns>.`` plus a deterministic
filler, so each copy received is checked byte for byte (corruption), per sender in order
(loss, duplicates) and timed.

Latency is measured twice, both from the sender's clock reading just before its write:
*arrival* latency ends at the kernel's receive timestamp of the copy at the recipient's socket
(SO_TIMESTAMPNS), *read* latency when the load generator got round to reading it. Arrival is
what the server delivers; read adds the generator's own queueing: one Python process reading
up to 1,000 sockets per message runs behind a fast server (it reads ~14 us per copy), so
read latency measures the generator as much as the server. Both use CLOCK_REALTIME (the
clock of the kernel stamps).

Deliveries are counted the same way for every server: a *delivery* is a copy of a message
received by a client other than its sender (N-1 per message). richchat also echoes each
message to its sender (delivery confirmation); IRC and ncat do not. Echoes are counted
separately and are not deliveries, so richchat does 1/(N-1) more work than it is credited for.

Phases per server and size, on the same connections:

1. register: connect N clients (at most 256 handshakes in flight) and register them
   (richchat: ``HELLO`` + ``CMD_USER`` until ``YOU|name``; IRC: NICK/USER/JOIN until our own
   JOIN echo; ncat: until its ``already connected`` announce). Memory per idle connection =
   growth of the server's anonymous resident memory (RssAnon) / N, both samples taken after
   IDLE_SETTLE quiet seconds.
2. unpaced: each sender keeps at most ``--window`` messages in flight (sent, not yet seen by
   an observer client); deliveries per second and server CPU per delivery.
3. paced: each sender sends at a fixed rate (``--rate``/s, lowered so the whole run stays
   under ``--paced-budget`` deliveries/s that one Python load generator can take), the
   senders spread evenly over each interval; arrival and read latency.

Received copies are checked (text, order, latency) as they arrive only by the observer
client, which paces the unpaced senders; every other client keeps its chunks with their
arrival time and they are checked after the phase, so the generator's CPU goes to receiving.

Server CPU is utime+stime(+cutime+cstime) from /proc/PID/stat around each phase (10 ms ticks).

TLS mode: the targets ``richchat-tls`` and ``ngircd-tls`` serve their chat port over TLS,
both with the same ECDSA P-256 key and certificate (made by openssl for the run); the load
generator's clients speak TLS through ssl.MemoryBIO on the same stamped transport (the
kernel's receive timestamp is that of the encrypted record carrying the copy), so
registration includes each client's TLS handshake. ``--handshakes K`` adds a row per TLS
target: K handshakes (256 in flight), nothing else, the server's handshakes per second and
CPU per handshake.

Cluster mode (``--targets richchat-redis``): 2 ``richchat server --redis`` nodes and one
``redis-server`` (started here on a free loopback port, AOF with ``appendfsync always``:
what "nothing confirmed is lost" needs; ``richchat-redis-everysec`` for the cheaper setting),
the clients spread over the nodes round-robin (senders included), so every message crosses
Redis to reach half of its recipients. Reported besides the usual figures: each node's CPU
per delivery *it* made (to its own clients) and Redis's CPU per message (its CPU during the
phase less its idle rate, measured while the chat was quiet, times the phase's duration). Put ``richchat``
in the same ``--targets`` for the embedded server side by side, in the same run.

Only loopback (127.0.0.1) is used; every phase is bounded in count and time.

    python benchmarks/fanout.py                      # default run, ~3-5 minutes
    python benchmarks/fanout.py --sizes 100:10:200 --targets richchat
    python benchmarks/fanout.py --targets richchat-tls,ngircd-tls,richchat \
        --sizes 100:10:200,1000:10:20 --handshakes 2000          # the TLS figures
    python benchmarks/fanout.py --sizes 1000:10:20 --targets richchat,richchat-redis --repeat 5
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import math
import os
import re
import resource
import shutil
import signal
import socket
import ssl
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests.redis_server: the same redis-server start-up as the tests
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
FILLER = b"abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ" * 64
HOST = "127.0.0.1"
#: seconds a server is left quiet before its memory is sampled ("idle")
IDLE_SETTLE = 2.5
#: Linux: receive timestamps as struct timespec in SCM_TIMESTAMPNS messages (not in `socket`)
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
ANCILLARY = socket.CMSG_SPACE(16)
READ_SIZE = 256 * 1024


# --------------------------------------------------------------------------- /proc


def proc_cpu(pid: int) -> float:
    """utime + stime (+ reaped children) of a process, in seconds."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    # fields[0] is field 3 (state): utime=14, stime=15, cutime=16, cstime=17
    return sum(int(x) for x in fields[11:15]) / CLK_TCK


def proc_writes(pid: int) -> int:
    """write()/writev() system calls a process made so far (/proc/PID/io ``syscw``; send() and
    sendmsg() are not counted: ngircd-tls's GnuTLS sends with sendmsg), 0 if unreadable."""
    try:
        with open(f"/proc/{pid}/io") as fh:
            for line in fh:
                if line.startswith("syscw:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def steal_s() -> float:
    """CPU time the hypervisor gave to others while this VM wanted it (all cores), seconds."""
    try:
        with open("/proc/stat") as fh:
            fields = fh.readline().split()
        return int(fields[8]) / CLK_TCK  # cpu user nice system idle iowait irq softirq steal
    except (OSError, IndexError, ValueError):
        return 0.0


def run_delay_s(pid: int) -> float:
    """Seconds the main thread of ``pid`` (a server's event loop) has spent runnable but
    waiting for a CPU (``/proc/PID/task/PID/schedstat``, second field: run-queue wait, ns);
    NaN when it cannot be read (unknown, not "no wait")."""
    try:
        with open(f"/proc/{pid}/task/{pid}/schedstat") as fh:
            return int(fh.read().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return float("nan")


def writeback_pages() -> float:
    """Pages the kernel has written back to disk since boot (``nr_written``, /proc/vmstat):
    the disk writes of every process and of the kernel's flusher threads; NaN when unknown."""
    try:
        with open("/proc/vmstat") as fh:
            for line in fh:
                if line.startswith("nr_written "):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return float("nan")


def proc_rss_kb(pid: int, field: str = "RssAnon") -> int:
    """Resident memory from /proc/PID/status, in KB.

    ``RssAnon`` (the default) is the memory a process allocated itself: heap, stacks, its
    buffers. ``VmRSS`` adds file-backed pages (code of the program and its libraries, paged
    in the first time a code path runs: the first client of a Python server pulls in ~250 KB
    of pydantic-core and unicodedata code that no later client adds to) and shared memory.
    """
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=0.5):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {HOST}:{port} after {timeout}s")


# --------------------------------------------------------------------------- dialects


class Dialect:
    name = ""
    #: registrations in flight at once while connecting
    inflight = 256
    #: does the server send a message back to its sender?
    echoes = False

    def register(self, i: int) -> bytes:
        raise NotImplementedError

    def confirm(self, i: int) -> bytes:
        raise NotImplementedError

    def message(self, payload: bytes) -> bytes:
        raise NotImplementedError

    def pong(self, line: bytes) -> bytes | None:
        return None


class HelloDialect(Dialect):
    name = "richchat"
    echoes = True  # the sender gets its own message back (delivery confirmation)

    def register(self, i: int) -> bytes:
        return b"HELLO|1|bench/1\nCMD_USER|bench%d\n" % i

    def confirm(self, i: int) -> bytes:
        return b"\nYOU|bench%d\n" % i

    def message(self, payload: bytes) -> bytes:
        return b"MSG|" + payload + b"\n"

    def pong(self, line: bytes) -> bytes | None:
        if line.startswith(b"PING|"):
            return b"PONG|" + line[5:] + b"\n"
        return None


class IrcDialect(Dialect):
    name = "irc"
    # ngircd listens with a compiled-in backlog of 10: with more handshakes in flight the
    # kernel drops the final ACKs and those clients stall for good (seen at N=1000).
    inflight = 8

    def register(self, i: int) -> bytes:
        return b"NICK b%d\r\nUSER b%d 0 * :bench\r\nJOIN #bench\r\n" % (i, i)

    def confirm(self, i: int) -> bytes:
        return b"\n:b%d!" % i

    def message(self, payload: bytes) -> bytes:
        return b"PRIVMSG #bench :" + payload + b"\r\n"

    def pong(self, line: bytes) -> bytes | None:
        if line.startswith(b"PING"):
            return b"PONG" + line[4:].rstrip(b"\r") + b"\r\n"
        return None


class NcatDialect(Dialect):
    name = "ncat"
    # ncat --chat silently drops connections that arrive in a burst (never greets them):
    # connect one at a time.
    inflight = 1

    def register(self, i: int) -> bytes:
        return b""

    def confirm(self, i: int) -> bytes:
        return b"<announce> already connected:"

    def message(self, payload: bytes) -> bytes:
        return payload + b"\n"


# --------------------------------------------------------------------------- servers


@dataclass
class Server:
    label: str
    proc: subprocess.Popen[bytes]
    port: int
    dialect: Dialect
    tmp: Path
    config: str = ""
    #: the chat port speaks TLS (the generator's clients then do too)
    tls: bool = False
    #: a cluster: the other nodes (process, port) beside ``proc``, and their Redis
    others: list[tuple[subprocess.Popen[bytes], int]] = field(default_factory=list)
    redis: object | None = None  # tests.redis_server.RedisServer
    #: Redis's own CPU per second when the chat is quiet (heartbeats, blocked reads, its
    #: cron), measured before the phases and taken off its CPU per message
    redis_idle: float = 0.0

    @property
    def procs(self) -> list[subprocess.Popen[bytes]]:
        return [self.proc, *(p for p, _ in self.others)]

    @property
    def ports(self) -> list[int]:
        return [self.port, *(port for _, port in self.others)]

    def node_cpu(self) -> list[float]:
        return [proc_cpu(p.pid) for p in self.procs]

    def redis_cpu(self) -> float:
        return self.redis.cpu_seconds() if self.redis is not None else 0.0  # type: ignore[attr-defined]

    def rss_kb(self, field: str = "RssAnon") -> int:
        return sum(proc_rss_kb(p.pid, field) for p in self.procs)

    def exited(self) -> int | None:
        for p in self.procs:
            if p.poll() is not None:
                return p.returncode
        return None

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        if self.redis is not None:
            self.redis.close()  # type: ignore[attr-defined]
        shutil.rmtree(self.tmp, ignore_errors=True)


def start_richchat(
    label: str,
    flood: bool = False,
    uvloop: bool = False,
    max_clients: int = 20000,
    root: Path = ROOT,
    tls: bool = False,
    extra: tuple[str, ...] = (),
    tmp: Path | None = None,
) -> Server:
    tmp = tmp or Path(tempfile.mkdtemp(prefix="fanout-rc-"))
    args = [
        "server", "--host", HOST, "--port", "0", "--no-beacon", "--no-mdns",
        "--data-dir", str(tmp), "--log-level", "warning", "--max-clients", str(max_clients),
        *extra,
    ]  # fmt: skip
    if tls:
        cert, key = bench_keypair()
        args += ["--tls-cert", str(cert), "--tls-key", str(key)]
    if not flood:
        args += ["--flood-rate", "0"]
    if uvloop:
        boot = "import sys, uvloop; uvloop.install(); from richchat.cli import main; sys.argv[0] = 'richchat'; main()"
        cmd = [sys.executable, "-c", boot, *args]
    else:
        cmd = [sys.executable, "-m", "richchat", *args]
    env = dict(os.environ, PYTHONPATH=str(root))
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, env=env, cwd=tmp)
    assert proc.stdout is not None
    line = proc.stdout.readline().decode()
    m = re.search(r"listening on (\S+):(\d+)", line)
    if not m:
        proc.kill()
        raise RuntimeError(f"richchat server did not start: {line!r}")
    return Server(label, proc, int(m.group(2)), HelloDialect(), tmp, " ".join(cmd[1:]), tls=tls)


def start_richchat_cluster(label: str, nodes: int = 2, appendfsync: str = "always",
                           root: Path = ROOT) -> Server:
    """``nodes`` richchat servers (of the checkout ``root``) on one fresh redis-server (its
    own temporary directory)."""
    from tests.redis_server import RedisServer

    tmp = Path(tempfile.mkdtemp(prefix="fanout-cluster-"))
    (tmp / "redis").mkdir()
    redis = RedisServer(tmp / "redis", appendfsync=appendfsync).start()
    extra = ("--redis", redis.url, "--cluster", "bench")
    started: list[Server] = []
    try:
        for i in range(nodes):
            (tmp / f"node{i}").mkdir()
            started.append(start_richchat(label, extra=extra, tmp=tmp / f"node{i}", root=root))
    except BaseException:
        for node in started:
            node.stop()
        redis.close()
        raise
    first = started[0]
    first.tmp = tmp
    first.others = [(n.proc, n.port) for n in started[1:]]
    first.redis = redis
    first.config = f"{nodes} x ({first.config}) + redis-server --appendonly yes --appendfsync {appendfsync}"
    return first


NGIRCD_CONF = """\
[Global]
Name = bench.irc.local
Info = fanout benchmark
Listen = {host}
Ports = {port}
MotdPhrase = bench
PidFile = {tmp}/ngircd.pid
ServerUID = {uid}
ServerGID = {gid}
[Limits]
MaxConnections = 0
MaxConnectionsIP = 0
MaxJoins = 0
MaxNickLength = 20
MaxPenaltyTime = 0
PingTimeout = 600
PongTimeout = 600
MaxListSize = 100
[Options]
DNS = no
Ident = no
PAM = no
"""

NGIRCD_SSL = """\
[SSL]
CertFile = {cert}
KeyFile = {key}
DHFile = {dh}
Ports = {port}
"""

_KEYPAIR: tuple[Path, Path] | None = None


def bench_keypair() -> tuple[Path, Path]:
    """One ECDSA P-256 key and self-signed certificate (openssl) for every TLS server of the
    run, so that they all do the same cryptography."""
    global _KEYPAIR
    if _KEYPAIR is None:
        tmp = Path(tempfile.mkdtemp(prefix="fanout-tls-"))
        cert, key = tmp / "cert.pem", tmp / "key.pem"
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-nodes", "-keyout", str(key), "-out", str(cert), "-subj", "/CN=bench.local",
             "-days", "2"], check=True, capture_output=True,
        )  # fmt: skip
        _KEYPAIR = (cert, key)
    return _KEYPAIR


_DH: Path | None = None


def bench_dh() -> Path:
    """Diffie-Hellman parameters for ngircd (GnuTLS wants a file, or makes them at start);
    only used by finite-field DHE cipher suites, which neither client negotiates (ECDHE)."""
    global _DH
    if _DH is None:
        cert, _ = bench_keypair()
        _DH = cert.parent / "dh.pem"
        subprocess.run(["openssl", "dhparam", "-out", str(_DH), "2048"], check=True,
                       capture_output=True)
    return _DH


def start_ngircd(label: str = "ngircd", tls: bool = False) -> Server | None:
    exe = shutil.which("ngircd") or (
        "/usr/sbin/ngircd" if Path("/usr/sbin/ngircd").exists() else None
    )
    if exe is None:
        return None
    tmp = Path(tempfile.mkdtemp(prefix="fanout-irc-"))
    port = free_port()
    conf = tmp / "ngircd.conf"
    text = NGIRCD_CONF.format(host=HOST, port=port, tmp=tmp, uid=os.getuid(), gid=os.getgid())
    chat_port = port
    if tls:
        cert, key = bench_keypair()
        chat_port = free_port()
        text += NGIRCD_SSL.format(cert=cert, key=key, dh=bench_dh(), port=chat_port)
    conf.write_text(text)
    proc = subprocess.Popen(
        [exe, "-n", "-f", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp
    )
    wait_port(chat_port, proc)
    return Server(label, proc, chat_port, IrcDialect(), tmp, f"{exe} -n -f ngircd.conf", tls=tls)


def start_ncat(label: str = "ncat") -> Server | None:
    exe = shutil.which("ncat")
    if exe is None:
        return None
    tmp = Path(tempfile.mkdtemp(prefix="fanout-ncat-"))
    port = free_port()
    cmd = [exe, "--chat", "--keep-open", "-l", HOST, str(port), "--max-conns", "100000"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp)
    wait_port(port, proc)
    time.sleep(0.3)  # let ncat forget wait_port's probe connection
    return Server(label, proc, port, NcatDialect(), tmp, " ".join(cmd))


# --------------------------------------------------------------------------- load


class StampedTransport:
    """A minimal client transport that reads with recvmsg() to get the kernel's receive
    timestamp of each chunk (asyncio's and uvloop's transports drop ancillary data)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, sock: socket.socket, proto: Client):
        self.loop = loop
        self.sock = sock
        self.proto = proto
        self.fd = sock.fileno()
        self.buf = bytearray()
        self.closed = False
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        loop.add_reader(self.fd, self._read)
        proto.connection_made(self)  # type: ignore[arg-type]

    def get_extra_info(self, name: str, default: object = None) -> object:
        return self.sock if name == "socket" else default

    def _read(self) -> None:
        try:
            data, anc, _flags, _addr = self.sock.recvmsg(READ_SIZE, ANCILLARY)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._lost(exc)
            return
        if not data:
            self._lost(None)
            return
        arrival = 0
        for level, kind, cdata in anc:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(cdata) >= 16:
                sec, nsec = struct.unpack_from("qq", cdata)
                arrival = sec * 1_000_000_000 + nsec
        self.proto.data_received(data, arrival)

    def write(self, data: bytes) -> None:
        self._send(data)

    def _send(self, data: bytes) -> None:
        if self.closed:
            return
        if not self.buf:
            try:
                n = self.sock.send(data)
            except (BlockingIOError, InterruptedError):
                n = 0
            except OSError as exc:
                self._lost(exc)
                return
            if n == len(data):
                return
            data = data[n:]
            self.loop.add_writer(self.fd, self._write_ready)
        self.buf += data

    def _write_ready(self) -> None:
        try:
            n = self.sock.send(self.buf)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._lost(exc)
            return
        del self.buf[:n]
        if not self.buf:
            self.loop.remove_writer(self.fd)

    def abort(self) -> None:
        self._lost(None)

    def _lost(self, exc: Exception | None) -> None:
        if self.closed:
            return
        self.closed = True
        self.loop.remove_reader(self.fd)
        if self.buf:
            self.loop.remove_writer(self.fd)
        self.sock.close()
        self.proto.connection_lost(exc)


class TlsStampedTransport(StampedTransport):
    """The stamped transport with TLS through ssl.MemoryBIO: records are read with their
    kernel timestamps, decrypted, and handed on with the timestamp of the record that
    completed them. ``connection_made`` comes once the handshake is over."""

    def __init__(self, loop: asyncio.AbstractEventLoop, sock: socket.socket, proto: Client,
                 context: ssl.SSLContext) -> None:
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.obj = context.wrap_bio(self.incoming, self.outgoing)
        self.handshaken = False
        self.client = proto
        # the base class calls connection_made at once: not before the handshake
        super().__init__(loop, sock, _Nobody())  # type: ignore[arg-type]
        self.proto = proto
        self._handshake()

    def _handshake(self) -> None:
        try:
            self.obj.do_handshake()
            self.handshaken = True
        except ssl.SSLWantReadError:
            pass
        except (ssl.SSLError, OSError) as exc:
            self._lost(exc)
            return
        self._flush()
        if self.handshaken:
            self.client.connection_made(self)

    def _read(self) -> None:
        try:
            data, anc, _flags, _addr = self.sock.recvmsg(READ_SIZE, ANCILLARY)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._lost(exc)
            return
        if not data:
            self._lost(None)
            return
        self.incoming.write(data)
        if not self.handshaken:
            self._handshake()
            if not self.handshaken:
                return
        arrival = 0
        for level, kind, cdata in anc:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(cdata) >= 16:
                sec, nsec = struct.unpack_from("qq", cdata)
                arrival = sec * 1_000_000_000 + nsec
        chunks = []
        try:
            while True:
                chunks.append(self.obj.read(READ_SIZE))
        except ssl.SSLWantReadError:
            pass
        except (ssl.SSLError, OSError) as exc:
            self._lost(exc)
            return
        self._flush()  # post-handshake messages (session tickets need no answer, but a key
        # update would)
        plain = b"".join(chunks)
        if plain:
            self.proto.data_received(plain, arrival)

    def write(self, data: bytes) -> None:
        if self.closed or not self.handshaken:
            return
        self.obj.write(data)
        self._flush()

    def _flush(self) -> None:
        out = self.outgoing.read()
        if out:
            self._send(out)


class _Nobody:
    def connection_made(self, transport: object) -> None:
        pass

    def connection_lost(self, exc: Exception | None) -> None:
        pass


_CLIENT_TLS: ssl.SSLContext | None = None


def client_tls() -> ssl.SSLContext:
    """What richchat's own client does: TLS 1.2+, no certificate authority (pins instead;
    a benchmark client checks nothing)."""
    global _CLIENT_TLS
    if _CLIENT_TLS is None:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        _CLIENT_TLS = ctx
    return _CLIENT_TLS


async def open_stamped(loop: asyncio.AbstractEventLoop, proto: Client, port: int,
                       tls: bool = False) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    try:
        await loop.sock_connect(sock, (HOST, port))
    except BaseException:
        sock.close()
        raise
    if tls:
        TlsStampedTransport(loop, sock, proto, client_tls())
    else:
        StampedTransport(loop, sock, proto)


def make_payload(s: int, q: int, t_ns: int, size: int) -> bytes:
    head = b"~B%d.%d.%d." % (s, q, t_ns)
    rot = (s * 7 + q * 13) % 62
    return head + FILLER[rot : rot + max(0, size - len(head))]


class Phase:
    """Counters of one measured phase."""

    def __init__(self, n: int, senders: int, msgs: int, nodes: int = 1) -> None:
        self.n = n
        self.nodes = nodes
        #: deliveries to the clients of each node (client i is on node i % nodes)
        self.node_delivered = [0] * nodes
        self.node_cpu: list[float] = []
        self.redis_cpu = 0.0
        self.senders = senders
        self.msgs = msgs
        self.expected = senders * msgs * (n - 1)
        self.sent: list[list[bytes | None]] = [[None] * msgs for _ in range(senders)]
        self.next_seq: list[list[int]] = [[0] * senders for _ in range(n)]
        self.delivered = 0
        self.echoes = 0
        self.corrupted = 0
        self.unattributed = 0  # counted in corrupted too
        self.duplicates = 0
        self.gaps = 0
        self.other_lines = 0
        self.latencies: list[int] = []  # arrival (kernel receive timestamp) - send
        self.read_latencies: list[int] = []  # read by the generator - send
        self.first_send = 0
        self.last_delivery = 0
        self.sends_done = 0
        self.gen_cpu = 0.0  # the load generator's own CPU seconds in this phase
        self.steal = 0.0  # seconds of CPU stolen from this VM by the hypervisor meanwhile
        self.written = 0.0  # pages written back to disk by the machine meanwhile (NaN: unknown)
        #: seconds the server's loop threads (every node's) waited for a CPU (NaN: unknown)
        self.cpu_wait = 0.0
        self.writes = 0  # the server's write() calls (proc_writes) during the phase


class Client(asyncio.Protocol):
    __slots__ = ("idx", "registered", "run", "rx", "tail", "token", "transport")

    def __init__(self, run: Run, idx: int) -> None:
        self.run = run
        self.idx = idx
        self.token = run.dialect.confirm(idx)
        self.registered = False
        self.tail = b""
        self.transport: StampedTransport | None = None
        #: chunks received during a phase, with read and arrival time, checked after the phase
        self.rx: list[tuple[int, int, bytes]] = []

    def connection_made(self, transport: StampedTransport) -> None:  # type: ignore[override]
        self.transport = transport
        transport.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        data = self.run.dialect.register(self.idx)
        if data:
            transport.write(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.run.lost_connections += 1
        self.transport = None

    def data_received(self, data: bytes, arrival: int = 0) -> None:  # type: ignore[override]
        run = self.run
        now = time.time_ns()
        arrival = arrival or now
        run.last_rx = now
        run.rx_bytes += len(data)
        phase = run.phase
        if not self.registered:
            buf = self.tail + data
            if self.token in buf:
                self.registered = True
                run.on_registered()
                nl = buf.rfind(b"\n")
                self.tail = buf[nl + 1 :]
            else:
                self.tail = buf[-(len(self.token) + 4096) :]
            return
        if phase is None:
            if b"PING" in data:
                self._lines(self.tail + data, None, now, arrival)
                return
            nl = data.rfind(b"\n")
            self.tail = data[nl + 1 :] if nl >= 0 else self.tail + data
            return
        run.rx_copies += data.count(b"~B")
        if self.idx == run.observer or b"PING" in data:
            # the observer paces the unpaced senders: check its copies as they come
            self._replay()
            self._lines(self.tail + data if self.tail else data, phase, now, arrival)
        else:
            # everyone else: keep the chunk and its times, check it after the phase, so the
            # generator spends as little CPU as possible while the server is measured
            self.rx.append((now, arrival, data))

    def _replay(self) -> None:
        """Check the chunks kept during the phase, in arrival order."""
        phase = self.run.phase
        if phase is None or not self.rx:
            return
        rx, self.rx = self.rx, []
        for now, arrival, data in rx:
            self._lines(self.tail + data if self.tail else data, phase, now, arrival)

    def _lines(self, buf: bytes, phase: Phase | None, now: int, arrival: int) -> None:
        lines = buf.split(b"\n")
        self.tail = lines.pop()
        me = self.idx
        run = self.run
        for line in lines:
            i = line.find(b"~B")
            if i < 0:
                reply = run.dialect.pong(line)
                if reply is not None and self.transport is not None:
                    self.transport.write(reply)
                elif phase is not None:
                    phase.other_lines += 1
                continue
            if phase is None:
                continue
            p = line[i:]
            if p[-1:] == b"\r":
                p = p[:-1]
            try:
                sb, qb, tb, _ = p.split(b".", 3)
                s = int(sb[2:])
                q = int(qb)
                t = int(tb)
                ok = phase.sent[s][q] == p
            except (ValueError, IndexError):
                ok = False
            if not ok:
                phase.corrupted += 1
                continue
            if i == 0:  # intact text, but no sender in front of it: who said it?
                phase.corrupted += 1
                phase.unattributed += 1
                continue
            if s == me:
                phase.echoes += 1
                continue
            seqs = phase.next_seq[me]
            nxt = seqs[s]
            if q < nxt:
                phase.duplicates += 1
                continue
            if q > nxt:
                phase.gaps += 1
            seqs[s] = q + 1
            phase.delivered += 1
            phase.node_delivered[me % phase.nodes] += 1
            phase.latencies.append(arrival - t)
            phase.read_latencies.append(now - t)
            phase.last_delivery = now
            if me == run.observer:
                run.on_observed(s, q)


class Run:
    """One server, one size: connections and phases."""

    def __init__(self, server: Server, n: int, senders: int, payload: int, window: int) -> None:
        self.server = server
        self.dialect = server.dialect
        self.n = n
        self.senders = senders
        self.payload = payload
        self.window = window
        self.clients: list[Client] = []
        self.registered = 0
        self.reg_done = asyncio.Event()
        self.last_rx = time.time_ns()
        self.rx_bytes = 0
        self.rx_copies = 0  # payload copies received in the current phase (echoes included)
        self.lost_connections = 0
        self.phase: Phase | None = None
        self.observer = n - 1
        self.acked: list[int] = []
        self.next_q: list[int] = []
        self.pump: Callable[[int], None] | None = None
        self.inflight = 0  # registrations in flight (0: the dialect's default)

    def on_registered(self) -> None:
        self.registered += 1
        if self.registered >= self.n:
            self.reg_done.set()

    def on_observed(self, s: int, q: int) -> None:
        if q + 1 > self.acked[s]:
            self.acked[s] = q + 1
        if self.pump is not None:
            self.pump(s)

    async def connect_all(self, timeout: float) -> float:
        loop = asyncio.get_running_loop()
        sem = asyncio.Semaphore(self.inflight or self.dialect.inflight)
        t0 = time.monotonic()

        ports = self.server.ports  # a cluster: the clients spread over its nodes

        async def one(i: int) -> None:
            async with sem:
                client = Client(self, i)
                self.clients.append(client)
                for attempt in range(5):
                    try:
                        await open_stamped(loop, client, ports[i % len(ports)],
                                           self.server.tls)
                        break
                    except OSError:
                        if attempt == 4:
                            raise
                        await asyncio.sleep(0.2)
                # hold the slot until registered, so at most 256 registrations are in flight
                deadline = time.monotonic() + timeout
                while not client.registered and time.monotonic() < deadline:
                    await asyncio.sleep(0.005)

        tasks = [asyncio.create_task(one(i)) for i in range(self.n)]
        deadline = time.monotonic() + timeout
        seen, seen_at = 0, time.monotonic()
        while not self.reg_done.is_set() and time.monotonic() < deadline:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.reg_done.wait(), 0.5)
            if self.registered != seen:
                seen, seen_at = self.registered, time.monotonic()
            elif time.monotonic() - seen_at > 15:
                break  # no progress for 15 s: give up
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.clients.sort(key=lambda c: c.idx)
        return time.monotonic() - t0

    async def quiesce(self, quiet: float = 0.5, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if time.time_ns() - self.last_rx > quiet * 1e9:
                return
            await asyncio.sleep(0.05)

    def _write(self, s: int, q: int, phase: Phase, lines: list[bytes]) -> None:
        p = make_payload(s, q, time.time_ns(), self.payload)
        phase.sent[s][q] = p
        lines.append(self.dialect.message(p))

    async def run_phase(self, msgs: int, rate: float | None, timeout: float) -> tuple[Phase, float]:
        """Send ``msgs`` per sender (windowed when ``rate`` is None, else paced)."""
        loop = asyncio.get_running_loop()
        phase = Phase(self.n, self.senders, msgs, len(self.server.ports))
        self.acked = [0] * self.senders
        self.next_q = [0] * self.senders
        senders = self.clients[: self.senders]
        node0 = self.server.node_cpu()
        writes0 = sum(proc_writes(p.pid) for p in self.server.procs)
        redis0, wall0 = self.server.redis_cpu(), time.monotonic()
        # the generator's own garbage collections (it keeps every chunk of the phase: a full
        # collection walks them all) would pause it for tens of ms at random: none mid-phase
        gc.collect()
        gc.disable()
        gen0 = time.process_time()
        steal0 = steal_s()
        written0 = writeback_pages()
        wait0 = sum(run_delay_s(p.pid) for p in self.server.procs)  # every node's loop
        self.phase = phase
        self.rx_copies = 0
        copies = phase.expected + (self.senders * msgs if self.dialect.echoes else 0)
        phase.first_send = time.time_ns()

        def flush(s: int, lines: list[bytes]) -> None:
            # one write (one TCP segment, TCP_NODELAY) per message, like a chat client;
            # ncat --chat prefixes each read() chunk, not each line, so this matters there
            tr = senders[s].transport
            if tr is not None:
                for line in lines:
                    tr.write(line)

        def pump(s: int) -> None:
            lines: list[bytes] = []
            while self.next_q[s] < msgs and self.next_q[s] - self.acked[s] < self.window:
                self._write(s, self.next_q[s], phase, lines)
                self.next_q[s] += 1
            flush(s, lines)
            if self.next_q[s] >= msgs and lines:
                phase.sends_done += 1

        handles: list[asyncio.TimerHandle] = []
        if rate is None:
            self.pump = pump
            for s in range(self.senders):
                pump(s)
        else:
            self.pump = None
            start = loop.time() + 0.05
            interval = 1.0 / rate

            # sender s sends its message q at start + (q + s / S) * interval: the senders are
            # spread evenly over each interval (independent chatters), not in lockstep
            def due_at(s: int, q: int) -> float:
                return start + (q + s / self.senders) * interval

            def tick(s: int) -> None:
                now = loop.time()
                lines: list[bytes] = []
                while self.next_q[s] < msgs and due_at(s, self.next_q[s]) <= now + 0.001:
                    self._write(s, self.next_q[s], phase, lines)
                    self.next_q[s] += 1
                flush(s, lines)
                if self.next_q[s] < msgs:
                    handles.append(loop.call_at(due_at(s, self.next_q[s]), tick, s))
                else:
                    phase.sends_done += 1

            for s in range(self.senders):
                handles.append(loop.call_at(due_at(s, 0), tick, s))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            await asyncio.sleep(0.02)
            if self.rx_copies >= copies:
                break
            idle = (time.time_ns() - max(self.last_rx, phase.first_send)) / 1e9
            if idle > 2.0 and (phase.sends_done >= self.senders or rate is None):
                break  # nothing moved for 2 s: the rest is lost
        for h in handles:
            h.cancel()
        self.pump = None
        await self.quiesce(quiet=0.3, timeout=10)
        phase.node_cpu = [b - a for a, b in zip(node0, self.server.node_cpu(), strict=True)]
        idle = self.server.redis_idle * (time.monotonic() - wall0)
        phase.redis_cpu = max(0.0, self.server.redis_cpu() - redis0 - idle)
        cpu = sum(phase.node_cpu)
        phase.gen_cpu = time.process_time() - gen0
        phase.steal = steal_s() - steal0
        phase.written = writeback_pages() - written0
        phase.cpu_wait = sum(run_delay_s(p.pid) for p in self.server.procs) - wait0
        phase.writes = sum(proc_writes(p.pid) for p in self.server.procs) - writes0
        gc.enable()
        for c in self.clients:
            c._replay()
        self.phase = None
        return phase, cpu

    def close(self) -> None:
        for c in self.clients:
            if c.transport is not None:
                c.transport.abort()


# --------------------------------------------------------------------------- results


@dataclass
class PhaseResult:
    expected: int
    delivered: int
    lost: int
    corrupted: int
    unattributed: int
    duplicates: int
    echoes: int
    seconds: float
    deliveries_per_s: float
    p50_ms: float  # arrival latency
    p99_ms: float
    max_ms: float
    server_cpu_s: float
    cpu_us_per_delivery: float
    rate: float | None = None
    generator_cpu_s: float = 0.0
    read_p50_ms: float = float("nan")  # read latency (arrival + the generator's queueing)
    read_p99_ms: float = float("nan")
    steal_ms: float = 0.0  # CPU time the hypervisor took from this VM during the phase
    writeback_mb: float = 0.0  # MB the machine wrote back to disk during the phase
    #: ms the server's event loop threads (every node's, summed) were runnable but waited for
    #: a CPU in the phase; NaN when /proc could not tell
    loop_cpu_wait_ms: float = 0.0
    #: the server's write() calls in the phase (0: none counted, e.g. it sends with sendmsg)
    server_writes: int = 0
    #: a cluster: each node's CPU per delivery to its own clients, and Redis's CPU per message
    node_cpu_us_per_delivery: list[float] = field(default_factory=list)
    redis_cpu_us_per_message: float = float("nan")
    redis_cpu_s: float = 0.0


@dataclass
class Result:
    server: str
    n: int
    senders: int
    msgs: int
    payload: int
    registered: int
    register_s: float
    rss_before_kb: int
    rss_after_kb: int
    kb_per_idle_conn: float
    register_cpu_s: float
    unpaced: PhaseResult | None = None
    paced: PhaseResult | None = None
    note: str = ""
    disconnected: int = 0
    extra: dict[str, object] = field(default_factory=dict)


def summarize(phase: Phase, cpu: float, rate: float | None) -> PhaseResult:
    lat = sorted(phase.latencies)
    read = sorted(phase.read_latencies)

    def pct(p: float, values: list[int] = lat) -> float:
        if not values:
            return float("nan")
        return values[min(len(values) - 1, int(p * len(values)))] / 1e6

    # messages that reached at least their observer (a cluster's Redis CPU is per message)
    messages = round(phase.delivered / (phase.n - 1)) if phase.n > 1 else 0
    end = phase.last_delivery or phase.first_send
    secs = max(1e-9, (end - phase.first_send) / 1e9)
    # a corrupted or duplicated copy is not a delivery: losses are what never arrived intact
    lost = phase.expected - phase.delivered
    return PhaseResult(
        expected=phase.expected,
        delivered=phase.delivered,
        lost=lost,
        corrupted=phase.corrupted,
        unattributed=phase.unattributed,
        duplicates=phase.duplicates,
        echoes=phase.echoes,
        seconds=round(secs, 3),
        deliveries_per_s=round(phase.delivered / secs),
        p50_ms=round(pct(0.50), 2),
        p99_ms=round(pct(0.99), 2),
        max_ms=round(lat[-1] / 1e6, 2) if lat else float("nan"),
        server_cpu_s=round(cpu, 2),
        cpu_us_per_delivery=round(cpu / phase.delivered * 1e6, 3)
        if phase.delivered
        else float("nan"),
        rate=rate,
        generator_cpu_s=round(phase.gen_cpu, 2),
        read_p50_ms=round(pct(0.50, read), 2),
        read_p99_ms=round(pct(0.99, read), 2),
        steal_ms=round(phase.steal * 1000),
        writeback_mb=round(phase.written * PAGE / 1e6, 1),
        loop_cpu_wait_ms=round(phase.cpu_wait * 1000, 1),
        server_writes=phase.writes,
        node_cpu_us_per_delivery=[
            round(c / d * 1e6, 3) if d else float("nan")
            for c, d in zip(phase.node_cpu, phase.node_delivered, strict=True)
        ] if phase.nodes > 1 else [],
        redis_cpu_us_per_message=round(phase.redis_cpu / messages * 1e6, 2)
        if phase.nodes > 1 and messages else float("nan"),
        redis_cpu_s=round(phase.redis_cpu, 2),
    )


async def bench_one(server: Server, n: int, s: int, m: int, args: argparse.Namespace) -> Result:
    run = Run(server, n, s, args.payload, args.window)
    if args.inflight and not isinstance(server.dialect, NcatDialect):
        run.inflight = args.inflight
    pid = server.proc.pid  # a cluster: its first node (py-spy); CPU and memory sum every node
    spy = None
    if args.pyspy and server.label.startswith("richchat"):
        out = Path(args.pyspy) / f"{server.label}-{n}.txt"
        spy = subprocess.Popen(
            ["py-spy", "record", "--pid", str(pid), "--format", "raw", "--rate", "500", "-o", str(out)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
    # memory is sampled on an idle server: started (or done registering) and then quiet
    # for IDLE_SETTLE seconds, the same for every server
    redis0, wall0 = server.redis_cpu(), time.monotonic()
    await asyncio.sleep(IDLE_SETTLE)
    server.redis_idle = (server.redis_cpu() - redis0) / (time.monotonic() - wall0)
    rss0 = server.rss_kb()
    vm0 = server.rss_kb("VmRSS")
    cpu0 = sum(server.node_cpu())
    reg = await run.connect_all(timeout=args.register_timeout)
    await run.quiesce(quiet=0.5, timeout=60)
    reg_cpu = sum(server.node_cpu()) - cpu0
    await asyncio.sleep(IDLE_SETTLE - 0.5)
    rss1 = server.rss_kb()
    vm1 = server.rss_kb("VmRSS")
    res = Result(
        server=server.label, n=n, senders=s, msgs=m, payload=args.payload,
        registered=run.registered, register_s=round(reg, 2), rss_before_kb=rss0, rss_after_kb=rss1,
        kb_per_idle_conn=round((rss1 - rss0) / max(1, run.registered), 2),
        register_cpu_s=round(reg_cpu, 2),
    )  # fmt: skip
    res.extra["vmrss_kb_per_idle_conn"] = round((vm1 - vm0) / max(1, run.registered), 2)
    if run.registered < n:
        res.note = f"only {run.registered}/{n} clients registered within {args.register_timeout}s"
    if server.exited() is not None:
        res.note += f" server exited with {server.exited()}"
        run.close()
        return res
    if run.registered == n:
        ph, cpu = await run.run_phase(m, None, timeout=args.phase_timeout)
        res.unpaced = summarize(ph, cpu, None)
        if args.paced_seconds > 0 and server.exited() is None:
            rate = min(args.rate, args.paced_budget / (s * (n - 1)))
            pm = max(4, int(rate * args.paced_seconds))
            ph, cpu = await run.run_phase(pm, rate, timeout=args.phase_timeout)
            res.paced = summarize(ph, cpu, round(rate, 2))
    res.disconnected = run.lost_connections
    if spy is not None:
        spy.send_signal(signal.SIGINT)
        spy.wait(timeout=30)
    run.close()
    await asyncio.sleep(0.2)
    return res


@dataclass
class HandshakeResult:
    server: str
    handshakes: int
    completed: int
    seconds: float
    per_s: float
    server_cpu_s: float
    server_cpu_ms_per_handshake: float
    generator_cpu_s: float
    version: str = ""


async def bench_handshakes(server: Server, k: int, inflight: int = 256) -> HandshakeResult:
    """``k`` TLS handshakes, ``inflight`` at a time, each connection closed once it is done:
    the server's handshake rate and its CPU per handshake (the generator does its side of
    every handshake too: on a 2-core machine the rate is bounded by both)."""
    pid = server.proc.pid
    sem = asyncio.Semaphore(inflight)
    done = 0
    version = ""

    async def one() -> None:
        nonlocal done, version
        async with sem:
            try:
                _reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(HOST, server.port, ssl=client_tls(),
                                            server_hostname=""), 30)
            except (OSError, asyncio.TimeoutError):
                return
            version = writer.get_extra_info("ssl_object").version()
            done += 1
            writer.transport.abort()  # no close_notify exchange: only the handshake counted

    await asyncio.sleep(IDLE_SETTLE)
    cpu0, gen0, t0 = proc_cpu(pid), time.process_time(), time.monotonic()
    await asyncio.gather(*(one() for _ in range(k)))
    secs = time.monotonic() - t0
    await asyncio.sleep(0.3)  # closes handled
    cpu = proc_cpu(pid) - cpu0
    return HandshakeResult(
        server=server.label, handshakes=k, completed=done, seconds=round(secs, 2),
        per_s=round(done / secs), server_cpu_s=round(cpu, 2),
        server_cpu_ms_per_handshake=round(cpu / max(1, done) * 1000, 3),
        generator_cpu_s=round(time.process_time() - gen0, 2), version=version,
    )  # fmt: skip


def handshake_table(rows: list[HandshakeResult]) -> str:
    lines = ["| server | TLS | handshakes | completed | seconds | handshakes/s "
             "| server CPU ms/handshake | generator CPU s |", "|" + "---|" * 8]
    for h in rows:
        lines.append(f"| {h.server} | {h.version} | {h.handshakes} | {h.completed} "
                     f"| {h.seconds:.2f} | {h.per_s:,} | {h.server_cpu_ms_per_handshake:.3f} "
                     f"| {h.generator_cpu_s:.2f} |")
    return "\n".join(lines)


def start(target: str) -> Server | None:
    if target == "richchat":
        return start_richchat("richchat")
    if target == "richchat-uvloop":
        return start_richchat("richchat-uvloop", uvloop=True)
    if target == "richchat-flood":
        return start_richchat("richchat-flood", flood=True)
    if target.startswith(("richchat@", "richchat-tls@")):  # another checkout, for A/B runs
        root = Path(target.partition("@")[2]).resolve()
        if not (root / "richchat" / "__init__.py").is_file():
            raise SystemExit(f"{target}: no richchat package in {root}")
        return start_richchat(target, root=root, tls=target.startswith("richchat-tls@"))
    if target.startswith(("richchat-redis@", "richchat-redis-everysec@")):
        root = Path(target.partition("@")[2]).resolve()
        if not (root / "richchat" / "__init__.py").is_file():
            raise SystemExit(f"{target}: no richchat package in {root}")
        fsync = "everysec" if target.startswith("richchat-redis-everysec@") else "always"
        return start_richchat_cluster(target, appendfsync=fsync, root=root)
    if target == "richchat-tls":
        return start_richchat("richchat-tls", tls=True)
    if target == "richchat-redis":
        return start_richchat_cluster(target)
    if target == "richchat-redis-everysec":
        return start_richchat_cluster(target, appendfsync="everysec")
    if target == "ngircd":
        return start_ngircd()
    if target == "ngircd-tls":
        return start_ngircd("ngircd-tls", tls=True)
    if target == "ncat":
        return start_ncat()
    raise SystemExit(f"unknown target {target}")


def fmt_row(r: Result) -> str:
    def ph(p: PhaseResult | None, lat: bool) -> str:
        if p is None:
            return " - | - | - | - |" + (" - | - |" if lat else "")
        s = f" {p.deliveries_per_s:,} | {p.lost} | {p.corrupted} | {p.cpu_us_per_delivery:.2f} |"
        if lat:
            s += f" {p.p50_ms:.1f} | {p.p99_ms:.1f} |"
        return s

    paced = r.paced
    paced_s = (
        f" {paced.rate:g}/s | {paced.lost} | {paced.corrupted} | {paced.p50_ms:.2f} | {paced.p99_ms:.2f} | {paced.read_p99_ms:.2f} | {paced.cpu_us_per_delivery:.2f} |"
        if paced
        else " - | - | - | - | - | - | - |"
    )
    return (
        f"| {r.server} | {r.n} | {r.senders}x{r.msgs} | {r.registered} | {r.register_s:.2f} | {r.kb_per_idle_conn:.1f} |"
        + ph(r.unpaced, True)
        + paced_s
        + (f" {note} |" if (note := _note(r)) else " |")
    )


def _note(r: Result) -> str:
    """The run's note, plus the hypervisor's steal time in a phase when there was any (a
    stolen slice of tens of ms shows up as a latency outlier for whichever server ran)."""
    parts = [r.note.strip()] if r.note.strip() else []
    for name, p in (("unpaced", r.unpaced), ("paced", r.paced)):
        if p is not None and p.steal_ms >= 10:
            parts.append(f"{name}: {p.steal_ms:.0f} ms CPU stolen by the hypervisor")
    return "; ".join(parts)


def median_table(results: list[Result]) -> str:
    """Medians over repeated runs of each (server, N); losses and corruption summed."""
    groups: dict[tuple[str, int], list[Result]] = {}
    for r in results:
        groups.setdefault((r.server, r.n), []).append(r)
    lines = [
        "| server | N | runs | register s | KB/idle conn | deliveries/s | CPU µs/delivery "
        "| paced p50 ms | paced p99 ms | paced read p99 ms | paced CPU µs/delivery "
        "| paced generator load | lost (all runs) | corrupted (all runs) |",
        "|" + "---|" * 14,
    ]

    def med(values: list[float]) -> float:
        values = sorted(v for v in values if v == v)
        return statistics.median(values) if values else float("nan")

    for (server, n), rs in groups.items():
        un = [r.unpaced for r in rs if r.unpaced]
        pa = [r.paced for r in rs if r.paced]
        lost = sum(p.lost for p in un + pa)
        corrupted = sum(p.corrupted for p in un + pa)
        lines.append(
            f"| {server} | {n} | {len(rs)} | {med([r.register_s for r in rs]):.2f} "
            f"| {med([r.kb_per_idle_conn for r in rs]):.1f} "
            f"| {med([p.deliveries_per_s for p in un]):,.0f} "
            f"| {med([p.cpu_us_per_delivery for p in un]):.2f} "
            f"| {med([p.p50_ms for p in pa]):.1f} | {med([p.p99_ms for p in pa]):.1f} "
            f"| {med([p.read_p99_ms for p in pa]):.1f} "
            f"| {med([p.cpu_us_per_delivery for p in pa]):.2f} "
            f"| {med([p.generator_cpu_s / p.seconds for p in pa]):.0%} | {lost} | {corrupted} |"
        )
    return "\n".join(lines)


def writes_table(results: list[Result]) -> str:
    """Paced: deliveries per server write() and CPU per write(), medians. CPU per delivery
    moves with how many messages each write carries, which moves with the load of the
    moment (a server running late coalesces more); CPU per write is the cost of the write
    path itself. Servers whose writes are not write() calls show '-'."""
    groups: dict[tuple[str, int], list[PhaseResult]] = {}
    for r in results:
        if r.paced is not None:
            groups.setdefault((r.server, r.n), []).append(r.paced)
    lines = ["| server | N | paced deliveries per write() | paced CPU µs per write() "
             "| single rounds, CPU µs per write() |", "|" + "---|" * 5]
    for (server, n), ps in groups.items():
        counted = [p for p in ps if p.server_writes > 0]
        if not counted:
            lines.append(f"| {server} | {n} | - | - | - |")
            continue
        per_write = [p.server_cpu_s / p.server_writes * 1e6 for p in counted]
        lines.append(
            f"| {server} | {n} "
            f"| {statistics.median(p.delivered / p.server_writes for p in counted):.2f} "
            f"| {statistics.median(per_write):.1f} "
            f"| {' / '.join(f'{x:.1f}' for x in per_write)} |")
    return "\n".join(lines)


def sign_test_p(wins: int, n: int) -> float:
    """One-sided sign test: the chance of ``wins`` or more of ``n`` fair coin tosses."""
    return sum(math.comb(n, i) for i in range(wins, n + 1)) / 2**n if n else 1.0


def paired_table(results: list[Result]) -> str:
    """The first server against each other one, round by round (runs of one round follow
    each other, so they share the machine's state): in how many rounds its paced p99 was
    lower, with the sign test's p-value (the chance of that many or more wins if neither
    server were faster)."""
    rounds: dict[tuple[str, int], list[Result]] = {}
    for r in results:
        rounds.setdefault((r.server, r.n), []).append(r)
    first = results[0].server if results else ""
    lines = [
        f"| N | {first} vs | rounds | lower paced p99 (arrival) | p | lower paced read p99 | p "
        f"| median paced p99 ms, {first} / other |",
        "|" + "---|" * 8,
    ]
    for (server, n), rs in rounds.items():
        mine = rounds.get((first, n), [])
        if server == first or not mine:
            continue
        pairs = [
            (a.paced, b.paced)
            for a, b in zip(mine, rs, strict=False)  # a server may have failed a round
            if a.paced is not None and b.paced is not None
        ]
        if not pairs:
            continue
        k = len(pairs)
        arrival = sum(a.p99_ms < b.p99_ms for a, b in pairs)
        read = sum(a.read_p99_ms < b.read_p99_ms for a, b in pairs)
        lines.append(
            f"| {n} | {server} | {k} | {arrival} of {k} | {sign_test_p(arrival, k):.3f} "
            f"| {read} of {k} | {sign_test_p(read, k):.3f} "
            f"| {statistics.median(a.p99_ms for a, _ in pairs):.1f} / "
            f"{statistics.median(b.p99_ms for _, b in pairs):.1f} |"
        )
    return "\n".join(lines)

def cluster_table(results: list[Result]) -> str:
    """Cluster runs beside the embedded server's (target ``richchat``) of the same size:
    medians over the runs; the goals are per-node CPU per delivery at most 1.5x embedded and
    paced p99 (arrival) at most embedded + 5 ms.

    The CPU ratio is given for both phases, since the goal names no load: paced (both servers
    offered the same light load, one message per write()) and unpaced (each at saturation,
    where a server combines as many messages per write() as arrive while it writes: a node,
    with half the recipients, writes its clients twice as often and combines fewer, which the
    deliveries per write() beside the ratio show)."""
    groups: dict[tuple[str, int], list[Result]] = {}
    for r in results:
        groups.setdefault((r.server, r.n), []).append(r)

    def med(values: list[float]) -> float:
        values = sorted(v for v in values if v == v)
        return statistics.median(values) if values else float("nan")

    lines = [
        "| server | N | runs | lost (all runs) | CPU µs/delivery, each node (unpaced) "
        "| Redis CPU µs/message (unpaced) | paced p99 ms | paced CPU µs/delivery, each node "
        "| Redis CPU µs/message (paced) | vs embedded: CPU/delivery, paced "
        "| vs embedded: paced p99 | vs embedded: CPU/delivery, unpaced (deliveries/s; "
        "deliveries per write(), cluster / embedded) |",
        "|" + "---|" * 12,
    ]
    for (server, n), rs in groups.items():
        un = [r.unpaced for r in rs if r.unpaced]
        pa = [r.paced for r in rs if r.paced]
        lost = sum(p.lost for p in un + pa)
        nodes = max((len(p.node_cpu_us_per_delivery) for p in un + pa), default=0)

        def per_node(ps: list[PhaseResult], k: int = nodes) -> str:
            if not k:
                return f"{med([p.cpu_us_per_delivery for p in ps]):.2f}"
            return " / ".join(
                f"{med([p.node_cpu_us_per_delivery[i] for p in ps]):.2f}" for i in range(k)
            )

        base = groups.get(("richchat", n), [])
        versus_cpu = versus_p99 = versus_unpaced = "-"
        if nodes and base:
            emb = med([r.paced.cpu_us_per_delivery for r in base if r.paced])
            mine = max(
                med([p.node_cpu_us_per_delivery[i] for p in pa]) for i in range(nodes)
            )
            versus_cpu = f"{mine / emb:.2f}x (goal <= 1.5x)"
            emb_p99 = med([r.paced.p99_ms for r in base if r.paced])
            versus_p99 = f"{med([p.p99_ms for p in pa]) - emb_p99:+.1f} ms (goal <= +5)"
            emb_un = med([r.unpaced.cpu_us_per_delivery for r in base if r.unpaced])
            mine_un = max(
                med([p.node_cpu_us_per_delivery[i] for p in un]) for i in range(nodes)
            )
            rate = med([p.deliveries_per_s for p in un])
            emb_un_phases = [r.unpaced for r in base if r.unpaced]
            emb_rate = med([p.deliveries_per_s for p in emb_un_phases])

            def per_write(ps: list[PhaseResult]) -> float:
                return med([p.delivered / p.server_writes for p in ps if p.server_writes])

            versus_unpaced = (
                f"{mine_un / emb_un:.2f}x (goal <= 1.5x; {rate:,.0f} / {emb_rate:,.0f}; "
                f"{per_write(un):.0f} / {per_write(emb_un_phases):.0f})"
            )
        lines.append(
            f"| {server} | {n} | {len(rs)} | {lost} | {per_node(un)} "
            f"| {med([p.redis_cpu_us_per_message for p in un]):.1f} "
            f"| {med([p.p99_ms for p in pa]):.1f} | {per_node(pa)} "
            f"| {med([p.redis_cpu_us_per_message for p in pa]):.1f} "
            f"| {versus_cpu} | {versus_p99} | {versus_unpaced} |"
        )
    return "\n".join(lines)


HEADER = (
    "| server | N | S x M | registered | register s | KB/idle conn | deliveries/s | lost | corrupted | CPU µs/delivery | p50 ms | p99 ms "
    "| paced rate/sender | paced lost | paced corrupted | paced p50 ms | paced p99 ms | paced read p99 ms | paced CPU µs/delivery | note |\n"
    "|" + "---|" * 20
)


async def main_async(args: argparse.Namespace) -> list[Result]:
    results: list[Result] = []
    if args.handshakes:
        for target in args.targets.split(","):
            if not target.endswith("-tls"):
                continue
            for _ in range(args.repeat):
                server = start(target)
                if server is None:
                    print(f"skip {target}: not installed", file=sys.stderr)
                    break
                try:
                    h = await bench_handshakes(server, args.handshakes)
                finally:
                    server.stop()
                args.handshake_results.append(h)
                print(handshake_table([h]).splitlines()[-1], file=sys.stderr, flush=True)
    sizes = [tuple(int(x) for x in spec.split(":")) for spec in args.sizes.split(",")]
    targets = args.targets.split(",")
    runs = [(n, s, m, t) for n, s, m in sizes for _ in range(args.repeat) for t in targets]
    for n, s, m, target in runs:
        if target == "ncat" and n > args.ncat_max:
            print(
                f"skip ncat at N={n} (> --ncat-max {args.ncat_max}: it aborts past 1024 fds)",
                file=sys.stderr,
            )
            continue
        if target.startswith("ngircd") and n > args.ngircd_max:
            print(f"skip ngircd at N={n} (> --ngircd-max {args.ngircd_max})", file=sys.stderr)
            continue
        server = start(target)
        if server is None:
            print(f"skip {target}: not installed", file=sys.stderr)
            continue
        try:
            t0 = time.monotonic()
            r = await bench_one(server, n, s, m, args)
            r.extra["wall_s"] = round(time.monotonic() - t0, 1)
            r.extra["command"] = server.config
        finally:
            server.stop()
        results.append(r)
        print(fmt_row(r), file=sys.stderr, flush=True)
    return results


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--targets",
        default="richchat,ngircd,ncat",
        help="richchat, richchat-tls, richchat-uvloop, richchat-flood, richchat-redis (2 nodes + "
        "Redis, AOF always), richchat-redis-everysec, ngircd, ngircd-tls, ncat; richchat@DIR runs "
        "the server of another checkout (A/B comparisons), richchat-tls@DIR the same with TLS, "
        "richchat-redis@DIR and richchat-redis-everysec@DIR its cluster",
    )
    ap.add_argument("--sizes", default="100:10:200,1000:10:20,5000:10:4", help="N:S:M,...")
    ap.add_argument("--payload", type=int, default=100, help="payload bytes per message")
    ap.add_argument("--window", type=int, default=8, help="unpaced: messages in flight per sender")
    ap.add_argument(
        "--rate", type=float, default=100.0, help="paced: messages/s per sender (upper bound)"
    )
    ap.add_argument(
        "--paced-budget",
        type=float,
        default=50_000.0,
        help="paced: max deliveries/s overall (what one generator process receives unsaturated)",
    )
    ap.add_argument("--paced-seconds", type=float, default=3.0, help="paced: duration (0: skip)")
    ap.add_argument("--register-timeout", type=float, default=120.0)
    ap.add_argument("--phase-timeout", type=float, default=60.0)
    ap.add_argument(
        "--inflight",
        type=int,
        default=0,
        help="registrations in flight (default: 256, ngircd 8, ncat 1)",
    )
    ap.add_argument("--repeat", type=int, default=1, help="runs of each server and size")
    ap.add_argument("--ncat-max", type=int, default=1000)
    ap.add_argument("--ngircd-max", type=int, default=1000)
    ap.add_argument(
        "--loop",
        choices=("auto", "asyncio", "uvloop"),
        default="auto",
        help="load generator's event loop",
    )
    ap.add_argument("--pyspy", help="profile richchat servers with py-spy into this directory")
    ap.add_argument("--json", type=Path, help="write results as JSON here")
    ap.add_argument("--handshakes", type=int, default=0,
                    help="TLS targets: also measure this many bare handshakes (0: skip)")
    args = ap.parse_args()
    args.handshake_results = []

    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else 1 << 20
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    sizes_n = max(int(spec.split(":")[0]) for spec in args.sizes.split(","))
    if want < 2 * sizes_n + 100:
        raise SystemExit(
            f"RLIMIT_NOFILE hard limit {hard} is too low for N={sizes_n} (client + server ends)"
        )

    if args.loop != "asyncio":
        try:
            import uvloop

            uvloop.install()
            args.loop = "uvloop"
        except ImportError:
            if args.loop == "uvloop":
                raise
            args.loop = "asyncio"
    print(f"load generator loop: {args.loop}; cores: {os.cpu_count()}", file=sys.stderr)
    print(HEADER, file=sys.stderr)
    t0 = time.monotonic()
    results = asyncio.run(main_async(args))
    print(f"total {time.monotonic() - t0:.0f}s", file=sys.stderr)
    print(HEADER)
    for r in results:
        print(fmt_row(r))
    if args.handshake_results:
        print()
        print(handshake_table(args.handshake_results))
    if args.json:
        args.json.write_text(json.dumps(
            [asdict(r) for r in results] + [asdict(h) for h in args.handshake_results],
            indent=1))
    if any(p.node_cpu_us_per_delivery for r in results for p in (r.unpaced, r.paced) if p):
        print()
        print(cluster_table(results))
    if args.repeat > 1:
        print()
        print(median_table(results))
        if len({r.server for r in results}) > 1:
            print()
            print(paired_table(results))
        print()
        print(writes_table(results))


if __name__ == "__main__":
    main()
