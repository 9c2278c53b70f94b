"""``richchat send -`` whose stdin fails (a read error, not its end) says so and fails.

Found by the tenth exploratory pass: with stdin a TCP socket that was reset (socket
activation, ``socat``, a remote pipe), the reading thread died with ``Exception in thread
richchat-send-stdin:`` on stderr (the traceback cut off by the interpreter's exit) and the
send ended as if the input had ended: exit 0, ``"error": null``, though lines were lost."""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import subprocess

from richchat.core.exit_codes import ExitStatus
from richchat.core.protocol import frames as f
from tests.client.servers import chat_server, cli_env, next_frame, registered
from tests.commands.test_send import CLI, addr

__all__ = ["chat_server"]


async def test_a_read_error_on_stdin_is_an_error_not_the_end_of_input(
    chat_server: object,
) -> None:
    watcher = await registered(chat_server.port, "watcher")  # type: ignore[attr-defined]
    listener = socket.create_server(("127.0.0.1", 0))
    ours = socket.create_connection(listener.getsockname())
    theirs, _ = listener.accept()  # the send's stdin
    listener.close()
    proc = await asyncio.create_subprocess_exec(
        *CLI, "send", addr(chat_server), "--nick", "bot", "--json", "-",
        stdin=theirs.fileno(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=cli_env(),
    )
    theirs.close()
    try:
        ours.sendall(b"one\n")
        got = await next_frame(watcher, f.RoomMessage)
        assert isinstance(got, f.RoomMessage) and (got.name, got.text) == ("bot", "one")
        # a reset, not an end: the next read of stdin fails (ECONNRESET)
        ours.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    finally:
        ours.close()
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    text = err.decode()
    assert proc.returncode == ExitStatus.FILE_ERROR, text
    assert "Exception in thread" not in text and "Traceback" not in text, text
    assert text.count("\n") == 1 and "cannot read stdin" in text and "1 delivered" in text
    result = json.loads(out)
    assert (result["delivered"], result["exit_code"]) == (1, ExitStatus.FILE_ERROR), result
    assert "cannot read stdin" in result["error"]
    await watcher.close()
