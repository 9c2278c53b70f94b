"""The chat UI's client state, pure: ``(state, frame) -> (new state, changes)``.

No Textual, no I/O, no clock: every function takes the state and returns the next state with
the list of what changed, and the caller passes the time. :class:`ChatState` and everything in
it are frozen; a step builds a new state and leaves the old one as it was, so tests compare
whole states (``tests/tui/test_state.py`` is a table of (state, frame) -> (state, changes)).

* :func:`apply` applies one server frame (a chat line, a user-list update, our nickname, ...);
  :func:`apply_all` a batch of them in one step (what arrived in one read: one copy of the
  state, one set of changes for the view to draw, however many frames).
* The other functions are what the user does locally: switch or close a conversation, open a
  private one, clear a window, note a line, and the connection coming and going.

The changes say what a view must redraw: :class:`LineAdded` (append one line), and for the rest
only which part changed (:class:`ViewChanged`: the whole conversation on screen,
:class:`ListChanged`, :class:`UsersChanged`, ...); the view reads the new state for the details.

Lines are kept as data (:class:`ChatLine`), not as styled text; ``render.py`` turns them into
rich Text. Whether a line mentions us, or is ours, is decided when it arrives (with the nickname
we had then) and stored on the line, so redrawing it later shows the same thing.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Literal, TypeVar, Union

from richchat.core.protocol import frames as f
from richchat.core.protocol.text import DEFAULT_ROOM, fold_name, name_key

#: lines kept per conversation (older ones are dropped)
MAX_LINES = 2000

LineKind = Literal["message", "action", "private", "notice", "error", "file"]


def mentions(text: str, nick: str | None) -> bool:
    """Whether ``text`` mentions ``nick`` as a whole word (case-insensitive)."""
    if not nick:
        return False
    pattern = r"(?<![\w])" + re.escape(nick) + r"(?![\w])"
    return re.search(pattern, text, re.IGNORECASE) is not None


def same_name(a: str | None, b: str | None) -> bool:
    """Whether two nicknames are the same name (after NFKC and case-folding)."""
    return a is not None and b is not None and fold_name(a) == fold_name(b)


def private_key(nick: str) -> str:
    """The key of the private conversation with ``nick``: ``@`` + the name's identity
    (:func:`name_key`: names that look alike are one name, as the server decides who a
    private message reaches), so ``/msg аdmin`` (Cyrillic а) and the echo naming ``admin``
    are one conversation."""
    return "@" + name_key(nick)


# --------------------------------------------------------------------------- the state


@dataclass(frozen=True)
class ChatLine:
    """One line of a conversation, as data."""

    ts: int  # milliseconds since the Unix epoch
    kind: LineKind
    text: str
    name: str = ""  # the sender (message, action, private)
    to: str = ""  # the recipient (private)
    mention: bool = False  # it mentions us (highlighted; a private line to us)
    mine: bool = False  # we sent it (a private line shows "-> *to*")
    #: a shared file (kind "file"): its number for /get N (``text`` is its name)
    file: SharedFile | None = None


@dataclass(frozen=True)
class SharedFile:
    """A file shared with us (or by us), as this client knows it: ``number`` is what
    ``/get N`` takes (1, 2, ... in the order offers arrived)."""

    number: int
    id: str
    key: str  # the conversation it belongs to (a room, or @ + a folded nick)
    sender: str
    name: str
    size: int
    sha256: str
    ts: int


@dataclass(frozen=True)
class Conversation:
    """A room (``key`` = the room's name) or a private conversation (``key``: see
    :func:`private_key` of ``peer``, the other user)."""

    key: str
    peer: str | None = None
    lines: tuple[ChatLine, ...] = ()
    users: Mapping[str, str] = field(default_factory=dict)  # folded -> display name
    topic: str = ""
    topic_by: str = ""  # who set the topic ("" if the server did not say)
    unread: int = 0
    mentioned: bool = False  # an unread line mentions us (or is private)
    joined: bool = False  # a room we are (re)joined to on the current connection

    @property
    def private(self) -> bool:
        return self.peer is not None

    @property
    def title(self) -> str:
        return f"@{self.peer}" if self.peer is not None else f"#{self.key}"

    def sorted_users(self) -> list[str]:
        return sorted(self.users.values(), key=str.casefold)


def _lobby() -> Mapping[str, Conversation]:
    return {DEFAULT_ROOM: Conversation(DEFAULT_ROOM)}


@dataclass(frozen=True)
class ChatState:
    """Everything the chat screen shows, and what it waits for. The lobby always exists."""

    conversations: Mapping[str, Conversation] = field(default_factory=_lobby)  # in list order
    active: str = DEFAULT_ROOM
    nick: str | None = None  # the name the server confirmed (YOU)
    server_name: str = ""
    online: bool = False  # connected (HELLO exchanged)
    registered: bool = False  # the server confirmed our nickname on this connection
    pending_join: str | None = None  # /join sent: switch to the room when we are in
    pending_who: frozenset[str] = frozenset()  # /who sent: show the next RLIST of these rooms
    #: ``/msg USER TEXT`` sent to someone we have no conversation with: (its key, the
    #: conversation it was typed in), oldest first. The conversation opens when the server
    #: echoes the message (and is shown if the user is still where they typed it); a refusal
    #: (``ERR|no_such_user``: nobody of that name is online) opens nothing.
    pending_private: tuple[tuple[str, str], ...] = ()
    #: files shared with us or by us, numbered for /get N (offers and /files listings)
    files: tuple[SharedFile, ...] = ()
    #: the largest file the server takes (its HELLO's files=); None: it takes no files
    file_max: int | None = None

    @property
    def current(self) -> Conversation:
        return self.conversations[self.active]

    def keys(self) -> list[str]:
        return list(self.conversations)

    def file(self, ref: str) -> SharedFile | None:
        """A known file by number (``3``) or id (``k3x9q2wz4m1p``)."""
        if ref.isdigit():
            # ASCII digits, and few of them: int() refuses "²" (a digit to isdigit) and
            # numbers over 4,300 digits, and no list holds a billion files
            if not (ref.isascii() and len(ref) <= 9):
                return None
            n = int(ref)
            return self.files[n - 1] if 0 < n <= len(self.files) else None
        return next((x for x in self.files if x.id == ref.lower()), None)

    def files_of(self, key: str) -> list[SharedFile]:
        """The known files of conversation ``key``."""
        return [x for x in self.files if x.key == key]

    @property
    def target(self) -> str:
        """Where the conversation on screen shares files: its room, or ``@`` + its user."""
        conv = self.current
        return f"@{conv.peer}" if conv.peer is not None else conv.key


# --------------------------------------------------------------------------- the changes


@dataclass(frozen=True)
class LineAdded:
    """A line was appended to conversation ``key``."""

    key: str
    line: ChatLine


@dataclass(frozen=True)
class ViewChanged:
    """Redraw the conversation on screen (``key``): another one, or this one changed as a
    whole (cleared, renamed). Lines added in the same step are part of the redraw."""

    key: str


@dataclass(frozen=True)
class ListChanged:
    """The conversation list changed: entries, their order or titles, unread counts."""


@dataclass(frozen=True)
class UsersChanged:
    """The member list of conversation ``key`` changed."""

    key: str


@dataclass(frozen=True)
class TopicChanged:
    key: str


@dataclass(frozen=True)
class NickSet:
    """The server confirmed our nickname (registration or rename)."""

    nick: str


@dataclass(frozen=True)
class ServerNamed:
    name: str


Change = Union[LineAdded, ViewChanged, ListChanged, UsersChanged, TopicChanged, NickSet,
               ServerNamed]
#: what every function here returns
Step = tuple[ChatState, tuple[Change, ...]]


# --------------------------------------------------------------------------- the builder


class _Edit:
    """Collects one step: the next values of the state's fields, and the changes."""

    def __init__(self, state: ChatState, now: int) -> None:
        self.now = now
        self.convs = dict(state.conversations)
        self.active = state.active
        self.nick = state.nick
        self.server_name = state.server_name
        self.online = state.online
        self.registered = state.registered
        self.pending_join = state.pending_join
        self.pending_who = state.pending_who
        self.pending_private = state.pending_private
        self.files = state.files
        self.file_max = state.file_max
        self.changes: list[Change] = []
        #: conversations whose member dict this step has copied and may change in place: a
        #: burst of JOIN frames copies a list of N users once, not N times (N^2)
        self._own: set[str] = set()

    def is_me(self, name: str) -> bool:
        return same_name(name, self.nick)

    # ---------------------------------------------------------------- writing
    def change(self, change: Change) -> None:
        self.changes.append(change)

    def put(self, conv: Conversation) -> None:
        if conv.key not in self.convs:
            self.change(ListChanged())
        self.convs[conv.key] = conv

    def room(self, name: str) -> Conversation:
        conv = self.convs.get(name)
        if conv is None:
            conv = Conversation(name)
            self.put(conv)
        return conv

    def private(self, nick: str) -> Conversation:
        key = private_key(nick)
        conv = self.convs.get(key)
        if conv is None:
            conv = Conversation(key, peer=nick)
            self.put(conv)
        return conv

    def spelled(self, key: str, nick: str) -> None:
        """The server named the other user of private conversation ``key`` ``nick``: show
        (and write to) the name as online, not a look-alike spelling typed by hand."""
        conv = self.convs[key]
        if conv.peer != nick:
            self.convs[key] = replace(conv, peer=nick)
            self.change(ListChanged())
            if key == self.active:
                self.change(ViewChanged(key))

    def users(self, key: str, users: Mapping[str, str]) -> None:
        conv = self.convs[key]
        if conv.users != users:
            self.convs[key] = replace(conv, users=users)
            self._own.discard(key)
            self.change(UsersChanged(key))

    def _members(self, key: str) -> dict[str, str]:
        """The member dict of conversation ``key``, this step's own copy (to change in place)."""
        conv = self.convs[key]
        if key not in self._own:
            conv = replace(conv, users=dict(conv.users))
            self.convs[key] = conv
            self._own.add(key)
        return conv.users  # type: ignore[return-value]

    def add_user(self, key: str, name: str) -> None:
        folded = fold_name(name)
        if self.convs[key].users.get(folded) != name:
            self._members(key)[folded] = name
            self.change(UsersChanged(key))

    def remove_user(self, key: str, name: str) -> None:
        folded = fold_name(name)
        if folded in self.convs[key].users:
            del self._members(key)[folded]
            self.change(UsersChanged(key))

    def add_line(self, key: str, line: ChatLine, *, count: bool = True,
                 mention: bool = False) -> None:
        """Append ``line``; ``count`` it as unread (and ``mention``) unless it is on screen."""
        conv = self.convs[key]
        lines = (*conv.lines, line)
        if len(lines) > MAX_LINES:
            lines = lines[-MAX_LINES:]
        conv = replace(conv, lines=lines)
        if count and key != self.active:
            conv = replace(conv, unread=conv.unread + 1, mentioned=conv.mentioned or mention)
            self.change(ListChanged())
        self.convs[key] = conv
        self.change(LineAdded(key, line))

    def note(self, text: str, *, error: bool = False) -> None:
        """A line of ours (not the server's) in the conversation on screen."""
        line = ChatLine(self.now, "error" if error else "notice", text)
        self.add_line(self.active, line, count=False)

    def notice(self, key: str, text: str) -> None:
        """A notice about conversation ``key`` (someone joined, the topic, ...), not counted."""
        self.add_line(key, ChatLine(self.now, "notice", text), count=False)

    def switch(self, key: str) -> None:
        conv = self.convs[key]
        if conv.unread or conv.mentioned:
            self.convs[key] = replace(conv, unread=0, mentioned=False)
        self.active = key
        self.change(ViewChanged(key))
        self.change(ListChanged())

    def remove(self, key: str) -> None:
        if key == DEFAULT_ROOM or key not in self.convs:
            return
        del self.convs[key]
        self.change(ListChanged())
        if self.active == key:
            self.switch(DEFAULT_ROOM)

    def result(self) -> Step:
        state = ChatState(
            conversations=self.convs, active=self.active, nick=self.nick,
            server_name=self.server_name, online=self.online, registered=self.registered,
            pending_join=self.pending_join, pending_who=self.pending_who,
            pending_private=self.pending_private, files=self.files,
            file_max=self.file_max,
        )
        flags: dict[Change, None] = {}
        changes: list[Change] = []
        for change in self.changes:
            if isinstance(change, LineAdded):
                changes.append(change)  # two equal lines are two lines
            elif change not in flags:
                flags[change] = None
                changes.append(change)
        return state, tuple(changes)


