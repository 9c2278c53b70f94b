"""Rooms and private messages on the server (issue 6), through real sockets."""

from __future__ import annotations

from tests.linechat import LineClient
from tests.server.conftest import ServerFactory


async def test_two_rooms_isolate_traffic(make_server: ServerFactory) -> None:
    server = await make_server()
    alice = await LineClient.connect(server.port, hello="t", nick="alice")
    bob = await LineClient.connect(server.port, hello="t", nick="bob")
    carol = await LineClient.connect(server.port, hello="t", nick="carol")
    alice.send("CMD_JOIN|dev")
    await alice.expect(lambda l: l.startswith("RLIST|dev|alice("))
    bob.send("CMD_JOIN|Ops")  # room names are case-insensitive
    await bob.expect(lambda l: l.startswith("RLIST|ops|bob("))
    carol.send("CMD_JOIN|dev")
    await alice.expect(lambda l: l.startswith("JOIN|dev|carol("))
    alice.send("RMSG|dev|dev talk")
    bob.send("RMSG|ops|ops talk")
    await carol.expect(lambda l: l.startswith("RMSG|dev|") and l.endswith("|alice|dev talk"))
    await bob.expect(lambda l: l.startswith("RMSG|ops|") and l.endswith("|bob|ops talk"))
    alice.send("MSG|lobby talk")
    for c in (alice, bob, carol):
        await c.expect(lambda l: l.startswith("RMSG|lobby|") and l.endswith("|alice|lobby talk"))
    assert not any("ops talk" in l for l in alice.lines + carol.lines)
    assert not any("dev talk" in l for l in bob.lines)
    # Talking in a room you are not in is refused.
    bob.send("RMSG|dev|sneaky")
    assert (await bob.expect(lambda l: l.startswith("ERR|"))).startswith("ERR|not_in_room|")
    alice.send("CMD_ROOMS|")
    assert await alice.expect(lambda l: l.startswith("ROOMS|")) == "ROOMS|lobby:3,dev:2,ops:1"
    alice.send("CMD_WHO|dev")
    who = await alice.expect(lambda l: l.startswith("RLIST|dev|"))
    assert "alice(" in who and "carol(" in who and "bob(" not in who
    alice.send("CMD_TOPIC|dev|release friday")
    await carol.expect("TOPIC|dev|alice|release friday")
    alice.send("CMD_ME|dev|ships it")
    await carol.expect(lambda l: l.startswith("ACTION|dev|") and l.endswith("|alice|ships it"))
    carol.send("CMD_PART|dev")
    await alice.expect("PART|dev|carol|left")
    carol.send("CMD_PART|lobby")
    assert (await carol.expect(lambda l: l.startswith("ERR|"))).startswith("ERR|cannot_leave|")
    for c in (alice, bob, carol):
        await c.close()


async def test_bad_room_names_and_unknown_users(make_server: ServerFactory) -> None:
    server = await make_server()
    alice = await LineClient.connect(server.port, hello="t", nick="alice")
    for line, code in [
        ("CMD_JOIN|bad room", "room_invalid"),
        ("CMD_JOIN|", "room_invalid"),
        ("CMD_JOIN|" + "r" * 40, "room_invalid"),
        ("CMD_JOIN|a,b", "room_invalid"),
        ("CMD_WHO|nowhere", "no_such_room"),
        ("CMD_PART|nowhere", "not_in_room"),
        ("CMD_MSG|ghost|hello?", "no_such_user"),
        ("CMD_MSG|bad name|x", "name_invalid"),
        ("RMSG|nowhere|hi", "not_in_room"),
    ]:
        alice.send(line)
        err = await alice.expect(lambda l: l.startswith("ERR|"))
        assert err.startswith(f"ERR|{code}|"), (line, err)
    await alice.close()


async def test_private_messages_reach_only_their_recipient(make_server: ServerFactory) -> None:
    server = await make_server()
    alice = await LineClient.connect(server.port, hello="t", nick="alice")
    bob = await LineClient.connect(server.port, hello="t", nick="bob")
    eve = await LineClient.connect(server.port, hello="t", nick="eve")
    alice.send("CMD_MSG|BOB|meet at noon")
    priv = await bob.expect(lambda l: l.startswith("PRIV|"))
    assert priv.endswith("|alice|bob|meet at noon")
    assert (await alice.expect(lambda l: l.startswith("PRIV|"))) == priv  # echo to the sender
    eve.send("MSG|sync")
    await eve.expect(lambda l: l.endswith("|eve|sync"))
    assert not any("noon" in l for l in eve.lines)
    # Never stored: a newcomer's history does not contain it.
    late = await LineClient.connect(server.port, hello="t")
    await late.expect(lambda l: l.startswith("ULIST|"))
    assert not any("noon" in l for l in late.lines)
    assert server.store is not None
    assert all("noon" not in m.text for m in server.store.recent("lobby", 100))
    for c in (alice, bob, eve, late):
        await c.close()


async def test_seed_client_keeps_working_in_default_room(make_server: ServerFactory) -> None:
    server = await make_server()
    alice = await LineClient.connect(server.port, hello="t", nick="alice")
    alice.send("CMD_JOIN|dev")
    await alice.expect(lambda l: l.startswith("RLIST|dev|"))
    seed = await LineClient.connect(server.port)
    seed.send("CMD_USER|old")
    await seed.expect("SRV|old joined")
    alice.send("RMSG|dev|not for seed")
    alice.send("MSG|for everyone")
    await seed.expect("MSG|alice: for everyone")
    assert not any("not for seed" in l for l in seed.lines)
    alice.send("CMD_MSG|old|psst")
    await seed.expect("SRV|private from alice: psst")
    await alice.close()
    await seed.close()


async def test_room_history_survives_restart(make_server: ServerFactory, tmp_path) -> None:  # type: ignore[no-untyped-def]
    data = tmp_path / "rooms-data"
    server = await make_server(data_dir=data)
    alice = await LineClient.connect(server.port, hello="t", nick="alice")
    alice.send("CMD_JOIN|dev")
    alice.send("RMSG|dev|dev history 1")
    alice.send("MSG|lobby history 1")
    alice.send("CMD_TOPIC|dev|kept topic")
    await alice.expect(lambda l: l.startswith("TOPIC|dev|"))
    await alice.close()
    await server.stop()
    again = await make_server(data_dir=data)
    bob = await LineClient.connect(again.port, hello="t", nick="bob")
    assert any(l.endswith("|alice|lobby history 1") for l in bob.lines)
    assert not any("dev history" in l for l in bob.lines)
    bob.send("CMD_JOIN|dev")
    await bob.expect(lambda l: l.startswith("RMSG|dev|") and l.endswith("|alice|dev history 1"))
    assert "TOPIC|dev|alice|kept topic" in bob.lines
    await bob.close()
