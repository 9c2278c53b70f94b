"""Nobody is announced, listed or shown a room before registering a nickname; netcat users
are asked for one; departure reasons are words. Real sockets against a real server."""

from __future__ import annotations

import asyncio
import logging
import socket
import struct

import pytest

from richchat.core.protocol.slash import HELP_LINES
from richchat.core.server import ChatServer
from tests.linechat import LineClient
from tests.server.conftest import ServerFactory

PROMPT = "*** Type a nickname, or press Enter to be "


async def _until(check: object, what: str, timeout: float = 5.0) -> None:
    """Wait for a condition on the in-process server (bounded)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():  # type: ignore[operator]
        if loop.time() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        await asyncio.sleep(0.01)


async def _prompted(port: int) -> tuple[LineClient, str]:
    """A netcat-like client that says nothing until the server asks for a nickname."""
    client = await LineClient.connect(port)
    prompt = await client.expect(lambda l: l.startswith(PROMPT))
    assert prompt.endswith(":")
    return client, prompt[len(PROMPT) : -1]


async def _watchers(port: int) -> tuple[LineClient, LineClient, LineClient]:
    """A hello client, a seed client and a netcat user, all registered."""
    alice = await LineClient.connect(port, hello="t", nick="alice")
    seed = await LineClient.connect(port)
    seed.send("CMD_USER|seedy")
    await seed.expect("SRV|seedy joined")
    raw, _ = await _prompted(port)
    raw.send("rawuser")
    await raw.expect(lambda l: l.startswith("*** You are rawuser."))
    await alice.expect("SRV|rawuser joined")
    await seed.expect("SRV|rawuser joined")
    return alice, seed, raw


async def _marker(watchers: tuple[LineClient, ...], text: str) -> None:
    """A message from the first watcher, seen by all: everything before it has arrived."""
    watchers[0].send(f"MSG|{text}")
    for w in watchers:
        await w.expect(lambda l: l.endswith(text))


async def test_silent_connection_is_announced_to_nobody_and_sees_nothing(
    server: ChatServer,
) -> None:
    assert server.hub is not None
    watchers = await _watchers(server.port)
    alice = watchers[0]
    alice.send("MSG|said before the silent one came")
    await alice.expect(lambda l: l.endswith("|said before the silent one came"))
    silent, guest = await _prompted(server.port)
    assert guest.startswith("guest-")
    assert silent.lines[0].startswith("*** Welcome to test-server (richchat")
    assert silent.lines[0].endswith(". 3 user(s) online.")
    assert len(silent.lines) == 2  # the welcome and the prompt: no history, no users
    await _marker(watchers, "room traffic while it waits")
    alice.send("CMD_WHO|lobby")
    members = await alice.expect(lambda l: l.startswith("RLIST|lobby|"))
    assert guest not in members and members.count("(") == 3
    # whatever had been queued for it comes before the answer to /help
    silent.send("/help")
    await silent.expect(f"*** {HELP_LINES[-1]}")
    assert not any("said before" in l or "room traffic" in l for l in silent.lines)
    assert not any("joined" in l or "rawuser" in l for l in silent.lines)
    conns = len(server.hub.conns)
    await silent.close()
    await _until(lambda: len(server.hub.conns) == conns - 1, "the silent one is gone")  # type: ignore[union-attr]
    await _marker(watchers, "after it left")
    for w in watchers:
        assert not any("guest-" in l for l in w.lines if not l.startswith(PROMPT)), w.lines
        assert not any(l.startswith("ULIST|") and "guest-" in l for l in w.lines)
        await w.close()


async def test_empty_answer_takes_the_offered_guest_name(server: ChatServer) -> None:
    alice = await LineClient.connect(server.port, hello="t", nick="alice")
    alice.send("MSG|history line")
    await alice.expect(lambda l: l.endswith("|history line"))
    raw, guest = await _prompted(server.port)
    raw.send("")
    await raw.expect(lambda l: l.endswith("alice: history line"))  # history after registering
    await raw.expect("*** Users online: alice")
    await raw.expect(f"*** You are {guest}. Type /nick NAME to change it, /help for commands.")
    await alice.expect(f"SRV|{guest} joined")
    raw.send("hello as a guest")
    await alice.expect(lambda l: l.endswith(f"|{guest}|hello as a guest"))
    await raw.close()
    await alice.close()


async def test_invalid_and_taken_answers_are_explained_and_asked_again(server: ChatServer) -> None:
    alice = await LineClient.connect(server.port, hello="t", nick="alice")
    raw, guest = await _prompted(server.port)
    raw.send("bad name")
    assert "space" in await raw.expect(lambda l: l.startswith("*** Error:"))
    assert (await raw.readline()).startswith(PROMPT)
    raw.send("ALICE")
    assert "already in use" in await raw.expect(lambda l: l.startswith("*** Error:"))
    assert (await raw.readline()).startswith(PROMPT)
    raw.send("/join dev")  # not before a nickname
    assert "nickname" in await raw.expect(lambda l: l.startswith("*** Error:"))
    assert (await raw.readline()).startswith(PROMPT)
    raw.send("/help")
    await raw.expect(f"*** {HELP_LINES[-1]}")
    assert (await raw.readline()).startswith(PROMPT)
    raw.send("  erin  ")
    await raw.expect("*** You are erin. Type /nick NAME to change it, /help for commands.")
    await alice.expect("SRV|erin joined")
    raw.send("/nick erin2")
    await alice.expect("SRV|erin is now known as erin2")
    await raw.close()
    await alice.expect("SRV|erin2 left (disconnected)")
    assert not any(guest in l for l in alice.lines)
    joined = [l for l in alice.lines if l.endswith(" joined")]
    assert joined == ["SRV|alice joined", "SRV|erin joined"]
    await alice.close()


async def test_nick_command_answers_the_prompt_and_quit_leaves_quietly(
    server: ChatServer,
) -> None:
    alice = await LineClient.connect(server.port, hello="t", nick="alice")
    raw, _ = await _prompted(server.port)
    raw.send("/nick dave")
    await raw.expect(lambda l: l.startswith("*** You are dave."))
    await alice.expect("SRV|dave joined")
    quitter, _ = await _prompted(server.port)
    quitter.send("/quit changed my mind")
    assert await quitter.closed()
    raw.send("/quit bye")
    assert await raw.closed()
    await alice.expect("SRV|dave left (quit: bye)")
    assert not any("changed my mind" in l or "guest-" in l for l in alice.lines)
    await alice.close()


async def test_never_registering_connection_is_closed_quietly(
    make_server: ServerFactory,
) -> None:
    server = await make_server(register_timeout=0.5)
    assert server.hub is not None
    alice = await LineClient.connect(server.port, hello="t", nick="alice")
    silent, _ = await _prompted(server.port)
    rest = await silent.read_all(timeout=10)  # the server closes it
    assert rest == ["*** Error: no nickname chosen within 0.5 s"]
    never_hello = await LineClient.connect(server.port, hello="t")
    await never_hello.expect("ERR|register_timeout|no nickname chosen within 0.5 s", timeout=10)
    assert await never_hello.closed()
    await _until(lambda: len(server.hub.conns) == 1, "only alice is left")  # type: ignore[union-attr]
    alice.send("MSG|marker")
    await alice.expect(lambda l: l.endswith("|alice|marker"))
    after = alice.lines[alice.lines.index("SRV|alice joined") + 1 :]
    assert after[-1].endswith("|alice|marker")
    assert not any(l.startswith(("SRV|", "JOIN|", "PART|", "ULIST|")) for l in after), after
    await alice.close()


async def test_slow_seed_client_is_announced_once_under_its_name(server: ChatServer) -> None:
    alice = await LineClient.connect(server.port, hello="t", nick="alice")
    alice.send("MSG|before zed")
    await alice.expect(lambda l: l.endswith("|before zed"))
    zed, _ = await _prompted(server.port)  # waited past the raw-detect delay
    zed.send("CMD_USER|zed")
    assert (await zed.readline()).startswith("SRV|Welcome to test-server")
    assert await zed.readline() == "MSG|alice: before zed"
    assert (await zed.readline()).startswith("ULIST|alice(127.0.0.1:")
    await zed.expect("SRV|zed joined")
    await alice.expect("SRV|zed joined")
    zed.send("MSG|zed: hi")
    await alice.expect(lambda l: l.endswith("|zed|hi"))
    await zed.expect("MSG|zed: hi")
    assert [l for l in alice.lines if "joined" in l or "known as" in l] == [
        "SRV|alice joined",
        "SRV|zed joined",
    ]
    await zed.close()
    await alice.close()


async def test_hello_client_sees_no_room_before_registering(server: ChatServer) -> None:
    alice = await LineClient.connect(server.port, hello="t", nick="alice")
    alice.send("MSG|history for registered users")
    await alice.expect(lambda l: l.endswith("|history for registered users"))
    bob = await LineClient.connect(server.port, hello="t")
    assert (await bob.readline()).startswith("HELLO|1|richchat-server/")
    assert (await bob.readline()).startswith("SRV|Welcome to test-server")
    assert (await bob.readline()).startswith("ULIST|alice(")  # to check a nickname is free
    alice.send("MSG|while bob waits")
    await alice.expect(lambda l: l.endswith("|while bob waits"))
    bob.send("CMD_USER|bob")
    history = [await bob.readline(), await bob.readline()]
    assert history[0].endswith("|alice|history for registered users")
    assert history[1].endswith("|alice|while bob waits")
    assert (await bob.readline()).startswith("ULIST|alice(")
    assert await bob.readline() == "YOU|bob"
    await bob.expect(lambda l: l.startswith("JOIN|lobby|bob("))
    await bob.expect("SRV|bob joined")
    await alice.expect("SRV|bob joined")
    await bob.close()
    await alice.close()


async def test_connection_lost_is_words_and_errno_goes_to_the_log(
    server: ChatServer, caplog: pytest.LogCaptureFixture
) -> None:
    alice = await LineClient.connect(server.port, hello="t", nick="alice")
    sock = socket.create_connection(("127.0.0.1", server.port))
    sock.sendall(b"HELLO|1|t\nCMD_USER|resetter\n")
    await alice.expect("SRV|resetter joined")
    with caplog.at_level(logging.INFO, logger="richchat.server"):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()  # RST: ECONNRESET on the server
        await alice.expect("SRV|resetter left (connection lost)")
    assert "PART|lobby|resetter|connection lost" in alice.lines
    details = [r.getMessage() for r in caplog.records if "resetter" in r.getMessage()]
    assert any("connection lost" in m and "reset" in m.lower() for m in details), details
    await alice.close()


async def test_idle_client_leaves_timed_out(make_server: ServerFactory) -> None:
    server = await make_server(idle_timeout=0.6)
    seed = await LineClient.connect(server.port)  # seed clients are never pinged
    seed.send("CMD_USER|watcher")
    await seed.expect("SRV|watcher joined")
    lazy = socket.create_connection(("127.0.0.1", server.port))
    lazy.sendall(b"HELLO|1|t\nCMD_USER|lazy\n")  # never answers the PING
    await seed.expect("SRV|lazy joined")
    await seed.expect("SRV|lazy left (timed out)", timeout=10)
    lazy.close()
    await seed.close()
