"""Run a ChatServer until SIGINT/SIGTERM/SIGHUP, for the `richchat server` command."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import Callable

from richchat.core.exit_codes import ExitStatus
from richchat.core.server.app import ChatServer
from richchat.core.server.config import ServerConfig


def stop_signals() -> list[signal.Signals]:
    """The signals that stop the server cleanly (clients told, history closed): Ctrl+C,
    SIGTERM, and SIGHUP, the terminal it was started from going away (an SSH session
    dropped), unless that is ignored (``nohup richchat server``: it keeps serving)."""
    sigs = [signal.SIGINT, signal.SIGTERM]
    hup = getattr(signal, "SIGHUP", None)  # not on Windows
    if hup is not None and signal.getsignal(hup) is not signal.SIG_IGN:
        sigs.append(hup)
    return sigs


async def serve(config: ServerConfig, on_ready: Callable[[ChatServer], None]) -> None:
    server = ChatServer(config)
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in stop_signals():
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
    except KeyboardInterrupt:
        # Ctrl+C before the signal handlers are set (during start-up: a big history being
        # opened), or on a platform without them: an interrupt, never "stopped" (0)
        sys.stderr.write("interrupted\n")
        raise SystemExit(int(ExitStatus.INTERRUPTED)) from None
