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
