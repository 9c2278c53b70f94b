"""Real TLS servers, impostors (socat, a plaintext richchat server) and trust policies."""

from __future__ import annotations

import asyncio
import socket
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from richchat.core.server import ChatServer, ServerConfig
from richchat.core.trust.connect import TrustPolicy
from richchat.core.trust.known import KnownServers
from tests.tlskit import KeyPair, need

ServerFactory = Callable[..., Awaitable[ChatServer]]


@pytest.fixture
async def start_server(tmp_path: Path) -> AsyncIterator[ServerFactory]:
    """``await start_server(data_dir=..., port=..., tls=True)``: a real server on 127.0.0.1."""
    servers: list[ChatServer] = []

    async def factory(**overrides: Any) -> ChatServer:
        options: dict[str, Any] = dict(
            host="127.0.0.1", port=0, data_dir=tmp_path / "data", beacon=False, mdns=False,
            name="tls-test", raw_detect_delay=0.2, tls=True,
        )
        options.update(overrides)
        server = ChatServer(ServerConfig(**options))
        await server.start()
        servers.append(server)
        return server

    yield factory
    for server in servers:
        await server.stop()


def policy(tmp_path: Path, **kw: Any) -> TrustPolicy:
    kw.setdefault("unknown", "accept-new")
    return TrustPolicy(KnownServers(tmp_path / "known_servers"), **kw)


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


async def wait_listening(port: int, proc: subprocess.Popen[bytes] | None = None,
                         timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await asyncio.to_thread(port_open, port):
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"impostor exited: {proc.returncode}")
        if loop.time() > deadline:
            raise AssertionError(f"nothing listens on {port} after {timeout} s")
        await asyncio.sleep(0.02)


class Socat:
    """A socat process (an impostor or a man in the middle), stopped at the end."""

    def __init__(self, args: list[str], log: Path) -> None:
        need("socat")
        self.log = log
        self.proc = subprocess.Popen(["socat", *args], stdout=subprocess.DEVNULL,
                                     stderr=log.open("wb"))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@pytest.fixture
def socat(tmp_path: Path) -> Iterator[Callable[..., Socat]]:
    started: list[Socat] = []

    def run(*args: str) -> Socat:
        proc = Socat(list(args), tmp_path / f"socat-{len(started)}.log")
        started.append(proc)
        return proc

    yield run
    for proc in started:
        proc.stop()


def tls_listen(port: int, pair: KeyPair) -> str:
    return (f"OPENSSL-LISTEN:{port},reuseaddr,fork,cert={pair.cert},key={pair.key},verify=0")
