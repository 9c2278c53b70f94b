"""A server that stops answering (``kill -STOP``, a hung host, a dead network path) while the
chat UI is connected: the TCP connection stays "open" for ever, so only the session can notice
(eighth exploratory pass). The header must not say ``connected`` for ever, and the UI must
reconnect once the server is back."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from richchat.core.client import Address
from richchat.core.tui import ChatApp, session
from tests.serverproc import ServerProc
from tests.tui.test_app import SIZE, plain, type_line, until


def app_for(port: int) -> ChatApp:
    return ChatApp(Address("127.0.0.1", port), "alice", timeout=1.0, reconnect_base=0.1,
                   reconnect_cap=0.5)


def lost(app: ChatApp) -> bool:
    return any("sent nothing for" in line for line in plain(app, "lobby"))


async def noticed_and_back(server: ServerProc, *, typed: str | None) -> None:
    """Freeze ``server`` (SIGSTOP) under a registered chat UI, type ``typed`` if given: the UI
    notices, and reconnects once the server runs again."""
    app = app_for(server.port)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.chat.nick == "alice", "registration")
        os.kill(server.pid, signal.SIGSTOP)
        try:
            if typed is not None:
                await type_line(pilot, typed)
            await until(pilot, lambda: lost(app)
                        and app.session.status.state != "connected",
                        "the frozen server noticed")
        finally:
            os.kill(server.pid, signal.SIGCONT)
        await until(pilot, lambda: app.session.status.state == "connected"
                    and app.session.registered, "the reconnection", timeout=20)


async def test_a_frozen_server_is_noticed_after_a_message(tmp_path: Path) -> None:
    server = ServerProc(tmp_path / "data")
    try:
        await noticed_and_back(server, typed="anyone there?")
    finally:
        server.stop()


async def test_a_frozen_server_is_noticed_by_an_idle_ui(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(session, "KEEPALIVE_IDLE", 0.5)
    server = ServerProc(tmp_path / "data")
    try:
        await noticed_and_back(server, typed=None)
    finally:
        server.stop()
