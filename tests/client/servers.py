"""Real richchat servers for client, UI and command tests (in-process or as a subprocess)."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from richchat.core.client import ChatClient
from richchat.core.protocol import frames as f

REPO_ROOT = Path(__file__).resolve().parents[2]
LISTEN_RE = re.compile(r"listening on (\S+):(\d+)")


async def start_server(data_dir: Path, port: int = 0, name: str = "test") -> object:
    from richchat.core.server import ChatServer, ServerConfig

    server = ChatServer(
        ServerConfig(host="127.0.0.1", port=port, data_dir=data_dir, beacon=False, mdns=False,
                     name=name)
    )
    await server.start()
    return server


@pytest.fixture
async def chat_server(tmp_path: Path) -> AsyncIterator[object]:
    """A real in-process ChatServer on 127.0.0.1, port 0, with its own data dir."""
    server = await start_server(tmp_path / "data")
    try:
        yield server
    finally:
        await server.stop()  # type: ignore[attr-defined]


async def registered(port: int, nick: str) -> ChatClient:
    """A ChatClient connected to 127.0.0.1:port and registered as ``nick``."""
    client = ChatClient("127.0.0.1", port, timeout=10)
    await client.connect()
    await client.register(nick)
    return client


async def next_frame(
    client: ChatClient, kind: type[f.Frame] | tuple[type[f.Frame], ...], timeout: float = 10
) -> f.Frame:
    """The next frame of ``kind`` from ``client`` (others are skipped)."""

    async def wait() -> f.Frame:
        while True:
            frame = await client.recv()
            if frame is None:
                raise AssertionError("connection closed")
            if isinstance(frame, kind):
                return frame

    return await asyncio.wait_for(wait(), timeout)


def cli_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["NO_COLOR"] = "1"
    env.pop("RICHCHAT_DEBUG", None)
    return env


@dataclass
class ServerProcess:
    proc: subprocess.Popen[str]
    host: str
    port: int
    data_dir: Path

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


def launch_server(data_dir: Path, port: int = 0) -> ServerProcess:
    """``richchat server`` as a subprocess on 127.0.0.1 (beacon and mDNS off)."""
    argv = [sys.executable, "-m", "richchat", "server", "--host", "127.0.0.1", "--port",
            str(port), "--no-beacon", "--no-mdns", "--data-dir", str(data_dir), "--name", "test"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=cli_env())
    assert proc.stdout is not None
    line = proc.stdout.readline()
    m = LISTEN_RE.search(line)
    if not m:
        proc.kill()
        _, err = proc.communicate(timeout=5)
        raise AssertionError(f"server did not start: {line!r} {err[-500:]!r}")
    return ServerProcess(proc, m.group(1), int(m.group(2)), data_dir)


@pytest.fixture
def server_process(tmp_path: Path) -> Iterator[ServerProcess]:
    server = launch_server(tmp_path / "data")
    try:
        yield server
    finally:
        server.stop()


def free_port() -> int:
    """A loopback port with nothing listening (bound then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class WithoutFloodKey:
    """A real TCP proxy on loopback in front of a real server that drops ``flood=`` from the
    server's HELLO: a server of an earlier version, which holds fast lines back (flood
    control) without saying at what rate."""

    def __init__(self, port: int) -> None:
        self.target = port
        self.server: asyncio.Server | None = None
        self.port = 0

    async def __aenter__(self) -> WithoutFloodKey:
        async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                       rewrite: bool) -> None:
            try:
                while line := await reader.readline():
                    if rewrite and line.startswith(b"HELLO|"):
                        line = re.sub(rb"\|flood=[^|\n]*", b"", line)
                    writer.write(line)
                    await writer.drain()
            except (ConnectionError, asyncio.LimitOverrunError, ValueError):
                pass
            finally:
                writer.close()

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target,
                                                                 limit=2**22)
            await asyncio.gather(pipe(reader, up_writer, False), pipe(up_reader, writer, True))

        self.server = await asyncio.start_server(handle, "127.0.0.1", 0, limit=2**22)
        self.port = int(self.server.sockets[0].getsockname()[1])
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()
