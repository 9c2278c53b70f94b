"""tests/memory.py measures what the child itself used, whatever the test process weighs.

Found by the sixth exploratory pass: tests/client/test_hostile_servers.py's send and scan
cases reported 153-301 MB for a ~60 MB client (over their 150 MB bound) when their pytest
worker had grown first: Linux counts into a process's peak RSS the address space it was
forked from, up to its exec. The child is now forked from a small launcher."""

from __future__ import annotations

import sys
from pathlib import Path

from tests.memory import run_measured


def test_a_fat_test_process_does_not_weigh_on_its_childs_peak(tmp_path: Path) -> None:
    ballast = b"x" * (300 * 1024 * 1024)  # touched: 300 MB resident in this process
    done = run_measured([sys.executable, "-c", "import sys; sys.stdout.write('small')"],
                        env={}, timeout=60, tmp=tmp_path)
    assert len(ballast) == 300 * 1024 * 1024
    assert (done.returncode, done.stdout) == (0, "small")
    assert done.max_rss_mb < 100, f"{done.max_rss_mb:.0f} MB"


def test_the_childs_own_peak_and_status_are_reported(tmp_path: Path) -> None:
    code = "import sys; b = b'y' * (120 * 1024 * 1024); sys.exit(3)"
    done = run_measured([sys.executable, "-c", code], env={}, timeout=60, tmp=tmp_path,
                        stdin=b"ignored")
    assert done.returncode == 3
    assert 120 < done.max_rss_mb < 250, f"{done.max_rss_mb:.0f} MB"
