"""The scanner in a namespace lab: filtered ports (nftables DROP), --syn as root and its
refusal without CAP_NET_RAW, full-range sweeps, self-connects, Ctrl+C, a tiny fd limit.

Every packet stays inside namespaces these tests create (tests/netlab.py).
"""

from __future__ import annotations

import json
import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pytest

from richchat.core.exit_codes import ExitStatus
from richchat.core.scanner import ScanReport
from tests.netlab import Host, Lab

pytestmark = [pytest.mark.netns, pytest.mark.timeout(120)]

LISTENERS = (22, 4000, 40000, 65535)
DROPPED = 4001  # a listener sits behind a DROP rule: filtered, never open
CLOSED = 4002


@dataclass
class ScanLab:
    lab: Lab
    target: Host
    scanner: Host
    env: dict[str, str]
    cli: list[str]

    def scan(self, *args: str, **kw: object) -> subprocess.CompletedProcess[str]:
        return self.lab.run(self.scanner, [*self.cli, "scan", *args], env=self.env, **kw)

    def report(self, *args: str) -> ScanReport:
        proc = self.scan(*args, "--json")
        assert proc.returncode == 0, proc.stderr
        return ScanReport.model_validate_json(proc.stdout)


UNKNOWN_HOST = "no-such-host.invalid"
SCAN_UNKNOWN_HOST = (
    "import asyncio\n"
    "from richchat.core.errors import UnknownHostError\n"
    "from richchat.core.scanner import scan\n"
    "try:\n"
    f"    asyncio.run(scan({UNKNOWN_HOST!r}, [80]))\n"
    "except UnknownHostError as exc:\n"
    "    print('UnknownHostError:', exc)\n"
)


def test_unknown_host(lab: Lab, cli_env: dict[str, str]) -> None:
    # Resolved inside a lab namespace that has no route out: no DNS query can leave it.
    host = lab.add_host("resolver")
    proc = lab.run(host, [sys.executable, "-c", SCAN_UNKNOWN_HOST], env=cli_env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"UnknownHostError: cannot resolve host {UNKNOWN_HOST!r}")


def test_cli_unknown_host(lab: Lab, cli: list[str], cli_env: dict[str, str]) -> None:
    host = lab.add_host("resolver")
    proc = lab.run(host, [*cli, "scan", UNKNOWN_HOST, "-p", "80"], env=cli_env, timeout=60)
    assert proc.returncode == ExitStatus.UNKNOWN_HOST, proc.stderr
    [line] = proc.stderr.strip().splitlines()
    assert line.startswith("error: cannot resolve host") and UNKNOWN_HOST in line
    assert proc.stdout == ""


def _wait_listening(lab: Lab, host: Host, ports: set[int]) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        out = lab.run(host, ["ss", "-ltnH"]).stdout
        if ports <= {int(m) for m in re.findall(r":(\d+)\s", out)}:
            return
        time.sleep(0.05)
    pytest.fail(f"listeners {sorted(ports)} did not come up")


def _nft(lab: Lab, host: Host, *rules: str) -> None:
    for rule in rules:
        proc = lab.run(host, ["nft", rule])
        assert proc.returncode == 0, proc.stderr


