"""The backend's Lua scripts against a real redis-server, one call at a time: claims and
compare-and-delete, exactly-once application, refusal of a reaped node, the reaper, and the
snapshot a starting node reads. Plus the pure helpers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis

from richchat.core.server.backends import redis_scripts as lua
from richchat.core.server.backends.redis import US, _has_password, key_prefix, redact
from tests.redis_server import RedisServer

P = key_prefix("unit")


@pytest.fixture
async def r(redis_server: RedisServer) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_server.url)
    yield client
    await client.aclose()


async def apply(r: Redis, node: str, seq: int, *args: str) -> Any:
    """One event in a batch of its own."""
    reply = await r.eval(lua.APPLY, 0, P, node, seq, 1000, 100, args[0], seq, len(args) - 1,
                         *args[1:])
    return reply[0] if isinstance(reply, list) else reply


async def join(r: Redis, node: str, ttl: int = 60_000) -> None:
    assert await r.eval(lua.HEARTBEAT, 0, P, node, ttl, "1") == 1


async def log(r: Redis) -> list[str]:
    return [fields[b"e"].decode() for _id, fields in await r.xrange(P + "log")]


async def test_claims_are_exclusive_and_released_only_by_their_owner(r: Redis) -> None:
    await join(r, "n1")
    await join(r, "n2")
    assert await apply(r, "n1", 0, "c", "alice", "n1:1") == 1
    assert await apply(r, "n2", 0, "c", "alice", "n2:1") == 0
    assert await apply(r, "n1", 0, "c", "alice", "n1:1") == 1  # idempotent for its owner
    await apply(r, "n2", 0, "x", "alice", "n2:1")  # not the owner: nothing happens
    assert await r.hget(P + "names", "alice") == b"n1:1"
    await apply(r, "n1", 0, "x", "alice", "n1:1")
    assert await r.hget(P + "names", "alice") is None
    assert await apply(r, "n2", 0, "c", "alice", "n2:1") == 1


async def test_each_event_is_applied_once_and_ids_grow_per_room(r: Redis) -> None:
    await join(r, "n1")
    await join(r, "n2")
    assert await apply(r, "n1", 1, "m", "lobby", "5", "alice", "msg", "hi") == 1
    assert await apply(r, "n1", 1, "m", "lobby", "5", "alice", "msg", "hi") == b"dup"
    assert await apply(r, "n2", 1, "m", "lobby", "6", "bob", "msg", "yo") == 2
    assert await apply(r, "n2", 2, "m", "dev", "7", "bob", "msg", "x") == 1
    assert await log(r) == [
        f"m{US}n1:1{US}lobby{US}1{US}5{US}alice{US}msg{US}hi",
        f"m{US}n2:1{US}lobby{US}2{US}6{US}bob{US}msg{US}yo",
        f"m{US}n2:2{US}dev{US}1{US}7{US}bob{US}msg{US}x",
    ]
    # the room's history stream holds its messages under the log's ids
    log_ids = [i for i, _ in await r.xrange(P + "log")]
    assert [i for i, _ in await r.xrange(P + "hist:lobby")] == log_ids[:2]


async def test_a_reaped_node_is_refused(r: Redis) -> None:
    assert await apply(r, "ghost", 1, "r", "g", "g", "g(1.2.3.4:5)") == b"reaped"
    assert await r.eval(lua.HEARTBEAT, 0, P, "ghost", 1000, "0") == 0  # not a member


async def test_the_reaper_removes_a_dead_nodes_users(r: Redis) -> None:
    await join(r, "alive")
    await join(r, "dead", ttl=-1000)  # its deadline has passed
    await apply(r, "dead", 0, "c", "bob", "dead:1")
    await apply(r, "dead", 1, "r", "bob", "bob", "bob(1.1.1.1:1)")
    await apply(r, "dead", 2, "j", "dev", "bob", "bob", "bob(1.1.1.1:1)")
    await apply(r, "alive", 0, "c", "amy", "alive:1")
    await apply(r, "alive", 1, "r", "amy", "amy", "amy(1.1.1.1:2)")
    await apply(r, "alive", 2, "j", "dev", "amy", "amy", "amy(1.1.1.1:2)")
    assert await r.eval(lua.REAP, 0, P, "alive", 3000, 1000) == 1
    assert await r.eval(lua.REAP, 0, P, "other", 3000, 1000) == 0  # the lock is alive's
    entries = await log(r)
    assert entries[-2:] == [
        f"p{US}reaper:0{US}dev{US}bob{US}connection lost",
        f"d{US}reaper:0{US}bob{US}connection lost",
    ]
    assert await r.hgetall(P + "names") == {b"amy": b"alive:1"}
    assert await r.hkeys(P + "users") == [b"amy"]
    assert await r.smembers(P + "members:dev") == {b"amy"}
    assert await r.zrange(P + "nodes", 0, -1) == [b"alive"]


async def test_the_snapshot_is_the_state_at_a_log_position(r: Redis) -> None:
    await join(r, "n1")
    await apply(r, "n1", 1, "r", "amy", "amy", "amy(e)")
    await apply(r, "n1", 2, "j", "dev", "amy", "amy", "amy(e)")
    await apply(r, "n1", 3, "t", "dev", "amy", "ship it")
    last, users, rooms, topics, histrooms, registered = await r.eval(lua.SNAPSHOT, 0, P)
    assert last == (await r.xrevrange(P + "log", count=1))[0][0]
    assert users == [b"amy", f"n1{US}amy{US}amy(e)".encode()]
    assert rooms == [[b"dev", [b"amy"], [b"amy"]]]
    assert topics == [b"dev", f"amy{US}ship it".encode()]
    assert histrooms == []
    assert registered == [b"amy"]


async def test_the_snapshot_gives_the_order_of_registrations_and_joins(r: Redis) -> None:
    """The users' hash and the members' sets come in Redis's order (a hash's, a set's): a
    node started later listed the lobby and the rooms in it, not in the order they came as
    the nodes that saw them do (#15). The zsets keep that order; a rename keeps its place,
    a part and a re-join goes last, a departure or a reaped node's users are gone from it."""
    await join(r, "n1")
    await join(r, "n2")
    await join(r, "dead", ttl=-1000)
    names = ["zoe", "amy", "mia", "bob", "kim", "eve", "dan"]
    for i, name in enumerate(names):
        node = ("n1", "n2", "dead")[i % 3]
        await apply(r, node, 10 + i, "r", name, name, f"{name}(e)")
    for i, name in enumerate(reversed(names)):
        node = ("n1", "n2", "dead")[(len(names) - 1 - i) % 3]
        await apply(r, node, 20 + i, "j", "dev", name, name, f"{name}(e)")
    await apply(r, "n2", 30, "n", "amy", "ann", "amy", "ann", "ann(e)")  # keeps its place
    await apply(r, "n1", 31, "p", "dev", "zoe", "zoe", "left")
    await apply(r, "n1", 32, "j", "dev", "zoe", "zoe", "zoe(e)")  # back: last
    await apply(r, "n2", 33, "d", "eve", "eve", "gone")  # (still in #dev: not our business)
    assert await r.eval(lua.REAP, 0, P, "n1", 3000, 1000) == 1  # dead's mia (eve left)
    _last, users, rooms, _t, _h, registered = await r.eval(lua.SNAPSHOT, 0, P)
    assert registered == [b"zoe", b"ann", b"bob", b"kim", b"dan"]
    assert sorted(users[::2]) == sorted(registered)
    (room, members, joined), = rooms
    assert room == b"dev" and joined == [b"dan", b"eve", b"kim", b"bob", b"ann", b"zoe"]
    assert sorted(members) == sorted(joined)


def test_helpers() -> None:
    assert key_prefix("lan") == "richchat:{lan}:"
    assert redact("redis://:pw@h:1/0") == "redis://:***@h:1/0"
    assert redact("rediss://user:pw@h:1/0") == "rediss://user:***@h:1/0"
    assert redact("redis://h:1/0") == "redis://h:1/0"
    assert _has_password("redis://:pw@h/0") and not _has_password("redis://user@h/0")
    assert not _has_password("redis://h/0")


async def test_a_batch_is_applied_whole_once(r: Redis) -> None:
    await join(r, "n1")
    batch = [
        "c", 0, 2, "amy", "n1:1",
        "r", 1, 3, "amy", "amy", "amy(e)",
        "m", 2, 5, "lobby", "5", "amy", "msg", "one",
        "m", 3, 5, "lobby", "6", "amy", "msg", "two",
    ]  # fmt: skip
    assert await r.eval(lua.APPLY, 0, P, "n1", 3, 1000, 100, *batch) == [1, 1, 1, 2]
    # sent again (a reply lost with a connection): nothing twice, the claim still answers
    assert await r.eval(lua.APPLY, 0, P, "n1", 3, 1000, 100, *batch) == [1, b"dup", b"dup", b"dup"]
    assert len(await log(r)) == 3
    assert await r.xlen(P + "hist:lobby") == 2
