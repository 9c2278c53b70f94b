"""Everything a chat does, across nodes of one cluster: rooms, topics, /who, /rooms, private
messages, history, renames, look-alike names, and one winner among concurrent claims."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from richchat.core.client import Address
from richchat.core.errors import FileUnavailableError
from richchat.core.sharing import share_file
from tests.cluster.conftest import NodeFactory
from tests.conditions import wait_until
from tests.linechat import LineClient


async def test_rooms_topics_who_and_privates_across_nodes(make_node: NodeFactory) -> None:
    a, b, c = await make_node(), await make_node(), await make_node()
    alice = await LineClient.connect(a.port, hello="t", nick="alice")
    bob = await LineClient.connect(b.port, hello="t", nick="bob")
    carol = await LineClient.connect(c.port, hello="t", nick="carol")
    await wait_until(lambda: all(n.hub and n.hub.users_online == 3 for n in (a, b, c)), "all")
    # the lobby's user list on every node names everyone
    carol.send("CMD_WHO|lobby")
    who = await carol.expect(lambda l: l.startswith("RLIST|lobby|"))
    assert all(f"{n}(" in who for n in ("alice", "bob", "carol"))

    alice.send("CMD_JOIN|dev")
    await alice.expect(lambda l: l.startswith("RLIST|dev|alice("))
    bob.send("CMD_JOIN|dev")
    rlist = await bob.expect(lambda l: l.startswith("RLIST|dev|"))
    assert "alice(" in rlist and "bob(" in rlist  # a remote member in the room's list
    await alice.expect(lambda l: l.startswith("JOIN|dev|bob("))
    carol.send("CMD_ROOMS|")
    assert await carol.expect(lambda l: l.startswith("ROOMS|")) == "ROOMS|lobby:3,dev:2"
    carol.send("CMD_WHO|dev")
    who = await carol.expect(lambda l: l.startswith("RLIST|dev|"))
    assert "alice(" in who and "bob(" in who and "carol(" not in who

    alice.send("CMD_TOPIC|dev|release friday")
    await bob.expect("TOPIC|dev|alice|release friday")
    alice.send("RMSG|dev|dev talk")
    line = await bob.expect(lambda l: l.startswith("RMSG|dev|"))
    assert line.endswith("|alice|dev talk")
    assert (await alice.expect(lambda l: l.startswith("RMSG|dev|"))) == line
    alice.send("CMD_ME|dev|ships it")
    await bob.expect(lambda l: l.startswith("ACTION|dev|") and l.endswith("|alice|ships it"))

    # private messages go to the node holding the recipient, and only there
    alice.send("CMD_MSG|BOB|meet at noon")
    priv = await bob.expect(lambda l: l.startswith("PRIV|"))
    assert priv.endswith("|alice|bob|meet at noon")
    assert (await alice.expect(lambda l: l.startswith("PRIV|"))) == priv  # the echo
    carol.send("CMD_MSG|alice|hi from c")
    assert (await alice.expect(lambda l: l.startswith("PRIV|"))).endswith("|carol|alice|hi from c")
    carol.send("CMD_MSG|nobody|x")
    assert (await carol.expect(lambda l: l.startswith("ERR|"))).startswith("ERR|no_such_user|")

    # a late joiner on a third node gets the room's history (same ids) and topic
    dave = await LineClient.connect(c.port, hello="t", nick="dave")
    dave.send("CMD_JOIN|dev")
    await dave.expect("TOPIC|dev|alice|release friday")
    history = await dave.expect(lambda l: l.startswith("RMSG|dev|"))
    assert history == line
    rlist = await dave.expect(lambda l: l.startswith("RLIST|dev|"))
    assert all(f"{n}(" in rlist for n in ("alice", "bob", "dave"))

    # renames and parts reach the other nodes' lists
    bob.send("CMD_USER|robert")
    await alice.expect("NICK|bob|robert")
    # carol's node reads the log on its own: once she has the rename, so has her node (the
    # WHO was answered from before it now and then, under load)
    await carol.expect("NICK|bob|robert")
    carol.send("CMD_WHO|dev")
    who = await carol.expect(lambda l: l.startswith("RLIST|dev|"))
    assert "robert(" in who and "bob(" not in who
    bob.send("CMD_PART|dev")
    await alice.expect("PART|dev|robert|left")
    await bob.close()
    await alice.expect(lambda l: l.startswith("PART|lobby|robert|"))
    await wait_until(lambda: all(n.hub and n.hub.users_online == 3 for n in (a, b, c)), "gone")
    carol.send("CMD_ROOMS|")
    assert await carol.expect(lambda l: l.startswith("ROOMS|")) == "ROOMS|lobby:3,dev:2"
    assert not any("noon" in l for l in carol.lines + dave.lines)
    for cl in (alice, carol, dave):
        await cl.close()


async def test_history_and_ids_when_reconnecting_to_another_node(make_node: NodeFactory) -> None:
    a, b = await make_node(), await make_node()
    alice = await LineClient.connect(a.port, hello="t", nick="alice")
    for i in range(5):
        alice.send(f"MSG|line {i}")
    seen = [await alice.expect(lambda l, i=i: l.endswith(f"|alice|line {i}")) for i in range(5)]
    ids = [int(l.split("|")[2]) for l in seen]
    assert ids == sorted(ids) and len(set(ids)) == 5
    await alice.close()
    await wait_until(lambda: b.hub is not None and b.hub.users_online == 0, "alice gone")
    # the same user on another node: the same history, same ids, nothing twice
    again = await LineClient.connect(b.port, hello="t", nick="alice")
    lines = [l for l in again.lines if l.startswith("RMSG|lobby|")]
    assert lines == seen
    again.send("MSG|after")
    after = await again.expect(lambda l: l.endswith("|alice|after"))
    assert int(after.split("|")[2]) > ids[-1]  # ids go on across nodes
    await again.close()


async def test_names_are_unique_across_nodes_and_look_alikes_too(make_node: NodeFactory) -> None:
    a, b = await make_node(), await make_node()
    admin = await LineClient.connect(a.port, hello="t", nick="admin")
    await wait_until(lambda: b.hub is not None and b.hub.users_online == 1, "presence")
    for nick in ("ADMIN", "аdmin", "ＡＤＭＩＮ"):  # same name, Cyrillic а, full width
        other = await LineClient.connect(b.port, hello="t", nick=nick)
        err = other.lines[-1]
        assert err.startswith("ERR|name_taken|"), (nick, err)
        await other.close()
    await admin.close()
    await wait_until(lambda: b.hub is not None and b.hub.users_online == 0, "admin gone")
    again = await LineClient.connect(b.port, hello="t", nick="ADMIN")  # free now
    assert again.lines[-1].startswith("YOU|")
    await again.close()


async def test_fifty_concurrent_claims_of_one_name_one_winner(make_node: NodeFactory) -> None:
    nodes = [await make_node(max_clients=100) for _ in range(3)]
    clients = [
        await LineClient.connect(nodes[i % 3].port, hello="t") for i in range(50)
    ]
    for c in clients:  # every client has its welcome before anyone claims
        await c.expect(lambda l: l.startswith("ULIST|"))
    for c in clients:
        c.send("CMD_USER|zed")
    answers = await asyncio.gather(
        *(c.expect(lambda l: l.startswith(("YOU|", "ERR|")), timeout=30) for c in clients)
    )
    winners = [a for a in answers if a.startswith("YOU|")]
    assert len(winners) == 1, answers
    assert all(a.startswith("ERR|name_taken|") for a in answers if not a.startswith("YOU|"))
    await wait_until(
        lambda: all(n.hub and n.hub.users_online == 1 for n in nodes), "one zed everywhere"
    )
    for c in clients:
        await c.close()


async def test_a_node_of_a_cluster_shares_no_files(make_node: NodeFactory, tmp_path: Path) -> None:
    # Files live in one node's data directory: a cluster turns sharing off, and says so in
    # its HELLO (no files=), so clients refuse before sending a byte.
    node = await make_node()
    assert node.files is None
    raw = await LineClient.connect(node.port, hello="t")
    hello = await raw.expect(lambda l: l.startswith("HELLO|"))
    assert "files=" not in hello and "|cluster=test" in hello
    await raw.close()
    src = tmp_path / "f.txt"
    src.write_text("hello\n")
    # the reason names the cluster (not "an older server, or --no-files")
    with pytest.raises(FileUnavailableError, match="node of the cluster 'test'"):
        await share_file(Address("127.0.0.1", node.port), "alice", src)
    assert not (node.config.data_dir / "files").exists()
