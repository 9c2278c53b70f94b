"""Sans-I/O protocol core: bytes in, validated frames out; frames in, bytes out.

Never imports asyncio or socket. See docs/protocol.md.

The names below are loaded on first use: importing one module of the package (``.text`` for
the name rules, ``.beacon`` for discovery) does not build the frame models of ``.frames``
(pydantic, about 35 classes); ``from richchat.core.protocol import encode`` loads what
``encode`` needs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from richchat.core.protocol.codec import (
        MAX_LINE_BYTES,
        LineDecoder,
        LineTooLong,
        decode_client_line,
        decode_server_line,
        encode,
    )
    from richchat.core.protocol.frames import PROTOCOL_VERSION, ClientFrame, ServerFrame
    from richchat.core.protocol.text import (
        DEFAULT_ROOM,
        MAX_MESSAGE_BYTES,
        fold_name,
        message_problem,
        sanitize_text,
        validate_nick,
        validate_room,
    )

#: public name -> the module of this package that defines it
_HOMES = {
    "MAX_LINE_BYTES": "codec",
    "LineDecoder": "codec",
    "LineTooLong": "codec",
    "decode_client_line": "codec",
    "decode_server_line": "codec",
    "encode": "codec",
    "PROTOCOL_VERSION": "frames",
    "ClientFrame": "frames",
    "ServerFrame": "frames",
    "DEFAULT_ROOM": "text",
    "MAX_MESSAGE_BYTES": "text",
    "fold_name": "text",
    "message_problem": "text",
    "sanitize_text": "text",
    "validate_nick": "text",
    "validate_room": "text",
}

__all__ = [
    "DEFAULT_ROOM",
    "MAX_LINE_BYTES",
    "MAX_MESSAGE_BYTES",
    "PROTOCOL_VERSION",
    "ClientFrame",
    "LineDecoder",
    "LineTooLong",
    "ServerFrame",
    "decode_client_line",
    "decode_server_line",
    "encode",
    "fold_name",
    "message_problem",
    "sanitize_text",
    "validate_nick",
    "validate_room",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    # __import__ rather than importlib.import_module: `python -X importtime` shows it
    value = getattr(__import__(f"{__name__}.{home}", fromlist=[home]), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_HOMES})
