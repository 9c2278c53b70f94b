"""Server side of discovery: the UDP beacon, answers to active queries, and DNS-SD.

The chat server owns one :class:`Advertiser`. ``start()`` binds the query listener
(0.0.0.0:beacon_port, shared through SO_REUSEADDR/SO_REUSEPORT), sends a first beacon at once
and then one every ``interval`` seconds to each beacon address, and registers
``<name>._richchat._tcp.local.`` through zeroconf. ``stop()`` undoes all of it and may be
called any number of times. See docs/discovery.md for the datagram format.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import re
import secrets
import socket
from collections.abc import Callable
from typing import Any

from richchat.core.constants import DEFAULT_BEACON_PORT
from richchat.core.errors import AddressInUseError
from richchat.core.protocol.beacon import (
    Announce,
    BeaconDecodeError,
    Query,
    ServerInfo,
    decode_datagram,
    encode_datagram,
)

__all__ = ["MDNS_SERVICE_TYPE", "Advertiser", "BeaconPortInUse", "ServerInfo", "new_server_id"]

log = logging.getLogger(__name__)

MDNS_SERVICE_TYPE = "_richchat._tcp.local."
_WILDCARDS = {"", "0.0.0.0", "::", "*"}


class BeaconPortInUse(AddressInUseError, OSError):
    """The beacon/query UDP port is held by a socket without SO_REUSEPORT.

    An AddressInUseError (one line + exit status for the CLI) that is also an OSError, so a
    server that treats discovery as optional (``except OSError``) keeps running without it.
    """


def new_server_id() -> str:
    """A random server id (the server should persist it in its data dir)."""
    return secrets.token_hex(8)


def _is_wildcard(host: str) -> bool:
    return host in _WILDCARDS


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def default_beacon_addrs(bind_host: str) -> list[str]:
    """Where beacons go when not configured.

    A server bound to loopback beacons on 127.255.255.255; one bound to a specific address
    beacons on that address's subnet broadcast; one bound to every address beacons on the
    subnet broadcast of every local IPv4 interface. Never 255.255.255.255.
    """
    if _is_loopback(bind_host):
        return ["127.255.255.255"]
    from richchat.core.discovery.interfaces import broadcast_addresses, list_interfaces

    interfaces = list_interfaces()
    if not _is_wildcard(bind_host):
        interfaces = [
            i for i in interfaces if any(a.address == bind_host for a in i.addresses)
        ]
    return broadcast_addresses(interfaces)


class _QueryProtocol(asyncio.DatagramProtocol):
    def __init__(self, owner: Advertiser) -> None:
        self.owner = owner

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        try:
            message = decode_datagram(data)
        except BeaconDecodeError as exc:
            log.debug("ignoring malformed discovery datagram from %s: %s", addr, exc)
            return
        if isinstance(message, Query):
            self.owner._answer(message, (str(addr[0]), int(addr[1])))

    def error_received(self, exc: Exception) -> None:
        log.debug("discovery socket error: %s", exc)


class Advertiser:
    """Advertise one chat server by UDP beacon, query replies and DNS-SD."""

    def __init__(
        self,
        get_info: Callable[[], ServerInfo],
        *,
        bind_host: str,
        beacon: bool = True,
        beacon_port: int = DEFAULT_BEACON_PORT,
        beacon_addrs: list[str] | None = None,
        interval: float = 5.0,
        mdns: bool = True,
        mdns_addrs: list[str] | None = None,
    ) -> None:
        if interval <= 0:
            raise ValueError("beacon interval must be positive")
        self.get_info = get_info
        self.bind_host = bind_host
        self.beacon = beacon
        self.beacon_port = beacon_port
        self.beacon_addrs = beacon_addrs
        self.interval = interval
        self.mdns = mdns
        self.mdns_addrs = mdns_addrs
        self.beacons_sent = 0
        self.queries_answered = 0
        self._transport: asyncio.DatagramTransport | None = None
        self._task: asyncio.Task[None] | None = None
        self._mdns_task: asyncio.Task[None] | None = None
        self._zc: Any = None
        self._service: Any = None
        self._mdns_txt: dict[str, str] | None = None
        self._targets: list[str] = []
        self._started = False

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Bind the query listener, send a first beacon now, start the periodic beacon and mDNS."""
        if self._started:
            return
        self._started = True
        loop = asyncio.get_running_loop()
        if self.beacon:
            from richchat.core.discovery.udp import udp_socket

            try:
                sock = udp_socket(self.beacon_port)
            except OSError as exc:
                self._started = False
                raise BeaconPortInUse(
                    f"cannot bind the discovery port UDP {self.beacon_port}: {exc.strerror}",
                    hint="choose another --beacon-port or disable it with --no-beacon",
                ) from None
            transport, _ = await loop.create_datagram_endpoint(
                lambda: _QueryProtocol(self), sock=sock
            )
            self._transport = transport
            self._targets = (
                list(self.beacon_addrs)
                if self.beacon_addrs is not None
                else default_beacon_addrs(self.bind_host)
            )
            self.send_beacon()
        self._task = asyncio.create_task(self._tick(), name="richchat-beacon")
        if self.mdns:
            self._mdns_task = asyncio.create_task(self._register_mdns(), name="richchat-mdns")

    async def stop(self) -> None:
        """Stop beacons and the listener and unregister mDNS. Safe to call repeatedly."""
        if not self._started:
            return
        self._started = False
        for task in (self._task, self._mdns_task):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        self._task = self._mdns_task = None
        if self._transport is not None:
            self._transport.close()
            self._transport = None
        await self._unregister_mdns()

    # ------------------------------------------------------------------ UDP

    def send_beacon(self) -> None:
        """Send one beacon to every beacon address now."""
        if self._transport is None:
            return
        data = encode_datagram(Announce.from_info(self.get_info(), reason="beacon"))
        for addr in self._targets:
            try:
                self._transport.sendto(data, (addr, self.beacon_port))
                self.beacons_sent += 1
            except OSError as exc:  # an interface went away, unreachable network...
                log.debug("beacon to %s failed: %s", addr, exc)

    def _answer(self, query: Query, addr: tuple[str, int]) -> None:
        if self._transport is None:
            return
        reply = Announce.from_info(self.get_info(), reason="reply", nonce=query.nonce)
        try:
            self._transport.sendto(encode_datagram(reply), addr)
            self.queries_answered += 1
        except OSError as exc:
            log.debug("query reply to %s failed: %s", addr, exc)

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            if self.beacon:
                self.send_beacon()
            if self._service is not None:
                await self._update_mdns()

    # ------------------------------------------------------------------ mDNS / DNS-SD

    def _txt(self, info: ServerInfo) -> dict[str, str]:
        txt = {
            "v": str(info.version),
            "name": info.name,
            "tls": "1" if info.tls else "0",
            "id": info.server_id,
            "users": str(info.users),
        }
        if info.fingerprint is not None:
            txt["fp"] = info.fingerprint
        if info.cluster is not None:
            txt["cluster"] = info.cluster.name
            txt["cluster_id"] = info.cluster.id
        return txt

    def _mdns_addresses(self) -> list[str]:
        if not _is_wildcard(self.bind_host) and self.bind_host != "localhost":
            return [self.bind_host]
        if self.mdns_addrs:
            return list(self.mdns_addrs)
        from richchat.core.discovery.interfaces import list_interfaces

        return [
            a.address
            for i in list_interfaces()
            if not i.loopback
            for a in i.addresses
            if a.family == "ipv4"
        ]

    def _mdns_interfaces(self) -> Any:
        from zeroconf import InterfaceChoice

        if self.mdns_addrs:
            return list(self.mdns_addrs)
        if not _is_wildcard(self.bind_host) and self.bind_host != "localhost":
            return [self.bind_host]
        return InterfaceChoice.All

    def _build_service(self, name: str, info: ServerInfo, txt: dict[str, str]) -> Any:
        from zeroconf.asyncio import AsyncServiceInfo

        # One host name per server: two servers on one machine (or in namespaces sharing the
        # machine's host name) must not publish conflicting address records for one name.
        host = (socket.gethostname().split(".")[0] or "richchat")[:40]
        host = re.sub(r"[^A-Za-z0-9-]", "-", f"{host}-{info.server_id[:8]}")
        return AsyncServiceInfo(
            MDNS_SERVICE_TYPE,
            name,
            port=info.port,
            properties=txt,
            server=f"{host}.local.",
            parsed_addresses=self._mdns_addresses(),
        )

    async def _register_mdns(self) -> None:
        try:
            from zeroconf import IPVersion
            from zeroconf.asyncio import AsyncZeroconf

            info = self.get_info()
            instance = info.name.replace(".", "-").encode("utf-8")[:63].decode("utf-8", "ignore")
            txt = self._txt(info)
            service = self._build_service(f"{instance}.{MDNS_SERVICE_TYPE}", info, txt)
            self._zc = AsyncZeroconf(
                interfaces=self._mdns_interfaces(), ip_version=IPVersion.V4Only
            )
            registered = await self._zc.async_register_service(service, allow_name_change=True)
            await registered  # probing + announcing; raises if the name cannot be had
            self._service = service
            self._mdns_txt = txt
            log.info("DNS-SD: advertised as %s", service.name)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # mDNS is best effort: the server keeps running
            log.warning("mDNS registration failed: %s", exc)

    async def _update_mdns(self) -> None:
        txt = self._txt(self.get_info())
        if txt == self._mdns_txt or self._zc is None or self._service is None:
            return
        info = self.get_info()
        self._service = self._build_service(self._service.name, info, txt)
        try:
            await self._zc.async_update_service(self._service)
            self._mdns_txt = txt
        except Exception as exc:
            log.debug("mDNS update failed: %s", exc)

    async def _unregister_mdns(self) -> None:
        zc, service = self._zc, self._service
        self._zc = self._service = None
        if zc is None:
            return
        try:
            if service is not None:
                done = await asyncio.wait_for(zc.async_unregister_service(service), 3.0)
                await asyncio.wait_for(done, 3.0)
        except Exception as exc:
            log.debug("mDNS unregister failed: %s", exc)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(zc.async_close(), 3.0)
