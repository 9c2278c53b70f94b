"""A real ``redis-server`` for tests and benchmarks: started on a free loopback port with a
temporary directory, stopped by its PID (never by name).

AOF with ``appendfsync always``: what Redis acknowledged is on disk, so a test may stop and
restart it and find every confirmed message (the setting docs/scaling.md asks for).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"


def redis_server_binary() -> str | None:
    return shutil.which("redis-server") or (
        "/usr/bin/redis-server" if os.path.exists("/usr/bin/redis-server") else None
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


class RedisServer:
    def __init__(
        self,
        directory: Path | None = None,
        *,
        appendfsync: str = "always",
        password: str | None = None,
    ) -> None:
        exe = redis_server_binary()
        if exe is None:
            raise RuntimeError("redis-server is not installed (Debian package redis-server)")
        self.exe = exe
        self._own_dir = directory is None
        self.dir = directory or Path(tempfile.mkdtemp(prefix="richchat-redis-"))
        self.port = _free_port()
        self.appendfsync = appendfsync
        self.password = password
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, timeout: float = 15.0) -> RedisServer:
        args = [
            self.exe, "--port", str(self.port), "--bind", HOST, "--dir", str(self.dir),
            "--save", "", "--appendonly", "yes", "--appendfsync", self.appendfsync,
            "--daemonize", "no", "--logfile", str(self.dir / "redis.log"),
            "--protected-mode", "yes", "--maxclients", "10000",
        ]  # fmt: skip
        if self.password:
            args += ["--requirepass", self.password]
        self.proc = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=self.dir
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                log = (self.dir / "redis.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"redis-server exited with {self.proc.returncode}: {log}")
            if self.ping():
                return self
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"redis-server did not answer on {HOST}:{self.port}")

    def ping(self) -> bool:
        try:
            return self.command("PING") == "+PONG"
        except OSError:
            return False

    def command(self, *args: str) -> str:
        """One command in RESP; its reply as text (a simple, integer or bulk reply)."""
        commands = [("AUTH", self.password), args] if self.password else [args]
        body = "".join(
            f"*{len(c)}\r\n" + "".join(f"${len(a.encode())}\r\n{a}\r\n" for a in c)
            for c in commands
        )
        with socket.create_connection((HOST, self.port), timeout=5) as sock:
            sock.sendall(body.encode())
            reader = sock.makefile("rb")
            reply = ""
            for _ in commands:
                reply = _read_reply(reader)
            return reply

    def client_ids(self, name_prefix: str) -> list[str]:
        """Ids of the connections whose client name starts with ``name_prefix``."""
        ids = []
        for line in self.command("CLIENT", "LIST").splitlines():
            fields = dict(f.split("=", 1) for f in line.split() if "=" in f)
            if fields.get("name", "").startswith(name_prefix):
                ids.append(fields["id"])
        return ids

    def kill_clients(self, name_prefix: str) -> int:
        """``CLIENT KILL`` every connection of one node (by its client name)."""
        killed = 0
        for cid in self.client_ids(name_prefix):
            reply = self.command("CLIENT", "KILL", "ID", cid)
            killed += reply.startswith(":1")
        return killed

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM by PID (Redis writes its AOF and exits), SIGKILL if it hangs."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)

    def kill9(self) -> None:
        proc = self.proc
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)

    def cpu_seconds(self) -> float:
        with open(f"/proc/{self.pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return sum(int(x) for x in fields[11:13]) / os.sysconf("SC_CLK_TCK")

    def close(self) -> None:
        self.stop()
        if self._own_dir:
            with contextlib.suppress(OSError):
                shutil.rmtree(self.dir)


def _read_reply(reader: Any) -> str:
    line = reader.readline()
    if not line:
        raise OSError("connection closed")
    if line.startswith(b"$"):
        size = int(line[1:])
        if size < 0:
            return ""
        return str(reader.read(size + 2)[:size].decode(errors="replace"))
    return str(line.decode(errors="replace").strip())
