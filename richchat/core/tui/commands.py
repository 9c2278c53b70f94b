"""What a line typed in the chat input does: a small router, pure (no Textual, no I/O).

:func:`submit` takes the client state and the line, and returns an :class:`Outcome`: the next
state and its changes, at most one frame for the server, whether the line stays in the input
(a refusal the user can correct) and whether to quit. The app carries it out.

Routing, in order:

1. a line that does not start with ``/`` (or starts with ``//``) is a message for the
   conversation on screen (:func:`say`);
2. UI commands (:data:`LOCAL`): ``/help``, ``/quit``, ``/clear``, ``/users``,
   ``/msg USER`` and ``/query USER`` without text, ``/leave`` in a private conversation;
3. everything else goes through the protocol's shared slash parser (the grammar netcat users
   have) and becomes one frame, which a rule of :data:`FRAME_RULES` may adjust to the
   conversation on screen (``/me`` in a private conversation, ``/join`` of a room we are in).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar, Union

from pydantic import ValidationError

from richchat.core.protocol import frames as f
from richchat.core.protocol.slash import CLEAR_TOPIC, HelpRequest, SlashError, parse_slash
from richchat.core.protocol.text import (
    DEFAULT_ROOM,
    MAX_MESSAGE_BYTES,
    message_size,
    nick_problem,
)
from richchat.core.tui import state as st
from richchat.core.tui.state import ChatState

HELP = (
    "Commands:",
    "  /join ROOM        join a room (and switch to it)",
    "  /leave, /part     leave the current room",
    "  /rooms            list the rooms on the server",
    "  /who [ROOM]       list the members of a room",
    "  /users            list the users of this conversation",
    "  /topic [TEXT]     show or set the topic of the current room (--clear clears it)",
    "  /msg USER [TEXT]  private message (opens a private conversation; also /query USER)",
    "  /me ACTION        an emote, like '* alice waves'",
    "  /share PATH       share a file with this conversation (room or private)",
    "  /get N            download shared file N (its number in the offer; or its id)",
    "  /files            the files shared in this conversation (F4: pick one to download)",
    "  /nick NAME        change your nickname",
    "  /clear            clear this conversation's window",
    "  /quit [REASON]    leave (also Ctrl+C); others read the reason",
    "  //text            send a line that starts with '/'",
    "Keys: TAB chat/users panel, Up/Down/PgUp/PgDn scroll it, Ctrl+N/Ctrl+P next/previous"
    " conversation, F2/F3 show or hide the conversation/user list.",
)


@dataclass(frozen=True)
class ShareJob:
    """``/share PATH``: hash the file, offer it to ``target``, upload it when asked."""

    path: str
    target: str  # a room, or "@" + a nick


@dataclass(frozen=True)
class GetJob:
    """``/get N``: download the file when the server's ``DOWNLOAD`` comes."""

    file_id: str
    known: st.SharedFile | None


Job = Union[ShareJob, GetJob]


@dataclass(frozen=True)
class Outcome:
    """What the app does with a submitted line."""

    state: ChatState
    changes: tuple[st.Change, ...] = ()
    send: f.Frame | None = None  # the frame for the server
    keep: bool = False  # leave the text in the input line (to correct or resend it)
    quit: bool = False
    #: the reason others read when we quit (``/quit lunch``: ``alice left (quit: lunch)``)
    quit_reason: str = ""
    job: Job | None = None  # file work the app carries out (it does I/O)


def _noted(state: ChatState, text: str, now: int, *, error: bool = False,
           keep: bool = False) -> Outcome:
    new, changes = st.note(state, text, now, error=error)
    return Outcome(new, changes, keep=keep)


def _stepped(step: st.Step, send: f.Frame | None = None) -> Outcome:
    return Outcome(step[0], step[1], send=send)


# --------------------------------------------------------------------------- messages


