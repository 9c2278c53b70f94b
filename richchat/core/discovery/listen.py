"""Client side of the UDP discovery: listen for beacons and send active queries.

Two sockets: one bound to 0.0.0.0:beacon_port (shared with any server on this host through
SO_REUSEPORT) hears the periodic beacons; one on an ephemeral port sends the queries and gets
the unicast replies, so that no server on this host can steal them.
"""

from __future__ import annotations

import asyncio
import contextlib
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
    Cluster,
    Query,
    decode_datagram,
    encode_datagram,
)

log = logging.getLogger(__name__)

#: When the active query is (re)sent, in seconds from the start: UDP may drop one. Once it is
#: answered, the remaining retries are not sent.
QUERY_SCHEDULE = (0.0, 0.25, 1.0)
#: Once the query is answered, listening ends this long after the last new server (a LAN
#: answers a broadcast within milliseconds: 0.04 s measured; slower servers get 0.3 s more).
ANSWER_GRACE = 0.3
#: Nobody answered: listening ends this long after the last retry.
UNANSWERED_WAIT = 0.3


class ServerTable:
    """Advertised servers merged by identity (server id, else address:port)."""

    def __init__(self, started: float, on_new: Callable[[AdvertisedServer], None] | None = None):
        self.started = started
        self.on_new = on_new
        self.servers: dict[str, AdvertisedServer] = {}
        #: time.monotonic() of the last new server, and whether a query reply came
        self.last_new: float | None = None
        self.answered = False
        self._changed: asyncio.Event | None = None

    async def wait_change(self, timeout: float) -> None:
        """Return when a new server is added, or after ``timeout`` seconds."""
        if self._changed is None:
            self._changed = asyncio.Event()
        self._changed.clear()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._changed.wait(), max(0.0, timeout))

    def add(
        self, *, via: FoundVia, address: str, port: int, name: str, server_id: str | None,
        users: int | None, tls: bool, version: int | None, fingerprint: str | None = None,
        cluster: Cluster | None = None,
    ) -> AdvertisedServer:
        if via == "query":
            self.answered = True
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
                fingerprint=fingerprint, version=version, found_via=[via],
                cluster=cluster.name if cluster else None,
                cluster_id=cluster.id if cluster else None,
                found_after=round(time.monotonic() - self.started, 4),
            )
            self.servers[key] = server
            self.last_new = time.monotonic()
            if self._changed is not None:
                self._changed.set()
            if self.on_new is not None:
                self.on_new(server)
            return server
        if via not in server.found_via:
            server.found_via.append(via)
        if users is not None and (via != "mdns" or server.users is None):
            server.users = users  # UDP carries the live count; mDNS TXT may lag
        if server.server_id is None and server_id is not None:
            server.server_id = server_id
        if server.cluster_id is None and cluster is not None:
            server.cluster, server.cluster_id = cluster.name, cluster.id
        if version is not None and server.version is None:
            server.version = version
        if tls and not server.tls:
            server.tls = True
        if fingerprint is not None and server.fingerprint is None:
            server.fingerprint = fingerprint
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
            fingerprint=message.fp,
            cluster=message.cluster,
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


def done_at(table: ServerTable, queries_over: float | None) -> float | None:
    """When listening may end (time.monotonic()), as far as known now, or None (not yet).

    Answered: ``ANSWER_GRACE`` after the last new server. Unanswered: ``UNANSWERED_WAIT``
    after the last retry (``queries_over``: when it went out; None while retries are due).
    """
    if table.answered and table.last_new is not None:
        return table.last_new + ANSWER_GRACE
    if queries_over is not None:
        last = max(queries_over, table.last_new or 0.0)
        return last + (ANSWER_GRACE if table.last_new is not None else UNANSWERED_WAIT)
    return None


async def listen_udp(
    table: ServerTable, *, beacon_port: int, broadcast: list[str], deadline: float,
    accept: Callable[[str], bool], linger: bool = False,
) -> list[Notice]:
    """Hear beacons and query replies; send the query (and its retries while unanswered).

    Ends as soon as the work is done (see :func:`done_at`), or at ``deadline``
    (time.monotonic()) at the latest; with ``linger``, only at ``deadline`` (late beacons).
    Without a broadcast address to query, only beacons can tell: it listens until ``deadline``.
    """
    linger = linger or not broadcast
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
        due = [start + offset for offset in QUERY_SCHEDULE]
        queries_over: float | None = None
        while True:
            now = time.monotonic()
            if now >= deadline:
                break
            if due and (table.answered or not broadcast):
                due = []  # answered (or nowhere to ask): no more retries
                queries_over = now
            if due and now >= due[0]:
                due.pop(0)
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
                if not due:
                    queries_over = now
                continue
            wake = [deadline]
            if due:
                wake.append(due[0])
            end = None if linger else done_at(table, queries_over)
            if end is not None:
                if now >= end:
                    break
                wake.append(end)
            await table.wait_change(min(wake) - now)
    finally:
        for transport in transports:
            transport.close()
    return notices
