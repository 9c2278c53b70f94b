"""Lines sent at once (a script, ``printf ... | nc``) get the answers one server would give,
in the same order, from a node of a cluster.

Found by the exploratory pass of stop 28: on a node, a registration, a join or a part goes
through Redis before it is applied; the lines after it were answered at once from the view
before it (``CMD_WHO|lobby`` without the new user, ``CMD_WHO|zz9`` "no such room" right
after ``CMD_JOIN|zz9``), ahead of the user's own ``YOU``/``JOIN``. And a client that closed
its sending side after its lines (``printf 'CMD_USER|bot\\nMSG|deploy done\\n' | nc``) got
none of its answers: the node closed the connection before its registration and its message
came back from Redis, though the message was delivered to everyone else."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from richchat.core.server import ChatServer
from richchat.core.server.backends import redis as backend
from tests.cluster.conftest import NodeFactory
from tests.linechat import LineClient


async def _lines_until_closed(port: int, text: str, timeout: float = 20.0) -> list[str]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(text.encode())
    await writer.drain()
    writer.write_eof()
    data = await asyncio.wait_for(reader.read(), timeout)
    writer.close()
    return data.decode().splitlines()


async def test_queries_after_a_registration_and_a_join_see_them(make_node: NodeFactory) -> None:
    a, b = await make_node(), await make_node()
    other = await LineClient.connect(b.port, hello="t", nick="obs")
    other.send("CMD_JOIN|zz9")  # in the room first: its count then says whether w9 is in it
    await other.expect(lambda l: l.startswith("RLIST|zz9|"))
    lines = await _lines_until_closed(
        a.port, "HELLO|1|t\nCMD_USER|w9\nCMD_WHO|lobby\nCMD_JOIN|zz9\nCMD_WHO|zz9\nCMD_ROOMS|\n")
    answers = [l for l in lines if l.startswith(("YOU|", "RLIST|", "ROOMS|", "ERR|", "JOIN|"))]
    who_lobby = next(l for l in answers if l.startswith("RLIST|lobby|"))
    assert "w9(" in who_lobby and "obs(" in who_lobby, lines
    assert not any(l.startswith("ERR|") for l in answers), lines
    assert answers.index(who_lobby) > answers.index("YOU|w9"), lines
    joined = next(i for i, l in enumerate(answers) if l.startswith("JOIN|zz9|w9("))
    who_room = [i for i, l in enumerate(answers) if l.startswith("RLIST|zz9|")]
    # the join's own room state, then the answer to CMD_WHO: both list w9 (and obs)
    assert len(who_room) == 2 and min(who_room) > joined, lines
    assert all("w9(" in answers[i] and "obs(" in answers[i] for i in who_room), lines
    # one ROOMS line, the answer to CMD_ROOMS (no other line here is one): after the answers
    # to the join and to CMD_WHO, with both users counted in the room and in the lobby
    rooms = [i for i, l in enumerate(answers) if l.startswith("ROOMS|")]
    assert len(rooms) == 1 and rooms[0] > max(who_room), lines
    assert set(answers[rooms[0]][len("ROOMS|"):].split(",")) == {"lobby:2", "zz9:2"}, lines
    await other.close()


async def test_a_script_that_closes_its_side_gets_its_answers(make_node: NodeFactory) -> None:
    a, b = await make_node(), await make_node()
    watcher = await LineClient.connect(b.port, hello="t", nick="watch")
    lines = await _lines_until_closed(a.port, "CMD_USER|botx\nMSG|deploy done\n")
    assert any("botx joined" in l for l in lines), lines  # a seed client: SRV|botx joined
    assert "MSG|botx: deploy done" in lines, lines
    await watcher.expect(lambda l: l.endswith("|botx|deploy done"))
    await watcher.close()


async def test_a_script_gets_the_copy_of_its_private_message(make_node: NodeFactory) -> None:
    """Found by review: a private message's copy to its sender comes back from Redis too; a
    script that closed its side right after `CMD_MSG` was closed before it (the addressee got
    the message, the sender nothing)."""
    a, b = await make_node(), await make_node()
    alice = await LineClient.connect(b.port, hello="t", nick="alice")
    lines = await _lines_until_closed(a.port, "HELLO|1|t\nCMD_USER|bot\nCMD_MSG|alice|hi\n")
    assert any(l.startswith("PRIV|") and l.endswith("|bot|alice|hi") for l in lines), lines
    await alice.expect(lambda l: l.startswith("PRIV|") and l.endswith("|bot|alice|hi"))
    await alice.close()


async def test_a_change_that_never_comes_back_holds_the_connection_for_a_while_only(
        make_node: NodeFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Found by review: a connection waits for its own change to come back from Redis before
    its next line; a change that never does (the log trimmed before this node read it, a
    Redis that lost its last writes) would have held it for good, reading paused. It waits
    SETTLE_LIMIT_S at most (0.5 s here), then goes on."""
    monkeypatch.setattr(backend, "SETTLE_LIMIT_S", 0.5)
    a, _b = await make_node(), await make_node()
    carl = await LineClient.connect(a.port, hello="t", nick="carl")
    node = a.backend
    assert isinstance(node, backend.RedisBackend)
    peer = next(h.peer for h in node._names.values() if h.peer is not None)
    node._count(peer, 0, 1)  # a change of carl's that Redis will never give back
    carl.send("CMD_WHO|lobby")
    assert (await carl.expect(lambda l: l.startswith("RLIST|lobby|"), timeout=10)).count("carl(")
    carl.send("CMD_WHO|lobby")  # and the next one is not held again
    await carl.expect(lambda l: l.startswith("RLIST|lobby|"), timeout=10)
    await carl.close()


