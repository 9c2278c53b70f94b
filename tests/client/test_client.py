"""ChatClient against a real in-process ChatServer on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
from pathlib import Path
from typing import Any

import pytest

from richchat.core.client import (
    Address,
    ChatClient,
    backoff_delays,
    parse_address,
    suffixed_nick,
)
from richchat.core.errors import (
    ConnectionLostError,
    ConnectionRefusedRichchatError,
    NickRefusedError,
    ProtocolError,
    TimeoutRichchatError,
    UsageError,
)
from richchat.core.protocol import frames as f
from tests.client.servers import (
    free_port,
    next_frame,
    registered,
    registered_counting_pings,
    wait_until,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("example.lan", Address("example.lan", 5050)),
        ("10.0.0.5:6000", Address("10.0.0.5", 6000)),
        ("[::1]:5051", Address("::1", 5051)),
        ("[::1]", Address("::1", 5050)),
        ("::1", Address("::1", 5050)),
        ("fe80::1%eth0", Address("fe80::1%eth0", 5050)),
    ],
)
def test_parse_address(text: str, expected: Address) -> None:
    assert parse_address(text) == expected


@pytest.mark.parametrize("text", ["", "host:0", "host:99999", "host:http", "[::1", "[::1]x", ":5",
                                  # an IPv6 address with a port needs brackets (this one was
                                  # looked up as a host name); a path is no host (it was pinned)
                                  "::1:15102", "a:b:c", "/tmp/d1", "c:\\x",
                                  # more digits than int() reads: a ValueError, not a usage error
                                  "host:" + "1" * 5000])
def test_parse_address_rejects(text: str) -> None:
    with pytest.raises(UsageError):
        parse_address(text)


def test_address_str_brackets_ipv6() -> None:
    assert str(Address("::1", 5050)) == "[::1]:5050"
    assert str(Address("127.0.0.1", 1)) == "127.0.0.1:1"


def test_backoff_grows_with_jitter_and_is_capped() -> None:
    delays = backoff_delays(0.5, 8.0, rng=random.Random(1))
    values = [next(delays) for _ in range(12)]
    ceilings = [min(8.0, 0.5 * 2**i) for i in range(12)]
    for value, ceiling in zip(values, ceilings, strict=True):
        assert ceiling / 2 <= value <= ceiling
    assert len(set(values)) == len(values)  # jittered, not a fixed ladder


def test_suffixed_nick_stays_valid_length() -> None:
    assert suffixed_nick("alice", 2) == "alice_2"
    assert len(suffixed_nick("x" * 24, 12)) == 24


async def test_connect_register_and_echo(chat_server: object) -> None:
    port = chat_server.port  # type: ignore[attr-defined]
    client = ChatClient("127.0.0.1", port)
    hello = await client.connect()
    assert hello.name == "test"
    assert "rooms" in hello.features
    assert await client.register("alice") == "alice"
    assert client.nick == "alice"
    await client.say("hello [bold]world[/bold]")
    echo = await next_frame(client, f.RoomMessage)
    assert isinstance(echo, f.RoomMessage)
    assert (echo.room, echo.name, echo.text) == ("lobby", "alice", "hello [bold]world[/bold]")
    await client.close()


async def test_history_and_users_on_connect(chat_server: object) -> None:
    port = chat_server.port  # type: ignore[attr-defined]
    alice = await registered(port, "alice")
    await alice.say("first")
    await next_frame(alice, f.RoomMessage)
    bob = ChatClient("127.0.0.1", port)
    await bob.connect()
    await next_frame(bob, f.UserList)  # before registering: to check that a name is free
    assert bob.name_in_use("ALICE")
    assert not bob.name_in_use("bob")
    assert await bob.register("bob") == "bob"  # the history comes with the registration
    history = await next_frame(bob, f.RoomMessage)
    assert isinstance(history, f.RoomMessage) and history.text == "first"
    await alice.close()
    await bob.close()


async def test_nick_taken_is_reported_and_connection_stays_usable(chat_server: object) -> None:
    port = chat_server.port  # type: ignore[attr-defined]
    alice = await registered(port, "alice")
    other = ChatClient("127.0.0.1", port)
    await other.connect()
    with pytest.raises(NickRefusedError) as info:
        await other.register("Alice")
    assert info.value.code == "name_taken"
    assert "Alice" in info.value.message
    assert await other.register("alice2") == "alice2"
    await alice.close()
    await other.close()


async def test_invalid_nick_refused_before_sending(chat_server: object) -> None:
    client = ChatClient("127.0.0.1", chat_server.port)  # type: ignore[attr-defined]
    await client.connect()
    with pytest.raises(NickRefusedError) as info:
        await client.register("bad|name")
    assert info.value.code == "name_invalid"
    await client.close()


async def test_rename(chat_server: object) -> None:
    port = chat_server.port  # type: ignore[attr-defined]
    alice = await registered(port, "alice")
    bob = await registered(port, "bob")
    await alice.set_nick("alicia")
    you = await next_frame(alice, f.You)
    assert isinstance(you, f.You) and you.name == "alicia"
    change = await next_frame(bob, f.NickChanged)
    assert isinstance(change, f.NickChanged) and (change.old, change.new) == ("alice", "alicia")
    await alice.close()
    await bob.close()


async def test_rooms_are_isolated(chat_server: object) -> None:
    port = chat_server.port  # type: ignore[attr-defined]
    alice = await registered(port, "alice")
    bob = await registered(port, "bob")
    carol = await registered(port, "carol")
    for client in (alice, bob):
        await client.join("dev")
        rlist = await next_frame(client, f.RoomUsers)
        assert isinstance(rlist, f.RoomUsers) and rlist.room == "dev"
    await alice.say("dev only", room="dev")
    got = await next_frame(bob, f.RoomMessage)
    assert isinstance(got, f.RoomMessage) and (got.room, got.text) == ("dev", "dev only")
    # carol is not in dev: the next room message she sees is the lobby one
    await alice.say("for everyone")
    seen = await next_frame(carol, f.RoomMessage)
    assert isinstance(seen, f.RoomMessage) and (seen.room, seen.text) == ("lobby", "for everyone")
    for client in (alice, bob, carol):
        await client.close()


async def test_room_commands(chat_server: object) -> None:
    port = chat_server.port  # type: ignore[attr-defined]
    alice = await registered(port, "alice")
    await alice.join("dev")
    await next_frame(alice, f.RoomUsers)
    await alice.topic("dev", "release day")
    topic = await next_frame(alice, f.Topic)
    assert isinstance(topic, f.Topic) and (topic.room, topic.text) == ("dev", "release day")
    await alice.me("dev", "waves")
    action = await next_frame(alice, f.Action)
    assert isinstance(action, f.Action) and (action.name, action.text) == ("alice", "waves")
    await alice.rooms()
    rooms = await next_frame(alice, f.RoomList)
    assert isinstance(rooms, f.RoomList)
    assert {r.room for r in rooms.rooms} >= {"lobby", "dev"}
    await alice.who("dev")
    who = await next_frame(alice, f.RoomUsers)
    assert isinstance(who, f.RoomUsers) and [u.name for u in who.users] == ["alice"]
    await alice.part("dev")
    left = await next_frame(alice, (f.UserLeft, f.Error))
    assert isinstance(left, f.UserLeft) and (left.room, left.name) == ("dev", "alice")
    await alice.close()


async def test_private_message_and_echo(chat_server: object) -> None:
    port = chat_server.port  # type: ignore[attr-defined]
    alice = await registered(port, "alice")
    bob = await registered(port, "bob")
    await alice.private("bob", "psst")
    to_bob = await next_frame(bob, f.Private)
    echo = await next_frame(alice, f.Private)
    for frame in (to_bob, echo):
        assert isinstance(frame, f.Private)
        assert (frame.sender, frame.to, frame.text) == ("alice", "bob", "psst")
    await alice.private("nobody", "hello?")
    err = await next_frame(alice, f.Error)
    assert isinstance(err, f.Error) and err.code == "no_such_user"
    await alice.close()
    await bob.close()


async def test_connection_refused() -> None:
    client = ChatClient("127.0.0.1", free_port(), timeout=5)
    with pytest.raises(ConnectionRefusedRichchatError):
        await client.connect()


async def test_timeout_when_peer_never_answers() -> None:
    # A listening socket that never accepts: the kernel completes the TCP handshake, and
    # then nothing ever answers our HELLO.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        client = ChatClient("127.0.0.1", sock.getsockname()[1], timeout=0.5)
        with pytest.raises(TimeoutRichchatError):
            await client.connect()
        await client.close()


async def test_end_of_stream_ends_iteration(chat_server: object) -> None:
    client = await registered(chat_server.port, "alice")  # type: ignore[attr-defined]
    await chat_server.stop()  # type: ignore[attr-defined]

    async def drain() -> list[f.Frame]:
        return [frame async for frame in client]

    frames = await asyncio.wait_for(drain(), 10)
    assert not client.connected
    assert any(isinstance(fr, f.Notice) and "shutting down" in fr.text for fr in frames)
    await chat_server.start()  # type: ignore[attr-defined]  # fixture teardown stops it again


async def test_ping_is_answered_so_an_idle_client_stays(tmp_path: Path) -> None:
    from richchat.core.server import ChatServer, ServerConfig

    server = ChatServer(ServerConfig(host="127.0.0.1", port=0, data_dir=tmp_path, beacon=False,
                                     mdns=False, name="test", idle_timeout=0.6))
    await server.start()
    try:
        client, reader = await registered_counting_pings(server.port, "sleepy")
        quiet = await registered(server.port, "quiet")
        quiet._reader = None  # never reads again, so never sees (or answers) a PING
        # Read (and so answer PINGs) for several idle periods; "quiet" gets dropped.
        left = await next_frame(client, f.UserLeft, timeout=15)
        assert isinstance(left, f.UserLeft) and left.name == "quiet"

        async def read_forever() -> None:
            while await client.recv() is not None:
                pass

        # Two more PINGs read and answered (two more idle periods): still connected.
        pings = reader.pings
        reading = asyncio.ensure_future(read_forever())
        try:
            await wait_until(lambda: reader.pings >= pings + 2 or reading.done(), "two PINGs")
            assert not reading.done(), "the connection ended"
        finally:
            reading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reading
        assert client.connected
        await client.say("still here")
        echo = await next_frame(client, f.RoomMessage)
        assert isinstance(echo, f.RoomMessage) and echo.text == "still here"
        await client.close()
        await quiet.close()
    finally:
        await server.stop()


async def test_send_nowait_queues_without_waiting(chat_server: object) -> None:
    client = await registered(chat_server.port, "alice")  # type: ignore[attr-defined]
    client.send_nowait(f.Say(text="queued"))
    echo = await next_frame(client, f.RoomMessage)
    assert isinstance(echo, f.RoomMessage) and echo.text == "queued"
    await client.close()
    with pytest.raises(ConnectionLostError):
        client.send_nowait(f.Say(text="too late"))


async def test_ipv6_loopback(tmp_path: Path) -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    from richchat.core.server import ChatServer, ServerConfig

    server = ChatServer(ServerConfig(host="::1", port=0, data_dir=tmp_path, beacon=False,
                                     mdns=False, name="v6"))
    try:
        await server.start()
    except OSError as exc:
        pytest.skip(f"cannot bind ::1: {exc}")
    try:
        address = parse_address(f"[::1]:{server.port}")
        client = ChatClient(address.host, address.port)
        hello = await client.connect()
        assert hello.name == "v6"
        assert await client.register("six") == "six"
        await client.close()
    finally:
        await server.stop()


async def test_late_hello_after_raw_welcome_still_connects(tmp_path: Path) -> None:
    # On a busy machine our HELLO can arrive after the server's raw-client delay: the server
    # greets us as a netcat user, then still switches to the protocol on our HELLO.
    from richchat.core.server import ChatServer, ServerConfig

    server = ChatServer(ServerConfig(host="127.0.0.1", port=0, data_dir=tmp_path, beacon=False,
                                     mdns=False, name="slow", raw_detect_delay=0.05))
    await server.start()
    greeted: list[bytes] = []

    async def slow_opener(host: str, port: int) -> tuple[Any, Any]:
        # Connect, then say nothing until the server has greeted us as a "netcat" user (its
        # welcome is waiting in our socket), and only then let the client speak.
        loop = asyncio.get_running_loop()
        sock = socket.socket()
        sock.setblocking(False)
        await loop.sock_connect(sock, (host, port))
        deadline = loop.time() + 15
        while b"\n" not in (waiting := _peek(sock)):
            assert loop.time() < deadline, "the server never greeted a silent client"
            await asyncio.sleep(0.01)
        greeted.append(waiting)
        return await asyncio.open_connection(sock=sock)

    try:
        client = ChatClient("127.0.0.1", server.port, opener=slow_opener, timeout=30)
        hello = await client.connect()
        assert greeted[0].startswith(b"*** Welcome to slow (richchat")  # the raw welcome came first
        assert hello.name == "slow"
        assert await client.register("late") == "late"
        await client.say("made it")
        echo = await next_frame(client, f.RoomMessage)
        assert isinstance(echo, f.RoomMessage) and echo.text == "made it"
        await client.close()
    finally:
        await server.stop()


async def test_frames_around_registration_keep_their_order(chat_server: object) -> None:
    port = chat_server.port  # type: ignore[attr-defined]
    alice = await registered(port, "alice")
    for n in range(3):
        await alice.say(f"history {n}")
        await next_frame(alice, f.RoomMessage)
    bob = ChatClient("127.0.0.1", port)
    await bob.connect()
    await bob.register("bob")  # history and the user list arrive before YOU
    seen: list[str] = []
    while len(seen) < 4:
        frame = await asyncio.wait_for(bob.recv(), 10)
        if isinstance(frame, f.RoomMessage):
            seen.append(frame.text)
        elif isinstance(frame, f.Notice) and "bob joined" in frame.text:
            seen.append("bob joined")
    assert seen == ["history 0", "history 1", "history 2", "bob joined"]
    await alice.close()
    await bob.close()


def _peek(sock: socket.socket) -> bytes:
    try:
        return sock.recv(4096, socket.MSG_PEEK)
    except BlockingIOError:
        return b""


@pytest.mark.parametrize("greeting", [b"220 smtp.example ESMTP\r\n", b""])
async def test_failed_handshake_closes_the_socket(greeting: bytes) -> None:
    # A peer that is not a richchat server (wrong greeting), or says nothing (timeout): connect()
    # raises, and must not leave the socket open (the UI's reconnect loop would pile them up).
    peer_saw_eof = asyncio.Event()

    async def peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(greeting)
        while await reader.read(4096):
            pass
        peer_saw_eof.set()
        writer.close()

    server = await asyncio.start_server(peer, "127.0.0.1", 0)
    try:
        client = ChatClient("127.0.0.1", server.sockets[0].getsockname()[1], timeout=0.5)
        with pytest.raises((ProtocolError, TimeoutRichchatError)):
            await client.connect()
        await asyncio.wait_for(peer_saw_eof.wait(), 5)
        assert not client.connected
    finally:
        server.close()
