"""Accepting connections, also when the process is out of file descriptors.

asyncio's own accept loop (CPython 3.10 to 3.12) handles ``EMFILE`` badly: for each of up to
``backlog`` (our 1,024) accept attempts per wake-up it logs a traceback and schedules a retry
timer, so while descriptors stay exhausted the log gets a thousand tracebacks a second, the
timers left over fire on the closed socket at shutdown (more tracebacks), and the clients
waiting in the backlog are never answered.

:class:`Acceptor` serves a listening socket that asyncio made and bound (``create_server``
with ``start_serving=False`` keeps its address handling and errors): on readiness it accepts
up to :data:`ACCEPT_BATCH` connections and hands each to ``loop.connect_accepted_socket``.
Out of descriptors (``EMFILE``, ``ENFILE``) it closes a descriptor held in reserve for this,
accepts the waiting client with it, writes the refusal (``ERR|server_full|...``, as a server
at its ``--max-clients`` cap; nothing on a TLS port, which cannot speak before the handshake),
ends its side, closes it once the client ended its own (at most :data:`LINGER_S`: a reset
could lose the refusal) and takes the reserve back: every client gets an answer at once, and
the server logs the episode once (when a client is refused), and once when it ends. If the reserve
cannot be taken back (something else got the descriptor), or accepting fails even with it
(``ENFILE``: the whole system is out), accepting pauses for :data:`RETRY_DELAY` seconds:
one timer.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import socket
from collections.abc import Callable

log = logging.getLogger("richchat.server")

#: connections accepted per wake-up of the listening socket (then others get their turn)
ACCEPT_BATCH = 128
#: seconds accepting pauses when even the reserve descriptor is gone
RETRY_DELAY = 1.0
#: seconds a refused connection waits at most for its client to end its side
LINGER_S = 2.0
_EXHAUSTED = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}


class Acceptor:
    """Accepts connections on ``sock`` (listening, owned from now on) for ``factory``."""

    def __init__(
        self,
        sock: socket.socket,
        factory: Callable[[], asyncio.BaseProtocol],
        refusal: bytes | None,
    ) -> None:
        self.sock = sock
        self.factory = factory
        self.refusal = refusal
        self.refused = 0  # connections refused for want of descriptors, this episode
        self._loop = asyncio.get_running_loop()
        self._reserve: int | None = _take_reserve()
        self._exhausted = False
        self._retry: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        #: refused connections waiting for their client's end (see _refuse)
        self._lingering: dict[socket.socket, asyncio.TimerHandle] = {}
        sock.setblocking(False)
        self._loop.add_reader(sock.fileno(), self._ready)

    def close(self) -> None:
        if self._retry is not None:
            self._retry.cancel()
        for conn in list(self._lingering):
            self._refused_done(conn)
        with contextlib.suppress(ValueError, OSError):  # already closed
            self._loop.remove_reader(self.sock.fileno())
        self.sock.close()
        if self._reserve is not None:
            os.close(self._reserve)
            self._reserve = None

    def _ready(self) -> None:
        for _ in range(ACCEPT_BATCH):
            try:
                conn, _ = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionAbortedError:  # gone before we got to it
                continue
            except OSError as exc:
                if exc.errno in _EXHAUSTED:
                    self._out_of_descriptors(exc)
                else:
                    log.warning("accept failed: %s", exc.strerror or exc)
                return
            if self._exhausted:
                self._exhausted = False
                log.warning("file descriptors available again: accepting connections "
                            "(%d refused meanwhile)", self.refused)
                self.refused = 0
            self._serve(conn)

    def _serve(self, conn: socket.socket) -> None:
        conn.setblocking(False)
        task = self._loop.create_task(self._connect(conn))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _connect(self, conn: socket.socket) -> None:
        try:
            await self._loop.connect_accepted_socket(self.factory, conn)
        except OSError as exc:  # reset before its transport was made
            log.info("connection lost before it started: %s", exc.strerror or exc)
            conn.close()

    def _episode(self, exc: OSError) -> None:
        """Say once that connections are being refused (Linux's accept fails with EMFILE
        even when nobody is waiting: that alone is no episode)."""
        if not self._exhausted:
            self._exhausted = True
            log.warning("out of file descriptors (%s): refusing new connections until "
                        "some close", exc.strerror or exc)

    def _out_of_descriptors(self, exc: OSError) -> None:
        for _ in range(ACCEPT_BATCH):
            if self._reserve is None and not self._free_one():
                break
            assert self._reserve is not None  # (_free_one took it back)
            os.close(self._reserve)  # one descriptor free: for the client waiting
            self._reserve = None
            try:
                conn, _ = self.sock.accept()
            except (BlockingIOError, InterruptedError):  # nobody waiting any more
                self._reserve = _take_reserve()
                if self._reserve is None:
                    break
                return
            except OSError:  # not even now (the whole system is out: ENFILE): pause
                self._reserve = _take_reserve()
                break
            self._episode(exc)
            self.refused += 1
            self._refuse(conn)
            self._reserve = _take_reserve()  # None while the refused one lingers: _free_one
        else:
            return  # a batch refused; readiness brings the rest
        # stop listening for a while: one timer, not a spin on a socket that stays readable
        self._episode(exc)
        self._loop.remove_reader(self.sock.fileno())
        self._retry = self._loop.call_later(RETRY_DELAY, self._resume)

    def _refuse(self, conn: socket.socket) -> None:
        """Write the refusal, end our side, and close once the client has ended its own.

        Closed at once, a socket whose client had already sent its ``HELLO`` (unread) was
        reset (RST), and a client's asyncio stream raised "connection reset" before handing
        over the refusal it had received (``send`` said the server closed the connection,
        exit 11, instead of "full", exit 14). The descriptor is held meanwhile, at most
        :data:`LINGER_S`, or until the next client waiting needs it (:meth:`_free_one`: every
        client still gets its answer at once)."""
        try:
            conn.setblocking(False)
            if self.refusal is not None:
                conn.send(self.refusal)  # a few bytes: the socket buffer takes them
            conn.shutdown(socket.SHUT_WR)
            self._loop.add_reader(conn.fileno(), self._refused_readable, conn)
        except OSError:
            conn.close()
            return
        self._lingering[conn] = self._loop.call_later(LINGER_S, self._refused_done, conn)

    def _free_one(self) -> bool:
        """A descriptor for the next client waiting: the refused connection that has lingered
        longest is closed now (its client has had the refusal and our end; what it sent
        since is read first, so the close resets nothing it could still want)."""
        if not self._lingering:
            return False
        self._refused_done(next(iter(self._lingering)))
        return self._reserve is not None

    def _refused_readable(self, conn: socket.socket) -> None:
        try:
            while conn.recv(4096):  # what it sent (its HELLO) is read and dropped
                pass
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            pass
        self._refused_done(conn)  # its end (or an error): done

    def _refused_done(self, conn: socket.socket) -> None:
        handle = self._lingering.pop(conn, None)
        if handle is None:
            return
        handle.cancel()
        with contextlib.suppress(ValueError, OSError):
            self._loop.remove_reader(conn.fileno())
        with contextlib.suppress(OSError):  # what it sent: unread, the close would reset
            while conn.recv(4096):
                pass
        conn.close()
        if self._reserve is None:
            self._reserve = _take_reserve()
        if self._retry is not None and self._reserve is not None:  # paused for it: go on
            self._retry.cancel()
            self._resume()

    def _resume(self) -> None:
        self._retry = None
        if self._reserve is None:
            self._reserve = _take_reserve()
        self._loop.add_reader(self.sock.fileno(), self._ready)


def _take_reserve() -> int | None:
    try:
        return os.open(os.devnull, os.O_RDONLY)
    except OSError:
        return None
