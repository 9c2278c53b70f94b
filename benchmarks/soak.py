"""Soak benchmark: hundreds of clients of every dialect, chatting and churning for minutes.

A real ``richchat server`` (its defaults: flood control on, history on disk) on loopback,
``--clients`` connections at once, of the three dialects (``--mix``: hello clients, seed
clients, netcat users), each sending ``--rate`` messages per second, while ``--churn``
connections per second are replaced (one leaves, a new one connects and registers), for
``--duration`` seconds. Leaving takes turns between the three ways a client goes: a polite
quit (``CMD_QUIT`` / ``/quit``, then reading up to the server's end of the connection), a close
(FIN) and a reset (RST, ``SO_LINGER`` 0). ``--anchors`` connections never churn: they stay for
the whole run.

Where the messages go: seed clients can only talk in the lobby, which everyone is in; hello
clients and netcat users each join one of ``--rooms`` rooms and talk there (they still get
the lobby's traffic). So a lobby message reaches every client and a room message ~10.

Every message is numbered (one counter for the run): its text is ``#NUMBER#`` plus a filler
derived from the number, so each copy received is checked for its room, its sender and its
bytes. **Loss and duplicates** are decided per client and room, without any timing guess:

* a client's membership of a room starts when it reads the end of what the server sends on
  joining (hello: ``YOU`` for the lobby, ``RLIST|room`` for a room; seed: the first ``ULIST``;
  netcat: ``*** You are NAME`` / ``*** Members of #room``); a message *written* by its sender
  after that moment was relayed after the join, so it must arrive;
* every 10 s (and before leaving) each client sends ``PING|token`` and waits for ``PONG``: a
  message whose sender had *read its own echo* before that ``PING`` was written was relayed
  before the ``PING`` was handled, so it must have arrived before the ``PONG`` (a polite quit
  is the same barrier: the server writes everything queued, then closes);
* so at each barrier, every message to the room written after the membership began and
  echoed before the barrier was written must have been received: one missing is a **loss**; a
  copy received twice, or one arriving after a barrier that should have preceded it, a
  **duplicate**; a sender's messages out of order, **reordered**; a copy with the wrong text,
  room or sender, **corrupt**. Messages whose fate the barriers cannot decide (written
  before the join, or echoed after the last barrier) are neither required nor counted lost.

Measured every ``--sample`` seconds (10): deliveries, latency p50/p99/max (from the sender's
write to the recipient's read, in this one process: it includes the generator's own queueing),
the server's resident memory (VmRSS, RssAnon) and open descriptors (/proc/PID/fd), the
server's and the generator's CPU, the load average. **Memory growth** compares the last sample
under load with the first sample after ``--warmup``; **descriptors** are counted after a
primer client has come and gone (the history files are open then) and again after every client
has left at the end.

The run fails (exit status 1) on any loss, duplicate, reordering, corruption, error frame
from the server, connection dropped by the server, client stuck registering or leaving, memory
growth over 10% after warm-up, or descriptors not back to their baseline; status 2 if the
server could not be started or died.

Only loopback (127.0.0.1); every loop is bounded in count and in time; the server is started
with ``--host 127.0.0.1 --no-beacon --no-mdns`` and stopped by its PID.

    python benchmarks/soak.py                          # 200 clients, 10 minutes
    python benchmarks/soak.py --duration 60 --csv /tmp/soak.csv
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
CLK_TCK = os.sysconf("SC_CLK_TCK")
FILLER = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ" * 2
INF = math.inf
DIALECTS = ("hello", "seed", "netcat")
LEAVE_MODES = ("quit", "close", "reset")
#: states with a deadline (a client is stuck if still in one after STEP_TIMEOUT)
_STEPS = ("connecting", "registering", "joining", "leaving")
#: seconds a client may take to register, to get a PONG, or to be gone after leaving
STEP_TIMEOUT = 20.0


def payload(no: int) -> str:
    k = no % 61
    return f"#{no}#{FILLER[k:k + 24]}"


# --------------------------------------------------------------------------- /proc


def proc_cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return sum(int(x) for x in fields[11:15]) / CLK_TCK


def proc_mem_kb(pid: int) -> tuple[int, int]:
    """(VmRSS, RssAnon) in KB."""
    vm = anon = 0
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                vm = int(line.split()[1])
            elif line.startswith("RssAnon:"):
                anon = int(line.split()[1])
    return vm, anon


def proc_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def loadavg() -> str:
    with open("/proc/loadavg") as fh:
        return " ".join(fh.read().split()[:3])


# --------------------------------------------------------------------------- the server


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    port: int
    tmp: Path
    command: str

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> int | None:
        """SIGTERM by PID, wait; SIGKILL if it does not go within 10 s. Its exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
        shutil.rmtree(self.tmp, ignore_errors=True)
        return self.proc.returncode


