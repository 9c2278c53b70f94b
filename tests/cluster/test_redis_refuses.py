"""A Redis that answers but refuses the chat's writes (out of memory under ``maxmemory``
with ``noeviction``, say): a nickname the node could not claim is not "already in use".

Found by the fifth exploratory pass: with ``CONFIG SET maxmemory 1``, ``CMD_USER|oom`` (a
name nobody held) was answered ``ERR|name_taken|the nickname oom is already in use``, and a
netcat user was told the same, so they picked other names, all "in use"."""

from __future__ import annotations

import asyncio

from tests.cluster.conftest import NodeFactory
from tests.linechat import LineClient
from tests.redis_server import RedisServer


async def test_a_claim_redis_refuses_is_not_name_taken(
    make_node: NodeFactory, redis_server: RedisServer
) -> None:
    node = await make_node()
    watcher = await LineClient.connect(node.port, hello="t", nick="watcher")
    assert redis_server.command("CONFIG", "SET", "maxmemory-policy", "noeviction") == "+OK"
    assert redis_server.command("CONFIG", "SET", "maxmemory", "1") == "+OK"
    try:
        client = await LineClient.connect(node.port, hello="t")
        client.send("CMD_USER|zed")
        answer = await client.expect(lambda l: l.startswith(("YOU|", "ERR|")), timeout=15)
        assert answer.startswith("ERR|degraded|"), answer
    finally:
        assert redis_server.command("CONFIG", "SET", "maxmemory", "0") == "+OK"
    for _ in range(60):  # the same name, once Redis takes writes again (bounded)
        client.send("CMD_USER|zed")
        answer = await client.expect(lambda l: l.startswith(("YOU|", "ERR|")), timeout=15)
        if not answer.startswith("ERR|degraded|"):
            break
        await asyncio.sleep(0.5)
    await client.close()
    await watcher.close()
    assert answer == "YOU|zed", answer


async def test_a_topic_redis_refuses_is_not_shown_on_one_node_only(
    make_node: NodeFactory, redis_server: RedisServer
) -> None:
    """Found by the fifth exploratory pass: ``/topic oom topic`` while Redis refused writes
    was announced to the setter's node (``oom3 set the topic of #lobby: oom topic``) but never
    reached Redis: the other nodes, and everyone joining later, kept the old topic, and the
    two nodes disagreed from then on. Now its setter is told it was not set (in words, not
    Redis's own text with the script's hash), nobody is shown it, and a topic set once Redis
    takes writes again reaches both nodes."""
    a, b = await make_node(), await make_node()
    alice = await LineClient.connect(a.port, hello="t", nick="alice")
    bob = await LineClient.connect(b.port, hello="t", nick="bob")
    carol = await LineClient.connect(a.port, hello="t", nick="carol")  # alice's own node
    await alice.expect(lambda l: l.startswith("JOIN|lobby|bob("))
    await alice.expect(lambda l: l.startswith("JOIN|lobby|carol("))
    assert redis_server.command("CONFIG", "SET", "maxmemory-policy", "noeviction") == "+OK"
    assert redis_server.command("CONFIG", "SET", "maxmemory", "1") == "+OK"
    try:
        alice.send("CMD_TOPIC|lobby|while full")
        said = await alice.expect(lambda l: l.startswith(("TOPIC|lobby|", "ERR|")), timeout=15)
    finally:
        assert redis_server.command("CONFIG", "SET", "maxmemory", "0") == "+OK"
    assert said == ("ERR|degraded|the topic of #lobby was not set: its Redis is out of memory; "
                    "try again later"), said
    for _ in range(60):  # once Redis takes writes again (bounded): a topic reaches everyone
        alice.send("CMD_TOPIC|lobby|when fine")
        said = await alice.expect(lambda l: l.startswith(("TOPIC|lobby|", "ERR|")), timeout=15)
        if not said.startswith("ERR|degraded|"):
            break
        await asyncio.sleep(0.5)
    assert said == "TOPIC|lobby|alice|when fine", said
    for client in (bob, carol):
        await client.expect("TOPIC|lobby|alice|when fine", timeout=10)
        assert not any("while full" in line for line in client.lines), client.lines
    assert not any(line.startswith("TOPIC|") and "while full" in line for line in alice.lines)
    await alice.close()
    await bob.close()
    await carol.close()
