"""Discovery benchmark on a namespace lab (never the real LAN).

Builds a lab of N hosts (default 20) on a private /24 behind a bridge, runs the real
``richchat server`` (UDP beacon every 5 s, default settings) in one of them, and from a separate
scanner host measures, for each round:

* time to find the advertised server (``found_after`` in the --json report: the active
  query answers at once instead of after the next beacon);
* ARP sweep time of the /24 (``durations.arp``, scapy already imported) and the time to import
  scapy, as reported by ``richchat discover --json``;
* wall time of ``arp-scan --interface eth0 --localnet`` on the same lab in the same run.

Usage (root, needs iproute2 and arp-scan):

    python benchmarks/discovery.py [--hosts 20] [--rounds 5] [--write docs/performance.md]

Bounded: at most 50 hosts and 20 rounds; the lab is removed at the end.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.discovery.labtools import cli_env, start_server  # noqa: E402
from tests.netlab import Lab, netns_available  # noqa: E402

ARP_SCAN_LINE = re.compile(r"^(\d+\.\d+\.\d+\.\d+)\s+([0-9a-f:]{17})", re.M)


def fmt(values: list[float], unit: str = "s") -> str:
    if not values:
        return "n/a"
    med = statistics.median(values)
    return f"{med:.3f} {unit} (min {min(values):.3f}, max {max(values):.3f})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=20, help="lab hosts besides the scanner")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--write", type=Path, help="replace the ## Discovery section of FILE")
    args = parser.parse_args()
    hosts = max(2, min(args.hosts, 50))
    rounds = max(1, min(args.rounds, 20))
    reason = netns_available()
    if reason:
        print(f"cannot build the lab: {reason}", file=sys.stderr)
        return 1
    if shutil.which("arp-scan") is None:
        print("arp-scan is not installed (apt install arp-scan)", file=sys.stderr)
        return 1

    lab = Lab.create()
    found_after: list[float] = []
    arp_ours: list[float] = []
    scapy_import: list[float] = []
    wall_ours: list[float] = []
    arp_scan: list[float] = []
    counts_ours: list[int] = []
    counts_arp_scan: list[int] = []
    try:
        scanner = lab.add_host("scan")
        server = lab.add_host("srv")
        for i in range(hosts - 1):
            lab.add_host(f"h{i}")
        with tempfile.TemporaryDirectory() as data:
            start_server(lab, server, Path(data), name="bench", interval=5.0, mdns=False)
            time.sleep(0.5)
            env = cli_env()
            for _ in range(rounds):
                subprocess.run(["ip", "-n", scanner.ns, "neigh", "flush", "all"], check=True)
                t0 = time.perf_counter()
                proc = lab.run(scanner, [sys.executable, "-m", "richchat", "discover", "--json",
                                         "--no-mdns", "--timeout", "3"], env=env)
                wall_ours.append(time.perf_counter() - t0)
                report = json.loads(proc.stdout)
                found_after.extend(s["found_after"] for s in report["servers"][:1])
                arp_ours.append(report["durations"]["arp"])
                scapy_import.append(report["durations"]["scapy_import"])
                counts_ours.append(len(report["hosts"]))

                subprocess.run(["ip", "-n", scanner.ns, "neigh", "flush", "all"], check=True)
                t0 = time.perf_counter()
                out = lab.run(scanner, ["arp-scan", "--interface", "eth0", "--localnet",
                                        "--quiet"]).stdout
                arp_scan.append(time.perf_counter() - t0)
                counts_arp_scan.append(len(set(ARP_SCAN_LINE.findall(out))))
    finally:
        lab.close()

    expected = hosts
    lines = [
        "## Discovery",
        "",
        f"Lab: {hosts} hosts + 1 scanner on one /24 (network namespaces + a bridge), the real "
        "`richchat server` in one host (beacon every 5 s), "
        f"{rounds} rounds, neighbour table flushed before each measurement; median (min, max).",
        "",
        "| measure | result |",
        "| --- | --- |",
        f"| time to find the advertised server (active query) | {fmt(found_after)} |",
        f"| ARP sweep of the /24, richchat (scapy already imported) | {fmt(arp_ours)} |",
        f"| scapy import before the first sweep | {fmt(scapy_import)} |",
        f"| arp-scan --localnet on the same lab (process wall time) | {fmt(arp_scan)} |",
        f"| whole `richchat discover --json --timeout 3` (process wall time) | {fmt(wall_ours)} |",
        f"| hosts found per round, richchat / arp-scan (expected {expected}) | "
        f"{min(counts_ours)}-{max(counts_ours)} / {min(counts_arp_scan)}-{max(counts_arp_scan)} |",
        "",
        "The sweep sends each address one ARP request, asks the silent ones once more after "
        "0.25 s, then waits 0.5 s for late replies; arp-scan runs with its defaults (per-host "
        "timeout, retries and bandwidth limit). The whole `discover` process lasts its "
        "`--timeout` (it keeps listening for beacons for that long) plus interpreter start-up "
        "and imports.",
        "",
        "Command (as root):",
        "",
        "```",
        f"python benchmarks/discovery.py --hosts {hosts} --rounds {rounds}"
        + (f" --write {args.write}" if args.write else ""),
        "```",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if args.write:
        write_section(args.write, text)
    return 0


def write_section(path: Path, section: str) -> None:
    """Replace (or append) the ``## Discovery`` section of ``path``."""
    old = path.read_text(encoding="utf-8") if path.exists() else "# Performance\n\n"
    pattern = re.compile(r"^## Discovery\n.*?(?=^## |\Z)", re.M | re.S)
    new = pattern.sub(lambda _m: section, old) if pattern.search(old) else (
        old.rstrip("\n") + "\n\n" + section)
    path.write_text(new, encoding="utf-8")


if __name__ == "__main__":
    raise SystemExit(main())
