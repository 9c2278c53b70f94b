"""A cleared topic is announced as cleared, in every dialect.

Found by the tenth exploratory pass: ``/topic --clear`` told everyone ``*** bob set the topic
of #lobby: `` (netcat), ``SRV|bob set the topic: `` (seed clients) and ``Topic by bob: ``
(the chat UI): a topic set to nothing, with a dangling colon, instead of "cleared"."""

from __future__ import annotations

from richchat.core.server import ChatServer
from tests.linechat import LineClient


async def test_a_cleared_topic_is_announced_as_cleared(server: ChatServer) -> None:
    alice = await LineClient.connect(server.port, hello="t", nick="alice")
    seed = await LineClient.connect(server.port, nick="carol")
    raw = await LineClient.connect(server.port)
    await raw.expect(lambda l: l.startswith("*** Type a nickname"))
    raw.send("bob")
    await raw.expect(lambda l: l.startswith("*** You are bob"))
    raw.send("/join dev")
    await raw.expect(lambda l: l.startswith("*** Members of #dev"))
    alice.send("CMD_JOIN|dev")
    await raw.expect("*** alice joined #dev")

    alice.send("CMD_TOPIC|lobby|standup at 10")
    await raw.expect("*** alice set the topic of #lobby: standup at 10")
    await seed.expect("SRV|alice set the topic: standup at 10")
    alice.send("CMD_TOPIC|lobby|")
    await alice.expect("TOPIC|lobby|alice|")  # the hello frame is unchanged
    await raw.expect("*** alice cleared the topic of #lobby")
    await seed.expect("SRV|alice cleared the topic")

    raw.send("/topic dev things")
    await raw.expect("*** bob set the topic of #dev: dev things")
    raw.send("/topic --clear")
    await raw.expect("*** bob cleared the topic of #dev")
    await alice.expect("TOPIC|dev|bob|")
    assert not [l for l in raw.lines + seed.lines if l.endswith("topic: ")]
    for client in (alice, seed, raw):
        await client.close()
