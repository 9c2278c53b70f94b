"""Async chat client used by ``richchat join``, ``richchat send`` and the tests.

:class:`ChatClient` owns one connection: it opens the transport, says ``HELLO``, registers
a nickname, sends frames and yields the decoded server frames (``async for frame in client``).
It answers ``PING`` with ``PONG`` by itself. The transport is pluggable (``opener``), so TLS
can wrap the same streams later without touching the rest.

This module must stay light: ``richchat send`` imports it, so no textual, scapy, nmap or
zeroconf here (a test checks it).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import threading
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, ValidationError

from richchat import __version__
from richchat.core.errors import (
    ConnectionLostError,
    ConnectionRefusedRichchatError,
    NickRefusedError,
    ProtocolError,
    RichchatError,
    TimeoutRichchatError,
    UnknownHostError,
    UsageError,
)
from richchat.core.protocol import PROTOCOL_VERSION, LineDecoder, decode_server_line, encode
from richchat.core.protocol import frames as f
from richchat.core.protocol.codec import MAX_LINE_BYTES, MAX_SERVER_LINE_BYTES, LineTooLong
from richchat.core.protocol.text import DEFAULT_ROOM, fold_name, nick_problem

DEFAULT_PORT = 5050
AGENT = f"richchat/{__version__}"
#: ERR codes that mean "this nickname was not accepted".
NICK_ERRORS = frozenset({"name_taken", "name_invalid"})

Opener = Callable[[str, int], Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]


class RequestRejectedError(RichchatError):
    """The server refused a request with ``ERR|code|text`` (for example ``no_such_user``)."""

    def __init__(self, message: str, *, code: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.code = code


# --------------------------------------------------------------------------- addresses


@dataclass(frozen=True)
class Address:
    host: str
    port: int = DEFAULT_PORT

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def parse_address(text: str, default_port: int = DEFAULT_PORT) -> Address:
    """``HOST``, ``HOST:PORT``, ``[V6]``, ``[V6]:PORT`` or a bare IPv6 address."""
    text = text.strip()
    if not text:
        raise UsageError("empty server address")
    host, port_text = text, ""
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise UsageError(f"bad address {text!r}", hint="IPv6 looks like [::1]:5050")
        host, rest = text[1:end], text[end + 1 :]
        if rest:
            if not rest.startswith(":"):
                raise UsageError(f"bad address {text!r}", hint="IPv6 looks like [::1]:5050")
            port_text = rest[1:]
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    # more than one ':' without brackets: a bare IPv6 address, default port
    if not host:
        raise UsageError(f"bad address {text!r}: no host")
    if not port_text:
        return Address(host, default_port)
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise UsageError(f"bad port {port_text!r} in {text!r}", hint="a port is 1-65535")
    return Address(host, int(port_text))


# --------------------------------------------------------------------------- backoff


def backoff_delays(
    base: float = 0.5, cap: float = 30.0, factor: float = 2.0, rng: random.Random | None = None
) -> Iterator[float]:
    """Exponential backoff with full jitter: 0..base, 0..base*2, ... capped at ``cap``."""
    rnd = rng or random.Random()
    ceiling = base
    while True:
        yield ceiling / 2 + rnd.uniform(0, ceiling / 2)
        ceiling = min(cap, ceiling * factor)


def suffixed_nick(nick: str, n: int) -> str:
    """``alice`` -> ``alice_2``; trims the base so the result stays a valid length.

    The suffix is ASCII (digits and ``_`` go with any script, so ``Алиса_2`` is fine); the
    length counts the NFKC form the server checks. Whether the result is free, or looks like
    someone online, the server decides as for any other name.
    """
    import unicodedata

    from richchat.core.protocol.text import MAX_NICK_LEN

    suffix = f"_{n}"
    base = unicodedata.normalize("NFKC", nick)
    return base[: MAX_NICK_LEN - len(suffix)] + suffix


# --------------------------------------------------------------------------- the client


def _is_raw_welcome(line: str) -> bool:
    """The first line a richchat server sends a plain-text (netcat) client."""
    return line.startswith("*** Welcome to ") and "(richchat" in line


async def open_tcp(host: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """The default transport: plain TCP. (A TLS opener would pass ``ssl=`` here.)"""
    return await asyncio.open_connection(host, port, limit=MAX_SERVER_LINE_BYTES + 1024)


class ChatClient:
    """One connection to a richchat server.

    Typical use::

        client = ChatClient("127.0.0.1", 5050)
        await client.connect()
        await client.register("alice")
        await client.say("hello")
        async for frame in client:
            ...
        await client.close()
    """

    def __init__(
        self,
        host: str,
        port: int = DEFAULT_PORT,
        *,
        timeout: float = 10.0,
        agent: str = AGENT,
        opener: Opener = open_tcp,
    ) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self.agent = agent
        self._opener = opener
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._decoder = LineDecoder(max_line=MAX_SERVER_LINE_BYTES)
        self._pending: deque[f.Frame] = deque()
        self._eof = False
        self.server_hello: f.Hello | None = None
        self.nick: str | None = None
        self.lobby_users: tuple[f.UserEntry, ...] = ()

    # ------------------------------------------------------------------ connection

    @property
    def address(self) -> Address:
        return Address(self.host, self.port)

    @property
    def connected(self) -> bool:
        return self._writer is not None and not self._eof and not self._writer.is_closing()

    async def connect(self) -> f.Hello:
        """Open the transport and exchange ``HELLO``; return the server's ``HELLO``."""
        try:
            self._reader, self._writer = await asyncio.wait_for(
                self._opener(self.host, self.port), self.timeout
            )
        except asyncio.TimeoutError:
            raise TimeoutRichchatError(
                f"timed out connecting to {self.address} after {self.timeout:g} s"
            ) from None
        except socket.gaierror as exc:
            raise UnknownHostError(
                f"unknown host {self.host!r}: {exc.strerror or exc}"
            ) from None
        except ConnectionRefusedError:
            raise ConnectionRefusedRichchatError(
                f"connection refused by {self.address}", hint="is a richchat server running there?"
            ) from None
        except OSError as exc:
            raise ConnectionLostError(
                f"cannot connect to {self.address}: {exc.strerror or exc}"
            ) from None
        self._eof = False
        self._decoder = LineDecoder(max_line=MAX_SERVER_LINE_BYTES)
        self._pending.clear()
        try:
            return await self._exchange_hello()
        except BaseException:
            # not a richchat server, no answer, cancelled: do not leave the socket open
            writer, self._writer = self._writer, None
            self._eof = True
            if writer is not None:
                writer.close()
            raise

    async def _exchange_hello(self) -> f.Hello:
        await self.send(f.Hello(version=PROTOCOL_VERSION, agent=self.agent))
        took_us_for_raw = False
        deadline = self.deadline()
        while True:
            frame = await self.read_frame(self.timeout, "the server's HELLO", deadline=deadline)
            if isinstance(frame, f.Hello):
                self.server_hello = frame
                return frame
            if isinstance(frame, f.Error):
                raise ProtocolError(f"server refused the connection: {frame.code}: {frame.text}")
            if isinstance(frame, f.Ping):
                continue
            if took_us_for_raw or (isinstance(frame, f.Unknown) and _is_raw_welcome(frame.text)):
                # Our HELLO arrived after the server's raw-client delay (a busy machine): it
                # greeted us as a netcat user first, and answers the HELLO right after.
                took_us_for_raw = True
                continue
            # A server of an older protocol (or not richchat at all): not what we speak.
            raise ProtocolError(
                f"{self.address} does not speak the richchat protocol "
                f"(first line: {frame.line()[:60]!r})"
            )

    async def register(self, nick: str) -> str:
        """Register ``nick``; return the name the server confirmed (``YOU``).

        Frames that arrive meanwhile (history, user list, notices) are kept and come out of
        the iterator afterwards. A refusal raises :class:`NickRefusedError` with the server's
        code and text; the connection stays usable for another try.
        """
        problem = nick_problem(nick)
        if problem:
            raise NickRefusedError(f"nickname {nick!r} refused: {problem}", code="name_invalid")
        await self.send(f.SetNick(name=nick))
        held: list[f.Frame] = []
        deadline = self.deadline()
        try:
            while True:
                frame = await self.read_frame(
                    self.timeout, "the nickname answer", deadline=deadline
                )
                if isinstance(frame, f.You):
                    self.nick = frame.name
                    return frame.name
                if isinstance(frame, f.Error) and frame.code in NICK_ERRORS | {"not_registered"}:
                    raise NickRefusedError(
                        f"nickname {nick!r} refused ({frame.code}): {frame.text}", code=frame.code
                    )
                held.append(frame)
        finally:
            # back in front of anything read after them, in their original order
            self._pending.extendleft(reversed(held))

    async def close(self) -> None:
        writer, self._writer = self._writer, None
        self._eof = True
        if writer is None:
            return
        with contextlib.suppress(Exception):
            writer.close()
            await asyncio.wait_for(writer.wait_closed(), 1.0)

    async def quit(self, reason: str = "") -> None:
        """Say goodbye politely (``CMD_QUIT``) and close."""
        with contextlib.suppress(RichchatError, OSError):
            await self.send(f.Quit(reason=reason[:200]))
        await self.close()

    async def __aenter__(self) -> ChatClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ------------------------------------------------------------------ sending

    async def send(self, frame: f.Frame) -> None:
        writer = self._writer
        if writer is None or writer.is_closing():
            raise ConnectionLostError(f"not connected to {self.address}")
        try:
            writer.write(encode(frame))
            await asyncio.wait_for(writer.drain(), self.timeout)
        except asyncio.TimeoutError:
            raise TimeoutRichchatError(f"{self.address} stopped reading our data") from None
        except (ConnectionError, OSError) as exc:
            self._eof = True
            raise ConnectionLostError(f"connection to {self.address} lost: {exc}") from None

    def send_nowait(self, frame: f.Frame, max_buffer: int = 1024 * 1024) -> None:
        """Queue ``frame`` without waiting (for UIs that must never block on the network).

        Raises :class:`ConnectionLostError` if the connection is gone, or if more than
        ``max_buffer`` bytes are already waiting because the server stopped reading.
        """
        writer = self._writer
        if writer is None or writer.is_closing() or self._eof:
            raise ConnectionLostError(f"not connected to {self.address}")
        if writer.transport.get_write_buffer_size() > max_buffer:
            raise ConnectionLostError(f"{self.address} is not reading our data")
        writer.write(encode(frame))

    async def say(self, text: str, room: str = DEFAULT_ROOM) -> None:
        """A chat line for ``room`` (``MSG`` for the lobby, ``RMSG`` otherwise)."""
        if fold_name(room) == DEFAULT_ROOM:
            await self.send(f.Say(text=text))
        else:
            await self.send(f.SayRoom(room=room, text=text))

    async def set_nick(self, nick: str) -> None:
        """Ask for a rename; the answer (``YOU`` or ``ERR``) comes through the iterator."""
        await self.send(f.SetNick(name=nick))

    async def join(self, room: str) -> None:
        await self.send(f.JoinRoom(room=room))

    async def part(self, room: str) -> None:
        await self.send(f.PartRoom(room=room))

    async def topic(self, room: str, text: str) -> None:
        await self.send(f.SetTopic(room=room, text=text))

    async def me(self, room: str, text: str) -> None:
        await self.send(f.SendAction(room=room, text=text))

    async def who(self, room: str) -> None:
        await self.send(f.Who(room=room))

    async def rooms(self) -> None:
        await self.send(f.ListRooms())

    async def private(self, to: str, text: str) -> None:
        await self.send(f.SendPrivate(to=to, text=text))

    # ------------------------------------------------------------------ receiving

    def deadline(self) -> float:
        """When a step that starts now must be over (``timeout`` from now, loop time)."""
        return asyncio.get_running_loop().time() + self.timeout

    async def read_frame(
        self, timeout: float | None, waiting_for: str, *, deadline: float | None = None
    ) -> f.Frame:
        """The next frame within ``timeout`` (and before ``deadline``, the loop time a whole
        step must end by, however many other frames arrive); timeouts and end of stream
        become errors."""
        wait = timeout
        if deadline is not None:
            wait = max(0.0, deadline - asyncio.get_running_loop().time())
        try:
            frame = await asyncio.wait_for(self.recv(), wait)
        except asyncio.TimeoutError:
            raise TimeoutRichchatError(
                f"timed out after {timeout:g} s waiting for {waiting_for} from {self.address}"
            ) from None
        if frame is None:
            raise ConnectionLostError(
                f"{self.address} closed the connection while we waited for {waiting_for}"
            )
        return frame

    async def recv(self) -> f.Frame | None:
        """The next server frame, or None once the connection has ended.

        ``PING`` is answered with ``PONG`` here; lines too long for us are skipped.
        """
        while True:
            if self._pending:
                return self._pending.popleft()
            if self._eof or self._reader is None:
                return None
            try:
                data = await self._reader.read(65536)
            except (ConnectionError, OSError):
                data = b""
            events = self._decoder.feed(data) if data else self._decoder.eof()
            if not data:
                self._eof = True
            for event in events:
                if isinstance(event, LineTooLong):
                    continue
                frame = decode_server_line(event)
                if isinstance(frame, f.Ping):
                    # no await here: a cancelled recv() must never lose decoded frames
                    with contextlib.suppress(RichchatError):
                        self.send_nowait(f.Pong(token=frame.token))
                    continue
                if isinstance(frame, f.UserList):
                    self.lobby_users = frame.users
                elif isinstance(frame, f.You):
                    self.nick = frame.name
                self._pending.append(frame)

    def discard_received(self) -> int:
        """Drop the frames already received but not yet read; return how many.

        They all came before anything we send next, so none of them can answer it (for
        ``send``: a history line by our own nick is not the echo of the line we send now).
        """
        count = len(self._pending)
        self._pending.clear()
        return count

    async def __aiter__(self) -> AsyncIterator[f.Frame]:
        while (frame := await self.recv()) is not None:
            yield frame

    def name_in_use(self, nick: str) -> str | None:
        """The online name ``nick`` is the same as (equal, or looks alike: see
        :func:`name_key`) according to the last lobby ``ULIST`` (everyone is always in the
        lobby), or None."""
        from richchat.core.protocol.text import name_key

        key = name_key(nick)
        return next((u.name for u in self.lobby_users if name_key(u.name) == key), None)


