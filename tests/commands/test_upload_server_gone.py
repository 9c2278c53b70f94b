"""``richchat send --file`` when the server shuts down in the middle of the upload (eighth
exploratory pass): the error must be about the upload, not about the offer made again on the
dead chat connection ('closed the connection while we waited for the server to accept the
file'), and say how to resume."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from richchat.core.exit_codes import ExitStatus
from tests.commands.midtransfer import under_way
from tests.commands.test_files_cli import make_file
from tests.serverproc import ServerProc


async def test_server_stopped_during_an_upload_is_said_so(tmp_path: Path) -> None:
    size = 4_000_000
    src = tmp_path / "build.bin"
    make_file(src, size)
    server = ServerProc(tmp_path / "data", "--file-rate", "500K")
    partial = tmp_path / "data" / "files" / "partial"
    try:
        proc = await under_way(["send", f"127.0.0.1:{server.port}", "--nick", "ci", "--file",
                                str(src), "--json"], partial)
        server.stop()
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        server.stop()
    assert proc.returncode == ExitStatus.CONNECTION_LOST, err
    doc = json.loads(out)
    message = err.decode().strip()
    assert message.startswith(f"error: {doc['error']}")
    assert "accept the file" not in message, message
    assert "upload" in message and "run the same command again" in message, message