@pytest.fixture
def scan_lab(lab: Lab, cli: list[str], cli_env: dict[str, str]) -> Iterator[ScanLab]:
    target = lab.add_host("target")
    scanner = lab.add_host("scanner")
    for port in (*LISTENERS, DROPPED):
        lab.popen(target, ["ncat", "-lk", "-p", str(port)],
                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _nft(
        lab, target,
        "add table inet rcscan",
        "add chain inet rcscan input { type filter hook input priority 0 ; }",
        f"add rule inet rcscan input tcp dport {DROPPED} counter drop",
    )
    _wait_listening(lab, target, {*LISTENERS, DROPPED})
    yield ScanLab(lab, target, scanner, cli_env, cli)


@pytest.mark.parametrize("method", ["connect", "syn"])
def test_open_closed_filtered(scan_lab: ScanLab, method: str) -> None:
    args = [scan_lab.target.ip, "-p", f"22,{DROPPED - 1}-{CLOSED}", "--timeout", "0.5"]
    if method == "syn":
        args.append("--syn")
    report = scan_lab.report(*args)
    assert report.method == method
    assert [p.port for p in report.open] == [22, 4000]
    assert report.filtered == [DROPPED]
    assert report.state_of(DROPPED) == "filtered"
    assert report.state_of(CLOSED) == "closed"
    assert report.closed == 1


@pytest.mark.parametrize("method", ["connect", "syn"])
def test_full_range_finds_every_listener_and_nothing_else(scan_lab: ScanLab, method: str) -> None:
    args = [scan_lab.target.ip, "-p-", "--timeout", "0.5"]
    if method == "syn":
        args.append("--syn")
    report = scan_lab.report(*args)
    assert report.ports_scanned == 65535
    assert [p.port for p in report.open] == list(LISTENERS)
    assert report.filtered == [DROPPED]
    assert report.closed == 65535 - len(LISTENERS) - 1
    assert not report.interrupted


def test_syn_refused_without_cap_net_raw(scan_lab: ScanLab) -> None:
    argv = ["setpriv", "--bounding-set", "-net_raw", "--inh-caps", "-net_raw",
            *scan_lab.cli, "scan", scan_lab.target.ip, "-p", "22", "--syn"]
    proc = scan_lab.lab.run(scan_lab.scanner, argv, env=scan_lab.env)
    assert proc.returncode == ExitStatus.PRIVILEGE, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "CAP_NET_RAW" in lines[0] and "root" in lines[0]
    assert proc.stdout == ""


def test_self_connects_on_loopback_are_not_reported(scan_lab: ScanLab) -> None:
    """With one ephemeral port, connecting to that port on loopback connects to itself."""
    lab, host = scan_lab.lab, scan_lab.scanner
    # (per network namespace; written directly so the test needs no procps)
    setting = "open('/proc/sys/net/ipv4/ip_local_port_range', 'w').write('40000 40000')"
    proc = lab.run(host, [sys.executable, "-c", setting])
    assert proc.returncode == 0, proc.stderr
    report = scan_lab.report("127.0.0.1", "-p", "39990-40010")
    assert report.open == []
    assert report.self_connects >= 1
    assert report.closed == 21


def test_tiny_fd_limit_never_runs_out(scan_lab: ScanLab) -> None:
    argv = ["prlimit", "--nofile=48:48", *scan_lab.cli, "scan", scan_lab.target.ip,
            "-p", "1-3000", "--json"]
    proc = scan_lab.lab.run(scan_lab.scanner, argv, env=scan_lab.env)
    assert proc.returncode == 0, proc.stderr
    report = ScanReport.model_validate_json(proc.stdout)
    assert [p.port for p in report.open] == [22]
    assert report.closed == 3000 - 1


def test_ctrl_c_prints_what_was_found(scan_lab: ScanLab) -> None:
    lab, target = scan_lab.lab, scan_lab.target
    _nft(lab, target, "add rule inet rcscan input tcp dport != 22 counter drop")
    proc = lab.popen(
        scan_lab.scanner, [*scan_lab.cli, "scan", target.ip, "-p-", "--json"],
        env=scan_lab.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    # Wait until the scan is visibly under way: the DROP rule has counted our SYNs.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        listing = lab.run(target, ["nft", "list", "chain", "inet", "rcscan", "input"]).stdout
        counts = [int(n) for n in re.findall(r"counter packets (\d+)", listing)]
        if sum(counts) > 100:
            break
        time.sleep(0.05)
    else:
        pytest.fail("the scan never started")
    proc.send_signal(signal.SIGINT)  # ip netns exec passes it on to the scanner
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == ExitStatus.INTERRUPTED, err
    data = json.loads(out)
    report = ScanReport.model_validate(data)
    assert report.interrupted
    assert [p.port for p in report.open] == [22]
    # only the ports with a known state count as scanned, not all that were asked for
    assert report.ports_requested == 65535
    assert report.ports_scanned == len(report.open) + report.closed + len(report.filtered)
    assert report.ports_scanned < 65535
    assert "Traceback" not in err


def test_concurrency_one(scan_lab: ScanLab) -> None:
    """One connect at a time still finds everything, and the RTT gets measured."""
    report = scan_lab.report(scan_lab.target.ip, "-p", f"1-300,{DROPPED}", "--concurrency", "1",
                             "--timeout", "0.3")
    assert [p.port for p in report.open] == [22]
    assert report.filtered == [DROPPED]
    assert report.closed == 299
    assert report.srtt_ms is not None


#: ``richchat scan`` with one probe point: it says on stderr when a probe's first wait for the
#: answer to HELLO has ended unanswered (and how long the second wait is). The long wait on the
#: default port is stretched from 1 s to 30 s, so that a server resumed at that moment answers
#: within it however busy the machine is; which ports get it is the product's own rule.
SCAN_SAYING_SECOND_WAIT = (
    "import sys\n"
    "from richchat.core.scanner import probes\n"
    "probes.REPLY_WAIT_MAX = 30.0\n"
    "_second_wait = probes._Waits.second_wait\n"
    "def second_wait(self, port):\n"
    "    wait = _second_wait(self, port)\n"
    "    sys.stderr.write(f'second wait {wait:.3f}\\n')\n"
    "    sys.stderr.flush()\n"
    "    return wait\n"
    "probes._Waits.second_wait = second_wait\n"
    "from richchat.cli import main\n"
    "sys.argv = ['richchat', *sys.argv[1:]]\n"
    "main()\n"
)


def _read_line(stream: IO[str], timeout: float) -> str:
    ready, _, _ = select.select([stream], [], [], timeout)
    return stream.readline() if ready else ""


def test_stopped_chat_server_on_the_default_port_is_still_joinable(
    lab: Lab, cli: list[str], cli_env: dict[str, str], tmp_path: Path
) -> None:
    """On richchat's default port a silent service gets the long wait for its answer: a
    server that is stopped when HELLO arrives, and resumes after the first wait, counts."""
    host = lab.add_host("chat")  # server and scanner on this namespace's own loopback
    server = lab.popen(
        host, [*cli, "server", "--host", "127.0.0.1", "--port", "5050", "--no-beacon",
               "--no-mdns", "--data-dir", str(tmp_path / "chat"), "--name", "default-port"],
        env=cli_env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    assert server.stdout is not None
    assert "listening on 127.0.0.1:5050" in server.stdout.readline()
    server.send_signal(signal.SIGSTOP)
    try:
        scan = lab.popen(host, [sys.executable, "-c", SCAN_SAYING_SECOND_WAIT, "scan",
                                "127.0.0.1", "-p", "5050", "--json"],
                         env=cli_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert scan.stderr is not None
        said = _read_line(scan.stderr, 60)  # the first wait is over, unanswered
        assert said.startswith("second wait "), f"no second wait: {said!r}"
        assert float(said.split()[2]) > 1.0, said  # the default port's long wait
    finally:
        server.send_signal(signal.SIGCONT)
    out, err = scan.communicate(timeout=60)
    assert scan.returncode == 0, err
    report = ScanReport.model_validate_json(out)
    chat = report.port(5050)
    assert chat is not None and chat.joinable
    assert chat.richchat is not None and chat.richchat.server_name == "default-port"


def test_a_host_that_went_away_has_no_open_port(lab: Lab, cli: list[str],
                                                cli_env: dict[str, str]) -> None:
    """The wizard's 'a host that disappears between discovery and join': discovery saw it,
    then its link went down. Scanning it listed 721 'open' ports (65024-65092, ... each with
    the same RTT) in the wizard, 69 of 64000-65535 with ``richchat scan``: every connect
    there fails (the neighbour entry is FAILED), nothing can be open."""
    gone = lab.add_host("gone")
    scanner = lab.add_host("scanner")
    subprocess.run(["ip", "-n", gone.ns, "link", "set", "eth0", "down"], check=True)
    proc = lab.run(scanner, [*cli, "scan", gone.ip, "-p", "64000-65535", "--json"],
                   env=cli_env)
    assert proc.returncode == 0, proc.stderr
    report = ScanReport.model_validate_json(proc.stdout)
    assert [p.port for p in report.open] == []
