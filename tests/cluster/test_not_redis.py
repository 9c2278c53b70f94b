"""``server --redis`` given a richchat chat server's address instead of Redis's (#15).

The starting node's redis-py client sends its commands (``HELLO 3``, ``CLIENT SETNAME``...)
in RESP: ``*2``, ``$5``, ``HELLO``, ``$1``, ``3``. The chat server took them for a netcat user's
lines: ``$5`` registered as a nickname, ``HELLO``, ``$1``, ``3`` went into the lobby and its
history on disk, everyone saw ``$5 joined``; and the node said "Connection closed by server.
(start Redis, ...)". Now the chat server answers a first line ``*DIGITS`` with a RESP error and
closes (nothing stored, nobody told), and the node says in one line, exit 23, that the address
is a richchat chat server, not Redis. Real processes and sockets on loopback only.
"""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
from pathlib import Path

import pytest

from richchat.core.protocol.codec import NOT_REDIS_REPLY, is_resp_array_header
from tests.linechat import LineClient
from tests.serverproc import ServerProc, internal_errors

#: what redis-py 8 sends first (``HELLO 3``), and what a protocol-2 client sends first
#: (``CLIENT SETNAME``), byte for byte
HELLO_3 = b"*2\r\n$5\r\nHELLO\r\n$1\r\n3\r\n"
SETNAME = b"*3\r\n$6\r\nCLIENT\r\n$7\r\nSETNAME\r\n$4\r\nnode\r\n"


