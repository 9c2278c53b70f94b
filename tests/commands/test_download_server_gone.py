"""``richchat get`` when the server shuts down in the middle of the download (eighth
exploratory pass): the error must be about the download, not about the file asked for again on
the dead chat connection ('closed the connection while we waited for the server to send file
ID'), and say that running it again resumes."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from richchat.core.exit_codes import ExitStatus
from tests.commands.midtransfer import shared_file, under_way
from tests.commands.test_files_cli import make_file
from tests.serverproc import ServerProc


async def test_server_stopped_during_a_download_is_said_so(tmp_path: Path) -> None:
    size = 4_000_000
    src = tmp_path / "build.bin"
    make_file(src, size)
    file_id = shared_file(tmp_path / "data", src)
    server = ServerProc(tmp_path / "data", "--file-rate", "500K")
    out_dir = tmp_path / "downloads"
    try:
        proc = await under_way(["get", f"127.0.0.1:{server.port}", file_id, "--nick", "bob",
                                "-o", f"{out_dir}/", "--json"], out_dir)
        server.stop()
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        server.stop()
    assert proc.returncode == ExitStatus.CONNECTION_LOST, err
    doc = json.loads(out)
    message = err.decode().strip()
    assert message.startswith(f"error: {doc['error']}")
    assert f"to send file {file_id}" not in message, message
    assert "download" in message and "run the same command again" in message, message
