"""Discovery sees the nodes of a cluster as one chat: each node advertises the chat it serves
(on loopback's broadcast address), discover groups them, the wizard offers them as one row
whose other nodes are the chat's alternates."""

from __future__ import annotations

import io

from rich.console import Console

from richchat.core.client import Address
from richchat.core.discovery import DiscoveryOptions, discover
from richchat.core.discovery.render import advertised_table, chats
from richchat.core.wizard import candidates
from tests.cluster.conftest import NodeFactory
from tests.discovery.conftest import WINDOW, free_udp_port

LOOP = "127.255.255.255"


async def test_two_nodes_are_one_chat_in_discover_and_the_wizard(
    make_node: NodeFactory,
) -> None:
    port = free_udp_port()
    beacon = dict(beacon=True, beacon_port=port, beacon_addrs=(LOOP,), beacon_interval=3600)
    a = await make_node(name="alpha", cluster="office", **beacon)
    b = await make_node(name="beta", cluster="office", **beacon)
    options = DiscoveryOptions(timeout=WINDOW, arp=False, mdns=False, interface="lo",
                               broadcast=[LOOP], beacon_port=port)
    report = await discover(options)
    assert sorted(s.port for s in report.servers) == sorted([a.port, b.port])
    assert {s.cluster for s in report.servers} == {"office"}
    assert len({s.cluster_id for s in report.servers}) == 1
    assert len({s.server_id for s in report.servers}) == 2  # each node is itself
    [chat] = chats(report.servers)
    assert len(chat) == 2

    [row] = [c for c in candidates(report) if c.group == "advertised"]
    assert row.name == "office" and "2 nodes of one chat" in row.detail
    other = b.port if row.port == a.port else a.port
    assert row.alternates == (Address("127.0.0.1", other),)

    out = io.StringIO()
    Console(file=out, width=140).print(advertised_table(report))
    assert "office (cluster, 2 nodes)" in out.getvalue()
    assert a.hub is not None and a.hub.delivery.server_hello().cluster == "office"
