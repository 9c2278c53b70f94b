"""A Redis outage longer than the nodes' heartbeat deadline cuts every node off alike: when
Redis is back, no node may take the others' stale deadlines for deaths. Found by the fifth
exploratory pass: two nodes, Redis stopped for about 15 s and restarted; the node whose
heartbeat came first reaped the other, whose users were announced as gone
(``alice left (connection lost)``) and disconnected (``this server was cut off from the chat;
please reconnect``), against the README ("Redis gone: clients stay connected ... when Redis is
back the nodes say so and go on where they stopped"). Heartbeats shortened for the test."""

from __future__ import annotations

import asyncio

import pytest

from richchat.core.server.backends import redis as backend
from tests.cluster.conftest import NodeFactory
from tests.conditions import wait_until
from tests.linechat import LineClient
from tests.redis_server import RedisServer


def _degraded(*nodes: object) -> bool:
    return all(
        getattr(n, "backend", None) is not None and n.backend.degraded  # type: ignore[attr-defined]
        for n in nodes
    )


async def test_a_long_redis_outage_drops_no_node(
    make_node: NodeFactory, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(backend, "HEARTBEAT_S", 0.2)
    monkeypatch.setattr(backend, "NODE_TTL_S", 1.0)
    a, b = await make_node(), await make_node()
    alice = await LineClient.connect(a.port, hello="t", nick="alice")
    bob = await LineClient.connect(b.port, hello="t", nick="bob")
    await alice.expect(lambda l: l.startswith("JOIN|lobby|bob("))

    redis_server.stop()
    await wait_until(lambda: _degraded(a, b), "both nodes degraded")
    await asyncio.sleep(3 * backend.NODE_TTL_S)  # the outage outlasts every heartbeat deadline
    redis_server.start()
    await wait_until(lambda: not _degraded(a) and not _degraded(b), "both nodes back", 60)
    await asyncio.sleep(3 * backend.NODE_TTL_S)  # reapers and heartbeats run several rounds

    bob.send("MSG|still here")
    await alice.expect(
        lambda l: l.startswith("RMSG|lobby|") and l.endswith("|bob|still here"), timeout=15
    )
    alice.send("MSG|me too")
    await bob.expect(
        lambda l: l.startswith("RMSG|lobby|") and l.endswith("|alice|me too"), timeout=15
    )
    said = alice.lines + bob.lines
    assert not [l for l in said if "connection lost" in l or "cut off" in l], said
    await alice.close()
    await bob.close()
