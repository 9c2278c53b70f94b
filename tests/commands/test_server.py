"""``richchat server`` as a real process: every option from its environment variable, the log and
its level, ``--debug``, IPv6, and a server that keeps serving when discovery cannot start.

Each claim of the README is checked through the real command; the servers listen on loopback
(or inside a lab namespace) with beacons only to 127.255.255.255, or none.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import shlex
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pytest

from richchat.core.exit_codes import ExitStatus
from richchat.core.protocol.beacon import Announce
from richchat.core.server.storage import PRUNE_EVERY
from tests.client.servers import LISTEN_RE, REPO_ROOT
from tests.discovery.conftest import Catcher, catcher_factory, free_udp_port, open_catcher
from tests.linechat import LineClient
from tests.netlab import Host, Lab

__all__ = ["catcher_factory"]  # a fixture

LOOP_BROADCAST = "127.255.255.255"


@dataclass
class Server:
    proc: subprocess.Popen[str]
    host: str
    port: int
    log_path: Path

    def log(self) -> str:
        """What the server logged on stderr so far."""
        return self.log_path.read_text(errors="replace")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=30)


def _listening(proc: subprocess.Popen[str], log_path: Path, timeout: float = 60) -> tuple[str, int]:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    line = proc.stdout.readline() if ready else ""
    match = LISTEN_RE.search(line)
    if match is None:
        proc.kill()
        proc.wait(timeout=10)
        raise AssertionError(f"the server did not start: {line!r}\n{log_path.read_text()[-2000:]}")
    return match.group(1), int(match.group(2))


class StartServer(Protocol):
    def __call__(self, *args: str, env: dict[str, str] | None = None,
                 lab: tuple[Lab, Host] | None = None) -> Server: ...


@pytest.fixture
def start_server(cli: list[str], cli_env: dict[str, str], tmp_path: Path) -> Iterator[StartServer]:
    """``richchat server ARGS`` with ``env`` added to the environment (in a lab host if given),
    its log in a file; stopped at the end of the test."""
    servers: list[Server] = []

    def start(*args: str, env: dict[str, str] | None = None,
              lab: tuple[Lab, Host] | None = None) -> Server:
        fd, log_name = tempfile.mkstemp(prefix="server-", suffix=".log", dir=tmp_path)
        environment = {**cli_env, "COLUMNS": "200", **(env or {})}
        argv = [*cli, "server", *args]
        with open(fd, "w") as log:
            if lab is None:
                proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                        stderr=log, text=True, env=environment)
            else:
                proc = lab[0].popen(lab[1], argv, stdin=subprocess.DEVNULL,
                                    stdout=subprocess.PIPE, stderr=log, text=True,
                                    env=environment)
        host, port = _listening(proc, Path(log_name))
        server = Server(proc, host, port, Path(log_name))
        servers.append(server)
        return server

    yield start
    for server in servers:
        if server.proc.poll() is None:
            server.proc.kill()
            server.proc.wait(timeout=10)


def quiet_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """A loopback server without discovery, configured through the environment only."""
    return {"RICHCHAT_HOST": "127.0.0.1", "RICHCHAT_PORT": "0", "RICHCHAT_BEACON": "0",
            "RICHCHAT_MDNS": "0", "RICHCHAT_DATA_DIR": str(tmp_path / "data"),
            "RICHCHAT_NAME": "env-test", **extra}


LOOPBACK = ("--host", "127.0.0.1", "--port", "0", "--no-beacon", "--no-mdns")


async def _say_all(client: LineClient, nick: str, texts: list[str]) -> None:
    """Send ``texts`` in one write; return once the last one is relayed back."""
    client.send("".join(f"MSG|{t}\n" for t in texts).encode())
    await client.expect(lambda line: line.endswith(f"|{nick}|{texts[-1]}"), timeout=60)


async def _ended(client: LineClient) -> None:
    """Wait until the server has closed the connection (an end of stream, or a reset when it
    closed with our bytes unread)."""
    with contextlib.suppress(ConnectionResetError):
        await client.read_all(timeout=30)


def _history(client: LineClient) -> list[str]:
    return [line.rsplit("|", 1)[1] for line in client.lines if line.startswith("RMSG|")]


# --------------------------------------------------------------------------- history, retention


async def test_history_from_the_environment(start_server: StartServer, tmp_path: Path) -> None:
    server = start_server(env=quiet_env(tmp_path, RICHCHAT_HISTORY="2"))
    alice = await LineClient.connect(server.port, hello="t", nick="alice")
    for n in range(4):
        alice.send(f"MSG|message {n}")
        await alice.expect(lambda line, n=n: line.endswith(f"|alice|message {n}"))
    late = await LineClient.connect(server.port, hello="t", nick="late")  # history, then YOU
    assert _history(late) == ["message 2", "message 3"]  # the default (50) would send all four
    for c in (alice, late):
        await c.close()
    assert server.stop() == 0


@pytest.mark.parametrize("how", ["option", "environment"])
async def test_retention_keeps_the_newest_messages(
    start_server: StartServer, tmp_path: Path, how: str
) -> None:
    # Old rows are pruned every PRUNE_EVERY inserts: after exactly that many messages (the
    # last of them in the flush that prunes), exactly `retention` are left.
    if how == "option":
        server = start_server(*LOOPBACK, "--data-dir", str(tmp_path / "data"), "--retention", "5",
                              "--flood-rate", "0")
    else:
        server = start_server(env=quiet_env(tmp_path, RICHCHAT_RETENTION="5",
                                            RICHCHAT_FLOOD_RATE="0"))
    bulk = await LineClient.connect(server.port, hello="t", nick="bulk")
    await _say_all(bulk, "bulk", [f"m{n}" for n in range(PRUNE_EVERY)])
    late = await LineClient.connect(server.port, hello="t", nick="late")  # history, then YOU
    assert _history(late) == [f"m{n}" for n in range(PRUNE_EVERY - 5, PRUNE_EVERY)]
    for c in (bulk, late):
        await c.close()
    assert server.stop() == 0


async def test_retention_default_is_ten_thousand(start_server: StartServer, tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = start_server(*LOOPBACK, "--data-dir", str(data), "--flood-rate", "0")
    bulk = await LineClient.connect(server.port, hello="t", nick="bulk")
    batches = 10_000 // PRUNE_EVERY + 1
    for batch in range(batches):  # each batch ends with a prune (see the test above)
        first = batch * PRUNE_EVERY
        await _say_all(bulk, "bulk", [f"m{n}" for n in range(first, first + PRUNE_EVERY)])
    await bulk.close()
    assert server.stop() == 0
    db = sqlite3.connect(data / "history.sqlite3")
    try:
        count, oldest = db.execute(
            "SELECT COUNT(*), MIN(id) FROM messages WHERE room = 'lobby'").fetchone()
        (oldest_text,) = db.execute("SELECT text FROM messages WHERE id = ?", (oldest,)).fetchone()
    finally:
        db.close()
    total = batches * PRUNE_EVERY
    assert (count, oldest_text) == (10_000, f"m{total - 10_000}")


# --------------------------------------------------------------------------- limits


async def test_max_clients_from_the_environment(start_server: StartServer, tmp_path: Path) -> None:
    server = start_server(env=quiet_env(tmp_path, RICHCHAT_MAX_CLIENTS="2"))
    a = await LineClient.connect(server.port, hello="t", nick="a")
    b = await LineClient.connect(server.port, hello="t", nick="b")
    third = await LineClient.connect(server.port, hello="t")
    assert (await third.readline(timeout=30)).startswith("ERR|server_full|")
    await _ended(third)
    a.send("MSG|still two")
    await b.expect(lambda line: line.endswith("|a|still two"))
    for c in (a, b):
        await c.close()
    assert server.stop() == 0


async def test_flood_burst_from_the_environment(start_server: StartServer, tmp_path: Path) -> None:
    # HELLO and CMD_USER take two of three tokens: of ten lines at once, most are throttled
    # (the default burst of 30 would take them all at once).
    server = start_server(env=quiet_env(tmp_path, RICHCHAT_FLOOD_BURST="3"))
    talker = await LineClient.connect(server.port, hello="t", nick="talker")
    texts = [f"line {n}" for n in range(10)]
    talker.send("".join(f"MSG|{t}\n" for t in texts).encode())
    err = await talker.expect(lambda line: line.startswith("ERR|"), timeout=30)
    assert err.startswith("ERR|flood|")
    await talker.expect(lambda line: line.endswith("|talker|line 9"), timeout=60)
    assert _history(talker) == texts  # delayed, not dropped
    await talker.close()
    assert server.stop() == 0


async def test_flood_rate_zero_from_the_environment_turns_flood_control_off(
    start_server: StartServer, tmp_path: Path
) -> None:
    server = start_server(env=quiet_env(tmp_path, RICHCHAT_FLOOD_RATE="0"))
    talker = await LineClient.connect(server.port, hello="t", nick="talker")
    texts = [f"line {n}" for n in range(60)]  # twice the default burst
    await _say_all(talker, "talker", texts)
    assert _history(talker) == texts
    assert not any(line.startswith("ERR|") for line in talker.lines)
    await talker.close()
    assert server.stop() == 0


async def test_idle_timeout_from_the_environment(start_server: StartServer, tmp_path: Path) -> None:
    server = start_server(env=quiet_env(tmp_path, RICHCHAT_IDLE_TIMEOUT="1"))
    lazy = await LineClient.connect(server.port, hello="t", nick="lazy")
    await lazy.expect(lambda line: line.startswith("PING|"), timeout=30)  # after 0.5 s, not 150
    await _ended(lazy)  # never answered: dropped
    await asyncio.wait_for(asyncio.to_thread(_wait_for_log, server, "lazy: timed out"), 30)
    assert server.stop() == 0


def _wait_for_log(server: Server, text: str) -> None:
    wait_for_log(server.log, text)


def wait_for_log(read: Callable[[], str], text: str,
                 proc: subprocess.Popen[Any] | None = None) -> None:
    """Until ``text`` is in what ``read()`` returns (a server's log): at most 30 s, and never
    past the end of ``proc`` if given."""
    deadline = time.monotonic() + 30
    while text not in read():
        assert proc is None or proc.poll() is None, (f"ended ({proc.returncode}) before "
                                                     f"{text!r} was logged:\n{read()}")
        assert time.monotonic() < deadline, f"{text!r} not logged:\n{read()}"
        time.sleep(0.05)


# --------------------------------------------------------------------------- beacons


async def test_beacon_settings_from_the_environment(
    start_server: StartServer, tmp_path: Path, catcher_factory: list[Catcher]
) -> None:
    port = free_udp_port()
    listener = await open_catcher(port)
    catcher_factory.append(listener)
    server = start_server(env=quiet_env(
        tmp_path, RICHCHAT_BEACON="1", RICHCHAT_BEACON_ADDR=LOOP_BROADCAST,
        RICHCHAT_BEACON_PORT=str(port), RICHCHAT_BEACON_INTERVAL="0.2"))
    beacons = []
    # the first at start, then one every 0.2 s: three come long before the default interval
    # (5 s) could have sent the third (at 10 s)
    for _ in range(3):
        message, addr = await listener.next(Announce, timeout=9)
        assert isinstance(message, Announce)
        beacons.append((message.reason, message.name, message.port, addr[0]))
    assert beacons == [("beacon", "env-test", server.port, "127.0.0.1")] * 3
    assert server.stop() == 0


# --------------------------------------------------------------------------- logs and levels


async def test_server_logs_connects_names_and_disconnects(
    start_server: StartServer, tmp_path: Path
) -> None:
    server = start_server(*LOOPBACK, "--data-dir", str(tmp_path / "data"))
    alice = await LineClient.connect(server.port, hello="t", nick="alice")
    peer = "127.0.0.1:{}".format(alice.writer.get_extra_info("sockname")[1])
    alice.send("CMD_USER|alicia")
    await alice.expect("YOU|alicia")
    alice.send("CMD_QUIT|bye")
    await _ended(alice)
    await asyncio.to_thread(_wait_for_log, server, f"disconnect {peer} alicia: quit: bye")
    assert server.stop() == 0
    log = server.log()
    for line in (f"listening on 127.0.0.1:{server.port}", f"connect {peer}",
                 f"register {peer} as alice", "rename alice -> alicia",
                 f"disconnect {peer} alicia: quit: bye", "server stopped"):
        assert line in log, (line, log)
    assert " INFO " in log and "DEBUG" not in log


@pytest.mark.parametrize("how", ["option", "environment"])
async def test_log_level_warning_keeps_only_warnings(
    start_server: StartServer, tmp_path: Path, how: str
) -> None:
    if how == "option":
        server = start_server(*LOOPBACK, "--data-dir", str(tmp_path / "data"),
                              "--max-clients", "1", "--log-level", "warning")
    else:
        server = start_server(env=quiet_env(tmp_path, RICHCHAT_MAX_CLIENTS="1",
                                            RICHCHAT_LOG_LEVEL="warning"))
    alice = await LineClient.connect(server.port, hello="t", nick="alice")
    refused = await LineClient.connect(server.port, hello="t")
    assert (await refused.readline(timeout=30)).startswith("ERR|server_full|")
    await asyncio.to_thread(_wait_for_log, server, "server full")  # a warning is logged...
    await alice.close()
    assert server.stop() == 0
    log = server.log()
    assert "WARNING" in log
    for info in ("listening on", "connect 127.0.0.1", "register", "server stopped"):
        assert info not in log, (info, log)  # ...information is not


async def test_log_level_debug_shows_debug_lines(
    start_server: StartServer, tmp_path: Path, catcher_factory: list[Catcher]
) -> None:
    from richchat.core.protocol.beacon import Query

    port = free_udp_port()
    asker = await open_catcher(0)
    catcher_factory.append(asker)
    logs = {}
    for level in ("info", "debug"):
        server = start_server("--host", "127.0.0.1", "--port", "0", "--no-mdns",
                              "--beacon-addr", LOOP_BROADCAST, "--beacon-port", str(port),
                              "--beacon-interval", "3600", "--data-dir", str(tmp_path / level),
                              "--log-level", level)
        assert asker.transport is not None
        asker.transport.sendto(b"RCDISCO/1 {broken", ("127.0.0.1", port))  # logged at debug
        asker.send(Query(nonce=level), ("127.0.0.1", port))
        reply, _ = await asker.next(Announce)  # so the broken one has been handled
        assert isinstance(reply, Announce) and reply.nonce == level
        assert server.stop() == 0
        logs[level] = server.log()
    assert "ignoring malformed discovery datagram" in logs["debug"]
    assert "DEBUG" in logs["debug"]
    assert "ignoring malformed" not in logs["info"] and "DEBUG" not in logs["info"]


# --------------------------------------------------------------------------- errors, --debug


#: the real CLI with one server component broken on purpose: an error no code path expects
BROKEN_SERVER = """\
import sys
import richchat.core.server.app as app

def broken() -> int:
    raise RuntimeError("deliberately broken for the test")

app.raise_nofile_limit = broken
from richchat.cli import main
sys.argv = ["richchat", *sys.argv[1:]]
main()
"""


@pytest.mark.parametrize("debug", [None, "--debug", "RICHCHAT_DEBUG=1"])
def test_debug_shows_the_traceback_of_an_unexpected_error(
    cli_env: dict[str, str], tmp_path: Path, debug: str | None
) -> None:
    env = dict(cli_env)
    argv = [sys.executable, "-c", BROKEN_SERVER, "server", *LOOPBACK,
            "--data-dir", str(tmp_path / "data")]
    if debug == "--debug":
        argv.insert(3, "--debug")
    elif debug is not None:
        env["RICHCHAT_DEBUG"] = "1"
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60,
                          stdin=subprocess.DEVNULL)
    assert proc.returncode == ExitStatus.ERROR
    if debug is None:
        [line] = proc.stderr.strip().splitlines()
        assert line.startswith("error: ") and "deliberately broken" in line and "--debug" in line
        assert "Traceback" not in proc.stderr
    else:
        assert proc.stderr.startswith("Traceback (most recent call last):")
        assert "RuntimeError: deliberately broken for the test" in proc.stderr
        assert "app.py" in proc.stderr


# --------------------------------------------------------------------------- discovery trouble


async def test_server_keeps_serving_when_the_beacon_port_is_taken(
    start_server: StartServer, tmp_path: Path, cli: list[str], cli_env: dict[str, str]
) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as holder:  # no SO_REUSEPORT
        holder.bind(("0.0.0.0", 0))
        port = holder.getsockname()[1]
        server = start_server("--host", "127.0.0.1", "--port", "0", "--no-mdns",
                              "--beacon-addr", LOOP_BROADCAST, "--beacon-port", str(port),
                              "--data-dir", str(tmp_path / "data"))
        await asyncio.to_thread(_wait_for_log, server, "discovery advertising disabled")
        assert f"cannot bind the discovery port UDP {port}" in server.log()
        send = await asyncio.to_thread(
            subprocess.run, [*cli, "send", f"127.0.0.1:{server.port}", "--nick", "bot", "hi"],
            capture_output=True, text=True, env=cli_env, timeout=60)
        assert send.returncode == 0, send.stderr
        assert server.proc.poll() is None
    assert server.stop() == 0


HOLD_MDNS_PORT = (
    "import socket, sys, time\n"
    "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
    "s.bind(('0.0.0.0', 5353))\n"
    "print('held', flush=True)\n"
    "time.sleep(600)\n"
)


def test_server_keeps_serving_when_mdns_fails(
    lab: Lab, start_server: StartServer, cli: list[str], cli_env: dict[str, str], tmp_path: Path
) -> None:
    # In a lab namespace (multicast stays inside it), UDP 5353 is held without SO_REUSEPORT:
    # zeroconf cannot bind it, and the registration fails.
    host = lab.add_host("mdns")
    holder = lab.popen(host, [sys.executable, "-c", HOLD_MDNS_PORT], stdout=subprocess.PIPE,
                       stdin=subprocess.DEVNULL, text=True)
    assert holder.stdout is not None and holder.stdout.readline() == "held\n"
    server = start_server("--host", "127.0.0.1", "--port", "0", "--no-beacon", "--mdns",
                          "--data-dir", str(tmp_path / "data"), lab=(lab, host))
    _wait_for_log(server, "mDNS registration failed")
    send = lab.run(host, [*cli, "send", f"127.0.0.1:{server.port}", "--nick", "bot", "hi"],
                   env=cli_env)
    assert send.returncode == 0, send.stderr
    assert server.proc.poll() is None
    assert server.stop() == 0


# --------------------------------------------------------------------------- IPv6


def test_ipv6_wildcard_server_with_send_and_join(
    lab: Lab, start_server: StartServer, cli: list[str], cli_env: dict[str, str], tmp_path: Path
) -> None:
    # `--host ::` listens on every address: inside a lab namespace, where that is only its own.
    from tests.tui.test_tmux_e2e import Tmux

    if shutil.which("tmux") is None:
        pytest.skip("needs tmux")
    host = lab.add_host("six")
    server = start_server("--host", "::", "--port", "0", "--no-beacon", "--no-mdns",
                          "--data-dir", str(tmp_path / "data"), "--name", "v6", lab=(lab, host))
    assert server.host == "[::]"
    send = lab.run(host, [*cli, "send", f"[::1]:{server.port}", "--nick", "bot", "over six"],
                   env=cli_env)
    assert send.returncode == 0, send.stderr
    assert "sent 1 message to lobby as bot" in send.stderr

    tmux = Tmux()
    try:
        inner = ["env", f"PYTHONPATH={REPO_ROOT}", "TERM=xterm-256color", "NO_COLOR=",
                 sys.executable, "-m", "richchat", "join", f"[::1]:{server.port}", "--nick", "six"]
        command = " ".join(shlex.quote(p) for p in ["ip", "netns", "exec", host.ns, *inner])
        result = tmux.run("new-session", "-d", "-s", "main", "-x", "120", "-y", "30", command)
        assert result.returncode == 0, result.stderr
        screen = tmux.wait_for(lambda s: "nick: six" in s and "connected" in s, "the chat screen")
        assert "over six" in screen  # the history: what send delivered over IPv6
        tmux.run("send-keys", "-t", "main", "-l", "hello from six")
        tmux.run("send-keys", "-t", "main", "Enter")
        tmux.wait_for(lambda s: "<six> hello from six" in s, "the echo")
    finally:
        tmux.kill()
    assert server.stop() == 0


def test_the_listening_line_of_an_ipv6_server_is_an_address_send_accepts(
    start_server: StartServer, cli: list[str], cli_env: dict[str, str], tmp_path: Path
) -> None:
    """``listening on [::1]:PORT``: the address as ``join`` and ``send`` take it. Printed as
    ``::1:PORT`` it could not be pasted back (``send ::1:PORT`` is an unknown host)."""
    server = start_server("--host", "::1", "--port", "0", "--no-beacon", "--no-mdns",
                          "--data-dir", str(tmp_path / "data"))
    assert server.host == "[::1]"  # LISTEN_RE: what the line says before ":PORT"
    send = subprocess.run([*cli, "send", f"{server.host}:{server.port}", "--nick", "six", "hi"],
                          env=cli_env, capture_output=True, text=True, timeout=60)
    assert send.returncode == 0, send.stderr
    assert server.stop() == 0


def test_a_closed_stdout_does_not_stop_the_server(tmp_path: Path, cli: list[str],
                                                  cli_env: dict[str, str]) -> None:
    """`richchat server ... | true`: the listening line cannot be written (stdout's reader is
    gone). The server says so in its log and serves all the same, until SIGTERM (exit 0);
    before, it exited 1 with only "server stopped" in its log (from an exploratory pass)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = tmp_path / "log"
    read_end, write_end = os.pipe()
    os.close(read_end)  # nobody will ever read stdout
    with open(log, "w") as err:
        proc = subprocess.Popen(
            [*cli, "server", "--host", "127.0.0.1", "--port", str(port), "--no-beacon",
             "--no-mdns", "--data-dir", str(tmp_path / "data")],
            stdin=subprocess.DEVNULL, stdout=write_end, stderr=err, env=cli_env)
    os.close(write_end)
    try:
        wait_for_log(log.read_text, "cannot write to stdout", proc)
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"HELLO|1|t\n")
            assert sock.recv(4096).startswith(b"HELLO|")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "Traceback" not in log.read_text()
