"""Model-based test of the chat (issue #17): a hypothesis ``RuleBasedStateMachine`` drives a
real ``richchat server`` process with clients of all three dialects, and after every step each
client's view equals what a simple model of the chat predicts.

Clients are plain sockets speaking the wire protocol of their dialect (hello frames, seed
frames, netcat lines), so nothing of richchat's own client code is involved. Rules: connect
(at once, or silent until the netcat prompt and then switched to its dialect), register (valid,
invalid, taken, look-alike and mixed-script names; a netcat guest, ``/nick NAME`` or another
command at the prompt), rename, join and part rooms (look-alike and invalid room names too;
seed clients are refused), topics (set, cleared, too long), who/users/rooms queries, room
messages and emotes (blank ones, one byte too long ones, a seed client's own label, a netcat
``//`` line), bursts (several users talk at once), private messages, quit, drop the connection
(FIN or RST), reconnect under the same name.

After each step every client sends ``PING`` and reads up to its ``PONG`` (the server answers
in the order of its events; the acting clients first), and what it received is turned into
*items*: messages (room, sender, kind, text), private messages, topics, presence (join, part
with its reason, rename), the user and member lists it was given, errors, its own name. The
sequence of items of every client must equal the model's prediction exactly: nothing lost,
duplicated, reordered, or leaked to a room or person it was not for, and every refusal where the
model expects one. After a burst, whose order is the server's choice, every member of a room
must have seen that room's messages in one same order, each sender's in its order. A silent
probe connection checks the server's own view (``CMD_WHO`` of the lobby and of every open
room, ``CMD_ROOMS|``) against the model after every step; seed clients' coalesced ``ULIST`` is
checked when it settles (the ``settle`` rule and the end of each example).

One server serves the whole run (history and topics persist between examples, as in life: a
*shadow* of what the server stores carries over); each example ends with everyone gone, and a
failed example gets a fresh server (a new data directory) for the next, so that hypothesis's
replays while shrinking start from what the model expects. The model uses the protocol's own
name rules (validity, look-alike keys, scripts): those have their own tests; what is modelled
here is the chat.

Profiles (``RICHCHAT_MODEL_PROFILE``): ``ci`` (the default), 40 examples of at most 25 steps,
derandomized (the same examples on every run); ``long``, new random examples in rounds of 50
(at most 50 steps) until ``RICHCHAT_MODEL_MINUTES`` (10) have passed.
``RICHCHAT_MODEL_EXAMPLES`` and ``RICHCHAT_MODEL_STEPS`` override either. The command and the
outcome of the last long run are in docs/testing.md; ``pytest -s`` prints what a run did.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import struct
import sys
import time
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.errors import StopTest
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from pydantic import ValidationError

from richchat.core.protocol import frames as f
from richchat.core.protocol.text import (
    MAX_MESSAGE_BYTES,
    name_key,
    nick_problem,
    script_problem,
)
from tests.serverproc import ServerProc, internal_errors

#: ``RICHCHAT_MODEL_PROFILE``: "ci" (the default) is small and derandomized (the same examples
#: on every run: CI fails only on a change, never on luck); "long" draws new examples, in rounds
#: of ``EXAMPLES``, until ``RICHCHAT_MODEL_MINUTES`` have passed.
PROFILES = {"ci": (40, 25, True, 0.0), "long": (50, 50, False, 10.0)}
PROFILE = os.environ.get("RICHCHAT_MODEL_PROFILE", "ci")
if PROFILE not in PROFILES:
    raise ValueError(f"RICHCHAT_MODEL_PROFILE={PROFILE!r}: not one of {sorted(PROFILES)}")
_EXAMPLES, _STEPS, DERANDOMIZE, _MINUTES = PROFILES[PROFILE]
EXAMPLES = int(os.environ.get("RICHCHAT_MODEL_EXAMPLES", _EXAMPLES))
STEPS = int(os.environ.get("RICHCHAT_MODEL_STEPS", _STEPS))
MINUTES = float(os.environ.get("RICHCHAT_MODEL_MINUTES", _MINUTES))
HISTORY = 20  # the server's --history
MAX_CLIENTS = 6
LOBBY = "lobby"
WAIT = 15.0  # generous bound for any answer (a busy CI machine)

Item = tuple[object, ...]
#: the server's view: members per room, the ROOMS line, any other answer (none expected)
View = tuple[dict[str, frozenset[str]], str, list[str]]
#: what the run did (printed at the end: ``pytest -s``)
STATS: Counter[str] = Counter()

# names: valid, the same as another (case, confusable), invalid (syntax, mixed scripts)
NAMES = ["alice", "ALICE", "bob", "carol", "Zoë", "mike", "rnike", "Алиса", "аlice", "Ωmega",
         "bad name", "x" * 25, "dave"]
#: half the time a name that should be accepted
NAME = st.one_of(st.sampled_from(["alice", "bob", "carol", "Zoë", "Алиса", "dave", "eve"]),
                 st.sampled_from(NAMES))
VALID_TARGETS = ["alice", "ALICE", "bob", "carol", "Zoë", "mike", "Алиса", "dave"]
ROOMS = ["dev", "Dev", "ops", LOBBY, "dеv", "x y", "日本語"]
TEXTS = ["", " [bold]not bold[/bold]", " | pipes | here", " ünïcödé ☕", " \x1b[31mred"]
BLANK, LONG, CLEAR = "(blank)", "(long)", "(clear)"  # text variants: spaces only, too long, none


# ----------------------------------------------------------------------------- the wire


class Wire:
    """One real connection: a blocking socket and the lines received on it."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no 40 ms waits
        self.buf = b""
        self.unread: list[str] = []  # received, not yet turned into items
        self.eof = False

    def send(self, line: str) -> None:
        self.sock.sendall((line + "\n").encode("utf-8"))

    def _fill(self, deadline: float) -> None:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        self.sock.settimeout(left)
        data = self.sock.recv(65536)
        if not data:
            self.eof = True
            raise EOFError
        self.buf += data
        *lines, self.buf = self.buf.split(b"\n")
        self.unread += [line.decode("utf-8", "replace") for line in lines]

    def read_through(self, done: Callable[[str, list[str]], bool], what: str) -> list[str]:
        """Read until ``done(line, lines before it)``; return the lines not read yet, up to
        and including that one."""
        deadline = time.monotonic() + WAIT
        seen = 0
        while True:
            for i in range(seen, len(self.unread)):
                if done(self.unread[i], self.unread[:i]):
                    taken, self.unread = self.unread[: i + 1], self.unread[i + 1 :]
                    return taken
            seen = len(self.unread)
            try:
                self._fill(deadline)
            except (TimeoutError, EOFError, OSError) as exc:
                raise AssertionError(f"{what}: not there ({type(exc).__name__}); "
                                     f"got {self.unread[-8:]!r}") from None

    def read_until(self, done: str, what: str) -> list[str]:
        """The lines before the next line equal to ``done`` (which is dropped)."""
        return self.read_through(lambda line, _: line == done, what)[:-1]

    def read_to_eof(self, what: str) -> list[str]:
        deadline = time.monotonic() + WAIT
        while not self.eof:
            try:
                self._fill(deadline)
            except EOFError:
                break
            except (TimeoutError, OSError) as exc:
                if isinstance(exc, ConnectionResetError):
                    break
                raise AssertionError(f"{what}: not closed ({type(exc).__name__}); "
                                     f"got {self.unread[-8:]!r}") from None
        lines, self.unread = self.unread, []
        return lines

    def close(self, rst: bool = False) -> None:
        """Reset (RST), or close cleanly: FIN first, then read what is left until the server
        closes too (a socket closed with unread data would send RST instead of FIN)."""
        if rst:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        else:
            with contextlib.suppress(OSError):
                self.sock.shutdown(socket.SHUT_WR)
                self.read_to_eof("close")
        self.sock.close()


