"""The chat UI's connection to the server: one :class:`ChatSession` per chat screen.

The session owns what lasts longer than one TCP connection: it connects (a
:class:`~richchat.core.client.ChatClient` per attempt), registers the nickname, reconnects with
exponential backoff and jitter when the connection ends, registers the same nickname again
(retrying after 1, 2 and 4 s if someone holds it meanwhile), rejoins the rooms we were in, and
drops history lines it already passed on (by message id). Given the other nodes of a cluster
(``alternates``: servers of one chat, found by discovery), it reconnects to the next node when
its node goes away or refuses the connection. It never imports Textual: it reports
what happens as small events to one listener (the app), and the app sends frames through it.

Sending never waits on the network (:meth:`ChatSession.send` queues the bytes), so the UI
stays live whatever the server does.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal, Union

from richchat.core.client import NICK_ERRORS, Address, ChatClient, backoff_delays
from richchat.core.errors import (
    BadFileError,
    ConnectionLostError,
    KeyMismatchError,
    NoTlsFromPinnedError,
    ProtocolError,
    RichchatError,
    UntrustedServerError,
)
from richchat.core.protocol import frames as f
from richchat.core.protocol.text import DEFAULT_ROOM, fold_name, nick_problem
from richchat.core.trust.connect import Security, TrustPolicy, UnknownServerKey

ConnectionState = Literal["connecting", "connected", "disconnected", "failed"]
#: times a nickname taken meanwhile is asked for again after a reconnect (after 1, 2, 4 s)
NICK_RETRIES = 3
#: the longest wait (seconds) before asking a degraded cluster node for our nickname again
DEGRADED_RETRY_CAP = 15
#: history lines remembered per room to drop them when they come again after a reconnect: the
#: most a server replays (``richchat server --history`` is at most 10,000)
SEEN_PER_ROOM = 10_000
#: the longest the receiving loop runs before it lets the UI have the event loop (seconds): a
#: server that floods us never freezes the keyboard for longer
YIELD_EVERY = 0.05
#: seconds without a line from the server after which the session asks it for one (``PING``):
#: a frozen server (``SIGSTOP``, a hung host) or a dead path keeps a TCP connection "open"
#: for ever, and the header said ``connected`` for ever
KEEPALIVE_IDLE = 30.0
#: our PING tokens (the server's own PINGs are answered by the client)
PING_PREFIX = "rc-alive-"


@dataclass(frozen=True)
class Status:
    """The connection as the header shows it."""

    state: ConnectionState = "connecting"
    detail: str = ""
    #: ``time.monotonic()`` of the next connection attempt, while waiting for it
    retry_at: float | None = None

    def describe(self, now: float) -> str:
        """The countdown to the next attempt, then the detail (first: a narrow header cuts
        the end): ``reconnecting in 2.1 s; connection refused by ...``."""
        if self.retry_at is None:
            return self.detail
        countdown = f"reconnecting in {max(0.0, self.retry_at - now):.1f} s"
        return f"{countdown}; {self.detail}" if self.detail else countdown


# --------------------------------------------------------------------------- events


@dataclass(frozen=True)
class StatusChanged:
    status: Status


@dataclass(frozen=True)
class Connected:
    """A new connection: HELLO exchanged, no nickname on it yet."""

    hello: f.Hello
    security: Security = field(default_factory=lambda: Security(encrypted=False))


TrustAnswer = Literal["remember", "once", "cancel"]


@dataclass(frozen=True)
class TrustNeeded:
    """First contact with a TLS server whose key is not pinned: ask the user, then call
    :meth:`ChatSession.answer_trust`. Nothing was sent; the connection is closed meanwhile
    (the server never waits on a person)."""

    question: UnknownServerKey


@dataclass(frozen=True)
class Disconnected:
    """The connection ended (a new attempt follows unless we are quitting)."""


@dataclass(frozen=True)
class FrameReceived:
    """A frame from the server, minus history lines already passed on."""

    frame: f.Frame


@dataclass(frozen=True)
class Note:
    """Something the session wants the user to read (a lost connection, a retry)."""

    text: str
    error: bool = False


@dataclass(frozen=True)
class NickNeeded:
    """No usable nickname: ask the user (``reason``: why the last one was refused)."""

    reason: str | None


@dataclass(frozen=True)
class Failed:
    """The session gave up (not a richchat server; or the first attempt failed with
    ``fail_fast``): :meth:`ChatSession.run` returns after this."""

    error: RichchatError


SessionEvent = Union[StatusChanged, Connected, Disconnected, FrameReceived, Note, NickNeeded,
                     TrustNeeded, Failed]
Listener = Callable[[SessionEvent], None]


# --------------------------------------------------------------------------- the session


class ChatSession:
    """Connect, register, reconnect, rejoin, de-duplicate; report to ``listener``."""

    def __init__(
        self,
        address: Address,
        nick: str | None,
        listener: Listener,
        *,
        timeout: float = 10.0,
        reconnect_base: float = 0.5,
        reconnect_cap: float = 15.0,
        fail_fast: bool = False,
        trust: TrustPolicy | None = None,
        alternates: Sequence[Address] = (),
    ) -> None:
        #: the node connected to (or tried next), and every node of the chat, this one first
        self.address = address
        #: TLS with trust on first use (None: plain TCP, for tests of plaintext servers)
        self.trust = trust
        self._trust_answer: asyncio.Future[TrustAnswer] | None = None
        self.addresses = [address, *(a for a in alternates if a != address)]
        self.wanted_nick = nick  # what we ask for (the user's choice)
        self.nick: str | None = None  # what the server last confirmed
        self.listener = listener
        self.timeout = timeout
        self.reconnect_base = reconnect_base
        self.reconnect_cap = reconnect_cap
        #: give up (``Failed``) if the very first connection attempt fails
        self.fail_fast = fail_fast
        self.status = Status()
        self.registered = False  # the server confirmed our nickname on this connection
        self.sessions = 0  # connections that got as far as a confirmed nickname
        self._client: ChatClient | None = None
        self._quitting = False
        self._attempt = 0
        self._delays = self._new_delays()
        self._rooms: dict[str, None] = {}  # rooms to rejoin (ordered), the lobby excluded
        #: room -> (id, ts) of the messages passed on (the newest SEEN_PER_ROOM, in order)
        self._seen: dict[str, dict[tuple[int, int], None]] = {}
        self._nick_retries = 0
        self._degraded_tries = 0
        self._nick_timer: asyncio.TimerHandle | None = None
        #: fires if the server answers a nickname neither with YOU nor with a refusal
        self._answer_timer: asyncio.TimerHandle | None = None
        self._closing: asyncio.Future[None] | None = None
        #: lines received on this connection; the liveness check compares it over time
        self._received = 0
        self._liveness: asyncio.TimerHandle | None = None
        self._pings = 0

    @property
    def connected(self) -> bool:
        return self._client is not None and self._client.connected

    @property
    def rooms(self) -> list[str]:
        """The rooms (besides the lobby) we are in, and rejoin after a reconnect."""
        return list(self._rooms)

    # ------------------------------------------------------------------ the loop

    async def run(self) -> None:
        """Connect and reconnect until :meth:`quit` (or until ``Failed``)."""
        while not self._quitting:
            self._attempt += 1
            self._set_status("connecting", f"attempt {self._attempt}" if self._attempt > 1 else "")
            client = ChatClient(self.address.host, self.address.port, timeout=self.timeout,
                                trust=self.trust)
            try:
                hello = await client.connect()
            except UnknownServerKey as question:
                if await self._ask_trust(question):
                    continue  # again, at once, with the answer in the policy
                return
            except (KeyMismatchError, UntrustedServerError, BadFileError) as exc:
                # no reconnection can fix these: the user must act
                self._set_status("failed", _failure_detail(exc))
                self._emit(Failed(exc))
                return
            except ProtocolError as exc:
                self._set_status("failed", "not a richchat server")
                self._emit(Failed(exc))
                return
            except RichchatError as exc:
                await client.close()
                if self._next_node() and self._attempt < len(self.addresses):
                    continue  # another node of the chat, at once
                if self.fail_fast and not self.sessions:
                    self._emit(Failed(exc))
                    return
                await self._wait(next(self._delays), exc.message)
                continue
            await self._serve(client, hello)
            if self._quitting:
                return
            delay = next(self._delays)
            if self._next_node():
                self._emit(Note(f"Connection lost; trying {self.address} (another node of "
                                f"this chat) in {delay:.1f} s", error=True))
            else:
                self._emit(Note(f"Connection lost; reconnecting in {delay:.1f} s", error=True))
            await self._wait(delay, "")

    async def _ask_trust(self, question: UnknownServerKey) -> bool:
        """Ask the user about a new key (:class:`TrustNeeded`); True to connect again."""
        assert self.trust is not None
        self._set_status("connecting", "new server key: trust it?")
        self._trust_answer = asyncio.get_running_loop().create_future()
        self._emit(TrustNeeded(question))
        try:
            answer = await self._trust_answer
        finally:
            self._trust_answer = None
        if self._quitting:
            return False  # the user left (Ctrl+C) while asked: not a refusal to report
        try:
            if answer == "remember":
                self.trust.remember(question.host, question.port, question.fingerprint)
                return True
            if answer == "once":
                self.trust.trust_once(question.host, question.port, question.fingerprint)
                return True
        except RichchatError as exc:  # the known-servers file cannot be written
            self._set_status("failed", _failure_detail(exc))
            self._emit(Failed(exc))
            return False
        refused = UntrustedServerError(
            f"you did not trust the key of {question.host}:{question.port} "
            f"({question.fingerprint}); nothing was sent",
        )
        self._set_status("failed", "server key not trusted")
        self._emit(Failed(refused))
        return False

    def answer_trust(self, answer: TrustAnswer) -> None:
        """The user's answer to :class:`TrustNeeded`."""
        if self._trust_answer is not None and not self._trust_answer.done():
            self._trust_answer.set_result(answer)

    def _next_node(self) -> bool:
        """Move on to the next node of the chat; False when there is no other."""
        if len(self.addresses) < 2:
            return False
        i = self.addresses.index(self.address) if self.address in self.addresses else -1
        self.address = self.addresses[(i + 1) % len(self.addresses)]
        return True

    async def _serve(self, client: ChatClient, hello: f.Hello) -> None:
        """One connection, from HELLO to its end."""
        self._client = client
        self.registered = False
        self._nick_retries = 0
        self._degraded_tries = 0
        self._emit(Connected(hello, client.security))
        self._set_status("connected", "choosing a nickname")
        self._register()
        loop = asyncio.get_running_loop()
        self._received = 0
        self._watch_idle()
        try:
            since = loop.time()
            while (frame := await client.recv()) is not None:
                self._received += 1
                if isinstance(frame, f.Pong) and frame.token.startswith(PING_PREFIX):
                    continue  # the answer to our liveness check, nothing to show
                self._on_frame(frame)
                if loop.time() - since > YIELD_EVERY:  # frames kept coming without a pause
                    await asyncio.sleep(0)
                    since = loop.time()
        finally:
            self._cancel_nick_timer()
            self._cancel_answer_timer()
            self._cancel_liveness()
            await client.close()
            self._client = None
            self.registered = False
            self._emit(Disconnected())

    def _new_delays(self) -> Iterator[float]:
        return backoff_delays(self.reconnect_base, self.reconnect_cap)

    async def _wait(self, delay: float, detail: str) -> None:
        """Wait ``delay`` seconds before the next attempt; the header counts them down."""
        self._set_status("disconnected", detail, retry_at=time.monotonic() + delay)
        await asyncio.sleep(delay)

    # ------------------------------------------------------------------ frames

    def _on_frame(self, frame: f.Frame) -> None:
        if isinstance(frame, f.You):
            self._cancel_answer_timer()
            self.nick = self.wanted_nick = frame.name
            if not self.registered:
                self._registered()
        elif isinstance(frame, (f.RoomMessage, f.Action)):
            seen = self._seen.setdefault(frame.room, {})
            # (id, ts): the same id with another timestamp is another server's message
            if (frame.id, frame.ts) in seen:
                return  # history we already passed on (after a reconnect)
            seen[frame.id, frame.ts] = None
            if len(seen) > SEEN_PER_ROOM:
                del seen[next(iter(seen))]
        elif isinstance(frame, f.UserJoined) and self._is_me(frame.user.name):
            if frame.room != DEFAULT_ROOM:
                self._rooms[frame.room] = None
        elif isinstance(frame, f.UserLeft) and self._is_me(frame.name):
            self._rooms.pop(frame.room, None)
            self._seen.pop(frame.room, None)  # a later /join shows its history again
        self._emit(FrameReceived(frame))
        if isinstance(frame, f.Error) and not self.registered:
            if frame.code in NICK_ERRORS:
                self._cancel_answer_timer()
                self._nick_refused(frame)
            elif frame.code == "degraded":
                self._cancel_answer_timer()
                self._degraded_retry()

    def _is_me(self, name: str) -> bool:
        return self.nick is not None and fold_name(name) == fold_name(self.nick)

    def _registered(self) -> None:
        """The first ``YOU`` on this connection: back to normal, rejoin our rooms."""
        self.registered = True
        self.sessions += 1
        self._attempt = 0
        self._delays = self._new_delays()
        for room in self._rooms:
            self._send_quietly(f.JoinRoom(room=room))
        self._set_status("connected", "")

    # ------------------------------------------------------------------ nickname

    def _register(self) -> None:
        nick = self.nick or self.wanted_nick
        problem = nick_problem(nick) if nick else None
        if nick and not problem:
            self._ask_for(nick)
        else:
            self._emit(NickNeeded(f"Nickname {nick!r} refused: {problem}" if problem else None))

    def _degraded_retry(self) -> None:
        """A node of a cluster without its Redis takes no nickname now: ask again later
        (1, 2, 4 ... 15 s), on this connection."""
        wanted = self.nick or self.wanted_nick
        if not wanted:
            return
        self._degraded_tries += 1
        delay = float(min(DEGRADED_RETRY_CAP, 2 ** (self._degraded_tries - 1)))
        self._emit(Note(f"The chat cannot take nicknames now; asking again in {delay:g} s"))
        self._cancel_nick_timer()
        loop = asyncio.get_running_loop()
        self._nick_timer = loop.call_later(delay, self._retry_nick, wanted)

    def _nick_refused(self, frame: f.Error) -> None:
        wanted = self.wanted_nick
        if (frame.code == "name_taken" and wanted and self.sessions
                and self._nick_retries < NICK_RETRIES):
            # Reconnecting: the server may not have noticed our old connection is gone.
            self._nick_retries += 1
            delay = float(2 ** (self._nick_retries - 1))
            self._emit(Note(f"{wanted} is still taken; trying again in {delay:g} s"))
            self._cancel_nick_timer()
            loop = asyncio.get_running_loop()
            self._nick_timer = loop.call_later(delay, self._retry_nick, wanted)
            return
        self._emit(NickNeeded(f"Nickname {wanted!r} refused: {frame.text}"))

    def _retry_nick(self, name: str) -> None:
        self._nick_timer = None
        if not self.registered:
            self._ask_for(name)

    def _cancel_nick_timer(self) -> None:
        if self._nick_timer is not None:
            self._nick_timer.cancel()
            self._nick_timer = None

    def decline_nick(self) -> None:
        """The user closed the nickname dialog without a name: connected, nameless until
        ``/nick NAME`` (the header says so, not "choosing a nickname")."""
        if self.connected and not self.registered:
            self._set_status("connected", "no nickname: /nick NAME")

    def choose_nick(self, name: str) -> None:
        """The user picked a nickname: ask for it now (or on the next connection)."""
        self.wanted_nick = name
        self._ask_for(name)

    def _ask_for(self, name: str) -> None:
        """Register ``name``; a server that answers neither YOU nor a refusal within the
        timeout is given up (said once), and the next connection tries again."""
        if not self.connected:
            return
        self._send_quietly(f.SetNick(name=name))
        self._cancel_answer_timer()
        self._answer_timer = asyncio.get_running_loop().call_later(self.timeout, self._no_answer)

    def _no_answer(self) -> None:
        self._answer_timer = None
        client = self._client
        if client is None or self.registered:
            return
        self._drop(client, f"{self.address} did not answer the nickname within "
                           f"{self.timeout:g} s; trying a new connection")

    def _drop(self, client: ChatClient, why: str) -> None:
        """Say ``why`` and close ``client``: the receiving loop ends and run() reconnects
        (the closing task is kept until it is done)."""
        self._emit(Note(why, error=True))
        self._closing = asyncio.ensure_future(client.close())

    def _cancel_answer_timer(self) -> None:
        if self._answer_timer is not None:
            self._answer_timer.cancel()
            self._answer_timer = None

    # ------------------------------------------------------------------ liveness

    def _watch_idle(self) -> None:
        """Every :data:`KEEPALIVE_IDLE` seconds of silence, ask the server for a line."""
        self._cancel_liveness()
        self._liveness = asyncio.get_running_loop().call_later(
            KEEPALIVE_IDLE, self._idle_check, self._received)

    def _idle_check(self, received: int) -> None:
        self._liveness = None
        if self._received != received:
            self._watch_idle()  # lines came meanwhile
        else:
            self._probe()

    def _expect_answer(self) -> None:
        """We sent something the server answers (an echo, at least a ``PONG``): if no line
        comes within half the timeout, ask with a ``PING``; none within the timeout, the
        connection is dead."""
        if self._liveness is not None and self._liveness.when() - asyncio.get_running_loop(
        ).time() <= self.timeout:
            return  # a check already runs, due sooner
        self._cancel_liveness()
        self._liveness = asyncio.get_running_loop().call_later(
            self.timeout / 2, self._half_check, self._received)

    def _half_check(self, received: int) -> None:
        self._liveness = None
        if self._received != received:
            self._watch_idle()
        else:
            self._probe(self.timeout / 2)

    def _probe(self, wait: float | None = None) -> None:
        """Send a ``PING``; no line at all within ``wait`` (the timeout) ends the connection."""
        client = self._client
        if client is None:
            return
        self._pings += 1
        with contextlib.suppress(RichchatError):
            client.send_nowait(f.Ping(token=f"{PING_PREFIX}{self._pings}"))
        self._liveness = asyncio.get_running_loop().call_later(
            self.timeout if wait is None else wait, self._dead_check, self._received)

    def _dead_check(self, received: int) -> None:
        self._liveness = None
        client = self._client
        if client is None:
            return
        if self._received != received:
            self._watch_idle()
            return
        self._drop(client, f"{self.address} sent nothing for {self.timeout:g} s (a frozen "
                           "server or a broken network); what you sent meanwhile may not have "
                           "arrived. Trying a new connection")

    def _cancel_liveness(self) -> None:
        if self._liveness is not None:
            self._liveness.cancel()
            self._liveness = None

    # ------------------------------------------------------------------ sending

    def send(self, frame: f.Frame) -> None:
        """Queue ``frame`` for the server without waiting.

        Raises :class:`RichchatError` when it cannot be sent (no connection, or the server
        stopped reading). A ``CMD_USER`` also becomes the nickname asked for on reconnect.
        """
        client = self._client
        if client is None or not client.connected:
            raise ConnectionLostError(f"not connected to {self.address}")
        client.send_nowait(frame)
        self._expect_answer()
        if isinstance(frame, f.SetNick):
            self.wanted_nick = frame.name

    @property
    def file_rate(self) -> int | None:
        """The server's speed limit per transfer (its ``HELLO``'s ``filerate=``), or None."""
        client = self._client
        hello = client.server_hello if client is not None else None
        return hello.file_rate if hello is not None else None

    async def open_stream(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """One more connection to the server, opened as the chat connection was (the same
        opener and security): a file transfer's (:mod:`richchat.core.transfer`)."""
        client = self._client
        if client is None or not client.connected:
            raise ConnectionLostError(f"not connected to {self.address}")
        return await client.open_stream()

    def _send_quietly(self, frame: f.Frame) -> None:
        with contextlib.suppress(RichchatError):
            self.send(frame)

    async def quit(self, reason: str = "bye") -> None:
        """Say goodbye (``CMD_QUIT``) and stop reconnecting."""
        self._quitting = True
        self.answer_trust("cancel")
        client = self._client
        if client is not None:
            try:
                await asyncio.wait_for(client.quit(reason), 1.0)
            except asyncio.TimeoutError:
                await client.close()

    # ------------------------------------------------------------------ reporting

    def _set_status(self, state: ConnectionState, detail: str,
                    retry_at: float | None = None) -> None:
        self.status = Status(state, detail, retry_at)
        self._emit(StatusChanged(self.status))

    def _emit(self, event: SessionEvent) -> None:
        self.listener(event)


def _failure_detail(exc: RichchatError) -> str:
    """Few words for the header; the full text goes to the chat or the terminal."""
    if isinstance(exc, NoTlsFromPinnedError):
        return "NO TLS (it had TLS before): not connected"
    if isinstance(exc, KeyMismatchError):
        return "SERVER KEY CHANGED: not connected"
    if isinstance(exc, UntrustedServerError):
        return "server key not trusted"
    if isinstance(exc, BadFileError):
        return "known-servers file unusable"
    return exc.message[:60]
