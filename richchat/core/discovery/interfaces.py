"""Local interfaces from netifaces (netifaces-plus): addresses, MAC, netmask, default route."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from richchat.core.discovery.models import InterfaceAddress, LocalInterface

#: Interface subnets with a shorter prefix than this are not swept without confirmation.
MAX_AUTO_PREFIX = 22


def list_interfaces(only: str | None = None) -> list[LocalInterface]:
    """Every local interface (or only ``only``), with the default-route flag set."""
    import netifaces

    gateways: dict[Any, Any] = dict(netifaces.gateways())
    defaults = gateways.get("default")
    if not isinstance(defaults, dict):
        defaults = {}
    # (gateway, interface) of the default route of each family: a machine on an IPv6-only
    # network has only the second
    default_v4 = defaults.get(netifaces.AF_INET) or (None, None)
    default_v6 = defaults.get(netifaces.AF_INET6) or (None, None)
    result: list[LocalInterface] = []
    for name in netifaces.interfaces():
        if only is not None and name != only:
            continue
        addrs = netifaces.ifaddresses(name)
        link = addrs.get(netifaces.AF_LINK, [])
        mac = link[0].get("addr") if link else None
        if mac == "00:00:00:00:00:00" or mac == "":
            mac = None
        iface = LocalInterface(name=name, mac=mac,
                               is_default=name in (default_v4[1], default_v6[1]))
        if name == default_v4[1]:
            iface.gateway = default_v4[0]
        if name == default_v6[1]:
            iface.gateway6 = default_v6[0]
        for entry in addrs.get(netifaces.AF_INET, []):
            addr = entry.get("addr")
            if not addr:
                continue
            netmask = entry.get("netmask")
            prefix = _prefixlen_v4(netmask)
            # an address set without a broadcast (`ip addr add A/24 dev X`, no `brd +`):
            # netifaces says the address itself; there is none (the query then goes to the
            # subnet's broadcast address, broadcast_addresses())
            bcast = entry.get("broadcast")
            iface.addresses.append(
                InterfaceAddress(
                    family="ipv4", address=addr, netmask=netmask, prefixlen=prefix,
                    broadcast=None if bcast == addr else bcast,
                )
            )
            if ipaddress.ip_address(addr).is_loopback:
                iface.loopback = True
        for entry in addrs.get(netifaces.AF_INET6, []):
            addr = entry.get("addr")
            if not addr:
                continue
            netmask = entry.get("netmask")
            prefix = int(netmask.rsplit("/", 1)[1]) if netmask and "/" in netmask else None
            iface.addresses.append(
                InterfaceAddress(family="ipv6", address=addr, netmask=netmask, prefixlen=prefix)
            )
        v4 = [a for a in iface.addresses if a.family == "ipv4"]
        if v4:
            iface.netmask = v4[0].netmask
            iface.broadcast = v4[0].broadcast
        result.append(iface)
    return result


def _prefixlen_v4(netmask: str | None) -> int | None:
    if not netmask:
        return None
    try:
        return ipaddress.IPv4Network(f"0.0.0.0/{netmask}").prefixlen
    except ValueError:
        return None


def broadcast_addresses(interfaces: list[LocalInterface]) -> list[str]:
    """The IPv4 broadcast address of every interface that has one (never 255.255.255.255)."""
    seen: list[str] = []
    for iface in interfaces:
        for addr in iface.addresses:
            if addr.family != "ipv4" or iface.loopback:
                continue
            bcast = addr.broadcast
            if not bcast and addr.prefixlen is not None and addr.prefixlen < 31:
                bcast = str(ipaddress.IPv4Interface(f"{addr.address}/{addr.prefixlen}")
                            .network.broadcast_address)
            if bcast and bcast != "255.255.255.255" and bcast not in seen:
                seen.append(bcast)
    return seen


@dataclass(frozen=True)
class SweepTarget:
    """One subnet to sweep, with the interface it is reached through (None: let scapy route)."""

    network: ipaddress.IPv4Network
    interface: str | None
    explicit: bool = False
    #: Our own address on that interface (the ARP sender address); None: ask the route table.
    source: str | None = None

    @property
    def too_large(self) -> bool:
        return not self.explicit and self.network.prefixlen < MAX_AUTO_PREFIX


def sweep_targets(
    interfaces: list[LocalInterface], subnets: list[str] | None = None,
    interface: str | None = None,
) -> list[SweepTarget]:
    """The subnets an ARP sweep covers: the explicit ``subnets`` or every interface subnet."""
    if subnets:
        targets = []
        for cidr in subnets:
            net = ipaddress.IPv4Network(cidr, strict=False)
            pool = [i for i in interfaces if interface is None or i.name == interface]
            name, source = _interface_for(pool, net)
            targets.append(SweepTarget(net, name or interface, True, source))
        return targets
    targets = []
    seen: set[ipaddress.IPv4Network] = set()
    for iface in interfaces:
        if iface.loopback or (interface is not None and iface.name != interface):
            continue
        for addr in iface.addresses:
            if addr.family != "ipv4" or addr.prefixlen is None or addr.prefixlen >= 31:
                continue
            net = ipaddress.IPv4Interface(f"{addr.address}/{addr.prefixlen}").network
            if net.is_loopback or net.is_link_local or net in seen:
                continue
            seen.add(net)
            targets.append(SweepTarget(net, iface.name, source=addr.address))
    return targets


def _interface_for(
    interfaces: list[LocalInterface], net: ipaddress.IPv4Network
) -> tuple[str | None, str | None]:
    for iface in interfaces:
        for addr in iface.addresses:
            if addr.family != "ipv4" or addr.prefixlen is None:
                continue
            own = ipaddress.IPv4Interface(f"{addr.address}/{addr.prefixlen}").network
            if ipaddress.IPv4Address(addr.address) in net or net.subnet_of(own):
                return iface.name, addr.address
    return None, None
