"""scan() recognises TLS services by a handshake: a TLS richchat server is joinable with its
key's fingerprint (and is never sent an HTTP request); other TLS services are reported with
their certificate's subject; an HTTPS server is still named. Outside servers are openssl's."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from richchat.core.scanner import scan
from richchat.core.server import ChatServer, ServerConfig
from tests.tlskit import KeyPair, need, openssl_keypair
from tests.trust.conftest import wait_listening

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
async def tls_chat(tmp_path: Path) -> AsyncIterator[ChatServer]:
    server = ChatServer(ServerConfig(host="127.0.0.1", port=0, data_dir=tmp_path / "chat",
                                     beacon=False, mdns=False, name="secure-lab", tls=True))
    await server.start()
    yield server
    await server.stop()


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def pair(tmp_path: Path) -> KeyPair:
    return openssl_keypair(tmp_path / "tls", "svc", cn="printer.lab")


async def _start(argv: list[str], port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    await wait_listening(port, proc)
    return proc


async def test_tls_richchat_server_joinable_with_fingerprint(tls_chat: ChatServer) -> None:
    report = await scan("127.0.0.1", [tls_chat.port])
    [found] = report.open
    assert found.service == "richchat" and found.joinable
    assert found.richchat is not None and found.richchat.tls
    assert found.richchat.server_name == "secure-lab"
    assert found.richchat.fingerprint == tls_chat.tls.fingerprint  # type: ignore[union-attr]
    assert found.tls is not None and found.tls.version.startswith("TLSv1.")
    assert found.tls.subject is not None and "O=richchat" in found.tls.subject
    assert tls_chat.hub.users_online == 0  # type: ignore[union-attr]  # no guest from an HTTP probe


async def test_other_tls_services(pair: KeyPair) -> None:
    need("openssl")
    need("socat")
    tls_port, https_port = free_port(), free_port()
    procs = [
        await _start(["socat", f"OPENSSL-LISTEN:{tls_port},reuseaddr,fork,cert={pair.cert},"
                      f"key={pair.key},verify=0", "EXEC:cat"], tls_port),
        await _start(["openssl", "s_server", "-accept", str(https_port), "-cert",
                      str(pair.cert), "-key", str(pair.key), "-www", "-quiet"], https_port),
    ]
    try:
        report = await scan("127.0.0.1", [tls_port, https_port])
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(10)
    tls, https = report.port(tls_port), report.port(https_port)
    assert tls is not None and tls.service == "tls" and not tls.joinable
    assert tls.tls is not None and tls.tls.subject == "CN=printer.lab"
    assert tls.tls.fingerprint == pair.fingerprint
    assert https is not None and https.service == "https" and https.http is not None
    assert https.tls is not None and https.tls.fingerprint == pair.fingerprint


async def test_scan_cli_shows_tls(tls_chat: ChatServer, cli: list[str],
                                  cli_env: dict[str, str]) -> None:
    proc = await asyncio.create_subprocess_exec(
        *cli, "scan", "127.0.0.1", "-p", str(tls_chat.port), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, env=dict(cli_env, COLUMNS="200"))
    out, _ = await proc.communicate()
    text = out.decode()
    assert "TLS on" in text and tls_chat.tls.fingerprint in text  # type: ignore[union-attr]
    assert f"richchat join 127.0.0.1:{tls_chat.port} --tls" in text