def start_server(extra: list[str]) -> Server:
    tmp = Path(tempfile.mkdtemp(prefix="soak-"))
    args = [
        "server", "--host", HOST, "--port", "0", "--no-beacon", "--no-mdns",
        "--data-dir", str(tmp / "data"), "--log-level", "warning", *extra,
    ]  # fmt: skip
    cmd = [sys.executable, "-m", "richchat", *args]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, env=env, cwd=tmp)
    assert proc.stdout is not None
    line = proc.stdout.readline().decode()
    m = re.search(r"listening on (\S+):(\d+)", line)
    if not m:
        proc.kill()
        proc.wait(timeout=5)
        shutil.rmtree(tmp, ignore_errors=True)
        raise RuntimeError(f"richchat server did not start: {line!r}")
    return Server(proc, int(m.group(2)), tmp, "richchat " + " ".join(args))


# --------------------------------------------------------------------------- bookkeeping


class Ledger:
    """Every message sent: its room, sender, write time and echo time, by number."""

    def __init__(self, rooms: list[str]) -> None:
        self.rooms = rooms
        self.room_index = {r: i for i, r in enumerate(rooms)}
        self.m_room = array("H")
        self.m_sender = array("I")
        self.m_ts = array("d")
        self.m_te = array("d")  # when the sender read its echo (inf: not yet, or never)
        self.room_nos = [array("I") for _ in rooms]
        self.room_ts = [array("d") for _ in rooms]

    def add(self, room: int, sender: int, ts: float) -> int:
        no = len(self.m_ts)
        self.m_room.append(room)
        self.m_sender.append(sender)
        self.m_ts.append(ts)
        self.m_te.append(INF)
        self.room_nos[room].append(no)
        self.room_ts[room].append(ts)
        return no


@dataclass
class Counts:
    sent: int = 0
    received: int = 0
    must: int = 0  # copies the barriers proved due (and checked)
    lost: int = 0
    duplicate: int = 0
    late: int = 0
    reordered: int = 0
    corrupt: int = 0
    errors: int = 0  # ERR frames / *** Error lines from the server
    dropped: int = 0  # connections the server ended unasked
    stuck: int = 0  # clients not registered / not answered / not gone in STEP_TIMEOUT
    connects: int = 0
    disconnects: int = 0
    samples: list[str] = field(default_factory=list)

    def problem(self, text: str) -> None:
        if len(self.samples) < 20:
            self.samples.append(text)

    @property
    def failures(self) -> int:
        return (self.lost + self.duplicate + self.late + self.reordered + self.corrupt
                + self.errors + self.dropped + self.stuck)


class Membership:
    """One client's stay in one room, checked at each barrier."""

    __slots__ = ("last_from", "last_tb", "received", "room", "scan_pos", "t_start", "undecided")

    def __init__(self, ledger: Ledger, room: int, t_start: float) -> None:
        self.room = room
        self.t_start = t_start
        self.received: set[int] = set()
        self.last_from: dict[int, int] = {}
        self.last_tb = -INF
        # messages written after the start are the candidates
        self.scan_pos = bisect_right(ledger.room_ts[room], t_start)
        self.undecided: list[int] = []

    def check(self, ledger: Ledger, tb: float, counts: Counts, who: str) -> None:
        """A barrier written at ``tb`` was answered (or the server closed after a quit
        written at ``tb``): every message written after the start and echoed before ``tb``
        must have arrived."""
        nos, te = ledger.room_nos[self.room], ledger.m_te
        end = bisect_left(ledger.room_ts[self.room], tb)
        undecided: list[int] = []
        received = self.received
        for pos in (*self.undecided, *range(self.scan_pos, end)):
            no = nos[pos]
            if te[no] < tb:
                counts.must += 1
                if no not in received:
                    counts.lost += 1
                    counts.problem(f"lost: {who} never got #{no} in {ledger.rooms[self.room]}")
            else:
                undecided.append(pos)
        self.undecided = undecided
        self.scan_pos = max(self.scan_pos, end)
        self.received = {no for no in received if not te[no] < tb}
        self.last_tb = tb


# --------------------------------------------------------------------------- clients


