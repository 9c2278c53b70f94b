"""The server takes messages of up to MAX_MESSAGE_BYTES of text, in every frame and dialect,
and refuses longer ones the same way wherever they come from (real sockets)."""

from __future__ import annotations

from richchat.core.protocol.text import MAX_MESSAGE_BYTES
from tests.linechat import LineClient
from tests.server.conftest import ServerFactory

LONGEST = "é" * (MAX_MESSAGE_BYTES // 2)  # exactly MAX_MESSAGE_BYTES bytes
TOO_LONG = LONGEST + "x"


async def test_the_same_limit_in_lobby_room_private_and_netcat(
    make_server: ServerFactory,
) -> None:
    server = await make_server(flood_rate=0)
    alice = await LineClient.connect(server.port, hello="t", nick="alice")
    bob = await LineClient.connect(server.port, hello="t", nick="bob")
    for c in (alice, bob):
        c.send("CMD_JOIN|dev")
        await c.expect(lambda l: l.startswith("RLIST|dev|"))
    raw = await LineClient.connect(server.port)
    raw.send("")  # Enter at the nickname prompt: the guest name
    await raw.expect(lambda l: l.startswith("*** You are guest-"))

    # MSG| carries 4 bytes of frame, RMSG|dev| 9, CMD_MSG|bob| 12: the text limit is one
    for sent in (f"MSG|{TOO_LONG}", f"RMSG|dev|{TOO_LONG}", f"CMD_MSG|bob|{TOO_LONG}",
                 f"CMD_ME|dev|{TOO_LONG}"):
        alice.send(sent)
        err = await alice.expect(lambda l: l.startswith("ERR|"))
        assert err == (
            f"ERR|message_too_long|message too long ({MAX_MESSAGE_BYTES + 1} bytes; "
            f"at most {MAX_MESSAGE_BYTES}), not sent"
        ), sent[:12]
    raw.send(TOO_LONG)
    await raw.expect(lambda l: l.startswith("*** Error: message too long"))
    raw.send(f"/msg bob {TOO_LONG}")
    await raw.expect(lambda l: l.startswith("*** Error: message too long"))

    for sent in (f"MSG|{LONGEST}", f"RMSG|dev|{LONGEST}", f"CMD_MSG|bob|{LONGEST}"):
        alice.send(sent)
    raw.send(LONGEST)
    await bob.expect(lambda l: l.startswith("RMSG|lobby|") and l.endswith(f"|alice|{LONGEST}"))
    await bob.expect(lambda l: l.startswith("RMSG|dev|") and l.endswith(f"|alice|{LONGEST}"))
    await bob.expect(lambda l: l.startswith("PRIV|") and l.endswith(f"|alice|bob|{LONGEST}"))
    await bob.expect(lambda l: l.startswith("RMSG|lobby|") and l.endswith(f"|{LONGEST}"))
    assert not any(TOO_LONG in l for l in bob.lines)
    for c in (alice, bob, raw):
        await c.close()
