"""The scanner in a namespace lab: filtered ports (nftables DROP), --syn as root and its
refusal without CAP_NET_RAW, full-range sweeps, self-connects, Ctrl+C, a tiny fd limit.

Every packet stays inside namespaces these tests create (tests/netlab.py).
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

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
    assert "Traceback" not in err


def test_concurrency_one(scan_lab: ScanLab) -> None:
    """One connect at a time still finds everything, and the RTT gets measured."""
    report = scan_lab.report(scan_lab.target.ip, "-p", f"1-300,{DROPPED}", "--concurrency", "1",
                             "--timeout", "0.3")
    assert [p.port for p in report.open] == [22]
    assert report.filtered == [DROPPED]
    assert report.closed == 299
    assert report.srtt_ms is not None


def _queued_bytes(lab: Lab, host: Host, port: int) -> int:
    """Bytes waiting unread on established connections to ``port`` inside ``host``."""
    total = 0
    for line in lab.run(host, ["cat", "/proc/net/tcp"]).stdout.splitlines()[1:]:
        fields = line.split()
        if fields[3] == "01" and int(fields[1].split(":")[1], 16) == port:
            total += int(fields[4].split(":")[1], 16)
    return total


def test_stopped_chat_server_on_the_default_port_is_still_joinable(
    lab: Lab, cli: list[str], cli_env: dict[str, str], tmp_path: Path
) -> None:
    """On richchat's default port a silent service gets the long wait for its answer: a
    server that is stopped when HELLO arrives, and resumes after the first wait, counts."""
    from richchat.core.scanner.probes import REPLY_WAIT_MIN

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
        scan = lab.popen(host, [*cli, "scan", "127.0.0.1", "-p", "5050", "--json"],
                         env=cli_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 30
        while _queued_bytes(lab, host, 5050) == 0:  # HELLO has reached the stopped server
            assert time.monotonic() < deadline, "the probe never said HELLO"
            time.sleep(0.005)
        time.sleep(REPLY_WAIT_MIN + 0.1)  # the first wait is over: resume the server
    finally:
        server.send_signal(signal.SIGCONT)
    out, err = scan.communicate(timeout=30)
    assert scan.returncode == 0, err
    report = ScanReport.model_validate_json(out)
    chat = report.port(5050)
    assert chat is not None and chat.joinable
    assert chat.richchat is not None and chat.richchat.server_name == "default-port"
