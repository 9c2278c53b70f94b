"""Faults under a real ``richchat server`` process (issue #17): ``kill -9`` under load, a full
disk, a deleted or damaged history file, a read-only data directory, file descriptors
exhausted, a client stopped with SIGSTOP.

Every server here is ``python -m richchat server`` started by :class:`tests.serverproc.ServerProc`
on 127.0.0.1, port 0. Tests that need a file system of their own (a small tmpfs, a read-only
mount) run the server in a private mount namespace (``unshare -m``, as root; the mount is seen
by that process only and vanishes with it): they carry the ``netns`` marker (root) and fail in
CI (``RICHCHAT_REQUIRE_NETNS=1``) rather than skip. docs/protocol.md "Faults" says what the
server does in each case and names the test that shows it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from richchat.core.server.storage import HistoryStore
from tests.conditions import wait_until
from tests.linechat import LineClient
from tests.netlab import REQUIRE_ENV
from tests.serverproc import ServerProc, internal_errors, richchat_env, server_argv

#: generous bound of every wait on the server (a loaded 2-core CI machine)
WAIT = 30.0


# ----------------------------------------------------------------------------- helpers


def history_texts(lines: list[str], room: str = "lobby") -> list[tuple[str, str]]:
    """(name, text) of the ``RMSG`` lines of ``room``, in the order received."""
    out = []
    for line in lines:
        if line.startswith(f"RMSG|{room}|"):
            _, _, _, _, name, text = line.split("|", 5)
            out.append((name, text))
    return out


async def read_history(port: int, nick: str) -> list[tuple[str, str]]:
    """Register on the server and return the lobby's history it sends (before ``YOU|``)."""
    client = await LineClient.connect(port, hello="t", nick=nick)
    try:
        you = client.lines.index(f"YOU|{nick}")
        return history_texts(client.lines[:you])
    finally:
        await client.close()


def stop_cleanly(server: ServerProc) -> None:
    assert server.stop() == 0, server.log()[-2000:]
    assert internal_errors(server.log()) == [], server.log()[-3000:]


class Sender:
    """A hello client that sends ``count`` numbered messages, at most ``window`` of them not
    yet echoed, and records every lobby message it receives until the connection ends."""

    def __init__(self, client: LineClient, name: str, tag: str) -> None:
        self.client, self.name, self.tag = client, name, tag
        self.sent: list[str] = []
        self.seen: list[tuple[str, str]] = []  # every lobby message received, in order
        self.echoed: list[str] = []  # own messages among them
        self.ended = False
        self._progress = asyncio.Event()
        #: called with the number of lobby messages seen after each one (a fault to inject)
        self.on_seen: Callable[[int], None] = lambda n: None

    @classmethod
    async def connect(cls, port: int, name: str, tag: str) -> Sender:
        return cls(await LineClient.connect(port, hello="t", nick=name), name, tag)

    async def read(self) -> None:
        try:
            while True:
                line = await self.client.readline(timeout=60)
                for name, text in history_texts([line]):
                    self.seen.append((name, text))
                    if name == self.name:
                        self.echoed.append(text)
                    self.on_seen(len(self.seen))
                self._progress.set()
        except (EOFError, ConnectionError, OSError, asyncio.TimeoutError):
            pass
        finally:
            self.ended = True
            self._progress.set()

    async def send(self, count: int, window: int) -> None:
        for i in range(count):
            while len(self.sent) - len(self.echoed) >= window and not self.ended:
                self._progress.clear()
                await asyncio.wait_for(self._progress.wait(), WAIT)
            if self.ended:
                return
            text = f"{self.tag} {self.name} {i}"
            self.sent.append(text)
            try:
                self.client.send(f"MSG|{text}")
                await self.client.writer.drain()
            except (ConnectionError, OSError):
                return


# ----------------------------------------------------------------------------- kill -9


