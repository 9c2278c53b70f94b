"""The receiving side treats names as hostile: real sockets, real files, checked with realpath.

Two senders of bad names: a hostile *client* through the real server (the server keeps a base
name; the receiver cleans it again), and a hostile *server* (a few lines on loopback that
answer a download with any name it likes): the receiver alone must keep its disk safe.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from richchat.core.client import Address
from richchat.core.errors import FileAccessError
from richchat.core.protocol import transfer as t
from richchat.core.protocol.filenames import MAX_NAME_BYTES
from richchat.core.sharing import fetch_file
from richchat.core.transfer import DownloadDir, download
from tests.client.servers import chat_server
from tests.linechat import LineClient

__all__ = ["chat_server"]

#: the issue's names, and the name each must land as
HOSTILE = [
    ("../x", "x"),
    ("/etc/passwd", "passwd"),
    ("C:\\evil", "evil"),
    ("a\x1b[2Jb", "a[2Jb"),
    ("con.txt", "_con.txt"),
    ("n/evil", "evil"),
    ("a" * 300, "a" * MAX_NAME_BYTES),
    ("../" * 10 + "é" * 290 + ".txt", None),  # cut to 200 bytes, extension kept
    ("..", "file*"),  # nothing left: a generated name (file, file-3f2a9c0d1e2f)
]


def inside(directory: Path, path: Path) -> bool:
    """``path`` is a file directly in ``directory``, symbolic links resolved."""
    return Path(os.path.realpath(path)).parent == Path(os.path.realpath(directory))


def check_landed(directory: Path, path: Path, expected: str | None, data: bytes) -> None:
    assert inside(directory, path), path
    assert path.is_file() and not path.is_symlink()
    assert path.read_bytes() == data
    name = path.name
    assert len(name.encode()) <= MAX_NAME_BYTES
    assert "\x1b" not in name and "/" not in name and "\\" not in name and ":" not in name
    if expected is None:
        assert name.endswith(".txt") and name.startswith("é")
    elif expected.endswith("*"):
        assert name.startswith(expected[:-1])
    else:
        stem, dot, ext = expected.rpartition(".") if "." in expected else (expected, "", "")
        # an earlier file of the same clean name makes this one "name (1).ext"
        assert name == expected or (name.startswith(f"{stem or expected} (")
                                    and name.endswith(f"){dot}{ext}")), name


async def test_hostile_names_shared_through_the_server(chat_server: object,
                                                       tmp_path: Path) -> None:
    port = chat_server.port  # type: ignore[attr-defined]
    sender = await LineClient.connect(port, hello="mallory/1", nick="mallory")
    dl = tmp_path / "downloads"
    where = DownloadDir(dl)
    where.ensure()
    outside = set(os.listdir(tmp_path))
    for i, (name, expected) in enumerate(HOSTILE):
        data = f"payload {i}".encode()
        sha = hashlib.sha256(data).hexdigest()
        sender.send(f"CMD_SHARE|lobby|{len(data)}|{sha}|{name}")
        answer = await sender.expect(lambda l: l.startswith(("UPLOAD|", "ERR|")))
        assert answer.startswith("UPLOAD|"), answer
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(f"XFER|1|PUT|{answer.split('|')[2]}\n".encode())
        assert (await reader.readline()).startswith(b"XOK|0|")
        writer.write(data)
        assert (await reader.readline()).startswith(b"XDONE|")
        writer.close()
        offer = await sender.expect(lambda l: l.startswith("FILE|"))
        file_id = offer.split("|")[1]
        got = await fetch_file(Address("127.0.0.1", port), file_id, where, nick="bob")
        check_landed(dl, Path(got.path), expected, data)
    assert set(os.listdir(tmp_path)) == outside  # nothing written beside the directory
    sender.writer.close()


# ----------------------------------------------------------------------------- a hostile server


class HostileServer:
    """Answers every download with the name (and bytes) the test chooses."""

    def __init__(self) -> None:
        self.name = "x"
        self.data = b""
        self.server: asyncio.AbstractServer | None = None
        self.port = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        line = await reader.readline()
        offset = t.decode_request(line.rstrip(b"\n")).offset
        sha = hashlib.sha256(self.data).hexdigest()
        writer.write(f"XOK|{offset}|{len(self.data)}|{sha}|".encode()
                     + self.name.encode("utf-8", "surrogateescape") + b"\n")
        writer.write(self.data[offset:])
        await writer.drain()
        writer.close()

    async def open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection("127.0.0.1", self.port)


@pytest.fixture
async def hostile() -> AsyncIterator[HostileServer]:
    server = HostileServer()
    await server.start()
    yield server
    assert server.server is not None
    server.server.close()
    await server.server.wait_closed()


def fetcher(hostile: HostileServer, where: DownloadDir) -> Callable[[str], object]:
    async def fetch(file_id: str) -> Path:
        got = await download(hostile.open, "t" * 32, file_id, where)
        return got.path

    return fetch


async def test_hostile_names_from_a_hostile_server(hostile: HostileServer,
                                                   tmp_path: Path) -> None:
    dl = tmp_path / "downloads"
    where = DownloadDir(dl)
    where.ensure()
    outside = set(os.listdir(tmp_path))
    for i, (name, expected) in enumerate(HOSTILE):
        hostile.name, hostile.data = name, f"data {i}".encode()
        path = await download(hostile.open, "t" * 32, f"file{i:04d}", where)
        check_landed(dl, path.path, expected, hostile.data)
    assert set(os.listdir(tmp_path)) == outside
    assert not any(p.name.endswith(".part") for p in dl.iterdir())


async def test_an_existing_file_is_kept_and_the_new_one_renamed(hostile: HostileServer,
                                                                 tmp_path: Path) -> None:
    dl = tmp_path / "downloads"
    dl.mkdir()
    (dl / "report.pdf").write_bytes(b"mine")
    (dl / "report (1).pdf").write_bytes(b"mine too")
    where = DownloadDir(dl)
    hostile.name, hostile.data = "report.pdf", b"theirs"
    got = await download(hostile.open, "t" * 32, "aaaaaaaa", where)
    assert got.path == dl / "report (2).pdf" and got.path.read_bytes() == b"theirs"
    assert (dl / "report.pdf").read_bytes() == b"mine"
    assert (dl / "report (1).pdf").read_bytes() == b"mine too"
    # -o NAME: the user's own name, but never over an existing file
    exact = DownloadDir(dl, exact="report.pdf")
    with pytest.raises(FileAccessError, match="not overwritten"):
        await download(hostile.open, "t" * 32, "bbbbbbbb", exact)
    assert (dl / "report.pdf").read_bytes() == b"mine"


@pytest.mark.skipif(os.name != "posix", reason="symbolic links as an unprivileged user")
async def test_symbolic_links_never_lead_outside(hostile: HostileServer, tmp_path: Path) -> None:
    dl = tmp_path / "downloads"
    dl.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"precious")
    (dl / "x").symlink_to(victim)  # a name the server will use, pointing outside
    (dl / "ghost").symlink_to(tmp_path / "created-outside")  # dangling
    part = dl / ".richchat-cccccccc.part"
    part.symlink_to(victim)  # our part file's name, pointing outside
    where = DownloadDir(dl)
    hostile.name, hostile.data = "x", b"overwrite?"
    got = await download(hostile.open, "t" * 32, "aaaaaaaa", where)
    assert got.path == dl / "x (1)"
    hostile.name = "ghost"
    got = await download(hostile.open, "t" * 32, "bbbbbbbb", where)
    assert got.path == dl / "ghost (1)"
    hostile.name = "part"
    got = await download(hostile.open, "t" * 32, "cccccccc", where)
    assert got.path == dl / "part" and got.path.read_bytes() == b"overwrite?"
    assert victim.read_bytes() == b"precious"
    assert not (tmp_path / "created-outside").exists()
    for path in dl.iterdir():
        if not path.is_symlink():
            assert inside(dl, path)
