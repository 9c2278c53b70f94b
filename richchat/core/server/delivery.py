"""The fan-out: events in order -> each recipient's bytes -> one write per client per flush.

The delivery keeps the *view*: who is in which room, the lobby's user list, topics, as of the
last event it dispatched. The hub decides; the backend orders; the delivery applies each event
to the view and queues its bytes on the connections that see it, rendering each event once per
dialect present (:mod:`.dialects`). Replies to one connection (errors, member lists, the room
state after a join) are rendered from the view at their place in the order, so they never
disagree with the events around them, and a joiner's history ends exactly where its live
messages begin.

Flush: everything published is dispatched and written at most once per ``FLUSH_INTERVAL``
when busy (at once when idle), first making the backend commit (history on disk before any
client sees a message), then writing each dirty connection once. A busy node of a cluster
whose passes write many clients spaces them further apart, as one server with all the
members of the room would (:meth:`Delivery.busy_cycle`). A pass over many clients is
written in slices (``FLUSH_CHUNK`` clients, and no longer than ``FLUSH_SLICE``) with an
event-loop iteration between slices: what arrives meanwhile is dispatched before the next
slice, so the clients the pass has not reached yet get it in the same write, and the others in
the next pass. A message that comes during a broadcast waits for at most the rest of one pass.
The time bound matters most on a node of a cluster: a message's way through Redis and back
crosses the event loop three or four times (its line read, the write to Redis, the log read
back, its dispatch), and each crossing waits for the slice being written; with slices of 128
clients whose writes hold many messages each (tens of µs per write at saturation) that was a
whole pass, and the senders, waiting for their echoes, sent fewer messages per pass.

Users on other nodes of a cluster (events with no local ``peer``) are in the view as
:class:`RemoteUser` records, beside the local connections and never among them: a broadcast
loops over local connections only, so a cluster costs the hot path nothing. Member lists
(``/who``, ``RLIST|``, ``ULIST|``, the room state after a join) show the cluster's one order,
the order its log applied the joins (the lobby: the registrations) on every node, as one
server lists its members: a room with members elsewhere keeps that order beside its local
members (:attr:`RoomView.order`), updated on joins and parts only.

Lobby presence (registrations, departures, renames) is batched: a burst of N registrations
walks the lobby once per flush, not N times (N^2 queue operations); each member gets the
changes made since it entered the lobby view.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

from richchat.core.protocol import frames as f
from richchat.core.protocol.text import DEFAULT_ROOM
from richchat.core.server import events as ev
from richchat.core.server.backends import Backend
from richchat.core.server.dialect import Dialect
from richchat.core.server.dialects import RENDERERS, Renderer
from richchat.core.server.storage import STORAGE_FAULTS, StoredMessage

if TYPE_CHECKING:
    from richchat.core.server.config import ServerConfig
    from richchat.core.server.peer import Peer

log = logging.getLogger("richchat.server")

#: a busy server flushes (commits history, writes to sockets) at most once per this many s
FLUSH_INTERVAL = 0.005
#: a slice of a pass writes at most this many connections, then lets the event loop run
FLUSH_CHUNK = 128
#: a cluster node spaces its busy passes at most this far apart (:meth:`Delivery.busy_cycle`)
CLUSTER_CYCLE_CAP = 0.025
#: a slice of a pass also ends once it has written for this long (s), checked every
#: SLICE_STEP connections: the event loop runs at least this often during a long pass
FLUSH_SLICE = 0.001
SLICE_STEP = 16

_HELLO, _SEED, _RAW = Dialect.HELLO, Dialect.SEED, Dialect.RAW
_RENDER: tuple[Renderer, ...] = tuple(r for r in RENDERERS if r is not None)
_H, _S, _R = RENDERERS[_HELLO], RENDERERS[_SEED], RENDERERS[_RAW]
assert _H is not None and _S is not None and _R is not None


class _InPass:
    """Stands for the flush handle while a pass is being written (nothing to cancel)."""

    def cancel(self) -> None:
        pass


_IN_PASS: asyncio.Handle = _InPass()  # type: ignore[assignment]


class RemoteUser:
    """A user connected to another node of the cluster (what lists show of it)."""

    __slots__ = ("entry", "name")

    def __init__(self, name: str, entry: str) -> None:
        self.name = name
        self.entry = entry


class RoomView:
    __slots__ = ("members", "name", "order", "remote", "setter", "topic")

    def __init__(self, name: str, setter: str = "", topic: str = "") -> None:
        self.name = name
        self.members: dict[Peer, None] = {}  # insertion-ordered set of local members
        #: members on other nodes of a cluster, by name
        self.remote: dict[str, RemoteUser] = {}
        #: while the room has members on other nodes: every member, here or there, in the
        #: order their joins were applied (the cluster's one order), which member lists
        #: show; None: ``members`` alone is that order (one server, or nobody elsewhere).
        #: Never kept for the lobby, listed in registration order (``Delivery._entries``).
        self.order: dict[Peer | RemoteUser, None] | None = None
        self.setter = setter
        self.topic = topic


class Delivery:
    def __init__(
        self, config: ServerConfig, backend: Backend, hello: Callable[[], f.Hello]
    ) -> None:
        self.config = config
        self.backend = backend
        self._hello = hello
        self.conns: set[Peer] = set()
        #: connections per dialect (index: Dialect), to render only the dialects in use
        self.dialect_counts = [0, 0, 0, 0]
        self._topics = backend.topics()
        self.rooms: dict[str, RoomView] = {DEFAULT_ROOM: self._room(DEFAULT_ROOM)}
        self.lobby = self.rooms[DEFAULT_ROOM]
        #: ULIST entries of registered users (connections here, RemoteUsers elsewhere in a
        #: cluster), in registration order
        self._entries: dict[Peer | RemoteUser, str] = {}
        #: registered users on other nodes, by name
        self._remote: dict[str, RemoteUser] = {}
        #: the names of this process's registered connections as of the last event
        #: dispatched (a rename later in the same batch is not theirs yet: see name_of)
        self._names: dict[Peer | RemoteUser, str] = {}
        self._ulist_cache: bytes | None = None
        self._ulist_handle: asyncio.TimerHandle | None = None
        #: events published, not dispatched yet
        self.outbox: list[ev.Event] = []
        #: presence changes not yet queued to the lobby: (hello, seed, raw) bytes each
        self._presence: list[tuple[bytes | None, bytes | None, bytes | None]] = []
        self._presence_seq = 0
        self._dirty: list[Peer] = []
        #: the pass being written (connections dirty when it began) and how far it got
        self._pass: list[Peer] = []
        self._pass_pos = 0
        self._flush_handle: asyncio.Handle | None = None
        self._loop = asyncio.get_running_loop()
        self._last_flush = 0.0
        #: a busy server's next pass starts no sooner than this long after the last began
        self._cycle = FLUSH_INTERVAL
        #: the widest room a message went to since the last pass: its members in the
        #: cluster over its members here (1.0: one server, or no room with remote members)
        self._spread = 1.0
        self.flushes = 0  # flush passes so far: the server's activity counter
        self._handlers: dict[type[ev.Event], Callable[[ev.Event], None]] = {
            ev.Message: self._message,  # type: ignore[dict-item]
            ev.Joined: self._joined,  # type: ignore[dict-item]
            ev.Parted: self._parted,  # type: ignore[dict-item]
            ev.TopicSet: self._topic_set,  # type: ignore[dict-item]
            ev.Registered: self._registered,  # type: ignore[dict-item]
            ev.Departed: self._departed,  # type: ignore[dict-item]
            ev.Renamed: self._renamed,  # type: ignore[dict-item]
            ev.PrivateMessage: self._private,  # type: ignore[dict-item]
            ev.FileOffered: self._file_offered,  # type: ignore[dict-item]
            ev.Notice: self._notice,  # type: ignore[dict-item]
            ev.Shutdown: self._shutdown,  # type: ignore[dict-item]
            ev.Welcome: self._reply,
            ev.Failure: self._reply,
            ev.Snapshot: self._reply,
            ev.NameIs: self._reply,
            ev.RoomState: self._reply,
            ev.Members: self._reply,
            ev.RoomListing: self._reply,
            ev.HelpText: self._reply,
            ev.TopicShown: self._reply,
            ev.NamePrompt: self._reply,
            ev.Pong: self._reply,
            ev.Ping: self._reply,
            ev.UploadReady: self._reply,
            ev.DownloadReady: self._reply,
            ev.FileListing: self._reply,
        }
        backend.bind(self.post)

    def _room(self, name: str) -> RoomView:
        setter, text = self._topics.get(name, ("", ""))
        return RoomView(name, setter, text)

    # ------------------------------------------------------------------ connections

    def attach(self, peer: Peer) -> None:
        self.conns.add(peer)
        self.dialect_counts[peer.dialect] += 1

    def set_dialect(self, peer: Peer, dialect: Dialect) -> None:
        if peer in self.conns:
            self.dialect_counts[peer.dialect] -= 1
            self.dialect_counts[dialect] += 1
        peer.dialect = int(dialect)

    def detach(self, peer: Peer) -> None:
        if peer in self.conns:
            self.conns.discard(peer)
            self.dialect_counts[peer.dialect] -= 1

    def queue(self, peer: Peer, data: bytes) -> None:
        """Queue bytes for one connection (written by the next flush)."""
        if peer.closed or not data:
            return
        if not peer.out:
            self._dirty.append(peer)
            if self._flush_handle is None:
                self._schedule_flush()
        peer.out.append(data)

    # ------------------------------------------------------------------ publishing

    def post(self, event: ev.Event) -> None:
        """An event in its final order (from the backend, or a reply from the hub)."""
        self.outbox.append(event)
        if self._flush_handle is None:
            self._schedule_flush()

    def _schedule_flush(self) -> None:
        """Flush on the next loop iteration, but no sooner than one cycle after the last
        pass began (FLUSH_INTERVAL; longer on a busy cluster node: :meth:`busy_cycle`).

        An idle server flushes at once; a busy one coalesces everything that arrives within
        the cycle into one commit and one write per client, so the cost of a commit and of a
        send() is shared by many messages.
        """
        loop = self._loop
        due = self._last_flush + self._cycle
        if loop.time() >= due:
            self._flush_handle = loop.call_soon(self._flush_step)
        else:
            self._flush_handle = loop.call_at(due, self._flush_step)

    def flush(self) -> None:
        """Dispatch and write everything now (shutdown, a closing connection)."""
        self._write_pass(None)

    def _flush_step(self) -> None:
        self._write_pass(FLUSH_CHUNK)

    def _dispatch(self) -> None:
        """Commit, then turn every published event into queued bytes, in order."""
        if not self.outbox:
            return
        self.backend.commit()
        handlers = self._handlers
        while self.outbox:
            events, self.outbox = self.outbox, []
            for event in events:
                try:
                    handlers[type(event)](event)
                except Exception:  # a bug of ours must cost one event, not the server
                    log.exception("could not deliver %s", type(event).__name__)
        if self._presence:
            self._settle()

    def _write_pass(self, limit: int | None) -> None:
        """Write the dirty connections, ``limit`` of them (None: all) before returning."""
        if self._flush_handle is not None:
            self._flush_handle.cancel()
        # what the dispatch below queues is written by this pass: schedule nothing meanwhile
        self._flush_handle = _IN_PASS
        self._dispatch()
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
            if limit is None:
                end = self._pass_pos = len(batch)
                for i in range(pos, end):
                    batch[i].flush_out()
                pos = end
                continue
            # a slice: at most ``limit`` connections, and no longer than FLUSH_SLICE
            end = min(len(batch), pos + limit)
            time = self._loop.time
            began = time()
            while pos < end:
                step = self._pass_pos = min(end, pos + SLICE_STEP)
                for i in range(pos, step):
                    batch[i].flush_out()
                pos = step
                if time() - began >= FLUSH_SLICE:
                    break
            break
        if pos < len(batch):
            self._flush_handle = self._loop.call_soon(self._flush_step)
            return
        self._flush_handle = None
        self._pass, self._pass_pos = [], 0
        if batch:  # a pass that wrote nothing says nothing of how long a pass takes
            took = self._loop.time() - self._last_flush
            self._cycle = self.busy_cycle(took, len(batch), self._spread)
            self._spread = 1.0
        if self._dirty or self.outbox:
            self._schedule_flush()

    @staticmethod
    def busy_cycle(took: float, written: int, spread: float) -> float:
        """The shortest time from a busy pass's start to the next one's, after a pass that
        wrote ``written`` connections in ``took`` seconds, ``spread`` being the widest room a
        message of it went to: that room's members in the whole cluster over its members here.

        One server: :data:`FLUSH_INTERVAL`; a pass over many clients takes longer, and what
        arrives meanwhile is combined into the next write to each client, so a server batches
        more the more clients it has. A node of a cluster writes to its own clients only: its
        pass over half a room's members takes half the time, so it would combine half as many
        messages per ``write()`` and pay twice the CPU per delivery (a ``write()`` costs about
        the same whatever it holds). A node whose pass wrote at least :data:`FLUSH_CHUNK`
        connections therefore spaces its passes as one server with all of that room's members
        would: the pass it just wrote, stretched by ``spread`` (at most
        :data:`CLUSTER_CYCLE_CAP`). A room whose members are all here, and a node writing
        fewer connections per pass (few writes to save; its users would only wait), keep
        :data:`FLUSH_INTERVAL`. The cycle counts from the start of the last pass: a message
        that comes after a quiet spell longer than the cycle goes out at once.
        """
        if spread <= 1.0 or written < FLUSH_CHUNK:
            return FLUSH_INTERVAL
        return min(CLUSTER_CYCLE_CAP, max(FLUSH_INTERVAL, took * spread))

    @property
    def flush_due(self) -> float | None:
        """The loop time of the next flush when one is scheduled for later (None: none, or
        on the next loop iteration)."""
        handle = self._flush_handle
        return handle.when() if isinstance(handle, asyncio.TimerHandle) else None

    @property
    def pass_began(self) -> float:
        """The loop time the last pass began."""
        return self._last_flush

    @property
    def pass_cycle(self) -> float:
        """The shortest time from the last pass's start to the next one's (see
        :meth:`busy_cycle`)."""
        return self._cycle

    @property
    def pass_progress(self) -> tuple[int, int]:
        """(connections written, connections in the pass being written): (0, 0) between
        passes. For tests of the chunked write."""
        return self._pass_pos, len(self._pass)

    # ------------------------------------------------------------------ fan-out

    def _fanout(
        self,
        peers: Iterable[Peer],
        hello: bytes | None,
        seed: bytes | None,
        raw: bytes | None,
        skip: Peer | None = None,
    ) -> None:
        """Queue the bytes of each recipient's dialect (None: that dialect gets nothing).

        The hot path of every broadcast, so :meth:`queue` is inlined here (the one other
        place that writes ``out`` and the dirty list)."""
        dirty = self._dirty
        was_clean = not dirty
        by_dialect = (None, hello, seed, raw)
        for p in peers:
            data = by_dialect[p.dialect]
            if data is None or p.closed or p is skip:
                continue
            out = p.out
            if not out:
                dirty.append(p)
            out.append(data)
        if was_clean and dirty and self._flush_handle is None:
            self._schedule_flush()

    def _render3(
        self, render: Callable[[Renderer], bytes | None]
    ) -> tuple[bytes | None, bytes | None, bytes | None]:
        """An event's bytes for each dialect that has connections."""
        counts = self.dialect_counts
        return (
            render(_H) if counts[_HELLO] else None,  # type: ignore[arg-type]
            render(_S) if counts[_SEED] else None,  # type: ignore[arg-type]
            render(_R) if counts[_RAW] else None,  # type: ignore[arg-type]
        )

    # ------------------------------------------------------------------ room events

    def _message(self, e: ev.Message) -> None:
        if self._presence:
            self._settle()
        if e.failed:
            if e.sender is not None:
                text = (
                    f"the server cannot store history ({e.failed})"
                    if e.fail_code == "not_stored"
                    else e.failed
                )
                self._reply(
                    ev.Failure(e.sender, e.fail_code, f"your message was not delivered: {text}")
                )
            return
        room = self.rooms.get(e.room)
        if room is None:
            return
        if room.remote and room.members:
            spread = (len(room.members) + len(room.remote)) / len(room.members)
            if spread > self._spread:
                self._spread = spread
        counts = self.dialect_counts
        self._fanout(
            room.members,
            _H.message(e) if counts[_HELLO] else None,  # type: ignore[union-attr]
            _S.message(e) if counts[_SEED] else None,  # type: ignore[union-attr]
            _R.message(e) if counts[_RAW] else None,  # type: ignore[union-attr]
        )

    def _joined(self, e: ev.Joined) -> None:
        if self._presence:
            self._settle()
        room = self.rooms.get(e.room)
        if room is None:
            room = self.rooms[e.room] = self._room(e.room)
        peer = e.peer
        if peer is not None and not peer.closed:
            room.members[peer] = None
            if room.order is not None:
                room.order[peer] = None
        elif peer is None:
            user = self._remote.get(e.name) or RemoteUser(e.name, e.entry)
            old = room.remote.get(e.name)
            room.remote[e.name] = user
            if room is not self.lobby:
                if room.order is None:  # the first member elsewhere: after those here
                    room.order = dict.fromkeys(room.members)
                if old is None or old is user:  # (joined again: it keeps its place)
                    room.order[user] = None
                else:  # the same name in a new record (should not happen): in its place
                    room.order = {(user if m is old else m): None for m in room.order}
        self._fanout(room.members, *self._render3(lambda r: r.joined(e)), skip=peer)
        if peer is not None and not peer.closed:
            r = self._renderer(peer)
            if r is not None:
                self.queue(peer, (r.joined_self(e) or b"") + r.room_state(self, peer, e.room,
                                                                           e.mark))

    def _parted(self, e: ev.Parted) -> None:
        if self._presence:
            self._settle()
        room = self.rooms.get(e.room)
        if room is None:
            return
        peer = e.peer
        self._fanout(room.members, *self._render3(lambda r: r.parted(e)), skip=peer)
        order = room.order
        if peer is not None:
            room.members.pop(peer, None)
            if order is not None:
                order.pop(peer, None)
            r = self._renderer(peer)
            if r is not None and not peer.closed:
                self.queue(peer, r.parted_self(e) or b"")
        else:
            user = room.remote.pop(e.name, None)
            if order is not None:
                if not room.remote:  # nobody elsewhere: the members here are in that order
                    room.order = None
                elif user is not None:
                    order.pop(user, None)
        if not room.members and not room.remote and room.name != DEFAULT_ROOM:
            del self.rooms[room.name]

    def _topic_set(self, e: ev.TopicSet) -> None:
        if self._presence:
            self._settle()
        self._topics[e.room] = (e.setter, e.text)
        room = self.rooms.get(e.room)
        if room is None:
            return
        room.setter, room.topic = e.setter, e.text
        self._fanout(room.members, *self._render3(lambda r: r.topic_set(e)))

    # ------------------------------------------------------------------ lobby presence

    def _registered(self, e: ev.Registered) -> None:
        peer = e.peer
        if peer is not None and not peer.closed:
            self._names[peer] = e.name
            r = self._renderer(peer)
            if r is not None:
                # the lobby as it was before this user: its own JOIN follows in the batch
                self.queue(peer, r.snapshot(self, peer, e.mark))
            peer.presence_seq = self._presence_seq
            self.lobby.members[peer] = None
            self._entries[peer] = e.entry
        elif peer is None:
            user = self._remote[e.name] = self.lobby.remote[e.name] = RemoteUser(e.name, e.entry)
            self._entries[user] = e.entry
        self._presence_change(self._render3(lambda r: r.registered(e)))

    def _departed(self, e: ev.Departed) -> None:
        peer = e.peer
        if peer is not None:
            self.lobby.members.pop(peer, None)
            self._entries.pop(peer, None)
            self._names.pop(peer, None)
        else:
            user = self._remote.pop(e.name, None)
            self.lobby.remote.pop(e.name, None)
            if user is not None:
                self._entries.pop(user, None)
        self._presence_change(self._render3(lambda r: r.departed(e)))

    def _renamed(self, e: ev.Renamed) -> None:
        peer = e.peer
        if peer is not None and peer in self._entries:
            self._entries[peer] = e.entry
            self._names[peer] = e.new
        elif peer is None:
            self._remote_renamed(e)
        self._presence_change(self._render3(lambda r: r.renamed(e)))

    def _remote_renamed(self, e: ev.Renamed) -> None:
        user = self._remote.pop(e.old, None)
        if user is None:
            return
        user.name, user.entry = e.new, e.entry
        self._remote[e.new] = user
        self._entries[user] = e.entry
        for view in self.rooms.values():  # the lobby included
            if view.remote.pop(e.old, None) is not None:
                view.remote[e.new] = user

    def _presence_change(self, blobs: tuple[bytes | None, bytes | None, bytes | None]) -> None:
        self._presence.append(blobs)
        self._presence_seq += 1
        self._ulist_cache = None
        if self._ulist_handle is None:
            self._ulist_handle = self._loop.call_later(self.config.ulist_delay, self._send_ulist)

    def _settle(self) -> None:
        """Queue the pending presence changes to the lobby members (one walk)."""
        pending = self._presence
        if not pending:
            return
        self._presence = []
        count = len(pending)
        base = self._presence_seq - count  # sequence number of pending[0]
        blobs: list[bytes | None] = [None]
        for d in (0, 1, 2):
            parts = [p[d] for p in pending]
            blobs.append(None if None in parts else b"".join(parts))  # type: ignore[arg-type]
        queue = self.queue
        for p in self.lobby.members:
            dialect = p.dialect
            if p.closed or dialect == Dialect.PENDING:
                continue
            skip = p.presence_seq - base
            if skip <= 0:
                data = blobs[dialect]
            elif skip < count:  # entered the lobby during this batch
                data = b"".join(q[dialect - 1] or b"" for q in pending[skip:])
            else:
                continue
            if data:
                queue(p, data)

    def _send_ulist(self) -> None:
        """Seed clients get one coalesced ``ULIST|`` after lobby changes."""
        self._ulist_handle = None
        self._dispatch()  # the list must not get ahead of the changes it reflects
        if not self.dialect_counts[_SEED]:
            return
        data = self.ulist()
        for p in self.lobby.members:
            if p.dialect == _SEED:
                self.queue(p, data)

    # ------------------------------------------------------------------ addressed events

    def _private(self, e: ev.PrivateMessage) -> None:
        if self._presence:
            self._settle()
        for peer, incoming in ((e.target_peer, True), (e.sender_peer, False)):
            if peer is None:
                continue
            r = self._renderer(peer)
            if r is not None:
                self.queue(peer, r.private(e, incoming))
            if e.target_peer is e.sender_peer:
                break

    def _file_offered(self, e: ev.FileOffered) -> None:
        """A file shared with a room (its members see it) or with one user (both see it).
        Netcat and seed users are told the ``richchat get`` command with the address they
        reach this server at, so their bytes are rendered per (dialect, address): offers are
        rare, and their recipients mostly share one address."""
        if self._presence:
            self._settle()
        if e.private:
            peers = (e.target_peer, e.sender_peer)
            if e.target_peer is e.sender_peer:
                peers = (e.target_peer, None)
        else:
            room = self.rooms.get(e.target)
            if room is None:
                return
            peers = tuple(room.members)  # type: ignore[assignment]
        rendered: dict[tuple[int, str], bytes | None] = {}
        for peer in peers:
            if peer is None or peer.closed:
                continue
            r = self._renderer(peer)
            if r is None:
                continue
            key = (int(peer.dialect), "" if peer.dialect == _HELLO else peer.local)
            if key not in rendered:
                rendered[key] = r.file_offered(e, key[1])
            data = rendered[key]
            if data:
                self.queue(peer, data)

    def _notice(self, e: ev.Notice) -> None:
        if self._presence:
            self._settle()
        blobs = self._render3(lambda r: r.notice(e.text))
        self._fanout(self.conns, *blobs)

    def _shutdown(self, e: ev.Shutdown) -> None:
        if self._presence:
            self._settle()
        self._fanout(self.conns, *self._render3(lambda r: r.shutdown(e)))

    def _reply(self, e: ev.Event) -> None:
        assert isinstance(e, ev.Reply)
        peer = e.peer
        if self._presence and peer in self.lobby.members:
            # its share of the pending lobby changes goes first; a connection that is not in
            # the lobby (not registered yet) gets none, so a burst of newcomers' welcomes does
            # not walk the lobby once each
            self._settle()
        r = self._renderer(peer)
        if r is None or peer.closed:
            return
        data: bytes | None
        if type(e) is ev.Failure:
            data = r.failure(e.code, e.text)
        elif type(e) is ev.Welcome:
            data = r.welcome(self, peer)
        elif type(e) is ev.Snapshot:
            data = r.snapshot(self, peer, e.mark)
        elif type(e) is ev.NameIs:
            data = r.name_is(e.name)
        elif type(e) is ev.RoomState:
            data = r.room_state(self, peer, e.room, e.mark)
        elif type(e) is ev.Members:
            if e.room in self.rooms:
                data = r.members(self, peer, e.room)
            else:
                data = r.failure("no_such_room", f"there is no room #{e.room}")
        elif type(e) is ev.RoomListing:
            data = r.room_listing(self)
        elif type(e) is ev.HelpText:
            data = r.help()
        elif type(e) is ev.TopicShown:
            data = r.topic_shown(self, e.room)
        elif type(e) is ev.NamePrompt:
            data = r.name_prompt(e.offered)
        elif type(e) is ev.Pong:
            data = r.pong(e.token)
        elif type(e) is ev.Ping:
            data = r.ping(e.token)
        elif type(e) is ev.UploadReady:
            data = r.upload_ready(e.sha256, e.token)
        elif type(e) is ev.DownloadReady:
            data = r.download_ready(e.offer, e.token, peer.local)
        elif type(e) is ev.FileListing:
            data = r.file_listing(e.target, e.offers, peer.local)
        else:  # pragma: no cover - every Reply subclass is listed above
            raise TypeError(f"no renderer for {type(e).__name__}")
        if data:
            self.queue(peer, data)

    @staticmethod
    def _renderer(peer: Peer) -> Renderer | None:
        return RENDERERS[peer.dialect]

    # ------------------------------------------------------------------ RenderContext

    @property
    def server_name(self) -> str:
        return self.config.name

    def server_hello(self) -> f.Hello:
        return self._hello()

    @property
    def users_online(self) -> int:
        return len(self._entries)

    def name_of(self, peer: Peer) -> str:
        """``peer``'s name as of the last event dispatched: a reply rendered now describes
        the chat as it was when its request was handled, not a rename the hub has already
        made for a later line of the same batch."""
        return self._names.get(peer) or peer.name or ""

    def lobby_names(self) -> list[str]:
        names = self._names
        return [n for p in self._entries if (n := names.get(p) or p.name)]

    def ulist(self) -> bytes:
        if self._ulist_cache is None:
            self._ulist_cache = f"ULIST|{','.join(self._entries.values())}\n".encode()
        return self._ulist_cache

    def member_entries(self, room: str) -> list[str] | None:
        """A room's members in join order (the lobby: registration order), as one server
        lists them; on a node of a cluster, in the cluster's one order, the same on every
        node (its members here and elsewhere interleaved as their joins came)."""
        view = self.rooms.get(room)
        if view is None:
            return None
        if view is self.lobby:
            return list(self._entries.values())
        entries = self._entries  # as of the last event dispatched (see name_of)
        return [entries.get(m, m.entry)
                for m in (view.members if view.order is None else view.order)]

    def member_names(self, room: str) -> list[str] | None:
        view = self.rooms.get(room)
        if view is None:
            return None
        if view is self.lobby:
            return self.lobby_names()
        names = self._names
        return [n for m in (view.members if view.order is None else view.order)
                if (n := names.get(m) or m.name)]

    def room_counts(self) -> list[tuple[str, int]]:
        rooms = sorted(self.rooms.values(), key=lambda v: (v.name != DEFAULT_ROOM, v.name))
        return [(v.name, len(v.members) + len(v.remote)) for v in rooms]

    def topic(self, room: str) -> tuple[str, str]:
        view = self.rooms.get(room)
        if view is not None:
            return view.setter, view.topic
        return self._topics.get(room, ("", ""))

    def history(self, room: str, mark: int) -> Sequence[StoredMessage]:
        limit = self.config.history
        if limit <= 0:
            return ()
        try:
            return self.backend.history(room, limit, mark)
        except STORAGE_FAULTS as exc:  # a damaged or locked file: the client joins without
            log.error("could not read the history of #%s (%s)", room, str(exc)[:120])
            return ()
        except Exception:
            log.exception("could not read the history of #%s", room)
            return ()


_ = _RENDER  # every dialect's renderer, built at import (no per-event construction)
