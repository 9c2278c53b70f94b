"""The connect-scan engine: non-blocking sockets driven by epoll directly.

Stdlib only and synchronous on purpose: it runs either in-process (small scans) or in forked
worker processes (see :mod:`.workers`), one per core, because the cost of a connect scan is
almost all kernel time spent in ``connect``/``close`` and one process cannot use more than
one core. asyncio's ``open_connection`` costs a future, a transport and several callbacks per
port; here a closed port costs two ``connect`` calls and a ``getsockopt`` on a socket that is
reused from port to port (see :meth:`ConnectSweep._pass`).

Concurrency adapts the way nmap's does, simplified: a small window of *young* connects keeps
the pipeline full when the host answers quickly (a large window only thrashes the kernel's
caches), and every connect that has been waiting longer than a few round-trip times stops
counting against that window, so a filtering host gets as many parallel probes as the file
descriptor budget allows. The timeout adapts to the measured round-trip time (RFC 6298
estimator), and every port left unanswered by the first pass is retried once with the full
timeout, so a slow answer is never reported as filtered.

epoll is Linux's: elsewhere (macOS, Windows) :func:`connect_sweep_class` picks the slower
``selectors`` sweep of :mod:`.portable`, which keeps the same contract. Nothing here touches
an epoll name at import time, so the scanner (and the ``join`` wizard) imports everywhere.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import socket
import struct
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

_LINGER_RST = struct.pack("ii", 1, 0)
# Linux-only names, read with getattr so that this module imports on every platform
_SOCK_FLAGS = (
    socket.SOCK_STREAM | getattr(socket, "SOCK_NONBLOCK", 0) | getattr(socket, "SOCK_CLOEXEC", 0)
)
_ERR_MASK = getattr(select, "EPOLLERR", 0) | getattr(select, "EPOLLHUP", 0)
_RESOURCE_ERRNOS = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}
_NO_PORT_ERRNOS = {errno.EADDRNOTAVAIL, errno.EAGAIN}

MIN_TIMEOUT = 0.25  # never give up on a connect sooner than this in the first pass
DEFAULT_WINDOW = 64  # young (recently started) connects in flight per process


@dataclass
class SweepResult:
    open: dict[int, float] = field(default_factory=dict)  # port -> rtt in seconds
    closed: int = 0
    filtered: list[int] = field(default_factory=list)
    self_connects: int = 0
    srtt: float | None = None
    interrupted: bool = False

    def to_wire(self) -> dict[str, Any]:
        return {
            "open": {str(k): v for k, v in self.open.items()},
            "closed": self.closed,
            "filtered": self.filtered,
            "self_connects": self.self_connects,
            "srtt": self.srtt,
            "interrupted": self.interrupted,
        }

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> SweepResult:
        return cls(
            open={int(k): float(v) for k, v in data["open"].items()},
            closed=int(data["closed"]),
            filtered=[int(p) for p in data["filtered"]],
            self_connects=int(data["self_connects"]),
            srtt=data["srtt"],
            interrupted=bool(data["interrupted"]),
        )

    def merge(self, other: SweepResult) -> None:
        self.open.update(other.open)
        self.closed += other.closed
        self.filtered.extend(other.filtered)
        self.self_connects += other.self_connects
        if other.srtt is not None:
            self.srtt = other.srtt if self.srtt is None else (self.srtt + other.srtt) / 2
        self.interrupted = self.interrupted or other.interrupted


class RttEstimator:
    """Smoothed RTT and variance as in RFC 6298."""

    def __init__(self) -> None:
        self.srtt: float | None = None
        self.rttvar = 0.0

    def update(self, sample: float) -> None:
        if self.srtt is None:
            self.srtt = sample
            self.rttvar = sample / 2
        else:
            self.rttvar = 0.75 * self.rttvar + 0.25 * abs(self.srtt - sample)
            self.srtt = 0.875 * self.srtt + 0.125 * sample

    def timeout(self, ceiling: float) -> float:
        if self.srtt is None:
            return ceiling
        return min(ceiling, max(MIN_TIMEOUT, 2 * (self.srtt + 4 * self.rttvar)))

    def age_threshold(self) -> float:
        """How long a connect may wait before it stops counting against the young window."""
        if self.srtt is None:
            return 0.05
        return min(0.1, max(0.002, 2 * self.srtt + 4 * self.rttvar))


class _Entry:
    __slots__ = ("aged", "done", "port", "sock", "start")

    def __init__(self, sock: socket.socket, port: int, start: float) -> None:
        self.sock = sock
        self.port = port
        self.start = start
        self.aged = False
        self.done = False


ProgressFn = Callable[[int, int], None]  # (ports done, open found)
OpenFn = Callable[[int, float], None]  # (port, rtt): called as soon as a port is found open


class ConnectSweep:
    """One host, a list of ports: which are open, closed, or never answer."""

    def __init__(
        self,
        family: int,
        address: tuple[Any, ...],
        *,
        timeout: float = 1.0,
        max_inflight: int = 4096,
        window: int | None = None,
        on_progress: ProgressFn | None = None,
        should_stop: Callable[[], bool] | None = None,
        progress_interval: float = 0.05,
        on_open: OpenFn | None = None,
    ) -> None:
        self.family = family
        self.address = address  # the sockaddr without the port: (ip,) or (ip, flow, scope)
        self.timeout = timeout
        self.max_inflight = max(1, max_inflight)
        self.window = max(1, window if window is not None else DEFAULT_WINDOW)
        self.on_progress = on_progress
        self.should_stop = should_stop
        self.on_open = on_open
        self.progress_interval = progress_interval
        self.rtt = RttEstimator()
        self.result = SweepResult()
        self.done = 0
        self._last_progress = 0.0

    # ------------------------------------------------------------------ public

    def run(self, ports: Sequence[int]) -> SweepResult:
        unanswered = self._pass(ports, final=False)
        if unanswered and not self.result.interrupted:
            self._pass(unanswered, final=True)
        self.result.srtt = self.rtt.srtt
        self._progress(force=True)
        return self.result

    # ------------------------------------------------------------------ internals

    def _progress(self, force: bool = False) -> None:
        if self.on_progress is None:
            return
        now = time.monotonic()
        if force or now - self._last_progress >= self.progress_interval:
            self._last_progress = now
            self.on_progress(self.done, len(self.result.open))

    def _connected(self, sock: socket.socket, port: int, rtt: float) -> None:
        try:
            local, peer = sock.getsockname(), sock.getpeername()
        except OSError:
            local = peer = None  # reset right after the handshake: it was open
        if local is not None and local == peer:
            # Loopback simultaneous open: our socket picked the scanned port as its own
            # ephemeral port and connected to itself. Nothing listens there.
            self.result.self_connects += 1
            self.result.closed += 1
        else:
            self.result.open[port] = rtt
            if self.on_open is not None:
                self.on_open(port, rtt)
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RST)
        sock.close()

    def _pass(self, ports: Sequence[int], *, final: bool) -> list[int]:
        """Connect to every port once; return those that never answered (first pass only).

        Sockets are reused: a connect refused by the peer leaves its socket in the CLOSE
        state, and Linux lets the same socket connect again once the error has been read
        (the next ``connect`` returns ECONNABORTED and resets it; the one after starts a
        new handshake). That saves ``socket``, ``close`` and ``epoll_ctl`` per closed port,
        which is most of the kernel's work in a connect scan. A socket that connected (an
        open port) or timed out is closed and replaced.
        """
        result = self.result
        rtt = self.rtt
        queue: deque[int] = deque(ports)
        unanswered: list[int] = []
        inflight: dict[int, _Entry] = {}
        order: deque[_Entry] = deque()  # every started connect, oldest first
        young: deque[_Entry] = deque()  # connects not yet aged, oldest first
        aged = 0
        cap = self.max_inflight
        ep = select.epoll()
        monotonic = time.monotonic
        sock_new = socket.socket
        einprogress = errno.EINPROGRESS
        econnrefused = errno.ECONNREFUSED
        econnaborted = errno.ECONNABORTED
        econnreset = errno.ECONNRESET
        evmask = select.EPOLLOUT
        err_mask = _ERR_MASK
        sol, so_error = socket.SOL_SOCKET, socket.SO_ERROR
        family, flags = self.family, _SOCK_FLAGS
        host, rest = self.address[0], self.address[1:]

        def lost(port: int) -> None:
            if final:
                result.filtered.append(port)
                self.done += 1
            else:
                unanswered.append(port)

        stalled = False

        def launch(s: socket.socket, now: float, reused: bool) -> bool:
            """Start the next queued port on ``s``; False when ``s`` was not put to use."""
            while queue:
                port = queue.popleft()
                addr = (host, port, *rest)
                err = s.connect_ex(addr)
                if reused and err == econnaborted:
                    err = s.connect_ex(addr)  # the reset connect: now the real one
                reused = False
                if err == einprogress:
                    e = _Entry(s, port, now)
                    inflight[s.fileno()] = e
                    order.append(e)
                    young.append(e)
                    return True
                if err == econnrefused:
                    result.closed += 1
                    self.done += 1
                    reused = True
                elif err == 0:
                    self._connected(s, port, 0.0)  # closes s
                    self.done += 1
                    return False
                elif err in _NO_PORT_ERRNOS:
                    # no free local port for this destination right now: wait for some
                    nonlocal stalled
                    stalled = True
                    queue.appendleft(port)
                    if not inflight:
                        time.sleep(0.01)
                    return False
                else:
                    lost(port)
                    return False
            return False

        try:
            while queue or inflight:
                if self.should_stop is not None and self.should_stop():
                    result.interrupted = True
                    break
                now = monotonic()
                t_out = self.timeout if final else rtt.timeout(self.timeout)
                # expire connects that waited too long
                while order:
                    e = order[0]
                    if e.done:
                        order.popleft()
                    elif now - e.start >= t_out:
                        order.popleft()
                        e.done = True
                        if e.aged:
                            aged -= 1
                        del inflight[e.sock.fileno()]
                        e.sock.close()
                        lost(e.port)
                    else:
                        break
                # age connects that are taking long: they no longer hold the young window
                age_thr = rtt.age_threshold()
                while young:
                    e = young[0]
                    if e.done:
                        young.popleft()
                    elif now - e.start >= age_thr:
                        young.popleft()
                        e.aged = True
                        aged += 1
                    else:
                        break
                # start new connects on new sockets
                limit = min(cap, self.window + aged)
                while queue and len(inflight) < limit:
                    try:
                        s = sock_new(family, flags)
                    except OSError as exc:
                        if exc.errno not in _RESOURCE_ERRNOS:
                            raise
                        cap = max(1, len(inflight) - 1)  # out of descriptors: shrink for good
                        if not inflight:
                            time.sleep(0.01)  # descriptors held elsewhere (probes): wait
                        break
                    if launch(s, now, False):
                        ep.register(s.fileno(), evmask)
                    else:
                        s.close()
                        if stalled:
                            stalled = False
                            break
                # collect completions
                if queue and len(inflight) < min(cap, self.window + aged):
                    wait = 0.0
                elif order:
                    wait = min(0.05, max(0.0, order[0].start + t_out - now) + 0.001)
                else:
                    wait = 0.0
                events = ep.poll(wait, 1024) if inflight else ()
                if events:
                    now = monotonic()
                    limit = min(cap, self.window + aged)
                for fd, ev in events:
                    e = inflight.pop(fd)
                    e.done = True
                    if e.aged:
                        aged -= 1
                    s = e.sock
                    elapsed = now - e.start
                    err = s.getsockopt(sol, so_error) if ev & err_mask else 0
                    if err == 0 and not ev & evmask:
                        # EPOLLERR alone with no pending error: the connect failed all the
                        # same (a neighbour that never answers ARP), it never connected
                        err = errno.EHOSTUNREACH
                    if err == 0 or err == econnreset:  # reset after the handshake: open
                        rtt.update(elapsed)
                        self._connected(s, e.port, elapsed)  # closes s
                        self.done += 1
                        continue
                    if err == econnrefused:
                        result.closed += 1
                        self.done += 1
                        if result.closed & 7 == 1:  # a sample of the closed ports is enough
                            rtt.update(elapsed)
                    else:  # ETIMEDOUT, EHOSTUNREACH (ICMP), ...: no usable answer
                        lost(e.port)
                    # the socket is back in CLOSE: reuse it for the next port
                    if not (queue and len(inflight) < limit and launch(s, now, True)):
                        s.close()
                self._progress()
        finally:
            for e in inflight.values():
                e.sock.close()
            ep.close()
        return unanswered


#: ``portable`` forces the selectors sweep (tests use it on Linux); ``epoll`` or unset: epoll
#: where the system has it
ENGINE_ENV = "RICHCHAT_SCAN_ENGINE"


def epoll_available() -> bool:
    return hasattr(select, "epoll") and hasattr(socket, "SOCK_NONBLOCK")


class SweepEngine(Protocol):
    """What the connect sweeps have in common: built with (family, address, **options)."""

    result: SweepResult

    def run(self, ports: Sequence[int]) -> SweepResult: ...


def connect_sweep_class() -> Callable[..., SweepEngine]:
    """The connect sweep for this system: epoll on Linux, else the portable one."""
    if epoll_available() and os.environ.get(ENGINE_ENV, "").lower() != "portable":
        return ConnectSweep
    from richchat.core.scanner.portable import PortableSweep

    return PortableSweep


def sweep(
    family: int,
    address: tuple[Any, ...],
    ports: Sequence[int],
    **kwargs: Any,
) -> SweepResult:
    """Connect-scan ``ports`` of one host in this process."""
    return connect_sweep_class()(family, address, **kwargs).run(ports)
