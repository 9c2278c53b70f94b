"""``richchat send`` as a real subprocess against a real server on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from richchat.core.exit_codes import ExitStatus
from richchat.core.protocol import frames as f
from tests.client.servers import (
    WithoutFloodKey,
    chat_server,
    cli_env,
    free_port,
    next_frame,
    registered,
    registered_counting_pings,
    wait_until,
)
from tests.netlab import Lab

__all__ = ["chat_server"]

CLI = [sys.executable, "-m", "richchat"]


async def run_send(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        *CLI, "send", *args,
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=cli_env(),
    )
    out, err = await asyncio.wait_for(
        proc.communicate(stdin.encode() if stdin is not None else None), 60
    )
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def addr(server: object) -> str:
    return f"127.0.0.1:{server.port}"  # type: ignore[attr-defined]


async def test_send_one_message_is_relayed(chat_server: object) -> None:
    watcher = await registered(chat_server.port, "watcher")  # type: ignore[attr-defined]
    code, out, err = await run_send(addr(chat_server), "--nick", "bot", "hello", "[b]world[/b]")
    assert code == ExitStatus.OK, err
    got = await next_frame(watcher, f.RoomMessage)
    assert isinstance(got, f.RoomMessage)
    assert (got.room, got.name, got.text) == ("lobby", "bot", "hello [b]world[/b]")
    assert "sent 1 message to lobby as bot" in err
    assert out == ""
    await watcher.close()


async def test_send_stdin_lines_to_a_room(chat_server: object) -> None:
    watcher = await registered(chat_server.port, "watcher")  # type: ignore[attr-defined]
    await watcher.join("ops")
    await next_frame(watcher, f.RoomUsers)
    code, _, err = await run_send(
        addr(chat_server), "--nick", "bot", "--room", "ops", "-", stdin="one\n\ntwo\r\nthree\n"
    )
    assert code == ExitStatus.OK, err
    texts = []
    for _ in range(3):
        got = await next_frame(watcher, f.RoomMessage)
        assert isinstance(got, f.RoomMessage) and got.room == "ops" and got.name == "bot"
        texts.append(got.text)
    assert texts == ["one", "two", "three"]
    assert "sent 3 messages to ops" in err
    await watcher.close()


async def test_send_private(chat_server: object) -> None:
    bob = await registered(chat_server.port, "bob")  # type: ignore[attr-defined]
    code, _, err = await run_send(addr(chat_server), "--nick", "bot", "--to", "bob", "psst")
    assert code == ExitStatus.OK, err
    got = await next_frame(bob, f.Private)
    assert isinstance(got, f.Private) and (got.sender, got.to, got.text) == ("bot", "bob", "psst")
    assert "@bob" in err
    await bob.close()


async def test_send_private_to_unknown_user_fails(chat_server: object) -> None:
    code, _, err = await run_send(addr(chat_server), "--nick", "bot", "--to", "ghost", "hi")
    assert code == ExitStatus.ERROR
    assert err.count("\n") == 1 and "ghost" in err and "Traceback" not in err


async def test_nick_taken_and_auto_nick(chat_server: object) -> None:
    holder = await registered(chat_server.port, "bot")  # type: ignore[attr-defined]
    code, _, err = await run_send(addr(chat_server), "--nick", "bot", "hi")
    assert code == ExitStatus.NICK_REFUSED
    assert "name_taken" in err and err.count("\n") == 1
    code, _, err = await run_send(addr(chat_server), "--nick", "bot", "--auto-nick", "hi")
    assert code == ExitStatus.OK, err
    assert "as bot_2" in err
    got = await next_frame(holder, f.RoomMessage)
    assert isinstance(got, f.RoomMessage) and got.name == "bot_2"
    await holder.close()


async def test_invalid_nick_refused(chat_server: object) -> None:
    code, _, err = await run_send(addr(chat_server), "--nick", "no spaces", "hi")
    assert code == ExitStatus.NICK_REFUSED
    assert "space" in err


async def test_connection_refused() -> None:
    code, _, err = await run_send(f"127.0.0.1:{free_port()}", "--nick", "bot", "hi")
    assert code == ExitStatus.CONNECTION_REFUSED
    assert "connection refused" in err and err.count("\n") == 1


async def test_timeout() -> None:
    with socket.socket() as sock:  # listens, never accepts, never answers
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        port = sock.getsockname()[1]
        code, _, err = await run_send(f"127.0.0.1:{port}", "--nick", "bot", "--timeout", "0.5", "x")
    assert code == ExitStatus.TIMEOUT
    assert "timed out" in err and err.count("\n") == 1


async def test_usage_errors() -> None:
    code, _, err = await run_send("127.0.0.1:1", "--nick", "bot")
    assert code == ExitStatus.USAGE and "nothing to send" in err
    code, _, err = await run_send("127.0.0.1:99999", "--nick", "bot", "x")
    assert code == ExitStatus.USAGE and "bad port" in err
    code, _, err = await run_send("127.0.0.1:1", "--nick", "bot", "--room", "no room", "x")
    assert code == ExitStatus.USAGE and "bad room" in err


def test_unknown_host(lab: Lab) -> None:
    # Resolved inside a lab namespace that has no route anywhere: no DNS packet can leave it.
    host = lab.add_host("a")
    result = lab.run(host, [*CLI, "send", "no-such-host.invalid:5050", "--nick", "bot", "hi"],
                     env=cli_env(), timeout=60)
    assert result.returncode == ExitStatus.UNKNOWN_HOST, result.stderr
    assert "unknown host" in result.stderr and result.stderr.count("\n") == 1


#: what ``richchat send`` must not load: heavy libraries of other commands (the server's
#: certificate maker, the cluster's Redis client), the confusables data (only servers compare
#: look-alike names), other commands' core packages (file sharing, the wizard)
SEND_NEVER_IMPORTS = (
    "textual", "scapy", "nmap", "zeroconf", "requests", "rich", "netifaces", "sqlite3",
    "cryptography", "redis", "confusable_homoglyphs", "richchat.core.protocol.confusables",
    "richchat.core.protocol.beacon", "richchat.core.protocol.transfer",
    "richchat.core.protocol.filenames", "richchat.core.server", "richchat.core.discovery",
    "richchat.core.scanner", "richchat.core.tui", "richchat.core.sharing",
    "richchat.core.transfer", "richchat.core.hashwrite", "richchat.core.wizard",
)
#: ... and what a send over plaintext does not need either: hashlib (a TLS server's key is
#: hashed, nothing else is), the idna codec (ssl encodes a host name with it; an address is
#: never named in the TLS hello)
PLAINTEXT_SEND_NEVER_IMPORTS = ("hashlib", "_hashlib", "encodings.idna")

SEND_IMPORTS_PROBE = """\
import gc, os, sys
sys.argv = ["richchat", "send", *sys.argv[1:]]
try:
    from richchat.cli import main; main()
