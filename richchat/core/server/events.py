"""What the hub decides, as small immutable-by-convention records: the only thing that flows
from chat rules (:mod:`hub`) through a backend (:mod:`backend`) to the fan-out
(:mod:`delivery`), and from there into one renderer per dialect (:mod:`dialects`).

Three kinds, by audience:

* **room and lobby events** (:class:`Message`, :class:`Joined`, :class:`Parted`,
  :class:`TopicSet`, :class:`Registered`, :class:`Departed`, :class:`Renamed`): what happened
  in a room; every member sees it, in the order the backend gives (one order per room).
* **addressed events** (:class:`PrivateMessage`, :class:`Notice`): one or two users, or everyone.
  :class:`FileOffered` is a room event (``target`` a room) or an addressed one (``@user``).
* **replies** (subclasses of :class:`Reply`): an answer to one connection (an error, the room
  state after a join, a member list...). They are rendered when they are dispatched, from the
  delivery view at that point of the event order, so an answer never disagrees with the events
  around it.

Events name users by name; ``peer`` fields point at this process's connection when the user
is connected here (None for a user on another node of a cluster). ``mark`` fields are the
backend's position in the history when the event happened: the history a joiner receives ends
there, so nothing is both replayed and delivered live.

Plain classes with ``__slots__``, not pydantic models: the fan-out builds one per message and
every field was validated when the client's frame came in.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from richchat.core.server.peer import Peer


class Event:
    __slots__ = ()


# ----------------------------------------------------------------------------- rooms


class Message(Event):
    """A chat line (``kind`` "msg") or an emote ("action") in ``room``, with its history id."""

    __slots__ = ("fail_code", "failed", "id", "kind", "name", "room", "sender", "text", "ts")

    def __init__(
        self, room: str, id: int, ts: int, name: str, kind: str, text: str, sender: Peer | None
    ) -> None:
        self.room = room
        self.id = id
        self.ts = ts
        self.name = name
        self.kind = kind
        self.text = text
        self.sender = sender
        #: set by the backend when the message could not be stored: it is then not relayed,
        #: and its sender is told (a message nobody may rely on is never confirmed)
        self.failed = ""
        #: the ``ERR`` code its sender gets then (``degraded``: a cluster node without Redis)
        self.fail_code = "not_stored"


class Joined(Event):
    """``name`` joined ``room`` (not the lobby: see :class:`Registered`)."""

    __slots__ = ("entry", "mark", "name", "peer", "room")

    def __init__(self, room: str, name: str, entry: str, peer: Peer | None) -> None:
        self.room = room
        self.name = name
        self.entry = entry  # name(host:port), as in user lists
        self.peer = peer
        self.mark = 0


class Parted(Event):
    """``name`` left ``room`` (``reason`` "left" for /leave; a disconnect's reason otherwise)."""

    __slots__ = ("fallback", "name", "peer", "reason", "room")

    def __init__(
        self, room: str, name: str, reason: str, peer: Peer | None, fallback: bool = False
    ) -> None:
        self.room = room
        self.name = name
        self.reason = reason
        self.peer = peer
        #: the room was the user's current room; plain lines now go to the lobby
        self.fallback = fallback


class TopicSet(Event):
    __slots__ = ("peer", "room", "setter", "text")

    def __init__(self, room: str, setter: str, text: str, peer: Peer | None = None) -> None:
        self.room = room
        self.setter = setter
        self.text = text
        #: the setter's connection on this node (None: set on another node), told when a
        #: backend could not store the topic
        self.peer = peer


# ----------------------------------------------------------------------------- lobby presence


class Registered(Event):
    """A connection took a name: it is now in the lobby and in every user list."""

    __slots__ = ("entry", "mark", "name", "peer")

    def __init__(self, name: str, entry: str, peer: Peer | None) -> None:
        self.name = name
        self.entry = entry
        self.peer = peer
        self.mark = 0


class Departed(Event):
    """A registered user left the server (quit, lost connection, timed out, dropped)."""

    __slots__ = ("name", "peer", "reason")

    def __init__(self, name: str, reason: str, peer: Peer | None) -> None:
        self.name = name
        self.reason = reason
        self.peer = peer


class Renamed(Event):
    __slots__ = ("entry", "new", "old", "peer")

    def __init__(self, old: str, new: str, entry: str, peer: Peer | None) -> None:
        self.old = old
        self.new = new
        self.entry = entry
        self.peer = peer


PRESENCE = (Registered, Departed, Renamed)

# ----------------------------------------------------------------------------- addressed


class PrivateMessage(Event):
    """From ``sender`` to ``to``; shown to both (the echo confirms delivery). Never stored."""

    __slots__ = ("sender", "sender_peer", "target_peer", "text", "to", "ts")

    def __init__(
        self,
        ts: int,
        sender: str,
        to: str,
        text: str,
        sender_peer: Peer | None,
        target_peer: Peer | None,
    ) -> None:
        self.ts = ts
        self.sender = sender
        self.to = to
        self.text = text
        self.sender_peer = sender_peer
        self.target_peer = target_peer


class FileOffered(Event):
    """``sender`` shared a file (stored and verified by the server) with a room (``target``
    is the room) or with one user (``target`` is ``@`` + the name). Plain values only, like
    every event, so a networked backend can carry it; the peers are this process's
    connections of the two users of a private file, when they are here."""

    __slots__ = ("id", "name", "sender", "sender_peer", "sha256", "size", "target",
                 "target_peer", "ts")

    def __init__(
        self,
        id: str,
        ts: int,
        target: str,
        sender: str,
        size: int,
        sha256: str,
        name: str,
        sender_peer: Peer | None = None,
        target_peer: Peer | None = None,
    ) -> None:
        self.id = id
        self.ts = ts
        self.target = target
        self.sender = sender
        self.size = size
        self.sha256 = sha256
        self.name = name
        self.sender_peer = sender_peer
        self.target_peer = target_peer

    @property
    def private(self) -> bool:
        return self.target.startswith("@")


class Notice(Event):
    """A server notice to every connection that speaks (``SRV|text``, ``*** text``)."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


class Shutdown(Event):
    """The server is going away: a notice, and for hello clients an explicit ``BYE``."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


# ----------------------------------------------------------------------------- replies


class Reply(Event):
    """An answer to one connection."""

    __slots__ = ("peer",)

    def __init__(self, peer: Peer) -> None:
        self.peer = peer


class Welcome(Reply):
    """The first answer once the dialect is known: server name, version, users online."""

    __slots__ = ()


class Failure(Reply):
    """A request was refused: ``ERR|code|text`` / ``*** Error: text``."""

    __slots__ = ("code", "text")

    def __init__(self, peer: Peer, code: str, text: str) -> None:
        super().__init__(peer)
        self.code = code
        self.text = text


class Snapshot(Reply):
    """What a newly registered user is given: its name, the lobby's history (up to ``mark``),
    user list and topic."""

    __slots__ = ("mark",)

    def __init__(self, peer: Peer, mark: int) -> None:
        super().__init__(peer)
        self.mark = mark


class NameIs(Reply):
    """Your name is (still) ``name``: a rename to the same name, or a name confirmed."""

    __slots__ = ("name",)

    def __init__(self, peer: Peer, name: str) -> None:
        super().__init__(peer)
        self.name = name


class RoomState(Reply):
    """A room's topic, history (up to ``mark``) and members, after a join."""

    __slots__ = ("mark", "room")

    def __init__(self, peer: Peer, room: str, mark: int) -> None:
        super().__init__(peer)
        self.room = room
        self.mark = mark


class Members(Reply):
    """The members of ``room`` (``/who``, ``/users``)."""

    __slots__ = ("room",)

    def __init__(self, peer: Peer, room: str) -> None:
        super().__init__(peer)
        self.room = room


class RoomListing(Reply):
    """Every room with its member count (``/rooms``)."""

    __slots__ = ()


class HelpText(Reply):
    __slots__ = ()


class TopicShown(Reply):
    """The topic of ``room``, asked for by a netcat user (``/topic`` alone)."""

    __slots__ = ("room",)

    def __init__(self, peer: Peer, room: str) -> None:
        super().__init__(peer)
        self.room = room


class NamePrompt(Reply):
    """Ask a connection for a name, offering ``offered`` for an empty answer (netcat users)."""

    __slots__ = ("offered",)

    def __init__(self, peer: Peer, offered: str) -> None:
        super().__init__(peer)
        self.offered = offered


class Pong(Reply):
    __slots__ = ("token",)

    def __init__(self, peer: Peer, token: str) -> None:
        super().__init__(peer)
        self.token = token


class Ping(Reply):
    __slots__ = ("token",)

    def __init__(self, peer: Peer, token: str) -> None:
        super().__init__(peer)
        self.token = token


class UploadReady(Reply):
    """Send the bytes of file ``sha256`` on a transfer connection presenting ``token``."""

    __slots__ = ("sha256", "token")

    def __init__(self, peer: Peer, sha256: str, token: str) -> None:
        super().__init__(peer)
        self.sha256 = sha256
        self.token = token


class DownloadReady(Reply):
    """Fetch file ``offer.id`` on a transfer connection presenting ``token``."""

    __slots__ = ("offer", "token")

    def __init__(self, peer: Peer, offer: FileOffered, token: str) -> None:
        super().__init__(peer)
        self.offer = offer
        self.token = token


class FileListing(Reply):
    """The files shared in a room or between two users (``/files``), oldest first."""

    __slots__ = ("offers", "target")

    def __init__(self, peer: Peer, target: str, offers: tuple[FileOffered, ...]) -> None:
        super().__init__(peer)
        self.target = target
        self.offers = offers
