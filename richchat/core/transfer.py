"""File transfers, the client side: hash, upload, download, and writing downloads safely.

Used by ``richchat send --file``, ``richchat get`` (:mod:`richchat.core.sharing`) and the chat
UI's ``/share`` and ``/get``. A transfer opens its own connection through ``open_stream``
(:meth:`richchat.core.client.ChatClient.open_stream`: the chat connection's opener, so the
same transport and security) and speaks the transfer protocol of
:mod:`richchat.core.protocol.transfer`.

* **Upload**: the server says how many bytes it holds (``XOK|offset``, an interrupted upload
  resumes there); the rest goes with ``loop.sendfile`` (zero-copy on plain TCP) in chunks, with
  progress between them; the server's ``XDONE`` says it hashed the whole file to the SHA-256
  the sender computed.
* **Download** (:class:`DownloadDir`): the bytes go to a hidden part file in the download
  directory, ``.richchat-<file id>.part`` (a resumed download hashes what it holds and asks
  for the rest, sending that hash: the server starts again from 0 when the bytes held are
  not its copy's first bytes, so a stale part file is replaced, not completed), are hashed
  as they are written (in a worker thread: the event loop, and a
  chat UI, never wait for the disk), and the file gets its name only once the whole of it
  hashed right: the name the sender gave, cleaned
  (:func:`richchat.core.protocol.filenames.safe_file_name`), and ``name (1).ext``,
  ``name (2).ext``... beside an existing file: nothing is ever overwritten. Files are created
  with ``O_NOFOLLOW`` and named with ``link`` (which fails on any existing name, a symbolic
  link included), so nothing is written outside the download directory. The part file is
  locked from its opening until it has its name: a second download of the same file into
  the same directory is told that one is under way, never takes a finished one over.

Light (``send`` imports it): asyncio, hashlib and the pure protocol modules only.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import errno
import hashlib
import os
import stat
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, cast

from richchat.core.errors import (
    ConnectionLostError,
    FileAccessError,
    FileCorruptError,
    FileTooLargeError,
    FileUnavailableError,
    ProtocolError,
    RichchatError,
    TimeoutRichchatError,
)
from richchat.core.hashwrite import HashWriter
from richchat.core.protocol import transfer as t
from richchat.core.protocol.filenames import human_size, numbered, safe_file_name

StreamOpener = Callable[[], Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]
#: progress: (bytes done, bytes in all)
Progress = Callable[[int, int], None]

#: bytes per ``sendfile`` call of an upload (progress is reported between calls)
SEND_CHUNK = 1024 * 1024
#: a download's receive buffer: filled straight from the socket, then hashed and written in
#: a worker thread while the next one fills
RECEIVE_BUFFER = 1024 * 1024
#: a download's bytes wait at most this long (seconds) in a receive buffer that is not full
#: while the writer is idle: on a slow link (a server's --file-rate, a weak Wi-Fi) a 1 MiB
#: buffer takes seconds to fill, and the progress, which counts bytes written, stood still
FLUSH_INTERVAL = 0.25
#: bytes hashed per read
HASH_CHUNK = 1024 * 1024
#: the part file of a download, in the download directory
PART_PREFIX, PART_SUFFIX = ".richchat-", ".part"
#: alternative names tried beside an existing file (``name (1).ext`` ...)
MAX_NUMBERED = 9999


class TransferRefusedError(RichchatError):
    """The server refused a transfer (``XERR|code|text`` or ``ERR|code|text``)."""

    def __init__(self, message: str, *, code: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.code = code


def refusal(code: str, text: str) -> RichchatError:
    """The error (and so the exit status) for a server's refusal of a file request."""
    if code in ("file_too_large", "quota_full"):
        return FileTooLargeError(f"the server refused the file: {text}")
    if code in ("no_such_file", "not_in_room", "no_files", "no_such_user", "wrong_file"):
        return FileUnavailableError(text)
    if code in ("hash_mismatch", "file_damaged"):
        return FileCorruptError(text)
    return TransferRefusedError(f"the server refused the transfer ({code}): {text}", code=code)


#: the slowest hashing (bytes/s) a wait allows for: before it accepts a transfer the server
#: hashes what it holds of an earlier attempt (an upload's partial file, the first bytes of
#: its copy that a resumed download holds), in threads that yield to the chat (nice +10) on
#: a busy machine; after an upload's last byte it hashes and writes what still waits for
#: its disk (up to 4 MiB, more on a slow disk)
HASH_RATE_FLOOR = 20e6
#: refusals after which trying again may work (another connection, a new token)
RETRYABLE = frozenset({"busy", "bad_token", "timeout", "too_many_transfers"})


