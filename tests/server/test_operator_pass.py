"""An operator's mistakes and habits (the seventh exploratory pass): odd option values, odd
data directories, signals, a netcat user's ``/topic``. Each ran the real ``richchat server``
(or the real server and a socket client) and was wrong before its fix."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
from pathlib import Path

import pytest

from richchat.core.exit_codes import ExitStatus
from richchat.core.server import ChatServer
from tests.linechat import LineClient
from tests.server.conftest import ServerFactory
from tests.serverproc import LISTEN_RE, ServerProc, internal_errors, richchat_env, server_argv


def start_or_refuse(data_dir: Path | str, *extra: str, cwd: Path | None = None) -> tuple[int, str]:
    """Start ``richchat server`` with ``extra``: (exit status, stderr) of a server that refuses
    to start; one that starts anyway is stopped and reported as status -1 (never a hang)."""
    argv = [*server_argv(Path("x"), *extra)]
    argv[argv.index("--data-dir") + 1] = str(data_dir)  # "" stays "" (Path("") is ".")
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=richchat_env(), cwd=cwd)
    assert proc.stdout is not None and proc.stderr is not None
    line = proc.stdout.readline()
    if LISTEN_RE.search(line):
        proc.terminate()
        proc.communicate(timeout=20)
        return -1, line
    _out, err = proc.communicate(timeout=60)
    return proc.returncode, err


def one_error_line(stderr: str) -> str:
    assert "Traceback" not in stderr, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: "), stderr
    return lines[0]


def test_a_retention_beyond_what_sqlite_counts_is_a_usage_error(tmp_path: Path) -> None:
    """``--retention 99999999999999999999`` (meaning "keep everything") started, then every
    1,000th message stored made the retention query overflow SQLite's integers: the whole
    batch was told ``not_stored`` ("Python int too large to convert to SQLite INTEGER") though
    it was on disk, and shown to everyone after a restart."""
    status, err = start_or_refuse(tmp_path / "data", "--retention", "99999999999999999999")
    assert status == ExitStatus.USAGE, err
    assert "--retention" in err and "less than or equal to 1000000000" in err
    assert "Traceback" not in err


def test_the_command_knows_the_configs_retention_limit() -> None:
    from richchat.commands import server as server_command
    from richchat.core.server import ServerConfig

    limits = [m.le for m in ServerConfig.model_fields["retention"].metadata if hasattr(m, "le")]
    assert limits == [server_command.MAX_RETENTION]


async def test_the_largest_retention_stores_and_relays_every_message(tmp_path: Path) -> None:
    server = ServerProc(tmp_path / "data", "--retention", "1000000000", "--flood-rate", "0")
    try:
        client = await LineClient.connect(server.port, hello="t", nick="alice")
        await client.send_numbered(1100, "x")
        await client.expect(lambda l: l.endswith("|1099 x"), timeout=30)
        assert not [l for l in client.lines if l.startswith("ERR|")]
        await client.close()
    finally:
        assert server.stop() == 0
    assert internal_errors(server.log()) == []


@pytest.mark.parametrize("rate", ["inf", "1e400", "nan"])
def test_a_flood_rate_that_is_no_number_is_a_usage_error(tmp_path: Path, rate: str) -> None:
    """``--flood-rate inf`` started, then every protocol client's welcome failed (the HELLO
    line cannot say infinity): no HELLO, a traceback per connection in the log."""
    status, err = start_or_refuse(tmp_path / "data", "--flood-rate", rate)
    assert status == ExitStatus.USAGE, err
    assert "--flood-rate" in err and "Traceback" not in err


def test_an_empty_data_dir_is_a_usage_error_not_the_current_directory(tmp_path: Path) -> None:
    """``--data-dir ""`` (``--data-dir "$DIR"`` with DIR unset) kept the history, the lock
    and the shared files in whatever directory the server was started from."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    status, err = start_or_refuse("", cwd=cwd)
    assert status == ExitStatus.USAGE, err
    assert "--data-dir" in err and "is empty" in err and "Traceback" not in err
    assert list(cwd.iterdir()) == []


def test_a_dangling_symlink_as_data_dir_is_named_as_such(tmp_path: Path) -> None:
    """A data directory that is a symbolic link to nothing (a moved disk, a typo in the link)
    was reported as "is a file, not a directory"; a link to itself too."""
    link = tmp_path / "data"
    link.symlink_to(tmp_path / "gone")
    status, err = start_or_refuse(link)
    assert status == ExitStatus.DATA_DIR, err
    assert one_error_line(err) == (
        f"error: data directory {link} is a symbolic link to {tmp_path / 'gone'}, "
        "which does not exist"
    )
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    status, err = start_or_refuse(loop)
    assert status == ExitStatus.DATA_DIR, err
    assert one_error_line(err) == f"error: data directory {loop} is a symbolic link loop"


