"""A broadcast to more clients than one flush chunk is written over several event-loop
iterations: what arrives meanwhile joins the clients the pass has not reached yet, and goes to
the others in the next pass. Real server, real sockets; the writes are recorded by wrapping
Connection.flush_out (the bytes still go to the sockets).

A slice ends after FLUSH_CHUNK clients or FLUSH_SLICE seconds: the tests of the merge pin the
time bound out of the way (a slow machine would end slices early), and one test sets it to 0
to see the loop run every SLICE_STEP clients."""

from __future__ import annotations

import asyncio
from collections import defaultdict

import pytest

from richchat.core.protocol.text import name_key
from richchat.core.server import ChatServer
from richchat.core.server import delivery as delivery_module
from richchat.core.server.connection import Connection
from richchat.core.server.delivery import FLUSH_CHUNK, SLICE_STEP
from richchat.core.server.hub import Hub
from richchat.core.server.peer import Peer
from tests.linechat import LineClient

CLIENTS = FLUSH_CHUNK + 40  # two chunks per pass


@pytest.fixture
def count_slices(monkeypatch: pytest.MonkeyPatch) -> None:
    """Slices end by count only (FLUSH_CHUNK clients), however slow the machine."""
    monkeypatch.setattr(delivery_module, "FLUSH_SLICE", 3600.0)


async def _crowd(port: int, count: int) -> list[LineClient]:
    async def one(i: int) -> LineClient:
        return await LineClient.connect(port, hello="t", nick=f"u{i}")

    sem = asyncio.Semaphore(32)

    async def bounded(i: int) -> LineClient:
        async with sem:
            return await one(i)

    return list(await asyncio.gather(*(bounded(i) for i in range(count))))


def _peer(hub: Hub, name: str) -> Peer:
    holder = hub.backend.lookup(name_key(name))
    assert holder is not None and holder.peer is not None
    return holder.peer


async def _everyone_known(clients: list[LineClient]) -> None:
    """Wait until every client has heard of every other (its ULIST, then the JOINs after it):
    the presence changes of the crowd are all written, nothing but what the test says is left
    to write."""
    names = {f"u{i}" for i in range(len(clients))}

    async def known(client: LineClient) -> None:
        seen: set[str] = set()
        lines = iter(list(client.lines))
        while seen != names:
            line = next(lines, None)
            if line is None:
                line = await client.readline(timeout=20.0)
            if line.startswith("ULIST|") and len(line) > 6:
                seen.update(entry.split("(", 1)[0] for entry in line[6:].split(","))
            elif line.startswith("JOIN|lobby|"):
                seen.add(line.split("|")[2].split("(", 1)[0])

    await asyncio.gather(*(known(c) for c in clients))


async def _into_pass(hub: Hub) -> None:
    """Let the loop run, one iteration at a time, until the pass has written its first chunk
    (a pass writes one chunk per iteration; it may start up to FLUSH_INTERVAL later)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5.0
    while loop.time() < deadline:
        if hub.delivery.pass_progress[0] >= FLUSH_CHUNK:
            return
        await asyncio.sleep(0)
    raise AssertionError("the pass never got past its first chunk")


async def _read_messages(client: LineClient, count: int) -> list[str]:
    got: list[str] = []
    while len(got) < count:
        line = await client.expect(lambda l: l.startswith("RMSG|lobby|"), timeout=20.0)
        got.append(line.rsplit("|", 1)[1])
    return got


async def test_a_message_during_a_pass_joins_the_clients_not_reached_yet(
    server: ChatServer, monkeypatch: pytest.MonkeyPatch, count_slices: None
) -> None:
    clients = await _crowd(server.port, CLIENTS)
    hub = server.hub
    assert hub is not None
    await _everyone_known(clients)
    writes: dict[Connection, list[bytes]] = defaultdict(list)
    original = Connection.flush_out

    def recording(conn: Connection) -> None:
        if conn.out:
            writes[conn].append(b"".join(conn.out))
        original(conn)

    monkeypatch.setattr(Connection, "flush_out", recording)
    sender = _peer(hub, "u0")
    hub.say(sender, "lobby", "first")
    await _into_pass(hub)
    reached, in_pass = hub.delivery.pass_progress
    assert in_pass == CLIENTS and 0 < reached < in_pass, "the pass was written in one go"
    hub.say(sender, "lobby", "second")
    for c in clients:
        assert await _read_messages(c, 2) == ["first", "second"]
    shapes: dict[tuple[int, ...], int] = defaultdict(int)
    for data in writes.values():  # messages per write (should anything else be written too)
        shapes[tuple(d.count(b"RMSG|") for d in data if b"RMSG|" in d)] += 1
    # the clients the pass had not reached: both messages in one write; the others: two
    assert shapes == {(2,): in_pass - reached, (1, 1): reached}
    # and both messages were on disk before anyone could read them
    assert [m.text for m in server.store.recent("lobby", 2)] == ["first", "second"]  # type: ignore[union-attr]
    for c in clients:
        await c.close()


async def test_shutdown_during_a_pass_finishes_it_first(
    server: ChatServer, count_slices: None
) -> None:
    clients = await _crowd(server.port, CLIENTS)
    hub = server.hub
    assert hub is not None
    await _everyone_known(clients)
    hub.say(_peer(hub, "u1"), "lobby", "last words")
    await _into_pass(hub)
    reached, in_pass = hub.delivery.pass_progress
    assert 0 < reached < in_pass
    await server.stop()
    for c in clients:
        assert await _read_messages(c, 1) == ["last words"]
        await c.expect("SRV|Server is shutting down", timeout=20.0)
        await c.close()


async def test_a_slice_ends_after_its_time_too(
    server: ChatServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A slice also ends once it has written for FLUSH_SLICE seconds (checked every
    SLICE_STEP clients): with writes that take long (many messages each, a loaded machine,
    a node of a cluster whose messages cross the loop several times on their way through
    Redis) the loop still runs often. At 0 s every slice is SLICE_STEP clients; every client
    still gets the message once, in order with the next."""
    clients = await _crowd(server.port, CLIENTS)
    hub = server.hub
    assert hub is not None
    await _everyone_known(clients)
    monkeypatch.setattr(delivery_module, "FLUSH_SLICE", 0.0)
    sender = _peer(hub, "u2")
    hub.say(sender, "lobby", "sliced")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5.0
    seen: list[int] = []
    while loop.time() < deadline:
        reached, in_pass = hub.delivery.pass_progress
        if in_pass and (not seen or seen[-1] != reached):
            seen.append(reached)
        if seen and in_pass == 0:
            break
        await asyncio.sleep(0)
    # one slice per loop iteration, SLICE_STEP clients each (the last one the rest)
    assert seen[: len(seen) - 1] == [SLICE_STEP * (i + 1) for i in range(len(seen) - 1)], seen
    assert len(seen) >= CLIENTS // SLICE_STEP, seen
    hub.say(sender, "lobby", "after")
    for c in clients:
        assert await _read_messages(c, 2) == ["sliced", "after"]
        await c.close()