# --------------------------------------------------------------------------- hashing


def _hash_path(path: Path, progress: Callable[[int], None] | None) -> tuple[str, int]:
    hasher = hashlib.sha256()
    done = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(HASH_CHUNK):
            hasher.update(chunk)
            done += len(chunk)
            if progress is not None:
                progress(done)
    return hasher.hexdigest(), done


async def hash_file(path: Path, progress: Progress | None = None) -> tuple[str, int]:
    """(SHA-256, size) of a file, read in a worker thread; :class:`FileAccessError` if it
    cannot be read."""
    loop = asyncio.get_running_loop()
    total = path.stat().st_size
    report = None
    if progress is not None:
        def report(done: int) -> None:
            loop.call_soon_threadsafe(progress, done, total)
    try:
        return await asyncio.to_thread(_hash_path, path, report)
    except OSError as exc:
        raise FileAccessError(f"cannot read {path}: {exc.strerror or exc}") from None


def readable_file(path: Path) -> int:
    """The size of ``path``, a regular file we can read; :class:`FileAccessError` otherwise."""
    try:
        st = path.stat()
    except OSError as exc:
        raise FileAccessError(f"cannot read {path}: {exc.strerror or exc}") from None
    if stat.S_ISDIR(st.st_mode):
        raise FileAccessError(f"{path} is a directory: one file is shared at a time (pack "
                              "the directory into one first, e.g. with tar)")
    if not stat.S_ISREG(st.st_mode):
        raise FileAccessError(f"{path} is not a regular file")
    if not os.access(path, os.R_OK):
        raise FileAccessError(f"cannot read {path}: permission denied")
    if (st.st_size == 0 or (st.st_blocks == 0 and st.st_size <= _KERNEL_FILE_SIZE)) and (
        _size_is_not_content(path, st.st_size)
    ):
        # a kernel file: its size reads 0 (/proc) or a page (/sys), its bytes are made as
        # they are read and may differ on each read. A share announces its size and SHA-256
        # before the first byte goes: refused, rather than sent as an empty file, a changing
        # one, or failed with "changed while it was read; try again" (it always would)
        raise FileAccessError(f"{path} has no fixed size (it says {st.st_size} bytes but its "
                              "content is another length, as /proc and /sys files do): copy "
                              "it into a regular file first and share that")
    return st.st_size


#: a file this small that occupies no disk blocks may be a kernel file (sysfs: 4096)
_KERNEL_FILE_SIZE = 65536


def _size_is_not_content(path: Path, size: int) -> bool:
    """Whether a file of ``size`` bytes by its stat gives another number of bytes (a kernel
    file; a sparse regular file reads exactly its size). False if unreadable: the hash then
    says why."""
    try:
        with open(path, "rb") as fh:
            return len(fh.read(size + 1)) != size
    except OSError:
        return False


# --------------------------------------------------------------------------- the connection


def _secs(seconds: float) -> str:
    """Seconds for a message: ``2``, ``0.5``, ``15``, ``1200`` (not ``15.2429`` or ``1.2e+03``)."""
    return f"{seconds:.0f}" if seconds >= 10 else f"{seconds:.2g}"


async def _reply(reader: asyncio.StreamReader, timeout: float,
                 waiting_for: str) -> t.ServerTransferFrame:
    try:
        line = await asyncio.wait_for(reader.readuntil(b"\n"), timeout)
    except asyncio.TimeoutError:
        raise TimeoutRichchatError(
            f"timed out after {_secs(timeout)} s waiting for {waiting_for}") from None
    except asyncio.IncompleteReadError as exc:
        raise ConnectionLostError(f"the server closed the transfer connection while we waited "
                                  f"for {waiting_for}") from exc
    except asyncio.LimitOverrunError:
        raise ProtocolError("the server's answer on the transfer connection is too long") from None
    except (ConnectionError, OSError) as exc:
        raise ConnectionLostError(f"transfer connection lost: {exc}") from None
    try:
        return t.decode_reply(line.rstrip(b"\r\n"))
    except t.TransferLineError as exc:
        raise ProtocolError(f"bad answer on the transfer connection: {exc}") from None


