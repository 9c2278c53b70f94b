"""Member lists in the cluster's one order, the same on every node and as one server's (#15).

A node listed its own members first and the other nodes' after them (``view.members`` then
``view.remote``), so ``CMD_WHO|dev`` on node A said ``a1,a2,b1,b2`` and on node B
``b1,b2,a1,a2`` where one server says the order they joined, ``a1,b1,a2,b2``; a node started
later listed the lobby and the rooms in the order of Redis's hash and sets. Now every node
lists users in the order the chat's log applied their registrations (the lobby, ``ULIST|``)
and a room's members in the order of their joins: a rename keeps its place, a part and a
join again goes last, as on one server.

Clients of three dialects join alternately on two real nodes (real sockets on loopback, a
real redis-server), then the same steps run on one server: every list, on every node (and on
a third node started afterwards), equals one server's.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from richchat.core.server import ChatServer, ServerConfig
from tests.cluster.conftest import NodeFactory
from tests.linechat import LineClient

#: (dialect, name), in the order they register; client i connects to node i % 2
CLIENTS = [
    ("hello", "amy"), ("hello", "bob"), ("seed", "sam"), ("raw", "rae"), ("hello", "cal"),
    ("seed", "sol"), ("raw", "rex"), ("hello", "dee"), ("hello", "eli"), ("hello", "fay"),
]  # fmt: skip
DIALECT = {name: dialect for dialect, name in CLIENTS}
#: who joins #dev, in this order (not the order they registered)
JOINS = ["fay", "rae", "cal", "amy", "rex", "eli", "bob", "dee"]

_ENTRY = re.compile(r"\([^)]*\)")


def _names(listing: str) -> list[str]:
    """``RLIST|dev|a(h:1),b(h:2)`` / ``ULIST|...`` -> ``["a", "b"]``."""
    body = listing.split("|", 2)[-1] if listing.startswith("RLIST|") else listing[6:]
    return [_ENTRY.sub("", e) for e in body.split(",") if e]


async def _raw(port: int, name: str) -> LineClient:
    user = await LineClient.connect(port)
    await user.expect(lambda l: l.startswith("*** Type a nickname"))
    user.send(name)
    await user.expect(lambda l: l.startswith(f"*** You are {name}."))
    return user


async def _ulist(seed: LineClient) -> str:
    """The answer to a seed client's ``CMD_WHO|lobby``: the last ``ULIST|`` before the
    ``PONG`` that follows it (seed clients are also sent one after each lobby change)."""
    seed.send("CMD_WHO|lobby")
    seed.send("PING|w")
    start = len(seed.lines)
    await seed.expect("PONG|w")
    return [l for l in seed.lines[start:] if l.startswith("ULIST|")][-1]


async def _scenario(
    ports: list[int],
) -> tuple[dict[str, list[list[str]]], list[LineClient]]:
    """The steps on ``ports`` (client i on ports[i % len]); what each list says, per node,
    and the clients (still connected)."""
    clients: dict[str, LineClient] = {}
    for i, (dialect, name) in enumerate(CLIENTS):
        port = ports[i % len(ports)]
        if dialect == "raw":
            clients[name] = await _raw(port, name)
        else:  # each waits for its own registration: the log has them in this order
            hello = "t" if dialect == "hello" else None
            clients[name] = await LineClient.connect(port, hello=hello, nick=name)

    async def join(name: str) -> None:
        c = clients[name]
        if DIALECT[name] == "raw":
            c.send("/join dev")
            await c.expect(lambda l: l.startswith("*** Members of #dev: "), timeout=10)
        else:
            c.send("CMD_JOIN|dev")
            await c.expect(lambda l: l.startswith("RLIST|dev|"), timeout=10)

    for name in JOINS:
        await join(name)
    # a rename keeps its place (lobby and #dev); a part and a join again goes last
    clients["bob"].send("CMD_USER|bea")
    await clients["bob"].expect("YOU|bea", timeout=10)
    clients["rae"].send("/part dev")
    await clients["rae"].expect(lambda l: l.startswith("*** rae left #dev"), timeout=10)
    await join("rae")
    # every node has applied everything once it relays this last message to its own clients
    clients["amy"].send("RMSG|dev|done")
    lists: dict[str, list[list[str]]] = {}
    for port_index in range(len(ports)):
        here = [n for i, (d, n) in enumerate(CLIENTS) if i % len(ports) == port_index]
        hello = next(clients[n] for n in here if DIALECT[n] == "hello" and n in JOINS)
        seed = next(clients[n] for n in here if DIALECT[n] == "seed")
        raw = next(clients[n] for n in here if DIALECT[n] == "raw")
        await hello.expect(lambda l: l.startswith("RMSG|dev|") and l.endswith("|amy|done"),
                           timeout=10)
        await raw.expect(lambda l: l.endswith("amy: done"), timeout=10)
        hello.send("CMD_WHO|lobby")
        lobby = await hello.expect(lambda l: l.startswith("RLIST|lobby|"))
        hello.send("CMD_WHO|dev")
        dev = await hello.expect(lambda l: l.startswith("RLIST|dev|"))
        ulist = await _ulist(seed)
        raw.send("/who dev")
        who = await raw.expect(lambda l: l.startswith("*** Members of #dev: "))
        raw.send("/who lobby")
        lobby_raw = await raw.expect(lambda l: l.startswith("*** Members of #lobby: "))
        lists.setdefault("lobby", []).append(_names(lobby))
        lists.setdefault("ulist", []).append(_names(ulist))
        lists.setdefault("lobby_raw", []).append(lobby_raw.split(": ", 1)[1].split(", "))
        lists.setdefault("dev", []).append(_names(dev))
        lists.setdefault("dev_raw", []).append(who.split(": ", 1)[1].split(", "))
        # the exact entries (name and address) are the same on every node too
        lists.setdefault("entries", []).append([lobby.split("|", 2)[2], dev.split("|", 2)[2],
                                                ulist[6:]])
    return lists, list(clients.values())


async def _close(clients: list[LineClient]) -> None:
    for c in clients:
        await c.close()


async def test_every_node_lists_members_in_the_clusters_one_order(
    make_node: NodeFactory, tmp_path: Path
) -> None:
    a, b = await make_node(), await make_node()
    cluster, users = await _scenario([a.port, b.port])

    # a node started afterwards learns the order from Redis (a client that has not
    # registered may ask: nothing changes)
    c = await make_node()
    late = await LineClient.connect(c.port, hello="t")
    late.send("CMD_WHO|lobby")
    late_lobby = await late.expect(lambda l: l.startswith("RLIST|lobby|"))
    late.send("CMD_WHO|dev")
    late_dev = await late.expect(lambda l: l.startswith("RLIST|dev|"))
    await late.close()
    await _close(users)

    one = ChatServer(ServerConfig(host="127.0.0.1", port=0, data_dir=tmp_path / "one",
                                  beacon=False, mdns=False, name="one", raw_detect_delay=0.2,
                                  ulist_delay=0.05))  # fmt: skip
    await one.start()
    try:
        single, users = await _scenario([one.port])
        await _close(users)
    finally:
        await one.stop()

    lobby = ["amy", "bea", "sam", "rae", "cal", "sol", "rex", "dee", "eli", "fay"]
    dev = ["fay", "cal", "amy", "rex", "eli", "bea", "dee", "rae"]
    assert single["lobby"] == single["ulist"] == single["lobby_raw"] == [lobby], single
    assert single["dev"] == single["dev_raw"] == [dev], single
    for what in ("lobby", "ulist", "lobby_raw"):
        assert cluster[what] == [lobby, lobby], (what, cluster[what])
    for what in ("dev", "dev_raw"):
        assert cluster[what] == [dev, dev], (what, cluster[what])
    entries_a, entries_b = cluster["entries"]
    assert entries_a == entries_b
    assert late_lobby == f"RLIST|lobby|{entries_a[0]}"
    assert late_dev == f"RLIST|dev|{entries_a[1]}"


async def test_ulist_keeps_its_exact_format_on_a_node(make_node: NodeFactory) -> None:
    """``ULIST|`` is part of the compatibility contract: ``ULIST|name(host:port),...`` in
    registration order, with users of both nodes."""
    a, b = await make_node(), await make_node()
    amy = await LineClient.connect(a.port, nick="amy")
    bob = await LineClient.connect(b.port, nick="bob")
    cal = await LineClient.connect(a.port, nick="cal")
    ports = [c.writer.get_extra_info("sockname")[1] for c in (amy, bob, cal)]
    want = "ULIST|" + ",".join(f"{n}(127.0.0.1:{p})" for n, p in zip(("amy", "bob", "cal"),
                                                                       ports, strict=True))
    for client in (amy, bob, cal):
        for _ in range(50):  # bounded: until its node has applied cal's registration
            got = await _ulist(client)
            if got.count(",") == 2:
                break
            await asyncio.sleep(0.1)
        assert got == want, (got, want)
    for client in (amy, bob, cal):
        await client.close()
