"""The fan-out's view with users of other nodes (events with no local peer), driven directly:
no Redis, no sockets. What a cluster node's clients are shown of remote users."""

from __future__ import annotations

import pytest

from richchat.core.protocol import frames as f
from richchat.core.server import events as ev
from richchat.core.server.delivery import Delivery
from richchat.core.server.dialect import Dialect
from tests.server.test_hub import Chat, FakePeer, chat  # noqa: F401 - the fixture

BOB = "bob(10.9.9.9:7)"


def remote(c: Chat, *events: ev.Event) -> None:
    for e in events:
        c.hub.delivery.post(e)
    c.flush()


async def test_remote_users_in_lists_counts_and_rooms(chat: Chat) -> None:  # noqa: F811
    alice = chat.connect(nick="alice")
    alice.take()
    remote(chat, ev.Registered("bob", BOB, None))
    assert alice.take() == [f"JOIN|lobby|{BOB}", "SRV|bob joined"]
    assert chat.hub.users_online == 2
    chat.do(alice, f.Who(room="lobby"))
    assert alice.take() == [f"RLIST|lobby|alice(10.0.0.1:40001),{BOB}"]
    raw = chat.connect(Dialect.RAW, nick="carol")
    assert "*** Users online: alice, bob" in raw.take()
    alice.take()

    remote(chat, ev.Joined("dev", "bob", BOB, None))
    assert alice.take() == []  # not in #dev
    chat.do(alice, f.JoinRoom(room="dev"))
    # in the order they joined, as one server lists them (#15: local members came first)
    assert alice.take()[-1] == f"RLIST|dev|{BOB},alice(10.0.0.1:40001)"
    chat.do(alice, f.ListRooms())
    assert alice.take() == ["ROOMS|lobby:3,dev:2"]
    remote(chat, ev.Message("dev", 7, 1, "bob", "msg", "from afar", None))
    assert alice.take() == ["RMSG|dev|7|1|bob|from afar"]

    remote(chat, ev.Renamed("bob", "rob", "rob(10.9.9.9:7)", None))
    alice.take()
    chat.do(alice, f.Who(room="dev"))
    assert alice.take() == ["RLIST|dev|rob(10.9.9.9:7),alice(10.0.0.1:40001)"]  # same place
    chat.do(raw, f.Who(room="lobby"))
    assert raw.take() == ["*** bob is now known as rob", "*** Members of #lobby: alice, rob, carol"]

    remote(chat, ev.Parted("dev", "rob", "left", None))
    assert alice.take() == ["PART|dev|rob|left"]
    chat.do(alice, f.PartRoom(room="dev"))
    alice.take()
    assert "dev" not in chat.hub.delivery.rooms  # nobody here or elsewhere: the room is gone
    remote(chat, ev.Departed("rob", "connection lost", None))
    assert alice.take() == ["PART|lobby|rob|connection lost", "SRV|rob left (connection lost)"]
    assert chat.hub.users_online == 2
    chat.do(alice, f.Who(room="lobby"))
    assert alice.take() == ["RLIST|lobby|alice(10.0.0.1:40001),carol(10.0.0.1:40002)"]


async def test_members_here_and_elsewhere_are_listed_in_the_order_they_joined(
    chat: Chat,  # noqa: F811
) -> None:
    """The fan-out applies joins in the cluster's order, its own included: lists interleave
    local and remote members as their joins came (#15). A part and a join again goes last; a
    rename (here or there) keeps its place; once nobody elsewhere is left, the members here
    are listed in their order as always."""
    def who(client: FakePeer, room: str = "dev") -> list[str]:
        client.take()
        chat.do(client, f.Who(room=room))
        line = client.take()[-1]
        return [e.split("(")[0] for e in line.split("|", 2)[2].split(",") if e]

    amy = chat.connect(nick="amy")
    remote(chat, ev.Registered("bob", "bob(10.9.9.9:1)", None))
    cal = chat.connect(nick="cal")
    remote(chat, ev.Registered("dan", "dan(10.9.9.9:2)", None))
    assert who(amy, "lobby") == ["amy", "bob", "cal", "dan"]
    chat.do(cal, f.JoinRoom(room="dev"))
    remote(chat, ev.Joined("dev", "dan", "dan(10.9.9.9:2)", None))
    chat.do(amy, f.JoinRoom(room="dev"))
    remote(chat, ev.Joined("dev", "bob", "bob(10.9.9.9:1)", None))
    assert who(amy) == who(cal) == ["cal", "dan", "amy", "bob"]
    chat.do(cal, f.PartRoom(room="dev"))
    chat.do(cal, f.JoinRoom(room="dev"))
    remote(chat, ev.Parted("dev", "dan", "left", None))
    remote(chat, ev.Joined("dev", "dan", "dan(10.9.9.9:2)", None))
    assert who(amy) == ["amy", "bob", "cal", "dan"]
    remote(chat, ev.Renamed("bob", "rob", "rob(10.9.9.9:1)", None))
    chat.do(amy, f.SetNick(name="ann"))
    assert who(cal) == ["ann", "rob", "cal", "dan"]
    assert who(cal, "lobby") == ["ann", "rob", "cal", "dan"]
    remote(chat, ev.Parted("dev", "rob", "left", None), ev.Parted("dev", "dan", "left", None))
    assert chat.hub.delivery.rooms["dev"].order is None  # nobody elsewhere: nothing kept
    assert who(cal) == ["ann", "cal"]
    remote(chat, ev.Joined("dev", "dan", "dan(10.9.9.9:2)", None))
    assert who(cal) == ["ann", "cal", "dan"]
    remote(chat, ev.Joined("dev", "dan", "dan(10.9.9.9:2)", None))  # again: same place
    assert who(cal) == ["ann", "cal", "dan"]
    # (should not happen) dan gone from the chat but not from #dev, back, and in #dev again:
    # its place is kept, and the room lists the new record (its rename shows)
    remote(chat, ev.Departed("dan", "connection lost", None),
           ev.Registered("dan", "dan(10.9.9.9:3)", None),
           ev.Joined("dev", "dan", "dan(10.9.9.9:3)", None))
    chat.do(amy, f.PartRoom(room="dev"))
    chat.do(amy, f.JoinRoom(room="dev"))
    remote(chat, ev.Renamed("dan", "don", "don(10.9.9.9:3)", None))
    assert who(cal) == ["cal", "don", "ann"]


