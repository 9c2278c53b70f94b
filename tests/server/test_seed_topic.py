"""docs/protocol.md, "Registration": on registration a client gets the lobby's history, its
user list, then its topic. Seed clients got no topic at all (hello clients get ``TOPIC|``,
netcat users ``*** Topic: ...``): a seed client that came after the topic was set never
learnt it. Now it gets ``SRV|Topic: TEXT`` after its ``ULIST|``, before ``SRV|NAME joined``;
with no topic set, nothing. Through a real server."""

from __future__ import annotations

from richchat.core.server import ChatServer
from tests.linechat import LineClient


async def test_a_seed_client_gets_the_lobby_topic_on_registration(server: ChatServer) -> None:
    early = await LineClient.connect(server.port, nick="early")
    await early.expect(lambda l: l.startswith("ULIST|"))
    assert not [l for l in early.lines if l.startswith("SRV|Topic")]  # none set yet

    alice = await LineClient.connect(server.port, hello="t", nick="alice")
    alice.send("CMD_TOPIC|lobby|standup at 10 | room 2")
    await alice.expect("TOPIC|lobby|alice|standup at 10 | room 2")

    dave = await LineClient.connect(server.port, nick="dave")  # reads up to "dave joined"
    after_welcome = dave.lines[dave.lines.index(
        "SRV|Welcome to test-server (richchat 0.1.0, protocol 1)") + 1:]
    ulist = next(i for i, l in enumerate(after_welcome) if l.startswith("ULIST|"))
    assert after_welcome[ulist + 1:] == ["SRV|Topic: standup at 10 | room 2",
                                         "SRV|dave joined"]

    alice.send("CMD_TOPIC|lobby|")  # cleared: the next seed client is told nothing
    await alice.expect("TOPIC|lobby|alice|")
    erin = await LineClient.connect(server.port, nick="erin")
    assert not [l for l in erin.lines if l.startswith("SRV|Topic")]
    for c in (early, alice, dave, erin):
        await c.close()
