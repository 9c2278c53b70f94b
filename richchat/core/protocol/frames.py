"""Frame models: small immutable pydantic types, one per line type on the wire.

A frame is one line ``TAG|payload``. Each model knows its tag, how to render its payload
and how to parse it back; validation (names, rooms, control characters) happens here so
that no invalid frame can be built, sent or received. Two discriminated unions group the
frames by direction: :data:`ClientFrame` (client -> server) and :data:`ServerFrame`
(server -> client). See docs/protocol.md for the wire format with examples.
"""


# No ``from __future__ import annotations`` here: with it every field's annotation is a string
# that pydantic compiles and evaluates when the class is created (286 ``compile`` calls for the
# 44 frames), about 28 M instructions of a `richchat send` (3%). The few annotations that name
# their own class are quoted instead.
import re
from typing import Annotated, ClassVar, Literal, TypeVar, Union, get_args

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from richchat.core.constants import FINGERPRINT_PATTERN

# re-exported (``frames.PROTOCOL_VERSION``); defined once, in richchat.core.constants
from richchat.core.constants import PROTOCOL_VERSION as PROTOCOL_VERSION
from richchat.core.protocol.text import (
    MAX_QUIT_REASON,
    MAX_TOPIC_LEN,
    is_digits,
    sanitize_text,
    validate_nick,
    validate_room,
)

Nick = Annotated[str, AfterValidator(validate_nick)]
Room = Annotated[str, AfterValidator(validate_room)]
SafeText = Annotated[str, AfterValidator(sanitize_text)]
Token = Annotated[str, Field(max_length=64, pattern=r"^[\w.\-]*$")]


def _topic_length(text: str) -> str:
    if len(text) > MAX_TOPIC_LEN:
        raise ValueError(
            f"a topic has at most {MAX_TOPIC_LEN} characters (this one has {len(text)})"
        )
    return text


def _cut_reason(text: str) -> str:
    # a quit is never refused for its reason: the user leaves, the reason is cut
    return text[:MAX_QUIT_REASON]


TopicText = Annotated[SafeText, AfterValidator(_topic_length)]
QuitReason = Annotated[SafeText, AfterValidator(_cut_reason)]
ErrCode = Annotated[str, Field(pattern=r"^[a-z][a-z_]{0,31}$")]
#: a file's SHA-256, lowercase hex
Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
#: a shared file's id (``richchat get HOST ID``): lowercase letters and digits
FileId = Annotated[str, Field(pattern=r"^[0-9a-z]{6,32}$")]
#: a transfer token the server issued (``UPLOAD``/``DOWNLOAD``), presented on the transfer
#: connection (``XFER``)
TransferToken = Annotated[str, Field(pattern=r"^[A-Za-z0-9_\-]{16,64}$")]
#: the longest file name a frame may carry, in characters (the server keeps at most 255 of
#: them, receivers at most 200 bytes: see protocol/filenames.py)
MAX_FILE_NAME = 1024


def _validate_target(value: str) -> str:
    """A file's audience: a room (``dev``, ``#dev``) or one user (``@bob``)."""
    if value.startswith("@"):
        return "@" + validate_nick(value[1:])
    return validate_room(value)


#: where a file is shared: a room name, or ``@`` + a nickname (a private file)
FileTarget = Annotated[str, AfterValidator(_validate_target)]
FileName = Annotated[
    SafeText, Field(min_length=1, max_length=MAX_FILE_NAME)
]


def _digits_only(value: object) -> object:
    if isinstance(value, str) and not is_digits(value):
        raise ValueError("must be a non-negative integer written with digits only")
    return value


#: A non-negative integer field; on the wire only ASCII digits are accepted.
WireInt = Annotated[int, BeforeValidator(_digits_only), Field(ge=0)]

F = TypeVar("F", bound="Frame")


class FrameSyntaxError(ValueError):
    """The payload does not have the shape of this frame."""