async def test_kill_9_under_load_five_times_loses_no_echoed_message(tmp_path: Path) -> None:
    """Three clients chat (each keeps up to 5 messages in flight) and the server is killed
    with SIGKILL while they do, then restarted on the same data directory; five times. After
    each restart the history holds every message any client had received (the echo is the
    sender's confirmation), in the order everyone received them, nothing twice; messages in
    flight at the kill are either in history or were never shown to anyone."""
    data = tmp_path / "data"
    history: list[tuple[str, str]] = []  # what the history must begin with, kept across rounds
    per_round, window, rounds = 60, 5, 5
    senders: list[Sender] = []  # those of the round before, to check against its history
    for rnd in range(rounds + 1):
        server = ServerProc(data, "--flood-rate", "0", "--history", "10000", log_dir=tmp_path)
        after = await read_history(server.port, f"check{rnd}")
        assert after[: len(history)] == history, "a restart changed older history"
        this_round = after[len(history):]
        assert len(set(this_round)) == len(this_round), "a message stored twice"
        for s in senders:
            # everything this client saw is stored, in the order it saw it
            assert this_round[: len(s.seen)] == s.seen, (s.name, len(s.seen), len(this_round))
            # its confirmed messages, counted
            stored_own = [t for n, t in this_round if n == s.name]
            assert stored_own[: len(s.echoed)] == s.echoed
            assert set(stored_own) <= set(s.sent)  # nothing invented
        assert len(this_round) >= (per_round if rnd else 0)  # at least what s0 saw
        history = after
        if rnd == rounds:
            stop_cleanly(server)
            break
        senders = [await Sender.connect(server.port, f"s{k}", f"r{rnd}") for k in range(3)]
        sent_at_kill: list[int] = []

        def kill_now(seen: int, pid: int = server.pid, senders: list[Sender] = senders,
                     sent_at_kill: list[int] = sent_at_kill) -> None:
            # a third of the round's messages have gone round: SIGKILL right here, while the
            # senders still have messages to send and some in flight
            if seen == per_round and not sent_at_kill:
                os.kill(pid, signal.SIGKILL)
                sent_at_kill.extend(len(s.sent) for s in senders)

        senders[0].on_seen = kill_now
        readers = [asyncio.create_task(s.read()) for s in senders]
        writers = [asyncio.create_task(s.send(per_round, window)) for s in senders]
        await asyncio.wait_for(asyncio.gather(*readers, *writers), WAIT)
        server.kill()  # reaps it
        for s in senders:
            await s.client.close()
        assert sum(sent_at_kill) < 3 * per_round  # killed under load


# ----------------------------------------------------------------------------- mount namespaces


@functools.cache
def _mount_ns_problem() -> str | None:
    """None if a private mount namespace with a tmpfs can be made here, else why not."""
    if not sys.platform.startswith("linux"):
        return "needs Linux"
    if os.geteuid() != 0:
        return "needs root (a private mount namespace)"
    if shutil.which("unshare") is None:
        return "needs unshare (util-linux)"
    with tempfile.TemporaryDirectory() as where:
        probe = subprocess.run(
            ["unshare", "-m", "--propagation", "private", "sh", "-c",
             'mount -t tmpfs -o size=64k tmpfs "$0" && touch "$0/x"', where],
            capture_output=True, text=True, timeout=WAIT)
        if probe.returncode != 0:
            return f"cannot mount a tmpfs in a mount namespace: {probe.stderr.strip()}"
        if os.listdir(where):  # the mount must not have been the machine's own
            return "the probe's tmpfs was visible outside its namespace"
    return None


def require_mount_ns() -> None:
    """Skip without a private mount namespace, or fail when CI requires one (as netlab)."""
    problem = _mount_ns_problem()
    if problem is None:
        return
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{REQUIRE_ENV}=1 but mount namespaces are unavailable: {problem}")
    pytest.skip(f"mount namespace unavailable: {problem}")


def in_tmpfs(mountpoint: Path, options: str) -> list[str]:
    """Command prefix: run in a private mount namespace with a tmpfs (``-o options``) on
    ``mountpoint``. Only that process sees the mount; it is gone when the process ends."""
    mountpoint.mkdir(parents=True, exist_ok=True)
    return ["unshare", "-m", "--propagation", "private", "sh", "-c",
            'mount -t tmpfs -o "$0" tmpfs "$1" && shift && exec "$@"', options, str(mountpoint)]


def seen_by(pid: int, path: Path) -> Path:
    """``path`` as the process ``pid`` sees it (inside its mount namespace)."""
    return Path(f"/proc/{pid}/root") / path.relative_to("/")


def fill(path: Path) -> None:
    """Write ``path`` until the file system is full."""
    with open(path, "wb", buffering=0) as out:
        chunk = b"\0" * 65536
        with contextlib.suppress(OSError):
            while True:
                out.write(chunk)
        with contextlib.suppress(OSError):  # the last few bytes
            while True:
                out.write(b"\0" * 512)


# ----------------------------------------------------------------------------- disk full


