"""Discovery: richchat servers (beacon, active query, DNS-SD), LAN hosts (ARP, nmap -O) and
local interfaces. ``await discover(options)`` / ``discover_sync(options)``; the server side is
:mod:`richchat.core.discovery.advertise`. Heavy libraries are imported only when used."""

from richchat.core.discovery.models import (
    AdvertisedServer,
    DiscoveredHost,
    DiscoveryOptions,
    DiscoveryReport,
    LocalInterface,
    Notice,
    OsGuess,
)
from richchat.core.discovery.service import discover, discover_sync, planned_targets

__all__ = [
    "AdvertisedServer",
    "DiscoveredHost",
    "DiscoveryOptions",
    "DiscoveryReport",
    "LocalInterface",
    "Notice",
    "OsGuess",
    "discover",
    "discover_sync",
    "planned_targets",
]
