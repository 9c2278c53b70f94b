"""discover's tables in narrow terminals (a tmux pane of 12-79 columns) and with IPv6: no
value is dropped (a table whose columns shrank to nothing showed only some of them), and at
80 columns no address is split, IPv6 included. Found by an exploratory pass."""

from __future__ import annotations

import io
import re

import pytest
from rich.console import Console

from richchat.core.discovery.models import (
    AdvertisedServer,
    DiscoveredHost,
    DiscoveryReport,
    InterfaceAddress,
)
from richchat.core.discovery.render import report_renderable
from tests.discovery.test_units import iface

TITLES = ("Advertised", "Discovered", "Local Interface")


def render(report: DiscoveryReport, width: int) -> str:
    buf = io.StringIO()
    Console(file=buf, width=width, no_color=True).print(report_renderable(report, 2.0))
    return buf.getvalue()


def section(text: str, title: str) -> str:
    """What ``text`` shows under ``title``, flattened: a table read column by column (its
    cells' folded lines joined), a list line by line, spaces and box characters dropped, so
    that a value folded over lines or cells reads whole again."""
    parts: list[str] = []
    block: list[list[str]] = []
    for line in [*text.splitlines(), ""]:
        if line.startswith("│"):
            block.append(line.strip("│").split("│"))
            continue
        if block:
            parts += ["".join(row[i].strip() for row in block) for i in range(len(block[0]))]
            block = []
        parts.append(line.strip())
    flat = re.sub(r"\s+", "", "".join(parts))
    keys = [t.replace(" ", "") for t in TITLES]
    start = flat.index(title.replace(" ", ""))
    ends = [flat.index(k, start + 1) for k in keys if k in flat[start + 1:]]
    return flat[start:min(ends) if ends else None]


def report() -> DiscoveryReport:
    eth = iface("enp0s31f6", "10.177.232.123/24", bcast="10.177.232.255", default=True)
    eth.gateway = "10.177.232.1"
    eth.mac = "b2:44:ad:ca:dc:16"
    eth.addresses.append(InterfaceAddress(family="ipv6",
                                          address="fe80::fcbb:36ff:fec2:9d40%enp0s31f6",
                                          prefixlen=64))
    return DiscoveryReport(
        servers=[AdvertisedServer(server_id="3f2a9c1e7b5d4a60", name="office-chat",
                                  address="192.168.100.200", port=50500, users=3, tls=True,
                                  fingerprint="SHA256:qK4c3b0l9yT1rA2p8N7fZ6xW5vU4sR3qP2oN1mL0kJ",
                                  found_via=["beacon", "query"])],
        hosts=[DiscoveredHost(ip="192.168.100.201", mac="00:1b:63:5a:11:22",
                              vendor="Hewlett Packard Enterprise", interface="wlp0s20f3",
                              source="arp-sweep")],
        interfaces=[eth])


@pytest.mark.parametrize("width", [12, 16, 20, 24, 28, 32, 40, 48, 56, 64, 72, 79])
def test_no_value_vanishes_in_a_narrow_terminal(width: int) -> None:
    text = render(report(), width)
    assert max(len(line) for line in text.splitlines()) <= width, text
    advertised = section(text, "Advertised")
    for value in ("office-chat", "192.168.100.200", "50500", "3f2a9c1e7b5d4a60",
                  "SHA256:qK4c3b0l9yT1rA2p8N7fZ6xW5vU4sR3qP2oN1mL0kJ", "beacon,query"):
        assert value in advertised, (value, text)
    discovered = section(text, "Discovered")
    for value in ("192.168.100.201", "00:1b:63:5a:11:22", "wlp0s20f3", "arp-sweep",
                  "HewlettPackardEnterprise"):
        assert value in discovered, (value, text)
    interfaces = section(text, "Local Interface")
    for value in ("enp0s31f6", "b2:44:ad:ca:dc:16", "10.177.232.123/24", "10.177.232.255",
                  "via10.177.232.1", "fe80::fcbb:36ff:fec2:9d40/64"):
        assert value in interfaces, (value, text)


def test_ipv6_addresses_are_whole_at_80_columns() -> None:
    """Every real interface has a link-local address; its scope (``%enp0s31f6``) is the
    interface the row is about, and is not repeated. A global address of 8 full groups fits
    too."""
    eth = iface("enp0s31f6", "192.168.178.123/24", bcast="192.168.178.255", default=True)
    eth.gateway = "192.168.178.1"
    eth.mac = "fe:bb:36:c2:9d:40"
    for address in ("fe80::fcbb:36ff:fec2:9d40%enp0s31f6",
                    "2001:db8:abcd:1234:fcbb:36ff:fec2:9d40"):
        eth.addresses.append(InterfaceAddress(family="ipv6", address=address, prefixlen=64))
    text = render(DiscoveryReport(interfaces=[eth]), 80)
    for whole in ("fe80::fcbb:36ff:fec2:9d40/64", "2001:db8:abcd:1234:fcbb:36ff:fec2:9d40/64",
                  "192.168.178.123/24", "broadcast 192.168.178.255", "fe:bb:36:c2:9d:40",
                  "via 192.168.178.1"):
        assert whole in text, text
    assert "%enp0s31f6" not in text
