"""Transfer connections: file bytes in and out, beside the chat, streamed to and from disk.

A chat client that may upload or download a file is given a *token* over its chat connection
(``UPLOAD``/``DOWNLOAD``, decided by the hub's rules). It then opens one more connection to
the same port whose first line is ``XFER|1|PUT|token`` or ``XFER|1|GET|token|offset|id``
(:mod:`richchat.core.protocol.transfer`): the chat connection's first-line detection hands
that connection over to a :class:`TransferConnection` (:meth:`Transfers.adopt`), so the
file's bytes never pass through the line decoder, the flood bucket or the output limits of
chat connections. The same happens over TLS: the hand-over takes the decrypted stream.

* **Tokens** (:class:`PutGrant`, :class:`GetGrant`) are random, single use, and expire
  ``transfer_token_ttl`` seconds after they were issued; a connection may hold at most
  :data:`MAX_GRANTS_PER_PEER` unused ones.
* **Uploads** are written to ``files/partial/<sha256>`` and hashed as they arrive, in a
  worker thread (:class:`DiskSink`), while the connection is read: reading pauses when
  :data:`SINK_HIGH` bytes wait for the disk, so memory never grows with the file. The first
  line's answer says how many bytes the server holds already (``XOK|offset|...``); a resumed
  upload first hashes those bytes back from disk. The file is stored (``os.replace`` into
  ``files/<sha256>``) only if the whole of it hashes to the SHA-256 the
  sender announced; else it is deleted (``XERR|hash_mismatch``).
* **Downloads** are sent with ``loop.sendfile`` (``os.sendfile`` on plain TCP: no copy
  through Python; on TLS, asyncio reads the file in a worker thread, 256 KiB at a time).
* **Limits**: at most ``max_transfers`` transfer connections at once; a per-connection speed
  limit (``file_rate`` bytes/s, 0 = none: ``n`` bytes take at least ``n / file_rate``
  seconds, a small file too: a download's chunks, of at most an eighth of a second's worth,
  each go when the rate has allowed for them; an upload is read as the rate allows, and its
  ``XDONE`` waits until the rate has allowed for its last bytes); a connection that sends
  nothing (upload) or takes
  nothing (download: files go out in 4 MiB ``sendfile`` calls) for ``transfer_idle_timeout``
  seconds is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import secrets
import sqlite3
import time
from collections import deque
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import IO, TYPE_CHECKING, Any, NamedTuple, cast

from richchat.core.hashwrite import HashWriter, bulk_thread
from richchat.core.protocol import transfer as t
from richchat.core.server.files import FileStore
from richchat.core.server.tls_link import TlsLink

if TYPE_CHECKING:
    from richchat.core.server.config import ServerConfig
    from richchat.core.server.peer import Peer

log = logging.getLogger("richchat.server")

#: unused tokens one chat connection may hold
MAX_GRANTS_PER_PEER = 8
#: bytes of an upload waiting for the disk before reading pauses (and resumes below half)
SINK_HIGH = 4 * 1024 * 1024
#: bytes of a file sent per ``sendfile`` call when a speed limit applies, at most: and at
#: most an eighth of a second's worth (:func:`rate_chunk`)
RATE_CHUNK = 256 * 1024
#: bytes of a file sent per ``sendfile`` call otherwise: a reader that takes none of them
#: for ``transfer_idle_timeout`` seconds is dropped (it holds a transfer slot)
SEND_CHUNK = 4 * 1024 * 1024
#: finished transfers remembered for ``Transfers.recent`` (logs, tests, the benchmark)
RECENT = 64


class PutGrant:
    """Permission to upload the file ``sha256`` of ``size`` bytes, shared by ``sender``
    with ``target`` under ``name``."""

    __slots__ = ("expires", "name", "peer", "sender", "sha256", "size", "target", "token")
    kind = "PUT"

    def __init__(self, token: str, sha256: str, size: int, name: str, sender: str,
                 target: str, peer: Peer | None, expires: float) -> None:
        self.token = token
        self.sha256 = sha256
        self.size = size
        self.name = name
        self.sender = sender
        self.target = target
        self.peer = peer
        self.expires = expires


class GetGrant:
    """Permission to download offer ``file_id`` (blob ``sha256``)."""

    __slots__ = ("expires", "file_id", "name", "peer", "sha256", "size", "token")
    kind = "GET"

    def __init__(self, token: str, file_id: str, sha256: str, size: int, name: str,
                 peer: Peer | None, expires: float) -> None:
        self.token = token
        self.file_id = file_id
        self.sha256 = sha256
        self.size = size
        self.name = name
        self.peer = peer
        self.expires = expires


Grant = PutGrant | GetGrant


class TransferRecord(NamedTuple):
    """One finished transfer connection: what it moved."""

    op: str  # "PUT" or "GET"
    sha256: str
    offset: int  # where it started
    moved: int  # bytes received (PUT) or sent (GET) on this connection
    outcome: str  # "stored", "sent", or an error code / "interrupted"


def rate_chunk(rate: int) -> int:
    """Bytes per ``sendfile`` call of a download limited to ``rate`` bytes/s: an eighth of a
    second's worth (so the wait before each, the first one included, is short), at most
    :data:`RATE_CHUNK`."""
    return max(1, min(RATE_CHUNK, rate // 8))


class Transfers:
    """Issues tokens and runs the transfer connections they open."""

    def __init__(self, config: ServerConfig, store: FileStore) -> None:
        self.config = config
        self.store = store
        #: called with the grant of an upload the server has verified and stored
        self.on_stored: Callable[[PutGrant], None] = lambda grant: None
        self._grants: dict[str, Grant] = {}
        self.active: set[TransferConnection] = set()
        #: uploads under way, by SHA-256 (two connections never write one partial file)
        self.uploading: dict[str, TransferConnection] = {}
        self.bytes_in = 0
        self.bytes_out = 0
        self.recent: deque[TransferRecord] = deque(maxlen=RECENT)
        self.executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="richchat-files",
                                           initializer=bulk_thread)
        #: the clock and the waits of the speed limit (a test gives a virtual clock)
        self.clock: Callable[[], float] = time.monotonic
        self.sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
        self.later: Callable[[float, Callable[[], None]], asyncio.Handle] = (
            lambda delay, callback: asyncio.get_running_loop().call_later(delay, callback))

    @property
    def max_size(self) -> int:
        """The largest file accepted (what ``HELLO`` advertises as ``files=``)."""
        return min(self.config.file_max_size, self.config.file_quota)

    # ------------------------------------------------------------------ tokens

    def _issue(self, make: Callable[[str, float], Grant], peer: Peer | None) -> str | None:
        now = time.monotonic()
        self._expire(now)
        if peer is not None:
            held = sum(1 for g in self._grants.values() if g.peer is peer)
            if held >= MAX_GRANTS_PER_PEER:
                return None
        token = secrets.token_urlsafe(24)
        self._grants[token] = make(token, now + self.config.transfer_token_ttl)
        return token

    def grant_put(self, sha256: str, size: int, name: str, sender: str, target: str,
                  peer: Peer | None) -> str | None:
        """A token for one upload; None if ``peer`` holds too many unused ones."""
        return self._issue(
            lambda token, exp: PutGrant(token, sha256, size, name, sender, target, peer, exp),
            peer,
        )

    def grant_get(self, file_id: str, sha256: str, size: int, name: str,
                  peer: Peer | None) -> str | None:
        """A token for one download; None if ``peer`` holds too many unused ones."""
        return self._issue(
            lambda token, exp: GetGrant(token, file_id, sha256, size, name, peer, exp), peer
        )

    def take(self, token: str, file_id: str | None = None) -> Grant | None:
        """The grant of ``token`` (used up), or None if unknown or expired. A download
        grant for another file than ``file_id`` (when given) is returned but not used up:
        the request is refused, and the token still fetches its own file."""
        self._expire(time.monotonic())
        grant = self._grants.get(token)
        if isinstance(grant, GetGrant) and file_id is not None and grant.file_id != file_id:
            return grant
        return self._grants.pop(token, None)

    def _expire(self, now: float) -> None:
        if not self._grants:
            return
        for token in [tk for tk, g in self._grants.items() if g.expires < now]:
            del self._grants[token]

    # ------------------------------------------------------------------ connections

    def adopt(self, transport: asyncio.Transport, data: bytes, peer: str) -> None:
        """Take over a connection whose first bytes (``data``) start ``XFER|``."""
        conn = TransferConnection(self, peer)
        transport.set_protocol(conn)
        conn.connection_made(transport)
        if len(self.active) > self.config.max_transfers:
            conn.fail("busy", f"too many transfers at once (at most "
                              f"{self.config.max_transfers}); try again in a moment")
            return
        conn.data_received(data)

    def finished(self, conn: TransferConnection, record: TransferRecord | None) -> None:
        self.active.discard(conn)
        if record is not None:
            self.recent.append(record)

    async def close(self) -> None:
        """Abort every transfer (uploads keep their partial file) and stop the workers."""
        tasks = [conn._task for conn in self.active if conn._task is not None]
        for conn in list(self.active):
            conn.abort()
        if tasks:
            await asyncio.wait(tasks, timeout=2.0)
        await asyncio.sleep(0)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self.executor.shutdown, True)


class DiskSink:
    """Writes and hashes an upload's bytes off the event loop (:class:`HashWriter`: a writer
    thread and a hasher thread at once), one batch at a time, and asks the connection to
    pause reading while more than :data:`SINK_HIGH` bytes wait."""

    def __init__(self, file: IO[bytes], hasher: Any, pause: Callable[[], None],
                 resume: Callable[[], None]) -> None:
        self.file = file
        self.hasher = hasher
        self._io = HashWriter(file, hasher)
        self._pause, self._resume = pause, resume
        self._batch: list[bytes] = []
        self.waiting = 0  # bytes pushed and not yet written (the batch being written too)
        self._busy = False
        self._paused = False
        self._on_idle: Callable[[BaseException | None], None] | None = None
        self.error: BaseException | None = None

    def push(self, data: bytes) -> None:
        if self.error is not None:  # the disk said no: more bytes would only fail again
            return
        self._batch.append(data)
        self.waiting += len(data)
        if not self._busy:
            self._submit()
        if self.waiting >= SINK_HIGH and not self._paused:
            self._paused = True
            self._pause()

    def hold_until_drained(self) -> bool:
        """For a connection that would read again (its speed limit's wait is over): True if
        too much still waits for the disk; the sink then resumes it itself once below half of
        :data:`SINK_HIGH` (it was not necessarily the sink that paused it)."""
        if self.waiting < SINK_HIGH // 2:
            return False
        self._paused = True
        return True

    def when_idle(self, callback: Callable[[BaseException | None], None]) -> None:
        """Call ``callback(error)`` once everything pushed is written (now if it is)."""
        if not self._busy:
            callback(self.error)
        else:
            self._on_idle = callback

    def close(self) -> None:
        self._io.close()

    def _submit(self) -> None:
        batch, self._batch = self._batch, []
        self._busy = True
        future = self._io.feed(batch)
        size = sum(len(b) for b in batch)
        future.add_done_callback(lambda fut: self._written(fut, size))

    def _written(self, fut: asyncio.Future[tuple[None, None]], size: int) -> None:
        self._busy = False
        self.waiting -= size
        error = None if fut.cancelled() else fut.exception()  # retrieved, whatever comes
        if self.error is None and error is not None:
            self.error = error
        if self._batch and self.error is None:
            self._submit()
        elif self._batch:
            self.waiting = 0
            self._batch.clear()
        if self._paused and self.waiting < SINK_HIGH // 2:
            self._paused = False
            self._resume()
        if not self._busy and self._on_idle is not None:
            callback, self._on_idle = self._on_idle, None
            callback(self.error)


def _open_partial(path: os.PathLike[str], size: int) -> tuple[IO[bytes], Any, int]:
    """Open (or create) an upload's partial file and hash what it holds: (file positioned at
    its end, hasher, bytes held). More bytes than declared: start again from nothing."""
    flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_BINARY", 0) | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags, 0o600)
    file = os.fdopen(fd, "r+b", buffering=0)
    try:
        held = os.fstat(fd).st_size
        if held > size:
            file.truncate(0)
            held = 0
        hasher = hashlib.sha256()
        left = held
        while left > 0:
            chunk = file.read(min(left, 1024 * 1024))
            if not chunk:  # shorter than fstat said (truncated meanwhile): keep what hashed
                held -= left
                file.truncate(held)
                break
            hasher.update(chunk)
            left -= len(chunk)
        file.seek(held)
    except BaseException:
        file.close()
        raise
    return cast(IO[bytes], file), hasher, held


def _prefix_hash(path: os.PathLike[str], count: int) -> str:
    """The SHA-256 of the first ``count`` bytes of the file at ``path``. (Read through a
    handle of its own: reading the download's handle would leave its buffer ahead of the
    file position ``loop.sendfile`` moves, and the next chunk would be sent from there.)"""
    hasher = hashlib.sha256()
    left = count
    with open(path, "rb", buffering=0) as file:
        while left > 0:
            chunk = file.read(min(left, 1024 * 1024))
            if not chunk:
                break
            hasher.update(chunk)
            left -= len(chunk)
    return hasher.hexdigest()


def _finish_upload(file: IO[bytes], hasher: Any) -> str:
    """Close the upload and return its SHA-256. (No fsync: like the chat history, a stored
    file survives the server process; a power cut may lose the last seconds of writes. A
    file lost that way is a stale offer, which a download reports as damaged.)"""
    file.close()
    return str(hasher.hexdigest())


class TransferConnection(asyncio.Protocol):
    """One transfer connection (see the module text), after its hand-over."""

    def __init__(self, transfers: Transfers, peer: str) -> None:
        self.transfers = transfers
        self.peer = peer
        self.transport: asyncio.Transport | None = None
        self._head = b""
        self.state = "head"  # head, opening, put, verifying, checking, get, done
        self.grant: Grant | None = None
        self.offset = 0
        self.received = 0  # PUT: bytes of the file held so far (offset included)
        self.moved = 0  # bytes received or sent on this connection
        self.sink: DiskSink | None = None
        self._file: IO[bytes] | None = None
        self._task: asyncio.Task[None] | None = None
        self._rate_start = 0.0
        self._rate_handle: asyncio.Handle | None = None
        self._reading = True
        self._last_active = time.monotonic()
        self._idle_handle: asyncio.TimerHandle | None = None
        self.outcome = "interrupted"
        self._writable = asyncio.Event()
        self._writable.set()

    # ------------------------------------------------------------------ asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        # the chat connection wrote straight to its socket (high-water mark 0): not here
        with contextlib.suppress(AttributeError, NotImplementedError):
            self.transport.set_write_buffer_limits(high=256 * 1024)
        self.transfers.active.add(self)
        self._arm_idle()

    def data_received(self, data: bytes) -> None:
        self._last_active = time.monotonic()
        if self.state == "put":
            self._put_data(data)
        elif self.state == "head":
            self._head += data
            end = self._head.find(b"\n")
            if end < 0:
                if len(self._head) > t.MAX_TRANSFER_LINE:
                    self.fail("bad_request", "the first line is too long")
                return
            line, rest = self._head[:end].rstrip(b"\r"), self._head[end + 1 :]
            self._head = b""
            self._request(line, rest)
        elif self.state in ("opening", "verifying", "checking"):
            self.fail("bad_request", "bytes sent before the server's answer")
        # get, done: the client has nothing to say; ignore

    def eof_received(self) -> bool | None:
        if self.state in ("put", "opening", "head"):
            return None  # the sender gave up: close (the partial file stays, see _finish)
        return True  # verifying or sending: finish first

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    def connection_lost(self, exc: Exception | None) -> None:
        for handle in (self._rate_handle, self._idle_handle):
            if handle is not None:
                handle.cancel()
        if self._task is not None and not self._task.done():
            self._task.cancel()
        if self.state in ("put", "opening", "verifying"):
            self._release_upload()
        if self.state != "done":
            self._finish(None)

    # ------------------------------------------------------------------ helpers

    def _arm_idle(self) -> None:
        timeout = self.transfers.config.transfer_idle_timeout
        self._idle_handle = asyncio.get_running_loop().call_later(timeout / 2, self._check_idle)

    def _check_idle(self) -> None:
        self._idle_handle = None
        if self.state == "done":
            return
        timeout = self.transfers.config.transfer_idle_timeout
        if self.state in ("opening", "verifying", "checking") or self._rate_handle is not None:
            # the server is the one working (hashing what it holds, or what came), in threads
            # that yield to the chat, or holding the transfer to its speed limit; the client
            # was told to wait: no idle time of its own
            self._last_active = time.monotonic()
        elif time.monotonic() - self._last_active > timeout:
            if self.state == "get":  # the reader took no chunk: XERR cannot reach it either
                log.info("download to %s stalled for %g s: dropped", self.peer, timeout)
                self.abort()
            else:
                self.fail("timeout", f"nothing received for {timeout:g} s")
            return
        self._arm_idle()

    def _write_line(self, frame: t.TransferAccepted | t.TransferDone | t.TransferError) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write((frame.line() + "\n").encode("utf-8"))

    def fail(self, code: str, text: str) -> None:
        """Say why (``XERR``) and close."""
        self.outcome = code
        log.info("transfer %s from %s refused: %s (%s)", self._what(), self.peer, text, code)
        self._write_line(t.TransferError(code=code, text=text))
        if self.state in ("put", "opening", "verifying"):
            self._release_upload()
        self._finish(self._record())
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        """Drop the connection. A download's sending task is cancelled first and aborts the
        transport itself once ``loop.sendfile`` has let go of it (aborting under a running
        sendfile makes asyncio log an InvalidStateError: CPython issues 78015/78162)."""
        if self._task is not None and not self._task.done():
            self._task.cancel()
        elif self.transport is not None:
            self.transport.abort()

    def _what(self) -> str:
        g = self.grant
        if g is None:
            return "(no token)"
        return f"{g.kind} {g.sha256[:12]}"

    def _record(self) -> TransferRecord | None:
        g = self.grant
        if g is None:
            return None
        return TransferRecord(g.kind, g.sha256, self.offset, self.moved, self.outcome)

    def _finish(self, record: TransferRecord | None) -> None:
        if self.state == "done":
            return
        self.state = "done"
        if record is None:
            record = self._record()
        if record is not None and record.outcome == "interrupted":
            log.info("transfer %s from %s interrupted after %d bytes (from offset %d)",
                     self._what(), self.peer, self.moved, self.offset)
        self.transfers.finished(self, record)

    def _pause(self) -> None:
        if self._reading and self.transport is not None:
            self._reading = False
            self.transport.pause_reading()

    def _resume(self) -> None:
        if (not self._reading and self.transport is not None and self.state == "put"
                and self._rate_handle is None):
            self._reading = True
            self.transport.resume_reading()

    # ------------------------------------------------------------------ the first line

    def _request(self, line: bytes, rest: bytes) -> None:
        try:
            request = t.decode_request(line)
        except t.TransferLineError as exc:
            self.fail("bad_request", str(exc))
            return
        grant = self.transfers.take(request.token, request.file_id)
        if isinstance(grant, GetGrant) and request.file_id not in (None, grant.file_id):
            self.fail("wrong_file", f"this token is for file {grant.file_id}, not for "
                      f"{request.file_id}; it is still valid for {grant.file_id}")
            return
        if grant is None or grant.kind != request.op:
            self.fail("bad_token", "unknown or expired token: ask the chat for a new one")
            return
        self.grant = grant
        if rest:
            self.fail("bad_request", "bytes sent before the server's answer")
            return
        if isinstance(grant, PutGrant):
            self._start_put(grant)
        else:
            self._start_get(grant, request.offset, request.prefix)

    # ------------------------------------------------------------------ upload

    def _start_put(self, grant: PutGrant) -> None:
        transfers, store = self.transfers, self.transfers.store
        if grant.sha256 in transfers.uploading:
            self.fail("busy", "this file is being uploaded on another connection")
            return
        if store.blob_size(grant.sha256) == grant.size:  # someone finished it meanwhile
            self.offset = self.received = grant.size
            self._accepted(grant)
            self._stored(grant)
            return
        try:
            problem = store.reserve(grant.sha256, grant.size)
        except sqlite3.Error as exc:  # the file index: "database or disk is full"
            log.error("cannot record an upload of %s: %s", grant.sha256[:12], exc)
            self.fail("server_error", "the server cannot write the file")
            return
        if problem is not None:
            self.fail("quota_full", problem)
            return
        transfers.uploading[grant.sha256] = self
        self.state = "opening"
        self._pause()
        loop = asyncio.get_running_loop()
        path = store.partial_path(grant.sha256)
        future = loop.run_in_executor(transfers.executor, _open_partial, path, grant.size)
        future.add_done_callback(lambda fut: self._opened(grant, fut))

    def _opened(self, grant: PutGrant,
                fut: asyncio.Future[tuple[IO[bytes], Any, int]]) -> None:
        if fut.cancelled() or fut.exception() is not None:
            exc = None if fut.cancelled() else fut.exception()
            if self.state == "opening":
                log.error("cannot open %s: %s", self.transfers.store.partial_path(grant.sha256),
                          exc)
                self.fail("server_error", "the server cannot write the file")
            return
        file, hasher, held = fut.result()
        if self.state != "opening":  # gone meanwhile: nothing to write
            file.close()
            return
        self._file = file
        self.offset = self.received = held
        self.sink = DiskSink(file, hasher, self._pause, self._resume)
        self._accepted(grant)
        self.state = "put"
        self._rate_start = self.transfers.clock()
        if held == grant.size:
            self._verify()
        else:
            self._resume()

    def _accepted(self, grant: Grant) -> None:
        self._write_line(t.TransferAccepted(offset=self.offset, size=grant.size,
                                            sha256=grant.sha256, name=grant.name))

    def _put_data(self, data: bytes) -> None:
        grant, sink = self.grant, self.sink
        assert isinstance(grant, PutGrant) and sink is not None
        n = len(data)
        left = grant.size - self.received
        if n > left:
            if left:
                self._count_in(data[:left])
            self.fail("too_long", f"more bytes than the {grant.size} announced")
            return
        self._count_in(data)
        last = self.received == grant.size
        rate = self.transfers.config.file_rate
        if rate:
            # read no more until the rate has allowed for what came (the socket buffers of
            # both ends hold what the sender wrote meanwhile); the last bytes too: a small
            # file comes in one read, and its XDONE went at once
            due = self._rate_start + self.moved / rate
            delay = due - self.transfers.clock()
            if delay > 0.001:
                self._pause()
                self._rate_handle = self.transfers.later(
                    delay, self._rate_verify if last else self._rate_ok)
                return
        if last:
            self._verify()

    def _rate_verify(self) -> None:
        self._rate_handle = None
        if self.state == "put":
            self._verify()

    def _count_in(self, data: bytes) -> None:
        assert self.sink is not None
        self.received += len(data)
        self.moved += len(data)
        self.transfers.bytes_in += len(data)
        self.sink.push(data)

    def _rate_ok(self) -> None:
        self._rate_handle = None
        if self.sink is not None and self.sink.hold_until_drained():
            return  # the disk has not caught up: the sink resumes reading once it has
        self._resume()

    def _verify(self) -> None:
        """Every byte is in: once the disk has it, hash, fsync and store (or refuse)."""
        self.state = "verifying"
        self._pause()
        assert self.sink is not None
        self.sink.when_idle(self._written)

    def _written(self, error: BaseException | None) -> None:
        grant = self.grant
        assert isinstance(grant, PutGrant) and self._file is not None
        if error is not None:
            log.error("cannot write an upload of %s: %s", grant.sha256[:12], error)
            self.fail("server_error", "the server cannot write the file")
            return
        assert self.sink is not None
        self.sink.close()
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self.transfers.executor, _finish_upload, self._file,
                                      self.sink.hasher)
        self._file = None
        future.add_done_callback(lambda fut: self._hashed(grant, fut))

    def _hashed(self, grant: PutGrant, fut: asyncio.Future[str]) -> None:
        store = self.transfers.store
        self.transfers.uploading.pop(grant.sha256, None)
        if fut.cancelled() or fut.exception() is not None:
            log.error("cannot store an upload of %s: %s", grant.sha256[:12],
                      None if fut.cancelled() else fut.exception())
            self.fail("server_error", "the server cannot write the file")
            return
        digest = fut.result()
        if digest != grant.sha256:
            store.drop_partial(grant.sha256)
            log.warning("upload of %s from %s discarded: its bytes hash to %s", grant.sha256[:12],
                        self.peer, digest[:12])
            self.fail("hash_mismatch", f"the file's bytes hash to {digest}, not to the "
                      f"SHA-256 announced; discarded")
            return
        try:
            store.commit(grant.sha256, grant.size)
        except (OSError, sqlite3.Error) as exc:
            log.error("cannot store an upload of %s: %s", grant.sha256[:12], exc)
            self.fail("server_error", "the server cannot write the file")
            return
        self._stored(grant)

    def _stored(self, grant: PutGrant) -> None:
        self.outcome = "stored"
        log.info("upload %s (%d bytes, %s) from %s verified: %d bytes from offset %d",
                 grant.sha256[:12], grant.size, grant.sender, self.peer, self.moved, self.offset)
        self._write_line(t.TransferDone(sha256=grant.sha256, size=grant.size))
        self._finish(self._record())
        if self.transport is not None:
            self.transport.close()
        self.transfers.on_stored(grant)

    def _release_upload(self) -> None:
        """An upload ends unfinished: its partial file stays for a resume, once the bytes
        still in the worker are written. The content stays this connection's until then
        (another upload of it is told ``busy``): a resume at once (a sender killed and run
        again) opened the partial file while this one's last bytes were still being
        written into it, and took an offset short of them."""
        grant = self.grant
        if not isinstance(grant, PutGrant):
            return
        transfers = self.transfers
        store = transfers.store

        def ended() -> None:
            if transfers.uploading.get(grant.sha256) is self:
                del transfers.uploading[grant.sha256]
            try:  # what the partial file holds is what counts against the quota now
                held = os.stat(store.partial_path(grant.sha256)).st_size
            except OSError:
                held = 0
            try:
                store.upload_ended(grant.sha256, held)
            except sqlite3.Error as exc:  # a full disk: the partial file's row stays as was
                log.warning("cannot record where an upload of %s stopped: %s",
                            grant.sha256[:12], exc)

        file, self._file = self._file, None
        sink = self.sink
        if file is None:
            ended()
        elif sink is None:
            file.close()
            ended()
        else:
            def done(_error: BaseException | None) -> None:
                file.close()
                sink.close()
                ended()

            sink.when_idle(done)

    # ------------------------------------------------------------------ download

    def _start_get(self, grant: GetGrant, offset: int, prefix: str | None) -> None:
        store = self.transfers.store
        if store.offer(grant.file_id) is None:
            self.fail("no_such_file", "the file is no longer available")
            return
        path = store.blob_path(grant.sha256)
        try:
            file = open(path, "rb")  # noqa: SIM115 - closed by _send
        except OSError as exc:
            log.error("shared file %s cannot be read: %s", grant.sha256[:12], exc)
            store.delete_blob(grant.sha256)
            self.fail("no_such_file", "the file is no longer available")
            return
        if os.fstat(file.fileno()).st_size != grant.size:
            file.close()
            log.error("shared file %s is damaged (its size changed): deleted", grant.sha256[:12])
            store.delete_blob(grant.sha256)
            self.fail("file_damaged", "the server's copy is damaged; it was deleted")
            return
        if prefix is None:  # an older client: it cannot start again by itself
            if offset > grant.size:
                file.close()
                self.fail("bad_offset", f"offset {offset} is past the end ({grant.size} bytes)")
                return
            self._begin_get(grant, file, offset)
            return
        if offset > grant.size:  # a part file longer than the file: not this file's start
            log.info("download %s to %s: held %d bytes of %d, starting again", grant.file_id,
                     self.peer, offset, grant.size)
            self._begin_get(grant, file, 0)
            return
        # the bytes the client holds must be this file's first bytes, or the download would
        # be completed into a file that fails its hash: compare (off the event loop)
        self.state = "checking"
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self.transfers.executor, _prefix_hash, path, offset)
        future.add_done_callback(lambda fut: self._checked(grant, file, offset, prefix, fut))

    def _checked(self, grant: GetGrant, file: IO[bytes], offset: int, prefix: str,
                 fut: asyncio.Future[str]) -> None:
        if self.state != "checking":  # gone meanwhile
            file.close()
            return
        if fut.cancelled() or fut.exception() is not None:
            file.close()
            log.error("shared file %s cannot be read: %s", grant.sha256[:12],
                      None if fut.cancelled() else fut.exception())
            self.fail("server_error", "the server cannot read the file")
            return
        self._last_active = time.monotonic()
        if fut.result() != prefix:
            log.info("download %s to %s: the %d bytes held are not the file's, starting again",
                     grant.file_id, self.peer, offset)
            offset = 0
        self._begin_get(grant, file, offset)

    def _begin_get(self, grant: GetGrant, file: IO[bytes], offset: int) -> None:
        self.offset = offset
        self.state = "get"
        self._accepted(grant)
        self._task = asyncio.ensure_future(self._send(grant, file, offset))

    async def _send(self, grant: GetGrant, file: IO[bytes], offset: int) -> None:
        transport = self.transport
        assert transport is not None
        loop = asyncio.get_running_loop()
        transfers = self.transfers
        rate = transfers.config.file_rate
        start = transfers.clock()
        position = offset
        try:
            with file:
                while position < grant.size:
                    count = min(grant.size - position, SEND_CHUNK)
                    if rate:
                        # each chunk goes once the rate allows for it, the first one too: a
                        # file of one chunk (under 256 KiB) went at once, at any rate
                        count = min(count, rate_chunk(rate))
                        delay = start + (position - offset + count) / rate - transfers.clock()
                        if delay > 0:
                            await transfers.sleep(delay)
                            self._last_active = time.monotonic()
                    file.seek(position)
                    try:
                        await self._sendfile(loop, transport, file, position, count)
                    finally:
                        sent = file.tell() - position
                        position += sent
                        self.moved += sent
                        self.transfers.bytes_out += sent
                        self._last_active = time.monotonic()
                    if sent == 0:
                        raise ConnectionError("nothing sent")
            self.outcome = "sent"
            log.info("download %s (%s) to %s: %d bytes from offset %d", grant.file_id,
                     grant.sha256[:12], self.peer, self.moved, offset)
            self._finish(self._record())
            if not transport.is_closing():
                transport.close()
        except (ConnectionError, OSError, RuntimeError, asyncio.CancelledError) as exc:
            log.info("download %s to %s ended after %d bytes: %s", grant.file_id, self.peer,
                     self.moved, exc or type(exc).__name__)
            self._finish(self._record())
            transport.abort()

    async def _sendfile(self, loop: asyncio.AbstractEventLoop, transport: asyncio.Transport,
                        file: IO[bytes], position: int, count: int) -> None:
        """``count`` bytes of ``file`` from ``position``: ``loop.sendfile`` (zero-copy on plain
        TCP), or, on a loop without it (uvloop), reads in a worker and writes with flow
        control (so too through the server's TLS link, which encrypts what it is given).
        Either way the file's position ends after the last byte sent."""
        if not isinstance(transport, TlsLink):
            try:
                await loop.sendfile(transport, file, position, count)
                return
            except NotImplementedError:
                pass
        end = position + count
        while position < end:
            data = await loop.run_in_executor(self.transfers.executor, file.read,
                                              min(RATE_CHUNK, end - position))
            if not data:
                raise ConnectionError("the file is shorter than its size")
            if transport.is_closing():
                file.seek(position)
                raise ConnectionError("connection closed")
            transport.write(data)
            position += len(data)
            await self._writable.wait()
