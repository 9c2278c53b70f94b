"""End to end in a namespace lab: the real server in one host, plain hosts, a scanner host.

Every packet stays on the lab's private bridge (10.77.X.0/24). The ARP sweep, the beacon, the
active query, DNS-SD and nmap -O are all real.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from richchat.core.discovery.models import DiscoveryReport
from richchat.core.exit_codes import ExitStatus
from tests.discovery.labtools import cli_env, discover, run_on_pty, start_server
from tests.netlab import Host, Lab, require_netns

pytestmark = pytest.mark.netns

#: A real OUI (Apple, Inc.) so the vendor lookup has something to find; the rest of the lab
#: uses locally administered MACs, which have no vendor.
APPLE_MAC = "00:1b:63:5a:11:22"


TOUCH = (
    "import socket, sys\n"
    "try:\n"
    "    socket.create_connection((sys.argv[1], 9), timeout=3).close()\n"
    "except ConnectionRefusedError:\n"
    "    pass\n"
)


@dataclass
class Lan:
    lab: Lab
    scanner: Host
    server: Host
    plain: list[Host]
    port: int

    @property
    def others(self) -> list[Host]:
        return [self.server, *self.plain]


@pytest.fixture(scope="module")
def lan(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lan]:
    require_netns()
    lab = Lab.create()
    try:
        scanner = lab.add_host("scan")
        server = lab.add_host("srv")
        plain = [lab.add_host(f"h{i}") for i in range(3)]
        subprocess.run(["ip", "-n", plain[2].ns, "link", "set", "eth0", "address", APPLE_MAC],
                       check=True)
        plain[2].mac = APPLE_MAC
        port = start_server(lab, server, tmp_path_factory.mktemp("srv"), name="labchat",
                            interval=1.0)
        yield Lan(lab, scanner, server, plain, port)
    finally:
        lab.close()


def report_of(proc: subprocess.CompletedProcess[str]) -> DiscoveryReport:
    return DiscoveryReport.model_validate_json(proc.stdout)


def test_scanner_finds_the_server_every_host_and_its_interfaces(lan: Lan) -> None:
    proc = discover(lan.lab, lan.scanner, "--json", "--timeout", "3")
    assert proc.returncode == 0, proc.stderr
    report = report_of(proc)

    [server] = report.servers
    assert (server.name, server.address, server.port, server.tls, server.version) == (
        "labchat", lan.server.ip, lan.port, False, 1)
    assert server.users == 0
    assert server.server_id
    assert {"query", "mdns"} <= set(server.found_via)

    found = {h.ip: h for h in report.hosts}
    assert set(found) == {h.ip for h in lan.others}
    for host in lan.others:
        assert found[host.ip].mac == host.mac
        assert found[host.ip].source == "arp-sweep"
        assert found[host.ip].interface == "eth0"
    assert found[lan.plain[2].ip].vendor == "Apple, Inc."
    assert found[lan.plain[0].ip].vendor is None

    eth0 = next(i for i in report.interfaces if i.name == "eth0")
    assert eth0.mac == lan.scanner.mac
    assert eth0.broadcast == lan.lab.broadcast and eth0.netmask == "255.255.255.0"
    assert any(a.address == lan.scanner.ip and a.prefixlen == 24 for a in eth0.addresses)
    assert not eth0.is_default  # the lab has no default route
    assert report.notices == []
    assert proc.stderr == ""


def test_periodic_beacon_alone_finds_the_server(lan: Lan) -> None:
    # The query goes to the scanner's own loopback, where no server listens: only the
    # server's periodic beacon (every second here) can be heard.
    proc = discover(lan.lab, lan.scanner, "--json", "--no-arp", "--no-mdns",
                    "--broadcast", "127.255.255.255", "--timeout", "2.5")
    assert proc.returncode == 0, proc.stderr
    [server] = report_of(proc).servers
    assert server.found_via == ["beacon"]
    assert server.address == lan.server.ip


def test_tables_for_people(lan: Lan) -> None:
    proc = discover(lan.lab, lan.scanner, "--timeout", "2", "--no-mdns")
    assert proc.returncode == 0, proc.stderr
    for text in ("Advertised", "Discovered", "Local Interface", "labchat", lan.server.ip,
                 lan.plain[2].mac, "Apple, Inc.", lan.lab.broadcast):
        assert text in proc.stdout


def test_os_detection_with_real_nmap_reports_linux(lan: Lan) -> None:
    proc = discover(lan.lab, lan.scanner, "--json", "--os", "--no-mdns", "--subnet",
                    f"{lan.server.ip}/32")
    assert proc.returncode == 0, proc.stderr
    report = report_of(proc)
    [host] = report.hosts
    assert host.ip == lan.server.ip and host.mac == lan.server.mac
    assert host.os is not None
    assert host.os.family == "Linux" and "Linux" in host.os.name
    assert 0 < host.os.accuracy <= 100


def test_without_cap_net_raw_falls_back_to_the_neighbour_table(lan: Lan) -> None:
    lab, scanner = lan.lab, lan.scanner
    subprocess.run(["ip", "-n", scanner.ns, "neigh", "flush", "all"], check=True)
    pinged = lan.plain[:2]
    for host in pinged:  # a TCP connect to a closed port: ARP first, then a reset
        lab.run(scanner, [sys.executable, "-c", TOUCH, host.ip], check=True)
    drop = ("setpriv", "--inh-caps=-all", "--bounding-set=-net_raw", "--")
    proc = discover(lab, scanner, "--json", "--os", "--timeout", "3", prefix=drop)

    assert proc.returncode == ExitStatus.PRIVILEGE, proc.stderr
    report = report_of(proc)  # the whole report is still printed
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 2
    arp_line = next(line for line in lines if "ARP sweep" in line)
    assert "CAP_NET_RAW" in arp_line and "setcap cap_net_raw+eip" in arp_line
    assert "sudo" in arp_line and "neighbour table" in arp_line
    os_line = next(line for line in lines if "OS detection" in line)
    assert "root" in os_line and "sudo" in os_line

    found = {h.ip: h for h in report.hosts}
    for host in pinged:
        assert found[host.ip].mac == host.mac
    assert all(h.source == "neighbour-table" for h in report.hosts)
    assert lan.plain[2].ip not in found  # never contacted: proof that nothing was swept
    assert [s.address for s in report.servers] == [lan.server.ip]  # UDP needs no privilege
    assert any(i.name == "eth0" for i in report.interfaces)
    assert {n.exit_status for n in report.notices} == {0, int(ExitStatus.PRIVILEGE)}


def test_large_subnet_is_not_swept_without_confirmation(lab: Lab, tmp_path: Path) -> None:
    scanner = lab.add_host("scan")
    other = lab.add_host("peer")
    # A /16 next to the lab /24, on the lab-only interface: it must be refused, not swept.
    subprocess.run(["ip", "-n", scanner.ns, "addr", "add", "10.78.0.1/16", "dev", "eth0"],
                   check=True)
    proc = discover(lab, scanner, "--json", "--no-mdns", "--timeout", "2")
    assert proc.returncode == 0, proc.stderr
    report = report_of(proc)
    assert [h.ip for h in report.hosts] == [other.ip]  # the /24 is still swept
    [notice] = report.notices
    assert notice.source == "subnet" and "10.78.0.0/16" in notice.message
    assert "--subnet" in (notice.hint or "")
    assert "not sweeping 10.78.0.0/16" in proc.stderr

    proc = discover(lab, scanner, "--json", "--no-mdns", "--timeout", "2",
                    "--subnet", lab.network, "--interface", "eth0")
    report = report_of(proc)
    assert proc.returncode == 0 and report.notices == []
    assert [h.ip for h in report.hosts] == [other.ip]
    assert [i.name for i in report.interfaces] == ["eth0"]

    # A subnet that is not on the local link is refused: ARP cannot reach it.
    proc = discover(lab, scanner, "--json", "--no-mdns", "--timeout", "1",
                    "--subnet", "10.79.0.0/24")
    report = report_of(proc)
    assert proc.returncode == 0 and report.hosts == []
    assert ["not sweeping 10.79.0.0/24" in n.message for n in report.notices] == [True]


def test_dns_sd_alone_finds_the_server_with_its_txt_records(lan: Lan) -> None:
    # Wrong beacon port: neither beacon nor query can reach the server; only DNS-SD can.
    proc = discover(lan.lab, lan.scanner, "--json", "--no-arp", "--beacon-port", "50999",
                    "--timeout", "3")
    assert proc.returncode == 0, proc.stderr
    [server] = report_of(proc).servers
    assert server.found_via == ["mdns"]
    assert (server.name, server.address, server.port, server.tls, server.version) == (
        "labchat", lan.server.ip, lan.port, False, 1)
    assert server.server_id  # TXT id: the same identity the beacon carries
    assert server.users == 0


def test_dns_sd_and_beacon_carry_tls_and_the_fingerprint(lab: Lab, tmp_path: Path) -> None:
    scanner, server = lab.add_host("scan"), lab.add_host("srv")
    data = tmp_path / "srv"
    shown = subprocess.run([sys.executable, "-m", "richchat", "server", "--show-fingerprint",
                            "--data-dir", str(data)], env=cli_env(), capture_output=True,
                           text=True, check=True)
    fp = shown.stdout.strip()
    start_server(lab, server, data, name="secure", interval=1.0, extra=("--tls",))
    for args in (("--beacon-port", "50999"), ("--no-mdns",)):  # DNS-SD alone, UDP alone
        proc = discover(lab, scanner, "--json", "--no-arp", "--timeout", "3", *args)
        assert proc.returncode == 0, proc.stderr
        [found] = report_of(proc).servers
        assert (found.name, found.tls, found.fingerprint) == ("secure", True, fp), args


def test_large_subnet_asks_on_a_terminal(lab: Lab) -> None:
    scanner = lab.add_host("scan")
    other = lab.add_host("peer")
    subprocess.run(["ip", "-n", scanner.ns, "addr", "add", "10.78.0.1/16", "dev", "eth0"],
                   check=True)
    argv = lab.argv(scanner, [sys.executable, "-m", "richchat", "discover", "--json",
                              "--no-mdns", "--timeout", "2"])
    code, out, term = run_on_pty(argv, cli_env(), answer=b"n\n", prompt=b"Sweep 10.78.0.0/16")
    assert code == 0
    assert b"Sweep 10.78.0.0/16 (65536 addresses)?" in term
    report = DiscoveryReport.model_validate_json(out)
    assert [h.ip for h in report.hosts] == [other.ip]
    assert [n.source for n in report.notices] == ["subnet"]


def test_timeout_caps_the_sweep_and_says_so(lan: Lan) -> None:
    # 0.5 s is shorter than one sweep (it waits 0.25 s + 0.5 s for replies): cut short.
    proc = discover(lan.lab, lan.scanner, "--json", "--no-mdns", "--timeout", "0.5")
    assert proc.returncode == 0, proc.stderr
    report = report_of(proc)
    assert any("cut short by --timeout" in n.message for n in report.notices)
    assert "raise --timeout" in proc.stderr


def test_two_servers_with_one_name_stay_two(lab: Lab, tmp_path: Path) -> None:
    scanner = lab.add_host("scan")
    one, two = lab.add_host("one"), lab.add_host("two")
    start_server(lab, one, tmp_path / "one", name="twin")
    start_server(lab, two, tmp_path / "two", name="twin")
    # servers that started a moment ago may register on mDNS after discover's short mDNS
    # window: --listen keeps every listener open, DNS-SD included
    proc = discover(lab, scanner, "--json", "--no-arp", "--listen", "3", "--timeout", "6")
    assert proc.returncode == 0, proc.stderr
    servers = report_of(proc).servers
    assert sorted(s.address for s in servers) == sorted([one.ip, two.ip])
    assert len({s.server_id for s in servers}) == 2  # merged by identity, not by name
    for s in servers:
        assert s.name == "twin"
        assert {"query", "mdns"} <= set(s.found_via)


#: discover in-process, counting the ARP requests sent when the CPU-heavy starts begin
START_ORDER_PROBE = """\
import builtins, json, sys
from richchat.core.discovery import DiscoveryOptions, discover_sync, arp