def test_a_host_that_is_not_an_address_of_this_machine(tmp_path: Path) -> None:
    """``--host 192.0.2.1`` (an address of another machine; binding it sends nothing) exited 1,
    the status of an internal error, with asyncio's "error while attempting to bind on address
    ('192.0.2.1', 0)"; the documented status of a --host that is not this machine's is 4."""
    status, err = start_or_refuse(tmp_path / "data", "--host", "192.0.2.1")
    assert status == ExitStatus.UNKNOWN_HOST, err
    line = one_error_line(err)
    assert line.startswith("error: 192.0.2.1 is not an address of this machine"), line
    assert "attempting to bind" not in line


def test_ctrl_c_during_start_up_is_an_interrupt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                capfd: pytest.CaptureFixture[str]) -> None:
    """Ctrl+C while the server was starting (opening a big history, say) printed
    "interrupted" and exited 0, the status of a server that ran and stopped; a script could
    not tell it from a clean stop. (The KeyboardInterrupt is raised where Ctrl+C lands.)"""
    from typer.testing import CliRunner

    from richchat.cli import app

    async def interrupted(self: ChatServer) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(ChatServer, "start", interrupted)
    logger = logging.getLogger("richchat")  # the command sets its handler: put back after
    monkeypatch.setattr(logger, "handlers", list(logger.handlers))
    monkeypatch.setattr(logger, "propagate", logger.propagate)
    monkeypatch.setattr(logger, "level", logger.level)
    result = CliRunner().invoke(app, ["server", "--host", "127.0.0.1", "--port", "0",
                                      "--no-beacon", "--no-mdns", "--data-dir",
                                      str(tmp_path / "data")])
    assert result.exit_code == ExitStatus.INTERRUPTED, result.output


async def test_sighup_stops_the_server_like_sigterm(tmp_path: Path) -> None:
    """The terminal a server was started from closing (an SSH session dropped) sends SIGHUP:
    the server died on the spot; its clients read "connection lost", not that it was
    shutting down, and the log did not say it stopped."""
    server = ServerProc(tmp_path / "data")
    client = await LineClient.connect(server.port, hello="t", nick="alice")
    assert server.stop(signal.SIGHUP) == 0
    lines = await client.read_all()
    assert any("shutting down" in l for l in lines), lines
    assert "server stopped" in server.log()
    await client.close()


async def test_nohup_keeps_the_server_running_through_sighup(tmp_path: Path) -> None:
    def nohup() -> None:
        signal.signal(signal.SIGHUP, signal.SIG_IGN)

    server = ServerProc(tmp_path / "data", preexec=nohup)
    try:
        os.kill(server.pid, signal.SIGHUP)
        client = await LineClient.connect(server.port, hello="t", nick="alice")  # still serving
        await client.close()
        assert server.alive
    finally:
        assert server.stop() == 0


async def test_topic_alone_from_netcat_shows_the_topic_and_keeps_it(
    server: ChatServer,
) -> None:
    """A netcat user typing ``/topic`` (IRC's way to see it) cleared the room's topic for
    everyone ("bob set the topic of #lobby: "); the chat UI shows it and clears only with
    ``/topic --clear``."""
    alice = await LineClient.connect(server.port, hello="t", nick="alice")
    alice.send("CMD_TOPIC|lobby|standup at 10")
    await alice.expect("TOPIC|lobby|alice|standup at 10")
    bob = await LineClient.connect(server.port)
    await bob.expect(lambda l: l.startswith("*** Type a nickname"))
    bob.send("bob")
    await bob.expect(lambda l: l.startswith("*** You are bob"))
    bob.send("/topic")
    shown = await bob.expect(lambda l: "standup at 10" in l)
    assert shown == ("*** The topic of #lobby is: standup at 10 (set by alice). "
                     "/topic TEXT sets it, /topic --clear clears it.")
    bob.send("/who")  # answered after the /topic: nothing came in between
    await bob.expect(lambda l: l.startswith("*** Members of #lobby"))
    alice.send("PING|1")
    await alice.expect("PONG|1")
    assert not [l for l in alice.lines if l.startswith("TOPIC|lobby|bob")]
    bob.send("/join dev")
    await bob.expect(lambda l: l.startswith("*** Members of #dev"))
    bob.send("/topic")
    await bob.expect("*** #dev has no topic. /topic TEXT sets it, /topic --clear clears it.")
    bob.send("/topic --clear")
    bob.send("/join lobby")
    bob.send("/topic --clear")
    await alice.expect("TOPIC|lobby|bob|")
    await alice.close()
    await bob.close()