@pytest.mark.netns
async def test_disk_full_refuses_messages_chat_goes_on_history_resumes(tmp_path: Path) -> None:
    """The data directory on a 1 MiB tmpfs, filled up under a running server. A message that
    cannot be stored is refused: its sender gets ``ERR|not_stored|...`` and nobody else sees
    it (the choice documented in docs/protocol.md "Faults"); everything else goes on (private
    messages, topics, new clients, their history); once space returns, messages are stored
    and relayed again, and a client joining then gets exactly the confirmed ones. The server
    logs each failure in one line (no traceback), and stops cleanly."""
    require_mount_ns()
    data = tmp_path / "data"
    server = ServerProc(data, "--flood-rate", "0", "--history", "1000", log_dir=tmp_path,
                        prefix=in_tmpfs(data, "size=1m"))
    alice = await LineClient.connect(server.port, hello="t", nick="alice")
    bob = await LineClient.connect(server.port, hello="t", nick="bob")
    confirmed = [("alice", "before")]
    assert "|alice|before" in await _say(alice, "alice", "before")
    fill(seen_by(server.pid, data) / "ballast")
    assert shutil.disk_usage(seen_by(server.pid, data)).free < 4096

    refused = None
    for i in range(300):  # the WAL may still have room for a few: until one is refused
        answer = await _say(alice, "alice", f"full {i}")
        if answer.startswith("ERR|"):
            refused = (answer, f"full {i}")
            break
        confirmed.append(("alice", f"full {i}"))
    assert refused is not None, "no message was refused on a full disk"
    assert refused[0].startswith("ERR|not_stored|your message was not delivered: ")
    assert "disk is full" in refused[0]
    # chat goes on: a private message (never stored) and a topic reach bob, after which he
    # has seen every confirmed message and not the refused one
    alice.send("CMD_MSG|bob|private")
    await bob.expect(lambda line: line.startswith("PRIV|") and line.endswith("|private"))
    alice.send("CMD_TOPIC|lobby|full disk")
    await bob.expect("TOPIC|lobby|alice|full disk")
    assert history_texts(bob.lines) == confirmed
    assert await read_history(server.port, "carol") == confirmed  # new clients join

    (seen_by(server.pid, data) / "ballast").unlink()  # space returns
    for i in range(3):
        assert "|alice|" in await _say(alice, "alice", f"again {i}")
        confirmed.append(("alice", f"again {i}"))
    await bob.expect(lambda line: line.endswith("|alice|again 2"))
    assert history_texts(bob.lines) == confirmed
    assert await read_history(server.port, "dave") == confirmed
    await alice.close()
    await bob.close()
    log = server.log()
    assert "could not write history" in log and "disk is full" in log
    assert log.count("WAL checkpoint failed") <= 1
    stop_cleanly(server)


# ----------------------------------------------------------------------------- the history file


def _server_id(data: Path) -> str:
    db = sqlite3.connect(data / "history.sqlite3")
    try:
        return str(db.execute("SELECT value FROM meta WHERE key = 'server_id'").fetchone()[0])
    finally:
        db.close()


async def _say(client: LineClient, name: str, text: str) -> str:
    """Send a lobby message; return its echo (``RMSG``) or the refusal (``ERR|``)."""
    client.send(f"MSG|{text}")
    return await client.expect(
        lambda line: line.startswith("ERR|") or line.endswith(f"|{name}|{text}"), timeout=WAIT)


async def test_history_file_deleted_under_the_server(tmp_path: Path) -> None:
    """``rm history.sqlite3`` (first alone, then with its -wal and -shm) while the server runs:
    chat goes on, the server starts a new history file, and every message confirmed after the
    deletion is in it after a restart (before the fix they went to the unlinked file and were
    gone at the next start). The topic and the server's identity carry over; the old
    messages are gone, as the file is."""
    data = tmp_path / "data"
    server = ServerProc(data, "--flood-rate", "0", "--history", "1000", log_dir=tmp_path)
    alice = await LineClient.connect(server.port, hello="t", nick="alice")
    alice.send("CMD_TOPIC|lobby|kept")
    await alice.expect("TOPIC|lobby|alice|kept")
    for i in range(3):
        assert "|alice|" in await _say(alice, "alice", f"old {i}")
    server_id = _server_id(data)
    for files in (["history.sqlite3"], ["history.sqlite3", "history.sqlite3-wal",
                                        "history.sqlite3-shm"]):
        for name in files:
            (data / name).unlink()
        confirmed = []
        for i in range(3):
            echo = await _say(alice, "alice", f"after {len(files)} {i}")
            assert echo.startswith("RMSG|"), echo
            confirmed.append(("alice", f"after {len(files)} {i}"))
        assert await read_history(server.port, f"bob{len(files)}") == confirmed  # at once
    await alice.close()
    assert "was deleted under the server" in server.log()
    stop_cleanly(server)

    again = ServerProc(data, "--flood-rate", "0", "--history", "1000", log_dir=tmp_path)
    carol = await LineClient.connect(again.port, hello="t", nick="carol")
    assert history_texts(carol.lines) == confirmed
    assert "TOPIC|lobby|alice|kept" in carol.lines
    await carol.close()
    stop_cleanly(again)
    assert _server_id(data) == server_id  # discovery still knows it as the same server