_tokens = iter(range(1, 10**9))


def ping(wire: Wire) -> str:
    """Send a PING; its token (the PONG to wait for)."""
    token = f"b{next(_tokens)}"
    wire.send(f"PING|{token}")
    return token


def barrier(wire: Wire) -> list[str]:
    """Everything the server sent this connection before it answered a PING sent now."""
    return wire.read_until(f"PONG|{ping(wire)}", "barrier")


# ----------------------------------------------------------------------------- parsing


def _names(entries: str) -> frozenset[str]:
    return frozenset(e[: e.index("(")] for e in entries.split(",") if e)


def hello_item(line: str) -> Item | None:
    tag, _, rest = line.partition("|")
    if tag in ("RMSG", "ACTION"):
        room, _id, _ts, name, text = rest.split("|", 4)
        return ("msg", room, name, "msg" if tag == "RMSG" else "action", text)
    if tag == "PRIV":
        _ts, sender, to, text = rest.split("|", 3)
        return ("priv", sender, to, text)
    if tag == "TOPIC":
        room, _setter, text = rest.split("|", 2)
        return ("topic", room, text)
    if tag == "JOIN":
        room, entry = rest.split("|", 1)
        return ("join", room, entry[: entry.index("(")])
    if tag == "PART":
        room, name, reason = rest.split("|", 2)
        return ("part", room, name, reason)
    if tag == "NICK":
        old, new = rest.split("|", 1)
        return ("nick", old, new)
    if tag == "ULIST":
        return ("users", LOBBY, _names(rest))
    if tag == "RLIST":
        room, entries = rest.split("|", 1)
        return ("members", room, _names(entries))
    if tag == "YOU":
        return ("you", rest)
    if tag == "ROOMS":
        return ("rooms", rest)
    if tag == "ERR":
        return ("error", rest.split("|", 1)[0])
    if tag in ("HELLO", "SRV"):
        return None  # the welcome; notices that go with JOIN/PART/NICK
    return ("unexpected", line)


_SEED_NOTICES = [
    (re.compile(r"^Topic: (.*)$"), lambda m, me: ("topic", LOBBY, m[1])),  # on registration
    (re.compile(r"^\* (\S+) (.*)$"), lambda m, me: ("msg", LOBBY, m[1], "action", m[2])),
    (re.compile(r"^private from (\S+): (.*)$"), lambda m, me: ("priv", m[1], me, m[2])),
    (re.compile(r"^private to (\S+): (.*)$"), lambda m, me: ("priv", me, m[1], m[2])),
    (re.compile(r"^(\S+) set the topic: (.*)$"), lambda m, me: ("topic", LOBBY, m[2])),
    (re.compile(r"^(\S+) cleared the topic$"), lambda m, me: ("topic", LOBBY, "")),
    (re.compile(r"^(\S+) joined$"), lambda m, me: ("join", LOBBY, m[1])),
    (re.compile(r"^(\S+) left \((.*)\)$"), lambda m, me: ("part", LOBBY, m[1], m[2])),
    (re.compile(r"^(\S+) is now known as (\S+)$"), lambda m, me: ("nick", m[1], m[2])),
    (re.compile(r"^Welcome to "), lambda m, me: None),
]

_RAW_NOTICES = [
    (re.compile(r"^(\S+) joined$"), lambda m: ("join", LOBBY, m[1])),
    (re.compile(r"^(\S+) joined #(\S+)$"), lambda m: ("join", m[2], m[1])),
    (re.compile(r"^(\S+) left \((.*)\)$"), lambda m: ("part", LOBBY, m[1], m[2])),
    (re.compile(r"^(\S+) left #(\S+)$"), lambda m: ("part", m[2], m[1], "left")),
    (re.compile(r"^(\S+) left #(\S+) \((.*)\)$"), lambda m: ("part", m[2], m[1], m[3])),
    (re.compile(r"^(\S+) is now known as (\S+)$"), lambda m: ("nick", m[1], m[2])),
    (re.compile(r"^(\S+) set the topic of #(\S+): (.*)$"), lambda m: ("topic", m[2], m[3])),
    (re.compile(r"^(\S+) cleared the topic of #(\S+)$"), lambda m: ("topic", m[2], "")),
    (re.compile(r"^Topic: (.*)$"), lambda m: ("topic", LOBBY, m[1])),
    (re.compile(r"^Topic of #(\S+): (.*)$"), lambda m: ("topic", m[1], m[2])),
    (re.compile(r"^Users online: (.*)$"),
     lambda m: ("users", LOBBY, frozenset() if m[1] == "nobody yet" else frozenset(m[1].split(", ")))),
    (re.compile(r"^Members of #(\S+): (.*)$"),
     lambda m: ("members", m[1], frozenset(n for n in m[2].split(", ") if n))),
    (re.compile(r"^You are in #(\S+) \(\d+ member\(s\)\); plain lines now go there$"),
     lambda m: ("in", m[1])),
    (re.compile(r"^You are (\S+)\. Type /nick"), lambda m: ("you", m[1])),
    (re.compile(r"^Plain lines now go to #lobby$"), lambda m: ("fallback",)),
    (re.compile(r"^Rooms: (.*)$"),
     lambda m: ("rooms", ",".join(re.sub(r"^#(\S+) \((\d+)\)$", r"\1:\2", x)
                                  for x in m[1].split(", ")))),
    (re.compile(r"^Error: "), lambda m: ("error", None)),
    (re.compile(r"^(Welcome to |Type a nickname)"), lambda m: None),
]
_RAW_HISTORY = re.compile(r"^\[\d\d:\d\d\] (.*)$")
_RAW_PRIV_IN = re.compile(r"^\*([^*\s]+)\* \(private\): (.*)$")
_RAW_PRIV_OUT = re.compile(r"^-> \*([^*\s]+)\*: (.*)$")
_RAW_ROOM = re.compile(r"^\[([^\]\s]+)\] (.*)$")
_RAW_ACTION = re.compile(r"^\* (\S+) (.*)$")
_RAW_MSG = re.compile(r"^([^:\s]+): (.*)$")


