"""One client connection: an asyncio Protocol that reads lines, throttles floods, and queues
output without ever blocking the hub.

* Reading: bytes go through the sans-I/O :class:`LineDecoder` (max line length, any line
  ending, invalid UTF-8 replaced) and :func:`decode_client_line` (validated frames).
* Dialect: the first line decides. ``HELLO|`` means our own client, any other frame a
  seed-protocol client, anything else (or silence for ``raw_detect_delay``) a raw netcat user.
  A connection whose first bytes are ``XFER|`` is no chat connection at all but a file
  transfer: it is handed over, bytes and transport, to :mod:`.transfer` before any line is
  decoded (file bytes never meet the line decoder, the flood bucket or the output limit).
  A first line that is a RESP array header (``*2``: a Redis client, ``server --redis`` given
  this server's address) is answered with a RESP error and closed, before any dialect.
* Flood control: a token bucket per connection (``flood_rate`` lines/s, ``flood_burst``). When
  it runs dry the connection stops reading (TCP pushes back on the sender) until tokens refill:
  nothing is lost, the flooder is simply slowed down, and nobody else waits. The ``flood``
  notice goes out once per flood: again only once the bucket has been full again (the client
  paused), not each time a long paste runs it dry anew.
* Writing: the hub appends encoded bytes to ``out``; one flush per loop iteration writes them
  with a single write. A client whose unsent bytes exceed ``output_limit`` is disconnected
  with a reason; nobody else waits for it. On a plain TCP socket of the standard selector
  loop, a client whose transport has nothing buffered is written straight to its socket
  (``os.write`` on ``write_fd``): the bytes would go out the same way through
  ``transport.write``, minus its checks, which cost a fifth of a broadcast. The transport's
  flow-control callbacks (high-water mark 0) say when something is buffered; from then on
  everything goes through the transport, in order, until its buffer is empty again. Over TLS
  (a :class:`~richchat.core.server.tls_link.TlsLink` as the transport) the flush calls the
  link's ``send``, which encrypts and writes the same way, in one call (measured:
  docs/performance.md, TLS).
* Order on a cluster node: a connection's registration, joins, parts, topics, renames and
  messages go through Redis before this node applies them. A line that only publishes (a
  join, a part, a message: :meth:`Hub.publishes_only
  <richchat.core.server.hub.Hub.publishes_only>`) is handled at once, the log orders it after
  the earlier ones (but after a private message to another node's user, which goes through
  that node's inbox, not the log: it waits until Redis took it); a line answered from this
  node's view or at once (``CMD_WHO``, a refusal, a pong) first waits until the
  connection's own events are applied, input held meanwhile
  (:meth:`Connection._wait_for_own_events`), so its answer comes where one server gives it.
* The transport is whatever asyncio gives (TCP now, TLS later): nothing here assumes plain TCP.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections import deque
from collections.abc import Awaitable
from typing import TYPE_CHECKING, cast

from richchat.core.protocol import frames as f
from richchat.core.protocol.codec import (
    NOT_REDIS_REPLY,
    TLS_ALERT_PROTOCOL_VERSION,
    InvalidFrame,
    LineDecoder,
    LineTooLong,
    encode,
    is_resp_array_header,
    starts_tls_handshake,
)
from richchat.core.protocol.seed import strip_own_label
from richchat.core.protocol.text import DEFAULT_ROOM, sanitize_text
from richchat.core.protocol.transfer import TRANSFER_TAG
from richchat.core.server.dialect import Dialect
from richchat.core.server.dialects import ASKS_NAME, PARSERS, HelpCommand, ShowTopic, detect
from richchat.core.server.tls_link import TlsLink

if TYPE_CHECKING:
    from richchat.core.server.hub import Hub

log = logging.getLogger("richchat.server")

_PENDING, _SEED, _RAW = int(Dialect.PENDING), int(Dialect.SEED), int(Dialect.RAW)


class Connection(asyncio.Protocol):
    """A TCP (or TLS) client; implements :class:`richchat.core.server.peer.Peer`."""

    __slots__ = (
        "_backlog",
        "_close_reason",
        "_direct_fd",
        "_drain_handle",
        "_eof",
        "_flood_warned",
        "_held",
        "_mode_timer",
        "_refused",
        "_seen_line",
        "_tls",
        "_tokens",
        "_tokens_at",
        "closed",
        "connected_at",
        "current_room",
        "decoder",
        "dialect",
        "entry",
        "host",
        "hub",
        "last_seen",
        "local",
        "name",
        "offered_name",
        "out",
        "pinged",
        "port",
        "presence_seq",
        "rooms",
        "transport",
        "write_fd",
    )

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        cfg = hub.config
        self.decoder = LineDecoder(cfg.max_line)
        self.transport: asyncio.Transport | None = None
        self._tls: TlsLink | None = None  # the transport, when it is a TLS link (flush_out)
        self.dialect = _PENDING  # a Dialect value (see Peer.dialect)
        self.name: str | None = None
        self.offered_name: str | None = None  # the guest name a netcat user is offered
        self.entry = ""
        self.host = "?"
        self.port = 0
        self.local = ""
        self.presence_seq = 0  # the fan-out's presence count when this client entered the lobby
        #: rooms besides the lobby, as an ordered set (an empty dict is 64 bytes, a set 216)
        self.rooms: dict[str, None] = {}
        self.current_room = DEFAULT_ROOM
        self.out: list[bytes] = []
        self.closed = False
        #: the socket's fd while it may be written directly (nothing buffered), else -1
        self.write_fd = -1
        self._direct_fd = -1  # the fd direct writes use when they are possible at all
        self._tokens = float(cfg.flood_burst)
        self._tokens_at = time.monotonic()
        self._backlog: deque[str | LineTooLong] | None = None
        self._drain_handle: asyncio.TimerHandle | None = None
        self._flood_warned = False
        self._held = False  # input waits for a backend answer (see hold())
        self._mode_timer: asyncio.TimerHandle | None = None
        self.connected_at = self.last_seen = time.monotonic()
        self.pinged = False
        self._close_reason: str | None = None
        self._seen_line = False
        self._eof = False
        self._refused = False  # server full: refused at connection_made (_refuse_full)

    # ------------------------------------------------------------------ identity

    @property
    def peer(self) -> str:
        return f"{self.host}:{self.port}"

    # ------------------------------------------------------------------ asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it
        self.transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple):
            self.host, self.port = str(peer[0]), int(peer[1])
        local = transport.get_extra_info("sockname")
        if isinstance(local, tuple):
            host = str(local[0])
            self.local = f"[{host}]:{local[1]}" if ":" in host else f"{host}:{local[1]}"
        if isinstance(transport, TlsLink):
            self._tls = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            _tune_socket(sock)
            if _DIRECT_WRITES and isinstance(transport, _PLAIN_TCP):
                # pause_writing() as soon as anything is buffered, resume_writing() when empty
                self.transport.set_write_buffer_limits(high=0, low=0)
                self.write_fd = self._direct_fd = sock.fileno()
        if not self.hub.attach(self):
            self._refuse_full()
            return
        log.info("connect %s", self.peer)
        loop = asyncio.get_running_loop()
        self._mode_timer = loop.call_later(self.hub.config.raw_detect_delay, self._become_raw)

    def _refuse_full(self) -> None:
        """``ERR|server_full``, then our side of the connection shut (FIN); what the client
        sends meanwhile is read and dropped until it closes, or for :data:`REFUSE_LINGER` s.
        Closing at once with the client's first bytes unread (its HELLO, or the TLS attempt
        every ``richchat send`` makes first) sends a reset instead, and the client's system
        may then drop the refusal unread: ``join`` said "connection lost" (exit 11), not
        "full" (14). (An HTTP server's "lingering close".)"""
        transport = self.transport
        assert transport is not None
        self.closed = self._refused = True
        transport.write(encode(f.Error(code="server_full", text="the server is full, try later")))
        if transport.can_write_eof():
            transport.write_eof()
        asyncio.get_running_loop().call_later(REFUSE_LINGER, transport.close)

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        if self.dialect == _PENDING and not self._seen_line and not self.decoder.buffered:
            if starts_tls_handshake(data):
                self._refuse_tls()
                return
            if data.startswith(TRANSFER_TAG):
                self._hand_over(data)
                return
        self.last_seen = time.monotonic()
        self.pinged = False
        self._process(self.decoder.feed(data))

    def _refuse_tls(self) -> None:
        """A TLS client on this plaintext port: a TLS alert (it fails at once) and close.

        Said in the one ``disconnect`` line of the log: every ``richchat send`` to a
        plaintext server tries TLS first, and waits while the server writes its log lines
        (about 1.5 ms each through rich)."""
        assert self.transport is not None
        self.transport.write(TLS_ALERT_PROTOCOL_VERSION)
        self.close("TLS client on a plaintext port: refused (start the server with --tls "
                   "for encrypted chat)")

    def _refuse_redis(self) -> None:
        """A Redis client (``server --redis`` given this chat server's address): a RESP error
        it reads as such, and close. None of its command lines is read as a netcat user's
        nickname or chat line; nobody is told (it never registered)."""
        self.out.append(NOT_REDIS_REPLY)
        self.close("a Redis client (server --redis given this chat server's address?): "
                   "refused")

    def _hand_over(self, data: bytes) -> None:
        """A file transfer connection: not a chat client. It leaves the hub (it never was in
        any room or list) and the transfers take the transport and its first bytes."""
        assert self.transport is not None
        if self._mode_timer is not None:
            self._mode_timer.cancel()
            self._mode_timer = None
        self.closed = True
        self.write_fd = -1
        self.hub.release(self)
        files = self.hub.files
        if files is None:
            self.transport.write(b"XERR|no_files|this server does not take files\n")
            self.transport.close()
            return
        files.adopt(self.transport, data, self.peer)

    def eof_received(self) -> bool | None:
        # The peer half-closed (``printf ... | nc -N``, shutdown(SHUT_WR)) but may still read:
        # answer every line it sent, then close. Returning None here would close the transport
        # at once and drop the replies still queued for the next flush.
        if self._refused:  # nothing to answer: close now
            return None
        self._eof = True
        self._process(self.decoder.eof())
        if self._backlog is None:
            self._finish_eof()
        return True  # keep the transport open; _finish_eof closes it (now or after the backlog)

    def _finish_eof(self) -> None:
        if self.closed:
            return
        # on a cluster node its last lines may still be on their way through Redis: their
        # answers (its registration, the echo of its message) come back first
        pending = self.hub.backend.settled(self, messages=True)
        if pending is not None:
            asyncio.ensure_future(pending).add_done_callback(lambda _: self._finish_eof())
            return
        self.close("disconnected")

    def pause_writing(self) -> None:
        self.write_fd = -1  # bytes are buffered in the transport: later ones queue behind them

    def resume_writing(self) -> None:
        # the transport's buffer is empty again: direct writes keep the order from here on
        if not self.closed and self.transport is not None and not self.transport.is_closing():
            self.write_fd = self._direct_fd

    def connection_lost(self, exc: Exception | None) -> None:
        # What the others are told is words; the errno text goes to the server log only.
        if self._close_reason is not None:
            reason = self._close_reason
        elif exc is None:
            reason = "disconnected"
        elif isinstance(exc, TimeoutError):  # keepalive probes unanswered (ETIMEDOUT)
            reason = "timed out"
        else:
            reason = "connection lost"
        self.closed = True
        self.write_fd = -1
        for handle in (self._mode_timer, self._drain_handle):
            if handle is not None:
                handle.cancel()
        self.hub.detach(self, reason, str(exc) if exc is not None else "")

    # ------------------------------------------------------------------ input

    def _take_token(self) -> bool:
        rate = self.hub.config.flood_rate
        if rate <= 0:
            return True
        now = time.monotonic()
        burst = self.hub.config.flood_burst
        self._tokens = min(burst, self._tokens + (now - self._tokens_at) * rate)
        self._tokens_at = now
        if self._flood_warned and self._tokens >= burst:
            self._flood_warned = False  # it paused until the bucket refilled: the flood is over
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        return False

    def _process(self, items: list[str | LineTooLong]) -> None:
        if not items:
            return
        if self._backlog is not None:
            self._backlog.extend(items)
            return
        for i, item in enumerate(items):
            if self.closed:
                return
            if not self._take_token():
                self._backlog = deque(items[i:])
                self._start_throttle()
                return
            if not self._handle_line(item):  # it waits for this connection's own events
                self._backlog = deque(items[i:])
                return
            if self._held:  # the rest waits for the backend's answer
                self._backlog = deque(items[i + 1 :])
                return

    def _start_throttle(self) -> None:
        assert self.transport is not None
        self.transport.pause_reading()
        self._warn_flood()
        self._schedule_drain()

    def _warn_flood(self) -> None:
        """Say once per flood that lines are delayed: after the answers to the lines before
        (on a cluster node those may still be on their way through Redis: the warning waits
        for them, as a line answered at once does)."""
        if self._flood_warned:
            return
        self._flood_warned = True
        pending = self.hub.backend.settled(self, messages=True)
        if pending is None:
            self._say_flood()
        else:
            asyncio.ensure_future(pending).add_done_callback(lambda _: self._say_flood())

    def _say_flood(self) -> None:
        if self.closed:
            return
        cfg = self.hub.config
        self.hub.fail(
            self,
            "flood",
            f"slow down: at most {cfg.flood_rate:g} lines/s (burst {cfg.flood_burst}); "
            "your lines are delayed",
        )

    def _schedule_drain(self) -> None:
        rate = self.hub.config.flood_rate
        delay = max(0.01, (1 - self._tokens) / rate) if rate > 0 else 0.0
        self._drain_handle = asyncio.get_running_loop().call_later(delay, self._drain)

    def _drain(self) -> None:
        self._drain_handle = None
        backlog = self._backlog
        if backlog is None or self.closed or self._held:
            return
        # reading is paused meanwhile: its own lines being handled are its sign of life
        self.last_seen = time.monotonic()
        while backlog and not self.closed:
            if not self._take_token():
                self._warn_flood()  # (a flood may begin here: lines held meanwhile)
                self._schedule_drain()
                return
            item = backlog.popleft()
            if not self._handle_line(item):  # it waits for this connection's own events
                backlog.appendleft(item)
                return
            if self._held:
                return
        self._backlog = None
        if self._eof:
            self._finish_eof()
        elif self.transport is not None and not self.closed:
            self.transport.resume_reading()

    def _wait_for_own_events(self) -> bool:
        """True when the line at hand must wait: on a cluster node, a registration, join,
        part, topic, rename or message of this connection goes through Redis before it is
        applied here, and a line answered from this node's view or at once (``CMD_WHO``, a
        refusal, a pong, a quit: anything but :meth:`Hub.publishes_only
        <richchat.core.server.hub.Hub.publishes_only>`) must come after their answers and see
        them, as on one server. Input is then held until they are applied; the line is
        handled again then, its flood token given back. Lines that only publish never wait
        (the log orders them after the earlier ones by itself): a burst of joins goes to
        Redis at once, not one round trip each, and a sender of messages keeps its rate.
        """
        pending = self.hub.backend.settled(self, messages=True)
        if pending is None:
            return False
        self._tokens += 1  # taken again when the line is handled again
        self.hold(pending)
        return True

    def hold(self, pending: Awaitable[object]) -> None:
        """Handle no more input until ``pending`` (an awaitable the hub returned) is done."""
        future = asyncio.ensure_future(pending)
        self._held = True
        if self.transport is not None:
            self.transport.pause_reading()

        def release(_: object) -> None:
            self._held = False
            if self.closed:
                return
            if self._backlog is None:
                self._backlog = deque()
            self._drain_handle = asyncio.get_running_loop().call_later(0, self._drain)

        future.add_done_callback(release)

    def _become_raw(self) -> None:
        self._mode_timer = None
        if self.dialect == _PENDING and not self.closed:
            self._start(Dialect.RAW)

    def _start(self, dialect: Dialect) -> None:
        self.hub.start(self, dialect)
        if dialect in ASKS_NAME and self.name is None:
            self.hub.ask_name(self)

    def _handle_line(self, item: str | LineTooLong) -> bool:
        """Handle one line; False when it waits for this connection's own events first
        (:meth:`_wait_for_own_events`: input is held, the line is to be handled again)."""
        if (
            self.name is not None
            and type(item) is str
            and item.startswith("MSG|")
            and self.dialect != _RAW
        ):
            # Hot path: a registered protocol client's lobby message. Same result as the
            # dialect's parser (decode_client_line -> Say(text=sanitize_text(...))) -> hub.say,
            # minus the model.
            text = sanitize_text(item[4:])
            if self.dialect == _SEED:
                text = strip_own_label(text, self.name)
            hub = self.hub
            if (
                not hub.says_only(self, DEFAULT_ROOM, text)  # too long: refused, after the
                or hub.backend.unordered_in_flight(self)  # answers to its earlier lines; or
            ) and self._wait_for_own_events():  # after its private message to another node
                return False
            hub.say(self, DEFAULT_ROOM, text)
            return True
        if isinstance(item, LineTooLong):
            if self._wait_for_own_events():
                return False
            self.hub.fail(self, "line_too_long", f"line longer than {item.limit} bytes dropped")
            return True
        if not self._seen_line:
            self._seen_line = True
            if self._mode_timer is not None:
                self._mode_timer.cancel()
                self._mode_timer = None
            if is_resp_array_header(item):
                self._refuse_redis()
                return True
            # The first line decides the dialect, even after a raw welcome was sent.
            first = PARSERS[Dialect.HELLO](item, self)
            dialect = detect(first)
            if dialect != Dialect.RAW or self.dialect == Dialect.PENDING:
                if dialect != self.dialect:
                    self.offered_name = None  # a slow seed client is not at a name prompt
                self._start(dialect)
            if dialect == Dialect.HELLO:
                return True
        if self.dialect == Dialect.PENDING:
            return True
        if self.name is None and self.offered_name is not None:
            # (not registered yet: it has published nothing, nothing to wait for)
            pending = self.hub.answer_name(self, item)  # the answer to the name prompt
            if pending is not None:
                self.hold(pending)
            return True
        parsed = PARSERS[self.dialect](item, self)
        if parsed is None:
            return True
        backend = self.hub.backend
        if (
            backend.in_flight(self)
            and (
                not (isinstance(parsed, f.Frame) and self.hub.publishes_only(self, parsed))
                or backend.unordered_in_flight(self)
            )
            and self._wait_for_own_events()
        ):
            return False
        if isinstance(parsed, InvalidFrame):
            self.hub.fail(self, parsed.code, parsed.reason)
        elif isinstance(parsed, HelpCommand):
            self.hub.help(self)
        elif isinstance(parsed, ShowTopic):
            self.hub.show_topic(self, parsed.room)
        elif isinstance(parsed, f.RawText):
            self.hub.fail(self, "bad_frame", "not a protocol frame (see docs/protocol.md)")
        else:
            pending = self.hub.handle(self, parsed)
            if pending is not None:
                self.hold(pending)
        return True

    # ------------------------------------------------------------------ output

    def flush_out(self) -> None:
        """Write everything queued: to the socket itself while nothing is buffered, else (and
        for whatever the socket does not take) through the transport."""
        out = self.out
        if not out or self.transport is None:
            return
        data = out[0] if len(out) == 1 else b"".join(out)
        self.out = []
        if self.closed:
            return
        fd = self.write_fd
        if fd >= 0:
            try:
                n = os.write(fd, data)
            except (BlockingIOError, InterruptedError):
                n = 0
            except OSError:
                n = 0  # reset, broken pipe: the transport's own write meets it and closes
            if n == len(data):
                return
            data = data[n:]
        tls = self._tls
        if tls is not None:  # encrypt and write in one call; it says what stays buffered
            if tls.send(data) > self.hub.config.output_limit:
                self.abort("output buffer overflow (client too slow)")
            return
        self.transport.write(data)
        if self.transport.get_write_buffer_size() > self.hub.config.output_limit:
            self.abort("output buffer overflow (client too slow)")

    # ------------------------------------------------------------------ closing

    def close(self, reason: str) -> None:
        """Write what is queued (everything published so far included), then close."""
        if self.closed or self.transport is None:
            return
        self._close_reason = reason
        self.hub.flush()  # history on disk and every queued byte written, this client's too
        self.flush_out()
        self.closed = True
        self.write_fd = -1
        self.transport.close()

    def abort(self, reason: str) -> None:
        """Drop the connection now, discarding unsent output."""
        if self.transport is None:
            return
        self._close_reason = reason
        self.closed = True
        self.write_fd = -1
        self.out = []
        self.transport.abort()


#: seconds a refused connection (server full) is read and dropped before it is closed
REFUSE_LINGER = 1.0

#: direct socket writes: POSIX fds, the standard loop's plain TCP transport (not TLS, not
#: uvloop, not the Windows proactor), whose buffer-empty state the flow-control callbacks tell
_DIRECT_WRITES = os.name == "posix"
#: (a private class: if a Python version renames it, every write goes through the transport)
_PLAIN_TCP: type = getattr(asyncio.selector_events, "_SelectorSocketTransport", type(None))


def _tune_socket(sock: socket.socket) -> None:
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        if hasattr(socket, "TCP_KEEPIDLE"):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 60)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, 10)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 6)
    except OSError:  # not TCP (tests over socketpair, TLS wrappers): fine
        pass
