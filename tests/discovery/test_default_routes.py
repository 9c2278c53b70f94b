"""The default route of each family, read from a real routing table in a namespace lab.

A host on an IPv6-only network has a default route for IPv6 and none for IPv4; discover's
Local Interface table said nothing of it (only the IPv4 default route was looked at). No
packet is sent: the routes point at addresses on the lab's own bridge, and only the interface
listing (``list_interfaces``, what discover reports) runs inside the namespaces.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from collections.abc import Iterator

import pytest
from rich.console import Console

from richchat.core.discovery.models import DiscoveryReport, LocalInterface
from richchat.core.discovery.render import interfaces_sheet
from tests.discovery.labtools import cli_env
from tests.netlab import Host, Lab, require_netns

pytestmark = pytest.mark.netns

LIST = (
    "import json\n"
    "from richchat.core.discovery.interfaces import list_interfaces\n"
    "print(json.dumps([i.model_dump() for i in list_interfaces()]))\n"
)


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    require_netns()
    lab = Lab.create()
    try:
        yield lab
    finally:
        lab.close()


def _ip(host: Host, *args: str) -> None:
    subprocess.run(["ip", "-n", host.ns, *args], check=True, capture_output=True)


def _interfaces(lab: Lab, host: Host) -> dict[str, LocalInterface]:
    proc = lab.run(host, [sys.executable, "-c", LIST], env=cli_env(), check=True)
    return {i["name"]: LocalInterface.model_validate(i) for i in json.loads(proc.stdout)}


def _with_v6(host: Host, address: str) -> None:
    # nodad: the address is usable at once, without duplicate address detection's wait
    _ip(host, "-6", "addr", "add", f"{address}/64", "dev", "eth0", "nodad")


def test_an_ipv6_only_default_route_is_shown(lab: Lab) -> None:
    host = lab.add_host("v6only")
    _with_v6(host, "fd00:77::10")
    _ip(host, "-6", "route", "add", "default", "via", "fd00:77::1", "dev", "eth0")
    eth0 = _interfaces(lab, host)["eth0"]
    assert eth0.is_default
    assert (eth0.gateway, eth0.gateway6) == (None, "fd00:77::1")
    lo = _interfaces(lab, host)["lo"]
    assert not lo.is_default and lo.gateway6 is None

    text = _render(eth0)
    assert "default route" in text and "via fd00:77::1" in text


def test_both_default_routes_are_shown(lab: Lab) -> None:
    host = lab.add_host("dual")
    gateway4 = lab.network.replace(".0/24", ".1")
    _with_v6(host, "fd00:77::11")
    _ip(host, "route", "add", "default", "via", gateway4, "dev", "eth0")
    _ip(host, "-6", "route", "add", "default", "via", "fd00:77::1", "dev", "eth0")
    eth0 = _interfaces(lab, host)["eth0"]
    assert eth0.is_default
    assert (eth0.gateway, eth0.gateway6) == (gateway4, "fd00:77::1")
    text = _render(eth0)
    assert f"via {gateway4}" in text and "via fd00:77::1" in text


def test_no_default_route_no_flag(lab: Lab) -> None:
    host = lab.add_host("none")
    _with_v6(host, "fd00:77::12")
    eth0 = _interfaces(lab, host)["eth0"]
    assert not eth0.is_default
    assert (eth0.gateway, eth0.gateway6) == (None, None)
    assert "default route" not in _render(eth0)


def _render(iface: LocalInterface) -> str:
    """The Local Interface table at 80 columns, as discover prints it."""
    out = io.StringIO()
    report = DiscoveryReport(interfaces=[iface])
    Console(file=out, width=80, no_color=True).print(interfaces_sheet(report))
    return out.getvalue()
