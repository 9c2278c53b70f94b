"""One module per dialect: how its clients' lines become frames, and how events become its
bytes. Adding a dialect (an IRC gateway, a browser client) means adding one module here and
one entry in :data:`RENDERERS` / :data:`PARSERS`; the hub and the fan-out stay as they are.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Union

from richchat.core.protocol import frames as f
from richchat.core.protocol.codec import InvalidFrame
from richchat.core.server.dialect import Dialect
from richchat.core.server.dialects import hello, raw, seed
from richchat.core.server.dialects.base import RenderContext, Renderer
from richchat.core.server.dialects.raw import HelpCommand, ShowTopic

if TYPE_CHECKING:
    from richchat.core.server.peer import Peer

Parsed = Union[f.ClientFrame, InvalidFrame, HelpCommand, ShowTopic, None]
Parser = Callable[[str, "Peer"], Parsed]

#: indexed by Dialect (PENDING renders nothing)
RENDERERS: tuple[Renderer | None, ...] = (
    None,
    hello.HelloRenderer(),
    seed.SeedRenderer(),
    raw.RawRenderer(),
)

#: keyed by Dialect value
PARSERS: dict[int, Parser] = {
    Dialect.HELLO: hello.parse,
    Dialect.SEED: seed.parse,
    Dialect.RAW: raw.parse,
}


#: dialects whose users type their name at a prompt instead of sending a frame for it
ASKS_NAME = frozenset({Dialect.RAW})


def renderer(dialect: Dialect) -> Renderer:
    r = RENDERERS[dialect]
    if r is None:
        raise ValueError(f"nothing is rendered for {dialect.name} connections")
    return r


__all__ = [
    "ASKS_NAME",
    "PARSERS",
    "RENDERERS",
    "HelpCommand",
    "Parsed",
    "RenderContext",
    "Renderer",
    "ShowTopic",
]


def detect(first: Parsed) -> Dialect:
    """The dialect a connection speaks, from its first line: ``HELLO|`` is our own client, any
    other frame (even a malformed one) a seed client, anything else a netcat user."""
    if isinstance(first, f.Hello):
        return Dialect.HELLO
    if isinstance(first, f.RawText):
        return Dialect.RAW
    return Dialect.SEED
