"""The real ChatServer advertises itself: discover() finds it on loopback with a live count."""

from __future__ import annotations

import asyncio
from pathlib import Path

from richchat.core.discovery import DiscoveryOptions, discover
from richchat.core.server import ChatServer, ServerConfig
from tests.discovery.conftest import WINDOW

LOOP = "127.255.255.255"


async def test_discover_finds_the_real_server_with_its_user_count(
    tmp_path: Path, beacon_port: int
) -> None:
    server = ChatServer(ServerConfig(
        host="127.0.0.1", port=0, data_dir=tmp_path, name="inproc", beacon=True,
        beacon_port=beacon_port, beacon_addrs=(LOOP,), beacon_interval=3600, mdns=False,
    ))
    await server.start()
    writer = None
    try:
        options = DiscoveryOptions(timeout=WINDOW, arp=False, mdns=False, interface="lo",
                                   broadcast=[LOOP], beacon_port=beacon_port)
        report = await discover(options)
        [found] = report.servers
        assert (found.name, found.address, found.port, found.users) == (
            "inproc", "127.0.0.1", server.port, 0)
        assert found.server_id == server.server_id

        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"HELLO|1|test/1\nCMD_USER|alice\n")
        await writer.drain()
        while b"YOU|alice" not in await asyncio.wait_for(reader.readline(), 5):
            pass
        report = await discover(options)
        assert [s.users for s in report.servers] == [1]
    finally:
        if writer is not None:
            writer.close()
        await server.stop()


async def test_a_tls_server_advertises_tls_and_its_fingerprint(
    tmp_path: Path, beacon_port: int
) -> None:
    """Beacon and query answer carry tls and fp; discover's table shows them as a hint."""
    import io

    from rich.console import Console

    from richchat.core.discovery.render import advertised_table

    server = ChatServer(ServerConfig(
        host="127.0.0.1", port=0, data_dir=tmp_path, name="secure", beacon=True, tls=True,
        beacon_port=beacon_port, beacon_addrs=(LOOP,), beacon_interval=3600, mdns=False,
    ))
    await server.start()
    try:
        options = DiscoveryOptions(timeout=1.0, arp=False, mdns=False, interface="lo",
                                   broadcast=[LOOP], beacon_port=beacon_port)
        report = await discover(options)
        [found] = report.servers
        assert found.tls and found.fingerprint == server.tls.fingerprint  # type: ignore[union-attr]
        out = io.StringIO()
        Console(file=out, width=200, color_system=None).print(advertised_table(report))
        text = out.getvalue()
        assert found.fingerprint in text and "hint" in text
    finally:
        await server.stop()
