"""The hub's chat rules with fake connections: no sockets, a real embedded backend (SQLite in a
temporary directory) and the real fan-out. Each test drives the hub directly and reads what
each fake connection was given, in its own dialect."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path

import pytest

from richchat.core.protocol import frames as f
from richchat.core.server.backends.embedded import EmbeddedBackend
from richchat.core.server.config import ServerConfig
from richchat.core.server.delivery import Delivery
from richchat.core.server.dialect import Dialect
from richchat.core.server.hub import Hub
from richchat.core.server.storage import HistoryStore


class FakePeer:
    """A connection that records its bytes (implements richchat.core.server.peer.Peer)."""

    def __init__(self, port: int, dialect: Dialect) -> None:
        self.host = "10.0.0.1"
        self.port = port
        self.dialect = Dialect.PENDING
        self.wanted = dialect
        self.name: str | None = None
        self.entry = ""
        self.rooms: dict[str, None] = {}
        self.current_room = "lobby"
        self.offered_name: str | None = None
        self.out: list[bytes] = []
        self.presence_seq = 0
        self.closed = False
        self.written: list[bytes] = []  # one item per write
        self.close_reason = ""

    @property
    def peer(self) -> str:
        return f"{self.host}:{self.port}"

    def flush_out(self) -> None:
        if self.out and not self.closed:
            self.written.append(b"".join(self.out))
        self.out = []

    def close(self, reason: str) -> None:
        self.close_reason = reason
        self.closed = True

    def hold(self, pending: Awaitable[object]) -> None:  # pragma: no cover - not used here
        raise AssertionError("the embedded backend never makes a client wait")

    def lines(self) -> list[str]:
        return b"".join(self.written).decode().splitlines()

    def take(self) -> list[str]:
        got = self.lines()
        self.written.clear()
        return got


class Chat:
    def __init__(self, hub: Hub, store: HistoryStore) -> None:
        self.hub = hub
        self.store = store
        self._port = 40000

    def connect(self, dialect: Dialect = Dialect.HELLO, nick: str | None = None) -> FakePeer:
        self._port += 1
        peer = FakePeer(self._port, dialect)
        assert self.hub.attach(peer)
        self.hub.start(peer, dialect)
        if dialect == Dialect.RAW:  # netcat users answer a prompt (Enter: the guest name)
            self.hub.ask_name(peer)
            self.hub.answer_name(peer, nick or "")
        elif nick is not None:
            self.hub.handle(peer, f.SetNick(name=nick))
        self.flush()
        return peer

    def flush(self) -> None:
        self.hub.flush()

    def say(self, peer: FakePeer, text: str, room: str = "lobby") -> None:
        self.hub.handle(peer, f.Say(text=text) if room == "lobby" else f.SayRoom(room=room, text=text))
        self.flush()

    def do(self, peer: FakePeer, frame: f.Frame) -> None:
        self.hub.handle(peer, frame)
        self.flush()

    def drop(self, peer: FakePeer, reason: str = "connection lost") -> None:
        peer.closed = True
        self.hub.detach(peer, reason)
        self.flush()


@pytest.fixture
async def chat(tmp_path: Path) -> AsyncIterator[Chat]:
    config = ServerConfig(host="127.0.0.1", port=0, data_dir=tmp_path, beacon=False, mdns=False,
                          name="unit", ulist_delay=0)
    store = HistoryStore(tmp_path / "history.sqlite3")
    backend = EmbeddedBackend(store)
    await backend.open()

    def hello() -> f.Hello:
        return f.Hello(version=1, agent="richchat-server/test", name="unit", users=0)

    delivery = Delivery(config, backend, hello)
    yield Chat(Hub(config, backend, delivery), store)
    await backend.close()


async def test_registration_gives_the_snapshot_then_announces_to_everyone(chat: Chat) -> None:
    alice = chat.connect(nick="alice")
    assert alice.take() == [
        "HELLO|1|richchat-server/test|name=unit|users=0",
        "SRV|Welcome to unit (richchat 0.1.0, protocol 1)",
        "ULIST|",  # before registering: to see which names are free
        "ULIST|",  # the snapshot: history (none), users, topic (none), then the name
        "YOU|alice",
        "JOIN|lobby|alice(10.0.0.1:40001)",
        "SRV|alice joined",
    ]
    bob = chat.connect(nick="bob")
    assert bob.take().count("ULIST|alice(10.0.0.1:40001)") == 2
    assert alice.take() == ["JOIN|lobby|bob(10.0.0.1:40002)", "SRV|bob joined"]


async def test_an_unregistered_connection_sees_nothing_of_the_chat(chat: Chat) -> None:
    alice = chat.connect(nick="alice")
    lurker = chat.connect()
    lurker.take()
    chat.say(alice, "secret plans")
    assert lurker.take() == []
    chat.do(lurker, f.Say(text="hi"))
    assert lurker.take() == ["ERR|not_registered|choose a nickname first (CMD_USER|name)"]
    assert all("lurker" not in line for line in alice.take())


async def test_each_dialect_gets_its_own_bytes_for_one_message(chat: Chat) -> None:
    h = chat.connect(Dialect.HELLO, "h")
    s = chat.connect(Dialect.SEED, "s")
    r = chat.connect(Dialect.RAW)  # a guest name
    for p in (h, s, r):
        p.take()
    chat.say(h, "hi all")
    (hline,) = h.take()
    assert hline.startswith("RMSG|lobby|") and hline.endswith("|h|hi all")
    assert s.take() == ["MSG|h: hi all"]
    assert r.take() == ["h: hi all"]
    chat.do(h, f.JoinRoom(room="dev"))
    chat.do(r, f.JoinRoom(room="dev"))
    h.take(), r.take(), s.take()
    chat.say(h, "in dev", room="dev")
    assert h.take()[0].endswith("|h|in dev")
    assert r.take() == ["[dev] h: in dev"]
    assert s.take() == []  # seed clients live in the lobby


async def test_names_are_unique_after_folding_and_renames_are_announced(chat: Chat) -> None:
    alice = chat.connect(nick="alice")
    bob = chat.connect(nick="bob")
    alice.take(), bob.take()
    chat.do(bob, f.SetNick(name="ALICE"))
    assert bob.take() == ["ERR|name_taken|the nickname ALICE is already in use (as alice)"]
    chat.do(bob, f.SetNick(name="robert"))
    assert bob.take() == ["YOU|robert", "NICK|bob|robert", "SRV|bob is now known as robert"]
    assert alice.take() == ["NICK|bob|robert", "SRV|bob is now known as robert"]
    chat.do(alice, f.SetNick(name="bob"))  # free again
    assert alice.take()[0] == "YOU|bob"
    chat.do(alice, f.SetNick(name="bob"))
    assert alice.take() == ["YOU|bob"]  # the same name: confirmed, nothing announced


async def test_rooms_membership_topics_and_the_lobby(chat: Chat) -> None:
    alice = chat.connect(nick="alice")
    bob = chat.connect(nick="bob")
    alice.take(), bob.take()
    chat.say(bob, "early", room="dev")
    assert bob.take() == ["ERR|not_in_room|you are not in #dev; /join dev first"]
    chat.do(alice, f.JoinRoom(room="dev"))
    assert alice.take() == ["JOIN|dev|alice(10.0.0.1:40001)", "RLIST|dev|alice(10.0.0.1:40001)"]
    chat.do(alice, f.SetTopic(room="dev", text="ship it"))
    assert alice.take() == ["TOPIC|dev|alice|ship it"]
    chat.do(bob, f.JoinRoom(room="dev"))
    assert bob.take() == [
        "JOIN|dev|bob(10.0.0.1:40002)",
        "TOPIC|dev|alice|ship it",
        "RLIST|dev|alice(10.0.0.1:40001),bob(10.0.0.1:40002)",
    ]
    assert alice.take() == ["JOIN|dev|bob(10.0.0.1:40002)"]
    chat.do(bob, f.PartRoom(room="lobby"))
    assert bob.take() == ["ERR|cannot_leave|everyone stays in the lobby; /quit leaves the server"]
    chat.do(bob, f.PartRoom(room="dev"))
    assert bob.take() == ["PART|dev|bob|left"]
    assert alice.take() == ["PART|dev|bob|left"]
    chat.do(alice, f.ListRooms())
    assert alice.take() == ["ROOMS|lobby:2,dev:1"]
    chat.do(alice, f.PartRoom(room="dev"))
    alice.take()
    chat.do(alice, f.Who(room="dev"))  # the empty room is gone; its topic is kept on disk
    assert alice.take() == ["ERR|no_such_room|there is no room #dev"]
    assert chat.store.topics()["dev"] == ("alice", "ship it")


async def test_a_joiner_gets_history_up_to_its_join_and_the_rest_live(chat: Chat) -> None:
    alice = chat.connect(nick="alice")
    chat.do(alice, f.JoinRoom(room="dev"))
    chat.say(alice, "one", room="dev")
    bob = chat.connect(nick="bob")
    bob.take()
    # in one flush: a message, bob's join, another message
    chat.hub.handle(alice, f.SayRoom(room="dev", text="two"))
    chat.hub.handle(bob, f.JoinRoom(room="dev"))
    chat.hub.handle(alice, f.SayRoom(room="dev", text="three"))
    chat.flush()
    texts = [line.rsplit("|", 1)[1] for line in bob.take() if line.startswith("RMSG|")]
    assert texts == ["one", "two", "three"]  # each once: two from history, three live


async def test_private_messages_reach_only_their_two_users(chat: Chat) -> None:
    alice = chat.connect(nick="alice")
    bob = chat.connect(nick="bob")
    eve = chat.connect(Dialect.RAW)
    for p in (alice, bob, eve):
        p.take()
    chat.do(alice, f.SendPrivate(to="BOB", text="lunch?"))
    (to_bob,) = bob.take()
    assert to_bob.startswith("PRIV|") and to_bob.endswith("|alice|bob|lunch?")
    assert alice.take() == [to_bob]
    assert eve.take() == []
    chat.do(alice, f.SendPrivate(to="nobody", text="x"))
    assert alice.take() == ["ERR|no_such_user|no user named nobody is online"]
    chat.do(bob, f.SendPrivate(to=eve.name or "", text="hey"))
    assert eve.take() == ["*bob* (private): hey"]


async def test_a_burst_of_registrations_walks_the_lobby_once(chat: Chat) -> None:
    watcher = chat.connect(nick="watcher")
    watcher.take()
    peers = []
    for i in range(20):
        p = FakePeer(50000 + i, Dialect.HELLO)
        assert chat.hub.attach(p)
        chat.hub.start(p, Dialect.HELLO)
        chat.hub.handle(p, f.SetNick(name=f"u{i}"))
        peers.append(p)
    chat.flush()
    assert len(watcher.written) == 1  # all twenty announcements in one write
    lines = watcher.take()
    assert lines[0::2] == [f"JOIN|lobby|u{i}(10.0.0.1:{50000 + i})" for i in range(20)]
    # each newcomer gets the users before it in its ULIST, then the announcements from its own
    last = peers[-1].take()
    assert last.count("JOIN|lobby|u19(10.0.0.1:50019)") == 1
    assert not any(line.startswith("JOIN|lobby|u18") for line in last)


async def test_departures_part_rooms_then_the_lobby_with_a_readable_reason(chat: Chat) -> None:
    alice = chat.connect(nick="alice")
    bob = chat.connect(Dialect.RAW)
    chat.do(alice, f.JoinRoom(room="dev"))
    chat.do(bob, f.JoinRoom(room="dev"))
    alice.take(), bob.take()
    chat.drop(bob, "connection lost")
    name = bob.name
    assert alice.take() == [
        f"PART|dev|{name}|connection lost",
        f"PART|lobby|{name}|connection lost",
        f"SRV|{name} left (connection lost)",
    ]
    assert chat.hub.backend.lookup(name or "") is None


async def test_a_message_that_cannot_be_stored_is_not_relayed_and_its_sender_is_told(
    chat: Chat, tmp_path: Path
) -> None:
    alice = chat.connect(nick="alice")
    bob = chat.connect(Dialect.RAW)
    alice.take(), bob.take()
    # make every insert fail, as a full disk would, from outside the server
    db = sqlite3.connect(tmp_path / "history.sqlite3")
    db.execute("CREATE TRIGGER full BEFORE INSERT ON messages BEGIN "
               "SELECT RAISE(ABORT, 'database or disk is full'); END")
    db.commit()
    chat.say(alice, "lost?")
    assert alice.take() == [
        "ERR|not_stored|your message was not delivered: the server cannot store history "
        "(database or disk is full)"
    ]
    assert bob.take() == []
    db.execute("DROP TRIGGER full")
    db.commit()
    db.close()
    chat.say(alice, "stored")
    assert alice.take()[0].endswith("|alice|stored")
    assert bob.take() == ["alice: stored"]
    assert [m.text for m in chat.store.recent("lobby", 10)] == ["stored"]


async def test_a_name_claim_that_takes_a_round_trip_holds_the_client(tmp_path: Path) -> None:
    """A backend may answer a claim later (a cluster); the hub returns what to wait for."""
    config = ServerConfig(host="127.0.0.1", port=0, data_dir=tmp_path, beacon=False, mdns=False)
    store = HistoryStore(tmp_path / "h.sqlite3")

    class SlowClaims(EmbeddedBackend):
        def claim_name(self, key: str, name: str, peer: object) -> Awaitable[bool]:  # type: ignore[override]
            async def later() -> bool:
                await asyncio.sleep(0.01)
                return super(SlowClaims, self).claim_name(key, name, peer)  # type: ignore[arg-type]
            return later()

    backend = SlowClaims(store)
    await backend.open()
    delivery = Delivery(config, backend, lambda: f.Hello(version=1, agent="t"))
    hub = Hub(config, backend, delivery)
    peer = FakePeer(1, Dialect.HELLO)
    hub.attach(peer)
    hub.start(peer, Dialect.HELLO)
    pending = hub.handle(peer, f.SetNick(name="zed"))
    assert pending is not None and peer.name is None
    await pending
    hub.flush()
    assert peer.name == "zed" and "YOU|zed" in peer.lines()
    await backend.close()
