"""``richchat send --file`` and ``richchat get``: share one file, fetch one file.

:func:`share_file`: connect and register (as ``send`` does), refuse a file larger than the
server's ``HELLO`` says before reading a byte of it, hash it, offer it (``CMD_SHARE``), upload
it on a transfer connection when the server asks (``UPLOAD``), and return once the server has
published the offer (its ``FILE`` line comes back to the sender, as a message's echo does): the
file is then verified and stored. An upload cut off (the server restarted, the network
dropped) is offered again and resumes where the server's copy stops; so does a later run of
the same command after a ``kill``.

:func:`fetch_file`: connect, register, join the room if asked, ask for the file (``CMD_GET``)
and download it (:func:`richchat.core.transfer.download`: resumed, verified, never
overwriting); or, with a one-time token a netcat user was given (``/get ID``), download it
without a chat connection at all.

Light, like ``send``: no textual, scapy, nmap or zeroconf.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, ValidationError

from richchat.core.client import (
    Address,
    ChatClient,
    Opener,
    RequestRejectedError,
    frame_error_text,
    open_tcp,
)
from richchat.core.errors import (
    ConnectionLostError,
    FileCorruptError,
    FileTooLargeError,
    FileUnavailableError,
    ProtocolError,
    RichchatError,
    TimeoutRichchatError,
    UsageError,
)
from richchat.core.protocol import frames as f
from richchat.core.protocol import transfer as t
from richchat.core.protocol.filenames import human_size, safe_file_name
from richchat.core.protocol.text import DEFAULT_ROOM, fold_name, nick_problem
from richchat.core.send import _await_room_joined, _register_with_retry
from richchat.core.transfer import (
    RETRYABLE,
    DownloadDir,
    Progress,
    TransferRefusedError,
    download,
    hash_file,
    readable_file,
    refusal,
    upload,
)

if TYPE_CHECKING:
    from richchat.core.trust.connect import TrustPolicy

#: transfer connections tried for one file before giving up (each resumes the last)
ATTEMPTS = 4
#: the longest pause between two offers of a file the server is busy with (``XERR|busy``:
#: another upload of the same bytes under way); such waits count as no attempt
BUSY_WAIT_MAX = 2.0

#: progress: (stage, bytes done, bytes in all); stage is "hashing", "uploading",
#: "downloading", or "waiting" (another upload of the same bytes is under way)
StageProgress = Callable[[str, int, int], None]


class ShareResult(BaseModel):
    """What ``richchat send --file --json`` prints."""

    model_config = ConfigDict(frozen=True)

    server: str
    nick: str
    target: str  # a room, or "@user"
    id: str  # the file id recipients fetch (``richchat get HOST ID``)
    name: str
    size: int
    sha256: str
    #: bytes uploaded by this run (0: the server held the file already, or it is empty)
    sent: int
    #: bytes the server held already when this run started sending (a resumed upload)
    resumed_from: int = 0
    #: the server held these bytes already (shared before, or uploaded meanwhile by another
    #: upload of them this run waited for): nothing was uploaded
    held: bool = False
    #: another upload of the same bytes was under way, and this run waited for it to end
    #: (the server takes one upload of a content at a time)
    waited: bool = False
    error: None = None  # as in ShareFailure: a script reads one shape
    exit_code: int = 0


class ShareFailure(BaseModel):
    """What ``richchat send --file --json`` prints when the file was not shared: the error
    (the line on stderr) and the exit status."""

    model_config = ConfigDict(frozen=True)

    server: str
    nick: str
    target: str
    name: str  # the file's name, as given
    error: str
    exit_code: int


class FetchResult(BaseModel):
    """What ``richchat get --json`` prints."""

    model_config = ConfigDict(frozen=True)

    server: str
    id: str
    name: str  # the name the sender gave
    path: str  # where the file was saved (a clean, new name)
    size: int
    sha256: str
    received: int  # bytes received by this run
    resumed_from: int = 0  # bytes an earlier, interrupted run had received
    error: None = None  # as in FetchFailure: a script reads one shape
    exit_code: int = 0


class FetchFailure(BaseModel):
    """What ``richchat get --json`` prints when the file was not saved: the error (the line
    on stderr) and the exit status."""

    model_config = ConfigDict(frozen=True)

    server: str
    id: str
    error: str
    exit_code: int


def _stage(progress: StageProgress | None, stage: str) -> Progress | None:
    if progress is None:
        return None
    return lambda done, total: progress(stage, done, total)


def _target(room: str, to: str | None) -> str:
    if to is not None:
        problem = nick_problem(to)
        if problem:
            raise UsageError(f"bad user {to!r}: {problem}")
        return "@" + to
    try:
        return f.JoinRoom(room=room).room
    except ValidationError as exc:
        raise UsageError(f"bad room {room!r}: {frame_error_text(exc)}") from None


async def share_file(
    address: Address,
    nick: str,
    path: Path,
    *,
    room: str = DEFAULT_ROOM,
    to: str | None = None,
    auto_nick: bool = False,
    timeout: float = 10.0,
    progress: StageProgress | None = None,
    opener: Opener = open_tcp,
    trust: TrustPolicy | None = None,
) -> ShareResult:
    """Share ``path`` with ``room`` (or privately ``to`` a user); see the module text.
    ``opener`` or ``trust`` (TLS with pinning): the transport of the chat connection, and so
    of the transfer's."""
    target = _target(room, to)
    size = readable_file(path)
    client = ChatClient(address.host, address.port, timeout=timeout, opener=opener, trust=trust)
    hello = await client.connect()
    try:
        if hello.file_max is None:
            raise FileUnavailableError(f"{address} does not take files ({_why_no_files(hello)})")
        if size > hello.file_max:
            raise FileTooLargeError(
                f"{path} is {human_size(size)} ({size} bytes); {address} takes files of at "
                f"most {human_size(hello.file_max)} ({hello.file_max} bytes)",
                hint="nothing was sent")
        me = await _register_with_retry(client, nick, auto_nick)
        if not target.startswith("@") and target != DEFAULT_ROOM:
            await client.join(target)
            await _await_room_joined(client, target)
        sha256, hashed = await hash_file(path, _stage(progress, "hashing"))
        if hashed != size:
            # README: exit 21 is "a file changed while it was sent" (the upload says the
            # same with it); not a usage error (2)
            raise FileCorruptError(f"{path} changed while it was read (its size is not what "
                                   "it was a moment before); try again")
        name = safe_file_name(path.name, fallback=f"file-{sha256[:12]}")
        #: where this run's first upload started (the server's copy then): the first
        #: progress call of an upload is its accepted offset
        start: list[int] = []
        #: bytes the uploads of this run moved, and where the current one stands (None:
        #: the next progress call is an upload's accepted offset)
        tally = {"moved": 0}
        last: list[int] = []
        report = _stage(progress, "uploading")

        def moved(done: int, total: int) -> None:
            if not start:
                start.append(done)
            if last:
                tally["moved"] += max(done - last[0], 0)
            last[:] = [done]
            if report is not None:
                report(done, total)

        attempt = waits = 0
        cut = False  # the last upload was cut off, and its file is offered again
        while True:
            client.discard_received()
            try:
                await client.share(target, size, sha256, name)
                frame = await _share_answer(client, me, sha256, target)
            except ConnectionLostError:
                if not cut:
                    raise
                # the chat connection went with the upload's (the server stopped): what
                # failed is the upload, not the offer made again
                raise ConnectionLostError(
                    f"{address} closed the connection during the upload of {path.name}; "
                    "the file was not shared",
                    hint="run the same command again to resume the upload") from None
            if isinstance(frame, f.FileOffer):
                # the server holds the whole file: shared before, or uploaded by another
                # upload of the same bytes this run waited for (after its own was cut off,
                # perhaps: what it moved then counts; the server did not take an upload of
                # this run to its end)
                return ShareResult(server=str(address), nick=me, target=frame.target,
                                   id=frame.id, name=frame.name, size=size, sha256=sha256,
                                   sent=tally["moved"], resumed_from=start[0] if start else 0,
                                   held=not start, waited=waits > 0)
            last.clear()  # a new upload: its first progress call is where it starts
            try:
                done = await upload(client.open_stream, frame.token, path, sha256, size,
                                    timeout=timeout, progress=moved, rate=hello.file_rate)
            except TimeoutRichchatError as exc:  # a server or a path that froze
                raise TimeoutRichchatError(
                    exc.message, hint=exc.hint or "run the same command again to resume the "
                    "upload") from None
            except (ConnectionLostError, TransferRefusedError) as exc:
                if isinstance(exc, TransferRefusedError) and exc.code == "busy":
                    # another upload of these bytes is under way (or the server's transfer
                    # slots are taken): not a failure, a wait, as long as that upload lasts
                    # (the server ends one that stalls); then the server holds the file, or
                    # the part the other upload left, and this one ends or resumes it
                    waits += 1
                    if progress is not None:  # on a terminal: why nothing moves
                        progress("waiting", 0, size)
                    await asyncio.sleep(min(0.5 * waits, BUSY_WAIT_MAX))
                    continue
                attempt += 1
                if attempt >= ATTEMPTS or (isinstance(exc, TransferRefusedError)
                                           and exc.code not in RETRYABLE):
                    raise
                cut = isinstance(exc, ConnectionLostError)
                continue  # offered again: the server says where its copy stops
            # this run's bytes: from where its first upload started (retries within the
            # run resume; what they moved counts), not only the last attempt's
            first = start[0] if start else done.offset
            offer = await _offer_echo(client, me, sha256, target)
            return ShareResult(server=str(address), nick=me, target=offer.target, id=offer.id,
                               name=offer.name, size=size, sha256=sha256, sent=size - first,
                               resumed_from=first, waited=waits > 0)
    finally:
        await client.quit()