class Session(asyncio.Protocol):
    """One connection of one dialect, from connect to gone."""

    def __init__(self, soak: Soak, slot: int, sid: int, dialect: str, room: str,
                 anchor: bool) -> None:
        self.soak = soak
        self.slot = slot
        self.sid = sid
        self.name = f"u{sid}"
        self.dialect = dialect
        self.room = room
        self.anchor = anchor
        self.transport: asyncio.Transport | None = None
        self.buf = b""
        self.state = "connecting"  # registering, joining, ready, leaving, gone
        self.t0 = time.monotonic()
        self.deadline = self.t0 + STEP_TIMEOUT
        self.members: dict[str, Membership] = {}
        self.next_send = INF
        self.next_barrier = INF
        self.barrier: tuple[str, float] | None = None  # token, written at
        self.barrier_seq = 0
        self.leave_mode = ""
        self.leave_at = INF  # the quit's write time
        self.closing_by_us = False
        self.done = asyncio.get_running_loop().create_future()

    # -- asyncio

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.state = "registering"
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.dialect == "hello":
            self.write(f"HELLO|1|soak/1\nCMD_USER|{self.name}\n")
        elif self.dialect == "seed":
            self.write(f"CMD_USER|{self.name}\n")
        elif self.sid % 2:
            self.write(f"{self.name}\n")  # typed at once: the first line makes it a netcat user
        # else: wait for the nickname prompt (after the server's 0.4 s)

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data
        if b"\n" not in buf:
            self.buf = buf
            return
        *lines, self.buf = buf.split(b"\n")
        now = time.monotonic()
        handle = self.soak.handlers[self.dialect]
        for raw in lines:
            handle(self, raw.decode("utf-8", "replace"), now)

    def eof_received(self) -> bool | None:
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        soak = self.soak
        now = time.monotonic()
        if self.state == "leaving" and self.leave_mode == "quit":
            for m in self.members.values():
                m.check(soak.ledger, self.leave_at, soak.counts, self.name)
        elif not self.closing_by_us and self.state != "gone" and not soak.stopping_server:
            soak.counts.dropped += 1
            soak.counts.problem(f"dropped: {self.name} ({self.dialect}) in state {self.state}"
                                f" after {now - self.t0:.1f}s: {exc}")
        self.members.clear()
        self.state = "gone"
        soak.gone(self)
        if not self.done.done():
            self.done.set_result(None)

    # -- actions

    def write(self, text: str) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(text.encode())

    def start_membership(self, room: str, now: float) -> None:
        self.members[room] = Membership(self.soak.ledger, self.soak.ledger.room_index[room], now)

    def ready(self, now: float) -> None:
        self.state = "ready"
        self.soak.counts.connects += 1
        period = 1.0 / self.soak.args.rate
        self.next_send = now + random.uniform(0, period)
        self.next_barrier = now + random.uniform(0, self.soak.args.barrier)

    def send_message(self, now: float) -> None:
        soak = self.soak
        room = "lobby" if self.dialect == "seed" else self.room
        no = soak.ledger.add(soak.ledger.room_index[room], self.sid, now)
        text = payload(no)
        if self.dialect == "hello":
            self.write(f"RMSG|{room}|{text}\n")
        elif self.dialect == "seed":
            self.write(f"MSG|{text}\n")
        else:
            self.write(f"{text}\n")
        soak.counts.sent += 1

    def send_barrier(self, now: float) -> None:
        self.barrier_seq += 1
        token = f"b{self.barrier_seq}"
        self.barrier = (token, now)
        self.write(f"PING|{token}\n")

    def leave(self, mode: str, now: float) -> None:
        """Stop talking and go: a quit (then read to the end), or a barrier then a close/reset."""
        self.state = "leaving"
        self.leave_mode = mode
        self.deadline = now + STEP_TIMEOUT
        self.next_send = self.next_barrier = INF
        if mode == "quit":
            self.leave_at = now
            self.write("CMD_QUIT|soak\n" if self.dialect != "netcat" else "/quit soak\n")
        elif self.barrier is None:
            self.send_barrier(now)
        # else: the barrier in flight is the last one

    def on_pong(self, token: str, now: float) -> None:
        if self.barrier is None or self.barrier[0] != token:
            return
        tb = self.barrier[1]
        self.barrier = None
        soak = self.soak
        for m in self.members.values():
            m.check(soak.ledger, tb, soak.counts, self.name)
        if self.state == "leaving" and self.leave_mode != "quit":
            self.abort(reset=self.leave_mode == "reset")
        elif self.state == "ready":
            self.next_barrier = now + soak.args.barrier

    def abort(self, reset: bool) -> None:
        self.closing_by_us = True
        self.members.clear()
        if self.transport is None:
            return
        if reset:
            sock = self.transport.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.transport.abort()
        else:
            self.transport.close()

    def error_line(self, line: str) -> None:
        soak = self.soak
        soak.counts.errors += 1
        soak.counts.problem(f"error to {self.name} ({self.dialect}): {line[:200]}")

    # -- receiving

    def deliver(self, room: str, sender: str, text: str, now: float) -> None:
        m = self.members.get(room)
        if m is None:
            return  # history before the join's end, or traffic of a room we have not joined
        soak = self.soak
        if soak.inject:
            soak.injected += 1
            if soak.injected % 50_000 == 0:
                if soak.inject == "drop":
                    return  # the checker's own test: a copy "lost"
                self._deliver(m, room, sender, text, now)  # ... or "duplicated"
        self._deliver(m, room, sender, text, now)

    def _deliver(self, m: Membership, room: str, sender: str, text: str, now: float) -> None:
        soak = self.soak
        counts = soak.counts
        counts.received += 1
        ledger = soak.ledger
        try:
            no = int(text.split("#", 2)[1])
            ok = (
                0 <= no < len(ledger.m_ts)
                and text == payload(no)
                and ledger.m_room[no] == m.room
                and sender == f"u{ledger.m_sender[no]}"
            )
        except (ValueError, IndexError):
            ok = False
        if not ok:
            counts.corrupt += 1
            counts.problem(f"corrupt: {self.name} got {sender}: {text[:80]!r} in {room}")
            return
        soak.latencies.append(now - ledger.m_ts[no])
        sid = ledger.m_sender[no]
        if sid == self.sid and ledger.m_te[no] == INF:
            ledger.m_te[no] = now
        if no in m.received:
            counts.duplicate += 1
            counts.problem(f"duplicate: {self.name} got #{no} twice in {room}")
            return
        if ledger.m_te[no] < m.last_tb:
            counts.late += 1
            counts.problem(f"late: {self.name} got #{no} in {room} after a barrier")
            return
        m.received.add(no)
        last = m.last_from.get(sid)
        if last is not None and no < last:
            counts.reordered += 1
            counts.problem(f"reordered: {self.name} got #{no} after #{last} from u{sid}")
        else:
            m.last_from[sid] = no