def frame_error_text(exc: ValidationError) -> str:
    """A one-line reason from a frame validation error (e.g. a bad room name)."""
    err = exc.errors()[0]
    return str(err.get("msg", "invalid")).removeprefix("Value error, ")


# --------------------------------------------------------------------------- one-shot send


class SendResult(BaseModel):
    """What ``richchat send --json`` prints."""

    model_config = ConfigDict(frozen=True)

    server: str
    nick: str
    target: str  # a room name, or "@user" for a private message
    delivered: int


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


def _check_size(text: str, room: str) -> None:
    size = len(text.encode("utf-8"))
    if size + len(room) + 8 > MAX_LINE_BYTES:
        raise UsageError(
            f"message too long ({size} bytes): {text[:30]!r}...",
            hint=f"the server accepts lines up to {MAX_LINE_BYTES} bytes",
        )


async def _lines_from(source: Iterable[str]) -> AsyncIterator[str]:
    """Lines of ``source`` as they come. A list is used directly; anything else (stdin) is
    read by a daemon thread, so a slow pipe never blocks the event loop and a blocked read
    never keeps the process alive."""
    if isinstance(source, (list, tuple)):
        for item in source:
            yield item
        return
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[str | None] = asyncio.Queue()

    def pump() -> None:
        try:
            for item in source:
                loop.call_soon_threadsafe(queue.put_nowait, item)
        finally:
            loop.call_soon_threadsafe(queue.put_nowait, None)

    threading.Thread(target=pump, name="richchat-send-stdin", daemon=True).start()
    while (item := await queue.get()) is not None:
        yield item