# --------------------------------------------------------------------------- frames


def _room_line(e: _Edit, frame: f.RoomMessage | f.Action) -> None:
    mention = not e.is_me(frame.name) and mentions(frame.text, e.nick)
    kind: LineKind = "message" if isinstance(frame, f.RoomMessage) else "action"
    e.room(frame.room)
    line = ChatLine(frame.ts, kind, frame.text, name=frame.name, mention=mention)
    e.add_line(frame.room, line, mention=mention)


def _seed_line(e: _Edit, frame: f.ChatMessage) -> None:
    # seed frame: no timestamp, lobby only (not sent to hello clients; here for completeness)
    mention = not e.is_me(frame.name) and mentions(frame.text, e.nick)
    line = ChatLine(e.now, "message", frame.text, name=frame.name, mention=mention)
    e.add_line(DEFAULT_ROOM, line, mention=mention)


def _private(e: _Edit, frame: f.Private) -> None:
    mine = e.is_me(frame.sender)
    other = frame.to if mine else frame.sender
    conv = e.private(other)
    e.spelled(conv.key, other)
    e.users(conv.key, {fold_name(n): n for n in (e.nick, other) if n})
    if mine:
        _private_answered(e, conv.key)
    line = ChatLine(frame.ts, "private", frame.text, name=frame.sender, to=frame.to,
                    mention=not mine, mine=mine)
    e.add_line(conv.key, line, mention=not mine)