def handle_hello(s: Session, line: str, now: float) -> None:
    tag = line[:line.find("|")]
    if tag == "RMSG":
        parts = line.split("|", 5)
        if len(parts) == 6:
            s.deliver(parts[1], parts[4], parts[5], now)
    elif tag == "PONG":
        s.on_pong(line[5:], now)
    elif tag == "YOU" and "lobby" not in s.members:
        s.start_membership("lobby", now)
        s.state = "joining"
        s.write(f"CMD_JOIN|{s.room}\n")
    elif tag == "RLIST" and s.state == "joining" and line.startswith(f"RLIST|{s.room}|"):
        s.start_membership(s.room, now)
        s.ready(now)
    elif tag == "ERR":
        s.error_line(line)
    elif tag == "PING":
        s.write(f"PONG|{line[5:]}\n")
    elif tag == "BYE" and not s.soak.stopping_server:
        s.error_line(line)


def handle_seed(s: Session, line: str, now: float) -> None:
    if line.startswith("MSG|"):
        sender, _, text = line[4:].partition(": ")
        s.deliver("lobby", sender, text, now)
    elif line.startswith("PONG|"):
        s.on_pong(line[5:], now)
    elif line.startswith("ULIST|"):
        if "lobby" not in s.members and s.state == "registering":
            s.start_membership("lobby", now)
            s.ready(now)
    elif line.startswith("ERR|"):
        s.error_line(line)


def handle_netcat(s: Session, line: str, now: float) -> None:
    if line.startswith("*** "):
        body = line[4:]
        if body.startswith("Error:"):
            s.error_line(line)
        elif body.startswith("Type a nickname") and s.state == "registering" and not s.sid % 2:
            s.write(f"{s.name}\n")
        elif body.startswith(f"You are {s.name}.") and "lobby" not in s.members:
            s.start_membership("lobby", now)
            s.state = "joining"
            s.write(f"/join {s.room}\n")
        elif s.state == "joining" and body.startswith(f"Members of #{s.room}:"):
            s.start_membership(s.room, now)
            s.ready(now)
    elif line.startswith("PONG|"):
        s.on_pong(line[5:], now)
    elif line.startswith("["):
        close = line.find("] ")
        if close < 0 or line[1:3].isdigit():
            return  # history: "[HH:MM] ..."
        sender, _, text = line[close + 2:].partition(": ")
        s.deliver(line[1:close], sender, text, now)
    elif line:
        sender, _, text = line.partition(": ")
        s.deliver("lobby", sender, text, now)


# --------------------------------------------------------------------------- the run


