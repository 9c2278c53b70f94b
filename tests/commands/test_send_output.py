"""``richchat send`` whose output cannot be written: the message is delivered all the same,
and the command says what went wrong with its output in one line.

Found by the tenth exploratory pass: with stdout on a full file system (``> /dev/full``) the
``--json`` document could not be written and the command said ``unexpected OSError: [Errno 28]
No space left on device (run with --debug for details)``, exit 1, as for a bug; with stdout
closed (``>&-``) ``unexpected AttributeError: 'NoneType' object has no attribute 'write'``,
exit 1, after the message was delivered."""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

import pytest

from richchat.core.exit_codes import ExitStatus
from richchat.core.protocol import frames as f
from tests.client.servers import chat_server, cli_env, next_frame, registered
from tests.commands.test_send import CLI, addr

__all__ = ["chat_server"]

FULL = Path("/dev/full")


@pytest.mark.skipif(not FULL.exists(), reason="no /dev/full on this system")
async def test_a_full_disk_for_the_json_document_is_one_line_and_exit_22(
    chat_server: object,
) -> None:
    watcher = await registered(chat_server.port, "watcher")  # type: ignore[attr-defined]
    with open(FULL, "wb") as full:
        proc = await asyncio.create_subprocess_exec(
            *CLI, "send", addr(chat_server), "--nick", "bot", "--json", "hello",
            stdin=subprocess.DEVNULL, stdout=full, stderr=subprocess.PIPE, env=cli_env(),
        )
        _, err = await asyncio.wait_for(proc.communicate(), 60)
    got = await next_frame(watcher, f.RoomMessage)
    assert isinstance(got, f.RoomMessage) and got.text == "hello"
    text = err.decode()
    assert proc.returncode == ExitStatus.FILE_ERROR, text
    assert text == "error: cannot write the output: No space left on device\n", text
    await watcher.close()


async def test_a_closed_stdout_drops_the_document_and_keeps_the_exit_status(
    chat_server: object,
) -> None:
    watcher = await registered(chat_server.port, "watcher")  # type: ignore[attr-defined]
    proc = await asyncio.create_subprocess_exec(
        *CLI, "send", addr(chat_server), "--nick", "bot", "--json", "hello",
        stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, env=cli_env(),
        preexec_fn=lambda: os.close(1),
    )
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    got = await next_frame(watcher, f.RoomMessage)
    assert isinstance(got, f.RoomMessage) and got.text == "hello"
    assert proc.returncode == 0, err.decode()
    assert err.decode() == "", err.decode()
    await watcher.close()


@pytest.mark.skipif(not FULL.exists(), reason="no /dev/full on this system")
def test_version_on_a_full_disk_is_one_line() -> None:
    with open(FULL, "wb") as full:
        res = subprocess.run([*CLI, "--version"], stdout=full, stderr=subprocess.PIPE,
                             stdin=subprocess.DEVNULL, env=cli_env(), timeout=60, check=False)
    assert res.returncode == ExitStatus.FILE_ERROR, res.stderr
    assert res.stderr.decode() == "error: cannot write the output: No space left on device\n"


@pytest.mark.skipif(not FULL.exists(), reason="no /dev/full on this system")
def test_a_failure_reported_to_a_full_disk_keeps_its_own_exit_status() -> None:
    """Found by review: ``send 127.0.0.1:1 --json hi > /dev/full`` said only that the output
    could not be written (exit 22): the refused connection, the failure itself, was hidden.
    Both are said now, the failure first, with its own exit status (3)."""
    with open(FULL, "wb") as full:
        res = subprocess.run([*CLI, "send", "127.0.0.1:1", "--nick", "bot", "--json", "hi"],
                             stdout=full, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                             env=cli_env(), timeout=60, check=False)
    err = res.stderr.decode()
    assert res.returncode == ExitStatus.CONNECTION_REFUSED, err
    assert err.startswith("error: connection refused by 127.0.0.1:1"), err
    assert err.endswith("error: cannot write the output either: No space left on device\n"), err


@pytest.mark.skipif(not FULL.exists(), reason="no /dev/full on this system")
def test_stderr_on_a_full_disk_keeps_the_exit_status() -> None:
    """Found by review: with stderr on a full disk the error line could not be written and
    the command exited 1 ('unexpected') instead of its own status."""
    with open(FULL, "wb") as full:
        res = subprocess.run([*CLI, "send", "127.0.0.1:1", "--nick", "bot", "hi"],
                             stdout=subprocess.DEVNULL, stderr=full, stdin=subprocess.DEVNULL,
                             env=cli_env(), timeout=60, check=False)
    assert res.returncode == ExitStatus.CONNECTION_REFUSED
