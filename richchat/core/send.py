"""One-shot sending for ``richchat send``: connect, register, send lines, confirm each one.

:func:`send_messages` sends a list of messages, or each line of a stream (stdin) as it
arrives, and counts a message delivered only once the server relayed it back. What it has
done so far lives in a :class:`SendStatus` the caller may pass in and read at any time: after
Ctrl+C it still says how many messages were delivered.

* A line longer than :data:`MAX_MESSAGE_BYTES` is refused (kept in ``status.refused``, reported
  through ``on_refused``) and the stream goes on with the next line.
* The server advertises its flood limit in its ``HELLO`` (``flood=RATE/BURST``); :class:`Pacer`
  mirrors that token bucket, so lines are sent as fast as the server takes them, never
  faster: the server never has to hold them back, and ``--timeout`` measures the server's
  answer, not a queue. While pacing, ``on_progress`` is called (about 4 times a second) with
  the rate and what is left, for a progress line on a terminal.

Like :mod:`richchat.core.client`, this module stays light (no textual, scapy, nmap).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import threading
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from richchat.core.client import (
    Address,
    ChatClient,
    RequestRejectedError,
    frame_error_text,
    suffixed_nick,
)
from richchat.core.errors import (
    ConnectionLostError,
    FileAccessError,
    NickRefusedError,
    ServerDegradedError,
    TimeoutRichchatError,
    UsageError,
)
from richchat.core.protocol import frames as f
from richchat.core.protocol.text import (
    DEFAULT_ROOM,
    MAX_MESSAGE_BYTES,
    fold_name,
    message_problem,
    message_size,
    nick_problem,
)
from richchat.core.trust.connect import TrustPolicy

#: seconds between progress calls while a line waits for the server's flood limit
PROGRESS_EVERY = 0.25
#: an input line longer than this is not kept in memory: only its size is (it is refused)
LONGEST_KEPT_LINE = 1024 * 1024

_TERMINATOR = re.compile(rb"\r\n|\r|\n")
T = TypeVar("T")


class Interrupted(Exception):
    """Ctrl+C (SIGINT) ended the send; its :class:`SendStatus` says what got through."""


@dataclass(frozen=True)
class Oversized:
    """An input line too long to keep (over :data:`LONGEST_KEPT_LINE` bytes): its size."""

    size: int


def read_lines(fd: int, chunk: int = 65536) -> Iterator[str | Oversized]:
    """The lines of file descriptor ``fd`` (stdin) as they arrive: ``\n``, ``\r\n`` or a bare
    ``\r`` end a line, as on the wire, and bytes that are not UTF-8 are replaced (U+FFFD), as
    the server replaces them; an undecodable line never ends the stream.

    It reads the descriptor itself, with no Python file object: the reading thread may still
    be blocked in it when the process exits, and a buffered file object locked by that
    thread makes the interpreter abort at shutdown.
    """
    buf = bytearray()
    skipped = -1  # bytes of an oversized line seen so far, or -1
    cr_end = False  # the last chunk ended with '\r': a leading '\n' belongs to it
    while True:
        try:
            data = os.read(fd, chunk)
        except InterruptedError:
            continue
        if not data:
            break
        if cr_end and data[:1] == b"\n":
            data = data[1:]
        cr_end = data[-1:] == b"\r"
        buf += data
        start = 0
        for m in _TERMINATOR.finditer(buf):
            if skipped >= 0:
                yield Oversized(skipped + m.start() - start)
                skipped = -1
            else:
                yield bytes(buf[start : m.start()]).decode("utf-8", "replace")
            start = m.end()
        del buf[:start]
        if len(buf) > LONGEST_KEPT_LINE or (skipped >= 0 and buf):
            skipped = max(skipped, 0) + len(buf)
            buf.clear()
    if skipped >= 0:
        yield Oversized(skipped + len(buf))
    elif buf:
        yield bytes(buf).decode("utf-8", "replace")


#: The two report models are built on first use (``defer_build``), not when ``send`` is
#: imported: a send that refuses no line and prints no JSON never builds their validators
#: and serializers (two models, 5-10 ms of a ``richchat send``; docs/performance.md).
_REPORT = ConfigDict(frozen=True, defer_build=True)


class RefusedLine(BaseModel):
    """A line ``send`` did not send (``--json``: the ``refused`` list)."""

    model_config = _REPORT

    line: int  # its number in the input, from 1 (blank lines count)
    size: int  # its size in bytes, as MAX_MESSAGE_BYTES counts it
    reason: str


class SendResult(BaseModel):
    """What ``richchat send --json`` prints."""

    model_config = _REPORT

    server: str
    nick: str
    target: str  # a room name, or "@user" for a private message
    delivered: int
    refused: tuple[RefusedLine, ...] = ()
    interrupted: bool = False  # Ctrl+C: ``delivered`` is what got through before it
    #: interrupted while a message was on its way: sent, its relay not seen yet (0 or 1)
    unconfirmed: int = 0
    #: the connection was TLS ("TLSv1.3"), or None for plaintext
    tls: str | None = None
    #: the server key's fingerprint (TLS only)
    fingerprint: str | None = None
    #: what ended the send early (the line the CLI prints on stderr), or None: every line
    #: was sent (``refused`` lists any stdin line that was not)
    error: str | None = None
    #: the command's exit status (0, 15 for refused lines, 130 interrupted, or the error's)
    exit_code: int = 0


@dataclass
class SendStatus:
    """What a send has done so far; updated as it goes (readable after an interrupt)."""

    server: str
    nick: str
    target: str
    delivered: int = 0
    #: sent and not confirmed yet (the line on its way)
    unconfirmed: int = 0
    refused: list[RefusedLine] = field(default_factory=list)
    #: lines read from the input and not sent yet (the one waiting to go included)
    waiting: int = 0
    #: the whole input has been read (so ``waiting`` is all that is left)
    input_done: bool = False
    #: the server's flood limit in lines per second (None: not advertised, or no limit)
    rate: float | None = None
    #: a line had to wait for the flood limit at least once (the send is throttled)
    throttled: bool = False
    tls: str | None = None
    fingerprint: str | None = None

    def seconds_left(self) -> float | None:
        """Time the waiting lines need at the server's rate (None: no limit known)."""
        if not self.rate:
            return None
        return self.waiting / self.rate

    def result(self, *, interrupted: bool = False, error: str | None = None,
               exit_code: int = 0) -> SendResult:
        # model_construct: these are this module's own counters and the RefusedLine models
        # (validated when they were made), typed as SendResult's fields; validating them
        # again would build SendResult's validator in every send, for a report that only
        # --json serializes
        return SendResult.model_construct(
            server=self.server, nick=self.nick, target=self.target, delivered=self.delivered,
            refused=tuple(self.refused), interrupted=interrupted, unconfirmed=self.unconfirmed,
            tls=self.tls, fingerprint=self.fingerprint, error=error, exit_code=exit_code,
        )


