"""discover's tables at every terminal width: at 80 columns (discover piped) no address is
split across lines, with predictable interface names (enp0s31f6, wlp0s20f3) and 3-digit octets
too; at any width no table is cropped at the right edge (found by an exploratory pass: both
happened before)."""

from __future__ import annotations

import io

from rich.console import Console

from richchat.core.discovery.models import AdvertisedServer, DiscoveredHost, DiscoveryReport
from richchat.core.discovery.render import report_renderable
from tests.discovery.test_units import iface


def render(report: DiscoveryReport, width: int = 80) -> str:
    buf = io.StringIO()
    Console(file=buf, width=width, no_color=True).print(report_renderable(report, 2.0))
    return buf.getvalue()


def assert_whole_tables(text: str) -> None:
    """Every table keeps its right border (nothing cropped at the edge)."""
    lines = text.splitlines()
    for top in (line for line in lines if line.startswith("┏")):
        assert top.endswith("┓"), text
    for bottom in (line for line in lines if line.startswith("└")):
        assert bottom.endswith("┘"), text


def test_interface_table_at_80_columns_with_a_predictable_interface_name() -> None:
    eth = iface("enp0s31f6", "10.177.232.123/24", bcast="10.177.232.255", default=True)
    eth.gateway = "10.177.232.1"
    eth.mac = "b2:44:ad:ca:dc:16"
    report = DiscoveryReport(interfaces=[iface("lo", "127.0.0.1/8"), eth])
    text = render(report)
    assert_whole_tables(text)
    for whole in ("10.177.232.123/24", "10.177.232.1 ", "10.177.232.255", "b2:44:ad:ca:dc:16"):
        assert whole in text, text


def test_discovered_table_at_80_columns_is_not_cropped() -> None:
    host = DiscoveredHost(ip="192.168.100.200", mac="00:1b:63:5a:11:22",
                          vendor="Hewlett Packard Enterprise", interface="wlp0s20f3",
                          source="arp-sweep")
    text = render(DiscoveryReport(hosts=[host]))
    assert_whole_tables(text)


def test_advertised_address_is_not_split_at_80_columns() -> None:
    server = AdvertisedServer(server_id="3f2a9c1e7b5d4a60", name="office-chat",
                              address="192.168.100.200", port=50500, users=3, tls=True,
                              fingerprint="SHA256:qK4c3b0l9yT1rA2p8N7fZ6xW5vU4sR3qP2oN1mL0kJ",
                              found_via=["beacon", "query"])
    text = render(DiscoveryReport(servers=[server]))
    assert "192.168.100.200" in text, text


def test_no_width_crops_a_table() -> None:
    """From a tiny terminal (12 columns) to a wide one: no line is wider than the terminal and every table
    keeps its right border; where the tables fit with addresses whole, they are whole."""
    from tests.discovery.test_render_narrow import report as office

    report = office()  # a server, a host, enp0s31f6 with a default route and IPv6
    report.interfaces.insert(0, iface("lo", "127.0.0.1/8"))
    for width in range(12, 201):
        text = render(report, width)
        assert max(len(line) for line in text.splitlines()) <= width, (width, text)
        assert_whole_tables(text)
        if width >= 80:
            for whole in ("192.168.100.200", "10.177.232.123/24", "10.177.232.255",
                          "b2:44:ad:ca:dc:16", "00:1b:63:5a:11:22"):
                assert whole in text, (width, text)


def test_a_common_home_lan_at_80_columns() -> None:
    """eth0, 192.168.178.23/24, default route via 192.168.178.1 (a typical home router):
    the Local Interface table was cropped at column 80 and the address split (read as /2)."""
    eth = iface("eth0", "192.168.178.23/24", bcast="192.168.178.255", default=True)
    eth.gateway = "192.168.178.1"
    eth.mac = "b2:44:ad:ca:dc:16"
    text = render(DiscoveryReport(interfaces=[iface("lo", "127.0.0.1/8"), eth]))
    assert_whole_tables(text)
    assert "192.168.178.23/24" in text, text
