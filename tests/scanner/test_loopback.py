"""scan() against real listeners on loopback: states, service identification, joinability."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from richchat.core.scanner import ScanProgress, ScanReport, scan
from richchat.core.server import ChatServer

pytestmark = pytest.mark.timeout(60)


async def test_open_and_closed(silent_port: int, closed_port: int) -> None:
    report = await scan("127.0.0.1", [silent_port, closed_port])
    assert [p.port for p in report.open] == [silent_port]
    assert report.state_of(silent_port) == "open"
    assert report.state_of(closed_port) == "closed"
    assert report.closed == 1
    assert report.filtered == []
    assert report.ports_scanned == 2
    assert report.method == "connect"
    assert report.family == "ipv4"
    silent = report.port(silent_port)
    assert silent is not None and not silent.joinable and silent.service is None


async def test_richchat_server_is_joinable_with_name_and_users(
    chat_server: ChatServer, silent_port: int, closed_port: int
) -> None:
    report = await scan("127.0.0.1", [chat_server.port, silent_port, closed_port])
    assert {p.port for p in report.open} == {chat_server.port, silent_port}
    chat = report.port(chat_server.port)
    assert chat is not None
    assert chat.joinable and chat.service == "richchat"
    assert chat.richchat is not None
    assert chat.richchat.server_name == "scan-lab"
    assert chat.richchat.users is not None and chat.richchat.users >= 1
    assert chat.richchat.agent.startswith("richchat-server/")
    assert chat.richchat.tls is False
    assert [p.port for p in report.joinable] == [chat_server.port]
    # a silent non-chat service is not joinable
    silent = report.port(silent_port)
    assert silent is not None and not silent.joinable


async def test_probe_leaves_the_server_clean(chat_server: ChatServer) -> None:
    """The probe says CMD_QUIT and closes: the registered user count is unchanged."""
    first = await scan("127.0.0.1", [chat_server.port])
    second = await scan("127.0.0.1", [chat_server.port])
    users = [r.open[0].richchat.users for r in (first, second) if r.open[0].richchat]
    assert users == [1, 1]


async def test_http_server_identified(http_port: int) -> None:
    report = await scan("127.0.0.1", str(http_port))
    result = report.port(http_port)
    assert result is not None
    assert result.service == "http"
    assert result.http is not None
    assert result.http.status == 200
    assert result.http.server is not None and "SimpleHTTP" in result.http.server
    assert result.http.title == "Scanner & test page"
    assert not result.joinable


async def test_ssh_banner_identified(ssh_port: int) -> None:
    report = await scan("127.0.0.1", [ssh_port])
    result = report.port(ssh_port)
    assert result is not None
    assert result.service == "ssh"
    assert result.banner == "SSH-2.0-OpenSSH_9.2p1 richchat-test"
    assert not result.joinable


async def test_no_probe_still_verifies_and_reports_ports(silent_port: int) -> None:
    report = await scan("127.0.0.1", [silent_port], probe=False)
    assert [p.port for p in report.open] == [silent_port]
    assert report.open[0].service is None


async def test_hostname_resolves(silent_port: int) -> None:
    report = await scan("localhost", [silent_port])
    assert report.host == "localhost"
    assert report.address in ("127.0.0.1", "::1")


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback")
async def test_ipv6(ssh_port: int) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"SSH-2.0-v6only\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "::1", 0)
    port = server.sockets[0].getsockname()[1]
    closed = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    closed.bind(("::1", 0))
    try:
        report = await scan("::1", [port, closed.getsockname()[1]])
    finally:
        closed.close()
        server.close()
        await server.wait_closed()
    assert report.family == "ipv6"
    assert [p.port for p in report.open] == [port]
    assert report.open[0].service == "ssh"
    assert report.closed == 1


async def test_progress_callback_sees_every_port(silent_port: int) -> None:
    seen: list[ScanProgress] = []
    # only ports this test owns: bound (refusing) sockets, plus the silent listener
    holders = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(60)]
    try:
        for h in holders:
            h.bind(("127.0.0.1", 0))
        ports = [silent_port, *(h.getsockname()[1] for h in holders)]
        await scan("127.0.0.1", ports, progress_callback=seen.append)
    finally:
        for h in holders:
            h.close()
    sweep = [p for p in seen if p.phase == "sweep"]
    assert sweep, "no progress reported"
    assert sweep[-1].done == sweep[-1].total == 61
    assert sweep[-1].open >= 1


async def test_stop_event_returns_partial_report(silent_port: int) -> None:
    stop = asyncio.Event()
    stop.set()  # stopped before it starts: nothing scanned, but a report all the same
    report = await scan("127.0.0.1", [silent_port], stop_event=stop)
    assert report.interrupted


def test_cli_json_matches_the_model(
    cli: list[str], cli_env: dict[str, str], ssh_port_thread: int, closed_port: int
) -> None:
    proc = subprocess.run(
        [*cli, "scan", "127.0.0.1", "-p", f"{ssh_port_thread},{closed_port}", "--json"],
        capture_output=True, text=True, env=cli_env, timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""  # no progress bar: stderr is not a terminal
    report = ScanReport.model_validate_json(proc.stdout)
    assert [p.port for p in report.open] == [ssh_port_thread]
    assert report.open[0].service == "ssh"
    assert report.state_of(closed_port) == "closed"
    raw = json.loads(proc.stdout)
    assert set(raw) >= {"host", "address", "method", "open", "closed", "filtered"}


def test_cli_table(
    cli: list[str], cli_env: dict[str, str], ssh_port_thread: int, closed_port: int
) -> None:
    proc = subprocess.run(
        [*cli, "scan", "127.0.0.1", "-p", f"{ssh_port_thread},{closed_port}"],
        capture_output=True, text=True, env={**cli_env, "COLUMNS": "120"}, timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert f"{ssh_port_thread}/tcp" in proc.stdout
    assert "SSH-2.0-OpenSSH_9.2p1 richchat-test" in proc.stdout
    assert "1 open, 1 closed, 0 filtered" in proc.stdout


@pytest.mark.netns  # root: raw sockets
async def test_syn_scan_on_loopback(ssh_port: int, silent_port: int, closed_port: int) -> None:
    report = await scan("127.0.0.1", [ssh_port, silent_port, closed_port], syn=True)
    assert report.method == "syn"
    assert [p.port for p in report.open] == sorted([ssh_port, silent_port])
    assert report.port(ssh_port).service == "ssh"  # type: ignore[union-attr]
    assert report.state_of(closed_port) == "closed"


@pytest.mark.netns
@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback")
async def test_syn_scan_ipv6() -> None:
    server = await asyncio.start_server(lambda r, w: w.close(), "::1", 0)
    port = server.sockets[0].getsockname()[1]
    closed = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    closed.bind(("::1", 0))
    try:
        report = await scan("::1", [port, closed.getsockname()[1]], syn=True, probe=False)
    finally:
        closed.close()
        server.close()
        await server.wait_closed()
    assert report.family == "ipv6"
    assert [p.port for p in report.open] == [port]
    assert report.closed == 1


async def test_https_server_identified(https_port: int) -> None:
    report = await scan("127.0.0.1", [https_port])
    result = report.port(https_port)
    assert result is not None
    assert result.service == "https"
    assert result.http is not None and result.http.scheme == "https"
    assert result.http.status == 200
    assert result.http.title == "Secure page"


async def test_late_banner_still_names_the_service() -> None:
    """A greeter slower than the banner wait gets our one HELLO line and is still named.

    (This one greets only once the probe has spoken: a banner that comes after HELLO.)
    """
    from richchat.core.scanner.probes import HELLO_LINE

    received: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            first = await asyncio.wait_for(reader.readline(), 5)
            if first:
                received.append(first)
                writer.write(b"SSH-2.0-OpenSSH_9.2p1 slow-greeter\r\n")
                await writer.drain()
                received.append(await asyncio.wait_for(reader.read(1024), 5))
        except (ConnectionError, asyncio.TimeoutError):
            pass
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        report = await scan("127.0.0.1", [port])
    finally:
        server.close()
        await server.wait_closed()
    result = report.port(port)
    assert result is not None
    assert result.service == "ssh"
    assert result.banner == "SSH-2.0-OpenSSH_9.2p1 slow-greeter"
    assert not result.joinable
    # one line from the probe, then nothing but the close (the sweep's connect said nothing)
    assert received == [HELLO_LINE, b""]


def _queued_bytes(port: int) -> int:
    """Bytes waiting unread on established IPv4 connections to local ``port``."""
    total = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, state, queues = fields[1], fields[3], fields[4]
        if state == "01" and int(local.split(":")[1], 16) == port:
            total += int(queues.split(":")[1], 16)
    return total


@pytest.fixture
def chat_server_process(
    cli: list[str], cli_env: dict[str, str], tmp_path: Path
) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """A real ``richchat server`` process on loopback (so the test can stop and resume it)."""
    proc = subprocess.Popen(
        [*cli, "server", "--host", "127.0.0.1", "--port", "0", "--no-beacon", "--no-mdns",
         "--data-dir", str(tmp_path / "chat"), "--name", "stopped-lab"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=cli_env,
    )
    try:
        assert proc.stdout is not None
        match = re.search(r"listening on (\S+):(\d+)", proc.stdout.readline())
        assert match, "the server did not start"
        yield proc, int(match.group(2))
    finally:
        proc.send_signal(signal.SIGCONT)
        proc.terminate()
        proc.wait(10)


async def test_busy_machine_gets_the_second_wait(
    chat_server_process: tuple[subprocess.Popen[str], int], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """As on a loaded machine, the server and the scanner are both late: the server (stopped)
    has not read HELLO, and the scanner gets no CPU past the end of its first wait. Its late timer
    buys a second wait, in which the resumed server's answer arrives.

    The scanner is starved until its first wait is over (the wait's end is recorded as it
    begins), and the second wait is made generous (30 s instead of 0.5 s), so that the resumed
    server's answer is in time however busy the machine running the test is."""
    import time

    from richchat.core.scanner import probes

    server, port = chat_server_process
    monkeypatch.setattr(probes, "REPLY_RETRY_WAIT", 30.0)
    monkeypatch.setattr(probes, "REPLY_WAIT_MAX", 30.0)
    loop = asyncio.get_running_loop()
    first_wait_ends: list[float] = []
    read_first_line = probes._read_first_line

    async def recording(reader: asyncio.StreamReader, wait: float,
                        waits: probes._Waits | None = None, data: bytes = b"") -> tuple[bytes, bool]:
        if waits is not None and not first_wait_ends:  # the first wait for HELLO's answer
            first_wait_ends.append(loop.time() + wait)
        return await read_first_line(reader, wait, waits, data)

    monkeypatch.setattr(probes, "_read_first_line", recording)
    server.send_signal(signal.SIGSTOP)

    async def starve_then_resume() -> None:
        while not first_wait_ends or _queued_bytes(port) == 0:  # HELLO is at the stopped server
            await asyncio.sleep(0.002)
        # the scanner gets no CPU until well past the end of its first wait...
        time.sleep(max(0.0, first_wait_ends[0] - loop.time()) + 2 * probes.LATE_TIMER)
        loop.call_soon(server.send_signal, signal.SIGCONT)  # ...then both run again

    starver = asyncio.ensure_future(starve_then_resume())
    try:
        report = await scan("127.0.0.1", [port])
    finally:
        starver.cancel()
        server.send_signal(signal.SIGCONT)
    assert first_wait_ends, "the probe never waited for an answer to HELLO"
    chat = report.port(port)
    assert chat is not None and chat.joinable
    assert chat.richchat is not None and chat.richchat.server_name == "stopped-lab"


def test_probe_waits_follow_the_handshake_time() -> None:
    from richchat.core.scanner import probes

    lan = probes._Waits(0.0002)  # a LAN round trip: the floors
    assert lan.banner == probes.BANNER_WAIT_MIN
    assert lan.reply == probes.REPLY_WAIT_MIN
    assert lan.second_wait(7777) == 0  # a quiet machine: no second wait
    # richchat's default port: the long wait in all
    assert lan.reply + lan.second_wait(5050) == probes.REPLY_WAIT_MAX
    lan.lateness = probes.LATE_TIMER  # a timer fired late: this machine is busy
    assert lan.second_wait(7777) == probes.REPLY_RETRY_WAIT
    far = probes._Waits(0.02)  # a distant (or busy) host: waits scale with the round trip
    assert lan.banner < far.banner <= probes.BANNER_WAIT_MAX
    assert lan.reply < far.reply <= far.retry <= probes.REPLY_WAIT_MAX
    slow = probes._Waits(5.0)
    assert slow.banner == probes.BANNER_WAIT_MAX and slow.retry == probes.REPLY_WAIT_MAX
