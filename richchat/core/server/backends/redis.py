"""The Redis backend: several server processes (nodes) serve one chat through one Redis.

Every event that changes the chat (a message, a join, a part, a topic, a registration, a
departure, a rename) is one Lua script (:mod:`.redis_scripts`): it changes the shared state
and appends the event to the chat's log stream in one atomic step. Every node reads the log
(``XREAD BLOCK``) and hands each event, its own included, to its fan-out in the log's order:
one order for the whole chat, so every client on every node sees each room's events in the
same order. A message is confirmed to its sender (its ``RMSG`` echo) only when the node reads
it back from the log: it is then in Redis.

* **Writes** go through one writer task, in the order the hub made them, as pipelines of
  script calls (one round trip per batch). Each event carries the node's sequence number;
  the script applies it only once, so a batch resent after a lost connection is harmless.
* **Ids and history**: a message's id comes from ``HINCRBY msgid ROOM`` in the same script
  (monotonic per room across nodes); it is also appended to the room's history stream, under
  the same stream id as in the log, trimmed to the retention. A node keeps the newest
  ``history`` messages of each room in memory (loaded from those streams when it starts, up
  to the log position it starts reading from, then fed by the log); a joiner's history is
  taken from there up to its join's place in the order (the node-local ``mark``), so it
  ends exactly where its live messages begin, on any node.
* **Names** are claimed in Redis (a hash, set-if-free by a script) and released by
  compare-and-delete; each node mirrors the cluster's registered users for the hub's
  synchronous look-ups. Presence: each node renews a heartbeat deadline every
  ``HEARTBEAT_S``; a node whose deadline passed (``NODE_TTL_S``) is reaped by whichever node
  holds the reaper lock: its users leave their rooms and the chat, their names are free.
* **Private messages** go to the inbox stream of the node holding the recipient; the sender
  sees its copy once Redis took it.
* **Losing Redis**: clients stay connected; they are told the chat is degraded, new messages
  are refused (``ERR|degraded``), other changes (joins, departures) wait in order; when Redis
  answers again the node resumes reading from its last log position (no gap) and says so.
  A node cut off longer than ``NODE_TTL_S`` was reaped meanwhile: its clients are
  disconnected (they reconnect and register again).

Only this module imports ``redis`` (redis-py's asyncio client), and only in this mode.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from richchat.core.errors import RedisUnavailableError
from richchat.core.protocol.codec import NOT_REDIS_TEXT
from richchat.core.protocol.text import name_key
from richchat.core.server import events as ev
from richchat.core.server.backends import NameHolder, Sink
from richchat.core.server.backends import redis_scripts as lua
from richchat.core.server.storage import StoredMessage

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from richchat.core.server.peer import Peer

log = logging.getLogger("richchat.server")

US = "\x1f"
#: seconds between heartbeats; a node silent for NODE_TTL_S is reaped (its users leave)
HEARTBEAT_S = 2.0
#: the longest a connection waits for its own change to come back from Redis (settled())
SETTLE_LIMIT_S = 5.0
NODE_TTL_S = 12.0
#: entries kept in the log stream: how far behind a node may fall (a lost connection) and
#: still catch up without a gap; a node cut off for longer is reaped long before that
LOG_MAXLEN = 100_000
#: events per round trip to Redis, in script calls of CHUNK events (a call holds Redis for
#: about CHUNK x 10 us: other nodes wait that long at most)
BATCH = 512
CHUNK = 128
#: entries per XREAD; the read blocks this many ms when there is nothing new
READ_COUNT = 2048
READ_BLOCK_MS = 2000
#: how long the node waits for any answer of Redis (a blocking read's time and some)
SOCKET_TIMEOUT_S = (READ_BLOCK_MS / 1000) + 8
#: seconds between attempts while Redis does not answer (doubling up to the last)
RETRY_DELAYS = (0.05, 0.1, 0.2, 0.5, 1.0)
DEGRADED_CODE = "degraded"
DEGRADED_TEXT = "the chat is degraded (its Redis does not answer); try again shortly"


class RedisConfig:
    """What a node needs to know about its cluster."""

    __slots__ = ("cluster", "history", "password", "retention", "url")

    def __init__(
        self,
        url: str,
        cluster: str,
        history: int,
        retention: int,
        password: str | None = None,
    ) -> None:
        self.url = url
        self.cluster = cluster
        self.history = history
        self.retention = retention
        #: used when the URL carries none (``RICHCHAT_REDIS_PASSWORD``)
        self.password = password


def key_prefix(cluster: str) -> str:
    """``richchat:{cluster}:``: the braces make every key of one chat one Redis Cluster slot."""
    return f"richchat:{{{cluster}}}:"


def redact(url: str) -> str:
    """The URL without its password, for messages and logs."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    creds, _, host = rest.rpartition("@")
    if ":" not in creds:  # a user name alone
        return url
    return f"{scheme}://{creds.split(':', 1)[0]}:***@{host}"


class _Op:
    __slots__ = ("args", "done", "seq")

    def __init__(
        self, seq: int, args: tuple[str, ...], done: Callable[[object], None] | None
    ) -> None:
        self.seq = seq
        self.args = args
        self.done = done


class _Tail:
    """The newest messages of a room: (mark, message), oldest first."""

    __slots__ = ("items",)

    def __init__(self, size: int) -> None:
        self.items: deque[tuple[int, StoredMessage]] = deque(maxlen=max(1, size))