def say(state: ChatState, text: str, now: int, *, max_bytes: int) -> Outcome:
    """``text`` as a message to the conversation on screen; refused (and kept) if it cannot
    be sent now."""
    if not state.online:
        return _noted(state, "Not connected: your message is kept in the input line.", now,
                      error=True, keep=True)
    if not state.registered:
        return _noted(state, "No nickname yet (/nick NAME): your message is kept.", now,
                      error=True, keep=True)
    size = message_size(text)
    if size > max_bytes:
        return _noted(state, f"Message too long ({size} bytes; at most {max_bytes}): it is kept "
                      "in the input line.", now, error=True, keep=True)
    conv = state.current
    if conv.peer is not None:
        return Outcome(state, send=f.SendPrivate(to=conv.peer, text=text))
    if not conv.joined:
        return _noted(state, f"Not in {conv.title} yet (rejoining): your message is kept.", now,
                      error=True, keep=True)
    if conv.key == DEFAULT_ROOM:
        return Outcome(state, send=f.Say(text=text))
    return Outcome(state, send=f.SayRoom(room=conv.key, text=text))


def submit(state: ChatState, text: str, now: int, *, max_bytes: int) -> Outcome:
    """A line the user submitted: a message or a command."""
    if not text.strip():
        return Outcome(state, keep=True)
    if text.startswith("/") and not text.startswith("//"):
        return command(state, text, now, max_bytes=max_bytes)
    return say(state, text[1:] if text.startswith("//") else text, now, max_bytes=max_bytes)


# --------------------------------------------------------------------------- UI commands

#: a UI command: (state, argument, now) -> an outcome, or None to leave it to the protocol
LocalCommand = Callable[[ChatState, str, int], "Outcome | None"]


def _help(state: ChatState, _arg: str, now: int) -> Outcome:
    changes: list[st.Change] = []
    for line in HELP:
        state, more = st.note(state, line, now)
        changes.extend(more)
    return Outcome(state, tuple(changes))


def _quit(state: ChatState, arg: str, _now: int) -> Outcome:
    return Outcome(state, quit=True, quit_reason=f.Quit(reason=arg.strip()).reason)


def _clear(state: ChatState, _arg: str, _now: int) -> Outcome:
    return _stepped(st.clear(state, state.active))


def _users(state: ChatState, _arg: str, now: int) -> Outcome:
    conv = state.current
    names = conv.sorted_users()
    return _noted(state, f"Users in {conv.title} ({len(names)}): " + ", ".join(names), now)


def _query(state: ChatState, arg: str, now: int) -> Outcome | None:
    """``/msg USER`` or ``/query USER`` (no text): open the private conversation. A bad
    name is refused here, with or without a text, in one line that names it."""
    if not arg:
        return None  # the protocol's usage line
    name, _, text = arg.partition(" ")
    problem = nick_problem(name)
    if problem:
        shown = repr(name) if len(name) <= 30 else repr(name[:30]) + "..."
        return _noted(state, f"Bad user name {shown}: {problem}", now, error=True, keep=True)
    if text.strip():
        return None  # with text: a private message, through the protocol
    return _stepped(st.open_private(state, name))


def _leave(state: ChatState, arg: str, _now: int) -> Outcome | None:
    """``/leave`` in a private conversation closes it (rooms: the protocol's CMD_PART)."""
    if arg or not state.current.private:
        return None
    return _stepped(st.close(state, state.active))


#: what /share, /get, /files and F4 say on a server whose HELLO offers no file sharing
NO_FILE_SHARING = ("This server does not offer file sharing (it runs with --no-files, is a "
                   "node of a cluster, or is older): nothing can be shared or fetched here.")


def _ready_for_files(state: ChatState, now: int) -> Outcome | None:
    """A refusal when files cannot be shared or fetched now, else None."""
    if not state.online:
        return _noted(state, "Not connected: your command is kept in the input line.", now,
                      error=True, keep=True)
    if not state.registered:
        return _noted(state, "Choose a nickname first: /nick NAME", now, error=True, keep=True)
    if state.file_max is None:
        return _noted(state, NO_FILE_SHARING, now, error=True)
    return None