def _mine(frame: f.FileOffer, me: str, sha256: str) -> bool:
    return frame.sha256 == sha256 and fold_name(frame.sender) == fold_name(me)


def _share_refusal(frame: f.Error, target: str) -> RichchatError:
    """The error for the server's refusal of a file offered to ``target``: an addressee not
    online is said as ``send --to`` says it of a message (and exits 1 as it does), not as a
    file the server does not have."""
    if frame.code == "no_such_user" and target.startswith("@"):
        return RequestRejectedError(f"no user named {target[1:]!r} is online", code=frame.code)
    return refusal(frame.code, frame.text)


async def _share_answer(client: ChatClient, me: str, sha256: str,
                        target: str) -> f.UploadReady | f.FileOffer:
    """The server's answer to ``CMD_SHARE``: upload, or the offer (bytes held already)."""
    deadline = client.deadline()
    while True:
        frame = await client.read_frame(client.timeout, "the server to accept the file",
                                        deadline=deadline)
        if isinstance(frame, f.UploadReady) and frame.sha256 == sha256:
            return frame
        if isinstance(frame, f.FileOffer) and _mine(frame, me, sha256):
            return frame
        if isinstance(frame, f.Error) and frame.code != "flood":
            raise _share_refusal(frame, target)


async def _offer_echo(client: ChatClient, me: str, sha256: str, target: str) -> f.FileOffer:
    """The offer of our file, as the server published it after verifying the upload."""
    deadline = client.deadline()
    while True:
        frame = await client.read_frame(client.timeout, "the server to publish the file",
                                        deadline=deadline)
        if isinstance(frame, f.FileOffer) and _mine(frame, me, sha256):
            return frame
        if isinstance(frame, f.Error) and frame.code != "flood":
            raise _share_refusal(frame, target)


