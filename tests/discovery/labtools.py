"""Lab helpers for the discovery tests: a real ``richchat server`` inside a host namespace."""

from __future__ import annotations

import os
import re
import select
import subprocess
import sys
import time
from pathlib import Path

from tests.netlab import Host, Lab

REPO_ROOT = Path(__file__).resolve().parents[2]
LISTENING = re.compile(r"listening on (\S+):(\d+)")


def cli_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["NO_COLOR"] = "1"
    env.pop("RICHCHAT_DEBUG", None)
    return env


def start_server(lab: Lab, host: Host, data_dir: Path, *, name: str = "labchat",
                 port: int = 5050, interval: float = 1.0, mdns: bool = True,
                 beacon_port: int = 50505, extra: tuple[str, ...] = ()) -> int:
    """Start the real server in ``host`` (beacons to the lab broadcast); return its port."""
    argv = [sys.executable, "-m", "richchat", "server", "--host", "0.0.0.0", "--port", str(port),
            "--name", name, "--data-dir", str(data_dir), "--beacon-addr", lab.broadcast,
            "--beacon-port", str(beacon_port), "--beacon-interval", str(interval),
            "--mdns" if mdns else "--no-mdns", *extra]
    # the log (stderr) goes to a file beside the data directory: with DNS-SD on, the server
    # is ready for discovery once it says its service is registered (probing takes about a
    # second after the listening line; a discover run before it can miss DNS-SD)
    log_path = data_dir.with_name(data_dir.name + ".stderr.log")
    with open(log_path, "wb") as log_file:
        proc = lab.popen(host, argv, env=cli_env(), stdout=subprocess.PIPE,
                         stderr=log_file, stdin=subprocess.DEVNULL)
    assert proc.stdout is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.5)
        if ready:
            line = proc.stdout.readline().decode()
            match = LISTENING.search(line)
            if match:
                if mdns:
                    _wait_for_dns_sd(log_path, proc, deadline)
                return int(match.group(2))
            if not line and proc.poll() is not None:
                break
    raise RuntimeError(f"richchat server did not start in {host.ns} (exit {proc.poll()})")


def _wait_for_dns_sd(log_path: Path, proc: subprocess.Popen[bytes], deadline: float) -> None:
    """Wait until the server's log says its DNS-SD service is registered (or failed)."""
    while time.monotonic() < deadline and proc.poll() is None:
        text = log_path.read_text(errors="replace")
        if "DNS-SD: advertised as" in text:
            return
        if "mDNS registration failed" in text:
            raise RuntimeError(f"the lab server's DNS-SD registration failed: {text[-500:]}")
        time.sleep(0.05)
    raise RuntimeError(f"the lab server did not register its DNS-SD service (exit {proc.poll()})")


def discover(lab: Lab, host: Host, *args: str, prefix: tuple[str, ...] = (),
             timeout: float = 90) -> subprocess.CompletedProcess[str]:
    """Run ``richchat discover ARGS`` inside ``host`` (optionally behind ``prefix``, e.g.
    setpriv) and return the finished process."""
    argv = [*prefix, sys.executable, "-m", "richchat", "discover", *args]
    return lab.run(host, argv, env=cli_env(), timeout=timeout, stdin=subprocess.DEVNULL)


def run_on_pty(argv: list[str], env: dict[str, str], *, answer: bytes | None = None,
               prompt: bytes = b"?", timeout: float = 60) -> tuple[int, bytes, bytes]:
    """Run ``argv`` with stdin and stderr on a pseudo-terminal and stdout on a pipe.

    Returns (exit status, stdout, everything written to the terminal). When ``prompt`` shows up
    on the terminal, ``answer`` is typed.
    """
    import pty

    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(argv, env=env, stdin=slave, stderr=slave,
                                stdout=subprocess.PIPE, start_new_session=True)
        os.close(slave)
        slave = -1
        assert proc.stdout is not None
        term = b""
        out = b""
        answered = answer is None
        deadline = time.monotonic() + timeout
        fds = [master, proc.stdout.fileno()]
        while fds and time.monotonic() < deadline:
            ready, _, _ = select.select(fds, [], [], 0.2)
            for fd in ready:
                try:
                    chunk = os.read(fd, 65536)
                except OSError:  # EIO: the terminal's other side is closed
                    chunk = b""
                if not chunk:
                    fds.remove(fd)
                elif fd == master:
                    term += chunk
                    if not answered and prompt in term:
                        assert answer is not None
                        os.write(master, answer)
                        answered = True
                else:
                    out += chunk
            if proc.poll() is not None and proc.stdout.fileno() not in fds:
                break
        try:
            code = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait()
            raise
        return code, out, term
    finally:
        if slave >= 0:
            os.close(slave)
        os.close(master)
