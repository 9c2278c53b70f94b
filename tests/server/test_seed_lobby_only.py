"""Seed clients live in the lobby only (docs/protocol.md): a seed client that names another
room is refused, instead of becoming a member of a room it never sees (listed to everyone,
its lines stored there, no echo, no replies), and it gets only the frames the seed dialect
knows (``SRV|`` for the room list, not ``ROOMS|``). Through a real server."""

from __future__ import annotations

from richchat.core.server import ChatServer
from tests.linechat import LineClient

REFUSAL = ("ERR|bad_frame|seed clients stay in the lobby "
           "(send HELLO|1|AGENT first to use rooms)")


async def test_a_seed_client_cannot_enter_or_talk_to_another_room(server: ChatServer) -> None:
    alice = await LineClient.connect(server.port, hello="t", nick="alice")
    alice.send("CMD_JOIN|dev")
    await alice.expect(lambda l: l.startswith("RLIST|dev|"))
    seed = await LineClient.connect(server.port, nick="sam")
    for line in ("CMD_JOIN|dev", "RMSG|dev|hello dev", "CMD_ME|dev|waves", "CMD_TOPIC|dev|t",
                 "CMD_WHO|dev", "CMD_PART|dev"):
        seed.send(line)
        assert await seed.expect(lambda l: l.startswith("ERR|")) == REFUSAL, line
    seed.send("CMD_ROOMS|")
    assert await seed.expect(lambda l: l.startswith(("SRV|Rooms", "ROOMS|"))) == (
        "SRV|Rooms: #lobby (2), #dev (1)")
    alice.send("CMD_WHO|dev")
    assert (await alice.expect(lambda l: l.startswith("RLIST|dev|"))).count("(") == 1
    # the lobby is the seed client's own: all of this still works there
    seed.send("CMD_ME|lobby|waves")
    await alice.expect(lambda l: l.startswith("ACTION|lobby|") and l.endswith("|sam|waves"))
    seed.send("MSG|still here")
    await seed.expect("MSG|sam: still here")
    assert not any("hello dev" in l for l in alice.lines)
    await seed.close()
    await alice.close()
