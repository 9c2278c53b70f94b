"""Whole-process wall time of ``richchat send`` on loopback vs a bare ``python3 -c pass``.

Starts a real ``richchat server`` on 127.0.0.1 (port 0, beacon and mDNS off), then runs each
command RUNS times (bounded) and prints the medians and the ratio as a Markdown table.

    python benchmarks/send_startup.py [--runs 15]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def timed(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, timeout=60)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    runs = max(1, min(args.runs, 200))
    env = dict(os.environ, PYTHONPATH=str(ROOT), NO_COLOR="1")
    with tempfile.TemporaryDirectory() as data:
        server = subprocess.Popen(
            [sys.executable, "-m", "richchat", "server", "--host", "127.0.0.1", "--port", "0",
             "--no-beacon", "--no-mdns", "--data-dir", data, "--name", "bench"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )
        try:
            assert server.stdout is not None
            m = re.search(r"listening on (\S+):(\d+)", server.stdout.readline())
            if not m:
                raise SystemExit("server did not start")
            port = m.group(2)
            bare: list[float] = []
            version: list[float] = []
            send: list[float] = []
            for n in range(runs):  # interleaved, so background load hits all three alike
                bare.append(timed([sys.executable, "-c", "pass"], env))
                version.append(timed([sys.executable, "-m", "richchat", "--version"], env))
                send.append(timed([sys.executable, "-m", "richchat", "send", f"127.0.0.1:{port}",
                                   "--nick", f"bench{n}", "--quiet", "benchmark line"], env))
        finally:
            server.terminate()
            server.wait(timeout=10)
    b, s = statistics.median(bare), statistics.median(send)
    v = statistics.median(version)
    print(f"| command | median wall time ({runs} runs) |")
    print("| --- | --- |")
    print(f"| `python3 -c pass` | {b * 1000:.0f} ms |")
    print(f"| `richchat --version` (CLI framework only) | {v * 1000:.0f} ms |")
    print(f"| `richchat send 127.0.0.1:PORT --nick N --quiet 'benchmark line'` | "
          f"{s * 1000:.0f} ms |")
    print(f"\nratio send / bare python: {s / b:.1f}x; send minus interpreter start-up: "
          f"{(s - b) * 1000:.0f} ms; min send {min(send) * 1000:.0f} ms, "
          f"min bare {min(bare) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
