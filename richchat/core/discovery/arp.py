"""Hosts on the local subnets: an ARP sweep, or the kernel's neighbour table.

The sweep writes ARP requests straight to a link-layer socket (``AF_PACKET``, Linux, root or
CAP_NET_RAW): a request is 42 fixed bytes, so no packet library is needed to build or read
them, and the sweep starts without waiting for scapy's import (about 0.5 s). scapy is still
what names the vendor of each MAC address (its bundled manuf database), loaded in a thread
while the sweep waits for replies (:func:`load_manuf`).
"""

from __future__ import annotations

import errno
import ipaddress
import select
import shutil
import socket
import struct
import subprocess
import time
from collections.abc import Callable, Iterable
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


#: Addresses per burst; between bursts the deadline is checked.
BURST = 256
#: Wait after the first pass before asking the silent addresses once more.
RETRY_AFTER = 0.25


#: With ``on_found``: report the hosts that answered once no reply came for this long
FOUND_QUIET = 0.05


def arp_sweep(
    targets: Iterable[SweepTarget], reply_wait: float, deadline: float | None = None,
    vendors: bool = True, on_found: Callable[[list[str]], None] | None = None,
    on_sent: Callable[[], None] | None = None,
) -> list[DiscoveredHost]:
    """ARP who-has every address of each target, twice for the silent ones; blocking.

    The request is built once; the per-address frames are that template with the target
    address patched in, so a /22 costs milliseconds to send. The socket is bound to the ARP
    ethertype on the target's interface, so the kernel hands us nothing else. Replies are
    read until ``reply_wait`` after the last request or ``deadline`` (time.monotonic()).
    ``vendors=False`` leaves the vendor out (the caller looks it up once the manuf database
    is loaded). ``on_found(ips)`` (called in this thread) hears of the hosts that answered, in
    batches, as soon as replies pause for ``FOUND_QUIET``: ``--os`` starts nmap on them while
    the sweep goes on.

    ``on_sent()`` (called in this thread after each pass of requests, and at the end however
    the sweep ends) lets the caller hold CPU-heavy work back until the first requests are
    out (imports, the vendor database). Each ``send()`` gives up the GIL, and while
    another thread computes it waits up to the interpreter's switch interval (5 ms) to get
    it back: a /24's first pass took 150 ms instead of about 10 while scapy loaded in
    another thread (measured), and the retry and the last wait start that much later.
    """
    hosts: dict[str, DiscoveredHost] = {}
    try:
        for target in targets:
            if deadline is not None and time.monotonic() >= deadline:
                break
            for ip, mac in _sweep_one(target, reply_wait, deadline, on_found, on_sent).items():
                hosts.setdefault(ip, DiscoveredHost(
                    ip=ip, mac=mac, vendor=vendor_of(mac) if vendors else None,
                    interface=target.interface, source="arp-sweep",
                ))
    finally:
        if on_sent is not None:
            on_sent()  # no first pass (nothing to sweep, deadline, error): nothing to hold back
    return sort_hosts(hosts.values())


def arp_request(own_mac: bytes, source: str, target: str) -> bytes:
    """One broadcast ARP who-has frame (Ethernet II + ARP for IPv4, 42 bytes)."""
    return struct.pack(
        "!6s6sHHHBBH6s4s6s4s",
        b"\xff" * 6, own_mac, ETH_P_ARP,  # Ethernet: broadcast, from us, ARP
        1, 0x0800, 6, 4, 1,  # ARP: Ethernet/IPv4, 6/4-byte addresses, request
        own_mac, ipaddress.IPv4Address(source).packed,
        b"\x00" * 6, ipaddress.IPv4Address(target).packed,
    )


def interface_mac(iface: str) -> bytes:
    """The hardware address of ``iface`` (Linux: /sys/class/net)."""
    with open(f"/sys/class/net/{iface}/address", encoding="ascii") as fh:
        return bytes.fromhex(fh.read().strip().replace(":", ""))