def _private_answered(e: _Edit, key: str) -> None:
    """Our ``/msg`` to the user of conversation ``key`` was delivered (its echo came): show the
    conversation if the user is still where they typed the command."""
    for i, (waiting, typed_in) in enumerate(e.pending_private):
        if waiting == key:
            e.pending_private = e.pending_private[:i] + e.pending_private[i + 1:]
            if e.active == typed_in:
                e.switch(key)
            return


def _notice(e: _Edit, frame: f.Notice) -> None:
    e.add_line(DEFAULT_ROOM, ChatLine(e.now, "notice", frame.text))


def _bye(e: _Edit, frame: f.Bye) -> None:
    # The lobby shows the server's notice; the conversation on screen gets the reason too.
    if e.active != DEFAULT_ROOM:
        e.note(frame.text or f"The server is closing the connection ({frame.code})")


def _hello(e: _Edit, frame: f.Hello) -> None:
    if frame.name and frame.name != e.server_name:
        e.server_name = frame.name
        e.change(ServerNamed(frame.name))


def _you(e: _Edit, frame: f.You) -> None:
    old = e.nick
    e.nick, e.registered = frame.name, True
    lobby = e.room(DEFAULT_ROOM)
    if not lobby.joined:
        e.convs[DEFAULT_ROOM] = lobby = replace(lobby, joined=True)
    if not same_name(old, frame.name):
        if old:
            e.remove_user(DEFAULT_ROOM, old)
        e.add_user(DEFAULT_ROOM, frame.name)
        if old:
            e.note(f"You are now known as {frame.name}")
    e.change(NickSet(frame.name))


