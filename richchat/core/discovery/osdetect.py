"""OS detection of discovered hosts with nmap -O (python-nmap)."""

from __future__ import annotations

import os
import shutil
from typing import Any

from richchat.core.discovery.models import Notice, OsGuess
from richchat.core.exit_codes import ExitStatus


def os_detection_blocker() -> Notice | None:
    """Why nmap -O cannot run here (missing binary or privilege), or None if it can."""
    if shutil.which("nmap") is None:
        return Notice(
            source="os",
            message="OS detection skipped: the nmap program is not installed",
            hint="install nmap (e.g. sudo apt install nmap) and run again with --os",
            exit_status=int(ExitStatus.TOOL_MISSING),
        )
    from richchat.core.discovery.arp import can_open_raw_socket

    if os.geteuid() != 0 or not can_open_raw_socket():
        return Notice(
            source="os",
            message="OS detection skipped: nmap -O needs root (with CAP_NET_RAW)",
            hint="run with sudo",
            exit_status=int(ExitStatus.PRIVILEGE),
        )
    return None


def best_guess(host_result: dict[str, Any]) -> OsGuess | None:
    """The most accurate osmatch of one python-nmap host result."""
    matches = host_result.get("osmatch") or []
    best: OsGuess | None = None
    for match in matches:
        try:
            accuracy = int(match.get("accuracy", 0))
        except (TypeError, ValueError):
            continue
        classes = match.get("osclass") or []
        first = classes[0] if classes else {}
        guess = OsGuess(
            name=str(match.get("name", "unknown")),
            accuracy=max(0, min(100, accuracy)),
            family=first.get("osfamily") or None,
            vendor=first.get("vendor") or None,
        )
        if best is None or guess.accuracy > best.accuracy:
            best = guess
    return best


def nmap_arguments(timeout: float) -> str:
    """The nmap options of one OS-detection run (all its hosts in one nmap, which probes them
    in parallel) that must end within ``timeout`` seconds. ``-Pn``: the hosts answered ARP,
    nmap need not ping them again."""
    host_timeout = max(2, int(timeout) - 1)
    return f"-O --osscan-guess -n -Pn -T4 --max-os-tries 1 --host-timeout {host_timeout}s"


def detect_os(ips: list[str], timeout: float) -> dict[str, OsGuess]:
    """Run ``nmap -O`` on ``ips`` (blocking; run it in a thread). Killed after ``timeout``."""
    import nmap

    if not ips:
        return {}
    scanner = nmap.PortScanner()
    try:
        scanner.scan(hosts=" ".join(ips), arguments=nmap_arguments(timeout),
                     timeout=max(1, int(timeout)))
    except nmap.PortScannerTimeout:
        raise TimeoutError("nmap -O did not finish in time") from None
    result: dict[str, OsGuess] = {}
    for ip in scanner.all_hosts():
        guess = best_guess(scanner[ip])
        if guess is not None:
            result[ip] = guess
    return result
