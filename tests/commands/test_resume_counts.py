"""``send --file`` and ``get`` whose transfer connection is cut and resumed within the same run
(a proxy, a Wi-Fi drop; eighth exploratory pass): ``sent``/``received`` are the bytes moved by
this run and ``resumed_from`` what an earlier run had moved, as documented. The upload said
``resumed_from`` = where its own last retry started ('resumed at 5.9 MB' for a run that
began at 0) and both counted only the last attempt's bytes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
from pathlib import Path

from tests.client.servers import cli_env
from tests.commands.test_files_cli import CLI, make_file
from tests.serverproc import ServerProc

SIZE = 3_000_000
CUT = 1_000_000


class CutRelay:
    """A loopback relay that cuts a connection once ``CUT`` bytes went one way (``up``: client
    to server), ``cuts`` times in all; later connections pass everything."""

    def __init__(self, target: int, *, up: bool, cuts: int = 2) -> None:
        self.target, self.up, self.left = target, up, cuts
        self.port = 0
        self.server: asyncio.Server | None = None

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    def close(self) -> None:
        if self.server is not None:
            self.server.close()

    async def _handle(self, cr: asyncio.StreamReader, cw: asyncio.StreamWriter) -> None:
        sr, sw = await asyncio.open_connection("127.0.0.1", self.target)

        async def pump(r: asyncio.StreamReader, w: asyncio.StreamWriter, counted: bool) -> None:
            moved = 0
            while data := await r.read(65536):
                moved += len(data)
                if counted and moved > CUT and self.left > 0:
                    self.left -= 1
                    cw.transport.abort()
                    sw.transport.abort()
                    return
                w.write(data)
                await w.drain()
            w.close()

        with contextlib.suppress(OSError):
            await asyncio.gather(pump(cr, sw, self.up), pump(sr, cw, not self.up))


async def run_cli(*args: str) -> dict[str, object]:
    proc = await asyncio.create_subprocess_exec(
        *CLI, *args, "--json", stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, env=cli_env())
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, err
    doc: dict[str, object] = json.loads(out)
    return doc


async def test_transfers_resumed_within_a_run_are_counted(tmp_path: Path) -> None:
    src = tmp_path / "build.bin"
    make_file(src, SIZE)
    server = ServerProc(tmp_path / "data")
    up = CutRelay(server.port, up=True)
    down = CutRelay(server.port, up=False)
    await up.start()
    await down.start()
    try:
        shared = await run_cli("send", f"127.0.0.1:{up.port}", "--nick", "ci", "--file",
                               str(src))
        assert up.left == 0  # cut twice, resumed each time
        got = await run_cli("get", f"127.0.0.1:{down.port}", str(shared["id"]), "--nick",
                            "bob", "-o", f"{tmp_path / 'dl'}/")
        assert down.left == 0
    finally:
        up.close()
        down.close()
        server.stop()
    assert (shared["resumed_from"], shared["held"]) == (0, False), shared
    assert shared["sent"] >= SIZE, shared  # type: ignore[operator]
    assert got["resumed_from"] == 0, got
    assert got["received"] >= SIZE, got  # type: ignore[operator]
    assert (tmp_path / "dl" / "build.bin").read_bytes() == src.read_bytes()
