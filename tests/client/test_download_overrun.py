"""A hostile transfer server that sends more bytes than the file it announced: the real
download code (richchat.core.transfer.download) on a real socket on loopback stops with an
error, names no file, and its part file never holds more than the announced size."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hashlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from richchat.core.errors import ProtocolError
from richchat.core.transfer import DownloadDir, download

MIB = 1024 * 1024

#: case: (announced size, bytes sent beyond it, the answer line and the bytes in one write)
CASES = {
    "with_the_answer": (100, 100, True),  # all of it in the client's first read
    "after_the_file": (2 * MIB, MIB, False),
    "one_byte_more": (MIB, 1, False),
}


class OverrunServer:
    """Answers a download with ``XOK`` for ``size`` bytes, then sends ``size + extra``."""

    def __init__(self) -> None:
        self.size, self.extra, self.together = 0, 0, False
        self.data = b""
        self.server: asyncio.AbstractServer | None = None
        self.port = 0

    def set(self, size: int, extra: int, together: bool) -> None:
        self.size, self.extra, self.together = size, extra, together
        self.data = hashlib.shake_256(b"overrun").digest(size)

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readline()
        sha = hashlib.sha256(self.data).hexdigest()
        head = f"XOK|0|{self.size}|{sha}|f.bin\n".encode()
        body = self.data + b"!" * self.extra
        with contextlib.suppress(ConnectionError):
            if self.together:
                writer.write(head + body)
            else:
                writer.write(head)
                await writer.drain()
                writer.write(body)
            await writer.drain()
        writer.close()

    async def open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection("127.0.0.1", self.port)


@pytest.fixture
async def overrun() -> AsyncIterator[OverrunServer]:
    server = OverrunServer()
    await server.start()
    yield server
    assert server.server is not None
    server.server.close()
    await server.server.wait_closed()


@pytest.mark.parametrize("case", list(CASES))
async def test_a_download_stops_when_the_server_sends_more_than_the_file(
        overrun: OverrunServer, tmp_path: Path, case: str) -> None:
    size, extra, together = CASES[case]
    overrun.set(size, extra, together)
    dl = tmp_path / "downloads"
    where = DownloadDir(dl)
    with pytest.raises(ProtocolError, match="more bytes than the file has"):
        await download(overrun.open, "t" * 32, "aaaaaaaa", where, timeout=10)
    left = sorted(p.name for p in dl.iterdir())
    assert "f.bin" not in left and all(name.endswith(".part") for name in left), left
    assert where.held("aaaaaaaa") <= size  # a part file (kept to resume) is never longer
    if where.held("aaaaaaaa"):
        assert Path(where.part_path("aaaaaaaa")).read_bytes() == overrun.data[
            : where.held("aaaaaaaa")]


class BiggerThanOffered(OverrunServer):
    """Announces 1 TB on the transfer connection (the offer said ``size``) and starts
    sending: a download that knows the offer's size refuses it."""

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readline()
        sha = hashlib.sha256(self.data).hexdigest()
        with contextlib.suppress(ConnectionError):
            writer.write(f"XOK|0|{10**12}|{sha}|f.bin\n".encode() + b"!" * (3 * MIB))
            await writer.drain()
        writer.close()


async def test_a_transfer_bigger_than_the_offer_is_refused(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """``get`` and the chat UI pass the offer's size: a transfer that announces more is
    refused with nothing kept, and no stray error ("Future exception was never retrieved",
    a traceback on a user's terminal) is left behind."""
    server = BiggerThanOffered()
    server.set(100, 0, True)
    await server.start()
    dl = tmp_path / "downloads"
    where = DownloadDir(dl)
    try:
        with pytest.raises(ProtocolError, match="another file than the one offered"):
            await download(server.open, "t" * 32, "aaaaaaaa", where, timeout=10, size=100,
                           sha256=hashlib.sha256(server.data).hexdigest())
    finally:
        assert server.server is not None
        server.server.close()
        await server.server.wait_closed()
    assert list(dl.iterdir()) == []  # no file, no part file
    # no condition to wait on for something that must not happen: the connection's last
    # callbacks (its writer thread, connection_lost) get a bounded window, then collection
    for _ in range(25):
        await asyncio.sleep(0.02)
    gc.collect()
    stray = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert stray == []
