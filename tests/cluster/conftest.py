"""Nodes of one chat on a real redis-server (in-process ChatServer instances, each with its
own data directory, all on loopback)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from richchat.core.server import ChatServer, ServerConfig
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
