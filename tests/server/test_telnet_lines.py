"""docs/protocol.md: netcat, ncat and telnet users are raw clients, and a bare ``\\r`` ends a
line. Telnet (RFC 854) sends a bare carriage return as CR NUL: the NUL was taken for the
first character of the next line, so a telnet user's every line after the first reached the
room as ``␀hello`` (and a nickname typed after a refused one was refused for its control
character). Now ``\\r\\0`` is one terminator, like ``\\r\\n``. Through a real server."""

from __future__ import annotations

from richchat.core.server import ChatServer
from tests.linechat import LineClient


async def test_a_telnet_users_cr_nul_lines_arrive_without_a_nul(server: ChatServer) -> None:
    alice = await LineClient.connect(server.port, hello="t", nick="alice")
    tel = await LineClient.connect(server.port)  # says nothing: a netcat/telnet user
    await tel.expect(lambda l: l.startswith("*** Type a nickname"))
    tel.send(b"alice\r\x00")  # taken: asked again
    await tel.expect("*** Error: the nickname alice is already in use")
    tel.send(b"tom\r\x00")  # the NUL of the line before is not the start of this one
    await tel.expect("*** You are tom. Type /nick NAME to change it, /help for commands.")
    tel.send(b"hello\r\x00again\r\x00")
    assert await alice.expect(lambda l: l.startswith("RMSG|")) == (
        alice.lines[-1][: alice.lines[-1].rindex("|tom|")] + "|tom|hello")
    assert (await alice.expect(lambda l: l.startswith("RMSG|"))).endswith("|tom|again")
    assert not [l for l in alice.lines if "\u2400" in l]
    await tel.close()
    await alice.close()
