"""Memory measurements for tests that assert a (generous) bound: the peak resident set of a
child process, or how much this process grew during a block of code (Linux)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Finished:
    returncode: int
    stdout: str
    stderr: str
    max_rss_mb: float  # the child's peak resident set
    seconds: float


def run_measured(argv: Sequence[str], *, env: dict[str, str], timeout: float,
                 tmp: Path, stdin: bytes | None = None) -> Finished:
    """Run ``argv`` to its end (killed after ``timeout`` s: an AssertionError) and return its
    output, exit status and peak RSS (``wait4``'s rusage of that one child)."""
    out, err = tmp / f"out-{time.monotonic_ns()}", tmp / f"err-{time.monotonic_ns()}"
    with open(out, "wb") as fo, open(err, "wb") as fe:
        proc = subprocess.Popen(argv, stdout=fo, stderr=fe, env=env,
                                stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL)
        if stdin is not None:
            assert proc.stdin is not None
            proc.stdin.write(stdin)
            proc.stdin.close()
    started = time.monotonic()
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() - started > timeout:
            proc.kill()
            os.wait4(proc.pid, 0)
            proc.returncode = -9
            raise AssertionError(f"{argv} still running after {timeout} s; stderr: "
                                 f"{err.read_text(errors='replace')[-500:]!r}")
        time.sleep(0.02)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return Finished(proc.returncode, out.read_text(errors="replace"),
                    err.read_text(errors="replace"), usage.ru_maxrss / 1024,
                    time.monotonic() - started)


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


@dataclass
class Growth:
    mb: float = 0.0


@contextlib.contextmanager
def rss_growth() -> Iterator[Growth]:
    """How far this process' resident set rose above where it was at the start of the block
    (its peak: ``VmHWM`` after resetting it through ``/proc/self/clear_refs``)."""
    growth = Growth()
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    start = _status_kb("VmRSS")
    try:
        yield growth
    finally:
        growth.mb = (_status_kb("VmHWM") - start) / 1024
