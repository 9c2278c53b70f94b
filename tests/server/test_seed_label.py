"""Seed clients write their own name before each line (``MSG|alice: hello``, as in the seed's
protocol); the server strips that label once, so nobody sees ``alice: alice: hello``. A label
naming someone else stays text: no one can speak as another name. Real sockets throughout."""

from __future__ import annotations

from richchat.core.server import ChatServer
from tests.linechat import LineClient


async def _seed(port: int, nick: str) -> LineClient:
    client = await LineClient.connect(port)
    client.send(f"CMD_USER|{nick}")
    await client.expect(f"SRV|{nick} joined")
    return client


async def _raw(port: int, nick: str) -> LineClient:
    client = await LineClient.connect(port)
    client.send(f"/nick {nick}")
    await client.expect(lambda l: l.startswith("*** ") and nick in l and "joined" not in l
                        and ("known as" in l or "You are" in l))
    return client


async def test_own_label_is_stripped_once_for_every_dialect(server: ChatServer) -> None:
    alice = await _seed(server.port, "alice")
    bob = await LineClient.connect(server.port, hello="t", nick="bob")
    erin = await _raw(server.port, "erin")
    alice.send("MSG|alice: hello")
    await alice.expect("MSG|alice: hello")
    line = await bob.expect(lambda l: l.startswith("RMSG|lobby|"))
    assert line.endswith("|alice|hello")
    await erin.expect("alice: hello")
    # only once: what follows the label is the text, whatever it is
    alice.send("MSG|alice: alice: twice")
    await alice.expect("MSG|alice: alice: twice")
    assert (await bob.expect(lambda l: l.startswith("RMSG|"))).endswith("|alice|alice: twice")
    assert not any("alice: alice: hello" in l for l in alice.lines + bob.lines + erin.lines)
    for c in (alice, bob, erin):
        await c.close()


async def test_label_compared_after_nfkc_and_case_folding(server: ChatServer) -> None:
    alice = await _seed(server.port, "alice")
    bob = await LineClient.connect(server.port, hello="t", nick="bob")
    for label in ("ALICE", "Alice", "\uff41lice"):  # the last one starts with a fullwidth a
        alice.send(f"MSG|{label}: as {label}")
        await alice.expect(f"MSG|alice: as {label}")
        line = await bob.expect(lambda l: l.startswith("RMSG|lobby|"))
        assert line.endswith(f"|alice|as {label}")
    for c in (alice, bob):
        await c.close()


async def test_someone_elses_label_is_text_not_a_spoof(server: ChatServer) -> None:
    alice = await _seed(server.port, "alice")
    bob = await LineClient.connect(server.port, hello="t", nick="bob")
    alice.send("MSG|bob: i am bob")
    await alice.expect("MSG|alice: bob: i am bob")
    assert (await bob.expect(lambda l: l.startswith("RMSG|"))).endswith("|alice|bob: i am bob")
    # not a label at all: no space after the colon, or a space inside the "name"
    alice.send("MSG|alice:no space")
    await alice.expect("MSG|alice: alice:no space")
    alice.send("MSG|alice and me: hi")
    await alice.expect("MSG|alice: alice and me: hi")
    for c in (alice, bob):
        await c.close()


async def test_hello_and_netcat_clients_keep_their_text(server: ChatServer) -> None:
    seed = await _seed(server.port, "watcher")
    bob = await LineClient.connect(server.port, hello="t", nick="bob")
    erin = await _raw(server.port, "erin")
    bob.send("MSG|bob: said by bob")
    await seed.expect("MSG|bob: bob: said by bob")
    assert (await bob.expect(lambda l: l.startswith("RMSG|"))).endswith("|bob|bob: said by bob")
    erin.send("erin: typed by erin")
    await seed.expect("MSG|erin: erin: typed by erin")
    await erin.expect("erin: erin: typed by erin")
    for c in (seed, bob, erin):
        await c.close()


async def test_history_written_before_is_not_rewritten(server: ChatServer) -> None:
    assert server.store is not None
    server.store.add("lobby", 1, "alice", "msg", "alice: from an old server")
    server.store.flush()
    seed = await LineClient.connect(server.port)
    seed.send("CMD_USER|carol")
    await seed.expect("MSG|alice: alice: from an old server")
    await seed.close()
