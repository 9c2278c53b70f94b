"""An IPv4 address set without a broadcast address (`ip addr add 10.78.0.1/24 dev eth0`, no
`brd +`: `ip address` shows no `brd`), in a namespace lab host. netifaces reports the address
itself as its broadcast; discover showed `broadcast 10.78.0.1` and sent its active query to the
machine's own address (found by an exploratory pass). Now the address has no broadcast in the
report, and the query goes to the subnet's broadcast address, 10.78.0.255 (traced)."""

from __future__ import annotations

import shutil

import pytest

from richchat.core.discovery.models import DiscoveryReport
from tests.discovery.labtools import discover
from tests.netlab import Lab

pytestmark = pytest.mark.netns


def test_an_address_without_brd_is_not_its_own_broadcast(lab: Lab) -> None:
    host = lab.add_host("nobrd")
    lab.run(host, ["ip", "addr", "add", "10.78.0.1/24", "dev", "eth0"], check=True)
    shown = lab.run(host, ["ip", "-4", "addr", "show", "dev", "eth0"], check=True).stdout
    assert "10.78.0.1/24" in shown and "brd 10.78.0.255" not in shown, shown
    proc = discover(lab, host, "--json", "--no-arp", "--no-mdns", "--timeout", "1")
    assert proc.returncode == 0, proc.stderr
    report = DiscoveryReport.model_validate_json(proc.stdout)
    [eth0] = [i for i in report.interfaces if i.name == "eth0"]
    [addr] = [a for a in eth0.addresses if a.address == "10.78.0.1"]
    assert addr.broadcast is None, addr
    strace = shutil.which("strace")
    assert strace is not None, "strace is needed (scripts/install-test-deps.sh installs it)"
    traced = discover(lab, host, "--json", "--no-arp", "--no-mdns", "--timeout", "1",
                      prefix=(strace, "-f", "-qq", "-e", "trace=sendto", "-o", "/dev/stderr"))
    assert traced.returncode == 0, traced.stderr[-2000:]
    sent_to = traced.stderr
    assert '"10.78.0.255"' in sent_to, sent_to[-2000:]
    assert 'inet_addr("10.78.0.1")' not in sent_to, sent_to[-2000:]