async def fetch_file(
    address: Address,
    file_id: str,
    where: DownloadDir,
    *,
    nick: str | None = None,
    room: str | None = None,
    token: str | None = None,
    auto_nick: bool = False,
    timeout: float = 10.0,
    progress: StageProgress | None = None,
    opener: Opener = open_tcp,
    trust: TrustPolicy | None = None,
) -> FetchResult:
    """Fetch file ``file_id`` into ``where``; see the module text. ``opener`` or ``trust``
    (TLS with pinning): the transport of the chat connection, and so of the transfer's."""
    file_id = file_id.strip().lower()
    try:
        file_id = f.GetFile(id=file_id).id
    except ValidationError:
        raise UsageError(f"{file_id!r} is not a file id (letters and digits, as in the "
                         "offer: [file k3x9q2wz4m1p])") from None
    client = ChatClient(address.host, address.port, timeout=timeout, opener=opener, trust=trust)
    if token is not None:
        try:
            token = t.TransferRequest(op="GET", token=token.strip()).token
        except ValidationError:
            raise UsageError(f"{token!r} is not a token (copy the --token of the command that "
                             "/get printed in the chat)") from None
        try:
            got = await download(client.open_stream, token, file_id, where, timeout=timeout,
                                 progress=_stage(progress, "downloading"))
        except TransferRefusedError as exc:
            if exc.code != "bad_token":
                raise
            raise FileUnavailableError(
                "the server does not know this token: it works once, for a few minutes, and "
                f"for file {file_id} only", hint=f"type /get {file_id} in the chat again for "
                "a new one") from None
        return _fetched(address, file_id, got.path, got.name, got.size, got.sha256,
                        got.received, got.offset)
    if nick is None:
        raise UsageError("--nick is needed (or --token, from /get in a netcat chat)")
    hello = await client.connect()
    try:
        if hello.file_max is None:
            raise FileUnavailableError(f"{address} does not share files ({_why_no_files(hello)})")
        await _register_with_retry(client, nick, auto_nick)
        if room is not None and fold_name(room).lstrip("#") != DEFAULT_ROOM:
            joined = _target(room, None)
            await client.join(joined)
            await _await_room_joined(client, joined)
        initial = where.held(file_id)  # what an earlier, interrupted run left
        retried = False
        cut = False  # the last download was cut off, and the file is asked for again
        for attempt in range(1, ATTEMPTS + 1):
            client.discard_received()
            try:
                await client.get(file_id)
                ready = await _download_answer(client, file_id)
            except _FileGoneError as exc:
                raise _with_leftover(exc, where, file_id) from None
            except ConnectionLostError:
                if not cut:
                    raise
                # the chat connection went with the download's (the server stopped): what
                # failed is the download, not the file asked for again
                raise ConnectionLostError(
                    f"{address} closed the connection during the download of file {file_id}",
                    hint="run the same command again: a download into a directory resumes "
                         "where it stopped") from None
            try:
                got = await download(client.open_stream, ready.token, file_id, where,
                                     sha256=ready.sha256, size=ready.size, timeout=timeout,
                                     progress=_stage(progress, "downloading"))
            except TimeoutRichchatError as exc:  # a server or a path that froze
                raise TimeoutRichchatError(
                    exc.message, hint=exc.hint or "run the same command again: a download "
                    "into a directory resumes where it stopped") from None
            except (ConnectionLostError, TransferRefusedError) as exc:
                if attempt == ATTEMPTS or (isinstance(exc, TransferRefusedError)
                                           and exc.code not in RETRYABLE | {"bad_offset"}):
                    raise
                retried = True
                cut = isinstance(exc, ConnectionLostError)
                continue  # asked again: the download resumes from the part file
            if not retried:
                return _fetched(address, file_id, got.path, got.name, got.size, got.sha256,
                                got.received, got.offset)
            # resumed within this run: its bytes are from where its first attempt started
            return _fetched(address, file_id, got.path, got.name, got.size, got.sha256,
                            got.size - min(initial, got.size), min(initial, got.size))
        raise AssertionError("unreachable")
    finally:
        await client.quit()


