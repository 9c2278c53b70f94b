"""Real richchat servers for client, UI and command tests (in-process or as a subprocess)."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from richchat.core.client import ChatClient
from richchat.core.protocol import frames as f
from tests.conditions import wait_until

__all__ = ["wait_until"]  # re-exported for the client and command tests

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


class PingCountingReader(asyncio.StreamReader):
    """A StreamReader that counts the PINGs the server sent (ChatClient answers them by
    itself, so a test can wait for "N more idle periods" instead of sleeping)."""

    def __init__(self, limit: int) -> None:
        super().__init__(limit=limit)
        self.pings = 0
        self._partial = b""

    async def read(self, n: int = -1) -> bytes:
        data = await super().read(n)
        lines = (self._partial + data).split(b"\n")
        self._partial = lines.pop()
        self.pings += sum(1 for line in lines if line.startswith(b"PING|"))
        return data


async def registered_counting_pings(port: int, nick: str) -> tuple[ChatClient, PingCountingReader]:
    """Like :func:`registered`, with the PINGs this client receives counted."""
    readers: list[PingCountingReader] = []

    async def opener(host: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        loop = asyncio.get_running_loop()
        reader = PingCountingReader(limit=2**20)
        protocol = asyncio.StreamReaderProtocol(reader)
        transport, _ = await loop.create_connection(lambda: protocol, host, port)
        readers.append(reader)
        return reader, asyncio.StreamWriter(transport, protocol, reader, loop)

    client = ChatClient("127.0.0.1", port, timeout=10, opener=opener)
    await client.connect()
    await client.register(nick)
    return client, readers[0]


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
    log_path: Path  # the server's stderr (its log), in a file: a pipe nobody reads would block it

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


def launch_server(data_dir: Path, port: int = 0, extra: tuple[str, ...] = ()) -> ServerProcess:
    """``richchat server`` as a subprocess on 127.0.0.1 (beacon and mDNS off); ``extra``:
    more options."""
    argv = [sys.executable, "-m", "richchat", "server", "--host", "127.0.0.1", "--port",
            str(port), "--no-beacon", "--no-mdns", "--data-dir", str(data_dir), "--name", "test",
            *extra]
    data_dir.mkdir(parents=True, exist_ok=True)
    fd, log_name = tempfile.mkstemp(prefix="server-", suffix=".log", dir=data_dir)
    with os.fdopen(fd, "w") as log:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=log, text=True,
                                stdin=subprocess.DEVNULL, env=cli_env())
    assert proc.stdout is not None
    line = proc.stdout.readline()
    m = LISTEN_RE.search(line)
    if not m:
        proc.kill()
        proc.wait(timeout=5)
        raise AssertionError(f"server did not start: {line!r} {Path(log_name).read_text()[-500:]!r}")
    return ServerProcess(proc, m.group(1), int(m.group(2)), data_dir, Path(log_name))


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


@dataclass
class Hostile:
    """A hostile server process (tests/client/hostile.py) and its port."""

    proc: subprocess.Popen[str]
    port: int

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


@pytest.fixture
def hostile_server() -> Iterator[Callable[[str], Hostile]]:
    """Start hostile servers by scenario name; all are killed at the end of the test."""
    procs: list[subprocess.Popen[str]] = []

    def start(scenario: str) -> Hostile:
        proc = subprocess.Popen([sys.executable, "-m", "tests.client.hostile", scenario],
                                stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
                                env=cli_env(), cwd=REPO_ROOT)
        procs.append(proc)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("port "), line
        return Hostile(proc, int(line.split()[1]))

    yield start
    for proc in procs:
        proc.kill()
        proc.wait(timeout=10)