def raw_item(line: str, me: str | None) -> Item | None:
    if line.startswith("*** "):
        body = line[4:]
        for pattern, make in _RAW_NOTICES:
            m = pattern.match(body)
            if m:
                return make(m)
        return ("unexpected", line)
    if m := _RAW_PRIV_IN.match(line):
        return ("priv", m[1], me, m[2])
    if m := _RAW_PRIV_OUT.match(line):
        return ("priv", me, m[1], m[2])
    if m := _RAW_HISTORY.match(line):
        line = m[1]
    room = LOBBY
    if m := _RAW_ROOM.match(line):
        room, line = m[1], m[2]
    if m := _RAW_ACTION.match(line):
        return ("msg", room, m[1], "action", m[2])
    if m := _RAW_MSG.match(line):
        return ("msg", room, m[1], "msg", m[2])
    return ("unexpected", line)


# ----------------------------------------------------------------------------- the model


@dataclass
class Client:
    cid: int
    dialect: str  # "hello", "seed" or "raw"
    wire: Wire
    name: str | None = None  # registered name, as the server spells it
    rooms: list[str] = field(default_factory=list)  # besides the lobby, in join order
    current: str = LOBBY  # where a netcat user's plain lines go
    expected: list[Item] = field(default_factory=list)
    observed: list[Item] = field(default_factory=list)
    seed_ulist: frozenset[str] | None = None  # the last coalesced ULIST (seed)
    seed_snapshot: bool = False  # the next ULIST is the registration snapshot (seed)

    def absorb(self, lines: list[str]) -> None:
        for line in lines:
            item: Item | None
            if self.dialect == "hello":
                item = hello_item(line)
            elif self.dialect == "raw":
                item = raw_item(line, self.name)
            else:
                item = self._seed_item(line)
            if item is not None:
                self.observed.append(item)

    def _seed_item(self, line: str) -> Item | None:
        tag, _, rest = line.partition("|")
        if tag == "MSG":
            name, _, text = rest.partition(": ")
            return ("msg", LOBBY, name, "msg", text)
        if tag == "ULIST":
            users = _names(rest)
            self.seed_ulist = users
            if self.seed_snapshot:
                self.seed_snapshot = False
                return ("users", LOBBY, users)
            return None
        if tag == "ERR":
            return ("error", rest.split("|", 1)[0])
        if tag == "SRV":
            for pattern, make in _SEED_NOTICES:
                m = pattern.match(rest)
                if m:
                    return make(m, self.name)
        return ("unexpected", line)


@dataclass
class Shadow:
    """What the server stores, across examples: history and topics per room."""

    history: dict[str, list[tuple[str, str, str]]] = field(default_factory=dict)
    topics: dict[str, str] = field(default_factory=dict)
    texts: Iterator[int] = field(default_factory=lambda: iter(range(1, 10**9)))


_RULES = {"start", "connect", "register", "reconnect", "rename", "join", "part", "topic", "who",
          "join_race", "register_race", "name_clash", "say", "burst", "private", "leave"}


def _rule_name() -> str:
    frame = sys._getframe(2)
    while frame is not None and frame.f_code.co_name not in _RULES:
        frame = frame.f_back  # type: ignore[assignment]
    return frame.f_code.co_name if frame is not None else "?"


def canon_room(room: str) -> str | None:
    try:
        return f.JoinRoom(room=room).room
    except ValidationError:
        return None


