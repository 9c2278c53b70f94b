"""``send --file`` and ``get`` whose server freezes (``kill -STOP``) in the middle of the
transfer (eighth exploratory pass): both end after ``--timeout`` (exit 6) and, as for Ctrl+C
and a lost connection, say that running the same command again resumes; they said only 'the
server took no data for 1 s' / 'the server sent nothing for 1 s'."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

from richchat.core.exit_codes import ExitStatus
from tests.commands.midtransfer import shared_file, under_way
from tests.commands.test_files_cli import make_file
from tests.serverproc import ServerProc


async def frozen_mid_transfer(server: ServerProc, args: list[str], grows: Path) -> str:
    proc = await under_way([*args, "--timeout", "1"], grows)
    os.kill(server.pid, signal.SIGSTOP)
    try:
        _, err = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        os.kill(server.pid, signal.SIGCONT)
    assert proc.returncode == ExitStatus.TIMEOUT, err
    return err.decode()


async def test_transfers_from_a_frozen_server_say_how_to_resume(tmp_path: Path) -> None:
    src = tmp_path / "build.bin"
    make_file(src, 4_000_000)
    server = ServerProc(tmp_path / "data", "--file-rate", "500K")
    try:
        err = await frozen_mid_transfer(
            server, ["send", f"127.0.0.1:{server.port}", "--nick", "ci", "--file", str(src)],
            tmp_path / "data" / "files" / "partial")
        assert "run the same command again" in err, err
    finally:
        server.stop()
    file_id = shared_file(tmp_path / "data", src)
    server = ServerProc(tmp_path / "data", "--file-rate", "500K")
    try:
        err = await frozen_mid_transfer(
            server, ["get", f"127.0.0.1:{server.port}", file_id, "--nick", "bob", "-o",
                     f"{tmp_path / 'dl'}/"], tmp_path / "dl")
        assert "run the same command again" in err, err
    finally:
        server.stop()