except SystemExit as exc:
    print("exit", exc.code)
print("frozen", gc.get_freeze_count() > 0, os.environ.get("PYDANTIC_DISABLE_PLUGINS"))
from richchat.core.send import RefusedLine, SendResult
print("report validators built", SendResult.__pydantic_complete__,
      RefusedLine.__pydantic_complete__)
print("loaded", ",".join(sorted(sys.modules)))
"""


@pytest.mark.parametrize("outcome", ["delivered", "refused"])
async def test_send_imports_only_what_it_needs(chat_server: object, outcome: str) -> None:
    # What is imported, not how long it takes: a whole successful send (connect, register,
    # send, echo, quit) and a refused connection.
    target = addr(chat_server) if outcome == "delivered" else f"127.0.0.1:{free_port()}"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", SEND_IMPORTS_PROBE, target, "--nick", "probe", "hi",
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=cli_env(),
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    lines = out.decode().splitlines()
    expected = ExitStatus.OK if outcome == "delivered" else ExitStatus.CONNECTION_REFUSED
    assert f"exit {int(expected)}" in lines, out.decode() + err.decode()
    # short-lived: the heap is frozen for exit, and the plugin setting was only for the command
    assert "frozen True None" in lines
    loaded = set(lines[-1].removeprefix("loaded ").split(","))
    assert "richchat.core.client" in loaded and "pydantic" in loaded  # the probe really ran
    # the error line goes through rich (cli._print_error), only when there is an error
    never = SEND_NEVER_IMPORTS if outcome == "delivered" else tuple(
        name for name in SEND_NEVER_IMPORTS if name != "rich")
    heavy = sorted(m for m in loaded
                   if any(m == n or m.startswith(n + ".")
                          for n in (*never, *PLAINTEXT_SEND_NEVER_IMPORTS)))
    assert heavy == []
    # the --json report's models are built only when a line is refused or JSON is printed
    assert "report validators built False False" in lines


#: what `richchat send --help` promises scripts, code by code
SEND_EXIT_CODES = {
    ExitStatus.CONNECTION_REFUSED: "connection refused",
    ExitStatus.UNKNOWN_HOST: "unknown host",
    ExitStatus.NICK_REFUSED: "nickname refused",
    ExitStatus.TIMEOUT: "timeout",
    ExitStatus.PROTOCOL: "not a richchat server",
    ExitStatus.CONNECTION_LOST: "connection lost",
    ExitStatus.ERROR: "message refused by the server",
}


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_lists_exit_codes(flag: str) -> None:
    result = subprocess.run([*CLI, "send", flag], capture_output=True, text=True,
                            env={**cli_env(), "COLUMNS": "200"}, timeout=60)
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.replace("│", " ").split())  # unwrap rich's help panel
    assert "Exit codes:" in text
    for code, meaning in SEND_EXIT_CODES.items():
        assert f"{int(code)} {meaning}" in text, (code, text)
    assert "--auto-nick" in text and "--timeout" in text


async def test_many_stdin_lines_pass_flood_control_once_each(chat_server: object) -> None:
    # More lines than the server's flood burst (30): it delays them (ERR|flood warns once);
    # send must keep waiting, never resend, and deliver each line exactly once, in order.
    watcher = await registered(chat_server.port, "watcher")  # type: ignore[attr-defined]
    lines = [f"line {n}" for n in range(40)]
    code, _, err = await run_send(addr(chat_server), "--nick", "bulk", "-",
                                  stdin="\n".join(lines) + "\n")
    assert code == ExitStatus.OK, err
    got = []
    while len(got) < len(lines):
        frame = await next_frame(watcher, f.RoomMessage)
        assert isinstance(frame, f.RoomMessage)
        got.append(frame.text)
    assert got == lines
    await watcher.close()


class OtherService:
    """A real TCP service on loopback that is not richchat: it greets (or hangs up) and
    closes, like an SSH server would greet a stranger."""

    def __init__(self, greeting: bytes | None) -> None:
        self.greeting = greeting
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> int:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            if self.greeting:
                writer.write(self.greeting)
                await writer.drain()
                # like SSH: read the peer's identification line, then hang up
                await asyncio.wait_for(reader.readline(), 10)
            writer.close()

        self.server = await asyncio.start_server(handle, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()


async def test_not_a_richchat_server() -> None:
    async with OtherService(b"SSH-2.0-OpenSSH_9.6\r\n") as port:
        code, _, err = await run_send(f"127.0.0.1:{port}", "--nick", "bot", "x")
    assert code == ExitStatus.PROTOCOL
    assert "does not speak the richchat protocol" in err and err.count("\n") == 1


async def test_connection_lost() -> None:
    async with OtherService(None) as port:  # accepts, then hangs up at once
        code, _, err = await run_send(f"127.0.0.1:{port}", "--nick", "bot", "x")
    assert code == ExitStatus.CONNECTION_LOST
    assert "closed the connection" in err and err.count("\n") == 1


async def test_stdin_is_streamed_line_by_line(chat_server: object) -> None:
    # Each line goes out as it arrives (tail -f | richchat send ... -), not at EOF.
    watcher = await registered(chat_server.port, "watcher")  # type: ignore[attr-defined]
    proc = await asyncio.create_subprocess_exec(
        *CLI, "send", addr(chat_server), "--nick", "tail", "-",
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=cli_env(),
    )
    assert proc.stdin is not None
    proc.stdin.write(b"first\n")
    await proc.stdin.drain()
    got = await next_frame(watcher, f.RoomMessage, timeout=30)
    assert isinstance(got, f.RoomMessage) and (got.name, got.text) == ("tail", "first")
    assert proc.returncode is None  # still running: stdin is open
    proc.stdin.write(b"second\n")
    proc.stdin.close()
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == ExitStatus.OK, err
    got = await next_frame(watcher, f.RoomMessage)
    assert isinstance(got, f.RoomMessage) and got.text == "second"
    assert b"sent 2 messages" in err
    await watcher.close()


async def test_empty_stdin_is_a_usage_error(chat_server: object) -> None:
    code, _, err = await run_send(addr(chat_server), "--nick", "bot", "-", stdin="\n  \n")
    assert code == ExitStatus.USAGE and "nothing to send" in err


async def test_idle_stdin_keeps_the_connection_alive(tmp_path: Path) -> None:
    # While send waits for the next stdin line it still answers the server's PINGs, so a
    # quiet pipe is not dropped as an idle client.
    from richchat.core.server import ChatServer, ServerConfig

    server = ChatServer(ServerConfig(host="127.0.0.1", port=0, data_dir=tmp_path, beacon=False,
                                     mdns=False, name="test", idle_timeout=0.6))
    await server.start()
    try:
        watcher, watcher_reader = await registered_counting_pings(server.port, "watcher")
        proc = await asyncio.create_subprocess_exec(
            *CLI, "send", f"127.0.0.1:{server.port}", "--nick", "quiet", "-",
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=cli_env(),
        )
        assert proc.stdin is not None
        proc.stdin.write(b"before\n")
        await proc.stdin.drain()

        async def watch(text: str) -> None:
            while True:  # the watcher reads, so it answers its own PINGs too
                frame = await next_frame(watcher, f.RoomMessage, timeout=30)
                assert isinstance(frame, f.RoomMessage)
                if frame.text == text:
                    return

        await watch("before")
        # Three idle periods with nothing on stdin (the watcher, as idle, reads and answers
        # three PINGs meanwhile): without its answers to the server's PINGs, send would be
        # dropped within one.
        pings = watcher_reader.pings
        watching = asyncio.ensure_future(watch("never sent"))
        try:
            await wait_until(lambda: watcher_reader.pings >= pings + 3 or watching.done(),
                             "three idle periods")
            assert not watching.done(), watching
        finally:
            watching.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watching
        assert proc.returncode is None  # still sending: stdin is open
        proc.stdin.write(b"after\n")
        proc.stdin.close()
        _, err = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode == ExitStatus.OK, err
        await watch("after")
        await watcher.close()
    finally:
        await server.stop()


async def test_json_output(chat_server: object) -> None:
    import json

    code, out, err = await run_send(addr(chat_server), "--nick", "bot", "--json", "hi")
    assert code == ExitStatus.OK, err
    assert json.loads(out) == {"server": addr(chat_server), "nick": "bot", "target": "lobby",
                               "delivered": 1, "refused": [], "interrupted": False,
                               "unconfirmed": 0, "tls": None, "fingerprint": None,
                               "error": None, "exit_code": 0}
    assert err == ""


async def test_json_when_the_nickname_is_refused_or_the_usage_is_wrong(
    chat_server: object,
) -> None:
    """--json writes one document however the send ends (a script always has something to
    parse): nothing delivered, the error (the line on stderr) and the exit status, which
    stays the documented one. (Before: nothing at all on stdout.)"""
    import json

    holder = await registered(chat_server.port, "bot")  # type: ignore[attr-defined]
    code, out, err = await run_send(addr(chat_server), "--nick", "bot", "--json", "hi")
    assert code == ExitStatus.NICK_REFUSED
    assert "name_taken" in err and err.count("\n") == 1
    result = json.loads(out)
    assert (result["delivered"], result["exit_code"]) == (0, ExitStatus.NICK_REFUSED)
    assert "name_taken" in result["error"] and result["nick"] == "bot"
    assert result["target"] == "lobby" and result["server"] == addr(chat_server)
    code, out, err = await run_send(addr(chat_server), "--nick", "bot", "--json", "--room",
                                    "dev", "--to", "x", "hi")
    assert code == ExitStatus.USAGE and err.count("\n") == 1
    result = json.loads(out)
    assert (result["delivered"], result["exit_code"]) == (0, ExitStatus.USAGE)
    assert "--room and --to" in result["error"]
    await holder.close()


async def test_an_old_message_in_history_is_not_taken_for_the_echo(tmp_path: Path) -> None:
    # The lobby history sent on connect holds an earlier message by the same nick. It must not
    # count as the echo of the new one: here the server delays the new line (flood control) far
    # beyond --timeout, so send has to time out instead of claiming delivery.
    from richchat.core.server import ChatServer, ServerConfig

    def config(**kw: float) -> ServerConfig:
        return ServerConfig(host="127.0.0.1", port=0, data_dir=tmp_path, beacon=False,
                            mdns=False, name="test", **kw)  # type: ignore[arg-type]

    first = ChatServer(config())
    await first.start()
    try:
        code, _, err = await run_send(f"127.0.0.1:{first.port}", "--nick", "bot", "earlier")
        assert code == ExitStatus.OK, err
    finally:
        await first.stop()
    # HELLO and CMD_USER take the only two tokens; the message then waits ~1000 s (a server
    # that does not advertise its flood limit, so send cannot wait before sending)
    slow = ChatServer(config(flood_rate=0.001, flood_burst=2))
    await slow.start()
    try:
        async with WithoutFloodKey(slow.port) as proxy:
            code, _, err = await run_send(
                f"127.0.0.1:{proxy.port}", "--nick", "bot", "--timeout", "1", "later"
            )
        assert code == ExitStatus.TIMEOUT, err
    finally:
        await slow.stop()


async def test_timeout_bounds_the_whole_wait_despite_other_traffic(tmp_path: Path) -> None:
    # --timeout is per step, not per frame: while the server holds our line back (flood
    # control, ~1000 s here), people coming and going must not keep send waiting forever.
    from richchat.core.server import ChatServer, ServerConfig

    server = ChatServer(ServerConfig(host="127.0.0.1", port=0, data_dir=tmp_path, beacon=False,
                                     mdns=False, name="test", flood_rate=0.001, flood_burst=2))
    await server.start()
    proxy = await WithoutFloodKey(server.port).__aenter__()  # holds lines back, unannounced
    try:
        proc = await asyncio.create_subprocess_exec(
            *CLI, "send", f"127.0.0.1:{proxy.port}", "--nick", "bot", "--timeout", "1", "x",
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=cli_env(),
        )
        done = asyncio.ensure_future(proc.communicate())
        churned = 0
        while not done.done() and churned < 150:  # bounded: at most ~30 s of churn
            # HELLO + CMD_USER fit the burst: bot sees a JOIN and a PART every 0.2 s
            _, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(f"HELLO|1|t\nCMD_USER|churn{churned}\n".encode())
            await asyncio.sleep(0.1)
            writer.close()
            await asyncio.sleep(0.1)
            churned += 1
        if not done.done():
            proc.kill()  # our own child, by its handle
            await done
            raise AssertionError("send kept waiting while other frames kept arriving")
        _, err = await done
        assert proc.returncode == ExitStatus.TIMEOUT, err.decode()
        assert "timed out" in err.decode()
    finally:
        await proxy.__aexit__()
        await server.stop()


async def test_server_gone_while_waiting_for_stdin_is_connection_lost(tmp_path: Path) -> None:
    # `tail -f log | richchat send -`: if the server goes away while stdin is quiet, send
    # must say so (exit 11) instead of waiting for a line that may never come.
    from richchat.core.server import ChatServer, ServerConfig

    server = ChatServer(ServerConfig(host="127.0.0.1", port=0, data_dir=tmp_path, beacon=False,
                                     mdns=False, name="test"))
    await server.start()
    proc = await asyncio.create_subprocess_exec(
        *CLI, "send", f"127.0.0.1:{server.port}", "--nick", "tail", "-",
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=cli_env(),
    )
    assert proc.stdin is not None and proc.stderr is not None
    try:
        watcher = await registered(server.port, "watcher")
        proc.stdin.write(b"before\n")
        await proc.stdin.drain()
        while True:
            frame = await next_frame(watcher, f.RoomMessage, timeout=30)
            if isinstance(frame, f.RoomMessage) and frame.text == "before":
                break
        await watcher.close()
    finally:
        await server.stop()  # stdin stays open
    try:
        await asyncio.wait_for(proc.wait(), 20)
    except asyncio.TimeoutError:
        proc.kill()  # our own child, by its handle
        await proc.wait()
        raise AssertionError("send kept waiting for stdin after the server had gone") from None
    err = (await proc.stderr.read()).decode()
    proc.stdin.close()
    assert proc.returncode == ExitStatus.CONNECTION_LOST, err
    assert "closed the connection" in err and err.count("\n") == 1


async def test_json_says_what_was_delivered_when_the_connection_is_lost(tmp_path: Path) -> None:
    """Some lines delivered, then the server goes away: --json still writes its document,
    with the lines delivered, the error and exit status 11. (Before: nothing on stdout.)"""
    import json

    from richchat.core.server import ChatServer, ServerConfig

    server = ChatServer(ServerConfig(host="127.0.0.1", port=0, data_dir=tmp_path, beacon=False,
                                     mdns=False, name="test"))
    await server.start()
    proc = await asyncio.create_subprocess_exec(
        *CLI, "send", f"127.0.0.1:{server.port}", "--nick", "tail", "--json", "-",
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=cli_env(),
    )
    assert proc.stdin is not None
    try:
        watcher = await registered(server.port, "watcher")
        proc.stdin.write(b"one\ntwo\n")
        await proc.stdin.drain()
        seen = []
        while len(seen) < 2:
            frame = await next_frame(watcher, f.RoomMessage, timeout=30)
            if isinstance(frame, f.RoomMessage) and frame.name == "tail":
                seen.append(frame.text)
        await watcher.close()
    finally:
        await server.stop()  # stdin stays open
    try:
        out, err = await asyncio.wait_for(proc.communicate(), 30)
    except asyncio.TimeoutError:
        proc.kill()  # our own child, by its handle
        await proc.wait()
        raise AssertionError("send kept waiting after the server had gone") from None
    assert proc.returncode == ExitStatus.CONNECTION_LOST, err
    assert err.decode().count("\n") == 1 and "closed the connection" in err.decode()
    result = json.loads(out)
    # "two" may reach the watcher a moment before send reads its own echo
    assert result["delivered"] + result["unconfirmed"] == 2 and result["delivered"] >= 1
    assert result["exit_code"] == ExitStatus.CONNECTION_LOST
    assert "closed the connection" in result["error"]
    assert (result["interrupted"], result["refused"]) == (False, [])


async def test_look_alike_nick_refused_and_auto_nick_suffixes_checked(chat_server: object) -> None:
    holder = await registered(chat_server.port, "admin")  # type: ignore[attr-defined]
    code, _, err = await run_send(addr(chat_server), "--nick", "\u0430dmin", "hi")  # Cyrillic а
    assert code == ExitStatus.NICK_REFUSED
    assert "looks like admin" in err and err.count("\n") == 1
    # each suffixed variant is claimed like any name: ＡＤＭＩＮ is taken, ADMIN_2 is free
    code, _, err = await run_send(addr(chat_server), "--nick", "ＡＤＭＩＮ", "--auto-nick", "hi")
    assert code == ExitStatus.OK, err
    got = await next_frame(holder, f.RoomMessage)
    assert isinstance(got, f.RoomMessage) and got.name == "ADMIN_2"
    # a mixed-script variant is refused for its scripts, not retried with more suffixes
    code, _, err = await run_send(addr(chat_server), "--nick", "\u0430dmin", "--auto-nick", "hi")
    assert code == ExitStatus.NICK_REFUSED
    assert "name_invalid" in err and "Cyrillic" in err
    await holder.close()


async def test_blank_message_arguments_are_a_usage_error_before_connecting(
    chat_server: object,
) -> None:
    """Nothing to send in the arguments is known before connecting: nobody sees the sender
    come and go (``bot joined`` / ``bot left``) for a command that sends nothing."""
    watcher = await registered(chat_server.port, "watcher")  # type: ignore[attr-defined]
    for blank in (" ", "", "\t"):
        code, _, err = await run_send(addr(chat_server), "--nick", "bot", blank)
        assert code == ExitStatus.USAGE and "nothing to send" in err, err
    code, _, err = await run_send(addr(chat_server), "--nick", "real", "x")  # a marker
    assert code == ExitStatus.OK, err
    joins = []
    while True:
        frame = await next_frame(watcher, (f.UserJoined, f.RoomMessage))
        if isinstance(frame, f.RoomMessage):
            break
        joins.append(frame.user.name)  # type: ignore[attr-defined]
    assert [name for name in joins if name != "watcher"] == ["real"]
    await watcher.close()


async def test_private_message_to_a_look_alike_spelling_is_confirmed(
    chat_server: object,
) -> None:
    """The server finds the recipient by the name's confusable skeleton (``аdmin`` with a
    Cyrillic а reaches ``admin``); the echo names the user as online, and send must take it
    for the confirmation it is, not wait for it until the timeout."""
    admin = await registered(chat_server.port, "admin")  # type: ignore[attr-defined]
    code, _, err = await run_send(addr(chat_server), "--nick", "bot", "--timeout", "3",
                                  "--to", "\u0430dmin", "psst")
    got = await next_frame(admin, f.Private)
    assert isinstance(got, f.Private) and (got.sender, got.to, got.text) == ("bot", "admin",
                                                                               "psst")
    assert code == ExitStatus.OK, err
    await admin.close()
