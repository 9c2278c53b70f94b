"""``richchat join`` to a server at its connection cap: "server full", its own exit status
(a real terminal for join, a real server on loopback)."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

from richchat.core.exit_codes import ExitStatus
from tests.client.servers import cli_env, registered


async def test_join_a_full_server(tmp_path: Path) -> None:
    import asyncio

    from richchat.core.server import ChatServer, ServerConfig

    server = ChatServer(ServerConfig(host="127.0.0.1", port=0, data_dir=tmp_path, beacon=False,
                                     mdns=False, name="test", max_clients=1))
    await server.start()
    holder = await registered(server.port, "holder")
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "richchat", "join", f"127.0.0.1:{server.port}", "--nick", "late"],
        stdin=slave, stdout=slave, stderr=subprocess.PIPE, env=cli_env(), close_fds=True,
    )
    os.close(slave)
    try:
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            # keep the terminal drained while the app starts and stops
            ready, _, _ = await asyncio.get_running_loop().run_in_executor(
                None, select.select, [master], [], [], 0.2)
            if ready:
                try:
                    os.read(master, 65536)
                except OSError:
                    break
        code = proc.wait(timeout=30)
        assert proc.stderr is not None
        err = proc.stderr.read().decode()
    finally:
        if proc.poll() is None:
            proc.kill()  # our own child, by its handle
            proc.wait()
        os.close(master)
        await holder.close()
        await server.stop()
    assert code == ExitStatus.SERVER_FULL, err
    assert f"127.0.0.1:{server.port} is full" in err
    assert "Traceback" not in err
