"""``richchat scan`` as a real process against small fake services on loopback: services named
from their banners, and ``--no-probe``."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from richchat.core.scanner import ScanReport
from richchat.core.scanner.probes import HELLO_LINE
from tests.conditions import wait_until

#: A greeting of each kind the scanner names from its first line (as real daemons greet).
BANNERS = {
    "smtp": b"220 mail.example.com ESMTP Postfix (Debian/GNU)\r\n",
    "ftp": b"220 (vsFTPd 3.0.5)\r\n",
    "pop3": b"+OK Dovecot ready.\r\n",
    "imap": b"* OK [CAPABILITY IMAP4rev1 STARTTLS] Dovecot ready.\r\n",
    "irc": b":irc.example.net NOTICE * :*** Looking up your hostname...\r\n",
    "vnc": b"RFB 003.008\n",
    "ssh": b"SSH-2.0-OpenSSH_9.6 Debian\r\n",
}


class Greeter:
    """A TCP service on 127.0.0.1 that greets with ``banner`` and records what it is sent."""

    def __init__(self, banner: bytes) -> None:
        self.banner = banner
        self.connections = 0
        self.received: list[bytes] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            writer.write(self.banner)
            await writer.drain()
            data = await asyncio.wait_for(reader.read(4096), 10)
            self.received.append(data)
        except (ConnectionError, asyncio.TimeoutError):
            self.received.append(b"")
        finally:
            writer.close()


@asynccontextmanager
async def greeters(banners: dict[str, bytes]) -> AsyncIterator[dict[str, tuple[int, Greeter]]]:
    servers = []
    found: dict[str, tuple[int, Greeter]] = {}
    try:
        for name, banner in banners.items():
            greeter = Greeter(banner)
            server = await asyncio.start_server(greeter.handle, "127.0.0.1", 0)
            servers.append(server)
            found[name] = (server.sockets[0].getsockname()[1], greeter)
        yield found
    finally:
        for server in servers:
            server.close()
            await server.wait_closed()


async def run_scan(cli: list[str], env: dict[str, str], *args: str) -> ScanReport:
    proc = await asyncio.create_subprocess_exec(
        *cli, "scan", "127.0.0.1", *args, "--json", stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, err.decode()
    return ScanReport.model_validate_json(out)


async def test_services_are_named_from_their_banners(cli: list[str], cli_env: dict[str, str]) -> None:
    async with greeters(BANNERS) as services:
        ports = ",".join(str(port) for port, _ in services.values())
        report = await run_scan(cli, cli_env, "-p", ports)
    named = {}
    for name, (port, _) in services.items():
        result = report.port(port)
        assert result is not None and result.state == "open", name
        named[name] = (result.service, result.banner, result.joinable)
    assert named == {
        name: (name, banner.decode().rstrip("\r\n"), False) for name, banner in BANNERS.items()
    }


async def test_no_probe_reports_open_ports_without_a_word(
    cli: list[str], cli_env: dict[str, str]
) -> None:
    async with greeters({"ssh": BANNERS["ssh"], "silent": b""}) as services:
        (ssh, _), (silent, listener) = services["ssh"], services["silent"]
        ports = f"{ssh},{silent}"
        report = await run_scan(cli, cli_env, "-p", ports, "--no-probe")
        await wait_until(lambda: len(listener.received) == listener.connections, "the closes")
        said_without_probes = list(listener.received)
        probed = await run_scan(cli, cli_env, "-p", ports)
        await wait_until(lambda: len(listener.received) == listener.connections, "the closes")
        said_with_probes = listener.received[len(said_without_probes):]
    assert [p.port for p in report.open] == sorted([ssh, silent])
    for result in report.open:
        assert (result.service, result.banner, result.joinable) == (None, None, False)
    assert said_without_probes and set(said_without_probes) == {b""}  # not a byte sent
    # the same ports with probes on: the banner names ssh, the silent one hears our HELLO
    named = probed.port(ssh)
    assert named is not None and named.service == "ssh"
    assert HELLO_LINE in said_with_probes