def _run_server(data: Path, prefix: list[str] | None = None) -> subprocess.CompletedProcess[str]:
    """Start a server that is expected to refuse to start; its exit status and output."""
    return subprocess.run([*(prefix or []), *server_argv(data)], capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL, env=richchat_env())


def _one_line_error(res: subprocess.CompletedProcess[str]) -> str:
    assert res.stdout == ""  # no "listening on" line
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    return lines[0]


async def test_history_file_damaged_under_the_server(tmp_path: Path) -> None:
    """Garbage written over the whole history file while the server runs (same file, same
    size). SQLite works from its cache and WAL and would not notice; before the fix every
    message confirmed from then on was lost, as the next start refused the file. Now the
    server sees the header is not SQLite's before its next write, moves the damaged file aside
    (``history.sqlite3.damaged-TIME``) and starts a new one: chat goes on, confirmed messages
    survive a restart. A damaged file found at start is refused, exit 13 (DATA_DIR), in one
    line that says what to do, and never overwritten."""
    data = tmp_path / "data"
    server = ServerProc(data, "--flood-rate", "0", "--history", "1000", log_dir=tmp_path)
    alice = await LineClient.connect(server.port, hello="t", nick="alice")
    assert "|alice|" in await _say(alice, "alice", "old")
    path = data / "history.sqlite3"
    garbage = os.urandom(path.stat().st_size)
    with open(path, "r+b") as out:  # in place: the server's open file is the damaged one
        out.write(garbage)
    confirmed = []
    for i in range(3):
        assert "|alice|" in await _say(alice, "alice", f"after {i}")
        confirmed.append(("alice", f"after {i}"))
    assert await read_history(server.port, "bob") == confirmed
    await alice.close()
    stop_cleanly(server)
    assert "was damaged under the server" in server.log()
    # kept for whoever wants to save what it holds (SQLite's checkpoints may have written
    # their pages into it)
    assert len(list(data.glob("history.sqlite3.damaged-*"))) == 1

    again = ServerProc(data, "--flood-rate", "0", "--history", "1000", log_dir=tmp_path)
    assert await read_history(again.port, "carol") == confirmed
    stop_cleanly(again)

    # damaged while no server runs: the next one refuses it, and leaves it as it is
    for name in ("history.sqlite3-wal", "history.sqlite3-shm"):
        with contextlib.suppress(FileNotFoundError):
            (data / name).unlink()
    path.write_bytes(garbage)
    res = _run_server(data)
    assert res.returncode == 13, res.stderr  # ExitStatus.DATA_DIR
    line = _one_line_error(res)
    assert f"cannot use the history file {path}: file is not a database" in line
    assert "move it aside or restore a backup" in line
    assert path.read_bytes() == garbage


@pytest.mark.netns
@pytest.mark.parametrize("where", ["data dir", "missing data dir"])
async def test_read_only_data_dir_at_start(tmp_path: Path, where: str) -> None:
    """The data directory (with its history), or the directory it is to be made in, is
    read-only (a read-only bind mount in a private mount namespace: as root a chmod would not
    stop anyone). The server refuses to start: exit 13 (DATA_DIR), one line naming the
    directory and the reason, no traceback, nothing changed."""
    require_mount_ns()
    data = tmp_path / "data"
    store = HistoryStore(data / "history.sqlite3")
    store.add("lobby", 1, "alice", "msg", "kept")
    store.close()
    before = {p.name: p.read_bytes() for p in data.iterdir()}
    target = data if where == "data dir" else data / "sub"
    prefix = ["unshare", "-m", "--propagation", "private", "sh", "-c",
              'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && exec "$@"', str(data)]
    res = _run_server(target, prefix)
    assert res.returncode == 13, res.stderr
    line = _one_line_error(res)
    if where == "data dir":
        assert f"data directory {target} is not writable: Read-only file system" in line
    else:
        assert f"cannot create data directory {target}: Read-only file system" in line
    assert {p.name: p.read_bytes() for p in data.iterdir()} == before


