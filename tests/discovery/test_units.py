"""Pure pieces: subnet planning, broadcast addresses, merging, OUI vendors, nmap parsing,
rendering. No packets are sent by any test here."""

from __future__ import annotations

import io
import ipaddress
import time

from rich.console import Console

from richchat.core.discovery.arp import vendor_of
from richchat.core.discovery.interfaces import (
    MAX_AUTO_PREFIX,
    broadcast_addresses,
    list_interfaces,
    sweep_targets,
)
from richchat.core.discovery.listen import ServerTable, source_filter
from richchat.core.discovery.models import (
    AdvertisedServer,
    DiscoveredHost,
    DiscoveryReport,
    InterfaceAddress,
    LocalInterface,
    Notice,
    OsGuess,
)
from richchat.core.discovery.osdetect import best_guess
from richchat.core.discovery.render import notice_line, report_renderable


def iface(name: str, *cidrs: str, bcast: str | None = None, loopback: bool = False,
          default: bool = False) -> LocalInterface:
    addrs = []
    for cidr in cidrs:
        i = ipaddress.IPv4Interface(cidr)
        addrs.append(InterfaceAddress(family="ipv4", address=str(i.ip),
                                      netmask=str(i.netmask), prefixlen=i.network.prefixlen,
                                      broadcast=bcast))
    return LocalInterface(name=name, addresses=addrs, loopback=loopback, is_default=default)


def test_loopback_interface_is_listed() -> None:
    [lo] = list_interfaces("lo")
    assert lo.loopback
    assert any(a.address == "127.0.0.1" and a.prefixlen == 8 for a in lo.addresses)
    assert list_interfaces("no-such-if0") == []


def test_broadcast_addresses_skip_loopback_and_compute_missing_ones() -> None:
    ifs = [
        iface("lo", "127.0.0.1/8", loopback=True),
        iface("eth0", "192.168.7.20/24", bcast="192.168.7.255"),
        iface("eth1", "10.1.0.5/16"),  # no broadcast reported: derived from the prefix
        iface("ppp0", "100.64.0.1/32"),
    ]
    assert broadcast_addresses(ifs) == ["192.168.7.255", "10.1.255.255"]


def test_sweep_targets_cover_each_subnet_once_and_flag_large_ones() -> None:
    ifs = [
        iface("lo", "127.0.0.1/8", loopback=True),
        iface("eth0", "192.168.7.20/24", "192.168.7.21/24"),
        iface("eth1", "10.1.0.5/16"),
        iface("eth2", "172.16.4.1/22"),
    ]
    targets = sweep_targets(ifs)
    assert [(str(t.network), t.interface, t.too_large) for t in targets] == [
        ("192.168.7.0/24", "eth0", False),
        ("10.1.0.0/16", "eth1", True),
        ("172.16.4.0/22", "eth2", False),
    ]
    assert MAX_AUTO_PREFIX == 22
    only = sweep_targets(ifs, interface="eth1")
    assert [str(t.network) for t in only] == ["10.1.0.0/16"]
    explicit = sweep_targets(ifs, subnets=["10.1.2.0/23", "192.168.99.0/24"])
    assert [(str(t.network), t.interface, t.source, t.too_large) for t in explicit] == [
        ("10.1.2.0/23", "eth1", "10.1.0.5", False),
        ("192.168.99.0/24", None, None, False),  # off-link: refused by the sweep
    ]
    wrong_if = sweep_targets(ifs, subnets=["10.1.2.0/23"], interface="eth0")
    assert [(t.interface, t.source) for t in wrong_if] == [("eth0", None)]


def test_server_table_merges_by_identity() -> None:
    seen: list[str] = []
    table = ServerTable(time.monotonic(), lambda s: seen.append(s.name))
    table.add(via="query", address="10.0.0.2", port=5050, name="lab", server_id="X", users=1,
              tls=False, version=1)
    table.add(via="beacon", address="10.0.0.2", port=5050, name="lab", server_id="X", users=4,
              tls=False, version=1)
    table.add(via="mdns", address="10.0.0.2", port=5050, name="lab", server_id="X", users=2,
              tls=False, version=1)
    # an mDNS record without an id merges by endpoint
    table.add(via="mdns", address="10.0.0.3", port=5050, name="other", server_id=None,
              users=None, tls=True, version=None)
    table.add(via="query", address="10.0.0.3", port=5050, name="other", server_id="Y", users=0,
              tls=True, version=1)
    servers = {s.name: s for s in table.result()}
    assert servers["lab"].found_via == ["query", "beacon", "mdns"]
    assert servers["lab"].users == 4  # the UDP count, not the possibly stale TXT record
    assert servers["other"].server_id == "Y"
    assert servers["other"].found_via == ["mdns", "query"]
    assert seen == ["lab", "other"]


def test_source_filter() -> None:
    accept = source_filter([ipaddress.IPv4Network("10.77.1.0/24")])
    assert accept("10.77.1.9")
    assert not accept("10.77.2.9")
    assert not accept("fe80::1")
    assert source_filter(None)("1.2.3.4")


