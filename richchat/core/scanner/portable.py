"""The connect sweep for systems without epoll (macOS, Windows, BSDs): ``selectors``.

Same contract as :class:`~richchat.core.scanner.engine.ConnectSweep` (constructor, ``run``,
:class:`SweepResult`, progress and open-port callbacks, stop flag, a retry pass for ports that
never answered), so everything above the sweep (workers, probes, the wizard) is unchanged.
It is simpler and slower: one new socket per port (the reuse of refused sockets is a Linux
behaviour), readiness from the platform's best selector (kqueue, poll, or select on Windows,
where a failed connect is reported through the exception set, which ``selectors`` folds into
write readiness), and a fixed cap on connects in flight (``select`` handles at most 512
sockets on Windows).

``RICHCHAT_SCAN_ENGINE=portable`` forces it on Linux too (see
:func:`~richchat.core.scanner.engine.connect_sweep_class`); the tests use that to check it
finds what the epoll sweep finds.
"""

from __future__ import annotations

import contextlib
import errno
import selectors
import socket
import struct
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from richchat.core.scanner.engine import OpenFn, ProgressFn, RttEstimator, SweepResult

_LINGER_RST = struct.pack("ii", 1, 0)
#: connect_ex results that mean "under way" (EWOULDBLOCK is Windows' EINPROGRESS)
_IN_PROGRESS = {errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EALREADY}
_IN_PROGRESS.add(getattr(errno, "WSAEWOULDBLOCK", errno.EWOULDBLOCK))
_REFUSED = {errno.ECONNREFUSED, getattr(errno, "WSAECONNREFUSED", errno.ECONNREFUSED)}
_RESET = {errno.ECONNRESET, getattr(errno, "WSAECONNRESET", errno.ECONNRESET)}
_RESOURCE_ERRNOS = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}
_NO_PORT_ERRNOS = {errno.EADDRNOTAVAIL, errno.EAGAIN}

#: connects in flight at most: poll and kqueue have no limit of their own, select has
SELECT_CAP = 256
POLL_CAP = 1024


class _Entry:
    __slots__ = ("done", "port", "sock", "start")

    def __init__(self, sock: socket.socket, port: int, start: float) -> None:
        self.sock = sock
        self.port = port
        self.start = start
        self.done = False


class PortableSweep:
    """One host, a list of ports: which are open, closed, or never answer (any platform)."""

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
        self.max_inflight = max(1, max_inflight if window is None else min(window, max_inflight))
        self.on_progress = on_progress
        self.should_stop = should_stop
        self.on_open = on_open
        self.progress_interval = progress_interval
        self.rtt = RttEstimator()
        self.result = SweepResult()
        self.done = 0
        self._last_progress = 0.0

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
            # loopback simultaneous open onto our own source port: nothing listens there
            self.result.self_connects += 1
            self.result.closed += 1
        else:
            self.result.open[port] = rtt
            if self.on_open is not None:
                self.on_open(port, rtt)
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RST)

    def _answered(self, sock: socket.socket, port: int, err: int, elapsed: float,
                  lost: Callable[[int], None]) -> None:
        if err == 0 or err in _RESET:  # a reset comes after the handshake: open
            self.rtt.update(elapsed)
            self._connected(sock, port, elapsed)
            self.done += 1
        elif err in _REFUSED:
            self.result.closed += 1
            self.done += 1
            if self.result.closed & 7 == 1:  # a sample of the closed ports is enough
                self.rtt.update(elapsed)
        else:  # ETIMEDOUT, EHOSTUNREACH, ...: no usable answer
            lost(port)

    def _pass(self, ports: Sequence[int], *, final: bool) -> list[int]:
        """Connect to every port once; return those that never answered (first pass only)."""
        result = self.result
        queue: deque[int] = deque(ports)
        unanswered: list[int] = []
        order: deque[_Entry] = deque()  # connects in flight, oldest first
        inflight = 0
        sel = selectors.DefaultSelector()
        cap = min(self.max_inflight,
                  SELECT_CAP if isinstance(sel, selectors.SelectSelector) else POLL_CAP)
        host, rest = self.address[0], self.address[1:]

        def lost(port: int) -> None:
            if final:
                result.filtered.append(port)
                self.done += 1
            else:
                unanswered.append(port)

        try:
            while queue or inflight:
                if self.should_stop is not None and self.should_stop():
                    result.interrupted = True
                    break
                now = time.monotonic()
                t_out = self.timeout if final else self.rtt.timeout(self.timeout)
                while order and (order[0].done or now - order[0].start >= t_out):
                    e = order.popleft()
                    if not e.done:  # waited too long
                        e.done = True
                        inflight -= 1
                        sel.unregister(e.sock)
                        e.sock.close()
                        lost(e.port)
                while queue and inflight < cap:
                    port = queue.popleft()
                    try:
                        s = socket.socket(self.family, socket.SOCK_STREAM)
                    except OSError as exc:
                        if exc.errno not in _RESOURCE_ERRNOS:
                            raise
                        queue.appendleft(port)
                        cap = max(1, inflight - 1)  # out of descriptors: shrink for good
                        if not inflight:
                            time.sleep(0.01)
                        break
                    s.setblocking(False)
                    err = s.connect_ex((host, port, *rest))
                    if err in _IN_PROGRESS:
                        e = _Entry(s, port, now)
                        sel.register(s, selectors.EVENT_WRITE, e)
                        order.append(e)
                        inflight += 1
                        continue
                    if err in _NO_PORT_ERRNOS:  # no free local port right now: wait for some
                        s.close()
                        queue.appendleft(port)
                        if not inflight:
                            time.sleep(0.01)
                        break
                    self._answered(s, port, err, 0.0, lost)
                    s.close()
                if not inflight:
                    continue
                wait = min(0.05, max(0.0, order[0].start + t_out - now) + 0.001)
                events = sel.select(wait)
                now = time.monotonic()
                for key, _ in events:
                    e = key.data
                    s = e.sock
                    e.done = True
                    inflight -= 1
                    sel.unregister(s)
                    self._answered(s, e.port, s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR),
                                   now - e.start, lost)
                    s.close()
                self._progress()
        finally:
            for e in order:
                if not e.done:
                    e.sock.close()
            sel.close()
        return unanswered