class Frame(BaseModel):
    # defer_build: a frame's validator is built on first use, so a short-lived process
    # (`richchat send`) pays only for the frames it really uses.
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    tag: ClassVar[str]
    #: field names in wire order; the last one is free text and may contain ``|``
    wire: ClassVar[tuple[str, ...]] = ()

    def payload(self) -> str:
        return "|".join(str(getattr(self, name)) for name in self.wire)

    @classmethod
    def parse_payload(cls: type[F], payload: str) -> F:
        if not cls.wire:
            return cls()
        parts = _split(payload, len(cls.wire), cls.tag)
        return cls.model_validate(dict(zip(cls.wire, parts, strict=True)))

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
    if not is_digits(value):
        raise FrameSyntaxError(f"{what} must be a non-negative integer")
    return int(value)


# --------------------------------------------------------------------------- shared


def _is_rate(text: str) -> bool:
    """A flood rate as the server writes it: digits with at most one '.' (``10``, ``0.5``)."""
    return is_digits(text.replace(".", "", 1))


def _rate_text(rate: float) -> str:
    """``10.0`` -> ``10``, ``0.5`` -> ``0.5``, never an exponent (``1e-07`` -> ``0.0000001``)."""
    from decimal import Decimal

    text = format(Decimal(repr(rate)), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _kv_value(value: str) -> str:
    return sanitize_text(value).replace("|", "/").replace("=", "-")


class Hello(Frame):
    """``HELLO|1|richchat/0.1.0[|key=value...]``: both directions.

    The client sends it first to say it speaks the protocol (and not plain text); the
    server answers with its own, carrying ``role=server`` (a key no client sends, so an echo
    of a client's HELLO is never taken for a server's answer: see :attr:`from_server`), its
    name, users online, TLS flag and key fingerprint (``fp=``), features, flood limit
    (``flood=RATE/BURST``: lines per second and burst; rate 0 is no limit) and, when it takes
    files, the largest it accepts (``files=BYTES``) and its speed limit per transfer, if any
    (``filerate=BYTES``: bytes per second).
    """

    tag: ClassVar[str] = "HELLO"
    kind: Literal["HELLO"] = "HELLO"
    version: int = Field(ge=1, le=999)
    agent: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[\w./+\-]+$")]
    #: "server" in a server's answer only; clients send no role
    role: Literal["server"] | None = None
    #: the server's name: shown by clients (header, wizard, scan), so never a control character
    name: Annotated[SafeText, Field(max_length=64)] | None = None
    users: int | None = Field(default=None, ge=0)
    tls: bool | None = None
    #: ``fp=SHA256:...``: the fingerprint of the server's TLS key, on a TLS connection. A
    #: hint only (anyone can write one): trust comes from the client's pin
    fingerprint: Annotated[str, Field(pattern=FINGERPRINT_PATTERN)] | None = None
    features: tuple[str, ...] = ()
    #: the server's flood limit: lines per second (0: none) and burst (``flood=10/30``)
    flood_rate: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    flood_burst: int | None = Field(default=None, ge=1)
    #: file sharing: the largest file the server accepts, in bytes (``files=104857600``);
    #: None when the server does not take files
    file_max: int | None = Field(default=None, ge=0)
    #: the server's speed limit of each transfer, bytes per second (``filerate=200000``);
    #: None: no limit. A client waiting for an upload's verification allows for it: the
    #: bytes the network buffers hold reach a limited server that slowly
    file_rate: int | None = Field(default=None, ge=1)
    #: a node of a cluster (``server --redis``): the name of the chat it serves
    cluster: str | None = Field(default=None, max_length=64)

    def payload(self) -> str:
        parts = [str(self.version), self.agent]
        if self.role is not None:
            parts.append(f"role={self.role}")
        if self.name is not None:
            parts.append(f"name={_kv_value(self.name)}")
        if self.users is not None:
            parts.append(f"users={self.users}")
        if self.tls is not None:
            parts.append(f"tls={int(self.tls)}")
        if self.fingerprint is not None:
            parts.append(f"fp={self.fingerprint}")
        if self.features:
            parts.append("features=" + ",".join(self.features))
        if self.flood_rate is not None and self.flood_burst is not None:
            parts.append(f"flood={_rate_text(self.flood_rate)}/{self.flood_burst}")
        if self.file_max is not None:
            parts.append(f"files={self.file_max}")
        if self.file_rate is not None:
            parts.append(f"filerate={self.file_rate}")
        if self.cluster is not None:
            parts.append(f"cluster={_kv_value(self.cluster)}")
        return "|".join(parts)

    @classmethod
    def parse_payload(cls, payload: str) -> "Hello":
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
            if key == "role":
                if value == "server":  # other roles: not ours to know (forward compatibility)
                    values["role"] = value
            elif key == "name":
                values["name"] = value
            elif key == "users":
                values["users"] = _int(value, "users")
            elif key == "tls":
                values["tls"] = value == "1"
            elif key == "fp":
                if re.match(FINGERPRINT_PATTERN, value):  # a malformed hint is no hint
                    values["fingerprint"] = value
            elif key == "features":
                values["features"] = tuple(f for f in value.split(",") if f)
            elif key == "flood":
                rate, slash, burst = value.partition("/")
                if slash and _is_rate(rate) and is_digits(burst) and int(burst) >= 1:
                    values["flood_rate"], values["flood_burst"] = float(rate), int(burst)
            elif key == "files" and is_digits(value):  # malformed: as if absent
                values["file_max"] = int(value)
            elif key == "filerate" and is_digits(value) and int(value) >= 1:
                values["file_rate"] = int(value)  # malformed or 0: as if absent (no limit)
            elif key == "cluster":
                values["cluster"] = value
            # unknown keys are ignored: later versions may add some
        return cls.model_validate(values)

    @property
    def from_server(self) -> bool:
        """Whether this is a richchat server's answer, not a client's HELLO (or its echo)."""
        return self.role == "server"


class Ping(Frame):
    """``PING|token``: both directions; the peer answers ``PONG|token``."""

    tag: ClassVar[str] = "PING"
    wire: ClassVar[tuple[str, ...]] = ("token",)
    kind: Literal["PING"] = "PING"
    token: Token = ""


class Pong(Frame):
    tag: ClassVar[str] = "PONG"
    wire: ClassVar[tuple[str, ...]] = ("token",)
    kind: Literal["PONG"] = "PONG"
    token: Token = ""


# --------------------------------------------------------------------------- client -> server


class SetNick(Frame):
    """``CMD_USER|alice``: set or change the nickname (seed frame)."""

    tag: ClassVar[str] = "CMD_USER"
    wire: ClassVar[tuple[str, ...]] = ("name",)
    kind: Literal["CMD_USER"] = "CMD_USER"
    name: Nick


class Say(Frame):
    """``MSG|hello``: a chat line for the default room (seed frame)."""

    tag: ClassVar[str] = "MSG"
    wire: ClassVar[tuple[str, ...]] = ("text",)
    kind: Literal["MSG"] = "MSG"
    text: SafeText


class SayRoom(Frame):
    """``RMSG|room|text``: a chat line for one room."""

    tag: ClassVar[str] = "RMSG"
    wire: ClassVar[tuple[str, ...]] = ("room", "text")
    kind: Literal["RMSG"] = "RMSG"
    room: Room
    text: SafeText


class JoinRoom(Frame):
    """``CMD_JOIN|room``: join (and create if needed) a room."""

    tag: ClassVar[str] = "CMD_JOIN"
    wire: ClassVar[tuple[str, ...]] = ("room",)
    kind: Literal["CMD_JOIN"] = "CMD_JOIN"
    room: Room


class PartRoom(Frame):
    """``CMD_PART|room``: leave a room."""

    tag: ClassVar[str] = "CMD_PART"
    wire: ClassVar[tuple[str, ...]] = ("room",)
    kind: Literal["CMD_PART"] = "CMD_PART"
    room: Room


class ListRooms(Frame):
    """``CMD_ROOMS|``: ask for the room list (answered with ``ROOMS|``)."""

    tag: ClassVar[str] = "CMD_ROOMS"
    wire: ClassVar[tuple[str, ...]] = ()
    kind: Literal["CMD_ROOMS"] = "CMD_ROOMS"


class SetTopic(Frame):
    """``CMD_TOPIC|room|text``: set a room's topic."""

    tag: ClassVar[str] = "CMD_TOPIC"
    wire: ClassVar[tuple[str, ...]] = ("room", "text")
    kind: Literal["CMD_TOPIC"] = "CMD_TOPIC"
    room: Room
    text: TopicText


class SendPrivate(Frame):
    """``CMD_MSG|bob|text``: a private message to one user."""

    tag: ClassVar[str] = "CMD_MSG"
    wire: ClassVar[tuple[str, ...]] = ("to", "text")
    kind: Literal["CMD_MSG"] = "CMD_MSG"
    to: Nick
    text: SafeText


class SendAction(Frame):
    """``CMD_ME|room|waves``: an emote in a room."""

    tag: ClassVar[str] = "CMD_ME"
    wire: ClassVar[tuple[str, ...]] = ("room", "text")
    kind: Literal["CMD_ME"] = "CMD_ME"
    room: Room
    text: SafeText


class Who(Frame):
    """``CMD_WHO|room``: ask for a room's members (answered with ``RLIST|``)."""

    tag: ClassVar[str] = "CMD_WHO"
    wire: ClassVar[tuple[str, ...]] = ("room",)
    kind: Literal["CMD_WHO"] = "CMD_WHO"
    room: Room


class Quit(Frame):
    """``CMD_QUIT|reason``: leave the server politely."""

    tag: ClassVar[str] = "CMD_QUIT"
    wire: ClassVar[tuple[str, ...]] = ("reason",)
    kind: Literal["CMD_QUIT"] = "CMD_QUIT"
    reason: QuitReason = ""


class ShareFile(Frame):
    """``CMD_SHARE|target|size|sha256|name``: share a file with a room (``dev``) or a user
    (``@bob``). The server answers ``UPLOAD`` (send the bytes on a transfer connection), or
    publishes the offer at once when it already holds those bytes, or ``ERR``."""

    tag: ClassVar[str] = "CMD_SHARE"
    wire: ClassVar[tuple[str, ...]] = ("target", "size", "sha256", "name")
    kind: Literal["CMD_SHARE"] = "CMD_SHARE"
    target: FileTarget
    size: WireInt
    sha256: Sha256
    name: FileName


class GetFile(Frame):
    """``CMD_GET|id``: fetch a shared file; answered ``DOWNLOAD`` (or ``ERR``)."""

    tag: ClassVar[str] = "CMD_GET"
    wire: ClassVar[tuple[str, ...]] = ("id",)
    kind: Literal["CMD_GET"] = "CMD_GET"
    id: FileId


class ListFiles(Frame):
    """``CMD_FILES|target``: the files shared in a room (or between you and ``@user``);
    answered with ``FILEINFO`` lines, then ``FILES``."""

    tag: ClassVar[str] = "CMD_FILES"
    wire: ClassVar[tuple[str, ...]] = ("target",)
    kind: Literal["CMD_FILES"] = "CMD_FILES"
    target: FileTarget


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
    def parse_payload(cls, payload: str) -> "RawText":
        return cls(text=payload)


# --------------------------------------------------------------------------- server -> client


_ENTRY_RE = re.compile(r"^(?P<name>[^(),|]+)\((?P<host>[^()]*):(?P<port>\d{1,5})\)$")


class UserEntry(BaseModel):
    """One user as shown in ``ULIST``: ``name(host:port)``; IPv6 hosts in brackets."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)
    name: Nick
    host: str = Field(pattern=r"^[0-9A-Za-z.:%\-]*$", max_length=64)
    port: int = Field(ge=0, le=65535)

    def render(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.name}({host}:{self.port})"

    @classmethod
    def parse(cls, text: str) -> "UserEntry":
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
    def parse_payload(cls, payload: str) -> "ChatMessage":
        name, sep, text = payload.partition(": ")
        if not sep:
            raise FrameSyntaxError("MSG from the server is 'name: text'")
        return cls(name=name, text=text)


class Notice(Frame):
    """``SRV|text``: a server notice (seed)."""

    tag: ClassVar[str] = "SRV"
    wire: ClassVar[tuple[str, ...]] = ("text",)
    kind: Literal["SRV"] = "SRV"
    text: SafeText


class UserList(Frame):
    """``ULIST|alice(10.0.0.5:50432),bob(10.0.0.6:40100)``: users of the default room (seed)."""

    tag: ClassVar[str] = "ULIST"
    kind: Literal["ULIST"] = "ULIST"
    users: tuple[UserEntry, ...] = ()

    def payload(self) -> str:
        return ",".join(u.render() for u in self.users)

    @classmethod
    def parse_payload(cls, payload: str) -> "UserList":
        return cls(users=_entries(payload))


class Error(Frame):
    """``ERR|code|text``: a request was refused; ``code`` is machine-readable."""

    tag: ClassVar[str] = "ERR"
    wire: ClassVar[tuple[str, ...]] = ("code", "text")
    kind: Literal["ERR"] = "ERR"
    code: ErrCode
    text: SafeText


class Bye(Frame):
    """``BYE|code|text``: the server is about to close this connection on purpose.

    Sent to hello clients only, after the human-readable ``SRV`` notice (which seed and raw
    clients get alone), so a client can act on the reason without reading the notice's words.
    Codes so far: ``shutdown`` (the server is stopping).
    """

    tag: ClassVar[str] = "BYE"
    wire: ClassVar[tuple[str, ...]] = ("code", "text")
    kind: Literal["BYE"] = "BYE"
    code: ErrCode
    text: SafeText = ""


class You(Frame):
    """``YOU|alice``: your nickname is now ``alice`` (registration, rename, guest name)."""

    tag: ClassVar[str] = "YOU"
    wire: ClassVar[tuple[str, ...]] = ("name",)
    kind: Literal["YOU"] = "YOU"
    name: Nick


class RoomMessage(Frame):
    """``RMSG|room|id|ts_ms|alice|text``: a chat line in a room, with id and timestamp."""

    tag: ClassVar[str] = "RMSG"
    wire: ClassVar[tuple[str, ...]] = ("room", "id", "ts", "name", "text")
    kind: Literal["RMSG"] = "RMSG"
    room: Room
    id: WireInt
    ts: WireInt  # milliseconds since the Unix epoch
    name: Nick
    text: SafeText


class Action(Frame):
    """``ACTION|room|id|ts_ms|alice|waves``: an emote (``/me waves``) in a room."""

    tag: ClassVar[str] = "ACTION"
    wire: ClassVar[tuple[str, ...]] = ("room", "id", "ts", "name", "text")
    kind: Literal["ACTION"] = "ACTION"
    room: Room
    id: WireInt
    ts: WireInt  # milliseconds since the Unix epoch
    name: Nick
    text: SafeText


class Private(Frame):
    """``PRIV|ts_ms|alice|bob|text``: a private message from alice to bob."""

    tag: ClassVar[str] = "PRIV"
    wire: ClassVar[tuple[str, ...]] = ("ts", "sender", "to", "text")
    kind: Literal["PRIV"] = "PRIV"
    ts: WireInt  # milliseconds since the Unix epoch
    sender: Nick
    to: Nick
    text: SafeText


class UserJoined(Frame):
    """``JOIN|room|alice(10.0.0.5:50432)``: incremental user-list update."""

    tag: ClassVar[str] = "JOIN"
    kind: Literal["JOIN"] = "JOIN"
    room: Room
    user: UserEntry

    def payload(self) -> str:
        return f"{self.room}|{self.user.render()}"

    @classmethod
    def parse_payload(cls, payload: str) -> "UserJoined":
        room, entry = _split(payload, 2, cls.tag)
        return cls(room=room, user=UserEntry.parse(entry))


class UserLeft(Frame):
    """``PART|room|alice|reason``: incremental user-list update."""

    tag: ClassVar[str] = "PART"
    wire: ClassVar[tuple[str, ...]] = ("room", "name", "reason")
    kind: Literal["PART"] = "PART"
    room: Room
    name: Nick
    reason: SafeText = ""


class NickChanged(Frame):
    """``NICK|old|new``: a user was renamed."""

    tag: ClassVar[str] = "NICK"
    wire: ClassVar[tuple[str, ...]] = ("old", "new")
    kind: Literal["NICK"] = "NICK"
    old: Nick
    new: Nick


class RoomUsers(Frame):
    """``RLIST|room|alice(ip:port),...``: the full member list of one room."""

    tag: ClassVar[str] = "RLIST"
    kind: Literal["RLIST"] = "RLIST"
    room: Room
    users: tuple[UserEntry, ...] = ()

    def payload(self) -> str:
        return f"{self.room}|" + ",".join(u.render() for u in self.users)

    @classmethod
    def parse_payload(cls, payload: str) -> "RoomUsers":
        room, entries = _split(payload, 2, cls.tag)
        return cls(room=room, users=_entries(entries))


class RoomInfo(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)
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
    def parse_payload(cls, payload: str) -> "RoomList":
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
    wire: ClassVar[tuple[str, ...]] = ("room", "setter", "text")
    kind: Literal["TOPIC"] = "TOPIC"
    room: Room
    #: who set it (a name; shown by clients, so never a control character)
    setter: Annotated[SafeText, Field(max_length=64)] = ""
    text: SafeText = ""


class _FileFields(Frame):
    wire: ClassVar[tuple[str, ...]] = ("id", "ts", "target", "sender", "size", "sha256", "name")
    id: FileId
    ts: WireInt  # milliseconds since the Unix epoch
    target: FileTarget
    sender: Nick
    size: WireInt
    sha256: Sha256
    name: FileName

    @property
    def private(self) -> bool:
        return self.target.startswith("@")


class FileOffer(_FileFields):
    """``FILE|id|ts|target|sender|size|sha256|name``: ``sender`` shared a file with a room
    (``target`` = the room) or privately (``@user``); sent when the server has verified it,
    to the room's members (the sender included: its confirmation) or to both users."""

    tag: ClassVar[str] = "FILE"
    kind: Literal["FILE"] = "FILE"


class FileInfo(_FileFields):
    """``FILEINFO|...``: the same fields as ``FILE``, one line per file of a ``CMD_FILES``
    answer (a listing, not a new offer)."""

    tag: ClassVar[str] = "FILEINFO"
    kind: Literal["FILEINFO"] = "FILEINFO"


class FileList(Frame):
    """``FILES|target|count``: ends the answer to ``CMD_FILES`` (``count`` ``FILEINFO`` lines
    came before it)."""

    tag: ClassVar[str] = "FILES"
    wire: ClassVar[tuple[str, ...]] = ("target", "count")
    kind: Literal["FILES"] = "FILES"
    target: FileTarget
    count: WireInt


class UploadReady(Frame):
    """``UPLOAD|sha256|token``: send the bytes of the file ``sha256`` on a transfer connection
    that presents ``token`` (``XFER|1|PUT|token``)."""

    tag: ClassVar[str] = "UPLOAD"
    wire: ClassVar[tuple[str, ...]] = ("sha256", "token")
    kind: Literal["UPLOAD"] = "UPLOAD"
    sha256: Sha256
    token: TransferToken


class DownloadReady(Frame):
    """``DOWNLOAD|id|token|size|sha256|name``: fetch file ``id`` on a transfer connection that
    presents ``token`` (``XFER|1|GET|token|offset|id``)."""

    tag: ClassVar[str] = "DOWNLOAD"
    wire: ClassVar[tuple[str, ...]] = ("id", "token", "size", "sha256", "name")
    kind: Literal["DOWNLOAD"] = "DOWNLOAD"
    id: FileId
    token: TransferToken
    size: WireInt
    sha256: Sha256
    name: FileName


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
    def parse_payload(cls, payload: str) -> "Unknown":
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
        ShareFile,
        GetFile,
        ListFiles,
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
        Bye,
        FileOffer,
        FileInfo,
        FileList,
        UploadReady,
        DownloadReady,
        Unknown,
    ],
    Field(discriminator="kind"),
]


def _by_tag(union: object) -> dict[str, type[Frame]]:
    """Tag -> frame class for every member of a discriminated union that has a wire tag."""
    members = get_args(get_args(union)[0])
    return {cls.tag: cls for cls in members if cls.tag}


#: the frames a server accepts, by tag (RawText is what is left)
CLIENT_FRAMES = _by_tag(ClientFrame)
#: the frames a client understands, by tag (Unknown is what is left)
SERVER_FRAMES = _by_tag(ServerFrame)


def build_all() -> None:
    """Build every frame's validator now instead of on first use.

    A long-running process (the server) calls this at start-up, so its first client does
    not pay for it (about 1 MB of validators and some milliseconds); short-lived ones
    (``richchat send``) keep the lazy build and pay only for the frames they use.
    """
    seen: set[type[BaseModel]] = set()
    todo: list[type[BaseModel]] = [Frame]
    while todo:
        cls = todo.pop()
        for sub in cls.__subclasses__():
            if sub not in seen:
                seen.add(sub)
                todo.append(sub)
    models: list[type[BaseModel]] = [*seen, UserEntry, RoomInfo]
    for model in models:
        if not model.__pydantic_complete__:
            model.model_rebuild(force=True)
