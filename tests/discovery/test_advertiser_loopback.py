"""The real Advertiser on loopback: beacons to 127.255.255.255, query replies, coexistence."""

from __future__ import annotations

import asyncio
import socket

import pytest

from richchat.core.discovery.advertise import Advertiser, ServerInfo, default_beacon_addrs
from richchat.core.errors import AddressInUseError
from richchat.core.protocol.beacon import Announce, Query
from tests.discovery.conftest import Catcher, open_catcher

LOOP_BCAST = "127.255.255.255"


def make_info(name: str = "loop", users: int = 0, sid: str = "id-loop") -> ServerInfo:
    return ServerInfo(server_id=sid, name=name, port=5050, users=users, tls=False, version=1)


def advertiser(port: int, info: ServerInfo | None = None, **kw: object) -> Advertiser:
    the_info = info or make_info()
    return Advertiser(lambda: the_info, bind_host="127.0.0.1", beacon_port=port,
                      beacon_addrs=[LOOP_BCAST], mdns=False, **kw)  # type: ignore[arg-type]


async def test_first_beacon_is_sent_at_start(beacon_port: int,
                                             catcher_factory: list[Catcher]) -> None:
    listener = await open_catcher(beacon_port)
    catcher_factory.append(listener)
    adv = advertiser(beacon_port, interval=60)
    await adv.start()
    try:
        message, addr = await listener.next(Announce)
        assert isinstance(message, Announce)
        assert message.reason == "beacon"
        assert message.info() == make_info()
        assert addr[0] == "127.0.0.1"
        assert addr[1] == beacon_port  # sent from the listener socket
    finally:
        await adv.stop()


async def test_periodic_beacons_carry_the_live_user_count(
    beacon_port: int, catcher_factory: list[Catcher]
) -> None:
    listener = await open_catcher(beacon_port)
    catcher_factory.append(listener)
    users = [0]
    adv = Advertiser(lambda: make_info(users=users[0]), bind_host="127.0.0.1",
                     beacon_port=beacon_port, beacon_addrs=[LOOP_BCAST], mdns=False,
                     interval=0.2)
    await adv.start()
    try:
        first, _ = await listener.next(Announce)
        assert isinstance(first, Announce) and first.users == 0
        users[0] = 7
        for _ in range(10):
            later, _ = await listener.next(Announce)
            assert isinstance(later, Announce)
            if later.users == 7:
                break
        else:
            pytest.fail("no beacon carried the new user count")
    finally:
        await adv.stop()


async def test_query_gets_a_unicast_reply_with_the_nonce(
    beacon_port: int, catcher_factory: list[Catcher]
) -> None:
    adv = advertiser(beacon_port, interval=60)
    await adv.start()
    asker = await open_catcher(0)  # ephemeral port, like the discover client
    catcher_factory.append(asker)
    try:
        asker.send(Query(nonce="q1"), (LOOP_BCAST, beacon_port))
        reply, addr = await asker.next(Announce)
        assert isinstance(reply, Announce)
        assert reply.reason == "reply"
        assert reply.nonce == "q1"
        assert reply.info() == make_info()
        assert adv.queries_answered == 1
        assert addr == ("127.0.0.1", beacon_port)  # from the query listener, unicast to us
    finally:
        await adv.stop()


async def test_two_servers_share_the_port_and_both_answer(
    beacon_port: int, catcher_factory: list[Catcher]
) -> None:
    a = advertiser(beacon_port, make_info("alpha", sid="id-a"), interval=60)
    b = advertiser(beacon_port, make_info("beta", sid="id-b"), interval=60)
    await a.start()
    await b.start()
    asker = await open_catcher(0)
    catcher_factory.append(asker)
    try:
        asker.send(Query(nonce="both"), (LOOP_BCAST, beacon_port))
        names = set()
        for _ in range(2):
            reply, _ = await asker.next(Announce)
            assert isinstance(reply, Announce)
            names.add(reply.name)
        assert names == {"alpha", "beta"}
    finally:
        await a.stop()
        await b.stop()


async def test_stop_is_idempotent_and_stops_answering(
    beacon_port: int, catcher_factory: list[Catcher]
) -> None:
    adv = advertiser(beacon_port, interval=60)
    await adv.start()
    await adv.stop()
    await adv.stop()
    asker = await open_catcher(0)
    catcher_factory.append(asker)
    asker.send(Query(nonce="late"), (LOOP_BCAST, beacon_port))
    with pytest.raises(asyncio.TimeoutError):
        await asker.next(Announce, timeout=0.5)
    # and it can start again
    await adv.start()
    try:
        asker.send(Query(nonce="again"), (LOOP_BCAST, beacon_port))
        reply, _ = await asker.next(Announce)
        assert isinstance(reply, Announce) and reply.nonce == "again"
    finally:
        await adv.stop()


async def test_garbage_on_the_port_is_ignored(
    beacon_port: int, catcher_factory: list[Catcher]
) -> None:
    adv = advertiser(beacon_port, interval=60)
    await adv.start()
    asker = await open_catcher(0)
    catcher_factory.append(asker)
    try:
        assert asker.transport is not None
        for junk in (b"hello", b"RCDISCO/1 {broken", b"RCDISCO/1 " + b"x" * 5000):
            asker.transport.sendto(junk, ("127.0.0.1", beacon_port))
        asker.send(Query(nonce="after"), ("127.0.0.1", beacon_port))
        reply, _ = await asker.next(Announce)
        assert isinstance(reply, Announce) and reply.nonce == "after"
    finally:
        await adv.stop()


async def test_port_held_without_reuseport_is_a_clear_error(beacon_port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as holder:
        holder.bind(("0.0.0.0", beacon_port))
        adv = advertiser(beacon_port)
        with pytest.raises(AddressInUseError, match=str(beacon_port)) as caught:
            await adv.start()
        assert isinstance(caught.value, OSError)  # servers may treat discovery as optional
        assert caught.value.hint and "--beacon-port" in caught.value.hint
        await adv.stop()


async def test_beacon_disabled_binds_nothing(beacon_port: int) -> None:
    adv = Advertiser(make_info, bind_host="127.0.0.1", beacon=False, beacon_port=beacon_port,
                     mdns=False)
    await adv.start()
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("0.0.0.0", beacon_port))  # free: nothing was bound
        assert adv.beacons_sent == 0
    finally:
        await adv.stop()


def test_default_beacon_address_for_loopback_and_never_global_broadcast() -> None:
    assert default_beacon_addrs("127.0.0.1") == ["127.255.255.255"]
    assert "255.255.255.255" not in default_beacon_addrs("0.0.0.0")


def test_interval_must_be_positive() -> None:
    with pytest.raises(ValueError):
        Advertiser(make_info, bind_host="127.0.0.1", interval=0, mdns=False)
