"""End to end in a real terminal: ``richchat join`` inside tmux against ``richchat server``.

Each test uses its own tmux server (``-L`` with a unique socket name) and kills only that one.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.client.servers import REPO_ROOT, ServerProcess

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux"),
]


class Tmux:
    def __init__(self) -> None:
        self.socket = f"richchat-test-{uuid.uuid4().hex[:10]}"

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["tmux", "-L", self.socket, "-f", "/dev/null", *args], capture_output=True,
                              text=True, timeout=30)

    def capture(self) -> str:
        return self.run("capture-pane", "-p", "-t", "main").stdout

    def wait_for(self, cond: Callable[[str], bool], what: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < deadline:
            screen = self.capture()
            if cond(screen):
                return screen
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}; screen:\n{screen}")

    def kill(self) -> None:
        self.run("kill-server")
        # tmux may leave its socket file behind; it is ours (unique name), remove it
        base = Path(os.environ.get("TMUX_TMPDIR", "/tmp")) / f"tmux-{os.getuid()}"
        (base / self.socket).unlink(missing_ok=True)


@pytest.fixture
def tmux() -> Iterator[Tmux]:
    session = Tmux()
    try:
        yield session
    finally:
        session.kill()


def join_command(address: str, nick: str) -> str:
    # -u COLUMNS -u LINES: under pytest the process environment has COLUMNS=80 LINES=24 (set
    # at the C level by readline, not visible in os.environ); tmux passes them on, and Textual
    # would draw 80x24 in a pane of another size.
    return " ".join(
        shlex.quote(part)
        for part in [
            "env", "-u", "COLUMNS", "-u", "LINES", f"PYTHONPATH={REPO_ROOT}",
            "TERM=xterm-256color", "NO_COLOR=",
            sys.executable, "-m", "richchat", "join", address, "--nick", nick,
        ]
    )


def test_join_in_a_real_terminal(tmux: Tmux, server_process: ServerProcess) -> None:
    command = join_command(server_process.address, "x")
    result = tmux.run("new-session", "-d", "-s", "main", "-x", "110", "-y", "30", command)
    assert result.returncode == 0, result.stderr
    tmux.wait_for(lambda s: "connected" in s and "nick: x" in s, "the chat screen")
    tmux.run("send-keys", "-t", "main", "-l", "hi [b]lit[/b]")
    tmux.run("send-keys", "-t", "main", "Enter")
    screen = tmux.wait_for(lambda s: "<x> hi [b]lit[/b]" in s, "the echo")
    assert "#lobby" in screen
    tmux.run("send-keys", "-t", "main", "-l", "/join dev")
    tmux.run("send-keys", "-t", "main", "Enter")
    tmux.wait_for(lambda s: "You joined #dev" in s, "the room")
    tmux.run("send-keys", "-t", "main", "C-c")
    deadline = time.monotonic() + 15
    while tmux.run("has-session", "-t", "main").returncode == 0:
        assert time.monotonic() < deadline, "richchat join did not exit on Ctrl+C"
        time.sleep(0.1)


def test_bracketed_paste_is_inserted_once(tmux: Tmux, server_process: ServerProcess) -> None:
    command = join_command(server_process.address, "p")
    result = tmux.run("new-session", "-d", "-s", "main", "-x", "110", "-y", "30", command)
    assert result.returncode == 0, result.stderr
    tmux.wait_for(lambda s: "connected" in s and "nick: p" in s, "the chat screen")
    assert tmux.run("set-buffer", "-b", "clip", "QXZW").returncode == 0
    # -p: a bracketed paste (the way a terminal delivers Ctrl+Shift+V), since Textual asks for it
    assert tmux.run("paste-buffer", "-p", "-b", "clip", "-t", "main").returncode == 0
    tmux.run("send-keys", "-t", "main", "Enter")
    screen = tmux.wait_for(lambda s: "<p> QXZW" in s, "the pasted line")
    assert "QXZWQXZW" not in screen


def test_a_small_terminal_keeps_the_chat(tmux: Tmux, server_process: ServerProcess) -> None:
    command = join_command(server_process.address, "tiny")
    result = tmux.run("new-session", "-d", "-s", "main", "-x", "40", "-y", "12", command)
    assert result.returncode == 0, result.stderr
    # the header keeps the nickname, the security (short: this server is plaintext) and the
    # state on 40 columns
    tmux.wait_for(lambda s: "tiny   plain   ● connected" in s.splitlines()[0], "the chat screen")
    tmux.run("send-keys", "-t", "main", "-l", "a line long enough to need wrapping here")
    tmux.run("send-keys", "-t", "main", "Enter")
    # wrapped inside the chat panel (no side panels below 70 columns), nothing cut off
    screen = tmux.wait_for(lambda s: "need wrapping" in s and "here" in s, "the wrapped line")
    assert "Conversations" not in screen
    tmux.run("resize-window", "-t", "main", "-x", "120", "-y", "30")
    # grown: the side panels come back and the line is re-wrapped onto one row
    tmux.wait_for(
        lambda s: "Conversations" in s and "<tiny> a line long enough to need wrapping here" in s,
        "the grown screen",
    )