# ----------------------------------------------------------------------------- descriptors


def _open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs Linux (prlimit, /proc)")
async def test_file_descriptors_exhausted(tmp_path: Path) -> None:
    """RLIMIT_NOFILE of the running server lowered to what it has open (``prlimit --pid``).
    New connections are refused politely: each gets ``ERR|server_full|the server is out of
    file descriptors, try later`` and is closed at once (``richchat send`` says the server is
    full, exit 14); the connected clients chat on; the log says it once, with no traceback;
    when a client leaves, the next one gets in. Before the fix asyncio's accept loop left
    them unanswered in the backlog and logged a traceback per attempt, a thousand a
    second, and more at shutdown."""
    data = tmp_path / "data"
    server = ServerProc(data, "--flood-rate", "0", log_dir=tmp_path)
    alice = await LineClient.connect(server.port, hello="t", nick="alice")
    bob = await LineClient.connect(server.port, hello="t", nick="bob")
    assert "|alice|" in await _say(alice, "alice", "before")
    limit = _open_fds(server.pid)
    subprocess.run(["prlimit", f"--pid={server.pid}", f"--nofile={limit}:{limit}"],
                   check=True, timeout=WAIT)

    refusal = "ERR|server_full|the server is out of file descriptors, try later"
    for _ in range(3):
        late = await LineClient.connect(server.port)
        assert await late.read_all(timeout=WAIT) == [refusal]
        await late.close()
    sent = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "richchat", "send", f"127.0.0.1:{server.port}", "hi",
        "--nick", "eve", stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, env=richchat_env())
    _, err = await asyncio.wait_for(sent.communicate(), 60)
    assert sent.returncode == 14, err  # ExitStatus.SERVER_FULL
    assert b"is full: the server is out of file descriptors" in err
    # the connected ones are not affected
    assert "|alice|" in await _say(alice, "alice", "during")
    await bob.expect(lambda line: line.endswith("|alice|during"))

    await bob.close()  # a descriptor comes free
    await alice.expect(lambda line: line.startswith("PART|lobby|bob"))
    await wait_until(lambda: _open_fds(server.pid) < limit, "bob's descriptor to be freed")
    carol = await LineClient.connect(server.port, hello="t", nick="carol")
    assert "YOU|carol" in carol.lines
    assert history_texts(carol.lines) == [("alice", "before"), ("alice", "during")]
    await carol.close()
    await alice.close()
    # the server logs from a thread of its own (a slow disk never stalls the chat): its lines
    # reach the file a little after what they tell of
    await wait_until(lambda: "available again" in server.log(), "the log to say so")
    log = server.log()
    assert log.count("out of file descriptors") == 1, log
    stop_cleanly(server)


OUT_OF_FDS = b"ERR|server_full|the server is out of file descriptors, try later\n"


async def _at_the_descriptor_limit(tmp_path: Path) -> tuple[ServerProc, LineClient]:
    """A server with alice connected, its RLIMIT_NOFILE lowered to what it has open."""
    server = ServerProc(tmp_path / "data", log_dir=tmp_path)
    alice = await LineClient.connect(server.port, hello="t", nick="alice")
    limit = _open_fds(server.pid)
    subprocess.run(["prlimit", f"--pid={server.pid}", f"--nofile={limit}:{limit}"],
                   check=True, timeout=WAIT)
    return server, alice


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs Linux (prlimit, /proc)")
async def test_a_refused_client_that_spoke_first_gets_the_refusal(tmp_path: Path) -> None:
    """Found in CI: out of descriptors, the server wrote the refusal and closed at once; a
    client that had already sent its HELLO (as ``richchat send`` does on connecting) was
    reset, and its asyncio stream raised "connection reset" before handing over the refusal
    it had received (``send``: exit 11, "closed the connection", instead of 14, "full").
    The server now ends its side and closes once the client has ended its own."""
    server, alice = await _at_the_descriptor_limit(tmp_path)
    refusal = OUT_OF_FDS
    for _ in range(3):
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"HELLO|1|eager\n")
        await writer.drain()
        await asyncio.sleep(0.3)  # the server's answer (and, before, its reset) is in by now
        assert await asyncio.wait_for(reader.readline(), WAIT) == refusal
        assert await asyncio.wait_for(reader.read(), WAIT) == b""  # then its end, no reset
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    assert "|alice|" in await _say(alice, "alice", "still here")
    await alice.close()
    stop_cleanly(server)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs Linux (prlimit, /proc)")
