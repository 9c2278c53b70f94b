"""Plain TCP transfers are moved by a thread of their own (richchat.core.server.transfer:
TransferThread), not by the event loop: a real server, real sockets on loopback, real files.

What the thread must keep: the bytes and their hash, resume, the speed limit, and the
server's clean shutdown ending transfers under way (uploads keep what they received)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
from pathlib import Path

import pytest

from richchat.core.client import Address
from richchat.core.errors import RichchatError
from richchat.core.hashwrite import BACKGROUND_NICE
from richchat.core.server import ChatServer
from richchat.core.sharing import fetch_file, share_file
from richchat.core.transfer import DownloadDir
from tests.conditions import wait_until
from tests.server.conftest import ServerFactory


def addr(server: ChatServer) -> Address:
    return Address("127.0.0.1", server.port)


def make_file(path: Path, size: int, seed: int = 0) -> str:
    data = hashlib.shake_256(f"{seed}".encode()).digest(size)
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def transfer_threads(name: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == name]


def nice(thread: threading.Thread) -> int:
    assert thread.native_id is not None
    return os.getpriority(os.PRIO_PROCESS, thread.native_id)


async def test_transfers_run_in_their_own_threads_below_the_loop(
        make_server: ServerFactory, tmp_path: Path) -> None:
    """Upload and download (speed-limited, so that they last) each have a thread, at a lower
    priority than the loop's; the bytes arrive whole and verified; the threads end with the
    transfers."""
    server = await make_server(file_rate=2_000_000)
    assert server.files is not None
    loop_nice = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    src = tmp_path / "a.bin"
    sha = make_file(src, 3_000_000)
    upload = asyncio.ensure_future(share_file(addr(server), "alice", src))
    await wait_until(lambda: bool(transfer_threads("richchat-upload")) or upload.done(),
                     "the upload's thread")
    assert not upload.done()
    [thread] = transfer_threads("richchat-upload")
    assert nice(thread) == min(19, loop_nice + BACKGROUND_NICE)
    shared = await asyncio.wait_for(upload, 60)
    assert (server.config.data_dir / "files" / sha).read_bytes() == src.read_bytes()
    await wait_until(lambda: not transfer_threads("richchat-upload"), "the thread to end")

    download = asyncio.ensure_future(
        fetch_file(addr(server), shared.id, DownloadDir(tmp_path / "dl"), nick="bob"))
    await wait_until(lambda: bool(transfer_threads("richchat-download")) or download.done(),
                     "the download's thread")
    assert not download.done()
    [thread] = transfer_threads("richchat-download")
    assert nice(thread) == min(19, loop_nice + BACKGROUND_NICE)
    got = await asyncio.wait_for(download, 60)
    assert Path(got.path).read_bytes() == src.read_bytes()
    await wait_until(lambda: not transfer_threads("richchat-download"), "the thread to end")
    assert [r.outcome for r in server.files.recent] == ["stored", "sent"]
    assert server.files.bytes_in == server.files.bytes_out == 3_000_000


@pytest.mark.parametrize("direction", ["upload", "download"])
async def test_a_clean_shutdown_ends_transfers_under_way(
        make_server: ServerFactory, tmp_path: Path, direction: str,
        caplog: pytest.LogCaptureFixture) -> None:
    """server.stop() during a transfer (speed-limited: 20 s) ends it and its thread, the
    client gets an error, and an upload keeps what the server received, for a resume."""
    src = tmp_path / "big.bin"
    sha = make_file(src, 10_000_000)
    if direction == "download":
        fast = await make_server()
        shared = await share_file(addr(fast), "alice", src)
        await fast.stop()
    server = await make_server(file_rate=500_000)
    assert server.files is not None
    partial = server.config.data_dir / "files" / "partial" / sha
    dl = DownloadDir(tmp_path / "dl")
    if direction == "upload":
        task = asyncio.ensure_future(share_file(addr(server), "alice", src))
        grows = partial
    else:
        task = asyncio.ensure_future(fetch_file(addr(server), shared.id, dl, nick="bob"))
        grows = Path(dl.part_path(shared.id))
    name = f"richchat-{direction}"
    await wait_until(lambda: bool(transfer_threads(name)) or task.done(), "the transfer")
    await wait_until(lambda: (grows.exists() and grows.stat().st_size > 0) or task.done(),
                     "bytes on disk")
    assert not task.done()
    files = server.files
    await asyncio.wait_for(server.stop(), 60)  # a bound for a hang, not a timing check
    assert not transfer_threads(name)
    assert not files.active
    with pytest.raises(RichchatError):
        await asyncio.wait_for(task, 60)
    if direction == "upload":
        held = partial.stat().st_size
        assert 0 < held < 10_000_000
        assert files.recent[-1].outcome == "interrupted" and files.recent[-1].moved == held
    assert not [r for r in caplog.records if r.levelname == "ERROR"]  # asyncio's included
