"""Frame models: small immutable pydantic types, one per line type on the wire.

A frame is one line ``TAG|payload``. Each model knows its tag, how to render its payload
and how to parse it back; validation (names, rooms, control characters) happens here so
that no invalid frame can be built, sent or received. Two discriminated unions group the
frames by direction: :data:`ClientFrame` (client -> server) and :data:`ServerFrame`
(server -> client). See docs/protocol.md for the wire format with examples.
"""

from __future__ import annotations

import re
from typing import Annotated, ClassVar, Literal, TypeVar, Union

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter

from richchat.core.protocol.text import (
    MAX_TOPIC_LEN,
    sanitize_text,
    validate_nick,
    validate_room,
)

PROTOCOL_VERSION = 1

Nick = Annotated[str, AfterValidator(validate_nick)]
Room = Annotated[str, AfterValidator(validate_room)]
SafeText = Annotated[str, AfterValidator(sanitize_text)]
Token = Annotated[str, Field(max_length=64, pattern=r"^[\w.\-]*$")]
ErrCode = Annotated[str, Field(pattern=r"^[a-z][a-z_]{0,31}$")]

F = TypeVar("F", bound="Frame")


class FrameSyntaxError(ValueError):
    """The payload does not have the shape of this frame."""


class Frame(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    tag: ClassVar[str]

    def payload(self) -> str:
        raise NotImplementedError

    @classmethod
    def parse_payload(cls: type[F], payload: str) -> F:
        raise NotImplementedError

    def line(self) -> str:
        """The frame as one line of text, without the terminator."""
        return f"{self.tag}|{self.payload()}"


def _split(payload: str, n: int, tag: str) -> list[str]:
    """Split into exactly ``n`` fields; the last one keeps any further ``|``."""
    parts = payload.split("|", n - 1)
    if len(parts) != n:
        raise FrameSyntaxError(f"{tag} needs {n} fields separated by '|'")
    return parts


def _int(value: str, what: str) -> int:
    if not value.isdigit():
        raise FrameSyntaxError(f"{what} must be a non-negative integer")
    return int(value)


# --------------------------------------------------------------------------- shared


def _kv_value(value: str) -> str:
    return sanitize_text(value).replace("|", "/").replace("=", "-")


class Hello(Frame):
    """``HELLO|1|richchat/0.1.0[|key=value...]``: both directions.

    The client sends it first to say it speaks the protocol (and not plain text); the
    server answers with its own, carrying its name, users online, TLS flag and features.
    """

    tag: ClassVar[str] = "HELLO"
    kind: Literal["HELLO"] = "HELLO"
    version: int = Field(ge=1, le=999)
    agent: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[\w./+\-]+$")]
    name: str | None = Field(default=None, max_length=64)
    users: int | None = Field(default=None, ge=0)
    tls: bool | None = None
    features: tuple[str, ...] = ()

    def payload(self) -> str:
        parts = [str(self.version), self.agent]
        if self.name is not None:
            parts.append(f"name={_kv_value(self.name)}")
        if self.users is not None:
            parts.append(f"users={self.users}")
        if self.tls is not None:
            parts.append(f"tls={int(self.tls)}")
        if self.features:
            parts.append("features=" + ",".join(self.features))
        return "|".join(parts)

    @classmethod
    def parse_payload(cls, payload: str) -> Hello:
        parts = payload.split("|")
        if len(parts) < 2:
            raise FrameSyntaxError("HELLO needs at least a version and an agent")
        values: dict[str, object] = {
            "version": _int(parts[0], "version"),
            "agent": parts[1],
        }
        for item in parts[2:]:
            key, sep, value = item.partition("=")
            if not sep:
                continue  # tolerate unknown bare words (forward compatibility)
            if key == "name":
                values["name"] = value
            elif key == "users":
                values["users"] = _int(value, "users")
            elif key == "tls":
                values["tls"] = value == "1"
            elif key == "features":
                values["features"] = tuple(f for f in value.split(",") if f)
            # unknown keys are ignored: later versions may add some
        return cls.model_validate(values)


class Ping(Frame):
    """``PING|token``: both directions; the peer answers ``PONG|token``."""

    tag: ClassVar[str] = "PING"
    kind: Literal["PING"] = "PING"
    token: Token = ""

    def payload(self) -> str:
        return self.token

    @classmethod
    def parse_payload(cls, payload: str) -> Ping:
        return cls(token=payload)


class Pong(Frame):
    tag: ClassVar[str] = "PONG"
    kind: Literal["PONG"] = "PONG"
    token: Token = ""

    def payload(self) -> str:
        return self.token

    @classmethod
    def parse_payload(cls, payload: str) -> Pong:
        return cls(token=payload)


# --------------------------------------------------------------------------- client -> server


class SetNick(Frame):
    """``CMD_USER|alice``: set or change the nickname (seed frame)."""

    tag: ClassVar[str] = "CMD_USER"
    kind: Literal["CMD_USER"] = "CMD_USER"
    name: Nick

    def payload(self) -> str:
        return self.name

    @classmethod
    def parse_payload(cls, payload: str) -> SetNick:
        return cls(name=payload)


class Say(Frame):
    """``MSG|hello``: a chat line for the default room (seed frame)."""

    tag: ClassVar[str] = "MSG"
    kind: Literal["MSG"] = "MSG"
    text: SafeText

    def payload(self) -> str:
        return self.text

    @classmethod
    def parse_payload(cls, payload: str) -> Say:
        return cls(text=payload)


class SayRoom(Frame):
    """``RMSG|room|text``: a chat line for one room."""

    tag: ClassVar[str] = "RMSG"
    kind: Literal["RMSG"] = "RMSG"
    room: Room
    text: SafeText

    def payload(self) -> str:
        return f"{self.room}|{self.text}"

    @classmethod
    def parse_payload(cls, payload: str) -> SayRoom:
        room, text = _split(payload, 2, cls.tag)
        return cls(room=room, text=text)


class JoinRoom(Frame):
    """``CMD_JOIN|room``: join (and create if needed) a room."""

    tag: ClassVar[str] = "CMD_JOIN"
    kind: Literal["CMD_JOIN"] = "CMD_JOIN"
    room: Room

    def payload(self) -> str:
        return self.room

    @classmethod
    def parse_payload(cls, payload: str) -> JoinRoom:
        return cls(room=payload)


class PartRoom(Frame):
    """``CMD_PART|room``: leave a room."""

    tag: ClassVar[str] = "CMD_PART"
    kind: Literal["CMD_PART"] = "CMD_PART"
    room: Room

    def payload(self) -> str:
        return self.room

    @classmethod
    def parse_payload(cls, payload: str) -> PartRoom:
        return cls(room=payload)


class ListRooms(Frame):
    """``CMD_ROOMS|``: ask for the room list (answered with ``ROOMS|``)."""

    tag: ClassVar[str] = "CMD_ROOMS"
    kind: Literal["CMD_ROOMS"] = "CMD_ROOMS"

    def payload(self) -> str:
        return ""

    @classmethod
    def parse_payload(cls, payload: str) -> ListRooms:
        return cls()


class SetTopic(Frame):
    """``CMD_TOPIC|room|text``: set a room's topic."""

    tag: ClassVar[str] = "CMD_TOPIC"
    kind: Literal["CMD_TOPIC"] = "CMD_TOPIC"
    room: Room
    text: Annotated[SafeText, Field(max_length=MAX_TOPIC_LEN)]

    def payload(self) -> str:
        return f"{self.room}|{self.text}"

    @classmethod
    def parse_payload(cls, payload: str) -> SetTopic:
        room, text = _split(payload, 2, cls.tag)
        return cls(room=room, text=text)


class SendPrivate(Frame):
    """``CMD_MSG|bob|text``: a private message to one user."""

    tag: ClassVar[str] = "CMD_MSG"
    kind: Literal["CMD_MSG"] = "CMD_MSG"
    to: Nick
    text: SafeText

    def payload(self) -> str:
        return f"{self.to}|{self.text}"

    @classmethod
    def parse_payload(cls, payload: str) -> SendPrivate:
        to, text = _split(payload, 2, cls.tag)
        return cls(to=to, text=text)


class SendAction(Frame):
    """``CMD_ME|room|waves``: an emote in a room."""

    tag: ClassVar[str] = "CMD_ME"
    kind: Literal["CMD_ME"] = "CMD_ME"
    room: Room
    text: SafeText

    def payload(self) -> str:
        return f"{self.room}|{self.text}"

    @classmethod
    def parse_payload(cls, payload: str) -> SendAction:
        room, text = _split(payload, 2, cls.tag)
        return cls(room=room, text=text)


class Who(Frame):
    """``CMD_WHO|room``: ask for a room's members (answered with ``RLIST|``)."""

    tag: ClassVar[str] = "CMD_WHO"
    kind: Literal["CMD_WHO"] = "CMD_WHO"
    room: Room

    def payload(self) -> str:
        return self.room

    @classmethod
    def parse_payload(cls, payload: str) -> Who:
        return cls(room=payload)


class Quit(Frame):
    """``CMD_QUIT|reason``: leave the server politely."""

    tag: ClassVar[str] = "CMD_QUIT"
    kind: Literal["CMD_QUIT"] = "CMD_QUIT"
    reason: Annotated[SafeText, Field(max_length=200)] = ""

    def payload(self) -> str:
        return self.reason

    @classmethod
    def parse_payload(cls, payload: str) -> Quit:
        return cls(reason=payload)


class RawText(Frame):
    """Not a frame: a line typed by a plain-text client (netcat). Never encoded."""

    tag: ClassVar[str] = ""
    kind: Literal["RAW"] = "RAW"
    text: SafeText

    def payload(self) -> str:
        return self.text

    def line(self) -> str:
        return self.text

    @classmethod
    def parse_payload(cls, payload: str) -> RawText:
        return cls(text=payload)


# --------------------------------------------------------------------------- server -> client


_ENTRY_RE = re.compile(r"^(?P<name>[^(),|]+)\((?P<host>[^()]*):(?P<port>\d{1,5})\)$")


class UserEntry(BaseModel):
    """One user as shown in ``ULIST``: ``name(host:port)``; IPv6 hosts in brackets."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    name: Nick
    host: str = Field(pattern=r"^[0-9A-Za-z.:%\-]*$", max_length=64)
    port: int = Field(ge=0, le=65535)

    def render(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.name}({host}:{self.port})"

    @classmethod
    def parse(cls, text: str) -> UserEntry:
        m = _ENTRY_RE.match(text)
        if not m:
            raise FrameSyntaxError(f"not a user entry: {text!r}")
        host = m["host"]
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        return cls(name=m["name"], host=host, port=int(m["port"]))


def _entries(payload: str) -> tuple[UserEntry, ...]:
    if not payload:
        return ()
    return tuple(UserEntry.parse(item) for item in payload.split(","))


class ChatMessage(Frame):
    """``MSG|alice: hello``: a chat line in the default room, stamped by the server (seed)."""

    tag: ClassVar[str] = "MSG"
    kind: Literal["MSG"] = "MSG"
    name: Nick
    text: SafeText

    def payload(self) -> str:
        return f"{self.name}: {self.text}"

    @classmethod
    def parse_payload(cls, payload: str) -> ChatMessage:
        name, sep, text = payload.partition(": ")
        if not sep:
            raise FrameSyntaxError("MSG from the server is 'name: text'")
        return cls(name=name, text=text)


class Notice(Frame):
    """``SRV|text``: a server notice (seed)."""

    tag: ClassVar[str] = "SRV"
    kind: Literal["SRV"] = "SRV"
    text: SafeText

    def payload(self) -> str:
        return self.text

    @classmethod
    def parse_payload(cls, payload: str) -> Notice:
        return cls(text=payload)


class UserList(Frame):
    """``ULIST|alice(10.0.0.5:50432),bob(10.0.0.6:40100)``: users of the default room (seed)."""

    tag: ClassVar[str] = "ULIST"
    kind: Literal["ULIST"] = "ULIST"
    users: tuple[UserEntry, ...] = ()

    def payload(self) -> str:
        return ",".join(u.render() for u in self.users)

    @classmethod
    def parse_payload(cls, payload: str) -> UserList:
        return cls(users=_entries(payload))


class Error(Frame):
    """``ERR|code|text``: a request was refused; ``code`` is machine-readable."""

    tag: ClassVar[str] = "ERR"
    kind: Literal["ERR"] = "ERR"
    code: ErrCode
    text: SafeText

    def payload(self) -> str:
        return f"{self.code}|{self.text}"

    @classmethod
    def parse_payload(cls, payload: str) -> Error:
        code, text = _split(payload, 2, cls.tag)
        return cls(code=code, text=text)


class You(Frame):
    """``YOU|alice``: your nickname is now ``alice`` (registration, rename, guest name)."""

    tag: ClassVar[str] = "YOU"
    kind: Literal["YOU"] = "YOU"
    name: Nick

    def payload(self) -> str:
        return self.name

    @classmethod
    def parse_payload(cls, payload: str) -> You:
        return cls(name=payload)


class RoomMessage(Frame):
    """``RMSG|room|id|ts_ms|alice|text``: a chat line in a room, with id and timestamp."""

    tag: ClassVar[str] = "RMSG"
    kind: Literal["RMSG"] = "RMSG"
    room: Room
    id: int = Field(ge=0)
    ts: int = Field(ge=0, description="milliseconds since the Unix epoch")
    name: Nick
    text: SafeText

    def payload(self) -> str:
        return f"{self.room}|{self.id}|{self.ts}|{self.name}|{self.text}"

    @classmethod
    def parse_payload(cls, payload: str) -> RoomMessage:
        room, id_, ts, name, text = _split(payload, 5, cls.tag)
        return cls(room=room, id=_int(id_, "id"), ts=_int(ts, "ts"), name=name, text=text)


class Action(Frame):
    """``ACTION|room|id|ts_ms|alice|waves``: an emote (``/me waves``) in a room."""

    tag: ClassVar[str] = "ACTION"
    kind: Literal["ACTION"] = "ACTION"
    room: Room
    id: int = Field(ge=0)
    ts: int = Field(ge=0)
    name: Nick
    text: SafeText

    def payload(self) -> str:
        return f"{self.room}|{self.id}|{self.ts}|{self.name}|{self.text}"

    @classmethod
    def parse_payload(cls, payload: str) -> Action:
        room, id_, ts, name, text = _split(payload, 5, cls.tag)
        return cls(room=room, id=_int(id_, "id"), ts=_int(ts, "ts"), name=name, text=text)


class Private(Frame):
    """``PRIV|ts_ms|alice|bob|text``: a private message from alice to bob."""

    tag: ClassVar[str] = "PRIV"
    kind: Literal["PRIV"] = "PRIV"
    ts: int = Field(ge=0)
    sender: Nick
    to: Nick
    text: SafeText

    def payload(self) -> str:
        return f"{self.ts}|{self.sender}|{self.to}|{self.text}"

    @classmethod
    def parse_payload(cls, payload: str) -> Private:
        ts, sender, to, text = _split(payload, 4, cls.tag)
        return cls(ts=_int(ts, "ts"), sender=sender, to=to, text=text)


class UserJoined(Frame):
    """``JOIN|room|alice(10.0.0.5:50432)``: incremental user-list update."""

    tag: ClassVar[str] = "JOIN"
    kind: Literal["JOIN"] = "JOIN"
    room: Room
    user: UserEntry

    def payload(self) -> str:
        return f"{self.room}|{self.user.render()}"

    @classmethod
    def parse_payload(cls, payload: str) -> UserJoined:
        room, entry = _split(payload, 2, cls.tag)
        return cls(room=room, user=UserEntry.parse(entry))


class UserLeft(Frame):
    """``PART|room|alice|reason``: incremental user-list update."""

    tag: ClassVar[str] = "PART"
    kind: Literal["PART"] = "PART"
    room: Room
    name: Nick
    reason: SafeText = ""

    def payload(self) -> str:
        return f"{self.room}|{self.name}|{self.reason}"

    @classmethod
    def parse_payload(cls, payload: str) -> UserLeft:
        room, name, reason = _split(payload, 3, cls.tag)
        return cls(room=room, name=name, reason=reason)


class NickChanged(Frame):
    """``NICK|old|new``: a user was renamed."""

    tag: ClassVar[str] = "NICK"
    kind: Literal["NICK"] = "NICK"
    old: Nick
    new: Nick

    def payload(self) -> str:
        return f"{self.old}|{self.new}"

    @classmethod
    def parse_payload(cls, payload: str) -> NickChanged:
        old, new = _split(payload, 2, cls.tag)
        return cls(old=old, new=new)


class RoomUsers(Frame):
    """``RLIST|room|alice(ip:port),...``: the full member list of one room."""

    tag: ClassVar[str] = "RLIST"
    kind: Literal["RLIST"] = "RLIST"
    room: Room
    users: tuple[UserEntry, ...] = ()

    def payload(self) -> str:
        return f"{self.room}|" + ",".join(u.render() for u in self.users)

    @classmethod
    def parse_payload(cls, payload: str) -> RoomUsers:
        room, entries = _split(payload, 2, cls.tag)
        return cls(room=room, users=_entries(entries))


class RoomInfo(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    room: Room
    members: int = Field(ge=0)


class RoomList(Frame):
    """``ROOMS|lobby:3,dev:1``: every room with its member count."""

    tag: ClassVar[str] = "ROOMS"
    kind: Literal["ROOMS"] = "ROOMS"
    rooms: tuple[RoomInfo, ...] = ()

    def payload(self) -> str:
        return ",".join(f"{r.room}:{r.members}" for r in self.rooms)

    @classmethod
    def parse_payload(cls, payload: str) -> RoomList:
        rooms = []
        for item in filter(None, payload.split(",")):
            room, sep, count = item.rpartition(":")
            if not sep:
                raise FrameSyntaxError("ROOMS entries are room:count")
            rooms.append(RoomInfo(room=room, members=_int(count, "count")))
        return cls(rooms=tuple(rooms))


class Topic(Frame):
    """``TOPIC|room|setter|text``: a room's topic (sent on join and on change)."""

    tag: ClassVar[str] = "TOPIC"
    kind: Literal["TOPIC"] = "TOPIC"
    room: Room
    setter: str = Field(default="", max_length=64)
    text: SafeText = ""

    def payload(self) -> str:
        return f"{self.room}|{self.setter}|{self.text}"

    @classmethod
    def parse_payload(cls, payload: str) -> Topic:
        room, setter, text = _split(payload, 3, cls.tag)
        return cls(room=room, setter=setter, text=text)


class Unknown(Frame):
    """A server line this client version does not understand (ignored, forward-compatible)."""

    tag: ClassVar[str] = ""
    kind: Literal["UNKNOWN"] = "UNKNOWN"
    text: str

    def payload(self) -> str:
        return self.text

    def line(self) -> str:
        return self.text

    @classmethod
    def parse_payload(cls, payload: str) -> Unknown:
        return cls(text=payload)


ClientFrame = Annotated[
    Union[
        Hello,
        Ping,
        Pong,
        SetNick,
        Say,
        SayRoom,
        JoinRoom,
        PartRoom,
        ListRooms,
        SetTopic,
        SendPrivate,
        SendAction,
        Who,
        Quit,
        RawText,
    ],
    Field(discriminator="kind"),
]

ServerFrame = Annotated[
    Union[
        Hello,
        Ping,
        Pong,
        ChatMessage,
        Notice,
        UserList,
        Error,
        You,
        RoomMessage,
        Action,
        Private,
        UserJoined,
        UserLeft,
        NickChanged,
        RoomUsers,
        RoomList,
        Topic,
        Unknown,
    ],
    Field(discriminator="kind"),
]

CLIENT_FRAMES: dict[str, type[Frame]] = {
    cls.tag: cls
    for cls in (
        Hello,
        Ping,
        Pong,
        SetNick,
        Say,
        SayRoom,
        JoinRoom,
        PartRoom,
        ListRooms,
        SetTopic,
        SendPrivate,
        SendAction,
        Who,
        Quit,
    )
}

SERVER_FRAMES: dict[str, type[Frame]] = {
    cls.tag: cls
    for cls in (
        Hello,
        Ping,
        Pong,
        ChatMessage,
        Notice,
        UserList,
        Error,
        You,
        RoomMessage,
        Action,
        Private,
        UserJoined,
        UserLeft,
        NickChanged,
        RoomUsers,
        RoomList,
        Topic,
    )
}

client_frame_adapter: TypeAdapter[ClientFrame] = TypeAdapter(ClientFrame)
server_frame_adapter: TypeAdapter[ServerFrame] = TypeAdapter(ServerFrame)