def _user_list(e: _Edit, frame: f.UserList) -> None:
    members = {fold_name(u.name): u.name for u in frame.users}
    e.users(DEFAULT_ROOM, members)
    _reconcile_peers(e, members)


def _reconcile_peers(e: _Edit, lobby: Mapping[str, str]) -> None:
    """A whole lobby list (on registration, after a reconnect): the other user of each
    private conversation is online or not by it. Their JOIN or PART may have passed while
    we were away: ``@bob`` kept listing a bob who had left, and said nothing when he came
    back."""
    for conv in list(e.convs.values()):
        peer = conv.peer
        if peer is None or e.is_me(peer):
            continue
        name = lobby.get(fold_name(peer))
        if name is not None:
            _peer_presence(e, name, f"{name} is online again", online=True)
        else:
            _peer_presence(e, peer, f"{peer} is not online", online=False)


def _room_users(e: _Edit, frame: f.RoomUsers) -> None:
    names = [u.name for u in frame.users]
    if frame.room in e.convs:
        e.users(frame.room, {fold_name(n): n for n in names})
    if frame.room == DEFAULT_ROOM:
        _reconcile_peers(e, {fold_name(n): n for n in names})
    if frame.room in e.pending_who:
        e.pending_who = e.pending_who - {frame.room}
        e.note(f"Users in #{frame.room}: " + (", ".join(names) or "nobody"))


