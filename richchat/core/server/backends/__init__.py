"""The backend seam: where names, message ids, history, topics and the order of events live.

The hub (chat rules) asks a backend to claim names and to publish events; the backend stores
what must be stored, gives every event its place in one order per room, and hands the events
back, in that order, to the fan-out of every server process it serves (``bind``). The
embedded backend (:mod:`.embedded`: this process, SQLite) does all of it in memory and hands
events straight back; a networked backend (Redis streams) publishes them and hands back what
it reads, so the same hub and fan-out serve several processes.

Calls may complete later: :meth:`Backend.claim_name` may return an awaitable (a name claimed
across a cluster takes a round trip); the hub holds the client's further input until it is
done. Publishing never blocks the hub: events come back through the sink when they are
ordered (at once for the embedded backend).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Protocol

from richchat.core.server.events import Event
from richchat.core.server.storage import StoredMessage

if TYPE_CHECKING:
    from richchat.core.server.peer import Peer

Sink = Callable[[Event], None]


class NameHolder:
    """Who holds a name: its display form, and the connection when it is on this process."""

    __slots__ = ("name", "peer")

    def __init__(self, name: str, peer: Peer | None) -> None:
        self.name = name
        self.peer = peer


class Backend(Protocol):
    def bind(self, sink: Sink) -> None:
        """Where ordered events go (the fan-out of this process)."""
        ...

    async def open(self) -> None:
        """Connect/load; called once before the first client is accepted."""
        ...

    async def close(self) -> None:
        """Store what is pending and let go of every resource; safe to call twice."""
        ...

    @property
    def server_id(self) -> str:
        """A stable id of this chat (discovery tells servers apart by it)."""
        ...

    def topics(self) -> dict[str, tuple[str, str]]:
        """Every room's ``(setter, text)`` as stored (loaded by :meth:`open`)."""
        ...

    @property
    def degraded(self) -> bool:
        """The shared store is out of reach (a node of a cluster without its Redis): names
        cannot be claimed and messages are refused until it is back."""
        ...

    # -- names (keys are :func:`richchat.core.protocol.text.name_key` values)

    def claim_name(self, key: str, name: str, peer: Peer) -> bool | Awaitable[bool | None]:
        """Take ``key`` for ``peer`` if nobody holds it; True when taken (or already held by
        ``peer``), False when someone holds it, None when the chat's store could not decide
        (a cluster's Redis refused the write: the name may well be free)."""
        ...

    def release_name(self, key: str, peer: Peer) -> None:
        """Give ``key`` up, if ``peer`` still holds it (compare-and-delete)."""
        ...

    def lookup(self, key: str) -> NameHolder | None:
        """Who holds ``key`` now, if anyone."""
        ...

    # -- events

    def post_message(
        self, room: str, ts: int, name: str, kind: str, text: str, sender: Peer | None
    ) -> None:
        """A chat line: give it an id, store it, publish it. It reaches clients only once it
        is stored; if storing fails its sender is told instead (:attr:`Message.failed`)."""
        ...

    def publish(self, event: Event) -> None:
        """Any other event, in order with messages (sets the ``mark`` of joins)."""
        ...

    def settled(self, peer: Peer, messages: bool = False) -> Awaitable[None] | None:
        """None when every change ``peer`` published (with ``messages``: every message it
        sent too) has been applied to this process's view; else an awaitable done once it
        has. (One process applies them at once: always None.)"""
        ...

    def in_flight(self, peer: Peer) -> bool:
        """True while an event ``peer`` published (a change, a message, a private message) is
        not yet applied to this process's view, i.e. while ``settled(peer, messages=True)``
        would return an awaitable. O(1); always False for one process."""
        ...

    def unordered_in_flight(self, peer: Peer) -> bool:
        """True while an event ``peer`` published travels a way that what it publishes next
        is not ordered after (a cluster: a private message to another node's user, which
        goes through that node's inbox, not the log): its next line, even one that only
        publishes, waits until it is taken. O(1); always False for one process."""
        ...

    def set_topic(self, room: str, setter: str, text: str, ts: int) -> None:
        """Store a topic (the :class:`TopicSet` event is published separately)."""
        ...

    def mark(self) -> int:
        """The current position in the history (see :attr:`Joined.mark`)."""
        ...

    def commit(self) -> None:
        """Make published messages durable; called before anything queued reaches a socket."""
        ...

    def history(self, room: str, limit: int, mark: int) -> Sequence[StoredMessage]:
        """The newest ``limit`` messages of ``room`` up to ``mark``, oldest first."""
        ...
