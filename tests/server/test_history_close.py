"""Closing the history (server shutdown) checkpoints the WAL into the database and deletes the
WAL: that checkpoint is synced like the checkpoint thread's (docs/protocol.md, "History on
disk"). Found by an exploratory pass: the loop's connection runs with synchronous=OFF, and
closed so it rewrote the database from a WAL it never synced (traced with strace)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

SCRIPT = """
import sys, time
from pathlib import Path
from richchat.core.server.storage import HistoryStore
store = HistoryStore(Path(sys.argv[1]))
time.sleep(1.5)  # let the checkpoint thread run (and sync) once
for i in range(20):
    store.add("lobby", int(time.time()), "alice", "msg", f"message {i}")
store.flush()  # committed: what clients would now see
store.close()  # right away, as a server does on SIGTERM
"""


def test_closing_the_history_syncs_what_it_checkpoints(tmp_path: Path) -> None:
    strace = shutil.which("strace")
    if strace is None:
        pytest.skip("strace is not installed (apt-get install strace)")
    db = tmp_path / "history.sqlite3"
    trace = tmp_path / "trace"
    subprocess.run(
        [strace, "-f", "-qq", "-y", "-o", str(trace), "-e",
         "trace=fsync,fdatasync,pwrite64,unlink,unlinkat",
         sys.executable, "-c", SCRIPT, str(db)],
        check=True, cwd=REPO_ROOT, timeout=60,
        env={"PYTHONPATH": str(REPO_ROOT), "PATH": "/usr/bin:/bin"},
    )
    lines = trace.read_text().splitlines()
    wal_unlinked = next(i for i, line in enumerate(lines)
                        if "unlink" in line and "history.sqlite3-wal" in line)
    # the last frames written to the WAL (the 20 messages), then the close
    last_wal_write = max(i for i, line in enumerate(lines)
                         if "pwrite64(" in line and "history.sqlite3-wal>" in line)
    synced = [line for line in lines[last_wal_write:wal_unlinked]
              if "sync(" in line and "history.sqlite3" in line]
    assert synced, "\n".join(lines[last_wal_write:wal_unlinked + 1])