@dataclass
class Row:
    t_s: float
    clients: int
    connects: int
    disconnects: int
    sent: int
    received: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    rss_kb: int
    rss_anon_kb: int
    fds: int
    server_cpu_pct: float
    generator_cpu_pct: float
    lost: int
    duplicate: int
    loadavg1: float

    HEADER = ("t_s,clients,connects,disconnects,sent,received,p50_ms,p99_ms,max_ms,rss_kb,"
              "rss_anon_kb,fds,server_cpu_pct,generator_cpu_pct,lost,duplicate,loadavg1")

    def csv(self) -> str:
        return ",".join(str(v) for v in (
            self.t_s, self.clients, self.connects, self.disconnects, self.sent, self.received,
            self.p50_ms, self.p99_ms, self.max_ms, self.rss_kb, self.rss_anon_kb, self.fds,
            self.server_cpu_pct, self.generator_cpu_pct, self.lost, self.duplicate,
            self.loadavg1))


def quantile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


class Soak:
    def __init__(self, args: argparse.Namespace, server: Server) -> None:
        self.args = args
        self.server = server
        self.rooms = ["lobby", *(f"soak{i}" for i in range(args.rooms))]
        self.ledger = Ledger(self.rooms)
        self.counts = Counts()
        self.handlers = {"hello": handle_hello, "seed": handle_seed, "netcat": handle_netcat}
        self.sessions: set[Session] = set()
        self.slots: list[str] = []
        for dialect, n in args.mix:
            self.slots += [dialect] * n
        random.Random(7).shuffle(self.slots)
        self.next_sid = 1
        self.latencies: list[float] = []
        self.rows: list[Row] = []
        self.totals = (0, 0, 0, 0)  # connects, disconnects, sent, received at the last sample
        self.sending_until = INF
        self.finished = False
        self.stopping_server = False
        #: the checker's own test (--inject): drop or duplicate one copy in 50,000
        self.inject: str = args.inject
        self.injected = 0
        self.gone_count = 0
        self.leave_turn = 0

    def gone(self, s: Session) -> None:
        self.sessions.discard(s)
        if s.closing_by_us or s.leave_mode:
            self.counts.disconnects += 1

    async def spawn(self, slot: int) -> None:
        sid = self.next_sid
        self.next_sid += 1
        dialect = self.slots[slot]
        room = f"soak{slot % self.args.rooms}"
        s = Session(self, slot, sid, dialect, room, anchor=slot < self.args.anchors)
        self.sessions.add(s)
        loop = asyncio.get_running_loop()
        try:
            await asyncio.wait_for(
                loop.create_connection(lambda: s, HOST, self.server.port), STEP_TIMEOUT)
        except (OSError, asyncio.TimeoutError) as exc:
            self.counts.stuck += 1
            self.counts.problem(f"connect failed: {exc}")
            self.sessions.discard(s)

    def pick_leaver(self) -> Session | None:
        pool = [s for s in self.sessions if s.state == "ready" and not s.anchor]
        return random.choice(pool) if pool else None

    async def ticker(self) -> None:
        """Sends (until ``sending_until``), barriers and time-outs: one pass over the clients
        every 10 ms, until ``finished`` (the run's end bounds it)."""
        period = 1.0 / self.args.rate
        while not self.finished:
            now = time.monotonic()
            sending = now < self.sending_until
            for s in list(self.sessions):
                if s.state == "ready" and sending:
                    if now >= s.next_send:
                        s.send_message(now)
                        s.next_send += period
                        if s.next_send < now - 1.0:  # the generator fell behind: no catch-up burst
                            s.next_send = now + period
                    if now >= s.next_barrier and s.barrier is None:
                        s.next_barrier = INF
                        s.send_barrier(now)
                late_step = now > s.deadline and s.state in _STEPS
                late_pong = s.barrier is not None and now - s.barrier[1] > STEP_TIMEOUT
                if late_step or late_pong:
                    self.stuck(s, now)
            await asyncio.sleep(0.01)

    def stuck(self, s: Session, now: float) -> None:
        self.counts.stuck += 1
        self.counts.problem(f"stuck: {s.name} ({s.dialect}) in state {s.state} for "
                            f"{now - s.t0:.1f}s")
        s.deadline = INF
        s.barrier = None
        s.state = "leaving"
        s.leave_mode = ""  # not a quit: nothing is checked at its end
        s.abort(reset=True)

    async def churner(self, until: float) -> None:
        rate = self.args.churn
        if rate <= 0:
            return
        step = 1.0 / rate
        t = time.monotonic()
        tasks: set[asyncio.Task[None]] = set()
        while True:
            t += step
            delay = t - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            now = time.monotonic()
            if now >= until:
                break
            s = self.pick_leaver()
            if s is None:
                continue
            mode = LEAVE_MODES[self.leave_turn % len(LEAVE_MODES)]
            self.leave_turn += 1
            s.leave(mode, now)
            task = asyncio.ensure_future(self.spawn(s.slot))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.wait(tasks, timeout=STEP_TIMEOUT)

    def sample(self, t_s: float, cpu: tuple[float, float, float]) -> tuple[float, float, float]:
        """One row for the window since the last sample (cpu: server CPU, own CPU, wall)."""
        pid = self.server.pid
        now = time.monotonic()
        scpu = proc_cpu(pid)
        times = os.times()
        gcpu = times.user + times.system
        wall = now - cpu[2]
        lat = sorted(self.latencies)
        self.latencies = []
        vm, anon = proc_mem_kb(pid)
        c = self.counts
        totals = (c.connects, c.disconnects, c.sent, c.received)
        prev = self.totals
        self.totals = totals
        row = Row(
            t_s=round(t_s, 1),
            clients=sum(1 for s in self.sessions if s.state == "ready"),
            connects=totals[0] - prev[0],
            disconnects=totals[1] - prev[1],
            sent=totals[2] - prev[2],
            received=totals[3] - prev[3],
            p50_ms=round(quantile(lat, 0.5) * 1000, 2),
            p99_ms=round(quantile(lat, 0.99) * 1000, 2),
            max_ms=round(lat[-1] * 1000, 2) if lat else 0.0,
            rss_kb=vm,
            rss_anon_kb=anon,
            fds=proc_fds(pid),
            server_cpu_pct=round(100 * (scpu - cpu[0]) / wall, 1),
            generator_cpu_pct=round(100 * (gcpu - cpu[1]) / wall, 1),
            lost=c.lost,
            duplicate=c.duplicate + c.late,
            loadavg1=float(loadavg().split()[0]),
        )
        self.rows.append(row)
        others = c.failures - c.lost - c.duplicate - c.late
        print(f"{row.t_s:7.1f}s clients={row.clients:4d} +{row.connects:3d}/-{row.disconnects:3d} "
              f"sent={row.sent:6d} recv={row.received:8d} p50={row.p50_ms:6.2f}ms "
              f"p99={row.p99_ms:7.2f}ms max={row.max_ms:7.1f}ms rss={vm / 1024:6.1f}MB "
              f"fds={row.fds:4d} cpu={row.server_cpu_pct:5.1f}% gen={row.generator_cpu_pct:5.1f}% "
              f"lost={c.lost} dup={c.duplicate + c.late} other={others}",
              file=sys.stderr, flush=True)
        return scpu, gcpu, now

    async def sampler(self, t0: float, until: float) -> None:
        times = os.times()
        cpu = (proc_cpu(self.server.pid), times.user + times.system, time.monotonic())
        step = self.args.sample
        k = 1
        while True:
            target = t0 + k * step
            if target > until + 1e-6:
                return
            await asyncio.sleep(max(0.0, target - time.monotonic()))
            if self.server.proc.poll() is not None:
                return
            cpu = self.sample(time.monotonic() - t0, cpu)
            k += 1

    async def prime(self) -> None:
        """One client of each dialect comes, talks and goes: what the server opens lazily
        (the history's WAL) is open before the descriptor baseline is counted."""
        for dialect in DIALECTS:
            if dialect not in self.slots:
                continue
            slot = self.slots.index(dialect)
            await self.spawn(slot)
            s = next(x for x in self.sessions if x.slot == slot)
            await wait_until(lambda s=s: s.state in ("ready", "gone"), STEP_TIMEOUT)  # type: ignore[misc]
            s.send_message(time.monotonic())
            s.leave("quit", time.monotonic())
            await asyncio.wait({s.done}, timeout=STEP_TIMEOUT)
        self.totals = (0, 0, 0, 0)
        self.counts.connects = self.counts.disconnects = self.counts.sent = 0
        self.counts.received = 0

    async def run(self) -> dict[str, object]:
        args = self.args
        pid = self.server.pid
        ticker = asyncio.ensure_future(self.ticker())
        try:
            return await self._run(args, pid)
        finally:
            self.finished = True
            await asyncio.wait({ticker}, timeout=1.0)

    async def _run(self, args: argparse.Namespace, pid: int) -> dict[str, object]:
        await self.prime()
        await asyncio.sleep(1.0)
        fds_base = proc_fds(pid)
        mem_base = proc_mem_kb(pid)
        result: dict[str, object] = {"fds_base": fds_base, "mem_base_kb": mem_base}
        # everyone connects, 20 at a time
        for slot in range(len(self.slots)):
            await self.spawn(slot)
            if slot % 20 == 19:
                await asyncio.sleep(0.05)
        await wait_until(lambda: all(s.state == "ready" for s in self.sessions), STEP_TIMEOUT)
        self.counts.connects = 0
        t0 = time.monotonic()
        until = self.sending_until = t0 + args.duration
        await asyncio.gather(self.churner(until), self.sampler(t0, until))
        if self.server.proc.poll() is not None:
            result["server_died"] = self.server.proc.returncode
            return result
        # the end: joins and leaves under way finish, a last barrier for all, everyone leaves
        await wait_until(lambda: all(s.state in ("ready", "gone") for s in self.sessions),
                         STEP_TIMEOUT + 1)
        now = time.monotonic()
        for s in list(self.sessions):
            s.next_barrier = INF
            if s.state == "ready" and s.barrier is None:
                s.send_barrier(now)
        await wait_until(lambda: all(s.barrier is None for s in self.sessions), STEP_TIMEOUT + 1)
        for i, s in enumerate(list(self.sessions)):
            if s.state == "ready":
                s.leave(LEAVE_MODES[i % len(LEAVE_MODES)], time.monotonic())
        await wait_until(lambda: not self.sessions, STEP_TIMEOUT + 2)
        for s in list(self.sessions):
            self.stuck(s, time.monotonic())
        # descriptors back to the baseline? (the server closes each as it sees its client go)
        await wait_until(lambda: proc_fds(pid) <= fds_base, 15.0)
        result["fds_end"] = proc_fds(pid)
        await asyncio.sleep(1.0)
        result["mem_end_kb"] = proc_mem_kb(pid)
        return result