class RedisBackend:
    def __init__(self, config: RedisConfig) -> None:
        self.config = config
        self.node = uuid.uuid4().hex[:12]
        self.prefix = key_prefix(config.cluster)
        self._origin = self.node + ":"
        self._sink: Sink = _drop
        self._redis: Redis | None = None
        self._apply_sha = self._heartbeat_sha = self._reap_sha = ""
        # names: the hub's view (local claims with their peer, remote registered users)
        self._names: dict[str, NameHolder] = {}
        self._owners: dict[str, tuple[Peer, str]] = {}  # local claims: key -> (peer, owner)
        self._node_of: dict[str, str] = {}  # remote users: key -> node
        self._rooms_of: dict[str, set[str]] = {}  # remote users: key -> rooms
        self._claims = 0
        # events of this node on their way through Redis, by sequence number
        self._seq = 0
        self._pending: dict[int, ev.Event] = {}
        #: how many of them each connection caused: [changes, messages and private messages]
        self._inflight: dict[Peer, list[int]] = {}
        #: connections waiting for their events to be applied (see settled())
        self._settle_waiters: dict[Peer, list[tuple[bool, asyncio.Future[None]]]] = {}
        #: how many times a connection had to wait for its own events (settled() returned
        #: an awaitable): the round trips through Redis its input waited for
        self.waits = 0
        self._queue: deque[_Op] = deque()
        self._wake = asyncio.Event()
        # reading
        self._log_id = "0-0"
        self._inbox_id = "0-0"
        self._marks = 0  # messages handed to the fan-out so far (a joiner's history ends here)
        self._tails: dict[str, _Tail] = {}
        self._topics: dict[str, tuple[str, str]] = {}
        self._boot: list[ev.Event] = []
        #: the chat's id, shared by every node (kept in Redis)
        self.cluster_id = ""
        self._tasks: list[asyncio.Task[None]] = []
        self._troubles: set[str] = set()
        self._closing = False
        #: set by the server: disconnect every client (the node was cut off and reaped)
        self.on_evicted: Callable[[str], None] | None = None
        self._evicted: set[Peer] = set()
        self._rejoining: asyncio.Future[None] | None = None

    # ------------------------------------------------------------------ lifecycle

    def bind(self, sink: Sink) -> None:
        self._sink = sink
        boot, self._boot = self._boot, []
        for event in boot:
            sink(event)
        self._start_tasks()

    async def open(self) -> None:
        from redis.asyncio import Redis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        url = self.config.url
        extra: dict[str, Any] = {}
        if self.config.password and not _has_password(url):
            extra["password"] = self.config.password
        try:
            self._redis = Redis.from_url(
                url,
                **extra,
                decode_responses=False,
                client_name=f"richchat-{self.node}",
                socket_connect_timeout=5,
                socket_timeout=SOCKET_TIMEOUT_S,
                retry=Retry(NoBackoff(), 0),
                max_connections=16,
            )
            await self._prepare()
        except Exception as exc:
            if self._redis is not None:
                with contextlib.suppress(Exception):
                    await self._redis.aclose()
                self._redis = None
            from redis.exceptions import AuthenticationError

            if isinstance(exc, AuthenticationError):
                where = (
                    "the URL's password" if _has_password(url)
                    else "the password (RICHCHAT_REDIS_PASSWORD)" if self.config.password
                    else None
                )  # fmt: skip
                reason = (
                    f"{where} was refused" if where else "it asks for a password and none was given"
                )
                raise RedisUnavailableError(
                    f"cannot use Redis at {redact(url)}: {reason}",
                    hint="give the password in the URL (redis://:PASSWORD@HOST:PORT/DB) or in "
                    "RICHCHAT_REDIS_PASSWORD",
                ) from None
            no_database = await _missing_database(exc, url, extra)
            if no_database is not None:
                raise RedisUnavailableError(
                    f"cannot use Redis at {redact(url)}: {no_database}",
                    hint="give --redis / RICHCHAT_REDIS a database it has "
                    "(redis://[:PASSWORD@]HOST:PORT/0), or raise databases in its redis.conf",
                ) from None
            not_redis = _not_redis(exc)
            if not_redis is not None:  # something answered, and it is not Redis
                raise RedisUnavailableError(
                    f"cannot use Redis at {redact(url)}: {not_redis}",
                    hint="give --redis / RICHCHAT_REDIS the chat's Redis: "
                    "redis://[:PASSWORD@]HOST:PORT/DB, port 6379 unless Redis was told otherwise",
                ) from None
            raise RedisUnavailableError(
                f"cannot use Redis at {redact(url)}: {_describe(exc)}",
                hint="start Redis, or check --redis / RICHCHAT_REDIS (redis://[:PASSWORD@]HOST:PORT/DB)",
            ) from None

    async def _prepare(self) -> None:
        r = self._redis
        assert r is not None
        await r.ping()
        self._apply_sha = await r.script_load(lua.APPLY)
        self._heartbeat_sha = await r.script_load(lua.HEARTBEAT)
        self._reap_sha = await r.script_load(lua.REAP)
        p = self.prefix
        await r.set(p + "id", uuid.uuid4().hex, nx=True)
        self.cluster_id = _s(await r.get(p + "id"))
        await r.evalsha(self._heartbeat_sha, 0, p, self.node, int(NODE_TTL_S * 1000), "1")
        snap = await r.eval(lua.SNAPSHOT, 0, p)
        last, users, rooms, topics, histrooms, registered = snap
        self._log_id = _s(last)
        entries: dict[str, tuple[str, str]] = {}
        values = {_s(users[i]): _s(users[i + 1]) for i in range(0, len(users), 2)}
        # the users as the chat registered them, as the nodes that saw it list them
        for key in _in_order(values, registered):
            node, name, entry = values[key].split(US, 2)
            entries[key] = (name, entry)
            self._names[key] = NameHolder(name, None)
            self._node_of[key] = node
            self._boot.append(ev.Registered(name, entry, None))
        for room_raw, members, joined in rooms:
            room = _s(room_raw)
            for key in _in_order([_s(k) for k in members], joined):
                user = entries.get(key)
                if user is not None:
                    self._rooms_of.setdefault(key, set()).add(room)
                    self._boot.append(ev.Joined(room, user[0], user[1], None))
        for i in range(0, len(topics), 2):
            setter, text = _s(topics[i + 1]).split(US, 1)
            self._topics[_s(topics[i])] = (setter, text)
        limit = self.config.history
        if limit > 0 and histrooms:
            pipe = r.pipeline(transaction=False)
            names = [_s(x) for x in histrooms]
            for room in names:
                pipe.xrevrange(p + "hist:" + room, self._log_id, "-", count=limit)
            for room, rows in zip(names, await pipe.execute(), strict=True):
                tail = self._tail(room)
                for _id, fields in reversed(rows):
                    tail.items.append((0, _stored(_s(fields[b"m"]))))

    async def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        r = self._redis
        if r is None:
            return
        # what the hub published last (the departures of a shutdown) still goes out
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._drained(), timeout=3.0)
        # a rejoin under way too: left running, it went on using the closed client (a retry
        # a second) until the event loop itself was closed, and then hung in redis-py's
        # cancelled read (a test's teardown waited 120 s for it)
        tasks = [*self._tasks, *([self._rejoining] if self._rejoining is not None else [])]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=2.0)
        # every step bounded: a Redis that does not answer never holds up a shutdown
        with contextlib.suppress(Exception):
            await asyncio.wait_for(r.eval(lua.LEAVE, 0, self.prefix, self.node), 2.0)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(r.aclose(), 2.0)
        self._redis = None

    async def _drained(self) -> None:
        while (self._queue or self._pending) and not self._troubles:
            await asyncio.sleep(0.01)

    @property
    def server_id(self) -> str:
        """This node (discovery lists each node; ``cluster_id`` groups them into one chat)."""
        return self.node

    @property
    def degraded(self) -> bool:
        return bool(self._troubles)

    def topics(self) -> dict[str, tuple[str, str]]:
        return dict(self._topics)

    # ------------------------------------------------------------------ names

    def claim_name(self, key: str, name: str, peer: Peer) -> bool | Awaitable[bool | None]:
        holder = self._names.get(key)
        if holder is not None:
            return holder.peer is peer
        self._claims += 1
        owner = f"{self.node}:{self._claims}"
        future: asyncio.Future[bool | None] = asyncio.get_running_loop().create_future()

        def done(result: object) -> None:
            ok = result == 1
            if ok:  # Redis has the last word (a remote holder's departure may still be on its way)
                self._names[key] = NameHolder(name, peer)
                self._owners[key] = (peer, owner)
                self._node_of.pop(key, None)
            if not future.done():  # None: Redis refused the write (out of memory, read-only)
                future.set_result(None if result is None else ok)

        self._enqueue(0, ("c", key, owner), done)
        return future

    def release_name(self, key: str, peer: Peer) -> None:
        held = self._owners.get(key)
        if held is None or held[0] is not peer:
            return
        del self._owners[key]
        self._names.pop(key, None)
        self._enqueue(0, ("x", key, held[1]), None)

    def lookup(self, key: str) -> NameHolder | None:
        return self._names.get(key)

    # ------------------------------------------------------------------ events

    def _count(self, peer: Peer, kind: int, delta: int) -> None:
        """One more (delta 1) or one fewer (-1) event of ``peer`` in flight; ``kind`` 0: a
        change (registration, join, part, topic, rename), 1: a message, 2: a private
        message to a user of another node (it goes through that node's inbox, not the log:
        the log does not order what the connection publishes next after it)."""
        counts = self._inflight.get(peer)
        if counts is None:
            if delta < 0:  # forgotten meanwhile (evicted, or waited for too long)
                return
            counts = self._inflight[peer] = [0, 0, 0]
        counts[kind] += delta
        if delta < 0:
            if counts[0] <= 0 and counts[1] <= 0 and counts[2] <= 0:
                del self._inflight[peer]
            if peer in self._settle_waiters:
                self._wake_settled(peer)

    def _track(self, seq: int, event: ev.Event) -> None:
        self._pending[seq] = event
        peer = _peer_of(event)
        if peer is not None:
            self._count(peer, 1 if type(event) is ev.Message else 0, 1)

    def _untrack(self, seq: int) -> ev.Event | None:
        """An event of this node is back from Redis, or failed: no longer in flight."""
        event = self._pending.pop(seq, None)
        if event is not None:
            peer = _peer_of(event)
            if peer is not None:
                self._count(peer, 1 if type(event) is ev.Message else 0, -1)
        return event

    def _is_settled(self, peer: Peer, messages: bool) -> bool:
        counts = self._inflight.get(peer)
        return counts is None or (
            counts[0] <= 0 and (not messages or (counts[1] <= 0 and counts[2] <= 0))
        )

    def unordered_in_flight(self, peer: Peer) -> bool:
        """True while a private message of ``peer`` to a user of another node is on its way
        (not the log: what ``peer`` publishes next must wait for it to be taken, or it could
        reach that user first). O(1), creates nothing."""
        if self._troubles:
            return False
        counts = self._inflight.get(peer)
        return counts is not None and counts[2] > 0

    def in_flight(self, peer: Peer) -> bool:
        """True while an event ``peer`` published (a change, a message, a private message) is
        on its way through Redis and the chat is not degraded: ``settled(peer, True)`` would
        return an awaitable. O(1), creates nothing."""
        return not self._troubles and not self._is_settled(peer, True)

    def settled(self, peer: Peer, messages: bool = False) -> Awaitable[None] | None:
        """None when every change ``peer`` made (with ``messages``: and every message it
        sent) is back from Redis and applied here; else an awaitable done once it is.

        A connection waits for this (with ``messages``) before a line that is answered from
        this node's view or at once (who is in a room, which rooms there are, a refusal, a
        pong, a quit: anything but :meth:`Hub.publishes_only
        <richchat.core.server.hub.Hub.publishes_only>`), so that its answer comes after those
        to the connection's own registration, join, part or message and sees them, in the
        order the lines were sent, as on one server; and before it is closed after its input
        ended. Lines that only publish (a join, a part, a message) do not wait: the log
        orders them after the connection's earlier events by itself. While the chat is
        degraded nobody waits (changes then wait for Redis, messages are refused at once)."""
        if self._troubles or self._is_settled(peer, messages):
            return None
        self.waits += 1
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._settle_waiters.setdefault(peer, []).append((messages, future))
        expiry = loop.call_later(SETTLE_LIMIT_S, self._settle_expired, peer, future)
        future.add_done_callback(lambda _: expiry.cancel())
        return future

    def _settle_expired(self, peer: Peer, future: asyncio.Future[None]) -> None:
        """An event of ``peer`` did not come back in time (the log trimmed before this node
        read it, a Redis that lost its last writes): stop counting its events, so that the
        connection goes on (its next answers may then come before that event)."""
        if future.done():
            return
        log.warning("events of %s not back from Redis after %g s: not waiting for them",
                    getattr(peer, "peer", "a connection"), SETTLE_LIMIT_S)
        self._inflight.pop(peer, None)
        self._wake_settled(peer)

    def _wake_settled(self, peer: Peer) -> None:
        keep = []
        for messages, future in self._settle_waiters.pop(peer, ()):
            if future.done():
                continue
            if self._is_settled(peer, messages):
                future.set_result(None)
            else:
                keep.append((messages, future))
        if keep:
            self._settle_waiters[peer] = keep

    def _wake_all_settled(self) -> None:
        waiters, self._settle_waiters = self._settle_waiters, {}
        for entries in waiters.values():
            for _messages, future in entries:
                if not future.done():
                    future.set_result(None)

    def post_message(
        self, room: str, ts: int, name: str, kind: str, text: str, sender: Peer | None
    ) -> None:
        msg = ev.Message(room, 0, ts, name, kind, text, sender)
        if self._troubles:
            self._refuse(msg)
            return
        self._seq += 1
        self._track(self._seq, msg)
        self._enqueue(
            self._seq,
            ("m", room, str(ts), name, kind, text),
            None,
        )

    def _refuse(self, msg: ev.Message) -> None:
        msg.failed = DEGRADED_TEXT
        msg.fail_code = DEGRADED_CODE
        self._sink(msg)

    def publish(self, event: ev.Event) -> None:
        kind = type(event)
        if kind is ev.PrivateMessage:
            self._private(event)  # type: ignore[arg-type]
            return
        if self._evicted and getattr(event, "peer", None) in self._evicted:
            if kind is ev.Departed:
                self._evicted.discard(event.peer)  # type: ignore[attr-defined]
            self._sink(event)  # the cluster forgot this user already: tidy the local view
            return
        args: tuple[str, ...]
        if kind is ev.Joined:
            e = event
            args = ("j", e.room, name_key(e.name), e.name, e.entry)  # type: ignore[attr-defined]
        elif kind is ev.Parted:
            e = event
            args = ("p", e.room, name_key(e.name), e.name, e.reason)  # type: ignore[attr-defined]
        elif kind is ev.TopicSet:
            e = event
            args = ("t", e.room, e.setter, e.text)  # type: ignore[attr-defined]
        elif kind is ev.Registered:
            e = event
            args = ("r", name_key(e.name), e.name, e.entry)  # type: ignore[attr-defined]
        elif kind is ev.Departed:
            e = event
            args = ("d", name_key(e.name), e.name, e.reason)  # type: ignore[attr-defined]
        elif kind is ev.Renamed:
            e = event
            args = (  # type: ignore[attr-defined]
                "n", name_key(e.old), name_key(e.new), e.old, e.new, e.entry,  # type: ignore[attr-defined]
            )  # fmt: skip
        else:  # notices and replies are this node's own business
            self._sink(event)
            return
        self._seq += 1
        self._track(self._seq, event)
        self._enqueue(self._seq, args, None)

    def _private(self, e: ev.PrivateMessage) -> None:
        if e.target_peer is not None:  # both on this node
            self._sink(e)
            return
        node = self._node_of.get(name_key(e.to))
        if node is None:
            return
        if self._troubles:
            if e.sender_peer is not None:
                self._sink(ev.Failure(e.sender_peer, DEGRADED_CODE, _DEGRADED_PRIVATE))
            return
        self._seq += 1
        sender = e.sender_peer
        if sender is not None:
            self._count(sender, 2, 1)  # its copy comes back like a message's echo

        def done(result: object) -> None:
            if result == 1 or result == b"dup":
                self._sink(e)  # the sender's copy: Redis has it
            elif sender is not None:
                self._sink(ev.Failure(sender, DEGRADED_CODE, _DEGRADED_PRIVATE))
            if sender is not None:
                self._count(sender, 2, -1)

        self._enqueue(self._seq, ("v", node, str(e.ts), e.sender, e.to, e.text), done)

    def set_topic(self, room: str, setter: str, text: str, ts: int) -> None:
        """Stored by the :class:`TopicSet` event's script, in order with the rest."""

    def mark(self) -> int:
        return self._marks

    def commit(self) -> None:
        """Nothing to do: a message reaches the fan-out only once Redis holds it."""

    def history(self, room: str, limit: int, mark: int) -> Sequence[StoredMessage]:
        tail = self._tails.get(room)
        if tail is None or limit <= 0:
            return ()
        items = [m for k, m in tail.items if k <= mark]
        return items[-limit:]

    def _tail(self, room: str) -> _Tail:
        tail = self._tails.get(room)
        if tail is None:
            tail = self._tails[room] = _Tail(self.config.history)
        return tail

    # ------------------------------------------------------------------ the writer

    def _enqueue(
        self, seq: int, args: tuple[str, ...], done: Callable[[object], None] | None
    ) -> None:
        self._queue.append(_Op(seq, args, done))
        self._wake.set()

    def _start_tasks(self) -> None:
        if self._tasks or self._redis is None:
            return
        for coro in (self._write_loop(), self._read_loop(), self._heartbeat_loop()):
            task = asyncio.create_task(coro)
            task.add_done_callback(_task_ended)
            self._tasks.append(task)

    async def _write_loop(self) -> None:
        r = self._redis
        assert r is not None
        head = (self.prefix, self.node)
        limits = (str(LOG_MAXLEN), str(self.config.retention))
        while True:
            if not self._queue:
                self._wake.clear()
                await self._wake.wait()
                continue
            n = min(len(self._queue), BATCH)
            batch = [self._queue.popleft() for _ in range(n)]
            chunks = [batch[i : i + CHUNK] for i in range(0, n, CHUNK)]
            attempt = 0
            while True:
                pipe = r.pipeline(transaction=False)
                for chunk in chunks:
                    args: list[object] = []
                    for op in chunk:
                        args += (op.args[0], op.seq, len(op.args) - 1, *op.args[1:])
                    last = max(op.seq for op in chunk)
                    pipe.execute_command("EVALSHA", self._apply_sha, 0, *head, last, *limits,
                                         *args)
                try:
                    replies = await pipe.execute(raise_on_error=False)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    if _is_noscript(exc):
                        await self._reload_scripts()
                        continue
                    attempt += 1
                    if attempt > 1:  # a second failure in a row: Redis is away
                        self._trouble("write", exc)
                        self._refuse_queued_messages()
                    await asyncio.sleep(RETRY_DELAYS[min(attempt, len(RETRY_DELAYS)) - 1])
                    continue
                if any(_is_noscript(x) for x in replies):
                    await self._reload_scripts()
                    continue  # every call of the batch again: the applied ones say "dup"
                break
            self._fine("write")
            for k, (chunk, reply) in enumerate(zip(chunks, replies, strict=True)):
                if reply == b"reaped":
                    self._evict()
                    for op in (op for rest in chunks[k:] for op in rest):
                        self._failed(op, "this server lost its place in the chat; reconnect")
                    break
                if isinstance(reply, Exception):
                    log.error("Redis refused %d event(s): %s", len(chunk), reply)
                    for op in chunk:
                        self._failed(op, _refusal(reply))
                    continue
                for op, result in zip(chunk, reply, strict=True):
                    if op.done is not None:
                        op.done(result)

    def _failed(self, op: _Op, reason: str) -> None:
        """Redis did not take this event: a message's sender is told, and so is a topic's
        setter (a topic shown on this node alone would split the chat's view for good: the
        other nodes and every later joiner keep the old one); anything else still applies to
        this node's own view (the hub decided it), a claim is refused."""
        event = self._untrack(op.seq) if op.seq else None
        if type(event) is ev.TopicSet:
            if event.peer is not None:
                self._sink(ev.Failure(event.peer, DEGRADED_CODE,
                                      f"the topic of #{event.room} was not set: {reason}; "
                                      "try again later"))
            event = None
        if type(event) is ev.Message:
            event.failed = reason
        if event is not None:
            self._sink(event)
        if op.done is not None:
            op.done(None)

    def _refuse_queued_messages(self) -> None:
        """Messages not sent to Redis yet are refused now (their senders are told); other
        changes keep their place and go out when Redis is back."""
        if not self._queue:
            return
        keep: deque[_Op] = deque()
        for op in self._queue:
            if op.args[0] == "m":
                msg = self._untrack(op.seq)
                if type(msg) is ev.Message:
                    self._refuse(msg)
            elif op.args[0] == "v" and op.done is not None:
                op.done(None)
            else:
                keep.append(op)
        self._queue = keep

    async def _reload_scripts(self) -> None:
        """Redis restarted without its scripts (they are not persisted): load them again."""
        r = self._redis
        assert r is not None
        with contextlib.suppress(Exception):
            self._apply_sha = await r.script_load(lua.APPLY)
            self._heartbeat_sha = await r.script_load(lua.HEARTBEAT)
            self._reap_sha = await r.script_load(lua.REAP)

    # ------------------------------------------------------------------ the reader

    async def _read_loop(self) -> None:
        r = self._redis
        assert r is not None
        log_key = (self.prefix + "log").encode()
        inbox_key = (self.prefix + "inbox:" + self.node).encode()
        attempt = 0
        while True:
            try:
                reply: Any = await r.xread(
                    {log_key: self._log_id, inbox_key: self._inbox_id},
                    count=READ_COUNT,
                    block=READ_BLOCK_MS,
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                attempt += 1
                if attempt > 1:
                    self._trouble("read", exc)
                await asyncio.sleep(RETRY_DELAYS[min(attempt, len(RETRY_DELAYS)) - 1])
                continue
            attempt = 0
            self._fine("read")
            for key, entries in reply or ():
                handle = self._on_log if key == log_key else self._on_inbox
                for entry_id, fields in entries:
                    try:
                        handle(fields[b"e"].decode())
                    except Exception:  # not ours, or damaged: skip it, never stop reading
                        log.exception("skipped a malformed entry %s of %s", entry_id, key)
                if key == log_key:
                    self._log_id = entries[-1][0].decode()
                else:
                    self._inbox_id = entries[-1][0].decode()

    def _own(self, origin: str) -> ev.Event | None:
        if origin.startswith(self._origin):
            return self._untrack(int(origin[len(self._origin):]))
        return None

    def _on_log(self, entry: str) -> None:
        """One event of the log: the chat's state changes, in its one order."""
        op, origin, rest = entry.split(US, 2)
        if op == "m":
            room, mid, ts, name, kind, text = rest.split(US, 5)
            msg = self._own(origin)
            if type(msg) is ev.Message:
                msg.id = int(mid)
            else:
                msg = ev.Message(room, int(mid), int(ts), name, kind, text, None)
            self._marks += 1
            if self.config.history > 0:
                self._tail(room).items.append(
                    (self._marks, StoredMessage(msg.id, room, msg.ts, name, kind, text))
                )
            self._sink(msg)
            return
        own = self._own(origin)
        event: ev.Event
        if op == "j":
            if own is not None:
                own.mark = self._marks  # type: ignore[attr-defined]
                event = own
            else:
                room, name, entry_ = rest.split(US, 2)
                self._rooms_of.setdefault(name_key(name), set()).add(room)
                event = ev.Joined(room, name, entry_, None)
        elif op == "p":
            if own is not None:
                event = own
            else:
                room, name, reason = rest.split(US, 2)
                self._rooms_of.get(name_key(name), set()).discard(room)
                event = ev.Parted(room, name, reason, None)
        elif op == "t":
            room, setter, text = rest.split(US, 2)
            self._topics[room] = (setter, text)
            event = own if own is not None else ev.TopicSet(room, setter, text)
        elif op == "r":
            if own is not None:
                own.mark = self._marks  # type: ignore[attr-defined]
                event = own
            else:
                name, entry_ = rest.split(US, 1)
                key = name_key(name)
                if key not in self._owners:
                    self._names[key] = NameHolder(name, None)
                    self._node_of[key] = origin.split(":", 1)[0]
                event = ev.Registered(name, entry_, None)
        elif op == "d":
            if own is not None:
                event = own
            else:
                name, reason = rest.split(US, 1)
                self._forget(name_key(name))
                event = ev.Departed(name, reason, None)
        elif op == "n":
            if own is not None:
                event = own
            else:
                old, new, entry_ = rest.split(US, 2)
                rooms = self._rooms_of.pop(name_key(old), None)
                node = self._forget(name_key(old)) or origin.split(":", 1)[0]
                key = name_key(new)
                if rooms:
                    self._rooms_of[key] = rooms
                if key not in self._owners:
                    self._names[key] = NameHolder(new, None)
                    self._node_of[key] = node
                event = ev.Renamed(old, new, entry_, None)
        else:
            log.warning("unknown event %r in the log", op)
            return
        self._sink(event)

    def _forget(self, key: str) -> str | None:
        """A remote user is gone: its name is free (a local holder is never touched)."""
        if key in self._owners:
            return None
        self._names.pop(key, None)
        self._rooms_of.pop(key, None)
        return self._node_of.pop(key, None)

    def _on_inbox(self, entry: str) -> None:
        _op, _origin, ts, sender, to, text = entry.split(US, 5)
        holder = self._names.get(name_key(to))
        if holder is None or holder.peer is None:
            return  # gone meanwhile
        self._sink(ev.PrivateMessage(int(ts), sender, holder.name, text, None, holder.peer))

    # ------------------------------------------------------------------ presence

    async def _heartbeat_loop(self) -> None:
        r = self._redis
        assert r is not None
        ttl = int(NODE_TTL_S * 1000)
        lock = int(HEARTBEAT_S * 1500)
        loop = asyncio.get_running_loop()
        # A node reaps others only once its own heartbeats have reached Redis for a whole
        # NODE_TTL_S: a deadline that passed while this node could not reach Redis either (Redis
        # stopped or restarted, this node cut off) says nothing about the other node, which
        # was waiting for Redis too and renews its deadline within HEARTBEAT_S of its return.
        heard_since = loop.time()
        failures = 0  # in a row
        while True:
            await asyncio.sleep(RETRY_DELAYS[0] if failures == 1 else HEARTBEAT_S)
            try:
                alive = await r.evalsha(self._heartbeat_sha, 0, self.prefix, self.node, ttl, "0")
                if alive == 0:
                    self._evict()
                if loop.time() - heard_since >= NODE_TTL_S:
                    reaped = await r.evalsha(
                        self._reap_sha, 0, self.prefix, self.node, lock, LOG_MAXLEN
                    )
                    if reaped:
                        log.warning(
                            "%d node(s) of the cluster stopped answering: their users left",
                            reaped,
                        )
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                heard_since = loop.time() + HEARTBEAT_S  # from the next heartbeat that works
                if _is_noscript(exc):
                    await self._reload_scripts()
                    continue
                failures += 1
                if failures > 1:  # a second failure in a row: Redis is away
                    self._trouble("heartbeat", exc)
                else:  # one failed call (a stale pooled connection): try again at once
                    log.info("a heartbeat failed (%s); trying again", _describe(exc))
            else:
                failures = 0
                self._fine("heartbeat")

    def _evict(self) -> None:
        """This node was reaped (cut off from Redis for longer than NODE_TTL_S, or Redis lost
        its data): the cluster has forgotten its users. They are disconnected, and reconnect
        and register again; the node joins the cluster anew."""
        if self._rejoining is not None:
            return  # being dealt with
        self._rejoining = asyncio.ensure_future(self._rejoin())
        peers = {holder.peer for holder in self._names.values() if holder.peer is not None}
        log.error("this node was dropped from the cluster; disconnecting its %d user(s)",
                  len(peers))
        self._evicted |= peers
        self._names = {k: h for k, h in self._names.items() if h.peer is None}
        self._owners.clear()
        pending, self._pending = self._pending, {}
        self._inflight.clear()
        self._wake_all_settled()
        self._queue.clear()
        for event in pending.values():
            if type(event) is ev.Message:
                event.failed = "this server lost its place in the chat; reconnect"
                self._sink(event)
            else:  # the reaper told the others; this node's own view still needs it
                self._sink(event)
        if self.on_evicted is not None:
            self.on_evicted("this server was cut off from the chat; please reconnect")

    async def _rejoin(self) -> None:
        r = self._redis
        assert r is not None
        try:
            while True:
                try:
                    await r.evalsha(
                        self._heartbeat_sha, 0, self.prefix, self.node,
                        int(NODE_TTL_S * 1000), "1",
                    )  # fmt: skip
                    log.warning("this node joined the cluster again")
                    cid = await r.get(self.prefix + "id")
                    if cid is None or _s(cid) != self.cluster_id:
                        await self._after_data_loss()
                    return
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    if _is_noscript(exc):
                        await self._reload_scripts()
                    else:
                        await asyncio.sleep(RETRY_DELAYS[-1])
        finally:
            self._rejoining = None

    async def _after_data_loss(self) -> None:
        """Redis lost the chat's data (restarted without it): every node was dropped, and no
        departure will ever come for the users the other nodes had; whom Redis does not know
        now is gone (a user registered since, on a node back before this one, stays)."""
        r = self._redis
        assert r is not None
        log.warning("the chat's data in Redis was lost: users of other nodes are forgotten")
        await r.set(self.prefix + "id", uuid.uuid4().hex, nx=True)
        new_id = _s(await r.get(self.prefix + "id"))
        known = {_s(k) for k in await r.hkeys(self.prefix + "users")}
        gone = [k for k, h in self._names.items() if h.peer is None and k not in known]
        for key in gone:
            name = self._names[key].name
            for room in sorted(self._rooms_of.get(key, ())):
                self._sink(ev.Parted(room, name, "connection lost", None))
            self._forget(key)
            self._sink(ev.Departed(name, "connection lost", None))
        await self._reload_history()
        # only now: if Redis failed meanwhile, the next attempt of _rejoin finds the id still
        # changed and does all of this again (set first, a failed reload was never retried and
        # the node served the history from before the loss for good)
        self.cluster_id = new_id

    async def _reload_history(self) -> None:
        """After a data loss, the rooms' history is what Redis holds now, as for a node that
        starts: the messages this node had read before were lost with the data (their ids
        start again at 1), and a node started since never saw them; served on, they made
        one chat's history differ from node to node."""
        limit = self.config.history
        r = self._redis
        if limit <= 0 or r is None:
            return
        # what the reader has handed on so far: Redis's history up to there replaces the
        # tails; what the reader appends meanwhile (marks after this one) is kept
        mark, upto = self._marks, self._log_id
        names = sorted(_s(x) for x in await r.smembers(self.prefix + "histrooms"))
        pipe = r.pipeline(transaction=False)
        for room in names:
            pipe.xrevrange(self.prefix + "hist:" + room, upto, "-", count=limit)
        fresh: dict[str, _Tail] = {}
        for room, rows in zip(names, await pipe.execute(), strict=True):
            tail = fresh[room] = _Tail(limit)
            for _id, fields in reversed(rows):
                tail.items.append((0, _stored(_s(fields[b"m"]))))
        for room, old in self._tails.items():
            later = [item for item in old.items if item[0] > mark]
            if later:
                fresh.setdefault(room, _Tail(limit)).items.extend(later)
        self._tails = fresh

    # ------------------------------------------------------------------ degraded mode

    def _trouble(self, part: str, exc: BaseException) -> None:
        was = bool(self._troubles)
        self._troubles.add(part)
        self._wake_all_settled()  # degraded: nobody waits for Redis (see settled())
        if not was:
            log.warning("Redis does not answer (%s): %s", part, _describe(exc))
            self._sink(ev.Notice(
                "The chat is degraded: this server lost its connection to the chat's "
                "database. New messages are refused until it is back."
            ))  # fmt: skip

    def _fine(self, part: str) -> None:
        if part in self._troubles:
            self._troubles.discard(part)
            if not self._troubles:
                log.warning("Redis answers again; the chat resumes")
                self._sink(ev.Notice("The chat is back: messages are delivered again."))


_DEGRADED_PRIVATE = "the chat is degraded: its Redis does not answer; private message not sent"


def _task_ended(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("the Redis backend's %s stopped", task.get_coro().__name__,  # type: ignore[union-attr]
                  exc_info=task.exception())


def _drop(event: ev.Event) -> None:
    raise RuntimeError("backend not bound to a fan-out")


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _stored(body: str) -> StoredMessage:
    room, mid, ts, name, kind, text = body.split(US, 5)
    return StoredMessage(int(mid), room, int(ts), name, kind, text)


def _is_noscript(exc: object) -> bool:
    """Redis restarted and forgot our scripts (they are loaded again, and the calls resent)."""
    from redis.exceptions import NoScriptError

    return isinstance(exc, NoScriptError)


def _has_password(url: str) -> bool:
    rest = url.partition("://")[2]
    creds = rest.rpartition("@")[0]
    return ":" in creds and bool(creds.split(":", 1)[1])


def _refusal(reply: Exception) -> str:
    """What users are told when Redis refused a write: Redis's own text (with the script's
    hash and line, ``OOM command not allowed when used memory > 'maxmemory'. script: 3f2a...,
    on @user_script:12.``) goes to the log, where its administrator looks."""
    # redis-py takes the error's code (OOM, READONLY) into the exception's class
    kind, text = type(reply).__name__, str(reply)
    if kind == "OutOfMemoryError" or text.startswith("OOM"):
        return "its Redis is out of memory"
    if kind == "ReadOnlyError" or text.startswith("READONLY"):
        return "its Redis is a read-only replica"
    return "its Redis refused to store it"


def _in_order(keys: Iterable[str], ordered: Sequence[Any]) -> list[str]:
    """``keys`` (from a hash or a set: any order) in the chat's order, ``ordered`` (a zset's
    keys, lowest number first); keys it lacks (written by an older version) come last."""
    rank = {_s(k): i for i, k in enumerate(ordered)}
    last = len(rank)
    return sorted(keys, key=lambda k: rank.get(k, last))


def _not_redis(exc: BaseException) -> str | None:
    """Why the address that answered is no Redis (None: nothing says so). A richchat chat
    server answers a Redis client with a RESP error of its own (:data:`NOT_REDIS_TEXT`);
    anything else that is not RESP (an HTTP or SSH server's first line) is redis-py's
    InvalidResponse (with hiredis: 'Protocol error, got "H" as reply type byte'); a server
    that closes at once (a TLS server given plain text) "Connection closed by server"; and
    ``rediss://`` at a server without TLS fails its handshake."""
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import InvalidResponse, ResponseError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    text = str(exc)
    if isinstance(exc, ResponseError) and text.strip() == NOT_REDIS_TEXT:
        return "the address answered, but it is a richchat chat server, not Redis"
    if isinstance(exc, RedisTimeoutError) and "Timeout reading" in text:
        # connected, and not a byte back in all that time: a Redis answers its first
        # command at once (even while it loads its data: with a LOADING error), unless it
        # is blocked (CLIENT PAUSE, a long script, a stopped process)
        return ("the address accepted the connection but did not answer in "
                f"{SOCKET_TIMEOUT_S:g} s: no Redis listens there, or a Redis that is blocked "
                "or paused")
    if isinstance(exc, InvalidResponse):
        return f"the address answered, but not as Redis does ({_describe(exc)})"
    if isinstance(exc, RedisConnectionError) and "Connection closed by server" in text:
        return ("the address answered, then closed the connection: no Redis (a TLS server? "
                "a Redis with TLS takes rediss://)")
    if isinstance(exc, RedisConnectionError) and "SSL" in text:
        return (f"the address answered, but not with TLS as rediss:// asks ({_describe(exc)}): "
                "a Redis without TLS takes redis://")
    return None


async def _missing_database(exc: BaseException, url: str, extra: dict[str, Any]) -> str | None:
    """Why Redis refused the URL's database (None: it did not): the database it was asked
    for and, asked again on database 0 (CONFIG GET databases, where allowed), how many it
    has. ``SELECT`` of a database past the last says only 'DB index is out of range'."""
    from redis.asyncio import Redis
    from redis.asyncio.connection import parse_url
    from redis.exceptions import ResponseError

    if not (isinstance(exc, ResponseError) and "DB index is out of range" in str(exc)):
        return None
    try:
        db = int(parse_url(url).get("db", 0))
    except (TypeError, ValueError):
        return f"Redis has no such database ({_describe(exc)})"
    count = 0
    with contextlib.suppress(Exception):  # not allowed (ACL, a renamed CONFIG): said less
        r = Redis.from_url(url, **extra, socket_connect_timeout=5, socket_timeout=5,
                           decode_responses=True)
        r.connection_pool.connection_kwargs["db"] = 0  # the URL's database wins over db=0
        try:
            got = await asyncio.wait_for(r.config_get("databases"), 10)
            count = int(str(got.get("databases") or 0))
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(r.aclose(), 2)
    if count > 0:
        return (f"Redis refused database {db}: it has {count} databases (0 to {count - 1}; "
                "databases in redis.conf)")
    return (f"Redis refused database {db}: it has fewer databases (databases in redis.conf; "
            "16 unless set)")


def _describe(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:200]


__all__ = ["RedisBackend", "RedisConfig", "key_prefix", "redact"]


def _peer_of(event: ev.Event) -> Peer | None:
    """The local connection an event of this node came from (None: none)."""
    if type(event) is ev.Message:
        return event.sender
    return getattr(event, "peer", None)  # type: ignore[no-any-return]