async def test_refused_clients_that_never_close_do_not_hold_up_the_others(
        tmp_path: Path) -> None:
    """Found by review: a refused connection lingering for its client's end held the one
    spare descriptor, so clients waiting behind one that never closed were refused one every
    2 s (20 clients: 40 s). The longest-lingering one is closed when the next client needs
    its descriptor: all of them get their answer at once."""
    server, alice = await _at_the_descriptor_limit(tmp_path)
    refusal = OUT_OF_FDS
    streams = [await asyncio.open_connection("127.0.0.1", server.port) for _ in range(20)]
    try:
        answers = await asyncio.wait_for(
            asyncio.gather(*(reader.readline() for reader, _ in streams)), 30)
        assert answers == [refusal] * 20
    finally:
        for _, writer in streams:
            writer.close()
    assert "|alice|" in await _say(alice, "alice", "still here")
    await alice.close()
    stop_cleanly(server)


# ----------------------------------------------------------------------------- SIGSTOP


class Netcat:
    """A real ``nc`` process connected to the server; what it receives goes to a file."""

    def __init__(self, port: int, out: Path, first: str, *options: str) -> None:
        if shutil.which("nc") is None:
            pytest.skip("needs nc (netcat-openbsd)")
        self.out = out
        with open(out, "wb") as sink:
            self.proc = subprocess.Popen(["nc", *options, "127.0.0.1", str(port)],
                                         stdin=subprocess.PIPE,
                                         stdout=sink, stderr=subprocess.DEVNULL)
        assert self.proc.stdin is not None
        self.proc.stdin.write(first.encode())
        self.proc.stdin.flush()

    def lines(self) -> list[str]:
        return self.out.read_text(errors="replace").splitlines()

    def stopped(self) -> bool:
        state = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state in ("T", "t")

    def close(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)
            self.proc.kill()
        self.proc.wait(timeout=WAIT)
        assert self.proc.stdin is not None
        with contextlib.suppress(OSError):
            self.proc.stdin.close()


@contextlib.contextmanager
def netcat(port: int, out: Path, first: str, *options: str) -> Iterator[Netcat]:
    nc = Netcat(port, out, first, *options)
    try:
        yield nc
    finally:
        nc.close()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs Linux (/proc)")
async def test_sigstopped_netcat_client_catches_up(tmp_path: Path) -> None:
    """A netcat user (a real ``nc`` process) stopped with SIGSTOP while 60 messages go by
    (about 5 KB, well under the 4 MiB a client may have queued): the others chat on, each
    message echoed and relayed at once, and a new client joins; after SIGCONT the netcat user
    gets every message, in order. (Netcat users are never pinged, so only the output limit
    could drop one: see the hello client below for a drop.)"""
    server = ServerProc(tmp_path / "data", "--flood-rate", "0", "--history", "100",
                        log_dir=tmp_path)
    alice = await LineClient.connect(server.port, hello="t", nick="alice")
    bob = await LineClient.connect(server.port, hello="t", nick="bob")
    with netcat(server.port, tmp_path / "nc.out", "zed\n") as nc:
        await alice.expect(lambda line: line.startswith("JOIN|lobby|zed("))
        os.kill(nc.proc.pid, signal.SIGSTOP)
        await wait_until(nc.stopped, "nc to stop")
        texts = [f"while stopped {i}" for i in range(60)]
        for text in texts:
            assert "|alice|" in await _say(alice, "alice", text)
            await bob.expect(lambda line, text=text: line.endswith(f"|alice|{text}"))
        assert await read_history(server.port, "carol") == [("alice", t) for t in texts]
        assert nc.stopped()
        os.kill(nc.proc.pid, signal.SIGCONT)
        await wait_until(lambda: f"alice: {texts[-1]}" in nc.lines(), "nc to catch up")
        got = [line.removeprefix("alice: ") for line in nc.lines() if line.startswith("alice: ")]
        assert got == texts
    await alice.close()
    await bob.close()
    stop_cleanly(server)


def _pong(client: LineClient) -> None:
    """Answer the PINGs ``client`` has received and not answered yet."""
    pings = [line for line in client.lines if line.startswith("PING|")]
    answered = getattr(client, "pongs", 0)
    for ping in pings[answered:]:
        client.send("PONG|" + ping.split("|", 1)[1])
    client.pongs = len(pings)  # type: ignore[attr-defined]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs Linux (/proc)")