async def test_a_room_with_only_remote_members_stays_in_the_view(chat: Chat) -> None:  # noqa: F811
    alice = chat.connect(nick="alice")
    remote(chat, ev.Registered("bob", BOB, None), ev.Joined("ops", "bob", BOB, None))
    alice.take()
    chat.do(alice, f.ListRooms())
    assert alice.take() == ["ROOMS|lobby:2,ops:1"]
    remote(chat, ev.Message("ops", 1, 1, "bob", "msg", "nobody here hears this", None))
    assert alice.take() == []
    remote(chat, ev.Parted("ops", "bob", "left", None))
    chat.do(alice, f.ListRooms())
    assert alice.take() == ["ROOMS|lobby:2"]


async def test_a_busy_node_spaces_its_passes_as_one_server_of_the_room_would() -> None:
    """A pass writes each dirty client once; what arrives while it runs is combined into the
    next pass's writes. A node writes its own clients only, so its pass is shorter than one
    server's with all the room's members: after a pass that took T and wrote at least
    FLUSH_CHUNK clients, a busy node waits T times the room's members in the cluster over its
    members here before the next (never less than FLUSH_INTERVAL, never more than
    CLUSTER_CYCLE_CAP). One server (spread 1), a room whose members are all here, and a node
    writing few clients per pass (nothing to save; its users would only wait) keep
    FLUSH_INTERVAL."""
    from richchat.core.server.delivery import (
        CLUSTER_CYCLE_CAP,
        FLUSH_CHUNK,
        FLUSH_INTERVAL,
        Delivery,
    )

    many = FLUSH_CHUNK
    assert Delivery.busy_cycle(0.004, many, 1.0) == FLUSH_INTERVAL
    assert Delivery.busy_cycle(0.004, many, 4.0) == 0.004 * 4
    assert Delivery.busy_cycle(0.004, many - 1, 4.0) == FLUSH_INTERVAL
    assert Delivery.busy_cycle(0.0001, many, 4.0) == FLUSH_INTERVAL
    assert Delivery.busy_cycle(0.05, many, 4.0) == CLUSTER_CYCLE_CAP
    assert Delivery.busy_cycle(0.05, many, 1000.0) == CLUSTER_CYCLE_CAP


async def test_the_cycle_follows_passes_that_wrote_and_the_rooms_they_wrote(
        chat: Chat, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    """Found by review: the cycle was computed after every pass, also one that wrote nothing
    (an event of the cluster's log for a room with no member here: every node reads every
    event), from the start of the last pass that did write: a node idle for 10 ms took that
    for its pass length and held its next message back. And it was stretched by all the
    cluster's users over this node's, also for a room whose members are all on this node
    (one server would write the same clients in the same time). Only a pass that wrote sets
    the cycle, with the clients it wrote and the widest room a message of it went to."""
    delivery = chat.hub.delivery
    alice, bob = chat.connect(nick="alice"), chat.connect(nick="bob")
    remote(chat, *(ev.Registered(f"u{i}", f"u{i}(10.9.9.9:{i})", None) for i in range(6)))
    chat.do(alice, f.JoinRoom(room="here"))
    chat.do(bob, f.JoinRoom(room="here"))
    alice.take(), bob.take()
    calls: list[tuple[int, float]] = []
    real = Delivery.busy_cycle

    def recorded(took: float, written: int, spread: float) -> float:
        calls.append((written, spread))
        return real(took, written, spread)

    monkeypatch.setattr(delivery, "busy_cycle", recorded)
    remote(chat, ev.Joined("dev", "u1", "u1(10.9.9.9:1)", None))  # nobody here in #dev
    assert alice.take() == [] and calls == []
    chat.say(alice, "only us", room="here")  # every member of #here is on this node
    assert calls == [(2, 1.0)]
    remote(chat, ev.Message("lobby", 9, 1, "u2", "msg", "hi", None))
    assert alice.take()[-1] == "RMSG|lobby|9|1|u2|hi"
    assert calls[-1] == (2, 8 / 2)  # the lobby: 8 members, 2 of them here
    assert delivery.pass_cycle == real(0.0, 2, 4.0)


async def test_a_flush_waits_for_the_cycle_from_the_last_pass(
        chat: Chat, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    """What a pass sets as the cycle is what the next flush waits for, from that pass's
    start (a busy server's next pass; at once once the cycle is over)."""
    delivery = chat.hub.delivery
    alice = chat.connect(nick="alice")
    alice.take()
    monkeypatch.setattr(delivery, "busy_cycle", lambda took, written, spread: 3600.0)
    chat.say(alice, "sets the cycle")
    assert delivery.pass_cycle == 3600.0
    delivery.post(ev.Message("lobby", 50, 1, "alice", "msg", "next", None))
    assert delivery.flush_due == delivery.pass_began + 3600.0
