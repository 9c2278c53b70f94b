"""Slash commands typed as text (netcat users, the chat UI) turned into client frames. Pure."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import ValidationError

from richchat.core.protocol.frames import (
    GetFile,
    JoinRoom,
    ListFiles,
    ListRooms,
    PartRoom,
    Quit,
    SendAction,
    SendPrivate,
    SetNick,
    SetTopic,
    Who,
)
from richchat.core.protocol.text import DEFAULT_ROOM

HELP_LINES = (
    "/nick NAME        change your nickname",
    "/users            who is online (the lobby)",
    "/join ROOM        join (or create) a room and make it your current room",
    "/leave [ROOM]     leave a room (also /part); the lobby cannot be left",
    "/rooms            list rooms with member counts",
    "/topic [TEXT]     show or set the current room's topic (/topic --clear clears it)",
    "/who [ROOM]       list a room's members",
    "/msg USER TEXT    private message (never stored)",
    "/me ACTION        emote in the current room",
    "/files [ROOM]     files shared in a room (or /files @USER: between you and USER)",
    "/get ID           a one-time command line that downloads shared file ID",
    "/quit [REASON]    leave the server",
    "/help             this list",
)

#: ``/topic --clear``: the one way to clear a topic by hand (``/topic`` alone shows it: a
#: user who types it to see the topic, as in IRC, must not wipe it for everyone)
CLEAR_TOPIC = "--clear"

SlashFrame = (
    GetFile | JoinRoom | ListFiles | ListRooms | PartRoom | Quit | SendAction | SendPrivate
    | SetNick | SetTopic | Who
)


@dataclass(frozen=True)
class HelpRequest:
    pass


@dataclass(frozen=True)
class SlashError:
    code: str
    text: str


def _reason(exc: ValidationError) -> str:
    return str(exc.errors()[0].get("msg", "invalid")).removeprefix("Value error, ")


def parse_slash(
    line: str, current_room: str = DEFAULT_ROOM
) -> SlashFrame | HelpRequest | SlashError:
    """Parse a line starting with ``/`` (the caller checks that)."""
    cmd, _, rest = line[1:].partition(" ")
    cmd = cmd.lower()
    rest = rest.strip()
    try:
        if cmd == "nick":
            if not rest:
                return SlashError("bad_command", "usage: /nick NAME")
            return SetNick(name=rest)
        if cmd == "users":
            return Who(room=DEFAULT_ROOM)
        if cmd == "who":
            return Who(room=rest or current_room)
        if cmd == "join":
            if not rest:
                return SlashError("bad_command", "usage: /join ROOM")
            return JoinRoom(room=rest)
        if cmd in ("leave", "part"):
            return PartRoom(room=rest or current_room)
        if cmd == "rooms":
            return ListRooms()
        if cmd == "topic":
            return SetTopic(room=current_room, text=rest)
        if cmd == "msg":
            to, _, text = rest.partition(" ")
            if not to or not text.strip():
                return SlashError("bad_command", "usage: /msg USER TEXT")
            return SendPrivate(to=to, text=text)
        if cmd == "me":
            if not rest:
                return SlashError("bad_command", "usage: /me ACTION")
            return SendAction(room=current_room, text=rest)
        if cmd == "files":
            return ListFiles(target=rest or current_room)
        if cmd == "get":
            if not rest:
                return SlashError("bad_command", "usage: /get FILE_ID")
            if not rest.isascii() or not rest.isalnum() or not 6 <= len(rest) <= 32:
                return SlashError("bad_command", f"{rest[:40]!r} is not a file id (the id "
                                  "in brackets in the offer, like k3x9q2wz4m1p)")
            return GetFile(id=rest.lower())
        if cmd == "quit":
            return Quit(reason=rest)
        if cmd == "help":
            return HelpRequest()
    except ValidationError as exc:
        code = "name_invalid" if cmd in ("nick", "msg") else "room_invalid"
        loc = exc.errors()[0].get("loc", ())
        if cmd in ("topic", "get") or (loc and loc[0] in ("text", "reason")):
            code = "bad_command"  # the text is wrong, not a name or a room
        return SlashError(code, _reason(exc))
    return SlashError("unknown_command", f"unknown command /{cmd}; /help lists the commands")
