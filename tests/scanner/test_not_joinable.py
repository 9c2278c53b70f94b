"""Only a richchat *server* is joinable: an echo service (which returns the probe's own HELLO),
``ncat --chat``, an IRC server (ngircd), an HTTP server and a banner service are all listed
open and none is joinable. Every service is a real listener on loopback; socat, ncat and ngircd
are the real programs (installed by scripts/install-test-deps.sh)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from richchat.core.client import ChatClient
from richchat.core.errors import ProtocolError
from richchat.core.scanner import scan
from richchat.core.server import ChatServer
from tests.client.servers import cli_env

NGIRCD_CONF = """\
[Global]
Name = scan.irc.test
Info = richchat scanner test
Listen = 127.0.0.1
Ports = {port}
MotdPhrase = scanner test
PidFile = {tmp}/ngircd.pid
ServerUID = {uid}
ServerGID = {gid}
[Options]
DNS = no
Ident = no
PAM = no
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_listening(port: int, proc: subprocess.Popen[bytes]) -> None:
    """Until ``port`` accepts a connection (bounded); fail if the program died."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{proc.args!r} exited with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.02)
    raise AssertionError(f"{proc.args!r} not listening on {port} within 10 s")


def _program(argv: list[str], port: int, cwd: Path) -> Iterator[int]:
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=cwd)
    try:
        _wait_listening(port, proc)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def _need(program: str) -> str:
    path = shutil.which(program) or (f"/usr/sbin/{program}" if os.path.exists(
        f"/usr/sbin/{program}") else None)
    if path is None:
        pytest.skip(f"needs {program} (scripts/install-test-deps.sh installs it)")
    return path


@pytest.fixture
async def python_echo() -> AsyncIterator[int]:
    """A small echo service: sends back every byte it receives."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(4096):
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()


@pytest.fixture
def socat_echo(tmp_path: Path) -> Iterator[int]:
    """``socat TCP-LISTEN:P,fork EXEC:cat``: the echo service of the issue."""
    exe = _need("socat")
    port = _free_port()
    argv = [exe, f"TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork", "EXEC:cat"]
    yield from _program(argv, port, tmp_path)


@pytest.fixture
def ncat_chat(tmp_path: Path) -> Iterator[int]:
    exe = _need("ncat")
    port = _free_port()
    yield from _program([exe, "--chat", "--keep-open", "-l", "127.0.0.1", str(port)], port,
                        tmp_path)


@pytest.fixture
def ngircd(tmp_path: Path) -> Iterator[int]:
    exe = _need("ngircd")
    port = _free_port()
    conf = tmp_path / "ngircd.conf"
    conf.write_text(NGIRCD_CONF.format(port=port, tmp=tmp_path, uid=os.getuid(), gid=os.getgid()))
    yield from _program([exe, "-n", "-f", str(conf)], port, tmp_path)


@pytest.fixture
def others(
    python_echo: int, socat_echo: int, ncat_chat: int, ngircd: int, http_port: int, ssh_port: int
) -> dict[str, int]:
    return {
        "python echo": python_echo,
        "socat echo": socat_echo,
        "ncat --chat": ncat_chat,
        "ngircd": ngircd,
        "http": http_port,
        "banner": ssh_port,
    }


async def test_probe_marks_only_the_richchat_server_joinable(
    others: dict[str, int], chat_server: ChatServer
) -> None:
    ports = [*others.values(), chat_server.port]
    report = await scan("127.0.0.1", ports, timeout=2.0)
    found = {p.port: p for p in report.open}
    for what, port in others.items():
        assert port in found, f"{what} on {port} not listed open"
        assert not found[port].joinable, f"{what} on {port} called joinable: {found[port]}"
        assert found[port].service != "richchat", what
    assert found[others["python echo"]].service == "echo"
    assert found[others["socat echo"]].service == "echo"
    # ngircd ignores an unregistered client's unknown command: a silent port, not a server
    assert found[others["http"]].service == "http"
    assert found[others["banner"]].service == "ssh"
    assert [p.port for p in report.joinable] == [chat_server.port]


async def test_scan_command_says_join_it_only_for_the_server(
    others: dict[str, int], chat_server: ChatServer
) -> None:
    ports = ",".join(str(p) for p in [*others.values(), chat_server.port])
    for extra in (["--json"], []):
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "richchat", "scan", "127.0.0.1", "-p", ports, "--timeout", "10",
            *extra, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=cli_env(),
        )
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 0, err.decode()
        text = out.decode()
        if extra:
            report = json.loads(text)
            assert {p["port"] for p in report["open"]} == {*others.values(), chat_server.port}
            assert [p["port"] for p in report["open"] if p["joinable"]] == [chat_server.port]
        else:
            assert text.count("join it: richchat join") == 1, text
            assert f"richchat join 127.0.0.1:{chat_server.port}" in text
            assert "1 joinable richchat server(s)" in text, text
            assert "joinable 'scan-lab'" in text and text.count("joinable '") == 1, text


async def test_client_refuses_an_echo_service(python_echo: int, socat_echo: int) -> None:
    for port in (python_echo, socat_echo):
        client = ChatClient("127.0.0.1", port, timeout=5)
        with pytest.raises(ProtocolError, match="not a richchat server"):
            await client.connect()
        assert not client.connected


async def test_send_to_an_echo_service_is_not_a_richchat_server(socat_echo: int) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "richchat", "send", f"127.0.0.1:{socat_echo}", "--nick", "bot",
        "--timeout", "5", "hello", stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=cli_env(),
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 7, (out, err)  # ExitStatus.PROTOCOL
    lines = err.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "echo" in lines[0], lines
