"""``richchat send --json`` when the server refuses a message: the refused line was not
delivered, so it is not "sent but not confirmed" (``unconfirmed`` means the server may have
delivered it, and a script that retries such lines would count it as in doubt)."""

from __future__ import annotations

import asyncio
import json
import subprocess

from richchat.core.exit_codes import ExitStatus
from richchat.core.protocol import frames as f
from tests.client.servers import chat_server, cli_env, next_frame, registered
from tests.commands.test_send import CLI, addr, run_send

__all__ = ["chat_server"]


async def test_a_private_message_to_nobody_online_is_refused_not_unconfirmed(
    chat_server: object,
) -> None:
    code, out, err = await run_send(addr(chat_server), "--nick", "bot", "--to", "ghost",
                                    "--json", "hi")
    assert code == ExitStatus.ERROR, err
    result = json.loads(out)
    assert "ghost" in result["error"] and result["exit_code"] == ExitStatus.ERROR
    assert (result["delivered"], result["unconfirmed"]) == (0, 0), result
    assert "not confirmed" not in err


async def test_a_line_refused_after_others_were_delivered(chat_server: object) -> None:
    """``--to bob -``: the first line reaches bob; bob leaves; the next one is refused."""
    port = chat_server.port  # type: ignore[attr-defined]
    bob = await registered(port, "bob")
    watcher = await registered(port, "watcher")
    proc = await asyncio.create_subprocess_exec(
        *CLI, "send", addr(chat_server), "--nick", "bot", "--to", "bob", "--json", "-",
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=cli_env(),
    )
    assert proc.stdin is not None
    proc.stdin.write(b"one\n")
    await proc.stdin.drain()
    got = await next_frame(bob, f.Private)
    assert isinstance(got, f.Private) and got.text == "one"
    await bob.close()
    while True:  # the server has seen bob go
        left = await next_frame(watcher, f.UserLeft)
        if isinstance(left, f.UserLeft) and left.name == "bob":
            break
    proc.stdin.write(b"two\n")
    proc.stdin.close()
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == ExitStatus.ERROR, err
    result = json.loads(out)
    assert (result["delivered"], result["unconfirmed"]) == (1, 0), result
    assert "bob" in result["error"]
    await watcher.close()
