"""What every dialect provides: a renderer (events -> bytes) and an input parser (a client's
line -> a client frame for the hub), and the read-only context renderers draw on.

A renderer turns each event into the bytes its clients see, or None when its clients do not
see that event at all (seed clients see no room but the lobby). Fan-out events are rendered
once per dialect present, not once per recipient; replies are rendered for their one peer.
Renderers never write, never decide chat rules, and never touch a connection beyond reading
its identity and chat state.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from richchat.core.protocol import frames as f
from richchat.core.server import events as ev
from richchat.core.server.storage import StoredMessage

if TYPE_CHECKING:
    from richchat.core.server.peer import Peer


class RenderContext(Protocol):
    """Server facts and the delivery view, as of the event being rendered."""

    @property
    def server_name(self) -> str: ...

    def server_hello(self) -> f.Hello:
        """The ``HELLO`` this server answers with (name, users, TLS, features, limits)."""
        ...

    @property
    def users_online(self) -> int: ...

    def lobby_names(self) -> list[str]:
        """Registered users in registration order."""
        ...

    def name_of(self, peer: Peer) -> str:
        """``peer``'s name as of the event being rendered (not a later rename's)."""
        ...

    def ulist(self) -> bytes:
        """``ULIST|...`` of the lobby, cached between changes."""
        ...

    def member_entries(self, room: str) -> list[str] | None:
        """``name(host:port)`` of each member of ``room``; None when there is no such room."""
        ...

    def member_names(self, room: str) -> list[str] | None: ...

    def room_counts(self) -> list[tuple[str, int]]:
        """Every room (lobby first, then by name) with its number of members."""
        ...

    def topic(self, room: str) -> tuple[str, str]:
        """``(setter, text)`` of a room's topic; empty strings when none is set."""
        ...

    def history(self, room: str, mark: int) -> Sequence[StoredMessage]:
        """The newest messages of ``room`` up to ``mark`` (at most the configured count)."""
        ...


class Renderer:
    """Events -> bytes for one dialect. Subclasses override what their clients see."""

    # -- fan-out events: rendered once for every recipient of this dialect ---------------

    def message(self, e: ev.Message) -> bytes | None:
        raise NotImplementedError

    def joined(self, e: ev.Joined) -> bytes | None:
        """To the members of the room (the joiner included, see :meth:`joined_self`)."""
        return None

    def joined_self(self, e: ev.Joined) -> bytes | None:
        """What the joiner itself gets before its :meth:`room_state`."""
        return self.joined(e)

    def parted(self, e: ev.Parted) -> bytes | None:
        """To the members of the room, the one leaving included."""
        return None

    def parted_self(self, e: ev.Parted) -> bytes | None:
        return self.parted(e)

    def topic_set(self, e: ev.TopicSet) -> bytes | None:
        return None

    def registered(self, e: ev.Registered) -> bytes | None:
        raise NotImplementedError

    def departed(self, e: ev.Departed) -> bytes | None:
        raise NotImplementedError

    def renamed(self, e: ev.Renamed) -> bytes | None:
        raise NotImplementedError

    def private(self, e: ev.PrivateMessage, incoming: bool) -> bytes:
        """To the recipient (``incoming``) and, as its delivery confirmation, to the sender."""
        raise NotImplementedError

    def notice(self, text: str) -> bytes:
        raise NotImplementedError

    def shutdown(self, e: ev.Shutdown) -> bytes:
        return self.notice(e.text)

    # -- replies: rendered for one peer ---------------------------------------------------

    def welcome(self, ctx: RenderContext, peer: Peer) -> bytes:
        raise NotImplementedError

    def snapshot(self, ctx: RenderContext, peer: Peer, mark: int) -> bytes:
        raise NotImplementedError

    def name_is(self, name: str) -> bytes | None:
        return None

    def name_prompt(self, offered: str) -> bytes | None:
        """Ask for a name (only dialects whose users type their name at a prompt)."""
        return None

    def room_state(self, ctx: RenderContext, peer: Peer, room: str, mark: int) -> bytes:
        return b""

    def members(self, ctx: RenderContext, peer: Peer, room: str) -> bytes:
        raise NotImplementedError

    def room_listing(self, ctx: RenderContext) -> bytes:
        raise NotImplementedError

    def failure(self, code: str, text: str) -> bytes:
        return encode_frame(f.Error.model_construct(code=code, text=text))

    def help(self) -> bytes:
        return b""

    def topic_shown(self, ctx: RenderContext, room: str) -> bytes:
        """A room's topic asked for (``/topic`` alone, typed by a netcat user)."""
        return b""

    def pong(self, token: str) -> bytes:
        return encode_frame(f.Pong.model_construct(token=token))

    def ping(self, token: str) -> bytes:
        return encode_frame(f.Ping.model_construct(token=token))

    # -- files ----------------------------------------------------------------------------

    def file_offered(self, e: ev.FileOffered, address: str) -> bytes | None:
        """A shared file, to a room's members or to the two users of a private file.
        ``address``: where this recipient reaches the server (``host:port``)."""
        return None

    def upload_ready(self, sha256: str, token: str) -> bytes:
        return encode_frame(f.UploadReady.model_construct(sha256=sha256, token=token))

    def download_ready(self, offer: ev.FileOffered, token: str, address: str) -> bytes:
        return encode_frame(f.DownloadReady.model_construct(
            id=offer.id, token=token, size=offer.size, sha256=offer.sha256, name=offer.name))

    def file_listing(self, target: str, offers: Sequence[ev.FileOffered],
                     address: str) -> bytes:
        raise NotImplementedError


def encode_frame(frame: f.Frame) -> bytes:
    """One frame's bytes (:func:`richchat.core.protocol.codec.encode`, without its import)."""
    return (frame.line() + "\n").encode("utf-8")


def text_line(text: str) -> bytes:
    """A line of human-readable text (netcat clients)."""
    return (text + "\n").encode("utf-8")


def file_summary(e: ev.FileOffered) -> str:
    """``report.pdf (1.2 MB, sha256 3f2a9c0d1e2f)``: a file as people read it."""
    from richchat.core.protocol.filenames import human_size, short_sha

    return f"{e.name} ({human_size(e.size)}, sha256 {short_sha(e.sha256)})"


def get_command(address: str, file_id: str, *, token: str | None = None,
                room: str | None = None) -> str:
    """The ``richchat get`` command line that fetches a file from ``address``."""
    if token is not None:
        return f"richchat get {address} {file_id} --token {token}"
    where = f" --room {room}" if room and room != "lobby" else ""
    return f"richchat get {address} {file_id}{where} --nick NAME"
