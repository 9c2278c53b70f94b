"""Nodes of one chat on a real redis-server (in-process ChatServer instances, each with its
own data directory, all on loopback)."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from richchat.core.server import ChatServer, ServerConfig
from richchat.core.server.backends import redis as backend
from tests.conditions import wait_until
from tests.linechat import LineClient
from tests.redis_server import RedisServer

NodeFactory = Callable[..., Awaitable[ChatServer]]


@pytest.fixture
async def make_node(tmp_path: Path, redis_server: RedisServer) -> AsyncIterator[NodeFactory]:
    """Start a node of the cluster ``test`` (or ``cluster=...``) on 127.0.0.1, port 0."""
    nodes: list[ChatServer] = []

    async def factory(**overrides: Any) -> ChatServer:
        index = len(nodes)
        options: dict[str, Any] = dict(
            host="127.0.0.1",
            port=0,
            data_dir=tmp_path / f"node{index}",
            beacon=False,
            mdns=False,
            name=f"node{index}",
            cluster="test",
            redis=redis_server.url,
            raw_detect_delay=0.2,
            ulist_delay=0.05,
        )
        options.update(overrides)
        server = ChatServer(ServerConfig(**options))
        await server.start()
        nodes.append(server)
        return server

    yield factory
    for server in nodes:
        await server.stop()


async def wipe_redis(redis_server: RedisServer, nodes: Sequence[ChatServer],
                     clients: Sequence[LineClient]) -> None:
    """Restart Redis on its port with nothing in it (the chat's data lost); the nodes'
    ``clients`` are disconnected (the cluster forgot them), and every node comes back into
    the chat."""
    redis_server.stop()
    shutil.rmtree(redis_server.dir)
    redis_server.dir.mkdir()
    redis_server.start()  # the same port, nothing in it
    for client in clients:
        assert await client.closed(timeout=30)
    back = [n.backend for n in nodes]
    assert all(isinstance(x, backend.RedisBackend) for x in back)
    await wait_until(
        lambda: not any(x.degraded or x._rejoining for x in back),  # type: ignore[union-attr]
        "the nodes back in the chat", 60,
    )  # fmt: skip