def _share(state: ChatState, arg: str, now: int) -> Outcome:
    """``/share PATH``: the app reads, hashes and offers the file (it does the I/O)."""
    path = arg.strip()
    if len(path) > 1 and path[0] == path[-1] and path[0] in "'\"":
        path = path[1:-1]
    if not path:
        return _noted(state, "Usage: /share PATH (a file to share with this conversation)",
                      now, error=True, keep=True)
    refused = _ready_for_files(state, now)
    if refused is not None:
        return refused
    conv = state.current
    if not conv.private and not conv.joined:
        return _noted(state, f"Not in {conv.title} yet (rejoining): try again in a moment.",
                      now, error=True, keep=True)
    return Outcome(state, job=ShareJob(path, state.target))


def _get(state: ChatState, arg: str, now: int) -> Outcome:
    """``/get N`` (the number shown in the offer) or ``/get ID``."""
    ref = arg.strip().lstrip("[").rstrip("]")
    if not ref:
        return _noted(state, "Usage: /get N (the number in [N] of a shared file; /files "
                      "lists them)", now, error=True, keep=True)
    refused = _ready_for_files(state, now)
    if refused is not None:
        return refused
    known = state.file(ref)
    if known is None and ref.isdigit():
        shown = ref if len(ref) <= 12 else ref[:12] + "..."
        return _noted(state, f"No file [{shown}] here; /files lists the files of this "
                      "conversation.", now, error=True, keep=True)
    try:
        frame = f.GetFile(id=known.id if known is not None else ref.lower())
    except ValidationError:
        return _noted(state, f"{ref!r} is neither a file number nor a file id.", now,
                      error=True, keep=True)
    return Outcome(state, send=frame, job=GetJob(frame.id, known))


def _files(state: ChatState, arg: str, now: int) -> Outcome:
    """``/files [ROOM|@USER]``: what the server holds for this conversation."""
    refused = _ready_for_files(state, now)
    if refused is not None:
        return refused
    try:
        frame = f.ListFiles(target=arg or state.target)
    except ValidationError as exc:
        text = str(exc.errors()[0].get("msg", "invalid")).removeprefix("Value error, ")
        return _noted(state, f"Bad room or user {arg!r}: {text}", now, error=True, keep=True)
    return Outcome(state, send=frame)


LOCAL: dict[str, LocalCommand] = {
    "share": _share,
    "get": _get,
    "files": _files,
    "help": _help,
    "quit": _quit,
    "clear": _clear,
    "users": _users,
    "msg": _query,
    "query": _query,
    "leave": _leave,
    "part": _leave,
}
#: UI names of protocol commands
ALIASES = {"query": "msg"}


# --------------------------------------------------------------------------- protocol commands

FrameT = TypeVar("FrameT", bound=f.Frame)
FrameRule = Callable[[ChatState, f.Frame, int], Outcome]


def _join(state: ChatState, frame: f.JoinRoom, _now: int) -> Outcome:
    if frame.room in state.conversations:
        return _stepped(st.switch(state, frame.room))  # already in it: just show it
    return Outcome(st.expect_join(state, frame.room), send=frame)


def _part(state: ChatState, frame: f.PartRoom, now: int) -> Outcome:
    if frame.room == DEFAULT_ROOM:
        return _noted(state, "Everyone stays in #lobby; it cannot be left.", now, error=True)
    return Outcome(state, send=frame)


def _who(state: ChatState, frame: f.Who, _now: int) -> Outcome:
    return Outcome(st.expect_who(state, frame.room), send=frame)


def _private(state: ChatState, frame: f.SendPrivate, _now: int) -> Outcome:
    """``/msg USER TEXT``: shows the conversation with USER at once if there is one; a new one
    opens when the server delivers the message (a refusal, such as nobody of that name being
    online, is shown where the command was typed, and opens nothing)."""
    if st.private_key(frame.to) in state.conversations:
        return _stepped(st.open_private(state, frame.to), send=frame)
    return Outcome(st.expect_private(state, frame.to), send=frame)


#: ``/topic --clear`` (richchat.core.protocol.slash.CLEAR_TOPIC): the one way to clear a topic
#: from the chat UI (``/topic`` alone shows it)


