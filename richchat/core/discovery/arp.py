"""Hosts on the local subnets: an ARP sweep with scapy, or the kernel's neighbour table."""

from __future__ import annotations

import ipaddress
import shutil
import socket
import subprocess
from collections.abc import Iterable
from functools import lru_cache

from richchat.core.discovery.interfaces import SweepTarget
from richchat.core.discovery.models import DiscoveredHost

ETH_P_ARP = 0x0806
PRIVILEGE_HINT = (
    "run with sudo, or: sudo setcap cap_net_raw+eip \"$(readlink -f \"$(which python3)\")\""
)


def can_open_raw_socket() -> bool:
    """True if this process may send raw link-layer frames (root or CAP_NET_RAW)."""
    if not hasattr(socket, "AF_PACKET"):
        return False
    try:
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ARP))
    except PermissionError:
        return False
    except OSError:
        return False
    sock.close()
    return True


@lru_cache(maxsize=1)
def _manufdb() -> object:
    from scapy.config import conf

    return conf.manufdb


def vendor_of(mac: str | None) -> str | None:
    """The vendor registered for the MAC's OUI (scapy's bundled manuf db), or None."""
    if not mac:
        return None
    try:
        octet = int(mac.split(":")[0], 16)
    except ValueError:
        return None
    if octet & 0x02:  # locally administered: no OUI behind it
        return None
    try:
        short, long = _manufdb().lookup(mac)  # type: ignore[attr-defined]
    except Exception:
        return None
    name = long or short
    if not name or name.lower() == mac.lower():
        return None
    return str(name)


def arp_sweep(targets: Iterable[SweepTarget], timeout: float) -> list[DiscoveredHost]:
    """Send one ARP who-has to every address of each target; blocking (run it in a thread)."""
    from scapy.config import conf
    from scapy.layers.l2 import ARP, Ether
    from scapy.sendrecv import srp

    conf.verb = 0
    hosts: dict[str, DiscoveredHost] = {}
    for target in targets:
        addresses = [str(ip) for ip in target.network.hosts()]
        if not addresses:
            continue
        packet = Ether(dst="ff:ff:ff:ff:ff:ff") / ARP(pdst=addresses)
        answered, _ = srp(packet, iface=target.interface, timeout=timeout, verbose=False)
        for _sent, received in answered:
            ip = str(received[ARP].psrc)
            mac = str(received[ARP].hwsrc).lower()
            if ip not in hosts:
                hosts[ip] = DiscoveredHost(
                    ip=ip, mac=mac, vendor=vendor_of(mac), interface=target.interface,
                    source="arp-sweep",
                )
    return sort_hosts(hosts.values())


def sort_hosts(hosts: Iterable[DiscoveredHost]) -> list[DiscoveredHost]:
    return sorted(hosts, key=lambda h: ipaddress.IPv4Address(h.ip))


def _in_targets(ip: str, interface: str | None, targets: list[SweepTarget] | None,
                only_interface: str | None) -> bool:
    if only_interface is not None and interface != only_interface:
        return False
    if not targets:
        return True
    addr = ipaddress.IPv4Address(ip)
    return any(addr in t.network for t in targets)


def neighbour_table(
    targets: list[SweepTarget] | None = None, interface: str | None = None
) -> list[DiscoveredHost]:
    """Complete entries of the kernel's IPv4 neighbour table (/proc/net/arp, else ``ip neigh``)."""
    entries: list[tuple[str, str, str | None]] = []
    try:
        with open("/proc/net/arp", encoding="ascii") as fh:
            lines = fh.read().splitlines()[1:]
        for line in lines:
            parts = line.split()
            if len(parts) < 6:
                continue
            f_ip, _hwtype, flags, f_mac, _mask, f_dev = parts[:6]
            if int(flags, 16) & 0x2 and f_mac != "00:00:00:00:00:00":  # ATF_COM: complete
                entries.append((f_ip, f_mac.lower(), f_dev))
    except OSError:
        entries = _ip_neigh()
    hosts: dict[str, DiscoveredHost] = {}
    for ip, mac, dev in entries:
        try:
            if not _in_targets(ip, dev, targets, interface):
                continue
        except ValueError:
            continue
        hosts.setdefault(ip, DiscoveredHost(
            ip=ip, mac=mac, vendor=vendor_of(mac), interface=dev, source="neighbour-table",
        ))
    return sort_hosts(hosts.values())


def _ip_neigh() -> list[tuple[str, str, str | None]]:
    if shutil.which("ip") is None:
        return []
    proc = subprocess.run(["ip", "-4", "neigh", "show"], capture_output=True, text=True,
                          timeout=5, check=False)
    entries: list[tuple[str, str, str | None]] = []
    for line in proc.stdout.splitlines():
        parts = line.split()
        if "lladdr" not in parts or "FAILED" in parts or "INCOMPLETE" in parts:
            continue
        dev = parts[parts.index("dev") + 1] if "dev" in parts else None
        entries.append((parts[0], parts[parts.index("lladdr") + 1].lower(), dev))
    return entries
