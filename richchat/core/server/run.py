"""Run a ChatServer until SIGINT/SIGTERM, for the `richchat server` command."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import Callable

from richchat.core.server.app import ChatServer
from richchat.core.server.config import ServerConfig


async def serve(config: ServerConfig, on_ready: Callable[[ChatServer], None]) -> None:
    server = ChatServer(config)
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        # Windows has no add_signal_handler: Ctrl+C raises KeyboardInterrupt instead.
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    try:
        on_ready(server)
        await stop.wait()
    finally:
        await server.stop()


def run_server(config: ServerConfig, on_ready: Callable[[ChatServer], None]) -> None:
    try:
        asyncio.run(serve(config, on_ready))
    except KeyboardInterrupt:  # pragma: no cover - platforms without signal handlers
        sys.stderr.write("interrupted\n")
