"""Core chat behaviour through real sockets: hello, names, relaying, history, user lists."""

from __future__ import annotations

import asyncio

from richchat.core.server import ChatServer
from tests.linechat import LineClient
from tests.server.conftest import ServerFactory


async def test_hello_welcome_then_ulist(server: ChatServer) -> None:
    c = await LineClient.connect(server.port, hello="test/1")
    hello = await c.readline()
    assert hello.startswith("HELLO|1|richchat-server/")
    assert "name=test-server" in hello and "users=0" in hello and "tls=0" in hello
    assert (await c.readline()).startswith("SRV|Welcome to test-server")
    assert await c.readline() == "ULIST|"
    await c.close()


async def test_register_relay_and_sender_stamp(server: ChatServer) -> None:
    alice = await LineClient.connect(server.port, hello="t", nick="alice")
    bob = await LineClient.connect(server.port, hello="t", nick="bob")
    await alice.expect(lambda l: l.startswith("JOIN|lobby|bob(127.0.0.1:"))
    alice.send("MSG|bob: I am bob, trust me")
    # Everyone, the sender included (delivery confirmation), sees alice's real name.
    for c in (alice, bob):
        line = await c.expect(lambda l: l.startswith("RMSG|lobby|"))
        assert line.endswith("|alice|bob: I am bob, trust me")
    await alice.close()
    await bob.close()


async def test_seed_client_gets_seed_frames(server: ChatServer) -> None:
    alice = await LineClient.connect(server.port, hello="t", nick="alice")
    alice.send("MSG|before seed")
    await alice.expect(lambda l: l.endswith("|alice|before seed"))
    seed = await LineClient.connect(server.port)
    seed.send("CMD_USER|seedy")
    assert (await seed.readline()).startswith("SRV|Welcome to test-server")
    assert await seed.readline() == "MSG|alice: before seed"
    first_ulist = await seed.readline()
    assert first_ulist.startswith("ULIST|alice(127.0.0.1:")
    await seed.expect("SRV|seedy joined")
    ulist = await seed.expect(lambda l: l.startswith("ULIST|"))
    assert "seedy(127.0.0.1:" in ulist and "alice(127.0.0.1:" in ulist
    alice.send("MSG|hi seed")
    await seed.expect("MSG|alice: hi seed")
    seed.send("MSG|hi back")
    await alice.expect(lambda l: l.endswith("|seedy|hi back"))
    await seed.expect("MSG|seedy: hi back")
    await alice.close()
    await seed.expect("SRV|alice left (disconnected)")
    ulist = await seed.expect(lambda l: l.startswith("ULIST|"))
    assert "alice" not in ulist
    await seed.close()


async def test_ulist_updates_are_coalesced_for_seed_clients(make_server: ServerFactory) -> None:
    delay = 0.5
    server = await make_server(ulist_delay=delay)
    seed = await LineClient.connect(server.port)
    seed.send("CMD_USER|watcher")
    await seed.expect("SRV|watcher joined")
    await seed.expect(lambda l: l.startswith("ULIST|") and "watcher(" in l)  # its own join's
    before = len(seed.lines)
    loop = asyncio.get_running_loop()
    started = loop.time()
    # one after the other (simultaneous joins would share one loop iteration anyway)
    joiners = [await LineClient.connect(server.port, hello="t", nick=f"user{i}") for i in range(20)]
    joined = loop.time()  # all 20 registered
    await seed.expect(lambda l: l.startswith("ULIST|") and l.count("(") == 21, timeout=10)
    lists = [l for l in seed.lines[before:] if l.startswith("ULIST|")]
    # 20 joins, one full list per coalescing window at most: one window per `delay` seconds
    # the joins took, plus the one after the last join. (However slow the machine, this bound
    # holds; a list per join would be 20.)
    windows = int((joined - started) / delay) + 2
    assert len(lists) <= windows, (len(lists), windows, joined - started)
    for c in [seed, *joiners]:
        await c.close()