class Pacer:
    """The server's per-connection token bucket, as seen from the client.

    The server starts its bucket full (``burst`` tokens) when we connect and takes one token
    for every line it reads from us, refilling ``rate`` tokens a second. Ours starts full
    when its ``HELLO`` arrives (later than the server's) and takes one for every line we
    have sent (``ChatClient.lines_sent``: HELLO, nickname, join, PONGs included). Started
    later and charged no later, it never holds more tokens than the server's: a line sent
    when ours has one is read by the server at once.
    """

    def __init__(self, rate: float, burst: int, sent: int, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self._tokens = float(burst)
        self._at = now
        self._counted = 0
        self.delay(sent, now)

    def delay(self, sent: int, now: float) -> float:
        """Seconds to wait before the next line, given ``sent`` lines so far."""
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        self._tokens -= sent - self._counted
        self._counted = sent
        return 0.0 if self._tokens >= 1 else (1 - self._tokens) / self.rate


class _LineSource:
    """Lines of a list, or of a stream (stdin) read by a daemon thread as they arrive, so a
    slow pipe never blocks the event loop and a blocked read never keeps the process alive."""

    def __init__(self, source: Iterable[str | Oversized]) -> None:
        self._list: list[str | Oversized] | None = None
        self._queue: asyncio.Queue[str | Oversized | None] = asyncio.Queue()
        self.done = False
        #: why reading the stream failed (a read error, not its end), once it has
        self.failure: OSError | None = None
        if isinstance(source, (list, tuple)):
            self._list = list(source)
            self.done = True
            return
        loop = asyncio.get_running_loop()

        def finished(failure: OSError | None) -> None:
            self.done, self.failure = True, failure
            self._queue.put_nowait(None)

        def pump() -> None:
            # A read error (a socket on stdin reset, EIO) is not the end of the input: the
            # send must not end as if every line had been read (exit 0, lines lost), nor
            # the thread die with a traceback on stderr.
            failure = None
            try:
                for item in source:
                    loop.call_soon_threadsafe(self._queue.put_nowait, item)
            except OSError as exc:
                failure = exc
            finally:
                loop.call_soon_threadsafe(finished, failure)

        threading.Thread(target=pump, name="richchat-send-stdin", daemon=True).start()

    @property
    def waiting(self) -> int:
        """Lines read and not taken yet."""
        if self._list is not None:
            return len(self._list)
        return self._queue.qsize() - (1 if self.done else 0)

    async def next(self) -> str | Oversized | None:
        if self._list is not None:
            return self._list.pop(0) if self._list else None
        item = await self._queue.get()
        if item is None:
            self._queue.put_nowait(None)  # stays at the end for any later call
            if self.failure is not None:
                raise InputFailed(self.failure)
        return item


class InputFailed(Exception):
    """Reading the lines to send (stdin) failed: a read error, not the end of the input."""

    def __init__(self, error: OSError) -> None:
        super().__init__(error.strerror or str(error))
        self.error = error


async def _register_with_retry(client: ChatClient, nick: str, auto_nick: bool) -> str:
    if not auto_nick:
        return await client.register(nick)
    for n in range(1, 21):
        candidate = nick if n == 1 else suffixed_nick(nick, n)
        try:
            return await client.register(candidate)
        except NickRefusedError as exc:
            if exc.code != "name_taken":
                raise
    raise NickRefusedError(
        f"nickname {nick!r} and 19 suffixed variants are taken", code="name_taken"
    )


async def _await_room_joined(client: ChatClient, room: str) -> None:
    """Wait for the end of the join sequence (``RLIST`` of the room) or a refusal."""
    deadline = client.deadline()
    while True:
        frame = await client.read_frame(
            client.timeout, f"joining room {room!r}", deadline=deadline
        )
        if isinstance(frame, f.RoomUsers) and frame.room == room:
            return
        if isinstance(frame, f.Error) and frame.code in ("room_invalid", "not_in_room"):
            raise RequestRejectedError(f"cannot join {room!r} ({frame.code}): {frame.text}",
                                       code=frame.code)


async def _drain_while_idle(client: ChatClient) -> None:
    """Keep reading (and answering PINGs) while we wait for the next line or for a token."""
    while await client.recv() is not None:
        pass


async def _while_reading(client: ChatClient, work: asyncio.Future[object]) -> None:
    """Wait for ``work`` while reading the connection; ConnectionLostError if it ends first."""
    idle = asyncio.ensure_future(_drain_while_idle(client))
    try:
        waiting: set[asyncio.Future[object]] = {idle, work}  # type: ignore[arg-type]
        await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (idle, work):
            if not task.done():
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def _pace(
    client: ChatClient,
    pacer: Pacer,
    status: SendStatus,
    on_progress: Callable[[SendStatus], None] | None,
) -> None:
    """Wait until the server's flood limit lets the next line through."""
    loop = asyncio.get_running_loop()
    while (delay := pacer.delay(client.lines_sent, loop.time())) > 0:
        status.throttled = True
        if on_progress is not None:
            on_progress(status)
        nap = asyncio.ensure_future(asyncio.sleep(min(delay, PROGRESS_EVERY)))
        await _while_reading(client, nap)  # type: ignore[arg-type]
        if nap.cancelled():
            raise ConnectionLostError(
                f"{client.address} closed the connection ({status.delivered} delivered)"
            )


async def send_messages(
    address: Address,
    nick: str,
    messages: Iterable[str | Oversized],
    *,
    room: str = DEFAULT_ROOM,
    to: str | None = None,
    auto_nick: bool = False,
    timeout: float = 10.0,
    status: SendStatus | None = None,
    on_refused: Callable[[RefusedLine], None] | None = None,
    on_progress: Callable[[SendStatus], None] | None = None,
    trust: TrustPolicy | None = None,
) -> SendResult:
    """Connect, register, send each message and wait until the server relayed each one back.

    ``messages`` is a list, or any iterable of lines such as :func:`read_lines` of stdin:
    lines are sent as they arrive (``tail -f log | richchat send ... -``); blank lines are
    skipped, and a line over the message limit is refused (``on_refused``) while the others
    go on. A room message
    counts as delivered when its ``RMSG`` echo with our name arrives (the server relays to
    every member, sender included); a private message when its ``PRIV`` echo arrives. Lines
    are sent one at a time, each after the previous echo, paced to the server's flood limit
    when its ``HELLO`` gives one; from an older server, ``ERR|flood`` only warns that it is
    delaying them, so we keep waiting.

    ``trust``: TLS with trust on first use (:mod:`richchat.core.trust.connect`); without it,
    plain TCP.
    """
    try:
        target_room = f.JoinRoom(room=room).room
    except ValidationError as exc:
        raise UsageError(f"bad room {room!r}: {frame_error_text(exc)}") from None
    if to is not None and nick_problem(to):
        raise UsageError(f"bad user {to!r}: {nick_problem(to)}")
    if isinstance(messages, (list, tuple)):
        for text in messages:
            problem = _problem(text)
            if problem:
                raise UsageError(f"{problem}: {str(text)[:30]!r}...")
        if not any(isinstance(text, Oversized) or text.strip() for text in messages):
            # known before connecting: nobody sees us come and go for nothing
            raise UsageError(_NOTHING)
    if status is None:
        status = SendStatus(server=str(address), nick=nick, target="")
    status.target = f"@{to}" if to else target_room
    client = ChatClient(address.host, address.port, timeout=timeout, trust=trust)
    hello = await client.connect()
    if client.security.encrypted:
        status.tls, status.fingerprint = client.security.version, client.security.fingerprint
    loop = asyncio.get_running_loop()
    pacer = None
    if hello.flood_rate and hello.flood_burst:
        status.rate = hello.flood_rate
        pacer = Pacer(hello.flood_rate, hello.flood_burst, client.lines_sent, loop.time())
    try:
        me = await _register_with_retry(client, nick, auto_nick)
        status.nick = me
        if to is None and target_room != DEFAULT_ROOM:
            await client.join(target_room)
            await _await_room_joined(client, target_room)
        lines = _LineSource(messages)
        number = 0
        while True:
            line: asyncio.Future[str | Oversized | None] = asyncio.ensure_future(lines.next())
            try:
                await _while_reading(client, line)  # type: ignore[arg-type]
                if line.cancelled():
                    # the connection ended while we waited for input (a quiet
                    # `tail -f | send -`)
                    raise ConnectionLostError(
                        f"{address} closed the connection while we waited for the next line "
                        f"({status.delivered} delivered)"
                    )
                raw = line.result()
            except InputFailed as exc:
                raise FileAccessError(
                    f"cannot read stdin: {exc} ({status.delivered} delivered)",
                    hint="the lines read before the error were sent",
                ) from None
            if raw is None:
                break
            number += 1
            text = raw if isinstance(raw, Oversized) else raw.rstrip("\r\n")
            if isinstance(text, str) and not text.strip():
                continue
            problem = _problem(text)
            if problem or isinstance(text, Oversized):
                size = text.size if isinstance(text, Oversized) else message_size(text)
                refused = RefusedLine(line=number, size=size, reason=problem or "too long")
                status.refused.append(refused)
                if on_refused is not None:
                    on_refused(refused)
                continue
            status.waiting, status.input_done = lines.waiting + 1, lines.done
            if pacer is not None:
                await _pace(client, pacer, status, on_progress)
            # History and whatever else arrived so far predates this line (the idle reader
            # may not have run at all when lines come from a list).
            client.discard_received()
            status.unconfirmed = 1
            if to is not None:
                await client.private(to, text)
            else:
                await client.say(text, target_room)
            try:
                me = await _await_echo(client, me, target_room, to)
            except RequestRejectedError:
                # the server refused the line (nobody of that name is online, it could not
                # store it, ...): not delivered, and so not in doubt either
                status.unconfirmed = 0
                raise
            except ServerDegradedError as exc:
                status.unconfirmed = 0  # refused too: its node's Redis is away
                raise ServerDegradedError(
                    f"{address}: line {number} not sent: {exc.message} "
                    f"({status.delivered} delivered)", hint=DEGRADED_HINT,
                ) from None
            except (ConnectionLostError, TimeoutRichchatError) as exc:
                # as between lines and on Ctrl+C: what got through, and the line in flight
                # (it may have been delivered: the server did not say)
                raise type(exc)(
                    f"{exc.message} ({status.delivered} delivered, 1 more sent but not "
                    "confirmed)", hint=exc.hint,
                ) from None
            status.unconfirmed = 0
            status.delivered += 1
            status.waiting, status.input_done = lines.waiting, lines.done
            if status.throttled and on_progress is not None:
                on_progress(status)
        if not status.delivered and not status.refused:
            raise UsageError(_NOTHING)
        status.nick = me
        await client.quit()
        return status.result()
    finally:
        await client.close()


_NOTHING = "nothing to send: no non-blank lines"
DEGRADED_HINT = "its chat's Redis is away; try again shortly, or another node"


def _problem(text: str | Oversized) -> str | None:
    if isinstance(text, Oversized):
        return f"message too long ({text.size} bytes; at most {MAX_MESSAGE_BYTES})"
    return message_problem(text)


async def _await_echo(client: ChatClient, me: str, room: str, to: str | None) -> str:
    """Wait for the server's relay of our line; return our (possibly changed) name."""
    key = fold_name(me)
    deadline = client.deadline()  # other traffic must not extend the wait for our echo
    while True:
        frame = await client.read_frame(
            client.timeout, "the server to relay our message", deadline=deadline
        )
        if to is None and isinstance(frame, f.RoomMessage):
            if frame.room == room and fold_name(frame.name) == key:
                return me
        elif to is not None and isinstance(frame, f.Private):
            # Ours, and so the echo of the one line on its way: the server stamps the sender.
            # The recipient is named as online (``admin`` for ``--to аdmin``, a look-alike
            # spelling the server resolved), not necessarily as typed.
            if fold_name(frame.sender) == key:
                return me
        elif isinstance(frame, f.Error):
            if frame.code == "flood":
                continue  # the server delays our lines (never drops them): keep waiting
            if frame.code == "no_such_user":
                raise RequestRejectedError(f"no user named {to!r} is online", code=frame.code)
            if frame.code == "degraded":  # a node without its Redis: try again shortly
                raise ServerDegradedError(frame.text, hint=DEGRADED_HINT)
            raise RequestRejectedError(
                f"the server refused the message ({frame.code}): {frame.text}", code=frame.code
            )
        elif isinstance(frame, f.You):
            me, key = frame.name, fold_name(frame.name)


async def until_interrupted(work: Awaitable[T]) -> T:
    """Run ``work``; on Ctrl+C (SIGINT) cancel it, wait until it has ended (its connection
    closed) and raise :class:`Interrupted`.

    Cancelled until it really ends: ``asyncio.wait_for`` of Python < 3.12 swallows a
    cancellation that arrives as its inner await completes, and a send cancelled once at
    that moment would go on waiting for stdin. Where the loop cannot handle signals
    (Windows), Ctrl+C raises KeyboardInterrupt as usual.
    """
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(work)
    stop = asyncio.Event()
    try:
        loop.add_signal_handler(signal.SIGINT, stop.set)
    except (NotImplementedError, RuntimeError, ValueError):
        return await task
    stopper = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            return task.result()
        while not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=0.5)
        if not task.cancelled():
            task.exception()  # retrieved: what failed while it was cancelled does not matter
        raise Interrupted
    finally:
        stopper.cancel()
        loop.remove_signal_handler(signal.SIGINT)
