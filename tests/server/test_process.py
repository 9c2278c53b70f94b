"""`richchat server` as a real process: restart and kill -9 keep history, graceful shutdown,
clear errors."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.linechat import LineClient

LISTEN_RE = re.compile(r"listening on (\S+):(\d+)")


class ServerProcess:
    def __init__(self, cli: list[str], env: dict[str, str], data_dir: Path, *extra: str) -> None:
        # stderr (the server's log) goes to a file: a pipe nobody reads would block a chatty
        # server once it is full
        data_dir.mkdir(parents=True, exist_ok=True)
        fd, log_name = tempfile.mkstemp(prefix="server-", suffix=".log", dir=data_dir)
        self.log_path = Path(log_name)
        log = os.fdopen(fd, "w")
        self.proc = subprocess.Popen(
            [
                *cli,
                "server",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--no-beacon",
                "--no-mdns",
                "--data-dir",
                str(data_dir),
                "--name",
                "proc-test",
                *extra,
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            env=env,
        )
        log.close()
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        m = LISTEN_RE.search(line)
        if not m:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"no listening line: {line!r} {self.log()[-1000:]}")
        self.port = int(m.group(2))

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise


@pytest.fixture
def spawn(cli: list[str], cli_env: dict[str, str]) -> Iterator[object]:
    procs: list[ServerProcess] = []

    def factory(data_dir: Path, *extra: str) -> ServerProcess:
        p = ServerProcess(cli, cli_env, data_dir, *extra)
        procs.append(p)
        return p

    yield factory
    for p in procs:
        if p.proc.poll() is None:
            p.proc.kill()
            p.proc.wait()


async def test_kill_9_keeps_every_relayed_message(spawn, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    srv = spawn(tmp_path)
    alice = await LineClient.connect(srv.port, hello="t", nick="alice")
    for i in range(30):
        alice.send(f"MSG|durable {i}")
    await alice.expect(lambda l: l.endswith("|alice|durable 29"))  # relayed == stored
    srv.proc.kill()  # SIGKILL: no chance to flush anything
    srv.proc.wait()
    await alice.close()
    again = spawn(tmp_path, "--history", "100")
    bob = await LineClient.connect(again.port, hello="t", nick="bob")  # history comes now
    texts = [l.rsplit("|", 1)[1] for l in bob.lines if l.startswith("RMSG|")]
    assert texts == [f"durable {i}" for i in range(30)]
    await bob.close()
    assert again.stop() == 0


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
async def test_graceful_shutdown_with_clients_connected(spawn, tmp_path: Path, sig: int) -> None:  # type: ignore[no-untyped-def]
    srv = spawn(tmp_path)
    polite = await LineClient.connect(srv.port, hello="t", nick="polite")
    raw = await LineClient.connect(srv.port)
    await raw.expect(lambda l: l.startswith("*** Type a nickname"))
    raw.send("")  # Enter: the offered guest name
    await raw.expect(lambda l: l.startswith("*** You are guest-"))
    # A client that never reads and never closes must not keep the server alive.
    hung = socket.create_connection(("127.0.0.1", srv.port))
    hung.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    hung.sendall(b"HELLO|1|t\nCMD_USER|hung\n")
    await polite.expect(lambda l: "|hung(" in l)
    loop = asyncio.get_running_loop()
    code = await loop.run_in_executor(None, srv.stop, sig)
    assert code == 0
    await polite.expect("SRV|Server is shutting down")
    assert await polite.closed()
    await raw.expect("*** Server is shutting down")
    hung.close()
    await polite.close()
    await raw.close()


def test_port_in_use_is_one_clear_line(
    cli: list[str], cli_env: dict[str, str], tmp_path: Path
) -> None:
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    port = busy.getsockname()[1]
    try:
        res = subprocess.run(
            [
                *cli,
                "server",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--no-beacon",
                "--no-mdns",
                "--data-dir",
                str(tmp_path),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
            env=cli_env,
        )
    finally:
        busy.close()
    assert res.returncode == 10  # ExitStatus.ADDRESS_IN_USE
    assert "already in use" in res.stderr
    assert "Traceback" not in res.stderr


def test_options_from_environment(cli: list[str], cli_env: dict[str, str], tmp_path: Path) -> None:
    env = dict(
        cli_env,
        RICHCHAT_HOST="127.0.0.1",
        RICHCHAT_PORT="0",
        RICHCHAT_NAME="from-env",
        RICHCHAT_BEACON="0",
        RICHCHAT_MDNS="0",
        RICHCHAT_DATA_DIR=str(tmp_path),
    )
    proc = subprocess.Popen(
        [*cli, "server"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "'from-env' listening on 127.0.0.1:" in line
        assert (tmp_path / "history.sqlite3").exists()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0


def test_bad_option_value_is_usage_error(cli: list[str], cli_env: dict[str, str]) -> None:
    res = subprocess.run(
        [*cli, "server", "--port", "70000"],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        env=cli_env,
    )
    assert res.returncode == 2
    assert "Traceback" not in res.stderr


def test_version(cli: list[str], cli_env: dict[str, str]) -> None:
    res = subprocess.run(
        [*cli, "--version"], capture_output=True, text=True, timeout=60, env=cli_env
    )
    assert res.returncode == 0
    assert re.fullmatch(r"richchat \d+\.\d+\.\d+\n", res.stdout)


def test_port_is_asked_on_a_terminal(
    cli: list[str], cli_env: dict[str, str], tmp_path: Path
) -> None:
    import os
    import pty
    import select

    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [
            *cli,
            "server",
            "--host",
            "127.0.0.1",
            "--no-beacon",
            "--no-mdns",
            "--data-dir",
            str(tmp_path),
        ],
        stdin=slave,
        stdout=slave,
        stderr=subprocess.DEVNULL,
        env=cli_env,
        close_fds=True,
    )
    os.close(slave)
    seen = b""
    try:
        while b"Port [5050]:" not in seen:
            ready, _, _ = select.select([master], [], [], 30)
            assert ready, f"no prompt; got {seen!r}"
            seen += os.read(master, 1024)
        os.write(master, b"0\n")
        while not LISTEN_RE.search(seen.decode(errors="replace")):
            ready, _, _ = select.select([master], [], [], 30)
            assert ready, f"no listening line; got {seen!r}"
            seen += os.read(master, 1024)
        m = LISTEN_RE.search(seen.decode(errors="replace"))
        assert m and int(m.group(2)) != 5050
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        os.close(master)


def test_ctrl_c_at_the_port_prompt_is_an_interrupt(cli: list[str], cli_env: dict[str, str],
                                                   tmp_path: Path) -> None:
    """Ctrl+C at the ``Port [5050]:`` prompt exits 130 (interrupted, README), not click's
    ``Aborted.`` with 1 (an unexpected error)."""
    import os
    import pty
    import select

    def as_from_a_shell() -> None:
        # A shell starts a command with SIGINT at its default and unblocked. A child inherits
        # an ignored or blocked SIGINT from the process that starts it (here the test run,
        # where an earlier test may have left it so: once in a CI run the server then sat at
        # its prompt through 20 Ctrl+C), and Python keeps an ignored SIGINT ignored.
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})

    def signal_state() -> str:
        # for the failure message: SIGINT is bit 2 of these masks
        with contextlib.suppress(OSError):
            lines = Path(f"/proc/{proc.pid}/status").read_text().splitlines()
            return " ".join(l for l in lines if l.startswith(("SigBlk", "SigIgn", "SigCgt")))
        return "(gone)"

    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [*cli, "server", "--host", "127.0.0.1", "--no-beacon", "--no-mdns",
         "--data-dir", str(tmp_path)],
        stdin=slave, stdout=slave, stderr=slave, env=cli_env, close_fds=True,
        preexec_fn=as_from_a_shell,
    )
    os.close(slave)
    seen = b""
    try:
        while b"Port [5050]:" not in seen:
            ready, _, _ = select.select([master], [], [], 30)
            assert ready, f"no prompt; got {seen!r}"
            seen += os.read(master, 1024)
        # What Ctrl+C on its terminal sends it. Sent right after the prompt appears, it may
        # land before input() blocks in read(): the flag is set, no read is interrupted, and
        # the process waits for a line. A person's Ctrl+C comes later; here, press it again
        # until the process has ended (bounded).
        state = signal_state()
        for _ in range(20):
            proc.send_signal(signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=1)
                break
        status = proc.poll()
        assert status is not None, f"20 SIGINTs and still running ({state}); got {seen!r}"
        assert status == 130, seen
        with contextlib.suppress(OSError):  # the pty ends with the process
            while select.select([master], [], [], 1)[0]:
                chunk = os.read(master, 1024)
                if not chunk:
                    break
                seen += chunk
        assert b"Aborted" not in seen and b"Traceback" not in seen, seen
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        os.close(master)