sent = []
seen = {}
real_send, real_load, real_import = arp._send, arp.load_manuf, builtins.__import__

def send(raw, frame):
    sent.append(1)
    return real_send(raw, frame)

def load_manuf():
    seen.setdefault("vendors", len(sent))
    real_load()

def importing(name, *args, **kwargs):
    if name.startswith("zeroconf"):
        seen.setdefault("zeroconf", len(sent))
    return real_import(name, *args, **kwargs)

arp._send, arp.load_manuf, builtins.__import__ = send, load_manuf, importing
report = discover_sync(DiscoveryOptions(timeout=3))
builtins.__import__ = real_import
print(json.dumps({"seen": seen, "hosts": [h.ip for h in report.hosts],
                  "servers": [s.name for s in report.servers]}))
"""


def test_vendor_database_and_dns_sd_start_after_the_first_requests(lan: Lan) -> None:
    # One GIL: each send() of the sweep waits for it while another thread computes, so the
    # heavy starts (scapy's vendor database, zeroconf's import) come after the first pass
    # over the /24 (253 requests). Order, not time: the count of requests sent when each began.
    proc = lan.lab.run(lan.scanner, [sys.executable, "-c", START_ORDER_PROBE], env=cli_env(),
                       timeout=60)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.splitlines()[-1])
    assert sorted(result["hosts"]) == sorted(h.ip for h in lan.others)
    assert result["servers"] == ["labchat"]
    assert result["seen"]["zeroconf"] >= 253
    assert result["seen"]["vendors"] >= 253