async def _drain_while_idle(client: ChatClient) -> None:
    """Keep reading (and answering PINGs) while we wait for the next input line."""
    while await client.recv() is not None:
        pass


async def send_messages(
    address: Address,
    nick: str,
    messages: Iterable[str],
    *,
    room: str = DEFAULT_ROOM,
    to: str | None = None,
    auto_nick: bool = False,
    timeout: float = 10.0,
) -> SendResult:
    """Connect, register, send each message and wait until the server relayed each one back.

    ``messages`` is a list, or any iterable of lines such as ``sys.stdin``: lines are sent as
    they arrive (``tail -f log | richchat send ... -``); blank lines are skipped. A room message
    counts as delivered when its ``RMSG`` echo with our name arrives (the server relays to
    every member, sender included); a private message when its ``PRIV`` echo arrives. Lines
    are sent one at a time, each after the previous echo; ``ERR|flood`` only warns that the
    server is delaying them, so we keep waiting.
    """
    try:
        target_room = f.JoinRoom(room=room).room
    except ValidationError as exc:
        raise UsageError(f"bad room {room!r}: {frame_error_text(exc)}") from None
    if to is not None and nick_problem(to):
        raise UsageError(f"bad user {to!r}: {nick_problem(to)}")
    if isinstance(messages, (list, tuple)):
        for text in messages:
            _check_size(text, target_room)
    client = ChatClient(address.host, address.port, timeout=timeout)
    await client.connect()
    try:
        me = await _register_with_retry(client, nick, auto_nick)
        if to is None and target_room != DEFAULT_ROOM:
            await client.join(target_room)
            await _await_room_joined(client, target_room)
        delivered = 0
        lines = _lines_from(messages)
        while True:
            idle = asyncio.create_task(_drain_while_idle(client))
            line: asyncio.Future[str | None] = asyncio.ensure_future(anext(lines, None))
            try:
                waiting: set[asyncio.Future[object]] = {idle, line}  # type: ignore[arg-type]
                await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in (idle, line):
                    if not task.done():
                        task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            if line.cancelled():
                # the connection ended while we waited for input (a quiet `tail -f | send -`)
                raise ConnectionLostError(
                    f"{address} closed the connection while we waited for the next line "
                    f"({delivered} delivered)"
                )
            raw = line.result()
            if raw is None:
                break
            text = raw.rstrip("\r\n")
            if not text.strip():
                continue
            _check_size(text, target_room)
            # History and whatever else arrived so far predates this line (the idle reader
            # may not have run at all when lines come from a list).
            client.discard_received()
            if to is not None:
                await client.private(to, text)
            else:
                await client.say(text, target_room)
            await _await_echo(client, me, target_room, to)
            delivered += 1
        if not delivered:
            raise UsageError("nothing to send: no non-blank lines")
        await client.quit()
        return SendResult(server=str(address), nick=me, target=f"@{to}" if to else target_room,
                          delivered=delivered)
    finally:
        await client.close()


async def _await_echo(client: ChatClient, me: str, room: str, to: str | None) -> None:
    key = fold_name(me)
    deadline = client.deadline()  # other traffic must not extend the wait for our echo
    while True:
        frame = await client.read_frame(
            client.timeout, "the server to relay our message", deadline=deadline
        )
        if to is None and isinstance(frame, f.RoomMessage):
            if frame.room == room and fold_name(frame.name) == key:
                return
        elif to is not None and isinstance(frame, f.Private):
            if fold_name(frame.sender) == key and fold_name(frame.to) == fold_name(to):
                return
        elif isinstance(frame, f.Error):
            if frame.code == "flood":
                continue  # the server delays our lines (never drops them): keep waiting
            if frame.code == "no_such_user":
                raise RequestRejectedError(f"no user named {to!r} is online", code=frame.code)
            raise RequestRejectedError(
                f"the server refused the message ({frame.code}): {frame.text}", code=frame.code
            )
        elif isinstance(frame, f.You):
            me, key = frame.name, fold_name(frame.name)
