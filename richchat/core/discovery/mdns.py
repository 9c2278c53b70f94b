"""DNS-SD browsing of ``_richchat._tcp.local.`` with zeroconf."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from richchat.core.discovery.advertise import MDNS_SERVICE_TYPE
from richchat.core.discovery.listen import ServerTable
from richchat.core.protocol.beacon import Cluster
from richchat.core.protocol.text import is_digits

log = logging.getLogger(__name__)


def _cluster(cluster_id: str | None, name: str | None) -> Cluster | None:
    if not cluster_id or not name:
        return None
    try:
        return Cluster(id=cluster_id, name=name)
    except ValueError:  # a malformed record: the node is still listed, on its own
        return None


def _txt(props: dict[Any, Any], key: str) -> str | None:
    value = props.get(key.encode()) if props else None
    if value is None:
        return None
    return bytes(value).decode("utf-8", "replace")


def _int_or_none(value: str | None) -> int | None:
    return int(value) if value is not None and is_digits(value) else None


#: How long to browse (seconds from the browser's start) unless asked to linger: the first
#: query goes out after 20-120 ms and responders answer within 20-120 ms (RFC 6762 5.2), with
#: the service, host and address records in one answer.
MDNS_WINDOW = 0.8


async def browse_mdns(
    table: ServerTable, *, deadline: float, interfaces: list[str] | None,
    accept: Any = None, window: float | None = None,
) -> None:
    """Browse for ``window`` seconds (default: until ``deadline``), then let the instances
    already seen finish resolving until ``deadline``; each resolved one is added to ``table``.

    ``interfaces``: IPv4 addresses of the interfaces to use (None = all of them).
    """
    from zeroconf import InterfaceChoice, IPVersion, ServiceStateChange
    from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

    aiozc = AsyncZeroconf(
        interfaces=interfaces if interfaces else InterfaceChoice.All,
        ip_version=IPVersion.V4Only,
    )
    pending: set[asyncio.Task[None]] = set()

    async def resolve(name: str) -> None:
        info = AsyncServiceInfo(MDNS_SERVICE_TYPE, name)
        remaining_ms = int((deadline - time.monotonic()) * 1000)
        if remaining_ms <= 50 or not await info.async_request(aiozc.zeroconf, remaining_ms):
            return
        props = info.properties or {}
        addresses = info.parsed_addresses(IPVersion.V4Only)
        if accept is not None:
            addresses = [a for a in addresses if accept(a)]
        if not addresses or info.port is None:
            return
        instance = name[: -len(MDNS_SERVICE_TYPE) - 1] if name.endswith(MDNS_SERVICE_TYPE) else name
        table.add(
            via="mdns", address=addresses[0], port=int(info.port),
            name=_txt(props, "name") or instance, server_id=_txt(props, "id"),
            users=_int_or_none(_txt(props, "users")), tls=_txt(props, "tls") == "1",
            version=_int_or_none(_txt(props, "v")), fingerprint=_fingerprint(_txt(props, "fp")),
            cluster=_cluster(_txt(props, "cluster_id"), _txt(props, "cluster")),
        )

    def on_change(
        zeroconf: Any, service_type: str, name: str, state_change: ServiceStateChange
    ) -> None:
        if state_change in (ServiceStateChange.Added, ServiceStateChange.Updated):
            task = asyncio.ensure_future(resolve(name))
            pending.add(task)
            task.add_done_callback(pending.discard)

    browser = AsyncServiceBrowser(aiozc.zeroconf, [MDNS_SERVICE_TYPE], handlers=[on_change])
    try:
        window_end = deadline if window is None else time.monotonic() + window
        remaining = min(deadline, window_end) - time.monotonic()
        if remaining > 0:
            await asyncio.sleep(remaining)
        remaining = deadline - time.monotonic()
        if pending and remaining > 0:
            await asyncio.wait(list(pending), timeout=remaining)
    finally:
        for task in list(pending):
            task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(browser.async_cancel(), 1.0)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(aiozc.async_close(), 1.0)


def _fingerprint(value: str | None) -> str | None:
    """A TXT ``fp`` value if it is a well-formed fingerprint (a malformed hint is no hint)."""
    import re

    from richchat.core.constants import FINGERPRINT_PATTERN

    return value if value is not None and re.match(FINGERPRINT_PATTERN, value) else None
