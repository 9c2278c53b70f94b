"""``richchat send`` paces itself to the flood limit the server advertises in its HELLO, and
shows progress on a terminal (real subprocess, real server on loopback, a pty for stderr)."""

from __future__ import annotations

import asyncio
import os
import pty
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from richchat.core.exit_codes import ExitStatus
from richchat.core.protocol import frames as f
from richchat.core.server import ChatServer, ServerConfig
from tests.client.servers import cli_env, next_frame, registered

CLI = [sys.executable, "-m", "richchat"]


@pytest.fixture
async def slow_server(tmp_path: Path) -> AsyncIterator[ChatServer]:
    """2.5 lines a second, burst 2: HELLO and the nickname take the burst."""
    server = ChatServer(ServerConfig(host="127.0.0.1", port=0, data_dir=tmp_path, beacon=False,
                                     mdns=False, name="test", flood_rate=2.5, flood_burst=2))
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def received(server: ChatServer, count: int) -> list[str]:
    watcher = await registered(server.port, "watcher")
    try:
        got = []
        while len(got) < count:
            frame = await next_frame(watcher, f.RoomMessage, timeout=60)
            assert isinstance(frame, f.RoomMessage)
            got.append(frame.text)
        return got
    finally:
        await watcher.close()


async def test_lines_wait_for_the_servers_rate_not_in_its_queue(tmp_path: Path) -> None:
    # 0.4 lines/s: a line sent at once would be held 2.5 s by the server, longer than
    # --timeout 1.5 (what happened before send paced itself); paced, each echo is immediate
    server = ChatServer(ServerConfig(host="127.0.0.1", port=0, data_dir=tmp_path, beacon=False,
                                     mdns=False, name="test", flood_rate=0.4, flood_burst=2))
    await server.start()
    try:
        watching = asyncio.ensure_future(received(server, 2))
        await asyncio.sleep(0)
        proc = await asyncio.create_subprocess_exec(
            *CLI, "send", f"127.0.0.1:{server.port}", "--nick", "paced", "--timeout", "1.5", "-",
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=cli_env(),
        )
        _, err = await asyncio.wait_for(proc.communicate(b"first\nsecond\n"), 60)
        assert proc.returncode == ExitStatus.OK, err.decode()
        assert b"sent 2 messages" in err and b"lines/s" not in err  # no progress: not a tty
        assert await asyncio.wait_for(watching, 60) == ["first", "second"]
    finally:
        await server.stop()


async def run_on_pty(port: int, *args: str, lines: int) -> tuple[int, str, bytes]:
    """send with stderr on a pseudo-terminal; returns (exit status, stderr, stdout)."""
    master, slave = pty.openpty()
    proc = await asyncio.create_subprocess_exec(
        *CLI, "send", f"127.0.0.1:{port}", "--nick", "bulk", *args, "-",
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=slave, env=cli_env(),
    )
    os.close(slave)
    loop = asyncio.get_running_loop()
    chunks: list[bytes] = []

    def read_pty() -> None:
        while True:
            try:
                data = os.read(master, 4096)
            except OSError:  # EIO: the child closed its end
                return
            if not data:
                return
            chunks.append(data)

    reader = loop.run_in_executor(None, read_pty)
    try:
        text = "".join(f"line {n}\n" for n in range(lines)).encode()
        out, _ = await asyncio.wait_for(proc.communicate(text), 60)
        await asyncio.wait_for(reader, 10)
    finally:
        os.close(master)
    assert proc.returncode is not None
    return proc.returncode, b"".join(chunks).decode(errors="replace"), out


async def test_progress_with_rate_and_time_left_on_a_terminal(slow_server: ChatServer) -> None:
    watching = asyncio.ensure_future(received(slow_server, 6))
    await asyncio.sleep(0)
    code, err, _ = await run_on_pty(slow_server.port, lines=6)
    assert code == ExitStatus.OK, err
    assert await asyncio.wait_for(watching, 60) == [f"line {n}" for n in range(6)]
    assert "server limit 2.5 lines/s" in err
    assert " left" in err and "delivered" in err
    assert "\r\x1b[K" in err  # drawn in place, and erased before the summary
    assert err.rstrip().endswith("sent 6 messages to lobby as bulk")


async def test_no_progress_with_json_even_on_a_terminal(slow_server: ChatServer) -> None:
    code, err, out = await run_on_pty(slow_server.port, "--json", lines=4)
    assert code == ExitStatus.OK, err
    assert err == ""
    assert b'"delivered":4' in out


def test_progress_text() -> None:
    from richchat.core.send import SendStatus
    from richchat.core.send_render import duration, progress_text

    assert [duration(s) for s in (0.4, 9, 75, 3725)] == ["0s", "9s", "1m15s", "1h02m"]
    status = SendStatus(server="h:1", nick="n", target="ops", delivered=120, waiting=9880,
                        input_done=True, rate=10.0)
    assert progress_text(status) == (
        "sending to ops: 120 delivered, 9880 to go; server limit 10 lines/s, 16m28s left"
    )
    status.input_done = False  # stdin still open: more may come
    assert progress_text(status).endswith("9880 queued; server limit 10 lines/s, at least 16m28s left")
