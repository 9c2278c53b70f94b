"""``richchat send`` with awkward input: bytes that are not UTF-8, over-long stdin lines,
conflicting options, a full server, Ctrl+C. A real subprocess against a real server."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess
import sys
from pathlib import Path

from richchat.core.exit_codes import ExitStatus
from richchat.core.protocol import frames as f
from richchat.core.protocol.text import MAX_MESSAGE_BYTES
from tests.client.servers import chat_server, cli_env, next_frame, registered

__all__ = ["chat_server"]

CLI = [sys.executable, "-m", "richchat"]


async def run_send(*args: str | bytes, stdin: bytes | None = None) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        *CLI, "send", *args,
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=cli_env(),
    )
    out, err = await asyncio.wait_for(proc.communicate(stdin), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def addr(server: object) -> str:
    return f"127.0.0.1:{server.port}"  # type: ignore[attr-defined]


async def texts(client: object, count: int) -> list[tuple[str, str]]:
    got = []
    for _ in range(count):
        frame = await next_frame(client, f.RoomMessage)  # type: ignore[arg-type]
        assert isinstance(frame, f.RoomMessage)
        got.append((frame.name, frame.text))
    return got


async def test_bytes_that_are_not_utf8_are_replaced_and_sent(chat_server: object) -> None:
    watcher = await registered(chat_server.port, "watcher")  # type: ignore[attr-defined]
    # stdin: an invalid byte in the first line must not cost the lines after it
    code, _, err = await run_send(addr(chat_server), "--nick", "pipe", "-",
                                  stdin=b"caf\xe9\nnext line\n")
    assert code == ExitStatus.OK, err
    assert await texts(watcher, 2) == [("pipe", "caf\ufffd"), ("pipe", "next line")]
    # an argument, and a nickname, with such bytes
    code, _, err = await run_send(addr(chat_server), "--nick", b"x\xff", b"na\xefve", "too")
    assert code == ExitStatus.OK, err
    assert await texts(watcher, 1) == [("x\ufffd", "na\ufffdve too")]
    assert "Traceback" not in err and "UnicodeEncodeError" not in err
    await watcher.close()


async def test_an_over_long_stdin_line_is_refused_and_the_rest_sent(chat_server: object) -> None:
    watcher = await registered(chat_server.port, "watcher")  # type: ignore[attr-defined]
    long_line = "Q" * 3000
    stdin = f"l1\n{long_line}\nl3\n".encode()
    code, out, err = await run_send(addr(chat_server), "--nick", "p", "-", stdin=stdin)
    assert code == ExitStatus.LINES_REFUSED, err
    assert await texts(watcher, 2) == [("p", "l1"), ("p", "l3")]
    assert f"error: line 2 not sent: message too long (3000 bytes; at most {MAX_MESSAGE_BYTES})" \
        in err.splitlines()
    assert "sent 2 messages to lobby as p; 1 line refused" in err
    assert out == ""
    # --json says what was refused
    code, out, err = await run_send(addr(chat_server), "--nick", "p", "--json", "-", stdin=stdin)
    assert code == ExitStatus.LINES_REFUSED, err
    result = json.loads(out)
    assert result["delivered"] == 2
    assert result["refused"] == [{
        "line": 2, "size": 3000,
        "reason": f"message too long (3000 bytes; at most {MAX_MESSAGE_BYTES})",
    }]
    assert result["interrupted"] is False
    await watcher.close()


async def test_a_message_argument_at_the_limit_is_sent_one_byte_more_is_not(
    chat_server: object,
) -> None:
    watcher = await registered(chat_server.port, "watcher")  # type: ignore[attr-defined]
    longest = "é" * (MAX_MESSAGE_BYTES // 2)
    code, _, err = await run_send(addr(chat_server), "--nick", "p", "--room", "dev", longest)
    assert code == ExitStatus.OK, err
    code, _, err = await run_send(addr(chat_server), "--nick", "p", longest)
    assert code == ExitStatus.OK, err
    assert await texts(watcher, 1) == [("p", longest)]
    code, _, err = await run_send(addr(chat_server), "--nick", "p", longest + "x")
    assert code == ExitStatus.USAGE
    assert f"message too long ({MAX_MESSAGE_BYTES + 1} bytes; at most {MAX_MESSAGE_BYTES})" in err
    await watcher.close()


async def test_room_and_to_together_is_a_usage_error(chat_server: object) -> None:
    code, _, err = await run_send(addr(chat_server), "--nick", "p", "--room", "dev",
                                  "--to", "alice", "hi")
    assert code == ExitStatus.USAGE
    assert "--room and --to cannot be used together" in err and err.count("\n") == 1


async def test_a_full_server_says_so(tmp_path: Path) -> None:
    from richchat.core.server import ChatServer, ServerConfig

    server = ChatServer(ServerConfig(host="127.0.0.1", port=0, data_dir=tmp_path, beacon=False,
                                     mdns=False, name="test", max_clients=1))
    await server.start()
    try:
        holder = await registered(server.port, "holder")
        code, _, err = await run_send(f"127.0.0.1:{server.port}", "--nick", "p", "hi")
        assert code == ExitStatus.SERVER_FULL, err
        assert err == f"error: 127.0.0.1:{server.port} is full (try again later)\n", err
        await holder.close()
    finally:
        await server.stop()


async def test_ctrl_c_reports_what_was_delivered(chat_server: object) -> None:
    watcher = await registered(chat_server.port, "watcher")  # type: ignore[attr-defined]
    for extra in ([], ["--json"]):
        proc = await asyncio.create_subprocess_exec(
            *CLI, "send", addr(chat_server), "--nick", "tail", *extra, "-",
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=cli_env(),
        )
        assert proc.stdin is not None
        proc.stdin.write(b"one\ntwo\n")
        await proc.stdin.drain()
        assert await texts(watcher, 2) == [("tail", "one"), ("tail", "two")]
        proc.send_signal(signal.SIGINT)  # our own child; stdin stays open
        out, err = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode == ExitStatus.INTERRUPTED, err
        # "two" may be relayed to the watcher a moment before send reads its own echo:
        # then it is reported as sent but not confirmed
        m = re.search(r"^interrupted: (\d) messages? delivered to lobby"
                      r"(?:, (\d) more sent but not confirmed)?$", err.decode(), re.M)
        assert m, err
        assert int(m[1]) + int(m[2] or 0) == 2 and int(m[1]) >= 1
        assert "Traceback" not in err.decode() and "Fatal" not in err.decode()
        if extra:
            result = json.loads(out)
            assert result["interrupted"] is True
            assert (result["delivered"], result["unconfirmed"]) == (int(m[1]), int(m[2] or 0))
        else:
            assert out == b""
    await watcher.close()