def _joined(e: _Edit, frame: f.UserJoined) -> None:
    name, room = frame.user.name, frame.room
    if e.is_me(name):
        e.room(room)
        e.add_user(room, name)
        e.convs[room] = replace(e.convs[room], joined=True)
        if e.pending_join == room:
            e.pending_join = None
            e.switch(room)
            e.notice(room, f"You joined #{room}")
        return
    if room == DEFAULT_ROOM:
        _peer_presence(e, name, f"{name} is online again", online=True)
    if room not in e.convs:
        return
    e.add_user(room, name)
    if room != DEFAULT_ROOM:  # the lobby gets the server's own "joined" notice
        e.notice(room, f"{name} joined #{room}")


def _peer_presence(e: _Edit, name: str, text: str, *, online: bool) -> None:
    """The other user of a private conversation left the server (the lobby's PART: nobody
    leaves the lobby otherwise) or came back: said there, where a line typed meanwhile
    would be refused (``no_such_user``), and the conversation's user list follows."""
    key = private_key(name)
    if key not in e.convs:
        return
    present = fold_name(name) in e.convs[key].users
    if present == online:
        return
    if online:
        e.add_user(key, name)
    else:
        e.remove_user(key, name)
    e.notice(key, text)


def _left(e: _Edit, frame: f.UserLeft) -> None:
    room = frame.room
    conv = e.convs.get(room)
    if conv is None:
        return
    if e.is_me(frame.name):
        e.remove(room)
        e.note(f"You left #{room}")
        return
    e.remove_user(room, frame.name)
    reason = f" ({frame.reason})" if frame.reason else ""
    if room == DEFAULT_ROOM:  # the lobby gets the server's own "left" notice
        _peer_presence(e, frame.name, f"{frame.name} left the chat{reason}", online=False)
    else:
        e.notice(room, f"{frame.name} left #{room}{reason}")


def _renamed(e: _Edit, frame: f.NickChanged) -> None:
    old = fold_name(frame.old)
    for key, member_of in list(e.convs.items()):
        if old in member_of.users:
            e.remove_user(key, frame.old)
            e.add_user(key, frame.new)
    old_key, new_key = private_key(frame.old), private_key(frame.new)
    conv = e.convs.get(old_key)
    if conv is None:
        return
    # the private conversation follows the user: new key and peer, same place in the list
    renamed = replace(conv, key=new_key, peer=frame.new)
    convs: dict[str, Conversation] = {}
    for key, other in e.convs.items():
        if key == old_key:
            convs[new_key] = renamed
        elif key != new_key:
            convs[key] = other
    e.convs = convs
    e.change(ListChanged())
    if e.active == old_key:
        e.active = new_key
        e.change(ViewChanged(new_key))
    if old_key != new_key:
        e.notice(new_key, f"{frame.old} is now {frame.new}")


def _topic(e: _Edit, frame: f.Topic) -> None:
    conv = e.room(frame.room)
    if conv.topic == frame.text and conv.lines:
        return  # the same topic again (a rejoin after reconnecting)
    e.convs[frame.room] = replace(conv, topic=frame.text, topic_by=frame.setter)
    e.change(TopicChanged(frame.room))
    who = f" by {frame.setter}" if frame.setter else ""
    if frame.text:
        e.notice(frame.room, f"Topic{who}: {frame.text}")
    else:  # cleared (/topic --clear): not a topic of nothing
        e.notice(frame.room, f"Topic cleared{who}")


