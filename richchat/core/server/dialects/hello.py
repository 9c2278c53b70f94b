"""The hello dialect: richchat's own clients (``richchat join``, ``send``, ``scan``).

Input: every client frame, validated by the frame models. Output: every server frame, with
room names, message ids and timestamps, and incremental user-list updates (``JOIN``/``PART``/
``NICK``) instead of whole lists.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from richchat.core.constants import welcome_text
from richchat.core.protocol import frames as f
from richchat.core.protocol.codec import InvalidFrame, decode_client_line
from richchat.core.protocol.text import DEFAULT_ROOM
from richchat.core.server import events as ev
from richchat.core.server.dialects.base import RenderContext, Renderer, encode_frame
from richchat.core.server.storage import StoredMessage

if TYPE_CHECKING:
    from richchat.core.server.peer import Peer


def message_line(room: str, id: int, ts: int, name: str, kind: str, text: str) -> bytes:
    """``RMSG|room|id|ts|name|text`` (``ACTION|...`` for an emote).

    The hot path of every broadcast, written without building a model: the same bytes as
    ``encode(RoomMessage(...))`` / ``encode(Action(...))``, which a property test checks over
    every valid field value (tests/server/test_dialects.py). Every field was validated when
    the client's frame came in.
    """
    tag = "ACTION" if kind == "action" else "RMSG"
    return f"{tag}|{room}|{id}|{ts}|{name}|{text}\n".encode()


def stored_line(m: StoredMessage) -> bytes:
    return message_line(m.room, m.id, m.ts, m.name, m.kind, m.text)


def _notice(text: str) -> bytes:
    return encode_frame(f.Notice.model_construct(text=text))


class HelloRenderer(Renderer):
    def message(self, e: ev.Message) -> bytes:
        return message_line(e.room, e.id, e.ts, e.name, e.kind, e.text)

    def joined(self, e: ev.Joined) -> bytes:
        return f"JOIN|{e.room}|{e.entry}\n".encode()

    def parted(self, e: ev.Parted) -> bytes:
        return encode_frame(f.UserLeft.model_construct(room=e.room, name=e.name, reason=e.reason))

    def topic_set(self, e: ev.TopicSet) -> bytes:
        return encode_frame(f.Topic.model_construct(room=e.room, setter=e.setter, text=e.text))

    def registered(self, e: ev.Registered) -> bytes:
        return f"JOIN|{DEFAULT_ROOM}|{e.entry}\n".encode() + _notice(f"{e.name} joined")

    def departed(self, e: ev.Departed) -> bytes:
        part = f.UserLeft.model_construct(room=DEFAULT_ROOM, name=e.name, reason=e.reason)
        return encode_frame(part) + _notice(f"{e.name} left ({e.reason})")

    def renamed(self, e: ev.Renamed) -> bytes:
        nick = f.NickChanged.model_construct(old=e.old, new=e.new)
        return encode_frame(nick) + _notice(f"{e.old} is now known as {e.new}")

    def private(self, e: ev.PrivateMessage, incoming: bool) -> bytes:
        return encode_frame(
            f.Private.model_construct(ts=e.ts, sender=e.sender, to=e.to, text=e.text)
        )

    def notice(self, text: str) -> bytes:
        return _notice(text)

    def shutdown(self, e: ev.Shutdown) -> bytes:
        # the notice every dialect understands, then the signal a program acts on
        return _notice(e.text) + encode_frame(f.Bye.model_construct(code="shutdown", text=e.text))

    # -- replies

    def welcome(self, ctx: RenderContext, peer: Peer) -> bytes:
        # the lobby's user list too (what CMD_WHO|lobby tells anyone): a client can see that
        # a nickname is free before it takes one
        return (
            encode_frame(ctx.server_hello())
            + _notice(welcome_text(ctx.server_name))
            + ctx.ulist()
        )

    def snapshot(self, ctx: RenderContext, peer: Peer, mark: int) -> bytes:
        assert peer.name is not None
        parts = [stored_line(m) for m in ctx.history(DEFAULT_ROOM, mark)]
        parts.append(ctx.ulist())
        setter, text = ctx.topic(DEFAULT_ROOM)
        if text:
            parts.append(self._topic(DEFAULT_ROOM, setter, text))
        parts.append(encode_frame(f.You.model_construct(name=ctx.name_of(peer))))
        return b"".join(parts)

    def name_is(self, name: str) -> bytes:
        return encode_frame(f.You.model_construct(name=name))

    def room_state(self, ctx: RenderContext, peer: Peer, room: str, mark: int) -> bytes:
        parts = []
        setter, text = ctx.topic(room)
        if text:
            parts.append(self._topic(room, setter, text))
        parts += [stored_line(m) for m in ctx.history(room, mark)]
        parts.append(self.members(ctx, peer, room))
        return b"".join(parts)

    def members(self, ctx: RenderContext, peer: Peer, room: str) -> bytes:
        entries = ctx.member_entries(room) or []
        return f"RLIST|{room}|{','.join(entries)}\n".encode()

    def room_listing(self, ctx: RenderContext) -> bytes:
        body = ",".join(f"{room}:{count}" for room, count in ctx.room_counts())
        return f"ROOMS|{body}\n".encode()

    # -- files

    def file_offered(self, e: ev.FileOffered, address: str) -> bytes:
        return encode_frame(f.FileOffer.model_construct(
            id=e.id, ts=e.ts, target=e.target, sender=e.sender, size=e.size, sha256=e.sha256,
            name=e.name))

    def file_listing(self, target: str, offers: Sequence[ev.FileOffered],
                     address: str) -> bytes:
        parts = [encode_frame(f.FileInfo.model_construct(
            id=e.id, ts=e.ts, target=e.target, sender=e.sender, size=e.size, sha256=e.sha256,
            name=e.name)) for e in offers]
        parts.append(encode_frame(f.FileList.model_construct(target=target, count=len(offers))))
        return b"".join(parts)

    @staticmethod
    def _topic(room: str, setter: str, text: str) -> bytes:
        return encode_frame(f.Topic.model_construct(room=room, setter=setter, text=text))


def parse(line: str, peer: Peer) -> f.ClientFrame | InvalidFrame:
    """A hello client's line: a frame (anything else is refused by the hub)."""
    return decode_client_line(line)