def _node(cli: list[str], env: dict[str, str], data_dir: Path, url: str
          ) -> subprocess.CompletedProcess[str]:  # fmt: skip
    return subprocess.run(
        [*cli, "server", "--host", "127.0.0.1", "--port", "0", "--no-beacon", "--no-mdns",
         "--data-dir", str(data_dir), "--redis", url],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def _stored_messages(db: Path) -> list[tuple[str, str]]:
    con = sqlite3.connect(db)
    try:
        return [(str(n), str(t)) for n, t in con.execute("SELECT name, text FROM messages")]
    finally:
        con.close()


@pytest.mark.parametrize(
    "line", ["*2", "*3", "*0", "*12"],
)
def test_a_resp_array_header_is_recognised(line: str) -> None:
    assert is_resp_array_header(line)


@pytest.mark.parametrize(
    "line", ["*", "*hello*", "*3 cheers", "* 3", "*3*", "*-1", "*²", "hello", "$5", "PING",
             "*" + "9" * 11],
)
def test_other_first_lines_are_not_taken_for_redis(line: str) -> None:
    assert not is_resp_array_header(line)


async def test_node_pointed_at_a_chat_server_fails_clearly_and_leaves_nothing(
    cli: list[str], cli_env: dict[str, str], tmp_path: Path
) -> None:
    chat = ServerProc(tmp_path / "chat")
    try:
        alice = await LineClient.connect(chat.port, hello="t", nick="alice")
        urls = [
            f"redis://127.0.0.1:{chat.port}/0",
            f"redis://:secret-pw@127.0.0.1:{chat.port}/0",  # HELLO 3 AUTH default secret-pw
            f"redis://127.0.0.1:{chat.port}/2",  # a database: SELECT 2 as well
        ]
        for i, url in enumerate(urls):
            done = await asyncio.to_thread(_node, cli, cli_env, tmp_path / f"node{i}", url)
            lines = [l for l in done.stderr.splitlines() if l.strip()]
            assert done.returncode == 23, done.stderr
            assert len(lines) == 1, lines
            assert lines[0].startswith("error: cannot use Redis at redis://"), lines
            assert "richchat chat server, not Redis" in lines[0], lines
            assert "start Redis" not in lines[0] and "secret-pw" not in lines[0], lines
            assert "Traceback" not in done.stderr and not done.stdout.strip(), done
        # nobody was told anything, and the chat holds nothing of it
        me = f"alice(127.0.0.1:{alice.writer.get_extra_info('sockname')[1]})"
        alice.send("CMD_WHO|lobby")
        assert await alice.expect(lambda l: l.startswith("RLIST|lobby|")) == f"RLIST|lobby|{me}"
        told = [l for l in alice.lines if l.startswith(("JOIN|", "SRV|", "RMSG|", "MSG|"))]
        assert told[-2:] == [f"JOIN|lobby|{me}", "SRV|alice joined"], alice.lines
        assert len(told) == 3 and told[0].startswith("SRV|Welcome"), alice.lines
        bob = await LineClient.connect(chat.port, hello="t")
        bob.send("CMD_USER|bob")
        await bob.expect("YOU|bob")
        assert not [l for l in bob.lines if l.startswith(("RMSG|", "MSG|"))], bob.lines
        ulist = [l for l in bob.lines if l.startswith("ULIST|")]
        assert ulist[-1].startswith("ULIST|alice(") and "," not in ulist[-1], bob.lines
        await alice.close()
        await bob.close()
    finally:
        assert chat.stop() == 0
    log = chat.log()
    assert not internal_errors(log), log
    assert log.count(" register ") == 2, log  # alice and bob, nobody else
    assert _stored_messages(chat.data_dir / "history.sqlite3") == []


@pytest.mark.parametrize("command", [HELLO_3, SETNAME])
async def test_a_redis_client_is_answered_a_resp_error_and_closed(
    tmp_path: Path, command: bytes
) -> None:
    chat = ServerProc(tmp_path / "chat")
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", chat.port)
        writer.write(command + b"*1\r\n$4\r\nPING\r\n")  # pipelined: none of it is read
        answer = await asyncio.wait_for(reader.read(), 10)  # until the server closes
        assert answer == NOT_REDIS_REPLY == b"-ERR this is a richchat chat server, not Redis\r\n"
        writer.close()
    finally:
        assert chat.stop() == 0
    log = chat.log()
    assert " register " not in log and not internal_errors(log), log
    assert "a Redis client" in log, log
    assert _stored_messages(chat.data_dir / "history.sqlite3") == []


@pytest.mark.parametrize("first", ["*hello*", "*3 cheers"])
async def test_a_netcat_user_whose_first_line_starts_with_a_star_still_chats(
    tmp_path: Path, first: str
) -> None:
    """Only an exact ``*DIGITS`` first line is a Redis client: ``*hello*`` is a netcat user
    answering the nickname prompt (refused: ``*`` is not allowed in a nickname, asked
    again), as before."""
    chat = ServerProc(tmp_path / "chat")
    try:
        user = await LineClient.connect(chat.port)
        user.send(first)
        await user.expect(lambda l: l.startswith("*** Error: a nickname cannot contain '*'"))
        user.send("carol")
        await user.expect(lambda l: l.startswith("*** You are carol."))
        user.send("hi")
        await user.expect("carol: hi")
        await user.close()
    finally:
        assert chat.stop() == 0
    assert _stored_messages(chat.data_dir / "history.sqlite3") == [("carol", "hi")]


async def test_a_tls_chat_server_and_rediss_at_a_plain_one_fail_clearly(
    cli: list[str], cli_env: dict[str, str], tmp_path: Path
) -> None:
    """Found by review: ``redis://`` at a TLS chat server (it closes a client that does not
    start TLS) said "Connection closed by server. (start Redis, ...)", and ``rediss://`` at
    a plain one an SSL error with the same advice, though the address answered."""
    tls = ServerProc(tmp_path / "tls", "--tls")
    plain = ServerProc(tmp_path / "plain")
    try:
        cases = [
            (f"redis://127.0.0.1:{tls.port}/0", "then closed the connection: no Redis"),
            (f"rediss://127.0.0.1:{plain.port}/0", "but not with TLS as rediss:// asks"),
        ]
        for i, (url, said) in enumerate(cases):
            done = await asyncio.to_thread(_node, cli, cli_env, tmp_path / f"node{i}", url)
            lines = [l for l in done.stderr.splitlines() if l.strip()]
            assert done.returncode == 23, done.stderr
            assert len(lines) == 1 and said in lines[0], lines
            assert "start Redis" not in lines[0] and "Traceback" not in done.stderr, lines
    finally:
        assert tls.stop() == 0
        assert plain.stop() == 0