async def test_names_refused_and_old_name_kept(server: ChatServer) -> None:
    alice = await LineClient.connect(server.port, hello="t", nick="alice")
    bob = await LineClient.connect(server.port, hello="t", nick="bob")
    for bad, code in [
        ("ALICE", "name_taken"),
        ("\uff21lice", "name_taken"),  # fullwidth A: NFKC + casefold -> alice
        ("bad name", "name_invalid"),
        ("a|b", "name_invalid"),
        ("a,b", "name_invalid"),
        ("x(1)", "name_invalid"),
        ("col:on", "name_invalid"),
        ("esc\x1bx", "name_invalid"),
        ("x" * 25, "name_invalid"),
        ("", "name_invalid"),
    ]:
        bob.send(f"CMD_USER|{bad}")
        err = await bob.expect(lambda l: l.startswith("ERR|"))
        assert err.startswith(f"ERR|{code}|"), (bad, err)
    bob.send("MSG|still bob")
    await alice.expect(lambda l: l.endswith("|bob|still bob"))
    bob.send("CMD_USER|Bobby")
    await bob.expect("YOU|Bobby")
    await alice.expect("NICK|bob|Bobby")
    await alice.expect("SRV|bob is now known as Bobby")
    # The old name is free again.
    carol = await LineClient.connect(server.port, hello="t", nick="bob")
    assert "YOU|bob" in carol.lines
    for c in (alice, bob, carol):
        await c.close()


async def test_unregistered_client_cannot_talk(server: ChatServer) -> None:
    c = await LineClient.connect(server.port, hello="t")
    c.send("MSG|hi")
    assert (await c.expect(lambda l: l.startswith("ERR|"))).startswith("ERR|not_registered|")
    await c.close()


async def test_history_last_n_oldest_first(make_server: ServerFactory) -> None:
    server = await make_server(history=5)
    alice = await LineClient.connect(server.port, hello="t", nick="alice")
    for i in range(8):
        alice.send(f"MSG|message {i}")
    await alice.expect(lambda l: l.endswith("|message 7"))
    late = await LineClient.connect(server.port, hello="t", nick="late")  # history comes now
    history = [l.rsplit("|", 1)[1] for l in late.lines if l.startswith("RMSG|")]
    assert history == [f"message {i}" for i in range(3, 8)]
    ids = [int(l.split("|")[2]) for l in late.lines if l.startswith("RMSG|")]
    assert ids == sorted(ids)
    await alice.close()
    await late.close()


async def test_ping_pong(server: ChatServer) -> None:
    c = await LineClient.connect(server.port, hello="t")
    c.send("PING|abc")
    await c.expect("PONG|abc")
    await c.close()


async def test_shutdown_sends_bye_to_hello_clients_only(server: ChatServer) -> None:
    hello = await LineClient.connect(server.port, hello="t", nick="polite")
    seed = await LineClient.connect(server.port)
    seed.send("CMD_USER|seedy")
    await seed.expect(lambda l: l.startswith("ULIST|"))
    raw = await LineClient.connect(server.port)
    await raw.expect(lambda l: l.startswith("*** Type a nickname"))
    raw.send("")  # Enter: the offered guest name
    await raw.expect(lambda l: l.startswith("*** You are guest-"))
    await hello.expect("SRV|seedy joined")
    await server.stop()
    lines = await hello.read_all()
    # the notice every dialect understands, then the signal a program acts on
    assert lines.index("SRV|Server is shutting down") < lines.index(
        "BYE|shutdown|Server is shutting down"
    )
    seed_lines = await seed.read_all()
    assert "SRV|Server is shutting down" in seed_lines
    assert not any(l.startswith("BYE|") for l in seed_lines)
    raw_lines = await raw.read_all()
    assert "*** Server is shutting down" in raw_lines
    assert not any("BYE" in l for l in raw_lines)
    for c in (hello, seed, raw):
        await c.close()