def test_vendor_from_scapy_manuf_db() -> None:
    assert vendor_of("00:1b:63:12:34:56") == "Apple, Inc."
    assert vendor_of("02:11:22:33:44:55") is None  # locally administered: no OUI
    assert vendor_of(None) is None
    assert vendor_of("zz:zz") is None


def test_best_os_guess_from_python_nmap_result() -> None:
    result = {"osmatch": [
        {"name": "Linux 3.2", "accuracy": "95", "osclass": [
            {"osfamily": "Linux", "vendor": "Linux", "accuracy": "95"}]},
        {"name": "Linux 5.3 - 5.4", "accuracy": "96", "osclass": [
            {"osfamily": "Linux", "vendor": "Linux", "accuracy": "96"}]},
    ]}
    assert best_guess(result) == OsGuess(name="Linux 5.3 - 5.4", accuracy=96, family="Linux",
                                         vendor="Linux")
    assert best_guess({"osmatch": []}) is None
    assert best_guess({}) is None


def render(report: DiscoveryReport) -> str:
    buf = io.StringIO()
    Console(file=buf, width=140, no_color=True).print(report_renderable(report, 3.0))
    return buf.getvalue()


def test_render_three_tables_with_user_text_as_plain_text() -> None:
    report = DiscoveryReport(
        servers=[AdvertisedServer(server_id="X", name="[bold]lab[/bold]", address="10.0.0.2",
                                  port=5050, users=3, tls=True, version=1,
                                  found_via=["query", "mdns"])],
        hosts=[DiscoveredHost(ip="10.0.0.9", mac="00:1b:63:00:00:01", vendor="Apple, Inc.",
                              interface="eth0", source="arp-sweep",
                              os=OsGuess(name="Linux 5.4", accuracy=96))],
        interfaces=[iface("eth0", "10.0.0.1/24", bcast="10.0.0.255", default=True)],
    )
    text = render(report)
    for title in ("Advertised", "Discovered", "Local Interface"):
        assert title in text
    assert "[bold]lab[/bold]" in text  # markup in a server name is shown, not interpreted
    assert "query, mdns" in text
    assert "00:1b:63:00:00:01" in text and "Apple, Inc." in text
    assert "Linux 5.4" in text and "96%" in text
    assert "10.0.0.1/24" in text and "broadcast 10.0.0.255" in text


def test_render_empty_report_says_so() -> None:
    text = render(DiscoveryReport())
    assert "no richchat server answered within 3 s" in text
    assert "no hosts found" in text


def test_the_empty_advertised_table_rounds_the_time_it_waited() -> None:
    """The command passes the measured time (``durations["advertised"]``, 4 decimals): the
    caption says "within 1.3 s", not "within 1.3052 s"."""
    buf = io.StringIO()
    Console(file=buf, width=140, no_color=True).print(report_renderable(DiscoveryReport(),
                                                                        1.3052))
    assert "no richchat server answered within 1.3 s" in buf.getvalue()


def test_notice_line_is_one_line_with_the_fix() -> None:
    line = notice_line(Notice(source="os", message="nmap missing", hint="install nmap",
                              exit_status=9))
    assert line.plain == "error: nmap missing (install nmap)"
    assert notice_line(Notice(source="arp", message="m")).plain == "warning: m"


def test_a_piped_table_never_splits_an_address() -> None:
    """At 80 columns (discover's output piped or captured) no IP, MAC or broadcast address is
    split across lines (the lab's subnet 10.77.232.0/24 once lost its broadcast to a fold:
    10.77.232.2 / 55); narrower, nothing is cropped (tests/discovery/test_render_narrow.py
    checks that no value is dropped)."""
    report = DiscoveryReport(
        hosts=[DiscoveredHost(ip="10.77.232.14", mac="00:1b:63:5a:11:22",
                              vendor="Apple, Inc.", interface="eth0", source="arp-sweep")],
        interfaces=[iface("lo", "127.0.0.1/8", bcast=None),
                    iface("eth0", "10.77.232.10/24", bcast="10.77.232.255")],
    )
    report.interfaces[1].addresses.append(InterfaceAddress(
        family="ipv6", address="fe80::4c3f:d2ff:fe8a:1b2c%eth0", prefixlen=64))
    report.interfaces[1].mac = "4e:3f:d2:8a:1b:2c"
    buf = io.StringIO()
    Console(file=buf, width=80, no_color=True).print(report_renderable(report, 2.0))
    text = buf.getvalue()
    for whole in ("broadcast 10.77.232.255", "4e:3f:d2:8a:1b:2c", "10.77.232.14",
                  "00:1b:63:5a:11:22", "10.77.232.10/24", "fe80::4c3f:d2ff:fe8a:1b2c/64"):
        assert whole in text, text
    assert max(len(line) for line in text.splitlines()) <= 80
    # a narrow terminal: tables fold (or become lists), and nothing is cropped
    buf = io.StringIO()
    Console(file=buf, width=44, no_color=True).print(report_renderable(report, 2.0))
    text = buf.getvalue()
    tops = [line for line in text.splitlines() if line.startswith("┏")]
    assert all(top.endswith("┓") for top in tops)
    assert max(len(line) for line in text.splitlines()) <= 44