def _topic(state: ChatState, frame: f.SetTopic, now: int) -> Outcome:
    if state.current.private:
        return _noted(state, "Private conversations have no topic.", now, error=True,
                      keep=True)
    if not frame.text:  # `/topic` alone: say it, never clear it by accident
        conv = state.current
        by = f" (set by {conv.topic_by})" if conv.topic_by else ""
        # "(set by ...)." ends the topic, as netcat users read it: the hint after it was
        # run on ("is: ship friday /topic TEXT sets it") as if part of the topic
        said = f"The topic of #{frame.room} is: {conv.topic}{by}." if conv.topic else (
            f"#{frame.room} has no topic.")
        return _noted(state, f"{said} /topic TEXT sets it, /topic {CLEAR_TOPIC} clears it.",
                      now)
    if frame.text == CLEAR_TOPIC:
        return Outcome(state, send=f.SetTopic(room=frame.room, text=""))
    return Outcome(state, send=frame)


def _action(state: ChatState, frame: f.SendAction, _now: int) -> Outcome:
    peer = state.current.peer
    if peer is not None:  # no emote frame for private messages: "* text" as a message
        return Outcome(state, send=f.SendPrivate(to=peer, text=f"* {frame.text}"))
    return Outcome(state, send=frame)


def _rules() -> dict[type[f.Frame], FrameRule]:
    table: dict[type[f.Frame], FrameRule] = {}

    def rule(kind: type[FrameT], handler: Callable[[ChatState, FrameT, int], Outcome]) -> None:
        table[kind] = handler  # type: ignore[assignment]

    rule(f.JoinRoom, _join)
    rule(f.PartRoom, _part)
    rule(f.Who, _who)
    rule(f.SendPrivate, _private)
    rule(f.SetTopic, _topic)
    rule(f.SendAction, _action)
    return table


#: frame type -> how the conversation on screen adjusts it (the rest is sent as parsed)
FRAME_RULES = _rules()


#: frames that carry a chat message: its text is bounded as a typed message is
_MESSAGES = (f.Say, f.SayRoom, f.SendPrivate, f.SendAction)


def _fits(state: ChatState, outcome: Outcome, now: int, max_bytes: int) -> Outcome:
    """``outcome``, or the refusal of a message too long for the server (kept in the input;
    the server would drop the whole line, and the text with it)."""
    if isinstance(outcome.send, _MESSAGES):
        size = message_size(outcome.send.text)
        if size > max_bytes:
            return _noted(state, f"Message too long ({size} bytes; at most {max_bytes}): it is "
                          "kept in the input line.", now, error=True, keep=True)
    return outcome


def command(state: ChatState, text: str, now: int, *,
            max_bytes: int = MAX_MESSAGE_BYTES) -> Outcome:
    """A line starting with ``/``."""
    name, _, arg = text[1:].partition(" ")
    name, arg = name.lower(), arg.strip()
    if name in ("msg", "query") and arg.startswith("@"):
        arg = arg[1:]  # "@bob", as the conversation list shows him (no name has an "@")
    local = LOCAL.get(name)
    if local is not None:
        outcome = local(state, arg, now)
        if outcome is not None:
            return outcome
    name = ALIASES.get(name, name)
    conv = state.current
    parsed = parse_slash(f"/{name} {arg}".rstrip(), DEFAULT_ROOM if conv.private else conv.key)
    if isinstance(parsed, SlashError):
        if parsed.code == "unknown_command":
            return _noted(state, f"Unknown command /{name}; type /help for the list.", now,
                          error=True, keep=True)
        return _noted(state, parsed.text[:1].upper() + parsed.text[1:], now, error=True,
                      keep=True)
    if isinstance(parsed, HelpRequest):  # /help is a UI command; kept for completeness
        return _help(state, arg, now)
    if isinstance(parsed, f.Quit):
        return Outcome(state, quit=True, quit_reason=parsed.reason)
    if not state.online:
        return _noted(state, "Not connected: your command is kept in the input line.", now,
                      error=True, keep=True)
    if isinstance(parsed, f.SetNick):
        return Outcome(state, send=parsed)
    if not state.registered:
        return _noted(state, "Choose a nickname first: /nick NAME", now, error=True, keep=True)
    rule = FRAME_RULES.get(type(parsed))
    outcome = rule(state, parsed, now) if rule is not None else Outcome(state, send=parsed)
    return _fits(state, outcome, now, max_bytes)