def _count_waits(monkeypatch: pytest.MonkeyPatch) -> dict[object, int]:
    """How many times each node made a connection wait for its own events (settled()
    returned an awaitable): one round trip through Redis each."""
    waits: dict[object, int] = {}
    real = backend.RedisBackend.settled

    def counting(self: backend.RedisBackend, peer: Any, messages: bool = False) -> Any:
        pending = real(self, peer, messages)
        if pending is not None:
            waits[self] = waits.get(self, 0) + 1
        return pending

    monkeypatch.setattr(backend.RedisBackend, "settled", counting)
    return waits


def _count_batches(monkeypatch: pytest.MonkeyPatch, node: ChatServer) -> list[int]:
    """The node's pipelines to Redis from now on (its writer sends one per batch of events)."""
    r = node.backend._redis  # type: ignore[attr-defined]
    real = r.pipeline
    made = [0]

    def counting(*args: Any, **kw: Any) -> Any:
        made[0] += 1
        return real(*args, **kw)

    monkeypatch.setattr(r, "pipeline", counting)
    return made


async def test_a_burst_of_joins_goes_to_redis_at_once(
        make_node: NodeFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """A client joining 20 rooms in a row (the chat UI rejoining its rooms on connect) waited
    for each join to come back from Redis before the next line: 20 round trips one after the
    other. Only a line answered from the node's view waits now (here the last one)."""
    a, b = await make_node(), await make_node()
    other = await LineClient.connect(b.port, hello="t", nick="obs")
    waits = _count_waits(monkeypatch)
    batches = _count_batches(monkeypatch, a)
    rooms = [f"r{n}" for n in range(20)]
    script = "HELLO|1|t\nCMD_USER|j20\n" + "".join(f"CMD_JOIN|{r}\n" for r in rooms)
    lines = await _lines_until_closed(a.port, script + "CMD_ROOMS|\n")
    assert not any(l.startswith("ERR|") for l in lines), lines
    joins = [l.split("|")[1] for l in lines if l.startswith("JOIN|") and "|j20(" in l]
    assert joins == ["lobby", *rooms], lines
    listing = [i for i, l in enumerate(lines) if l.startswith("ROOMS|")]
    assert len(listing) == 1, lines
    last_join = max(i for i, l in enumerate(lines) if l.startswith(f"JOIN|{rooms[-1]}|j20("))
    assert listing[0] > last_join, lines
    counted = set(lines[listing[0]][len("ROOMS|"):].split(","))
    assert counted == {"lobby:2", *(f"{r}:1" for r in rooms)}, lines
    # the CMD_ROOMS line waits for the joins (once), nothing before it does; the joins went
    # to Redis in a few batches (the claim, the registration, the joins), not one each
    assert waits.get(a.backend, 0) <= 2, waits
    assert batches[0] < 10, batches
    await other.close()


async def test_a_message_to_a_room_just_joined_is_ordered_after_the_join(
        make_node: NodeFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """The hub checks membership in the connection's own rooms (updated when it joins, not
    when Redis gives the join back) and the log orders the message after the join: no wait,
    no "not in room", and everyone sees the join before the line."""
    a, b = await make_node(), await make_node()
    obs = await LineClient.connect(b.port, hello="t", nick="obs")
    obs.send("CMD_JOIN|m1")
    await obs.expect(lambda l: l.startswith("RLIST|m1|"))
    waits = _count_waits(monkeypatch)
    lines = await _lines_until_closed(
        a.port, "HELLO|1|t\nCMD_USER|mj\nCMD_JOIN|m1\nRMSG|m1|first words\nCMD_ME|m1|waves\n")
    assert not any(l.startswith("ERR|") for l in lines), lines
    joined = next(i for i, l in enumerate(lines) if l.startswith("JOIN|m1|mj("))
    said = next(i for i, l in enumerate(lines) if l.startswith("RMSG|m1|") and l.endswith("|mj|first words"))
    waved = next(i for i, l in enumerate(lines) if l.startswith("ACTION|m1|") and l.endswith("|mj|waves"))
    assert joined < said < waved, lines
    seen_join = await obs.expect(lambda l: l.startswith("JOIN|m1|mj("))
    seen_msg = await obs.expect(lambda l: l.startswith("RMSG|m1|") and l.endswith("|mj|first words"))
    assert obs.lines.index(seen_join) < obs.lines.index(seen_msg)
    assert waits.get(a.backend, 0) <= 1, waits  # its end of input only (the echoes)
    await obs.close()


async def test_refusals_and_pongs_come_after_the_answers_to_earlier_changes(
        make_node: NodeFactory) -> None:
    """A line answered at once (a refusal, a pong) waits for the connection's earlier changes:
    its answer comes after theirs, as on one server; a part then a join of the same room, and
    a room that looks like one joined a line before (its join not back yet) is refused."""
    a, _b = await make_node(), await make_node()
    lines = await _lines_until_closed(a.port, "\n".join([
        "HELLO|1|t", "CMD_USER|rf", "CMD_JOIN|e1", "CMD_PART|nope", "PING|t1",
        "CMD_JOIN|ldev7", "CMD_JOIN|1dev7", "CMD_PART|e1", "CMD_JOIN|e1", "CMD_WHO|e1",
        "RMSG|nope|x", "PING|t2", ""]))
    wanted = [l for l in lines if l.startswith(("JOIN|", "PART|", "ERR|", "PONG|", "RLIST|"))]
    assert [l.split("|")[:2] for l in wanted] == [
        ["JOIN", "lobby"],
        ["JOIN", "e1"], ["RLIST", "e1"],
        ["ERR", "not_in_room"],
        ["PONG", "t1"],
        ["JOIN", "ldev7"], ["RLIST", "ldev7"],
        ["ERR", "room_invalid"],
        ["PART", "e1"],
        ["JOIN", "e1"], ["RLIST", "e1"],
        ["RLIST", "e1"],
        ["ERR", "not_in_room"],
        ["PONG", "t2"],
    ], lines
    assert "rf(" in wanted[-3], lines


async def test_a_rename_then_queries(make_node: NodeFactory) -> None:
    a, b = await make_node(), await make_node()
    obs = await LineClient.connect(b.port, hello="t", nick="obs")
    lines = await _lines_until_closed(a.port, "\n".join([
        "HELLO|1|t", "CMD_USER|old1", "CMD_JOIN|q1", "CMD_USER|new1", "CMD_WHO|lobby",
        "CMD_WHO|q1", "RMSG|q1|renamed", ""]))
    wanted = [l for l in lines if l.startswith(("JOIN|q1", "YOU|", "RLIST|", "ERR|", "RMSG|"))]
    assert [l.split("|")[0] for l in wanted] == [
        "YOU", "JOIN", "RLIST", "YOU", "RLIST", "RLIST", "RMSG"], lines
    assert wanted[3] == "YOU|new1", lines
    for who in wanted[4:6]:
        assert "new1(" in who and "old1(" not in who, lines
    assert "obs(" in wanted[4], lines
    assert wanted[-1].endswith("|new1|renamed"), lines
    await obs.expect(lambda l: l.startswith("NICK|old1|new1"))
    await obs.close()


async def test_a_netcat_user_joins_talks_and_asks_who(make_node: NodeFactory) -> None:
    a, b = await make_node(), await make_node()
    obs = await LineClient.connect(b.port, hello="t", nick="obs")
    obs.send("CMD_JOIN|rr")
    await obs.expect(lambda l: l.startswith("RLIST|rr|"))
    lines = await _lines_until_closed(a.port, "nc1\n/join rr\nhello there\n/who\n/rooms\n")
    assert not any("Error" in l for l in lines), lines
    here = next(i for i, l in enumerate(lines) if l.startswith("*** You are in #rr (2 member(s))"))
    said = lines.index("[rr] nc1: hello there")
    members = [i for i, l in enumerate(lines) if l.startswith("*** Members of #rr: ")]
    assert len(members) == 2 and here < members[0] < said < members[1], lines
    assert "nc1" in lines[members[1]] and "obs" in lines[members[1]], lines
    listing = next(i for i, l in enumerate(lines) if l.startswith("*** Rooms: "))
    assert listing > members[1] and "#rr (2)" in lines[listing], lines
    await obs.expect(lambda l: l.startswith("JOIN|rr|nc1("))
    await obs.expect(lambda l: l.startswith("RMSG|rr|") and l.endswith("|nc1|hello there"))
    await obs.close()


async def test_a_seed_script_gets_its_answers_in_order(make_node: NodeFactory) -> None:
    """A query waits for the connection's messages too: their echoes come first, as on one
    server, and a quit closes the connection only after them."""
    a, b = await make_node(), await make_node()
    obs = await LineClient.connect(b.port, hello="t", nick="obs")
    lines = await _lines_until_closed(
        a.port, "CMD_USER|sd1\nCMD_WHO|lobby\nMSG|one\nCMD_ROOMS|\nMSG|two\nCMD_QUIT|bye\n")
    joined = lines.index("SRV|sd1 joined")
    who = next(i for i, l in enumerate(lines) if i > joined and l.startswith("ULIST|"))
    assert "sd1(" in lines[who] and "obs(" in lines[who], lines
    one, two = lines.index("MSG|sd1: one"), lines.index("MSG|sd1: two")
    listing = next(i for i, l in enumerate(lines) if l.startswith("SRV|Rooms: "))
    assert who < one < listing < two, lines
    assert "#lobby (2)" in lines[listing], lines
    await obs.expect(lambda l: l.endswith("|sd1|two"))
    await obs.close()


async def test_a_message_after_a_private_message_to_another_node_comes_second(
        make_node: NodeFactory) -> None:
    """Found by review: a private message to a user of another node goes through that node's
    inbox, not the log, so the log did not order the sender's next message after it; the
    other node reads both in one XREAD and handled the log's first: the addressee saw the
    lobby message before the private one sent before it (89 pairs of 200). A line after a
    private message to another node now waits until Redis took it."""
    a, b = await make_node(flood_rate=0), await make_node(flood_rate=0)
    bob = await LineClient.connect(b.port, hello="t", nick="bob")
    amy = await LineClient.connect(a.port, hello="t", nick="amy")
    pairs = 40
    amy.send("".join(f"CMD_MSG|bob|secret{i}\nMSG|hello{i}\n" for i in range(pairs)))
    seen: list[str] = []
    while len(seen) < 2 * pairs:
        line = await bob.readline(timeout=20.0)
        if line.startswith("PRIV|") and "|amy|bob|secret" in line:
            seen.append("s" + line.rsplit("secret", 1)[1])
        elif line.startswith("RMSG|lobby|") and line.endswith(tuple(f"|amy|hello{i}" for i in range(pairs))):
            seen.append("h" + line.rsplit("hello", 1)[1])
    assert seen == [x for i in range(pairs) for x in (f"s{i}", f"h{i}")], seen
    await amy.close()
    await bob.close()


async def test_the_flood_warning_comes_after_the_answers_to_the_lines_before_it(
        make_node: NodeFactory) -> None:
    """Found by review: a burst of joins over the flood limit on a cluster node got ERR|flood
    first, then the JOIN answers to the lines before it (they no longer hold the connection,
    and were still on their way through Redis); one server answers the first five joins, then
    warns. The warning now waits for them, as a line answered at once does."""
    a, b = await make_node(flood_rate=20, flood_burst=5), await make_node()
    obs = await LineClient.connect(b.port, hello="t", nick="obs")
    fast = await LineClient.connect(a.port, hello="t", nick="fast")
    await asyncio.sleep(0.3)  # the bucket full again after the registration's lines
    fast.send("".join(f"CMD_JOIN|f{i}\n" for i in range(8)))
    order: list[str] = []
    while len(order) < 9:
        line = await fast.readline(timeout=20.0)
        if line.startswith("JOIN|f") and "|fast(" in line:
            order.append(line.split("|")[1])
        elif line.startswith("ERR|flood|"):
            order.append("flood")
    warned = order.index("flood")
    assert order[:warned] == [f"f{i}" for i in range(warned)] and warned >= 4, order
    assert sorted(x for x in order if x != "flood") == [f"f{i}" for i in range(8)], order
    await fast.close()
    await obs.close()
