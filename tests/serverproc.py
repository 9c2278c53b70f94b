"""``richchat server`` as a real process, for the model, fuzz and fault tests (issue #17).

The server runs this source tree (``PYTHONPATH``), listens on 127.0.0.1 port 0 (the port is read
back from its ``listening on`` line), announces nothing (``--no-beacon --no-mdns``), and logs to
a file (a pipe nobody reads would block a chatty server). ``prefix`` runs it under another
command (``unshare ...``, ``prlimit ...``), ``preexec`` in the child before ``exec``.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
LISTEN_RE = re.compile(r"listening on (\S+):(\d+)")


def richchat_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["NO_COLOR"] = "1"
    env.pop("RICHCHAT_DEBUG", None)
    env.update(extra)
    return env


def server_argv(data_dir: Path, *extra: str, name: str = "test") -> list[str]:
    return [sys.executable, "-m", "richchat", "server", "--host", "127.0.0.1", "--port", "0",
            "--no-beacon", "--no-mdns", "--data-dir", str(data_dir), "--name", name, *extra]


#: every ServerProc started, until it ends: a test that fails before stopping its servers
#: leaves them here, and tests/conftest.py kills them (by their handle) after the test
RUNNING: set[ServerProc] = set()


class ServerProc:
    """A running ``richchat server``; :meth:`stop` (SIGTERM), :meth:`kill` (SIGKILL)."""

    def __init__(
        self,
        data_dir: Path,
        *extra: str,
        log_dir: Path | None = None,
        prefix: Sequence[str] = (),
        preexec: Callable[[], None] | None = None,
        name: str = "test",
    ) -> None:
        self.data_dir = data_dir
        log_dir = log_dir or data_dir.parent
        log_dir.mkdir(parents=True, exist_ok=True)
        fd, log_name = tempfile.mkstemp(prefix="server-", suffix=".log", dir=log_dir)
        self.log_path = Path(log_name)
        with os.fdopen(fd, "w") as log:
            self.proc = subprocess.Popen(
                [*prefix, *server_argv(data_dir, *extra, name=name)],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log, text=True,
                env=richchat_env(), preexec_fn=preexec,
            )
        RUNNING.add(self)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        m = LISTEN_RE.search(line)
        if not m:
            self.proc.kill()
            self.proc.wait(timeout=10)
            raise AssertionError(f"server did not start: {line!r}\n{self.log()[-2000:]}")
        self.port = int(m.group(2))

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
            raise

    def kill(self) -> None:
        """``kill -9``: no chance to flush anything."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)


def internal_errors(log: str) -> list[str]:
    """Lines of a server log that show an exception the server did not expect."""
    bad = ("Traceback", "Exception in callback", "Task exception was never retrieved",
           "Unhandled exception", "Fatal error")
    return [line for line in log.splitlines() if any(b in line for b in bad)]