def _why_no_files(hello: f.Hello) -> str:
    if hello.cluster is not None:
        return (f"it is a node of the cluster {hello.cluster!r}: a cluster shares no files; "
                "a single server does")
    return "an older server, or one started with --no-files"


def _fetched(address: Address, file_id: str, path: Path, name: str, size: int, sha256: str,
             received: int, resumed_from: int) -> FetchResult:
    return FetchResult(server=str(address), id=file_id, name=name, path=str(path), size=size,
                       sha256=sha256, received=received, resumed_from=resumed_from)


class _FileGoneError(FileUnavailableError):
    """The server has no such file (expired, deleted; or a private file not ours)."""


def _with_leftover(exc: FileUnavailableError, where: DownloadDir,
                   file_id: str) -> FileUnavailableError:
    """``exc``, saying where the part file an earlier, interrupted download of the file left
    in ``where`` is (kept: see :meth:`DownloadDir.leftover`)."""
    note = where.leftover(file_id)
    return exc if note is None else FileUnavailableError(exc.message, hint=note)


async def _download_answer(client: ChatClient, file_id: str) -> f.DownloadReady:
    deadline = client.deadline()
    while True:
        frame = await client.read_frame(client.timeout, f"the server to send file {file_id}",
                                        deadline=deadline)
        if isinstance(frame, f.DownloadReady) and frame.id == file_id:
            return frame
        if isinstance(frame, f.Error) and frame.code == "no_such_file":
            raise _FileGoneError(frame.text)
        if isinstance(frame, f.Error) and frame.code not in ("flood",):
            err = refusal(frame.code, frame.text)
            if isinstance(err, TransferRefusedError):
                raise ProtocolError(f"the server refused file {file_id} ({frame.code}): "
                                    f"{frame.text}")
            raise err


__all__ = ["FetchFailure", "FetchResult", "ShareFailure", "ShareResult", "fetch_file", "share_file"]
