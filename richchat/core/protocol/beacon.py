"""Discovery datagrams: the UDP beacon, the active query and its reply. Pure: no sockets.

One datagram is the ASCII magic ``RCDISCO/1`` and a space, followed by one compact JSON
object whose ``type`` says what it is (see docs/discovery.md for examples):

* ``announce``: a server describes itself (id, name, chat port, users online, TLS flag,
  protocol version). Sent every few seconds to a broadcast address (``reason="beacon"``) and
  unicast in answer to a query (``reason="reply"``, echoing the query's ``nonce``).
* ``query``: a client asks every server that hears it to answer at once.

The receiver takes the server's address from the datagram's source address, so a beacon
never has to guess which of the server's addresses the listener can reach.

Decoding never raises for foreign traffic: :func:`decode_datagram` returns ``None`` for a
datagram that is not ours (another program on the same port) and raises
:class:`BeaconDecodeError` only for one that claims to be ours but is malformed, so that the
caller can count or log it.
"""

from __future__ import annotations

import json
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from richchat.core.constants import PROTOCOL_VERSION
from richchat.core.protocol.text import sanitize_text

MAGIC = b"RCDISCO/1 "
#: Largest datagram we send or accept; well under any Ethernet MTU.
MAX_DATAGRAM = 1200
#: UDP port of the beacon and of the query listener, unless configured otherwise.
DEFAULT_BEACON_PORT = 50505

ServerId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")]
Nonce = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")]


def _clean_name(value: str) -> str:
    cleaned = sanitize_text(value).strip()
    if not cleaned:
        raise ValueError("server name must not be empty")
    return cleaned


ServerName = Annotated[str, Field(max_length=64), AfterValidator(_clean_name)]


class ServerInfo(BaseModel):
    """What a server advertises about itself."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    server_id: ServerId
    name: ServerName
    port: int = Field(ge=1, le=65535)
    users: int = Field(ge=0)
    tls: bool
    version: int = Field(default=PROTOCOL_VERSION, ge=1, le=999)


class Announce(BaseModel):
    """A server's self-description: a periodic beacon or the reply to a query."""

    model_config = ConfigDict(frozen=True, extra="ignore")  # later versions may add fields

    type: Literal["announce"] = "announce"
    reason: Literal["beacon", "reply"] = "beacon"
    nonce: Nonce | None = None
    id: ServerId
    name: ServerName
    port: int = Field(ge=1, le=65535)
    users: int = Field(ge=0)
    tls: bool
    v: int = Field(ge=1, le=999)

    @classmethod
    def from_info(
        cls, info: ServerInfo, *, reason: Literal["beacon", "reply"] = "beacon",
        nonce: str | None = None,
    ) -> Announce:
        return cls(
            reason=reason, nonce=nonce, id=info.server_id, name=info.name, port=info.port,
            users=info.users, tls=info.tls, v=info.version,
        )

    def info(self) -> ServerInfo:
        return ServerInfo(
            server_id=self.id, name=self.name, port=self.port, users=self.users, tls=self.tls,
            version=self.v,
        )


class Query(BaseModel):
    """A client asks every server that hears it to answer now (unicast to the asker)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    type: Literal["query"] = "query"
    v: int = Field(default=PROTOCOL_VERSION, ge=1, le=999)
    nonce: Nonce


Datagram = Annotated[Announce | Query, Field(discriminator="type")]
_ADAPTER: TypeAdapter[Announce | Query] = TypeAdapter(Datagram)


class BeaconDecodeError(ValueError):
    """The datagram carries our magic but is not a valid discovery message."""


def encode_datagram(message: Announce | Query) -> bytes:
    """The bytes of one datagram; raises ValueError if it would exceed MAX_DATAGRAM."""
    body = message.model_dump_json(exclude_none=True).encode("utf-8")
    data = MAGIC + body
    if len(data) > MAX_DATAGRAM:
        raise ValueError(f"discovery datagram too large ({len(data)} > {MAX_DATAGRAM} bytes)")
    return data


def decode_datagram(data: bytes) -> Announce | Query | None:
    """Parse one datagram: the message, ``None`` if it is not ours, or BeaconDecodeError."""
    if not data.startswith(MAGIC):
        return None
    if len(data) > MAX_DATAGRAM:
        raise BeaconDecodeError("datagram too large")
    try:
        obj = json.loads(data[len(MAGIC):].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BeaconDecodeError(f"not JSON: {exc}") from None
    if not isinstance(obj, dict) or obj.get("type") not in ("announce", "query"):
        raise BeaconDecodeError("unknown discovery message type")
    try:
        return _ADAPTER.validate_python(obj)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"][1:]) or "message"
        raise BeaconDecodeError(f"invalid {where}: {first['msg']}") from None
