"""``richchat send -`` whose server stops answering while a line waits for its echo (eighth
exploratory pass): the one line on stderr must say what got through, as it does when the
connection ends between lines ('(2 delivered)') and on Ctrl+C ('1 more sent but not
confirmed'). It said only 'timed out after 1 s waiting for the server to relay our message',
so a script without --json could not tell which lines to send again."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
from pathlib import Path

from richchat.core.exit_codes import ExitStatus
from tests.client.servers import cli_env
from tests.commands.test_files_cli import CLI
from tests.linechat import LineClient
from tests.serverproc import ServerProc


async def test_a_line_in_flight_when_the_server_freezes_is_counted(tmp_path: Path) -> None:
    server = ServerProc(tmp_path / "data")
    try:
        watcher = await LineClient.connect(server.port, hello="test/1", nick="watcher")
        proc = await asyncio.create_subprocess_exec(
            *CLI, "send", f"127.0.0.1:{server.port}", "--nick", "bot", "--timeout", "1",
            "--json", "-", stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, env=cli_env())
        assert proc.stdin is not None
        proc.stdin.write(b"first line\n")
        await proc.stdin.drain()
        await watcher.expect(lambda line: line.endswith("|bot|first line"), timeout=20)
        # the pass that wrote the line to the watcher may not have reached bot yet (the
        # test reads on the other core): a PONG, answered in a later turn of the server's
        # loop, says that pass is over, bot's echo written
        watcher.send("PING|after-first")
        await watcher.expect("PONG|after-first", timeout=20)
        os.kill(server.pid, signal.SIGSTOP)  # the echo of the first line is on its way
        try:
            proc.stdin.write(b"second line\n")
            await proc.stdin.drain()
            out, err = await asyncio.wait_for(proc.communicate(), 60)
        finally:
            os.kill(server.pid, signal.SIGCONT)
        await watcher.close()
    finally:
        server.stop()
    assert proc.returncode == ExitStatus.TIMEOUT, err
    doc = json.loads(out)
    assert (doc["delivered"], doc["unconfirmed"]) == (1, 1), doc
    message = err.decode()
    assert "(1 delivered, 1 more sent but not confirmed)" in message, message
    assert doc["error"] in message
