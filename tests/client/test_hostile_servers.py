"""Hostile servers against richchat's clients: ``send``, ``scan`` and the wizard (issue #17;
the chat UI's side is tests/tui/test_hostile_server.py).

Every scenario of tests/client/hostile.py (a real process on loopback): lines of 10 MB,
invalid UTF-8, escape sequences and markup in every field, a user list of 100,000 names, a
HELLO then silence, a never-ending line, frames in the wrong order, a flood of 100,000
messages, a TLS handshake that never finishes. Whatever the server does, each client ends
within its timeouts, stays within a generous memory bound (measured: the child's peak
resident set, or this process' growth), says what went wrong in one clear line (never a
traceback), and never lets an escape sequence or markup through to the terminal.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from io import StringIO
from pathlib import Path

import pytest
from rich.console import Console

from richchat.core.client import Address
from richchat.core.exit_codes import ExitStatus
from richchat.core.wizard import Wizard
from tests.client.servers import Hostile, cli_env
from tests.memory import rss_growth, run_measured

#: a client process may use this much memory at its peak, whatever the server sends (an idle
#: `richchat send` is about 60 MB; a client that kept a 10 MB line or 100,000 frames would be
#: far over)
CHILD_MB = 150
#: what this process may grow by during one wizard step
GROWTH_MB = 60
#: escapes of every kind that must never reach a terminal
CONTROLS = ("\x1b", "\x9b", "\u009b", "\x07", "\x08")

Start = Callable[[str], Hostile]

# scenario -> exit status of `richchat send` (0: the hostile server also works, and the
# message was delivered in spite of what came with it)
SEND = {
    "huge_line": ExitStatus.OK,
    "bad_utf8": ExitStatus.OK,
    "markup": ExitStatus.OK,
    "big_userlist": ExitStatus.OK,
    "hello_silence": ExitStatus.TIMEOUT,
    "endless": ExitStatus.TIMEOUT,
    "endless_after_hello": ExitStatus.TIMEOUT,
    "wrong_order": ExitStatus.PROTOCOL,
    "disorder": ExitStatus.OK,
    "flood": ExitStatus.OK,
    "tls_silent": ExitStatus.TIMEOUT,
}


def clean(text: str) -> bool:
    return not any(c in text for c in CONTROLS)


@pytest.mark.parametrize("scenario", sorted(SEND))
def test_send(scenario: str, hostile_server: Start, tmp_path: Path) -> None:
    server = hostile_server(scenario)
    timeout = "20" if SEND[scenario] == ExitStatus.OK else "3"  # time to work, or to give up
    done = run_measured(
        [sys.executable, "-m", "richchat", "send", server.address, "--nick", "alice",
         "--timeout", timeout, "hi [bold]there[/bold]"],
        env=cli_env(), timeout=90, tmp=tmp_path,
    )
    assert done.returncode == SEND[scenario], (done.returncode, done.stderr[-800:])
    assert "Traceback" not in done.stderr
    assert clean(done.stdout) and clean(done.stderr), (done.stdout[-300:], done.stderr[-300:])
    if done.returncode:
        errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
        assert len(errors) == 1 and len(done.stderr.splitlines()) == 1, done.stderr
    assert done.max_rss_mb < CHILD_MB, f"{done.max_rss_mb:.0f} MB"


SCAN_SERVICE = {
    "huge_line": None,
    "bad_utf8": "richchat",
    "markup": "richchat",
    "big_userlist": "richchat",
    "hello_silence": "richchat",
    "endless": None,
    "endless_after_hello": "richchat",
    "wrong_order": None,
    "disorder": "richchat",
    "flood": "richchat",
    "tls_silent": None,
}


@pytest.mark.parametrize("scenario", sorted(SCAN_SERVICE))
def test_scan(scenario: str, hostile_server: Start, tmp_path: Path) -> None:
    import json

    server = hostile_server(scenario)
    argv = [sys.executable, "-m", "richchat", "scan", "127.0.0.1", "-p", str(server.port)]
    shown = run_measured(argv, env=cli_env(), timeout=90, tmp=tmp_path)
    assert shown.returncode == 0, shown.stderr[-800:]
    assert "Traceback" not in shown.stderr
    assert clean(shown.stdout) and clean(shown.stderr), shown.stdout
    assert f"{server.port}/tcp" in shown.stdout
    assert shown.max_rss_mb < CHILD_MB, f"{shown.max_rss_mb:.0f} MB"
    as_json = run_measured([*argv, "--json"], env=cli_env(), timeout=90, tmp=tmp_path)
    report = json.loads(as_json.stdout)
    (port,) = report["open"]
    assert port["service"] == SCAN_SERVICE[scenario], port
    assert port["joinable"] == (SCAN_SERVICE[scenario] == "richchat")
    assert clean(json.dumps(port, ensure_ascii=False)), port


# The wizard's steps after a server is picked: is it a chat server (check_server), and is the
# nickname free (choose_nick; it asks the server's user list). None: the step succeeds.
WIZARD_CHECK = {
    "huge_line": None,
    "bad_utf8": None,
    "markup": None,
    "big_userlist": None,
    "hello_silence": None,
    "endless": "timed out",
    "endless_after_hello": None,
    "wrong_order": "does not speak the richchat protocol",
    "disorder": None,
    "flood": None,
    "tls_silent": "timed out",
}


@pytest.mark.parametrize("scenario", sorted(WIZARD_CHECK))
def test_wizard(scenario: str, hostile_server: Start) -> None:
    server = hostile_server(scenario)
    out = StringIO()
    console = Console(file=out, width=100, force_terminal=False, no_color=True, highlight=False)
    asked: list[str] = []

    def ask(prompt: str) -> str:
        asked.append(prompt)
        return "alice" if len(asked) == 1 else "q"

    wizard = Wizard(console, ask, timeout=3)
    address = Address("127.0.0.1", server.port)
    with rss_growth() as growth:
        problem = wizard.check_server(address)
        expected = WIZARD_CHECK[scenario]
        if expected is None:
            assert problem is None, problem
            # the nickname step reads the server's user list: whatever comes, it ends with
            # a name (free, or not checkable: the chat screen asks again) and no traceback
            assert wizard.choose_nick(address, None) == "alice"
        else:
            assert problem is not None and expected in problem, problem
            assert clean(problem)
    text = out.getvalue()
    assert clean(text), text
    assert growth.mb < GROWTH_MB, f"grew {growth.mb:.0f} MB"
