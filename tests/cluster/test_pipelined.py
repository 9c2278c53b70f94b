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

import pytest

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
    lines = await _lines_until_closed(
        a.port, "HELLO|1|t\nCMD_USER|w9\nCMD_WHO|lobby\nCMD_JOIN|zz9\nCMD_WHO|zz9\nCMD_ROOMS|\n")
    answers = [l for l in lines if l.startswith(("YOU|", "RLIST|", "ROOMS|", "ERR|", "JOIN|"))]
    who_lobby = next(l for l in answers if l.startswith("RLIST|lobby|"))
    assert "w9(" in who_lobby and "obs(" in who_lobby, lines
    assert not any(l.startswith("ERR|") for l in answers), lines
    assert answers.index(who_lobby) > answers.index("YOU|w9"), lines
    joined = next(i for i, l in enumerate(answers) if l.startswith("JOIN|zz9|w9("))
    who_room = [i for i, l in enumerate(answers) if l.startswith("RLIST|zz9|w9(")]
    assert who_room and min(who_room) > joined, lines
    assert any(l.startswith("ROOMS|") and "zz9:1" in l for l in answers), lines
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
