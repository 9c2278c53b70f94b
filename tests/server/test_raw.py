"""Netcat users: readable lines, guest names, every slash command; also the real ncat binary."""

from __future__ import annotations

import asyncio
import shutil

import pytest

from richchat.core.server import ChatServer
from tests.linechat import LineClient


async def test_raw_client_guest_name_and_readable_output(server: ChatServer) -> None:
    alice = await LineClient.connect(server.port, hello="t", nick="alice")
    alice.send("MSG|hello before")
    await alice.expect(lambda l: l.endswith("|hello before"))
    raw = await LineClient.connect(server.port)  # says nothing: becomes raw after a moment
    welcome = await raw.readline()
    assert welcome.startswith("*** Welcome to test-server (richchat")
    prompt = await raw.readline()
    assert prompt.startswith("*** Type a nickname, or press Enter to be guest-")
    guest = prompt.rsplit(" ", 1)[1].rstrip(":")
    raw.send("")  # Enter: the guest name offered
    assert (await raw.readline()).endswith("alice: hello before")  # "[HH:MM] alice: ..."
    assert await raw.readline() == "*** Users online: alice"
    you = await raw.readline()
    assert you == f"*** You are {guest}. Type /nick NAME to change it, /help for commands."
    await alice.expect(f"SRV|{guest} joined")
    raw.send("hi from netcat")
    await alice.expect(lambda l: l.endswith(f"|{guest}|hi from netcat"))
    await raw.expect(f"{guest}: hi from netcat")
    alice.send("MSG|hi raw")
    await raw.expect("alice: hi raw")
    assert not any(l.startswith(("MSG|", "SRV|", "ULIST|", "RMSG|")) for l in raw.lines)
    await alice.close()
    await raw.close()


async def test_raw_slash_commands(server: ChatServer) -> None:
    alice = await LineClient.connect(server.port, hello="t", nick="alice")
    raw = await LineClient.connect(server.port)
    raw.send("/nick dan")  # the answer to the nickname prompt
    await raw.expect(lambda l: l.startswith("*** You are dan."))
    raw.send("/nick carol")
    await raw.expect(lambda l: l.endswith("dan is now known as carol"))
    await alice.expect(lambda l: l.endswith("|carol") and l.startswith("NICK|"))
    raw.send("/nick alice")
    assert "already in use" in await raw.expect(lambda l: l.startswith("*** Error:"))
    raw.send("/users")
    members = await raw.expect(lambda l: l.startswith("*** Members of #lobby:"))
    assert "alice" in members and "carol" in members
    raw.send("/help")
    await raw.expect(lambda l: "/msg USER TEXT" in l)
    raw.send("/frobnicate")
    assert "unknown command /frobnicate" in await raw.expect(lambda l: l.startswith("*** Error:"))
    raw.send("/join dev")
    await raw.expect(lambda l: l.startswith("*** You are in #dev"))
    raw.send("/topic all about dev")
    await raw.expect("*** carol set the topic of #dev: all about dev")
    raw.send("in dev now")
    await raw.expect("[dev] carol: in dev now")
    raw.send("/me waves")
    await raw.expect("[dev] * carol waves")
    raw.send("/rooms")
    assert (
        await raw.expect(lambda l: l.startswith("*** Rooms:")) == "*** Rooms: #lobby (2), #dev (1)"
    )
    raw.send("/who dev")
    await raw.expect("*** Members of #dev: carol")
    raw.send("/msg alice psst")
    await raw.expect("-> *alice*: psst")
    priv = await alice.expect(lambda l: l.startswith("PRIV|"))
    assert priv.endswith("|carol|alice|psst")
    raw.send("/msg nobody hi")
    assert "no user named nobody" in await raw.expect(lambda l: l.startswith("*** Error:"))
    raw.send("/join bad|room")
    assert "room name" in await raw.expect(lambda l: l.startswith("*** Error:"))
    raw.send("/leave")
    await raw.expect("*** Plain lines now go to #lobby")
    raw.send("/leave")
    assert "lobby" in await raw.expect(lambda l: l.startswith("*** Error:"))
    assert not any("in dev now" in l for l in alice.lines)  # alice is not in #dev
    raw.send("/quit bye")
    assert await raw.closed()
    await alice.expect("SRV|carol left (quit: bye)")
    await alice.close()


async def test_raw_crlf_and_bare_cr_line_endings(server: ChatServer) -> None:
    alice = await LineClient.connect(server.port, hello="t", nick="alice")
    raw = await LineClient.connect(server.port)
    raw.send(b"/nick dave\r\none\rtwo\r\nthree\n")
    for text in ("one", "two", "three"):
        await alice.expect(lambda l, t=text: l.endswith(f"|dave|{t}"))
    await alice.close()
    await raw.close()


@pytest.mark.skipif(
    shutil.which("ncat") is None and shutil.which("nc") is None, reason="needs nc/ncat"
)
async def test_real_netcat_binary(server: ChatServer) -> None:
    alice = await LineClient.connect(server.port, hello="t", nick="alice")
    nc = shutil.which("ncat") or shutil.which("nc")
    assert nc is not None
    proc = await asyncio.create_subprocess_exec(
        nc,
        "127.0.0.1",
        str(server.port),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        proc.stdin.write(b"/nick netcat\nhello from real netcat\n")
        await proc.stdin.drain()
        await alice.expect(lambda l: l.endswith("|netcat|hello from real netcat"))
        alice.send("MSG|hello netcat user")
        seen = b""
        while b"alice: hello netcat user" not in seen:
            chunk = await asyncio.wait_for(proc.stdout.read(4096), 30)
            assert chunk, f"netcat's output ended before the message: {seen!r}"
            seen += chunk
        proc.stdin.write(b"/quit\n")
        await proc.stdin.drain()
        await alice.expect("SRV|netcat left (quit)")
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()
        await alice.close()
