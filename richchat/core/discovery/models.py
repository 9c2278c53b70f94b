"""Pydantic results of ``richchat discover`` (also what ``--json`` prints).

The document is one :class:`DiscoveryReport`: advertised richchat servers, discovered LAN
hosts, local interfaces, and notices (one line each: what could not be done and how to fix it).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from richchat.core.constants import DEFAULT_BEACON_PORT

FoundVia = Literal["beacon", "query", "mdns"]
HostSource = Literal["arp-sweep", "neighbour-table"]


class AdvertisedServer(BaseModel):
    """A richchat server that advertised itself, merged across the ways it was heard."""

    server_id: str | None = None
    name: str
    address: str
    port: int
    users: int | None = None
    tls: bool = False
    #: the TLS key's fingerprint the server advertised: a hint to compare with what the
    #: server presents on first contact, never a reason to trust it
    fingerprint: str | None = None
    version: int | None = None
    found_via: list[FoundVia] = Field(default_factory=list)
    #: Seconds from the start of the run until the server was first heard.
    found_after: float = 0.0
    #: A node of a cluster (``server --redis``): the chat's name and id. Nodes with the same
    #: ``cluster_id`` serve one chat (the same rooms and users); any of them will do.
    cluster: str | None = None
    cluster_id: str | None = None

    @property
    def chat_key(self) -> str:
        """What tells chats apart: the cluster id for a node, else the server itself."""
        return f"cluster:{self.cluster_id}" if self.cluster_id else (
            self.server_id or f"{self.address}:{self.port}"
        )


class OsGuess(BaseModel):
    name: str
    accuracy: int = Field(ge=0, le=100)
    family: str | None = None
    vendor: str | None = None


class DiscoveredHost(BaseModel):
    ip: str
    mac: str | None = None
    vendor: str | None = None
    interface: str | None = None
    source: HostSource
    os: OsGuess | None = None


class InterfaceAddress(BaseModel):
    family: Literal["ipv4", "ipv6"]
    address: str
    netmask: str | None = None
    prefixlen: int | None = None
    broadcast: str | None = None


class LocalInterface(BaseModel):
    name: str
    mac: str | None = None
    addresses: list[InterfaceAddress] = Field(default_factory=list)
    #: First IPv4 netmask / broadcast, for the table (all of them are in ``addresses``).
    netmask: str | None = None
    broadcast: str | None = None
    #: a default route (IPv4 or IPv6) goes out through this interface
    is_default: bool = False
    #: the IPv4 default route's gateway, when it goes through this interface
    gateway: str | None = None
    #: the IPv6 default route's gateway (often link-local), when it goes through this interface
    gateway6: str | None = None
    loopback: bool = False


class Notice(BaseModel):
    """Something that could not be done, in one line, with the fix."""

    source: Literal["advertised", "arp", "os", "interfaces", "mdns", "subnet"]
    message: str
    hint: str | None = None
    #: The ExitStatus this notice implies (0 when the report is still complete enough).
    exit_status: int = 0


class DiscoveryOptions(BaseModel):
    """Everything one discovery run needs; the CLI and the join wizard both build one."""

    model_config = ConfigDict(frozen=True)

    timeout: float = Field(default=3.0, gt=0, le=3600)
    interface: str | None = None
    arp: bool = True
    os: bool = False
    mdns: bool = True
    advertised: bool = True
    beacon_port: int = Field(default=DEFAULT_BEACON_PORT, ge=1, le=65535)
    #: Where the active query goes; None = the broadcast address of every local IPv4 interface.
    broadcast: list[str] | None = None
    #: Explicit subnets to sweep (CIDR); replaces the interface subnets and skips the size check.
    subnets: list[str] | None = None
    #: Sweep interface subnets larger than MAX_AUTO_PREFIX without asking (user confirmed).
    allow_large: bool = False
    #: Keep listening for beacons and DNS-SD this many seconds (capped by ``timeout``) instead
    #: of finishing as soon as the work is done (``--listen S``).
    listen: float | None = Field(default=None, gt=0, le=3600)


class DiscoveryReport(BaseModel):
    servers: list[AdvertisedServer] = Field(default_factory=list)
    hosts: list[DiscoveredHost] = Field(default_factory=list)
    interfaces: list[LocalInterface] = Field(default_factory=list)
    notices: list[Notice] = Field(default_factory=list)
    #: Seconds each source took (advertised, arp, os, interfaces).
    durations: dict[str, float] = Field(default_factory=dict)
    elapsed: float = 0.0
    #: 0, or the ExitStatus the CLI exits with after printing (PRIVILEGE, TOOL_MISSING).
    exit_status: int = 0
