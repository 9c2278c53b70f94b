"""The seed dialect: clients written against the seed protocol (see :mod:`..dialect`).

They know four frames, ``MSG|``, ``SRV|``, ``ULIST|`` and ``CMD_USER|`` (plus ``ERR``/``PONG``),
live in the lobby (a frame naming another room is refused), and get a whole ``ULIST|`` after
user-list changes (coalesced by the delivery) instead of incremental updates. Those bytes are
the compatibility contract: kept exact.

Input rule: the seed protocol has clients write their own name in front of each message
(``MSG|alice: hello``); the sender's own label is dropped once before the server stamps the
line (:func:`richchat.core.protocol.seed.strip_own_label`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from richchat.core.constants import welcome_text
from richchat.core.protocol import frames as f
from richchat.core.protocol.codec import InvalidFrame, decode_client_line
from richchat.core.protocol.seed import strip_own_label
from richchat.core.protocol.text import DEFAULT_ROOM
from richchat.core.server import events as ev
from richchat.core.server.dialects.base import (
    RenderContext,
    Renderer,
    encode_frame,
    file_summary,
    get_command,
)
from richchat.core.server.storage import StoredMessage

if TYPE_CHECKING:
    from richchat.core.server.peer import Peer


def message_line(name: str, kind: str, text: str) -> bytes:
    """``MSG|name: text`` (an emote as ``SRV|* name text``); same bytes as the frame models'
    ``encode()`` (property-tested)."""
    if kind == "action":
        return f"SRV|* {name} {text}\n".encode()
    return f"MSG|{name}: {text}\n".encode()


def _notice(text: str) -> bytes:
    return encode_frame(f.Notice.model_construct(text=text))


def _stored(m: StoredMessage) -> bytes:
    return message_line(m.name, m.kind, m.text)


class SeedRenderer(Renderer):
    def message(self, e: ev.Message) -> bytes | None:
        if e.room != DEFAULT_ROOM:
            return None
        return message_line(e.name, e.kind, e.text)

    def topic_set(self, e: ev.TopicSet) -> bytes | None:
        if not e.text:
            return _notice(f"{e.setter} cleared the topic")
        return _notice(f"{e.setter} set the topic: {e.text}")

    def registered(self, e: ev.Registered) -> bytes:
        return _notice(f"{e.name} joined")

    def departed(self, e: ev.Departed) -> bytes:
        return _notice(f"{e.name} left ({e.reason})")

    def renamed(self, e: ev.Renamed) -> bytes:
        return _notice(f"{e.old} is now known as {e.new}")

    def private(self, e: ev.PrivateMessage, incoming: bool) -> bytes:
        if incoming:
            return _notice(f"private from {e.sender}: {e.text}")
        return _notice(f"private to {e.to}: {e.text}")

    def notice(self, text: str) -> bytes:
        return _notice(text)

    # -- replies

    def welcome(self, ctx: RenderContext, peer: Peer) -> bytes:
        return _notice(welcome_text(ctx.server_name))

    def snapshot(self, ctx: RenderContext, peer: Peer, mark: int) -> bytes:
        """History, the user list, then the lobby's topic when one is set (as every dialect
        gets it on registration; a seed client knows no ``TOPIC|`` frame: a notice)."""
        parts = [_stored(m) for m in ctx.history(DEFAULT_ROOM, mark)]
        parts.append(ctx.ulist())
        _setter, text = ctx.topic(DEFAULT_ROOM)
        if text:
            parts.append(_notice(f"Topic: {text}"))
        return b"".join(parts)

    def members(self, ctx: RenderContext, peer: Peer, room: str) -> bytes:
        return ctx.ulist()  # the only list seed clients know is the lobby's

    def room_listing(self, ctx: RenderContext) -> bytes:
        # a notice: ROOMS| is not a frame seed clients know
        rooms = ", ".join(f"#{room} ({count})" for room, count in ctx.room_counts())
        return _notice(f"Rooms: {rooms}")


    # -- files: seed clients see lobby and private offers as notices

    def file_offered(self, e: ev.FileOffered, address: str) -> bytes | None:
        if e.private:
            who = f"privately with {e.target[1:]}"
        elif e.target == DEFAULT_ROOM:
            who = "in the lobby"
        else:
            return None
        return _notice(f"{e.sender} shared {file_summary(e)} {who} [file {e.id}]; fetch it "
                       f"with: {get_command(address, e.id)}")

    def upload_ready(self, sha256: str, token: str) -> bytes:
        return self.failure("bad_command", "uploads need richchat send --file")

    def download_ready(self, offer: ev.FileOffered, token: str, address: str) -> bytes:
        return _notice(f"fetch {file_summary(offer)} once, within minutes, with: "
                       f"{get_command(address, offer.id, token=token)}")

    def file_listing(self, target: str, offers: Sequence[ev.FileOffered],
                     address: str) -> bytes:
        parts = [_notice(f"[file {e.id}] {file_summary(e)} from {e.sender}") for e in offers]
        parts.append(_notice(f"{len(offers)} file(s) in {target}"))
        return b"".join(parts)


#: frames that name a room; a seed client may name only the lobby
_ROOM_FRAMES = (f.JoinRoom, f.PartRoom, f.SayRoom, f.SendAction, f.SetTopic, f.Who)
_LOBBY_ONLY = InvalidFrame("", "bad_frame",
                           "seed clients stay in the lobby (send HELLO|1|AGENT first to use rooms)")


def parse(line: str, peer: Peer) -> f.ClientFrame | InvalidFrame:
    frame = decode_client_line(line)
    if isinstance(frame, f.Say) and peer.name is not None:
        text = strip_own_label(frame.text, peer.name)
        if text is not frame.text:
            return f.Say.model_construct(text=text)
    elif isinstance(frame, _ROOM_FRAMES) and frame.room != DEFAULT_ROOM:
        # It would be a member of a room it never sees: listed to everyone there, its lines
        # stored, no echo and no replies (seed clients are shown the lobby only).
        return _LOBBY_ONLY
    return frame
