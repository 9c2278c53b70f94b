"""The narrow view the hub and the fan-out have of a connection: identity, chat state, an output
queue, and a way to end it. Transports (:mod:`connection`: TCP today, TLS by the same class)
implement it; the hub's unit tests use a plain object that records bytes.

The hub never reads anything else of a connection and never imports a transport: a new
transport is one new module that implements this protocol.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Protocol


class Peer(Protocol):
    # -- identity (read by the hub and the renderers)
    host: str
    port: int
    #: our end of the connection, ``host:port`` (``[v6]:port``): the address this client
    #: reaches the server at (netcat users are told to run ``richchat get`` with it)
    local: str
    #: the dialect (a :class:`Dialect` value, kept as a plain int: the fan-out indexes its
    #: per-dialect tables with it for every recipient), decided by the first line
    dialect: int

    # -- chat state (written only by the hub)
    name: str | None  # None until registered
    entry: str  # ``name(host:port)`` as shown in user lists ("" until registered)
    rooms: dict[str, None]  # rooms besides the lobby, as an ordered set
    current_room: str  # where a raw client's plain lines go
    #: the guest name offered to a connection that is asked for a name (None: not asked)
    offered_name: str | None

    # -- fan-out state (written only by the delivery)
    #: bytes queued for the next write; the delivery appends and marks the peer dirty
    out: list[bytes]
    #: the lobby presence sequence number at which this peer entered the lobby view
    presence_seq: int
    closed: bool

    @property
    def peer(self) -> str:
        """``host:port`` for logs."""
        ...

    def flush_out(self) -> None:
        """Write everything in ``out`` now (the delivery's write pass calls it)."""
        ...

    def close(self, reason: str) -> None:
        """Write what is queued, then close politely; ``reason`` goes to the log and PARTs."""
        ...

    def hold(self, pending: Awaitable[object]) -> None:
        """Stop handling this client's input until ``pending`` (an awaitable) is done: a
        backend answer it needs (a cluster-wide name claim) is on its way."""
        ...
