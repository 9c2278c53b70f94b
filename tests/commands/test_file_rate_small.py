"""``server --file-rate`` holds for small files too (#16): a download of less than 256 KiB
went out in one ``sendfile`` at once, at any rate, and an upload's ``XDONE`` went as soon as
its last bytes came (a small file: at once). Real ``richchat send --file`` and ``get``
processes against a real server in this test's event loop; the server's speed limit runs on
a virtual clock (its waits pass at once and are added up), so what is checked is the
schedule the limit keeps, not how long anything took on this machine."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from richchat.core.exit_codes import ExitStatus
from richchat.core.server.transfer import Transfers
from tests.commands.test_files_cli import make_file, run, sha_of, where
from tests.server.conftest import ServerFactory, make_server

__all__ = ["make_server"]


class VirtualClock:
    """The speed limit's clock: time passes only in its waits."""

    def __init__(self) -> None:
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    async def sleep(self, delay: float) -> None:
        self.now += delay
        await asyncio.sleep(0)

    def later(self, delay: float, callback: object) -> asyncio.Handle:
        self.now += delay
        assert callable(callback)
        return asyncio.get_running_loop().call_soon(callback)

    def install(self, transfers: Transfers) -> None:
        transfers.clock = self.clock
        transfers.sleep = self.sleep
        transfers.later = self.later


@pytest.mark.parametrize("size", [1_000, 100_000, 300_000])
async def test_the_speed_limit_holds_for_files_under_256_kib(
        make_server: ServerFactory, tmp_path: Path, size: int) -> None:
    rate = 40_000  # bytes/s: a 100 kB file takes 2.5 s each way
    server = await make_server(file_rate=rate)
    assert server.files is not None
    src = tmp_path / "small.bin"
    sha = make_file(src, size)

    upload = VirtualClock()
    upload.install(server.files)
    code, out, err = await run("send", where(server), "--nick", "alice", "--file", str(src),
                               "--json")
    assert code == ExitStatus.OK, err
    assert json.loads(out)["sent"] == size
    # XDONE went once the limit allowed for the last byte: size / rate after the start
    assert upload.now == pytest.approx(size / rate, abs=1e-9)

    download = VirtualClock()
    download.install(server.files)
    code, out, err = await run("get", where(server), json.loads(out)["id"], "--nick", "bob",
                               "-o", f"{tmp_path / 'dl'}/", "--json")
    assert code == ExitStatus.OK, err
    assert sha_of(Path(json.loads(out)["path"])) == sha
    # the last chunk went when the limit allowed for it, the first one included
    assert download.now == pytest.approx(size / rate, abs=1e-9)