async def test_sigstopped_hello_client_is_dropped_as_timed_out(tmp_path: Path) -> None:
    """A hello client (``nc`` speaking the protocol) stopped with SIGSTOP longer than
    ``--idle-timeout`` (2 s here, to keep the test short; the default is 300 s): it does not
    answer the server's PING, so it is dropped with the documented reason, ``timed out``
    (``PART|lobby|zed|timed out`` to the others), who chat on meanwhile. After SIGCONT it
    reads what was sent to it before the drop, exactly, and the connection's end."""
    server = ServerProc(tmp_path / "data", "--flood-rate", "0", "--idle-timeout", "2",
                        log_dir=tmp_path)
    alice = await LineClient.connect(server.port, hello="t", nick="alice")
    bob = await LineClient.connect(server.port, hello="t", nick="bob")
    with netcat(server.port, tmp_path / "nc.out", "HELLO|1|t\nCMD_USER|zed\n") as nc:
        await alice.expect(lambda line: line.startswith("JOIN|lobby|zed("))
        os.kill(nc.proc.pid, signal.SIGSTOP)
        await wait_until(nc.stopped, "nc to stop")
        i = 0
        while not any(line.startswith("PART|lobby|zed|") for line in alice.lines):
            assert i < 2000, "zed was never dropped"
            assert "|alice|" in await _say(alice, "alice", f"m{i}")
            await bob.expect(lambda line, i=i: line.endswith(f"|alice|m{i}"))
            _pong(bob)  # bob only reads: he answers the server's PING, as clients do
            i += 1
        part = next(line for line in alice.lines if line.startswith("PART|lobby|zed|"))
        assert part == "PART|lobby|zed|timed out"
        if part not in bob.lines:
            await bob.expect(part)
        before_drop = history_texts(alice.lines[: alice.lines.index(part)])
        assert "|alice|" in await _say(alice, "alice", "after the drop")
        os.kill(nc.proc.pid, signal.SIGCONT)
        assert nc.proc.stdin is not None
        nc.proc.stdin.close()  # nothing more to say: nc ends once it has read to the end
        nc.proc.wait(timeout=WAIT)
        assert history_texts(nc.lines()) == before_drop
        assert any(line.startswith("PING|") for line in nc.lines())
    await alice.close()
    await bob.close()
    stop_cleanly(server)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs Linux (/proc)")
async def test_sigstopped_netcat_client_is_dropped_when_its_queue_overflows(
    tmp_path: Path,
) -> None:
    """A netcat user (``nc -I 4096``: a small receive buffer) stopped with SIGSTOP while the
    others chat on with long messages: once more than ``--output-limit`` (64 KiB here, to
    keep the test short; the default is 4 MiB) is queued for it, it is dropped with the
    documented reason, ``output buffer overflow (client too slow)``; nobody waited for it.
    Continued, it reads a part of what was sent, in order, and the connection's end."""
    server = ServerProc(tmp_path / "data", "--flood-rate", "0", "--output-limit", "64KiB",
                        log_dir=tmp_path)
    alice = await LineClient.connect(server.port, hello="t", nick="alice")
    with netcat(server.port, tmp_path / "nc.out", "zed\n", "-I", "4096") as nc:
        await alice.expect(lambda line: line.startswith("JOIN|lobby|zed("))
        os.kill(nc.proc.pid, signal.SIGSTOP)
        await wait_until(nc.stopped, "nc to stop")
        texts: list[str] = []
        while not any(line.startswith("PART|lobby|zed|") for line in alice.lines):
            # the kernel's socket buffers take a few MB before the server queues anything
            assert len(texts) < 6000, "zed was never dropped"  # 6000 * 1.8 KB: 11 MB
            batch = [f"{len(texts) + i} " + "x" * 1800 for i in range(100)]
            for text in batch:
                alice.send(f"MSG|{text}")
            texts += batch
            last = f"|alice|{texts[-1]}"
            await alice.expect(lambda line, last=last: line.endswith(last), timeout=WAIT)
        part = next(line for line in alice.lines if line.startswith("PART|lobby|zed|"))
        assert part == "PART|lobby|zed|output buffer overflow (client too slow)"
        assert history_texts(alice.lines) == [("alice", t) for t in texts]  # nobody waited
        os.kill(nc.proc.pid, signal.SIGCONT)
        assert nc.proc.stdin is not None
        nc.proc.stdin.close()
        nc.proc.wait(timeout=WAIT)
        received = nc.out.read_text(errors="replace")
        whole = received.splitlines()[: received.count("\n")]  # the cut may end mid-line
        got = [line.removeprefix("alice: ") for line in whole if line.startswith("alice: ")]
        assert got == texts[: len(got)]  # a beginning of them, in order (the rest discarded)
        assert len(got) < len(texts)
    await alice.close()
    stop_cleanly(server)


