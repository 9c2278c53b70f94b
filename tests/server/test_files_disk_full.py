"""File sharing on a server whose disk is full (from the sixth exploratory pass): the data
directory on a 2 MiB tmpfs in the server's own mount namespace, an upload larger than the
space left. The server logged 'Exception in callback' and 'Fatal error:
protocol.data_received() call failed' tracebacks (its file index could not record the
upload: 'database or disk is full'), and closed transfer connections without a word."""

from __future__ import annotations

import asyncio
import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.client.servers import cli_env
from tests.server.test_faults import in_tmpfs, require_mount_ns, seen_by
from tests.serverproc import ServerProc, internal_errors


@pytest.mark.netns
async def test_an_upload_to_a_full_disk_is_refused_in_one_line(tmp_path: Path) -> None:
    require_mount_ns()
    data = tmp_path / "data"
    server = ServerProc(data, log_dir=tmp_path, prefix=in_tmpfs(data, "size=2m"))
    try:
        inside = seen_by(server.pid, data)
        free = shutil.disk_usage(inside).free
        (inside / "ballast").write_bytes(b"\0" * max(0, free - 64 * 1024))
        src = tmp_path / "build.bin"
        src.write_bytes(hashlib.shake_256(b"full").digest(1_000_000))
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "richchat", "send", f"127.0.0.1:{server.port}", "--nick",
            "alice", "--file", str(src), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, env=cli_env())
        _, err = await asyncio.wait_for(proc.communicate(), 120)
        assert proc.returncode != 0, err.decode()  # nothing was shared
        text = err.decode()
        assert text.startswith("error: ") and text.count("\n") == 1, text
        assert server.proc.poll() is None  # still serving
    finally:
        server.stop()
    assert internal_errors(server.log()) == []