async def test_a_log_pipe_nobody_reads_does_not_stop_the_chat(tmp_path: Path) -> None:
    """stderr a pipe that is not read (a supervisor that reads stdout only, a stopped ``| tee``):
    once some 64 KiB of log had filled it, the server's next log line blocked the event loop,
    and every client waited, for good (some 330 connections in)."""
    proc = subprocess.Popen(server_argv(tmp_path / "data", "--log-level", "debug"),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=richchat_env())
    try:
        assert proc.stdout is not None
        m = LISTEN_RE.search(proc.stdout.readline().decode())
        assert m, "server did not start"
        port = int(m.group(2))
        for i in range(800):  # some 160 KiB of log
            client = await LineClient.connect(port, hello="t")
            client.send(f"CMD_USER|user{i:05d}{'x' * 10}")
            try:
                await client.expect(lambda l: l.startswith("YOU|"), timeout=30)
            finally:
                await client.close()
    finally:
        proc.terminate()
        proc.communicate(timeout=30)  # reads the pipe: the server can finish
    assert proc.returncode == 0


def test_log_records_beyond_the_waiting_lines_are_dropped_and_counted() -> None:
    import threading

    from richchat.core.logging import BackgroundHandler, OneLineFormatter

    read_end, write_end = os.pipe()
    handler = BackgroundHandler(write_end, capacity=5)
    handler.setFormatter(OneLineFormatter())
    logger = logging.getLogger("richchat.test.dropped")
    logger.propagate = False
    logger.addHandler(handler)
    try:
        for i in range(40):  # 10 KiB each: the pipe holds some 6, 5 wait, the rest go
            logger.warning("%d %s", i, "x" * 10_000)
        got = bytearray()
        reader = threading.Thread(target=lambda: got.extend(_read_until(read_end, 40)))
        reader.start()
        reader.join(timeout=60)
        text = got.decode()
        dropped = int(text.rsplit(" log record(s) dropped", 1)[0].rsplit(" ", 1)[1])
        written = [int(line.split(" ")[3]) for line in text.splitlines() if "x" * 100 in line]
        assert dropped > 0 and len(written) + dropped == 40, (written, dropped)
        assert written == sorted(written)  # in order, the dropped ones missing
        assert "stderr was not being read" in text
    finally:
        logger.removeHandler(handler)
        os.close(read_end)
        os.close(write_end)


def _read_until(fd: int, records: int) -> bytes:
    """The log lines written, up to the count of dropped ones and as many lines as were not."""
    data = b""
    while True:
        chunk = os.read(fd, 65536)
        if not chunk:
            return data
        data += chunk
        text = data.decode(errors="replace")
        if " log record(s) dropped" in text and text.endswith("\n"):
            dropped = int(text.rsplit(" log record(s) dropped", 1)[0].rsplit(" ", 1)[1])
            if sum("x" * 100 in line for line in text.splitlines()) + dropped >= records:
                return data


async def test_one_user_cannot_create_rooms_without_end(make_server: ServerFactory) -> None:
    """One client joined 3,000 rooms in 2.4 s (40,000 from a handful of netcat users): each
    room stays in memory while its member does, and every ``/rooms`` answer became one line of
    90 KB (1 MiB, past what richchat clients read as a line, at some 35,000 rooms: their
    ``/rooms`` then showed nothing). A user is in at most 100 rooms besides the lobby."""
    server = await make_server(flood_rate=0)
    alice = await LineClient.connect(server.port, hello="t", nick="alice")
    for i in range(120):
        alice.send(f"CMD_JOIN|room{i:03d}")
    alice.send("PING|done")
    await alice.expect("PONG|done")
    refused = [l for l in alice.lines if l.startswith("ERR|too_many_rooms|")]
    assert len(refused) == 20, alice.lines[-3:]
    assert refused[0] == ("ERR|too_many_rooms|you are in 100 rooms, the most one user may "
                          "join: /leave one first")
    alice.send("CMD_ROOMS|")
    rooms = await alice.expect(lambda l: l.startswith("ROOMS|"))
    assert rooms.count(",") == 100  # the lobby and 100 rooms
    alice.send("CMD_PART|room000")
    alice.send("CMD_JOIN|room119")
    await alice.expect(lambda l: l.startswith("JOIN|room119|alice"))
    await alice.close()