async def test_the_event_loop_never_waits_for_the_disk_to_sync_history(tmp_path: Path) -> None:
    """The history is synced to the disk by the checkpoint thread only: the server's main (event
    loop) thread never calls fsync or fdatasync, whatever the timing of commits and
    checkpoints (with SQLite's ``synchronous=NORMAL`` the first commit after each checkpoint
    synced the WAL on the loop: while a file transfer kept the disk busy, every chat message
    waited for it). Traced with strace on the real server; the syncs the checkpoint thread does
    are counted too, so that the trace cannot be empty by mistake."""
    strace = shutil.which("strace")
    if strace is None:
        pytest.skip("strace is not installed (apt-get install strace)")
    trace = tmp_path / "syscalls"
    data = tmp_path / "data"
    server = ServerProc(data, "--flood-rate", "0", log_dir=tmp_path, prefix=[
        strace, "-f", "-qq", "-ttt", "-e", "trace=execve,fsync,fdatasync,sync_file_range",
        "-o", str(trace)])
    lines = trace.read_text().splitlines()
    # the server's main thread: the process strace started, which became python
    [main] = {line.split()[0] for line in lines if " execve(" in line and "= 0" in line}
    try:
        alice = await LineClient.connect(server.port, hello="t", nick="alice")
        chatting = time.time()
        for i in range(8):  # commits before and after several checkpoints (one a second)
            assert "|alice|" in await _say(alice, "alice", f"message {i}")
            await asyncio.sleep(0.4)
        chatted = time.time()
        await alice.close()
    finally:
        os.kill(int(main), signal.SIGTERM)  # the server itself (strace ends with it)
    assert server.proc.wait(timeout=WAIT) == 0, server.log()[-2000:]
    assert internal_errors(server.log()) == [], server.log()[-3000:]
    lines = trace.read_text().splitlines()
    # (tid, time, call) of each sync while the chat ran (start-up and shutdown may sync on
    # the loop: no one is chatting yet, or any more)
    syncs = [line.split(maxsplit=2) for line in lines if "sync" in line.split("(", 1)[0]]
    syncs = [s for s in syncs if chatting <= float(s[1]) <= chatted]
    assert syncs, "no sync traced at all: the checkpoint thread must sync the history"
    on_the_loop = [s for s in syncs if s[0] == main]
    assert on_the_loop == [], on_the_loop
    assert [text for _, text in await_history(data)] == [f"message {i}" for i in range(8)]


def await_history(data: Path) -> list[tuple[str, str]]:
    """The lobby messages stored in ``data``'s history file (read with SQLite directly)."""
    db = sqlite3.connect(data / "history.sqlite3")
    try:
        return list(db.execute("SELECT name, text FROM messages WHERE room = 'lobby' ORDER BY id"))
    finally:
        db.close()


async def test_history_file_replaced_by_another_file_under_the_server(tmp_path: Path) -> None:
    """A file that is not a database moved over the history while the server runs (``mv
    notes.txt history.sqlite3``): the server moves it aside (``history.sqlite3.damaged-TIME``,
    kept as it was) and starts a new history; chat goes on and what is confirmed after survives
    a restart. Before, SQLite could not open it, every message was refused (``not_stored``)
    until someone removed it, and the log said "starting a new one" all the same (found by an
    exploratory pass)."""
    data = tmp_path / "data"
    server = ServerProc(data, "--flood-rate", "0", "--history", "1000", log_dir=tmp_path)
    alice = await LineClient.connect(server.port, hello="t", nick="alice")
    assert "|alice|" in await _say(alice, "alice", "old")
    notes = tmp_path / "notes.txt"
    notes.write_text("these are my notes, not a chat history\n" * 100)
    os.replace(notes, data / "history.sqlite3")
    confirmed = []
    for i in range(3):
        answer = await _say(alice, "alice", f"after {i}")
        assert "|alice|" in answer, answer  # stored and relayed, not refused
        confirmed.append(("alice", f"after {i}"))
    assert await read_history(server.port, "bob") == confirmed
    await alice.close()
    stop_cleanly(server)
    assert "by a file that is not" in server.log(), server.log()
    [aside] = data.glob("history.sqlite3.damaged-*")
    assert aside.read_text() == "these are my notes, not a chat history\n" * 100

    again = ServerProc(data, "--flood-rate", "0", "--history", "1000", log_dir=tmp_path)
    assert await read_history(again.port, "carol") == confirmed
    stop_cleanly(again)
