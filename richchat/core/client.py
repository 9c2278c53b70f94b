"""Async chat client used by ``richchat join``, ``richchat send`` and the tests.

:class:`ChatClient` owns one connection: it opens the transport, says ``HELLO``, registers
a nickname, sends frames and yields the decoded server frames (``async for frame in client``).
It answers ``PING`` with ``PONG`` by itself. The transport is TLS with trust on first use
when a :class:`~richchat.core.trust.connect.TrustPolicy` is given (``join``, ``send``, the
wizard: :attr:`ChatClient.security` then says what protects the connection), else plain TCP
through ``opener`` (tests, the benchmark).

This module must stay light: ``richchat send`` imports it, so no textual, scapy, nmap or
zeroconf here (a test checks it).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import random
import socket
import unicodedata
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass

from pydantic import ValidationError

from richchat import __version__
from richchat.core.constants import DEFAULT_PORT, welcome_server_name
from richchat.core.errors import (
    ConnectionLostError,
    ConnectionRefusedRichchatError,
    NickRefusedError,
    ProtocolError,
    RichchatError,
    ServerDegradedError,
    ServerFullError,
    TimeoutRichchatError,
    UnknownHostError,
    UsageError,
)
from richchat.core.protocol import PROTOCOL_VERSION, LineDecoder, decode_server_line, encode
from richchat.core.protocol import frames as f
from richchat.core.protocol.codec import MAX_SERVER_LINE_BYTES, LineTooLong
from richchat.core.protocol.text import DEFAULT_ROOM, fold_name, is_digits, nick_problem
from richchat.core.trust.connect import Security, TrustPolicy, open_trusted

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
    elif ":" in text:
        # more than one ':' without brackets: a bare IPv6 address (default port), which must
        # be one: "::1:5050" is not (a port needs brackets), and no host name has a ':'
        try:
            ipaddress.IPv6Address(text.split("%", 1)[0])
        except ValueError:
            raise UsageError(f"bad address {text!r}",
                             hint="an IPv6 address with a port looks like [::1]:5050") from None
    if not host:
        raise UsageError(f"bad address {text!r}: no host")
    if any(ch in "#/\\" or ch.isspace() or unicodedata.category(ch)[0] in "CZ"
           for ch in host):
        # no host name or address has these; written into known_servers, a space, a line
        # break or a '#' would break the file for every later command (or hide the pin)
        raise UsageError(f"bad address {text!r}: a host has no spaces, control characters, "
                         "'/', '\\' or '#'")
    if not port_text:
        return Address(host, default_port)
    # ASCII digits, a few: int() refuses some str.isdigit() digits ("²") and 4,300 of them
    if not is_digits(port_text, 9) or not 0 < int(port_text) < 65536:
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
    return line.startswith("*** ") and welcome_server_name(line) is not None


async def open_tcp(host: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """The transport without a trust policy: plain TCP."""
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
        trust: TrustPolicy | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self.agent = agent
        self._opener = opener
        self.trust = trust
        #: what protects the current connection (plaintext until connected over TLS)
        self.security = Security(encrypted=False)
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._decoder = LineDecoder(max_line=MAX_SERVER_LINE_BYTES)
        self._pending: deque[f.Frame] = deque()
        self._eof = False
        self.server_hello: f.Hello | None = None
        self.nick: str | None = None
        self.lobby_users: tuple[f.UserEntry, ...] = ()
        #: lines written on the current connection (the server's flood control counts them)
        self.lines_sent = 0

    # ------------------------------------------------------------------ connection

    @property
    def address(self) -> Address:
        return Address(self.host, self.port)

    @property
    def connected(self) -> bool:
        return self._writer is not None and not self._eof and not self._writer.is_closing()

    async def open_stream(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """Open one connection to the server the way :meth:`connect` does (the same opener or
        trust policy, so the same transport and its security), with errors as
        :class:`RichchatError`.

        The chat connection is one; file transfers (:mod:`richchat.core.transfer`) open their
        own through this method, so whatever protects the chat protects them too (a key the
        user trusted for this time only is in the policy, and is trusted here too)."""
        reader, writer, _security = await self._open()
        return reader, writer

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, Security]:
        try:
            if self.trust is not None:
                return await open_trusted(
                    self.host, self.port, self.trust, self.timeout, MAX_SERVER_LINE_BYTES + 1024
                )
            reader, writer = await asyncio.wait_for(
                self._opener(self.host, self.port), self.timeout
            )
            return reader, writer, Security(encrypted=False)
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

    async def connect(self) -> f.Hello:
        """Open the transport and exchange ``HELLO``; return the server's ``HELLO``."""
        self._reader, self._writer, self.security = await self._open()
        self._eof = False
        self._decoder = LineDecoder(max_line=MAX_SERVER_LINE_BYTES)
        self._pending.clear()
        self.lines_sent = 0
        self.server_hello = None
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
                if not frame.from_server:
                    # our own HELLO came back: an echo service (or a relay of some client)
                    raise ProtocolError(
                        f"{self.address} is not a richchat server: it answered with a "
                        "client's HELLO (an echo service?)"
                    )
                self.server_hello = frame
                return frame
            if isinstance(frame, f.Error):
                if frame.code == "server_full":
                    # "is full: the server is full, try later (try again later)" said it
                    # thrice: only what the server adds (out of file descriptors) is kept
                    why = frame.text.removeprefix("the server is full").removesuffix(
                        "try later").strip(" ,")
                    raise ServerFullError(f"{self.address} is full" + (f": {why}" if why else ""),
                                          hint="try again later")
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
        wanted = fold_name(nick)
        try:
            while True:
                frame = await self.read_frame(
                    self.timeout, "the nickname answer", deadline=deadline
                )
                # the answer names what we asked for (a YOU for another name, sent before
                # our CMD_USER arrived, answers nothing we asked: it is kept like the rest)
                if isinstance(frame, f.You) and fold_name(frame.name) == wanted:
                    self.nick = frame.name
                    return frame.name
                if isinstance(frame, f.Error) and frame.code in NICK_ERRORS | {"not_registered"}:
                    raise NickRefusedError(
                        f"nickname {nick!r} refused ({frame.code}): {frame.text}", code=frame.code
                    )
                if isinstance(frame, f.Error) and frame.code == "degraded":
                    raise ServerDegradedError(
                        f"{self.address} cannot take nicknames now: {frame.text}",
                        hint="its chat's Redis is away; try again shortly, or another node",
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
            self.lines_sent += 1
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
        self.lines_sent += 1

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

    async def share(self, target: str, size: int, sha256: str, name: str) -> None:
        """Offer a file to ``target`` (a room, or ``@user``): the server answers ``UPLOAD``,
        a ``FILE`` offer (it holds those bytes already) or ``ERR``."""
        await self.send(f.ShareFile(target=target, size=size, sha256=sha256, name=name))

    async def get(self, file_id: str) -> None:
        """Ask for file ``file_id``: answered ``DOWNLOAD`` or ``ERR``."""
        await self.send(f.GetFile(id=file_id))

    async def list_files(self, target: str) -> None:
        await self.send(f.ListFiles(target=target))

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
            if data:
                events = self._decoder.feed(data)
            else:
                self._eof = True
                events = self._decoder.eof()
                if self.server_hello is not None:
                    # A richchat server ends every line. An unterminated end is a line cut
                    # by the network (a proxy, a Wi-Fi drop): decoded, it would be a message
                    # cut short, shown, and then taken for the whole one when the history
                    # brings it again (same id and timestamp). Before the HELLO, it is kept:
                    # what a peer that is not richchat said tells what it is.
                    events = []
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
