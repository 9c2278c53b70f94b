"""Client side of the UDP discovery: listen for beacons and send active queries.

Two sockets: one bound to 0.0.0.0:beacon_port (shared with any server on this host through
SO_REUSEPORT) hears the periodic beacons; one on an ephemeral port sends the queries and gets
the unicast replies, so that no server on this host can steal them.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import secrets
import time
from collections.abc import Callable
from typing import Any, cast

from richchat.core.discovery.models import AdvertisedServer, FoundVia, Notice
from richchat.core.protocol.beacon import (
    Announce,
    BeaconDecodeError,
    Query,
    decode_datagram,
    encode_datagram,
)

log = logging.getLogger(__name__)

#: When the active query is (re)sent, in seconds from the start: UDP may drop one.
QUERY_SCHEDULE = (0.0, 0.25, 1.0)


class ServerTable:
    """Advertised servers merged by identity (server id, else address:port)."""

    def __init__(self, started: float, on_new: Callable[[AdvertisedServer], None] | None = None):
        self.started = started
        self.on_new = on_new
        self.servers: dict[str, AdvertisedServer] = {}

    def add(
        self, *, via: FoundVia, address: str, port: int, name: str, server_id: str | None,
        users: int | None, tls: bool, version: int | None,
    ) -> AdvertisedServer:
        key = server_id or f"{address}:{port}"
        if key not in self.servers:
            # An mDNS record may lack the id: merge sightings of the same endpoint when at
            # most one of them carries an id, and keep the id as the key.
            for existing_key, existing in list(self.servers.items()):
                if (existing.address, existing.port) == (address, port) and (
                    server_id is None or existing.server_id is None
                ):
                    if server_id is not None:
                        del self.servers[existing_key]
                        self.servers[key] = existing
                    else:
                        key = existing_key
                    break
        server = self.servers.get(key)
        if server is None:
            server = AdvertisedServer(
                server_id=server_id, name=name, address=address, port=port, users=users, tls=tls,
                version=version, found_via=[via],
                found_after=round(time.monotonic() - self.started, 4),
            )
            self.servers[key] = server
            if self.on_new is not None:
                self.on_new(server)
            return server
        if via not in server.found_via:
            server.found_via.append(via)
        if users is not None and (via != "mdns" or server.users is None):
            server.users = users  # UDP carries the live count; mDNS TXT may lag
        if server.server_id is None and server_id is not None:
            server.server_id = server_id
        if version is not None and server.version is None:
            server.version = version
        return server

    def result(self) -> list[AdvertisedServer]:
        return sorted(self.servers.values(), key=lambda s: (s.name.casefold(), s.address, s.port))


class _Listener(asyncio.DatagramProtocol):
    def __init__(self, table: ServerTable, nonce: str, accept: Callable[[str], bool]) -> None:
        self.table = table
        self.nonce = nonce
        self.accept = accept
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        try:
            message = decode_datagram(data)
        except BeaconDecodeError as exc:
            log.debug("malformed discovery datagram from %s: %s", addr, exc)
            return
        if not isinstance(message, Announce) or not self.accept(str(addr[0])):
            return
        via: FoundVia = "query" if message.reason == "reply" else "beacon"
        self.table.add(
            via=via, address=str(addr[0]), port=message.port, name=message.name,
            server_id=message.id, users=message.users, tls=message.tls, version=message.v,
        )

    def error_received(self, exc: Exception) -> None:
        log.debug("discovery socket error: %s", exc)


def source_filter(networks: list[ipaddress.IPv4Network] | None) -> Callable[[str], bool]:
    """Accept every source, or only sources inside ``networks`` (``--interface``)."""
    if not networks:
        return lambda _addr: True

    def accept(addr: str) -> bool:
        try:
            ip = ipaddress.IPv4Address(addr)
        except ValueError:
            return False
        return any(ip in net for net in networks)

    return accept


async def listen_udp(
    table: ServerTable, *, beacon_port: int, broadcast: list[str], deadline: float,
    accept: Callable[[str], bool],
) -> list[Notice]:
    """Hear beacons and query replies until ``deadline`` (time.monotonic())."""
    from richchat.core.discovery.udp import udp_socket

    loop = asyncio.get_running_loop()
    notices: list[Notice] = []
    nonce = secrets.token_hex(6)
    transports: list[asyncio.BaseTransport] = []
    try:
        try:
            passive = udp_socket(beacon_port)
        except OSError as exc:
            notices.append(Notice(
                source="advertised",
                message=f"cannot listen for beacons on UDP {beacon_port}: {exc.strerror}; "
                "relying on the active query",
                hint="another program holds the port without SO_REUSEPORT",
            ))
        else:
            passive_transport, _ = await loop.create_datagram_endpoint(
                lambda: _Listener(table, nonce, accept), sock=passive
            )
            transports.append(passive_transport)
        active = udp_socket(0, reuse=False)
        query_transport, _ = await loop.create_datagram_endpoint(
            lambda: _Listener(table, nonce, accept), sock=active
        )
        transports.append(query_transport)
        data = encode_datagram(Query(nonce=nonce))
        start = time.monotonic()
        failed: set[str] = set()
        for offset in QUERY_SCHEDULE:
            wait = start + offset - time.monotonic()
            if start + offset >= deadline:
                break
            if wait > 0:
                await asyncio.sleep(wait)
            for addr in broadcast:
                try:
                    query_transport.sendto(data, (addr, beacon_port))
                except OSError as exc:
                    if addr not in failed:
                        failed.add(addr)
                        notices.append(Notice(
                            source="advertised",
                            message=f"cannot send the discovery query to {addr}: {exc}",
                        ))
        remaining = deadline - time.monotonic()
        if remaining > 0:
            await asyncio.sleep(remaining)
    finally:
        for transport in transports:
            transport.close()
    return notices
