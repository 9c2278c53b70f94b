"""Redis restarted without its data (no persistence, or its files lost): every node finds it
is no longer a member, disconnects its clients and joins again. What the nodes still knew of
each other's users is gone with it: nobody is listed who is not connected.

Found by the fifth exploratory pass: three nodes, alice on one, bob on another, Redis killed
and restarted empty. Both were disconnected ("this server was cut off from the chat; please
reconnect"), yet a newcomer on bob's node was told ``Users online: alice`` and one on alice's
node ``Users online: bob``, and ``/who`` listed them, long after they had gone."""

from __future__ import annotations

import pytest

from richchat.core.server.backends import redis as backend
from tests.cluster.conftest import NodeFactory, wipe_redis
from tests.linechat import LineClient
from tests.redis_server import RedisServer


async def test_a_wiped_redis_leaves_no_ghosts(
    make_node: NodeFactory, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(backend, "HEARTBEAT_S", 0.2)
    a, b = await make_node(), await make_node()
    alice = await LineClient.connect(a.port, hello="t", nick="alice")
    bob = await LineClient.connect(b.port, hello="t", nick="bob")
    await alice.expect(lambda l: l.startswith("JOIN|lobby|bob("))

    await wipe_redis(redis_server, (a, b), (alice, bob))

    for node, nick in ((a, "carol"), (b, "dave")):
        newcomer = await LineClient.connect(node.port, hello="t", nick=nick)
        users = [l for l in newcomer.lines if l.startswith("ULIST|")]
        newcomer.send("CMD_WHO|lobby")
        members = await newcomer.expect(lambda l: l.startswith("RLIST|lobby|"))
        await newcomer.close()
        assert "alice" not in members and "bob" not in members, members
        assert not any("alice" in l or "bob" in l for l in users), users