async def _request(open_stream: StreamOpener, request: t.TransferRequest, timeout: float
                   ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, t.TransferAccepted]:
    reader, writer = await open_stream()
    try:
        writer.write((request.line() + "\n").encode())
        await asyncio.wait_for(writer.drain(), timeout)
        reply = await _reply(reader, timeout, "the server to accept the transfer")
    except BaseException:
        writer.close()
        raise
    if isinstance(reply, t.TransferError):
        writer.close()
        raise refusal(reply.code, reply.text)
    if not isinstance(reply, t.TransferAccepted):
        writer.close()
        raise ProtocolError(f"unexpected answer {reply.line()[:60]!r} on the transfer connection")
    return reader, writer, reply


async def _close(writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(Exception):
        writer.close()
        await asyncio.wait_for(writer.wait_closed(), 1.0)


# --------------------------------------------------------------------------- upload


@dataclass(frozen=True)
class Sent:
    """What one upload connection did."""

    offset: int  # the bytes the server held already (resumed from there)
    sent: int  # bytes sent on this connection


def _read_at(fh: IO[bytes], position: int, count: int) -> bytes:
    fh.seek(position)
    return fh.read(count)


async def _send_chunk(loop: asyncio.AbstractEventLoop, writer: asyncio.StreamWriter,
                      fh: IO[bytes], position: int, count: int, tls: bool) -> int:
    """Send ``count`` bytes of ``fh`` from ``position``; the bytes sent (0: the file ended).

    Plain TCP: ``loop.sendfile`` (the kernel copies). TLS: read off the event loop, write,
    wait for the buffer to drain. Not ``loop.sendfile``: on a TLS transport it falls back to
    swapping the connection's protocol for each call, and a transport paused between two
    calls (a server reading slowly) then resumed a stream protocol that was never paused
    (asyncio's assertion: the upload died with AssertionError)."""
    if not tls:
        return await loop.sendfile(writer.transport, fh, position, count)
    data = await loop.run_in_executor(None, _read_at, fh, position, count)
    if data:
        writer.write(data)
        await writer.drain()
    return len(data)


class UploadEnd:
    """How the last upload of this process ended when it did not end well: whether every
    byte of the file had reached the server (``delivered``: the server then verifies and
    shares it although this process stopped waiting; the user must be told so)."""

    delivered = False


LAST_UPLOAD = UploadEnd()


def _unacknowledged(writer: asyncio.StreamWriter) -> int | None:
    """Bytes written to the connection that the server's end has not acknowledged yet
    (Linux's SIOCOUTQ; None where it cannot be told)."""
    sock = writer.get_extra_info("socket")
    if sock is None:
        return None
    try:
        import fcntl
        import struct
        import termios

        raw = fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0")
        return int(struct.unpack("i", raw)[0])
    except (ImportError, OSError, ValueError):
        return None


def _abort(writer: asyncio.StreamWriter) -> None:
    """Drop the connection with a reset: what this end still holds unsent is discarded, so a
    server does not get (and share) the rest of a file whose upload was stopped."""
    sock = writer.get_extra_info("socket")
    with contextlib.suppress(OSError, ValueError, AttributeError):
        import socket as _socket
        import struct

        if sock is not None:
            sock.setsockopt(_socket.SOL_SOCKET, _socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def upload(open_stream: StreamOpener, token: str, path: Path, sha256: str, size: int,
                 *, timeout: float = 10.0, progress: Progress | None = None,
                 rate: int | None = None) -> Sent:
    """Send the file ``path`` (SHA-256 ``sha256``, ``size`` bytes) for ``token``; return once
    the server has verified and stored it. ``rate``: the server's speed limit per transfer
    (its ``HELLO``'s ``filerate=``), allowed for in every wait: the socket buffers of both
    ends hold megabytes, which a limited server takes in slowly, so a chunk handed to them
    or the verification after the last byte can take much longer than ``timeout`` while
    the bytes are moving."""
    request = t.TransferRequest(op="PUT", token=token)
    LAST_UPLOAD.delivered = False
    # before it answers, the server hashes what it holds of an earlier attempt (up to size)
    reader, writer, accepted = await _request(open_stream, request,
                                              timeout + size / HASH_RATE_FLOOR)
    position = 0
    ended_well = False
    try:
        if accepted.sha256 != sha256 or accepted.size != size:
            raise ProtocolError("the server accepted another file than the one offered")
        offset = position = accepted.offset
        if progress is not None:
            progress(position, size)
        loop = asyncio.get_running_loop()
        try:
            fh = open(path, "rb")  # noqa: SIM115 - closed below
        except OSError as exc:
            raise FileAccessError(f"cannot read {path}: {exc.strerror or exc}") from None
        with fh:
            if os.fstat(fh.fileno()).st_size != size:
                raise FileAccessError(f"{path} changed size since it was hashed; share it again")
            tls = writer.get_extra_info("ssl_object") is not None
            while position < size:
                count = min(SEND_CHUNK, size - position)
                fh.seek(position)
                try:
                    moved = await asyncio.wait_for(
                        _send_chunk(loop, writer, fh, position, count, tls),
                        timeout + (count / rate if rate else 0))
                except asyncio.TimeoutError:
                    raise TimeoutRichchatError(
                        f"the server took no data for {timeout:g} s") from None
                except (ConnectionError, OSError, RuntimeError) as exc:
                    # the server may have said why before it closed
                    await _refusal_after(reader)
                    raise ConnectionLostError(f"upload interrupted: {exc}") from None
                if moved == 0:  # the end of the file came early: it was cut shorter
                    raise FileCorruptError(f"{path} changed while it was sent (it is shorter "
                                           "than when it was hashed); nothing was shared")
                position += moved
                if progress is not None:
                    progress(position, size)
        # the server hashes and writes what still waits for its disk, then stores the file;
        # a speed-limited server still reads what the buffers hold (at most what this
        # connection sent)
        wait = timeout + size / HASH_RATE_FLOOR + ((size - offset) / rate if rate else 0)
        done = await _reply(reader, wait, "the server to verify the file")
        if isinstance(done, t.TransferError):
            if done.code == "hash_mismatch":
                raise FileCorruptError(f"{path} changed while it was sent (the server hashed "
                                       "other bytes); nothing was shared")
            raise refusal(done.code, done.text)
        if not isinstance(done, t.TransferDone) or done.sha256 != sha256:
            raise ProtocolError("the server confirmed another file than the one sent")
        ended_well = True
        return Sent(offset, size - offset)
    finally:
        if ended_well:
            await _close(writer)
        else:  # stopped (Ctrl+C, a timeout, an error): nothing more goes to the server
            stopped = sys.exc_info()[1]
            LAST_UPLOAD.delivered = (
                isinstance(stopped, (asyncio.CancelledError, KeyboardInterrupt))
                and position >= size
                and writer.transport.get_write_buffer_size() == 0  # (TLS: asyncio's buffer)
                and _unacknowledged(writer) == 0
            )
            _abort(writer)


async def _refusal_after(reader: asyncio.StreamReader) -> None:
    """An ``XERR`` the server sent before closing, raised as an error (else nothing)."""
    try:
        reply = await _reply(reader, 0.5, "a reason")
    except (RichchatError, OSError):
        return
    if isinstance(reply, t.TransferError):
        raise refusal(reply.code, reply.text)


# --------------------------------------------------------------------------- download


class DownloadBusyError(FileAccessError):
    """Another download of the same file into the same directory is under way."""


def _lock_part(fd: int, path: str) -> None:
    """Hold the part file for this download (released when it is closed): a second download
    of the same file into the same directory (``/get`` twice, two ``richchat get``) would
    write into it too, and fail confusingly when the first had renamed it."""
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise DownloadBusyError(
            f"this file is already being downloaded into {os.path.dirname(path)} (by this or "
            "another richchat); wait for that download to end") from None


def _open_locked(path: str) -> tuple[IO[bytes], os.stat_result]:
    """The part file at ``path``, opened (made if need be) and locked for this download.

    The download holding the lock keeps it until the file has its name; one that named it
    meanwhile (we opened the part file before it was renamed, and locked it after) left us a
    file that is no longer the part file, but the other's saved file: opened again."""
    flags = (os.O_RDWR | os.O_CREAT | getattr(os, "O_BINARY", 0)
             | getattr(os, "O_NOFOLLOW", 0))
    for _ in range(3):
        if os.path.islink(path) or (os.path.lexists(path) and not os.path.isfile(path)):
            os.unlink(path)  # our own hidden name, taken by something that is not our file
        fd = os.open(path, flags, 0o666)  # the umask applies, as for any file you save
        fh = os.fdopen(fd, "r+b", buffering=0)
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise OSError(errno.EINVAL, "not a regular file")
            _lock_part(fd, path)
            try:
                now = os.lstat(path)
            except FileNotFoundError:
                now = None
            if now is not None and (now.st_dev, now.st_ino) == (st.st_dev, st.st_ino):
                return fh, st
        except BaseException:
            fh.close()
            raise
        fh.close()
    raise DownloadBusyError(f"this file is being downloaded into {os.path.dirname(path)} "
                            "again and again (by other richchat processes); try later")


def _open_part(path: str, size: int | None) -> tuple[IO[bytes], Any, int]:
    """Open (or create) a download's part file without following a symbolic link, lock it,
    and hash what it holds: (file positioned at its end, hasher, bytes held)."""
    fh, st = _open_locked(path)
    try:
        held = st.st_size
        if size is not None and held > size:
            fh.truncate(0)
            held = 0
        hasher = hashlib.sha256()
        left = held
        while left > 0:
            chunk = fh.read(min(left, HASH_CHUNK))
            if not chunk:
                break
            hasher.update(chunk)
            left -= len(chunk)
        held -= left
        fh.seek(held)
        fh.truncate(held)
    except BaseException:
        fh.close()
        raise
    return fh, hasher, held  # type: ignore[return-value]


def _retrieved(fut: asyncio.Future[Any]) -> None:
    """Mark a future's exception as seen (whoever awaits it still gets it raised)."""
    if not fut.cancelled():
        fut.exception()


class _Receiver(asyncio.BufferedProtocol):
    """The download side of a transfer connection, after the request: parses the server's
    first line, then receives the file's bytes straight into :data:`RECEIVE_BUFFER`-byte
    buffers (no copy through a StreamReader) and has each full buffer hashed and written by
    a worker thread while the next one fills (or, on a slow link, what a buffer holds after
    :data:`FLUSH_INTERVAL` with the writer idle, so progress moves); reading pauses while two
    buffers wait.
    Works the same on a TLS transport (asyncio's TLS layer feeds buffered protocols too).
    Bytes received before the connection breaks are written all the same (a resume starts
    after them)."""

    def __init__(self, fh: IO[bytes], hasher: Any, held: int, progress: Progress | None,
                 directory: str = "the download directory") -> None:
        self.directory = directory  # for messages
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.fh, self.hasher = fh, hasher
        self._io = HashWriter(fh, hasher)
        self.progress = progress
        self.head = bytearray()
        self.accepted: asyncio.Future[t.ServerTransferFrame] = self.loop.create_future()
        self.finished: asyncio.Future[None] = self.loop.create_future()
        # a download that already gave up (a refused answer, another file than offered, a
        # timeout) no longer awaits these: their late error is not news (asyncio would log
        # "Future exception was never retrieved" with a traceback on the user's terminal)
        self.accepted.add_done_callback(_retrieved)
        self.finished.add_done_callback(_retrieved)
        self.total = 0
        self.left = -1  # bytes still to come (-1: the first line is not in yet)
        self.received = self.written = held
        self._buf = bytearray(RECEIVE_BUFFER)
        self._filled = 0
        self._queue: collections.deque[memoryview] = collections.deque()
        self._writing = False
        self._paused = False
        self._lost: BaseException | None = None
        self._ended = False
        self.last_activity = self._rotated = self.loop.time()

    # -- asyncio.BufferedProtocol

    def get_buffer(self, sizehint: int) -> memoryview:
        if self.left < 0:
            return memoryview(self._buf)[: t.MAX_TRANSFER_LINE + 1 - len(self.head)]
        if self._filled == len(self._buf):
            self._rotate()
        end = min(len(self._buf), self._filled + max(self.left, 1))
        return memoryview(self._buf)[self._filled : end]

    def buffer_updated(self, nbytes: int) -> None:
        self.last_activity = self.loop.time()
        if self.left < 0:
            self._head_bytes(bytes(self._buf[:nbytes]))
            return
        if nbytes > self.left:  # more than the file: the server is broken
            self._fail(ProtocolError("the server sent more bytes than the file has"))
            return
        self._filled += nbytes
        self.left -= nbytes
        self.received += nbytes
        if self._filled == len(self._buf) or self.left == 0 or (
                not self._writing and not self._queue
                and self.last_activity - self._rotated >= FLUSH_INTERVAL):
            self._rotate()

    def eof_received(self) -> bool | None:
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if self.left < 0 and not self.accepted.done():
            self.accepted.set_exception(ConnectionLostError(
                "the server closed the transfer connection while we waited for its answer"))
        if self.left != 0 and self._lost is None:
            self._lost = ConnectionLostError(
                f"download interrupted after {self.received} of {self.total} bytes (run it "
                "again to resume)")
        self._rotate()

    # -- the first line

    def _head_bytes(self, data: bytes) -> None:
        self.head += data
        end = self.head.find(b"\n")
        if end < 0:
            if len(self.head) > t.MAX_TRANSFER_LINE:
                self._answer_error(ProtocolError("the server's answer is too long"))
            return
        line, rest = bytes(self.head[:end]).rstrip(b"\r"), bytes(self.head[end + 1 :])
        try:
            frame = t.decode_reply(line)
        except t.TransferLineError as exc:
            self._answer_error(ProtocolError(f"bad answer on the transfer connection: {exc}"))
            return
        if not self.accepted.done():
            self.accepted.set_result(frame)
        if not isinstance(frame, t.TransferAccepted):
            return
        if frame.offset == 0 and self.received > 0:
            self._restart()
        self.total = frame.size
        self.left = frame.size - frame.offset
        if len(rest) > self.left:
            self._fail(ProtocolError("the server sent more bytes than the file has"))
            return
        self._buf[: len(rest)] = rest
        self._filled = len(rest)
        self.left -= len(rest)
        self.received += len(rest)
        if self.left == 0:
            self._rotate()

    def _restart(self) -> None:
        """The server starts from the first byte (the part file's bytes are not this file's
        start, or more than the file): drop them before the first new byte is written."""
        self.fh.seek(0)
        self.fh.truncate(0)
        self.hasher = hashlib.sha256()
        self._io.hasher = self.hasher
        self.received = self.written = 0

    def _answer_error(self, exc: RichchatError) -> None:
        if not self.accepted.done():
            self.accepted.set_exception(exc)
        if self.transport is not None:
            self.transport.abort()

    # -- writing

    def _rotate(self) -> None:
        """Queue the buffer filled so far (if any), start writing, pause reading if needed."""
        if self._filled:
            self._queue.append(memoryview(self._buf)[: self._filled])
            self._buf = bytearray(RECEIVE_BUFFER)
            self._filled = 0
            self._rotated = self.loop.time()
        if len(self._queue) >= 2 and not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()
        self._pump()

    def _pump(self) -> None:
        if self._writing:
            return
        if self._queue:
            chunk = self._queue.popleft()
            self._writing = True
            future = self._io.feed([chunk])
            future.add_done_callback(lambda fut: self._wrote(fut, len(chunk)))
        elif (self.left == 0 or self._lost is not None) and not self._ended:
            self._ended = True
            self._io.close()
            if self._lost is not None:
                self.finished.set_exception(self._lost)
            else:
                self.finished.set_result(None)

    def _wrote(self, fut: asyncio.Future[tuple[None, None]], size: int) -> None:
        self._writing = False
        if fut.cancelled() or fut.exception() is not None:
            error = None if fut.cancelled() else fut.exception()
            why = (error.strerror or str(error)) if isinstance(error, OSError) else error
            self._fail(FileAccessError(f"cannot write the download in {self.directory}: "
                                       f"{why}"))
            self._queue.clear()
        else:
            self.written += size
            if self.progress is not None:
                self.progress(self.written, self.total)
        if self._paused and len(self._queue) < 2 and self.transport is not None:
            self._paused = False
            with contextlib.suppress(RuntimeError):
                self.transport.resume_reading()
        self._pump()

    def _fail(self, exc: RichchatError) -> None:
        if self._lost is None:
            self._lost = exc
        self.left = max(self.left, 0)
        if self.transport is not None:
            self.transport.abort()


class DownloadDir:
    """Where downloads land, and the rules that keep them there (see the module text).

    ``exact``: the name the user chose (``richchat get -o FILE``): used as given (it is the
    user's own), but never over an existing file."""

    def __init__(self, directory: Path, exact: str | None = None) -> None:
        self.given = directory.expanduser()
        self.path = Path(os.path.realpath(self.given))
        self.exact = exact

    def ensure(self) -> None:
        """Create the directory if needed (when the first bytes are about to arrive, not
        before: a refused download creates nothing) and check that it can be written."""
        try:
            self.given.mkdir(parents=True, exist_ok=True)
        except FileExistsError:  # there, and no directory (a directory is no error)
            raise FileAccessError(f"{self.given} is not a directory") from None
        except OSError as exc:
            raise FileAccessError(
                f"cannot create the download directory {self.given}: {exc.strerror or exc}"
            ) from None
        self.path = Path(os.path.realpath(self.given))
        if not self.path.is_dir():
            raise FileAccessError(f"{self.given} is not a directory")
        if not os.access(self.path, os.W_OK | os.X_OK):
            raise FileAccessError(f"cannot write to the download directory {self.path}")
        if self.exact is not None and os.path.lexists(self.path / self.exact):
            # said before a byte is fetched (a large file was downloaded whole, then refused)
            raise FileAccessError(f"{self.given / self.exact} exists; it is not overwritten "
                                  "(choose another -o, or remove it)")

    def part_path(self, file_id: str) -> str:
        return os.path.join(self.path, f"{PART_PREFIX}{file_id}{PART_SUFFIX}")

    def held(self, file_id: str) -> int:
        """Bytes of ``file_id`` a previous, interrupted download left (0: none)."""
        try:
            st = os.lstat(self.part_path(file_id))
        except OSError:
            return 0
        return st.st_size if stat.S_ISREG(st.st_mode) else 0

    def discard(self, file_id: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.part_path(file_id))

    def leftover(self, file_id: str) -> str | None:
        """What an earlier, interrupted download of ``file_id`` left here, for the user, when
        the server says it has no such file (None: nothing). The part file is kept: the
        server says so of an expired file and, alike, of a private file asked for under
        another nickname than its addressee's (to anyone else it does not exist), and the
        download would resume under the right one. The user is told where it is."""
        held = self.held(file_id)
        if not held:
            return None
        return (f"{self.part_path(file_id)} holds the {human_size(held)} an interrupted "
                "download of it received: kept in case only the nickname was not the "
                "addressee's; delete it if the file is gone")

    def name_for(self, name: str, sha256: str) -> str:
        """The cleaned base name a file called ``name`` gets here."""
        return safe_file_name(name, fallback=f"file-{sha256[:12]}")

    def place(self, file_id: str, name: str, sha256: str) -> Path:
        """Give the verified part file its name: ``name``, else ``name (1)``... (never over
        an existing name, a symbolic link included); return its path."""
        part = self.part_path(file_id)
        if self.exact is not None:
            candidates: list[str] = [self.exact]
        else:
            clean = self.name_for(name, sha256)
            candidates = [numbered(clean, n) for n in range(MAX_NUMBERED + 1)]
        for candidate in candidates:
            final = os.path.join(self.path, candidate)
            if os.path.lexists(final):
                continue
            if _link_new(part, final):
                os.unlink(part)
                break
        else:
            if self.exact is not None:
                raise FileAccessError(f"{os.path.join(self.path, self.exact)} exists; it was "
                                      f"not overwritten (the download is kept as {part})")
            raise FileAccessError(f"no free name for {name!r} in {self.path}")
        real = os.path.realpath(final)
        if os.path.dirname(real) != str(self.path):  # cannot happen; checked all the same
            with contextlib.suppress(OSError):
                os.unlink(final)
            raise FileAccessError(f"refused to write outside {self.path}")
        return Path(real)


def _link_new(source: str, target: str) -> bool:
    """Give ``source`` the new name ``target``, only if nothing has that name: True if done,
    False if the name is taken. ``link`` fails on an existing name (a symbolic link too);
    where links are not available (FAT, some network shares), ``rename``, which Windows
    refuses over an existing file and POSIX was just told is free."""
    try:
        os.link(source, target, follow_symlinks=False)
        return True
    except FileExistsError:
        return False
    except (OSError, NotImplementedError) as exc:
        if isinstance(exc, OSError) and exc.errno not in (errno.EPERM, errno.ENOTSUP,
                                                          errno.EOPNOTSUPP, errno.EXDEV,
                                                          errno.EACCES, errno.EMLINK, None):
            raise
    if os.path.lexists(target):
        return False
    try:
        os.rename(source, target)
    except FileExistsError:
        return False
    return True


@dataclass(frozen=True)
class Received:
    """What a download did."""

    path: Path  # where the file is now
    name: str  # the name the sender gave
    size: int
    sha256: str
    offset: int  # the bytes held already (resumed from there)
    received: int  # bytes received on this connection


async def download(open_stream: StreamOpener, token: str, file_id: str, where: DownloadDir,
                   *, sha256: str | None = None, size: int | None = None,
                   timeout: float = 10.0, progress: Progress | None = None) -> Received:
    """Fetch file ``file_id`` for ``token`` into ``where``, resuming what an earlier attempt
    left; verify its SHA-256 and give it its (clean, new) name."""
    where.ensure()
    part = where.part_path(file_id)
    try:
        fh, hasher, held = await asyncio.to_thread(_open_part, part, size)
    except OSError as exc:
        raise FileAccessError(f"cannot write {part}: {exc.strerror or exc}") from None
    keep = True  # the part file stays for a resume unless its bytes are proven bad
    placed = False
    try:
        # the SHA-256 of the bytes held: the server starts again from 0 if they are not the
        # start of its copy (a stale or damaged part file), instead of completing them into
        # a file that fails its hash at the end
        prefix = hasher.copy().hexdigest() if held else None
        request = t.TransferRequest(op="GET", token=token, offset=held, file_id=file_id,
                                    prefix=prefix)
        _reader, writer = await open_stream()
        receiver = _Receiver(fh, hasher, held, progress, str(where.given))
        transport = cast(asyncio.Transport, writer.transport)
        transport.set_protocol(receiver)
        receiver.transport = transport
        try:
            transport.write((request.line() + "\n").encode())
            # a resume: the server hashes its copy's first ``held`` bytes before it answers
            wait = timeout + held / HASH_RATE_FLOOR
            try:
                accepted = await asyncio.wait_for(asyncio.shield(receiver.accepted), wait)
            except asyncio.TimeoutError:
                raise TimeoutRichchatError(f"timed out after {_secs(wait)} s waiting for the "
                                           "server to accept the transfer") from None
            if isinstance(accepted, t.TransferError):
                err = refusal(accepted.code, accepted.text)
                # we hold more than the file (start again), or there is nothing to resume
                # (a token for another file says nothing about this one's part file); the
                # server has no such file: kept, and said where (see DownloadDir.leftover)
                keep = accepted.code in ("wrong_file", "no_such_file") or (
                    accepted.code != "bad_offset" and not isinstance(
                        err, (FileUnavailableError, FileCorruptError)))
                note = where.leftover(file_id) if accepted.code == "no_such_file" else None
                if note is not None and isinstance(err, FileUnavailableError):
                    err = FileUnavailableError(err.message, hint=note)
                raise err
            if not isinstance(accepted, t.TransferAccepted) or (
                    sha256 is not None and accepted.sha256 != sha256) or (
                    size is not None and accepted.size != size) or (
                    accepted.offset not in (held, 0)):
                raise ProtocolError("the server sent another file than the one offered")
            held = accepted.offset  # 0: the part file's bytes were dropped (see _restart)
            if progress is not None:
                progress(held, accepted.size)
            while not receiver.finished.done():
                await asyncio.wait({receiver.finished}, timeout=min(1.0, timeout))
                idle = receiver.loop.time() - receiver.last_activity
                if not receiver.finished.done() and idle > timeout:
                    transport.abort()  # what came so far is written, for a resume
                    await asyncio.wait({receiver.finished}, timeout=timeout)
                    raise TimeoutRichchatError(f"the server sent nothing for {timeout:g} s")
            receiver.finished.result()
        finally:
            transport.close()
        # the part file stays open, and so locked, until it has its name: a download of the
        # same file into this directory starting meanwhile is told it is under way (it took
        # the finished part file over and named it, and this one failed, 'No such file')
        digest = str(receiver.hasher.hexdigest())
        if os.name == "nt":  # no lock to keep there, and an open file cannot be renamed
            fh.close()
        if digest != accepted.sha256:
            keep = False
            raise FileCorruptError(
                f"file {file_id} is damaged: its bytes hash to {digest[:12]}..., not to "
                f"{accepted.sha256[:12]}... as shared; the data was discarded")
        try:
            final = await asyncio.to_thread(where.place, file_id, accepted.name, digest)
        except OSError as exc:
            raise FileAccessError(f"cannot name the download: {exc.strerror or exc}") from None
        placed = True  # the part file's name may already be another download's
        return Received(final, accepted.name, accepted.size, digest, held, accepted.size - held)
    finally:
        if os.name == "nt" and not fh.closed:
            fh.close()  # Windows deletes no open file
        if not placed and (not keep or where.held(file_id) == 0):
            where.discard(file_id)  # an empty part file resumes nothing; lock still held
        if not fh.closed:
            fh.close()


def default_download_dir() -> Path:
    """``RICHCHAT_DOWNLOAD_DIR``, else the user's downloads folder (platformdirs) /
    ``richchat``."""
    env = os.environ.get("RICHCHAT_DOWNLOAD_DIR")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_downloads_dir

    return Path(user_downloads_dir()) / "richchat"
