"""Bytes <-> frames. Pure: no sockets, no asyncio.

* :class:`LineDecoder` splits any byte chunks into lines. It accepts ``\\n``, ``\\r\\n``, a
  bare ``\\r`` and ``\\r`` NUL (telnet's carriage return, RFC 854) as terminators, replaces
  invalid UTF-8, and enforces a maximum line length: an oversized line yields one
  :class:`LineTooLong` event and is skipped up to its terminator, after which decoding
  carries on normally.
* :func:`decode_client_line` / :func:`decode_server_line` turn one line into a validated frame.
  A client line that is not a frame becomes :class:`RawText` (netcat input); a frame that fails
  validation becomes :class:`InvalidFrame` with a machine-readable code.
* :func:`encode` turns a frame into the bytes of one line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pydantic import ValidationError

from richchat.core.protocol.frames import (
    CLIENT_FRAMES,
    SERVER_FRAMES,
    ClientFrame,
    Frame,
    FrameSyntaxError,
    RawText,
    ServerFrame,
    Unknown,
)
from richchat.core.protocol.text import is_digits

#: Longest line a server accepts from a client, in bytes, terminator excluded. The longest
#: chat message is text.MAX_MESSAGE_BYTES: this leaves room for any frame around it.
MAX_LINE_BYTES = 2048
#: Longest line a client accepts from a server (a user list of thousands of users is long).
MAX_SERVER_LINE_BYTES = 1024 * 1024

#: ``\r\0`` is how telnet sends a carriage return (RFC 854): without it the NUL began the
#: next line, and a telnet user's every line after the first read ``␀hello``
_TERMINATOR = re.compile(rb"\r\n|\r\x00|\r|\n")
_TAG = re.compile(r"^([A-Z][A-Z_]{0,15})\|")


@dataclass(frozen=True)
class LineTooLong:
    """Event: a line longer than the limit was received and dropped."""

    limit: int


@dataclass(frozen=True)
class InvalidFrame:
    """Event: a line looked like frame ``tag`` but its contents are not valid."""

    tag: str
    code: str
    reason: str


#: What a plaintext richchat port answers to a TLS ClientHello: a fatal TLS alert,
#: protocol_version (record type 21, TLS 1.0 record version, length 2, level 2, alert 70). A
#: TLS client fails at once with "alert protocol version" (richchat's client then falls back
#: to plaintext, unless the address is pinned), instead of waiting for a handshake that never
#: comes, and the ClientHello's bytes are never read as a chat line.
TLS_ALERT_PROTOCOL_VERSION = bytes((0x15, 0x03, 0x01, 0x00, 0x02, 0x02, 0x46))


#: The start of what a TLS richchat port answers to a plaintext first byte (a netcat user's
#: line, a plaintext client's HELLO): one readable line, then the end of the connection. The
#: scanner knows a TLS port by it as by a TLS alert.
TLS_PORT_NOTICE_PREFIX = b"*** This port speaks TLS only"


def tls_port_notice(host: str, port: int) -> bytes:
    """The line a TLS port sends a plaintext client (see :data:`TLS_PORT_NOTICE_PREFIX`);
    ``host``/``port``: the address it reached."""
    if host.lower().startswith("::ffff:") and "." in host:  # IPv4 on a dual-stack socket
        host = host[7:]
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return (TLS_PORT_NOTICE_PREFIX + f": connect with richchat join --tls {where}, or "
            f"ncat --ssl {host} {port}\n".encode("ascii", "replace"))


#: What a richchat chat port answers to a Redis client (``server --redis`` pointed at a chat
#: server by mistake): a RESP error, then the end of the connection. The node that sent it
#: reads :data:`NOT_REDIS_TEXT` as the error's text and says so in one line.
NOT_REDIS_TEXT = "this is a richchat chat server, not Redis"
NOT_REDIS_REPLY = f"-ERR {NOT_REDIS_TEXT}\r\n".encode("ascii")


def is_resp_array_header(line: str) -> bool:
    """Whether a connection's first line is a RESP array header, ``*`` and digits (``*2``):
    how every command of a Redis client starts (redis-py's first is ``HELLO 3``, ``AUTH``
    or ``CLIENT SETNAME``: ``*2``, ``*3``...). Never a nickname (``*`` is refused in one),
    and not a likely first chat line; ``*hello*`` or ``*3 cheers`` are not this."""
    return len(line) > 1 and line[0] == "*" and is_digits(line[1:], 10)


def starts_tls_handshake(data: bytes) -> bool:
    """Whether ``data`` (a connection's first bytes) begins a TLS handshake record: content
    type 22, then version major 3 (if that byte came yet). No text line starts with byte 0x16
    (Ctrl+V, SYN)."""
    return data[:1] == b"\x16" and data[1:2] in (b"", b"\x03")


class LineDecoder:
    """Incremental line splitter: ``feed(bytes) -> [str | LineTooLong, ...]``."""

    __slots__ = ("_buf", "_skip_lf", "_skipping", "max_line")

    def __init__(self, max_line: int = MAX_LINE_BYTES) -> None:
        self.max_line = max_line
        self._buf = bytearray()
        self._skipping = False  # inside an oversized line: drop until the next terminator
        self._skip_lf = False  # last chunk ended in '\r': a leading '\n' or NUL belongs to it

    @property
    def buffered(self) -> int:
        """Bytes of an unfinished line held so far."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[str | LineTooLong]:
        out: list[str | LineTooLong] = []
        if not data:
            return out
        if self._skip_lf and data[:1] in (b"\n", b"\x00"):
            data = data[1:]
        self._skip_lf = False
        buf = self._buf
        buf += data
        start = 0
        for m in _TERMINATOR.finditer(buf):
            end = m.start()
            if self._skipping:
                self._skipping = False
            elif end - start > self.max_line:
                out.append(LineTooLong(self.max_line))
            else:
                out.append(buf[start:end].decode("utf-8", "replace"))
            start = m.end()
            if m.group() == b"\r" and start == len(buf):
                self._skip_lf = True
        del buf[:start]
        if len(buf) > self.max_line:
            if not self._skipping:
                out.append(LineTooLong(self.max_line))
                self._skipping = True
            buf.clear()
        return out

    def eof(self) -> list[str | LineTooLong]:
        """The connection ended: return a final unterminated line, if any."""
        if self._skipping or not self._buf:
            self._buf.clear()
            return []
        line = self._buf.decode("utf-8", "replace")
        self._buf.clear()
        return [line]

    @property
    def pending(self) -> int:
        return len(self._buf)


def encode(frame: Frame) -> bytes:
    """One frame as the bytes of one ``\\n``-terminated line."""
    return (frame.line() + "\n").encode("utf-8")


_INVALID_CODES = {
    "CMD_USER": "name_invalid",
    "CMD_JOIN": "room_invalid",
    "CMD_PART": "room_invalid",
    "CMD_WHO": "room_invalid",
    "CMD_TOPIC": "room_invalid",
    "CMD_ME": "room_invalid",
    "RMSG": "room_invalid",
    "CMD_MSG": "name_invalid",
    "CMD_FILES": "room_invalid",
}


#: fields of free text: a frame refused for one of them is a bad frame, whatever its tag
#: (a topic that is too long says nothing about the room)
_TEXT_FIELDS = frozenset({"text", "reason"})


def invalid_code(tag: str, exc: ValidationError | FrameSyntaxError) -> str:
    """The error code of a frame that failed validation: the field that failed decides
    (``room_invalid`` for its room, ``name_invalid`` for a name, ``bad_frame`` for text).
    A frame with too few fields (``RMSG|dev``) is a malformed frame, ``bad_frame``: no field
    of it was found wrong (its room or name may be fine)."""
    if isinstance(exc, FrameSyntaxError):
        return "bad_frame"
    loc = exc.errors()[0].get("loc", ())
    if loc and loc[0] in _TEXT_FIELDS:
        return "bad_frame"
    return _INVALID_CODES.get(tag, "bad_frame")


def _reason(exc: ValidationError | FrameSyntaxError) -> str:
    if isinstance(exc, FrameSyntaxError):
        return str(exc)
    err = exc.errors()[0]
    if err.get("type") == "string_pattern_mismatch":  # pydantic's text names its regex
        loc = err.get("loc", ())
        field = str(loc[0]) if loc else "a field"
        if field == "agent":
            return ("the agent (HELLO's second field) may hold only letters, digits and "
                    "_ . / + - (no spaces)")
        return f"the {field} field has characters it may not hold"
    msg = str(err.get("msg", "invalid"))
    return msg.removeprefix("Value error, ")


def decode_client_line(line: str) -> ClientFrame | InvalidFrame:
    """Parse one line sent by a client."""
    m = _TAG.match(line)
    cls = CLIENT_FRAMES.get(m.group(1)) if m else None
    if m is None or cls is None:
        return RawText(text=line)
    try:
        return cls.parse_payload(line[m.end() :])  # type: ignore[return-value]
    except (ValidationError, FrameSyntaxError) as exc:
        tag = m.group(1)
        return InvalidFrame(tag, invalid_code(tag, exc), _reason(exc))


def decode_server_line(line: str) -> ServerFrame:
    """Parse one line sent by a server; anything unexpected becomes :class:`Unknown`."""
    m = _TAG.match(line)
    cls = SERVER_FRAMES.get(m.group(1)) if m else None
    if m is None or cls is None:
        return Unknown(text=line)
    try:
        return cls.parse_payload(line[m.end() :])  # type: ignore[return-value]
    except (ValidationError, FrameSyntaxError):
        return Unknown(text=line)


def warm_up() -> None:
    """Build every frame validator and run the decoding paths every client takes once.

    For long-running processes (the server): the validators are built and the code and data
    behind a first HELLO, nickname (NFKC folding, confusable skeleton, scripts) and message are
    loaded at start-up, not while the first client waits (about 1 MB of validators, 250 KB of
    library code, and the Unicode confusables data).
    """
    from richchat.core.protocol.frames import build_all
    from richchat.core.protocol.text import name_key, script_problem

    build_all()
    for line in ("HELLO|1|warm-up/1", "CMD_USER|Wärm-Up", "MSG|warm up ☕", "not a frame"):
        decode_client_line(line)
    name_key("Ｗarm-Up")  # loads the confusables data (about 0.2 s) now, not for a client
    script_problem("Wärm-Up")