async def wait_until(cond: Callable[[], bool], timeout: float) -> bool:
    """Poll ``cond`` every 20 ms for at most ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        await asyncio.sleep(0.02)
    return cond()


# --------------------------------------------------------------------------- report


def parse_mix(text: str) -> list[tuple[str, int]]:
    out = []
    for part in text.split(","):
        name, _, n = part.partition(":")
        if name not in DIALECTS or not n.isdigit():
            raise argparse.ArgumentTypeError(f"bad --mix part {part!r} (DIALECT:N, one of "
                                             f"{', '.join(DIALECTS)})")
        out.append((name, int(n)))
    return out


def report(args: argparse.Namespace, soak: Soak, result: dict[str, object], load0: str,
           load1: str, wall: float) -> tuple[str, bool]:
    rows = soak.rows
    c = soak.counts
    warm = [r for r in rows if r.t_s > args.warmup + 1e-6]
    ok = True
    lines = []

    def add(what: str, value: str, verdict: str = "") -> None:
        lines.append(f"| {what} | {value} | {verdict} |")

    add(f"clients at once ({'/'.join(d for d, _ in args.mix)})", f"{sum(n for _, n in args.mix)} "
        f"({'/'.join(str(n) for _, n in args.mix)}), {args.anchors} of them for the whole run")
    add("duration", f"{args.duration:.0f} s (+ connect and teardown: {wall:.0f} s in all)")
    add("messages sent", f"{c.sent:,} ({c.sent / args.duration:,.0f}/s)")
    add("copies received and checked", f"{c.received:,} ({c.received / args.duration:,.0f}/s)")
    add("copies proven due by the barriers", f"{c.must:,}")
    add("connects / disconnects during the run",
        f"{sum(r.connects for r in rows):,} / {sum(r.disconnects for r in rows):,} "
        f"({sum(r.disconnects for r in rows) / args.duration:.1f}/s)")
    for what, n in (("lost", c.lost), ("duplicated (or late)", c.duplicate + c.late),
                    ("reordered", c.reordered), ("corrupt", c.corrupt),
                    ("error frames from the server", c.errors),
                    ("connections dropped by the server", c.dropped),
                    ("clients stuck (register, barrier, leave)", c.stuck)):
        add(what, str(n), "ok" if n == 0 else "**FAIL**")
        ok &= n == 0
    if rows:
        p50 = sorted(r.p50_ms for r in rows)
        p99 = sorted(r.p99_ms for r in rows)
        add("latency p50 per window: median (min-max)",
            f"{p50[len(p50) // 2]:.2f} ms ({p50[0]:.2f}-{p50[-1]:.2f})")
        add("latency p99 per window: median (min-max)",
            f"{p99[len(p99) // 2]:.2f} ms ({p99[0]:.2f}-{p99[-1]:.2f})")
        add("latency max (any window)", f"{max(r.max_ms for r in rows):.1f} ms")
        cpu = sorted(r.server_cpu_pct for r in rows)
        add("server CPU per window: median (min-max)",
            f"{cpu[len(cpu) // 2]:.1f}% of a core ({cpu[0]:.1f}-{cpu[-1]:.1f})")
        gen = sorted(r.generator_cpu_pct for r in rows)
        add("generator CPU per window: median", f"{gen[len(gen) // 2]:.1f}% of a core")
    mem_base = result.get("mem_base_kb")
    if isinstance(mem_base, tuple):
        add("server RSS before the clients (VmRSS / RssAnon)",
            f"{mem_base[0] / 1024:.1f} / {mem_base[1] / 1024:.1f} MB")
    if warm:
        ref, last = warm[0], warm[-1]
        growth = (last.rss_kb - ref.rss_kb) / ref.rss_kb
        peak = max(r.rss_kb for r in warm)
        add(f"server RSS at {ref.t_s:.0f} s (after warm-up) -> at {last.t_s:.0f} s",
            f"{ref.rss_kb / 1024:.1f} -> {last.rss_kb / 1024:.1f} MB ({growth:+.1%}; "
            f"peak {peak / 1024:.1f} MB); RssAnon {ref.rss_anon_kb / 1024:.1f} -> "
            f"{last.rss_anon_kb / 1024:.1f} MB", "ok" if growth < 0.10 else "**FAIL**")
        ok &= growth < 0.10
    else:
        add("server RSS growth after warm-up", "no sample after the warm-up", "**FAIL**")
        ok = False
    mem_end = result.get("mem_end_kb")
    if isinstance(mem_end, tuple):
        add("server RSS after every client left (VmRSS / RssAnon)",
            f"{mem_end[0] / 1024:.1f} / {mem_end[1] / 1024:.1f} MB")
    fds_base, fds_end = result.get("fds_base"), result.get("fds_end")
    if rows:
        add("server descriptors under load: min-max", f"{min(r.fds for r in rows)}-"
            f"{max(r.fds for r in rows)}")
    if "server_died" in result:
        add("server", f"died, exit status {result['server_died']}", "**FAIL**")
        ok = False
    else:
        fd_ok = isinstance(fds_end, int) and isinstance(fds_base, int) and fds_end <= fds_base
        add("server descriptors: baseline -> after everyone left", f"{fds_base} -> {fds_end}",
            "ok" if fd_ok else "**FAIL**")
        ok &= fd_ok
    add("server exit status (SIGTERM)", str(result.get("server_exit")),
        "ok" if result.get("server_exit") == 0 else "**FAIL**")
    ok &= result.get("server_exit") == 0
    add("load average (1/5/15 min) before / after", f"{load0} / {load1}")
    head = "| measure | result | verdict |\n|---|---|---|\n"
    text = head + "\n".join(lines)
    if c.samples:
        text += "\n\nFirst problems:\n" + "\n".join(f"  {p}" for p in c.samples)
    return text, ok


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=600.0, help="seconds of load (600)")
    ap.add_argument("--mix", type=parse_mix, default=parse_mix("hello:100,netcat:80,seed:20"),
                    help="clients at once, per dialect (hello:100,netcat:80,seed:20)")
    ap.add_argument("--rate", type=float, default=5.0, help="messages per second per client (5)")
    ap.add_argument("--churn", type=float, default=10.0,
                    help="connections replaced per second: one leaves, one connects (10)")
    ap.add_argument("--anchors", type=int, default=50,
                    help="clients that stay for the whole run (50)")
    ap.add_argument("--rooms", type=int, default=20, help="rooms besides the lobby (20)")
    ap.add_argument("--barrier", type=float, default=10.0,
                    help="seconds between a client's checks (PING barriers) (10)")
    ap.add_argument("--sample", type=float, default=10.0, help="seconds per sample row (10)")
    ap.add_argument("--warmup", type=float, default=60.0,
                    help="seconds before the memory reference sample (60)")
    ap.add_argument("--csv", type=Path, help="write the sample rows here (CSV)")
    ap.add_argument("--inject", choices=("drop", "dup"), default="",
                    help="test the checker: drop (or duplicate) one received copy in 50,000; "
                    "the run must then fail")
    ap.add_argument("--server-arg", action="append", default=[],
                    help="extra argument for richchat server (repeatable)")
    args = ap.parse_args()
    if args.duration <= 0 or args.rate <= 0 or args.rooms < 1 or args.sample <= 0:
        ap.error("--duration, --rate, --sample must be positive and --rooms at least 1")

    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = 2 * sum(n for _, n in args.mix) + 200
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(need * 4, hard), hard))

    load0 = loadavg()
    t_start = time.monotonic()
    try:
        server = start_server(args.server_arg)
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"server PID {server.pid} on {HOST}:{server.port}: {server.command}", file=sys.stderr)
    soak = Soak(args, server)
    try:
        result = asyncio.run(soak.run())
    finally:
        soak.stopping_server = True
        exit_status = server.stop()
    result["server_exit"] = exit_status
    load1 = loadavg()
    text, ok = report(args, soak, result, load0, load1, time.monotonic() - t_start)
    print(text)
    if args.csv:
        args.csv.parent.mkdir(parents=True, exist_ok=True)
        args.csv.write_text(Row.HEADER + "\n" + "".join(r.csv() + "\n" for r in soak.rows))
        print(f"\nCSV: {args.csv}")
    if "server_died" in result:
        return 2
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