def _rooms(e: _Edit, frame: f.RoomList) -> None:
    rooms = ", ".join(f"#{r.room} ({r.members})" for r in frame.rooms) or "none"
    e.note(f"Rooms: {rooms}")


def _file_key(e: _Edit, frame: f.FileOffer | f.FileInfo) -> str:
    """The conversation of a shared file: its room, or the private one with the other user."""
    if not frame.private:
        return e.room(frame.target).key
    other = frame.target[1:] if e.is_me(frame.sender) else frame.sender
    conv = e.private(other)
    e.users(conv.key, {fold_name(n): n for n in (e.nick, other) if n})
    return conv.key


def _known(e: _Edit, frame: f.FileOffer | f.FileInfo, key: str) -> SharedFile:
    """The numbered file of an offer or listing line (numbered once, on first sight)."""
    for known in e.files:
        if known.id == frame.id:
            return known
    shared = SharedFile(len(e.files) + 1, frame.id, key, frame.sender, frame.name, frame.size,
                        frame.sha256, frame.ts)
    e.files = (*e.files, shared)
    return shared


def _file_offer(e: _Edit, frame: f.FileOffer) -> None:
    key = _file_key(e, frame)
    shared = _known(e, frame, key)
    mine = e.is_me(frame.sender)
    line = ChatLine(frame.ts, "file", frame.name, name=frame.sender, mine=mine,
                    mention=frame.private and not mine, file=shared)
    e.add_line(key, line, mention=frame.private and not mine)


def _file_info(e: _Edit, frame: f.FileInfo) -> None:
    key = _file_key(e, frame)
    shared = _known(e, frame, key)
    line = ChatLine(frame.ts, "file", frame.name, name=frame.sender,
                    mine=e.is_me(frame.sender), file=shared)
    e.add_line(e.active, line, count=False)


def _file_list(e: _Edit, frame: f.FileList) -> None:
    where = f"with {frame.target[1:]}" if frame.target.startswith("@") else f"in #{frame.target}"
    if frame.count:
        e.note(f"{frame.count} file(s) shared {where}; /get N downloads one")
    else:
        e.note(f"No files shared {where}")


#: refusals of a private message: it was not delivered (``no_such_user``: nobody of that name
#: is online; ``message_too_long``; ``degraded``: a cluster node without its Redis)
PRIVATE_REFUSALS = frozenset({"no_such_user", "message_too_long", "degraded"})


def _error(e: _Edit, frame: f.Error) -> None:
    e.note(f"{frame.text} [{frame.code}]", error=True)
    if frame.code in ("room_invalid", "not_in_room"):
        e.pending_join = None
    if frame.code in PRIVATE_REFUSALS and e.pending_private:
        # the oldest /msg still waiting was refused (the server answers in order): nothing
        # to open; the refusal is on screen, where the command was typed
        e.pending_private = e.pending_private[1:]


FrameT = TypeVar("FrameT", bound=f.Frame)


def _handlers() -> dict[type[f.Frame], Callable[[_Edit, f.Frame], None]]:
    table: dict[type[f.Frame], Callable[[_Edit, f.Frame], None]] = {}

    def on(kind: type[FrameT], handler: Callable[[_Edit, FrameT], None]) -> None:
        table[kind] = handler  # type: ignore[assignment]

    on(f.RoomMessage, _room_line)
    on(f.Action, _room_line)
    on(f.ChatMessage, _seed_line)
    on(f.Private, _private)
    on(f.Notice, _notice)
    on(f.Bye, _bye)
    on(f.Hello, _hello)
    on(f.You, _you)
    on(f.UserList, _user_list)
    on(f.RoomUsers, _room_users)
    on(f.UserJoined, _joined)
    on(f.UserLeft, _left)
    on(f.NickChanged, _renamed)
    on(f.Topic, _topic)
    on(f.RoomList, _rooms)
    on(f.Error, _error)
    on(f.FileOffer, _file_offer)
    on(f.FileInfo, _file_info)
    on(f.FileList, _file_list)
    return table