def _route_of(address: str) -> tuple[str, str]:
    """(interface, source address) the kernel would use to reach ``address``."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect((address, 9))  # UDP connect: a route look-up, nothing is sent
        source = probe.getsockname()[0]
    import netifaces

    for iface in netifaces.interfaces():
        for entry in netifaces.ifaddresses(iface).get(netifaces.AF_INET, []):
            if entry.get("addr") == source:
                return str(iface), str(source)
    raise OSError(f"no interface holds {source}")


def _sweep_one(
    target: SweepTarget, reply_wait: float, deadline: float | None,
    on_found: Callable[[list[str]], None] | None = None,
    on_sent: Callable[[], None] | None = None,
) -> dict[str, str]:
    iface, source = target.interface, target.source
    first = next(iter(target.network.hosts()), target.network.network_address)
    if iface is None or source is None:  # not planned by sweep_targets: ask the route table
        route_iface, route_src = _route_of(str(first))
        iface = iface or route_iface
        source = source or route_src
    template = arp_request(interface_mac(iface), source, str(first))
    # Ethernet (14) + ARP: the target protocol address is the last 4 bytes of the ARP header.
    pdst_at = 14 + 24
    head, tail = template[:pdst_at], template[pdst_at + 4:]
    pending = [ip for ip in target.network.hosts() if str(ip) != source]
    found: dict[str, str] = {}
    unreported: list[str] = []

    def report() -> None:
        if on_found is not None and unreported:
            on_found(list(unreported))
            unreported.clear()

    raw = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ARP))
    try:
        raw.bind((iface, ETH_P_ARP))
        raw.setblocking(False)

        def drain(until: float) -> None:
            while True:
                left = until - time.monotonic()
                if deadline is not None:
                    left = min(left, deadline - time.monotonic())
                if left <= 0:
                    return
                quiet = unreported and on_found is not None and left > FOUND_QUIET
                ready, _, _ = select.select([raw], [], [], FOUND_QUIET if quiet else left)
                if not ready:
                    if quiet:
                        report()
                        continue
                    return
                try:
                    frame = raw.recv(2048)
                except BlockingIOError:
                    continue
                ip = _note_reply(frame, target.network, found)
                if ip is not None:
                    unreported.append(ip)

        for attempt in range(2):
            for i in range(0, len(pending), BURST):
                if deadline is not None and time.monotonic() >= deadline:
                    return found
                for ip in pending[i:i + BURST]:
                    _send(raw, head + ip.packed + tail)
                drain(time.monotonic())  # read what is already there, do not wait
            if on_sent is not None:
                on_sent()
            drain(time.monotonic() + (RETRY_AFTER if attempt == 0 else reply_wait))
            pending = [ip for ip in pending if str(ip) not in found]
            if not pending:
                break
    finally:
        raw.close()
        report()
    return found


def _send(raw: socket.socket, frame: bytes) -> None:
    try:
        raw.send(frame)
    except BlockingIOError:
        select.select([], [raw], [], 0.05)
        raw.send(frame)
    except OSError as exc:
        if exc.errno != errno.ENOBUFS:
            raise
        time.sleep(0.002)  # the device queue is full: let it drain once
        raw.send(frame)


def load_manuf() -> None:
    """Load scapy's manuf database now (about 0.3 s, once), for :func:`vendor_of`."""
    _manufdb()


def _note_reply(
    frame: bytes, network: ipaddress.IPv4Network, found: dict[str, str]
) -> str | None:
    """Record an ARP reply (ethertype 0x0806, opcode 2) from inside ``network``; return the
    sender's address if it is new."""
    if len(frame) < 42 or frame[12:14] != b"\x08\x06" or frame[20:22] != b"\x00\x02":
        return None
    sender_ip = str(ipaddress.IPv4Address(frame[28:32]))
    if ipaddress.IPv4Address(sender_ip) not in network or sender_ip in found:
        return None
    found[sender_ip] = ":".join(f"{b:02x}" for b in frame[22:28])
    return sender_ip


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
