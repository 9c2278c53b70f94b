"""Sans-I/O protocol core: bytes in, validated frames out; frames in, bytes out.

Never imports asyncio or socket. See docs/protocol.md.
"""

from richchat.core.constants import PROTOCOL_VERSION
from richchat.core.protocol.codec import (
    MAX_LINE_BYTES,
    LineDecoder,
    LineTooLong,
    decode_client_line,
    decode_server_line,
    encode,
)
from richchat.core.protocol.frames import (
    ClientFrame,
    ServerFrame,
)
from richchat.core.protocol.text import (
    DEFAULT_ROOM,
    MAX_MESSAGE_BYTES,
    fold_name,
    message_problem,
    sanitize_text,
    validate_nick,
    validate_room,
)

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