#: frame type -> how it changes the state (PING, PONG and unknown frames change nothing)
HANDLERS = _handlers()


def apply(state: ChatState, frame: f.Frame, now: int) -> Step:
    """The state after the server sent ``frame`` (at ``now``, ms), and what changed."""
    handler = HANDLERS.get(type(frame))
    if handler is None:
        return state, ()
    edit = _Edit(state, now)
    handler(edit, frame)
    return edit.result()


def apply_all(state: ChatState, frames: Iterable[f.Frame], now: int) -> Step:
    """The state after the server sent ``frames``, in order: the same as :func:`apply` of each
    in turn, in one step (one copy of the state, the changes of all of them)."""
    edit = _Edit(state, now)
    for frame in frames:
        handler = HANDLERS.get(type(frame))
        if handler is not None:
            handler(edit, frame)
    return edit.result()


# --------------------------------------------------------------------------- local steps


def note(state: ChatState, text: str, now: int, *, error: bool = False) -> Step:
    """A line of the client's own (help, a refusal, ...) in the conversation on screen."""
    edit = _Edit(state, now)
    edit.note(text, error=error)
    return edit.result()


def switch(state: ChatState, key: str) -> Step:
    """Show conversation ``key`` (its unread count is reset); nothing if there is none."""
    if key not in state.conversations:
        return state, ()
    edit = _Edit(state, 0)
    edit.switch(key)
    return edit.result()


def cycle(state: ChatState, step: int) -> Step:
    """Show the next (``step`` 1) or previous (-1) conversation of the list."""
    keys = state.keys()
    idx = keys.index(state.active) if state.active in keys else 0
    return switch(state, keys[(idx + step) % len(keys)])


def open_private(state: ChatState, nick: str) -> Step:
    """Open (or show) the private conversation with ``nick``."""
    edit = _Edit(state, 0)
    conv = edit.private(nick)
    edit.users(conv.key, {fold_name(n): n for n in (state.nick, nick) if n})
    edit.switch(conv.key)
    return edit.result()


def close(state: ChatState, key: str) -> Step:
    """Close a conversation (not the lobby); the lobby is shown if it was on screen."""
    edit = _Edit(state, 0)
    edit.remove(key)
    return edit.result()


def clear(state: ChatState, key: str) -> Step:
    """Empty a conversation's window."""
    conv = state.conversations.get(key)
    if conv is None:
        return state, ()
    edit = _Edit(state, 0)
    edit.convs[key] = replace(conv, lines=())
    if key == state.active:
        edit.change(ViewChanged(key))
    return edit.result()


def expect_join(state: ChatState, room: str) -> ChatState:
    """/join sent: switch to ``room`` once the server says we are in."""
    return replace(state, pending_join=room)


def expect_private(state: ChatState, nick: str) -> ChatState:
    """``/msg nick TEXT`` sent with no conversation with ``nick`` yet: open it when the server
    delivers the message (its echo), not before (nobody of that name may be online)."""
    entry = (private_key(nick), state.active)
    return replace(state, pending_private=(*state.pending_private, entry))


def expect_who(state: ChatState, room: str) -> ChatState:
    """/who sent: show the member list of ``room`` when it comes."""
    return replace(state, pending_who=state.pending_who | {room})


def connected(state: ChatState, server_name: str | None, file_max: int | None = None) -> Step:
    """A new connection (HELLO exchanged); no nickname on it yet. ``file_max``: the largest
    file the server takes (None: no file sharing)."""
    edit = _Edit(state, 0)
    edit.online, edit.registered = True, False
    edit.file_max = file_max
    if server_name and server_name != state.server_name:
        edit.server_name = server_name
        edit.change(ServerNamed(server_name))
    return edit.result()


def disconnected(state: ChatState) -> Step:
    """The connection ended: no nickname and no room on the server until we are back."""
    convs = {k: replace(c, joined=False) if c.joined else c
             for k, c in state.conversations.items()}
    return replace(state, conversations=convs, online=False, registered=False,
                   pending_private=()), ()
