"""Snapshot of the main chat screen (pytest-textual-snapshot), against a real server.

The server runs in a thread with its own event loop, because the snapshot plugin runs the
app in an event loop of its own. Timestamps are fixed and the port is masked.
Update with ``python -m pytest tests/tui/test_snapshot.py --snapshot-update``.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from richchat.core.client import Address
from richchat.core.tui import ChatApp
from tests.client.servers import registered, start_server


class ThreadedServer:
    """A real ChatServer running on its own event loop in a background thread."""

    def __init__(self, data_dir: Path) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server: Any = self.call(start_server(data_dir))

    def call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=30)

    @property
    def port(self) -> int:
        return int(self.server.port)

    def close(self) -> None:
        self.call(self.server.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


@pytest.fixture
def threaded_server(tmp_path: Path) -> Iterator[ThreadedServer]:
    server = ThreadedServer(tmp_path / "data")
    try:
        yield server
    finally:
        server.close()


async def _until(pilot: Pilot[None], cond: Callable[[], bool], what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20
    while not cond():
        if loop.time() > deadline:
            raise AssertionError(f"snapshot setup timed out waiting for {what}")
        await pilot.pause(0.02)


def test_main_screen(snap_compare: Any, threaded_server: ThreadedServer) -> None:
    app = ChatApp(
        Address("127.0.0.1", threaded_server.port),
        "alice",
        time_format=lambda ts: "12:00",
        address_label="127.0.0.1:PORT",
    )
    clients: list[Any] = []

    async def setup(pilot: Pilot[None]) -> None:
        app.input.cursor_blink = False
        await _until(pilot, lambda: app.chat.nick == "alice", "registration")
        # /clear drops the welcome notice, which carries the version number
        await pilot.press(*"/clear")
        await pilot.press("enter")
        await _until(pilot, lambda: not app.chat.current.lines, "clear")
        bob = await registered(threaded_server.port, "bob")
        clients.append(bob)
        await _until(pilot, lambda: "bob" in app.chat.conversations["lobby"].users, "bob")
        await bob.say("hi alice! [bold]not markup[/bold] 你好 🙂")
        await _until(pilot, lambda: any("你好" in ln.text for ln in app.chat.current.lines),
                     "bob's line")
        await pilot.press(*"hello bob")
        await pilot.press("enter")
        await _until(pilot, lambda: any("hello bob" in ln.text for ln in app.chat.current.lines),
                     "the echo")
        await bob.close()
        await _until(pilot, lambda: app.user_list.option_count == 1, "bob leaving the list")

    assert snap_compare(app, terminal_size=(100, 24), run_before=setup)
