"""Two downloads of one file into one directory at the same moment (from the sixth
exploratory pass): eight ``richchat get`` of a file into one directory failed now and then
with ``error: cannot name the download: No such file or directory`` (exit 22), after
downloading the whole file. A real server and the real client code in this test's event
loop; the first download is held at the moment it names its file, so the race is certain."""

from __future__ import annotations

import asyncio
import hashlib
import threading
from pathlib import Path
from typing import Any

import pytest

from richchat.core.client import Address
from richchat.core.sharing import fetch_file, share_file
from richchat.core.transfer import PART_PREFIX, DownloadBusyError, DownloadDir
from tests.server.conftest import ServerFactory, make_server

__all__ = ["make_server"]


async def test_a_download_that_starts_while_another_names_the_file(
        make_server: ServerFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The first download closed its part file (and so let go of its lock) before it gave it
    its name. A second download of the same file into the same directory starting in that
    moment took the part file over (whole, verified: 'resumed' at its end), named it first,
    and the first then found its part file gone: 'cannot name the download: No such file or
    directory', exit 22, after the whole download. The second is now told that the file is
    being downloaded there, and the first ends as it should."""
    server = await make_server()
    src = tmp_path / "report.pdf"
    data = hashlib.shake_256(b"race").digest(300_000)
    src.write_bytes(data)
    shared = await share_file(Address("127.0.0.1", server.port), "alice", src)
    where = tmp_path / "dl"

    naming = threading.Event()  # the first download is about to name its file
    go_on = threading.Event()
    original = DownloadDir.place
    calls: list[int] = []

    def held_place(self: DownloadDir, *args: Any) -> Path:
        calls.append(1)
        if len(calls) == 1:
            naming.set()
            assert go_on.wait(30), "the test never let the first download go on"
        return original(self, *args)

    monkeypatch.setattr(DownloadDir, "place", held_place)

    def fetch(nick: str) -> Any:
        return fetch_file(Address("127.0.0.1", server.port), shared.id, DownloadDir(where),
                          nick=nick)

    first = asyncio.ensure_future(fetch("bob"))
    try:
        for _ in range(3000):
            if naming.is_set() or first.done():
                break
            await asyncio.sleep(0.01)
        assert naming.is_set(), "the first download never came to name its file"
        try:
            second = await asyncio.wait_for(fetch("carol"), 60)
        except DownloadBusyError:
            second = None
    finally:
        go_on.set()
    got = await asyncio.wait_for(first, 60)
    assert Path(got.path).read_bytes() == data
    if second is not None:  # it may have started afresh, beside the first: a whole copy
        assert Path(second.path).read_bytes() == data and second.path != got.path
    assert not [p for p in where.iterdir() if p.name.startswith(PART_PREFIX)]
