from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from richchat.core.server import ChatServer, ServerConfig

ServerFactory = Callable[..., Awaitable[ChatServer]]


@pytest.fixture
async def make_server(tmp_path: Path) -> AsyncIterator[ServerFactory]:
    """Start real servers on 127.0.0.1, port 0; stopped at the end of the test."""
    servers: list[ChatServer] = []

    async def factory(**overrides: Any) -> ChatServer:
        options: dict[str, Any] = dict(
            host="127.0.0.1",
            port=0,
            data_dir=tmp_path / "data",
            beacon=False,
            mdns=False,
            name="test-server",
            raw_detect_delay=0.2,
            ulist_delay=0.05,
        )
        options.update(overrides)
        server = ChatServer(ServerConfig(**options))
        await server.start()
        servers.append(server)
        return server

    yield factory
    for server in servers:
        await server.stop()


@pytest.fixture
async def server(make_server: ServerFactory) -> ChatServer:
    return await make_server()
