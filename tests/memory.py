"""Memory measurements for tests that assert a (generous) bound: the peak resident set of a
child process, or how much this process grew during a block of code (Linux)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
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


#: Runs argv[2:] as its child and writes the child's exit status and peak RSS (kB) to the
#: file descriptor argv[1].
#: The child is forked from this small process, not from the test's: Linux counts into a
#: process's peak RSS the memory of the process it was forked from, up to its exec (exec
#: records the old address space's peak), so a child of a pytest worker that had grown to
#: 300 MB reported 300 MB whatever it used itself.
_LAUNCHER = """\
import os, sys
report = int(sys.argv[1])
os.set_inheritable(report, False)  # the command does not keep the report open
pid = os.fork()
if pid == 0:
    try:
        os.execvp(sys.argv[2], sys.argv[2:])
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
os.write(report, f"{status} {usage.ru_maxrss}".encode())
os._exit(0)
"""


def run_measured(argv: Sequence[str], *, env: dict[str, str], timeout: float,
                 tmp: Path, stdin: bytes | None = None) -> Finished:
    """Run ``argv`` to its end (killed after ``timeout`` s: an AssertionError) and return its
    output, exit status and peak RSS (``wait4``'s rusage of that one process, forked from a
    small launcher: see :data:`_LAUNCHER`)."""
    out, err = tmp / f"out-{time.monotonic_ns()}", tmp / f"err-{time.monotonic_ns()}"
    report_r, report_w = os.pipe()
    try:
        with open(out, "wb") as fo, open(err, "wb") as fe:
            proc = subprocess.Popen(
                [sys.executable, "-S", "-c", _LAUNCHER, str(report_w), *argv], stdout=fo,
                stderr=fe, env=env, pass_fds=(report_w,), start_new_session=True,
                stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            )
            if stdin is not None:
                assert proc.stdin is not None
                proc.stdin.write(stdin)
                proc.stdin.close()
    finally:
        os.close(report_w)
    started = time.monotonic()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the launcher and the command it runs
        proc.wait()
        raise AssertionError(f"{argv} still running after {timeout} s; stderr: "
                             f"{err.read_text(errors='replace')[-500:]!r}") from None
    finally:
        with os.fdopen(report_r, "rb") as fh:
            report = fh.read().decode()
    status, max_rss_kb = (int(x) for x in report.split())
    return Finished(os.waitstatus_to_exitcode(status), out.read_text(errors="replace"),
                    err.read_text(errors="replace"), max_rss_kb / 1024,
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
