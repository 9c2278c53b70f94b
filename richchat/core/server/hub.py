"""The hub: names, rooms, presence, fan-out and history for one server process.

Connections call the hub with validated frames; the hub decides, stores, and queues bytes on
the members' connections. It never awaits: fan-out appends already-encoded bytes to each
recipient's outgoing list, and one flush per event-loop iteration first commits history
(so a relayed message is always on disk) and then writes each dirty connection once.

Every message is encoded once per wire dialect (HELLO clients, seed-protocol clients, raw
netcat clients), not once per recipient.

This is the embedded backend (in-process fan-out + SQLite). :class:`HubBackend` is the seam
through which a shared backend (Redis pub/sub + streams) can later serve several processes.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from richchat import __version__
from richchat.core.protocol import frames as f
from richchat.core.protocol.codec import encode
from richchat.core.protocol.frames import PROTOCOL_VERSION
from richchat.core.protocol.seed import strip_own_label
from richchat.core.protocol.slash import HELP_LINES, HelpRequest, SlashError, parse_slash
from richchat.core.protocol.text import (
    DEFAULT_ROOM,
    MAX_MESSAGE_BYTES,
    fold_name,
    name_key,
    nick_problem,
    script_problem,
    validate_nick,
)
from richchat.core.server.config import ServerConfig
from richchat.core.server.storage import HistoryStore, StoredMessage

if TYPE_CHECKING:
    from richchat.core.server.connection import Connection

log = logging.getLogger("richchat.server")

FEATURES = ("rooms", "priv", "incremental")
SERVER_AGENT = f"richchat-server/{__version__}"
#: a busy hub flushes (commits history, writes to sockets) at most once per this many seconds
FLUSH_INTERVAL = 0.005
#: a flush writes this many connections, then lets the event loop run before the next ones
FLUSH_CHUNK = 128
#: a text of at most this many characters is within MAX_MESSAGE_BYTES whatever it holds (a
#: character is at most 4 bytes in UTF-8): only longer ones are encoded to be measured
_SURELY_SHORT = MAX_MESSAGE_BYTES // 4


class Mode:
    PENDING = 0  # first line not seen yet
    HELLO = 1  # our own clients: rich frames, incremental user-list updates
    SEED = 2  # seed-protocol clients: MSG/SRV/ULIST only, lobby only
    RAW = 3  # netcat: human-readable lines, slash commands


_HELLO, _SEED, _RAW = Mode.HELLO, Mode.SEED, Mode.RAW


def now_ms() -> int:
    return int(time.time() * 1000)


class HubBackend(Protocol):
    """What connections need from a hub; a Redis-backed hub implements the same calls."""

    def attach(self, conn: Connection) -> bool: ...
    def detach(self, conn: Connection, reason: str, detail: str = "") -> None: ...
    def start_session(self, conn: Connection, mode: int) -> None: ...
    def handle(self, conn: Connection, frame: f.Frame) -> None: ...
    def mark_dirty(self, conn: Connection) -> None: ...
    def commit_history(self) -> None: ...


class Room:
    __slots__ = ("members", "name", "topic", "topic_setter")

    def __init__(self, name: str, topic: str = "", setter: str = "") -> None:
        self.name = name
        self.members: dict[Connection, None] = {}  # insertion-ordered set
        self.topic = topic
        self.topic_setter = setter


class LocalHub:
    def __init__(self, config: ServerConfig, store: HistoryStore) -> None:
        self.config = config
        self.store = store
        self.conns: set[Connection] = set()
        #: registered connections by name_key (the confusable skeleton): one holder per look
        self.names: dict[str, Connection] = {}
        topics = store.topics()
        self.rooms: dict[str, Room] = {
            DEFAULT_ROOM: Room(DEFAULT_ROOM, *_topic(topics, DEFAULT_ROOM))
        }
        self._topics = topics
        self._dirty: list[Connection] = []
        #: the pass being written (connections dirty when it began) and how far it got
        self._pass: list[Connection] = []
        self._pass_pos = 0
        self._flush_handle: asyncio.Handle | None = None
        self._ulist_handle: asyncio.TimerHandle | None = None
        self._ulist_cache: bytes | None = None
        #: ULIST entries of registered users, in registration order (kept, not recomputed)
        self._entries: dict[Connection, str] = {}
        #: presence changes not yet queued to lobby members: (hello, seed, raw) bytes
        self._pending: list[tuple[bytes, bytes, bytes]] = []
        self._presence_seq = 0  # presence changes issued so far
        #: connections per dialect (index: Mode value), to encode only the dialects in use
        self._mode_counts = [0, 0, 0, 0]
        self._loop = asyncio.get_running_loop()
        self._last_flush = 0.0
        self.flushes = 0  # flushes so far: the server's activity counter
        #: the TLS key's fingerprint when the chat port speaks TLS (set by the server)
        self.tls_fingerprint: str | None = None

    # ------------------------------------------------------------------ bookkeeping

    @property
    def lobby(self) -> Room:
        return self.rooms[DEFAULT_ROOM]

    @property
    def users_online(self) -> int:
        return len(self.names)

    def attach(self, conn: Connection) -> bool:
        if len(self.conns) >= self.config.max_clients:
            return False
        self.conns.add(conn)
        self._mode_counts[conn.mode] += 1
        return True

    def mark_dirty(self, conn: Connection) -> None:
        self._dirty.append(conn)
        if self._flush_handle is None:
            self._schedule_flush()

    def _schedule_flush(self) -> None:
        """Flush on the next loop iteration, but at most once per FLUSH_INTERVAL.

        An idle server flushes at once; a busy one coalesces everything that arrives
        within FLUSH_INTERVAL into one SQLite commit and one write per client, so the
        cost of a commit and of a send() is shared by many messages.
        """
        loop = self._loop
        due = self._last_flush + FLUSH_INTERVAL
        if loop.time() >= due:
            self._flush_handle = loop.call_soon(self._flush_step)
        else:
            self._flush_handle = loop.call_at(due, self._flush_step)

    def flush(self) -> None:
        """Commit history, then write every dirty connection once, all of them now."""
        self._write_pass(None)

    def _flush_step(self) -> None:
        self._write_pass(FLUSH_CHUNK)

    def _write_pass(self, limit: int | None) -> None:
        """Write the dirty connections, ``limit`` of them (None: all) before returning.

        A pass over many clients (a broadcast to 1,000 sockets takes ~10 ms) is written in
        chunks with an event-loop iteration between them, so the loop keeps reading while it
        goes on. What arrives meanwhile is appended to the recipients' queues: those the pass
        has not reached yet get it in the same write as what the pass began with, the others
        are dirty again and get it in the next pass. A message that comes during a broadcast
        thus waits for at most the rest of one pass, not for all of it and then its own, and
        a busy hub puts several messages into each write. History is committed before each
        chunk, so no client ever sees a message that is not on disk.
        """
        self._settle()
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        self.commit_history()
        batch, pos = self._pass, self._pass_pos
        while True:
            if pos >= len(batch):
                if not self._dirty:
                    break
                batch, self._dirty = self._dirty, []
                pos = 0
                self._pass = batch
                self._last_flush = self._loop.time()
                self.flushes += 1
            end = len(batch) if limit is None else min(len(batch), pos + limit)
            self._pass_pos = end
            for i in range(pos, end):
                batch[i].flush_out()
            pos = end
            if limit is not None:
                break
        if pos < len(batch):
            self._flush_handle = self._loop.call_soon(self._flush_step)
            return
        self._pass, self._pass_pos = [], 0
        if self._dirty and self._flush_handle is None:
            self._schedule_flush()

    def commit_history(self) -> None:
        """Write queued history rows; called before any queued bytes reach a socket."""
        try:
            self.store.flush()
        except Exception:  # disk full, locked: keep chatting, say so in the log
            log.exception("could not write history")

    # ------------------------------------------------------------------ output helpers

    def _fanout(
        self,
        conns: Iterable[Connection],
        hello: bytes | None = None,
        seed: bytes | None = None,
        raw: bytes | None = None,
        skip: Connection | None = None,
    ) -> None:
        """Queue the bytes of each recipient's dialect (None: that dialect gets nothing).

        This is the hot path of every broadcast: Connection.queue is inlined.
        """
        dirty = self._dirty
        was_clean = not dirty
        by_mode = (None, hello, seed, raw)  # indexed by Mode (PENDING gets nothing)
        for c in conns:
            data = by_mode[c.mode]
            if data is None or c.closed or c is skip:
                continue
            out = c.out
            if not out:
                dirty.append(c)
            out.append(data)
        if was_clean and dirty and self._flush_handle is None:
            self._schedule_flush()

    def notice_all(self, text: str, conns: Iterable[Connection] | None = None) -> None:
        """A notice to everyone (or ``conns``): ``SRV|text`` or ``*** text``."""
        self._settle()
        self._fanout(
            self.conns if conns is None else conns,
            hello=encode(f.Notice(text=text)),
            seed=encode(f.Notice(text=text)),
            raw=_raw(f"*** {text}"),
        )

    def _presence(self, hello: bytes, text: str) -> None:
        """A lobby presence change (register, rename, leave): JOIN/PART/NICK + ``SRV|text``.

        Presence changes are batched: a burst of N registrations walks the lobby once per
        flush, not N times (registering N clients was O(N^2) queue operations). The batch
        is settled (queued to every lobby member, each getting only the changes made since
        it entered the lobby) before anything else reaches a client: any other frame
        handled, message relayed, flush, so nobody ever sees a user act before its JOIN.
        """
        notice = f"SRV|{text}\n".encode()
        self._pending.append((hello + notice, notice, _raw(f"*** {text}")))
        self._presence_seq += 1
        if self._flush_handle is None:
            self._schedule_flush()

    def _settle(self) -> None:
        """Queue the pending presence changes to the lobby members (one walk)."""
        pending = self._pending
        if not pending:
            return
        self._pending = []
        count = len(pending)
        base = self._presence_seq - count  # sequence number of pending[0]
        blobs: tuple[bytes | None, ...] = (
            None,
            b"".join(p[0] for p in pending),
            b"".join(p[1] for p in pending),
            b"".join(p[2] for p in pending),
        )
        dirty = self._dirty
        was_clean = not dirty
        for c in self.lobby.members:
            mode = c.mode
            if mode == Mode.PENDING or c.closed:
                continue
            skip = c.presence_seq - base
            if skip <= 0:
                data = blobs[mode]
            elif skip < count:  # entered the lobby during this batch
                data = b"".join(p[mode - 1] for p in pending[skip:])
            else:
                continue
            out = c.out
            if not out:
                dirty.append(c)
            out.append(data)  # type: ignore[arg-type]
        if was_clean and dirty and self._flush_handle is None:
            self._schedule_flush()

    def _registered(self, room: Room) -> list[Connection]:
        return [c for c in room.members if c.name]

    def _ulist_bytes(self) -> bytes:
        if self._ulist_cache is None:
            entries = ",".join(self._entries.values())
            self._ulist_cache = f"ULIST|{entries}\n".encode()
        return self._ulist_cache

    def _users_changed(self) -> None:
        """Lobby membership changed: seed clients get one coalesced ULIST after a short delay."""
        self._ulist_cache = None
        if self._ulist_handle is None:
            self._ulist_handle = self._loop.call_later(self.config.ulist_delay, self._send_ulist)

    def _send_ulist(self) -> None:
        self._ulist_handle = None
        self._settle()
        data = self._ulist_bytes()
        for c in self.lobby.members:  # registered users only
            if c.mode == Mode.SEED:
                c.queue(data)

    def _rlist(self, room: Room) -> f.RoomUsers:
        return f.RoomUsers.model_construct(
            room=room.name, users=tuple(c.user_entry() for c in self._registered(room))
        )

    # ------------------------------------------------------------------ sessions

    def start_session(self, conn: Connection, mode: int) -> None:
        """The client's dialect is known: send the welcome, and nothing of any room.

        A connection joins the lobby, appears in user lists, is announced and gets history
        and room traffic only once it registers a nickname (:meth:`set_nick`): a port
        scanner, a health check or ``nc -z`` is never shown to anyone. A hello client also
        gets the lobby's user list now (what ``CMD_WHO|lobby`` tells anyone), so that it can
        check that a nickname is free before taking it; a netcat user is asked for a name.
        """
        self._mode_counts[conn.mode] -= 1
        self._mode_counts[mode] += 1
        conn.mode = mode
        if mode == Mode.HELLO:
            conn.send(
                f.Hello(
                    version=PROTOCOL_VERSION,
                    agent=SERVER_AGENT,
                    role="server",
                    name=self.config.name,
                    users=self.users_online,
                    tls=self.tls_fingerprint is not None,
                    fingerprint=self.tls_fingerprint,
                    features=FEATURES,
                    flood_rate=self.config.flood_rate,
                    flood_burst=self.config.flood_burst,
                )
            )
        welcome = (
            f"Welcome to {self.config.name} (richchat {__version__}, protocol {PROTOCOL_VERSION})"
        )
        if mode == Mode.RAW:
            conn.queue_text(f"*** {welcome}. {self.users_online} user(s) online.")
            self.ask_nick(conn)
            return
        conn.send(f.Notice(text=welcome))
        if mode == Mode.HELLO:
            conn.queue(self._ulist_bytes())

    def _enter_lobby(self, conn: Connection) -> None:
        """A client registering now: into the lobby, with its history and its users."""
        self.lobby.members[conn] = None
        conn.presence_seq = self._presence_seq  # earlier changes are in its user list already
        self._send_history(conn, self.lobby)
        if conn.mode == Mode.RAW:
            names = ", ".join(c.name for c in self.lobby.members if c.name) or "nobody yet"
            conn.queue_text(f"*** Users online: {names}")
            if self.lobby.topic:
                conn.queue_text(f"*** Topic: {self.lobby.topic}")
            return
        conn.queue(self._ulist_bytes())
        if conn.mode == Mode.HELLO and self.lobby.topic:
            conn.send(
                f.Topic(room=DEFAULT_ROOM, setter=self.lobby.topic_setter, text=self.lobby.topic)
            )

    # ------------------------------------------------------------------ the nickname prompt

    def ask_nick(self, conn: Connection) -> None:
        """Ask a netcat user for a nickname, offering a guest name for an empty answer."""
        offered = conn.offered_name
        if offered is None or name_key(offered) in self.names:
            offered = conn.offered_name = self._guest_name()
        conn.queue_text(f"*** Type a nickname, or press Enter to be {offered}:")

    def answer_nick(self, conn: Connection, text: str) -> None:
        """A netcat user's line while it has no nickname: the answer to :meth:`ask_nick`.

        An empty line takes the offered guest name; ``/nick NAME`` works like ``NAME``;
        ``/help`` and ``/quit`` work as always; anything refused says why and asks again.
        """
        text = text.strip()
        name: str | None = text
        if text.startswith("/"):
            cmd = parse_slash(text)
            name = None
            if isinstance(cmd, f.Quit):
                conn.close(f"quit: {cmd.reason}" if cmd.reason else "quit")
                return
            if isinstance(cmd, HelpRequest):
                self.help(conn)
            elif isinstance(cmd, f.SetNick):
                name = cmd.name
            elif isinstance(cmd, SlashError) and text[1:].split(" ", 1)[0].lower() == "nick":
                conn.error(cmd.code, cmd.text)
            else:
                conn.error("not_registered", "choose a nickname first")
        elif not text:
            name = conn.offered_name
            if name is None or name_key(name) in self.names:
                name = self._guest_name()
        elif problem := nick_problem(text):
            conn.error("name_invalid", problem)
            name = None
        if name is not None:
            self.set_nick(conn, validate_nick(name))
        if conn.name is None and not conn.closed:
            self.ask_nick(conn)

    def _send_history(self, conn: Connection, room: Room) -> None:
        limit = self.config.history
        if limit <= 0:
            return
        try:
            messages = self.store.recent(room.name, limit)
        except Exception:  # a damaged or locked file: the client still joins, without history
            log.exception("could not read the history of #%s", room.name)
            return
        for m in messages:
            conn.queue(self._encode_message(m, conn.mode, history=True))

    def _encode_message(self, m: StoredMessage, mode: int, history: bool = False) -> bytes:
        # Same bytes as encode(RoomMessage/Action/ChatMessage/Notice(...)), without building
        # pydantic models on the hot path: every field was validated when it came in.
        if mode == Mode.HELLO:
            tag = "ACTION" if m.kind == "action" else "RMSG"
            return f"{tag}|{m.room}|{m.id}|{m.ts}|{m.name}|{m.text}\n".encode()
        prefix = "" if m.room == DEFAULT_ROOM else f"[{m.room}] "
        if mode == Mode.SEED:
            if m.kind == "action":
                return f"SRV|* {m.name} {m.text}\n".encode()
            return f"MSG|{m.name}: {m.text}\n".encode()
        stamp = datetime.fromtimestamp(m.ts / 1000).strftime("[%H:%M] ") if history else ""
        if m.kind == "action":
            return _raw(f"{stamp}{prefix}* {m.name} {m.text}")
        return _raw(f"{stamp}{prefix}{m.name}: {m.text}")

    def _guest_name(self) -> str:
        while True:
            name = f"guest-{random.randint(1000, 9999)}"
            if name_key(name) not in self.names:
                return name

    def detach(self, conn: Connection, reason: str, detail: str = "") -> None:
        """``conn`` is gone. ``reason`` (words) is shown to the others, ``detail`` (an errno
        text, say) only goes to the server log."""
        if conn not in self.conns:
            return
        self.conns.discard(conn)
        self._mode_counts[conn.mode] -= 1
        name = conn.name
        if conn.rooms:
            self._settle()  # room PARTs below must not overtake pending lobby changes
        for room_name in list(conn.rooms):
            room = self.rooms.get(room_name)
            if room is None:
                continue
            room.members.pop(conn, None)
            if name and room.name != DEFAULT_ROOM:
                self._fanout(
                    room.members,
                    hello=encode(
                        f.UserLeft.model_construct(room=room.name, name=name, reason=reason)
                    ),
                    raw=_raw(f"*** {name} left #{room.name} ({reason})"),
                )
            self._maybe_drop_room(room)
        self.lobby.members.pop(conn, None)
        if name:
            self.names.pop(name_key(name), None)
            self._entries.pop(conn, None)
            self._presence(
                encode(f.UserLeft.model_construct(room=DEFAULT_ROOM, name=name, reason=reason)),
                f"{name} left ({reason})",
            )
            self._users_changed()
        log.info(
            "disconnect %s %s: %s%s",
            conn.peer,
            name or "(unregistered)",
            reason,
            f" ({detail})" if detail else "",
        )

    def _maybe_drop_room(self, room: Room) -> None:
        if room.name != DEFAULT_ROOM and not room.members:
            del self.rooms[room.name]

    # ------------------------------------------------------------------ names

    def _register(self, conn: Connection, name: str) -> None:
        conn.name = name
        conn.entry = conn.user_entry().render()
        self.names[name_key(name)] = conn
        self._entries[conn] = conn.entry
        if conn.mode == Mode.HELLO:
            conn.send(f.You(name=name))
        self._presence(f"JOIN|{DEFAULT_ROOM}|{conn.entry}\n".encode(), f"{name} joined")
        self._users_changed()
        log.info("register %s as %s", conn.peer, name)

    def name_refusal(self, conn: Connection, name: str) -> tuple[str, str] | None:
        """Why ``conn`` may not take ``name`` (error code, text), or None: the one policy
        hook every claimed nickname passes (registration, rename, any dialect)."""
        holder = self.names.get(name_key(name))
        if holder is not None and holder is not conn:
            assert holder.name is not None
            if fold_name(holder.name) == fold_name(name):
                as_ = "" if holder.name == name else f" (as {holder.name})"
                return "name_taken", f"the nickname {name} is already in use{as_}"
            return "name_taken", (
                f"the nickname {name} looks like {holder.name}, who is online "
                "(names that look alike are the same name)"
            )
        problem = script_problem(name)
        if problem:
            return "name_invalid", problem
        return None

    def set_nick(self, conn: Connection, name: str) -> None:
        refusal = self.name_refusal(conn, name)
        if refusal is not None:
            conn.error(*refusal)
            return
        key = name_key(name)
        old = conn.name
        if old is None:
            self._enter_lobby(conn)
            self._register(conn, name)
            if conn.mode == Mode.RAW:
                conn.queue_text(
                    f"*** You are {name}. Type /nick NAME to change it, /help for commands."
                )
            return
        if old == name:
            if conn.mode == Mode.HELLO:
                conn.send(f.You(name=name))
            return
        self.names.pop(name_key(old), None)
        self.names[key] = conn
        conn.name = name
        conn.entry = conn.user_entry().render()
        if conn.mode == Mode.HELLO:
            conn.send(f.You(name=name))
        self._entries[conn] = conn.entry
        self._presence(
            encode(f.NickChanged.model_construct(old=old, new=name)),
            f"{old} is now known as {name}",
        )
        self._users_changed()
        log.info("rename %s -> %s", old, name)

    # ------------------------------------------------------------------ frames

    def handle(self, conn: Connection, frame: f.Frame) -> None:
        if self._pending and not (isinstance(frame, f.SetNick) and conn.name is None):
            self._settle()
        if isinstance(frame, f.SetNick):
            self.set_nick(conn, frame.name)
            return
        if isinstance(frame, f.Ping):
            conn.send(f.Pong(token=frame.token))
            return
        if isinstance(frame, (f.Pong, f.Hello)):
            return
        if isinstance(frame, f.Quit):
            conn.close(f"quit: {frame.reason}" if frame.reason else "quit")
            return
        if isinstance(frame, f.ListRooms):
            self.list_rooms(conn)
            return
        if isinstance(frame, f.Who):
            self.who(conn, frame.room)
            return
        if conn.name is None:
            conn.error("not_registered", "choose a nickname first (CMD_USER|name)")
            return
        if isinstance(frame, f.Say):
            text = frame.text
            if conn.mode == Mode.SEED:
                text = strip_own_label(text, conn.name)
            self.say(conn, DEFAULT_ROOM, text)
        elif isinstance(frame, f.SayRoom):
            self.say(conn, frame.room, frame.text)
        elif isinstance(frame, f.SendAction):
            self.say(conn, frame.room, frame.text, kind="action")
        elif isinstance(frame, f.JoinRoom):
            self.join(conn, frame.room)
        elif isinstance(frame, f.PartRoom):
            self.part(conn, frame.room)
        elif isinstance(frame, f.SetTopic):
            self.set_topic(conn, frame.room, frame.text)
        elif isinstance(frame, f.SendPrivate):
            self.private(conn, frame.to, frame.text)
        else:
            conn.error("bad_frame", f"unexpected frame {frame.tag}")

    def say(self, conn: Connection, room_name: str, text: str, kind: str = "msg") -> None:
        if self._pending:
            self._settle()
        room = self.rooms.get(room_name)
        if room is None or conn not in room.members:
            conn.error("not_in_room", f"you are not in #{room_name}; /join {room_name} first")
            return
        if not text:
            return
        if len(text) > _SURELY_SHORT and _too_long(conn, text):
            return
        assert conn.name is not None
        ts = now_ms()
        msg = StoredMessage(
            self.store.add(room.name, ts, conn.name, kind, text),
            room.name,
            ts,
            conn.name,
            kind,
            text,
        )
        lobby = room.name == DEFAULT_ROOM
        counts = self._mode_counts
        # Encode the other dialects only when someone connected speaks them.
        self._fanout(
            room.members,
            hello=self._encode_message(msg, Mode.HELLO) if counts[_HELLO] else None,
            seed=self._encode_message(msg, Mode.SEED) if lobby and counts[_SEED] else None,
            raw=self._encode_message(msg, Mode.RAW) if counts[_RAW] else None,
        )

    def room_refusal(self, room_name: str) -> str | None:
        """Why a new room ``room_name`` may not be opened (it looks like an open room, or it
        mixes scripts), or None."""
        key = name_key(room_name)
        for other in self.rooms:
            if name_key(other) == key:
                return (
                    f"the room name #{room_name} looks like #{other} "
                    f"(names that look alike are the same name); /join {other}"
                )
        return script_problem(room_name, "room name")

    def join(self, conn: Connection, room_name: str) -> None:
        room = self.rooms.get(room_name)
        if room is None:
            problem = self.room_refusal(room_name)
            if problem is not None:
                conn.error("room_invalid", problem)
                return
            room = self.rooms[room_name] = Room(room_name, *_topic(self._topics, room_name))
        conn.current_room = room_name
        if conn in room.members:
            self._send_room_state(conn, room)
            return
        room.members[conn] = None
        conn.rooms[room_name] = None
        assert conn.name is not None
        self._fanout(
            room.members,
            hello=encode(f.UserJoined.model_construct(room=room.name, user=conn.user_entry())),
            raw=_raw(f"*** {conn.name} joined #{room.name}"),
            skip=conn if conn.mode == Mode.RAW else None,
        )
        self._send_room_state(conn, room)

    def _send_room_state(self, conn: Connection, room: Room) -> None:
        if conn.mode == Mode.RAW:
            conn.queue_text(
                f"*** You are in #{room.name} ({len(room.members)} member(s)); "
                "plain lines now go there"
            )
            if room.topic:
                conn.queue_text(f"*** Topic of #{room.name}: {room.topic}")
        elif room.topic:
            conn.send(f.Topic(room=room.name, setter=room.topic_setter, text=room.topic))
        self._send_history(conn, room)
        self.who(conn, room.name)

    def part(self, conn: Connection, room_name: str) -> None:
        if room_name == DEFAULT_ROOM:
            conn.error("cannot_leave", "everyone stays in the lobby; /quit leaves the server")
            return
        room = self.rooms.get(room_name)
        if room is None or conn not in room.members:
            conn.error("not_in_room", f"you are not in #{room_name}")
            return
        assert conn.name is not None
        self._fanout(
            room.members,
            hello=encode(f.UserLeft.model_construct(room=room.name, name=conn.name, reason="left")),
            raw=_raw(f"*** {conn.name} left #{room.name}"),
        )
        room.members.pop(conn, None)
        conn.rooms.pop(room_name, None)
        if conn.current_room == room_name:
            conn.current_room = DEFAULT_ROOM
            if conn.mode == Mode.RAW:
                conn.queue_text("*** Plain lines now go to #lobby")
        self._maybe_drop_room(room)

    def list_rooms(self, conn: Connection) -> None:
        rooms = sorted(self.rooms.values(), key=lambda r: (r.name != DEFAULT_ROOM, r.name))
        if conn.mode == Mode.RAW:
            conn.queue_text(
                "*** Rooms: " + ", ".join(f"#{r.name} ({len(self._registered(r))})" for r in rooms)
            )
            return
        infos = tuple(
            f.RoomInfo.model_construct(room=r.name, members=len(self._registered(r))) for r in rooms
        )
        conn.send(f.RoomList.model_construct(rooms=infos))

    def who(self, conn: Connection, room_name: str) -> None:
        room = self.rooms.get(room_name)
        if room is None:
            conn.error("no_such_room", f"there is no room #{room_name}")
            return
        if conn.mode == Mode.RAW:
            names = ", ".join(c.name for c in self._registered(room) if c.name)
            conn.queue_text(f"*** Members of #{room.name}: {names}")
        elif conn.mode == Mode.SEED:
            conn.queue(self._ulist_bytes())
        else:
            conn.send(self._rlist(room))

    def set_topic(self, conn: Connection, room_name: str, text: str) -> None:
        room = self.rooms.get(room_name)
        if room is None or conn not in room.members:
            conn.error("not_in_room", f"you are not in #{room_name}")
            return
        assert conn.name is not None
        room.topic, room.topic_setter = text, conn.name
        self._topics[room.name] = (conn.name, text)
        try:
            self.store.set_topic(room.name, conn.name, text, now_ms())
        except Exception:  # the topic still applies until a restart
            log.exception("could not store the topic of #%s", room.name)
        self._fanout(
            room.members,
            hello=encode(f.Topic.model_construct(room=room.name, setter=conn.name, text=text)),
            seed=encode(f.Notice.model_construct(text=f"{conn.name} set the topic: {text}")),
            raw=_raw(f"*** {conn.name} set the topic of #{room.name}: {text}"),
        )

    def private(self, conn: Connection, to: str, text: str) -> None:
        if len(text) > _SURELY_SHORT and _too_long(conn, text):
            return
        target = self.names.get(name_key(to))
        if target is None:
            conn.error("no_such_user", f"no user named {to} is online")
            return
        assert conn.name is not None and target.name is not None
        frame = f.Private.model_construct(ts=now_ms(), sender=conn.name, to=target.name, text=text)
        for c, raw in (
            (target, f"*{conn.name}* (private): {text}"),
            (conn, f"-> *{target.name}*: {text}"),
        ):
            if c.mode == Mode.HELLO:
                c.send(frame)
            elif c.mode == Mode.SEED:
                c.send(
                    f.Notice.model_construct(
                        text=f"private from {conn.name}: {text}"
                        if c is target
                        else f"private to {target.name}: {text}"
                    )
                )
            else:
                c.queue_text(raw)
            if c is target and conn is target:
                break

    def help(self, conn: Connection) -> None:
        for line in HELP_LINES:
            conn.queue_text(f"*** {line}")

    def shutdown_notice(self) -> None:
        self.notice_all("Server is shutting down")
        self._fanout(self.conns, encode(f.Bye(code="shutdown", text="Server is shutting down")))
        self.flush()


def _too_long(conn: Connection, text: str) -> bool:
    """Refuse a message over MAX_MESSAGE_BYTES (``ERR|message_too_long``); True if refused."""
    size = len(text.encode("utf-8"))
    if size <= MAX_MESSAGE_BYTES:
        return False
    conn.error(
        "message_too_long",
        f"message too long ({size} bytes; at most {MAX_MESSAGE_BYTES}), not sent",
    )
    return True


def _raw(text: str) -> bytes:
    return (text + "\n").encode("utf-8")


def _topic(topics: dict[str, tuple[str, str]], room: str) -> tuple[str, str]:
    setter, text = topics.get(room, ("", ""))
    return text, setter
