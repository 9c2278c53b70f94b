"""The transfer connection's frames: how file bytes travel, beside the chat. Pure (no I/O).

A file never travels on a chat connection (its 2 KiB lines, flood limit and output caps stay
as they are). A client that was given a token over its chat connection (``UPLOAD|sha|token``
or ``DOWNLOAD|id|token|...``) opens one more connection to the same port and says so in its
first line, which is how the server tells it from a chat client::

    C: XFER|1|PUT|token                      (upload)
    S: XOK|offset|size|sha256|name           the server holds ``offset`` bytes already
    C: <size - offset raw bytes>
    S: XDONE|sha256|size                     the whole file hashed to sha256: stored

    C: XFER|1|GET|token|offset|id[|prefix]   (download of file ``id``, resuming at ``offset``;
                                              ``prefix``: SHA-256 of the ``offset`` bytes held)
    S: XOK|offset|size|sha256|name           (``XERR|wrong_file`` if the token is for another id;
                                              ``offset`` 0 if the bytes held cannot be resumed)
    S: <size - offset raw bytes>, then the server closes

Any refusal or failure is ``XERR|code|text`` and the end of the connection. Only the first
line of each side is text (at most :data:`MAX_TRANSFER_LINE` bytes); everything after it is
the file's bytes, which no line decoder, flood bucket or line limit sees.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import ValidationError, model_validator

from richchat.core.protocol.frames import (
    ErrCode,
    FileId,
    FileName,
    Frame,
    FrameSyntaxError,
    SafeText,
    Sha256,
    TransferToken,
    WireInt,
)

#: the first line that makes a connection a transfer connection
TRANSFER_TAG = b"XFER|"
#: the version in ``XFER|version|...``
TRANSFER_VERSION = 1
#: the longest text line on a transfer connection (either side), terminator excluded
MAX_TRANSFER_LINE = 1024


class TransferRequest(Frame):
    """``XFER|1|PUT|token`` or ``XFER|1|GET|token|offset|id``: the client's first line.

    ``id`` (GET): the file the client means to fetch. The server refuses a token issued for
    another file (``XERR|wrong_file``): without it, a token pasted for the wrong id fetched
    the token's file and the client saved and reported it as ``id``. (An older client's
    ``XFER|1|GET|token|offset``, without it, is still accepted.)"""

    tag: ClassVar[str] = "XFER"
    kind: Literal["XFER"] = "XFER"
    version: Literal[1] = 1
    op: Literal["PUT", "GET"]
    token: TransferToken
    offset: WireInt = 0  # GET: the bytes the client holds already (resume)
    file_id: FileId | None = None  # GET: the file asked for (the token must be for it)
    #: GET, resuming: the SHA-256 of the ``offset`` bytes the client holds. The server
    #: compares it with its own copy's first ``offset`` bytes and answers ``XOK|0|...`` (start
    #: again) when they differ or ``offset`` is past the end: a stale or damaged part file is
    #: replaced, not completed into a file that fails its hash
    prefix: Sha256 | None = None

    @model_validator(mode="after")
    def _get_fields(self) -> TransferRequest:
        if self.op == "PUT" and (self.offset or self.file_id or self.prefix):
            raise ValueError("PUT takes a token only")
        if self.prefix is not None and self.file_id is None:
            raise ValueError("a prefix hash needs the file id before it")
        return self

    def payload(self) -> str:
        if self.op == "PUT":
            return f"{self.version}|PUT|{self.token}"
        if self.file_id is None:
            return f"{self.version}|GET|{self.token}|{self.offset}"
        if self.prefix is None:
            return f"{self.version}|GET|{self.token}|{self.offset}|{self.file_id}"
        return f"{self.version}|GET|{self.token}|{self.offset}|{self.file_id}|{self.prefix}"

    @classmethod
    def parse_payload(cls, payload: str) -> TransferRequest:
        parts = payload.split("|")
        if len(parts) < 3:
            raise FrameSyntaxError("XFER needs a version, an operation and a token")
        if parts[0] != str(TRANSFER_VERSION):
            raise FrameSyntaxError(f"transfer version {parts[0]!r} is not supported (1 is)")
        values: dict[str, object] = {"version": 1, "op": parts[1], "token": parts[2]}
        if parts[1] == "GET":
            if len(parts) not in (4, 5, 6):
                raise FrameSyntaxError("XFER|1|GET needs a token, an offset and a file id")
            values["offset"] = parts[3]
            if len(parts) >= 5:
                values["file_id"] = parts[4]
            if len(parts) == 6:
                values["prefix"] = parts[5]
        elif len(parts) != 3:
            raise FrameSyntaxError("XFER|1|PUT takes a token only")
        return cls.model_validate(values)


class TransferAccepted(Frame):
    """``XOK|offset|size|sha256|name``: the transfer starts at ``offset`` (upload: the bytes
    the server holds already; download: the offset asked for)."""

    tag: ClassVar[str] = "XOK"
    wire: ClassVar[tuple[str, ...]] = ("offset", "size", "sha256", "name")
    kind: Literal["XOK"] = "XOK"
    offset: WireInt
    size: WireInt
    sha256: Sha256
    name: FileName


class TransferDone(Frame):
    """``XDONE|sha256|size``: the server received the whole file and it hashed right."""

    tag: ClassVar[str] = "XDONE"
    wire: ClassVar[tuple[str, ...]] = ("sha256", "size")
    kind: Literal["XDONE"] = "XDONE"
    sha256: Sha256
    size: WireInt


class TransferError(Frame):
    """``XERR|code|text``: the transfer was refused or failed; the server closes."""

    tag: ClassVar[str] = "XERR"
    wire: ClassVar[tuple[str, ...]] = ("code", "text")
    kind: Literal["XERR"] = "XERR"
    code: ErrCode
    text: SafeText


ServerTransferFrame = TransferAccepted | TransferDone | TransferError
_SERVER = {cls.tag: cls for cls in (TransferAccepted, TransferDone, TransferError)}


class TransferLineError(ValueError):
    """A transfer line that is not what the protocol says."""


def decode_request(line: bytes) -> TransferRequest:
    """The client's first line (without its terminator); :class:`TransferLineError` if bad."""
    text = line.decode("utf-8", "replace")
    if not text.startswith("XFER|"):
        raise TransferLineError("not a transfer request")
    try:
        return TransferRequest.parse_payload(text[5:])
    except (ValidationError, FrameSyntaxError) as exc:
        raise TransferLineError(_reason(exc)) from None


def decode_reply(line: bytes) -> ServerTransferFrame:
    """A server's line on a transfer connection; :class:`TransferLineError` if bad."""
    text = line.decode("utf-8", "replace")
    tag, sep, payload = text.partition("|")
    cls = _SERVER.get(tag)
    if cls is None or not sep:
        raise TransferLineError(f"unexpected answer {text[:60]!r}")
    try:
        return cls.parse_payload(payload)  # type: ignore[return-value]
    except (ValidationError, FrameSyntaxError) as exc:
        raise TransferLineError(f"bad {tag}: {_reason(exc)}") from None


def _reason(exc: ValidationError | FrameSyntaxError) -> str:
    if isinstance(exc, FrameSyntaxError):
        return str(exc)
    err = exc.errors()[0]
    where = ".".join(str(x) for x in err.get("loc", ()))
    msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
    return f"{where}: {msg}" if where else msg


__all__ = [
    "MAX_TRANSFER_LINE",
    "TRANSFER_TAG",
    "TRANSFER_VERSION",
    "FileName",
    "ServerTransferFrame",
    "TransferAccepted",
    "TransferDone",
    "TransferError",
    "TransferLineError",
    "TransferRequest",
    "decode_reply",
    "decode_request",
]