class ChatModel(RuleBasedStateMachine):
    shadow: Shadow

    @property
    def server(self) -> ServerProc:
        return SERVERS.current

    def __init__(self) -> None:
        super().__init__()
        self.clients: list[Client] = []  # connected, in connection order
        self.gone: list[tuple[str, str]] = []  # (dialect, name) of dropped registered users
        self.rooms: dict[str, list[Client]] = {}  # open rooms besides the lobby: members
        self.next_cid = 0
        self.seed_dirty = False
        self.steps = 0
        self.view: View | None = None  # asked for by the last sync
        self.probe = Wire(self.server.port)
        self.probe.send("HELLO|1|model-probe")
        barrier(self.probe)

    # ------------------------------------------------------------------ model helpers

    @property
    def registered(self) -> list[Client]:
        return [c for c in self.clients if c.name is not None]

    def online(self) -> frozenset[str]:
        return frozenset(c.name for c in self.registered if c.name)

    def holder(self, name: str) -> Client | None:
        key = name_key(unicodedata.normalize("NFKC", name))
        return next((c for c in self.registered if name_key(c.name or "") == key), None)

    def members(self, room: str) -> list[Client]:
        return self.registered if room == LOBBY else list(self.rooms.get(room, []))

    @staticmethod
    def sees(c: Client, room: str) -> bool:
        return c.dialect != "seed" or room == LOBBY

    def history_items(self, room: str) -> list[Item]:
        return [("msg", room, n, k, t) for n, k, t in self.shadow.history.get(room, [])[-HISTORY:]]

    def topic_items(self, room: str, c: Client) -> list[Item]:
        text = self.shadow.topics.get(room, "")
        return [("topic", room, text)] if text and self.sees(c, room) else []

    def error(self, c: Client, code: str) -> None:
        STATS[f"refused: {code}"] += 1
        c.expected.append(("error", None if c.dialect == "raw" else code))

    def name_outcome(self, c: Client, name: str) -> tuple[str, str]:
        """("ok"|"same", the name as the server spells it) or ("err", code)."""
        if nick_problem(name):
            return "err", "name_invalid"
        name = unicodedata.normalize("NFKC", name)
        if c.name == name:
            return "same", name
        other = self.holder(name)
        if other is not None and other is not c:
            return "err", "name_taken"
        if script_problem(name):
            return "err", "name_invalid"
        return "ok", name

    def text(self, variant: str) -> str:
        """A message text nobody sent before (or spaces only, or 1 byte too long)."""
        if variant == BLANK:
            return "   "
        text = f"m{next(self.shadow.texts)}"
        if variant == LONG:
            return text + "x" * (MAX_MESSAGE_BYTES + 1 - len(text))
        return text + variant

    # ------------------------------------------------------------------ checking

    def sync(self, actor: Client | None = None, actors: list[Client] | None = None,
             settle: Callable[[], None] | None = None) -> None:
        """Barrier on every client (the actors first), then compare with the model
        (``settle`` first fixes the model's order of what happened concurrently)."""
        self.steps += 1
        STATS[f"rule: {_rule_name()}"] += 1
        acting = [a for a in ([actor] if actor is not None else actors or [])
                  if a in self.clients and not self.at_prompt(a)]
        for c in self.clients:
            if self.at_prompt(c):
                # at the nickname prompt: nothing reaches it but the answers to its own lines
                lines, c.wire.unread = c.wire.unread, []
                c.absorb(lines)
        # an actor's PONG comes after everything its lines caused, to everyone
        self.barriers(acting, ask=False)
        # then the others' barriers all at once: one round trip, not one per client (and
        # the probe's question for the invariant); with several actors, theirs again (one
        # actor's first PONG may have come before another's lines were read)
        self.barriers([c for c in self.clients if (c not in acting or len(acting) > 1)
                       and not self.at_prompt(c)], ask=True)
        assert self.server.alive, "the server died:\n" + self.server.log()[-3000:]
        if settle is not None:
            settle()
        for c in self.clients:
            self.check(c)

    def barriers(self, clients: list[Client], ask: bool) -> None:
        tokens = {c.cid: ping(c.wire) for c in clients}
        asked = self.ask_view() if ask else None
        for c in clients:
            c.absorb(c.wire.read_until(f"PONG|{tokens[c.cid]}", "barrier"))
        if asked is not None:
            self.view = self.read_view(asked)

    @staticmethod
    def at_prompt(c: Client) -> bool:
        """A netcat user at the nickname prompt (a PING would be taken for a nickname)."""
        return c.dialect == "raw" and c.name is None

    def check(self, c: Client) -> None:
        if c.observed != c.expected:
            raise AssertionError(self.explain(c))

    def explain(self, c: Client) -> str:
        n = next((i for i, (a, b) in enumerate(zip(c.observed, c.expected, strict=False))
                  if a != b), min(len(c.observed), len(c.expected)))
        return (f"client {c.cid} ({c.dialect}, {c.name}) differs from the model at item {n}:\n"
                f"  observed: {c.observed[n:n + 6]}\n  expected: {c.expected[n:n + 6]}")

    def server_view(self) -> View:
        """The server's own view: the members of the lobby and of every room the model
        thinks open, and the ROOMS line."""
        return self.read_view(self.ask_view())

    def ask_view(self) -> str:
        token = f"p{next(_tokens)}"
        for room in [LOBBY, *sorted(self.rooms)]:
            self.probe.send(f"CMD_WHO|{room}")
        self.probe.send("CMD_ROOMS|")
        self.probe.send(f"PING|{token}")
        return token

    def read_view(self, token: str) -> View:
        lines = self.probe.read_until(f"PONG|{token}", "probe")
        members = {room: _names(entries) for room, entries in
                   (x.split("|", 2)[1:] for x in lines if x.startswith("RLIST|"))}
        rooms = next(x for x in lines if x.startswith("ROOMS|"))
        others = [x for x in lines if not x.startswith(("RLIST|", "ROOMS|"))]
        return members, rooms, others

    def model_view(self) -> View:
        members = {LOBBY: self.online()} | {
            r: frozenset(m.name for m in ms if m.name) for r, ms in self.rooms.items()}
        rooms = "ROOMS|" + ",".join(
            [f"{LOBBY}:{len(self.registered)}"] + [f"{r}:{len(m)}" for r, m in sorted(self.rooms.items())])
        return members, rooms, []

    def wait_gone(self, name: str) -> None:
        """Until the server has seen a connection go (its departure is processed)."""
        deadline = time.monotonic() + WAIT
        while name in self.server_view()[0][LOBBY]:
            assert time.monotonic() < deadline, f"{name} still listed"
            time.sleep(0.01)

    @invariant()
    def server_agrees(self) -> None:
        if not hasattr(self, "probe"):
            return
        # the view asked for by the step's sync (or now, after a step without one)
        view = self.view if self.view is not None else self.server_view()
        self.view = None
        assert view == self.model_view()

    # ------------------------------------------------------------------ choosing

    def pick(self, data: st.DataObject, pool: list[Client]) -> Client:
        return pool[data.draw(st.integers(0, len(pool) - 1), label="client")]

    def can_connect(self) -> bool:
        return len(self.clients) < MAX_CLIENTS

    def unregistered(self) -> list[Client]:
        return [c for c in self.clients if c.name is None]

    def talkers(self) -> list[Client]:
        """Registered clients that use rooms (hello and netcat)."""
        return [c for c in self.registered if c.dialect != "seed"]

    # ------------------------------------------------------------------ rules: arriving

    @initialize(dialects=st.lists(st.sampled_from(["hello", "seed", "raw"]), max_size=4),
                room=st.sampled_from(["dev", "ops"]))
    def start(self, dialects: list[str], room: str) -> None:
        """Most examples start from a chat already under way: up to four users, those who
        can in one room."""
        assert self.server.alive
        for dialect, name in zip(dialects, ["alice", "bob", "carol", "dave"], strict=False):
            self.connect(dialect, name, 1)
            c = self.clients[-1]
            if c.dialect != "seed":
                self._join(c, room)

    @precondition(can_connect)
    @rule(dialect=st.sampled_from(["hello", "seed", "raw"]), name=st.one_of(NAME, st.just("")),
          register=st.integers(0, 4), how=st.sampled_from([*["at once"] * 6, "slow", "nick",
                                                           "command"]))
    def connect(self, dialect: str, name: str, register: int, how: str = "at once") -> None:
        """A new connection; it registers at once, except some hello clients, which look
        first (the lobby's user list) and register later. ``how``: "slow", a hello or seed
        client that says nothing until the netcat welcome and prompt came (then switches to
        its dialect); for a netcat user, "nick" answers the prompt with ``/nick NAME``,
        "command" tries another command first (refused: choose a nickname first)."""
        c = self.new_client(dialect, slow=how == "slow")
        if dialect == "hello" and not register:
            return self.sync(c)
        self._register(c, name or ("" if dialect == "raw" else "carol"), how)

    def new_client(self, dialect: str, slow: bool = False) -> Client:
        c = Client(self.next_cid, dialect, Wire(self.server.port))
        self.next_cid += 1
        self.clients.append(c)
        if slow and dialect != "raw":
            STATS[f"slow {dialect} client"] += 1
            c.wire.read_through(lambda line, _: line.startswith("*** Type a nickname"),
                                "the netcat welcome of a silent connection")
            c.wire.unread.clear()  # seen by a client that is not yet of any dialect
        if dialect == "hello":
            c.wire.send("HELLO|1|model")
            c.expected.append(("users", LOBBY, self.online()))
        return c

    @precondition(lambda self: bool(self.unregistered()))
    @rule(data=st.data(), name=NAME)
    def register(self, data: st.DataObject, name: str) -> None:
        self._register(self.pick(data, self.unregistered()), name)

    @precondition(lambda self: bool(self.gone) and len(self.clients) < MAX_CLIENTS)
    @rule(data=st.data())
    def reconnect(self, data: st.DataObject) -> None:
        """A user whose connection dropped comes back under the same name."""
        dialect, name = self.gone.pop(data.draw(st.integers(0, len(self.gone) - 1)))
        self._register(self.new_client(dialect), name)

    def _register(self, c: Client, name: str, how: str = "at once") -> None:
        guest = c.dialect == "raw" and name == ""
        outcome, spelt = ("ok", "") if guest else self.name_outcome(c, name)
        if c.dialect == "raw":
            if how == "command":
                c.wire.send("/join dev")
                self.error(c, "not_registered")
                c.absorb(c.wire.read_through(
                    lambda line, before: line.startswith("*** Type a nickname") and any(
                        x.startswith("*** Error: ") for x in before), "the prompt again"))
            c.wire.send(f"/nick {name}" if how == "nick" and name else name)
            # its answer: registered ("You are NAME."), or an error and the prompt again
            lines = c.wire.read_through(
                lambda line, before: bool(_RAW_YOU.match(line)) or (
                    line.startswith("*** Type a nickname")
                    and any(x.startswith("*** Error: ") for x in before)),
                "the answer to the nickname prompt",
            )
            you = _RAW_YOU.match(lines[-1])
            if guest:
                assert you is not None, lines
                spelt = you[1]
                assert spelt.startswith("guest-") and self.name_outcome(c, spelt)[0] == "ok", (
                    f"guest name {spelt} is not free: {self.online()}")
            c.wire.unread[:0] = lines  # read as items with the rest
        else:
            c.seed_snapshot = c.dialect == "seed" and outcome == "ok"
            c.wire.send(f"CMD_USER|{name}")
        if outcome == "same":  # an unregistered client has no name: cannot happen
            raise AssertionError(outcome)
        if outcome != "ok":
            self.error(c, spelt)
            self.sync(c)
            return
        self.registered_as(c, spelt)
        self.sync(c)

    def registered_as(self, c: Client, spelt: str) -> None:
        """The model of a registration: the lobby as it was, then everyone (the newcomer
        too) sees it come."""
        c.expected += self.history_items(LOBBY)
        c.expected.append(("users", LOBBY, self.online()))
        c.expected += self.topic_items(LOBBY, c)  # seed clients: SRV|Topic: TEXT
        if c.dialect != "seed":
            c.expected.append(("you", spelt))
        c.name = spelt
        for other in self.registered:
            other.expected.append(("join", LOBBY, spelt))
        self.seed_dirty = True

    def lobby_talkers(self) -> list[Client]:
        return [c for c in self.registered if c.current == LOBBY]

    @precondition(lambda self: self.can_connect() and bool(self.lobby_talkers()))
    @rule(data=st.data(), dialect=st.sampled_from(["hello", "seed", "raw"]),
          lines=st.integers(1, 6), at=st.integers(0, 6))
    def register_race(self, data: st.DataObject, dialect: str, lines: int, at: int) -> None:
        """Someone registers while the lobby talks (nobody waits): every message must reach
        the newcomer exactly once, in its history or live, in the order the others saw
        around its arrival."""
        senders = self.lobby_talkers()
        name = next(n for n in ["erin", "frank", "gina", "hank", "ivy", "judy", "kim"]
                    if self.holder(n) is None)
        c = self.new_client(dialect)
        start = {x.cid: len(x.expected) for x in self.clients}
        texts: dict[str, Client] = {}
        for i in range(lines + 1):
            if i == min(at, lines):
                c.seed_snapshot = dialect == "seed"
                c.wire.send(name if dialect == "raw" else f"CMD_USER|{name}")
            if i < lines:
                sender = self.pick(data, senders)
                text = self.text(" race")
                texts[text] = sender
                sender.wire.send(text if sender.dialect == "raw" else f"MSG|{text}")
        c.name = name  # (for the barriers: no longer at the prompt)
        STATS["register races"] += 1

        def settle() -> None:
            # the server's order: as the first sender saw it (messages, and the arrival)
            witness = next(iter(texts.values()))
            order = [item for item in witness.observed[start[witness.cid]:]
                     if item[1] == LOBBY and (item[0] == "msg" or item == ("join", LOBBY, name))]
            assert ("join", LOBBY, name) in order and len(order) == lines + 1, (
                f"lobby: client {witness.cid} saw {order}")
            c.name = None
            for x in self.clients:  # replay the model in that order
                del x.expected[start[x.cid]:]
            for item in order:
                if item[0] == "join":
                    self.registered_as(c, name)
                else:
                    text = str(item[4])
                    self.said(texts[text], LOBBY, "msg", text)

        self.sync(actors=[*{id(x): x for x in texts.values()}.values(), c], settle=settle)

    # ------------------------------------------------------------------ rules: names

    @precondition(lambda self: bool(self.registered))
    @rule(data=st.data(), name=NAME)
    def rename(self, data: st.DataObject, name: str) -> None:
        c = self.pick(data, self.registered)
        outcome, spelt = self.name_outcome(c, name)
        c.wire.send(f"/nick {name}" if c.dialect == "raw" else f"CMD_USER|{name}")
        if outcome == "err":
            self.error(c, spelt)
        elif outcome == "same":
            if c.dialect == "hello":
                c.expected.append(("you", spelt))
        else:
            self.renamed(c, spelt)
        self.sync(c)

    def renamed(self, c: Client, spelt: str) -> None:
        """The model of an accepted rename."""
        old = c.name
        if c.dialect == "hello":
            c.expected.append(("you", spelt))
        c.name = spelt
        for other in self.registered:
            other.expected.append(("nick", old, spelt))
        self.seed_dirty = True

    @precondition(lambda self: len(self.clients) <= MAX_CLIENTS - 2 or len(self.registered) >= 2)
    @rule(data=st.data(), rename=st.booleans(), spelling=st.sampled_from(["same", "case"]),
          dialects=st.tuples(st.sampled_from(["hello", "seed"]), st.sampled_from(["hello", "seed"])))
    def name_clash(self, data: st.DataObject, rename: bool, spelling: str,
                   dialects: tuple[str, str]) -> None:
        """Two users claim the same name at the same moment (registering, or renaming):
        exactly one gets it, the other is told it is taken."""
        if len(self.registered) < 2:
            rename = False
        elif len(self.clients) > MAX_CLIENTS - 2:
            rename = True
        base = next(n for n in ["zed", "quinn", "yuki", "xena", "walt", "vera", "uma", "tom"]
                    if self.holder(n) is None)
        names = [base, base if spelling == "same" else base.upper()]
        if rename:
            first = self.pick(data, self.registered)
            second = self.pick(data, [c for c in self.registered if c is not first])
            claimants = [first, second]
        else:
            # one dialect: who wins must not change what the model can do next (hypothesis
            # replays an example with the same draws; a hello winner and a seed winner would
            # lead it to different choices)
            claimants = [self.new_client(dialects[0]) for _ in range(2)]
            for c in claimants:  # (a hello client's welcome lists the lobby as it is now)
                c.absorb(barrier(c.wire))
        start = {x.cid: len(x.expected) for x in self.clients}
        for c, name in zip(claimants, names, strict=True):
            if c.dialect == "seed" and not rename:
                c.seed_snapshot = True
            c.wire.send(f"/nick {name}" if c.dialect == "raw" else f"CMD_USER|{name}")
        STATS["name clashes"] += 1

        def settle() -> None:
            refused = [c for c in claimants
                       if any(item[0] == "error" for item in c.observed[start[c.cid]:])]
            assert len(refused) == 1, (
                f"{names}: {len(refused)} of the two claimants refused: "
                f"{[c.observed[start[c.cid]:] for c in claimants]}")
            loser = refused[0]
            winner = claimants[1 - claimants.index(loser)]
            for x in self.clients:
                del x.expected[start[x.cid]:]
            spelt = names[claimants.index(winner)]
            if rename:
                old[0] = str(winner.name)
                self.renamed(winner, spelt)
                olds.append(winner)
            else:
                winner.seed_snapshot = False
                self.registered_as(winner, spelt)
                if winner is claimants[1]:  # the winner in the first claimant's place
                    i, j = self.clients.index(claimants[0]), self.clients.index(winner)
                    self.clients[i], self.clients[j] = winner, claimants[0]
            loser.seed_snapshot = False
            self.error(loser, "name_taken")

        old: list[str] = [""]
        olds: list[Client] = []
        self.sync(actors=claimants, settle=settle)
        if olds:
            # and takes its name back: what follows must not depend on who won (see above)
            winner = olds[0]
            winner.wire.send(f"/nick {old[0]}" if winner.dialect == "raw"
                             else f"CMD_USER|{old[0]}")
            self.renamed(winner, old[0])
            self.sync(winner)

    # ------------------------------------------------------------------ rules: rooms

    @precondition(lambda self: bool(self.registered))
    @rule(data=st.data(), room=st.one_of(st.just("dev"), st.sampled_from(ROOMS)))
    def join(self, data: st.DataObject, room: str) -> None:
        self._join(self.pick(data, self.registered), room)

    def seed_room_refusal(self, c: Client, room: str) -> bool:
        """A seed client naming a room: refused unless it is the lobby (True: refused)."""
        r = canon_room(room)
        if r is None:
            self.error(c, "room_invalid")
        elif r != LOBBY:
            self.error(c, "bad_frame")  # seed clients stay in the lobby
        return r != LOBBY

    def _join(self, c: Client, room: str) -> None:
        c.wire.send(f"/join {room}" if c.dialect == "raw" else f"CMD_JOIN|{room}")
        if c.dialect == "seed":  # the lobby, where it is (no answer), or refused
            self.seed_room_refusal(c, room)
            return self.sync(c)
        r = canon_room(room)
        if r is None:
            self.error(c, "room_invalid")
            return self.sync(c)
        assert c.name is not None
        already = r == LOBBY or r in c.rooms
        if not already and r not in self.rooms:
            clash = any(o != r and name_key(o) == name_key(r) for o in [LOBBY, *self.rooms])
            if clash or script_problem(r, "room name"):
                self.error(c, "room_invalid")
                return self.sync(c)
        self.joined(c, r, already)
        self.sync(c)

    def joined(self, c: Client, r: str, already: bool = False) -> None:
        """The model of an accepted join of ``c`` to room ``r``."""
        assert c.name is not None
        if not already:
            members = self.rooms.setdefault(r, [])
            members.append(c)
            c.rooms.append(r)
            for other in members:
                if other is not c:
                    other.expected.append(("join", r, c.name))
            if c.dialect == "hello":
                c.expected.append(("join", r, c.name))
        c.current = r
        if c.dialect == "raw":
            c.expected.append(("in", r))
        c.expected += self.topic_items(r, c)
        c.expected += self.history_items(r)
        c.expected.append(("members", r, frozenset(m.name for m in self.members(r) if m.name)))

    def race_rooms(self) -> list[tuple[str, list[Client], list[Client]]]:
        """Open rooms with members who can talk there at once (hello clients, netcat users
        whose current room it is), and talkers who could join them."""
        out = []
        for r, members in sorted(self.rooms.items()):
            senders = [m for m in members if m.dialect == "hello" or m.current == r]
            joiners = [c for c in self.talkers() if c not in members]
            if senders and joiners:
                out.append((r, senders, joiners))
        return out

    @precondition(lambda self: bool(self.race_rooms()))
    @rule(data=st.data(), lines=st.integers(1, 6), at=st.integers(0, 6))
    def join_race(self, data: st.DataObject, lines: int, at: int) -> None:
        """Someone joins a room while its members talk (nobody waits): every message must
        reach the joiner exactly once, in its history or live, in the order the others saw
        around its arrival."""
        r, senders, joiners = self.race_rooms()[data.draw(st.integers(
            0, len(self.race_rooms()) - 1), label="room")]
        c = self.pick(data, joiners)
        start = {x.cid: len(x.expected) for x in self.clients}
        texts: dict[str, Client] = {}
        for i in range(lines + 1):
            if i == min(at, lines):
                c.wire.send(f"/join {r}" if c.dialect == "raw" else f"CMD_JOIN|{r}")
            if i < lines:
                sender = senders[i % len(senders)]
                text = self.text(" race")
                texts[text] = sender
                sender.wire.send(text if sender.dialect == "raw" else f"RMSG|{r}|{text}")
        STATS["join races"] += 1

        def settle() -> None:
            # the server's order: as the first sender saw it (messages, and the join)
            witness = next(iter(texts.values()))
            order = [item for item in witness.observed[start[witness.cid]:]
                     if item[1] == r and (item[0] == "msg" or item == ("join", r, c.name))]
            assert ("join", r, c.name) in order and len(order) == lines + 1, (
                f"#{r}: client {witness.cid} saw {order}")
            for x in self.clients:  # replay the model in that order
                del x.expected[start[x.cid]:]
            for item in order:
                if item[0] == "join":
                    self.joined(c, r)
                else:
                    text = str(item[4])
                    self.said(texts[text], r, "msg", text)

        self.sync(actors=[*senders, c], settle=settle)

    @precondition(lambda self: bool(self.registered))
    @rule(data=st.data(), room=st.sampled_from([*ROOMS, "mine"]))
    def part(self, data: st.DataObject, room: str) -> None:
        c = self.pick(data, self.registered)
        if room == "mine":  # one of its rooms, if any
            room = c.rooms[data.draw(st.integers(0, len(c.rooms) - 1))] if c.rooms else "ops"
        c.wire.send(f"/leave {room}" if c.dialect == "raw" else f"CMD_PART|{room}")
        r = canon_room(room)
        if c.dialect == "seed" and r is not None and r != LOBBY:
            self.error(c, "bad_frame")
        elif r is None:
            self.error(c, "room_invalid")
        elif r == LOBBY:
            self.error(c, "cannot_leave")
        elif r not in c.rooms:
            self.error(c, "not_in_room")
        else:
            for member in self.rooms[r]:
                member.expected.append(("part", r, c.name, "left"))
            if c.dialect == "raw" and c.current == r:
                c.expected.append(("fallback",))
            if c.current == r:
                c.current = LOBBY
            self._leave_room(c, r)
        self.sync(c)

    def _leave_room(self, c: Client, r: str) -> None:
        c.rooms.remove(r)
        self.rooms[r].remove(c)
        if not self.rooms[r]:
            del self.rooms[r]

    @precondition(lambda self: bool(self.registered))
    @rule(data=st.data(), room=st.sampled_from([LOBBY, "dev", "ops", "x y", "current"]),
          variant=st.sampled_from([*TEXTS, CLEAR, LONG]))
    def topic(self, data: st.DataObject, room: str, variant: str) -> None:
        """Set (or clear) a topic; a seed client may set the lobby's only; a topic over 200
        characters is refused."""
        c = self.pick(data, self.registered)
        text = "" if variant == CLEAR else "t" + self.text(variant)
        if c.dialect == "raw":  # /topic sets the current room's; /topic alone shows it
            room = c.current
            c.wire.send("/topic --clear" if variant == CLEAR else f"/topic {text}")
        else:
            room = c.current if room == "current" else room
            c.wire.send(f"CMD_TOPIC|{room}|{text}")
        r = canon_room(room)
        if c.dialect == "seed" and self.seed_room_refusal(c, room):
            pass
        elif r is None:
            self.error(c, "room_invalid")
        elif variant == LONG:  # the frame is refused before any room is looked at
            self.error(c, "bad_command" if c.dialect == "raw" else "bad_frame")
        elif r != LOBBY and r not in c.rooms:
            self.error(c, "not_in_room")
        else:
            shown = text.replace("\x1b", "\u241b")
            self.shadow.topics[r] = shown
            for member in self.members(r):
                if self.sees(member, r):
                    member.expected.append(("topic", r, shown))
        self.sync(c)

    @precondition(lambda self: bool(self.talkers()))
    @rule(data=st.data(), what=st.sampled_from(["who", "who", "users", "rooms"]),
          room=st.sampled_from([LOBBY, "dev", "ops", "Dev", "x y", "current"]))
    def who(self, data: st.DataObject, what: str, room: str) -> None:
        """Ask for a room's members (``CMD_WHO``, ``/who``, ``/users``) or the room list."""
        c = self.pick(data, self.talkers())
        room = c.current if room == "current" else room
        if what == "rooms":
            c.wire.send("/rooms" if c.dialect == "raw" else "CMD_ROOMS|")
            c.expected.append(("rooms", self.model_view()[1].removeprefix("ROOMS|")))
            return self.sync(c)
        if what == "users":
            room = LOBBY
            c.wire.send("/users" if c.dialect == "raw" else f"CMD_WHO|{LOBBY}")
        else:
            c.wire.send(f"/who {room}" if c.dialect == "raw" else f"CMD_WHO|{room}")
        r = canon_room(room)
        if r is None:
            self.error(c, "room_invalid")
        elif r != LOBBY and r not in self.rooms:
            self.error(c, "no_such_room")
        else:
            c.expected.append(("members", r, frozenset(m.name for m in self.members(r) if m.name)))
        self.sync(c)

    # ------------------------------------------------------------------ rules: messages

    @precondition(lambda self: bool(self.registered))
    @rule(data=st.data(), where=st.sampled_from([LOBBY, "dev", "current", "current"]),
          variant=st.sampled_from([*TEXTS, BLANK, LONG]), action=st.booleans(),
          label=st.sampled_from(["", "own", "other"]))
    def say(self, data: st.DataObject, where: str, variant: str, action: bool, label: str) -> None:
        """A message or an emote; blank ones are nothing to say, long ones are refused.
        ``label``: a seed client's own ``name: `` label, or another name; a netcat user's
        ``//`` escape for a line that starts with ``/``."""
        c = self.pick(data, self.registered)
        assert c.name is not None
        text = self.text(variant)
        shown = text.replace("\x1b", "\u241b")
        kind = "action" if action else "msg"
        if c.dialect == "seed":
            room = LOBBY
            if kind == "action":
                c.wire.send(f"CMD_ME|{LOBBY}|{text}")
            elif label == "own":  # the seed's own label is dropped once
                c.wire.send(f"MSG|{c.name}: {text}")
            elif label == "other" and variant != BLANK:  # anyone else's name is text
                c.wire.send(f"MSG|bob: {text}")
                shown = f"bob: {shown}" if c.name != "bob" else shown
            else:
                c.wire.send(f"MSG|{text}")
        elif c.dialect == "raw":
            room = c.current
            if kind == "action":
                c.wire.send(f"/me {text}")
            elif label == "own" and variant != BLANK:
                c.wire.send(f"//{text}")
                shown = "/" + shown
            else:
                c.wire.send(text)
        else:
            room = c.current if where == "current" else where
            if kind == "action":
                c.wire.send(f"CMD_ME|{room}|{text}")
            else:
                c.wire.send(f"MSG|{text}" if room == LOBBY else f"RMSG|{room}|{text}")
        if room != LOBBY and room not in c.rooms:
            self.error(c, "not_in_room")
        elif variant == BLANK:
            if c.dialect == "raw" and kind == "action":
                self.error(c, "bad_command")  # /me without an action: its usage
            # else nothing to say: nothing relayed, nothing answered
        elif variant == LONG:
            self.error(c, "message_too_long")
        else:
            self.said(c, room, kind, shown)
        self.sync(c)

    def said(self, c: Client, room: str, kind: str, shown: str) -> None:
        """The model of a message relayed to a room: stored, and seen by its members."""
        assert c.name is not None
        self.shadow.history.setdefault(room, []).append((c.name, kind, shown))
        for member in self.members(room):
            if self.sees(member, room):
                member.expected.append(("msg", room, c.name, kind, shown))

    @precondition(lambda self: bool(self.registered))
    @rule(data=st.data(), to=st.sampled_from(VALID_TARGETS),
          variant=st.sampled_from([*TEXTS, BLANK, LONG]))
    def private(self, data: st.DataObject, to: str, variant: str) -> None:
        c = self.pick(data, self.registered)
        text = self.text(variant)
        shown = text.replace("\x1b", "\u241b")
        c.wire.send(f"/msg {to} {text}" if c.dialect == "raw" else f"CMD_MSG|{to}|{text}")
        target = self.holder(to)
        if variant == BLANK:
            if c.dialect == "raw":
                self.error(c, "bad_command")  # /msg without a text: its usage
        elif variant == LONG:
            self.error(c, "message_too_long")
        elif target is None:
            self.error(c, "no_such_user")
        else:
            item = ("priv", c.name, target.name, shown)
            target.expected.append(item)
            if target is not c:
                c.expected.append(item)
        self.sync(c)

    @precondition(lambda self: len(self.registered) >= 2)
    @rule(data=st.data(), lines=st.lists(st.tuples(st.integers(0, MAX_CLIENTS - 1),
                                                   st.sampled_from([LOBBY, "room"])),
                                         min_size=2, max_size=8))
    def burst(self, data: st.DataObject, lines: list[tuple[int, str]]) -> None:
        """Several users talk at once (no waiting between lines): the server picks an order;
        every member of a room must see that room's messages in the same order, each
        sender's in the order it sent them, none lost, none twice, none elsewhere."""
        users = self.registered
        start = {c.cid: len(c.expected) for c in self.clients}
        sent: list[tuple[Client, str, str]] = []  # sender, room, text
        for who, where in lines:
            c = users[who % len(users)]
            assert c.name is not None
            text = self.text(" burst")
            if c.dialect == "seed":
                room = LOBBY
                c.wire.send(f"MSG|{text}")
            elif c.dialect == "raw":
                room = c.current
                c.wire.send(text)
            else:
                room = c.rooms[0] if where == "room" and c.rooms else LOBBY
                c.wire.send(f"MSG|{text}" if room == LOBBY else f"RMSG|{room}|{text}")
            sent.append((c, room, text))
            for member in self.members(room):
                if self.sees(member, room):
                    member.expected.append(("msg", room, c.name, "msg", text))
        STATS["burst lines"] += len(sent)

        def settle() -> None:
            order: dict[str, list[Item]] = {}  # the server's order of each room's messages
            for c in self.clients:
                k = start.get(c.cid, len(c.expected))
                got, want = c.observed[k:], c.expected[k:]
                assert Counter(got) == Counter(want), (
                    f"client {c.cid} ({c.dialect}, {c.name}), a burst:\n"
                    f"  observed: {got}\n  expected (in any order): {want}")
                for room in {item[1] for item in got}:
                    seen = [item for item in got if item[1] == room]
                    first = order.setdefault(room, seen)
                    assert seen == first, (f"#{room} in another order for client {c.cid}:\n"
                                           f"  {seen}\n  {first}")
                for sender in {item[2] for item in got}:  # each sender's order kept
                    mine = [item[4] for item in got if item[2] == sender]
                    assert mine == sorted(mine, key=lambda t: int(t[1:].split()[0])), (
                        f"{sender}'s lines reordered for client {c.cid}: {mine}")
                c.expected[k:] = got
            for room, items in order.items():
                self.shadow.history.setdefault(room, []).extend(
                    (str(i[2]), "msg", str(i[4])) for i in items)

        self.sync(actors=list({id(c): c for c, _, _ in sent}.values()), settle=settle)

    # ------------------------------------------------------------------ rules: leaving

    @precondition(lambda self: bool(self.clients))
    @rule(data=st.data(), how=st.sampled_from(["quit", "close", "reset"]))
    def leave(self, data: st.DataObject, how: str) -> None:
        """A client goes: politely (CMD_QUIT, /quit), or its connection just ends, closed
        (FIN) or reset (RST); a user whose connection ended may come back (reconnect)."""
        c = self.pick(data, self.clients)
        if how == "quit":
            c.wire.send("/quit bye" if c.dialect == "raw" and c.name else
                        "/quit" if c.dialect == "raw" else "CMD_QUIT|bye")
            c.absorb(c.wire.read_to_eof("quit"))
            self.check(c)
            return self._depart(c, "quit: bye")
        c.wire.close(rst=how == "reset")
        if c.name is not None:
            self.gone.append((c.dialect, c.name))
        self._depart(c, "connection lost" if how == "reset" else "disconnected")

    def _depart(self, c: Client, reason: str) -> None:
        self.clients.remove(c)
        name = c.name
        if name is not None:
            for r in list(c.rooms):
                for member in self.rooms[r]:
                    if member is not c:
                        member.expected.append(("part", r, name, reason))
                self._leave_room(c, r)
            for other in self.registered:
                other.expected.append(("part", LOBBY, name, reason))
            self.seed_dirty = True
            self.wait_gone(name)
        self.sync()

    @precondition(lambda self: self.seed_dirty)
    @rule()
    def settle(self) -> None:
        """Seed clients' coalesced user list catches up with the lobby."""
        STATS["settle"] += 1
        self.seed_dirty = False
        online = self.online()
        for c in self.registered:
            if c.dialect != "seed":
                continue
            deadline = time.monotonic() + WAIT
            while c.seed_ulist != online:
                assert time.monotonic() < deadline, (c.seed_ulist, online)
                time.sleep(0.02)
                c.absorb(barrier(c.wire))
        for c in self.clients:
            self.check(c)

    def teardown(self) -> None:
        """Everyone goes (also after a failure: the next example needs an empty server).
        After a failed example (or one hypothesis cut short) what the server stores may
        differ from the shadow: the next example gets a fresh server and a fresh shadow, so
        that each example hypothesis replays while shrinking starts from what it expects."""
        # (hypothesis stops an example that ran out of data at a draw: every draw comes
        # before a rule acts, so that leaves the model and the server in step)
        failed = sys.exc_info()[0] not in (None, StopTest)
        STATS["examples"] += 1
        STATS["steps"] += self.steps
        STATS["connections"] += self.next_cid
        for c in self.clients:
            with contextlib.suppress(OSError):
                c.wire.close(rst=failed)
        self.clients.clear()
        self.rooms.clear()
        if failed:
            STATS["fresh servers after a failure"] += 1
            self.probe.close(rst=True)
            SERVERS.restart()
            ChatModel.shadow = Shadow()
            return
        deadline = time.monotonic() + WAIT
        while self.server_view() != self.model_view():
            assert time.monotonic() < deadline, self.server_view()
            time.sleep(0.01)
        self.probe.close()


