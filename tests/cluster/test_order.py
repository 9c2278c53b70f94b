"""One room, one order across nodes: 3 nodes on one real redis-server, 20 clients spread
over them, 500 numbered messages each; one node's Redis connections are cut mid-run."""

from __future__ import annotations

import asyncio

from richchat.core.server import ChatServer
from tests.cluster.conftest import NodeFactory
from tests.cluster.load import LoadClient
from tests.conditions import wait_until
from tests.linechat import LineClient
from tests.redis_server import RedisServer

CLIENTS = 20
MESSAGES = 500


def node_id(server: ChatServer) -> str:
    return server.backend.node  # type: ignore[union-attr]


def check_one_order(clients: list[LoadClient], total: int) -> None:
    """Everyone received every message once, all in the same order, ids increasing."""
    reference = clients[0].received
    assert len(reference) == total, f"{len(reference)} of {total}"
    ids = [m[0] for m in reference]
    assert ids == sorted(ids) and len(set(ids)) == total  # monotonic, no duplicates
    assert len({(m[1], m[2]) for m in reference}) == total  # no message twice
    for c in clients[1:]:
        assert c.received == reference, c.nick
    for c in clients:  # each sender's messages in the order it sent them, none missing
        mine = [int(text.rsplit("-", 1)[1]) for _id, name, text in reference if name == c.nick]
        assert mine == list(range(c.count)), c.nick


async def test_three_nodes_one_order_with_a_cut_connection(
    make_node: NodeFactory, redis_server: RedisServer
) -> None:
    nodes = [await make_node(flood_rate=0) for _ in range(3)]
    clients = [
        await LoadClient.open(nodes[i % 3].port, f"c{i}", MESSAGES) for i in range(CLIENTS)
    ]
    total = CLIENTS * MESSAGES
    # everyone sees everyone (the presence of all 20 reached all 3 nodes) before the run
    await wait_until(
        lambda: all(n.hub is not None and n.hub.users_online == CLIENTS for n in nodes),
        "every node to list all clients",
    )
    for c in clients:
        c.start()
    watcher = clients[0]
    await wait_until(lambda: len(watcher.received) >= total // 2, "half of the messages", 120)
    name = f"richchat-{node_id(nodes[1])}"
    before = set(redis_server.client_ids(name))
    cut = redis_server.kill_clients(name)
    assert cut >= 1  # the node's reader (blocked in XREAD) at least
    await asyncio.wait_for(asyncio.gather(*(c.done.wait() for c in clients)), 180)
    await wait_until(
        lambda: all(len(c.received) >= total for c in clients), "every copy everywhere", 60
    )
    check_one_order(clients, total)
    after = set(redis_server.client_ids(name))
    assert after and not after & before  # the cut node talks to Redis on new connections
    assert not [e for c in clients for e in c.errors]
    for c in clients:
        c.close()


async def test_redis_restart_degrades_then_resumes_without_loss(
    make_node: NodeFactory, redis_server: RedisServer
) -> None:
    """Redis stopped and started again (AOF, appendfsync always) in the middle of a run:
    clients stay connected and are told, messages are refused meanwhile (ERR|degraded; the
    load clients send them again), and afterwards nothing confirmed is missing anywhere."""
    nodes = [await make_node(flood_rate=0) for _ in range(3)]
    clients = [await LoadClient.open(nodes[i % 3].port, f"r{i}", 150) for i in range(6)]
    probe = await LineClient.connect(nodes[2].port, hello="t", nick="probe")
    await wait_until(lambda: all(n.hub and n.hub.users_online == 7 for n in nodes), "presence")
    for c in clients:
        c.start()
    await wait_until(lambda: len(clients[0].received) >= 300, "a third of the messages")
    redis_server.stop()
    await wait_until(
        lambda: all(any("degraded" in n for n in c.notices) for c in clients),
        "every client told the chat is degraded",
    )
    probe.send("MSG|sent while Redis is away")
    refused = await probe.expect(lambda l: l.startswith("ERR|"))
    assert refused.startswith("ERR|degraded|your message was not delivered")
    redis_server.start()
    await wait_until(
        lambda: all(any("is back" in n for n in c.notices) for c in clients),
        "every client told the chat is back",
    )
    await asyncio.wait_for(asyncio.gather(*(c.done.wait() for c in clients)), 120)
    await wait_until(lambda: all(len(c.received) >= 900 for c in clients), "every copy", 60)
    check_one_order(clients, 900)
    assert not any("while Redis is away" in m[2] for m in clients[0].received)
    assert all(c.transport is not None and not c.transport.is_closing() for c in clients)
    assert not [e for c in clients for e in c.errors]
    for c in clients:
        c.close()
    await probe.close()
