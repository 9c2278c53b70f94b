"""A node cut off from the chat for longer than its heartbeat deadline: the others announce its
users as gone; when it speaks again it learns it was dropped, disconnects its clients with a
reason, and joins the chat anew (heartbeats shortened for the test)."""

from __future__ import annotations

import asyncio

import pytest

from richchat.core.server.backends import redis as backend
from tests.cluster.conftest import NodeFactory
from tests.conditions import wait_until
from tests.linechat import LineClient


async def test_a_node_silent_too_long_is_dropped_and_comes_back(
    make_node: NodeFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(backend, "HEARTBEAT_S", 0.2)
    monkeypatch.setattr(backend, "NODE_TTL_S", 1.0)
    a, b = await make_node(), await make_node()
    alice = await LineClient.connect(a.port, hello="t", nick="alice")
    bob = await LineClient.connect(b.port, hello="t", nick="bob")
    await alice.expect(lambda l: l.startswith("JOIN|lobby|bob("))
    node_b = b.backend
    assert isinstance(node_b, backend.RedisBackend)
    heartbeat = node_b._tasks[2]  # as if b froze: no heartbeat reaches Redis
    heartbeat.cancel()
    await alice.expect("PART|lobby|bob|connection lost", timeout=30)
    bob.send("MSG|am I still here?")  # b's next write finds it was dropped
    await bob.expect(lambda l: "cut off from the chat" in l, timeout=30)
    assert await bob.closed(timeout=30)
    assert not any("am I still here" in l for l in alice.lines)
    # b joins the chat anew: its next client is everyone's to see
    node_b._tasks[2] = asyncio.create_task(node_b._heartbeat_loop())
    bob2 = await LineClient.connect(b.port, hello="t", nick="bob")
    assert bob2.lines[-1] == "YOU|bob"
    await alice.expect(lambda l: l.startswith("JOIN|lobby|bob("))
    await wait_until(lambda: a.hub is not None and a.hub.users_online == 2, "two users")
    await alice.close()
    await bob2.close()