_RAW_YOU = re.compile(r"^\*\*\* You are (\S+)\. Type /nick")


class Servers:
    """The model's server: one for the run, a fresh one (new data directory) after a failed
    example. Each one must stop cleanly, and log no internal error."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.count = 0
        self.current = self._start()

    def _start(self) -> ServerProc:
        self.count += 1
        return ServerProc(self.root / f"data{self.count}", "--flood-rate", "0",
                          "--history", str(HISTORY), name="model")

    def restart(self) -> None:
        self.stop()
        self.current = self._start()

    def stop(self) -> None:
        server = self.current
        code = server.stop()
        assert code == 0, server.log()[-3000:]
        assert not internal_errors(server.log()), server.log()[-5000:]


SERVERS: Servers


@pytest.mark.timeout(600 + int(MINUTES * 60) + EXAMPLES * STEPS)
def test_every_view_matches_the_model(tmp_path: Path) -> None:
    global SERVERS
    SERVERS = Servers(tmp_path)
    ChatModel.shadow = Shadow()
    end = time.monotonic() + MINUTES * 60
    rounds = 0
    try:
        while True:  # one round (ci); rounds of new examples until the time is up (long)
            rounds += 1
            run_state_machine_as_test(
                ChatModel,
                settings=settings(
                    max_examples=EXAMPLES, stateful_step_count=STEPS, deadline=None,
                    suppress_health_check=list(HealthCheck), database=None,
                    derandomize=DERANDOMIZE, print_blob=True,
                ),
            )
            if time.monotonic() >= end:
                break
    finally:
        print(f"model run ({PROFILE}, {rounds} round(s) of {EXAMPLES} examples of at most "
              f"{STEPS} steps):", ", ".join(f"{k} {v}" for k, v in sorted(STATS.items())))
        SERVERS.stop()
