"""The raw dialect: people with ``nc``, ``ncat`` or ``telnet``.

Input: plain lines are chat in the user's current room (``//text`` sends a line that starts
with ``/``); slash commands (:mod:`richchat.core.protocol.slash`) become the same frames our
own client sends. Output: human-readable lines; notices start with ``*** ``, messages from
rooms other than the lobby with ``[room] ``, history lines with their time.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from richchat.core.constants import welcome_text
from richchat.core.protocol import frames as f
from richchat.core.protocol.codec import InvalidFrame, decode_client_line
from richchat.core.protocol.slash import (
    CLEAR_TOPIC,
    HELP_LINES,
    HelpRequest,
    SlashError,
    parse_slash,
)
from richchat.core.protocol.text import DEFAULT_ROOM
from richchat.core.server import events as ev
from richchat.core.server.dialects.base import (
    RenderContext,
    Renderer,
    file_summary,
    get_command,
    text_line,
)
from richchat.core.server.storage import StoredMessage

if TYPE_CHECKING:
    from richchat.core.server.peer import Peer


def message_text(room: str, name: str, kind: str, text: str, ts: int | None = None) -> str:
    stamp = datetime.fromtimestamp(ts / 1000).strftime("[%H:%M] ") if ts is not None else ""
    prefix = "" if room == DEFAULT_ROOM else f"[{room}] "
    if kind == "action":
        return f"{stamp}{prefix}* {name} {text}"
    return f"{stamp}{prefix}{name}: {text}"


def _stored(m: StoredMessage) -> bytes:
    return text_line(message_text(m.room, m.name, m.kind, m.text, m.ts))


def _notice(text: str) -> bytes:
    return text_line(f"*** {text}")


class RawRenderer(Renderer):
    def message(self, e: ev.Message) -> bytes:
        return text_line(message_text(e.room, e.name, e.kind, e.text))

    def joined(self, e: ev.Joined) -> bytes:
        return _notice(f"{e.name} joined #{e.room}")

    def joined_self(self, e: ev.Joined) -> None:
        return None  # the room state says "You are in #room"

    def parted(self, e: ev.Parted) -> bytes:
        if e.reason == "left":
            return _notice(f"{e.name} left #{e.room}")
        return _notice(f"{e.name} left #{e.room} ({e.reason})")

    def parted_self(self, e: ev.Parted) -> bytes:
        line = self.parted(e)
        if e.fallback:
            line += _notice(f"Plain lines now go to #{DEFAULT_ROOM}")
        return line

    def topic_set(self, e: ev.TopicSet) -> bytes:
        if not e.text:  # /topic --clear: not a topic set to nothing
            return _notice(f"{e.setter} cleared the topic of #{e.room}")
        return _notice(f"{e.setter} set the topic of #{e.room}: {e.text}")

    def registered(self, e: ev.Registered) -> bytes:
        return _notice(f"{e.name} joined")

    def departed(self, e: ev.Departed) -> bytes:
        return _notice(f"{e.name} left ({e.reason})")

    def renamed(self, e: ev.Renamed) -> bytes:
        return _notice(f"{e.old} is now known as {e.new}")

    def private(self, e: ev.PrivateMessage, incoming: bool) -> bytes:
        if incoming:
            return text_line(f"*{e.sender}* (private): {e.text}")
        return text_line(f"-> *{e.to}*: {e.text}")

    def notice(self, text: str) -> bytes:
        return _notice(text)

    # -- replies

    def welcome(self, ctx: RenderContext, peer: Peer) -> bytes:
        return _notice(f"{welcome_text(ctx.server_name)}. {ctx.users_online} user(s) online.")

    def snapshot(self, ctx: RenderContext, peer: Peer, mark: int) -> bytes:
        parts = [_stored(m) for m in ctx.history(DEFAULT_ROOM, mark)]
        me = ctx.name_of(peer)
        names = ", ".join(n for n in ctx.lobby_names() if n != me) or "nobody yet"
        parts.append(_notice(f"Users online: {names}"))
        _setter, text = ctx.topic(DEFAULT_ROOM)
        if text:
            parts.append(_notice(f"Topic: {text}"))
        parts.append(
            _notice(f"You are {me}. Type /nick NAME to change it, /help for commands.")
        )
        return b"".join(parts)

    def room_state(self, ctx: RenderContext, peer: Peer, room: str, mark: int) -> bytes:
        names = ctx.member_names(room) or []
        parts = [
            _notice(
                f"You are in #{room} ({len(names)} member(s)); plain lines now go there"
            )
        ]
        _setter, text = ctx.topic(room)
        if text:
            parts.append(_notice(f"Topic of #{room}: {text}"))
        parts += [_stored(m) for m in ctx.history(room, mark)]
        parts.append(self.members(ctx, peer, room))
        return b"".join(parts)

    def members(self, ctx: RenderContext, peer: Peer, room: str) -> bytes:
        return _notice(f"Members of #{room}: {', '.join(ctx.member_names(room) or [])}")

    def topic_shown(self, ctx: RenderContext, room: str) -> bytes:
        setter, text = ctx.topic(room)
        said = (f"The topic of #{room} is: {text} (set by {setter})." if text
                else f"#{room} has no topic.")
        return _notice(f"{said} /topic TEXT sets it, /topic {CLEAR_TOPIC} clears it.")

    def room_listing(self, ctx: RenderContext) -> bytes:
        rooms = ", ".join(f"#{room} ({count})" for room, count in ctx.room_counts())
        return _notice(f"Rooms: {rooms}")

    def failure(self, code: str, text: str) -> bytes:
        return _notice(f"Error: {text}")

    def name_prompt(self, offered: str) -> bytes:
        return _notice(f"Type a nickname, or press Enter to be {offered}:")

    def help(self) -> bytes:
        return b"".join(_notice(line) for line in HELP_LINES)

    # -- files: netcat users fetch with ``richchat get`` (the command is spelt out)

    def file_offered(self, e: ev.FileOffered, address: str) -> bytes:
        if e.private:
            head = f"{e.sender} shared {file_summary(e)} with {e.target[1:]} [file {e.id}]"
            how = f"To fetch it: /get {e.id} (prints a one-time richchat get command)"
        else:
            where = "" if e.target == DEFAULT_ROOM else f" in #{e.target}"
            head = f"{e.sender} shared {file_summary(e)}{where} [file {e.id}]"
            how = (f"To fetch it: /get {e.id} (prints a one-time command), or run "
                   f"{get_command(address, e.id, room=e.target)}")
        return _notice(head) + _notice(how)

    def upload_ready(self, sha256: str, token: str) -> bytes:
        return self.failure("bad_command", "uploads need richchat: richchat send HOST "
                            "--nick NAME --file PATH")

    def download_ready(self, offer: ev.FileOffered, token: str, address: str) -> bytes:
        return _notice(f"Fetch {file_summary(offer)} with this command (it works once, "
                       f"within minutes): {get_command(address, offer.id, token=token)}")

    def file_listing(self, target: str, offers: Sequence[ev.FileOffered],
                     address: str) -> bytes:
        where = f"between you and {target[1:]}" if target.startswith("@") else f"in #{target}"
        if not offers:
            return _notice(f"No files {where}")
        parts = [_notice(f"Files {where} ({len(offers)}):")]
        for e in offers:
            when = datetime.fromtimestamp(e.ts / 1000).strftime("%Y-%m-%d %H:%M")
            parts.append(_notice(f"  [{e.id}] {file_summary(e)} from {e.sender}, {when}"))
        parts.append(_notice("/get ID prints a command that fetches one"))
        return b"".join(parts)


class HelpCommand:
    """``/help``: the one command that is answered by the dialect alone."""


class ShowTopic:
    """``/topic`` alone: the current room's topic, said to this user only (the chat UI's
    ``/topic`` too); ``/topic --clear`` clears it."""

    __slots__ = ("room",)

    def __init__(self, room: str) -> None:
        self.room = room


def parse(
    line: str, peer: Peer
) -> f.ClientFrame | InvalidFrame | HelpCommand | ShowTopic | None:
    """A netcat user's line: a slash command, a protocol frame (``PING|``...), or chat text
    for the current room (None: nothing to do, e.g. a blank line)."""
    if line.startswith("/") and not line.startswith("//"):
        cmd = parse_slash(line, peer.current_room)
        if isinstance(cmd, HelpRequest):
            return HelpCommand()
        if isinstance(cmd, SlashError):
            return InvalidFrame("", cmd.code, cmd.text)
        if isinstance(cmd, f.SetTopic) and cmd.text in ("", CLEAR_TOPIC):
            if not cmd.text:
                return ShowTopic(cmd.room)
            return f.SetTopic.model_construct(room=cmd.room, text="")
        return cmd
    frame = decode_client_line(line)
    if not isinstance(frame, f.RawText):
        return frame
    text = frame.text[1:] if frame.text.startswith("//") else frame.text
    if not text.strip():
        return None
    room = peer.current_room
    if room == DEFAULT_ROOM:
        return f.Say.model_construct(text=text)
    return f.SayRoom.model_construct(room=room, text=text)
