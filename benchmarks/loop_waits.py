"""Where a server's event loop thread waits in the kernel: samples the thread's state (R, S, D)
every few milliseconds for a bounded time and, while it is in uninterruptible sleep (D: disk),
its kernel stack (``/proc/PID/task/PID/stack``, readable by root only), then prints how often
each stack was seen and the longest run of D samples.

Used beside benchmarks/transfer.py (docs/performance.md, "File transfers"): it waits for a
``richchat server`` whose command line contains ``--match`` (default: the benchmark's data
directory prefix) and follows it until it exits or ``--seconds`` pass.

    python benchmarks/loop_waits.py --seconds 150 &  python benchmarks/transfer.py --rounds 1
"""

from __future__ import annotations

import argparse
import collections
import os
import time


def find(match: bytes) -> int | None:
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as fh:
                cmd = fh.read()
        except OSError:
            continue
        if b"richchat\x00server" in cmd and match in cmd:
            return int(name)
    return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=150.0, help="at most this long (all told)")
    ap.add_argument("--match", default="transfer-bench-", help="in the server's command line")
    ap.add_argument("--interval", type=float, default=0.002, help="seconds between samples")
    args = ap.parse_args()
    deadline = time.monotonic() + min(args.seconds, 3600.0)
    states: collections.Counter[str] = collections.Counter()
    stacks: collections.Counter[str] = collections.Counter()
    pid = None
    streak = longest = 0
    started = time.monotonic()
    while time.monotonic() < deadline:
        if pid is None:
            pid = find(args.match.encode())
            if pid is None:
                time.sleep(0.05)
                continue
            started = time.monotonic()
        try:
            with open(f"/proc/{pid}/task/{pid}/stat") as fh:
                state = fh.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            break  # the server exited
        states[state] += 1
        if state == "D":
            streak += 1
            longest = max(longest, streak)
            try:
                with open(f"/proc/{pid}/task/{pid}/stack") as fh:
                    frames = [line.split()[1].split("+")[0] for line in fh.read().splitlines()]
                stacks[" < ".join(frames[:14])] += 1
            except (OSError, IndexError):
                stacks["(stack unreadable: not root?)"] += 1
        else:
            streak = 0
        time.sleep(args.interval)
    samples = sum(states.values())
    period = (time.monotonic() - started) / max(1, samples)
    print(f"server {pid}: {samples} samples, one every {period * 1000:.1f} ms; states "
          f"{dict(states)}; longest run in D: {longest} samples (~{longest * period:.2f} s)")
    for stack, count in stacks.most_common(8):
        print(f"{count:6d}  {stack}")


if __name__ == "__main__":
    main()
